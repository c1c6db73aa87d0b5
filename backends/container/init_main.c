/*
 * duet-init - pid 1 of every container.
 *
 *   duet-init --uid UID --gid GID [--groups G1,G2...] --cwd DIR [--cpu-max V] [--stop-signal N]
 *             -- COMMAND [ARG...]
 *
 * Started by the runtime with fd 0 on /dev/null, 1 and 2 on the container's
 * log, 3 on its exit file and 4 on the log's previous generation; with
 * --cpu-max, 5 on the container's CPU quota file (cgroup v2's cpu.max or
 * v1's cpu.cfs_quota_us), into which it writes V and which it closes
 * before COMMAND exists: the workload runs under its quota from its first
 * instruction, and never holds the file.  It starts COMMAND as UID:GID in DIR,
 * forwards the signals a process manager sends (TERM, INT, HUP, QUIT, USR1,
 * USR2, WINCH) to it (TERM as signal N with --stop-signal: the image's
 * StopSignal), reaps every orphan that lands on pid 1, and when
 * COMMAND ends writes "exit N" or "signal N" to the exit file before
 * exiting itself, which ends the container.  The file is how the daemon
 * learns the status even if it was not running at the time.
 *
 *   duet-init --exec [--tty] --uid UID --gid GID [--groups ...] --cwd DIR -- COMMAND...
 *
 * runs one command for `duet exec` and exec health checks.  With --tty its
 * stdio is a terminal of the container's own devpts (duet exec -t), and
 * the command leads a session of its own with that terminal as its
 * controlling one, so ^C and window sizes reach it as in a shell.  The daemon's
 * helper joins the container's namespaces and cgroup, drops to the
 * container's capabilities and filter, and executes this binary from the
 * sealed in-memory copy the runtime keeps (runtime.c): nothing of the
 * daemon's image or descriptors is ever inside the container, and a
 * command the container replaced with "#!/proc/self/exe" finds only that
 * sealed copy.  This process becomes a subreaper of the command's tree;
 * when the helper outside goes (the daemon's timeout killed it) the
 * parent-death signal makes it kill that whole tree, orphans included,
 * before it exits.  When the command ends by itself its background
 * children are left to the container, as with any process it starts.
 *
 *   duet-init --spawner
 *
 * is the container spawner (spawner.h), which the runtime starts once from
 * the same sealed copy: it clones each container's setup process, which
 * executes this binary again as the container's pid 1.
 *
 *   duet-init ... --attach [--tty] ... -- COMMAND [ARG...]
 *
 * runs a workload attached to its caller (duet run -i/-t): fds 6 to 9 are
 * the caller's input, output and resizes, relayed by init_attach.c, and
 * with --tty the command runs on a terminal of the container's own.
 *
 * Logs: the workload's stdout and stderr are a pipe that this process
 * copies into the log (no process of duet's besides this one, and the copy
 * goes on while no daemon runs).  When the log reaches --log-max bytes it
 * becomes the previous generation (fd 4, its content replaced) and starts
 * again empty, so a workload that prints without end holds at most twice
 * that on the host.  The log is opened for appending: a reader of the
 * daemon's sees it shrink at a rotation and starts over.
 *
 * Linked statically and kept small: its private memory is the per-container
 * overhead duet promises (under 256 KiB).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/dirs.h"
#include "init_attach.h"
#include "spawner.h"

#define EXIT_FD 3
#define LOG_FD 1
#define PREV_LOG_FD 4
#define CPU_MAX_FD 5

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "duet-init: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
    _exit(127);
}

static int switch_user(unsigned long uid, unsigned long gid, const char *groups)
{
    gid_t g = (gid_t)gid, list[32];
    size_t n = 0;
    for (const char *p = groups; p && *p && n < 32; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        list[n++] = (gid_t)strtoul(p, NULL, 10);
    if (n == 0)
        list[n++] = g;
    if (setgroups(n, list) < 0 || setresgid(g, g, g) < 0 || setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) < 0)
        return -1;
    return 0;
}

/* Kills every process below this one.  As a subreaper, the orphans of a
 * killed child land here, so the list is read again until it is empty;
 * the container's pids limit bounds how often. */
static void kill_tree(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
    for (;;) {
        bool any = false;
        FILE *f = fopen(path, "re");
        if (f) {
            int pid;
            while (fscanf(f, "%d", &pid) == 1) {
                kill(pid, SIGKILL);
                any = true;
            }
            fclose(f);
        }
        int st;
        pid_t p = waitpid(-1, &st, any ? 0 : WNOHANG);
        if (p < 0 && errno == ECHILD)
            return;
        if (p == 0 && !any)
            return;   /* no child left that /proc shows, none to reap */
    }
}

