/*
 * placement.c - the rules of docs/placement.md, in code.
 *
 * Every reason is a sentence a person reads in `duet plan`; the JSON output
 * carries the same strings.  Keep the two documents and this file in step.
 */
#include "placement.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/units.h"

void placement_cost(const struct workload_spec *w, const struct host_info *h, enum backend_kind b, double *cpus,
                    uint64_t *memory)
{
    if (b == BACKEND_VM) {
        *cpus = ceil(w->resources.cpus);
        *memory = w->resources.memory + h->backend[BACKEND_VM].memory_overhead;
    } else {
        *cpus = w->resources.cpus;
        *memory = w->resources.memory;
    }
}

static void add_reason(struct placement *p, const char *r)
{
    if (p->n_reasons < PLACEMENT_MAX_REASONS)
        p->reasons[p->n_reasons++] = r;
}

static const char *fmt_size(struct plan *pl, uint64_t b)
{
    char buf[32];
    return arena_strdup(&pl->arena, units_size_format(b, buf, sizeof(buf)));
}

static const char *fmt_ms(struct plan *pl, uint64_t ms)
{
    char buf[32];
    return arena_strdup(&pl->arena, units_duration_format(ms, buf, sizeof(buf)));
}

/* Why a backend cannot run w at all on this host, or NULL. */
static const char *ruled_out_static(struct plan *pl, const struct workload_spec *w, enum backend_kind b)
{
    const struct driver_caps *caps = &pl->host->backend[b];
    struct arena *a = &pl->arena;
    uint64_t budget = w->needs.start_within_ms;
    if (w->attach && caps->available && !caps->attach)
        return arena_printf(a, "duet run -i/-t cannot attach to the command of a %s on this host",
                            backend_kind_name(b));
    if (b == BACKEND_CONTAINER) {
        if (!caps->available)
            return arena_printf(a, "the container backend is unavailable on this host: %s", caps->unavailable_reason);
        if (w->needs.own_kernel)
            return "needs.ownKernel: a container shares the host's kernel";
        if (w->needs.n_devices)
            return "needs.devices: host devices are passed through to VMs only";
        if (!w->image.rootfs && !w->image.oci)
            return w->image.disk ? "image has only a disk: a container needs image.rootfs or image.oci"
                                 : "image has no rootfs: a container needs image.rootfs or image.oci";
        if (w->isolation == WL_ISOLATION_STRONG)
            return "isolation strong: a container shares the host's kernel";
        if (w->image.keep_disk)
            return "image.keepDisk keeps a VM's disk: a container has none (its data belongs in volumes)";
        if (budget && caps->start_ms > budget)
            return arena_printf(a, "needs.startWithin %s is shorter than a container's start (%s %s)",
                                fmt_ms(pl, budget), caps->measured ? "measured" : "estimated",
                                fmt_ms(pl, caps->start_ms));
        return NULL;
    }
    if (!caps->available)
        return arena_printf(a, "the VM backend is unavailable on this host: %s", caps->unavailable_reason);
    if (w->attach && (w->image.disk || w->image.kernel))
        return "duet run -i/-t attaches to a command duet-vminit runs, and a VM booting its own disk image or "
               "kernel runs none";
    /* Never accepted and dropped: a VM that ran without its volumes would
     * write the user's data into its own disk. */
    if (w->n_volumes && !caps->virtiofs)
        return "volumes reach a VM through virtiofs and this host has no virtiofsd (apt-get install "
               "qemu-system-common)";
    if (w->n_volumes && !w->image.disk && !w->image.kernel && caps->guest_kernel && !caps->guest_virtiofs)
        return arena_printf(a, "volumes reach a VM through virtiofs and the guest kernel %s has no virtiofs module",
                            caps->guest_kernel_path);
    if (!w->image.disk && !w->image.kernel && !caps->guest_kernel)
        return w->image.oci ? "an OCI image boots as a VM with duet's guest kernel, and this host has none (make "
                              "install puts one in PREFIX/lib/duet/kernel; or set guestKernel in "
                              "/etc/duet/duetd.yaml, docs/install.md)"
                            : "image has only a rootfs and this host has no guest kernel to boot it with (give "
                              "image.kernel; make install puts one in PREFIX/lib/duet/kernel; or set guestKernel "
                              "in /etc/duet/duetd.yaml, docs/install.md)";
    if (w->resources.memory < caps->memory_floor)
        return arena_printf(a, "memory %s is below the VM floor of %s", fmt_size(pl, w->resources.memory),
                            fmt_size(pl, caps->memory_floor));
    if (budget && caps->start_ms > budget)
        return arena_printf(a, "needs.startWithin %s is shorter than a VM's start here (%s %s, %s)",
                            fmt_ms(pl, budget), caps->measured ? "measured" : "estimated",
                            fmt_ms(pl, caps->start_ms), caps->description);
    if (!w->image.disk && !w->image.kernel && w->resources.memory < DRIVER_VM_GUEST_KERNEL_FLOOR)
        return arena_printf(a, "memory %s is below the %s a VM booting duet's guest kernel needs (image.%s); give "
                            "resources.memory: %lluMi or more",
                            fmt_size(pl, w->resources.memory), fmt_size(pl, DRIVER_VM_GUEST_KERNEL_FLOOR),
                            w->image.oci ? "oci" : "rootfs", (unsigned long long)(DRIVER_VM_GUEST_KERNEL_FLOOR >> 20));
    return NULL;
}

