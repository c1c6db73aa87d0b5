/*
 * registry.h - a client of the OCI distribution API (what Docker Hub,
 * distribution's registry, ghcr.io, quay.io and Harbor serve), enough to
 * pull: manifests and blobs by tag or digest, with bearer-token and basic
 * authentication.
 *
 * HTTPS always, certificates verified; plain HTTP only for localhost,
 * 127.0.0.0/8 and the registries named insecure, and for those only when
 * TLS is not spoken there (as docker does).  Credentials come from a
 * docker-style auth file ({"auths": {"HOST": {"auth": BASE64(user:pass)}}},
 * what `docker login` writes) and never appear in a message.  Every answer
 * is bounded; a blob is verified against its digest and size while it
 * streams, and an answer that stalls for 30 s ends the pull.
 */
#ifndef DUET_IMAGES_REGISTRY_H
#define DUET_IMAGES_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "images/ref.h"

struct registry_opts {
    const char *ca_file;         /* CA certificates trusted besides the system's, or NULL */
    const char *auth_file;       /* NULL: /etc/duet/auth.json, then $HOME/.docker/config.json */
    const char *const *insecure; /* HOST:PORT reached over plain HTTP when TLS fails there */
    size_t n_insecure;
};

struct registry;

/* A session with the registry r names (its repository's pull scope). */
struct registry *registry_new(const struct image_ref *r, const struct registry_opts *o, struct duet_err *err);
void registry_free(struct registry *g);

/* The manifest (or index) ref names (a tag or a digest), at most max
 * bytes, NUL-terminated; its media type into mt.  NULL with err. */
char *registry_manifest(struct registry *g, const char *ref, size_t max, size_t *len, char *mt, size_t mtlen,
                        struct duet_err *err);

/* The blob with that digest and size, written to fd as it streams and
 * verified: -1 with err when it is not what the digest says.  on_bytes
 * (may be NULL) hears the bytes received so far as they come. */
int registry_blob(struct registry *g, const char *digest, uint64_t size, int fd,
                  void (*on_bytes)(void *opaque, uint64_t bytes), void *opaque, struct duet_err *err);

/* Once per process, before any thread uses a registry (libcurl's global
 * state). */
void registry_global_init(void);

#endif
