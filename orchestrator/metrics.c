/*
 * metrics.c - the fleet's and duetd's figures, in the Prometheus text
 * format (docs/metrics.md is the contract: every name written here is
 * documented there, and a test holds the two together).
 *
 * Nothing is gathered between scrapes: a scrape reads what the daemon
 * already holds (states, restarts, exits, counters) and asks each running
 * instance's driver for its figures, which a container's answers from its
 * cgroup at once and a VM's from the last sample stats.c keeps for
 * describe (at most DUETD_STATS_MS old).  A family is written whole (HELP,
 * TYPE, samples), so the workloads are walked once to gather and once per
 * family to write.
 *
 * The memory figures mean the same for both backends (docs/metrics.md):
 * duet_workload_memory_bytes is what the workload's processes hold, page
 * cache not counted, duet_workload_memory_cache_bytes its page cache, and
 * duet_workload_memory_host_bytes what the host gives it (a container's
 * cgroup usage, a VM's QEMU resident set).
 */
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/promtext.h"
#include "images/store.h"
#include "orchestrator/daemon.h"
#include "storage/volume.h"

#ifndef DUET_VERSION
#define DUET_VERSION "0.1.0"
#endif

/* A pass over a few hundred workloads takes well under a millisecond; one
 * that takes long means a step blocked the loop. */
static const double pass_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                     0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1};

/* What wl_state_name can say, so every state has its count (0 too). */
static const char *const state_names[] = {"pending",  "creating",   "starting",   "running",   "unhealthy",
                                          "stopping", "destroying", "completed",  "failed",    "restarting",
                                          "crashloop", "recovering", "deleting"};
#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

uint64_t daemon_pass_begin(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void daemon_pass_end(struct daemon *d, uint64_t t0)
{
    struct daemon_counters *c = &d->counters;
    if (!c->reconcile_seconds.bounds)
        prom_hist_init(&c->reconcile_seconds, pass_bounds, sizeof(pass_bounds) / sizeof(pass_bounds[0]));
    c->reconcile_passes++;
    prom_hist_observe(&c->reconcile_seconds, (double)(daemon_pass_begin() - t0) / 1e9);
}

/* Descriptors open now (a walk of /proc/self/fd: with thousands kept open
 * it is the dearest part of a scrape after the figures, so it runs beside
 * them); -1 when it cannot be read. */
static long open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    long fds = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        fds += e->d_name[0] != '.';
    closedir(dir);
    return fds - 1;   /* the directory's own */
}

/* One workload as a scrape sees it. */
struct row {
    const struct wl *w;
    struct prom_labels labels;     /* workload, backend, role */
    const char *state;
    bool has_stats;
    struct driver_stats st;
};

static void row_fill(struct row *r, const struct wl *w)
{
    r->w = w;
    prom_labels_init(&r->labels);
    prom_label(&r->labels, "workload", w->name);
    prom_label(&r->labels, "backend", backend_kind_name(w->inst ? w->inst_backend : w->backend));
    prom_label(&r->labels, "role", wl_role_name(w->spec->role));
    r->state = wl_state_name(w);
}

/* The figures of rows[from, to): drv->stats is (any), each instance is
 * read by one thread, and none changes meanwhile (the loop waits in the
 * scrape; an instance a worker is destroying is not running). */
struct fill_part {
    struct row *rows;
    size_t from, to;
    long *fds;                     /* count the open descriptors too (open_fds) */
    bool widen;                    /* the helper: may run anywhere once started */
    cpu_set_t cpus;
};

static void *fill_stats(void *opaque)
{
    struct fill_part *p = opaque;
    if (p->widen)
        pthread_setaffinity_np(pthread_self(), sizeof(p->cpus), &p->cpus);
    if (p->fds)
        *p->fds = open_fds();
    for (size_t i = p->from; i < p->to; i++) {
        uint64_t at = 0;
        p->rows[i].has_stats = wl_stats(p->rows[i].w, &p->rows[i].st, &at);
    }
    return NULL;
}

