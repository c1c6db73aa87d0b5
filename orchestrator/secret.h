/*
 * secret.h - where duetd keeps secrets' values (docs/secrets.md).
 *
 * A workload's spec names its secrets (manifest.h, struct wl_secret); the
 * values live here, apart from the spec, so that the store (state.db),
 * the API, events and backups hold references only:
 *
 *   STATE/secrets/            0700, root's
 *     key                     32 random bytes: the key of the versions
 *     named/NAME              a stored secret (duet secret set NAME)
 *     sealed/VERSION          a value a spec was applied with
 *
 * Sealing (when duetd takes a spec: apply, run, a stored secret's change)
 * copies each value the spec uses to sealed/VERSION and writes VERSION
 * into the spec: HMAC-SHA256 under `key`, so the spec changes exactly when
 * a value does (apply then replaces the workload) while the store holds
 * nothing a password could be guessed back from.  An instance's run spec
 * is filled from sealed/ (secret_store_fill), so it runs with what was
 * applied even after the file it came from changed or went; seals no spec
 * uses any more are removed (secret_store_gc).  Every file is 0600 and
 * written whole before it is used (a temporary file renamed).
 */
#ifndef DUET_ORCH_SECRET_H
#define DUET_ORCH_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/err.h"
#include "common/strmap.h"
#include "manifests/manifest.h"

struct secret_store;

struct secret_info {
    char name[64];
    uint64_t size;
    int64_t updated_ms;
};

/* Opens (making it when missing) STATE/secrets; NULL with err. */
struct secret_store *secret_store_new(const char *state_dir, struct duet_err *err);
void secret_store_free(struct secret_store *s);

/* Seals the secrets of the workloads of set that `only` names (name ->
 * anything; NULL: all): each gets its version, and with write its value
 * a sealed copy (without, for a dry run, nothing is written).  A stored
 * secret that is not set, or a sealed value gone from a spec the store
 * held, is a diagnostic at the secret.  Versions are written into set's
 * arena. */
void secret_store_seal(struct secret_store *s, struct manifest_set *set, const struct strmap *only, bool write);

/* r (a run spec in arena a) gets its secrets' values from their seals:
 * env secrets become variables, file secrets carry their bytes.  -1 with
 * err (naming the workload and secret, never the value). */
int secret_store_fill(struct secret_store *s, struct arena *a, struct workload_spec *r, struct duet_err *err);

/* Stored secrets.  set: *changed tells whether the value differs from
 * the one it replaced (a new secret is changed). */
int secret_store_set(struct secret_store *s, const char *name, const void *value, size_t len, bool *changed,
                     struct duet_err *err);
/* 0, or -1 with ENOENT when there is no such secret. */
int secret_store_remove(struct secret_store *s, const char *name, struct duet_err *err);
bool secret_store_has(struct secret_store *s, const char *name);
/* All stored secrets, by name; *out is the caller's to free. */
int secret_store_list(struct secret_store *s, struct secret_info **out, size_t *n, struct duet_err *err);

/* Removes the seals whose versions are not keys of keep. */
void secret_store_gc(struct secret_store *s, const struct strmap *keep);

#endif
