/*
 * apply.c - the changes a user asks of the fleet: apply, run, delete.
 *
 * Each is all or nothing.  An apply is checked whole (the manifests with
 * the rest of the fleet, the daemon's own paths, the plan, host ports)
 * before anything changes; then every changed workload's row is written in
 * one transaction, and only when it commits do the workloads change in
 * memory.  A commit the store refuses undoes the changes made for it and
 * answers that nothing was changed.  The steps on the host follow from
 * the reconciler, on the loop's next turn.
 *
 * Nothing here knows of HTTP: a result says what changed, or why nothing
 * did, and the API (api/apply.c) turns it into an answer.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <jansson.h>

#include "common/cleanup.h"
#include "common/units.h"
#include "manifests/hostpath.h"
#include "manifests/specjson.h"
#include "orchestrator/daemon.h"
#include "orchestrator/secret.h"
#include "orchestrator/image.h"
#include "scheduler/placement.h"

/* The file name under which the rest of the fleet takes part in an apply's
 * checks; a diagnostic never points into it (see apply_checks). */
#define APPLIED_EARLIER "(applied earlier)"

const char *apply_action_name(enum apply_action a)
{
    switch (a) {
    case APPLY_CREATE: return "create";
    case APPLY_REPLACE: return "replace";
    case APPLY_UNCHANGED: return "unchanged";
    case APPLY_DELETE: return "delete";
    }
    return "unknown";
}

void apply_result_free(struct apply_result *r)
{
    for (size_t i = 0; i < r->n_changes; i++) {
        free(r->changes[i].name);
        free(r->changes[i].placement_json);
    }
    free(r->changes);
    for (size_t i = 0; i < r->n_lines; i++)
        free(r->lines[i]);
    free(r->lines);
    for (size_t i = 0; i < r->n_unplaceable; i++) {
        free(r->unplaceable[i].name);
        free(r->unplaceable[i].reason);
    }
    free(r->unplaceable);
    memset(r, 0, sizeof(*r));
}

static char *xstrdup(const char *s)
{
    char *c = strdup(s);
    if (!c)
        abort();
    return c;
}

static void result_line(struct apply_result *r, const char *file, unsigned line, unsigned col, const char *msg)
{
    char *s = NULL;
    if (asprintf(&s, "%s:%u:%u: error: %s", file, line, col, msg) < 0)
        abort();
    char **v = realloc(r->lines, (r->n_lines + 1) * sizeof(*v));
    if (!v)
        abort();
    r->lines = v;
    r->lines[r->n_lines++] = s;
}

static void result_diags(struct apply_result *r, struct diag_list *dl, const char *error)
{
    diag_sort(dl);
    for (size_t i = 0; i < dl->n; i++)
        result_line(r, dl->v[i].file, dl->v[i].line, dl->v[i].col, dl->v[i].msg);
    r->status = APPLY_INVALID;
    snprintf(r->error, sizeof(r->error), "%s", error);
}

static bool refuse_degraded(struct daemon *d, struct apply_result *r)
{
    if (!d->degraded[0])
        return false;
    r->status = APPLY_UNAVAILABLE;
    snprintf(r->error, sizeof(r->error), "%s", d->degraded);
    return true;
}

char *placement_json_text(const struct placement *pl)
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
    char *t = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!t)
        abort();
    return t;
}

/* ---- the desired half, changed with a way back ----------------------------------- */

/* What an assignment replaced, so a commit that fails can put it back. */
struct wl_undo {
    struct wl *w;
    bool created;                  /* w was made for this apply */
    struct spec_group *grp;
    const struct workload_spec *spec;
    char *spec_json, *placement_json, *message;
    int64_t gen, restarts;
    enum backend_kind backend;
    enum wl_phase phase;
    unsigned quick_failures;
    bool deleted, rm, crashloop, disk_reset, delete_volumes, stopped;
};

static void undo_save(struct wl_undo *u, struct wl *w, bool created)
{
    *u = (struct wl_undo){
        .w = w, .created = created, .grp = w->grp, .spec = w->spec, .spec_json = w->spec_json,
        .placement_json = w->placement_json, .message = w->message, .gen = w->gen, .restarts = w->restarts,
        .backend = w->backend, .phase = w->phase, .quick_failures = w->quick_failures, .deleted = w->deleted,
        .rm = w->rm, .crashloop = w->crashloop, .disk_reset = w->disk_reset,
        .delete_volumes = w->delete_volumes, .stopped = w->stopped,
    };
}

