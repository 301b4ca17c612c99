"""The one home of the feature, projection and training defaults; all serialise to JSON."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textproj.errors import ConfigError


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    """Whether ``value`` is a finite int or float (not a bool): inf or nan would train to nan
    weights, or reach metrics.json, which JSON cannot hold, only after the whole run."""
    return _is_number(value) and math.isfinite(value)


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` checked to hold only field names of dataclass ``cls`` (missing ones default)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    return dict(data)


_FEATURE_INT_FIELDS = (
    "word_ngrams", "skip_grams", "char_ngram_min", "char_ngram_max", "word_weight",
    "char_weight", "max_chars", "max_tokens",
)  # fmt: skip


@dataclass(frozen=True)
class FeatureConfig:
    """Which sparse features a text yields before projection, and how they are weighted.

    Texts are normalised (Unicode NFKC, then casefold), cut to ``max_chars`` code points, and split
    into tokens at white space and punctuation (symbols such as emoji, and each CJK ideograph or
    kana, are tokens of their own). Features are hashed with a fixed 64-bit hash, one namespace
    per kind.
    """

    word_ngrams: int = 2  # word n-grams of order 1..word_ngrams (SGNN: uni- and bi-grams)
    skip_grams: int = 1  # word pairs with 1..skip_grams words skipped between them; 0 turns off
    char_ngram_min: int = 2  # character n-grams over "<word>" (with boundary marks) ...
    char_ngram_max: int = 5  # ... of min..max code points; char_ngram_max = 0 turns them off
    word_weight: int = 2  # integer weight of each word, word n-gram and skip-gram occurrence
    char_weight: int = 1  # integer weight of each character n-gram occurrence
    sublinear: bool = False  # weight kind_weight * (1 + floor(log2(count))) instead of counts
    max_chars: int = 20_000  # cap on code points per text after normalisation (bounds time, memory)
    max_tokens: int = 1024  # cap on tokens per text; later tokens are ignored. It bounds cost,
    # not what a model reads: 1,024 keeps 99.9 % of the bundled e-mails whole, where 256 cut 32 %
    # (docs/training.md, "Long texts"); no text of the other corpora reaches 256

    def __post_init__(self) -> None:
        self.check_types()
        checks = {
            "word_ngrams": self.word_ngrams >= 1,
            "skip_grams": self.skip_grams >= 0,
            "char_ngram_min": self.char_ngram_max == 0 or self.char_ngram_min >= 2,
            "char_ngram_max": self.char_ngram_max == 0
            or self.char_ngram_max >= self.char_ngram_min,
            "word_weight": 0 <= self.word_weight <= 255,
            "char_weight": 0 <= self.char_weight <= 255,
            "max_chars": self.max_chars >= 1,
            "max_tokens": self.max_tokens >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"FeatureConfig.{name}={getattr(self, name)!r} is out of range")

    def check_types(self) -> None:
        """Raise ConfigError unless every count is an int below 2**31 and ``sublinear`` a bool:
        a string would fail the range checks with a TypeError, and 20000.0 or True would pass
        them (and a kernel cache keyed by the config) as an equal int."""
        for name in _FEATURE_INT_FIELDS:
            value = getattr(self, name)
            if not _is_int(value) or abs(value) >= 2**31:
                raise ConfigError(f"FeatureConfig.{name} must be an int below 2**31, got {value!r}")
        if not isinstance(self.sublinear, bool):
            raise ConfigError(
                f"FeatureConfig.sublinear must be true or false, got {self.sublinear!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error, missing keys default."""
        return cls(**_known_fields(cls, data))


DESIGNS = ("token", "text")  # projection networks: per-token PRADO-like, or SGNN's whole text
TRAINERS = ("ffn", "lstm")  # trainer networks: hashed-feature bag, or BiLSTM over tokens
WEIGHT_BITS = (8, 4)  # projection layer weights in model.tpn: int8, or int4 (two per byte)

# The default schedule (TrainConfig.epochs = None), chosen on dev across the bundled corpora:
# 16 epochs (banking77 test, seeds 0-2: mean 0.902, against 0.895 at 12), and at least 400
# steps, so small sets run more epochs (sentiment dev 0.863 against 0.850, udhr 0.970 / 0.965).
EPOCHS = 16
MIN_STEPS = 400
# ... and at least this many for texts whose median is over MAX_POOL_MEDIAN_TOKENS tokens
# (TrainConfig.min_steps = None; min_steps_for): each of a long text's many windows gets a
# small share of its gradient. On documents of 40 joined clinc150 texts, dev 0.981 against
# 0.941 (seeds 0-1); udhr_langid's cut and folds +0.2 and +0.3, its full split level
# (docs/training.md, "Mean pooling").
LONG_TEXTS_MIN_STEPS = 800

