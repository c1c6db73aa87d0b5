/*
 * arena.h - bump allocator for data that lives and dies together.
 *
 * A manifest file's YAML tree and the specs built from it are thousands of
 * small strings and nodes with one lifetime (the manifest set's), so they are
 * carved from chunks and released in one call instead of one free() each.
 * Allocation failure aborts: a parser that runs out of memory has nothing
 * useful left to report, and input sizes are bounded before we get here.
 */
#ifndef DUET_ARENA_H
#define DUET_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
    struct arena_chunk *head;
    size_t used;     /* bytes handed out, for memory accounting */
};

void arena_init(struct arena *a);
void arena_release(struct arena *a);
/* Forgets everything allocated but keeps one chunk for reuse: for scratch
 * memory recycled in a loop. */
void arena_reset(struct arena *a);
void *arena_alloc(struct arena *a, size_t size);          /* zeroed */
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
