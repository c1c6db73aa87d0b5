/*
 * The Prometheus text writer (common/promtext.h) with what a hostile name
 * could hold, and the listening address duetd --metrics-listen takes.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "backends/container/cgroup.h"
#include "common/listenaddr.h"
#include "common/promtext.h"

/* What f wrote, as a string (the caller frees it). */
static char *written(void (*fn)(FILE *f, void *arg), void *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert(f);
    fn(f, arg);
    cr_assert_eq(fclose(f), 0);
    return text;
}

static void write_label(FILE *f, void *arg)
{
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "workload", arg);
    prom_u64(f, "duet_x", &l, 7);
}

Test(promtext, label_values_are_escaped_whatever_they_hold)
{
    static const struct { const char *in, *want; } cases[] = {
        {"web", "duet_x{workload=\"web\"} 7\n"},
        {"a\"b", "duet_x{workload=\"a\\\"b\"} 7\n"},
        {"a\\b", "duet_x{workload=\"a\\\\b\"} 7\n"},
        {"a\nb", "duet_x{workload=\"a\\nb\"} 7\n"},
        {"\"} 1\nduet_evil 1\n#", "duet_x{workload=\"\\\"} 1\\nduet_evil 1\\n#\"} 7\n"},
        {"caf\xc3\xa9", "duet_x{workload=\"caf\xc3\xa9\"} 7\n"},
        {"bad\xff\xfe", "duet_x{workload=\"bad\xef\xbf\xbd\xef\xbf\xbd\"} 7\n"},
        {"\xed\xa0\x80", "duet_x{workload=\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 7\n"},
        {"", "duet_x{workload=\"\"} 7\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *t = written(write_label, (void *)cases[i].in);
        cr_expect_str_eq(t, cases[i].want, "case %zu", i);
        free(t);
    }
}

Test(promtext, a_label_set_too_long_is_cut_at_a_whole_label)
{
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "a", "short");
    char big[PROM_LABELS_MAX * 2];
    memset(big, '"', sizeof(big) - 1);   /* each doubles when escaped */
    big[sizeof(big) - 1] = '\0';
    prom_label(&l, "b", big);
    prom_label(&l, "c", "after");
    cr_expect(l.truncated);
    cr_expect_str_eq(l.buf, "a=\"short\"");
    cr_expect_lt(l.len, sizeof(l.buf));
}

static void write_hist(FILE *f, void *arg)
{
    (void)arg;
    static const double bounds[] = {0.001, 0.01, 0.1};
    struct prom_hist h;
    prom_hist_init(&h, bounds, 3);
    prom_hist_observe(&h, 0.0005);
    prom_hist_observe(&h, 0.001);   /* on a bound: in it (le) */
    prom_hist_observe(&h, 0.05);
    prom_hist_observe(&h, 7);
    struct prom_labels l;
    prom_labels_init(&l);
    prom_label(&l, "k", "v");
    prom_family(f, "duet_h_seconds", "histogram", "A test.");
    prom_hist_write(f, "duet_h_seconds", &l, &h);
}

Test(promtext, histograms_are_cumulative_with_inf_sum_and_count)
{
    char *t = written(write_hist, NULL);
    cr_expect_str_eq(t, "# HELP duet_h_seconds A test.\n"
                        "# TYPE duet_h_seconds histogram\n"
                        "duet_h_seconds_bucket{k=\"v\",le=\"0.001\"} 2\n"
                        "duet_h_seconds_bucket{k=\"v\",le=\"0.01\"} 2\n"
                        "duet_h_seconds_bucket{k=\"v\",le=\"0.1\"} 3\n"
                        "duet_h_seconds_bucket{k=\"v\",le=\"+Inf\"} 4\n"
                        "duet_h_seconds_sum{k=\"v\"} 7.0515\n"
                        "duet_h_seconds_count{k=\"v\"} 4\n");
    free(t);
}

static void write_floats(FILE *f, void *arg)
{
    (void)arg;
    prom_f64(f, "a", NULL, 0.1);
    prom_f64(f, "b", NULL, 1.0 / 3.0);
    prom_f64(f, "c", NULL, 1e300 * 1e300);
    prom_f64(f, "d", NULL, 0.0 / 0.0 * 0);
    prom_f64(f, "e", NULL, 12);
}

Test(promtext, floats_read_back_exactly_and_specials_are_named)
{
    char *t = written(write_floats, NULL);
    char *b = strstr(t, "\nb ");
    cr_assert(b);
    cr_expect_eq(strtod(b + 3, NULL), 1.0 / 3.0);
    cr_expect(strncmp(t, "a 0.1\n", 6) == 0, "%s", t);
    cr_expect(strstr(t, "\nc +Inf\n") && strstr(t, "\nd NaN\n") && strstr(t, "\ne 12\n"), "%s", t);
    free(t);
}

Test(listenaddr, addresses_accepted)
{
    struct sockaddr_storage sa;
    struct duet_err err = {0};
    cr_assert_eq(listen_addr_parse("127.0.0.1:9465", &sa, &err), 0, "%s", err.msg);
    cr_expect_eq(sa.ss_family, AF_INET);
    cr_expect_eq(ntohs(((struct sockaddr_in *)&sa)->sin_port), 9465);
    cr_assert_eq(listen_addr_parse("[::1]:1", &sa, &err), 0, "%s", err.msg);
    cr_expect_eq(sa.ss_family, AF_INET6);
    cr_assert_eq(listen_addr_parse("0.0.0.0:65535", &sa, &err), 0, "%s", err.msg);
}

Test(listenaddr, hostile_and_wrong_addresses_refused)
{
    static const char *const bad[] = {
        "", ":", "127.0.0.1", "127.0.0.1:", ":9465", "localhost:9465", "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:+80", "127.0.0.1:-80", "127.0.0.1: 80", "127.0.0.1:80 ", "127.0.0.1:0x50", "127.0.0.1:99999999999",
        "::1:9465", "[::1]", "[::1]:", "[]:80", "[127.0.0.1]:80", "[::1:80", "1.2.3.4.5:80", "256.0.0.1:80",
        "127.0.0.1:80\n", "[::1]x:80", "ffff:80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sockaddr_storage sa;
        struct duet_err err = {0};
        cr_expect_eq(listen_addr_parse(bad[i], &sa, &err), -1, "\"%s\" accepted", bad[i]);
        cr_expect_eq(err.code, EINVAL);
        cr_expect(strstr(err.msg, "127.0.0.1:9465"), "%s", err.msg);
    }
}

Test(cgroup_keys, several_keys_of_a_flat_file_in_one_read)
{
    char dir[] = "/tmp/duet-keys-XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/memory.stat", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    /* a prefix of a key is not the key; the first of two lines counts */
    fputs("total_rss_huge 5\ncache 9\ntotal_rss 4096\ntotal_cache 8192\ntotal_rss 1\nrss", f);
    fclose(f);
    static const char *const keys[] = {"total_rss", "total_cache", "missing"};
    uint64_t v[3] = {0, 0, 77};
    cr_expect_eq(cgroup_read_keys(dir, "memory.stat", keys, v, 3), 2);
    cr_expect_eq(v[0], 4096);
    cr_expect_eq(v[1], 8192);
    cr_expect_eq(v[2], 77);
    cr_expect_eq(cgroup_read_keys(dir, "nonexistent", keys, v, 3), -1);
    unlink(path);
    rmdir(dir);
}
