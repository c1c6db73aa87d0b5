/*
 * test_cloudinit.c - the NoCloud seed as a guest sees it.  The ISO image
 * is read back by libarchive's ISO 9660 reader, with its Joliet tree and
 * without it (the two trees a guest's kernel may read), and blkid must
 * find the label cloud-init looks for.  (The boot of a real cloud-init
 * guest in the daemon suite is the test of a guest's own reader.)  Names
 * and volume ids outside what the writer allows are refused, never
 * written.
 */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/vm/cloudinit.h"
#include "backends/vm/iso9660.h"
#include "helpers.h"

static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    pclose(p);
    while (n && buf[n - 1] == '\n')
        buf[--n] = '\0';
    return strdup(buf);
}

#define DISC_MAX 16
struct disc {
    char name[DISC_MAX][64];
    char *data[DISC_MAX];
    size_t len[DISC_MAX];
    time_t mtime[DISC_MAX];
    size_t n;
    char names[1024];        /* every name, each followed by a space */
};

/* Reads every file of the image at path; joliet false: the primary
 * tree only. */
static void disc_read(const char *path, bool joliet, struct disc *d)
{
    memset(d, 0, sizeof(*d));
    struct archive *a = archive_read_new();
    archive_read_support_format_iso9660(a);
    cr_assert_eq(archive_read_set_format_option(a, "iso9660", "rockridge", NULL), ARCHIVE_OK);
    if (!joliet)
        cr_assert_eq(archive_read_set_format_option(a, "iso9660", "joliet", NULL), ARCHIVE_OK);
    cr_assert_eq(archive_read_open_filename(a, path, 10240), ARCHIVE_OK, "%s", archive_error_string(a));
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (archive_entry_filetype(e) != AE_IFREG)
            continue;
        cr_assert_lt(d->n, DISC_MAX);
        size_t i = d->n++;
        snprintf(d->name[i], sizeof(d->name[i]), "%s", archive_entry_pathname(e));
        d->len[i] = (size_t)archive_entry_size(e);
        d->mtime[i] = archive_entry_mtime(e);
        d->data[i] = malloc(d->len[i] + 1);
        cr_assert_eq(archive_read_data(a, d->data[i], d->len[i]), (la_ssize_t)d->len[i]);
        d->data[i][d->len[i]] = '\0';
    }
    cr_assert_eq(r, ARCHIVE_EOF, "%s", archive_error_string(a));
    /* libarchive gives files in the order of their data; names is sorted */
    size_t idx[DISC_MAX];
    for (size_t i = 0; i < d->n; i++) {
        size_t j = i;
        for (; j > 0 && strcmp(d->name[idx[j - 1]], d->name[i]) > 0; j--)
            idx[j] = idx[j - 1];
        idx[j] = i;
    }
    for (size_t i = 0; i < d->n; i++) {
        size_t o = strlen(d->names);
        snprintf(d->names + o, sizeof(d->names) - o, "%s ", d->name[idx[i]]);
    }
    archive_read_free(a);
}

static const char *disc_file(const struct disc *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->name[i], name))
            return d->data[i];
    return NULL;
}

static void disc_free(struct disc *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->data[i]);
}

struct iso_dir {
    char dir[64], file[96];
};

static void iso_dir_new(struct iso_dir *d)
{
    snprintf(d->dir, sizeof(d->dir), "/tmp/duet-iso-XXXXXX");
    cr_assert_not_null(mkdtemp(d->dir));
    snprintf(d->file, sizeof(d->file), "%s/seed.iso", d->dir);
}

static void iso_dir_free(struct iso_dir *d)
{
    unlink(d->file);
    rmdir(d->dir);
}

