/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The queue-pair carriers (carrier.h, docs/specs/shared-memory.md): a
 * host-direct client's pair in a memfd, and a guest process's pair in its
 * slot of the VM's shared BAR.  Both spin for the next request, then sleep;
 * look at the socket between (frames that pass an fd or do not fit the
 * ring, the client hanging up); copy each frame out of the ring before
 * anything reads it; and answer a ring request in the completion ring.  They
 * differ in a few small functions (struct qp_kind): how long to spin, how
 * to sleep (the doorbell futex; the slot's eventfd and the socket, through
 * the session's loop), whether to wake the client (a guest naps instead),
 * and what becomes of a reply too large for the ring.  Each table entry
 * below passes its kind as a constant to the shared static code, so the
 * compiler can fold the differences away.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "carrier.h"
#include "loop.h"
#include "server_internal.h"
#include "vgpu/fdio.h"
#include "vgpu/futex.h"

/*
 * After each request the next one usually follows in microseconds: spin
 * this long before sleeping.
 */
#define VGPU_QP_IDLE_SPIN_NS 50000u
#define VGPU_QP_GUEST_SPIN_NS 200000u   /* an emulated guest takes longer to send the next */

struct qp_kind {
    uint64_t spin_ns;
    /* a guest's frame path comes through QEMU: no socket_frames count to go by */
    bool look_every_64;
    uint32_t too_large_kind;     /* the completion record of a reply that cannot fit */
    /* Sleeps with server_sleeping set and the doorbell read as bell. */
    void (*sleep)(struct vgpu_session *s, uint32_t bell, uint64_t timeout_ns);
    /* Wakes a client sleeping on the completion ring, if it does (after a full fence). */
    void (*wake)(struct vgpu_session *s);
    /* Sends what follows a too_large_kind record (len: the reply's bytes in the ring). */
    int (*too_large)(struct vgpu_session *s, const struct vgpu_frame_header *h,
                     Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov, size_t len);
};

/* ---- host-direct: a memfd ---- */

/*
 * A futex cannot be polled: the memfd pair sleeps on its doorbell word, and
 * looks at the socket just before (the client bumps socket_frames and rings
 * after each frame it sends there, so a frame sent during the sleep wakes it).
 */
static void memfd_sleep(struct vgpu_session *s, uint32_t bell, uint64_t timeout_ns)
{
    if (!vgpu_carrier_sock_ready(s))
        vgpu_futex_wait(&s->qp.hdr->doorbell, bell, timeout_ns);
}

static void memfd_wake(struct vgpu_session *s)
{
    if (__atomic_load_n(&s->qp.hdr->client_sleeping, __ATOMIC_SEQ_CST))
        vgpu_futex_wake(&s->qp.hdr->comp_tail);
}

/* The ON_SOCKET record is out: the reply follows on the socket, as a protobuf frame. */
static int memfd_too_large(struct vgpu_session *s, const struct vgpu_frame_header *h,
                           Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov, size_t len)
{
    (void)len;
    return vgpu_fd_send_frame(s->fd, h, env, iov, niov);
}

/* ---- in a guest: a slot of the shared BAR ---- */

/* On the slot's doorbell eventfd and the socket at once (the loop's bell callback drains it). */
static void bar_sleep(struct vgpu_session *s, uint32_t bell, uint64_t timeout_ns)
{
    (void)bell;
    vgpu_loop_run_once(s->loop, vgpu_carrier_loop_ms(timeout_ns));
}

/* A guest client naps: there is nobody to wake. */
static void bar_wake(struct vgpu_session *s)
{
    (void)s;
}

/* The guest's frame path is not this session's to answer on: the call fails. */
static int bar_too_large(struct vgpu_session *s, const struct vgpu_frame_header *h,
                         Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov, size_t len)
{
    (void)s, (void)h, (void)env, (void)iov, (void)niov;
    vgpu_log(VGPU_LOG_WARN, "a reply of %zu bytes does not fit the guest's ring; the call fails "
             "(the shim sends calls with large outputs on the frame path)", len);
    return 0;
}

static const struct qp_kind memfd_kind = {
    .spin_ns = VGPU_QP_IDLE_SPIN_NS, .look_every_64 = false, .too_large_kind = VGPU_QP_ON_SOCKET,
    .sleep = memfd_sleep, .wake = memfd_wake, .too_large = memfd_too_large,
};

static const struct qp_kind bar_kind = {
    .spin_ns = VGPU_QP_GUEST_SPIN_NS, .look_every_64 = true, .too_large_kind = VGPU_QP_TOO_LARGE,
    .sleep = bar_sleep, .wake = bar_wake, .too_large = bar_too_large,
};

/* ---- shared ---- */

static inline void qp_wake(struct vgpu_session *s, const struct qp_kind *k)
{
    /*
     * The completion was published with a release store; the client says
     * it sleeps, then looks at the ring.  Without a full fence here the
     * load in wake could pass our store, and both would miss the other.
     */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    k->wake(s);
}

/*
 * Sleeps until the client may have sent something; shorter while work is
 * on the GPU (the caller's timeout), so its end is noticed.
 */
static inline int qp_wait(struct vgpu_session *s, uint64_t timeout_ns, const struct qp_kind *k)
{
    struct vgpu_qp_hdr *hd = s->qp.hdr;
    uint32_t bell;

    __atomic_store_n(&hd->server_sleeping, 1, __ATOMIC_SEQ_CST);
    bell = __atomic_load_n(&hd->doorbell, __ATOMIC_SEQ_CST);
    if (!vgpu_qring_pending(&s->qp.sub))
        k->sleep(s, bell, timeout_ns);
    __atomic_store_n(&hd->server_sleeping, 0, __ATOMIC_SEQ_CST);
    return 1;
}

/* The record at the head of the submission ring, copied out and popped. */
static int take_frame(struct vgpu_session *s, const uint8_t *d, uint32_t n, uint32_t kind,
                      uint8_t **buf, size_t *len)
{
    if (kind != VGPU_QP_FRAME || n < VGPU_FRAME_HEADER_SIZE)
        return -EPROTO;
    *buf = malloc(n);
    if (!*buf)
        return -ENOMEM;
    memcpy(*buf, d, n);
    *len = n;
    vgpu_qring_pop(&s->qp.sub, n);
    s->via_qp = true;
    return 0;
}

/*
 * The next request, from the queue pair or the socket, whichever has one:
 * a spin of up to spin_ns after the last request, then sleeps (qp_wait).
 * The socket is looked at between.  A frame is copied out of the ring
 * before anything reads it.
 */
static inline int qp_receive(struct vgpu_session *s, uint8_t **buf, size_t *len,
                             const struct qp_kind *k)
{
    uint64_t spin_until = vgpu_mono_ns() + k->spin_ns;

    s->via_qp = false;
    for (unsigned i = 0;; i++) {
        const uint8_t *d;
        uint32_t n, kind, now;
        /* spinning looks at the next header; the client's index now and then */
        int rc = vgpu_qring_ready(&s->qp.sub) || (i % 64 == 0 && vgpu_qring_pending(&s->qp.sub)) ?
                 vgpu_qring_peek(&s->qp.sub, &d, &n, &kind) : -EAGAIN;

        if (rc == 0)
            return take_frame(s, d, n, kind, buf, len);
        if (rc != -EAGAIN)
            return -EPROTO;
        /*
         * The client counts the frames it sends on the socket instead: while
         * spinning, the socket is looked at only when that count moved (no
         * system call per request); sleeping looks at it anyway.
         */
        now = __atomic_load_n(&s->qp.hdr->socket_frames, __ATOMIC_ACQUIRE);
        if (now != s->socket_seen || s->socket_look || (k->look_every_64 && i % 64 == 0)) {
            s->socket_seen = now;
            s->socket_look = false;
            if (vgpu_carrier_sock_ready(s)) {
                s->socket_look = true;      /* there may be more than one */
                return vgpu_fd_read_frame_fd(s->fd, NULL, buf, len, &s->pending_fd);
            }
        }
        if (i % 64 || vgpu_mono_ns() < spin_until) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            continue;
        }
        qp_wait(s, s->work_n ? 1000000u : 100000000u, k);
        s->socket_look = true;
        if (s->work_n)
            vgpu_work_poll(s);
    }
}

