/*
 * The container backend through backends/driver.h on a real libuv loop:
 * callbacks in order, exits without polling, and a loop that keeps running
 * while a stop waits out its grace period.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "backends/container/container.h"
#include "common/fsutil.h"
#include "tests/vm/leftovers.h"
#include "backends/container/runtime.h"

struct run {
    uv_loop_t loop;
    struct driver *drv;
    struct driver_instance *inst;
    struct manifest_set *set;
    char state[64];
    char log[4096];   /* what happened, in order */
    int exit_code, exit_signal, ticks, exec_status;
    bool failed;
    char err[600];
};

static void note(struct run *r, const char *what)
{
    strncat(r->log, what, sizeof(r->log) - strlen(r->log) - 1);
    strncat(r->log, " ", sizeof(r->log) - strlen(r->log) - 1);
}

static void setup_with(struct run *r, const char *body, bool userns);

static void setup(struct run *r, const char *body)
{
    setup_with(r, body, false);
}

static void setup_with(struct run *r, const char *body, bool userns)
{
    memset(r, 0, sizeof(*r));
    cr_assert_eq(uv_loop_init(&r->loop), 0);
    snprintf(r->state, sizeof(r->state), "/tmp/duet-drv-XXXXXX");
    cr_assert_not_null(mkdtemp(r->state));
    r->drv = container_driver_new(getenv("DUET_INIT"), NULL);
    if (userns)
        container_driver_set_userns(r->drv, 200000, 65536);
    struct duet_err err = {0};
    cr_assert_eq(r->drv->open(r->drv, &r->loop, r->state, &err), 0, "%s", err.msg);
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: drv}\nspec:\n"
                                 "  image: {rootfs: %s}\n%s",
             getenv("DUET_ROOTFS"), body);
    r->set = manifest_set_new();
    manifest_set_load_buffer(r->set, "t.yaml", yaml, strlen(yaml));
    manifest_set_validate(r->set);
    cr_assert(manifest_set_ok(r->set));
}

static void teardown(struct run *r)
{
    container_driver_free(r->drv);
    cr_expect_eq(uv_loop_close(&r->loop), 0, "every handle was closed");
    manifest_set_free(r->set);
    /* The runtime keeps its layer templates; its spares went with it. */
    cr_expect_eq(loop_devices_under(r->state, true, 2000), 0, "the driver's layers outlived it");
    char templates[128];
    snprintf(templates, sizeof(templates), "%s/.layers", r->state);
    duet_remove_tree(templates, NULL);
    /* and what it keeps of destroyed containers until a purge */
    snprintf(templates, sizeof(templates), "%s/.kept", r->state);
    duet_remove_tree(templates, NULL);
    cr_expect_eq(rmdir(r->state), 0, "the driver left files in %s", r->state);
}

static void on_err(struct run *r, const char *step, const struct duet_err *e)
{
    r->failed = true;
    snprintf(r->err, sizeof(r->err), "%s: %s", step, e->msg);
    uv_stop(&r->loop);
}

static void destroyed(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "destroy", e);
    note(r, "destroyed");
}

static void exited(void *opaque, const struct driver_status *st)
{
    struct run *r = opaque;
    note(r, "exited");
    r->exit_code = st->exit_code;
    r->exit_signal = st->term_signal;
    struct duet_err err;
    if (r->drv->destroy(r->drv, r->inst, destroyed, r, &err) < 0)
        on_err(r, "destroy", &err);
}

static void started(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "start", e);
    note(r, "started");
}

static void created(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "create", e);
    note(r, "created");
    struct duet_err err;
    if (r->drv->start(r->drv, r->inst, started, exited, r, &err) < 0)
        on_err(r, "start", &err);
}

TestSuite(driver, .timeout = 60);

