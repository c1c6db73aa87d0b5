/*
 * test_store.c - the state store: rows survive a reopen (what a restarted
 * daemon reads), events keep their order and are trimmed, a damaged file
 * is refused with a message that says what to do.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/fsutil.h"
#include "orchestrator/store.h"

struct seen {
    int rows;
    char handle[64];
    bool deleted;
    int64_t last_exit;
    int64_t address;
};

static void on_row(void *opaque, const struct store_row *r)
{
    struct seen *s = opaque;
    s->rows++;
    snprintf(s->handle, sizeof(s->handle), "%s", r->handle ? r->handle : "(null)");
    s->deleted = r->deleted;
    s->last_exit = r->last_exit;
    s->address = r->address;
}

static void count_event(void *opaque, const struct store_event *e)
{
    int64_t *last = opaque;
    cr_expect_gt(e->id, *last, "events out of order");
    *last = e->id;
}

Test(store, rows_events_and_reopen)
{
    char dir[] = "/tmp/duet-store-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", dir);
    struct store *s;
    struct duet_err err = {0};
    cr_assert_eq(store_open(&s, path, &err), 0, "%s", err.msg);
    struct store_row r = {.name = "web", .generation = 3, .spec = "{}", .backend = "container", .placement = "{}",
                          .phase = "running", .inst_backend = "container", .handle = "123 456", .last_exit = -1};
    cr_assert_eq(store_put(s, &r, &err), 0, "%s", err.msg);
    r.handle = "789 1011";   /* a rewrite replaces the row */
    r.last_exit = 7;
    r.address = 0x0a580005;
    cr_assert_eq(store_put(s, &r, &err), 0);
    for (int i = 0; i < 2100; i++)
        cr_assert_gt(store_event_add(s, i, i % 2 ? "web" : NULL, "t", "m", &err), 0);
    store_close(s);

    cr_assert_eq(store_open(&s, path, &err), 0, "%s", err.msg);
    struct seen seen = {0};
    cr_assert_eq(store_load(s, on_row, &seen, &err), 0);
    cr_expect_eq(seen.rows, 1);
    cr_expect_str_eq(seen.handle, "789 1011");
    cr_expect_eq(seen.last_exit, 7);
    cr_expect_eq(seen.address, 0x0a580005, "the workload's address is kept");
    int64_t last = 0;
    cr_assert_eq(store_events(s, 2000, NULL, 1000, count_event, &last, &err), 0);
    cr_expect_eq(last, 2100);
    uint64_t ms, ovh, n;
    cr_expect_eq(store_measure_get(s, "vm", &ms, &ovh, &n), 0);
    cr_assert_eq(store_measure_put(s, "vm", 4200, 1 << 20, 3, &err), 0);
    cr_expect_eq(store_measure_get(s, "vm", &ms, &ovh, &n), 1);
    cr_expect_eq(ms, 4200);
    cr_assert_eq(store_delete(s, "web", &err), 0);
    seen.rows = 0;
    store_load(s, on_row, &seen, &err);
    cr_expect_eq(seen.rows, 0);
    store_close(s);

    /* A file that is not a database. */
    FILE *f = fopen(path, "w");
    fputs("this is not sqlite, this is a text file long enough to have a header..........................", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/state.db-wal", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/state.db", dir);
    cr_expect_eq(store_open(&s, path, &err), -1);
    cr_expect(strstr(err.msg, "move it away"), "%s", err.msg);
    duet_remove_tree(dir, NULL);
}

/* A store written before the later columns existed (as the first duetd
 * wrote it) opens, gains them with their defaults, and keeps its rows. */
Test(store, an_older_store_gains_the_new_columns)
{
    char dir[] = "/tmp/duet-store-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/state.db", dir);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db,
                              "CREATE TABLE workloads(name TEXT PRIMARY KEY, generation INTEGER NOT NULL, spec TEXT "
                              "NOT NULL, backend TEXT NOT NULL, placement TEXT NOT NULL, deleted INTEGER NOT NULL, "
                              "phase TEXT NOT NULL, inst_backend TEXT, inst_generation INTEGER NOT NULL, handle TEXT, "
                              "restarts INTEGER NOT NULL, last_exit INTEGER NOT NULL, last_signal INTEGER NOT NULL, "
                              "exited_at INTEGER NOT NULL, started_at INTEGER NOT NULL, created_at INTEGER NOT NULL, "
                              "message TEXT); INSERT INTO workloads VALUES('old', 1, '{}', 'container', '{}', 0, "
                              "'running', NULL, 0, NULL, 2, -1, 0, 0, 0, 0, NULL);",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    struct store *s;
    struct duet_err err = {0};
    cr_assert_eq(store_open(&s, path, &err), 0, "%s", err.msg);
    struct seen seen = {0};
    cr_assert_eq(store_load(s, on_row, &seen, &err), 0, "%s", err.msg);
    cr_expect_eq(seen.rows, 1);
    cr_expect_eq(seen.address, 0);
    store_close(s);
    duet_remove_tree(dir, NULL);
}
