/*
 * init_attach.h - duet-init's relay for a workload run attached (duet run
 * -i/-t): the main command's input from the daemon, its output to the
 * daemon as well as to the log, and with a terminal, the terminal itself.
 *
 * The runtime gives duet-init four more fds and --attach (driver.h's
 * attach; docs/cli.md, duet run):
 *
 *   6  the command's input (a pipe's read end)
 *   7  its stdout, or with a terminal everything it shows (a pipe's write end)
 *   8  its stderr (unused with a terminal)
 *   9  resizes (struct driver_winsize records); its end of file means the
 *      caller has gone
 *
 * With --tty the command runs on a terminal of the container's own devpts
 * (its controlling one, owned by the workload's user), whose master only
 * this process holds: keys from fd 6 are typed into it, what it shows goes
 * to the log and to fd 7.  Without, the command's stdin is fd 6 itself and
 * its stdout and stderr are pipes this process copies into the log and to
 * fds 7 and 8.
 *
 * The relay holds the command back, never the other way round: output is
 * read only when the caller has taken what came before (a slow reader
 * slows the command, as a slow terminal does), and nothing here blocks, so
 * signals are always forwarded and a stop always ends the container.  When
 * the caller goes (fd 9's end of file, or a write that fails because its
 * reader went with the daemon), the command runs on with its output into
 * the log alone: the workload outlives its attachment as it outlives the
 * daemon.
 */
#ifndef DUET_INIT_ATTACH_H
#define DUET_INIT_ATTACH_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#define ATTACH_IN_FD 6
#define ATTACH_OUT_FD 7
#define ATTACH_ERR_FD 8
#define ATTACH_CTL_FD 9
#define ATTACH_FDS 4

/* The log, capped (init_main.c). */
struct logcap {
    unsigned long long max, size;
};
/* Appends buf to the log, rotating at its cap; a full disk drops. */
void init_log_write(struct logcap *l, const char *buf, size_t n);

#define ATTACH_BUF 32768

/* One direction: read from src, copied into the log (to_log) and written
 * to dst as dst takes it. */
struct attach_stream {
    int src, dst;
    bool to_log;
    bool typed;                   /* input of a terminal: its end of file is typed as VEOF */
    char buf[ATTACH_BUF];
    size_t len, off;
};

struct attach {
    bool tty;
    int master;                   /* tty: the terminal's master; -1 */
    int slave;                    /* tty, until the child has it */
    int out_w, err_w;             /* no tty: the command's ends of its output pipes, until it has them */
    int ctl;                      /* -1 once the caller has gone */
    struct attach_stream s[2];    /* tty: shown, typed; no tty: stdout, stderr */
    struct logcap *log;
};

/* Before the fork: the terminal (as uid:gid's) or the output pipes, and the
 * sizes sent before the start.  -1 with errno. */
int attach_prepare(struct attach *a, bool tty, struct logcap *log, unsigned long uid, unsigned long gid);
/* In the child, a session leader already: its stdio.  -1 with errno. */
int attach_child(struct attach *a);
/* In this process after the fork: the child's ends are closed here. */
void attach_parent(struct attach *a);
/* The fds to watch now, from p[0]; returns how many. */
int attach_pollfds(struct attach *a, struct pollfd *p);
/* After a poll over what attach_pollfds gave: moves what is ready. */
void attach_handle(struct attach *a, const struct pollfd *p, int n);
/* The command has ended: what it left in the terminal or pipes, to the
 * log and (bounded in time) to the caller. */
void attach_drain(struct attach *a);

#endif
