"""Python side of text → features: normalisation, UTF-8 batching, and the code point classes.

The numba kernels see only bytes, offsets and a class table; this module prepares them and
raises the user-facing errors.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence

import numpy as np

from textproj._kernels import features as _kf
from textproj.config import FeatureConfig

CLASS_TABLE_SIZE = 0x30000  # covers every script in use; above it, see _kf.char_class

_CJK_RANGES = (
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x2FFFF),  # CJK extensions B and later
)

_VARIATION_SELECTORS = (0xFE00, 0xFE0F)  # emoji/text presentation: not part of any word


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


def normalize(text: str, max_chars: int) -> str:
    """NFKC then casefold, cut to ``max_chars`` code points (cut before too, to bound the work)."""
    text = unicodedata.normalize("NFKC", text[: 4 * max_chars]).casefold()
    return text[:max_chars]


def encode_texts(texts: Sequence[str], config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Normalise and UTF-8-encode ``texts`` into one byte buffer and int64 offsets (n + 1,).

    Lone surrogates are kept (encoded as their 3-byte form) rather than raising.
    """
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
    buf, offsets = encode_texts(texts, config)
    return _kf.featurize_batch(buf, offsets, class_table(), kernel_params(config))


def tokens(text: str, config: FeatureConfig | None = None) -> list[str]:
    """The tokens the kernels see in ``text`` (after normalisation), for display and tests."""
    config = config or FeatureConfig()
    buf, offsets = encode_texts([text], config)
    starts, ends = _kf.token_byte_spans(buf, offsets[1], class_table(), config.max_tokens)
    raw = buf.tobytes()
    return [raw[s:e].decode("utf-8", "surrogatepass") for s, e in zip(starts, ends, strict=True)]
