/*
 * The VM backend across a daemon restart, and its failures: every refusal
 * names the thing and the fix, and leaves nothing behind.
 */
#include "vmtest.h"

static const char *const PAIR =
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: keeper}\nspec:\n"
    "  placement: vm\n"
    "  image: {rootfs: @ROOTFS@}\n"
    "  command: [/bin/sh, -c, 'trap \"exit 3\" TERM; echo ready; while :; do sleep 1; done']\n"
    "  resources: {memory: 128Mi}\n"
    "---\n"
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: quick}\nspec:\n"
    "  placement: vm\n"
    "  image: {rootfs: @ROOTFS@}\n"
    "  command: [/bin/sh, -c, 'echo quick; sleep 2; exit 4']\n"
    "  resources: {memory: 128Mi}\n";

struct handles {
    char keeper[DRIVER_HANDLE_MAX], quick[DRIVER_HANDLE_MAX];
};

/* The first "daemon": boots both, hands over their handles, and dies
 * without closing anything once keeper is up. */
static void first_daemon(const char *state, int fd)
{
    struct vt t = {0};
    vt_open(&t, state, VM_ACCEL_TCG);
    vt_load(&t, PAIR);
    static struct vt_exit xk, xq;
    struct driver_instance *k = vt_boot(&t, "keeper", &xk);
    struct driver_instance *q = vt_boot(&t, "quick", &xq);
    struct handles h;
    struct duet_err err;
    t.drv->handle(t.drv, k, h.keeper, &err);
    t.drv->handle(t.drv, q, h.quick, &err);
    bool up = vt_log_waits_for(&t, k, "ready", 120000);
    if (write(fd, &h, sizeof(h)) != sizeof(h) || !up)
        _exit(1);
    _exit(0);
}

static bool file_contains(const char *path, const char *needle, uint64_t ms)
{
    uint64_t until = vt_now() + ms;
    while (vt_now() < until) {
        char *s = vt_slurp(path);
        bool found = strstr(s, needle) != NULL;
        free(s);
        if (found)
            return true;
        usleep(100000);
    }
    return false;
}

