/*
 * duet run -i and -t into real containers: the workload's own command
 * reads our input and writes to us as well as to its log, runs on a
 * terminal of the container's own driven through a real pseudo-terminal
 * here (typed commands, a resize, the exit status), outlives a client
 * that goes, and cannot hold duetd or a delete back by flooding a client
 * that does not read.  A VM's command (duet-vminit's) is attached the
 * same way; a VM booting its own disk image is ruled out.
 */
#include <sys/ioctl.h>
#include <termios.h>

#include "dtest.h"
#include "pty_client.h"

Test(run_io, input_reaches_the_command_output_comes_back_apart_and_rm_removes_it, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    const char *rootfs = dd_env("DUET_ROOTFS");
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "run -i --rm --rootfs %s -- sh -c 'cat; echo to-stderr >&2; exit 3' "
                                   "< /etc/hostname",
                         rootfs),
                 3, "%s", out);
    char *want = dd_slurp("/etc/hostname");
    cr_expect(strstr(out, want) && strstr(out, "to-stderr"), "%s", out);
    free(out);
    /* stdout and stderr stay apart */
    cr_expect_eq(dd_duet(&d, &out, "run -i --rm --rootfs %s -- sh -c 'cat; echo to-stderr >&2' "
                                   "< /etc/hostname 2>/dev/null | cat",
                         rootfs),
                 0, "%s", out);
    cr_expect_str_eq(out, want, "stdout alone, whole: [%s]", out);
    free(want);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "run -i --rm --rootfs %s -- sh -c 'echo o; echo e >&2' </dev/null 2>&1 >/dev/null | cat",
                         rootfs),
                 0);
    cr_expect_str_eq(out, "e\n", "stderr alone: [%s]", out);
    free(out);
    /* More than any pipe or socket holds, both ways, exactly. */
    char big[128];
    snprintf(big, sizeof(big), "%s/big", d.dir);
    FILE *f = fopen(big, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 5000; i++)
        fprintf(f, "%0999d\n", i);
    fclose(f);
    cr_expect_eq(dd_duet(&d, &out, "run -i --rm --rootfs %s -- cat < %s | cmp - %s && echo same", rootfs, big, big),
                 0);
    cr_expect(strstr(out, "same"), "5 MB through cat came back changed: %.300s", out);
    free(out);
    /* --rm: nothing is left once it has answered. */
    cr_expect_eq(dd_duet(&d, &out, "get"), 0);
    cr_expect_null(strstr(out, "run-"), "a --rm run is still listed: %s", out);
    free(out);
    /* Without --rm its output is its log too, as a plain run's. */
    cr_expect_eq(dd_duet(&d, &out, "run -i --name kept --rootfs %s -- sh -c 'cat; echo bye' < /etc/hostname", rootfs),
                 0);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "logs kept"), 0);
    cr_expect(strstr(out, "bye"), "the log lacks the attached output: %s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "delete kept"), 0);
    free(out);
    /* -t wants a terminal here. */
    cr_expect_eq(dd_duet(&d, &out, "run -t --rm --rootfs %s -- true </dev/null", rootfs), 2);
    cr_expect(strstr(out, "-t needs a terminal"), "%s", out);
    free(out);
    dd_finish(&d);
}

Test(run_io, a_terminal_runs_the_workloads_shell_typed_into_resized_and_ending_with_its_status, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    struct pty_client c;
    const char *args[] = {"run", "-it", "--rm", "--name", "shell", "--rootfs", dd_env("DUET_ROOTFS"), "--", "/bin/sh",
                          NULL};
    pty_client_spawn(&c, &d, args);
    cr_assert(pty_until(&c, 0, "# ", 15000), "no prompt: %s", c.seen);
    size_t at = c.len;
    pty_type(&c, "tty; stty size; echo $PPID $((6*7))x\r");
    cr_expect(pty_until(&c, at, "1 42x", 10000), "the shell is not the container's main command: %s", c.seen + at);
    cr_expect(strstr(c.seen + at, "/dev/pts/"), "the command's terminal is the container's own: %s", c.seen + at);
    cr_expect(strstr(c.seen + at, "24 80"), "the terminal's first size: %s", c.seen + at);
    cr_expect(pty_resized(&c, 40, 132, 500), "the resize did not reach the container's terminal: %s", c.seen);
    /* ^C is the workload's terminal's: it interrupts what runs there, not
     * the shell, the container or duet. */
    cr_expect(pty_interrupts(&c), "^C did not interrupt the sleep: %s", c.seen);
    pty_type(&c, "exit 5\r");
    cr_expect_eq(pty_wait(&c), 5, "the shell's exit status");
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "get"), 0);
    cr_expect_null(strstr(out, "shell"), "the --rm run is still listed: %s", out);
    free(out);
    dd_finish(&d);
}

/* A client of `duet run -i NAME` with the given stdout, its stdin a pipe
 * kept open here (*in); returns its pid. */
static pid_t run_client(struct dd *d, const char *name, const char *cmd, int out_fd, int *in)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(p[0], 0);
        dup2(out_fd, 1);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execl(dd_env("DUET_BIN"), "duet", "--socket", d->sock, "run", "-i", "--name", name, "--rootfs",
              dd_env("DUET_ROOTFS"), "--", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    *in = p[1];
    return pid;
}

static size_t log_lines(struct dd *d, const char *name)
{
    char *out;
    dd_duet(d, &out, "logs %s", name);
    size_t n = 0;
    for (char *p = out; (p = strchr(p, '\n')); p++)
        n++;
    free(out);
    return n;
}

