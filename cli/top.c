/*
 * top.c - duet top: the fleet's figures, live, in the terminal.
 *
 * It reads what Prometheus reads (GET /metrics, docs/metrics.md) once per
 * interval and shows each workload's CPU (the rate of
 * duet_workload_cpu_seconds_total between two reads, in % of one CPU),
 * memory in use and page cache (one meaning for containers and VMs), the
 * host memory it takes, and its disk and network rates, sorted by CPU or
 * memory.  On a terminal it redraws in place and takes keys (c, m, n:
 * sort; q: quit); otherwise (a pipe, a script) it prints -n frames one
 * after another.  The text it parses is duetd's, but it is parsed as
 * hostile all the same: bounded lines, escapes undone, names checked.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/verbs.h"
#include "common/clock.h"
#include "common/strmap.h"
#include "common/units.h"
#include "manifests/manifest.h"

#define EXIT_USAGE 2

/* The figures top shows, in the order of enum fig below. */
static const char *const fig_names[] = {
    "duet_workload_cpu_seconds_total",           "duet_workload_memory_bytes",
    "duet_workload_memory_cache_bytes",          "duet_workload_memory_host_bytes",
    "duet_workload_network_receive_bytes_total", "duet_workload_network_transmit_bytes_total",
    "duet_workload_block_read_bytes_total",      "duet_workload_block_written_bytes_total",
};
enum fig { F_CPU, F_MEM, F_CACHE, F_HOST, F_RX, F_TX, F_BR, F_BW, F_COUNT };

struct top_wl {
    char name[64];
    char backend[16];
    char state[16];
    double v[F_COUNT];
    bool has[F_COUNT];
    /* rates from the read before: per second; has_rate when both reads
     * had the counter of the same instance (a counter that went down is
     * a new instance: no rate this time) */
    double rate[F_COUNT];
    bool has_rate[F_COUNT];
};

struct frame {
    struct strmap by_name;         /* name -> struct top_wl */
    struct top_wl **list;
    size_t n, cap;
    uint64_t at_ms;                /* monotonic */
};

static void frame_init(struct frame *f)
{
    memset(f, 0, sizeof(*f));
    strmap_init(&f->by_name);
}

static void frame_free(struct frame *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->list[i]);
    free(f->list);
    strmap_free(&f->by_name);
}

static struct top_wl *frame_wl(struct frame *f, const char *name)
{
    struct top_wl *w = strmap_get(&f->by_name, name);
    if (w)
        return w;
    w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    snprintf(w->name, sizeof(w->name), "%s", name);
    snprintf(w->backend, sizeof(w->backend), "-");
    snprintf(w->state, sizeof(w->state), "-");
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->list = realloc(f->list, f->cap * sizeof(*f->list));
        if (!f->list)
            abort();
    }
    f->list[f->n++] = w;
    strmap_put(&f->by_name, w->name, w);
    return w;
}

/* One label's value from a sample's label set (text after '{'), escapes
 * undone, into out; false when absent or malformed. */
static bool label_get(const char *labels, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key);
    const char *p = labels;
    while (*p && *p != '}') {
        const char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
            return false;
        bool want = (size_t)(eq - p) == klen && strncmp(p, key, klen) == 0;
        size_t o = 0;
        const char *v = eq + 2;
        for (; *v && *v != '"'; v++) {
            char c = *v;
            if (c == '\\') {
                v++;
                if (*v == 'n')
                    c = '\n';
                else if (*v == '\\' || *v == '"')
                    c = *v;
                else
                    return false;
            }
            if (want && o + 1 < len)
                out[o++] = c;
        }
        if (*v != '"')
            return false;
        if (want) {
            out[o] = '\0';
            return true;
        }
        p = v + 1;
        if (*p == ',')
            p++;
    }
    return false;
}

/* One sample line of the exposition into f, when it is a figure top
 * shows; anything else (HELP, TYPE, other families, bad lines) is
 * passed over. */
