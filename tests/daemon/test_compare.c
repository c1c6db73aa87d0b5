/*
 * test_compare.c - duet compare through duetd, with a real container and
 * a real QEMU guest (under emulation): both ways measured side by side
 * while the live workload goes on untouched, one-way comparisons of
 * workloads that can run only one way, and a daemon killed mid-compare.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "dtest.h"

#define WEB_SPEC                                                                                                     \
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: web}\nspec:\n  image: {rootfs: %s}\n"                    \
    "  command: [/bin/sh, -c, 'echo hello > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']\n"                    \
    "  resources: {memory: 128Mi}\n  ports: [{host: %u, port: 8080}]\n"                                              \
    "  healthcheck: {tcp: 8080, interval: 1s}\n"

/* The live web's address, asked every 100 ms while a compare runs. */
struct watch {
    char addr[32];
    atomic_bool stop;
    atomic_int ok, failed;
};

static void *watch_main(void *arg)
{
    struct watch *w = arg;
    while (!atomic_load(&w->stop)) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(8080)};
        inet_pton(AF_INET, w->addr, &sa.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {.tv_sec = 2};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            atomic_fetch_add(&w->ok, 1);
        else
            atomic_fetch_add(&w->failed, 1);
        close(fd);
        usleep(100000);
    }
    return NULL;
}

/* The host ends of links on d's subnet (one per workload on it). */
static int links_on_fleet(struct dd *d)
{
    struct nl nl;
    struct duet_err err = {0};
    cr_assert_eq(nl_open(&nl, &err), 0, "%s", err.msg);
    struct dd_links x = {0};
    cr_assert_eq(ipam_parse_subnet(d->subnet, &x.subnet, &err), 0);
    cr_assert_eq(nl_link_list(&nl, dd_leftover_link, &x, &err), 0, "%s", err.msg);
    nl_close(&nl);
    int n = 0;
    for (char *p = x.names; (p = strchr(p, ' ')); p++)
        n++;
    return n;
}

/* Nothing of a compare is left: web alone runs, in one cgroup, one
 * container directory, one link; no VM, nothing kept. */
static void check_only_web_left(struct dd *d)
{
    uint64_t deadline = dd_now_ms() + 30000;
    for (;;) {
        json_t *all = dd_get(d, "/v1/workloads");
        size_t n = json_array_size(json_object_get(all, "workloads"));
        json_decref(all);
        if (n == 1)
            break;
        cr_assert(dd_now_ms() < deadline, "temporary instances are still listed");
        usleep(100000);
    }
    char p[512];
    cr_expect_eq(dd_count_dirs(d->cgdir), 1, "cgroups left in %s", d->cgdir);
    snprintf(p, sizeof(p), "%s/containers", d->state);
    cr_expect_eq(dd_count_dirs(p), 1, "container directories left in %s", p);
    snprintf(p, sizeof(p), "%s/vm/instances", d->state);
    cr_expect_eq(dd_count_dirs(p), 0, "VM directories left in %s", p);
    snprintf(p, sizeof(p), "%s/vm/kept", d->state);
    cr_expect_eq(dd_count_dirs(p), 0, "a VM's kept disk is left in %s", p);
    cr_expect_eq(machine_cgroups_left(d->state), 0, "libvirt's machine cgroups left for %s", d->state);
    deadline = dd_now_ms() + 15000;
    while (links_on_fleet(d) != 1 && dd_now_ms() < deadline)
        usleep(100000);
    cr_expect_eq(links_on_fleet(d), 1, "links of temporary instances are left on the fleet network");
}

/* A daemon that runs web, on a host port of this test's own: the port. */
static unsigned start_with_web(struct dd *d)
{
    dd_init_vm(d);
    unsigned port = 20000 + (unsigned)getpid() % 20000;
    const char *m = dd_manifest(d, "web.yaml", WEB_SPEC, dd_env("DUET_ROOTFS"), port);
    char *out;
    cr_assert_eq(dd_duet(d, &out, "apply -f %s --wait --timeout 60", m), 0, "%s", out);
    free(out);
    return port;
}

