"""Python side of text → features: normalisation, UTF-8 batching, and the code point classes.

The numba kernels see only bytes, offsets and a class table; this module prepares them and
raises the user-facing errors.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from collections.abc import Sequence

import numpy as np

from textproj._kernels import features as _kf
from textproj.config import FeatureConfig
from textproj.errors import ConfigError

CLASS_TABLE_SIZE = 0x30000  # covers every script in use; above it, see _kf.char_class

_CJK_RANGES = (
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x2FFFF),  # CJK extensions B and later
)

_VARIATION_SELECTORS = (0xFE00, 0xFE0F)  # emoji/text presentation: not part of any word

# Unicode's stream-safe text format (UAX #15): at most 30 non-starters in a row. Normalisation
# sorts each run of combining marks, in time quadratic in the run's length, so one hostile text
# of marks could take seconds; longer runs are cut by a COMBINING GRAPHEME JOINER (a starter).
STREAM_SAFE_RUN = 30
_CGJ = "\u034f"

# Upper bound on the features the kernels may have to hold for one text (see
# ``_kf.feature_bound``): FeatureConfig() needs 720,001, so this leaves room for larger caps and
# orders while a config from a hostile model file cannot make one text allocate gigabytes.
MAX_FEATURE_BOUND = 2**24


@functools.cache
def class_table() -> np.ndarray:
    """uint8 class of each code point below CLASS_TABLE_SIZE, from Python's Unicode database.

    Letters, marks and digits join into words; symbols (emoji, currency, maths) and CJK
    characters, which are not separated by spaces, stand alone; everything else separates.
    """
    categories = "".join(map(unicodedata.category, map(chr, range(CLASS_TABLE_SIZE))))
    major = np.frombuffer(categories.encode("ascii"), dtype=np.uint8)[::2]
    table = np.full(CLASS_TABLE_SIZE, _kf.CLASS_SEPARATOR, dtype=np.uint8)
    table[np.isin(major, np.frombuffer(b"LMN", dtype=np.uint8))] = _kf.CLASS_WORD
    table[major == ord("S")] = _kf.CLASS_SINGLE
    for lo, hi in _CJK_RANGES:
        table[lo : min(hi, CLASS_TABLE_SIZE - 1) + 1] = _kf.CLASS_SINGLE
    table[_VARIATION_SELECTORS[0] : _VARIATION_SELECTORS[1] + 1] = _kf.CLASS_SEPARATOR
    return table


def _is_nonstarter(char: str) -> bool:
    """Whether ``char`` decomposes (NFKD) to a code point of non-zero canonical combining class."""
    if unicodedata.combining(char):
        return True
    return bool(unicodedata.decomposition(char)) and bool(
        unicodedata.combining(unicodedata.normalize("NFKD", char)[0])
    )


@functools.cache
def _long_nonstarter_run() -> re.Pattern[str]:
    """A regex matching more than STREAM_SAFE_RUN non-starters in a row."""
    ranges = []
    for is_mark, group in itertools.groupby(
        range(0x110000), key=lambda cp: not 0xD800 <= cp < 0xE000 and _is_nonstarter(chr(cp))
    ):
        if is_mark:
            cps = list(group)
            ranges.append(f"{re.escape(chr(cps[0]))}-{re.escape(chr(cps[-1]))}")
    return re.compile(f"[{''.join(ranges)}]{{{STREAM_SAFE_RUN + 1},}}")


def _stream_safe(text: str) -> str:
    """``text`` with a COMBINING GRAPHEME JOINER after every STREAM_SAFE_RUN non-starters.

    Text already in NFKC (nearly all real text; the check is linear) is left as it is: NFKC
    then has nothing to reorder.
    """
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        return text

    def cut(match: re.Match[str]) -> str:
        run = match.group()
        return _CGJ.join(run[i : i + STREAM_SAFE_RUN] for i in range(0, len(run), STREAM_SAFE_RUN))

    return _long_nonstarter_run().sub(cut, text)


def normalize(text: str, max_chars: int) -> str:
    """NFKC then casefold, cut to ``max_chars`` code points.

    The text is cut before normalising too, and made stream-safe (runs of combining marks cut
    at STREAM_SAFE_RUN), so the work per text is linear and bounded whatever its length.
    """
    text = unicodedata.normalize("NFKC", _stream_safe(text[: 4 * max_chars])).casefold()
    return text[:max_chars]


def check_limits(config: FeatureConfig) -> FeatureConfig:
    """``config`` itself, after checking that the kernels' per-text feature bound stays under
    MAX_FEATURE_BOUND (a ConfigError, a ValueError, names the fields otherwise).

    FeatureConfig checks each field's type and range but not their product; a config read from
    a model file may hold anything JSON can, so this runs before any text reaches the kernels.
    """
    n_char = config.char_ngram_max - config.char_ngram_min + 1 if config.char_ngram_max else 0
    per_byte = config.word_ngrams + config.skip_grams + 3 * n_char
    bound = 4 * config.max_chars * per_byte + 1  # _kf.feature_bound of the longest text
    if bound > MAX_FEATURE_BOUND:
        raise ConfigError(
            f"FeatureConfig allows {bound} features per text (limit {MAX_FEATURE_BOUND}): "
            "lower max_chars, the n-gram orders or skip_grams"
        )
    return config


def encode_texts(texts: Sequence[str], config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Normalise and UTF-8-encode ``texts`` into one byte buffer and int64 offsets (n + 1,).

    Lone surrogates are kept (encoded as their 3-byte form) rather than raising.
    """
    return encode_checked(texts, check_limits(config))


