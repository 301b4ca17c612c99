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


def test_attention_pool_is_a_softmax_weighted_mean_per_text() -> None:
    rng = np.random.default_rng(0)
    lengths = np.array([1, 3, 2], dtype=np.int64)
    scores = rng.standard_normal((6, 4)).astype(np.float32) * 5  # 2 filters: values, logits
    expected = []
    first = 0
    for n in lengths:
        values, logits = scores[first : first + n, :2], scores[first : first + n, 2:]
        weights = np.exp(logits - logits.max(0))
        expected.append((weights * values).sum(0) / weights.sum(0))
        first += n
    centred = scores.copy()
    kn.centre_logits(centred, lengths, 2)
    assert np.all(centred[:, 2:] <= 0)
    np.exp(centred[:, 2:], out=centred[:, 2:])
    out = np.full((3, 5), np.nan, dtype=np.float32)
    kn.attention_pool(centred, lengths, 2, out, 1)
    assert np.abs(out[:, 1:3] - np.array(expected)).max() <= 1e-5
    assert np.isnan(out[:, [0, 3, 4]]).all()  # other columns untouched
