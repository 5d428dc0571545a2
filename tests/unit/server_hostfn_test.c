/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's host callbacks (server/manual/hostfn.c) on a session built
 * here, against the fake runtime and driver (tests/fakecuda), whose thread
 * runs the trampolines as the real driver does: the call's refusals; a
 * callback made due in the header page, held until the client's cb_done
 * names it (a wrong or stale value keeps it waiting); released by the end
 * of the session and by the client's socket hanging up, after which later
 * callbacks return at once; the limit on callbacks waiting; a callback
 * into a capturing stream kept as a host node that runs at every launch;
 * host nodes added, read back and set, and their refusals; a user object's
 * destructor made due once when its last reference goes.
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

#define FOREIGN 0x5000u                 /* not the session's, whatever its kind */
static struct { cudaStream_t s, capturing; } made;   /* streams the fake made: the session's */

bool vgpu_handle_known(const struct vgpu_session *s, int kind, uint64_t value)
{
    (void)s;
    if (kind != VGPU_CUDART_H_STREAM)
        return value != FOREIGN;       /* graph nodes: those of the fake */
    return value == (uint64_t)(uintptr_t)made.s || value == (uint64_t)(uintptr_t)made.capturing;
}

int vgpu_handle_add(struct vgpu_session *s, int kind, uint64_t value)
{
    (void)s;
    (void)kind;
    (void)value;
    return 0;
}

int vgpu_handle_remove(struct vgpu_session *s, int kind, uint64_t value)
{
    (void)s;
    (void)kind;
    (void)value;
    return 0;
}

int vgpu_cuda_kind(int kind)
{
    return 100 + kind;                 /* any kind but the stream's */
}

/* graph.c's: the session's graph, dependencies, node and executable. */
bool vgpu_graph_node_handles_ok(struct vgpu_session *s, uint64_t graph, const uint64_t *deps,
                                size_t ndeps, uint64_t node, uint64_t exec, bool add)
{
    (void)s;
    (void)deps;
    (void)ndeps;
    return (add ? graph && graph != FOREIGN : node != FOREIGN) && exec != FOREIGN;
}

int vgpu_graph_node_made(struct vgpu_session *s, uint64_t node)
{
    (void)s;
    (void)node;
    return 0;
}

void (*vgpu_driver_sym(const char *name))(void)
{
    static const struct { const char *name; void (*fn)(void); } fns[] = {
        { "cuLaunchHostFunc", (void (*)(void))cuLaunchHostFunc },
        { "cuStreamAddCallback", (void (*)(void))cuStreamAddCallback },
        { "cuGraphAddHostNode", (void (*)(void))cuGraphAddHostNode },
        { "cuGraphHostNodeSetParams", (void (*)(void))cuGraphHostNodeSetParams },
        { "cuGraphExecHostNodeSetParams", (void (*)(void))cuGraphExecHostNodeSetParams },
        { "cuGraphHostNodeGetParams", (void (*)(void))cuGraphHostNodeGetParams },
        { "cuUserObjectCreate", (void (*)(void))cuUserObjectCreate },
        { "cuUserObjectRetain", (void (*)(void))cuUserObjectRetain },
        { "cuUserObjectRelease", (void (*)(void))cuUserObjectRelease },
    };

    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
        if (!strcmp(name, fns[i].name))
            return fns[i].fn;
    return NULL;
}

/* graph.c's: as the driver says. */
bool vgpu_graph_capturing(struct vgpu_session *s, void *stream)
{
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;

    (void)s;
    return stream && cuStreamIsCapturing((CUstream)stream, &st) == CUDA_SUCCESS &&
           st != CU_STREAM_CAPTURE_STATUS_NONE;
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

/* Sends a call of id with the packed message m; the handler's status, its reply's u64 field 1. */
static int send_call(struct vgpu_session *s, uint32_t id, const ProtobufCMessage *m, uint64_t *ret)
{
    struct vgpu_arena arena = { 0 };
    struct vgpu_manual_call c = { .arena = &arena };
    uint8_t buf[256];
    vgpu_manual_fn h = vgpu_hostcb_find(id);
    int st;

    assert_non_null(h);
    assert_true(protobuf_c_message_get_packed_size(m) <= sizeof(buf));
    c.args_len = protobuf_c_message_pack(m, buf);
    c.args = buf;
    st = h(s, &c);
    if (ret) {
        /* NodeRet, HostNodeRet and HostFnRet all carry their one value as field 1 */
        Vgpu__Manual__NodeRet *r = vgpu__manual__node_ret__unpack(NULL, c.ret_len, c.ret);

        assert_non_null(r);
        *ret = r->node;
        vgpu__manual__node_ret__free_unpacked(r, NULL);
    }
    vgpu_arena_free(&arena);
    return st;
}

/* Sends a callback call of id with these arguments; the handler's status. */
static int call(struct vgpu_session *s, uint32_t id, uint64_t stream, uint64_t cb_id)
{
    Vgpu__Manual__HostFnArgs a = VGPU__MANUAL__HOST_FN_ARGS__INIT;

    a.stream = stream;
    a.id = cb_id;
    return send_call(s, id, &a.base, NULL);
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
    assert_int_equal(call(&s, VGPU_CUDA_ID_cuLaunchHostFunc, FOREIGN, 1), CUDA_ERROR_INVALID_HANDLE);
    assert_int_equal(call(&s, VGPU_CUDART_ID_cudaStreamAddCallback, 0xdead0, 1),
                     cudaErrorInvalidResourceHandle);
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

/* Launches an executable graph on a thread of its own (the fake runs it there, synchronously). */
static void *launcher(void *exec)
{
    assert_int_equal(cuGraphLaunch((CUgraphExec)exec, NULL), CUDA_SUCCESS);
    return NULL;
}

/* One launch of exec: its host node's function made due as seq, with id; answered. */
static void launch_answered(CUgraphExec exec, uint32_t seq, uint64_t id)
{
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, launcher, exec), 0);
    wait_due(seq);
    assert_int_equal(__atomic_load_n(&hdr()->cb_id, __ATOMIC_ACQUIRE), id);
    __atomic_store_n(&hdr()->cb_done, seq, __ATOMIC_RELEASE);
    vgpu_futex_wake(&hdr()->cb_done);
    assert_int_equal(pthread_join(th, NULL), 0);
}

