/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host callbacks: cuLaunchHostFunc, cuStreamAddCallback, cudaLaunchHostFunc,
 * cudaStreamAddCallback (and _ptsz); host nodes, user objects' destructors
 * and async notifications the same way (below).  The guest's function never comes
 * here, only its id; the real call puts a trampoline of ours on the
 * session's stream.  When the stream reaches it, the trampoline (on the
 * driver's callback thread, never the session's) writes the id into the
 * server's callback line of the queue pair's header page, bumps cb_due
 * (a futex wake host-direct), and waits until the client's cb_done says
 * the guest's function returned; then the stream goes on.  The session's
 * thread takes no part, so a guest blocked in a synchronizing call on
 * that stream (which blocks the session's thread in the real one) still
 * gets its callback run (docs/specs/shared-memory.md, "Host callbacks").
 *
 * One callback is due at a time per session (turn): the guest runs them
 * on one thread anyway.  A trampoline stops waiting, so the GPU stream
 * never hangs for ever, when the session ends (vgpu_hostcb_end) or the
 * client's socket hangs up; every later one then returns at once.  What
 * comes from the client is checked: the call's stream is the session's,
 * its id is not 0, at most VGPU_HOSTCB_MAX wait at once (into a capturing
 * stream the call makes a host node: its record is kept, as host nodes'
 * and user objects' below);
 * cb_done is only ever compared with the value this side wrote, so a
 * "done" for a callback never due, or a stale one, just does not end the
 * wait.
 *
 * The per-session state lives as long as the process (a trampoline may
 * still be queued on a stream when the session ends; it then only reads
 * ending).
 */
#include <cuda.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "cuda_calltable.h"
#include "manual_internal.h"
#include "vgpu/apis.h"
#include "vgpu/futex.h"

#define VGPU_HOSTCB_MAX 65536          /* registered and not yet run, per session (the shim's too) */
#define WAIT_SLEEP_NS 50000000u        /* host-direct: a futex wait, then a look at the socket */
#define NAP_MIN_NS 10000
#define NAP_MAX_NS 200000              /* in a guest: naps on the shared BAR */

struct vgpu_hostcb {
    pthread_mutex_t lock;              /* ending, active, pending */
    pthread_cond_t idle;               /* active dropped to 0 */
    pthread_mutex_t turn;              /* one callback due at a time */
    struct vgpu_qp_hdr *hdr;
    bool futex;                        /* host-direct (a memfd): futexes wake both sides */
    int fd;                            /* the client's socket, for its hang-up */
    bool ending;                       /* read without the lock by waiting trampolines */
    int active;                        /* trampolines that may touch hdr */
    uint32_t seq;                      /* the last cb_due written */
    uint32_t pending;                  /* on streams, not yet run */
    uint32_t kept;                     /* records of host nodes (below) */
    struct record *kept_list;          /* ... found by id, so setting a node again reuses one */
    struct vgpu_hostcb *older;         /* the process's states, kept (below) */
};

/* Every state this process made: never freed, a trampoline may still come (a session per process). */
static struct vgpu_hostcb *states;

struct record {                        /* a trampoline's user data */
    struct vgpu_hostcb *h;
    uint64_t id;
    bool keep;                         /* a host node's: runs at every launch, never freed */
    bool fresh;                        /* kept, made by the call now being served */
    struct record *next_kept;          /* the session's kept records (one per id) */
};

static bool client_gone(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLRDHUP };

    return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL));
}

