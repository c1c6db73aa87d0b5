/*
 * images.c - the image store over the API:
 *
 *   GET    /v1/images                 every image, newest first
 *   GET    /v1/images/inspect?ref=R   one image, its config whole
 *   POST   /v1/images/pull {"ref"}    brings it into the store (on the pool);
 *                                     ?progress=1: JSON lines as it goes
 *   DELETE /v1/images?ref=R           removes it, unless a workload uses it
 *   POST   /v1/images/prune           removes every image no workload uses
 *
 * R is a reference (images/ref.h) or an image id (or 12+ hex digits of
 * one), URL-encoded in the query.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "images/ref.h"
#include "images/store.h"
#include "orchestrator/api/internal.h"
#include "orchestrator/image.h"
#include "orchestrator/workload.h"

static json_t *list_json(char **l, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(l[i]));
    return a;
}

static json_t *image_json(const struct image *img, bool whole)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(img->id));
    json_object_set_new(j, "refs", list_json(img->refs, img->n_refs));
    json_object_set_new(j, "size", json_integer((json_int_t)img->size));
    json_object_set_new(j, "created", json_integer((json_int_t)img->created * 1000));
    json_t *layers = json_array();
    for (size_t i = 0; i < img->n_layers; i++)
        json_array_append_new(layers, json_string(img->layers[i]));
    json_object_set_new(j, "layers", layers);
    if (!whole)
        return j;
    const struct image_config *c = &img->config;
    json_t *cfg = json_object();
    if (c->entrypoint)
        json_object_set_new(cfg, "entrypoint", list_json(c->entrypoint, c->n_entrypoint));
    if (c->cmd)
        json_object_set_new(cfg, "cmd", list_json(c->cmd, c->n_cmd));
    if (c->env)
        json_object_set_new(cfg, "env", list_json(c->env, c->n_env));
    if (c->exposed_ports)
        json_object_set_new(cfg, "exposedPorts", list_json(c->exposed_ports, c->n_exposed_ports));
    if (c->user)
        json_object_set_new(cfg, "user", json_string(c->user));
    if (c->working_dir)
        json_object_set_new(cfg, "workingDir", json_string(c->working_dir));
    if (c->stop_signal)
        json_object_set_new(cfg, "stopSignal", json_string(c->stop_signal));
    json_object_set_new(cfg, "os", json_string(c->os ? c->os : ""));
    json_object_set_new(cfg, "architecture", json_string(c->architecture ? c->architecture : ""));
    json_object_set_new(j, "config", cfg);
    json_object_set_new(j, "configDigest", json_string(img->config_digest));
    return j;
}

static bool has_ref(const struct image *img, const char *ref)
{
    for (size_t i = 0; ref && i < img->n_refs; i++)
        if (strcmp(img->refs[i], ref) == 0)
            return true;
    return false;
}

/* The workloads whose spec names img or whose instance runs from it,
 * into buf.  Specs hold references in canonical form and a reference
 * names one image of the store (the last one it came by), so img's own
 * list of references answers for specs.  An instance is judged by the
 * root it was made from, not by its reference: a tag pulled again moves
 * to the new image while the instance still runs on the old one. */
static size_t users_of(struct daemon *d, const struct image *img, char *buf, size_t len)
{
    size_t n = 0, o = 0;
    char root[PATH_MAX];
    image_store_root_path(d->images, img, root, sizeof(root));
    buf[0] = '\0';
    DAEMON_WL_FOREACH(d, w) {
        bool uses = (w->spec && has_ref(img, w->spec->image.oci)) ||
                    (w->inst_spec && w->inst_spec->image.oci && w->inst_spec->image.rootfs &&
                     strcmp(w->inst_spec->image.rootfs, root) == 0);
        if (uses) {
            n++;
            if (o + strlen(w->name) + 3 < len)
                o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "", w->name);
        }
    }
    return n;
}

/* The image a ?ref= names, or NULL after an answer. */
static struct image *find(struct api *a, struct http_conn *c, const char *query)
{
    char ref[IMAGE_REF_MAX + 1];
    if (!http_query_get(query, "ref", ref, sizeof(ref)) || !ref[0]) {
        http_respond_error(c, 400, "name the image: ?ref=REFERENCE or ?ref=ID");
        return NULL;
    }
    struct image *img = NULL;
    struct duet_err err = {0};
    int g = image_store_get(a->d->images, ref, &img, &err);
    if (g < 0)
        http_respond_error(c, 400, "%s", err.msg);
    else if (g == 1)
        http_respond_error(c, 404, "no image %s in the store (duet image ls lists them; duet image pull brings one)",
                           ref);
    return img;
}

