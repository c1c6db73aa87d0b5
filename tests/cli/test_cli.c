/*
 * The `duet` binary as a user runs it: exit codes, output on the right
 * stream, the JSON contract of DESIGN.md, and hostile files with a bound on
 * time and memory.  DUET_BIN and DUET_SRC come from the Makefile.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/cli/run.h"

static const char *bin(void)
{
    const char *b = getenv("DUET_BIN");
    cr_assert_not_null(b, "DUET_BIN is not set: run the suite with make test");
    return b;
}

/* A path in the source tree; several may be used in one call, so the
 * buffers rotate. */
static const char *src(const char *rel)
{
    static __thread char paths[8][4096];
    static __thread unsigned next;
    char *path = paths[next++ % 8];
    const char *s = getenv("DUET_SRC");
    snprintf(path, 4096, "%s/%s", s ? s : ".", rel);
    return path;
}

/* Runs duet with argv (NULL-terminated, without argv[0]). */
static struct run run_duet(const char *const *args)
{
    const char *argv[32] = {bin()};
    size_t n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    return run_argv(argv, NULL, NULL);
}

#define RUN(...) run_duet((const char *const[]){__VA_ARGS__, NULL})

Test(cli, usage_errors_exit_2)
{
    struct run r = run_duet((const char *const[]){NULL});
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "usage: duet"));
    run_free(&r);
    static const char *const bad[][4] = {
        {"frobnicate", NULL}, {"validate", NULL}, {"plan", NULL},
        {"plan", "-o", "xml", NULL}, {"plan", "manifests/examples", NULL}, {"validate", "--bogus", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = run_duet(bad[i]);
        cr_expect_eq(r.status, 2, "duet %s: status %d, stderr %s", bad[i][0], r.status, r.err);
        cr_expect_str_eq(r.out, "", "usage errors print nothing on stdout");
        run_free(&r);
    }
}

Test(cli, help_for_each_verb)
{
    static const char *const verbs[] = {"validate", "plan"};
    for (size_t i = 0; i < 2; i++) {
        struct run r = RUN(verbs[i], "--help");
        cr_expect_eq(r.status, 0);
        cr_expect(strstr(r.out, "usage: duet"), "%s", r.out);
        cr_expect(strstr(r.out, verbs[i]));
        run_free(&r);
    }
    struct run r = RUN("--help");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "validate") && strstr(r.out, "plan"));
    run_free(&r);
}

Test(cli, daemon_unreachable_is_exit_3)
{
    static const char *const verbs[] = {"get", "describe", "logs", "events", "delete", "compare"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        struct run r = strcmp(verbs[i], "get") == 0 || strcmp(verbs[i], "events") == 0
                           ? RUN(verbs[i], "--socket", "/nonexistent/duet.sock")
                           : RUN(verbs[i], "--socket", "/nonexistent/duet.sock", "web");
        cr_expect_eq(r.status, 3, "%s: %d %s", verbs[i], r.status, r.err);
        cr_expect(strstr(r.err, "cannot connect to duetd at /nonexistent/duet.sock; is it running?"), "%s", r.err);
        run_free(&r);
    }
    /* apply checks the manifests first, without a daemon */
    struct run r = RUN("apply", "-f", "x.yaml", "--socket", "/nonexistent/duet.sock");
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "x.yaml: error: cannot read"), "%s", r.err);
    run_free(&r);
}

static json_t *find_workload(json_t *arr, const char *name);

/* A fleet's costs both ways, planned for a Host document: nothing runs,
 * no daemon is asked. */
