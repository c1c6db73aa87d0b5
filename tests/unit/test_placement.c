/*
 * Placement rules of docs/placement.md as a table: a host, a workload, the
 * backend it must get (or unplaceable) and a phrase its reasons must carry.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "helpers.h"
#include "scheduler/placement.h"
#include "backends/vm/vm.h"

/* A host with both backends, KVM, a guest kernel, 8 CPUs and 16 GiB. */
static void host_full(struct host_info *h)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "test");
    h->cpus = 8;
    h->memory = 16ull << 30;
    h->overcommit_cpu = 1;
    h->overcommit_memory = 1;
    struct driver_caps *vm = &h->backend[BACKEND_VM], *ct = &h->backend[BACKEND_CONTAINER];
    vm->available = vm->kvm = vm->guest_kernel = vm->virtiofs = vm->guest_virtiofs = true;
    snprintf(vm->guest_kernel_path, sizeof(vm->guest_kernel_path), "/boot/vmlinuz-6.1.0-test");
    vm->start_ms = DRIVER_EST_VM_START_KVM_MS;
    vm->memory_overhead = DRIVER_EST_VM_OVERHEAD_KVM;
    vm->memory_floor = DRIVER_VM_MEMORY_FLOOR;
    snprintf(vm->description, sizeof(vm->description), "kvm");
    ct->available = true;
    vm->attach = ct->attach = true;
    ct->start_ms = DRIVER_EST_CONTAINER_START_MS;
    ct->memory_overhead = DRIVER_EST_CONTAINER_OVERHEAD;
    ct->memory_floor = WL_MIN_MEMORY;
}

enum host_variant { FULL, NO_VM, NO_CONTAINER, NO_KERNEL, TCG, SMALL, TINY_TCG, NO_VIRTIOFSD, KERNEL_NO_VIRTIOFS };

static void host_make(struct host_info *h, enum host_variant v)
{
    host_full(h);
    switch (v) {
    case NO_VM:
        h->backend[BACKEND_VM].available = false;
        snprintf(h->backend[BACKEND_VM].unavailable_reason, DUET_ERR_MSG_MAX, "libvirt does not answer");
        break;
    case NO_CONTAINER:
        h->backend[BACKEND_CONTAINER].available = false;
        snprintf(h->backend[BACKEND_CONTAINER].unavailable_reason, DUET_ERR_MSG_MAX, "no overlay filesystem");
        break;
    case NO_KERNEL: h->backend[BACKEND_VM].guest_kernel = false; break;
    case NO_VIRTIOFSD: h->backend[BACKEND_VM].virtiofs = false; break;
    case KERNEL_NO_VIRTIOFS: h->backend[BACKEND_VM].guest_virtiofs = false; break;
    case TCG:
        h->backend[BACKEND_VM].kvm = false;
        h->backend[BACKEND_VM].start_ms = DRIVER_EST_VM_START_TCG_MS;
        h->backend[BACKEND_VM].memory_overhead = DRIVER_EST_VM_OVERHEAD_TCG;
        break;
    case SMALL:
        h->cpus = 2;
        h->memory = 1ull << 30;
        break;
    case TINY_TCG:
        host_make(h, TCG);
        h->memory = 240ull << 20;
        break;
    default: break;
    }
}

#define WL(extra) WL_HEAD extra
#define ROOTFS "  image: {rootfs: /r}\n  command: [/x]\n"
#define UNPLACEABLE ((enum backend_kind)-1)

struct pcase {
    enum host_variant host;
    const char *yaml;
    enum backend_kind want;
    const char *phrase;      /* in reasons, ruled_out or the unplaceable reason */
};

