/*
 * workloads.c - GET /v1/workloads, GET and DELETE /v1/workloads/NAME.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/hostpath.h"
#include "orchestrator/api/internal.h"

json_t *api_json_text(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *o = malloc(n * 3 + 1);
    if (!o)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        json_t *probe = len && i + len <= n && c ? json_stringn(s + i, len) : NULL;
        if (probe) {
            json_decref(probe);
            memcpy(o + k, s + i, len);
            k += len;
            i += len;
        } else {
            memcpy(o + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    j = json_stringn(o, k);
    free(o);
    return j;
}

static json_t *json_ms_or_null(int64_t ms)
{
    return ms > 0 ? json_integer(ms) : json_null();
}

json_t *api_wl_json(const struct wl *w, bool detail)
{
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(w->name));
    json_object_set_new(j, "role", json_string(wl_role_name(w->spec->role)));
    json_object_set_new(j, "backend", json_string(backend_kind_name(w->backend)));
    json_object_set_new(j, "state", json_string(wl_state_name(w)));
    json_object_set_new(j, "phase", json_string(wl_phase_name(w->phase)));
    json_object_set_new(j, "health", json_string(wl_health_name(w->health)));
    json_object_set_new(j, "ready", json_boolean(wl_ready(w)));
    json_object_set_new(j, "generation", json_integer(w->gen));
    json_object_set_new(j, "restarts", json_integer(w->restarts));
    json_object_set_new(j, "restart_policy", json_string(wl_restart_name(w->spec->restart)));
    json_object_set_new(j, "created_at", json_ms_or_null(w->created_at));
    json_object_set_new(j, "started_at", json_ms_or_null(w->started_at));
    json_object_set_new(j, "exited_at", json_ms_or_null(w->exited_at));
    if (w->exited_at > 0) {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_integer(w->last_exit));
        json_object_set_new(e, "signal", json_integer(w->last_signal));
        json_object_set_new(j, "last_exit", e);
    } else {
        json_object_set_new(j, "last_exit", json_null());
    }
    json_object_set_new(j, "message", w->message ? json_string(w->message) : json_null());
    /* The network: the address (kept until the workload is deleted) and
     * the host ports published to it. */
    if (w->addr) {
        char a[16];
        ipam_format(w->addr, a);
        json_object_set_new(j, "address", json_string(a));
    } else {
        json_object_set_new(j, "address", json_null());
    }
    json_object_set_new(j, "network", json_string(wl_network_name(w->spec->network)));
    json_t *ports = json_array();
    for (size_t i = 0; i < w->spec->n_ports; i++) {
        const struct wl_port *p = &w->spec->ports[i];
        json_t *x = json_object();
        json_object_set_new(x, "host", json_integer(p->host));
        json_object_set_new(x, "port", json_integer(p->port));
        json_object_set_new(x, "protocol", json_string(p->protocol == WL_PROTO_UDP ? "udp" : "tcp"));
        const char *owner = w->d->net_open ? fleet_net_port_owner(&w->d->net, p->host, p->protocol) : NULL;
        json_object_set_new(x, "published", json_boolean(owner && strcmp(owner, w->name) == 0 && w->addr));
        json_array_append_new(ports, x);
    }
    json_object_set_new(j, "ports", ports);
    char warn[1024];
    if (hostpath_warning(w->spec, warn, sizeof(warn)))
        json_object_set_new(j, "warning", json_string(warn));
    if (!detail)
        return j;
    json_object_set_new(j, "spec", json_loads(w->spec_json, 0, NULL));
    json_object_set_new(j, "placement", json_loads(w->placement_json, 0, NULL));
    json_object_set_new(j, "health_message", w->health_msg ? json_string(w->health_msg) : json_null());
    json_object_set_new(j, "crashloop", json_boolean(w->crashloop));
    json_t *inst = json_null();
    if (w->inst) {
        inst = json_object();
        json_object_set_new(inst, "backend", json_string(backend_kind_name(w->inst_backend)));
        json_object_set_new(inst, "generation", json_integer(w->inst_gen));
        json_object_set_new(inst, "handle", json_string(w->handle));
        json_object_set_new(inst, "running", json_boolean(w->inst_running));
        struct driver *drv = daemon_driver(w->d, w->inst_backend);
        struct driver_stats st;
        struct duet_err err = {0};
        /* A container's figures are cgroup files, read at once; a VM's
         * come from libvirt, a call that may wait on the connection, which
         * the loop must not: VMs show theirs through libvirt's tools. */
        if (w->inst_running && drv && (drv->flags & DRIVER_STATS_AT_ONCE) && drv->stats(drv, w->inst, &st, &err) == 0) {
            json_t *s = json_object();
            json_object_set_new(s, "cpu_ns", json_integer((json_int_t)st.cpu_ns));
            json_object_set_new(s, "memory_bytes", json_integer((json_int_t)st.memory_bytes));
            json_object_set_new(s, "memory_limit", json_integer((json_int_t)st.memory_limit));
            json_object_set_new(s, "pids", json_integer((json_int_t)st.pids));
            json_object_set_new(s, "disk_bytes", json_integer((json_int_t)st.disk_bytes));
            json_object_set_new(s, "disk_limit", json_integer((json_int_t)st.disk_limit));
            json_object_set_new(inst, "stats", s);
        }
    }
    json_object_set_new(j, "instance", inst);
    return j;
}

