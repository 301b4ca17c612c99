/* Text to projection bits, mirroring textproj.features and textproj/_kernels: UTF-8 decoding,
 * stream-safe NFKC + casefold + caps, tokens, xxHash64 features, bit-sliced projection. */
#include <string.h>

#include "tp_internal.h"

/* ---- Unicode properties -------------------------------------------------------------- */

#define SBASE 0xAC00u
#define LBASE 0x1100u
#define VBASE 0x1161u
#define TBASE 0x11A7u
#define LCOUNT 19u
#define VCOUNT 21u
#define TCOUNT 28u
#define NCOUNT (VCOUNT * TCOUNT)
#define SCOUNT (LCOUNT * NCOUNT)

static const tp_char_record *record(uint32_t cp) {
    if (cp >= 0x110000u) cp = 0xFFFDu;
    uint32_t block = tp_stage1[cp >> TP_UNICODE_SHIFT];
    return &tp_records[tp_stage2[(block << TP_UNICODE_SHIFT) | (cp & ((1u << TP_UNICODE_SHIFT) - 1))]];
}

static int char_class(uint32_t cp) { return (record(cp)->flags >> TP_CLASS_SHIFT) & 3; }

/* ---- UTF-8 decoding: Python's "replace" (maximal subparts), surrogates passed --------- */

static size_t decode_utf8(const uint8_t *s, size_t n, uint32_t *out, size_t cap) {
    size_t i = 0, k = 0;
    while (i < n && k < cap) {
        uint32_t b = s[i];
        if (b < 0x80) {
            out[k++] = b;
            i++;
            continue;
        }
        uint32_t need, lo = 0x80, hi = 0xBF, cp;
        if (b >= 0xC2 && b <= 0xDF) {
            need = 1;
            cp = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            cp = b & 0x0F;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F; /* ED A0..BF xx is a surrogate: see below */
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            cp = b & 0x07;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else {
            out[k++] = 0xFFFD;
            i++;
            continue;
        }
        size_t j = 1;
        int ok = 1;
        for (; j <= need; j++) {
            if (i + j >= n) { ok = 0; break; }
            uint32_t c = s[i + j];
            uint32_t l = j == 1 ? lo : 0x80, h = j == 1 ? hi : 0xBF;
            if (c < l || c > h) { ok = 0; break; }
            cp = (cp << 6) | (c & 0x3F);
        }
        if (!ok && b == 0xED && j == 1 && i + 2 < n && s[i + 1] >= 0xA0 && s[i + 1] <= 0xBF &&
            s[i + 2] >= 0x80 && s[i + 2] <= 0xBF) {
            /* ED's valid second bytes are 80..9F; A0..BF makes a surrogate */
            out[k++] = ((b & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
            i += 3;
            continue;
        }
        if (!ok) {
            out[k++] = 0xFFFD;
            i += j;
            continue;
        }
        out[k++] = cp;
        i += need + 1;
    }
    return k;
}

/* ---- normalisation -------------------------------------------------------------------- */

static size_t decompose_one(uint32_t cp, uint32_t *out) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE, t = s % TCOUNT;
        out[0] = LBASE + s / NCOUNT;
        out[1] = VBASE + (s % NCOUNT) / TCOUNT;
        if (t) {
            out[2] = TBASE + t;
            return 3;
        }
        return 2;
    }
    const tp_char_record *r = record(cp);
    if (!r->decomp_len) {
        out[0] = cp;
        return 1;
    }
    memcpy(out, tp_pool + r->decomp_off, r->decomp_len * sizeof(uint32_t));
    return r->decomp_len;
}

/* NFKD of in[0..n) into out, with a CGJ after every STREAM_SAFE_RUN non-starters of a longer
 * run when stream_safe; then canonical order (stable insertion sort of each run of marks). */
static size_t decompose(const uint32_t *in, size_t n, int stream_safe, uint32_t *out) {
    size_t k = 0, run = 0;
    for (size_t i = 0; i < n; i++) {
        if (stream_safe) {
            if (record(in[i])->flags & TP_FLAG_NONSTARTER) {
                if (run && run % TP_STREAM_SAFE_RUN == 0) out[k++] = TP_CGJ;
                run++;
            } else {
                run = 0;
            }
        }
        k += decompose_one(in[i], out + k);
    }
    for (size_t i = 1; i < k; i++) {
        uint32_t c = out[i];
        uint8_t cc = record(c)->ccc;
        if (!cc) continue;
        size_t j = i;
        while (j > 0) {
            uint8_t pc = record(out[j - 1])->ccc;
            if (pc == 0 || pc <= cc) break;
            out[j] = out[j - 1];
            j--;
        }
        out[j] = c;
    }
    return k;
}

static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE &&
        b < TBASE + TCOUNT)
        return a + (b - TBASE);
    if (!(record(b)->flags & TP_FLAG_SECOND)) return 0;
    uint64_t key = ((uint64_t)a << 21) | b;
    size_t lo = 0, hi = tp_n_pairs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tp_pair_keys[mid] < key) lo = mid + 1;
        else hi = mid;
    }
    return lo < tp_n_pairs && tp_pair_keys[lo] == key ? tp_pair_values[lo] : 0;
}

