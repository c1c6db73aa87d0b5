/*
 * mounts.c - overlay root, /proc, a minimal /dev, read-only /sys, masked
 * and read-only paths, volumes, pivot_root.
 *
 * The rules follow what Docker and runc give a container, because that is
 * what users' images expect; docs/security.md says what each one protects.
 */
#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int openat2_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)flags | O_CLOEXEC,
        .mode = mode,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

int mounts_open_in_root(int rootfd, const char *path, bool create, bool file)
{
    while (*path == '/')
        path++;
    if (*path == '\0')
        return fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    int fd = openat2_in_root(rootfd, path, O_PATH, 0);
    if (fd >= 0 || !create || errno != ENOENT)
        return fd;
    /* Walk the path one component at a time, each opened inside the root,
     * creating what is missing.  No buffer is allocated: the component is
     * copied into a fixed one. */
    int dirfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    if (dirfd < 0)
        return -1;
    const char *p = path;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        char comp[256];
        if (len == 0) {
            p++;
            continue;
        }
        if (len >= sizeof(comp) || (len == 2 && p[0] == '.' && p[1] == '.')) {
            close(dirfd);
            errno = EINVAL;
            return -1;
        }
        memcpy(comp, p, len);
        comp[len] = '\0';
        bool last = !slash || slash[strspn(slash, "/")] == '\0';
        if (last && file) {
            int f = openat(dirfd, comp, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
            if (f >= 0)
                close(f);
        } else if (mkdirat(dirfd, comp, 0755) < 0 && errno != EEXIST) {
            close(dirfd);
            return -1;
        }
        /* Re-resolve the component inside the root: if it is a symlink the
         * root still contains it. */
        int next = openat2_in_root(dirfd, comp, O_PATH, 0);
        close(dirfd);
        if (next < 0)
            return -1;
        if (last)
            return next;
        dirfd = next;
        p = slash + 1;
    }
}

/* "/proc/self/fd/N": the directory an fd names, for the mount(2) calls that
 * take a path.  The fd was resolved inside the root, so is this path. */
static const char *fd_path(int fd, char *buf, size_t len)
{
    snprintf(buf, len, "/proc/self/fd/%d", fd);
    return buf;
}

/* Clones the mount at (dirfd, path) and attaches it on target, read-only
 * when asked: the whole operation on file descriptors. */
int mounts_clone_tree(int dirfd, const char *path, bool readonly)
{
    int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | (path[0] ? 0 : AT_EMPTY_PATH);
    int tree = (int)syscall(SYS_open_tree, dirfd, path, flags);
    if (tree < 0)
        return -1;
    if (readonly) {
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
        if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
            int e = errno;
            close(tree);
            errno = e;
            return -1;
        }
    }
    return tree;
}

