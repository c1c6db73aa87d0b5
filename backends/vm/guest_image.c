/*
 * guest_image.c - disks and initramfs images for VMs (see guest_image.h).
 *
 * Caches are keyed by what they are built from and written under a
 * temporary name, then renamed: a crash mid-build leaves a stray temporary,
 * never a half-built image under a name that will be trusted later.
 */
#include "guest_image.h"

#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fsutil.h"
#include "common/grow.h"
#include "common/strmap.h"
#include "virtiofs.h"

extern char **environ;


/* ---- disks ------------------------------------------------------------ */

int vm_disk_format(const char *path, const char **fmt, uint64_t *virtual_size, struct duet_err *err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return duet_err_sys(err, "image.disk %s cannot be read", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return duet_err_set(err, EINVAL, "image.disk %s is not a regular file", path);
    unsigned char magic[4] = {0};
    if (pread(fd, magic, 4, 0) != 4)
        return duet_err_set(err, EINVAL, "image.disk %s is too small to be a disk image", path);
    *fmt = memcmp(magic, "QFI\xfb", 4) == 0 ? "qcow2" : "raw";
    *virtual_size = (uint64_t)st.st_size;
    if (strcmp(*fmt, "qcow2") == 0) {
        /* A base with a backing file of its own would pull a file duet
         * never saw into the guest (header: backing file offset, big
         * endian, at byte 8). */
        unsigned char off[8];
        if (pread(fd, off, 8, 8) != 8)
            return duet_err_set(err, EINVAL, "image.disk %s: truncated qcow2 header", path);
        uint64_t o = 0;
        for (int i = 0; i < 8; i++)
            o = o << 8 | off[i];
        if (o != 0)
            return duet_err_set(err, EINVAL,
                                "image.disk %s has a backing file of its own; flatten it first: qemu-img convert "
                                "-O qcow2 %s flat.qcow2",
                                path, path);
        /* The virtual size: big endian, at byte 24. */
        unsigned char sz[8];
        if (pread(fd, sz, 8, 24) != 8)
            return duet_err_set(err, EINVAL, "image.disk %s: truncated qcow2 header", path);
        *virtual_size = 0;
        for (int i = 0; i < 8; i++)
            *virtual_size = *virtual_size << 8 | sz[i];
    }
    return 0;
}

int vm_disk_overlay(const char *base, const char *base_fmt, const char *overlay, uint64_t size, const char *what,
                    struct duet_err *err)
{
    char real[PATH_MAX], bytes[32];
    if (!realpath(base, real))
        return duet_err_sys(err, "%s: image %s cannot be used", what, base);
    snprintf(bytes, sizeof(bytes), "%" PRIu64, size);
    char *const argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", (char *)base_fmt, "-b", real,
                          (char *)overlay, bytes, NULL};
    if (duet_run_tool(argv, err) < 0)
        return duet_err_prefix(err, "%s: cannot create the disk overlay on %s", what, real);
    return 0;
}

/* FNV-1a, 64 bits: a cache key, not a defence. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

static int by_name(const FTSENT **a, const FTSENT **b)
{
    return strcmp((*a)->fts_name, (*b)->fts_name);
}

/* The key of a directory tree: every entry's path, type, mode, owner, size,
 * change time and link target.  Any edit in the image (content, metadata,
 * a new or removed file) changes some ctime or size, as make and rsync
 * rely on; reading every byte of a large image at each start would cost
 * more than the build it saves. */
static int tree_key(const char *root, uint64_t *key, uint64_t *bytes, uint64_t *inodes, struct duet_err *err)
{
    char *paths[] = {(char *)root, NULL};
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, by_name);
    if (!fts)
        return duet_err_sys(err, "cannot read %s", root);
    uint64_t h = FNV_INIT;
    size_t rootlen = strlen(root);
    FTSENT *e;
    int rc = 0;
    while ((e = fts_read(fts))) {
        if (e->fts_info == FTS_DP)
            continue;
        if (e->fts_info == FTS_DNR || e->fts_info == FTS_ERR || e->fts_info == FTS_NS) {
            errno = e->fts_errno;
            rc = duet_err_sys(err, "cannot read %s", e->fts_path);
            break;
        }
        const struct stat *st = e->fts_statp;
        h = fnv(h, e->fts_path + rootlen, strlen(e->fts_path + rootlen) + 1);
        uint64_t fields[] = {st->st_mode, st->st_uid, st->st_gid, (uint64_t)st->st_size, (uint64_t)st->st_ctim.tv_sec,
                             (uint64_t)st->st_ctim.tv_nsec, (uint64_t)st->st_mtim.tv_sec,
                             (uint64_t)st->st_mtim.tv_nsec, st->st_rdev};
        h = fnv(h, fields, sizeof(fields));
        if (S_ISLNK(st->st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(e->fts_accpath, target, sizeof(target));
            if (n > 0)
                h = fnv(h, target, (size_t)n);
        }
        *bytes += (uint64_t)st->st_blocks * 512;
        (*inodes)++;
    }
    fts_close(fts);
    *key = h;
    return rc;
}

