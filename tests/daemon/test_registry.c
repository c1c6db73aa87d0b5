/*
 * test_registry.c - pulling from a real registry: Debian's docker-registry
 * (the distribution project's), started by the test on 127.0.0.1 with its
 * pid kept, fed with skopeo from the layout `make images` builds.  One
 * with TLS (a CA the test makes, trusted through --registry-ca) and
 * htpasswd authentication (credentials through --registry-auth); one
 * plain, which a localhost registry may be.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "dtest.h"

struct reg {
    char dir[300];
    unsigned port;
    pid_t pid;
    bool tls, token;
    pid_t realm_pid;               /* the token's server (busybox httpd), for token auth */
};

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

static bool port_answers(unsigned port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(s);
    return ok;
}

/* A registry in d's directory; with tls, a CA and a certificate for
 * 127.0.0.1, and htpasswd auth for user "duet" (password in
 * dir/password, never to be seen in duetd's log). */
static pid_t spawn_logged(const char *log, const char *const *argv)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Token authentication as Docker Hub does it, with distribution's own
 * token check: a JWT for the repository, signed by a key whose
 * certificate the registry trusts (x5c in its header), served as
 * {"token": ...} from the realm by busybox httpd. */
static void reg_token_realm(struct reg *r, const char *repository)
{
    unsigned realm_port = r->port + 1;
    sh("cd %s && mkdir -p www && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=duet-token "
       "-keyout tok.key -out tok.pem 2>/dev/null && "
       "b64u() { base64 -w0 | tr '+/' '-_' | tr -d '='; } && "
       "x5c=$(openssl x509 -in tok.pem -outform DER | base64 -w0) && now=$(date +%%s) && "
       "h=$(printf '{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5c\":[\"%%s\"]}' \"$x5c\" | b64u) && "
       "p=$(printf '{\"iss\":\"duet-issuer\",\"sub\":\"duet\",\"aud\":\"duet-service\",\"exp\":%%d,"
       "\"nbf\":%%d,\"iat\":%%d,\"jti\":\"t1\",\"access\":[{\"type\":\"repository\",\"name\":\"%s\","
       "\"actions\":[\"pull\",\"push\"]}]}' $((now+7200)) $((now-60)) $((now-60)) | b64u) && "
       "sig=$(printf '%%s.%%s' \"$h\" \"$p\" | openssl dgst -sha256 -sign tok.key | b64u) && "
       "printf '{\"token\":\"%%s.%%s.%%s\"}' \"$h\" \"$p\" \"$sig\" > www/token",
       r->dir, repository);
    char www[400], listen[64], log[400];
    snprintf(www, sizeof(www), "%s/www", r->dir);
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", realm_port);
    snprintf(log, sizeof(log), "%s/realm.log", r->dir);
    const char *argv[] = {"busybox", "httpd", "-f", "-p", listen, "-h", www, NULL};
    r->realm_pid = spawn_logged(log, argv);
}

