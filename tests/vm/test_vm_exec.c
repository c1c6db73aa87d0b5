/*
 * exec into a rootfs VM through duet-vminit's agent, with a real guest:
 * one guest booted for the whole file, every case run against it.
 */
#include "vmtest.h"

#include <fcntl.h>
#include <sys/mman.h>

#include "backends/vm/agent.h"
#include "tests/common/exec_capture.h"

static const char *const EXEC_VM =
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: agent}\nspec:\n"
    "  placement: vm\n"
    "  image: {rootfs: @ROOTFS@}\n"
    "  command: [/bin/sh, -c, 'echo ready; while :; do sleep 1; done']\n"
    "  env: {GREETING: 'hi there'}\n"
    "  workingDir: /tmp\n"
    "  user: user\n"
    "  resources: {memory: 128Mi}\n"
    "---\n"
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: disky}\nspec:\n"
    "  placement: vm\n"
    "  image: {disk: @IMAGES@/bootable.img}\n"
    "  resources: {memory: 128Mi}\n"
    "---\n"
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: kboot}\nspec:\n"
    "  placement: vm\n"
    "  image: {kernel: @IMAGES@/vmlinuz, initrd: @IMAGES@/test-initrd.cpio.gz}\n"
    "  resources: {memory: 128Mi}\n";

static int memfd(void)
{
    int fd = memfd_create("err", MFD_CLOEXEC);
    cr_assert_geq(fd, 0);
    return fd;
}

