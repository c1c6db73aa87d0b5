/*
 * libvirt's event loop on libuv: libvirt's own timers and fd watches run on
 * our loop, and domain lifecycle events from libvirt (here its in-process
 * test driver) arrive through it.  Each test runs in its own process
 * (criterion forks), so each may register the hooks once.
 */
#include <criterion/criterion.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "backends/vm/domain.h"
#include "backends/vm/event_uv.h"

struct seen {
    int started, stopped, ticks, freed, readable;
    uv_loop_t *loop;
    int timer_id, handle_id;
};

static void quiet(void *o, virErrorPtr e)
{
    (void)o;
    (void)e;
}

static void on_deadline(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, on_deadline, ms, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Every handle closed and the loop's own memory released: libvirt removes
 * its watches when its connections close, anything left is closed here. */
static void loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    uv_walk(loop, close_any, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(loop), 0);
}

static int lifecycle(virConnectPtr c, virDomainPtr d, int event, int detail, void *opaque)
{
    (void)c;
    (void)d;
    (void)detail;
    struct seen *s = opaque;
    if (event == VIR_DOMAIN_EVENT_STARTED)
        s->started++;
    if (event == VIR_DOMAIN_EVENT_STOPPED)
        s->stopped++;
    if (s->started && s->stopped)
        uv_stop(s->loop);
    return 0;
}

Test(vm_events, lifecycle_events_arrive_on_the_uv_loop, .timeout = 20)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct duet_err err = {0};
    cr_assert_eq(vm_event_uv_register(&loop, &err), 0, "%s", err.msg);
    cr_expect_eq(vm_event_uv_register(&loop, &err), -1, "registering twice is refused");
    virSetErrorFunc(NULL, quiet);
    virConnectPtr conn = virConnectOpen("test:///default");
    cr_assert_not_null(conn);
    struct seen s = {.loop = &loop};
    int cbid = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                VIR_DOMAIN_EVENT_CALLBACK(lifecycle), &s, NULL);
    cr_assert_geq(cbid, 0, "%s", virGetLastErrorMessage());
    struct vm_domain_spec spec = {.name = "duet-events", .memory_kib = 65536, .vcpus = 1, .kernel = "/k",
                                  .workload = "events", .owner = "test"};
    char *xml;
    cr_assert_eq(vm_domain_xml(&spec, &xml, &err), 0, "%s", err.msg);
    virDomainPtr dom = virDomainCreateXML(conn, xml, 0);
    cr_assert_not_null(dom, "%s", virGetLastErrorMessage());
    cr_assert_eq(virDomainDestroy(dom), 0);
    /* The events are queued by libvirt and flushed by a timer it added
     * through our hooks: they only arrive if the uv loop runs it. */
    cr_expect_eq(s.started + s.stopped, 0, "nothing is delivered outside the loop");
    run_for(&loop, 5000);
    cr_expect_eq(s.started, 1);
    cr_expect_eq(s.stopped, 1);
    virConnectDomainEventDeregisterAny(conn, cbid);
    virDomainFree(dom);
    virConnectClose(conn);
    free(xml);
    run_for(&loop, 50);
    loop_finish(&loop);
}

static void tick(int id, void *opaque)
{
    struct seen *s = opaque;
    (void)id;
    if (++s->ticks == 3) {
        virEventUpdateTimeout(s->timer_id, -1);   /* off */
        uv_stop(s->loop);
    }
}

static void freed(void *opaque)
{
    struct seen *s = opaque;
    s->freed++;
}

Test(vm_events, timeouts_repeat_stop_and_free, .timeout = 20)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct duet_err err = {0};
    cr_assert_eq(vm_event_uv_register(&loop, &err), 0, "%s", err.msg);
    struct seen s = {.loop = &loop};
    s.timer_id = virEventAddTimeout(10, tick, &s, freed);
    cr_assert_gt(s.timer_id, 0);
    run_for(&loop, 5000);
    cr_expect_eq(s.ticks, 3, "three ticks, then the timer was turned off");
    run_for(&loop, 100);
    cr_expect_eq(s.ticks, 3, "a disabled timer does not fire");
    /* 0 means every loop iteration */
    s.ticks = 0;
    virEventUpdateTimeout(s.timer_id, 0);
    run_for(&loop, 2000);
    cr_expect_eq(s.ticks, 3, "an every-iteration timer keeps firing");
    cr_expect_eq(virEventRemoveTimeout(s.timer_id), 0);
    cr_expect_eq(s.freed, 0, "the free callback is not run from inside remove");
    run_for(&loop, 50);
    cr_expect_eq(s.freed, 1, "but right after, on the loop");
    cr_expect_eq(virEventRemoveTimeout(s.timer_id), -1, "an unknown id is an error");
    loop_finish(&loop);
}

