/*
 * The filter between duetd's standard error and its log: libvirt's own
 * lines are dropped, everything else reaches the log byte for byte, in
 * order, however it is cut into writes and however long its lines.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "orchestrator/logfilter.h"

#define L(s) log_line_is_libvirt(s, strlen(s))

Test(logfilter, libvirt_lines_are_told_from_the_rest)
{
    cr_expect(L("2026-12-02 01:24:27.503+0000: 20650: error : virAccessManagerGetDefault:69 : internal error: No "
                "access manager registered"));
    cr_expect(L("2026-12-02 01:24:27.503+0000: 20650: info : libvirt version: 9.0.0, package: 9.0.0-4+deb12u2"));
    cr_expect(L("2026-12-02 01:24:35.415+0000: 20656: warning : qemuDomainObjTaintMsg:6603 : Domain id=1 is tainted"));
    cr_expect(L("2031-01-01 23:59:59.999-0130: 1: debug : x"));
    cr_expect_not(L("duetd: db started: running as a vm"));
    cr_expect_not(L("==1234==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010"));
    cr_expect_not(L("2026-12-02 01:24:27.503+0000: 20650: fatal : not a level of libvirt's"));
    cr_expect_not(L("2026-12-02 01:24:27.503+0000: : error : no thread id"));
    cr_expect_not(L("2026-12-02 01:24:27.503+0000: 20650: error"));
    cr_expect_not(L("2026-12-02T01:24:27.503+0000: 20650: error : an ISO date is not libvirt's"));
    cr_expect_not(L(""));
    cr_expect_not(log_line_is_libvirt("2026-12-02 01:24:27.503+0000: 20650: error : x", 20));
}

/* Runs the filter over fd 2 while writes() writes to it; what reached the
 * log. */
static char *filtered(bool keep, void (*writes)(void))
{
    char path[] = "/tmp/duet-logfilter-XXXXXX";
    int log = mkstemp(path);
    cr_assert(log >= 0);
    unlink(path);
    int saved = dup(2);
    cr_assert(dup2(log, 2) == 2);
    struct duet_err err = {0};
    struct log_filter *f = log_filter_start(keep, &err);
    cr_assert_not_null(f, "%s", err.msg);
    writes();
    log_filter_stop(f);
    /* Written after the stop: straight to the log. */
    fprintf(stderr, "after the filter\n");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t size = lseek(log, 0, SEEK_END);
    char *buf = calloc(1, (size_t)size + 1);
    cr_assert(pread(log, buf, (size_t)size, 0) == size);
    close(log);
    return buf;
}

static void w(const char *s)
{
    cr_assert(write(2, s, strlen(s)) == (ssize_t)strlen(s));
}

static void mixed(void)
{
    w("duetd: started: duetd 1 on /run/duet/duet.sock\n");
    w("2026-12-02 01:24:27.503+0000: 20650: info : libvirt version: 9.0.0\n");
    /* A libvirt message carrying a child's stderr, ended by a blank line. */
    w("2026-12-02 01:24:27.507+0000: 20650: error : virCommandWait:2725 : internal error: Child process "
      "(/usr/sbin/dmidecode) unexpected exit status 1: /dev/mem: No such file or directory\n\n");
    /* Cut mid-line into three writes. */
    w("duetd: db sta");
    w("rted: running as a ");
    w("vm\n2026-12-02 01:24:35.974+0000: 20657: error : qemuDomainBlocksStatsGather:9783 : invalid path: vda\n");
    w("\n");   /* this blank line follows a dropped one: it goes too */
    w("\n");   /* and this one is the user's */
    fprintf(stderr, "==99==ERROR: AddressSanitizer: a report\n");
    fflush(stderr);
    w("duetd: the last words, without a newline");
}

Test(logfilter, libvirt_lines_are_kept_out_and_the_rest_passes_in_order)
{
    char *log = filtered(false, mixed);
    cr_expect_str_eq(log, "duetd: started: duetd 1 on /run/duet/duet.sock\n"
                          "duetd: db started: running as a vm\n"
                          "\n"
                          "==99==ERROR: AddressSanitizer: a report\n"
                          "duetd: the last words, without a newline"
                          "after the filter\n");
    free(log);
}

Test(logfilter, debug_keeps_libvirt_lines)
{
    char *log = filtered(true, mixed);
    cr_expect(strstr(log, "20650: info : libvirt version"));
    cr_expect(strstr(log, "/dev/mem: No such file or directory\n\n"));
    cr_expect(strstr(log, "duetd: db started: running as a vm\n2026-12-02 01:24:35.974"));
    free(log);
}

/* A line longer than the filter's buffer, and a flood with no newline at
 * all: passed on whole, memory bounded. */
static void long_lines(void)
{
    size_t n = 100000;
    char *big = malloc(n + 2);
    memset(big, 'x', n);
    big[n] = '\n';
    big[n + 1] = '\0';
    w(big);
    w("2026-12-02 01:24:27.503+0000: 20650: error : dropped\n");
    big[n] = '\0';
    w(big);
    free(big);
}

Test(logfilter, long_lines_pass_whole)
{
    char *log = filtered(false, long_lines);
    size_t len = strlen(log);
    cr_expect_eq(len, 100000 + 1 + 100000 + strlen("after the filter\n"));
    cr_expect_eq(strspn(log, "x"), 100000);
    cr_expect_eq(log[100000], '\n');
    cr_expect_eq(strspn(log + 100001, "x"), 100000);
    cr_expect(!strstr(log, "dropped"));
    free(log);
}
