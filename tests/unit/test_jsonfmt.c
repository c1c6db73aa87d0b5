#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonfmt.h"

/* What `duet get -o json` printed before it streamed: jansson's tree of
 * duetd's answer, itself written by jansson (compact). */
static char *by_jansson(const char *text, char **compact)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    cr_assert(j, "jansson refuses %s", text);
    *compact = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    char *t = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    json_decref(j);
    size_t n = strlen(t);
    t = realloc(t, n + 2);
    t[n] = '\n';
    t[n + 1] = '\0';
    return t;
}

Test(jsonfmt, same_as_jansson)
{
    static const char *const docs[] = {
        "{}",
        "[]",
        "{\"a\":1}",
        "{\"workloads\":[{\"name\":\"web\",\"ready\":true,\"ports\":[],\"last_exit\":null,"
        "\"nested\":{\"x\":[1,2,{\"y\":{}}],\"z\":-0.5e+3},\"message\":\"say \\\"hi\\\"\\\\n \\u00e9 caf\xc3\xa9\"}],"
        "\"degraded\":\"the store\"}",
        "  {\n \"a\" : [ 1 , 2 ] ,\t\"b\":{ } }  ",
        "[[[]],[{}],[[1]]]",
        "\"just a string\"",
        "42",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        char *compact, *out = NULL;
        char *want = by_jansson(docs[i], &compact);
        long n = jsonfmt_indent(compact, strlen(compact), NULL, &out);
        cr_assert_geq(n, 0, "refused %s", compact);
        cr_expect_str_eq(out, want, "doc %zu", i);
        cr_expect_eq((size_t)n, strlen(out));
        free(want);
        free(out);
        /* spaced and escaped otherwise than jansson writes: accepted too */
        cr_expect_geq(jsonfmt_indent(docs[i], strlen(docs[i]), NULL, &out), 0, "refused %s", docs[i]);
        free(out);
        free(compact);
    }
}

Test(jsonfmt, finds_a_top_level_member)
{
    const char *doc = "{\"x\":{\"degraded\":\"inner\"},\"list\":[\"degraded\"],\"degraded\":\"the \\\"store\\\"\"}";
    struct jsonfmt_key k = {.name = "degraded"};
    char *out = NULL;
    cr_assert_geq(jsonfmt_indent(doc, strlen(doc), &k, &out), 0);
    cr_assert(k.value);
    cr_expect_eq(k.len, strlen("\"the \\\"store\\\"\""));
    cr_expect(strncmp(k.value, "\"the \\\"store\\\"\"", k.len) == 0);
    free(out);

    const char *none = "{\"x\":{\"degraded\":\"inner\"},\"degradedx\":\"no\"}";
    cr_assert_geq(jsonfmt_indent(none, strlen(none), &k, &out), 0);
    cr_expect_null(k.value, "only the top level's own member counts");
    free(out);
}

/* Whatever duetd (or something in its place on the socket) answered,
 * malformed text is refused whole: no partial output, no overrun. */
Test(jsonfmt, refuses_malformed)
{
    static const char *const bad[] = {
        "",          "{",          "}",          "[",         "]",          "{]",          "[}",
        "{\"a\"}",   "{\"a\":}",   "{\"a\":1,}", "[1,]",      "[,1]",       "{,}",         "{1:2}",
        "\"open",    "\"\\",       "\"\\x\"",    "\"a\nb\"",  "tru",        "nul",         "01",
        "1.",        "-",          "1e",         "{}{}",      "{} x",       "[1 2]",       "{\"a\" 1}",
        "{\"a\"::1}", "[\"a\":1]", "@",          "{\"a\":1}}", "[[]]]",     "\"\\u12\"x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = (char *)1;
        struct jsonfmt_key k = {.name = "a"};
        cr_expect_eq(jsonfmt_indent(bad[i], strlen(bad[i]), &k, &out), -1, "accepted %s", bad[i]);
        cr_expect_null(out);
        cr_expect_null(k.value);
    }
    /* a NUL inside the text is not the end of it */
    cr_expect_eq(jsonfmt_indent("{}\0{}", 5, NULL, &(char *){NULL}), -1);
}

Test(jsonfmt, deep_nesting_is_refused_not_overrun)
{
    size_t depth = 100000;
    char *doc = malloc(2 * depth + 1);
    memset(doc, '[', depth);
    memset(doc + depth, ']', depth);
    doc[2 * depth] = '\0';
    char *out = NULL;
    cr_expect_eq(jsonfmt_indent(doc, 2 * depth, NULL, &out), -1);
    cr_expect_null(out);
    free(doc);
}
