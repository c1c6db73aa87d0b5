/*
 * api.c - the /v1 routes of duetd's API (docs/api.md).
 *
 * Handlers run on the loop thread and never block: what takes time (a
 * workload's exit for `run`, an exec, a log follower) keeps a reference to
 * the connection and answers later.  Every error is {"error": "..."} with
 * a 4xx status for what the client can fix and 5xx for what it cannot.
 */
#include <errno.h>
#include <sys/stat.h>
#include <libgen.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "backends/container/container.h"
#include "orchestrator/daemon.h"
#include "manifests/hostpath.h"
#include "scheduler/placement.h"
#include "manifests/specjson.h"

#ifndef DUET_VERSION
#define DUET_VERSION "0.1.0"
#endif

#define EXEC_OUTPUT_MAX (4u << 20)
#define LOG_FOLLOW_POLL_MS 200
#define EVENTS_DEFAULT_LIMIT 1000

/* ---- JSON helpers ------------------------------------------------------------ */

/* JSON strings must be UTF-8: anything else (a binary log line) is
 * replaced byte by byte with U+FFFD. */
static json_t *json_text(const char *s, size_t n)
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
        struct driver *drv = w->d->drv[w->inst_backend];
        struct driver_stats st;
        struct duet_err err = {0};
        /* A container's figures are cgroup files, read at once; a VM's
         * come from libvirt, a call that may wait on the connection, which
         * the loop must not: VMs show theirs through libvirt's tools. */
        if (w->inst_running && w->inst_backend == BACKEND_CONTAINER && drv->stats(drv, w->inst, &st, &err) == 0) {
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

static void add_event(void *opaque, const struct store_event *e)
{
    json_t *a = opaque;
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(e->id));
    json_object_set_new(j, "time", json_integer(e->ts));
    json_object_set_new(j, "workload", e->workload ? json_string(e->workload) : json_null());
    json_object_set_new(j, "type", json_string(e->type));
    json_object_set_new(j, "message", json_text(e->message, strlen(e->message)));
    json_array_append_new(a, j);
}

static struct wl *find(struct daemon *d, struct http_conn *c, const char *name)
{
    struct wl *w = strmap_get(&d->wls, name);
    if (!w)
        http_respond_error(c, 404, "no workload named \"%.*s\"; duet get lists them", 63, name);
    return w;
}

/* ---- GET /v1/workloads[/NAME] ---------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    const struct wl *x = *(struct wl *const *)a, *y = *(struct wl *const *)b;
    return strcmp(x->name, y->name);
}

static void get_workloads(struct daemon *d, struct http_conn *c)
{
    struct wl **v = malloc((d->wls.len + 1) * sizeof(*v));
    if (!v)
        abort();
    size_t n = 0;
    DAEMON_WL_FOREACH(d, w)
        v[n++] = w;
    qsort(v, n, sizeof(*v), by_name);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, api_wl_json(v[i], false));
    free(v);
    json_t *j = json_object();
    json_object_set_new(j, "workloads", a);
    http_respond_json(c, 200, j);
}

static void get_workload(struct daemon *d, struct http_conn *c, const char *name)
{
    struct wl *w = find(d, c, name);
    if (!w)
        return;
    json_t *j = api_wl_json(w, true);
    json_t *ev = json_array();
    struct duet_err err = {0};
    store_events(d->store, 0, w->name, DUETD_EVENTS_RECENT, add_event, ev, &err);
    json_object_set_new(j, "events", ev);
    http_respond_json(c, 200, j);
}

/* ---- DELETE /v1/workloads/NAME ------------------------------------------------ */

static void delete_workload(struct daemon *d, struct http_conn *c, const char *name)
{
    struct wl *w = find(d, c, name);
    if (!w)
        return;
    if (!w->deleted) {
        w->deleted = true;
        wl_save(w);
        daemon_event(d, w->name, "delete", "deletion requested");
    }
    json_t *j = json_object();
    json_object_set_new(j, "deleted", json_string(w->name));
    http_respond_json(c, 202, j);
    wl_reconcile(w);
}

/* ---- POST /v1/apply ------------------------------------------------------------ */

struct apply_change {
    const char *name;
    const char *action;            /* create, replace, unchanged, delete */
    const struct placement *pl;    /* NULL for delete */
    char *json;                    /* canonical spec (create/replace) */
};

static json_t *placement_json(const struct placement *pl)
{
    json_t *j = json_object();
    json_object_set_new(j, "backend", json_string(backend_kind_name(pl->backend)));
    json_t *r = json_array();
    for (size_t i = 0; i < pl->n_reasons; i++)
        json_array_append_new(r, json_string(pl->reasons[i]));
    json_object_set_new(j, "reasons", r);
    json_t *ro = json_object();
    for (int b = 0; b < BACKEND_COUNT; b++)
        if (pl->ruled_out[b])
            json_object_set_new(ro, backend_kind_name((enum backend_kind)b), json_string(pl->ruled_out[b]));
    json_object_set_new(j, "ruled_out", ro);
    json_object_set_new(j, "start_order", json_integer(pl->start_order));
    return j;
}