static const struct pcase pcases[] = {
    {FULL, WL(ROOTFS), BACKEND_CONTAINER, "role app prefers container (+10 container)"},
    {FULL, WL("  role: infrastructure\n" ROOTFS), BACKEND_VM, "role infrastructure prefers vm (+10 vm)"},
    {NO_KERNEL, WL("  role: infrastructure\n" ROOTFS), BACKEND_CONTAINER, "no guest kernel"},
    {NO_KERNEL, WL("  role: infrastructure\n  image: {rootfs: /r, kernel: /k}\n  command: [/x]\n"), BACKEND_VM,
     "role infrastructure prefers vm"},
    {FULL, WL("  isolation: strong\n" ROOTFS), BACKEND_VM, "isolation strong: a container shares the host's kernel"},
    {FULL, WL("  needs: {ownKernel: true}\n" ROOTFS), BACKEND_VM, "needs.ownKernel"},
    {FULL, WL("  needs: {devices: [/dev/ttyUSB0]}\n" ROOTFS), BACKEND_VM, "needs.devices"},
    {FULL, WL("  image: {rootfs: /r, keepDisk: true}\n  command: [/x]\n"), BACKEND_VM,
     "image.keepDisk keeps a VM's disk: a container has none"},
    {FULL, WL("  placement: container\n  image: {rootfs: /r, keepDisk: true}\n  command: [/x]\n"), UNPLACEABLE,
     "placement container cannot be honoured: image.keepDisk"},
    {FULL, WL("  image: {disk: /d.qcow2}\n"), BACKEND_VM, "image has only a disk"},
    {FULL, WL("  image: {kernel: /k, initrd: /i}\n"), BACKEND_VM, "image has no rootfs"},
    {NO_VM, WL("  image: {disk: /d.qcow2}\n"), UNPLACEABLE, "the VM backend is unavailable on this host: libvirt"},
    {NO_VM, WL("  role: infrastructure\n" ROOTFS), BACKEND_CONTAINER, "but vm is ruled out"},
    {NO_CONTAINER, WL(ROOTFS), BACKEND_VM, "the container backend is unavailable on this host: no overlay"},
    {FULL, WL("  role: infrastructure\n  resources: {memory: 32Mi}\n" ROOTFS), BACKEND_CONTAINER,
     "memory 32 MiB is below the VM floor of 64 MiB"},
    /* duet's guest kernel needs more than a small kernel of the user's */
    {FULL, WL("  placement: vm\n  resources: {memory: 96Mi}\n" ROOTFS), UNPLACEABLE,
     "memory 96 MiB is below the 128 MiB a VM booting duet's guest kernel needs (image.rootfs); give "
     "resources.memory: 128Mi or more"},
    {FULL, WL("  placement: vm\n  resources: {memory: 64Mi}\n  image: {kernel: /k, initrd: /i}\n"), BACKEND_VM,
     "placement vm set"},
    {TCG, WL("  role: infrastructure\n  needs: {startWithin: 1s}\n" ROOTFS), BACKEND_CONTAINER,
     "needs.startWithin 1s is shorter than a VM's start here (estimated 3s"},
    {FULL, WL("  needs: {startWithin: 5ms}\n" ROOTFS), UNPLACEABLE,
     "container: needs.startWithin 5ms is shorter than a container's start (estimated 15ms)"},
    {FULL, WL("  placement: vm\n  resources: {memory: 32Mi}\n" ROOTFS), UNPLACEABLE,
     "placement vm cannot be honoured: memory 32 MiB is below the VM floor"},
    {FULL, WL("  placement: container\n  needs: {ownKernel: true}\n" ROOTFS), UNPLACEABLE,
     "placement container cannot be honoured: needs.ownKernel"},
    {FULL, WL("  placement: vm\n" ROOTFS), BACKEND_VM, "placement vm set in the manifest"},
    {FULL, WL("  role: infrastructure\n  placement: container\n" ROOTFS), BACKEND_CONTAINER,
     "placement container set in the manifest"},
    {SMALL, WL("  resources: {memory: 2Gi}\n" ROOTFS), UNPLACEABLE, "not enough memory left on the host"},
    {SMALL, WL("  resources: {cpus: 4}\n" ROOTFS), UNPLACEABLE, "not enough CPU left on the host"},
    /* A VM's overhead tips it over where the container still fits. */
    {SMALL, WL("  role: infrastructure\n  resources: {memory: 1000Mi}\n" ROOTFS), BACKEND_CONTAINER,
     "as a vm it needs 1.02 GiB, 1 GiB is left"},
    /* Volumes: a VM gets them through virtiofs, or is ruled out saying why. */
#define VOL "  volumes: [{source: /srv/v, target: /data}]\n"
    {FULL, WL("  role: infrastructure\n" VOL ROOTFS), BACKEND_VM, "role infrastructure prefers vm"},
    {FULL, WL("  placement: vm\n  image: {disk: /d.qcow2}\n" VOL), BACKEND_VM, "placement vm set in the manifest"},
    {NO_VIRTIOFSD, WL("  role: infrastructure\n" VOL ROOTFS), BACKEND_CONTAINER,
     "volumes reach a VM through virtiofs and this host has no virtiofsd (apt-get install qemu-system-common)"},
    {NO_VIRTIOFSD, WL("  placement: vm\n  image: {disk: /d.qcow2}\n" VOL), UNPLACEABLE,
     "placement vm cannot be honoured: volumes reach a VM through virtiofs and this host has no virtiofsd"},
    {KERNEL_NO_VIRTIOFS, WL("  placement: vm\n" VOL ROOTFS), UNPLACEABLE,
     "the guest kernel /boot/vmlinuz-6.1.0-test has no virtiofs module"},
    /* a disk image boots its own kernel: duet's guest kernel is beside the point */
    {KERNEL_NO_VIRTIOFS, WL("  placement: vm\n  image: {disk: /d.qcow2}\n" VOL), BACKEND_VM, "placement vm set"},
    {NO_VIRTIOFSD, WL("  role: infrastructure\n" ROOTFS), BACKEND_VM, "role infrastructure prefers vm"},
    /* Scoring: small memory and a tight start budget do not outweigh the role... */
    {FULL, WL("  role: infrastructure\n  resources: {memory: 128Mi}\n  needs: {startWithin: 2s}\n" ROOTFS), BACKEND_VM,
     "score: vm 10, container 5"},
    /* ...emulation does: without KVM an infrastructure workload is a
     * container unless it asks for a VM's isolation, */
    {TCG, WL("  role: infrastructure\n" ROOTFS), BACKEND_CONTAINER,
     "no KVM on this host: as a VM its code would run under emulation, typically 10x or more slower than as a "
     "container (+12 container)"},
    {TCG, WL("  role: infrastructure\n" ROOTFS), BACKEND_CONTAINER, "score: vm 10, container 13"},
    {TCG, WL("  role: infrastructure\n" ROOTFS), BACKEND_CONTAINER,
     "emulation (no KVM on this host) outweighs role infrastructure's preference for vm (score: vm 10, "
     "container 13)"},
    {TCG, WL("  role: infrastructure\n  resources: {memory: 128Mi}\n  needs: {startWithin: 5s}\n" ROOTFS),
     BACKEND_CONTAINER, "score: vm 10, container 18"},
    {TINY_TCG, WL("  role: infrastructure\n  resources: {memory: 128Mi}\n  needs: {startWithin: 5s}\n" ROOTFS),
     BACKEND_CONTAINER, "score: vm 10, container 20"},
    /* ...and when it does, or is pinned, the plan says what emulation costs. */
    {TCG, WL("  role: infrastructure\n  isolation: strong\n" ROOTFS), BACKEND_VM,
     "runs under emulation here (no KVM): expect its code 10x or more slower than in a container, and a start of "
     "3s (estimated)"},
    {TCG, WL("  placement: vm\n" ROOTFS), BACKEND_VM, "runs under emulation here (no KVM)"},
    {TCG, WL("  image: {disk: /d.qcow2}\n"), BACKEND_VM, "runs under emulation here (no KVM)"},
};

