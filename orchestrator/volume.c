/*
 * volume.c - the daemon's side of named volumes (storage/volume.h).
 *
 * A workload's named volumes are made (and a sized one mounted) before
 * its create, on a worker thread: formatting a volume's filesystem takes
 * longer than the loop may be held.  The workload is pending meanwhile
 * ("preparing its volumes") and is reconciled when the worker is done.
 * Removals (duet volume rm, delete --volumes) run there too.  One volume
 * operation at a time (volume_lock): two workloads that share a volume
 * (one writes it, the others read) never make it twice.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "backends/rootfs.h"
#include "orchestrator/daemon.h"
#include "orchestrator/workload.h"
#include "storage/volume.h"

struct vol_item {
    char name[64];
    uint64_t size;
};

struct prep_job {
    uv_work_t req;
    struct wl *w;
    char root[4200];
    char rootfs[PATH_MAX];         /* "" : the volume's data is root's */
    char user[256];
    char what[96];
    size_t n;
    struct vol_item *items;
    int rc;
    struct duet_err err;
};

static void prep_work(uv_work_t *req)
{
    struct prep_job *j = req->data;
    /* Its data is given to the workload's user, as the image names it,
     * which is who writes there. */
    struct rootfs_user u = {0};
    if (j->rootfs[0] && rootfs_user_resolve(j->rootfs, j->user[0] ? j->user : NULL, j->what, &u, &j->err) < 0) {
        j->rc = -1;
        return;
    }
    pthread_mutex_lock(&j->w->d->volume_lock);
    for (size_t i = 0; i < j->n && j->rc == 0; i++)
        j->rc = volume_prepare(j->root, j->items[i].name, j->items[i].size, u.uid, u.gid, &j->err);
    pthread_mutex_unlock(&j->w->d->volume_lock);
}

static void prep_done(uv_work_t *req, int status)
{
    struct prep_job *j = req->data;
    struct wl *w = j->w;
    struct daemon *d = w->d;
    if (status == UV_ECANCELED && j->rc == 0) {
        j->rc = -1;
        duet_err_set(&j->err, ECANCELED, "preparing its volumes was cancelled");
    }
    w->vol_busy = false;
    free(w->vol_err);
    w->vol_err = j->rc < 0 ? strdup(j->err.msg) : NULL;
    if (j->rc == 0)
        w->vol_ready_of = w->spec;
    if (daemon_wl_find(d, w->name) == w)
        wl_reconcile(w);
    wl_unref(w);
    free(j->items);
    free(j);
}

int wl_volumes_ready(struct wl *w, const struct workload_spec *run, struct duet_err *err)
{
    if (w->vol_busy)
        return 1;
    if (w->vol_err) {
        duet_err_set(err, EIO, "%s", w->vol_err);
        free(w->vol_err);
        w->vol_err = NULL;
        return -1;
    }
    size_t n = 0;
    bool ready = true;
    for (size_t i = 0; i < run->n_volumes; i++)
        if (run->volumes[i].name) {
            n++;
            ready = ready && volume_ready(w->d->volume_root, run->volumes[i].name);
        }
    /* One writer at a time, at run time too: apply lets two workloads
     * write a volume only when one of them is deleted, whose instance may
     * still run while it stops.  The new one waits for it. */
    const char *writer = NULL, *vname = NULL;
    for (size_t i = 0; i < run->n_volumes && !writer; i++) {
        const struct wl_volume *v = &run->volumes[i];
        if (!v->name || v->read_only)
            continue;
        DAEMON_WL_FOREACH(w->d, o) {
            if (o == w || !o->inst || !o->inst_spec)
                continue;
            const struct wl_volume *ov = wl_volume_named(o->inst_spec, v->name);
            if (ov && !ov->read_only) {
                writer = o->name, vname = v->name;
                break;
            }
        }
    }
    if (writer) {
        duet_err_set(err, EBUSY, "waiting for workload %s, whose instance still writes volume %s", writer, vname);
        return 2;
    }
    /* Checked once per spec, then at each create only for being there
     * (a reboot unmounts a sized one). */
    if (!n || (ready && w->vol_ready_of == w->spec))
        return 0;
    struct prep_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->items = calloc(n, sizeof(*j->items))))
        abort();
    j->req.data = j;
    j->w = w;
    snprintf(j->root, sizeof(j->root), "%s", w->d->volume_root);
    snprintf(j->rootfs, sizeof(j->rootfs), "%s", run->image.rootfs ? run->image.rootfs : "");
    snprintf(j->user, sizeof(j->user), "%s", run->user ? run->user : "");
    snprintf(j->what, sizeof(j->what), "workload %s", w->name);
    for (size_t i = 0; i < run->n_volumes; i++)
        if (run->volumes[i].name) {
            snprintf(j->items[j->n].name, sizeof(j->items[j->n].name), "%s", run->volumes[i].name);
            j->items[j->n++].size = run->volumes[i].size;
        }
    w->vol_busy = true;
    wl_ref(w);
    uv_queue_work(w->d->loop, &j->req, prep_work, prep_done);
    return 1;
}

