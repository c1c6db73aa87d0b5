/*
 * snapshot.c - a workload's snapshots, taken and restored (storage/
 * snapshot.h holds the layout on disk; docs/storage.md what a user sees).
 *
 * A snapshot is of what outlives the workload's instances: its VM's kept
 * disk and the named volumes it writes.  For it to be consistent, the
 * workload is held (workload.h): the reconciler stops and destroys its
 * instance, as for a replace, and makes none while the copy runs on a
 * worker; letting go of the hold starts it again, as a new instance.  A
 * workload that had ended stays ended.  A restore is written to the store
 * before anything is touched (restore_from): a daemon cut short in the
 * middle of one holds the workload again when it comes back and finishes
 * the restore before the workload runs.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "common/units.h"
#include "orchestrator/daemon.h"
#include "orchestrator/workload.h"
#include "storage/snapshot.h"
#include "storage/volume.h"

struct snap_vol {
    char name[64];
    uint64_t size;
};

struct snap_job {
    uv_work_t req;
    struct wl *w;
    bool restore;
    char snap[64];
    char root[4200], volume_root[4200];
    struct driver *vm;             /* keeps the disk (kept_copy), or NULL */
    bool has_disk;                 /* the workload has a kept disk (w->disk) */
    char *disk_src;                /* what it was made from */
    struct snap_vol *vols;
    size_t n_vols;
    uint64_t t0;                   /* when the hold (or the pause) began */
    bool was_running;
    struct driver *drv;            /* live: the instance's backend, which pauses it */
    snapshot_done_cb done;
    void *opaque;
    int rc;
    struct duet_err err;
    json_t *meta;                  /* the snapshot's description */
};

static void job_free(struct snap_job *j)
{
    free(j->disk_src);
    free(j->vols);
    json_decref(j->meta);
    free(j);
}

