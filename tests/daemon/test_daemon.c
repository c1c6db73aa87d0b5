/*
 * test_daemon.c - duetd as users drive it: apply, re-apply, change, prune,
 * delete, dependency order with health gating, restart policies, back-off
 * and crash loops, logs, exec, events, run, and daemon restarts.  Real
 * containers throughout (busybox rootfs); each test has its own daemon.
 */
#include "dtest.h"

#define ROOTFS dd_env("DUET_ROOTFS")

/* A sleeper workload document. */
static const char *sleeper(char *buf, size_t len, const char *name, const char *extra)
{
    snprintf(buf, len,
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  placement: container\n"
             "  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n  resources: {memory: 16Mi}\n%s",
             name, ROOTFS, extra ? extra : "");
    return buf;
}

Test(daemon, apply_reapply_change_prune_delete, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    char a[1024], b[1024], b2[1024];
    sleeper(a, sizeof(a), "alpha", NULL);
    sleeper(b, sizeof(b), "beta", NULL);
    sleeper(b2, sizeof(b2), "beta", "  env: {CHANGED: \"yes\"}\n");
    const char *both = dd_manifest(&d, "both.yaml", "%s---\n%s", a, b);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 30", both), 0, "%s", out);
    cr_expect(strstr(out, "alpha") && strstr(out, "created"), "%s", out);
    free(out);
    char *ha = dd_handle(&d, "alpha"), *hb = dd_handle(&d, "beta");
    cr_assert(*ha && *hb);

    /* The same files again: nothing changes. */
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", both), 0, "%s", out);
    cr_expect(!strstr(out, "created") && !strstr(out, "replaced") && strstr(out, "unchanged"), "%s", out);
    free(out);
    char *ha2 = dd_handle(&d, "alpha"), *hb2 = dd_handle(&d, "beta");
    cr_expect_str_eq(ha2, ha, "a re-apply restarted alpha");
    cr_expect_str_eq(hb2, hb, "a re-apply restarted beta");
    free(ha2);
    free(hb2);
    cr_expect_eq(dd_int(&d, "beta", "generation"), 1);

    /* One field changed: --dry-run shows it and changes nothing ... */
    const char *changed = dd_manifest(&d, "changed.yaml", "%s---\n%s", a, b2);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --dry-run -o json", changed), 0, "%s", out);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(j, "%s", out);
    free(out);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "changes"), i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *action = json_string_value(json_object_get(c, "action"));
        cr_expect_str_eq(action, strcmp(name, "beta") == 0 ? "replace" : "unchanged", "%s", name);
        cr_expect_str_eq(json_string_value(json_object_get(c, "backend")), "container");
    }
    json_decref(j);
    cr_expect_eq(dd_int(&d, "beta", "generation"), 1, "dry-run changed the generation");
    /* ... and applied, replaces only beta. */
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 30", changed), 0, "%s", out);
    cr_expect(strstr(out, "replaced"), "%s", out);
    free(out);
    cr_expect_eq(dd_int(&d, "beta", "generation"), 2);
    ha2 = dd_handle(&d, "alpha");
    hb2 = dd_handle(&d, "beta");
    cr_expect_str_eq(ha2, ha, "alpha was touched by a change to beta");
    cr_expect_str_neq(hb2, hb, "beta was not replaced");
    free(ha2);
    free(hb2);
    char *ev = dd_events(&d, "beta");
    cr_expect(strstr(ev, "\"stopping\"") && strstr(ev, "generation 2"), "%s", ev);
    free(ev);
    /* The old beta process is gone. */
    int old_pid = atoi(hb);
    cr_expect(kill(old_pid, 0) < 0, "the replaced beta (pid %d) still runs", old_pid);

    /* --prune: beta is not in the file any more. */
    const char *only_a = dd_manifest(&d, "a.yaml", "%s", a);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --prune", only_a), 0, "%s", out);
    cr_expect(strstr(out, "beta") && strstr(out, "deleted"), "%s", out);
    free(out);
    uint64_t deadline = dd_now_ms() + 20000;
    json_t *gone;
    while ((gone = dd_workload(&d, "beta"))) {
        json_decref(gone);
        cr_assert(dd_now_ms() < deadline, "beta not gone after prune");
        usleep(50000);
    }
    cr_assert_eq(dd_duet(&d, &out, "get -o json"), 0);
    cr_expect(strstr(out, "alpha") && !strstr(out, "beta"), "%s", out);
    free(out);
    /* delete, by file */
    cr_assert_eq(dd_duet(&d, &out, "delete -f %s --wait", only_a), 0, "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "get alpha"), 1, "a deleted workload is still found");
    cr_expect(strstr(out, "no workload named"), "%s", out);
    free(out);
    free(ha);
    free(hb);
    dd_finish(&d);
}