/* Canonical composition of a canonically ordered buffer, in place; returns its new length. */
static size_t compose(uint32_t *buf, size_t n) {
    size_t out = 0;
    size_t starter = (size_t)-1;
    uint8_t last_ccc = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = buf[i];
        uint8_t cc = record(c)->ccc;
        if (starter != (size_t)-1) {
            int adjacent = out - 1 == starter;
            if (adjacent || (last_ccc != 0 && last_ccc < cc)) {
                uint32_t composite = compose_pair(buf[starter], c);
                if (composite) {
                    buf[starter] = composite;
                    continue;
                }
            }
        }
        if (cc == 0) starter = out;
        buf[out++] = c;
        last_ccc = cc;
    }
    return out;
}

/* unicodedata.is_normalized("NFKC", text): the quick check, and when it says maybe, a full
 * normalisation compared with the text (work holds the decomposition). */
static int is_nfkc(const uint32_t *text, size_t n, uint32_t *work) {
    uint8_t prev = 0;
    int maybe = 0;
    for (size_t i = 0; i < n; i++) {
        const tp_char_record *r = record(text[i]);
        if (r->ccc && prev > r->ccc) return 0;
        prev = r->ccc;
        int qc = r->flags & 3;
        if (qc == TP_QC_NO) return 0;
        if (qc == TP_QC_MAYBE) maybe = 1;
    }
    if (!maybe) return 1;
    size_t k = compose(work, decompose(text, n, 0, work));
    return k == n && memcmp(work, text, n * sizeof(uint32_t)) == 0;
}

/* ---- workspace and the whole text path ---------------------------------------------- */

static size_t input_cap(const tp_features *f) { return 4 * (size_t)f->max_chars; }
static size_t decomposed_cap(const tp_features *f) {
    size_t n = input_cap(f);
    return n * TP_MAX_DECOMPOSITION + n / TP_STREAM_SAFE_RUN + 1;
}
static size_t token_cap(const tp_features *f) {
    return (size_t)(f->max_tokens < f->max_chars ? f->max_tokens : f->max_chars);
}
static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t tp_feature_bound(const tp_features *f) {
    size_t t = token_cap(f), m = (size_t)f->max_chars;
    size_t n_char = f->char_max > 0 ? (size_t)(f->char_max - f->char_min + 1) : 0;
    return t * (size_t)(f->word_ngrams + f->skip_grams) + n_char * (m + t) + 1;
}

size_t tp_token_feature_bound(const tp_features *f) {
    size_t n_char = f->char_max > 0 ? (size_t)(f->char_max - f->char_min + 1) : 0;
    return 1 + n_char * ((size_t)f->max_chars + 1);
}

size_t tp_text_workspace(const tp_features *f, size_t max_features) {
    size_t t = token_cap(f), m = (size_t)f->max_chars;
    return align8(t * 8) + align8(max_features * sizeof(tp_feature)) +
           align8(input_cap(f) * 4) + align8(decomposed_cap(f) * 4) + align8((m + 1) * 4) +
           align8(4 * m) + 2 * align8(t * 4);
}

static size_t normalize_cps(const tp_features *f, const uint8_t *text, size_t length,
                            uint32_t *a, uint32_t *b) {
    size_t n = decode_utf8(text, length, a, input_cap(f));
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++) ascii = a[i] < 0x80;
    size_t n_src = n;
    if (!ascii && !is_nfkc(a, n, b)) {
        n_src = compose(b, decompose(a, n, 1, b));
    } else {
        memcpy(b, a, n * sizeof(uint32_t)); /* folding may expand: read from b, write to a */
    }
    const uint32_t *src = b;
    size_t m = (size_t)f->max_chars, k = 0;
    for (size_t i = 0; i < n_src && k < m; i++) {
        const tp_char_record *r = record(src[i]);
        if (!r->fold_len) {
            a[k++] = src[i];
            continue;
        }
        for (size_t j = 0; j < r->fold_len && k < m; j++) a[k++] = tp_pool[r->fold_off + j];
    }
    return k;
}

