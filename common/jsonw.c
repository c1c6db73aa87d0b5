#include "jsonw.h"

/* One writer owns its FILE for the whole output: skip stdio's per-call
 * locking, which costs more than the formatting here. */
#define fputc fputc_unlocked
#define fputs fputs_unlocked
#define fwrite fwrite_unlocked

#include <math.h>
#include <string.h>

void jsonw_init(struct jsonw *w, FILE *out, bool pretty)
{
    memset(w, 0, sizeof(*w));
    w->out = out;
    w->pretty = pretty;
    w->first[0] = true;
}

static void newline(struct jsonw *w)
{
    if (!w->pretty)
        return;
    fputc('\n', w->out);
    for (int i = 0; i < w->depth; i++)
        fputs("  ", w->out);
}

/* Separator and indentation before a value or a key. */
static void before_item(struct jsonw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        if (!w->first[w->depth])
            fputc(',', w->out);
        newline(w);
    }
    w->first[w->depth] = false;
}

static void open_level(struct jsonw *w, char c)
{
    before_item(w);
    fputc(c, w->out);
    if (w->depth + 1 < JSONW_MAX_DEPTH)
        w->depth++;
    w->first[w->depth] = true;
}

static void close_level(struct jsonw *w, char c)
{
    bool empty = w->first[w->depth];
    if (w->depth > 0)
        w->depth--;
    if (!empty)
        newline(w);
    fputc(c, w->out);
    if (w->depth == 0 && w->pretty)
        fputc('\n', w->out);
}

void jsonw_object_begin(struct jsonw *w) { open_level(w, '{'); }
void jsonw_object_end(struct jsonw *w) { close_level(w, '}'); }
void jsonw_array_begin(struct jsonw *w) { open_level(w, '['); }
void jsonw_array_end(struct jsonw *w) { close_level(w, ']'); }

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one
 * (overlongs, surrogates and values past U+10FFFF are not valid). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

void jsonw_escape(FILE *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    const unsigned char *run = s;   /* bytes that need no escaping are written in runs */
    while (*s) {
        unsigned char c = *s;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            s++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_len(s);
            if (n) {
                s += n;
                continue;
            }
        }
        fwrite(run, 1, (size_t)(s - run), out);
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\t': fputs("\\t", out); break;
        case '\r': fputs("\\r", out); break;
        default:
            if (c < 0x20)
                fprintf(out, "\\u%04x", c);
            else
                fputs("\\ufffd", out);
        }
        s++;
        run = s;
    }
    fwrite(run, 1, (size_t)(s - run), out);
}

void jsonw_key(struct jsonw *w, const char *key)
{
    before_item(w);
    fputc('"', w->out);
    jsonw_escape(w->out, key);
    fputs(w->pretty ? "\": " : "\":", w->out);
    w->after_key = true;
}

void jsonw_string(struct jsonw *w, const char *s)
{
    before_item(w);
    fputc('"', w->out);
    jsonw_escape(w->out, s ? s : "");
    fputc('"', w->out);
}

/* Decimal digits without printf: plans print tens of thousands of numbers. */
static void put_u64(FILE *out, uint64_t v, bool neg)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        *--p = '-';
    fwrite(p, 1, (size_t)(buf + sizeof(buf) - p), out);
}

void jsonw_int(struct jsonw *w, int64_t v)
{
    before_item(w);
    put_u64(w->out, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
}

void jsonw_uint(struct jsonw *w, uint64_t v)
{
    before_item(w);
    put_u64(w->out, v, false);
}

void jsonw_number(struct jsonw *w, double v)
{
    before_item(w);
    if (!isfinite(v))
        fputs("null", w->out);      /* JSON has no inf or nan */
    else if (v == floor(v) && fabs(v) < 9e15)
        put_u64(w->out, (uint64_t)fabs(v), v < 0);
    else if (fabs(v) < 1e9 && fabs(v) * 1e6 == floor(fabs(v) * 1e6)) {
        /* Short decimals (0.25 CPUs) are exact in six digits: no printf. */
        uint64_t micro = (uint64_t)(fabs(v) * 1e6);
        put_u64(w->out, micro / 1000000, v < 0);
        char frac[8] = {'.'};
        uint64_t f = micro % 1000000;
        int n = 6;
        while (f % 10 == 0) {
            f /= 10;
            n--;
        }
        for (int i = n; i >= 1; i--, f /= 10)
            frac[i] = (char)('0' + f % 10);
        fwrite(frac, 1, (size_t)n + 1, w->out);
    } else {
        fprintf(w->out, "%.17g", v);
    }
}

void jsonw_bool(struct jsonw *w, bool v)
{
    before_item(w);
    fputs(v ? "true" : "false", w->out);
}

void jsonw_null(struct jsonw *w)
{
    before_item(w);
    fputs("null", w->out);
}

void jsonw_kv_string(struct jsonw *w, const char *key, const char *s)
{
    jsonw_key(w, key);
    jsonw_string(w, s);
}

void jsonw_kv_uint(struct jsonw *w, const char *key, uint64_t v)
{
    jsonw_key(w, key);
    jsonw_uint(w, v);
}

void jsonw_kv_number(struct jsonw *w, const char *key, double v)
{
    jsonw_key(w, key);
    jsonw_number(w, v);
}

void jsonw_kv_bool(struct jsonw *w, const char *key, bool v)
{
    jsonw_key(w, key);
    jsonw_bool(w, v);
}
