/*
 * vminit_agent.h - duet-vminit's agent: runs the host's commands in the
 * guest (duet exec, exec health checks) over the virtio-serial port
 * agent_proto.h describes.
 *
 * It lives in pid 1's poll loop: the loop asks it for the fds to watch,
 * hands back what they reported, passes on SIGIO (the host connected or
 * went) and every child it reaps that is not the workload.
 */
#ifndef DUET_VMINIT_AGENT_H
#define DUET_VMINIT_AGENT_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#define AGENT_MAX_EXECS 16
#define AGENT_MAX_FDS (1 + 3 * AGENT_MAX_EXECS)

struct agent_exec {
    bool used;
    bool lost;                /* its host went: nothing more is sent for it */
    bool reaped;
    uint16_t id;
    pid_t pid;                /* also its process group */
    int fd[2];                /* its stdout and stderr (a terminal: its master, and -1), -1 once at their end */
    int status;
    /* A command with input ('X'): what the host sent that it has not
     * taken yet (at most VM_AGENT_WINDOW), the output it may still send. */
    bool io, tty;
    int in_fd;                /* its stdin's pipe, or the terminal's master; -1: none or closed */
    uint8_t *in_buf;
    uint32_t in_len;
    bool in_end;              /* the host's input ended: closed once in_buf is written */
    uint32_t out_credit;
};

/* Runs argv as the workload would run (its user, env, working directory);
 * returns only on failure, in the child, which then exits 127. */
typedef void (*agent_run_fn)(void *ctx, char **argv);

struct agent {
    int port;                 /* the virtio-serial port, -1 until found */
    bool connected;           /* worth polling: no hang-up since the last SIGIO */
    bool up;                  /* the host was seen holding its end */
    bool mute;                /* a write timed out: drop frames until SIGIO */
    int looked;               /* tries at finding the port */
    uint8_t hdr[8];
    size_t hdr_got;
    uint8_t *req;             /* the payload being read */
    uint32_t req_len, req_got;
    uint8_t req_type;
    uint16_t req_id;
    struct agent_exec ex[AGENT_MAX_EXECS];
    agent_run_fn run;
    void *run_ctx;
    sigset_t child_mask;      /* the signal mask a command starts with */
    /* what each pollfd handed out stands for */
    struct { int slot, which; } map[AGENT_MAX_FDS];
};

void agent_init(struct agent *a, agent_run_fn run, void *ctx, const sigset_t *child_mask);
/* Fills pfd (at most AGENT_MAX_FDS) and returns how many. */
int agent_pollfds(struct agent *a, struct pollfd *pfd);
void agent_handle(struct agent *a, const struct pollfd *pfd, int n);
/* The poll timeout the agent needs: while the port has not appeared yet
 * it looks again now and then; otherwise -1. */
int agent_timeout(const struct agent *a);
void agent_tick(struct agent *a);
void agent_sigio(struct agent *a);
/* A child other than the workload ended: true when it was a command. */
bool agent_reaped(struct agent *a, pid_t pid, int wstatus);

#endif
