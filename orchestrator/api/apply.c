/*
 * apply.c - POST /v1/apply and POST /v1/run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orchestrator/api/internal.h"

/* How much of a `run` workload's output its answer carries. */
#define RUN_OUTPUT_MAX (1u << 20)

/* A refusal as an answer: 422 for what the files can fix, 503 for what
 * the daemon cannot do now. */
static void respond_refusal(struct http_conn *c, const struct apply_result *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "error", json_string(r->error));
    if (r->n_lines) {
        json_t *l = json_array();
        for (size_t i = 0; i < r->n_lines; i++)
            json_array_append_new(l, api_json_text(r->lines[i], strlen(r->lines[i])));
        json_object_set_new(j, "diagnostics", l);
    }
    if (r->n_unplaceable) {
        json_t *u = json_array();
        for (size_t i = 0; i < r->n_unplaceable; i++) {
            json_t *x = json_object();
            json_object_set_new(x, "name", json_string(r->unplaceable[i].name));
            json_object_set_new(x, "reason", json_string(r->unplaceable[i].reason));
            json_array_append_new(u, x);
        }
        json_object_set_new(j, "unplaceable", u);
    }
    http_respond_json(c,
                      r->status == APPLY_UNAVAILABLE                                  ? 503
                      : r->status == APPLY_CONFLICT || r->status == APPLY_DISK_RESET ? 409
                                                                                       : 422,
                      j);
}

/* apply, in two halves.  The files are parsed on the thread pool: a large
 * or hostile body (up to HTTP_MAX_BODY of YAML) takes the pool's time, not
 * the loop's, and at most as many are parsed at once as the pool has
 * threads.  The rest (checks against the fleet, the plan, the store) runs
 * on the loop in apply_set. */
struct apply_parse {
    uv_work_t work;
    struct api *a;
    struct http_conn *c;
    const char *body;              /* the connection's, kept for us */
    size_t body_len;
    char error[400];               /* a 400 to answer, or "" */
    bool prune, dry_run;
    char **recreate;               /* NULL-terminated */
    size_t n_recreate;
    struct manifest_set *set;
};

static void apply_parse_free(struct apply_parse *ap)
{
    for (size_t i = 0; i < ap->n_recreate; i++)
        free(ap->recreate[i]);
    free(ap->recreate);
    free(ap);
}

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
    json_t *rec = json_object_get(body, "recreate");
    if (rec && (!json_is_array(rec) || json_array_size(rec) > 4096)) {
        json_decref(body);
        snprintf(ap->error, sizeof(ap->error), "recreate is a list of workload names");
        return;
    }
    ap->recreate = calloc(json_array_size(rec) + 1, sizeof(*ap->recreate));
    if (!ap->recreate)
        abort();
    size_t ri;
    json_t *rv;
    json_array_foreach(rec, ri, rv) {
        const char *name = json_string_value(rv);
        if (!name || !manifest_name_valid(name, json_string_length(rv))) {
            json_decref(body);
            snprintf(ap->error, sizeof(ap->error), "recreate[%zu] is not a workload name", ri);
            return;
        }
        ap->recreate[ap->n_recreate++] = strdup(name);
    }
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

