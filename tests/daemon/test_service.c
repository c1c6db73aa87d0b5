/*
 * duetd as a service: it tells the service manager when it is ready and
 * when it stops ($NOTIFY_SOCKET, as systemd's Type=notify reads it), takes
 * its settings from its config file with the command line overriding it,
 * says what its backends have in its own words, and the shell completion
 * offers the names of its workloads.
 */
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "dtest.h"
#include "tests/cli/run.h"

/* A datagram socket where a service manager would listen: a path, or the
 * abstract namespace when name starts with '@'. */
static int notify_listen(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    cr_assert_lt(n, sizeof(a.sun_path));
    memcpy(a.sun_path, name, n);
    if (name[0] == '@')
        a.sun_path[0] = '\0';
    else
        unlink(name);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)), 0,
                 "bind %s: %s", name, strerror(errno));
    return fd;
}

/* The next message, or "" after timeout_ms. */
static void notify_next(int fd, char *buf, size_t len, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    buf[0] = '\0';
    if (poll(&p, 1, timeout_ms) == 1) {
        ssize_t n = recv(fd, buf, len - 1, 0);
        buf[n > 0 ? n : 0] = '\0';
    }
}

static void start_notified(struct dd *d, const char *notify)
{
    setenv("NOTIFY_SOCKET", notify, 1);
    dd_start(d);
    unsetenv("NOTIFY_SOCKET");
}

Test(service, readiness_and_stopping_reach_the_service_manager, .timeout = 120)
{
    struct dd d;
    dd_prepare(&d, NULL);
    char path[128], msg[256], want[64];
    snprintf(path, sizeof(path), "%s/notify", d.dir);
    int fd = notify_listen(path);
    start_notified(&d, path);
    /* dd_start returned once the socket answered; READY=1 was sent once
     * it could, so it is there now or very soon. */
    notify_next(fd, msg, sizeof(msg), 10000);
    snprintf(want, sizeof(want), "READY=1\nMAINPID=%d", (int)d.pid);
    cr_expect_str_eq(msg, want);
    /* A workload duetd starts is not given the service manager's socket. */
    dd_apply_sleeper(&d, "sleeper");
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "exec sleeper -- /bin/sh -c 'echo [$NOTIFY_SOCKET]'"), 0);
    cr_expect(strstr(out, "[]"), "a workload sees NOTIFY_SOCKET: %s", out);
    free(out);
    dd_stop(&d);
    notify_next(fd, msg, sizeof(msg), 10000);
    cr_expect_str_eq(msg, "STOPPING=1");
    close(fd);

    /* The abstract namespace, as systemd names it on some hosts. */
    char abstract[64];
    snprintf(abstract, sizeof(abstract), "@duet-test-notify-%d", (int)getpid());
    fd = notify_listen(abstract);
    start_notified(&d, abstract);
    notify_next(fd, msg, sizeof(msg), 10000);
    snprintf(want, sizeof(want), "READY=1\nMAINPID=%d", (int)d.pid);
    cr_expect_str_eq(msg, want);
    /* The workload it had is re-attached, not restarted. */
    cr_expect(dd_field_is(&d, "sleeper", "state", "running"));
    cr_expect_eq(dd_int(&d, "sleeper", "restarts"), 0);
    dd_finish(&d);
    close(fd);
}

/* The completion's offers, "complete -p"'s line taken off (bash). */
static char *bash_offers(const char *words)
{
    const char *env[] = {"DUET_SOCKET", NULL};
    char *o = run_complete("bash", dd_env("DUET_SRC"), words, env);
    char *nl = strchr(o, '\n');
    memmove(o, nl ? nl + 1 : o + strlen(o), strlen(nl ? nl + 1 : o + strlen(o)) + 1);
    return o;
}

static char *zsh_offers(const char *words, const char *socket_env)
{
    const char *env[] = {socket_env, NULL};
    return run_complete("zsh", dd_env("DUET_SRC"), words, env);
}

