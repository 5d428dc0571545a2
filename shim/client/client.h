/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client library: everything a guest library needs to talk to
 * vgpu-server, apart from what its calls mean.  One connection (socket,
 * mmio window, queue pair), one queue of asynchronous calls and one order of
 * calls per process, shared by every interposed library in it
 * (libcudart.so.13 today, libcuda.so.1 next): each links this static
 * library, and the first copy initialised serves the others (instance.c).
 *
 * Conventions:
 *   - Functions return 0 or a negative errno for local and transport
 *     failures; vgpu_client_invoke() returns the server's status (>= 0, in
 *     the API of the call) when the server answered.  The API library maps
 *     a negative errno to its own status once, at its boundary.
 *   - Every function is thread-safe: one lock per client orders all calls.
 *     The per-thread state (current device, last error) belongs to the
 *     calling thread.
 *   - A struct vgpu_client is owned by the copy of this library that made
 *     it; others reach it only through these functions, which go through
 *     its table of operations, so two builds never share a layout.
 */
#ifndef VGPU_CLIENT_H
#define VGPU_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/callgen.h"

/* Built with -fvisibility=hidden; these say so where it matters. */
#define VGPU_HIDDEN __attribute__((visibility("hidden")))
#define VGPU_EXPORT __attribute__((visibility("default")))

struct vgpu_client;

/*
 * The process's client, made at load time and never freed (its library
 * stays loaded); the same pointer in every library of the process that
 * links this one.  Never NULL.
 */
struct vgpu_client *vgpu_client_get(void);

/*
 * Sends one call and waits for its reply, or queues it (VGPU_FN_ASYNC, no
 * outputs): the server's status (>= 0), or -ENOTCONN (no server, or the
 * connection is lost for good), -ENOMEM, -E2BIG (too large for the link),
 * -EMSGSIZE (the reply could not come back), -EPROTO (a reply that does not
 * answer).  A call marked VGPU_FN_CACHED may be answered from the cache.
 * rep->ret stays valid until vgpu_client_rep_release(), which must be
 * called in every case.  Outputs are written only when the status is 0.
 */
int vgpu_client_invoke(struct vgpu_client *c, struct vgpu_call_req *req, struct vgpu_call_rep *rep);
void vgpu_client_rep_release(struct vgpu_client *c, struct vgpu_call_rep *rep);

/* Connects now if no call has yet: 0 or -errno (the reason was logged). */
int vgpu_client_connect(struct vgpu_client *c);

/*
 * Sends whatever is queued, waits for every reply, and moves the failures
 * owed to the calling thread into its last error.
 */
void vgpu_client_settle(struct vgpu_client *c);

/* The calling thread's current device. */
int vgpu_client_device(struct vgpu_client *c);
void vgpu_client_set_device(struct vgpu_client *c, int device);
/*
 * The calling thread's current driver context (libcuda.so.1's), 0 for none:
 * calls then run in the current device's primary context.
 */
uint64_t vgpu_client_context(struct vgpu_client *c);
void vgpu_client_set_context(struct vgpu_client *c, uint64_t ctx);
/*
 * The calling thread's last error: a status, or -errno for a queued call
 * whose answer never came; clear resets it to 0.  set records st when it is
 * not 0.  Neither settles the queue (vgpu_client_settle() does).
 */
int vgpu_client_last_error(struct vgpu_client *c, bool clear);
void vgpu_client_set_error(struct vgpu_client *c, int st);

/* The status the server's runtime started with (0 before connecting). */
int vgpu_client_init_status(struct vgpu_client *c);
/*
 * The server's release ("vgpu-server 0.1.0"), connecting first if need be:
 * 0, -ENOTCONN (not reachable: the connection said why), or -EOPNOTSUPP
 * (an older copy of the client library made the process's client).
 */
int vgpu_client_server_version(struct vgpu_client *c, char *buf, size_t len);
/*
 * The server's name (text false) or text (text true) of an error code, or
 * its catch-all entry; NULL when the server sent neither (or no table: not
 * connected).  With connect, connects first if no call has yet.  The string
 * lives as long as the process.
 */
const char *vgpu_client_error_string(struct vgpu_client *c, int code, bool text, bool connect);

/*
 * Host memory shared with the server (regions.c).
 * can_share: is the connection one that takes memfd regions (unix socket,
 *   VGPU_SHM not 0)?
 * region_new: a sealed memfd of size bytes mapped here, registered as
 *   region id; its address (the caller's, freed with region_free), or NULL.
 * bar_region: in a guest, the rest of this process's slot of the device's
 *   shared BAR, registered as region id; its address and *size, or NULL.
 *   The slot is the client's: never freed.
 * region_free: unregisters region id and unmaps base.
 */
bool vgpu_client_can_share(struct vgpu_client *c);
void *vgpu_client_region_new(struct vgpu_client *c, uint32_t id, size_t size);
/*
 * region_new_mapped: as region_new, for mapped (zero-copy) memory that
 * kernels reach at *devptr (equal to the address returned where the server
 * could map it at the same address); NULL where the connection shares no
 * memory or the server maps none.  Freed with region_free.
 */
