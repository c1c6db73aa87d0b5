/*
 * test_reconcile.c - the reconciler's decisions, in-process, against a
 * driver the test scripts (fake_driver.h).
 *
 * A real daemon context with a real state store (SQLite in the test's
 * directory) and a real libuv loop; only the backend is scripted, so the
 * tests can make a workload exit when they choose, fail a create, stop
 * slowly, report events out of order, or find what a killed daemon left.
 * The same decisions are tested end to end with real containers in the
 * daemon suite; these run in milliseconds and reach the cases a real
 * backend cannot be made to produce on demand.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "fake_driver.h"
#include "manifests/specjson.h"
#include "orchestrator/daemon.h"
#include "storage/snapshot.h"
#include "storage/volume.h"

struct rt {
    uv_loop_t loop;
    struct daemon d;
    struct fake_driver *f;
    char dir[64];
};

static void rt_host(struct daemon *d)
{
    struct host_info *h = &d->host;
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "test");
    h->cpus = 64;
    h->memory = 256ull << 30;
    h->overcommit_cpu = h->overcommit_memory = 1;
    struct driver_caps *ct = &h->backend[BACKEND_CONTAINER], *vm = &h->backend[BACKEND_VM];
    ct->available = true;
    ct->start_ms = DRIVER_EST_CONTAINER_START_MS;
    ct->memory_overhead = DRIVER_EST_CONTAINER_OVERHEAD;
    ct->memory_floor = WL_MIN_MEMORY;
    snprintf(ct->description, sizeof(ct->description), "fake");
    vm->available = false;
    snprintf(vm->unavailable_reason, sizeof(vm->unavailable_reason), "not in these tests");
}

/* A daemon on a fresh store, or on the store dir already holds (a
 * restart), with the fake driver as its container backend. */
static void rt_open(struct rt *t, unsigned flags)
{
    cr_assert_eq(uv_loop_init(&t->loop), 0);
    memset(&t->d, 0, sizeof(t->d));
    struct daemon_config cfg = {.state_dir = t->dir, .socket_path = "/nonexistent/duet.sock", .backoff_ms = 20,
                                .grace_ms = 100};
    struct duet_err err = {0};
    cr_assert_eq(daemon_init(&t->d, &t->loop, &cfg, &err), 0, "%s", err.msg);
    t->d.stable_ms = 300;
    t->d.backoff_max_ms = 160;
    rt_host(&t->d);
    t->f = fake_driver_new(&t->loop, BACKEND_CONTAINER, flags);
    t->d.drv[BACKEND_CONTAINER] = &t->f->drv;
    daemon_event_sink_remove(&t->d, &t->d.log_sink);   /* the tests read events from the store */
    t->d.drv_open[BACKEND_CONTAINER] = true;
}

static void rt_init(struct rt *t, unsigned flags)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/duet-rt-XXXXXX");
    cr_assert(mkdtemp(t->dir));
    rt_open(t, flags);
    struct duet_err err = {0};
    cr_assert_eq(daemon_load(&t->d, &err), 0, "%s", err.msg);
}

/* The daemon goes (as on SIGTERM); its instances are let go of. */
static void rt_close(struct rt *t)
{
    daemon_shutdown(&t->d);
    t->d.drv[BACKEND_CONTAINER] = NULL;   /* the test's, not the daemon's to free */
    t->d.drv_open[BACKEND_CONTAINER] = false;
    daemon_close(&t->d);
    cr_assert_eq(uv_loop_close(&t->loop), 0, "handles left open on the loop");
    fake_driver_free(t->f);
    t->f = NULL;
}

static void rt_finish(struct rt *t)
{
    rt_close(t);
    duet_remove_tree(t->dir, NULL);
}

static void stop_loop(uv_timer_t *h)
{
    uv_stop(h->loop);
}

/* Runs the loop for ms. */
static void rt_run(struct rt *t, unsigned ms)
{
    uv_timer_t timer;
    uv_timer_init(&t->loop, &timer);
    uv_timer_start(&timer, stop_loop, ms, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT);
}

static struct wl *W(struct rt *t, const char *name)
{
    return daemon_wl_find(&t->d, name);
}

/* Runs the loop until `cond` holds, at most ms; false if it never did. */
#define RT_UNTIL(t, ms, cond)                                                                                      \
    ({                                                                                                             \
        bool ok_ = false;                                                                                          \
        for (unsigned waited_ = 0; !(ok_ = (cond)) && waited_ < (ms); waited_ += 2)                              \
            rt_run((t), 2);                                                                                        \
        ok_;                                                                                                       \
    })

static bool is_state(struct rt *t, const char *name, const char *state)
{
    struct wl *w = W(t, name);
    return w && strcmp(wl_state_name(w), state) == 0;
}

static const char *state_of(struct rt *t, const char *name)
{
    struct wl *w = W(t, name);
    return w ? wl_state_name(w) : "(gone)";
}

/* A Workload document with `extra` spec lines. */
static char *doc(const char *name, const char *extra)
{
    char *s = NULL;
    if (asprintf(&s,
                 "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  placement: container\n"
                 "  image: {rootfs: /srv/rootfs}\n  command: [/bin/app]\n%s%s",
                 name, extra && strstr(extra, "resources:") ? "" : "  resources: {memory: 16Mi}\n",
                 extra ? extra : "") < 0)
        abort();
    return s;
}

