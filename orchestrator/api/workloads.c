/*
 * workloads.c - GET /v1/workloads, GET and DELETE /v1/workloads/NAME.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "manifests/hostpath.h"
#include "backends/vm/virtiofs.h"
#include "images/store.h"
#include "storage/volume.h"
#include "orchestrator/api/internal.h"

int api_status_of(int code)
{
    switch (code) {
    case ENOENT: return 404;
    case EACCES: return 403;
    case EEXIST:
    case EBUSY:
    case ESTALE: return 409;
    case EINVAL:
    case EPERM:
    case EPROTO:
    case EFBIG:
    case ENAMETOOLONG:
    case ENODATA: return 422;
    case EAGAIN: return 503;
    case ENOSPC: return 507;
    default: return 500;
    }
}

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

static void ms_or_null(struct jsonw *jw, const char *key, int64_t ms)
{
    jsonw_key(jw, key);
    if (ms > 0)
        jsonw_int(jw, ms);
    else
        jsonw_null(jw);
}

static void string_or_null(struct jsonw *jw, const char *key, const char *s)
{
    jsonw_key(jw, key);
    if (s)
        jsonw_string(jw, s);
    else
        jsonw_null(jw);
}

/* A compact JSON writer on a growing buffer, *text once text_writer_end
 * has closed it. */
static FILE *text_writer(struct jsonw *jw, char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    if (!f)
        abort();
    jsonw_init(jw, f, false);
    return f;
}

static void text_writer_end(FILE *f)
{
    if (fclose(f) != 0)
        abort();
}

/* A workload's summary, what `get` lists, written straight out: the list
 * of a big fleet is the largest answer duetd gives, and building it as a
 * tree first cost more than the rest of the request. */
static void wl_summary_write(struct jsonw *jw, const struct wl *w)
{
    jsonw_object_begin(jw);
    jsonw_kv_string(jw, "name", w->name);
    jsonw_kv_string(jw, "role", wl_role_name(w->spec->role));
    jsonw_kv_string(jw, "backend", backend_kind_name(w->backend));
    jsonw_kv_string(jw, "state", wl_state_name(w));
    jsonw_kv_string(jw, "phase", wl_phase_name(w->phase));
    jsonw_kv_string(jw, "health", wl_health_name(w->health));
    jsonw_kv_bool(jw, "ready", wl_ready(w));
    jsonw_kv_bool(jw, "stopped", w->stopped);
    jsonw_kv_bool(jw, "restart_pending", w->restart_asked);
    jsonw_key(jw, "generation");
    jsonw_int(jw, w->gen);
    jsonw_key(jw, "restarts");
    jsonw_int(jw, w->restarts);
    jsonw_kv_string(jw, "restart_policy", wl_restart_name(w->spec->restart));
    /* duet compare's instances: what they measure, and whether they were kept. */
    jsonw_key(jw, "temporary");
    if (w->temp_of) {
        jsonw_object_begin(jw);
        jsonw_kv_string(jw, "compare_of", w->temp_of);
        jsonw_kv_bool(jw, "kept", w->temp_kept);
        jsonw_object_end(jw);
    } else {
        jsonw_null(jw);
    }
    ms_or_null(jw, "created_at", w->created_at);
    ms_or_null(jw, "started_at", w->started_at);
    ms_or_null(jw, "exited_at", w->exited_at);
    jsonw_key(jw, "last_exit");
    if (w->exited_at > 0) {
        jsonw_object_begin(jw);
        jsonw_key(jw, "code");
        jsonw_int(jw, w->last_exit);
        jsonw_key(jw, "signal");
        jsonw_int(jw, w->last_signal);
        jsonw_object_end(jw);
    } else {
        jsonw_null(jw);
    }
    string_or_null(jw, "message", w->message);
    /* The VM disk kept for it (docs/storage.md): what it was made from. */
    jsonw_key(jw, "disk");
    if (w->disk) {
        jsonw_object_begin(jw);
        jsonw_kv_string(jw, "source", w->disk);
        jsonw_kv_bool(jw, "reset", w->disk_reset);
        jsonw_object_end(jw);
    } else {
        jsonw_null(jw);
    }
    /* Volumes, and for a VM the virtiofs tag each is shared under
     * (docs/storage.md): a disk image's own init mounts it by that. */
    jsonw_key(jw, "volumes");
    jsonw_array_begin(jw);
    for (size_t i = 0; i < w->spec->n_volumes; i++) {
        const struct wl_volume *v = &w->spec->volumes[i];
        jsonw_object_begin(jw);
        char path[4400];
        if (v->name)
            volume_data_path(w->d->volume_root, v->name, path, sizeof(path));
        jsonw_kv_string(jw, "source", v->name ? path : v->source);
        string_or_null(jw, "name", v->name);
        jsonw_key(jw, "size");
        if (v->size)
            jsonw_uint(jw, v->size);
        else
            jsonw_null(jw);
        jsonw_kv_string(jw, "target", v->target);
        jsonw_kv_bool(jw, "read_only", v->read_only);
        char tag[32];
        snprintf(tag, sizeof(tag), VM_VIRTIOFS_TAG_PREFIX "%zu", i);
        string_or_null(jw, "tag", w->backend == BACKEND_VM ? tag : NULL);
        jsonw_object_end(jw);
    }
    jsonw_array_end(jw);
    /* The network: the address (kept until the workload is deleted) and
     * the host ports published to it. */
    char a[16];
    if (w->addr)
        ipam_format(w->addr, a);
    string_or_null(jw, "address", w->addr ? a : NULL);
    jsonw_kv_string(jw, "network", wl_network_name(w->spec->network));
    jsonw_key(jw, "ports");
    jsonw_array_begin(jw);
    for (size_t i = 0; i < w->spec->n_ports; i++) {
        const struct wl_port *p = &w->spec->ports[i];
        jsonw_object_begin(jw);
        jsonw_kv_uint(jw, "host", p->host);
        jsonw_kv_uint(jw, "port", p->port);
        jsonw_kv_string(jw, "protocol", p->protocol == WL_PROTO_UDP ? "udp" : "tcp");
        const char *owner = w->d->net_open ? fleet_net_port_owner(&w->d->net, p->host, p->protocol) : NULL;
        jsonw_kv_bool(jw, "published", owner && strcmp(owner, w->name) == 0 && w->addr);
        jsonw_object_end(jw);
    }
    jsonw_array_end(jw);
    char warn[1024];
    if (hostpath_warning(w->spec, warn, sizeof(warn)))
        jsonw_kv_string(jw, "warning", warn);
    jsonw_object_end(jw);
}

