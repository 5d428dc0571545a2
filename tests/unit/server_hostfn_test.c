/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's host callbacks (server/manual/hostfn.c) on a session built
 * here, against the fake runtime and driver (tests/fakecuda), whose thread
 * runs the trampolines as the real driver does: the call's refusals (a
 * capturing stream among them); a
 * callback made due in the header page, held until the client's cb_done
 * names it (a wrong or stale value keeps it waiting); released by the end
 * of the session and by the client's socket hanging up, after which later
 * callbacks return at once; and the limit on callbacks waiting.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "../../server/manual/hostfn.c"

int vgpu_log_level;
void vgpu_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

#define FOREIGN_STREAM 0x5000u          /* not the session's */
#define CAPTURING_STREAM ((void *)0x7000)   /* the session's, capturing */
static struct { cudaStream_t s; } made;   /* a stream the fake made: the session's */

bool vgpu_handle_known(const struct vgpu_session *s, int kind, uint64_t value)
{
    (void)s;
    return kind == VGPU_CUDART_H_STREAM &&
           (value == (uint64_t)(uintptr_t)made.s || value == (uint64_t)(uintptr_t)CAPTURING_STREAM);
}

void (*vgpu_driver_sym(const char *name))(void)
{
    if (!strcmp(name, "cuLaunchHostFunc"))
        return (void (*)(void))cuLaunchHostFunc;
    if (!strcmp(name, "cuStreamAddCallback"))
        return (void (*)(void))cuStreamAddCallback;
    return NULL;
}

/* graph.c's: the one stream this test says is capturing. */
bool vgpu_graph_capturing(struct vgpu_session *s, void *stream)
{
    (void)s;
    return stream == CAPTURING_STREAM;
}

static _Alignas(4096) uint8_t page[VGPU_QP_HEADER];

static struct vgpu_session new_session(int fd)
{
    struct vgpu_session s = { .fd = fd, .pending_fd = -1, .qp_bell = -1 };

    memset(page, 0, sizeof(page));
    s.qp.hdr = (struct vgpu_qp_hdr *)page;
    s.qp_mem = page;
    return s;
}

/* Sends a callback call of id with these arguments; the handler's status. */
static int call(struct vgpu_session *s, uint32_t id, uint64_t stream, uint64_t cb_id)
{
    Vgpu__Manual__HostFnArgs a = VGPU__MANUAL__HOST_FN_ARGS__INIT;
    struct vgpu_arena arena = { 0 };
    struct vgpu_manual_call c = { .arena = &arena };
    uint8_t buf[64];
    vgpu_manual_fn h = vgpu_hostcb_find(id);
    int st;

    assert_non_null(h);
    a.stream = stream;
    a.id = cb_id;
    c.args_len = vgpu__manual__host_fn_args__pack(&a, buf);
    c.args = buf;
    st = h(s, &c);
    vgpu_arena_free(&arena);
    return st;
}

static struct vgpu_qp_hdr *hdr(void)
{
    return (struct vgpu_qp_hdr *)page;
}

/* Any call of the fake waits until its host functions returned. */
static void drain(void)
{
    assert_int_equal(cudaStreamQuery(0), cudaSuccess);
}

/* Waits up to 5 s for cb_due to reach due. */
static void wait_due(uint32_t due)
{
    for (int i = 0; i < 5000 && __atomic_load_n(&hdr()->cb_due, __ATOMIC_ACQUIRE) != due; i++)
        usleep(1000);
    assert_int_equal(__atomic_load_n(&hdr()->cb_due, __ATOMIC_ACQUIRE), due);
}

static int active_of(struct vgpu_session *s)
{
    int n;

    pthread_mutex_lock(&s->hostcb->lock);
    n = s->hostcb->active;
    pthread_mutex_unlock(&s->hostcb->lock);
    return n;
}

static void test_refusals(void **state)
{
    struct vgpu_session s = new_session(-1);

    (void)state;
    s.qp_mem = NULL;
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaLaunchHostFunc, 0, 1), cudaErrorNotSupported);
    s.qp_mem = page;
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaLaunchHostFunc, 0, 0), cudaErrorInvalidValue);
    assert_int_equal(call(&s, VGPU_CUDA_ID_cuLaunchHostFunc, FOREIGN_STREAM, 1), CUDA_ERROR_INVALID_HANDLE);
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaStreamAddCallback, 0xdead0, 1),
                     cudaErrorInvalidResourceHandle);
    assert_int_equal(call(&s, VGPU_CUDA_ID_cuLaunchHostFunc, (uint64_t)(uintptr_t)CAPTURING_STREAM, 1),
                     CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    assert_int_equal(__atomic_load_n(&hdr()->cb_due, __ATOMIC_ACQUIRE), 0);
}

static void test_due_then_done(void **state)
{
    int sv[2];
    struct vgpu_session s;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = new_session(sv[0]);
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaLaunchHostFunc, (uint64_t)(uintptr_t)made.s, 7), 0);
    wait_due(1);
    assert_int_equal(__atomic_load_n(&hdr()->cb_id, __ATOMIC_ACQUIRE), 7);
    /* a done for a callback never due, then a stale one: still waiting */
    __atomic_store_n(&hdr()->cb_done, 5, __ATOMIC_RELEASE);
    vgpu_futex_wake(&hdr()->cb_done);
    usleep(100000);
    assert_int_equal(active_of(&s), 1);
    __atomic_store_n(&hdr()->cb_done, 1, __ATOMIC_RELEASE);
    vgpu_futex_wake(&hdr()->cb_done);
    drain();
    assert_int_equal(active_of(&s), 0);

    /* a stream callback through the driver's entry: its status travels too */
    assert_int_equal(call(&s, VGPU_CUDA_ID_cuStreamAddCallback_ptsz, 0, 8), CUDA_SUCCESS);
    wait_due(2);
    assert_int_equal(hdr()->cb_id, 8);
    assert_int_equal(hdr()->cb_status, 0);
    __atomic_store_n(&hdr()->cb_done, 2, __ATOMIC_RELEASE);
    drain();

    /* the session ends while one is due: it returns, and later ones at once */
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaLaunchHostFunc, 0, 9), 0);
    wait_due(3);
    vgpu_hostcb_end(&s);
    drain();
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaLaunchHostFunc, 0, 10), 0);
    drain();
    assert_int_equal(hdr()->cb_due, 3);
    assert_int_equal(s.hostcb->pending, 0);
    close(sv[0]);
    close(sv[1]);
}

static void test_client_hangs_up(void **state)
{
    int sv[2];
    struct vgpu_session s;

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    s = new_session(sv[0]);
    s.qp_in_bar = true;                /* naps, as for a guest */
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaStreamAddCallback, 0, 3), 0);
    wait_due(1);
    close(sv[1]);
    drain();  /* returns: the trampoline saw the hang-up */
    assert_true(s.hostcb->ending);
    close(sv[0]);
}

static void test_limit(void **state)
{
    struct vgpu_session s = new_session(-1);

    (void)state;
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaLaunchHostFunc, 0, 1), 0);
    vgpu_hostcb_end(&s);                /* nobody answers here */
    drain();
    s.hostcb->pending = VGPU_HOSTCB_MAX;
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaLaunchHostFunc, 0, 2), cudaErrorMemoryAllocation);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_due_then_done),
        cmocka_unit_test(test_client_hangs_up),
        cmocka_unit_test(test_limit),
    };

    assert_int_equal(cudaStreamCreate(&made.s), cudaSuccess);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
