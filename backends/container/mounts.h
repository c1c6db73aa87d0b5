/*
 * mounts.h - the container's filesystem, built inside its mount namespace.
 *
 * Everything here runs in the child between clone() and exec: no malloc,
 * failures return -1 with errno set and a static description in *what.
 * Paths inside the rootfs are opened with openat2(RESOLVE_IN_ROOT), so a
 * symlink in the image (say /data -> /etc, or proc -> ../../..) resolves
 * inside the rootfs, never on the host; mounts are then attached to the
 * opened directory itself (open_tree + move_mount), with no path looked up
 * a second time.
 */
#ifndef DUET_MOUNTS_H
#define DUET_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "manifests/manifest.h"

struct mounts_plan {
    const char *merged;          /* where the overlay is mounted (state dir) */
    const char *overlay_opts;    /* lowerdir=...,upperdir=...,workdir=... */
    const struct wl_volume *volumes;
    const int *volume_fds;       /* each source as a detached mount tree, made on the host side */
    size_t n_volumes;
};

/* Opens path (relative to rootfd, "/" meaning rootfd) inside the root.
 * With create, missing directories are made (0755) and a missing last
 * component is made as a directory, or as an empty file when file is set. */
int mounts_open_in_root(int rootfd, const char *path, bool create, bool file);

/* A detached copy of the mount tree at path (relative to dirfd; "" for
 * dirfd itself), read-only when asked; -1 with errno. */
int mounts_clone_tree(int dirfd, const char *path, bool readonly);

/* Steps, in order; each returns -1 with errno and *what on failure. */
int mounts_make_private(const char **what);
int mounts_overlay(const struct mounts_plan *p, int *rootfd, const char **what);
int mounts_proc_dev_sys(int rootfd, const char **what);
int mounts_mask(int rootfd, const char **what);
int mounts_volumes(int rootfd, const struct mounts_plan *p, const char **what);
int mounts_pivot(int rootfd, const char **what);

#endif
