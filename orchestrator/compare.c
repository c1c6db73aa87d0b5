/*
 * compare.c - duet compare (compare.h, docs/compare.md).
 *
 * A job is a small state machine driven by one timer on the loop: every
 * few milliseconds it looks at its temporary workloads (which the
 * reconciler runs as it runs any other) and takes its next step.  Looking
 * rather than being told keeps the reconciler free of compare's concerns;
 * the price is the tick's granularity in the start times (COMPARE_TICK_MS,
 * small beside any start).
 *
 *   START -> WAIT_READY -> (another run: WAIT_GONE -> START) -> next side
 *   -> IDLE (both sides at once) -> PROBE (each side in turn) -> REMOVE -> end
 *
 * The HTTP and TCP probes run on the thread pool (compare_probe.c), an
 * exec probe through the driver's exec like a health check.  Whatever
 * ends the job early (the client gone, a side failing, the daemon
 * stopping) goes through REMOVE, so nothing of it is left running.
 */
#include "orchestrator/compare.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifests/specjson.h"
#include "orchestrator/compare_probe.h"
#include "orchestrator/daemon.h"
#include "scheduler/placement.h"

#define COMPARE_TICK_MS 5
#define COMPARE_GONE_TIMEOUT_MS 180000
#define COMPARE_EXEC_TIMEOUT_MS 60000

enum step { ST_START, ST_WAIT_READY, ST_WAIT_GONE, ST_IDLE, ST_PROBE, ST_PROBING, ST_REMOVE, ST_END };

struct side {
    enum backend_kind k;
    char name[64];
    char *text;                    /* the temporary's spec, canonical JSON */
    bool possible;                 /* it could be placed this way */
    bool up;                       /* its last instance runs (kept for idle and probe) */
    char why[1024];                /* !possible: why; failed: what happened */
    bool failed;
    uint64_t start_ms[COMPARE_MAX_RUNS];
    unsigned n_start;
    uint64_t t0;                   /* mono ms of this run's create */
    /* idle */
    bool have0, have1;
    struct driver_stats s0, s1;
    uint64_t at0, at1;
    uint64_t mem_probe;            /* the most seen while the probe ran */
    /* probe */
    bool probed;
    struct probe_result pr;
    uint64_t exec_ms[COMPARE_EXEC_RUNS];
    unsigned n_exec;
    int exec_status;
    char probe_err[300];
    bool exec_supported;
    char exec_why[280];
    uint32_t addr;
};

struct compare_job {
    struct daemon *d;
    struct compare_job *next;
    char of[64];
    struct compare_opts o;
    char **argv;                   /* o.exec's copy */
    uint64_t start_within_ms;
    bool has_ports;
    uint16_t first_port;
    json_t *plan;                  /* {"backend", "reasons", ...} */
    json_t *notes;
    struct side side[BACKEND_COUNT];
    int cur;                       /* the side being started or probed */
    unsigned run;
    enum step step;
    uint64_t step_t0;
    uv_timer_t tick;
    bool closing;
    /* the pool probe */
    uv_work_t work;
    bool work_busy;
    atomic_bool cancel;
    struct probe_http http;
    /* an exec probe in flight, NULL: none */
    struct exec_ticket *exec;
    uint64_t exec_t0;
    int devnull;
    compare_progress_fn progress;
    compare_done_fn done;
    void *opaque;                  /* NULL once abandoned */
    struct duet_err failure;       /* why the job ends early, "" when it did not */
};

static const enum backend_kind order[BACKEND_COUNT] = {BACKEND_CONTAINER, BACKEND_VM};

static void say(struct compare_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct compare_job *j, const char *fmt, ...)
{
    if (!j->opaque || !j->progress)
        return;
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    j->progress(j->opaque, line);
}

static void note(struct compare_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct compare_job *j, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    json_array_append_new(j->notes, json_string(line));
}

static void go(struct compare_job *j, enum step s)
{
    j->step = s;
    j->step_t0 = mono_ms();
}

static struct side *cur_side(struct compare_job *j)
{
    return &j->side[order[j->cur]];
}

static struct wl *side_wl(struct compare_job *j, const struct side *s)
{
    struct wl *w = daemon_wl_find(j->d, s->name);
    return w && w->temp_of && strcmp(w->temp_of, j->of) == 0 ? w : NULL;
}

/* ---- the temporary's spec ------------------------------------------------------ */

/* spec as it runs for the comparison on backend k: pinned there, ready as
 * its health check says, never restarted, sharing nothing with the live
 * workload. */
static char *temporary_text(const struct workload_spec *spec, enum backend_kind k, const char *name)
{
    json_t *doc = specjson_from_workload(spec);
    json_object_set_new(json_object_get(doc, "metadata"), "name", json_string(name));
    json_t *s = json_object_get(doc, "spec");
    json_object_set_new(s, "placement", json_string(backend_kind_name(k)));
    json_object_set_new(s, "restart", json_string("never"));
    json_object_del(s, "ports");
    json_object_del(s, "dependsOn");
    json_object_del(s, "volumes");
    json_object_del(json_object_get(s, "healthcheck"), "onUnhealthy");
    json_object_del(json_object_get(s, "image"), "keepDisk");
    char *t = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (!t)
        abort();
    return t;
}

/* ---- steps ------------------------------------------------------------------------ */

