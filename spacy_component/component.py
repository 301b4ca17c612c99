"""The ``textproj`` spaCy pipeline component: ``doc.cats`` from a tiny projection model.

Inference mode (``model`` set): the torch-free runtime (``textproj.runtime``) classifies each batch
of docs. Trainable mode (no ``model``): ``spacy train`` initialises the component from the
examples' labels and trains both networks with the joint loss (``spacy_component.learner``,
which imports torch); the component then serialises the int8 ``model.tpn``, so a saved pipeline
loads and runs without torch. Either way the model travels inside the pipeline's own files.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.util import minibatch

from textproj import fsio
from textproj.config import FeatureConfig, TrainConfig
from textproj.decisions import DEFAULT_THRESHOLD
from textproj.errors import ConfigError
from textproj.features import token_counts
from textproj.model_file import MODEL_FILENAME, ModelNotFoundError, model_path
from textproj.projector import check_n_jobs
from textproj.runtime import Classifier, load_bytes

FACTORY = "textproj"
# The factory's defaults, the one place they live (``train_config`` / ``features`` hold only
# overrides of textproj's own defaults in ``textproj.config``).
DEFAULT_CONFIG: dict[str, Any] = {
    "model": None,  # model.tpn file (or a directory holding one); None: trainable
    "multi_label": False,  # trainable mode: one sigmoid per label; a model file says for itself
    # Multi-label scoring: a label is predicted at or above this probability; None takes the
    # per-label thresholds stored in the model file (DEFAULT_THRESHOLD where it stores none).
    "threshold": None,
    "train_config": {},  # trainable mode: TrainConfig fields to override
    "features": {},  # trainable mode: FeatureConfig fields to override
    "n_jobs": -1,  # projector threads for large batches (-1: every core)
}
# Where spaCy's loop differs from textproj's: it sets the steps, so the trainer trains over all
# of them (TrainConfig.trainer_share needs the run's length up front).
SPACY_TRAIN_DEFAULTS: dict[str, Any] = {"trainer_share": 1.0}
# TrainConfig fields of ``textproj train``'s own loop, which spaCy's loop replaces: refused in
# ``train_config`` (they would be silently unused), each with where spaCy takes it from.
LOOP_ONLY_TRAIN_KEYS: dict[str, str] = {
    "epochs": "[training] max_epochs",
    "min_steps": "[training] max_steps",
    "patience": "[training] patience",
    "batch_size": "[training.batcher] size",
    "dev_fraction": "[paths] dev",
    "augment_copies": "no transfer texts under spaCy",
    "lambda_transfer": "no transfer texts under spaCy",
    "multi_label": "[components.<name>] multi_label",
}
HOW_TO_MODEL = (
    'give config {"model": "path/to/model.tpn"}, or train it (nlp.initialize, spacy train)'
)
# Single-label training leaves out a doc with no target: the warning that says so, and each
# reason's wording and remedy ({labels}: the labels concerned; {name}: the component's name).
LEFT_OUT_WARNING = (
    "textproj component {name!r}: {count} doc(s) of the {which} {reason} and are left out of "
    "training; {remedy}"
)
OUTSIDE_LABELS = (
    "have a positive label not among its labels ({labels})",
    "add the label(s) to [initialize.components.{name}] labels to train on them",
)
NO_POSITIVE_LABEL = (
    "have no positive label (spaCy's textcat trains such a doc towards no label, which one "
    "softmax cannot)",
    "give each a positive cat (a label of its own for none of the others), or set "
    "[components.{name}] multi_label = true to train them towards no label",
)
SCORE_WEIGHTS: dict[str, float | None] = {
    "cats_score": 1.0,
    "cats_score_desc": None,
    "cats_micro_p": None,
    "cats_micro_r": None,
    "cats_micro_f": None,
    "cats_macro_p": None,
    "cats_macro_r": None,
    "cats_macro_f": None,
    "cats_macro_auc": None,
    "cats_f_per_type": None,
}


def _read_model_file(path: str | Path) -> bytes:
    """The bytes of a model file (or of ``model.tpn`` in a directory), or a ModelFormatError."""
    return _read_bytes(model_path(path), "the textproj component's 'model'")


def _read_bytes(file: Path, what: str) -> bytes:
    """``file``'s bytes; a missing one is a ModelNotFoundError naming it and ``what`` it is."""
    try:
        return file.read_bytes()
    except FileNotFoundError:
        raise ModelNotFoundError(f"{file}: no such file ({what})") from None


