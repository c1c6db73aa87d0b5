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
#include <stddef.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/dirs.h"
#include "common/ifname.h"
#include "network/ipam.h"
#include "common/units.h"
#include "orchestrator/api/api.h"
#include "orchestrator/api/http.h"
#include "manifests/manifest.h"
#include "orchestrator/daemon.h"
#include "orchestrator/logfilter.h"
#include "common/listenaddr.h"

static const char usage[] =
    "usage: duetd [--config FILE] [--socket PATH] [--state-dir DIR] [--libvirt-uri URI] [--foreground]\n"
    "\n"
    "The duet daemon: keeps the applied fleet of VMs and containers converged.\n"
    "\n"
    "      --config FILE         settings as a kind: Daemon document (default $DUET_CONFIG, else\n"
    "                            " DUET_DEFAULT_CONFIG " when it exists); options given here override it\n"
    "      --socket PATH         API socket (default " DUETD_DEFAULT_SOCKET ", mode 0660)\n"
    "      --socket-group NAME   group allowed on the socket besides root (default: duet if it exists)\n"
    "      --state-dir DIR       state: store, containers, VM disks (default " DUETD_DEFAULT_STATE ")\n"
    "      --libvirt-uri URI     libvirt for VMs (default: qemu:///system if it answers, else embedded)\n"
    "      --guest-kernel PATH   kernel that boots rootfs images as VMs (default: the one installed with\n"
    "                            duet, see docs/install.md)\n"
    "      --foreground          stay in the foreground, log to stderr (what a service manager wants)\n"
    "      --debug               libvirt's own log lines too, in duetd's log\n"
    "      --check-config        check the config file and the options, say what is wrong, start nothing\n"
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
    "      --metrics-listen ADDRESS:PORT  serve GET /metrics (Prometheus) on TCP there too, e.g.\n"
    "                            127.0.0.1:9465 (default: only on the API socket)\n"
    "      --web ADDRESS:PORT    serve the web dashboard there, e.g. 127.0.0.1:9480 (default: none);\n"
    "                            `duet dashboard` prints its address with the login token\n"
    "      --web-cert FILE       the dashboard's TLS certificate (PEM, with its chain); with --web-key\n"
    "      --web-key FILE        that certificate's private key (PEM)\n"
    "      --web-write           the dashboard may stop, start, restart and delete (default: read-only)\n"
    "  -h, --help                this text\n"
    "\n"
    "duetd runs as root.  One daemon per state directory.  SIGTERM stops the daemon and\n"
    "leaves every workload running; the next duetd re-attaches to them.  Under systemd\n"
    "(duetd.service) it says when it is ready through $NOTIFY_SOCKET.\n";

#define MAX_INSECURE 16

/* What the command line gave; NULL and 0 are "not given", for the config
 * file and then the defaults to decide (options_settle). */
struct options {
    const char *config;
    const char *socket, *state_dir, *libvirt_uri, *guest_kernel, *group, *bridge, *subnet, *metrics_listen;
    const char *web;
    bool foreground, debug, check_only, web_write;
    char web_cert[PATH_MAX], web_key[PATH_MAX];
    uint64_t backoff_ms, grace_ms, request_ms, log_max, max_image_size;
    const char *insecure[MAX_INSECURE];
    size_t n_insecure;
    char registry_ca[PATH_MAX], registry_auth[PATH_MAX];   /* absolute: duetd leaves its directory */
    struct manifest_set *config_set;   /* the config file's strings live in it */
    char config_path[PATH_MAX];        /* that file, absolute; "" for none */
};

/* A number of milliseconds above 0, as --stop-grace and its peers take. */
static int parse_ms(const char *opt, const char *arg, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || end == arg || *end || v == 0 || v > 86400000ull || arg[0] == '-') {
        fprintf(stderr, "duetd: %s %s is not a number of milliseconds from 1 to 86400000\n", opt, arg);
        return 2;
    }
    *out = v;
    return 0;
}

