/*
 * Every schema rule of docs/manifest.md: a table of documents, each with
 * the error it must produce and the line and column it must point at.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <unistd.h>

#include "helpers.h"

struct rule_case {
    const char *yaml;
    unsigned line, col;
    const char *text;
};

#define H WL_HEAD
#define I WL_IMAGE

static const struct rule_case rule_cases[] = {
    /* document shape */
    {"- a\n- b\n", 1, 1, "must be a mapping with apiVersion"},
    {"kind: Workload\nmetadata: {name: a}\nspec: {image: {disk: /d}}\n", 1, 1, "apiVersion is required"},
    {"apiVersion: duet/v2\nkind: Workload\nmetadata: {name: a}\nspec: {image: {disk: /d}}\n", 1, 13,
     "apiVersion \"duet/v2\" is not supported; use duet/v1"},
    {"apiVersion: duet/v1\nkind: Workloda\nmetadata: {name: a}\n", 2, 7, "did you mean \"Workload\""},
    {"apiVersion: duet/v1\nmetadata: {name: a}\n", 1, 1, "kind is required"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\nspec: {image: {disk: /d}}\nspecs: {}\n", 5, 1,
     "unknown key \"specs\" in a Workload document (did you mean \"spec\"?)"},
    {"apiVersion: duet/v1\nkind: Workload\nspec: {image: {disk: /d}}\n", 1, 1, "metadata is required"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\n", 1, 1, "spec is required"},
    /* metadata */
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {labels: {a: b}}\nspec: {image: {disk: /d}}\n", 3, 11,
     "metadata.name is required"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: Web_1}\nspec: {image: {disk: /d}}\n", 3, 18,
     "not a valid name"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: web-}\nspec: {image: {disk: /d}}\n", 3, 18,
     "not a valid name"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: -web}\nspec: {image: {disk: /d}}\n", 3, 18,
     "not a valid name"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata:\n  name: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nspec: {image: {disk: /d}}\n",
     4, 9, "1 to 63"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: \"\"}\nspec: {image: {disk: /d}}\n", 3, 18,
     "not a valid name"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a, labels: [x]}\nspec: {image: {disk: /d}}\n", 3, 29,
     "metadata.labels must be a mapping"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a, labels: {\"-x\": y}}\nspec: {image: {disk: /d}}\n",
     3, 30, "key \"-x\" is not allowed"},
    {"apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a, nmae: b}\nspec: {image: {disk: /d}}\n", 3, 21,
     "did you mean \"name\""},
    /* enums */
    {H "  role: infra\n" I, 6, 9, "did you mean \"infrastructure\"?"},
    {H "  role: database\n" I, 6, 9, "use one of: app, infrastructure"},
    {H "  placement: VM\n" I, 6, 14, "did you mean \"vm\""},
    {H "  isolation: strng\n" I, 6, 14, "did you mean \"strong\""},
    {H "  restart: sometimes\n" I, 6, 12, "use one of: always, on-failure, never"},
    {H "  role: [app]\n" I, 6, 9, "spec.role must be one of the listed words, not a list"},
    /* image */
    {H "  command: [\"/x\"]\n", 5, 1, "spec.image is required"},
    {H "  image: {}\n", 6, 10, "needs at least one of rootfs, oci, disk or kernel"},
    {H "  image: /srv/rootfs\n", 6, 10, "spec.image must be a mapping"},
    {H "  image: {disk: /d, initrd: /i}\n", 6, 21, "initrd needs spec.image.kernel"},
    {H "  image: {disk: /d, cmdline: quiet}\n", 6, 21, "cmdline needs spec.image.kernel"},
    {H "  image: {disk: /d, keepDisk: yes}\n", 6, 31, "spec.image.keepDisk must be true or false"},
    {H "  image: {kernel: /k, initrd: /i, keepDisk: true}\n", 6, 35,
     "keepDisk keeps a VM's disk, and a VM booted from image.kernel and image.initrd has none"},
    {H "  image: {rootfs: /r, root: /x}\n  command: [/bin/true]\n", 6, 23, "did you mean \"rootfs\""},
    {H "  image: {rootfs: \"/r\\nx\"}\n  command: [/bin/true]\n", 6, 19, "control characters"},
    {H "  image: {kernel: /k, cmdline: \"quiet\\x1b[2J\"}\n", 6, 32, "control characters"},
    /* command */
    {H "  image: {rootfs: /r}\n", 6, 3, "spec.command is required with image.rootfs"},
    {H "  image: {disk: /d}\n  command: [/bin/sh]\n", 7, 3, "this image has neither"},
    {H "  image: {rootfs: /r}\n  command: []\n", 7, 12, "spec.command must not be empty"},
    {H "  image: {rootfs: /r}\n  command: /bin/sh -c x\n", 7, 12, "spec.command must be a list"},
    {H "  image: {rootfs: /r}\n  command: [/bin/sh, {a: b}]\n", 7, 22, "spec.command[1] must be a string"},
    {H "  image: {rootfs: /r}\n  command: [/bin/sh, ~]\n", 7, 22, "spec.command[1] must be a string, not nothing"},
    /* env, workingDir, user */
    {H I "  env: {1BAD: x}\n", 9, 9, "key \"1BAD\" is not allowed"},
    {H I "  env: {\"A=B\": x}\n", 9, 9, "key \"A=B\" is not allowed"},
    {H I "  env: {A: [1]}\n", 9, 12, "spec.env.A must be a string"},
    {H I "  env: [A=1]\n", 9, 8, "spec.env must be a mapping"},
    {H I "  workingDir: tmp\n", 9, 15, "must be an absolute path"},
    {H I "  workingDir: /srv/../etc\n", 9, 15, "must not contain \"..\""},
    {H I "  user: \"root:\"\n", 9, 9, "is not a user"},
    {H I "  user: Bob\n", 9, 9, "is not a user"},
    {H I "  user: \"99999999999\"\n", 9, 9, "is not a user"},
    {H I "  user: \"1000:1000:1\"\n", 9, 9, "is not a user"},
    /* resources */
    {H I "  resources: {cpus: 0}\n", 9, 21, "must be greater than 0"},
    {H I "  resources: {cpus: -1}\n", 9, 21, "must be a number such as 2 or 0.5"},
    {H I "  resources: {cpus: 1e3}\n", 9, 21, "must be a number such as 2 or 0.5"},
    {H I "  resources: {cpus: nan}\n", 9, 21, "must be a number such as 2 or 0.5"},
    {H I "  resources: {cpus: 2000}\n", 9, 21, "at most 1024"},
    {H I "  resources: {memory: 12Qi}\n", 9, 23, "\"12Qi\" is not a size"},
    {H I "  resources: {memory: 512M}\n", 9, 23, "not 512M or 512MB"},
    {H I "  resources: {memory: 1Ki}\n", 9, 23, "too small: give at least 4Mi"},
    {H I "  resources: {memory: 2Pi}\n", 9, 23, "is not a size"},
    {H I "  resources: {disk: 1Mi}\n", 9, 21, "spec.resources.disk \"1Mi\" is too small: give at least 16Mi"},
    {H I "  resources: {disk: 20G}\n", 9, 21, "not 512M or 512MB"},
    {H I "  resources: {disk: [1]}\n", 9, 21, "a size such as 256Mi"},
    {H I "  resources: {pids: 0}\n", 9, 21, "between 1 and 4194304"},
    {H I "  resources: {pids: 99999999999999999999999}\n", 9, 21, "between 1 and 4194304"},
    {H I "  resources: {pids: 1.5}\n", 9, 21, "must be a whole number"},
    {H I "  resources: {memroy: 1Gi}\n", 9, 15, "did you mean \"memory\""},
    /* needs */
    {H I "  needs: {ownKernel: yes}\n", 9, 22, "must be true or false, not \"yes\""},
    {H I "  needs: {devices: [/etc/passwd]}\n", 9, 21, "is not a device"},
    {H I "  needs: {devices: [/dev/../etc/shadow]}\n", 9, 21, "is not a device"},
    {H I "  needs: {devices: [\"00:1f.9\"]}\n", 9, 21, "is not a device"},
    {H I "  needs: {startWithin: 5}\n", 9, 24, "needs a unit"},
    {H I "  needs: {startWithin: 0s}\n", 9, 24, "must be longer than 0"},
    {H I "  needs: {startWithin: 8d}\n", 9, 24, "is not a duration"},
    /* dependsOn */
    {H I "  dependsOn: [dbx]\n---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: db}\nspec: {image: {disk: /d}}\n",
     9, 15, "no workload named \"dbx\" (did you mean \"db\"?)"},
    {H I "  dependsOn: [web]\n", 9, 15, "cannot depend on itself"},
    {H I "  dependsOn: [a, a]\n", 9, 18, "names \"a\" twice"},
    {H I "  dependsOn: [Not_A_Name]\n", 9, 15, "not a valid name"},
    {H I "  dependsOn: db\n", 9, 14, "spec.dependsOn must be a list"},
    /* compare */
    {H I "  compare: {tcp: 80, exec: [/bin/true]}\n", 9, 12, "spec.compare takes one probe: http, tcp or exec"},
    {H I "  compare: {}\n", 9, 12, "spec.compare takes one probe"},
    {H I "  compare: {http: {port: 80}}\n", 9, 19, "spec.compare.http needs a path (like /)"},
    {H I "  compare: {http: {path: index.html}}\n", 9, 26, "must begin with / and hold no space or line break"},
    {H I "  compare: {http: {path: \"/a b\"}}\n", 9, 26, "must begin with / and hold no space or line break"},
    {H I "  compare: {http: {path: \"/\\r\\nHost: evil\"}}\n", 9, 26, "hold no space or line break"},
    {H I "  compare: {http: {path: /, concurrency: 65}}\n", 9, 42, "between 1 and 64"},
    {H I "  compare: {http: {path: /, duration: 20m}}\n", 9, 39, "from 100ms to 10m"},
    {H I "  compare: {http: {path: /, verb: POST}}\n", 9, 29, "spec.compare.http"},
    {H I "  compare: {tcp: 0}\n", 9, 18, "between 1 and 65535"},
    {H I "  compare: {exec: []}\n", 9, 19, "must not be empty"},
    {H I "  compare: {udp: 53}\n", 9, 12, "spec.compare"},
    /* healthcheck */
    {H I "  healthcheck: {exec: [/bin/true], tcp: 80}\n", 9, 36, "one of exec or tcp, not both"},
    {H I "  healthcheck: {interval: 5s}\n", 9, 16, "needs exec (a command) or tcp (a port)"},
    {H I "  healthcheck: {tcp: 70000}\n", 9, 22, "between 1 and 65535"},
    {H I "  healthcheck: {tcp: 80, interval: fast}\n", 9, 36, "\"fast\" is not a duration"},
    {H I "  healthcheck: {tcp: 80, retries: 0}\n", 9, 35, "between 1 and 1000"},
    {H I "  healthcheck: {exec: []}\n", 9, 23, "must not be empty"},
    {H I "  healthcheck: {tcp: 80, startPeriod: -5s}\n", 9, 39, "is not a duration"},
    {H I "  healthcheck: {tcp: 80, startPeriod: 30h}\n", 9, 39, "longer than a day"},
    {H I "  healthcheck: {tcp: 80, startInterval: 0s}\n", 9, 41, "must be longer than 0"},
    {H I "  healthcheck: {tcp: 80, startperiod: 5s}\n", 9, 26, "did you mean \"startPeriod\"?"},
    /* ports */
    {H I "  ports: [{port: 0}]\n", 9, 18, "between 1 and 65535"},
    {H I "  ports: [{port: 80, host: 70000}]\n", 9, 28, "between 1 and 65535"},
    {H I "  ports: [{port: 80, protocol: sctp}]\n", 9, 32, "use one of: tcp, udp"},
    {H I "  ports: [{host: 80}]\n", 9, 11, "needs port"},
    {H I "  ports: [{port: 80}, {port: 80}]\n", 9, 23, "publishes host port 80/tcp a second time"},
    {H I "  ports: [{port: 80, hots: 1}]\n", 9, 22, "did you mean \"host\""},
    {H I "  ports: [80]\n", 9, 11, "spec.ports[0] must be a mapping"},
    /* network */
    {H I "  network: host\n", 9, 12, "use one of: fleet, none"},
    {H I "  network: none\n  ports: [{port: 80}]\n", 10, 3, "network: none, which has only a loopback"},
    {H I "  network: [fleet]\n", 9, 12, "spec.network"},
    /* volumes */
    {H I "  volumes: [{source: /a, target: data}]\n", 9, 34, "must be an absolute path"},
    {H I "  volumes: [{source: /a, target: /}]\n", 9, 34, "cannot be / itself"},
    {H I "  volumes: [{source: /a, target: /data/../../etc}]\n", 9, 34, "must not contain \"..\""},
    {H I "  volumes: [{target: /data}]\n", 9, 13, "needs source"},
    {H I "  volumes: [{source: /a}]\n", 9, 13, "needs target"},
    {H I "  volumes: [{source: /a, target: /d}, {source: /b, target: /d/}]\n", 9, 60, "second volume on /d"},
    {H I "  volumes: [{source: /a, target: /d, readOnly: no}]\n", 9, 48, "must be true or false"},
    /* named volumes: a name is one path component of duet's choosing */
    {H I "  volumes: [{name: a/b, target: /d}]\n", 9, 20, "\"a/b\" is not a valid volume name"},
    {H I "  volumes: [{name: .., target: /d}]\n", 9, 20, "\"..\" is not a valid volume name"},
    {H I "  volumes: [{name: ../../etc, target: /d}]\n", 9, 20, "is not a valid volume name"},
    {H I "  volumes: [{name: PgData, target: /d}]\n", 9, 20, "is not a valid volume name"},
    {H I "  volumes: [{name: \"\", target: /d}]\n", 9, 20, "is not a valid volume name"},
    {H I "  volumes: [{name: "
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, target: /d}]\n",
     9, 20, "is not a valid volume name: use 1 to 63"},
    {H I "  volumes: [{name: pg, size: 0, target: /d}]\n", 9, 30, "size"},
    {H I "  volumes: [{name: pg, size: 1Mi, target: /d}]\n", 9, 30, "too small for a volume: give at least 16Mi"},
    {H I "  volumes: [{name: pg, size: lots, target: /d}]\n", 9, 30, "is not a size"},
    {H I "  volumes: [{source: /a, size: 1Gi, target: /d}]\n", 9, 32, "bounds a named volume"},
    {H I "  volumes: [{source: /a, name: pg, target: /d}]\n", 9, 32, "gives both source and name"},
    {H I "  volumes: [{name: [pg], target: /d}]\n", 9, 20, "volume name"},
    /* YAML-level */
    {H I "  role: app\n  role: app\n", 10, 3, "duplicate key \"role\""},
    {H I "  <<: {role: app}\n", 9, 3, "merge keys (<<) are not supported"},
    {H I "  role: *nothing\n", 9, 9, "alias *nothing names no anchor"},
    {H I "  role: [\n", 10, 1, "YAML syntax"},
    {H I "\trole: app\n", 9, 1, "tab character in indentation"},
    {H I "  {a: b}: c\n", 9, 3, "mapping keys must be plain strings"},
};

