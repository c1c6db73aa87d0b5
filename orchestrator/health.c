/*
 * health.c - health checks of running workloads (exec and tcp).
 *
 * A check runs on the workload's interval while it runs; until the first
 * success it runs on startInterval (every second at most by default), so
 * dependents wait no longer than needed.  `retries` failures in a row make
 * the workload unhealthy; a success makes it healthy again.  Within the
 * start period after the instance started (healthcheck.startPeriod; a VM
 * has one by default, made from how long VMs here take to pass their first
 * check) failures do not count: a guest still booting is "starting", with
 * the last check's answer, not "unhealthy" with an event per start.  Unhealthy is shown to the user and
 * holds back dependents that have not started; it restarts the workload
 * only when its spec says healthcheck.onUnhealthy: restart, and only an
 * instance that had passed (a liveness check, never a start-up one).
 *
 * exec runs the command inside the container (the driver's exec: same
 * namespaces, cgroup, user and filter as the workload); at the check's
 * timeout the driver kills it and everything it started, so a check that
 * hangs holds nothing of the daemon's.  tcp connects to
 * 127.0.0.1:PORT inside the container's network namespace: the socket is
 * made in that namespace (setns on the loop thread, and straight back),
 * the connect itself is an ordinary non-blocking libuv connect.
 *
 * VMs: tcp connects from the host to the guest's address on the fleet
 * network (the guest is a host of its own there; 127.0.0.1 inside it is
 * out of reach).  exec runs through the agent in a rootfs VM's guest
 * (backends/vm/agent.h), with the same timeout.  Where a check cannot run
 * (a VM booting its own disk image has no agent; a VM with network: none
 * cannot be reached) it is "unchecked", running counts as ready, and
 * describe says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "orchestrator/daemon.h"

struct health_probe {
    struct wl *w;
    uv_timer_t timeout;
    uv_tcp_t tcp;
    uv_connect_t conn;
    bool tcp_open;
    int pending;                   /* callbacks still to come before it is freed */
    bool reported;
    int devnull;
    /* exec: its stderr, a memfd sealed at 1 MiB (pages come only when
     * written; a check that prints more gets EPERM past it): when the
     * command could not be run at all, the reason the driver wrote there
     * is the check's */
    int errbuf;
};

static void schedule(struct wl *w);

/* Defaults of a VM's start period: before any boot here was measured,
 * what a rootfs guest takes to boot and start a service, with room; once
 * measured, twice the average, within bounds. */
#define START_PERIOD_VM_EMULATED_MS 60000
#define START_PERIOD_VM_KVM_MS 20000
#define START_PERIOD_VM_MIN_MS 10000
#define START_PERIOD_VM_MAX_MS 600000

uint64_t health_start_period_ms(const struct wl *w)
{
    if (w->spec->health.start_period_set)
        return w->spec->health.start_period_ms;
    if (w->inst_backend != BACKEND_VM)
        return 0;   /* as Docker: a container's checks count from the start */
    const struct daemon *d = w->d;
    if (!d->vm_ready_n)
        return d->host.backend[BACKEND_VM].kvm ? START_PERIOD_VM_KVM_MS : START_PERIOD_VM_EMULATED_MS;
    uint64_t p = 2 * d->vm_ready_ms;
    return p < START_PERIOD_VM_MIN_MS ? START_PERIOD_VM_MIN_MS : p > START_PERIOD_VM_MAX_MS ? START_PERIOD_VM_MAX_MS : p;
}

/* Counted from the instance's start (wall clock: a re-attached instance
 * keeps the start it had). */
static bool in_start_period(const struct wl *w)
{
    uint64_t now = now_ms(), t0 = w->started_at > 0 ? (uint64_t)w->started_at : now;
    return now < t0 + health_start_period_ms(w);
}

/* A fresh VM passed its first check: how long its boot took, for the
 * start period of the VMs after it. */
static void measure_ready(struct wl *w)
{
    w->health_boot_timed = false;
    if (w->inst_backend != BACKEND_VM || w->started_at <= 0)
        return;
    struct daemon *d = w->d;
    uint64_t now = now_ms(), ms = now > (uint64_t)w->started_at ? now - (uint64_t)w->started_at : 0;
    uint64_t keep = d->vm_ready_n < 9 ? d->vm_ready_n : 9;
    d->vm_ready_ms = (d->vm_ready_ms * keep + ms) / (keep + 1);
    d->vm_ready_n++;
    struct duet_err err = {0};
    store_measure_put(d->store, HEALTH_VM_READY_MEASURE, d->vm_ready_ms, 0, d->vm_ready_n, &err);
}

