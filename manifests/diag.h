/*
 * diag.h - the errors found in manifests, each pinned to FILE:LINE:COL.
 *
 * Validation collects every problem it can find in one run rather than
 * stopping at the first, so a user fixes a file in one pass.  The list is
 * bounded: hostile input that would produce millions of errors gets the
 * first DIAG_MAX and a count of the rest.
 */
#ifndef DUET_DIAG_H
#define DUET_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define DIAG_MAX 200

struct diag {
    char *file;                /* owned */
    unsigned line, col;        /* from 1; 0 when the error is about the whole file */
    char *msg;                 /* owned */
};

struct diag_list {
    struct diag *v;
    size_t n, cap;
    size_t dropped;            /* errors past DIAG_MAX, counted but not kept */
};

void diag_list_init(struct diag_list *d);
void diag_list_free(struct diag_list *d);
void diag_add(struct diag_list *d, const char *file, unsigned line, unsigned col,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void diag_addv(struct diag_list *d, const char *file, unsigned line, unsigned col, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
size_t diag_count(const struct diag_list *d);
/* Moves every diagnostic of src to the end of dst (src is left empty). */
void diag_list_move(struct diag_list *dst, struct diag_list *src);
/* Sorts by file, line, column (stable) so output reads top to bottom. */
void diag_sort(struct diag_list *d);
/* One line each: "FILE:LINE:COL: error: MESSAGE". */
void diag_print(const struct diag_list *d, FILE *out);

/* Copies s into buf for quoting in a message: control bytes and non-ASCII are
 * shown as \xNN so that hostile input cannot drive the user's terminal, and
 * long values are cut with "...". */
const char *diag_quote(const char *s, size_t len, char *buf, size_t buflen);

#endif