static void reg_start(struct dd *d, struct reg *r, bool tls, bool token)
{
    memset(r, 0, sizeof(*r));
    r->tls = tls;
    r->token = token;
    snprintf(r->dir, sizeof(r->dir), "%s/registry-%s", d->dir, tls ? "tls" : token ? "token" : "plain");
    r->port = 20000 + ((unsigned)getpid() * 4 + (tls ? 1 : 0) + (token ? 2 : 0)) % 20000;
    sh("mkdir -p %s/data", r->dir);
    if (token)
        reg_token_realm(r, "team/busybox");
    FILE *f;
    char p[400];
    if (tls) {
        sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=duet-test-ca -keyout ca.key "
           "-out ca.pem 2>/dev/null && "
           "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null && "
           "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext && "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext "
           "-out server.pem 2>/dev/null && mkdir -p certs && cp ca.pem certs/ca.crt && "
           "printf 's3cret-pw-%%s' $$ > password && htpasswd -Bbn duet \"$(cat password)\" > htpasswd 2>/dev/null && "
           "printf '{\"auths\": {\"127.0.0.1:%u\": {\"auth\": \"%%s\"}}}' \"$(printf 'duet:%%s' \"$(cat password)\" "
           "| base64 -w0)\" > auth.json",
           r->dir, r->port);
    }
    snprintf(p, sizeof(p), "%s/config.yml", r->dir);
    f = fopen(p, "w");
    cr_assert(f);
    fprintf(f, "version: 0.1\nlog:\n  level: info\n  accesslog: {disabled: false}\nstorage:\n  filesystem:\n"
               "    rootdirectory: %s/data\n  delete: {enabled: true}\nhttp:\n  addr: 127.0.0.1:%u\n",
            r->dir, r->port);
    if (tls)
        fprintf(f, "  tls:\n    certificate: %s/server.pem\n    key: %s/server.key\nauth:\n  htpasswd:\n"
                   "    realm: duet-test\n    path: %s/htpasswd\n",
                r->dir, r->dir, r->dir);
    if (token)
        fprintf(f, "auth:\n  token:\n    realm: http://127.0.0.1:%u/token\n    service: duet-service\n"
                   "    issuer: duet-issuer\n    rootcertbundle: %s/tok.pem\n",
                r->port + 1, r->dir);
    fclose(f);
    char log[400];
    snprintf(log, sizeof(log), "%s/log", r->dir);
    const char *argv[] = {"docker-registry", "serve", p, NULL};
    r->pid = spawn_logged(log, argv);
    uint64_t until = dd_now_ms() + 20000;
    while (!port_answers(r->port) || (token && !port_answers(r->port + 1))) {
        cr_assert(dd_now_ms() < until, "the registry did not listen on %u; see %s/log", r->port, r->dir);
        cr_assert_eq(waitpid(r->pid, NULL, WNOHANG), 0, "the registry ended; see %s/log", r->dir);
        usleep(50000);
    }
}

/* skopeo copies the test layout's TAG to the registry as NAME. */
static void reg_push(struct reg *r, const char *tag, const char *name)
{
    if (r->tls)
        sh("skopeo copy -q --dest-cert-dir %s/certs --dest-creds \"duet:$(cat %s/password)\" oci:%s:%s "
           "docker://127.0.0.1:%u/%s",
           r->dir, r->dir, dd_env("DUET_OCI"), tag, r->port, name);
    else
        sh("skopeo copy -q --dest-tls-verify=false oci:%s:%s docker://127.0.0.1:%u/%s", dd_env("DUET_OCI"), tag,
           r->port, name);
}

static void reg_stop(struct reg *r)
{
    pid_t *pids[] = {&r->pid, &r->realm_pid};
    for (size_t i = 0; i < 2; i++)
        if (*pids[i] > 0) {
            kill(*pids[i], SIGTERM);
            waitpid(*pids[i], NULL, 0);
            *pids[i] = -1;
        }
}

static int count_in_file(const char *path, const char *needle)
{
    char *text = NULL;
    size_t cap = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    while (getline(&text, &cap, f) > 0)
        n += strstr(text, needle) != NULL;
    free(text);
    fclose(f);
    return n;
}

