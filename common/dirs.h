/*
 * dirs.h - mkdir -p for the two small inits (duet-init, duet-vminit),
 * header-only: they are static binaries of a file or two each.
 */
#ifndef DUET_DIRS_H
#define DUET_DIRS_H

#include <string.h>
#include <sys/stat.h>

/* Makes path and its parents, 0755; what exists (or cannot be made) is
 * left to the caller's chdir or open to report. */
static inline void duet_make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            mkdir(buf, 0755);
            *p = c;
            if (!c)
                break;
        }
    }
}

#endif