Test(daemon, dependency_order_waits_for_health, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(
        &d, "deps.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: base}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [\"/bin/sh\", \"-c\", \"sleep 2; exec nc -ll -p 7000 -e /bin/cat\"]\n"
        "  resources: {memory: 16Mi}\n  healthcheck: {tcp: 7000, interval: 500ms, timeout: 500ms, retries: 2}\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: app}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n  resources: {memory: 16Mi}\n"
        "  dependsOn: [base]\n",
        ROOTFS, ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    /* base runs but is not healthy yet: app waits, and says why. */
    dd_wait_field(&d, "base", "state", "running", 10000);
    cr_expect(dd_field_is(&d, "app", "state", "pending"));
    char *msg = dd_field(&d, "app", "message");
    cr_expect(strstr(msg, "waiting for base"), "%s", msg);
    free(msg);
    dd_wait_field(&d, "app", "state", "running", 20000);
    cr_expect(dd_field_is(&d, "base", "health", "healthy"));
    /* Order in the event stream: base healthy before app created. */
    char *eb = dd_events(&d, "base"), *ea = dd_events(&d, "app");
    int64_t base_healthy = dd_event_id(eb, "healthy"), app_created = dd_event_id(ea, "created");
    cr_expect_gt(base_healthy, 0, "%s", eb);
    cr_expect_gt(app_created, base_healthy, "app was created (event %lld) before base was healthy (event %lld)",
                 (long long)app_created, (long long)base_healthy);
    free(eb);
    free(ea);
    dd_finish(&d);
}

static const char *policy_doc(char *buf, size_t len, const char *name, const char *policy, int code)
{
    snprintf(buf, len,
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  placement: container\n"
             "  image: {rootfs: %s}\n  command: [\"/bin/sh\", \"-c\", \"exit %d\"]\n  resources: {memory: 16Mi}\n"
             "  restart: %s\n",
             name, ROOTFS, code, policy);
    return buf;
}

Test(daemon, restart_policies, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    char w1[1024], w2[1024], w3[1024], w4[1024];
    const char *m = dd_manifest(&d, "p.yaml", "%s---\n%s---\n%s---\n%s",
                                policy_doc(w1, sizeof(w1), "always-ok", "always", 0),
                                policy_doc(w2, sizeof(w2), "onfail-ok", "on-failure", 0),
                                policy_doc(w3, sizeof(w3), "onfail-bad", "on-failure", 3),
                                policy_doc(w4, sizeof(w4), "never-bad", "never", 3));
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "onfail-ok", "state", "completed", 15000);
    dd_wait_field(&d, "never-bad", "state", "failed", 15000);
    uint64_t deadline = dd_now_ms() + 20000;
    while (dd_int(&d, "always-ok", "restarts") < 2 || dd_int(&d, "onfail-bad", "restarts") < 2) {
        cr_assert(dd_now_ms() < deadline, "always / on-failure workloads were not restarted");
        usleep(50000);
    }
    usleep(1000000);
    cr_expect_eq(dd_int(&d, "onfail-ok", "restarts"), 0, "on-failure restarted a success");
    cr_expect_eq(dd_int(&d, "never-bad", "restarts"), 0, "never restarted");
    char *le = dd_field(&d, "never-bad", "last_exit");
    cr_expect(strstr(le, "\"code\": 3") || strstr(le, "\"code\":3"), "%s", le);
    free(le);
    cr_assert_eq(dd_duet(&d, &out, "get"), 0);
    cr_expect(strstr(out, "completed") && strstr(out, "failed"), "%s", out);
    free(out);
    dd_finish(&d);
}

/* healthcheck.onUnhealthy: restart stops an unhealthy instance as a failed
 * run: on-failure restarts it (its graceful exit 0 notwithstanding), and
 * the new instance, healthy again, serves on; never leaves it ended; the
 * default (none) only shows it unhealthy.  An instance that never passed
 * (still starting, however slowly) is not killed for it. */