Test(driver, create_start_exit_destroy_in_order)
{
    struct run r;
    setup(&r, "  command: [/bin/sh, -c, 'exit 3']\n");
    struct duet_err err = {0};
    cr_assert_eq(r.drv->create(r.drv, r.set->workloads[0], NULL, &r.inst, created, &r, &err), 0, "%s", err.msg);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    cr_assert_not(r.failed, "%s", r.err);
    cr_expect_str_eq(r.log, "created started exited destroyed ");
    cr_expect_eq(r.exit_code, 3);
    /* Its log outlives it (duet logs --previous), until purged. */
    int fd = -1, prev = -1;
    cr_expect_eq(r.drv->logs_previous(r.drv, "drv", &fd, &prev, &err), 0, "%s", err.msg);
    if (fd >= 0)
        close(fd);
    if (prev >= 0)
        close(prev);
    r.log[0] = '\0';
    cr_assert_eq(r.drv->purge(r.drv, "drv", DRIVER_KEPT_DISK | DRIVER_KEPT_LOGS, destroyed, &r, &err), 0, "%s",
                 err.msg);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    cr_expect_str_eq(r.log, "destroyed ", "the purge did not end");
    cr_expect_eq(r.drv->logs_previous(r.drv, "drv", &fd, &prev, &err), -1, "purged, yet a log is kept");
    char kept[128];
    snprintf(kept, sizeof(kept), "%s/.kept/drv", r.state);
    cr_expect_eq(access(kept, F_OK), -1, "%s is left after the purge", kept);
    teardown(&r);
}

Test(driver, userns_through_the_driver)
{
    struct run r;
    setup_with(&r, "  command: [/bin/sh, -c, 'test $(id -u) = 0 && grep -q \"0 *200000 *65536\" /proc/self/uid_map && exit 7']\n",
               true);
    struct duet_err err = {0};
    cr_assert_eq(r.drv->create(r.drv, r.set->workloads[0], NULL, &r.inst, created, &r, &err), 0, "%s", err.msg);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    cr_assert_not(r.failed, "%s", r.err);
    cr_expect_eq(r.exit_code, 7, "root inside, mapped to 200000 outside");
    teardown(&r);
}

static void tick(uv_timer_t *t)
{
    struct run *r = t->data;
    r->ticks++;
}

static void stopped(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "stop", e);
    note(r, "stopped");
}

/* Stops the workload once its log says it ignores SIGTERM. */
static uv_timer_t ready_timer;

static void check_ready(uv_timer_t *t)
{
    struct run *r = t->data;
    int fd;
    struct duet_err err;
    char buf[64] = "";
    if (r->drv->logs(r->drv, r->inst, &fd, NULL, &err) == 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        buf[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    if (!strstr(buf, "ready"))
        return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    r->ticks = 0;
    if (r->drv->stop(r->drv, r->inst, 1000, stopped, r, &err) < 0)
        on_err(r, "stop", &err);
}

static void started_then_stop(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "start", e);
    note(r, "started");
    uv_timer_init(&r->loop, &ready_timer);
    ready_timer.data = r;
    uv_timer_start(&ready_timer, check_ready, 10, 10);
}

static void created_then_start_stop(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "create", e);
    struct duet_err err;
    if (r->drv->start(r->drv, r->inst, started_then_stop, exited, r, &err) < 0)
        on_err(r, "start", &err);
}

static void close_timer(uv_handle_t *h)
{
    (void)h;
}

Test(driver, the_loop_runs_while_a_stop_waits)
{
    struct run r;
    setup(&r, "  command: [/bin/sh, -c, 'trap \"\" TERM; echo ready; while :; do sleep 0.1; done']\n");
    uv_timer_t t;
    uv_timer_init(&r.loop, &t);
    t.data = &r;
    uv_timer_start(&t, tick, 50, 50);
    uv_unref((uv_handle_t *)&t);
    struct duet_err err = {0};
    cr_assert_eq(r.drv->create(r.drv, r.set->workloads[0], NULL, &r.inst, created_then_start_stop, &r, &err), 0, "%s",
                 err.msg);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    cr_assert_not(r.failed, "%s", r.err);
    cr_expect(strstr(r.log, "started") && strstr(r.log, "exited") && strstr(r.log, "destroyed"), "%s", r.log);
    cr_expect_eq(r.exit_signal, SIGKILL, "TERM ignored: killed after the grace period");
    cr_expect_geq(r.ticks, 15, "the timer kept firing during the 1 s grace period (%d ticks)", r.ticks);
    uv_close((uv_handle_t *)&t, close_timer);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    teardown(&r);
}

static void exec_done(void *opaque, int status)
{
    struct run *r = opaque;
    r->exec_status = status;
    note(r, "exec-done");
    struct duet_err err;
    if (r->drv->stop(r->drv, r->inst, 2000, NULL, r, &err) < 0)
        on_err(r, "stop", &err);
}

static int exec_fd;

