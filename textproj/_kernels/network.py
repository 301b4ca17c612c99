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
def centre_logits(scores, lengths, n_filters):
    """Shift each text's attention logits by their maximum per filter (a stable softmax).

    ``scores`` (rows, 2F) holds one window size's values (columns 0..F-1) and attention logits
    (F..2F-1) at every position; text t owns the next ``lengths[t]`` (>= 1) rows.
    """
    peak = np.empty(n_filters, dtype=np.float32)
    first = 0
    for t in range(lengths.shape[0]):
        end = first + lengths[t]
        peak[:] = scores[first, n_filters:]
        for p in range(first + 1, end):
            for f in range(n_filters):
                peak[f] = max(peak[f], scores[p, n_filters + f])
        for p in range(first, end):
            for f in range(n_filters):
                scores[p, n_filters + f] -= peak[f]
        first = end


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def attention_pool(scores, lengths, n_filters, out, column):
    """``out[t, column + f]`` = sum_p weight * value / sum_p weight over text t's positions.

    ``scores`` is laid out as in :func:`centre_logits`, its logits already exponentiated.
    """
    total = np.empty(n_filters, dtype=np.float32)
    pooled = np.empty(n_filters, dtype=np.float32)
    first = 0
    for t in range(lengths.shape[0]):
        end = first + lengths[t]
        total[:] = 0
        pooled[:] = 0
        for p in range(first, end):
            for f in range(n_filters):
                weight = scores[p, n_filters + f]
                total[f] += weight
                pooled[f] += weight * scores[p, f]
        for f in range(n_filters):
            out[t, column + f] = pooled[f] / total[f]
        first = end
