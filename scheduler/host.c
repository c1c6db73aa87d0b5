#include "host.h"

#include <stdio.h>
#include <string.h>


uint64_t host_default_reserve_memory(uint64_t memory)
{
    return memory / 8 < HOST_DEFAULT_RESERVE_MEMORY ? memory / 8 : HOST_DEFAULT_RESERVE_MEMORY;
}

void host_info_from_spec(struct host_info *h, const struct host_spec *spec)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", spec->name);
    snprintf(h->source, sizeof(h->source), "Host document %s:%u", spec->pos.file, spec->pos.line);
    h->cpus = spec->cpus;
    h->memory = spec->memory;
    h->reserve_cpus = spec->reserve_cpus;
    h->reserve_memory = spec->reserve_memory_set ? spec->reserve_memory : host_default_reserve_memory(spec->memory);
    h->overcommit_cpu = spec->overcommit_cpu;
    h->overcommit_memory = spec->overcommit_memory;

    struct driver_caps *vm = &h->backend[BACKEND_VM];
    vm->available = spec->vm_available;
    vm->kvm = spec->vm_kvm;
    vm->guest_kernel = spec->vm_guest_kernel;
    vm->attach = true;
    vm->virtiofs = vm->guest_virtiofs = spec->vm_virtiofs;
    vm->start_ms = vm->kvm ? DRIVER_EST_VM_START_KVM_MS : DRIVER_EST_VM_START_TCG_MS;
    vm->memory_overhead = vm->kvm ? DRIVER_EST_VM_OVERHEAD_KVM : DRIVER_EST_VM_OVERHEAD_TCG;
    vm->memory_floor = DRIVER_VM_MEMORY_FLOOR;
    snprintf(vm->description, sizeof(vm->description), "%s",
             !vm->available ? "unavailable" : vm->kvm ? "kvm" : "qemu (no kvm)");
    if (!vm->available)
        snprintf(vm->unavailable_reason, sizeof(vm->unavailable_reason),
                 "the Host document says spec.backends.vm.available: false");

    struct driver_caps *ct = &h->backend[BACKEND_CONTAINER];
    ct->available = spec->container_available;
    ct->start_ms = DRIVER_EST_CONTAINER_START_MS;
    ct->memory_overhead = DRIVER_EST_CONTAINER_OVERHEAD;
    ct->memory_floor = WL_MIN_MEMORY;
    ct->attach = true;
    snprintf(ct->description, sizeof(ct->description), "%s", ct->available ? "namespaces" : "unavailable");
    if (!ct->available)
        snprintf(ct->unavailable_reason, sizeof(ct->unavailable_reason),
                 "the Host document says spec.backends.container.available: false");
}

double host_cpu_capacity(const struct host_info *h)
{
    double c = (h->cpus - h->reserve_cpus) * h->overcommit_cpu;
    return c > 0 ? c : 0;
}

uint64_t host_memory_capacity(const struct host_info *h)
{
    if (h->reserve_memory >= h->memory)
        return 0;
    return (uint64_t)((double)(h->memory - h->reserve_memory) * h->overcommit_memory);
}
