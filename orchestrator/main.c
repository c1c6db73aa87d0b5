/*
 * main.c - duetd's command line and start-up.
 *
 * The order: options; the state directory and its lock (one daemon per
 * state directory, taken after daemonizing, since a record lock belongs
 * to the process that takes it); the daemon (daemon_open: store, probe,
 * drivers, network, recovery); only then the API's socket, so no request
 * acts on a half-known fleet; then the loop.  A daemonized duetd's parent
 * exits once the child says it is ready, or with the child's error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/dirs.h"
#include "common/units.h"
#include "orchestrator/api/api.h"
#include "orchestrator/api/http.h"
#include "orchestrator/daemon.h"

static const char usage[] =
    "usage: duetd [--socket PATH] [--state-dir DIR] [--libvirt-uri URI] [--foreground]\n"
    "\n"
    "The duet daemon: keeps the applied fleet of VMs and containers converged.\n"
    "\n"
    "      --socket PATH         API socket (default " DUETD_DEFAULT_SOCKET ", mode 0660)\n"
    "      --socket-group NAME   group allowed on the socket besides root (default: duet if it exists)\n"
    "      --state-dir DIR       state: store, containers, VM disks (default " DUETD_DEFAULT_STATE ")\n"
    "      --libvirt-uri URI     libvirt for VMs (default: qemu:///system if it answers, else embedded)\n"
    "      --guest-kernel PATH   kernel that boots rootfs images as VMs\n"
    "      --foreground          stay in the foreground, log to stderr\n"
    "      --restart-backoff MS  first restart delay, doubled per quick failure (default 1000)\n"
    "      --stop-grace MS       time between SIGTERM/ACPI and the forced stop (default 10000)\n"
    "      --request-timeout MS  time a client has to send its whole request (default 10000)\n"
    "      --bridge NAME         the fleet network's bridge, this daemon's own (default: the state\n"
    "                            directory's, else " FLEET_DEFAULT_BRIDGE ")\n"
    "      --subnet CIDR         the fleet's addresses; the bridge has the first (default: the state\n"
    "                            directory's, else " FLEET_DEFAULT_SUBNET ")\n"
    "      --log-max SIZE        a workload's log (or VM console) is rotated at this; one generation is kept\n"
    "                            besides it (default 8Mi)\n"
    "      --insecure-registry HOST:PORT  a registry that may be reached over plain HTTP when it speaks no TLS\n"
    "                            (repeatable; localhost and 127.0.0.0/8 always may)\n"
    "      --registry-ca FILE    CA certificates (PEM) trusted for registries besides the system's\n"
    "      --registry-auth FILE  registry credentials in docker login's format (default /etc/duet/auth.json,\n"
    "                            then ~/.docker/config.json)\n"
    "      --max-image-size SIZE the most an image import may unpack (zip bombs end there; default 16Gi)\n"
    "  -h, --help                this text\n"
    "\n"
    "duetd runs as root.  One daemon per state directory.  SIGTERM stops the daemon and\n"
    "leaves every workload running; the next duetd re-attaches to them.\n";

#define MAX_INSECURE 16

struct options {
    const char *socket, *state_dir, *libvirt_uri, *guest_kernel, *group, *bridge, *subnet;
    bool foreground;
    uint64_t backoff_ms, grace_ms, request_ms, log_max, max_image_size;
    const char *insecure[MAX_INSECURE];
    size_t n_insecure;
    char registry_ca[PATH_MAX], registry_auth[PATH_MAX];   /* absolute: duetd leaves its directory */
};

/* A file option made absolute now: the daemon changes directory. */
static int abs_file(const char *opt, const char *arg, char out[PATH_MAX])
{
    if (!realpath(arg, out)) {
        fprintf(stderr, "duetd: %s %s: %s\n", opt, arg, strerror(errno));
        return 2;
    }
    return 0;
}

/* The binaries that run inside workloads sit next to duetd. */
static void sibling(const char *name, const char *env, char *out, size_t len)
{
    const char *e = getenv(env);
    if (e && *e) {
        snprintf(out, len, "%s", e);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        n = 0;
    exe[n] = '\0';
    snprintf(out, len, "%s/%s", dirname(exe), name);
}

/* The state directory's lock: one daemon per state directory, so nothing
 * else touches its instances.  Returns the lock's fd. */
static int take_lock(const char *state_dir, struct duet_err *err)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/duetd.pid", state_dir);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return duet_err_sys(err, "cannot open %s", p);
    /* A POSIX record lock, not flock(): it belongs to this process alone,
     * so a container or QEMU forked from it (still starting when duetd
     * was killed) cannot keep the next duetd out. */
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &lk) < 0) {
        struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int pid = fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK ? (int)who.l_pid : 0;
        close(fd);
        return duet_err_set(err, EBUSY, "another duetd already runs on %s (pid %d); stop it first or use another --state-dir",
                            state_dir, pid);
    }
    return fd;
}

static void write_pid(int lock_fd)
{
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(lock_fd, 0) == 0 && pwrite(lock_fd, pid, (size_t)n, 0) < 0)
        fprintf(stderr, "duetd: cannot write its pid file\n");
}

