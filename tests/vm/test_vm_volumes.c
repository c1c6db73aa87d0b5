/*
 * Volumes in real guests: host directories shared through virtiofs by
 * libvirt's virtiofsd, behind duet-virtiofsd (backends/vm/virtiofs.h).
 */
#include "vmtest.h"

#include <sys/wait.h>

/* A directory with rw/ (empty) and ro/in ("hostdata"). */
static void vol_dirs(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/duet-vol-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char p[256];
    snprintf(p, sizeof(p), "%s/rw", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/ro", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/ro/in", dir);
    FILE *f = fopen(p, "we");
    cr_assert_not_null(f);
    fputs("hostdata\n", f);
    fclose(f);
}

static void vol_rm(const char *dir)
{
    nftw(dir, vt_rm, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static bool exists_in(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

Test(vm_volumes, a_rootfs_vm_writes_its_volume_and_cannot_write_a_read_only_one, .timeout = 300)
{
    char dir[64];
    vol_dirs(dir, sizeof(dir));
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    char yaml[2048];
    /* The workload is root in its guest: it remounts the read-only volume
     * read-write, which its own kernel allows, and still cannot write. */
    snprintf(yaml, sizeof(yaml),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: vols}\nspec:\n"
             "  placement: vm\n  image: {rootfs: @ROOTFS@}\n  resources: {memory: 128Mi}\n"
             "  command: [/bin/sh, -c, 'echo from-guest > /data/deep/out || exit 3; echo owned > /data/mine; "
             "chown 1234:1234 /data/mine; cat /ro/in; echo x > /ro/w1 || echo first-refused; "
             "mount -o remount,rw /ro && echo remounted; echo y > /ro/w2 || echo second-refused; "
             "mkdir /ro/d || echo third-refused; exit 0']\n"
             "  volumes:\n"
             "    - {source: %s/rw, target: /data}\n"
             "    - {source: %s/rw, target: /data/deep}\n"
             "    - {source: %s/ro, target: /ro, readOnly: true}\n",
             dir, dir, dir);
    vt_load(&t, yaml);
    struct vt_exit x = {0};
    struct driver_instance *inst = vt_boot(&t, "vols", &x);
    cr_assert(vt_wait_exit(&t, &x, 120000), "the guest ended");
    char *log = vt_log(&t, inst);
    cr_expect_eq(x.code, 0, "the workload ended well (exit %d); log:\n%s", x.code, log);
    cr_expect(strstr(log, "hostdata"), "the guest read the host's file; log:\n%s", log);
    cr_expect(strstr(log, "first-refused") && strstr(log, "second-refused") && strstr(log, "third-refused"),
              "no write reached the read-only volume, remounted or not; log:\n%s", log);
    free(log);
    char p[300];
    snprintf(p, sizeof(p), "%s/rw/out", dir);
    char *out = vt_slurp(p);
    cr_expect_str_eq(out, "from-guest\n", "the guest's write is on the host");
    free(out);
    snprintf(p, sizeof(p), "%s/rw/mine", dir);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_expect(st.st_uid == 1234 && st.st_gid == 1234, "ownership set in the guest is the host's: %u:%u",
              (unsigned)st.st_uid, (unsigned)st.st_gid);
    snprintf(p, sizeof(p), "%s/ro", dir);
    cr_expect_not(exists_in(p, "w1") || exists_in(p, "w2") || exists_in(p, "d"),
                  "nothing was written into the read-only volume");
    vt_destroy(&t, inst);
    vt_teardown(&t);
    cr_expect_eq(vt_processes_mentioning(dir), 0, "no virtiofsd left sharing %s", dir);
    vol_rm(dir);
}

/* create fails; its message holds want. */
static void create_refused(struct vt *t, const char *name, const char *want)
{
    struct driver_instance *inst = NULL;
    struct vt_wait w = {0};
    struct duet_err err = {0};
    int rc = t->drv->create(t->drv, vt_spec(t, name), NULL, &inst, vt_done, &w, &err);
    const char *msg = err.msg;
    if (rc == 0) {
        cr_assert(vt_run_until(t, &w.done, 60000), "create of %s finished", name);
        cr_assert(w.failed, "create of %s was refused", name);
        msg = w.err;
        t->drv->release(t->drv, inst);
    }
    cr_expect(strstr(msg, want), "%s: the refusal says \"%s\": %s", name, want, msg);
}

Test(vm_volumes, a_volume_that_is_not_a_directory_of_its_own_is_refused_before_any_guest_runs, .timeout = 120)
{
    char dir[64];
    vol_dirs(dir, sizeof(dir));
    struct vt t;
    vt_setup(&t, VM_ACCEL_TCG);
    char p[300], link[300];
    snprintf(p, sizeof(p), "%s/file", dir);
    FILE *f = fopen(p, "we");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(link, sizeof(link), "%s/etc-link", dir);
    cr_assert_eq(symlink("/etc", link), 0);
    char yaml[4096];
    const char *wl = "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: %s}\nspec:\n"
                     "  placement: vm\n  image: {rootfs: @ROOTFS@}\n  command: [/bin/true]\n"
                     "  volumes: [{source: %s, target: /v}]\n";
    size_t o = 0;
    o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, wl, "afile", p);
    o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, wl, "missing", "/nonexistent/duet-no-such-dir");
    snprintf(yaml + o, sizeof(yaml) - o, wl, "mystate", t.state);
    vt_load(&t, yaml);
    create_refused(&t, "afile", "is not a directory");
    create_refused(&t, "missing", "cannot be used; create it");
    create_refused(&t, "mystate", "which is or holds the host's");
    /* validate refuses a link to /etc by itself; the driver does too, for
     * a link put there after validation. */
    struct workload_spec *w = (struct workload_spec *)vt_spec(&t, "missing");
    w->volumes[0].source = link;
    create_refused(&t, "missing", "/etc");
    vt_teardown(&t);
    vol_rm(dir);
}

