#include "fsutil.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

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
