/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The call queue.  Calls marked async (launches, async copies to the
 * device, memsets, event records, stream waits) are not sent on their own:
 * they wait in a queue and go in one batch with the next call that needs
 * an answer, when the queue is full, or at the latest VGPU_BATCH_US
 * (default 200) microseconds after the first of them (the flusher thread).
 * Their statuses come back with that batch, or later when it flew
 * (flight.c); a failure becomes the last error of the thread that made the
 * call (errors.c): asynchronous errors surface where CUDA reports them.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_internal.h"
#include "vgpu/futex.h"

int vgpu_queue_init(struct vgpu_queue *q)
{
    q->n = 0;
    q->bytes = 0;
    q->since_ns = 0;
    __atomic_store_n(&q->waiting_since, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&q->flusher_idle, 0, __ATOMIC_RELAXED);
    q->flusher_started = false;
    q->batch_ns = 200000;
    q->eager_calls = VGPU_QUEUE_EAGER_CALLS;
    return 0;
}

void vgpu_queue_clear(struct vgpu_queue *q)
{
    for (int i = 0; i < q->n; i++) {
        free(q->calls[i].args);
        for (int j = 0; j < q->calls[i].nseg; j++)
            free(q->calls[i].seg[j]);
    }
    q->n = 0;
    q->bytes = 0;
    __atomic_store_n(&q->waiting_since, 0, __ATOMIC_RELAXED);
}

/* A reply_buf with nothing in it yet (not zeroed whole: its scratch is 1 KiB). */
struct vgpu_reply_buf *vgpu_reply_buf_new(void)
{
    struct vgpu_reply_buf *rb = malloc(sizeof(*rb));

    if (rb) {
        memset(&rb->f, 0, sizeof(rb->f));
        rb->buf = NULL;
        rb->f.scratch = rb->scratch;
        rb->f.scratch_size = sizeof(rb->scratch);
    }
    return rb;
}

void vgpu_reply_buf_free(struct vgpu_reply_buf *rb)
{
    if (rb) {
        vgpu_frame_release(&rb->f);
        free(rb->buf);
        free(rb);
    }
}

/*
 * One batch on the wire: the queued calls, then req if any.  A few calls
 * (the common case) build it on the stack.
 */
enum { FEW = 4 };

struct batch {
    Vgpu__Wire__Envelope env;
    Vgpu__Wire__CallBatch calls_msg;
    int ncalls, nsegs;
    bool heap;
    Vgpu__Wire__Call *calls, **callp;
    Vgpu__Wire__Segment *segs, **segp;
    struct iovec *iov;
    Vgpu__Wire__Call calls1[FEW], *callp1[FEW];
    Vgpu__Wire__Segment segs1[FEW * VGPU_CALL_MAX_SEG], *segp1[FEW * VGPU_CALL_MAX_SEG];
    struct iovec iov1[FEW * VGPU_CALL_MAX_SEG];
};

static void batch_free(struct batch *b)
{
    if (b->heap) {
        free(b->calls);
        free(b->callp);
        free(b->segs);
        free(b->segp);
        free(b->iov);
    }
}

/* Call i of the batch: queued call i, or req after them. */
static void batch_add(struct batch *b, int i, const struct vgpu_queued *q,
                      const struct vgpu_call_req *req, uint64_t *off)
{
    int n = req ? req->nseg : q->nseg;
    Vgpu__Wire__Call *call = &b->calls[i];

    vgpu__wire__call__init(call);
    call->call_id = req ? req->call_id : q->call_id;
    call->args.data = (uint8_t *)(req ? req->args : q->args);
    call->args.len = req ? req->args_len : q->args_len;
    call->segments = &b->segp[b->nsegs];
    call->n_segments = (size_t)n;
    for (int j = 0; j < n; j++) {
        size_t l = req ? req->seg[j].len : q->seg_len[j];
        int k = b->nsegs++;

        vgpu__wire__segment__init(&b->segs[k]);
        b->segs[k].offset = *off;
        b->segs[k].length = l;
        b->segp[k] = &b->segs[k];
        b->iov[k].iov_base = req ? (void *)req->seg[j].data : q->seg[j];
        b->iov[k].iov_len = l;
        *off += l;
    }
    b->callp[i] = call;
}

