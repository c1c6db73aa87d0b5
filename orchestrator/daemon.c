/*
 * daemon.c - duetd's context: open, start, shutdown, close; the degraded
 * state.
 *
 * Opening order matters for crash safety: the store, then the host probe
 * and the drivers, then every instance the store names is re-attached
 * before the API accepts a request (main.c starts it after daemon_open),
 * so no request can act on a half-known fleet.
 *
 * Shutdown (SIGTERM, SIGINT) lets go of every instance without touching
 * it: workloads keep running and the next daemon re-attaches.  kill -9
 * needs nothing more, since every step was written to the store first.
 *
 * Degraded: a write the store refuses (a full disk, an I/O error) would
 * leave the daemon acting on state it never wrote, which the next daemon
 * would not know.  So from the first refusal the daemon takes no step on
 * the host and refuses changes, says why everywhere (the API's answers,
 * /v1/info, duet get, the log), and tries every DUETD_STORE_RETRY_MS to
 * write every workload's row again; once that commits, it goes on.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/container/container.h"
#include "backends/vm/vm.h"
#include "common/clock.h"
#include "manifests/specjson.h"
#include "orchestrator/daemon.h"
#include "orchestrator/compare.h"
#include "orchestrator/secret.h"
#include "scheduler/hostprobe.h"

/* ---- time ------------------------------------------------------------------ */

uint64_t now_ms(void)
{
    return clock_wall_ms();
}

uint64_t mono_ms(void)
{
    return clock_mono_ms();
}

/* ---- the fleet ------------------------------------------------------------- */

struct wl *daemon_wl_next(const struct daemon *d, size_t *pos)
{
    while (*pos < d->wls.cap) {
        const struct strmap_slot *s = &d->wls.slots[(*pos)++];
        if (s->key && s->val)
            return s->val;
    }
    return NULL;
}

struct wl *daemon_wl_find(const struct daemon *d, const char *name)
{
    return strmap_get(&d->wls, name);
}

struct driver *daemon_driver(const struct daemon *d, enum backend_kind k)
{
    return d->drv_open[k] ? d->drv[k] : NULL;
}

/* Every workload's next step (after an apply, on resync, once the store
 * takes writes again). */
static void reconcile_every(struct daemon *d)
{
    uint64_t t0 = daemon_pass_begin();
    DAEMON_WL_FOREACH(d, w)
        wl_reconcile(w);
    daemon_pass_end(d, t0);
}

static void on_soon(uv_timer_t *t)
{
    reconcile_every(t->data);
}

void daemon_reconcile_soon(struct daemon *d)
{
    if (!d->shutting_down)
        uv_timer_start(&d->soon, on_soon, 0, 0);
}

/* ---- degraded ------------------------------------------------------------------ */

static void on_store_retry(uv_timer_t *t)
{
    struct daemon *d = t->data;
    struct duet_err err = {0};
    int rc = store_begin(d->store, &err);
    DAEMON_WL_FOREACH(d, w) {
        if (rc < 0)
            break;
        struct store_row r;
        wl_row(w, &r);
        rc = store_put(d->store, &r, &err);
    }
    if (rc == 0)
        rc = store_commit(d->store, &err);
    if (rc < 0) {
        store_rollback(d->store);
        return;   /* still refused: the timer tries again */
    }
    uv_timer_stop(&d->store_retry);
    d->degraded[0] = '\0';
    daemon_event(d, NULL, "store", "the state store takes writes again: every workload's state is written; "
                                   "duetd goes on");
    reconcile_every(d);
}

void daemon_degrade(struct daemon *d, const char *what, const struct duet_err *err)
{
    if (d->degraded[0])
        return;
    snprintf(d->degraded, sizeof(d->degraded),
             "duetd is degraded: its state store %.512s/state.db refused a write (%.64s: %s); nothing changes on the "
             "host until it takes writes again (free space on its filesystem, or fix what the error names); "
             "duetd retries every second",
             d->state_dir, what, err->msg);
    daemon_event(d, NULL, "degraded", "%s", d->degraded);
    if (!d->shutting_down)
        uv_timer_start(&d->store_retry, on_store_retry, DUETD_STORE_RETRY_MS, DUETD_STORE_RETRY_MS);
}

