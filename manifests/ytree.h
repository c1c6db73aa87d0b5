/*
 * ytree.h - a YAML stream as a tree of positioned nodes.
 *
 * libyaml's event parser feeds a builder that keeps the line and column of
 * every node (so any later error can point at its key or value) and refuses
 * input that could exhaust memory or time:
 *   - files larger than YTREE_MAX_FILE,
 *   - scalars longer than YTREE_MAX_SCALAR,
 *   - nesting deeper than YTREE_MAX_DEPTH,
 *   - duplicate keys, and keys that are not scalars.
 * An alias is not copied: it points at its anchored node, so the tree stays
 * as large as the text.  Whoever walks the tree bounds its own walk (an
 * "alias bomb" is a small DAG whose expansion is exponential).
 * Documents are handed to a callback one at a time as each one closes; the
 * nodes and strings of a document live in the caller's scratch arena, which
 * is reset after the callback returns, so memory stays proportional to the
 * largest document, not to the file.  The callback copies what it keeps.
 */
#ifndef DUET_YTREE_H
#define DUET_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/arena.h"
#include "diag.h"

#define YTREE_MAX_FILE (16u << 20)
#define YTREE_MAX_SCALAR (64u << 10)
#define YTREE_MAX_DEPTH 64

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
    enum ynode_kind kind;
    bool plain;                /* scalar written without quotes or tag: may be null/bool/number */
    unsigned line, col;        /* from 1 */
    size_t n;                  /* scalar: length; seq: items; map: pairs */
    union {
        char *str;             /* scalar, NUL-terminated (may also contain NUL: check n) */
        struct ynode **items;  /* seq: n items; map: 2n (key, value, key, value, ...) */
    };
};

struct ydoc {
    struct ynode *root;        /* NULL for an empty document */
    unsigned line, col;        /* where the document starts */
};

typedef void (*ytree_doc_cb)(void *opaque, const struct ydoc *doc);

/* Parses buf (len bytes), calling cb for every complete document.  Returns
 * false after adding a diagnostic when the text is not usable YAML; the
 * documents before the error have been handed to cb.  line_base is the
 * number of lines of the file before buf (buf starts at a line start), so
 * positions are those of the whole file when a file is parsed in parts. */
bool ytree_parse(struct arena *scratch, const char *file, const char *buf, size_t len, unsigned line_base,
                 ytree_doc_cb cb, void *opaque, struct diag_list *d);

/* True for a plain scalar that YAML reads as null: "", "~", "null". */
bool ynode_is_null(const struct ynode *n);

#endif
