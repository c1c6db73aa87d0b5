/*
 * duet compare's parts that need no workload: the probe against servers
 * that answer well, badly or not at all (a workload may be hostile), and
 * the verdict from figures.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "orchestrator/compare.h"
#include "orchestrator/compare_probe.h"

Test(compare_probe, status_lines)
{
    static const struct {
        const char *line;
        int status;
    } cases[] = {
        {"HTTP/1.1 200 OK", 200},        {"HTTP/1.0 404 Not Found", 404}, {"HTTP/1.1 301", 301},
        {"HTTP/1.1 204\r", 204},         {"HTTP/2 200 OK", -1},           {"HTTP/1.1 20 OK", -1},
        {"HTTP/1.1 2000 OK", -1},        {"HTTP/1.1 abc OK", -1},         {"SSH-2.0-OpenSSH_9.2", -1},
        {"", -1},                        {"HTTP/1.1 099 x", -1},          {"http/1.1 200 OK", -1},
        {"HTTP/1.1  200 OK", -1},        {"HTTP/1.9 200 OK", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(probe_http_status(cases[i].line, strlen(cases[i].line)), cases[i].status, "\"%s\"",
                     cases[i].line);
}

Test(compare_probe, percentiles)
{
    uint64_t v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (uint64_t)i + 1;
    cr_expect_eq(probe_percentile(v, 100, 50), 50);
    cr_expect_eq(probe_percentile(v, 100, 99), 99);
    cr_expect_eq(probe_percentile(v, 100, 100), 100);
    cr_expect_eq(probe_percentile(v, 1, 99), 1);
    cr_expect_eq(probe_percentile(v, 0, 50), 0);
}

/* A server on 127.0.0.1 that answers each connection as `mode` says. */
enum mode { GOOD, GARBAGE, SILENT, FLOOD, ERROR_500 };

struct server {
    int fd;
    uint16_t port;
    enum mode mode;
    pthread_t thread;
    atomic_bool stop;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->stop)) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char buf[1024];
        ssize_t got = recv(c, buf, sizeof(buf), 0);
        (void)got;
        static const char ok[] = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        static const char bad[] = "HTTP/1.0 500 Oops\r\n\r\n";
        switch (s->mode) {
        case GOOD: send(c, ok, sizeof(ok) - 1, MSG_NOSIGNAL); break;
        case ERROR_500: send(c, bad, sizeof(bad) - 1, MSG_NOSIGNAL); break;
        case GARBAGE: send(c, "\x01\x02 not http at all\n", 19, MSG_NOSIGNAL); break;
        case SILENT: sleep(7); break;   /* past the probe's 5 s deadline */
        case FLOOD: {
            static char junk[65536];
            memcpy(junk, "HTTP/1.0 200 OK\r\n\r\n", 19);
            for (int i = 0; i < 400 && send(c, junk, sizeof(junk), MSG_NOSIGNAL) > 0; i++)
                ;   /* 25 MiB, past PROBE_MAX_ANSWER */
            break;
        }
        }
        close(c);
    }
    return NULL;
}

static void server_start(struct server *s, enum mode m)
{
    memset(s, 0, sizeof(*s));
    s->mode = m;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(s->fd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    cr_assert_eq(listen(s->fd, 64), 0);
    struct timeval tv = {.tv_usec = 200000};
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));   /* accept wakes to see stop */
    cr_assert_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void probe(struct server *s, uint64_t ms, struct probe_result *r)
{
    struct probe_http o = {.addr = INADDR_LOOPBACK, .port = s->port, .path = "/", .concurrency = 1,
                           .duration_ms = ms};
    cr_assert_eq(probe_http_run(&o, r), 0);
}

Test(compare_probe, a_server_that_answers_is_measured)
{
    struct server s;
    server_start(&s, GOOD);
    struct probe_result r;
    probe(&s, 500, &r);
    server_stop(&s);
    cr_expect_gt(r.ok, 10);
    cr_expect_eq(r.errors, 0, "%s", r.first_error);
    cr_expect_gt(r.per_second, 0);
    cr_expect_gt(r.p50_us, 0);
    cr_expect_geq(r.p99_us, r.p50_us);
    cr_expect_geq(r.max_us, r.p99_us);
}