static void apply_text(struct rt *t, const char *yaml)
{
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "/srv/t.yaml", yaml, strlen(yaml));
    struct apply_opts o = {0};
    struct apply_result r;
    daemon_apply(&t->d, set, &o, &r);
    cr_assert_eq(r.status, APPLY_OK, "apply refused: %s %s", r.error, r.n_lines ? r.lines[0] : "");
    apply_result_free(&r);
}

static void apply1(struct rt *t, const char *name, const char *extra)
{
    char *y = doc(name, extra);
    apply_text(t, y);
    free(y);
}

/* How long from now until w's restart is due, in ms. */
static int64_t backoff_left(struct wl *w)
{
    return (int64_t)w->backoff_until - (int64_t)mono_ms();
}

/* Events of workload `name`, "type:message" lines, from the store. */
static void add_ev(void *opaque, const struct store_event *e)
{
    char *buf = opaque;
    size_t n = strlen(buf);
    snprintf(buf + n, 8192 - n, "%s:%s\n", e->type, e->message);
}

static char *events_of(struct rt *t, const char *name)
{
    char *buf = calloc(1, 8192);
    struct duet_err err = {0};
    store_events(t->d.store, 0, name, 1000, add_ev, buf, &err);
    return buf;
}

/* ---- restart policies, back-off, crash loops ------------------------------------ */

Test(reconcile, always_backs_off_doubling_into_a_crash_loop_and_a_stable_run_resets_it)
{
    struct rt t;
    rt_init(&t, 0);
    apply1(&t, "app", "  restart: always\n");
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")), "app is %s", state_of(&t, "app"));
    /* Runs shorter than stable_ms: each delay doubles from the base (20 ms) up to the cap (160 ms). */
    const int64_t want[] = {20, 40, 80, 160, 160};
    for (int k = 0; k < 5; k++) {
        cr_assert(fake_exit(t.f, "app", 1, 0));
        struct wl *w = W(&t, "app");
        cr_assert_eq(w->phase, PH_BACKOFF, "after exit %d: %s", k + 1, state_of(&t, "app"));
        int64_t left = backoff_left(w);
        cr_expect(left > want[k] - 10 && left <= want[k], "exit %d: restart in %lld ms, want %lld", k + 1,
                  (long long)left, (long long)want[k]);
        cr_expect_eq(w->crashloop, k == 4, "exit %d: crashloop %d", k + 1, w->crashloop);
        if (k == 4)
            cr_expect_str_eq(wl_state_name(w), "crashloop");
        cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")), "not restarted after exit %d", k + 1);
        cr_expect_eq(W(&t, "app")->restarts, k + 1);
    }
    char *ev = events_of(&t, "app");
    cr_expect(strstr(ev, "crashloop:5 runs in a row"), "%s", ev);
    free(ev);
    /* A run longer than stable_ms (300 ms) starts the count again. */
    rt_run(&t, 350);
    cr_assert(fake_exit(t.f, "app", 1, 0));
    struct wl *w = W(&t, "app");
    cr_expect_eq(w->quick_failures, 0);
    cr_expect(!w->crashloop);
    cr_expect(backoff_left(w) <= 20, "the delay did not go back to the base: %lld", (long long)backoff_left(w));
    cr_expect_eq(t.f->creates, 6);
    cr_expect_eq(t.f->destroys, 5, "each restart destroys the ended instance first: %s", t.f->oplog);
    rt_finish(&t);
}

/* duet restart of a workload in a crash loop: a fresh start at once, the
 * loop forgotten and not counted; duet stop during a back-off: no restart
 * comes, and it stays stopped until started. */
Test(reconcile, restart_forgets_a_crash_loop_and_stop_holds_through_a_back_off)
{
    struct rt t;
    rt_init(&t, 0);
    apply1(&t, "app", "  restart: always\n");
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    for (int k = 0; k < 5; k++) {
        cr_assert(fake_exit(t.f, "app", 1, 0));
        if (k < 4)
            cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    }
    cr_assert_str_eq(state_of(&t, "app"), "crashloop");
    int64_t restarts = W(&t, "app")->restarts;
    unsigned creates = t.f->creates;
    struct duet_err err = {0};
    cr_assert_eq(daemon_workload_action(&t.d, "app", WL_ACTION_RESTART, &err), 0, "%s", err.msg);
    /* Not after the crash loop's 160 ms: now. */
    cr_assert(RT_UNTIL(&t, 60, is_state(&t, "app", "running")), "app is %s", state_of(&t, "app"));
    struct wl *w = W(&t, "app");
    cr_expect(!w->crashloop && w->quick_failures == 0 && !w->restart_asked);
    cr_expect_eq(w->restarts, restarts, "a restart asked for is not counted");
    cr_expect_eq(t.f->creates, creates + 1);

    /* A running one: the instance is replaced. */
    cr_assert_eq(daemon_workload_action(&t.d, "app", WL_ACTION_RESTART, &err), 0);
    cr_assert(RT_UNTIL(&t, 2000, t.f->creates == creates + 2 && is_state(&t, "app", "running")));
    cr_expect_eq(fake_count(t.f, "stop app"), 1, "%s", t.f->oplog);

    /* Stopped during a back-off: the restart never comes. */
    cr_assert(fake_exit(t.f, "app", 1, 0));
    cr_assert_eq(W(&t, "app")->phase, PH_BACKOFF);
    cr_assert_eq(daemon_workload_action(&t.d, "app", WL_ACTION_STOP, &err), 0);
    rt_run(&t, 300);
    cr_expect_str_eq(state_of(&t, "app"), "stopped");
    cr_expect_eq(t.f->creates, creates + 2);
    /* Through a daemon restart. */
    rt_close(&t);
    rt_open(&t, 0);
    cr_assert_eq(daemon_load(&t.d, &err), 0, "%s", err.msg);
    daemon_reconcile_soon(&t.d);
    rt_run(&t, 100);
    cr_expect_str_eq(state_of(&t, "app"), "stopped");
    cr_expect_eq(t.f->creates, 0, "a new daemon made nothing of a stopped workload");
    cr_assert_eq(daemon_workload_action(&t.d, "app", WL_ACTION_START, &err), 0);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    cr_expect_eq(daemon_workload_action(&t.d, "nope", WL_ACTION_STOP, &err), -1);
    cr_expect_eq(err.code, ENOENT);
    rt_finish(&t);
}

