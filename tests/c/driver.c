/* Test driver of the C runtime: model file and mode on the command line, texts on stdin as
 * (uint32 little-endian length, bytes) records, binary answers on stdout (see
 * tests/test_c_runtime.py). Modes: norm (normalised UTF-8), bits (rows of words), predict
 * (best label index, then the probabilities as float32), batchN (what predict prints, from
 * tp_predict_batch on N texts at a time, an empty text passed as NULL), null (every public
 * function given NULL pointers and a label index out of range, one line of answers). A refused
 * model prints "error CODE: MESSAGE" on stderr and exits 2; no memory for a text or a buffer,
 * "error: out of memory for N bytes" and exits 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textproj.h"

/* realloc (malloc for p NULL), or exit 3 with one error line: the driver never goes on without
 * its memory. */
static void *need(void *p, size_t bytes) {
    void *grown = realloc(p, bytes);
    if (!grown) {
        fprintf(stderr, "error: out of memory for %zu bytes\n", bytes);
        exit(3);
    }
    return grown;
}

static void put32(unsigned long v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    fwrite(b, 1, 4, stdout);
}

/* Mode batchN: every text of stdin through tp_predict_batch, n texts per call. */
static int batch(const tp_model *model, size_t n) {
    size_t cap = 16, count = 0, n_labels = tp_n_labels(model);
    unsigned char **texts = need(NULL, cap * sizeof *texts);
    size_t *lengths = need(NULL, cap * sizeof *lengths);
    unsigned char head[4];
    while (fread(head, 1, 4, stdin) == 4) {
        size_t len = head[0] | (size_t)head[1] << 8 | (size_t)head[2] << 16 | (size_t)head[3] << 24;
        if (count == cap) {
            texts = need(texts, (cap *= 2) * sizeof *texts);
            lengths = need(lengths, cap * sizeof *lengths);
        }
        texts[count] = len ? need(NULL, len) : NULL;
        if (len && fread(texts[count], 1, len, stdin) != len) return 1;
        lengths[count++] = len;
    }
    void *work = need(NULL, tp_batch_workspace_bytes(model, n));
    float *probs = need(NULL, n * n_labels * sizeof(float));
    long *labels = need(NULL, n * sizeof(long));
    for (size_t lo = 0; lo < count; lo += n) {
        size_t k = count - lo < n ? count - lo : n;
        if (tp_predict_batch(model, (const unsigned char *const *)texts + lo, lengths + lo, k, work,
                             probs, labels) != 0)
            return 1;
        for (size_t i = 0; i < k; i++) {
            put32((unsigned long)labels[i]);
            fwrite(probs + i * n_labels, sizeof(float), n_labels, stdout);
        }
    }
    for (size_t i = 0; i < count; i++) free(texts[i]);
    free(texts);
    free(lengths);
    free(work);
    free(probs);
    free(labels);
    return 0;
}

/* Mode null: what every public function answers for NULL pointers (and tp_label, tp_threshold
 * for an index past the labels), as text on stdout; under the sanitizers nothing may crash. */
