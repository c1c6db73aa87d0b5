/*
 * leftovers.h - what a workload may leave on the host (a VM's processes
 * and libvirt's machine cgroups, a container layer's loop devices), for
 * the tests' "nothing left" checks.
 */
#ifndef DUET_TEST_LEFTOVERS_H
#define DUET_TEST_LEFTOVERS_H

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* libvirt's machine cgroups left for this state dir's domains (named
 * qemu-...-duet-XXXXXXXX-NAME.libvirt-qemu, XXXXXXXX the state dir's hash
 * as the VM driver makes it), in any hierarchy. */
/* "duet-HASH": the prefix of every domain name a daemon on state uses;
 * false when state does not exist. */
static inline bool duet_domain_prefix(const char *state, char out[32])
{
    char real[PATH_MAX];
    if (!realpath(state, real))
        return false;
    uint32_t h = 2166136261u;
    for (const char *q = real; *q; q++)
        h = (h ^ (unsigned char)*q) * 16777619u;
    snprintf(out, 32, "duet-%08x-", h);
    return true;
}

static inline int machine_cgroups_left(const char *state)
{
    char prefix[32], owner[40];
    if (!duet_domain_prefix(state, prefix))
        return 0;
    snprintf(owner, sizeof(owner), "-%s", prefix);
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

/* Live processes whose command line holds every one of needles (a
 * NULL-terminated list); a zombie's is empty, so it is not counted. */
static inline int processes_matching_pid(const char *const *needles, int *pid);
static inline int processes_matching(const char *const *needles)
{
    return processes_matching_pid(needles, NULL);
}

/* The same; *pid (when not NULL) is one of those it counted, 0: none. */
static inline int processes_matching_pid(const char *const *needles, int *pid)
{
    int n = 0;
    if (pid)
        *pid = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        char buf[65536];
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        for (ssize_t i = 0; i < len; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[len] = '\0';
        bool all = true;
        for (const char *const *w = needles; *w && all; w++)
            all = strstr(buf, *w) != NULL;
        n += all;
        if (all && pid)
            *pid = atoi(e->d_name);
    }
    if (d)
        closedir(d);
    return n;
}

/* Loop devices whose backing file is under dir (containers' writable
 * layers); the runtime's spare layers (STATE/.layers/spare-*) count only
 * when `spares`.  The kernel lets go of an unmounted loop device on its own
 * time: this waits up to wait_ms for the count to reach 0. */
static inline int loop_devices_under(const char *dir, bool spares, int wait_ms)
{
    int n;
    for (int waited = 0;; waited += 10) {
        n = 0;
        for (int i = 0; i < 512; i++) {
            char p[96], back[512] = "";
            snprintf(p, sizeof(p), "/sys/block/loop%d/loop/backing_file", i);
            FILE *fp = fopen(p, "r");
            if (!fp)
                continue;
            if (fgets(back, sizeof(back), fp) && strstr(back, dir) && (spares || !strstr(back, "/.layers/spare-")))
                n++;
            fclose(fp);
        }
        if (n == 0 || waited >= wait_ms)
            return n;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

#endif