/* Until cb_done says seq returned, the session ends or the client hangs up. */
static void wait_done(struct vgpu_hostcb *h, uint32_t seq)
{
    long nap = NAP_MIN_NS;
    uint64_t next_look = 0;

    for (;;) {
        uint32_t done = __atomic_load_n(&h->hdr->cb_done, __ATOMIC_ACQUIRE);

        if (done == seq || __atomic_load_n(&h->ending, __ATOMIC_ACQUIRE))
            return;
        if (vgpu_mono_ns() >= next_look) {
            if (client_gone(h->fd)) {
                vgpu_log(VGPU_LOG_INFO, "the client hung up while its host callback was due: "
                         "its streams go on without it");
                __atomic_store_n(&h->ending, true, __ATOMIC_RELEASE);
                return;
            }
            next_look = vgpu_mono_ns() + WAIT_SLEEP_NS;
        }
        if (h->futex) {
            vgpu_futex_wait(&h->hdr->cb_done, done, WAIT_SLEEP_NS);
        } else {
            struct timespec ts = { 0, nap };

            nanosleep(&ts, NULL);
            nap = nap * 2 < NAP_MAX_NS ? nap * 2 : NAP_MAX_NS;
        }
    }
}

/* The trampolines' common part: make id due, wait for the guest, return to the stream. */
static void deliver_arg(void *data, int status, uint64_t arg)
{
    struct record *r = data;
    struct vgpu_hostcb *h = r->h;
    uint64_t id = r->id;
    bool keep = r->keep;
    uint32_t seq;

    if (!keep)
        free(r);
    pthread_mutex_lock(&h->turn);
    pthread_mutex_lock(&h->lock);
    if (!keep)
        h->pending--;
    if (h->ending) {
        pthread_mutex_unlock(&h->lock);
        pthread_mutex_unlock(&h->turn);
        return;
    }
    h->active++;
    seq = ++h->seq ? h->seq : ++h->seq;   /* never 0, the header's first value */
    pthread_mutex_unlock(&h->lock);

    __atomic_store_n(&h->hdr->cb_id, id, __ATOMIC_RELAXED);
    __atomic_store_n(&h->hdr->cb_status, status, __ATOMIC_RELAXED);
    __atomic_store_n(&h->hdr->cb_arg, arg, __ATOMIC_RELAXED);
    __atomic_store_n(&h->hdr->cb_due, seq, __ATOMIC_RELEASE);
    if (h->futex)
        vgpu_futex_wake(&h->hdr->cb_due);
    wait_done(h, seq);

    pthread_mutex_lock(&h->lock);
    if (--h->active == 0)
        pthread_cond_broadcast(&h->idle);
    pthread_mutex_unlock(&h->lock);
    pthread_mutex_unlock(&h->turn);
}

static void deliver(void *data, int status)
{
    deliver_arg(data, status, 0);
}

static void CUDA_CB tramp_host(void *data)
{
    deliver(data, 0);
}

static void CUDA_CB tramp_cu_stream(CUstream stream, CUresult status, void *data)
{
    (void)stream;
    deliver(data, (int)status);
}

static void CUDART_CB tramp_rt_stream(cudaStream_t stream, cudaError_t status, void *data)
{
    (void)stream;
    deliver(data, (int)status);
}

/* The session's state, made on its first callback; NULL without memory. */
static struct vgpu_hostcb *state_of(struct vgpu_session *s)
{
    struct vgpu_hostcb *h = s->hostcb;

    if (h)
        return h;
    h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->idle, NULL);
    pthread_mutex_init(&h->turn, NULL);
    h->hdr = s->qp.hdr;
    h->futex = !s->qp_in_bar;
    h->fd = s->fd;
    h->seq = __atomic_load_n(&h->hdr->cb_due, __ATOMIC_RELAXED);
    h->older = states;
    states = h;
    s->hostcb = h;
    return h;
}

/* The stream a call of id names: stream 0 of a _ptsz form is the per-thread one. */
static void *stream_of(uint32_t id, uint64_t stream)
{
    if (!stream && (id == VGPU_CUDA_ID_cuLaunchHostFunc_ptsz || id == VGPU_CUDA_ID_cuStreamAddCallback_ptsz))
        return CU_STREAM_PER_THREAD;
    return (void *)(uintptr_t)stream;
}

