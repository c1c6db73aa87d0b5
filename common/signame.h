/*
 * signame.h - a signal's number from its name, as an image's StopSignal
 * spells it ("SIGQUIT", "QUIT", "3", "SIGRTMIN+3"), the forms Docker
 * takes.  Header-only: duetd reads image configs with it and duet-init,
 * a static binary, needs nothing of it but the number.
 */
#ifndef DUET_SIGNAME_H
#define DUET_SIGNAME_H

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The signal s names, or 0 when it names none (0 itself is not one). */
static inline int duet_signal_parse(const char *s)
{
    static const struct {
        const char *name;
        int sig;
    } t[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},     {"TRAP", SIGTRAP},
        {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},     {"FPE", SIGFPE},     {"KILL", SIGKILL},
        {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},     {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},   {"ALRM", SIGALRM},
        {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CONT", SIGCONT},   {"STOP", SIGSTOP},
        {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},     {"XCPU", SIGXCPU},
        {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},   {"WINCH", SIGWINCH}, {"IO", SIGIO},
        {"POLL", SIGPOLL}, {"PWR", SIGPWR},       {"SYS", SIGSYS},
    };
    if (!s || !*s || strlen(s) > 16)
        return 0;
    char *end;
    if (*s >= '0' && *s <= '9') {
        long n = strtol(s, &end, 10);
        return *end == '\0' && n >= 1 && n <= SIGRTMAX ? (int)n : 0;
    }
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcasecmp(s, t[i].name) == 0)
            return t[i].sig;
    /* RTMIN, RTMIN+N, RTMAX, RTMAX-N, within the real-time range */
    int base = 0, dir = 0;
    if (strncasecmp(s, "RTMIN", 5) == 0)
        base = SIGRTMIN, dir = 1;
    else if (strncasecmp(s, "RTMAX", 5) == 0)
        base = SIGRTMAX, dir = -1;
    if (!base)
        return 0;
    s += 5;
    if (!*s)
        return base;
    if (*s != (dir > 0 ? '+' : '-') || s[1] < '0' || s[1] > '9')
        return 0;
    long n = strtol(s + 1, &end, 10);
    long sig = base + dir * n;
    return *end == '\0' && sig >= SIGRTMIN && sig <= SIGRTMAX ? (int)sig : 0;
}

#endif
