/*
 * rootfs.c - reading a workload's image directory safely, for both
 * backends: a container runs in it, a VM boots a disk built from it.
 *
 * Every file is opened through the image's root (openat2 with
 * RESOLVE_IN_ROOT), so an image whose /etc/passwd or /bin/sh is a symlink
 * to "/etc/shadow" or "../../host" reads its own files, never the host's.
 */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"

int rootfs_check_dir(const char *rootfs, const char *what, struct duet_err *err)
{
    struct stat st;
    if (stat(rootfs, &st) < 0)
        return duet_err_sys(err, "%s: image.rootfs %s cannot be used", what, rootfs);
    if (!S_ISDIR(st.st_mode))
        return duet_err_set(err, ENOTDIR, "%s: image.rootfs %s is not a directory", what, rootfs);
    return 0;
}

int rootfs_open(const char *rootfs, const char *path)
{
    _cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return -1;
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    while (*path == '/')
        path++;
    return (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
}

/* A file of the image as a stream, opened through the root (so a symlinked
 * /etc/passwd cannot point at the host's), or NULL. */
static FILE *rootfs_fopen(const char *rootfs, const char *path)
{
    int fd = rootfs_open(rootfs, path);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "re");
    if (!f)
        close(fd);
    return f;
}

/* Is `cmd` an executable file in the rootfs (searching PATH when it has no '/')? */
bool rootfs_command_exists(const char *rootfs, const char *cmd, const char *pathvar)
{
    if (strchr(cmd, '/')) {
        _cleanup_close_ int fd = rootfs_open(rootfs, cmd);
        struct stat st;
        return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111);
    }
    const char *p = pathvar;
    while (*p) {
        const char *colon = strchrnul(p, ':');
        char full[512];
        snprintf(full, sizeof(full), "%.*s/%s", (int)(colon - p), p, cmd);
        _cleanup_close_ int fd = rootfs_open(rootfs, full);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111))
            return true;
        p = *colon ? colon + 1 : colon;
    }
    return false;
}

/* Looks NAME up in the rootfs's /etc/passwd (field 0 -> fields 2, 3) or
 * /etc/group (field 0 -> field 2), read through the root so that a
 * symlinked /etc/passwd cannot point at the host's. */
static bool lookup_id(const char *rootfs, const char *file, const char *name, uint32_t *id, uint32_t *gid)
{
    _cleanup_fclose_ FILE *f = rootfs_fopen(rootfs, file);
    if (!f)
        return false;
    char line[1024];
    size_t nlen = strlen(name);
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, name, nlen) != 0 || line[nlen] != ':')
            continue;
        char *save, *tok = strtok_r(line, ":", &save);
        tok = strtok_r(NULL, ":", &save);   /* password */
        char *u = strtok_r(NULL, ":", &save), *g = strtok_r(NULL, ":", &save);
        if (!tok || !u)
            return false;
        *id = (uint32_t)strtoul(u, NULL, 10);
        if (gid && g)
            *gid = (uint32_t)strtoul(g, NULL, 10);
        return true;
    }
    return false;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

/* The name of uid in the image's /etc/passwd, and its primary group. */
static bool lookup_uid(const char *rootfs, uint32_t uid, char *name, size_t len, uint32_t *gid)
{
    _cleanup_fclose_ FILE *f = rootfs_fopen(rootfs, "etc/passwd");
    if (!f)
        return false;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        char *save, *n = strtok_r(line, ":", &save), *pw = strtok_r(NULL, ":", &save);
        char *u = strtok_r(NULL, ":", &save), *g = strtok_r(NULL, ":", &save);
        if (!n || !pw || !u || !g || strtoul(u, NULL, 10) != uid)
            continue;
        snprintf(name, len, "%s", n);
        *gid = (uint32_t)strtoul(g, NULL, 10);
        return true;
    }
    return false;
}

/* The groups of /etc/group that list `user` as a member. */
static int supplementary_groups(const char *rootfs, const char *user, uint32_t primary, uint32_t *out, int max)
{
    int n = 0;
    out[n++] = primary;
    _cleanup_fclose_ FILE *f = rootfs_fopen(rootfs, "etc/group");
    if (!f)
        return n;
    char line[4096];
    while (n < max && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *save, *name = strtok_r(line, ":", &save), *pw = strtok_r(NULL, ":", &save);
        char *g = strtok_r(NULL, ":", &save), *members = strtok_r(NULL, ":", &save);
        if (!name || !pw || !g || !members)
            continue;
        uint32_t gid = (uint32_t)strtoul(g, NULL, 10);
        for (char *s2, *m = strtok_r(members, ",", &s2); m; m = strtok_r(NULL, ",", &s2))
            if (strcmp(m, user) == 0 && gid != primary) {
                out[n++] = gid;
                break;
            }
    }
    return n;
}

/* user: NAME, UID, NAME:GROUP or UID:GID, as Docker reads them: a name (or
 * a uid listed in the image's passwd) brings its primary group and its
 * supplementary groups; an unlisted uid gets group 0. */
int rootfs_user_resolve(const char *rootfs, const char *user, const char *what, struct rootfs_user *c,
                        struct duet_err *err)
{
    c->uid = 0;
    c->gid = 0;
    c->n_groups = 1;
    c->groups[0] = 0;
    if (!user)
        return 0;
    const char *colon = strchr(user, ':');
    size_t ulen = colon ? (size_t)(colon - user) : strlen(user);
    char u[64], name[64] = "";
    snprintf(u, sizeof(u), "%.*s", (int)ulen, user);
    uint32_t id = 0, g = 0;
    if (all_digits(u, ulen)) {
        id = (uint32_t)strtoul(u, NULL, 10);
        if (!lookup_uid(rootfs, id, name, sizeof(name), &g))
            g = 0;
    } else if (lookup_id(rootfs, "etc/passwd", u, &id, &g)) {
        snprintf(name, sizeof(name), "%s", u);
    } else {
        return duet_err_set(err, ENOENT,
                            "%s: user \"%s\" is not in %s/etc/passwd; add it to the image or give a "
                            "numeric UID",
                            what, u, rootfs);
    }
    if (colon) {
        const char *grp = colon + 1;
        if (all_digits(grp, strlen(grp))) {
            g = (uint32_t)strtoul(grp, NULL, 10);
        } else if (!lookup_id(rootfs, "etc/group", grp, &g, NULL)) {
            return duet_err_set(err, ENOENT,
                                "%s: group \"%s\" is not in %s/etc/group; add it to the image or give a "
                                "numeric GID",
                                what, grp, rootfs);
        }
    }
    c->uid = id;
    c->gid = g;
    c->n_groups = name[0] ? supplementary_groups(rootfs, name, g, c->groups, ROOTFS_MAX_GROUPS) : 1;
    if (!name[0])
        c->groups[0] = g;
    return 0;
}

