/*
 * fsutil.h - file system helpers shared by the backends.
 */
#ifndef DUET_FSUTIL_H
#define DUET_FSUTIL_H

#include "err.h"

/* Removes dir and everything below it, never following a symlink out of
 * the tree nor descending into a mount.  A dir already gone is success.
 * err may be NULL. */
int duet_remove_tree(const char *dir, struct duet_err *err);

#endif