/* Why the capacity left cannot take w on b, or NULL. */
static const char *ruled_out_capacity(struct plan *pl, const struct workload_spec *w, enum backend_kind b)
{
    double cpus;
    uint64_t mem;
    placement_cost(w, pl->host, b, &cpus, &mem);
    double cpu_left = pl->cpu_capacity - pl->cpu_used;
    uint64_t mem_left = pl->memory_capacity - pl->memory_used;
    if (mem > mem_left)
        return arena_printf(&pl->arena, "not enough memory left on the host: as a %s it needs %s, %s is left",
                            backend_kind_name(b), fmt_size(pl, mem), fmt_size(pl, mem_left));
    if (cpus > cpu_left + 1e-9)
        return arena_printf(&pl->arena, "not enough CPU left on the host: as a %s it needs %g, %g is left",
                            backend_kind_name(b), cpus, cpu_left < 0 ? 0 : cpu_left);
    return NULL;
}

static void score_both(struct plan *pl, struct placement *p)
{
    const struct workload_spec *w = p->w;
    const struct host_info *h = pl->host;
    struct arena *a = &pl->arena;
    enum backend_kind pref = w->role == WL_ROLE_INFRASTRUCTURE ? BACKEND_VM : BACKEND_CONTAINER;
    p->score[pref] += SCORE_ROLE;
    add_reason(p, arena_printf(a, "role %s prefers %s (+%d %s)", wl_role_name(w->role), backend_kind_name(pref),
                               SCORE_ROLE, backend_kind_name(pref)));

    /* Memory: a VM's fixed overhead weighs more the smaller the workload. */
    uint64_t over = h->backend[BACKEND_VM].memory_overhead;
    double ratio = (double)over / (double)w->resources.memory;
    int mem_pts = (int)lround(SCORE_MEMORY_MAX / 2.0 * (ratio > 2.0 ? 2.0 : ratio));
    /* The largest term against the role: the headline when it wins. */
    int top = 0;
    const char *top_what = NULL;
    if (mem_pts > 0) {
        top = mem_pts;
        top_what = "a VM's memory overhead";
        p->score[BACKEND_CONTAINER] += mem_pts;
        add_reason(p, arena_printf(a, "a VM adds %s to its %s of memory (+%d container)", fmt_size(pl, over),
                                   fmt_size(pl, w->resources.memory), mem_pts));
    }

    /* Start time: only matters against a budget the workload declared. */
    uint64_t budget = w->needs.start_within_ms, vm_start = h->backend[BACKEND_VM].start_ms;
    if (budget && vm_start * 2 > budget) {
        if (SCORE_START > top)
            top = SCORE_START, top_what = "a VM's start against needs.startWithin";
        p->score[BACKEND_CONTAINER] += SCORE_START;
        add_reason(p, arena_printf(a, "a VM's start (%s) takes most of needs.startWithin %s (+%d container)",
                                   fmt_ms(pl, vm_start), fmt_ms(pl, budget), SCORE_START));
    }

    /* Density: placing it as a VM would leave less than a tenth of memory. */
    double cpus;
    uint64_t mem;
    placement_cost(w, h, BACKEND_VM, &cpus, &mem);
    if (pl->memory_capacity && (pl->memory_capacity - pl->memory_used - mem) * 10 < pl->memory_capacity) {
        if (SCORE_DENSITY > top)
            top = SCORE_DENSITY, top_what = "the host's memory left after a VM";
        p->score[BACKEND_CONTAINER] += SCORE_DENSITY;
        add_reason(p, arena_printf(a, "as a VM it would leave less than 10%% of host memory free (+%d container)",
                                   SCORE_DENSITY));
    }

    if (!h->backend[BACKEND_VM].kvm) {
        if (SCORE_EMULATION > top)
            top = SCORE_EMULATION, top_what = "emulation (no KVM on this host)";
        p->score[BACKEND_CONTAINER] += SCORE_EMULATION;
        add_reason(p, arena_printf(a,
                                   "no KVM on this host: as a VM its code would run under emulation, typically 10x "
                                   "or more slower than as a container (+%d container)",
                                   SCORE_EMULATION));
    }

    int sv = p->score[BACKEND_VM], sc = p->score[BACKEND_CONTAINER];
    p->backend = sv > sc ? BACKEND_VM : sc > sv ? BACKEND_CONTAINER : pref;
    add_reason(p, arena_printf(a, "score: vm %d, container %d", sv, sc));
    /* Against the role: said first, where a one-line summary (apply's
     * WHY) looks, with what outweighed it. */
    if (p->backend != pref && top_what && p->n_reasons < PLACEMENT_MAX_REASONS) {
        memmove(&p->reasons[1], &p->reasons[0], p->n_reasons * sizeof(p->reasons[0]));
        p->n_reasons++;
        p->reasons[0] = arena_printf(a, "%s outweighs role %s's preference for %s (score: vm %d, container %d)",
                                     top_what, wl_role_name(w->role), backend_kind_name(pref), sv, sc);
    }
}

