#include "plan_output.h"
#include "common/utf8.h"
#include "manifests/hostpath.h"

#include <string.h>

#include "common/jsonw.h"
#include "common/units.h"

static void backend_json(struct jsonw *j, const char *key, const struct driver_caps *c)
{
    jsonw_key(j, key);
    jsonw_object_begin(j);
    jsonw_kv_bool(j, "available", c->available);
    jsonw_kv_string(j, "description", c->description);
    if (!c->available) {
        jsonw_kv_string(j, "reason", c->unavailable_reason);
        if (c->unavailable_fix[0])
            jsonw_kv_string(j, "fix", c->unavailable_fix);
    }
    jsonw_kv_uint(j, "start_ms", c->start_ms);
    jsonw_kv_uint(j, "memory_overhead", c->memory_overhead);
    jsonw_kv_bool(j, "measured", c->measured);
    if (c->guest_kernel && c->guest_kernel_path[0])
        jsonw_kv_string(j, "guest_kernel", c->guest_kernel_path);
    jsonw_object_end(j);
}

static void pair_json(struct jsonw *j, const char *key, const char *k1, double cpus, const char *k2, uint64_t mem)
{
    jsonw_key(j, key);
    jsonw_object_begin(j);
    jsonw_kv_number(j, k1, cpus);
    jsonw_kv_uint(j, k2, mem);
    jsonw_object_end(j);
}

static void host_json(struct jsonw *j, const struct plan *p)
{
    const struct host_info *h = p->host;
    jsonw_key(j, "host");
    jsonw_object_begin(j);
    jsonw_kv_string(j, "name", h->name);
    jsonw_kv_string(j, "source", h->source);
    jsonw_kv_number(j, "cpus", h->cpus);
    jsonw_kv_uint(j, "memory", h->memory);
    jsonw_kv_string(j, "vm_backend", h->backend[BACKEND_VM].description);
    jsonw_kv_string(j, "container_backend", h->backend[BACKEND_CONTAINER].description);
    pair_json(j, "reserve", "cpus", h->reserve_cpus, "memory", h->reserve_memory);
    jsonw_key(j, "overcommit");
    jsonw_object_begin(j);
    jsonw_kv_number(j, "cpu", h->overcommit_cpu);
    jsonw_kv_number(j, "memory", h->overcommit_memory);
    jsonw_object_end(j);
    pair_json(j, "capacity", "cpus", p->cpu_capacity, "memory", p->memory_capacity);
    pair_json(j, "allocated", "cpus", p->cpu_used, "memory", p->memory_used);
    jsonw_key(j, "backends");
    jsonw_object_begin(j);
    backend_json(j, "vm", &h->backend[BACKEND_VM]);
    backend_json(j, "container", &h->backend[BACKEND_CONTAINER]);
    jsonw_object_end(j);
    jsonw_object_end(j);
}

static void ruled_out_json(struct jsonw *j, const struct placement *pl)
{
    jsonw_key(j, "ruled_out");
    jsonw_object_begin(j);
    for (int b = 0; b < BACKEND_COUNT; b++)
        if (pl->ruled_out[b])
            jsonw_kv_string(j, backend_kind_name((enum backend_kind)b), pl->ruled_out[b]);
    jsonw_object_end(j);
}

static void images_json(struct jsonw *j, const struct plan_images *imgs)
{
    jsonw_key(j, "images");
    jsonw_array_begin(j);
    for (size_t i = 0; imgs && i < imgs->n; i++) {
        const struct plan_image *pi = &imgs->v[i];
        jsonw_object_begin(j);
        jsonw_kv_string(j, "name", pi->w->name);
        jsonw_kv_string(j, "ref", pi->w->image.oci);
        jsonw_key(j, "in_store");
        if (pi->state == PLAN_IMAGE_UNKNOWN)
            jsonw_null(j);
        else
            jsonw_bool(j, pi->state == PLAN_IMAGE_STORED);
        if (pi->state == PLAN_IMAGE_STORED) {
            jsonw_kv_string(j, "id", pi->id);
            jsonw_kv_uint(j, "layers", pi->n_layers);
            jsonw_kv_uint(j, "size", pi->size);
            jsonw_key(j, "command");
            jsonw_array_begin(j);
            for (size_t k = 0; k < pi->n_command; k++)
                jsonw_string(j, pi->command[k]);
            jsonw_array_end(j);
        }
        if (pi->why[0])
            jsonw_kv_string(j, "reason", pi->why);
        jsonw_object_end(j);
    }
    jsonw_array_end(j);
}