Test(run_io, the_workload_outlives_a_client_that_goes, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC), in;
    pid_t pid = run_client(&d, "ticker", "while true; do echo tick; sleep 0.1; done", null, &in);
    close(null);
    cr_assert(duet_until(&d, "get ticker", "running", 30000), "the attached run did not start");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(in);
    /* Its output goes on into its log, with nobody attached. */
    size_t before = log_lines(&d, "ticker");
    usleep(1500000);
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "get ticker"), 0);
    cr_expect(strstr(out, "running"), "the workload ended with its client: %s", out);
    free(out);
    cr_expect_gt(log_lines(&d, "ticker"), before + 3, "its log stopped growing once the client went");
    cr_expect_eq(dd_duet(&d, &out, "delete ticker"), 0);
    free(out);
    cr_expect(duet_until(&d, "get", "NAME", 1000));
    dd_finish(&d);
}

Test(run_io, a_flood_into_a_client_that_does_not_read_holds_back_neither_duetd_nor_a_delete, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    /* The client's stdout: a pipe nobody here reads. */
    int p[2], in;
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = run_client(&d, "flood", "yes flood-flood-flood", p[1], &in);
    close(p[1]);
    cr_assert(duet_until(&d, "get flood", "running", 30000), "the attached run did not start");
    usleep(1000000);
    /* duetd answers, and holds at most its backlog of the flood. */
    json_t *st = dd_get(&d, "/v1/info");
    cr_assert_not_null(st);
    json_decref(st);
    uint64_t t0 = dd_now_ms();
    char *out;
    cr_expect_eq(dd_duet(&d, &out, "delete flood"), 0, "%s", out);
    free(out);
    bool gone = false;
    while (!gone && dd_now_ms() - t0 < 30000) {
        dd_duet(&d, &out, "get");
        gone = !strstr(out, "flood");
        free(out);
        if (!gone)
            usleep(200000);
    }
    cr_expect(gone, "a workload flooding a stalled client could not be deleted in 30 s");
    close(p[0]);
    close(in);
    int stc;
    waitpid(pid, &stc, 0);
    dd_finish(&d);
}

Test(run_io, a_vms_own_command_is_attached_too, .timeout = 300)
{
    struct dd d;
    dd_init(&d);
    const char *rootfs = dd_env("DUET_ROOTFS");
    char *out;
    /* Input, stdout and stderr apart, its status; more than the agent's
     * window (256 KiB) each way. */
    char big[128];
    snprintf(big, sizeof(big), "%s/big", d.dir);
    FILE *f = fopen(big, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 600; i++)
        fprintf(f, "%0999d\n", i);
    fclose(f);
    cr_expect_eq(dd_duet(&d, &out,
                         "run -i --rm --placement vm --rootfs %s -- sh -c 'cat; echo to-stderr >&2; exit 7' < %s "
                         "2>%s/err > %s/out; echo status=$?; cmp %s %s/out && echo same; cat %s/err",
                         rootfs, big, d.dir, d.dir, big, d.dir, d.dir),
                 0);
    cr_expect(strstr(out, "status=7"), "%s", out);
    cr_expect(strstr(out, "same"), "600 KB through a VM's cat came back changed: %.300s", out);
    cr_expect(strstr(out, "to-stderr"), "stderr apart: %s", out);
    free(out);
    /* A terminal of the guest's own, typed into and resized. */
    struct pty_client c;
    const char *args[] = {"run", "-it", "--rm", "--placement", "vm", "--name", "vmshell", "--rootfs", rootfs, "--",
                          "/bin/sh", NULL};
    pty_client_spawn(&c, &d, args);
    cr_assert(pty_until(&c, 0, "# ", 120000), "no prompt from the VM: %s", c.seen);
    size_t at = c.len;
    pty_type(&c, "tty; stty size; echo $PPID $((6*7))x\r");
    cr_expect(pty_until(&c, at, "1 42x", 30000), "the shell is not the guest's main command: %s", c.seen + at);
    cr_expect(strstr(c.seen + at, "/dev/pts/"), "the command's terminal is the guest's own: %s", c.seen + at);
    cr_expect(strstr(c.seen + at, "24 80"), "the terminal's first size: %s", c.seen + at);
    cr_expect(pty_resized(&c, 40, 132, 2000), "the resize did not reach the guest's terminal: %s", c.seen);
    pty_type(&c, "echo bye-from-vm; exit 6\r");
    cr_expect_eq(pty_wait(&c), 6, "the shell's exit status");
    cr_expect(strstr(c.seen, "bye-from-vm"), "the last output came before the status: %s", c.seen);
    cr_expect_eq(dd_duet(&d, &out, "get"), 0);
    cr_expect_null(strstr(out, "vmshell"), "the --rm run is still listed: %s", out);
    free(out);
    dd_finish(&d);
}

Test(run_io, a_backend_that_cannot_attach_is_ruled_out, .timeout = 120)
{
    struct dd d;
    dd_init(&d);
    char *out;
    /* A disk image boots its own init: no duet-vminit holds a command. */
    cr_expect_eq(dd_duet(&d, &out, "run -i --placement vm --disk %s/bootable.img </dev/null", dd_env("DUET_IMAGES")), 1);
    cr_expect(strstr(out, "duet run -i/-t attaches to a command duet-vminit runs, and a VM booting its own disk image"),
              "%s", out);
    free(out);
    cr_expect_eq(dd_duet(&d, &out, "get"), 0);
    cr_expect_null(strstr(out, "run-"), "a refused run was created: %s", out);
    free(out);
    dd_finish(&d);
}
