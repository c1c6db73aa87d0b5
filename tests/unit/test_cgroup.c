/* Cgroup layout detection against this host's real hierarchy, and against
 * directories that are not cgroup mounts. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup.h"

Test(cgroup, detects_this_host)
{
    struct cgroup_layout l;
    struct duet_err err;
    int rc = cgroup_layout_detect("/sys/fs/cgroup", &l, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    struct statfs sf;
    cr_assert_eq(statfs("/sys/fs/cgroup", &sf), 0);
    /* cgroup2 at the root means v2; anything else (tmpfs with v1 mounts) v1 */
    cr_expect_eq(l.version, sf.f_type == 0x63677270 ? 2 : 1);
    if (l.version == 1) {
        cr_expect_eq(access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0, l.memory);
        cr_expect_eq(l.hybrid, statfs("/sys/fs/cgroup/unified", &sf) == 0 && sf.f_type == 0x63677270);
    }
    cr_expect(l.memory && l.cpu && l.pids, "duet needs the memory, cpu and pids controllers");
}

Test(cgroup, not_a_cgroup_mount)
{
    char dir[] = "/tmp/duet-cg-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    struct cgroup_layout l;
    struct duet_err err;
    cr_expect_eq(cgroup_layout_detect(dir, &l, &err), -1);
    cr_expect(strstr(err.msg, "no cgroup hierarchy at"), "%s", err.msg);
    rmdir(dir);
}
