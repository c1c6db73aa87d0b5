/*
 * ytree.c - libyaml events to a positioned tree, with input limits.
 *
 * The builder keeps one frame per open mapping or sequence.  Children are
 * gathered in a growable array per frame and copied into the arena when the
 * container closes, so the finished tree holds no malloc'd memory.
 */
#include "ytree.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/grow.h"
#include "common/strmap.h"

struct frame {
    struct ynode *node;
    struct ynode **kids;
    size_t n, cap;
    char *anchor;              /* arena copy; registered when the node closes */
};

struct builder {
    struct arena *a;
    const char *file;
    const char *buf;
    size_t len;
    struct diag_list *d;
    struct frame stack[YTREE_MAX_DEPTH + 1];
    int depth;                 /* number of open frames */
    struct strmap anchors;     /* per document: anchor name -> completed node */
    struct ynode *root;
    unsigned line_base;        /* lines of the file before buf */
    bool failed;
};

bool ynode_is_null(const struct ynode *n)
{
    if (!n)
        return true;
    if (n->kind != YNODE_SCALAR || !n->plain)
        return false;
    return n->n == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

static void berr(struct builder *b, unsigned line, unsigned col, const char *fmt, const char *arg)
{
    diag_add(b->d, b->file, line, col, fmt, arg);
    b->failed = true;
}

static struct ynode *node_new(struct builder *b, enum ynode_kind kind, yaml_mark_t m)
{
    struct ynode *n = arena_alloc(b->a, sizeof(*n));
    n->kind = kind;
    n->line = (unsigned)m.line + 1 + b->line_base;
    n->col = (unsigned)m.column + 1;
    return n;
}

static void frame_push_kid(struct frame *f, struct ynode *kid)
{
    GROW(f->kids, f->cap, f->n + 1);
    f->kids[f->n++] = kid;
}

/* Attaches a finished node to its parent (or makes it the root). */
static void attach(struct builder *b, struct ynode *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (f->node->kind == YNODE_MAP && f->n % 2 == 0) {
        /* n is a key */
        if (n->kind != YNODE_SCALAR) {
            berr(b, n->line, n->col, "%s", "mapping keys must be plain strings, not a mapping or a list");
            return;
        }
        if (n->plain && strcmp(n->str, "<<") == 0) {
            berr(b, n->line, n->col, "%s",
                 "merge keys (<<) are not supported: write the keys out, or use an alias (*name) for a whole value");
            return;
        }
    }
    frame_push_kid(f, n);
}

static void register_anchor(struct builder *b, const char *anchor, struct ynode *n)
{
    /* A later anchor of the same name replaces the earlier one (YAML 1.2). */
    if (anchor)
        strmap_set(&b->anchors, arena_strdup(b->a, anchor), n);
}

static void check_duplicate_keys(struct builder *b, struct ynode *map)
{
    if (map->n <= 16) {
        for (size_t i = 1; i < map->n; i++)
            for (size_t j = 0; j < i; j++) {
                const struct ynode *k = map->items[2 * i], *o = map->items[2 * j];
                if (k->n == o->n && memcmp(k->str, o->str, k->n) == 0) {
                    char q[160];
                    diag_add(b->d, b->file, k->line, k->col, "duplicate key \"%s\" in this mapping",
                             diag_quote(k->str, k->n, q, sizeof(q)));
                    break;
                }
            }
        return;
    }
    struct strmap seen;
    strmap_init(&seen);
    for (size_t i = 0; i < map->n; i++) {
        struct ynode *k = map->items[2 * i];
        if (strmap_put(&seen, k->str, k) != k) {
            char q[160];
            diag_add(b->d, b->file, k->line, k->col, "duplicate key \"%s\" in this mapping",
                     diag_quote(k->str, k->n, q, sizeof(q)));
        }
    }
    strmap_free(&seen);
}

static bool open_container(struct builder *b, enum ynode_kind kind, yaml_mark_t m, const yaml_char_t *anchor)
{
    if (b->depth >= YTREE_MAX_DEPTH) {
        diag_add(b->d, b->file, (unsigned)m.line + 1 + b->line_base, (unsigned)m.column + 1,
                 "nesting is deeper than %d levels; a duet manifest needs fewer than 10", YTREE_MAX_DEPTH);
        b->failed = true;
        return false;
    }
    struct frame *f = &b->stack[b->depth++];
    f->node = node_new(b, kind, m);
    f->n = 0;
    f->anchor = anchor ? arena_strdup(b->a, (const char *)anchor) : NULL;
    return true;
}

static void close_container(struct builder *b)
{
    struct frame *f = &b->stack[--b->depth];
    struct ynode *n = f->node;
    n->items = arena_alloc(b->a, (f->n ? f->n : 1) * sizeof(*n->items));
    if (f->n)
        memcpy(n->items, f->kids, f->n * sizeof(*n->items));
    n->n = n->kind == YNODE_MAP ? f->n / 2 : f->n;
    if (n->kind == YNODE_MAP)
        check_duplicate_keys(b, n);
    register_anchor(b, f->anchor, n);
    attach(b, n);
}

/* Line and column (from 1) of byte offset off in the buffer. */
static void offset_to_pos(const char *buf, size_t len, size_t off, unsigned *line, unsigned *col)
{
    unsigned l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static bool line_has_tab_indent(const char *buf, size_t len, unsigned line)
{
    size_t i = 0;
    for (unsigned l = 1; l < line && i < len; i++)
        if (buf[i] == '\n')
            l++;
    for (; i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '-'); i++)
        if (buf[i] == '\t')
            return true;
    return false;
}

static void report_parser_error(struct builder *b, yaml_parser_t *p)
{
    unsigned line, col, base = b->line_base;
    if (p->error == YAML_READER_ERROR) {
        offset_to_pos(b->buf, b->len, p->problem_offset, &line, &col);
        line += base;
        if (p->problem && strstr(p->problem, "UTF-8"))
            diag_add(b->d, b->file, line, col, "the file is not valid UTF-8 (%s); save it as UTF-8",
                     p->problem);
        else
            diag_add(b->d, b->file, line, col, "unreadable character (%s)",
                     p->problem ? p->problem : "reader error");
    } else if (p->error == YAML_MEMORY_ERROR) {
        diag_add(b->d, b->file, 0, 0, "out of memory while reading YAML");
    } else {
        line = (unsigned)p->problem_mark.line + 1;
        col = (unsigned)p->problem_mark.column + 1;
        bool tab = line_has_tab_indent(b->buf, b->len, line);
        line += base;
        if (tab)
            diag_add(b->d, b->file, line, col,
                     "tab character in indentation: YAML indents with spaces only");
        else if (p->context)
            diag_add(b->d, b->file, line, col, "YAML syntax: %s %s (from line %u)", p->problem,
                     p->context, (unsigned)p->context_mark.line + 1 + base);
        else
            diag_add(b->d, b->file, line, col, "YAML syntax: %s",
                     p->problem ? p->problem : "unknown error");
    }
    b->failed = true;
}

static void builder_reset_doc(struct builder *b)
{
    strmap_free(&b->anchors);
    b->root = NULL;
    b->depth = 0;
}

bool ytree_parse(struct arena *scratch, const char *file, const char *buf, size_t len, unsigned line_base,
                 ytree_doc_cb cb, void *opaque, struct diag_list *d)
{
    struct builder b = {.a = scratch, .file = file, .buf = buf, .len = len, .d = d, .line_base = line_base};
    struct arena *a = scratch;
    strmap_init(&b.anchors);
    unsigned doc_line = 1, doc_col = 1;

    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        abort();
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    /* Manifests are UTF-8; a UTF-16 byte-order mark is an error, not a hint. */
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);

    bool done = false;
    while (!done && !b.failed) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            report_parser_error(&b, &p);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            builder_reset_doc(&b);
            doc_line = (unsigned)ev.start_mark.line + 1 + line_base;
            doc_col = (unsigned)ev.start_mark.column + 1;
            break;
        case YAML_DOCUMENT_END_EVENT: {
            struct ydoc doc = {b.root, doc_line, doc_col};
            if (!b.failed)
                cb(opaque, &doc);
            /* The anchors' keys live in the scratch arena: drop them first. */
            builder_reset_doc(&b);
            arena_reset(scratch);
            break;
        }
        case YAML_SCALAR_EVENT: {
            if (ev.data.scalar.length > YTREE_MAX_SCALAR) {
                diag_add(d, file, (unsigned)ev.start_mark.line + 1 + line_base, (unsigned)ev.start_mark.column + 1,
                         "value is %zu bytes long; values longer than %u KiB are refused",
                         ev.data.scalar.length, YTREE_MAX_SCALAR >> 10);
                b.failed = true;
                break;
            }
            struct ynode *n = node_new(&b, YNODE_SCALAR, ev.start_mark);
            n->str = arena_strndup(a, (const char *)ev.data.scalar.value, ev.data.scalar.length);
            n->n = ev.data.scalar.length;
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev.data.scalar.plain_implicit;
            if (ev.data.scalar.anchor)
                register_anchor(&b, (const char *)ev.data.scalar.anchor, n);
            attach(&b, n);
            break;
        }
        case YAML_ALIAS_EVENT: {
            const char *name = (const char *)ev.data.alias.anchor;
            struct ynode *target = strmap_get(&b.anchors, name);
            if (!target) {
                char q[160];
                berr(&b, (unsigned)ev.start_mark.line + 1 + line_base, (unsigned)ev.start_mark.column + 1,
                     "alias *%s names no anchor defined before it in this document (or its own enclosing value)",
                     diag_quote(name, strlen(name), q, sizeof(q)));
                break;
            }
            attach(&b, target);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
            open_container(&b, YNODE_SEQ, ev.start_mark, ev.data.sequence_start.anchor);
            break;
        case YAML_MAPPING_START_EVENT:
            open_container(&b, YNODE_MAP, ev.start_mark, ev.data.mapping_start.anchor);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            close_container(&b);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    for (int i = 0; i < YTREE_MAX_DEPTH + 1; i++)
        free(b.stack[i].kids);
    strmap_free(&b.anchors);
    arena_reset(scratch);
    return !b.failed;
}
