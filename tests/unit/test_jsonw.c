/* The streaming JSON writer: output must parse, and hostile strings must
 * come out escaped (control bytes, quotes, invalid UTF-8). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"

static char *render(void (*fn)(struct jsonw *), bool pretty)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct jsonw w;
    jsonw_init(&w, f, pretty);
    fn(&w);
    fclose(f);
    return buf;
}

static void doc(struct jsonw *w)
{
    jsonw_object_begin(w);
    jsonw_kv_string(w, "plain", "web");
    jsonw_kv_string(w, "quote", "a\"b\\c");
    jsonw_kv_string(w, "ctl", "line\nbreak\ttab\x01\x1b[31m");
    jsonw_kv_string(w, "utf8", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3");
    jsonw_kv_string(w, "bad", "a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d\xe2\x82");
    jsonw_kv_number(w, "whole", 2.0);
    jsonw_kv_number(w, "frac", 0.25);
    jsonw_kv_number(w, "neg", -3.0);
    jsonw_kv_uint(w, "big", UINT64_C(9007199254740993));
    jsonw_kv_number(w, "third", 1.0 / 3.0);
    jsonw_kv_number(w, "small", 0.000125);
    jsonw_kv_number(w, "negfrac", -2.5);
    jsonw_key(w, "i");
    jsonw_int(w, INT64_MIN);
    jsonw_key(w, "empty_obj");
    jsonw_object_begin(w);
    jsonw_object_end(w);
    jsonw_key(w, "list");
    jsonw_array_begin(w);
    jsonw_bool(w, true);
    jsonw_null(w);
    jsonw_array_begin(w);
    jsonw_array_end(w);
    jsonw_array_end(w);
    jsonw_object_end(w);
}

static void check(bool pretty)
{
    char *s = render(doc, pretty);
    json_error_t err;
    json_t *root = json_loads(s, 0, &err);
    cr_assert_not_null(root, "not JSON (%s): %s", err.text, s);
    cr_expect_str_eq(json_string_value(json_object_get(root, "quote")), "a\"b\\c");
    cr_expect_str_eq(json_string_value(json_object_get(root, "ctl")), "line\nbreak\ttab\x01\x1b[31m");
    cr_expect_str_eq(json_string_value(json_object_get(root, "utf8")), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3");
    /* each invalid byte becomes U+FFFD (EF BF BD) */
    const char *bad = json_string_value(json_object_get(root, "bad"));
    cr_expect_str_eq(bad, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                          "d\xef\xbf\xbd\xef\xbf\xbd");
    cr_expect(json_is_integer(json_object_get(root, "whole")));
    cr_expect_eq(json_integer_value(json_object_get(root, "neg")), -3);
    cr_expect_eq(json_real_value(json_object_get(root, "frac")), 0.25);
    cr_expect_eq(json_integer_value(json_object_get(root, "i")), INT64_MIN);
    cr_expect_eq(json_array_size(json_object_get(root, "list")), 3);
    cr_expect_eq(json_integer_value(json_object_get(root, "big")), 9007199254740993LL);
    cr_expect_eq(json_real_value(json_object_get(root, "third")), 1.0 / 3.0, "round-trips exactly");
    cr_expect_eq(json_real_value(json_object_get(root, "small")), 0.000125);
    cr_expect_eq(json_real_value(json_object_get(root, "negfrac")), -2.5);
    cr_expect_null(strchr(s, '\x1b'), "no raw escape byte in the output");
    json_decref(root);
    free(s);
}

Test(jsonw, compact_output_parses) { check(false); }
Test(jsonw, pretty_output_parses) { check(true); }
