/*
 * vminit_agent.c - the guest's end of duet exec (vminit_agent.h).
 *
 * The port.  The kernel names a virtio-serial port by what the host
 * called it (/sys/class/virtio-ports/vportNpM/name); without udev there is
 * no /dev/virtio-ports link, so the agent reads the names itself.  While
 * no host holds the other end, poll() reports the port hung up at once
 * and forever: the agent stops watching it then, and starts again on
 * SIGIO, which the driver sends when the host connects or data comes
 * (O_ASYNC).  The news that the host connected travels apart from its
 * data and may come after it: a hang-up means the host went only once
 * the port was seen up.
 *
 * Writes.  The port is non-blocking, and a frame that cannot go within a
 * second (the host stopped reading) is dropped: pid 1 must never hang on
 * its host.  When the host goes, every command it asked for is killed:
 * nobody waits for its answer any more.
 *
 * Input ('X' commands: duet exec -i, -t).  The host's input is kept until
 * the command takes it, acknowledged as it does; the host never sends more
 * than a window ahead, so what is kept is bounded.  The command's output
 * goes only while the host has granted room for it; otherwise its fds are
 * not read and the command blocks on its writes, as on a slow terminal.
 * A terminal is a pty of the guest's own devpts (/dev/pts/ptmx); the
 * command gets its other end as its controlling terminal.
 *
 * The workload's own command (duet run -i/-t) is a command of the agent's
 * too, one it started itself: made like an 'X' command, its output held
 * until the host attaches ('A', at most ATTACH_HOLD_MS), then relayed as
 * an 'X' command's is, and copied to the console (its log) all along.
 * When the host goes or detaches ('d') it runs on, its input ended and
 * its output into the console alone: it is never killed for its host.
 * Its status is the host's last word from it, which the host
 * acknowledges ('d' again) before the guest powers off.
 */
#include "vminit_agent.h"

#include "agent_proto.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PORT_LOOK_MS 100
#define PORT_LOOK_TRIES 100          /* ten seconds after boot */
#define ATTACH_HOLD_MS 30000         /* an attached command waits this long for its host */
#define ACK_WAIT_MS 2000             /* for the host to say it has the attached command's status */

static int find_port(void)
{
    DIR *d = opendir("/sys/class/virtio-ports");
    if (!d)
        return -1;
    int fd = -1;
    struct dirent *e;
    while (fd < 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.' || strlen(e->d_name) > 64)
            continue;
        char path[320], name[64] = "";
        snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
        int nf = open(path, O_RDONLY | O_CLOEXEC);
        if (nf < 0)
            continue;
        ssize_t n = read(nf, name, sizeof(name) - 1);
        close(nf);
        if (n <= 0)
            continue;
        name[n] = '\0';
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, VM_AGENT_PORT) != 0)
            continue;
        snprintf(path, sizeof(path), "/dev/%s", e->d_name);
        fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    }
    closedir(d);
    if (fd >= 0) {
        fcntl(fd, F_SETOWN, getpid());
        fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK | O_ASYNC);
    }
    return fd;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void agent_init(struct agent *a, agent_run_fn run, void *ctx, const sigset_t *child_mask)
{
    memset(a, 0, sizeof(*a));
    a->run = run;
    a->run_ctx = ctx;
    a->child_mask = *child_mask;
    a->main_slot = -1;
    a->port = find_port();
    a->connected = a->port >= 0;   /* poll says at once if it is not */
}

int agent_timeout(const struct agent *a)
{
    int t = a->port < 0 && a->looked < PORT_LOOK_TRIES ? PORT_LOOK_MS : -1;
    const struct agent_exec *m = a->main_slot >= 0 ? &a->ex[a->main_slot] : NULL;
    if (m && m->used && m->main && !m->attached && !m->detached) {
        uint64_t now = now_ms();
        int left = a->hold_until > now ? (int)(a->hold_until - now) : 0;
        if (t < 0 || left < t)
            t = left;
    }
    if (a->main_told && !a->main_acked) {
        uint64_t now = now_ms();
        int left = a->ack_until > now ? (int)(a->ack_until - now) : 0;
        if (t < 0 || left < t)
            t = left;
    }
    return t;
}

void agent_tick(struct agent *a)
{
    if (a->port >= 0 || a->looked >= PORT_LOOK_TRIES)
        return;
    a->looked++;
    a->port = find_port();
    a->connected = a->port >= 0;
}