/* A container's figures are a few reads of kernel files each: for a large
 * fleet a second thread reads part of them, which takes about half as
 * long on two cores.  A new thread starts on its creator's core, where
 * the two would share it until the scheduler moves one (as long as the
 * whole scrape, measured); so the helper starts on another core, then may
 * go anywhere. */
#define FILL_SPLIT_AT 64

static void rows_stats(struct row *rows, size_t n, long *fds)
{
    /* The helper counts the descriptors too: it takes fewer rows. */
    size_t cut = n - n * 2 / 5;
    struct fill_part all = {.rows = rows, .from = 0, .to = n, .fds = fds};
    struct fill_part part = {.rows = rows, .from = cut, .to = n, .fds = fds, .widen = true};
    int here = sched_getcpu();
    bool split = false;
    pthread_t t;
    pthread_attr_t attr;
    if (n >= FILL_SPLIT_AT && here >= 0 && sched_getaffinity(0, sizeof(part.cpus), &part.cpus) == 0 &&
        CPU_COUNT(&part.cpus) > 1 && pthread_attr_init(&attr) == 0) {
        cpu_set_t others = part.cpus;
        CPU_CLR(here, &others);
        if (CPU_COUNT(&others) > 0)
            pthread_attr_setaffinity_np(&attr, sizeof(others), &others);
        split = pthread_create(&t, &attr, fill_stats, &part) == 0;
        pthread_attr_destroy(&attr);
    }
    if (split) {
        all.to = cut;
        all.fds = NULL;
    }
    fill_stats(&all);
    if (split)
        pthread_join(t, NULL);
}

/* The exit status of w's last instance as a shell gives it (128+N for a
 * signal N); false when none has ended. */
static bool last_exit(const struct wl *w, uint64_t *status)
{
    /* -1: it was lost (gone from the host) with no status to tell */
    if (!w->exited_at || (w->last_exit < 0 && !w->last_signal))
        return false;
    *status = w->last_signal ? 128 + (uint64_t)w->last_signal : (uint64_t)w->last_exit;
    return true;
}

/* The families of one figure of struct row, each written when `has`. */
enum fig {
    FIG_CPU,
    FIG_MEM,
    FIG_MEM_CACHE,
    FIG_MEM_HOST,
    FIG_MEM_LIMIT,
    FIG_BLK_READ,
    FIG_BLK_WRITE,
    FIG_NET_RX,
    FIG_NET_TX,
    FIG_DISK,
    FIG_DISK_LIMIT,
    FIG_COUNT
};

static const struct {
    const char *name, *type, *help;
} figs[FIG_COUNT] = {
    [FIG_CPU] = {"duet_workload_cpu_seconds_total", "counter", "CPU time used by its instance since it started."},
    [FIG_MEM] = {"duet_workload_memory_bytes", "gauge",
                 "Memory its processes hold, page cache not counted (a VM: its guest's view, from the balloon)."},
    [FIG_MEM_CACHE] = {"duet_workload_memory_cache_bytes", "gauge",
                       "Its page cache (a VM: its guest's buffers and cache, from the balloon)."},
    [FIG_MEM_HOST] = {"duet_workload_memory_host_bytes", "gauge",
                      "Host memory it takes: a container's cgroup usage, a VM's QEMU resident set."},
    [FIG_MEM_LIMIT] = {"duet_workload_memory_limit_bytes", "gauge", "Its memory bound (resources.memory)."},
    [FIG_BLK_READ] = {"duet_workload_block_read_bytes_total", "counter", "Bytes read from its disks."},
    [FIG_BLK_WRITE] = {"duet_workload_block_written_bytes_total", "counter", "Bytes written to its disks."},
    [FIG_NET_RX] = {"duet_workload_network_receive_bytes_total", "counter",
                    "Bytes it received on the fleet network."},
    [FIG_NET_TX] = {"duet_workload_network_transmit_bytes_total", "counter",
                    "Bytes it sent on the fleet network."},
    [FIG_DISK] = {"duet_workload_disk_bytes", "gauge",
                  "Host disk its writes take (a container's writable layer, a VM's kept disk)."},
    [FIG_DISK_LIMIT] = {"duet_workload_disk_limit_bytes", "gauge", "Its disk bound (resources.disk)."},
};