/* Gives w the spec `json` (taken), placed as pl, from group g.  What it
 * replaced is in u, to be dropped (undo_drop) or put back (undo_restore). */
static void wl_assign(struct wl *w, struct wl_undo *u, bool created, struct spec_group *g,
                      const struct workload_spec *spec, char *json, const struct placement *pl)
{
    undo_save(u, w, created);
    w->grp = g;
    g->refs++;
    w->spec = spec;
    w->spec_json = json;
    w->gen++;
    w->backend = pl->backend;
    w->placement_json = placement_json_text(pl);
    /* Applied again while being deleted: a workload anew, not a stopped
     * one.  A stopped one given a new spec stays stopped. */
    if (w->deleted)
        w->stopped = false;
    w->deleted = false;
    w->delete_volumes = false;
    w->purged = false;
    w->snaps_removed = false;
    w->restarts = 0;
    w->quick_failures = 0;
    w->crashloop = false;
    w->message = NULL;
    if (w->phase == PH_EXITED || w->phase == PH_BACKOFF)
        w->phase = PH_PENDING;
}

/* The assignment stays: what it replaced is freed. */
static void undo_drop(struct wl_undo *u)
{
    if (u->spec_json != u->w->spec_json) {
        free(u->spec_json);
        free(u->placement_json);
        free(u->message);
        if (u->grp)
            spec_group_unref(u->grp);
    }
}

/* The commit failed: w is as it was (a workload made for it is gone). */
static void undo_restore(struct wl_undo *u)
{
    struct wl *w = u->w;
    if (u->spec_json != w->spec_json) {
        free(w->spec_json);
        free(w->placement_json);
        free(w->message);
        spec_group_unref(w->grp);
    }
    w->grp = u->grp;
    w->spec = u->spec;
    w->spec_json = u->spec_json;
    w->placement_json = u->placement_json;
    w->message = u->message;
    w->gen = u->gen;
    w->restarts = u->restarts;
    w->backend = u->backend;
    w->phase = u->phase;
    w->quick_failures = u->quick_failures;
    w->deleted = u->deleted;
    w->rm = u->rm;
    w->crashloop = u->crashloop;
    w->disk_reset = u->disk_reset;
    w->delete_volumes = u->delete_volumes;
    w->stopped = u->stopped;
    if (u->created) {
        strmap_del(&w->d->wls, w->name);
        wl_unref(w);
    }
}

/* ---- apply ------------------------------------------------------------------------- */

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
            if (w->volumes[i].source)
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

/* A named volume's size must fit the disk that holds the state directory
 * (a bigger image could never be filled, and would claim to be what it
 * cannot be); what is free now is the volume's own business, as for any
 * sparse file. */
static void check_volume_sizes(struct daemon *d, struct manifest_set *set, const struct strmap *in_files)
{
    struct statvfs vfs;
    if (statvfs(d->state_dir, &vfs) < 0)
        return;
    uint64_t disk = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    for (size_t k = 0; k < set->n_workloads; k++) {
        const struct workload_spec *w = set->workloads[k];
        if (strmap_get(in_files, w->name) != w)
            continue;
        for (size_t i = 0; i < w->n_volumes; i++) {
            const struct wl_volume *v = &w->volumes[i];
            char a[32], b[32];
            if (v->name && v->size > disk)
                diag_add(&set->diags, w->pos.file, w->name_pos.line, w->name_pos.col,
                         "%s: volume %s of size %s is more than the whole disk that holds %s (%s); give a smaller "
                         "size",
                         w->name, v->name, units_size_format(v->size, a, sizeof(a)), d->state_dir,
                         units_size_format(disk, b, sizeof(b)));
        }
    }
}

/* The manifests with the rest of the fleet: false with r filled when they
 * have errors.  in_files maps the names in the files to their specs. */
