/*
 * cleanup.h - scope-bound release of resources (GCC/Clang cleanup attribute),
 * so that every early return in a function releases what it holds.
 * To hand a resource to someone else, steal it: take = steal_ptr(&p).
 */
#ifndef DUET_CLEANUP_H
#define DUET_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

static inline void duet_freep(void *p) { free(*(void **)p); }
static inline void duet_fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void duet_closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void duet_closedirp(DIR **d) { if (*d) closedir(*d); }

#define _cleanup_free_ __attribute__((cleanup(duet_freep)))
#define _cleanup_fclose_ __attribute__((cleanup(duet_fclosep)))
#define _cleanup_close_ __attribute__((cleanup(duet_closep)))
#define _cleanup_closedir_ __attribute__((cleanup(duet_closedirp)))

static inline void *duet_steal_ptr(void *pp)
{
    void **p = pp;
    void *v = *p;
    *p = NULL;
    return v;
}
#define steal_ptr(pp) duet_steal_ptr(pp)

#endif