static void start_cmd(struct vt *t, struct driver_instance *inst, const char *const *argv, uint64_t timeout_ms,
                      struct run *r)
{
    memset(r, 0, sizeof(*r));
    /* as the API's buffers are: a write past 1 MiB fails */
    r->out = memfd_create("out", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    cr_assert_geq(r->out, 0);
    cr_assert_eq(ftruncate(r->out, 1 << 20), 0);
    cr_assert_eq(fcntl(r->out, F_ADD_SEALS, F_SEAL_GROW), 0);
    r->err = memfd();
    struct duet_err err = {0};
    cr_assert_eq(t->drv->exec(t->drv, inst, argv, r->out, r->err, timeout_ms, run_exited, r, &err), 0, "%s",
                 err.msg);
}

/* The guest whose console a failure shows. */
static struct driver_instance *guest;

static void finish_cmd(struct vt *t, struct run *r, uint64_t ms)
{
    if (!vt_run_until(t, &r->done, ms)) {
        char *log = vt_log(t, guest);
        cr_assert_fail("the command ended within %llu ms; console: %s", (unsigned long long)ms, log);
    }
}

static void drop_cmd(struct run *r)
{
    close(r->out);
    close(r->err);
}

Test(vm_exec, commands_run_in_the_guest_as_the_workload, .timeout = 400)
{
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    vt_load(&t, EXEC_VM);
    char why[512];
    cr_assert(!t.drv->exec_supported(t.drv, vt_spec(&t, "kboot"), why, sizeof(why)), "a kernel+initrd has no agent");
    cr_assert(strstr(why, "kernel and initrd") && strstr(why, "tcp"), "the reason names the cause and a way out: %s",
              why);
    /* a disk image may run the QEMU guest agent: its exec says when not */
    cr_assert(t.drv->exec_supported(t.drv, vt_spec(&t, "disky"), why, sizeof(why)));
    cr_assert(t.drv->exec_supported(t.drv, vt_spec(&t, "agent"), why, sizeof(why)));

    struct vt_exit x = {0};
    struct driver_instance *inst = vt_boot(&t, "agent", &x);
    guest = inst;
    cr_assert(vt_log_waits_for(&t, inst, "ready", 120000), "the guest ran its command");

    /* The spec's user, environment and working directory; the status as
     * the shell gives it; stdout and stderr apart. */
    struct run r;
    const char *const who[] = {"/bin/sh", "-c", "echo uid=$(id -u) cwd=$(pwd) greeting=$GREETING; echo oops >&2; exit 7",
                               NULL};
    start_cmd(&t, inst, who, 0, &r);
    finish_cmd(&t, &r, 60000);
    char *out = written(r.out), *errs = written(r.err);
    cr_assert_eq(r.status, 7, "status %d, stderr %s", r.status, errs);
    cr_assert(strstr(out, "uid=1000 cwd=/tmp greeting=hi there"), "stdout: %s", out);
    cr_assert_str_eq(errs, "oops\n");
    free(out);
    free(errs);
    drop_cmd(&r);

    /* Several at once, each answered on its own. */
    struct run many[4];
    char script[4][64];
    for (int i = 0; i < 4; i++) {
        snprintf(script[i], sizeof(script[i]), "sleep 0.%d; echo number %d", 4 - i, i);
        const char *const argv[] = {"/bin/sh", "-c", script[i], NULL};
        start_cmd(&t, inst, argv, 0, &many[i]);
    }
    for (int i = 0; i < 4; i++) {
        finish_cmd(&t, &many[i], 60000);
        char want[32];
        snprintf(want, sizeof(want), "number %d\n", i);
        out = written(many[i].out);
        cr_assert_str_eq(out, want);
        cr_assert_eq(many[i].status, 0);
        free(out);
        drop_cmd(&many[i]);
    }

    /* A program that is not there, and a signal's status. */
    const char *const missing[] = {"no-such-program", NULL};
    start_cmd(&t, inst, missing, 0, &r);
    finish_cmd(&t, &r, 60000);
    errs = written(r.err);
    cr_assert_eq(r.status, 127);
    cr_assert(strstr(errs, "cannot run no-such-program"), "stderr: %s", errs);
    free(errs);
    drop_cmd(&r);
    const char *const killed[] = {"/bin/sh", "-c", "kill -TERM $$", NULL};
    start_cmd(&t, inst, killed, 0, &r);
    finish_cmd(&t, &r, 60000);
    cr_assert_eq(r.status, 128 + SIGTERM);
    drop_cmd(&r);

    /* Hostile: 1 MiB of arguments (sixteen of 64 KiB) goes through; one
     * argument past the kernel's 128 KiB is the guest's E2BIG, reported. */
    char *big[21];
    big[0] = "/bin/sh";
    big[1] = "-c";
    big[2] = "echo $# ${#1}";
    big[3] = "sh";
    for (int i = 0; i < 16; i++) {
        big[4 + i] = malloc(65536);
        memset(big[4 + i], 'a' + i, 65535);
        big[4 + i][65535] = '\0';
    }
    big[20] = NULL;
    start_cmd(&t, inst, (const char *const *)big, 0, &r);
    finish_cmd(&t, &r, 60000);
    out = written(r.out);
    cr_assert_str_eq(out, "16 65535\n");
    cr_assert_eq(r.status, 0);
    free(out);
    drop_cmd(&r);
    for (int i = 0; i < 16; i++)
        free(big[4 + i]);
    char *huge = malloc(300000);
    memset(huge, 'z', 299999);
    huge[299999] = '\0';
    const char *const toolong[] = {"/bin/echo", huge, NULL};
    start_cmd(&t, inst, toolong, 0, &r);
    finish_cmd(&t, &r, 60000);
    errs = written(r.err);
    cr_assert_eq(r.status, 127);
    cr_assert(strstr(errs, "too long"), "stderr: %s", errs);
    free(errs);
    free(huge);
    drop_cmd(&r);
    char *over = malloc((3 << 20) + 1);
    memset(over, 'q', 3 << 20);
    over[3 << 20] = '\0';
    const char *const toobig[] = {"/bin/echo", over, NULL};
    struct duet_err err = {0};
    cr_assert_eq(t.drv->exec(t.drv, inst, toobig, 1, 2, 0, run_exited, &r, &err), -1);
    cr_assert(strstr(err.msg, "2 MiB"), "%s", err.msg);
    free(over);

    /* A command that never ends, and one that prints without end: both
     * end at their timeout with everything they started, and meanwhile
     * another command is answered. */
    struct run forever, flood, quick;
    const char *const sleeper[] = {"/bin/sh", "-c", "sleep 1000 & sleep 1000", NULL};
    const char *const yes[] = {"/bin/sh", "-c", "while :; do echo yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy; done", NULL};
    const char *const hello[] = {"/bin/echo", "still here", NULL};
    uint64_t t0 = vt_now();
    start_cmd(&t, inst, sleeper, 3000, &forever);
    start_cmd(&t, inst, yes, 3000, &flood);
    start_cmd(&t, inst, hello, 0, &quick);
    finish_cmd(&t, &quick, 60000);
    out = written(quick.out);
    cr_assert_str_eq(out, "still here\n");
    free(out);
    drop_cmd(&quick);
    finish_cmd(&t, &forever, 30000);
    finish_cmd(&t, &flood, 30000);
    cr_assert_eq(forever.status, 137);
    cr_assert_eq(flood.status, 137);
    cr_assert_lt(vt_now() - t0, 3000 + VM_AGENT_KILL_GRACE_MS + 5000);
    cr_assert_gt(lseek(flood.out, 0, SEEK_CUR), 4096, "the flood's output came through");
    drop_cmd(&forever);
    drop_cmd(&flood);
    const char *const ps[] = {"/bin/sh", "-c", "ps -o comm | grep -c '^sleep' || true", NULL};
    start_cmd(&t, inst, ps, 0, &r);
    finish_cmd(&t, &r, 60000);
    out = written(r.out);
    /* the workload's own sleep 1 may be in the list, never two more */
    cr_assert_leq(atoi(out), 1, "what the timed-out command started is gone: %s", out);
    free(out);
    drop_cmd(&r);

    /* The VM goes: a command still running ends with the reason. */
    const char *const last[] = {"/bin/sleep", "1000", NULL};
    start_cmd(&t, inst, last, 0, &r);
    vt_destroy(&t, inst);
    cr_assert(vt_run_until(&t, &r.done, 30000));
    errs = written(r.err);
    cr_assert_eq(r.status, -1);
    cr_assert(strstr(errs, "duet: VM agent:"), "stderr: %s", errs);
    free(errs);
    drop_cmd(&r);
    vt_teardown(&t);
}