static void test_capture_keeps(void **state)
{
    struct vgpu_session s = new_session(-1);
    CUgraphExec exec;
    CUgraph g;
    Vgpu__Manual__HostFnArgs a = VGPU__MANUAL__HOST_FN_ARGS__INIT;
    uint64_t kept = 0;

    (void)state;
    assert_int_equal(cuStreamBeginCapture_v2((CUstream)made.capturing,
                                             CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
    a.stream = (uint64_t)(uintptr_t)made.capturing;
    a.id = 11;
    assert_int_equal(send_call(&s, VGPU_CUDA_ID_cuLaunchHostFunc, &a.base, &kept), 0);
    assert_int_equal(kept, 1);
    /* a stream callback cannot be captured: refused, nothing kept */
    assert_int_equal(call(&s, VGPU_CUDA_ID_cuStreamAddCallback, a.stream, 12),
                     CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    assert_int_equal(cuStreamEndCapture((CUstream)made.capturing, &g), CUDA_SUCCESS);
    assert_int_equal(cuGraphInstantiateWithFlags(&exec, g, 0), CUDA_SUCCESS);
    launch_answered(exec, 1, 11);
    launch_answered(exec, 2, 11);
    assert_int_equal(s.hostcb->kept, 1);
    assert_int_equal(s.hostcb->pending, 0);
    vgpu_hostcb_end(&s);
}

/* A host node's call of id with these arguments; the handler's status, *node the new node. */
static int node_call(struct vgpu_session *s, uint32_t id, uint64_t graph, uint64_t node,
                     uint64_t exec, uint64_t cb_id, uint64_t *out)
{
    Vgpu__Manual__HostNodeArgs a = VGPU__MANUAL__HOST_NODE_ARGS__INIT;

    a.graph = graph;
    a.node = node;
    a.exec = exec;
    a.id = cb_id;
    return send_call(s, id, &a.base, out);
}

static uint64_t node_id(struct vgpu_session *s, uint64_t node)
{
    Vgpu__Manual__GraphArgs a = VGPU__MANUAL__GRAPH_ARGS__INIT;
    uint64_t id = 0;

    a.graph = node;
    assert_int_equal(send_call(s, VGPU_CUDA_ID_cuGraphHostNodeGetParams, &a.base, &id), 0);
    return id;
}

static void test_host_nodes(void **state)
{
    struct vgpu_session s = new_session(-1);
    uint64_t node = 0, g64, e64;
    CUgraphExec exec;
    CUgraph g;

    (void)state;
    assert_int_equal(cuGraphCreate(&g, 0), CUDA_SUCCESS);
    g64 = (uint64_t)(uintptr_t)g;
    /* refusals: no queue pair, id 0, a graph or node not the session's, no executable */
    s.qp_mem = NULL;
    assert_int_equal(node_call(&s, VGPU_CUDA_ID_cuGraphAddHostNode, g64, 0, 0, 21, NULL),
                     CUDA_ERROR_NOT_SUPPORTED);
    s.qp_mem = page;
    assert_int_equal(node_call(&s, VGPU_CUDA_ID_cuGraphAddHostNode, g64, 0, 0, 0, NULL),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(node_call(&s, VGPU_CUDA_ID_cuGraphAddHostNode, FOREIGN, 0, 0, 21, NULL),
                     CUDA_ERROR_INVALID_HANDLE);
    assert_int_equal(node_call(&s, VGPU_CUDA_ID_cuGraphHostNodeSetParams, 0, FOREIGN, 0, 21, NULL),
                     CUDA_ERROR_INVALID_HANDLE);
    assert_int_equal(s.hostcb ? s.hostcb->kept : 0, 0);

    assert_int_equal(node_call(&s, VGPU_CUDA_ID_cuGraphAddHostNode, g64, 0, 0, 21, &node), 0);
    assert_int_not_equal(node, 0);
    assert_int_equal(node_id(&s, node), 21);
    assert_int_equal(node_call(&s, VGPU_CUDA_ID_cuGraphHostNodeSetParams, 0, node, 0, 22, NULL), 0);
    assert_int_equal(node_id(&s, node), 22);
    assert_int_equal(cuGraphInstantiateWithFlags(&exec, g, 0), CUDA_SUCCESS);
    e64 = (uint64_t)(uintptr_t)exec;
    launch_answered(exec, 1, 22);
    assert_int_equal(node_call(&s, VGPU_CUDA_ID_cuGraphExecHostNodeSetParams, 0, node, 0, 23,
                               NULL), CUDA_ERROR_INVALID_HANDLE);
    assert_int_equal(node_call(&s, VGPU_CUDA_ID_cuGraphExecHostNodeSetParams, 0, node, e64, 23,
                               NULL), 0);
    launch_answered(exec, 2, 23);
    assert_int_equal(node_id(&s, node), 22);      /* the graph's own node is unchanged */
    assert_int_equal(s.hostcb->kept, 3);
    vgpu_hostcb_end(&s);
}

static void *releaser(void *obj)
{
    assert_int_equal(cuUserObjectRelease((CUuserObject)obj, 1), CUDA_SUCCESS);
    return NULL;
}

static void test_user_object(void **state)
{
    struct vgpu_session s = new_session(-1);
    Vgpu__Manual__UserObjectArgs a = VGPU__MANUAL__USER_OBJECT_ARGS__INIT;
    uint64_t obj = 0;
    pthread_t th;

    (void)state;
    a.id = 31;
    assert_int_equal(send_call(&s, VGPU_CUDA_ID_cuUserObjectCreate, &a.base, NULL),
                     CUDA_ERROR_INVALID_VALUE);            /* refcount 0 */
    a.refcount = 2;
    a.flags = CU_USER_OBJECT_NO_DESTRUCTOR_SYNC;
    assert_int_equal(send_call(&s, VGPU_CUDA_ID_cuUserObjectCreate, &a.base, &obj), 0);
    assert_int_not_equal(obj, 0);
    assert_int_equal(s.hostcb->pending, 1);
    /*
     * the server counts the session's references: no more may go than it
     * holds, though the driver (the fake, given 5 more behind the server's
     * back) would take them
     */
    assert_int_equal(cuUserObjectRetain((CUuserObject)(uintptr_t)obj, 5), CUDA_SUCCESS);
    a.object = obj;
    a.refcount = 3;
    assert_int_equal(send_call(&s, VGPU_CUDA_ID_cuUserObjectRelease, &a.base, NULL),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuUserObjectRelease((CUuserObject)(uintptr_t)obj, 5), CUDA_SUCCESS);
    a.refcount = 1;
    assert_int_equal(send_call(&s, VGPU_CUDA_ID_cuUserObjectRetain, &a.base, NULL), 0);
    assert_int_equal(send_call(&s, VGPU_CUDA_ID_cuUserObjectRelease, &a.base, NULL), 0);
    a.object = FOREIGN;
    assert_int_equal(send_call(&s, VGPU_CUDA_ID_cuUserObjectRetain, &a.base, NULL),
                     CUDA_ERROR_INVALID_HANDLE);
    a.object = obj;
    assert_int_equal(send_call(&s, VGPU_CUDA_ID_cuUserObjectRelease, &a.base, NULL), 0);
    usleep(50000);
    assert_int_equal(__atomic_load_n(&hdr()->cb_due, __ATOMIC_ACQUIRE), 0);   /* one left */
    /* the last one, past the server (a destructor run by the driver's thread) */
    assert_int_equal(pthread_create(&th, NULL, releaser, (void *)(uintptr_t)obj), 0);
    wait_due(1);
    assert_int_equal(__atomic_load_n(&hdr()->cb_id, __ATOMIC_ACQUIRE), 31);
    __atomic_store_n(&hdr()->cb_done, 1, __ATOMIC_RELEASE);
    vgpu_futex_wake(&hdr()->cb_done);
    assert_int_equal(pthread_join(th, NULL), 0);
    drain();
    assert_int_equal(s.hostcb->pending, 0);
    vgpu_hostcb_end(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_due_then_done),
        cmocka_unit_test(test_client_hangs_up),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_capture_keeps),
        cmocka_unit_test(test_host_nodes),
        cmocka_unit_test(test_user_object),
    };

    assert_int_equal(cudaStreamCreate(&made.s), cudaSuccess);
    assert_int_equal(cudaStreamCreate(&made.capturing), cudaSuccess);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
