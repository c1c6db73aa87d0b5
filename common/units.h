/*
 * units.h - sizes and durations as users write them in manifests.
 *
 * Sizes: plain bytes or a number with Ki, Mi, Gi, Ti (powers of 1024),
 * decimals allowed ("1.5Gi").  Durations: one or more number+unit groups with
 * units ms, s, m, h ("500ms", "2s", "1m30s").  Both parsers reject anything
 * else and explain the expected form in `why`, which is a static string.
 */
#ifndef DUET_UNITS_H
#define DUET_UNITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest accepted size: 1 PiB, far beyond any host, far below overflow. */
#define DUET_SIZE_MAX (UINT64_C(1) << 50)
/* Longest accepted duration: 7 days, in milliseconds. */
#define DUET_DURATION_MAX_MS (UINT64_C(7) * 24 * 3600 * 1000)

bool units_size_parse(const char *s, uint64_t *bytes, const char **why);
bool units_duration_parse(const char *s, uint64_t *ms, const char **why);

/* "256 MiB", "1.5 GiB", "512 B": buf of at least 32 bytes. */
char *units_size_format(uint64_t bytes, char *buf, size_t len);
/* "500ms", "2.5s", "1m30s": buf of at least 32 bytes. */
char *units_duration_format(uint64_t ms, char *buf, size_t len);

#endif