static void disks_json(struct jsonw *j, const struct plan_images *imgs)
{
    jsonw_key(j, "disks_reset");
    jsonw_array_begin(j);
    for (size_t i = 0; imgs && i < imgs->n_disks; i++) {
        jsonw_object_begin(j);
        jsonw_kv_string(j, "name", imgs->disks[i].w->name);
        jsonw_kv_string(j, "kept", imgs->disks[i].kept);
        jsonw_kv_string(j, "spec", imgs->disks[i].now);
        jsonw_object_end(j);
    }
    jsonw_array_end(j);
}

int plan_print_json(const struct plan *p, const struct plan_images *imgs, FILE *out)
{
    struct jsonw j;
    jsonw_init(&j, out, true);
    jsonw_object_begin(&j);
    host_json(&j, p);
    jsonw_key(&j, "workloads");
    jsonw_array_begin(&j);
    for (size_t i = 0; i < p->n; i++) {
        const struct placement *pl = &p->items[i];
        if (!pl->placed)
            continue;
        jsonw_object_begin(&j);
        jsonw_kv_string(&j, "name", pl->w->name);
        jsonw_kv_string(&j, "backend", backend_kind_name(pl->backend));
        jsonw_key(&j, "reasons");
        jsonw_array_begin(&j);
        for (size_t r = 0; r < pl->n_reasons; r++)
            jsonw_string(&j, pl->reasons[r]);
        jsonw_array_end(&j);
        ruled_out_json(&j, pl);
        char warn[1024];
        if (hostpath_warning(pl->w, warn, sizeof(warn)))
            jsonw_kv_string(&j, "warning", warn);
        jsonw_kv_uint(&j, "start_order", pl->start_order);
        jsonw_kv_string(&j, "role", wl_role_name(pl->w->role));
        jsonw_kv_number(&j, "cpus", pl->cpus);
        jsonw_kv_uint(&j, "memory", pl->memory);
        if (pl->score[BACKEND_VM] || pl->score[BACKEND_CONTAINER]) {
            jsonw_key(&j, "score");
            jsonw_object_begin(&j);
            jsonw_kv_uint(&j, "vm", (uint64_t)pl->score[BACKEND_VM]);
            jsonw_kv_uint(&j, "container", (uint64_t)pl->score[BACKEND_CONTAINER]);
            jsonw_object_end(&j);
        }
        jsonw_object_end(&j);
    }
    jsonw_array_end(&j);
    jsonw_key(&j, "unplaceable");
    jsonw_array_begin(&j);
    for (size_t i = 0; i < p->n; i++) {
        const struct placement *pl = &p->items[i];
        if (pl->placed)
            continue;
        jsonw_object_begin(&j);
        jsonw_kv_string(&j, "name", pl->w->name);
        jsonw_kv_string(&j, "reason", pl->unplaceable);
        char warn[1024];
        if (hostpath_warning(pl->w, warn, sizeof(warn)))
            jsonw_kv_string(&j, "warning", warn);
        jsonw_kv_uint(&j, "start_order", pl->start_order);
        ruled_out_json(&j, pl);
        jsonw_object_end(&j);
    }
    jsonw_array_end(&j);
    images_json(&j, imgs);
    disks_json(&j, imgs);
    jsonw_object_end(&j);
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

static const char *sz(uint64_t b, char *buf)
{
    return units_size_format(b, buf, 32);
}

void plan_print_table(const struct plan *p, const struct plan_images *imgs, FILE *out)
{
    const struct host_info *h = p->host;
    char a[32], b[32], c[32];
    fprintf(out, "Host %s (%s): %g CPUs, %s memory; reserved for the host: %g CPUs, %s\n", h->name, h->source,
            h->cpus, sz(h->memory, a), h->reserve_cpus, sz(h->reserve_memory, b));
    for (int k = 0; k < BACKEND_COUNT; k++) {
        const struct driver_caps *cp = &h->backend[k];
        if (cp->available)
            fprintf(out, "  %-9s backend: %s\n", backend_kind_name((enum backend_kind)k), cp->description);
        else
            fprintf(out, "  %-9s backend: unavailable: %s%s%s%s\n", backend_kind_name((enum backend_kind)k),
                    cp->unavailable_reason, cp->unavailable_fix[0] ? " (" : "", cp->unavailable_fix,
                    cp->unavailable_fix[0] ? ")" : "");
    }
    fprintf(out, "Capacity for workloads: %g CPUs (overcommit %g), %s (overcommit %g); this plan uses %g CPUs, %s\n\n",
            p->cpu_capacity, h->overcommit_cpu, sz(p->memory_capacity, a), h->overcommit_memory, p->cpu_used,
            sz(p->memory_used, c));

    int wname = 4;
    for (size_t i = 0; i < p->n; i++) {
        int l = (int)strlen(p->items[i].w->name);
        wname = l > wname ? l : wname;
    }
    fprintf(out, "%-5s  %-*s  %-9s  %-14s  %5s  %s\n", "ORDER", wname, "NAME", "BACKEND", "ROLE", "CPUS", "MEMORY");
    for (size_t i = 0; i < p->n; i++) {
        const struct placement *pl = &p->items[i];
        if (!pl->placed)
            fprintf(out, "%-5u  %-*s  %-9s  %-14s  %5s  %s\n", pl->start_order, wname, pl->w->name, "-",
                    wl_role_name(pl->w->role), "-", "-");
        else
            fprintf(out, "%-5u  %-*s  %-9s  %-14s  %5g  %s\n", pl->start_order, wname, pl->w->name,
                    backend_kind_name(pl->backend), wl_role_name(pl->w->role), pl->cpus, sz(pl->memory, a));
    }
    fprintf(out, "\nWhy:\n");
    for (size_t i = 0; i < p->n; i++) {
        const struct placement *pl = &p->items[i];
        if (!pl->placed)
            continue;
        fprintf(out, "  %s -> %s\n", pl->w->name, backend_kind_name(pl->backend));
        for (size_t r = 0; r < pl->n_reasons; r++)
            fprintf(out, "    - %s\n", pl->reasons[r]);
        for (int k = 0; k < BACKEND_COUNT; k++)
            if (pl->ruled_out[k])
                fprintf(out, "    - %s ruled out: %s\n", backend_kind_name((enum backend_kind)k), pl->ruled_out[k]);
        char warn[1024];
        if (hostpath_warning(pl->w, warn, sizeof(warn)))
            fprintf(out, "    ! warning: hostAccess: %s\n", warn);
    }
    if (imgs && imgs->n) {
        fprintf(out, "\nImages:\n");
        for (size_t i = 0; i < imgs->n; i++) {
            const struct plan_image *pi = &imgs->v[i];
            fprintf(out, "  %s: %s\n", pi->w->name, pi->w->image.oci);
            if (pi->state == PLAN_IMAGE_MISSING) {
                fprintf(out, "    - not in duetd's store: apply pulls it first\n");
            } else if (pi->state == PLAN_IMAGE_UNKNOWN) {
                fprintf(out, "    - %s\n", pi->why);
            } else {
                char cmd[512];
                plan_image_command_text(pi, cmd, sizeof(cmd));
                fprintf(out, "    - in duetd's store: %.19s, %zu layer%s, %s\n", pi->id, pi->n_layers,
                        pi->n_layers == 1 ? "" : "s", sz(pi->size, a));
                fprintf(out, "    - runs: %s\n", cmd[0] ? cmd : "(nothing: the image has no Entrypoint or Cmd; give command)");
            }
        }
    }
    if (imgs && imgs->n_disks) {
        fprintf(out, "\nDisks that apply would reset (refused without --recreate NAME or image.keepDisk):\n");
        for (size_t i = 0; i < imgs->n_disks; i++) {
            char kept[1024], now[1024];
            snprintf(kept, sizeof(kept), "%s", imgs->disks[i].kept);
            snprintf(now, sizeof(now), "%s", imgs->disks[i].now);
            duet_text_mask(kept);
            duet_text_mask(now);
            fprintf(out, "  %s: its disk was made from %s; the spec now says %s\n", imgs->disks[i].w->name, kept,
                    now);
        }
    }
    if (p->n_unplaceable) {
        fprintf(out, "\nUnplaceable:\n");
        for (size_t i = 0; i < p->n; i++)
            if (!p->items[i].placed)
                fprintf(out, "  %s: %s\n", p->items[i].w->name, p->items[i].unplaceable);
    }
}