static json_t *diags_json(const struct diag_list *dl)
{
    json_t *a = json_array();
    for (size_t i = 0; i < dl->n; i++) {
        char line[2048];
        snprintf(line, sizeof(line), "%s:%u:%u: error: %s", dl->v[i].file, dl->v[i].line, dl->v[i].col,
                 dl->v[i].msg);
        json_array_append_new(a, json_text(line, strlen(line)));
    }
    return a;
}

/* Gives w the spec `json`, placed as pl, from group g. */
static void wl_assign(struct wl *w, struct spec_group *g, const struct workload_spec *spec, char *json,
                      const struct placement *pl)
{
    if (w->grp)
        spec_group_unref(w->grp);
    w->grp = g;
    g->refs++;
    w->spec = spec;
    free(w->spec_json);
    w->spec_json = json;
    w->gen++;
    w->backend = pl->backend;
    json_t *pj = placement_json(pl);
    free(w->placement_json);
    w->placement_json = json_dumps(pj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(pj);
    w->deleted = false;
    w->restarts = 0;
    w->quick_failures = 0;
    w->crashloop = false;
    free(w->message);
    w->message = NULL;
    if (w->phase == PH_EXITED || w->phase == PH_BACKOFF)
        w->phase = PH_PENDING;
}


/* The manifest checks the host's own tree (hostpath.h); the daemon adds
 * what only it knows: its state directory and its socket's.  A workload
 * given those could rewrite the store or talk to the API as root. */
static void check_daemon_paths(struct daemon *d, struct manifest_set *set, const struct strmap *in_files)
{
    char sockdir[sizeof(d->socket_path)];
    snprintf(sockdir, sizeof(sockdir), "%s", d->socket_path);
    const char *const mine[] = {d->state_dir, dirname(sockdir), NULL};
    for (size_t k = 0; k < set->n_workloads; k++) {
        const struct workload_spec *w = set->workloads[k];
        if (w->host_access || strmap_get(in_files, w->name) != w)
            continue;
        const char *paths[64];
        size_t n = 0;
        if (w->image.rootfs)
            paths[n++] = w->image.rootfs;
        for (size_t i = 0; i < w->n_volumes && n < 64; i++)
            paths[n++] = w->volumes[i].source;
        for (size_t i = 0; i < n; i++) {
            char resolved[4096];
            const char *hit = hostpath_protected(paths[i], mine, resolved, sizeof(resolved));
            if (hit)
                diag_add(&set->diags, w->pos.file, w->name_pos.line, w->name_pos.col,
                         "%s: %s leads to %s, which is or holds duetd's %s: a workload given it could change "
                         "the daemon's state; name a directory of its own, or set spec.hostAccess: true",
                         w->name, paths[i], resolved, hit);
        }
    }
}

/* apply, in two halves.  The files are parsed on the thread pool: a large
 * or hostile body (up to HTTP_MAX_BODY of YAML) takes the pool's time, not
 * the loop's, and at most as many are parsed at once as the pool has
 * threads.  The rest (checks against the fleet, the plan, the store) runs
 * on the loop in apply_set. */
struct apply_parse {
    uv_work_t work;
    struct daemon *d;
    struct http_conn *c;
    const char *body;              /* the connection's, kept for us */
    size_t body_len;
    char error[400];               /* a 400 to answer, or "" */
    bool prune, dry_run;
    struct manifest_set *set;
};

static void apply_parse_work(uv_work_t *work)
{
    struct apply_parse *ap = work->data;
    json_error_t jerr;
    json_t *body = json_loadb(ap->body, ap->body_len, 0, &jerr);
    json_t *files = body ? json_object_get(body, "files") : NULL;
    if (!body || !json_is_array(files)) {
        json_decref(body);
        snprintf(ap->error, sizeof(ap->error), "apply wants {\"files\": [{\"name\": ..., \"content\": ...}]}: %s",
                 body ? "no files array" : jerr.text);
        return;
    }
    ap->prune = json_is_true(json_object_get(body, "prune"));
    ap->dry_run = json_is_true(json_object_get(body, "dryRun"));
    ap->set = manifest_set_new();
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        const char *name = json_string_value(json_object_get(f, "name"));
        json_t *content = json_object_get(f, "content");
        if (!name || !json_is_string(content)) {
            snprintf(ap->error, sizeof(ap->error), "files[%zu] needs a name and a content string", i);
            break;
        }
        manifest_set_load_buffer(ap->set, name, json_string_value(content), json_string_length(content));
    }
    json_decref(body);
}

static void apply_set(struct daemon *d, struct http_conn *c, struct manifest_set *set, bool prune, bool dry_run);

static void apply_parsed(uv_work_t *work, int status)
{
    struct apply_parse *ap = work->data;
    if (status < 0 && !ap->error[0])
        snprintf(ap->error, sizeof(ap->error), "the request could not be read: %s", uv_strerror(status));
    if (http_conn_closed(ap->c) || ap->d->shutting_down) {
        manifest_set_free(ap->set);
    } else if (ap->error[0]) {
        manifest_set_free(ap->set);
        http_respond_error(ap->c, 400, "%s", ap->error);
    } else {
        apply_set(ap->d, ap->c, ap->set, ap->prune, ap->dry_run);
    }
    http_conn_unref(ap->c);
    free(ap);
}

