/*
 * strmap.h - open-addressing hash map from string keys to pointers.
 *
 * Used where fleets get large: name lookup for dependsOn and uniqueness,
 * host-port conflicts.  Keys are borrowed, not copied: they must outlive the
 * map (they live in the manifest arena).
 */
#ifndef DUET_STRMAP_H
#define DUET_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap {
    struct strmap_slot { const char *key; void *val; } *slots;
    size_t cap, len;
};

void strmap_init(struct strmap *m);
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key);
/* Inserts key -> val unless key is present; returns the value now stored. */
void *strmap_put(struct strmap *m, const char *key, void *val);
/* Inserts or replaces; the key of an existing entry is kept. */
void strmap_set(struct strmap *m, const char *key, void *val);
/* Removes key; false when it was not there. */
bool strmap_del(struct strmap *m, const char *key);

#endif