Test(daemon, an_unhealthy_workload_is_restarted_by_its_policy_when_asked, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    static const char *const doc =
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  restart: %s\n  resources: {memory: 16Mi}\n"
        "  command: [/bin/sh, -c, 'trap \"exit 0\" TERM; touch /tmp/ok; while :; do sleep 0.2; done']\n"
        "  healthcheck: {exec: [/bin/sh, -c, 'test -e /tmp/ok'], interval: 300ms, timeout: 2s, retries: 2%s}\n";
    char a[1024], b[1024], c[1024], e[1024];
    snprintf(a, sizeof(a), doc, "heal", ROOTFS, "on-failure", ", onUnhealthy: restart");
    snprintf(b, sizeof(b), doc, "stay", ROOTFS, "never", ", onUnhealthy: restart");
    snprintf(c, sizeof(c), doc, "show", ROOTFS, "always", "");
    snprintf(e, sizeof(e),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: slow}\nspec:\n  placement: container\n"
             "  image: {rootfs: %s}\n  resources: {memory: 16Mi}\n  command: [/bin/sleep, '3600']\n"
             "  healthcheck: {exec: [/bin/false], interval: 300ms, retries: 1, onUnhealthy: restart}\n",
             ROOTFS);
    const char *m = dd_manifest(&d, "h.yaml", "%s---\n%s---\n%s", a, b, c);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    const char *ms = dd_manifest(&d, "s.yaml", "%s", e);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", ms), 0, "%s", out);
    free(out);
    static const char *const names[] = {"heal", "stay", "show"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(dd_duet(&d, &out, "exec %s -- rm /tmp/ok", names[i]), 0, "%s", out);
        free(out);
    }
    uint64_t deadline = dd_now_ms() + 30000;
    while (dd_int(&d, "heal", "restarts") < 1)
        cr_assert(dd_now_ms() < deadline && usleep(50000) == 0, "heal was not restarted");
    dd_wait_field(&d, "heal", "health", "healthy", 20000);
    dd_wait_field(&d, "stay", "state", "failed", 20000);
    dd_wait_field(&d, "show", "health", "unhealthy", 20000);
    usleep(1500000);
    cr_expect_eq(dd_int(&d, "show", "restarts"), 0, "without onUnhealthy nothing restarts");
    cr_expect(dd_field_is(&d, "show", "state", "unhealthy"), "still running, shown unhealthy");
    cr_expect_eq(dd_int(&d, "stay", "restarts"), 0, "restart: never left it ended");
    cr_expect(dd_field_is(&d, "slow", "state", "unhealthy"));
    cr_expect_eq(dd_int(&d, "slow", "restarts"), 0, "an instance that never passed was restarted");
    char *ev = dd_events(&d, "heal");
    cr_expect(strstr(ev, "healthcheck.onUnhealthy stops it, and its restart policy on-failure decides"), "%s", ev);
    free(ev);
    cr_assert_eq(dd_duet(&d, &out, "describe stay"), 0);
    cr_expect(strstr(out, "failing its health check"), "%s", out);
    free(out);
    /* a word it does not know is an error, with the words it knows */
    const char *bad = dd_manifest(&d, "bad.yaml",
                                  "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: bad}\nspec:\n"
                                  "  image: {rootfs: %s}\n  command: [/bin/true]\n"
                                  "  healthcheck: {tcp: 80, onUnhealthy: reboot}\n",
                                  ROOTFS);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", bad), 1, "%s", out);
    cr_expect(strstr(out, "spec.healthcheck.onUnhealthy: \"reboot\" is not allowed; use one of: none, restart"), "%s",
              out);
    free(out);
    dd_finish(&d);
}