static void apply(struct daemon *d, struct http_conn *c, const struct http_request *req)
{
    struct apply_parse *ap = calloc(1, sizeof(*ap));
    if (!ap)
        abort();
    ap->d = d;
    ap->c = c;
    ap->body = req->body;
    ap->body_len = req->body_len;
    ap->work.data = ap;
    http_conn_ref(c);
    http_conn_keep_body(c);
    int rc = uv_queue_work(d->loop, &ap->work, apply_parse_work, apply_parsed);
    if (rc < 0) {
        http_conn_unref(c);
        free(ap);
        http_respond_error(c, 503, "duetd cannot take this apply now: %s", uv_strerror(rc));
    }
}

static void apply_set(struct daemon *d, struct http_conn *c, struct manifest_set *set, bool prune, bool dry_run)
{
    if (set->host && manifest_set_ok(set)) {
        diag_add(&set->diags, set->host->pos.file, set->host->pos.line, set->host->pos.col,
                 "kind: Host describes a machine to plan for (duet plan); duetd runs workloads on the machine it "
                 "runs on: leave it out of apply");
    }
    if (set->n_workloads == 0 && manifest_set_ok(set))
        diag_add(&set->diags, "apply", 0, 0, "no Workload documents in the files given");
    /* The rest of the fleet takes part in the checks (dependsOn) and in the
     * capacity the plan counts, unless pruned. */
    struct strmap in_files;
    strmap_init(&in_files);
    for (size_t k = 0; k < set->n_workloads; k++)
        strmap_put(&in_files, set->workloads[k]->name, set->workloads[k]);
    char **kept = malloc((d->wls.len + 1) * sizeof(*kept));
    size_t n_kept = 0;
    if (!kept)
        abort();
    DAEMON_WL_FOREACH(d, w) {
        if (w->deleted || strmap_get(&in_files, w->name) || (prune && !w->rm))
            continue;
        kept[n_kept++] = w->spec_json;
    }
    if (manifest_set_ok(set) && n_kept)
        specjson_load(set, "(applied earlier)", kept, n_kept);
    free(kept);
    if (manifest_set_ok(set))
        manifest_set_validate(set);
    if (manifest_set_ok(set))
        check_daemon_paths(d, set, &in_files);
    if (!manifest_set_ok(set))
        strmap_free(&in_files);
    if (!manifest_set_ok(set)) {
        diag_sort(&set->diags);
        json_t *j = json_object();
        json_object_set_new(j, "error", json_string("the manifests have errors; nothing was changed"));
        json_object_set_new(j, "diagnostics", diags_json(&set->diags));
        manifest_set_free(set);
        http_respond_json(c, 422, j);
        return;
    }

    struct plan *plan = plan_new(set, &d->host);
    if (plan->n_unplaceable) {
        json_t *u = json_array();
        for (size_t k = 0; k < plan->n; k++) {
            const struct placement *pl = &plan->items[k];
            if (pl->placed)
                continue;
            json_t *x = json_object();
            json_object_set_new(x, "name", json_string(pl->w->name));
            json_object_set_new(x, "reason", json_string(pl->unplaceable));
            json_array_append_new(u, x);
        }
        json_t *j = json_object();
        json_object_set_new(j, "error", json_string("some workloads fit nowhere on this host; nothing was changed"));
        json_object_set_new(j, "unplaceable", u);
        strmap_free(&in_files);
        plan_free(plan);
        manifest_set_free(set);
        http_respond_json(c, 422, j);
        return;
    }

    /* The diff: what the files change, in start order. */
    size_t cap = plan->n + d->wls.len + 1;
    struct apply_change *ch = calloc(cap, sizeof(*ch));
    if (!ch)
        abort();
    size_t n_ch = 0;
    for (size_t k = 0; k < plan->n; k++) {
        const struct placement *pl = &plan->items[k];
        const struct workload_spec *w = pl->w;
        if (strcmp(w->pos.file, "(applied earlier)") == 0)
            continue;
        struct wl *cur = strmap_get(&d->wls, w->name);
        char *json = specjson_text(w);
        const char *action = "create";
        if (cur && !cur->deleted)
            action = strcmp(cur->spec_json, json) == 0 && !cur->rm ? "unchanged" : "replace";
        ch[n_ch++] = (struct apply_change){.name = w->name, .action = action, .pl = pl, .json = json};
    }
    if (prune) {
        DAEMON_WL_FOREACH(d, w)
            if (!w->deleted && !w->rm && !strmap_get(&in_files, w->name))
                ch[n_ch++] = (struct apply_change){.name = w->name, .action = "delete"};
    }

    /* Host ports: each one published anew must be free on the host (the
     * manifests were checked against each other above).  Checked for a dry
     * run too: it says what the apply would do. */
    json_t *taken = json_array();
    for (size_t k = 0; k < n_ch && d->net_open; k++) {
        if (!ch[k].pl || strcmp(ch[k].action, "unchanged") == 0 || !ch[k].pl->w->n_ports)
            continue;
        struct duet_err perr = {0};
        if (fleet_net_ports_check(&d->net, ch[k].name, ch[k].pl->w->ports, ch[k].pl->w->n_ports, &perr) < 0) {
            const struct wl_port *p0 = ch[k].pl->w->ports;
            char line[DUET_ERR_MSG_MAX + 300];
            snprintf(line, sizeof(line), "%s:%u:%u: error: %s", p0->pos.file, p0->pos.line, p0->pos.col, perr.msg);
            json_array_append_new(taken, json_text(line, strlen(line)));
        }
    }
    json_t *refusal = NULL, *out = NULL;
    if (json_array_size(taken)) {
        refusal = json_object();
        json_object_set_new(refusal, "error", json_string("host ports are taken; nothing was changed"));
        json_object_set_new(refusal, "diagnostics", taken);
        goto done;
    }
    json_decref(taken);

    out = json_array();
    for (size_t k = 0; k < n_ch; k++) {
        json_t *x = json_object();
        json_object_set_new(x, "name", json_string(ch[k].name));
        json_object_set_new(x, "action", json_string(ch[k].action));
        if (ch[k].pl) {
            json_t *pj = placement_json(ch[k].pl);
            json_object_update(x, pj);
            json_decref(pj);
        }
        json_array_append_new(out, x);
    }

    if (!dry_run) {
        /* The changed specs are loaded once more on their own, so the set
         * kept alive holds only what the workloads use. */
        char **texts = malloc((n_ch + 1) * sizeof(*texts));
        size_t n_texts = 0;
        if (!texts)
            abort();
        for (size_t k = 0; k < n_ch; k++)
            if (ch[k].json && strcmp(ch[k].action, "unchanged") != 0)
                texts[n_texts++] = ch[k].json;
        struct spec_group *g = calloc(1, sizeof(*g));
        if (!g)
            abort();
        g->set = manifest_set_new();
        specjson_load(g->set, "duetd-store", texts, n_texts);
        free(texts);
        struct duet_err err = {0};
        store_begin(d->store, &err);
        for (size_t k = 0; k < n_ch; k++) {
            struct wl *w = strmap_get(&d->wls, ch[k].name);
            if (strcmp(ch[k].action, "delete") == 0) {
                w->deleted = true;
                wl_save(w);
                continue;
            }
            if (strcmp(ch[k].action, "unchanged") == 0)
                continue;
            if (!w)
                w = wl_new(d, ch[k].name);
            w->rm = false;
            const struct workload_spec *spec = NULL;
            for (size_t x = 0; x < g->set->n_workloads && !spec; x++)
                if (strcmp(g->set->workloads[x]->name, ch[k].name) == 0)
                    spec = g->set->workloads[x];
            wl_assign(w, g, spec, steal_ptr(&ch[k].json), ch[k].pl);
            wl_save(w);
            struct duet_err perr = {0};
            if (d->net_open && fleet_net_ports_set(&d->net, w->name, spec->ports, spec->n_ports, &perr) < 0)
                daemon_event(d, w->name, "failed", "publishing its ports: %s", perr.msg);
        }
        if (store_commit(d->store, &err) < 0)
            store_rollback(d->store);
        g->refs++;
        spec_group_unref(g);   /* freed here when nothing changed */
        size_t counts[4] = {0};
        for (size_t k = 0; k < n_ch; k++)
            counts[ch[k].action[0] == 'c' ? 0 : ch[k].action[0] == 'r' ? 1 : ch[k].action[0] == 'd' ? 2 : 3]++;
        daemon_event(d, NULL, "applied", "%zu created, %zu replaced, %zu deleted, %zu unchanged", counts[0],
                     counts[1], counts[2], counts[3]);
        if (counts[0] + counts[1])
            daemon_net_sync(d);
    }
done:
    for (size_t k = 0; k < n_ch; k++)
        free(ch[k].json);
    free(ch);
    strmap_free(&in_files);
    plan_free(plan);
    manifest_set_free(set);
    if (refusal) {
        http_respond_json(c, 422, refusal);
        return;
    }

    json_t *j = json_object();
    json_object_set_new(j, "dryRun", json_boolean(dry_run));
    json_object_set_new(j, "changes", out);
    http_respond_json(c, 200, j);
    if (!dry_run) {
        DAEMON_WL_FOREACH(d, w)
            wl_reconcile(w);
    }
}