/* The real call for id on stream st: the API's own status (CUresult or cudaError_t). */
static int enqueue(uint32_t id, void *st, struct record *r)
{
    switch (id) {
    case VGPU_CUDA_ID_cuLaunchHostFunc_ptsz:
    case VGPU_CUDA_ID_cuStreamAddCallback_ptsz:
    case VGPU_CUDA_ID_cuLaunchHostFunc:
    case VGPU_CUDA_ID_cuStreamAddCallback: {
        bool plain = id == VGPU_CUDA_ID_cuLaunchHostFunc || id == VGPU_CUDA_ID_cuLaunchHostFunc_ptsz;
        void (*fn)(void) = vgpu_driver_sym(plain ? "cuLaunchHostFunc" : "cuStreamAddCallback");

        if (!fn)
            return CUDA_ERROR_NOT_INITIALIZED;
        if (plain)
            return ((__typeof__(&cuLaunchHostFunc))fn)((CUstream)st, tramp_host, r);
        return ((__typeof__(&cuStreamAddCallback))fn)((CUstream)st, tramp_cu_stream, r, 0);
    }
    case VGPU_CUDART_ID_cudaLaunchHostFunc:
        return cudaLaunchHostFunc((cudaStream_t)st, tramp_host, r);
    default:
        return cudaStreamAddCallback((cudaStream_t)st, tramp_rt_stream, r, 0);
    }
}

/*
 * A record for the guest's id: one run (counted pending until its
 * trampoline ran) or kept for a host node (counted, never freed: an
 * executable graph may run it at any later launch; one per id, so the same
 * id set on another node or executable reuses it).  CUDA_SUCCESS, or
 * CUDA_ERROR_OUT_OF_MEMORY past the limit.
 */
