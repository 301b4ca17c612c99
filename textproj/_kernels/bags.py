"""Feature bags: merge repeated buckets within each text, so a bag holds each bucket once."""

import numpy as np
from numba import njit


@njit(cache=True)
def merge_repeats(buckets, weights, offsets):
    """Per text, sort ``buckets`` and sum the ``weights`` of equal ones.

    Returns (buckets int32, weights float32, offsets int64 (n + 1,)) with each text's buckets
    distinct and ascending, so a bag's size is bounded by its distinct features. Buckets are
    int32 (a table has fewer than 2^31 rows), halving the memory of a large corpus's bags.
    """
    n = len(offsets) - 1
    out_b = np.empty(len(buckets), dtype=np.int32)
    out_w = np.empty(len(buckets), dtype=np.float32)
    out_off = np.zeros(n + 1, dtype=np.int64)
    m = 0
    for i in range(n):
        lo, hi = offsets[i], offsets[i + 1]
        order = np.argsort(buckets[lo:hi], kind="mergesort")
        last = -1
        for j in order:
            b = buckets[lo + j]
            if b == last:
                out_w[m - 1] += weights[lo + j]
            else:
                out_b[m] = b
                out_w[m] = weights[lo + j]
                m += 1
                last = b
        out_off[i + 1] = m
    return out_b[:m].copy(), out_w[:m].copy(), out_off