Test(cli, compare_estimate_costs_a_fleet_both_ways)
{
    struct run r = RUN("compare", "-f", src("manifests/examples"), "-f", src("manifests/hosts/homelab.yaml"),
                       "--estimate", "-o", "json", "--socket", "/nonexistent/duet.sock");
    cr_assert_eq(r.status, 0, "%s", r.err);
    json_t *root = json_loads(r.out, 0, NULL);
    cr_assert_not_null(root, "%s", r.out);
    cr_expect_str_eq(json_string_value(json_object_get(root, "host")), "homelab");
    json_t *web = find_workload(json_object_get(root, "workloads"), "web");
    json_t *db = find_workload(json_object_get(root, "workloads"), "db");
    cr_assert(web && db);
    json_t *wc = json_object_get(web, "container"), *wv = json_object_get(web, "vm");
    cr_expect(json_is_true(json_object_get(wc, "possible")) && json_is_true(json_object_get(wv, "possible")));
    /* a VM is charged its memory and the backend's overhead */
    cr_expect_gt(json_integer_value(json_object_get(wv, "memory_bytes")),
                 json_integer_value(json_object_get(wc, "memory_bytes")));
    cr_expect_gt(json_integer_value(json_object_get(wv, "start_ms")), json_integer_value(json_object_get(wc, "start_ms")));
    cr_expect(json_is_false(json_object_get(json_object_get(db, "container"), "possible")));
    cr_expect(strstr(json_string_value(json_object_get(json_object_get(db, "container"), "reason")), "no rootfs"));
    json_t *st = json_object_get(root, "strategies");
    json_t *cts = json_object_get(st, "all_containers"), *vms = json_object_get(st, "all_vms"),
           *asp = json_object_get(st, "as_planned");
    cr_expect_eq(json_array_size(json_object_get(asp, "unplaceable")), 0);
    /* db and vpn cannot be containers: all-containers runs them as VMs */
    cr_expect_eq(json_integer_value(json_object_get(cts, "the_other_way")), 2);
    cr_expect_lt(json_integer_value(json_object_get(cts, "memory_used")),
                 json_integer_value(json_object_get(vms, "memory_used")));
    cr_expect_eq(json_integer_value(json_object_get(cts, "memory_headroom")) +
                     json_integer_value(json_object_get(cts, "memory_used")),
                 json_integer_value(json_object_get(cts, "memory_capacity")));
    json_decref(root);
    run_free(&r);
    r = RUN("compare", "-f", src("manifests/examples"), "-f", src("manifests/hosts/homelab.yaml"), "--estimate");
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, "AS A CONTAINER") && strstr(r.out, "ALL CONTAINERS") &&
                  strstr(r.out, "vpn: not as a container: needs.ownKernel"),
              "%s", r.out);
    run_free(&r);
    r = RUN("compare", "web", "-f", src("manifests/examples"), "--estimate");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "--estimate takes the fleet's files"), "%s", r.err);
    run_free(&r);
}

/* duet compare's mistakes are found before any daemon is asked. */
Test(cli, compare_usage_errors_are_exit_2)
{
    static const struct {
        const char *args[8];
        const char *said;
    } cases[] = {
        {{"compare"}, "usage: duet compare NAME"},
        {{"compare", "Not_A_Name"}, "Not_A_Name is not a workload name"},
        {{"compare", "web", "--runs", "11"}, "--runs 11: give a number from 1 to 10"},
        {{"compare", "web", "--runs", "2x"}, "--runs 2x: give a number"},
        {{"compare", "web", "--tcp", "80", "--http", "/"}, "give one probe"},
        {{"compare", "web", "--exec", "true", "--", "/bin/true"}, "give one probe"},
        {{"compare", "web", "--port", "8080"}, "--port, --concurrency and --duration go with --http PATH"},
        {{"compare", "web", "--tcp", "99999"}, "--tcp 99999: give a port from 1 to 65535"},
        {{"compare", "web", "db"}, "db: one workload at a time"},
        {{"compare", "web", "-o", "yaml"}, "-o yaml: give table or json"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[12] = {0};
        size_t n = 0;
        while (n < 8 && cases[i].args[n]) {
            argv[n] = cases[i].args[n];
            n++;
        }
        argv[n++] = "--socket";
        argv[n++] = "/nonexistent/duet.sock";
        struct run r = run_duet(argv);
        cr_expect_eq(r.status, 2, "case %zu: %d %s", i, r.status, r.err);
        cr_expect(strstr(r.err, cases[i].said), "case %zu: %s", i, r.err);
        run_free(&r);
    }
    struct run r = RUN("compare", "--help");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "--http PATH") && strstr(r.out, "docs/compare.md"), "%s", r.out);
    run_free(&r);
}

