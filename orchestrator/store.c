/*
 * store.c - the state store on SQLite (see store.h).
 *
 * Statements are prepared once and reset after each use.  Text columns are
 * bound SQLITE_STATIC: every caller's strings outlive the step.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "store.h"

enum {
    ST_PUT,
    ST_DELETE,
    ST_LOAD,
    ST_EVENT_ADD,
    ST_EVENT_TRIM,
    ST_EVENTS,
    ST_EVENTS_WL,
    ST_MEASURE_GET,
    ST_MEASURE_PUT,
    ST_SETTING_GET,
    ST_SETTING_PUT,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
};

static const char *const sql_text[ST_COUNT] = {
    [ST_PUT] = "INSERT OR REPLACE INTO workloads(name, generation, spec, backend, placement, deleted, phase,"
               " inst_backend, inst_generation, handle, restarts, last_exit, last_signal, exited_at, started_at,"
               " created_at, message, rm, quick_failures, backoff_until, address, disk, disk_reset, delete_volumes,"
               " restore_from, temporary, kept, stopped, restart_asked)"
               " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_DELETE] = "DELETE FROM workloads WHERE name = ?",
    [ST_LOAD] = "SELECT name, generation, spec, backend, placement, deleted, phase, inst_backend, inst_generation,"
                " handle, restarts, last_exit, last_signal, exited_at, started_at, created_at, message, rm, quick_failures,"
                " backoff_until, address, disk, disk_reset, delete_volumes, restore_from, temporary, kept, stopped,"
                " restart_asked FROM workloads ORDER BY name",
    [ST_EVENT_ADD] = "INSERT INTO events(ts, workload, type, message) VALUES(?,?,?,?)",
    [ST_EVENT_TRIM] = "DELETE FROM events WHERE id <= ?",
    [ST_EVENTS] = "SELECT id, ts, workload, type, message FROM events WHERE id > ? ORDER BY id LIMIT ?",
    /* the newest `limit` of one workload, oldest first */
    [ST_EVENTS_WL] = "SELECT * FROM (SELECT id, ts, workload, type, message FROM events WHERE id > ? AND"
                     " workload = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
    [ST_MEASURE_GET] = "SELECT start_ms, overhead, samples FROM measurements WHERE backend = ?",
    [ST_MEASURE_PUT] = "INSERT OR REPLACE INTO measurements(backend, start_ms, overhead, samples) VALUES(?,?,?,?)",
    [ST_SETTING_GET] = "SELECT value FROM settings WHERE key = ?",
    [ST_SETTING_PUT] = "INSERT OR REPLACE INTO settings(key, value) VALUES(?,?)",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS workloads("
    " name TEXT PRIMARY KEY, generation INTEGER NOT NULL, spec TEXT NOT NULL, backend TEXT NOT NULL,"
    " placement TEXT NOT NULL, deleted INTEGER NOT NULL, phase TEXT NOT NULL, inst_backend TEXT,"
    " inst_generation INTEGER NOT NULL, handle TEXT, restarts INTEGER NOT NULL, last_exit INTEGER NOT NULL,"
    " last_signal INTEGER NOT NULL, exited_at INTEGER NOT NULL, started_at INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, message TEXT, rm INTEGER NOT NULL DEFAULT 0,"
    " quick_failures INTEGER NOT NULL DEFAULT 0, backoff_until INTEGER NOT NULL DEFAULT 0,"
    " address INTEGER NOT NULL DEFAULT 0, disk TEXT, disk_reset INTEGER NOT NULL DEFAULT 0,"
    " delete_volumes INTEGER NOT NULL DEFAULT 0, restore_from TEXT, temporary TEXT,"
    " kept INTEGER NOT NULL DEFAULT 0, stopped INTEGER NOT NULL DEFAULT 0,"
    " restart_asked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
    " workload TEXT, type TEXT NOT NULL, message TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS events_workload ON events(workload, id);"
    "CREATE TABLE IF NOT EXISTS measurements(backend TEXT PRIMARY KEY, start_ms INTEGER NOT NULL,"
    " overhead INTEGER NOT NULL, samples INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);";

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char path[4096];
    struct prom_hist write_latency;   /* seconds per statement that writes, commits included */
};

