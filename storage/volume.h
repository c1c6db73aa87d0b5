/*
 * volume.h - named volumes: directories duet keeps for workloads, beyond
 * the life of any of them (docs/storage.md).
 *
 *   ROOT/NAME/            0700; its existence is the volume
 *   ROOT/NAME/data        what a workload mounts (a container bind-mounts
 *                         it, a VM gets it through virtiofs)
 *   ROOT/NAME/disk.ext4   with a size: a sparse ext4 image of exactly that
 *                         many bytes, on a loop device, mounted on data
 *
 * A sized volume is its own filesystem: a workload that fills it gets
 * ENOSPC and the host's disk loses no more than the size.  The mount is in
 * the host's mount namespace and stays while the volume exists (VMs' and
 * containers' instances outlive the daemon); volume_prepare puts it back
 * after a reboot.  ROOT is duet's (STATE/volumes, 0700).
 *
 * Every function may block (mke2fs, mounts, removing a tree): call them
 * from a worker thread.  Two calls for one name must not overlap.
 */
#ifndef DUET_STORAGE_VOLUME_H
#define DUET_STORAGE_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

struct volume_info {
    char name[64];
    uint64_t size;                 /* the bound, bytes; 0: none */
    uint64_t used;                 /* bytes in use in it (sized and mounted only), else 0 */
    bool sized;
    bool mounted;                  /* a sized volume's filesystem is mounted on data */
    int64_t created_ms;            /* wall clock */
};

/* ROOT/NAME/data in out; false when it does not fit. */
bool volume_data_path(const char *root, const char *name, char *out, size_t len);

/* Does the volume exist, ready to mount (a sized one mounted)? */
bool volume_ready(const char *root, const char *name);

/* Makes the volume if it does not exist (its data owned by uid:gid, with
 * a filesystem of `size` bytes when size is not 0) and mounts a sized one
 * that is not.  An existing volume is used as it is when size is 0; a
 * size that differs from the existing volume's is an error naming both. */
int volume_prepare(const char *root, const char *name, uint64_t size, uid_t uid, gid_t gid, struct duet_err *err);

/* Unmounts and removes the volume and everything in it.  A volume that
 * does not exist is an error (ENOENT). */
int volume_remove(const char *root, const char *name, struct duet_err *err);

/* A snapshot of the volume into dir (which must not hold one): a sized
 * volume's image, its filesystem frozen while it is copied (consistent
 * as after a clean unmount, even with writers); an unsized volume's
 * tree, copied as it is (stop its writers first).  Restore puts such a
 * copy back in place of the volume's data (making the volume again if it
 * was removed since): no instance may use the volume meanwhile.  Both made so that a crash midway leaves the volume
 * as it was or as restored, never a mix (the restore asked again). */
int volume_save(const char *root, const char *name, const char *dir, struct duet_err *err);
int volume_restore(const char *root, const char *name, const char *dir, struct duet_err *err);

int volume_inspect(const char *root, const char *name, struct volume_info *out, struct duet_err *err);

/* Every volume under root, sorted by name (malloc'd; *n entries). */
int volume_list(const char *root, struct volume_info **out, size_t *n, struct duet_err *err);

#endif
