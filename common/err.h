/*
 * err.h - the error value every fallible duet function fills in.
 *
 * A failure travels up the call chain as a `struct duet_err`: the errno that
 * caused it (0 when the cause is not a system call) and one line of text that
 * names the thing that failed and, where a user can act, the fix.  Callers
 * that add context prefix the message with duet_err_prefix() instead of
 * replacing it, so the innermost cause is never lost.
 */
#ifndef DUET_ERR_H
#define DUET_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define DUET_ERR_MSG_MAX 512

struct duet_err {
    int code;                     /* errno of the cause, or 0 */
    char msg[DUET_ERR_MSG_MAX];   /* one line, no trailing newline */
};

/* Sets err (when not NULL) and returns -1, so callers can write
 * `return duet_err_set(err, ENOENT, "...")`. */
int duet_err_set(struct duet_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like duet_err_set, with code = errno and ": strerror(errno)" appended. */
int duet_err_sys(struct duet_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prepends "CONTEXT: " to an error already set; returns -1. */
int duet_err_prefix(struct duet_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void duet_err_clear(struct duet_err *err);

#endif
