/*
 * Secrets through a real duetd into a real container: from a file and
 * from duet's own store, as variables and as files on a tmpfs; never in
 * what duet shows (describe, get, events, the API) nor in its store; a
 * changed value replaces the workload; the value is kept for restarts
 * after its file is gone.  Refusals name the fix and never the value.
 */
#include "dtest.h"
#include "storage/backup.h"

#define PW "pw-Aq9Zr7"              /* from a file, as $DBPW */
#define STORED "stored-Kx31Vt"      /* duet secret set api */
#define ROTATED "rotated-Lm82Qe"
#define TLS "TLS\0key-Pw64"         /* binary, as /run/secrets/tls.key */

static void write_secret(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0, "%s", path);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    cr_assert_eq(chmod(path, mode), 0);
}

/* Does the file at path hold needle anywhere (binary files too)? */
static bool file_holds(const char *path, const char *needle)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t len = 0;
    struct duet_err err = {0};
    char *buf = duet_read_fd(fd, 1u << 30, &len, path, &err);
    close(fd);
    bool hit = buf && memmem(buf, len, needle, strlen(needle));
    free(buf);
    return hit;
}

/* Nothing duet shows or keeps in its store holds any of the values. */
static void values_hidden(struct dd *d, const char *name)
{
    static const char *const values[] = {PW, STORED, ROTATED, "key-Pw64", NULL};
    static const char *const cmds[] = {"describe %s", "get %s -o json", "get %s -o yaml", "events",
                                       "secret ls -o json", NULL};
    for (const char *const *c = cmds; *c; c++) {
        char *out;
        char cmd[128];
        snprintf(cmd, sizeof(cmd), *c, name);
        cr_assert_eq(dd_duet(d, &out, "%s", cmd), 0, "%s: %s", cmd, out);
        for (const char *const *v = values; *v; v++)
            cr_expect(!strstr(out, *v), "duet %s shows a secret's value: %s", cmd, out);
        free(out);
    }
    static const char *const paths[] = {"/v1/workloads", "/v1/workloads/app", "/v1/secrets", "/v1/secrets/api",
                                        "/v1/events?since=0", NULL};
    for (const char *const *p = paths; *p; p++) {
        struct client_buf b = {0};
        struct duet_err err = {0};
        int status = client_call_buf(d->sock, "GET", *p, NULL, 0, &b, 30000, &err);
        cr_expect(status == 200 && b.data, "GET %s: %d %s", *p, status, err.msg);
        for (const char *const *v = values; b.data && *v; v++)
            cr_expect(!strstr(b.data, *v), "GET %s shows a secret's value: %s", *p, b.data);
        free(b.data);
    }
    static const char *const files[] = {"state.db", "state.db-wal", "state.db-shm", NULL};
    for (const char *const *f = files; *f; f++) {
        char p[300];
        snprintf(p, sizeof(p), "%s/%s", d->state, *f);
        for (const char *const *v = values; *v; v++)
            cr_expect(!file_holds(p, *v), "%s holds a secret's value in clear", p);
    }
    char log[128];
    snprintf(log, sizeof(log), "%s/duetd.log", d->dir);
    for (const char *const *v = values; *v; v++)
        cr_expect(!file_holds(log, *v), "duetd's log holds a secret's value");
}

static char *exec_out(struct dd *d, const char *name, const char *cmd)
{
    char *out;
    cr_assert_eq(dd_duet(d, &out, "exec %s -- /bin/sh -c '%s'", name, cmd), 0, "%s: %s", cmd, out);
    return out;
}