static void apply_parsed(uv_work_t *work, int status)
{
    struct apply_parse *ap = work->data;
    if (status < 0 && !ap->error[0])
        snprintf(ap->error, sizeof(ap->error), "the request could not be read: %s", uv_strerror(status));
    if (http_conn_closed(ap->c) || ap->a->d->shutting_down) {
        manifest_set_free(ap->set);
    } else if (ap->error[0]) {
        manifest_set_free(ap->set);
        http_respond_error(ap->c, 400, "%s", ap->error);
    } else {
        struct apply_result r;
        struct apply_opts o = {
            .prune = ap->prune, .dry_run = ap->dry_run, .recreate = ap->recreate, .n_recreate = ap->n_recreate};
        daemon_apply(ap->a->d, ap->set, &o, &r);
        if (r.status != APPLY_OK) {
            respond_refusal(ap->c, &r);
        } else {
            json_t *out = json_array();
            for (size_t k = 0; k < r.n_changes; k++) {
                json_t *x = json_object();
                json_object_set_new(x, "name", json_string(r.changes[k].name));
                json_object_set_new(x, "action", json_string(apply_action_name(r.changes[k].action)));
                json_t *pj = r.changes[k].placement_json ? json_loads(r.changes[k].placement_json, 0, NULL) : NULL;
                if (pj)
                    json_object_update(x, pj);
                json_decref(pj);
                json_array_append_new(out, x);
            }
            json_t *j = json_object();
            json_object_set_new(j, "dryRun", json_boolean(ap->dry_run));
            json_object_set_new(j, "changes", out);
            http_respond_json(ap->c, 200, j);
        }
        apply_result_free(&r);
    }
    http_conn_unref(ap->c);
    apply_parse_free(ap);
}

void api_apply(struct api *a, struct http_conn *c, const struct http_request *req)
{
    struct apply_parse *ap = calloc(1, sizeof(*ap));
    if (!ap)
        abort();
    ap->a = a;
    ap->c = c;
    ap->body = req->body;
    ap->body_len = req->body_len;
    ap->work.data = ap;
    http_conn_ref(c);
    http_conn_keep_body(c);
    int rc = uv_queue_work(a->d->loop, &ap->work, apply_parse_work, apply_parsed);
    if (rc < 0) {
        http_conn_unref(c);
        free(ap);
        http_respond_error(c, 503, "duetd cannot take this apply now: %s", uv_strerror(rc));
    }
}

/* ---- run ---------------------------------------------------------------------------- */

/* An answer held until a --rm workload is gone. */
struct run_answer {
    struct http_conn *c;
    json_t *j;
};

/* A --rm workload was forgotten (or the daemon stops first). */
static void run_gone(void *opaque, struct wl *w, bool cancelled)
{
    (void)w;
    struct run_answer *ra = opaque;
    if (!cancelled)
        http_respond_json(ra->c, 200, ra->j);
    else
        json_decref(ra->j);
    http_conn_unref(ra->c);
    free(ra);
}

/* The workload ended: the answer is its state, exit and output.  With
 * --rm it is sent once the workload is gone, as docker run --rm returns
 * once the container is removed: what it used (its image) is free then. */
static void run_ended(void *opaque, struct wl *w, bool cancelled)
{
    struct http_conn *c = opaque;
    if (cancelled) {
        http_conn_unref(c);
        return;
    }
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(w->name));
    json_object_set_new(j, "backend", json_string(backend_kind_name(w->backend)));
    json_object_set_new(j, "state", json_string(wl_state_name(w)));
    json_object_set_new(j, "exit_code", json_integer(w->last_exit));
    json_object_set_new(j, "signal", json_integer(w->last_signal));
    if (w->message)
        json_object_set_new(j, "error", json_string(w->message));
    /* Its output, read now: with --rm the instance goes right after. */
    struct driver *drv = daemon_driver(w->d, w->inst_backend);
    int fd = -1;
    struct duet_err err = {0};
    if (w->inst && drv && drv->logs(drv, w->inst, &fd, NULL, &err) == 0) {
        char *buf = malloc(RUN_OUTPUT_MAX);
        if (!buf)
            abort();
        ssize_t n = pread(fd, buf, RUN_OUTPUT_MAX, 0);
        close(fd);
        json_t *out = json_stringn(buf, n > 0 ? (size_t)n : 0);
        json_object_set_new(j, "output", out ? out : json_string("(output is not UTF-8 text; see duet logs)"));
        free(buf);
    }
    if (w->rm && w->deleted) {
        struct run_answer *ra = calloc(1, sizeof(*ra));
        if (!ra)
            abort();
        ra->c = c;
        ra->j = j;
        w->on_end = run_gone;   /* told again by forget(), or cancelled at shutdown */
        w->on_end_opaque = ra;
        return;
    }
    http_respond_json(c, 200, j);
    http_conn_unref(c);
}

