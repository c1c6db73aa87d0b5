/*
 * test_metrics.c - duetd's Prometheus metrics (docs/metrics.md), read the
 * way users read them: Debian's Prometheus, started here on 127.0.0.1,
 * scrapes duetd's --metrics-listen, and PromQL through its HTTP API says
 * what a running container and a running VM hold in memory and how often
 * a crashing workload was restarted.  promtool checks a scrape, and every
 * family in it is documented.
 */
#include "dtest.h"

/* One HTTP/1.0 request to 127.0.0.1:port; the status, and the body in
 * *body (malloc'd).  -1 when nothing answers. */
static int tcp_request(unsigned port, const char *method, const char *path, char **body)
{
    *body = NULL;
    int fd = dd_tcp_connect(port);
    if (fd < 0)
        return -1;
    char req[4096];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n", method, path);
    cr_assert(n > 0 && (size_t)n < sizeof(req));
    cr_assert_eq(write(fd, req, (size_t)n), n);
    char *buf = dd_read_all(fd);
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    char *b = strstr(buf, "\r\n\r\n");
    *body = strdup(b ? b + 4 : "");
    free(buf);
    return status;
}

/* GET /metrics on the API socket, as text. */
static char *scrape_socket(struct dd *d, int *status)
{
    struct client_buf b = {0};
    struct duet_err err = {0};
    *status = client_call_buf(d->sock, "GET", "/metrics", NULL, 0, &b, 10000, &err);
    cr_assert(b.data || *status < 0, "%s", err.msg);
    return b.data ? b.data : strdup("");
}

static void url_encode(const char *s, char *out, size_t len)
{
    size_t o = 0;
    for (; *s && o + 4 < len; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-_.~", ch))
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, len - o, "%%%02X", ch);
    }
    out[o] = '\0';
}

/* The value of a PromQL instant query with one result, or -1 while it has
 * none. */
