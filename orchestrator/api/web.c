/*
 * web.c - the web dashboard's listener (duetd --web, docs/dashboard.md).
 *
 * A TCP listener of its own, apart from the API socket: the pages and
 * scripts come from the binary (web_assets.c), and what they show comes
 * from a short list of the API's read routes, served by the same handlers
 * as on the socket.  Everything else the socket serves (exec, apply, run,
 * secrets, backups) is not reachable here at all.
 *
 * Who may use it: whoever presents the login token, a file of the state
 * directory (mode 0600) that `duet dashboard` reads through the socket, so
 * the dashboard is open to exactly those the socket is.  The browser gets
 * it once (GET /login?token=...) and keeps it as a cookie that is
 * HttpOnly and SameSite=Strict; scripts may send it as a bearer token.
 * Every comparison is of SHA-256 digests with CRYPTO_memcmp: the time an
 * answer takes says nothing of how much of a guess was right.
 *
 * Another origin must not be able to drive it: the cookie is never sent
 * with a request from another site, no answer allows cross-origin reads
 * (no CORS headers), a request the browser marks cross-site is refused,
 * and every POST needs the CSRF token the session route hands to the
 * page (a custom header: a form or an image cannot send it) and, when the
 * browser names an origin, this one.  Writes (stop, start, restart,
 * delete) need --web-write on top.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common/hex.h"
#include "orchestrator/api/internal.h"
#include "orchestrator/api/web_assets.h"

#ifndef DUET_VERSION
#define DUET_VERSION "0.1.0"
#endif

/* Sent with every answer of the listener.  The pages load nothing but
 * their own scripts and styles and talk to nothing but their origin. */
#define WEB_HEADERS                                                                                     \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' " \
    "data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'\r\n"        \
    "X-Frame-Options: DENY\r\n"                                                                        \
    "Cache-Control: no-store\r\n"                                                                      \
    "X-Content-Type-Options: nosniff\r\n"                                                              \
    "Referrer-Policy: no-referrer\r\n"                                                                 \
    "Cross-Origin-Opener-Policy: same-origin\r\n"                                                      \
    "Cross-Origin-Resource-Policy: same-origin\r\n"
static const char web_headers_plain[] = WEB_HEADERS;
static const char web_headers_tls[] = WEB_HEADERS "Strict-Transport-Security: max-age=31536000\r\n";

/* The browser's connections are few (a page, its event and log streams):
 * far fewer slots than the socket's keeps a flood here from taking the
 * descriptors the rest of the daemon needs. */
#define WEB_MAX_CONNS 128

static bool token_valid(const char *t)
{
    if (strlen(t) != WEB_TOKEN_HEX)
        return false;
    for (const char *p = t; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

/* The login token of the state directory: kept across restarts (a
 * browser's cookie stays good), made when there is none.  One that others
 * could have read (not root's, or not 0600), or that is not what duetd
 * writes, is replaced. */
static int token_load(const char *state_dir, char out[WEB_TOKEN_HEX + 1], struct duet_err *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/web-token", state_dir);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        char buf[WEB_TOKEN_HEX + 2] = {0};
        ssize_t n = -1;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 && (st.st_mode & 077) == 0)
            n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n == WEB_TOKEN_HEX + 1 && buf[WEB_TOKEN_HEX] == '\n') {
            buf[WEB_TOKEN_HEX] = '\0';
            if (token_valid(buf)) {
                memcpy(out, buf, WEB_TOKEN_HEX + 1);
                return 0;
            }
        }
    }
    if (unlink(path) < 0 && errno != ENOENT)
        return duet_err_sys(err, "cannot replace %s", path);
    unsigned char raw[WEB_TOKEN_HEX / 2];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return duet_err_sys(err, "cannot make a login token");
    hex_encode(raw, sizeof(raw), out);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return duet_err_sys(err, "cannot write %s", path);
    char line[WEB_TOKEN_HEX + 2];
    snprintf(line, sizeof(line), "%s\n", out);
    bool ok = write(fd, line, WEB_TOKEN_HEX + 1) == WEB_TOKEN_HEX + 1 && fsync(fd) == 0;
    int e = errno;
    close(fd);
    if (!ok) {
        unlink(path);
        errno = e;
        return duet_err_sys(err, "cannot write %s", path);
    }
    return 0;
}

/* Equal, in a time that does not depend on where they differ or on the
 * length of the guess. */
static bool secret_equal(const unsigned char want[32], const char *given, size_t n)
{
    unsigned char h[32];
    SHA256((const unsigned char *)given, n, h);
    return CRYPTO_memcmp(h, want, 32) == 0;
}

