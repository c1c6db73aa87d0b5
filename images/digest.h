/*
 * digest.h - content digests as OCI writes them: "sha256:" and 64
 * lowercase hex digits.  The only algorithm duet accepts; a digest is
 * checked in full before it becomes part of a path.
 */
#ifndef DUET_IMAGES_DIGEST_H
#define DUET_IMAGES_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define DIGEST_HEX 64
#define DIGEST_STR (7 + DIGEST_HEX + 1)   /* "sha256:" hex NUL */

/* A running SHA-256: digest_init, digest_update as bytes pass, then
 * digest_final writes "sha256:<hex>" into out (DIGEST_STR bytes). */
struct digest_ctx {
    void *md;   /* OpenSSL's EVP_MD_CTX */
    uint64_t bytes;
};

void digest_init(struct digest_ctx *d);
void digest_update(struct digest_ctx *d, const void *buf, size_t len);
void digest_final(struct digest_ctx *d, char out[DIGEST_STR]);
/* Frees a context that was never finished (digest_final frees its own). */
void digest_abort(struct digest_ctx *d);

/* The digest of len bytes at buf. */
void digest_of(const void *buf, size_t len, char out[DIGEST_STR]);

/* The digest of the file open at fd, read from its start; -1 with err. */
int digest_of_fd(int fd, char out[DIGEST_STR], uint64_t *size, struct duet_err *err);

/* True for "sha256:" followed by exactly 64 lowercase hex digits.
 * Inline: reference parsing (manifests, the duet command) needs it without
 * libcrypto. */
static inline bool digest_valid(const char *s)
{
    if (!s || s[0] != 's' || s[1] != 'h' || s[2] != 'a' || s[3] != '2' || s[4] != '5' || s[5] != '6' || s[6] != ':')
        return false;
    for (size_t i = 0; i < DIGEST_HEX; i++) {
        char c = s[7 + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return s[7 + DIGEST_HEX] == '\0';
}

/* The hex part of a valid digest (what names files in the store). */
static inline const char *digest_hex(const char *digest)
{
    return digest + 7;
}

#endif
