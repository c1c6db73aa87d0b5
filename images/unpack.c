/*
 * unpack.c - a layer into a directory (see unpack.h for what is refused
 * and why).
 */
#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "images/digest.h"

struct job {
    int fd;
    const char *digest;       /* expected, or NULL */
    uint64_t size;            /* expected, or 0 */
    struct digest_ctx hash;
    char buf[1 << 16];
    bool read_failed;
    const char *dir;
    const struct unpack_limits *lim;
    struct unpack_stats st;
    struct duet_err err;
    int rc;
};

/* Names as they are in the tar: "./a/b", "a/b/", "a//b" all mean a/b. */
static void clean_name(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 1 < len;) {
        while (*p == '/')
            p++;
        if (p[0] == '.' && (p[1] == '/' || p[1] == '\0')) {
            p++;
            continue;
        }
        if (!*p)
            break;
        if (o)
            out[o++] = '/';
        while (*p && *p != '/' && o + 1 < len)
            out[o++] = *p++;
    }
    out[o] = '\0';
}

static bool has_dotdot(const char *name)
{
    for (const char *p = name; *p;) {
        const char *e = strchrnul(p, '/');
        if (e - p == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p = *e ? e + 1 : e;
    }
    return false;
}

/* Makes the directories of a path (already inside our root), 0755. */
static int mkdir_parents(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        struct stat st;
        if (lstat(buf, &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                errno = S_ISLNK(st.st_mode) ? ELOOP : ENOTDIR;
                return -1;
            }
        } else if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
            return -1;
        }
        *s = '/';
    }
    return 0;
}

/* Removes what is at path, a directory with all below it. */
static int remove_any(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode))
        return unlink(path);
    char cmd_dir[PATH_MAX];
    snprintf(cmd_dir, sizeof(cmd_dir), "%s", path);
    /* depth-first, no symlink followed: we are in our own root anyway */
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char sub[PATH_MAX];
        if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", cmd_dir, e->d_name) >= sizeof(sub) || remove_any(sub) < 0) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return rmdir(path);
}

/* An OCI whiteout: ".wh..wh..opq" makes its directory opaque, ".wh.NAME"
 * hides NAME of the layers below. */
static int whiteout(const char *name, const char *base, struct duet_err *err)
{
    char dir[PATH_MAX], path[PATH_MAX + 8];
    size_t dlen = (size_t)(base - name);
    snprintf(dir, sizeof(dir), "/%.*s", (int)dlen, name);
    if (!strcmp(base, ".wh..wh..opq")) {
        snprintf(path, sizeof(path), "%s.", dir);
        if (mkdir_parents(path) < 0)
            return duet_err_sys(err, "entry \"%s\": cannot make its directory", name);
        if (setxattr(dir, "trusted.overlay.opaque", "y", 1, 0) < 0 || setxattr(dir, "user.overlay.opaque", "y", 1, 0) < 0)
            return duet_err_sys(err, "entry \"%s\": cannot mark its directory opaque", name);
        return 0;
    }
    const char *hidden = base + 4;
    if (!*hidden || !strcmp(hidden, ".") || !strcmp(hidden, ".."))
        return duet_err_set(err, EINVAL, "entry \"%s\" is a whiteout of nothing", name);
    snprintf(path, sizeof(path), "%s%s", dir, hidden);
    if (mkdir_parents(path) < 0 || remove_any(path) < 0)
        return duet_err_sys(err, "entry \"%s\": cannot make room for its whiteout", name);
    if (mknod(path, S_IFCHR | 0000, makedev(0, 0)) < 0)
        return duet_err_sys(err, "entry \"%s\": cannot make its whiteout", name);
    return 0;
}

/* Drops the xattrs an image may not set (see unpack.h). */
static void filter_xattrs(struct archive_entry *e)
{
    if (archive_entry_xattr_reset(e) == 0)
        return;
    struct kept {
        char *name;
        void *value;
        size_t size;
    } kept[64];
    size_t n = 0;
    const char *name;
    const void *value;
    size_t size;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK && n < 64) {
        if (!strncmp(name, "trusted.", 8) || !strncmp(name, "user.overlay.", 13) ||
            !(strncmp(name, "user.", 5) == 0 || strcmp(name, "security.capability") == 0))
            continue;
        kept[n].name = strdup(name);
        kept[n].value = malloc(size ? size : 1);
        if (!kept[n].name || !kept[n].value)
            abort();
        memcpy(kept[n].value, value, size);
        kept[n].size = size;
        n++;
    }
    archive_entry_xattr_clear(e);
    for (size_t i = 0; i < n; i++) {
        archive_entry_xattr_add_entry(e, kept[i].name, kept[i].value, kept[i].size);
        free(kept[i].name);
        free(kept[i].value);
    }
}

