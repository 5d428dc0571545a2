/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A session's carriers: the ways its client's requests come in and its
 * replies go out, behind one table of functions.  Every session starts on
 * the socket (carrier_sock.c: frames on the unix socket or the link's
 * socketpair, fds passed by SCM_RIGHTS); control.c switches it to a queue
 * pair when one is attached (carrier_qp.c: a memfd host-direct, a slot of
 * the VM's shared BAR in a guest).  A queue-pair carrier still takes frames
 * from the socket (those that pass an fd, or do not fit the ring) and
 * answers each request the way it came.  session.c only asks s->carrier.
 *
 * The waits on file descriptors (the socket; in a guest the slot's doorbell
 * eventfd and the socket) go through the session's event loop (loop.c),
 * made once when the session starts; fds join it when their carrier is
 * chosen.  A host-direct queue pair sleeps on its doorbell futex instead.
 */
#ifndef VGPU_CARRIER_H
#define VGPU_CARRIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vgpu/wire.h"

struct vgpu_session;

struct vgpu_carrier_ops {
    const char *name;
    /*
     * The next request frame, whole, in a malloc'ed buffer the caller
     * frees; waits as the carrier waits (the queue pairs spin, then sleep).
     * s->via_qp says whether it came through the queue pair; an fd passed
     * with it lands in s->pending_fd (the caller's).  0, -ECONNRESET when
     * the client closed, or another negative errno / wire error.
     */
    int (*receive)(struct vgpu_session *s, uint8_t **buf, size_t *len);
    /*
     * Sends the reply of the request received last, the way that request
     * came; h gives flags and seq.  Nothing of env or iov is kept.  0 or a
     * negative errno (-EPIPE: the client is gone).
     */
    int (*reply)(struct vgpu_session *s, const struct vgpu_frame_header *h,
                 Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov);
    /*
     * Sleeps until a request may have arrived, at most about timeout_ns:
     * 1 when something may be there (or the client hung up; a queue pair,
     * which cannot tell, always says 1), 0 when the time ran out, or a
     * negative errno.
     */
    int (*wait)(struct vgpu_session *s, uint64_t timeout_ns);
    /* Is the client still there?  (Its socket has not hung up.) */
    bool (*alive)(const struct vgpu_session *s);
};

extern const struct vgpu_carrier_ops vgpu_carrier_sock;
extern const struct vgpu_carrier_ops vgpu_carrier_qp_memfd;
extern const struct vgpu_carrier_ops vgpu_carrier_qp_bar;

/* ---- choosing one (carrier.c) ---- */

/* The carrier of a session with no queue pair, or one in a memfd or the shared BAR. */
const struct vgpu_carrier_ops *vgpu_carrier_for(bool has_qp, bool in_bar);
/*
 * A session starting on s->fd: its event loop (s->loop, the session's)
 * watching the socket, and the socket carrier.  0 or a negative errno.
 */
int vgpu_carrier_start(struct vgpu_session *s);
/*
 * s->qp is attached (in a memfd, or in_bar): its carrier takes over; in a
 * guest the doorbell eventfd bell (not owned: link.c's) joins the loop.
 * 0, or a negative errno with the session left on the socket.
 */
int vgpu_carrier_use_qp(struct vgpu_session *s, bool in_bar, int bell);
/* The queue pair goes: back to the socket, the doorbell out of the loop. */
void vgpu_carrier_leave_qp(struct vgpu_session *s);
/* The session ends: the loop is freed (it closes no fd). */
void vgpu_carrier_end(struct vgpu_session *s);

/* ---- the socket, also for the queue-pair carriers (carrier_sock.c) ---- */

/* A look at the socket, no wait: has it something (a frame, or a hang-up)? */
bool vgpu_carrier_sock_ready(const struct vgpu_session *s);
int vgpu_carrier_sock_reply(struct vgpu_session *s, const struct vgpu_frame_header *h,
                            Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov);
bool vgpu_carrier_sock_alive(const struct vgpu_session *s);
/* Loop rounds of up to timeout_ns; rounded up to whole milliseconds. */
int vgpu_carrier_loop_ms(uint64_t timeout_ns);

#endif
