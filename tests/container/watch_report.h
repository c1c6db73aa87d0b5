/*
 * watch_report.h - reads what escape_probe --watch took from a container's
 * new processes (EXE and FD lines) and fails the test on anything of the
 * host's: an fd on one of the host binaries named, or a descriptor beyond
 * stdio (but for ls's own directory, the one a command opens itself, and
 * the exec's own output sink, which a shell may keep at another number).
 */
#ifndef DUET_TEST_WATCH_REPORT_H
#define DUET_TEST_WATCH_REPORT_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* host: paths of host binaries the container must not reach (NULL-ended).
 * Modifies report (strtok); returns the EXE lines seen. */
static inline int watch_report_check(char *report, const char *const *host)
{
    struct stat st[8];
    size_t n = 0;
    for (; host[n] && n < 8; n++)
        cr_assert_eq(stat(host[n], &st[n]), 0, "%s", host[n]);
    int exes = 0;
    for (char *line = strtok(report, "\n"); line; line = strtok(NULL, "\n")) {
        unsigned long long dev, ino;
        int pid, fd;
        char target[256];
        if (sscanf(line, "EXE %d %llu:%llu", &pid, &dev, &ino) == 3) {
            exes++;
            for (size_t i = 0; i < n; i++)
                cr_expect(!(dev == st[i].st_dev && ino == st[i].st_ino),
                          "the container got an fd on the host's %s (pid %d)", host[i], pid);
        } else if (sscanf(line, "FD %d %d %255s", &pid, &fd, target) == 3) {
            /* A command may hold its own stdout and stderr at other
             * numbers too (busybox sh saves fd 1 at 10 around a builtin
             * with a redirection): the exec's output sink, the test's
             * file or the daemon's memfd, is the command's own. */
            char own[64];
            snprintf(own, sizeof(own), "/proc/%d/fd", pid);
            bool output = strncmp(target, "/tmp/duet-exec-out-", 19) == 0 ||
                          strncmp(target, "/memfd:duet-exec-", 17) == 0;
            cr_expect(fd < 3 || strcmp(target, own) == 0 || output, "the container opened %s, fd %d of pid %d",
                      target, fd, pid);
        }
    }
    return exes;
}

#endif