/* ---- the log -------------------------------------------------------------------- */

static void log_emit(struct event_sink *s, const struct store_event *e)
{
    (void)s;
    fprintf(stderr, "duetd: %s%s%s: %s\n", e->workload ? e->workload : "", e->workload ? " " : "", e->type,
            e->message);
}

/* ---- loading --------------------------------------------------------------------- */

struct loading {
    struct daemon *d;
    char **texts;
    size_t n, cap;
};

static void load_row(void *opaque, const struct store_row *r)
{
    struct loading *l = opaque;
    struct wl *w = wl_load(l->d, r);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->texts = realloc(l->texts, l->cap * sizeof(*l->texts));
        if (!l->texts)
            abort();
    }
    l->texts[l->n++] = w->spec_json;
    /* An instance may exist: recovery decides, below. */
    if (r->inst_backend)
        w->busy = true;
}

int daemon_load(struct daemon *d, struct duet_err *err)
{
    struct loading l = {.d = d};
    if (store_load(d->store, load_row, &l, err) < 0)
        return -1;
    if (l.n == 0) {
        free(l.texts);
        return 0;
    }
    struct spec_group *g = calloc(1, sizeof(*g));
    if (!g)
        abort();
    g->set = manifest_set_new();
    specjson_load(g->set, "duetd-store", l.texts, l.n);
    free(l.texts);
    if (!manifest_set_ok(g->set)) {
        diag_print(&g->set->diags, stderr);
        manifest_set_free(g->set);
        free(g);
        return duet_err_set(err, EINVAL, "the state store %s/state.db holds specs this duetd cannot read",
                            d->state_dir);
    }
    g->refs = 1;
    for (size_t i = 0; i < g->set->n_workloads; i++) {
        struct wl *w = daemon_wl_find(d, g->set->workloads[i]->name);
        if (w)
            w->spec = g->set->workloads[i];
    }
    DAEMON_WL_FOREACH(d, w) {
        if (!w->spec)
            abort();   /* every row's spec was loaded above */
        w->grp = g;
        g->refs++;
        bool may_exist = w->busy;
        w->busy = false;
        if (may_exist)
            wl_recover(w);
        else if (w->phase != PH_EXITED && w->phase != PH_BACKOFF)
            w->phase = PH_PENDING;
        /* A compare the last daemon did not finish: nobody waits for its
         * figures, so its temporary instance goes (first pass, below). */
        if (w->temp_of && !w->temp_kept && !w->deleted) {
            w->deleted = true;
            if (wl_save(w) == 0)
                daemon_event(d, w->name, "delete", "temporary instance of a compare of %s that ended with the daemon",
                             w->temp_of);
        }
    }
    spec_group_unref(g);
    daemon_event(d, NULL, "recovered", "%zu workloads loaded from the state store", d->wls.len);
    return 0;
}

/* ---- open, start ------------------------------------------------------------------ */