/* Every image, or false after a 500. */
static bool list_all(struct api *a, struct http_conn *c, struct image ***l, size_t *n)
{
    struct duet_err err = {0};
    if (image_store_list(a->d->images, l, n, &err) < 0) {
        http_respond_error(c, 500, "%s", err.msg);
        return false;
    }
    return true;
}

static void images_list(struct api *a, struct http_conn *c)
{
    struct image **l = NULL;
    size_t n = 0;
    if (!list_all(a, c, &l, &n))
        return;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *j = image_json(l[i], false);
        char users[256];
        json_object_set_new(j, "workloads", json_integer((json_int_t)users_of(a->d, l[i], users, sizeof(users))));
        json_array_append_new(arr, j);
    }
    image_list_free(l, n);
    json_t *j = json_object();
    json_object_set_new(j, "images", arr);
    http_respond_json(c, 200, j);
}

static void images_inspect(struct api *a, struct http_conn *c, const char *query)
{
    struct image *img = find(a, c, query);
    if (!img)
        return;
    json_t *j = image_json(img, true);
    char users[1024];
    size_t n = users_of(a->d, img, users, sizeof(users));
    json_object_set_new(j, "usedBy", json_string(n ? users : ""));
    image_free(img);
    http_respond_json(c, 200, j);
}

static void images_remove(struct api *a, struct http_conn *c, const char *query)
{
    struct image *img = find(a, c, query);
    if (!img)
        return;
    char users[1024];
    if (users_of(a->d, img, users, sizeof(users))) {
        http_respond_error(c, 409, "image %s is used by %s: delete those workloads (or apply them with another "
                           "image) first",
                           img->n_refs ? img->refs[0] : img->id, users);
        image_free(img);
        return;
    }
    struct duet_err err = {0};
    if (image_store_remove(a->d->images, img->id, &err) < 0) {
        http_respond_error(c, 500, "%s", err.msg);
        image_free(img);
        return;
    }
    daemon_event(a->d, NULL, "image-removed", "image %s (%s) removed", img->n_refs ? img->refs[0] : "", img->id);
    json_t *j = json_object();
    json_object_set_new(j, "removed", json_string(img->id));
    image_free(img);
    http_respond_json(c, 200, j);
}

static void images_prune(struct api *a, struct http_conn *c)
{
    struct image **l = NULL;
    size_t n = 0;
    struct duet_err err = {0};
    if (!list_all(a, c, &l, &n))
        return;
    json_t *removed = json_array();
    for (size_t i = 0; i < n; i++) {
        char users[16];
        if (users_of(a->d, l[i], users, sizeof(users)))
            continue;
        if (image_store_remove(a->d->images, l[i]->id, &err) < 0) {
            image_list_free(l, n);
            json_decref(removed);
            http_respond_error(c, 500, "%s", err.msg);
            return;
        }
        json_array_append_new(removed, json_string(l[i]->id));
    }
    image_list_free(l, n);
    if (json_array_size(removed))
        daemon_event(a->d, NULL, "image-removed", "%zu unused image%s pruned", json_array_size(removed),
                     json_array_size(removed) == 1 ? "" : "s");
    json_t *j = json_object();
    json_object_set_new(j, "removed", removed);
    http_respond_json(c, 200, j);
}

/* A pull runs on the pool; the connection waits for it.  With
 * ?progress=1 the answer is a stream of JSON lines, {"progress": {...}}
 * while it goes (at most five a second) and {"image": {...}} or
 * {"error": "...", "status": N} at its end, so that `duet image pull`
 * can draw a bar. */
struct pull {
    uv_work_t work;
    struct api *a;
    struct http_conn *c;
    char ref[IMAGE_REF_MAX + 1];
    struct image *img;
    struct duet_err err;
    int rc;
    bool stream;
    struct import_progress progress;
    uint64_t last_line_ms, last_event_ms;
};

static void pull_free(struct import_progress *ip)
{
    free((struct pull *)((char *)ip - offsetof(struct pull, progress)));
}

static void stream_json(struct http_conn *c, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return;
    size_t n = strlen(text);
    text[n] = '\n';   /* json_dumps leaves the NUL: the line is n + 1 bytes */
    if (!http_conn_closed(c))
        http_stream_write(c, text, n + 1);
    free(text);
}

