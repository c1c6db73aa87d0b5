/*
 * test_web.c - the web dashboard (duetd --web, docs/dashboard.md).
 *
 * A browser first: Debian's chromium, headless, driven by
 * tests/web/dashboard.mjs (puppeteer-core) through the example fleet on a
 * daemon of the test's own; its screenshots are kept in
 * BUILD/artifacts/dashboard.  Then what a browser cannot be trusted to
 * test: every route without the token, with a wrong one, without the CSRF
 * token or from another origin; TLS; and a thousand slow clients on the
 * web port while the API socket must go on answering.
 */
#include <inttypes.h>
#include <sys/resource.h>

#include "dtest.h"

/* One raw request (head lines given whole, CRLF-ended) to the web port;
 * the whole answer, head and body, malloc'd; its status in *status. */
static char *web_raw(unsigned port, const char *method, const char *path, const char *headers, const char *body,
                     int *status)
{
    int fd = dd_tcp_connect(port);
    cr_assert(fd >= 0, "nothing listens on 127.0.0.1:%u", port);
    char *req = NULL;
    size_t blen = body ? strlen(body) : 0;
    cr_assert(asprintf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n%sContent-Length: %zu\r\n\r\n%s", method, path,
                       port, headers ? headers : "", blen, body ? body : "") > 0);
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    free(req);
    char *buf = dd_read_all(fd);
    if (sscanf(buf, "HTTP/1.1 %d", status) != 1)
        *status = -1;
    return buf;
}

static int web_status(unsigned port, const char *method, const char *path, const char *headers, const char *body)
{
    int st;
    free(web_raw(port, method, path, headers, body, &st));
    return st;
}