/* Global options before the verb, as in kubectl and docker. */
Test(cli, global_socket_before_the_verb)
{
    struct run r = RUN("--socket", "/nonexistent/before.sock", "get");
    cr_expect_eq(r.status, 3, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "cannot connect to duetd at /nonexistent/before.sock"), "%s", r.err);
    run_free(&r);
    r = RUN("--socket=/nonexistent/eq.sock", "describe", "web");
    cr_expect_eq(r.status, 3, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "/nonexistent/eq.sock"), "%s", r.err);
    run_free(&r);
    /* after the verb it wins, as the nearer one */
    r = RUN("--socket", "/nonexistent/a.sock", "get", "--socket", "/nonexistent/b.sock");
    cr_expect(strstr(r.err, "/nonexistent/b.sock"), "%s", r.err);
    run_free(&r);
    r = RUN("--socket");
    cr_expect_eq(r.status, 2, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "--socket needs a path"), "%s", r.err);
    run_free(&r);
}

Test(cli, validate_the_examples)
{
    struct run r = RUN("validate", src("manifests/examples"), src("manifests/hosts/homelab.yaml"));
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq(r.out, "valid: 7 workloads and 1 host in 3 files\n");
    cr_expect_str_eq(r.err, "");
    run_free(&r);
}

Test(cli, validate_reports_every_error_with_its_place)
{
    struct run r = RUN("validate", src("tests/fixtures/broken.yaml"));
    cr_expect_eq(r.status, 1);
    cr_expect_str_eq(r.out, "");
    const char *f = src("tests/fixtures/broken.yaml");
    char want[6][4400];
    snprintf(want[0], sizeof(want[0]), "%s:5:9: error: metadata.name \"Web\" is not a valid name", f);
    snprintf(want[1], sizeof(want[1]), "%s:7:9: error: spec.role: \"application\" is not allowed", f);
    snprintf(want[2], sizeof(want[2]), "%s:12:13: error: spec.resources.memory: \"512M\" is not a size", f);
    snprintf(want[3], sizeof(want[3]), "%s:13:11: error: spec.resources.cpus is 0", f);
    snprintf(want[4], sizeof(want[4]), "%s:23:15: error: spec.dependsOn: no workload named \"queue\"", f);
    snprintf(want[5], sizeof(want[5]), "%s:24:22: error: unknown key \"protocl\" in spec.ports[0] (did you mean \"protocol\"?)", f);
    const char *at = r.err;
    for (int i = 0; i < 6; i++) {
        const char *hit = strstr(at, want[i]);
        cr_expect(hit, "missing, or out of order: %s\nin:\n%s", want[i], r.err);
        if (hit)
            at = hit;
    }
    cr_expect(strstr(r.err, "duet: 6 errors"), "%s", r.err);
    run_free(&r);
}

Test(cli, unreadable_inputs)
{
    struct run r = RUN("validate", "/nonexistent/fleet.yaml");
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "/nonexistent/fleet.yaml: error: cannot read: No such file or directory"), "%s", r.err);
    run_free(&r);
    char dir[] = "/tmp/duet-empty-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    r = RUN("validate", dir);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "no *.yaml or *.yml files in this directory"), "%s", r.err);
    run_free(&r);
    r = RUN("validate", "/dev/null");
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "not a regular file"), "%s", r.err);
    run_free(&r);
    rmdir(dir);
}

static json_t *plan_json(struct run *r, const char *const *args)
{
    *r = run_duet(args);
    json_error_t jerr;
    json_t *root = json_loads(r->out, 0, &jerr);
    cr_assert_not_null(root, "not JSON (%s): %s\nstderr: %s", jerr.text, r->out, r->err);
    return root;
}

static json_t *find_workload(json_t *arr, const char *name)
{
    size_t i;
    json_t *w;
    json_array_foreach(arr, i, w)
        if (strcmp(json_string_value(json_object_get(w, "name")), name) == 0)
            return w;
    return NULL;
}