/* An ADDRESS:PORT option (--metrics-listen, --web), checked now. */
static int parse_listen(const char *opt, const char *arg, const char **out)
{
    struct sockaddr_storage sa;
    struct duet_err e = {0};
    if (listen_addr_parse(arg, &sa, &e) < 0) {
        fprintf(stderr, "duetd: %s %s\n", opt, e.msg);
        return 2;
    }
    *out = arg;
    return 0;
}

/* A file option made absolute now: the daemon changes directory. */
static int abs_file(const char *opt, const char *arg, char out[PATH_MAX])
{
    if (!realpath(arg, out)) {
        fprintf(stderr, "duetd: %s %s: %s\n", opt, arg, strerror(errno));
        return 2;
    }
    return 0;
}

/* The binaries that run inside workloads: next to duetd in a build tree,
 * in PREFIX/lib/duet once installed (duetd in PREFIX/sbin). */
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
    const char *dir = dirname(exe);
    snprintf(out, len, "%s/%s", dir, name);
    if (access(out, X_OK) < 0)
        snprintf(out, len, "%s/../lib/duet/%s", dir, name);
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

/* systemd's readiness protocol (sd_notify(3)): one datagram to the socket
 * named by $NOTIFY_SOCKET, "@" standing for the abstract namespace.  Done
 * here rather than through libsystemd: one sendto is the whole protocol.
 * fd: from service_notify_open, -1 when duetd is not a notify service. */
static int service_notify_open(struct sockaddr_un *to, socklen_t *to_len)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return -1;
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof(to->sun_path)) {
        fprintf(stderr, "duetd: NOTIFY_SOCKET=%s is not a socket path; readiness is not reported\n", path);
        return -1;
    }
    memset(to, 0, sizeof(*to));
    to->sun_family = AF_UNIX;
    memcpy(to->sun_path, path, n);
    if (path[0] == '@')
        to->sun_path[0] = '\0';
    *to_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    /* Nothing duetd starts may speak for it to the service manager. */
    unsetenv("NOTIFY_SOCKET");
    return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

static void service_notify(int fd, const struct sockaddr_un *to, socklen_t to_len, const char *msg)
{
    if (fd >= 0 && sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (const struct sockaddr *)to, to_len) < 0)
        fprintf(stderr, "duetd: cannot tell the service manager %.*s: %s\n", (int)strcspn(msg, "\n"), msg,
                strerror(errno));
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

/* Each container's figures are read through files duetd keeps open
 * (half a dozen per workload), so a fleet of thousands needs more than
 * the 1024 a login shell's soft limit often is: the soft limit goes up to
 * the hard one (duetd.service sets both). */
static void nofile_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
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
        {"debug", no_argument, NULL, 'D'},
        {"check-config", no_argument, NULL, 'K'},
        {"config", required_argument, NULL, 'c'},
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
        {"metrics-listen", required_argument, NULL, 'm'},
        {"web", required_argument, NULL, 'W'},
        {"web-cert", required_argument, NULL, 'T'},
        {"web-key", required_argument, NULL, 'Y'},
        {"web-write", no_argument, NULL, 'w'},
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
        case 'D': o->debug = true; break;
        case 'K': o->check_only = true; break;
        case 'c': o->config = optarg; break;
        case 'b':
            if (parse_ms("--restart-backoff", optarg, &o->backoff_ms))
                return 2;
            break;
        case 't':
            if (parse_ms("--stop-grace", optarg, &o->grace_ms))
                return 2;
            break;
        case 'r':
            if (parse_ms("--request-timeout", optarg, &o->request_ms))
                return 2;
            break;
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
        case 'm':
            if (parse_listen("--metrics-listen", optarg, &o->metrics_listen))
                return 2;
            break;
        case 'W':
            if (parse_listen("--web", optarg, &o->web))
                return 2;
            break;
        case 'T':
            if (abs_file("--web-cert", optarg, o->web_cert))
                return 2;
            break;
        case 'Y':
            if (abs_file("--web-key", optarg, o->web_key))
                return 2;
            break;
        case 'w': o->web_write = true; break;
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
    return 0;
}

