/*
 * jsonfmt.h - re-indent JSON text without building a tree.
 *
 * `duet get -o json` of a big fleet prints what duetd answered.  Parsing
 * that answer into jansson's tree only to print it again cost more than
 * the daemon took to answer (10 ms for 500 workloads here), so the text is
 * re-indented as it streams out: the same output as jansson's JSON_INDENT(2)
 * with the members in the order they came.
 *
 * The text is checked as it goes (strings closed, brackets balanced,
 * nothing after the document); malformed input is refused whole, never
 * printed in part, so a caller can fall back to a real parser and its
 * error message.
 */
#ifndef DUET_JSONFMT_H
#define DUET_JSONFMT_H

#include <stddef.h>

struct jsonfmt_key {
    const char *name;    /* a member of the top-level object to find */
    const char *value;   /* out: its value's text (a string keeps its quotes), or NULL */
    size_t len;
};

/* Receives the output in order, a piece at a time. */
typedef void (*jsonfmt_emit_fn)(void *opaque, const char *s, size_t n);

/* Checks text whole, then writes it re-indented through emit, ending in a
 * newline, and returns 0; returns -1, having emitted nothing, if text is
 * not well-formed JSON.  key, if not NULL, is looked up among the
 * top-level members (its value points into text).  emit NULL: only
 * check, and find key. */
int jsonfmt_indent(const char *text, size_t len, struct jsonfmt_key *key, jsonfmt_emit_fn emit, void *opaque);

#endif
