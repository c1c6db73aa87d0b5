/*
 * grow.h - room for more elements in a malloc'd array.
 *
 *   GROW(list->items, list->cap, list->n + 1);
 *
 * makes cap at least the needed count, doubling so appends stay amortised
 * O(1).  Out of memory aborts: callers have bounded their input before.
 */
#ifndef DUET_GROW_H
#define DUET_GROW_H

#include <stddef.h>

void *duet_grow(void *ptr, size_t *cap, size_t need, size_t elem);

#define GROW(ptr, cap, need) ((ptr) = duet_grow((ptr), &(cap), (need), sizeof(*(ptr))))

#endif
