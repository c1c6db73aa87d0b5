/*
 * plan_images.h - what `duet plan` says of each workload's OCI image.
 *
 * Placement never depends on an image's content, so the plan is made
 * without it; but whether `apply` will have to pull first, and what the
 * workload will run once the image's config fills in command and args,
 * are what a user checks before applying.  Both come from duetd's image
 * store, asked over its socket; without a daemon the plan says it cannot
 * tell.
 */
#ifndef DUET_PLAN_IMAGES_H
#define DUET_PLAN_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "manifests/manifest.h"

enum plan_image_state {
    PLAN_IMAGE_UNKNOWN,    /* no daemon answered, or it could not say: why */
    PLAN_IMAGE_STORED,     /* in the store: id, layers, size, command */
    PLAN_IMAGE_MISSING,    /* not in the store: apply pulls it first */
};

struct plan_image {
    const struct workload_spec *w;
    enum plan_image_state state;
    char id[80];
    size_t n_layers;
    uint64_t size;
    char **command;        /* what runs: the spec's command and args over the image's Entrypoint and Cmd */
    size_t n_command;
    char why[256];
    struct json_t *config;   /* the image's config as duetd gave it (STORED) */
};

/* A VM whose kept disk (docs/storage.md) the apply would reset. */
struct plan_disk {
    const struct workload_spec *w;
    char *kept;            /* what the disk was made from, as duetd says */
    char *now;             /* what the spec makes it from */
};

struct plan_images {
    struct plan_image *v;
    size_t n;
    struct plan_disk *disks;
    size_t n_disks;
};

/* One entry per workload of set with image.oci (one request per distinct
 * reference) from the daemon at socket. */
void plan_images_lookup(const struct manifest_set *set, const char *socket, struct plan_images *out);
/* The VMs of plan whose disk duetd keeps made from another image or size
 * than their spec says, and which do not say image.keepDisk: apply will
 * refuse them without --recreate.  One request; none without a daemon. */
struct plan;
void plan_disks_lookup(const struct plan *plan, const char *socket, struct plan_images *out);
void plan_images_free(struct plan_images *pi);

/* The command as one line for a table, arguments with spaces or quotes
 * in single quotes, cut short at len. */
void plan_image_command_text(const struct plan_image *pi, char *buf, size_t len);

#endif
