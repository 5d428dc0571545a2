/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's carriers (server/carrier*.c) on a session built here, the
 * client's end played by the test: which carrier a session gets; the
 * socket carrier's receive (an fd passed with a frame kept), reply, wait
 * through the session's loop, alive, and its 1 ms rounds while work is on
 * the GPU; the memfd queue pair taking frames from its ring and the socket,
 * answering each the way it came, a reply too large for the ring behind an
 * ON_SOCKET record; and the BAR pair's doorbell joining and leaving the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "carrier.h"
#include "loop.h"
#include "server_internal.h"
#include "vgpu/fdio.h"

int vgpu_log_level;
void vgpu_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

/* work.c's, here: each look retires one item; the last one makes the client send. */
static int work_polls;
static int send_at_done = -1;
static uint8_t *done_frame;
static size_t done_len;

void vgpu_work_poll(struct vgpu_session *s)
{
    work_polls++;
    if (s->work_n && --s->work_n == 0 && send_at_done >= 0)
        assert_int_equal(write(send_at_done, done_frame, done_len), (ssize_t)done_len);
}

#define RING (64u << 10)

/* A session on one end of a socket pair; the client's end in *peer. */
static void session_up(struct vgpu_session *s, int *peer)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *s = (struct vgpu_session){ .fd = sv[0], .pending_fd = -1, .qp_bell = -1 };
    *peer = sv[1];
    assert_int_equal(vgpu_carrier_start(s), 0);
    assert_ptr_equal(s->carrier, &vgpu_carrier_sock);
    assert_int_equal(vgpu_loop_count(s->loop), 1);
}

static void session_down(struct vgpu_session *s, int peer)
{
    vgpu_carrier_end(s);
    assert_null(s->loop);
    close(s->fd);
    if (peer >= 0)
        close(peer);
    if (s->pending_fd >= 0)
        close(s->pending_fd);
}

/* A request frame (a Close control: any frame will do for a carrier), malloc'ed. */
static uint8_t *request(uint64_t seq, size_t *len)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__Close cl = VGPU__WIRE__CLOSE__INIT;
    struct vgpu_frame_header h = { .seq = seq };
    uint8_t *out;

    c.op_case = VGPU__WIRE__CONTROL__OP_CLOSE;
    c.close = &cl;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL;
    env.control = &c;
    assert_int_equal(vgpu_frame_encode(&h, &env, NULL, 0, NULL, &out, len), 0);
    return out;
}

/* An empty ResultBatch with a payload of n bytes, sent as the reply of seq. */
static int reply(struct vgpu_session *s, uint64_t seq, size_t n)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__ResultBatch rb = VGPU__WIRE__RESULT_BATCH__INIT;
    struct vgpu_frame_header h = { .flags = VGPU_FRAME_F_REPLY, .seq = seq };
    struct iovec iov = { .iov_base = calloc(1, n ? n : 1), .iov_len = n };
    int rc;

    env.body_case = VGPU__WIRE__ENVELOPE__BODY_RESULTS;
    env.results = &rb;
    rc = s->carrier->reply(s, &h, &env, &iov, n ? 1 : 0);
    free(iov.iov_base);
    return rc;
}

/* Reads one reply frame from the socket: its seq. */
static uint64_t read_reply(int peer)
{
    struct vgpu_frame f = { 0 };
    uint8_t *buf;
    size_t len;
    uint64_t seq;

    assert_int_equal(vgpu_fd_read_frame(peer, NULL, &buf, &len), 0);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    assert_true(f.hdr.flags & VGPU_FRAME_F_REPLY);
    assert_int_equal(f.env->body_case, VGPU__WIRE__ENVELOPE__BODY_RESULTS);
    seq = f.hdr.seq;
    vgpu_frame_release(&f);
    free(buf);
    return seq;
}

static void test_selection(void **state)
{
    (void)state;
    assert_ptr_equal(vgpu_carrier_for(false, false), &vgpu_carrier_sock);
    assert_ptr_equal(vgpu_carrier_for(false, true), &vgpu_carrier_sock);
    assert_ptr_equal(vgpu_carrier_for(true, false), &vgpu_carrier_qp_memfd);
    assert_ptr_equal(vgpu_carrier_for(true, true), &vgpu_carrier_qp_bar);
    assert_string_equal(vgpu_carrier_sock.name, "socket");
    assert_int_equal(vgpu_carrier_loop_ms(0), 0);
    assert_int_equal(vgpu_carrier_loop_ms(1), 1);
    assert_int_equal(vgpu_carrier_loop_ms(1000000), 1);
    assert_int_equal(vgpu_carrier_loop_ms(100000000), 100);
}

