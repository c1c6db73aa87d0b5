/*
 * The image store on real files: references (with hostile ones), layers
 * unpacked by root from tars the tests write (whiteouts, and every way a
 * layer tries to reach outside itself), OCI layouts and docker archives
 * imported, shared layers, roots mounted as overlays, removal.
 */
#include <archive.h>
#include <archive_entry.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/fsutil.h"
#include "common/signame.h"
#include "images/digest.h"
#include "images/ref.h"
#include "images/store.h"
#include "images/unpack.h"
#include "orchestrator/image.h"

/* ---- references ------------------------------------------------------------- */

static void expect_ref(const char *in, const char *canon)
{
    struct image_ref r;
    struct duet_err err = {0};
    cr_assert_eq(image_ref_parse(in, &r, &err), 0, "%s: %s", in, err.msg);
    char buf[IMAGE_REF_MAX + PATH_MAX];
    image_ref_format(&r, buf, sizeof(buf));
    cr_expect_str_eq(buf, canon, "%s", in);
}

static void expect_bad_ref(const char *in, const char *needle)
{
    struct image_ref r;
    struct duet_err err = {0};
    cr_expect_eq(image_ref_parse(in, &r, &err), -1, "%s was accepted", in);
    cr_expect(strstr(err.msg, needle), "%s: %s", in, err.msg);
}

Test(images, references_are_normalised_as_docker_does)
{
    expect_ref("busybox", "docker.io/library/busybox:latest");
    expect_ref("redis:7", "docker.io/library/redis:7");
    expect_ref("grafana/grafana", "docker.io/grafana/grafana:latest");
    expect_ref("index.docker.io/library/postgres:16", "docker.io/library/postgres:16");
    expect_ref("localhost:5000/x", "localhost:5000/x:latest");
    expect_ref("registry.example:5000/team/app@sha256:" "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
               "registry.example:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    expect_ref("oci-layout:/srv/img", "oci-layout:/srv/img");
    expect_ref("oci-layout:/srv/img:v1.2", "oci-layout:/srv/img:v1.2");
    expect_ref("oci-layout:/srv/a:b/img", "oci-layout:/srv/a:b/img");
    expect_ref("docker-archive:/tmp/x.tar", "docker-archive:/tmp/x.tar");
}

Test(images, hostile_references_are_refused)
{
    expect_bad_ref("", "empty");
    expect_bad_ref("Busybox", "repository component");
    expect_bad_ref("a/../b", "repository component");
    expect_bad_ref("busybox:-x", "tag");
    expect_bad_ref("busybox@sha256:abc", "digest");
    expect_bad_ref("https://registry/x", "no scheme");
    expect_bad_ref("reg.example:99999/x", "registry");
    expect_bad_ref("bad\nref", "control character");
    expect_bad_ref("oci-layout:", "directory");
    expect_bad_ref("docker-archive:", "file");
    char long_ref[2000];
    memset(long_ref, 'a', sizeof(long_ref) - 1);
    long_ref[sizeof(long_ref) - 1] = '\0';
    expect_bad_ref(long_ref, "longer than");
}

/* ---- layers ------------------------------------------------------------------ */

struct ent {
    const char *path;
    mode_t type;          /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, or 0 for a hard link */
    mode_t perm;
    const char *data;     /* file content, symlink or hard link target */
    const char *xattr;    /* name=value, or NULL */
};

/* A tar of the entries into path, compressed by filter ("gzip", "zstd", or NULL). */
static void write_tar(const char *path, const char *filter, const struct ent *e, size_t n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (filter && !strcmp(filter, "gzip"))
        archive_write_add_filter_gzip(a);
    else if (filter && !strcmp(filter, "zstd"))
        cr_assert_eq(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    cr_assert_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e[i].path);
        archive_entry_set_uid(ae, 0);
        archive_entry_set_gid(ae, 0);
        if (e[i].type == 0) {
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_perm(ae, 0644);
            archive_entry_set_hardlink(ae, e[i].data);
        } else {
            archive_entry_set_filetype(ae, e[i].type);
            archive_entry_set_perm(ae, e[i].perm ? e[i].perm : (e[i].type == AE_IFDIR ? 0755 : 0644));
            if (e[i].type == AE_IFLNK)
                archive_entry_set_symlink(ae, e[i].data);
            if (e[i].type == AE_IFCHR)
                archive_entry_set_rdev(ae, makedev(1, 3));
            if (e[i].type == AE_IFREG && e[i].data)
                archive_entry_set_size(ae, (la_int64_t)strlen(e[i].data));
        }
        if (e[i].xattr) {
            const char *eq = strchr(e[i].xattr, '=');
            char name[128];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - e[i].xattr), e[i].xattr);
            archive_entry_xattr_add_entry(ae, name, eq + 1, strlen(eq + 1));
        }
        cr_assert_eq(archive_write_header(a, ae), ARCHIVE_OK, "%s", archive_error_string(a));
        if (e[i].type == AE_IFREG && e[i].data)
            archive_write_data(a, e[i].data, strlen(e[i].data));
        archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
}

