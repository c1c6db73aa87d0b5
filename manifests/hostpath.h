/*
 * hostpath.h - host paths a workload must not be given without saying so.
 *
 * A volume whose source is /, /etc, /proc, /dev, /sys (or the daemon's own
 * state) hands the workload the host: with /proc mounted, a container's
 * root can write the host's core_pattern; with /etc, its shadow and sudoers.
 * An image.rootfs of / boots or runs the host's own tree.  Such a path is
 * refused unless the workload says `hostAccess: true`, which plan and
 * describe then show as a warning.
 *
 * A path collides with a protected one when it is that path, below it, or
 * above it (/var holds /var/lib/duet).  Symlinks are followed where the path
 * exists, so a link to /etc is /etc.
 */
#ifndef DUET_HOSTPATH_H
#define DUET_HOSTPATH_H

#include <stddef.h>

/* The protected path path collides with (one of the system's, or of
 * extra, a NULL-terminated list that may be NULL), or NULL when none.  The
 * answer points into the lists; resolved gets path as checked (symlinks
 * followed where it exists). */
const char *hostpath_protected(const char *path, const char *const *extra, char *resolved, size_t len);

/* The same for a path already resolved (no symlinks in it). */
const char *hostpath_protected_resolved(const char *resolved, const char *const *extra);

struct workload_spec;
/* With spec.hostAccess, what of the host's own tree w is given, as one
 * line for plan and describe ("volume /etc is the host's /etc; ..."), in
 * buf; NULL when w has no hostAccess or uses none of it. */
const char *hostpath_warning(const struct workload_spec *w, char *buf, size_t len);

#endif