def encode_checked(texts: Sequence[str], config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """:func:`encode_texts` for a ``config`` that :func:`check_limits` has passed (a Projector
    checks its config once, when it prepares), so the per-batch path checks it no more."""
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got one str: wrap it in a list")
    encoded = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is {type(text).__name__}, not str")
        encoded.append(normalize(text, config.max_chars).encode("utf-8", "surrogatepass"))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    buf = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    return buf, offsets


def kernel_params(config: FeatureConfig) -> np.ndarray:
    """The int64 parameter vector the kernels read (layout fixed by ``_kf.P_*``)."""
    check_limits(config)
    params = np.zeros(_kf.N_PARAMS, dtype=np.int64)
    params[_kf.P_WORD_NGRAMS] = config.word_ngrams
    params[_kf.P_SKIP_GRAMS] = config.skip_grams
    params[_kf.P_CHAR_MIN] = config.char_ngram_min
    params[_kf.P_CHAR_MAX] = config.char_ngram_max
    params[_kf.P_WORD_WEIGHT] = config.word_weight
    params[_kf.P_CHAR_WEIGHT] = config.char_weight
    params[_kf.P_SUBLINEAR] = int(config.sublinear)
    params[_kf.P_MAX_TOKENS] = config.max_tokens
    return params


def featurize(
    texts: Sequence[str], config: FeatureConfig | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hashed features of each text: (hashes uint64, weights int64, offsets int64 (n + 1,)).

    Text i's features are ``hashes[offsets[i]:offsets[i + 1]]``. For inspection and tests; the
    projection computes the same features without materialising them.
    """
    config = config or FeatureConfig()
    params = kernel_params(config)
    buf, offsets = encode_checked(texts, config)
    return _kf.featurize_batch(buf, offsets, class_table(), params)


def token_counts(texts: Sequence[str], config: FeatureConfig | None = None) -> np.ndarray:
    """Tokens per text (int64, at most ``config.max_tokens``): how long the texts are as the
    token design reads them."""
    config = config or FeatureConfig()
    params = kernel_params(config)
    buf, offsets = encode_checked(texts, config)
    return _kf.count_tokens(buf, offsets, class_table(), params)


def tokens(text: str, config: FeatureConfig | None = None) -> list[str]:
    """The tokens the kernels see in ``text`` (after normalisation), for display and tests."""
    config = config or FeatureConfig()
    buf, offsets = encode_texts([text], config)
    starts, ends = _kf.token_byte_spans(buf, offsets[1], class_table(), config.max_tokens)
    raw = buf.tobytes()
    return [raw[s:e].decode("utf-8", "surrogatepass") for s, e in zip(starts, ends, strict=True)]
