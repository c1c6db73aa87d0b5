/*
 * jsonw.h - a streaming JSON writer.
 *
 * For large outputs (a plan of 10,000 workloads, `get -o json` of a big
 * fleet) building a document tree only to print it costs more than the
 * work that produced the data, so these write straight to a FILE.  Strings
 * are escaped per RFC 8259; bytes that are not valid UTF-8 become U+FFFD,
 * so the output is always valid JSON whatever a backend reported.
 * Nesting is tracked so commas and indentation come out right.
 */
#ifndef DUET_JSONW_H
#define DUET_JSONW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSONW_MAX_DEPTH 32

struct jsonw {
    FILE *out;
    int depth;
    bool first[JSONW_MAX_DEPTH];   /* no member written yet at this level */
    bool after_key;                /* a key was written; its value comes next */
    bool pretty;
};

void jsonw_init(struct jsonw *w, FILE *out, bool pretty);
void jsonw_object_begin(struct jsonw *w);
void jsonw_object_end(struct jsonw *w);
void jsonw_array_begin(struct jsonw *w);
void jsonw_array_end(struct jsonw *w);
void jsonw_key(struct jsonw *w, const char *key);
void jsonw_string(struct jsonw *w, const char *s);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_uint(struct jsonw *w, uint64_t v);
/* Whole numbers print without a fraction (2, not 2.0). */
void jsonw_number(struct jsonw *w, double v);
void jsonw_bool(struct jsonw *w, bool v);
void jsonw_null(struct jsonw *w);

/* Shorthands for "key": value. */
void jsonw_kv_string(struct jsonw *w, const char *key, const char *s);
void jsonw_kv_uint(struct jsonw *w, const char *key, uint64_t v);
void jsonw_kv_number(struct jsonw *w, const char *key, double v);
void jsonw_kv_bool(struct jsonw *w, const char *key, bool v);

/* Writes the escaped body of s (no quotes). */
void jsonw_escape(FILE *out, const char *s);

#endif