/* After a side's starts: the next side to start, else both idle. */
static void next_start(struct compare_job *j)
{
    for (j->cur++; j->cur < BACKEND_COUNT; j->cur++)
        if (cur_side(j)->possible && !cur_side(j)->failed)
            break;
    j->run = 0;
    if (j->cur < BACKEND_COUNT) {
        go(j, ST_START);
        return;
    }
    go(j, ST_IDLE);
    if (j->side[BACKEND_CONTAINER].up || j->side[BACKEND_VM].up)
        say(j, "idle for %" PRIu64 " s: CPU and memory", j->o.idle_ms / 1000);
}

/* After a side's probe (cur -1: after idle): the next side running, else
 * the end. */
static void next_probe(struct compare_job *j)
{
    for (j->cur++; j->cur < BACKEND_COUNT; j->cur++)
        if (cur_side(j)->up)
            break;
    go(j, j->cur < BACKEND_COUNT ? ST_PROBE : ST_REMOVE);
}

static void side_fail(struct compare_job *j, struct side *s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void side_fail(struct compare_job *j, struct side *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    s->failed = true;
    s->up = false;
    say(j, "%s: %s", backend_kind_name(s->k), s->why);
    struct duet_err err = {0};
    if (side_wl(j, s))
        daemon_delete(j->d, s->name, false, &err);
}

static void step_start(struct compare_job *j)
{
    struct side *s = cur_side(j);
    if (side_wl(j, s))
        return;   /* the last run's instance is still going */
    struct manifest_set *set = manifest_set_new();
    specjson_load(set, "(compare)", &s->text, 1);
    struct apply_result r;
    daemon_run_temporary(j->d, set, j->of, &r);
    if (r.status != APPLY_OK) {
        const char *why = r.n_lines ? r.lines[0] : r.unplaceable ? r.unplaceable[0].reason : r.error;
        /* "(compare):1:2: error: ..." says nothing of a file the user has */
        const char *e = strstr(why, ": error: ");
        if (r.status == APPLY_UNPLACEABLE || r.status == APPLY_INVALID) {
            /* It cannot run this way at all: a one-way comparison. */
            s->possible = false;
            snprintf(s->why, sizeof(s->why), "%.1000s", e ? e + 9 : why);
            /* "web-cmp-vm fits nowhere on this host: placement vm cannot
             * be honoured: REASON": the pin is compare's, the reason the
             * workload's. */
            static const char *const lead[] = {" fits nowhere on this host: ", "cannot be honoured: "};
            for (size_t i = 0; i < 2; i++) {
                const char *at = strstr(s->why, lead[i]);
                if (at)
                    memmove(s->why, at + strlen(lead[i]), strlen(at + strlen(lead[i])) + 1);
            }
            say(j, "%s: cannot run this way: %s", backend_kind_name(s->k), s->why);
        } else {
            side_fail(j, s, "could not be started: %s", e ? e + 9 : why);
        }
        apply_result_free(&r);
        next_start(j);
        return;
    }
    apply_result_free(&r);
    s->t0 = mono_ms();
    say(j, "%s: run %u of %u: starting %s", backend_kind_name(s->k), j->run + 1, j->o.runs, s->name);
    go(j, ST_WAIT_READY);
}

static void step_wait_ready(struct compare_job *j)
{
    struct side *s = cur_side(j);
    struct wl *w = side_wl(j, s);
    if (!w || w->deleted) {
        side_fail(j, s, "its temporary instance %s was deleted", s->name);
        next_start(j);
        return;
    }
    uint64_t now = mono_ms();
    if (wl_ready(w) && w->inst_running) {
        uint64_t ms = now - s->t0;
        s->start_ms[s->n_start++] = ms;
        s->addr = w->addr;
        say(j, "%s: run %u of %u: ready in %" PRIu64 ".%02" PRIu64 " s", backend_kind_name(s->k), j->run + 1,
            j->o.runs, ms / 1000, (ms % 1000) / 10);
        if (++j->run < j->o.runs) {
            struct duet_err err = {0};
            daemon_delete(j->d, s->name, false, &err);
            go(j, ST_WAIT_GONE);
            return;
        }
        s->up = true;
        next_start(j);
        return;
    }
    if (w->phase == PH_EXITED || w->phase == PH_BACKOFF) {
        char code[64] = "";
        if (w->last_signal)
            snprintf(code, sizeof(code), " (killed by signal %" PRId64 ")", w->last_signal);
        else if (w->last_exit >= 0)
            snprintf(code, sizeof(code), " (exit status %" PRId64 ")", w->last_exit);
        side_fail(j, s, "ended before it was ready%s%s%s", code, w->message ? ": " : "",
                  w->message ? w->message : "");
        next_start(j);
        return;
    }
    if (now - s->t0 > COMPARE_READY_TIMEOUT_MS) {
        side_fail(j, s, "not ready after %d s (state %s%s%s)", COMPARE_READY_TIMEOUT_MS / 1000, wl_state_name(w),
                  w->health_msg ? ", " : "", w->health_msg ? w->health_msg : "");
        next_start(j);
    }
}

static void step_wait_gone(struct compare_job *j)
{
    struct side *s = cur_side(j);
    if (!side_wl(j, s)) {
        go(j, ST_START);
        return;
    }
    if (mono_ms() - j->step_t0 > COMPARE_GONE_TIMEOUT_MS) {
        side_fail(j, s, "its temporary instance %s was not removed after %d s", s->name,
                  COMPARE_GONE_TIMEOUT_MS / 1000);
        next_start(j);
    }
}

/* The figures of a side's instance now (a VM's: the last sample). */
static bool side_stats(struct compare_job *j, struct side *s, struct driver_stats *st, uint64_t *at)
{
    struct wl *w = side_wl(j, s);
    return w && s->up && wl_stats(w, st, at);
}

static void step_idle(struct compare_job *j)
{
    uint64_t now = mono_ms();
    bool all = true;
    for (int k = 0; k < BACKEND_COUNT; k++) {
        struct side *s = &j->side[k];
        if (!s->up)
            continue;
        struct driver_stats st;
        uint64_t at;
        if (!side_stats(j, s, &st, &at)) {
            all = false;
            continue;
        }
        if (!s->have0) {
            s->have0 = true;
            s->s0 = st;
            s->at0 = at;
        } else if (at > s->at0) {
            s->have1 = true;
            s->s1 = st;
            s->at1 = at;
        }
        /* What the idle CPU is taken over: most of the idle time. */
        if (!s->have1 || s->at1 - s->at0 < j->o.idle_ms * 3 / 4)
            all = false;
    }
    /* A VM's figures come every DUETD_STATS_MS: wait for them, a while. */
    if ((now - j->step_t0 >= j->o.idle_ms && all) || now - j->step_t0 >= j->o.idle_ms + 3 * DUETD_STATS_MS) {
        j->cur = -1;
        next_probe(j);
    }
}

static void probe_work(uv_work_t *req)
{
    struct compare_job *j = req->data;
    struct side *s = cur_side(j);
    if (j->o.probe == COMPARE_PROBE_HTTP)
        probe_http_run(&j->http, &s->pr);
    else
        probe_tcp_run(j->http.addr, j->http.port, COMPARE_TCP_CONNECTS, &j->cancel, &s->pr);
}

static void probe_done(uv_work_t *req, int status)
{
    struct compare_job *j = req->data;
    (void)status;
    j->work_busy = false;
    struct side *s = cur_side(j);
    s->probed = true;
    if (s->pr.ok == 0)
        snprintf(s->probe_err, sizeof(s->probe_err), "no answer: %s",
                 s->pr.first_error[0] ? s->pr.first_error : "none came");
}

/* The driver's callback may come after the job ended (a command that
 * runs on past the compare): it finds the ticket, not the job. */
struct exec_ticket {
    struct compare_job *j;
};

static void on_exec_exited(void *opaque, int status);

static void exec_next(struct compare_job *j)
{
    struct side *s = cur_side(j);
    struct wl *w = side_wl(j, s);
    struct driver *drv = w && w->inst ? daemon_driver(j->d, w->inst_backend) : NULL;
    struct duet_err err = {0};
    struct exec_ticket *t = calloc(1, sizeof(*t));
    if (!t)
        abort();
    t->j = j;
    j->exec_t0 = mono_ms();
    j->exec = t;
    if (!drv || drv->exec(drv, w->inst, (const char *const *)j->argv, j->devnull, j->devnull, COMPARE_EXEC_TIMEOUT_MS,
                          on_exec_exited, t, &err) < 0) {
        j->exec = NULL;
        free(t);
        s->probed = true;
        snprintf(s->probe_err, sizeof(s->probe_err), "the command could not be run: %.250s",
                 err.msg[0] ? err.msg : "the instance is gone");
    }
}

static void on_exec_exited(void *opaque, int status)
{
    struct exec_ticket *t = opaque;
    struct compare_job *j = t->j;
    free(t);
    if (!j)
        return;
    j->exec = NULL;
    struct side *s = cur_side(j);
    s->exec_status = status;
    if (status != 0 || j->closing || atomic_load(&j->cancel)) {
        s->probed = true;
        if (status != 0)
            snprintf(s->probe_err, sizeof(s->probe_err), "the command %s", status < 0 ? "could not be run"
                                                                                      : "failed");
        if (status > 0 && status < 128)
            snprintf(s->probe_err, sizeof(s->probe_err), "the command ended with exit status %d", status);
        else if (status > 128)
            snprintf(s->probe_err, sizeof(s->probe_err), "the command was killed by signal %d", status - 128);
        return;
    }
    s->exec_ms[s->n_exec++] = mono_ms() - j->exec_t0;
    if (s->n_exec == COMPARE_EXEC_RUNS)
        s->probed = true;
    else
        exec_next(j);
}

static void step_probe(struct compare_job *j)
{
    struct side *s = cur_side(j);
    s->mem_probe = 0;
    if (j->o.probe == COMPARE_PROBE_NONE) {
        next_probe(j);
        return;
    }
    say(j, "%s: probing", backend_kind_name(s->k));
    if (j->o.probe == COMPARE_PROBE_EXEC) {
        if (!s->exec_supported) {
            s->probed = true;
            memcpy(s->probe_err, s->exec_why, sizeof(s->exec_why));
        } else {
            exec_next(j);
        }
        go(j, ST_PROBING);
        return;
    }
    if (!s->addr) {
        s->probed = true;
        snprintf(s->probe_err, sizeof(s->probe_err),
                 "it has no address on the fleet network (network: none), which the probe reaches it by");
        go(j, ST_PROBING);
        return;
    }
    j->http = (struct probe_http){.addr = s->addr, .port = j->o.port, .path = j->o.http_path,
                                  .concurrency = j->o.concurrency, .duration_ms = j->o.duration_ms,
                                  .cancel = &j->cancel};
    j->work.data = j;
    if (uv_queue_work(j->d->loop, &j->work, probe_work, probe_done) == 0)
        j->work_busy = true;
    else {
        s->probed = true;
        snprintf(s->probe_err, sizeof(s->probe_err), "the probe could not be started");
    }
    go(j, ST_PROBING);
}

static void step_probing(struct compare_job *j)
{
    struct side *s = cur_side(j);
    struct driver_stats st;
    uint64_t at;
    if (side_stats(j, s, &st, &at) && st.memory_bytes > s->mem_probe)
        s->mem_probe = st.memory_bytes;
    if (!s->probed || j->work_busy || j->exec)
        return;
    if (s->probe_err[0])
        say(j, "%s: probe: %s", backend_kind_name(s->k), s->probe_err);
    next_probe(j);
}

static bool any_left(struct compare_job *j)
{
    for (int k = 0; k < BACKEND_COUNT; k++)
        if (side_wl(j, &j->side[k]))
            return true;
    return false;
}

static void step_remove(struct compare_job *j)
{
    if (j->work_busy)
        return;   /* the probe sees the cancel and ends soon */
    if (j->exec) {
        j->exec->j = NULL;   /* its instance goes; the driver ends the command */
        j->exec = NULL;
    }
    if (j->o.keep) {
        for (int k = 0; k < BACKEND_COUNT; k++) {
            struct wl *w = side_wl(j, &j->side[k]);
            if (w && !w->deleted && !w->temp_kept) {
                w->temp_kept = true;
                wl_save(w);
            }
        }
        go(j, ST_END);
        return;
    }
    for (int k = 0; k < BACKEND_COUNT; k++) {
        struct wl *w = side_wl(j, &j->side[k]);
        struct duet_err err = {0};
        if (w && !w->deleted)
            daemon_delete(j->d, w->name, false, &err);
    }
    if (!any_left(j)) {
        go(j, ST_END);
        return;
    }
    if (mono_ms() - j->step_t0 > COMPARE_GONE_TIMEOUT_MS) {
        duet_err_set(&j->failure, ETIMEDOUT, "the temporary instances were not removed after %d s; see duet get",
                     COMPARE_GONE_TIMEOUT_MS / 1000);
        go(j, ST_END);
    }
}

/* ---- the result ------------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(const uint64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t s[COMPARE_MAX_RUNS > COMPARE_EXEC_RUNS ? COMPARE_MAX_RUNS : COMPARE_EXEC_RUNS];
    memcpy(s, v, n * sizeof(*v));
    qsort(s, n, sizeof(*s), cmp_u64);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static json_t *side_json(struct compare_job *j, struct side *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "possible", json_boolean(s->possible));
    if (!s->possible) {
        json_object_set_new(o, "reason", json_string(s->why));
        return o;
    }
    json_object_set_new(o, "name", json_string(s->name));
    if (s->failed)
        json_object_set_new(o, "error", json_string(s->why));
    if (s->n_start) {
        json_t *st = json_object(), *runs = json_array();
        uint64_t lo = UINT64_MAX, hi = 0;
        for (unsigned i = 0; i < s->n_start; i++) {
            json_array_append_new(runs, json_integer((json_int_t)s->start_ms[i]));
            lo = s->start_ms[i] < lo ? s->start_ms[i] : lo;
            hi = s->start_ms[i] > hi ? s->start_ms[i] : hi;
        }
        json_object_set_new(st, "median", json_integer((json_int_t)median(s->start_ms, s->n_start)));
        json_object_set_new(st, "min", json_integer((json_int_t)lo));
        json_object_set_new(st, "max", json_integer((json_int_t)hi));
        json_object_set_new(st, "runs", runs);
        json_object_set_new(o, "start_ms", st);
    }
    if (s->have1) {
        json_object_set_new(o, "memory_idle_bytes", json_integer((json_int_t)s->s1.memory_bytes));
        double secs = (double)(s->at1 - s->at0) / 1000.0;
        double cpu = s->s1.cpu_ns >= s->s0.cpu_ns ? (double)(s->s1.cpu_ns - s->s0.cpu_ns) / 1e9 / secs * 100.0 : 0;
        json_object_set_new(o, "cpu_idle_percent", json_real(round(cpu * 100) / 100));
        json_object_set_new(o, "idle_measured_ms", json_integer((json_int_t)(s->at1 - s->at0)));
        json_object_set_new(o, "disk_bytes", json_integer((json_int_t)s->s1.disk_bytes));
    }
    if (s->mem_probe)
        json_object_set_new(o, "memory_probe_bytes", json_integer((json_int_t)s->mem_probe));
    if (s->probed) {
        json_t *p = json_object();
        if (j->o.probe == COMPARE_PROBE_EXEC) {
            json_t *runs = json_array();
            for (unsigned i = 0; i < s->n_exec; i++)
                json_array_append_new(runs, json_integer((json_int_t)s->exec_ms[i]));
            json_object_set_new(p, "runs_ms", runs);
            if (s->n_exec)
                json_object_set_new(p, "median_ms", json_integer((json_int_t)median(s->exec_ms, s->n_exec)));
        } else if (s->pr.ok || s->pr.errors) {
            json_object_set_new(p, "ok", json_integer((json_int_t)s->pr.ok));
            json_object_set_new(p, "errors", json_integer((json_int_t)s->pr.errors));
            json_object_set_new(p, "per_second", json_real(round(s->pr.per_second * 10) / 10));
            json_object_set_new(p, "p50_ms", json_real((double)s->pr.p50_us / 1000.0));
            json_object_set_new(p, "p99_ms", json_real((double)s->pr.p99_us / 1000.0));
            if (s->pr.first_error[0])
                json_object_set_new(p, "first_error", json_string(s->pr.first_error));
        }
        if (s->probe_err[0])
            json_object_set_new(p, "error", json_string(s->probe_err));
        json_object_set_new(o, "probe", p);
    }
    json_t *c = json_object();
    bool vm = s->k == BACKEND_VM;
    json_object_set_new(c, "own_kernel", json_boolean(vm));
    json_object_set_new(c, "devices", json_boolean(vm));   /* needs.devices: passed through to VMs only */
    json_object_set_new(c, "syscall_filter", json_boolean(!vm));
    json_object_set_new(c, "exec", json_boolean(s->exec_supported));
    json_object_set_new(c, "live_volume_sharing",
                        json_boolean(!vm || (j->d->host.backend[BACKEND_VM].virtiofs &&
                                             j->d->host.backend[BACKEND_VM].guest_virtiofs)));
    if (j->start_within_ms && s->n_start)
        json_object_set_new(c, "start_within", json_boolean(median(s->start_ms, s->n_start) <= j->start_within_ms));
    json_object_set_new(o, "capabilities", c);
    return o;
}

