/*
 * test_api.c - the API against hostile and careless clients: oversized
 * bodies, slow clients, malformed HTTP and JSON, unknown routes, floods of
 * connections, and users who are neither root nor in the socket's group.
 * After each, the daemon must still answer promptly.
 */
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "dtest.h"

static int dial(struct dd *d)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, d->sock, strlen(d->sock) + 1);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;   /* the daemon may close early on purpose */
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

/* Reads the whole answer (the daemon closes after it); "" on none. */
static char *answer(int fd, int timeout_ms)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    uint64_t deadline = dd_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - dd_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        char chunk[4096];
        ssize_t n = recv(fd, chunk, sizeof(chunk), 0);
        if (n <= 0)
            break;
        fwrite(chunk, 1, (size_t)n, m);
    }
    fclose(m);
    close(fd);
    return buf;
}

static char *raw(struct dd *d, const char *req, int timeout_ms)
{
    int fd = dial(d);
    send_all(fd, req, strlen(req));
    return answer(fd, timeout_ms);
}

/* The daemon answers a plain request within 500 ms. */
static void expect_alive(struct dd *d)
{
    uint64_t t0 = dd_now_ms();
    char *a = raw(d, "GET /v1/info HTTP/1.1\r\nHost: duet\r\n\r\n", 2000);
    cr_expect(strncmp(a, "HTTP/1.1 200", 12) == 0, "%s", a);
    cr_expect_lt(dd_now_ms() - t0, 500, "the daemon took %llu ms to answer",
                 (unsigned long long)(dd_now_ms() - t0));
    free(a);
}

Test(api, malformed_requests_get_4xx_and_json_errors, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    static const struct {
        const char *req;
        const char *status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", "HTTP/1.1 400"},
        {"GET /v1/info HTTP/9.9\r\n\r\n", "HTTP/1.1 505"},
        {"GET /v1/info HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "HTTP/1.1 400"},
        {"GET /v1/info HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "HTTP/1.1 400"},
        {"GET /v1/info HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 400"},
        {"GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404"},
        {"GET /v1/nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404"},
        {"PUT /v1/workloads HTTP/1.1\r\n\r\n", "HTTP/1.1 404"},
        {"GET /v1/workloads/..%2f..%2fetc HTTP/1.1\r\n\r\n", "HTTP/1.1 404"},
        {"GET /v1/workloads/UPPER HTTP/1.1\r\n\r\n", "HTTP/1.1 404"},
        {"GET /v1/workloads/nosuch/logs HTTP/1.1\r\n\r\n", "HTTP/1.1 404"},
        {"POST /v1/apply HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"files\":", "HTTP/1.1 400"},
        {"POST /v1/apply HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]", "HTTP/1.1 400"},
        {"POST /v1/apply HTTP/1.1\r\nContent-Length: 22\r\n\r\n{\"files\": [{\"name\": 1}]}", "HTTP/1.1 400"},
        {"POST /v1/apply HTTP/1.1\r\nContent-Length: 44\r\n\r\n{\"files\":[{\"name\":\"x\",\"content\":\"kind: [\"}]}",
         "HTTP/1.1 422"},
        {"POST /v1/run HTTP/1.1\r\nContent-Length: 4\r\n\r\nnull", "HTTP/1.1 400"},
        {"POST /v1/workloads/x/exec HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "HTTP/1.1 404"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *a = raw(&d, cases[i].req, 3000);
        cr_expect(strncmp(a, cases[i].status, strlen(cases[i].status)) == 0, "case %zu: %s -> %s", i, cases[i].req,
                  a);
        char *body = strstr(a, "\r\n\r\n");
        cr_expect(body && strstr(body, "{\"error\":"), "case %zu: no JSON error: %s", i, a);
        free(a);
    }
    /* Terminal escapes and invalid UTF-8 in a manifest come back as text. */
    const char *evil = "{\"files\":[{\"name\":\"evil\\u001b[31m.yaml\",\"content\":\"apiVersion: duet/v1\\nkind: "
                       "Workload\\nmetadata: {name: \\\"\\u001b]0;pwned\\u0007\\\"}\\n\"}]}";
    char req[1024];
    snprintf(req, sizeof(req), "POST /v1/apply HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s", strlen(evil), evil);
    char *a = raw(&d, req, 3000);
    cr_expect(strncmp(a, "HTTP/1.1 422", 12) == 0, "%s", a);
    cr_expect(!strchr(a, '\x1b') && !strchr(a, '\x07'), "raw control bytes echoed: %s", a);
    free(a);
    expect_alive(&d);
    dd_finish(&d);
}

Test(api, oversized_bodies_are_refused_unread, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    /* Declared too large: refused before any of it is read. */
    char *a = raw(&d, "POST /v1/apply HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", 3000);
    cr_expect(strncmp(a, "HTTP/1.1 413", 12) == 0, "%s", a);
    free(a);
    /* Chunked with no length: refused when it passes the limit. */
    int fd = dial(&d);
    const char *head = "POST /v1/apply HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    send_all(fd, head, strlen(head));
    size_t chunk = 1u << 20;
    char *data = malloc(chunk + 32);
    int n = sprintf(data, "%zx\r\n", chunk);
    memset(data + n, 'a', chunk);
    memcpy(data + n + chunk, "\r\n", 2);
    for (int i = 0; i < 20; i++)
        send_all(fd, data, (size_t)n + chunk + 2);
    free(data);
    a = answer(fd, 3000);
    cr_expect(strncmp(a, "HTTP/1.1 413", 12) == 0, "%.200s", a);
    free(a);
    /* A header block past its limit. */
    char *big = malloc(40000);
    strcpy(big, "GET /v1/info HTTP/1.1\r\nX-Junk: ");
    memset(big + strlen(big), 'x', 30000);
    strcpy(big + 31 + 30000, "\r\n\r\n");
    a = raw(&d, big, 3000);
    cr_expect(strncmp(a, "HTTP/1.1 431", 12) == 0, "%.200s", a);
    free(a);
    free(big);
    /* A NUL in a header, first in its value or inside it: C readers of
     * the value would stop at it. */
    static const char nul1[] = "GET /v1/info HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
    static const char nul2[] = "GET /v1/info HTTP/1.1\r\nHost:\0x\r\n\r\n";
    const char *nuls[] = {nul1, nul2};
    size_t nul_len[] = {sizeof(nul1) - 1, sizeof(nul2) - 1};
    for (size_t k = 0; k < 2; k++) {
        fd = dial(&d);
        send_all(fd, nuls[k], nul_len[k]);
        a = answer(fd, 3000);
        cr_expect(strncmp(a, "HTTP/1.1 400", 12) == 0, "%zu: %.200s", k, a);
        free(a);
    }
    expect_alive(&d);
    dd_finish(&d);
}

Test(api, slow_clients_time_out_and_do_not_stall_others, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    /* Ten clients that send half a request and then nothing. */
    int slow[10];
    for (int i = 0; i < 10; i++) {
        slow[i] = dial(&d);
        send_all(slow[i], "GET /v1/info HTTP/1.1\r\nHost:", 28);
    }
    /* Meanwhile everybody else is served at once. */
    for (int i = 0; i < 5; i++)
        expect_alive(&d);
    /* The daemon gives up on them after its deadline (1.5 s here). */
    uint64_t t0 = dd_now_ms();
    for (int i = 0; i < 10; i++) {
        char *a = answer(slow[i], 5000);
        cr_expect(strncmp(a, "HTTP/1.1 408", 12) == 0, "%s", a);
        free(a);
    }
    cr_expect_lt(dd_now_ms() - t0, 3000);
    /* A client that connects and says nothing at all. */
    int mute = dial(&d);
    char *a = answer(mute, 5000);
    cr_expect(strncmp(a, "HTTP/1.1 408", 12) == 0, "%s", a);
    free(a);
    /* A follower that never reads: dropped once its backlog is large, the
     * daemon goes on (the events stream is the easiest to fill). */
    int lazy = dial(&d);
    const char *req = "GET /v1/events?follow=1 HTTP/1.1\r\n\r\n";
    send_all(lazy, req, strlen(req));
    expect_alive(&d);
    close(lazy);
    expect_alive(&d);
    dd_finish(&d);
}

Test(api, connection_flood, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    enum { N = 700 };
    int *fds = malloc(N * sizeof(int));
    int opened = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, d.sock, strlen(d.sock) + 1);
        if (connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) == 0)
            opened++;
    }
    cr_expect_gt(opened, 0);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    free(fds);
    usleep(200000);
    expect_alive(&d);
    dd_finish(&d);
}