static int ensure_dir(const char *dir, struct duet_err *err)
{
    if (mkdir(dir, 0711) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", dir);
    return 0;
}

int vm_rootfs_disk(const char *cache_dir, const char *rootfs, uint64_t size, const char *what, char *out, size_t len,
                   struct duet_err *err)
{
    if (rootfs_check_dir(rootfs, what, err) < 0)
        return -1;
    uint64_t key = 0, bytes = 0, inodes = 0;
    if (tree_key(rootfs, &key, &bytes, &inodes, err) < 0)
        return duet_err_prefix(err, "%s", what);
    if (ensure_dir(cache_dir, err) < 0)
        return -1;
    /* The filesystem: the image's files and their metadata, and 256 MiB of
     * room to write, never more than resources.disk (whose rest the guest
     * sees as unused disk).  A filesystem sized to a large disk boots far
     * slower under emulation (its guest kernel initialises the whole
     * thing), and a rootfs VM's writes are its scratch space. */
    uint64_t need = bytes / 4 * 5 + inodes * 256 + (UINT64_C(32) << 20);
    uint64_t fs = bytes / 4 * 5 + inodes * 256 + (UINT64_C(256) << 20);
    if (fs > size)
        fs = size;
    if (size < need)
        return duet_err_set(err, ENOSPC,
                            "%s: image.rootfs %s needs a disk of at least %" PRIu64 " MiB and resources.disk gives it %" PRIu64
                            " MiB; raise resources.disk to %" PRIu64 "Mi or more",
                            what, rootfs, need >> 20, size >> 20, (need >> 20) + 1);
    snprintf(out, len, "%s/rootfs-%016" PRIx64 "-%" PRIu64 ".ext4", cache_dir, key, fs);
    if (access(out, R_OK) == 0)
        return 0;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)gettid());
    /* The file is sparse, so unused room costs nothing on the host. */
    char kib[32], inode_count[32];
    snprintf(kib, sizeof(kib), "%" PRIu64 "k", fs >> 10);
    snprintf(inode_count, sizeof(inode_count), "%" PRIu64, inodes * 2 + 16384);
    char *const argv[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-N", inode_count,
                          "-L", "duet-root", "-d", (char *)rootfs, tmp, kib, NULL};
    if (duet_run_tool(argv, err) < 0) {
        unlink(tmp);
        return duet_err_prefix(err, "%s: cannot build a disk from image.rootfs %s", what, rootfs);
    }
    if (rename(tmp, out) < 0) {
        unlink(tmp);
        return duet_err_sys(err, "%s: cannot store %s", what, out);
    }
    return 0;
}

/* ---- cpio (newc), the initramfs format -------------------------------- */

struct cpio {
    FILE *f;
    unsigned ino;
    bool failed;
};

static void cpio_pad(struct cpio *c)
{
    long pos = ftell(c->f);
    while (pos >= 0 && pos % 4) {
        fputc(0, c->f);
        pos++;
    }
}

static void cpio_entry(struct cpio *c, const char *name, unsigned mode, const void *data, size_t size)
{
    size_t namesize = strlen(name) + 1;
    if (fprintf(c->f, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", ++c->ino, mode, 0, 0,
                1, 0, size, 0, 0, 0, 0, namesize, 0) < 0)
        c->failed = true;
    fwrite(name, 1, namesize, c->f);
    cpio_pad(c);
    if (size && fwrite(data, 1, size, c->f) != size)
        c->failed = true;
    cpio_pad(c);
}

static void cpio_trailer(struct cpio *c)
{
    cpio_entry(c, "TRAILER!!!", 0, NULL, 0);
}

