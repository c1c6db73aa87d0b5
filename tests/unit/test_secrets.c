/*
 * test_secrets.c - secrets in manifests (schema.c, specjson.c) and in
 * duetd's keeping (orchestrator/secret.c): the forms a manifest may use,
 * every refusal with its reason and never the value, a spec's text that
 * holds references only, and a store that keeps its files private, seals
 * what specs use, hands values back only to a run and follows no link.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "manifests/manifest.h"
#include "manifests/specjson.h"
#include "orchestrator/secret.h"

#define VALUE "val-Ce83Lq"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/duet-secrets-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    struct duet_err err = {0};
    duet_remove_tree(dir, &err);
}

static void put(const char *name, const char *data, size_t len, mode_t mode)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    cr_assert_eq(chmod(p, mode), 0);
}

static struct manifest_set *load_spec(const char *spec)
{
    char text[4096], name[128];
    snprintf(text, sizeof(text),
             "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: app}\nspec:\n"
             "  image: {rootfs: /srv/app}\n  command: [/bin/app]\n%s",
             spec);
    snprintf(name, sizeof(name), "%s/app.yaml", dir);
    struct manifest_set *s = manifest_set_new();
    manifest_set_load_buffer(s, name, text, strlen(text));
    return s;
}

static const char *first_diag(const struct manifest_set *s)
{
    return s->diags.n ? s->diags.v[0].msg : "";
}

TestSuite(secrets, .init = setup, .fini = teardown);

Test(secrets, every_form_loads_with_its_value_read_from_its_file)
{
    put("pw", VALUE "\n", strlen(VALUE) + 1, 0600);
    put("key", "K\0E\nY", 5, 0640);
    struct manifest_set *s = load_spec("  env:\n    A: plain\n    PW: {secretFile: ./pw}\n    API: {secret: api.v2}\n"
                                       "  secrets:\n    - db_pass\n    - {name: tls.key, file: ./key}\n");
    cr_assert(manifest_set_ok(s), "%s", first_diag(s));
    const struct workload_spec *w = s->workloads[0];
    cr_assert_eq(w->n_env, 1, "secret variables are not plain ones");
    cr_expect_str_eq(w->env[0].key, "A");
    cr_assert_eq(w->n_secrets, 4);
    const struct wl_secret *x = w->secrets;
    cr_expect_str_eq(x[0].env, "PW");
    cr_expect_null(x[0].name);
    cr_expect(x[0].file && strstr(x[0].file, "/pw"));
    cr_expect_eq(x[0].len, strlen(VALUE) + 1, "the file as it is; the newline goes only when it becomes a variable");
    cr_expect_str_eq(x[1].env, "API");
    cr_expect_str_eq(x[1].name, "api.v2");
    cr_expect_null(x[1].file);
    cr_expect_null(x[1].value);
    cr_expect_null(x[2].env);
    cr_expect_str_eq(x[2].name, "db_pass");
    cr_expect_str_eq(x[3].name, "tls.key");
    cr_expect_eq(x[3].len, 5);
    cr_expect_eq(memcmp(x[3].value, "K\0E\nY", 5), 0, "a file secret keeps every byte");
    for (size_t i = 0; i < 4; i++)
        cr_expect_null(x[i].version, "a user's manifest is never sealed");

    /* Its text holds references, never a value; sealed, it loads back
     * from the store without reading any file. */
    char *t = specjson_text(w);
    cr_expect(!strstr(t, VALUE), "%s", t);
    cr_expect(strstr(t, "\"PW\":{\"secretFile\":") && strstr(t, "\"API\":{\"secret\":\"api.v2\"}"), "%s", t);
    cr_expect(strstr(t, "\"secrets\":[{\"name\":\"db_pass\"},{\"name\":\"tls.key\",\"file\":"), "%s", t);
    free(t);
    static const char v[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    for (size_t i = 0; i < 4; i++)
        w->secrets[i].version = v;
    char *sealed = specjson_text(w);
    char pw[128];
    snprintf(pw, sizeof(pw), "%s/pw", dir);
    cr_assert_eq(unlink(pw), 0);
    struct manifest_set *back = manifest_set_new();
    specjson_load(back, "duetd-store", &sealed, 1);
    cr_assert(manifest_set_ok(back), "%s", first_diag(back));
    cr_assert_eq(back->workloads[0]->n_secrets, 4);
    for (size_t i = 0; i < 4; i++) {
        cr_expect_str_eq(back->workloads[0]->secrets[i].version, v);
        cr_expect_null(back->workloads[0]->secrets[i].value);
    }
    char *again = specjson_text(back->workloads[0]);
    cr_expect_str_eq(again, sealed, "the stored text round-trips");
    free(again);
    /* A user's file cannot claim a version. */
    struct manifest_set *claim = manifest_set_new();
    manifest_set_load_buffer(claim, "/srv/claim.yaml", sealed, strlen(sealed));
    cr_expect(!manifest_set_ok(claim));
    cr_expect(strstr(first_diag(claim), "unknown key \"version\""), "%s", first_diag(claim));
    manifest_set_free(claim);
    free(sealed);
    manifest_set_free(back);
    manifest_set_free(s);
}

