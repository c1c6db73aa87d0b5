/*
 * rootfs.h - a workload's image directory, read safely (rootfs.c).
 */
#ifndef DUET_ROOTFS_H
#define DUET_ROOTFS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define ROOTFS_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define ROOTFS_MAX_GROUPS 32

/* rootfs exists and is a directory; else an error naming `what` (the
 * workload: "container web") and the path. */
int rootfs_check_dir(const char *rootfs, const char *what, struct duet_err *err);

/* path opened read-only inside rootfs, symlinks resolved within it; -1 and
 * errno when it cannot be. */
int rootfs_open(const char *rootfs, const char *path);

/* Is cmd an executable file in rootfs (searching pathvar when it has no '/')? */
bool rootfs_command_exists(const char *rootfs, const char *cmd, const char *pathvar);

struct rootfs_user {
    uint32_t uid, gid;
    uint32_t groups[ROOTFS_MAX_GROUPS];  /* the primary group first */
    int n_groups;
};

/* spec.user (NAME, UID, NAME:GROUP, UID:GID; NULL for root) against the
 * image's /etc/passwd and /etc/group, following Docker's rules.  `what`
 * names the workload in errors ("container web"). */
int rootfs_user_resolve(const char *rootfs, const char *user, const char *what, struct rootfs_user *out,
                        struct duet_err *err);

#endif