static void test_socket(void **state)
{
    struct vgpu_session s;
    struct vgpu_frame_header h = { .seq = 7 };
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__Close cl = VGPU__WIRE__CLOSE__INIT;
    int peer, pass = eventfd(0, EFD_CLOEXEC);
    uint8_t *buf;
    size_t len;

    (void)state;
    session_up(&s, &peer);
    assert_true(s.carrier->alive(&s));
    assert_int_equal(s.carrier->wait(&s, 1000000), 0);          /* nothing came */
    c.op_case = VGPU__WIRE__CONTROL__OP_CLOSE;
    c.close = &cl;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL;
    env.control = &c;
    assert_int_equal(vgpu_fd_send_frame_fd(peer, &h, &env, NULL, 0, pass), 0);
    assert_int_equal(s.carrier->wait(&s, 100000000), 1);
    assert_true(vgpu_carrier_sock_ready(&s));
    s.via_qp = true;
    assert_int_equal(s.carrier->receive(&s, &buf, &len), 0);
    assert_false(s.via_qp);
    assert_true(len >= VGPU_FRAME_HEADER_SIZE);
    assert_true(s.pending_fd >= 0 && s.pending_fd != pass);     /* the passed fd, received */
    free(buf);
    assert_int_equal(reply(&s, 7, 100), 0);
    assert_int_equal(read_reply(peer), 7);
    assert_false(vgpu_carrier_sock_ready(&s));
    close(peer);
    assert_false(s.carrier->alive(&s));
    assert_int_equal(s.carrier->receive(&s, &buf, &len), -ECONNRESET);
    close(pass);
    session_down(&s, -1);
}

/* With work on the GPU and a quiet client: 1 ms rounds, the work looked at between. */
static void test_socket_work(void **state)
{
    struct vgpu_session s;
    uint8_t *buf;
    size_t len;
    int peer;

    (void)state;
    session_up(&s, &peer);
    done_frame = request(3, &done_len);
    send_at_done = peer;
    work_polls = 0;
    s.work_n = 3;
    assert_int_equal(s.carrier->receive(&s, &buf, &len), 0);
    assert_int_equal(work_polls, 3);
    assert_int_equal(s.work_n, 0);
    assert_int_equal(len, done_len);
    assert_memory_equal(buf, done_frame, len);
    free(buf);
    /* a frame already there: no look at the work */
    s.work_n = 1;
    assert_int_equal(write(peer, done_frame, done_len), (ssize_t)done_len);
    assert_int_equal(s.carrier->receive(&s, &buf, &len), 0);
    assert_int_equal(work_polls, 3);
    free(buf);
    send_at_done = -1;
    free(done_frame);
    session_down(&s, peer);
}

/* A memfd queue pair laid out by the "client" (q) and attached to s. */
static void *qp_up(struct vgpu_session *s, struct vgpu_qp *q)
{
    uint64_t n = vgpu_qp_bytes(RING, RING);
    void *mem = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    assert_true(mem != MAP_FAILED);
    assert_int_equal(vgpu_qp_create(q, mem, n, RING, RING), 0);
    assert_int_equal(vgpu_qp_attach(&s->qp, mem, n), 0);
    assert_int_equal(vgpu_carrier_use_qp(s, false, -1), 0);
    s->qp_mem = mem;
    s->qp_len = n;
    assert_ptr_equal(s->carrier, &vgpu_carrier_qp_memfd);
    assert_int_equal(vgpu_loop_count(s->loop), 1);             /* a futex is not polled */
    return mem;
}

static void submit(struct vgpu_qp *q, const uint8_t *frame, size_t len)
{
    int err;
    uint8_t *w = vgpu_qring_reserve(&q->sub, (uint32_t)len, &err);

    assert_non_null(w);
    memcpy(w, frame, len);
    vgpu_qring_publish(&q->sub, (uint32_t)len, VGPU_QP_FRAME);
}

/* The next completion record: its kind, and the frame's seq for a FRAME. */
static uint32_t completion(struct vgpu_qp *q, uint64_t *seq)
{
    struct vgpu_frame_header h;
    const uint8_t *d;
    uint32_t n, kind;

    assert_int_equal(vgpu_qring_peek(&q->comp, &d, &n, &kind), 0);
    if (kind == VGPU_QP_FRAME) {
        assert_int_equal(vgpu_frame_header_decode(d, n, NULL, &h), 0);
        assert_true(h.flags & VGPU_FRAME_F_COMPACT);
        *seq = h.seq;
    }
    vgpu_qring_pop(&q->comp, n);
    return kind;
}