Test(vm_recover, vms_outlive_the_daemon_and_are_reattached, .timeout = 300)
{
    char state[64] = "/tmp/duet-vm-XXXXXX";
    cr_assert_not_null(mkdtemp(state));
    /* both "daemons" on one libvirtd, when they go through one */
    vt_libvirtd_start();
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        close(p[0]);
        first_daemon(state, p[1]);
    }
    close(p[1]);
    struct handles h;
    cr_assert_eq(read(p[0], &h, sizeof(h)), (ssize_t)sizeof(h), "the first daemon reported its handles");
    close(p[0]);
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the first daemon booted both VMs");

    /* No daemon now.  quick ends by itself meanwhile; keeper keeps going. */
    char status[128];
    snprintf(status, sizeof(status), "%s/vm/instances/quick/status", state);
    cr_assert(file_contains(status, "exit 4", 120000), "quick ended while no daemon ran");
    cr_expect_gt(vt_processes_mentioning(state), 0, "keeper's QEMU still runs with no daemon");

    struct vt t = {0};
    vt_open(&t, state, VM_ACCEL_TCG);
    vt_load(&t, PAIR);
    struct vt_exit xk = {0}, xq = {0}, xbad = {0};
    struct driver_instance *k = NULL, *q = NULL, *bad = NULL;
    struct duet_err err = {0};
    cr_assert_eq(t.drv->recover(t.drv, vt_spec(&t, "keeper"), h.keeper, NULL, &k, vt_exited, &xk, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(t.drv->recover(t.drv, vt_spec(&t, "quick"), h.quick, NULL, &q, vt_exited, &xq, &err), 0, "%s", err.msg);
    cr_assert(vt_wait_exit(&t, &xq, 60000), "quick's exit, which happened while no daemon ran, is reported");
    cr_expect_eq(xq.code, 4, "with its status (got %d, signal %d)", xq.code, xq.sig);
    /* keeper's handle under another workload's name is refused: the
     * metadata names keeper. */
    cr_assert_eq(t.drv->recover(t.drv, vt_spec(&t, "quick"), h.keeper, NULL, &bad, vt_exited, &xbad, &err), 0, "%s",
                 err.msg);
    cr_assert(vt_wait_exit(&t, &xbad, 60000));
    struct driver_status ds;
    t.drv->inspect(t.drv, bad, &ds, &err);
    cr_expect_eq(ds.state, DRIVER_STATE_GONE, "a domain whose metadata names another workload is not adopted");
    t.drv->release(t.drv, bad);

    bool never = false;
    vt_run_until(&t, &never, 500);
    t.drv->inspect(t.drv, k, &ds, &err);
    cr_expect_eq(ds.state, DRIVER_STATE_RUNNING, "keeper is running, re-attached");
    cr_expect_eq(xk.count, 0);
    /* Re-attached for real: its stop goes through and its exit arrives. */
    vt_stop(&t, k, 60000);
    cr_assert(vt_wait_exit(&t, &xk, 20000), "keeper's exit arrives after re-attaching");
    cr_expect_eq(xk.code, 3, "got %d, signal %d", xk.code, xk.sig);
    vt_destroy(&t, k);
    vt_destroy(&t, q);
    vt_teardown(&t);
}

Test(vm_recover, a_malformed_handle_is_refused, .timeout = 60)
{
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    vt_load(&t, PAIR);
    struct driver_instance *inst = NULL;
    struct vt_exit x = {0};
    struct duet_err err = {0};
    static const char *const bad[] = {"", "1234", "../../etc/passwd", "'><domain>", "4f0c5d1e-aaaa-bbbb-cccc-dddddddddddd'"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(t.drv->recover(t.drv, vt_spec(&t, "keeper"), bad[i], NULL, &inst, vt_exited, &x, &err), -1, "%s",
                     bad[i]);
        cr_expect(strstr(err.msg, "not a domain UUID"), "%s", err.msg);
    }
    vt_teardown(&t);
}

/* create's refusals: each names the problem and the fix; nothing is left. */
static void expect_create_fails(struct vt *t, const char *name, const char *needle)
{
    struct driver_instance *inst = NULL;
    struct vt_wait w = {0};
    struct duet_err err = {0};
    cr_assert_eq(t->drv->create(t->drv, vt_spec(t, name), NULL, &inst, vt_done, &w, &err), 0, "%s", err.msg);
    cr_assert(vt_run_until(t, &w.done, 120000));
    cr_expect(w.failed, "create of %s must fail", name);
    cr_expect(strstr(w.err, needle), "%s: expected \"%s\" in: %s", name, needle, w.err);
    vt_destroy(t, inst);
}

Test(vm_failures, refusals_name_the_problem_and_leave_nothing, .timeout = 300)
{
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    char yaml[4096];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: nofs}\nspec:\n"
             "  placement: vm\n  image: {rootfs: /nonexistent/rootfs}\n  command: [/bin/true]\n"
             "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: nocmd}\nspec:\n"
             "  placement: vm\n  image: {rootfs: @ROOTFS@}\n  command: [/bin/no-such-program]\n"
             "  resources: {memory: 128Mi}\n"
             "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: huge}\nspec:\n"
             "  image: {kernel: @KERNEL@, initrd: @IMAGES@/test-initrd.cpio.gz}\n"
             "  resources: {memory: 4Ti}\n"
             "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: bare}\nspec:\n"
             "  image: {kernel: @KERNEL@}\n  resources: {memory: 128Mi}\n"
             "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: nodisk}\nspec:\n"
             "  image: {disk: /nonexistent/disk.qcow2}\n  resources: {memory: 128Mi}\n"
             "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: tiny}\nspec:\n"
             "  image: {kernel: @KERNEL@, initrd: @IMAGES@/test-initrd.cpio.gz}\n"
             "  resources: {memory: 16Mi}\n"
             "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: nobody}\nspec:\n"
             "  placement: vm\n  image: {rootfs: @ROOTFS@}\n  command: [/bin/true]\n  user: ghost\n"
             "  resources: {memory: 128Mi}\n"
             "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: cramped}\nspec:\n"
             "  placement: vm\n  image: {rootfs: @ROOTFS@}\n  command: [/bin/true]\n"
             "  resources: {memory: 128Mi, disk: 16Mi}\n"
             "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: bigdisk}\nspec:\n"
             "  image: {disk: @IMAGES@/bootable.img}\n  resources: {memory: 128Mi, disk: 16Mi}\n");
    vt_load(&t, yaml);
    expect_create_fails(&t, "nofs", "image.rootfs /nonexistent/rootfs cannot be used");
    expect_create_fails(&t, "nocmd", "is not an executable file in the rootfs");
    expect_create_fails(&t, "huge", "more than this host has available");
    expect_create_fails(&t, "bare", "add image.initrd");
    expect_create_fails(&t, "nodisk", "image.disk /nonexistent/disk.qcow2 cannot be read");
    expect_create_fails(&t, "tiny", "below 64Mi");
    expect_create_fails(&t, "nobody", "user \"ghost\" is not in");
    /* resources.disk below what the image itself takes cannot bound it */
    expect_create_fails(&t, "cramped", "needs a disk of at least");
    expect_create_fails(&t, "bigdisk", "resources.disk allows 16 MiB; raise resources.disk to at least");
    vt_teardown(&t);
}

/* A kernel that is not a kernel: libvirt's refusal comes back from start,
 * and destroy still leaves nothing. */