Test(schema, every_rule_has_its_error_and_place)
{
    for (size_t i = 0; i < sizeof(rule_cases) / sizeof(rule_cases[0]); i++) {
        const struct rule_case *c = &rule_cases[i];
        struct manifest_set *set = load_yaml(c->yaml);
        char buf[4096];
        cr_expect(has_diag(set, c->line, c->col, c->text), "case %zu: want %u:%u \"%s\", got: %s", i, c->line,
                  c->col, c->text, diags_text(set, buf, sizeof(buf)));
        manifest_set_free(set);
    }
}

Test(schema, valid_document_has_no_errors)
{
    struct manifest_set *set = load_yaml(WL_OK);
    char buf[2048];
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    cr_assert_eq(set->n_workloads, 1);
    const struct workload_spec *w = set->workloads[0];
    cr_expect_str_eq(w->name, "web");
    cr_expect_eq(w->role, WL_ROLE_APP);
    cr_expect_eq(w->placement, WL_PLACEMENT_AUTO);
    cr_expect_eq(w->isolation, WL_ISOLATION_STANDARD);
    cr_expect_eq(w->restart, WL_RESTART_ALWAYS);
    cr_expect_eq(w->resources.memory, WL_DEFAULT_MEMORY);
    cr_expect_eq(w->resources.cpus, WL_DEFAULT_CPUS);
    cr_expect_eq(w->resources.pids, WL_DEFAULT_PIDS);
    cr_expect_eq(w->resources.disk, WL_DEFAULT_DISK);
    cr_expect_not(w->resources.memory_set);
    cr_expect_not(w->resources.disk_set);
    manifest_set_free(set);
}