Test(reconcile, on_failure_restarts_only_a_failure_and_never_never)
{
    struct rt t;
    rt_init(&t, 0);
    char *a = doc("ok", "  restart: on-failure\n"), *b = doc("bad", "  restart: on-failure\n"),
         *c = doc("once", "  restart: never\n"), *all = NULL;
    cr_assert(asprintf(&all, "%s---\n%s---\n%s", a, b, c) > 0);
    apply_text(&t, all);
    free(a), free(b), free(c), free(all);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "ok", "running") && is_state(&t, "bad", "running") &&
                                     is_state(&t, "once", "running")));
    cr_assert(fake_exit(t.f, "ok", 0, 0));
    cr_assert(fake_exit(t.f, "bad", 0, 9));
    cr_assert(fake_exit(t.f, "once", 3, 0));
    cr_expect_str_eq(state_of(&t, "ok"), "completed");
    cr_expect_str_eq(state_of(&t, "bad"), "restarting");
    cr_expect_str_eq(state_of(&t, "once"), "failed");
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "bad", "running")));
    rt_run(&t, 100);
    cr_expect_str_eq(state_of(&t, "ok"), "completed");
    cr_expect_str_eq(state_of(&t, "once"), "failed");
    cr_expect_eq(fake_count(t.f, "create ok"), 1);
    cr_expect_eq(fake_count(t.f, "create once"), 1);
    cr_expect_eq(fake_count(t.f, "create bad"), 2);
    cr_expect_eq(W(&t, "once")->last_exit, 3);
    rt_finish(&t);
}

Test(reconcile, an_oom_kill_is_a_failure_that_names_the_limit)
{
    struct rt t;
    rt_init(&t, 0);
    apply1(&t, "app", "  restart: on-failure\n  resources: {memory: 24Mi}\n");
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    t.f->oom = true;
    cr_assert(fake_exit(t.f, "app", -1, 9));
    struct wl *w = W(&t, "app");
    cr_expect_str_eq(wl_state_name(w), "restarting", "an OOM kill is a failure for on-failure");
    cr_expect(w->message && strstr(w->message, "out of memory (limit 24 MiB)"), "%s", w->message);
    char *ev = events_of(&t, "app");
    cr_expect(strstr(ev, "exited:out of memory (limit 24 MiB): the kernel's OOM killer ended it; raise "
                         "resources.memory"),
              "%s", ev);
    free(ev);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    cr_expect_null(W(&t, "app")->message, "the message outlived the next good start");
    rt_finish(&t);
}

Test(reconcile, a_failed_create_or_start_counts_as_a_run_that_ended_at_once)
{
    struct rt t;
    rt_init(&t, 0);
    t.f->fail_creates = 2;
    t.f->fail_starts = 1;
    apply1(&t, "app", "  restart: on-failure\n");
    cr_assert(RT_UNTIL(&t, 3000, is_state(&t, "app", "running")), "app is %s", state_of(&t, "app"));
    struct wl *w = W(&t, "app");
    cr_expect_eq(w->restarts, 3);
    cr_expect_eq(w->quick_failures, 3, "each failed launch is a quick failure");
    cr_expect_null(w->message, "the last error stays after a good start: %s", w->message);
    cr_expect_eq(t.f->creates, 4);
    char *ev = events_of(&t, "app");
    cr_expect(strstr(ev, "failed:create: the fake driver was told to fail this"), "%s", ev);
    cr_expect(strstr(ev, "failed:start: the fake driver was told to fail this"), "%s", ev);
    free(ev);
    rt_finish(&t);
}

Test(reconcile, a_crash_loop_of_failed_launches_points_at_the_error_not_at_logs)
{
    struct rt t;
    rt_init(&t, 0);
    t.f->fail_creates = 100;
    apply1(&t, "app", "  restart: always\n");
    cr_assert(RT_UNTIL(&t, 3000, is_state(&t, "app", "crashloop")), "app is %s", state_of(&t, "app"));
    char *ev = events_of(&t, "app");
    cr_expect(strstr(ev, "crashloop:5 runs in a row") &&
                  strstr(ev, "its launch failed: the fake driver was told to fail this; see duet describe app"),
              "%s", ev);
    cr_expect(!strstr(ev, "see duet logs"), "no run, so no log to point at: %s", ev);
    free(ev);
    rt_finish(&t);
}

