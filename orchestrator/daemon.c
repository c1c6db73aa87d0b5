/*
 * daemon.c - duetd: start-up, the workloads' bookkeeping, shutdown.
 *
 * Start-up order matters for crash safety: the state-dir lock first (one
 * daemon per state dir, so nothing else touches its instances), then the
 * store, then every instance the store names is re-attached before the
 * API accepts a request, so no request can act on a half-known fleet.
 *
 * Shutdown (SIGTERM, SIGINT) lets go of every instance without touching
 * it: workloads keep running and the next daemon re-attaches.  kill -9
 * needs nothing more, since every step was written to the store first.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/clock.h"
#include "backends/container/container.h"
#include "daemon.h"
#include "common/units.h"
#include "common/grow.h"
#include "scheduler/hostprobe.h"
#include "manifests/specjson.h"
#include "backends/vm/vm.h"

/* ---- time ------------------------------------------------------------------ */

uint64_t now_ms(void)
{
    return clock_wall_ms();
}

uint64_t mono_ms(void)
{
    return clock_mono_ms();
}

/* ---- workloads ------------------------------------------------------------- */

struct wl *daemon_wl_next(const struct daemon *d, size_t *pos)
{
    while (*pos < d->wls.cap) {
        const struct strmap_slot *s = &d->wls.slots[(*pos)++];
        if (s->key && s->val)
            return s->val;
    }
    return NULL;
}

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
    free(w->health_msg);
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

void wl_save(struct wl *w)
{
    if (strmap_get(&w->d->wls, w->name) != w)
        return;   /* forgotten already */
    struct store_row r = {
        .name = w->name,
        .generation = w->gen,
        .spec = w->spec_json,
        .backend = backend_kind_name(w->backend),
        .placement = w->placement_json,
        .deleted = w->deleted,
        .phase = wl_phase_name(w->phase),
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
    };
    /* The store keeps the wall clock: the monotonic one starts again with the host. */
    uint64_t mono = mono_ms();
    if (w->phase == PH_BACKOFF && w->backoff_until > mono)
        r.backoff_until = (int64_t)(now_ms() + (w->backoff_until - mono));
    struct duet_err err = {0};
    if (store_put(w->d->store, &r, &err) < 0)
        fprintf(stderr, "duetd: %s\n", err.msg);
}

void daemon_event(struct daemon *d, const char *workload, const char *type, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int64_t ts = (int64_t)now_ms();
    struct duet_err err = {0};
    int64_t id = store_event_add(d->store, ts, workload, type, msg, &err);
    if (id < 0)
        fprintf(stderr, "duetd: %s\n", err.msg);
    fprintf(stderr, "duetd: %s%s%s: %s\n", workload ? workload : "", workload ? " " : "", type, msg);
    api_event_publish(d, id, ts, workload, type, msg);
}

/* ---- start-up ------------------------------------------------------------------ */

static enum backend_kind backend_from(const char *s)
{
    return s && strcmp(s, "vm") == 0 ? BACKEND_VM : BACKEND_CONTAINER;
}

static enum wl_phase phase_from(const char *s)
{
    for (int i = 0; i < PH_COUNT; i++)
        if (s && strcmp(s, wl_phase_name((enum wl_phase)i)) == 0)
            return (enum wl_phase)i;
    return PH_PENDING;
}

struct loading {
    struct daemon *d;
    char **texts;
    size_t n, cap;
};

static void load_row(void *opaque, const struct store_row *r)
{
    struct loading *l = opaque;
    struct wl *w = wl_new(l->d, r->name);
    w->gen = r->generation;
    w->spec_json = strdup(r->spec);
    w->backend = backend_from(r->backend);
    w->placement_json = strdup(r->placement);
    w->deleted = r->deleted;
    w->phase = phase_from(r->phase);
    if (r->inst_backend) {
        w->inst_backend = backend_from(r->inst_backend);
        w->inst_gen = r->inst_generation;
        /* marks "an instance may exist" until recovery decides */
        w->inst_grp = NULL;
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
    w->crashloop = w->quick_failures >= DUETD_CRASHLOOP_AFTER;
    /* A restart delay still running when the last daemon stopped goes on. */
    uint64_t wall = now_ms();
    w->backoff_until = r->backoff_until > 0 && (uint64_t)r->backoff_until > wall
                           ? mono_ms() + ((uint64_t)r->backoff_until - wall)
                           : 0;
    GROW(l->texts, l->cap, l->n + 1);
    l->texts[l->n++] = w->spec_json;
    /* remembered for recovery through the handle's presence */
    if (r->inst_backend)
        w->busy = true;   /* cleared by recovery below */
}

static int load_and_recover(struct daemon *d, struct duet_err *err)
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
        struct wl *w = strmap_get(&d->wls, g->set->workloads[i]->name);
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
    }
    spec_group_unref(g);
    daemon_event(d, NULL, "recovered", "%zu workloads loaded from the state store", d->wls.len);
    return 0;
}