Test(cloudinit, an_iso_reads_back_with_and_without_joliet)
{
    struct iso_dir d;
    iso_dir_new(&d);
    /* a file over one sector, one of exactly one, an empty one, names
     * given out of order */
    char *big = malloc(5000);
    for (int i = 0; i < 5000; i++)
        big[i] = (char)('a' + i % 26);
    char one[2048];
    memset(one, 'x', sizeof(one));
    struct iso_file files[] = {
        {"user-data", big, 5000},
        {"meta-data", "instance-id: x\n", 15},
        {"network-config", one, sizeof(one)},
        {"empty", "", 0},
        {"a.b_c", "dot\n", 4},
    };
    int fd = open(d.file, O_WRONLY | O_CREAT | O_EXCL, 0644);
    struct duet_err err = {0};
    cr_assert_eq(iso_write(fd, "cidata", files, 5, 1700000000, &err), 0, "%s", err.msg);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "blkid -o value -s LABEL %s", d.file);
    char *label = run(cmd);
    cr_expect_str_eq(label, "cidata", "the label cloud-init looks for");
    free(label);
    snprintf(cmd, sizeof(cmd), "blkid -o value -s TYPE %s", d.file);
    char *type = run(cmd);
    cr_expect_str_eq(type, "iso9660");
    free(type);

    /* Joliet: the names as given */
    struct disc disc;
    disc_read(d.file, true, &disc);
    cr_expect_str_eq(disc.names, "a.b_c empty meta-data network-config user-data ");
    const char *s = disc_file(&disc, "user-data");
    cr_assert_not_null(s, "no user-data on the disc");
    cr_expect_eq(strlen(s), 5000);
    cr_expect(memcmp(s, big, 5000) == 0, "user-data changed on the disc");
    cr_expect_str_eq(disc_file(&disc, "meta-data"), "instance-id: x\n");
    s = disc_file(&disc, "network-config");
    cr_expect(s && strlen(s) == 2048 && s[2047] == 'x');
    cr_expect_str_eq(disc_file(&disc, "empty"), "");
    cr_expect_str_eq(disc_file(&disc, "a.b_c"), "dot\n");
    for (size_t i = 0; i < disc.n; i++)
        cr_expect_eq(disc.mtime[i], 1700000000, "the time every record carries");
    disc_free(&disc);
    /* the primary tree alone, as a reader without Joliet sees it: the
     * ISO 9660 spelling, which Linux shows in lower case */
    disc_read(d.file, false, &disc);
    cr_expect_str_eq(disc.names, "A.B_C EMPTY META-DATA NETWORK-CONFIG USER-DATA ");
    cr_expect_str_eq(disc_file(&disc, "META-DATA"), "instance-id: x\n");
    disc_free(&disc);
    free(big);
    iso_dir_free(&d);
}

Test(cloudinit, names_and_labels_outside_the_sets_are_refused)
{
    static const char *const bad_names[] = {"", ".", "..", "User-Data", "a/b", "../x", "a b", "x;1", "\xc3\xa9",
                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" /* 33 */};
    int fd = open("/dev/null", O_WRONLY);
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        struct iso_file f = {bad_names[i], "x", 1};
        struct duet_err err = {0};
        cr_expect_eq(iso_write(fd, "cidata", &f, 1, 0, &err), -1, "name \"%s\" was written", bad_names[i]);
        cr_expect(strstr(err.msg, "is not 1 to"), "%s", err.msg);
    }
    static const char *const bad_labels[] = {"", "ci data", "ci-data", "aaaaaaaaaaaaaaaaa" /* 17 */, "c\n"};
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        struct iso_file f = {"x", "x", 1};
        struct duet_err err = {0};
        cr_expect_eq(iso_write(fd, bad_labels[i], &f, 1, 0, &err), -1, "label \"%s\" was written", bad_labels[i]);
    }
    struct iso_file twice[] = {{"x", "a", 1}, {"x", "b", 1}};
    struct duet_err err = {0};
    cr_expect_eq(iso_write(fd, "cidata", twice, 2, 0, &err), -1);
    cr_expect(strstr(err.msg, "twice"), "%s", err.msg);
    struct iso_file many[ISO_MAX_FILES + 1];
    char names[ISO_MAX_FILES + 1][16];
    for (int i = 0; i <= ISO_MAX_FILES; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        many[i] = (struct iso_file){names[i], "", 0};
    }
    cr_expect_eq(iso_write(fd, "cidata", many, ISO_MAX_FILES + 1, 0, &err), -1);
    close(fd);
}

/* A workload's seed: its name in meta-data, the fleet address as
 * network-config v2 by default, the user's files as given. */