static void probe_put(struct health_probe *p)
{
    if (--p->pending > 0)
        return;
    if (p->devnull >= 0)
        close(p->devnull);
    if (p->errbuf >= 0)
        close(p->errbuf);
    struct wl *w = p->w;
    free(p);
    wl_unref(w);
}

static void on_probe_handle_closed(uv_handle_t *h)
{
    probe_put(h->data);
}

static void report(struct health_probe *p, bool ok, const char *why)
{
    if (p->reported)
        return;
    p->reported = true;
    uv_close((uv_handle_t *)&p->timeout, on_probe_handle_closed);
    struct wl *w = p->w;
    if (w->probe != p)
        return;   /* cancelled: the workload stopped meanwhile */
    w->probe = NULL;
    enum wl_health before = w->health;
    if (ok) {
        if (before == HEALTH_STARTING && w->health_boot_timed)
            measure_ready(w);
        w->health_fails = 0;
        w->health = HEALTH_HEALTHY;
        free(w->health_msg);
        w->health_msg = NULL;
    } else if (before == HEALTH_STARTING && in_start_period(w)) {
        /* Not counted: the instance is still starting. */
        free(w->health_msg);
        if (asprintf(&w->health_msg, "within its start period (%llus): %s",
                     (unsigned long long)(health_start_period_ms(w) / 1000), why) < 0)
            w->health_msg = NULL;
    } else {
        w->health_fails++;
        free(w->health_msg);
        w->health_msg = strdup(why);
        if (w->health_fails >= w->spec->health.retries)
            w->health = HEALTH_UNHEALTHY;
    }
    if (w->health != before) {
        wl_note_ready(w);
        daemon_event(w->d, w->name, wl_health_name(w->health), "health check %s%s%s",
                     ok ? "passed" : "failed", ok ? "" : ": ", ok ? "" : why);
        wl_save(w);
        if (w->health == HEALTH_HEALTHY)
            reconcile_all(w->d);
        /* Only an instance that has passed once: one still starting (a
         * guest booting, a server loading) is shown unhealthy, never
         * killed for being slow. */
        if (before == HEALTH_HEALTHY && w->health == HEALTH_UNHEALTHY && w->spec->health.restart_unhealthy &&
            wl_stop_unhealthy(w))
            return;   /* no more checks of this instance */
    }
    if (w->inst_running && !w->d->shutting_down)
        schedule(w);
}

static void on_timeout(uv_timer_t *t)
{
    struct health_probe *p = t->data;
    char why[64];
    snprintf(why, sizeof(why), "no answer within %llu ms", (unsigned long long)p->w->spec->health.timeout_ms);
    report(p, false, why);
    if (p->tcp_open && !uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, on_probe_handle_closed);
}