/* --exec: see the top of the file.  Runs as the workload's user. */
static int exec_main(char **cmd, const char *cwd, bool tty, const sigset_t *all, const sigset_t *old)
{
    /* The user switch reset these: the container may not ptrace this
     * process, and the helper's end must still reach it. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
    /* The helper is outside the container's pid namespace: while it lives
     * it is parent 0 here; anything else means it is gone already. */
    if (getppid() != 0)
        return 137;
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    pid_t child = fork();
    if (child < 0)
        die("cannot fork", NULL);
    if (child == 0) {
        sigprocmask(SIG_SETMASK, old, NULL);
        prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
        if (tty && (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0))
            die("cannot take the terminal", NULL);
        if (chdir(cwd) < 0)
            die("cannot change to the working directory", cwd);
        execvp(cmd[0], cmd);
        int e = errno;
        fprintf(stderr, "duet-init: cannot run %s: %s\n", cmd[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(all, &si);
        if (sig == SIGCHLD) {
            pid_t p;
            int st;
            while ((p = waitpid(-1, &st, WNOHANG)) > 0)
                if (p == child)
                    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        } else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            kill_tree();
            return 128 + SIGKILL;
        }
    }
}

/* The log, capped: see the top of the file. */

/* The current log becomes the previous one; errors leave things as they
 * are (the log grows until the next try), never stop the copy. */
static void log_rotate(struct logcap *l)
{
    /* Written over, then cut to length: a reader of log.1 never finds it
     * empty while this runs. */
    off_t in = 0, out = 0;
    while (in < (off_t)l->size) {
        ssize_t n = copy_file_range(LOG_FD, &in, PREV_LOG_FD, &out, (size_t)((off_t)l->size - in), 0);
        if (n <= 0)
            return;
    }
    if (ftruncate(PREV_LOG_FD, out) < 0)
        return;
    if (ftruncate(LOG_FD, 0) == 0)
        l->size = 0;
}

void init_log_write(struct logcap *l, const char *buf, size_t n)
{
    for (size_t off = 0; off < n;) {
        if (l->max && l->size >= l->max)
            log_rotate(l);
        size_t room = l->max ? (size_t)(l->max - l->size) : n - off;
        size_t chunk = n - off < room ? n - off : room;
        ssize_t w = write(LOG_FD, buf + off, chunk);
        if (w <= 0)
            return;   /* a full disk: drop, keep the workload going */
        off += (size_t)w;
        l->size += (unsigned long long)w;
    }
}

/* Copies what the pipe holds now into the log; false at its end. */
static bool log_pump(int pipe_fd, struct logcap *l)
{
    char buf[65536];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(pipe_fd, buf, sizeof(buf));
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        init_log_write(l, buf, (size_t)n);
    }
    return true;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--spawner") == 0)
        return container_spawner_main();
    unsigned long uid = 0, gid = 0;
    const char *cwd = "/", *groups = NULL, *cpu_max = NULL;
    int stop_signal = 0;
    bool exec_mode = false, tty = false, attach = false;
    struct logcap logcap = {0};
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--exec") == 0) {
            exec_mode = true;
            continue;
        }
        if (strcmp(argv[i], "--tty") == 0) {
            tty = true;
            continue;
        }
        if (strcmp(argv[i], "--attach") == 0) {
            attach = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "duet-init: %s needs a value\n", argv[i]);
            return 127;
        }
        if (strcmp(argv[i], "--uid") == 0)
            uid = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--gid") == 0)
            gid = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cwd") == 0)
            cwd = argv[++i];
        else if (strcmp(argv[i], "--groups") == 0)
            groups = argv[++i];
        else if (strcmp(argv[i], "--log-max") == 0)
            logcap.max = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cpu-max") == 0)
            cpu_max = argv[++i];
        else if (strcmp(argv[i], "--stop-signal") == 0)
            stop_signal = atoi(argv[++i]);
        else {
            fprintf(stderr, "duet-init: unknown option %s\n", argv[i]);
            return 127;
        }
    }
    if (i >= argc) {
        fprintf(stderr, "usage: duet-init [--exec [--tty] | --attach [--tty]] --uid UID --gid GID [--groups G1,G2...] --cwd DIR -- COMMAND [ARG...]\n");
        return 127;
    }
    /* Not dumpable: the workload, even as root, cannot ptrace pid 1 or read
     * its memory through /proc/1/mem. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* Executed from a memfd, the kernel names it after that. */
    prctl(PR_SET_NAME, "duet-init", 0, 0, 0);

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    if (exec_mode) {
        if (switch_user(uid, gid, groups) < 0)
            die("cannot switch to the workload's user", NULL);
        return exec_main(argv + i, cwd, tty, &all, &old);
    }
    fcntl(EXIT_FD, F_SETFD, FD_CLOEXEC);
    fcntl(PREV_LOG_FD, F_SETFD, FD_CLOEXEC);
    if (cpu_max) {
        size_t n = strlen(cpu_max);
        if (write(CPU_MAX_FD, cpu_max, n) != (ssize_t)n)
            die("cannot set the CPU quota (resources.cpus)", cpu_max);
        close(CPU_MAX_FD);
    }
    /* The workload writes into a pipe this process empties into the log;
     * without a previous generation to rotate into, straight into the log. */
    int out[2] = {-1, -1};
    struct stat lst;
    if (logcap.max && fcntl(PREV_LOG_FD, F_GETFD) >= 0 && fstat(LOG_FD, &lst) == 0)
        logcap.size = (unsigned long long)lst.st_size;
    else
        logcap.max = 0;
    bool capped = !attach && logcap.max && pipe2(out, O_CLOEXEC) == 0;
    if (capped)
        fcntl(out[0], F_SETFL, O_NONBLOCK);
    struct attach att;
    if (attach && attach_prepare(&att, tty, &logcap, uid, gid) < 0)
        die(tty ? "cannot make the workload's terminal" : "cannot make the workload's output pipes", NULL);
    /* A working directory the image lacks is made, as root, as docker
     * run -w does (an image's WorkingDir often names one). */
    duet_make_dirs(cwd);
    pid_t child = fork();
    if (child < 0)
        die("cannot fork", NULL);
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        setsid();
        if (attach && attach_child(&att) < 0)
            die("cannot give the workload its terminal or pipes", NULL);
        if (capped && (dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0))
            die("cannot set up the log", NULL);
        if (switch_user(uid, gid, groups) < 0)
            die("cannot switch to the workload's user", NULL);
        if (chdir(cwd) < 0)
            die("cannot change to the working directory", cwd);
        execvp(argv[i], argv + i);
        int e = errno;
        die("cannot run", argv[i]);
        return e == ENOENT ? 127 : 126;
    }
    if (capped)
        close(out[1]);
    if (attach)
        attach_parent(&att);
    int sfd = signalfd(-1, &all, SFD_CLOEXEC);
    if (sfd < 0)
        die("cannot watch for signals", NULL);

    int status = 0;
    bool done = false, piped = capped;
    while (!done) {
        struct pollfd pf[8] = {{.fd = sfd, .events = POLLIN}, {.fd = piped ? out[0] : -1, .events = POLLIN}};
        int n = 2;
        if (attach)
            n += attach_pollfds(&att, pf + 2);
        if (poll(pf, (nfds_t)n, -1) < 0)
            continue;
        if (piped && (pf[1].revents & (POLLIN | POLLHUP)))
            piped = log_pump(out[0], &logcap);
        if (attach)
            attach_handle(&att, pf + 2, n - 2);
        if (!(pf[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
            continue;
        int sig = (int)si.ssi_signo;
        if (sig == SIGCHLD) {
            pid_t p;
            int st;
            while ((p = waitpid(-1, &st, WNOHANG)) > 0)
                if (p == child) {
                    status = st;
                    done = true;
                }
        } else if (sig == SIGTERM && stop_signal > 0) {
            kill(child, stop_signal);   /* a graceful stop, in the image's own signal */
        } else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT || sig == SIGUSR1 ||
                   sig == SIGUSR2 || sig == SIGWINCH || sig == SIGCONT) {
            kill(child, sig);
        }
    }
    /* What the workload wrote before it ended (bounded: a process it left
     * behind may write on, and the container must still end). */
    for (int k = 0; piped && k < 64; k++) {
        struct pollfd pf = {.fd = out[0], .events = POLLIN};
        if (poll(&pf, 1, 0) <= 0 || !log_pump(out[0], &logcap))
            break;
    }
    if (attach)
        attach_drain(&att);
    char line[32];
    int n = WIFEXITED(status) ? snprintf(line, sizeof(line), "exit %d\n", WEXITSTATUS(status))
                              : snprintf(line, sizeof(line), "signal %d\n", WTERMSIG(status));
    if (write(EXIT_FD, line, (size_t)n) != n)
        fprintf(stderr, "duet-init: cannot record the exit status: %s\n", strerror(errno));
    /* No fsync: the file must outlive the daemon, not the host (a host
     * crash ends the container too), and the page cache outlives the daemon. */
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