/* duet run -i/-t: the end as the status frame gives it, held with --rm
 * until the workload is gone as run_ended holds its answer. */
struct run_io_end {
    struct xio *x;
    int status;
    char fail[DUETD_MESSAGE_MAX + 80];
};

static void run_io_gone(void *opaque, struct wl *w, bool cancelled)
{
    (void)w;
    (void)cancelled;
    struct run_io_end *e = opaque;
    api_xio_end(e->x, e->status, e->fail[0] ? e->fail : NULL);
    free(e);
}

static void run_io_ended(void *opaque, struct wl *w, bool cancelled)
{
    struct run_io_end *e = calloc(1, sizeof(*e));
    if (!e)
        abort();
    e->x = opaque;
    if (cancelled) {
        e->status = 125;
        snprintf(e->fail, sizeof(e->fail), "%s: duetd stopped before it ended; it runs on (duet logs %s)",
                 w->name, w->name);
        run_io_gone(e, w, true);
        return;
    }
    /* As the CLI reads a plain run's answer: 128+N for signal N, 125 when
     * it could not start (the message says why). */
    e->status = w->last_signal ? 128 + (int)w->last_signal : (int)w->last_exit;
    if (!w->last_signal && w->message && (w->last_exit <= 0 || w->last_exit > 255)) {
        e->status = 125;
        snprintf(e->fail, sizeof(e->fail), "%s: %s", w->name, w->message);
    } else if (e->status < 0 || e->status > 255) {
        e->status = 125;
    }
    if (w->rm && w->deleted) {
        w->on_end = run_io_gone;   /* told again by forget(), or cancelled at shutdown */
        w->on_end_opaque = e;
        return;
    }
    run_io_gone(e, w, false);
}

/* run with "stdin" or "tty": the workload's command attached to this
 * connection (exec_io.c), which is upgraded once it is accepted. */
static void run_interactive(struct api *a, struct http_conn *c, struct manifest_set *set, bool rm, bool tty,
                            unsigned rows, unsigned cols)
{
    struct duet_err err = {0};
    struct xio *x = api_xio_new(a, c, tty, rows, cols, &err);
    if (!x) {
        manifest_set_free(set);
        http_respond_error(c, 500, "%s", err.msg);
        return;
    }
    struct apply_result r;
    daemon_run(a->d, set, rm, api_xio_ends(x), run_io_ended, x, &r);
    if (r.status != APPLY_OK) {
        api_xio_cancel(x);
        respond_refusal(c, &r);
    } else {
        api_xio_begin(x);
    }
    apply_result_free(&r);
}

void api_run(struct api *a, struct http_conn *c, const struct http_request *req)
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
    bool in = json_is_true(json_object_get(body, "stdin")), tty = json_is_true(json_object_get(body, "tty"));
    json_int_t rows = json_integer_value(json_object_get(body, "rows")),
               cols = json_integer_value(json_object_get(body, "cols"));
    if (rows < 0 || rows > 65535 || cols < 0 || cols > 65535) {
        json_decref(body);
        http_respond_error(c, 400, "rows and cols are a terminal's size: 0 to 65535 each");
        return;
    }
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
    if (!json_string_value(json_object_get(meta, "name"))) {
        char name[64];
        daemon_run_name(a->d, name);
        json_object_set_new(meta, "name", json_string(name));
    }
    json_object_set_new(doc, "apiVersion", json_string(DUET_API_VERSION));
    json_object_set_new(doc, "kind", json_string("Workload"));
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(body);
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "run", text, strlen(text));
    free(text);
    if (in || tty) {
        run_interactive(a, c, set, rm, tty, (unsigned)rows, (unsigned)cols);
        return;
    }
    struct apply_result r;
    http_conn_ref(c);
    daemon_run(a->d, set, rm, NULL, run_ended, c, &r);
    if (r.status != APPLY_OK) {
        http_conn_unref(c);
        respond_refusal(c, &r);
    }
    apply_result_free(&r);
}
