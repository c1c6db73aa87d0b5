/* Cgroup layout detection against this host's real hierarchy, and against
 * directories that are not cgroup mounts. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "backends/container/cgroup.h"
#include "helpers.h"

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

/* cgroup v2 for real on any host: a cgroup2 hierarchy can always be
 * mounted (on v1 and hybrid hosts it offers no controllers, which is
 * itself worth testing: no limits still work, a limit is refused with its
 * reason).  The unified hierarchy is the same wherever it is mounted. */
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* A child that counts as fast as it can in memory shared with the test. */
static pid_t counter_child(volatile unsigned long **count)
{
    *count = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(*count, MAP_FAILED);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0)
        for (;;)
            (**count)++;
    return child;
}

/* Frozen, the child counts no more; thawed, it goes on; destroyed while
 * frozen, it is killed all the same. */
static void freeze_thaw_destroy(const struct cgroup_layout *l, const char *name)
{
    struct duet_err err = {0};
    volatile unsigned long *count;
    pid_t child = counter_child(&count);
    cr_assert_eq(cgroup_attach(l, name, child, &err), 0, "%s", err.msg);
    cr_assert_eq(cgroup_freeze(l, name, true, &err), 0, "%s", err.msg);
    unsigned long a = *count;
    usleep(200000);
    cr_expect_eq(*count, a, "a frozen process went on counting");
    cr_assert_eq(cgroup_freeze(l, name, false, &err), 0, "%s", err.msg);
    usleep(100000);
    cr_expect_gt(*count, a, "a thawed process did not go on");
    cr_assert_eq(cgroup_freeze(l, name, true, &err), 0, "%s", err.msg);
    cr_assert_eq(cgroup_destroy(l, name, &err), 0, "%s", err.msg);
    int ws;
    cr_expect_eq(waitpid(child, &ws, 0), child);
    cr_expect(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "the frozen process was killed");
    munmap((void *)count, 4096);
}

Test(cgroup, this_hosts_groups_freeze_and_thaw, .timeout = 30)
{
    struct cgroup_layout l;
    struct duet_err err = {0};
    cr_assert_eq(cgroup_layout_detect("/sys/fs/cgroup", &l, &err), 0, "%s", err.msg);
    char name[64];
    snprintf(name, sizeof(name), "duet-test-%d/fz", (int)getpid());
    struct cgroup_limits none = {0};
    cr_assert_eq(cgroup_create(&l, name, &none, &err), 0, "%s", err.msg);
    freeze_thaw_destroy(&l, name);
    char parent[64];
    snprintf(parent, sizeof(parent), "duet-test-%d", (int)getpid());
    cgroup_remove_parent(&l, parent);
}