static size_t encode_utf8(const uint32_t *cps, size_t n, uint8_t *out, uint32_t *cp_bytes) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        cp_bytes[i] = (uint32_t)k;
        if (c < 0x80) {
            out[k++] = (uint8_t)c;
        } else if (c < 0x800) {
            out[k++] = (uint8_t)(0xC0 | (c >> 6));
            out[k++] = (uint8_t)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out[k++] = (uint8_t)(0xE0 | (c >> 12));
            out[k++] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            out[k++] = (uint8_t)(0x80 | (c & 0x3F));
        } else {
            out[k++] = (uint8_t)(0xF0 | (c >> 18));
            out[k++] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
            out[k++] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            out[k++] = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    cp_bytes[n] = (uint32_t)k;
    return k;
}

static void tokenize(const tp_features *f, tp_text *t, const uint32_t *cps);

uint8_t *tp_prepare_text(const tp_features *f, size_t max_features, const uint8_t *text,
                         size_t length, void *workspace, tp_text *t, tp_feature **features) {
    uint8_t *w = workspace;
    size_t tc = token_cap(f), m = (size_t)f->max_chars;
    t->tok_hash = (uint64_t *)w;
    w += align8(tc * 8);
    *features = (tp_feature *)w;
    w += align8(max_features * sizeof(tp_feature));
    uint32_t *a = (uint32_t *)w;
    w += align8(input_cap(f) * 4);
    uint32_t *b = (uint32_t *)w;
    w += align8(decomposed_cap(f) * 4);
    t->cp_bytes = (uint32_t *)w;
    w += align8((m + 1) * 4);
    t->utf8 = w;
    w += align8(4 * m);
    t->tok_start = (uint32_t *)w;
    w += align8(tc * 4);
    t->tok_end = (uint32_t *)w;
    w += align8(tc * 4);
    t->n_cps = normalize_cps(f, text, length, a, b);
    t->n_bytes = encode_utf8(a, t->n_cps, t->utf8, t->cp_bytes);
    tokenize(f, t, a);
    return w;
}

/* ---- hashing (textproj/_kernels/hashing.py) -------------------------------------------- */

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull
#define GOLDEN 0x9E3779B97F4A7C15ull
#define NS_WORD 0x5EED0001ull
#define NS_WORD_NGRAM 0x5EED0100ull
#define NS_SKIP_GRAM 0x5EED0200ull
#define NS_CHAR_NGRAM 0x5EED0300ull

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t read64(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}
static uint64_t read32(const uint8_t *p) {
    uint64_t v = 0;
    for (int k = 0; k < 4; k++) v |= (uint64_t)p[k] << (8 * k);
    return v;
}
static uint64_t xround(uint64_t acc, uint64_t lane) { return rotl(acc + lane * P2, 31) * P1; }
static uint64_t xmerge(uint64_t acc, uint64_t val) { return (acc ^ xround(0, val)) * P1 + P4; }

static uint64_t xxh64(const uint8_t *p, size_t len, uint64_t seed) {
    const uint8_t *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const uint8_t *limit = end - 32;
        while (p <= limit) {
            v1 = xround(v1, read64(p));
            v2 = xround(v2, read64(p + 8));
            v3 = xround(v3, read64(p + 16));
            v4 = xround(v4, read64(p + 24));
            p += 32;
        }
        h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        h = xmerge(h, v1);
        h = xmerge(h, v2);
        h = xmerge(h, v3);
        h = xmerge(h, v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)len;
    while (p + 8 <= end) {
        h ^= xround(0, read64(p));
        h = rotl(h, 27) * P1 + P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= read32(p) * P1;
        h = rotl(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p) * P5;
        h = rotl(h, 11) * P1;
        p++;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    return h ^ (h >> 32);
}

uint64_t tp_fmix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ull;
    return x ^ (x >> 33);
}

uint64_t tp_combine(uint64_t h, uint64_t x) {
    return tp_fmix64(h ^ (x + GOLDEN + (h << 6) + (h >> 2)));
}