/* Forks; the parent exits once the child reports ready (0) or an error. */
static int daemonize(int *ready_fd, const char *log_path)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        char msg[1024];
        ssize_t n = read(p[0], msg, sizeof(msg) - 1);
        if (n <= 0) {
            fprintf(stderr, "duetd: the daemon exited during start-up; see %s\n", log_path);
            _exit(1);
        }
        msg[n] = '\0';
        if (strcmp(msg, "ok") == 0)
            _exit(0);
        fprintf(stderr, "duetd: %s\n", msg);
        _exit(1);
    }
    close(p[0]);
    setsid();
    int devnull = open("/dev/null", O_RDWR);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (devnull >= 0)
        dup2(devnull, 0);
    if (log >= 0) {
        dup2(log, 1);
        dup2(log, 2);
        close(log);
    }
    if (devnull > 2)
        close(devnull);
    *ready_fd = p[1];
    return 0;
}

static void report_start(int ready_fd, const char *msg)
{
    if (ready_fd >= 0) {
        if (write(ready_fd, msg, strlen(msg)) < 0)
            fprintf(stderr, "duetd: %s\n", msg);
        close(ready_fd);
    } else if (strcmp(msg, "ok") != 0) {
        fprintf(stderr, "duetd: %s\n", msg);
    }
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},
        {"socket-group", required_argument, NULL, 'g'},
        {"state-dir", required_argument, NULL, 'd'},
        {"libvirt-uri", required_argument, NULL, 'u'},
        {"guest-kernel", required_argument, NULL, 'k'},
        {"foreground", no_argument, NULL, 'f'},
        {"restart-backoff", required_argument, NULL, 'b'},
        {"stop-grace", required_argument, NULL, 't'},
        {"request-timeout", required_argument, NULL, 'r'},
        {"bridge", required_argument, NULL, 'B'},
        {"subnet", required_argument, NULL, 'S'},
        {"log-max", required_argument, NULL, 'L'},
        {"insecure-registry", required_argument, NULL, 'I'},
        {"registry-ca", required_argument, NULL, 'C'},
        {"registry-auth", required_argument, NULL, 'A'},
        {"max-image-size", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 's': o->socket = optarg; break;
        case 'g': o->group = optarg; break;
        case 'd': o->state_dir = optarg; break;
        case 'u': o->libvirt_uri = optarg; break;
        case 'k': o->guest_kernel = optarg; break;
        case 'f': o->foreground = true; break;
        case 'b': o->backoff_ms = strtoull(optarg, NULL, 10); break;
        case 't': o->grace_ms = strtoull(optarg, NULL, 10); break;
        case 'r': o->request_ms = strtoull(optarg, NULL, 10); break;
        case 'B': o->bridge = optarg; break;
        case 'S': o->subnet = optarg; break;
        case 'L': {
            const char *why;
            if (!units_size_parse(optarg, &o->log_max, &why) || o->log_max < 4096) {
                fprintf(stderr, "duetd: --log-max %s is not a size of 4Ki or more (%s); e.g. --log-max 8Mi\n", optarg,
                        why ? why : "too small");
                return 2;
            }
            break;
        }
        case 'I':
            if (o->n_insecure == MAX_INSECURE) {
                fprintf(stderr, "duetd: at most %d --insecure-registry\n", MAX_INSECURE);
                return 2;
            }
            o->insecure[o->n_insecure++] = optarg;
            break;
        case 'M': {
            const char *why;
            if (!units_size_parse(optarg, &o->max_image_size, &why) || o->max_image_size < (1u << 20)) {
                fprintf(stderr,
                        "duetd: --max-image-size %s is not a size of 1Mi or more (%s); e.g. --max-image-size 20Gi\n",
                        optarg, why ? why : "too small");
                return 2;
            }
            break;
        }
        case 'C':
            if (abs_file("--registry-ca", optarg, o->registry_ca))
                return 2;
            break;
        case 'A':
            if (abs_file("--registry-auth", optarg, o->registry_auth))
                return 2;
            break;
        case 'h': fputs(usage, stdout); exit(0);
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "duetd: unexpected argument \"%s\"\n%s", argv[optind], usage);
        return 2;
    }
    if (o->backoff_ms == 0 || o->grace_ms == 0 || o->request_ms == 0) {
        fprintf(stderr, "duetd: --restart-backoff, --stop-grace and --request-timeout take a number of "
                        "milliseconds above 0\n");
        return 2;
    }
    return 0;
}

static void stop_api(void *opaque)
{
    api_stop(opaque);
}

