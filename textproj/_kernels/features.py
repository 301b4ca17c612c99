"""Text to hashed sparse features, in numba: UTF-8 decoding, tokens, n-grams, skip-grams.

Input is the UTF-8 bytes of already normalised texts plus a code point class table; output is
64-bit feature hashes with integer weights. The layout of ``params`` (an int64 array) is fixed
by the ``P_*`` indices below and filled by ``textproj.features.kernel_params``.
"""

import numpy as np
from numba import njit, uint64

from textproj._kernels.hashing import (
    NS_CHAR_NGRAM,
    NS_SKIP_GRAM,
    NS_WORD,
    NS_WORD_NGRAM,
    combine,
    xxh64,
)

P_WORD_NGRAMS = 0
P_SKIP_GRAMS = 1
P_CHAR_MIN = 2
P_CHAR_MAX = 3
P_WORD_WEIGHT = 4
P_CHAR_WEIGHT = 5
P_SUBLINEAR = 6
P_MAX_TOKENS = 7
N_PARAMS = 8

CLASS_SEPARATOR = 0  # white space, punctuation, controls: end a token
CLASS_WORD = 1  # letters, marks, digits: extend a token
CLASS_SINGLE = 2  # symbols (emoji), CJK ideographs and kana: a token of their own


@njit(inline="always")
def decode_utf8(buf, start, end, cps, cp_bytes):
    """Decode ``buf[start:end]`` into ``cps``; ``cp_bytes[k]`` is the byte offset of code point k.

    Returns the number of code points n, with ``cp_bytes[n] == end``. Bytes that do not start a
    valid sequence decode to U+FFFD one byte at a time, so any input is accepted.
    """
    n = 0
    i = start
    while i < end:
        b = np.int64(buf[i])  # widen first: uint8 shifts would wrap (e.g. with the JIT off)
        if b < 0x80:
            cp, width = b, 1
        elif b >= 0xF0 and i + 3 < end:
            cp = ((b & 0x07) << 18) | ((np.int64(buf[i + 1]) & 0x3F) << 12)
            cp |= ((np.int64(buf[i + 2]) & 0x3F) << 6) | (np.int64(buf[i + 3]) & 0x3F)
            width = 4
        elif b >= 0xE0 and i + 2 < end:
            cp = ((b & 0x0F) << 12) | ((np.int64(buf[i + 1]) & 0x3F) << 6)
            cp |= np.int64(buf[i + 2]) & 0x3F
            width = 3
        elif b >= 0xC0 and i + 1 < end:
            cp, width = ((b & 0x1F) << 6) | (np.int64(buf[i + 1]) & 0x3F), 2
        else:
            cp, width = 0xFFFD, 1
        cps[n] = cp
        cp_bytes[n] = i
        n += 1
        i += width
    cp_bytes[n] = end
    return n


@njit(inline="always")
def char_class(cp, table):
    """Class of code point ``cp``; above the table, tags and variation selectors separate."""
    if cp < table.shape[0]:
        return table[cp]
    if 0xE0000 <= cp <= 0xE0FFF:
        return CLASS_SEPARATOR
    return CLASS_WORD


@njit(inline="always")
def tokenize(cps, n, table, max_tokens, tok_start, tok_end):
    """Token spans (code point indices) of ``cps[:n]``, at most ``max_tokens``; returns count."""
    ntok = 0
    k = 0
    while k < n and ntok < max_tokens:
        c = char_class(cps[k], table)
        if c == CLASS_SEPARATOR:
            k += 1
            continue
        tok_start[ntok] = k
        k += 1
        if c == CLASS_WORD:
            while k < n and char_class(cps[k], table) == CLASS_WORD:
                k += 1
        tok_end[ntok] = k
        ntok += 1
    return ntok