# Augmented transfer texts by default only for small training sets (TrainConfig.augment_copies =
# None): SMALL_DATA_AUGMENT copies of each text below SMALL_DATA_TEXTS training texts. At about
# 1,500 texts two copies raised on-device dev on four corpora by 1.7 points (banking77 +3.2,
# clinc150 +2.0); at 2,375-3,175 texts (sentiment_sentences, udhr_langid) they lowered it by
# 0.5-1.9, as on the full corpora (docs/training.md, "Small training sets").
SMALL_DATA_TEXTS = 2000
SMALL_DATA_AUGMENT = 2
# ... and R-Drop's consistency term at SMALL_DATA_CONSISTENCY below SMALL_DATA_TEXTS when no
# unlabelled texts are given (TrainConfig.consistency = None). On the 1,500-text cuts of four
# corpora (seeds 0-2) dev 0.8621 against 0.8584 (test 0.8430 against 0.8395); on banking77 with
# 10 labelled texts per intent joint dev 0.705 against 0.699, alone 0.650 against 0.606; with
# unlabelled texts, at 20 per intent, dev 0.834 against 0.840, so they turn it off
# (docs/training.md, "Eleventh session").
SMALL_DATA_CONSISTENCY = 1.0

# Training warns when this share of its texts (or more) reach FeatureConfig.max_tokens: the
# networks read no token past the cap, so long documents may want a higher --max-tokens.
LONG_TEXTS_WARN_SHARE = 0.01

# The served ensemble (textproj.ensemble): the trainer's probabilities weigh this much, the
# on-device model's the rest. Chosen on dev (four corpora, seeds 0-2): 0.3 gave a mean of 0.9306
# against 0.9277 for 0.5, 0.9242 for 0.7, 0.9242 for the on-device model alone and 0.9209 for
# the trainer alone (docs/training.md, "The served ensemble").
ENSEMBLE_TRAINER_WEIGHT = 0.3

# By default (TrainConfig.max_pool and mean_pool None) attention pooling is joined by max
# pooling where the training texts' median length is at most this many tokens, and by mean
# pooling above it. On short texts (banking77, clinc150, sentiment_sentences: medians 8-10) max
# pooling is ahead of attention pooling alone on dev (docs/training.md, "Twelfth session"), and
# of mean pooling on their 1,500-text cuts; on udhr_langid (median 26) and spamassassin (177) it
# is behind on dev, and on long documents whose evidence is spread out it fails: documents of
# 40 banking77 texts, 12 of their label (median about 460 tokens), score dev 0.378 with it,
# 0.919 with attention alone and 0.930 with mean pooling (seeds 0-1; docs/training.md, "Long
# texts" and "Mean pooling").
MAX_POOL_MEDIAN_TOKENS = 16