Test(vm_failures, an_unbootable_kernel_fails_start_and_destroy_cleans_up, .timeout = 300)
{
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    char junk[128];
    snprintf(junk, sizeof(junk), "%s/not-a-kernel", t.state);
    FILE *f = fopen(junk, "we");
    cr_assert_not_null(f);
    fputs("#!/bin/sh\necho this is no kernel\n", f);
    fclose(f);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: junk}\nspec:\n"
             "  image: {kernel: %s, initrd: @IMAGES@/test-initrd.cpio.gz}\n  resources: {memory: 128Mi}\n",
             junk);
    vt_load(&t, yaml);
    struct driver_instance *inst = NULL;
    struct vt_wait w = {0};
    struct vt_exit x = {0};
    struct duet_err err = {0};
    cr_assert_eq(t.drv->create(t.drv, vt_spec(&t, "junk"), NULL, &inst, vt_done, &w, &err), 0, "%s", err.msg);
    cr_assert(vt_run_until(&t, &w.done, 120000));
    cr_assert(!w.failed, "%s", w.err);
    cr_assert_eq(t.drv->start(t.drv, inst, vt_start_done, vt_exited, &x, &err), 0, "%s", err.msg);
    cr_assert(vt_run_until(&t, &x.started.done, 120000));
    cr_expect(x.started.failed, "a file that is not a kernel does not start");
    cr_expect(strstr(x.started.err, "VM junk: libvirt could not start it"), "%s", x.started.err);
    vt_destroy(&t, inst);
    unlink(junk);
    vt_teardown(&t);
}

/* With libvirt named and not answering, the error says how to start it. */
Test(vm_failures, unreachable_libvirt_says_how_to_start_it, .timeout = 60)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char state[64] = "/tmp/duet-vm-XXXXXX";
    cr_assert_not_null(mkdtemp(state));
    struct vm_driver_options o = {.uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock",
                                  .vminit = getenv("DUET_VMINIT"), .accel = VM_ACCEL_TCG};
    struct driver *drv = vm_driver_new(&o);
    struct duet_err err = {0};
    cr_assert_eq(drv->open(drv, &loop, state, &err), 0, "%s", err.msg);
    struct manifest_set *s = manifest_set_new();
    char y[512];
    snprintf(y, sizeof(y), "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: lonely}\nspec:\n"
                           "  image: {kernel: %s, initrd: %s/test-initrd.cpio.gz}\n  resources: {memory: 128Mi}\n",
             getenv("DUET_GUEST_KERNEL"), getenv("DUET_IMAGES"));
    manifest_set_load_buffer(s, "l.yaml", y, strlen(y));
    manifest_set_validate(s);
    cr_assert(manifest_set_ok(s));
    struct driver_instance *inst = NULL;
    struct vt_wait w = {0};
    cr_assert_eq(drv->create(drv, manifest_set_find(s, "lonely"), NULL, &inst, vt_done, &w, &err), 0, "%s", err.msg);
    struct vt t = {.drv = drv};
    t.loop = loop;   /* vt_run_until needs only the loop */
    (void)t;
    uint64_t until = vt_now() + 30000;
    while (!w.done && vt_now() < until)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert(w.failed);
    cr_expect(strstr(w.err, "libvirt does not answer at qemu+unix:///system"), "%s", w.err);
    cr_expect(strstr(w.err, "libvirtd -d"), "the fix is named: %s", w.err);
    drv->release(drv, inst);
    vm_driver_free(drv);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_expect_eq(uv_loop_close(&loop), 0);
    manifest_set_free(s);
    nftw(state, vt_rm, 16, FTW_DEPTH | FTW_PHYS);
    vt_leak_check();
}

/* accel=auto: KVM where it runs guests, else emulation; with KVM that runs
 * a probe but hangs a whole guest (nested hosts; DUET_VM_TEST_KVM=1 keeps
 * /dev/kvm for this, see no_kvm.c), a silent KVM guest is restarted under
 * emulation.  Either way the workload runs and its status comes back. */
Test(vm_failures, auto_acceleration_falls_back_when_kvm_hangs, .timeout = 300)
{
    struct vt t;
    vt_setup(&t, VM_ACCEL_AUTO);
    vt_load(&t, "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: auto}\nspec:\n"
                "  placement: vm\n  image: {rootfs: @ROOTFS@}\n  command: [/bin/sh, -c, 'echo ran; exit 9']\n"
                "  resources: {memory: 128Mi}\n");
    struct vt_exit x = {0};
    struct driver_instance *inst = vt_boot(&t, "auto", &x);
    cr_assert(vt_wait_exit(&t, &x, 120000));
    cr_expect_eq(x.code, 9, "got %d, signal %d", x.code, x.sig);
    char *log = vt_log(&t, inst);
    cr_expect(strstr(log, "ran"), "%s", log);
    free(log);
    cr_log_info("accel=auto ended on %s", vm_driver_uses_kvm(t.drv) ? "kvm" : "emulation");
    vt_destroy(&t, inst);
    vt_teardown(&t);
}
