/* textproj C runtime: classify text with a textproj model.tpn, bit-exact with the Python
 * runtime (textproj.load(...).predict). C99, libc and libm only, no global state.
 *
 * Use:
 *   tp_error err;
 *   tp_model *model = tp_load(bytes, n_bytes, &err);      // one malloc; or tp_load_into()
 *   void *work = malloc(tp_workspace_bytes(model));       // per thread, reused for every text
 *   float probs[...tp_n_labels(model)];
 *   tp_predict(model, text, text_len, work, probs);  // thread-safe: model is read-only
 *   // or, faster, many texts per call with a workspace of tp_batch_workspace_bytes(model, n):
 *   tp_predict_batch(model, texts, lengths, n, work, probs_n, labels_n);
 *
 * The model bytes must stay valid and unchanged while the model is used (the int8 or int4
 * weights are read in place). Every check the Python reader makes is made before use: magic, version,
 * header length, SHA-256, the JSON header (strict: no NaN, no duplicate keys, valid UTF-8),
 * the tensor table, labels, network, thresholds and projector config; a bad file gives NULL
 * and an error code with a one-line message.
 *
 * Text is UTF-8 bytes, read as unsigned. Ill-formed sequences decode to U+FFFD per maximal
 * subpart, exactly as Python's bytes.decode("utf-8", "replace"), except that the 3-byte form of
 * a surrogate (ED A0..BF 80..BF) decodes to that surrogate, as Python's "surrogatepass" does:
 * so for any Python str s, C on s.encode("utf-8", "surrogatepass") gives what Python gives on s.
 *
 * Working memory per text (tp_workspace_bytes, fixed per model, never dependent on the text
 * given: a text is cut to 4 * max_chars code points first, as in Python) is, with M the
 * model's max_chars and T its max_tokens: 4 * 4M * (1 + 18 * 31/30) bytes for normalisation
 * (NFKD expands a code point up to 18 times; the stream-safe joiners add 1 in 30), 16 bytes per
 * feature the caps allow (at most 4M + 7T with the default n-grams), 8 * (M + 1) for the
 * UTF-8 text and 16 * T for tokens. Token models add the first layer's nibble tables
 * (1024 * bottleneck bytes per 64 input bits) and a cache of the convolution products of
 * TP_TOKEN_CACHE_ENTRIES (1024) distinct tokens (40 + 8 * 2 * filters * sum(windows) bytes
 * each); tp_predict_batch's cache grows with the batch, to 4096 tokens at 1024 texts or more
 * (tp_batch_workspace_bytes). The bundled banking77 model (M = 20,000, T = 256, 768 bits, 40
 * filters) needs 12.4 MB for tp_predict (4.0 MB of it the cache, 0.8 MB the nibble tables) and
 * 24.3 MB for batches of 1024 texts.
 * A workspace needs no initialisation: the first call on it (or on it with another model or
 * cache size) resets its cache and builds the nibble tables there.
 *
 * Memory at load (tp_load_memory): about 10 times the file, for copies of the weights laid out
 * for speed (the first layer as float32, the convolution taps and dense layers as doubles), the
 * labels and the loader's scratch (872 KB for an 89 KB int8 banking77 model); about 18 times for
 * a model with int4 weights, two per byte (869 KB for the same network in 49 KB; 925 KB for the
 * bundled 53 KB model).
 */
#ifndef TEXTPROJ_H
#define TEXTPROJ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TP_OK = 0,
    TP_ERR_ARGUMENT = 1,   /* a NULL pointer or a buffer too small */
    TP_ERR_TOO_SMALL = 2,  /* fewer bytes than any model file */
    TP_ERR_MAGIC = 3,      /* not a textproj model file */
    TP_ERR_VERSION = 4,    /* format version newer or unknown */
    TP_ERR_HEADER_LENGTH = 5,
    TP_ERR_CHECKSUM = 6,   /* SHA-256 mismatch: damaged or truncated */
    TP_ERR_JSON = 7,       /* header is not valid strict JSON / UTF-8 */
    TP_ERR_TABLE = 8,      /* tensor table or labels list invalid */
    TP_ERR_HEADER = 9,     /* labels, network, projector, thresholds invalid */
    TP_ERR_TENSOR = 10,    /* an expected tensor missing, mistyped, misshaped or non-finite */
    TP_ERR_UNICODE = 11,   /* model written under another Unicode version than these tables */
    TP_ERR_MEMORY = 12     /* allocation failed or caller memory too small */
} tp_status;

