/*
 * pty_client.h - `duet exec -it` (or any duet command: `duet run -it`) run
 * on a pseudo-terminal of the test's, as a user's shell would run it: what
 * it shows is read, keys are typed into it, and its exit status is waited
 * for.
 */
#ifndef DUET_TESTS_PTY_CLIENT_H
#define DUET_TESTS_PTY_CLIENT_H

#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "dtest.h"

/* A client on a pseudo-terminal of ours, as a user's shell would run it. */
struct pty_client {
    int master;
    pid_t pid;
    char seen[65536];
    size_t len;
};

/* `duet --socket SOCK ARGS...` on a terminal of ours (24x80). */
static inline void pty_client_spawn(struct pty_client *c, struct dd *d, const char *const *args)
{
    memset(c, 0, sizeof(*c));
    c->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    cr_assert(c->master >= 0 && grantpt(c->master) == 0 && unlockpt(c->master) == 0);
    struct winsize ws = {.ws_row = 24, .ws_col = 80};
    ioctl(c->master, TIOCSWINSZ, &ws);
    char slave[64];
    cr_assert_eq(ptsname_r(c->master, slave, sizeof(slave)), 0);
    const char *argv[24] = {dd_env("DUET_BIN"), "--socket", d->sock};
    size_t n = 3;
    for (size_t i = 0; args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    c->pid = fork();
    cr_assert(c->pid >= 0);
    if (c->pid == 0) {
        setsid();
        int s = open(slave, O_RDWR);
        if (s < 0 || ioctl(s, TIOCSCTTY, 0) < 0)
            _exit(120);
        dup2(s, 0);
        dup2(s, 1);
        dup2(s, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
}

/* `duet exec -it NAME -- CMD...` on a terminal of ours. */
static inline void pty_client_start(struct pty_client *c, struct dd *d, const char *name, const char *const *cmd)
{
    const char *args[20] = {"exec", "-it", name, "--"};
    size_t n = 4;
    for (size_t i = 0; cmd[i] && n < 19; i++)
        args[n++] = cmd[i];
    args[n] = NULL;
    pty_client_spawn(c, d, args);
}

/* Reads what the terminal shows until it holds want (after `from`), at
 * most ms; true when it did. */
static inline bool pty_until(struct pty_client *c, size_t from, const char *want, int ms)
{
    uint64_t end = dd_now_ms() + (uint64_t)ms;
    for (;;) {
        c->seen[c->len] = '\0';
        if (strstr(c->seen + from, want))
            return true;
        int left = (int)((int64_t)end - (int64_t)dd_now_ms());
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = c->master, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t n = read(c->master, c->seen + c->len, sizeof(c->seen) - 1 - c->len);
        if (n <= 0)
            return false;
        c->len += (size_t)n;
        if (c->len > sizeof(c->seen) - 1024) {
            /* keep the newest */
            memmove(c->seen, c->seen + c->len / 2, c->len - c->len / 2);
            c->len -= c->len / 2;
        }
    }
}

static inline void pty_type(struct pty_client *c, const char *s)
{
    cr_assert_eq(write(c->master, s, strlen(s)), (ssize_t)strlen(s));
}

/* Resizes our terminal; true once `stty size` in the command's shows
 * it (SIGWINCH, a record to duetd, the workload's terminal), asked again
 * every try_ms, 20 times at most. */
static inline bool pty_resized(struct pty_client *c, unsigned short rows, unsigned short cols, int try_ms)
{
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    ioctl(c->master, TIOCSWINSZ, &ws);
    char want[32];
    snprintf(want, sizeof(want), "%u %u", rows, cols);
    for (int i = 0; i < 20; i++) {
        size_t at = c->len;
        pty_type(c, "stty size\r");
        if (pty_until(c, at, want, try_ms))
            return true;
    }
    return false;
}

/* A sleep typed at the shell's prompt, then ^C: true when the prompt
 * came back (the workload's terminal turned it into SIGINT there). */
static inline bool pty_interrupts(struct pty_client *c)
{
    size_t at = c->len;
    pty_type(c, "sleep 600; echo after-sleep\r");
    usleep(300000);
    pty_type(c, "\x03");
    return pty_until(c, at, "# ", 10000);
}

static inline int pty_wait(struct pty_client *c)
{
    /* What is left on the terminal is read so the client never blocks
     * (its terminal's end reads EIO for a moment before it can be reaped:
     * the wait is by time, not by turns). */
    uint64_t deadline = dd_now_ms() + 15000;
    while (dd_now_ms() < deadline) {
        int st;
        pid_t r = waitpid(c->pid, &st, WNOHANG);
        if (r == c->pid) {
            close(c->master);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (!pty_until(c, c->len, "\x01never\x01", 50))
            usleep(20000);
    }
    kill(c->pid, SIGKILL);
    int e = waitpid(c->pid, NULL, 0) < 0 ? errno : 0;
    close(c->master);
    c->seen[c->len] = '\0';
    cr_assert_fail("the client did not end (waitpid: %s); its terminal showed: %s", strerror(e), c->seen);
    return -1;
}

#endif
