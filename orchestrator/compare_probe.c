/*
 * compare_probe.c - HTTP and TCP load for duet compare (compare_probe.h).
 *
 * Each request is a connection of its own (HTTP/1.0, Connection: close):
 * what is measured is the workload's answer, with no client-side pooling
 * to favour one backend.  Sockets are non-blocking and every wait is a
 * poll with what is left of a deadline, so a workload that accepts and
 * never answers costs one timeout, not the probe.
 */
#include "orchestrator/compare_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int probe_http_status(const char *line, size_t len)
{
    /* "HTTP/1.x NNN" and then a space or the end of the line */
    if (len < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ')
        return -1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return -1;
        st = st * 10 + (line[i] - '0');
    }
    if (len > 12 && line[12] != ' ' && line[12] != '\r' && line[12] != '\n')
        return -1;
    return st >= 100 ? st : -1;
}

uint64_t probe_percentile(const uint64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    /* nearest rank */
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* Waits for fd to be ready for events until deadline (mono_us): 0, or -1
 * with errno ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = mono_us();
        if (now >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)((deadline - now + 999) / 1000));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static int connect_to(uint32_t addr, uint16_t port, uint64_t deadline)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            close(fd);
            errno = soerr ? soerr : EIO;
            return -1;
        }
    }
    return fd;
}

/* Latencies one thread collected. */
struct lat {
    uint64_t *v;
    size_t n, cap;
};

static void lat_add(struct lat *l, uint64_t us)
{
    if (l->n == l->cap) {
        if (l->cap >= (1u << 22))
            return;   /* 4M samples are enough for any percentile */
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        if (!l->v)
            abort();
    }
    l->v[l->n++] = us;
}

struct http_worker {
    pthread_t thread;
    const struct probe_http *o;
    const char *request;
    size_t request_len;
    uint64_t end_us;
    struct lat lat;
    uint64_t ok, errors;
    char first_error[200];
};

static void worker_error(struct http_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void worker_error(struct http_worker *w, const char *fmt, ...)
{
    w->errors++;
    if (w->first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
    va_end(ap);
}

/* One request: 0 and its status in *status, or -1 with errno. */
static int http_once(struct http_worker *w, int *status)
{
    uint64_t deadline = mono_us() + PROBE_IO_TIMEOUT_MS * 1000ull;
    _cleanup_close_ int fd = connect_to(w->o->addr, w->o->port, deadline);
    if (fd < 0)
        return -1;
    for (size_t off = 0; off < w->request_len;) {
        ssize_t n = send(fd, w->request + off, w->request_len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) {
            if (wait_fd(fd, POLLOUT, deadline) < 0)
                return -1;
            continue;
        }
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    char head[128];
    size_t head_len = 0, total = 0;
    char buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EAGAIN) {
            if (wait_fd(fd, POLLIN, deadline) < 0)
                return -1;
            continue;
        }
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (head_len < sizeof(head)) {
            size_t take = (size_t)n < sizeof(head) - head_len ? (size_t)n : sizeof(head) - head_len;
            memcpy(head + head_len, buf, take);
            head_len += take;
        }
        total += (size_t)n;
        if (total > PROBE_MAX_ANSWER) {
            errno = EFBIG;
            return -1;
        }
    }
    size_t line = 0;
    while (line < head_len && head[line] != '\n')
        line++;
    *status = probe_http_status(head, line);
    return 0;
}

static void *http_worker_main(void *arg)
{
    struct http_worker *w = arg;
    while (mono_us() < w->end_us && !(w->o->cancel && atomic_load(w->o->cancel))) {
        uint64_t t0 = mono_us();
        int status = -1;
        if (http_once(w, &status) < 0) {
            worker_error(w, "%s", strerror(errno));
            /* A refused connection fails at once: don't spin on it. */
            usleep(10000);
            continue;
        }
        if (status < 0)
            worker_error(w, "an answer that is not HTTP");
        else if (status >= 400 || status < 200)
            worker_error(w, "HTTP status %d", status);
        else {
            w->ok++;
            lat_add(&w->lat, mono_us() - t0);
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void finish(struct probe_result *r, struct lat *all, uint64_t elapsed_us)
{
    if (all->n)
        qsort(all->v, all->n, sizeof(*all->v), cmp_u64);
    r->p50_us = probe_percentile(all->v, all->n, 50);
    r->p99_us = probe_percentile(all->v, all->n, 99);
    r->max_us = all->n ? all->v[all->n - 1] : 0;
    r->per_second = elapsed_us ? (double)r->ok * 1e6 / (double)elapsed_us : 0;
}

int probe_http_run(const struct probe_http *o, struct probe_result *r)
{
    memset(r, 0, sizeof(*r));
    unsigned n = o->concurrency < 1 ? 1 : o->concurrency > PROBE_MAX_CONCURRENCY ? PROBE_MAX_CONCURRENCY : o->concurrency;
    char *req = NULL;
    int len = asprintf(&req, "GET %s HTTP/1.0\r\nHost: %u.%u.%u.%u:%u\r\nUser-Agent: duet-compare\r\nConnection: close\r\n\r\n",
                       o->path, o->addr >> 24, (o->addr >> 16) & 255, (o->addr >> 8) & 255, o->addr & 255, o->port);
    if (len < 0)
        abort();
    struct http_worker *ws = calloc(n, sizeof(*ws));
    if (!ws)
        abort();
    uint64_t t0 = mono_us();
    unsigned started = 0;
    for (unsigned i = 0; i < n; i++) {
        ws[i] = (struct http_worker){.o = o, .request = req, .request_len = (size_t)len,
                                     .end_us = t0 + o->duration_ms * 1000};
        if (pthread_create(&ws[i].thread, NULL, http_worker_main, &ws[i]) != 0)
            break;
        started++;
    }
    struct lat all = {0};
    for (unsigned i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
        r->ok += ws[i].ok;
        r->errors += ws[i].errors;
        if (!r->first_error[0] && ws[i].first_error[0])
            snprintf(r->first_error, sizeof(r->first_error), "%s", ws[i].first_error);
        for (size_t k = 0; k < ws[i].lat.n; k++)
            lat_add(&all, ws[i].lat.v[k]);
        free(ws[i].lat.v);
    }
    finish(r, &all, mono_us() - t0);
    free(all.v);
    free(ws);
    free(req);
    if (started == 0) {
        snprintf(r->first_error, sizeof(r->first_error), "cannot start the probe's threads");
        return -1;
    }
    return 0;
}

int probe_tcp_run(uint32_t addr, uint16_t port, unsigned count, const atomic_bool *cancel, struct probe_result *r)
{
    memset(r, 0, sizeof(*r));
    struct lat all = {0};
    uint64_t t0 = mono_us();
    for (unsigned i = 0; i < count && !(cancel && atomic_load(cancel)); i++) {
        uint64_t t = mono_us();
        int fd = connect_to(addr, port, t + PROBE_IO_TIMEOUT_MS * 1000ull);
        if (fd < 0) {
            r->errors++;
            if (!r->first_error[0])
                snprintf(r->first_error, sizeof(r->first_error), "port %u: %s", port, strerror(errno));
            usleep(10000);
            continue;
        }
        lat_add(&all, mono_us() - t);
        close(fd);
        r->ok++;
    }
    finish(r, &all, mono_us() - t0);
    free(all.v);
    return 0;
}