Test(schema, every_field_is_read)
{
    const char *yaml =
        "apiVersion: duet/v1\n"
        "kind: Workload\n"
        "metadata:\n"
        "  name: db\n"
        "  labels: {tier: data, app.kubernetes.io/name: pg}\n"
        "spec:\n"
        "  role: infrastructure\n"
        "  placement: vm\n"
        "  isolation: strong\n"
        "  image:\n"
        "    rootfs: ../images/alpine\n"
        "    disk: /srv/images/debian.qcow2\n"
        "    kernel: ./k/../vmlinuz\n"
        "    initrd: /boot/initrd.img\n"
        "    cmdline: \"console=ttyS0 quiet\"\n"
        "    keepDisk: true\n"
        "  command: [\"/bin/sh\", \"-c\", \"exec httpd -f -p 8080\"]\n"
        "  env: {KEY: value, EMPTY: }\n"
        "  workingDir: /srv//app/\n"
        "  user: \"1000:1000\"\n"
        "  resources: {cpus: 0.5, memory: 256Mi, pids: 512, disk: 20Gi}\n"
        "  needs: {ownKernel: true, devices: [/dev/ttyUSB0, \"0000:01:00.0\"], startWithin: 2s}\n"
        "  restart: on-failure\n"
        "  healthcheck: {tcp: 5432, interval: 5s, timeout: 500ms, retries: 4}\n"
        "  ports: [{host: 8080, port: 80, protocol: tcp}, {port: 53, protocol: udp}]\n"
        "  volumes: [{source: /srv/data, target: /data, readOnly: true}, {source: data2, target: /d2}]\n";
    struct manifest_set *set = load_yaml(yaml);
    char buf[2048];
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    const struct workload_spec *w = set->workloads[0];
    cr_expect_eq(w->n_labels, 2);
    cr_expect_str_eq(w->labels[1].key, "app.kubernetes.io/name");
    cr_expect_eq(w->role, WL_ROLE_INFRASTRUCTURE);
    cr_expect_eq(w->placement, WL_PLACEMENT_VM);
    cr_expect_eq(w->isolation, WL_ISOLATION_STRONG);
    /* relative paths resolve against the manifest's directory */
    cr_expect_str_eq(w->image.rootfs, "/srv/images/alpine");
    cr_expect_str_eq(w->image.kernel, "/srv/manifests/vmlinuz");
    cr_expect_str_eq(w->image.disk, "/srv/images/debian.qcow2");
    cr_expect_str_eq(w->image.cmdline, "console=ttyS0 quiet");
    cr_expect(w->image.keep_disk);
    cr_expect_eq(w->n_command, 3);
    cr_expect_str_eq(w->command[2], "exec httpd -f -p 8080");
    cr_expect_null(w->command[3]);
    cr_expect_eq(w->n_env, 2);
    cr_expect_str_eq(w->env[1].key, "EMPTY");
    cr_expect_str_eq(w->env[1].value, "");
    cr_expect_str_eq(w->working_dir, "/srv/app");
    cr_expect_str_eq(w->user, "1000:1000");
    cr_expect_eq(w->resources.cpus, 0.5);
    cr_expect_eq(w->resources.memory, 256ull << 20);
    cr_expect_eq(w->resources.pids, 512);
    cr_expect_eq(w->resources.disk, 20ull << 30);
    cr_expect(w->resources.disk_set);
    cr_expect(w->needs.own_kernel);
    cr_expect_eq(w->needs.n_devices, 2);
    cr_expect_eq(w->needs.start_within_ms, 2000);
    cr_expect_eq(w->restart, WL_RESTART_ON_FAILURE);
    cr_expect_eq(w->health.kind, WL_HEALTH_TCP);
    cr_expect_eq(w->health.tcp, 5432);
    cr_expect_eq(w->health.interval_ms, 5000);
    cr_expect_eq(w->health.timeout_ms, 500);
    cr_expect_eq(w->health.retries, 4);
    cr_expect_eq(w->n_ports, 2);
    cr_expect_eq(w->ports[1].host, 53, "host defaults to port");
    cr_expect_eq(w->ports[1].protocol, WL_PROTO_UDP);
    cr_expect_eq(w->n_volumes, 2);
    cr_expect(w->volumes[0].read_only);
    cr_expect_str_eq(w->volumes[1].source, "/srv/manifests/data2");
    manifest_set_free(set);
}