static bool apply_checks(struct daemon *d, struct manifest_set *set, bool prune, bool dry_run, struct strmap *in_files,
                         struct apply_result *r)
{
    if (set->host && manifest_set_ok(set)) {
        diag_add(&set->diags, set->host->pos.file, set->host->pos.line, set->host->pos.col,
                 "kind: Host describes a machine to plan for (duet plan); duetd runs workloads on the machine it "
                 "runs on: leave it out of apply");
    }
    if (set->n_workloads == 0 && manifest_set_ok(set))
        diag_add(&set->diags, "apply", 0, 0, "no Workload documents in the files given");
    for (size_t k = 0; k < set->n_workloads; k++)
        strmap_put(in_files, set->workloads[k]->name, set->workloads[k]);
    /* The rest of the fleet takes part in the checks (dependsOn) and in
     * the capacity the plan counts, unless pruned. */
    char **kept = malloc((d->wls.len + 1) * sizeof(*kept));
    size_t n_kept = 0;
    if (!kept)
        abort();
    DAEMON_WL_FOREACH(d, w) {
        if (w->deleted || strmap_get(in_files, w->name) || (prune && !w->rm && !w->temp_of))
            continue;
        kept[n_kept++] = w->spec_json;
    }
    set->context_file = APPLIED_EARLIER;
    if (manifest_set_ok(set) && n_kept)
        specjson_load(set, APPLIED_EARLIER, kept, n_kept);
    free(kept);
    if (manifest_set_ok(set))
        manifest_set_validate(set);
    if (manifest_set_ok(set))
        check_daemon_paths(d, set, in_files);
    if (manifest_set_ok(set))
        check_volume_sizes(d, set, in_files);
    /* Last: a refused apply seals nothing it would not use, and a dry
     * run only works out the versions. */
    if (manifest_set_ok(set))
        secret_store_seal(d->secrets, set, in_files, !dry_run);
    if (manifest_set_ok(set))
        return true;
    result_diags(r, &set->diags, "the manifests have errors; nothing was changed");
    return false;
}

/* Host ports: each one published anew must be free on the host (the
 * manifests were checked against each other already).  Checked for a dry
 * run too: it says what the apply would do. */
static bool apply_ports(struct daemon *d, const struct apply_change *ch, const struct placement *const *pls,
                        size_t n, struct apply_result *r)
{
    for (size_t k = 0; k < n && d->net_open; k++) {
        if (!pls[k] || ch[k].action == APPLY_UNCHANGED || !pls[k]->w->n_ports)
            continue;
        struct duet_err perr = {0};
        const struct workload_spec *w = pls[k]->w;
        if (fleet_net_ports_check(&d->net, w->name, w->ports, w->n_ports, &perr) < 0)
            result_line(r, w->ports[0].pos.file, w->ports[0].pos.line, w->ports[0].pos.col, perr.msg);
    }
    if (!r->n_lines)
        return true;
    r->status = APPLY_PORTS_TAKEN;
    snprintf(r->error, sizeof(r->error), "host ports are taken; nothing was changed");
    return false;
}

/* Addresses, like CPUs and memory, are admitted before anything changes:
 * every workload the apply brings onto the fleet network without an
 * address must find one free (pruned workloads give theirs back), or
 * the workloads past the last address would wait for one for ever. */
static bool apply_addresses(struct daemon *d, struct apply_result *r, const struct placement *const *pls)
{
    if (!d->net_open)
        return true;
    size_t need = 0, freed = 0;
    for (size_t k = 0; k < r->n_changes; k++) {
        const struct apply_change *c = &r->changes[k];
        struct wl *cur = daemon_wl_find(d, c->name);
        if (c->action == APPLY_DELETE) {
            freed += cur && cur->addr;
            continue;
        }
        if (pls[k] && pls[k]->w->network == WL_NETWORK_FLEET && !(cur && cur->addr))
            need++;
    }
    size_t free_now = ipam_free_count(&d->net.ipam);
    if (need <= free_now + freed)
        return true;
    char sn[20];
    ipam_format_subnet(&d->net.ipam.subnet, sn);
    r->status = APPLY_UNPLACEABLE;
    snprintf(r->error, sizeof(r->error),
             "the fleet network %s has %zu free address%s and this apply needs %zu more; nothing was changed: start "
             "duetd with a wider --subnet (a /24 holds 253 workloads, a /16 65533), or give some workloads "
             "network: none",
             sn, free_now + freed, free_now + freed == 1 ? "" : "es", need);
    return false;
}