Test(cli, plan_json_for_the_homelab_host)
{
    struct run r;
    json_t *root = plan_json(&r, (const char *const[]){"plan", "-f", src("manifests/examples"), "-f",
                                                       src("manifests/hosts/homelab.yaml"), "-o", "json", NULL});
    cr_expect_eq(r.status, 0, "%s", r.err);
    json_t *host = json_object_get(root, "host");
    cr_expect_eq(json_integer_value(json_object_get(host, "cpus")), 8);
    cr_expect_eq(json_integer_value(json_object_get(host, "memory")), 32ll << 30);
    cr_expect_str_eq(json_string_value(json_object_get(host, "vm_backend")), "kvm");
    json_t *wl = json_object_get(root, "workloads");
    cr_expect_eq(json_array_size(wl), 7);
    cr_expect_eq(json_array_size(json_object_get(root, "unplaceable")), 0);
    static const struct { const char *name, *backend; int order; const char *ruled_out; } want[] = {
        {"dns", "vm", 0, NULL}, {"db", "vm", 0, "container"}, {"cache", "container", 0, "vm"},
        {"vpn", "vm", 0, "container"}, {"web", "container", 1, NULL}, {"worker", "container", 1, NULL},
        {"backup", "container", 2, "vm"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        json_t *w = json_array_get(wl, i);
        cr_assert_not_null(w);
        cr_expect_str_eq(json_string_value(json_object_get(w, "name")), want[i].name, "position %zu", i);
        cr_expect_str_eq(json_string_value(json_object_get(w, "backend")), want[i].backend, "%s", want[i].name);
        cr_expect_eq(json_integer_value(json_object_get(w, "start_order")), want[i].order, "%s", want[i].name);
        cr_expect(json_array_size(json_object_get(w, "reasons")) >= 1, "%s has reasons", want[i].name);
        json_t *ro = json_object_get(w, "ruled_out");
        cr_expect(json_is_object(ro));
        if (want[i].ruled_out)
            cr_expect(json_is_string(json_object_get(ro, want[i].ruled_out)), "%s: %s ruled out", want[i].name,
                      want[i].ruled_out);
    }
    json_decref(root);
    run_free(&r);
}

Test(cli, plan_for_a_host_without_vms_lists_the_unplaceable)
{
    struct run r;
    json_t *root = plan_json(&r, (const char *const[]){"plan", "-f", src("manifests/examples"), "-f",
                                                       src("manifests/hosts/small-arm.yaml"), "-o", "json", NULL});
    cr_expect_eq(r.status, 1, "a workload that fits nowhere means exit 1");
    cr_expect(strstr(r.err, "cannot be placed on small-arm"), "%s", r.err);
    json_t *un = json_object_get(root, "unplaceable");
    json_t *db = find_workload(un, "db");
    cr_assert_not_null(db);
    cr_expect(strstr(json_string_value(json_object_get(db, "reason")), "spec.backends.vm.available: false"));
    json_t *web = find_workload(un, "web");
    cr_assert_not_null(web);
    cr_expect_str_eq(json_string_value(json_object_get(web, "reason")), "depends on \"db\", which is unplaceable");
    json_t *dns = find_workload(json_object_get(root, "workloads"), "dns");
    cr_assert_not_null(dns);
    cr_expect_str_eq(json_string_value(json_object_get(dns, "backend")), "container");
    json_decref(root);
    run_free(&r);
}

Test(cli, plan_table_for_people)
{
    struct run r = RUN("plan", "-f", src("manifests/examples"), "-f", src("manifests/hosts/homelab.yaml"));
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "ORDER  NAME    BACKEND"), "%s", r.out);
    cr_expect(strstr(r.out, "  db -> vm\n"));
    cr_expect(strstr(r.out, "    - container ruled out: image has no rootfs"), "%s", r.out);
    cr_expect(strstr(r.out, "    - vm ruled out: needs.startWithin 1s is shorter than a VM's start here"), "%s", r.out);
    run_free(&r);
}