typedef struct {
    tp_status code;
    char message[240];
} tp_error;

typedef struct tp_model tp_model;

/* Bytes tp_load_into needs for this file (0 and err set if the file is refused early). */
size_t tp_load_memory(const uint8_t *data, size_t size, tp_error *err);
/* Load into caller memory (8-byte aligned, at least tp_load_memory bytes); no allocation. */
tp_model *tp_load_into(const uint8_t *data, size_t size, void *memory, size_t memory_size,
                       tp_error *err);
/* Load with one malloc; release with tp_free. */
tp_model *tp_load(const uint8_t *data, size_t size, tp_error *err);
void tp_free(tp_model *model);

/* Every function here takes a NULL pointer without crashing: the accessors answer a NULL model
 * with 0 (tp_label: NULL, and *length 0, also for i out of range; tp_threshold 0 then too),
 * tp_predict -1, tp_predict_batch -1, tp_bits and tp_normalize 0, tp_load NULL with
 * TP_ERR_ARGUMENT, and tp_free does nothing. */
size_t tp_n_labels(const tp_model *model);
/* Label i as UTF-8 (not NUL-terminated if it holds NUL; *length gets its bytes). */
const char *tp_label(const tp_model *model, size_t i, size_t *length);
int tp_multi_label(const tp_model *model);
float tp_threshold(const tp_model *model, size_t i); /* multi-label models */
const char *tp_unicode_version(void);

/* Bytes of working memory one tp_predict call needs (8-byte aligned). */
size_t tp_workspace_bytes(const tp_model *model);

/* Label probabilities of one text into probs[tp_n_labels]: softmax, or a sigmoid per label
 * for a multi-label model. Returns the most probable label's index (or -1 on error). */
long tp_predict(const tp_model *model, const uint8_t *text, size_t length, void *workspace,
                float *probs);

/* Bytes of working memory one tp_predict_batch call on n texts needs (8-byte aligned): that of
 * tp_predict plus a larger token cache for larger batches (see above); the same for any n for a
 * text-design model. A workspace of tp_batch_workspace_bytes(model, n) serves any batch of at
 * most n texts. */
size_t tp_batch_workspace_bytes(const tp_model *model, size_t n);

/* Label probabilities of n texts (texts[i], lengths[i] bytes; NULL with length 0 is an empty
 * text) into probs[n * tp_n_labels], row by row, and their best label indices into labels (if
 * not NULL): exactly what tp_predict gives each text, faster (the texts share one token cache
 * and their output layer is computed together). Returns 0, or -1 on a NULL argument. */
int tp_predict_batch(const tp_model *model, const uint8_t *const *texts, const size_t *lengths,
                     size_t n, void *workspace, float *probs, long *labels);

/* Lower-level steps, for tests and display. */
/* The normalised text (NFKC, casefold, cut) as UTF-8 into out (capacity 4 * max_chars bytes);
 * returns its bytes. */
size_t tp_normalize(const tp_model *model, const uint8_t *text, size_t length, void *workspace,
                    uint8_t *out);
/* The network's input bits: one row (text design) or one per token (token design, at most
 * max_tokens rows) of tp_bit_words(model) uint64 words each; returns the number of rows. */
size_t tp_bits(const tp_model *model, const uint8_t *text, size_t length, void *workspace,
               uint64_t *rows);
size_t tp_bit_words(const tp_model *model);
size_t tp_max_bit_rows(const tp_model *model);

#ifdef __cplusplus
}
#endif
#endif
