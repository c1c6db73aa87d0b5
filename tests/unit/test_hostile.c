/*
 * Hostile manifests: each must end in a clear error, promptly, with memory
 * bounded, and never crash (the asan build runs these too).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "helpers.h"
#include "manifests/ytree.h"
#include "backends/kept.h"

static char *repeat(const char *unit, size_t times, const char *head, const char *tail)
{
    size_t ul = strlen(unit), hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + ul * times + tl + 1);
    memcpy(s, head, hl);
    for (size_t i = 0; i < times; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + ul * times, tail, tl + 1);
    return s;
}

Test(hostile, deep_flow_nesting, .timeout = 10)
{
    char *s = repeat("[", 20000, WL_OK "  env: ", "");
    struct manifest_set *set = load_yaml(s);
    cr_expect(has_diag(set, 9, 0, "nesting is deeper than 64 levels"));
    manifest_set_free(set);
    free(s);
}

Test(hostile, deep_mapping_nesting, .timeout = 10)
{
    char *s = repeat("{a: ", 20000, WL_OK "  env: ", "");
    struct manifest_set *set = load_yaml(s);
    cr_expect(has_diag(set, 9, 0, "nesting is deeper than 64 levels"));
    manifest_set_free(set);
    free(s);
}

Test(hostile, deep_block_nesting, .timeout = 10)
{
    /* 20,000 levels of "- " on one line each: block style, not flow. */
    size_t n = 20000;
    char *s = malloc(n * 4 + 64);
    strcpy(s, "x:\n");
    size_t o = strlen(s);
    for (size_t i = 0; i < n; i++) {
        s[o++] = '-';
        s[o++] = ' ';
    }
    strcpy(s + o, "leaf\n");
    struct manifest_set *set = load_yaml(s);
    cr_expect(has_diag(set, 2, 0, "nesting is deeper than 64 levels"));
    manifest_set_free(set);
    free(s);
}

Test(hostile, billion_laughs, .timeout = 10)
{
    /* Ten levels of ten aliases: 10^10 values if expanded. */
    char yaml[8192];
    size_t o = (size_t)snprintf(yaml, sizeof(yaml), "%s  ports: &l0 [{port: 1}]\n", WL_OK);
    for (int i = 1; i < 10; i++) {
        o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "  x%d: &l%d [", i, i);
        for (int j = 0; j < 10; j++)
            o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "%s*l%d", j ? ", " : "", i - 1);
        o += (size_t)snprintf(yaml + o, sizeof(yaml) - o, "]\n");
    }
    snprintf(yaml + o, sizeof(yaml) - o, "  volumes: *l9\n");
    struct manifest_set *set = load_yaml(yaml);
    cr_expect_not(manifest_set_ok(set));
    cr_expect(has_diag(set, 0, 0, "spec.volumes[0] must be a mapping"));
    cr_expect(has_diag(set, 0, 0, "unknown key \"x9\""));
    cr_expect_leq(set->diags.n, DIAG_MAX);
    manifest_set_free(set);
}

Test(hostile, alias_expansion_budget, .timeout = 10)
{
    /* A list of 1000 aliases to a list of 1000 strings: a million values the
     * schema would walk (command items must be strings: each is checked). */
    size_t n = 1000;
    char *inner = repeat("a, ", n, "[", "b]");
    char *outer = repeat("*s, ", n, "[", "*s]");
    size_t len = strlen(inner) + strlen(outer) + 512;
    char *yaml = malloc(len);
    snprintf(yaml, len, WL_HEAD "  image: {rootfs: /r}\n  command: [/x]\n  env: {A: &s %s}\n  needs: {devices: %s}\n",
             inner, outer);
    struct manifest_set *set = load_yaml(yaml);
    cr_expect_not(manifest_set_ok(set));
    cr_expect_leq(diag_count(&set->diags), 2000);
    manifest_set_free(set);
    free(inner);
    free(outer);
    free(yaml);
}

