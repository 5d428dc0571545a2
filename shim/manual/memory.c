/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Memory: device allocations live on the server and are recorded here as
 * ranges, so cudaMemcpyDefault and cudaPointerGetAttributes know which side
 * an address is on.  Page-locked host memory is ordinary memory of this
 * process (there is no DMA across the VM boundary to pin it for), tracked so
 * it can be freed and described.  Copies move their bytes as raw payload
 * segments, in pieces of at most VGPU_SHIM_CHUNK.
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

int vgpu_shim_symbol(const void *symbol, uint64_t *key);

/* Copies of at least this many bytes use shared regions when there are any. */
#define SHARE_MIN ((size_t)64 << 10)
#define STAGING_REGION 1u
static uint32_t next_region = STAGING_REGION;
static int par_threads = -1;          /* copy helper threads, -1 until first use */

static size_t round_page(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

struct range {
    uintptr_t base;
    size_t size;
    unsigned flags;         /* host ranges: cudaHostAlloc flags */
    bool owned;             /* host ranges: allocated by us (free on cudaFreeHost) */
    uint32_t region;        /* host ranges: shared with the server as this region, or 0 */
    bool mapped;            /* host ranges: our own mapping (munmap, not free, on cudaFreeHost) */
};

struct table {
    struct range *r;
    size_t n, cap;
};

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct table dev, host;

static int table_add(struct table *t, uintptr_t base, size_t size, unsigned flags, bool owned)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        struct range *p = realloc(t->r, cap * sizeof(*p));

        if (!p)
            return -1;
        t->r = p;
        t->cap = cap;
    }
    t->r[t->n++] = (struct range){ base, size, flags, owned, 0, false };
    return 0;
}

static struct range *table_find(struct table *t, uintptr_t p)
{
    for (size_t i = 0; i < t->n; i++)
        if (p >= t->r[i].base && p - t->r[i].base < (t->r[i].size ? t->r[i].size : 1))
            return &t->r[i];
    return NULL;
}

static void table_remove(struct table *t, struct range *r)
{
    *r = t->r[--t->n];
}

bool vgpu_shim_is_device(const void *p)
{
    bool yes;

    pthread_mutex_lock(&mem_lock);
    yes = table_find(&dev, (uintptr_t)p) != NULL;
    pthread_mutex_unlock(&mem_lock);
    return yes;
}

void vgpu_shim_device_range_add(const void *p, size_t size)
{
    pthread_mutex_lock(&mem_lock);
    if (!table_find(&dev, (uintptr_t)p))
        table_add(&dev, (uintptr_t)p, size, 0, false);
    pthread_mutex_unlock(&mem_lock);
}

