/*
 * loopdev.h - a file as a block device, for duet's own filesystem images
 * (a container's writable layer, a sized volume).
 */
#ifndef DUET_LOOPDEV_H
#define DUET_LOOPDEV_H

#include "err.h"

/* Binds the image open at img to a free loop device with the given
 * logical block size and LO_FLAGS_* flags, its backing name set to label;
 * returns the device's fd.  what names the image's owner in errors
 * ("container web's writable layer"). */
int duet_loop_attach(int img, unsigned block_size, unsigned flags, const char *label, const char *what,
                     struct duet_err *err);

#endif