static void take_line(struct frame *f, char *line)
{
    if (line[0] == '#' || line[0] == '\0')
        return;
    char *brace = strchr(line, '{'), *close = brace ? strrchr(line, '}') : NULL;
    if (!brace || !close || close < brace)
        return;
    size_t nlen = (size_t)(brace - line);
    const char *labels = brace + 1;
    char name[64], backend[16], state[16];
    if (!label_get(labels, "workload", name, sizeof(name)) || !manifest_name_valid(name, strlen(name)))
        return;
    char *end;
    errno = 0;
    double v = strtod(close + 1, &end);
    if (end == close + 1 || errno || !isfinite(v))
        return;
    if (nlen == strlen("duet_workload_state") && strncmp(line, "duet_workload_state", nlen) == 0) {
        struct top_wl *w = frame_wl(f, name);
        if (label_get(labels, "state", state, sizeof(state)) && strspn(state, "abcdefghijklmnopqrstuvwxyz") ==
                                                                     strlen(state))
            snprintf(w->state, sizeof(w->state), "%s", state);
        if (label_get(labels, "backend", backend, sizeof(backend)) &&
            (strcmp(backend, "vm") == 0 || strcmp(backend, "container") == 0))
            snprintf(w->backend, sizeof(w->backend), "%s", backend);
        return;
    }
    for (int k = 0; k < F_COUNT; k++)
        if (nlen == strlen(fig_names[k]) && strncmp(line, fig_names[k], nlen) == 0) {
            struct top_wl *w = frame_wl(f, name);
            w->v[k] = v;
            w->has[k] = true;
            return;
        }
}

/* A read of GET /metrics into f; the exit status for an error (said). */
static int frame_read(struct frame *f, const char *sock)
{
    struct client_buf b = {0};
    struct duet_err err = {0};
    int status = client_call_buf(sock, "GET", "/metrics", NULL, 0, &b, 10000, &err);
    f->at_ms = clock_mono_ms();
    if (status < 0) {
        free(b.data);
        return cli_unreachable(&err);
    }
    if (status != 200) {
        int rc = cli_refused(b.data);
        free(b.data);
        return rc;
    }
    char *text = b.data ? b.data : strdup("");
    for (char *line = text, *nl; line && *line; line = nl) {
        nl = strchr(line, '\n');
        if (nl)
            *nl++ = '\0';
        if (strlen(line) < 4096)
            take_line(f, line);
    }
    free(text);
    return 0;
}

/* Rates of now's counters against before's. */
static void frame_rates(struct frame *now, const struct frame *before)
{
    double secs = (double)(now->at_ms - before->at_ms) / 1000.0;
    if (secs <= 0)
        return;
    static const enum fig counters[] = {F_CPU, F_RX, F_TX, F_BR, F_BW};
    for (size_t i = 0; i < now->n; i++) {
        struct top_wl *w = now->list[i];
        const struct top_wl *b = strmap_get(&before->by_name, w->name);
        for (size_t k = 0; b && k < sizeof(counters) / sizeof(counters[0]); k++) {
            enum fig c = counters[k];
            if (w->has[c] && b->has[c] && w->v[c] >= b->v[c]) {
                w->rate[c] = (w->v[c] - b->v[c]) / secs;
                w->has_rate[c] = true;
            }
        }
    }
}

enum sort_by { SORT_CPU, SORT_MEMORY, SORT_NAME };

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(struct top_wl *const *)a)->name, (*(struct top_wl *const *)b)->name);
}

static int cmp_cpu(const void *a, const void *b)
{
    const struct top_wl *x = *(struct top_wl *const *)a, *y = *(struct top_wl *const *)b;
    double cx = x->has_rate[F_CPU] ? x->rate[F_CPU] : -1, cy = y->has_rate[F_CPU] ? y->rate[F_CPU] : -1;
    return cx < cy ? 1 : cx > cy ? -1 : cmp_name(a, b);
}

/* By memory in use; where the workload's view is missing (a guest that
 * does not report), by what the host gives it. */
static double mem_of(const struct top_wl *w)
{
    return w->has[F_MEM] ? w->v[F_MEM] : w->has[F_HOST] ? w->v[F_HOST] : -1;
}