/* What a kept disk is made from: the image as written and the size,
 * nothing else (an env or a memory change keeps the disk). */
Test(schema, a_disk_source_names_the_image_and_the_size)
{
    char a[512], b[512];
    struct manifest_set *set = load_yaml(WL_HEAD "  image: {rootfs: /srv/r}\n  command: [/x]\n  resources: {disk: 2Gi}\n"
                                                 "---\n" "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: b}\n"
                                                 "spec:\n  image: {rootfs: /srv/r}\n  command: [/y]\n  env: {A: b}\n"
                                                 "  resources: {disk: 2Gi, memory: 1Gi}\n"
                                                 "---\n" "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: c}\n"
                                                 "spec:\n  image: {kernel: /k, initrd: /i}\n"
                                                 "---\n" "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: d}\n"
                                                 "spec:\n  image: {disk: /srv/d.qcow2, kernel: /k}\n"
                                                 "---\n" "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: e}\n"
                                                 "spec:\n  image: {oci: \"docker.io/library/nginx:1.27\"}\n");
    char buf[2048];
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    cr_assert(wl_disk_source(set->workloads[0], a, sizeof(a)));
    cr_assert(wl_disk_source(set->workloads[1], b, sizeof(b)));
    cr_expect_str_eq(a, "rootfs /srv/r, 2 GiB");
    cr_expect_str_eq(a, b);
    cr_expect_not(wl_disk_source(set->workloads[2], a, sizeof(a)));
    cr_expect_str_eq(a, "");
    cr_expect(wl_disk_source(set->workloads[3], a, sizeof(a)));
    cr_expect_str_eq(a, "disk /srv/d.qcow2, 10 GiB");
    cr_expect(wl_disk_source(set->workloads[4], a, sizeof(a)));
    cr_expect_str_eq(a, "oci docker.io/library/nginx:1.27, 10 GiB");
    manifest_set_free(set);
}

