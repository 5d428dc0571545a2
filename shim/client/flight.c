/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Requests in flight.  A batch of queued asynchronous calls that goes
 * through the queue pair is not waited for: it is a flight, settled when
 * its reply comes, which is at the latest when the next call that needs an
 * answer waits for its own (replies come in order).  Only queue-pair
 * requests fly; a frame on the frame path waits until nothing is in
 * flight, so the server sees the requests in the order they were made.  At
 * most VGPU_FLIGHTS_MAX fly at once, in a ring oldest first.
 */
#include <errno.h>
#include <stdlib.h>

#include "client_internal.h"

void vgpu_flights_clear(struct vgpu_flights *fl)
{
    for (int i = 0; i < fl->n; i++)
        free(fl->ring[(fl->first + i) % VGPU_FLIGHTS_MAX].calls);
    fl->first = fl->n = 0;
}

static void flight_failed(struct vgpu_client *c, const struct vgpu_flight_call *fc, int st)
{
    vgpu_shim_log(VGPU_LOG_DEBUG, "%s (queued) -> %d", fc->name, st);
    if (!fc->orphan)
        vgpu_owe_error_locked(c, fc->thread, st);
}

/* Does rb answer fl: its failures only, each at its place in the batch, in order? */
static bool answers(const Vgpu__Wire__ResultBatch *rb, const struct vgpu_flight *fl)
{
    if (!rb || !rb->failures_only || rb->n_results > (size_t)fl->n)
        return false;
    for (size_t i = 0; i < rb->n_results; i++)
        if (rb->results[i]->index >= (uint32_t)fl->n ||
            (i > 0 && rb->results[i]->index <= rb->results[i - 1]->index) ||
            rb->results[i]->call_id != fl->calls[rb->results[i]->index].call_id ||
            rb->results[i]->status == 0)
            return false;
    return true;
}

void vgpu_flight_settle_locked(struct vgpu_client *c, const struct vgpu_frame *f)
{
    struct vgpu_flights *fls = &c->flights;
    struct vgpu_flight *fl = &fls->ring[fls->first];
    const Vgpu__Wire__ResultBatch *rb = f && f->env->body_case == VGPU__WIRE__ENVELOPE__BODY_RESULTS ?
                                        f->env->results : NULL;

    if (rb && rb->device_output)
        c->devout_pending = true;
    if (!answers(rb, fl)) {
        vgpu_shim_log(VGPU_LOG_ERROR, "a batch of asynchronous calls: the server's reply does "
                      "not answer it");
        for (int i = 0; i < fl->n; i++)
            flight_failed(c, &fl->calls[i], -EPROTO);
    } else {
        for (size_t i = 0; i < rb->n_results; i++)
            flight_failed(c, &fl->calls[rb->results[i]->index], rb->results[i]->status);
    }
    free(fl->calls);
    fl->calls = NULL;
    fls->first = (fls->first + 1) % VGPU_FLIGHTS_MAX;
    fls->n--;
}

/* Waits for the oldest flight's reply and settles it.  0, or -errno (connection gone). */
int vgpu_flight_land_one_locked(struct vgpu_client *c)
{
    struct vgpu_frame f = { .scratch = c->flights.scratch, .scratch_size = sizeof(c->flights.scratch) };
    uint8_t *buf = NULL;
    size_t len;
    int rc = vgpu_conn_take_reply_locked(c, true, &buf, &len, &f);

    if (rc == -EMSGSIZE) {
        vgpu_flight_settle_locked(c, NULL);
        return 0;
    }
    if (rc)
        return rc;
    if (f.hdr.seq != c->flights.ring[c->flights.first].seq) {
        vgpu_conn_drop_locked(c, "reply out of sequence");
        rc = -EPROTO;
    } else {
        vgpu_flight_settle_locked(c, &f);
    }
    vgpu_frame_release(&f);
    free(buf);
    return rc;
}

int vgpu_flight_land_all_locked(struct vgpu_client *c)
{
    while (c->flights.n)
        if (vgpu_flight_land_one_locked(c))
            return -ENOTCONN;
    return 0;
}

/*
 * Sends the queued calls as a flight through the queue pair, without
 * waiting: 0, -EAGAIN when they cannot fly (no queue pair, too large: the
 * caller sends them the usual way), or -ENOTCONN.
 */
int vgpu_flight_fly_locked(struct vgpu_client *c, Vgpu__Wire__Envelope *env,
                           const struct iovec *payload, int npayload)
{
    struct vgpu_flights *fls = &c->flights;
    struct vgpu_queue *q = &c->queue;
    struct vgpu_flight *fl;
    bool qp;
    int rc;

    if (!c->conn.transport.qp_mem)
        return -EAGAIN;
    if (fls->n == VGPU_FLIGHTS_MAX && vgpu_flight_land_one_locked(c))
        return -ENOTCONN;
    fl = &fls->ring[(fls->first + fls->n) % VGPU_FLIGHTS_MAX];
    fl->calls = malloc((size_t)q->n * sizeof(*fl->calls));
    if (!fl->calls)
        return -EAGAIN;
    env->calls->flight = true;
    /* only through the queue pair: send says -EAGAIN when it cannot go there */
    rc = vgpu_conn_send_locked(c, env, payload, npayload, 0, true, &qp, &fl->seq);
    env->calls->flight = false;
    if (rc) {
        free(fl->calls);
        fl->calls = NULL;
        return rc == -E2BIG || rc == -EAGAIN ? -EAGAIN : -ENOTCONN;
    }
    fl->n = q->n;
    for (int i = 0; i < q->n; i++)
        fl->calls[i] = (struct vgpu_flight_call){ q->calls[i].call_id, q->calls[i].name,
                                                  q->calls[i].thread, q->calls[i].orphan };
    fls->n++;
    vgpu_shim_log(VGPU_LOG_DEBUG, "a batch of %d calls in flight (%d)", q->n, fls->n);
    vgpu_queue_clear(q);
    return 0;
}