static char *slurp(const char *path, size_t *len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return NULL;
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        abort();
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0) {
            free(buf);
            return NULL;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

/* ---- kernel modules --------------------------------------------------- */

int vm_kernel_modules_dir(const char *kernel, char *out, size_t len, struct duet_err *err)
{
    char real[PATH_MAX];
    if (!realpath(kernel, real))
        return duet_err_sys(err, "kernel %s cannot be used", kernel);
    const char *base = strrchr(real, '/') + 1;
    const char *dash = strchr(base, '-');
    if (strncmp(base, "vmlinu", 6) != 0 || !dash || !dash[1])
        return duet_err_set(err, EINVAL,
                            "kernel %s: its file name does not say its version (vmlinuz-VERSION), so its modules "
                            "cannot be found; name it as /boot does",
                            kernel);
    const char *ver = dash + 1;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", real);
    char *boot = dirname(dir);                 /* .../boot */
    char top[PATH_MAX];
    snprintf(top, sizeof(top), "%s", boot);
    char *prefix = dirname(top);               /* ... */
    snprintf(out, len, "%s/lib/modules/%s", strcmp(prefix, "/") == 0 ? "" : prefix, ver);
    struct stat st;
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    char beside[PATH_MAX];
    snprintf(beside, sizeof(beside), "%s", out);
    snprintf(out, len, "/lib/modules/%s", ver);
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    return duet_err_set(err, ENOENT,
                        "kernel %s: its modules are neither in %s nor in %s; install the kernel's package or put "
                        "its lib/modules beside its boot directory",
                        kernel, beside, out);
}

struct modset {
    char dir[PATH_MAX];
    struct strmap files;              /* module name -> path (malloc'd) */
    char *builtin;                    /* modules.builtin, as read */
    char **order;                     /* names, load order */
    size_t n, cap;
    struct strmap done;
};

static void modname(const char *file, char *out, size_t len)
{
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    size_t n = strcspn(b, ".");
    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = b[i] == '-' ? '_' : b[i];
    out[n] = '\0';
}

static bool is_builtin(struct modset *m, const char *name)
{
    if (!m->builtin)
        return false;
    for (const char *p = m->builtin; *p;) {
        const char *nl = strchrnul(p, '\n');
        char line[256], n[64];
        snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
        modname(line, n, sizeof(n));
        if (strcmp(n, name) == 0)
            return true;
        p = *nl ? nl + 1 : nl;
    }
    return false;
}

/* Adds name and, first, what it depends on ("depends=" in its .modinfo). */
static int mod_add(struct modset *m, const char *name, int depth, struct duet_err *err)
{
    if (strmap_get(&m->done, name) || depth > 32)
        return 0;
    if (is_builtin(m, name))
        return 0;
    const char *path = strmap_get(&m->files, name);
    if (!path)
        return duet_err_set(err, ENOENT, "module %s is in neither %s nor built into the kernel", name, m->dir);
    size_t len;
    _cleanup_free_ char *data = slurp(path, &len);
    if (!data)
        return duet_err_sys(err, "cannot read %s", path);
    static const char key[] = "depends=";
    for (size_t i = 0; i + sizeof(key) < len; i++) {
        if (memcmp(data + i, key, sizeof(key) - 1) != 0 || (i > 0 && data[i - 1] != '\0'))
            continue;
        char deps[512];
        snprintf(deps, sizeof(deps), "%s", data + i + sizeof(key) - 1);
        for (char *save, *d = strtok_r(deps, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
            char n[64];
            modname(d, n, sizeof(n));
            if (mod_add(m, n, depth + 1, err) < 0)
                return -1;
        }
        break;
    }
    char *keep = strdup(name);
    GROW(m->order, m->cap, m->n + 1);
    m->order[m->n++] = keep;
    strmap_put(&m->done, keep, keep);
    return 0;
}

static void modset_free(struct modset *m)
{
    for (size_t i = 0; i < m->files.cap; i++)
        if (m->files.slots[i].key) {
            free((void *)m->files.slots[i].key);
            free(m->files.slots[i].val);
        }
    strmap_free(&m->files);
    strmap_free(&m->done);
    for (size_t i = 0; i < m->n; i++)
        free(m->order[i]);
    free(m->order);
    free(m->builtin);
}

static int modset_scan(struct modset *m, struct duet_err *err)
{
    char kdir[PATH_MAX + 16];
    snprintf(kdir, sizeof(kdir), "%s/kernel", m->dir);
    char *paths[] = {kdir, NULL};
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    if (!fts)
        return duet_err_sys(err, "cannot read %s", kdir);
    FTSENT *e;
    while ((e = fts_read(fts))) {
        size_t n = strlen(e->fts_name);
        if (e->fts_info != FTS_F || n < 4 || strcmp(e->fts_name + n - 3, ".ko") != 0)
            continue;
        char name[64];
        modname(e->fts_name, name, sizeof(name));
        if (!strmap_get(&m->files, name))
            strmap_put(&m->files, strdup(name), strdup(e->fts_path));
    }
    fts_close(fts);
    char b[PATH_MAX + 32];
    snprintf(b, sizeof(b), "%s/modules.builtin", m->dir);
    size_t len;
    m->builtin = slurp(b, &len);
    return 0;
}

bool vm_kernel_has_virtiofs(const char *kernel)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    struct duet_err err;
    if (vm_kernel_modules_dir(kernel, dir, sizeof(dir), &err) < 0)
        return false;
    /* Where every kernel tree since 5.4 keeps it (fuse, which it needs,
     * beside it): a stat, where scanning the whole tree as the initramfs
     * does costs tens of milliseconds at every daemon start. */
    snprintf(path, sizeof(path), "%s/kernel/fs/fuse/virtiofs.ko", dir);
    if (access(path, R_OK) == 0)
        return true;
    snprintf(path, sizeof(path), "%s/modules.builtin", dir);
    size_t len;
    _cleanup_free_ char *builtin = slurp(path, &len);
    return builtin && strstr(builtin, "fs/fuse/virtiofs.ko") != NULL;
}

int vm_guest_initramfs(const char *cache_dir, const char *kernel, const char *vminit, const char *what, char *out,
                       size_t len, struct duet_err *err)
{
    struct stat kst, ist;
    if (stat(kernel, &kst) < 0)
        return duet_err_sys(err, "%s: kernel %s cannot be used", what, kernel);
    if (stat(vminit, &ist) < 0)
        return duet_err_sys(err, "%s: duet's guest init %s is missing (make builds it)", what, vminit);
    char real[PATH_MAX];
    if (!realpath(kernel, real))
        return duet_err_sys(err, "%s: kernel %s cannot be used", what, kernel);
    uint64_t key = fnv(FNV_INIT, real, strlen(real));
    /* The last field is the module list's version: a list that grows
     * (virtiofs, virtio_console, virtio_balloon) must not find an initramfs built without
     * it. */
    uint64_t fields[] = {(uint64_t)kst.st_size,    (uint64_t)kst.st_mtim.tv_sec,  (uint64_t)ist.st_size,
                         (uint64_t)ist.st_mtim.tv_sec, (uint64_t)ist.st_mtim.tv_nsec, 4};
    key = fnv(key, fields, sizeof(fields));
    if (ensure_dir(cache_dir, err) < 0)
        return -1;
    snprintf(out, len, "%s/initrd-%016" PRIx64 ".cpio", cache_dir, key);
    if (access(out, R_OK) == 0)
        return 0;

    struct modset m = {0};
    strmap_init(&m.files);
    strmap_init(&m.done);
    if (vm_kernel_modules_dir(kernel, m.dir, sizeof(m.dir), err) < 0 || modset_scan(&m, err) < 0) {
        modset_free(&m);
        return duet_err_prefix(err, "%s", what);
    }
    /* The disk and its filesystem are required; the power button (a
     * graceful stop) is worth having but a kernel without it still runs
     * the workload, stopped by force after the grace period. */
    static const char *const needed[] = {"virtio_pci", "virtio_blk", "crc32c_generic", "ext4"};
    static const char *const wanted[] = {"button", "evdev", "virtio_net", "virtiofs", "virtio_console",
                                         "virtio_balloon"};
    for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
        if (mod_add(&m, needed[i], 0, err) < 0) {
            modset_free(&m);
            return duet_err_prefix(err, "%s: kernel %s cannot boot a rootfs image", what, kernel);
        }
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        struct duet_err ignored;
        mod_add(&m, wanted[i], 0, &ignored);
    }

    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)gettid());
    struct cpio c = {.f = fopen(tmp, "we")};
    if (!c.f) {
        modset_free(&m);
        return duet_err_sys(err, "%s: cannot write %s", what, tmp);
    }
    static const char *const dirs[] = {"dev", "proc", "sys", "duet", "duet/mod", "newroot"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        cpio_entry(&c, dirs[i], S_IFDIR | 0755, NULL, 0);
    size_t n;
    _cleanup_free_ char *init = slurp(vminit, &n);
    if (!init)
        c.failed = true;
    else
        cpio_entry(&c, "init", S_IFREG | 0755, init, n);
    char *list = NULL;
    size_t list_len = 0;
    FILE *lf = open_memstream(&list, &list_len);
    for (size_t i = 0; i < m.n; i++) {
        const char *path = strmap_get(&m.files, m.order[i]);
        _cleanup_free_ char *data = slurp(path, &n);
        char name[128];
        snprintf(name, sizeof(name), "duet/mod/%s.ko", m.order[i]);
        if (!data) {
            c.failed = true;
            continue;
        }
        cpio_entry(&c, name, S_IFREG | 0644, data, n);
        fprintf(lf, "%s.ko\n", m.order[i]);
    }
    fclose(lf);
    cpio_entry(&c, "duet/modules", S_IFREG | 0644, list, list_len);
    free(list);
    cpio_trailer(&c);
    modset_free(&m);
    if (fclose(c.f) != 0 || c.failed) {
        unlink(tmp);
        return duet_err_set(err, EIO, "%s: cannot write the guest initramfs %s", what, tmp);
    }
    if (rename(tmp, out) < 0) {
        unlink(tmp);
        return duet_err_sys(err, "%s: cannot store %s", what, out);
    }
    return 0;
}

