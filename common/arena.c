#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 65536

struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, off;
    max_align_t data[];
};

void arena_init(struct arena *a)
{
    a->head = NULL;
    a->used = 0;
}

void arena_release(struct arena *a)
{
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->used = 0;
}

void arena_reset(struct arena *a)
{
    struct arena_chunk *keep = a->head;
    if (!keep)
        return;
    struct arena_chunk *c = keep->next;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    keep->next = NULL;
    keep->off = 0;
    a->used = 0;
    /* A chunk grown for one huge block is not worth keeping. */
    if (keep->cap != ARENA_CHUNK) {
        free(keep);
        a->head = NULL;
    }
}

void *arena_alloc(struct arena *a, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (size == 0)
        size = sizeof(max_align_t);
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->off < size) {
        size_t cap = size > ARENA_CHUNK / 2 ? size : ARENA_CHUNK;
        /* Large blocks get a chunk of their own behind the current one, so
         * the free space left in the current chunk is not wasted. */
        struct arena_chunk *n = malloc(sizeof(*n) + cap);
        if (!n)
            abort();
        n->cap = cap;
        n->off = 0;
        if (c && cap != ARENA_CHUNK) {
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            a->head = n;
        }
        c = n;
    }
    void *p = (char *)c->data + c->off;
    c->off += size;
    a->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *p = arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