static json_t *result_json(struct compare_job *j)
{
    json_t *r = json_object();
    json_object_set_new(r, "workload", json_string(j->of));
    json_object_set_new(r, "runs", json_integer(j->o.runs));
    json_object_set_new(r, "idle_ms", json_integer((json_int_t)j->o.idle_ms));
    json_t *p = json_null();
    if (j->o.probe == COMPARE_PROBE_HTTP || j->o.probe == COMPARE_PROBE_TCP) {
        p = json_object();
        json_object_set_new(p, "kind", json_string(j->o.probe == COMPARE_PROBE_HTTP ? "http" : "tcp"));
        if (j->o.probe == COMPARE_PROBE_HTTP) {
            json_object_set_new(p, "path", json_string(j->o.http_path));
            json_object_set_new(p, "concurrency", json_integer(j->o.concurrency));
            json_object_set_new(p, "duration_ms", json_integer((json_int_t)j->o.duration_ms));
        } else {
            json_object_set_new(p, "connects", json_integer(COMPARE_TCP_CONNECTS));
        }
        json_object_set_new(p, "port", json_integer(j->o.port));
    } else if (j->o.probe == COMPARE_PROBE_EXEC) {
        p = json_object();
        json_object_set_new(p, "kind", json_string("exec"));
        json_t *argv = json_array();
        for (char **a = j->argv; *a; a++)
            json_array_append_new(argv, json_string(*a));
        json_object_set_new(p, "command", argv);
        json_object_set_new(p, "runs", json_integer(COMPARE_EXEC_RUNS));
    }
    json_object_set_new(r, "probe", p);
    json_object_set(r, "plan", j->plan);
    json_t *sides = json_object();
    for (int i = 0; i < BACKEND_COUNT; i++)
        json_object_set_new(sides, backend_kind_name(order[i]), side_json(j, &j->side[order[i]]));
    json_object_set_new(r, "sides", sides);
    json_object_set_new(r, "verdict",
                        compare_verdict(sides, json_string_value(json_object_get(j->plan, "backend"))));
    json_t *kept = json_array();
    for (int i = 0; i < BACKEND_COUNT; i++) {
        struct wl *w = side_wl(j, &j->side[order[i]]);
        if (w && w->temp_kept)
            json_array_append_new(kept, json_string(w->name));
    }
    json_object_set_new(r, "kept", kept);
    json_object_set(r, "notes", j->notes);
    return r;
}