Test(registry, pulled_over_tls_with_credentials_that_never_show, .timeout = 180)
{
    struct dd d;
    dd_prepare(&d, NULL);
    struct reg r;
    reg_start(&d, &r, true, false);
    reg_push(&r, "latest", "team/busybox:1");
    char ca[400], auth[400], password[200] = "";
    snprintf(ca, sizeof(ca), "%s/ca.pem", r.dir);
    snprintf(auth, sizeof(auth), "%s/auth.json", r.dir);
    char pwfile[400];
    snprintf(pwfile, sizeof(pwfile), "%s/password", r.dir);
    FILE *pf = fopen(pwfile, "r");
    cr_assert(pf && fgets(password, sizeof(password), pf));
    fclose(pf);

    /* no credentials (an auth file without this registry): refused, and
     * the message says where they go */
    char empty[400];
    snprintf(empty, sizeof(empty), "%s/empty.json", r.dir);
    sh("echo '{\"auths\": {}}' > %s", empty);
    d.extra[0] = "--registry-ca";
    d.extra[1] = ca;
    d.extra[2] = "--registry-auth";
    d.extra[3] = empty;
    dd_start(&d);
    char *out;
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/team/busybox:1", r.port), 0);
    cr_expect(strstr(out, "empty.json") && strstr(out, "401"), "%s", out);
    free(out);
    dd_stop(&d);

    /* credentials, but the test's CA not trusted: the certificate is refused */
    d.extra[0] = "--registry-auth";
    d.extra[1] = auth;
    d.extra[2] = NULL;
    dd_start(&d);
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/team/busybox:1", r.port), 0);
    cr_expect(strstr(out, "certificate") || strstr(out, "SSL"), "%s", out);
    free(out);
    dd_stop(&d);

    /* both: pulled, and run from a manifest */
    d.extra[2] = "--registry-ca";
    d.extra[3] = ca;
    dd_start(&d);
    cr_assert_eq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/team/busybox:1", r.port), 0, "%s", out);
    cr_expect(strstr(out, "2 layers"), "%s", out);
    free(out);
    const char *m = dd_manifest(&d, "reg.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: fromreg}\nspec:\n"
                                "  image: {oci: \"127.0.0.1:%u/team/busybox:1\"}\n  restart: never\n",
                                r.port);
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s", m), 0, "%s", out);
    free(out);
    cr_expect(duet_logs_until(&d, "fromreg", "hello-from-oci from /srv as 1000", 20000));
    /* the password is nowhere duet writes */
    char log[300];
    snprintf(log, sizeof(log), "%s/duetd.log", d.dir);
    cr_expect_eq(count_in_file(log, password), 0, "the password is in duetd's log");
    char *ev = dd_events(&d, "fromreg");
    cr_expect(!strstr(ev, password), "the password is in an event");
    free(ev);
    cr_assert_eq(dd_duet(&d, &out, "describe fromreg"), 0);
    cr_expect(!strstr(out, password), "%s", out);
    free(out);
    dd_finish(&d);
    reg_stop(&r);
}

Test(registry, a_plain_local_registry_and_only_the_missing_layer_is_fetched, .timeout = 120)
{
    struct dd d;
    dd_prepare(&d, NULL);
    struct reg r;
    reg_start(&d, &r, false, false);
    reg_push(&r, "base", "x/busybox:base");
    reg_push(&r, "latest", "x/busybox:2");
    dd_start(&d);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/x/busybox:base", r.port), 0, "%s", out);
    free(out);
    char log[400];
    snprintf(log, sizeof(log), "%s/log", r.dir);
    int before = count_in_file(log, "GET /v2/x/busybox/blobs/sha256:");
    cr_assert_eq(dd_duet(&d, &out, "run --rm --image 127.0.0.1:%u/x/busybox:2 -- 'cat /srv/hello.txt'", r.port), 0,
                 "%s", out);
    cr_expect(strstr(out, "the second layer"), "%s", out);
    free(out);
    int after = count_in_file(log, "GET /v2/x/busybox/blobs/sha256:");
    /* the config and the one layer base lacks; not the base layer again */
    cr_expect_eq(after - before, 2, "%d blobs fetched for an image that shares its base layer", after - before);
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/x/busybox:nope", r.port), 0);
    cr_expect(strstr(out, "no such image or tag"), "%s", out);
    free(out);
    /* a registry that serves a layer that is not what its digest says (its
     * storage damaged): refused, nothing kept, and fine again once the
     * registry is */
    reg_push(&r, "latest", "y/busybox:1");
    cr_assert_eq(dd_duet(&d, &out, "image rm 127.0.0.1:%u/x/busybox:2", r.port), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image rm 127.0.0.1:%u/x/busybox:base", r.port), 0, "%s", out);
    free(out);
    sh("cd %s/data/docker/registry/v2/blobs/sha256 && for f in */*/data; do "
       "if [ \"$(head -c2 $f | od -An -tx1 | tr -d ' ')\" = 1f8b ]; then cp $f $f.good; "
       "printf X | dd of=$f bs=1 seek=200 conv=notrunc 2>/dev/null; fi; done",
       r.dir);
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/y/busybox:1", r.port), 0);
    cr_expect(strstr(out, "hashing to") || strstr(out, "digest") || strstr(out, "not a readable layer"), "%s", out);
    free(out);
    char layers[300];
    snprintf(layers, sizeof(layers), "%s/images/layers", d.state);
    cr_expect_eq(dd_count_dirs(layers), 0, "a layer that failed its digest was kept");
    sh("cd %s/data/docker/registry/v2/blobs/sha256 && for f in */*/data.good; do mv $f ${f%%.good}; done", r.dir);
    cr_assert_eq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/y/busybox:1", r.port), 0, "%s", out);
    free(out);
    reg_stop(&r);
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/x/busybox:2", r.port), 0, "%s", out);
    cr_expect(strstr(out, "Couldn't connect") || strstr(out, "Failed to connect"), "%s", out);
    free(out);
    dd_finish(&d);
}

/* Bearer tokens, as Docker Hub and distribution's token auth ask for them:
 * the 401's challenge names the realm; the token fetched there opens the
 * manifest and the blobs. */
Test(registry, a_bearer_token_is_fetched_from_the_realm, .timeout = 120)
{
    struct dd d;
    dd_prepare(&d, NULL);
    struct reg r;
    reg_start(&d, &r, false, true);
    reg_push(&r, "latest", "team/busybox:1");
    dd_start(&d);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "run --rm --image 127.0.0.1:%u/team/busybox:1", r.port), 0, "%s", out);
    cr_expect(strstr(out, "hello-from-oci from /srv as 1000"), "%s", out);
    free(out);
    char log[400];
    snprintf(log, sizeof(log), "%s/log", r.dir);
    cr_expect_gt(count_in_file(log, "authorized request"), 0, "the registry saw no token");
    /* a repository the token does not cover: refused with the cause (the
     * registry checks the token before the name) */
    cr_expect_neq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/other/busybox:1", r.port), 0);
    cr_expect(strstr(out, "refused") && strstr(out, "401"), "%s", out);
    free(out);
    dd_finish(&d);
    reg_stop(&r);
}

