/*
 * reconcile.c - the one place that decides what happens to a workload next.
 *
 * wl_reconcile() compares what was applied (spec, generation, deleted)
 * with what exists (the instance, its generation, whether it runs) and
 * takes at most one step: create, start, stop, destroy, forget, or wait
 * (for dependencies, for a back-off delay, for an operation in flight).
 * Every driver callback records what it learnt and calls wl_reconcile()
 * again, so the steps chain until desired and observed agree.
 *
 * Each step is written to the store before the driver is asked to act
 * (phase "creating" before create, "destroying" before destroy), so a
 * daemon killed at any point knows on restart what may exist on the host.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "common/units.h"
#include "orchestrator/daemon.h"
#include "orchestrator/image.h"

/* ---- helpers -------------------------------------------------------------- */

static struct driver *drv_of(struct wl *w, enum backend_kind k)
{
    return daemon_driver(w->d, k);
}

static void inst_clear(struct wl *w)
{
    /* An instance that ran with secrets an older spec had leaves their
     * seals unused: removed now, not at the next apply.  One of the spec
     * the workload has now leaves nothing unused. */
    bool seals = w->inst_spec && w->inst_spec->n_secrets && w->inst_grp != w->grp;
    w->inst = NULL;
    if (w->inst_grp)
        spec_group_unref(w->inst_grp);
    w->inst_grp = NULL;
    w->inst_spec = NULL;
    if (seals)
        daemon_secrets_gc(w->d);
    w->handle[0] = '\0';
    w->inst_started = w->inst_running = w->stop_requested = false;
}

static void save_handle(struct wl *w)
{
    struct driver *drv = drv_of(w, w->inst_backend);
    struct duet_err err = {0};
    char h[DRIVER_HANDLE_MAX];
    if (drv && w->inst && drv->handle(drv, w->inst, h, &err) == 0)
        snprintf(w->handle, sizeof(w->handle), "%s", h);
}

/* Learns from a measured start what later plans should assume. */
static void measure_start(struct wl *w)
{
    struct daemon *d = w->d;
    uint64_t ms = mono_ms() - w->op_t0;
    const char *b = backend_kind_name(w->inst_backend);
    uint64_t avg = 0, overhead = 0, n = 0;
    store_measure_get(d->store, b, &avg, &overhead, &n);
    /* A running average that keeps adapting: recent starts count most. */
    uint64_t keep = n < 9 ? n : 9;
    avg = (avg * keep + ms) / (keep + 1);
    if (!overhead)
        overhead = d->host.backend[w->inst_backend].memory_overhead;
    struct duet_err err = {0};
    store_measure_put(d->store, b, avg, overhead, n + 1, &err);
    d->host.backend[w->inst_backend].start_ms = avg;
    d->host.backend[w->inst_backend].measured = true;
}

/* What the restart policy says about an exit. */
static bool wants_restart(const struct wl *w)
{
    switch (w->spec->restart) {
    case WL_RESTART_ALWAYS: return true;
    case WL_RESTART_ON_FAILURE: return w->last_exit != 0 || w->last_signal != 0 || w->message;
    case WL_RESTART_NEVER: return false;
    }
    return false;
}

static void on_tick(uv_timer_t *t)
{
    struct wl *w = t->data;
    wl_reconcile(w);
}

/* After an exit or a failure: back off and restart, or stay ended. */
static void after_end(struct wl *w, bool failed_to_start)
{
    struct daemon *d = w->d;
    uint64_t ran = w->exited_at > w->started_at ? (uint64_t)(w->exited_at - w->started_at) : 0;
    if (failed_to_start || ran < d->stable_ms)
        w->quick_failures++;
    else
        w->quick_failures = 0;
    if (!wants_restart(w) || w->rm) {
        w->phase = PH_EXITED;
        if (w->rm)
            w->deleted = true;
        return;
    }
    unsigned n = w->quick_failures ? w->quick_failures - 1 : 0;
    uint64_t delay = d->backoff_base_ms;
    for (unsigned i = 0; i < n && delay < d->backoff_max_ms; i++)
        delay *= 2;
    if (delay > d->backoff_max_ms)
        delay = d->backoff_max_ms;
    bool was_loop = w->crashloop;
    w->crashloop = w->quick_failures >= DUETD_CRASHLOOP_AFTER;
    if (w->crashloop && !was_loop) {
        /* Point at what exists: a run's output, or, when the launches
         * themselves failed (nothing ran, so there is no log), the error. */
        char where[DUET_ERR_MSG_MAX + 128];
        if (failed_to_start && w->message)
            snprintf(where, sizeof(where), "its launch failed: %s; see duet describe %s", w->message, w->name);
        else
            snprintf(where, sizeof(where), "see duet logs %s", w->name);
        daemon_event(d, w->name, "crashloop",
                     "%u runs in a row ended within %llu ms: restarting with back-off up to %llu s; %s",
                     w->quick_failures, (unsigned long long)d->stable_ms,
                     (unsigned long long)(d->backoff_max_ms / 1000), where);
    }
    w->phase = PH_BACKOFF;
    w->backoff_until = mono_ms() + delay;
    daemon_event(d, w->name, "backoff", "restarting in %" PRIu64 " ms (restart policy %s)", delay,
                 wl_restart_name(w->spec->restart));
    uv_timer_start(&w->tick, on_tick, delay, 0);
}

