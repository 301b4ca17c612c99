"""``Projector``: bits against a plain-numpy reference, invariants, scripts, caps, concurrency.

The reference projection below is written from the documented definition only: features from
``featurize``, the random sign word of feature h for output word w is ``fmix64(h ^ keys[w])``
with ``keys[w] = combine(combine(NS_PROJECTION, seed), w)``, bit j is bit j % 64 of word
j // 64, and the bit is 1 iff the weighted sum of its +1/-1 signs is > 0.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from textproj._kernels.hashing import NS_PROJECTION
from textproj.config import FeatureConfig
from textproj.corpora import load_corpus
from textproj.errors import ConfigError
from textproj.features import featurize, normalize, tokens
from textproj.projector import PARALLEL_MIN_TEXTS, Projector

MASK = (1 << 64) - 1
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)

SCRIPT_TEXTS = {
    "latin": "Please block my bank card, it was stolen",
    "cyrillic": "Пожалуйста, заблокируйте мою банковскую карту",
    "cjk": "请冻结我的银行卡，它被偷了",
    "japanese": "銀行カードを止めてください",
    "arabic": "من فضلك أوقف بطاقتي المصرفية، لقد سرقت",
    "emoji": "💳🚫😱🏦",
}
EMPTY_TEXTS = ["", " ", "   \t\n\r ", "\u00a0\u3000\u2003", "\u200b\u200b"]


# ---------------------------------------------------------------------------------------------
# Reference implementation
# ---------------------------------------------------------------------------------------------


def _np_fmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x ^ (x >> _S33)
        x = x * _M1
        x = x ^ (x >> _S33)
        x = x * _M2
        return x ^ (x >> _S33)


def _py_fmix64(x: int) -> int:
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & MASK
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & MASK
    return x ^ (x >> 33)


def _py_combine(h: int, x: int) -> int:
    return _py_fmix64(h ^ ((x + 0x9E3779B97F4A7C15 + ((h << 6) & MASK) + (h >> 2)) & MASK))


def reference_bits(
    texts: list[str], num_projections: int, bits_per_projection: int, seed: int,
    config: FeatureConfig | None = None,
) -> np.ndarray:  # fmt: skip
    """uint8 (n, T*d) bits computed in numpy from ``featurize`` and the definition above."""
    n_bits = num_projections * bits_per_projection
    n_words = -(-n_bits // 64)
    base = _py_combine(NS_PROJECTION, seed)
    keys = np.array([_py_combine(base, w) for w in range(n_words)], dtype=np.uint64)
    hashes, weights, offsets = featurize(texts, config or FeatureConfig())
    bit = np.arange(n_bits)
    word_of_bit = bit // 64
    shift = (bit % 64).astype(np.uint64)
    out = np.zeros((len(texts), n_bits), dtype=np.uint8)
    for i in range(len(texts)):
        h = hashes[offsets[i] : offsets[i + 1]]
        w = weights[offsets[i] : offsets[i + 1]].astype(np.int64)
        sign_words = _np_fmix64(h[:, None] ^ keys[None, :])  # (features, n_words)
        plus = (sign_words[:, word_of_bit] >> shift[None, :]) & np.uint64(1)
        score = (np.where(plus == 1, 1, -1) * w[:, None]).sum(axis=0)
        out[i] = score > 0
    return out


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def banking() -> list[str]:
    return load_corpus("banking77", "test").texts


@pytest.fixture(scope="module")
def mixed_texts(banking: list[str]) -> list[str]:
    """Corpus texts, every script, empties, and long repetitive texts (deep counters)."""
    long_repeat = " ".join(["transfer money", "to my account", "please"] * 120)
    long_varied = " ".join(banking[:60])
    return [
        *banking[:40],
        *SCRIPT_TEXTS.values(),
        *EMPTY_TEXTS[:2],
        "!?...",
        "x",
        "ＨＥＬＬＯ Straße café",
        long_repeat,
        long_varied,
    ]


# ---------------------------------------------------------------------------------------------
# Agreement with the reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_projections", "bits_per_projection", "seed"),
    [(80, 14, 0), (16, 16, 3), (7, 9, 12345), (1, 1, 2**63 - 1), (3, 50, 42), (5, 13, 7)],
)
def test_transform_matches_reference(
    mixed_texts: list[str], num_projections: int, bits_per_projection: int, seed: int
) -> None:
    projector = Projector(num_projections, bits_per_projection, seed=seed, n_jobs=1)
    got = projector.transform(mixed_texts)
    expected = reference_bits(mixed_texts, num_projections, bits_per_projection, seed)
    assert got.shape == expected.shape == (len(mixed_texts), num_projections * bits_per_projection)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "config",
    [
        FeatureConfig(sublinear=True),
        FeatureConfig(word_weight=7, char_weight=3),  # weights spanning several bit groups
        FeatureConfig(word_weight=200, char_weight=255),  # the largest allowed weights
        FeatureConfig(word_ngrams=4, skip_grams=3, char_ngram_min=2, char_ngram_max=6),
        FeatureConfig(char_ngram_max=0),
        FeatureConfig(word_weight=0),  # only character n-grams count
        FeatureConfig(sublinear=True, word_weight=5, char_weight=2, max_tokens=50),
    ],
    ids=["sublinear", "weights7-3", "weights-max", "wide", "no-char", "no-word", "sub-capped"],
)
def test_transform_matches_reference_for_feature_configs(
    mixed_texts: list[str], config: FeatureConfig
) -> None:
    projector = Projector(10, 13, features=config, seed=5, n_jobs=1)
    got = projector.transform(mixed_texts)
    np.testing.assert_array_equal(got, reference_bits(mixed_texts, 10, 13, 5, config))


def test_sublinear_weights_above_255_match_reference() -> None:
    config = FeatureConfig(word_weight=255, sublinear=True, char_ngram_max=0)
    texts = ["card card", "a b a b a b a b", "transfer transfer transfer money"]
    _, weights, _ = featurize(texts, config)
    assert weights.max() > 255  # the case this test is about
    got = Projector(4, 16, features=config, seed=1, n_jobs=1).transform(texts)
    np.testing.assert_array_equal(got, reference_bits(texts, 4, 16, 1, config))


# ---------------------------------------------------------------------------------------------
# Shapes, packing, per-token bits
# ---------------------------------------------------------------------------------------------


def test_output_shapes_dtypes_and_packing(mixed_texts: list[str]) -> None:
    projector = Projector(9, 15, seed=2, n_jobs=1)  # 135 bits: 3 words, 7 spare bits
    bits = projector.transform(mixed_texts)
    assert bits.dtype == np.uint8 and bits.shape == (len(mixed_texts), 135)
    assert set(np.unique(bits).tolist()) == {0, 1}
    words = projector.transform_words(mixed_texts)
    assert words.dtype == np.uint64 and words.shape == (len(mixed_texts), 3)
    assert not np.any(words[:, 2] >> np.uint64(135 - 128))  # bits past T*d are zero
    packed = projector.transform_packed(mixed_texts)
    assert packed.dtype == np.uint8 and packed.shape == (len(mixed_texts), 17)
    np.testing.assert_array_equal(packed, np.packbits(bits, axis=1, bitorder="little"))
    unpacked = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, :135]
    np.testing.assert_array_equal(unpacked, bits)


def test_empty_batch() -> None:
    projector = Projector(4, 8)
    assert projector.transform([]).shape == (0, 32)
    assert projector.transform_words([]).shape == (0, 1)
    bits, offsets = projector.transform_tokens([])
    assert bits.shape == (0, 32) and offsets.tolist() == [0]


def test_empty_batch_packed() -> None:
    assert Projector(4, 8).transform_packed([]).shape == (0, 4)


def test_bits_are_a_prefix_across_widths(mixed_texts: list[str]) -> None:
    # Bit j depends only on (seed, j): a narrower projector gives a prefix of a wider one.
    wide = Projector(80, 14, seed=9, n_jobs=1).transform(mixed_texts)
    narrow = Projector(10, 7, seed=9, n_jobs=1).transform(mixed_texts)
    np.testing.assert_array_equal(narrow, wide[:, :70])


@pytest.mark.parametrize("config", [FeatureConfig(), FeatureConfig(sublinear=True)])
def test_transform_tokens_rows_are_single_token_projections(
    mixed_texts: list[str], config: FeatureConfig
) -> None:
    texts = mixed_texts[:-2]  # the long texts add time, not cases
    projector = Projector(16, 16, features=config, seed=3, n_jobs=1)
    bits, offsets = projector.transform_tokens(texts)
    counts = [len(tokens(t, config)) for t in texts]
    assert offsets.dtype == np.int64 and offsets.tolist() == np.cumsum([0, *counts]).tolist()
    assert bits.dtype == np.uint8 and bits.shape == (offsets[-1], 256)
    assert offsets[-1] > 300
    # A token's own features are the word and its character n-grams: the same as the whole-text
    # features of the token alone once word n-grams and skip-grams are switched off.
    single = dataclasses.replace(config, word_ngrams=1, skip_grams=0)
    all_tokens = [tok for t in texts for tok in tokens(t, config)]
    assert all(normalize(tok, config.max_chars) == tok for tok in all_tokens)
    alone = Projector(16, 16, features=single, seed=3, n_jobs=1).transform(all_tokens)
    np.testing.assert_array_equal(bits, alone)
    np.testing.assert_array_equal(bits, reference_bits(all_tokens, 16, 16, 3, single))
    words, word_offsets = projector.transform_tokens_words(texts)
    np.testing.assert_array_equal(word_offsets, offsets)
    np.testing.assert_array_equal(
        np.unpackbits(words.view(np.uint8), axis=1, bitorder="little"), bits
    )


def test_repeated_tokens_are_projected_once_and_copied_exactly() -> None:
    """Each distinct token of a batch is projected once; every occurrence gets its bits, and
    tokens that share bytes without being equal ("ab", "abc", "ba") keep their own."""
    texts = ["ab ab abc ba ab", "abc ab", "", "ba ba ba", "xyz ab"] * 50
    projector = Projector(16, 16, seed=4, n_jobs=1)
    bits, _ = projector.transform_tokens(texts)
    all_tokens = [tok for t in texts for tok in tokens(t)]
    single = FeatureConfig(word_ngrams=1, skip_grams=0)
    alone = Projector(16, 16, features=single, seed=4, n_jobs=1).transform(all_tokens)
    np.testing.assert_array_equal(bits, alone)
    distinct = {tok: bits[i] for i, tok in enumerate(all_tokens)}
    assert len({row.tobytes() for row in distinct.values()}) == len(distinct) == 4
    for threads in (2, 3):  # chunks of the batch keep their own table
        again = Projector(16, 16, seed=4, n_jobs=threads).transform_tokens(texts)
        np.testing.assert_array_equal(again[0], bits)


# ---------------------------------------------------------------------------------------------
# Same bits everywhere: threads, processes, hash seeds, pure Python
# ---------------------------------------------------------------------------------------------

_CHILD = """
import json, sys
from textproj.projector import Projector
texts = json.load(sys.stdin)
packed = Projector(80, 14, seed=11, n_jobs=1).transform_packed(texts)
bits, offsets = Projector(16, 16, seed=3, n_jobs=1).transform_tokens(texts)
print(json.dumps({"packed": [bytes(r).hex() for r in packed], "tokens": bits.sum(axis=1).tolist(),
                  "offsets": offsets.tolist()}))