/* ---- the verdict ----------------------------------------------------------------------- */

struct figure {
    const char *key;               /* what it is in the text */
    const char *better;            /* the winner's phrase, with its ratio: "starts %.1fx faster" */
    double a, b;                   /* container, vm */
    bool higher_better;
    int weight;
    const char *unit;
};

static void fmt_value(char *buf, size_t len, double v, const char *unit)
{
    if (strcmp(unit, "s") == 0)
        snprintf(buf, len, "%.2f s", v / 1000.0);
    else if (strcmp(unit, "MiB") == 0)
        snprintf(buf, len, "%.1f MiB", v / 1048576.0);
    else if (strcmp(unit, "%") == 0)
        snprintf(buf, len, "%.1f%%", v);
    else if (strcmp(unit, "ms") == 0)
        snprintf(buf, len, "%.2f ms", v);
    else
        snprintf(buf, len, "%.0f %s", v, unit);
}

static double num(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    return json_is_number(v) ? json_number_value(v) : -1;
}

json_t *compare_verdict(json_t *sides, const char *plan_backend)
{
    json_t *c = json_object_get(sides, "container"), *v = json_object_get(sides, "vm");
    json_t *out = json_object(), *deciding = json_array();
    char text[2048];
    bool cp = json_is_true(json_object_get(c, "possible")) && !json_object_get(c, "error");
    bool vp = json_is_true(json_object_get(v, "possible")) && !json_object_get(v, "error");
    const char *best = NULL;
    if (!cp || !vp) {
        json_t *only = cp ? c : v, *other = cp ? v : c;
        const char *on = cp ? "container" : "vm", *off = cp ? "vm" : "container";
        const char *why = json_string_value(json_object_get(other, "reason"));
        if (!why)
            why = json_string_value(json_object_get(other, "error"));
        if (!cp && !vp) {
            snprintf(text, sizeof(text), "neither way ran here: container: %s; vm: %s",
                     json_string_value(json_object_get(c, json_object_get(c, "reason") ? "reason" : "error")),
                     json_string_value(json_object_get(v, json_object_get(v, "reason") ? "reason" : "error")));
        } else {
            best = on;
            snprintf(text, sizeof(text), "%s only: as a %s it %s: %s", on, off,
                     json_object_get(other, "reason") ? "cannot run" : "failed", why ? why : "");
        }
        (void)only;
    } else {
        struct figure f[] = {
            {"start to ready", "starts %.1fx faster", num(c, "start_ms", "median"), num(v, "start_ms", "median"),
             false, 1, "s"},
            {"memory at idle", "needs %.1fx less memory at idle", num(c, "memory_idle_bytes", NULL),
             num(v, "memory_idle_bytes", NULL), false, 1, "MiB"},
            {"CPU while idle", "uses %.1fx less CPU while idle", num(c, "cpu_idle_percent", NULL),
             num(v, "cpu_idle_percent", NULL), false, 1, "%"},
            {"requests/s", "serves %.1fx the requests/s", num(c, "probe", "per_second"),
             num(v, "probe", "per_second"), true, 2, "/s"},
            {"latency p50", "answers %.1fx sooner (p50)", num(c, "probe", "p50_ms"), num(v, "probe", "p50_ms"),
             false, 1, "ms"},
            {"command time", "runs the command %.1fx faster", num(c, "probe", "median_ms"),
             num(v, "probe", "median_ms"), false, 2, "ms"},
        };
        int score[2] = {0, 0};
        char said[2][1024] = {"", ""};
        for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
            if (f[i].a < 0 || f[i].b < 0)
                continue;
            double lo = f[i].a < f[i].b ? f[i].a : f[i].b, hi = f[i].a < f[i].b ? f[i].b : f[i].a;
            /* Differences under 20% (or below what the figure can tell:
             * 0.5% CPU, 1 MiB) decide nothing. */
            double floor = strcmp(f[i].unit, "%") == 0 ? 0.5 : strcmp(f[i].unit, "MiB") == 0 ? 1048576 : 0;
            if (hi - lo <= floor || hi < lo * 1.2)
                continue;
            int win = (f[i].a < f[i].b) != f[i].higher_better ? 0 : 1;   /* 0: container */
            score[win] += f[i].weight;
            char va[64], vb[64], item[300];
            fmt_value(va, sizeof(va), win == 0 ? f[i].a : f[i].b, f[i].unit);
            fmt_value(vb, sizeof(vb), win == 0 ? f[i].b : f[i].a, f[i].unit);
            char phrase[96];
            if (lo > 0)
                snprintf(phrase, sizeof(phrase), f[i].better, hi / lo);
            else {   /* nothing against something: no ratio to tell, "starts %.1fx faster" -> "starts faster" */
                const char *x = strstr(f[i].better, "%.1fx ");
                snprintf(phrase, sizeof(phrase), "%.*s%s", (int)(x - f[i].better), f[i].better, x + 6);
            }
            snprintf(item, sizeof(item), "%s (%s vs %s)", phrase, va, vb);
            json_t *d = json_object();
            json_object_set_new(d, "figure", json_string(f[i].key));
            json_object_set_new(d, "better", json_string(win == 0 ? "container" : "vm"));
            json_object_set_new(d, "container", json_real(f[i].a));
            json_object_set_new(d, "vm", json_real(f[i].b));
            json_object_set_new(d, "text", json_string(item));
            json_array_append_new(deciding, d);
            size_t l = strlen(said[win]);
            snprintf(said[win] + l, sizeof(said[win]) - l, "%s%s", l ? ", " : "", item);
        }
        if (score[0] != score[1])
            best = score[0] > score[1] ? "container" : "vm";
        else
            best = plan_backend ? plan_backend : "container";
        int w = strcmp(best, "vm") == 0;
        snprintf(text, sizeof(text), "%s: %s%s%s%s%s", best,
                 said[w][0] ? said[w] : "no figure differs by 20% or more",
                 said[!w][0] ? "; the " : "", said[!w][0] ? (w ? "container" : "vm") : "",
                 said[!w][0] ? " " : "", said[!w][0] ? said[!w] : "");
        size_t l = strlen(text);
        snprintf(text + l, sizeof(text) - l, "; a VM adds its own kernel and device passthrough and gives up the syscall filter");
    }
    json_object_set_new(out, "backend", best ? json_string(best) : json_null());
    if (best && plan_backend) {
        bool agrees = strcmp(best, plan_backend) == 0;
        json_object_set_new(out, "agrees_with_plan", json_boolean(agrees));
        size_t l = strlen(text);
        snprintf(text + l, sizeof(text) - l, ". %s the plan, which chose %s", agrees ? "Agrees with" : "Differs from",
                 plan_backend);
    }
    json_object_set_new(out, "deciding", deciding);
    json_object_set_new(out, "text", json_string(text));
    return out;
}

