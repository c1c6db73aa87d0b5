/*
 * kept.h - what a backend keeps of a workload beyond its instances.
 *
 * An instance's directory goes with the instance; some things must
 * outlive it: the log of the last instance destroyed (duet logs
 * --previous), a VM's disk (docs/storage.md).  Each backend keeps them
 * in KEPT/NAME/ under a directory of its own (the VM driver's
 * STATE/vm/kept, the container runtime's STATE/containers/.kept), until
 * the daemon asks for them to go (driver.purge).
 *
 * Names come from the daemon, already checked as workload names; they
 * are checked again here because they become paths.
 */
#ifndef DUET_KEPT_H
#define DUET_KEPT_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "backends/driver.h"
#include "common/err.h"

/* KEPT/NAME/FILE (FILE NULL: the directory), or -1 when name is not a
 * workload name or the path does not fit. */
int kept_path(const char *kept_dir, const char *name, const char *file, char *out, size_t len,
              struct duet_err *err);

/* Makes KEPT and KEPT/NAME. */
int kept_dir_make(const char *kept_dir, const char *name, struct duet_err *err);

/* Moves an instance's log (and its previous generation, log1 may be
 * NULL or missing) into KEPT/NAME as the last instance's log, replacing
 * the one kept before.  Best effort: a log that cannot be kept is not a
 * reason for a destroy to fail. */
void kept_logs_save(const char *kept_dir, const char *name, const char *log, const char *log1);

/* driver.logs_previous from KEPT/NAME; what names the workload in errors
 * ("VM db", "workload web"). */
int kept_logs_open(const char *kept_dir, const char *name, const char *what, int *fd, int *prev,
                   struct duet_err *err);

/* driver.purge: removes KEPT/NAME's files of `what` (DRIVER_KEPT_*) on
 * the pool: DRIVER_KEPT_LOGS the logs, DRIVER_KEPT_DISK the files named
 * in disk_files (NULL-terminated, may be NULL); KEPT/NAME itself once it
 * is empty. */
int kept_purge(uv_loop_t *loop, const char *kept_dir, const char *name, unsigned what,
               const char *const *disk_files, driver_done_cb done, void *opaque, struct duet_err *err);

/* driver.kept_copy, on the caller's thread: KEPT/NAME's files named in
 * `files` (the first `n_files` of them) copied into dir (save: those that
 * exist, *copied how many), or put back from dir (restore: each copied
 * beside its place and renamed over it, in the order given; a file the
 * snapshot lacks is removed).  No instance of the workload may exist. */
int kept_copy(const char *kept_dir, const char *name, const char *const *files, size_t n_files, const char *dir,
              bool restore, size_t *copied, struct duet_err *err);

#endif
