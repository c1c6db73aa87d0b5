/*
 * test_images.c - OCI images through duetd: the layout `make images`
 * builds from the busybox rootfs (two layers, a whiteout, a config with
 * Entrypoint, Cmd, Env, User, WorkingDir), imported once for every
 * workload that names it, run with its config's defaults, kept while a
 * workload uses it, across a daemon's kill -9; and images that cannot be
 * used, refused with their cause.
 */
#include "dtest.h"

static const char *oci(void)
{
    static char ref[600];
    snprintf(ref, sizeof(ref), "oci-layout:%s", dd_env("DUET_OCI"));
    return ref;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

Test(images, an_oci_image_runs_with_its_config_and_is_imported_once, .timeout = 180)
{
    struct dd d;
    dd_init(&d);
    /* Three workloads on one image, applied at once: one import. */
    const char *m = dd_manifest(
        &d, "oci.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: plain}\nspec:\n  image: {oci: \"%s\"}\n"
        "  args: [\"echo \\\"$GREETING from $(pwd) as $(id -u)\\\"; sleep 3600\"]\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: tuned}\nspec:\n  image: {oci: \"%s\"}\n"
        "  env: {GREETING: from-the-spec}\n  user: \"0\"\n  workingDir: /tmp\n"
        "  args: [\"echo \\\"$GREETING from $(pwd) as $(id -u)\\\"; cat /srv/hello.txt; test -e /bin/vi || echo no-vi; sleep 3600\"]\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: own}\nspec:\n  image: {oci: \"%s\"}\n"
        "  command: [/bin/sleep, \"3600\"]\n",
        oci(), oci(), oci());
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 120", m), 0, "%s", out);
    free(out);
    cr_expect(duet_logs_until(&d, "plain", "hello-from-oci from /srv as 1000", 10000),
              "the image's Entrypoint, Cmd (replaced by args), Env, WorkingDir and User");
    cr_expect(duet_logs_until(&d, "tuned", "from-the-spec from /tmp as 0", 10000), "the spec's env, user and workingDir win");
    cr_expect(duet_logs_until(&d, "tuned", "the second layer", 10000), "the upper layer's file");
    cr_expect(duet_logs_until(&d, "tuned", "no-vi", 10000), "the upper layer's whiteout hides /bin/vi");
    /* describe says which image, what runs from it, what it exposes */
    cr_assert_eq(dd_duet(&d, &out, "describe own"), 0);
    cr_expect(strstr(out, "Image:       oci-layout:") && strstr(out, "(sha256:"), "%s", out);
    cr_expect(strstr(out, "runs:      /bin/sleep 3600"), "%s", out);
    cr_expect(strstr(out, "exposes:   8080/tcp (published only by ports)"), "%s", out);
    free(out);
    /* one import, the others waited for it */
    char *all = NULL;
    size_t pulling = 0, importing = 0;
    static const char *const names[] = {"plain", "tuned", "own"};
    for (int i = 0; i < 3; i++) {
        char *ev = dd_events(&d, names[i]);
        pulling += (size_t)count(ev, "\"pulled\"");
        importing += (size_t)count(ev, "importing it");
        free(ev);
    }
    free(all);
    cr_expect_eq(pulling, 3, "each workload is told its image is there");
    cr_expect_eq(importing, 1, "the image was imported %zu times", importing);

    cr_assert_eq(dd_duet(&d, &out, "image ls"), 0, "%s", out);
    cr_expect(strstr(out, dd_env("DUET_OCI")) && strstr(out, "         3"), "one image, three workloads: %s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image inspect %s -o json", oci()), 0, "%s", out);
    cr_expect(strstr(out, "\"workingDir\": \"/srv\"") && strstr(out, "8080/tcp") && strstr(out, "own"), "%s", out);
    free(out);
    /* in use: refused, naming the users */
    cr_expect_neq(dd_duet(&d, &out, "image rm %s", oci()), 0);
    cr_expect(strstr(out, "used by") && strstr(out, "plain") && strstr(out, "tuned"), "%s", out);
    free(out);

    /* kill -9: the workloads keep running and are re-attached */
    dd_kill9(&d);
    dd_start(&d);
    dd_wait_field(&d, "plain", "state", "running", 30000);
    dd_wait_field(&d, "own", "state", "running", 30000);
    cr_assert_eq(dd_duet(&d, &out, "exec tuned -- cat /srv/hello.txt"), 0, "%s", out);
    cr_expect(strstr(out, "the second layer"), "%s", out);
    free(out);

    /* deleted: the image can go */
    cr_assert_eq(dd_duet(&d, &out, "delete plain tuned own --wait"), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image rm %s", oci()), 0, "%s", out);
    cr_expect(strstr(out, "removed sha256:"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image ls -o json"), 0, "%s", out);
    cr_expect(strstr(out, "\"images\": []"), "%s", out);
    free(out);
    dd_finish(&d);
}

Test(images, duet_run_takes_an_image_and_prune_removes_what_is_unused, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "run --rm --image %s", oci()), 0, "%s", out);
    cr_expect(strstr(out, "hello-from-oci from /srv as 1000"), "%s", out);
    free(out);
    /* CMD after -- replaces the image's Cmd; its Entrypoint (sh -c) stays */
    cr_assert_eq(dd_duet(&d, &out, "run --rm --image %s:base -- 'test -e /srv/hello.txt || echo one-layer; exit 7'",
                         oci()),
                 7, "%s", out);
    cr_expect(strstr(out, "one-layer"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image ls"), 0, "%s", out);
    cr_expect(strstr(out, ":base"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image prune"), 0, "%s", out);
    cr_expect_eq(count(out, "removed sha256:"), 2, "%s", out);
    free(out);
    dd_finish(&d);
}

Test(images, images_that_cannot_be_used_are_refused_with_their_cause, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    char *out;
    const char *m = dd_manifest(&d, "bad.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: reg}\nspec:\n"
                                "  image: {oci: \"Redis:7\"}\n"
                                "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: both}\nspec:\n"
                                "  image: {oci: \"%s\", rootfs: /tmp}\n  command: [/bin/true]\n",
                                oci());
    cr_expect_neq(dd_duet(&d, &out, "validate %s", m), 0);
    cr_expect(strstr(out, "bad.yaml:5:") && strstr(out, "repository component \"Redis\""), "%s", out);
    cr_expect(strstr(out, "is a whole image"), "%s", out);
    free(out);
    cr_expect_neq(dd_duet(&d, &out, "run --rm --image oci-layout:/nonexistent/layout"), 0);
    cr_expect(strstr(out, "/nonexistent/layout"), "%s", out);
    free(out);
    /* a copy of the layout whose layer blobs are damaged after their
     * digests were written down: refused, nothing kept */
    char copy[300];
    snprintf(copy, sizeof(copy), "%s/damaged", d.dir);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "cp -a %s %s && for b in %s/blobs/sha256/*; do "
             "if [ \"$(head -c2 $b | od -An -tx1 | tr -d ' ')\" = 1f8b ]; then "
             "printf X | dd of=$b bs=1 seek=100 conv=notrunc 2>/dev/null; fi; done",
             dd_env("DUET_OCI"), copy, copy);
    cr_assert_eq(system(cmd), 0);
    cr_expect_neq(dd_duet(&d, &out, "run --rm --image oci-layout:%s", copy), 0);
    cr_expect(strstr(out, "digest") || strstr(out, "not a readable layer") || strstr(out, "damaged"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image ls -o json"), 0, "%s", out);
    cr_expect(strstr(out, "\"images\": []"), "a damaged image was kept: %s", out);
    free(out);
    char layers[300];
    snprintf(layers, sizeof(layers), "%s/images/layers", d.state);
    cr_expect_eq(dd_count_dirs(layers), 0, "a layer that failed its digest was kept");
    dd_finish(&d);
}

/* duetd --max-image-size bounds what one import may unpack: an image
 * past it is refused with the option's name, and nothing of it is kept. */
Test(images, an_image_past_max_image_size_is_refused, .timeout = 120)
{
    struct dd d;
    dd_prepare(&d, NULL);
    d.extra[0] = "--max-image-size";
    d.extra[1] = "1Mi";   /* the busybox layer unpacks to about 2 MiB */
    dd_start(&d);
    char *out;
    cr_expect_neq(dd_duet(&d, &out, "image pull %s", oci()), 0, "%s", out);
    cr_expect(strstr(out, "more than 1 MiB") && strstr(out, "--max-image-size"), "%s", out);
    free(out);
    char layers[300];
    snprintf(layers, sizeof(layers), "%s/images/layers", d.state);
    cr_expect_eq(dd_count_dirs(layers), 0, "a layer past the bound was kept");
    cr_assert_eq(dd_duet(&d, &out, "image ls -o json"), 0, "%s", out);
    cr_expect(strstr(out, "\"images\": []"), "%s", out);
    free(out);
    dd_finish(&d);
    /* a bound that is not a size, or too small to hold anything */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "%s/duetd --max-image-size 100Ki --foreground 2>&1", dd_env("DUET_BUILD"));
    FILE *p = popen(cmd, "r");
    char buf[512] = "";
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    cr_expect_eq(WEXITSTATUS(pclose(p)), 2);
    cr_expect(strstr(buf, "--max-image-size 100Ki is not a size of 1Mi or more"), "%s", buf);
}

/* duet plan asks the daemon's store: what an image already there will run
 * (its config under the spec's command and args), and which images apply
 * will have to pull first; without a daemon it says it cannot tell. */
Test(images, plan_reads_the_store_and_says_what_would_be_pulled, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(&d, "plan.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: stored}\nspec:\n"
                                "  image: {oci: \"%s\"}\n  args: [\"echo it's here\"]\n"
                                "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: missing}\nspec:\n"
                                "  image: {oci: \"%s:base\"}\n",
                                oci(), oci());
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "image pull %s", oci()), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "plan -f %s", m), 0, "%s", out);
    cr_expect(strstr(out, "in duetd's store: sha256:"), "%s", out);
    cr_expect(strstr(out, "runs: /bin/sh -c 'echo it'\\''s here'"), "the image's Entrypoint, then args: %s", out);
    cr_expect(strstr(out, "missing: oci-layout:") && strstr(out, "not in duetd's store: apply pulls it first"), "%s",
              out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "plan -f %s -o json", m), 0, "%s", out);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    json_t *imgs = json_object_get(j, "images");
    cr_assert_eq(json_array_size(imgs), 2, "%s", out);
    json_t *a = json_array_get(imgs, 0), *b = json_array_get(imgs, 1);
    cr_expect(json_is_true(json_object_get(a, "in_store")));
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(a, "command"), 2)), "echo it's here");
    cr_expect(json_is_false(json_object_get(b, "in_store")));
    json_decref(j);
    free(out);
    /* planning pulls nothing */
    cr_assert_eq(dd_duet(&d, &out, "image ls"), 0);
    cr_expect(!strstr(out, ":base"), "plan pulled an image: %s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "--socket %s/nobody.sock plan -f %s", d.dir, m), 0, "%s", out);
    cr_expect(strstr(out, "no duetd answers on"), "%s", out);
    free(out);
    dd_finish(&d);
}