Test(schema, every_error_in_one_run)
{
    /* Five independent mistakes in one document, one in another: all six reported. */
    const char *yaml = H "  role: infra\n  image: {rootfs: /r}\n  command: [x]\n  resources: {cpus: 0, memory: 1Q}\n"
                         "  restart: sometimes\n  ports: [{port: 0}]\n"
                         "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: B}\nspec: {image: {disk: /d}}\n";
    struct manifest_set *set = load_yaml(yaml);
    char buf[4096];
    cr_expect_eq(diag_count(&set->diags), 6, "%s", diags_text(set, buf, sizeof(buf)));
    /* sorted by position */
    for (size_t i = 1; i < set->diags.n; i++)
        cr_expect(set->diags.v[i - 1].line <= set->diags.v[i].line);
    manifest_set_free(set);
}

Test(schema, names_unique_across_documents_and_files)
{
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, "a.yaml", WL_OK, strlen(WL_OK));
    manifest_set_load_buffer(set, "b.yaml", "---\n" WL_OK, strlen(WL_OK) + 4);
    manifest_set_validate(set);
    cr_assert_eq(diag_count(&set->diags), 1);
    cr_expect_str_eq(set->diags.v[0].file, "b.yaml");
    cr_expect_eq(set->diags.v[0].line, 5);
    cr_expect(strstr(set->diags.v[0].msg, "defined twice; the first is at a.yaml:4:9"), "%s", set->diags.v[0].msg);
    manifest_set_free(set);
}

Test(schema, dependency_cycles_are_spelled_out)
{
    const char *yaml =
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\nspec: {image: {disk: /d}, dependsOn: [b]}\n---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: b}\nspec: {image: {disk: /d}, dependsOn: [c]}\n---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: c}\nspec: {image: {disk: /d}, dependsOn: [a]}\n";
    struct manifest_set *set = load_yaml(yaml);
    char buf[2048];
    cr_assert_eq(diag_count(&set->diags), 1, "%s", diags_text(set, buf, sizeof(buf)));
    cr_expect(has_diag(set, 14, 39, "dependency cycle a -> b -> c -> a"), "%s", diags_text(set, buf, sizeof(buf)));
    manifest_set_free(set);
}

Test(schema, host_ports_published_once_across_the_fleet)
{
    const char *yaml = WL_OK "  ports: [{host: 8080, port: 80}]\n---\n"
                       "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: api}\n"
                       "spec: {image: {disk: /d}, ports: [{host: 8080, port: 9000}, {host: 8080, port: 1, protocol: udp}]}\n";
    struct manifest_set *set = load_yaml(yaml);
    char buf[2048];
    cr_assert_eq(diag_count(&set->diags), 1, "%s", diags_text(set, buf, sizeof(buf)));
    cr_expect(has_diag(set, 14, 42, "host port 8080/tcp is already published by workload \"web\""), "%s",
              diags_text(set, buf, sizeof(buf)));
    manifest_set_free(set);
}

/* The first to publish a port holds it, however many follow and in
 * whatever order their ports are listed; a port is per protocol. */
Test(schema, every_later_publisher_of_a_port_names_the_first)
{
    const char *yaml =
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a}\n"
        "spec: {image: {disk: /d}, ports: [{host: 65535, port: 1, protocol: udp}, {host: 9000, port: 1}]}\n---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: b}\n"
        "spec: {image: {disk: /d}, ports: [{host: 1, port: 1}, {host: 9000, port: 2}, {host: 65535, port: 1}]}\n---\n"
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: c}\n"
        "spec: {image: {disk: /d}, ports: [{host: 9000, port: 3}, {host: 1, port: 1, protocol: udp}]}\n";
    struct manifest_set *set = load_yaml(yaml);
    char buf[4096];
    cr_assert_eq(diag_count(&set->diags), 2, "%s", diags_text(set, buf, sizeof(buf)));
    for (size_t i = 0; i < 2; i++)
        cr_expect(strstr(set->diags.v[i].msg, "host port 9000/tcp is already published by workload \"a\""), "%s",
                  diags_text(set, buf, sizeof(buf)));
    cr_expect_neq(set->diags.v[0].line, set->diags.v[1].line, "said at b's port and at c's");
    manifest_set_free(set);
}

