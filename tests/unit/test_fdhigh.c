/*
 * Descriptors duetd keeps go above FD_SETSIZE's reach (common/fsutil.h):
 * a library that waits with select() aborts on one past 1023, and a fleet
 * of 500 containers keeps thousands.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <unistd.h>

#include "common/fsutil.h"

Test(fdhigh, a_kept_descriptor_moves_above_the_select_range_and_stays_cloexec)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur <= DUET_FD_HIGH && rl.rlim_max > DUET_FD_HIGH) {
        rl.rlim_cur = rl.rlim_max;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    cr_assert_gt(rl.rlim_cur, DUET_FD_HIGH, "this test needs a descriptor limit above %d", DUET_FD_HIGH);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert_lt(fd, FD_SETSIZE);
    int high = duet_fd_keep_high(fd);
    cr_expect_geq(high, DUET_FD_HIGH);
    cr_expect_geq(high, FD_SETSIZE);
    cr_expect(fcntl(fd, F_GETFD) < 0, "the low descriptor was not given back");
    cr_expect(fcntl(high, F_GETFD) & FD_CLOEXEC);
    char b;
    cr_expect_eq(read(high, &b, 1), 0, "it still reads the same file");
    /* one already high, and none, stay as they are */
    cr_expect_eq(duet_fd_keep_high(high), high);
    cr_expect_eq(duet_fd_keep_high(-1), -1);
    close(high);
}
