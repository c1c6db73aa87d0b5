/*
 * layer.c - a container's writable layer: a sparse ext4 image of
 * resources.disk bytes on a loop device (see layer.h).
 *
 * Why an image and not a quota: project quotas need the state directory on
 * XFS, or on ext4 mounted with prjquota, which few hosts have; an image
 * works on any filesystem that keeps sparse files, and its bound is exact.
 * The image is sparse: on the host it takes the most the container held
 * at once, never more than the bound.  It is not mounted with discard,
 * which gives deleted blocks back at once but makes every delete wait for
 * it (2,000 deletes took 12 times as long).
 *
 * Formatting an image per start would cost a mke2fs (25 ms) every time;
 * one template per size is formatted once and copied instead: only its
 * data extents, about 150 KiB whatever the size.  The journal is left out: the
 * layer is thrown away with the container it belongs to, so there is
 * nothing to recover after a crash, and the image is never mounted again.
 *
 * The filesystem is mounted detached (fsmount), never in the host's mount
 * namespace.  The container's setup moves it into its own namespace, so it
 * is unmounted when the container's last process ends, and the loop
 * device, set to clear itself, goes with it: a daemon that dies at any
 * point leaves no mount and no loop device behind.
 */
#include "layer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/loopdev.h"

/* ext4 works in 4 KiB blocks here; the loop device is given the same
 * logical block size, which direct I/O on the image needs. */
#define LAYER_BLOCK 4096

static int template_path(const char *dir, uint64_t bytes, char *out, size_t len)
{
    int n = snprintf(out, len, "%s/ext4-%" PRIu64 ".img", dir, bytes);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Formats the template for `bytes` unless a complete one is there.  Written
 * under a temporary name and renamed, after an fsync: a crash leaves a
 * stray temporary, never a template that is short. */
static int template_ensure(const char *dir, uint64_t bytes, char *path, size_t len, struct duet_err *err)
{
    if (template_path(dir, bytes, path, len) < 0)
        return duet_err_set(err, ENAMETOOLONG, "the layer template directory %s is too long a path", dir);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == bytes)
        return 0;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", dir);
    char tmp[PATH_MAX + 32], blocks[32];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)gettid());
    snprintf(blocks, sizeof(blocks), "%" PRIu64, bytes / LAYER_BLOCK);
    {
        _cleanup_close_ int fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)bytes) < 0) {
            int e = errno;
            unlink(tmp);
            errno = e;
            return duet_err_sys(err, "cannot create the layer template %s", tmp);
        }
    }
    /* -m 0: no blocks kept back for root, the bound is the container's to
     * use.  No journal (see the top of this file). */
    /* upper/ and work/ are made here, once, not at every start (reading
     * a fresh filesystem's bitmaps to allocate them costs more than the
     * rest of the mount). */
    char skel[PATH_MAX + 48];
    snprintf(skel, sizeof(skel), "%s.skel", tmp);
    static const char *const dirs[] = {"", "/upper", "/work"};
    for (int i = 0; i < 3; i++) {
        char d[PATH_MAX + 64];
        snprintf(d, sizeof(d), "%s%s", skel, dirs[i]);
        if ((mkdir(d, 0755) < 0 && errno != EEXIST) || chmod(d, 0755) < 0) {
            duet_err_sys(err, "cannot create %s", d);
            duet_remove_tree(skel, NULL);
            unlink(tmp);
            return -1;
        }
    }
    /* No journal, no room kept to grow, no backup superblocks: the layer
     * is never resized, checked or recovered, only thrown away. */
    char *const argv[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0",
                          "-O", "^has_journal,^resize_inode,sparse_super2", "-E", "num_backup_sb=0",
                          "-L", "duet-layer", "-d", skel, tmp, blocks, NULL};
    int rc = duet_run_tool(argv, err);
    duet_remove_tree(skel, NULL);
    if (rc < 0) {
        unlink(tmp);
        return duet_err_prefix(err, "formatting a %" PRIu64 "-byte writable layer", bytes);
    }
    _cleanup_close_ int fd = open(tmp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return duet_err_sys(err, "cannot store the layer template %s", path);
    }
    return 0;
}

