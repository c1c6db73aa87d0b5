/*
 * workload.c - struct wl: its life, its row in the store, its names.
 *
 * A workload is freed when its last reference goes: the map's (dropped
 * when it is forgotten or at shutdown), and one per driver operation,
 * health probe, log follower or exec in flight, so a callback that comes
 * after the workload was forgotten still finds it whole.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/daemon.h"

void spec_group_unref(struct spec_group *g)
{
    if (--g->refs == 0) {
        manifest_set_free(g->set);
        free(g);
    }
}

struct wl *wl_new(struct daemon *d, const char *name)
{
    struct wl *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    w->d = d;
    w->name = strdup(name);
    if (!w->name)
        abort();
    w->refs = 1;   /* the map's */
    w->last_exit = -1;
    uv_timer_init(d->loop, &w->tick);
    w->tick.data = w;
    strmap_set(&d->wls, w->name, w);
    return w;
}

void wl_ref(struct wl *w)
{
    w->refs++;
}

static void wl_free_closed(uv_handle_t *h)
{
    struct wl *w = h->data;
    if (w->grp)
        spec_group_unref(w->grp);
    if (w->inst_grp)
        spec_group_unref(w->inst_grp);
    free(w->spec_json);
    free(w->placement_json);
    free(w->message);
    free(w->disk);
    free(w->health_msg);
    free(w->image_err);
    free(w->vol_err);
    free(w->restore_from);
    free(w->temp_of);
    free(w->name);
    free(w);
}

void wl_unref(struct wl *w)
{
    if (--w->refs > 0)
        return;
    uv_close((uv_handle_t *)&w->tick, wl_free_closed);
}

void wl_set_message(struct wl *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) < 0)
        abort();
    va_end(ap);
    free(w->message);
    w->message = m;
}

void wl_notify_end(struct wl *w, bool cancelled)
{
    wl_end_fn fn = w->on_end;
    w->attach = NULL;   /* the caller's, whose use ends here */
    if (!fn)
        return;
    w->on_end = NULL;
    fn(w->on_end_opaque, w, cancelled);
}

/* ---- the row ------------------------------------------------------------------ */

void wl_row(const struct wl *w, struct store_row *r)
{
    *r = (struct store_row){
        .name = w->name,
        .generation = w->gen,
        .spec = w->spec_json,
        .backend = backend_kind_name(w->backend),
        .placement = w->placement_json,
        .deleted = w->deleted,
        .phase = wl_phase_name(w->phase),
        /* An instance group is the mark of "an instance may exist": set
         * before create is asked, cleared once destroy is done. */
        .inst_backend = w->inst_grp ? backend_kind_name(w->inst_backend) : NULL,
        .inst_generation = w->inst_gen,
        .handle = w->handle[0] ? w->handle : NULL,
        .restarts = w->restarts,
        .last_exit = w->last_exit,
        .last_signal = w->last_signal,
        .exited_at = w->exited_at,
        .started_at = w->started_at,
        .created_at = w->created_at,
        .message = w->message,
        .rm = w->rm,
        .quick_failures = w->quick_failures,
        .address = w->addr,
        .disk = w->disk,
        .disk_reset = w->disk_reset,
        .delete_volumes = w->delete_volumes,
        .restore_from = w->restore_from,
        .temporary = w->temp_of,
        .kept = w->temp_kept,
        .stopped = w->stopped,
        .restart_asked = w->restart_asked,
    };
    /* The store keeps the wall clock: the monotonic one starts again with the host. */
    uint64_t mono = mono_ms();
    if (w->phase == PH_BACKOFF && w->backoff_until > mono)
        r->backoff_until = (int64_t)(now_ms() + (w->backoff_until - mono));
}

int wl_save(struct wl *w)
{
    if (daemon_wl_find(w->d, w->name) != w)
        return 0;   /* forgotten already */
    struct store_row r;
    wl_row(w, &r);
    struct duet_err err = {0};
    if (store_put(w->d->store, &r, &err) < 0) {
        daemon_degrade(w->d, w->name, &err);
        return -1;
    }
    return 0;
}

static enum backend_kind backend_from(const char *s)
{
    return s && strcmp(s, "vm") == 0 ? BACKEND_VM : BACKEND_CONTAINER;
}