static int record_new(struct vgpu_session *s, uint64_t id, bool keep, struct record **out)
{
    struct vgpu_hostcb *h;
    struct record *r;
    uint32_t *count;

    if (!(h = state_of(s)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (keep) {
        pthread_mutex_lock(&h->lock);
        for (r = h->kept_list; r && r->id != id; r = r->next_kept)
            ;
        pthread_mutex_unlock(&h->lock);
        if (r) {
            r->fresh = false;
            *out = r;
            return CUDA_SUCCESS;
        }
    }
    if (!(r = malloc(sizeof(*r))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&h->lock);
    count = keep ? &h->kept : &h->pending;
    if (*count >= VGPU_HOSTCB_MAX) {
        pthread_mutex_unlock(&h->lock);
        free(r);
        vgpu_log(VGPU_LOG_WARN, "the client has %d %s; refused one more", VGPU_HOSTCB_MAX,
                 keep ? "host nodes" : "host callbacks waiting on its streams");
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    (*count)++;
    *r = (struct record){ .h = h, .id = id, .keep = keep, .fresh = keep };
    if (keep) {
        r->next_kept = h->kept_list;
        h->kept_list = r;
    }
    pthread_mutex_unlock(&h->lock);
    *out = r;
    return CUDA_SUCCESS;
}

/* A record the driver never took (a kept one only when this call made it). */
static void record_drop(struct record *r)
{
    struct vgpu_hostcb *h = r->h;

    if (r->keep && !r->fresh)
        return;                /* another node or executable may run it */
    pthread_mutex_lock(&h->lock);
    if (r->keep) {
        for (struct record **p = &h->kept_list; *p; p = &(*p)->next_kept)
            if (*p == r) {
                *p = r->next_kept;
                break;
            }
        h->kept--;
    } else {
        h->pending--;
    }
    pthread_mutex_unlock(&h->lock);
    free(r);
}

/* One handler for every id: the statuses used here have the same numbers in both APIs. */
static int serve(struct vgpu_session *s, struct vgpu_manual_call *c, uint32_t id)
{
    UNPACK(Vgpu__Manual__HostFnArgs, host_fn_args, c);
    Vgpu__Manual__HostFnRet ret = VGPU__MANUAL__HOST_FN_RET__INIT;
    struct record *r;
    bool keep;
    int st;

    st = CUDA_ERROR_NOT_SUPPORTED;       /* the guest sends these only with a queue pair */
    if (!s->qp_mem)
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!a->id)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!stream_ok(s, a->stream))
        goto out;
    /* into a capturing stream it becomes a host node, run at every launch: a kept record */
    keep = vgpu_graph_capturing(s, stream_of(id, a->stream));
    if ((st = record_new(s, a->id, keep, &r)) != CUDA_SUCCESS)
        goto out;
    st = enqueue(id, stream_of(id, a->stream), r);
    if (st) {
        record_drop(r);
        goto out;
    }
    ret.kept = keep;
    st = reply(c, &ret.base);
out:
    vgpu__manual__host_fn_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- host nodes ---- */

enum { HOST_ADD, HOST_SET, HOST_EXEC_SET };

/*
 * cuGraphAddHostNode, cuGraphHostNodeSetParams, cuGraphExecHostNodeSetParams
 * (the runtime's come through vgpu's libcuda.so.1): the node runs our
 * trampoline with a kept record of the guest's id, so each launch of the
 * graph makes the guest's function due as a stream callback is.
 */
static int host_node(struct vgpu_session *s, struct vgpu_manual_call *c, int op)
{
    static const char *const sym[] = { "cuGraphAddHostNode", "cuGraphHostNodeSetParams",
                                       "cuGraphExecHostNodeSetParams" };
    UNPACK(Vgpu__Manual__HostNodeArgs, host_node_args, c);
    Vgpu__Manual__NodeRet ret = VGPU__MANUAL__NODE_RET__INIT;
    void (*fn)(void) = vgpu_driver_sym(sym[op]);
    CUDA_HOST_NODE_PARAMS p;
    CUgraphNode node = NULL;
    struct record *r;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!fn || !s->qp_mem)
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!a->id)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if ((op == HOST_EXEC_SET && !a->exec) ||
        !vgpu_graph_node_handles_ok(s, a->graph, a->deps, a->n_deps, a->node,
                                    op == HOST_EXEC_SET ? a->exec : 0, op == HOST_ADD))
        goto out;
    if ((st = record_new(s, a->id, true, &r)) != CUDA_SUCCESS)
        goto out;
    p = (CUDA_HOST_NODE_PARAMS){ .fn = tramp_host, .userData = r };
    switch (op) {
    case HOST_ADD:
        st = ((__typeof__(&cuGraphAddHostNode))fn)(&node, (CUgraph)(uintptr_t)a->graph,
                                                   (const CUgraphNode *)(const void *)a->deps,
                                                   a->n_deps, &p);
        break;
    case HOST_SET:
        st = ((__typeof__(&cuGraphHostNodeSetParams))fn)((CUgraphNode)(uintptr_t)a->node, &p);
        break;
    default:
        st = ((__typeof__(&cuGraphExecHostNodeSetParams))fn)((CUgraphExec)(uintptr_t)a->exec,
                                                              (CUgraphNode)(uintptr_t)a->node, &p);
        break;
    }
    if (st != CUDA_SUCCESS) {
        record_drop(r);
        goto out;
    }
    if (node) {
        ret.node = (uint64_t)(uintptr_t)node;
        if (vgpu_graph_node_made(s, ret.node)) {
            st = CUDA_ERROR_OUT_OF_MEMORY;
            goto out;
        }
    }
    st = reply(c, &ret.base);
out:
    vgpu__manual__host_node_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_host_node_add(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return host_node(s, c, HOST_ADD);
}

static int h_host_node_set(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return host_node(s, c, HOST_SET);
}

static int h_host_node_exec_set(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return host_node(s, c, HOST_EXEC_SET);
}

/* cuGraphHostNodeGetParams: the guest's id the node runs (a node of ours runs our trampoline). */
static int h_host_node_get(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__GraphArgs, graph_args, c);
    Vgpu__Manual__HostNodeRet ret = VGPU__MANUAL__HOST_NODE_RET__INIT;
    __typeof__(&cuGraphHostNodeGetParams) get =
        (__typeof__(&cuGraphHostNodeGetParams))(void *)vgpu_driver_sym("cuGraphHostNodeGetParams");
    CUDA_HOST_NODE_PARAMS p = { 0 };
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!get)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!vgpu_handle_known(s, vgpu_cuda_kind(VGPU_CUDA_H_GRAPH_NODE), a->graph))
        goto out;
    if ((st = get((CUgraphNode)(uintptr_t)a->graph, &p)) != CUDA_SUCCESS)
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (p.fn != tramp_host || !p.userData)
        goto out;
    ret.id = ((struct record *)p.userData)->id;
    st = reply(c, &ret.base);
