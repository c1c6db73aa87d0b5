/*
 * Strict base64: what a guest's agent sends is decoded exactly or refused.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "common/base64.h"

Test(base64, decodes_what_it_should)
{
    static const struct {
        const char *in, *out;
    } ok[] = {{"", ""}, {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"}, {"Zm9vYg==", "foob"},
              {"aGVsbG8gd29ybGQK", "hello world\n"}, {"+/+/", "\xfb\xff\xbf"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint8_t buf[64];
        ssize_t n = base64_decode(ok[i].in, strlen(ok[i].in), buf, sizeof(buf));
        cr_assert_eq(n, (ssize_t)strlen(ok[i].out), "%s", ok[i].in);
        cr_assert_eq(memcmp(buf, ok[i].out, (size_t)n), 0, "%s", ok[i].in);
    }
}

Test(base64, refuses_what_is_not_base64)
{
    static const char *const bad[] = {"Z",      "Zg=",  "Zg",       "Z===", "====", "Zg==Zg==", "Zm9v\n",
                                      " Zm9v", "Zm-_", "Zg=a",     "Zm9\x80", "Zm9v====", "=Zm9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t buf[64];
        cr_expect_eq(base64_decode(bad[i], strlen(bad[i]), buf, sizeof(buf)), -1, "\"%s\" was taken", bad[i]);
    }
    /* an embedded NUL is not base64 either */
    uint8_t buf[8];
    cr_expect_eq(base64_decode("Zm\0v", 4, buf, sizeof(buf)), -1);
    /* and the output never passes its room */
    cr_expect_eq(base64_decode("Zm9vYmFy", 8, buf, 5), -1);
    cr_expect_eq(base64_decode("Zm9vYmFy", 8, buf, 6), 6);
}