static void op_failed(struct wl *w, const char *what, const struct duet_err *err)
{
    wl_set_message(w, "%s", err->msg);
    daemon_event(w->d, w->name, "failed", "%s: %s", what, err->msg);
}

/* A create or start that failed counts as a run that ended at once: the
 * restart policy and back-off decide what comes next.  With an instance
 * left, nothing runs in it and destroy clears what was made. */
static void launch_failed(struct wl *w, const char *what, const struct duet_err *err)
{
    op_failed(w, what, err);
    w->exited_at = w->started_at = (int64_t)now_ms();
    if (w->inst) {
        w->inst_started = true;
        w->stop_requested = true;
    }
    after_end(w, true);
    wl_notify_end(w, false);
}

/* ---- driver callbacks ------------------------------------------------------ */

static void on_exit_cb(void *opaque, const struct driver_status *st)
{
    struct wl *w = opaque;
    struct daemon *d = w->d;
    bool was_running = w->inst_running;
    w->inst_running = false;
    health_stop(w);
    if (d->shutting_down)
        return;
    if (st->state == DRIVER_STATE_GONE) {
        daemon_event(d, w->name, "lost", "the %s instance is gone from the host; it will be recreated",
                     backend_kind_name(w->inst_backend));
        if (!w->stop_requested && w->phase != PH_EXITED) {
            w->last_exit = -1;
            w->last_signal = 0;
            w->exited_at = (int64_t)now_ms();
        }
        /* Nothing to stop; destroy clears what may be left. */
        w->stop_requested = true;
        wl_save(w);
        wl_reconcile(w);
        reconcile_all(d);
        return;
    }
    if (!was_running && (w->phase == PH_EXITED || w->phase == PH_BACKOFF)) {
        /* An exit recorded before a daemon restart, reported again by recover. */
        wl_reconcile(w);
        return;
    }
    w->last_exit = st->exit_code;
    w->last_signal = st->term_signal;
    w->exited_at = (int64_t)(st->exited_at_ms ? st->exited_at_ms : now_ms());
    /* How it ended, in the words the user needs: an OOM kill names the
     * limit it hit and the fix, not just signal 9. */
    char why[256];
    const struct workload_spec *spec = w->inst_spec ? w->inst_spec : w->spec;
    if (st->oom) {
        char lim[32];
        snprintf(why, sizeof(why), "out of memory (limit %s): the kernel's OOM killer ended it; raise resources.memory",
                 units_size_format(spec->resources.memory, lim, sizeof(lim)));
    } else if (st->reason[0]) {
        snprintf(why, sizeof(why), "%s", st->reason);
    } else if (st->term_signal) {
        snprintf(why, sizeof(why), "killed by signal %d", st->term_signal);
    } else {
        snprintf(why, sizeof(why), "exit status %d", st->exit_code);
    }
    daemon_event(d, w->name, "exited", "%s", why);
    if (!w->stop_requested) {
        free(w->message);
        w->message = st->oom || st->reason[0] ? strdup(why) : NULL;
        if (w->stopped_unhealthy) {
            /* a failure whatever its status: on-failure restarts it */
            free(w->message);
            w->message = strdup("stopped for failing its health check (healthcheck.onUnhealthy: restart)");
            w->stopped_unhealthy = false;
        }
        after_end(w, false);
        wl_notify_end(w, false);
    }
    wl_save(w);
    wl_reconcile(w);
    reconcile_all(d);
}