static int attach_clone(int dirfd, const char *path, int target, bool readonly)
{
    int tree = mounts_clone_tree(dirfd, path, readonly);
    if (tree < 0)
        return -1;
    int rc = (int)syscall(SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    int e = errno;
    close(tree);
    errno = e;
    return rc;
}

int mounts_make_private(const char **what)
{
    *what = "making the mount namespace private";
    /* Nothing mounted for the container may propagate to the host. */
    return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
}

int mounts_overlay(const struct mounts_plan *p, int *rootfd, const char **what)
{
    *what = "mounting the overlay root (image read-only below, a private layer above)";
    if (mount("overlay", p->merged, "overlay", MS_NODEV, p->overlay_opts) < 0)
        return -1;
    *what = "opening the container root";
    *rootfd = open(p->merged, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return *rootfd < 0 ? -1 : 0;
}

static int mount_on(int rootfd, const char *path, const char *src, const char *type, unsigned long flags,
                    const char *data)
{
    int fd = mounts_open_in_root(rootfd, path, true, false);
    if (fd < 0)
        return -1;
    char buf[64];
    int rc = mount(src, fd_path(fd, buf, sizeof(buf)), type, flags, data);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int mounts_proc_dev_sys(int rootfd, const char **what)
{
    *what = "mounting /proc";
    if (mount_on(rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return -1;

    *what = "mounting /dev";
    if (mount_on(rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0)
        return -1;
    int dev = mounts_open_in_root(rootfd, "dev", false, false);
    if (dev < 0)
        return -1;
    /* dev is a tmpfs we just made: nothing in it is a symlink, so plain
     * openat relative to it stays inside. */
    int devdir = openat(dev, ".", O_DIRECTORY | O_CLOEXEC);
    close(dev);
    if (devdir < 0)
        return -1;
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    *what = "creating the device nodes in /dev";
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
        int f = openat(devdir, nodes[i], O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0666);
        if (f < 0)
            goto fail_dev;
        close(f);
        int target = openat(devdir, nodes[i], O_PATH | O_CLOEXEC | O_NOFOLLOW);
        char host[32];
        snprintf(host, sizeof(host), "/dev/%s", nodes[i]);
        int rc = target < 0 ? -1 : attach_clone(AT_FDCWD, host, target, false);
        int e = errno;
        if (target >= 0)
            close(target);
        if (rc < 0) {
            errno = e;
            goto fail_dev;
        }
    }
    *what = "mounting /dev/pts and /dev/shm";
    if (mkdirat(devdir, "pts", 0755) < 0 || mkdirat(devdir, "shm", 01777) < 0)
        goto fail_dev;
    {
        char buf[64], path[96];
        snprintf(path, sizeof(path), "%s/pts", fd_path(devdir, buf, sizeof(buf)));
        if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0)
            goto fail_dev;
        snprintf(path, sizeof(path), "%s/shm", fd_path(devdir, buf, sizeof(buf)));
        if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") < 0)
            goto fail_dev;
    }
    *what = "creating the links in /dev";
    if (symlinkat("pts/ptmx", devdir, "ptmx") < 0 || symlinkat("/proc/self/fd", devdir, "fd") < 0 ||
        symlinkat("/proc/self/fd/0", devdir, "stdin") < 0 || symlinkat("/proc/self/fd/1", devdir, "stdout") < 0 ||
        symlinkat("/proc/self/fd/2", devdir, "stderr") < 0)
        goto fail_dev;
    close(devdir);

    *what = "mounting /sys read-only";
    if (mount_on(rootfd, "sys", "sysfs", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL) < 0)
        return -1;
    return 0;
fail_dev: {
    int e = errno;
    close(devdir);
    errno = e;
    return -1;
}
}

int mounts_mask(int rootfd, const char **what)
{
    /* Files that leak host state or reach the kernel: hidden behind
     * /dev/null (files) or an empty read-only tmpfs (directories). */
    static const char *const masked[] = {"proc/kcore", "proc/keys", "proc/timer_list", "proc/sched_debug",
                                         "proc/latency_stats", "proc/acpi", "proc/scsi", "sys/firmware",
                                         "proc/interrupts"};
    /* Readable, but not writable: kernel tunables and triggers. */
    static const char *const readonly[] = {"proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus", "proc/fs"};
    *what = "masking /proc and /sys paths";
    for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++) {
        int fd = mounts_open_in_root(rootfd, masked[i], false, false);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;   /* not on this kernel */
            return -1;
        }
        struct stat st;
        int rc = fstat(fd, &st);
        if (rc == 0 && S_ISDIR(st.st_mode)) {
            char buf[64];
            rc = mount("tmpfs", fd_path(fd, buf, sizeof(buf)), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       "size=0");
        } else if (rc == 0) {
            rc = attach_clone(AT_FDCWD, "/dev/null", fd, true);
        }
        int e = errno;
        close(fd);
        if (rc < 0) {
            errno = e;
            return -1;
        }
    }
    *what = "making /proc paths read-only";
    for (size_t i = 0; i < sizeof(readonly) / sizeof(readonly[0]); i++) {
        int fd = mounts_open_in_root(rootfd, readonly[i], false, false);
        if (fd < 0) {
            if (errno == ENOENT)
                continue;
            return -1;
        }
        int rc = attach_clone(fd, "", fd, true);
        int e = errno;
        close(fd);
        if (rc < 0) {
            errno = e;
            return -1;
        }
    }
    return 0;
}

int mounts_volumes(int rootfd, const struct mounts_plan *p, const char **what)
{
    for (size_t i = 0; i < p->n_volumes; i++) {
        const struct wl_volume *v = &p->volumes[i];
        *what = "opening a volume's source on the host";
        struct stat st;
        if (fstat(p->volume_fds[i], &st) < 0)
            return -1;
        *what = "creating a volume's target inside the rootfs";
        int target = mounts_open_in_root(rootfd, v->target, true, !S_ISDIR(st.st_mode));
        if (target < 0)
            return -1;
        *what = "mounting a volume";
        int rc = (int)syscall(SYS_move_mount, p->volume_fds[i], "", target, "",
                              MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
        int e = errno;
        close(target);
        if (rc < 0) {
            errno = e;
            return -1;
        }
    }
    return 0;
}

int mounts_pivot(int rootfd, const char **what)
{
    *what = "pivot_root into the container root";
    /* pivot_root(".", ".") stacks the old root under the new one; the
     * detached unmount then drops it, leaving no path to the host's tree. */
    if (fchdir(rootfd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
        return -1;
    if (umount2(".", MNT_DETACH) < 0)
        return -1;
    return chdir("/");
}