static void kv(FILE *f, const char *key, const char *val)
{
    fwrite(key, 1, strlen(key) + 1, f);
    fwrite(val, 1, strlen(val) + 1, f);
}

int vm_workload_initrd(const char *base, const struct workload_spec *w, const struct rootfs_user *user,
                       const char *out, struct duet_err *err)
{
    char *spec = NULL;
    size_t spec_len = 0;
    FILE *s = open_memstream(&spec, &spec_len);
    for (size_t i = 0; i < w->n_command; i++)
        kv(s, "arg", w->command[i]);
    for (size_t i = 0; i < w->n_env; i++)
        fprintf(s, "env%c%s=%s%c", 0, w->env[i].key, w->env[i].value, 0);
    if (!wl_env_get(w, "PATH"))
        kv(s, "env", "PATH=" ROOTFS_DEFAULT_PATH);
    fprintf(s, "env%cHOSTNAME=%s%c", 0, w->name, 0);
    kv(s, "cwd", w->working_dir ? w->working_dir : "/");
    kv(s, "hostname", w->name);
    kv(s, "root", "/dev/vda");
    if (w->stop_signal)
        fprintf(s, "stopsignal%c%d%c", 0, w->stop_signal, 0);
    if (w->attach)
        kv(s, "attach", w->attach == WL_ATTACH_TTY ? "tty" : "pipes");
    /* Volume i is the virtiofs tag duet<i> (virtiofs.h): "TAG,ro|rw,TARGET" */
    for (size_t i = 0; i < w->n_volumes; i++)
        fprintf(s, "fs%c" VM_VIRTIOFS_TAG_PREFIX "%zu,%s,%s%c", 0, i, w->volumes[i].read_only ? "ro" : "rw",
                w->volumes[i].target, 0);
    fprintf(s, "uid%c%" PRIu32 "%c", 0, user->uid, 0);
    fprintf(s, "gid%c%" PRIu32 "%c", 0, user->gid, 0);
    for (int i = 0; i < user->n_groups; i++)
        fprintf(s, "group%c%" PRIu32 "%c", 0, user->groups[i], 0);
    for (size_t i = 0; i < w->n_secrets; i++) {
        const struct wl_secret *x = &w->secrets[i];
        if (x->env)
            continue;   /* in env above */
        fprintf(s, "secret%c%s:", 0, x->name);
        for (size_t k = 0; k < x->len; k++)
            fprintf(s, "%02x", (unsigned char)x->value[k]);
        fputc(0, s);
    }
    fclose(s);

    size_t blen;
    _cleanup_free_ char *b = slurp(base, &blen);
    if (!b) {
        free(spec);
        return duet_err_sys(err, "workload %s: cannot read the guest initramfs %s", w->name, base);
    }
    /* 0600: the spec may hold secrets (only QEMU, as root, reads it). */
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct cpio c = {.f = fd >= 0 && fchmod(fd, 0600) == 0 ? fdopen(fd, "we") : NULL, .ino = 1u << 20};
    if (!c.f) {
        if (fd >= 0)
            close(fd);
        explicit_bzero(spec, spec_len);
        free(spec);
        return duet_err_sys(err, "workload %s: cannot write %s", w->name, out);
    }
    if (fwrite(b, 1, blen, c.f) != blen)
        c.failed = true;
    cpio_entry(&c, "duet/spec", S_IFREG | 0600, spec, spec_len);
    cpio_trailer(&c);
    explicit_bzero(spec, spec_len);
    free(spec);
    if (fclose(c.f) != 0 || c.failed) {
        unlink(out);
        return duet_err_set(err, EIO, "workload %s: cannot write %s", w->name, out);
    }
    return 0;
}

