/*
 * backup.h - a workload in one file: the archive duet backup writes and
 * duet restore reads (docs/storage.md, "Backup and restore").
 *
 * A tar (pax, sparse files kept sparse) compressed with zstd:
 *
 *   duet-backup.json             first entry: the index (BACKUP_FORMAT,
 *                                the workload's applied spec, what the
 *                                archive holds and how it was taken)
 *   disk/disk.qcow2, disk.base   a VM's kept disk and its record
 *                                (driver.kept_copy, DRIVER_KEPT_EXPORT)
 *   volumes/NAME/disk.ext4       a sized named volume's image, or
 *   volumes/NAME/data/...        an unsized one's tree (volume_save)
 *
 * The files after the index are a snapshot's (storage/snapshot.h), so a
 * backup is taken as a snapshot is and written from that copy.
 *
 * An archive to restore is hostile input unpacked by root: every entry's
 * name must be one of the above (no "..", no absolute name, nothing
 * written through a symlink, no device node, no hard link out of its
 * volume), it is unpacked on a thread whose root directory is the
 * destination, and its bytes and entries are bounded.  Both functions
 * block: call them from a worker thread.
 */
#ifndef DUET_STORAGE_BACKUP_H
#define DUET_STORAGE_BACKUP_H

#include <stdint.h>

#include <jansson.h>

#include "common/err.h"

#define BACKUP_FORMAT 1
#define BACKUP_INDEX "duet-backup.json"
#define BACKUP_INDEX_MAX (1u << 20)

/* Writes index (its "bytes" set here to the contents' size) and the tree
 * under dir to fd as a zstd-compressed archive; *written: the archive's
 * bytes.  A write that fails (a full disk) fails the whole. */
int backup_archive_write(int fd, json_t *index, const char *dir, uint64_t *written, struct duet_err *err);

struct backup_limits {
    uint64_t max_bytes;            /* file contents, unpacked */
    uint64_t max_entries;
};

/* Unpacks the archive at fd into dir (exists, empty) and returns its
 * index (a new reference), checked: the format, a spec that is an
 * object, volume names that are names, and every volume and disk it
 * names present, nothing else.  NULL with err naming the entry and the
 * cause; dir then holds part of the archive (the caller removes it). */
json_t *backup_archive_read(int fd, const char *dir, const struct backup_limits *lim, struct duet_err *err);

#endif