/* The token the request carries: a bearer token, else the cookie. */
static bool web_authorized(const struct api *a, const struct http_request *req)
{
    const char *auth = http_request_header(req, "authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        return secret_equal(a->web.token_hash, auth + 7, strlen(auth + 7));
    const char *cookie = http_request_header(req, "cookie");
    size_t name_len = strlen(a->web.cookie);
    for (const char *p = cookie; p && *p;) {
        p += strspn(p, " \t");
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n > name_len && strncmp(p, a->web.cookie, name_len) == 0 && p[name_len] == '=')
            return secret_equal(a->web.token_hash, p + name_len + 1, n - name_len - 1);
        p = end ? end + 1 : NULL;
    }
    return false;
}

static void respond_401(struct http_conn *c)
{
    http_respond(c, 401, "text/plain; charset=utf-8", "unauthorized\n", 13);
}

/* A POST the page sent, not another site: the CSRF header, and the
 * origin (when the browser names one) this listener's own. */
static bool web_post_allowed(const struct api *a, const struct http_request *req)
{
    const char *csrf = http_request_header(req, "x-duet-csrf");
    if (!csrf || !secret_equal(a->web.csrf_hash, csrf, strlen(csrf)))
        return false;
    const char *origin = http_request_header(req, "origin"), *host = http_request_header(req, "host");
    if (origin) {
        char want[300];
        snprintf(want, sizeof(want), "%s://%s", req->tls ? "https" : "http", host ? host : "");
        if (!host || strcmp(origin, want) != 0)
            return false;
    }
    return true;
}

static void get_session(struct api *a, struct http_conn *c)
{
    json_t *j = json_object();
    json_object_set_new(j, "csrf", json_string(a->web.csrf));
    json_object_set_new(j, "write", json_boolean(a->web.write));
    json_object_set_new(j, "version", json_string(DUET_VERSION));
    /* The page follows the event stream from here on (the history is
     * what each workload's page shows). */
    json_object_set_new(j, "last_event", json_integer((json_int_t)store_events_last(a->d->store)));
    http_respond_json(c, 200, j);
}

static void login(struct api *a, struct http_conn *c, const struct http_request *req)
{
    char token[WEB_TOKEN_HEX + 8];
    if (!http_query_get(req->query, "token", token, sizeof(token)) ||
        !secret_equal(a->web.token_hash, token, strlen(token)))
        return respond_401(c);
    char cookie[256];
    snprintf(cookie, sizeof(cookie), "Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Strict%s", a->web.cookie, token,
             req->tls ? "; Secure" : "");
    http_conn_add_header(c, cookie);
    http_conn_add_header(c, "Location: /");
    http_respond(c, 303, "text/plain; charset=utf-8", "", 0);
}

/* POST /v1/apply from the plan page: a dry run, or nothing. */
static void plan(struct api *a, struct http_conn *c, const struct http_request *req)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    bool dry = body && json_is_true(json_object_get(body, "dryRun"));
    json_decref(body);
    if (!dry) {
        http_respond_error(c, 403, "the dashboard plans (\"dryRun\": true) and does not apply: use duet apply");
        return;
    }
    api_apply(a, c, req);
}

/* POST /v1/workloads/NAME/ACTION with --web-write. */
static void workload_action(struct api *a, struct http_conn *c, const char *name, const char *action)
{
    if (!a->web.write) {
        http_respond_error(c, 403, "this dashboard is read-only: duetd --web-write allows %s", action);
        return;
    }
    if (strcmp(action, "delete") == 0)
        return api_delete_workload(a, c, name, "");
    api_workload_action(a, c, name, action);
}