json_t *api_wl_json(const struct wl *w)
{
    char *text = NULL;
    size_t n = 0;
    struct jsonw jw;
    FILE *f = text_writer(&jw, &text, &n);
    wl_summary_write(&jw, w);
    text_writer_end(f);
    json_t *j = json_loadb(text, n, 0, NULL);
    free(text);
    if (!j)
        abort();   /* jsonw writes valid JSON whatever the strings hold */
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
        struct driver_stats st;
        uint64_t at = 0;
        /* A container's figures are cgroup files, read now; a VM's are
         * libvirt's, sampled on the pool every few seconds (stats.c). */
        if (wl_stats(w, &st, &at)) {
            json_t *s = json_object();
            json_object_set_new(s, "sampled_at", json_integer((json_int_t)at));
            json_object_set_new(s, "cpu_ns", json_integer((json_int_t)st.cpu_ns));
            json_object_set_new(s, "memory_bytes", json_integer((json_int_t)st.memory_bytes));
            json_object_set_new(s, "memory_limit", json_integer((json_int_t)st.memory_limit));
            json_object_set_new(s, "memory_resident_bytes",
                                st.has_mem_view ? json_integer((json_int_t)st.memory_resident_bytes) : json_null());
            json_object_set_new(s, "memory_cache_bytes",
                                st.has_mem_view ? json_integer((json_int_t)st.memory_cache_bytes) : json_null());
            json_object_set_new(s, "pids", json_integer((json_int_t)st.pids));
            json_object_set_new(s, "disk_bytes", json_integer((json_int_t)st.disk_bytes));
            json_object_set_new(s, "disk_limit", json_integer((json_int_t)st.disk_limit));
            json_object_set_new(s, "blk_read_bytes", st.has_blk ? json_integer((json_int_t)st.blk_read_bytes) : json_null());
            json_object_set_new(s, "blk_write_bytes",
                                st.has_blk ? json_integer((json_int_t)st.blk_write_bytes) : json_null());
            json_object_set_new(s, "net_rx_bytes", st.has_net ? json_integer((json_int_t)st.net_rx_bytes) : json_null());
            json_object_set_new(s, "net_tx_bytes", st.has_net ? json_integer((json_int_t)st.net_tx_bytes) : json_null());
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
    char *text = NULL;
    size_t len = 0;
    struct jsonw jw;
    FILE *f = text_writer(&jw, &text, &len);
    jsonw_object_begin(&jw);
    jsonw_key(&jw, "workloads");
    jsonw_array_begin(&jw);
    for (size_t i = 0; i < n; i++)
        wl_summary_write(&jw, v[i]);
    jsonw_array_end(&jw);
    free(v);
    if (d->degraded[0])
        jsonw_kv_string(&jw, "degraded", d->degraded);
    jsonw_object_end(&jw);
    /* A newline at the end, as http_respond_json writes. */
    fputc('\n', f);
    text_writer_end(f);
    http_respond(c, 200, "application/json", text, len);
    free(text);
}

static json_t *strings_json(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, api_json_text(v[i], strlen(v[i])));
    return a;
}

