/*
 * duet-vminit - /init of the initramfs duet boots a rootfs image with.
 *
 * A workload whose image is a rootfs directory can run as a VM: duet builds
 * an ext4 disk from the directory, boots a kernel with this program as its
 * initramfs, and this program turns the guest into the workload:
 *
 *   1. mount /dev, /proc, /sys; load the kernel modules the initramfs
 *      carries (/duet/modules: one file name per line, in load order);
 *   1b. with ip= on the kernel command line (the fleet network), give eth0
 *      that address and route, and after the switch below point
 *      /etc/resolv.conf at the fleet's name server;
 *   2. mount the root disk (the spec's "root", ext4), move into it, and
 *      mount the volumes (virtiofs, by tag) at their targets;
 *   3. run the manifest's command with its env, working directory, user,
 *      group and supplementary groups, stdout and stderr on the console
 *      (the first serial port, which is the workload's log);
 *   4. on the ACPI power button (duet's graceful stop) send it SIGTERM, or
 *      the image's StopSignal;
 *   5. when it ends, write "exit N" or "signal N" to the second serial port
 *      (a file on the host: how the exit status gets out), and power off;
 *   6. meanwhile, run the commands the host sends on the virtio-serial
 *      port duet.agent (duet exec, exec health checks) as the workload's
 *      user, with its env and working directory (vminit_agent.c).
 *
 * With "attach" in the spec (duet run -i/-t) the command of step 3 runs on
 * a terminal of the guest's devpts ("tty") or on pipes ("pipes") that the
 * agent relays to the host once it attaches, its output copied to the
 * console too; step 5 then waits until the host has the last of it.
 *
 * "boot" goes to the second port first thing, so the host knows the guest
 * runs even before the workload prints anything.
 *
 * The spec is /duet/spec, NUL-separated "key", "value" pairs, written by
 * the host (guest_image.c): arg (repeated, in order), env (KEY=VALUE,
 * repeated), cwd, uid, gid, group (repeated), hostname, root, fs
 * (repeated: "TAG,ro|rw,TARGET"), secret (repeated: "NAME:HEX", a file
 * for /run/secrets, its bytes in hex), attach ("tty" or "pipes").
 *
 * Static, and allocating only the spec and the host's commands: it must
 * work in any guest kernel with nothing but a console.
 */
#include "common/dirs.h"
#include "common/ifconf.h"
#include "vminit_agent.h"

#include <dirent.h>
#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/input.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ARGS 512
#define MAX_ENV 1024
#define MAX_GROUPS 32
#define MAX_INPUTS 16
#define MAX_FS 64
#define MAX_SECRETS 64
/* An attached command that ended: how long its last output and status may
 * take to reach the host before the guest powers off regardless. */
#define ATTACHED_END_MS 10000

struct spec {
    char *argv[MAX_ARGS + 1];
    char *envp[MAX_ENV + 2];
    int argc, envc;
    const char *cwd, *hostname, *root;
    uid_t uid;
    gid_t gid;
    gid_t groups[MAX_GROUPS];
    int n_groups;
    int stop_signal;      /* what the power button sends the workload */
    char *fs[MAX_FS];     /* volumes: "TAG,ro|rw,TARGET" */
    int n_fs;
    char *secrets[MAX_SECRETS];   /* files for /run/secrets: "NAME:HEX" */
    int n_secrets;
    bool attach, attach_tty;      /* duet run -i/-t */
};

static int status_fd = -1;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(const char *fmt, const char *arg)
{
    dprintf(2, "duet-vminit: ");
    dprintf(2, fmt, arg ? arg : "");
    dprintf(2, "\n");
}

/* A SIGKILL may be the guest kernel's OOM killer at the guest's memory:
 * its count says so, and the host reports "out of memory" then.  Read
 * with a plain buffer: nothing here allocates. */
static void note_oom(void)
{
    int fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || status_fd < 0)
        return;
    static char buf[16384];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    const char *k = strstr(buf, "\noom_kill ");
    long kills = k ? strtol(k + 10, NULL, 10) : 0;
    if (kills > 0)
        dprintf(status_fd, "oom %ld\n", kills);
}