/* ---- a faster kernel to boot ------------------------------------------ */

/* Does this ELF image carry the PVH entry note (Xen note 18), which lets
 * QEMU boot it directly? */
static bool elf_has_pvh_note(const char *buf, size_t len)
{
    if (len < 64 || memcmp(buf, "\x7f" "ELF\x02\x01", 6) != 0)
        return false;
    uint64_t phoff;
    uint16_t phentsize, phnum;
    memcpy(&phoff, buf + 32, 8);
    memcpy(&phentsize, buf + 54, 2);
    memcpy(&phnum, buf + 56, 2);
    for (uint16_t i = 0; i < phnum; i++) {
        uint64_t ph = phoff + (uint64_t)i * phentsize;
        if (ph + 56 > len)
            return false;
        uint32_t type;
        uint64_t off, size;
        memcpy(&type, buf + ph, 4);
        memcpy(&off, buf + ph + 8, 8);
        memcpy(&size, buf + ph + 32, 8);
        if (type != 4 /* PT_NOTE */ || off + size > len)
            continue;
        for (uint64_t p = off; p + 12 <= off + size;) {
            uint32_t namesz, descsz, ntype;
            memcpy(&namesz, buf + p, 4);
            memcpy(&descsz, buf + p + 4, 4);
            memcpy(&ntype, buf + p + 8, 4);
            if (namesz == 4 && p + 16 <= len && memcmp(buf + p + 12, "Xen", 4) == 0 && ntype == 18)
                return true;
            p += 12 + ((namesz + 3) & ~3u) + ((descsz + 3) & ~3u);
        }
    }
    return false;
}

