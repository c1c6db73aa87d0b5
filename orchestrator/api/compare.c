/*
 * compare.c - POST /v1/compare (docs/api.md): a compare job's progress and
 * result as a stream of JSON lines.
 *
 * The body is read on the thread pool, as apply's is (it may hold files).
 * The answer is chunked application/x-ndjson: {"progress": "..."} lines
 * while the job runs, then one {"result": {...}} or {"error": "..."}.  A
 * client that goes away abandons the job: its instances are removed
 * (kept, with keep).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"
#include "orchestrator/api/internal.h"
#include "orchestrator/compare.h"
#include "orchestrator/compare_probe.h"

struct compare_req {
    uv_work_t work;
    struct api *a;
    struct http_conn *c;
    const char *body;
    size_t body_len;
    char error[400];
    char name[64];
    struct compare_opts o;
    struct manifest_set *set;      /* NULL: the applied workload */
    struct compare_job *job;
};

static void req_free(struct compare_req *r)
{
    if (r->o.exec)
        for (char **a = r->o.exec; *a; a++)
            free(*a);
    free(r->o.exec);
    manifest_set_free(r->set);
    free(r);
}

static void line(struct http_conn *c, const char *key, json_t *v)
{
    json_t *j = json_object();
    json_object_set_new(j, key, v);
    char *t = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!t)
        abort();
    http_stream_write(c, t, strlen(t));
    http_stream_write(c, "\n", 1);
    free(t);
}

static void on_progress(void *opaque, const char *text)
{
    struct compare_req *r = opaque;
    line(r->c, "progress", json_string(text));
}

static void on_done(void *opaque, json_t *result, const struct duet_err *err)
{
    struct compare_req *r = opaque;
    if (result)
        line(r->c, "result", result);
    else
        line(r->c, "error", json_string(err->msg));
    http_conn_on_close(r->c, NULL, NULL);
    http_stream_end(r->c);
    http_conn_unref(r->c);
    req_free(r);
}

static void on_client_gone(void *opaque, struct http_conn *c)
{
    (void)c;
    struct compare_req *r = opaque;
    compare_abandon(r->job);
    http_conn_unref(r->c);
    req_free(r);
}

/* A duration field: a string ("10s") or absent. */
static bool duration_field(json_t *o, const char *key, uint64_t *ms, char *error, size_t len)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return true;
    const char *why = NULL;
    if (!json_is_string(v) || !units_duration_parse(json_string_value(v), ms, &why)) {
        snprintf(error, len, "%s is not a duration (like \"10s\")%s%s", key, why ? ": " : "", why ? why : "");
        return false;
    }
    return true;
}

static bool port_field(json_t *o, uint16_t *port, char *error, size_t len)
{
    json_t *v = json_object_get(o, "port");
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
        snprintf(error, len, "port is a number from 1 to 65535");
        return false;
    }
    *port = (uint16_t)json_integer_value(v);
    return true;
}