void *vgpu_client_region_new_mapped(struct vgpu_client *c, uint32_t id, size_t size,
                                    uint64_t *devptr);
void *vgpu_client_bar_region(struct vgpu_client *c, uint32_t id, size_t *size);
void vgpu_client_region_free(struct vgpu_client *c, uint32_t id, void *base, size_t size);

/*
 * Host callbacks (callbacks.c): a function of the program the server's
 * stream makes due, run on the client's callback thread.  kind
 * VGPU_CB_HOST_FN calls fn(data); VGPU_CB_STREAM calls
 * fn(stream, status, data), status being the stream's as the server's
 * driver or runtime told it; VGPU_CB_NOTIFY calls fn(data, status, arg)
 * (an async notification: its type and its figure).
 * callback_add: registers cb (copied) under a new id (never 0) for the call
 *   that carries it: 0, -EOPNOTSUPP (no shared-memory queue pair: the
 *   reason was logged once), -ENOSPC (65536 registered and not yet run),
 *   -ENOTCONN, -ENOMEM, or -EDEADLK on the callback thread itself.  The
 *   entry is dropped once it ran, when the session ends, or by
 *   callback_cancel() (the call that carried the id failed).
 */
enum { VGPU_CB_HOST_FN = 0, VGPU_CB_STREAM = 1, VGPU_CB_NOTIFY = 2 };
struct vgpu_callback {
    int kind;
    void (*fn)(void);
    void *data;
    void *stream;              /* the program's stream, for VGPU_CB_STREAM */
};
int vgpu_client_callback_add(struct vgpu_client *c, const struct vgpu_callback *cb, uint64_t *id);
void vgpu_client_callback_cancel(struct vgpu_client *c, uint64_t id);
/*
 * callback_keep: how long id's entry lives: VGPU_CB_KEEP, after it ran, for
 * as long as the process lives (a graph's host node runs it at each
 * launch); VGPU_CB_LATER, until it ran once, which may be long from now (a
 * user object's destructor); VGPU_CB_ONCE makes a kept entry run once
 * again (gone at once if it ran while kept); VGPU_CB_AS_IS leaves it.
 * *out (when not NULL) gets what it runs.  0, or -ENOENT for an id not registered (or
 * already run), -EOPNOTSUPP from an older copy's client.
 */
enum { VGPU_CB_AS_IS = 0, VGPU_CB_KEEP = 1, VGPU_CB_LATER = 2, VGPU_CB_ONCE = 3 };
int vgpu_client_callback_keep(struct vgpu_client *c, uint64_t id, int how,
                              struct vgpu_callback *out);
/* Whether a host callback registered to run once (a stream's) has not returned yet. */
bool vgpu_client_callbacks_due(struct vgpu_client *c);
/*
 * fn runs before every call flagged VGPU_FN_WORK that any library of the
 * process makes through c (the runtime's managed memory sends the host's
 * side first); 0, or -EOPNOTSUPP from an older copy's client.
 */
int vgpu_client_set_before_work(struct vgpu_client *c, void (*fn)(void));
/*
 * The server driver's log messages (cuLogsRegisterCallback in libcuda.so.1):
 * the server sends them with the device output of the reply that follows
 * them, and fn(level, text, len) runs for each, in order, on the thread
 * whose call fetched them, after that call left the client (so fn may make
 * CUDA calls).  NULL stops the hand-over (what was fetched is dropped).
 * 0, or -EOPNOTSUPP from an older copy's client.
 */
typedef void (*vgpu_log_sink)(int level, const char *text, size_t len);
int vgpu_client_set_log_sink(struct vgpu_client *c, vgpu_log_sink fn);
/*
 * The status a queued call of this thread failed with and no call has told
 * yet (0: none), cleared: the driver library returns it from the thread's
 * next call that waits.  A failed call's own status is not one.
 */
int vgpu_client_take_owed(struct vgpu_client *c);
/*
 * The calling thread holds a lock of vgpu's own, or is one of vgpu's
 * threads (delta +1; -1 when that ends): the driver's log messages its
 * calls fetch wait for a later call, since a callback run here could call
 * CUDA and wait for that lock.
 */
void vgpu_client_quiet(struct vgpu_client *c, int delta);
/*
 * The object that holds code at addr stays loaded for the life of the
 * process: a library whose functions the client keeps (log sinks, callback
 * runners, managed memory's moves) must outlive a dlclose().
 */
void vgpu_client_pin(const void *addr);
/* Whether c's callback thread runs VGPU_CB_NOTIFY entries (an older copy's client does not). */
bool vgpu_client_runs_notify(struct vgpu_client *c);

/* ---- logging: VGPU_LOG=error|warn|info|debug, to stderr (log.c) ---- */
enum { VGPU_LOG_ERROR, VGPU_LOG_WARN, VGPU_LOG_INFO, VGPU_LOG_DEBUG };
void vgpu_shim_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