/* ---- replace, delete, slow stops, events out of order ------------------------------- */

Test(reconcile, a_changed_spec_replaces_the_instance_stop_destroy_then_create)
{
    struct rt t;
    rt_init(&t, 0);
    apply1(&t, "app", NULL);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    t.f->stop_ms = 50;
    apply1(&t, "app", NULL);   /* unchanged: nothing happens */
    rt_run(&t, 60);
    cr_expect_eq(t.f->stops, 0);
    apply1(&t, "app", "  env: {V: \"2\"}\n");
    cr_assert(RT_UNTIL(&t, 2000, W(&t, "app")->inst_gen == 2 && is_state(&t, "app", "running")));
    long stop = fake_pos(t.f, "stop app"), destroy = fake_pos(t.f, "destroy app");
    cr_expect(stop >= 0 && destroy > stop, "%s", t.f->oplog);
    cr_expect_eq(fake_count(t.f, "create app"), 2, "%s", t.f->oplog);
    cr_expect(strstr(t.f->oplog + destroy, "create app"), "the new instance was created before the old went: %s",
              t.f->oplog);
    cr_expect_eq(W(&t, "app")->restarts, 0, "a replacement is not a restart");
    rt_finish(&t);
}

/* A hold (a snapshot's): the instance is stopped and destroyed, none is
 * made while it lasts, the hold's callback comes once with nothing on the
 * host; let go, the workload runs again as a new instance, no restart
 * counted.  One that had ended stays ended. */
static int held_calls;
static bool held_with_instance;

static void on_held(struct wl *w)
{
    held_calls++;
    held_with_instance = w->inst != NULL;
}

static void hold(struct wl *w)
{
    w->hold = true;
    w->hold_why = "for a test";
    w->hold_ready = on_held;
    wl_reconcile(w);
}

Test(reconcile, a_hold_leaves_nothing_on_the_host_until_it_is_let_go)
{
    struct rt t;
    rt_init(&t, 0);
    char *a = doc("app", NULL), *b = doc("once", "  restart: never\n"), *all = NULL;
    cr_assert(asprintf(&all, "%s---\n%s", a, b) > 0);
    apply_text(&t, all);
    free(a), free(b), free(all);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running") && is_state(&t, "once", "running")));
    cr_assert(fake_exit(t.f, "once", 0, 0));
    cr_expect_str_eq(state_of(&t, "once"), "completed");

    held_calls = 0;
    hold(W(&t, "app"));
    cr_assert(RT_UNTIL(&t, 2000, held_calls == 1), "the hold took effect: %s", t.f->oplog);
    cr_expect_not(held_with_instance);
    long stop = fake_pos(t.f, "stop app"), destroy = fake_pos(t.f, "destroy app");
    cr_expect(stop >= 0 && destroy > stop, "%s", t.f->oplog);
    rt_run(&t, 100);
    cr_expect_eq(fake_count(t.f, "create app"), 1, "nothing made while held: %s", t.f->oplog);
    cr_expect_eq(held_calls, 1);
    char *ev = events_of(&t, "app");
    cr_expect(strstr(ev, "stopping:for a test"), "%s", ev);
    free(ev);
    W(&t, "app")->hold = false;
    wl_reconcile(W(&t, "app"));
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    cr_expect_eq(fake_count(t.f, "create app"), 2);
    cr_expect_eq(W(&t, "app")->restarts, 0, "not a restart");

    hold(W(&t, "once"));
    cr_assert(RT_UNTIL(&t, 2000, held_calls == 2));
    cr_expect_eq(fake_count(t.f, "destroy once"), 1);
    W(&t, "once")->hold = false;
    wl_reconcile(W(&t, "once"));
    rt_run(&t, 100);
    cr_expect_str_eq(state_of(&t, "once"), "completed", "an ended workload stays ended");
    cr_expect_eq(fake_count(t.f, "create once"), 1);
    rt_finish(&t);
}

Test(reconcile, delete_during_a_slow_stop_stops_once_destroys_once_and_forgets)
{
    struct rt t;
    rt_init(&t, 0);
    apply1(&t, "app", "  restart: always\n");
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    t.f->stop_ms = 200;
    struct duet_err err = {0};
    cr_assert_eq(daemon_delete(&t.d, "app", false, &err), 0, "%s", err.msg);
    rt_run(&t, 50);
    cr_expect_str_eq(state_of(&t, "app"), "deleting");
    cr_assert_eq(daemon_delete(&t.d, "app", false, &err), 0, "a second delete: %s", err.msg);
    cr_assert(RT_UNTIL(&t, 2000, W(&t, "app") == NULL), "app is still %s", state_of(&t, "app"));
    cr_expect_eq(t.f->stops, 1);
    cr_expect_eq(t.f->destroys, 1);
    cr_expect_eq(t.f->creates, 1, "restart: always restarted a deleted workload: %s", t.f->oplog);
    cr_expect_eq(daemon_delete(&t.d, "app", false, &err), -1);
    cr_expect(strstr(err.msg, "no workload named"), "%s", err.msg);
    rt_finish(&t);
}