/* apply fetches the images of everything it creates at once: a workload
 * held back by its dependencies has its image in the store before they
 * are ready, not after. */
Test(images, apply_pulls_before_dependencies_are_ready, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    const char *m = dd_manifest(
        &d, "gated.yaml",
        "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: gate}\nspec:\n  image: {rootfs: %s}\n"
        "  command: [/bin/sleep, \"3600\"]\n  healthcheck: {exec: [/bin/test, -e, /never], interval: 1s}\n"
        "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: held}\nspec:\n  image: {oci: \"%s:base\"}\n"
        "  command: [/bin/sleep, \"3600\"]\n  dependsOn: [gate]\n",
        dd_env("DUET_ROOTFS"), oci());
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    uint64_t deadline = dd_now_ms() + 30000;
    bool pulled = false;
    while (!pulled && dd_now_ms() < deadline) {
        dd_duet(&d, &out, "image ls");
        pulled = strstr(out, ":base") != NULL;
        free(out);
        if (!pulled)
            usleep(200000);
    }
    cr_expect(pulled, "the held workload's image was not pulled while it waited");
    cr_expect(dd_field_is(&d, "held", "state", "pending"), "held started before gate was healthy");
    char *ev = dd_events(&d, "held");
    cr_expect(strstr(ev, "\"pulled\""), "%s", ev);
    free(ev);
    dd_finish(&d);
}

/* -o json for every image command, as for ls and inspect. */
Test(images, every_image_command_answers_in_json, .timeout = 60)
{
    struct dd d;
    dd_init(&d);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "image pull %s -o json", oci()), 0, "%s", out);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "not JSON: %s", out);
    cr_expect(!strncmp(json_string_value(json_object_get(j, "id")), "sha256:", 7), "%s", out);
    cr_expect_eq(json_array_size(json_object_get(j, "layers")), 2);
    char id[80];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")));
    json_decref(j);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image pull %s:base -o yaml", oci()), 0, "%s", out);
    cr_expect(strstr(out, "id: ") && strstr(out, "layers:"), "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image rm %s -o json", id), 0, "%s", out);
    j = json_loads(out, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(j, "removed")), id, "%s", out);
    json_decref(j);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image prune -o json"), 0, "%s", out);
    j = json_loads(out, 0, NULL);
    cr_expect_eq(json_array_size(json_object_get(j, "removed")), 1, "%s", out);
    json_decref(j);
    free(out);
    dd_finish(&d);
}