static double promql(unsigned port, const char *query)
{
    char enc[1024], path[1200];
    url_encode(query, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/api/v1/query?query=%s", enc);
    char *body;
    int status = tcp_request(port, "GET", path, &body);
    double v = -1;
    if (status == 200) {
        json_error_t je;
        json_t *j = json_loads(body, 0, &je);
        json_t *res = json_object_get(json_object_get(j, "data"), "result");
        if (json_array_size(res) == 1) {
            json_t *val = json_object_get(json_array_get(res, 0), "value");
            v = strtod(json_string_value(json_array_get(val, 1)) ? json_string_value(json_array_get(val, 1)) : "-1",
                       NULL);
        }
        json_decref(j);
    }
    free(body);
    return v;
}

/* Waits up to timeout_ms for query to give a value above `above`. */
static double promql_until(unsigned port, const char *query, double above, unsigned timeout_ms)
{
    uint64_t deadline = dd_now_ms() + timeout_ms;
    double v;
    while ((v = promql(port, query)) <= above && dd_now_ms() < deadline)
        usleep(500000);
    return v;
}

static pid_t prom_pid = -1;

static void prom_stop(void)
{
    if (prom_pid > 0) {
        kill(prom_pid, SIGTERM);
        waitpid(prom_pid, NULL, 0);
        prom_pid = -1;
    }
}

/* Prometheus on 127.0.0.1:web_port, scraping 127.0.0.1:target every
 * second, its data and log in dir. */
static void prom_start(const char *dir, unsigned web_port, unsigned target)
{
    char cfg[256], data[256], log[256], listen[64];
    snprintf(cfg, sizeof(cfg), "%s/prometheus.yml", dir);
    snprintf(data, sizeof(data), "--storage.tsdb.path=%s/prometheus", dir);
    snprintf(log, sizeof(log), "%s/prometheus.log", dir);
    snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%u", web_port);
    FILE *f = fopen(cfg, "w");
    cr_assert(f);
    fprintf(f,
            "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n  - job_name: duet\n    static_configs:\n      - targets: ['127.0.0.1:%u']\n",
            target);
    fclose(f);
    char cfgopt[300];
    snprintf(cfgopt, sizeof(cfgopt), "--config.file=%s", cfg);
    atexit(prom_stop);
    prom_pid = fork();
    cr_assert(prom_pid >= 0);
    if (prom_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl("/usr/bin/prometheus", "prometheus", cfgopt, data, listen,
              "--storage.tsdb.retention.time=1h", (char *)NULL);
        _exit(127);
    }
    uint64_t deadline = dd_now_ms() + 60000;
    for (;;) {
        char *body;
        int st = tcp_request(web_port, "GET", "/-/ready", &body);
        free(body);
        if (st == 200)
            break;
        int ws;
        cr_assert_eq(waitpid(prom_pid, &ws, WNOHANG), 0, "prometheus exited; see %s", log);
        cr_assert(dd_now_ms() < deadline, "prometheus not ready within 60 s; see %s", log);
        usleep(200000);
    }
}

/* Every family of a scrape (its TYPE lines) is named in docs/metrics.md,
 * and promtool finds nothing wrong with it. */
static void check_scrape(struct dd *d, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/docs/metrics.md", dd_env("DUET_SRC"));
    char *doc = dd_slurp(path);
    cr_assert(doc, "docs/metrics.md is missing");
    size_t families = 0;
    for (const char *p = strstr(text, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
        char name[128], quoted[140];
        cr_assert_eq(sscanf(p, "# TYPE %127s", name), 1);
        snprintf(quoted, sizeof(quoted), "`%s`", name);
        cr_expect(strstr(doc, quoted), "%s is not documented in docs/metrics.md", name);
        families++;
    }
    cr_expect_gt(families, 30, "%s", text);
    free(doc);
    char file[256], cmd[512];
    snprintf(file, sizeof(file), "%s/scrape.txt", d->dir);
    FILE *f = fopen(file, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", file);
    char out[4096];
    int rc = dd_sh_out(cmd, out, sizeof(out));
    cr_expect(rc == 0 && !out[0], "promtool check metrics (%s): %s", file, out);
}

/* A daemon with --metrics-listen on a free port (listen holds it), and
 * VMs when vm. */
static unsigned start_with_listener(struct dd *d, char listen[32], bool vm)
{
    unsigned port = dd_free_port();
    snprintf(listen, 32, "127.0.0.1:%u", port);
    dd_prepare(d, NULL);   /* clears d: the options come after it */
    d->extra[0] = "--metrics-listen";
    d->extra[1] = listen;
    if (vm)
        dd_vm_libvirtd(d);
    dd_start(d);
    return port;
}

Test(metrics, prometheus_reads_a_container_and_a_vm, .timeout = 300)
{
    struct dd d;
    char listen[32];
    unsigned mport = start_with_listener(&d, listen, true);
    const char *rootfs = dd_env("DUET_ROOTFS");
    const char *m = dd_manifest(
        &d, "fleet.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: web}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/sh\", \"-c\", \"exec httpd -f -p 8080 -h /\"]\n  resources: {memory: 32Mi}\n"
        "  ports: [{host: %u, port: 8080}]\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: crashy}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/sh\", \"-c\", \"sleep 0.3; exit 3\"]\n  resources: {memory: 16Mi}\n  restart: always\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: guest}\nspec:\n  role: infrastructure\n"
        "  isolation: strong\n  image: {rootfs: %s}\n  command: [\"/bin/sleep\", \"3600\"]\n"
        "  resources: {cpus: 1, memory: 192Mi}\n",
        rootfs, dd_free_port(), rootfs, rootfs);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "web", "state", "running", 30000);
    dd_wait_field(&d, "guest", "state", "running", 180000);

    unsigned pport = dd_free_port();
    prom_start(d.dir, pport, mport);
    /* A container's memory is its cgroup's, read at each scrape; a VM's
     * comes from its guest through the balloon, every few seconds. */
    double web = promql_until(pport, "duet_workload_memory_bytes{workload=\"web\",backend=\"container\"}", 0, 60000);
    cr_expect_gt(web, 0, "no memory figure of the container through Prometheus");
    double guest = promql_until(pport, "duet_workload_memory_bytes{workload=\"guest\",backend=\"vm\"}", 0, 90000);
    cr_expect_gt(guest, 1 << 20, "no memory figure of the VM's guest through Prometheus (%.0f)", guest);
    double host = promql_until(pport, "duet_workload_memory_host_bytes{workload=\"guest\"}", 0, 30000);
    cr_expect_gt(host, guest, "QEMU's resident set (%.0f) is not above what the guest uses (%.0f)", host, guest);
    cr_expect_lt(guest, 192.0 * (1 << 20), "the guest uses more than its 192 MiB: %.0f", guest);
    double restarts = promql_until(pport, "duet_workload_restarts_total{workload=\"crashy\"}", 1, 60000);
    cr_expect_geq(restarts, 2, "crashy's restarts through Prometheus: %.0f", restarts);
    cr_expect_eq(promql_until(pport, "duet_workload_last_exit_status{workload=\"crashy\"}", 0, 30000), 3);
    cr_expect_eq(promql(pport, "sum(duet_workloads{backend=\"vm\",state=\"running\"})"), 1);
    cr_expect_gt(promql(pport, "duet_workload_start_to_ready_seconds{workload=\"guest\"}"), 0);
    cr_expect_gt(promql(pport, "duet_reconcile_passes_total"), 0);
    cr_expect_eq(promql(pport, "up{job=\"duet\"}"), 1);
    prom_stop();

    /* The same text on the socket; well-formed and documented. */
    int status;
    char *text = scrape_socket(&d, &status);
    cr_assert_eq(status, 200, "%s", text);
    check_scrape(&d, text);
    cr_expect(strstr(text, "duet_workload_state{workload=\"web\",backend=\"container\",role=\"app\",state=\"running\"} 1"),
              "%s", text);
    cr_expect(strstr(text, "duet_workload_port_info{workload=\"web\""), "%s", text);
    cr_expect(strstr(text, "duet_workload_memory_cache_bytes{workload=\"guest\""), "%s", text);
    free(text);
    dd_finish(&d);
}

Test(metrics, the_listener_serves_metrics_alone_and_requests_are_counted_by_route, .timeout = 120)
{
    struct dd d;
    char listen[32];
    unsigned mport = start_with_listener(&d, listen, false);
    dd_apply_sleeper(&d, "one");
    dd_wait_field(&d, "one", "state", "running", 20000);
    char *body;
    /* Nothing of the API is reachable from the network. */
    cr_expect_eq(tcp_request(mport, "GET", "/v1/info", &body), 404);
    free(body);
    cr_expect_eq(tcp_request(mport, "GET", "/v1/workloads", &body), 404);
    free(body);
    cr_expect_eq(tcp_request(mport, "POST", "/v1/workloads/one/exec", &body), 404);
    free(body);
    cr_expect_eq(tcp_request(mport, "DELETE", "/metrics", &body), 405);
    free(body);
    cr_expect_eq(tcp_request(mport, "GET", "/metrics", &body), 200);
    cr_expect(strstr(body, "duet_workload_state{workload=\"one\""), "%s", body);
    free(body);
    /* Routes are counted with their names replaced: a thousand names make
     * one series, not a thousand. */
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/v1/workloads/nosuch%d", i);
        json_decref(dd_get(&d, "/v1/info"));
        struct client_buf b = {0};
        struct duet_err err = {0};
        cr_expect_eq(client_call_buf(d.sock, "GET", path, NULL, 0, &b, 5000, &err), 404);
        free(b.data);
    }
    int status;
    char *text = scrape_socket(&d, &status);
    cr_assert_eq(status, 200);
    cr_expect(strstr(text, "duet_api_requests_total{listener=\"socket\",method=\"GET\",route=\"/v1/workloads/{name}\","
                           "status=\"404\"} 5"),
              "%s", text);
    cr_expect(!strstr(text, "nosuch"), "a name reached a label: %s", text);
    cr_expect(strstr(text, "duet_api_requests_total{listener=\"metrics\",method=\"GET\",route=\"other\","
                           "status=\"404\"} 2"),
              "%s", text);
    cr_expect(strstr(text, "duet_api_requests_total{listener=\"metrics\",method=\"POST\",route=\"other\","
                           "status=\"404\"} 1"),
              "%s", text);
    check_scrape(&d, text);
    free(text);
    dd_finish(&d);
}

Test(metrics, a_bad_listen_address_is_refused_at_start)
{
    const char *bad[] = {"localhost:9465", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1",
                         "[::1]9465",      ":9465",     "1.2.3.4.5:80", "127.0.0.1:80x"};
    char duetd[512];
    snprintf(duetd, sizeof(duetd), "%s/duetd", dd_env("DUET_BUILD"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "%s --check-config --state-dir /nonexistent --metrics-listen '%s' 2>&1", duetd,
                 bad[i]);
        char out[1024];
        int rc = dd_sh_out(cmd, out, sizeof(out));
        cr_expect_eq(rc, 2, "%s: exit %d: %s", bad[i], rc, out);
        cr_expect(strstr(out, "not an address to listen on") && strstr(out, "127.0.0.1:9465"), "%s: %s", bad[i], out);
    }
}

/* The frame of `duet top` output that begins at text's n-th header line
 * (0-based), and the row of workload name in it (NULL: none). */
static const char *top_row(const char *text, int frame, const char *name)
{
    const char *p = text;
    for (int i = 0; i <= frame; i++) {
        p = strstr(p, "\nNAME ");
        if (!p)
            return NULL;
        p++;
    }
    const char *end = strstr(p, "\n\n");
    char key[80];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *r = strstr(p, key);
    return r && (!end || r < end) ? r + 1 : NULL;
}

/* The CPU% cell of a row (the fourth column), -1 for "-". */
static double top_cpu(const char *row)
{
    char n[64], b[16], s[16], c[16];
    if (!row || sscanf(row, "%63s %15s %15s %15s", n, b, s, c) != 4 || strcmp(c, "-") == 0)
        return -1;
    return strtod(c, NULL);
}

Test(metrics, top_shows_the_busy_and_the_big_first, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    const char *rootfs = dd_env("DUET_ROOTFS");
    const char *m = dd_manifest(
        &d, "top.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: busy}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/sh\", \"-c\", \"while :; do :; done\"]\n  resources: {memory: 16Mi}\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: big}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/sh\", \"-c\", \"dd if=/dev/zero bs=40M count=1 | sleep 3600\"]\n"
        "  resources: {memory: 256Mi}\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: idle}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [\"/bin/sleep\", \"3600\"]\n  resources: {memory: 16Mi}\n",
        rootfs, rootfs, rootfs);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "busy", "state", "running", 20000);
    dd_wait_field(&d, "big", "state", "running", 20000);
    dd_wait_field(&d, "idle", "state", "running", 20000);
    /* big holds 40 MB: dd's buffer, filled, then stuck writing to a pipe
     * nobody reads */
    uint64_t deadline = dd_now_ms() + 30000;
    for (;;) {
        json_t *w = dd_workload(&d, "big");
        json_t *st = json_object_get(json_object_get(w, "instance"), "stats");
        json_int_t held = json_integer_value(json_object_get(st, "memory_resident_bytes"));
        json_decref(w);
        if (held > 40000000)
            break;
        cr_assert(dd_now_ms() < deadline, "big does not hold its 40 MB: %lld", (long long)held);
        usleep(200000);
    }

    /* Not a terminal: -n frames, each ended by an empty line. */
    cr_assert_eq(dd_duet(&d, &out, "top -n 2 --interval 500ms | cat"), 0, "%s", out);
    cr_expect(strstr(out, "duet top: 3 workloads"), "%s", out);
    cr_expect(!strchr(out, '\033'), "escape sequences without a terminal: %s", out);
    const char *first = top_row(out, 1, "busy");
    double busy = top_cpu(first), idle = top_cpu(top_row(out, 1, "idle"));
    cr_expect_gt(busy, 20, "busy's CPU%%: %s", out);
    cr_expect_lt(idle, busy / 4, "idle's CPU%% against busy's: %s", out);
    cr_expect(first && strstr(first, " container running "), "%s", out);
    /* by CPU: busy heads the second frame */
    const char *head = strstr(strstr(strstr(out, "\nNAME ") + 1, "\nNAME ") + 1, "\n");
    cr_expect(head && strncmp(head + 1, "busy ", 5) == 0, "busy is not first by CPU: %s", out);
    free(out);

    cr_assert_eq(dd_duet(&d, &out, "top --sort memory --interval 200ms | cat"), 0, "%s", out);
    head = strstr(strstr(out, "\nNAME ") + 1, "\n");
    cr_expect(head && strncmp(head + 1, "big ", 4) == 0, "big is not first by memory: %s", out);
    const char *brow = top_row(out, 0, "big");
    char n[64], b[16], s[16], c[16], mem[16], unit[8];
    cr_expect(brow && sscanf(brow, "%63s %15s %15s %15s %15s %7s", n, b, s, c, mem, unit) == 6 &&
                  strtod(mem, NULL) >= 30 && strcmp(unit, "MiB") == 0,
              "big's memory: %s", out);
    free(out);

    /* what it is given wrong is refused with the fix */
    cr_expect_eq(dd_duet(&d, &out, "top --sort disk"), 2);
    cr_expect(strstr(out, "sort by cpu, memory or name"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "top --interval 10ms"), 2);
    cr_expect(strstr(out, "from 200ms"), "%s", out);
    free(out);
    dd_finish(&d);
    /* no daemon: 3, as every verb that needs one */
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "%s --socket %s/none.sock top 2>&1", dd_env("DUET_BIN"), d.dir);
    char buf[512];
    int rc = dd_sh_out(cmd, buf, sizeof(buf));
    cr_expect_eq(rc, 3, "%d: %s", rc, buf);
}