Test(reconcile, an_exit_reported_before_the_start_is_not_lost)
{
    struct rt t;
    rt_init(&t, 0);
    t.f->exit_before_started = true;
    apply1(&t, "job", "  restart: never\n");
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "job", "completed")), "job is %s", state_of(&t, "job"));
    rt_run(&t, 50);
    cr_expect_str_eq(state_of(&t, "job"), "completed");
    cr_expect(!W(&t, "job")->inst_running);
    cr_expect_eq(t.f->creates, 1);
    rt_finish(&t);
}

/* ---- dependencies ------------------------------------------------------------------- */

Test(reconcile, depends_on_waits_for_health_not_just_running)
{
    struct rt t;
    rt_init(&t, DRIVER_CAN_EXEC);
    t.f->exec_status = 1;   /* db's check fails until told otherwise */
    char *db = doc("db", "  healthcheck: {exec: [/bin/check], interval: 1s, timeout: 1s, retries: 1}\n");
    char *web = doc("web", "  dependsOn: [db]\n"), *all = NULL;
    cr_assert(asprintf(&all, "%s---\n%s", web, db) > 0);
    apply_text(&t, all);
    free(db), free(web), free(all);
    cr_assert(RT_UNTIL(&t, 2000, W(&t, "db")->phase == PH_RUNNING && t.f->execs >= 1));
    rt_run(&t, 300);
    cr_expect_eq(fake_count(t.f, "create web"), 0, "web started before db was healthy: %s", t.f->oplog);
    cr_expect_str_eq(state_of(&t, "web"), "pending");
    cr_expect(W(&t, "web")->message && strstr(W(&t, "web")->message, "waiting for db"), "%s",
              W(&t, "web")->message);
    t.f->exec_status = 0;
    cr_assert(RT_UNTIL(&t, 3000, is_state(&t, "web", "running")), "web is %s", state_of(&t, "web"));
    cr_expect_eq(W(&t, "db")->health, HEALTH_HEALTHY);
    cr_expect(fake_pos(t.f, "create db") < fake_pos(t.f, "create web"), "%s", t.f->oplog);
    rt_finish(&t);
}

/* healthcheck.startPeriod: failed checks within it do not count (no
 * unhealthy, no event); after it they do; startInterval sets the pace
 * until the first success. */
Test(reconcile, failed_checks_within_the_start_period_do_not_count)
{
    struct rt t;
    rt_init(&t, DRIVER_CAN_EXEC);
    t.f->exec_status = 1;
    apply1(&t, "slow", "  healthcheck: {exec: [/bin/check], interval: 5s, timeout: 1s, retries: 1, startPeriod: 1500ms, "
                       "startInterval: 100ms}\n");
    apply1(&t, "plain", "  healthcheck: {exec: [/bin/check], interval: 5s, timeout: 1s, retries: 1}\n");
    cr_assert(RT_UNTIL(&t, 2000, W(&t, "plain")->health == HEALTH_UNHEALTHY),
              "a container has no start period by default: its first failure counts");
    rt_run(&t, 600);
    struct wl *slow = W(&t, "slow");
    cr_expect_eq(slow->health, HEALTH_STARTING, "failures within the start period counted");
    cr_expect(slow->health_msg && strstr(slow->health_msg, "within its start period (1s): exit status 1"), "%s",
              slow->health_msg);
    char *ev = events_of(&t, "slow");
    cr_expect(!strstr(ev, "unhealthy"), "an event for a failure within the start period: %s", ev);
    free(ev);
    /* startInterval: checks every 100 ms, where the interval would be 1 s
     * until the first success; plain's checks are on their interval. */
    cr_expect_geq(t.f->execs, 5, "%u checks in the first 600 ms", t.f->execs);
    cr_assert(RT_UNTIL(&t, 3000, slow->health == HEALTH_UNHEALTHY), "the start period never ended");
    ev = events_of(&t, "slow");
    cr_expect(strstr(ev, "unhealthy:health check failed: exit status 1"), "%s", ev);
    free(ev);
    /* A success ends it: healthy, as without a start period. */
    t.f->exec_status = 0;
    cr_assert(RT_UNTIL(&t, 7000, slow->health == HEALTH_HEALTHY));
    rt_finish(&t);
}

Test(reconcile, a_vm_has_a_start_period_from_the_boots_measured_here)
{
    struct rt t;
    rt_init(&t, 0);
    struct workload_spec spec = {0};
    struct wl w = {.d = &t.d, .spec = &spec, .inst_backend = BACKEND_VM};
    /* Before any boot here: a minute under emulation, 20 s with KVM. */
    t.d.host.backend[BACKEND_VM].kvm = false;
    cr_expect_eq(health_start_period_ms(&w), 60000);
    t.d.host.backend[BACKEND_VM].kvm = true;
    cr_expect_eq(health_start_period_ms(&w), 20000);
    /* Then twice what VMs took, within 10 s and 10 min. */
    t.d.vm_ready_n = 3;
    t.d.vm_ready_ms = 14000;
    cr_expect_eq(health_start_period_ms(&w), 28000);
    t.d.vm_ready_ms = 1200;
    cr_expect_eq(health_start_period_ms(&w), 10000);
    t.d.vm_ready_ms = 900000;
    cr_expect_eq(health_start_period_ms(&w), 600000);
    /* The spec's own wins, 0 included; a container has none by default. */
    spec.health.start_period_set = true;
    spec.health.start_period_ms = 0;
    cr_expect_eq(health_start_period_ms(&w), 0);
    spec.health.start_period_ms = 4000;
    cr_expect_eq(health_start_period_ms(&w), 4000);
    spec.health.start_period_set = false;
    w.inst_backend = BACKEND_CONTAINER;
    cr_expect_eq(health_start_period_ms(&w), 0);
    rt_finish(&t);
}

