/*
 * compare_probe.h - the load duet compare puts on a workload to measure
 * its own speed: HTTP requests at a concurrency for a while, or TCP
 * connects.  Blocking calls, for a worker thread: the loop never waits on
 * a workload.
 *
 * The far end is the workload, which may be hostile or broken: every
 * connect, write and read has a deadline, an answer is read to its end or
 * its bound and never kept, and a status line that is not HTTP's counts
 * as an error, never as a success.
 */
#ifndef DUET_COMPARE_PROBE_H
#define DUET_COMPARE_PROBE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROBE_MAX_CONCURRENCY 64
#define PROBE_MAX_DURATION_MS 600000
#define PROBE_IO_TIMEOUT_MS 5000       /* one connect, write or read */
#define PROBE_MAX_ANSWER (16u << 20)   /* read of one answer, then it counts as an error */

struct probe_http {
    uint32_t addr;                 /* IPv4, host order */
    uint16_t port;
    const char *path;              /* begins with "/" */
    unsigned concurrency;          /* 1 .. PROBE_MAX_CONCURRENCY */
    uint64_t duration_ms;
    const atomic_bool *cancel;     /* may be NULL; set: end early */
};

struct probe_result {
    uint64_t ok, errors;
    double per_second;             /* ok answers (or connects) per second */
    uint64_t p50_us, p99_us, max_us;
    char first_error[200];         /* the first error seen, "" when none */
};

/* HTTP/1.0 GETs, each on a new connection, by `concurrency` threads for
 * duration_ms.  A 2xx or 3xx answer is ok; any other status, a refused or
 * timed-out connection, an answer that is not HTTP or larger than
 * PROBE_MAX_ANSWER is an error.  Latency is from connect to the end of
 * the answer.  0, or -1 with first_error when no request could be made
 * at all (threads). */
int probe_http_run(const struct probe_http *o, struct probe_result *r);

/* `count` TCP connects to addr:port, one after another, each closed at
 * once: their latency. */
int probe_tcp_run(uint32_t addr, uint16_t port, unsigned count, const atomic_bool *cancel, struct probe_result *r);

/* The status of an HTTP answer's first line ("HTTP/1.1 200 OK"), -1 when
 * it is not one. */
int probe_http_status(const char *line, size_t len);

/* p-th percentile (0..100) of n sorted values, 0 when n is 0. */
uint64_t probe_percentile(const uint64_t *sorted, size_t n, double p);

#endif
