/*
 * spawner.h - the small process that clones every container's setup
 * process.
 *
 * A clone copies its caller's address space.  Cloned from duetd, that is a
 * large, multi-threaded one: the copy holds duetd's memory map locked
 * while it is made (every other thread of duetd that faults waits), and
 * afterwards each thread's first write to each of its pages faults again,
 * with a TLB shootdown to the other CPUs.  Measured on a 2-CPU host, a
 * caller with 16 threads took twice as long to start each container as a
 * single-threaded one.  And the setup process's exec of duet-init then
 * unmaps that copy again, mapping by mapping.  So the runtime starts a
 * spawner once, at its first start: `duet-init --spawner`, executed from
 * the runtime's sealed copy of duet-init (a small static binary, single-
 * threaded, that never grows).  It clones with CLONE_PARENT, so each setup
 * process is still the runtime's own child (its exit, its parent-death
 * signal, waitpid).
 *
 * The spawner starts with a hello (caps, last cap, the seccomp program:
 * what every setup process applies).  A request carries the child's
 * arguments (setup.h) as bytes and its fds with SCM_RIGHTS; the answer is
 * the child's pid.  One request at a time (a mutex): a clone takes the
 * spawner well under a millisecond.  A spawner found dead when a request
 * is sent is started again; one that dies while it holds a request fails
 * that start ("the container spawner went away"), since it may have
 * cloned the child already, and the next start gets a new spawner.
 */
#ifndef DUET_CONTAINER_SPAWNER_H
#define DUET_CONTAINER_SPAWNER_H

#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "network/attachment.h"

/* The wire form of a request (spawner.c says what follows the head). */
#define SPAWN_MAGIC 0x6475736eu   /* "dusn" */
#define SPAWN_FIXED_FDS 8         /* sync, report, log, exit, null, previous log, layer, quota (if any) */
#define SPAWN_ATTACH_FDS 4        /* an attached run's (if any), after those */
#define SPAWN_MAX_FDS 250         /* in one message: the kernel's SCM_MAX_FD is 253 */
#define SPAWN_MAX_BYTES (64u << 20)

struct spawn_head {
    uint32_t magic;
    uint32_t len;          /* bytes of strings after the head */
    uint64_t flags;        /* namespaces to clone */
    int32_t fail_at;
    uint8_t userns, has_net, has_quota, has_attach;
    uint32_t n_fds, n_volumes, n_argv, n_envp;
    struct net_attachment net;
};

/* The first message, before any request. */
#define SPAWN_HELLO_MAGIC 0x6475736fu   /* "duso" */
#define SPAWN_MAX_FILTER 4096           /* BPF_MAXINSNS */
struct spawn_hello {
    uint32_t magic;
    int32_t last_cap;
    uint64_t caps;
    uint32_t filter_len;   /* instructions that follow */
    uint32_t pad;
};

/* The spawner's fds as it is executed. */
#define SPAWN_SOCK_FD 3
#define SPAWN_INIT_FD 4

struct spawn_answer {
    int32_t pid;           /* or -errno */
};

struct child_args;
struct container_runtime;
struct container_spawner;

struct container_spawner *container_spawner_new(void);
/* Ends the spawner (if it runs) and frees s. */
void container_spawner_free(struct container_spawner *s);

/* Clones a setup process running container_setup_main(a) with the
 * namespaces in flags, as the caller's child; returns its pid, or -1.  The
 * fds in a are copied: the caller still closes its own.  a->rt must be the
 * runtime the spawner was first started for: the spawner keeps that
 * runtime's caps, seccomp program and duet-init as they were then. */
pid_t container_spawner_clone(struct container_spawner *s, const struct child_args *a, unsigned long flags,
                              struct duet_err *err);

/* The spawner's own main (spawner_main.c, in duet-init's binary): serves
 * requests on SPAWN_SOCK_FD until its end of file; returns the exit code. */
int container_spawner_main(void);

/* For tests: the spawner's pid (-1 when none runs); and the socket of a
 * spawner started afresh for rt (the socket stays s's). */
pid_t container_spawner_pid(const struct container_spawner *s);
int container_spawner_socket(struct container_spawner *s, const struct container_runtime *rt, struct duet_err *err);

#endif