void agent_sigio(struct agent *a)
{
    if (a->port >= 0) {
        a->connected = true;
        a->mute = false;
    }
}

/* A port whose host has not been seen connected yet polls as hung up
 * rather than waiting: the wait is then a short sleep, a second at most. */
static bool write_all(int fd, const uint8_t *p, size_t n)
{
    uint64_t until = now_ms() + 1000;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return false;
        uint64_t t = now_ms();
        if (t >= until)
            return false;
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, (int)(until - t)) > 0 && !(pf.revents & POLLOUT))
            usleep(10000);
    }
    return true;
}

static void send_frame(struct agent *a, uint8_t type, uint16_t id, const void *data, uint32_t len)
{
    if (a->port < 0 || a->mute)
        return;
    uint8_t h[VM_AGENT_HDR];
    vm_agent_hdr_put(h, type, id, len);
    if (!write_all(a->port, h, sizeof(h)) || (len && !write_all(a->port, data, len)))
        a->mute = true;   /* until SIGIO says something changed */
}

static void send_u32(struct agent *a, uint8_t type, uint16_t id, uint32_t v)
{
    uint8_t b[4];
    vm_agent_u32_put(b, v);
    send_frame(a, type, id, b, 4);
}

static void exec_close_fd(struct agent_exec *x, int which)
{
    if (x->fd[which] >= 0)
        close(x->fd[which]);
    x->fd[which] = -1;
}

static void exec_close_input(struct agent_exec *x)
{
    if (x->in_fd >= 0)
        close(x->in_fd);
    x->in_fd = -1;
    free(x->in_buf);
    x->in_buf = NULL;
    x->in_len = 0;
}

/* Reports a command that has ended and printed all it will. */
static void exec_maybe_done(struct agent *a, struct agent_exec *x)
{
    if (!x->used || !x->reaped || x->fd[0] >= 0 || x->fd[1] >= 0)
        return;
    exec_close_input(x);
    if (!x->lost)
        send_u32(a, VM_AGENT_STATUS, x->id, (uint32_t)x->status);
    if (x->main) {
        a->main_slot = -1;
        a->main_ended = true;
        a->main_told = !x->lost;
        a->main_id = x->id;
        a->ack_until = now_ms() + ACK_WAIT_MS;
    }
    x->used = false;
}

/* The attached command runs on without its host. */
static void main_detach(struct agent_exec *x)
{
    x->attached = false;
    x->detached = true;
    x->lost = true;
    exec_close_input(x);
}

/* The host is gone: its commands are killed, their answers dropped. */
static void host_gone(struct agent *a)
{
    a->up = false;
    a->hdr_got = 0;
    free(a->req);
    a->req = NULL;
    for (int i = 0; i < AGENT_MAX_EXECS; i++) {
        struct agent_exec *x = &a->ex[i];
        if (!x->used)
            continue;
        if (x->main) {
            main_detach(x);
            continue;
        }
        x->lost = true;
        if (!x->reaped)
            kill(-x->pid, SIGKILL);
    }
    a->main_acked = true;   /* nobody is left to say so */
}

static void refuse(struct agent *a, uint16_t id, const char *why)
{
    send_frame(a, VM_AGENT_ERR, id, why, (uint32_t)strlen(why));
    send_u32(a, VM_AGENT_STATUS, id, (uint32_t)-1);
}

/* A terminal: the master (non-blocking) in *master, the command's end in
 * *slave, at the size asked for; -1 on failure. */
static int open_terminal(int *master, int *slave, unsigned rows, unsigned cols)
{
    *master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (*master < 0)
        return -1;
    int unlock = 0;
    if (ioctl(*master, TIOCSPTLCK, &unlock) < 0) {
        close(*master);
        return -1;
    }
    if (rows && cols) {
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        ioctl(*master, TIOCSWINSZ, &ws);
    }
    *slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*slave < 0) {
        close(*master);
        return -1;
    }
    return 0;
}