/* ---- the job's life ------------------------------------------------------------------- */

static void job_free(struct compare_job *j)
{
    for (int k = 0; k < BACKEND_COUNT; k++)
        free(j->side[k].text);
    if (j->argv)
        for (char **a = j->argv; *a; a++)
            free(*a);
    free(j->argv);
    json_decref(j->plan);
    json_decref(j->notes);
    if (j->devnull >= 0)
        close(j->devnull);
    free(j);
}

static void on_tick_closed(uv_handle_t *h)
{
    job_free(h->data);
}

static void job_unlink(struct compare_job *j)
{
    for (struct compare_job **p = &j->d->compares; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
}

/* The last results, kept in the store for the dashboard (GET
 * /v1/compare): a compare costs minutes, its figures are worth keeping. */
#define COMPARE_RESULTS_KEEP 10
#define COMPARE_RESULTS_MAX (1u << 20)

json_t *daemon_compare_results(struct daemon *d)
{
    char *buf = malloc(COMPARE_RESULTS_MAX);
    if (!buf)
        abort();
    json_t *all = NULL;
    if (store_setting_get(d->store, "compare_results", buf, COMPARE_RESULTS_MAX))
        all = json_loads(buf, 0, NULL);
    free(buf);
    if (!json_is_array(all)) {
        json_decref(all);
        all = json_array();
    }
    return all;
}

static void results_keep(struct daemon *d, const json_t *r)
{
    json_t *all = daemon_compare_results(d);
    json_t *copy = json_deep_copy(r);
    json_object_set_new(copy, "finished_at", json_integer((json_int_t)now_ms()));
    json_array_append_new(all, copy);
    char *text = NULL;
    /* The oldest go first, to the count and to the size the store keeps. */
    while (json_array_size(all) > 0) {
        text = json_dumps(all, JSON_COMPACT);
        if (!text)
            abort();
        if (json_array_size(all) <= COMPARE_RESULTS_KEEP && strlen(text) < COMPARE_RESULTS_MAX)
            break;
        free(text);
        text = NULL;
        json_array_remove(all, 0);
    }
    struct duet_err err = {0};
    if (text && store_setting_put(d->store, "compare_results", text, &err) < 0)
        daemon_event(d, json_string_value(json_object_get(r, "workload")), "failed", "keeping the compare's result: %s",
                     err.msg);
    free(text);
    json_decref(all);
}

static void job_end(struct compare_job *j)
{
    if (j->closing)
        return;
    j->closing = true;
    job_unlink(j);
    if (j->exec) {
        j->exec->j = NULL;
        j->exec = NULL;
    }
    if (j->opaque) {
        void *opaque = j->opaque;
        j->opaque = NULL;
        if (j->failure.msg[0]) {
            j->done(opaque, NULL, &j->failure);
        } else {
            json_t *r = result_json(j);
            results_keep(j->d, r);
            j->done(opaque, r, NULL);
        }
    }
    /* A probe on the pool holds the job until it is back (on_tick). */
    if (!j->work_busy)
        uv_close((uv_handle_t *)&j->tick, on_tick_closed);
}

static void on_tick(uv_timer_t *t)
{
    struct compare_job *j = t->data;
    if (j->closing) {
        /* waiting for a probe to come back before the job can go */
        if (!j->work_busy && !uv_is_closing((uv_handle_t *)&j->tick))
            uv_close((uv_handle_t *)&j->tick, on_tick_closed);
        return;
    }
    if (atomic_load(&j->cancel) && j->step < ST_REMOVE)
        go(j, ST_REMOVE);
    switch (j->step) {
    case ST_START:
        step_start(j);
        break;
    case ST_WAIT_READY:
        step_wait_ready(j);
        break;
    case ST_WAIT_GONE:
        step_wait_gone(j);
        break;
    case ST_IDLE:
        step_idle(j);
        break;
    case ST_PROBE:
        step_probe(j);
        break;
    case ST_PROBING:
        step_probing(j);
        break;
    case ST_REMOVE:
        step_remove(j);
        break;
    case ST_END:
        break;
    }
    if (j->step == ST_END)
        job_end(j);
}

struct compare_job *daemon_compare(struct daemon *d, const char *name, struct manifest_set *set,
                                   const struct compare_opts *o, compare_progress_fn progress, compare_done_fn done,
                                   void *opaque, struct duet_err *err)
{
    const struct workload_spec *spec = NULL;
    struct wl *live = NULL;
    if (set)
        spec = manifest_set_find(set, name);
    else if ((live = daemon_wl_find(d, name)) && !live->deleted)
        spec = live->spec;
    if (!spec) {
        manifest_set_free(set);
        if (set)
            duet_err_set(err, ENOENT, "the files hold no workload named \"%.63s\"", name);
        else
            duet_err_set(err, ENOENT, "no workload named \"%.63s\"; apply it first or give its file with -f", name);
        return NULL;
    }
    if (live && live->temp_of) {
        duet_err_set(err, EINVAL, "%s is a temporary instance of a compare of %s; compare %s", name, live->temp_of,
                     live->temp_of);
        return NULL;
    }
    if (d->degraded[0]) {
        manifest_set_free(set);
        duet_err_set(err, EAGAIN, "%s", d->degraded);
        return NULL;
    }
    for (struct compare_job *x = d->compares; x; x = x->next)
        if (strcmp(x->of, name) == 0) {
            manifest_set_free(set);
            duet_err_set(err, EEXIST, "a compare of %s is under way already; wait for it to end", name);
            return NULL;
        }
    struct compare_job *j = calloc(1, sizeof(*j));
    if (!j)
        abort();
    j->d = d;
    snprintf(j->of, sizeof(j->of), "%s", name);
    j->o = *o;
    j->o.exec = NULL;
    if (o->exec) {
        size_t n = 0;
        while (o->exec[n])
            n++;
        j->argv = calloc(n + 1, sizeof(*j->argv));
        if (!j->argv)
            abort();
        for (size_t i = 0; i < n; i++)
            if (!(j->argv[i] = strdup(o->exec[i])))
                abort();
    }
    j->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    j->notes = json_array();
    /* No probe asked for: the one the spec holds, if any. */
    if (j->o.probe == COMPARE_PROBE_NONE && spec->compare.probe != WL_COMPARE_NONE) {
        note(j, "the probe is the one spec.compare gives");
        if (spec->compare.probe == WL_COMPARE_TCP) {
            j->o.probe = COMPARE_PROBE_TCP;
            j->o.port = spec->compare.port;
        } else if (spec->compare.probe == WL_COMPARE_EXEC) {
            j->o.probe = COMPARE_PROBE_EXEC;
            j->argv = calloc(spec->compare.n_exec + 1, sizeof(*j->argv));
            if (!j->argv)
                abort();
            for (size_t i = 0; i < spec->compare.n_exec; i++)
                if (!(j->argv[i] = strdup(spec->compare.exec[i])))
                    abort();
        } else {
            j->o.probe = COMPARE_PROBE_HTTP;
            snprintf(j->o.http_path, sizeof(j->o.http_path), "%s", spec->compare.http_path);
            j->o.port = spec->compare.port;
            j->o.concurrency = spec->compare.concurrency ? spec->compare.concurrency : COMPARE_DEFAULT_CONCURRENCY;
            j->o.duration_ms = spec->compare.duration_ms ? spec->compare.duration_ms : COMPARE_DEFAULT_DURATION_MS;
        }
    }
    j->start_within_ms = spec->needs.start_within_ms;
    bool port_defaulted = !j->o.port;
    if (!j->o.port)
        j->o.port = spec->n_ports ? spec->ports[0].port : 80;
    if (j->o.probe == COMPARE_PROBE_HTTP && port_defaulted)
        note(j, "the probe uses port %u, %s; give another with --port", j->o.port,
             spec->n_ports ? "the first the workload publishes" : "HTTP's");
    if (spec->n_volumes)
        note(j, "%zu volume%s left out: a temporary instance never shares the live workload's data", spec->n_volumes,
             spec->n_volumes == 1 ? " is" : "s are");
    if (spec->n_ports)
        note(j, "ports are not published: the probe reaches each instance at its fleet address");
    if (spec->n_depends_on)
        note(j, "dependsOn is not waited for: what it names runs as it does now");
    if (!d->host.backend[BACKEND_VM].kvm)
        note(j, "this host has no KVM: the VM runs under emulation (TCG), slower than it would with KVM");

    /* What the plan chose: the live workload's placement, or a plan of the files. */
    if (live) {
        j->plan = json_loads(live->placement_json, 0, NULL);
    } else {
        struct plan *plan = plan_new(set, &d->host);
        for (size_t i = 0; i < plan->n; i++)
            if (plan->items[i].w == spec && plan->items[i].placed) {
                char *t = placement_json_text(&plan->items[i]);
                j->plan = json_loads(t, 0, NULL);
                free(t);
            }
        plan_free(plan);
    }
    if (!j->plan)
        j->plan = json_null();

    for (int i = 0; i < BACKEND_COUNT; i++) {
        struct side *s = &j->side[order[i]];
        s->k = order[i];
        s->possible = true;
        snprintf(s->name, sizeof(s->name), "%.56s-cmp-%s", name, s->k == BACKEND_VM ? "vm" : "ct");
        s->text = temporary_text(spec, s->k, s->name);
        struct driver *drv = daemon_driver(d, s->k);
        s->exec_supported = drv && (drv->flags & DRIVER_CAN_EXEC) &&
                            (!drv->exec_supported || drv->exec_supported(drv, spec, s->exec_why, sizeof(s->exec_why)));
        if (!s->exec_supported && !s->exec_why[0])
            snprintf(s->exec_why, sizeof(s->exec_why), "exec cannot run in this workload as a %s",
                     backend_kind_name(s->k));
        struct wl *w = daemon_wl_find(d, s->name);
        if (w) {
            duet_err_set(err, EEXIST,
                         "a workload named %s exists%s; delete it first (duet delete %s)", s->name,
                         w->temp_of ? " (kept by an earlier compare --keep)" : "", s->name);
            manifest_set_free(set);
            job_free(j);
            return NULL;
        }
    }
    manifest_set_free(set);
    j->progress = progress;
    j->done = done;
    j->opaque = opaque;
    j->cur = 0;
    j->next = d->compares;
    d->compares = j;
    uv_timer_init(d->loop, &j->tick);
    j->tick.data = j;
    uv_timer_start(&j->tick, on_tick, 0, COMPARE_TICK_MS);
    go(j, ST_START);
    return j;
}

void compare_abandon(struct compare_job *j)
{
    j->opaque = NULL;
    if (!j->o.keep)
        atomic_store(&j->cancel, true);
}

void compare_shutdown(struct daemon *d)
{
    while (d->compares) {
        struct compare_job *j = d->compares;
        atomic_store(&j->cancel, true);
        duet_err_set(&j->failure, ECANCELED, "duetd is stopping; the next duetd removes what this compare started");
        job_end(j);
    }
}