static void started_then_exec(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "start", e);
    static const char *const argv[] = {"/bin/sh", "-c", "echo inside $(hostname); exit 4", NULL};
    struct duet_err err;
    if (r->drv->exec(r->drv, r->inst, argv, exec_fd, exec_fd, 0, exec_done, r, &err) < 0)
        on_err(r, "exec", &err);
}

static void created_then_exec(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "create", e);
    struct duet_err err;
    if (r->drv->start(r->drv, r->inst, started_then_exec, exited, r, &err) < 0)
        on_err(r, "start", &err);
}

Test(driver, exec_stats_logs_and_handle)
{
    struct run r;
    setup(&r, "  command: [/bin/sh, -c, 'echo booted; exec sleep 30']\n");
    char out[] = "/tmp/duet-drv-exec-XXXXXX";
    exec_fd = mkstemp(out);
    cr_assert_geq(exec_fd, 0);
    struct duet_err err = {0};
    cr_assert_eq(r.drv->create(r.drv, r.set->workloads[0], NULL, &r.inst, created_then_exec, &r, &err), 0, "%s", err.msg);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    cr_assert_not(r.failed, "%s", r.err);
    cr_expect_eq(r.exec_status, 4);
    char buf[256] = "";
    ssize_t n = pread(exec_fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    cr_expect_str_eq(buf, "inside drv\n");
    close(exec_fd);
    unlink(out);
    teardown(&r);
}

/* recover: a first "daemon" starts the workload and shuts down (release);
 * a second one re-attaches through the handle and gets the exit. */
static char handle[DRIVER_HANDLE_MAX];

static void first_started(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "start", e);
    struct duet_err err;
    cr_assert_eq(r->drv->handle(r->drv, r->inst, handle, &err), 0, "%s", err.msg);
    struct driver_stats st;
    cr_expect_eq(r->drv->stats(r->drv, r->inst, &st, &err), 0, "%s", err.msg);
    cr_expect_geq(st.pids, 1);
    cr_expect_eq(st.disk_limit, WL_DEFAULT_DISK, "the writable layer's bound is resources.disk's default");
    cr_expect(st.disk_bytes > 0 && st.disk_bytes < (64ull << 20), "the layer holds %llu bytes",
              (unsigned long long)st.disk_bytes);
    int fd;
    cr_expect_eq(r->drv->logs(r->drv, r->inst, &fd, NULL, &err), 0, "%s", err.msg);
    close(fd);
    r->drv->release(r->drv, r->inst);
    note(r, "released");
}

static void first_created(void *opaque, const struct duet_err *e)
{
    struct run *r = opaque;
    if (e)
        return on_err(r, "create", e);
    struct duet_err err;
    if (r->drv->start(r->drv, r->inst, first_started, exited, r, &err) < 0)
        on_err(r, "start", &err);
}

Test(driver, recover_through_the_handle)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct run r;
    setup(&r, "  command: [/bin/sh, -c, 'sleep 1; exit 6']\n");
    struct duet_err err = {0};
    cr_assert_eq(r.drv->create(r.drv, r.set->workloads[0], NULL, &r.inst, first_created, &r, &err), 0, "%s", err.msg);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    cr_assert_not(r.failed, "%s", r.err);
    cr_expect_str_eq(r.log, "released ");
    /* the second daemon */
    container_driver_free(r.drv);
    r.drv = container_driver_new(getenv("DUET_INIT"), NULL);
    cr_assert_eq(r.drv->open(r.drv, &r.loop, r.state, &err), 0, "%s", err.msg);
    cr_expect_eq(r.drv->recover(r.drv, r.set->workloads[0], "1 1", NULL, &r.inst, exited, &r, &err), -1,
                 "a handle for another process is refused");
    cr_expect(strstr(err.msg, "does not match"), "%s", err.msg);
    cr_assert_eq(r.drv->recover(r.drv, r.set->workloads[0], handle, NULL, &r.inst, exited, &r, &err), 0, "%s", err.msg);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    cr_assert_not(r.failed, "%s", r.err);
    cr_expect_eq(r.exit_code, 6, "the exit after the restart reached the new daemon");
    cr_expect(strstr(r.log, "exited destroyed"), "%s", r.log);
    teardown(&r);
}

