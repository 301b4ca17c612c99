"""Tests for textproj._kernels.network: the packed-bit linear layer and attention pooling."""

from __future__ import annotations

import numpy as np
import pytest

from textproj._kernels import network as kn


def _pack(bits: np.ndarray) -> np.ndarray:
    """0/1 rows -> uint64 words, bit j in word j // 64 at bit j % 64 (the projector's layout)."""
    n_words = (bits.shape[1] + 63) // 64
    padded = np.zeros((len(bits), 64 * n_words), dtype=np.uint8)
    padded[:, : bits.shape[1]] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").copy()


@pytest.mark.parametrize("n_bits", [1, 7, 64, 70, 256])
@pytest.mark.parametrize("relu", [False, True])
def test_packed_linear_equals_matmul_on_bits(n_bits: int, relu: bool) -> None:
    rng = np.random.default_rng(n_bits)
    bits = (rng.random((40, n_bits)) < 0.5).astype(np.uint8)
    bits[0] = 0
    bits[1] = 1
    weight = rng.standard_normal((9, n_bits)).astype(np.float32)
    bias = rng.standard_normal(9).astype(np.float32)
    expected = bits.astype(np.float32) @ weight.T + bias
    if relu:
        expected = np.maximum(expected, 0)
    out = np.empty((30, 9), dtype=np.float32)
    kn.packed_linear(_pack(bits), 5, 35, kn.nibble_tables(weight), bias, relu, out)
    assert np.abs(out - expected[5:35]).max() <= 1e-4


def test_nibble_tables_hold_partial_sums() -> None:
    weight = np.arange(2 * 70, dtype=np.float32).reshape(2, 70)
    tables = kn.nibble_tables(weight)
    assert tables.shape == (2 * 16, 16, 2)
    assert np.array_equal(tables[0, 0], [0, 0])
    assert np.array_equal(tables[0, 0b0101], weight[:, 0] + weight[:, 2])
    assert np.array_equal(tables[17, 0b0011], weight[:, 68] + weight[:, 69])
    assert np.array_equal(tables[17, 0b1100], [0, 0])  # columns 70, 71 do not exist


def _reference_pool(taps, index, lengths, windows, value_bias, attention_bias):
    """Per text, window and filter: softmax(attention)-weighted mean of the values, in numpy."""
    n_filters = value_bias.shape[1]
    out, first, start = [], 0, 0
    starts = []
    for k in windows:
        starts.append(start)
        start += 2 * k * n_filters
    for n in lengths:
        rows = taps[index[first : first + n]]
        pooled = []
        for j, k in enumerate(windows):
            base = starts[j]
            values = np.tile(value_bias[j], (n, 1)).astype(np.float64)
            logits = np.tile(attention_bias[j], (n, 1)).astype(np.float64)
            for p in range(n):
                for i in range(min(k, n - p)):
                    values[p] += rows[p + i, base + i * n_filters : base + (i + 1) * n_filters]
                    logits[p] += rows[
                        p + i, base + (k + i) * n_filters : base + (k + i + 1) * n_filters
                    ]
            weights = np.exp(logits - logits.max(0))
            pooled.append((weights * values).sum(0) / weights.sum(0))
        out.append(np.concatenate(pooled))
        first += n
    return np.array(out)


def test_window_scores_and_attention_pool_match_a_reference() -> None:
    rng = np.random.default_rng(0)
    windows = np.array([1, 3, 2], dtype=np.int64)
    n_filters = 3
    starts = np.concatenate([[0], np.cumsum(2 * windows * n_filters)[:-1]]).astype(np.int64)
    taps = (rng.standard_normal((5, int(2 * windows.sum() * n_filters))) * 4).astype(np.float32)
    lengths = np.array([1, 4, 2, 3], dtype=np.int64)
    index = rng.integers(0, 5, size=2 + int(lengths.sum()))  # rows 2.. belong to the texts
    value_bias = rng.standard_normal((3, n_filters)).astype(np.float32)
    attention_bias = rng.standard_normal((3, n_filters)).astype(np.float32)
    shape = (int(lengths.sum()), 3 * n_filters)
    values, logits = np.empty(shape, np.float32), np.empty(shape, np.float32)
    kn.window_scores(
        taps, index, 2, lengths, windows, starts, value_bias, attention_bias, values, logits
    )
    first = 0
    for n in lengths:  # centred: each text's maximum logit per column is 0
        assert np.all(logits[first : first + n].max(0) == 0)
        first += n
    out = np.empty((len(lengths), 3 * n_filters), dtype=np.float32)
    kn.attention_pool(values, np.exp(logits), lengths, out)
    expected = _reference_pool(taps, index[2:], lengths, windows, value_bias, attention_bias)
    assert np.abs(out - expected).max() <= 1e-4
