/*
 * plan_images.c - see plan_images.h.
 */
#include "plan_images.h"
#include "scheduler/placement.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "common/urlenc.h"
#include "common/utf8.h"

/* A JSON array of strings, copied; NULL when it is not one. */
static char **strings(json_t *a, size_t *n)
{
    *n = 0;
    if (!json_is_array(a))
        return NULL;
    char **v = calloc(json_array_size(a) + 1, sizeof(*v));
    if (!v)
        abort();
    for (size_t i = 0; i < json_array_size(a); i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!(v[(*n)++] = strdup(s ? s : "")))
            abort();
    }
    return v;
}

/* Kubernetes' reading, as duetd's run spec does (orchestrator/image.c):
 * command replaces Entrypoint and drops Cmd, args replace Cmd. */
static void effective_command(struct plan_image *pi, json_t *config)
{
    const struct workload_spec *w = pi->w;
    size_t n_entry = 0, n_cmd = 0;
    char **entry = w->command ? NULL : strings(json_object_get(config, "entrypoint"), &n_entry);
    char **cmd = w->args || w->command ? NULL : strings(json_object_get(config, "cmd"), &n_cmd);
    size_t ne = w->command ? w->n_command : n_entry, nc = w->args ? w->n_args : n_cmd;
    pi->command = calloc(ne + nc + 1, sizeof(*pi->command));
    if (!pi->command)
        abort();
    for (size_t i = 0; i < ne; i++)
        pi->command[pi->n_command++] = strdup(w->command ? w->command[i] : entry[i]);
    for (size_t i = 0; i < nc; i++)
        pi->command[pi->n_command++] = strdup(w->args ? w->args[i] : cmd[i]);
    for (size_t i = 0; i < n_entry; i++)
        free(entry[i]);
    for (size_t i = 0; i < n_cmd; i++)
        free(cmd[i]);
    free(entry);
    free(cmd);
}

static void ask(struct plan_image *pi, const char *socket)
{
    char ref[2048], path[2200];
    duet_url_escape(pi->w->image.oci, NULL, ref, sizeof(ref));
    snprintf(path, sizeof(path), "/v1/images/inspect?ref=%s", ref);
    struct client_buf buf = {0};
    struct duet_err err = {0};
    int st = client_call_buf(socket, "GET", path, NULL, 0, &buf, 5000, &err);
    json_t *j = buf.data ? json_loads(buf.data, 0, NULL) : NULL;
    if (st < 0) {
        snprintf(pi->why, sizeof(pi->why), "no duetd answers on %s: apply will tell whether it must pull", socket);
    } else if (st == 404) {
        pi->state = PLAN_IMAGE_MISSING;
    } else if (st != 200 || !json_is_object(j)) {
        const char *e = json_string_value(json_object_get(j, "error"));
        snprintf(pi->why, sizeof(pi->why), "duetd could not say (%d%s%s)", st, e ? ": " : "", e ? e : "");
    } else {
        pi->state = PLAN_IMAGE_STORED;
        const char *id = json_string_value(json_object_get(j, "id"));
        snprintf(pi->id, sizeof(pi->id), "%s", id ? id : "");
        pi->n_layers = json_array_size(json_object_get(j, "layers"));
        pi->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
        pi->config = json_incref(json_object_get(j, "config"));
        effective_command(pi, pi->config);
    }
    json_decref(j);
    free(buf.data);
}

/* What another entry of the same reference learnt, copied. */
static void copy_answer(struct plan_image *to, const struct plan_image *from)
{
    to->state = from->state;
    memcpy(to->id, from->id, sizeof(to->id));
    to->n_layers = from->n_layers;
    to->size = from->size;
    memcpy(to->why, from->why, sizeof(to->why));
}

void plan_images_lookup(const struct manifest_set *set, const char *socket, struct plan_images *out)
{
    out->n = 0;
    out->v = calloc(set->n_workloads + 1, sizeof(*out->v));
    if (!out->v)
        abort();
    for (size_t i = 0; i < set->n_workloads; i++) {
        const struct workload_spec *w = set->workloads[i];
        if (!w->image.oci)
            continue;
        struct plan_image *pi = &out->v[out->n++];
        pi->w = w;
        const struct plan_image *seen = NULL;
        for (size_t k = 0; k + 1 < out->n && !seen; k++)
            if (!strcmp(out->v[k].w->image.oci, w->image.oci))
                seen = &out->v[k];
        /* one request per reference; the command is each workload's */
        if (!seen) {
            ask(pi, socket);
            continue;
        }
        copy_answer(pi, seen);
        if (seen->state == PLAN_IMAGE_STORED)
            effective_command(pi, seen->config);
    }
}