/* From a row written in a transaction (tens of microseconds) to a commit
 * waiting on a slow disk's fsync (a second and more). */
static const double write_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                      0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

static bool writes(int which)
{
    return which == ST_PUT || which == ST_DELETE || which == ST_EVENT_ADD || which == ST_EVENT_TRIM ||
           which == ST_MEASURE_PUT || which == ST_SETTING_PUT || which == ST_COMMIT;
}

const struct prom_hist *store_write_latency(const struct store *s)
{
    return &s->write_latency;
}

static int db_err(struct store *s, struct duet_err *err, const char *what)
{
    int code = sqlite3_errcode(s->db) == SQLITE_FULL ? ENOSPC : EIO;
    return duet_err_set(err, code, "state store %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

/* Columns added since the first store: a store written by an older duetd
 * gains them (with their defaults) instead of failing every statement. */
static int add_columns(struct store *s, char **msg)
{
    static const char *const cols[][2] = {
        {"rm", "INTEGER NOT NULL DEFAULT 0"},
        {"quick_failures", "INTEGER NOT NULL DEFAULT 0"},
        {"backoff_until", "INTEGER NOT NULL DEFAULT 0"},
        {"address", "INTEGER NOT NULL DEFAULT 0"},
        {"disk", "TEXT"},
        {"disk_reset", "INTEGER NOT NULL DEFAULT 0"},
        {"delete_volumes", "INTEGER NOT NULL DEFAULT 0"},
        {"restore_from", "TEXT"},
        {"temporary", "TEXT"},
        {"kept", "INTEGER NOT NULL DEFAULT 0"},
        {"stopped", "INTEGER NOT NULL DEFAULT 0"},
        {"restart_asked", "INTEGER NOT NULL DEFAULT 0"},
    };
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM pragma_table_info('workloads') WHERE name = ?", -1, &st, NULL) !=
            SQLITE_OK)
            return -1;
        sqlite3_bind_text(st, 1, cols[i][0], -1, SQLITE_STATIC);
        bool has = sqlite3_step(st) == SQLITE_ROW;
        sqlite3_finalize(st);
        if (has)
            continue;
        char sql[160];
        snprintf(sql, sizeof(sql), "ALTER TABLE workloads ADD COLUMN %s %s", cols[i][0], cols[i][1]);
        if (sqlite3_exec(s->db, sql, NULL, NULL, msg) != SQLITE_OK)
            return -1;
    }
    return 0;
}