/* ---- POST /v1/run ---------------------------------------------------------------- */

static void run(struct daemon *d, struct http_conn *c, const struct http_request *req)
{
    json_error_t jerr;
    json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        http_respond_error(c, 400, "run wants a JSON object: %s", jerr.text);
        return;
    }
    /* The request is a Workload document in JSON, as apply would take it;
     * only its name may be left out. */
    json_t *doc = json_object_get(body, "workload");
    bool rm = json_is_true(json_object_get(body, "rm"));
    if (!json_is_object(doc)) {
        json_decref(body);
        http_respond_error(c, 400, "run wants {\"workload\": {...a Workload document...}, \"rm\": bool}");
        return;
    }
    json_t *meta = json_object_get(doc, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(doc, "metadata", meta);
    }
    char name[64];
    const char *given = json_string_value(json_object_get(meta, "name"));
    if (given) {
        snprintf(name, sizeof(name), "%s", given);
    } else {
        do
            snprintf(name, sizeof(name), "run-%" PRIx64 "%03x", now_ms() % 0xfffffff, ++d->run_seq % 0xfff);
        while (strmap_get(&d->wls, name));
        json_object_set_new(meta, "name", json_string(name));
    }
    json_object_set_new(doc, "apiVersion", json_string(DUET_API_VERSION));
    json_object_set_new(doc, "kind", json_string("Workload"));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(body);
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "run", text, strlen(text));
    free(text);
    if (manifest_set_ok(set))
        manifest_set_validate(set);
    if (manifest_set_ok(set) && strmap_get(&d->wls, name))
        diag_add(&set->diags, "run", 0, 0, "a workload named %s exists already; pick another name or delete it",
                 name);
    if (manifest_set_ok(set) && set->workloads[0]->n_depends_on)
        diag_add(&set->diags, "run", 0, 0, "duet run takes no dependsOn; use apply");
    if (manifest_set_ok(set) && set->workloads[0]->n_ports && d->net_open) {
        /* Published ports: free on the host, and not the fleet's already
         * (an ad-hoc workload takes nothing from an applied one). */
        const struct workload_spec *rw = set->workloads[0];
        struct duet_err perr = {0};
        for (size_t k = 0; k < rw->n_ports; k++) {
            const char *owner = fleet_net_port_owner(&d->net, rw->ports[k].host, rw->ports[k].protocol);
            if (owner)
                duet_err_set(&perr, EADDRINUSE, "host port %u is published by workload %s already; pick another",
                             rw->ports[k].host, owner);
        }
        if (perr.msg[0] || fleet_net_ports_check(&d->net, name, rw->ports, rw->n_ports, &perr) < 0)
            diag_add(&set->diags, "run", 0, 0, "%s", perr.msg);
    }
    if (!manifest_set_ok(set)) {
        json_t *j = json_object();
        json_object_set_new(j, "error", json_string("the workload is not valid; nothing was run"));
        json_object_set_new(j, "diagnostics", diags_json(&set->diags));
        manifest_set_free(set);
        http_respond_json(c, 422, j);
        return;
    }
    struct plan *plan = plan_new(set, &d->host);
    const struct placement *pl = &plan->items[0];
    if (!pl->placed) {
        http_respond_error(c, 422, "%s fits nowhere on this host: %s", name, pl->unplaceable);
        plan_free(plan);
        manifest_set_free(set);
        return;
    }
    struct spec_group *g = calloc(1, sizeof(*g));
    if (!g)
        abort();
    g->set = set;
    struct wl *w = wl_new(d, name);
    w->rm = rm;
    wl_assign(w, g, set->workloads[0], specjson_text(set->workloads[0]), pl);
    plan_free(plan);
    wl_save(w);
    if (w->spec->n_ports && d->net_open) {
        struct duet_err perr = {0};
        if (fleet_net_ports_set(&d->net, w->name, w->spec->ports, w->spec->n_ports, &perr) < 0)
            daemon_event(d, w->name, "failed", "publishing its ports: %s", perr.msg);
    }
    daemon_event(d, w->name, "run", "ad-hoc workload as a %s%s", backend_kind_name(w->backend),
                 rm ? ", removed when it ends" : "");
    http_conn_ref(c);
    w->waiter = c;
    wl_reconcile(w);
}