Test(hostile, huge_scalar, .timeout = 10)
{
    char *s = repeat("x", 4u << 20, WL_HEAD "  image: {rootfs: /r}\n  command: [\"", "\"]\n");
    struct manifest_set *set = load_yaml(s);
    cr_expect(has_diag(set, 7, 13, "values longer than 64 KiB are refused"));
    manifest_set_free(set);
    free(s);
}

Test(hostile, huge_file_refused_before_parsing, .timeout = 10)
{
    size_t n = YTREE_MAX_FILE + 1;
    char *s = malloc(n + 1);
    memset(s, '#', n);
    s[n] = '\0';
    struct manifest_set *set = load_yaml(s);
    cr_expect(has_diag(set, 0, 0, "larger than 16 MiB are refused"));
    manifest_set_free(set);
    free(s);
}

Test(hostile, invalid_utf8)
{
    struct manifest_set *set = load_yaml(WL_OK "  env: {A: \"caf\xe9\"}\n");
    cr_expect(has_diag(set, 9, 0, "not valid UTF-8"));
    manifest_set_free(set);
    /* A UTF-16 byte-order mark: manifests are UTF-8 only. */
    set = load_yaml("\xff\xfe" WL_OK);
    cr_expect(has_diag(set, 1, 1, "not valid UTF-8"));
    manifest_set_free(set);
}

Test(hostile, nul_bytes)
{
    /* A raw NUL in the file, and an escaped one in a quoted value. */
    char raw[] = WL_OK "  env: {A: b}\n";
    size_t len = sizeof(raw) - 1;
    raw[len - 3] = '\0';
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "t.yaml", raw, len);
    cr_expect_not(manifest_set_ok(set));
    manifest_set_free(set);
    set = load_yaml(WL_HEAD "  image: {rootfs: \"/r\\0/../../etc\"}\n  command: [/x]\n");
    cr_expect(has_diag(set, 6, 19, "contains a NUL byte"));
    manifest_set_free(set);
    set = load_yaml("apiVersion: duet/v1\nkind: Workload\nmetadata: {name: \"web\\0evil\"}\nspec: {image: {disk: /d}}\n");
    cr_expect(has_diag(set, 3, 18, "contains a NUL byte"));
    manifest_set_free(set);
}

Test(hostile, terminal_escapes_are_not_echoed)
{
    struct manifest_set *set = load_yaml(WL_OK "  role: \"\\e]0;owned\\a\\e[31mred\"\n");
    cr_assert_eq(set->diags.n, 1);
    const char *msg = set->diags.v[0].msg;
    cr_expect_null(strchr(msg, '\x1b'), "raw ESC in: %s", msg);
    cr_expect_null(strchr(msg, '\a'));
    cr_expect(strstr(msg, "\\x1b]0;owned\\x07"), "%s", msg);
    manifest_set_free(set);
}

Test(hostile, error_flood_is_capped, .timeout = 20)
{
    /* 5000 documents with an error each: the list keeps DIAG_MAX and counts the rest. */
    char *s = repeat("---\napiVersion: duet/v9\n", 5000, "", "");
    struct manifest_set *set = load_yaml(s);
    cr_expect_eq(set->diags.n, DIAG_MAX);
    cr_expect_eq(diag_count(&set->diags), 10000, "apiVersion and kind, each document");
    manifest_set_free(set);
    free(s);
}

Test(hostile, wide_mapping_duplicate_check_is_fast, .timeout = 10)
{
    /* 100,000 distinct keys plus one duplicate at the end. */
    size_t n = 100000, cap = n * 16 + 256;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "%s  env:\n", WL_OK);
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "    K%zu: v\n", i);
    snprintf(s + o, cap - o, "    K7: again\n");
    struct manifest_set *set = load_yaml(s);
    cr_expect(has_diag(set, (unsigned)(n + 10), 5, "duplicate key \"K7\""));
    manifest_set_free(set);
    free(s);
}