static void on_created(void *opaque, const struct duet_err *err)
{
    struct wl *w = opaque;
    w->busy = false;
    if (!w->d->shutting_down) {
        if (err) {
            launch_failed(w, "create", err);
        } else {
            save_handle(w);
            daemon_event(w->d, w->name, "created", "%s created (generation %" PRId64 ")",
                         backend_kind_name(w->inst_backend), w->inst_gen);
        }
        wl_save(w);
        wl_reconcile(w);
    }
    wl_unref(w);
}

static void on_started(void *opaque, const struct duet_err *err)
{
    struct wl *w = opaque;
    w->busy = false;
    if (!w->d->shutting_down) {
        w->inst_started = true;
        if (err) {
            launch_failed(w, "start", err);
        } else {
            /* An exit can be reported before the start's own callback. */
            if (w->phase == PH_STARTING) {
                w->inst_running = true;
                w->phase = PH_RUNNING;
            }
            free(w->message);
            w->message = NULL;
            save_handle(w);
            measure_start(w);
            daemon_event(w->d, w->name, "started", "running as a %s", backend_kind_name(w->inst_backend));
            if (w->inst_running)
                health_start(w, true);
            wl_note_ready(w);
        }
        wl_save(w);
        wl_reconcile(w);
        reconcile_all(w->d);
    }
    wl_unref(w);
}

static void on_stopped(void *opaque, const struct duet_err *err)
{
    struct wl *w = opaque;
    w->busy = false;
    if (!w->d->shutting_down) {
        if (err)
            op_failed(w, "stop", err);
        struct driver *drv = drv_of(w, w->inst_backend);
        struct driver_status st;
        struct duet_err e2 = {0};
        if (w->inst && drv && drv->inspect(drv, w->inst, &st, &e2) == 0 &&
            (st.state == DRIVER_STATE_EXITED || st.state == DRIVER_STATE_GONE))
            w->inst_running = false;
        if (err)
            w->inst_running = false;   /* destroy forces what stop could not */
        wl_save(w);
        wl_reconcile(w);
    }
    wl_unref(w);
}

static void on_destroyed(void *opaque, const struct duet_err *err)
{
    struct wl *w = opaque;
    w->busy = false;
    if (!w->d->shutting_down) {
        if (err)
            daemon_event(w->d, w->name, "failed", "destroy: %s (something may be left on the host)", err->msg);
        else
            daemon_event(w->d, w->name, "destroyed", "%s instance removed", backend_kind_name(w->inst_backend));
        inst_clear(w);
        if (w->phase == PH_DESTROYING)
            w->phase = PH_PENDING;
        wl_save(w);
        wl_reconcile(w);
        reconcile_all(w->d);
    }
    wl_unref(w);
}

/* What a backend keeps beyond its instances goes (backends/kept.h):
 * before a create, a disk apply --recreate asked to reset; after the last
 * destroy of a deleted workload, everything.  One purge per open backend,
 * at once, the workload busy until the last ends. */
static void on_purged(void *opaque, const struct duet_err *err)
{
    struct wl *w = opaque;
    struct daemon *d = w->d;
    if (err && !d->shutting_down)
        daemon_event(d, w->name, "failed", "removing what was kept for it: %s", err->msg);
    if (err)
        w->purge_failed = true;
    if (--w->purging) {
        wl_unref(w);
        return;
    }
    w->busy = false;
    if (!d->shutting_down) {
        if (w->purge_for_delete) {
            /* Deletion goes on even when a file could not go: the event
             * names it, and a workload stuck in deletion helps nobody.
             * One applied again meanwhile is not deleted, but its disk
             * is gone all the same. */
            w->purged = w->deleted;
        } else if (w->purge_failed) {
            struct duet_err e = {0};
            duet_err_set(&e, EIO, "its disk could not be reset (see the events); it stays as it was");
            launch_failed(w, "create", &e);
        } else if (w->disk) {
            daemon_event(d, w->name, "disk", "its disk was reset (apply --recreate): the next VM starts from %s",
                         w->spec->image.oci      ? w->spec->image.oci
                         : w->spec->image.rootfs ? w->spec->image.rootfs
                         : w->spec->image.disk   ? w->spec->image.disk
                                                 : "its image");
        }
        if (!w->purge_failed) {
            free(w->disk);
            w->disk = NULL;
            w->disk_reset = false;
        }
        w->purge_failed = false;
        wl_save(w);
        wl_reconcile(w);
    }
    wl_unref(w);
}