/* The queue and then req (or NULL) as one envelope: 0 or -ENOMEM. */
static int batch_build(struct vgpu_client *c, const struct vgpu_call_req *req, struct batch *b)
{
    const struct vgpu_queue *q = &c->queue;
    size_t nseg;
    uint64_t off = 0;

    b->ncalls = q->n + (req ? 1 : 0);
    b->nsegs = 0;
    b->heap = b->ncalls > FEW;
    nseg = (size_t)b->ncalls * VGPU_CALL_MAX_SEG;
    b->calls = b->heap ? calloc((size_t)b->ncalls, sizeof(*b->calls)) : b->calls1;
    b->callp = b->heap ? calloc((size_t)b->ncalls, sizeof(*b->callp)) : b->callp1;
    b->segs = b->heap ? calloc(nseg, sizeof(*b->segs)) : b->segs1;
    b->segp = b->heap ? calloc(nseg, sizeof(*b->segp)) : b->segp1;
    b->iov = b->heap ? calloc(nseg, sizeof(*b->iov)) : b->iov1;
    if (!b->calls || !b->callp || !b->segs || !b->segp || !b->iov)
        return -ENOMEM;
    for (int i = 0; i < q->n; i++)
        batch_add(b, i, &q->calls[i], NULL, &off);
    if (req)
        batch_add(b, q->n, NULL, req, &off);
    vgpu__wire__call_batch__init(&b->calls_msg);
    b->calls_msg.n_calls = (size_t)b->ncalls;
    b->calls_msg.calls = b->callp;
    b->calls_msg.device = q->n ? q->device : vgpu_errors_device();
    b->calls_msg.context = q->n ? q->context : vgpu_errors_context();
    vgpu__wire__envelope__init(&b->env);
    b->env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    b->env.calls = &b->calls_msg;
    return 0;
}

/* The queued calls' answers in f: their failures are owed; the queue empties. */
static void answer_queued(struct vgpu_client *c, const struct vgpu_frame *f)
{
    struct vgpu_queue *q = &c->queue;

    for (int i = 0; i < q->n; i++) {
        const Vgpu__Wire__Result *res = f->env->results->results[i];

        if (res->call_id != q->calls[i].call_id)
            res = NULL;
        if (!res || res->status != 0) {
            vgpu_shim_log(VGPU_LOG_DEBUG, "%s (queued) -> %d", q->calls[i].name,
                          res ? res->status : -EPROTO);
            if (!q->calls[i].orphan)
                vgpu_owe_error_locked(c, q->calls[i].thread, res ? res->status : -EPROTO);
        }
    }
    vgpu_queue_clear(q);
}

/* req's answer, the last of f: its status, its outputs copied out, or -EPROTO. */
static int answer_req(const struct vgpu_call_req *req, const struct vgpu_frame *f)
{
    const Vgpu__Wire__Result *res = f->env->results->results[f->env->results->n_results - 1];
    const char *name = req->name;

    if (res->call_id != req->call_id) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply does not answer it", name);
        return -EPROTO;
    }
    if (res->status != 0)
        return res->status;
    if (res->n_segments != (size_t)req->nout) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server returned %zu data segments, expected %d",
                      name, res->n_segments, req->nout);
        return -EPROTO;
    }
    for (int i = 0; i < req->nout; i++) {
        if (res->segments[i]->length != req->out[i].len) {
            vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server returned %llu bytes, expected %zu",
                          name, (unsigned long long)res->segments[i]->length, req->out[i].len);
            return -EPROTO;
        }
        if (req->out[i].len)
            memcpy(req->out[i].dst, vgpu_frame_segment(f, res->segments[i]), req->out[i].len);
    }
    return 0;
}

