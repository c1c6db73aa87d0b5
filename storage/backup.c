/*
 * backup.c - the backup archive, written and read (backup.h).
 *
 * Writing walks a snapshot's tree with libarchive's disk reader, which
 * finds a sparse file's holes; the pax writer then stores only the data
 * (a 1 GiB disk with 100 MiB written costs 100 MiB before compression).
 * Reading is the other way round, with every entry checked against the
 * layout before anything is written, on a thread chrooted into the
 * destination so that what libarchive's own checks miss still cannot
 * leave it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "images/digest.h"
#include "manifests/manifest.h"
#include "storage/backup.h"

#define IO_CHUNK (256u << 10)

/* ---- the seal -------------------------------------------------------------
 *
 * zstd frames carry no checksum as libarchive writes them, and a tar cut
 * at an entry's end reads as a whole one: the last entry, BACKUP_SEAL,
 * holds a SHA-256 over every entry's name, size and data (holes left
 * out) and their count.  An archive without it, or whose contents do not
 * hash to it, is refused. */
#define BACKUP_SEAL "duet-backup.seal"

static void seal_entry(struct digest_ctx *h, const char *name, int64_t size)
{
    char head[PATH_MAX + 32];
    int n = snprintf(head, sizeof(head), "%s%c%lld%c", name, 0, (long long)size, 0);
    digest_update(h, head, (size_t)n);
}

/* ---- writing ------------------------------------------------------------ */

static int write_fail(struct archive *a, const char *what, struct duet_err *err)
{
    int e = archive_errno(a);
    if (e == ENOSPC || e == EDQUOT)
        return duet_err_set(err, ENOSPC,
                            "writing the backup (%s): no space left where it is written; make room there or write "
                            "it elsewhere",
                            what);
    return duet_err_set(err, e > 0 ? e : EIO, "writing the backup (%s): %s%s%s", what,
                        archive_error_string(a) ? archive_error_string(a) : "unknown error", e > 0 ? ": " : "",
                        e > 0 ? strerror(e) : "");
}

