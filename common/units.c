#include "units.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Reads "123" or "1.25" at *p; returns false when there is no digit.  The
 * value is kept as an exact fraction (mantissa / 10^scale) so that "1.1Gi"
 * does not pick up floating point error. */
static bool read_decimal(const char **p, uint64_t *mant, unsigned *scale)
{
    const char *s = *p;
    uint64_t m = 0;
    unsigned sc = 0, digits = 0;
    bool dot = false;
    for (;; s++) {
        if (*s >= '0' && *s <= '9') {
            if (m > (UINT64_MAX - 9) / 10)
                return false;             /* more digits than any real value */
            m = m * 10 + (uint64_t)(*s - '0');
            digits++;
            if (dot)
                sc++;
        } else if (*s == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    if (digits == 0 || sc > 9 || (dot && s[-1] == '.'))
        return false;
    *p = s;
    *mant = m;
    *scale = sc;
    return true;
}

static uint64_t pow10u(unsigned n)
{
    uint64_t v = 1;
    while (n--)
        v *= 10;
    return v;
}

/* mant / 10^scale * mult, rounded down; false on overflow past limit. */
static bool scale_value(uint64_t mant, unsigned scale, uint64_t mult, uint64_t limit, uint64_t *out)
{
    unsigned __int128 v = (unsigned __int128)mant * mult / pow10u(scale);
    if (v > limit)
        return false;
    *out = (uint64_t)v;
    return true;
}

bool units_size_parse(const char *s, uint64_t *bytes, const char **why)
{
    static const struct { const char *suf; uint64_t mult; } sfx[] = {
        {"", 1}, {"Ki", UINT64_C(1) << 10}, {"Mi", UINT64_C(1) << 20},
        {"Gi", UINT64_C(1) << 30}, {"Ti", UINT64_C(1) << 40},
    };
    const char *p = s;
    uint64_t mant;
    unsigned scale;
    *why = "expected a size such as 256Mi, 1Gi or a number of bytes (units: Ki, Mi, Gi, Ti)";
    if (!read_decimal(&p, &mant, &scale))
        return false;
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
        if (strcmp(p, sfx[i].suf) != 0)
            continue;
        if (i == 0 && scale != 0) {
            *why = "a size in bytes must be a whole number; add a unit (Ki, Mi, Gi, Ti)";
            return false;
        }
        if (!scale_value(mant, scale, sfx[i].mult, DUET_SIZE_MAX, bytes)) {
            *why = "size is larger than 1Pi";
            return false;
        }
        return true;
    }
    if (strcmp(p, "K") == 0 || strcmp(p, "M") == 0 || strcmp(p, "G") == 0 || strcmp(p, "T") == 0 ||
        strcmp(p, "k") == 0 || strcmp(p, "KB") == 0 || strcmp(p, "MB") == 0 || strcmp(p, "GB") == 0 ||
        strcmp(p, "TB") == 0)
        *why = "units are powers of 1024 written Ki, Mi, Gi, Ti (e.g. 512Mi, not 512M or 512MB)";
    return false;
}

bool units_duration_parse(const char *s, uint64_t *ms, const char **why)
{
    static const struct { const char *unit; uint64_t mult; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
    };
    const char *p = s;
    unsigned __int128 total = 0;
    *why = "expected a duration such as 500ms, 2s, 1m or 1m30s (units: ms, s, m, h)";
    if (*p == '\0')
        return false;
    while (*p) {
        uint64_t mant;
        unsigned scale;
        if (!read_decimal(&p, &mant, &scale))
            return false;
        size_t i, best = SIZE_MAX, bestlen = 0;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t n = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, n) == 0 && n > bestlen &&
                !(p[n] >= 'a' && p[n] <= 'z')) {
                best = i;
                bestlen = n;
            }
        }
        if (best == SIZE_MAX) {
            if (*p == '\0')
                *why = "a duration needs a unit: ms, s, m or h (e.g. 5s)";
            return false;
        }
        total += (unsigned __int128)mant * units[best].mult / pow10u(scale);
        if (total > DUET_DURATION_MAX_MS) {
            *why = "duration is longer than 7 days";
            return false;
        }
        p += bestlen;
    }
    *ms = (uint64_t)total;
    return true;
}

char *units_size_format(uint64_t bytes, char *buf, size_t len)
{
    static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    unsigned i = 0;
    uint64_t unit = 1;
    while (i + 1 < sizeof(names) / sizeof(names[0]) && bytes >= unit * 1024) {
        unit *= 1024;
        i++;
    }
    if (bytes % unit == 0)
        snprintf(buf, len, "%" PRIu64 " %s", bytes / unit, names[i]);
    else {
        /* Two decimals, trailing zeros dropped: 1.05 GiB, 1.5 GiB. */
        int n = snprintf(buf, len, "%.2f", (double)bytes / (double)unit);
        while (n > 0 && (size_t)n < len && buf[n - 1] == '0')
            buf[--n] = '\0';
        if (n > 0 && buf[n - 1] == '.')
            buf[--n] = '\0';
        snprintf(buf + n, len - (size_t)n, " %s", names[i]);
    }
    return buf;
}

char *units_duration_format(uint64_t ms, char *buf, size_t len)
{
    if (ms < 1000)
        snprintf(buf, len, "%" PRIu64 "ms", ms);
    else if (ms < 60000 && ms % 1000 == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
    else if (ms < 60000)
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    else if (ms % 60000 == 0)
        snprintf(buf, len, "%" PRIu64 "m", ms / 60000);
    else
        snprintf(buf, len, "%" PRIu64 "m%" PRIu64 "s", ms / 60000, (ms % 60000) / 1000);
    return buf;
}