static double num(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    cr_assert(json_is_number(v), "%s%s%s is missing", path1, path2 ? "." : "", path2 ? path2 : "");
    return json_number_value(v);
}

/* The example's kind of web workload, measured both ways with an HTTP
 * probe while the live one serves on. */
Test(compare, a_web_workload_is_measured_both_ways_and_the_live_one_is_untouched, .timeout = 600)
{
    struct dd d;
    unsigned port = start_with_web(&d);
    char *out;
    char *h0 = dd_handle(&d, "web"), *addr0 = dd_field(&d, "web", "address");
    struct watch w = {0};
    snprintf(w.addr, sizeof(w.addr), "%s", addr0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, watch_main, &w), 0);

    cr_assert_eq(dd_duet(&d, &out, "compare web --runs 2 --idle 3s --http / --port 8080 --duration 2s -o json"), 0,
                 "%s", out);
    atomic_store(&w.stop, true);
    pthread_join(t, NULL);
    /* progress lines went to stderr, before the JSON */
    char *brace = strstr(out, "\n{");
    cr_assert(brace, "%s", out);
    json_error_t jerr;
    json_t *r = json_loads(brace + 1, 0, &jerr);
    cr_assert(r, "%s: %s", jerr.text, out);
    json_t *c = json_object_get(json_object_get(r, "sides"), "container");
    json_t *v = json_object_get(json_object_get(r, "sides"), "vm");
    cr_assert(json_is_true(json_object_get(c, "possible")) && !json_object_get(c, "error"), "%s", out);
    cr_assert(json_is_true(json_object_get(v, "possible")) && !json_object_get(v, "error"), "%s", out);
    cr_expect_str_eq(json_string_value(json_object_get(c, "name")), "web-cmp-ct");
    cr_expect_str_eq(json_string_value(json_object_get(v, "name")), "web-cmp-vm");
    cr_expect_eq(json_array_size(json_object_get(json_object_get(c, "start_ms"), "runs")), 2, "%s", out);
    cr_expect_eq(json_array_size(json_object_get(json_object_get(v, "start_ms"), "runs")), 2, "%s", out);
    /* What is true on any host: a VM starts slower and costs more memory. */
    cr_expect_gt(num(c, "start_ms", "median"), 0);
    cr_expect_gt(num(v, "start_ms", "median"), num(c, "start_ms", "median"), "%s", out);
    cr_expect_gt(num(c, "memory_idle_bytes", NULL), 0);
    cr_expect_gt(num(v, "memory_idle_bytes", NULL), num(c, "memory_idle_bytes", NULL), "%s", out);
    cr_expect_gt(num(v, "memory_probe_bytes", NULL), 0, "%s", out);
    cr_expect_geq(num(c, "cpu_idle_percent", NULL), 0);
    cr_expect_geq(num(v, "cpu_idle_percent", NULL), 0);
    cr_expect_gt(num(v, "disk_bytes", NULL), 0, "a VM's writes go to its disk: %s", out);
    /* Both answered the probe. */
    cr_expect_gt(num(c, "probe", "ok"), 0, "%s", out);
    cr_expect_gt(num(v, "probe", "ok"), 0, "%s", out);
    cr_expect_gt(num(c, "probe", "per_second"), 0);
    cr_expect_gt(num(c, "probe", "p99_ms"), 0);
    cr_expect(json_is_true(json_object_get(json_object_get(v, "capabilities"), "own_kernel")));
    cr_expect(json_is_true(json_object_get(json_object_get(c, "capabilities"), "syscall_filter")));
    /* The verdict names its deciding figures and the plan's choice. */
    json_t *verdict = json_object_get(r, "verdict");
    cr_expect_gt(json_array_size(json_object_get(verdict, "deciding")), 0, "%s", out);
    const char *text = json_string_value(json_object_get(verdict, "text"));
    cr_expect(text && strstr(text, "starts") && strstr(text, "the plan, which chose container"), "%s", text);
    cr_expect(json_is_boolean(json_object_get(verdict, "agrees_with_plan")));
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(r, "plan"), "backend")), "container");
    cr_expect_eq(json_array_size(json_object_get(r, "kept")), 0);
    json_decref(r);
    free(out);

    /* The live web answered throughout, is the same instance at the same
     * address, and publishes its port still. */
    cr_expect_eq(atomic_load(&w.failed), 0, "the live web failed %d of %d connects during the compare",
                 atomic_load(&w.failed), atomic_load(&w.failed) + atomic_load(&w.ok));
    cr_expect_gt(atomic_load(&w.ok), 10);
    char *h1 = dd_handle(&d, "web"), *addr1 = dd_field(&d, "web", "address");
    cr_expect_str_eq(h1, h0);
    cr_expect_str_eq(addr1, addr0);
    cr_expect_eq(dd_int(&d, "web", "restarts"), 0);
    free(h0);
    free(h1);
    free(addr0);
    free(addr1);
    cr_assert_eq(dd_duet(&d, &out, "describe web"), 0, "%s", out);
    char want[32];
    snprintf(want, sizeof(want), "%u->8080", port);
    cr_expect(strstr(out, want), "%s", out);
    free(out);
    check_only_web_left(&d);

    /* The table, with --keep: both stay for the user, marked as kept,
     * and a second compare refuses to take their names. */
    cr_assert_eq(dd_duet(&d, &out, "compare web --runs 1 --idle 1s --keep --exec 'cat /tmp/index.html'"), 0, "%s",
                 out);
    cr_expect(strstr(out, "start to ready (median)") && strstr(out, "command time (median)") &&
                  strstr(out, "verdict: ") && strstr(out, "kept running: web-cmp-ct web-cmp-vm"),
              "%s", out);
    free(out);
    cr_expect(dd_field_is(&d, "web-cmp-ct", "state", "running"));
    cr_expect(dd_field_is(&d, "web-cmp-vm", "state", "running"));
    cr_expect_eq(dd_duet(&d, &out, "compare web --runs 1"), 1, "%s", out);
    cr_expect(strstr(out, "web-cmp-ct exists (kept by an earlier compare --keep); delete it first"), "%s", out);
    free(out);
    /* Kept ones outlive a daemon restart; they go when deleted. */
    dd_stop(&d);
    dd_start(&d);
    dd_wait_field(&d, "web-cmp-vm", "state", "running", 30000);
    /* So do the results, for the dashboard: the two that ran to their
     * end, oldest first (the refused third is not one). */
    json_t *kept = dd_get(&d, "/v1/compare");
    json_t *results = json_object_get(kept, "results");
    cr_expect_eq(json_array_size(results), 2, "GET /v1/compare: %s", json_dumps(kept, 0));
    for (size_t i = 0; i < json_array_size(results); i++) {
        json_t *res = json_array_get(results, i);
        cr_expect_str_eq(json_string_value(json_object_get(res, "workload")), "web");
        cr_expect_gt(json_integer_value(json_object_get(res, "finished_at")), 0);
        cr_expect_gt(num(json_object_get(json_object_get(res, "sides"), "vm"), "start_ms", "median"), 0);
    }
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(results, 0), "runs")), 2, "the first one first");
    json_decref(kept);
    cr_assert_eq(dd_duet(&d, &out, "delete web-cmp-ct web-cmp-vm --wait"), 0, "%s", out);
    free(out);
    check_only_web_left(&d);
    dd_finish(&d);
}

