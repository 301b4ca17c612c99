/* Example: classify one text per line of stdin with the model compiled in (model_data.c), or
 * with a model.tpn given as the only argument. Prints "label<TAB>probability" per line (for a
 * multi-label model, every label at or above its threshold, comma-separated, then the top
 * probability). A blank line (empty or white space only) gets no label: an empty output line,
 * as from `textproj predict`, so that the output stays aligned with the input. An error is one
 * line on stderr naming the model file ("error: FILE: ...") or saying the output could not be
 * written (a full disk: "error: cannot write to stdout: ..."), and exit status 1. A reader that
 * stops early (`./classify < texts | head -1`) is no error: the program stops at its next write,
 * without a word, with exit status 141 (READER_GONE), what a shell reports for a coreutils filter
 * there (`yes | head -1`), whether SIGPIPE was ignored or not when it started. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textproj.h"

extern const unsigned char textproj_model[];
extern const size_t textproj_model_size;

/* The exit status when stdout's reader has gone: 128 + SIGPIPE (13), which a shell reports for a
 * filter SIGPIPE ended. */
enum { READER_GONE = 141 };

/* The whole file at path (its bytes in *size), or NULL after a one-line error naming it: one
 * that cannot be opened or read (a directory: "Is a directory"), or no memory for it. */
static unsigned char *read_file(const char *path, size_t *size) {
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "error: %s: cannot open: %s\n", path, errno ? strerror(errno) : "failed");
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *data = malloc(cap);
    while (data && !feof(f) && !ferror(f)) {
        if (n == cap) {
            unsigned char *grown = cap <= SIZE_MAX / 2 ? realloc(data, cap * 2) : NULL;
            if (!grown) free(data);
            data = grown;
            cap *= 2;
            if (!data) break;
        }
        errno = 0;
        n += fread(data + n, 1, cap - n, f);
    }
    int failed = data && ferror(f), error = errno;
    fclose(f);
    if (!data) {
        fprintf(stderr, "error: %s: out of memory reading it\n", path);
        return NULL;
    }
    if (failed) {
        fprintf(stderr, "error: %s: cannot read: %s\n", path, error ? strerror(error) : "failed");
        free(data);
        return NULL;
    }
    *size = n;
    return data;
}

/* The exit status for output that stdout did not take (its error indicator is set):
 * READER_GONE without a word when its reader has closed the pipe (EPIPE), else one error line
 * and 1. errno is the failed write's, when the C library says. */
static int write_failed(void) {
    int error = errno;
#ifdef EPIPE
    if (error == EPIPE) return READER_GONE;
#endif
    fprintf(stderr, "error: cannot write to stdout: %s\n", error ? strerror(error) : "failed");
    return 1;
}

/* Whether a text is empty or only white space: every code point one of those Python's
 * str.isspace() takes (textproj predict's rule for a blank text), in well-formed UTF-8. */
static int is_blank(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) {
            i += 1;
        } else if (c == 0xc2 && i + 1 < n && (s[i + 1] == 0x85 || s[i + 1] == 0xa0)) {
            i += 2;
        } else if ((c & 0xf0) == 0xe0 && i + 2 < n && (s[i + 1] & 0xc0) == 0x80 &&
                   (s[i + 2] & 0xc0) == 0x80) {
            unsigned long cp = (unsigned long)(c & 0x0f) << 12 |
                               (unsigned long)(s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f);
            if (cp != 0x1680 && (cp < 0x2000 || cp > 0x200a) && cp != 0x2028 && cp != 0x2029 &&
                cp != 0x202f && cp != 0x205f && cp != 0x3000)
                return 0;
            i += 3;
        } else {
            return 0;
        }
    }
    return 1;
}

static const char USAGE[] =
    "usage: classify [model.tpn] < texts (one text per line; without a file, the compiled-in "
    "model)";

int main(int argc, char **argv) {
    size_t size = textproj_model_size;
    unsigned char *file = NULL;
    const unsigned char *bytes = textproj_model;
    const char *name = "the compiled-in model";
    if (argc > 2) {
        fprintf(stderr, "error: give at most one model.tpn (the texts come on stdin)\n");
        return 2;
    }
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("%s\n", USAGE);
        return 0;
    }
    if (argc > 1 && argv[1][0] == '-') { /* a file named -x is ./-x */
        fprintf(stderr, "error: unknown option %s; %s\n", argv[1], USAGE);
        return 2;
    }
    if (argc > 1) {
        name = argv[1];
        bytes = file = read_file(name, &size);
        if (!file) return 1;
    }
    tp_error err;
    tp_model *model = tp_load(bytes, size, &err);
    if (!model) {
        fprintf(stderr, "error: %s: %s\n", name, err.message);
        free(file);
        return 1;
    }
    size_t n_labels = tp_n_labels(model), cap = 1024, len = 0;
    void *work = malloc(tp_workspace_bytes(model));
    float *probs = malloc(n_labels * sizeof(float));
    unsigned char *line = malloc(cap);
    int c, status = 0;
    if (!work || !probs || !line) {
        fprintf(stderr, "error: out of memory for the model's working memory\n");
        status = 1;
    }
#ifdef SIGPIPE
    signal(SIGPIPE, SIG_IGN); /* a closed pipe fails the write (EPIPE) instead of killing us */
#endif
    while (!status) {
        c = getchar();
        if (c != EOF && c != '\n') {
            if (len + 1 >= cap) {
                unsigned char *grown = cap <= SIZE_MAX / 2 ? realloc(line, cap * 2) : NULL;
                if (!grown) {
                    fprintf(stderr, "error: out of memory for a line of %zu bytes\n", len + 1);
                    status = 1;
                    break;
                }
                line = grown;
                cap *= 2;
            }
            line[len++] = (unsigned char)c;
            continue;
        }
        if (c == EOF && len == 0) break;
        if (len && line[len - 1] == '\r') len--;
        errno = 0; /* so that write_failed sees this line's write error, not an older errno */
        if (is_blank(line, len)) {
            putchar('\n');
            len = 0;
            if (ferror(stdout)) status = write_failed();
            if (c == EOF) break;
            continue;
        }
        long best = tp_predict(model, line, len, work, probs);
        if (tp_multi_label(model)) {
            int first = 1;
            for (size_t i = 0; i < n_labels; i++) {
                if (probs[i] < tp_threshold(model, i)) continue;
                size_t n;
                const char *label = tp_label(model, i, &n);
                printf("%s%.*s", first ? "" : ",", (int)n, label);
                first = 0;
            }
        } else {
            size_t n;
            const char *label = tp_label(model, (size_t)best, &n);
            printf("%.*s", (int)n, label);
        }
        printf("\t%.6f\n", probs[best]);
        len = 0;
        if (ferror(stdout)) status = write_failed();
        if (c == EOF) break;
    }
    errno = 0;
    if (!status && (fflush(stdout) == EOF || ferror(stdout))) status = write_failed();
    free(line);
    free(probs);
    free(work);
    tp_free(model);
    free(file);
    return status;
}
