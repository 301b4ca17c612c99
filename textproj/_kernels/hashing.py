"""Fixed 64-bit hashing: xxHash64 over UTF-8 bytes, and mixers to combine hashes.

Everything a model depends on is hashed here, with fixed constants, so features and bits are
identical in every process and on every platform (never Python's salted ``hash()``).
"""

import numpy as np
from numba import njit, uint64

MASK64 = 0xFFFFFFFFFFFFFFFF

_P1 = uint64(0x9E3779B185EBCA87)
_P2 = uint64(0xC2B2AE3D27D4EB4F)
_P3 = uint64(0x165667B19E3779F9)
_P4 = uint64(0x85EBCA77C2B2AE63)
_P5 = uint64(0x27D4EB2F165667C5)
_GOLDEN = uint64(0x9E3779B97F4A7C15)
_M1 = uint64(0xFF51AFD7ED558CCD)
_M2 = uint64(0xC4CEB9FE1A85EC53)

# One namespace per feature kind, so a word and a character n-gram with the same bytes never
# share a hash. Changing any of these changes every model: the golden-vector test guards them.
# Word n-grams and skip-grams add their order or gap (< 256) to their base.
NS_WORD = 0x5EED0001
NS_WORD_NGRAM = 0x5EED0100
NS_SKIP_GRAM = 0x5EED0200
NS_CHAR_NGRAM = 0x5EED0300
NS_PROJECTION = 0x5EED0400


@njit(inline="always")
def _rotl(x, r):
    return (x << uint64(r)) | (x >> uint64(64 - r))


@njit(inline="always")
def _read64(buf, i):
    v = uint64(0)
    for k in range(8):
        v |= uint64(buf[i + k]) << uint64(8 * k)
    return v


@njit(inline="always")
def _read32(buf, i):
    v = uint64(0)
    for k in range(4):
        v |= uint64(buf[i + k]) << uint64(8 * k)
    return v


@njit(inline="always")
def _round(acc, lane):
    acc = acc + lane * _P2
    acc = _rotl(acc, 31)
    return acc * _P1


@njit(inline="always")
def _merge(acc, val):
    acc = acc ^ _round(uint64(0), val)
    return acc * _P1 + _P4


@njit(cache=True, nogil=True)
def xxh64(buf, start, end, seed):
    """xxHash64 of ``buf[start:end]`` (a uint8 array) with a 64-bit ``seed``."""
    seed = uint64(seed)
    length = end - start
    i = start
    if length >= 32:
        v1 = seed + _P1 + _P2
        v2 = seed + _P2
        v3 = seed
        v4 = seed - _P1
        limit = end - 32
        while i <= limit:
            v1 = _round(v1, _read64(buf, i))
            v2 = _round(v2, _read64(buf, i + 8))
            v3 = _round(v3, _read64(buf, i + 16))
            v4 = _round(v4, _read64(buf, i + 24))
            i += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = seed + _P5
    h = h + uint64(length)
    while i + 8 <= end:
        k1 = _round(uint64(0), _read64(buf, i))
        h = h ^ k1
        h = _rotl(h, 27) * _P1 + _P4
        i += 8
    if i + 4 <= end:
        h = h ^ (_read32(buf, i) * _P1)
        h = _rotl(h, 23) * _P2 + _P3
        i += 4
    while i < end:
        h = h ^ (uint64(buf[i]) * _P5)
        h = _rotl(h, 11) * _P1
        i += 1
    h = h ^ (h >> uint64(33))
    h = h * _P2
    h = h ^ (h >> uint64(29))
    h = h * _P3
    return h ^ (h >> uint64(32))


@njit(inline="always")
def fmix64(x):
    """MurmurHash3's 64-bit finaliser: a bijective mixer with full avalanche."""
    x = x ^ (x >> uint64(33))
    x = x * _M1
    x = x ^ (x >> uint64(33))
    x = x * _M2
    return x ^ (x >> uint64(33))


@njit(inline="always")
def combine(h, x):
    """Order-dependent combination of two 64-bit hashes (used for n-grams of tokens)."""
    return fmix64(h ^ (x + _GOLDEN + (h << uint64(6)) + (h >> uint64(2))))


@njit(cache=True)
def projection_keys(seed, n_words):
    """One 64-bit key per output word of the projection, derived from ``seed``.

    Word ``w`` of feature ``h``'s random sign row is ``fmix64(h ^ keys[w])``: each entry of the
    projection matrices R_k is computed from (feature, k, bit) and never stored.
    """
    keys = np.empty(n_words, dtype=np.uint64)
    base = combine(uint64(NS_PROJECTION), uint64(seed))
    for w in range(n_words):
        keys[w] = combine(base, uint64(w))
    return keys