/* ---- what a killed daemon left -------------------------------------------------------- */

/* A row as a daemon killed at `phase` left it. */
static void put_row(struct rt *t, const char *name, const char *extra, const char *phase, const char *handle,
                    bool deleted)
{
    char *y = doc(name, extra);
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "/srv/t.yaml", y, strlen(y));
    manifest_set_validate(set);
    cr_assert(manifest_set_ok(set));
    char *json = specjson_text(set->workloads[0]);
    struct store_row r = {
        .name = name, .generation = 1, .spec = json, .backend = "container",
        .placement = "{\"backend\":\"container\",\"reasons\":[],\"ruled_out\":{},\"start_order\":0}",
        .deleted = deleted, .phase = phase, .inst_backend = "container", .inst_generation = 1, .handle = handle,
        .last_exit = -1,
    };
    struct duet_err err = {0};
    cr_assert_eq(store_put(t->d.store, &r, &err), 0, "%s", err.msg);
    free(json);
    free(y);
    manifest_set_free(set);
}

/* The store as a killed daemon left it, and a new daemon on it. */
static void rt_restart_after(struct rt *t, unsigned flags, enum fake_recover as, int exit_code)
{
    rt_close(t);
    rt_open(t, flags);
    t->f->recover_as = as;
    t->f->recover_exit = exit_code;
    struct duet_err err = {0};
    cr_assert_eq(daemon_load(&t->d, &err), 0, "%s", err.msg);
    daemon_reconcile_soon(&t->d);
}

Test(reconcile, recovery_reattaches_a_running_instance_and_creates_nothing)
{
    struct rt t;
    rt_init(&t, 0);
    put_row(&t, "app", NULL, "running", "fake-1", false);
    rt_restart_after(&t, 0, FAKE_RECOVER_RUNNING, 0);
    rt_run(&t, 50);
    cr_expect_str_eq(state_of(&t, "app"), "running");
    cr_expect_eq(t.f->recovers, 1);
    cr_expect_eq(t.f->creates, 0, "%s", t.f->oplog);
    rt_finish(&t);
}

Test(reconcile, recovery_of_a_start_cut_short_before_its_handle)
{
    /* A driver that can find an instance by its workload alone looks;
     * nothing there: created again, and no restart is counted. */
    struct rt t;
    rt_init(&t, 0);
    put_row(&t, "app", NULL, "creating", NULL, false);
    rt_restart_after(&t, DRIVER_RECOVER_WITHOUT_HANDLE, FAKE_RECOVER_GONE, 0);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")), "app is %s", state_of(&t, "app"));
    cr_expect_eq(t.f->recovers, 1);
    cr_expect_eq(t.f->creates, 1);
    cr_expect_eq(W(&t, "app")->restarts, 0);
    rt_finish(&t);
    /* A driver that cannot does not look: created again all the same. */
    rt_init(&t, 0);
    put_row(&t, "app", NULL, "creating", NULL, false);
    rt_restart_after(&t, 0, FAKE_RECOVER_RUNNING, 0);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")), "app is %s", state_of(&t, "app"));
    cr_expect_eq(t.f->recovers, 0);
    cr_expect_eq(t.f->creates, 1);
    rt_finish(&t);
}

Test(reconcile, recovery_of_an_interrupted_start_that_cannot_be_trusted_destroys_and_starts_again)
{
    struct rt t;
    rt_init(&t, 0);
    put_row(&t, "vmish", NULL, "starting", "fake-1", false);
    rt_restart_after(&t, DRIVER_RESTART_INTERRUPTED_START, FAKE_RECOVER_RUNNING, 0);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "vmish", "running") && t.f->creates == 1), "vmish is %s: %s",
              state_of(&t, "vmish"), t.f->oplog);
    long destroy = fake_pos(t.f, "destroy vmish"), create = fake_pos(t.f, "create vmish");
    cr_expect(destroy >= 0 && create > destroy, "%s", t.f->oplog);
    char *ev = events_of(&t, "vmish");
    cr_expect(strstr(ev, "interrupted:"), "%s", ev);
    free(ev);
    rt_finish(&t);
}

