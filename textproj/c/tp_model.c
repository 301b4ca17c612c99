/* Loading a model.tpn (prefix, SHA-256, strict JSON header, every check of
 * textproj.model_file and textproj.runtime; int8 or int4 weights) and the forward pass of both
 * designs. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tp_internal.h"

#define PREFIX_BYTES 16
#define DIGEST_BYTES 32
#define MIN_FILE_BYTES (PREFIX_BYTES + 2 + DIGEST_BYTES)
#define MAX_DEPTH 512
#define MAX_NAME 64
#define POOL_BLOCK 32 /* token positions whose logits are exponentiated together */
#define POOL_STATE 6  /* pooling's running sums of a pooled width each, then a block's scores */

static int fail(tp_error *err, tp_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return 0;
}

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

/* ---- SHA-256 (FIPS 180-4) -------------------------------------------------------------- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

static uint32_t ror(uint32_t x, int r) { return (x >> r) | (x << (32 - r)); }

static void sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

static void sha256(const uint8_t *data, size_t n, uint8_t out[32]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t i = 0;
    for (; i + 64 <= n; i += 64) sha256_block(h, data + i);
    uint8_t tail[128] = {0};
    size_t rest = n - i;
    memcpy(tail, data + i, rest);
    tail[rest] = 0x80;
    size_t blocks = rest + 9 > 64 ? 2 : 1;
    uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++) tail[blocks * 64 - 1 - k] = (uint8_t)(bits >> (8 * k));
    for (size_t b = 0; b < blocks; b++) sha256_block(h, tail + 64 * b);
    for (int k = 0; k < 8; k++) {
        out[4 * k] = (uint8_t)(h[k] >> 24);
        out[4 * k + 1] = (uint8_t)(h[k] >> 16);
        out[4 * k + 2] = (uint8_t)(h[k] >> 8);
        out[4 * k + 3] = (uint8_t)h[k];
    }
}

/* ---- strict JSON (what Python's json.loads accepts, minus NaN/Infinity and duplicates) -- */

enum { J_NULL, J_FALSE, J_TRUE, J_INT, J_BIGINT, J_FLOAT, J_STRING, J_ARRAY, J_OBJECT };

typedef struct {
    uint32_t start, end; /* span of the value; strings: inside the quotes */
    uint32_t next;       /* next sibling (object: key, value, key, ...), 0 = none */
    uint32_t first;      /* first child, 0 = none */
    uint32_t count;      /* elements, or key/value pairs */
    uint8_t type;
    int64_t integer;
    double number;
} jnode;

typedef struct {
    const uint8_t *s;
    size_t n, pos;
    jnode *nodes; /* NULL: count only */
    size_t n_nodes;
    tp_error *err;
} jparser;

static void skip_ws(jparser *p) {
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                             p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int jerror(jparser *p, const char *what) {
    return fail(p->err, TP_ERR_JSON, "header is not valid JSON (%s at byte %zu)", what, p->pos);
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int scan_string(jparser *p) {
    p->pos++; /* opening quote */
    while (p->pos < p->n) {
        uint8_t c = p->s[p->pos];
        if (c == '"') return 1;
        if (c < 0x20) return jerror(p, "control character in a string");
        if (c == '\\') {
            if (p->pos + 1 >= p->n) break;
            uint8_t e = p->s[p->pos + 1];
            if (e == 'u') {
                if (p->pos + 5 >= p->n) return jerror(p, "short \\u escape");
                for (int k = 2; k < 6; k++)
                    if (hexval(p->s[p->pos + k]) < 0) return jerror(p, "bad \\u escape");
                p->pos += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) return jerror(p, "bad escape");
            p->pos += 2;
            continue;
        }
        p->pos++;
    }
    return jerror(p, "unterminated string");
}

static size_t new_node(jparser *p, uint8_t type, size_t start) {
    size_t i = p->n_nodes++;
    if (p->nodes) {
        jnode *nd = &p->nodes[i];
        memset(nd, 0, sizeof *nd);
        nd->type = type;
        nd->start = (uint32_t)start;
    }
    return i;
}

static int parse_value(jparser *p, int depth, size_t *index);

static int parse_number(jparser *p, size_t *index) {
    size_t start = p->pos;
    int is_float = 0;
    if (p->s[p->pos] == '-') p->pos++;
    if (p->pos >= p->n) return jerror(p, "bad number");
    if (p->s[p->pos] == '0') {
        p->pos++;
    } else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') {
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    } else {
        return jerror(p, "unexpected character");
    }
    if (p->pos + 1 < p->n && p->s[p->pos] == '.' && p->s[p->pos + 1] >= '0' &&
        p->s[p->pos + 1] <= '9') {
        is_float = 1;
        p->pos++;
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        size_t q = p->pos + 1;
        if (q < p->n && (p->s[q] == '+' || p->s[q] == '-')) q++;
        if (q < p->n && p->s[q] >= '0' && p->s[q] <= '9') {
            is_float = 1;
            p->pos = q;
            while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        }
    }
    size_t i = new_node(p, J_INT, start);
    *index = i;
    if (!p->nodes) return 1;
    jnode *nd = &p->nodes[i];
    nd->end = (uint32_t)p->pos;
    char buf[64];
    size_t len = p->pos - start;
    if (is_float) {
        nd->type = J_FLOAT;
        if (len >= sizeof buf) { /* long literals: strtod on a copy made piecewise is overkill */
            nd->number = strtod((const char *)p->s + start, NULL);
        } else {
            memcpy(buf, p->s + start, len);
            buf[len] = 0;
            nd->number = strtod(buf, NULL);
        }
        return 1;
    }
    /* an integer: exact in int64, else a "big" int (Python keeps it exactly) */
    int neg = p->s[start] == '-';
    uint64_t v = 0;
    int big = 0;
    for (size_t k = start + neg; k < p->pos; k++) {
        uint64_t d = (uint64_t)(p->s[k] - '0');
        if (v > (UINT64_MAX - d) / 10) { big = 1; break; }
        v = v * 10 + d;
    }
    if (big || v > (uint64_t)INT64_MAX) {
        nd->type = J_BIGINT;
        nd->number = neg ? -1.0 : 1.0;
    } else {
        nd->integer = neg ? -(int64_t)v : (int64_t)v;
    }
    return 1;
}

static int match_word(jparser *p, const char *w) {
    size_t len = strlen(w);
    if (p->pos + len > p->n || memcmp(p->s + p->pos, w, len) != 0) return 0;
    p->pos += len;
    return 1;
}

static int parse_value(jparser *p, int depth, size_t *index) {
    if (depth > MAX_DEPTH) return jerror(p, "nesting too deep");
    skip_ws(p);
    if (p->pos >= p->n) return jerror(p, "unexpected end");
    uint8_t c = p->s[p->pos];
    size_t start = p->pos;
    if (c == '"') {
        if (!scan_string(p)) return 0;
        size_t i = new_node(p, J_STRING, start + 1);
        if (p->nodes) p->nodes[i].end = (uint32_t)p->pos;
        p->pos++;
        *index = i;
        return 1;
    }
    if (c == '{' || c == '[') {
        int object = c == '{';
        size_t i = new_node(p, object ? J_OBJECT : J_ARRAY, start);
        *index = i;
        p->pos++;
        skip_ws(p);
        uint8_t close = object ? '}' : ']';
        size_t prev = 0, count = 0;
        if (p->pos < p->n && p->s[p->pos] == close) {
            p->pos++;
            return 1;
        }
        for (;;) {
            size_t child;
            skip_ws(p);
            if (object) {
                if (p->pos >= p->n || p->s[p->pos] != '"') return jerror(p, "expected a key");
                if (!parse_value(p, depth + 1, &child)) return 0;
                if (p->nodes) {
                    if (prev) p->nodes[prev].next = (uint32_t)child;
                    else p->nodes[i].first = (uint32_t)child;
                }
                prev = child;
                skip_ws(p);
                if (p->pos >= p->n || p->s[p->pos] != ':') return jerror(p, "expected ':'");
                p->pos++;
            }
            if (!parse_value(p, depth + 1, &child)) return 0;
            if (p->nodes) {
                if (prev) p->nodes[prev].next = (uint32_t)child;
                else p->nodes[i].first = (uint32_t)child;
            }
            prev = child;
            count++;
            skip_ws(p);
            if (p->pos < p->n && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->n && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            return jerror(p, "expected ',' or a closing bracket");
        }
        if (p->nodes) {
            p->nodes[i].count = (uint32_t)count;
            p->nodes[i].end = (uint32_t)p->pos;
        }
        return 1;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, index);
    uint8_t type;
    if (match_word(p, "true")) type = J_TRUE;
    else if (match_word(p, "false")) type = J_FALSE;
    else if (match_word(p, "null")) type = J_NULL;
    else return jerror(p, "unexpected character");
    size_t i = new_node(p, type, start);
    if (p->nodes) p->nodes[i].end = (uint32_t)p->pos;
    *index = i;
    return 1;
}

/* Whole header: strict UTF-8 (no surrogates), then one JSON value and only white space. */
static int parse_json(jparser *p) {
    const uint8_t *s = p->s;
    for (size_t i = 0; i < p->n;) {
        uint8_t b = s[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) { i++; continue; }
        if (b >= 0xC2 && b <= 0xDF) need = 1;
        else if (b >= 0xE0 && b <= 0xEF) { need = 2; if (b == 0xE0) lo = 0xA0; if (b == 0xED) hi = 0x9F; }
        else if (b >= 0xF0 && b <= 0xF4) { need = 3; if (b == 0xF0) lo = 0x90; if (b == 0xF4) hi = 0x8F; }
        else return fail(p->err, TP_ERR_JSON, "header is not valid JSON (not UTF-8 at byte %zu)", i);
        for (size_t k = 1; k <= need; k++) {
            uint8_t c = i + k < p->n ? s[i + k] : 0;
            if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF))
                return fail(p->err, TP_ERR_JSON, "header is not valid JSON (not UTF-8 at byte %zu)", i);
        }
        i += need + 1;
    }
    size_t root;
    p->pos = 0;
    p->n_nodes = 1; /* node 0 is "none" */
    if (!parse_value(p, 0, &root)) return 0;
    skip_ws(p);
    if (p->pos != p->n) return jerror(p, "extra data");
    return 1;
}

/* Decode a string node into out (UTF-8; lone surrogate escapes as 3-byte forms, as Python's
 * "surrogatepass" would encode them); returns the bytes. out needs end - start bytes. */
