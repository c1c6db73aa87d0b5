/*
 * routes.c - the API's server, its routes, and GET /v1/info.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/container/container.h"
#include "common/promtext.h"
#include "orchestrator/api/internal.h"

#ifndef DUET_VERSION
#define DUET_VERSION "0.1.0"
#endif

/* ---- GET /v1/info ------------------------------------------------------------------- */

static void get_info(struct api *a, struct http_conn *c)
{
    struct daemon *d = a->d;
    json_t *j = json_object();
    json_object_set_new(j, "version", json_string(DUET_VERSION));
    json_object_set_new(j, "pid", json_integer(getpid()));
    json_object_set_new(j, "started_at", json_integer((json_int_t)d->started_at));
    json_object_set_new(j, "state_dir", json_string(d->state_dir));
    json_object_set_new(j, "workloads", json_integer((json_int_t)d->wls.len));
    json_object_set_new(j, "degraded", d->degraded[0] ? json_string(d->degraded) : json_null());
    json_object_set_new(j, "config_file", d->config_file[0] ? json_string(d->config_file) : json_null());
    json_t *b = json_object();
    for (int k = 0; k < BACKEND_COUNT; k++) {
        const struct driver_caps *cp = &d->host.backend[k];
        json_t *x = json_object();
        json_object_set_new(x, "available", json_boolean(cp->available && d->drv_open[k]));
        json_object_set_new(x, "description", json_string(cp->available ? cp->description : cp->unavailable_reason));
        json_object_set_new(x, "start_ms", json_integer((json_int_t)cp->start_ms));
        json_object_set_new(x, "measured", json_boolean(cp->measured));
        if (k == BACKEND_VM) {
            json_object_set_new(x, "kvm", json_boolean(cp->kvm));
            json_object_set_new(x, "guest_kernel", cp->guest_kernel ? json_string(cp->guest_kernel_path) : json_null());
        }
        json_object_set_new(b, backend_kind_name((enum backend_kind)k), x);
    }
    json_object_set_new(j, "backends", b);
    char cg[512];
    json_object_set_new(j, "cgroup_dir",
                        json_string(container_driver_cgroup_dir(d->drv[BACKEND_CONTAINER], cg, sizeof(cg))));
    if (d->net_open) {
        json_t *n = json_object();
        char sn[20], gw[16];
        ipam_format_subnet(&d->net.ipam.subnet, sn);
        ipam_format(ipam_gateway(&d->net.ipam.subnet), gw);
        json_object_set_new(n, "bridge", json_string(d->net.bridge));
        json_object_set_new(n, "subnet", json_string(sn));
        json_object_set_new(n, "gateway", json_string(gw));
        json_object_set_new(n, "nameserver", json_string(gw));
        json_object_set_new(n, "addresses_used", json_integer(d->net.ipam.used));
        json_object_set_new(n, "dns_answered", json_integer((json_int_t)d->net.dns_answered));
        json_object_set_new(n, "dns_forwarded", json_integer((json_int_t)d->net.dns_forwarded));
        json_object_set_new(n, "dhcp", d->net.dhcp_open ? json_true() : json_false());
        json_object_set_new(n, "dhcp_answered", json_integer((json_int_t)d->net.dhcp_answered));
        json_object_set_new(j, "network", n);
    }
    http_respond_json(c, 200, j);
}

/* The route a path is taken as, its names replaced ({name}), so the count
 * of requests by route stays small whatever the clients ask for. */
const char *api_route_of(const char *path)
{
    static const char *const flat[] = {"/metrics",    "/v1/info",   "/v1/workloads", "/v1/apply",
                                       "/v1/run",     "/v1/compare", "/v1/restore",  "/v1/events",
                                       "/v1/images",  "/v1/volumes", "/v1/secrets",  "/v1/images/inspect",
                                       "/v1/images/pull", "/v1/images/prune",
                                       "/v1/dashboard"};
    for (size_t i = 0; i < sizeof(flat) / sizeof(flat[0]); i++)
        if (strcmp(path, flat[i]) == 0)
            return flat[i];
    if (strncmp(path, "/v1/images/", 11) == 0)
        return "/v1/images/{ref}";
    if (strncmp(path, "/v1/volumes/", 12) == 0)
        return "/v1/volumes/{name}";
    if (strncmp(path, "/v1/secrets/", 12) == 0)
        return "/v1/secrets/{name}";
    if (strncmp(path, "/v1/workloads/", 14) == 0) {
        const char *slash = strchr(path + 14, '/');
        if (!slash)
            return "/v1/workloads/{name}";
        static const char *const sub[] = {"/logs", "/exec", "/backup", "/snapshots", "/stop", "/start", "/restart",
                                          "/delete"};
        static const char *const full[] = {"/v1/workloads/{name}/logs",      "/v1/workloads/{name}/exec",
                                           "/v1/workloads/{name}/backup",    "/v1/workloads/{name}/snapshots",
                                           "/v1/workloads/{name}/stop",      "/v1/workloads/{name}/start",
                                           "/v1/workloads/{name}/restart",   "/v1/workloads/{name}/delete"};
        for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
            if (strcmp(slash, sub[i]) == 0)
                return full[i];
        if (strncmp(slash, "/snapshots/", 11) == 0) {
            const char *r = strchr(slash + 11, '/');
            return r && strcmp(r, "/restore") == 0 ? "/v1/workloads/{name}/snapshots/{snapshot}/restore"
                                                   : "/v1/workloads/{name}/snapshots/{snapshot}";
        }
    }
    return "other";
}

