/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Copies: between host and device, device and device, peers and symbols.
 * Bytes move as raw payload segments in pieces of at most VGPU_SHIM_CHUNK,
 * or, where memory is shared with the server, not at all: a page-locked
 * buffer shared as a region is named by its region and offset, and
 * pageable memory goes through the staging region (a memfd host-direct, a
 * slot of the shared BAR in a guest), filled and emptied by helper threads.
 * Which addresses are device memory and which host buffers are shared is
 * memory.c's.
 */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../shim_internal.h"
#include "cudart_calltable.h"
#include "manual.pb-c.h"

/* ---- copies ---- */

static Vgpu__Manual__Direction direction(void *dst, const void *src, enum cudaMemcpyKind kind)
{
    bool d = dst && vgpu_shim_is_device(dst), s = src && vgpu_shim_is_device(src);

    switch (kind) {
    case cudaMemcpyHostToHost: return VGPU__MANUAL__DIRECTION__DIR_NONE;
    case cudaMemcpyHostToDevice: return VGPU__MANUAL__DIRECTION__DIR_H2D;
    case cudaMemcpyDeviceToHost: return VGPU__MANUAL__DIRECTION__DIR_D2H;
    case cudaMemcpyDeviceToDevice: return VGPU__MANUAL__DIRECTION__DIR_D2D;
    case cudaMemcpyDefault:
        return d && s ? VGPU__MANUAL__DIRECTION__DIR_D2D :
               d ? VGPU__MANUAL__DIRECTION__DIR_H2D :
               s ? VGPU__MANUAL__DIRECTION__DIR_D2H : VGPU__MANUAL__DIRECTION__DIR_NONE;
    default:
        return (Vgpu__Manual__Direction)-1;
    }
}

/*
 * The staging region: shared memory for copies from and to pageable memory
 * (host-direct over a unix socket).  A copy goes through it in pieces of
 * its size: the shim copies the bytes in or out, the server DMAs from or to
 * it, and no bytes travel in frames.  One copy uses it at a time.
 */
static pthread_mutex_t staging_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *staging;
static size_t staging_size;
static int staging_state;            /* 0 untried, 1 ready, -1 not available */

static bool staging_ready(void)
{
    if (staging_state == 0) {
        const char *v = getenv("VGPU_SHM_MB");
        size_t mb = v && *v ? strtoul(v, NULL, 10) : 64;

        staging_state = -1;
        if (mb && vgpu_shim_can_share()) {
            staging_size = mb << 20;
            staging = vgpu_shim_region_new(VGPU_SHIM_STAGING_REGION, staging_size);
        } else if (mb) {
            /* in a guest: a slot of the vgpu-stub device's shared BAR, if it has one */
            staging = vgpu_shim_bar_region(VGPU_SHIM_STAGING_REGION, &staging_size);
        }
        if (staging)
            staging_state = 1;
    }
    return staging_state == 1;
}

/*
 * fork(): the child's connection is new, and regions belong to the parent's
 * session.  The child keeps each page-locked buffer at its address but as
 * private memory with the same bytes (a shared mapping would let parent and
 * child write into each other's buffers), and copies carry bytes again.
 * The locks are held across fork so they are consistent in both.
 */
static pthread_mutex_t par_lock;
static int par_threads = -1;          /* copy helper threads, -1 until first use */

static void memory_atfork_prepare(void)
{
    pthread_mutex_lock(&staging_lock);
    pthread_mutex_lock(&par_lock);
    vgpu_shim_memory_lock();
}

static void memory_atfork_parent(void)
{
    vgpu_shim_memory_unlock();
    pthread_mutex_unlock(&par_lock);
    pthread_mutex_unlock(&staging_lock);
}

static void memory_atfork_child(void)
{
    staging_state = 0;
    staging = NULL;
    par_threads = -1;           /* the helper threads are not in the child */
    vgpu_shim_memory_forked();
    memory_atfork_parent();
}

__attribute__((constructor)) static void memory_init(void)
{
    pthread_atfork(memory_atfork_prepare, memory_atfork_parent, memory_atfork_child);
}

/*
 * Copies into and out of the staging region are the host side of a
 * pageable copy; one thread's memcpy (about 10 GB/s) would bound it, so
 * large ones are split over helper threads (VGPU_COPY_THREADS, default 4,
 * 1 = none) started on first use.  par_start() hands a copy to the helpers
 * and returns, so the calling thread can have the server DMA the other half
 * of the staging region meanwhile; par_wait() waits for them.
 */
#define PAR_MIN ((size_t)4 << 20)
#define PAR_MAX 16

