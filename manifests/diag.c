#include "diag.h"
#include "common/grow.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void diag_list_init(struct diag_list *d)
{
    memset(d, 0, sizeof(*d));
}

void diag_list_free(struct diag_list *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
    }
    free(d->v);
    diag_list_init(d);
}

void diag_addv(struct diag_list *d, const char *file, unsigned line, unsigned col, const char *fmt, va_list ap)
{
    if (d->n >= DIAG_MAX) {
        d->dropped++;
        return;
    }
    GROW(d->v, d->cap, d->n + 1);
    char *msg;
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    struct diag *g = &d->v[d->n++];
    g->file = strdup(file ? file : "-");
    if (!g->file)
        abort();
    g->line = line;
    g->col = col;
    g->msg = msg;
}

void diag_add(struct diag_list *d, const char *file, unsigned line, unsigned col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_addv(d, file, line, col, fmt, ap);
    va_end(ap);
}

size_t diag_count(const struct diag_list *d)
{
    return d->n + d->dropped;
}

void diag_list_move(struct diag_list *dst, struct diag_list *src)
{
    for (size_t i = 0; i < src->n; i++) {
        if (dst->n >= DIAG_MAX) {
            dst->dropped++;
            free(src->v[i].file);
            free(src->v[i].msg);
            continue;
        }
        GROW(dst->v, dst->cap, dst->n + 1);
        dst->v[dst->n++] = src->v[i];
    }
    dst->dropped += src->dropped;
    free(src->v);
    diag_list_init(src);
}

static int diag_cmp(const void *a, const void *b)
{
    const struct diag *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    /* Equal places keep the order they were found in. */
    return x < y ? -1 : (x > y);
}

void diag_sort(struct diag_list *d)
{
    if (d->n > 1)
        qsort(d->v, d->n, sizeof(*d->v), diag_cmp);
}

void diag_print(const struct diag_list *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct diag *g = &d->v[i];
        if (g->line)
            fprintf(out, "%s:%u:%u: error: %s\n", g->file, g->line, g->col, g->msg);
        else
            fprintf(out, "%s: error: %s\n", g->file, g->msg);
    }
    if (d->dropped)
        fprintf(out, "duet: %zu more errors not shown (fix the ones above first)\n", d->dropped);
}

const char *diag_quote(const char *s, size_t len, char *buf, size_t buflen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    const size_t keep = 48;   /* enough to recognise a value, short enough for one line */
    for (size_t i = 0; i < len && o + 8 < buflen; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == keep) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') {
            if (ch == '"' || ch == '\\') {
                buf[o++] = '\\';
                buf[o++] = (char)ch;
            } else {
                buf[o++] = '\\';
                buf[o++] = 'x';
                buf[o++] = hex[ch >> 4];
                buf[o++] = hex[ch & 15];
            }
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o] = '\0';
    return buf;
}
