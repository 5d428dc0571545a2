/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host callbacks in the client (shim/client/callbacks.c), with this test
 * as the server writing the queue pair's header page: a callback runs on
 * the client's thread when cb_due names it and cb_done answers it, host-
 * direct (futexes) and as in a guest (naps); a stream callback gets its
 * stream and status; an id the client does not know is answered without
 * running anything; a CUDA call from a callback fails at once (-EDEADLK);
 * without a queue pair callbacks are refused; once stopped, nothing is
 * answered any more.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client_internal.h"
#include "vgpu/futex.h"

static const struct vgpu_transport_ops host_ops = { .name = "test-host", .qp_futex = true };
static const struct vgpu_transport_ops guest_ops = { .name = "test-guest", .qp_futex = false };
static _Alignas(4096) uint8_t page[VGPU_QP_HEADER];

static struct vgpu_qp_hdr *hdr(void)
{
    return (struct vgpu_qp_hdr *)page;
}

static struct vgpu_client *client(const struct vgpu_transport_ops *ops)
{
    struct vgpu_client *c = malloc(sizeof(*c));

    assert_non_null(c);
    assert_int_equal(vgpu_client_init(c), 0);
    memset(page, 0, sizeof(page));
    c->conn.transport.ops = ops;
    c->conn.transport.qp.hdr = hdr();
    c->conn.transport.qp_mem = page;
    return c;
}

/* Stops the thread and waits until it left, then frees c. */
static void finish(struct vgpu_client *c)
{
    bool running = true;

    pthread_mutex_lock(&c->lock);
    vgpu_callbacks_stop_locked(c);
    pthread_mutex_unlock(&c->lock);
    for (int i = 0; i < 2000 && running; i++) {
        pthread_mutex_lock(&c->callbacks.lock);
        running = c->callbacks.running;
        pthread_mutex_unlock(&c->callbacks.lock);
        if (running)
            usleep(1000);
    }
    assert_false(running);
    vgpu_client_destroy(c);
    free(c);
}

static uint64_t add(struct vgpu_client *c, int kind, void (*fn)(void), void *data, void *stream)
{
    struct vgpu_callback cb = { .kind = kind, .fn = fn, .data = data, .stream = stream };
    uint64_t id = 0;

    pthread_mutex_lock(&c->lock);
    assert_int_equal(vgpu_callbacks_add_locked(c, &cb, &id), 0);
    pthread_mutex_unlock(&c->lock);
    assert_true(id != 0);
    return id;
}

/* The server's side: id due as due with status; true when cb_done answered it within 5 s. */
static bool make_due(uint32_t due, uint64_t id, int status, int wait_ms)
{
    __atomic_store_n(&hdr()->cb_id, id, __ATOMIC_RELAXED);
    __atomic_store_n(&hdr()->cb_status, status, __ATOMIC_RELAXED);
    __atomic_store_n(&hdr()->cb_due, due, __ATOMIC_RELEASE);
    vgpu_futex_wake(&hdr()->cb_due);
    for (int i = 0; i < wait_ms; i++) {
        if (__atomic_load_n(&hdr()->cb_done, __ATOMIC_ACQUIRE) == due)
            return true;
        usleep(1000);
    }
    return false;
}

struct seen {
    int runs;
    void *stream;
    int status;
    int cuda;                  /* what a CUDA call made from the callback got */
    struct vgpu_client *c;
};

static void host_fn(void *p)
{
    struct seen *s = p;
    struct vgpu_call_req req = { .call_id = 1, .name = "cudaGetDeviceCount" };
    struct vgpu_call_rep rep = { 0 };

    s->runs++;
    s->cuda = vgpu_client_invoke(s->c, &req, &rep);
    vgpu_client_settle(s->c);          /* returns at once too */
}

static void stream_fn(void *stream, int status, void *p)
{
    struct seen *s = p;

    s->runs++;
    s->stream = stream;
    s->status = status;
}

static void run_both(const struct vgpu_transport_ops *ops)
{
    struct vgpu_client *c = client(ops);
    struct seen a = { .c = c }, b = { .c = c };
    uint64_t ia = add(c, VGPU_CB_HOST_FN, (void (*)(void))host_fn, &a, NULL);
    uint64_t ib = add(c, VGPU_CB_STREAM, (void (*)(void))stream_fn, &b, (void *)0x77);

    assert_true(make_due(1, ia, 0, 5000));
    assert_int_equal(a.runs, 1);
    assert_int_equal(a.cuda, -EDEADLK);
    assert_true(make_due(2, ib, 700, 5000));
    assert_int_equal(b.runs, 1);
    assert_ptr_equal(b.stream, (void *)0x77);
    assert_int_equal(b.status, 700);
    /* already ran, then never registered: answered, nothing runs */
    assert_true(make_due(3, ia, 0, 5000));
    assert_true(make_due(4, 999, 0, 5000));
    assert_int_equal(a.runs, 1);
    assert_int_equal(c->callbacks.n, 0);
    finish(c);
}