/* ---- the fleet network ------------------------------------------------------- */

static bool net_lookup(void *opaque, const char *name, uint32_t *addr)
{
    struct daemon *d = opaque;
    struct wl *w = strmap_get(&d->wls, name);
    if (!w || w->deleted || !w->addr)
        return false;
    *addr = w->addr;
    return true;
}

/* The workload holding addr (IPAM gives each address to one), deleted or not. */
static struct wl *wl_by_addr(struct daemon *d, uint32_t addr)
{
    DAEMON_WL_FOREACH(d, w)
        if (w->addr == addr)
            return w;
    return NULL;
}

static bool net_name_of(void *opaque, uint32_t addr, char out[64])
{
    struct wl *w = wl_by_addr(opaque, addr);
    if (!w || w->deleted)
        return false;
    snprintf(out, 64, "%s", w->name);
    return true;
}

/* A deleted workload not yet forgotten may still have its instance. */
static bool addr_in_use(void *opaque, uint32_t addr)
{
    return wl_by_addr(opaque, addr) != NULL;
}

void daemon_net_sync(struct daemon *d)
{
    struct duet_err err = {0};
    if (d->net_open && fleet_net_sync(&d->net, &err) < 0)
        daemon_event(d, NULL, "failed", "published ports: %s", err.msg);
}

int wl_net_prepare(struct wl *w, struct duet_err *err)
{
    struct daemon *d = w->d;
    bool wants = w->spec->network == WL_NETWORK_FLEET;
    if (wants && !w->addr) {
        if (fleet_net_alloc(&d->net, &w->addr, err) < 0)
            return -1;
        char a[16];
        ipam_format(w->addr, a);
        daemon_event(d, w->name, "address", "%s on bridge %s", a, d->net.bridge);
        wl_save(w);
        if (w->spec->n_ports)
            daemon_net_sync(d);
    } else if (!wants && w->addr) {
        fleet_net_release(&d->net, w->addr);
        w->addr = 0;
        wl_save(w);
    }
    return 0;
}

void wl_net_release(struct wl *w)
{
    struct daemon *d = w->d;
    if (!d->net_open)
        return;
    bool published = fleet_net_ports_release(&d->net, w->name);
    if (w->addr) {
        fleet_net_unplug(&d->net, w->addr);
        fleet_net_release(&d->net, w->addr);
    }
    w->addr = 0;
    if (published)
        daemon_net_sync(d);
}

/* After loading: the store's addresses are taken again, every workload's
 * ports held again, the table rewritten, and veths no workload has are
 * removed. */
static int net_recover(struct daemon *d, struct duet_err *err)
{
    char sn[20];
    ipam_format_subnet(&d->net.ipam.subnet, sn);
    bool publishes = false;
    DAEMON_WL_FOREACH(d, w) {
        struct duet_err e = {0};
        if (w->addr && fleet_net_claim(&d->net, w->addr, &e) < 0) {
            char a[16];
            ipam_format(w->addr, a);
            if (e.code == EDOM)
                return duet_err_set(err, EDOM,
                                    "workload %s has address %s, outside the fleet's subnet %s: this state "
                                    "directory was used with another --subnet; start duetd with that one (or "
                                    "delete the workloads first)",
                                    w->name, a, sn);
            return duet_err_set(err, e.code, "workload %s: %s", w->name, e.msg);
        }
        if (w->deleted || !w->spec->n_ports)
            continue;
        publishes = true;
        if (fleet_net_ports_set(&d->net, w->name, w->spec->ports, w->spec->n_ports, &e) < 0)
            daemon_event(d, w->name, "failed", "publishing its ports again: %s", e.msg);
    }
    /* fleet_net_open wrote the table without ports: again only with some */
    if (publishes)
        daemon_net_sync(d);
    int removed = fleet_net_sweep(&d->net, addr_in_use, d);
    if (removed)
        daemon_event(d, NULL, "network", "removed %d leftover interface%s from bridge %s", removed,
                     removed == 1 ? "" : "s", d->net.bridge);
    return 0;
}

