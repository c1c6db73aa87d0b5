/*
 * The host's end of a VM's agent against a guest that lies: the real
 * agent.c on a real unix socket, whose other end is a thread of this test
 * playing a guest that answers well, garbage, a flood, or nothing.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "backends/vm/agent.h"
#include "helpers.h"
#include "tests/common/exec_capture.h"

/* ---- the reader of frames ---------------------------------------------------------------------- */

struct got {
    int frames;
    uint8_t type;
    uint16_t id;
    uint32_t len;
    char data[64];
};

static bool note_frame(void *opaque, uint8_t type, uint16_t id, const uint8_t *data, uint32_t len)
{
    struct got *g = opaque;
    g->frames++;
    g->type = type;
    g->id = id;
    g->len = len;
    snprintf(g->data, sizeof(g->data), "%.*s", (int)(len < 63 ? len : 63), (const char *)data);
    return true;
}

static size_t frame(uint8_t *buf, uint8_t type, uint16_t id, const void *data, uint32_t len)
{
    vm_agent_hdr_put(buf, type, id, len);
    memcpy(buf + VM_AGENT_HDR, data, len);
    return VM_AGENT_HDR + len;
}

Test(vm_agent, frames_are_read_whole_whatever_the_pieces)
{
    uint8_t buf[64];
    size_t n = frame(buf, VM_AGENT_OUT, 0x1234, "hello", 5);
    uint8_t st[4];
    vm_agent_u32_put(st, (uint32_t)-1);
    n += frame(buf + n, VM_AGENT_STATUS, 7, st, 4);
    for (size_t step = 1; step <= n; step++) {
        static struct vm_agent_rx rx;
        vm_agent_rx_init(&rx);
        struct got g = {0};
        const char *why = NULL;
        for (size_t off = 0; off < n; off += step)
            cr_assert_eq(vm_agent_rx_feed(&rx, buf + off, off + step > n ? n - off : step, note_frame, &g, &why), 0);
        cr_assert_eq(g.frames, 2, "pieces of %zu", step);
        cr_assert_eq(g.type, VM_AGENT_STATUS);
        cr_assert_eq(g.id, 7);
        cr_assert_eq((int32_t)vm_agent_u32_get((const uint8_t *)g.data), -1);
    }
}

