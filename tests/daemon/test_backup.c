/*
 * test_backup.c - duet backup on one daemon, duet restore on another
 * (another state directory: another host), through the real CLI; a live
 * backup that pauses and never stops the workload; what a backup refuses
 * before it stops anything, a full disk, and archives
 * that are cut short, corrupted or hand-made with a spec that fails
 * validation: refused, nothing made.
 */
#include <sys/mount.h>

#include "dtest.h"
#include "../common/backup_forge.h"

static const char *app(struct dd *d)
{
    return dd_manifest(
        d, "app.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: app}\nspec:\n  placement: container\n"
        "  image: {rootfs: %s}\n"
        "  volumes: [{name: appdata, target: /data}, {name: appsized, size: 32Mi, target: /sized}]\n"
        "  command: [/bin/sh, -c, \"[ -f /data/f ] || echo hello > /data/f; [ -f /sized/g ] || echo sized > "
        "/sized/g; [ -f /sized/r ] || head -c 1048576 /dev/urandom > /sized/r; echo ready; exec sleep 3600\"]\n",
        dd_env("DUET_ROOTFS"));
}

static bool dir_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n == 0;
}

/* What a refused restore must not have made on d. */
static void nothing_made(struct dd *d, const char *name, const char *why)
{
    json_t *w = dd_workload(d, name);
    cr_expect_null(w, "%s: workload %s was made", why, name);
    json_decref(w);
    char *out;
    cr_assert_eq(dd_duet(d, &out, "volume ls"), 0);
    cr_expect(!strstr(out, "appdata") && !strstr(out, "evil"), "%s: volumes were made: %s", why, out);
    free(out);
    char p[256];
    snprintf(p, sizeof(p), "%s/backups", d->state);
    cr_expect_eq(dd_count_dirs(p), 0, "%s: its unpacked copy is left in %s", why, p);
}

/* duet restore of `file` on d is refused (with want in the reason, when
 * not NULL) and leaves nothing. */
static void restore_refused(struct dd *d, const char *file, const char *want, const char *name, const char *why)
{
    char *out;
    cr_expect_eq(dd_duet(d, &out, "restore %s", file), 1, "%s: %s", why, out);
    cr_expect(!want || strstr(out, want), "%s: the reason is not \"%s\": %s", why, want, out);
    free(out);
    nothing_made(d, name, why);
}

/* A shell command on two paths (src, then dst, each as often as fmt
 * names them in that order), which must succeed. */
