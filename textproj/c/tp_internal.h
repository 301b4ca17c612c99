/* Internal declarations shared by the runtime's .c files (not part of the API). */
#ifndef TP_INTERNAL_H
#define TP_INTERNAL_H

#include "textproj.h"
#include "tp_spec.h"

/* Token models keep the tap products of this many recent distinct tokens in each workspace
 * (4-way sets chosen by the token's word hash, keyed by its bytes, checked in full): a token's
 * products depend on its bytes alone, so a hit gives exactly what computing would. Tokens of
 * more than TP_TOKEN_KEY_BYTES bytes are computed each time. A multiple of 4; 0 turns the
 * cache off. */
#ifndef TP_TOKEN_CACHE_ENTRIES
#define TP_TOKEN_CACHE_ENTRIES 1024
#endif
#if TP_TOKEN_CACHE_ENTRIES % 4
#error "TP_TOKEN_CACHE_ENTRIES must be a multiple of 4"
#endif
/* tp_predict_batch's cache grows with the batch up to this many rows. */
#ifndef TP_BATCH_CACHE_ENTRIES
#define TP_BATCH_CACHE_ENTRIES 4096
#endif
/* Texts whose output layer tp_predict_batch computes together. */
#define TP_GROUP 4
#ifndef TP_TOKEN_KEY_BYTES
#define TP_TOKEN_KEY_BYTES 24
#endif

typedef struct {
    uint8_t ccc;        /* canonical combining class */
    uint8_t flags;      /* bits 0-1 NFKC quick check, TP_FLAG_*, class << TP_CLASS_SHIFT */
    uint8_t decomp_len; /* full NFKD length in tp_pool, 0 if the code point is its own */
    uint8_t fold_len;   /* full case folding length in tp_pool, 0 if unchanged */
    uint16_t decomp_off;
    uint16_t fold_off;
} tp_char_record;

extern const char tp_unicode_version_string[];
extern const uint16_t tp_stage1[];
extern const uint16_t tp_stage2[];
extern const tp_char_record tp_records[];
extern const uint32_t tp_pool[];
extern const uint64_t tp_pair_keys[];
extern const uint32_t tp_pair_values[];
extern const size_t tp_n_pairs;

/* Feature settings of the projector (FeatureConfig) and its derived values. */
typedef struct {
    int64_t word_ngrams, skip_grams, char_min, char_max, word_weight, char_weight;
    int64_t max_chars, max_tokens;
    int sublinear;
} tp_features;

typedef struct {
    const uint8_t *weight; /* (rows, cols) row-major, in the model bytes: int8, or int4 */
    int int4;              /* weight holds two signed nibbles per byte (element 2i low) */
    double *weight_t;      /* dense layers after the first: the dequantized weight transposed */
    const float *scale;    /* (rows,) */
    const float *bias;     /* (rows,) */
    size_t rows, cols;     /* cols: every entry after the first axis (E * k for convolutions) */
} tp_layer;

struct tp_model {
    tp_features features;
    int token_design;
    int multi_label;
    size_t n_bits, n_words, n_labels;
    uint64_t last_mask;
    uint64_t *keys; /* n_words projection keys */
    /* text design: n_layers dense layers; token design: bottleneck, value/attention per window,
       output */
    size_t n_layers;
    tp_layer *layers;
    size_t n_windows, bottleneck, filters;
    size_t *windows;
    int max_pool;  /* token design: the pooled features go on with each channel's largest value */
    int mean_pool; /* token design: the pooled features end with each channel's mean value */
    /* dequantized float32 weights (int8 * scale, as Python dequantizes), laid out for speed:
       the first layer transposed (n_bits, rows); token design: every convolution tap of every
       window as one (bottleneck, tap_cols) matrix, window j's columns from tap_starts[j]
       (value taps 0..k-1 of F columns each, then attention taps), as runtime._taps, held as
       doubles (the same values: no conversion in the inner loop) */
    float *first_t;
    double *taps;
    size_t tap_cols, max_window;
    size_t *tap_starts;
    uint64_t tag;           /* from the file's SHA-256: marks a workspace's token cache as ours */
    size_t group_offset;    /* where tp_predict_batch's group of pooled features and logits go */
    size_t tables_offset;   /* token design: the first layer's nibble tables in a workspace */
    size_t cache_offset;    /* token design: where the token cache starts (the tag guards both) */
    float *thresholds;
    const char **labels;
    size_t *label_lengths;
    size_t max_width; /* widest activation vector */
    size_t max_features, max_token_features, max_rows;
    size_t workspace_bytes;
    void *owned; /* tp_load's allocation, or NULL */
};

/* Text path (tp_text.c). */
typedef struct {
    uint8_t *utf8;       /* normalised text */
    uint32_t *cp_bytes;  /* byte offset of each code point, n_cps + 1 */
    size_t n_bytes, n_cps;
    uint32_t *tok_start, *tok_end; /* code point spans */
    uint64_t *tok_hash;
    size_t n_tokens;
} tp_text;

typedef struct {
    uint64_t hash;
    uint32_t weight;
    uint32_t position;
} tp_feature;

size_t tp_text_workspace(const tp_features *f, size_t max_features);
/* Normalise and tokenise a text in the workspace; returns the first byte after the text
   region (tp_text_workspace bytes in), where the network's buffers go. */
uint8_t *tp_prepare_text(const tp_features *f, size_t max_features, const uint8_t *text,
                         size_t length, void *workspace, tp_text *t, tp_feature **features);
size_t tp_text_features(const tp_features *f, const tp_text *t, tp_feature *out);
size_t tp_token_features(const tp_features *f, const tp_text *t, size_t token, tp_feature *out);
/* Token i's UTF-8 bytes in the normalised text, and the xxHash64 of a word's bytes. */
const uint8_t *tp_token_bytes(const tp_text *t, size_t token, size_t *length);
uint64_t tp_word_hash(const uint8_t *bytes, size_t length);
size_t tp_token_cache_bytes(size_t cols, size_t entries);
void tp_project(tp_feature *feats, size_t n, const uint64_t *keys, size_t n_words,
                uint64_t last_mask, uint64_t *out);
uint64_t tp_combine(uint64_t h, uint64_t x);
uint64_t tp_fmix64(uint64_t x);
size_t tp_feature_bound(const tp_features *f);
size_t tp_token_feature_bound(const tp_features *f);

#endif
