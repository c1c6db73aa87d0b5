/*
 * test_specjson.c - canonical spec text: what duetd stores and compares.
 * Every example workload and a spec using every field survive the round
 * trip (text -> spec -> text) unchanged, and a changed field changes it.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "manifests/manifest.h"
#include "manifests/specjson.h"

static struct manifest_set *load(const char *name, const char *text)
{
    struct manifest_set *s = manifest_set_new();
    manifest_set_load_buffer(s, name, text, strlen(text));
    return s;
}

static void round_trip(const struct workload_spec *w)
{
    char *a = specjson_text(w);
    struct manifest_set *s = load("stored", a);
    cr_assert(manifest_set_ok(s), "%s does not load back: %s", w->name, s->diags.n ? s->diags.v[0].msg : "");
    cr_assert_eq(s->n_workloads, 1);
    char *b = specjson_text(s->workloads[0]);
    cr_expect_str_eq(b, a, "%s changes in the round trip", w->name);
    free(a);
    free(b);
    manifest_set_free(s);
}

Test(specjson, examples_round_trip)
{
    struct manifest_set *s = manifest_set_new();
    char path[1024];
    snprintf(path, sizeof(path), "%s/manifests/examples", getenv("DUET_SRC") ? getenv("DUET_SRC") : ".");
    cr_assert(manifest_set_load_path(s, path));
    manifest_set_validate(s);
    cr_assert(manifest_set_ok(s));
    cr_assert_eq(s->n_workloads, 7);
    for (size_t i = 0; i < s->n_workloads; i++)
        round_trip(s->workloads[i]);
    manifest_set_free(s);
}

static const char every_field[] =
    "apiVersion: duet/v1\nkind: Workload\nmetadata:\n  name: full\n  labels: {a: \"x: y\", b: \"\\\"quoted\\\"\"}\n"
    "spec:\n  role: infrastructure\n  placement: vm\n  isolation: strong\n"
    "  image: {rootfs: /srv/r, kernel: /boot/k, initrd: /boot/i, cmdline: \"console=ttyS0 a=\\\"b\\\"\"}\n"
    "  command: [\"/bin/sh\", \"-c\", \"echo \\\"$X\\\" \\\\n\"]\n  env: {X: \"line1\\nline2\", EMPTY: \"\"}\n"
    "  workingDir: /tmp\n  user: \"1000:1000\"\n  resources: {cpus: 0.1, memory: 300Mi, pids: 77, disk: 3Gi}\n"
    "  needs: {ownKernel: true, devices: [/dev/ttyUSB0], startWithin: 1500ms}\n  restart: on-failure\n"
    "  healthcheck: {exec: [/bin/true, x], interval: 2s, timeout: 1s, retries: 7, startPeriod: 0s, startInterval: 250ms}\n"
    "  ports: [{host: 8080, port: 80}, {port: 53, protocol: udp}]\n"
    "  volumes: [{source: /srv/a, target: /a, readOnly: true}, {source: /srv/b, target: /b},\n"
    "            {name: pgdata, size: 1Gi, target: /pg}, {name: cache, target: /c, readOnly: true}]\n";

/* A cloud image's: user data and network config with every character
 * JSON and YAML care about, kept byte for byte. */
static const char cloud_fields[] =
    "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: cloud}\nspec:\n  image: {disk: /srv/d.qcow2}\n"
    "  cloudInit:\n    userData: |\n      #cloud-config\n      runcmd: [\"echo \\\"a: b\\\" \\\\ \\t\"]\n"
    "      # \xc3\xa9t\xc3\xa9\n    networkConfig: \"version: 2\\nethernets: {}\\n\"\n";

/* spec.compare in each of its forms, defaults left out */
Test(specjson, compare_probes_round_trip)
{
    static const char *const forms[] = {
        "  compare: {http: {path: \"/health?x=1&y=%2F\", port: 8080, concurrency: 16, duration: 30s}}\n",
        "  compare: {http: {path: /}}\n", "  compare: {tcp: 5432}\n",
        "  compare: {exec: [psql, -c, \"select 1\"]}\n"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: c}\nspec:\n  image: {rootfs: /r}\n  command: [/x]\n%s",
                 forms[i]);
        struct manifest_set *s = load("c.yaml", yaml);
        cr_assert(manifest_set_ok(s), "%zu: %s", i, s->diags.n ? s->diags.v[0].msg : "");
        cr_expect_neq(s->workloads[0]->compare.probe, WL_COMPARE_NONE, "%zu", i);
        round_trip(s->workloads[0]);
        manifest_set_free(s);
    }
}

