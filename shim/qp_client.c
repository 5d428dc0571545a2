/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim's end of the queue pair (include/vgpu/qp.h), the same on both
 * carriers: a memfd shared over the unix socket, or the head of this
 * process's slot of vgpu-stub's shared BAR.  Requests go into the
 * submission ring without waiting for earlier replies; replies come back
 * in order through the completion ring.  Waiting is a bounded spin, then
 * sleeps: on a futex host-direct (the server wakes us only if we say we
 * sleep), and short growing naps in a guest (nothing there can wake us).
 * Between sleeps the transport's alive() notices a server that went away.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/transport.h"
#include "vgpu/fdio.h"
#include "vgpu/futex.h"

/*
 * Spin this long for a reply before sleeping: host-direct a futex wakes us
 * at once; a guest can only nap, and its naps (timer slack, emulation) last
 * far longer than asked, so it spins longer.
 */
#define SPIN_NS 30000u
#define GUEST_SPIN_NS 300000u

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/*
 * Waits for cond(t) with a spin, then sleeps; between sleeps the server's
 * liveness is checked.  0, or -EPIPE/-ECONNRESET when the server is gone.
 */
static int wait_for(struct vgpu_transport *t, int (*cond)(struct vgpu_transport *t))
{
    uint64_t until = vgpu_mono_ns() + (t->ops->qp_futex ? SPIN_NS : GUEST_SPIN_NS);
    struct timespec nap = { 0, 10000 };
    struct vgpu_qp_hdr *h = t->qp.hdr;

    for (unsigned i = 1; !cond(t); i++) {
        int rc;

        if (i % 64 || vgpu_mono_ns() < until) {
            cpu_relax();
            continue;
        }
        if (t->ops->qp_futex) {
            uint32_t seen;

            __atomic_store_n(&h->client_sleeping, 1, __ATOMIC_SEQ_CST);
            seen = __atomic_load_n(&h->comp_tail, __ATOMIC_SEQ_CST);
            if (!cond(t))
                vgpu_futex_wait(&h->comp_tail, seen, 50000000u);
            __atomic_store_n(&h->client_sleeping, 0, __ATOMIC_SEQ_CST);
        } else {
            nanosleep(&nap, NULL);
            nap.tv_nsec = nap.tv_nsec * 2 < 100000 ? nap.tv_nsec * 2 : 100000;
        }
        if (!cond(t) && (rc = t->ops->alive(t)))
            return rc;
    }
    return 0;
}

/* Spinning looks at the reply's header; the server's index now and then. */
static int reply_pending(struct vgpu_transport *t)
{
    return vgpu_qring_ready(&t->qp.comp) || (++t->qp_looks % 64 == 0 && vgpu_qring_pending(&t->qp.comp));
}

static int server_took_some(struct vgpu_transport *t)
{
    return __atomic_load_n(t->qp.sub.head, __ATOMIC_ACQUIRE) != t->qp_room_seen;
}

int vgpu_shim_qp_send(struct vgpu_transport *t, const struct vgpu_frame_header *h,
                      const Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload,
                      size_t len)
{
    uint8_t *w;
    size_t written;
    int err, rc;

    while (!(w = vgpu_qring_reserve(&t->qp.sub, (uint32_t)len, &err))) {
        if (err)
            return err;
        /* full: the server is behind; wait until it takes something */
        t->qp_room_seen = __atomic_load_n(t->qp.sub.head, __ATOMIC_ACQUIRE);
        rc = wait_for(t, server_took_some);
        if (rc)
            return rc;
    }
    rc = vgpu_frame_gather(h, env, payload, npayload, w, len, &written);
    if (rc)
        return rc;
    vgpu_qring_publish(&t->qp.sub, (uint32_t)written, VGPU_QP_FRAME);
    vgpu_shim_qp_ring(t);
    return 0;
}

void vgpu_shim_qp_ring(struct vgpu_transport *t)
{
    /* a full barrier between the publication and the look at server_sleeping */
    __atomic_add_fetch(&t->qp.hdr->doorbell, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&t->qp.hdr->server_sleeping, __ATOMIC_SEQ_CST))
        t->ops->bell(t);
}

int vgpu_shim_qp_recv(struct vgpu_transport *t, uint8_t **buf, size_t *len)
{
    const uint8_t *d;
    uint32_t n, kind;
    int rc;

    /* (right after a WRAP the ring can look ready with nothing behind it yet) */
    do {
        rc = wait_for(t, reply_pending);
        if (rc)
            return rc;
        rc = vgpu_qring_peek(&t->qp.comp, &d, &n, &kind);
    } while (rc == -EAGAIN);
    if (rc)
        return rc;
    if (kind == VGPU_QP_ON_SOCKET) {
        vgpu_qring_pop(&t->qp.comp, n);
        return t->ops->recv(t, buf, len);
    }
    if (kind == VGPU_QP_TOO_LARGE) {
        vgpu_qring_pop(&t->qp.comp, n);
        return -EMSGSIZE;       /* the server had no way to send this reply */
    }
    if (kind != VGPU_QP_FRAME || n < VGPU_FRAME_HEADER_SIZE)
        return -EPROTO;
    *buf = malloc(n);
    if (!*buf)
        return -ENOMEM;
    memcpy(*buf, d, n);
    *len = n;
    vgpu_qring_pop(&t->qp.comp, n);
    return 0;
}