void plan_disks_lookup(const struct plan *plan, const char *socket, struct plan_images *out)
{
    out->n_disks = 0;
    bool any_vm = false;
    for (size_t i = 0; i < plan->n; i++)
        any_vm |= plan->items[i].placed && plan->items[i].backend == BACKEND_VM;
    if (!any_vm)
        return;
    struct client_buf buf = {0};
    struct duet_err err = {0};
    int st = client_call_buf(socket, "GET", "/v1/workloads", NULL, 0, &buf, 5000, &err);
    json_t *j = st == 200 && buf.data ? json_loads(buf.data, 0, NULL) : NULL;
    free(buf.data);
    json_t *wls = json_object_get(j, "workloads");
    out->disks = calloc(plan->n + 1, sizeof(*out->disks));
    if (!out->disks)
        abort();
    size_t i;
    json_t *x;
    json_array_foreach(wls, i, x) {
        const char *name = json_string_value(json_object_get(x, "name"));
        const char *kept = json_string_value(json_object_get(json_object_get(x, "disk"), "source"));
        if (!name || !kept)
            continue;
        for (size_t k = 0; k < plan->n; k++) {
            const struct placement *pl = &plan->items[k];
            char now[4096 + 64];
            if (!pl->placed || pl->backend != BACKEND_VM || strcmp(pl->w->name, name) != 0 ||
                !wl_disk_resets(pl->w, kept, now, sizeof(now)))
                continue;
            struct plan_disk *pd = &out->disks[out->n_disks++];
            pd->w = pl->w;
            pd->kept = strdup(kept);
            pd->now = strdup(now[0] ? now : "no disk");
            if (!pd->kept || !pd->now)
                abort();
        }
    }
    json_decref(j);
}

void plan_images_free(struct plan_images *pi)
{
    for (size_t i = 0; i < pi->n_disks; i++) {
        free(pi->disks[i].kept);
        free(pi->disks[i].now);
    }
    free(pi->disks);
    pi->disks = NULL;
    pi->n_disks = 0;
    for (size_t i = 0; i < pi->n; i++) {
        for (size_t k = 0; k < pi->v[i].n_command; k++)
            free(pi->v[i].command[k]);
        free(pi->v[i].command);
        json_decref(pi->v[i].config);
    }
    free(pi->v);
    pi->v = NULL;
    pi->n = 0;
}

void plan_image_command_text(const struct plan_image *pi, char *buf, size_t len)
{
    /* room kept at the end for a closing quote and "..." */
    size_t o = 0, room = len > 8 ? len - 8 : 0;
    bool cut = false;
    buf[0] = '\0';
    for (size_t i = 0; i < pi->n_command && !cut; i++) {
        const char *a = pi->command[i];
        bool quote = !a[0] || strpbrk(a, " \t\n'\"$\\;&|<>()*?");
        if (o + 2 > room) {
            cut = true;
            break;
        }
        if (i)
            buf[o++] = ' ';
        if (quote)
            buf[o++] = '\'';
        for (const char *p = a; *p; p++) {
            if (o + 4 > room) {
                cut = true;
                break;
            }
            if (*p == '\'' && quote) {
                memcpy(buf + o, "'\\''", 4);
                o += 4;
            } else {
                /* an image's strings are the image author's: no escape
                 * sequence of theirs reaches the user's terminal */
                buf[o++] = *p == '\n' || *p == '\t' ? ' ' : duet_char_shown(*p);
            }
        }
        if (quote && !cut)
            buf[o++] = '\'';
    }
    if (cut && len >= 4) {
        size_t at = o + 4 <= len ? o : len - 4;
        memcpy(buf + at, "...", 4);
    } else if (len) {
        buf[o < len ? o : len - 1] = '\0';
    }
}
