/*
 * fsutil.h - file system helpers shared by the backends.
 */
#ifndef DUET_FSUTIL_H
#define DUET_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* Descriptors duetd keeps for as long as a workload runs (its pidfd, the
 * files of its figures) go at or above DUET_FD_HIGH when the limit allows:
 * libraries that wait with select() (libnftables does) abort on a
 * descriptor past FD_SETSIZE, so the low ones are left to them.  Returns
 * the descriptor to use (fd itself when it cannot be moved); CLOEXEC. */
#define DUET_FD_HIGH 1024
int duet_fd_keep_high(int fd);

/* Removes dir and everything below it, never following a symlink out of
 * the tree nor descending into a mount.  A dir already gone is success.
 * err may be NULL. */
int duet_remove_tree(const char *dir, struct duet_err *err);

/* A read-only, sealed in-memory copy of the executable open at src (path
 * names it in errors), as a close-on-exec memfd called name: executing it
 * with execveat(fd, "", AT_EMPTY_PATH) leaves nothing for a process to
 * write, even one that opens /proc/PID/exe of what runs it (the
 * CVE-2019-5736 pattern). */
int duet_sealed_copy(int src, const char *path, const char *name, struct duet_err *err);

/* Closes every descriptor from 3 up except those in keep; for a child
 * about to enter a container (async-signal-safe, no allocation). */
void duet_close_fds_except(const int *keep, size_t n);

/* All of fd from where it is, NUL-terminated, at most max bytes: more is
 * an error (E2BIG), as is a failed read; what names it in err. */
char *duet_read_fd(int fd, size_t max, size_t *len, const char *what, struct duet_err *err);

/* Runs argv (no shell, found on PATH), waiting; on failure err holds the
 * tool's own last words. */
int duet_run_tool(char *const argv[], struct duet_err *err);

/* dst (empty, open for writing) becomes a copy of src's first size bytes
 * that is sparse where src is: a reflink where the filesystem has them,
 * else the data extents one by one.  -1 with errno. */
int duet_copy_sparse(int src, int dst, off_t size);

/* Copies the file src to dst (made anew, mode 0600, never over a file
 * that exists) sparse, and syncs it; what names it in errors. */
/* Bytes a directory tree's files take on the host: their allocated
 * blocks, on its own filesystem (a block a reflink shares is counted with
 * each file). */
uint64_t duet_tree_allocated(const char *dir);

int duet_copy_file(const char *src, const char *dst, const char *what, struct duet_err *err);

#endif
