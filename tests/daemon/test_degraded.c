/*
 * test_degraded.c - a state store that refuses writes.
 *
 * The daemon's state directory is a small tmpfs, filled to the last page
 * while workloads run: the store's next write fails for real (SQLITE_FULL).
 * duetd must then change nothing (an apply answers that nothing was
 * changed and is not half made; a delete is refused), say so everywhere
 * (/v1/info, get, describe), take no step on the host, and once space is
 * back write every workload's state again and go on, so that a daemon
 * started afterwards finds what happened meanwhile.
 */
#include <sys/mount.h>
#include <sys/statvfs.h>

#include "dtest.h"
#include "orchestrator/store.h"

#define ROOTFS dd_env("DUET_ROOTFS")

static const char *doc(char *buf, size_t len, const char *name, const char *cmd)
{
    snprintf(buf, len,
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  placement: container\n"
             "  image: {rootfs: %s}\n  command: %s\n  restart: never\n  resources: {memory: 16Mi, disk: 16Mi}\n",
             name, ROOTFS, cmd);
    return buf;
}

/* Fills the filesystem of dir to the last byte; returns the filler's path. */
static void fill(const char *dir, char *path, size_t len)
{
    snprintf(path, len, "%s/filler", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    struct statvfs sv;
    cr_assert_eq(statvfs(dir, &sv), 0);
    off_t want = (off_t)sv.f_bavail * (off_t)sv.f_frsize;
    cr_assert_eq(fallocate(fd, 0, 0, want), 0, "fallocate %lld: %s", (long long)want, strerror(errno));
    /* Whatever a rounding left: written until the filesystem says no. */
    char page[4096] = {0};
    while (write(fd, page, sizeof(page)) > 0)
        ;
    close(fd);
    cr_assert_eq(statvfs(dir, &sv), 0);
    cr_assert_eq(sv.f_bavail, 0, "%s still has %llu blocks free", dir, (unsigned long long)sv.f_bavail);
}

struct seen {
    char ender_phase[32];
    int64_t ender_exit;
    bool newcomer;
};

static void look(void *opaque, const struct store_row *r)
{
    struct seen *s = opaque;
    if (strcmp(r->name, "ender") == 0) {
        snprintf(s->ender_phase, sizeof(s->ender_phase), "%s", r->phase);
        s->ender_exit = r->last_exit;
    }
    if (strcmp(r->name, "newcomer") == 0)
        s->newcomer = true;
}

static bool info_degraded(struct dd *d)
{
    json_t *info = dd_get(d, "/v1/info");
    bool deg = json_is_string(json_object_get(info, "degraded"));
    json_decref(info);
    return deg;
}

Test(degraded, a_full_store_changes_nothing_and_recovers, .timeout = 120)
{
    struct dd d;
    dd_init_on_tmpfs(&d, "96m");
    char a[1024], b[1024], c[1024];
    doc(a, sizeof(a), "keeper", "[/bin/sleep, '3600']");
    /* It ends a second after the test's exec made /go: that exec's own
     * end is reported before the container's pid 1 goes (and with it,
     * SIGKILL to all its namespace, a helper still reporting included). */
    doc(b, sizeof(b), "ender", "[/bin/sh, -c, 'while [ ! -e /go ]; do sleep 0.1; done; sleep 1; exit 3']");
    doc(c, sizeof(c), "newcomer", "[/bin/sleep, '3600']");
    char *out;
    const char *first = dd_manifest(&d, "first.yaml", "%s---\n%s", a, b);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 60", first), 0, "%s", out);
    free(out);
    char *keeper_handle = dd_handle(&d, "keeper");
    cr_assert(!info_degraded(&d));

    char filler[256];
    fill(d.state, filler, sizeof(filler));

    /* The apply's commit is refused: nothing was changed, and the daemon says why. */
    const char *second = dd_manifest(&d, "second.yaml", "%s", c);
    cr_expect_neq(dd_duet(&d, &out, "apply -f %s", second), 0, "%s", out);
    cr_expect(strstr(out, "nothing was changed"), "%s", out);
    cr_expect(strstr(out, "state store"), "%s", out);
    free(out);
    cr_expect(info_degraded(&d), "/v1/info does not say the daemon is degraded");
    json_t *all = dd_get(&d, "/v1/workloads");
    cr_expect_eq(json_array_size(json_object_get(all, "workloads")), 2, "the refused apply left a workload behind");
    json_decref(all);
    cr_expect_eq(dd_duet(&d, &out, "get"), 0, "%s", out);
    cr_expect(strstr(out, "warning: duetd is degraded") && strstr(out, "keeper"), "%s", out);
    free(out);
    cr_expect_neq(dd_duet(&d, &out, "delete keeper"), 0, "a delete was taken while degraded: %s", out);
    cr_expect(strstr(out, "degraded"), "%s", out);
    free(out);

    /* A workload ends while nothing can be written: the daemon sees it,
     * and its state reaches the store once there is room again. */
    cr_assert_eq(dd_duet(&d, &out, "exec ender -- /bin/touch /go"), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "ender", "state", "failed", 20000);

    cr_assert_eq(unlink(filler), 0);
    uint64_t deadline = dd_now_ms() + 10000;
    while (info_degraded(&d))
        cr_assert(dd_now_ms() < deadline && usleep(100000) == 0, "still degraded 10 s after space came back");
    struct client_buf ev = {0};
    struct duet_err eerr = {0};
    cr_assert_eq(client_call_buf(d.sock, "GET", "/v1/events", NULL, 0, &ev, 30000, &eerr), 200, "%s", eerr.msg);
    cr_expect(strstr(ev.data, "\"type\":\"store\""), "%s", ev.data);
    free(ev.data);
    /* The store could not keep the event that it was full; the log did. */
    char logp[128];
    snprintf(logp, sizeof(logp), "%s/duetd.log", d.dir);
    FILE *lf = fopen(logp, "re");
    cr_assert(lf, "%s: %s", logp, strerror(errno));
    char line[4096];
    bool said = false;
    while (!said && fgets(line, sizeof(line), lf))
        said = strstr(line, "duetd: degraded: duetd is degraded: its state store") != NULL;
    fclose(lf);
    cr_expect(said, "the log does not say the daemon was degraded (%s)", logp);

    /* Nothing on the host was touched meanwhile, and the daemon goes on. */
    char *h = dd_handle(&d, "keeper");
    cr_expect_str_eq(h, keeper_handle, "keeper was restarted while the store was full");
    free(h);
    free(keeper_handle);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 60", second), 0, "%s", out);
    free(out);

    /* What happened while the store was full was written afterwards:
     * the store itself says ender exited with 3 (a daemon started now
     * could also learn it from the container's exit file, so the row is
     * read, not the API). */
    dd_stop(&d);
    char db[256];
    snprintf(db, sizeof(db), "%s/state.db", d.state);
    struct store *st;
    struct duet_err err = {0};
    cr_assert_eq(store_open(&st, db, &err), 0, "%s", err.msg);
    struct seen s = {0};
    cr_assert_eq(store_load(st, look, &s, &err), 0, "%s", err.msg);
    store_close(st);
    cr_expect_str_eq(s.ender_phase, "exited");
    cr_expect_eq(s.ender_exit, 3);
    cr_expect(s.newcomer, "the store has no row for newcomer");
    dd_start(&d);
    dd_finish(&d);
}
