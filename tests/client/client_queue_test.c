/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's call queue (shim/client/queue.c) over a fake transport:
 * which calls wait, what goes out in one batch, whose last error a queued
 * failure becomes, and what a reply that does not answer does.  No server:
 * the test builds its own struct vgpu_client and answers every batch.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "client_internal.h"
#include "manual.pb-c.h"
#include "vgpu/agree.h"

/* What the fake server saw last, and how it answers. */
static struct {
    int frames;                 /* batches sent */
    int ncalls;                 /* calls in the last batch */
    uint32_t ids[VGPU_QUEUE_MAX_CALLS + 1];
    uint64_t seq;
    int fail_index;             /* this call of a batch fails with fail_status (-1: none) */
    int fail_status;
    int e2big_over;             /* send answers -E2BIG to batches of more calls than this */
    bool short_reply;           /* answer one result fewer than asked */
} srv;

static int fake_send(struct vgpu_transport *t, const struct vgpu_frame_header *h,
                     const Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload)
{
    (void)t, (void)payload, (void)npayload;
    assert_int_equal(env->body_case, VGPU__WIRE__ENVELOPE__BODY_CALLS);
    if (srv.e2big_over && (int)env->calls->n_calls > srv.e2big_over)
        return -E2BIG;
    srv.frames++;
    srv.ncalls = (int)env->calls->n_calls;
    for (int i = 0; i < srv.ncalls; i++)
        srv.ids[i] = env->calls->calls[i]->call_id;
    srv.seq = h->seq;
    return 0;
}

static int fake_recv(struct vgpu_transport *t, uint8_t **buf, size_t *len)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__ResultBatch rb = VGPU__WIRE__RESULT_BATCH__INIT;
    Vgpu__Wire__Result res[VGPU_QUEUE_MAX_CALLS + 1], *resp[VGPU_QUEUE_MAX_CALLS + 1];
    struct vgpu_frame_header h = { .seq = srv.seq, .flags = VGPU_FRAME_F_REPLY };
    struct vgpu_wire_limits lim = VGPU_WIRE_LIMITS_DEFAULT;

    (void)t;
    for (int i = 0; i < srv.ncalls; i++) {
        vgpu__wire__result__init(&res[i]);
        res[i].call_id = srv.ids[i];
        res[i].status = i == srv.fail_index ? srv.fail_status : 0;
        resp[i] = &res[i];
    }
    rb.results = resp;
    rb.n_results = (size_t)srv.ncalls - (srv.short_reply ? 1 : 0);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_RESULTS;
    env.results = &rb;
    return vgpu_frame_encode(&h, &env, NULL, 0, &lim, buf, len) ? -EPROTO : 0;
}

static void fake_close(struct vgpu_transport *t)
{
    (void)t;
}

static const struct vgpu_transport_ops fake_ops = {
    .name = "fake", .send = fake_send, .recv = fake_recv, .close = fake_close,
};

static int setup(void **state)
{
    struct vgpu_client *c = malloc(sizeof(*c));

    assert_non_null(c);
    assert_int_equal(vgpu_client_init(c), 0);
    c->conn.transport.ops = &fake_ops;
    c->conn.state = VGPU_CONN_UP;
    c->conn.server_addr = "fake";
    c->queue.flusher_started = true;        /* no flusher thread: the test flushes */
    memset(&srv, 0, sizeof(srv));
    srv.fail_index = -1;
    vgpu_errors_last(true);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    vgpu_client_destroy(*state);
    free(*state);
    return 0;
}

static struct vgpu_call_req call(uint32_t id, uint32_t flags)
{
    static const uint8_t args[4] = { 1, 2, 3, 4 };

    return (struct vgpu_call_req){ .call_id = id, .flags = flags, .name = "test call",
                                   .args = args, .args_len = sizeof(args) };
}