out:
    vgpu__manual__graph_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- user objects ---- */

/*
 * The references to each user object, as the session holds them and as
 * each of its graphs does: CUDA leaves releasing references one does not
 * hold, or using an object after its last release, undefined (the driver
 * may touch freed memory), so the server refuses both.  A retain needs a
 * reference held (and keeps counts below 2^31); a release or a move to a
 * graph no more than are held; a graph's release no more than that graph
 * holds.  Graphs destroyed take their references with them.  An object
 * nobody here references any more leaves the session's handles.
 */
struct uref {
    uint64_t graph;
    uint64_t n;
    struct uref *next;
};

struct uobj {
    uint64_t obj;
    uint64_t held;             /* the session's own */
    struct uref *graphs;
    struct uobj *next;
};

static struct uobj *uobjs;     /* one session per process */

#define UOBJ_MAX_REFS 0x7fffffffu

static struct uobj *uobj_find(uint64_t obj)
{
    for (struct uobj *u = uobjs; u; u = u->next)
        if (u->obj == obj)
            return u;
    return NULL;
}

static struct uref *uref_of(struct uobj *u, uint64_t graph, bool make)
{
    struct uref *r;

    for (r = u->graphs; r; r = r->next)
        if (r->graph == graph)
            return r;
    if (!make || !(r = calloc(1, sizeof(*r))))
        return NULL;
    *r = (struct uref){ .graph = graph, .next = u->graphs };
    u->graphs = r;
    return r;
}

/* Drops graph references that reached 0, and the object when nothing references it. */
static void uobj_tidy(struct vgpu_session *s, struct uobj *u)
{
    for (struct uref **p = &u->graphs; *p;) {
        struct uref *r = *p;

        if (r->n) {
            p = &r->next;
            continue;
        }
        *p = r->next;
        free(r);
    }
    if (u->held || u->graphs)
        return;
    for (struct uobj **p = &uobjs; *p; p = &(*p)->next)
        if (*p == u) {
            *p = u->next;
            break;
        }
    if (s)
        vgpu_handle_remove(s, vgpu_cuda_kind(VGPU_CUDA_H_USER_OBJECT), u->obj);
    free(u);
}

void vgpu_user_objects_graph_gone(uint64_t graph)
{
    for (struct uobj *u = uobjs, *next; u; u = next) {
        struct uref *r = uref_of(u, graph, false);

        next = u->next;
        if (r) {
            r->n = 0;
            uobj_tidy(NULL, u);        /* its handle stays: the object may live on in executables */
        }
    }
}


/*
 * cuUserObjectCreate (the runtime's comes through vgpu's libcuda.so.1): the
 * destructor is our trampoline with a one-run record of the guest's id, so
 * when the last reference goes the driver's thread makes it due as a
 * stream callback is.  The object becomes the session's.
 */