/* As uid/gid 65534 with no supplementary groups, in a child. */
static int as_nobody(struct dd *d, char *out, size_t len)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
            _exit(90);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, d->sock, strlen(d->sock) + 1);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
            dprintf(p[1], "connect: %s", strerror(errno));
            _exit(errno == EACCES ? 13 : 91);
        }
        const char *req = "GET /v1/workloads HTTP/1.1\r\n\r\n";
        send(fd, req, strlen(req), MSG_NOSIGNAL);
        char buf[2048];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
            if (write(p[1], buf, (size_t)n) < 0)
                break;
        _exit(0);
    }
    close(p[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < len && (n = read(p[0], out + got, len - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(api, users_outside_the_group_are_refused, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    /* The socket's directory must be reachable for the test user. */
    chmod(d.dir, 0755);
    struct stat st;
    cr_assert_eq(stat(d.sock, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0660, "socket mode %o", st.st_mode & 0777);
    char out[4096];
    /* First line of defence: the file mode. */
    cr_expect_eq(as_nobody(&d, out, sizeof(out)), 13, "%s", out);
    /* Second: with the mode opened up by mistake, SO_PEERCRED still refuses. */
    cr_assert_eq(chmod(d.sock, 0666), 0);
    cr_expect_eq(as_nobody(&d, out, sizeof(out)), 0, "%s", out);
    cr_expect(strncmp(out, "HTTP/1.1 403", 12) == 0, "%s", out);
    cr_expect(strstr(out, "uid 65534 may not use duetd"), "%s", out);
    cr_expect(!strstr(out, "workloads\":"), "data leaked to a refused client: %s", out);
    expect_alive(&d);
    dd_finish(&d);
}