Test(daemon, backoff_grows_into_a_crash_loop, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    char w[1024];
    const char *m = dd_manifest(&d, "c.yaml", "%s", policy_doc(w, sizeof(w), "crash", "always", 1));
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "crash", "state", "crashloop", 30000);
    char *ev = dd_events(&d, "crash");
    /* base 100 ms, doubled after each quick failure */
    const char *want[] = {"restarting in 100 ms", "restarting in 200 ms", "restarting in 400 ms",
                          "restarting in 800 ms", "restarting in 1600 ms"};
    const char *at = ev;
    for (size_t k = 0; k < 5; k++) {
        const char *f = strstr(at, want[k]);
        cr_expect(f, "no \"%s\" after the previous delay in %s", want[k], ev);
        if (f)
            at = f;
    }
    cr_expect(strstr(ev, "\"crashloop\""), "%s", ev);
    free(ev);
    cr_assert_eq(dd_duet(&d, &out, "describe crash"), 0);
    cr_expect(strstr(out, "crash loop") && strstr(out, "policy always"), "%s", out);
    free(out);
    /* A daemon restart does not forget the crash loop, nor reset the back-off. */
    dd_stop(&d);
    dd_start(&d);
    uint64_t deadline = dd_now_ms() + 10000;
    long last_delay = 0;
    while (last_delay == 0 && dd_now_ms() < deadline) {
        usleep(200000);
        char *e = dd_events(&d, "crash"), *recovered = strstr(e, "\"type\":\"recovered\"");
        const char *b = recovered ? recovered : e, *next;
        /* the first back-off after the restart */
        if ((next = strstr(b, "restarting in ")))
            last_delay = strtol(next + 14, NULL, 10);
        free(e);
    }
    cr_expect_geq(last_delay, 3200, "the back-off after a restart is %ld ms", last_delay);
    cr_expect(dd_field_is(&d, "crash", "state", "crashloop") || dd_field_is(&d, "crash", "crashloop", "true"));
    dd_finish(&d);
}