/* Purges `what` of w on every open backend with something to purge;
 * false when none was asked (nothing to wait for). */
static bool do_purge(struct wl *w, unsigned what)
{
    w->busy = true;
    w->purging = 1;   /* held until every backend was asked */
    w->purge_for_delete = (what & DRIVER_KEPT_LOGS) != 0;
    wl_ref(w);
    for (int b = 0; b < BACKEND_COUNT; b++) {
        struct driver *drv = drv_of(w, (enum backend_kind)b);
        unsigned mine = what & ((drv && (drv->flags & DRIVER_KEEPS_DISK)) ? ~0u : ~DRIVER_KEPT_DISK);
        if (!drv || !drv->purge || !mine)
            continue;
        struct duet_err err = {0};
        w->purging++;
        wl_ref(w);
        if (drv->purge(drv, w->name, mine, on_purged, w, &err) < 0) {
            w->purging--;
            wl_unref(w);
            daemon_event(w->d, w->name, "failed", "removing what was kept for it: %s", err.msg);
            w->purge_failed = true;
        }
    }
    bool asked = w->purging > 1;
    if (!asked) {
        w->purging = 0;
        w->busy = false;
        w->purge_failed = false;
        wl_unref(w);
        return false;
    }
    on_purged(w, NULL);   /* lets go of the hold; the backends' ends follow */
    return true;
}

/* ---- steps ------------------------------------------------------------------- */

static void do_create(struct wl *w)
{
    struct driver *drv = drv_of(w, w->backend);
    if (!drv) {
        wl_set_message(w, "the %s backend is not available on this host", backend_kind_name(w->backend));
        w->phase = PH_PENDING;
        wl_save(w);
        return;
    }
    /* A reset disk goes before anything is made (written first: the flag
     * is in the store since the apply, and stays until the disk is gone). */
    if (w->disk_reset) {
        if (do_purge(w, DRIVER_KEPT_DISK))
            return;
        free(w->disk);
        w->disk = NULL;
        w->disk_reset = false;
    }
    /* A kept disk is booted, never one made from a different image
     * without the user's word (apply refuses that; this catches a
     * placement that changed by itself). */
    char src[4096 + 64];
    bool keeps = (drv->flags & DRIVER_KEEPS_DISK) && wl_disk_source(w->spec, src, sizeof(src));
    if (keeps && wl_disk_resets(w->spec, w->disk, src, sizeof(src))) {
        struct duet_err e = {0};
        duet_err_set(&e, ESTALE,
                     "its kept disk was made from %s and its spec now says %s: apply with --recreate %s to reset "
                     "the disk, or set spec.image.keepDisk: true to keep it",
                     w->disk, src, w->name);
        launch_failed(w, "create", &e);
        wl_save(w);
        return;
    }
    /* What it runs from: an image not in the store yet is imported
     * first (image.h), the workload pending meanwhile. */
    const struct workload_spec *run = NULL;
    struct duet_err ierr = {0};
    int ir = wl_run_spec(w, &run, &ierr);
    if (ir == 1) {
        /* waiting for the import, whether first or after a back-off: not
         * "restarting", which --wait takes for a failure */
        w->phase = PH_PENDING;
        wl_set_message(w, "importing image %s", w->spec->image.oci);
        wl_save(w);
        return;
    }
    w->pull_failed = ir < 0 && w->spec->image.oci;
    if (ir < 0) {
        launch_failed(w, "create", &ierr);
        wl_save(w);
        return;
    }
    /* Its named volumes, made and mounted on a worker first. */
    int vr = wl_volumes_ready(w, run, &ierr);
    if (vr == 1 || vr == 2) {
        if (w->phase != PH_PENDING || !w->message || strcmp(w->message, vr == 1 ? "preparing its volumes" : ierr.msg)) {
            w->phase = PH_PENDING;
            wl_set_message(w, "%s", vr == 1 ? "preparing its volumes" : ierr.msg);
            wl_save(w);
        }
        return;
    }
    if (vr < 0) {
        launch_failed(w, "create", &ierr);
        wl_save(w);
        return;
    }
    /* The address first: a fleet without one left is an error of this
     * workload's, shown like a failed create. */
    struct duet_err nerr = {0};
    if (w->d->net_open && wl_net_prepare(w, &nerr) < 0) {
        /* Admission counted the addresses of workloads being deleted as
         * free (a prune): wait for them rather than fail. */
        size_t leaving = 0;
        DAEMON_WL_FOREACH(w->d, o)
            leaving += o->deleted && o->addr;
        if (nerr.code == ENOSPC && leaving) {
            w->phase = PH_PENDING;
            wl_set_message(w, "waiting for an address on the fleet network: %zu deleted workload%s still hold%s theirs",
                           leaving, leaving == 1 ? "" : "s", leaving == 1 ? "s" : "");
            wl_save(w);
            return;
        }
        launch_failed(w, "create", &nerr);
        wl_save(w);
        return;
    }
    enum wl_phase before = w->phase;
    if (w->phase == PH_BACKOFF)
        w->restarts++;
    w->phase = PH_CREATING;
    w->inst_backend = w->backend;
    w->inst_gen = w->gen;
    w->inst_spec = run;
    w->inst_grp = w->grp;
    w->grp->refs++;
    w->handle[0] = '\0';
    w->inst_started = w->inst_running = w->stop_requested = false;
    w->created_at = (int64_t)now_ms();
    w->health = HEALTH_NONE;
    w->health_fails = 0;
    w->op_t0 = mono_ms();
    w->ready_ms = 0;
    bool disk_new = keeps && !w->disk;
    if (disk_new) {
        w->disk = strdup(src);
        if (!w->disk)
            abort();
    }
    if (wl_save(w) < 0) {
        /* Not written, not taken: a crash must never leave an instance
         * the store does not name.  The step is taken again once the
         * store takes writes (daemon_degrade). */
        inst_clear(w);
        if (before == PH_BACKOFF)
            w->restarts--;
        w->phase = before;
        if (disk_new) {
            free(w->disk);
            w->disk = NULL;
        }
        return;
    }
    if (keeps && strcmp(w->disk, src) != 0)
        daemon_event(w->d, w->name, "disk",
                     "keeps its disk made from %s (image.keepDisk), though its spec now says %s", w->disk, src);
    struct duet_err err = {0};
    struct net_attachment net, *netp = NULL;
    if (w->addr && w->d->net_open) {
        fleet_net_attachment(&w->d->net, w->addr, &net);
        netp = &net;
    }
    w->busy = true;
    wl_ref(w);
    if (drv->create(drv, run, netp, &w->inst, on_created, w, &err) < 0) {
        w->busy = false;
        wl_unref(w);
        inst_clear(w);
        launch_failed(w, "create", &err);
        wl_save(w);
    }
}

