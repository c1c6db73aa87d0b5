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
 * libvirt may call the hooks from any thread (duet makes its blocking
 * libvirt calls on the thread pool); changes are applied on the loop thread.
 */
#ifndef DUET_VM_EVENT_UV_H
#define DUET_VM_EVENT_UV_H

#include <uv.h>

#include "common/err.h"

/* Registers the hooks for `loop`.  Call once, before opening any libvirt
 * connection; a second call is an error. */
int vm_event_uv_register(uv_loop_t *loop, struct duet_err *err);

/* Closes the loop's wake-up handle, so the loop can be closed.  Call on the
 * loop thread once every libvirt connection is closed. */
void vm_event_uv_shutdown(void);

#endif
