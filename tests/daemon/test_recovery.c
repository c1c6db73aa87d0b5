/*
 * test_recovery.c - duetd killed with -9 while it applies a fleet of 50
 * containers, at several points: once restarted, all 50 run, none twice,
 * nothing is left over, and a second apply of the same files changes
 * nothing.
 */
#include "dtest.h"

#define FLEET 50

static const char *fleet(struct dd *d)
{
    char *doc = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&doc, &len);
    for (int i = 0; i < FLEET; i++)
        fprintf(m,
                "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: w%02d}\nspec:\n  placement: container\n"
                "  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n  resources: {memory: 8Mi, cpus: 0.1}\n",
                i, getenv("DUET_ROOTFS"));
    fclose(m);
    const char *path = dd_manifest(d, "fleet.yaml", "%s", doc);
    free(doc);
    return path;
}

/* Every one of the 50 running, each in its own cgroup with its own
 * processes, and exactly 50 container directories. */
static void expect_converged(struct dd *d)
{
    uint64_t deadline = dd_now_ms() + 90000;
    for (;;) {
        json_t *all = dd_get(d, "/v1/workloads");
        size_t running = 0, i;
        json_t *w;
        json_array_foreach(json_object_get(all, "workloads"), i, w)
            running += strcmp(json_string_value(json_object_get(w, "state")), "running") == 0;
        size_t n = json_array_size(json_object_get(all, "workloads"));
        json_decref(all);
        if (running == FLEET && n == FLEET)
            break;
        cr_assert(dd_now_ms() < deadline, "%zu of %zu workloads running after 90 s", running, n);
        usleep(100000);
    }
    char p[256];
    snprintf(p, sizeof(p), "%s/containers", d->state);
    cr_expect_eq(dd_count_dirs(p), FLEET, "container directories: not one per workload");
    cr_expect_eq(dd_count_dirs(d->cgdir), FLEET, "cgroups in %s: not one per workload", d->cgdir);
    /* duet-init and sleep in each: two processes per container, no more.
     * A container is running once its duet-init is, which forks the
     * workload a moment later: wait for the count to reach two per
     * container, and fail at once if it ever passes that. */
    int procs = dd_count_procs(d->cgdir);
    for (uint64_t until = dd_now_ms() + 5000; procs < 2 * FLEET && dd_now_ms() < until; usleep(20000)) {
        procs = dd_count_procs(d->cgdir);
        cr_assert_leq(procs, 2 * FLEET, "more than two processes per container in %s: %d", d->cgdir, procs);
    }
    cr_expect_eq(procs, 2 * FLEET, "processes in %s: %d", d->cgdir, procs);
}

static void kill_during_apply(unsigned delay_ms)
{
    struct dd d;
    dd_init(&d);
    const char *m = fleet(&d);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "DUET_SOCKET=%s %s apply -f %s >/dev/null 2>&1", d.sock, getenv("DUET_BIN"), m);
    FILE *apply = popen(cmd, "r");
    cr_assert(apply);
    usleep(delay_ms * 1000);
    dd_kill9(&d);
    pclose(apply);
    dd_start(&d);
    /* The apply may or may not have reached the store; applying again is
     * what a user would do, and must not duplicate anything. */
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    expect_converged(&d);
    /* Killed again once converging is done: still the same 50. */
    json_t *before = dd_get(&d, "/v1/workloads");
    dd_kill9(&d);
    dd_start(&d);
    expect_converged(&d);
    json_t *after = dd_get(&d, "/v1/workloads");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(json_object_get(after, "workloads"), 0),
                                                    "restarts")),
                 0, "a re-attach counted as a restart");
    json_decref(before);
    json_decref(after);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    cr_expect(!strstr(out, "created") && !strstr(out, "replaced"), "%s", out);
    free(out);
    dd_finish(&d);
}

Test(recovery, kill9_right_after_apply, .timeout = 240)
{
    kill_during_apply(30);
}

Test(recovery, kill9_while_creating, .timeout = 240)
{
    kill_during_apply(400);
}

Test(recovery, kill9_while_starting, .timeout = 240)
{
    kill_during_apply(1200);
}

/* A delete (and a replace) that kill -9 cut short is finished by the next
 * daemon, the stop's grace period counted again from its start: a
 * container that ignores SIGTERM is killed then, not left "deleting". */