static size_t jdecode(const uint8_t *s, const jnode *nd, uint8_t *out) {
    size_t k = 0;
    for (size_t i = nd->start; i < nd->end;) {
        uint8_t c = s[i];
        if (c != '\\') {
            out[k++] = c;
            i++;
            continue;
        }
        uint8_t e = s[i + 1];
        i += 2;
        if (e != 'u') {
            out[k++] = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r'
                     : e == 't' ? '\t' : e;
            continue;
        }
        uint32_t cp = 0;
        for (int j = 0; j < 4; j++) cp = cp << 4 | (uint32_t)hexval(s[i + j]);
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= nd->end && s[i] == '\\' && s[i + 1] == 'u') {
            uint32_t lo = 0;
            for (int j = 0; j < 4; j++) lo = lo << 4 | (uint32_t)hexval(s[i + 2 + j]);
            if (lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
        }
        if (cp < 0x80) {
            out[k++] = (uint8_t)cp;
        } else if (cp < 0x800) {
            out[k++] = (uint8_t)(0xC0 | cp >> 6);
            out[k++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[k++] = (uint8_t)(0xE0 | cp >> 12);
            out[k++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            out[k++] = (uint8_t)(0x80 | (cp & 0x3F));
        } else {
            out[k++] = (uint8_t)(0xF0 | cp >> 18);
            out[k++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            out[k++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            out[k++] = (uint8_t)(0x80 | (cp & 0x3F));
        }
    }
    return k;
}

/* ---- loading context ------------------------------------------------------------------ */

typedef struct {
    const uint8_t *header; /* JSON bytes */
    jnode *nodes;
    uint8_t *decoded;      /* scratch: header_len bytes */
    uint64_t *pairs;       /* scratch: 2 per node (hash, index) */
    const uint8_t *blob;
    size_t blob_len;
    tp_error *err;
    const uint8_t *digest; /* the file's SHA-256 */
} loader;

static size_t str_of(loader *L, size_t node, uint8_t *out) {
    return jdecode(L->header, &L->nodes[node], out);
}

static int str_eq(loader *L, size_t node, const char *lit) {
    const jnode *nd = &L->nodes[node];
    if (nd->type != J_STRING || nd->end - nd->start > 6 * MAX_NAME) return 0;
    uint8_t buf[6 * MAX_NAME];
    size_t n = str_of(L, node, buf);
    return n == strlen(lit) && memcmp(buf, lit, n) == 0;
}

/* Value of key lit in object node, 0 if absent. */
static size_t get(loader *L, size_t object, const char *lit) {
    if (!object || L->nodes[object].type != J_OBJECT) return 0;
    for (size_t k = L->nodes[object].first; k; k = L->nodes[L->nodes[k].next].next)
        if (str_eq(L, k, lit)) return L->nodes[k].next;
    return 0;
}

static uint64_t fnv(const uint8_t *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h;
}

static void sort_pairs(uint64_t *x, size_t n) { /* heapsort of (hash, index) pairs by hash */
    for (size_t start = n / 2; start-- > 0;) {
        for (size_t root = start;;) {
            size_t c = 2 * root + 1;
            if (c >= n) break;
            if (c + 1 < n && x[2 * c] < x[2 * c + 2]) c++;
            if (x[2 * root] >= x[2 * c]) break;
            uint64_t a = x[2 * root], b = x[2 * root + 1];
            x[2 * root] = x[2 * c]; x[2 * root + 1] = x[2 * c + 1];
            x[2 * c] = a; x[2 * c + 1] = b;
            root = c;
        }
    }
    for (size_t end = n; end > 1; end--) {
        uint64_t a = x[0], b = x[1];
        x[0] = x[2 * (end - 1)]; x[1] = x[2 * (end - 1) + 1];
        x[2 * (end - 1)] = a; x[2 * (end - 1) + 1] = b;
        for (size_t root = 0;;) {
            size_t c = 2 * root + 1;
            if (c >= end - 1) break;
            if (c + 1 < end - 1 && x[2 * c] < x[2 * c + 2]) c++;
            if (x[2 * root] >= x[2 * c]) break;
            a = x[2 * root]; b = x[2 * root + 1];
            x[2 * root] = x[2 * c]; x[2 * root + 1] = x[2 * c + 1];
            x[2 * c] = a; x[2 * c + 1] = b;
            root = c;
        }
    }
}

/* Whether the strings at nodes (n of them, listed in pairs[2i+1]) hold a repeat. */
static int has_repeat(loader *L, size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t node = (size_t)L->pairs[2 * i + 1];
        L->pairs[2 * i] = fnv(L->decoded, str_of(L, node, L->decoded));
    }
    sort_pairs(L->pairs, n);
    for (size_t i = 1; i < n; i++) {
        if (L->pairs[2 * i] != L->pairs[2 * i - 2]) continue;
        size_t a = (size_t)L->pairs[2 * i - 1], b = (size_t)L->pairs[2 * i + 1];
        size_t la = str_of(L, a, L->decoded);
        uint8_t *second = L->decoded + la;
        size_t lb = jdecode(L->header, &L->nodes[b], second);
        if (la == lb && memcmp(L->decoded, second, la) == 0) return 1;
    }
    return 0;
}

static int check_duplicate_keys(loader *L, size_t n_nodes) {
    for (size_t i = 1; i < n_nodes; i++) {
        if (L->nodes[i].type != J_OBJECT || L->nodes[i].count < 2) continue;
        size_t n = 0;
        for (size_t k = L->nodes[i].first; k; k = L->nodes[L->nodes[k].next].next)
            L->pairs[2 * n++ + 1] = k;
        if (has_repeat(L, n))
            return fail(L->err, TP_ERR_JSON,
                        "header is not valid JSON (duplicate key in a JSON object)");
    }
    return 1;
}

static int is_int(loader *L, size_t node) {
    return node && (L->nodes[node].type == J_INT || L->nodes[node].type == J_BIGINT);
}
static int positive_int(loader *L, size_t node) {
    return node && L->nodes[node].type == J_INT && L->nodes[node].integer >= 1;
}

/* ---- the tensor table (model_file._check_table) --------------------------------------- */

/* int4: signed nibbles, two per byte (element 2i low, 2i + 1 high); an odd count's last high
   nibble is padding and must be 0 */
enum { DTYPE_INT4 = 4, N_DTYPES = 5 };
static const char *const DTYPE_NAMES[N_DTYPES] = {"int8", "float32", "int32", "uint8", "int4"};
static const size_t DTYPE_SIZES[N_DTYPES] = {1, 4, 4, 1, 0};

static uint64_t dtype_bytes(int d, uint64_t elements) {
    return d == DTYPE_INT4 ? (elements + 1) / 2 : elements * DTYPE_SIZES[d];
}

static int check_table(loader *L, size_t header) {
    size_t table = get(L, header, "tensors");
    if (!table || L->nodes[table].type != J_ARRAY)
        return fail(L->err, TP_ERR_TABLE, "header has no 'tensors' list");
    size_t i = 0, n = 0;
    for (size_t e = L->nodes[table].first; e; e = L->nodes[e].next, i++) {
        const jnode *entry = &L->nodes[e];
        static const char *const keys[5] = {"name", "dtype", "shape", "offset", "nbytes"};
        int ok = entry->type == J_OBJECT && entry->count == 5;
        for (int k = 0; ok && k < 5; k++) ok = get(L, e, keys[k]) != 0;
        if (!ok)
            return fail(L->err, TP_ERR_TABLE,
                        "tensor table entry %zu must have exactly the keys ['dtype', 'name', "
                        "'nbytes', 'offset', 'shape']", i);
        size_t name = get(L, e, "name");
        if (L->nodes[name].type != J_STRING || L->nodes[name].end == L->nodes[name].start)
            return fail(L->err, TP_ERR_TABLE, "tensor table entry %zu has no valid name", i);
        size_t dtype = get(L, e, "dtype");
        int d = -1;
        for (int k = 0; k < N_DTYPES; k++)
            if (str_eq(L, dtype, DTYPE_NAMES[k])) d = k;
        if (d < 0) return fail(L->err, TP_ERR_TABLE, "tensor entry %zu has a dtype not allowed", i);
        size_t shape = get(L, e, "shape");
        if (L->nodes[shape].type != J_ARRAY || L->nodes[shape].count > TP_MAX_TENSOR_DIMS)
            return fail(L->err, TP_ERR_TABLE, "tensor entry %zu shape is not a list of at most %d "
                        "non-negative ints", i, TP_MAX_TENSOR_DIMS);
        uint64_t elements = 1;
        int zero = 0, huge = 0;
        for (size_t s = L->nodes[shape].first; s; s = L->nodes[s].next) {
            if (!is_int(L, s) || L->nodes[s].number < 0 ||
                (L->nodes[s].type == J_INT && L->nodes[s].integer < 0))
                return fail(L->err, TP_ERR_TABLE, "tensor entry %zu shape is not a list of at most "
                            "%d non-negative ints", i, TP_MAX_TENSOR_DIMS);
            if (L->nodes[s].type == J_BIGINT) { huge = 1; continue; }
            uint64_t dim = (uint64_t)L->nodes[s].integer;
            if (dim == 0) zero = 1;
            else if (elements > TP_MAX_TENSOR_ELEMENTS || dim > TP_MAX_TENSOR_ELEMENTS) huge = 1;
            else elements *= dim;
        }
        if (zero) elements = 0, huge = 0;
        if (huge || elements > TP_MAX_TENSOR_ELEMENTS)
            return fail(L->err, TP_ERR_TABLE, "tensor entry %zu claims more than %d elements", i,
                        TP_MAX_TENSOR_ELEMENTS);
        size_t offset = get(L, e, "offset"), nbytes = get(L, e, "nbytes");
        if (!is_int(L, offset) || !is_int(L, nbytes))
            return fail(L->err, TP_ERR_TABLE, "tensor entry %zu offset and nbytes must be ints", i);
        uint64_t size = dtype_bytes(d, elements);
        if (L->nodes[nbytes].type != J_INT || (uint64_t)L->nodes[nbytes].integer != size)
            return fail(L->err, TP_ERR_TABLE, "tensor entry %zu nbytes does not match its shape", i);
        int64_t off = L->nodes[offset].type == J_INT ? L->nodes[offset].integer : -1;
        if (off < 0 || off % TP_ALIGNMENT || (uint64_t)off + size > L->blob_len)
            return fail(L->err, TP_ERR_TABLE, "tensor entry %zu is misaligned or outside the "
                        "%zu-byte tensor data", i, L->blob_len);
        if (d == DTYPE_INT4 && elements % 2 && L->blob[(uint64_t)off + size - 1] >> 4)
            return fail(L->err, TP_ERR_TABLE, "tensor entry %zu (int4) has a nonzero padding "
                        "nibble: the high nibble of its last byte must be 0", i);
        L->pairs[2 * n++ + 1] = name;
    }
    if (has_repeat(L, n)) return fail(L->err, TP_ERR_TABLE, "a tensor name appears twice");
    /* overlaps: sort (offset, index) and compare neighbours' spans */
    n = 0;
    for (size_t e = L->nodes[table].first; e; e = L->nodes[e].next) {
        L->pairs[2 * n] = (uint64_t)L->nodes[get(L, e, "offset")].integer;
        L->pairs[2 * n++ + 1] = e;
    }
    sort_pairs(L->pairs, n);
    uint64_t end = 0;
    for (size_t k = 0; k < n; k++) {
        size_t e = (size_t)L->pairs[2 * k + 1];
        uint64_t start = L->pairs[2 * k];
        uint64_t stop = start + (uint64_t)L->nodes[get(L, e, "nbytes")].integer;
        if (k && start < end) return fail(L->err, TP_ERR_TABLE, "two tensors overlap");
        if (stop > end) end = stop;
    }
    size_t labels = get(L, header, "labels");
    if (labels && L->nodes[labels].type != J_NULL) {
        if (L->nodes[labels].type != J_ARRAY)
            return fail(L->err, TP_ERR_TABLE, "'labels' must be a list of strings");
        for (size_t s = L->nodes[labels].first; s; s = L->nodes[s].next)
            if (L->nodes[s].type != J_STRING)
                return fail(L->err, TP_ERR_TABLE, "'labels' must be a list of strings");
        if (L->nodes[labels].count > TP_MAX_LABELS)
            return fail(L->err, TP_ERR_TABLE, "%u labels (limit %d)", L->nodes[labels].count,
                        TP_MAX_LABELS);
    }
    return 1;
}

/* The table entry of tensor name, checked for dtype and shape; 0 if absent. */
static size_t find_tensor(loader *L, size_t header, const char *name) {
    size_t table = get(L, header, "tensors");
    for (size_t e = L->nodes[table].first; e; e = L->nodes[e].next)
        if (str_eq(L, get(L, e, "name"), name)) return e;
    return 0;
}

static int check_tensor(loader *L, size_t header, const char *name, const char *dtype,
                        const size_t *shape, size_t dims, size_t *offset) {
    size_t e = find_tensor(L, header, name);
    if (!e) return fail(L->err, TP_ERR_TENSOR, "tensor '%s' is missing", name);
    int ok = str_eq(L, get(L, e, "dtype"), dtype);
    size_t s = get(L, e, "shape");
    ok = ok && L->nodes[s].count == dims;
    size_t k = 0;
    for (size_t d = L->nodes[s].first; ok && d; d = L->nodes[d].next, k++)
        ok = L->nodes[d].type == J_INT && (uint64_t)L->nodes[d].integer == shape[k];
    if (!ok) return fail(L->err, TP_ERR_TENSOR, "tensor '%s' is not %s of the expected shape", name, dtype);
    *offset = (size_t)L->nodes[get(L, e, "offset")].integer;
    if (dtype[0] == 'f') {
        for (size_t r = 0; r < shape[0]; r++) {
            uint32_t bits = le32(L->blob + *offset + 4 * r);
            if ((bits & 0x7F800000u) == 0x7F800000u)
                return fail(L->err, TP_ERR_TENSOR, "tensor '%s' holds non-finite values", name);
        }
    }
    return 1;
}

/* ---- the model ------------------------------------------------------------------------ */

typedef struct {
    uint8_t *base;
    size_t used, size;
} arena;

static void *take(arena *a, size_t bytes) {
    bytes = align8(bytes);
    if (a->size - a->used < bytes) return NULL;
    void *p = a->base + a->used;
    a->used += bytes;
    return p;
}

/* Every check up to the JSON parse, shared by tp_load_memory and tp_load_into. */
static int check_file(const uint8_t *data, size_t size, size_t *header_len, tp_error *err) {
    if (!data) return fail(err, TP_ERR_ARGUMENT, "no model bytes given");
    if (size < MIN_FILE_BYTES)
        return size == 0 ? fail(err, TP_ERR_TOO_SMALL, "file is empty, too small to be a textproj model")
                         : fail(err, TP_ERR_TOO_SMALL, "file is only %zu bytes, too small to be a "
                                "textproj model", size);
    if (memcmp(data, TP_MAGIC, 8) != 0)
        return fail(err, TP_ERR_MAGIC, "not a textproj model file (wrong magic bytes)");
    uint32_t version = le32(data + 8), hlen = le32(data + 12);
    if (version > TP_FORMAT_VERSION)
        return fail(err, TP_ERR_VERSION, "model format version %u needs a newer textproj (this one "
                    "reads version %d); upgrade textproj", version, TP_FORMAT_VERSION);
    if (version != TP_FORMAT_VERSION)
        return fail(err, TP_ERR_VERSION, "unknown model format version %u", version);
    if (hlen > TP_MAX_HEADER_BYTES)
        return fail(err, TP_ERR_HEADER_LENGTH, "header length %u exceeds the limit of %d", hlen,
                    TP_MAX_HEADER_BYTES);
    if ((size_t)PREFIX_BYTES + hlen + DIGEST_BYTES > size)
        return fail(err, TP_ERR_HEADER_LENGTH, "header length %u runs past the end of the "
                    "%zu-byte file (file truncated?)", hlen, size);
    uint8_t digest[32];
    sha256(data, size - DIGEST_BYTES, digest);
    if (memcmp(digest, data + size - DIGEST_BYTES, DIGEST_BYTES) != 0)
        return fail(err, TP_ERR_CHECKSUM, "checksum mismatch (file damaged or truncated?)");
    *header_len = hlen;
    return 1;
}

/* Whether a header may give a tensor the dtype int4: it holds the bytes int4, or an escape
   (which could spell them). Errs only towards yes. */
static int may_hold_int4(const uint8_t *header, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (header[i] == '\\' || (i + 4 <= n && memcmp(header + i, "int4", 4) == 0)) return 1;
    return 0;
}

size_t tp_load_memory(const uint8_t *data, size_t size, tp_error *err) {
    size_t hlen;
    if (!check_file(data, size, &hlen, err)) return 0;
    jparser p = {data + PREFIX_BYTES, hlen, 0, NULL, 0, err};
    if (!parse_json(&p)) return 0;
    size_t blob = size - PREFIX_BYTES - hlen - DIGEST_BYTES;
    /* the weights have at most w entries: one per blob byte, two if int4 */
    size_t w = may_hold_int4(data + PREFIX_BYTES, hlen) ? 2 * blob : blob;
    /* model, layers, windows; keys (n_words <= w / 64 + 1); labels (<= hlen / 2 of them)
       and their bytes; scales and biases (copies of blob floats); thresholds; the weights
       dequantized (at most 8 bytes an entry); then the loader's scratch: nodes, (hash, index)
       pairs, decoding buffer */
    return align8(sizeof(tp_model)) + align8((2 * TP_MAX_LAYERS + 2) * sizeof(tp_layer)) +
           align8(TP_MAX_LAYERS * sizeof(size_t)) + align8(w / 8 + 16) +
           align8((hlen / 2 + 1) * (sizeof(char *) + sizeof(size_t) + sizeof(float))) +
           align8(hlen + 1) + align8(blob + 8) + align8(8 * w + 8 * (2 * TP_MAX_LAYERS + 8)) +
           align8(TP_MAX_LAYERS * sizeof(size_t)) + align8(p.n_nodes * sizeof(jnode)) +
           align8(p.n_nodes * 16) + align8(2 * hlen + 8) + 8 * 16;
}

static const float *copy_floats(arena *a, const uint8_t *src, size_t n) {
    float *out = take(a, n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = le32(src + 4 * i);
        memcpy(&out[i], &bits, sizeof bits);
    }
    return out;
}

/* Quantized entry i (row-major) of a layer's weight, int8 or int4. */
static int weight_at(const tp_layer *l, size_t i) {
    if (!l->int4) return l->weight[i] < 128 ? l->weight[i] : l->weight[i] - 256;
    return (int)(((unsigned)l->weight[i / 2] >> (4 * (i % 2)) & 15u) ^ 8u) - 8;
}

static int load_layer(loader *L, arena *a, size_t header, const char *prefix, const size_t *shape,
                      size_t dims, tp_layer *layer) {
    char name[MAX_NAME + 16];
    size_t off_w, off_s, off_b;
    snprintf(name, sizeof name, "%s.weight", prefix);
    size_t entry = find_tensor(L, header, name);
    layer->int4 = entry && str_eq(L, get(L, entry, "dtype"), "int4");
    if (!check_tensor(L, header, name, layer->int4 ? "int4" : "int8", shape, dims, &off_w))
        return 0;
    snprintf(name, sizeof name, "%s.scale", prefix);
    if (!check_tensor(L, header, name, "float32", shape, 1, &off_s)) return 0;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (!check_tensor(L, header, name, "float32", shape, 1, &off_b)) return 0;
    layer->rows = shape[0];
    layer->cols = 1;
    for (size_t d = 1; d < dims; d++) layer->cols *= shape[d];
    layer->weight = L->blob + off_w;
    layer->scale = copy_floats(a, L->blob + off_s, shape[0]);
    layer->bias = copy_floats(a, L->blob + off_b, shape[0]);
    return 1;
}

static int int_field(loader *L, size_t object, const char *key, int64_t fallback, int64_t *out) {
    size_t v = get(L, object, key);
    if (!v) {
        *out = fallback;
        return 1;
    }
    if (L->nodes[v].type != J_INT || L->nodes[v].integer >= ((int64_t)1 << 31) ||
        L->nodes[v].integer <= -((int64_t)1 << 31))
        return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (FeatureConfig.%s must be an "
                    "int below 2**31)", key);
    *out = L->nodes[v].integer;
    return 1;
}

static int load_features(loader *L, size_t config, tp_features *f) {
    static const char *const known[9] = {"word_ngrams", "skip_grams", "char_ngram_min",
                                         "char_ngram_max", "word_weight", "char_weight",
                                         "sublinear", "max_chars", "max_tokens"};
    if (!config || L->nodes[config].type != J_OBJECT)
        return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (no 'features' object)");
    for (size_t k = L->nodes[config].first; k; k = L->nodes[L->nodes[k].next].next) {
        int ok = 0;
        for (int j = 0; j < 9; j++) ok |= str_eq(L, k, known[j]);
        if (!ok) return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (unknown FeatureConfig keys)");
    }
    if (!int_field(L, config, "word_ngrams", TP_DEFAULT_WORD_NGRAMS, &f->word_ngrams) ||
        !int_field(L, config, "skip_grams", TP_DEFAULT_SKIP_GRAMS, &f->skip_grams) ||
        !int_field(L, config, "char_ngram_min", TP_DEFAULT_CHAR_NGRAM_MIN, &f->char_min) ||
        !int_field(L, config, "char_ngram_max", TP_DEFAULT_CHAR_NGRAM_MAX, &f->char_max) ||
        !int_field(L, config, "word_weight", TP_DEFAULT_WORD_WEIGHT, &f->word_weight) ||
        !int_field(L, config, "char_weight", TP_DEFAULT_CHAR_WEIGHT, &f->char_weight) ||
        !int_field(L, config, "max_chars", TP_DEFAULT_MAX_CHARS, &f->max_chars) ||
        !int_field(L, config, "max_tokens", TP_DEFAULT_MAX_TOKENS, &f->max_tokens))
        return 0;
    size_t sub = get(L, config, "sublinear");
    if (sub && L->nodes[sub].type != J_TRUE && L->nodes[sub].type != J_FALSE)
        return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (sublinear must be true or false)");
    f->sublinear = sub ? L->nodes[sub].type == J_TRUE : TP_DEFAULT_SUBLINEAR;
    const char *bad = f->word_ngrams < 1 ? "word_ngrams" : f->skip_grams < 0 ? "skip_grams"
        : (f->char_max != 0 && f->char_min < 2) ? "char_ngram_min"
        : (f->char_max != 0 && f->char_max < f->char_min) ? "char_ngram_max"
        : (f->word_weight < 0 || f->word_weight > 255) ? "word_weight"
        : (f->char_weight < 0 || f->char_weight > 255) ? "char_weight"
        : f->max_chars < 1 ? "max_chars" : f->max_tokens < 1 ? "max_tokens" : NULL;
    if (bad) return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (FeatureConfig.%s is out of range)", bad);
    int64_t n_char = f->char_max ? f->char_max - f->char_min + 1 : 0;
    int64_t bound = 4 * f->max_chars * (f->word_ngrams + f->skip_grams + 3 * n_char) + 1;
    if (bound > TP_MAX_FEATURE_BOUND)
        return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (FeatureConfig allows %lld "
                    "features per text (limit %d))", (long long)bound, TP_MAX_FEATURE_BOUND);
    return 1;
}

/* num_projections / bits_per_projection: Python accepts an int >= 1 (True counts as 1). */
static int shape_field(loader *L, size_t v, int64_t *out) {
    if (v && L->nodes[v].type == J_TRUE) { *out = 1; return 1; }
    if (!positive_int(L, v)) return 0;
    *out = L->nodes[v].integer;
    return 1;
}

static int load_model(loader *L, arena *a, tp_model *m, size_t header) {
    if (L->nodes[header].type != J_OBJECT)
        return fail(L->err, TP_ERR_JSON, "header is not a JSON object");
    if (!check_table(L, header)) return 0;
    size_t uv = get(L, header, TP_UNICODE_VERSION_KEY);
    if (uv && !str_eq(L, uv, tp_unicode_version_string))
        return fail(L->err, TP_ERR_UNICODE, "model written with another Unicode version than "
                    "these tables (%s): re-export the C sources with the model's Python",
                    tp_unicode_version_string);
    size_t labels = get(L, header, "labels");
    if (!labels || L->nodes[labels].type != J_ARRAY || L->nodes[labels].count == 0)
        return fail(L->err, TP_ERR_HEADER, "header needs a non-empty 'labels' list");
    size_t n = 0;
    for (size_t s = L->nodes[labels].first; s; s = L->nodes[s].next) L->pairs[2 * n++ + 1] = s;
    if (has_repeat(L, n)) return fail(L->err, TP_ERR_HEADER, "'labels' must be distinct strings");
    m->n_labels = n;
    m->labels = take(a, n * sizeof(char *));
    m->label_lengths = take(a, n * sizeof(size_t));
    m->thresholds = take(a, n * sizeof(float));
    n = 0;
    for (size_t s = L->nodes[labels].first; s; s = L->nodes[s].next, n++) {
        char *text = take(a, L->nodes[s].end - L->nodes[s].start + 1);
        m->label_lengths[n] = jdecode(L->header, &L->nodes[s], (uint8_t *)text);
        text[m->label_lengths[n]] = 0;
        m->labels[n] = text;
    }
    /* network (netspec.check_network) */
    size_t net = get(L, header, "network");
    if (!net || L->nodes[net].type != J_OBJECT)
        return fail(L->err, TP_ERR_HEADER, "header has no 'network' object");
    size_t design = get(L, net, "design");
    int token = str_eq(L, design, "token");
    if (!token && !str_eq(L, design, "text"))
        return fail(L->err, TP_ERR_HEADER, "unknown network design");
    static const char *const text_ints[2] = {"n_bits", "n_labels"};
    static const char *const token_ints[4] = {"n_bits", "bottleneck", "filters", "n_labels"};
    for (int k = 0; k < (token ? 4 : 2); k++) {
        const char *key = token ? token_ints[k] : text_ints[k];
        if (!positive_int(L, get(L, net, key)))
            return fail(L->err, TP_ERR_HEADER, "network '%s' must be a positive int", key);
    }
    const char *list_key = token ? "windows" : "hidden";
    size_t list = get(L, net, list_key);
    if (!list || L->nodes[list].type != J_ARRAY)
        return fail(L->err, TP_ERR_HEADER, "network '%s' must be a list of positive ints", list_key);
    for (size_t s = L->nodes[list].first; s; s = L->nodes[s].next)
        if (!positive_int(L, s))
            return fail(L->err, TP_ERR_HEADER, "network '%s' must be a list of positive ints", list_key);
    if (L->nodes[list].count > TP_MAX_LAYERS)
        return fail(L->err, TP_ERR_HEADER, "network '%s' lists %u layers, more than %d", list_key,
                    L->nodes[list].count, TP_MAX_LAYERS);
    if (token && L->nodes[list].count == 0)
        return fail(L->err, TP_ERR_HEADER, "network 'windows' is empty");
    int64_t n_labels = L->nodes[get(L, net, "n_labels")].integer;
    if ((uint64_t)n_labels != m->n_labels)
        return fail(L->err, TP_ERR_HEADER, "network has %lld outputs but there are %zu labels",
                    (long long)n_labels, m->n_labels);
    int64_t n_bits = L->nodes[get(L, net, "n_bits")].integer;
    if (n_bits > (int64_t)TP_MAX_TENSOR_ELEMENTS)
        return fail(L->err, TP_ERR_TENSOR, "network 'n_bits' is larger than any tensor");
    m->token_design = token;
    m->n_bits = (size_t)n_bits;
    m->n_words = (m->n_bits + 63) / 64;
    /* the layers (netspec.expected_tensors), checked before anything is built from them */
    m->layers = take(a, (2 * TP_MAX_LAYERS + 2) * sizeof(tp_layer));
    size_t shape[3];
    m->max_width = m->n_labels;
    if (!token) {
        size_t in = m->n_bits, i = 0;
        for (size_t s = L->nodes[list].first;; s = L->nodes[s].next, i++) {
            size_t out = s ? (size_t)L->nodes[s].integer : m->n_labels;
            char prefix[32];
            snprintf(prefix, sizeof prefix, "dense.%zu", i);
            shape[0] = out;
            shape[1] = in;
            if (out > TP_MAX_TENSOR_ELEMENTS || !load_layer(L, a, header, prefix, shape, 2, &m->layers[i]))
                return out > TP_MAX_TENSOR_ELEMENTS ? fail(L->err, TP_ERR_TENSOR, "tensor '%s.weight' is too large", prefix) : 0;
            if (out > m->max_width) m->max_width = out;
            in = out;
            if (!s) break;
        }
        m->n_layers = i + 1;
    } else {
        int64_t e = L->nodes[get(L, net, "bottleneck")].integer;
        int64_t f = L->nodes[get(L, net, "filters")].integer;
        if (e > TP_MAX_TENSOR_ELEMENTS || f > TP_MAX_TENSOR_ELEMENTS)
            return fail(L->err, TP_ERR_TENSOR, "network bottleneck or filters too large");
        static const char *const pools[2] = {"max_pool", "mean_pool"};
        int *flags[2] = {&m->max_pool, &m->mean_pool};
        for (int p = 0; p < 2; p++) {
            size_t node = get(L, net, pools[p]);
            if (node && L->nodes[node].type != J_TRUE && L->nodes[node].type != J_FALSE)
                return fail(L->err, TP_ERR_HEADER, "network '%s' must be true or false", pools[p]);
            *flags[p] = node && L->nodes[node].type == J_TRUE;
        }
        m->bottleneck = (size_t)e;
        m->filters = (size_t)f;
        m->n_windows = L->nodes[list].count;
        m->windows = take(a, m->n_windows * sizeof(size_t));
        shape[0] = m->bottleneck;
        shape[1] = m->n_bits;
        if (!load_layer(L, a, header, "bottleneck", shape, 2, &m->layers[0])) return 0;
        size_t j = 0;
        for (size_t s = L->nodes[list].first; s; s = L->nodes[s].next, j++) {
            int64_t k = L->nodes[s].integer;
            if (k > TP_MAX_TENSOR_ELEMENTS) return fail(L->err, TP_ERR_TENSOR, "window too large");
            m->windows[j] = (size_t)k;
            char prefix[32];
            shape[0] = m->filters;
            shape[1] = m->bottleneck;
            shape[2] = (size_t)k;
            snprintf(prefix, sizeof prefix, "value.%zu", j);
            if (!load_layer(L, a, header, prefix, shape, 3, &m->layers[1 + 2 * j])) return 0;
            snprintf(prefix, sizeof prefix, "attention.%zu", j);
            if (!load_layer(L, a, header, prefix, shape, 3, &m->layers[2 + 2 * j])) return 0;
        }
        shape[0] = m->n_labels;
        shape[1] = m->filters * m->n_windows * (size_t)(1 + m->max_pool + m->mean_pool);
        if (!load_layer(L, a, header, "output", shape, 2, &m->layers[1 + 2 * m->n_windows]))
            return 0;
        m->n_layers = 2 + 2 * m->n_windows;
        if (shape[1] > m->max_width) m->max_width = shape[1];
        if (m->bottleneck > m->max_width) m->max_width = m->bottleneck;
    }
    /* multi_label and thresholds */
    size_t ml = get(L, header, "multi_label");
    if (ml && L->nodes[ml].type != J_TRUE && L->nodes[ml].type != J_FALSE)
        return fail(L->err, TP_ERR_HEADER, "'multi_label' must be true or false");
    m->multi_label = ml && L->nodes[ml].type == J_TRUE;
    size_t th = get(L, header, "thresholds");
    for (size_t i = 0; i < m->n_labels; i++) m->thresholds[i] = TP_DEFAULT_THRESHOLD;
    if (m->multi_label && th) {
        int ok = L->nodes[th].type == J_ARRAY && L->nodes[th].count == m->n_labels;
        size_t i = 0;
        for (size_t s = ok ? L->nodes[th].first : 0; ok && s; s = L->nodes[s].next, i++) {
            const jnode *v = &L->nodes[s];
            double x = v->type == J_INT ? (double)v->integer : v->number;
            ok = (v->type == J_INT || v->type == J_FLOAT) && isfinite(x);
            m->thresholds[i] = (float)x;
        }
        if (!ok) return fail(L->err, TP_ERR_HEADER, "'thresholds' must be one finite number per label");
    }
    /* projector (Projector.from_config, then its checks) */
    size_t proj = get(L, header, "projector");
    if (!proj || L->nodes[proj].type != J_OBJECT || !get(L, proj, "num_projections") ||
        !get(L, proj, "bits_per_projection") || !get(L, proj, "features") || !get(L, proj, "seed"))
        return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (a key is missing)");
    if (!load_features(L, get(L, proj, "features"), &m->features)) return 0;
    int64_t t_count, d_bits;
    if (!shape_field(L, get(L, proj, "num_projections"), &t_count))
        return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (num_projections must be a positive int)");
    if (!shape_field(L, get(L, proj, "bits_per_projection"), &d_bits))
        return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (bits_per_projection must be a positive int)");
    size_t seed_node = get(L, proj, "seed");
    const jnode *sn = &L->nodes[seed_node];
    uint64_t seed;
    if (sn->type == J_TRUE || sn->type == J_FALSE) seed = sn->type == J_TRUE;
    else if (sn->type == J_INT && sn->integer >= 0) seed = (uint64_t)sn->integer;
    else return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (seed must be an int in [0, 2**63))");
    if (t_count > INT32_MAX || d_bits > INT32_MAX || t_count * d_bits != n_bits)
        return fail(L->err, TP_ERR_HEADER, "bad 'projector' config (it gives %lld bits, the network "
                    "takes %lld)", (long long)(t_count * d_bits), (long long)n_bits);
    m->keys = take(a, m->n_words * sizeof(uint64_t));
    uint64_t base = tp_combine(0x5EED0400ull, seed);
    for (size_t w = 0; w < m->n_words; w++) m->keys[w] = tp_combine(base, (uint64_t)w);
    size_t tail = m->n_bits - 64 * (m->n_words - 1);
    m->last_mask = tail == 64 ? ~(uint64_t)0 : (((uint64_t)1 << tail) - 1);
    /* float weights for the forward pass */
    const tp_layer *l0 = &m->layers[0];
    m->first_t = take(a, l0->rows * l0->cols * sizeof(float));
    for (size_t o = 0; o < l0->rows; o++)
        for (size_t c = 0; c < l0->cols; c++)
            m->first_t[c * l0->rows + o] = (float)weight_at(l0, o * l0->cols + c) * l0->scale[o];
    for (size_t i = 1; i < m->n_layers; i++) {
        tp_layer *l = &m->layers[i];
        if (token && i != 1 + 2 * m->n_windows) continue; /* convolutions: taps below */
        l->weight_t = take(a, l->rows * l->cols * sizeof(double));
        for (size_t o = 0; o < l->rows; o++)
            for (size_t c = 0; c < l->cols; c++)
                l->weight_t[c * l->rows + o] = (double)((float)weight_at(l, o * l->cols + c) * l->scale[o]);
    }
    if (token) {
        size_t F = m->filters, E = m->bottleneck, start = 0;
        m->tap_starts = take(a, m->n_windows * sizeof(size_t));
        for (size_t j = 0; j < m->n_windows; j++) {
            m->tap_starts[j] = start;
            start += 2 * F * m->windows[j];
            if (m->windows[j] > m->max_window) m->max_window = m->windows[j];
        }
        m->tap_cols = start;
        m->taps = take(a, E * start * sizeof(double));
        for (size_t j = 0; j < m->n_windows; j++) {
            size_t k = m->windows[j];
            for (int kind = 0; kind < 2; kind++) {
                const tp_layer *l = &m->layers[1 + 2 * j + kind];
                for (size_t i = 0; i < k; i++)
                    for (size_t e = 0; e < E; e++)
                        for (size_t f2 = 0; f2 < F; f2++)
                            m->taps[e * start + m->tap_starts[j] + (kind * k + i) * F + f2] =
                                (double)((float)weight_at(l, f2 * E * k + e * k + i) * l->scale[f2]);
            }
        }
    }
    /* working memory */
    tp_features *f = &m->features;
    size_t tc = (size_t)(f->max_tokens < f->max_chars ? f->max_tokens : f->max_chars);
    m->max_features = token ? tp_token_feature_bound(f) : tp_feature_bound(f);
    m->max_rows = token ? tc : 1;
    size_t net_bytes = align8(m->n_words * 8) + align8(m->max_width * 2 * sizeof(double)) +
                       align8(m->max_width * sizeof(float)) +
                       (token ? align8(m->max_window * m->tap_cols * sizeof(double)) +
                                align8(m->max_window * sizeof(double *)) +
                                align8(m->filters * m->n_windows * (POOL_STATE + 2 * POOL_BLOCK) *
                                       sizeof(double))
                              : 0);
    m->workspace_bytes = tp_text_workspace(f, m->max_features) + net_bytes;
    m->group_offset = m->workspace_bytes;
    m->workspace_bytes += align8(TP_GROUP * (m->max_width + m->n_labels) * sizeof(double));
    if (token) {
        m->tables_offset = m->workspace_bytes;
        m->workspace_bytes += align8(m->n_words * 256 * m->layers[0].rows * sizeof(float));
        m->cache_offset = m->workspace_bytes;
        m->workspace_bytes += tp_token_cache_bytes(m->tap_cols, TP_TOKEN_CACHE_ENTRIES);
    }
    m->tag = 0x7470746f6b656e73ull;
    for (int k = 0; k < 8; k++) m->tag ^= (uint64_t)L->digest[k] << (8 * k);
    return 1;
}

tp_model *tp_load_into(const uint8_t *data, size_t size, void *memory, size_t memory_size,
                       tp_error *err) {
    size_t hlen;
    if (err) err->code = TP_OK, err->message[0] = 0;
    size_t need = tp_load_memory(data, size, err);
    if (!need) return NULL;
    if (!memory || ((uintptr_t)memory & 7) || memory_size < need) {
        fail(err, TP_ERR_MEMORY, "model needs %zu bytes of 8-byte aligned memory", need);
        return NULL;
    }
    check_file(data, size, &hlen, err);
    arena a = {memory, 0, memory_size};
    tp_model *m = take(&a, sizeof(tp_model));
    memset(m, 0, sizeof *m);
    /* the loader's scratch sits at the end of the arena */
    jparser p = {data + PREFIX_BYTES, hlen, 0, NULL, 0, err};
    parse_json(&p);
    size_t scratch = align8(p.n_nodes * sizeof(jnode)) + align8(p.n_nodes * 16) + align8(2 * hlen + 8);
    arena tmp = {(uint8_t *)memory + (memory_size - scratch) - ((memory_size - scratch) & 7), 0, scratch};
    a.size = (size_t)(tmp.base - a.base);
    p.nodes = take(&tmp, p.n_nodes * sizeof(jnode));
    loader L = {data + PREFIX_BYTES, p.nodes, take(&tmp, 2 * hlen + 8), take(&tmp, p.n_nodes * 16),
                data + PREFIX_BYTES + hlen, size - PREFIX_BYTES - hlen - DIGEST_BYTES, err,
                data + size - DIGEST_BYTES};
    parse_json(&p);
    if (!check_duplicate_keys(&L, p.n_nodes) || !load_model(&L, &a, m, 1)) return NULL;
    return m;
}

tp_model *tp_load(const uint8_t *data, size_t size, tp_error *err) {
    if (err) err->code = TP_OK, err->message[0] = 0;
    size_t need = tp_load_memory(data, size, err);
    if (!need) return NULL;
    void *memory = malloc(need);
    if (!memory) {
        fail(err, TP_ERR_MEMORY, "cannot allocate %zu bytes for the model", need);
        return NULL;
    }
    tp_model *m = tp_load_into(data, size, memory, need, err);
    if (!m) {
        free(memory);
        return NULL;
    }
    m->owned = memory;
    return m;
}

void tp_free(tp_model *model) {
    if (model) free(model->owned);
}

/* The accessors answer a NULL model (and a label index out of range) with 0 or NULL. */
size_t tp_n_labels(const tp_model *m) { return m ? m->n_labels : 0; }
const char *tp_label(const tp_model *m, size_t i, size_t *length) {
    int known = m && i < m->n_labels;
    if (length) *length = known ? m->label_lengths[i] : 0;
    return known ? m->labels[i] : NULL;
}
int tp_multi_label(const tp_model *m) { return m ? m->multi_label : 0; }
float tp_threshold(const tp_model *m, size_t i) {
    return m && i < m->n_labels ? m->thresholds[i] : 0.0f;
}
const char *tp_unicode_version(void) { return tp_unicode_version_string; }
size_t tp_workspace_bytes(const tp_model *m) { return m ? m->workspace_bytes : 0; }
size_t tp_bit_words(const tp_model *m) { return m ? m->n_words : 0; }
size_t tp_max_bit_rows(const tp_model *m) { return m ? m->max_rows : 0; }

/* ---- forward pass --------------------------------------------------------------------- */

/* First layer on packed bits, as textproj._kernels.network.packed_linear computes it: float32
 * accumulation from the bias of one float32 partial sum per set nibble (the exact sum of its
 * float32 weights, rounded once: the nibble tables' entries), word by word, nibble by nibble. */
static void first_layer(const tp_model *m, const uint64_t *words, int relu, float *restrict out) {
    const tp_layer *l = &m->layers[0];
    size_t rows = l->rows;
    for (size_t o = 0; o < rows; o++) out[o] = l->bias[o];
    for (size_t w = 0; w < m->n_words; w++) {
        for (size_t q = 0; q < 16; q++) {
            unsigned v = (unsigned)(words[w] >> (4 * q)) & 15u;
            if (!v) continue;
            size_t col = 64 * w + 4 * q, n = 0;
            const float *restrict r[4];
            for (unsigned b = 0; b < 4; b++)
                if ((v >> b) & 1 && col + b < l->cols) r[n++] = m->first_t + (col + b) * rows;
            if (n == 1) {
                for (size_t o = 0; o < rows; o++) out[o] += r[0][o];
            } else if (n == 2) {
                for (size_t o = 0; o < rows; o++) out[o] += (float)((double)r[0][o] + r[1][o]);
            } else if (n == 3) {
                for (size_t o = 0; o < rows; o++)
                    out[o] += (float)((double)r[0][o] + r[1][o] + r[2][o]);
            } else if (n == 4) {
                for (size_t o = 0; o < rows; o++)
                    out[o] += (float)((double)r[0][o] + r[1][o] + r[2][o] + r[3][o]);
            }
        }
    }
    if (relu)
        for (size_t o = 0; o < rows; o++) out[o] = out[o] > 0 ? out[o] : 0;
}

/* The nibble tables of a token model's first layer (the partial sums first_layer adds, one per
 * value of each nibble of the input words: entry (16 * position + v) holds rows floats), built
 * in each workspace (n_words * 16 * 16 * rows floats) when its token cache is reset. */
static void build_nibble_tables(const tp_model *m, float *restrict tables) {
    const tp_layer *l = &m->layers[0];
    size_t rows = l->rows;
    for (size_t pos = 0; pos < m->n_words * 16; pos++)
        for (unsigned v = 0; v < 16; v++) {
            float *restrict out = tables + (16 * pos + v) * rows;
            size_t col = 4 * pos, n = 0;
            const float *r[4];
            for (unsigned b = 0; b < 4; b++)
                if ((v >> b) & 1 && col + b < l->cols) r[n++] = m->first_t + (col + b) * rows;
            for (size_t o = 0; o < rows; o++) {
                double sum = 0;
                for (size_t i = 0; i < n; i++) sum += r[i][o];
                out[o] = n == 1 ? r[0][o] : (float)sum; /* as first_layer adds it */
            }
        }
}

/* first_layer through the nibble tables: the same float32 additions in the same order. */
static void first_layer_tables(const tp_model *m, const uint64_t *words, const float *tables,
                               float *restrict out) {
    const tp_layer *l = &m->layers[0];
    size_t rows = l->rows;
    for (size_t o = 0; o < rows; o++) out[o] = l->bias[o];
    for (size_t w = 0; w < m->n_words; w++)
        for (size_t q = 0; q < 16; q++) {
            unsigned v = (unsigned)(words[w] >> (4 * q)) & 15u;
            if (!v) continue;
            const float *restrict r = tables + (16 * (16 * w + q) + v) * rows;
            for (size_t o = 0; o < rows; o++) out[o] += r[o];
        }
    for (size_t o = 0; o < rows; o++) out[o] = out[o] > 0 ? out[o] : 0;
}

/* out = bias + weight . x, in double with the float32 dequantized weights (the network the
 * file defines), summed in input order (column by column of the transposed weight, so that
 * the compiler vectorises over the outputs). */
static void dense(const tp_layer *l, const double *x, int relu, double *restrict out) {
    size_t rows = l->rows;
    for (size_t o = 0; o < rows; o++) out[o] = l->bias[o];
    for (size_t c = 0; c < l->cols; c++) {
        double xc = x[c];
        if (xc == 0) continue;
        const double *restrict w = l->weight_t + c * rows;
        for (size_t o = 0; o < rows; o++) out[o] += w[o] * xc;
    }
    if (relu)
        for (size_t o = 0; o < rows; o++) out[o] = out[o] < 0 ? 0 : out[o];
}

static size_t text_bits(const tp_model *m, const uint8_t *text, size_t length, void *workspace,
                        tp_text *t, uint64_t *rows, uint8_t **rest) {
    tp_feature *feats;
    *rest = tp_prepare_text(&m->features, m->max_features, text, length, workspace, t, &feats);
    if (!m->token_design) {
        size_t n = tp_text_features(&m->features, t, feats);
        tp_project(feats, n, m->keys, m->n_words, m->last_mask, rows);
        return 1;
    }
    /* token bits need the token hashes of tp_text_features only for n-grams: per token here */
    for (size_t i = 0; i < t->n_tokens; i++) {
        size_t n = tp_token_features(&m->features, t, i, feats);
        tp_project(feats, n, m->keys, m->n_words, m->last_mask, rows + i * m->n_words);
    }
    return t->n_tokens;
}

size_t tp_bits(const tp_model *m, const uint8_t *text, size_t length, void *workspace,
               uint64_t *rows) {
    tp_text t;
    uint8_t *rest;
    if (!m || !workspace || !rows || (!text && length)) return 0;
    return text_bits(m, text, length, workspace, &t, rows, &rest);
}

size_t tp_normalize(const tp_model *m, const uint8_t *text, size_t length, void *workspace,
                    uint8_t *out) {
    tp_text t;
    tp_feature *feats;
    if (!m || !workspace || !out || (!text && length)) return 0;
    tp_prepare_text(&m->features, m->max_features, text, length, workspace, &t, &feats);
    memcpy(out, t.utf8, t.n_bytes);
    return t.n_bytes;
}

/* e^x for x <= 708 (to about 1e-15 relative; x below -708 counts as -708, a weight of 1e-308
 * beside one of 1), in plain arithmetic that the compiler vectorises: x = k ln 2 + r with k
 * rounded by the 1.5 * 2^52 trick, a degree-12 Taylor polynomial for e^r (|r| <= 0.35), and
 * 2^k written into the exponent bits. */
static inline double exp_small(double x) {
    const double round = 6755399441055744.0; /* 1.5 * 2^52 */
    double below = -708.0 - x;
    x += 0.5 * (below + fabs(below)); /* max(x, -708), branch-free and exact for x >= -708 */
    double t = x * 1.4426950408889634 + round;
    double k = t - round;
    double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double p = 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t bits;
    memcpy(&bits, &t, 8);
    bits = (bits - UINT64_C(0x4338000000000000) + 1023) << 52; /* k + 1023 in [1, 2045]: 2^k */
    double scale;
    memcpy(&scale, &bits, 8);
    return p * scale;
}

/* Fold a block of positions into a running softmax-weighted mean, per column: logits a and
 * values v (nb rows of width), running peak, total weight and weighted sum; the running sums
 * are rescaled once per block when the peak rises. "Max" is computed without branches, so it
 * may be off by a rounding step: a softmax does not depend on the shift. */
static void softmax_block(size_t nb, size_t width, const double *restrict a,
                          const double *restrict v, int first, double *restrict top,
                          double *restrict peak, double *restrict total, double *restrict acc) {
    for (size_t c = 0; c < width; c++) top[c] = a[c];
    for (size_t q = 1; q < nb; q++)
        for (size_t c = 0; c < width; c++) {
            double x = a[q * width + c];
            top[c] = 0.5 * (x + top[c] + fabs(x - top[c]));
        }
    if (first) {
        for (size_t c = 0; c < width; c++) {
            peak[c] = top[c];
            total[c] = acc[c] = 0;
        }
    } else {
        for (size_t c = 0; c < width; c++) {
            double up = 0.5 * (top[c] + peak[c] + fabs(top[c] - peak[c]));
            double r = exp_small(peak[c] - up);
            total[c] *= r;
            acc[c] *= r;
            peak[c] = up;
        }
    }
    for (size_t q = 0; q < nb; q++)
        for (size_t c = 0; c < width; c++) {
            double e = exp_small(a[q * width + c] - peak[c]);
            total[c] += e;
            acc[c] += e * v[q * width + c];
        }
}

/* One token's products with every convolution tap: row = x @ taps, summed in double (the
 * products of the float32 weights, held as doubles, with float32 x are exact), four bottleneck
 * entries at a time. */
static void tap_row(const tp_model *m, const float *x, double *restrict row) {
    size_t cols = m->tap_cols, k = 0;
    const double *restrict w[4];
    double s[4];
    for (size_t c = 0; c < cols; c++) row[c] = 0;
    for (size_t e = 0; e <= m->bottleneck; e++) {
        if (e < m->bottleneck) {
            if (x[e] == 0) continue;
            w[k] = m->taps + e * cols;
            s[k++] = x[e];
            if (k < 4) continue;
        } else if (k == 0) {
            break;
        }
        for (; k < 4; k++) { /* the last group: pad with zero weights of a used row */
            w[k] = w[0];
            s[k] = 0;
        }
        for (size_t c = 0; c < cols; c++)
            row[c] += (s[0] * w[0][c] + s[1] * w[1][c]) + (s[2] * w[2][c] + s[3] * w[3][c]);
        k = 0;
    }
}

/* Token i's bottleneck and tap products, computed: row = relu(first layer) @ taps. */
static void compute_taps(const tp_model *m, const tp_text *t, size_t i, tp_feature *feats,
                         uint64_t *bits, const float *tables, float *x, double *row) {
    size_t k = tp_token_features(&m->features, t, i, feats);
    tp_project(feats, k, m->keys, m->n_words, m->last_mask, bits);
    first_layer_tables(m, bits, tables, x);
    tap_row(m, x, row);
}

/* Max pooling (network max_pool): one window position's values, the sum of its `taps` (1, 2
 * or 3) rows r0 + r1 + r2 (token_pool's without the bias, token_pool_exact's one row with it),
 * into the running maxima top. Only max-pooling models call it: the others' pooling does no
 * more work than before. */
static void pool_max(size_t F, size_t taps, const double *restrict r0, const double *restrict r1,
                     const double *restrict r2, double *restrict top) {
    if (taps == 1)
        for (size_t f = 0; f < F; f++) top[f] = r0[f] > top[f] ? r0[f] : top[f];
    else if (taps == 2)
        for (size_t f = 0; f < F; f++) {
            double v = r0[f] + r1[f];
            top[f] = v > top[f] ? v : top[f];
        }
    else
        for (size_t f = 0; f < F; f++) {
            double v = r0[f] + r1[f] + r2[f];
            top[f] = v > top[f] ? v : top[f];
        }
}

/* Mean pooling (network mean_pool): one window position's values, as pool_max takes them, added
 * to the running sums. */
static void pool_sum(size_t F, size_t taps, const double *restrict r0, const double *restrict r1,
                     const double *restrict r2, double *restrict sums) {
    if (taps == 1)
        for (size_t f = 0; f < F; f++) sums[f] += r0[f];
    else if (taps == 2)
        for (size_t f = 0; f < F; f++) sums[f] += r0[f] + r1[f];
    else
        for (size_t f = 0; f < F; f++) sums[f] += r0[f] + r1[f] + r2[f];
}

/* The pooled features past the attention's (width = filters x windows each): the maxima, then
 * the means, of a text of n positions; `bias` 1 adds each window's value bias (the fast path
 * sums the taps without it), 0 takes them as they are. */
static void pool_extra(const tp_model *m, size_t n, int bias, const double *largest,
                       const double *sums, double *pooled) {
    size_t F = m->filters, width = F * m->n_windows;
    double *means = pooled + (m->max_pool ? 2 : 1) * width;
    for (size_t j = 0; j < m->n_windows; j++)
        for (size_t f = 0; f < F; f++) {
            double b = bias ? m->layers[1 + 2 * j].bias[f] : 0;
            if (m->max_pool) pooled[width + j * F + f] = b + largest[j * F + f];
            if (m->mean_pool) means[j * F + f] = b + sums[j * F + f] / (double)n;
        }
}

/* The exact attention pooling (nets.TokenProjectionNet), for models whose attention logits
 * are too large for the fast path: window position p sums tap i of token p + i (zero padding
 * past the end), then a softmax over the positions per filter weights the values; online, in
 * double, the last max_window tap rows kept in the ring. */
static void token_pool_exact(const tp_model *m, const tp_text *t, tp_feature *feats,
                             uint64_t *bits, const float *tables, float *x, double *ring,
                             double *pooled, double *state) {
    size_t F = m->filters, W = m->n_windows, n = t->n_tokens, kmax = m->max_window;
    size_t width = F * W, cols = m->tap_cols, done = 0;
    double *peak = state, *total = peak + width, *acc = total + width, *top = acc + width;
    double *largest = top + width, *sums = largest + width, *va = sums + width;
    double *vv = va + POOL_BLOCK * width;
    for (size_t c = 0; c < width; c++) {
        largest[c] = -INFINITY;
        sums[c] = 0;
    }
    for (size_t b0 = 0; b0 < n; b0 += POOL_BLOCK) {
        size_t nb = n - b0 < POOL_BLOCK ? n - b0 : POOL_BLOCK;
        for (size_t q = 0; q < nb; q++) {
            size_t p = b0 + q;
            for (; done < n && done < p + kmax; done++)
                compute_taps(m, t, done, feats, bits, tables, x, ring + (done % kmax) * cols);
            for (size_t j = 0; j < W; j++) {
                const tp_layer *value = &m->layers[1 + 2 * j], *attention = &m->layers[2 + 2 * j];
                size_t k = m->windows[j], taps = k < n - p ? k : n - p, start = m->tap_starts[j];
                double *restrict v = vv + q * width + j * F, *restrict a = va + q * width + j * F;
                for (size_t f = 0; f < F; f++) {
                    v[f] = value->bias[f];
                    a[f] = attention->bias[f];
                }
                for (size_t i = 0; i < taps; i++) {
                    const double *restrict row = ring + ((p + i) % kmax) * cols + start;
                    for (size_t f = 0; f < F; f++) v[f] += row[i * F + f];
                    for (size_t f = 0; f < F; f++) a[f] += row[(k + i) * F + f];
                }
                if (m->max_pool) pool_max(F, 1, v, v, v, largest + j * F);
                if (m->mean_pool) pool_sum(F, 1, v, v, v, sums + j * F);
            }
        }
        softmax_block(nb, width, va, vv, b0 == 0, top, peak, total, acc);
    }
    for (size_t c = 0; c < width; c++) pooled[c] = acc[c] / total[c];
    pool_extra(m, n, 0, largest, sums, pooled);
}

/* The token cache keeps each recent distinct token's tap products, keyed by the token's bytes
 * (checked in full): a token's bits, and so its products, depend on its bytes alone, so a hit
 * gives exactly what computing gives and skips its features, projection, bottleneck and taps.
 * It has `entries` rows (a multiple of CACHE_WAYS, or 0), in sets of CACHE_WAYS chosen by the
 * token's word hash, each set replacing its oldest entry first. The attention taps are kept as
 * their exponentials (see token_pool). */
#define CACHE_WAYS 4

typedef struct {
    uint64_t hash;
    uint32_t length;
    uint32_t state; /* CACHE_EMPTY, CACHE_EXP (attention taps exponentiated), CACHE_WILD */
} cache_entry;

enum { CACHE_EMPTY = 0, CACHE_EXP = 1, CACHE_WILD = 2 };

typedef struct {
    size_t n;
    cache_entry *entries;
    uint8_t *next;  /* per set: the way to replace next */
    uint8_t *keys;  /* TP_TOKEN_KEY_BYTES per entry */
    double *rows;   /* tap_cols per entry */
    const float *tables; /* the first layer's nibble tables, in the same workspace */
} token_cache;

size_t tp_token_cache_bytes(size_t cols, size_t entries) {
    size_t n = entries;
    return 8 + align8(n * sizeof(cache_entry)) + align8(n / CACHE_WAYS) +
           align8(n * TP_TOKEN_KEY_BYTES) + align8(n * cols * sizeof(double));
}

static token_cache open_cache(const tp_model *m, void *workspace, size_t entries) {
    uint8_t *region = (uint8_t *)workspace + m->cache_offset;
    float *tables = (float *)((uint8_t *)workspace + m->tables_offset);
    token_cache c;
    c.tables = tables;
    size_t n = entries;
    c.n = n;
    c.entries = (cache_entry *)(region + 8);
    c.next = (uint8_t *)c.entries + align8(n * sizeof(cache_entry));
    c.keys = c.next + align8(n / CACHE_WAYS);
    c.rows = (double *)(c.keys + align8(n * TP_TOKEN_KEY_BYTES));
    uint64_t tag, ours = m->tag ^ ((uint64_t)n << 40);
    memcpy(&tag, region, 8);
    if (tag != ours) { /* a fresh workspace, or one another model or cache size used */
        memcpy(region, &ours, 8);
        memset(c.entries, 0, n * sizeof(cache_entry));
        memset(c.next, 0, n / CACHE_WAYS);
        build_nibble_tables(m, tables);
    }
    return c;
}

/* The largest attention tap whose exponential the fast path takes: a position's weight is a
 * product of at most max_window of them, so it stays within e^-TP_EXP_RANGE..e^TP_EXP_RANGE
 * (normal doubles, sums of a million of them finite). */
#define TP_EXP_RANGE 600.0

/* Replace each window's attention taps of a computed row by their exponentials; 0 if one is
 * out of the fast path's range (or not a number). */
static int exponentiate(const tp_model *m, double *row) {
    double bound = TP_EXP_RANGE / (double)m->max_window;
    int ok = 1;
    for (size_t j = 0; j < m->n_windows; j++) {
        size_t k = m->windows[j], F = m->filters;
        double *a = row + m->tap_starts[j] + k * F;
        for (size_t c = 0; c < k * F; c++) ok &= fabs(a[c]) <= bound;
    }
    if (!ok) return 0;
    for (size_t j = 0; j < m->n_windows; j++) {
        size_t k = m->windows[j], F = m->filters;
        double *a = row + m->tap_starts[j] + k * F;
        for (size_t c = 0; c < k * F; c++) a[c] = exp_small(a[c]);
    }
    return 1;
}

/* Token `done`'s row (value taps, exponentiated attention taps) for ring position q: a cache
 * entry, or computed into the cache (or into the ring's own buffer q). A cache entry still in
 * use by an earlier ring position is copied to that position's buffer before it is replaced.
 * Returns NULL if the row is out of the fast path's range. */
static const double *token_row(const tp_model *m, const tp_text *t, size_t done, tp_feature *feats,
                               uint64_t *bits, float *x, double *ring, const double **live,
                               token_cache *cache) {
    size_t cols = m->tap_cols, kmax = m->max_window, q = done % kmax, n = cache->n;
    size_t length;
    const uint8_t *bytes = tp_token_bytes(t, done, &length);
    double *row = ring + q * cols;
    cache_entry *e = NULL;
    if (n && length <= TP_TOKEN_KEY_BYTES) {
        uint64_t h = tp_word_hash(bytes, length);
        size_t set = (size_t)(h % (n / CACHE_WAYS)), slot = set * CACHE_WAYS;
        for (size_t way = 0; way < CACHE_WAYS; way++, slot++) {
            e = &cache->entries[slot];
            if (e->state != CACHE_EMPTY && e->hash == h && e->length == length &&
                memcmp(cache->keys + slot * TP_TOKEN_KEY_BYTES, bytes, length) == 0)
                return e->state == CACHE_EXP ? cache->rows + slot * cols : NULL;
        }
        slot = set * CACHE_WAYS + cache->next[set];
        cache->next[set] = (uint8_t)((cache->next[set] + 1) % CACHE_WAYS);
        e = &cache->entries[slot];
        uint8_t *key = cache->keys + slot * TP_TOKEN_KEY_BYTES;
        double *cached = cache->rows + slot * cols;
        for (size_t r = 0; r < kmax; r++) /* keep earlier positions' rows */
            if (r != q && live[r] == cached) {
                memcpy(ring + r * cols, cached, cols * sizeof(double));
                live[r] = ring + r * cols;
            }
        e->hash = h;
        e->length = (uint32_t)length;
        e->state = CACHE_EMPTY;
        memcpy(key, bytes, length);
        row = cached;
    }
    compute_taps(m, t, done, feats, bits, cache->tables, x, row);
    int ok = exponentiate(m, row);
    if (e) e->state = ok ? CACHE_EXP : CACHE_WILD;
    return ok ? row : NULL;
}

/* One position of a window of 1, 2 or 3 tokens into the running sums t (weights) and a
 * (weighted values): row ri holds the value taps of the position's token i and, e further on,
 * its exponentiated attention taps. Parameters, so that restrict lets the loops vectorise. */
static void pool1(size_t F, size_t e, const double *restrict r0, double *restrict t,
                  double *restrict a) {
    for (size_t f = 0; f < F; f++) {
        t[f] += r0[e + f];
        a[f] += r0[e + f] * r0[f];
    }
}

static void pool2(size_t F, size_t e, const double *restrict r0, const double *restrict r1,
                  double *restrict t, double *restrict a) {
    for (size_t f = 0; f < F; f++) {
        double w = r0[e + f] * r1[e + f];
        t[f] += w;
        a[f] += w * (r0[f] + r1[f]);
    }
}

static void pool3(size_t F, size_t e, const double *restrict r0, const double *restrict r1,
                  const double *restrict r2, double *restrict t, double *restrict a) {
    for (size_t f = 0; f < F; f++) {
        double w = r0[e + f] * r1[e + f] * r2[e + f];
        t[f] += w;
        a[f] += w * (r0[f] + r1[f] + r2[f]);
    }
}


/* Attention pooling (nets.TokenProjectionNet) from cached rows: for window j and filter f,
 * position p's value is b + sum_i V_i(token p + i) and its softmax weight exp(a + sum_i
 * A_i(token p + i)) over the positions, where the attention bias a cancels, so the weight is the
 * product of the tokens' exp(A_i) (padding past the end contributes 0, a factor 1): no exp per
 * position. pooled = b + sum_p w_p v_p / sum_p w_p, in double. Returns 0 (pooled unset) if a
 * token's row is out of range or the result not finite: token_pool_exact then decides. */
static int token_pool(const tp_model *m, const tp_text *t, tp_feature *feats, uint64_t *bits,
                      float *x, double *ring, const double **live, token_cache *cache,
                      double *pooled, double *state) {
    size_t F = m->filters, W = m->n_windows, n = t->n_tokens, kmax = m->max_window;
    size_t width = F * W, done = 0;
    double *total = state, *acc = total + width, *largest = acc + width, *sums = largest + width;
    double *sv = sums + width, *se = sv + F;
    for (size_t c = 0; c < width; c++) {
        total[c] = acc[c] = sums[c] = 0;
        largest[c] = -INFINITY;
    }
    for (size_t r = 0; r < kmax; r++) live[r] = NULL;
    for (size_t p = 0; p < n; p++) {
        for (; done < n && done < p + kmax; done++) {
            live[done % kmax] = token_row(m, t, done, feats, bits, x, ring, live, cache);
            if (!live[done % kmax]) return 0;
        }
        for (size_t j = 0; j < W; j++) {
            size_t k = m->windows[j], taps = k < n - p ? k : n - p, start = m->tap_starts[j];
            double *restrict tj = total + j * F, *restrict aj = acc + j * F;
            double *restrict lj = largest + j * F, *restrict sj = sums + j * F;
            const double *restrict r0 = live[p % kmax] + start;
            if (taps == 1) { /* one loop per filter for windows of up to 3 tokens */
                pool1(F, k * F, r0, tj, aj);
                if (m->max_pool) pool_max(F, 1, r0, r0, r0, lj);
                if (m->mean_pool) pool_sum(F, 1, r0, r0, r0, sj);
                continue;
            }
            const double *restrict r1 = live[(p + 1) % kmax] + start + F;
            if (taps == 2) {
                pool2(F, k * F, r0, r1, tj, aj);
                if (m->max_pool) pool_max(F, 2, r0, r1, r1, lj);
                if (m->mean_pool) pool_sum(F, 2, r0, r1, r1, sj);
                continue;
            }
            const double *restrict r2 = live[(p + 2) % kmax] + start + 2 * F;
            if (taps == 3) {
                pool3(F, k * F, r0, r1, r2, tj, aj);
                if (m->max_pool) pool_max(F, 3, r0, r1, r2, lj);
                if (m->mean_pool) pool_sum(F, 3, r0, r1, r2, sj);
                continue;
            }
            double *restrict v = sv, *restrict w = se;
            for (size_t f = 0; f < F; f++) {
                v[f] = r0[f];
                w[f] = r0[k * F + f];
            }
            for (size_t i = 1; i < taps; i++) {
                const double *restrict ri = live[(p + i) % kmax] + start;
                for (size_t f = 0; f < F; f++) {
                    v[f] += ri[i * F + f];
                    w[f] *= ri[(k + i) * F + f];
                }
            }
            for (size_t f = 0; f < F; f++) {
                tj[f] += w[f];
                aj[f] += w[f] * v[f];
            }
            if (m->max_pool) pool_max(F, 1, v, v, v, lj);
            if (m->mean_pool) pool_sum(F, 1, v, v, v, sj);
        }
    }
    int ok = 1;
    for (size_t j = 0; j < W; j++)
        for (size_t f = 0; f < F; f++) {
            double b = m->layers[1 + 2 * j].bias[f];
            double y = b + acc[j * F + f] / total[j * F + f];
            ok &= isfinite(y) != 0;
            pooled[j * F + f] = y;
        }
    pool_extra(m, n, 1, largest, sums, pooled);
    return ok;
}

/* A text's logits (token design: its pooled features, the input of the output layer) into out:
 * the text path and the network up to there, in the single-text part of the workspace. */
static void text_forward(const tp_model *m, const uint8_t *text, size_t length, void *workspace,
                         token_cache *cache, double *out) {
    tp_text t;
    uint8_t *rest;
    tp_feature *feats;
    rest = tp_prepare_text(&m->features, m->max_features, text, length, workspace, &t, &feats);
    uint64_t *bits = (uint64_t *)rest;
    rest += align8(m->n_words * 8);
    double *u = (double *)rest, *v = u + m->max_width;
    rest += align8(m->max_width * 2 * sizeof(double));
    float *first = (float *)rest;
    rest += align8(m->max_width * sizeof(float));
    if (!m->token_design) {
        size_t n = tp_text_features(&m->features, &t, feats);
        tp_project(feats, n, m->keys, m->n_words, m->last_mask, bits);
        first_layer(m, bits, m->n_layers > 1, first);
        for (size_t o = 0; o < m->layers[0].rows; o++) u[o] = first[o];
        for (size_t i = 1; i < m->n_layers; i++) {
            dense(&m->layers[i], u, i + 1 < m->n_layers, v);
            double *swap = u;
            u = v;
            v = swap;
        }
        memcpy(out, u, m->n_labels * sizeof(double));
        return;
    }
    double *ring = (double *)rest;
    rest += align8(m->max_window * m->tap_cols * sizeof(double));
    const double **live = (const double **)rest;
    rest += align8(m->max_window * sizeof(double *));
    double *state = (double *)rest;
    if (t.n_tokens == 0) {
        size_t width = m->n_windows * m->filters, parts = 1 + m->max_pool + m->mean_pool;
        for (size_t part = 0; part < parts; part++)
            for (size_t j = 0; j < m->n_windows; j++)
                for (size_t f = 0; f < m->filters; f++)
                    out[part * width + j * m->filters + f] = m->layers[1 + 2 * j].bias[f];
    } else if (!token_pool(m, &t, feats, bits, first, ring, live, cache, out, state)) {
        token_pool_exact(m, &t, feats, bits, cache->tables, first, ring, out, state);
    }
}

/* The output layer of a token model for g texts at once (their pooled features x, g rows of
 * width cols): each weight is read once for all of them. Each text's sums are bias + the
 * columns in order, whatever g. */
static void dense_group(const tp_layer *l, const double *x, size_t g, double *restrict out) {
    size_t rows = l->rows, cols = l->cols;
    for (size_t k = 0; k < g; k++)
        for (size_t o = 0; o < rows; o++) out[k * rows + o] = l->bias[o];
    double *restrict y0 = out, *restrict y1 = out + rows, *restrict y2 = out + 2 * rows;
    double *restrict y3 = out + 3 * rows;
    size_t c = 0;
    if (g == 4) /* four columns of four texts per pass over the outputs, sums kept in registers */
        for (; c + 4 <= cols; c += 4) {
            const double *restrict w0 = l->weight_t + c * rows, *restrict w1 = w0 + rows;
            const double *restrict w2 = w1 + rows, *restrict w3 = w2 + rows;
            const double *a = x + c, *b = a + cols, *d = b + cols, *e = d + cols;
            for (size_t o = 0; o < rows; o++) {
                double s0 = y0[o], s1 = y1[o], s2 = y2[o], s3 = y3[o];
                s0 += w0[o] * a[0];
                s1 += w0[o] * b[0];
                s2 += w0[o] * d[0];
                s3 += w0[o] * e[0];
                s0 += w1[o] * a[1];
                s1 += w1[o] * b[1];
                s2 += w1[o] * d[1];
                s3 += w1[o] * e[1];
                s0 += w2[o] * a[2];
                s1 += w2[o] * b[2];
                s2 += w2[o] * d[2];
                s3 += w2[o] * e[2];
                s0 += w3[o] * a[3];
                s1 += w3[o] * b[3];
                s2 += w3[o] * d[3];
                s3 += w3[o] * e[3];
                y0[o] = s0;
                y1[o] = s1;
                y2[o] = s2;
                y3[o] = s3;
            }
        }
    for (; c < cols; c++) {
        const double *restrict w = l->weight_t + c * rows;
        for (size_t k = 0; k < g; k++) {
            double xc = x[k * cols + c];
            double *restrict y = out + k * rows;
            for (size_t o = 0; o < rows; o++) y[o] += w[o] * xc;
        }
    }
}

/* Probabilities from logits (softmax, or sigmoids for a multi-label model); the best index.
 * The softmax overwrites the logits with their shifted exponentials. */
static long finish(const tp_model *m, double *logits, float *probs) {
    size_t best = 0;
    if (m->multi_label) {
        for (size_t i = 0; i < m->n_labels; i++)
            probs[i] = (float)(0.5 * (1.0 + tanh(0.5 * logits[i])));
    } else {
        double top = logits[0], total = 0;
        for (size_t i = 1; i < m->n_labels; i++)
            if (logits[i] > top) top = logits[i];
        for (size_t i = 0; i < m->n_labels; i++) logits[i] = exp_small(logits[i] - top);
        for (size_t i = 0; i < m->n_labels; i++) total += logits[i];
        for (size_t i = 0; i < m->n_labels; i++) probs[i] = (float)(logits[i] / total);
    }
    for (size_t i = 1; i < m->n_labels; i++)
        if (probs[i] > probs[best]) best = i;
    return (long)best;
}

/* Token cache rows for a batch of n texts: TP_TOKEN_CACHE_ENTRIES, doubled while below 4 per
 * text and within TP_BATCH_CACHE_ENTRIES. */
static size_t batch_cache_entries(size_t n) {
    size_t e = TP_TOKEN_CACHE_ENTRIES;
    while (e && 2 * e <= TP_BATCH_CACHE_ENTRIES && e / 4 < n) e *= 2;
    return e;
}

size_t tp_batch_workspace_bytes(const tp_model *m, size_t n) {
    if (!m) return 0;
    if (!m->token_design) return m->workspace_bytes;
    return m->cache_offset + tp_token_cache_bytes(m->tap_cols, batch_cache_entries(n));
}

int tp_predict_batch(const tp_model *m, const uint8_t *const *texts, const size_t *lengths,
                     size_t n, void *workspace, float *probs, long *labels) {
    if (!m || !workspace || !probs || (n && (!texts || !lengths))) return -1;
    for (size_t i = 0; i < n; i++)
        if (!texts[i] && lengths[i]) return -1;
    uint8_t *group_region = (uint8_t *)workspace + m->group_offset;
    double *x = (double *)group_region, *logits = x + TP_GROUP * m->max_width;
    size_t L = m->n_labels;
    if (!m->token_design) {
        for (size_t i = 0; i < n; i++) {
            text_forward(m, texts[i], lengths[i], workspace, NULL, logits);
            long best = finish(m, logits, probs + i * L);
            if (labels) labels[i] = best;
        }
        return 0;
    }
    token_cache cache = open_cache(m, workspace, batch_cache_entries(n));
    const tp_layer *output = &m->layers[1 + 2 * m->n_windows];
    for (size_t lo = 0; lo < n; lo += TP_GROUP) {
        size_t g = n - lo < TP_GROUP ? n - lo : TP_GROUP;
        for (size_t k = 0; k < g; k++)
            text_forward(m, texts[lo + k], lengths[lo + k], workspace, &cache,
                         x + k * output->cols);
        dense_group(output, x, g, logits);
        for (size_t k = 0; k < g; k++) {
            long best = finish(m, logits + k * L, probs + (lo + k) * L);
            if (labels) labels[lo + k] = best;
        }
    }
    return 0;
}

long tp_predict(const tp_model *m, const uint8_t *text, size_t length, void *workspace,
                float *probs) {
    long best;
    if (tp_predict_batch(m, &text, &length, 1, workspace, probs, &best) != 0) return -1;
    return best;
}
