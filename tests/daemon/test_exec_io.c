/*
 * duet exec -i and -t into a real container: input reaches the command,
 * a terminal of the container's own runs a shell driven through a real
 * pseudo-terminal on this side (typed commands, a resize, ^C, the exit
 * status), a client that goes ends its command, and a client that breaks
 * the stream is refused.
 */
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#include "common/execwire.h"
#include "dtest.h"
#include "pty_client.h"

/* How many processes in the container run `pattern` (ps, which lists
 * duet-init's own command line too: each command counts its helper). */
static int count_in(struct dd *d, const char *name, const char *pattern)
{
    char *out;
    cr_assert_eq(dd_duet(d, &out, "exec %s -- ps", name), 0, "%s", out);
    int n = 0;
    for (char *p = out; (p = strstr(p, pattern)); p += strlen(pattern))
        n++;
    free(out);
    return n;
}

Test(exec, input_reaches_the_command_and_its_status_comes_back, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    dd_apply_sleeper(&d, "box");
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "exec -i box -- cat < /etc/hostname"), 0);
    char *want = dd_slurp("/etc/hostname");
    cr_expect_str_eq(out, want);
    free(want);
    free(out);
    /* More than any pipe holds, in and out, counted exactly. */
    char big[128];
    snprintf(big, sizeof(big), "%s/big", d.dir);
    FILE *f = fopen(big, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "%0999d\n", i);
    fclose(f);
    cr_expect_eq(dd_duet(&d, &out, "exec -i box -- wc -c < %s", big), 0, "%s", out);
    cr_expect(strstr(out, "5000000"), "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "exec -i box -- cat < %s | cmp - %s && echo same", big, big), 0);
    cr_expect(strstr(out, "same"), "5 MB through cat came back changed: %.300s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "exec -i box -- sh -c 'cat; echo to-stderr >&2; exit 9' < /etc/hostname"), 9);
    cr_expect(strstr(out, "to-stderr"), "%s", out);
    free(out);
    /* stdout and stderr stay apart. */
    cr_expect_eq(dd_duet(&d, &out, "exec -i box -- sh -c 'echo o; echo e >&2' </dev/null 2>/dev/null | cat"), 0);
    cr_expect_str_eq(out, "o\n");
    free(out);
    /* -t wants a terminal here. */
    cr_expect_eq(dd_duet(&d, &out, "exec -t box -- true </dev/null"), 2);
    cr_expect(strstr(out, "-t needs a terminal"), "%s", out);
    free(out);
    dd_finish(&d);
}

Test(exec, a_terminal_runs_a_shell_that_is_typed_into_resized_interrupted_and_ends_with_a_status, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    dd_apply_sleeper(&d, "box");
    struct pty_client c;
    const char *sh[] = {"/bin/sh", NULL};
    pty_client_start(&c, &d, "box", sh);
    cr_assert(pty_until(&c, 0, "# ", 15000), "no prompt: %s", c.seen);
    size_t at = c.len;
    pty_type(&c, "tty; stty size; echo $((6*7))x\r");
    cr_expect(pty_until(&c, at, "42x", 10000), "%s", c.seen + at);
    cr_expect(strstr(c.seen + at, "/dev/pts/"), "the command's terminal is the container's own: %s", c.seen + at);
    cr_expect(strstr(c.seen + at, "24 80"), "the terminal's size: %s", c.seen + at);
    /* A resize of ours reaches the command's terminal (SIGWINCH, then a
     * record to duetd): asked again until it shows, at most 10 s. */
    cr_expect(pty_resized(&c, 40, 132, 500), "the resize did not reach the container's terminal: %s", c.seen);
    /* ^C is the workload's terminal's: it interrupts the command in it. */
    cr_expect(pty_interrupts(&c), "^C did not interrupt the sleep: %s", c.seen);
    cr_expect_eq(count_in(&d, "box", "sleep 600"), 0, "the interrupted sleep still runs");
    pty_type(&c, "exit 5\r");
    cr_expect_eq(pty_wait(&c), 5, "the shell's exit status");
    cr_expect_eq(count_in(&d, "box", "/bin/sh"), 0, "the shell is gone");
    dd_finish(&d);
}

Test(exec, a_client_that_goes_ends_its_command, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    dd_apply_sleeper(&d, "box");
    int in[2];
    cr_assert_eq(pipe(in), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl(dd_env("DUET_BIN"), "duet", "--socket", d.sock, "exec", "-i", "box", "--", "sleep", "997", NULL);
        _exit(127);
    }
    close(in[0]);
    uint64_t deadline = dd_now_ms() + 15000;
    while (count_in(&d, "box", "sleep 997") == 0)
        cr_assert(dd_now_ms() < deadline && usleep(100000) == 0, "the command never started");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(in[1]);
    deadline = dd_now_ms() + 15000;
    while (count_in(&d, "box", "sleep 997") > 0)
        cr_assert(dd_now_ms() < deadline && usleep(100000) == 0, "the command outlived its client");
    dd_finish(&d);
}

/* The raw stream as a hostile client writes it. */
static int upgrade_raw(struct dd *d, const char *body, char *answer, size_t len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->sock);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "POST /v1/workloads/box/exec HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: duet-exec\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    size_t got = 0;
    while (got < len - 1 && !strstr(answer, "\r\n\r\n")) {
        ssize_t r = read(fd, answer + got, 1);
        if (r <= 0)
            break;
        got += (size_t)r;
        answer[got] = '\0';
    }
    return fd;
}

Test(exec, a_broken_stream_and_bad_requests_are_refused, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    dd_apply_sleeper(&d, "box");
    char head[4096] = "";
    int fd = upgrade_raw(&d, "{\"command\": [\"sleep\", \"996\"], \"stdin\": true}", head, sizeof(head));
    cr_assert(strstr(head, "HTTP/1.1 101 Switching Protocols"), "%s", head);
    uint64_t deadline = dd_now_ms() + 15000;
    while (count_in(&d, "box", "sleep 996") == 0)
        cr_assert(dd_now_ms() < deadline && usleep(100000) == 0, "the command never started");
    /* A frame of a type the daemon does not take, claiming 16 MiB. */
    uint8_t bad[4] = {'Z', 0xff, 0xff, 0xff};
    cr_assert_eq(write(fd, bad, 4), 4);
    char buf[8192];
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 15000), 1, "the daemon neither answered nor closed");
        ssize_t r = read(fd, buf + got, sizeof(buf) - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    cr_expect(got >= 4 && buf[0] == EXECWIRE_FAIL, "no refusal frame");
    cr_expect(memmem(buf, got, "broken exec stream", 18), "%.*s", (int)got, buf);
    close(fd);
    deadline = dd_now_ms() + 15000;
    while (count_in(&d, "box", "sleep 996") > 0)
        cr_assert(dd_now_ms() < deadline && usleep(100000) == 0, "the command of a broken stream runs on");
    /* Bad values are refused before anything runs. */
    head[0] = '\0';
    fd = upgrade_raw(&d, "{\"command\": [\"true\"], \"tty\": \"yes\"}", head, sizeof(head));
    cr_expect(strstr(head, "HTTP/1.1 400"), "%s", head);
    close(fd);
    head[0] = '\0';
    fd = upgrade_raw(&d, "{\"command\": [\"true\"], \"tty\": true, \"rows\": 70000}", head, sizeof(head));
    cr_expect(strstr(head, "HTTP/1.1 400"), "%s", head);
    close(fd);
    dd_finish(&d);
}
