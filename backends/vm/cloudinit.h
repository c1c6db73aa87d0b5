/*
 * cloudinit.h - the NoCloud seed a cloud disk image's cloud-init reads.
 *
 * A VM that boots its own disk image (image.disk) gets a read-only CD-ROM
 * labelled "cidata" holding
 *   meta-data       instance-id (duet-NAME: stable for the workload, so
 *                   cloud-init's once-per-instance steps run once) and
 *                   local-hostname (the workload's name)
 *   user-data       spec.cloudInit's userData as given, else an empty
 *                   #cloud-config
 *   network-config  spec.cloudInit's networkConfig as given, else the
 *                   fleet address as network-config version 2 (matched by
 *                   the NIC's MAC and named eth0); none without a NIC
 * which is what cloud-localds writes and what Debian's, Ubuntu's and
 * Fedora's cloud images look for at first boot.  A disk image without
 * cloud-init never reads it.
 */
#ifndef DUET_VM_CLOUDINIT_H
#define DUET_VM_CLOUDINIT_H

#include <time.h>

#include "common/err.h"
#include "manifests/manifest.h"

/* The fleet address a seed's network-config gives, in text. */
struct vm_seed_net {
    char addr[16], gateway[16], dns[16];
    unsigned prefix;
    char mac[18];
};

/* The seed's files, into out (each malloc'd; free with
 * vm_seed_files_free): what vm_seed_write puts on the disc. */
struct vm_seed_files {
    char *meta_data, *user_data, *network_config;   /* network_config NULL: none */
};
int vm_seed_files_make(const struct workload_spec *w, const struct vm_seed_net *net, struct vm_seed_files *out,
                       struct duet_err *err);
void vm_seed_files_free(struct vm_seed_files *f);

/* Writes w's seed as an ISO 9660 image at path (created, mode 0644; an
 * existing file is refused).  net NULL: the VM has no NIC. */
int vm_seed_write(const char *path, const struct workload_spec *w, const struct vm_seed_net *net, time_t mtime,
                  struct duet_err *err);

#endif