int container_layer_create(const char *template_dir, const char *path, uint64_t bytes, struct duet_err *err)
{
    char tpl[PATH_MAX];
    if (template_ensure(template_dir, bytes, tpl, sizeof(tpl), err) < 0)
        return -1;
    _cleanup_close_ int src = open(tpl, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (src < 0)
        return duet_err_sys(err, "cannot open the layer template %s", tpl);
    _cleanup_close_ int dst = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (dst < 0)
        return duet_err_sys(err, "cannot create %s", path);
    if (duet_copy_sparse(src, dst, (off_t)bytes) < 0) {
        int e = errno;
        unlink(path);
        errno = e;
        return duet_err_sys(err, "cannot copy the layer template %s to %s", tpl, path);
    }
    return 0;
}

/* The image open at img on a free loop device; returns the device's fd. */
static int loop_attach(int img, const char *name, struct duet_err *err)
{
    char what[160], label[LO_NAME_SIZE];
    snprintf(what, sizeof(what), "container %s's writable layer", name);
    snprintf(label, sizeof(label), "duet-layer:%s", name);
    /* Direct I/O: the image's pages are not cached a second time under
     * the filesystem's own. */
    return duet_loop_attach(img, LAYER_BLOCK, LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO, label, what, err);
}

/* The kernel's own words on a failed fsconfig, read from the context. */
static const char *fs_message(int fs, char *buf, size_t len)
{
    ssize_t n = read(fs, buf, len - 1);
    if (n <= 2)
        return "no detail";
    buf[n] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    return buf + 2;   /* "e ext4: ..." */
}

/* The template made upper/ and work/, root's: a container in a user
 * namespace gets them as its root's. */
static int layer_give(int mnt, uid_t owner, const char *name, struct duet_err *err)
{
    static const char *const dirs[] = {"upper", "work"};
    for (int i = 0; i < 2 && owner != 0; i++)
        if (fchownat(mnt, dirs[i], owner, owner, AT_SYMLINK_NOFOLLOW) < 0)
            return duet_err_sys(err, "container %s: cannot give %s of its writable layer to its root", name, dirs[i]);
    return 0;
}

int container_layer_mount(const char *path, uid_t owner, const char *name, struct duet_err *err)
{
    _cleanup_close_ int img = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (img < 0)
        return duet_err_sys(err, "container %s: cannot open its writable layer %s", name, path);
    _cleanup_close_ int loop = loop_attach(img, name, err);
    if (loop < 0)
        return -1;
    char dev[64];
    snprintf(dev, sizeof(dev), "/proc/self/fd/%d", loop);
    _cleanup_close_ int fs = (int)syscall(SYS_fsopen, "ext4", FSOPEN_CLOEXEC);
    if (fs < 0)
        return duet_err_sys(err, "container %s: the kernel has no ext4, which its writable layer needs", name);
    char msg[256];
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", dev, 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "noinit_itable", NULL, 0) < 0 ||
        /* No cache flushes: nothing in the layer outlives the container,
         * so a flush (an fsync of the image on the host) buys nothing. */
        syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "nobarrier", NULL, 0) < 0 ||
        syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        int e = errno;
        const char *why = fs_message(fs, msg, sizeof(msg));
        errno = e;
        return duet_err_sys(err, "container %s: cannot mount its writable layer %s (%s)", name, path, why);
    }
    int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
    if (mnt < 0)
        return duet_err_sys(err, "container %s: cannot mount its writable layer %s", name, path);
    /* The loop device now lives as long as the mount: our fds can go. */
    if (layer_give(mnt, owner, name, err) < 0) {
        close(mnt);
        return -1;
    }
    return mnt;
}

int container_layer_usage(const char *path, uint64_t *used, uint64_t *limit, struct duet_err *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return duet_err_sys(err, "cannot read %s", path);
    *used = (uint64_t)st.st_blocks * 512;
    if (limit)
        *limit = (uint64_t)st.st_size;
    return 0;
}

/* ---- the pool of spares ------------------------------------------------ */

struct layer_spare {
    uint64_t bytes;          /* 0: an unused slot */
    uint64_t asked;          /* when this size was last asked for: the oldest slot is reused */
    bool broken;             /* making one failed: not again until asked again */
    int mnt;                 /* -1: none ready */
    char path[PATH_MAX + 64];
};

struct layer_pool {
    char dir[PATH_MAX];
    pid_t owner;             /* a forked child must not touch the lock (its holder may not exist there) */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stop;
    uint64_t clock, seq;
    struct layer_spare spares[LAYER_POOL_SIZES];
};

static void spare_drop(struct layer_spare *s)
{
    if (s->mnt >= 0) {
        close(s->mnt);
        unlink(s->path);
        s->mnt = -1;
    }
}

/* The slot for `bytes`, taking over the one asked for longest ago when
 * there is none yet.  The caller holds the lock. */
static struct layer_spare *slot_for(struct layer_pool *p, uint64_t bytes)
{
    struct layer_spare *oldest = &p->spares[0];
    for (int i = 0; i < LAYER_POOL_SIZES; i++) {
        struct layer_spare *s = &p->spares[i];
        if (s->bytes == bytes) {
            s->asked = ++p->clock;
            return s;
        }
        if (s->asked < oldest->asked)
            oldest = s;
    }
    spare_drop(oldest);
    oldest->bytes = bytes;
    oldest->broken = false;
    oldest->asked = ++p->clock;
    return oldest;
}

static struct layer_spare *slot_find(struct layer_pool *p, uint64_t bytes)
{
    for (int i = 0; i < LAYER_POOL_SIZES; i++)
        if (p->spares[i].bytes == bytes)
            return &p->spares[i];
    return NULL;
}