Test(service, the_config_file_sets_the_daemon_up_and_its_options_override_it, .timeout = 180)
{
    struct dd d;
    dd_prepare(&d, NULL);
    /* The bridge from the file; the subnet from the file too, but the
     * command line names another, which wins. */
    char cfg[256];
    snprintf(cfg, sizeof(cfg), "%s/duetd.yaml", d.dir);
    FILE *f = fopen(cfg, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "# a host's settings\n"
            "apiVersion: duet/v1\n"
            "kind: Daemon\n"
            "spec:\n"
            "  bridge: %s\n"
            "  subnet: 10.254.254.0/24\n"
            "  guestKernel: %s\n"
            "  logMax: 64Ki\n",
            d.bridge, dd_env("DUET_GUEST_KERNEL"));
    fclose(f);
    d.network_from_store = true;
    d.extra[0] = "--config";
    d.extra[1] = cfg;
    d.extra[2] = "--subnet";
    d.extra[3] = d.subnet;
    dd_start(&d);

    json_t *info = dd_get(&d, "/v1/info");
    cr_assert_not_null(info);
    cr_expect_str_eq(json_string_value(json_object_get(info, "config_file")), cfg);
    json_t *net = json_object_get(info, "network");
    cr_expect_str_eq(json_string_value(json_object_get(net, "bridge")), d.bridge, "the file's bridge");
    cr_expect_str_eq(json_string_value(json_object_get(net, "subnet")), d.subnet, "the option's subnet");
    json_t *vm = json_object_get(json_object_get(info, "backends"), "vm");
    cr_expect_str_eq(json_string_value(json_object_get(vm, "guest_kernel")), dd_env("DUET_GUEST_KERNEL"));
    cr_expect(json_is_false(json_object_get(vm, "kvm")), "the suite hides /dev/kvm");
    json_decref(info);

    /* duetd says what its backends have, in its own words. */
    char logp[128];
    snprintf(logp, sizeof(logp), "%s/duetd.log", d.dir);
    char *log = dd_slurp(logp);
    cr_assert_not_null(log);
    cr_expect(strstr(log, "duetd: containers: namespaces, cgroup v"), "%s", log);
    cr_expect(strstr(log, "duetd: VMs run under emulation: no /dev/kvm"), "%s", log);
    char kline[512];
    snprintf(kline, sizeof(kline), "duetd: guest kernel for rootfs and OCI images as VMs: %s",
             dd_env("DUET_GUEST_KERNEL"));
    cr_expect(strstr(log, kline), "%s", log);
    free(log);

    /* Completion asks this daemon for its workloads' names. */
    dd_apply_sleeper(&d, "alpha");
    dd_apply_sleeper(&d, "beta");
    char words[512];
    snprintf(words, sizeof(words), "%s --socket %s logs ''", dd_env("DUET_BIN"), d.sock);
    char *o = bash_offers(words);
    cr_expect_str_eq(o, "alpha\nbeta\n");
    free(o);
    snprintf(words, sizeof(words), "%s --socket %s exec al", dd_env("DUET_BIN"), d.sock);
    o = bash_offers(words);
    cr_expect_str_eq(o, "alpha\n");
    free(o);
    /* exec's second word is the command, not a name. */
    snprintf(words, sizeof(words), "%s --socket %s exec alpha ''", dd_env("DUET_BIN"), d.sock);
    o = bash_offers(words);
    cr_expect_str_empty(o);
    free(o);
    snprintf(words, sizeof(words), "%s --socket %s snapshot create ''", dd_env("DUET_BIN"), d.sock);
    o = bash_offers(words);
    cr_expect_str_eq(o, "alpha\nbeta\n");
    free(o);
    char sockenv[160];
    snprintf(sockenv, sizeof(sockenv), "DUET_SOCKET=%s", d.sock);
    snprintf(words, sizeof(words), "%s describe ''", dd_env("DUET_BIN"));
    o = zsh_offers(words, sockenv);
    cr_expect_str_eq(o, "alpha\nbeta\n", "zsh, the socket from $DUET_SOCKET");
    free(o);
    /* Stored secrets by name, for rm and set. */
    char *so;
    static const char *const secret_cmds[] = {"secret set db-pw < /etc/hostname", "secret set api-key < /etc/hostname"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(dd_duet(&d, &so, "%s", secret_cmds[i]), 0, "%s", so);
        free(so);
    }
    snprintf(words, sizeof(words), "%s --socket %s secret rm ''", dd_env("DUET_BIN"), d.sock);
    o = bash_offers(words);
    cr_expect_str_eq(o, "api-key\ndb-pw\n");
    free(o);
    snprintf(words, sizeof(words), "%s --socket %s secret ''", dd_env("DUET_BIN"), d.sock);
    o = bash_offers(words);
    cr_expect_str_eq(o, "set\nls\nrm\n");
    free(o);
    snprintf(words, sizeof(words), "%s secret set d", dd_env("DUET_BIN"));
    o = zsh_offers(words, sockenv);
    cr_expect_str_eq(o, "api-key\ndb-pw\n", "zsh offers every name (compadd filters)");
    free(o);
    static const char *const rm_cmds[] = {"secret rm db-pw", "secret rm api-key"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(dd_duet(&d, &so, "%s", rm_cmds[i]), 0, "%s", so);
        free(so);
    }
    /* No daemon there: nothing offered, nothing said. */
    snprintf(words, sizeof(words), "%s --socket %s/nowhere.sock delete ''", dd_env("DUET_BIN"), d.dir);
    o = bash_offers(words);
    cr_expect_str_empty(o);
    free(o);
    dd_finish(&d);
}