/* A port the fleet already publishes (context documents, as duetd loads
 * the rest of the fleet into an apply): said at the user's port, naming
 * the workload that holds it, never at a place in the context. */
Test(schema, a_port_held_by_the_applied_fleet_is_said_at_the_users_file)
{
    struct manifest_set *set = manifest_set_new();
    const char *mine = WL_OK "  ports: [{host: 8080, port: 80}]\n";
    manifest_set_load_buffer(set, "/srv/app.yaml", mine, strlen(mine));
    set->context_file = "(applied earlier)";
    const char *fleet = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: proxy}\n"
                        "spec: {image: {rootfs: /srv/r}, command: [/x], ports: [{host: 8080, port: 8080}]}\n";
    manifest_set_load_buffer(set, "(applied earlier)", fleet, strlen(fleet));
    manifest_set_validate(set);
    char buf[2048];
    cr_assert_eq(diag_count(&set->diags), 1, "%s", diags_text(set, buf, sizeof(buf)));
    const struct diag *d = &set->diags.v[0];
    cr_expect_str_eq(d->file, "/srv/app.yaml");
    cr_expect_eq(d->line, 9, "%u:%u %s", d->line, d->col, d->msg);
    cr_expect(strstr(d->msg, "host port 8080/tcp is already published by workload \"proxy\" (applied earlier)"),
              "%s", d->msg);
    manifest_set_free(set);
}

/* A named volume's users agree on its size, and one of them writes it. */
Test(schema, a_named_volume_has_one_size_and_one_writer)
{
    const char *two = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: db}\n"
                      "spec: {image: {disk: /d}, volumes: [{name: pg, size: 1Gi, target: /var/lib/pg}]}\n---\n"
                      "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: backup}\n"
                      "spec: {image: {disk: /d}, volumes: [{name: pg, %s target: /pg}]}\n";
    static const struct {
        const char *extra, *want;
    } cases[] = {
        {"", "volume pg is written by workload db and by workload backup: a volume is written by one workload at "
             "a time; mount it readOnly: true in the other"},
        {"size: 2Gi,", "volume pg is 1 GiB in workload db and 2 GiB in workload backup: a volume has one size"},
        {"readOnly: true,", NULL},
        {"readOnly: true, size: 1Gi,", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024], buf[2048];
        snprintf(yaml, sizeof(yaml), two, cases[i].extra);
        struct manifest_set *set = load_yaml(yaml);
        if (!cases[i].want) {
            cr_expect(manifest_set_ok(set), "case %zu: %s", i, diags_text(set, buf, sizeof(buf)));
        } else {
            cr_expect_eq(diag_count(&set->diags), 1, "case %zu: %s", i, diags_text(set, buf, sizeof(buf)));
            cr_expect(has_diag(set, 8, 18, cases[i].want), "case %zu: said at backup's name: %s", i,
                      diags_text(set, buf, sizeof(buf)));
        }
        manifest_set_free(set);
    }
    /* against the fleet already applied: said at the user's workload */
    struct manifest_set *set = manifest_set_new();
    const char *mine = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: new}\n"
                       "spec: {image: {disk: /d}, volumes: [{name: pg, target: /pg}]}\n";
    const char *fleet = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: db}\n"
                        "spec: {image: {disk: /d}, volumes: [{name: pg, target: /var/lib/pg}]}\n";
    set->context_file = "(applied earlier)";
    manifest_set_load_buffer(set, "(applied earlier)", fleet, strlen(fleet));
    manifest_set_load_buffer(set, "/srv/new.yaml", mine, strlen(mine));
    manifest_set_validate(set);
    char buf[2048];
    cr_assert_eq(diag_count(&set->diags), 1, "%s", diags_text(set, buf, sizeof(buf)));
    cr_expect_str_eq(set->diags.v[0].file, "/srv/new.yaml");
    cr_expect(strstr(set->diags.v[0].msg, "written by workload db and by workload new"), "%s", set->diags.v[0].msg);
    manifest_set_free(set);
}

static const char host_doc[] = "apiVersion: duet/v1\nkind: Host\nmetadata: {name: homelab}\nspec:\n";

Test(schema, host_document)
{
    const char *yaml = "apiVersion: duet/v1\nkind: Host\nmetadata: {name: homelab}\nspec:\n"
                       "  cpus: 8\n  memory: 32Gi\n  reserve: {cpus: 0.5, memory: 1Gi}\n"
                       "  overcommit: {cpu: 2.5, memory: 1.0}\n"
                       "  backends:\n    vm: {available: true, kvm: false, guestKernel: false}\n"
                       "    container: {available: false}\n";
    struct manifest_set *set = load_yaml(yaml);
    char buf[2048];
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    const struct host_spec *h = set->host;
    cr_assert_not_null(h);
    cr_expect_str_eq(h->name, "homelab");
    cr_expect_eq(h->cpus, 8);
    cr_expect_eq(h->memory, 32ull << 30);
    cr_expect_eq(h->reserve_cpus, 0.5);
    cr_expect_eq(h->reserve_memory, 1ull << 30);
    cr_expect_eq(h->overcommit_cpu, 2.5);
    cr_expect(h->vm_available);
    cr_expect_not(h->vm_kvm);
    cr_expect_not(h->vm_guest_kernel);
    cr_expect_not(h->container_available);
    manifest_set_free(set);
}