static void do_start(struct wl *w)
{
    struct driver *drv = drv_of(w, w->inst_backend);
    enum wl_phase before = w->phase;
    w->phase = PH_STARTING;
    w->started_at = (int64_t)now_ms();
    if (wl_save(w) < 0) {
        w->phase = before;
        return;
    }
    struct duet_err err = {0};
    /* duet run -i/-t: its first instance alone is attached to the caller. */
    const struct driver_exec_io *attach = w->attach;
    w->attach = NULL;
    if (attach && (!drv->attach || drv->attach(drv, w->inst, attach, &err) < 0)) {
        if (!drv->attach)
            duet_err_set(&err, ENOTSUP, "a %s's command cannot be attached", backend_kind_name(w->inst_backend));
        launch_failed(w, "start", &err);
        wl_save(w);
        return;
    }
    w->busy = true;
    wl_ref(w);
    if (drv->start(drv, w->inst, on_started, on_exit_cb, w, &err) < 0) {
        w->busy = false;
        wl_unref(w);
        launch_failed(w, "start", &err);
        wl_save(w);
    }
}

static void do_stop(struct wl *w)
{
    struct driver *drv = drv_of(w, w->inst_backend);
    w->phase = PH_STOPPING;
    w->stop_requested = true;
    health_stop(w);
    wl_save(w);
    daemon_event(w->d, w->name, "stopping", "%s",
                 w->deleted            ? "deleted"
                 : w->hold             ? w->hold_why
                 : w->stopped          ? "stopped on request (duet stop)"
                 : w->restart_asked    ? "restarted on request (duet restart)"
                                       : "replaced by a new generation");
    struct duet_err err = {0};
    w->busy = true;
    wl_ref(w);
    if (drv->stop(drv, w->inst, w->d->stop_grace_ms, on_stopped, w, &err) < 0) {
        w->busy = false;
        wl_unref(w);
        op_failed(w, "stop", &err);
        w->inst_running = false;   /* destroy next: it kills what is left */
        wl_reconcile(w);
    }
}