static bool fig_value(const struct row *r, enum fig f, uint64_t *v, double *secs)
{
    const struct driver_stats *s = &r->st;
    *secs = -1;
    if (!r->has_stats)
        return false;
    switch (f) {
    case FIG_CPU: *secs = (double)s->cpu_ns / 1e9; return true;
    case FIG_MEM: *v = s->memory_resident_bytes; return s->has_mem_view;
    case FIG_MEM_CACHE: *v = s->memory_cache_bytes; return s->has_mem_view;
    case FIG_MEM_HOST: *v = s->memory_bytes; return s->memory_bytes > 0;
    case FIG_MEM_LIMIT: *v = s->memory_limit; return s->memory_limit > 0 && s->memory_limit < (UINT64_C(1) << 62);
    case FIG_BLK_READ: *v = s->blk_read_bytes; return s->has_blk;
    case FIG_BLK_WRITE: *v = s->blk_write_bytes; return s->has_blk;
    case FIG_NET_RX: *v = s->net_rx_bytes; return s->has_net;
    case FIG_NET_TX: *v = s->net_tx_bytes; return s->has_net;
    case FIG_DISK: *v = s->disk_bytes; return s->disk_bytes > 0;
    case FIG_DISK_LIMIT: *v = s->disk_limit; return s->disk_limit > 0;
    case FIG_COUNT: break;
    }
    return false;
}

static void write_workloads(FILE *f, struct row *rows, size_t n)
{
    prom_family(f, "duet_workload_state", "gauge",
                "1 for each workload, labelled with its state as duet get shows it.");
    for (size_t i = 0; i < n; i++) {
        struct prom_labels l = rows[i].labels;
        prom_label(&l, "state", rows[i].state);
        prom_u64(f, "duet_workload_state", &l, 1);
    }
    prom_family(f, "duet_workload_health", "gauge",
                "1 for each workload, labelled with its health (none: it has no check).");
    for (size_t i = 0; i < n; i++) {
        struct prom_labels l = rows[i].labels;
        prom_label(&l, "health", wl_health_name(rows[i].w->health));
        prom_u64(f, "duet_workload_health", &l, 1);
    }
    prom_family(f, "duet_workload_ready", "gauge",
                "1 when it is ready for its dependents (running and healthy, or completed).");
    for (size_t i = 0; i < n; i++)
        prom_u64(f, "duet_workload_ready", &rows[i].labels, wl_ready(rows[i].w));
    prom_family(f, "duet_workload_restarts_total", "counter", "Times duet started it again after it ended.");
    for (size_t i = 0; i < n; i++)
        prom_u64(f, "duet_workload_restarts_total", &rows[i].labels, (uint64_t)rows[i].w->restarts);
    prom_family(f, "duet_workload_last_exit_status", "gauge",
                "Exit status of its last instance that ended, as a shell gives it (128+N: killed by signal N).");
    for (size_t i = 0; i < n; i++) {
        uint64_t st;
        if (last_exit(rows[i].w, &st))
            prom_u64(f, "duet_workload_last_exit_status", &rows[i].labels, st);
    }
    prom_family(f, "duet_workload_start_to_ready_seconds", "gauge",
                "From the create of its instance to its first time ready, for the last instance duetd started.");
    for (size_t i = 0; i < n; i++)
        if (rows[i].w->ready_ms)
            prom_f64(f, "duet_workload_start_to_ready_seconds", &rows[i].labels,
                     (double)rows[i].w->ready_ms / 1000.0);
    for (int k = 0; k < FIG_COUNT; k++) {
        prom_family(f, figs[k].name, figs[k].type, figs[k].help);
        for (size_t i = 0; i < n; i++) {
            uint64_t v = 0;
            double secs;
            if (!fig_value(&rows[i], (enum fig)k, &v, &secs))
                continue;
            if (secs >= 0)
                prom_f64(f, figs[k].name, &rows[i].labels, secs);
            else
                prom_u64(f, figs[k].name, &rows[i].labels, v);
        }
    }
    prom_family(f, "duet_workload_port_info", "gauge",
                "1 for each port it publishes on the host: host_port, port (the workload's) and protocol.");
    for (size_t i = 0; i < n; i++) {
        const struct workload_spec *s = rows[i].w->spec;
        for (size_t p = 0; p < s->n_ports; p++) {
            struct prom_labels l = rows[i].labels;
            prom_label_u64(&l, "host_port", s->ports[p].host);
            prom_label_u64(&l, "port", s->ports[p].port);
            prom_label(&l, "protocol", s->ports[p].protocol == WL_PROTO_UDP ? "udp" : "tcp");
            prom_u64(f, "duet_workload_port_info", &l, 1);
        }
    }
}