static int h_user_object_create(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__UserObjectArgs, user_object_args, c);
    Vgpu__Manual__NodeRet ret = VGPU__MANUAL__NODE_RET__INIT;
    __typeof__(&cuUserObjectCreate) create =
        (__typeof__(&cuUserObjectCreate))(void *)vgpu_driver_sym("cuUserObjectCreate");
    CUuserObject obj = NULL;
    struct uobj *u = NULL;
    struct record *r;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!create || !s->qp_mem)
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!a->id || !a->refcount || a->refcount > UOBJ_MAX_REFS)
        goto out;
    if ((st = record_new(s, a->id, false, &r)) != CUDA_SUCCESS)
        goto out;
    if ((st = create(&obj, r, tramp_host, a->refcount, a->flags)) != CUDA_SUCCESS) {
        record_drop(r);
        goto out;
    }
    ret.node = (uint64_t)(uintptr_t)obj;
    if (!(u = calloc(1, sizeof(*u))) ||
        vgpu_handle_add(s, vgpu_cuda_kind(VGPU_CUDA_H_USER_OBJECT), ret.node)) {
        free(u);
        st = CUDA_ERROR_OUT_OF_MEMORY;  /* the object stays the driver's; its record waits */
        goto out;
    }
    *u = (struct uobj){ .obj = ret.node, .held = a->refcount, .next = uobjs };
    uobjs = u;
    st = reply(c, &ret.base);
out:
    vgpu__manual__user_object_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

enum uobj_op { UOBJ_RETAIN, UOBJ_RELEASE, UOBJ_GRAPH_RETAIN, UOBJ_GRAPH_RELEASE };

static int user_object_refs(struct vgpu_session *s, struct vgpu_manual_call *c, enum uobj_op op)
{
    static const char *const sym[] = { "cuUserObjectRetain", "cuUserObjectRelease",
                                       "cuGraphRetainUserObject", "cuGraphReleaseUserObject" };
    UNPACK(Vgpu__Manual__UserObjectArgs, user_object_args, c);
    void (*fn)(void) = vgpu_driver_sym(sym[op]);
    CUuserObject obj = (CUuserObject)(uintptr_t)a->object;
    CUgraph g = (CUgraph)(uintptr_t)a->graph;
    struct uobj *u = uobj_find(a->object);
    bool graph_op = op >= UOBJ_GRAPH_RETAIN, move = a->flags & CU_GRAPH_USER_OBJECT_MOVE;
    struct uref *r = NULL;
    uint64_t n = a->refcount;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!fn)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!u || !vgpu_handle_known(s, vgpu_cuda_kind(VGPU_CUDA_H_USER_OBJECT), a->object) ||
        (graph_op && !vgpu_handle_known(s, vgpu_cuda_kind(VGPU_CUDA_H_GRAPH), a->graph)))
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!n || (graph_op && !(r = uref_of(u, a->graph, op == UOBJ_GRAPH_RETAIN))))
        goto out;
    switch (op) {
    case UOBJ_RETAIN:
        if (!u->held || u->held + n > UOBJ_MAX_REFS)
            goto refused;
        st = ((__typeof__(&cuUserObjectRetain))fn)(obj, (unsigned)n);
        if (st == CUDA_SUCCESS)
            u->held += n;
        break;
    case UOBJ_RELEASE:
        if (n > u->held)
            goto refused;
        st = ((__typeof__(&cuUserObjectRelease))fn)(obj, (unsigned)n);
        if (st == CUDA_SUCCESS)
            u->held -= n;
        break;
    case UOBJ_GRAPH_RETAIN:
        if ((a->flags & ~(uint32_t)CU_GRAPH_USER_OBJECT_MOVE) || (move ? n > u->held : !u->held) ||
            r->n + n > UOBJ_MAX_REFS)
            goto refused;
        st = ((__typeof__(&cuGraphRetainUserObject))fn)(g, obj, (unsigned)n, a->flags);
        if (st == CUDA_SUCCESS) {
            r->n += n;
            if (move)
                u->held -= n;
        }
        break;
    default:
        if (n > r->n)
            goto refused;
        st = ((__typeof__(&cuGraphReleaseUserObject))fn)(g, obj, (unsigned)n);
        if (st == CUDA_SUCCESS)
            r->n -= n;
        break;
    }
    uobj_tidy(s, u);
    goto out;