Test(reconcile, recovery_learns_an_exit_that_happened_while_no_daemon_ran)
{
    struct rt t;
    rt_init(&t, 0);
    put_row(&t, "job", "  restart: never\n", "running", "fake-1", false);
    put_row(&t, "svc", "  restart: always\n", "running", "fake-2", false);
    rt_restart_after(&t, 0, FAKE_RECOVER_EXITED, 7);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "job", "failed") && is_state(&t, "svc", "running") &&
                                     t.f->creates == 1),
              "job %s, svc %s: %s", state_of(&t, "job"), state_of(&t, "svc"), t.f->oplog);
    cr_expect_eq(W(&t, "job")->last_exit, 7);
    cr_expect_eq(fake_count(t.f, "create svc"), 1, "%s", t.f->oplog);
    cr_expect_eq(fake_count(t.f, "create job"), 0, "%s", t.f->oplog);
    rt_finish(&t);
}

Test(reconcile, recovery_finishes_a_delete_the_killed_daemon_began)
{
    struct rt t;
    rt_init(&t, 0);
    put_row(&t, "gone", NULL, "stopping", "fake-1", true);
    rt_restart_after(&t, 0, FAKE_RECOVER_RUNNING, 0);
    cr_assert(RT_UNTIL(&t, 2000, W(&t, "gone") == NULL), "gone is %s: %s", state_of(&t, "gone"), t.f->oplog);
    cr_expect_eq(t.f->stops, 1);
    cr_expect_eq(t.f->destroys, 1);
    cr_expect_eq(t.f->creates, 0);
    /* and its row is gone from the store: a third daemon finds nothing */
    rt_restart_after(&t, 0, FAKE_RECOVER_RUNNING, 0);
    cr_expect_eq(t.d.wls.len, 0);
    rt_finish(&t);
}

/* ---- a kept disk (DRIVER_KEEPS_DISK) ---------------------------------------- */

static enum apply_status apply_with(struct rt *t, const char *name, const char *extra, char *const *recreate,
                                    size_t n_recreate, char *line, size_t len)
{
    char *y = doc(name, extra);
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "/srv/t.yaml", y, strlen(y));
    free(y);
    struct apply_opts o = {.recreate = recreate, .n_recreate = n_recreate};
    struct apply_result r;
    daemon_apply(&t->d, set, &o, &r);
    snprintf(line, len, "%s", r.n_lines ? r.lines[0] : r.error);
    enum apply_status st = r.status;
    apply_result_free(&r);
    return st;
}

/* The disk a backend keeps goes only when the user says: a changed spec
 * that keeps the image keeps it, a changed size is refused until
 * --recreate, which purges it between the old instance's destroy and the
 * new one's create; the record survives a daemon restart; a delete
 * purges everything. */
Test(reconcile, a_kept_disk_is_reset_only_when_asked_and_purged_with_the_workload)
{
    struct rt t;
    rt_init(&t, DRIVER_KEEPS_DISK);
    char line[DUETD_MESSAGE_MAX];
    apply1(&t, "app", NULL);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    cr_assert(W(&t, "app")->disk);
    cr_expect_str_eq(W(&t, "app")->disk, "rootfs /srv/rootfs, 10 GiB");
    apply1(&t, "app", "  env: {V: \"2\"}\n");
    cr_assert(RT_UNTIL(&t, 2000, W(&t, "app")->inst_gen == 2 && is_state(&t, "app", "running")));
    cr_expect_eq(fake_count(t.f, "purge-disk app"), 0, "%s", t.f->oplog);

    static const char bigger[] = "  env: {V: \"2\"}\n  resources: {memory: 16Mi, disk: 2Gi}\n";
    cr_expect_eq(apply_with(&t, "app", bigger, NULL, 0, line, sizeof(line)), APPLY_DISK_RESET);
    cr_expect(strstr(line, "/srv/t.yaml:3:") && strstr(line, "was made from rootfs /srv/rootfs, 10 GiB") &&
                  strstr(line, "now says rootfs /srv/rootfs, 2 GiB") && strstr(line, "--recreate app"),
              "%s", line);
    cr_expect_eq(W(&t, "app")->gen, 2, "a refused apply changed the workload");
    char *none[] = {"other"};
    cr_expect_eq(apply_with(&t, "app", bigger, none, 1, line, sizeof(line)), APPLY_DISK_RESET);
    cr_expect(strstr(line, "--recreate other: no workload of that name"), "%s", line);

    char *app[] = {"app"};
    cr_assert_eq(apply_with(&t, "app", bigger, app, 1, line, sizeof(line)), APPLY_OK, "%s", line);
    cr_assert(RT_UNTIL(&t, 2000, W(&t, "app")->inst_gen == 3 && is_state(&t, "app", "running")));
    cr_expect_eq(fake_count(t.f, "purge-disk app"), 1, "%s", t.f->oplog);
    long purge = fake_pos(t.f, "purge-disk app");
    cr_expect(purge > fake_pos(t.f, "destroy app") && strstr(t.f->oplog + purge, "create app"),
              "not purged between the destroy and the create: %s", t.f->oplog);
    cr_expect_str_eq(W(&t, "app")->disk, "rootfs /srv/rootfs, 2 GiB");
    cr_expect(!W(&t, "app")->disk_reset);
    char *ev = events_of(&t, "app");
    cr_expect(strstr(ev, "its disk was reset (apply --recreate)"), "%s", ev);
    free(ev);

    /* What the disk was made from is in the store. */
    rt_restart_after(&t, DRIVER_KEEPS_DISK, FAKE_RECOVER_RUNNING, 0);
    rt_run(&t, 20);
    cr_assert(W(&t, "app") && W(&t, "app")->disk);
    cr_expect_str_eq(W(&t, "app")->disk, "rootfs /srv/rootfs, 2 GiB");
    cr_expect_eq(apply_with(&t, "app", "  env: {V: \"3\"}\n", NULL, 0, line, sizeof(line)), APPLY_DISK_RESET,
                 "a smaller disk was not refused after a restart");

    struct duet_err err = {0};
    cr_assert_eq(daemon_delete(&t.d, "app", false, &err), 0, "%s", err.msg);
    cr_assert(RT_UNTIL(&t, 2000, W(&t, "app") == NULL));
    long all = fake_pos(t.f, "purge-all app");
    cr_expect(all >= 0 && all > fake_pos(t.f, "destroy app"), "not purged after the last destroy: %s", t.f->oplog);
    rt_finish(&t);
}