static void place_one(struct plan *pl, struct placement *p, const struct strmap *index)
{
    const struct workload_spec *w = p->w;
    struct arena *a = &pl->arena;

    for (size_t i = 0; i < w->n_depends_on; i++) {
        const struct placement *dep = strmap_get(index, w->depends_on[i].name);
        if (dep && !dep->placed) {
            p->unplaceable = arena_printf(a, "depends on \"%s\", which is unplaceable", dep->w->name);
            return;
        }
    }
    for (int b = 0; b < BACKEND_COUNT; b++) {
        p->ruled_out[b] = ruled_out_static(pl, w, (enum backend_kind)b);
        if (!p->ruled_out[b])
            p->ruled_out[b] = ruled_out_capacity(pl, w, (enum backend_kind)b);
    }

    if (w->placement != WL_PLACEMENT_AUTO) {
        enum backend_kind want = w->placement == WL_PLACEMENT_VM ? BACKEND_VM : BACKEND_CONTAINER;
        enum backend_kind other = want == BACKEND_VM ? BACKEND_CONTAINER : BACKEND_VM;
        if (p->ruled_out[want]) {
            p->unplaceable = arena_printf(a, "placement %s cannot be honoured: %s", backend_kind_name(want),
                                          p->ruled_out[want]);
            return;
        }
        p->backend = want;
        if (!p->ruled_out[other])
            p->ruled_out[other] = arena_printf(a, "placement %s set in the manifest", backend_kind_name(want));
        add_reason(p, arena_printf(a, "placement %s set in the manifest", backend_kind_name(want)));
    } else if (p->ruled_out[BACKEND_VM] && p->ruled_out[BACKEND_CONTAINER]) {
        p->unplaceable = arena_printf(a, "no backend can run it: vm: %s; container: %s", p->ruled_out[BACKEND_VM],
                                      p->ruled_out[BACKEND_CONTAINER]);
        return;
    } else if (p->ruled_out[BACKEND_VM] || p->ruled_out[BACKEND_CONTAINER]) {
        p->backend = p->ruled_out[BACKEND_VM] ? BACKEND_CONTAINER : BACKEND_VM;
        enum backend_kind pref = w->role == WL_ROLE_INFRASTRUCTURE ? BACKEND_VM : BACKEND_CONTAINER;
        if (p->backend == pref)
            add_reason(p, arena_printf(a, "role %s prefers %s", wl_role_name(w->role), backend_kind_name(pref)));
        else
            add_reason(p, arena_printf(a, "role %s prefers %s, but %s is ruled out", wl_role_name(w->role),
                                       backend_kind_name(pref), backend_kind_name(pref)));
        add_reason(p, arena_printf(a, "%s is the only backend left", backend_kind_name(p->backend)));
    } else {
        score_both(pl, p);
    }
    /* Where nothing weighed it (pinned, or the only backend left), a VM
     * under emulation is still said for what it costs here. */
    const struct driver_caps *vm = &pl->host->backend[BACKEND_VM];
    if (p->backend == BACKEND_VM && !vm->kvm && (w->placement != WL_PLACEMENT_AUTO || p->ruled_out[BACKEND_CONTAINER]))
        add_reason(p, arena_printf(a,
                                   "runs under emulation here (no KVM): expect its code 10x or more slower than in "
                                   "a container, and a start of %s (%s)",
                                   fmt_ms(pl, vm->start_ms), vm->measured ? "measured" : "estimated"));
    p->placed = true;
    placement_cost(w, pl->host, p->backend, &p->cpus, &p->memory);
    pl->cpu_used += p->cpus;
    pl->memory_used += p->memory;
}

