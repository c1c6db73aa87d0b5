/*
 * store.h - duet's image store: content-addressed, under STATE/images.
 *
 *   blobs/sha256/HEX   manifests and configs, verified (layer blobs are
 *                      not kept: each is unpacked as it is verified)
 *   layers/HEX/        a layer unpacked (HEX: its blob's digest), shared by
 *                      every image that has it; made in layers/.tmp-* and
 *                      renamed, so a layer directory is always whole
 *   images/HEX.json    an image (HEX: its manifest's digest): its config,
 *                      its layers bottom first, the references it came by
 *   roots/HEX/         the image's root, read-only: an overlay of its
 *                      layers, mounted when first asked for (an image of
 *                      one layer has that layer's directory as its root)
 *
 * An image's root is what a workload's image.rootfs would be: a container
 * stacks its private layer over it, a VM's disk is built from it.
 *
 * Imports and removals are serialized (one lock): two imports of the same
 * image do the work once.  Everything read from an image (index,
 * manifest, config, layers) is verified against its digest and bounded.
 */
#ifndef DUET_IMAGES_STORE_H
#define DUET_IMAGES_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "images/config.h"
#include "images/digest.h"
#include "images/registry.h"

#define IMAGE_MAX_LAYERS 60   /* the relative lowerdir list of one overlay mount fits a page */

struct image_store_opts {
    uint64_t max_bytes;     /* unpacked bytes of one image; 0: 16 GiB */
    uint64_t max_entries;   /* entries of one layer; 0: 2,000,000 */
    struct registry_opts registry;   /* kept by reference: the caller's, for the store's life */
};

struct image {
    char id[DIGEST_STR];             /* the manifest's digest */
    char config_digest[DIGEST_STR];
    char (*layers)[DIGEST_STR];      /* bottom first */
    size_t n_layers;
    char **refs;                     /* canonical references it was imported or pulled by */
    size_t n_refs;
    uint64_t size;                   /* unpacked bytes of its layers */
    int64_t created;                 /* when it came into the store (unix seconds) */
    struct image_config config;
};

struct image_store;

struct image_store *image_store_open(const char *dir, const struct image_store_opts *o, struct duet_err *err);
void image_store_free(struct image_store *s);

/* Brings the image a reference names into the store (pulled from a
 * registry, or read from an oci-layout: or docker-archive:) and returns
 * it; the layers the store has already are not fetched again, and an
 * image already there gets the reference added. */
int image_store_import(struct image_store *s, const char *ref, struct image **out, struct duet_err *err);

/* How far an import is: the layers it brings (not those the store has
 * already) and their blobs' bytes. */
struct image_progress {
    unsigned layers_done, layers_total;
    uint64_t bytes_done, bytes_total;
};

/* Heard on the importing thread: at the start, every 100 ms or so while
 * bytes come, and at each layer's end.  Keep it short. */
struct image_progress_cb {
    void (*fn)(void *opaque, const struct image_progress *p);
    void *opaque;
};

/* image_store_import, telling cb (may be NULL) how far it is. */
int image_store_pull(struct image_store *s, const char *ref, const struct image_progress_cb *cb, struct image **out,
                     struct duet_err *err);

/* The image a reference (in any form image_ref_parse takes) or an id
 * (sha256:HEX, or a prefix of HEX of 12 or more) names: 0 and *out, 1 when
 * there is none, -1 on error. */
int image_store_get(struct image_store *s, const char *ref_or_id, struct image **out, struct duet_err *err);

/* All images, newest first. */
int image_store_list(struct image_store *s, struct image ***out, size_t *n, struct duet_err *err);
void image_list_free(struct image **l, size_t n);

/* Where the image's root is (mounted or not), into out: what a workload
 * made from the image has as its image.rootfs. */
void image_store_root_path(struct image_store *s, const struct image *img, char *out, size_t len);

/* The image's root directory (mounting it when it is not), into out. */
int image_store_root(struct image_store *s, const struct image *img, char *out, size_t len, struct duet_err *err);

/* Unmounts every root (duetd's end): a running container keeps the root
 * it was built on, and the next duetd mounts them again when asked. */
void image_store_unmount_all(struct image_store *s);

/* Removes an image and the layers no other image has.  Whether a workload
 * still uses it is the caller's to check. */
int image_store_remove(struct image_store *s, const char *ref_or_id, struct duet_err *err);

void image_free(struct image *img);

#endif
