/*
 * test_actions.c - duet stop, start and restart (docs/cli.md): a stopped
 * workload stays stopped (through an apply and a daemon restart) until it
 * is started; a restart is a fresh instance whatever the restart policy,
 * and not counted as a restart.
 */
#include "dtest.h"

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

Test(actions, stop_stays_stopped_until_start_and_restart_is_fresh, .timeout = 180)
{
    struct dd d;
    dd_init(&d);
    dd_apply_sleeper(&d, "a");
    char *h1 = dd_handle(&d, "a"), *out;

    cr_expect_eq(dd_duet(&d, &out, "stop a --wait"), 0, "%s", out);
    cr_expect(strstr(out, "a stopped"), "%s", out);
    free(out);
    cr_expect(dd_field_is(&d, "a", "state", "stopped"));
    cr_expect(dd_field_is(&d, "a", "stopped", "true"));
    cr_expect_eq(dd_count_procs(d.cgdir), 0, "a stopped workload has no process left");
    json_t *w = dd_workload(&d, "a");
    cr_expect(json_is_null(json_object_get(w, "instance")) || !json_object_get(w, "instance"), "no instance");
    json_decref(w);
    /* An apply of the same files leaves it stopped; so does a new daemon. */
    char m[256];
    snprintf(m, sizeof(m), "%s/a.yaml", d.dir);
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    dd_stop(&d);
    dd_start(&d);
    usleep(500000);
    cr_expect(dd_field_is(&d, "a", "state", "stopped"), "a new daemon started what was stopped");

    cr_expect_eq(dd_duet(&d, &out, "start a --wait"), 0, "%s", out);
    free(out);
    cr_expect(dd_field_is(&d, "a", "state", "running"));
    char *h2 = dd_handle(&d, "a");
    cr_expect_str_neq(h1, h2);

    cr_expect_eq(dd_duet(&d, &out, "restart a --wait"), 0, "%s", out);
    free(out);
    char *h3 = dd_handle(&d, "a");
    cr_expect(h3[0] && strcmp(h3, h2) != 0, "a restart makes a new instance: %s then %s", h2, h3);
    cr_expect_eq(dd_int(&d, "a", "restarts"), 0, "a restart asked for is not a failure's restart");
    char *ev = dd_events(&d, "a");
    cr_expect(strstr(ev, "restarted on request (duet restart)"), "%s", ev);
    cr_expect(strstr(ev, "stopped on request (duet stop)"), "%s", ev);
    free(ev);

    /* A workload that ran to its end is run again by a restart. */
    const char *c = dd_manifest(&d, "c.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: c}\nspec:\n"
                                "  image: {rootfs: %s}\n  command: [\"/bin/sh\", \"-c\", \"echo ran\"]\n"
                                "  restart: never\n",
                                dd_env("DUET_ROOTFS"));
    cr_expect_eq(dd_duet(&d, &out, "apply -f %s", c), 0, "%s", out);
    free(out);
    dd_wait_field(&d, "c", "state", "completed", 30000);
    cr_expect_eq(dd_duet(&d, &out, "restart c"), 0, "%s", out);
    free(out);
    uint64_t deadline = dd_now_ms() + 30000;
    for (;;) {
        ev = dd_events(&d, "c");
        int started = count(ev, "\"type\":\"started\"");
        free(ev);
        if (started >= 2 && dd_field_is(&d, "c", "state", "completed"))
            break;
        cr_assert_lt(dd_now_ms(), deadline, "c did not run again");
        usleep(100000);
    }

    /* What a user can get wrong. */
    cr_expect_eq(dd_duet(&d, &out, "stop nope"), 1, "%s", out);
    cr_expect(strstr(out, "no workload named nope"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "restart"), 2, "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "start '../x'"), 1, "%s", out);
    cr_expect(strstr(out, "is not a workload name"), "%s", out);
    free(out);
    /* A stopped workload is deleted like any other (dd_finish checks it goes). */
    cr_expect_eq(dd_duet(&d, &out, "stop a --wait"), 0, "%s", out);
    free(out);
    free(h1);
    free(h2);
    free(h3);
    dd_finish(&d);
}
