/*
 * hex.h - bytes as lowercase hex digits (digests, tokens).
 */
#ifndef DUET_HEX_H
#define DUET_HEX_H

#include <stddef.h>

/* n bytes into 2n digits and a NUL at out[2n]. */
static inline void hex_encode(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

#endif