struct lt {
    char dir[64];      /* scratch */
    char tar[128];
    char into[128];    /* the layer's directory */
    char outside[128]; /* beside it: nothing may appear here */
};

static void lt_init(struct lt *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/duet-img-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    snprintf(t->tar, sizeof(t->tar), "%s/layer.tar", t->dir);
    snprintf(t->into, sizeof(t->into), "%s/into", t->dir);
    snprintf(t->outside, sizeof(t->outside), "%s/outside", t->dir);
    cr_assert_eq(mkdir(t->into, 0755), 0);
    cr_assert_eq(mkdir(t->outside, 0755), 0);
}

static void lt_fini(struct lt *t)
{
    /* nothing escaped */
    char p[256];
    snprintf(p, sizeof(p), "%s/pwned", t->outside);
    cr_expect_neq(access(p, F_OK), 0, "a layer wrote outside its directory");
    duet_remove_tree(t->dir, NULL);
}

static int unpack(struct lt *t, const char *digest, struct duet_err *err)
{
    int fd = open(t->tar, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    struct unpack_limits lim = {.max_bytes = 1 << 20, .max_entries = 1000};
    int rc = image_layer_unpack(fd, digest, 0, t->into, &lim, NULL, err);
    close(fd);
    return rc;
}

static char *slurp_at(const char *dir, const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

Test(images, a_layer_unpacks_with_whiteouts_in_overlay_form)
{
    static const char *const filters[] = {NULL, "gzip", "zstd"};
    for (size_t k = 0; k < 3; k++) {
        struct lt t;
        lt_init(&t);
        struct ent e[] = {
            {"./", AE_IFDIR, 0755, NULL, NULL},
            {"etc/", AE_IFDIR, 0755, NULL, NULL},
            {"etc/hostname", AE_IFREG, 0644, "box\n", NULL},
            {"bin/su", AE_IFREG, 04755, "#!/bin/sh\n", NULL},
            {"bin/sh", AE_IFLNK, 0777, "/bin/busybox", NULL},
            {"etc/hosts2", 0, 0, "etc/hostname", NULL},
            {"etc/.wh.motd", AE_IFREG, 0644, "", NULL},
            {"var/cache/.wh..wh..opq", AE_IFREG, 0644, "", NULL},
            {"etc/cap", AE_IFREG, 0644, "x", "trusted.overlay.opaque=y"},
            {"/etc/absolute", AE_IFREG, 0644, "inside\n", NULL},
        };
        write_tar(t.tar, filters[k], e, sizeof(e) / sizeof(e[0]));
        char digest[DIGEST_STR];
        int fd = open(t.tar, O_RDONLY);
        cr_assert_eq(digest_of_fd(fd, digest, NULL, NULL), 0);
        close(fd);
        struct duet_err err = {0};
        cr_assert_eq(unpack(&t, digest, &err), 0, "%s: %s", filters[k] ? filters[k] : "plain", err.msg);
        cr_expect_str_eq(slurp_at(t.into, "etc/hostname"), "box\n");
        cr_expect_str_eq(slurp_at(t.into, "etc/hosts2"), "box\n", "the hard link");
        cr_expect_str_eq(slurp_at(t.into, "etc/absolute"), "inside\n", "a name with a leading / is the layer's");
        struct stat st;
        char p[256];
        snprintf(p, sizeof(p), "%s/bin/su", t.into);
        cr_assert_eq(stat(p, &st), 0);
        cr_expect_eq(st.st_mode & 07777, 04755, "setuid kept: %o", st.st_mode & 07777);
        snprintf(p, sizeof(p), "%s/etc/motd", t.into);
        cr_assert_eq(lstat(p, &st), 0, "no whiteout for etc/motd");
        cr_expect(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0), "etc/motd is overlayfs's whiteout");
        snprintf(p, sizeof(p), "%s/etc/.wh.motd", t.into);
        cr_expect_neq(access(p, F_OK), 0, "the OCI whiteout file itself is not unpacked");
        char v[8] = "";
        snprintf(p, sizeof(p), "%s/var/cache", t.into);
        cr_expect_eq(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 1, "var/cache is opaque");
        snprintf(p, sizeof(p), "%s/etc/cap", t.into);
        cr_expect_lt(getxattr(p, "trusted.overlay.opaque", v, sizeof(v)), 0, "a trusted.* xattr of the image was kept");
        lt_fini(&t);
    }
}

/* Each case must fail with its message, and write nothing outside. */
Test(images, hostile_layers_are_refused_and_stay_inside)
{
    struct {
        const char *what, *needle;
        struct ent e[3];
        size_t n;
    } cases[] = {
        {"dot-dot", "leads out", {{"../outside/pwned", AE_IFREG, 0644, "x", NULL}}, 1},
        {"deep dot-dot", "leads out", {{"a/../../outside/pwned", AE_IFREG, 0644, "x", NULL}}, 1},
        {"absolute, then through it", "through a symlink",
         {{"/abs2", AE_IFLNK, 0777, "/", NULL}, {"/abs2/pwned", AE_IFREG, 0644, "x", NULL}}, 2},
        {"through a symlink", "through a symlink", {{"link", AE_IFLNK, 0777, "../outside", NULL}, {"link/pwned", AE_IFREG, 0644, "x", NULL}}, 2},
        {"through an absolute symlink", "through a symlink", {{"abs", AE_IFLNK, 0777, "/", NULL}, {"abs/pwned", AE_IFREG, 0644, "x", NULL}}, 2},
        {"hard link out", "outside the layer", {{"h", 0, 0, "../outside/x", NULL}}, 1},
        {"device", "device node", {{"dev/mem", AE_IFCHR, 0600, NULL, NULL}}, 1},
        {"whiteout of nothing", "whiteout of nothing", {{"a/.wh.", AE_IFREG, 0644, "", NULL}}, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lt t;
        lt_init(&t);
        write_tar(t.tar, NULL, cases[i].e, cases[i].n);
        struct duet_err err = {0};
        cr_expect_eq(unpack(&t, NULL, &err), -1, "%s was unpacked", cases[i].what);
        cr_expect(strstr(err.msg, cases[i].needle), "%s: %s", cases[i].what, err.msg);
        /* what a symlink in the layer points at stays the layer's */
        cr_expect_neq(access("/pwned", F_OK), 0, "%s wrote /pwned", cases[i].what);
        lt_fini(&t);
    }
}

/* A layer of 100,000 files (a node_modules, a Python site-packages) is
 * no bomb: it unpacks whole under the store's default bounds. */
Test(images, a_layer_of_100000_files_unpacks, .timeout = 120)
{
    struct lt t;
    lt_init(&t);
    enum { N = 100000 };
    struct ent *many = calloc(N + 100, sizeof(*many));
    char (*names)[32] = calloc(N + 100, sizeof(*names));
    size_t n = 0;
    for (int d = 0; d < 100; d++) {   /* 100 directories of 1,000 files */
        snprintf(names[n], sizeof(names[n]), "d%02d", d);
        many[n] = (struct ent){names[n], AE_IFDIR, 0755, NULL, NULL};
        n++;
        for (int i = 0; i < N / 100; i++, n++) {
            snprintf(names[n], sizeof(names[n]), "d%02d/f%04d", d, i);
            many[n] = (struct ent){names[n], AE_IFREG, 0644, "x", NULL};
        }
    }
    write_tar(t.tar, "gzip", many, n);
    int fd = open(t.tar, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    struct unpack_limits lim = {.max_bytes = 16ull << 30, .max_entries = 2000000};
    struct unpack_stats st = {0};
    struct duet_err err = {0};
    cr_assert_eq(image_layer_unpack(fd, NULL, 0, t.into, &lim, &st, &err), 0, "%s", err.msg);
    close(fd);
    cr_expect_eq(st.entries, n);
    char p[256];
    snprintf(p, sizeof(p), "%s/d99/f0999", t.into);
    cr_expect_eq(access(p, F_OK), 0, "the last file is missing");
    free(many);
    free(names);
    lt_fini(&t);
}

Test(images, a_layer_past_its_bounds_or_its_digest_is_refused)
{
    struct lt t;
    lt_init(&t);
    /* 2 MiB of zeros compress to almost nothing: the bound is on what unpacks */
    char *big = calloc(1, 2 << 20);
    memset(big, 'z', (2 << 20) - 1);
    struct ent bomb[] = {{"big", AE_IFREG, 0644, big, NULL}};
    write_tar(t.tar, "gzip", bomb, 1);
    free(big);
    struct stat st;
    cr_assert_eq(stat(t.tar, &st), 0);
    cr_expect_lt(st.st_size, 64 << 10);
    struct duet_err err = {0};
    cr_expect_eq(unpack(&t, NULL, &err), -1);
    cr_expect(strstr(err.msg, "more than 1 MiB"), "%s", err.msg);
    lt_fini(&t);

    lt_init(&t);
    struct ent many[1200];
    char names[1200][16];
    for (int i = 0; i < 1200; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        many[i] = (struct ent){names[i], AE_IFREG, 0644, "", NULL};
    }
    write_tar(t.tar, NULL, many, 1200);
    cr_expect_eq(unpack(&t, NULL, &err), -1);
    cr_expect(strstr(err.msg, "more than 1000 entries"), "%s", err.msg);
    lt_fini(&t);

    lt_init(&t);
    struct ent one[] = {{"a", AE_IFREG, 0644, "a", NULL}};
    write_tar(t.tar, NULL, one, 1);
    cr_expect_eq(unpack(&t, "sha256:0000000000000000000000000000000000000000000000000000000000000000", &err), -1);
    cr_expect(strstr(err.msg, "digest is sha256:"), "%s", err.msg);
    lt_fini(&t);

    lt_init(&t);
    FILE *f = fopen(t.tar, "w");
    fputs("this is not a tar at all, not even close; it goes on for a while to fill a block", f);
    fclose(f);
    cr_expect_eq(unpack(&t, NULL, &err), -1);
    cr_expect(strstr(err.msg, "not a readable layer"), "%s", err.msg);
    lt_fini(&t);
}

/* ---- layouts and archives ----------------------------------------------------- */

struct layout {
    char dir[64];
    char store_dir[128];
    char path[128];   /* the layout */
};

static void put_blob(const char *layout, const void *buf, size_t len, char digest[DIGEST_STR])
{
    digest_of(buf, len, digest);
    char p[512];
    snprintf(p, sizeof(p), "%s/blobs/sha256/%s", layout, digest_hex(digest));
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fwrite(buf, 1, len, f);
    fclose(f);
}

static void put_file_blob(const char *layout, const char *file, char digest[DIGEST_STR], size_t *size)
{
    FILE *f = fopen(file, "r");
    cr_assert_not_null(f);
    static char buf[1 << 20];
    *size = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    put_blob(layout, buf, *size, digest);
}

static const char CONFIG[] =
    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
    "\"Env\":[\"PATH=/usr/bin:/bin\",\"GREETING=hello\"],\"User\":\"1000:1000\",\"WorkingDir\":\"/srv\","
    "\"ExposedPorts\":{\"8080/tcp\":{}},\"StopSignal\":\"SIGQUIT\"},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";

/* A layout of the layers' tars (bottom first) with CONFIG, tagged tag. */
static void make_layout(const char *path, const char *const *tars, size_t n, const char *tag, char id[DIGEST_STR])
{
    char p[512];
    snprintf(p, sizeof(p), "%s/blobs/sha256", path);
    cr_assert_eq(mkdir(path, 0755) == 0 || errno == EEXIST, 1);
    snprintf(p, sizeof(p), "%s/blobs", path);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/blobs/sha256", path);
    mkdir(p, 0755);
    char cfg[DIGEST_STR];
    put_blob(path, CONFIG, strlen(CONFIG), cfg);
    char man[8192];
    int o = snprintf(man, sizeof(man),
                     "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                     "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
                     "\"layers\":[",
                     cfg, strlen(CONFIG));
    for (size_t i = 0; i < n; i++) {
        char d[DIGEST_STR];
        size_t size;
        put_file_blob(path, tars[i], d, &size);
        o += snprintf(man + o, sizeof(man) - (size_t)o,
                      "%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":%zu}",
                      i ? "," : "", d, size);
    }
    snprintf(man + o, sizeof(man) - (size_t)o, "]}");
    put_blob(path, man, strlen(man), id);
    snprintf(p, sizeof(p), "%s/oci-layout", path);
    FILE *f = fopen(p, "w");
    fputs("{\"imageLayoutVersion\":\"1.0.0\"}", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/index.json", path);
    f = fopen(p, "w");
    fprintf(f,
            "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
            "\"digest\":\"%s\",\"size\":%zu,\"annotations\":{\"org.opencontainers.image.ref.name\":\"%s\"}}]}",
            id, strlen(man), tag);
    fclose(f);
}

static size_t count_layers(const char *store_dir)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/layers", store_dir);
    DIR *d = opendir(p);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static struct image_store *store_in(char *dir, size_t len, char *store_dir, size_t slen)
{
    snprintf(dir, len, "/tmp/duet-imgs-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(store_dir, slen, "%s/store", dir);
    struct duet_err err = {0};
    struct image_store *s = image_store_open(store_dir, NULL, &err);
    cr_assert_not_null(s, "%s", err.msg);
    return s;
}

Test(images, an_oci_layout_is_imported_and_its_root_is_the_merged_layers)
{
    char dir[64], sdir[128];
    struct image_store *s = store_in(dir, sizeof(dir), sdir, sizeof(sdir));
    char l1[256], l2[256], l3[256], lay[256], lay2[256];
    snprintf(l1, sizeof(l1), "%s/l1.tar", dir);
    snprintf(l2, sizeof(l2), "%s/l2.tar", dir);
    snprintf(l3, sizeof(l3), "%s/l3.tar", dir);
    struct ent base[] = {{"etc/motd", AE_IFREG, 0644, "welcome\n", NULL},
                         {"etc/keep", AE_IFREG, 0644, "kept\n", NULL},
                         {"var/cache/old", AE_IFREG, 0644, "stale\n", NULL}};
    struct ent top[] = {{"etc/.wh.motd", AE_IFREG, 0644, "", NULL},
                        {"var/cache/.wh..wh..opq", AE_IFREG, 0644, "", NULL},
                        {"var/cache/new", AE_IFREG, 0644, "fresh\n", NULL}};
    struct ent other[] = {{"srv/app", AE_IFREG, 0755, "#!/bin/sh\n", NULL}};
    write_tar(l1, "gzip", base, 3);
    write_tar(l2, "gzip", top, 3);
    write_tar(l3, "gzip", other, 1);
    snprintf(lay, sizeof(lay), "%s/layout", dir);
    snprintf(lay2, sizeof(lay2), "%s/layout2", dir);
    char id[DIGEST_STR], id2[DIGEST_STR];
    const char *const tars[] = {l1, l2}, *const tars2[] = {l1, l3};
    make_layout(lay, tars, 2, "v1", id);
    make_layout(lay2, tars2, 2, "v2", id2);

    char ref[300];
    snprintf(ref, sizeof(ref), "oci-layout:%s:v1", lay);
    struct image *img = NULL;
    struct duet_err err = {0};
    cr_assert_eq(image_store_import(s, ref, &img, &err), 0, "%s", err.msg);
    cr_expect_str_eq(img->id, id);
    cr_expect_eq(img->n_layers, 2);
    cr_expect_str_eq(img->config.entrypoint[0], "/bin/sh");
    cr_expect_str_eq(img->config.cmd[0], "echo hi");
    cr_expect_str_eq(img->config.user, "1000:1000");
    cr_expect_str_eq(img->config.working_dir, "/srv");
    cr_expect_str_eq(img->config.env[1], "GREETING=hello");
    cr_expect_str_eq(img->config.exposed_ports[0], "8080/tcp");
    cr_expect_eq(count_layers(sdir), 2);

    char root[PATH_MAX];
    cr_assert_eq(image_store_root(s, img, root, sizeof(root), &err), 0, "%s", err.msg);
    cr_expect_str_eq(slurp_at(root, "etc/keep"), "kept\n");
    cr_expect_null(slurp_at(root, "etc/motd"), "the upper layer's whiteout hides etc/motd");
    cr_expect_null(slurp_at(root, "var/cache/old"), "the opaque var/cache hides what is below");
    cr_expect_str_eq(slurp_at(root, "var/cache/new"), "fresh\n");
    char again[PATH_MAX];
    cr_expect_eq(image_store_root(s, img, again, sizeof(again), &err), 0, "a mounted root is mounted once");
    image_free(img);

    /* the same again: the same image, nothing unpacked twice */
    cr_assert_eq(image_store_import(s, ref, &img, &err), 0, "%s", err.msg);
    cr_expect_str_eq(img->id, id);
    image_free(img);
    /* a second image sharing the base layer: only its own is unpacked */
    char ref2[300];
    snprintf(ref2, sizeof(ref2), "oci-layout:%s:v2", lay2);
    cr_assert_eq(image_store_import(s, ref2, &img, &err), 0, "%s", err.msg);
    image_free(img);
    cr_expect_eq(count_layers(sdir), 3);

    struct image **all;
    size_t n;
    cr_assert_eq(image_store_list(s, &all, &n, &err), 0);
    cr_expect_eq(n, 2);
    image_list_free(all, n);
    cr_expect_eq(image_store_get(s, ref, &img, &err), 0);
    image_free(img);
    char prefix[20];
    snprintf(prefix, sizeof(prefix), "%.12s", digest_hex(id));
    cr_expect_eq(image_store_get(s, prefix, &img, &err), 0, "found by a 12-digit prefix of its id");
    image_free(img);

    /* removed: its root unmounted, its own layer gone, the shared one kept */
    cr_assert_eq(image_store_remove(s, ref, &err), 0, "%s", err.msg);
    cr_expect_eq(count_layers(sdir), 2);
    cr_expect_eq(image_store_get(s, ref, &img, &err), 1);
    cr_assert_eq(image_store_remove(s, ref2, &err), 0, "%s", err.msg);
    cr_expect_eq(count_layers(sdir), 0);
    cr_expect_eq(image_store_remove(s, ref2, &err), -1);
    cr_expect(strstr(err.msg, "no image"), "%s", err.msg);
    image_store_free(s);
    duet_remove_tree(dir, NULL);
}

Test(images, a_damaged_layout_leaves_no_image)
{
    char dir[64], sdir[128];
    struct image_store *s = store_in(dir, sizeof(dir), sdir, sizeof(sdir));
    char l1[256], lay[256];
    snprintf(l1, sizeof(l1), "%s/l1.tar", dir);
    struct ent base[] = {{"etc/motd", AE_IFREG, 0644, "welcome\n", NULL}};
    write_tar(l1, "gzip", base, 1);
    snprintf(lay, sizeof(lay), "%s/layout", dir);
    char id[DIGEST_STR];
    const char *const tars[] = {l1};
    make_layout(lay, tars, 1, "v1", id);
    /* the layer's blob is replaced after its digest was written down */
    char ref[300];
    snprintf(ref, sizeof(ref), "oci-layout:%s:v1", lay);
    struct image *img = NULL;
    struct duet_err err = {0};
    char blobs[300];
    snprintf(blobs, sizeof(blobs), "%s/blobs/sha256", lay);
    DIR *d = opendir(blobs);
    for (struct dirent *e; (e = readdir(d));) {
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", blobs, e->d_name);
        FILE *f = fopen(p, "r");
        char head[2] = "";
        if (f && fread(head, 1, 2, f) == 2 && (unsigned char)head[0] == 0x1f) {
            fclose(f);
            f = fopen(p, "r+");
            fseek(f, 40, SEEK_SET);
            fputc('X', f);
        }
        if (f)
            fclose(f);
    }
    closedir(d);
    cr_expect_eq(image_store_import(s, ref, &img, &err), -1);
    cr_expect(strstr(err.msg, "digest") || strstr(err.msg, "not a readable layer"), "%s", err.msg);
    cr_expect_eq(count_layers(sdir), 0, "a layer that failed its digest was kept");
    struct image **all;
    size_t n;
    cr_assert_eq(image_store_list(s, &all, &n, &err), 0);
    cr_expect_eq(n, 0);
    image_list_free(all, n);
    /* a tag the layout lacks, and a directory that is no layout */
    snprintf(ref, sizeof(ref), "oci-layout:%s:nope", lay);
    cr_expect_eq(image_store_import(s, ref, &img, &err), -1);
    cr_expect(strstr(err.msg, "no manifest tagged nope") && strstr(err.msg, "v1"), "%s", err.msg);
    snprintf(ref, sizeof(ref), "oci-layout:%s", dir);
    cr_expect_eq(image_store_import(s, ref, &img, &err), -1);
    cr_expect(strstr(err.msg, "not an OCI image layout"), "%s", err.msg);
    image_store_free(s);
    duet_remove_tree(dir, NULL);
}

Test(images, a_docker_archive_is_imported)
{
    char dir[64], sdir[128];
    struct image_store *s = store_in(dir, sizeof(dir), sdir, sizeof(sdir));
    char l1[256], cfg[256], arch[256];
    snprintf(l1, sizeof(l1), "%s/layer.tar", dir);
    struct ent base[] = {{"etc/motd", AE_IFREG, 0644, "from docker\n", NULL}};
    write_tar(l1, NULL, base, 1);
    snprintf(cfg, sizeof(cfg), "%s/cfg.json", dir);
    FILE *f = fopen(cfg, "w");
    fputs(CONFIG, f);
    fclose(f);
    FILE *lf = fopen(l1, "r");
    static char layer[1 << 16];
    size_t ln = fread(layer, 1, sizeof(layer), lf);
    fclose(lf);
    static const char MAN[] = "[{\"Config\":\"abc.json\",\"RepoTags\":[\"x:1\"],\"Layers\":[\"l1/layer.tar\"]}]";
    struct ent files[] = {{"manifest.json", AE_IFREG, 0644, MAN, NULL},
                          {"abc.json", AE_IFREG, 0644, CONFIG, NULL},
                          {"l1/", AE_IFDIR, 0755, NULL, NULL}};
    snprintf(arch, sizeof(arch), "%s/image.tar", dir);
    /* the layer is binary: written by hand after the text entries */
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, arch);
    for (size_t i = 0; i < 4; i++) {
        struct archive_entry *ae = archive_entry_new();
        const char *path = i < 3 ? files[i].path : "l1/layer.tar";
        const char *data = i < 3 ? files[i].data : layer;
        size_t len = i < 3 ? (data ? strlen(data) : 0) : ln;
        archive_entry_set_pathname(ae, path);
        archive_entry_set_filetype(ae, i == 2 ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(ae, 0644);
        archive_entry_set_size(ae, (la_int64_t)len);
        archive_write_header(a, ae);
        if (len)
            archive_write_data(a, data, len);
        archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    char ref[300];
    snprintf(ref, sizeof(ref), "docker-archive:%s", arch);
    struct image *img = NULL;
    struct duet_err err = {0};
    cr_assert_eq(image_store_import(s, ref, &img, &err), 0, "%s", err.msg);
    char root[PATH_MAX];
    cr_assert_eq(image_store_root(s, img, root, sizeof(root), &err), 0, "%s", err.msg);
    cr_expect_str_eq(slurp_at(root, "etc/motd"), "from docker\n");
    cr_expect_str_eq(img->config.working_dir, "/srv");
    image_free(img);
    cr_assert_eq(image_store_remove(s, ref, &err), 0, "%s", err.msg);
    image_store_free(s);
    duet_remove_tree(dir, NULL);
}

Test(images, a_hostile_config_is_refused)
{
    struct image_config c;
    struct duet_err err = {0};
    cr_expect_eq(image_config_parse("not json", 8, &c, &err), -1);
    cr_expect(strstr(err.msg, "not JSON"), "%s", err.msg);
    static const char bad_env[] = "{\"config\":{\"Env\":[\"=x\"]}}";
    cr_expect_eq(image_config_parse(bad_env, strlen(bad_env), &c, &err), -1);
    cr_expect(strstr(err.msg, "NAME=VALUE"), "%s", err.msg);
    /* a 1 MiB Env */
    size_t n = 300 << 10;
    char *big = malloc(n + 64);
    int o = snprintf(big, n + 64, "{\"config\":{\"Env\":[\"A=");
    memset(big + o, 'x', n);
    strcpy(big + o + n, "\"]}}");
    cr_expect_eq(image_config_parse(big, strlen(big), &c, &err), -1);
    cr_expect(strstr(err.msg, "more than 256 KiB"), "%s", err.msg);
    free(big);
    static const char nul[] = "{\"config\":{\"User\":\"ro\\u0000ot\"}}";
    cr_expect_eq(image_config_parse(nul, strlen(nul), &c, &err), -1);
    cr_expect(strstr(err.msg, "NUL"), "%s", err.msg);
}

/* ---- StopSignal ---------------------------------------------------------------- */

Test(images, a_stop_signal_is_read_as_docker_reads_it)
{
    const struct {
        const char *in;
        int sig;
    } ok[] = {
        {"SIGQUIT", SIGQUIT}, {"QUIT", SIGQUIT}, {"sigint", SIGINT}, {"3", 3}, {"SIGRTMIN", SIGRTMIN},
        {"SIGRTMIN+3", SIGRTMIN + 3}, {"RTMAX-1", SIGRTMAX - 1}, {"SIGWINCH", SIGWINCH}, {"SIGKILL", SIGKILL},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_expect_eq(duet_signal_parse(ok[i].in), ok[i].sig, "%s", ok[i].in);
    static const char *const bad[] = {"", "SIG", "0", "65", "-1", "3x", "SIGFOO", "SIGRTMIN+99", "SIGRTMAX+1",
                                      "SIGRTMIN-1", "RTMIN+", "SIGQUIT ", "99999999999999999999", "SIGTERMINATE"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(duet_signal_parse(bad[i]), 0, "\"%s\" was read as a signal", bad[i]);

    /* in a run spec: the number, or the image refused with its cause */
    struct arena a;
    arena_init(&a);
    struct workload_spec s = {.name = "w", .image.oci = "oci-layout:/x"};
    struct image img = {0};
    struct duet_err err = {0};
    static const char cfg[] = "{\"config\":{\"Cmd\":[\"/bin/true\"],\"StopSignal\":\"SIGQUIT\"}}";
    cr_assert_eq(image_config_parse(cfg, strlen(cfg), &img.config, &err), 0, "%s", err.msg);
    struct workload_spec *r = run_spec_build(&a, &s, &img, "/root", &err);
    cr_assert_not_null(r, "%s", err.msg);
    cr_expect_eq(r->stop_signal, SIGQUIT);
    image_config_free(&img.config);
    static const char badcfg[] = "{\"config\":{\"Cmd\":[\"/bin/true\"],\"StopSignal\":\"SIGNOPE\"}}";
    cr_assert_eq(image_config_parse(badcfg, strlen(badcfg), &img.config, &err), 0, "%s", err.msg);
    cr_expect_null(run_spec_build(&a, &s, &img, "/root", &err));
    cr_expect(strstr(err.msg, "StopSignal \"SIGNOPE\" is not a signal"), "%s", err.msg);
    image_config_free(&img.config);
    arena_release(&a);
}
