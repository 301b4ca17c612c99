"""Feature hashes to bits, in numba: P_k(x) = sgn(<F(x), R_k>) with R_k computed, never stored.

Each feature's row of random signs is generated 64 bits at a time (``fmix64(h ^ key[word])``)
and added into bit-sliced counters: ``planes[word, p]`` holds bit p of the count of +1 signs
for 64 output bits at once, so one feature costs a hash and a short carry ripple per 64 bits
instead of 64 additions. A bit is 1 when its weighted +1 signs outnumber its -1 signs (a tie,
including a text with no features, gives 0).
"""

import numpy as np
from numba import int64, njit, uint64

from textproj._kernels.features import (
    P_MAX_TOKENS,
    decode_utf8,
    feature_bound,
    longest_text,
    text_buffers,
    text_features,
    token_features,
    tokenize,
)
from textproj._kernels.hashing import fmix64, xxh64

N_WEIGHT_BITS = 16
MAX_WEIGHT = 2**N_WEIGHT_BITS - 1  # per feature; sublinear weights stay far below it
N_PLANES = 48  # counters up to 2**48: far above max_chars * features per char * MAX_WEIGHT


@njit(inline="always")
def _add_into_counter(row, plane, s0, s1, s2, s3):
    """Add the 4-bit bit-sliced numbers (s0..s3) into the counter ``row`` from ``plane`` up."""
    carry = uint64(0)
    for p in range(plane, N_PLANES):
        k = p - plane
        a = s0 if k == 0 else s1 if k == 1 else s2 if k == 2 else s3 if k == 3 else uint64(0)
        old = row[p]
        partial = old ^ a
        row[p] = partial ^ carry
        carry = (old & a) | (carry & partial)
        if k >= 3 and carry == 0:
            break


@njit(inline="always")
def project_features(hashes, weights, n_feat, keys, scratch, out_words, last_mask):
    """Project ``n_feat`` weighted feature hashes into ``out_words`` (uint64, one bit per bit).

    Features are grouped by the bits of their weight (a weight-2 feature counts at plane 1);
    within a group, up to 15 sign words are summed in four registers before one add into the
    memory counter. ``scratch`` is a uint64 array of at least
    ``N_WEIGHT_BITS * n_feat + N_PLANES``. Weights above MAX_WEIGHT count as MAX_WEIGHT.
    """
    n_words = keys.shape[0]
    total = 0
    n_group = np.zeros(N_WEIGHT_BITS, dtype=np.int64)
    for f in range(n_feat):
        w = min(weights[f], MAX_WEIGHT)
        if w > 0:
            total += w
            for b in range(N_WEIGHT_BITS):
                n_group[b] += (w >> b) & 1
    starts = np.zeros(N_WEIGHT_BITS + 1, dtype=np.int64)
    for b in range(N_WEIGHT_BITS):
        starts[b + 1] = starts[b] + n_group[b]
    fill = starts[:N_WEIGHT_BITS].copy()
    row = scratch[:N_PLANES]
    grouped = scratch[N_PLANES:]
    for f in range(n_feat):
        w = min(weights[f], MAX_WEIGHT)
        b = 0
        while w > 0:
            if w & 1:
                grouped[fill[b]] = hashes[f]
                fill[b] += 1
            w >>= 1
            b += 1
    threshold = total >> 1
    for word in range(n_words):
        key = keys[word]
        row[:] = 0
        for b in range(N_WEIGHT_BITS):
            if n_group[b] == 0:
                continue
            s0 = s1 = s2 = s3 = uint64(0)
            k = 0
            for j in range(starts[b], starts[b + 1]):
                carry = fmix64(grouped[j] ^ key)
                t = s0 ^ carry
                carry &= s0
                s0 = t
                t = s1 ^ carry
                carry &= s1
                s1 = t
                t = s2 ^ carry
                carry &= s2
                s2 = t
                s3 ^= carry
                k += 1
                if k == 15:
                    _add_into_counter(row, b, s0, s1, s2, s3)
                    s0 = s1 = s2 = s3 = uint64(0)
                    k = 0
            if k:
                _add_into_counter(row, b, s0, s1, s2, s3)
        greater = uint64(0)
        equal = ~uint64(0)
        for p in range(N_PLANES - 1, -1, -1):
            c = row[p]
            if (threshold >> p) & 1:
                equal &= c
            else:
                greater |= equal & c
                equal &= ~c
        out_words[word] = greater
    out_words[n_words - 1] &= last_mask