/* Workloads that can run only one way are compared that way, with the
 * reason for the other; nothing of the other is tried. */
Test(compare, a_workload_that_runs_one_way_is_compared_one_way, .timeout = 300)
{
    struct dd d;
    dd_init_vm(&d);
    const char *rootfs = dd_env("DUET_ROOTFS");
    const char *m = dd_manifest(
        &d, "oneway.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: tiny}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [/bin/sleep, '3600']\n  resources: {memory: 8Mi}\n  compare: {exec: [/bin/true]}\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: kernel}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [/bin/sleep, '3600']\n  resources: {memory: 128Mi}\n  needs: {ownKernel: true}\n",
        rootfs, rootfs);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "compare -f %s --workload tiny --runs 1 --idle 1s -o json", m), 0, "%s", out);
    cr_expect(strstr(out, "\"vm\": {\n      \"possible\": false,\n      \"reason\": "), "%s", out);
    cr_expect(strstr(out, "container only: as a vm it cannot run: "), "%s", out);
    cr_expect(strstr(out, "\"backend\": \"container\""), "%s", out);
    /* with no probe on the command line, the spec's compare block is the probe */
    cr_expect(strstr(out, "the probe is the one spec.compare gives"), "%s", out);
    cr_expect(strstr(out, "\"kind\": \"exec\"") && strstr(out, "\"median_ms\": "), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "compare -f %s kernel --runs 1 --idle 1s", m), 0, "%s", out);
    cr_expect(strstr(out, "container: cannot run this way: ") && strstr(out, "ownKernel"), "%s", out);
    cr_expect(strstr(out, "verdict: vm only: as a container it cannot run: "), "%s", out);
    free(out);
    /* Nothing was applied: the files were only compared. */
    json_t *all = dd_get(&d, "/v1/workloads");
    uint64_t deadline = dd_now_ms() + 30000;
    while (json_array_size(json_object_get(all, "workloads")) && dd_now_ms() < deadline) {
        json_decref(all);
        usleep(100000);
        all = dd_get(&d, "/v1/workloads");
    }
    cr_expect_eq(json_array_size(json_object_get(all, "workloads")), 0);
    json_decref(all);
    /* What the user can get wrong, said with the fix. */
    cr_expect_eq(dd_duet(&d, &out, "compare nothere"), 1, "%s", out);
    cr_expect(strstr(out, "no workload named \"nothere\"; apply it first or give its file with -f"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "compare -f %s --workload tiny --tcp 1 --http /", m), 2, "%s", out);
    cr_expect(strstr(out, "give one probe"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "compare -f %s --workload tiny --idle forever", m), 1, "%s", out);
    cr_expect(strstr(out, "idle is not a duration"), "%s", out);
    free(out);
    dd_finish(&d);
}

