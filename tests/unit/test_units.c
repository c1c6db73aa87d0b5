#include <criterion/criterion.h>
#include <string.h>

#include "common/units.h"

Test(units, sizes_accepted)
{
    static const struct { const char *in; uint64_t want; } cases[] = {
        {"0", 0}, {"512", 512}, {"1Ki", 1024}, {"256Mi", 256ull << 20}, {"1Gi", 1ull << 30},
        {"1.5Gi", 3ull << 29}, {"2Ti", 2ull << 40}, {"0.5Mi", 512ull << 10}, {"1024Ti", 1ull << 50},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v = 1;
        const char *why = NULL;
        cr_expect(units_size_parse(cases[i].in, &v, &why), "%s rejected: %s", cases[i].in, why);
        cr_expect_eq(v, cases[i].want, "%s -> %llu", cases[i].in, (unsigned long long)v);
    }
}

Test(units, sizes_rejected)
{
    static const struct { const char *in; const char *why; } cases[] = {
        {"", "expected a size"}, {"Mi", "expected a size"}, {"12Qi", "expected a size"},
        {"512M", "powers of 1024"}, {"1GB", "powers of 1024"}, {"1.5", "whole number"},
        {"-1Mi", "expected a size"}, {"1 Mi", "expected a size"}, {"2Pi", "expected a size"},
        {"1025Ti", "larger than 1Pi"}, {"99999999999999999999999", "expected a size"},
        {"1..5Gi", "expected a size"}, {"1.Gi", "expected a size"}, {"0x10", "expected a size"},
        {"1.0000000001Gi", "expected a size"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t v;
        const char *why = NULL;
        cr_expect_not(units_size_parse(cases[i].in, &v, &why), "%s accepted", cases[i].in);
        cr_expect(why && strstr(why, cases[i].why), "%s: why=%s", cases[i].in, why);
    }
}

Test(units, durations)
{
    static const struct { const char *in; uint64_t want; } ok[] = {
        {"500ms", 500}, {"2s", 2000}, {"1m", 60000}, {"1h", 3600000}, {"1m30s", 90000},
        {"1.5s", 1500}, {"0s", 0}, {"168h", 604800000},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 1;
        const char *why;
        cr_expect(units_duration_parse(ok[i].in, &v, &why), "%s rejected", ok[i].in);
        cr_expect_eq(v, ok[i].want, "%s -> %llu", ok[i].in, (unsigned long long)v);
    }
    static const char *const bad[] = {"", "5", "s", "5d", "5 s", "-1s", "1.5.5s", "169h", "99999999999999h",
                                      "5sec", "5S", "1m30", NULL};
    for (size_t i = 0; bad[i]; i++) {
        uint64_t v;
        const char *why = NULL;
        cr_expect_not(units_duration_parse(bad[i], &v, &why), "\"%s\" accepted", bad[i]);
        cr_expect_not_null(why);
    }
}

Test(units, formatting)
{
    char buf[32];
    cr_expect_str_eq(units_size_format(256ull << 20, buf, sizeof(buf)), "256 MiB");
    cr_expect_str_eq(units_size_format((1ull << 30) + (48ull << 20), buf, sizeof(buf)), "1.05 GiB");
    cr_expect_str_eq(units_size_format(3ull << 29, buf, sizeof(buf)), "1.5 GiB");
    cr_expect_str_eq(units_size_format(100, buf, sizeof(buf)), "100 B");
    cr_expect_str_eq(units_duration_format(500, buf, sizeof(buf)), "500ms");
    cr_expect_str_eq(units_duration_format(3000, buf, sizeof(buf)), "3s");
    cr_expect_str_eq(units_duration_format(1500, buf, sizeof(buf)), "1.5s");
    cr_expect_str_eq(units_duration_format(90000, buf, sizeof(buf)), "1m30s");
}