/* An OCI workload's image as describe shows it: the image in the store
 * for its reference (or null: not pulled yet), what the workload runs
 * from it, what the image exposes (published only by ports) and the
 * signal a stop sends. */
static json_t *image_json(struct wl *w)
{
    const char *ref = w->spec->image.oci;
    json_t *j = json_object();
    json_object_set_new(j, "ref", json_string(ref));
    struct image *img = NULL;
    if (w->d->images && image_store_get(w->d->images, ref, &img, NULL) == 0) {
        json_object_set_new(j, "id", json_string(img->id));
        json_object_set_new(j, "exposed_ports", strings_json(img->config.exposed_ports, img->config.n_exposed_ports));
        if (img->config.stop_signal)
            json_object_set_new(j, "stop_signal", api_json_text(img->config.stop_signal, strlen(img->config.stop_signal)));
    } else {
        json_object_set_new(j, "id", json_null());
    }
    image_free(img);
    const struct workload_spec *run = w->inst_spec ? w->inst_spec : w->run_spec_of == w->spec ? w->run_spec : NULL;
    if (run)
        json_object_set_new(j, "command", strings_json((char *const *)run->command, run->n_command));
    return j;
}

void api_get_workload(struct api *a, struct http_conn *c, const char *name)
{
    struct wl *w = api_find(a, c, name);
    if (!w)
        return;
    json_t *j = api_wl_json(w);
    if (w->spec && w->spec->image.oci)
        json_object_set_new(j, "image", image_json(w));
    json_t *ev = json_array();
    struct duet_err err = {0};
    store_events(a->d->store, 0, w->name, DUETD_EVENTS_RECENT, add_event, ev, &err);
    json_object_set_new(j, "events", ev);
    if (a->d->degraded[0])
        json_object_set_new(j, "degraded", json_string(a->d->degraded));
    http_respond_json(c, 200, j);
}

void api_delete_workload(struct api *a, struct http_conn *c, const char *name, const char *query)
{
    struct duet_err err = {0};
    char flag[8] = "";
    bool volumes = http_query_get(query, "volumes", flag, sizeof(flag)) && strcmp(flag, "1") == 0;
    if (daemon_delete(a->d, name, volumes, &err) < 0) {
        http_respond_error(c, err.code == ENOENT ? 404 : 503, "%s", err.msg);
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "deleted", json_string(name));
    http_respond_json(c, 202, j);
}

/* POST /v1/workloads/NAME/{stop,start,restart}: taken (written) now, done
 * by the reconciler; the event stream and GET say when. */
void api_workload_action(struct api *a, struct http_conn *c, const char *name, const char *action)
{
    enum wl_action act = strcmp(action, "stop") == 0    ? WL_ACTION_STOP
                         : strcmp(action, "start") == 0 ? WL_ACTION_START
                                                        : WL_ACTION_RESTART;
    struct duet_err err = {0};
    if (daemon_workload_action(a->d, name, act, &err) < 0) {
        http_respond_error(c, api_status_of(err.code), "%s", err.msg);
        return;
    }
    struct wl *w = daemon_wl_find(a->d, name);
    json_t *j = json_object();
    json_object_set_new(j, "workload", json_string(name));
    json_object_set_new(j, "action", json_string(action));
    json_object_set_new(j, "state", json_string(w ? wl_state_name(w) : "deleting"));
    http_respond_json(c, 202, j);
}
