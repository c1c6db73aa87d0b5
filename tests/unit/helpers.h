/* helpers.h - small helpers shared by the unit tests. */
#ifndef DUET_TEST_HELPERS_H
#define DUET_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifests/manifest.h"

/* A valid Workload document; tests append or replace lines. */
#define WL_HEAD "apiVersion: duet/v1\nkind: Workload\nmetadata:\n  name: web\nspec:\n"
#define WL_IMAGE "  image:\n    rootfs: /srv/rootfs\n  command: [\"/bin/true\"]\n"
#define WL_OK WL_HEAD WL_IMAGE

static inline struct manifest_set *load_yaml_as(const char *name, const char *yaml)
{
    struct manifest_set *set = manifest_set_new();
    manifest_set_load_buffer(set, name, yaml, strlen(yaml));
    manifest_set_validate(set);
    return set;
}

static inline struct manifest_set *load_yaml(const char *yaml)
{
    return load_yaml_as("/srv/manifests/t.yaml", yaml);
}

/* True when some diagnostic is at line:col (0 = any) and contains text. */
static inline bool has_diag(const struct manifest_set *set, unsigned line, unsigned col, const char *text)
{
    for (size_t i = 0; i < set->diags.n; i++) {
        const struct diag *d = &set->diags.v[i];
        if ((line == 0 || d->line == line) && (col == 0 || d->col == col) && strstr(d->msg, text))
            return true;
    }
    return false;
}

/* All diagnostics as one string, for failure messages. */
static inline const char *diags_text(const struct manifest_set *set, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < set->diags.n && o + 1 < len; i++) {
        int n = snprintf(buf + o, len - o, "[%u:%u %s] ", set->diags.v[i].line, set->diags.v[i].col,
                         set->diags.v[i].msg);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    return buf;
}

/* A fresh directory /tmp/PREFIX-XXXXXX for a test's files. */
static inline void tmp_root_make(char *root, size_t len, const char *prefix)
{
    snprintf(root, len, "/tmp/%s-XXXXXX", prefix);
    cr_assert_not_null(mkdtemp(root), "mkdtemp %s", root);
}

static inline int tmp_root_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Removes root and all under it, never crossing into a mount a failed
 * test left behind. */
static inline void tmp_root_remove(const char *root)
{
    if (root[0])
        nftw(root, tmp_root_rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

#endif