static int write_all(struct archive *out, const void *buf, size_t n, const char *what, struct duet_err *err)
{
    const char *p = buf;
    while (n) {
        la_ssize_t w = archive_write_data(out, p, n);
        if (w <= 0)
            return write_fail(out, what, err);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A file's data as the disk reader gives it: blocks at offsets, holes
 * between them.  The pax writer knows the holes from the entry's sparse
 * map and wants their zeros passed through, which it then skips. */
static int copy_file_data(struct archive *rd, struct archive *out, const char *name, char *zeros,
                          struct digest_ctx *h, struct duet_err *err)
{
    const void *buf;
    size_t n;
    la_int64_t off, done = 0;
    for (;;) {
        int r = archive_read_data_block(rd, &buf, &n, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r != ARCHIVE_OK)
            return duet_err_set(err, archive_errno(rd) > 0 ? archive_errno(rd) : EIO, "reading %s: %s", name,
                                archive_error_string(rd));
        while (off > done) {
            size_t z = off - done > IO_CHUNK ? IO_CHUNK : (size_t)(off - done);
            if (write_all(out, zeros, z, name, err) < 0)
                return -1;
            done += (la_int64_t)z;
        }
        if (write_all(out, buf, n, name, err) < 0)
            return -1;
        digest_update(h, buf, n);
        done += (la_int64_t)n;
    }
}

static int write_tree(struct archive *out, const char *dir, struct digest_ctx *h, uint64_t *entries,
                      struct duet_err *err)
{
    struct archive *rd = archive_read_disk_new();
    struct archive_entry *e = archive_entry_new();
    char *zeros = calloc(1, IO_CHUNK);
    if (!rd || !e || !zeros)
        abort();
    int rc = -1;
    size_t skip = strlen(dir);
    /* A volume's files as they are: no xattrs, ACLs or flags (a restore
     * would have to trust them), symlinks as symlinks, one filesystem. */
    archive_read_disk_set_symlink_physical(rd);
    archive_read_disk_set_behavior(rd, ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
                                           ARCHIVE_READDISK_NO_FFLAGS | ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS);
    if (archive_read_disk_open(rd, dir) != ARCHIVE_OK) {
        duet_err_set(err, archive_errno(rd) > 0 ? archive_errno(rd) : EIO, "reading %s: %s", dir,
                     archive_error_string(rd));
        goto out;
    }
    for (;;) {
        archive_entry_clear(e);
        int r = archive_read_next_header2(rd, e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            duet_err_set(err, archive_errno(rd) > 0 ? archive_errno(rd) : EIO, "reading %s: %s", dir,
                         archive_error_string(rd));
            goto out;
        }
        archive_read_disk_descend(rd);
        const char *path = archive_entry_pathname(e);
        if (!path || strncmp(path, dir, skip) != 0)
            continue;
        const char *rel = path + skip;
        while (*rel == '/')
            rel++;
        if (!*rel)
            continue;   /* the tree's root: not an entry */
        /* a snapshot's description is not the archive's: its index is */
        if (strcmp(rel, "disk") && strncmp(rel, "disk/", 5) && strcmp(rel, "volumes") && strncmp(rel, "volumes/", 8))
            continue;
        char name[PATH_MAX];
        snprintf(name, sizeof(name), "%s", rel);
        archive_entry_set_pathname(e, name);
        if (archive_write_header(out, e) != ARCHIVE_OK) {
            write_fail(out, name, err);
            goto out;
        }
        bool data = archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0;
        seal_entry(h, name, data ? archive_entry_size(e) : 0);
        (*entries)++;
        if (data && copy_file_data(rd, out, name, zeros, h, err) < 0)
            goto out;
    }
    rc = 0;
out:
    free(zeros);
    archive_entry_free(e);
    archive_read_free(rd);
    return rc;
}

int backup_archive_write(int fd, json_t *index, const char *dir, uint64_t *written, struct duet_err *err)
{
    json_object_set_new(index, "bytes", json_integer((json_int_t)duet_tree_allocated(dir)));
    _cleanup_free_ char *text = json_dumps(index, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        abort();
    struct archive *out = archive_write_new();
    if (!out)
        abort();
    int rc = -1;
    if (archive_write_add_filter_zstd(out) != ARCHIVE_OK || archive_write_set_format_pax(out) != ARCHIVE_OK) {
        duet_err_set(err, ENOTSUP, "this libarchive cannot write zstd-compressed pax archives: %s",
                     archive_error_string(out));
        goto out;
    }
    archive_write_set_bytes_in_last_block(out, 1);
    if (archive_write_open_fd(out, fd) != ARCHIVE_OK) {
        write_fail(out, "opening", err);
        goto out;
    }
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, BACKUP_INDEX);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, (la_int64_t)strlen(text));
    archive_entry_set_mtime(e, time(NULL), 0);
    int r = archive_write_header(out, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) {
        write_fail(out, BACKUP_INDEX, err);
        goto out;
    }
    struct digest_ctx h;
    uint64_t entries = 0;
    digest_init(&h);
    if (write_all(out, text, strlen(text), BACKUP_INDEX, err) < 0 || write_tree(out, dir, &h, &entries, err) < 0) {
        digest_abort(&h);
        goto out;
    }
    char sum[DIGEST_STR], seal[DIGEST_STR + 64];
    digest_final(&h, sum);
    snprintf(seal, sizeof(seal), "{\"entries\":%llu,\"digest\":\"%s\"}", (unsigned long long)entries, sum);
    e = archive_entry_new();
    archive_entry_set_pathname(e, BACKUP_SEAL);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_size(e, (la_int64_t)strlen(seal));
    archive_entry_set_mtime(e, time(NULL), 0);
    r = archive_write_header(out, e);
    archive_entry_free(e);
    if (r != ARCHIVE_OK) {
        write_fail(out, BACKUP_SEAL, err);
        goto out;
    }
    if (write_all(out, seal, strlen(seal), BACKUP_SEAL, err) < 0)
        goto out;
    if (archive_write_close(out) != ARCHIVE_OK) {
        write_fail(out, "closing", err);
        goto out;
    }
    if (fsync(fd) < 0) {
        duet_err_sys(err, "writing the backup");
        goto out;
    }
    struct stat st;
    if (written)
        *written = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    rc = 0;
out:
    archive_write_free(out);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

struct rjob {
    int fd;
    const char *dir;
    const struct backup_limits *lim;
    json_t *index;
    uint64_t bytes, entries;
    struct digest_ctx hash;
    bool sealed;
    int rc;
    struct duet_err err;
};

/* The index's volume `name`: 1 sized, 0 unsized, -1 not in it. */
static int index_volume(json_t *index, const char *name, size_t len)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(index, "volumes"), i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && strlen(n) == len && !memcmp(n, name, len))
            return json_is_integer(json_object_get(v, "size")) ? 1 : 0;
    }
    return -1;
}