Test(daemon, logs_exec_events_run, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(
        &d, "l.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: talker}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [\"/bin/sh\", \"-c\", \"echo first; echo second >&2; "
        "while true; do echo tick; sleep 0.3; done\"]\n  resources: {memory: 16Mi}\n  env: {GREETING: hello}\n",
        ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait", m), 0, "%s", out);
    free(out);
    usleep(400000);
    cr_assert_eq(dd_duet(&d, &out, "logs talker"), 0, "%s", out);
    cr_expect(strstr(out, "first\n") && strstr(out, "second\n") && strstr(out, "tick"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "logs --tail 1 talker"), 0, "%s", out);
    cr_expect(strcmp(out, "tick\n") == 0, "tail 1 gave \"%s\"", out);
    free(out);
    /* -f keeps printing as the log grows */
    cr_expect_eq(dd_duet(&d, &out, "logs -f talker & p=$!; sleep 1.5; kill $p; wait $p"), 143);
    int ticks = 0;
    for (char *p = out; (p = strstr(p, "tick")); p++)
        ticks++;
    cr_expect_geq(ticks, 4, "logs -f printed %d ticks in 1.5 s: %s", ticks, out);
    free(out);
    /* exec: output, error stream, status, the workload's environment */
    cr_expect_eq(dd_duet(&d, &out, "exec talker -- /bin/sh -c 'echo $GREETING; echo oops >&2; exit 4'"), 4);
    cr_expect(strstr(out, "hello") && strstr(out, "oops"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "exec nosuch -- /bin/true"), 1);
    cr_expect(strstr(out, "no workload named"), "%s", out);
    free(out);
    /* a command that never ends is bounded by --timeout, with all it started */
    dd_exec_times_out(&d, "talker", "/bin/sh -c 'sleep 100 & sleep 100'", 10000);
    /* its figures: memory, CPU, and I/O where counted (the fleet network's
     * link always; block I/O where the host's blkio or io controller is) */
    json_t *j = dd_workload(&d, "talker");
    json_t *st = json_object_get(json_object_get(j, "instance"), "stats");
    cr_expect_gt(json_integer_value(json_object_get(st, "memory_bytes")), 0);
    cr_expect(json_is_integer(json_object_get(st, "net_rx_bytes")) && json_is_integer(json_object_get(st, "net_tx_bytes")),
              "%s", json_dumps(st, 0));
    cr_expect(json_is_integer(json_object_get(st, "blk_read_bytes")) || access("/sys/fs/cgroup/blkio", F_OK) != 0,
              "the blkio controller is mounted and counted nothing: %s", json_dumps(st, 0));
    json_decref(j);
    /* events */
    cr_assert_eq(dd_duet(&d, &out, "events"), 0);
    cr_expect(strstr(out, "talker") && strstr(out, "started"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "events --workload talker -o json"), 0);
    cr_expect(strstr(out, "\"type\":\"created\"") && !strstr(out, "\"workload\":null"), "%s", out);
    free(out);
    /* run: output and status come back, --rm removes it */
    cr_expect_eq(dd_duet(&d, &out, "run --rm --rootfs %s -- /bin/sh -c 'echo ran; exit 5'", ROOTFS), 5);
    cr_expect(strstr(out, "ran"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "run --rm --rootfs %s -- /bin/nonexistent", ROOTFS), 125);
    cr_expect(strstr(out, "nonexistent"), "%s", out);
    free(out);
    /* run takes docker's options, each into the spec's own field */
    char envfile[160], data[160];
    snprintf(envfile, sizeof(envfile), "%s/run.env", d.dir);
    /* not under the daemon's own directory, which no workload may have */
    snprintf(data, sizeof(data), "/tmp/duet-run-data-XXXXXX");
    cr_assert_not_null(mkdtemp(data));
    chmod(data, 0755);
    FILE *f = fopen(envfile, "w");
    cr_assert_not_null(f);
    fputs("# settings\nB=two words\n\n  C=x=y\n", f);
    fclose(f);
    char datax[200];
    snprintf(datax, sizeof(datax), "%s/x", data);
    f = fopen(datax, "w");
    fputs("from-the-host\n", f);
    fclose(f);
    setenv("DUET_TEST_FROM_HERE", "here", 1);
    cr_expect_eq(dd_duet(&d, &out,
                         "run --rm -e A=1 -e DUET_TEST_FROM_HERE -e UNSET_HERE_X --env-file %s -v %s:/data:ro "
                         "-v scratch:/s -u 1000 -w /tmp --rootfs %s -- /bin/sh -c "
                         "'echo A=$A B=$B C=$C H=$DUET_TEST_FROM_HERE U=${UNSET_HERE_X-unset}; pwd; id -u; "
                         "cat /data/x; touch /s/ok && echo s-ok; touch /data/y'",
                         envfile, data, ROOTFS),
                 1, "%s", out);
    unsetenv("DUET_TEST_FROM_HERE");
    unlink(datax);
    rmdir(data);
    cr_expect(strstr(out, "A=1 B=two words C=x=y H=here U=unset\n/tmp\n1000\nfrom-the-host\n"), "%s", out);
    cr_expect(strstr(out, "s-ok"), "the named volume is not at /s: %s", out);
    cr_expect(strstr(out, "Read-only file system") || strstr(out, "Permission denied"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "run --name pub -p 18099:8080 -p 5353/udp --rootfs %s -- /bin/true", ROOTFS), 0,
                 "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "get pub -o json"), 0);
    cr_expect(strstr(out, "18099") && strstr(out, "8080") && strstr(out, "\"udp\""), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "delete pub --wait"), 0);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "run -p 1.2.3.4:80:80 --rootfs %s", ROOTFS), 2);
    cr_expect(strstr(out, "not an address"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "run -e =x --rootfs %s", ROOTFS), 2);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "run -v nocolon --rootfs %s", ROOTFS), 2);
    free(out);
    /* a value the schema refuses comes back as the manifest's error would */
    cr_expect_eq(dd_duet(&d, &out, "run -e 1BAD=x --rootfs %s -- /bin/true", ROOTFS), 1);
    cr_expect(strstr(out, "spec.env"), "%s", out);
    free(out);
    usleep(300000);
    cr_assert_eq(dd_duet(&d, &out, "get -o yaml"), 0);
    cr_expect(!strstr(out, "run-"), "a --rm run is still listed: %s", out);
    cr_expect(strstr(out, "name: \"talker\""), "%s", out);
    free(out);
    dd_finish(&d);
}