static const char *body_of(const char *answer)
{
    const char *b = strstr(answer, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* The daemon's token, as `duet dashboard -o json` gives it. */
static void dashboard_token(struct dd *d, char token[65], char url[128])
{
    char *out;
    cr_assert_eq(dd_duet(d, &out, "dashboard -o json"), 0, "%s", out);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(j, "%s", out);
    snprintf(token, 65, "%s", json_string_value(json_object_get(j, "token")));
    snprintf(url, 128, "%s", json_string_value(json_object_get(j, "login_url")));
    json_decref(j);
    free(out);
    cr_assert_eq(strlen(token), 64, "%s", token);
}

static void csrf_of(unsigned port, const char *auth, char csrf[65])
{
    int st;
    char *a = web_raw(port, "GET", "/web/session", auth, NULL, &st);
    cr_assert_eq(st, 200, "%s", a);
    json_t *j = json_loads(body_of(a), 0, NULL);
    cr_assert(j, "%s", a);
    snprintf(csrf, 65, "%s", json_string_value(json_object_get(j, "csrf")));
    json_decref(j);
    free(a);
}

/* A copy of manifests/examples that runs beside anything else: its image
 * paths absolute, its host ports free ones, its bind mounts in dir (not
 * the daemon's: duetd refuses to mount its own directory). */
static void examples_copy(const char *dir)
{
    const char *src = dd_env("DUET_SRC"), *img = dd_env("DUET_IMAGES");
    const char *files[] = {"10-infrastructure.yaml", "20-applications.yaml"};
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "mkdir -p %s/fleet %s/backup %s/www", dir, dir, dir);
    cr_assert_eq(system(cmd), 0);
    unsigned p1 = dd_free_port(), p2 = dd_free_port(), p3 = dd_free_port();
    for (size_t i = 0; i < 2; i++) {
        snprintf(cmd, sizeof(cmd),
                 "sed -e 's#\\.\\./\\.\\./build/images#%s#g' -e 's#\\.\\./\\.\\./build/backup#%s/backup#g' "
                 "-e 's#\\.\\./\\.\\./build/www#%s/www#g' -e 's/host: 5353/host: %u/' -e 's/host: 5432/host: %u/' "
                 "-e 's/host: 8080/host: %u/' %s/manifests/examples/%s > %s/fleet/%s",
                 img, dir, dir, p1, p2, p3, src, files[i], dir, files[i]);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
    }
}

/* A daemon with the dashboard on a free port of 127.0.0.1 (listen, which
 * must outlive the daemon, holds ADDRESS:PORT); returns the port. */
static unsigned web_daemon(struct dd *d, char listen[32], bool vm, bool write)
{
    unsigned port = dd_free_port();
    snprintf(listen, 32, "127.0.0.1:%u", port);
    dd_prepare(d, NULL);   /* clears d: the options come after it */
    if (vm)
        dd_vm_libvirtd(d);
    d->extra[0] = "--web";
    d->extra[1] = listen;
    d->extra[2] = write ? "--web-write" : NULL;
    dd_start(d);
    return port;
}

Test(web, a_browser_sees_the_fleet_live_logs_and_a_broken_manifest, .timeout = 600)
{
    static char listen[32];
    struct dd d;
    web_daemon(&d, listen, true, true);
    char fleet[64] = "/tmp/duet-web-XXXXXX";
    cr_assert(mkdtemp(fleet));
    examples_copy(fleet);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s/fleet", fleet), 0, "%s", out);
    free(out);
    char token[65], url[128];
    dashboard_token(&d, token, url);
    /* The placement the browser must show: what duetd chose here (the
     * VMs depend on the host: under emulation fewer are VMs). */
    json_t *all = dd_get(&d, "/v1/workloads");
    json_t *rows = json_object();
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(all, "workloads"), i, w)
        json_object_set(rows, json_string_value(json_object_get(w, "name")), json_object_get(w, "backend"));
    json_decref(all);
    cr_assert_eq(json_object_size(rows), 7, "the example fleet has 7 workloads");
    cr_assert_str_eq(json_string_value(json_object_get(rows, "db")), "vm", "db is a VM on every host");
    char *rows_text = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    char shots[512], cmd[4096];
    snprintf(shots, sizeof(shots), "%s/artifacts/dashboard", dd_env("DUET_BUILD"));
    snprintf(cmd, sizeof(cmd),
             "DUET_SOCKET=%s DUET_WEB_BASE=http://%s DUET_WEB_LOGIN='%s' DUET_WEB_SHOTS=%s "
             "DUET_WEB_ROWS='%s' DUET_WEB_STOP=cache DUET_WEB_LOGS='worker=working on jobs' "
             "node %s/tests/web/dashboard.mjs 2>&1",
             d.sock, listen, url, shots, rows_text, dd_env("DUET_SRC"));
    free(rows_text);
    char buf[16384];
    cr_expect_eq(dd_sh_out(cmd, buf, sizeof(buf)), 0, "the browser test failed (screenshots in %s):\n%s", shots, buf);
    const char *kept[] = {"fleet.png", "fleet-stopped.png", "workload.png", "plan-error.png"};
    for (size_t k = 0; k < 4; k++) {
        char f[600];
        snprintf(f, sizeof(f), "%s/%s", shots, kept[k]);
        struct stat st;
        cr_expect(stat(f, &st) == 0 && st.st_size > 10000, "no screenshot %s", f);
    }
    dd_finish(&d);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fleet);
    cr_expect_eq(system(cmd), 0);
}