/* duet-virtiofsd's own checks, on the path libvirt hands it. */
static int run_wrapper(const char *name, const char *source, char *out, size_t len)
{
    const char *bin = getenv("DUET_VIRTIOFSD");
    cr_assert_not_null(bin, "DUET_VIRTIOFSD names duet-virtiofsd (make check sets it)");
    char path[PATH_MAX], opt[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s%s", bin, name);
    snprintf(opt, sizeof(opt), "source=%s,cache=auto", source);
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        /* no --socket-path: a virtiofsd that got this far fails at once */
        execl(path, path, "-o", opt, (char *)NULL);
        _exit(126);
    }
    close(pipefd[1]);
    size_t got = 0;
    ssize_t n;
    while (got + 1 < len && (n = read(pipefd[0], out + got, len - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(pipefd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

Test(vm_volumes, the_virtiofsd_wrapper_refuses_a_path_that_no_longer_leads_where_it_was_checked)
{
    char dir[64];
    vol_dirs(dir, sizeof(dir));
    char link[300], mid[300], out[4096];
    snprintf(link, sizeof(link), "%s/swapped", dir);
    cr_assert_eq(symlink("/etc", link), 0);
    cr_expect_eq(run_wrapper("", link, out, sizeof(out)), 1);
    cr_expect(strstr(out, "cannot open the shared directory"), "a final symlink is not followed: %s", out);
    /* a link higher up the path */
    snprintf(mid, sizeof(mid), "%s/up", dir);
    cr_assert_eq(symlink(dir, mid), 0);
    snprintf(link, sizeof(link), "%s/up/rw", dir);
    cr_expect_eq(run_wrapper("-ro", link, out, sizeof(out)), 1);
    cr_expect(strstr(out, "now leads to") && strstr(out, "refused"), "a link on the way is refused: %s", out);
    cr_expect_eq(run_wrapper("", "relative/dir", out, sizeof(out)), 1);
    cr_expect(strstr(out, "absolute path"), "%s", out);
    vol_rm(dir);
}