Test(recovery, kill9_during_a_stop_is_finished, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(
        &d, "stubborn.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: stubborn}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [/bin/sh, -c, \"trap '' TERM; while :; do sleep 1; done\"]\n"
        "---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: replaced}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [/bin/sh, -c, \"trap '' TERM; while :; do sleep 1; done\"]\n",
        getenv("DUET_ROOTFS"), getenv("DUET_ROOTFS"));
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    const char *m2 = dd_manifest(
        &d, "replaced.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: replaced}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [/bin/sh, -c, \"trap '' TERM; echo second; while :; do sleep 1; done\"]\n",
        getenv("DUET_ROOTFS"));
    cr_assert_eq(dd_duet(&d, &out, "delete stubborn"), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m2), 0, "%s", out);
    free(out);
    usleep(300000);   /* both stopping: SIGTERM sent and ignored; the grace is 2 s */
    cr_expect(dd_field_is(&d, "stubborn", "state", "deleting"));
    dd_kill9(&d);
    sleep(3);         /* longer than the grace: only a new stop ends them now */
    uint64_t t0 = dd_now_ms();
    dd_start(&d);
    for (;;) {
        json_t *w = dd_workload(&d, "stubborn");
        json_decref(w);
        if (!w)
            break;
        cr_assert(dd_now_ms() - t0 < 20000, "stubborn is still there 20 s after the restart (%s)",
                  dd_field(&d, "stubborn", "state"));
        usleep(100000);
    }
    cr_assert(duet_logs_until(&d, "replaced", "second", 20000), "the replacement never started");
    dd_finish(&d);
}

/* QEMUs of this daemon's: guests, or with probes libvirt's capability
 * probes too. */
/* The daemon's guests (by their domain names, which hold its state dir's
 * hash, so a libvirt daemon's QEMUs count too), or with probes the
 * capability probes its embedded libvirt started. */
static int qemus(const char *state, bool probes)
{
    char guest[48], prefix[32];
    if (!duet_domain_prefix(state, prefix))
        return 0;
    snprintf(guest, sizeof(guest), "guest=%s", prefix);
    const char *const needles[] = {"qemu-system", probes ? state : guest, NULL};
    return processes_matching(needles);
}

/* duetd killed 0.3 to 1.3 s into a VM's start: the next daemon shows it
 * running only with its QEMU really there (an interrupted start is
 * destroyed and started again), and the guest boots. */
Test(recovery, kill9_during_a_vm_start, .timeout = 300)
{
    struct dd d;
    dd_init_vm(&d);
    const char *img = dd_env("DUET_IMAGES");
    const char *m = dd_manifest(
        &d, "vm.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: guest}\nspec:\n  role: infrastructure\n"
        "  isolation: strong\n  image:\n    kernel: %s/vmlinuz\n    initrd: %s/db-initrd.cpio.gz\n"
        "    cmdline: console=ttyS0\n  resources: {cpus: 1, memory: 192Mi}\n",
        img, img);
    static const unsigned delays[] = {300, 800, 1300};
    for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
        char *out;
        cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
        free(out);
        usleep(delays[i] * 1000);
        dd_kill9(&d);
        dd_start(&d);
        dd_wait_field(&d, "guest", "state", "running", 120000);
        /* Running must mean a QEMU, now and a few seconds on. */
        for (int k = 0; k < 6; k++) {
            if (dd_field_is(&d, "guest", "state", "running"))
                cr_expect_eq(qemus(d.state, false), 1, "kill after %u ms: guest is running with %d QEMUs",
                             delays[i], qemus(d.state, false));
            usleep(500000);
        }
        cr_expect(duet_logs_until(&d, "guest", "duet-guest: up", 60000), "kill after %u ms: the guest never booted",
                  delays[i]);
        cr_assert_eq(dd_duet(&d, &out, "delete guest --wait"), 0, "%s", out);
        free(out);
        cr_expect_eq(qemus(d.state, false), 0, "a QEMU outlived its delete");
        cr_expect_eq(machine_cgroups_left(d.state), 0, "libvirt's machine cgroups outlived the delete");
    }
    /* A capability probe a killed daemon left is ended by the next one. */
    cr_expect_eq(qemus(d.state, true), 0, "QEMU processes left for %s", d.state);
    dd_finish(&d);
}