Test(cloudinit, a_seed_names_the_workload_and_its_address)
{
    char buf[4096];
    struct manifest_set *set = load_yaml(WL_HEAD "  image: {disk: /srv/debian.qcow2}\n");
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    struct vm_seed_net net = {"10.88.0.7", "10.88.0.1", "10.88.0.1", 16, "02:64:0a:58:00:07"};
    struct vm_seed_files f;
    struct duet_err err = {0};
    cr_assert_eq(vm_seed_files_make(set->workloads[0], &net, &f, &err), 0, "%s", err.msg);
    cr_expect_str_eq(f.meta_data, "instance-id: \"duet-web\"\nlocal-hostname: \"web\"\n");
    cr_expect_str_eq(f.user_data, "#cloud-config\n{}\n");
    cr_assert_not_null(f.network_config);
    cr_expect(strstr(f.network_config, "version: 2\n"), "%s", f.network_config);
    cr_expect(strstr(f.network_config, "macaddress: \"02:64:0a:58:00:07\""), "%s", f.network_config);
    cr_expect(strstr(f.network_config, "addresses: [\"10.88.0.7/16\"]"), "%s", f.network_config);
    cr_expect(strstr(f.network_config, "gateway4: \"10.88.0.1\""), "%s", f.network_config);
    cr_expect(strstr(f.network_config, "nameservers:\n      addresses: [\"10.88.0.1\"]"), "%s", f.network_config);
    vm_seed_files_free(&f);
    /* no NIC: no network-config */
    cr_assert_eq(vm_seed_files_make(set->workloads[0], NULL, &f, &err), 0);
    cr_expect_null(f.network_config);
    vm_seed_files_free(&f);
    manifest_set_free(set);

    set = load_yaml(WL_HEAD "  image: {disk: /srv/debian.qcow2}\n  cloudInit:\n    userData: \"#!/bin/sh\\necho hi\\n\"\n"
                            "    networkConfig: \"version: 1\\nconfig: []\\n\"\n");
    cr_assert(manifest_set_ok(set), "%s", diags_text(set, buf, sizeof(buf)));
    cr_assert_eq(vm_seed_files_make(set->workloads[0], &net, &f, &err), 0);
    cr_expect_str_eq(f.user_data, "#!/bin/sh\necho hi\n");
    cr_expect_str_eq(f.network_config, "version: 1\nconfig: []\n", "the user's network config replaces duet's");
    vm_seed_files_free(&f);

    /* volumes: their virtiofs tags, for the guest's own init to mount */
    struct manifest_set *vset = load_yaml(WL_HEAD "  image: {disk: /srv/debian.qcow2}\n"
                                                  "  volumes:\n    - {source: /srv/a, target: /var/lib/data}\n"
                                                  "    - {source: /srv/b, target: '/x\"\\ninjected: true\\', readOnly: true}\n");
    cr_assert(manifest_set_ok(vset), "%s", diags_text(vset, buf, sizeof(buf)));
    cr_assert_eq(vm_seed_files_make(vset->workloads[0], NULL, &f, &err), 0);
    /* the target's quote and backslashes stay inside its one value */
    cr_expect_str_eq(f.meta_data,
                     "instance-id: \"duet-web\"\nlocal-hostname: \"web\"\nduet_volumes:\n"
                     "  - tag: \"duet0\"\n    target: \"/var/lib/data\"\n    readOnly: false\n"
                     "  - tag: \"duet1\"\n    target: \"/x\\\"\\\\ninjected: true\\\\\"\n    readOnly: true\n");
    vm_seed_files_free(&f);
    manifest_set_free(vset);

    /* the whole seed on a disc, and never over an existing file */
    struct iso_dir d;
    iso_dir_new(&d);
    cr_assert_eq(vm_seed_write(d.file, set->workloads[0], &net, 0, &err), 0, "%s", err.msg);
    cr_expect_eq(vm_seed_write(d.file, set->workloads[0], &net, 0, &err), -1);
    cr_expect(strstr(err.msg, "cannot create its cloud-init seed"), "%s", err.msg);
    struct disc disc;
    disc_read(d.file, true, &disc);
    cr_expect_str_eq(disc.names, "meta-data network-config user-data ");
    cr_expect_str_eq(disc_file(&disc, "user-data"), "#!/bin/sh\necho hi\n");
    cr_expect_str_eq(disc_file(&disc, "network-config"), "version: 1\nconfig: []\n");
    cr_expect(strstr(disc_file(&disc, "meta-data"), "local-hostname: \"web\""));
    disc_free(&disc);
    iso_dir_free(&d);
    manifest_set_free(set);
}