/*
 * A reply through the completion ring.  It waits for room while the client
 * takes earlier replies (it takes them in order, and never waits for room
 * of its own with a reply owed).  A reply that can never fit the ring gets
 * the kind's too_large record, and what the kind does with it.
 */
static inline int qp_reply(struct vgpu_session *s, const struct vgpu_frame_header *h,
                           Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov,
                           const struct qp_kind *k)
{
    struct timespec nap = { 0, 5000 };
    struct vgpu_frame_header hc = *h;
    size_t len = 0, written;
    uint8_t *w;
    int err, rc;

    if (!s->via_qp)
        return vgpu_carrier_sock_reply(s, h, env, iov, niov);
    /* in the ring, the envelope goes in its compact form */
    hc.flags |= VGPU_FRAME_F_COMPACT;
    rc = vgpu_frame_head_size_flags(env, hc.flags, &len);
    if (rc)
        return -EINVAL;
    for (int i = 0; i < niov; i++)
        len += iov[i].iov_len;
    while (!(w = vgpu_qring_reserve(&s->qp.comp, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len, &err))) {
        if (err == -E2BIG)
            break;
        if (err)
            return -EPROTO;
        if (!vgpu_carrier_sock_alive(s))
            return -EPIPE;
        nanosleep(&nap, NULL);
    }
    if (!w) {
        /* published before the socket write: the client must be reading it meanwhile */
        while (!vgpu_qring_reserve(&s->qp.comp, 0, &err)) {
            if (err || !vgpu_carrier_sock_alive(s))
                return -EPIPE;
            nanosleep(&nap, NULL);
        }
        vgpu_qring_publish(&s->qp.comp, 0, k->too_large_kind);
        qp_wake(s, k);
        return k->too_large(s, h, env, iov, niov, len);
    }
    rc = vgpu_frame_gather(&hc, env, iov, niov, w, len, &written);
    if (rc)
        return -EINVAL;
    vgpu_qring_publish(&s->qp.comp, (uint32_t)written, VGPU_QP_FRAME);
    qp_wake(s, k);
    return 0;
}

