/*
 * setup.h - what a container's setup process is given (runtime.c builds
 * it, spawner.c carries it across to the process that clones).
 *
 * The setup process runs from its clone until it executes duet-init, in
 * the new namespaces, on a copy of its creator's memory: it never
 * allocates, so everything it uses is here, built beforehand.
 */
#ifndef DUET_CONTAINER_SETUP_H
#define DUET_CONTAINER_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "mounts.h"
#include "network/attachment.h"
#include "runtime.h"

struct child_args {
    const struct container_runtime *rt;   /* caps, last_cap, filter, init_fd */
    const char *hostname;
    enum container_step fail_at;
    bool userns;
    const char *lower;          /* userns: where the idmapped image goes */
    const char *layer;          /* where the writable layer goes */
    int layer_fd;               /* the writable layer, mounted detached */
    struct mounts_plan plan;    /* of each volume only the target is used */
    int sync_fd, report_fd, log_fd, exit_fd, null_fd, prev_log_fd;
    const int *keep;            /* the fds the child uses: it closes the rest first */
    size_t n_keep;
    char *const *init_argv;
    char *const *envp;
    const struct net_attachment *net;
    int quota_fd;               /* the cgroup's CPU quota file, or -1 (cgroup_cpu_quota_open): duet-init's fd 5 */
    bool attach;                /* an attached run (duet run -i/-t): */
    int attach_fds[4];          /* its in, out, err, ctl (init_attach.h), duet-init's fds 6-9 */
};

/* What a failed setup step sends back on report_fd; end of file there
 * means duet-init was executed. */
struct setup_report {
    int step;
    int err;
    char what[200];
};

/* The setup process: builds the container and executes duet-init; on a
 * failure writes {step, errno, what} to report_fd and exits. */
_Noreturn void container_setup_main(const struct child_args *a);

#endif