/* ---- tokens and features (textproj/_kernels/features.py) -------------------------------- */

static void tokenize(const tp_features *f, tp_text *t, const uint32_t *cps) {
    size_t n = t->n_cps, k = 0, ntok = 0, cap = (size_t)f->max_tokens;
    while (k < n && ntok < cap) {
        int c = char_class(cps[k]);
        if (c == TP_CLASS_SEPARATOR) {
            k++;
            continue;
        }
        t->tok_start[ntok] = (uint32_t)k;
        k++;
        if (c == TP_CLASS_WORD)
            while (k < n && char_class(cps[k]) == TP_CLASS_WORD) k++;
        t->tok_end[ntok] = (uint32_t)k;
        ntok++;
    }
    t->n_tokens = ntok;
}

static size_t char_ngrams(const tp_features *f, const tp_text *t, size_t s, size_t e,
                          tp_feature *out, size_t m) {
    size_t length = e - s;
    for (int64_t n = f->char_min; n <= f->char_max; n++) {
        for (int64_t p = 0; p < (int64_t)length + 3 - n; p++) {
            size_t lo = (size_t)(p > 1 ? p : 1) - 1;
            size_t hi = (size_t)((size_t)(p + n) < length + 1 ? (size_t)(p + n) : length + 1) - 1;
            uint64_t flags = (p == 0 ? 1u : 0u) | ((size_t)(p + n) == length + 2 ? 2u : 0u);
            uint64_t seed = NS_CHAR_NGRAM ^ (flags << 32);
            size_t b0 = t->cp_bytes[s + lo], b1 = t->cp_bytes[s + hi];
            out[m].hash = xxh64(t->utf8 + b0, b1 - b0, seed);
            out[m].weight = (uint32_t)f->char_weight;
            m++;
        }
    }
    return m;
}

static int feature_less(const tp_feature *a, const tp_feature *b) {
    return a->hash < b->hash || (a->hash == b->hash && a->position < b->position);
}

static void sift(tp_feature *x, size_t root, size_t n) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) return;
        if (child + 1 < n && feature_less(&x[child], &x[child + 1])) child++;
        if (!feature_less(&x[root], &x[child])) return;
        tp_feature tmp = x[root];
        x[root] = x[child];
        x[child] = tmp;
        root = child;
    }
}

/* Merge equal hashes (Python: a stable sort, then the first weight times 1 + floor(log2 n)). */
static size_t sublinear(tp_feature *x, size_t m) {
    for (size_t i = 0; i < m; i++) x[i].position = (uint32_t)i;
    for (size_t i = m / 2; i-- > 0;) sift(x, i, m);
    for (size_t end = m; end > 1; end--) {
        tp_feature tmp = x[0];
        x[0] = x[end - 1];
        x[end - 1] = tmp;
        sift(x, 0, end - 1);
    }
    size_t k = 0, i = 0;
    while (i < m) {
        size_t j = i;
        while (j < m && x[j].hash == x[i].hash) j++;
        size_t count = j - i;
        uint32_t log2 = 0;
        while ((count >> (log2 + 1)) > 0) log2++;
        uint64_t w = (uint64_t)x[i].weight * (1 + log2);
        x[k].hash = x[i].hash;
        x[k].weight = w > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)w;
        k++;
        i = j;
    }
    return k;
}

size_t tp_text_features(const tp_features *f, const tp_text *t, tp_feature *out) {
    size_t m = 0, ntok = t->n_tokens;
    uint32_t word_w = (uint32_t)f->word_weight;
    for (size_t i = 0; i < ntok; i++) {
        size_t b0 = t->cp_bytes[t->tok_start[i]], b1 = t->cp_bytes[t->tok_end[i]];
        uint64_t h = xxh64(t->utf8 + b0, b1 - b0, NS_WORD);
        t->tok_hash[i] = h;
        out[m].hash = h;
        out[m++].weight = word_w;
    }
    for (int64_t n = 2; n <= f->word_ngrams; n++) {
        for (int64_t i = 0; i < (int64_t)ntok - n + 1; i++) {
            uint64_t h = NS_WORD_NGRAM + (uint64_t)n;
            for (int64_t j = 0; j < n; j++) h = tp_combine(h, t->tok_hash[i + j]);
            out[m].hash = h;
            out[m++].weight = word_w;
        }
    }
    for (int64_t skip = 1; skip <= f->skip_grams; skip++) {
        for (int64_t i = 0; i < (int64_t)ntok - skip - 1; i++) {
            uint64_t h = tp_combine(tp_combine(NS_SKIP_GRAM + (uint64_t)skip, t->tok_hash[i]),
                                    t->tok_hash[i + skip + 1]);
            out[m].hash = h;
            out[m++].weight = word_w;
        }
    }
    if (f->char_max > 0)
        for (size_t i = 0; i < ntok; i++)
            m = char_ngrams(f, t, t->tok_start[i], t->tok_end[i], out, m);
    return f->sublinear ? sublinear(out, m) : m;
}