Test(cgroup, v2_create_attach_stats_destroy)
{
    cr_assert_eq(geteuid(), 0, "mounting cgroup2 needs root: run make test as root");
    char mnt[] = "/tmp/duet-cg2-XXXXXX";
    cr_assert_not_null(mkdtemp(mnt));
    cr_assert_eq(mount("none", mnt, "cgroup2", 0, NULL), 0, "mount cgroup2: %s", strerror(errno));
    struct cgroup_layout l = {.version = 2};
    snprintf(l.root, sizeof(l.root), "%s", mnt);
    struct duet_err err = {0};
    char name[64];
    snprintf(name, sizeof(name), "duet-test-%d/c1", (int)getpid());
    struct cgroup_limits none = {0};
    cr_assert_eq(cgroup_create(&l, name, &none, &err), 0, "%s", err.msg);
    cr_expect(cgroup_exists(&l, name));
    cr_expect_eq(cgroup_create(&l, name, &none, &err), -1, "an existing group is an error");

    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    cr_assert_eq(cgroup_attach(&l, name, child, &err), 0, "%s", err.msg);
    char procs[256], buf[64] = "";
    snprintf(procs, sizeof(procs), "%s/%s/cgroup.procs", mnt, name);
    FILE *f = fopen(procs, "r");
    cr_assert_not_null(f);
    cr_expect_not_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    cr_expect_eq(atoi(buf), child, "the process is in the group");
    struct cgroup_stats st;
    cr_expect_eq(cgroup_stats_read(&l, name, NULL, &st, &err), 0, "%s", err.msg);
    /* kept files: read twice through them, then let go */
    struct cgroup_files files;
    cgroup_files_init(&files);
    cr_expect_eq(cgroup_stats_read(&l, name, &files, &st, &err), 0, "%s", err.msg);
    int kept = 0;
    for (int i = 0; i < CGROUP_STAT_FILES; i++)
        kept += files.fd[i] >= 0;
    cr_expect_gt(kept, 0, "no file was kept open");
    cr_expect_eq(cgroup_stats_read(&l, name, &files, &st, &err), 0, "%s", err.msg);
    cgroup_files_close(&files);
    for (int i = 0; i < CGROUP_STAT_FILES; i++)
        cr_expect_eq(files.fd[i], -1);

    /* destroy kills what is inside (cgroup.kill where the kernel has it) */
    cr_assert_eq(cgroup_destroy(&l, name, &err), 0, "%s", err.msg);
    int ws;
    cr_expect_eq(waitpid(child, &ws, 0), child);
    cr_expect(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "the process was killed");
    cr_expect_not(cgroup_exists(&l, name));

    /* cgroup.freeze, which v2 has with no controller */
    cr_assert_eq(cgroup_create(&l, name, &none, &err), 0, "%s", err.msg);
    freeze_thaw_destroy(&l, name);

    /* a limit whose controller the hierarchy does not offer is refused */
    char avail[512] = "";
    char ctl[256];
    snprintf(ctl, sizeof(ctl), "%s/cgroup.controllers", mnt);
    f = fopen(ctl, "r");
    if (f) {
        if (!fgets(avail, sizeof(avail), f))
            avail[0] = '\0';
        fclose(f);
    }
    if (!strstr(avail, "pids")) {
        struct cgroup_limits pids = {.pids = 10};
        cr_expect_eq(cgroup_create(&l, name, &pids, &err), -1);
        cr_expect(strstr(err.msg, "the pids controller is not available"), "%s", err.msg);
        cr_expect_not(cgroup_exists(&l, name));
    } else {
        struct cgroup_limits pids = {.pids = 10};
        cr_assert_eq(cgroup_create(&l, name, &pids, &err), 0, "%s", err.msg);
        uint64_t v = 0;
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/%s", mnt, name);
        cr_expect_eq(cgroup_read_u64(dir, "pids.max", &v), 0);
        cr_expect_eq(v, 10);
        cr_expect_eq(cgroup_destroy(&l, name, &err), 0, "%s", err.msg);
    }
    char parent[128];
    snprintf(parent, sizeof(parent), "duet-test-%d", (int)getpid());
    cgroup_remove_parent(&l, parent);
    snprintf(procs, sizeof(procs), "%s/%s", mnt, parent);
    cr_expect_neq(access(procs, F_OK), 0, "the parent is removed when empty");
    cr_expect_eq(umount(mnt), 0);
    rmdir(mnt);
}

/* Both kernels' block I/O files, and what a file the kernel did not write
 * could hold: numbers too big, no numbers, no newline. */
Test(cgroup, block_io_counters_are_summed_over_devices)
{
    static const struct {
        const char *text;
        uint64_t r, w;
    } cases[] = {
        {"8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:0 Async 2\n8:0 Total 12288\n7:3 Read 100\n7:3 Write 200\n"
         "Total 12588\n",
         4196, 8392},
        {"8:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n7:3 rbytes=5 wbytes=7 rios=1 wios=1", 1005, 2007},
        {"Read\n \nRead Read Read\n8:0 rbytes=\n8:0 Write x\n", 0, 0},
    };
    char dir[64];
    tmp_root_make(dir, sizeof(dir), "duet-blk");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/stat", dir);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fputs(cases[i].text, f);
        fclose(f);
        uint64_t r = 1, w = 1;
        cr_assert(cgroup_read_blk(dir, "stat", &r, &w), "case %zu", i);
        cr_expect_eq(r, cases[i].r, "case %zu", i);
        cr_expect_eq(w, cases[i].w, "case %zu", i);
    }
    uint64_t r, w;
    cr_expect_not(cgroup_read_blk(dir, "absent", &r, &w));
    tmp_root_remove(dir);
}