/* The config file fills what the command line left out, then the defaults
 * fill the rest.  A file named by --config or DUET_CONFIG must be there; the
 * default one may be absent.  Any error in it and duetd does not start:
 * half a configuration would put workloads on the wrong bridge. */
static int options_settle(struct options *o)
{
    /* $DUET_LIBVIRT_URI stands for --libvirt-uri, as for duet plan. */
    o->libvirt_uri = manifest_libvirt_uri_given(o->libvirt_uri);
    bool named;
    const char *path = manifest_daemon_config_path(o->config, &named);
    if (path) {
        o->config_set = manifest_daemon_config_load(path);
        if (!manifest_set_ok(o->config_set)) {
            diag_sort(&o->config_set->diags);
            diag_print(&o->config_set->diags, stderr);
            fprintf(stderr, "duetd: not started: fix %s%s\n", path,
                    named ? "" : " (the default config file) or name another with --config");
            return 2;
        }
        const struct daemon_spec *c = o->config_set->daemon;
        if (!realpath(path, o->config_path))
            snprintf(o->config_path, sizeof(o->config_path), "%s", path);
#define FILL(field, from) \
    if (!o->field && c->from) \
        o->field = c->from;
        FILL(socket, socket)
        FILL(group, socket_group)
        FILL(state_dir, state_dir)
        FILL(libvirt_uri, libvirt_uri)
        FILL(guest_kernel, guest_kernel)
        FILL(bridge, bridge)
        FILL(subnet, subnet)
        FILL(backoff_ms, restart_backoff_ms)
        FILL(grace_ms, stop_grace_ms)
        FILL(request_ms, request_timeout_ms)
        FILL(log_max, log_max)
        FILL(max_image_size, max_image_size)
        FILL(metrics_listen, metrics_listen)
        FILL(web, web)
#undef FILL
        o->debug = o->debug || c->debug;
        o->web_write = o->web_write || c->web_write;
        if (!o->web_cert[0] && !o->web_key[0] && c->web_cert && c->web_key) {
            snprintf(o->web_cert, sizeof(o->web_cert), "%s", c->web_cert);
            snprintf(o->web_key, sizeof(o->web_key), "%s", c->web_key);
        }
        /* A list given on the command line replaces the file's. */
        if (!o->n_insecure)
            for (size_t i = 0; i < c->n_insecure_registries && i < MAX_INSECURE; i++)
                o->insecure[o->n_insecure++] = c->insecure_registries[i];
        if (!o->registry_ca[0] && c->registry_ca)
            snprintf(o->registry_ca, sizeof(o->registry_ca), "%s", c->registry_ca);
        if (!o->registry_auth[0] && c->registry_auth)
            snprintf(o->registry_auth, sizeof(o->registry_auth), "%s", c->registry_auth);
    }
    /* The two network options checked as the file's keys are: a bad one
     * would otherwise surface only once the bridge is made. */
    if (o->bridge && !duet_ifname_valid(o->bridge)) {
        fprintf(stderr, "duetd: --bridge %s is not a network interface name (1 to 15 characters, no '/', ':' or "
                        "blanks), e.g. duet0\n", o->bridge);
        return 2;
    }
    struct ipam_subnet sn;
    struct duet_err e = {0};
    if (o->subnet && ipam_parse_subnet(o->subnet, &sn, &e) < 0) {
        fprintf(stderr, "duetd: --%s\n", e.msg);
        return 2;
    }
    if (!o->web_cert[0] != !o->web_key[0]) {
        fprintf(stderr, "duetd: --web-cert and --web-key go together: give both for TLS, or neither\n");
        return 2;
    }
    if ((o->web_cert[0] || o->web_write) && !o->web) {
        fprintf(stderr, "duetd: --%s is for the dashboard: give --web ADDRESS:PORT too\n",
                o->web_cert[0] ? "web-cert" : "web-write");
        return 2;
    }
    if (!o->socket)
        o->socket = DUETD_DEFAULT_SOCKET;
    if (!o->state_dir)
        o->state_dir = DUETD_DEFAULT_STATE;
    if (!o->backoff_ms)
        o->backoff_ms = DUETD_BACKOFF_BASE_MS;
    if (!o->grace_ms)
        o->grace_ms = DUETD_STOP_GRACE_MS;
    if (!o->request_ms)
        o->request_ms = HTTP_REQUEST_DEADLINE_MS;
    return 0;
}

