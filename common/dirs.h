/*
 * dirs.h - mkdir -p, header-only: the two small inits (duet-init,
 * duet-vminit) are static binaries of a file or two each, and duetd makes
 * its state and socket directories with the same code.
 */
#ifndef DUET_DIRS_H
#define DUET_DIRS_H

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* Makes path's parents (0755) and path itself (mode); what exists
 * already is fine.  -1 with errno at the first that cannot be made. */
static inline int duet_mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf)) {
        errno = n ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* The same, 0755, errors left to the caller's chdir or open to report
 * (a working directory the image lacks). */
static inline void duet_make_dirs(const char *path)
{
    (void)duet_mkdir_p(path, 0755);
}

#endif