Test(cli, plan_probes_this_machine)
{
    /* No Host document: the plan describes this machine as probed. */
    struct run r;
    json_t *root = plan_json(&r, (const char *const[]){"plan", "-f", src("manifests/examples"), "-o", "json",
                                                       "--libvirt-uri", "test:///default", NULL});
    json_t *host = json_object_get(root, "host");
    cr_expect_str_eq(json_string_value(json_object_get(host, "source")), "probed");
    cr_expect_eq(json_integer_value(json_object_get(host, "cpus")), sysconf(_SC_NPROCESSORS_ONLN));
    cr_expect_gt(json_integer_value(json_object_get(host, "memory")), 0);
    json_t *vm = json_object_get(json_object_get(host, "backends"), "vm");
    cr_expect(json_is_true(json_object_get(vm, "available")), "libvirt's test driver answers in-process");
    json_t *ct = json_object_get(json_object_get(host, "backends"), "container");
    cr_expect(json_is_true(json_object_get(ct, "available")), "%s",
              json_string_value(json_object_get(ct, "reason")));
    cr_expect(strstr(json_string_value(json_object_get(ct, "description")), "cgroup v"));
    size_t placed = json_array_size(json_object_get(root, "workloads"));
    size_t un = json_array_size(json_object_get(root, "unplaceable"));
    cr_expect_eq(placed + un, 7);
    cr_expect_eq(r.status, un ? 1 : 0);
    json_decref(root);
    run_free(&r);

    /* A libvirt URI that cannot answer: the VM backend is reported unavailable, with the fix. */
    root = plan_json(&r, (const char *const[]){"plan", "-f", src("manifests/examples"), "-o", "json",
                                               "--libvirt-uri", "qemu+unix:///system?socket=/nonexistent/sock", NULL});
    vm = json_object_get(json_object_get(json_object_get(root, "host"), "backends"), "vm");
    cr_expect(json_is_false(json_object_get(vm, "available")));
    cr_expect(strstr(json_string_value(json_object_get(vm, "reason")), "libvirt does not answer"));
    cr_expect(strstr(json_string_value(json_object_get(vm, "fix")), "libvirtd"));
    json_t *db = find_workload(json_object_get(root, "unplaceable"), "db");
    cr_assert_not_null(db, "db needs a VM");
    cr_expect_eq(r.status, 1);
    json_decref(root);
    run_free(&r);
}

/* Hostile files through the binary: an error, exit 1, promptly, and a
 * bound on memory (ru_maxrss; the sanitizer build carries its own shadow
 * memory, so it gets a looser bound through DUET_RSS_LIMIT_KIB). */
static long rss_limit_kib(void)
{
    const char *s = getenv("DUET_RSS_LIMIT_KIB");
    return s ? atol(s) : 64 * 1024;
}

static void write_file(const char *path, const char *head, const char *unit, size_t times, const char *tail)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(head, f);
    for (size_t i = 0; i < times; i++)
        fputs(unit, f);
    fputs(tail, f);
    fclose(f);
}

Test(cli, hostile_files_are_refused_within_bounds, .timeout = 60)
{
    char dir[] = "/tmp/duet-hostile-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    static const char head[] = "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: x}\nspec:\n"
                               "  image: {rootfs: /r}\n  command: [/x]\n";
    struct {
        const char *name, *head, *unit;
        size_t times;
        const char *tail, *expect;
    } cases[] = {
        {"deep.yaml", "a: ", "[", 20000, "\n", "nesting is deeper than 64 levels"},
        {"bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n", "", 0, "", "unknown key"},
        {"scalar.yaml", "apiVersion: \"", "xxxxxxxxxxxxxxxx", 600000, "\"\n", "values longer than 64 KiB"},
        {"tabs.yaml", head, "\tenv: {}\n", 1, "", "tab character in indentation"},
        {"big.yaml", "", "# padding padding padding padding padding padding padding\n", 320000, "",
         "larger than 16 MiB are refused"},
        {"docs.yaml", "", "---\napiVersion: duet/v0\nkind: Thing\n", 200000, "", "more errors not shown"},
    };
    /* the bomb: nine more levels of ten aliases each, used as a value */
    char bomb[4096] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    char prev = 'a';
    for (char c = 'b'; c <= 'j'; c++) {
        char line[128];
        snprintf(line, sizeof(line), "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, prev, prev,
                 prev, prev, prev, prev, prev, prev, prev, prev);
        strcat(bomb, line);
        prev = c;
    }
    strcat(bomb, "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: x, labels: *j}\nspec: {image: {disk: /d}}\n");
    cases[1].head = bomb;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%s", dir, cases[i].name);
        write_file(path, cases[i].head, cases[i].unit, cases[i].times, cases[i].tail);
        struct run r = RUN("validate", path);
        cr_expect_eq(r.status, 1, "%s: status %d", cases[i].name, r.status);
        cr_expect(strstr(r.err, cases[i].expect), "%s: want \"%s\" in:\n%.2000s", cases[i].name, cases[i].expect,
                  r.err);
        cr_expect_lt(r.maxrss_kib, rss_limit_kib(), "%s: peak RSS %ld KiB", cases[i].name, r.maxrss_kib);
        cr_expect_lt(strlen(r.err), 200000, "%s: output is bounded", cases[i].name);
        run_free(&r);
        unlink(path);
    }
    rmdir(dir);
}