static int copy_data(struct archive *in, struct archive *out, struct job *j, const char *name)
{
    const void *buf;
    size_t size;
    int64_t off;
    for (;;) {
        int r = archive_read_data_block(in, &buf, &size, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r != ARCHIVE_OK)
            return duet_err_set(&j->err, EIO, "entry \"%s\": %s", name, archive_error_string(in));
        j->st.bytes += size;
        if (j->st.bytes > j->lim->max_bytes)
            return duet_err_set(&j->err, EFBIG,
                                "the image unpacks to more than %llu MiB, the bound duetd's --max-image-size sets; "
                                "raise it if the image is one you trust",
                                (unsigned long long)((j->lim->image_max ? j->lim->image_max : j->lim->max_bytes) >> 20));
        if (archive_write_data_block(out, buf, size, off) != ARCHIVE_OK)
            return duet_err_set(&j->err, EIO, "entry \"%s\": %s", name, archive_error_string(out));
    }
}

static int unpack_entries(struct job *j, struct archive *in, struct archive *out)
{
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return duet_err_set(&j->err, EIO, "not a readable layer: %s", archive_error_string(in));
        if (++j->st.entries > j->lim->max_entries)
            return duet_err_set(&j->err, EFBIG, "the layer has more than %llu entries",
                                (unsigned long long)j->lim->max_entries);
        const char *raw = archive_entry_pathname(e);
        char name[PATH_MAX];
        if (!raw || strlen(raw) >= sizeof(name) - 2)
            return duet_err_set(&j->err, ENAMETOOLONG, "an entry without a name, or with one too long");
        /* A leading '/' means the layer's root, as tar reads it (umoci
         * writes the root as "/"); ".." is refused wherever it is. */
        clean_name(raw, name, sizeof(name));
        if (has_dotdot(name))
            return duet_err_set(&j->err, EPERM, "entry \"%s\" leads out of the layer", raw);
        if (!name[0]) {
            /* the layer's root ("./"): its owner and mode, nothing else */
            archive_entry_set_pathname(e, ".");
        } else {
            archive_entry_set_pathname(e, name);
        }
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        if (!strncmp(base, ".wh.", 4)) {
            if (whiteout(name, base, &j->err) < 0)
                return -1;
            continue;
        }
        mode_t type = archive_entry_filetype(e);
        if (type == AE_IFCHR || type == AE_IFBLK)
            return duet_err_set(&j->err, EPERM, "entry \"%s\" is a device node (%s %lu:%lu); duet does not unpack "
                                "devices from images (a container gets its own /dev)",
                                name, type == AE_IFCHR ? "character" : "block", (unsigned long)archive_entry_rdevmajor(e),
                                (unsigned long)archive_entry_rdevminor(e));
        const char *hard = archive_entry_hardlink(e);
        if (hard) {
            char target[PATH_MAX];
            clean_name(hard, target, sizeof(target));
            if (has_dotdot(target) || !target[0])
                return duet_err_set(&j->err, EPERM, "entry \"%s\" is a hard link to \"%s\", outside the layer", name, hard);
            archive_entry_set_hardlink(e, target);
        }
        filter_xattrs(e);
        if (name[0]) {
            char abs[PATH_MAX + 1];
            snprintf(abs, sizeof(abs), "/%s", name);
            if (mkdir_parents(abs) < 0)
                return errno == ELOOP ? duet_err_set(&j->err, ELOOP, "entry \"%s\" would be written through a "
                                                     "symlink of the layer's", name)
                                      : duet_err_sys(&j->err, "entry \"%s\": cannot make its directory", name);
        }
        r = archive_write_header(out, e);
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return duet_err_set(&j->err, archive_errno(out) ? archive_errno(out) : EIO, "entry \"%s\": %s", name,
                                archive_error_string(out));
        if (archive_entry_size(e) > 0 && type == AE_IFREG && !hard && copy_data(in, out, j, name) < 0)
            return -1;
        r = archive_write_finish_entry(out);
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return duet_err_set(&j->err, EIO, "entry \"%s\": %s", name, archive_error_string(out));
    }
}