static const char *find_phrase(const struct placement *p, const char *phrase)
{
    for (size_t i = 0; i < p->n_reasons; i++)
        if (strstr(p->reasons[i], phrase))
            return p->reasons[i];
    for (int b = 0; b < BACKEND_COUNT; b++)
        if (p->ruled_out[b] && strstr(p->ruled_out[b], phrase))
            return p->ruled_out[b];
    if (p->unplaceable && strstr(p->unplaceable, phrase))
        return p->unplaceable;
    return NULL;
}

static void dump(const struct placement *p, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "placed=%d backend=%s; ", p->placed, backend_kind_name(p->backend));
    for (size_t i = 0; i < p->n_reasons && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "[%s] ", p->reasons[i]);
    for (int b = 0; b < BACKEND_COUNT && o < len; b++)
        if (p->ruled_out[b])
            o += (size_t)snprintf(buf + o, len - o, "{%s out: %s} ", backend_kind_name(b), p->ruled_out[b]);
    if (p->unplaceable && o < len)
        snprintf(buf + o, len - o, "unplaceable: %s", p->unplaceable);
}

Test(placement, rules_table)
{
    for (size_t i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
        const struct pcase *c = &pcases[i];
        struct manifest_set *set = load_yaml(c->yaml);
        char buf[4096];
        cr_assert(manifest_set_ok(set), "case %zu: %s", i, diags_text(set, buf, sizeof(buf)));
        struct host_info h;
        host_make(&h, c->host);
        struct plan *p = plan_new(set, &h);
        const struct placement *pl = &p->items[0];
        dump(pl, buf, sizeof(buf));
        if (c->want == UNPLACEABLE) {
            cr_expect_not(pl->placed, "case %zu: want unplaceable: %s", i, buf);
            cr_expect_eq(p->n_unplaceable, 1, "case %zu", i);
        } else {
            cr_expect(pl->placed, "case %zu: want %s: %s", i, backend_kind_name(c->want), buf);
            cr_expect_eq(pl->backend, c->want, "case %zu: want %s: %s", i, backend_kind_name(c->want), buf);
        }
        cr_expect(find_phrase(pl, c->phrase), "case %zu: want \"%s\" in: %s", i, c->phrase, buf);
        plan_free(p);
        manifest_set_free(set);
    }
}