int store_open(struct store **out, const char *path, struct duet_err *err)
{
    *out = NULL;
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        abort();
    snprintf(s->path, sizeof(s->path), "%s", path);
    prom_hist_init(&s->write_latency, write_bounds, sizeof(write_bounds) / sizeof(write_bounds[0]));
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        int rc = duet_err_set(err, EIO, "cannot open the state store %s: %s; check the state directory", path,
                              s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        free(s);
        return rc;
    }
    sqlite3_busy_timeout(s->db, 2000);
    char *msg = NULL;
    if (sqlite3_exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;", NULL,
                     NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK || add_columns(s, &msg) < 0) {
        int rc = duet_err_set(err, EIO, "state store %s: %s; it may be damaged: move it away to start afresh", path,
                              msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        store_close(s);
        return rc;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v2(s->db, sql_text[i], -1, &s->st[i], NULL) != SQLITE_OK) {
            int rc = db_err(s, err, "cannot prepare a statement");
            store_close(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s);
}

static int run(struct store *s, int which, struct duet_err *err, const char *what)
{
    sqlite3_stmt *st = s->st[which];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = sqlite3_step(st);
    if (writes(which)) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        prom_hist_observe(&s->write_latency, (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : db_err(s, err, what);
}

int store_begin(struct store *s, struct duet_err *err)
{
    return run(s, ST_BEGIN, err, "cannot begin a transaction");
}

int store_commit(struct store *s, struct duet_err *err)
{
    return run(s, ST_COMMIT, err, "cannot commit");
}

void store_rollback(struct store *s)
{
    struct duet_err ignored;
    run(s, ST_ROLLBACK, &ignored, "rollback");
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

int store_put(struct store *s, const struct store_row *r, struct duet_err *err)
{
    sqlite3_stmt *st = s->st[ST_PUT];
    bind_text(st, 1, r->name);
    sqlite3_bind_int64(st, 2, r->generation);
    bind_text(st, 3, r->spec);
    bind_text(st, 4, r->backend);
    bind_text(st, 5, r->placement);
    sqlite3_bind_int(st, 6, r->deleted);
    bind_text(st, 7, r->phase);
    bind_text(st, 8, r->inst_backend);
    sqlite3_bind_int64(st, 9, r->inst_generation);
    bind_text(st, 10, r->handle);
    sqlite3_bind_int64(st, 11, r->restarts);
    sqlite3_bind_int64(st, 12, r->last_exit);
    sqlite3_bind_int64(st, 13, r->last_signal);
    sqlite3_bind_int64(st, 14, r->exited_at);
    sqlite3_bind_int64(st, 15, r->started_at);
    sqlite3_bind_int64(st, 16, r->created_at);
    bind_text(st, 17, r->message);
    sqlite3_bind_int(st, 18, r->rm);
    sqlite3_bind_int64(st, 19, r->quick_failures);
    sqlite3_bind_int64(st, 20, r->backoff_until);
    sqlite3_bind_int64(st, 21, r->address);
    bind_text(st, 22, r->disk);
    sqlite3_bind_int(st, 23, r->disk_reset);
    sqlite3_bind_int(st, 24, r->delete_volumes);
    bind_text(st, 25, r->restore_from);
    bind_text(st, 26, r->temporary);
    sqlite3_bind_int(st, 27, r->kept);
    sqlite3_bind_int(st, 28, r->stopped);
    sqlite3_bind_int(st, 29, r->restart_asked);
    return run(s, ST_PUT, err, "cannot write a workload");
}

int store_delete(struct store *s, const char *name, struct duet_err *err)
{
    bind_text(s->st[ST_DELETE], 1, name);
    return run(s, ST_DELETE, err, "cannot delete a workload");
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

int store_load(struct store *s, void (*cb)(void *opaque, const struct store_row *r), void *opaque,
               struct duet_err *err)
{
    sqlite3_stmt *st = s->st[ST_LOAD];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_row r = {
            .name = col_text(st, 0),
            .generation = sqlite3_column_int64(st, 1),
            .spec = col_text(st, 2),
            .backend = col_text(st, 3),
            .placement = col_text(st, 4),
            .deleted = sqlite3_column_int(st, 5) != 0,
            .phase = col_text(st, 6),
            .inst_backend = col_text(st, 7),
            .inst_generation = sqlite3_column_int64(st, 8),
            .handle = col_text(st, 9),
            .restarts = sqlite3_column_int64(st, 10),
            .last_exit = sqlite3_column_int64(st, 11),
            .last_signal = sqlite3_column_int64(st, 12),
            .exited_at = sqlite3_column_int64(st, 13),
            .started_at = sqlite3_column_int64(st, 14),
            .created_at = sqlite3_column_int64(st, 15),
            .message = col_text(st, 16),
            .rm = sqlite3_column_int(st, 17) != 0,
            .quick_failures = sqlite3_column_int64(st, 18),
            .backoff_until = sqlite3_column_int64(st, 19),
            .address = sqlite3_column_int64(st, 20),
            .disk = col_text(st, 21),
            .disk_reset = sqlite3_column_int(st, 22) != 0,
            .delete_volumes = sqlite3_column_int(st, 23) != 0,
            .restore_from = col_text(st, 24),
            .temporary = col_text(st, 25),
            .kept = sqlite3_column_int(st, 26) != 0,
            .stopped = sqlite3_column_int(st, 27) != 0,
            .restart_asked = sqlite3_column_int(st, 28) != 0,
        };
        cb(opaque, &r);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_err(s, err, "cannot read the workloads");
}

int64_t store_event_add(struct store *s, int64_t ts, const char *workload, const char *type, const char *message,
                        struct duet_err *err)
{
    sqlite3_stmt *st = s->st[ST_EVENT_ADD];
    sqlite3_bind_int64(st, 1, ts);
    bind_text(st, 2, workload);
    bind_text(st, 3, type);
    bind_text(st, 4, message);
    if (run(s, ST_EVENT_ADD, err, "cannot record an event") < 0)
        return -1;
    int64_t id = sqlite3_last_insert_rowid(s->db);
    /* Trimmed in steps, not on every insert. */
    if (id % 1000 == 0 && id > STORE_EVENTS_KEEP) {
        sqlite3_bind_int64(s->st[ST_EVENT_TRIM], 1, id - STORE_EVENTS_KEEP);
        run(s, ST_EVENT_TRIM, err, "cannot trim events");
    }
    return id;
}

int store_events(struct store *s, int64_t since, const char *workload, int limit,
                 void (*cb)(void *opaque, const struct store_event *e), void *opaque, struct duet_err *err)
{
    sqlite3_stmt *st = s->st[workload ? ST_EVENTS_WL : ST_EVENTS];
    sqlite3_bind_int64(st, 1, since);
    if (workload) {
        bind_text(st, 2, workload);
        sqlite3_bind_int(st, 3, limit);
    } else {
        sqlite3_bind_int(st, 2, limit);
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_event e = {.id = sqlite3_column_int64(st, 0),
                                .ts = sqlite3_column_int64(st, 1),
                                .workload = col_text(st, 2),
                                .type = col_text(st, 3),
                                .message = col_text(st, 4)};
        cb(opaque, &e);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : db_err(s, err, "cannot read events");
}

int store_measure_get(struct store *s, const char *backend, uint64_t *start_ms, uint64_t *overhead,
                      uint64_t *samples)
{
    sqlite3_stmt *st = s->st[ST_MEASURE_GET];
    bind_text(st, 1, backend);
    int found = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *start_ms = (uint64_t)sqlite3_column_int64(st, 0);
        *overhead = (uint64_t)sqlite3_column_int64(st, 1);
        *samples = (uint64_t)sqlite3_column_int64(st, 2);
        found = 1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return found;
}

int store_measure_put(struct store *s, const char *backend, uint64_t start_ms, uint64_t overhead, uint64_t samples,
                      struct duet_err *err)
{
    sqlite3_stmt *st = s->st[ST_MEASURE_PUT];
    bind_text(st, 1, backend);
    sqlite3_bind_int64(st, 2, (int64_t)start_ms);
    sqlite3_bind_int64(st, 3, (int64_t)overhead);
    sqlite3_bind_int64(st, 4, (int64_t)samples);
    return run(s, ST_MEASURE_PUT, err, "cannot record a measurement");
}

int store_setting_get(struct store *s, const char *key, char *buf, size_t len)
{
    sqlite3_stmt *st = s->st[ST_SETTING_GET];
    bind_text(st, 1, key);
    int found = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        if (v && strlen((const char *)v) < len) {
            snprintf(buf, len, "%s", (const char *)v);
            found = 1;
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return found;
}

int store_setting_put(struct store *s, const char *key, const char *value, struct duet_err *err)
{
    sqlite3_stmt *st = s->st[ST_SETTING_PUT];
    bind_text(st, 1, key);
    bind_text(st, 2, value);
    return run(s, ST_SETTING_PUT, err, "cannot record a setting");
}

int64_t store_events_last(struct store *s)
{
    sqlite3_stmt *st;
    int64_t id = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT COALESCE(MAX(id), 0) FROM events", -1, &st, NULL) != SQLITE_OK)
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return id;
}
