#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void strmap_init(struct strmap *m)
{
    m->slots = NULL;
    m->cap = m->len = 0;
}

void strmap_free(struct strmap *m)
{
    free(m->slots);
    strmap_init(m);
}

static struct strmap_slot *find(const struct strmap *m, const char *key)
{
    size_t mask = m->cap - 1;
    for (size_t i = hash_str(key) & mask;; i = (i + 1) & mask) {
        struct strmap_slot *s = &m->slots[i];
        if (!s->key || strcmp(s->key, key) == 0)
            return s;
    }
}

void *strmap_get(const struct strmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    struct strmap_slot *s = find(m, key);
    return s->key ? s->val : NULL;
}

static void grow(struct strmap *m)
{
    struct strmap old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->slots = calloc(m->cap, sizeof(*m->slots));
    if (!m->slots)
        abort();
    m->len = 0;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].key)
            strmap_put(m, old.slots[i].key, old.slots[i].val);
    free(old.slots);
}

void *strmap_put(struct strmap *m, const char *key, void *val)
{
    if ((m->len + 1) * 4 > m->cap * 3)
        grow(m);
    struct strmap_slot *s = find(m, key);
    if (s->key)
        return s->val;
    s->key = key;
    s->val = val;
    m->len++;
    return val;
}

void strmap_set(struct strmap *m, const char *key, void *val)
{
    if ((m->len + 1) * 4 > m->cap * 3)
        grow(m);
    struct strmap_slot *s = find(m, key);
    if (!s->key) {
        s->key = key;
        m->len++;
    }
    s->val = val;
}

/* Linear probing: the entries after the removed one that would no longer
 * be found are shifted back into the gap. */
bool strmap_del(struct strmap *m, const char *key)
{
    if (m->cap == 0)
        return false;
    size_t mask = m->cap - 1;
    size_t i = hash_str(key) & mask;
    for (;; i = (i + 1) & mask) {
        if (!m->slots[i].key)
            return false;
        if (strcmp(m->slots[i].key, key) == 0)
            break;
    }
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].key)
            break;
        size_t home = hash_str(m->slots[j].key) & mask;
        /* j's entry may move to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = NULL;
    m->slots[i].val = NULL;
    m->len--;
    return true;
}
