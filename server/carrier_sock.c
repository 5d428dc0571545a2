/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The socket carrier (carrier.h): whole frames on the session's stream
 * socket (a host client's unix or TCP socket, or the device link's
 * socketpair), an fd passed with a frame by SCM_RIGHTS kept in
 * s->pending_fd.  Every session starts on it, and the queue-pair carriers
 * use its pieces for the frames that still come this way.
 */
#include <errno.h>
#include <poll.h>

#include "carrier.h"
#include "loop.h"
#include "server_internal.h"
#include "vgpu/fdio.h"

bool vgpu_carrier_sock_ready(const struct vgpu_session *s)
{
    struct pollfd p = { .fd = s->fd, .events = POLLIN };

    return poll(&p, 1, 0) > 0;
}

bool vgpu_carrier_sock_alive(const struct vgpu_session *s)
{
    struct pollfd p = { .fd = s->fd, .events = POLLIN };

    return !(poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)));
}

int vgpu_carrier_sock_reply(struct vgpu_session *s, const struct vgpu_frame_header *h,
                            Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov)
{
    return vgpu_fd_send_frame(s->fd, h, env, iov, niov);
}

int vgpu_carrier_loop_ms(uint64_t timeout_ns)
{
    uint64_t ms = (timeout_ns + 999999u) / 1000000u;

    return ms > 60000 ? 60000 : (int)ms;
}

/* One round of the session's loop; the socket's callback (carrier.c) notes what it saw. */
static int sock_wait(struct vgpu_session *s, uint64_t timeout_ns)
{
    int rc;

    s->sock_revents = 0;
    rc = vgpu_loop_run_once(s->loop, vgpu_carrier_loop_ms(timeout_ns));
    if (rc < 0)
        return rc;
    return s->sock_revents != 0;
}

/*
 * While work is on the GPU and the client is quiet, rounds of 1 ms notice
 * when the work ends.  Otherwise the read itself waits: nothing else is to
 * be watched, and a look first would cost every request a system call.
 */
static int sock_receive(struct vgpu_session *s, uint8_t **buf, size_t *len)
{
    while (s->work_n && sock_wait(s, 1000000u) == 0)
        vgpu_work_poll(s);
    s->via_qp = false;
    return vgpu_fd_read_frame_fd(s->fd, NULL, buf, len, &s->pending_fd);
}

const struct vgpu_carrier_ops vgpu_carrier_sock = {
    .name = "socket",
    .receive = sock_receive,
    .reply = vgpu_carrier_sock_reply,
    .wait = sock_wait,
    .alive = vgpu_carrier_sock_alive,
};