Test(specjson, cloud_init_round_trips)
{
    struct manifest_set *s = load("cloud.yaml", cloud_fields);
    cr_assert(manifest_set_ok(s), "%s", s->diags.n ? s->diags.v[0].msg : "");
    round_trip(s->workloads[0]);
    cr_expect_str_eq(s->workloads[0]->cloud_init.network_config, "version: 2\nethernets: {}\n");
    cr_expect(strstr(s->workloads[0]->cloud_init.user_data, "\\\"a: b\\\""), "%s",
              s->workloads[0]->cloud_init.user_data);
    manifest_set_free(s);
}

Test(specjson, every_field_round_trips)
{
    struct manifest_set *s = load("full.yaml", every_field);
    cr_assert(manifest_set_ok(s), "%s", s->diags.n ? s->diags.v[0].msg : "");
    round_trip(s->workloads[0]);
    char *t = specjson_text(s->workloads[0]);
    cr_expect(strstr(t, "\"memory\":314572800"), "%s", t);
    cr_expect(strstr(t, "\"disk\":3221225472"), "%s", t);
    cr_expect(strstr(t, "\"startWithin\":\"1500ms\""), "%s", t);
    cr_expect(strstr(t, "\"pids\":77"), "%s", t);
    cr_expect(strstr(t, "\"startPeriod\":\"0ms\""), "a start period of 0 is kept: %s", t);
    cr_expect(strstr(t, "\"startInterval\":\"250ms\""), "%s", t);
    cr_expect(strstr(t, "{\"name\":\"pgdata\",\"size\":1073741824,\"target\":\"/pg\""), "%s", t);
    free(t);
    manifest_set_free(s);
}

Test(specjson, a_changed_field_changes_the_text_and_defaults_do_not)
{
    const char *base = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\nspec:\n"
                       "  image: {rootfs: /r}\n  command: [/bin/true]\n";
    const char *same = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\nspec:\n  role: app\n"
                       "  placement: auto\n  restart: always\n  image: {rootfs: /r}\n  command: [\"/bin/true\"]\n";
    const char *other = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\nspec:\n"
                        "  image: {rootfs: /r}\n  command: [/bin/false]\n";
    struct manifest_set *x = load("x", base), *y = load("y", same), *z = load("z", other);
    cr_assert(manifest_set_ok(x) && manifest_set_ok(y) && manifest_set_ok(z));
    char *tx = specjson_text(x->workloads[0]), *ty = specjson_text(y->workloads[0]), *tz = specjson_text(z->workloads[0]);
    cr_expect_str_eq(tx, ty, "the defaults written out count as a change");
    cr_expect_str_neq(tx, tz);
    free(tx);
    free(ty);
    free(tz);
    manifest_set_free(x);
    manifest_set_free(y);
    manifest_set_free(z);
}

Test(specjson, network_none_is_kept_and_fleet_is_the_default)
{
    const char *none = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\nspec:\n"
                       "  image: {rootfs: /r}\n  command: [/bin/true]\n  network: none\n";
    const char *fleet = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\nspec:\n"
                        "  image: {rootfs: /r}\n  command: [/bin/true]\n  network: fleet\n";
    const char *plain = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\nspec:\n"
                        "  image: {rootfs: /r}\n  command: [/bin/true]\n";
    struct manifest_set *x = load("x", none), *y = load("y", fleet), *z = load("z", plain);
    cr_assert(manifest_set_ok(x) && manifest_set_ok(y) && manifest_set_ok(z));
    cr_expect_eq(x->workloads[0]->network, WL_NETWORK_NONE);
    round_trip(x->workloads[0]);
    char *tx = specjson_text(x->workloads[0]), *ty = specjson_text(y->workloads[0]), *tz = specjson_text(z->workloads[0]);
    cr_expect(strstr(tx, "\"network\":\"none\""), "%s", tx);
    cr_expect_str_eq(ty, tz, "network: fleet written out counts as a change");
    free(tx);
    free(ty);
    free(tz);
    manifest_set_free(x);
    manifest_set_free(y);
    manifest_set_free(z);
}