Test(web, the_token_guards_every_route_and_writes_need_the_csrf_token, .timeout = 120)
{
    static char listen[32];
    struct dd d;
    unsigned port = web_daemon(&d, listen, false, false);
    dd_apply_sleeper(&d, "one");

    /* The token: a file of root's alone, what duet dashboard prints. */
    char token[65], url[128], path[300];
    dashboard_token(&d, token, url);
    snprintf(path, sizeof(path), "%s/web-token", d.state);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    char *file = dd_slurp(path);
    cr_expect(file && strncmp(file, token, 64) == 0 && file[64] == '\n');
    free(file);
    char want_url[128];
    snprintf(want_url, sizeof(want_url), "http://%s/login?token=%s", listen, token);
    cr_expect_str_eq(url, want_url);

    /* Without it, with a wrong one, half of it, in the wrong place: 401,
     * the same short answer every time. */
    char wrong[65];
    snprintf(wrong, sizeof(wrong), "%s", token);
    wrong[63] = wrong[63] == 'a' ? 'b' : 'a';
    char h_wrong[200], h_half[200], h_cookie_wrong[200], h_query[200], h_auth[200], h_cookie[200];
    snprintf(h_wrong, sizeof(h_wrong), "Authorization: Bearer %s\r\n", wrong);
    snprintf(h_half, sizeof(h_half), "Authorization: Bearer %.32s\r\n", token);
    snprintf(h_cookie_wrong, sizeof(h_cookie_wrong), "Cookie: duet_token_%u=%s\r\n", port, wrong);
    snprintf(h_query, sizeof(h_query), "/v1/workloads?token=%s", token);
    snprintf(h_auth, sizeof(h_auth), "Authorization: Bearer %s\r\n", token);
    snprintf(h_cookie, sizeof(h_cookie), "Cookie: other=1; duet_token_%u=%s\r\n", port, token);
    const char *paths[] = {"/", "/app.js", "/v1/workloads", "/v1/workloads/one", "/v1/workloads/one/logs",
                           "/v1/events", "/metrics", "/web/session", "/v1/info"};
    const char *bad[] = {NULL, h_wrong, h_half, h_cookie_wrong, "Authorization: Basic Zm9vOmJhcg==\r\n",
                         "Cookie: duet_token=\r\n"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
            int s;
            char *a = web_raw(port, "GET", paths[i], bad[k], NULL, &s);
            cr_expect_eq(s, 401, "GET %s with %s: %s", paths[i], bad[k] ? bad[k] : "nothing", a);
            cr_expect_str_eq(body_of(a), "unauthorized\n", "%s", a);
            cr_expect(strstr(a, "Content-Security-Policy: default-src 'none'") && strstr(a, "X-Frame-Options: DENY") &&
                          strstr(a, "Cache-Control: no-store"),
                      "%s", a);
            free(a);
        }
    cr_expect_eq(web_status(port, "GET", h_query, NULL, NULL), 401, "a token in the query is not a login");
    cr_expect_eq(web_status(port, "GET", "/login?token=", NULL, NULL), 401);
    cr_expect_eq(web_status(port, "GET", "/login?token=%00", NULL, NULL), 401);

    /* The login: a cookie the browser keeps to this site and hides from scripts. */
    char login[128];
    snprintf(login, sizeof(login), "/login?token=%s", token);
    int s;
    char *a = web_raw(port, "GET", login, NULL, NULL, &s);
    cr_expect_eq(s, 303, "%s", a);
    char cookie[200];
    snprintf(cookie, sizeof(cookie), "Set-Cookie: duet_token_%u=%s; Path=/; HttpOnly; SameSite=Strict\r\n", port, token);
    cr_expect(strstr(a, cookie) && strstr(a, "Location: /\r\n"), "%s", a);
    free(a);

    /* With it: the page, and the read routes, by cookie or bearer token. */
    a = web_raw(port, "GET", "/", h_cookie, NULL, &s);
    cr_expect_eq(s, 200, "%s", a);
    cr_expect(strstr(a, "Content-Type: text/html") && strstr(a, "<script src=\"/app.js\""), "%s", a);
    cr_expect(!strstr(body_of(a), "://"), "the page names no other site: %s", body_of(a));
    free(a);
    a = web_raw(port, "GET", "/app.js", h_auth, NULL, &s);
    cr_expect_eq(s, 200);
    /* The scripts fetch nothing from elsewhere: the only URL in them is
     * SVG's namespace name, which is never fetched. */
    const char *js = body_of(a);
    for (const char *q = strstr(js, "://"); q; q = strstr(q + 3, "://"))
        cr_expect(strncmp(q - 4, "http://www.w3.org/2000/svg", 26) == 0, "a URL in app.js: %.60s", q - 8);
    free(a);
    a = web_raw(port, "GET", "/v1/workloads", h_cookie, NULL, &s);
    cr_expect_eq(s, 200, "%s", a);
    cr_expect(strstr(body_of(a), "\"name\":\"one\""), "%s", a);
    free(a);
    cr_expect_eq(web_status(port, "GET", "/v1/workloads/one", h_auth, NULL), 200);
    cr_expect_eq(web_status(port, "GET", "/metrics", h_auth, NULL), 200);
    cr_expect_eq(web_status(port, "GET", "/v1/compare", h_auth, NULL), 200);

    /* What the socket serves and the dashboard does not, even with every token. */
    char csrf[65], h_post[400], h_evil[500], h_cross[300];
    csrf_of(port, h_auth, csrf);
    snprintf(h_post, sizeof(h_post), "%sX-Duet-CSRF: %s\r\n", h_auth, csrf);
    snprintf(h_evil, sizeof(h_evil), "%sOrigin: http://evil.example\r\n", h_post);
    snprintf(h_cross, sizeof(h_cross), "%sSec-Fetch-Site: cross-site\r\n", h_auth);
    cr_expect_eq(web_status(port, "POST", "/v1/workloads/one/exec", h_post, "{\"argv\":[\"id\"]}"), 404);
    cr_expect_eq(web_status(port, "POST", "/v1/run", h_post, "{}"), 404);
    cr_expect_eq(web_status(port, "GET", "/v1/secrets", h_auth, NULL), 404);
    cr_expect_eq(web_status(port, "GET", "/v1/dashboard", h_auth, NULL), 404, "the token is not handed out here");
    cr_expect_eq(web_status(port, "POST", "/v1/workloads/one/backup", h_post, "{\"path\":\"/tmp/x\"}"), 404);
    cr_expect_eq(web_status(port, "DELETE", "/v1/workloads/one", h_post, NULL), 405);
    cr_expect_eq(web_status(port, "POST", "/v1/apply", h_post, "{\"files\":[],\"dryRun\":false}"), 403,
                 "the dashboard plans and never applies");
    /* Another site's page: the browser says so, or sends its origin. */
    cr_expect_eq(web_status(port, "GET", "/v1/workloads", h_cross, NULL), 403);
    cr_expect_eq(web_status(port, "POST", "/v1/workloads/one/stop", h_evil, "{}"), 403);
    cr_expect_eq(web_status(port, "POST", "/v1/workloads/one/stop", h_auth, "{}"), 403, "no CSRF token");
    char h_bad_csrf[400];
    snprintf(h_bad_csrf, sizeof(h_bad_csrf), "%sX-Duet-CSRF: %s\r\n", h_auth, token);
    cr_expect_eq(web_status(port, "POST", "/v1/workloads/one/stop", h_bad_csrf, "{}"), 403, "the login token is not the CSRF token");
    /* No CORS: nothing allows another origin to read an answer. */
    a = web_raw(port, "GET", "/v1/workloads", h_auth, NULL, &s);
    cr_expect(!strstr(a, "Access-Control-Allow"), "%s", a);
    free(a);
    /* Read-only: a write with every token is still refused, and changes nothing. */
    a = web_raw(port, "POST", "/v1/workloads/one/stop", h_post, "{}", &s);
    cr_expect_eq(s, 403, "%s", a);
    cr_expect(strstr(a, "read-only") && strstr(a, "--web-write"), "%s", a);
    free(a);
    cr_expect(dd_field_is(&d, "one", "state", "running"));
    /* The plan route: a dry run, its errors at FILE:LINE:COL. */
    a = web_raw(port, "POST", "/v1/apply", h_post,
                "{\"dryRun\":true,\"files\":[{\"name\":\"/x.yaml\",\"content\":\"apiVersion: duet/v1\\nkind: Workload\\n"
                "metadata:\\n  name: x\\nspec:\\n  restart: sometimes\\n\"}]}",
                &s);
    cr_expect_eq(s, 422, "%s", a);
    cr_expect(strstr(a, "/x.yaml:6:"), "%s", a);
    free(a);
    /* Hostile requests: an overlong cookie, a NUL in a header. */
    char *huge = malloc(20000);
    cr_assert(huge);
    memcpy(huge, "Cookie: ", 8);
    memset(huge + 8, 'a', 19000);
    memcpy(huge + 19008, "\r\n", 3);
    cr_expect_eq(web_status(port, "GET", "/", huge, NULL), 431);
    free(huge);

    /* --web-write: the same token (the file outlives the daemon), and the writes. */
    dd_stop(&d);
    static char listen2[32];
    snprintf(listen2, sizeof(listen2), "%s", listen);
    d.extra[0] = "--web";
    d.extra[1] = listen2;
    d.extra[2] = "--web-write";
    dd_start(&d);
    char token2[65];
    dashboard_token(&d, token2, url);
    cr_expect_str_eq(token2, token);
    char csrf2[65];
    csrf_of(port, h_auth, csrf2);
    cr_expect_str_eq(csrf2, csrf, "a page loaded before the restart still posts");
    cr_expect_eq(web_status(port, "POST", "/v1/workloads/one/stop", h_evil, "{}"), 403);
    a = web_raw(port, "POST", "/v1/workloads/one/stop", h_post, "{}", &s);
    cr_expect_eq(s, 202, "%s", a);
    free(a);
    dd_wait_field(&d, "one", "state", "stopped", 20000);
    cr_expect_eq(web_status(port, "POST", "/v1/workloads/one/start", h_post, "{}"), 202);
    dd_wait_field(&d, "one", "state", "running", 20000);
    cr_expect_eq(web_status(port, "POST", "/v1/workloads/nope/restart", h_post, "{}"), 404);
    cr_expect_eq(web_status(port, "POST", "/v1/workloads/one/delete", h_post, "{}"), 202);

    /* A token file others could read is not trusted: a new one replaces it. */
    dd_stop(&d);
    cr_assert_eq(chmod(path, 0644), 0);
    dd_start(&d);
    dashboard_token(&d, token2, url);
    cr_expect_str_neq(token2, token);
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    cr_expect_eq(web_status(port, "GET", "/v1/workloads", h_auth, NULL), 401, "the old token is gone");
    dd_finish(&d);
}