static int do_malloc(void **p, size_t size, size_t width, size_t height, size_t *pitch,
                     cudaStream_t stream, int mode)
{
    Vgpu__Manual__MallocArgs a = VGPU__MANUAL__MALLOC_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__MallocRet *r;
    uint32_t id = mode == 1 ? VGPU_CUDART_ID_cudaMallocPitch :
                  mode == 2 ? VGPU_CUDART_ID_cudaMallocAsync : VGPU_CUDART_ID_cudaMalloc;
    int st;

    if (!p)
        return vgpu_shim_status(cudaErrorInvalidValue);
    a.size = size;
    a.width = width;
    a.height = height;
    a.pitch = mode == 1;
    a.async = mode == 2;
    a.stream = (uint64_t)(uintptr_t)stream;
    /* all three share one handler on the server: the cudaMalloc id */
    (void)id;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaMalloc, "cudaMalloc", &a.base, &req, &rep);
    if (st == cudaSuccess) {
        r = vgpu__manual__malloc_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (!r) {
            st = vgpu_shim_status(cudaErrorUnknown);
        } else {
            *p = (void *)(uintptr_t)r->ptr;
            if (pitch)
                *pitch = r->pitch;
            if (r->ptr)
                vgpu_shim_device_range_add(*p, mode == 1 ? r->pitch * height : size);
            vgpu__manual__malloc_ret__free_unpacked(r, NULL);
        }
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT cudaError_t cudaMalloc(void **devPtr, size_t size)
{
    return (cudaError_t)do_malloc(devPtr, size, 0, 0, NULL, NULL, 0);
}

VGPU_EXPORT cudaError_t cudaMallocPitch(void **devPtr, size_t *pitch, size_t width, size_t height)
{
    if (!pitch)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    return (cudaError_t)do_malloc(devPtr, 0, width, height, pitch, NULL, 1);
}

VGPU_EXPORT cudaError_t cudaMallocAsync(void **devPtr, size_t size, cudaStream_t hStream)
{
    return (cudaError_t)do_malloc(devPtr, size, 0, 0, NULL, hStream, 2);
}

VGPU_EXPORT cudaError_t cudaMallocAsync_ptsz(void **devPtr, size_t size, cudaStream_t hStream)
{
    return cudaMallocAsync(devPtr, size, hStream);
}

static int do_free(void *p, cudaStream_t stream, bool async)
{
    Vgpu__Manual__FreeArgs a = VGPU__MANUAL__FREE_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    a.ptr = (uint64_t)(uintptr_t)p;
    a.async = async;
    a.stream = (uint64_t)(uintptr_t)stream;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaFree, "cudaFree", &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    if (st == cudaSuccess && p) {
        pthread_mutex_lock(&mem_lock);
        struct range *r = table_find(&dev, (uintptr_t)p);
        if (r && r->base == (uintptr_t)p)
            table_remove(&dev, r);
        pthread_mutex_unlock(&mem_lock);
    }
    return st;
}

VGPU_EXPORT cudaError_t cudaFree(void *devPtr)
{
    return (cudaError_t)do_free(devPtr, NULL, false);
}

VGPU_EXPORT cudaError_t cudaFreeAsync(void *devPtr, cudaStream_t hStream)
{
    return (cudaError_t)do_free(devPtr, hStream, true);
}

VGPU_EXPORT cudaError_t cudaFreeAsync_ptsz(void *devPtr, cudaStream_t hStream)
{
    return cudaFreeAsync(devPtr, hStream);
}

/* ---- page-locked host memory: local ---- */

VGPU_EXPORT cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
    void *p = NULL;
    uint32_t region = 0;

    if (!pHost)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    vgpu_shim_connect();
    if (vgpu_shim_init_status() != cudaSuccess)
        return (cudaError_t)vgpu_shim_status(vgpu_shim_init_status());
    /* page-locked memory is shared with the server where it can be: copies are then DMA */
    if (size >= SHARE_MIN && vgpu_shim_can_share()) {
        region = __atomic_add_fetch(&next_region, 1, __ATOMIC_RELAXED);
        p = vgpu_shim_region_new(region, round_page(size));
        if (!p)
            region = 0;
    }
    if (!p && posix_memalign(&p, 4096, size ? size : 1))
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    pthread_mutex_lock(&mem_lock);
    if (table_add(&host, (uintptr_t)p, size, flags, true)) {
        pthread_mutex_unlock(&mem_lock);
        if (region)
            vgpu_shim_region_free(region, p, round_page(size));
        else
            free(p);
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    }
    host.r[host.n - 1].region = region;
    pthread_mutex_unlock(&mem_lock);
    *pHost = p;
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaMallocHost(void **ptr, size_t size)
{
    return cudaHostAlloc(ptr, size, cudaHostAllocDefault);
}

VGPU_EXPORT cudaError_t cudaFreeHost(void *ptr)
{
    struct range *r;
    uint32_t region;
    bool mapped;
    size_t size;

    if (!ptr)
        return cudaSuccess;
    pthread_mutex_lock(&mem_lock);
    r = table_find(&host, (uintptr_t)ptr);
    if (!r || r->base != (uintptr_t)ptr || !r->owned) {
        pthread_mutex_unlock(&mem_lock);
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    }
    region = r->region;
    mapped = r->mapped;
    size = r->size;
    table_remove(&host, r);
    pthread_mutex_unlock(&mem_lock);
    if (region)
        vgpu_shim_region_free(region, ptr, round_page(size));
    else if (mapped)
        munmap(ptr, round_page(size));
    else
        free(ptr);
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
    int st = cudaSuccess;

    if (!ptr || !size)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    vgpu_shim_connect();
    if (vgpu_shim_init_status() != cudaSuccess)
        return (cudaError_t)vgpu_shim_status(vgpu_shim_init_status());
    pthread_mutex_lock(&mem_lock);
    if (table_find(&host, (uintptr_t)ptr))
        st = cudaErrorHostMemoryAlreadyRegistered;
    else if (table_add(&host, (uintptr_t)ptr, size, flags, false))
        st = cudaErrorMemoryAllocation;
    pthread_mutex_unlock(&mem_lock);
    return (cudaError_t)vgpu_shim_status(st);
}

VGPU_EXPORT cudaError_t cudaHostUnregister(void *ptr)
{
    struct range *r;
    int st = cudaSuccess;

    pthread_mutex_lock(&mem_lock);
    r = table_find(&host, (uintptr_t)ptr);
    if (!r || r->base != (uintptr_t)ptr || r->owned)
        st = cudaErrorHostMemoryNotRegistered;
    else
        table_remove(&host, r);
    pthread_mutex_unlock(&mem_lock);
    return (cudaError_t)vgpu_shim_status(st);
}

VGPU_EXPORT cudaError_t cudaHostGetFlags(unsigned int *pFlags, void *pHost)
{
    struct range *r;
    int st = cudaSuccess;

    pthread_mutex_lock(&mem_lock);
    r = table_find(&host, (uintptr_t)pHost);
    if (!r || !pFlags)
        st = cudaErrorInvalidValue;
    else
        *pFlags = r->flags;
    pthread_mutex_unlock(&mem_lock);
    return (cudaError_t)vgpu_shim_status(st);
}

VGPU_EXPORT cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes, const void *ptr)
{
    Vgpu__Manual__PointerArgs a = VGPU__MANUAL__POINTER_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__PointerRet *r;
    struct range *h;
    int st;

    if (!attributes)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    memset(attributes, 0, sizeof(*attributes));
    pthread_mutex_lock(&mem_lock);
    h = table_find(&host, (uintptr_t)ptr);
    pthread_mutex_unlock(&mem_lock);
    if (h) {
        attributes->type = cudaMemoryTypeHost;
        attributes->device = vgpu_shim_device();
        attributes->hostPointer = (void *)ptr;
        return cudaSuccess;
    }
    a.ptr = (uint64_t)(uintptr_t)ptr;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaPointerGetAttributes, "cudaPointerGetAttributes",
                        &a.base, &req, &rep);
    if (st == cudaSuccess) {
        r = vgpu__manual__pointer_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (r) {
            attributes->type = (enum cudaMemoryType)r->type;
            attributes->device = r->device;
            attributes->devicePointer = (void *)(uintptr_t)r->device_pointer;
            if (r->type == cudaMemoryTypeUnregistered)
                attributes->hostPointer = (void *)ptr;
            vgpu__manual__pointer_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_status(cudaErrorUnknown);
        }
    }
    vgpu_shim_rep_release(&rep);
    return (cudaError_t)st;
}

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
            staging = vgpu_shim_region_new(STAGING_REGION, staging_size);
        } else if (mb) {
            /* in a guest: a slot of the vgpu-stub device's shared BAR, if it has one */
            staging = vgpu_shim_bar_region(STAGING_REGION, &staging_size);
        }
        if (staging)
            staging_state = 1;
    }
    return staging_state == 1;
}