static int cmp_mem(const void *a, const void *b)
{
    double mx = mem_of(*(struct top_wl *const *)a), my = mem_of(*(struct top_wl *const *)b);
    return mx < my ? 1 : mx > my ? -1 : cmp_name(a, b);
}

static void size_cell(char *out, size_t len, bool has, double bytes)
{
    if (!has) {
        snprintf(out, len, "-");
        return;
    }
    units_size_format((uint64_t)bytes, out, len);
}

static void rate_cell(char *out, size_t len, bool has, double bytes)
{
    if (!has) {
        snprintf(out, len, "-");
        return;
    }
    char s[32];
    units_size_format((uint64_t)bytes, s, sizeof(s));
    snprintf(out, len, "%s/s", s);
}

static const char *sort_name(enum sort_by s)
{
    return s == SORT_CPU ? "cpu" : s == SORT_MEMORY ? "memory" : "name";
}

static void frame_print(struct frame *f, enum sort_by sort, bool tty, unsigned interval_ms)
{
    qsort(f->list, f->n, sizeof(*f->list), sort == SORT_CPU ? cmp_cpu : sort == SORT_MEMORY ? cmp_mem : cmp_name);
    double cpu = 0, mem = 0;
    for (size_t i = 0; i < f->n; i++) {
        cpu += f->list[i]->has_rate[F_CPU] ? f->list[i]->rate[F_CPU] : 0;
        mem += f->list[i]->has[F_HOST] ? f->list[i]->v[F_HOST] : 0;
    }
    char total[32];
    units_size_format((uint64_t)mem, total, sizeof(total));
    if (tty)
        fputs("\033[H\033[2J", stdout);
    printf("duet top: %zu workload%s, %.1f%% CPU, %s of host memory; every %.1f s, by %s%s\n", f->n,
           f->n == 1 ? "" : "s", cpu * 100, total, interval_ms / 1000.0, sort_name(sort),
           tty ? " (c cpu, m memory, n name, q quit)" : "");
    printf("%-20s %-9s %-10s %6s %9s %9s %9s %10s %10s %10s %10s\n", "NAME", "BACKEND", "STATE", "CPU%", "MEMORY",
           "CACHE", "HOST", "NET-RX", "NET-TX", "DISK-R", "DISK-W");
    for (size_t i = 0; i < f->n; i++) {
        const struct top_wl *w = f->list[i];
        char c[16], m[32], ca[32], h[32], rx[40], tx[40], br[40], bw[40];
        if (w->has_rate[F_CPU])
            snprintf(c, sizeof(c), "%.1f", w->rate[F_CPU] * 100);
        else
            snprintf(c, sizeof(c), "-");
        size_cell(m, sizeof(m), w->has[F_MEM], w->v[F_MEM]);
        size_cell(ca, sizeof(ca), w->has[F_CACHE], w->v[F_CACHE]);
        size_cell(h, sizeof(h), w->has[F_HOST], w->v[F_HOST]);
        rate_cell(rx, sizeof(rx), w->has_rate[F_RX], w->rate[F_RX]);
        rate_cell(tx, sizeof(tx), w->has_rate[F_TX], w->rate[F_TX]);
        rate_cell(br, sizeof(br), w->has_rate[F_BR], w->rate[F_BR]);
        rate_cell(bw, sizeof(bw), w->has_rate[F_BW], w->rate[F_BW]);
        printf("%-20s %-9s %-10s %6s %9s %9s %9s %10s %10s %10s %10s\n", w->name, w->backend, w->state, c, m, ca, h,
               rx, tx, br, bw);
    }
    if (!tty)
        putchar('\n');
    fflush(stdout);
}

static struct termios saved_term;
static bool term_raw;

static void term_restore(void)
{
    if (term_raw) {
        tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_term);
        term_raw = false;
    }
}