Test(compare_probe, answers_that_are_not_success_count_as_errors, .timeout = 60)
{
    static const struct {
        enum mode m;
        const char *said;
    } cases[] = {{ERROR_500, "HTTP status 500"}, {GARBAGE, "an answer that is not HTTP"}, {FLOOD, "too large"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct server s;
        server_start(&s, cases[i].m);
        struct probe_result r;
        probe(&s, 300, &r);
        server_stop(&s);
        cr_expect_eq(r.ok, 0, "case %zu", i);
        cr_expect_gt(r.errors, 0, "case %zu", i);
        cr_expect(strstr(r.first_error, cases[i].said), "case %zu: %s", i, r.first_error);
    }
}

/* One that takes the connection and never answers costs the probe its
 * deadline, not its life. */
Test(compare_probe, a_silent_server_is_bounded_by_the_deadline, .timeout = 60)
{
    struct server s;
    server_start(&s, SILENT);
    struct probe_result r;
    time_t t0 = time(NULL);
    probe(&s, 200, &r);
    time_t took = time(NULL) - t0;
    server_stop(&s);
    cr_expect_eq(r.ok, 0);
    cr_expect_eq(r.errors, 1);
    cr_expect(strstr(r.first_error, "timed out"), "%s", r.first_error);
    cr_expect_leq(took, PROBE_IO_TIMEOUT_MS / 1000 + 2);
}

Test(compare_probe, a_closed_port_is_an_error_not_a_hang)
{
    struct server s;
    server_start(&s, GOOD);
    uint16_t port = s.port;
    server_stop(&s);   /* nobody listens there now */
    struct probe_result r;
    cr_assert_eq(probe_tcp_run(INADDR_LOOPBACK, port, 3, NULL, &r), 0);
    cr_expect_eq(r.ok, 0);
    cr_expect_eq(r.errors, 3);
    cr_expect(strstr(r.first_error, "refused"), "%s", r.first_error);
}

static json_t *sides(const char *c, const char *v)
{
    json_t *j = json_loads(c, 0, NULL), *k = json_loads(v, 0, NULL);
    cr_assert(j && k);
    return json_pack("{s:o,s:o}", "container", j, "vm", k);
}

Test(compare_verdict, the_figures_decide_and_the_plan_is_named)
{
    json_t *s = sides("{\"possible\":true,\"start_ms\":{\"median\":200},\"memory_idle_bytes\":4194304,"
                      "\"cpu_idle_percent\":0.1,\"probe\":{\"per_second\":900,\"p50_ms\":1.0}}",
                      "{\"possible\":true,\"start_ms\":{\"median\":3000},\"memory_idle_bytes\":104857600,"
                      "\"cpu_idle_percent\":3.0,\"probe\":{\"per_second\":300,\"p50_ms\":1.1}}");
    json_t *v = compare_verdict(s, "vm");
    const char *t = json_string_value(json_object_get(v, "text"));
    cr_expect_str_eq(json_string_value(json_object_get(v, "backend")), "container");
    cr_expect(json_is_false(json_object_get(v, "agrees_with_plan")));
    cr_expect(strstr(t, "starts 15.0x faster (0.20 s vs 3.00 s)"), "%s", t);
    cr_expect(strstr(t, "serves 3.0x the requests/s (900 /s vs 300 /s)"), "%s", t);
    cr_expect(strstr(t, "Differs from the plan, which chose vm"), "%s", t);
    /* p50 1.0 vs 1.1 ms is within 20%: it decides nothing */
    cr_expect(!strstr(t, "sooner"), "%s", t);
    cr_expect_eq(json_array_size(json_object_get(v, "deciding")), 4);
    json_decref(v);
    json_decref(s);
}

/* The workload's own speed weighs double: a VM that serves twice the
 * requests wins over a faster start alone. */
Test(compare_verdict, the_workloads_own_speed_weighs_most)
{
    json_t *s = sides("{\"possible\":true,\"start_ms\":{\"median\":200},\"probe\":{\"per_second\":100}}",
                      "{\"possible\":true,\"start_ms\":{\"median\":3000},\"probe\":{\"per_second\":250}}");
    json_t *v = compare_verdict(s, "container");
    cr_expect_str_eq(json_string_value(json_object_get(v, "backend")), "vm");
    json_decref(v);
    json_decref(s);
    /* nothing differs: the plan's choice stands */
    s = sides("{\"possible\":true,\"start_ms\":{\"median\":200}}", "{\"possible\":true,\"start_ms\":{\"median\":210}}");
    v = compare_verdict(s, "vm");
    cr_expect_str_eq(json_string_value(json_object_get(v, "backend")), "vm");
    cr_expect(strstr(json_string_value(json_object_get(v, "text")), "no figure differs by 20% or more"));
    json_decref(v);
    json_decref(s);
}

/* Nothing against something has no ratio: said without one. */
Test(compare_verdict, a_zero_figure_is_said_without_a_ratio)
{
    json_t *s = sides("{\"possible\":true,\"cpu_idle_percent\":0.0}", "{\"possible\":true,\"cpu_idle_percent\":6.3}");
    json_t *v = compare_verdict(s, "container");
    const char *t = json_string_value(json_object_get(v, "text"));
    cr_expect(strstr(t, "container: uses less CPU while idle (0.0% vs 6.3%)"), "%s", t);
    json_decref(v);
    json_decref(s);
}

Test(compare_verdict, one_way_says_why)
{
    json_t *s = sides("{\"possible\":true,\"start_ms\":{\"median\":200}}",
                      "{\"possible\":false,\"reason\":\"memory 8 MiB is below the VM floor of 64 MiB\"}");
    json_t *v = compare_verdict(s, "container");
    cr_expect_str_eq(json_string_value(json_object_get(v, "text")),
                     "container only: as a vm it cannot run: memory 8 MiB is below the VM floor of 64 MiB. Agrees "
                     "with the plan, which chose container");
    json_decref(v);
    json_decref(s);
    s = sides("{\"possible\":true,\"error\":\"ended before it was ready (exit status 1)\"}",
              "{\"possible\":true,\"start_ms\":{\"median\":3000}}");
    v = compare_verdict(s, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(v, "text")),
                     "vm only: as a container it failed: ended before it was ready (exit status 1)");
    cr_expect(!json_object_get(v, "agrees_with_plan"));
    json_decref(v);
    json_decref(s);
}
