/*
 * test_registry_faults.c - pulls from a registry that misbehaves, and onto
 * a disk that fills up.
 *
 * The registry is a small one of the test's own (a thread serving the OCI
 * layout `make images` builds over the distribution API, plain HTTP on
 * 127.0.0.1), which can be told to answer 429 or 500, to stall without a
 * byte, or to cut a layer's download short.  Each fault must end the pull
 * with one line that names the image and the cause, leave nothing of the
 * pull behind, and a pull once the fault is gone must succeed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/statvfs.h>

#include "dtest.h"
#include "images/digest.h"

enum fault { FAULT_NONE, FAULT_429, FAULT_500, FAULT_STALL, FAULT_CUT_LAYER, FAULT_SLOW_LAYER };

struct fakereg {
    int lfd;
    unsigned port;
    pthread_t thread;
    atomic_int fault;
    atomic_bool stop;
    atomic_int layer_gets;        /* layer blobs asked for */
    const char *layout;
    int stalled[16];              /* connections held open without an answer */
    int n_stalled;
};

static bool slow_body;   /* set by the serving thread only: layers in 32 KiB steps, 20 ms apart */

static void say(int fd, int status, const char *reason, const char *type, const char *extra, const void *body,
                size_t len, size_t send_len)
{
    char h[512];
    int n = snprintf(h, sizeof(h),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                     status, reason, type, len, extra ? extra : "");
    if (write(fd, h, (size_t)n) != n)
        return;
    for (size_t o = 0; o < send_len;) {
        size_t step = slow_body && send_len - o > 32768 ? 32768 : send_len - o;
        if (slow_body && o)
            usleep(20000);
        ssize_t k = write(fd, (const char *)body + o, step);
        if (k <= 0)
            return;
        o += (size_t)k;
    }
}

static char *blob(struct fakereg *r, const char *digest, size_t *len)
{
    if (strncmp(digest, "sha256:", 7) != 0 || strspn(digest + 7, "0123456789abcdef") != 64 || digest[71])
        return NULL;
    char p[700];
    snprintf(p, sizeof(p), "%s/blobs/sha256/%s", r->layout, digest + 7);
    FILE *f = fopen(p, "re");
    if (!f)
        return NULL;
    char *buf = NULL;
    FILE *m = open_memstream(&buf, len);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    fclose(f);
    return buf;
}

/* The digest of the layout's manifest tagged tag, and its media type. */
static bool tag_digest(struct fakereg *r, const char *tag, char *digest, char *mt)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/index.json", r->layout);
    json_t *idx = json_load_file(p, 0, NULL);
    json_t *ms = json_object_get(idx, "manifests");
    bool found = false;
    for (size_t i = 0; i < json_array_size(ms) && !found; i++) {
        json_t *m = json_array_get(ms, i);
        const char *name =
            json_string_value(json_object_get(json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
        if (name && !strcmp(name, tag)) {
            snprintf(digest, 80, "%s", json_string_value(json_object_get(m, "digest")));
            snprintf(mt, 100, "%s", json_string_value(json_object_get(m, "mediaType")));
            found = true;
        }
    }
    json_decref(idx);
    return found;
}

static void serve(struct fakereg *r, int fd)
{
    char req[4096] = "";
    size_t n = 0;
    while (n < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, 2000) <= 0)
            break;
        ssize_t k = read(fd, req + n, sizeof(req) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        req[n] = '\0';
    }
    req[n] = '\0';
    char path[1024] = "";
    if (sscanf(req, "GET %1023s HTTP/1.1", path) != 1) {
        say(fd, 400, "Bad Request", "text/plain", NULL, "", 0, 0);
        close(fd);
        return;
    }
    int fault = atomic_load(&r->fault);
    if (fault == FAULT_STALL && r->n_stalled < 16) {
        r->stalled[r->n_stalled++] = fd;   /* answered never; closed at the end */
        return;
    }
    if (!strcmp(path, "/v2/")) {
        say(fd, 200, "OK", "application/json", NULL, "{}", 2, 2);
    } else if (fault == FAULT_429) {
        say(fd, 429, "Too Many Requests", "application/json", "Retry-After: 60\r\n",
            "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\"}]}", 38, 38);
    } else if (fault == FAULT_500) {
        say(fd, 500, "Internal Server Error", "text/plain", NULL, "boom", 4, 4);
    } else if (strstr(path, "/manifests/")) {
        const char *ref = strstr(path, "/manifests/") + 11;
        char digest[80], mt[100] = "application/vnd.oci.image.manifest.v1+json";
        if (!strncmp(ref, "sha256:", 7))
            snprintf(digest, sizeof(digest), "%s", ref);
        else if (!tag_digest(r, ref, digest, mt))
            digest[0] = '\0';
        size_t len = 0;
        char *b = digest[0] ? blob(r, digest, &len) : NULL;
        char extra[160];
        snprintf(extra, sizeof(extra), "Docker-Content-Digest: %s\r\n", digest);
        if (b)
            say(fd, 200, "OK", mt, extra, b, len, len);
        else
            say(fd, 404, "Not Found", "application/json", NULL, "{}", 2, 2);
        free(b);
    } else if (strstr(path, "/blobs/")) {
        size_t len = 0;
        char *b = blob(r, strstr(path, "/blobs/") + 7, &len);
        bool layer = b && len > 2 && (unsigned char)b[0] == 0x1f && (unsigned char)b[1] == 0x8b;
        if (layer)
            atomic_fetch_add(&r->layer_gets, 1);
        if (!b)
            say(fd, 404, "Not Found", "application/json", NULL, "{}", 2, 2);
        else {   /* cut short: the length promised, half of it sent, the connection closed */
            slow_body = layer && fault == FAULT_SLOW_LAYER;
            say(fd, 200, "OK", "application/octet-stream", NULL, b, len,
                layer && fault == FAULT_CUT_LAYER ? len / 2 : len);
            slow_body = false;
        }
        free(b);
    } else {
        say(fd, 404, "Not Found", "application/json", NULL, "{}", 2, 2);
    }
    close(fd);
}