static void write_fleet(FILE *f, struct row *rows, size_t n)
{
    uint64_t count[BACKEND_COUNT][N_STATES] = {{0}};
    for (size_t i = 0; i < n; i++) {
        const struct wl *w = rows[i].w;
        enum backend_kind b = w->inst ? w->inst_backend : w->backend;
        for (size_t s = 0; s < N_STATES; s++)
            if (strcmp(rows[i].state, state_names[s]) == 0)
                count[b][s]++;
    }
    prom_family(f, "duet_workloads", "gauge", "Workloads by backend and state.");
    for (int b = 0; b < BACKEND_COUNT; b++)
        for (size_t s = 0; s < N_STATES; s++) {
            struct prom_labels l;
            prom_labels_init(&l);
            prom_label(&l, "backend", backend_kind_name((enum backend_kind)b));
            prom_label(&l, "state", state_names[s]);
            prom_u64(f, "duet_workloads", &l, count[b][s]);
        }
}

static void write_storage(struct daemon *d, FILE *f)
{
    struct image **imgs = NULL;
    size_t ni = 0;
    struct duet_err err = {0};
    bool have_images = d->images && image_store_list(d->images, &imgs, &ni, &err) == 0;
    prom_family(f, "duet_image_size_bytes", "gauge",
                "Unpacked bytes of each image in the store (layers two images share count in each).");
    for (size_t i = 0; have_images && i < ni; i++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "image", imgs[i]->n_refs ? imgs[i]->refs[0] : imgs[i]->id);
        prom_label(&l, "id", imgs[i]->id);
        prom_u64(f, "duet_image_size_bytes", &l, imgs[i]->size);
    }
    prom_family(f, "duet_images", "gauge", "Images in the store.");
    if (have_images)
        prom_u64(f, "duet_images", NULL, ni);
    image_list_free(imgs, ni);

    struct volume_info *v = NULL;
    size_t nv = 0;
    bool have_volumes = d->volume_root[0] && volume_list(d->volume_root, &v, &nv, &err) == 0;
    prom_family(f, "duet_volumes", "gauge", "Named volumes.");
    if (have_volumes)
        prom_u64(f, "duet_volumes", NULL, nv);
    prom_family(f, "duet_volume_size_bytes", "gauge", "The bound of each sized named volume.");
    for (size_t i = 0; have_volumes && i < nv; i++)
        if (v[i].sized) {
            struct prom_labels l;
            prom_labels_init(&l);
            prom_label(&l, "volume", v[i].name);
            prom_u64(f, "duet_volume_size_bytes", &l, v[i].size);
        }
    prom_family(f, "duet_volume_used_bytes", "gauge", "Bytes in use in each sized named volume.");
    for (size_t i = 0; have_volumes && i < nv; i++)
        if (v[i].mounted) {
            struct prom_labels l;
            prom_labels_init(&l);
            prom_label(&l, "volume", v[i].name);
            prom_u64(f, "duet_volume_used_bytes", &l, v[i].used);
        }
    free(v);
}