/* ---- logs ------------------------------------------------------------------------ */

/*
 * A log is sent in slices, a tick at a time, never more than LOG_SLICE per
 * tick and only while the client keeps up (what it has not taken stays
 * under LOG_BACKLOG): a log of any size, or a slow reader, never holds the
 * loop.  The previous generation (log.1, see the drivers) comes first.
 * --tail reads back from the end at most LOG_TAIL_SCAN bytes; when the
 * lines asked for do not fit, the answer starts inside a line and says so
 * on its first line.  A follower whose log shrank (a rotation) starts
 * again at the log's start.
 */
#define LOG_SLICE (1u << 20)
#define LOG_BACKLOG (1u << 20)
#define LOG_TAIL_SCAN (UINT64_C(16) << 20)

struct log_follow {
    struct wl *w;
    struct driver_instance *inst;
    struct http_conn *c;
    int fd, prev_fd;               /* the log, and its previous generation (-1 when done or none) */
    bool follow;
    uv_timer_t timer;
};

static void follow_closed(uv_handle_t *h)
{
    struct log_follow *f = h->data;
    close(f->fd);
    if (f->prev_fd >= 0)
        close(f->prev_fd);
    http_conn_unref(f->c);
    wl_unref(f->w);
    free(f);
}

static void follow_end(struct log_follow *f)
{
    http_stream_end(f->c);
    http_conn_on_close(f->c, NULL, NULL);
    uv_close((uv_handle_t *)&f->timer, follow_closed);
}

/* Sends one slice of what the logs hold now.  1: more is there, 0: all
 * sent for now, -1: the client is gone. */