static bool has_bad_component(const char *name)
{
    if (!*name || *name == '/')
        return true;
    for (const char *p = name; *p;) {
        const char *s = strchr(p, '/');
        size_t n = s ? (size_t)(s - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return true;
        p += n;
        if (*p == '/')
            p++;
    }
    return false;
}

/* NULL when the entry belongs in a backup where it says, else why not. */
static const char *entry_refused(json_t *index, const char *name, mode_t type, const char *hard)
{
    bool disk = json_is_object(json_object_get(index, "disk"));
    if (!strcmp(name, "disk"))
        return !disk ? "a disk the index does not name" : type != AE_IFDIR ? "not a directory" : NULL;
    if (!strcmp(name, "disk/disk.qcow2") || !strcmp(name, "disk/disk.base"))
        return !disk ? "a disk the index does not name" : type != AE_IFREG || hard ? "not a plain file" : NULL;
    if (!strcmp(name, "volumes"))
        return type != AE_IFDIR ? "not a directory" : NULL;
    if (strncmp(name, "volumes/", 8) != 0)
        return "not part of a duet backup";
    const char *vn = name + 8, *slash = strchr(vn, '/');
    size_t vlen = slash ? (size_t)(slash - vn) : strlen(vn);
    int sized = index_volume(index, vn, vlen);
    if (sized < 0)
        return "a volume the index does not name";
    if (!slash)
        return type != AE_IFDIR ? "not a directory" : NULL;
    const char *rest = slash + 1;
    if (sized)
        return strcmp(rest, "disk.ext4") ? "not part of a sized volume" : type != AE_IFREG || hard ? "not a plain file"
                                                                                                 : NULL;
    if (strcmp(rest, "data") == 0)
        return type != AE_IFDIR ? "not a directory" : NULL;
    if (strncmp(rest, "data/", 5) != 0)
        return "not part of a volume";
    if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK)
        return "a device node or socket";
    if (hard) {
        /* a link to another file of the same volume's data, nothing else */
        size_t pre = (size_t)(rest + 5 - name);
        if (strncmp(hard, name, pre) != 0 || has_bad_component(hard))
            return "a hard link out of its volume";
    }
    return NULL;
}

static int index_check(json_t *ix, struct duet_err *err)
{
    if (!json_is_object(ix) || json_integer_value(json_object_get(ix, "format")) != BACKUP_FORMAT)
        return duet_err_set(err, EPROTO,
                            "the archive's index is not one of format %d: a backup written by another version of duet, "
                            "or not a duet backup",
                            BACKUP_FORMAT);
    json_t *spec = json_object_get(ix, "spec");
    if (!json_is_object(spec))
        return duet_err_set(err, EPROTO, "the archive's index holds no workload spec");
    json_t *disk = json_object_get(ix, "disk");
    if (!json_is_null(disk) && !(json_is_object(disk) && json_is_string(json_object_get(disk, "source"))))
        return duet_err_set(err, EPROTO, "the archive's index names a disk without its source");
    json_t *vols = json_object_get(ix, "volumes");
    if (!json_is_array(vols))
        return duet_err_set(err, EPROTO, "the archive's index has no list of volumes");
    size_t i;
    json_t *v;
    json_array_foreach(vols, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        json_t *size = json_object_get(v, "size");
        if (!n || !manifest_name_valid(n, strlen(n)))
            return duet_err_set(err, EPROTO, "the archive's index names a volume \"%.64s\" that is not a volume name",
                                n ? n : "");
        if (!json_is_null(size) && !(json_is_integer(size) && json_integer_value(size) > 0))
            return duet_err_set(err, EPROTO, "the archive's index gives volume %s a size that is not one", n);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(n, json_string_value(json_object_get(json_array_get(vols, k), "name"))))
                return duet_err_set(err, EPROTO, "the archive's index names volume %s twice", n);
    }
    return 0;
}