Test(vm_agent, frames_of_no_known_type_or_size_are_refused)
{
    struct {
        uint8_t type, pad;
        uint32_t len;
        const char *why;
    } bad[] = {
        {'z', 0, 1, "type"},
        {VM_AGENT_RUN, 0, 4, "type"},           /* the host's own frames never come back */
        {VM_AGENT_OUT, 1, 1, "type"},
        {VM_AGENT_OUT, 0, 0, "size"},
        {VM_AGENT_ERR, 0, VM_AGENT_DATA_MAX + 1, "size"},
        {VM_AGENT_OUT, 0, UINT32_MAX, "size"},
        {VM_AGENT_STATUS, 0, 3, "size"},
        {VM_AGENT_STATUS, 0, 5, "size"},
        {VM_AGENT_ACK, 0, 8, "size"},
        {VM_AGENT_INPUT, 0, 4, "type"},          /* input goes to the guest, never from it */
        {VM_AGENT_GRANT, 0, 4, "type"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        static struct vm_agent_rx rx;
        vm_agent_rx_init(&rx);
        uint8_t h[VM_AGENT_HDR];
        vm_agent_hdr_put(h, bad[i].type, 1, bad[i].len);
        h[1] = bad[i].pad;
        struct got g = {0};
        const char *why = NULL;
        cr_assert_eq(vm_agent_rx_feed(&rx, h, sizeof(h), note_frame, &g, &why), -1, "case %zu", i);
        cr_assert(why && strstr(why, bad[i].why), "case %zu: %s", i, why);
        cr_assert_eq(g.frames, 0);
    }
}

/* ---- the agent against a guest played by a thread ------------------------------------------------ */

enum guest_act { GUEST_ANSWER, GUEST_GARBAGE, GUEST_FLOOD, GUEST_SILENT, GUEST_ECHO_IO, GUEST_ACK_UNSENT,
                 GUEST_OVERFLOW };

struct guest {
    int listen_fd;
    enum guest_act acts[4];       /* one per connection */
    int n_acts;
    char argv_seen[256];          /* the first command, NULs as spaces */
    bool kill_seen;
    bool attach_seen;             /* the first frame was an 'A' */
    int detach_seen;              /* 'd' frames */
    uint8_t io_head[VM_AGENT_IO_HEAD];   /* an 'X' command's, or an 'A' */
    unsigned rows, cols;          /* the last resize */
    bool credit_broken;           /* the host sent input past the window */
    pthread_t thread;
};

static bool read_full(int fd, void *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static void write_full(int fd, const void *buf, size_t n)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, (const char *)buf + off, n - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

/* Reads one frame the host sent: its type and id; the payload goes to
 * argv_seen when it is a command. */
static bool guest_read(struct guest *g, int fd, uint8_t *type, uint16_t *id)
{
    uint8_t h[VM_AGENT_HDR];
    uint32_t len;
    if (!read_full(fd, h, sizeof(h)))
        return false;
    vm_agent_hdr_get(h, type, id, &len);
    char *p = malloc(len + 1);
    cr_assert_not_null(p);
    bool ok = read_full(fd, p, len);
    if (ok && *type == VM_AGENT_ATTACH && len == VM_AGENT_IO_HEAD) {
        memcpy(g->io_head, p, VM_AGENT_IO_HEAD);
        g->attach_seen = true;
    }
    if (ok && *type == VM_AGENT_RUN_IO && len >= VM_AGENT_IO_HEAD) {
        memcpy(g->io_head, p, VM_AGENT_IO_HEAD);
        memmove(p, p + VM_AGENT_IO_HEAD, len - VM_AGENT_IO_HEAD);
        len -= VM_AGENT_IO_HEAD;
        *type = VM_AGENT_RUN;
    }
    if (ok && *type == VM_AGENT_RUN && !g->argv_seen[0]) {
        for (uint32_t i = 0; i < len; i++)
            p[i] = p[i] ? p[i] : ' ';
        snprintf(g->argv_seen, sizeof(g->argv_seen), "%.*s", (int)len, p);
    }
    free(p);
    return ok;
}

/* An 'X' command that is cat: every input frame acknowledged and sent
 * back as output, within the room the host grants; 'c' ends it (0). */
static void guest_echo(struct guest *g, int fd, uint16_t id)
{
    static uint8_t in[VM_AGENT_HDR + VM_AGENT_DATA_MAX], out[VM_AGENT_HDR + VM_AGENT_DATA_MAX];
    uint64_t room = VM_AGENT_WINDOW, unacked = 0;
    for (;;) {
        uint8_t h[VM_AGENT_HDR], type;
        uint16_t fid;
        uint32_t len;
        if (!read_full(fd, h, sizeof(h)))
            return;
        vm_agent_hdr_get(h, &type, &fid, &len);
        if (len > VM_AGENT_DATA_MAX || !read_full(fd, in, len))
            return;
        if (type == VM_AGENT_GRANT) {
            room += vm_agent_u32_get(in);
        } else if (type == VM_AGENT_WINSIZE) {
            g->rows = (unsigned)in[0] << 8 | in[1];
            g->cols = (unsigned)in[2] << 8 | in[3];
        } else if (type == VM_AGENT_KILL) {
            g->kill_seen = true;
        } else if (type == VM_AGENT_DETACH) {
            g->detach_seen++;
        } else if (type == VM_AGENT_INPUT) {
            unacked += len;
            if (unacked > VM_AGENT_WINDOW)
                g->credit_broken = true;
            /* Output only into the room granted: wait for grants first. */
            while (room < len) {
                if (!read_full(fd, h, sizeof(h)))
                    return;
                uint32_t glen;
                vm_agent_hdr_get(h, &type, &fid, &glen);
                uint8_t gb[8];
                if (type != VM_AGENT_GRANT || glen != 4 || !read_full(fd, gb, 4))
                    return;
                room += vm_agent_u32_get(gb);
            }
            room -= len;
            write_full(fd, out, frame(out, VM_AGENT_OUT, id, in, len));
            uint8_t n[4];
            vm_agent_u32_put(n, len);
            write_full(fd, out, frame(out, VM_AGENT_ACK, id, n, 4));
            unacked -= len;
        } else if (type == VM_AGENT_INPUT_END) {
            uint8_t st[4];
            vm_agent_u32_put(st, 0);
            write_full(fd, out, frame(out, VM_AGENT_STATUS, id, st, 4));
        }
    }
}

static void *guest_main(void *opaque)
{
    struct guest *g = opaque;
    for (int i = 0; i < g->n_acts; i++) {
        int fd = accept(g->listen_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        uint8_t type;
        uint16_t id;
        if (!guest_read(g, fd, &type, &id)) {
            close(fd);
            continue;
        }
        uint8_t buf[VM_AGENT_HDR + 64];
        switch (g->acts[i]) {
        case GUEST_ANSWER: {
            write_full(fd, buf, frame(buf, VM_AGENT_OUT, id, "out", 3));
            write_full(fd, buf, frame(buf, VM_AGENT_ERR, id, "err", 3));
            uint8_t st[4];
            vm_agent_u32_put(st, 5);
            write_full(fd, buf, frame(buf, VM_AGENT_STATUS, id, st, 4));
            /* then wait for the host to go */
            char c;
            while (read(fd, &c, 1) > 0)
                ;
            break;
        }
        case GUEST_GARBAGE:
            write_full(fd, "GARBAGE! GARBAGE! GARBAGE!", 26);
            while (read(fd, buf, sizeof(buf)) > 0)
                ;
            break;
        case GUEST_FLOOD: {
            /* output for a command nobody asked for, without end */
            static uint8_t big[VM_AGENT_HDR + 60000];
            size_t n = frame(big, VM_AGENT_OUT, (uint16_t)(id + 100), big + VM_AGENT_HDR, 60000);
            for (int k = 0; k < 100; k++)
                if (send(fd, big, n, MSG_NOSIGNAL) < 0)
                    break;
            break;
        }
        case GUEST_ECHO_IO:
            guest_echo(g, fd, id);
            break;
        case GUEST_ACK_UNSENT: {
            uint8_t n[4];
            vm_agent_u32_put(n, 1000);
            write_full(fd, buf, frame(buf, VM_AGENT_ACK, id, n, 4));
            while (read(fd, buf, sizeof(buf)) > 0)
                ;
            break;
        }
        case GUEST_OVERFLOW: {
            /* output past the window, no grant waited for */
            static uint8_t big[VM_AGENT_HDR + 65536];
            for (uint32_t sent = 0; sent <= VM_AGENT_WINDOW + 65536; sent += 65536)
                if (send(fd, big, frame(big, VM_AGENT_OUT, id, big + VM_AGENT_HDR, 65536), MSG_NOSIGNAL) < 0)
                    break;
            while (read(fd, buf, sizeof(buf)) > 0)
                ;
            break;
        }
        case GUEST_SILENT:
            /* reads on, answers nothing */
            while (guest_read(g, fd, &type, &id))
                if (type == VM_AGENT_KILL)
                    g->kill_seen = true;
            break;
        }
        close(fd);
    }
    return NULL;
}

struct t {
    char root[64], sock[96];
    uv_loop_t loop;
    struct guest g;
    struct vm_agent *a;
};

static void t_setup(struct t *t, const enum guest_act *acts, int n)
{
    memset(t, 0, sizeof(*t));
    tmp_root_make(t->root, sizeof(t->root), "duet-agent");
    snprintf(t->sock, sizeof(t->sock), "%s/a.sock", t->root);
    uv_loop_init(&t->loop);
    for (int i = 0; i < n; i++)
        t->g.acts[i] = acts[i];
    t->g.n_acts = n;
    t->g.listen_fd = -1;
    if (n) {
        t->g.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->sock);
        cr_assert_eq(bind(t->g.listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        cr_assert_eq(listen(t->g.listen_fd, 4), 0);
        pthread_create(&t->g.thread, NULL, guest_main, &t->g);
    }
    t->a = vm_agent_new(&t->loop, t->sock, "probe");
}

static void t_teardown(struct t *t)
{
    vm_agent_free(t->a, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&t->loop), 0, "every handle was closed");
    if (t->g.n_acts) {
        shutdown(t->g.listen_fd, SHUT_RDWR);
        pthread_join(t->g.thread, NULL);
        close(t->g.listen_fd);
    }
    tmp_root_remove(t->root);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void run_cmd(struct t *t, const char *const *argv, uint64_t timeout_ms, struct run *r)
{
    memset(r, 0, sizeof(*r));
    r->out = memfd_create("out", MFD_CLOEXEC);
    r->err = memfd_create("err", MFD_CLOEXEC);
    struct duet_err err = {0};
    cr_assert_eq(vm_agent_exec(t->a, argv, r->out, r->err, timeout_ms, run_exited, r, &err), 0, "%s", err.msg);
    cr_assert(!r->done, "never answered from within the call");
    uv_timer_t tick;
    uv_timer_init(&t->loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20);
    for (int i = 0; i < 1000 && !r->done; i++)
        uv_run(&t->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    cr_assert(r->done, "the command was answered");
}

static void run_free(struct run *r)
{
    close(r->out);
    close(r->err);
}

static const char *const ECHO_CMD[] = {"/bin/echo", "a b", NULL};

Test(vm_agent, a_command_is_sent_and_answered)
{
    struct t t;
    enum guest_act acts[] = {GUEST_ANSWER};
    t_setup(&t, acts, 1);
    struct run r;
    run_cmd(&t, ECHO_CMD, 0, &r);
    cr_assert_eq(r.status, 5);
    char *o = written(r.out), *e = written(r.err);
    cr_assert_str_eq(o, "out");
    cr_assert_str_eq(e, "err");
    cr_assert_str_eq(t.g.argv_seen, "/bin/echo a b ");
    free(o);
    free(e);
    run_free(&r);
    t_teardown(&t);
}

/* A guest that answers what is not the protocol loses its connection and
 * the command ends with the reason; the next command connects again. */
Test(vm_agent, garbage_breaks_the_connection_and_the_next_command_gets_a_new_one)
{
    struct t t;
    enum guest_act acts[] = {GUEST_GARBAGE, GUEST_ANSWER};
    t_setup(&t, acts, 2);
    struct run r;
    run_cmd(&t, ECHO_CMD, 0, &r);
    cr_assert_eq(r.status, -1);
    char *e = written(r.err);
    cr_assert(strstr(e, "duet: VM probe: its agent sent a frame of no known type, which is not duet's protocol"), "%s",
              e);
    free(e);
    run_free(&r);
    run_cmd(&t, ECHO_CMD, 0, &r);
    cr_assert_eq(r.status, 5);
    run_free(&r);
    t_teardown(&t);
}

Test(vm_agent, a_flood_for_no_command_breaks_the_connection)
{
    struct t t;
    enum guest_act acts[] = {GUEST_FLOOD};
    t_setup(&t, acts, 1);
    struct run r;
    run_cmd(&t, ECHO_CMD, 0, &r);
    cr_assert_eq(r.status, -1);
    char *e = written(r.err);
    cr_assert(strstr(e, "more than 1 MiB for no command"), "%s", e);
    free(e);
    run_free(&r);
    t_teardown(&t);
}

/* A guest that never answers: the command is killed at its timeout and
 * reported 137 after the grace, whatever the guest does. */
Test(vm_agent, a_silent_guest_is_bounded_by_the_timeout)
{
    struct t t;
    enum guest_act acts[] = {GUEST_SILENT};
    t_setup(&t, acts, 1);
    struct run r;
    uint64_t t0 = uv_hrtime();
    run_cmd(&t, ECHO_CMD, 100, &r);
    uint64_t took_ms = (uv_hrtime() - t0) / 1000000;
    cr_assert_eq(r.status, 137);
    cr_assert_geq(took_ms, 100 + VM_AGENT_KILL_GRACE_MS - 50);
    char *e = written(r.err);
    cr_assert(strstr(e, "did not end when killed"), "%s", e);
    free(e);
    run_free(&r);
    vm_agent_free(t.a, NULL);
    t.a = NULL;
    uv_run(&t.loop, UV_RUN_DEFAULT);
    pthread_join(t.g.thread, NULL);
    t.g.n_acts = 0;
    cr_assert(t.g.kill_seen, "the guest was told to kill it");
    close(t.g.listen_fd);
    t_teardown(&t);
}

Test(vm_agent, no_socket_is_said_with_the_way_out)
{
    struct t t;
    t_setup(&t, NULL, 0);
    struct run r;
    run_cmd(&t, ECHO_CMD, 0, &r);
    cr_assert_eq(r.status, -1);
    char *e = written(r.err);
    cr_assert(strstr(e, "no agent socket") && strstr(e, "duet delete probe"), "%s", e);
    free(e);
    run_free(&r);
    t_teardown(&t);
}

Test(vm_agent, commands_waiting_when_the_agent_goes_end_with_the_reason)
{
    struct t t;
    enum guest_act acts[] = {GUEST_SILENT};
    t_setup(&t, acts, 1);
    struct run r = {.out = memfd_create("out", MFD_CLOEXEC), .err = memfd_create("err", MFD_CLOEXEC)};
    struct duet_err err = {0};
    cr_assert_eq(vm_agent_exec(t.a, ECHO_CMD, r.out, r.err, 0, run_exited, &r, &err), 0);
    for (int i = 0; i < 5; i++)
        uv_run(&t.loop, UV_RUN_NOWAIT);
    vm_agent_free(t.a, "the VM was stopped");
    t.a = NULL;
    cr_assert(r.done);
    cr_assert_eq(r.status, -1);
    char *e = written(r.err);
    cr_assert_str_eq(e, "duet: VM probe: the VM was stopped\n");
    free(e);
    run_free(&r);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    t_teardown(&t);
}

Test(vm_agent, arguments_past_what_a_command_may_have_are_refused)
{
    struct t t;
    t_setup(&t, NULL, 0);
    size_t n = VM_AGENT_REQ_MAX + 1;
    char *big = malloc(n);
    memset(big, 'x', n - 1);
    big[n - 1] = '\0';
    const char *const argv[] = {"/bin/echo", big, NULL};
    struct run r = {0};
    struct duet_err err = {0};
    cr_assert_eq(vm_agent_exec(t.a, argv, 1, 2, 0, run_exited, &r, &err), -1);
    cr_assert(strstr(err.msg, "more than the 2 MiB"), "%s", err.msg);
    const char *const empty[] = {"", NULL};
    cr_assert_eq(vm_agent_exec(t.a, empty, 1, 2, 0, run_exited, &r, &err), -1);
    free(big);
    t_teardown(&t);
}

/* ---- commands with input ('X') ----------------------------------------------------------------------- */

#include <fcntl.h>

#include "backends/driver.h"

struct io_run {
    struct run r;
    int in[2], out[2], ctl[2];
    char *got;
    size_t got_len;
};

static void io_setup(struct io_run *x)
{
    memset(x, 0, sizeof(*x));
    cr_assert_eq(pipe2(x->in, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(x->out, O_CLOEXEC | O_NONBLOCK), 0);
    cr_assert_eq(pipe2(x->ctl, O_CLOEXEC | O_NONBLOCK), 0);
    fcntl(x->in[1], F_SETPIPE_SZ, 1 << 20);
    x->r.err = memfd_create("err", MFD_CLOEXEC);
}

/* Runs the loop until the command ends, reading its output meanwhile
 * unless held (a client that does not read). */
static void io_wait(struct t *t, struct io_run *x, bool hold)
{
    FILE *m = open_memstream(&x->got, &x->got_len);
    uv_timer_t tick;
    uv_timer_init(&t->loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    for (int i = 0; i < 4000 && !x->r.done; i++) {
        uv_run(&t->loop, UV_RUN_ONCE);
        char b[65536];
        ssize_t n;
        while (!hold && (n = read(x->out[0], b, sizeof(b))) > 0)
            fwrite(b, 1, (size_t)n, m);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    fclose(m);
    cr_assert(x->r.done, "the command was answered");
}

static void io_free(struct io_run *x)
{
    for (int i = 0; i < 2; i++) {
        if (x->in[i] >= 0)
            close(x->in[i]);
        close(x->out[i]);
        if (x->ctl[i] >= 0)
            close(x->ctl[i]);
    }
    close(x->r.err);
    free(x->got);
}

Test(vm_agent, input_and_output_flow_within_their_windows)
{
    struct t t;
    enum guest_act acts[] = {GUEST_ECHO_IO};
    t_setup(&t, acts, 1);
    struct io_run x;
    io_setup(&x);
    /* More than the window, so acknowledgements and grants must flow. */
    size_t n = 3 * VM_AGENT_WINDOW + 12345;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7 + i / 1000);
    struct driver_exec_io io = {.in_fd = x.in[0], .out_fd = x.out[1], .err_fd = x.r.err, .ctl_fd = x.ctl[0],
                                .tty = true, .rows = 40, .cols = 132};
    struct duet_err err = {0};
    const char *const argv[] = {"/bin/cat", NULL};
    cr_assert_eq(vm_agent_exec_io(t.a, argv, &io, 0, run_exited, &x.r, &err), 0, "%s", err.msg);
    struct driver_winsize ws = {.rows = 50, .cols = 200};
    cr_assert_eq(write(x.ctl[1], &ws, sizeof(ws)), (ssize_t)sizeof(ws));
    /* The input is written as the loop runs (a writer thread would do as well). */
    size_t off = 0;
    FILE *m = open_memstream(&x.got, &x.got_len);
    uv_timer_t tick;
    uv_timer_init(&t.loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    fcntl(x.in[1], F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 20000 && !x.r.done; i++) {
        if (off < n) {
            ssize_t w = write(x.in[1], data + off, n - off);
            if (w > 0)
                off += (size_t)w;
            if (off == n) {
                close(x.in[1]);
                x.in[1] = -1;
            }
        }
        uv_run(&t.loop, UV_RUN_ONCE);
        char b[65536];
        ssize_t r;
        while ((r = read(x.out[0], b, sizeof(b))) > 0)
            fwrite(b, 1, (size_t)r, m);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    fclose(m);
    cr_assert(x.r.done, "the command ended");
    cr_expect_eq(x.r.status, 0);
    cr_assert_eq(x.got_len, n, "all of the input came back");
    cr_expect_eq(memcmp(x.got, data, n), 0);
    cr_expect(!t.g.credit_broken, "the host kept to the window");
    cr_expect_eq(t.g.io_head[0], VM_AGENT_IO_TTY);
    cr_expect_eq(t.g.io_head[2] << 8 | t.g.io_head[3], 40);
    cr_expect_eq(t.g.io_head[4] << 8 | t.g.io_head[5], 132);
    cr_expect_eq(t.g.rows, 50);
    cr_expect_eq(t.g.cols, 200);
    cr_expect_str_eq(t.g.argv_seen, "/bin/cat ");
    free(data);
    io_free(&x);
    t_teardown(&t);
}

Test(vm_agent, the_client_going_kills_the_command)
{
    struct t t;
    enum guest_act acts[] = {GUEST_ECHO_IO};
    t_setup(&t, acts, 1);
    struct io_run x;
    io_setup(&x);
    struct driver_exec_io io = {.in_fd = x.in[0], .out_fd = x.out[1], .err_fd = x.r.err, .ctl_fd = x.ctl[0]};
    struct duet_err err = {0};
    const char *const argv[] = {"/bin/cat", NULL};
    cr_assert_eq(vm_agent_exec_io(t.a, argv, &io, 0, run_exited, &x.r, &err), 0, "%s", err.msg);
    for (int i = 0; i < 20; i++)
        uv_run(&t.loop, UV_RUN_NOWAIT);
    close(x.ctl[1]);
    x.ctl[1] = -1;
    io_wait(&t, &x, false);
    cr_expect_eq(x.r.status, 137, "killed, and said so when the guest did not answer");
    cr_expect(t.g.kill_seen, "the guest was told to kill it");
    io_free(&x);
    t_teardown(&t);
}

Test(vm_agent, a_guest_that_breaks_the_windows_loses_its_connection)
{
    static const struct {
        enum guest_act act;
        const char *why;
    } cases[] = {
        {GUEST_ACK_UNSENT, "acknowledged input it was never sent"},
        {GUEST_OVERFLOW, "more output than it was given room for"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct t t;
        t_setup(&t, &cases[i].act, 1);
        struct io_run x;
        io_setup(&x);
        struct driver_exec_io io = {.in_fd = x.in[0], .out_fd = x.out[1], .err_fd = x.r.err, .ctl_fd = x.ctl[0]};
        struct duet_err err = {0};
        const char *const argv[] = {"/bin/cat", NULL};
        /* A client that reads nothing: the host grants no room back. */
        fcntl(x.out[1], F_SETPIPE_SZ, 4096);
        cr_assert_eq(vm_agent_exec_io(t.a, argv, &io, 5000, run_exited, &x.r, &err), 0, "%s", err.msg);
        io_wait(&t, &x, true);
        cr_expect_eq(x.r.status, -1, "case %zu", i);
        char *e = written(x.r.err);
        cr_expect(strstr(e, cases[i].why), "case %zu: %s", i, e);
        char b[8192];
        cr_expect_leq(read(x.out[0], b, sizeof(b)), 4096, "case %zu: only what the client's pipe holds", i);
        free(e);
        io_free(&x);
        t_teardown(&t);
    }
}

/* ---- the workload's own command ('A': duet run -i/-t) ------------------------------------------------- */

Test(vm_agent, the_workloads_own_command_is_attached_and_its_status_acknowledged)
{
    struct t t;
    enum guest_act acts[] = {GUEST_ECHO_IO};
    t_setup(&t, acts, 1);
    struct io_run x;
    io_setup(&x);
    struct driver_exec_io io = {.in_fd = x.in[0], .out_fd = x.out[1], .err_fd = x.r.err, .ctl_fd = x.ctl[0],
                                .tty = true, .rows = 30, .cols = 100};
    struct duet_err err = {0};
    cr_assert_eq(vm_agent_attach(t.a, &io, run_exited, &x.r, &err), 0, "%s", err.msg);
    cr_assert(!x.r.done, "never answered from within the call");
    cr_assert_eq(write(x.in[1], "hello", 5), 5);
    close(x.in[1]);
    x.in[1] = -1;
    io_wait(&t, &x, false);
    cr_expect_eq(x.r.status, 0);
    cr_expect_eq(x.got_len, 5);
    cr_expect(x.got && memcmp(x.got, "hello", 5) == 0);
    io_free(&x);
    t_teardown(&t);
    cr_expect(t.g.attach_seen, "the request was an attach, with no command");
    cr_expect_eq(t.g.io_head[0], VM_AGENT_IO_TTY);
    cr_expect_eq(t.g.io_head[2] << 8 | t.g.io_head[3], 30);
    cr_expect_eq(t.g.io_head[4] << 8 | t.g.io_head[5], 100);
    cr_expect_eq(t.g.detach_seen, 1, "its status was acknowledged, so the guest may power off");
}

Test(vm_agent, the_client_going_lets_go_of_the_workloads_command_and_never_kills_it)
{
    struct t t;
    enum guest_act acts[] = {GUEST_ECHO_IO};
    t_setup(&t, acts, 1);
    struct io_run x;
    io_setup(&x);
    struct driver_exec_io io = {.in_fd = x.in[0], .out_fd = x.out[1], .err_fd = x.r.err, .ctl_fd = x.ctl[0]};
    struct duet_err err = {0};
    cr_assert_eq(vm_agent_attach(t.a, &io, run_exited, &x.r, &err), 0, "%s", err.msg);
    for (int i = 0; i < 20; i++)
        uv_run(&t.loop, UV_RUN_NOWAIT);
    close(x.ctl[1]);
    x.ctl[1] = -1;
    io_wait(&t, &x, false);
    cr_expect_eq(x.r.status, -1, "the attachment ended; the workload's end is not its to say");
    io_free(&x);
    t_teardown(&t);
    cr_expect(t.g.attach_seen);
    cr_expect(!t.g.kill_seen, "the workload's own command is never killed for its client");
    cr_expect_eq(t.g.detach_seen, 1, "the guest was told to let go");
}

/* ---- the QEMU guest agent's answers, as a guest could forge them ------------------------------------ */

#include "backends/vm/qga.h"

Test(vm_qga, answers_of_the_wrong_shape_are_refused)
{
    const char *why = NULL;
    cr_expect_eq(vm_qga_parse_pid("{\"return\":{\"pid\":1234}}", &why), 1234);
    static const char *const bad_pid[] = {NULL, "", "{", "[]", "{\"return\":{}}", "{\"return\":{\"pid\":\"12\"}}",
                                          "{\"return\":{\"pid\":0}}", "{\"return\":{\"pid\":-5}}",
                                          "{\"error\":{\"class\":\"GenericError\"}}"};
    for (size_t i = 0; i < sizeof(bad_pid) / sizeof(bad_pid[0]); i++)
        cr_expect_eq(vm_qga_parse_pid(bad_pid[i], &why), -1, "case %zu", i);

    bool exited;
    int status;
    char *out, *errs;
    size_t ol, el;
    cr_assert_eq(vm_qga_parse_status("{\"return\":{\"exited\":false}}", &exited, &status, &out, &ol, &errs, &el, &why),
                 0);
    cr_expect_not(exited);
    cr_assert_eq(vm_qga_parse_status("{\"return\":{\"exited\":true,\"exitcode\":3,\"out-data\":\"aGkK\","
                                      "\"err-data\":\"b29wcwo=\"}}",
                                      &exited, &status, &out, &ol, &errs, &el, &why),
                 0);
    cr_expect(exited);
    cr_expect_eq(status, 3);
    cr_expect_eq(ol, 3);
    cr_expect_str_eq(out, "hi\n");
    cr_expect_str_eq(errs, "oops\n");
    free(out);
    free(errs);
    cr_assert_eq(vm_qga_parse_status("{\"return\":{\"exited\":true,\"signal\":9}}", &exited, &status, &out, &ol, &errs,
                                     &el, &why),
                 0);
    cr_expect_eq(status, 137);
    static const char *const bad[] = {
        NULL,
        "{\"return\":{}}",
        "{\"return\":{\"exited\":\"yes\"}}",
        "{\"return\":{\"exited\":true}}",
        "{\"return\":{\"exited\":true,\"exitcode\":256}}",
        "{\"return\":{\"exited\":true,\"exitcode\":-1}}",
        "{\"return\":{\"exited\":true,\"exitcode\":0,\"out-data\":\"not base64!\"}}",
        "{\"return\":{\"exited\":true,\"exitcode\":0,\"err-data\":12}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(vm_qga_parse_status(bad[i], &exited, &status, &out, &ol, &errs, &el, &why), -1, "case %zu", i);
        cr_expect_null(out);
        cr_expect_null(errs);
    }
}