static int null_answers(const tp_model *model) {
    size_t length = 7, n = tp_n_labels(model);
    tp_error err;
    void *work = malloc(tp_workspace_bytes(model));
    float *probs = malloc(n * sizeof(float));
    uint64_t row[1];
    uint8_t out[1];
    const uint8_t *text = (const uint8_t *)"a";
    if (!work || !probs) return 1;
    const char *none = tp_label(NULL, 0, &length);
    printf("n_labels %zu label %s/%zu", tp_n_labels(NULL), none ? "set" : "NULL", length);
    length = 7;
    none = tp_label(model, n, &length);
    printf(" past %s/%zu multi %d", none ? "set" : "NULL", length, tp_multi_label(NULL));
    printf(" threshold %g/%g", (double)tp_threshold(NULL, 0), (double)tp_threshold(model, n));
    printf(" workspace %zu batch %zu words %zu rows %zu", tp_workspace_bytes(NULL),
           tp_batch_workspace_bytes(NULL, 4), tp_bit_words(NULL), tp_max_bit_rows(NULL));
    printf(" predict %ld/%ld/%ld/%ld", tp_predict(NULL, text, 1, work, probs),
           tp_predict(model, NULL, 1, work, probs), tp_predict(model, text, 1, NULL, probs),
           tp_predict(model, text, 1, work, NULL));
    printf(" batch %d", tp_predict_batch(model, NULL, NULL, 1, work, probs, NULL));
    printf(" bits %zu/%zu/%zu/%zu", tp_bits(NULL, text, 1, work, row),
           tp_bits(model, NULL, 1, work, row), tp_bits(model, text, 1, NULL, row),
           tp_bits(model, text, 1, work, NULL));
    printf(" normalize %zu/%zu/%zu/%zu", tp_normalize(NULL, text, 1, work, out),
           tp_normalize(model, NULL, 1, work, out), tp_normalize(model, text, 1, NULL, out),
           tp_normalize(model, text, 1, work, NULL));
    tp_model *loaded = tp_load(NULL, 100, &err);
    printf(" load %s/%d", loaded ? "set" : "NULL", (int)err.code);
    printf(" memory %zu", tp_load_memory(NULL, 100, NULL));
    tp_free(NULL);
    printf("\n");
    free(probs);
    free(work);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 1;
    FILE *f = fopen(argv[1], "rb");
    if (!f) return 1;
    size_t cap = 1 << 20, size = 0, got;
    unsigned char *data = need(NULL, cap);
    while ((got = fread(data + size, 1, cap - size, f)) > 0) {
        size += got;
        if (size == cap) data = need(data, cap *= 2);
    }
    fclose(f);
    tp_error err;
    tp_model *model = tp_load(data, size, &err);
    if (!model) {
        fprintf(stderr, "error %d: %s\n", (int)err.code, err.message);
        free(data);
        return 2;
    }
    if (!strcmp(argv[2], "null")) {
        int status = null_answers(model);
        tp_free(model);
        free(data);
        return status;
    }
    if (!strncmp(argv[2], "batch", 5)) {
        int status = batch(model, (size_t)atol(argv[2] + 5));
        tp_free(model);
        free(data);
        return status;
    }
    void *work = need(NULL, tp_workspace_bytes(model));
    size_t n_labels = tp_n_labels(model), words = tp_bit_words(model);
    float *probs = need(NULL, n_labels * sizeof(float));
    uint64_t *rows = need(NULL, tp_max_bit_rows(model) * words * sizeof(uint64_t));
    unsigned char *out = NULL;
    unsigned char head[4];
    while (fread(head, 1, 4, stdin) == 4) {
        size_t len = head[0] | (size_t)head[1] << 8 | (size_t)head[2] << 16 | (size_t)head[3] << 24;
        unsigned char *text = need(NULL, len + 1);
        if (fread(text, 1, len, stdin) != len) return 1;
        if (!strcmp(argv[2], "norm")) {
            out = need(out, 4 * 4 * 1000000 + 16);
            size_t n = tp_normalize(model, text, len, work, out);
            put32(n);
            fwrite(out, 1, n, stdout);
        } else if (!strcmp(argv[2], "bits")) {
            size_t n = tp_bits(model, text, len, work, rows);
            put32(n);
            for (size_t i = 0; i < n * words; i++)
                for (int k = 0; k < 8; k++) fputc((int)((rows[i] >> (8 * k)) & 0xFF), stdout);
        } else {
            long best = tp_predict(model, text, len, work, probs);
            put32((unsigned long)best);
            fwrite(probs, sizeof(float), n_labels, stdout);
        }
        free(text);
    }
    free(out);
    free(rows);
    free(probs);
    free(work);
    tp_free(model);
    free(data);
    return 0;
}
