/*
 * exec_capture.h - a driver exec's outcome as the tests read it: its
 * status when it ended, and what was written to its output fds.
 */
#ifndef DUET_TEST_EXEC_CAPTURE_H
#define DUET_TEST_EXEC_CAPTURE_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct run {
    bool done;
    int status;
    int out, err;
};

static inline void run_exited(void *opaque, int status)
{
    struct run *r = opaque;
    r->done = true;
    r->status = status;
}

/* What was written to fd (malloc'd): up to its offset, which is where the
 * writes through a shared descriptor ended, whatever the file's size. */
static inline char *written(int fd)
{
    off_t n = lseek(fd, 0, SEEK_CUR);
    char *b = calloc(1, (size_t)n + 1);
    cr_assert_not_null(b);
    cr_assert_eq(pread(fd, b, (size_t)n, 0), n);
    return b;
}

#endif