/* The shared region [p, p+n) lies in, with its offset, or 0. */
static uint32_t region_of(const void *p, size_t n, uint64_t *off)
{
    struct range *r;
    uint32_t id = 0;

    pthread_mutex_lock(&mem_lock);
    r = table_find(&host, (uintptr_t)p);
    if (r && r->region && n <= r->size - ((uintptr_t)p - r->base)) {
        id = r->region;
        *off = (uintptr_t)p - r->base;
    }
    pthread_mutex_unlock(&mem_lock);
    return id;
}

/*
 * fork(): the child's connection is new, and regions belong to the parent's
 * session.  The child keeps each page-locked buffer at its address but as
 * private memory with the same bytes (a shared mapping would let parent and
 * child write into each other's buffers), and copies carry bytes again.
 * The locks are held across fork so they are consistent in both.
 */
static pthread_mutex_t par_lock;

static void memory_atfork_prepare(void)
{
    pthread_mutex_lock(&staging_lock);
    pthread_mutex_lock(&par_lock);
    pthread_mutex_lock(&mem_lock);
}

static void memory_atfork_parent(void)
{
    pthread_mutex_unlock(&mem_lock);
    pthread_mutex_unlock(&par_lock);
    pthread_mutex_unlock(&staging_lock);
}

static void memory_atfork_child(void)
{
    staging_state = 0;
    staging = NULL;
    par_threads = -1;           /* the helper threads are not in the child */
    for (size_t i = 0; i < host.n; i++) {
        struct range *r = &host.r[i];
        size_t len = round_page(r->size);
        void *copy;

        if (!r->region)
            continue;
        r->region = 0;
        r->mapped = true;
        copy = malloc(len);
        if (!copy)
            continue;               /* left shared: better than lost */
        memcpy(copy, (void *)r->base, len);
        if (mmap((void *)r->base, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED)
            memcpy((void *)r->base, copy, len);
        free(copy);
    }
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

    if (in) {
        req.seg[0].data = in;
        req.seg[0].len = bytes;
        req.nseg = 1;
    }
    if (out) {
        req.out[0].dst = out;
        req.out[0].len = bytes;
        req.nout = 1;
    }
    /* an async copy that brings nothing back may wait in the batch */
    if (a->async && !out)
        req.flags = VGPU_FN_ASYNC;
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
    a->region = STAGING_REGION;
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
    if (count >= SHARE_MIN) {
        bool h2d = dir == VGPU__MANUAL__DIRECTION__DIR_H2D;
        const void *hp = h2d ? src : dst;
        uint64_t roff = 0;

        a.dst = (uint64_t)(uintptr_t)dst;
        a.src = (uint64_t)(uintptr_t)src;
        a.count = count;
        /* page-locked memory shared with the server: it DMAs, nothing is copied here */
        if ((a.region = region_of(hp, count, &roff))) {
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

/* ---- symbols ---- */

static int symbol_call(uint32_t id, const char *name, Vgpu__Manual__SymbolArgs *a, const void *in,
                       void *out, size_t bytes, Vgpu__Manual__SymbolRet **ret)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (in) {
        req.seg[0].data = in;
        req.seg[0].len = bytes;
        req.nseg = 1;
    }
    if (out) {
        req.out[0].dst = out;
        req.out[0].len = bytes;
        req.nout = 1;
    }
    /* an async copy that brings nothing back may wait in the batch */
    if (a->async && !out)
        req.flags = VGPU_FN_ASYNC;
    st = vgpu_shim_call(id, name, &a->base, &req, &rep);
    if (st == cudaSuccess && ret) {
        *ret = vgpu__manual__symbol_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (!*ret)
            st = vgpu_shim_status(cudaErrorUnknown);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

/*
 * A copy to (to_symbol) or from a symbol: host memory travels in pieces of
 * at most VGPU_SHIM_CHUNK, like every copy; device memory is named by
 * address.  mem is the program's side of the copy.
 */
static int symbol_copy(bool to_symbol, const void *symbol, void *mem, size_t count, size_t offset,
                       enum cudaMemcpyKind kind, cudaStream_t stream, bool async)
{
    Vgpu__Manual__SymbolArgs a = VGPU__MANUAL__SYMBOL_ARGS__INIT;
    enum cudaMemcpyKind host_kind = to_symbol ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    bool dev = kind == cudaMemcpyDeviceToDevice || (kind == cudaMemcpyDefault && vgpu_shim_is_device(mem));
    uint32_t id = to_symbol ? VGPU_CUDART_ID_cudaMemcpyToSymbol : VGPU_CUDART_ID_cudaMemcpyFromSymbol;
    const char *name = to_symbol ? "cudaMemcpyToSymbol" : "cudaMemcpyFromSymbol";
    int st = vgpu_shim_symbol(symbol, &a.host);

    if (st != cudaSuccess)
        return vgpu_shim_status(st);
    if (kind != host_kind && kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault)
        return vgpu_shim_status(cudaErrorInvalidMemcpyDirection);
    a.stream = (uint64_t)(uintptr_t)stream;
    a.async = async;
    a.to_symbol = to_symbol;
    a.dir = dev ? VGPU__MANUAL__DIRECTION__DIR_D2D :
            to_symbol ? VGPU__MANUAL__DIRECTION__DIR_H2D : VGPU__MANUAL__DIRECTION__DIR_D2H;
    for (size_t off = 0; off < count && st == cudaSuccess; off += VGPU_SHIM_CHUNK) {
        size_t n = count - off < VGPU_SHIM_CHUNK ? count - off : VGPU_SHIM_CHUNK;
        uint8_t *piece = (uint8_t *)mem + off;

        a.count = n;
        a.offset = offset + off;
        a.devptr = dev ? (uint64_t)(uintptr_t)piece : 0;
        st = symbol_call(id, name, &a, !dev && to_symbol ? piece : NULL,
                         !dev && !to_symbol ? piece : NULL, n, NULL);
    }
    return st;
}

static int to_symbol(const void *symbol, const void *src, size_t count, size_t offset,
                     enum cudaMemcpyKind kind, cudaStream_t stream, bool async)
{
    return symbol_copy(true, symbol, (void *)src, count, offset, kind, stream, async);
}

static int from_symbol(void *dst, const void *symbol, size_t count, size_t offset,
                       enum cudaMemcpyKind kind, cudaStream_t stream, bool async)
{
    return symbol_copy(false, symbol, dst, count, offset, kind, stream, async);
}

VGPU_EXPORT cudaError_t cudaMemcpyToSymbol(const void *symbol, const void *src, size_t count,
                                           size_t offset, enum cudaMemcpyKind kind)
{
    return (cudaError_t)to_symbol(symbol, src, count, offset, kind, NULL, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyToSymbol_ptds(const void *symbol, const void *src, size_t count,
                                                size_t offset, enum cudaMemcpyKind kind)
{
    return (cudaError_t)to_symbol(symbol, src, count, offset, kind, cudaStreamPerThread, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t count,
                                                size_t offset, enum cudaMemcpyKind kind,
                                                cudaStream_t stream)
{
    return (cudaError_t)to_symbol(symbol, src, count, offset, kind, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpyToSymbolAsync_ptsz(const void *symbol, const void *src,
                                                     size_t count, size_t offset,
                                                     enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return (cudaError_t)to_symbol(symbol, src, count, offset, kind, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpyFromSymbol(void *dst, const void *symbol, size_t count,
                                             size_t offset, enum cudaMemcpyKind kind)
{
    return (cudaError_t)from_symbol(dst, symbol, count, offset, kind, NULL, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyFromSymbol_ptds(void *dst, const void *symbol, size_t count,
                                                  size_t offset, enum cudaMemcpyKind kind)
{
    return (cudaError_t)from_symbol(dst, symbol, count, offset, kind, cudaStreamPerThread, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyFromSymbolAsync(void *dst, const void *symbol, size_t count,
                                                  size_t offset, enum cudaMemcpyKind kind,
                                                  cudaStream_t stream)
{
    return (cudaError_t)from_symbol(dst, symbol, count, offset, kind, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpyFromSymbolAsync_ptsz(void *dst, const void *symbol, size_t count,
                                                       size_t offset, enum cudaMemcpyKind kind,
                                                       cudaStream_t stream)
{
    return (cudaError_t)from_symbol(dst, symbol, count, offset, kind, stream, true);
}

static int symbol_info(const void *symbol, void **addr, size_t *size, uint32_t id, const char *name)
{
    Vgpu__Manual__SymbolArgs a = VGPU__MANUAL__SYMBOL_ARGS__INIT;
    Vgpu__Manual__SymbolRet *r = NULL;
    int st = vgpu_shim_symbol(symbol, &a.host);

    if (st != cudaSuccess)
        return vgpu_shim_status(st);
    st = symbol_call(id, name, &a, NULL, NULL, 0, &r);
    if (st == cudaSuccess) {
        vgpu_shim_device_range_add((void *)(uintptr_t)r->addr, r->size);
        if (addr)
            *addr = (void *)(uintptr_t)r->addr;
        if (size)
            *size = r->size;
        vgpu__manual__symbol_ret__free_unpacked(r, NULL);
    }
    return st;
}

VGPU_EXPORT cudaError_t cudaGetSymbolAddress(void **devPtr, const void *symbol)
{
    if (!devPtr)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    return (cudaError_t)symbol_info(symbol, devPtr, NULL, VGPU_CUDART_ID_cudaGetSymbolAddress,
                                    "cudaGetSymbolAddress");
}

VGPU_EXPORT cudaError_t cudaGetSymbolSize(size_t *size, const void *symbol)
{
    if (!size)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    return (cudaError_t)symbol_info(symbol, NULL, size, VGPU_CUDART_ID_cudaGetSymbolSize,
                                    "cudaGetSymbolSize");
}