static void *fakereg_main(void *opaque)
{
    struct fakereg *r = opaque;
    while (!atomic_load(&r->stop)) {
        struct pollfd pf = {.fd = r->lfd, .events = POLLIN};
        if (poll(&pf, 1, 100) <= 0)
            continue;
        int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            serve(r, fd);
    }
    return NULL;
}

static void fakereg_start(struct fakereg *r)
{
    memset(r, 0, sizeof(*r));
    r->layout = dd_env("DUET_OCI");
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(r->lfd, 16), 0);
    socklen_t al = sizeof(a);
    getsockname(r->lfd, (struct sockaddr *)&a, &al);
    r->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&r->thread, NULL, fakereg_main, r), 0);
}

static void fakereg_stop(struct fakereg *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    for (int i = 0; i < r->n_stalled; i++)
        close(r->stalled[i]);
    close(r->lfd);
}

/* Nothing of a failed pull is kept: no image, no layer, no blob. */
static void expect_nothing_kept(struct dd *d, const char *after)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/images/layers", d->state);
    cr_expect_eq(dd_count_dirs(p), 0, "a layer was kept after %s", after);
    char *out;
    cr_assert_eq(dd_duet(d, &out, "image ls -o json"), 0);
    cr_expect(strstr(out, "\"images\": []"), "an image was kept after %s: %s", after, out);
    free(out);
}

static void expect_pull_ok(struct dd *d, struct fakereg *r)
{
    char *out;
    cr_expect_eq(dd_duet(d, &out, "image pull 127.0.0.1:%u/f/app:latest", r->port), 0, "%s", out);
    free(out);
    cr_expect_eq(dd_duet(d, &out, "image rm 127.0.0.1:%u/f/app:latest", r->port), 0, "%s", out);
    free(out);
}

