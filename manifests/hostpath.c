#include "hostpath.h"
#include "manifest.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The host's own tree: its binaries, libraries, configuration, kernel
 * interfaces, devices, runtime sockets (other daemons' among them) and
 * root's home; and duet's default state and socket directories. */
static const char *const system_paths[] = {
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
    "/run", "/sbin", "/sys", "/usr", "/var/run", "/var/lib/duet", NULL,
};

/* a is b or below it, both absolute and without a trailing slash (but
 * "/"), compared by components. */
static bool at_or_below(const char *a, const char *b)
{
    size_t n = strlen(b);
    if (n == 1)
        return true;   /* everything is below / */
    return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

static const char *collides(const char *path, const char *const *list)
{
    for (const char *const *p = list; p && *p; p++)
        if (**p == '/' && (at_or_below(path, *p) || at_or_below(*p, path)))
            return *p;
    return NULL;
}

const char *hostpath_protected_resolved(const char *resolved, const char *const *extra)
{
    const char *hit = collides(resolved, system_paths);
    return hit ? hit : collides(resolved, extra);
}

const char *hostpath_protected(const char *path, const char *const *extra, char *resolved, size_t len)
{
    char buf[PATH_MAX];
    const char *use = realpath(path, buf) ? buf : path;
    snprintf(resolved, len, "%s", use);
    const char *hit = hostpath_protected_resolved(use, extra);
    /* The path as written counts too: /var/run/x is /run/x on most hosts,
     * but the check must not depend on how the host happens to link it. */
    return hit ? hit : hostpath_protected_resolved(path, extra);
}

const char *hostpath_warning(const struct workload_spec *w, char *buf, size_t len)
{
    if (!w->host_access || len == 0)
        return NULL;
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i <= w->n_volumes; i++) {
        const char *path = i < w->n_volumes ? w->volumes[i].source : w->image.rootfs;
        if (!path)
            continue;
        char resolved[PATH_MAX];
        const char *hit = hostpath_protected(path, NULL, resolved, sizeof(resolved));
        if (hit && o < len)
            o += (size_t)snprintf(buf + o, len - o, "%s%s %s is or holds the host's %s", o ? "; " : "",
                                  i < w->n_volumes ? "volume" : "image.rootfs", path, hit);
    }
    if (!o)
        snprintf(buf, len, "hostAccess is set, though no path of the host's own tree is used");
    return buf;
}