static void on_signal(int sig)
{
    term_restore();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Waits ms, taking keys when the terminal is ours; false once q is hit. */
static bool wait_keys(unsigned ms, bool keys, enum sort_by *sort, bool *redraw)
{
    uint64_t end = clock_mono_ms() + ms;
    *redraw = false;
    for (;;) {
        uint64_t now = clock_mono_ms();
        if (now >= end)
            return true;
        if (!keys) {
            struct timespec ts = {.tv_sec = (time_t)((end - now) / 1000), .tv_nsec = (long)((end - now) % 1000) * 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) <= 0)
            continue;
        char k;
        if (read(STDIN_FILENO, &k, 1) != 1)
            return true;
        if (k == 'q' || k == 3 /* ^C in raw mode */)
            return false;
        enum sort_by before = *sort;
        if (k == 'c')
            *sort = SORT_CPU;
        else if (k == 'm')
            *sort = SORT_MEMORY;
        else if (k == 'n')
            *sort = SORT_NAME;
        if (*sort != before) {
            *redraw = true;
            return true;
        }
    }
}

int cli_top(int argc, char **argv)
{
    static const struct option opts[] = {{"sort", required_argument, NULL, 's'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"iterations", required_argument, NULL, 'n'},
                                         {"socket", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    static const char usage[] =
        "usage: duet top [--sort cpu|memory|name] [--interval D] [-n N]\n\n"
        "The fleet's figures, live: per workload CPU (% of one CPU), memory in use, page cache, host\n"
        "memory, network and disk rates (docs/metrics.md).  On a terminal: c, m, n sort; q quits.\n"
        "  -s, --sort KEY       cpu (default), memory or name\n"
        "  -i, --interval D     between reads, e.g. 2s (default), 500ms; at least 200ms\n"
        "  -n, --iterations N   frames to show, then exit (default: until q; 1 without a terminal)\n";
    enum sort_by sort = SORT_CPU;
    uint64_t interval = 2000;
    long frames = -1;
    const char *sock = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:i:n:h", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            if (strcmp(optarg, "cpu") == 0)
                sort = SORT_CPU;
            else if (strcmp(optarg, "memory") == 0 || strcmp(optarg, "mem") == 0)
                sort = SORT_MEMORY;
            else if (strcmp(optarg, "name") == 0)
                sort = SORT_NAME;
            else {
                fprintf(stderr, "duet: --sort %s: sort by cpu, memory or name\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'i': {
            const char *why = NULL;
            if (!units_duration_parse(optarg, &interval, &why) || interval < 200 || interval > 3600000) {
                fprintf(stderr, "duet: --interval %s is not a duration from 200ms to 1h (e.g. 2s)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case 'n': {
            char *end;
            errno = 0;
            frames = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || frames < 1 || frames > 1000000) {
                fprintf(stderr, "duet: -n %s is not a number of frames from 1 up\n", optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case 'S': sock = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    bool tty = isatty(STDOUT_FILENO);
    bool keys = tty && isatty(STDIN_FILENO);
    if (frames < 0 && !tty)
        frames = 1;
    if (keys && tcgetattr(STDIN_FILENO, &saved_term) == 0) {
        struct termios raw = saved_term;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) == 0) {
            term_raw = true;
            signal(SIGINT, on_signal);
            signal(SIGTERM, on_signal);
            atexit(term_restore);
        }
    }
    /* The first frame's rates need a read before it: a short one. */
    struct frame before, now;
    frame_init(&before);
    int rc = frame_read(&before, sock);
    bool redraw = false;
    if (rc == 0)
        wait_keys(interval < 1000 ? (unsigned)interval : 1000, false, &sort, &redraw);
    for (long shown = 0; rc == 0 && (frames < 0 || shown < frames);) {
        frame_init(&now);
        rc = frame_read(&now, sock);
        if (rc != 0) {
            frame_free(&now);
            break;
        }
        frame_rates(&now, &before);
        frame_print(&now, sort, tty, (unsigned)interval);
        shown++;
        frame_free(&before);
        before = now;
        if (frames >= 0 && shown >= frames)
            break;
        bool go = wait_keys((unsigned)interval, keys, &sort, &redraw);
        while (go && redraw) {
            /* a new order at once, from the same read */
            frame_print(&before, sort, tty, (unsigned)interval);
            go = wait_keys((unsigned)(interval), keys, &sort, &redraw);
        }
        if (!go)
            break;
    }
    frame_free(&before);
    term_restore();
    return rc;
}