static int pump(struct log_follow *f)
{
    if (http_stream_backlog(f->c) > LOG_BACKLOG)
        return 1;   /* wait for the client */
    char buf[65536];
    size_t sent = 0;
    while (sent < LOG_SLICE) {
        int fd = f->prev_fd >= 0 ? f->prev_fd : f->fd;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0 && fd == f->prev_fd) {
            close(f->prev_fd);
            f->prev_fd = -1;
            continue;
        }
        if (n <= 0) {
            /* At the end: a log that shrank under us was rotated. */
            struct stat st;
            off_t at = lseek(f->fd, 0, SEEK_CUR);
            if (fstat(f->fd, &st) == 0 && at > st.st_size) {
                lseek(f->fd, 0, SEEK_SET);
                continue;
            }
            return 0;
        }
        if (!http_stream_write(f->c, buf, (size_t)n))
            return -1;
        sent += (size_t)n;
    }
    return 1;
}

static void follow_tick(uv_timer_t *t)
{
    struct log_follow *f = t->data;
    if (http_conn_closed(f->c)) {
        follow_end(f);
        return;
    }
    int more = pump(f);
    if (more < 0 || (more == 0 && !f->follow)) {
        follow_end(f);
        return;
    }
    /* The instance this log belongs to is gone (deleted or restarted). */
    if (f->follow && more == 0 && (f->w->inst != f->inst || f->w->deleted)) {
        follow_end(f);
        return;
    }
    /* Never 0 ms: a timer re-armed at the loop's cached time would run
     * again before the loop polls, and the writes it queued would never
     * leave. */
    uv_timer_start(&f->timer, follow_tick, more ? 1 : LOG_FOLLOW_POLL_MS, 0);
}

static void follow_conn_closed(void *opaque, struct http_conn *c)
{
    (void)c;
    struct log_follow *f = opaque;
    uv_timer_stop(&f->timer);
    uv_timer_start(&f->timer, follow_tick, 0, 0);
}

/* Positions fd at the start of its last `want` lines, reading back from the
 * end no more than LOG_TAIL_SCAN bytes; a newline that ends the file ends
 * the last line, it does not start one.  Returns how many bytes of a line
 * were left out (the scan bound cut it), 0 when none. */
static off_t tail_position(int fd, long want, bool *found)
{
    off_t end = lseek(fd, 0, SEEK_END), pos = end, start = want > 0 ? 0 : end;
    off_t floor = end > (off_t)LOG_TAIL_SCAN ? end - (off_t)LOG_TAIL_SCAN : 0;
    long seen = 0;
    char b[4096];
    *found = want <= 0;
    while (pos > floor && want > 0 && seen < want) {
        off_t step = pos - floor > (off_t)sizeof(b) ? (off_t)sizeof(b) : pos - floor;
        pos -= step;
        if (pread(fd, b, (size_t)step, pos) != step)
            break;
        for (off_t k = step; k-- > 0;) {
            if (b[k] == '\n' && pos + k != end - 1 && ++seen == want) {
                start = pos + k + 1;
                *found = true;
                break;
            }
        }
    }
    if (!*found && floor > 0) {
        /* Not enough lines within the bound: start at the bound. */
        start = floor;
    }
    lseek(fd, start, SEEK_SET);
    return !*found && floor > 0 ? floor : 0;
}

static void get_logs(struct daemon *d, struct http_conn *c, const char *name, const char *query)
{
    struct wl *w = find(d, c, name);
    if (!w)
        return;
    if (!w->inst) {
        http_respond_error(c, 409, "%s has no instance on the host now (%s); its logs start when it does", name,
                           wl_state_name(w));
        return;
    }
    struct driver *drv = d->drv[w->inst_backend];
    int fd, prev_fd = -1;
    struct duet_err err = {0};
    if (drv->logs(drv, w->inst, &fd, &prev_fd, &err) < 0) {
        http_respond_error(c, 500, "%s", err.msg);
        return;
    }
    char v[32];
    bool follow = http_query_get(query, "follow", v, sizeof(v)) && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
    off_t cut = 0;
    if (http_query_get(query, "tail", v, sizeof(v))) {
        bool found;
        cut = tail_position(fd, strtol(v, NULL, 10), &found);
        /* The lines asked for are all in the current generation, or as
         * many as it has: the previous one is not read back. */
        if (prev_fd >= 0) {
            close(prev_fd);
            prev_fd = -1;
        }
    }
    struct log_follow *f = calloc(1, sizeof(*f));
    if (!f)
        abort();
    f->w = w;
    wl_ref(w);
    f->inst = w->inst;
    f->c = c;
    http_conn_ref(c);
    f->fd = fd;
    f->prev_fd = prev_fd;
    f->follow = follow;
    uv_timer_init(d->loop, &f->timer);
    f->timer.data = f;
    http_stream_begin(c, 200, "text/plain; charset=utf-8");
    if (cut) {
        char note[160];
        int n = snprintf(note, sizeof(note),
                         "[duet: the lines asked for are longer than %llu MiB: the first %lld bytes were left out]\n",
                         (unsigned long long)(LOG_TAIL_SCAN >> 20), (long long)cut);
        http_stream_write(c, note, (size_t)n);
    }
    http_conn_on_close(c, follow_conn_closed, f);
    uv_timer_start(&f->timer, follow_tick, 0, 0);
}