@njit(inline="always")
def char_ngrams(buf, cp_bytes, s, e, cmin, cmax, weight, out_h, out_w, m):
    """Append the n-grams (cmin..cmax) of one token over "<token>" to ``out_h``/``out_w`` at m.

    An n-gram is hashed as its UTF-8 bytes, with the boundary marks folded into the seed, so
    "<ab" and "ab" differ. Returns the new count.
    """
    length = e - s
    for n in range(cmin, cmax + 1):
        for p in range(0, length + 3 - n):
            lo = max(p, 1) - 1
            hi = min(p + n, length + 1) - 1
            flags = (1 if p == 0 else 0) | (2 if p + n == length + 2 else 0)
            seed = uint64(NS_CHAR_NGRAM) ^ (uint64(flags) << uint64(32))
            out_h[m] = xxh64(buf, cp_bytes[s + lo], cp_bytes[s + hi], seed)
            out_w[m] = weight
            m += 1
    return m


@njit(inline="always")
def text_features(buf, cp_bytes, tok_start, tok_end, ntok, tok_hash, params, out_h, out_w):
    """All features of one tokenised text into ``out_h``/``out_w``; returns their count."""
    word_w = params[P_WORD_WEIGHT]
    m = 0
    for t in range(ntok):
        h = xxh64(buf, cp_bytes[tok_start[t]], cp_bytes[tok_end[t]], uint64(NS_WORD))
        tok_hash[t] = h
        out_h[m] = h
        out_w[m] = word_w
        m += 1
    for n in range(2, params[P_WORD_NGRAMS] + 1):
        for t in range(ntok - n + 1):
            h = uint64(NS_WORD_NGRAM + n)
            for j in range(n):
                h = combine(h, tok_hash[t + j])
            out_h[m] = h
            out_w[m] = word_w
            m += 1
    for skip in range(1, params[P_SKIP_GRAMS] + 1):
        for t in range(ntok - skip - 1):
            h = combine(combine(uint64(NS_SKIP_GRAM + skip), tok_hash[t]), tok_hash[t + skip + 1])
            out_h[m] = h
            out_w[m] = word_w
            m += 1
    if params[P_CHAR_MAX] > 0:
        for t in range(ntok):
            m = char_ngrams(
                buf, cp_bytes, tok_start[t], tok_end[t], params[P_CHAR_MIN],
                params[P_CHAR_MAX], params[P_CHAR_WEIGHT], out_h, out_w, m,
            )  # fmt: skip
    if params[P_SUBLINEAR]:
        m = sublinear_weights(out_h, out_w, m)
    return m


@njit(inline="always")
def token_features(buf, cp_bytes, s, e, params, out_h, out_w):
    """Features of one token on its own (the word and its character n-grams); returns the count."""
    out_h[0] = xxh64(buf, cp_bytes[s], cp_bytes[e], uint64(NS_WORD))
    out_w[0] = params[P_WORD_WEIGHT]
    m = 1
    if params[P_CHAR_MAX] > 0:
        m = char_ngrams(
            buf, cp_bytes, s, e, params[P_CHAR_MIN], params[P_CHAR_MAX],
            params[P_CHAR_WEIGHT], out_h, out_w, m,
        )  # fmt: skip
    if params[P_SUBLINEAR]:
        m = sublinear_weights(out_h, out_w, m)
    return m


@njit(inline="always")
def sublinear_weights(out_h, out_w, m):
    """Merge equal hashes; weight becomes kind_weight * (1 + floor(log2(count))). Returns count."""
    if m == 0:
        return 0
    order = np.argsort(out_h[:m], kind="mergesort")
    hs = out_h[:m][order]
    ws = out_w[:m][order]
    k = 0
    i = 0
    while i < m:
        j = i
        while j < m and hs[j] == hs[i]:
            j += 1
        count = j - i
        log2 = 0
        while (count >> (log2 + 1)) > 0:
            log2 += 1
        out_h[k] = hs[i]
        out_w[k] = ws[i] * (1 + log2)
        k += 1
        i = j
    return k