json_t *api_event_json(const struct store_event *e)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(e->id));
    json_object_set_new(j, "time", json_integer(e->ts));
    json_object_set_new(j, "workload", e->workload ? json_string(e->workload) : json_null());
    json_object_set_new(j, "type", json_string(e->type));
    json_object_set_new(j, "message", api_json_text(e->message, strlen(e->message)));
    return j;
}

static void add_event(void *opaque, const struct store_event *e)
{
    json_array_append_new(opaque, api_event_json(e));
}

struct wl *api_find(struct api *a, struct http_conn *c, const char *name)
{
    struct wl *w = daemon_wl_find(a->d, name);
    if (!w)
        http_respond_error(c, 404, "no workload named \"%.63s\"; duet get lists them", name);
    return w;
}

static int by_name(const void *x, const void *y)
{
    const struct wl *p = *(struct wl *const *)x, *q = *(struct wl *const *)y;
    return strcmp(p->name, q->name);
}

void api_get_workloads(struct api *a, struct http_conn *c)
{
    struct daemon *d = a->d;
    struct wl **v = malloc((d->wls.len + 1) * sizeof(*v));
    if (!v)
        abort();
    size_t n = 0;
    DAEMON_WL_FOREACH(d, w)
        v[n++] = w;
    qsort(v, n, sizeof(*v), by_name);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, api_wl_json(v[i], false));
    free(v);
    json_t *j = json_object();
    json_object_set_new(j, "workloads", arr);
    if (d->degraded[0])
        json_object_set_new(j, "degraded", json_string(d->degraded));
    http_respond_json(c, 200, j);
}

void api_get_workload(struct api *a, struct http_conn *c, const char *name)
{
    struct wl *w = api_find(a, c, name);
    if (!w)
        return;
    json_t *j = api_wl_json(w, true);
    json_t *ev = json_array();
    struct duet_err err = {0};
    store_events(a->d->store, 0, w->name, DUETD_EVENTS_RECENT, add_event, ev, &err);
    json_object_set_new(j, "events", ev);
    if (a->d->degraded[0])
        json_object_set_new(j, "degraded", json_string(a->d->degraded));
    http_respond_json(c, 200, j);
}

void api_delete_workload(struct api *a, struct http_conn *c, const char *name)
{
    struct duet_err err = {0};
    if (daemon_delete(a->d, name, &err) < 0) {
        http_respond_error(c, err.code == ENOENT ? 404 : 503, "%s", err.msg);
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "deleted", json_string(name));
    http_respond_json(c, 202, j);
}