static bool recreate_named(const struct apply_opts *o, const char *name)
{
    for (size_t i = 0; i < o->n_recreate; i++)
        if (strcmp(o->recreate[i], name) == 0)
            return true;
    return false;
}

/* A VM's disk lives as long as its workload (docs/storage.md): a change
 * that would make it anew (another image, another size) is refused unless
 * the user said so, by --recreate NAME (a fresh disk) or image.keepDisk
 * (the old one).  --recreate makes its workloads a change even when their
 * spec is not. */
static bool apply_disks(struct daemon *d, const struct apply_opts *o, const struct placement *const *pls,
                        struct apply_result *r)
{
    for (size_t i = 0; i < o->n_recreate; i++) {
        size_t k = 0;
        while (k < r->n_changes && (r->changes[k].action == APPLY_DELETE || strcmp(r->changes[k].name, o->recreate[i])))
            k++;
        if (k < r->n_changes)
            continue;
        char msg[160];
        snprintf(msg, sizeof(msg), "--recreate %.63s: no workload of that name is in the files applied",
                 o->recreate[i]);
        result_line(r, "apply", 0, 0, msg);
    }
    for (size_t k = 0; k < r->n_changes; k++) {
        struct apply_change *c = &r->changes[k];
        if (c->action == APPLY_DELETE || !pls[k])
            continue;
        if (recreate_named(o, c->name)) {
            if (c->action == APPLY_UNCHANGED)
                c->action = APPLY_REPLACE;
            continue;
        }
        const struct workload_spec *w = pls[k]->w;
        struct wl *cur = daemon_wl_find(d, c->name);
        struct driver *drv = daemon_driver(d, pls[k]->backend);
        char src[4096 + 64];
        if (!cur || !drv || !(drv->flags & DRIVER_KEEPS_DISK) || !wl_disk_resets(w, cur->disk, src, sizeof(src)))
            continue;
        char *msg = NULL;
        int n;
        if (src[0])
            n = asprintf(&msg,
                     "%s: its VM's disk, which holds what the guest wrote, was made from %s and the spec now says "
                     "%s: the disk would be reset; apply with --recreate %s to reset it, or set "
                     "spec.image.keepDisk: true to keep the old disk",
                     c->name, cur->disk, src, c->name);
        else
            n = asprintf(&msg,
                     "%s: its VM's disk, made from %s, would be dropped (the spec now boots no disk); apply "
                     "with --recreate %s to drop it",
                     c->name, cur->disk, c->name);
        if (n < 0)
            abort();
        result_line(r, w->pos.file, w->name_pos.line, w->name_pos.col, msg);
        free(msg);
    }
    if (!r->n_lines)
        return true;
    r->status = APPLY_DISK_RESET;
    snprintf(r->error, sizeof(r->error), "the apply would reset the disks of VMs; nothing was changed");
    return false;
}

static void change_add(struct apply_result *r, const char *name, enum apply_action a, const struct placement *pl)
{
    r->changes[r->n_changes++] = (struct apply_change){
        .name = xstrdup(name), .action = a, .placement_json = pl ? placement_json_text(pl) : NULL};
}

/* Writes the changes and makes them: -1 (nothing changed, r filled) when
 * the store refuses the transaction. */