def _building_from_config() -> bool:
    """Whether spaCy is building a whole pipeline from its config (``spacy.load``), whose
    ``from_disk`` or ``from_bytes`` supplies the model bytes next: then the config's model path
    (where the model was when the pipeline was made) need not exist any more."""
    code = Language.from_config.__func__.__code__
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def _positive(cats: dict[str, float]) -> list[str]:
    """The labels ``cats`` marks positive (at or above ``DEFAULT_THRESHOLD``), in its order."""
    return [label for label, value in cats.items() if value >= DEFAULT_THRESHOLD]


def _refuse_unstorable_labels(labels: Iterable[object], where: str) -> None:
    """Raise ConfigError, starting with ``where``, at a label that is not a string or is blank:
    the model file holds strings, and textproj's data readers drop a blank label, so such a
    label would fail or mislead only after training."""
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            kind = "blank" if isinstance(label, str) else "not a string"
            raise ConfigError(f"{where}: label {label!r} is {kind}; labels are non-blank strings")


def _section_config(name: str, section: str, build: Callable[[dict], Any], data: dict) -> Any:
    """``build(data)``, its ConfigError naming the config section ``data`` came from."""
    try:
        return build(data)
    except ConfigError as error:
        raise ConfigError(f"[components.{name}.{section}] {error}") from None


def _train_config(name: str, overrides: dict[str, Any], multi_label: bool) -> TrainConfig:
    """The TrainConfig of spaCy training: textproj's defaults, ``SPACY_TRAIN_DEFAULTS``, then
    the config's ``train_config`` overrides, refusing the fields spaCy's loop replaces."""
    loop_only = [key for key in overrides if key in LOOP_ONLY_TRAIN_KEYS]
    if loop_only:
        where = "; ".join(
            f"{key}: {LOOP_ONLY_TRAIN_KEYS[key].replace('<name>', name)}" for key in loop_only
        )
        raise ConfigError(
            f"[components.{name}.train_config] {', '.join(loop_only)}: not used by spaCy's "
            f"training loop ({where})"
        )
    values = {**SPACY_TRAIN_DEFAULTS, **overrides, "multi_label": multi_label}
    config = _section_config(name, "train_config", TrainConfig.from_dict, values)
    if config.trainer_share != 1:
        raise ConfigError(
            f"[components.{name}.train_config] trainer_share: spaCy's training loop sets the "
            "steps, so the trainer cannot be given a share of them; leave it at 1"
        )
    return config


def _at_thresholds(scores: np.ndarray, thresholds: np.ndarray, target: float) -> np.ndarray:
    """``scores`` mapped so that each label's threshold lands on ``target``, monotonically per
    label (piecewise linear): spaCy's scorer, which takes one threshold, then decides as the
    model does, and per-label rankings (AUC) are unchanged."""
    low = target * scores / np.maximum(thresholds, 1e-9)
    high = target + (1 - target) * (scores - thresholds) / np.maximum(1 - thresholds, 1e-9)
    return np.where(scores < thresholds, low, high)


