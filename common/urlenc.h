/*
 * urlenc.h - percent-encoding for a URL's query (RFC 3986): letters,
 * digits, "-_.~" and the caller's extra characters pass, every other byte
 * becomes %XX.  Header-only: the duet command and the registry client
 * both use it, and the command links no URL library.
 */
#ifndef DUET_URLENC_H
#define DUET_URLENC_H

#include <stddef.h>
#include <string.h>

/* Encodes in into out (len bytes, always terminated; cut short when it
 * does not fit). */
static inline void duet_url_escape(const char *in, const char *keep, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    if (!len)
        return;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < len; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p) ||
            (keep && strchr(keep, *p))) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

#endif