static int apply_commit(struct daemon *d, const struct apply_opts *o, struct apply_result *r,
                        const struct placement *const *pls, char **jsons)
{
    size_t n = r->n_changes;
    /* The changed specs are loaded once more on their own, so the set kept
     * alive holds only what the workloads use. */
    char **texts = malloc((n + 1) * sizeof(*texts));
    size_t n_texts = 0;
    if (!texts)
        abort();
    for (size_t k = 0; k < n; k++)
        if (jsons[k] && r->changes[k].action != APPLY_UNCHANGED)
            texts[n_texts++] = jsons[k];
    struct spec_group *g = calloc(1, sizeof(*g));
    if (!g)
        abort();
    g->set = manifest_set_new();
    g->refs = 1;   /* ours, until the end */
    specjson_load(g->set, "duetd-store", texts, n_texts);
    free(texts);

    struct strmap loaded;   /* name -> its spec in g */
    strmap_init(&loaded);
    for (size_t x = 0; x < g->set->n_workloads; x++)
        strmap_put(&loaded, g->set->workloads[x]->name, g->set->workloads[x]);
    struct wl_undo *undo = calloc(n + 1, sizeof(*undo));
    if (!undo)
        abort();
    size_t n_undo = 0;
    struct duet_err err = {0};
    int rc = store_begin(d->store, &err);
    for (size_t k = 0; k < n && rc == 0; k++) {
        const struct apply_change *c = &r->changes[k];
        if (c->action == APPLY_UNCHANGED)
            continue;
        struct wl *w = daemon_wl_find(d, c->name);
        bool created = !w;
        if (c->action == APPLY_DELETE) {
            undo_save(&undo[n_undo++], w, false);
            w->deleted = true;
        } else {
            if (created)
                w = wl_new(d, c->name);
            const struct workload_spec *spec = strmap_get(&loaded, c->name);
            if (!spec)
                abort();   /* every changed text was loaded above */
            wl_assign(w, &undo[n_undo++], created, g, spec, steal_ptr(&jsons[k]), pls[k]);
            w->rm = false;
            if (recreate_named(o, c->name))
                w->disk_reset = true;
        }
        struct store_row row;
        wl_row(w, &row);
        rc = store_put(d->store, &row, &err);
    }
    strmap_free(&loaded);
    if (rc == 0)
        rc = store_commit(d->store, &err);
    if (rc < 0) {
        store_rollback(d->store);
        for (size_t i = n_undo; i-- > 0;)
            undo_restore(&undo[i]);
        free(undo);
        spec_group_unref(g);
        daemon_degrade(d, "apply", &err);
        r->status = APPLY_UNAVAILABLE;
        snprintf(r->error, sizeof(r->error), "the state store did not take the apply (%s); nothing was changed",
                 err.msg);
        return -1;
    }
    for (size_t i = 0; i < n_undo; i++)
        undo_drop(&undo[i]);
    free(undo);
    spec_group_unref(g);   /* freed here when nothing changed */

    size_t counts[4] = {0};
    for (size_t k = 0; k < n; k++) {
        const struct apply_change *c = &r->changes[k];
        counts[c->action]++;
        struct wl *w = daemon_wl_find(d, c->name);
        struct duet_err perr = {0};
        if (c->action != APPLY_DELETE && c->action != APPLY_UNCHANGED && d->net_open &&
            fleet_net_ports_set(&d->net, w->name, w->spec->ports, w->spec->n_ports, &perr) < 0)
            daemon_event(d, w->name, "failed", "publishing its ports: %s", perr.msg);
        if (c->action == APPLY_CREATE || c->action == APPLY_REPLACE)
            wl_image_prefetch(w);
    }
    daemon_event(d, NULL, "applied", "%zu created, %zu replaced, %zu deleted, %zu unchanged", counts[APPLY_CREATE],
                 counts[APPLY_REPLACE], counts[APPLY_DELETE], counts[APPLY_UNCHANGED]);
    /* An image that could not be pulled is tried again now, not at the
     * end of its back-off: applying again is how a user says the registry
     * or the credentials are fixed. */
    for (size_t k = 0; k < n; k++) {
        struct wl *w = r->changes[k].action == APPLY_UNCHANGED ? daemon_wl_find(d, r->changes[k].name) : NULL;
        if (!w || !w->pull_failed || w->inst || w->phase != PH_BACKOFF)
            continue;
        uv_timer_stop(&w->tick);
        w->backoff_until = 0;
        w->quick_failures = 0;
        w->crashloop = false;
        w->phase = PH_PENDING;
        free(w->message);
        w->message = NULL;
        daemon_event(d, w->name, "retrying", "applied again: pulling image %s again", w->spec->image.oci);
        wl_reconcile(w);
    }
    if (counts[APPLY_CREATE] + counts[APPLY_REPLACE])
        daemon_net_sync(d);
    daemon_secrets_gc(d);
    return 0;
}