Test(secrets, bad_references_are_refused_with_the_reason_and_never_the_value)
{
    put("open", VALUE, strlen(VALUE), 0604);
    put("nul", VALUE "\0x", strlen(VALUE) + 2, 0600);
    put("ok", VALUE, strlen(VALUE), 0600);
    char *big = malloc(WL_MAX_SECRET + 1);
    memset(big, 'b', WL_MAX_SECRET + 1);
    memcpy(big, VALUE, strlen(VALUE));
    put("big", big, WL_MAX_SECRET + 1, 0600);
    free(big);
    char link[128], target[128];
    snprintf(link, sizeof(link), "%s/link", dir);
    snprintf(target, sizeof(target), "%s/open", dir);
    cr_assert_eq(symlink(target, link), 0);
    static const struct {
        const char *spec, *want;
    } cases[] = {
        {"  env: {X: {secretFile: ./open}}\n", "is readable by every user (mode 0604); make it private: chmod o-r"},
        {"  env: {X: {secretFile: ./link}}\n", "is readable by every user"},   /* followed, then checked */
        {"  env: {X: {secretFile: ./nul}}\n", "holds a NUL byte, which no environment variable can"},
        {"  env: {X: {secretFile: ./big}}\n", "is 1048577 bytes; a secret is at most 1 MiB"},
        {"  env: {X: {secretFile: ./gone}}\n", "gone cannot be read: No such file or directory"},
        {"  env: {X: {secretFile: /dev/zero}}\n", "is not a regular file"},
        {"  env: {X: {secretFile: \"./a\\nb\"}}\n", "contains control characters"},
        {"  env: {X: {secret: ../../etc/shadow}}\n", "is not a secret's name"},
        {"  env: {X: {secret: .hidden}}\n", "is not a secret's name"},
        {"  env: {X: {secret: [a]}}\n", "must be a secret's name, not a list"},
        {"  env: {X: {}}\n", "give {secret: NAME}"},
        {"  env: {X: {secret: a, secretFile: ./ok}}\n", "one of them"},
        {"  env: {X: {secret: a, value: b}}\n", "unknown key \"value\""},
        {"  env: {X: {secret: a, version: 0123}}\n", "unknown key \"version\""},
        {"  secrets: [a, a]\n", "/run/secrets/a is given twice"},
        {"  secrets: [{file: ./ok}]\n", "spec.secrets[0].name is required"},
        {"  secrets: [{name: a/b}]\n", "is not a secret's name"},
        {"  secrets: [{name: a, file: ./open}]\n", "readable by every user"},
        {"  secrets: {a: b}\n", "spec.secrets must be a list"},
        {"  secrets: [{name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}]\n", "is not a secret's name"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct manifest_set *s = load_spec(cases[i].spec);
        cr_expect(!manifest_set_ok(s), "%s was taken", cases[i].spec);
        cr_expect(strstr(first_diag(s), cases[i].want), "%s: wanted \"%s\", got \"%s\"", cases[i].spec,
                  cases[i].want, first_diag(s));
        for (size_t k = 0; k < s->diags.n; k++)
            cr_expect(!strstr(s->diags.v[k].msg, VALUE), "%s: the value is in \"%s\"", cases[i].spec,
                      s->diags.v[k].msg);
        manifest_set_free(s);
    }
    /* More than a workload may have. */
    char many[8192] = "  secrets:\n";
    for (int i = 0; i <= WL_MAX_SECRETS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "    - s%d\n", i);
    struct manifest_set *s = load_spec(many);
    cr_expect(strstr(first_diag(s), "give a workload at most 64"), "%s", first_diag(s));
    manifest_set_free(s);
    /* Only a process duet starts can be given them. */
    const char text[] = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: vm}\nspec:\n"
                        "  image: {disk: /srv/vm.qcow2}\n  secrets: [a]\n";
    s = manifest_set_new();
    manifest_set_load_buffer(s, "/srv/vm.yaml", text, strlen(text));
    cr_expect(strstr(first_diag(s), "a disk image boots its own init"), "%s", first_diag(s));
    manifest_set_free(s);
}