static void readable(int id, int fd, int events, void *opaque)
{
    struct seen *s = opaque;
    (void)id;
    char b;
    if ((events & VIR_EVENT_HANDLE_READABLE) && read(fd, &b, 1) == 1)
        s->readable++;
    uv_stop(s->loop);
}

Test(vm_events, fd_watches, .timeout = 20)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct duet_err err = {0};
    cr_assert_eq(vm_event_uv_register(&loop, &err), 0, "%s", err.msg);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct seen s = {.loop = &loop};
    s.handle_id = virEventAddHandle(p[0], VIR_EVENT_HANDLE_READABLE, readable, &s, freed);
    cr_assert_gt(s.handle_id, 0);
    cr_assert_eq(write(p[1], "x", 1), 1);
    run_for(&loop, 5000);
    cr_expect_eq(s.readable, 1);
    virEventUpdateHandle(s.handle_id, 0);   /* watch nothing */
    cr_assert_eq(write(p[1], "y", 1), 1);
    run_for(&loop, 100);
    cr_expect_eq(s.readable, 1, "a handle watching nothing is not called");
    cr_expect_eq(virEventRemoveHandle(s.handle_id), 0);
    run_for(&loop, 50);
    cr_expect_eq(s.freed, 1);
    close(p[0]);
    close(p[1]);
    loop_finish(&loop);
}

/* libvirt calls the hooks from the threads that make its calls: duet makes
 * them on the thread pool.  What another thread asks for must happen on
 * the loop, and callbacks must run on the loop thread only. */
struct cross {
    struct seen s;
    uv_thread_t loop_thread;
    int wrong_thread;
    int fd;
};

/* Counts a callback that ran off the loop thread. */
static void check_thread(struct cross *c)
{
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &c->loop_thread))
        c->wrong_thread++;
}

static void cross_tick(int id, void *opaque)
{
    struct cross *c = opaque;
    check_thread(c);
    c->s.ticks++;
    virEventUpdateTimeout(id, -1);
    uv_stop(c->s.loop);
}

static void cross_readable(int id, int fd, int events, void *opaque)
{
    (void)id;
    struct cross *c = opaque;
    check_thread(c);
    char b;
    if ((events & VIR_EVENT_HANDLE_READABLE) && read(fd, &b, 1) == 1)
        c->s.readable++;
    uv_stop(c->s.loop);
}

static void cross_freed(void *opaque)
{
    struct cross *c = opaque;
    check_thread(c);
    c->s.freed++;
}

static void add_from_thread(void *arg)
{
    struct cross *c = arg;
    c->s.timer_id = virEventAddTimeout(5, cross_tick, c, cross_freed);
    c->s.handle_id = virEventAddHandle(c->fd, VIR_EVENT_HANDLE_READABLE, cross_readable, c, cross_freed);
}

static void remove_from_thread(void *arg)
{
    struct cross *c = arg;
    virEventRemoveTimeout(c->s.timer_id);
    virEventRemoveHandle(c->s.handle_id);
}

Test(vm_events, hooks_called_from_other_threads_act_on_the_loop, .timeout = 20)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct duet_err err = {0};
    cr_assert_eq(vm_event_uv_register(&loop, &err), 0, "%s", err.msg);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct cross c = {.s = {.loop = &loop}, .loop_thread = uv_thread_self(), .fd = p[0]};
    uv_thread_t t;
    cr_assert_eq(uv_thread_create(&t, add_from_thread, &c), 0);
    uv_thread_join(&t);
    cr_assert_gt(c.s.timer_id, 0);
    cr_assert_gt(c.s.handle_id, 0);
    run_for(&loop, 5000);
    cr_expect_eq(c.s.ticks, 1, "a timer added by another thread fires on the loop");
    cr_assert_eq(write(p[1], "x", 1), 1);
    run_for(&loop, 5000);
    cr_expect_eq(c.s.readable, 1, "an fd watch added by another thread fires on the loop");
    cr_assert_eq(uv_thread_create(&t, remove_from_thread, &c), 0);
    uv_thread_join(&t);
    cr_expect_eq(c.s.freed, 0, "nothing is freed off the loop");
    run_for(&loop, 100);
    cr_expect_eq(c.s.freed, 2, "both free callbacks ran, on the loop");
    cr_expect_eq(c.wrong_thread, 0, "every callback ran on the loop thread");
    close(p[0]);
    close(p[1]);
    vm_event_uv_shutdown();
    loop_finish(&loop);
}