void daemon_apply(struct daemon *d, struct manifest_set *set, const struct apply_opts *o, struct apply_result *r)
{
    memset(r, 0, sizeof(*r));
    struct strmap in_files;
    strmap_init(&in_files);
    struct plan *plan = NULL;
    const struct placement **pls = NULL;
    char **jsons = NULL;
    if ((!o->dry_run && refuse_degraded(d, r)) || !apply_checks(d, set, o->prune, o->dry_run, &in_files, r))
        goto out;

    plan = plan_new(set, &d->host);
    if (plan->n_unplaceable) {
        r->unplaceable = calloc(plan->n_unplaceable, sizeof(*r->unplaceable));
        if (!r->unplaceable)
            abort();
        for (size_t k = 0; k < plan->n; k++) {
            const struct placement *pl = &plan->items[k];
            if (!pl->placed)
                r->unplaceable[r->n_unplaceable++] =
                    (struct apply_unplaceable){.name = xstrdup(pl->w->name), .reason = xstrdup(pl->unplaceable)};
        }
        r->status = APPLY_UNPLACEABLE;
        snprintf(r->error, sizeof(r->error), "some workloads fit nowhere on this host; nothing was changed");
        goto out;
    }

    /* The diff: what the files change, in start order, then the deletes. */
    size_t cap = plan->n + d->wls.len + 1;
    r->changes = calloc(cap, sizeof(*r->changes));
    pls = calloc(cap, sizeof(*pls));
    jsons = calloc(cap, sizeof(*jsons));
    if (!r->changes || !pls || !jsons)
        abort();
    for (size_t k = 0; k < plan->n; k++) {
        const struct placement *pl = &plan->items[k];
        const struct workload_spec *w = pl->w;
        if (strcmp(w->pos.file, APPLIED_EARLIER) == 0)
            continue;
        struct wl *cur = daemon_wl_find(d, w->name);
        char *json = specjson_text(w);
        enum apply_action a = APPLY_CREATE;
        if (cur && !cur->deleted)
            a = strcmp(cur->spec_json, json) == 0 && !cur->rm ? APPLY_UNCHANGED : APPLY_REPLACE;
        pls[r->n_changes] = pl;
        jsons[r->n_changes] = json;
        change_add(r, w->name, a, pl);
    }
    if (o->prune) {
        DAEMON_WL_FOREACH(d, w)
            if (!w->deleted && !w->rm && !w->temp_of && !strmap_get(&in_files, w->name))
                change_add(r, w->name, APPLY_DELETE, NULL);
    }
    if (!apply_disks(d, o, pls, r) || !apply_ports(d, r->changes, pls, r->n_changes, r) ||
        !apply_addresses(d, r, pls))
        goto out;
    r->status = APPLY_OK;
    if (!o->dry_run && apply_commit(d, o, r, pls, jsons) == 0)
        daemon_reconcile_soon(d);
out:
    if (jsons)
        for (size_t k = 0; k < r->n_changes; k++)
            free(jsons[k]);
    free(jsons);
    free(pls);
    if (r->status != APPLY_OK) {
        for (size_t i = 0; i < r->n_changes; i++) {
            free(r->changes[i].name);
            free(r->changes[i].placement_json);
        }
        free(r->changes);
        r->changes = NULL;
        r->n_changes = 0;
    }
    strmap_free(&in_files);
    plan_free(plan);
    manifest_set_free(set);
}

/* ---- run --------------------------------------------------------------------------- */

void daemon_run_name(struct daemon *d, char out[64])
{
    do
        snprintf(out, 64, "run-%" PRIx64 "%03x", now_ms() % 0xfffffff, ++d->run_seq % 0xfff);
    while (daemon_wl_find(d, out));
}

