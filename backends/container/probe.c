/*
 * probe.c - can this host run duet's containers?
 *
 * Checks the kernel features the runtime relies on, not the caller's
 * privileges: `duet plan` run by an ordinary user still describes what the
 * daemon (root) will be able to do.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup.h"
#include "container.h"

static bool fs_supported(const char *name)
{
    FILE *f = fopen("/proc/filesystems", "re");
    if (!f)
        return false;
    char line[128];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        char *tab = strrchr(line, '\t');
        char *word = tab ? tab + 1 : line;
        word[strcspn(word, "\n")] = '\0';
        found = strcmp(word, name) == 0;
    }
    fclose(f);
    return found;
}

int container_backend_probe(const char *cgroup_root, struct driver_caps *caps, struct duet_err *err)
{
    (void)err;
    memset(caps, 0, sizeof(*caps));
    caps->start_ms = DRIVER_EST_CONTAINER_START_MS;
    caps->memory_overhead = DRIVER_EST_CONTAINER_OVERHEAD;
    caps->memory_floor = WL_MIN_MEMORY;
    caps->attach = true;
    static const char *const ns[] = {"pid", "mnt", "uts", "ipc", "net", "cgroup"};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/ns/%s", ns[i]);
        if (access(path, F_OK) != 0) {
            snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason),
                     "the kernel has no %s namespace (%s missing); use a kernel built with namespaces", ns[i],
                     path);
            return 0;
        }
    }
    caps->user_namespaces = access("/proc/self/ns/user", F_OK) == 0;
    if (!fs_supported("overlay")) {
        snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason),
                 "the kernel has no overlay filesystem; load it with: modprobe overlay");
        return 0;
    }
    /* The writable layer (layer.c): an ext4 image on a loop device.
     * fsopen loads ext4 when it is a module not loaded yet; an ordinary
     * user may not call it (EPERM), and then /proc/filesystems answers. */
    int ext4 = (int)syscall(SYS_fsopen, "ext4", FSOPEN_CLOEXEC);
    bool has_ext4 = ext4 >= 0 || (errno == EPERM && fs_supported("ext4"));
    if (ext4 >= 0)
        close(ext4);
    if (!has_ext4) {
        snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason),
                 "the kernel has no ext4 filesystem, which containers' writable layers use; load it with: "
                 "modprobe ext4");
        return 0;
    }
    if (access("/dev/loop-control", F_OK) != 0) {
        snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason),
                 "/dev/loop-control is missing, and containers' writable layers need loop devices; load the "
                 "module: modprobe loop");
        return 0;
    }
    struct cgroup_layout cg;
    struct duet_err cgerr;
    if (cgroup_layout_detect(cgroup_root, &cg, &cgerr) < 0) {
        snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason), "%s", cgerr.msg);
        return 0;
    }
    if (!cg.memory || !cg.cpu || !cg.pids) {
        snprintf(caps->unavailable_reason, sizeof(caps->unavailable_reason),
                 "cgroup v%d lacks the %s controller; enable it (cgroup_enable= on the kernel command line)",
                 cg.version, !cg.memory ? "memory" : !cg.cpu ? "cpu" : "pids");
        return 0;
    }
    caps->cgroup_version = cg.version;
    caps->cgroup_hybrid = cg.hybrid;
    caps->available = true;
    snprintf(caps->description, sizeof(caps->description), "namespaces, cgroup v%d%s", cg.version,
             cg.hybrid ? " (hybrid)" : "");
    return 0;
}