/* A fresh filesystem reads its bitmaps and directory blocks from the image
 * on first use, one synchronous read at a time; overlayfs's mount makes
 * and removes files in work/ and looks up every path in upper/.  Doing
 * the same once in a spare leaves those blocks cached for the start. */
static void layer_warm(int mnt)
{
    static const char *const dirs[] = {"upper/.duet-warm", "work/.duet-warm"};
    for (int i = 0; i < 2; i++) {
        if (mkdirat(mnt, dirs[i], 0700) == 0)
            unlinkat(mnt, dirs[i], AT_REMOVEDIR);
    }
    int fd = openat(mnt, "work/.duet-warm", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) {
        close(fd);
        unlinkat(mnt, "work/.duet-warm", 0);
    }
}

/* Makes the spares that are missing, one at a time, without the lock. */
static void *pool_main(void *arg)
{
    struct layer_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct layer_spare *todo = NULL;
        for (int i = 0; i < LAYER_POOL_SIZES && !todo; i++)
            if (p->spares[i].bytes && p->spares[i].mnt < 0 && !p->spares[i].broken)
                todo = &p->spares[i];
        if (!todo) {
            pthread_cond_wait(&p->wake, &p->lock);
            continue;
        }
        uint64_t bytes = todo->bytes;
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/spare-%" PRIu64 "-%" PRIu64 ".img", p->dir, bytes, ++p->seq);
        pthread_mutex_unlock(&p->lock);
        struct duet_err err = {0};
        int mnt = -1;
        if (container_layer_create(p->dir, path, bytes, &err) == 0) {
            mnt = container_layer_mount(path, 0, "(spare)", &err);
            if (mnt < 0)
                unlink(path);
            else
                layer_warm(mnt);
        }
        pthread_mutex_lock(&p->lock);
        /* The slot may have gone to another size meanwhile. */
        struct layer_spare *s = slot_find(p, bytes);
        if (mnt >= 0 && s && s->mnt < 0 && !p->stop) {
            s->mnt = mnt;
            memcpy(s->path, path, sizeof(path));
        } else if (mnt >= 0) {
            close(mnt);
            unlink(path);
        } else if (s) {
            /* The start that takes no spare makes its own layer and
             * reports why that failed. */
            s->broken = true;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct layer_pool *container_layer_pool_new(const char *template_dir, struct duet_err *err)
{
    struct layer_pool *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    if (strlen(template_dir) >= sizeof(p->dir) - 64) {
        free(p);
        duet_err_set(err, ENAMETOOLONG, "the layer template directory %s is too long a path", template_dir);
        return NULL;
    }
    snprintf(p->dir, sizeof(p->dir), "%s", template_dir);
    p->owner = getpid();
    for (int i = 0; i < LAYER_POOL_SIZES; i++)
        p->spares[i].mnt = -1;
    if (mkdir(p->dir, 0700) < 0 && errno != EEXIST) {
        duet_err_sys(err, "cannot create %s", p->dir);
        free(p);
        return NULL;
    }
    /* Spares of a process that died: their loop devices went with it. */
    _cleanup_closedir_ DIR *d = opendir(p->dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strncmp(e->d_name, "spare-", 6) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    int rc = pthread_create(&p->thread, NULL, pool_main, p);
    if (rc != 0) {
        errno = rc;
        duet_err_sys(err, "cannot start the writable layers' thread");
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->wake);
        free(p);
        return NULL;
    }
    return p;
}

void container_layer_pool_free(struct layer_pool *p)
{
    if (!p)
        return;
    if (p->owner == getpid()) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        for (int i = 0; i < LAYER_POOL_SIZES; i++)
            spare_drop(&p->spares[i]);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->wake);
    }
    free(p);
}

int container_layer_pool_want(struct layer_pool *p, uint64_t bytes, struct duet_err *err)
{
    char tpl[PATH_MAX];
    if (template_ensure(p->dir, bytes, tpl, sizeof(tpl), err) < 0)
        return -1;
    if (p->owner != getpid())
        return 0;
    pthread_mutex_lock(&p->lock);
    struct layer_spare *s = slot_for(p, bytes);
    s->broken = false;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

int container_layer_take(struct layer_pool *p, const char *path, uint64_t bytes, uid_t owner, const char *name,
                         struct duet_err *err)
{
    int mnt = -1;
    if (p->owner == getpid()) {
        pthread_mutex_lock(&p->lock);
        struct layer_spare *s = slot_for(p, bytes);
        if (s->mnt >= 0) {
            if (rename(s->path, path) == 0) {
                mnt = s->mnt;
                s->mnt = -1;
            } else {
                spare_drop(s);
            }
        }
        s->broken = false;
        /* The next one, for the next start. */
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
    if (mnt >= 0) {
        if (layer_give(mnt, owner, name, err) < 0) {
            close(mnt);
            return -1;
        }
        return mnt;
    }
    if (container_layer_create(p->dir, path, bytes, err) < 0)
        return -1;
    return container_layer_mount(path, owner, name, err);
}