/* The status line the host reads, then power off.  Nothing follows. */
static void finish(const char *what, int n)
{
    if (status_fd >= 0) {
        dprintf(status_fd, "%s %d\n", what, n);
        fsync(status_fd);
    }
    sync();
    kill(-1, SIGKILL);
    umount2("/", MNT_DETACH);
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
}

static void fail(const char *what, const char *arg)
{
    dprintf(2, "duet-vminit: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
    finish("exit", 127);
}

static char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size > (16 << 20)) {
        close(fd);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (buf)
        buf[got] = '\0';
    *len = got;
    return buf;
}

static void parse_spec(struct spec *s, char *buf, size_t len)
{
    s->cwd = "/";
    s->root = "/dev/vda";
    s->stop_signal = SIGTERM;
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *key = p;
        p += strlen(p) + 1;
        if (p >= end)
            break;
        char *val = p;
        p += strlen(p) + 1;
        if (!strcmp(key, "arg") && s->argc < MAX_ARGS)
            s->argv[s->argc++] = val;
        else if (!strcmp(key, "env") && s->envc < MAX_ENV)
            s->envp[s->envc++] = val;
        else if (!strcmp(key, "cwd"))
            s->cwd = val;
        else if (!strcmp(key, "hostname"))
            s->hostname = val;
        else if (!strcmp(key, "root"))
            s->root = val;
        else if (!strcmp(key, "uid"))
            s->uid = (uid_t)strtoul(val, NULL, 10);
        else if (!strcmp(key, "gid"))
            s->gid = (gid_t)strtoul(val, NULL, 10);
        else if (!strcmp(key, "group") && s->n_groups < MAX_GROUPS)
            s->groups[s->n_groups++] = (gid_t)strtoul(val, NULL, 10);
        else if (!strcmp(key, "fs") && s->n_fs < MAX_FS)
            s->fs[s->n_fs++] = val;
        else if (!strcmp(key, "secret") && s->n_secrets < MAX_SECRETS)
            s->secrets[s->n_secrets++] = val;
        else if (!strcmp(key, "stopsignal") && atoi(val) > 0 && atoi(val) < NSIG)
            s->stop_signal = atoi(val);
        else if (!strcmp(key, "attach")) {
            s->attach = true;
            s->attach_tty = !strcmp(val, "tty");
        }
    }
}

