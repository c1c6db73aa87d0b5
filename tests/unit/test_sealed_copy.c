/*
 * The in-memory copy of duet-init that containers run: it holds the file's
 * bytes, and nothing that reaches it later (a container opening its
 * /proc/PID/exe for writing, say) can change them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"

static int copy_of(const char *content)
{
    char path[] = "/tmp/duet-sealed-XXXXXX";
    int src = mkstemp(path);
    cr_assert(src >= 0);
    unlink(path);
    cr_assert_eq(write(src, content, strlen(content)), (ssize_t)strlen(content));
    struct duet_err err = {0};
    int fd = duet_sealed_copy(src, path, "sealed-test", &err);
    cr_assert(fd >= 0, "%s", err.msg);
    /* The source may change after: the copy does not follow it. */
    cr_assert_eq(pwrite(src, "XXXX", 4, 0), 4);
    close(src);
    return fd;
}

Test(sealed_copy, holds_the_bytes_and_cannot_be_changed)
{
    int fd = copy_of("#!/bin/sh\necho hi\n");
    char buf[64] = {0};
    cr_assert_eq(pread(fd, buf, sizeof(buf) - 1, 0), 18);
    cr_expect_str_eq(buf, "#!/bin/sh\necho hi\n");
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0555);

    /* Every way to write it again, through this descriptor or a new one
     * opened as a container would open /proc/PID/exe. */
    cr_expect_eq(pwrite(fd, "evil", 4, 0), -1);
    cr_expect_eq(errno, EPERM);
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    int w = open(self, O_WRONLY | O_CLOEXEC);
    if (w >= 0) {   /* root may open a 0555 file for writing; the seal still says no */
        cr_expect_eq(write(w, "evil", 4), -1);
        cr_expect_eq(errno, EPERM);
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, w, 0);
        cr_expect_eq(m, MAP_FAILED, "a writable shared mapping of the copy was allowed");
        if (m != MAP_FAILED)
            munmap(m, 4096);
        close(w);
    }
    cr_expect_eq(ftruncate(fd, 0), -1, "the copy could be cut short");
    cr_expect_eq(fallocate(fd, 0, 0, 1 << 20), -1, "the copy could be grown");
    cr_expect_eq(fcntl(fd, F_ADD_SEALS, 0), -1, "the seals can still be changed");
    memset(buf, 0, sizeof(buf));
    cr_assert_eq(pread(fd, buf, sizeof(buf) - 1, 0), 18);
    cr_expect_str_eq(buf, "#!/bin/sh\necho hi\n");
    close(fd);
}

/* The seal must not depend on the host being idle: the kernel may still
 * hold pages of a fresh copy for a moment, and sealing must not fail then. */
Test(sealed_copy, seals_every_time_in_a_row)
{
    char big[256 * 1024];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 200; i++)
        close(copy_of(big));
}

Test(sealed_copy, refuses_what_is_not_a_file)
{
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert(dir >= 0);
    struct duet_err err = {0};
    cr_expect_eq(duet_sealed_copy(dir, "/tmp", "x", &err), -1);
    cr_expect(strstr(err.msg, "/tmp is not a regular file"), "%s", err.msg);
    close(dir);
}