static void on_stopped_unhealthy(void *opaque, const struct duet_err *err)
{
    struct wl *w = opaque;
    w->busy = false;
    if (err && !w->d->shutting_down) {
        /* It could not be stopped gracefully: destroy forces it, and the
         * run counts as failed all the same. */
        op_failed(w, "stop", err);
        w->stop_requested = true;
        w->inst_running = false;
        w->exited_at = (int64_t)now_ms();
        w->stopped_unhealthy = false;
        after_end(w, false);
        wl_save(w);
    }
    if (!w->d->shutting_down)
        wl_reconcile(w);   /* an exit that came meanwhile waited for this */
    wl_unref(w);
}

bool wl_stop_unhealthy(struct wl *w)
{
    if (w->busy || !w->inst || !w->inst_running || w->stop_requested || w->d->shutting_down)
        return false;
    struct driver *drv = drv_of(w, w->inst_backend);
    daemon_event(w->d, w->name, "stopping",
                 "unhealthy (%s): healthcheck.onUnhealthy stops it, and its restart policy %s decides what follows",
                 w->health_msg ? w->health_msg : "its check failed", wl_restart_name(w->spec->restart));
    health_stop(w);
    w->stopped_unhealthy = true;
    struct duet_err err = {0};
    w->busy = true;
    wl_ref(w);
    /* Not stop_requested: its exit is the run's end, as if it had failed
     * by itself (on_exit_cb, after_end). */
    if (drv->stop(drv, w->inst, w->d->stop_grace_ms, on_stopped_unhealthy, w, &err) < 0) {
        w->busy = false;
        w->stopped_unhealthy = false;
        wl_unref(w);
        op_failed(w, "stop", &err);
        return false;
    }
    return true;
}

int daemon_workload_action(struct daemon *d, const char *name, enum wl_action action, struct duet_err *err)
{
    struct wl *w = daemon_wl_find(d, name);
    if (!w || w->deleted)
        return duet_err_set(err, ENOENT, "no workload named %s%s", name, w ? " (it is being deleted)" : "");
    if (w->temp_of && !w->temp_kept)
        return duet_err_set(err, EBUSY, "%s is a temporary instance of duet compare; it goes when the compare ends",
                            name);
    if (w->hold || w->backing_up || w->restore_from)
        return duet_err_set(err, EBUSY, "a snapshot, restore or backup of %s is under way; try again once it is done",
                            name);
    if (d->degraded[0])
        return duet_err_set(err, EAGAIN, "%s", d->degraded);
    bool was_stopped = w->stopped, was_asked = w->restart_asked;
    static const char *const what[] = {[WL_ACTION_STOP] = "stop", [WL_ACTION_START] = "start",
                                       [WL_ACTION_RESTART] = "restart"};
    switch (action) {
    case WL_ACTION_STOP:
        w->stopped = true;
        w->restart_asked = false;
        break;
    case WL_ACTION_START:
    case WL_ACTION_RESTART:
        if (w->stopped || !w->inst) {
            /* Nothing runs: a start, from the beginning. */
            w->stopped = false;
            w->restart_asked = false;
            if (!w->inst && (w->phase == PH_EXITED || w->phase == PH_BACKOFF)) {
                w->phase = PH_PENDING;
                w->quick_failures = 0;
                w->crashloop = false;
                w->backoff_until = 0;
            }
        } else if (action == WL_ACTION_RESTART) {
            w->restart_asked = true;
        }
        break;
    }
    /* Written before it is taken: a daemon that dies now finishes it. */
    if (wl_save(w) < 0) {
        w->stopped = was_stopped;
        w->restart_asked = was_asked;
        return duet_err_set(err, EAGAIN, "%s", d->degraded);
    }
    daemon_event(d, w->name, what[action], "%s asked", what[action]);
    wl_reconcile(w);
    return 0;
}