static void shell2(const char *fmt, const char *src, const char *dst)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), fmt, src, src, dst, dst);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(backup, a_container_and_its_volumes_move_to_another_daemon, .timeout = 240)
{
    struct dd a, b;
    dd_init(&a);
    char *out;
    cr_assert_eq(dd_duet(&a, &out, "apply -f %s", app(&a)), 0, "%s", out);
    free(out);
    cr_assert(duet_logs_until(&a, "app", "ready", 30000), "app did not start");
    char *h1 = dd_handle(&a, "app");
    char file[256], bad[256];
    snprintf(file, sizeof(file), "%s/app.tar.zst", a.dir);

    /* Live: paused for the copy, never stopped. */
    cr_assert_eq(dd_duet(&a, &out, "backup app -o %s", file), 0, "%s", out);
    cr_expect(strstr(out, "crash-consistent: app was paused for") && strstr(out, "volume appdata"), "%s", out);
    free(out);
    char *hl = dd_handle(&a, "app");
    cr_expect_str_eq(hl, h1, "a live backup restarted the workload");
    free(hl);
    cr_expect(dd_field_is(&a, "app", "state", "running"));
    cr_assert_eq(dd_duet(&a, &out, "exec app -- echo still"), 0, "%s", out);
    cr_expect_str_eq(out, "still\n", "the workload runs on after the pause");
    free(out);
    cr_assert_eq(unlink(file), 0);

    /* Refused before anything is stopped. */
    cr_expect_eq(dd_duet(&a, &out, "backup app -o /nonexistent/dir/app.tar.zst --stop"), 1, "%s", out);
    cr_expect(strstr(out, "/nonexistent/dir"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&a, &out, "backup nosuch -o %s --stop", file), 1, "%s", out);
    free(out);
    char *h2 = dd_handle(&a, "app");
    cr_expect_str_eq(h2, h1, "a refused backup stopped the workload");
    free(h2);

    /* A full disk: refused, no file left, the workload runs again with its data. */
    char full[256];
    snprintf(full, sizeof(full), "%s/full", a.dir);
    cr_assert_eq(mkdir(full, 0700), 0);
    cr_assert_eq(mount("duet-test", full, "tmpfs", MS_NOSUID | MS_NODEV, "size=256k"), 0, "%s", strerror(errno));
    cr_expect_eq(dd_duet(&a, &out, "backup app -o %s/app.tar.zst --stop", full), 1, "%s", out);
    cr_expect(strstr(out, "space"), "the reason is the full disk: %s", out);
    free(out);
    cr_expect(dir_empty(full), "files are left on the full disk");
    umount2(full, MNT_DETACH);
    dd_wait_field(&a, "app", "state", "running", 30000);
    cr_assert_eq(dd_duet(&a, &out, "exec app -- cat /data/f /sized/g"), 0, "%s", out);
    cr_expect_str_eq(out, "hello\nsized\n");
    free(out);

    cr_assert_eq(dd_duet(&a, &out, "backup app -o %s --stop", file), 0, "%s", out);
    cr_expect(strstr(out, "backed up app to") && strstr(out, "volume appdata") && strstr(out, "volume appsized, 32") &&
                  strstr(out, "stopped for"),
              "%s", out);
    free(out);
    struct stat st;
    cr_assert_eq(stat(file, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "the archive holds data: it is the user's alone");
    dd_wait_field(&a, "app", "state", "running", 30000);
    char *ev = dd_events(&a, "app");
    cr_expect(strstr(ev, "backed up to"), "%s", ev);
    free(ev);
    free(h1);

    /* Another host. */
    dd_init_beside(&b, &a);
    cr_assert_eq(dd_duet(&b, &out, "restore %s", file), 0, "%s", out);
    cr_expect(strstr(out, "restored app from") && strstr(out, "as a container"), "%s", out);
    free(out);
    dd_wait_field(&b, "app", "state", "running", 30000);
    cr_assert_eq(dd_duet(&b, &out, "exec app -- cat /data/f /sized/g"), 0, "%s", out);
    cr_expect_str_eq(out, "hello\nsized\n", "the restored workload has the data it had");
    free(out);
    cr_assert_eq(dd_duet(&b, &out, "volume inspect appsized"), 0, "%s", out);
    cr_expect(strstr(out, "33554432"), "a sized volume keeps its size: %s", out);
    free(out);
    /* Never over what is there. */
    cr_expect_eq(dd_duet(&b, &out, "restore %s", file), 1, "%s", out);
    cr_expect(strstr(out, "workload named app exists"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&b, &out, "restore %s --name app2", file), 1, "%s", out);
    cr_expect(strstr(out, "volume appdata exists"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&b, &out, "delete app --volumes --wait"), 0, "%s", out);
    free(out);

    /* Hostile archives on b: nothing is made. */
    snprintf(bad, sizeof(bad), "%s/cut.tar.zst", a.dir);
    shell2("n=$(( $(stat -c %%s %s) / 2 )); head -c $n %s > %s; test -s %s", file, bad);
    restore_refused(&b, bad, NULL, "app", "a cut archive");
    shell2("n=$(( $(stat -c %%s %s) / 2 )); cp %s %s; printf garbagegarbagegarbage | dd of=%s bs=1 seek=$n "
           "conv=notrunc 2>/dev/null",
           file, bad);
    restore_refused(&b, bad, NULL, "app", "a corrupted archive");
    /* Hand-made and sealed: a volume "evil" and a spec duet refuses. */
    char ix[1024];
    snprintf(ix, sizeof(ix),
             "{\"format\":1,\"workload\":\"evil\",\"disk\":null,\"volumes\":[{\"name\":\"evil\",\"size\":null}],"
             "\"spec\":{\"apiVersion\":\"duet/v1\",\"kind\":\"Workload\",\"metadata\":{\"name\":\"evil\"},"
             "\"spec\":{\"placement\":\"container\",\"image\":{\"rootfs\":\"%s\"},\"privileged\":true,"
             "\"command\":[\"/bin/true\"],\"volumes\":[{\"name\":\"evil\",\"target\":\"/v\"}]}}}",
             dd_env("DUET_ROOTFS"));
    struct entry evil[] = {{"volumes", AE_IFDIR, NULL}, {"volumes/evil", AE_IFDIR, NULL},
                           {"volumes/evil/data", AE_IFDIR, NULL}, {"volumes/evil/data/x", AE_IFREG, "x\n"}};
    snprintf(bad, sizeof(bad), "%s/evil.tar.zst", a.dir);
    cr_assert_eq(backup_forge(bad, ix, evil, 4, false), 0);
    restore_refused(&b, bad, "privileged", "evil", "a spec that fails validation");
    /* ... and one whose volumes directory is a symlink to /etc */
    struct entry link[] = {{"volumes", AE_IFLNK, "/etc"}, {"volumes/evil", AE_IFDIR, NULL}};
    snprintf(bad, sizeof(bad), "%s/link.tar.zst", a.dir);
    cr_assert_eq(backup_forge(bad, ix, link, 2, false), 0);
    restore_refused(&b, bad, "refused", "evil", "an archive with a symlink for a directory");
    /* ... and one whose entry climbs out with .. */
    struct entry up[] = {{"volumes", AE_IFDIR, NULL}, {"volumes/evil", AE_IFDIR, NULL},
                         {"volumes/evil/data", AE_IFDIR, NULL},
                         {"volumes/evil/data/../../../../../../tmp/duet-escaped", AE_IFREG, "x\n"}};
    snprintf(bad, sizeof(bad), "%s/up.tar.zst", a.dir);
    cr_assert_eq(backup_forge(bad, ix, up, 4, false), 0);
    restore_refused(&b, bad, "leads out", "evil", "an archive with ../ in a name");
    cr_expect_neq(access("/tmp/duet-escaped", F_OK), 0, "a restore wrote outside its directory");
    cr_expect_eq(dd_duet(&b, &out, "restore /nonexistent.tar.zst"), 1, "%s", out);
    free(out);

    dd_finish(&b);
    dd_finish(&a);
}

/* The cgroup file that freezes the daemon's one container, and the one
 * (and the line) that says it is frozen: v1's freezer hierarchy beside
 * the pids one duetd reports, or v2's own files. */
#define FZ_PATH 512
static void freezer_files(struct dd *d, char ctl[FZ_PATH], char state[FZ_PATH], bool *v1)
{
    DIR *dir = opendir(d->cgdir);
    cr_assert_not_null(dir, "%s", d->cgdir);
    struct dirent *e;
    char leaf[64] = "";
    while ((e = readdir(dir)))
        if (e->d_type == DT_DIR && e->d_name[0] != '.')
            snprintf(leaf, sizeof(leaf), "%.63s", e->d_name);
    closedir(dir);
    cr_assert(leaf[0], "no container cgroup under %s", d->cgdir);
    const char *pids = strstr(d->cgdir, "/pids/");
    *v1 = pids != NULL;
    if (*v1) {
        snprintf(ctl, FZ_PATH, "%.*s/freezer/%s/%s/freezer.state", (int)(pids - d->cgdir), d->cgdir, pids + 6, leaf);
        snprintf(state, FZ_PATH, "%s", ctl);
    } else {
        snprintf(ctl, FZ_PATH, "%s/%s/cgroup.freeze", d->cgdir, leaf);
        snprintf(state, FZ_PATH, "%s/%s/cgroup.events", d->cgdir, leaf);
    }
}

static bool file_says(const char *path, const char *want)
{
    char *t = dd_slurp(path);
    bool yes = t && strstr(t, want);
    free(t);
    return yes;
}

/* A daemon killed while it had a container paused for a live backup: the
 * next one lets it go when it re-attaches. */
Test(backup, a_container_a_killed_daemon_left_paused_is_let_go, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    dd_apply_sleeper(&d, "sleeper");
    dd_wait_field(&d, "sleeper", "state", "running", 30000);
    char ctl[FZ_PATH], state[FZ_PATH];
    bool v1;
    freezer_files(&d, ctl, state, &v1);
    FILE *f = fopen(ctl, "w");
    cr_assert_not_null(f, "%s", ctl);
    fputs(v1 ? "FROZEN" : "1", f);
    fclose(f);
    uint64_t deadline = dd_now_ms() + 10000;
    while (!file_says(state, v1 ? "FROZEN" : "frozen 1"))
        cr_assert(dd_now_ms() < deadline && usleep(20000) == 0, "the container did not freeze");
    dd_kill9(&d);
    dd_start(&d);
    deadline = dd_now_ms() + 20000;
    while (!file_says(state, v1 ? "THAWED" : "frozen 0"))
        cr_assert(dd_now_ms() < deadline && usleep(50000) == 0, "the container is still frozen after a restart");
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "exec sleeper -- echo awake"), 0, "%s", out);
    cr_expect_str_eq(out, "awake\n");
    free(out);
    dd_finish(&d);
}