static void test_memfd_qp(void **state)
{
    struct vgpu_session s;
    struct vgpu_qp q;
    uint8_t *req, *buf;
    size_t rlen, len;
    uint64_t seq = 0;
    int peer;
    void *mem;

    (void)state;
    session_up(&s, &peer);
    mem = qp_up(&s, &q);
    /* a request through the ring, answered there */
    req = request(11, &rlen);
    submit(&q, req, rlen);
    assert_int_equal(s.carrier->receive(&s, &buf, &len), 0);
    assert_true(s.via_qp);
    assert_int_equal(len, rlen);
    assert_memory_equal(buf, req, len);
    free(buf);
    assert_int_equal(reply(&s, 11, 64), 0);
    assert_int_equal(completion(&q, &seq), VGPU_QP_FRAME);
    assert_int_equal(seq, 11);
    /* one on the socket (the client counts it): answered on the socket */
    assert_int_equal(write(peer, req, rlen), (ssize_t)rlen);
    __atomic_add_fetch(&q.hdr->socket_frames, 1, __ATOMIC_RELEASE);
    assert_int_equal(s.carrier->receive(&s, &buf, &len), 0);
    assert_false(s.via_qp);
    free(buf);
    assert_int_equal(reply(&s, 12, 0), 0);
    assert_int_equal(read_reply(peer), 12);
    /* a reply larger than the ring can carry: ON_SOCKET, then the socket */
    submit(&q, req, rlen);
    assert_int_equal(s.carrier->receive(&s, &buf, &len), 0);
    assert_true(s.via_qp);
    free(buf);
    assert_int_equal(reply(&s, 13, RING), 0);
    assert_int_equal(completion(&q, &seq), VGPU_QP_ON_SOCKET);
    assert_int_equal(read_reply(peer), 13);
    /* nothing comes: the wait sleeps on the futex and says "may have" */
    assert_int_equal(s.carrier->wait(&s, 1000000), 1);
    assert_int_equal(__atomic_load_n(&q.hdr->server_sleeping, __ATOMIC_SEQ_CST), 0);
    assert_true(s.carrier->alive(&s));
    vgpu_carrier_leave_qp(&s);
    assert_ptr_equal(s.carrier, &vgpu_carrier_sock);
    free(req);
    munmap(mem, s.qp_len);
    session_down(&s, peer);
}

/* In a guest the slot's doorbell joins the session's loop, and a ring wakes the wait. */
static void test_bar_doorbell(void **state)
{
    struct vgpu_session s;
    uint64_t one = 1, v;
    int peer, bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct vgpu_qp q;
    void *mem;

    (void)state;
    session_up(&s, &peer);
    mem = mmap(NULL, vgpu_qp_bytes(RING, RING), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    assert_int_equal(vgpu_qp_create(&q, mem, vgpu_qp_bytes(RING, RING), RING, RING), 0);
    assert_int_equal(vgpu_qp_attach(&s.qp, mem, vgpu_qp_bytes(RING, RING)), 0);
    assert_int_equal(vgpu_carrier_use_qp(&s, true, bell), 0);
    assert_ptr_equal(s.carrier, &vgpu_carrier_qp_bar);
    assert_int_equal(s.qp_bell, bell);
    assert_int_equal(vgpu_loop_count(s.loop), 2);
    assert_int_equal(write(bell, &one, sizeof(one)), (ssize_t)sizeof(one));
    assert_int_equal(s.carrier->wait(&s, 100000000), 1);
    assert_int_equal(read(bell, &v, sizeof(v)), -1);            /* drained by the loop */
    vgpu_carrier_leave_qp(&s);
    assert_ptr_equal(s.carrier, &vgpu_carrier_sock);
    assert_int_equal(s.qp_bell, -1);
    assert_int_equal(vgpu_loop_count(s.loop), 1);
    /* without a loop, a guest's pair cannot be watched */
    vgpu_carrier_end(&s);
    assert_int_equal(vgpu_carrier_use_qp(&s, true, bell), -EINVAL);
    close(bell);
    munmap(mem, vgpu_qp_bytes(RING, RING));
    session_down(&s, peer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_socket),
        cmocka_unit_test(test_socket_work),
        cmocka_unit_test(test_memfd_qp),
        cmocka_unit_test(test_bar_doorbell),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
