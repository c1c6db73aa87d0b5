/*
 * Large files are parsed in slices on several threads.  What a user sees
 * must not change: positions are those of the whole file, documents keep
 * their order, and checks across documents see every slice.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "helpers.h"

#define DOCS 4000

/* Every document is 6 lines; document i starts at line 6*i+1. */
static char *fleet(int bad_doc, int dup_doc, int directive_doc)
{
    size_t cap = (size_t)DOCS * 320, o = 0;
    char *s = malloc(cap);
    for (int i = 0; i < DOCS; i++) {
        const char *mem = i == bad_doc ? "12Qi" : "64Mi";
        int name = i == dup_doc ? 5 : i;
        if (i == directive_doc)
            o += (size_t)snprintf(s + o, cap - o, "%%YAML 1.1\n");
        o += (size_t)snprintf(s + o, cap - o,
                              "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: w%d}\n"
                              "spec: {image: {rootfs: /r}, command: [/x], resources: {memory: %s}}\n"
                              "# padding padding padding padding padding padding padding padding padding\n",
                              name, mem);
    }
    return s;
}

Test(slices, positions_are_those_of_the_whole_file)
{
    char *s = fleet(3500, -1, -1);
    cr_assert_gt(strlen(s), 512u << 10, "big enough to be sliced");
    struct manifest_set *set = load_yaml(s);
    char buf[2048];
    cr_assert_eq(diag_count(&set->diags), 1, "%s", diags_text(set, buf, sizeof(buf)));
    cr_expect_eq(set->diags.v[0].line, 6 * 3500 + 5, "%s", diags_text(set, buf, sizeof(buf)));
    cr_expect_eq(set->diags.v[0].col, 64);
    cr_expect_eq(set->n_workloads, DOCS, "a workload with a bad field is still counted (its other checks run)");
    manifest_set_free(set);
    free(s);
}

Test(slices, order_and_cross_slice_checks)
{
    char *s = fleet(-1, 3900, -1);
    struct manifest_set *set = load_yaml(s);
    char buf[2048];
    cr_assert_eq(diag_count(&set->diags), 1, "%s", diags_text(set, buf, sizeof(buf)));
    cr_expect(has_diag(set, 6 * 3900 + 4, 18, "workload \"w5\" is defined twice; the first is at /srv/manifests/t.yaml:34:18"),
              "%s", diags_text(set, buf, sizeof(buf)));
    for (int i = 0; i < DOCS; i++) {
        char want[16];
        snprintf(want, sizeof(want), "w%d", i == 3900 ? 5 : i);
        cr_assert_str_eq(set->workloads[i]->name, want, "document %d out of order", i);
    }
    manifest_set_free(set);
    free(s);
}

Test(slices, directive_stays_with_its_document)
{
    /* A %YAML directive right before a marker near the middle: the slice
     * boundary must not fall between them. */
    for (int d = 1990; d < 2010; d++) {
        char *s = fleet(-1, -1, d);
        struct manifest_set *set = load_yaml(s);
        char buf[2048];
        cr_expect(manifest_set_ok(set), "directive before document %d: %s", d, diags_text(set, buf, sizeof(buf)));
        cr_expect_eq(set->n_workloads, DOCS);
        manifest_set_free(set);
        free(s);
    }
}