/* A round trip that failed (rc): what the call returns; the queue is dropped. */
static int roundtrip_failed(struct vgpu_client *c, const char *name, int rc)
{
    vgpu_queue_clear(&c->queue);
    if (rc == -EMSGSIZE) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply was too large for the shared "
                      "BAR's ring and had no other way back", name);
        return -EMSGSIZE;
    }
    if (rc == -E2BIG) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the call is too large for the link to vgpu-server", name);
        return -E2BIG;
    }
    return -ENOTCONN;
}

/*
 * Sends b and waits for its answer; sets *retry_alone when the queue and
 * req together are too big and must go one after the other.  The status
 * as vgpu_client_invoke() returns it.
 */
static int exchange_locked(struct vgpu_client *c, struct batch *b, struct vgpu_call_req *req,
                           struct vgpu_call_rep *rep, bool *retry_alone)
{
    const char *name = req ? req->name : "a batch of asynchronous calls";
    struct vgpu_reply_buf *rb = vgpu_reply_buf_new();
    size_t len, reply_hint = 256;
    uint8_t *buf = NULL;
    int rc;

    if (!rb)
        return -ENOMEM;
    for (int i = 0; req && i < req->nout; i++)
        reply_hint += req->out[i].len;
    rc = vgpu_conn_roundtrip_locked(c, &b->env, b->iov, b->nsegs, reply_hint, &buf, &len, &rb->f);
    if (rc == -E2BIG && req && c->queue.n) {
        *retry_alone = true;
        free(rb);
        return 0;
    }
    if (rc) {
        free(rb);
        return roundtrip_failed(c, name, rc);
    }
    rb->buf = buf;
    if (rb->f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_RESULTS ||
        rb->f.env->results->n_results != (size_t)b->ncalls) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply does not answer it", name);
        vgpu_queue_clear(&c->queue);
        vgpu_reply_buf_free(rb);
        return -EPROTO;
    }
    if (rb->f.env->results->device_output)
        c->devout_pending = true;
    answer_queued(c, &rb->f);
    rc = req ? answer_req(req, &rb->f) : 0;
    if (!req || rc < 0) {
        vgpu_reply_buf_free(rb);   /* nothing to hand back */
        return rc;
    }
    /* keep frame and buffer: rep->ret points into them */
    rep->ret = rb->f.env->results->results[b->ncalls - 1]->ret.data;
    rep->ret_len = rb->f.env->results->results[b->ncalls - 1]->ret.len;
    rep->priv = rb;
    return rc;
}

/*
 * Sends the queued calls and then req (NULL: the queue alone) in one batch
 * and waits for the answer, or, for the queue alone through the queue
 * pair, lets it fly.  Returns req's status (0 without req) or -errno, as
 * vgpu_client_invoke().  Connection up.
 */
int vgpu_queue_invoke_locked(struct vgpu_client *c, struct vgpu_call_req *req,
                             struct vgpu_call_rep *rep)
{
    struct batch b;
    bool retry_alone = false;
    int rc = batch_build(c, req, &b);

    if (rc == 0 && !req) {
        /* queued calls alone: through the queue pair they fly, and land later */
        rc = vgpu_flight_fly_locked(c, &b.env, b.iov, b.nsegs);
        if (rc != 0 && rc != -EAGAIN) {
            vgpu_queue_clear(&c->queue);
            rc = -ENOTCONN;
        }
        if (rc != -EAGAIN) {
            batch_free(&b);
            return rc;
        }
    }
    if (rc == 0 || rc == -EAGAIN)
        rc = exchange_locked(c, &b, req, rep, &retry_alone);
    batch_free(&b);
    /* what kernels printed lands before the call that flushed it returns, as natively */
    if (c->devout_pending && c->conn.state == VGPU_CONN_UP)
        vgpu_ctl_device_output_locked(c);
    if (retry_alone) {
        /* together too big for the link: the queue alone first, then the call alone */
        vgpu_queue_invoke_locked(c, NULL, NULL);
        return c->conn.state == VGPU_CONN_UP ? vgpu_queue_invoke_locked(c, req, rep) : -ENOTCONN;
    }
    return rc;
}