static void run_workload(struct daemon *d, struct manifest_set *set, bool rm, const char *temp_of,
                         const struct driver_exec_io *attach, wl_end_fn on_end, void *opaque,
                         struct apply_result *r)
{
    memset(r, 0, sizeof(*r));
    if (refuse_degraded(d, r)) {
        manifest_set_free(set);
        return;
    }
    if (manifest_set_ok(set))
        manifest_set_validate(set);
    if (manifest_set_ok(set) && set->n_workloads != 1)
        diag_add(&set->diags, "run", 0, 0, "run takes one Workload document");
    const struct workload_spec *rw = manifest_set_ok(set) ? set->workloads[0] : NULL;
    if (rw) {
        snprintf(r->name, sizeof(r->name), "%s", rw->name);
        if (daemon_wl_find(d, rw->name))
            diag_add(&set->diags, "run", 0, 0, "a workload named %s exists already; pick another name or delete it",
                     rw->name);
        else if (rw->n_depends_on)
            diag_add(&set->diags, "run", 0, 0, "duet run takes no dependsOn; use apply");
    }
    if (manifest_set_ok(set))
        secret_store_seal(d->secrets, set, NULL, true);
    if (manifest_set_ok(set) && rw->n_ports && d->net_open) {
        /* Published ports: free on the host, and not the fleet's already
         * (an ad-hoc workload takes nothing from an applied one). */
        struct duet_err perr = {0};
        for (size_t k = 0; k < rw->n_ports; k++) {
            const char *owner = fleet_net_port_owner(&d->net, rw->ports[k].host, rw->ports[k].protocol);
            if (owner)
                duet_err_set(&perr, EADDRINUSE, "host port %u is published by workload %s already; pick another",
                             rw->ports[k].host, owner);
        }
        if (perr.msg[0] || fleet_net_ports_check(&d->net, rw->name, rw->ports, rw->n_ports, &perr) < 0)
            diag_add(&set->diags, "run", 0, 0, "%s", perr.msg);
    }
    if (!manifest_set_ok(set)) {
        result_diags(r, &set->diags, "the workload is not valid; nothing was run");
        manifest_set_free(set);
        return;
    }
    if (attach)
        set->workloads[0]->attach = attach->tty ? WL_ATTACH_TTY : WL_ATTACH_PIPES;
    struct plan *plan = plan_new(set, &d->host);
    const struct placement *pl = &plan->items[0];
    if (!pl->placed) {
        r->status = APPLY_UNPLACEABLE;
        snprintf(r->error, sizeof(r->error), "%s fits nowhere on this host: %s", rw->name, pl->unplaceable);
        plan_free(plan);
        manifest_set_free(set);
        return;
    }
    struct spec_group *g = calloc(1, sizeof(*g));
    if (!g)
        abort();
    g->set = set;
    struct wl *w = wl_new(d, rw->name);
    struct wl_undo u;
    wl_assign(w, &u, true, g, rw, specjson_text(rw), pl);
    w->rm = rm;
    w->temp_of = temp_of ? xstrdup(temp_of) : NULL;
    plan_free(plan);
    if (wl_save(w) < 0) {
        undo_restore(&u);
        r->status = APPLY_UNAVAILABLE;
        snprintf(r->error, sizeof(r->error), "%s", d->degraded);
        return;
    }
    undo_drop(&u);
    if (w->spec->n_ports && d->net_open) {
        struct duet_err perr = {0};
        if (fleet_net_ports_set(&d->net, w->name, w->spec->ports, w->spec->n_ports, &perr) < 0)
            daemon_event(d, w->name, "failed", "publishing its ports: %s", perr.msg);
    }
    if (temp_of)
        daemon_event(d, w->name, "run", "temporary instance for a compare of %s, as a %s", temp_of,
                     backend_kind_name(w->backend));
    else
        daemon_event(d, w->name, "run", "ad-hoc workload as a %s%s", backend_kind_name(w->backend),
                     rm ? ", removed when it ends" : "");
    r->status = APPLY_OK;
    r->changes = calloc(1, sizeof(*r->changes));
    if (!r->changes)
        abort();
    r->changes[0] = (struct apply_change){.name = xstrdup(w->name), .action = APPLY_CREATE,
                                          .placement_json = xstrdup(w->placement_json)};
    r->n_changes = 1;
    w->on_end = on_end;
    w->on_end_opaque = opaque;
    w->attach = attach;
    wl_reconcile(w);
}

void daemon_run(struct daemon *d, struct manifest_set *set, bool rm, const struct driver_exec_io *attach,
                wl_end_fn on_end, void *opaque, struct apply_result *r)
{
    run_workload(d, set, rm, NULL, attach, on_end, opaque, r);
}

void daemon_run_temporary(struct daemon *d, struct manifest_set *set, const char *of, struct apply_result *r)
{
    run_workload(d, set, false, of, NULL, NULL, NULL, r);
}

/* ---- delete ------------------------------------------------------------------------ */