refused:
    vgpu_log(VGPU_LOG_INFO, "%s(%u) refused: the session (or that graph) holds %llu references "
             "to the user object", sym[op], a->refcount,
             (unsigned long long)(graph_op && op == UOBJ_GRAPH_RELEASE ? r->n : u->held));
    uobj_tidy(s, u);
out:
    vgpu__manual__user_object_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_user_object_retain(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return user_object_refs(s, c, UOBJ_RETAIN);
}

static int h_user_object_release(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return user_object_refs(s, c, UOBJ_RELEASE);
}

static int h_graph_retain_user_object(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return user_object_refs(s, c, UOBJ_GRAPH_RETAIN);
}

static int h_graph_release_user_object(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return user_object_refs(s, c, UOBJ_GRAPH_RELEASE);
}

/*
 * ---- async notifications ----
 *
 * cuDeviceRegisterAsyncNotification (the runtime's comes through vgpu's
 * libcuda.so.1): the driver calls our trampoline on a thread of its own,
 * whenever it has something to say; the guest's function is made due as a
 * host callback is, with the notification's type as the status and its
 * figure (bytes over budget) in cb_arg.  The registration's record is kept
 * (a notification may come at any time until the driver has forgotten
 * it, at most VGPU_HOSTCB_MAX of a session's kept records); the session
 * lists its live registrations (at most NOTIFY_MAX), so only its own can
 * be unregistered.
 */
#define NOTIFY_MAX 64           /* registrations a session holds at once */

struct notify {
    struct notify *next;
    CUasyncCallbackHandle handle;    /* the driver's */
    int device;
};

static void CUDA_CB tramp_notify(CUasyncNotificationInfo *info, void *data, CUasyncCallbackHandle h)
{
    (void)h;
    if (info)
        deliver_arg(data, (int)info->type, info->info.overBudget.bytesOverBudget);
}

static struct notify **notify_find(struct vgpu_session *s, uint64_t handle, int device)
{
    struct notify **p;

    for (p = &s->notify; *p; p = &(*p)->next)
        if ((uint64_t)(uintptr_t)(*p)->handle == handle && (*p)->device == device)
            return p;
    return NULL;
}

static int h_notify_register(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__AsyncNotifyArgs, async_notify_args, c);
    Vgpu__Manual__AsyncNotifyRet ret = VGPU__MANUAL__ASYNC_NOTIFY_RET__INIT;
    VGPU_DRIVER_SYM(reg, cuDeviceRegisterAsyncNotification);
    VGPU_DRIVER_SYM(unreg, cuDeviceUnregisterAsyncNotification);
    CUasyncCallbackHandle h = NULL;
    struct notify *n = NULL;
    struct record *r;
    int live = 0;
    int st = CUDA_ERROR_NOT_SUPPORTED;  /* the guest sends it only with a queue pair */

    if (!reg || !unreg || !s->qp_mem)
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!a->id)
        goto out;
    st = CUDA_ERROR_OUT_OF_MEMORY;
    for (struct notify *m = s->notify; m; m = m->next)
        if (++live >= NOTIFY_MAX) {
            vgpu_log(VGPU_LOG_WARN, "the client has %d async notifications registered; refused "
                     "one more", NOTIFY_MAX);
            goto out;
        }
    if (!(n = calloc(1, sizeof(*n))))
        goto out;
    if ((st = record_new(s, a->id, true, &r)) != CUDA_SUCCESS)
        goto out;
    /* the device ordinal is the driver's to check (CUDA_ERROR_INVALID_DEVICE) */
    st = reg((CUdevice)a->device, tramp_notify, r, &h);
    if (st != CUDA_SUCCESS) {
        record_drop(r);
        goto out;
    }
    ret.handle = (uint64_t)(uintptr_t)h;
    if ((st = reply(c, &ret.base)) != CUDA_SUCCESS) {
        unreg((CUdevice)a->device, h);
        goto out;          /* the record stays: the driver may have begun a call with it */
    }
    n->handle = h;
    n->device = a->device;
    n->next = s->notify;
    s->notify = n;
    n = NULL;