static void do_destroy(struct wl *w)
{
    struct driver *drv = drv_of(w, w->inst_backend);
    enum wl_phase before = w->phase;
    /* A destroy that precedes a restart keeps the back-off state (and the
     * restart count it leads to); one of an instance that had ended for
     * good (a snapshot's hold) keeps the workload ended. */
    if (before != PH_BACKOFF && before != PH_EXITED)
        w->phase = PH_DESTROYING;
    health_stop(w);
    wl_save(w);
    struct duet_err err = {0};
    w->busy = true;
    wl_ref(w);
    struct driver_instance *inst = w->inst;
    if (drv->destroy(drv, inst, on_destroyed, w, &err) < 0) {
        w->busy = false;
        wl_unref(w);
        daemon_event(w->d, w->name, "failed", "destroy: %s", err.msg);
        drv->release(drv, inst);
        inst_clear(w);
        w->phase = before == PH_DESTROYING ? PH_PENDING : before;
        wl_save(w);
    }
}

static void forget(struct wl *w)
{
    struct daemon *d = w->d;
    struct duet_err err = {0};
    if (store_delete(d->store, w->name, &err) < 0) {
        /* Kept until its row can go, or it would come back with the next
         * daemon. */
        daemon_degrade(d, w->name, &err);
        return;
    }
    daemon_event(d, w->name, "deleted", "workload removed");
    uv_timer_stop(&w->tick);
    wl_notify_end(w, false);
    wl_net_release(w);
    bool seals = w->spec && w->spec->n_secrets;
    strmap_del(&d->wls, w->name);
    w->deleted = true;
    wl_unref(w);   /* the map's reference */
    if (seals)
        daemon_secrets_gc(d);
}

static const char *deps_missing(struct wl *w, char *buf, size_t len)
{
    for (size_t i = 0; i < w->spec->n_depends_on; i++) {
        const char *dn = w->spec->depends_on[i].name;
        struct wl *dw = daemon_wl_find(w->d, dn);
        if (!dw || dw->deleted) {
            snprintf(buf, len, "waiting for %s, which is not applied", dn);
            return buf;
        }
        if (!wl_ready(dw)) {
            snprintf(buf, len, "waiting for %s (%s%s%s)", dn, wl_state_name(dw),
                     dw->health == HEALTH_STARTING ? ", health check not passed yet" : "",
                     dw->health == HEALTH_UNHEALTHY ? ", unhealthy" : "");
            return buf;
        }
    }
    return NULL;
}

/* Is the back-off delay still running?  Then the tick is armed for what is
 * left of it: libuv's timers count from the loop's cached time, which may
 * be a few ms behind the clock the delay was set by, and a tick that comes
 * early must not be the last one. */
static bool backoff_pending(struct wl *w)
{
    uint64_t now = mono_ms();
    if (now >= w->backoff_until)
        return false;
    if (!uv_is_active((uv_handle_t *)&w->tick))
        uv_timer_start(&w->tick, on_tick, w->backoff_until - now, 0);
    return true;
}

void wl_reconcile(struct wl *w)
{
    struct daemon *d = w->d;
    /* Degraded: no step, since none could be written first. */
    if (w->busy || d->shutting_down || w->phase == PH_RECOVERING || d->degraded[0])
        return;
    bool want = !w->deleted;
    bool current = w->inst && w->inst_gen == w->gen && w->inst_backend == w->backend;

    /* 1. An instance that must go: deleted, replaced, or ended and due for
     *    a restart (a fresh instance replaces it). */
    bool restart_due = w->inst && w->phase == PH_BACKOFF && !backoff_pending(w);
    if (w->inst && (!want || !current || restart_due || w->hold || w->stopped || w->restart_asked ||
                    (w->stop_requested && !w->inst_running && w->phase != PH_EXITED && w->phase != PH_BACKOFF))) {
        if (w->inst_running && !w->stop_requested)
            do_stop(w);
        else if (w->inst_running)
            ;   /* stopping: the exit comes */
        else
            do_destroy(w);
        return;
    }
    /* Held (a snapshot): nothing on the host now; nothing made until the
     * hold is let go, not even a deletion's purge. */
    if (w->hold) {
        void (*ready)(struct wl *) = w->hold_ready;
        w->hold_ready = NULL;
        if (ready)
            ready(w);
        return;
    }
    if (!want) {
        if (!w->purged && do_purge(w, DRIVER_KEPT_DISK | DRIVER_KEPT_LOGS))
            return;
        if (w->delete_volumes && wl_volumes_remove(w))
            return;
        if (!w->snaps_removed && wl_snapshots_remove(w))
            return;
        forget(w);
        return;
    }
    if (w->inst) {
        if (!w->inst_started)
            do_start(w);
        return;   /* running, or ended and waiting */
    }
    /* 2. Nothing on the host. */
    if (w->stopped)
        return;   /* until duet start */
    if (w->restart_asked) {
        /* Asked for, not a failure: a fresh start, the back-off forgotten. */
        w->restart_asked = false;
        w->phase = PH_PENDING;
        w->quick_failures = 0;
        w->crashloop = false;
        w->backoff_until = 0;
        wl_save(w);
    }
    if (w->phase == PH_EXITED)
        return;
    if (w->phase == PH_BACKOFF && backoff_pending(w))
        return;
    char why[256];
    if (deps_missing(w, why, sizeof(why))) {
        if (w->phase != PH_PENDING || !w->message || strcmp(w->message, why) != 0) {
            bool was_backoff = w->phase == PH_BACKOFF;
            w->phase = was_backoff ? PH_BACKOFF : PH_PENDING;
            wl_set_message(w, "%s", why);
            wl_save(w);
        }
        return;
    }
    do_create(w);
}

