/*
 * ref.h - image references, as a manifest or `duet image` names them:
 *
 *   oci-layout:DIR[:TAG]    an OCI image layout directory (skopeo, umoci,
 *                           buildah write them); TAG picks the manifest
 *                           annotated with that ref name; without one, the
 *                           only manifest, else the one tagged latest
 *   docker-archive:FILE     what `docker save` / `podman save` write
 *   [REGISTRY/]REPO[:TAG][@DIGEST]
 *                           a registry image; bare names are Docker Hub's
 *                           (busybox is docker.io/library/busybox:latest)
 *
 * Parsing is strict and bounded: a reference is user input that ends up
 * in paths, URLs and the store.
 */
#ifndef DUET_IMAGES_REF_H
#define DUET_IMAGES_REF_H

#include <limits.h>

#include "common/err.h"
#include "images/digest.h"

#define IMAGE_REF_MAX 1024

enum image_ref_kind {
    IMAGE_REF_REGISTRY,
    IMAGE_REF_OCI_LAYOUT,
    IMAGE_REF_DOCKER_ARCHIVE,
};

struct image_ref {
    enum image_ref_kind kind;
    char path[PATH_MAX];       /* layout directory or archive file */
    char registry[256];        /* host[:port]; docker.io for Docker Hub */
    char repository[256];      /* library/busybox */
    char tag[129];             /* "" when none was given (a digest was, or a layout's only image) */
    char digest[DIGEST_STR];   /* "" when none was given */
};

/* Parses s; -1 with err naming what is wrong and the expected form. */
int image_ref_parse(const char *s, struct image_ref *out, struct duet_err *err);

/* The canonical form: docker.io/library/busybox:latest,
 * oci-layout:/abs/dir:tag, docker-archive:/abs/file. */
void image_ref_format(const struct image_ref *r, char *buf, size_t len);

#endif