/* duet run -i/-t: the daemon sets spec.attach; a backend that cannot
 * attach the command is ruled out, named. */
Test(placement, an_attached_run_goes_where_its_command_can_be_attached)
{
    static const struct {
        const char *spec;
        bool container_attaches;
        enum backend_kind want;
        const char *phrase;
    } cases[] = {
        {"{placement: vm, image: {rootfs: /r}, command: [/x]}", true, BACKEND_VM, "placement vm set"},
        {"{placement: vm, image: {disk: /d}}", true, UNPLACEABLE,
         "attaches to a command duet-vminit runs, and a VM booting its own disk image or kernel runs none"},
        {"{placement: vm, image: {kernel: /k, initrd: /i}}", true, UNPLACEABLE, "booting its own disk image or kernel"},
        {"{role: infrastructure, image: {rootfs: /r}, command: [/x]}", false, BACKEND_VM,
         "duet run -i/-t cannot attach to the command of a container on this host"},
        {"{image: {rootfs: /r}, command: [/x]}", true, BACKEND_CONTAINER, "role app prefers container"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml), "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: r}\nspec: %s\n",
                 cases[i].spec);
        struct manifest_set *set = load_yaml(yaml);
        char buf[4096];
        cr_assert(manifest_set_ok(set), "case %zu: %s", i, diags_text(set, buf, sizeof(buf)));
        set->workloads[0]->attach = WL_ATTACH_TTY;
        struct host_info h;
        host_make(&h, FULL);
        h.backend[BACKEND_CONTAINER].attach = cases[i].container_attaches;
        struct plan *p = plan_new(set, &h);
        const struct placement *pl = &p->items[0];
        dump(pl, buf, sizeof(buf));
        if (cases[i].want == UNPLACEABLE)
            cr_expect_not(pl->placed, "case %zu: %s", i, buf);
        else
            cr_expect(pl->placed && pl->backend == cases[i].want, "case %zu: %s", i, buf);
        cr_expect(find_phrase(pl, cases[i].phrase), "case %zu: want \"%s\" in: %s", i, cases[i].phrase, buf);
        plan_free(p);
        manifest_set_free(set);
    }
}

