/*
 * jsonfmt.h - re-indent JSON text without building a tree.
 *
 * `duet get -o json` of a big fleet prints what duetd answered.  Parsing
 * that answer into jansson's tree only to print it again cost more than
 * the daemon took to answer (10 ms for 500 workloads here), so the text is
 * re-indented as it streams: the same output as jansson's JSON_INDENT(2)
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

/* Writes text, re-indented, to *out (malloc'ed, NUL-terminated, ending in
 * a newline) and returns its length; -1 if text is not well-formed
 * JSON.  key, if not NULL, is looked up among the top-level members. */
long jsonfmt_indent(const char *text, size_t len, struct jsonfmt_key *key, char **out);

#endif