/* Async calls wait; the next call that needs an answer takes them along, in order. */
static void async_calls_ride_with_the_next(void **state)
{
    struct vgpu_client *c = *state;
    struct vgpu_call_req a = call(7, VGPU_FN_ASYNC), b = call(8, VGPU_FN_ASYNC), s = call(9, 0);
    struct vgpu_call_rep rep;

    assert_int_equal(vgpu_client_invoke(c, &a, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(vgpu_client_invoke(c, &b, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(srv.frames, 0);
    assert_int_equal(c->queue.n, 2);
    assert_int_equal(vgpu_client_invoke(c, &s, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(srv.frames, 1);
    assert_int_equal(srv.ncalls, 3);
    assert_int_equal(srv.ids[0], 7);
    assert_int_equal(srv.ids[1], 8);
    assert_int_equal(srv.ids[2], 9);
    assert_int_equal(c->queue.n, 0);
}

/* A copy to the host on stream, whose bytes came back: the server waited for the stream. */
static int drain(struct vgpu_client *c, uint64_t stream)
{
    static uint8_t args[64];
    Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;
    struct vgpu_call_req r = call(20, VGPU_REQ_DRAINS);
    struct vgpu_call_rep rep;
    int st;

    a.dir = VGPU__MANUAL__DIRECTION__DIR_D2H;
    a.async = true;
    a.stream = stream;
    r.args = args;
    r.args_len = vgpu__manual__copy_args__pack(&a, args);
    st = vgpu_client_invoke(c, &r, &rep);
    vgpu_client_rep_release(c, &rep);
    return st;
}

/* cuStreamSynchronize(stream) as the generated function packs it: field 1, absent for 0. */
static int sync_stream(struct vgpu_client *c, const char *name, uint64_t stream)
{
    uint8_t args[11];
    size_t n = 0;
    struct vgpu_call_req r = call(21, 0);
    struct vgpu_call_rep rep;
    int st;

    if (stream) {
        args[n++] = 0x08;
        for (; stream >= 0x80; stream >>= 7)
            args[n++] = (uint8_t)(stream | 0x80);
        args[n++] = (uint8_t)stream;
    }
    r.name = name;
    r.args = args;
    r.args_len = n;
    st = vgpu_client_invoke(c, &r, &rep);
    vgpu_client_rep_release(c, &rep);
    return st;
}

/*
 * After a copy to the host whose bytes came back, that stream's
 * synchronize has nothing to wait for and is answered here (both APIs'),
 * until any other call goes to the server, queued ones included; another
 * stream, device or context, a failed copy, or the connection lost: sent.
 */
static void drained_stream_synced_here(void **state)
{
    struct vgpu_client *c = *state;
    struct vgpu_call_req a = call(7, VGPU_FN_ASYNC);
    struct vgpu_call_rep rep;

    assert_int_equal(drain(c, 0x123456789abcull), 0);
    assert_int_equal(srv.frames, 1);
    assert_int_equal(sync_stream(c, "cuStreamSynchronize", 0x123456789abcull), 0);
    assert_int_equal(sync_stream(c, "cuStreamSynchronize", 0x123456789abcull), 0);
    assert_int_equal(srv.frames, 1);
    assert_int_equal(sync_stream(c, "cuStreamSynchronize_ptsz", 0x123456789abcull), 0);
    assert_int_equal(srv.frames, 2);            /* another call: per-thread streams differ */
    assert_int_equal(sync_stream(c, "cuStreamSynchronize", 0x123456789abcull), 0);
    assert_int_equal(srv.frames, 3);            /* a call went to the server since */

    /* the legacy stream (0), through the runtime's name */
    assert_int_equal(drain(c, 0), 0);
    assert_int_equal(sync_stream(c, "cudaStreamSynchronize", 0), 0);
    assert_int_equal(srv.frames, 4);
    assert_int_equal(sync_stream(c, "cudaStreamSynchronize", 5), 0);
    assert_int_equal(srv.frames, 5);            /* another stream */

    /* work queued after the copy: the synchronize goes, and takes it along */
    assert_int_equal(drain(c, 9), 0);
    assert_int_equal(vgpu_client_invoke(c, &a, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(sync_stream(c, "cuStreamSynchronize", 9), 0);
    assert_int_equal(srv.frames, 7);
    assert_int_equal(srv.ncalls, 2);

    /* another device of the thread */
    assert_int_equal(drain(c, 9), 0);
    vgpu_errors_set_device(1);
    assert_int_equal(sync_stream(c, "cuStreamSynchronize", 9), 0);
    vgpu_errors_set_device(0);
    assert_int_equal(srv.frames, 9);

    /* another context current on the thread (its legacy stream is another stream) */
    assert_int_equal(drain(c, 0), 0);
    vgpu_errors_set_context(0x7000);
    assert_int_equal(sync_stream(c, "cuStreamSynchronize", 0), 0);
    vgpu_errors_set_context(0);
    assert_int_equal(srv.frames, 11);

    /* a copy that failed waited for nothing known */
    srv.fail_index = 0;
    srv.fail_status = 700;
    assert_int_equal(drain(c, 9), 700);
    srv.fail_index = -1;
    vgpu_errors_last(true);
    assert_int_equal(sync_stream(c, "cuStreamSynchronize", 9), 0);
    assert_int_equal(srv.frames, 13);

    /* the connection lost: the synchronize says so, as every call does */
    assert_int_equal(drain(c, 9), 0);
    c->conn.state = VGPU_CONN_FAILED;
    assert_int_not_equal(sync_stream(c, "cuStreamSynchronize", 9), 0);
    c->conn.state = VGPU_CONN_UP;
    vgpu_errors_last(true);
}

/* A queued call's failure becomes its thread's last error; the later call still succeeds. */
static void queued_failure_is_the_last_error(void **state)
{
    struct vgpu_client *c = *state;
    struct vgpu_call_req a = call(7, VGPU_FN_ASYNC), s = call(9, 0);
    struct vgpu_call_rep rep;

    srv.fail_index = 0;
    srv.fail_status = 98;
    assert_int_equal(vgpu_client_invoke(c, &a, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(vgpu_client_last_error(c, false), 0);
    assert_int_equal(vgpu_client_invoke(c, &s, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(vgpu_client_last_error(c, true), 98);
    assert_int_equal(vgpu_client_last_error(c, false), 0);
}

struct thread_arg {
    struct vgpu_client *c;
    int phase;                  /* 1: queue a call; 2: settle and read the error */
    int error;
};

static void *queue_one(void *p)
{
    struct thread_arg *a = p;
    struct vgpu_call_req r = call(7, VGPU_FN_ASYNC);
    struct vgpu_call_rep rep;

    assert_int_equal(vgpu_client_invoke(a->c, &r, &rep), 0);
    vgpu_client_rep_release(a->c, &rep);
    return NULL;
}

/* A failure of another thread's queued call waits for that thread, not this one. */
static void failure_owed_to_its_thread(void **state)
{
    struct vgpu_client *c = *state;
    struct thread_arg a = { .c = c };
    struct vgpu_call_req s = call(9, 0);
    struct vgpu_call_rep rep;
    pthread_t t;

    srv.fail_index = 0;
    srv.fail_status = 77;
    assert_int_equal(pthread_create(&t, NULL, queue_one, &a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    /* that thread has exited: its call is an orphan, its failure goes nowhere */
    assert_true(c->queue.calls[0].orphan);
    assert_int_equal(vgpu_client_invoke(c, &s, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(vgpu_client_last_error(c, false), 0);
    assert_int_equal(c->owed.n, 0);

    /* a live thread's failure is kept for it */
    pthread_mutex_lock(&c->lock);
    vgpu_owe_error_locked(c, t, 55);      /* t's id, as another live thread's */
    pthread_mutex_unlock(&c->lock);
    assert_int_equal(c->owed.n, 1);
    assert_int_equal(vgpu_client_last_error(c, false), 0);
}

/* A call with more than 64 KiB of data is never queued. */
static void big_calls_go_at_once(void **state)
{
    struct vgpu_client *c = *state;
    struct vgpu_call_req a = call(7, VGPU_FN_ASYNC);
    struct vgpu_call_rep rep;
    static uint8_t big[VGPU_QUEUE_MAX_SEG_BYTES + 1];

    a.nseg = 1;
    a.seg[0] = (struct vgpu_seg){ big, sizeof(big) };
    assert_int_equal(vgpu_client_invoke(c, &a, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(srv.frames, 1);
    assert_int_equal(c->queue.n, 0);
}

/* A reply with too few results answers nothing: -EPROTO, and the queue is dropped. */
static void short_reply_is_eproto(void **state)
{
    struct vgpu_client *c = *state;
    struct vgpu_call_req a = call(7, VGPU_FN_ASYNC), s = call(9, 0);
    struct vgpu_call_rep rep;

    srv.short_reply = true;
    assert_int_equal(vgpu_client_invoke(c, &a, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(vgpu_client_invoke(c, &s, &rep), -EPROTO);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(c->queue.n, 0);
    assert_int_equal(vgpu_client_last_error(c, true), -EPROTO);
}

/* Queue and call together too big for the link: the queue goes alone, then the call. */
static void too_big_together_go_apart(void **state)
{
    struct vgpu_client *c = *state;
    struct vgpu_call_req a = call(7, VGPU_FN_ASYNC), s = call(9, 0);
    struct vgpu_call_rep rep;

    srv.e2big_over = 1;
    assert_int_equal(vgpu_client_invoke(c, &a, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(vgpu_client_invoke(c, &s, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(srv.frames, 2);
    assert_int_equal(srv.ncalls, 1);
    assert_int_equal(srv.ids[0], 9);
}

/* A batch runs on one device: a call on another sends the queue first. */
static void device_change_flushes(void **state)
{
    struct vgpu_client *c = *state;
    struct vgpu_call_req a = call(7, VGPU_FN_ASYNC), b = call(8, VGPU_FN_ASYNC);
    struct vgpu_call_rep rep;

    assert_int_equal(vgpu_client_invoke(c, &a, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    vgpu_client_set_device(c, 1);
    assert_int_equal(vgpu_client_invoke(c, &b, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    vgpu_client_set_device(c, 0);
    assert_int_equal(srv.frames, 1);
    assert_int_equal(srv.ids[0], 7);
    assert_int_equal(c->queue.n, 1);
    assert_int_equal(c->queue.device, 1);
}

/* With no connection, a call fails with -ENOTCONN and nothing is queued. */
static void no_connection_is_enotconn(void **state)
{
    struct vgpu_client *c = *state;
    struct vgpu_call_req a = call(7, VGPU_FN_ASYNC);
    struct vgpu_call_rep rep;

    c->conn.state = VGPU_CONN_FAILED;
    assert_int_equal(vgpu_client_invoke(c, &a, &rep), -ENOTCONN);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(c->queue.n, 0);
    vgpu_client_last_error(c, true);
}

/*
 * A server of another release (its shapes in the HelloReply): a call whose
 * shape differs is refused here with -EOPNOTSUPP and never sent; the calls
 * that agree go as before.
 */
static void other_release_refused_here(void **state)
{
    struct vgpu_client *c = *state;
    static uint32_t theirs[VGPU_CUDART_NSHAPES];
    struct vgpu_call_req a = call(VGPU_CUDART_ID_cudaGetDeviceCount, 0),
                         b = call(VGPU_CUDART_ID_cudaDriverGetVersion, 0);
    struct vgpu_call_rep rep;

    memcpy(theirs, vgpu_cudart_shapes, sizeof(theirs));
    theirs[VGPU_CUDART_ID_cudaGetDeviceCount - VGPU_CUDART_ID_BASE] ^= 1;
    c->conn.agree = malloc(sizeof(*c->conn.agree));
    assert_non_null(c->conn.agree);
    vgpu_agree(c->conn.agree, theirs, VGPU_CUDART_NSHAPES, vgpu_cuda_shapes, VGPU_CUDA_NSHAPES,
               vgpu_nvml_shapes, VGPU_NVML_NSHAPES);
    assert_int_equal(c->conn.agree->differ, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(vgpu_client_invoke(c, &a, &rep), -EOPNOTSUPP);
        vgpu_client_rep_release(c, &rep);
    }
    assert_int_equal(srv.frames, 0);
    assert_int_equal(vgpu_client_invoke(c, &b, &rep), 0);
    vgpu_client_rep_release(c, &rep);
    assert_int_equal(srv.frames, 1);
    assert_int_equal(srv.ids[0], VGPU_CUDART_ID_cudaDriverGetVersion);
}

/* Batches the flusher sent so far (it sends under the client's lock). */
static int frames_now(struct vgpu_client *c)
{
    int n;

    pthread_mutex_lock(&c->lock);
    n = srv.frames;
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Waits up to a second for the flusher to send the frames-th batch. */
static bool flusher_sent(struct vgpu_client *c, int frames)
{
    struct timespec ms = { 0, 1000000 };

    for (int i = 0; i < 1000 && frames_now(c) < frames; i++)
        nanosleep(&ms, NULL);
    return frames_now(c) >= frames;
}

/*
 * The flusher thread sends what a program queued and then stopped calling
 * about: at once after batch_ns, and again after it slept through a quiet
 * spell (it must be woken then), and while the program sends batches of
 * its own many times over.  The client stays alive: the flusher never ends.
 */
static void flusher_sends_what_waits(void **state)
{
    static struct vgpu_client c;
    struct vgpu_call_req a = call(7, VGPU_FN_ASYNC), s = call(9, 0);
    struct vgpu_call_rep rep;
    struct timespec quiet = { 0, 60000000 };   /* past the flusher's 20 ms before it sleeps */

    (void)state;
    memset(&srv, 0, sizeof(srv));
    srv.fail_index = -1;
    assert_int_equal(vgpu_client_init(&c), 0);
    c.conn.transport.ops = &fake_ops;
    c.conn.state = VGPU_CONN_UP;
    c.conn.server_addr = "fake";
    c.queue.batch_ns = 1000000;
    assert_int_equal(vgpu_client_invoke(&c, &a, &rep), 0);
    vgpu_client_rep_release(&c, &rep);
    assert_true(c.queue.flusher_started);
    assert_true(flusher_sent(&c, 1));
    assert_int_equal(srv.ncalls, 1);
    for (int round = 0; round < 3; round++) {
        nanosleep(&quiet, NULL);
        assert_int_equal(__atomic_load_n(&c.queue.flusher_idle, __ATOMIC_SEQ_CST), 1);
        assert_int_equal(vgpu_client_invoke(&c, &a, &rep), 0);
        vgpu_client_rep_release(&c, &rep);
        assert_true(flusher_sent(&c, 2 + round));
    }
    /* the program's own batches, many and quick: each goes once, with its call */
    pthread_mutex_lock(&c.lock);
    c.queue.batch_ns = 10000000000u;         /* the flusher's turn never comes (a slow machine) */
    pthread_mutex_unlock(&c.lock);
    for (int i = 0; i < 2000; i++) {
        int before = frames_now(&c);

        assert_int_equal(vgpu_client_invoke(&c, &a, &rep), 0);
        vgpu_client_rep_release(&c, &rep);
        assert_int_equal(vgpu_client_invoke(&c, &s, &rep), 0);
        vgpu_client_rep_release(&c, &rep);
        assert_int_equal(frames_now(&c), before + 1);
    }
    assert_int_equal(c.queue.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(async_calls_ride_with_the_next, setup, teardown),
        cmocka_unit_test_setup_teardown(queued_failure_is_the_last_error, setup, teardown),
        cmocka_unit_test_setup_teardown(failure_owed_to_its_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(big_calls_go_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(short_reply_is_eproto, setup, teardown),
        cmocka_unit_test_setup_teardown(too_big_together_go_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(device_change_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(no_connection_is_enotconn, setup, teardown),
        cmocka_unit_test_setup_teardown(other_release_refused_here, setup, teardown),
        cmocka_unit_test_setup_teardown(drained_stream_synced_here, setup, teardown),
        cmocka_unit_test(flusher_sends_what_waits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
