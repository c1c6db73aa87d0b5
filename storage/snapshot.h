/*
 * snapshot.h - a workload's snapshots on disk (docs/storage.md):
 *
 *   ROOT/WORKLOAD/SNAP/snapshot.json   what it holds; written last, so a
 *                                      snapshot a crash cut short has none
 *                                      and is not one (snapshot_list skips
 *                                      it, the next create of that name
 *                                      clears it)
 *   ROOT/WORKLOAD/SNAP/disk/           the VM's kept disk (driver.kept_copy)
 *   ROOT/WORKLOAD/SNAP/volumes/NAME/   each named volume it writes
 *                                      (volume_save)
 *
 * Workload and snapshot names are checked here again: they become paths.
 * Every function may block: call them from a worker thread.
 */
#ifndef DUET_STORAGE_SNAPSHOT_H
#define DUET_STORAGE_SNAPSHOT_H

#include <stddef.h>

#include <jansson.h>

#include "common/err.h"

/* ROOT/WORKLOAD/SNAP (snap NULL: ROOT/WORKLOAD), or -1 (EINVAL) when a
 * name is not a name. */
int snapshot_path(const char *root, const char *workload, const char *snap, char *out, size_t len,
                  struct duet_err *err);

/* Starts snapshot snap: an empty directory to fill in *dir (its place
 * until snapshot_commit).  EEXIST when the workload has one of that name. */
int snapshot_begin(const char *root, const char *workload, const char *snap, char *dir, size_t len,
                   struct duet_err *err);
/* Writes meta as its snapshot.json and puts it in place. */
int snapshot_commit(const char *root, const char *workload, const char *snap, const char *dir, json_t *meta,
                    struct duet_err *err);
/* Drops a snapshot begun and not committed. */
void snapshot_abort(const char *dir);

/* Its snapshot.json (a new reference), or NULL: ENOENT when there is no
 * such snapshot. */
json_t *snapshot_get(const char *root, const char *workload, const char *snap, struct duet_err *err);
/* Every snapshot of the workload, oldest first, as an array of their
 * snapshot.json (a new reference; empty when there are none). */
json_t *snapshot_list(const char *root, const char *workload, struct duet_err *err);

int snapshot_remove(const char *root, const char *workload, const char *snap, struct duet_err *err);
/* Every snapshot of the workload (it is deleted). */
int snapshot_remove_all(const char *root, const char *workload, struct duet_err *err);

#endif
