#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fts.h>
#include <ftw.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

extern char **environ;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int duet_remove_tree(const char *dir, struct duet_err *err)
{
    /* FTW_PHYS: never follow a symlink out of the tree; FTW_MOUNT: never
     * descend into a mount. */
    if (nftw(dir, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0 && errno != ENOENT)
        return duet_err_sys(err, "cannot remove %s", dir);
    return 0;
}

int duet_sealed_copy(int src, const char *path, const char *name, struct duet_err *err)
{
    struct stat st;
    if (fstat(src, &st) < 0)
        return duet_err_sys(err, "cannot read %s", path);
    if (!S_ISREG(st.st_mode))
        return duet_err_set(err, EINVAL, "%s is not a regular file", path);
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return duet_err_sys(err, "cannot make an in-memory copy of %s", path);
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0)
                errno = EIO;
            duet_err_sys(err, "cannot copy %s", path);
            close(fd);
            return -1;
        }
    }
    /* F_SEAL_FUTURE_WRITE, not F_SEAL_WRITE: both leave no way to write
     * the copy again (write(2) and a writable shared mapping are refused),
     * but F_SEAL_WRITE also waits for the kernel to drop every reference
     * it holds on the pages, and fails with EBUSY after ~150 ms on a busy
     * host (a page in another CPU's LRU batch or under migration).  Nobody
     * has this descriptor mapped, so there is nothing else for it to wait for. */
    if (fchmod(fd, 0555) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0) {
        duet_err_sys(err, "cannot seal the in-memory copy of %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

void duet_close_fds_except(const int *keep, size_t n)
{
    unsigned from = 3;
    for (;;) {
        /* The lowest kept fd at or above from: n is a handful. */
        unsigned next = ~0U;
        for (size_t i = 0; i < n; i++)
            if (keep[i] >= 0 && (unsigned)keep[i] >= from && (unsigned)keep[i] < next)
                next = (unsigned)keep[i];
        if (next == ~0U) {
            syscall(SYS_close_range, from, ~0U, 0);
            return;
        }
        if (next > from)
            syscall(SYS_close_range, from, next - 1, 0);
        from = next + 1;
    }
}

int duet_run_tool(char *const argv[], struct duet_err *err)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return duet_err_sys(err, "cannot run %s", argv[0]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        errno = rc;
        return duet_err_sys(err, "cannot run %s (is it installed? make deps installs it)", argv[0]);
    }
    /* Keep the tool's last words: its error message is the useful part. */
    char out[4096];
    size_t n = 0;
    for (;;) {
        char chunk[1024];
        ssize_t r = read(pfd[0], chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (n + (size_t)r >= sizeof(out)) {
            size_t keep = sizeof(out) / 2;
            memmove(out, out + n - (n > keep ? keep : n), n > keep ? keep : n);
            n = n > keep ? keep : n;
        }
        memcpy(out + n, chunk, (size_t)r < sizeof(out) - n - 1 ? (size_t)r : sizeof(out) - n - 1);
        n += (size_t)r < sizeof(out) - n - 1 ? (size_t)r : sizeof(out) - n - 1;
    }
    close(pfd[0]);
    out[n] = '\0';
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    /* one line: newlines become "; " */
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    for (char *p = out; *p; p++)
        if (*p == '\n')
            *p = ';';
    return duet_err_set(err, EIO, "%s failed: %s", argv[0], n ? out : "no message");
}

char *duet_read_fd(int fd, size_t max, size_t *len, const char *what, struct duet_err *err)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        abort();
    for (;;) {
        if (n == cap) {
            if (cap >= max + 1) {
                free(buf);
                duet_err_set(err, E2BIG, "%s is larger than %zu bytes", what, max);
                return NULL;
            }
            cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            buf = realloc(buf, cap + 1);
            if (!buf)
                abort();
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            duet_err_sys(err, "cannot read %s", what);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max) {
        free(buf);
        duet_err_set(err, E2BIG, "%s is larger than %zu bytes", what, max);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Copies [off, end) of src into dst at the same offsets. */
static int copy_range(int src, int dst, off_t off, off_t end)
{
    off_t in = off, out = off;
    while (in < end) {
        ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)(end - in), 0);
        if (n > 0)
            continue;
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP && errno != EINVAL)
            return -1;
        /* A filesystem copy_file_range cannot serve: by hand. */
        char buf[65536];
        while (in < end) {
            size_t want = (size_t)(end - in) < sizeof(buf) ? (size_t)(end - in) : sizeof(buf);
            ssize_t r = pread(src, buf, want, in);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return r < 0 ? -1 : 0;
            if (pwrite(dst, buf, (size_t)r, in) != r)
                return -1;
            in += r;
        }
    }
    return 0;
}

int duet_copy_sparse(int src, int dst, off_t size)
{
    if (ioctl(dst, FICLONE, src) == 0)
        return 0;
    if (ftruncate(dst, size) < 0)
        return -1;
    off_t off = 0;
    while (off < size) {
        off_t data = lseek(src, off, SEEK_DATA);
        if (data < 0)
            return errno == ENXIO ? 0 : -1;
        off_t hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0)
            return -1;
        if (copy_range(src, dst, data, hole) < 0)
            return -1;
        off = hole;
    }
    return 0;
}

int duet_copy_file(const char *src, const char *dst, const char *what, struct duet_err *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return duet_err_sys(err, "%s: cannot read %s", what, src);
    struct stat st;
    int out = -1;
    if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(in);
        return duet_err_set(err, EINVAL, "%s: %s is not a regular file", what, src);
    }
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        close(in);
        return duet_err_sys(err, "%s: cannot create %s", what, dst);
    }
    int rc = duet_copy_sparse(in, out, st.st_size) < 0 || fsync(out) < 0 ? -1 : 0;
    int e = errno;
    close(in);
    close(out);
    if (rc < 0) {
        unlink(dst);
        errno = e;
        return duet_err_sys(err, "%s: cannot copy %s to %s", what, src, dst);
    }
    return 0;
}

uint64_t duet_tree_allocated(const char *dir)
{
    char *paths[] = {(char *)dir, NULL};
    FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_NOCHDIR | FTS_XDEV, NULL);
    uint64_t total = 0;
    FTSENT *e;
    while (fts && (e = fts_read(fts)))
        if (e->fts_info == FTS_F && e->fts_statp)
            total += (uint64_t)e->fts_statp->st_blocks * 512;
    if (fts)
        fts_close(fts);
    return total;
}

int duet_fd_keep_high(int fd)
{
    if (fd < 0 || fd >= DUET_FD_HIGH)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, DUET_FD_HIGH);
    if (high < 0)
        return fd;
    close(fd);
    return high;
}