Test(secrets, reach_a_container_and_stay_out_of_what_duet_shows, .timeout = 180)
{
    struct dd d;
    dd_init(&d);
    char pw[128], tls[128];
    snprintf(pw, sizeof(pw), "%s/pw", d.dir);
    snprintf(tls, sizeof(tls), "%s/tls.key", d.dir);
    write_secret(pw, PW "\n", strlen(PW) + 1, 0600);
    write_secret(tls, TLS, sizeof(TLS) - 1, 0640);
    char stored[128], rotated[128];
    snprintf(stored, sizeof(stored), "%s/stored", d.dir);
    snprintf(rotated, sizeof(rotated), "%s/rotated", d.dir);
    write_secret(stored, STORED "\n", strlen(STORED) + 1, 0600);
    write_secret(rotated, ROTATED "\n", strlen(ROTATED) + 1, 0600);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "secret set api < %s", stored), 0, "%s", out);
    cr_expect(strstr(out, "secret api set"), "%s", out);
    free(out);
    const char *m = dd_manifest(&d, "app.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: app}\nspec:\n"
                                "  image: {rootfs: %s}\n  user: \"1000:1000\"\n  command: [/bin/sleep, \"3600\"]\n"
                                "  env:\n    PLAIN: shown\n    DBPW: {secretFile: ./pw}\n    STORED: {secret: api}\n"
                                "  secrets:\n    - {name: tls.key, file: ./tls.key}\n    - api\n",
                                dd_env("DUET_ROOTFS"));
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 60", m), 0, "%s", out);
    free(out);

    /* As variables, one trailing newline gone; as files, the bytes as
     * they are, the workload user's, read-only, on a tmpfs. */
    out = exec_out(&d, "app", "echo \"[$DBPW][$STORED][$PLAIN]\"");
    cr_expect_str_eq(out, "[" PW "][" STORED "][shown]\n");
    free(out);
    out = exec_out(&d, "app", "stat -c \"%a %u %g %s %n\" /run/secrets/tls.key /run/secrets/api");
    cr_expect_str_eq(out, "400 1000 1000 12 /run/secrets/tls.key\n400 1000 1000 14 /run/secrets/api\n");
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "exec app -- cat /run/secrets/tls.key | cmp - %s && echo same", tls), 0);
    cr_expect(strstr(out, "same"), "the binary secret came back changed: %s", out);
    free(out);
    out = exec_out(&d, "app", "grep \" /run/secrets \" /proc/mounts");
    cr_expect(strstr(out, "secrets /run/secrets tmpfs ro,nosuid,nodev,noexec"), "%s", out);
    free(out);
    cr_expect_neq(dd_duet(&d, &out, "exec app -- touch /run/secrets/x"), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "describe app"), 0, "%s", out);
    cr_expect(strstr(out, "env STORED = (secret api)") && strstr(out, "file /run/secrets/tls.key = (secret from"),
              "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "secret ls"), 0, "%s", out);
    cr_expect(strstr(out, "api") && strstr(out, "app"), "ls names the secret and its user: %s", out);
    free(out);
    values_hidden(&d, "app");

    /* A stored secret in use stays. */
    cr_expect_eq(dd_duet(&d, &out, "secret rm api"), 1, "%s", out);
    cr_expect(strstr(out, "used by app"), "%s", out);
    free(out);

    /* A changed stored secret replaces its user, which runs with the new value. */
    char *h0 = dd_handle(&d, "app");
    cr_assert_eq(dd_duet(&d, &out, "secret set api --from-file %s", rotated), 0, "%s", out);
    cr_expect(strstr(out, "replaced app"), "%s", out);
    free(out);
    cr_expect(duet_until(&d, "exec app -- /bin/sh -c 'echo $STORED; cat /run/secrets/api'", ROTATED "\n" ROTATED,
                         60000),
              "the new value did not reach the workload");
    char *h1 = dd_handle(&d, "app");
    cr_expect_str_neq(h0, h1, "a new instance");
    free(h0);
    free(h1);
    /* The same value again changes nothing. */
    cr_assert_eq(dd_duet(&d, &out, "secret set api < %s", rotated), 0, "%s", out);
    cr_expect(strstr(out, "unchanged") && !strstr(out, "replaced"), "%s", out);
    free(out);

    /* A changed secret file is a changed spec: apply replaces. */
    write_secret(pw, "new-" PW, strlen(PW) + 4, 0600);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 60", m), 0, "%s", out);
    cr_expect(strstr(out, "replaced"), "%s", out);
    free(out);
    out = exec_out(&d, "app", "echo $DBPW");
    cr_expect_str_eq(out, "new-" PW "\n");
    free(out);

    /* A backup holds references, not values; restored, it reads them again. */
    char bak[128];
    snprintf(bak, sizeof(bak), "%s/app.bak", d.dir);
    cr_assert_eq(dd_duet(&d, &out, "backup app -o %s", bak), 0, "%s", out);
    free(out);
    char unpacked[160];
    snprintf(unpacked, sizeof(unpacked), "%s/unpacked", d.dir);
    cr_assert_eq(mkdir(unpacked, 0700), 0);
    int bfd = open(bak, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(bfd, 0);
    struct backup_limits lim = {.max_bytes = 1u << 30, .max_entries = 100000};
    struct duet_err berr = {0};
    json_t *index = backup_archive_read(bfd, unpacked, &lim, &berr);
    close(bfd);
    cr_assert_not_null(index, "%s", berr.msg);
    char *itext = json_dumps(index, JSON_COMPACT);
    cr_expect(strstr(itext, "\"DBPW\":{\"secretFile\":") && !strstr(itext, "\"version\"") && !strstr(itext, PW) &&
                  !strstr(itext, ROTATED),
              "the backup's spec: %s", itext);
    free(itext);
    json_decref(index);
    char grep[300];
    snprintf(grep, sizeof(grep), "grep -raqs -e %s -e %s -e key-Pw64 %s", PW, ROTATED, unpacked);
    cr_expect_neq(system(grep), 0, "a file in the backup holds a secret's value");
    cr_assert_eq(dd_duet(&d, &out, "restore %s --name app2", bak), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "app2", "state", "running", 30000);
    out = exec_out(&d, "app2", "echo $DBPW $STORED");
    cr_expect_str_eq(out, "new-" PW " " ROTATED "\n");
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "delete app2 --wait"), 0, "%s", out);
    free(out);

    /* The value applied is what runs, also after the daemon restarts and
     * the file is gone; applying again without it names the file. */
    cr_assert_eq(unlink(pw), 0);
    dd_stop(&d);
    dd_start(&d);
    dd_wait_field(&d, "app", "state", "running", 30000);
    /* Its command killed from here (an exec doing it would die with the
     * container it ends): restart always makes a new instance. */
    char *h = dd_handle(&d, "app");
    int init_pid = atoi(h);
    free(h);
    cr_assert_gt(init_pid, 1);
    char children[64];
    snprintf(children, sizeof(children), "/proc/%d/task/%d/children", init_pid, init_pid);
    char *kids = dd_slurp(children);
    cr_assert(kids && atoi(kids) > 1, "duet-init %d has no command: %s", init_pid, kids ? kids : "");
    cr_assert_eq(kill(atoi(kids), SIGKILL), 0);
    free(kids);
    cr_expect(duet_until(&d, "exec app -- /bin/sh -c 'echo $DBPW'", "new-" PW, 60000),
              "the restarted instance lost the value whose file is gone");
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m), 1, "%s", out);
    cr_expect(strstr(out, "pw cannot be read"), "%s", out);
    free(out);
    values_hidden(&d, "app");
    dd_finish(&d);
}

