/*
 * exec_tty.h - the daemon's end of `duet exec -t` in a container: a thread
 * that copies between the terminal's master (made in the container's own
 * devpts, runtime.c) and the caller's descriptors.
 *
 * What is typed (in_fd) goes to the master, what the terminal shows goes
 * to out_fd (resizes are the caller's, on its own copy of the master).  Every
 * descriptor is non-blocking and each direction has a buffer of its own,
 * so a command that stops reading its input never stops its output from
 * flowing, nor the other way round.  The end of in_fd is passed on as the
 * terminal's end-of-file character (^D), as a user at a terminal gives it.
 *
 * The command ending is told by the caller (exec_tty_finish): what the
 * terminal still holds is copied, then the master is closed (a background
 * process left on the terminal gets SIGHUP) and done() runs on the loop.
 */
#ifndef DUET_CONTAINER_EXEC_TTY_H
#define DUET_CONTAINER_EXEC_TTY_H

#include <uv.h>

#include "common/err.h"

struct exec_tty;

/* Takes master (closes it in every case); the other fds stay the
 * caller's, open until done. */
struct exec_tty *exec_tty_start(uv_loop_t *loop, int master, int in_fd, int out_fd, void (*done)(void *opaque),
                                void *opaque, struct duet_err *err);
/* The command has ended: copy what is left, then end (done follows). */
void exec_tty_finish(struct exec_tty *t);
/* Ends at once, nothing more copied, done not called; waits for the
 * thread.  For a daemon that is closing. */
void exec_tty_abort(struct exec_tty *t);

#endif
