/*
 * base64.h - strict base64 (RFC 4648, the standard alphabet, padded), for
 * what a guest or a registry sends: anything else is refused, never
 * guessed at.
 */
#ifndef DUET_BASE64_H
#define DUET_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Decodes in (len bytes, a multiple of 4, '=' only as the last one or two)
 * into out (room for cap bytes); the number of bytes, or -1 when in is not
 * base64 or out is too small.  Whitespace is not base64. */
ssize_t base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* The most bytes len characters of base64 can decode to. */
static inline size_t base64_decoded_max(size_t len)
{
    return len / 4 * 3;
}

#endif