/* The first line of what the check's stderr holds, or "". */
static void first_line(int fd, char *out, size_t len)
{
    out[0] = '\0';
    ssize_t n = fd >= 0 ? pread(fd, out, len - 1, 0) : -1;
    if (n <= 0)
        return;
    out[n] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

static void on_exec_done(void *opaque, int status)
{
    struct health_probe *p = opaque;
    char why[400], said[320];
    if (status < 0 && (first_line(p->errbuf, said, sizeof(said)), said[0]))
        snprintf(why, sizeof(why), "the check could not be run: %s", said);
    else if (status < 0)
        snprintf(why, sizeof(why), "the check could not be run in the workload");
    else if (status > 128)
        snprintf(why, sizeof(why), "killed by signal %d", status - 128);
    else
        snprintf(why, sizeof(why), "exit status %d", status);
    report(p, status == 0, why);
    probe_put(p);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct health_probe *p = req->data;
    char why[96];
    snprintf(why, sizeof(why), "tcp port %u: %s", p->w->spec->health.tcp, status < 0 ? uv_strerror(status) : "open");
    report(p, status == 0, why);
    if (!uv_is_closing((uv_handle_t *)&p->tcp))
        uv_close((uv_handle_t *)&p->tcp, on_probe_handle_closed);
}

/* A TCP socket in the workload's network namespace. */
static int socket_in(struct daemon *d, int netns, struct duet_err *err)
{
    if (setns(netns, CLONE_NEWNET) < 0)
        return duet_err_sys(err, "cannot enter the workload's network namespace");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int e = errno;
    /* The loop thread must never stay in another namespace. */
    if (setns(d->host_netns, CLONE_NEWNET) < 0)
        abort();
    if (fd < 0) {
        errno = e;
        return duet_err_sys(err, "cannot make a socket in the workload's network namespace");
    }
    return fd;
}

static void run_check(uv_timer_t *t)
{
    struct wl *w = t->data;
    if (!w->inst_running || w->probe || w->d->shutting_down)
        return;
    struct daemon *d = w->d;
    struct driver *drv = d->drv[w->inst_backend];
    struct health_probe *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    p->w = w;
    p->devnull = p->errbuf = -1;
    wl_ref(w);
    w->probe = p;
    uv_timer_init(d->loop, &p->timeout);
    p->timeout.data = p;
    p->pending = 1;   /* the timer's close */
    uv_timer_start(&p->timeout, on_timeout, w->spec->health.timeout_ms, 0);
    struct duet_err err = {0};
    if (w->spec->health.kind == WL_HEALTH_EXEC) {
        p->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        p->errbuf = memfd_create("duet-check-err", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (p->errbuf >= 0 && (ftruncate(p->errbuf, 1 << 20) < 0 ||
                               fcntl(p->errbuf, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)) {
            close(p->errbuf);
            p->errbuf = -1;
        }
        p->pending++;
        if (drv->exec(drv, w->inst, w->spec->health.exec, p->devnull, p->errbuf >= 0 ? p->errbuf : p->devnull,
                      w->spec->health.timeout_ms,
                      on_exec_done, p, &err) < 0) {
            p->pending--;
            report(p, false, err.msg);
        }
    } else {
        /* With a network namespace of its own (a container): 127.0.0.1
         * there, through a socket made there; without (a VM): its address
         * on the fleet network, from here. */
        bool inside = drv->flags & DRIVER_HAS_NETNS;
        int fd = -1, netns = -1;
        if (inside && drv->netns(drv, w->inst, &netns, &err) == 0) {
            fd = socket_in(d, netns, &err);
            close(netns);
        }
        if (inside && fd < 0) {
            report(p, false, err.msg);
            return;
        }
        uv_tcp_init(d->loop, &p->tcp);
        p->tcp.data = p;
        p->tcp_open = true;
        p->pending++;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(w->spec->health.tcp),
                                 .sin_addr.s_addr = htonl(inside ? INADDR_LOOPBACK : w->addr)};
        p->conn.data = p;
        int rc = inside ? uv_tcp_open(&p->tcp, fd) : 0;
        if (rc < 0)
            close(fd);   /* not the handle's yet */
        else
            rc = uv_tcp_connect(&p->conn, &p->tcp, (struct sockaddr *)&sa, on_connected);
        if (rc < 0) {
            report(p, false, uv_strerror(rc));
            uv_close((uv_handle_t *)&p->tcp, on_probe_handle_closed);
        }
    }
}

static void schedule(struct wl *w)
{
    uint64_t every = w->spec->health.interval_ms;
    if (w->health == HEALTH_STARTING)
        every = w->spec->health.start_interval_ms ? w->spec->health.start_interval_ms : every > 1000 ? 1000 : every;
    uv_timer_start(&w->tick, run_check, every, 0);
}

void health_start(struct wl *w, bool fresh)
{
    health_stop(w);
    w->health_boot_timed = fresh;
    if (w->spec->health.kind == WL_HEALTH_NONE) {
        w->health = HEALTH_NONE;
        return;
    }
    struct driver *drv = daemon_driver(w->d, w->inst_backend);
    unsigned can = drv ? drv->flags : 0;
    bool exec = w->spec->health.kind == WL_HEALTH_EXEC;
    char why[DUET_ERR_MSG_MAX] = "";
    if (exec && (can & DRIVER_CAN_EXEC) && drv->exec_supported && !drv->exec_supported(drv, w->spec, why, sizeof(why)))
        can &= ~DRIVER_CAN_EXEC;
    if ((exec && !(can & DRIVER_CAN_EXEC)) || (!exec && !(can & DRIVER_HAS_NETNS) && !w->addr)) {
        w->health = HEALTH_UNCHECKED;
        free(w->health_msg);
        if (exec) {
            if (asprintf(&w->health_msg, "%s: running counts as ready", why[0] ? why : "exec cannot run here") < 0)
                w->health_msg = NULL;
        } else {
            w->health_msg = strdup("a VM with network: none cannot be reached for its tcp check: running counts "
                                   "as ready");
        }
        return;
    }
    w->health = HEALTH_STARTING;
    w->health_fails = 0;
    uv_timer_start(&w->tick, run_check, 200, 0);
}

void health_pause(struct wl *w, bool paused)
{
    if (paused)
        health_stop(w);
    else if (w->inst_running && w->health != HEALTH_NONE && w->health != HEALTH_UNCHECKED)
        schedule(w);
}

void health_stop(struct wl *w)
{
    if (w->phase != PH_BACKOFF)
        uv_timer_stop(&w->tick);
    health_probe_cancel(w);
}

void health_probe_cancel(struct wl *w)
{
    /* The probe finishes on its own and finds it is no longer wanted. */
    w->probe = NULL;
}
