/*
 * layer.h - a container's writable layer, bounded by resources.disk.
 *
 *   container_layer_create  STATE/NAME/disk.img: a sparse ext4 image of the
 *                           bound's size, copied from a formatted template
 *   container_layer_mount   that image on a loop device, mounted detached,
 *                           with upper/ and work/ for overlayfs in it
 *   container_layer_usage   what the image takes on the host now
 *
 * The container writes into a filesystem of exactly resources.disk bytes:
 * past it, it gets ENOSPC and the host loses nothing more.
 */
#ifndef DUET_LAYER_H
#define DUET_LAYER_H

#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Creates path (mode 0600, must not exist) as a sparse copy of the
 * template for `bytes`, which is formatted into template_dir on first use. */
int container_layer_create(const char *template_dir, const char *path, uint64_t bytes, struct duet_err *err);

/* Attaches the image at path to a free loop device (released by the kernel
 * when the filesystem is unmounted) and mounts it, detached: nothing
 * appears in any mount namespace until the caller moves the returned
 * mount fd somewhere.  upper/ and work/ are created in it, owned by
 * owner (the container's root on the host).  name names the container in
 * errors. */
int container_layer_mount(const char *path, uid_t owner, const char *name, struct duet_err *err);

/* Spare layers.  Attaching and mounting a layer (the loop device's setup
 * and a fresh filesystem's first reads) costs a few milliseconds of a
 * container's start; a pool's thread makes the next one ahead of time, so
 * a start that finds a spare of its size only renames a file.  The pool
 * keeps one spare for each of the last LAYER_POOL_SIZES sizes asked for;
 * a spare is a sparse file, a loop device and a mount, and goes with the
 * process if it dies. */
#define LAYER_POOL_SIZES 4
struct layer_pool;

/* A pool whose spares are made from (and kept in) template_dir. */
struct layer_pool *container_layer_pool_new(const char *template_dir, struct duet_err *err);
/* Stops its thread and lets go of every spare. */
void container_layer_pool_free(struct layer_pool *pool);
/* Formats the template for `bytes` if needed (the errors a user can get
 * come from here) and asks the pool for a spare of that size. */
int container_layer_pool_want(struct layer_pool *pool, uint64_t bytes, struct duet_err *err);
/* The writable layer of a new container: a spare moved to path when one
 * is ready, else made now (container_layer_create and _mount); its mount
 * fd, upper/ and work/ owned by owner. */
int container_layer_take(struct layer_pool *pool, const char *path, uint64_t bytes, uid_t owner, const char *name,
                         struct duet_err *err);

/* Bytes the image at path holds on the host (its allocated blocks) and its
 * size, the bound; limit may be NULL. */
int container_layer_usage(const char *path, uint64_t *used, uint64_t *limit, struct duet_err *err);

#endif