static int read_index(struct rjob *j, struct archive *in)
{
    struct archive_entry *e;
    int r = archive_read_next_header(in, &e);
    if (r != ARCHIVE_OK)
        return duet_err_set(&j->err, EPROTO, "not a duet backup (a zstd-compressed tar): %s",
                            r == ARCHIVE_EOF ? "the archive is empty" : archive_error_string(in));
    la_int64_t size = archive_entry_size(e);
    if (strcmp(archive_entry_pathname(e) ? archive_entry_pathname(e) : "", BACKUP_INDEX) != 0 ||
        archive_entry_filetype(e) != AE_IFREG || size <= 0 || size > BACKUP_INDEX_MAX)
        return duet_err_set(&j->err, EPROTO, "not a duet backup: its first entry is not a %s of at most %u KiB",
                            BACKUP_INDEX, BACKUP_INDEX_MAX >> 10);
    _cleanup_free_ char *text = malloc((size_t)size);
    if (!text)
        abort();
    la_ssize_t got = 0;
    while (got < size) {
        la_ssize_t n = archive_read_data(in, text + got, (size_t)(size - got));
        if (n <= 0)
            return duet_err_set(&j->err, EPROTO, "the archive's index cannot be read: %s",
                                n < 0 ? archive_error_string(in) : "it is cut short");
        got += n;
    }
    json_error_t je;
    j->index = json_loadb(text, (size_t)size, JSON_REJECT_DUPLICATES, &je);
    if (!j->index)
        return duet_err_set(&j->err, EPROTO, "the archive's index is not JSON: %s", je.text);
    return index_check(j->index, &j->err);
}

static int read_data(struct rjob *j, struct archive *in, struct archive *out, const char *name)
{
    const void *buf;
    size_t n;
    la_int64_t off;
    for (;;) {
        int r = archive_read_data_block(in, &buf, &n, &off);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r != ARCHIVE_OK)
            return duet_err_set(&j->err, EPROTO, "entry \"%s\" cannot be read: %s", name, archive_error_string(in));
        j->bytes += n;
        digest_update(&j->hash, buf, n);
        if (j->bytes > j->lim->max_bytes)
            return duet_err_set(&j->err, ENOSPC,
                                "the archive unpacks to more than the %llu MiB free for it under duetd's state "
                                "directory; make room there",
                                (unsigned long long)(j->lim->max_bytes >> 20));
        if (archive_write_data_block(out, buf, n, off) != ARCHIVE_OK)
            return duet_err_set(&j->err, archive_errno(out) > 0 ? archive_errno(out) : EIO, "entry \"%s\": %s", name,
                                archive_error_string(out));
    }
}

/* The seal, read and compared: the last entry. */
static int read_seal(struct rjob *j, struct archive *in, struct archive_entry *e, uint64_t entries)
{
    char text[512];
    la_int64_t size = archive_entry_size(e);
    if (archive_entry_filetype(e) != AE_IFREG || size <= 0 || size >= (la_int64_t)sizeof(text) ||
        archive_read_data(in, text, (size_t)size) != size)
        return duet_err_set(&j->err, EPROTO, "the archive's seal cannot be read: it is damaged");
    text[size] = '\0';
    char sum[DIGEST_STR];
    digest_final(&j->hash, sum);
    j->sealed = true;
    json_t *seal = json_loads(text, 0, NULL);
    const char *want = json_string_value(json_object_get(seal, "digest"));
    bool ok = want && !strcmp(want, sum) &&
              (uint64_t)json_integer_value(json_object_get(seal, "entries")) == entries;
    json_decref(seal);
    if (!ok)
        return duet_err_set(&j->err, EBADMSG, "the archive's contents do not match its seal: it is damaged");
    struct archive_entry *next;
    if (archive_read_next_header(in, &next) != ARCHIVE_EOF)
        return duet_err_set(&j->err, EPROTO, "the archive has entries after its seal; refused");
    return 0;
}