int main(int argc, char **argv)
{
    /* Nothing inherited beyond stdio: a shell or service manager may leave
     * descriptors open, and none of them is duetd's to pass on to the
     * programs it starts (or to hold for ever). */
    syscall(SYS_close_range, 3, ~0U, 0);
    /* fds 0-2 must be open: libraries that spawn (libvirt) assume so, and a
     * pipe landing on fd 0 would be clobbered by a child's stdin. */
    int nullfd;
    while ((nullfd = open("/dev/null", O_RDWR)) >= 0 && nullfd <= 2)
        ;
    if (nullfd > 2)
        close(nullfd);
    struct options o = {.socket = DUETD_DEFAULT_SOCKET, .state_dir = DUETD_DEFAULT_STATE,
                        .backoff_ms = DUETD_BACKOFF_BASE_MS, .grace_ms = DUETD_STOP_GRACE_MS,
                        .request_ms = HTTP_REQUEST_DEADLINE_MS};
    const char *env_uri = getenv("DUET_LIBVIRT_URI");
    if (env_uri && *env_uri)
        o.libvirt_uri = env_uri;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    if (geteuid() != 0) {
        fprintf(stderr, "duetd: must run as root (namespaces, cgroups, libvirt)\n");
        return 1;
    }
    static struct daemon d;   /* the one context; lives as long as the process */
    char state_dir[PATH_MAX];
    if (strlen(o.socket) >= sizeof(d.socket_path)) {
        fprintf(stderr, "duetd: --socket %s is longer than a Unix socket path may be (107 bytes)\n", o.socket);
        return 2;
    }
    if (!realpath(o.state_dir, state_dir)) {
        if (duet_mkdir_p(o.state_dir, 0700) < 0 || !realpath(o.state_dir, state_dir)) {
            fprintf(stderr, "duetd: cannot create the state directory %s: %s\n", o.state_dir, strerror(errno));
            return 1;
        }
    }
    char sockdir[PATH_MAX];
    snprintf(sockdir, sizeof(sockdir), "%s", o.socket);
    if (duet_mkdir_p(dirname(sockdir), 0755) < 0) {
        fprintf(stderr, "duetd: cannot create the directory of %s: %s\n", o.socket, strerror(errno));
        return 1;
    }
    gid_t socket_group = 0;
    const char *gname = o.group ? o.group : "duet";
    struct group *gr = getgrnam(gname);
    if (gr)
        socket_group = gr->gr_gid;
    else if (o.group) {
        fprintf(stderr, "duetd: no group named %s; create it (groupadd %s) or leave --socket-group out\n", o.group,
                o.group);
        return 1;
    }
    struct duet_err err = {0};
    int ready_fd = -1;
    char log_path[PATH_MAX + 16];
    snprintf(log_path, sizeof(log_path), "%s/duetd.log", state_dir);
    if (!o.foreground && daemonize(&ready_fd, log_path) < 0) {
        fprintf(stderr, "duetd: cannot daemonize: %s\n", strerror(errno));
        return 1;
    }
    /* After the fork: the lock belongs to the process that holds it. */
    int lock_fd = take_lock(state_dir, &err);
    if (lock_fd < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    write_pid(lock_fd);
    setvbuf(stderr, NULL, _IOLBF, 0);
    /* Container creates, destroys and exec wait in the pool: more than
     * libuv's default 4 keeps a slow one from holding up the rest. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);
    /* glibc gives each thread that allocates an arena of its own and keeps
     * what is freed in it: with 16 pool threads and libvirt's, duetd grew
     * by 10-25 MiB with each VM made and removed (39 MiB to 88 MiB after
     * four), where with two it stays under 50.  Its threads mostly wait on
     * syscalls, so two arenas cost no contention that shows. */
    mallopt(M_ARENA_MAX, 2);
    signal(SIGPIPE, SIG_IGN);

    char init[PATH_MAX], vminit[PATH_MAX], virtiofsd[PATH_MAX];
    sibling("duet-init", "DUET_INIT", init, sizeof(init));
    sibling("duet-vminit", "DUET_VMINIT", vminit, sizeof(vminit));
    sibling("duet-virtiofsd", "DUET_VIRTIOFSD", virtiofsd, sizeof(virtiofsd));
    struct daemon_config cfg = {
        .state_dir = state_dir, .socket_path = o.socket, .libvirt_uri = o.libvirt_uri,
        .guest_kernel = o.guest_kernel, .init = init, .vminit = vminit, .virtiofsd = virtiofsd, .bridge = o.bridge, .subnet = o.subnet,
        .backoff_ms = o.backoff_ms, .grace_ms = o.grace_ms, .log_max = o.log_max,
        .registry = {.ca_file = o.registry_ca[0] ? o.registry_ca : NULL,
                     .auth_file = o.registry_auth[0] ? o.registry_auth : NULL,
                     .insecure = o.insecure, .n_insecure = o.n_insecure},
        .max_image_size = o.max_image_size,
    };
    uv_loop_t *loop = uv_default_loop();
    if (daemon_open(&d, loop, &cfg, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    struct api *api = api_new(&d);
    if (api_start(api, o.socket, socket_group, (unsigned)o.request_ms, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    d.on_shutdown = stop_api;
    d.on_shutdown_opaque = api;
    daemon_start(&d);
    report_start(ready_fd, "ok");

    uv_run(loop, UV_RUN_DEFAULT);

    /* Shut down: every handle closes, the drivers let go, memory is returned. */
    daemon_close(&d);
    api_free(api);
    uv_loop_close(loop);
    unlink(o.socket);
    close(lock_fd);
    return 0;
}