/* Sends whatever is queued (it may still be in flight after). */
void vgpu_queue_flush_locked(struct vgpu_client *c)
{
    if (c->queue.n && c->conn.state == VGPU_CONN_UP)
        vgpu_queue_invoke_locked(c, NULL, NULL);
}

/* Sends whatever is queued and waits until every reply is in. */
void vgpu_queue_settle_locked(struct vgpu_client *c)
{
    vgpu_queue_flush_locked(c);
    if (c->conn.state == VGPU_CONN_UP)
        vgpu_flight_land_all_locked(c);
}

/*
 * The flusher sends calls that waited batch_ns, so a program that stops
 * calling still runs them.  It looks without the client's lock, and takes
 * it only to send: a program that queues and sends batches all the time
 * neither contends with it nor makes a system call to wake it.  While
 * calls wait it sleeps until they are due; otherwise it looks every
 * batch_ns, and after FLUSHER_IDLE_NS without a batch it sleeps until the
 * next batch wakes it (the futex on flusher_idle).
 */
#define FLUSHER_IDLE_NS 20000000u

static void nap_until(uint64_t due)
{
    struct timespec ts = { .tv_sec = (time_t)(due / 1000000000u), .tv_nsec = (long)(due % 1000000000u) };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void *flusher(void *arg)
{
    struct vgpu_client *c = arg;
    struct vgpu_queue *q = &c->queue;

    for (;;) {
        uint64_t since = __atomic_load_n(&q->waiting_since, __ATOMIC_SEQ_CST), now = vgpu_mono_ns();
        /* the last batch begun, sent by now or not */
        uint64_t last_batch = __atomic_load_n(&q->since_ns, __ATOMIC_RELAXED);

        if (since) {
            if (now < since + q->batch_ns) {
                nap_until(since + q->batch_ns);
                continue;
            }
            pthread_mutex_lock(&c->lock);
            if (q->n && now >= q->since_ns + q->batch_ns) {
                if (c->conn.state == VGPU_CONN_UP)
                    vgpu_queue_flush_locked(c);
                else
                    vgpu_queue_clear(q);    /* nowhere to send them: the next call reports it */
            }
            pthread_mutex_unlock(&c->lock);
            continue;
        }
        if (now - last_batch < FLUSHER_IDLE_NS) {
            /*
             * A batch begun meanwhile is due no later; a VGPU_BATCH_US under
             * 100 us is looked at every 100 us here (not a core kept busy).
             */
            nap_until(now + (q->batch_ns > 100000 ? q->batch_ns : 100000));
            continue;
        }
        /* Dekker with vgpu_queue_enqueue_locked: one of us sees the other's store */
        __atomic_store_n(&q->flusher_idle, 1, __ATOMIC_SEQ_CST);
        while (!__atomic_load_n(&q->waiting_since, __ATOMIC_SEQ_CST) &&
               __atomic_load_n(&q->flusher_idle, __ATOMIC_SEQ_CST))
            vgpu_futex_wait(&q->flusher_idle, 1, 1000000000u);
        __atomic_store_n(&q->flusher_idle, 0, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

static void start_flusher(struct vgpu_client *c)
{
    pthread_attr_t a;
    pthread_t t;
    const char *v = getenv("VGPU_BATCH_US");
    sigset_t all, old;

    if (v && *v)
        c->queue.batch_ns = strtoull(v, NULL, 10) * 1000;
    v = getenv("VGPU_EAGER_CALLS");
    if (v && *v && strtoul(v, NULL, 10) >= 1 && strtoul(v, NULL, 10) <= VGPU_QUEUE_MAX_CALLS)
        c->queue.eager_calls = (int)strtoul(v, NULL, 10);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    /* the program's signals are not ours to take */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&t, &a, flusher, c) == 0)
        c->queue.flusher_started = true;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
}

/* Owned copies of req's arguments and data in q: 0 or -ENOMEM. */
static int queued_copy(struct vgpu_queued *q, const struct vgpu_call_req *req)
{
    memset(q, 0, sizeof(*q));
    q->args = malloc(req->args_len ? req->args_len : 1);
    if (!q->args)
        return -ENOMEM;
    memcpy(q->args, req->args, req->args_len);
    for (int i = 0; i < req->nseg; i++) {
        q->seg[i] = malloc(req->seg[i].len ? req->seg[i].len : 1);
        if (!q->seg[i]) {
            for (int j = 0; j < i; j++)
                free(q->seg[j]);
            free(q->args);
            return -ENOMEM;
        }
        memcpy(q->seg[i], req->seg[i].data, req->seg[i].len);
        q->seg_len[i] = req->seg[i].len;
    }
    q->nseg = req->nseg;
    q->call_id = req->call_id;
    q->name = req->name;
    q->args_len = req->args_len;
    q->thread = pthread_self();
    return 0;
}

/*
 * Queues an async call (copies of its arguments and data).  Returns 0, or
 * -EAGAIN when it must be sent now instead.  Connection up.
 */
int vgpu_queue_enqueue_locked(struct vgpu_client *c, const struct vgpu_call_req *req)
{
    struct vgpu_queue *q = &c->queue;
    struct vgpu_transport *t = &c->conn.transport;
    size_t bytes = req->args_len;
    int device = vgpu_errors_device();
    uint64_t ctx = vgpu_errors_context();

    for (int i = 0; i < req->nseg; i++)
        bytes += req->seg[i].len;
    if (bytes > VGPU_QUEUE_MAX_SEG_BYTES || q->batch_ns == 0)
        return -EAGAIN;
    if (q->n && (q->n == VGPU_QUEUE_MAX_CALLS || q->bytes + bytes > VGPU_QUEUE_MAX_BYTES ||
                 q->device != device || q->context != ctx))
        vgpu_queue_flush_locked(c);
    if (c->conn.state != VGPU_CONN_UP)
        return -EAGAIN;         /* the flush lost the connection: the call fails now */
    if (!q->flusher_started)
        start_flusher(c);
    if (!q->flusher_started || queued_copy(&q->calls[q->n], req))
        return -EAGAIN;
    /* the thread's exit is noticed (errors.c) once it has queued something */
    vgpu_owed_watch_thread(c);
    if (!q->n) {
        uint64_t now = vgpu_mono_ns();

        q->device = device;
        q->context = ctx;
        __atomic_store_n(&q->since_ns, now, __ATOMIC_RELAXED);
        __atomic_store_n(&q->waiting_since, now, __ATOMIC_SEQ_CST);
        /* cleared before the wake: a flusher that has not slept yet then does not */
        if (__atomic_exchange_n(&q->flusher_idle, 0, __ATOMIC_SEQ_CST))
            vgpu_futex_wake(&q->flusher_idle);
    }
    q->n++;
    q->bytes += bytes;
    /*
     * Through the queue pair, a server that has taken everything sent so
     * far gets the queue at once (VGPU_EAGER_CALLS, default 1), not at the
     * next call that waits: the GPU starts on a launch while the program
     * goes on, as natively, instead of after the program's next
     * synchronous call.  A server still busy leaves the calls to gather,
     * so a program queueing faster than the server launches sends them in
     * batches (docs/performance.md, 2026-12-05 H100 sweep).
     */
    if (q->n >= q->eager_calls && t->qp_mem &&
        __atomic_load_n(t->qp.sub.head, __ATOMIC_ACQUIRE) == t->qp.sub.pos)
        vgpu_queue_flush_locked(c);
    return 0;
}