/* io: an 'X' command, whose payload begins with its head. */
static void run_command(struct agent *a, uint16_t id, uint8_t *payload, uint32_t len, bool io)
{
    bool tty = false;
    unsigned rows = 0, cols = 0;
    if (io) {
        if (len < VM_AGENT_IO_HEAD)
            return refuse(a, id, "duet-vminit: the command is malformed\n");
        tty = payload[0] & VM_AGENT_IO_TTY;
        rows = (unsigned)payload[2] << 8 | payload[3];
        cols = (unsigned)payload[4] << 8 | payload[5];
        payload += VM_AGENT_IO_HEAD;
        len -= VM_AGENT_IO_HEAD;
    }
    if (len == 0 || payload[len - 1] != '\0')
        return refuse(a, id, "duet-vminit: the command is malformed\n");
    for (int i = 0; i < AGENT_MAX_EXECS; i++)
        if (a->ex[i].used && !a->ex[i].lost && a->ex[i].id == id)
            return refuse(a, id, "duet-vminit: a command with this id runs already\n");
    struct agent_exec *x = NULL;
    for (int i = 0; i < AGENT_MAX_EXECS && !x; i++)
        if (!a->ex[i].used)
            x = &a->ex[i];
    if (!x)
        return refuse(a, id, "duet-vminit: 16 commands run in this VM already; try again when one has ended\n");
    size_t argc = 0;
    for (uint32_t i = 0; i < len; i++)
        argc += payload[i] == '\0';
    char **argv = calloc(argc + 1, sizeof(char *));
    uint8_t *in_buf = io ? malloc(VM_AGENT_WINDOW) : NULL;
    /* Without a terminal: pipes for stdout and stderr, and for stdin with
     * io.  With one: its master as out[0] and in[1], its other end as
     * out[1]. */
    int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
    bool ok = argv && (!io || in_buf);
    if (ok && tty)
        ok = open_terminal(&out[0], &out[1], rows, cols) == 0 && (in[1] = dup(out[0])) >= 0;
    else if (ok)
        ok = pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0 && (!io || pipe2(in, O_CLOEXEC) == 0);
    if (!ok) {
        free(argv);
        free(in_buf);
        for (int i = 0; i < 2; i++) {
            if (out[i] >= 0)
                close(out[i]);
            if (err[i] >= 0)
                close(err[i]);
            if (in[i] >= 0)
                close(in[i]);
        }
        return refuse(a, id, tty ? "duet-vminit: cannot open a terminal for the command\n"
                                 : "duet-vminit: out of memory or file descriptors for the command\n");
    }
    char *p = (char *)payload;
    for (size_t i = 0; i < argc; i++) {
        argv[i] = p;
        p += strlen(p) + 1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        sigprocmask(SIG_SETMASK, &a->child_mask, NULL);
        setsid();
        if (tty) {
            if (ioctl(out[1], TIOCSCTTY, 0) < 0 || dup2(out[1], 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0)
                _exit(127);
        } else {
            int stdin_fd = io ? in[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (stdin_fd < 0 || dup2(stdin_fd, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
                _exit(127);
        }
        a->run(a->run_ctx, argv);
        _exit(127);
    }
    free(argv);
    close(out[1]);
    if (err[1] >= 0)
        close(err[1]);
    if (in[0] >= 0)
        close(in[0]);
    if (pid < 0) {
        close(out[0]);
        if (err[0] >= 0)
            close(err[0]);
        if (in[1] >= 0)
            close(in[1]);
        free(in_buf);
        return refuse(a, id, "duet-vminit: cannot fork the command\n");
    }
    *x = (struct agent_exec){.used = true, .id = id, .pid = pid, .fd = {out[0], err[0]}, .io = io, .tty = tty,
                             .in_fd = in[1], .in_buf = in_buf, .out_credit = VM_AGENT_WINDOW};
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    if (err[0] >= 0)
        fcntl(err[0], F_SETFL, O_NONBLOCK);
    if (in[1] >= 0)
        fcntl(in[1], F_SETFL, O_NONBLOCK);
}

static struct agent_exec *exec_of(struct agent *a, uint16_t id)
{
    for (int i = 0; i < AGENT_MAX_EXECS; i++)
        if (a->ex[i].used && !a->ex[i].lost && a->ex[i].id == id && (!a->ex[i].main || a->ex[i].attached))
            return &a->ex[i];
    return NULL;
}

static struct agent_exec *main_of(struct agent *a)
{
    struct agent_exec *x = a->main_slot >= 0 ? &a->ex[a->main_slot] : NULL;
    return x && x->used && x->main ? x : NULL;
}

/* 'A': the host attaches to the workload's command, as id. */
static void attach_main(struct agent *a, uint16_t id, const uint8_t *head, uint32_t len)
{
    struct agent_exec *x = main_of(a);
    if (len != VM_AGENT_IO_HEAD)
        return refuse(a, id, "duet-vminit: the attach is malformed\n");
    if (!x || x->attached || x->detached)
        return refuse(a, id, "duet-vminit: the workload's command cannot be attached (it was started without duet "
                             "run -i/-t, runs detached, or is attached already)\n");
    if (exec_of(a, id))
        return refuse(a, id, "duet-vminit: a command with this id runs already\n");
    x->id = id;
    x->attached = true;
    x->out_credit = VM_AGENT_WINDOW;
    unsigned rows = (unsigned)head[2] << 8 | head[3], cols = (unsigned)head[4] << 8 | head[5];
    if (x->tty && rows && cols && x->fd[0] >= 0) {
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        ioctl(x->fd[0], TIOCSWINSZ, &ws);
    }
}

/* 'd': the host lets go of the workload's command, or says it has its
 * status. */
static void detach_main(struct agent *a, uint16_t id)
{
    if (a->main_told && id == a->main_id) {
        a->main_acked = true;
        return;
    }
    struct agent_exec *x = main_of(a);
    if (x && x->attached && x->id == id)
        main_detach(x);
}

/* Writes what the command will take of its input, and says how much. */
static void exec_write(struct agent *a, struct agent_exec *x)
{
    uint32_t took = 0;
    while (x->in_fd >= 0 && x->in_len > took) {
        ssize_t n = write(x->in_fd, x->in_buf + took, x->in_len - took);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            /* It closed its input: the rest is taken, to nowhere. */
            took = x->in_len;
            if (x->in_fd >= 0)
                close(x->in_fd);
            x->in_fd = -1;
            break;
        }
        took += (uint32_t)n;
    }
    if (!took)
        return;
    memmove(x->in_buf, x->in_buf + took, x->in_len - took);
    x->in_len -= took;
    send_u32(a, VM_AGENT_ACK, x->id, took);
    if (x->in_end && !x->in_len && !x->tty && x->in_fd >= 0) {
        close(x->in_fd);
        x->in_fd = -1;
    }
}

static void input_in(struct agent *a, uint16_t id, const uint8_t *data, uint32_t len)
{
    struct agent_exec *x = exec_of(a, id);
    if (!x || !x->io)
        return;
    if (x->in_fd < 0) {
        send_u32(a, VM_AGENT_ACK, id, len);   /* nobody reads it any more */
        return;
    }
    if (len > VM_AGENT_WINDOW - x->in_len)
        return;   /* past the window: not duet's host */
    memcpy(x->in_buf + x->in_len, data, len);
    x->in_len += len;
    exec_write(a, x);
}

static void input_end(struct agent *a, uint16_t id)
{
    struct agent_exec *x = exec_of(a, id);
    if (!x || !x->io)
        return;
    x->in_end = true;
    /* A terminal has no end of input but ^D, which is the user's to type. */
    if (!x->in_len && !x->tty && x->in_fd >= 0) {
        close(x->in_fd);
        x->in_fd = -1;
    }
}

static void winsize_in(struct agent *a, uint16_t id, const uint8_t *data, uint32_t len)
{
    struct agent_exec *x = exec_of(a, id);
    if (!x || !x->tty || len != 4 || x->fd[0] < 0)
        return;
    struct winsize ws = {.ws_row = (unsigned short)(data[0] << 8 | data[1]),
                         .ws_col = (unsigned short)(data[2] << 8 | data[3])};
    ioctl(x->fd[0], TIOCSWINSZ, &ws);
}

static void grant_in(struct agent *a, uint16_t id, const uint8_t *data, uint32_t len)
{
    struct agent_exec *x = exec_of(a, id);
    if (!x || !x->io || len != 4)
        return;
    uint32_t more = vm_agent_u32_get(data);
    x->out_credit = more > 2 * VM_AGENT_WINDOW - x->out_credit ? 2 * VM_AGENT_WINDOW : x->out_credit + more;
}

static void kill_command(struct agent *a, uint16_t id)
{
    for (int i = 0; i < AGENT_MAX_EXECS; i++) {
        struct agent_exec *x = &a->ex[i];
        if (x->used && !x->lost && x->id == id && !x->reaped && !x->main)
            kill(-x->pid, SIGKILL);
    }
}

static void frame_in(struct agent *a)
{
    if (a->req_type == VM_AGENT_RUN || a->req_type == VM_AGENT_RUN_IO)
        run_command(a, a->req_id, a->req, a->req_len, a->req_type == VM_AGENT_RUN_IO);
    else if (a->req_type == VM_AGENT_KILL)
        kill_command(a, a->req_id);
    else if (a->req_type == VM_AGENT_INPUT)
        input_in(a, a->req_id, a->req, a->req_len);
    else if (a->req_type == VM_AGENT_INPUT_END)
        input_end(a, a->req_id);
    else if (a->req_type == VM_AGENT_WINSIZE)
        winsize_in(a, a->req_id, a->req, a->req_len);
    else if (a->req_type == VM_AGENT_GRANT)
        grant_in(a, a->req_id, a->req, a->req_len);
    else if (a->req_type == VM_AGENT_ATTACH)
        attach_main(a, a->req_id, a->req, a->req_len);
    else if (a->req_type == VM_AGENT_DETACH)
        detach_main(a, a->req_id);
    free(a->req);
    a->req = NULL;
    a->hdr_got = 0;
}

/* Reads what the host sent; false when it has gone. */
static bool port_read(struct agent *a)
{
    for (;;) {
        ssize_t n;
        if (a->hdr_got < VM_AGENT_HDR) {
            n = read(a->port, a->hdr + a->hdr_got, VM_AGENT_HDR - a->hdr_got);
        } else {
            n = read(a->port, a->req + a->req_got, a->req_len - a->req_got);
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0)
            return false;
        if (a->hdr_got < VM_AGENT_HDR) {
            a->hdr_got += (size_t)n;
            if (a->hdr_got < VM_AGENT_HDR)
                continue;
            vm_agent_hdr_get(a->hdr, &a->req_type, &a->req_id, &a->req_len);
            if (a->req_len > VM_AGENT_REQ_MAX)
                return false;   /* not duet's host: stop listening to it */
            a->req = malloc(a->req_len + 1);
            if (!a->req)
                return false;
            a->req_got = 0;
        } else {
            a->req_got += (uint32_t)n;
        }
        if (a->req_got == a->req_len)
            frame_in(a);
    }
}

/* The console (the workload's log) takes all: pid 1 writes it as the
 * workload itself would. */
static void console_write(const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(1, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void exec_read(struct agent *a, struct agent_exec *x, int which)
{
    static uint8_t buf[VM_AGENT_DATA_MAX];
    size_t want = sizeof(buf);
    bool counted = x->io && !x->detached;
    if (counted && x->out_credit < want)
        want = x->out_credit;
    if (!want)
        return;
    ssize_t n = read(x->fd[which], buf, want);
    /* A terminal whose command has ended: what it had is read, and what
     * it started may hold it open for ever. */
    if (n < 0 && errno == EAGAIN && x->tty && x->reaped)
        n = 0;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {   /* a terminal's master says EIO once its other end is closed */
        exec_close_fd(x, which);
        exec_maybe_done(a, x);
        return;
    }
    if (x->main)
        console_write(buf, (size_t)n);
    if (counted)
        x->out_credit -= (uint32_t)n;
    if (!x->lost)
        send_frame(a, which == 0 ? VM_AGENT_OUT : VM_AGENT_ERR, x->id, buf, (uint32_t)n);
}

int agent_pollfds(struct agent *a, struct pollfd *pfd)
{
    int n = 0;
    struct agent_exec *m = main_of(a);
    if (m && !m->attached && !m->detached && now_ms() >= a->hold_until)
        main_detach(m);   /* no host came for it */
    if (a->port >= 0 && a->connected) {
        pfd[n] = (struct pollfd){.fd = a->port, .events = POLLIN};
        a->map[n++].slot = -1;
    }
    for (int i = 0; i < AGENT_MAX_EXECS; i++) {
        struct agent_exec *x = &a->ex[i];
        if (!x->used)
            continue;
        for (int w = 0; w < 2; w++)
            if (x->fd[w] >= 0 && (!x->io || x->out_credit > 0 || x->detached)) {
                pfd[n] = (struct pollfd){.fd = x->fd[w], .events = POLLIN};
                a->map[n].slot = i;
                a->map[n++].which = w;
            }
        if (x->in_fd >= 0 && x->in_len) {
            pfd[n] = (struct pollfd){.fd = x->in_fd, .events = POLLOUT};
            a->map[n].slot = i;
            a->map[n++].which = 2;
        }
    }
    return n;
}

void agent_handle(struct agent *a, const struct pollfd *pfd, int n)
{
    for (int i = 0; i < n; i++) {
        if (!pfd[i].revents)
            continue;
        if (a->map[i].slot < 0) {
            bool hup = pfd[i].revents & (POLLHUP | POLLERR);
            if ((pfd[i].revents & POLLIN) && !port_read(a))
                hup = true;
            if (!hup) {
                a->up = true;
            } else {
                /* Hung up: the host went if it was there; otherwise it
                 * is not there yet (data can come before the news that
                 * it connected).  Either way SIGIO says when to look
                 * again. */
                if (a->up)
                    host_gone(a);
                a->connected = false;
            }
            continue;
        }
        struct agent_exec *x = &a->ex[a->map[i].slot];
        int which = a->map[i].which;
        if (x->used && which == 2 && x->in_fd == pfd[i].fd)
            exec_write(a, x);
        else if (x->used && which < 2 && x->fd[which] == pfd[i].fd)
            exec_read(a, x, which);
    }
}

bool agent_reaped(struct agent *a, pid_t pid, int wstatus)
{
    for (int i = 0; i < AGENT_MAX_EXECS; i++) {
        struct agent_exec *x = &a->ex[i];
        if (!x->used || x->reaped || x->pid != pid)
            continue;
        x->reaped = true;
        x->status = WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : WEXITSTATUS(wstatus);
        /* A terminal's leftovers, if the host has room for them. */
        if (x->tty && x->fd[0] >= 0)
            exec_read(a, x, 0);
        /* What it started may hold its output open: the host's timeout
         * ends those (kill), as it would a container's. */
        exec_maybe_done(a, x);
        return true;
    }
    return false;
}

int agent_main_prepare(struct agent *a, bool tty, uid_t uid, gid_t gid, int stdio[3])
{
    struct agent_exec *x = NULL;
    for (int i = 0; i < AGENT_MAX_EXECS && !x; i++)
        if (!a->ex[i].used) {
            x = &a->ex[i];
            a->main_slot = i;
        }
    uint8_t *in_buf = malloc(VM_AGENT_WINDOW);
    if (!x || !in_buf) {
        free(in_buf);
        return -1;
    }
    int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
    if (tty) {
        if (open_terminal(&out[0], &out[1], 0, 0) < 0 || (in[1] = fcntl(out[0], F_DUPFD_CLOEXEC, 3)) < 0) {
            free(in_buf);
            return -1;
        }
        /* Its user's, as login gives one. */
        if (fchown(out[1], uid, gid) < 0 || fchmod(out[1], 0620) < 0) {
            /* the command holds it open all the same */
        }
        stdio[0] = stdio[1] = stdio[2] = out[1];
    } else {
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0) {
            free(in_buf);
            return -1;
        }
        stdio[0] = in[0];
        stdio[1] = out[1];
        stdio[2] = err[1];
        fcntl(out[0], F_SETFL, O_NONBLOCK);
        fcntl(err[0], F_SETFL, O_NONBLOCK);
        fcntl(in[1], F_SETFL, O_NONBLOCK);
    }
    *x = (struct agent_exec){.used = true, .main = true, .io = true, .tty = tty, .fd = {out[0], err[0]},
                             .in_fd = in[1], .in_buf = in_buf};
    return 0;
}

void agent_main_started(struct agent *a, pid_t pid, int stdio[3])
{
    struct agent_exec *x = main_of(a);
    if (x)
        x->pid = pid;
    close(stdio[0]);
    if (stdio[1] != stdio[0]) {
        close(stdio[1]);
        close(stdio[2]);
    }
    a->hold_until = now_ms() + ATTACH_HOLD_MS;
}

void agent_main_reaped(struct agent *a, int status)
{
    struct agent_exec *x = main_of(a);
    if (!x) {
        a->main_ended = true;
        return;
    }
    x->reaped = true;
    x->status = status;
    if (x->tty && x->fd[0] >= 0)
        exec_read(a, x, 0);
    exec_maybe_done(a, x);
}

bool agent_main_done(const struct agent *a)
{
    return a->main_ended && (!a->main_told || a->main_acked || now_ms() >= a->ack_until);
}