/* ---- GET /metrics ------------------------------------------------------------------- */

/* The daemon's figures, then the servers' own: requests answered on the
 * API socket and on the metrics listener. */
static void counts_write(FILE *f, const struct http_server *const *servers, const char *const *names, size_t n)
{
    prom_family(f, "duet_api_requests_total", "counter",
                "Requests answered, by listener, method, route (names replaced by {name}) and status.");
    for (size_t k = 0; k < n; k++) {
        const struct http_server *s = servers[k];
        for (size_t i = 0; i < s->n_counts; i++) {
            struct prom_labels l;
            prom_labels_init(&l);
            prom_label(&l, "listener", names[k]);
            prom_label(&l, "method", s->counts[i].method);
            prom_label(&l, "route", s->counts[i].route);
            prom_label_u64(&l, "status", (uint64_t)s->counts[i].status);
            prom_u64(f, "duet_api_requests_total", &l, s->counts[i].n);
        }
    }
    prom_family(f, "duet_api_connections", "gauge", "Connections open now, by listener.");
    for (size_t k = 0; k < n; k++) {
        struct prom_labels l;
        prom_labels_init(&l);
        prom_label(&l, "listener", names[k]);
        prom_u64(f, "duet_api_connections", &l, servers[k]->n_conns);
    }
}

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

static char *metrics_text(struct api *a, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        abort();
    daemon_metrics_write(a->d, f);
    const struct http_server *servers[3] = {&a->http};
    const char *names[3] = {"socket"};
    size_t n = 1;
    if (a->metrics_on) {
        servers[n] = &a->metrics;
        names[n++] = "metrics";
    }
    if (a->web.on) {
        servers[n] = &a->web.http;
        names[n++] = "web";
    }
    counts_write(f, servers, names, n);
    if (fclose(f) != 0)
        abort();
    return text;
}

static void get_metrics(struct api *a, struct http_conn *c)
{
    size_t len = 0;
    char *text = metrics_text(a, &len);
    http_respond(c, 200, METRICS_TYPE, text, len);
    free(text);
}

/* A scrape of a large fleet holds the loop for milliseconds (reading
 * every container's figures): on the network listener, where anyone may
 * ask in a loop, scrapes closer together than this share one answer. */
#define API_METRICS_REUSE_MS 1000

/* The metrics listener (duetd --metrics-listen) answers GET /metrics and
 * nothing else: it is reachable from the network, without credentials. */
static void metrics_handle(void *opaque, struct http_conn *c, const struct http_request *req)
{
    struct api *a = opaque;
    http_conn_set_route(c, req->method, strcmp(req->path, "/metrics") == 0 ? "/metrics" : "other");
    if (strcmp(req->path, "/metrics") != 0) {
        http_respond_error(c, 404, "this listener serves GET /metrics only");
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        http_respond_error(c, 405, "/metrics takes GET");
        return;
    }
    uint64_t now = uv_now(a->d->loop);
    if (!a->metrics_text || now - a->metrics_at >= API_METRICS_REUSE_MS) {
        free(a->metrics_text);
        a->metrics_text = metrics_text(a, &a->metrics_len);
        uv_update_time(a->d->loop);
        a->metrics_at = uv_now(a->d->loop);
    }
    http_respond(c, 200, METRICS_TYPE, a->metrics_text, a->metrics_len);
}

static void api_handle(void *opaque, struct http_conn *c, const struct http_request *req)
{
    struct api *a = opaque;
    http_conn_set_route(c, req->method, api_route_of(req->path));
    api_route(a, c, req);
}