void reconcile_all(struct daemon *d)
{
    uint64_t t0 = daemon_pass_begin();
    DAEMON_WL_FOREACH(d, w)
        if (!w->busy && !w->inst)
            wl_reconcile(w);
    daemon_pass_end(d, t0);
}

/* ---- recovery -------------------------------------------------------------- */

void wl_recover(struct wl *w)
{
    struct daemon *d = w->d;
    struct driver *drv = drv_of(w, w->inst_backend);
    bool had_run = w->phase == PH_EXITED || w->phase == PH_BACKOFF;
    struct duet_err err = {0};
    struct driver_instance *inst = NULL;
    /* A container's handle exists only once it started; one killed
     * between clone and the store's write is still found by its name. */
    const char *h = w->handle[0] ? w->handle : NULL;
    bool try_recover = drv && (h || (drv->flags & DRIVER_RECOVER_WITHOUT_HANDLE));
    bool interrupted_start = w->phase == PH_CREATING || w->phase == PH_STARTING;
    /* The run spec the instance was made from: its image is in the store
     * (an instance exists), so this imports nothing. */
    const struct workload_spec *run = w->spec;
    struct duet_err ierr = {0};
    if (try_recover && wl_run_spec_stored(w, &run, &ierr) < 0)
        run = w->spec;
    struct net_attachment net, *netp = NULL;
    if (w->addr && d->net_open) {
        fleet_net_attachment(&d->net, w->addr, &net);
        netp = &net;
    }
    if (try_recover && drv->recover(drv, run, h, netp, &inst, on_exit_cb, w, &err) == 0) {
        w->inst = inst;
        w->inst_spec = run;
        w->inst_grp = w->grp;
        w->grp->refs++;
        w->inst_started = true;
        w->inst_running = !had_run;
        save_handle(w);
        if (interrupted_start && (drv->flags & DRIVER_RESTART_INTERRUPTED_START)) {
            /* Not trusted: destroyed, then created again (no restart is
             * counted; the start never finished). */
            w->inst_running = false;
            w->stop_requested = true;
            daemon_event(d, w->name, "interrupted",
                         "its %s start was cut short by the daemon's end: destroying it to start it again",
                         backend_kind_name(w->inst_backend));
            wl_save(w);
            return;
        }
        if (w->phase == PH_CREATING || w->phase == PH_STARTING || w->phase == PH_PENDING)
            w->phase = PH_RUNNING;
        /* A stop the last daemon began is begun again, its grace period
         * counted from now: that daemon's forced kill died with it. */
        if (w->phase == PH_STOPPING || w->phase == PH_DESTROYING)
            w->stop_requested = false;
        if (w->phase == PH_RUNNING && w->inst_running)
            health_start(w, false);
        daemon_event(d, w->name, "recovered", "re-attached to the %s instance (%s)",
                     backend_kind_name(w->inst_backend), w->handle[0] ? w->handle : "no handle");
    } else {
        if (try_recover && h)
            daemon_event(d, w->name, "lost", "cannot re-attach: %s", err.msg);
        /* Whatever a half-done create left is cleared by the next create,
         * which both backends do for leftovers of their own. */
        w->inst_backend = w->backend;
        if (!had_run && w->phase != PH_PENDING && !w->deleted) {
            if (h) {
                w->last_exit = -1;
                w->exited_at = (int64_t)now_ms();
            }
            w->phase = PH_PENDING;
        }
        if (w->phase == PH_STOPPING || w->phase == PH_DESTROYING)
            w->phase = PH_PENDING;
    }
    wl_save(w);
}
