/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Choosing a session's carrier (carrier.h) and setting up what it waits
 * on: the session's event loop, made once when the session starts with the
 * socket in it; a guest's doorbell eventfd joins when its queue pair is
 * attached, and leaves with it.
 */
#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "carrier.h"
#include "loop.h"
#include "server_internal.h"

const struct vgpu_carrier_ops *vgpu_carrier_for(bool has_qp, bool in_bar)
{
    if (!has_qp)
        return &vgpu_carrier_sock;
    return in_bar ? &vgpu_carrier_qp_bar : &vgpu_carrier_qp_memfd;
}

/* The socket is readable or hung up: noted for whoever waited. */
static void on_socket(struct vgpu_loop *l, int fd, short revents, void *opaque)
{
    struct vgpu_session *s = opaque;

    (void)l, (void)fd;
    s->sock_revents |= revents;
}

/* The guest rang its slot's doorbell: the ring is looked at next; the count is dropped. */
static void on_doorbell(struct vgpu_loop *l, int fd, short revents, void *opaque)
{
    uint64_t v;

    (void)l, (void)opaque;
    if ((revents & POLLIN) && read(fd, &v, sizeof(v)) < 0)
        v = 0;
}

int vgpu_carrier_start(struct vgpu_session *s)
{
    int rc;

    s->loop = vgpu_loop_new();
    if (!s->loop)
        return -ENOMEM;
    rc = vgpu_loop_add(s->loop, s->fd, POLLIN, on_socket, s);
    if (rc) {
        vgpu_loop_free(s->loop);
        s->loop = NULL;
        return rc;
    }
    s->qp_bell = -1;
    s->carrier = vgpu_carrier_for(false, false);
    return 0;
}

int vgpu_carrier_use_qp(struct vgpu_session *s, bool in_bar, int bell)
{
    if (in_bar) {
        int rc = s->loop ? vgpu_loop_add(s->loop, bell, POLLIN, on_doorbell, s) : -EINVAL;

        if (rc)
            return rc;
        s->qp_bell = bell;
    }
    s->carrier = vgpu_carrier_for(true, in_bar);
    return 0;
}

void vgpu_carrier_leave_qp(struct vgpu_session *s)
{
    if (s->qp_bell >= 0 && s->loop)
        vgpu_loop_del(s->loop, s->qp_bell);
    s->qp_bell = -1;
    s->carrier = vgpu_carrier_for(false, false);
}

void vgpu_carrier_end(struct vgpu_session *s)
{
    vgpu_loop_free(s->loop);
    s->loop = NULL;
    s->carrier = NULL;
}
