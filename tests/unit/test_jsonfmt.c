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

struct sink {
    char *s;
    size_t n;
    int pieces;
};

static void to_sink(void *opaque, const char *s, size_t n)
{
    struct sink *k = opaque;
    cr_assert_gt(n, 0, "an empty piece");
    k->s = realloc(k->s, k->n + n + 1);
    memcpy(k->s + k->n, s, n);
    k->n += n;
    k->s[k->n] = '\0';
    k->pieces++;
}

/* The whole output as one string, *out; NULL when nothing was emitted. */
static int indent(const char *text, size_t len, struct jsonfmt_key *key, char **out)
{
    struct sink k = {0};
    int rc = jsonfmt_indent(text, len, key, to_sink, &k);
    *out = k.s;
    return rc;
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
        cr_assert_eq(indent(compact, strlen(compact), NULL, &out), 0, "refused %s", compact);
        cr_expect_str_eq(out, want, "doc %zu", i);
        free(want);
        free(out);
        /* spaced and escaped otherwise than jansson writes: accepted too */
        cr_expect_eq(indent(docs[i], strlen(docs[i]), NULL, &out), 0, "refused %s", docs[i]);
        free(out);
        free(compact);
    }
}

Test(jsonfmt, finds_a_top_level_member)
{
    const char *doc = "{\"x\":{\"degraded\":\"inner\"},\"list\":[\"degraded\"],\"degraded\":\"the \\\"store\\\"\"}";
    struct jsonfmt_key k = {.name = "degraded"};
    char *out = NULL;
    cr_assert_eq(indent(doc, strlen(doc), &k, &out), 0);
    cr_assert(k.value);
    cr_expect_eq(k.len, strlen("\"the \\\"store\\\"\""));
    cr_expect(strncmp(k.value, "\"the \\\"store\\\"\"", k.len) == 0);
    free(out);

    const char *none = "{\"x\":{\"degraded\":\"inner\"},\"degradedx\":\"no\"}";
    cr_assert_eq(indent(none, strlen(none), &k, &out), 0);
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
        cr_expect_eq(indent(bad[i], strlen(bad[i]), &k, &out), -1, "accepted %s", bad[i]);
        cr_expect_null(out);
        cr_expect_null(k.value);
    }
    /* a NUL inside the text is not the end of it */
    char *out;
    cr_expect_eq(indent("{}\0{}", 5, NULL, &out), -1);
    cr_expect_null(out);
}

Test(jsonfmt, deep_nesting_is_refused_not_overrun)
{
    size_t depth = 100000;
    char *doc = malloc(2 * depth + 1);
    memset(doc, '[', depth);
    memset(doc + depth, ']', depth);
    doc[2 * depth] = '\0';
    char *out = NULL;
    cr_expect_eq(indent(doc, 2 * depth, NULL, &out), -1);
    cr_expect_null(out);
    free(doc);
}

/* A document far longer than one piece of output: the pieces join into
 * jansson's text, and a fault at its very end still means nothing was
 * written (the check is whole before the first piece goes out). */
Test(jsonfmt, big_document_in_pieces)
{
    size_t n = 4000, cap = 64 * n + 64, len = 0;
    char *doc = malloc(cap);
    len += (size_t)snprintf(doc + len, cap - len, "{\"workloads\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(doc + len, cap - len, "%s{\"name\":\"w%zu\",\"ports\":[%zu,{}]}", i ? "," : "", i, i);
    len += (size_t)snprintf(doc + len, cap - len, "]}");
    char *compact, *out;
    char *want = by_jansson(doc, &compact);
    struct sink k = {0};
    cr_assert_eq(jsonfmt_indent(doc, len, NULL, to_sink, &k), 0);
    cr_expect_gt(k.pieces, 4, "%zu bytes came out in %d pieces", k.n, k.pieces);
    cr_expect_str_eq(k.s, want);
    free(k.s);
    free(want);
    free(compact);

    doc[len - 1] = ']';   /* {"workloads":[...]] */
    cr_expect_eq(indent(doc, len, NULL, &out), -1);
    cr_expect_null(out, "a malformed document was printed in part");
    free(doc);
}
