/*
 * event_uv.h - libvirt's event loop hooks on a libuv loop.
 *
 * libvirt needs an event loop for its connections and its domain events;
 * virEventRegisterImpl hands it ours, so everything libvirt waits on (fds
 * of its connections, its timers) becomes a uv_poll_t or uv_timer_t on the
 * daemon's single loop, and lifecycle events reach us on the loop thread.
 *
 * libvirt takes these hooks once per process and without a context
 * argument, so the registry they use is the one piece of file-level state
 * in duet: it is created by vm_event_uv_register and never replaced.
 * All hooks must be called on the loop thread (libvirt does so when the
 * connection is used from the loop thread).
 */
#ifndef DUET_VM_EVENT_UV_H
#define DUET_VM_EVENT_UV_H

#include <uv.h>

#include "err.h"

/* Registers the hooks for `loop`.  Call once, before opening any libvirt
 * connection; a second call is an error. */
int vm_event_uv_register(uv_loop_t *loop, struct duet_err *err);

#endif