Test(hostile, numbers_that_overflow)
{
    static const char *const docs[] = {
        WL_OK "  resources: {pids: 184467440737095516160}\n",
        WL_OK "  resources: {memory: 99999999999999999999Gi}\n",
        WL_OK "  resources: {cpus: 1e309}\n",
        WL_OK "  resources: {cpus: 99999999999999999999999999999999999}\n",
        WL_OK "  needs: {startWithin: 99999999999999999999h}\n",
        WL_OK "  ports: [{port: -1}]\n",
        WL_OK "  ports: [{port: 0x50}]\n",
        NULL,
    };
    for (size_t i = 0; docs[i]; i++) {
        struct manifest_set *set = load_yaml(docs[i]);
        cr_expect_eq(diag_count(&set->diags), 1, "doc %zu", i);
        manifest_set_free(set);
    }
}

Test(hostile, random_mutations_of_a_real_manifest, .timeout = 60)
{
    /* Byte flips, truncations and splices of a full manifest: whatever comes
     * out, no crash, no leak (asan), and either valid or with errors. */
    const char *base = WL_HEAD "  role: infrastructure\n  image: &i {rootfs: /r, kernel: /k, cmdline: \"a b\"}\n"
                               "  command: [/bin/sh, -c, \"exec x\"]\n  env: {A: b, C: d}\n"
                               "  resources: {cpus: 0.5, memory: 256Mi}\n  dependsOn: [db]\n"
                               "  healthcheck: {tcp: 80, interval: 5s}\n  ports: [{host: 8080, port: 80}]\n"
                               "  volumes: [{source: ../d, target: /d, readOnly: true}]\n---\n"
                               "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: db}\nspec: {image: {disk: /d}}\n";
    size_t len = strlen(base);
    static const char alphabet[] = "-:[]{}&*!|>'\"#%@`,? \t\n\\x0aZ\xff\xc3";
    unsigned seed = 12345;
    char *buf = malloc(len * 2 + 1);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, base, len + 1);
        size_t n = len;
        int edits = 1 + (int)(rand_r(&seed) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)rand_r(&seed) % n;
            switch (rand_r(&seed) % 3) {
            case 0: buf[at] = alphabet[(size_t)rand_r(&seed) % (sizeof(alphabet) - 1)]; break;
            case 1: n = at; buf[n] = '\0'; break;
            default: {
                size_t from = (size_t)rand_r(&seed) % len, cnt = (size_t)rand_r(&seed) % 40;
                if (from + cnt > len)
                    cnt = len - from;
                if (at + cnt > len * 2)
                    cnt = 0;
                memmove(buf + at + cnt, buf + at, n - at + 1);
                memcpy(buf + at, base + from, cnt);
                n += cnt;
            }
            }
            if (n == 0)
                break;
        }
        struct manifest_set *set = manifest_set_new();
        manifest_set_load_buffer(set, "m.yaml", buf, n);
        manifest_set_validate(set);
        for (size_t i = 0; i < set->diags.n; i++)
            cr_assert(set->diags.v[i].msg[0] != '\0');
        manifest_set_free(set);
    }
    free(buf);
}

/* What a backend keeps is under KEPT/NAME: a name that is not a workload
 * name never becomes a path (a "..", a "/", a dot file, 300 bytes). */
Test(hostile, kept_paths_take_only_workload_names)
{
    static const char *const bad[] = {"", ".", "..", "../x", "a/b", "/etc", ".kept", "a\nb", "A", "-a", NULL};
    char out[4096];
    struct duet_err err = {0};
    for (size_t i = 0; bad[i]; i++)
        cr_expect_eq(kept_path("/var/lib/duet/vm/kept", bad[i], "disk.qcow2", out, sizeof(out), &err), -1,
                     "\"%s\" made %s", bad[i], out);
    char longname[301];
    memset(longname, 'a', 300);
    longname[300] = '\0';
    cr_expect_eq(kept_path("/k", longname, NULL, out, sizeof(out), &err), -1, "a 300-byte name was taken");
    cr_expect_eq(kept_path("/k", "db-1", "log", out, 8, &err), -1, "a cut path was taken");
    cr_assert_eq(kept_path("/k", "db-1", "log", out, sizeof(out), &err), 0, "%s", err.msg);
    cr_expect_str_eq(out, "/k/db-1/log");
}