out:
    free(n);
    vgpu__manual__async_notify_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* The session's own registrations only: any other handle is refused before the driver sees it. */
static int h_notify_unregister(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__AsyncNotifyArgs, async_notify_args, c);
    VGPU_DRIVER_SYM(unreg, cuDeviceUnregisterAsyncNotification);
    struct notify **p, *n;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!unreg)
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!(p = notify_find(s, a->handle, a->device)))
        goto out;
    n = *p;
    st = unreg((CUdevice)n->device, n->handle);
    if (st == CUDA_SUCCESS) {
        *p = n->next;
        free(n);        /* its record stays: a notification may be on its way */
    }
out:
    vgpu__manual__async_notify_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

#define HANDLER(api, name) \
    static int h_##name(struct vgpu_session *s, struct vgpu_manual_call *c) \
    { return serve(s, c, VGPU_##api##_ID_##name); }
HANDLER(CUDA, cuLaunchHostFunc)
HANDLER(CUDA, cuLaunchHostFunc_ptsz)
HANDLER(CUDA, cuStreamAddCallback)
HANDLER(CUDA, cuStreamAddCallback_ptsz)
HANDLER(CUDART, cudaLaunchHostFunc)
HANDLER(CUDART, cudaStreamAddCallback)

vgpu_manual_fn vgpu_hostcb_find(uint32_t id)
{
    switch (id) {
    case VGPU_CUDA_ID_cuLaunchHostFunc: return h_cuLaunchHostFunc;
    case VGPU_CUDA_ID_cuLaunchHostFunc_ptsz: return h_cuLaunchHostFunc_ptsz;
    case VGPU_CUDA_ID_cuStreamAddCallback: return h_cuStreamAddCallback;
    case VGPU_CUDA_ID_cuStreamAddCallback_ptsz: return h_cuStreamAddCallback_ptsz;
    case VGPU_CUDART_ID_cudaLaunchHostFunc: return h_cudaLaunchHostFunc;
    case VGPU_CUDART_ID_cudaStreamAddCallback: return h_cudaStreamAddCallback;
    case VGPU_CUDA_ID_cuGraphAddHostNode: return h_host_node_add;
    case VGPU_CUDA_ID_cuGraphHostNodeSetParams: return h_host_node_set;
    case VGPU_CUDA_ID_cuGraphExecHostNodeSetParams: return h_host_node_exec_set;
    case VGPU_CUDA_ID_cuGraphHostNodeGetParams: return h_host_node_get;
    case VGPU_CUDA_ID_cuUserObjectCreate: return h_user_object_create;
    case VGPU_CUDA_ID_cuUserObjectRetain: return h_user_object_retain;
    case VGPU_CUDA_ID_cuUserObjectRelease: return h_user_object_release;
    case VGPU_CUDA_ID_cuGraphRetainUserObject: return h_graph_retain_user_object;
    case VGPU_CUDA_ID_cuGraphReleaseUserObject: return h_graph_release_user_object;
    case VGPU_CUDA_ID_cuDeviceRegisterAsyncNotification: return h_notify_register;
    case VGPU_CUDA_ID_cuDeviceUnregisterAsyncNotification: return h_notify_unregister;
    default: return NULL;
    }
}

void vgpu_hostcb_end(struct vgpu_session *s)
{
    struct vgpu_hostcb *h = s->hostcb;

    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    __atomic_store_n(&h->ending, true, __ATOMIC_RELEASE);
    if (h->futex)
        vgpu_futex_wake(&h->hdr->cb_done);
    while (h->active)
        pthread_cond_wait(&h->idle, &h->lock);
    if (h->pending)
        vgpu_log(VGPU_LOG_INFO, "%u host callbacks were still on streams when the session ended; "
                 "they will not run", h->pending);
    pthread_mutex_unlock(&h->lock);
}