const uint8_t *tp_token_bytes(const tp_text *t, size_t token, size_t *length) {
    size_t b0 = t->cp_bytes[t->tok_start[token]], b1 = t->cp_bytes[t->tok_end[token]];
    *length = b1 - b0;
    return t->utf8 + b0;
}

uint64_t tp_word_hash(const uint8_t *bytes, size_t length) { return xxh64(bytes, length, NS_WORD); }

size_t tp_token_features(const tp_features *f, const tp_text *t, size_t token, tp_feature *out) {
    size_t s = t->tok_start[token], e = t->tok_end[token];
    size_t b0 = t->cp_bytes[s], b1 = t->cp_bytes[e];
    out[0].hash = xxh64(t->utf8 + b0, b1 - b0, NS_WORD);
    out[0].weight = (uint32_t)f->word_weight;
    size_t m = 1;
    if (f->char_max > 0) m = char_ngrams(f, t, s, e, out, m);
    return f->sublinear ? sublinear(out, m) : m;
}

/* ---- projection (textproj/_kernels/projection.py) -------------------------------------- */

static void add_into_counter(uint64_t *row, int plane, uint64_t s0, uint64_t s1, uint64_t s2,
                             uint64_t s3) {
    uint64_t carry = 0;
    for (int p = plane; p < TP_N_PLANES; p++) {
        int k = p - plane;
        uint64_t a = k == 0 ? s0 : k == 1 ? s1 : k == 2 ? s2 : k == 3 ? s3 : 0;
        uint64_t old = row[p], partial = old ^ a;
        row[p] = partial ^ carry;
        carry = (old & a) | (carry & partial);
        if (k >= 3 && carry == 0) break;
    }
}

void tp_project(tp_feature *feats, size_t n, const uint64_t *keys, size_t n_words,
                uint64_t last_mask, uint64_t *out) {
    uint64_t total = 0;
    size_t n_group[TP_N_WEIGHT_BITS] = {0};
    for (size_t i = 0; i < n; i++) {
        uint32_t w = feats[i].weight < TP_MAX_WEIGHT ? feats[i].weight : TP_MAX_WEIGHT;
        feats[i].weight = w;
        total += w;
        for (int b = 0; b < TP_N_WEIGHT_BITS; b++) n_group[b] += (w >> b) & 1;
    }
    uint64_t threshold = total >> 1;
    for (size_t word = 0; word < n_words; word++) {
        uint64_t key = keys[word], row[TP_N_PLANES] = {0};
        for (int b = 0; b < TP_N_WEIGHT_BITS; b++) {
            if (!n_group[b]) continue;
            uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int k = 0;
            for (size_t i = 0; i < n; i++) {
                if (!((feats[i].weight >> b) & 1)) continue;
                uint64_t carry = tp_fmix64(feats[i].hash ^ key), t;
                t = s0 ^ carry;
                carry &= s0;
                s0 = t;
                t = s1 ^ carry;
                carry &= s1;
                s1 = t;
                t = s2 ^ carry;
                carry &= s2;
                s2 = t;
                s3 ^= carry;
                if (++k == 15) {
                    add_into_counter(row, b, s0, s1, s2, s3);
                    s0 = s1 = s2 = s3 = 0;
                    k = 0;
                }
            }
            if (k) add_into_counter(row, b, s0, s1, s2, s3);
        }
        uint64_t greater = 0, equal = ~(uint64_t)0;
        for (int p = TP_N_PLANES - 1; p >= 0; p--) {
            uint64_t c = row[p];
            if ((threshold >> p) & 1) {
                equal &= c;
            } else {
                greater |= equal & c;
                equal &= ~c;
            }
        }
        out[word] = greater;
    }
    out[n_words - 1] &= last_mask;
}