Test(web, tls_with_a_certificate_and_its_key, .timeout = 120)
{
    struct dd d;
    dd_prepare(&d, NULL);
    char cert[200], key[200], other[200], cmd[2048];
    snprintf(cert, sizeof(cert), "%s/cert.pem", d.dir);
    snprintf(key, sizeof(key), "%s/key.pem", d.dir);
    snprintf(other, sizeof(other), "%s/other.pem", d.dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s 2>/dev/null && "
             "openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:prime256v1 -out %s 2>/dev/null",
             key, cert, other);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    static char listen[32], cert_s[200], key_s[200];
    unsigned port = dd_free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    snprintf(cert_s, sizeof(cert_s), "%s", cert);
    snprintf(key_s, sizeof(key_s), "%s", other);

    /* A key that is not the certificate's: duetd does not start, and says why. */
    char duetd[300];
    snprintf(duetd, sizeof(duetd), "%s/duetd", dd_env("DUET_BUILD"));
    snprintf(cmd, sizeof(cmd),
             "%s --foreground --state-dir %s --socket %s --bridge %s --subnet %s --web %s --web-cert %s --web-key %s 2>&1",
             duetd, d.state, d.sock, d.bridge, d.subnet, listen, cert, other);
    char out[4096];
    cr_expect_neq(dd_sh_out(cmd, out, sizeof(out)), 0, "duetd started with another key: %s", out);
    cr_expect(strstr(out, "is not the key of certificate"), "%s", out);
    snprintf(cmd, sizeof(cmd), "DUET_CONFIG=none %s --check-config --web %s --web-cert %s --web-key %s 2>&1", duetd,
             listen, cert, other);
    cr_expect(dd_sh_out(cmd, out, sizeof(out)) == 1 && strstr(out, "is not the key of certificate"),
              "--check-config: %s", out);
    snprintf(cmd, sizeof(cmd), "%s --web %s --web-cert %s 2>&1", duetd, listen, cert);
    cr_expect(dd_sh_out(cmd, out, sizeof(out)) == 2 && strstr(out, "go together"), "%s", out);

    snprintf(key_s, sizeof(key_s), "%s", key);
    d.extra[0] = "--web";
    d.extra[1] = listen;
    d.extra[2] = "--web-cert";
    d.extra[3] = cert_s;
    d.extra[4] = "--web-key";
    d.extra[5] = key_s;
    dd_start(&d);
    char token[65], url[128];
    dashboard_token(&d, token, url);
    cr_expect(strncmp(url, "https://127.0.0.1:", 18) == 0, "%s", url);
    /* curl checks the certificate against the one made here. */
    snprintf(cmd, sizeof(cmd), "curl -sS -i --max-time 10 --cacert %s '%s' 2>&1", cert, url);
    dd_sh_out(cmd, out, sizeof(out));
    cr_expect(strstr(out, "HTTP/1.1 303") && strstr(out, "; Secure") && strstr(out, "Strict-Transport-Security"),
              "%s", out);
    snprintf(cmd, sizeof(cmd), "curl -sS --max-time 10 --cacert %s -H 'Authorization: Bearer %s' https://%s/v1/workloads 2>&1",
             cert, token, listen);
    dd_sh_out(cmd, out, sizeof(out));
    cr_expect(strstr(out, "{\"workloads\":["), "%s", out);
    /* Plain HTTP to the TLS port gets no HTTP answer; the daemon goes on. */
    int s = web_status(port, "GET", "/", NULL, NULL);
    cr_expect_eq(s, -1, "plain HTTP answered %d", s);
    cr_expect(dd_answers(&d));
    dd_finish(&d);
}