static const struct rule_case host_cases[] = {
    {"apiVersion: duet/v1\nkind: Host\nmetadata: {name: h}\nspec: {memory: 1Gi}\n", 4, 7, "spec.cpus is required"},
    {"apiVersion: duet/v1\nkind: Host\nmetadata: {name: h}\nspec: {cpus: 2}\n", 4, 7, "spec.memory is required"},
    {"apiVersion: duet/v1\nkind: Host\nmetadata: {name: h}\nspec: {cpus: 2, memory: 1Gi, reserve: {cpus: 2}}\n", 4, 46,
     "leaves no CPU"},
    {"apiVersion: duet/v1\nkind: Host\nmetadata: {name: h}\nspec: {cpus: 2, memory: 1Gi, reserve: {memory: 2Gi}}\n", 4,
     48, "leaves no memory"},
    {"apiVersion: duet/v1\nkind: Host\nmetadata: {name: h}\nspec: {cpus: 2, memory: 1Gi, overcommit: {cpu: 0}}\n", 4,
     48, "must be greater than 0"},
    {"apiVersion: duet/v1\nkind: Host\nmetadata: {name: h}\nspec: {cpus: 2, memory: 1Gi, backends: {vm: {kvm: maybe}}}\n",
     4, 51, "must be true or false"},
    {"apiVersion: duet/v1\nkind: Host\nmetadata: {name: h}\nspec: {cpus: 2, memory: 1Gi, backends: {lxc: {}}}\n", 4,
     41, "unknown key \"lxc\""},
    {"apiVersion: duet/v1\nkind: Host\nmetadata: {name: h}\nspec: {cpus: 2, memory: 1Gi}\n---\n"
     "apiVersion: duet/v1\nkind: Host\nmetadata: {name: h2}\nspec: {cpus: 2, memory: 1Gi}\n",
     6, 1, "a second Host document"},
};

Test(schema, host_rules)
{
    (void)host_doc;
    for (size_t i = 0; i < sizeof(host_cases) / sizeof(host_cases[0]); i++) {
        const struct rule_case *c = &host_cases[i];
        struct manifest_set *set = load_yaml(c->yaml);
        char buf[4096];
        cr_expect(has_diag(set, c->line, c->col, c->text), "host case %zu: want %u:%u \"%s\", got: %s", i, c->line,
                  c->col, c->text, diags_text(set, buf, sizeof(buf)));
        manifest_set_free(set);
    }
}

Test(schema, empty_input)
{
    struct manifest_set *set = load_yaml("# nothing here\n---\n");
    cr_expect(has_diag(set, 0, 0, "no manifests found"));
    manifest_set_free(set);
}

Test(schema, aliases_are_read_through)
{
    const char *yaml = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: a, labels: &l {tier: x}}\n"
                       "spec: {image: {disk: /d}}\n---\n"
                       "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: b, labels: &m {tier: y}}\n"
                       "spec: {image: {disk: /d}, command: &c [/x]}\n";
    /* aliases are per document: *l in the second would be an error; here none are used across */
    struct manifest_set *set = load_yaml(yaml);
    cr_expect(has_diag(set, 9, 27, "this image has neither"));
    manifest_set_free(set);
    set = load_yaml(WL_HEAD "  image: &img {rootfs: /r}\n  command: &cmd [/bin/true]\n  env: {A: *cmd}\n");
    /* An alias shares its anchor's node: the error points at the anchored
     * value (line 7), and the path names where it was used. */
    cr_expect(has_diag(set, 7, 12, "spec.env.A must be a string, not a list"));
    manifest_set_free(set);
}

/* spec.image.oci: a layout or archive, its path resolved against the
 * manifest's directory; command optional, args kept apart from it. */
Test(schema, an_oci_image_is_read_and_checked)
{
    char buf[2048];
    struct manifest_set *set = load_yaml(WL_HEAD "  image: {oci: \"oci-layout:img/app:1.0\"}\n  args: [\"-v\"]\n");
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    const struct workload_spec *w = set->workloads[0];
    cr_expect_str_eq(w->image.oci, "oci-layout:/srv/manifests/img/app:1.0");
    cr_expect_null(w->command, "command stays the image's");
    cr_expect_eq(w->n_args, 1);
    manifest_set_free(set);

    set = load_yaml(WL_HEAD "  image: {oci: \"docker-archive:/tmp/app.tar\"}\n");
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    cr_expect_str_eq(set->workloads[0]->image.oci, "docker-archive:/tmp/app.tar");
    manifest_set_free(set);

    set = load_yaml(WL_HEAD "  image: {oci: \"postgres:16\"}\n");
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    cr_expect_str_eq(set->workloads[0]->image.oci, "docker.io/library/postgres:16");
    manifest_set_free(set);

    set = load_yaml(WL_HEAD "  image: {oci: \"oci-layout:/x\", rootfs: /srv/rootfs}\n  command: [/bin/true]\n");
    cr_expect(has_diag(set, 0, 0, "is a whole image"), "%s", diags_text(set, buf, sizeof(buf)));
    manifest_set_free(set);

    set = load_yaml(WL_HEAD "  image: {oci: \"Not A Ref\"}\n");
    cr_expect(has_diag(set, 6, 0, "spec.image.oci:"), "%s", diags_text(set, buf, sizeof(buf)));
    manifest_set_free(set);

    set = load_yaml(WL_HEAD "  image: {disk: /srv/d.qcow2}\n  args: [x]\n");
    cr_expect(has_diag(set, 0, 0, "spec.args are the arguments of a process"), "%s", diags_text(set, buf, sizeof(buf)));
    manifest_set_free(set);
}

