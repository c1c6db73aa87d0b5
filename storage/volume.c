/*
 * volume.c - named volumes (see volume.h).
 *
 * Each step is made so that a daemon killed in the middle of it leaves
 * either nothing or something the next volume_prepare finishes: the image
 * is formatted under a temporary name and renamed, an unsized volume's
 * data directory is made and given away under a temporary name and
 * renamed, and a mount is checked for (data on another device than its
 * parent) before one is made.
 *
 * Why an ext4 image and not a quota: as for a container's writable layer
 * (backends/container/layer.c), project quotas need the state directory on
 * XFS or on ext4 mounted with prjquota.  Unlike a layer, a volume holds
 * data that must survive a crash: its filesystem keeps its journal, and is
 * mounted with barriers.
 */
#include "volume.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/loop.h>
#include <linux/mount.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/loopdev.h"
#include "common/units.h"

#define VOLUME_BLOCK 4096

bool volume_data_path(const char *root, const char *name, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/%s/data", root, name);
    return n > 0 && (size_t)n < len;
}

static void vol_path(const char *root, const char *name, const char *file, char *out, size_t len)
{
    snprintf(out, len, "%s/%s%s%s", root, name, file ? "/" : "", file ? file : "");
}

/* data is a mount point: on another device than the volume's directory. */
static bool data_mounted(const char *root, const char *name)
{
    char dir[PATH_MAX], data[PATH_MAX];
    vol_path(root, name, NULL, dir, sizeof(dir));
    vol_path(root, name, "data", data, sizeof(data));
    struct stat a, b;
    return stat(dir, &a) == 0 && stat(data, &b) == 0 && a.st_dev != b.st_dev;
}

static bool is_sized(const char *root, const char *name, uint64_t *size)
{
    char img[PATH_MAX];
    vol_path(root, name, "disk.ext4", img, sizeof(img));
    struct stat st;
    if (lstat(img, &st) < 0 || !S_ISREG(st.st_mode))
        return false;
    if (size)
        *size = (uint64_t)st.st_size;
    return true;
}

bool volume_ready(const char *root, const char *name)
{
    char data[PATH_MAX];
    vol_path(root, name, "data", data, sizeof(data));
    struct stat st;
    if (lstat(data, &st) < 0 || !S_ISDIR(st.st_mode))
        return false;
    return !is_sized(root, name, NULL) || data_mounted(root, name);
}

static int make_dir(const char *path, struct duet_err *err)
{
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", path);
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
        return duet_err_set(err, ENOTDIR, "%s is not a directory", path);
    return 0;
}

/* The image, formatted: journaled ext4, no blocks kept back for root (the
 * size is the workload's to use), its root directory the workload's. */
static int image_make(const char *root, const char *name, uint64_t size, uid_t uid, gid_t gid, struct duet_err *err)
{
    char img[PATH_MAX], tmp[PATH_MAX + 32], blocks[32], owner[48];
    vol_path(root, name, "disk.ext4", img, sizeof(img));
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", img, (int)gettid());
    snprintf(blocks, sizeof(blocks), "%" PRIu64, size / VOLUME_BLOCK);
    snprintf(owner, sizeof(owner), "root_owner=%u:%u", (unsigned)uid, (unsigned)gid);
    {
        _cleanup_close_ int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
            int e = errno;
            unlink(tmp);
            errno = e;
            return duet_err_sys(err, "volume %s: cannot create its image %s", name, tmp);
        }
    }
    char *const argv[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-E", owner,
                          "-L", "duet-volume", tmp, blocks, NULL};
    if (duet_run_tool(argv, err) < 0) {
        unlink(tmp);
        return duet_err_prefix(err, "volume %s: formatting its %" PRIu64 "-byte filesystem", name, size);
    }
    _cleanup_close_ int fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fsync(fd) < 0 || rename(tmp, img) < 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return duet_err_sys(err, "volume %s: cannot store its image %s", name, img);
    }
    return 0;
}