/* duetd killed mid-compare: the next one removes the temporary
 * instances before anything else, and the fleet is as it was. */
Test(compare, a_compare_cut_short_by_a_killed_daemon_leaves_nothing, .timeout = 300)
{
    struct dd d;
    start_with_web(&d);
    char *h0 = dd_handle(&d, "web");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "DUET_SOCKET=%s %s compare web --runs 1 --idle 30s 2>&1", d.sock, dd_env("DUET_BIN"));
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    /* Both temporaries up: the compare is idling. */
    uint64_t deadline = dd_now_ms() + 200000;
    while (!(dd_field_is(&d, "web-cmp-ct", "state", "running") && dd_field_is(&d, "web-cmp-vm", "state", "running")))
        cr_assert(dd_now_ms() < deadline && usleep(100000) == 0, "the temporary instances did not start");
    dd_kill9(&d);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    cr_expect_neq(pclose(p), 0, "the compare did not fail with its daemon: %s", buf);
    dd_start(&d);
    check_only_web_left(&d);
    char *h1 = dd_handle(&d, "web");
    cr_expect_str_eq(h1, h0, "the live web was re-attached, not replaced");
    free(h0);
    free(h1);
    char *ev = dd_events(&d, "web-cmp-vm");
    cr_expect(strstr(ev, "temporary instance of a compare of web that ended with the daemon"), "%s", ev);
    free(ev);
    dd_finish(&d);
}
