/*
 * digest.c - SHA-256 through OpenSSL's EVP interface (libcrypto), the
 * implementation with the host's CPU extensions behind it.
 */
#include "digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/hex.h"

void digest_init(struct digest_ctx *d)
{
    d->md = EVP_MD_CTX_new();
    if (!d->md || EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) != 1)
        abort();
    d->bytes = 0;
}

void digest_update(struct digest_ctx *d, const void *buf, size_t len)
{
    if (len && EVP_DigestUpdate(d->md, buf, len) != 1)
        abort();
    d->bytes += len;
}

void digest_final(struct digest_ctx *d, char out[DIGEST_STR])
{
    unsigned char h[32];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(d->md, h, &n) != 1 || n != sizeof(h))
        abort();
    EVP_MD_CTX_free(d->md);
    d->md = NULL;
    memcpy(out, "sha256:", 7);
    hex_encode(h, sizeof(h), out + 7);
}

void digest_abort(struct digest_ctx *d)
{
    EVP_MD_CTX_free(d->md);
    d->md = NULL;
}

void digest_of(const void *buf, size_t len, char out[DIGEST_STR])
{
    struct digest_ctx d;
    digest_init(&d);
    digest_update(&d, buf, len);
    digest_final(&d, out);
}

int digest_of_fd(int fd, char out[DIGEST_STR], uint64_t *size, struct duet_err *err)
{
    struct digest_ctx d;
    digest_init(&d);
    char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            digest_abort(&d);
            return duet_err_sys(err, "cannot read");
        }
        if (n == 0)
            break;
        digest_update(&d, buf, (size_t)n);
        off += n;
    }
    if (size)
        *size = d.bytes;
    digest_final(&d, out);
    return 0;
}
