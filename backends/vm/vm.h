/*
 * vm.h - libvirt virtual machines behind backends/driver.h.
 */
#ifndef DUET_VM_H
#define DUET_VM_H

#include "driver.h"

#define VM_DEFAULT_URI "qemu:///system"
#define VM_MEMORY_FLOOR (UINT64_C(64) << 20)

/* Fills caps for this host: does libvirt answer at uri, is KVM usable, is
 * there a kernel to boot rootfs images with.  guest_kernel may be NULL
 * (search the usual places).  Blocks for the libvirt round trip. */
int vm_backend_probe(const char *uri, const char *guest_kernel, struct driver_caps *caps, struct duet_err *err);

/* True when /dev/kvm answers KVM_GET_API_VERSION (or exists but only root
 * may open it: the daemon runs as root). */
bool vm_kvm_usable(void);

#endif