static void on_resync(uv_timer_t *t)
{
    struct daemon *d = t->data;
    DAEMON_WL_FOREACH(d, w)
        wl_reconcile(w);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void daemon_shutdown(struct daemon *d)
{
    if (d->shutting_down)
        return;
    d->shutting_down = true;
    fprintf(stderr, "duetd: shutting down; workloads keep running\n");
    http_server_stop(&d->http);
    api_close_subscribers(d);
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
    uv_signal_stop(&d->sig_term);
    uv_signal_stop(&d->sig_int);
    uv_prepare_stop(&d->stall_prepare);
    uv_check_stop(&d->stall_check);
    DAEMON_WL_FOREACH(d, w) {
        uv_timer_stop(&w->tick);
        if (w->inst)
            d->drv[w->inst_backend]->release(d->drv[w->inst_backend], w->inst);
        w->inst = NULL;
        if (w->waiter) {
            http_conn_unref(w->waiter);
            w->waiter = NULL;
        }
    }
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

/* ---- main ------------------------------------------------------------------------ */

static const char usage[] =
    "usage: duetd [--socket PATH] [--state-dir DIR] [--libvirt-uri URI] [--foreground]\n"
    "\n"
    "The duet daemon: keeps the applied fleet of VMs and containers converged.\n"
    "\n"
    "      --socket PATH         API socket (default " DUETD_DEFAULT_SOCKET ", mode 0660)\n"
    "      --socket-group NAME   group allowed on the socket besides root (default: duet if it exists)\n"
    "      --state-dir DIR       state: store, containers, VM disks (default " DUETD_DEFAULT_STATE ")\n"
    "      --libvirt-uri URI     libvirt for VMs (default: qemu:///system if it answers, else embedded)\n"
    "      --guest-kernel PATH   kernel that boots rootfs images as VMs\n"
    "      --foreground          stay in the foreground, log to stderr\n"
    "      --restart-backoff MS  first restart delay, doubled per quick failure (default 1000)\n"
    "      --stop-grace MS       time between SIGTERM/ACPI and the forced stop (default 10000)\n"
    "      --request-timeout MS  time a client has to send its whole request (default 10000)\n"
    "      --bridge NAME         the fleet network's bridge, this daemon's own (default " FLEET_DEFAULT_BRIDGE ")\n"
    "      --subnet CIDR         the fleet's addresses; the bridge has the first (default " FLEET_DEFAULT_SUBNET ")\n"
    "      --log-max SIZE        a workload's log (or VM console) is rotated at this; one generation is kept\n"
    "                            besides it (default 8Mi)\n"
    "  -h, --help                this text\n"
    "\n"
    "duetd runs as root.  One daemon per state directory.  SIGTERM stops the daemon and\n"
    "leaves every workload running; the next duetd re-attaches to them.\n";

struct options {
    const char *socket, *state_dir, *libvirt_uri, *guest_kernel, *group, *bridge, *subnet;
    bool foreground;
    uint64_t backoff_ms, grace_ms, request_ms, log_max;
};

static int mkdir_p(const char *path, mode_t mode)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* The binaries that run inside workloads sit next to duetd. */
static void sibling(const char *name, const char *env, char *out, size_t len)
{
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(out, len, "%s", e);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        n = 0;
    exe[n] = '\0';
    snprintf(out, len, "%s/%s", dirname(exe), name);
}

static int take_lock(struct daemon *d, struct duet_err *err)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/duetd.pid", d->state_dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return duet_err_sys(err, "cannot open %s", p);
    /* A POSIX record lock, not flock(): it belongs to this process alone,
     * so a container or QEMU forked from it (still starting when duetd
     * was killed) cannot keep the next duetd out. */
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lk) < 0) {
        struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int pid = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? (int)who.l_pid : 0;
        close(fd);
        return duet_err_set(err, EBUSY, "another duetd already runs on %s (pid %d); stop it first or use another --state-dir",
                            d->state_dir, pid);
    }
    d->lock_fd = fd;
    return 0;
}

static void write_pid(struct daemon *d)
{
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(d->lock_fd, 0) == 0 && pwrite(d->lock_fd, pid, (size_t)n, 0) < 0)
        fprintf(stderr, "duetd: cannot write its pid file\n");
}