/* The image on a loop device (gone with the mount), its filesystem on
 * data.  A fresh one loses lost+found: a workload that wants its
 * directory empty (initdb, for one) finds it so; e2fsck makes it anew
 * when it needs it. */
static int image_mount(const char *root, const char *name, bool fresh, struct duet_err *err)
{
    char img[PATH_MAX], data[PATH_MAX], what[128], label[LO_NAME_SIZE];
    vol_path(root, name, "disk.ext4", img, sizeof(img));
    vol_path(root, name, "data", data, sizeof(data));
    snprintf(what, sizeof(what), "volume %s", name);
    snprintf(label, sizeof(label), "duet-volume:%s", name);
    _cleanup_close_ int fd = open(img, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return duet_err_sys(err, "volume %s: cannot open its image %s", name, img);
    _cleanup_close_ int loop = duet_loop_attach(fd, VOLUME_BLOCK, LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO, label,
                                                what, err);
    if (loop < 0)
        return -1;
    /* Named as the device it is (/dev/loopN), which df shows. */
    char fdpath[64], dev[64];
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", loop);
    ssize_t dn = readlink(fdpath, dev, sizeof(dev) - 1);
    if (dn <= 0)
        snprintf(dev, sizeof(dev), "%s", fdpath);
    else
        dev[dn] = '\0';
    _cleanup_close_ int fs = (int)syscall(SYS_fsopen, "ext4", FSOPEN_CLOEXEC);
    if (fs < 0)
        return duet_err_sys(err, "volume %s: the kernel has no ext4", name);
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", dev, 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
        return duet_err_sys(err, "volume %s: cannot mount its filesystem %s (e2fsck -f %s may tell why)", name, img,
                            img);
    _cleanup_close_ int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID);
    if (mnt < 0)
        return duet_err_sys(err, "volume %s: cannot mount its filesystem %s", name, img);
    if (fresh && unlinkat(mnt, "lost+found", AT_REMOVEDIR) < 0 && errno != ENOENT)
        return duet_err_sys(err, "volume %s: cannot tidy its new filesystem", name);
    if (syscall(SYS_move_mount, mnt, "", AT_FDCWD, data, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return duet_err_sys(err, "volume %s: cannot mount its filesystem on %s", name, data);
    return 0;
}

/* An unsized volume's data: made, given to uid:gid, then put in place. */
static int plain_make(const char *root, const char *name, uid_t uid, gid_t gid, struct duet_err *err)
{
    char data[PATH_MAX], tmp[PATH_MAX + 32];
    vol_path(root, name, "data", data, sizeof(data));
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", data, (int)gettid());
    if (mkdir(tmp, 0755) < 0 || chown(tmp, uid, gid) < 0 || rename(tmp, data) < 0) {
        int e = errno;
        rmdir(tmp);
        errno = e;
        return duet_err_sys(err, "volume %s: cannot create %s", name, data);
    }
    return 0;
}

int volume_prepare(const char *root, const char *name, uint64_t size, uid_t uid, gid_t gid, struct duet_err *err)
{
    char dir[PATH_MAX], data[PATH_MAX];
    vol_path(root, name, NULL, dir, sizeof(dir));
    vol_path(root, name, "data", data, sizeof(data));
    if (make_dir(root, err) < 0 || make_dir(dir, err) < 0)
        return -1;
    uint64_t have = 0;
    bool sized = is_sized(root, name, &have);
    struct stat st;
    bool has_data = lstat(data, &st) == 0;
    if (has_data && !S_ISDIR(st.st_mode))
        return duet_err_set(err, ENOTDIR, "volume %s: %s is not a directory; remove it", name, data);
    char a[32], b[32];
    if (size && sized && have != size)
        return duet_err_set(err, EEXIST,
                            "volume %s is %s and the spec says size %s: a volume keeps the size it was made with; "
                            "give size %s, or remove the volume (duet volume rm %s) to make it anew",
                            name, units_size_format(have, a, sizeof(a)), units_size_format(size, b, sizeof(b)), a,
                            name);
    if (size && !sized && has_data)
        return duet_err_set(err, EEXIST,
                            "volume %s was made without a size and the spec says size %s: drop size, or remove "
                            "the volume (duet volume rm %s) to make it anew",
                            name, units_size_format(size, b, sizeof(b)), name);
    if (!sized && size) {
        struct statvfs vfs;
        if (statvfs(root, &vfs) == 0 && size > (uint64_t)vfs.f_blocks * vfs.f_frsize)
            return duet_err_set(err, EFBIG,
                                "volume %s: size %s is more than the whole disk under %s (%s); give a smaller size",
                                name, units_size_format(size, b, sizeof(b)), root,
                                units_size_format((uint64_t)vfs.f_blocks * vfs.f_frsize, a, sizeof(a)));
        if (image_make(root, name, size, uid, gid, err) < 0)
            return -1;
        sized = true;
    }
    if (!sized)
        return has_data ? 0 : plain_make(root, name, uid, gid, err);
    if (!has_data && mkdir(data, 0755) < 0 && errno != EEXIST)
        return duet_err_sys(err, "volume %s: cannot create %s", name, data);
    if (data_mounted(root, name))
        return 0;
    return image_mount(root, name, !has_data, err);
}

/* The volume's directory, its data, and when it was made; -1 (ENOENT)
 * when there is no such volume. */
static int vol_find(const char *root, const char *name, char *dir, char *data, int64_t *made_ms, struct duet_err *err)
{
    vol_path(root, name, NULL, dir, PATH_MAX);
    vol_path(root, name, "data", data, PATH_MAX);
    struct stat st;
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return duet_err_set(err, ENOENT, "no volume named %s; duet volume ls lists them", name);
    if (made_ms)
        *made_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return 0;
}

int volume_remove(const char *root, const char *name, struct duet_err *err)
{
    char dir[PATH_MAX], data[PATH_MAX];
    if (vol_find(root, name, dir, data, NULL, err) < 0)
        return -1;
    /* Each mount of its filesystem, stacked or not, goes first: the tree
     * is then removed without crossing into anything mounted. */
    for (int i = 0; i < 16 && data_mounted(root, name); i++)
        if (umount2(data, UMOUNT_NOFOLLOW) < 0)
            return duet_err_sys(err, "volume %s: cannot unmount %s", name, data);
    if (data_mounted(root, name))
        return duet_err_set(err, EBUSY, "volume %s: %s stays mounted", name, data);
    if (duet_remove_tree(dir, err) < 0)
        return duet_err_prefix(err, "volume %s", name);
    return 0;
}

int volume_save(const char *root, const char *name, const char *dir, struct duet_err *err)
{
    char vdir[PATH_MAX], data[PATH_MAX], img[PATH_MAX], to[PATH_MAX + 16];
    if (vol_find(root, name, vdir, data, NULL, err) < 0)
        return -1;
    if (mkdir(dir, 0700) < 0)
        return duet_err_sys(err, "volume %s: cannot create %s", name, dir);
    if (!is_sized(root, name, NULL)) {
        snprintf(to, sizeof(to), "%s/data", dir);
        char *const argv[] = {"cp", "-a", "--sparse=always", "--reflink=auto", "--", data, to, NULL};
        if (duet_run_tool(argv, err) < 0)
            return duet_err_prefix(err, "volume %s: copying its data", name);
        return 0;
    }
    vol_path(root, name, "disk.ext4", img, sizeof(img));
    snprintf(to, sizeof(to), "%s/disk.ext4", dir);
    /* Frozen: every write so far is in the image, none comes meanwhile. */
    _cleanup_close_ int fd = data_mounted(root, name) ? open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0 && ioctl(fd, FIFREEZE, 0) < 0)
        return duet_err_sys(err, "volume %s: cannot freeze its filesystem to copy it", name);
    int rc = duet_copy_file(img, to, name, err);
    if (fd >= 0 && ioctl(fd, FITHAW, 0) < 0 && rc == 0)
        rc = duet_err_sys(err, "volume %s: cannot thaw its filesystem", name);
    return rc;
}

int volume_restore(const char *root, const char *name, const char *dir, struct duet_err *err)
{
    char vdir[PATH_MAX], data[PATH_MAX], from[PATH_MAX + 16], tmp[PATH_MAX + 16], old[PATH_MAX + 16];
    /* A volume removed since the snapshot is made again from it. */
    vol_path(root, name, NULL, vdir, sizeof(vdir));
    vol_path(root, name, "data", data, sizeof(data));
    if (make_dir(root, err) < 0 || make_dir(vdir, err) < 0)
        return -1;
    snprintf(from, sizeof(from), "%s/disk.ext4", dir);
    if (access(from, F_OK) == 0) {
        char img[PATH_MAX];
        vol_path(root, name, "disk.ext4", img, sizeof(img));
        snprintf(tmp, sizeof(tmp), "%s.restore", img);
        unlink(tmp);
        if (duet_copy_file(from, tmp, name, err) < 0)
            return -1;
        for (int i = 0; i < 16 && data_mounted(root, name); i++)
            if (umount2(data, UMOUNT_NOFOLLOW) < 0) {
                unlink(tmp);
                return duet_err_sys(err, "volume %s: cannot unmount %s to restore it", name, data);
            }
        if (rename(tmp, img) < 0) {
            unlink(tmp);
            return duet_err_sys(err, "volume %s: cannot put its image back", name);
        }
        if (mkdir(data, 0755) < 0 && errno != EEXIST)
            return duet_err_sys(err, "volume %s: cannot create %s", name, data);
        return image_mount(root, name, false, err);
    }
    /* A tree: copied beside the data, then swapped in by two renames; a
     * crash between them leaves data.old, which the restore asked again
     * removes. */
    snprintf(from, sizeof(from), "%s/data", dir);
    snprintf(tmp, sizeof(tmp), "%s.restore", data);
    snprintf(old, sizeof(old), "%s.old", data);
    if (duet_remove_tree(tmp, err) < 0 || duet_remove_tree(old, err) < 0)
        return duet_err_prefix(err, "volume %s", name);
    char *const argv[] = {"cp", "-a", "--sparse=always", "--reflink=auto", "--", from, tmp, NULL};
    if (duet_run_tool(argv, err) < 0) {
        duet_remove_tree(tmp, NULL);
        return duet_err_prefix(err, "volume %s: copying its snapshot back", name);
    }
    if ((rename(data, old) < 0 && errno != ENOENT) || rename(tmp, data) < 0)
        return duet_err_sys(err, "volume %s: cannot put its data back", name);
    return duet_remove_tree(old, err) < 0 ? duet_err_prefix(err, "volume %s", name) : 0;
}

int volume_inspect(const char *root, const char *name, struct volume_info *out, struct duet_err *err)
{
    memset(out, 0, sizeof(*out));
    char dir[PATH_MAX], data[PATH_MAX];
    if (vol_find(root, name, dir, data, &out->created_ms, err) < 0)
        return -1;
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->sized = is_sized(root, name, &out->size);
    out->mounted = out->sized && data_mounted(root, name);
    struct statvfs vfs;
    if (out->mounted && statvfs(data, &vfs) == 0)
        out->used = (uint64_t)(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
    return 0;
}

static int info_cmp(const void *a, const void *b)
{
    return strcmp(((const struct volume_info *)a)->name, ((const struct volume_info *)b)->name);
}

int volume_list(const char *root, struct volume_info **out, size_t *n, struct duet_err *err)
{
    *out = NULL;
    *n = 0;
    _cleanup_closedir_ DIR *d = opendir(root);
    if (!d)
        return errno == ENOENT ? 0 : duet_err_sys(err, "cannot read %s", root);
    struct volume_info *v = NULL;
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(v->name))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct volume_info *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                free(v);
                return duet_err_set(err, ENOMEM, "no memory to list the volumes");
            }
            v = nv;
        }
        struct duet_err ignored;
        if (volume_inspect(root, e->d_name, &v[*n], &ignored) == 0)
            (*n)++;
    }
    if (*n)
        qsort(v, *n, sizeof(*v), info_cmp);
    *out = v;
    return 0;
}
