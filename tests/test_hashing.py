"""The numba xxHash64 and mixers in ``textproj._kernels.hashing``.

xxh64 is checked against hard-coded reference values (so these tests stand without the
``xxhash`` package) and, when ``xxhash`` is installed, against it on many inputs, offsets and
seeds. fmix64, combine and projection_keys are checked against plain-Python versions of their
documented formulas.
"""

from __future__ import annotations

import numpy as np
import pytest

from textproj._kernels import hashing as kh

MASK = (1 << 64) - 1

# (data, seed, xxh64) from the reference implementation (xxhash 3.x, XXH64).
KNOWN_VECTORS = [
    (b"", 0, 0xEF46DB3751D8E999),
    (b"", 1, 0xD5AFBA1336A3BE4B),
    (b"a", 0, 0xD24EC4F1A98C6E5B),
    (b"abc", 0, 0x44BC2CF5AD770999),
    (b"123456789", 0, 0x8CB841DB40E6AE83),
    (b"xxhash", 0, 0x32DD38952C4BC720),
    (b"Nobody inspects the spammish repetition", 0, 0xFBCEA83C8A378BF1),
    (b"The quick brown fox jumps over the lazy dog", 0, 0x0B242D361FDA71BC),
    (b"The quick brown fox jumps over the lazy dog", 0x9E3779B97F4A7C15, 0x7CFAC66832F66B74),
    (bytes(range(32)), 0, 0xCBF59C5116FF32B4),
    (bytes(range(100)), MASK, 0x09A991A091C9F6D7),
    ("привет".encode(), 0x5EED0001, 0xD3D8791D06CF9D31),
]


def _xxh64(data: bytes, seed: int, start: int = 0, end: int | None = None) -> int:
    buf = np.frombuffer(data, dtype=np.uint8) if data else np.zeros(0, dtype=np.uint8)
    end = len(data) if end is None else end
    return int(kh.xxh64(buf, start, end, np.uint64(seed)))


@pytest.mark.parametrize(("data", "seed", "expected"), KNOWN_VECTORS)
def test_xxh64_known_vectors(data: bytes, seed: int, expected: int) -> None:
    assert _xxh64(data, seed) == expected


@pytest.mark.parametrize(("data", "seed", "expected"), KNOWN_VECTORS)
def test_xxh64_known_vectors_inside_a_larger_buffer(data: bytes, seed: int, expected: int) -> None:
    # Only buf[start:end] is hashed: the bytes around it must not leak in.
    padded = b"\xff" * 13 + data + b"\x00\xaa" * 9
    assert _xxh64(padded, seed, 13, 13 + len(data)) == expected


def test_xxh64_depends_on_every_byte_and_on_the_seed() -> None:
    data = bytearray(b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ")
    base = _xxh64(bytes(data), 0)
    seen = {base}
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        seen.add(_xxh64(bytes(flipped), 0))
    seen.add(_xxh64(bytes(data), 1))
    seen.add(_xxh64(bytes(data), 1 << 63))
    assert len(seen) == len(data) + 3


def _random_cases(n: int) -> list[tuple[bytes, int, int, int]]:
    """(buffer, start, end, seed) covering every length 0..80 and every tail-length branch."""
    rng = np.random.default_rng(20240611)
    seeds = [0, 1, 0x5EED0004, (1 << 63) - 1, 1 << 63, MASK]
    cases = []
    for i in range(n):
        length = i % 81 if i < 3 * 81 else int(rng.integers(81, 600))
        pad_lo, pad_hi = (int(x) for x in rng.integers(0, 20, size=2))
        buf = rng.integers(0, 256, size=pad_lo + length + pad_hi, dtype=np.uint8).tobytes()
        seed = seeds[i % len(seeds)] if i % 3 else int(rng.integers(0, MASK, dtype=np.uint64))
        cases.append((buf, pad_lo, pad_lo + length, seed))
    return cases


def test_xxh64_matches_xxhash_package() -> None:
    xxhash = pytest.importorskip("xxhash")
    cases = _random_cases(400)
    for buf, start, end, seed in cases:
        expected = xxhash.xxh64_intdigest(buf[start:end], seed=seed)
        assert _xxh64(buf, seed, start, end) == expected, (buf[start:end].hex(), seed)


def test_xxh64_matches_xxhash_on_utf8_text() -> None:
    xxhash = pytest.importorskip("xxhash")
    texts = ["", "a", "héllo", "привет мир", "東京タワー", "مرحبا", "👍🏽🎉", "x" * 31, "y" * 32]
    for text in texts:
        data = text.encode("utf-8")
        for seed in (0, kh.NS_WORD, kh.NS_CHAR_NGRAM ^ (3 << 32)):
            assert _xxh64(data, seed) == xxhash.xxh64_intdigest(data, seed=seed)


# Plain-Python versions of the mixers, written from their docstrings / MurmurHash3.


def _py_fmix64(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & MASK
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & MASK
    return x ^ (x >> 33)


def _py_combine(h: int, x: int) -> int:
    return _py_fmix64(h ^ ((x + 0x9E3779B97F4A7C15 + ((h << 6) & MASK) + (h >> 2)) & MASK))


def test_fmix64_matches_murmur3_finaliser() -> None:
    rng = np.random.default_rng(1)
    values = [0, 1, 2, MASK, 1 << 63, *(int(v) for v in rng.integers(0, MASK, 200, np.uint64))]
    for v in values:
        assert int(kh.fmix64(np.uint64(v))) == _py_fmix64(v)
    assert _py_fmix64(0) == 0
    # Known output of MurmurHash3's fmix64 on 1.
    assert _py_fmix64(1) == 0xB456BCFC34C2CB2C


def test_combine_matches_formula_and_is_order_dependent() -> None:
    rng = np.random.default_rng(2)
    pairs = rng.integers(0, MASK, size=(100, 2), dtype=np.uint64)
    for h, x in pairs:
        got = int(kh.combine(np.uint64(h), np.uint64(x)))
        assert got == _py_combine(int(h), int(x))
        if h != x:
            assert got != int(kh.combine(np.uint64(x), np.uint64(h)))


@pytest.mark.parametrize("seed", [0, 3, 12345, (1 << 63) - 1])
def test_projection_keys(seed: int) -> None:
    keys = kh.projection_keys(np.uint64(seed), 40)
    assert keys.dtype == np.uint64 and keys.shape == (40,)
    base = _py_combine(kh.NS_PROJECTION, seed)
    assert [int(k) for k in keys] == [_py_combine(base, w) for w in range(40)]
    assert len(set(keys.tolist())) == 40
    # A prefix of the keys does not depend on how many are asked for.
    assert np.array_equal(kh.projection_keys(np.uint64(seed), 7), keys[:7])


def test_namespaces_are_distinct() -> None:
    names = [kh.NS_WORD, kh.NS_WORD_NGRAM, kh.NS_SKIP_GRAM, kh.NS_CHAR_NGRAM, kh.NS_PROJECTION]
    assert len(set(names)) == len(names)
