/*
 * routes.c - the API's server, its routes, and GET /v1/info.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/container/container.h"
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

static void api_handle(void *opaque, struct http_conn *c, const struct http_request *req)
{
    struct api *a = opaque;
    struct daemon *d = a->d;
    const char *p = req->path;
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0,
         del = strcmp(req->method, "DELETE") == 0;
    if (d->shutting_down) {
        http_respond_error(c, 503, "duetd is shutting down");
        return;
    }
    if (strncmp(p, "/v1/", 4) != 0) {
        http_respond_error(c, 404, "unknown path %.200s: the API lives under /v1/ (see docs/api.md)", p);
        return;
    }
    p += 4;
    if (strcmp(p, "info") == 0 && get)
        return get_info(a, c);
    if (strcmp(p, "workloads") == 0 && get)
        return api_get_workloads(a, c);
    if (strcmp(p, "apply") == 0 && post)
        return api_apply(a, c, req);
    if (strcmp(p, "run") == 0 && post)
        return api_run(a, c, req);
    if (strcmp(p, "compare") == 0 && post)
        return api_compare(a, c, req);
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

void api_stop(struct api *a)
{
    http_server_stop(&a->http);
    api_events_close(a);
}

void api_free(struct api *a)
{
    free(a);
}