static void dir_of(const char *path, char *out, size_t len)
{
    snprintf(out, len, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = '\0';
    else if (slash)
        slash[1] = '\0';
}

int daemon_init(struct daemon *d, uv_loop_t *loop, const struct daemon_config *cfg, struct duet_err *err)
{
    d->loop = loop;
    d->host_netns = -1;
    snprintf(d->state_dir, sizeof(d->state_dir), "%s", cfg->state_dir);
    snprintf(d->volume_root, sizeof(d->volume_root), "%s/volumes", cfg->state_dir);
    pthread_mutex_init(&d->volume_lock, NULL);
    snprintf(d->socket_path, sizeof(d->socket_path), "%s", cfg->socket_path);
    snprintf(d->config_file, sizeof(d->config_file), "%s", cfg->config_file ? cfg->config_file : "");
    d->backoff_base_ms = cfg->backoff_ms ? cfg->backoff_ms : DUETD_BACKOFF_BASE_MS;
    d->backoff_max_ms = DUETD_BACKOFF_MAX_MS;
    d->stable_ms = DUETD_STABLE_MS;
    d->stop_grace_ms = cfg->grace_ms ? cfg->grace_ms : DUETD_STOP_GRACE_MS;
    d->started_at = now_ms();
    strmap_init(&d->wls);
    d->log_sink.emit = log_emit;
    daemon_event_sink_add(d, &d->log_sink);
    uv_timer_init(loop, &d->resync);
    uv_timer_init(loop, &d->soon);
    uv_timer_init(loop, &d->store_retry);
    uv_timer_init(loop, &d->stats_tick);
    d->resync.data = d->soon.data = d->store_retry.data = d->stats_tick.data = d;
    d->host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

    char path[4200];
    snprintf(path, sizeof(path), "%s/state.db", d->state_dir);
    if (store_open(&d->store, path, err) < 0)
        return -1;
    d->secrets = secret_store_new(d->state_dir, err);
    return d->secrets ? 0 : -1;
}

/* What the host gives each backend, once at start, in duet's words: the
 * line a user looks for when VMs are slow or a rootfs cannot boot. */
static void daemon_say_backends(const struct daemon *d)
{
    const struct driver_caps *ct = &d->host.backend[BACKEND_CONTAINER], *vm = &d->host.backend[BACKEND_VM];
    if (d->drv_open[BACKEND_CONTAINER])
        fprintf(stderr, "duetd: containers: %s\n", ct->description);
    if (!d->drv_open[BACKEND_VM])
        return;
    fprintf(stderr, "duetd: VMs: %s (%s)\n", vm->description, vm->uri);
    if (!vm->kvm)
        fprintf(stderr, "duetd: VMs run under emulation: no /dev/kvm (enable virtualization in the firmware and "
                        "load kvm_intel or kvm_amd for full speed)\n");
    if (vm->guest_kernel)
        fprintf(stderr, "duetd: guest kernel for rootfs and OCI images as VMs: %s\n", vm->guest_kernel_path);
    else
        fprintf(stderr, "duetd: no guest kernel: rootfs and OCI images cannot run as VMs; install one "
                        "(docs/install.md) or set guestKernel in the config file\n");
}

int daemon_open(struct daemon *d, uv_loop_t *loop, const struct daemon_config *cfg, struct duet_err *err)
{
    if (daemon_init(d, loop, cfg, err) < 0)
        return -1;

    /* libvirt's own messages go to duetd's stderr (its log file when
     * daemonized).  Not to a file of libvirt's: with a file output set in
     * the daemon, the processes libvirt forks to start QEMU re-open their
     * logs in a way that closes the start-up handshake pipe, and every VM
     * start fails ("Unable to notify child process").  Set before the
     * probe below, libvirt's first call, which reads it. */
    setenv("LIBVIRT_LOG_OUTPUTS", "3:stderr", 0);

    struct host_probe_opts po = {.libvirt_uri = cfg->libvirt_uri, .guest_kernel = cfg->guest_kernel};
    if (host_probe(&d->host, &po, err) < 0)
        return -1;
    for (int k = 0; k < BACKEND_COUNT; k++) {
        uint64_t ms, ovh, n;
        if (store_measure_get(d->store, backend_kind_name((enum backend_kind)k), &ms, &ovh, &n) && n) {
            d->host.backend[k].start_ms = ms;
            d->host.backend[k].measured = true;
        }
    }
    uint64_t unused;
    if (!store_measure_get(d->store, HEALTH_VM_READY_MEASURE, &d->vm_ready_ms, &unused, &d->vm_ready_n))
        d->vm_ready_ms = d->vm_ready_n = 0;

    d->drv[BACKEND_CONTAINER] = container_driver_new(cfg->init, NULL);
    /* No volume leads into the daemon's own state or its socket. */
    container_driver_protect_path(d->drv[BACKEND_CONTAINER], d->state_dir);
    char sockdir[sizeof(d->socket_path)], sockreal[4096];
    dir_of(d->socket_path, sockdir, sizeof(sockdir));
    if (realpath(sockdir, sockreal))
        container_driver_protect_path(d->drv[BACKEND_CONTAINER], sockreal);
    const struct driver_caps *vmc = &d->host.backend[BACKEND_VM];
    struct vm_driver_options vo = {.uri = cfg->libvirt_uri, .vminit = cfg->vminit, .virtiofsd = cfg->virtiofsd,
                                   .guest_kernel = vmc->guest_kernel ? vmc->guest_kernel_path : cfg->guest_kernel,
                                   .accel = VM_ACCEL_AUTO};
    d->drv[BACKEND_VM] = vm_driver_new(&vo);
    vm_driver_protect_path(d->drv[BACKEND_VM], d->state_dir);
    if (realpath(sockdir, sockreal))
        vm_driver_protect_path(d->drv[BACKEND_VM], sockreal);
    if (cfg->log_max) {
        container_driver_set_log_max(d->drv[BACKEND_CONTAINER], cfg->log_max);
        vm_driver_set_console_max(d->drv[BACKEND_VM], cfg->log_max);
    }
    char ctdir[4200];
    snprintf(ctdir, sizeof(ctdir), "%s/containers", d->state_dir);
    if (mkdir(ctdir, 0700) < 0 && errno != EEXIST)
        return duet_err_sys(err, "cannot create %s", ctdir);
    for (int k = 0; k < BACKEND_COUNT; k++) {
        struct driver_caps *c = &d->host.backend[k];
        const char *name = backend_kind_name((enum backend_kind)k);
        if (!c->available) {
            fprintf(stderr, "duetd: the %s backend is not available: %s\n", name, c->unavailable_reason);
            continue;
        }
        struct duet_err e = {0};
        if (d->drv[k]->open(d->drv[k], loop, k == BACKEND_CONTAINER ? ctdir : d->state_dir, &e) < 0) {
            fprintf(stderr, "duetd: the %s backend cannot open: %s\n", name, e.msg);
            c->available = false;
            snprintf(c->unavailable_reason, sizeof(c->unavailable_reason), "%s", e.msg);
            continue;
        }
        d->drv_open[k] = true;
    }
    daemon_say_backends(d);

    /* A state directory keeps the network it was started with: without
     * --subnet or --bridge, the ones recorded (a store from before the
     * default subnet changed keeps its 10.88.0.0/16); with them, the new
     * ones once they are known to fit the workloads (daemon_net_recover). */
    char subnet[64], bridge[64];
    struct fleet_net_config nc = {.bridge = cfg->bridge, .subnet = cfg->subnet, .owner = d->state_dir};
    if (!nc.subnet && store_setting_get(d->store, "subnet", subnet, sizeof(subnet)))
        nc.subnet = subnet;
    if (!nc.bridge && store_setting_get(d->store, "bridge", bridge, sizeof(bridge)))
        nc.bridge = bridge;
    if (daemon_net_open(d, &nc, err) < 0)
        return -1;
    char images[4200];
    snprintf(images, sizeof(images), "%s/images", d->state_dir);
    struct image_store_opts io = {.registry = cfg->registry, .max_bytes = cfg->max_image_size};
    if (!(d->images = image_store_open(images, &io, err)))
        return -1;
    if (daemon_load(d, err) < 0 || daemon_net_recover(d, err) < 0)
        return -1;
    daemon_secrets_gc(d);
    char sn[20];
    ipam_format_subnet(&d->net.ipam.subnet, sn);
    if (store_setting_put(d->store, "subnet", sn, err) < 0 || store_setting_put(d->store, "bridge", d->net.bridge, err) < 0)
        return -1;
    return 0;
}

static void on_resync(uv_timer_t *t)
{
    reconcile_every(t->data);
}

/* Work on the loop must stay short; when it does not, the log says so
 * (slow clients then see timeouts, and this names the cause). */
#define DUETD_STALL_MS 300

static void on_stall_check(uv_check_t *h)
{
    struct daemon *d = h->data;
    d->stall_t0 = mono_ms();
}

static void on_stall_prepare(uv_prepare_t *h)
{
    struct daemon *d = h->data;
    uint64_t now = mono_ms();
    if (d->stall_t0 && now - d->stall_t0 > DUETD_STALL_MS)
        fprintf(stderr, "duetd: the event loop was busy for %llu ms\n", (unsigned long long)(now - d->stall_t0));
    d->stall_t0 = 0;
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    daemon_shutdown(s->data);
}

void daemon_start(struct daemon *d)
{
    uv_signal_init(d->loop, &d->sig_term);
    uv_signal_init(d->loop, &d->sig_int);
    d->sig_term.data = d->sig_int.data = d;
    uv_signal_start(&d->sig_term, on_signal, SIGTERM);
    uv_signal_start(&d->sig_int, on_signal, SIGINT);
    uv_prepare_init(d->loop, &d->stall_prepare);
    uv_check_init(d->loop, &d->stall_check);
    d->stall_prepare.data = d->stall_check.data = d;
    uv_prepare_start(&d->stall_prepare, on_stall_prepare);
    uv_check_start(&d->stall_check, on_stall_check);
    uv_unref((uv_handle_t *)&d->stall_prepare);
    uv_unref((uv_handle_t *)&d->stall_check);
    uv_timer_start(&d->resync, on_resync, DUETD_RESYNC_MS, DUETD_RESYNC_MS);
    daemon_stats_start(d);
    daemon_event(d, NULL, "started", "duetd %d on %s, state in %s", (int)getpid(), d->socket_path, d->state_dir);
    daemon_snapshots_resume(d);
    daemon_backups_clean(d);
    reconcile_all(d);
    on_resync(&d->resync);
}

/* ---- shutdown, close ------------------------------------------------------------------ */

void daemon_shutdown(struct daemon *d)
{
    if (d->shutting_down)
        return;
    d->shutting_down = true;
    fprintf(stderr, "duetd: shutting down; workloads keep running\n");
    compare_shutdown(d);
    if (d->on_shutdown)
        d->on_shutdown(d->on_shutdown_opaque);
    if (d->net_open) {
        /* With no workload left, the network goes too: nothing is left on
         * the host.  Otherwise it stays for the workloads that keep running
         * (their names wait for the next daemon). */
        bool none_left = d->wls.len == 0;
        fleet_net_close(&d->net, none_left);
        d->net_open = false;
        if (none_left)
            fprintf(stderr, "duetd: no workloads: bridge %s and its table removed\n", d->net.bridge);
    }
    uv_timer_stop(&d->resync);
    uv_timer_stop(&d->soon);
    uv_timer_stop(&d->store_retry);
    uv_signal_stop(&d->sig_term);
    uv_signal_stop(&d->sig_int);
    uv_prepare_stop(&d->stall_prepare);
    uv_check_stop(&d->stall_check);
    DAEMON_WL_FOREACH(d, w) {
        uv_timer_stop(&w->tick);
        if (w->inst)
            d->drv[w->inst_backend]->release(d->drv[w->inst_backend], w->inst);
        w->inst = NULL;
        wl_notify_end(w, true);
    }
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void daemon_close(struct daemon *d)
{
    for (int k = 0; k < BACKEND_COUNT; k++)
        if (d->drv_open[k])
            d->drv[k]->close(d->drv[k]);
    for (size_t i = 0; i < d->wls.cap; i++) {
        struct wl *w = d->wls.slots[i].key ? d->wls.slots[i].val : NULL;
        if (w) {
            d->wls.slots[i].val = NULL;
            wl_unref(w);
        }
    }
    uv_walk(d->loop, close_walk, NULL);
    uv_run(d->loop, UV_RUN_DEFAULT);
    if (d->drv[BACKEND_CONTAINER])
        container_driver_free(d->drv[BACKEND_CONTAINER]);
    if (d->drv[BACKEND_VM])
        vm_driver_free(d->drv[BACKEND_VM]);
    strmap_free(&d->wls);
    if (d->images)
        image_store_unmount_all(d->images);
    image_store_free(d->images);
    secret_store_free(d->secrets);
    store_close(d->store);
    if (d->host_netns >= 0)
        close(d->host_netns);
    pthread_mutex_destroy(&d->volume_lock);
}
