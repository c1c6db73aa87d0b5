/*
 * jsonfmt.c - re-indent JSON text without building a tree (see jsonfmt.h).
 *
 * Two passes over the text, one to check it and one to write it; each is
 * one state: where we are (depth, inside a string, what the last
 * token was).  Scalars are copied as they are: a number is not reparsed,
 * so it prints exactly as duetd wrote it.  Structure is checked on the way
 * (a stack of open brackets, commas and colons where they belong), which
 * is what it takes to indent correctly; a scalar's own spelling is checked
 * only as far as its characters go.
 */
#include "common/jsonfmt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSONFMT_MAX_DEPTH 512

/* What may come next. */
enum expect { EX_VALUE, EX_KEY_OR_CLOSE, EX_KEY, EX_COLON, EX_COMMA_OR_CLOSE, EX_VALUE_OR_CLOSE, EX_END };

/* Output goes out in pieces of this size: the whole indented document is
 * never held, since memory first touched costs a page fault per 4 KiB,
 * and faults are most of what a big answer would otherwise cost. */
#define JSONFMT_CHUNK 16384

struct fmt {
    char stack[JSONFMT_MAX_DEPTH];   /* '{' or '[' */
    int depth;
    enum expect ex;
    jsonfmt_emit_fn emit;            /* NULL: the checking pass, nothing written */
    void *opaque;
    size_t n;
    char out[JSONFMT_CHUNK];
};

static void flush(struct fmt *f)
{
    if (f->n)
        f->emit(f->opaque, f->out, f->n);
    f->n = 0;
}

static void put(struct fmt *f, const char *s, size_t n)
{
    if (!f->emit)
        return;
    while (n) {
        if (f->n == JSONFMT_CHUNK)
            flush(f);
        size_t k = JSONFMT_CHUNK - f->n < n ? JSONFMT_CHUNK - f->n : n;
        memcpy(f->out + f->n, s, k);
        f->n += k;
        s += k;
        n -= k;
    }
}

static void putc_(struct fmt *f, char c)
{
    put(f, &c, 1);
}

static void newline(struct fmt *f)
{
    static const char spaces[] = "                                                                ";
    putc_(f, '\n');
    for (size_t left = 2 * (size_t)f->depth; left;) {
        size_t k = left < sizeof(spaces) - 1 ? left : sizeof(spaces) - 1;
        put(f, spaces, k);
        left -= k;
    }
}

/* After a value: a comma, a close, or the end of the document. */
static void after_value(struct fmt *f)
{
    f->ex = f->depth == 0 ? EX_END : EX_COMMA_OR_CLOSE;
}

/* Returns the index past a string starting at text[i] == '"', or 0. */
static size_t string_end(const char *text, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            if (++i >= len)
                return 0;
            if (!strchr("\"\\/bfnrtu", text[i]) || text[i] == '\0')
                return 0;
        } else if (c < 0x20) {
            return 0;
        }
    }
    return 0;
}

static bool is_scalar_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' || c == '.' || c == 'E';
}

static bool scalar_ok(const char *s, size_t n)
{
    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0) ||
        (n == 4 && memcmp(s, "null", 4) == 0))
        return true;
    /* a number: -?digits(.digits)?([eE][+-]?digits)? */
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == d || (s[d] == '0' && i - d > 1))
        return false;
    if (i < n && s[i] == '.') {
        d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

/* A string or a scalar where a value goes: kept as it is, and noted when
 * it is the value of the top-level member asked for. */
static void value(struct fmt *f, const char *s, size_t n, bool *want, struct jsonfmt_key *key)
{
    if (f->ex == EX_VALUE_OR_CLOSE)
        newline(f);
    if (*want) {
        key->value = s;
        key->len = n;
        *want = false;
    }
    put(f, s, n);
    after_value(f);
}

static int run(struct fmt *f, const char *text, size_t len, struct jsonfmt_key *key)
{
    bool want_value = false;   /* the top-level key just read is the one asked for */
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
            continue;
        }
        switch (c) {
        case '{':
        case '[':
            if (f->ex != EX_VALUE && f->ex != EX_VALUE_OR_CLOSE)
                return -1;
            if (f->depth == JSONFMT_MAX_DEPTH)
                return -1;
            if (f->ex == EX_VALUE_OR_CLOSE)
                newline(f);
            want_value = false;
            putc_(f, c);
            f->stack[f->depth++] = c;
            f->ex = c == '{' ? EX_KEY_OR_CLOSE : EX_VALUE_OR_CLOSE;
            i++;
            continue;
        case '}':
        case ']': {
            char open = c == '}' ? '{' : '[';
            bool empty = f->ex == (c == '}' ? EX_KEY_OR_CLOSE : EX_VALUE_OR_CLOSE);
            if (f->depth == 0 || f->stack[f->depth - 1] != open || (!empty && f->ex != EX_COMMA_OR_CLOSE))
                return -1;
            f->depth--;
            if (!empty)
                newline(f);
            putc_(f, c);
            after_value(f);
            i++;
            continue;
        }
        case ',':
            if (f->ex != EX_COMMA_OR_CLOSE)
                return -1;
            putc_(f, ',');
            newline(f);
            f->ex = f->stack[f->depth - 1] == '{' ? EX_KEY : EX_VALUE;
            i++;
            continue;
        case ':':
            if (f->ex != EX_COLON)
                return -1;
            put(f, ": ", 2);
            f->ex = EX_VALUE;
            i++;
            continue;
        case '"': {
            size_t end = string_end(text, len, i);
            if (!end)
                return -1;
            if (f->ex == EX_KEY_OR_CLOSE || f->ex == EX_KEY) {
                if (f->ex == EX_KEY_OR_CLOSE)
                    newline(f);
                want_value = key && f->depth == 1 && end - i - 2 == strlen(key->name) &&
                             memcmp(text + i + 1, key->name, end - i - 2) == 0;
                f->ex = EX_COLON;
                put(f, text + i, end - i);
            } else if (f->ex == EX_VALUE || f->ex == EX_VALUE_OR_CLOSE) {
                value(f, text + i, end - i, &want_value, key);
            } else {
                return -1;
            }
            i = end;
            continue;
        }
        default: {
            if (f->ex != EX_VALUE && f->ex != EX_VALUE_OR_CLOSE)
                return -1;
            size_t end = i;
            while (end < len && is_scalar_char(text[end]))
                end++;
            if (!scalar_ok(text + i, end - i))
                return -1;
            value(f, text + i, end - i, &want_value, key);
            i = end;
            continue;
        }
        }
    }
    return f->ex == EX_END ? 0 : -1;
}

int jsonfmt_indent(const char *text, size_t len, struct jsonfmt_key *key, jsonfmt_emit_fn emit, void *opaque)
{
    if (key) {
        key->value = NULL;
        key->len = 0;
    }
    /* Checked whole before a byte is written: the promise that malformed
     * text is never printed in part.  The second pass cannot fail. */
    struct fmt *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->ex = EX_VALUE;
    if (run(f, text, len, key) < 0) {
        free(f);
        if (key)
            key->value = NULL;
        return -1;
    }
    if (!emit) {
        free(f);
        return 0;
    }
    f->ex = EX_VALUE;
    f->depth = 0;
    f->emit = emit;
    f->opaque = opaque;
    run(f, text, len, NULL);
    putc_(f, '\n');
    flush(f);
    free(f);
    return 0;
}
