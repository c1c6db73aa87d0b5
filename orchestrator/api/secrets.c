/*
 * secrets.c - GET /v1/secrets, PUT and DELETE /v1/secrets/NAME: the
 * stored secrets (docs/secrets.md).  A PUT's body is the value itself,
 * bytes as they are; no answer ever holds a value, only names, sizes and
 * who uses them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator/api/internal.h"
#include "orchestrator/secret.h"

static json_t *users_json(struct daemon *d, const char *name)
{
    json_t *users = json_array();
    DAEMON_WL_FOREACH(d, w)
        if (!w->deleted && wl_uses_secret(w->spec, name))
            json_array_append_new(users, json_string(w->name));
    return users;
}

static void secrets_list(struct api *a, struct http_conn *c)
{
    struct secret_info *v;
    size_t n;
    struct duet_err err = {0};
    if (secret_store_list(a->d->secrets, &v, &n, &err) < 0) {
        http_respond_error(c, 500, "%s", err.msg);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:o}", "name", v[i].name, "size", (json_int_t)v[i].size,
                                             "updated_at", (json_int_t)v[i].updated_ms, "used_by",
                                             users_json(a->d, v[i].name)));
    free(v);
    http_respond_json(c, 200, json_pack("{s:o}", "secrets", arr));
}

static void secret_put(struct api *a, struct http_conn *c, const struct http_request *req, const char *name)
{
    bool changed = false;
    struct apply_result r;
    struct duet_err err = {0};
    if (daemon_secret_set(a->d, name, req->body ? req->body : "", req->body_len, &changed, &r, &err) < 0) {
        http_respond_error(c, err.code == EINVAL || err.code == E2BIG ? 422 : api_status_of(err.code), "%s", err.msg);
        return;
    }
    json_t *replaced = json_array();
    for (size_t k = 0; r.status == APPLY_OK && k < r.n_changes; k++)
        if (r.changes[k].action == APPLY_REPLACE)
            json_array_append_new(replaced, json_string(r.changes[k].name));
    json_t *j = json_pack("{s:s,s:b,s:o}", "name", name, "changed", changed, "replaced", replaced);
    if (r.status != APPLY_OK) {
        /* Stored, and still in use with the old value: the user hears both. */
        json_object_set_new(j, "error",
                            json_sprintf("secret %s is stored, but the workloads that use it were not replaced: %s",
                                         name, r.error));
        json_t *l = json_array();
        for (size_t i = 0; i < r.n_lines; i++)
            json_array_append_new(l, api_json_text(r.lines[i], strlen(r.lines[i])));
        json_object_set_new(j, "diagnostics", l);
    }
    http_respond_json(c, r.status == APPLY_OK ? 200 : r.status == APPLY_UNAVAILABLE ? 503 : 409, j);
    apply_result_free(&r);
}

void api_secrets(struct api *a, struct http_conn *c, const struct http_request *req, const char *sub)
{
    bool get = strcmp(req->method, "GET") == 0, put = strcmp(req->method, "PUT") == 0,
         del = strcmp(req->method, "DELETE") == 0;
    if (sub[0] == '\0') {
        if (get)
            return secrets_list(a, c);
        http_respond_error(c, 405, "/v1/secrets takes GET; set one with PUT /v1/secrets/NAME");
        return;
    }
    const char *name = sub + 1;
    if (!wl_secret_name_valid(name, strlen(name))) {
        http_respond_error(c, 404, "\"%.63s\" is not a secret's name", name);
        return;
    }
    struct duet_err err = {0};
    if (put)
        return secret_put(a, c, req, name);
    if (del) {
        if (daemon_secret_remove(a->d, name, &err) < 0)
            http_respond_error(c, err.code == EBUSY ? 409 : api_status_of(err.code), "%s", err.msg);
        else
            http_respond_json(c, 200, json_pack("{s:s}", "removed", name));
        return;
    }
    if (get) {
        /* There is no reading a value back: only whether it is there. */
        if (!secret_store_has(a->d->secrets, name)) {
            http_respond_error(c, 404, "no secret named %s; duet secret set %s stores one", name, name);
            return;
        }
        http_respond_json(c, 200, json_pack("{s:s,s:o}", "name", name, "used_by", users_json(a->d, name)));
        return;
    }
    http_respond_error(c, 405, "/v1/secrets/%s takes PUT, GET or DELETE", name);
}