int daemon_delete(struct daemon *d, const char *name, bool volumes, struct duet_err *err)
{
    struct wl *w = daemon_wl_find(d, name);
    if (!w)
        return duet_err_set(err, ENOENT, "no workload named \"%.63s\"; duet get lists them", name);
    if (!w->deleted || (volumes && !w->delete_volumes)) {
        if (d->degraded[0])
            return duet_err_set(err, EAGAIN, "%s", d->degraded);
        bool was = w->deleted, was_vol = w->delete_volumes;
        w->deleted = true;
        w->delete_volumes |= volumes;
        if (wl_save(w) < 0) {
            w->deleted = was;
            w->delete_volumes = was_vol;
            return duet_err_set(err, EAGAIN, "%s", d->degraded);
        }
        daemon_event(d, w->name, "delete", "deletion requested%s", volumes ? ", with its volumes" : "");
    }
    wl_reconcile(w);
    return 0;
}

/* ---- secrets ----------------------------------------------------------------------- */

bool wl_uses_secret(const struct workload_spec *w, const char *name)
{
    for (size_t i = 0; w && i < w->n_secrets; i++)
        if (!w->secrets[i].file && strcmp(w->secrets[i].name, name) == 0)
            return true;
    return false;
}

static void keep_versions(struct strmap *keep, const struct workload_spec *w)
{
    for (size_t i = 0; w && i < w->n_secrets; i++)
        if (w->secrets[i].version)
            strmap_put(keep, w->secrets[i].version, (void *)w);
}

void daemon_secrets_gc(struct daemon *d)
{
    struct strmap keep;
    strmap_init(&keep);
    DAEMON_WL_FOREACH(d, w) {
        keep_versions(&keep, w->spec);
        keep_versions(&keep, w->inst_spec);
    }
    secret_store_gc(d->secrets, &keep);
    strmap_free(&keep);
}

int daemon_secret_set(struct daemon *d, const char *name, const void *value, size_t len, bool *changed,
                      struct apply_result *r, struct duet_err *err)
{
    memset(r, 0, sizeof(*r));
    r->status = APPLY_OK;
    if (d->degraded[0])
        return duet_err_set(err, EAGAIN, "%s", d->degraded);
    if (secret_store_set(d->secrets, name, value, len, changed, err) < 0)
        return -1;
    if (!*changed)
        return 0;
    /* Its applied users, as their specs stand: applied again, each seals
     * the new value into a new version, so each is replaced.  Ad-hoc
     * workloads (duet run) keep the value they started with. */
    char **texts = malloc((d->wls.len + 1) * sizeof(*texts));
    size_t n = 0;
    if (!texts)
        abort();
    DAEMON_WL_FOREACH(d, w)
        if (!w->deleted && !w->rm && !w->temp_of && wl_uses_secret(w->spec, name))
            texts[n++] = w->spec_json;
    daemon_event(d, NULL, "secret", "secret %s set%s", name, n ? ", replacing the workloads that use it" : "");
    if (n) {
        struct manifest_set *set = manifest_set_new();
        char label[96];
        snprintf(label, sizeof(label), "secret %s", name);
        specjson_load(set, label, texts, n);
        struct apply_opts o = {0};
        daemon_apply(d, set, &o, r);
    }
    free(texts);
    return 0;
}

int daemon_secret_remove(struct daemon *d, const char *name, struct duet_err *err)
{
    if (d->degraded[0])
        return duet_err_set(err, EAGAIN, "%s", d->degraded);
    char users[512] = "";
    size_t o = 0, n = 0;
    DAEMON_WL_FOREACH(d, w) {
        if (!wl_uses_secret(w->spec, name) && !wl_uses_secret(w->inst_spec, name))
            continue;
        if (o < sizeof(users))
            o += (size_t)snprintf(users + o, sizeof(users) - o, "%s%s", n ? ", " : "", w->name);
        n++;
    }
    if (n)
        return duet_err_set(err, EBUSY,
                            "secret %s is used by %s; take it out of %s manifest%s and apply, or delete %s, "
                            "then remove it",
                            name, users, n == 1 ? "its" : "their", n == 1 ? "" : "s", n == 1 ? "it" : "them");
    if (secret_store_remove(d->secrets, name, err) < 0)
        return -1;
    daemon_event(d, NULL, "secret", "secret %s removed", name);
    return 0;
}
