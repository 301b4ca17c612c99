/* The C runtime's side of benchmarks/device_speed.py: load MODEL, predict every text of TEXTS
 * ((uint32 little-endian length, UTF-8 bytes) records) with tp_predict_batch, BATCH texts per
 * call (1: tp_predict per text), once to warm up and record the labels, then REPEATS timed
 * passes, each from a cleared workspace (so its token cache starts empty).
 * Writes JSON to OUT: predicted label indices, wall and CPU seconds per pass, peak RSS. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "textproj.h"

static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0, got;
    unsigned char *data = malloc(cap);
    while (data && (got = fread(data + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap) data = realloc(data, cap *= 2);
    fclose(f);
    *size = n;
    return data;
}

static long peak_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kib = atol(line + 6);
    if (f) fclose(f);
    return kib;
}

static double now(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void run(const tp_model *model, const unsigned char *const *starts, const size_t *lengths,
                size_t n, size_t batch, void *work, float *probs, long *best) {
    if (batch == 1) {
        for (size_t i = 0; i < n; i++) best[i] = tp_predict(model, starts[i], lengths[i], work, probs);
        return;
    }
    for (size_t lo = 0; lo < n; lo += batch) {
        size_t k = n - lo < batch ? n - lo : batch;
        tp_predict_batch(model, starts + lo, lengths + lo, k, work, probs, best + lo);
    }
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: device_speed MODEL TEXTS OUT REPEATS BATCH\n");
        return 1;
    }
    size_t model_size, texts_size;
    unsigned char *model_bytes = slurp(argv[1], &model_size), *texts = slurp(argv[2], &texts_size);
    if (!model_bytes || !texts) return 1;
    tp_error err;
    tp_model *model = tp_load(model_bytes, model_size, &err);
    if (!model) {
        fprintf(stderr, "error: %s\n", err.message);
        return 2;
    }
    size_t batch = (size_t)atol(argv[5]), n = 0, pos = 0;
    if (batch < 1) batch = 1;
    size_t work_bytes = batch > 1 ? tp_batch_workspace_bytes(model, batch) : tp_workspace_bytes(model);
    while (pos + 4 <= texts_size) {
        size_t len = texts[pos] | (size_t)texts[pos + 1] << 8 | (size_t)texts[pos + 2] << 16 |
                     (size_t)texts[pos + 3] << 24;
        pos += 4 + len;
        n++;
    }
    unsigned char **starts = malloc(n * sizeof *starts);
    size_t *lengths = malloc(n * sizeof *lengths);
    long *best = malloc(n * sizeof *best);
    pos = 0;
    for (size_t i = 0; i < n; i++) {
        lengths[i] = texts[pos] | (size_t)texts[pos + 1] << 8 | (size_t)texts[pos + 2] << 16 |
                     (size_t)texts[pos + 3] << 24;
        starts[i] = texts + pos + 4;
        pos += 4 + lengths[i];
    }
    void *work = calloc(1, work_bytes);
    float *probs = malloc(batch * tp_n_labels(model) * sizeof(float));
    run(model, (const unsigned char *const *)starts, lengths, n, batch, work, probs, best);
    FILE *out = fopen(argv[3], "w");
    fprintf(out, "{\"predictions\": [");
    for (size_t i = 0; i < n; i++) fprintf(out, "%s%ld", i ? "," : "", best[i]);
    fprintf(out, "], \"seconds\": [");
    int repeats = atoi(argv[4]);
    double *cpu = malloc((size_t)repeats * sizeof *cpu);
    for (int r = 0; r < repeats; r++) {
        memset(work, 0, work_bytes);
        double wall = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        run(model, (const unsigned char *const *)starts, lengths, n, batch, work, probs, best);
        cpu[r] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        fprintf(out, "%s%.6f", r ? "," : "", now(CLOCK_MONOTONIC) - wall);
    }
    fprintf(out, "], \"cpu_seconds\": [");
    for (int r = 0; r < repeats; r++) fprintf(out, "%s%.6f", r ? "," : "", cpu[r]);
    fprintf(out, "], \"peak_rss_kib\": %ld, \"workspace_bytes\": %zu}\n", peak_rss_kib(),
            work_bytes);
    fclose(out);
    return 0;
}