@njit(inline="always")
def feature_bound(n_bytes, params):
    """Upper bound on the features of a text of ``n_bytes`` bytes (tokens <= bytes)."""
    n_char = 0
    if params[P_CHAR_MAX] > 0:
        n_char = params[P_CHAR_MAX] - params[P_CHAR_MIN] + 1
    return n_bytes * (params[P_WORD_NGRAMS] + params[P_SKIP_GRAMS] + 3 * n_char) + 1


@njit(inline="always")
def longest_text(offsets, lo, hi):
    """Bytes of the longest of texts ``lo..hi-1``."""
    max_bytes = 0
    for i in range(lo, hi):
        max_bytes = max(max_bytes, offsets[i + 1] - offsets[i])
    return max_bytes


@njit(inline="always")
def text_buffers(n_bytes):
    """Work arrays to decode and tokenise a text of up to ``n_bytes`` bytes: code points, their
    byte offsets, token starts, token ends, token hashes."""
    n = n_bytes + 1
    return (
        np.empty(n, dtype=np.int32),
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.uint64),
    )


@njit(cache=True, nogil=True)
def featurize_batch(buf, offsets, table, params):
    """Feature hashes and weights of every text: (hashes uint64, weights int64, offsets int64).

    Text i's features are ``hashes[offsets[i]:offsets[i + 1]]``, in a fixed order: words, word
    n-grams by order, skip-grams by gap, then character n-grams token by token.
    """
    n_texts = offsets.shape[0] - 1
    total_bound = 0
    for i in range(n_texts):
        total_bound += feature_bound(offsets[i + 1] - offsets[i], params)
    cps, cp_bytes, tok_start, tok_end, tok_hash = text_buffers(longest_text(offsets, 0, n_texts))
    hashes = np.empty(total_bound, dtype=np.uint64)
    weights = np.empty(total_bound, dtype=np.int64)
    feat_offsets = np.zeros(n_texts + 1, dtype=np.int64)
    m = 0
    for i in range(n_texts):
        n = decode_utf8(buf, offsets[i], offsets[i + 1], cps, cp_bytes)
        ntok = tokenize(cps, n, table, params[P_MAX_TOKENS], tok_start, tok_end)
        k = text_features(
            buf, cp_bytes, tok_start, tok_end, ntok, tok_hash, params, hashes[m:], weights[m:]
        )
        m += k
        feat_offsets[i + 1] = m
    return hashes[:m].copy(), weights[:m].copy(), feat_offsets


@njit(cache=True, nogil=True)
def count_tokens(buf, offsets, table, params):
    """Number of tokens of each text (after the ``max_tokens`` cap), as an int64 array."""
    n_texts = offsets.shape[0] - 1
    cps, cp_bytes, tok_start, tok_end, _ = text_buffers(longest_text(offsets, 0, n_texts))
    counts = np.zeros(n_texts, dtype=np.int64)
    for i in range(n_texts):
        n = decode_utf8(buf, offsets[i], offsets[i + 1], cps, cp_bytes)
        counts[i] = tokenize(cps, n, table, params[P_MAX_TOKENS], tok_start, tok_end)
    return counts


@njit(cache=True)
def token_byte_spans(buf, n_bytes, table, max_tokens):
    """Byte spans (starts, ends) of the tokens of the single text ``buf[:n_bytes]``."""
    cps = np.empty(n_bytes + 1, dtype=np.int32)
    cp_bytes = np.empty(n_bytes + 1, dtype=np.int64)
    tok_start = np.empty(n_bytes + 1, dtype=np.int64)
    tok_end = np.empty(n_bytes + 1, dtype=np.int64)
    n = decode_utf8(buf, 0, n_bytes, cps, cp_bytes)
    ntok = tokenize(cps, n, table, max_tokens, tok_start, tok_end)
    starts = np.empty(ntok, dtype=np.int64)
    ends = np.empty(ntok, dtype=np.int64)
    for t in range(ntok):
        starts[t] = cp_bytes[tok_start[t]]
        ends[t] = cp_bytes[tok_end[t]]
    return starts, ends