/* Connections that send half a request head and then nothing. */
static int slow_client(unsigned port)
{
    int fd = dd_tcp_connect(port);
    if (fd >= 0 && write(fd, "GET / HTTP/1.1\r\nHost: x\r\n", 25) != 25) {
        close(fd);
        fd = -1;
    }
    return fd;
}

Test(web, a_thousand_slow_clients_do_not_hold_the_socket, .timeout = 120)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    cr_assert_geq(rl.rlim_cur, 1100, "the test needs 1100 descriptors");
    static char listen[32];
    struct dd d;
    unsigned port = web_daemon(&d, listen, false, false);
    dd_apply_sleeper(&d, "one");
    char token[65], url[128], h_auth[200];
    dashboard_token(&d, token, url);
    snprintf(h_auth, sizeof(h_auth), "Authorization: Bearer %s\r\n", token);
    int fds[1000];
    int opened = 0;
    uint64_t worst = 0;
    for (int i = 0; i < 1000; i++) {
        fds[i] = slow_client(port);
        opened += fds[i] >= 0;
        /* Every 100: the socket answers duet get's request within a
         * second (timed here, without the command's own start-up, which
         * the sanitizers slow), and duet get shows the fleet. */
        if (i % 100 == 99) {
            uint64_t t0 = dd_now_ms();
            struct client_buf b = {0};
            struct duet_err err = {0};
            int status = client_call_buf(d.sock, "GET", "/v1/workloads", NULL, 0, &b, 5000, &err);
            uint64_t took = dd_now_ms() - t0;
            cr_expect_eq(status, 200, "%s", err.msg);
            cr_expect(b.data && strstr(b.data, "\"name\":\"one\""), "%s", b.data ? b.data : err.msg);
            free(b.data);
            worst = took > worst ? took : worst;
            char *out;
            cr_expect_eq(dd_duet(&d, &out, "get"), 0, "%s", out);
            cr_expect(strstr(out, "one"), "%s", out);
            free(out);
        }
    }
    cr_expect_eq(opened, 1000, "the kernel took every connection (the backlog)");
    cr_expect_lt(worst, 1000, "GET /v1/workloads took %" PRIu64 " ms with slow clients on the web port", worst);
    cr_log_info("the socket's slowest answer with up to 1000 slow clients on the web port: %" PRIu64 " ms", worst);
    /* The dashboard itself still answers a whole request: the slow ones
     * make room for it. */
    uint64_t t0 = dd_now_ms();
    cr_expect_eq(web_status(port, "GET", "/v1/workloads", h_auth, NULL), 200);
    cr_expect_lt(dd_now_ms() - t0, 1000);
    json_t *info = dd_get(&d, "/v1/info");
    cr_expect(info);
    json_decref(info);
    for (int i = 0; i < 1000; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    dd_finish(&d);
}