/* The process collector's usual names, so dashboards made for any
 * exporter show duetd too. */
static void write_process(struct daemon *d, FILE *f, long fds)
{
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0;
    char buf[1024];
    FILE *st = fopen("/proc/self/stat", "re");
    size_t got = st ? fread(buf, 1, sizeof(buf) - 1, st) : 0;
    if (st)
        fclose(st);
    buf[got] = '\0';
    /* The command's name may hold spaces and parentheses: fields count
     * from the last ')'. */
    char *p = strrchr(buf, ')');
    bool have = p && sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu "
                            "%llu %lld",
                            &utime, &stime, &start, &vsize, &rss) == 5;
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    prom_family(f, "process_resident_memory_bytes", "gauge", "duetd's resident memory.");
    if (have)
        prom_u64(f, "process_resident_memory_bytes", NULL, (uint64_t)rss * (uint64_t)page);
    prom_family(f, "process_virtual_memory_bytes", "gauge", "duetd's virtual memory.");
    if (have)
        prom_u64(f, "process_virtual_memory_bytes", NULL, vsize);
    prom_family(f, "process_cpu_seconds_total", "counter", "CPU time duetd used.");
    if (have)
        prom_f64(f, "process_cpu_seconds_total", NULL, (double)(utime + stime) / (double)hz);
    prom_family(f, "process_open_fds", "gauge", "File descriptors duetd holds open.");
    if (fds >= 0)
        prom_u64(f, "process_open_fds", NULL, (uint64_t)fds);
    prom_family(f, "process_max_fds", "gauge", "duetd's limit of open file descriptors.");
    prom_u64(f, "process_max_fds", NULL, rl.rlim_cur);
    prom_family(f, "process_start_time_seconds", "gauge", "When duetd started, seconds since the epoch.");
    prom_f64(f, "process_start_time_seconds", NULL, (double)d->started_at / 1000.0);
}

void daemon_metrics_write(struct daemon *d, FILE *f)
{
    size_t n = 0, cap = d->wls.len;
    struct row *rows = calloc(cap ? cap : 1, sizeof(*rows));
    if (!rows)
        abort();
    DAEMON_WL_FOREACH(d, w) {
        if (n == cap || !w->spec)
            continue;
        row_fill(&rows[n++], w);
    }
    long fds = -1;
    rows_stats(rows, n, &fds);
    write_workloads(f, rows, n);
    write_fleet(f, rows, n);
    free(rows);

    prom_family(f, "duet_build_info", "gauge", "1, labelled with duetd's version.");
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "version", DUET_VERSION);
    prom_u64(f, "duet_build_info", &l, 1);
    prom_family(f, "duet_degraded", "gauge", "1 while the store refuses writes and duetd changes nothing.");
    prom_u64(f, "duet_degraded", NULL, d->degraded[0] != '\0');
    prom_family(f, "duet_reconcile_passes_total", "counter", "Walks of the reconciler over the whole fleet.");
    prom_u64(f, "duet_reconcile_passes_total", NULL, d->counters.reconcile_passes);
    prom_family(f, "duet_reconcile_pass_duration_seconds", "histogram", "How long each walk over the fleet took.");
    struct prom_hist empty;
    prom_hist_init(&empty, pass_bounds, sizeof(pass_bounds) / sizeof(pass_bounds[0]));
    prom_hist_write(f, "duet_reconcile_pass_duration_seconds", NULL,
                    d->counters.reconcile_seconds.bounds ? &d->counters.reconcile_seconds : &empty);
    prom_family(f, "duet_store_write_duration_seconds", "histogram",
                "How long each write to the state store took, commits (and their fsync) included.");
    prom_hist_write(f, "duet_store_write_duration_seconds", NULL, store_write_latency(d->store));
    write_storage(d, f);
    write_process(d, f, fds);
}
