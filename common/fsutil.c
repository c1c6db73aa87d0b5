#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

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
    if (fchmod(fd, 0555) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
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