static int read_entries(struct rjob *j, struct archive *in, struct archive *out)
{
    uint64_t entries = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            return duet_err_set(&j->err, EPROTO, "the archive is cut short: it ends before its seal");
        if (r != ARCHIVE_OK)
            return duet_err_set(&j->err, EPROTO, "the archive is damaged or cut short: %s", archive_error_string(in));
        if (++j->entries > j->lim->max_entries)
            return duet_err_set(&j->err, EFBIG, "the archive has more than %llu entries",
                                (unsigned long long)j->lim->max_entries);
        const char *raw = archive_entry_pathname(e);
        char name[PATH_MAX];
        if (!raw || strlen(raw) >= sizeof(name))
            return duet_err_set(&j->err, ENAMETOOLONG, "an entry without a name, or with one too long");
        snprintf(name, sizeof(name), "%s", raw);
        size_t len = strlen(name);
        while (len > 1 && name[len - 1] == '/')
            name[--len] = '\0';
        if (!strcmp(name, BACKUP_SEAL))
            return read_seal(j, in, e, entries);
        const char *hard = archive_entry_hardlink(e);
        mode_t type = archive_entry_filetype(e);
        bool data = type == AE_IFREG && !hard && archive_entry_size(e) > 0;
        seal_entry(&j->hash, name, data ? archive_entry_size(e) : 0);
        entries++;
        const char *why = has_bad_component(name) || (hard && has_bad_component(hard))
                              ? "a name that leads out of the archive"
                              : entry_refused(j->index, name, type, hard);
        if (why)
            return duet_err_set(&j->err, EPERM, "entry \"%.200s\" is refused: %s", raw, why);
        archive_entry_set_pathname(e, name);
        r = archive_write_header(out, e);
        if (r != ARCHIVE_OK)
            return duet_err_set(&j->err, archive_errno(out) > 0 ? archive_errno(out) : EIO, "entry \"%s\": %s", name,
                                archive_error_string(out));
        if (data && read_data(j, in, out, name) < 0)
            return -1;
        if (archive_write_finish_entry(out) != ARCHIVE_OK)
            return duet_err_set(&j->err, archive_errno(out) > 0 ? archive_errno(out) : EIO, "entry \"%s\": %s", name,
                                archive_error_string(out));
    }
}

/* Everything the index names was in the archive. */
static int check_present(struct rjob *j)
{
    struct stat st;
    if (json_is_object(json_object_get(j->index, "disk")) &&
        (lstat("/disk/disk.qcow2", &st) < 0 || !S_ISREG(st.st_mode) || lstat("/disk/disk.base", &st) < 0 ||
         !S_ISREG(st.st_mode)))
        return duet_err_set(&j->err, EPROTO, "the archive is cut short: the VM disk its index names is not in it");
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j->index, "volumes"), i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        bool sized = json_is_integer(json_object_get(v, "size"));
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "/volumes/%s/%s", n, sized ? "disk.ext4" : "data");
        if (lstat(p, &st) < 0 || (sized ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode)))
            return duet_err_set(&j->err, EPROTO,
                                "the archive is cut short: volume %s, which its index names, is not in it", n);
        if (sized && (uint64_t)st.st_size != (uint64_t)json_integer_value(json_object_get(v, "size")))
            return duet_err_set(&j->err, EPROTO,
                                "volume %s's image in the archive is not of the size its index says", n);
    }
    return 0;
}

static void *read_thread(void *opaque)
{
    struct rjob *j = opaque;
    j->rc = -1;
    if (unshare(CLONE_FS) < 0 || chroot(j->dir) < 0 || chdir("/") < 0) {
        duet_err_sys(&j->err, "cannot enter %s to unpack the backup into it", j->dir);
        return NULL;
    }
    umask(077);
    struct archive *in = archive_read_new(), *out = archive_write_disk_new();
    if (!in || !out)
        abort();
    /* zstd built into libarchive, never an external program. */
    if (archive_read_support_filter_zstd(in) != ARCHIVE_OK || archive_read_support_format_tar(in) != ARCHIVE_OK) {
        duet_err_set(&j->err, ENOTSUP, "this libarchive lacks built-in zstd (install libarchive13 from Debian)");
        goto out;
    }
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                            ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
    if (archive_read_open_fd(in, j->fd, IO_CHUNK) != ARCHIVE_OK) {
        duet_err_set(&j->err, EPROTO, "not a duet backup: %s", archive_error_string(in));
        goto out;
    }
    digest_init(&j->hash);
    if (read_index(j, in) == 0 && read_entries(j, in, out) == 0 && check_present(j) == 0)
        j->rc = 0;
    if (!j->sealed)
        digest_abort(&j->hash);
out:
    archive_write_free(out);
    archive_read_free(in);
    return NULL;
}

json_t *backup_archive_read(int fd, const char *dir, const struct backup_limits *lim, struct duet_err *err)
{
    struct rjob *j = calloc(1, sizeof(*j));
    if (!j)
        abort();
    j->fd = fd;
    j->dir = dir;
    j->lim = lim;
    pthread_t t;
    json_t *ix = NULL;
    int e = pthread_create(&t, NULL, read_thread, j);
    if (e) {
        errno = e;
        duet_err_sys(err, "cannot start the thread that unpacks the backup");
    } else {
        pthread_join(t, NULL);
        if (j->rc == 0) {
            ix = j->index;
            j->index = NULL;
        } else if (err) {
            *err = j->err;
        }
    }
    json_decref(j->index);
    free(j);
    return ix;
}