/* ---- exec ------------------------------------------------------------------------ */

struct exec_req {
    struct wl *w;
    struct http_conn *c;
    char **argv;
    int out, err;
};

/* A command's output buffer, which cannot hold more than EXEC_OUTPUT_MAX
 * and a page: a memfd sized at that (its pages come only when written)
 * and sealed against growing, so a command that prints without end (the
 * container may have replaced the one asked for) gets EPERM past it
 * instead of filling the host's memory.  The command writes through a
 * copy of this fd, so the shared file offset says how much it wrote.  The
 * page beyond the answer's 4 MiB is how a cut is told from output of
 * exactly 4 MiB: the kernel fills a memfd a page at a time and stops a
 * write at the first page that would not fit, so anything more than
 * 4 MiB leaves the offset past it. */
static int exec_buffer(const char *name)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    long page = sysconf(_SC_PAGESIZE);
    if (ftruncate(fd, (off_t)EXEC_OUTPUT_MAX + (page > 0 ? page : 4096)) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static json_t *read_all(int fd, bool *cut)
{
    off_t n = lseek(fd, 0, SEEK_CUR);
    if (n < 0)
        n = 0;
    *cut = (size_t)n > EXEC_OUTPUT_MAX;
    size_t len = (size_t)n > EXEC_OUTPUT_MAX ? EXEC_OUTPUT_MAX : (size_t)n;
    char *b = malloc(len + 1);
    if (!b)
        abort();
    ssize_t got = pread(fd, b, len, 0);
    json_t *j = json_text(b, got > 0 ? (size_t)got : 0);
    free(b);
    return j;
}

static void exec_done(void *opaque, int status)
{
    struct exec_req *x = opaque;
    json_t *j = json_object();
    json_object_set_new(j, "exit_code", json_integer(status));
    bool cut_out, cut_err;
    json_object_set_new(j, "stdout", read_all(x->out, &cut_out));
    json_object_set_new(j, "stderr", read_all(x->err, &cut_err));
    if (cut_out || cut_err) {
        json_t *cut = json_array();
        if (cut_out)
            json_array_append_new(cut, json_string("stdout"));
        if (cut_err)
            json_array_append_new(cut, json_string("stderr"));
        json_object_set_new(j, "truncated", cut);
    }
    if (status < 0)
        json_object_set_new(j, "error", json_string("the command could not be run in the container"));
    http_respond_json(x->c, 200, j);
    http_conn_unref(x->c);
    wl_unref(x->w);
    close(x->out);
    close(x->err);
    for (char **a = x->argv; *a; a++)
        free(*a);
    free(x->argv);
    free(x);
}

static void exec_cmd(struct daemon *d, struct http_conn *c, const char *name, const struct http_request *req)
{
    struct wl *w = find(d, c, name);
    if (!w)
        return;
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *cmd = json_object_get(body, "command");
    if (!json_is_array(cmd) || json_array_size(cmd) == 0 || json_array_size(cmd) > 4096) {
        json_decref(body);
        http_respond_error(c, 400, "exec wants {\"command\": [\"program\", \"arg\", ...]}");
        return;
    }
    if (!w->inst || !w->inst_running) {
        json_decref(body);
        http_respond_error(c, 409, "%s is not running (%s)", name, wl_state_name(w));
        return;
    }
    if (w->inst_backend != BACKEND_CONTAINER) {
        json_decref(body);
        http_respond_error(c, 409, "%s is a VM: exec runs commands in containers only; use its console (duet logs)",
                           name);
        return;
    }
    struct exec_req *x = calloc(1, sizeof(*x));
    if (!x)
        abort();
    x->argv = calloc(json_array_size(cmd) + 1, sizeof(char *));
    size_t i;
    json_t *a;
    json_array_foreach(cmd, i, a) {
        const char *s = json_string_value(a);
        x->argv[i] = strdup(s ? s : "");
    }
    json_decref(body);
    x->out = exec_buffer("duet-exec-out");
    x->err = exec_buffer("duet-exec-err");
    x->w = w;
    wl_ref(w);
    x->c = c;
    http_conn_ref(c);
    struct duet_err err = {0};
    struct driver *drv = d->drv[w->inst_backend];
    if (x->out < 0 || x->err < 0 ||
        drv->exec(drv, w->inst, (const char *const *)x->argv, x->out, x->err, 0, exec_done, x, &err) < 0) {
        http_respond_error(c, 409, "%s", err.msg[0] ? err.msg : "cannot make output buffers for exec");
        x->c = c;
        exec_done(x, -1);
    }
}

/* ---- events ------------------------------------------------------------------------ */

struct event_sub {
    struct event_sub *next;
    struct http_conn *c;
    char workload[64];
    struct daemon *d;
};

static void sub_remove(struct daemon *d, struct event_sub *s)
{
    for (struct event_sub **p = &d->subs; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    http_conn_on_close(s->c, NULL, NULL);
    http_conn_unref(s->c);
    free(s);
}

static void sub_closed(void *opaque, struct http_conn *c)
{
    (void)c;
    struct event_sub *s = opaque;
    sub_remove(s->d, s);
}

static char *event_line(int64_t id, int64_t ts, const char *workload, const char *type, const char *message)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(id));
    json_object_set_new(j, "time", json_integer(ts));
    json_object_set_new(j, "workload", workload ? json_string(workload) : json_null());
    json_object_set_new(j, "type", json_string(type));
    json_object_set_new(j, "message", json_text(message, strlen(message)));
    char *t = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    size_t n = strlen(t);
    char *o = realloc(t, n + 2);
    if (!o)
        abort();
    o[n] = '\n';
    o[n + 1] = '\0';
    return o;
}