class TextProjCategorizer(Pipe):
    """Sets ``doc.cats`` (a probability for every label) from a textproj projection model."""

    def __init__(
        self,
        nlp: Language,
        name: str = FACTORY,
        *,
        model: str | None = None,
        multi_label: bool = False,
        threshold: float | None = None,
        train_config: dict[str, Any] | None = None,
        features: dict[str, Any] | None = None,
        n_jobs: int = -1,
    ) -> None:
        if threshold is not None and not 0 <= threshold <= 1:
            raise ConfigError(
                f"textproj component {name!r}: threshold must be in [0, 1] or null, "
                f"got {threshold!r}"
            )
        try:
            check_n_jobs(n_jobs)  # at construction: load_bytes would meet it only at first use
        except ConfigError as error:
            raise ConfigError(f"textproj component {name!r}: {error}") from None
        settings = {"train_config": train_config, "features": features, "multi_label": multi_label}
        trainable_only = [key for key, value in settings.items() if value]
        if model is not None and trainable_only:
            raise ConfigError(
                f"textproj component {name!r}: {', '.join(trainable_only)} apply in trainable "
                "mode only (no 'model'); the model file carries its own settings"
            )
        self.name = name
        self.vocab = nlp.vocab
        self.threshold = threshold
        self.n_jobs = n_jobs
        self.train_config = _train_config(name, train_config or {}, multi_label)
        self.features = _section_config(name, "features", FeatureConfig.from_dict, features or {})
        self._source = model
        self._model_bytes: bytes | None = None
        self._classifier: Classifier | None = None
        self._learner: Any = None  # spacy_component.learner.Learner once initialised to train
        # What update has warned of left-out docs in this training run (_warn_left_out)
        self._warned: set[str | None] = set()
        self._lock = threading.Lock()
        if model is not None and not _building_from_config():
            self._set_model(_read_model_file(model), str(model))
        # Under spacy.load the saved config names the original file, which may be gone or
        # damaged: the pipeline's own copy comes from from_disk next. Built from a config alone
        # (spacy train), the file is read at first use (initialize).

    # --- state
    def _set_model(self, data: bytes, name: str) -> None:
        self._classifier = load_bytes(data, n_jobs=self.n_jobs, name=name)
        self._model_bytes = data

    def _require_classifier(self) -> Classifier:
        with self._lock:
            if self._classifier is None:
                if self._learner is not None:
                    self._set_model(self._learner.export(), f"{self.name} (training)")
                elif self._source is not None:
                    self._set_model(_read_model_file(self._source), str(self._source))
                else:
                    raise ValueError(
                        f"textproj component {self.name!r} has no model: {HOW_TO_MODEL}"
                    )
            return self._classifier

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels in output order (empty before a model is loaded or initialised)."""
        if self._learner is not None:
            return tuple(self._learner.labels)
        if self._classifier is not None:
            return tuple(self._classifier.labels)
        return ()

    @property
    def multi_label(self) -> bool:
        """Independent labels (sigmoid per label) or one label per doc (softmax)."""
        if self._learner is None and self._classifier is not None:
            return self._classifier.multi_label
        return self.train_config.multi_label

    @property
    def is_trainable(self) -> bool:
        """True once initialised for training (a model loaded from a file is int8: not trained)."""
        return self._learner is not None

    @property
    def model(self) -> Any:
        """The torch networks being trained (a ``Learner``), None in inference mode."""
        return self._learner

    # --- inference
    def predict(self, docs: Iterable[Doc]) -> Any:
        """Probabilities (n_docs, n_labels) for ``docs``."""
        return self._require_classifier().predict_proba([doc.text for doc in docs])

    def set_annotations(self, docs: Iterable[Doc], scores: Any) -> None:
        """Write each doc's probabilities into ``doc.cats``."""
        labels = self.labels
        for doc, row in zip(docs, scores.tolist(), strict=True):
            doc.cats.update(zip(labels, row, strict=True))

    def __call__(self, doc: Doc) -> Doc:
        try:
            self.set_annotations([doc], self.predict([doc]))
        except Exception as error:
            self.get_error_handler()(self.name, self, [doc], error)
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Classify ``stream`` in batches of ``batch_size`` docs (one runtime call per batch)."""
        for docs in minibatch(stream, size=batch_size):
            try:
                self.set_annotations(docs, self.predict(docs))
            except Exception as error:
                self.get_error_handler()(self.name, self, docs, error)
            yield from docs

    # --- training
    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Language | None = None,
        labels: str | Iterable[str] | None = None,
    ) -> None:
        """Trainable mode: fresh networks for ``labels`` or the labels of the examples' cats.

        A component given a model file keeps it (nothing to initialise). ``str`` is in the
        hint so that spaCy's settings check passes a string here to be refused, instead of
        splitting it into characters.
        """
        if self._source is not None:
            self._require_classifier()
            return
        setting = f"[initialize.components.{self.name}] labels"
        if labels is not None:
            labels = self._checked_labels(labels, setting)
        examples = list(get_examples())  # under spacy train, each call reads the corpus again
        validate_examples(examples, f"{type(self).__name__}.initialize")
        positives = self._check_cats(examples, "training example {}")
        if labels is None:
            labels = sorted({label for eg in examples for label in eg.reference.cats}, key=str)
            _refuse_unstorable_labels(labels, f"textproj component {self.name!r}: doc.cats")
            source = f"textproj component {self.name!r}: the training examples carry "
            none = "no labels (doc.cats is empty)"
        else:
            source, none = f"{setting}: ", "no labels"
        if len(labels) < 2:
            found = f"only the label {labels[0]!r}" if labels else none
            raise ConfigError(f"{source}{found}; a classifier needs two")
        carried = {label for positive in positives for label in positive}
        uncarried = [label for label in labels if label not in carried]
        if uncarried:
            warnings.warn(
                f"textproj component {self.name!r}: no training example has the label(s) "
                f"{', '.join(map(repr, uncarried))}; the model will learn never to predict them",
                stacklevel=2,
            )
        self._warn_left_out(positives, labels, "training examples")
        from spacy_component.learner import Learner  # imports torch: trainable mode only

        texts = [eg.reference.text for eg in examples]
        median = float(np.median(token_counts(texts, self.features))) if texts else 0.0
        config = dataclasses.replace(self.train_config, **self.train_config.pooling_for(median))
        with self._lock:
            self._learner = Learner(labels, config, self.features)
            self._classifier = self._model_bytes = None
            self._warned = set()  # a new training run, perhaps with other labels

    def _checked_labels(self, labels: Iterable[str], setting: str) -> list[str]:
        """``labels`` (from ``setting``) sorted, refusing a string (spaCy would split it into
        characters), a label the model file cannot store and duplicates (it needs distinct
        labels)."""
        if isinstance(labels, str):
            raise ConfigError(f"{setting}: a list of labels, not the string {labels!r}")
        labels = list(labels)
        _refuse_unstorable_labels(labels, setting)
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ConfigError(f"{setting}: {', '.join(map(repr, repeated))} given more than once")
        return sorted(labels)

    def _check_cats(self, examples: list[Example], which: str) -> list[list[str]]:
        """Each example's positive labels (``_positive``), worked out once for the batch.
        Refuses, as spaCy's textcat does, a cat whose value is not 0 or 1 (E851) and, in
        single-label mode, a doc with more than one positive cat (E895), rather than train on a
        guess; ``which`` names doc ``{}`` in the message."""
        positives = []
        for i, eg in enumerate(examples):
            cats = eg.reference.cats
            for label, value in cats.items():
                if not (value == 1.0 or value == 0.0):
                    raise ConfigError(
                        f"textproj component {self.name!r}: {which.format(i)} has cats[{label!r}]"
                        f" = {value!r}; a cat is 1.0 (the doc has the label) or 0.0 (it has not)"
                    )
            positive = _positive(cats)
            if not self.multi_label and len(positive) > 1:
                raise ConfigError(
                    f"textproj component {self.name!r} is single-label, but {which.format(i)} has "
                    f"several positive cats ({', '.join(map(repr, positive))}); set "
                    f"[components.{self.name}] multi_label = true for several labels per doc"
                )
            positives.append(positive)
        return positives

    def _warn_left_out(
        self,
        positives: list[list[str]],
        labels: Iterable[str],
        which: str,
        warned: set[str | None] | None = None,
    ) -> None:
        """Single-label mode: warn of the docs that have no target, so training leaves them out
        (spaCy's textcat trains them towards no label at all, which one softmax cannot): those
        whose positive label is not among ``labels``, and those with no positive label. One
        warning per reason for ``positives`` (the batch's, from ``_check_cats``), counting its
        docs. ``warned`` (update's, per training run) holds what was warned of, each outside
        label and None for no positive label; only what is not in it yet is warned of, so
        spacy train's batches do not repeat a warning."""
        if self.multi_label:
            return
        known = set(labels)
        outside = [positive[0] for positive in positives if positive and positive[0] not in known]
        unlabelled = sum(not positive for positive in positives)
        if warned is not None:
            outside = [label for label in outside if label not in warned]
            unlabelled = 0 if None in warned else unlabelled
            warned.update(outside, [None] if unlabelled else [])
        if outside:
            named = ", ".join(map(repr, sorted(set(outside))))
            self._warn_of(len(outside), which, OUTSIDE_LABELS, named)
        if unlabelled:
            self._warn_of(unlabelled, which, NO_POSITIVE_LABEL)

    def _warn_of(self, count: int, which: str, why: tuple[str, str], labels: str = "") -> None:
        """Warn that ``count`` docs of the ``which`` are left out of training, ``why`` being
        the reason and remedy (``OUTSIDE_LABELS`` or ``NO_POSITIVE_LABEL``)."""
        reason, remedy = (part.format(labels=labels, name=self.name) for part in why)
        message = LEFT_OUT_WARNING.format(
            name=self.name, count=count, which=which, reason=reason, remedy=remedy
        )
        warnings.warn(message, stacklevel=4)

    def _gold(self, positive: list[str]) -> str | tuple[str, ...] | None:
        """An example's target from its ``positive`` labels: the one among the labels, the
        tuple of them (multi-label), or None when a single-label example has none there."""
        index = self._learner.label_index
        if self.multi_label:
            return tuple(label for label in positive if label in index)
        return positive[0] if positive and positive[0] in index else None

    def _known(self, examples: list[Example]) -> np.ndarray | None:
        """Multi-label: (n_examples, n_labels), False where a doc's cats leave the label out,
        so that label gives that doc no loss (as spaCy's textcat_multilabel); None when every
        doc gives every label, or single-label."""
        if not self.multi_label:
            return None
        known = np.array(
            [[label in eg.reference.cats for label in self.labels] for eg in examples], dtype=bool
        ).reshape(len(examples), len(self.labels))
        return None if known.all() else known

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Any = None,
        losses: dict[str, float] | None = None,
    ) -> dict[str, float]:
        """Accumulate the joint loss's gradients on ``examples`` (stepped by ``finish_update``,
        or here when ``sgd`` is given). Dropout comes from ``train_config.dropout``, not ``drop``.
        """
        if self._learner is None:
            raise ValueError(
                f"textproj component {self.name!r} is not initialised for training: call "
                "nlp.initialize() first (a component loaded from a model file cannot be trained)"
            )
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.update")
        positives = self._check_cats(examples, "doc {} of the batch")
        self._warn_left_out(positives, self.labels, "batch", self._warned)
        golds = [
            (eg, gold)
            for eg, positive in zip(examples, positives, strict=True)
            if (gold := self._gold(positive)) is not None
        ]
        if golds:
            examples, gold = map(list, zip(*golds, strict=True))
            texts = [eg.reference.text for eg in examples]
            losses[self.name] += self._learner.accumulate(texts, gold, self._known(examples))
        if sgd not in (None, False):
            self.finish_update(sgd)
        return losses

    def finish_update(self, sgd: Any) -> None:
        """Step both networks at spaCy's current learning rate (its schedule applies)."""
        self._learner.step(getattr(sgd, "learn_rate", None))
        with self._lock:
            self._classifier = self._model_bytes = None

    def score(self, examples: Iterable[Example], **kwargs: Any) -> dict[str, Any]:
        """spaCy's textcat scores (``cats_score``, micro/macro P/R/F, AUC, per label)."""
        validate_examples(examples, f"{type(self).__name__}.score")
        examples = list(examples)
        if self.multi_label and "threshold" not in kwargs:
            thresholds = self.thresholds
            if thresholds is not None and np.any(thresholds != DEFAULT_THRESHOLD):
                examples = [self._rescored(eg, thresholds) for eg in examples]
            kwargs["threshold"] = DEFAULT_THRESHOLD
        kwargs.setdefault("threshold", 0.0)
        return Scorer.score_cats(
            examples, "cats", labels=self.labels, multi_label=self.multi_label, **kwargs
        )

    @property
    def thresholds(self) -> np.ndarray | None:
        """Multi-label: each label's decision threshold (config ``threshold``, else the model
        file's tuned ones); ``doc.cats[label] >= thresholds[i]`` is the label the CLI predicts."""
        if not self.multi_label:
            return None
        if self.threshold is not None:
            return np.full(len(self.labels), self.threshold, dtype=np.float32)
        stored = self._require_classifier().thresholds
        return np.full(len(self.labels), DEFAULT_THRESHOLD) if stored is None else stored

    def _rescored(self, example: Example, thresholds: np.ndarray) -> Example:
        """A copy of ``example`` whose predicted cats put each label's threshold at the
        scorer's (``DEFAULT_THRESHOLD``)."""
        doc = example.predicted.copy()
        scores = np.array([doc.cats.get(label, 0.0) for label in self.labels], dtype=np.float64)
        doc.cats = dict(
            zip(
                self.labels,
                _at_thresholds(scores, thresholds, DEFAULT_THRESHOLD).tolist(),
                strict=True,
            )
        )
        return Example(doc, example.reference)

    # --- serialisation: the model file's bytes travel inside the pipeline
    def _current_bytes(self) -> bytes | None:
        if self._learner is not None or self._source is not None:
            self._require_classifier()
        return self._model_bytes

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        """The model file's bytes (msgpack, so later fields can be added)."""
        return srsly.msgpack_dumps({"model": self._current_bytes()})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = ()) -> TextProjCategorizer:
        """Load the model carried by :meth:`to_bytes` (inference mode)."""
        data = srsly.msgpack_loads(bytes_data)["model"]
        if data is not None:
            self._load_saved(data, f"{self.name} (bytes)")
        return self

    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Write ``path/model.tpn`` (the int8 on-device model; loading it needs no torch),
        atomically. A component with no model yet is refused: its pipeline could not load."""
        data = self._current_bytes()
        if data is None:
            raise ValueError(
                f"textproj component {self.name!r} has no model to save: {HOW_TO_MODEL} first"
            )
        fsio.write_bytes(Path(path) / MODEL_FILENAME, data)

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> TextProjCategorizer:
        """Load ``path/model.tpn`` written by :meth:`to_disk` (inference mode): the pipeline's
        own copy, never the file its config names; a missing one is a ModelNotFoundError."""
        file = Path(path) / MODEL_FILENAME
        self._load_saved(_read_bytes(file, "the saved pipeline's textproj model"), str(file))
        return self

    def _load_saved(self, data: bytes, name: str) -> None:
        with self._lock:
            self._set_model(data, name)
            self._learner = None
            self._source = None


@Language.factory(
    FACTORY,
    assigns=["doc.cats"],
    default_config=DEFAULT_CONFIG,
    default_score_weights=SCORE_WEIGHTS,
)
def make_textproj(
    nlp: Language,
    name: str,
    model: str | None,
    multi_label: bool,
    threshold: float | None,
    train_config: dict[str, Any],
    features: dict[str, Any],
    n_jobs: int,
) -> TextProjCategorizer:
    """Build the ``textproj`` component (see ``DEFAULT_CONFIG`` for the settings)."""
    return TextProjCategorizer(
        nlp,
        name,
        model=model,
        multi_label=multi_label,
        threshold=threshold,
        train_config=train_config,
        features=features,
        n_jobs=n_jobs,
    )