Test(daemon, restart_keeps_workloads_and_reports_exits, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    char a[1024];
    const char *m = dd_manifest(
        &d, "r.yaml",
        "%s---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: brief}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n  command: [\"/bin/sh\", \"-c\", \"sleep 2; exit 4\"]\n"
        "  resources: {memory: 16Mi}\n  restart: never\n",
        sleeper(a, sizeof(a), "steady", NULL), ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "steady", "state", "running", 10000);
    dd_wait_field(&d, "brief", "state", "running", 10000);
    char *h = dd_handle(&d, "steady");
    dd_stop(&d);
    cr_expect_eq(kill(atoi(h), 0), 0, "steady stopped with the daemon");
    usleep(3000000);   /* brief exits while no daemon runs */
    dd_start(&d);
    dd_wait_field(&d, "brief", "state", "failed", 10000);
    char *le = dd_field(&d, "brief", "last_exit");
    cr_expect(strstr(le, "\"code\": 4") || strstr(le, "\"code\":4"), "%s", le);
    free(le);
    cr_expect(dd_field_is(&d, "steady", "state", "running"));
    char *h2 = dd_handle(&d, "steady");
    cr_expect_str_eq(h2, h, "steady was restarted instead of re-attached");
    char *ev = dd_events(&d, "steady");
    cr_expect(strstr(ev, "\"recovered\""), "%s", ev);
    free(ev);
    free(h);
    free(h2);
    /* A second daemon on the same state dir is refused. */
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/duetd --foreground --state-dir %s --socket %s/other.sock 2>&1",
             dd_env("DUET_BUILD"), d.state, d.dir);
    FILE *p = popen(cmd, "r");
    char line[512] = "";
    cr_assert(fgets(line, sizeof(line), p) != NULL);
    cr_expect_eq(WEXITSTATUS(pclose(p)), 1);
    cr_expect(strstr(line, "already runs on"), "%s", line);
    dd_finish(&d);
}

Test(daemon, cli_errors_and_exit_codes, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    char *out;
    const char *bad = dd_manifest(&d, "bad.yaml",
                                  "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: x}\nspec:\n  role: boss\n");
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", bad), 1);
    cr_expect(strstr(out, "bad.yaml:5:9: error:") && strstr(out, "nothing was applied"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "apply"), 2);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "get --socket %s/nothing-here.sock", d.dir), 3);
    cr_expect(strstr(out, "is it running"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "describe 'Not_A_Name'"), 1);
    free(out);
    /* A workload that fits nowhere: all or nothing. */
    const char *huge = dd_manifest(&d, "huge.yaml",
                                   "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: huge}\nspec:\n"
                                   "  placement: container\n  image: {rootfs: %s}\n  command: [/bin/true]\n"
                                   "  resources: {memory: 64Ti}\n",
                                   ROOTFS);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", huge), 1);
    cr_expect(strstr(out, "huge: unplaceable"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "get"), 0);
    cr_expect(!strstr(out, "huge"), "%s", out);
    free(out);
    dd_finish(&d);
}

/* The kernel's OOM killer at the container's limit is said as such, with
 * the limit and the fix, in the events and in describe; on-failure counts
 * it as the failure it is. */
Test(daemon, an_oom_kill_names_the_limit, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(&d, "hog.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: hog}\nspec:\n"
                                "  placement: container\n  image: {rootfs: %s}\n  command: [/bin/tail, /dev/zero]\n"
                                "  restart: never\n  resources: {memory: 24Mi}\n",
                                ROOTFS);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "hog", "state", "failed", 30000);
    char *msg = dd_field(&d, "hog", "message");
    cr_expect(strstr(msg, "out of memory (limit 24 MiB)") && strstr(msg, "raise resources.memory"), "%s", msg);
    free(msg);
    char *ev = dd_events(&d, "hog");
    cr_expect(strstr(ev, "out of memory (limit 24 MiB)"), "%s", ev);
    free(ev);
    cr_expect_eq(dd_duet(&d, &out, "describe hog"), 0);
    cr_expect(strstr(out, "out of memory (limit 24 MiB)"), "%s", out);
    free(out);
    dd_finish(&d);
}

/* apply --wait on a workload that cannot start fails at its first failed
 * launch, naming it and why, instead of waiting out the timeout. */
Test(daemon, apply_wait_fails_at_once_on_a_workload_that_cannot_start, .timeout = 90)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(&d, "broken.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: broken}\nspec:\n"
                                "  placement: container\n  image: {rootfs: %s}\n  command: [/bin/sleep, '3600']\n"
                                "  volumes: [{source: /nonexistent/no-such-dir, target: /data}]\n",
                                ROOTFS);
    char *out;
    uint64_t t0 = dd_now_ms();
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 120", m), 1, "%s", out);
    cr_expect(dd_now_ms() - t0 < 30000, "the wait took %llu ms", (unsigned long long)(dd_now_ms() - t0));
    cr_expect(strstr(out, "broken is restarting") && strstr(out, "no-such-dir"), "%s", out);
    free(out);
    dd_finish(&d);
}