void api_event_publish(struct daemon *d, int64_t id, int64_t ts, const char *workload, const char *type,
                       const char *message)
{
    if (!d->subs)
        return;
    char *line = event_line(id, ts, workload, type, message);
    for (struct event_sub *s = d->subs, *next; s; s = next) {
        next = s->next;
        if (s->workload[0] && (!workload || strcmp(s->workload, workload) != 0))
            continue;
        if (!http_stream_write(s->c, line, strlen(line)))
            sub_remove(d, s);
    }
    free(line);
}

void api_close_subscribers(struct daemon *d)
{
    while (d->subs) {
        http_stream_end(d->subs->c);
        sub_remove(d, d->subs);
    }
}

struct events_out {
    struct http_conn *c;
    bool ok;
};

static void stream_event(void *opaque, const struct store_event *e)
{
    struct events_out *o = opaque;
    if (!o->ok)
        return;
    char *line = event_line(e->id, e->ts, e->workload, e->type, e->message);
    o->ok = http_stream_write(o->c, line, strlen(line));
    free(line);
}

static void get_events(struct daemon *d, struct http_conn *c, const char *query)
{
    char v[64];
    int64_t since = 0;
    if (http_query_get(query, "since", v, sizeof(v)))
        since = strtoll(v, NULL, 10);
    char wl[64] = "";
    if (http_query_get(query, "workload", v, sizeof(v)))
        snprintf(wl, sizeof(wl), "%s", v);
    bool follow = http_query_get(query, "follow", v, sizeof(v)) && strcmp(v, "0") != 0 && strcmp(v, "false") != 0;
    http_stream_begin(c, 200, "application/x-ndjson");
    struct events_out o = {c, true};
    struct duet_err err = {0};
    store_events(d->store, since, wl[0] ? wl : NULL, wl[0] ? EVENTS_DEFAULT_LIMIT : INT32_MAX, stream_event, &o, &err);
    if (!follow || !o.ok) {
        http_stream_end(c);
        return;
    }
    struct event_sub *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    s->c = c;
    s->d = d;
    snprintf(s->workload, sizeof(s->workload), "%s", wl);
    http_conn_ref(c);
    http_conn_on_close(c, sub_closed, s);
    s->next = d->subs;
    d->subs = s;
}

/* ---- info ------------------------------------------------------------------------- */

static void get_info(struct daemon *d, struct http_conn *c)
{
    json_t *j = json_object();
    json_object_set_new(j, "version", json_string(DUET_VERSION));
    json_object_set_new(j, "pid", json_integer(getpid()));
    json_object_set_new(j, "started_at", json_integer((json_int_t)d->started_at));
    json_object_set_new(j, "state_dir", json_string(d->state_dir));
    json_object_set_new(j, "workloads", json_integer((json_int_t)d->wls.len));
    json_t *b = json_object();
    for (int k = 0; k < BACKEND_COUNT; k++) {
        const struct driver_caps *cp = &d->host.backend[k];
        json_t *x = json_object();
        json_object_set_new(x, "available", json_boolean(cp->available && d->drv_open[k]));
        json_object_set_new(x, "description", json_string(cp->available ? cp->description : cp->unavailable_reason));
        json_object_set_new(x, "start_ms", json_integer((json_int_t)cp->start_ms));
        json_object_set_new(x, "measured", json_boolean(cp->measured));
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

/* ---- routing ---------------------------------------------------------------------- */

void api_handle(void *opaque, struct http_conn *c, const struct http_request *req)
{
    struct daemon *d = opaque;
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
        return get_info(d, c);
    if (strcmp(p, "workloads") == 0 && get)
        return get_workloads(d, c);
    if (strcmp(p, "apply") == 0 && post)
        return apply(d, c, req);
    if (strcmp(p, "run") == 0 && post)
        return run(d, c, req);
    if (strcmp(p, "events") == 0 && get)
        return get_events(d, c, req->query);
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
            return get_workload(d, c, nm);
        if (!slash && del)
            return delete_workload(d, c, nm);
        if (slash && strcmp(slash, "/logs") == 0 && get)
            return get_logs(d, c, nm, req->query);
        if (slash && strcmp(slash, "/exec") == 0 && post)
            return exec_cmd(d, c, nm, req);
    }
    http_respond_error(c, 404, "no route for %s /v1/%.200s (see docs/api.md)", req->method, p);
}
