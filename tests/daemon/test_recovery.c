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
    /* duet-init and sleep in each: two processes per container, no more */
    cr_expect_eq(dd_count_procs(d->cgdir), 2 * FLEET, "processes in %s", d->cgdir);
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