static const char fleet[] =
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: web}\n"
    "spec: {image: {rootfs: /r}, command: [/x], dependsOn: [api, cache]}\n---\n"
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: api}\n"
    "spec: {image: {rootfs: /r}, command: [/x], dependsOn: [db]}\n---\n"
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: cache}\nspec: {image: {rootfs: /r}, command: [/x]}\n---\n"
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: db}\n"
    "spec: {role: infrastructure, image: {disk: /d}, resources: {memory: 1Gi, cpus: 1.5}}\n";

Test(placement, start_order_and_admission_follow_dependencies)
{
    struct manifest_set *set = load_yaml(fleet);
    cr_assert(manifest_set_ok(set));
    struct host_info h;
    host_make(&h, FULL);
    struct plan *p = plan_new(set, &h);
    static const char *const names[] = {"cache", "db", "api", "web"};
    static const unsigned orders[] = {0, 0, 1, 2};
    for (size_t i = 0; i < 4; i++) {
        cr_expect_str_eq(p->items[i].w->name, names[i], "position %zu", i);
        cr_expect_eq(p->items[i].start_order, orders[i], "%s", names[i]);
        cr_expect(p->items[i].placed);
    }
    /* db is a VM: 2 whole vCPUs and 1 GiB + overhead; the others 1 CPU and 512 MiB each */
    cr_expect_eq(p->items[1].cpus, 2);
    cr_expect_eq(p->items[1].memory, (1ull << 30) + DRIVER_EST_VM_OVERHEAD_KVM);
    cr_expect_eq(p->cpu_used, 5);
    cr_expect_eq(p->memory_used, (1ull << 30) + DRIVER_EST_VM_OVERHEAD_KVM + 3 * WL_DEFAULT_MEMORY);
    plan_free(p);
    manifest_set_free(set);
}

Test(placement, dependents_of_the_unplaceable_are_unplaceable)
{
    struct manifest_set *set = load_yaml(fleet);
    struct host_info h;
    host_make(&h, NO_VM);
    struct plan *p = plan_new(set, &h);
    cr_expect_eq(p->n_unplaceable, 3);
    cr_expect_str_eq(p->items[2].w->name, "api");
    cr_expect_str_eq(p->items[2].unplaceable, "depends on \"db\", which is unplaceable");
    cr_expect_str_eq(p->items[3].unplaceable, "depends on \"api\", which is unplaceable");
    cr_expect(p->items[0].placed, "cache depends on nothing");
    plan_free(p);
    manifest_set_free(set);
}

Test(placement, capacity_is_first_come_in_start_order)
{
    /* Three 400 MiB containers on a host with 1 GiB less a 128 MiB reserve: the third does not fit. */
    char yaml[2048] = "";
    for (int i = 0; i < 3; i++) {
        char doc[256];
        snprintf(doc, sizeof(doc),
                 "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: w%d}\n"
                 "spec: {image: {rootfs: /r}, command: [/x], resources: {memory: 400Mi}}\n",
                 i);
        strcat(yaml, doc);
    }
    struct manifest_set *set = load_yaml(yaml);
    struct host_info h;
    host_make(&h, SMALL);
    h.reserve_memory = host_default_reserve_memory(h.memory);
    cr_expect_eq(h.reserve_memory, 128ull << 20);
    struct plan *p = plan_new(set, &h);
    cr_expect(p->items[0].placed);
    cr_expect(p->items[1].placed);
    cr_expect_not(p->items[2].placed);
    cr_expect(strstr(p->items[2].unplaceable, "as a container it needs 400 MiB, 96 MiB is left"), "%s",
              p->items[2].unplaceable);
    plan_free(p);
    manifest_set_free(set);
}