static void web_handle(void *opaque, struct http_conn *c, const struct http_request *req)
{
    struct api *a = opaque;
    const char *p = req->path;
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0;
    struct web_asset asset;
    bool is_asset = get && web_asset_find(p, &asset);
    http_conn_set_route(c, req->method, is_asset ? "/{asset}" : strcmp(p, "/login") == 0 ? "/login" : api_route_of(p));
    if (a->d->shutting_down) {
        http_respond_error(c, 503, "duetd is shutting down");
        return;
    }
    if (strcmp(p, "/login") == 0 && get)
        return login(a, c, req);
    if (!web_authorized(a, req))
        return respond_401(c);
    const char *site = http_request_header(req, "sec-fetch-site");
    if (site && (strcmp(site, "cross-site") == 0 || strcmp(site, "same-site") == 0)) {
        http_respond_error(c, 403, "the dashboard answers its own pages only");
        return;
    }
    if (!get && !post) {
        http_respond_error(c, 405, "the dashboard takes GET and POST");
        return;
    }
    if (post && !web_post_allowed(a, req)) {
        http_respond_error(c, 403, "a POST needs the dashboard's CSRF token, from its own page");
        return;
    }
    if (is_asset) {
        http_respond(c, 200, asset.type, (const char *)asset.data, asset.len);
        return;
    }
    if (get && strcmp(p, "/web/session") == 0)
        return get_session(a, c);
    if (post && strcmp(p, "/v1/apply") == 0)
        return plan(a, c, req);
    if (strncmp(p, "/v1/workloads/", 14) == 0) {
        const char *name = p + 14, *slash = strchr(name, '/');
        size_t n = slash ? (size_t)(slash - name) : strlen(name);
        char nm[64];
        if (n > 0 && n < sizeof(nm) && manifest_name_valid(name, n)) {
            memcpy(nm, name, n);
            nm[n] = '\0';
            if (post && slash &&
                (strcmp(slash, "/stop") == 0 || strcmp(slash, "/start") == 0 || strcmp(slash, "/restart") == 0 ||
                 strcmp(slash, "/delete") == 0))
                return workload_action(a, c, nm, slash + 1);
            if (get && (!slash || strcmp(slash, "/logs") == 0))
                return api_route(a, c, req);
        }
    }
    static const char *const reads[] = {"/metrics", "/v1/info", "/v1/workloads", "/v1/events", "/v1/compare"};
    for (size_t i = 0; get && i < sizeof(reads) / sizeof(reads[0]); i++)
        if (strcmp(p, reads[i]) == 0)
            return api_route(a, c, req);
    http_respond_error(c, 404, "the dashboard has no %s %.200s", req->method, p);
}

int api_web_listen(struct api *a, const struct api_web_config *cfg, struct duet_err *err)
{
    struct api_web *w = &a->web;
    if (token_load(a->d->state_dir, w->token, err) < 0)
        return duet_err_prefix(err, "--web");
    SHA256((const unsigned char *)w->token, WEB_TOKEN_HEX, w->token_hash);
    /* The CSRF token follows from the login token: a page loaded before
     * a daemon restart still posts. */
    unsigned char mac[32];
    unsigned int mac_len = sizeof(mac);
    HMAC(EVP_sha256(), w->token, WEB_TOKEN_HEX, (const unsigned char *)"duet-csrf", 9, mac, &mac_len);
    hex_encode(mac, 32, w->csrf);
    SHA256((const unsigned char *)w->csrf, 64, w->csrf_hash);
    if (http_server_start_tcp(&w->http, a->d->loop, cfg->addr, web_handle, a, err) < 0)
        return duet_err_prefix(err, "--web");
    w->on = true;
    w->http.deadline_ms = a->http.deadline_ms;
    w->http.max_conns = WEB_MAX_CONNS;
    w->http.headers = cfg->cert ? web_headers_tls : web_headers_plain;
    if (cfg->cert && http_server_use_tls(&w->http, cfg->cert, cfg->key, err) < 0)
        return duet_err_prefix(err, "--web-cert");
    w->write = cfg->write;
    w->tls = cfg->cert != NULL;
    /* A wildcard address is reached on this host by its loopback one. */
    char host[64];
    snprintf(host, sizeof(host), "%s", cfg->addr);
    char *colon = strrchr(host, ':');
    const char *port = colon ? colon + 1 : "";
    if (colon)
        *colon = '\0';
    const char *shown = strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : strcmp(host, "[::]") == 0 ? "[::1]" : host;
    snprintf(w->url, sizeof(w->url), "%s://%s:%s/", w->tls ? "https" : "http", shown, port);
    /* One cookie per port: two daemons on one host do not log each
     * other out (cookies do not tell ports apart). */
    snprintf(w->cookie, sizeof(w->cookie), "duet_token_%s", port);
    return 0;
}

/* GET /v1/dashboard on the socket: where the dashboard is, with the token. */
void api_get_dashboard(struct api *a, struct http_conn *c)
{
    if (!a->web.on) {
        http_respond_error(c, 409, "duetd serves no dashboard: start it with --web 127.0.0.1:9480 (or web: in "
                                   "its config file; docs/dashboard.md)");
        return;
    }
    char login_url[sizeof(a->web.url) + 100];
    snprintf(login_url, sizeof(login_url), "%slogin?token=%s", a->web.url, a->web.token);
    json_t *j = json_object();
    json_object_set_new(j, "url", json_string(a->web.url));
    json_object_set_new(j, "login_url", json_string(login_url));
    json_object_set_new(j, "token", json_string(a->web.token));
    json_object_set_new(j, "write", json_boolean(a->web.write));
    json_object_set_new(j, "tls", json_boolean(a->web.tls));
    http_respond_json(c, 200, j);
}