"""


def _run_child(texts: list[str], **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _CHILD],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _in_process(texts: list[str]) -> dict:
    packed = Projector(80, 14, seed=11, n_jobs=1).transform_packed(texts)
    bits, offsets = Projector(16, 16, seed=3, n_jobs=1).transform_tokens(texts)
    return {
        "packed": [bytes(r).hex() for r in packed],
        "tokens": bits.sum(axis=1).tolist(),
        "offsets": offsets.tolist(),
    }


@pytest.mark.parametrize("hash_seed", ["0", "4242"])
def test_same_bits_in_a_process_with_another_hash_seed(
    mixed_texts: list[str], hash_seed: str
) -> None:
    assert _run_child(mixed_texts, PYTHONHASHSEED=hash_seed) == _in_process(mixed_texts)


ASCII_TEXTS = ["Hello world", "how do I top up my card?", "", "x", "a b a b c"]


def test_same_bits_with_numba_jit_disabled() -> None:
    # The kernels interpreted as plain Python/numpy give the same bits.
    assert _run_child(ASCII_TEXTS, NUMBA_DISABLE_JIT="1") == _in_process(ASCII_TEXTS)


def test_same_bits_with_numba_jit_disabled_non_ascii() -> None:
    texts = ["Привет мир", "東京 👍🏽"]
    assert _run_child(texts, NUMBA_DISABLE_JIT="1") == _in_process(texts)


def test_parallel_equals_serial(banking: list[str]) -> None:
    texts = banking[: PARALLEL_MIN_TEXTS + 300]
    serial = Projector(80, 14, n_jobs=1).transform_words(texts)
    for n_jobs in (-1, 2, 3, 7):
        np.testing.assert_array_equal(
            Projector(80, 14, n_jobs=n_jobs).transform_words(texts), serial
        )
    tok_serial, off_serial = Projector(16, 16, n_jobs=1).transform_tokens_words(texts)
    tok_par, off_par = Projector(16, 16, n_jobs=3).transform_tokens_words(texts)
    np.testing.assert_array_equal(off_par, off_serial)
    np.testing.assert_array_equal(tok_par, tok_serial)


def test_thread_safety(banking: list[str]) -> None:
    texts = banking[: max(2 * PARALLEL_MIN_TEXTS, 2048)]
    assert len(texts) >= PARALLEL_MIN_TEXTS
    expected = Projector(80, 14, n_jobs=1).transform(texts)
    expected_tok = Projector(16, 16, n_jobs=1).transform_tokens(texts)
    shared = Projector(80, 14, n_jobs=4)  # one object, used from every thread at once
    shared_tok = Projector(16, 16, n_jobs=4)
    start = threading.Barrier(10)

    def whole() -> np.ndarray:
        start.wait(timeout=60)
        return shared.transform(texts)

    def per_token() -> tuple[np.ndarray, np.ndarray]:
        start.wait(timeout=60)
        return shared_tok.transform_tokens(texts)

    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(whole) for _ in range(8)]
        futures_tok = [pool.submit(per_token) for _ in range(2)]
        results = [f.result(timeout=300) for f in futures]
        results_tok = [f.result(timeout=300) for f in futures_tok]
    for got in results:
        np.testing.assert_array_equal(got, expected)
    for bits, offsets in results_tok:
        np.testing.assert_array_equal(offsets, expected_tok[1])
        np.testing.assert_array_equal(bits, expected_tok[0])


def _fork_worker(args: tuple[list[str], int]) -> np.ndarray:
    texts, seed = args
    return Projector(80, 14, seed=seed, n_jobs=2).transform_packed(texts)


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
def test_fork_safety_after_parallel_transform(banking: list[str]) -> None:
    texts = banking[: PARALLEL_MIN_TEXTS + 500]
    # Run the threaded path in the parent first, so the pool exists when the children fork.
    expected = {s: Projector(80, 14, seed=s, n_jobs=2).transform_packed(texts) for s in (0, 1)}
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        pending = pool.map_async(_fork_worker, [(texts, 0), (texts, 1), (texts, 0)])
        results = pending.get(timeout=120)  # a deadlocked child fails here instead of hanging
    for seed, got in zip((0, 1, 0), results, strict=True):
        np.testing.assert_array_equal(got, expected[seed])
    # The parent's pool still works after the fork.
    np.testing.assert_array_equal(
        Projector(80, 14, seed=0, n_jobs=2).transform_packed(texts), expected[0]
    )


# ---------------------------------------------------------------------------------------------
# Locality and randomness
# ---------------------------------------------------------------------------------------------


def _typo(words: list[str], rng: np.random.Generator) -> list[str]:
    """Swap two adjacent letters inside one word of 4+ letters (append a letter if none)."""
    candidates = [k for k, w in enumerate(words) if len(w) >= 4]
    if not candidates:
        return [*words[:-1], words[-1] + "x"]
    k = candidates[int(rng.integers(len(candidates)))]
    w = words[k]
    j = int(rng.integers(len(w) - 1))
    return [*words[:k], w[:j] + w[j + 1] + w[j] + w[j + 2 :], *words[k + 1 :]]


def test_locality_near_duplicates_vs_unrelated(banking: list[str]) -> None:
    rng = np.random.default_rng(0)
    sample = [banking[i] for i in rng.choice(len(banking), 200, replace=False)]
    vocab = sorted({w for t in banking for w in t.split()})
    changed_word, typos = [], []
    for text in sample:
        words = text.split()
        k = int(rng.integers(len(words)))
        changed_word.append(
            " ".join([*words[:k], vocab[int(rng.integers(len(vocab)))], *words[k + 1 :]])
        )
        typos.append(" ".join(_typo(words, rng)))
    projector = Projector(80, 14, n_jobs=1)
    n_bits = projector.n_bits
    base = projector.transform(sample)

    # Unrelated: pairs of different texts (after normalisation).
    i, j = np.triu_indices(len(sample), k=1)
    keep = np.array(
        [
            normalize(sample[a], 10**6) != normalize(sample[b], 10**6)
            for a, b in zip(i, j, strict=True)
        ]
    )
    unrelated = (base[i[keep]] != base[j[keep]]).sum(axis=1).mean()
    assert 0.40 * n_bits < unrelated < 0.55 * n_bits  # about d/2 of each d-bit projection

    for variant in (changed_word, typos):
        near = (base != projector.transform(variant)).sum(axis=1).mean()
        assert 0 < near < 0.5 * unrelated
    # Case changes vanish in normalisation.
    np.testing.assert_array_equal(projector.transform([t.upper() for t in sample]), base)
    np.testing.assert_array_equal(projector.transform([t.title() for t in sample]), base)


def test_different_seeds_give_independent_bits(banking: list[str]) -> None:
    texts = banking[:200]
    a = Projector(80, 14, seed=0, n_jobs=1).transform(texts)
    for seed in (1, 2**40 + 17):
        b = Projector(80, 14, seed=seed, n_jobs=1).transform(texts)
        per_text = (a != b).mean(axis=1)
        assert 0.47 < per_text.mean() < 0.53
        assert per_text.min() > 0.35 and per_text.max() < 0.65
    # Each bit is set for about half of the texts (no stuck bits).
    assert 0.4 < a.mean() < 0.6
    assert not np.any(a.all(axis=0)) and not np.any((~a.astype(bool)).all(axis=0))


# ---------------------------------------------------------------------------------------------
# Scripts, normalisation, empties
# ---------------------------------------------------------------------------------------------


def test_every_script_gives_nonzero_distinct_bits() -> None:
    projector = Projector(80, 14, n_jobs=1)
    bits = projector.transform(list(SCRIPT_TEXTS.values()))
    assert np.all(bits.sum(axis=1) > 0)
    for a in range(len(bits)):
        for b in range(a + 1, len(bits)):
            assert (bits[a] != bits[b]).sum() > 0.3 * projector.n_bits


@pytest.mark.parametrize(
    "variants",
    [
        ["ＨＥＬＬＯ", "hello", "HELLO", "Hello"],
        ["ﬁnance", "finance", "FINANCE"],
        ["Straße", "STRASSE", "strasse"],
        ["café", "cafe\u0301", "CAFÉ"],
        ["①②", "12"],
    ],
)
def test_nfkc_casefold_equivalents_have_equal_bits(variants: list[str]) -> None:
    projector = Projector(80, 14, n_jobs=1)
    bits = projector.transform(variants)
    assert bits[0].any()
    for row in bits[1:]:
        np.testing.assert_array_equal(row, bits[0])
    assert len({tuple(tokens(v)) for v in variants}) == 1
    assert not np.array_equal(projector.transform(["help"])[0], projector.transform(["hello"])[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("東京タワー", ["東", "京", "タ", "ワ", "ー"]),
        ("我的银行卡丢了", ["我", "的", "银", "行", "卡", "丢", "了"]),
        ("abc東京def", ["abc", "東", "京", "def"]),
        ("I ❤ NY 👍🏽🎉", ["i", "❤", "ny", "👍", "🏽", "🎉"]),
        ("❤\ufe0fabc", ["❤", "abc"]),
        ("👨\u200d👩\u200d👧", ["👨", "👩", "👧"]),
        ("مرحبا بالعالم، كيف حالك؟", ["مرحبا", "بالعالم", "كيف", "حالك"]),
        ("Привет, МИР!", ["привет", "мир"]),
        ("$5+3=8", ["$", "5", "+", "3", "=", "8"]),
        ("3.14% e-mail don't", ["3", "14", "e", "mail", "don", "t"]),
        ("Zoë\u00a0Ünal", ["zoë", "ünal"]),
    ],
)
def test_tokens(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


@pytest.mark.parametrize("text", [*EMPTY_TEXTS, "!?.,;:…", "()[]{}«»"])
def test_texts_without_tokens_give_zero_bits(text: str) -> None:
    projector = Projector(80, 14, n_jobs=1)
    assert tokens(text) == []
    hashes, _, offsets = featurize([text])
    assert len(hashes) == 0 and offsets.tolist() == [0, 0]
    assert not projector.transform([text]).any()
    assert not projector.transform_packed([text]).any()
    bits, offsets = projector.transform_tokens([text, "ok", text])
    assert offsets.tolist() == [0, 0, 1, 1] and bits.shape == (1, projector.n_bits)


# ---------------------------------------------------------------------------------------------
# Caps on huge texts
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def huge_text(banking: list[str]) -> tuple[str, list[str]]:
    """About 1 MB of lowercase alphabetic words (so split() == tokens()), and its words."""
    words = [w for t in banking for w in t.lower().split() if w.isascii() and w.isalpha()]
    text = " ".join(words * (1_000_000 // (len(" ".join(words)) + 1) + 1))[:1_000_000]
    return text, text.split()


def _feature_count(texts: list[str], config: FeatureConfig) -> list[int]:
    return np.diff(featurize(texts, config)[2]).tolist()


def test_huge_text_is_cut_at_max_tokens(huge_text: tuple[str, list[str]]) -> None:
    text, words = huge_text
    config = FeatureConfig()
    assert len(text) >= 1_000_000 and len(words) > 10 * config.max_tokens
    head = " ".join(words[: config.max_tokens])
    assert tokens(text) == words[: config.max_tokens]
    projector = Projector(80, 14, features=config, n_jobs=1)
    np.testing.assert_array_equal(projector.transform([text]), projector.transform([head]))
    n_big, n_head = _feature_count([text, head], config)
    assert n_big == n_head
    n_char_sizes = config.char_ngram_max - config.char_ngram_min + 1
    bound = config.max_tokens * (config.word_ngrams + config.skip_grams) + n_char_sizes * sum(
        len(w) + 1 for w in words[: config.max_tokens]
    )
    assert config.max_tokens < n_big <= bound
    bits, offsets = projector.transform_tokens([text])
    assert offsets.tolist() == [0, config.max_tokens]
    np.testing.assert_array_equal(bits, projector.transform_tokens([head])[0])


def test_huge_text_is_cut_at_max_chars(huge_text: tuple[str, list[str]]) -> None:
    text, _ = huge_text
    config = FeatureConfig(max_tokens=10**6)  # so that max_chars is the binding cap
    head = text[: config.max_chars]
    assert tokens(text, config) == tokens(head, config) == head.split()
    projector = Projector(80, 14, features=config, n_jobs=1)
    np.testing.assert_array_equal(projector.transform([text]), projector.transform([head]))
    n_big, n_head = _feature_count([text, head], config)
    assert n_big == n_head
    n_char_sizes = config.char_ngram_max - config.char_ngram_min + 1
    assert n_big <= config.max_chars * (config.word_ngrams + config.skip_grams + 3 * n_char_sizes)


def test_huge_single_token_and_huge_cjk_text_are_capped() -> None:
    config = FeatureConfig()
    projector = Projector(80, 14, features=config, n_jobs=1)
    blob = "abcdefghij" * 100_000  # 1 MB, no separators: one token cut at max_chars
    assert tokens(blob) == [blob[: config.max_chars]]
    np.testing.assert_array_equal(
        projector.transform([blob]), projector.transform([blob[: config.max_chars]])
    )
    n_big, n_head = _feature_count([blob, blob[: config.max_chars]], config)
    n_char_sizes = config.char_ngram_max - config.char_ngram_min + 1
    assert n_big == n_head <= 2 + n_char_sizes * (config.max_chars + 1)
    cjk = "東京銀行" * 250_000  # every ideograph a token: cut at max_tokens
    assert len(tokens(cjk)) == config.max_tokens
    np.testing.assert_array_equal(
        projector.transform([cjk]), projector.transform([cjk[: config.max_tokens]])
    )


# ---------------------------------------------------------------------------------------------
# Errors and configuration
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["transform", "transform_packed", "transform_tokens"])
def test_bad_texts_are_refused(method: str) -> None:
    projector = Projector(4, 8)
    with pytest.raises(TypeError, match="one str"):
        getattr(projector, method)("just one text")
    with pytest.raises(TypeError, match="text 1 is bytes"):
        getattr(projector, method)(["fine", b"bytes"])
    with pytest.raises(TypeError, match="text 2 is NoneType"):
        getattr(projector, method)(["a", "b", None])
    with pytest.raises(TypeError, match="one str"):
        featurize("just one text")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_projections": 0}, "num_projections"),
        ({"num_projections": -3}, "num_projections"),
        ({"num_projections": 2.0}, "num_projections"),
        ({"bits_per_projection": 0}, "bits_per_projection"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_bad_projector_params_are_refused(kwargs: dict, match: str) -> None:
    params = {"num_projections": 4, "bits_per_projection": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        # Validation may happen in the constructor or on first use; either must raise.
        Projector(
            params["num_projections"], params["bits_per_projection"], seed=params.get("seed", 0)
        ).transform(["hello"])


def test_projector_config_round_trip(mixed_texts: list[str]) -> None:
    config = FeatureConfig(skip_grams=2, sublinear=True, char_ngram_min=2, char_ngram_max=5)
    projector = Projector(12, 10, features=config, seed=77)
    described = json.loads(json.dumps(projector.get_config()))
    rebuilt = Projector.from_config(described, n_jobs=1)
    assert (rebuilt.num_projections, rebuilt.bits_per_projection, rebuilt.seed) == (12, 10, 77)
    assert rebuilt.features == config
    np.testing.assert_array_equal(rebuilt.transform(mixed_texts), projector.transform(mixed_texts))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"word_ngrams": 0},
        {"skip_grams": -1},
        {"char_ngram_min": 1},
        {"char_ngram_min": 4, "char_ngram_max": 3},
        {"word_weight": 256},
        {"word_weight": -1},
        {"char_weight": 300},
        {"max_chars": 0},
        {"max_tokens": 0},
    ],
)
def test_feature_config_validation(kwargs: dict) -> None:
    name = next(iter(kwargs)) if len(kwargs) == 1 else "char_ngram_max"
    with pytest.raises(ValueError, match=f"FeatureConfig.{name}="):
        FeatureConfig(**kwargs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_tokens": "x"}, "FeatureConfig.max_tokens must be an int below 2**31, got 'x'"),
        ({"max_tokens": 2.5}, "FeatureConfig.max_tokens must be an int below 2**31, got 2.5"),
        (
            {"skip_grams": 2**31},
            "FeatureConfig.skip_grams must be an int below 2**31, got 2147483648",
        ),
        ({"max_chars": 100.0}, "FeatureConfig.max_chars must be an int below 2**31, got 100.0"),
        ({"word_ngrams": True}, "FeatureConfig.word_ngrams must be an int below 2**31, got True"),
        ({"sublinear": "yes"}, "FeatureConfig.sublinear must be true or false, got 'yes'"),
    ],
)
def test_feature_config_refuses_a_value_of_the_wrong_kind(changes: dict, message: str) -> None:
    """At construction, as a ConfigError: a string once failed a range check with a TypeError
    (through spaCy's [components.textproj.features] too), and 2.5 or True passed one."""
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        FeatureConfig(**changes)


def test_feature_config_edges_that_are_valid() -> None:
    assert FeatureConfig(char_ngram_min=1, char_ngram_max=0).char_ngram_max == 0  # chars off
    assert FeatureConfig(char_ngram_min=2, char_ngram_max=2).char_ngram_max == 2
    assert FeatureConfig(word_weight=0, char_weight=255, skip_grams=0).skip_grams == 0


@pytest.mark.parametrize(
    "config",
    [FeatureConfig(), FeatureConfig(word_ngrams=3, skip_grams=0, sublinear=True, max_chars=99)],
)
def test_feature_config_dict_round_trip(config: FeatureConfig) -> None:
    data = json.loads(json.dumps(config.to_dict()))
    assert set(data) == {f.name for f in dataclasses.fields(FeatureConfig)}
    assert FeatureConfig.from_dict(data) == config
    assert FeatureConfig.from_dict({}) == FeatureConfig()  # missing keys take defaults
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.word_ngrams = 5  # type: ignore[misc]


def test_feature_config_unknown_keys_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown .*keys: bogus, ngram"):
        FeatureConfig.from_dict({**FeatureConfig().to_dict(), "ngram": 2, "bogus": 1})


def test_word_bigram_and_skip_gram_hashes_differ() -> None:
    config = FeatureConfig(char_ngram_max=0)
    hashes, _, offsets = featurize(["a b", "a x b"], config)
    bigram_text = set(hashes[offsets[0] : offsets[1]].tolist())
    skip_text = set(hashes[offsets[1] : offsets[2]].tolist())
    # Shared features may only be the words 'a' and 'b'.
    assert len(bigram_text & skip_text) == 2


@pytest.mark.parametrize("n_jobs", [0, -2, 1.5, True, "2", None])
def test_an_n_jobs_that_is_no_thread_count_is_refused_at_construction(n_jobs: object) -> None:
    """0 or -2 used to run on one thread unsaid; only a positive count or -1 means something."""
    message = f"n_jobs must be a positive int, or -1 for every core; got {n_jobs!r}"
    with pytest.raises(ConfigError) as refused:
        Projector(4, 8, n_jobs=n_jobs)
    assert str(refused.value) == message
    projector = Projector(4, 8, n_jobs=2)
    with pytest.raises(ConfigError) as refused:
        projector.n_jobs = n_jobs
    assert str(refused.value) == message and projector.n_jobs == 2
    assert Projector(4, 8, n_jobs=np.int64(3)).n_jobs == 3
    assert Projector(4, 8, n_jobs=-1).n_jobs == -1
