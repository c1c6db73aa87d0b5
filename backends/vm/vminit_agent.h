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
    /* The workload's own command, attached (duet run -i/-t): held until
     * the host attaches ('A'), then relayed; detached when the host goes
     * or says so ('d'), or when none came in time: its output then goes
     * to the console alone, which it is copied to all along. */
    bool main, attached, detached;
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
    int main_slot;            /* the attached workload's command: its ex[] slot, or -1 */
    uint64_t hold_until;      /* until then its output waits for the host to attach */
    bool main_ended;          /* its slot is done */
    bool main_told;           /* the host was sent its status, and ... */
    bool main_acked;          /* ... said it has it ('d') */
    uint16_t main_id;
    uint64_t ack_until;
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

/* duet run -i/-t: the workload's own command, attached.  Before its fork:
 * a terminal (its user's) or pipes; stdio gets the child's stdin, stdout
 * and stderr.  -1 on failure. */
int agent_main_prepare(struct agent *a, bool tty, uid_t uid, gid_t gid, int stdio[3]);
/* After the fork: its pid; the child's ends are closed here. */
void agent_main_started(struct agent *a, pid_t pid, int stdio[3]);
/* It ended (status as a shell gives it): the rest of its output follows. */
void agent_main_reaped(struct agent *a, int status);
/* Its output is out and the host has its status, or nobody waits for it. */
bool agent_main_done(const struct agent *a);

#endif