static pthread_mutex_t par_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t par_go = PTHREAD_COND_INITIALIZER, par_done = PTHREAD_COND_INITIALIZER;
static int par_pending;
static unsigned par_gen;
static uint8_t *par_dst;
static const uint8_t *par_src;
static size_t par_n;

static void par_part(int k, int parts)
{
    size_t per = (par_n / (size_t)parts + 4095) & ~(size_t)4095;
    size_t off = per * (size_t)k;

    if (off < par_n)
        memcpy(par_dst + off, par_src + off, par_n - off < per ? par_n - off : per);
}

static void *par_worker(void *arg)
{
    int k = (int)(intptr_t)arg;
    unsigned seen = 0;

    pthread_mutex_lock(&par_lock);
    for (;;) {
        while (par_gen == seen)
            pthread_cond_wait(&par_go, &par_lock);
        seen = par_gen;
        pthread_mutex_unlock(&par_lock);
        par_part(k, par_threads);
        pthread_mutex_lock(&par_lock);
        if (--par_pending == 0)
            pthread_cond_signal(&par_done);
    }
    return NULL;
}

static void par_init(void)
{
    const char *v = getenv("VGPU_COPY_THREADS");
    int want = v && *v ? atoi(v) : 4;
    sigset_t all, old;

    par_threads = 0;
    if (want <= 1)
        return;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < want && i < PAR_MAX; i++) {
        pthread_t t;

        if (pthread_create(&t, NULL, par_worker, (void *)(intptr_t)i))
            break;
        pthread_detach(t);
        par_threads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Starts copying n bytes; returns true when helpers took it, false when it was done here. */
static bool par_start(void *dst, const void *src, size_t n)
{
    if (par_threads < 0)
        par_init();
    if (n < PAR_MIN || par_threads == 0) {
        memcpy(dst, src, n);
        return false;
    }
    pthread_mutex_lock(&par_lock);
    par_dst = dst;
    par_src = src;
    par_n = n;
    par_pending = par_threads;
    par_gen++;
    pthread_cond_broadcast(&par_go);
    pthread_mutex_unlock(&par_lock);
    return true;
}

static void par_wait(void)
{
    pthread_mutex_lock(&par_lock);
    while (par_pending)
        pthread_cond_wait(&par_done, &par_lock);
    pthread_mutex_unlock(&par_lock);
}

static int copy_call(uint32_t id, const char *name, Vgpu__Manual__CopyArgs *a,
                     const void *in, void *out, size_t bytes)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    vgpu_shim_req_bytes(&req, in, out, bytes, a->async);
    st = vgpu_shim_call(id, name, &a->base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    return st;
}

/*
 * A pageable copy through the staging region, in two halves taking turns:
 * while the server DMAs one half, the helper threads fill (H2D) or empty
 * (D2H) the other.  Synchronous on the server's side, since the halves are
 * reused.  staging_lock held.
 */
static int staged_copy(Vgpu__Manual__CopyArgs *a, void *dst, const void *src, size_t count,
                       bool h2d)
{
    size_t half = staging_size / 2, done = 0;
    int st = cudaSuccess, cur = 0;
    bool busy = false;                  /* helpers are working on the other half */

    a->async = false;
    a->region = VGPU_SHIM_STAGING_REGION;
    if (h2d)
        busy = par_start(staging, src, count < half ? count : half);
    else {
        /* the first piece comes in before anything can go out */
        a->count = count < half ? count : half;
        a->region_offset = 0;
        a->dst = (uint64_t)(uintptr_t)dst;
        a->src = (uint64_t)(uintptr_t)src;
        st = copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy", a, NULL, NULL, 0);
    }
    while (st == cudaSuccess && done < count) {
        size_t n = count - done < half ? count - done : half;
        size_t next = count - done - n < half ? count - done - n : half;
        uint8_t *here = staging + (size_t)cur * half, *there = staging + (size_t)(1 - cur) * half;

        if (h2d) {
            /* piece done..done+n is in here once the helpers finish */
            if (busy)
                par_wait();
            busy = next ? par_start(there, (const uint8_t *)src + done + n, next) : false;
            a->count = n;
            a->region_offset = (uint64_t)cur * half;
            a->dst = (uint64_t)(uintptr_t)dst + done;
            st = copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy", a, NULL, NULL, 0);
        } else {
            /* piece done..done+n is in here: empty it while the next comes in there */
            busy = par_start((uint8_t *)dst + done, here, n);
            if (next) {
                a->count = next;
                a->region_offset = (uint64_t)(1 - cur) * half;
                a->src = (uint64_t)(uintptr_t)src + done + n;
                st = copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy", a, NULL, NULL, 0);
            }
            if (busy)
                par_wait();
            busy = false;
        }
        done += n;
        cur = 1 - cur;
    }
    if (busy)
        par_wait();
    return st;
}

static int copy1d(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                  cudaStream_t stream, bool async)
{
    Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;
    Vgpu__Manual__Direction dir = direction(dst, src, kind);
    int st = cudaSuccess;

    if ((int)dir < 0)
        return vgpu_shim_status(cudaErrorInvalidMemcpyDirection);
    if (count == 0)
        return cudaSuccess;
    if (dir == VGPU__MANUAL__DIRECTION__DIR_NONE) {
        vgpu_shim_connect();
        if (vgpu_shim_init_status() != cudaSuccess)
            return vgpu_shim_status(vgpu_shim_init_status());
        memmove(dst, src, count);
        return cudaSuccess;
    }
    a.dir = dir;
    a.stream = (uint64_t)(uintptr_t)stream;
    a.async = async;
    if (dir == VGPU__MANUAL__DIRECTION__DIR_D2D) {
        a.dst = (uint64_t)(uintptr_t)dst;
        a.src = (uint64_t)(uintptr_t)src;
        a.count = count;
        return copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy", &a, NULL, NULL, 0);
    }
    if (count >= VGPU_SHIM_SHARE_MIN) {
        bool h2d = dir == VGPU__MANUAL__DIRECTION__DIR_H2D;
        const void *hp = h2d ? src : dst;
        uint64_t roff = 0;

        a.dst = (uint64_t)(uintptr_t)dst;
        a.src = (uint64_t)(uintptr_t)src;
        a.count = count;
        /* page-locked memory shared with the server: it DMAs, nothing is copied here */
        if ((a.region = vgpu_shim_host_region(hp, count, &roff))) {
            a.region_offset = roff;
            return copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy", &a, NULL, NULL, 0);
        }
        pthread_mutex_lock(&staging_lock);
        if (staging_ready()) {
            st = staged_copy(&a, dst, src, count, h2d);
            pthread_mutex_unlock(&staging_lock);
            return st;
        }
        pthread_mutex_unlock(&staging_lock);
        a.region = 0;
    }
    for (size_t off = 0; off < count && st == cudaSuccess; off += VGPU_SHIM_CHUNK) {
        size_t n = count - off < VGPU_SHIM_CHUNK ? count - off : VGPU_SHIM_CHUNK;

        a.dst = (uint64_t)(uintptr_t)dst + (dir == VGPU__MANUAL__DIRECTION__DIR_H2D ? off : 0);
        a.src = (uint64_t)(uintptr_t)src + (dir == VGPU__MANUAL__DIRECTION__DIR_D2H ? off : 0);
        a.count = n;
        if (dir == VGPU__MANUAL__DIRECTION__DIR_H2D)
            st = copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy", &a, (const uint8_t *)src + off, NULL, n);
        else
            st = copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy", &a, NULL, (uint8_t *)dst + off, n);
    }
    return st;
}

VGPU_EXPORT cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    return (cudaError_t)copy1d(dst, src, count, kind, NULL, false);
}

