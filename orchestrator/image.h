/*
 * image.h - what a workload runs from: its run spec.
 *
 * The spec a user applied stays as written (it is what the store keeps,
 * what apply compares, what describe shows).  The drivers are given its
 * run spec instead: for an OCI image, image.rootfs is the image's root in
 * duetd's image store and the image config's defaults are filled in
 * (Entrypoint and Cmd as Kubernetes reads them against command and args,
 * Env under the spec's env, User, WorkingDir); for any image, args follow
 * command.  A spec that needs neither is its own run spec.
 *
 * An image not in the store yet is imported on a worker thread before the
 * workload's first create (events "pulling" and "pulled"); the workload
 * waits, pending, and is reconciled when the import ends.  A failed
 * import fails that create: the restart policy's back-off decides when
 * it is tried again.
 */
#ifndef DUET_ORCHESTRATOR_IMAGE_H
#define DUET_ORCHESTRATOR_IMAGE_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "common/err.h"
#include "manifests/manifest.h"
#include "images/store.h"

struct wl;

/* 0 and *out: the run spec (allocated with w's spec group).  1: an import
 * is under way, w is reconciled when it ends.  -1: err says why w cannot
 * run (the last import failed, or the image's config cannot be used). */
int wl_run_spec(struct wl *w, const struct workload_spec **out, struct duet_err *err);
/* The same without importing: -1 when the image is not in the store (for
 * re-attaching to an instance, which was made from a stored image). */
int wl_run_spec_stored(struct wl *w, const struct workload_spec **out, struct duet_err *err);

/* Starts importing w's image now if the store lacks it (apply calls it
 * for every workload it creates or replaces: images are fetched while
 * what they wait for starts, not after). */
void wl_image_prefetch(struct wl *w);

/* The run spec of s from img, whose root is root (NULL img: args only);
 * allocated in a; NULL with err when the image's defaults cannot be used. */
struct workload_spec *run_spec_build(struct arena *a, const struct workload_spec *s, const struct image *img,
                                     const char *root, struct duet_err *err);

/* An import's progress carried from the importing thread to the loop:
 * the store calls cb on the pool's thread, which keeps the latest figures
 * and wakes the loop; on_update then runs on the loop with them (several
 * reports between two wake-ups are one update).  The owner embeds it and
 * frees itself from the close callback. */
struct import_progress {
    uv_async_t async;
    pthread_mutex_t lock;
    struct image_progress latest;                 /* under lock */
    struct image_progress_cb cb;                  /* give this to image_store_pull */
    void (*on_update)(struct import_progress *ip, const struct image_progress *p);
    void (*done)(struct import_progress *ip);
    uint64_t started_ms;
};
int import_progress_start(struct import_progress *ip, uv_loop_t *loop,
                          void (*on_update)(struct import_progress *ip, const struct image_progress *p));
/* Closes the wake-up handle: done(ip) runs once libuv has let go of it. */
void import_progress_close(struct import_progress *ip, void (*done)(struct import_progress *ip));
/* "layer 2 of 5, 34.1 of 103.2 MiB, 12.3 MiB/s" (or "nothing to fetch"). */
void import_progress_text(const struct import_progress *ip, const struct image_progress *p, char *buf, size_t len);

#endif