Test(driver, probe_through_the_table)
{
    struct driver *drv = container_driver_new("/nonexistent", NULL);
    struct driver_caps caps;
    struct duet_err err = {0};
    cr_assert_eq(drv->probe(drv, &caps, &err), 0);
    cr_expect(caps.available, "%s", caps.unavailable_reason);
    cr_expect_eq(drv->kind, BACKEND_CONTAINER);
    cr_expect_str_eq(drv->name, "container");
    uv_loop_t loop;
    uv_loop_init(&loop);
    cr_expect_eq(drv->open(drv, &loop, "/tmp/duet-drv-never", &err), -1);
    cr_expect(strstr(err.msg, "cannot open duet-init at /nonexistent"), "%s", err.msg);
    rmdir("/tmp/duet-drv-never");
    container_driver_free(drv);
    uv_loop_close(&loop);
}

/* pause: a frozen container runs no instruction (its log stops growing),
 * and once let go it goes on where it was. */
struct pause_run {
    struct run r;
    uv_timer_t t;
    int step;
    off_t size_at_pause, size_later, size_resumed;
};

static off_t log_size(struct run *r)
{
    int fd;
    struct duet_err err;
    if (r->drv->logs(r->drv, r->inst, &fd, NULL, &err) < 0)
        return -1;
    struct stat st;
    off_t n = fstat(fd, &st) == 0 ? st.st_size : -1;
    close(fd);
    return n;
}

static void pause_done(void *opaque, const struct duet_err *e);

static void pause_tick(uv_timer_t *t)
{
    struct pause_run *p = t->data;
    struct run *r = &p->r;
    struct duet_err err;
    if (p->step == 1) {          /* frozen for 500 ms */
        p->size_later = log_size(r);
        note(r, "resume");
        if (r->drv->pause(r->drv, r->inst, false, pause_done, p, &err) < 0)
            on_err(r, "resume", &err);
    } else if (p->step == 2) {   /* running again for 500 ms */
        p->size_resumed = log_size(r);
        uv_close((uv_handle_t *)&p->t, NULL);
        if (r->drv->stop(r->drv, r->inst, 2000, NULL, r, &err) < 0)
            on_err(r, "stop", &err);
    }
}

static void pause_done(void *opaque, const struct duet_err *e)
{
    struct pause_run *p = opaque;
    if (e)
        return on_err(&p->r, p->step ? "resume" : "pause", e);
    if (p->step++ == 0)
        p->size_at_pause = log_size(&p->r);
    uv_timer_start(&p->t, pause_tick, 500, 0);
}

static void started_then_pause(void *opaque, const struct duet_err *e)
{
    struct pause_run *p = opaque;
    if (e)
        return on_err(&p->r, "start", e);
    uv_timer_init(&p->r.loop, &p->t);
    p->t.data = p;
    /* let it print for a while first */
    usleep(300000);
    struct duet_err err;
    note(&p->r, "pause");
    if (p->r.drv->pause(p->r.drv, p->r.inst, true, pause_done, p, &err) < 0)
        on_err(&p->r, "pause", &err);
}

static void created_then_pause(void *opaque, const struct duet_err *e)
{
    struct pause_run *p = opaque;
    if (e)
        return on_err(&p->r, "create", e);
    struct duet_err err;
    if (p->r.drv->start(p->r.drv, p->r.inst, started_then_pause, exited, &p->r, &err) < 0)
        on_err(&p->r, "start", &err);
}

Test(driver, a_paused_container_runs_nothing_until_let_go)
{
    struct pause_run p = {0};
    setup(&p.r, "  command: [/bin/sh, -c, 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.02; done']\n");
    struct duet_err err = {0};
    cr_assert_eq(p.r.drv->create(p.r.drv, p.r.set->workloads[0], NULL, &p.r.inst, created_then_pause, &p, &err), 0,
                 "%s", err.msg);
    uv_run(&p.r.loop, UV_RUN_DEFAULT);
    cr_assert_not(p.r.failed, "%s", p.r.err);
    cr_expect(strstr(p.r.log, "pause") && strstr(p.r.log, "resume") && strstr(p.r.log, "destroyed"), "%s", p.r.log);
    cr_expect_gt(p.size_at_pause, 0, "it printed before the pause");
    cr_expect_eq(p.size_later, p.size_at_pause, "it printed while paused (%lld bytes, then %lld)",
                 (long long)p.size_at_pause, (long long)p.size_later);
    cr_expect_gt(p.size_resumed, p.size_later, "it did not go on once let go");
    cr_expect_eq(p.r.exit_signal, SIGTERM, "it was stopped as usual after the pause");
    teardown(&p.r);
}
