/*
 * guest_image.h - what a VM boots: disks and initramfs images built on the
 * host (guest_image.c).
 *
 * - A disk image gets a per-workload copy-on-write overlay (qcow2 backed by
 *   the base, format given explicitly, so the base is never written and its
 *   content is never probed for a format).
 * - A rootfs directory becomes an ext4 disk (mke2fs -d: no mount, no loop
 *   device), cached by the directory's metadata, then overlaid the same way.
 * - duet-vminit plus the kernel modules a guest needs to reach its disk
 *   (virtio, ext4) and its power button form a base initramfs, cached per
 *   kernel; each workload's initrd is that base with its spec appended as a
 *   second cpio archive (the kernel unpacks concatenated archives).
 *
 * Everything here blocks (tools, file copies): call it off the loop.
 */
#ifndef DUET_VM_GUEST_IMAGE_H
#define DUET_VM_GUEST_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "manifests/manifest.h"
#include "backends/rootfs.h"

/* "qcow2" or "raw", from the image's first bytes, and the size of the
 * disk a guest sees in it (a qcow2's virtual size, a raw file's length). */
int vm_disk_format(const char *path, const char **fmt, uint64_t *virtual_size, struct duet_err *err);

/* overlay: a new qcow2 of `size` bytes (at least base's virtual size)
 * whose backing file is base (absolute path).  What a guest writes lands
 * in the overlay, which cannot grow much past size (a qcow2's tables add
 * about 0.1%): resources.disk bounds a VM through it. */
int vm_disk_overlay(const char *base, const char *base_fmt, const char *overlay, uint64_t size, const char *what,
                    struct duet_err *err);

/* An ext4 image of rootfs with 256 MiB of room, at most `size` bytes
 * (sparse), in cache_dir (built once per content and size), its path in
 * out.  Fails, naming the size needed, when the rootfs does not fit in
 * `size` with room to spare. */
int vm_rootfs_disk(const char *cache_dir, const char *rootfs, uint64_t size, const char *what, char *out, size_t len,
                   struct duet_err *err);

/* The base initramfs for kernel: vminit as /init and the modules it needs,
 * in cache_dir, its path in out. */
int vm_guest_initramfs(const char *cache_dir, const char *kernel, const char *vminit, const char *what, char *out,
                       size_t len, struct duet_err *err);

/* out: base followed by an archive holding /duet/spec for workload w. */
int vm_workload_initrd(const char *base, const struct workload_spec *w, const struct rootfs_user *user,
                       const char *out, struct duet_err *err);

/* The modules directory of kernel (lib/modules/VERSION beside its boot/
 * directory, else the host's), or an error naming where it looked. */
/* Can kernel mount virtiofs (built in, or its module in its tree)? */
bool vm_kernel_has_virtiofs(const char *kernel);
int vm_kernel_modules_dir(const char *kernel, char *out, size_t len, struct duet_err *err);

/* Boots in half the time under emulation: the uncompressed ELF kernel
 * inside a bzImage with an xz payload, when it has a PVH entry (QEMU then
 * skips the decompressor), cached in cache_dir; else kernel itself.  out
 * is always usable; errors only for an unreadable kernel. */
int vm_kernel_uncompressed(const char *cache_dir, const char *kernel, char *out, size_t len, struct duet_err *err);


#endif
