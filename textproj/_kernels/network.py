"""Numba kernels of the torch-free runtime: a linear layer on packed bits, and attention pooling.

A linear layer whose input is 0/1 bits needs no multiplications: its output is the bias plus
the sum of the weight columns of the set bits. Cutting each packed uint64 word into 4-bit
nibbles and precomputing, for every nibble position, the partial sum of all 16 nibble values
(:func:`nibble_tables`) turns each token's bottleneck into 16 table-row additions per word,
read straight from the projector's packed words (no unpacking to a 0/1 array, no float copy).
"""

from __future__ import annotations

import numpy as np
from numba import njit

NIBBLE = 4  # bits per table index
NIBBLES_PER_WORD = 64 // NIBBLE
# Float reassociation and fused multiply-add only: sums may round differently from BLAS
# (float32 rounding), but infinities and NaNs keep their IEEE meaning.
FASTMATH = {"reassoc", "contract", "nsz"}


def nibble_tables(weight: np.ndarray) -> np.ndarray:
    """Partial sums of a linear layer's weight (out, n_bits) for every nibble of its input.

    Returns float32 (n_words * 16, 16, out): entry ``[p, v]`` is the sum of the weight columns
    ``4p + b`` for each set bit b of v (columns past ``n_bits`` count as zero).
    """
    n_out, n_bits = weight.shape
    n_words = (n_bits + 63) // 64
    padded = np.zeros((n_out, 64 * n_words), dtype=np.float64)
    padded[:, :n_bits] = weight
    codes = np.arange(2**NIBBLE)
    select = ((codes[:, None] >> np.arange(NIBBLE)) & 1).astype(np.float64)  # (16, 4)
    blocks = padded.T.reshape(n_words * NIBBLES_PER_WORD, NIBBLE, n_out)
    return np.ascontiguousarray(np.einsum("vb,pbo->pvo", select, blocks), dtype=np.float32)


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def packed_linear(words, lo, hi, tables, bias, relu, out):  # pragma: no cover - numba
    """``out[r - lo] = bias + bits(words[r]) @ weight.T`` for rows lo..hi-1, via nibble tables.

    ``words`` (rows, n_words) uint64 holds bit j of a row in word j // 64 at bit j % 64;
    ``tables`` comes from :func:`nibble_tables`. With ``relu`` the result is max(0, .).
    """
    n_out = bias.shape[0]
    acc = np.empty(n_out, dtype=np.float32)
    for r in range(lo, hi):
        acc[:] = bias
        for w in range(words.shape[1]):
            word = np.int64(words[r, w])  # signed shifts; the mask drops the sign copies
            for q in range(NIBBLES_PER_WORD):
                row = tables[w * NIBBLES_PER_WORD + q, (word >> (q * NIBBLE)) & 15]
                for o in range(n_out):
                    acc[o] += row[o]
        target = out[r - lo]
        for o in range(n_out):
            target[o] = max(acc[o], 0.0) if relu else acc[o]


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def window_scores(
    taps, index, row0, lengths, windows, column_starts, value_bias, attention_bias, values, logits
):
    """Convolutions of every window size for consecutive texts: values and centred logits.

    Token row r's products with every kernel tap are ``taps[index[r]]`` (rows of equal bits
    share one ``taps`` row): window j of size k owns columns ``column_starts[j] + i*F + f``
    (value filter f, tap i) and ``column_starts[j] + (k + i)*F + f`` (attention). Text t owns
    the next ``lengths[t]`` (>= 1) token rows from ``row0`` on, and the same rows of
    ``values`` and ``logits`` (counted from 0), whose column ``j*F + f`` is window j's filter f.
    Position p sums tap i of row p + i where that row is inside the text (zero padding
    beyond), plus the bias. Each text's logits are then shifted by their maximum per column,
    for a stable softmax.
    """
    n_windows, n_filters = value_bias.shape
    width = values.shape[1]
    peak = np.empty(width, dtype=np.float32)
    first = 0
    for t in range(lengths.shape[0]):
        n = lengths[t]
        for p in range(n):
            r = first + p
            for j in range(n_windows):
                k, base, col = windows[j], column_starts[j], j * n_filters
                for f in range(n_filters):
                    values[r, col + f] = value_bias[j, f]
                    logits[r, col + f] = attention_bias[j, f]
                for i in range(min(k, n - p)):
                    src = index[row0 + r + i]
                    value_col, logit_col = base + i * n_filters, base + (k + i) * n_filters
                    for f in range(n_filters):
                        values[r, col + f] += taps[src, value_col + f]
                    for f in range(n_filters):
                        logits[r, col + f] += taps[src, logit_col + f]
        for c in range(width):
            peak[c] = logits[first, c]
        for p in range(first + 1, first + n):
            for c in range(width):
                peak[c] = max(peak[c], logits[p, c])
        for p in range(first, first + n):
            for c in range(width):
                logits[p, c] -= peak[c]
        first += n


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def attention_pool(values, weights, lengths, out):
    """``out[t, c]`` = sum_p weight * value / sum_p weight over text t's rows.

    Text t owns the next ``lengths[t]`` (>= 1) rows of ``values`` and ``weights`` (the
    exponentiated centred logits of :func:`window_scores`).
    """
    width = values.shape[1]
    total = np.empty(width, dtype=np.float32)
    pooled = np.empty(width, dtype=np.float32)
    first = 0
    for t in range(lengths.shape[0]):
        end = first + lengths[t]
        total[:] = 0
        pooled[:] = 0
        for p in range(first, end):
            for c in range(width):
                weight = weights[p, c]
                total[c] += weight
                pooled[c] += weight * values[p, c]
        for c in range(width):
            out[t, c] = pooled[c] / total[c]
        first = end
