/*
 * machine_cgroups.h - what libvirt may leave of a VM in the cgroup tree,
 * for the VM and daemon tests' "nothing left on the host" checks.
 */
#ifndef DUET_TEST_MACHINE_CGROUPS_H
#define DUET_TEST_MACHINE_CGROUPS_H

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libvirt's machine cgroups left for this state dir's domains (named
 * qemu-...-duet-XXXXXXXX-NAME.libvirt-qemu, XXXXXXXX the state dir's hash
 * as the VM driver makes it), in any hierarchy. */
static inline int machine_cgroups_left(const char *state)
{
    char real[PATH_MAX];
    if (!realpath(state, real))
        return 0;
    uint32_t h = 2166136261u;
    for (const char *q = real; *q; q++)
        h = (h ^ (unsigned char)*q) * 16777619u;
    char owner[32];
    snprintf(owner, sizeof(owner), "-duet-%08x-", h);
    int n = 0;
    DIR *root = opendir("/sys/fs/cgroup");
    struct dirent *c;
    while (root && (c = readdir(root))) {
        if (c->d_name[0] == '.')
            continue;
        char dir[512];
        snprintf(dir, sizeof(dir), "/sys/fs/cgroup/%s/machine", c->d_name);
        DIR *m = opendir(dir);
        struct dirent *e;
        while (m && (e = readdir(m)))
            n += strstr(e->d_name, owner) != NULL;
        if (m)
            closedir(m);
    }
    if (root)
        closedir(root);
    return n;
}

#endif
