/*
 * virtiofs.h - volumes for VMs: a host directory shared into a guest
 * through virtiofs.
 *
 * libvirt starts one virtiofsd per volume; duet gives libvirt its own
 * duet-virtiofsd as that binary.  duet-virtiofsd pins the directory duet
 * checked (the path must still lead where it led when it was checked: a
 * symlink swapped in meanwhile is refused), makes it read-only in a mount
 * namespace of its own when started as duet-virtiofsd-ro, and then runs
 * the host's virtiofsd on it.  The guest's root can remount its side
 * read-write; the host side stays read-only all the same.
 *
 * The guest sees volume i under the tag VM_VIRTIOFS_TAG_PREFIX "i".
 */
#ifndef DUET_VM_VIRTIOFS_H
#define DUET_VM_VIRTIOFS_H

#include <stdbool.h>
#include <stddef.h>

#define VM_VIRTIOFS_TAG_PREFIX "duet"
#define VM_VIRTIOFSD_RO_SUFFIX "-ro"

/* Where Debian's packages put virtiofsd: the Rust one (package virtiofsd),
 * then QEMU's own (qemu-system-common, Debian 12). */
#define VM_VIRTIOFSD_PATHS {"/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd", NULL}

/* The host's virtiofsd in out, or false when it has none. */
bool vm_virtiofsd_find(char *out, size_t len);

#endif