struct wl *wl_load(struct daemon *d, const struct store_row *r)
{
    struct wl *w = wl_new(d, r->name);
    w->gen = r->generation;
    w->spec_json = strdup(r->spec);
    w->backend = backend_from(r->backend);
    w->placement_json = strdup(r->placement);
    if (!w->spec_json || !w->placement_json)
        abort();
    w->deleted = r->deleted;
    w->phase = wl_phase_from(r->phase);
    if (r->inst_backend) {
        w->inst_backend = backend_from(r->inst_backend);
        w->inst_gen = r->inst_generation;
    }
    snprintf(w->handle, sizeof(w->handle), "%s", r->handle ? r->handle : "");
    w->restarts = r->restarts;
    w->last_exit = r->last_exit;
    w->last_signal = r->last_signal;
    w->exited_at = r->exited_at;
    w->started_at = r->started_at;
    w->created_at = r->created_at;
    w->message = r->message ? strdup(r->message) : NULL;
    w->rm = r->rm;
    w->quick_failures = (unsigned)r->quick_failures;
    w->addr = (uint32_t)r->address;
    w->disk = r->disk ? strdup(r->disk) : NULL;
    w->disk_reset = r->disk_reset;
    w->delete_volumes = r->delete_volumes;
    free(w->restore_from);
    w->restore_from = r->restore_from ? strdup(r->restore_from) : NULL;
    w->temp_of = r->temporary ? strdup(r->temporary) : NULL;
    w->temp_kept = r->kept;
    w->stopped = r->stopped;
    w->restart_asked = r->restart_asked;
    w->crashloop = w->quick_failures >= DUETD_CRASHLOOP_AFTER;
    /* A restart delay still running when the last daemon stopped goes on. */
    uint64_t wall = now_ms();
    w->backoff_until = r->backoff_until > 0 && (uint64_t)r->backoff_until > wall
                           ? mono_ms() + ((uint64_t)r->backoff_until - wall)
                           : 0;
    return w;
}

/* ---- names ---------------------------------------------------------------------- */

static const char *const phase_names[PH_COUNT] = {
    [PH_PENDING] = "pending",     [PH_CREATING] = "creating",     [PH_STARTING] = "starting",
    [PH_RUNNING] = "running",     [PH_STOPPING] = "stopping",     [PH_DESTROYING] = "destroying",
    [PH_EXITED] = "exited",       [PH_BACKOFF] = "backoff",       [PH_RECOVERING] = "recovering",
};

const char *wl_phase_name(enum wl_phase p)
{
    return p < PH_COUNT ? phase_names[p] : "unknown";
}

enum wl_phase wl_phase_from(const char *s)
{
    for (int i = 0; i < PH_COUNT; i++)
        if (s && strcmp(s, phase_names[i]) == 0)
            return (enum wl_phase)i;
    return PH_PENDING;
}

const char *wl_health_name(enum wl_health h)
{
    switch (h) {
    case HEALTH_NONE: return "none";
    case HEALTH_STARTING: return "starting";
    case HEALTH_HEALTHY: return "healthy";
    case HEALTH_UNHEALTHY: return "unhealthy";
    case HEALTH_UNCHECKED: return "unchecked";
    }
    return "unknown";
}

const char *wl_state_name(const struct wl *w)
{
    if (w->deleted)
        return "deleting";
    if (w->stopped && !w->inst)
        return "stopped";
    switch (w->phase) {
    case PH_EXITED:
        return w->last_exit == 0 && w->last_signal == 0 && !w->message ? "completed" : "failed";
    case PH_BACKOFF:
        return w->crashloop ? "crashloop" : "restarting";
    case PH_RUNNING:
        return w->health == HEALTH_UNHEALTHY ? "unhealthy" : "running";
    default:
        return wl_phase_name(w->phase);
    }
}

bool wl_ready(const struct wl *w)
{
    if (w->deleted || !w->inst || w->inst_gen != w->gen)
        return false;
    if (w->phase == PH_EXITED)
        return w->last_exit == 0 && w->last_signal == 0;
    return w->phase == PH_RUNNING && w->inst_running &&
           (w->health == HEALTH_NONE || w->health == HEALTH_HEALTHY || w->health == HEALTH_UNCHECKED);
}

void wl_note_ready(struct wl *w)
{
    if (w->ready_ms || !w->op_t0 || !w->inst_running || !wl_ready(w))
        return;
    uint64_t ms = mono_ms() - w->op_t0;
    w->ready_ms = ms ? ms : 1;
}