/* A reset asked for survives the daemon's end before it was done: the
 * flag is written with the apply, and the next daemon purges first. */
Test(reconcile, a_reset_asked_before_a_daemon_restart_is_done_by_the_next)
{
    struct rt t;
    rt_init(&t, DRIVER_KEEPS_DISK);
    char line[DUETD_MESSAGE_MAX];
    apply1(&t, "app", NULL);
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    char *app[] = {"app"};
    /* The daemon ends right after the apply's commit, before any step. */
    cr_assert_eq(apply_with(&t, "app", NULL, app, 1, line, sizeof(line)), APPLY_OK, "%s", line);
    cr_expect_eq(fake_count(t.f, "purge-disk app"), 0, "%s", t.f->oplog);
    rt_restart_after(&t, DRIVER_KEEPS_DISK, FAKE_RECOVER_RUNNING, 0);
    cr_assert(W(&t, "app")->disk_reset, "the reset was not in the store");
    cr_assert(RT_UNTIL(&t, 2000, W(&t, "app")->inst_gen == 2 && is_state(&t, "app", "running")));
    cr_expect_eq(fake_count(t.f, "purge-disk app"), 1, "%s", t.f->oplog);
    cr_expect(!W(&t, "app")->disk_reset);
    rt_finish(&t);
}

/* A restore begun (written first) by a daemon killed before its copy:
 * the next daemon holds the workload, restores, and only then runs it. */
Test(reconcile, a_restore_cut_short_is_done_again_by_the_next_daemon)
{
    struct rt t;
    rt_init(&t, 0);
    struct duet_err err = {0};
    /* volume v held "then" when snapshot s1 was taken; it holds "now" */
    char vroot[128], file[192], snaps[128], dir[256], vdir[320];
    snprintf(vroot, sizeof(vroot), "%s/volumes", t.dir);
    cr_assert_eq(volume_prepare(vroot, "v", 0, 0, 0, &err), 0, "%s", err.msg);
    snprintf(file, sizeof(file), "%s/v/data/f", vroot);
    FILE *f = fopen(file, "we");
    fputs("then\n", f);
    fclose(f);
    snprintf(snaps, sizeof(snaps), "%s/snapshots", t.dir);
    cr_assert_eq(snapshot_begin(snaps, "app", "s1", dir, sizeof(dir), &err), 0, "%s", err.msg);
    snprintf(vdir, sizeof(vdir), "%s/volumes", dir);
    cr_assert_eq(mkdir(vdir, 0700), 0);
    snprintf(vdir, sizeof(vdir), "%s/volumes/v", dir);
    cr_assert_eq(volume_save(vroot, "v", vdir, &err), 0, "%s", err.msg);
    json_t *meta = json_pack("{s:s,s:s,s:I,s:n,s:[{s:s,s:n}]}", "workload", "app", "name", "s1", "created_at",
                             (json_int_t)1, "disk", "volumes", "name", "v", "size");
    cr_assert_eq(snapshot_commit(snaps, "app", "s1", dir, meta, &err), 0, "%s", err.msg);
    json_decref(meta);
    f = fopen(file, "we");
    fputs("now\n", f);
    fclose(f);

    apply1(&t, "app", "  volumes: [{name: v, target: /v}]\n");
    cr_assert(RT_UNTIL(&t, 2000, is_state(&t, "app", "running")));
    struct wl *w = W(&t, "app");
    w->restore_from = strdup("s1");
    cr_assert_eq(wl_save(w), 0);
    rt_restart_after(&t, 0, FAKE_RECOVER_RUNNING, 0);
    daemon_snapshots_resume(&t.d);
    cr_assert(RT_UNTIL(&t, 5000, W(&t, "app")->restore_from == NULL && is_state(&t, "app", "running")),
              "state %s: %s", state_of(&t, "app"), t.f->oplog);
    char got[16] = "";
    f = fopen(file, "re");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(got, sizeof(got), f));
    fclose(f);
    cr_expect_str_eq(got, "then\n", "the restore was done");
    long destroy = fake_pos(t.f, "destroy app"), create = fake_pos(t.f, "create app");
    cr_expect(destroy >= 0 && create > destroy, "held (destroyed) first, then made anew: %s", t.f->oplog);
    char *ev = events_of(&t, "app");
    cr_expect(strstr(ev, "the restore from snapshot s1 was cut short") && strstr(ev, "restored from snapshot s1"),
              "%s", ev);
    free(ev);
    rt_finish(&t);
}
