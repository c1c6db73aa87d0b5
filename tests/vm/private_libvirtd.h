/*
 * private_libvirtd.h - a libvirtd of the test's own.
 *
 * libvirtd's sockets and state live at fixed paths (/run/libvirt,
 * /var/lib/libvirt, ...), and a second libvirtd on the same sockets breaks
 * the first.  So the calling process moves into a private mount namespace,
 * mounts empty directories of its own over those paths, and starts libvirtd
 * there with its own pid file; only this process (and its children) see
 * that daemon.  It is stopped by the pid in its pid file, never by name.
 */
#ifndef DUET_PRIVATE_LIBVIRTD_H
#define DUET_PRIVATE_LIBVIRTD_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct private_libvirtd {
    char root[64];
    char pidfile[128];
    pid_t pid;
    pid_t reaper;                  /* the child that libvirtd and its QEMUs are reparented to */
};

static inline void private_libvirtd_reaper_stop(struct private_libvirtd *d)
{
    if (d->reaper > 0) {
        kill(d->reaper, SIGKILL);
        waitpid(d->reaper, NULL, 0);
        d->reaper = 0;
    }
}

static inline void plv_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* 0 on success; otherwise -1 with why filled.  qemu_as_root: QEMU runs as
 * root; otherwise as libvirt-qemu, Debian's default. */
static inline int private_libvirtd_start_as(struct private_libvirtd *d, bool qemu_as_root, char *why, size_t len)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->root, sizeof(d->root), "/tmp/duet-libvirtd-XXXXXX");
    if (!mkdtemp(d->root)) {
        snprintf(why, len, "mkdtemp: %s", strerror(errno));
        return -1;
    }
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        snprintf(why, len, "private mount namespace: %s", strerror(errno));
        return -1;
    }
    static const char *const over[] = {"/run/libvirt", "/var/lib/libvirt", "/var/log/libvirt",
                                       "/var/cache/libvirt", "/etc/libvirt"};
    for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
        char src[128];
        snprintf(src, sizeof(src), "%s/%zu", d->root, i);
        mkdir(src, 0755);
        mkdir(over[i], 0755);   /* may exist already */
        if (mount(src, over[i], NULL, MS_BIND, NULL) < 0) {
            snprintf(why, len, "bind %s over %s: %s", src, over[i], strerror(errno));
            return -1;
        }
    }
    /* QEMU as root (no qemu user's files to set up), stdio to files (no
     * virtlogd to start), and ownership of files left alone. */
    FILE *f = fopen("/etc/libvirt/qemu.conf", "we");
    if (!f) {
        snprintf(why, len, "qemu.conf: %s", strerror(errno));
        return -1;
    }
    if (qemu_as_root)
        fputs("user = \"root\"\ngroup = \"root\"\nstdio_handler = \"file\"\nremember_owner = 0\n", f);
    else
        fputs("stdio_handler = \"file\"\nremember_owner = 0\n", f);
    fclose(f);
    f = fopen("/etc/libvirt/libvirtd.conf", "we");
    if (f) {
        fputs("log_outputs = \"3:file:/var/log/libvirt/libvirtd.log\"\n", f);
        fclose(f);
    }
    snprintf(d->pidfile, sizeof(d->pidfile), "%s/libvirtd.pid", d->root);
    /* libvirtd and every QEMU it daemonizes (the capability probes too)
     * are reparented to a reaper of their own, a child of this process
     * that reaps them as they end: libvirt waits for a QEMU it killed to be
     * gone, and a zombie left to a caller that does not reap (or reaps
     * only its own) would hold it for each probe. */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        snprintf(why, len, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t reaper = fork();
    if (reaper < 0) {
        snprintf(why, len, "fork: %s", strerror(errno));
        return -1;
    }
    if (reaper == 0) {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(pfd[0]);
        pid_t child = fork();
        if (child == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            execlp("libvirtd", "libvirtd", "--daemon", "--pid-file", d->pidfile, (char *)NULL);
            _exit(127);
        }
        int cst = -1;
        if (child > 0)
            waitpid(child, &cst, 0);
        if (write(pfd[1], &cst, sizeof(cst)) != (ssize_t)sizeof(cst))
            _exit(1);
        close(pfd[1]);
        for (;;)
            if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
                plv_sleep_ms(100);
    }
    close(pfd[1]);
    d->reaper = reaper;
    int st = -1;
    ssize_t got = read(pfd[0], &st, sizeof(st));
    close(pfd[0]);
    if (got != (ssize_t)sizeof(st) || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(why, len, "libvirtd --daemon failed (status %d); is libvirt-daemon installed?", st);
        private_libvirtd_reaper_stop(d);
        return -1;
    }
    for (int i = 0; i < 300; i++) {
        FILE *p = fopen(d->pidfile, "re");
        int pid = 0;
        if (p) {
            if (fscanf(p, "%d", &pid) != 1)
                pid = 0;
            fclose(p);
        }
        if (pid > 0 && access("/run/libvirt/libvirt-sock", F_OK) == 0) {
            d->pid = pid;
            return 0;
        }
        plv_sleep_ms(50);
    }
    snprintf(why, len, "libvirtd did not come up (no pid file or socket after 15 s)");
    return -1;
}

static inline int private_libvirtd_start(struct private_libvirtd *d, char *why, size_t len)
{
    return private_libvirtd_start_as(d, true, why, len);
}

static inline void private_libvirtd_stop(struct private_libvirtd *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        for (int i = 0; i < 200 && kill(d->pid, 0) == 0; i++) {
            waitpid(d->pid, NULL, WNOHANG);   /* ours if this process is a subreaper */
            plv_sleep_ms(50);
        }
        if (kill(d->pid, 0) == 0)
            kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, WNOHANG);
        d->pid = 0;
    }
    private_libvirtd_reaper_stop(d);
}

#endif
