/*
 * domain.h - libvirt domain XML for a duet workload.
 *
 * Every value is escaped for XML; a value that XML cannot carry (control
 * characters, invalid UTF-8) is refused with an error instead of being
 * passed on, so no workload name, path or kernel command line can add or
 * close an element.  The workload's name and the owning duet instance go
 * into <metadata>, which is how `recover` finds duet's domains again.
 */
#ifndef DUET_VM_DOMAIN_H
#define DUET_VM_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define VM_METADATA_NS "https://duet.dev/xmlns/workload/1"
#define VM_METADATA_PREFIX "duet"

/* A host directory shared into the guest (virtiofs). */
struct vm_domain_fs {
    const char *source;          /* the host directory, resolved */
    const char *tag;             /* what the guest mounts it by */
    const char *binary;          /* the virtiofsd libvirt starts for it */
};

struct vm_domain_spec {
    const char *name;            /* libvirt domain name */
    const char *uuid;            /* NULL: libvirt picks one */
    bool kvm;                    /* domain type kvm, else qemu (emulation) */
    uint64_t memory_kib;
    unsigned vcpus;
    const char *kernel, *initrd, *cmdline;   /* direct kernel boot, or NULL */
    const char *disk;            /* boot disk (the per-workload overlay), or NULL */
    const char *disk_format;     /* "qcow2" or "raw" */
    const char *cdrom;           /* a read-only CD-ROM (the cloud-init seed), or NULL */
    const char *console_log;     /* serial console written to this file */
    const char *status_log;      /* a second serial port written to this file (duet's guest init
                                    reports the workload's exit status there), or NULL */
    const char *agent_socket;    /* a virtio-serial port (agent_proto.h) whose host end is a unix
                                    socket QEMU listens on here, or NULL */
    const char *guest_agent;     /* the QEMU guest agent's port (qga.h), whose host end is a unix socket
                                    here that libvirt connects to, or NULL */
    const char *workload;        /* metadata: the workload's name */
    const char *owner;           /* metadata: which duet instance owns it */
    const char *net_bridge;      /* a virtio NIC on this bridge, or NULL for none */
    const char *net_mac;         /*   its MAC, "xx:xx:xx:xx:xx:xx" */
    const char *net_target;      /*   the host's tap device's name */
    const struct vm_domain_fs *fs;   /* shared directories; the guest's memory is then */
    size_t n_fs;                     /* shared memory, which vhost-user needs */
};

/* The domain XML in *out (malloc'd; the caller frees it). */
int vm_domain_xml(const struct vm_domain_spec *s, char **out, struct duet_err *err);

/* Appends s to out escaped for XML text and attributes; false when s holds
 * something XML 1.0 cannot carry. */
bool vm_xml_escape(const char *s, char *out, size_t len, size_t *written);

#endif