@njit(cache=True, nogil=True)
def project_texts(buf, offsets, lo, hi, table, params, keys, last_mask, out_words):
    """Whole-text bits of texts ``lo..hi-1`` into ``out_words[i]`` (shape (n, n_words))."""
    max_bytes = longest_text(offsets, lo, hi)
    cps, cp_bytes, tok_start, tok_end, tok_hash = text_buffers(max_bytes)
    bound = feature_bound(max_bytes, params)
    hashes = np.empty(bound, dtype=np.uint64)
    weights = np.empty(bound, dtype=np.int64)
    scratch = np.empty(N_WEIGHT_BITS * bound + N_PLANES, dtype=np.uint64)
    for i in range(lo, hi):
        n = decode_utf8(buf, offsets[i], offsets[i + 1], cps, cp_bytes)
        ntok = tokenize(cps, n, table, params[P_MAX_TOKENS], tok_start, tok_end)
        m = text_features(
            buf, cp_bytes, tok_start, tok_end, ntok, tok_hash, params, hashes, weights
        )
        project_features(hashes, weights, m, keys, scratch, out_words[i], last_mask)


@njit(inline="always")
def _same_bytes(buf, a0, a1, b0, b1):
    """Whether ``buf[a0:a1]`` and ``buf[b0:b1]`` hold the same bytes."""
    if a1 - a0 != b1 - b0:
        return False
    for k in range(a1 - a0):  # noqa: SIM110 (an explicit early-exit loop for numba)
        if buf[a0 + k] != buf[b0 + k]:
            return False
    return True


@njit(cache=True, nogil=True)
def project_tokens(buf, offsets, lo, hi, table, params, keys, last_mask, row_offsets, out_words):
    """Per-token bits of texts ``lo..hi-1``: token t of text i goes to ``row_offsets[i] + t``.

    A token's bits depend on its bytes alone, and tokens repeat (a batch of short texts has a
    few distinct tokens per hundred), so each distinct token of the range is projected once and
    every later occurrence copies its row. The earlier occurrence is found through an
    open-addressing table keyed by a hash of the token's bytes; the bytes themselves are compared,
    so a hash collision costs a projection, never a wrong row.
    """
    max_bytes = longest_text(offsets, lo, hi)
    cps, cp_bytes, tok_start, tok_end, _ = text_buffers(max_bytes)
    bound = feature_bound(max_bytes, params)
    hashes = np.empty(bound, dtype=np.uint64)
    weights = np.empty(bound, dtype=np.int64)
    scratch = np.empty(N_WEIGHT_BITS * bound + N_PLANES, dtype=np.uint64)
    first_row = row_offsets[lo]
    n_rows = row_offsets[hi] - first_row
    size = 1
    while size <= 2 * n_rows:
        size *= 2
    slot_hash = np.zeros(size, dtype=np.uint64)
    slot_row = np.full(size, -1, dtype=np.int64)
    span_start = np.empty(n_rows, dtype=np.int64)
    span_end = np.empty(n_rows, dtype=np.int64)
    for i in range(lo, hi):
        n = decode_utf8(buf, offsets[i], offsets[i + 1], cps, cp_bytes)
        ntok = tokenize(cps, n, table, params[P_MAX_TOKENS], tok_start, tok_end)
        for t in range(ntok):
            row = row_offsets[i] + t
            b0, b1 = cp_bytes[tok_start[t]], cp_bytes[tok_end[t]]
            span_start[row - first_row], span_end[row - first_row] = b0, b1
            h = xxh64(buf, b0, b1, uint64(0))
            slot = int64(h & uint64(size - 1))
            earlier = -1
            while slot_row[slot] >= 0:
                j = slot_row[slot] - first_row
                if slot_hash[slot] == h and _same_bytes(buf, span_start[j], span_end[j], b0, b1):
                    earlier = slot_row[slot]
                    break
                slot = (slot + 1) & (size - 1)
            if earlier >= 0:
                out_words[row, :] = out_words[earlier, :]
                continue
            slot_hash[slot], slot_row[slot] = h, row
            m = token_features(buf, cp_bytes, tok_start[t], tok_end[t], params, hashes, weights)
            project_features(hashes, weights, m, keys, scratch, out_words[row], last_mask)


@njit(cache=True, nogil=True)
def unpack_bits(words, n_bits):
    """uint64 words (n, n_words) to uint8 0/1 (n, n_bits); bit j is bit j%64 of word j//64."""
    n = words.shape[0]
    out = np.empty((n, n_bits), dtype=np.uint8)
    for i in range(n):
        for j in range(n_bits):
            out[i, j] = (words[i, j >> 6] >> uint64(j & 63)) & uint64(1)
    return out