/* ---- the two tables ---- */

static int memfd_receive(struct vgpu_session *s, uint8_t **buf, size_t *len)
{
    return qp_receive(s, buf, len, &memfd_kind);
}

static int memfd_reply(struct vgpu_session *s, const struct vgpu_frame_header *h,
                       Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov)
{
    return qp_reply(s, h, env, iov, niov, &memfd_kind);
}

static int memfd_wait(struct vgpu_session *s, uint64_t timeout_ns)
{
    return qp_wait(s, timeout_ns, &memfd_kind);
}

static int bar_receive(struct vgpu_session *s, uint8_t **buf, size_t *len)
{
    return qp_receive(s, buf, len, &bar_kind);
}

static int bar_reply(struct vgpu_session *s, const struct vgpu_frame_header *h,
                     Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov)
{
    return qp_reply(s, h, env, iov, niov, &bar_kind);
}

static int bar_wait(struct vgpu_session *s, uint64_t timeout_ns)
{
    return qp_wait(s, timeout_ns, &bar_kind);
}

const struct vgpu_carrier_ops vgpu_carrier_qp_memfd = {
    .name = "memfd queue pair",
    .receive = memfd_receive,
    .reply = memfd_reply,
    .wait = memfd_wait,
    .alive = vgpu_carrier_sock_alive,
};

const struct vgpu_carrier_ops vgpu_carrier_qp_bar = {
    .name = "shared-BAR queue pair",
    .receive = bar_receive,
    .reply = bar_reply,
    .wait = bar_wait,
    .alive = vgpu_carrier_sock_alive,
};