/* Forks; the parent exits once the child reports ready (0) or an error. */
static int daemonize(int *ready_fd, const char *log_path)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        char msg[1024];
        ssize_t n = read(p[0], msg, sizeof(msg) - 1);
        if (n <= 0) {
            fprintf(stderr, "duetd: the daemon exited during start-up; see %s\n", log_path);
            _exit(1);
        }
        msg[n] = '\0';
        if (strcmp(msg, "ok") == 0)
            _exit(0);
        fprintf(stderr, "duetd: %s\n", msg);
        _exit(1);
    }
    close(p[0]);
    setsid();
    int devnull = open("/dev/null", O_RDWR);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (devnull >= 0)
        dup2(devnull, 0);
    if (log >= 0) {
        dup2(log, 1);
        dup2(log, 2);
        close(log);
    }
    if (devnull > 2)
        close(devnull);
    *ready_fd = p[1];
    return 0;
}

static void report_start(int ready_fd, const char *msg)
{
    if (ready_fd >= 0) {
        if (write(ready_fd, msg, strlen(msg)) < 0)
            fprintf(stderr, "duetd: %s\n", msg);
        close(ready_fd);
    } else if (strcmp(msg, "ok") != 0) {
        fprintf(stderr, "duetd: %s\n", msg);
    }
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"socket-group", required_argument, NULL, 'g'},
        {"state-dir", required_argument, NULL, 'd'},
        {"libvirt-uri", required_argument, NULL, 'u'},
        {"guest-kernel", required_argument, NULL, 'k'},
        {"foreground", no_argument, NULL, 'f'},
        {"restart-backoff", required_argument, NULL, 'b'},
        {"stop-grace", required_argument, NULL, 't'},
        {"request-timeout", required_argument, NULL, 'r'},
        {"bridge", required_argument, NULL, 'B'},
        {"subnet", required_argument, NULL, 'S'},
        {"log-max", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': o->socket = optarg; break;
        case 'g': o->group = optarg; break;
        case 'd': o->state_dir = optarg; break;
        case 'u': o->libvirt_uri = optarg; break;
        case 'k': o->guest_kernel = optarg; break;
        case 'f': o->foreground = true; break;
        case 'b': o->backoff_ms = strtoull(optarg, NULL, 10); break;
        case 't': o->grace_ms = strtoull(optarg, NULL, 10); break;
        case 'r': o->request_ms = strtoull(optarg, NULL, 10); break;
        case 'B': o->bridge = optarg; break;
        case 'S': o->subnet = optarg; break;
        case 'L': {
            const char *why;
            if (!units_size_parse(optarg, &o->log_max, &why) || o->log_max < 4096) {
                fprintf(stderr, "duetd: --log-max %s is not a size of 4Ki or more (%s); e.g. --log-max 8Mi\n", optarg,
                        why ? why : "too small");
                return 2;
            }
            break;
        }
        case 'h': fputs(usage, stdout); exit(0);
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "duetd: unexpected argument \"%s\"\n%s", argv[optind], usage);
        return 2;
    }
    if (o->backoff_ms == 0 || o->grace_ms == 0 || o->request_ms == 0) {
        fprintf(stderr, "duetd: --restart-backoff, --stop-grace and --request-timeout take a number of "
                        "milliseconds above 0\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    /* Nothing inherited beyond stdio: a shell or service manager may leave
     * descriptors open, and none of them is duetd's to pass on to the
     * programs it starts (or to hold for ever). */
    syscall(SYS_close_range, 3, ~0U, 0);
    /* fds 0-2 must be open: libraries that spawn (libvirt) assume so, and a
     * pipe landing on fd 0 would be clobbered by a child's stdin. */
    int nullfd;
    while ((nullfd = open("/dev/null", O_RDWR)) >= 0 && nullfd <= 2)
        ;
    if (nullfd > 2)
        close(nullfd);
    struct options o = {.socket = DUETD_DEFAULT_SOCKET, .state_dir = DUETD_DEFAULT_STATE,
                        .backoff_ms = DUETD_BACKOFF_BASE_MS, .grace_ms = DUETD_STOP_GRACE_MS,
                        .request_ms = HTTP_REQUEST_DEADLINE_MS};
    const char *env_uri = getenv("DUET_LIBVIRT_URI");
    if (env_uri && *env_uri)
        o.libvirt_uri = env_uri;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    if (geteuid() != 0) {
        fprintf(stderr, "duetd: must run as root (namespaces, cgroups, libvirt)\n");
        return 1;
    }
    static struct daemon d;   /* the one context; lives as long as the process */
    d.lock_fd = -1;
    d.host_netns = -1;
    if (strlen(o.socket) >= sizeof(d.socket_path)) {
        fprintf(stderr, "duetd: --socket %s is longer than a Unix socket path may be (107 bytes)\n", o.socket);
        return 2;
    }
    if (!realpath(o.state_dir, d.state_dir)) {
        if (mkdir_p(o.state_dir, 0700) < 0 || !realpath(o.state_dir, d.state_dir)) {
            fprintf(stderr, "duetd: cannot create the state directory %s: %s\n", o.state_dir, strerror(errno));
            return 1;
        }
    }
    snprintf(d.socket_path, sizeof(d.socket_path), "%s", o.socket);
    char sockdir[PATH_MAX];
    snprintf(sockdir, sizeof(sockdir), "%s", o.socket);
    if (mkdir_p(dirname(sockdir), 0755) < 0) {
        fprintf(stderr, "duetd: cannot create the directory of %s: %s\n", o.socket, strerror(errno));
        return 1;
    }
    d.socket_group = 0;
    const char *gname = o.group ? o.group : "duet";
    struct group *gr = getgrnam(gname);
    if (gr)
        d.socket_group = gr->gr_gid;
    else if (o.group) {
        fprintf(stderr, "duetd: no group named %s; create it (groupadd %s) or leave --socket-group out\n", o.group,
                o.group);
        return 1;
    }
    struct duet_err err = {0};
    int ready_fd = -1;
    char log_path[PATH_MAX + 16];
    snprintf(log_path, sizeof(log_path), "%s/duetd.log", d.state_dir);
    if (!o.foreground && daemonize(&ready_fd, log_path) < 0) {
        fprintf(stderr, "duetd: cannot daemonize: %s\n", strerror(errno));
        return 1;
    }
    /* After the fork: the lock belongs to the process that holds it. */
    if (take_lock(&d, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    write_pid(&d);
    setvbuf(stderr, NULL, _IOLBF, 0);
    /* Container creates, destroys and exec wait in the pool: more than
     * libuv's default 4 keeps a slow one from holding up the rest. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    signal(SIGPIPE, SIG_IGN);

    d.backoff_base_ms = o.backoff_ms;
    d.stop_grace_ms = o.grace_ms;
    d.started_at = now_ms();
    d.loop = uv_default_loop();
    strmap_init(&d.wls);
    d.host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/state.db", d.state_dir);
    if (store_open(&d.store, path, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }

    /* libvirt's own messages go to duetd's stderr (its log file when
     * daemonized).  Not to a file of libvirt's: with a file output set in
     * the daemon, the processes libvirt forks to start QEMU re-open their
     * logs in a way that closes the start-up handshake pipe, and every VM
     * start fails ("Unable to notify child process").  Set before the
     * probe below, libvirt's first call, which reads it. */
    setenv("LIBVIRT_LOG_OUTPUTS", "3:stderr", 0);

    struct host_probe_opts po = {.libvirt_uri = o.libvirt_uri, .guest_kernel = o.guest_kernel};
    if (host_probe(&d.host, &po, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    for (int k = 0; k < BACKEND_COUNT; k++) {
        uint64_t ms, ovh, n;
        if (store_measure_get(d.store, backend_kind_name((enum backend_kind)k), &ms, &ovh, &n) && n) {
            d.host.backend[k].start_ms = ms;
            d.host.backend[k].measured = true;
        }
    }

    char init[PATH_MAX], vminit[PATH_MAX];
    sibling("duet-init", "DUET_INIT", init, sizeof(init));
    sibling("duet-vminit", "DUET_VMINIT", vminit, sizeof(vminit));
    d.drv[BACKEND_CONTAINER] = container_driver_new(init, NULL);
    /* No volume leads into the daemon's own state or its socket. */
    container_driver_protect_path(d.drv[BACKEND_CONTAINER], d.state_dir);
    char sockreal[PATH_MAX];
    snprintf(sockreal, sizeof(sockreal), "%s", d.socket_path);
    if (realpath(dirname(sockreal), sockdir))
        container_driver_protect_path(d.drv[BACKEND_CONTAINER], sockdir);
    struct vm_driver_options vo = {.uri = o.libvirt_uri, .vminit = vminit,
                                   .guest_kernel = d.host.backend[BACKEND_VM].guest_kernel
                                                       ? d.host.backend[BACKEND_VM].guest_kernel_path
                                                       : o.guest_kernel,
                                   .accel = VM_ACCEL_AUTO};
    d.drv[BACKEND_VM] = vm_driver_new(&vo);
    if (o.log_max) {
        container_driver_set_log_max(d.drv[BACKEND_CONTAINER], o.log_max);
        vm_driver_set_console_max(d.drv[BACKEND_VM], o.log_max);
    }
    char ctdir[PATH_MAX + 16];
    snprintf(ctdir, sizeof(ctdir), "%s/containers", d.state_dir);
    if (mkdir(ctdir, 0700) < 0 && errno != EEXIST) {
        report_start(ready_fd, "cannot create the containers directory in the state dir");
        return 1;
    }
    for (int k = 0; k < BACKEND_COUNT; k++) {
        if (!d.host.backend[k].available) {
            fprintf(stderr, "duetd: the %s backend is not available: %s\n", backend_kind_name((enum backend_kind)k),
                    d.host.backend[k].unavailable_reason);
            continue;
        }
        const char *dir = k == BACKEND_CONTAINER ? ctdir : d.state_dir;
        if (d.drv[k]->open(d.drv[k], d.loop, dir, &err) < 0) {
            fprintf(stderr, "duetd: the %s backend cannot open: %s\n", backend_kind_name((enum backend_kind)k),
                    err.msg);
            d.host.backend[k].available = false;
            snprintf(d.host.backend[k].unavailable_reason, sizeof(d.host.backend[k].unavailable_reason), "%s",
                     err.msg);
            continue;
        }
        d.drv_open[k] = true;
    }

    struct fleet_net_config nc = {.bridge = o.bridge, .subnet = o.subnet, .owner = d.state_dir};
    if (fleet_net_open(&d.net, d.loop, &nc, net_lookup, net_name_of, &d, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    if (d.net.dhcp_error[0])
        fprintf(stderr, "duetd: %s; VMs booted from a disk without image.kernel get no address\n", d.net.dhcp_error);
    d.net_open = true;
    if (load_and_recover(&d, &err) < 0 || net_recover(&d, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    if (http_server_start(&d.http, d.loop, d.socket_path, d.socket_group, api_handle, &d, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    d.http.deadline_ms = (unsigned)o.request_ms;
    uv_signal_init(d.loop, &d.sig_term);
    uv_signal_init(d.loop, &d.sig_int);
    d.sig_term.data = d.sig_int.data = &d;
    uv_signal_start(&d.sig_term, on_signal, SIGTERM);
    uv_signal_start(&d.sig_int, on_signal, SIGINT);
    uv_prepare_init(d.loop, &d.stall_prepare);
    uv_check_init(d.loop, &d.stall_check);
    d.stall_prepare.data = d.stall_check.data = &d;
    uv_prepare_start(&d.stall_prepare, on_stall_prepare);
    uv_check_start(&d.stall_check, on_stall_check);
    uv_unref((uv_handle_t *)&d.stall_prepare);
    uv_unref((uv_handle_t *)&d.stall_check);
    uv_timer_init(d.loop, &d.resync);
    d.resync.data = &d;
    uv_timer_start(&d.resync, on_resync, DUETD_RESYNC_MS, DUETD_RESYNC_MS);
    daemon_event(&d, NULL, "started", "duetd %d on %s, state in %s", (int)getpid(), d.socket_path, d.state_dir);
    reconcile_all(&d);
    on_resync(&d.resync);
    report_start(ready_fd, "ok");

    uv_run(d.loop, UV_RUN_DEFAULT);

    /* Shut down: every handle closes, the drivers let go, memory is returned. */
    for (int k = 0; k < BACKEND_COUNT; k++)
        if (d.drv_open[k])
            d.drv[k]->close(d.drv[k]);
    for (size_t i = 0; i < d.wls.cap; i++) {
        struct wl *w = d.wls.slots[i].key ? d.wls.slots[i].val : NULL;
        if (w) {
            d.wls.slots[i].val = NULL;
            wl_unref(w);
        }
    }
    uv_walk(d.loop, close_walk, NULL);
    uv_run(d.loop, UV_RUN_DEFAULT);
    container_driver_free(d.drv[BACKEND_CONTAINER]);
    vm_driver_free(d.drv[BACKEND_VM]);
    uv_loop_close(d.loop);
    strmap_free(&d.wls);
    store_close(d.store);
    unlink(d.socket_path);
    if (d.host_netns >= 0)
        close(d.host_netns);
    close(d.lock_fd);
    return 0;
}
