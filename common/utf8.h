/*
 * utf8.h - strict UTF-8: no overlong forms, no surrogates, nothing past
 * U+10FFFF.  Header-only: the manifest parser, the domain XML writer and
 * anything else that must refuse what JSON or XML cannot carry share it.
 * Also: text of someone else's (an image's, a registry's, a workload's)
 * with its control characters masked before it reaches a terminal.
 */
#ifndef DUET_UTF8_H
#define DUET_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid sequence at s (of n bytes left), 0 when invalid. */
static inline size_t duet_utf8_seq(const unsigned char *s, size_t n)
{
    if (n >= 1 && s[0] < 0x80)
        return 1;
    if (n >= 2 && s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (n >= 3 && s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
            return 0;
        return 3;
    }
    if (n >= 4 && s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
            return 0;
        return 4;
    }
    return 0;
}

/* All n bytes of s are UTF-8 (a NUL byte is not allowed). */
static inline bool duet_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = p[i] ? duet_utf8_seq(p + i, n - i) : 0;
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* c as it may be shown on a terminal: a control character (the start of
 * an escape sequence) becomes '?'. */
static inline char duet_char_shown(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f ? '?' : c;
}

/* The same over all of s, in place. */
static inline void duet_text_mask(char *s)
{
    for (; *s; s++)
        *s = duet_char_shown(*s);
}

#endif