Test(secrets, refusals_name_the_fix_never_the_value, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    char p[128], big[128], nul[128], open_file[128];
    snprintf(p, sizeof(p), "%s/ok", d.dir);
    snprintf(open_file, sizeof(open_file), "%s/open", d.dir);
    snprintf(big, sizeof(big), "%s/big", d.dir);
    snprintf(nul, sizeof(nul), "%s/nul", d.dir);
    write_secret(p, PW, strlen(PW), 0600);
    write_secret(open_file, PW, strlen(PW), 0644);
    write_secret(nul, TLS, sizeof(TLS) - 1, 0600);
    char *huge = malloc((1u << 20) + 2);
    memset(huge, 'x', (1u << 20) + 1);
    memcpy(huge, PW, strlen(PW));
    write_secret(big, huge, (1u << 20) + 1, 0600);
    static const struct {
        const char *env, *want;
    } cases[] = {
        {"{secretFile: ./open}", "readable by every user (mode 0644); make it private: chmod o-r"},
        {"{secretFile: ./missing}", "missing cannot be read: No such file or directory"},
        {"{secretFile: ./big}", "a secret is at most 1 MiB"},
        {"{secretFile: ./nul}", "holds a NUL byte, which no environment variable can"},
        {"{secretFile: .}", "is not a regular file"},
        {"{secret: nope}", "secret nope is not set; set it first: duet secret set nope"},
        {"{secret: ../etc/shadow}", "is not a secret's name"},
        {"{secret: api, secretFile: ./ok}", "one of them"},
        {"{secret: api, version: 0123}", "unknown key \"version\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *m = dd_manifest(&d, "bad.yaml",
                                    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: bad}\nspec:\n"
                                    "  image: {rootfs: %s}\n  command: [/bin/true]\n  env: {X: %s}\n",
                                    dd_env("DUET_ROOTFS"), cases[i].env);
        char *out;
        cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m), 1, "%s: %s", cases[i].env, out);
        cr_expect(strstr(out, cases[i].want), "%s: wanted \"%s\" in: %s", cases[i].env, cases[i].want, out);
        cr_expect(!strstr(out, PW) && !strstr(out, "key-Pw64"), "%s: the value is in the message: %s", cases[i].env,
                  out);
        free(out);
        /* The daemon refuses the same on its own (the command's check bypassed). */
        char *text = dd_slurp(m);
        json_t *req = json_pack("{s:[{s:s,s:s}]}", "files", "name", m, "content", text);
        free(text);
        char *body = json_dumps(req, JSON_COMPACT);
        struct client_buf b = {0};
        struct duet_err err = {0};
        int status = client_call_buf(d.sock, "POST", "/v1/apply", body, strlen(body), &b, 30000, &err);
        cr_expect_eq(status, 422, "%s: %d %s", cases[i].env, status, b.data);
        json_t *ans = b.data ? json_loads(b.data, 0, NULL) : NULL;
        char *diags = json_dumps(json_object_get(ans, "diagnostics"), JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
        json_t *first = json_array_get(json_object_get(ans, "diagnostics"), 0);
        cr_expect(first && strstr(json_string_value(first), cases[i].want), "%s: %s", cases[i].env, diags);
        free(diags);
        json_decref(ans);
        cr_expect(b.data && !strstr(b.data, PW), "%s: %s", cases[i].env, b.data);
        free(b.data);
        free(body);
        json_decref(req);
    }
    /* A disk image boots its own init: no process of duet's to give them to. */
    const char *m = dd_manifest(&d, "disk.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: bad}\nspec:\n"
                                "  image: {disk: %s/ok}\n  secrets: [api]\n",
                                d.dir);
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m), 1, "%s", out);
    cr_expect(strstr(out, "a disk image boots its own init"), "%s", out);
    free(out);

    /* duet secret set: hostile names, an open file, too much input. */
    static const char *const names[] = {"../x", "a/b", ".hidden", "-x", "x y", ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cr_expect_neq(dd_duet(&d, &out, "secret set '%s' < %s", names[i], p), 0, "%s", out);
        free(out);
    }
    struct client_buf b = {0};
    struct duet_err err = {0};
    int status = client_call_buf(d.sock, "PUT", "/v1/secrets/..", "v", 1, &b, 30000, &err);
    cr_expect_eq(status, 404, "%d %s", status, b.data);
    free(b.data);
    cr_expect_eq(dd_duet(&d, &out, "secret set api --from-file %s", open_file), 1, "%s", out);
    cr_expect(strstr(out, "readable by every user"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "secret set api < %s", big), 1, "%s", out);
    cr_expect(strstr(out, "at most 1 MiB") && !strstr(out, PW), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "secret rm nope"), 1, "%s", out);
    cr_expect(strstr(out, "no secret named \"nope\""), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "secret ls -o json"), 0, "%s", out);
    cr_expect(strstr(out, "\"secrets\": []"), "nothing was stored: %s", out);
    free(out);
    /* What is in the state directory is root's alone. */
    char sd[256];
    snprintf(sd, sizeof(sd), "%s/secrets", d.state);
    struct stat st;
    cr_assert_eq(stat(sd, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0700);
    snprintf(sd, sizeof(sd), "%s/secrets/key", d.state);
    cr_assert_eq(stat(sd, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600);
    cr_expect_eq(st.st_size, 32);
    free(huge);
    dd_finish(&d);
}