/* A tag pushed again and pulled again names the new image; a workload
 * still running on the old one keeps it: neither `image rm` of the old
 * image's id nor `prune` takes its layers from under it.  Once the
 * workload is gone, prune removes the old image. */
Test(registry, a_moved_tag_leaves_a_running_workloads_image_in_place, .timeout = 120)
{
    struct dd d;
    dd_prepare(&d, NULL);
    struct reg r;
    reg_start(&d, &r, false, false);
    reg_push(&r, "base", "m/app:1");
    dd_start(&d);
    const char *m = dd_manifest(&d, "moved.yaml",
                                "apiVersion: duet/v1\nkind: Workload\nmetadata: {name: onold}\nspec:\n"
                                "  image: {oci: \"127.0.0.1:%u/m/app:1\"}\n  command: [/bin/sleep, \"3600\"]\n",
                                r.port);
    char *out;
    cr_assert_eq(dd_duet(&d, &out, "apply -f %s --wait --timeout 60", m), 0, "%s", out);
    free(out);
    json_t *old = dd_get(&d, "/v1/images");
    cr_assert_eq(json_array_size(json_object_get(old, "images")), 1);
    char old_id[80];
    snprintf(old_id, sizeof(old_id), "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(old, "images"), 0), "id")));
    json_decref(old);
    /* the tag moves to the two-layer image */
    reg_push(&r, "latest", "m/app:1");
    cr_assert_eq(dd_duet(&d, &out, "image pull 127.0.0.1:%u/m/app:1", r.port), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image inspect %s -o json", old_id), 0, "%s", out);
    cr_expect(strstr(out, "\"refs\": []") || strstr(out, "\"refs\":[]"), "the old image keeps the tag: %s", out);
    free(out);
    cr_expect_neq(dd_duet(&d, &out, "image rm %s", old_id), 0, "the running workload's image was removed");
    cr_expect(strstr(out, "onold"), "the refusal names the workload: %s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image prune"), 0, "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "image inspect %s", old_id), 0, "prune removed the running workload's image");
    free(out);
    cr_expect(dd_field_is(&d, "onold", "state", "running"));
    cr_assert_eq(dd_duet(&d, &out, "delete onold --wait"), 0, "%s", out);
    free(out);
    cr_assert_eq(dd_duet(&d, &out, "image prune"), 0, "%s", out);
    free(out);
    cr_expect_neq(dd_duet(&d, &out, "image inspect %s", old_id), 0, "prune kept an image nothing uses");
    free(out);
    dd_finish(&d);
    reg_stop(&r);
}