/* ---- removal ---------------------------------------------------------- */

struct rm_job {
    uv_work_t req;
    struct daemon *d;
    char name[64];
    volume_done_cb done;
    void *opaque;
    int rc;
    struct duet_err err;
};

static void rm_work(uv_work_t *req)
{
    struct rm_job *j = req->data;
    pthread_mutex_lock(&j->d->volume_lock);
    j->rc = volume_remove(j->d->volume_root, j->name, &j->err);
    pthread_mutex_unlock(&j->d->volume_lock);
}

static void rm_done(uv_work_t *req, int status)
{
    struct rm_job *j = req->data;
    if (status == UV_ECANCELED && j->rc == 0) {
        j->rc = -1;
        duet_err_set(&j->err, ECANCELED, "removing volume %s was cancelled", j->name);
    }
    if (j->rc == 0)
        daemon_event(j->d, NULL, "volume", "volume %s was removed", j->name);
    j->done(j->opaque, j->rc < 0 ? &j->err : NULL);
    free(j);
}

void daemon_volume_remove(struct daemon *d, const char *name, volume_done_cb done, void *opaque)
{
    struct rm_job *j = calloc(1, sizeof(*j));
    if (!j)
        abort();
    j->req.data = j;
    j->d = d;
    snprintf(j->name, sizeof(j->name), "%s", name);
    j->done = done;
    j->opaque = opaque;
    uv_queue_work(d->loop, &j->req, rm_work, rm_done);
}

size_t daemon_volume_users(struct daemon *d, const char *name, const char **first)
{
    size_t n = 0;
    if (first)
        *first = NULL;
    DAEMON_WL_FOREACH(d, w) {
        if (!wl_volume_named(w->spec, name))
            continue;
        if (first && !n)
            *first = w->name;
        n++;
    }
    return n;
}

/* ---- delete --volumes ------------------------------------------------- */

struct wl_rm {
    struct wl *w;
    size_t left;
};

static void wl_rm_one_done(void *opaque, const struct duet_err *err)
{
    struct wl_rm *r = opaque;
    struct wl *w = r->w;
    if (err)
        daemon_event(w->d, w->name, "failed", "removing its volume: %s", err->msg);
    if (--r->left)
        return;
    free(r);
    w->busy = false;
    w->volumes_removing = false;
    if (daemon_wl_find(w->d, w->name) == w)
        wl_reconcile(w);
    wl_unref(w);
}

/* Another workload than w that names volume `name`, or NULL. */
static const char *other_user(struct daemon *d, const struct wl *w, const char *name)
{
    DAEMON_WL_FOREACH(d, o) {
        if (o != w && wl_volume_named(o->spec, name))
            return o->name;
    }
    return NULL;
}

bool wl_volumes_remove(struct wl *w)
{
    struct daemon *d = w->d;
    const struct workload_spec *s = w->spec;
    size_t n = 0;
    const char **names = calloc(s && s->n_volumes ? s->n_volumes : 1, sizeof(*names));
    if (!names)
        abort();
    for (size_t i = 0; s && i < s->n_volumes; i++) {
        const char *name = s->volumes[i].name;
        bool seen = false;
        for (size_t k = 0; name && k < n; k++)
            seen |= strcmp(names[k], name) == 0;
        if (!name || seen)
            continue;
        /* A volume another workload names is its data too. */
        const char *other = other_user(d, w, name);
        if (other)
            daemon_event(d, w->name, "volume", "volume %s is kept: workload %s names it too", name, other);
        else
            names[n++] = name;
    }
    w->delete_volumes = false;   /* asked once: the workload goes next */
    if (!n) {
        free(names);
        return false;
    }
    struct wl_rm *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->w = w;
    r->left = n;
    w->busy = true;
    w->volumes_removing = true;
    wl_ref(w);
    for (size_t k = 0; k < n; k++)
        daemon_volume_remove(d, names[k], wl_rm_one_done, r);
    free(names);
    return true;
}