/* libarchive reads through here: every byte it sees is hashed. */
static la_ssize_t read_hashed(struct archive *a, void *opaque, const void **out)
{
    (void)a;
    struct job *j = opaque;
    ssize_t n;
    do
        n = read(j->fd, j->buf, sizeof(j->buf));
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        j->read_failed = true;
        archive_set_error(a, errno, "cannot read the layer: %s", strerror(errno));
        return -1;
    }
    digest_update(&j->hash, j->buf, (size_t)n);
    *out = j->buf;
    return n;
}

/* After the tar's end: the rest of the blob (padding) is hashed too, then
 * compared. */
static int check_digest(struct job *j)
{
    for (;;) {
        ssize_t n = read(j->fd, j->buf, sizeof(j->buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return duet_err_sys(&j->err, "cannot read the layer");
        if (n == 0)
            break;
        digest_update(&j->hash, j->buf, (size_t)n);
    }
    uint64_t got_size = j->hash.bytes;
    char got[DIGEST_STR];
    digest_final(&j->hash, got);
    if (j->size && got_size != j->size)
        return duet_err_set(&j->err, EBADMSG, "the layer is %llu bytes, and its manifest says %llu",
                            (unsigned long long)got_size, (unsigned long long)j->size);
    if (j->digest && strcmp(got, j->digest) != 0)
        return duet_err_set(&j->err, EBADMSG, "the layer's digest is %s, and its manifest says %s", got, j->digest);
    return 0;
}

static void *unpack_thread(void *opaque)
{
    struct job *j = opaque;
    j->rc = -1;
    /* A root of our own: this thread's chroot is no other thread's. */
    if (unshare(CLONE_FS) < 0 || chroot(j->dir) < 0 || chdir("/") < 0) {
        duet_err_sys(&j->err, "cannot enter %s to unpack into it", j->dir);
        return NULL;
    }
    umask(0);
    struct archive *in = archive_read_new(), *out = archive_write_disk_new();
    if (!in || !out)
        abort();
    /* An external decompressor would be looked up inside this root, i.e.
     * in the image: a filter that needs one (ARCHIVE_WARN) is refused. */
    if (archive_read_support_filter_gzip(in) != ARCHIVE_OK || archive_read_support_filter_zstd(in) != ARCHIVE_OK ||
        archive_read_support_filter_none(in) != ARCHIVE_OK || archive_read_support_format_tar(in) != ARCHIVE_OK) {
        duet_err_set(&j->err, ENOTSUP, "this libarchive lacks built-in gzip or zstd (install libarchive13 from Debian)");
        goto out;
    }
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                            ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_UNLINK |
                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                            ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
    digest_init(&j->hash);
    if (archive_read_open(in, j, NULL, read_hashed, NULL) != ARCHIVE_OK) {
        duet_err_set(&j->err, EIO, "not a readable layer: %s", archive_error_string(in));
        digest_abort(&j->hash);
        goto out;
    }
    j->rc = unpack_entries(j, in, out);
    if (j->rc == 0)
        j->rc = check_digest(j);
    else
        digest_abort(&j->hash);
out:
    archive_write_free(out);
    archive_read_free(in);
    return NULL;
}

int image_layer_unpack(int fd, const char *digest, uint64_t size, const char *dir, const struct unpack_limits *lim,
                       struct unpack_stats *st, struct duet_err *err)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j)
        abort();
    *j = (struct job){.fd = fd, .digest = digest, .size = size, .dir = dir, .lim = lim};
    pthread_t t;
    int rc = -1;
    if (lseek(fd, 0, SEEK_SET) < 0) {
        duet_err_sys(err, "cannot read the layer");
        goto out;
    }
    int e = pthread_create(&t, NULL, unpack_thread, j);
    if (e) {
        errno = e;
        duet_err_sys(err, "cannot start the unpacking thread");
        goto out;
    }
    pthread_join(t, NULL);
    if (st)
        *st = j->st;
    rc = j->rc;
    if (rc < 0 && err)
        *err = j->err;
out:
    free(j);
    return rc;
}