static int path_join(char *out, size_t len, const char *a, const char *b, const char *c, struct duet_err *err)
{
    int n = snprintf(out, len, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    if (n < 0 || (size_t)n >= len)
        return duet_err_set(err, ENAMETOOLONG, "a snapshot's path is too long");
    return 0;
}

static int take(struct snap_job *j)
{
    const char *wl = j->w->name;
    char dir[PATH_MAX], sub[PATH_MAX + 80];
    if (snapshot_begin(j->root, wl, j->snap, dir, sizeof(dir), &j->err) < 0)
        return -1;
    json_t *vols = json_array();
    j->meta = json_pack("{s:s,s:s,s:I,s:o,s:o}", "workload", wl, "name", j->snap, "created_at",
                        (json_int_t)clock_wall_ms(), "disk", j->has_disk ? json_string(j->disk_src) : json_null(),
                        "volumes", vols);
    if (j->has_disk && j->vm && j->vm->kept_copy) {
        size_t n = 0;
        if (path_join(sub, sizeof(sub), dir, "disk", NULL, &j->err) < 0 || mkdir(sub, 0700) < 0 ||
            j->vm->kept_copy(j->vm, wl, sub, false, &n, &j->err) < 0)
            goto fail;
        if (!n)   /* none was there after all: the snapshot holds none */
            json_object_set_new(j->meta, "disk", json_null());
    } else if (j->has_disk) {
        duet_err_set(&j->err, ENOTSUP, "workload %s: its VM disk cannot be copied while the VM backend is unavailable",
                     wl);
        goto fail;
    }
    if (j->n_vols && (path_join(sub, sizeof(sub), dir, "volumes", NULL, &j->err) < 0 || mkdir(sub, 0700) < 0))
        goto fail;
    for (size_t i = 0; i < j->n_vols; i++) {
        if (path_join(sub, sizeof(sub), dir, "volumes", j->vols[i].name, &j->err) < 0 ||
            volume_save(j->volume_root, j->vols[i].name, sub, &j->err) < 0)
            goto fail;
        json_array_append_new(vols, json_pack("{s:s,s:o}", "name", j->vols[i].name, "size",
                                              j->vols[i].size ? json_integer((json_int_t)j->vols[i].size)
                                                              : json_null()));
    }
    json_object_set_new(j->meta, "bytes", json_integer((json_int_t)duet_tree_allocated(dir)));
    if (snapshot_commit(j->root, wl, j->snap, dir, j->meta, &j->err) < 0)
        goto fail;
    return 0;
fail:
    if (!j->err.msg[0])
        duet_err_sys(&j->err, "workload %s: cannot make snapshot %s", wl, j->snap);
    snapshot_abort(dir);
    return -1;
}

static int put_back(struct snap_job *j)
{
    const char *wl = j->w->name;
    char dir[PATH_MAX], sub[PATH_MAX + 80];
    if (!(j->meta = snapshot_get(j->root, wl, j->snap, &j->err)) ||
        snapshot_path(j->root, wl, j->snap, dir, sizeof(dir), &j->err) < 0)
        return -1;
    /* The disk as it was then: none, when it had none. */
    bool had_disk = json_is_string(json_object_get(j->meta, "disk"));
    if ((had_disk || j->has_disk) && j->vm && j->vm->kept_copy) {
        size_t n = 0;
        if (path_join(sub, sizeof(sub), dir, "disk", NULL, &j->err) < 0 ||
            j->vm->kept_copy(j->vm, wl, sub, true, &n, &j->err) < 0)
            return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j->meta, "volumes"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (!name || path_join(sub, sizeof(sub), dir, "volumes", name, &j->err) < 0 ||
            volume_restore(j->volume_root, name, sub, &j->err) < 0) {
            if (!j->err.msg[0])
                duet_err_set(&j->err, EINVAL, "workload %s: snapshot %s names a volume without a name", wl, j->snap);
            return -1;
        }
    }
    return 0;
}

static void snap_work(uv_work_t *req)
{
    struct snap_job *j = req->data;
    j->rc = j->restore ? put_back(j) : take(j);
}

static void snap_done(uv_work_t *req, int status)
{
    struct snap_job *j = req->data;
    struct wl *w = j->w;
    struct daemon *d = w->d;
    if (status == UV_ECANCELED && j->rc == 0) {
        j->rc = -1;
        duet_err_set(&j->err, ECANCELED, "the snapshot was cancelled");
    }
    uint64_t held_ms = clock_mono_ms() - j->t0;
    w->hold = false;
    w->hold_opaque = NULL;
    if (j->restore) {
        /* Done, or failed with each part either as it was or restored:
         * either way not asked again. */
        free(w->restore_from);
        w->restore_from = NULL;
        if (j->rc == 0) {
            const char *disk = json_string_value(json_object_get(j->meta, "disk"));
            free(w->disk);
            w->disk = disk ? strdup(disk) : NULL;
        }
    }
    char took[32];
    units_duration_format(held_ms, took, sizeof(took));
    if (j->rc == 0) {
        free(w->message);
        w->message = NULL;
        json_object_set_new(j->meta, "stopped_ms", json_integer(j->was_running ? (json_int_t)held_ms : 0));
        daemon_event(d, w->name, j->restore ? "restored" : "snapshot", "%s snapshot %s%s%s",
                     j->restore ? "restored from" : "took", j->snap, j->was_running ? "; it was stopped for " : "",
                     j->was_running ? took : "");
    } else {
        daemon_event(d, w->name, "failed", "%s snapshot %s: %s", j->restore ? "restoring" : "taking", j->snap,
                     j->err.msg);
        if (j->restore)
            wl_set_message(w, "restoring snapshot %s failed: %s", j->snap, j->err.msg);
    }
    wl_save(w);
    if (j->done)
        j->done(j->opaque, j->rc < 0 ? &j->err : NULL, j->rc == 0 ? j->meta : NULL);
    if (daemon_wl_find(d, w->name) == w && !d->shutting_down)
        wl_reconcile(w);
    wl_unref(w);
    job_free(j);
}

/* The hold has taken effect: no instance.  The copy goes to a worker. */
static void snap_ready(struct wl *w)
{
    struct snap_job *j = w->hold_opaque;
    uv_queue_work(w->d->loop, &j->req, snap_work, snap_done);
}

/* The named volumes w writes: a snapshot's; the ones it reads are another
 * workload's data. */
static void job_volumes(struct snap_job *j, const struct workload_spec *s)
{
    j->vols = calloc(s->n_volumes ? s->n_volumes : 1, sizeof(*j->vols));
    if (!j->vols)
        abort();
    for (size_t i = 0; i < s->n_volumes; i++) {
        const struct wl_volume *v = &s->volumes[i];
        if (!v->name || v->read_only)
            continue;
        bool seen = false;
        for (size_t k = 0; k < j->n_vols; k++)
            seen |= strcmp(j->vols[k].name, v->name) == 0;
        if (seen)
            continue;
        snprintf(j->vols[j->n_vols].name, sizeof(j->vols[0].name), "%s", v->name);
        j->vols[j->n_vols++].size = v->size;
    }
}

static bool has_written_volume(const struct workload_spec *s)
{
    for (size_t i = 0; i < s->n_volumes; i++)
        if (s->volumes[i].name && !s->volumes[i].read_only)
            return true;
    return false;
}

/* Another workload whose instance mounts a volume the snapshot restores,
 * or NULL. */
static const char *volume_in_use(struct daemon *d, const struct wl *w, json_t *vols, const char **vname)
{
    size_t i;
    json_t *v;
    json_array_foreach(vols, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        DAEMON_WL_FOREACH(d, o) {
            if (o != w && o->inst && wl_volume_named(o->inst_spec, name)) {
                *vname = name;
                return o->name;
            }
        }
    }
    return NULL;
}

/* A job for w's copy into ROOT/W/snap: what it holds is decided now. */
static struct snap_job *job_new(struct daemon *d, struct wl *w, const char *root, const char *snap,
                                snapshot_done_cb done, void *opaque)
{
    struct snap_job *j = calloc(1, sizeof(*j));
    if (!j)
        abort();
    j->req.data = j;
    j->w = w;
    snprintf(j->snap, sizeof(j->snap), "%s", snap);
    snprintf(j->root, sizeof(j->root), "%s", root);
    snprintf(j->volume_root, sizeof(j->volume_root), "%s", d->volume_root);
    j->vm = d->drv_open[BACKEND_VM] ? d->drv[BACKEND_VM] : NULL;
    j->has_disk = w->disk != NULL;
    j->disk_src = w->disk ? strdup(w->disk) : NULL;
    job_volumes(j, w->spec);
    j->done = done;
    j->opaque = opaque;
    return j;
}

static int job_start(struct daemon *d, struct wl *w, const char *root, const char *snap, bool restore,
                     snapshot_done_cb done, void *opaque, struct duet_err *err)
{
    struct snap_job *j = job_new(d, w, root, snap, done, opaque);
    j->restore = restore;
    j->t0 = clock_mono_ms();
    j->was_running = w->inst && w->inst_running;
    if (restore && !w->restore_from) {
        /* Written before anything is taken. */
        w->restore_from = strdup(snap);
        if (wl_save(w) < 0) {
            free(w->restore_from);
            w->restore_from = NULL;
            job_free(j);
            return duet_err_set(err, EAGAIN, "%s", d->degraded);
        }
    }
    w->hold = true;
    w->hold_why = restore ? "for a snapshot's restore" : "for a snapshot";
    wl_set_message(w, "stopped %s (%s)", w->hold_why, snap);
    w->hold_ready = snap_ready;
    w->hold_opaque = j;
    wl_ref(w);
    daemon_event(d, w->name, "snapshot", "%s snapshot %s: %s", restore ? "restoring" : "taking", snap,
                 j->was_running ? "stopping it first" : "it has no running instance");
    wl_reconcile(w);
    return 0;
}

int daemon_snapshot(struct daemon *d, const char *name, const char *snap, bool restore, snapshot_done_cb done,
                    void *opaque, struct duet_err *err)
{
    struct wl *w = daemon_wl_find(d, name);
    if (!w || w->deleted)
        return duet_err_set(err, ENOENT, "no workload named \"%.63s\"; duet get lists them", name);
    if (d->degraded[0])
        return duet_err_set(err, EAGAIN, "%s", d->degraded);
    if (w->hold)
        return duet_err_set(err, EBUSY, "workload %s: a snapshot of it is being %s; wait for it", name,
                            w->restore_from ? "restored" : "taken");
    char root[4200], path[PATH_MAX];
    snprintf(root, sizeof(root), "%s/snapshots", d->state_dir);
    if (snapshot_path(root, name, snap, path, sizeof(path), err) < 0)
        return -1;
    if (restore) {
        json_t *meta = snapshot_get(root, name, snap, err);
        if (!meta)
            return -1;
        /* A disk is an overlay of the image it was made from: one of
         * another image cannot be booted by this spec. */
        const char *disk = json_string_value(json_object_get(meta, "disk"));
        char now[4200] = "";
        bool resets = disk && wl_disk_resets(w->spec, disk, now, sizeof(now));
        const char *vname = NULL, *user = volume_in_use(d, w, json_object_get(meta, "volumes"), &vname);
        if (resets)
            duet_err_set(err, ESTALE,
                         "workload %s: snapshot %s holds a disk made from %s and the spec now says %s: apply the "
                         "spec it was taken with first, or set spec.image.keepDisk: true",
                         name, snap, disk, now[0] ? now : "no disk");
        else if (user)
            duet_err_set(err, EBUSY,
                         "workload %s: snapshot %s restores volume %s, which workload %s has mounted; delete or "
                         "replace %s first",
                         name, snap, vname, user, user);
        json_decref(meta);
        if (resets || user)
            return -1;
    } else {
        struct duet_err e2;
        json_t *meta = snapshot_get(root, name, snap, &e2);
        if (meta) {
            json_decref(meta);
            return duet_err_set(err, EEXIST,
                                "workload %s already has a snapshot %s; name another, or remove it first (duet "
                                "snapshot rm %s %s)",
                                name, snap, name, snap);
        }
        if (!w->disk && !has_written_volume(w->spec))
            return duet_err_set(err, ENODATA,
                                "workload %s has nothing a snapshot keeps: no VM disk kept for it and no named "
                                "volume it writes (a container's writable layer lives with its instance; its data "
                                "belongs in a named volume)",
                                name);
    }
    return job_start(d, w, root, snap, restore, done, opaque, err);
}

int daemon_snapshot_into(struct daemon *d, struct wl *w, const char *root, const char *snap, const char *why,
                         snapshot_done_cb done, void *opaque, struct duet_err *err)
{
    if (job_start(d, w, root, snap, false, done, opaque, err) < 0)
        return -1;
    w->hold_why = why;
    wl_set_message(w, "stopped %s", why);
    return 0;
}

/* ---- live: paused, not stopped ------------------------------------------- */

static void live_finish(struct snap_job *j)
{
    struct wl *w = j->w;
    w->busy = false;
    if (j->done)
        j->done(j->opaque, j->rc < 0 ? &j->err : NULL, j->rc == 0 ? j->meta : NULL);
    if (daemon_wl_find(w->d, w->name) == w && !w->d->shutting_down)
        wl_reconcile(w);
    wl_unref(w);
    job_free(j);
}

static void live_resumed(void *opaque, const struct duet_err *err)
{
    struct snap_job *j = opaque;
    struct wl *w = j->w;
    if (err) {
        /* Its data is copied; the workload is what is in trouble. */
        daemon_event(w->d, w->name, "failed", "resuming it after the copy: %s", err->msg);
        wl_set_message(w, "paused for a backup and could not be resumed: %s", err->msg);
    } else {
        health_pause(w, false);
    }
    live_finish(j);
}

static void live_copied(uv_work_t *req, int status)
{
    struct snap_job *j = req->data;
    struct wl *w = j->w;
    uint64_t paused_ms = clock_mono_ms() - j->t0;
    if (status == UV_ECANCELED && j->rc == 0) {
        j->rc = -1;
        duet_err_set(&j->err, ECANCELED, "the copy was cancelled");
    }
    if (j->rc == 0) {
        json_object_set_new(j->meta, "paused_ms", json_integer((json_int_t)paused_ms));
        json_object_set_new(j->meta, "stopped_ms", json_integer(0));
    }
    struct duet_err err = {0};
    if (!w->inst || j->drv->pause(j->drv, w->inst, false, live_resumed, j, &err) < 0) {
        live_resumed(j, err.msg[0] ? &err : NULL);
        return;
    }
}

static void live_paused(void *opaque, const struct duet_err *err)
{
    struct snap_job *j = opaque;
    if (err) {
        j->rc = -1;
        j->err = *err;
        health_pause(j->w, false);
        live_finish(j);
        return;
    }
    j->t0 = clock_mono_ms();
    uv_queue_work(j->w->d->loop, &j->req, snap_work, live_copied);
}

int daemon_snapshot_live(struct daemon *d, struct wl *w, const char *root, const char *snap, snapshot_done_cb done,
                         void *opaque, struct duet_err *err)
{
    struct driver *drv = w->inst ? daemon_driver(d, w->inst_backend) : NULL;
    if (!w->inst || !w->inst_running)
        return duet_err_set(err, EINVAL, "workload %s is not running", w->name);
    if (!drv || !drv->pause)
        return duet_err_set(err, ENOTSUP, "workload %s: its %s backend cannot pause it for a copy; use --stop", w->name,
                            backend_kind_name(w->inst_backend));
    if (w->busy)
        return duet_err_set(err, EBUSY, "workload %s is being started, stopped or changed; try again once it runs",
                            w->name);
    struct snap_job *j = job_new(d, w, root, snap, done, opaque);
    j->drv = drv;
    /* busy: the reconciler leaves it as it is until it runs again */
    health_pause(w, true);
    if (drv->pause(drv, w->inst, true, live_paused, j, err) < 0) {
        health_pause(w, false);
        job_free(j);
        return -1;
    }
    w->busy = true;
    wl_ref(w);
    return 0;
}

void daemon_snapshots_resume(struct daemon *d)
{
    DAEMON_WL_FOREACH(d, w) {
        if (!w->restore_from || w->hold)
            continue;
        struct duet_err err = {0};
        char snap[64];
        snprintf(snap, sizeof(snap), "%s", w->restore_from);
        daemon_event(d, w->name, "snapshot", "the restore from snapshot %s was cut short: doing it again", snap);
        char root[4200];
        snprintf(root, sizeof(root), "%s/snapshots", d->state_dir);
        if (job_start(d, w, root, snap, true, NULL, NULL, &err) < 0)
            daemon_event(d, w->name, "failed", "restoring snapshot %s: %s", snap, err.msg);
    }
}

/* ---- removal ---------------------------------------------------------- */

struct rm_job {
    uv_work_t req;
    struct daemon *d;
    char root[4200], wl[64], snap[64];   /* snap "": every one */
    snapshot_rm_cb done;
    void *opaque;
    int rc;
    struct duet_err err;
};

static void rm_work(uv_work_t *req)
{
    struct rm_job *j = req->data;
    j->rc = j->snap[0] ? snapshot_remove(j->root, j->wl, j->snap, &j->err)
                       : snapshot_remove_all(j->root, j->wl, &j->err);
}

static void rm_done(uv_work_t *req, int status)
{
    struct rm_job *j = req->data;
    if (status == UV_ECANCELED && j->rc == 0) {
        j->rc = -1;
        duet_err_set(&j->err, ECANCELED, "removing the snapshot was cancelled");
    }
    if (j->rc == 0 && j->snap[0])
        daemon_event(j->d, j->wl, "snapshot", "snapshot %s was removed", j->snap);
    j->done(j->opaque, j->rc < 0 ? &j->err : NULL);
    free(j);
}

void daemon_snapshot_remove(struct daemon *d, const char *name, const char *snap, snapshot_rm_cb done, void *opaque)
{
    struct rm_job *j = calloc(1, sizeof(*j));
    if (!j)
        abort();
    j->req.data = j;
    j->d = d;
    snprintf(j->root, sizeof(j->root), "%s/snapshots", d->state_dir);
    snprintf(j->wl, sizeof(j->wl), "%s", name);
    snprintf(j->snap, sizeof(j->snap), "%s", snap ? snap : "");
    j->done = done;
    j->opaque = opaque;
    uv_queue_work(d->loop, &j->req, rm_work, rm_done);
}

/* ---- a deleted workload's ------------------------------------------------ */

static void wl_snaps_removed(void *opaque, const struct duet_err *err)
{
    struct wl *w = opaque;
    if (err)
        daemon_event(w->d, w->name, "failed", "removing its snapshots: %s", err->msg);
    w->busy = false;
    w->snaps_removed = true;
    if (daemon_wl_find(w->d, w->name) == w && !w->d->shutting_down)
        wl_reconcile(w);
    wl_unref(w);
}

bool wl_snapshots_remove(struct wl *w)
{
    char dir[PATH_MAX];
    struct stat st;
    if (snprintf(dir, sizeof(dir), "%s/snapshots/%s", w->d->state_dir, w->name) >= (int)sizeof(dir) ||
        lstat(dir, &st) < 0) {
        w->snaps_removed = true;
        return false;
    }
    w->busy = true;
    wl_ref(w);
    daemon_snapshot_remove(w->d, w->name, NULL, wl_snaps_removed, w);
    return true;
}