/* A userDataFile in a fresh directory under /tmp; its path into path. */
static void user_data_file(char *path, size_t len, const void *data, size_t n)
{
    char dir[] = "/tmp/duet-ud-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, len, "%s/user-data", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void user_data_file_remove(const char *path)
{
    unlink(path);
    char dir[256];
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

Test(schema, cloud_init_is_read_and_checked)
{
    char buf[4096];
    struct manifest_set *set = load_yaml(WL_HEAD "  image: {disk: debian.qcow2}\n  cloudInit:\n    userData: |\n"
                                                 "      #cloud-config\n      runcmd: [[touch, /x]]\n"
                                                 "    networkConfig: \"version: 2\\n\"\n");
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    const struct workload_spec *w = set->workloads[0];
    cr_expect_str_eq(w->cloud_init.user_data, "#cloud-config\nruncmd: [[touch, /x]]\n");
    cr_expect_str_eq(w->cloud_init.network_config, "version: 2\n");
    manifest_set_free(set);

    /* a file's content is taken byte for byte, when the manifest is loaded */
    char path[256], yaml[1024];
    static const char content[] = "#!/bin/sh\necho \"h\xc3\xa9llo: {not yaml\" > /x\n";
    user_data_file(path, sizeof(path), content, strlen(content));
    snprintf(yaml, sizeof(yaml), WL_HEAD "  image: {disk: /d.qcow2}\n  cloudInit: {userDataFile: %s}\n", path);
    set = load_yaml(yaml);
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    cr_expect_str_eq(set->workloads[0]->cloud_init.user_data, content);
    cr_expect_null(set->workloads[0]->cloud_init.network_config);
    manifest_set_free(set);
    user_data_file_remove(path);

    /* not text: compressed, a NUL byte, not UTF-8 */
    static const char gz[] = "\x1f\x8b\x08\x00\x00\x00";
    user_data_file(path, sizeof(path), gz, sizeof(gz) - 1);
    snprintf(yaml, sizeof(yaml), WL_HEAD "  image: {disk: /d.qcow2}\n  cloudInit: {userDataFile: %s}\n", path);
    set = load_yaml(yaml);
    cr_expect(has_diag(set, 7, 0, "is not UTF-8 text"), "%s", diags_text(set, buf, sizeof(buf)));
    manifest_set_free(set);
    user_data_file_remove(path);

    /* over 1 MiB */
    char *big = malloc((1 << 20) + 2);
    memset(big, 'a', (1 << 20) + 1);
    user_data_file(path, sizeof(path), big, (1 << 20) + 1);
    free(big);
    snprintf(yaml, sizeof(yaml), WL_HEAD "  image: {disk: /d.qcow2}\n  cloudInit: {userDataFile: %s}\n", path);
    set = load_yaml(yaml);
    cr_expect(has_diag(set, 7, 0, "at most 1 MiB"), "%s", diags_text(set, buf, sizeof(buf)));
    manifest_set_free(set);
    user_data_file_remove(path);

    static const struct {
        const char *yaml, *want;
    } bad[] = {
        /* duet's own init never runs cloud-init */
        {WL_HEAD "  image: {rootfs: /srv/r}\n  command: [/bin/true]\n  cloudInit: {userData: x}\n",
         "has no image.disk"},
        {WL_HEAD "  image: {disk: /d}\n  cloudInit: {userData: x, userDataFile: /tmp/y}\n", "not both"},
        {WL_HEAD "  image: {disk: /d}\n  cloudInit: {userDataFile: /nonexistent/ud}\n", "cannot be read"},
        {WL_HEAD "  image: {disk: /d}\n  cloudInit: {userDataFile: /tmp}\n", "not a regular file"},
        /* the host's secrets are not handed to a guest without saying so */
        {WL_HEAD "  image: {disk: /d}\n  cloudInit: {userDataFile: /etc/shadow}\n", "is or holds the host's /etc"},
        {WL_HEAD "  image: {disk: /d}\n  cloudInit: {userData: [a]}\n", "spec.cloudInit.userData must be a string"},
        {WL_HEAD "  image: {disk: /d}\n  cloudInit: {networkConfig: {version: 2}}\n", "networkConfig: |"},
        {WL_HEAD "  image: {disk: /d}\n  network: none\n  cloudInit: {networkConfig: \"version: 2\"}\n",
         "with network: none it has none"},
        {WL_HEAD "  image: {disk: /d}\n  cloudInit: {userdata: x}\n", "did you mean \"userData\""},
        {WL_HEAD "  image: {disk: /d}\n  cloudInit: x\n", "spec.cloudInit must be a mapping"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set = load_yaml(bad[i].yaml);
        cr_expect(has_diag(set, 0, 0, bad[i].want), "case %zu: want \"%s\", got: %s", i, bad[i].want,
                  diags_text(set, buf, sizeof(buf)));
        manifest_set_free(set);
    }
}