static struct secret_store *store_open(void)
{
    struct duet_err err = {0};
    struct secret_store *st = secret_store_new(dir, &err);
    cr_assert_not_null(st, "%s", err.msg);
    return st;
}

static int count_sealed(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/secrets/sealed", dir);
    DIR *d = opendir(p);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(secrets, the_store_seals_what_specs_use_and_fills_runs_from_the_seals)
{
    struct secret_store *st = store_open();
    char p[128];
    struct stat sb;
    static const char *const private_[] = {"secrets", "secrets/named", "secrets/sealed", "secrets/key"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, private_[i]);
        cr_assert_eq(stat(p, &sb), 0, "%s", p);
        cr_expect_eq(sb.st_mode & 0077, 0, "%s is open to others: %o", p, sb.st_mode & 0777);
    }
    struct duet_err err = {0};
    bool changed;
    cr_assert_eq(secret_store_set(st, "api", VALUE "\n", strlen(VALUE) + 1, &changed, &err), 0, "%s", err.msg);
    cr_expect(changed);
    cr_assert_eq(secret_store_set(st, "api", VALUE "\n", strlen(VALUE) + 1, &changed, &err), 0);
    cr_expect(!changed, "the same value is no change");
    snprintf(p, sizeof(p), "%s/secrets/named/api", dir);
    cr_assert_eq(stat(p, &sb), 0);
    cr_expect_eq(sb.st_mode & 0777, 0600);

    put("key", "K\0Y", 3, 0600);
    /* A dry run works the versions out and writes nothing. */
    struct manifest_set *dry = load_spec("  env: {API: {secret: api}}\n");
    secret_store_seal(st, dry, NULL, false);
    cr_assert(manifest_set_ok(dry), "%s", first_diag(dry));
    cr_expect_not_null(dry->workloads[0]->secrets[0].version);
    cr_expect_eq(count_sealed(), 0);
    manifest_set_free(dry);
    struct manifest_set *s = load_spec("  env: {API: {secret: api}, MISSING: {secret: nope}}\n"
                                       "  secrets: [api, {name: k, file: ./key}]\n");
    cr_assert(manifest_set_ok(s), "%s", first_diag(s));
    secret_store_seal(st, s, NULL, true);
    cr_assert_eq(s->diags.n, 1, "one secret is not set");
    cr_expect(strstr(first_diag(s), "secret nope is not set; set it first: duet secret set nope"), "%s",
              first_diag(s));
    struct workload_spec *w = s->workloads[0];
    cr_assert_str_eq(w->secrets[1].env, "MISSING");
    cr_expect_null(w->secrets[1].version);
    cr_assert_not_null(w->secrets[0].version);
    cr_expect_str_eq(w->secrets[0].version, w->secrets[2].version, "one value, one seal");
    cr_assert_not_null(w->secrets[3].version);
    cr_expect_eq(count_sealed(), 2);
    /* Keyed: the version is no plain digest of the value; stable across opens. */
    char *t = specjson_text(w);
    cr_expect(!strstr(t, VALUE), "%s", t);
    free(t);
    char v0[WL_SECRET_VERSION_HEX + 1];
    snprintf(v0, sizeof(v0), "%s", w->secrets[0].version);
    secret_store_free(st);
    st = store_open();

    /* A run gets the values: a variable loses its newline, a file keeps every byte. */
    struct manifest_set *s2 = load_spec("  env: {API: {secret: api}}\n  secrets: [{name: k, file: ./key}]\n");
    secret_store_seal(st, s2, NULL, true);
    cr_assert(manifest_set_ok(s2), "%s", first_diag(s2));
    cr_expect_str_eq(s2->workloads[0]->secrets[0].version, v0, "the key was kept");
    char *sealed = specjson_text(s2->workloads[0]);
    struct manifest_set *stored = manifest_set_new();
    specjson_load(stored, "duetd-store", &sealed, 1);
    cr_assert(manifest_set_ok(stored), "%s", first_diag(stored));
    struct workload_spec *r = arena_alloc(&stored->arena, sizeof(*r));
    *r = *stored->workloads[0];
    cr_assert_eq(secret_store_fill(st, &stored->arena, r, &err), 0, "%s", err.msg);
    cr_assert_eq(r->n_env, 1);
    cr_expect_str_eq(r->env[0].key, "API");
    cr_expect_str_eq(r->env[0].value, VALUE);
    cr_expect_eq(r->secrets[1].len, 3);
    cr_expect_eq(memcmp(r->secrets[1].value, "K\0Y", 3), 0);
    cr_expect_null(stored->workloads[0]->secrets[0].value, "only the run spec holds values");

    /* Seals no spec names go; the store's own spec then cannot run. */
    struct strmap keep;
    strmap_init(&keep);
    strmap_put(&keep, v0, r);
    secret_store_gc(st, &keep);
    strmap_free(&keep);
    cr_expect_eq(count_sealed(), 1);
    r = arena_alloc(&stored->arena, sizeof(*r));
    *r = *stored->workloads[0];
    cr_expect_eq(secret_store_fill(st, &stored->arena, r, &err), -1);
    cr_expect(strstr(err.msg, "the value of secret k is gone") && strstr(err.msg, "apply its manifest again"), "%s",
              err.msg);
    free(sealed);
    manifest_set_free(stored);
    manifest_set_free(s2);
    manifest_set_free(s);
    secret_store_free(st);
}