static void log_filter_release(struct log_filter **f)
{
    log_filter_stop(*f);
}

/* The config file's strings are used until main returns, whichever way. */
static void options_release(struct options *o)
{
    manifest_set_free(o->config_set);
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
    __attribute__((cleanup(options_release))) struct options o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc == 0)
        rc = options_settle(&o);
    if (rc)
        return rc;
    nofile_raise();
    if (o.check_only) {
        /* The dashboard's certificate and key are read as duetd would. */
        if (o.web_cert[0]) {
            struct http_server probe = {0};
            struct duet_err e = {0};
            int tls_rc = http_server_use_tls(&probe, o.web_cert, o.web_key, &e);
            http_server_free_counts(&probe);
            if (tls_rc < 0) {
                fprintf(stderr, "duetd: --web-cert: %s\n", e.msg);
                return 1;
            }
        }
        if (o.config_path[0])
            printf("%s: valid\n", o.config_path);
        else
            printf("no config file (%s is absent, or none was named): duetd's defaults and options\n",
                   DUET_DEFAULT_CONFIG);
        return 0;
    }
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
    /* Stopped on every way out of main, so what was written reaches the log. */
    __attribute__((cleanup(log_filter_release))) struct log_filter *log_filter = NULL;
    struct sockaddr_un notify_to;
    socklen_t notify_len = 0;
    _cleanup_close_ int notify_fd = service_notify_open(&notify_to, &notify_len);
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
    /* libvirt's own log lines, alarming and nothing to act on, are kept
     * out of duetd's log (logfilter.h) unless asked for: --debug, or a
     * LIBVIRT_LOG_OUTPUTS of the user's own. */
    const char *lv_outputs = getenv("LIBVIRT_LOG_OUTPUTS");
    log_filter = log_filter_start(o.debug || (lv_outputs && *lv_outputs), &err);
    if (!log_filter)
        fprintf(stderr, "duetd: %s; libvirt's log lines will show in this log\n", err.msg);

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
        .max_image_size = o.max_image_size, .debug = o.debug, .config_file = o.config_path[0] ? o.config_path : NULL,
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
    if (o.metrics_listen && api_metrics_listen(api, o.metrics_listen, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    struct api_web_config web = {.addr = o.web, .cert = o.web_cert[0] ? o.web_cert : NULL,
                                 .key = o.web_key[0] ? o.web_key : NULL, .write = o.web_write};
    if (o.web && api_web_listen(api, &web, &err) < 0) {
        report_start(ready_fd, err.msg);
        return 1;
    }
    d.on_shutdown = stop_api;
    d.on_shutdown_opaque = api;
    daemon_start(&d);
    report_start(ready_fd, "ok");
    /* Ready means what the daemonizing parent's exit means: the fleet is
     * known and the socket answers. */
    char ready[64];
    snprintf(ready, sizeof(ready), "READY=1\nMAINPID=%d", (int)getpid());
    service_notify(notify_fd, &notify_to, notify_len, ready);

    uv_run(loop, UV_RUN_DEFAULT);
    service_notify(notify_fd, &notify_to, notify_len, "STOPPING=1");

    /* Shut down: every handle closes, the drivers let go, memory is returned. */
    daemon_close(&d);
    api_free(api);
    uv_loop_close(loop);
    unlink(o.socket);
    close(lock_fd);
    return 0;
}
