/*
 * image.c - run specs, and importing the images they need (see image.h).
 */
#include "orchestrator/image.h"
#include "orchestrator/secret.h"

#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/signame.h"
#include "orchestrator/daemon.h"
#include "orchestrator/workload.h"
#include "storage/volume.h"

static bool text_ok(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
            return false;
    return n <= max;
}

/* An image's User: NAME, UID, NAME:GROUP or UID:GID, as spec.user. */
static bool image_user_ok(const char *u)
{
    if (!u[0] || strlen(u) > 64)
        return false;
    for (const char *p = u; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-' || *p == '.' || *p == ':'))
            return false;
    return strchr(u, ':') == strrchr(u, ':') && u[0] != ':' && u[strlen(u) - 1] != ':';
}

static bool image_dir_ok(const char *d)
{
    if (d[0] != '/' || !text_ok(d, 4096))
        return false;
    for (const char *p = d; (p = strstr(p, "..")); p += 2)
        if ((p == d || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
            return false;
    return true;
}

/* x then y, each string copied into a: the image's config is freed once
 * the run spec is built. */
static const char **join(struct arena *a, const char *const *x, size_t nx, const char *const *y, size_t ny,
                         size_t *n)
{
    const char **out = arena_alloc(a, (nx + ny + 1) * sizeof(*out));
    for (size_t i = 0; i < nx; i++)
        out[i] = arena_strdup(a, x[i]);
    for (size_t i = 0; i < ny; i++)
        out[nx + i] = arena_strdup(a, y[i]);
    *n = nx + ny;
    return out;
}

struct workload_spec *run_spec_build(struct arena *a, const struct workload_spec *s, const struct image *img,
                                     const char *root, struct duet_err *err)
{
    struct workload_spec *r = arena_alloc(a, sizeof(*r));
    *r = *s;
    r->args = NULL;
    r->n_args = 0;
    if (!img) {
        r->command = join(a, s->command, s->n_command, s->args, s->n_args, &r->n_command);
        return r;
    }
    const struct image_config *c = &img->config;
    r->image.rootfs = arena_strdup(a, root);
    /* Kubernetes' reading: command replaces Entrypoint (and drops Cmd),
     * args replace Cmd. */
    const char *const *entry = s->command ? s->command : (const char *const *)c->entrypoint;
    size_t n_entry = s->command ? s->n_command : c->n_entrypoint;
    const char *const *cmd = s->args ? s->args : s->command ? NULL : (const char *const *)c->cmd;
    size_t n_cmd = s->args ? s->n_args : s->command ? 0 : c->n_cmd;
    r->command = join(a, entry, n_entry, cmd, n_cmd, &r->n_command);
    if (r->n_command == 0 || !r->command[0][0]) {
        duet_err_set(err, EINVAL, "image %s has no Entrypoint or Cmd to run: give spec.command", s->image.oci);
        return NULL;
    }
    /* The image's Env first, each overridden by the spec's of that name. */
    r->env = arena_alloc(a, (c->n_env + s->n_env + 1) * sizeof(*r->env));
    r->n_env = 0;
    for (size_t i = 0; i < c->n_env; i++) {
        const char *eq = strchr(c->env[i], '=');
        const char *key = arena_strndup(a, c->env[i], (size_t)(eq - c->env[i]));
        if (!wl_env_get(s, key))
            r->env[r->n_env++] = (struct kv){.key = key, .value = arena_strdup(a, eq + 1)};
    }
    for (size_t i = 0; i < s->n_env; i++)
        r->env[r->n_env++] = s->env[i];
    if (!s->user && c->user) {
        if (!image_user_ok(c->user)) {
            duet_err_set(err, EINVAL, "image %s: its User \"%.64s\" is not NAME, UID, NAME:GROUP or UID:GID; give "
                         "spec.user",
                         s->image.oci, c->user);
            return NULL;
        }
        r->user = arena_strdup(a, c->user);
    }
    if (!s->working_dir && c->working_dir) {
        if (!image_dir_ok(c->working_dir)) {
            duet_err_set(err, EINVAL, "image %s: its WorkingDir \"%.64s\" is not an absolute path without \"..\"; "
                         "give spec.workingDir",
                         s->image.oci, c->working_dir);
            return NULL;
        }
        r->working_dir = arena_strdup(a, c->working_dir);
    }
    if (c->stop_signal) {
        /* Docker refuses to run an image whose StopSignal names no
         * signal; so does duet, rather than stop it some other way. */
        if (!(r->stop_signal = duet_signal_parse(c->stop_signal))) {
            duet_err_set(err, EINVAL, "image %s: its StopSignal \"%.32s\" is not a signal (e.g. SIGQUIT or 3)",
                         s->image.oci, c->stop_signal);
            return NULL;
        }
    }
    return r;
}

/* ---- progress ------------------------------------------------------------------- */

static void progress_heard(void *opaque, const struct image_progress *p)
{
    struct import_progress *ip = opaque;
    pthread_mutex_lock(&ip->lock);
    ip->latest = *p;
    pthread_mutex_unlock(&ip->lock);
    uv_async_send(&ip->async);   /* several sends before the loop runs are one wake-up */
}

static void progress_wake(uv_async_t *a)
{
    struct import_progress *ip = a->data;
    pthread_mutex_lock(&ip->lock);
    struct image_progress p = ip->latest;
    pthread_mutex_unlock(&ip->lock);
    ip->on_update(ip, &p);
}

int import_progress_start(struct import_progress *ip, uv_loop_t *loop,
                          void (*on_update)(struct import_progress *ip, const struct image_progress *p))
{
    memset(ip, 0, sizeof(*ip));
    pthread_mutex_init(&ip->lock, NULL);
    ip->on_update = on_update;
    ip->cb = (struct image_progress_cb){.fn = progress_heard, .opaque = ip};
    ip->started_ms = clock_mono_ms();
    ip->async.data = ip;
    return uv_async_init(loop, &ip->async, progress_wake);
}

static void progress_closed(uv_handle_t *h)
{
    struct import_progress *ip = h->data;
    pthread_mutex_destroy(&ip->lock);
    ip->done(ip);
}

void import_progress_close(struct import_progress *ip, void (*done)(struct import_progress *ip))
{
    ip->done = done;
    uv_close((uv_handle_t *)&ip->async, progress_closed);
}

void import_progress_text(const struct import_progress *ip, const struct image_progress *p, char *buf, size_t len)
{
    if (!p->layers_total) {
        snprintf(buf, len, "every layer is in the store already");
        return;
    }
    uint64_t ms = clock_mono_ms() - ip->started_ms;
    double mib = 1024.0 * 1024.0;
    int n = snprintf(buf, len, "layer %u of %u, %.1f of %.1f MiB", p->layers_done + (p->layers_done < p->layers_total),
                     p->layers_total, (double)p->bytes_done / mib, (double)p->bytes_total / mib);
    if (ms >= 500 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ", %.1f MiB/s", (double)p->bytes_done / mib / ((double)ms / 1000.0));
}

/* ---- importing ------------------------------------------------------------------ */

/* One import per reference at a time: every workload that needs the
 * image while it is being imported waits for that one. */
struct import_job {
    uv_work_t req;
    struct daemon *d;
    struct import_job *next;       /* d->imports */
    char *ref;
    struct wl **waiters;           /* each with a reference */
    size_t n_waiters;
    struct image *img;
    struct duet_err err;
    int rc;
    struct import_progress progress;   /* "pulling" events, at most one a second per waiter */
    uint64_t last_event_ms;
    unsigned last_layers;
};

static void import_job_free(struct import_progress *ip)
{
    struct import_job *j = (struct import_job *)((char *)ip - offsetof(struct import_job, progress));
    free(j->waiters);
    free(j->ref);
    free(j);
}

static void import_job_progress(struct import_progress *ip, const struct image_progress *p)
{
    struct import_job *j = (struct import_job *)((char *)ip - offsetof(struct import_job, progress));
    uint64_t now = clock_mono_ms();
    if (now - j->last_event_ms < 1000 && p->layers_done == j->last_layers)
        return;
    if (!p->layers_total || p->layers_done == p->layers_total)
        return;   /* "pulled" says the end */
    j->last_event_ms = now;
    j->last_layers = p->layers_done;
    char text[160];
    import_progress_text(ip, p, text, sizeof(text));
    for (size_t i = 0; i < j->n_waiters; i++) {
        struct wl *w = j->waiters[i];
        daemon_event(j->d, w->name, "pulling", "image %s: %s", j->ref, text);
        /* what get, describe and apply --wait show while it waits */
        if (w->phase == PH_PENDING)
            wl_set_message(w, "importing image %s: %s", j->ref, text);
    }
}

static void import_work(uv_work_t *req)
{
    struct import_job *j = req->data;
    j->rc = image_store_pull(j->d->images, j->ref, &j->progress.cb, &j->img, &j->err);
}

static void import_done(uv_work_t *req, int status)
{
    struct import_job *j = req->data;
    struct daemon *d = j->d;
    for (struct import_job **p = &d->imports; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    if (status == UV_ECANCELED && j->rc == 0 && !j->img) {
        j->rc = -1;
        duet_err_set(&j->err, ECANCELED, "image %s: the import was cancelled", j->ref);
    }
    for (size_t i = 0; i < j->n_waiters; i++) {
        struct wl *w = j->waiters[i];
        if (j->rc == 0)
            daemon_event(d, w->name, "pulled", "image %s is in the store: %s, %zu layer%s, %.1f MiB unpacked", j->ref,
                         j->img->id, j->img->n_layers, j->img->n_layers == 1 ? "" : "s",
                         (double)j->img->size / (1 << 20));
        else
            daemon_event(d, w->name, "failed", "%s", j->err.msg);
        w->image_busy = false;
        /* an import for a spec since replaced tells the new one nothing */
        if (j->rc < 0 && w->spec && w->spec->image.oci && !strcmp(w->spec->image.oci, j->ref)) {
            free(w->image_err);
            w->image_err = strdup(j->err.msg);
        }
        /* still the daemon's (not forgotten, nor the daemon closing) */
        if (daemon_wl_find(d, w->name) == w)
            wl_reconcile(w);
        wl_unref(w);
    }
    image_free(j->img);
    import_progress_close(&j->progress, import_job_free);
}

static void import_start(struct wl *w)
{
    struct daemon *d = w->d;
    const char *ref = w->spec->image.oci;
    struct import_job *j = d->imports;
    while (j && strcmp(j->ref, ref) != 0)
        j = j->next;
    bool started = j != NULL;
    if (!j) {
        j = calloc(1, sizeof(*j));
        if (!j || !(j->ref = strdup(ref)))
            abort();
        j->d = d;
        j->req.data = j;
        if (import_progress_start(&j->progress, d->loop, import_job_progress) != 0)
            abort();
        j->next = d->imports;
        d->imports = j;
    }
    j->waiters = realloc(j->waiters, (j->n_waiters + 1) * sizeof(*j->waiters));
    if (!j->waiters)
        abort();
    j->waiters[j->n_waiters++] = w;
    w->image_busy = true;
    wl_ref(w);
    if (started) {
        daemon_event(d, w->name, "pulling", "waiting for image %s, which is being imported", ref);
        return;
    }
    daemon_event(d, w->name, "pulling", "image %s is not in the store: importing it", ref);
    uv_queue_work(d->loop, &j->req, import_work, import_done);
}

static bool has_named_volumes(const struct workload_spec *s)
{
    for (size_t i = 0; i < s->n_volumes; i++)
        if (s->volumes[i].name)
            return true;
    return false;
}

/* A named volume's source is its directory under STATE/volumes, a path
 * duet made (managed: the drivers let it lie in the state directory). */
static void run_spec_volumes(struct arena *a, struct workload_spec *r, const char *volume_root)
{
    struct wl_volume *v = arena_alloc(a, r->n_volumes * sizeof(*v));
    for (size_t i = 0; i < r->n_volumes; i++) {
        v[i] = r->volumes[i];
        if (!v[i].name)
            continue;
        char path[PATH_MAX];
        volume_data_path(volume_root, v[i].name, path, sizeof(path));
        v[i].source = arena_strdup(a, path);
        v[i].managed = true;
    }
    r->volumes = v;
}

static int run_spec_get(struct wl *w, bool may_import, const struct workload_spec **out, struct duet_err *err)
{
    const struct workload_spec *s = w->spec;
    if (!s->image.oci && !s->args && !has_named_volumes(s) && !s->n_secrets) {
        *out = s;
        return 0;
    }
    if (w->run_spec && w->run_spec_of == s) {
        *out = w->run_spec;
        return 0;
    }
    if (w->image_busy)
        return 1;
    if (w->image_err) {
        duet_err_set(err, EIO, "%s", w->image_err);
        free(w->image_err);
        w->image_err = NULL;
        return -1;
    }
    struct image *img = NULL;
    char root[PATH_MAX] = "";
    if (s->image.oci) {
        if (!w->d->images)
            return duet_err_set(err, ENOTSUP, "image %s: this duetd has no image store", s->image.oci);
        int g = image_store_get(w->d->images, s->image.oci, &img, err);
        if (g < 0)
            return -1;
        if (g == 1 && !may_import)
            return duet_err_set(err, ENOENT, "image %s is not in the store", s->image.oci);
        if (g == 1) {
            import_start(w);
            return 1;
        }
        if (image_store_root(w->d->images, img, root, sizeof(root), err) < 0) {
            image_free(img);
            return -1;
        }
    }
    struct workload_spec *run = run_spec_build(&w->grp->set->arena, s, img, root, err);
    image_free(img);
    if (!run)
        return -1;
    if (has_named_volumes(s))
        run_spec_volumes(&w->grp->set->arena, run, w->d->volume_root);
    /* The values only here, in the spec an instance runs from. */
    if (secret_store_fill(w->d->secrets, &w->grp->set->arena, run, err) < 0)
        return -1;
    w->run_spec = run;
    w->run_spec_of = s;
    *out = run;
    return 0;
}

void wl_image_prefetch(struct wl *w)
{
    const char *ref = w->spec ? w->spec->image.oci : NULL;
    if (!ref || !w->d->images || w->image_busy)
        return;
    struct image *img = NULL;
    if (image_store_get(w->d->images, ref, &img, NULL) == 1)
        import_start(w);
    image_free(img);
}

int wl_run_spec(struct wl *w, const struct workload_spec **out, struct duet_err *err)
{
    return run_spec_get(w, true, out, err);
}

int wl_run_spec_stored(struct wl *w, const struct workload_spec **out, struct duet_err *err)
{
    return run_spec_get(w, false, out, err);
}