static void load_modules(void)
{
    size_t len;
    char *list = read_file("/duet/modules", &len);
    if (!list)
        return;
    for (char *save, *name = strtok_r(list, "\n", &save); name; name = strtok_r(NULL, "\n", &save)) {
        char path[256];
        snprintf(path, sizeof(path), "/duet/mod/%s", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (syscall(SYS_finit_module, fd, "", 0) < 0 && errno != EEXIST)
            dprintf(2, "duet-vminit: module %s: %s\n", name, strerror(errno));
        close(fd);
        unlink(path);   /* the initramfs stays in RAM: give it back */
    }
    free(list);
}

/* A volume that cannot be mounted stops the workload before it runs: it
 * would otherwise write into its own disk what belongs in the volume. */
static void mount_volumes(const struct spec *s)
{
    for (int i = 0; i < s->n_fs; i++) {
        char *tag = s->fs[i], *mode = strchr(tag, ',');
        char *target = mode ? strchr(mode + 1, ',') : NULL;
        if (!mode || !target) {
            errno = EINVAL;
            fail("a volume in the spec is malformed", tag);
        }
        *mode++ = '\0';
        *target++ = '\0';
        duet_make_dirs(target);
        unsigned long flags = MS_NOATIME | (strcmp(mode, "ro") == 0 ? MS_RDONLY : 0);
        if (mount(tag, target, "virtiofs", flags, NULL) < 0)
            fail("cannot mount the volume (virtiofs) on", target);
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The secrets given as files: their own tmpfs at /run/secrets, each file
 * the workload user's and 0400, then read-only.  Decoded in place (the
 * hex is twice the bytes), the spec's copy wiped as it goes. */
static void write_secrets(const struct spec *s)
{
    if (!s->n_secrets)
        return;
    duet_make_dirs("/run/secrets");
    if (mount("tmpfs", "/run/secrets", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755") < 0)
        fail("cannot mount a tmpfs on", "/run/secrets");
    for (int i = 0; i < s->n_secrets; i++) {
        char *name = s->secrets[i], *hex = strchr(name, ':');
        if (!hex || strchr(name, '/')) {
            errno = EINVAL;
            fail("a secret in the spec is malformed", NULL);
        }
        *hex++ = '\0';
        size_t n = 0;
        for (char *h = hex; h[0] && h[1]; h += 2) {
            int a = hexval(h[0]), b = hexval(h[1]);
            if (a < 0 || b < 0) {
                errno = EINVAL;
                fail("a secret in the spec is malformed", name);
            }
            hex[n++] = (char)(a << 4 | b);
        }
        char path[128];
        snprintf(path, sizeof(path), "/run/secrets/%s", name);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
        if (fd < 0 || fchown(fd, s->uid, s->gid) < 0 || write(fd, hex, n) != (ssize_t)n || close(fd) < 0)
            fail("cannot write the secret", path);
        memset(hex, 0, n);
    }
    if (mount(NULL, "/run/secrets", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        fail("cannot make /run/secrets read-only", NULL);
}

static void wait_for(const char *dev)
{
    for (int i = 0; i < 1000; i++) {
        if (access(dev, F_OK) == 0)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* The input devices that can report the power button: ACPI's "Power
 * Button" appears as an evdev node once button.ko and evdev.ko are in. */
static int open_inputs(int *fds)
{
    int n = 0;
    DIR *d = opendir("/dev/input");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_INPUTS) {
        if (strncmp(e->d_name, "event", 5) != 0)
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/dev/input/%s", e->d_name);
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0)
            fds[n++] = fd;
    }
    closedir(d);
    return n;
}

static bool power_pressed(int fd)
{
    struct input_event ev[16];
    ssize_t n = read(fd, ev, sizeof(ev));
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(ev[0]); i++)
        if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER && ev[i].value == 1)
            return true;
    return false;
}

/* The guest's loopback, up as in a container: workloads expect 127.0.0.1. */
static void loopback_up(void)
{
    const char *what;
    if (ifconf_up("lo", &what) < 0)
        say("cannot bring up lo", NULL);
}

/* ip=CLIENT::GATEWAY:NETMASK:HOSTNAME:DEVICE:off:DNS from the kernel
 * command line, as the host wrote it; the fields this needs, parsed
 * strictly (anything else: no network, said on the console). */
struct ipcfg {
    bool set;
    uint32_t addr, gw, dns;
    unsigned prefix;
};

static bool parse_quad(const char *s, size_t n, uint32_t *out)
{
    char buf[16];
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, buf, &a) != 1)
        return false;
    *out = ntohl(a.s_addr);
    return true;
}

static void read_ipcfg(struct ipcfg *c)
{
    /* /proc files have no size: read what comes */
    static char cmd[4096];
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, cmd, sizeof(cmd) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return;
    cmd[n] = '\0';
    for (char *tok = strtok(cmd, " \n"); tok; tok = strtok(NULL, " \n")) {
        if (strncmp(tok, "ip=", 3) != 0)
            continue;
        const char *f[8] = {0};
        size_t fl[8] = {0};
        int nf = 0;
        for (const char *p = tok + 3; nf < 8;) {
            const char *colon = strchrnul(p, ':');
            f[nf] = p;
            fl[nf++] = (size_t)(colon - p);
            if (!*colon)
                break;
            p = colon + 1;
        }
        uint32_t mask;
        if (nf < 4 || !parse_quad(f[0], fl[0], &c->addr) || !parse_quad(f[3], fl[3], &mask)) {
            say("ip= on the kernel command line is not client::gateway:netmask:...; no network", NULL);
            break;
        }
        c->prefix = (unsigned)__builtin_popcount(mask);
        if (fl[2])
            parse_quad(f[2], fl[2], &c->gw);
        if (nf >= 8)
            parse_quad(f[7], fl[7], &c->dns);
        c->set = true;
    }
}

/* virtio_net may finish probing after its module is loaded. */
static void network_up(const struct ipcfg *c)
{
    for (int i = 0; i < 200 && access("/sys/class/net/eth0", F_OK) < 0; i++)
        usleep(10000);
    const char *what = NULL;
    if (ifconf_ipv4("eth0", c->addr, c->prefix, c->gw, &what) < 0)
        say("network: cannot configure eth0: %s", what);
}

static void write_resolv_conf(const struct ipcfg *c)
{
    if (!c->dns)
        return;
    mkdir("/etc", 0755);
    int fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        say("network: cannot write /etc/resolv.conf", NULL);
        return;
    }
    dprintf(fd, "nameserver %u.%u.%u.%u\n", c->dns >> 24, (c->dns >> 16) & 255, (c->dns >> 8) & 255, c->dns & 255);
    close(fd);
}

/* Becomes argv as the spec runs its command: its user and groups, its
 * working directory, its environment and PATH.  For the workload itself
 * (argv NULL: the spec's own) a failure ends the VM; a command duet exec
 * runs only fails (127). */
static void exec_as_workload(const struct spec *s, char **argv)
{
    bool workload = argv == NULL;
    if (workload)
        argv = (char **)s->argv;
    /* A working directory the image lacks is made, as root, as docker
     * run -w does (an image's WorkingDir often names one). */
    duet_make_dirs(s->cwd);
    if (setgroups((size_t)s->n_groups, s->groups) < 0 || setgid(s->gid) < 0 || setuid(s->uid) < 0) {
        if (workload)
            fail("cannot switch to the workload's user", NULL);
        dprintf(2, "duet-vminit: cannot switch to the workload's user: %s\n", strerror(errno));
        _exit(127);
    }
    if (chdir(s->cwd) < 0) {
        if (workload)
            fail("cannot enter the working directory", s->cwd);
        dprintf(2, "duet-vminit: cannot enter the working directory %s: %s\n", s->cwd, strerror(errno));
        _exit(127);
    }
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (int i = 0; i < s->envc; i++)
        if (!strncmp(s->envp[i], "PATH=", 5))
            path = s->envp[i] + 5;
    char *const *envp = (char *const *)s->envp;
    int last = ENOENT;
    if (strchr(argv[0], '/')) {
        execve(argv[0], argv, envp);
        last = errno;
    } else {
        for (const char *p = path; *p;) {
            const char *colon = strchrnul(p, ':');
            char full[1024];
            snprintf(full, sizeof(full), "%.*s/%s", (int)(colon - p), p, argv[0]);
            execve(full, argv, envp);
            /* the first match that exists says why it would not run */
            if (errno != ENOENT && last == ENOENT)
                last = errno;
            p = *colon ? colon + 1 : colon;
        }
    }
    dprintf(2, "duet-vminit: cannot run %s: %s\n", argv[0], strerror(last));
    _exit(127);
}

/* stdio: an attached command's ends (agent_main_prepare), or NULL: the
 * console's. */
static void run_child(struct spec *s, const sigset_t *old, const int *stdio)
{
    sigprocmask(SIG_SETMASK, old, NULL);
    setsid();
    if (stdio && ((s->attach_tty && ioctl(stdio[0], TIOCSCTTY, 0) < 0) || dup2(stdio[0], 0) < 0 ||
                  dup2(stdio[1], 1) < 0 || dup2(stdio[2], 2) < 0))
        fail("cannot give the workload its terminal or pipes", NULL);
    if (s->hostname)
        sethostname(s->hostname, strlen(s->hostname));
    exec_as_workload(s, NULL);
}

static void agent_run(void *ctx, char **argv)
{
    exec_as_workload(ctx, argv);
}

int main(void)
{
    mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
    int con = open("/dev/console", O_RDWR | O_NOCTTY);
    if (con >= 0) {
        dup2(con, 0);
        dup2(con, 1);
        dup2(con, 2);
        if (con > 2)
            close(con);
    }
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    status_fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY | O_CLOEXEC);
    /* A sign of life for the host, kept out of the workload's log. */
    if (status_fd >= 0)
        dprintf(status_fd, "boot\n");

    size_t len;
    char *buf = read_file("/duet/spec", &len);
    if (!buf)
        fail("no spec in the initramfs", "/duet/spec");
    static struct spec s;
    parse_spec(&s, buf, len);
    if (s.argc == 0) {
        errno = EINVAL;
        fail("the spec names no command", NULL);
    }
    s.envp[s.envc] = NULL;
    load_modules();
    loopback_up();
    static struct ipcfg ipc;
    read_ipcfg(&ipc);
    if (ipc.set)
        network_up(&ipc);

    wait_for(s.root);
    if (mkdir("/newroot", 0755) < 0 && errno != EEXIST)
        fail("mkdir", "/newroot");
    if (mount(s.root, "/newroot", "ext4", MS_NOATIME, NULL) < 0)
        fail("cannot mount the root disk", s.root);
    if (mount("/dev", "/newroot/dev", NULL, MS_MOVE, NULL) < 0)
        fail("cannot move /dev into the root disk (does the image have /dev?)", NULL);
    umount2("/proc", MNT_DETACH);
    umount2("/sys", MNT_DETACH);
    if (chdir("/newroot") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
        fail("cannot switch to the root disk", NULL);
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mkdir("/dev/pts", 0755);
    mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620");
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    write_secrets(&s);
    mount_volumes(&s);
    if (ipc.set)
        write_resolv_conf(&ipc);

    int inputs[MAX_INPUTS];
    int n_inputs = open_inputs(inputs);

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    int sfd = signalfd(-1, &all, SFD_CLOEXEC);
    static struct agent agent;
    agent_init(&agent, agent_run, &s, &old);
    int stdio[3];
    if (s.attach && agent_main_prepare(&agent, s.attach_tty, s.uid, s.gid, stdio) < 0)
        fail(s.attach_tty ? "cannot make the workload's terminal" : "cannot make the workload's pipes", NULL);
    pid_t child = fork();
    if (child < 0)
        fail("fork", NULL);
    if (child == 0)
        run_child(&s, &old, s.attach ? stdio : NULL);
    if (s.attach)
        agent_main_started(&agent, child, stdio);
    /* An attached command's end waits for the host to have its last
     * output and status, at most ATTACHED_END_MS. */
    bool ending = false;
    int end_status = 0;
    uint64_t end_by = 0;
    struct pollfd pfd[MAX_INPUTS + 1 + AGENT_MAX_FDS];
    pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
    for (int i = 0; i < n_inputs; i++)
        pfd[i + 1] = (struct pollfd){.fd = inputs[i], .events = POLLIN};
    for (;;) {
        if (ending && (agent_main_done(&agent) || mono_ms() >= end_by)) {
            if (WIFSIGNALED(end_status))
                finish("signal", WTERMSIG(end_status));
            finish("exit", WEXITSTATUS(end_status));
        }
        int base = n_inputs + 1;
        int n_agent = agent_pollfds(&agent, pfd + base);
        int timeout = agent_timeout(&agent);
        if (ending) {
            uint64_t now = mono_ms(), left = end_by > now ? end_by - now : 0;
            if (timeout < 0 || (uint64_t)timeout > left)
                timeout = (int)left;
        }
        int ready = poll(pfd, (nfds_t)(base + n_agent), timeout);
        if (ready < 0 && errno != EINTR)
            fail("poll", NULL);
        if (ready <= 0) {
            agent_tick(&agent);
            continue;
        }
        for (int i = 1; i <= n_inputs; i++)
            if ((pfd[i].revents & POLLIN) && power_pressed(pfd[i].fd)) {
                say("power button: stopping the workload%s", NULL);
                kill(child, s.stop_signal);
            }
        agent_handle(&agent, pfd + base, n_agent);
        if (!(pfd[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof(si)) != sizeof(si))
            continue;
        if (si.ssi_signo == SIGIO) {
            agent_sigio(&agent);
            continue;
        }
        if (si.ssi_signo != SIGCHLD) {
            kill(child, (int)si.ssi_signo);
            continue;
        }
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
            if (pid != child) {
                agent_reaped(&agent, pid, st);
            } else {
                if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
                    note_oom();
                if (s.attach && !ending) {
                    agent_main_reaped(&agent, WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st));
                    ending = true;
                    end_status = st;
                    end_by = mono_ms() + ATTACHED_END_MS;
                    continue;
                }
                if (WIFSIGNALED(st))
                    finish("signal", WTERMSIG(st));
                finish("exit", WEXITSTATUS(st));
            }
    }
}