Test(registry_faults, 429_500_and_a_cut_layer_each_say_why_and_leave_nothing, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    struct fakereg r;
    fakereg_start(&r);
    char *out;
    /* the pull that works, as a reference */
    expect_pull_ok(&d, &r);

    atomic_store(&r.fault, FAULT_429);
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/f/app:latest", r.port), 0);
    cr_expect(strstr(out, "127.0.0.1") && strstr(out, "f/app") && strstr(out, "HTTP 429") &&
                  strstr(out, "try again later"),
              "%s", out);
    free(out);
    expect_nothing_kept(&d, "a 429");
    atomic_store(&r.fault, FAULT_NONE);
    expect_pull_ok(&d, &r);

    atomic_store(&r.fault, FAULT_500);
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/f/app:latest", r.port), 0);
    cr_expect(strstr(out, "f/app") && strstr(out, "HTTP 500"), "%s", out);
    free(out);
    expect_nothing_kept(&d, "a 500");
    atomic_store(&r.fault, FAULT_NONE);
    expect_pull_ok(&d, &r);

    atomic_store(&r.fault, FAULT_CUT_LAYER);
    int before = atomic_load(&r.layer_gets);
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/f/app:latest", r.port), 0);
    cr_expect(strstr(out, "f/app") && strstr(out, "sha256:"), "the cut layer is named: %s", out);
    free(out);
    cr_expect_gt(atomic_load(&r.layer_gets), before, "no layer was asked for");
    expect_nothing_kept(&d, "a cut layer");
    atomic_store(&r.fault, FAULT_NONE);
    expect_pull_ok(&d, &r);

    /* an apply that needs the image says the same in its events and
     * starts nothing; once the registry is whole, it runs */
    atomic_store(&r.fault, FAULT_500);
    const char *m = dd_manifest(&d, "pull.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: puller}\nspec:\n"
                                "  image: {oci: \"127.0.0.1:%u/f/app:latest\"}\n  command: [/bin/sleep, \"3600\"]\n",
                                r.port);
    cr_expect_neq(dd_duet(&d, &out, "apply -f %s --wait --timeout 30", m), 0);
    cr_expect(strstr(out, "HTTP 500"), "%s", out);
    free(out);
    atomic_store(&r.fault, FAULT_NONE);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 60", m), 0, "%s", out);
    free(out);
    cr_expect(dd_field_is(&d, "puller", "state", "running"));
    dd_finish(&d);
    fakereg_stop(&r);
}

/* A registry that takes the connection and says nothing: the pull ends
 * (libcurl's low-speed bound, 30 s without a byte) with the cause. */
Test(registry_faults, a_stalled_registry_times_out, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    struct fakereg r;
    fakereg_start(&r);
    atomic_store(&r.fault, FAULT_STALL);
    char *out;
    uint64_t t0 = dd_now_ms();
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/f/app:latest", r.port), 0);
    uint64_t took = dd_now_ms() - t0;
    cr_expect(strstr(out, "f/app") && strstr(out, "sent nothing for 30 s: the registry stalled"), "%s", out);
    free(out);
    cr_expect_lt(took, 75000, "a stalled pull took %llu ms", (unsigned long long)took);
    expect_nothing_kept(&d, "a stall");
    atomic_store(&r.fault, FAULT_NONE);
    expect_pull_ok(&d, &r);
    dd_finish(&d);
    fakereg_stop(&r);
}

/* The state disk fills during a pull: the pull fails saying so, nothing
 * half-written is kept, duetd goes on, and once there is room a pull
 * succeeds. */