/* Kahn's algorithm by levels: order = 1 + the highest order among deps.
 * The manifests were validated, so the graph has no cycle. */
static void compute_start_order(const struct manifest_set *set, unsigned *order)
{
    size_t n = set->n_workloads;
    struct strmap index;
    strmap_init(&index);
    for (size_t i = 0; i < n; i++)
        strmap_put(&index, set->workloads[i]->name, (void *)(i + 1));
    size_t *pending = calloc(n ? n : 1, sizeof(*pending));   /* unresolved deps */
    size_t *dependents_start = calloc(n + 1, sizeof(size_t)), *dependents;
    if (!pending || !dependents_start)
        abort();
    size_t edges = 0;
    for (size_t i = 0; i < n; i++) {
        const struct workload_spec *w = set->workloads[i];
        for (size_t j = 0; j < w->n_depends_on; j++) {
            size_t d = (size_t)strmap_get(&index, w->depends_on[j].name);
            if (d) {
                pending[i]++;
                dependents_start[d - 1 + 1]++;
                edges++;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        dependents_start[i + 1] += dependents_start[i];
    dependents = malloc((edges ? edges : 1) * sizeof(*dependents));
    size_t *fill = calloc(n ? n : 1, sizeof(*fill)), *queue = malloc((n ? n : 1) * sizeof(*queue));
    if (!dependents || !fill || !queue)
        abort();
    for (size_t i = 0; i < n; i++) {
        const struct workload_spec *w = set->workloads[i];
        for (size_t j = 0; j < w->n_depends_on; j++) {
            size_t d = (size_t)strmap_get(&index, w->depends_on[j].name);
            if (d)
                dependents[dependents_start[d - 1] + fill[d - 1]++] = i;
        }
    }
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++) {
        order[i] = 0;
        if (pending[i] == 0)
            queue[tail++] = i;
    }
    while (head < tail) {
        size_t u = queue[head++];
        for (size_t k = dependents_start[u]; k < dependents_start[u + 1]; k++) {
            size_t v = dependents[k];
            if (order[v] < order[u] + 1)
                order[v] = order[u] + 1;
            if (--pending[v] == 0)
                queue[tail++] = v;
        }
    }
    free(pending);
    free(dependents_start);
    free(dependents);
    free(fill);
    free(queue);
    strmap_free(&index);
}

static int by_order(const void *a, const void *b, void *ctx)
{
    const unsigned *order = ctx;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    if (order[x] != order[y])
        return order[x] < order[y] ? -1 : 1;
    return x < y ? -1 : (x > y);
}

struct plan *plan_new(const struct manifest_set *set, const struct host_info *host)
{
    struct plan *pl = calloc(1, sizeof(*pl));
    if (!pl)
        abort();
    arena_init(&pl->arena);
    pl->host = host;
    pl->cpu_capacity = host_cpu_capacity(host);
    pl->memory_capacity = host_memory_capacity(host);
    size_t n = set->n_workloads;
    pl->n = n;
    pl->items = calloc(n ? n : 1, sizeof(*pl->items));
    unsigned *order = calloc(n ? n : 1, sizeof(*order));
    size_t *sorted = calloc(n ? n : 1, sizeof(*sorted));
    if (!pl->items || !order || !sorted)
        abort();
    compute_start_order(set, order);
    /* Admission in start order, then manifest order: what starts first is
     * served first, and the result does not depend on hash order. */
    for (size_t i = 0; i < n; i++)
        sorted[i] = i;
    qsort_r(sorted, n, sizeof(*sorted), by_order, order);
    struct strmap index;
    strmap_init(&index);
    for (size_t i = 0; i < n; i++) {
        struct placement *p = &pl->items[i];
        p->w = set->workloads[sorted[i]];
        p->start_order = order[sorted[i]];
        strmap_put(&index, p->w->name, p);
    }
    for (size_t i = 0; i < n; i++) {
        place_one(pl, &pl->items[i], &index);
        if (!pl->items[i].placed)
            pl->n_unplaceable++;
    }
    strmap_free(&index);
    free(order);
    free(sorted);
    return pl;
}

void plan_free(struct plan *p)
{
    if (!p)
        return;
    arena_release(&p->arena);
    free(p->items);
    free(p);
}
