/*
 * execwire.h - the frames of an interactive `duet exec` (-i, -t) once its
 * HTTP request has been answered "101 Switching Protocols" (docs/api.md).
 *
 *   byte 0     type
 *   bytes 1-3  payload length, big-endian, at most EXECWIRE_DATA_MAX
 *
 * client to daemon:  'i' input for the command (1 to EXECWIRE_DATA_MAX bytes)
 *                    'c' the input has ended (empty)
 *                    'w' the terminal's new size: rows, cols, 2 bytes each
 * daemon to client:  'o', 'e' what the command wrote on stdout, stderr
 *                    (with a terminal, everything is 'o')
 *                    's' it ended: 4-byte big-endian status as a shell
 *                    gives it (128+N for signal N, -1: it could not run),
 *                    after all of its output; nothing follows
 *                    'x' it could not be run: a message, then 's' -1
 *
 * Both ends refuse any other type or a longer payload as a broken stream.
 * Header-only: the daemon's API and the duet command share it.
 */
#ifndef DUET_EXECWIRE_H
#define DUET_EXECWIRE_H

#include <stddef.h>
#include <stdint.h>

#define EXECWIRE_HDR 4
#define EXECWIRE_DATA_MAX 65536u
#define EXECWIRE_PROTOCOL "duet-exec"

enum {
    EXECWIRE_IN = 'i',
    EXECWIRE_IN_END = 'c',
    EXECWIRE_WINSIZE = 'w',
    EXECWIRE_OUT = 'o',
    EXECWIRE_ERR = 'e',
    EXECWIRE_STATUS = 's',
    EXECWIRE_FAIL = 'x',
};

static inline void execwire_hdr_put(uint8_t *h, uint8_t type, uint32_t len)
{
    h[0] = type;
    h[1] = (uint8_t)(len >> 16);
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
}

static inline uint32_t execwire_hdr_len(const uint8_t *h)
{
    return ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
}

/* Is this a frame the given side may receive, at this length? */
static inline int execwire_valid(uint8_t type, uint32_t len, int to_daemon)
{
    if (to_daemon)
        return (type == EXECWIRE_IN && len >= 1 && len <= EXECWIRE_DATA_MAX) ||
               (type == EXECWIRE_IN_END && len == 0) || (type == EXECWIRE_WINSIZE && len == 4);
    return ((type == EXECWIRE_OUT || type == EXECWIRE_ERR) && len >= 1 && len <= EXECWIRE_DATA_MAX) ||
           (type == EXECWIRE_STATUS && len == 4) || (type == EXECWIRE_FAIL && len <= 4096);
}

#endif