Test(registry_faults, a_full_disk_during_a_pull, .timeout = 120)
{
    struct dd d;
    dd_init_on_tmpfs(&d, "64m");
    struct fakereg r;
    fakereg_start(&r);
    char fill[300], *out;
    snprintf(fill, sizeof(fill), "%s/filler", d.state);
    /* all but ~1 MiB taken: the image (about 2 MiB of blobs and 3 MiB
     * unpacked) cannot fit */
    struct statvfs sv;
    cr_assert_eq(statvfs(d.state, &sv), 0);
    uint64_t free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    int fd = open(fill, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(posix_fallocate(fd, 0, (off_t)(free_bytes - (1 << 20))), 0);
    close(fd);
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/f/app:latest", r.port), 0);
    cr_expect(strstr(out, "f/app") && strstr(out, "No space left on device"), "%s", out);
    free(out);
    unlink(fill);
    expect_nothing_kept(&d, "a full disk");
    char p[300];
    snprintf(p, sizeof(p), "%s/images/blobs/sha256", d.state);
    DIR *dir = opendir(p);
    int blobs = 0;
    for (struct dirent *e; dir && (e = readdir(dir));)
        blobs += e->d_name[0] != '.';
    if (dir)
        closedir(dir);
    cr_expect_eq(blobs, 0, "blobs of a failed pull were kept");
    expect_pull_ok(&d, &r);
    dd_finish(&d);
    fakereg_stop(&r);
}

/* What `duet ARGS` prints with a terminal for its stdout (script(1)
 * gives it one); its exit status into *status. */
static char *on_a_terminal(struct dd *d, int *status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static char *on_a_terminal(struct dd *d, int *status, const char *fmt, ...)
{
    char args[1024], cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "DUET_SOCKET=%s script -qec '%s %s' /dev/null", d->sock, dd_env("DUET_BIN"), args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *out = NULL, chunk[4096];
    size_t len = 0, n;
    FILE *m = open_memstream(&out, &len);
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    return out;
}

/* A pull that takes a while shows how far it is: JSON lines of progress
 * on the API (growing, the last one the image), "pulling" events, and a
 * bar from `duet image pull` on a terminal (none when stdout is not one). */
Test(registry_faults, a_slow_pull_shows_its_progress, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    struct fakereg r;
    fakereg_start(&r);
    atomic_store(&r.fault, FAULT_SLOW_LAYER);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "curl -sS --unix-socket %s -X POST -d '{\"ref\":\"127.0.0.1:%u/f/app:latest\"}' "
             "'http://duet/v1/images/pull?progress=1'",
             d.sock, r.port);
    FILE *p = popen(cmd, "r");
    char line[4096];
    int progress = 0;
    long long last_done = -1;
    bool monotonic = true, image = false;
    while (fgets(line, sizeof(line), p)) {
        json_t *j = json_loads(line, 0, NULL);
        cr_assert_not_null(j, "not a JSON line: %s", line);
        json_t *pg = json_object_get(j, "progress");
        if (pg) {
            progress++;
            long long done = json_integer_value(json_object_get(pg, "bytes_done"));
            bool ok = done >= last_done && done <= json_integer_value(json_object_get(pg, "bytes_total"));
            cr_expect(ok, "progress went back or past its total: %s", line);
            monotonic = monotonic && ok;
            last_done = done;
        }
        image = image || json_object_get(j, "image");
        json_decref(j);
    }
    cr_expect_eq(pclose(p), 0);
    cr_expect_geq(progress, 3, "%d progress lines for a pull of over a second", progress);
    cr_expect(monotonic, "bytes_done went back or past bytes_total");
    cr_expect(image, "the stream did not end with the image");
    struct client_buf eb = {0};
    struct duet_err eerr = {0};
    client_call_buf(d.sock, "GET", "/v1/events", NULL, 0, &eb, 30000, &eerr);
    char *ev = eb.data ? eb.data : strdup("");
    cr_expect(strstr(ev, "\"pulling\"") && strstr(ev, "layer 1 of 2"), "%s", ev);
    free(ev);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "image rm 127.0.0.1:%u/f/app:latest", r.port), 0, "%s", out);
    free(out);
    /* on a terminal: the bar, then the result line */
    int st;
    char *tty = on_a_terminal(&d, &st, "image pull 127.0.0.1:%u/f/app:latest", r.port);
    cr_expect_eq(st, 0, "%s", tty);
    cr_expect(strstr(tty, "\r[=") && strstr(tty, "layer 1/2"), "no progress bar on a terminal: %s", tty);
    cr_expect(strstr(tty, "f/app:latest: sha256:"), "%s", tty);
    free(tty);
    cr_assert_eq(dd_duet(&d, &out, "image rm 127.0.0.1:%u/f/app:latest", r.port), 0, "%s", out);
    free(out);
    /* not a terminal: no bar */
    cr_assert_eq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/f/app:latest", r.port), 0, "%s", out);
    cr_expect(!strchr(out, '\r') && !strstr(out, "[="), "a bar on a pipe: %s", out);
    free(out);
    /* an apply's import tells the workload's events how far it is */
    cr_assert_eq(dd_duet(&d, &out, "image rm 127.0.0.1:%u/f/app:latest", r.port), 0, "%s", out);
    free(out);
    const char *sm = dd_manifest(&d, "slow.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: slowpoke}\nspec:\n"
                                "  image: {oci: \"127.0.0.1:%u/f/app:latest\"}\n  command: [/bin/sleep, \"3600\"]\n",
                                r.port);
    /* on a terminal, apply --wait says what it waits for: the pull, as it goes */
    tty = on_a_terminal(&d, &st, "apply -f %s --wait --timeout 60", sm);
    cr_expect_eq(st, 0, "%s", tty);
    cr_expect(strstr(tty, "waiting for 1: slowpoke: importing image 127.0.0.1:") && strstr(tty, "layer 1 of 2"),
              "no pull progress while apply waits: %s", tty);
    free(tty);
    ev = dd_events(&d, "slowpoke");
    cr_expect(strstr(ev, "layer 1 of 2") && strstr(ev, "MiB"), "%s", ev);
    free(ev);
    dd_finish(&d);
    fakereg_stop(&r);
}