static void pull_progress(struct import_progress *ip, const struct image_progress *pg)
{
    struct pull *p = (struct pull *)((char *)ip - offsetof(struct pull, progress));
    uint64_t now = clock_mono_ms();
    if (p->stream && now - p->last_line_ms >= 200) {
        p->last_line_ms = now;
        stream_json(p->c, json_pack("{s:{s:I,s:I,s:I,s:I}}", "progress", "layers_done", (json_int_t)pg->layers_done,
                                    "layers_total", (json_int_t)pg->layers_total, "bytes_done",
                                    (json_int_t)pg->bytes_done, "bytes_total", (json_int_t)pg->bytes_total));
    }
    if (now - p->last_event_ms >= 1000 && pg->layers_total && pg->layers_done < pg->layers_total) {
        p->last_event_ms = now;
        char text[160];
        import_progress_text(ip, pg, text, sizeof(text));
        daemon_event(p->a->d, NULL, "pulling", "image %s: %s", p->ref, text);
    }
}

static void pull_work(uv_work_t *w)
{
    struct pull *p = w->data;
    p->rc = image_store_pull(p->a->d->images, p->ref, &p->progress.cb, &p->img, &p->err);
}

static void pull_done(uv_work_t *w, int status)
{
    struct pull *p = w->data;
    if (status != 0 && p->rc == 0 && !p->img) {
        p->rc = -1;
        duet_err_set(&p->err, ECANCELED, "the pull was cancelled");
    }
    if (p->rc == 0) {
        daemon_event(p->a->d, NULL, "pulled", "image %s is in the store: %s, %zu layer%s, %.1f MiB unpacked", p->ref,
                     p->img->id, p->img->n_layers, p->img->n_layers == 1 ? "" : "s",
                     (double)p->img->size / (1 << 20));
        if (p->stream)
            stream_json(p->c, json_pack("{s:o}", "image", image_json(p->img, false)));
        else
            http_respond_json(p->c, 200, image_json(p->img, false));
    } else {
        /* What the user can fix (a reference, a file, a damaged image) is
         * theirs; the rest (the store's disk) is ours. */
        int e = p->err.code;
        int code = e == EIO || e == ENOSPC || e == EROFS ? 500 : 422;
        if (p->stream)
            stream_json(p->c, json_pack("{s:s,s:i}", "error", p->err.msg, "status", code));
        else
            http_respond_error(p->c, code, "%s", p->err.msg);
    }
    if (p->stream && !http_conn_closed(p->c))
        http_stream_end(p->c);
    http_conn_unref(p->c);
    image_free(p->img);
    import_progress_close(&p->progress, pull_free);
}

static void images_pull(struct api *a, struct http_conn *c, const struct http_request *req)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    const char *ref = json_string_value(json_object_get(body, "ref"));
    if (!ref || strlen(ref) > IMAGE_REF_MAX) {
        json_decref(body);
        http_respond_error(c, 400, "pull wants {\"ref\": \"REFERENCE\"} (at most %d characters)", IMAGE_REF_MAX);
        return;
    }
    struct image_ref r;
    struct duet_err err = {0};
    if (image_ref_parse(ref, &r, &err) < 0) {
        json_decref(body);
        http_respond_error(c, 422, "%s", err.msg);
        return;
    }
    if (r.kind != IMAGE_REF_REGISTRY && r.path[0] != '/') {
        json_decref(body);
        http_respond_error(c, 422, "image %s: give the path whole (the duet command makes it absolute)", ref);
        return;
    }
    struct pull *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    if (import_progress_start(&p->progress, a->d->loop, pull_progress) != 0)
        abort();
    p->a = a;
    p->c = c;
    snprintf(p->ref, sizeof(p->ref), "%s", ref);
    json_decref(body);
    p->work.data = p;
    char flag[8];
    p->stream = http_query_get(req->query, "progress", flag, sizeof(flag)) && !strcmp(flag, "1");
    if (p->stream)
        http_stream_begin(c, 200, "application/x-ndjson");
    http_conn_ref(c);
    uv_queue_work(a->d->loop, &p->work, pull_work, pull_done);
}

void api_images(struct api *a, struct http_conn *c, const struct http_request *req, const char *sub)
{
    bool get = strcmp(req->method, "GET") == 0, post = strcmp(req->method, "POST") == 0,
         del = strcmp(req->method, "DELETE") == 0;
    if (!a->d->images) {
        http_respond_error(c, 503, "this duetd has no image store");
        return;
    }
    if (!*sub && get)
        return images_list(a, c);
    if (!*sub && del)
        return images_remove(a, c, req->query);
    if (!strcmp(sub, "/inspect") && get)
        return images_inspect(a, c, req->query);
    if (!strcmp(sub, "/pull") && post)
        return images_pull(a, c, req);
    if (!strcmp(sub, "/prune") && post)
        return images_prune(a, c);
    http_respond_error(c, 404, "no route for %s /v1/images%.100s (see docs/api.md)", req->method, sub);
}