# Projection shape per design when the user gives none: SGNN's 80 x 14 whole-text bits; for the
# per-token design 48 x 16 = 768 bits per token (with 40 filters: on dev of four corpora, seeds
# 0-1, 0.9269 against 0.9216 for 256 bits and 64 filters, for 0.6-6 KB more per model and less
# training time; docs/training.md, "Bits against filters").
PROJECTION_DEFAULTS = {"text": (80, 14), "token": (48, 16)}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes the two networks and their joint training, with the defaults.

    Defaults were chosen by sweeps scored on dev splits only (docs/training.md).
    """

    design: str = "token"  # projection network: "token" (PRADO-like) or "text" (SGNN)
    num_projections: int | None = None  # T; None takes PROJECTION_DEFAULTS[design]
    bits_per_projection: int | None = None  # d; None takes PROJECTION_DEFAULTS[design]
    hidden: tuple[int, ...] = (256,)  # text design: dense hidden widths
    bottleneck: int = 64  # token design: width of each token's dense bottleneck
    filters: int = 36  # token design: channels per convolution window (36 with max pooling keeps
    # a 150-label model under 64 KiB; dev level with 40 and 32: docs/training.md, "Twelfth session")
    windows: tuple[int, ...] = (1, 2, 3)  # token design: convolution window sizes (tokens)
    max_pool: bool | None = None  # token design: each channel's largest window value joins the
    # attention pooling (the output layer one pooling wider); None: on for short texts only
    # (pooling_for, MAX_POOL_MEDIAN_TOKENS)
    mean_pool: bool | None = None  # token design: each channel's mean window value joins it too;
    # None: on for longer texts only (pooling_for)
    trainer: str = "ffn"  # trainer network: "ffn" (hashed-feature bag) or "lstm" (BiLSTM)
    trainer_buckets: int = 2**16  # hashed embedding rows of the trainer
    trainer_dim: int = 64  # trainer embedding width
    trainer_hidden: int = 256  # trainer hidden width (LSTM: per direction)
    trainer_char_ngrams: tuple[int, int] | None = None  # ffn trainer's char n-grams; None: same
    trainer_learning_rate: float | None = 1e-2  # trainer's Adam rate; None: learning_rate
    # The trainer's own table rate and dropout: its dev +1.1 points on four corpora and the few-
    # label student with unlabelled texts +2.9 (banking77, 10 per intent); docs/training.md.
    trainer_table_learning_rate: float | None = 0.1  # its embedding table's; None: as above
    trainer_dropout: float | None = 0.5  # trainer's dropout; None: dropout
    # The trainer's rates decay to 0 over this share of the run's steps; at the first epoch end
    # past it the trainer is frozen at its best dev epoch (it teaches in eval mode and takes no
    # more steps); 1 trains it over the whole run. At a fixed 12 epochs 0.5 fits in 0.80x the
    # time on banking77 and 0.94x on clinc150, at the same dev accuracy on five corpora and the
    # few-label and small-data sets (docs/training.md, "Ninth session").
    trainer_share: float = 0.5
    lambda_trainer: float = 1.0  # λ1: trainer vs labels
    lambda_distill: float = 0.1  # λ2: projection vs trainer's soft outputs (0 trains alone)
    lambda_transfer: float = 1.0  # weight of the distillation term on transfer texts
    augment_copies: int | None = None  # augmented copies of each training text (transfer texts);
    # None: SMALL_DATA_AUGMENT below SMALL_DATA_TEXTS training texts, else none
    consistency: float | None = None  # α: two dropout draws of the projection network per
    # labelled batch, α × their symmetric KL (R-Drop); None: SMALL_DATA_CONSISTENCY below
    # SMALL_DATA_TEXTS training texts when no unlabelled texts are given, else 0 (one draw)
    lambda_labels: float = 1.0  # λ3: projection vs labels
    temperature: float = 2.0  # softmax temperature of the distillation term
    multi_label: bool = False  # one sigmoid per label (BCE), per-label thresholds tuned on dev
    distill_to_trainer: bool = False  # let the distillation term's gradient reach the trainer
    dropout: float = 0.4  # dropout in both networks (pooled/hidden activations)
    token_dropout: float = 0.1  # token design: share of token occurrences dropped (whole tokens)
    label_smoothing: float = 0.1  # projection network's label term (single-label)
    weight_decay: float = 0.05  # decoupled weight decay (AdamW) of the dense parameters
    epochs: int | None = None  # None: EPOCHS, stretched so a small set takes min_steps steps
    min_steps: int | None = None  # default schedule's least steps; None: MIN_STEPS, or for
    # longer texts LONG_TEXTS_MIN_STEPS (min_steps_for)
    patience: int = 5  # stop after this many epochs without a better dev accuracy
    batch_size: int = 256
    learning_rate: float = 4e-3  # AdamW of the projection network; decays linearly to 0
    dev_fraction: float = 0.1  # dev split carved from train when none is given
    seed: int = 0  # projection hash seed, weight init, shuffling and dev split
    threads: int = 2  # torch threads (spinning briefly when idle); fixed so reruns are identical
    weight_bits: int = 4  # bits of each projection layer weight in model.tpn (WEIGHT_BITS)

    def __post_init__(self) -> None:
        self._check_kinds()
        choices = {"design": DESIGNS, "trainer": TRAINERS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"TrainConfig.{name} must be one of {allowed}, not {getattr(self, name)!r}"
                )
        if not _is_int(self.weight_bits) or self.weight_bits not in WEIGHT_BITS:
            raise ConfigError(
                f"TrainConfig.weight_bits must be one of {WEIGHT_BITS}, not {self.weight_bits!r}"
            )
        for name in ("epochs", "min_steps"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ConfigError(f"TrainConfig.{name} must be an int >= 1, got {value!r}")
        copies = self.augment_copies
        if copies is not None and (not _is_int(copies) or copies < 0):
            raise ConfigError(
                f"TrainConfig.augment_copies must be an int >= 0 or null, got {copies!r}"
            )
        positive = ("patience", "batch_size", "bottleneck", "filters", "threads")
        for name in (*positive, "trainer_buckets", "trainer_dim", "trainer_hidden"):
            if not _is_int(getattr(self, name)) or getattr(self, name) < 1:
                raise ConfigError(
                    f"TrainConfig.{name} must be an int >= 1, got {getattr(self, name)!r}"
                )
        for name in ("num_projections", "bits_per_projection"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ConfigError(f"TrainConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("hidden", "windows"):
            widths = getattr(self, name)
            if not all(_is_int(w) and w >= 1 for w in widths) or (name == "windows" and not widths):
                raise ConfigError(f"TrainConfig.{name} must list ints >= 1, got {list(widths)}")
        if self.trainer_buckets > 2**31 - 1:
            raise ConfigError(
                f"TrainConfig.trainer_buckets must be below 2**31, got {self.trainer_buckets}"
            )
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"TrainConfig.seed must be an int in [0, 2**63), got {self.seed!r}")
        rates = {
            "learning_rate": self.learning_rate,
            "trainer_learning_rate": self.trainer_learning_rate,
            "trainer_table_learning_rate": self.trainer_table_learning_rate,
        }
        for name, rate in rates.items():
            if rate is not None and not (_is_finite(rate) and rate > 0):
                raise ConfigError(f"TrainConfig.{name} must be > 0 and finite, got {rate}")
        at_least_zero = (
            "weight_decay", "lambda_trainer", "lambda_distill", "lambda_labels", "lambda_transfer",
        )  # fmt: skip
        for name in at_least_zero:
            value = getattr(self, name)
            if not (_is_finite(value) and value >= 0):
                raise ConfigError(f"TrainConfig.{name} must be >= 0 and finite, got {value!r}")
        if not 0 < self.dev_fraction < 1:
            raise ConfigError(
                f"TrainConfig.dev_fraction must be in (0, 1), got {self.dev_fraction}"
            )
        for name in ("max_pool", "mean_pool"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ConfigError(f"TrainConfig.{name} must be true, false or null, got {value!r}")
        if self.consistency is not None and not (
            _is_finite(self.consistency) and self.consistency >= 0
        ):
            raise ConfigError(
                "TrainConfig.consistency must be a finite number >= 0 or null, got "
                f"{self.consistency!r}"
            )
        for name in ("dropout", "token_dropout", "label_smoothing"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(
                    f"TrainConfig.{name} must be in [0, 1), got {getattr(self, name)}"
                )
        if self.trainer_dropout is not None and not 0 <= self.trainer_dropout < 1:
            raise ConfigError(
                f"TrainConfig.trainer_dropout must be in [0, 1) or null, got {self.trainer_dropout}"
            )
        share = self.trainer_share
        if not 0 < share <= 1:
            raise ConfigError(f"TrainConfig.trainer_share must be in (0, 1], got {share}")
        if not (_is_finite(self.temperature) and self.temperature > 0):
            raise ConfigError(
                f"TrainConfig.temperature must be > 0 and finite, got {self.temperature}"
            )

    def _check_kinds(self) -> None:
        """Raise ConfigError unless each float field holds a number (or null where the field
        allows it) and each bool field a bool: a string would fail the range checks below with
        a TypeError, and a bool would pass them as 0 or 1."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type in ("float", "float | None"):
                optional = field.type.endswith("None")
                if not (_is_number(value) or (optional and value is None)):
                    kind = "a number or null" if optional else "a number"
                    raise ConfigError(f"TrainConfig.{field.name} must be {kind}, got {value!r}")
            elif field.type == "bool" and not isinstance(value, bool):
                raise ConfigError(f"TrainConfig.{field.name} must be true or false, got {value!r}")

    def schedule(self, n_train: int) -> tuple[int, int, int]:
        """(steps per epoch, epochs, patience) for ``n_train`` training texts. A given
        ``epochs`` is exact; by default EPOCHS, and for a set so small that EPOCHS epochs take
        fewer than ``min_steps`` steps (None: MIN_STEPS), more epochs and a patience stretched
        by the same factor."""
        steps = max(1, -(-n_train // self.batch_size))
        if self.epochs is not None:
            return steps, self.epochs, self.patience
        least = MIN_STEPS if self.min_steps is None else self.min_steps
        epochs = max(EPOCHS, -(-least // steps))
        return steps, epochs, -(-self.patience * epochs // EPOCHS)

    def min_steps_for(self, median_tokens: float) -> int:
        """``min_steps`` resolved for training texts of ``median_tokens`` median length (0 for
        the text design): as given, or MIN_STEPS up to MAX_POOL_MEDIAN_TOKENS tokens and
        LONG_TEXTS_MIN_STEPS above."""
        if self.min_steps is not None:
            return self.min_steps
        return MIN_STEPS if median_tokens <= MAX_POOL_MEDIAN_TOKENS else LONG_TEXTS_MIN_STEPS

    def copies_for(self, n_train: int) -> int:
        """Augmented copies of each of ``n_train`` training texts: ``augment_copies``, or by
        default SMALL_DATA_AUGMENT for a set of fewer than SMALL_DATA_TEXTS texts when the
        projection network learns from the trainer (λ2 > 0; alone it gets none), else 0."""
        if self.augment_copies is not None:
            return self.augment_copies
        small = n_train < SMALL_DATA_TEXTS and self.lambda_distill > 0
        return SMALL_DATA_AUGMENT if small else 0

    def consistency_for(self, n_train: int, unlabeled: bool = False) -> float:
        """R-Drop's weight α for ``n_train`` training texts: ``consistency``, or by default
        SMALL_DATA_CONSISTENCY for a set of fewer than SMALL_DATA_TEXTS texts without
        ``unlabeled`` texts (which regularise the projection network already), else 0."""
        if self.consistency is not None:
            return float(self.consistency)
        small = n_train < SMALL_DATA_TEXTS and not unlabeled
        return SMALL_DATA_CONSISTENCY if small else 0.0

    def pooling_for(self, median_tokens: float) -> dict[str, bool]:
        """``max_pool`` and ``mean_pool`` resolved for training texts of ``median_tokens`` median
        length (``dataclasses.replace(config, **config.pooling_for(m))``): each as given, or by
        default max pooling up to MAX_POOL_MEDIAN_TOKENS tokens and mean pooling above."""
        token, short = self.design == "token", median_tokens <= MAX_POOL_MEDIAN_TOKENS
        max_pool = token and short if self.max_pool is None else self.max_pool
        mean_pool = token and not short if self.mean_pool is None else self.mean_pool
        return {"max_pool": max_pool, "mean_pool": mean_pool}

    @property
    def projection_shape(self) -> tuple[int, int]:
        """(T, d) after applying the per-design defaults."""
        default_t, default_d = PROJECTION_DEFAULTS[self.design]
        return (self.num_projections or default_t, self.bits_per_projection or default_d)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error. Files of the eighth
        session wrote ``trainer_share: null`` for a trainer trained over the whole run (1 now)."""
        values = _known_fields(cls, data)
        if "trainer_share" in values and values["trainer_share"] is None:
            values["trainer_share"] = 1.0
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# How a library message names a setting: "TrainConfig.hidden", "FeatureConfig.max_tokens".
FIELD_REFERENCE = re.compile(r"\b(TrainConfig|FeatureConfig)\.(\w+)")
# FeatureConfig field -> the `textproj train` option that sets it (only train has them).
TRAIN_FEATURE_OPTIONS = {"max_tokens": "--max-tokens"}


def rename_fields(message: str, rename: Callable[[str, str], str | None]) -> str:
    """``message`` with each config field it names (``FIELD_REFERENCE``) written as
    ``rename(class name, field)`` says, or kept where that is None: how the CLI and the demo
    name their own options and widgets in the library's messages."""
    return FIELD_REFERENCE.sub(lambda m: rename(m.group(1), m.group(2)) or m.group(0), message)


def set_by_train_only(field: str, where: str) -> str:
    """How ``where`` (a command or page with no option for FeatureConfig ``field``) names it:
    the train option that sets it, and that ``where`` keeps the default."""
    return f"`textproj train {TRAIN_FEATURE_OPTIONS[field]}` sets it; {where} keeps the default"
