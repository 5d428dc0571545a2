/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host callbacks: cuLaunchHostFunc, cuStreamAddCallback, cudaLaunchHostFunc,
 * cudaStreamAddCallback (and _ptsz).  The guest's function never comes
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
 * its id is not 0, it is not capturing (a graph's host node would run the
 * function at every launch), at most VGPU_HOSTCB_MAX wait at once;
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
    struct vgpu_hostcb *older;         /* the process's states, kept (below) */
};

/* Every state this process made: never freed, a trampoline may still come (a session per process). */
static struct vgpu_hostcb *states;

struct record {                        /* a trampoline's user data */
    struct vgpu_hostcb *h;
    uint64_t id;
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
static void deliver(void *data, int status)
{
    struct record *r = data;
    struct vgpu_hostcb *h = r->h;
    uint64_t id = r->id;
    uint32_t seq;

    free(r);
    pthread_mutex_lock(&h->turn);
    pthread_mutex_lock(&h->lock);
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

/* One handler for every id: the statuses used here have the same numbers in both APIs. */
static int serve(struct vgpu_session *s, struct vgpu_manual_call *c, uint32_t id)
{
    UNPACK(Vgpu__Manual__HostFnArgs, host_fn_args, c);
    struct vgpu_hostcb *h;
    struct record *r = NULL;
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
    /* a host node would run the guest's function at every launch; a record serves one run */
    st = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    if (vgpu_graph_capturing(s, stream_of(id, a->stream))) {
        vgpu_log(VGPU_LOG_WARN, "a host callback into a capturing stream cannot become a graph's "
                 "host node through vgpu: refused (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED); "
                 "add it to the stream after the graph's launch instead");
        goto out;
    }
    st = CUDA_ERROR_OUT_OF_MEMORY;
    if (!(h = state_of(s)) || !(r = malloc(sizeof(*r))))
        goto out;
    pthread_mutex_lock(&h->lock);
    if (h->pending >= VGPU_HOSTCB_MAX) {
        pthread_mutex_unlock(&h->lock);
        vgpu_log(VGPU_LOG_WARN, "the client has %d host callbacks waiting on its streams; "
                 "refused one more", VGPU_HOSTCB_MAX);
        goto out;
    }
    h->pending++;
    pthread_mutex_unlock(&h->lock);
    *r = (struct record){ .h = h, .id = a->id };
    st = enqueue(id, stream_of(id, a->stream), r);
    if (st) {
        pthread_mutex_lock(&h->lock);
        h->pending--;
        pthread_mutex_unlock(&h->lock);
    } else {
        r = NULL;                        /* the trampoline's now */
    }
out:
    free(r);
    vgpu__manual__host_fn_args__free_unpacked(a, &unpack_alloc_);
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