static void host_direct(void **state)
{
    (void)state;
    run_both(&host_ops);
}

static void in_a_guest(void **state)
{
    (void)state;
    run_both(&guest_ops);
}

static void without_queue_pair(void **state)
{
    struct vgpu_client *c = client(&host_ops);
    struct vgpu_callback cb = { .kind = VGPU_CB_HOST_FN, .fn = (void (*)(void))host_fn };
    uint64_t id = 0;

    (void)state;
    c->conn.transport.qp_mem = NULL;
    pthread_mutex_lock(&c->lock);
    assert_int_equal(vgpu_callbacks_add_locked(c, &cb, &id), -EOPNOTSUPP);
    pthread_mutex_unlock(&c->lock);
    finish(c);
}

static void cancelled_and_stopped(void **state)
{
    struct vgpu_client *c = client(&host_ops);
    struct seen a = { .c = c };
    struct vgpu_callback cb = { .kind = VGPU_CB_HOST_FN, .fn = (void (*)(void))host_fn };
    uint64_t ia = add(c, VGPU_CB_HOST_FN, (void (*)(void))host_fn, &a, NULL), id;

    (void)state;
    vgpu_callbacks_cancel(c, ia);
    assert_int_equal(c->callbacks.n, 0);
    add(c, VGPU_CB_HOST_FN, (void (*)(void))host_fn, &a, NULL);
    pthread_mutex_lock(&c->lock);
    vgpu_callbacks_stop_locked(c);
    assert_int_equal(vgpu_callbacks_add_locked(c, &cb, &id), -ENOTCONN);
    pthread_mutex_unlock(&c->lock);
    assert_false(make_due(1, ia + 1, 0, 200));
    assert_int_equal(a.runs, 0);
    finish(c);
}

/*
 * Kept entries: one kept runs at every time it is due; one kept while its
 * call was on its way and due already runs once (VGPU_CB_ONCE after it ran
 * drops it); one made to run once again before it ran stays until it runs.
 */
static void kept_entries(void **state)
{
    struct vgpu_client *c = client(&host_ops);
    struct seen a = { .c = c }, b = { .c = c }, d = { .c = c };
    uint64_t ia = add(c, VGPU_CB_STREAM, (void (*)(void))stream_fn, &a, NULL);
    uint64_t ib = add(c, VGPU_CB_STREAM, (void (*)(void))stream_fn, &b, NULL);
    uint64_t id = add(c, VGPU_CB_STREAM, (void (*)(void))stream_fn, &d, NULL);
    struct vgpu_callback got;

    (void)state;
    assert_int_equal(vgpu_callbacks_keep(c, ia, VGPU_CB_KEEP, NULL), 0);
    assert_true(make_due(1, ia, 0, 5000));
    assert_true(make_due(2, ia, 0, 5000));
    assert_int_equal(a.runs, 2);
    assert_int_equal(vgpu_callbacks_keep(c, ia, VGPU_CB_AS_IS, &got), 0);
    assert_ptr_equal(got.data, &a);
    /* kept while on its way, ran, then back to one run: gone */
    assert_int_equal(vgpu_callbacks_keep(c, ib, VGPU_CB_KEEP, NULL), 0);
    assert_true(make_due(3, ib, 0, 5000));
    assert_int_equal(vgpu_callbacks_keep(c, ib, VGPU_CB_ONCE, NULL), 0);
    assert_int_equal(vgpu_callbacks_keep(c, ib, VGPU_CB_AS_IS, NULL), -ENOENT);
    assert_int_equal(b.runs, 1);
    /* back to one run before it ran: runs once, then gone */
    assert_int_equal(vgpu_callbacks_keep(c, id, VGPU_CB_KEEP, NULL), 0);
    assert_int_equal(vgpu_callbacks_keep(c, id, VGPU_CB_ONCE, NULL), 0);
    assert_true(make_due(4, id, 0, 5000));
    assert_true(make_due(5, id, 0, 5000));
    assert_int_equal(d.runs, 1);
    assert_int_equal(c->callbacks.n, 1);          /* ia alone, kept */
    assert_int_equal(c->callbacks.kept, 1);
    finish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(host_direct),
        cmocka_unit_test(kept_entries),
        cmocka_unit_test(in_a_guest),
        cmocka_unit_test(without_queue_pair),
        cmocka_unit_test(cancelled_and_stopped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
