/*
 * promtext.c - see promtext.h.
 */
#include "common/promtext.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

void prom_labels_init(struct prom_labels *l)
{
    l->len = 0;
    l->buf[0] = '\0';
    l->truncated = false;
}

/* Appends s, escaped for a label value, to out (room: cap); false when it
 * does not fit. */
static bool put_escaped(char *out, size_t cap, size_t *len, const char *s)
{
    size_t o = *len;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        const char *rep = NULL;
        char one[5];
        size_t take = 1;
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\\')
            rep = "\\\\";
        else if (ch == '"')
            rep = "\\\"";
        else if (ch == '\n')
            rep = "\\n";
        else if (ch < 0x80) {
            one[0] = (char)ch;
            one[1] = '\0';
            rep = one;
        } else {
            size_t u = duet_utf8_seq((const unsigned char *)s + i, n - i);
            if (u == 0) {
                rep = "\xef\xbf\xbd";
            } else {
                /* a whole code point */
                take = u;
                memcpy(one, s + i, u);
                one[u] = '\0';
                rep = one;
            }
        }
        size_t rl = strlen(rep);
        if (o + rl + 1 > cap)
            return false;
        memcpy(out + o, rep, rl);
        o += rl;
        i += take;
    }
    out[o] = '\0';
    *len = o;
    return true;
}

void prom_label(struct prom_labels *l, const char *key, const char *value)
{
    if (l->truncated)
        return;
    char tmp[PROM_LABELS_MAX];
    size_t n = 0;
    int k = snprintf(tmp, sizeof(tmp), "%s%s=\"", l->len ? "," : "", key);
    if (k < 0 || (size_t)k >= sizeof(tmp)) {
        l->truncated = true;
        return;
    }
    n = (size_t)k;
    if (!put_escaped(tmp, sizeof(tmp) - 1, &n, value) || l->len + n + 2 > sizeof(l->buf)) {
        l->truncated = true;
        return;
    }
    tmp[n++] = '"';
    memcpy(l->buf + l->len, tmp, n);
    l->len += n;
    l->buf[l->len] = '\0';
}

void prom_label_u64(struct prom_labels *l, const char *key, uint64_t value)
{
    char v[24];
    snprintf(v, sizeof(v), "%" PRIu64, value);
    prom_label(l, key, v);
}

void prom_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_name(FILE *f, const char *name, const struct prom_labels *labels)
{
    fputs(name, f);
    if (labels && labels->len)
        fprintf(f, "{%s}", labels->buf);
    fputc(' ', f);
}

void prom_u64(FILE *f, const char *name, const struct prom_labels *labels, uint64_t v)
{
    put_name(f, name, labels);
    fprintf(f, "%" PRIu64 "\n", v);
}

/* Text that reads back as v, short for a decimal (0.001, not 0.00100000000000000002). */
static void fmt_f64(char out[40], double v)
{
    if (isnan(v)) {
        snprintf(out, 40, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, 40, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* %g drops trailing zeros: 15 digits is already short for a decimal
     * bound, and the last two are for the values that need them. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static void put_f64(FILE *f, double v)
{
    char b[40];
    fmt_f64(b, v);
    fputs(b, f);
}

void prom_f64(FILE *f, const char *name, const struct prom_labels *labels, double v)
{
    put_name(f, name, labels);
    put_f64(f, v);
    fputc('\n', f);
}

void prom_hist_init(struct prom_hist *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->n = n < PROM_HIST_MAX ? n : PROM_HIST_MAX;
}

void prom_hist_observe(struct prom_hist *h, double v)
{
    for (size_t i = 0; i < h->n; i++)
        if (v <= h->bounds[i]) {
            h->counts[i]++;
            break;
        }
    h->count++;
    h->sum += v;
}

void prom_hist_write(FILE *f, const char *name, const struct prom_labels *labels, const struct prom_hist *h)
{
    char n[256];
    uint64_t cum = 0;
    snprintf(n, sizeof(n), "%s_bucket", name);
    for (size_t i = 0; i <= h->n; i++) {
        struct prom_labels l = labels ? *labels : (struct prom_labels){0};
        char le[40];
        if (i < h->n) {
            cum += h->counts[i];
            fmt_f64(le, h->bounds[i]);
        } else {
            cum = h->count;
            snprintf(le, sizeof(le), "+Inf");
        }
        prom_label(&l, "le", le);
        prom_u64(f, n, &l, cum);
    }
    snprintf(n, sizeof(n), "%s_sum", name);
    prom_f64(f, n, labels, h->sum);
    snprintf(n, sizeof(n), "%s_count", name);
    prom_u64(f, n, labels, h->count);
}