Test(secrets, the_store_follows_no_link_and_takes_no_path_for_a_name)
{
    struct secret_store *st = store_open();
    struct duet_err err = {0};
    bool changed;
    static const char *const names[] = {"../x", "a/b", ".", "..", ".key", "", "x\n"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cr_expect_eq(secret_store_set(st, names[i], "v", 1, &changed, &err), -1, "%s", names[i]);
        cr_expect_eq(secret_store_remove(st, names[i], &err), -1, "%s", names[i]);
        cr_expect(!secret_store_has(st, names[i]));
    }
    char p[128];
    snprintf(p, sizeof(p), "%s/x", dir);
    cr_expect(access(p, F_OK) < 0, "a name made a file outside the store");
    cr_expect_eq(secret_store_remove(st, "nope", &err), -1);
    cr_expect(strstr(err.msg, "no secret named \"nope\""), "%s", err.msg);
    char *big = calloc(1, WL_MAX_SECRET + 1);
    cr_expect_eq(secret_store_set(st, "big", big, WL_MAX_SECRET + 1, &changed, &err), -1);
    cr_expect(strstr(err.msg, "at most 1 MiB"), "%s", err.msg);
    free(big);

    /* A stored secret replaced by a link to a host file is not read. */
    put("host-file", VALUE, strlen(VALUE), 0600);
    char target[128];
    snprintf(target, sizeof(target), "%s/host-file", dir);
    snprintf(p, sizeof(p), "%s/secrets/named/linked", dir);
    cr_assert_eq(symlink(target, p), 0);
    struct manifest_set *s = load_spec("  secrets: [linked]\n");
    secret_store_seal(st, s, NULL, true);
    cr_expect(!manifest_set_ok(s));
    cr_expect(strstr(first_diag(s), "secret linked cannot be read"), "%s", first_diag(s));
    cr_expect(!strstr(first_diag(s), VALUE));
    manifest_set_free(s);
    struct secret_info *list;
    size_t n;
    cr_assert_eq(secret_store_list(st, &list, &n, &err), 0);
    cr_expect_eq(n, 0, "a link is not a secret");
    free(list);
    secret_store_free(st);

    /* A damaged key stops the store from opening, with the fix. */
    snprintf(p, sizeof(p), "%s/secrets/key", dir);
    int fd = open(p, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "short", 5), 5);
    close(fd);
    cr_expect_null(secret_store_new(dir, &err));
    cr_expect(strstr(err.msg, "is not the 32-byte key duetd made") && strstr(err.msg, "restore it from a backup"),
              "%s", err.msg);
}
