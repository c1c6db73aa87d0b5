/*
 * iso9660.h - a small ISO 9660 image of a few files, as a CD-ROM for a guest.
 *
 * Only what a seed disk needs: one root directory of regular files, no
 * subdirectories.  The image carries two directory trees over the same
 * file data: the primary one (names in upper case with ";1", as ISO 9660
 * spells them) and a Joliet one (names exactly as given), which Linux,
 * Windows and blkid read in preference, so a guest sees "meta-data", not
 * "META-DATA".  The volume identifier is what blkid reports as the label
 * (cloud-init's NoCloud looks for "cidata").
 *
 * Written in one pass into a file the caller opened; no external tool.
 */
#ifndef DUET_VM_ISO9660_H
#define DUET_VM_ISO9660_H

#include <stddef.h>
#include <time.h>

#include "common/err.h"

#define ISO_MAX_FILES 16
#define ISO_MAX_NAME 32            /* bytes of a file's name: 16 such records fit one sector */
#define ISO_MAX_VOLUME_ID 16

struct iso_file {
    const char *name;              /* [a-z0-9._-], 1..ISO_MAX_NAME bytes, unique */
    const void *data;
    size_t len;                    /* under 4 GiB */
};

/* Writes the image to fd (from its current offset, which should be 0):
 * files in any order, volume_id in [A-Za-z0-9_], mtime the time every
 * record carries.  Refuses a name or volume id outside those sets. */
int iso_write(int fd, const char *volume_id, const struct iso_file *files, size_t n, time_t mtime,
              struct duet_err *err);

#endif
