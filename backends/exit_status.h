/*
 * exit_status.h - the status line duet's inits write when a workload ends.
 *
 * duet-init (containers) writes it to a file in the state directory,
 * duet-vminit (rootfs VMs) to a serial port backed by a file: "exit N" or
 * "signal N", one line, last.  The file outlives the daemon, so a status
 * is known even when the workload ended while no daemon ran.
 */
#ifndef DUET_EXIT_STATUS_H
#define DUET_EXIT_STATUS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* duet-vminit writes "oom N" before "signal 9" when the guest's kernel
 * had killed for want of memory (N: its oom_kill count). */
static inline bool exit_status_oom(const char *text)
{
    return strncmp(text, "oom ", 4) == 0 || strstr(text, "\noom ") != NULL;
}

/* The last status line in text: true with *code (or -1) and *sig (or 0). */
static inline bool exit_status_parse(const char *text, int *code, int *sig)
{
    bool found = false;
    for (const char *line = text; *line;) {
        int n;
        if (sscanf(line, "exit %d", &n) == 1) {
            *code = n;
            *sig = 0;
            found = true;
        } else if (sscanf(line, "signal %d", &n) == 1) {
            *code = -1;
            *sig = n;
            found = true;
        }
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return found;
}

#endif