VGPU_EXPORT cudaError_t cudaMemcpy_ptds(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    return (cudaError_t)copy1d(dst, src, count, kind, cudaStreamPerThread, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count,
                                        enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return (cudaError_t)copy1d(dst, src, count, kind, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpyAsync_ptsz(void *dst, const void *src, size_t count,
                                             enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return (cudaError_t)copy1d(dst, src, count, kind, stream ? stream : cudaStreamPerThread, true);
}

static int copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                  size_t height, enum cudaMemcpyKind kind, cudaStream_t stream, bool async)
{
    Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;
    Vgpu__Manual__Direction dir = direction(dst, src, kind);
    size_t rows_per, done = 0;
    uint8_t *buf;
    int st = cudaSuccess;

    if ((int)dir < 0)
        return vgpu_shim_status(cudaErrorInvalidMemcpyDirection);
    if (width > dpitch || width > spitch)
        return vgpu_shim_status(cudaErrorInvalidPitchValue);
    if (!width || !height)
        return cudaSuccess;
    if (dir == VGPU__MANUAL__DIRECTION__DIR_NONE) {
        for (size_t y = 0; y < height; y++)
            memmove((uint8_t *)dst + y * dpitch, (const uint8_t *)src + y * spitch, width);
        return cudaSuccess;
    }
    if (width > VGPU_SHIM_CHUNK && dir != VGPU__MANUAL__DIRECTION__DIR_D2D) {
        /* rows wider than a frame carries: each row is a 1D copy in pieces */
        for (size_t y = 0; y < height && st == cudaSuccess; y++)
            st = copy1d((uint8_t *)dst + y * dpitch, (const uint8_t *)src + y * spitch, width,
                        kind, stream, async);
        return st;
    }
    a.dir = dir;
    a.is_2d = true;
    a.count = width;
    a.dpitch = dpitch;
    a.spitch = spitch;
    a.stream = (uint64_t)(uintptr_t)stream;
    a.async = async;
    if (dir == VGPU__MANUAL__DIRECTION__DIR_D2D) {
        a.dst = (uint64_t)(uintptr_t)dst;
        a.src = (uint64_t)(uintptr_t)src;
        a.height = height;
        return copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy2D", &a, NULL, NULL, 0);
    }
    /* host rows are packed tightly on the wire: width bytes each */
    rows_per = VGPU_SHIM_CHUNK / width ? VGPU_SHIM_CHUNK / width : 1;
    buf = malloc((rows_per < height ? rows_per : height) * width);
    if (!buf)
        return vgpu_shim_status(cudaErrorMemoryAllocation);
    while (done < height && st == cudaSuccess) {
        size_t rows = height - done < rows_per ? height - done : rows_per;

        a.height = rows;
        if (dir == VGPU__MANUAL__DIRECTION__DIR_H2D) {
            for (size_t y = 0; y < rows; y++)
                memcpy(buf + y * width, (const uint8_t *)src + (done + y) * spitch, width);
            a.dst = (uint64_t)(uintptr_t)dst + done * dpitch;
            a.spitch = width;
            st = copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy2D", &a, buf, NULL, rows * width);
        } else {
            a.src = (uint64_t)(uintptr_t)src + done * spitch;
            a.dpitch = width;
            st = copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy2D", &a, NULL, buf, rows * width);
            for (size_t y = 0; st == cudaSuccess && y < rows; y++)
                memcpy((uint8_t *)dst + (done + y) * dpitch, buf + y * width, width);
        }
        done += rows;
    }
    free(buf);
    return st;
}

VGPU_EXPORT cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch,
                                     size_t width, size_t height, enum cudaMemcpyKind kind)
{
    return (cudaError_t)copy2d(dst, dpitch, src, spitch, width, height, kind, NULL, false);
}

VGPU_EXPORT cudaError_t cudaMemcpy2D_ptds(void *dst, size_t dpitch, const void *src, size_t spitch,
                                          size_t width, size_t height, enum cudaMemcpyKind kind)
{
    return (cudaError_t)copy2d(dst, dpitch, src, spitch, width, height, kind, cudaStreamPerThread, false);
}

VGPU_EXPORT cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                                          size_t width, size_t height, enum cudaMemcpyKind kind,
                                          cudaStream_t stream)
{
    return (cudaError_t)copy2d(dst, dpitch, src, spitch, width, height, kind, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpy2DAsync_ptsz(void *dst, size_t dpitch, const void *src,
                                               size_t spitch, size_t width, size_t height,
                                               enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return (cudaError_t)copy2d(dst, dpitch, src, spitch, width, height, kind,
                               stream ? stream : cudaStreamPerThread, true);
}

static int peer(void *dst, int dstDevice, const void *src, int srcDevice, size_t count,
                cudaStream_t stream, bool async)
{
    Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;

    a.dir = VGPU__MANUAL__DIRECTION__DIR_D2D;
    a.peer = true;
    a.dst = (uint64_t)(uintptr_t)dst;
    a.src = (uint64_t)(uintptr_t)src;
    a.count = count;
    a.dst_device = dstDevice;
    a.src_device = srcDevice;
    a.stream = (uint64_t)(uintptr_t)stream;
    a.async = async;
    return copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpyPeer", &a, NULL, NULL, 0);
}

VGPU_EXPORT cudaError_t cudaMemcpyPeer(void *dst, int dstDevice, const void *src, int srcDevice, size_t count)
{
    return (cudaError_t)peer(dst, dstDevice, src, srcDevice, count, NULL, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyPeerAsync(void *dst, int dstDevice, const void *src, int srcDevice,
                                            size_t count, cudaStream_t stream)
{
    return (cudaError_t)peer(dst, dstDevice, src, srcDevice, count, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpyPeerAsync_ptsz(void *dst, int dstDevice, const void *src,
                                                 int srcDevice, size_t count, cudaStream_t stream)
{
    return (cudaError_t)peer(dst, dstDevice, src, srcDevice, count, stream, true);
}