int vm_kernel_uncompressed(const char *cache_dir, const char *kernel, char *out, size_t len, struct duet_err *err)
{
    snprintf(out, len, "%s", kernel);
    size_t klen;
    _cleanup_free_ char *k = slurp(kernel, &klen);
    if (!k)
        return duet_err_sys(err, "kernel %s cannot be read", kernel);
    /* A bzImage ("HdrS" at 0x202) with an xz payload; anything else is
     * booted as it is. */
    if (klen < 0x400 || memcmp(k + 0x202, "HdrS", 4) != 0)
        return 0;
    const char *xz = memmem(k + 0x200, klen - 0x200, "\xfd" "7zXZ\0", 6);
    if (!xz)
        return 0;
    struct stat st;
    char real[PATH_MAX];
    if (stat(kernel, &st) < 0 || !realpath(kernel, real))
        return 0;
    uint64_t key = fnv(FNV_INIT, real, strlen(real));
    uint64_t fields[] = {(uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec, (uint64_t)st.st_mtim.tv_nsec};
    key = fnv(key, fields, sizeof(fields));
    if (ensure_dir(cache_dir, err) < 0)
        return -1;
    char cached[PATH_MAX];
    snprintf(cached, sizeof(cached), "%s/vmlinux-%016" PRIx64, cache_dir, key);
    if (access(cached, R_OK) == 0) {
        snprintf(out, len, "%s", cached);
        return 0;
    }
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", cached, (int)gettid());
    _cleanup_close_ int in = open(kernel, O_RDONLY | O_CLOEXEC);
    _cleanup_close_ int outfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in < 0 || outfd < 0 || lseek(in, xz - k, SEEK_SET) < 0)
        return 0;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in, 0);
    posix_spawn_file_actions_adddup2(&fa, outfd, 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *const argv[] = {"xz", "-dc", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "xz", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc == 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    /* xz complains about the bytes after the payload; what counts is
     * whether an ELF kernel with a PVH entry came out. */
    size_t vlen = 0;
    _cleanup_free_ char *v = rc == 0 ? slurp(tmp, &vlen) : NULL;
    if (!v || !elf_has_pvh_note(v, vlen) || rename(tmp, cached) < 0) {
        unlink(tmp);
        return 0;
    }
    snprintf(out, len, "%s", cached);
    return 0;
}
