/*
 * unpack.h - one image layer (a tar, gzip- or zstd-compressed or plain)
 * unpacked into a directory that overlayfs can stack.
 *
 * A layer is hostile input unpacked by root.  It is unpacked on a thread
 * of its own that has its own root directory (unshare(CLONE_FS), then
 * chroot into the layer's directory), so no entry can reach outside it
 * whatever libarchive's checks miss; and libarchive's own checks refuse
 * "..", absolute names and writing through a symlink.  Besides:
 *   - names are the layer's: a leading '/' is its root, ".." is refused;
 *   - OCI whiteouts become overlayfs's: ".wh.NAME" a 0/0 character device
 *     NAME, ".wh..wh..opq" the opaque xattr on its directory (trusted.
 *     and user.overlay.opaque, for both kinds of overlay mount);
 *   - xattrs in trusted.* and user.overlay.* are dropped (they would be
 *     whiteouts and redirects forged by the image); security.capability
 *     and other user.* xattrs are kept, as docker does;
 *   - device nodes are refused; setuid and setgid files are kept;
 *   - bytes and entries are bounded (a small layer that unpacks to a
 *     huge one is stopped at the bound);
 *   - only the gzip and zstd filters built into libarchive are used,
 *     never an external decompressor.
 */
#ifndef DUET_IMAGES_UNPACK_H
#define DUET_IMAGES_UNPACK_H

#include <stdint.h>

#include "common/err.h"

struct unpack_limits {
    uint64_t max_bytes;     /* of file contents, unpacked: what is left of the image's bound */
    uint64_t image_max;     /* the image's bound itself (duetd --max-image-size), for the message */
    uint64_t max_entries;
};

struct unpack_stats {
    uint64_t bytes, entries;
};

/* Unpacks the layer open at fd into dir, which exists and is empty.
 * With digest (and size, unless 0), the bytes read are hashed as they are
 * unpacked and must match: what is unpacked is what was verified, with no
 * window for the file to change in between.  On failure dir holds part of
 * the layer (the caller removes it) and err names the entry and the
 * cause. */
int image_layer_unpack(int fd, const char *digest, uint64_t size, const char *dir, const struct unpack_limits *lim,
                       struct unpack_stats *st, struct duet_err *err);

#endif