static void parse_work(uv_work_t *work)
{
    struct compare_req *r = work->data;
    json_error_t jerr;
    json_t *body = json_loadb(r->body, r->body_len, 0, &jerr);
    char *e = r->error;
    size_t el = sizeof(r->error);
    json_t *name = json_object_get(body, "workload");
    if (!body || !json_is_object(body)) {
        snprintf(e, el, "compare wants a JSON object: %s", body ? "not an object" : jerr.text);
        goto out;
    }
    if (!json_is_string(name) || !manifest_name_valid(json_string_value(name), json_string_length(name))) {
        snprintf(e, el, "workload: the name of the workload to compare");
        goto out;
    }
    snprintf(r->name, sizeof(r->name), "%s", json_string_value(name));
    r->o.runs = COMPARE_DEFAULT_RUNS;
    json_t *runs = json_object_get(body, "runs");
    if (runs && (!json_is_integer(runs) || json_integer_value(runs) < 1 ||
                 json_integer_value(runs) > COMPARE_MAX_RUNS)) {
        snprintf(e, el, "runs is a number from 1 to %d", COMPARE_MAX_RUNS);
        goto out;
    }
    if (runs)
        r->o.runs = (unsigned)json_integer_value(runs);
    r->o.idle_ms = COMPARE_DEFAULT_IDLE_MS;
    if (!duration_field(body, "idle", &r->o.idle_ms, e, el))
        goto out;
    if (r->o.idle_ms < 1000 || r->o.idle_ms > 600000) {
        snprintf(e, el, "idle is from 1s to 10m");
        goto out;
    }
    r->o.keep = json_is_true(json_object_get(body, "keep"));
    json_t *probe = json_object_get(body, "probe");
    json_t *http = json_object_get(probe, "http"), *tcp = json_object_get(probe, "tcp"),
           *exec = json_object_get(probe, "exec");
    if (probe && (!json_is_object(probe) || json_object_size(probe) != 1 || (!http && !tcp && !exec))) {
        snprintf(e, el, "probe is one of {\"http\": {...}}, {\"tcp\": {...}} or {\"exec\": [...]}");
        goto out;
    }
    if (http) {
        r->o.probe = COMPARE_PROBE_HTTP;
        json_t *path = json_object_get(http, "path");
        const char *p = json_string_value(path);
        if (!json_is_object(http) || !p || p[0] != '/' || strlen(p) >= sizeof(r->o.http_path) ||
            strpbrk(p, " \r\n\t") || strlen(p) != json_string_length(path)) {
            snprintf(e, el, "probe.http.path is a URL path: it begins with / and holds no space or line break");
            goto out;
        }
        snprintf(r->o.http_path, sizeof(r->o.http_path), "%s", p);
        json_t *cc = json_object_get(http, "concurrency");
        r->o.concurrency = COMPARE_DEFAULT_CONCURRENCY;
        if (cc && (!json_is_integer(cc) || json_integer_value(cc) < 1 ||
                   json_integer_value(cc) > PROBE_MAX_CONCURRENCY)) {
            snprintf(e, el, "probe.http.concurrency is a number from 1 to %d", PROBE_MAX_CONCURRENCY);
            goto out;
        }
        if (cc)
            r->o.concurrency = (unsigned)json_integer_value(cc);
        r->o.duration_ms = COMPARE_DEFAULT_DURATION_MS;
        if (!duration_field(http, "duration", &r->o.duration_ms, e, el) || !port_field(http, &r->o.port, e, el))
            goto out;
        if (r->o.duration_ms < 100 || r->o.duration_ms > 600000) {
            snprintf(e, el, "probe.http.duration is from 100ms to 10m");
            goto out;
        }
    } else if (tcp) {
        r->o.probe = COMPARE_PROBE_TCP;
        if (!json_is_object(tcp) || !json_object_get(tcp, "port")) {
            snprintf(e, el, "probe.tcp needs a port");
            goto out;
        }
        if (!port_field(tcp, &r->o.port, e, el))
            goto out;
    } else if (exec) {
        r->o.probe = COMPARE_PROBE_EXEC;
        size_t n = json_array_size(exec);
        if (!json_is_array(exec) || n == 0 || n > 256) {
            snprintf(e, el, "probe.exec is a command: a list of 1 to 256 strings");
            goto out;
        }
        r->o.exec = calloc(n + 1, sizeof(*r->o.exec));
        if (!r->o.exec)
            abort();
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(exec, i);
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
                json_string_length(v) > 65536) {
                snprintf(e, el, "probe.exec[%zu] is not a string without NUL bytes", i);
                goto out;
            }
            if (!(r->o.exec[i] = strdup(json_string_value(v))))
                abort();
        }
    }
    json_t *files = json_object_get(body, "files");
    if (files) {
        if (!json_is_array(files)) {
            snprintf(e, el, "files is [{\"name\": ..., \"content\": ...}]");
            goto out;
        }
        r->set = manifest_set_new();
        size_t i;
        json_t *f;
        json_array_foreach(files, i, f) {
            const char *fname = json_string_value(json_object_get(f, "name"));
            json_t *content = json_object_get(f, "content");
            if (!fname || !json_is_string(content)) {
                snprintf(e, el, "files[%zu] needs a name and a content string", i);
                goto out;
            }
            manifest_set_load_buffer(r->set, fname, json_string_value(content), json_string_length(content));
        }
        if (manifest_set_ok(r->set))
            manifest_set_validate(r->set);
    }
out:
    json_decref(body);
}

static void parsed(uv_work_t *work, int status)
{
    struct compare_req *r = work->data;
    struct http_conn *c = r->c;
    if (status < 0 && !r->error[0])
        snprintf(r->error, sizeof(r->error), "the request could not be read: %s", uv_strerror(status));
    if (http_conn_closed(c) || r->a->d->shutting_down) {
        http_conn_unref(c);
        req_free(r);
        return;
    }
    if (r->error[0]) {
        http_respond_error(c, 400, "%s", r->error);
        http_conn_unref(c);
        req_free(r);
        return;
    }
    if (r->set && !manifest_set_ok(r->set)) {
        json_t *j = json_object(), *l = json_array();
        diag_sort(&r->set->diags);
        for (size_t i = 0; i < r->set->diags.n; i++) {
            char *s = NULL;
            const struct diag *dg = &r->set->diags.v[i];
            if (asprintf(&s, "%s:%u:%u: error: %s", dg->file, dg->line, dg->col, dg->msg) < 0)
                abort();
            json_array_append_new(l, api_json_text(s, strlen(s)));
            free(s);
        }
        json_object_set_new(j, "error", json_string("the files are not valid; nothing was compared"));
        json_object_set_new(j, "diagnostics", l);
        http_respond_json(c, 422, j);
        http_conn_unref(c);
        req_free(r);
        return;
    }
    struct duet_err err = {0};
    struct manifest_set *set = r->set;
    r->set = NULL;   /* daemon_compare takes it */
    /* The job's first step is on the loop's next turn: its answer can
     * still be a plain refusal here. */
    r->job = daemon_compare(r->a->d, r->name, set, &r->o, on_progress, on_done, r, &err);
    if (!r->job) {
        http_respond_error(c, api_status_of(err.code), "%s", err.msg);
        http_conn_unref(c);
        req_free(r);
        return;
    }
    http_stream_begin(c, 200, "application/x-ndjson");
    http_conn_on_close(c, on_client_gone, r);
}

void api_compare(struct api *a, struct http_conn *c, const struct http_request *req)
{
    struct compare_req *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->a = a;
    r->c = c;
    r->body = req->body;
    r->body_len = req->body_len;
    r->work.data = r;
    http_conn_ref(c);
    http_conn_keep_body(c);
    int rc = uv_queue_work(a->d->loop, &r->work, parse_work, parsed);
    if (rc < 0) {
        http_conn_unref(c);
        free(r);
        http_respond_error(c, 503, "duetd cannot take this compare now: %s", uv_strerror(rc));
    }
}

/* GET /v1/compare: the last compares' results, oldest first. */
void api_get_compares(struct api *a, struct http_conn *c)
{
    json_t *j = json_object();
    json_object_set_new(j, "results", daemon_compare_results(a->d));
    http_respond_json(c, 200, j);
}