Test(placement, host_document_becomes_host_info)
{
    struct manifest_set *set = load_yaml("apiVersion: duet/v1\nkind: Host\nmetadata: {name: pi}\n"
                                         "spec: {cpus: 4, memory: 4Gi, backends: {vm: {available: false}}}\n");
    cr_assert_not_null(set->host);
    struct host_info h;
    host_info_from_spec(&h, set->host);
    cr_expect_str_eq(h.name, "pi");
    cr_expect_eq(h.reserve_memory, 256ull << 20, "default reserve");
    cr_expect_eq(h.overcommit_cpu, 4.0);
    cr_expect_eq(host_cpu_capacity(&h), 16.0);
    cr_expect_eq(host_memory_capacity(&h), (4ull << 30) - (256ull << 20));
    cr_expect_not(h.backend[BACKEND_VM].available);
    cr_expect(strstr(h.backend[BACKEND_VM].unavailable_reason, "available: false"));
    cr_expect(h.backend[BACKEND_CONTAINER].available);
    cr_expect(h.backend[BACKEND_VM].virtiofs && h.backend[BACKEND_VM].guest_virtiofs, "volumes reach VMs by default");
    manifest_set_free(set);
    /* A described host without virtiofs: a VM with volumes is ruled out
     * there, and says why. */
    set = load_yaml("apiVersion: duet/v1\nkind: Host\nmetadata: {name: old}\n"
                    "spec: {cpus: 4, memory: 4Gi, backends: {vm: {virtiofs: false}}}\n---\n" WL_HEAD
                    "  isolation: strong\n  image: {rootfs: /r}\n  command: [/x]\n"
                    "  volumes: [{source: /srv/v, target: /v}]\n");
    char buf[1024];
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    host_info_from_spec(&h, set->host);
    cr_expect_not(h.backend[BACKEND_VM].virtiofs);
    struct plan *p = plan_new(set, &h);
    cr_expect_eq(p->n_unplaceable, 1);
    cr_expect(p->items[0].unplaceable && strstr(p->items[0].unplaceable, "no virtiofsd"), "%s",
              p->items[0].unplaceable ? p->items[0].unplaceable : "(placed)");
    plan_free(p);
    manifest_set_free(set);
}

Test(placement, long_chains_are_ordered_without_recursion)
{
    /* 3000 workloads, each depending on the one before. */
    size_t n = 3000, cap = n * 256;
    char *yaml = malloc(cap);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(yaml + o, cap - o, "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: w%zu}\n"
                                                 "spec: {image: {rootfs: /r}, command: [/x], resources: {memory: 4Mi, cpus: 0.001}",
                              i);
        if (i)
            o += (size_t)snprintf(yaml + o, cap - o, ", dependsOn: [w%zu]", i - 1);
        o += (size_t)snprintf(yaml + o, cap - o, "}\n");
    }
    struct manifest_set *set = load_yaml(yaml);
    char buf[1024];
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    struct host_info h;
    host_make(&h, FULL);
    struct plan *p = plan_new(set, &h);
    cr_expect_eq(p->n_unplaceable, 0);
    cr_expect_eq(p->items[n - 1].start_order, n - 1);
    cr_expect_str_eq(p->items[n - 1].w->name, "w2999");
    plan_free(p);
    manifest_set_free(set);
    free(yaml);
}

/* What overturned the role is the first reason: the one line apply's WHY
 * shows. */
Test(placement, a_decision_against_the_role_says_why_first)
{
    struct manifest_set *set = load_yaml(WL("  role: infrastructure\n" ROOTFS));
    cr_assert(manifest_set_ok(set));
    struct host_info h;
    host_make(&h, TCG);
    struct plan *p = plan_new(set, &h);
    const struct placement *pl = &p->items[0];
    cr_assert_eq(pl->backend, BACKEND_CONTAINER);
    cr_assert_gt(pl->n_reasons, 1);
    cr_expect(strstr(pl->reasons[0], "emulation (no KVM on this host) outweighs role infrastructure's preference"),
              "%s", pl->reasons[0]);
    plan_free(p);
    manifest_set_free(set);
    /* with KVM nothing is overturned: the role leads */
    set = load_yaml(WL("  role: infrastructure\n" ROOTFS));
    host_make(&h, FULL);
    p = plan_new(set, &h);
    cr_expect(strstr(p->items[0].reasons[0], "role infrastructure prefers vm (+10 vm)"), "%s", p->items[0].reasons[0]);
    plan_free(p);
    manifest_set_free(set);
}