/* Two pulls of one image at once, one by `duet image pull` and one by an
 * apply: each layer is downloaded once. */
Test(registry_faults, two_pulls_at_once_download_each_layer_once, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    struct fakereg r;
    fakereg_start(&r);
    atomic_store(&r.fault, FAULT_SLOW_LAYER);   /* long enough for the two to meet */
    const char *m = dd_manifest(&d, "twice.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: one}\nspec:\n"
                                "  image: {oci: \"127.0.0.1:%u/f/app:latest\"}\n  command: [/bin/sleep, \"3600\"]\n"
                                "---\napiVersion: duet/v1\nkind: Workload\nmetadata: {name: two}\nspec:\n"
                                "  image: {oci: \"127.0.0.1:%u/f/app:latest\"}\n  command: [/bin/sleep, \"3600\"]\n",
                                r.port, r.port);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "DUET_SOCKET=%s %s image pull 127.0.0.1:%u/f/app:latest >/dev/null 2>&1", d.sock,
             dd_env("DUET_BIN"), r.port);
    FILE *p = popen(cmd, "r");
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 60", m), 0, "%s", out);
    free(out);
    cr_expect_eq(pclose(p), 0);
    cr_expect_eq(atomic_load(&r.layer_gets), 2, "%d downloads of an image of 2 layers",
                 atomic_load(&r.layer_gets));
    dd_finish(&d);
    fakereg_stop(&r);
}

/* A blob of the test's own into a copy of the layout; its digest. */
static void layout_put(const char *layout, const char *text, char digest[DIGEST_STR])
{
    digest_of(text, strlen(text), digest);
    char p[700];
    snprintf(p, sizeof(p), "%s/blobs/sha256/%s", layout, digest_hex(digest));
    FILE *f = fopen(p, "we");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* A manifest list (an image index) with an image per platform: this
 * host's is picked; a list without it is refused naming what it has. */
Test(registry_faults, a_multi_platform_index_gives_this_hosts_image, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    struct fakereg r;
    fakereg_start(&r);
    char layout[300], cmd[800];
    snprintf(layout, sizeof(layout), "%s/layout", d.dir);
    snprintf(cmd, sizeof(cmd), "cp -a %s %s", dd_env("DUET_OCI"), layout);
    cr_assert_eq(system(cmd), 0);
    r.layout = layout;
    /* the two tagged manifests of the layout, as two platforms' */
    char base[80], latest[80], mt[100];
    cr_assert(tag_digest(&r, "base", base, mt) && tag_digest(&r, "latest", latest, mt));
    size_t bl = 0, ll = 0;
    free(blob(&r, base, &bl));
    free(blob(&r, latest, &ll));
    char idx[2048], both[DIGEST_STR], arm_only[DIGEST_STR];
    snprintf(idx, sizeof(idx),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
             "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
             "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
             "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
             "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}",
             base, bl, latest, ll);
    layout_put(layout, idx, both);
    snprintf(idx, sizeof(idx),
             "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":["
             "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
             "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\"}}]}",
             base, bl);
    layout_put(layout, idx, arm_only);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/f/app@%s", r.port, both), 0, "%s", out);
    cr_expect(strstr(out, latest), "the amd64 image was not the one picked: %s (want %s)", out, latest);
    free(out);
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/f/app@%s", r.port, arm_only), 0);
    cr_expect(strstr(out, "linux/amd64") && strstr(out, "arm64"), "%s", out);
    free(out);
    dd_finish(&d);
    fakereg_stop(&r);
}