void api_route(struct api *a, struct http_conn *c, const struct http_request *req)
{
    struct daemon *d = a->d;
    const char *p = req->path;
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0,
         del = strcmp(req->method, "DELETE") == 0;
    if (d->shutting_down) {
        http_respond_error(c, 503, "duetd is shutting down");
        return;
    }
    if (strcmp(p, "/metrics") == 0 && get)
        return get_metrics(a, c);
    if (strncmp(p, "/v1/", 4) != 0) {
        http_respond_error(c, 404, "unknown path %.200s: the API lives under /v1/ (see docs/api.md)", p);
        return;
    }
    p += 4;
    if (strcmp(p, "info") == 0 && get)
        return get_info(a, c);
    if (strcmp(p, "dashboard") == 0 && get)
        return api_get_dashboard(a, c);
    if (strcmp(p, "workloads") == 0 && get)
        return api_get_workloads(a, c);
    if (strcmp(p, "apply") == 0 && post)
        return api_apply(a, c, req);
    if (strcmp(p, "run") == 0 && post)
        return api_run(a, c, req);
    if (strcmp(p, "compare") == 0 && post)
        return api_compare(a, c, req);
    if (strcmp(p, "compare") == 0 && get)
        return api_get_compares(a, c);
    if (strcmp(p, "restore") == 0 && post)
        return api_restore(a, c, req);
    if (strcmp(p, "events") == 0 && get)
        return api_get_events(a, c, req->query);
    if (strncmp(p, "images", 6) == 0 && (p[6] == '\0' || p[6] == '/'))
        return api_images(a, c, req, p + 6);
    if (strncmp(p, "volumes", 7) == 0 && (p[7] == '\0' || p[7] == '/'))
        return api_volumes(a, c, req, p + 7);
    if (strncmp(p, "secrets", 7) == 0 && (p[7] == '\0' || p[7] == '/'))
        return api_secrets(a, c, req, p + 7);
    if (strncmp(p, "workloads/", 10) == 0) {
        const char *name = p + 10;
        const char *slash = strchr(name, '/');
        size_t n = slash ? (size_t)(slash - name) : strlen(name);
        char nm[64];
        if (n == 0 || n >= sizeof(nm) || !manifest_name_valid(name, n)) {
            http_respond_error(c, 404, "\"%.*s\" is not a workload name", (int)(n > 63 ? 63 : n), name);
            return;
        }
        memcpy(nm, name, n);
        nm[n] = '\0';
        if (!slash && get)
            return api_get_workload(a, c, nm);
        if (!slash && del)
            return api_delete_workload(a, c, nm, req->query);
        if (slash && strcmp(slash, "/logs") == 0 && get)
            return api_get_logs(a, c, nm, req->query);
        if (slash && strcmp(slash, "/exec") == 0 && post)
            return api_exec(a, c, nm, req);
        if (slash && post && (strcmp(slash, "/stop") == 0 || strcmp(slash, "/start") == 0 ||
                              strcmp(slash, "/restart") == 0))
            return api_workload_action(a, c, nm, slash + 1);
        if (slash && strcmp(slash, "/backup") == 0 && post)
            return api_backup(a, c, req, nm);
        if (slash && strncmp(slash, "/snapshots", 10) == 0 && (slash[10] == '\0' || slash[10] == '/'))
            return api_snapshots(a, c, req, nm, slash + 10);
    }
    http_respond_error(c, 404, "no route for %s /v1/%.200s (see docs/api.md)", req->method, p);
}

/* ---- the server's life ---------------------------------------------------------------- */

struct api *api_new(struct daemon *d)
{
    struct api *a = calloc(1, sizeof(*a));
    if (!a)
        abort();
    a->d = d;
    return a;
}

int api_start(struct api *a, const char *path, gid_t group, unsigned deadline_ms, struct duet_err *err)
{
    if (http_server_start(&a->http, a->d->loop, path, group, api_handle, a, err) < 0)
        return -1;
    a->http.deadline_ms = deadline_ms;
    api_events_init(a);
    return 0;
}

int api_metrics_listen(struct api *a, const char *addr, struct duet_err *err)
{
    if (http_server_start_tcp(&a->metrics, a->d->loop, addr, metrics_handle, a, err) < 0)
        return duet_err_prefix(err, "--metrics-listen");
    a->metrics.deadline_ms = a->http.deadline_ms;
    a->metrics_on = true;
    return 0;
}

void api_stop(struct api *a)
{
    http_server_stop(&a->http);
    if (a->metrics_on)
        http_server_stop(&a->metrics);
    if (a->web.on)
        http_server_stop(&a->web.http);
    api_events_close(a);
}

void api_free(struct api *a)
{
    http_server_free_counts(&a->http);
    http_server_free_counts(&a->metrics);
    http_server_free_counts(&a->web.http);
    free(a->metrics_text);
    free(a);
}
