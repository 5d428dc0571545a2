/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcuda.so.1's hand-written calls (codegen/spec/cuda.spec "manual"):
 *   - contexts: each thread's current context and its stack live here (the
 *     client library sends the current one with every batch); creating and
 *     destroying one goes to the server;
 *   - modules and libraries: the image is named by its SHA-256 and sent
 *     only when the server's cache lacks it; files are read here;
 *   - launches: parameters packed by the layout the server's driver reports
 *     (cuFuncGetParamInfo / cuKernelGetParamInfo), asked once per function;
 *   - memory: device allocations recorded as ranges (cuMemcpy's direction,
 *     cuPointerGetAttribute), page-locked host memory as ordinary memory of
 *     this process;
 *   - copies: bytes travel in the frames, in pieces of VGPU_DRV_CHUNK;
 *   - error names and texts from the server's driver, kept once asked.
 */
#include <cuda.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cuda_calltable.h"
#include "dataplane.h"
#include "driver_internal.h"
#include "manual.pb-c.h"
#include "vgpu/sha256.h"

#define ID(name) VGPU_CUDA_ID_##name
#define CALL(name, msg, req, rep) vgpu_drv_call(ID(name), #name, &(msg).base, req, rep)

/* ---- contexts ---- */

#define CTX_STACK 32
static __thread uint64_t ctx_stack[CTX_STACK];
static __thread int ctx_depth;

VGPU_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = (CUcontext)(uintptr_t)vgpu_drv_context();
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
    /* the server checks the context is the session's when the next batch names it */
    vgpu_drv_set_context((uint64_t)(uintptr_t)ctx);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    if (!ctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (ctx_depth == CTX_STACK)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ctx_stack[ctx_depth++] = vgpu_drv_context();
    vgpu_drv_set_context((uint64_t)(uintptr_t)ctx);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuCtxPushCurrent(CUcontext ctx)
{
    return cuCtxPushCurrent_v2(ctx);
}

VGPU_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    uint64_t cur = vgpu_drv_context();

    if (!cur)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (pctx)
        *pctx = (CUcontext)(uintptr_t)cur;
    vgpu_drv_set_context(ctx_depth ? ctx_stack[--ctx_depth] : 0);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuCtxPopCurrent(CUcontext *pctx)
{
    return cuCtxPopCurrent_v2(pctx);
}

/* A new context is current on the calling thread (pushed, as the driver does). */
static CUresult ctx_create(CUcontext *pctx, unsigned flags, CUdevice dev)
{
    Vgpu__Manual__CtxArgs a = VGPU__MANUAL__CTX_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    a.flags = flags;
    a.device = dev;
    st = CALL(cuCtxCreate_v2, a, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__CtxRet *r = vgpu__manual__ctx_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (r && r->ctx) {
            if (ctx_depth < CTX_STACK && vgpu_drv_context())
                ctx_stack[ctx_depth++] = vgpu_drv_context();
            vgpu_drv_set_context(r->ctx);
            *pctx = (CUcontext)(uintptr_t)r->ctx;
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
        if (r)
            vgpu__manual__ctx_ret__free_unpacked(r, NULL);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

VGPU_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

VGPU_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
                                    CUdevice dev)
{
    if (params && (params->execAffinityParams || params->numExecAffinityParams ||
                   params->cigParams)) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cuCtxCreate: contexts with execution affinity or CIG "
                      "parameters are not supported by vgpu; pass NULL parameters");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return ctx_create(pctx, flags, dev);
}

VGPU_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    Vgpu__Manual__CtxArgs a = VGPU__MANUAL__CTX_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!ctx)
        return CUDA_ERROR_INVALID_VALUE;
    a.ctx = (uint64_t)(uintptr_t)ctx;
    st = CALL(cuCtxDestroy_v2, a, &req, &rep);
    vgpu_shim_rep_release(&rep);
    if (st == CUDA_SUCCESS)
        vgpu_drv_context_destroyed(a.ctx);
    /* destroyed while current here: the one below it on the stack is current again */
    if (st == CUDA_SUCCESS && vgpu_drv_context() == a.ctx)
        vgpu_drv_set_context(ctx_depth ? ctx_stack[--ctx_depth] : 0);
    return st;
}

VGPU_EXPORT CUresult cuCtxDestroy(CUcontext ctx)
{
    return cuCtxDestroy_v2(ctx);
}

/* ---- device memory known here: allocations and module globals ---- */

struct span {
    uint64_t base, size;
};

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct span *dev_spans, *host_spans;
static size_t ndev, nhost, capdev, caphost;
static unsigned *host_flags;
static uint32_t *host_regions;      /* per host span: shared with the server as this region, or 0 */
static size_t caphost_regions;

static int span_add(struct span **v, size_t *n, size_t *cap, unsigned **flags, uint64_t base,
                    uint64_t size, unsigned fl)
{
    int rc = -ENOMEM;

    pthread_mutex_lock(&mem_lock);
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        struct span *p = realloc(*v, c * sizeof(*p));
        unsigned *f = flags ? realloc(*flags, c * sizeof(*f)) : NULL;

        if (p)
            *v = p;
        if (f)
            *flags = f;
        if (!p || (flags && !f))
            goto out;
        *cap = c;
    }
    (*v)[*n] = (struct span){ base, size };
    if (flags)
        (*flags)[*n] = fl;
    (*n)++;
    rc = 0;
out:
    pthread_mutex_unlock(&mem_lock);
    return rc;
}

/* Index of the span holding addr (start only: exact), or -1.  Lock held. */
static long span_find(const struct span *v, size_t n, uint64_t addr, bool exact)
{
    for (size_t i = 0; i < n; i++)
        if (exact ? v[i].base == addr : addr - v[i].base < v[i].size)
            return (long)i;
    return -1;
}

static bool is_device(uint64_t addr)
{
    bool yes;

    pthread_mutex_lock(&mem_lock);
    yes = span_find(dev_spans, ndev, addr, false) >= 0;
    pthread_mutex_unlock(&mem_lock);
    return yes;
}

static void span_remove(struct span *v, size_t *n, unsigned *flags, uint64_t base)
{
    long i;

    pthread_mutex_lock(&mem_lock);
    if ((i = span_find(v, *n, base, true)) >= 0) {
        v[i] = v[*n - 1];
        if (flags)
            flags[i] = flags[*n - 1];
        (*n)--;
    }
    pthread_mutex_unlock(&mem_lock);
}

static void device_span_add(uint64_t base, uint64_t size)
{
    if (span_add(&dev_spans, &ndev, &capdev, NULL, base, size ? size : 1, 0))
        vgpu_shim_log(VGPU_LOG_WARN, "out of memory recording a device allocation: cuMemcpy "
                      "may mistake it for host memory");
}

/* ---- allocations ---- */

static CUresult mem_alloc(uint32_t id, const char *name, CUdeviceptr *dptr, size_t *pitch,
                          size_t width, size_t height, unsigned elem, CUstream stream, bool async)
{
    Vgpu__Manual__MallocArgs a = VGPU__MANUAL__MALLOC_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!dptr || (pitch && (elem != 4 && elem != 8 && elem != 16)))
        return CUDA_ERROR_INVALID_VALUE;
    a.size = width;
    if (pitch) {
        a.pitch = true;
        a.width = width;
        a.height = height;
        a.element_size = elem;
    }
    a.async = async;
    a.stream = (uint64_t)(uintptr_t)stream;
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__MallocRet *r = vgpu__manual__malloc_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (r) {
            *dptr = r->ptr;
            if (pitch)
                *pitch = r->pitch;
            device_span_add(r->ptr, pitch ? r->pitch * height : width);
            vgpu__manual__malloc_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    if (bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    return mem_alloc(ID(cuMemAlloc_v2), "cuMemAlloc_v2", dptr, NULL, bytesize, 0, 0, NULL, false);
}

VGPU_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pitch, size_t width,
                                        size_t height, unsigned int elem)
{
    if (!pitch || width == 0 || height == 0)
        return CUDA_ERROR_INVALID_VALUE;
    return mem_alloc(ID(cuMemAllocPitch_v2), "cuMemAllocPitch_v2", dptr, pitch, width, height,
                     elem, NULL, false);
}

VGPU_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    return mem_alloc(ID(cuMemAllocAsync), "cuMemAllocAsync", dptr, NULL, bytesize, 0, 0, stream,
                     true);
}

VGPU_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUstream stream)
{
    return mem_alloc(ID(cuMemAllocAsync_ptsz), "cuMemAllocAsync_ptsz", dptr, NULL, bytesize, 0, 0,
                     stream ? stream : CU_STREAM_PER_THREAD, true);
}

static CUresult mem_free(uint32_t id, const char *name, CUdeviceptr p, CUstream stream, bool async)
{
    Vgpu__Manual__FreeArgs a = VGPU__MANUAL__FREE_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    a.ptr = p;
    a.async = async;
    a.stream = (uint64_t)(uintptr_t)stream;
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    if (st == CUDA_SUCCESS)
        span_remove(dev_spans, &ndev, NULL, p);
    return st;
}

VGPU_EXPORT CUresult cuMemFree_v2(CUdeviceptr p)
{
    return mem_free(ID(cuMemFree_v2), "cuMemFree_v2", p, NULL, false);
}

VGPU_EXPORT CUresult cuMemFreeAsync(CUdeviceptr p, CUstream stream)
{
    return mem_free(ID(cuMemFreeAsync), "cuMemFreeAsync", p, stream, true);
}

VGPU_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream stream)
{
    return mem_free(ID(cuMemFreeAsync_ptsz), "cuMemFreeAsync_ptsz", p,
                    stream ? stream : CU_STREAM_PER_THREAD, true);
}

/* ---- page-locked host memory: ordinary memory here, recorded ---- */

/*
 * Region ids of this library: its staging region, then one per shared
 * page-locked allocation; above the runtime shim's, so both libraries can
 * share memory on one connection.
 */
#define DRV_STAGING_REGION 0x80000001u
static uint32_t next_region = DRV_STAGING_REGION;

static size_t round_page(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

/* Records region for the host span just added (index i); lock held. */
static int host_region_set(size_t i, uint32_t region)
{
    if (i >= caphost_regions) {
        size_t c = caphost;
        uint32_t *r = realloc(host_regions, c * sizeof(*r));

        if (!r)
            return -1;
        memset(r + caphost_regions, 0, (c - caphost_regions) * sizeof(*r));
        host_regions = r;
        caphost_regions = c;
    }
    host_regions[i] = region;
    return 0;
}

static CUresult host_alloc(void **pp, size_t bytes, unsigned flags)
{
    void *p = NULL;
    uint32_t region = 0;
    struct vgpu_client *c = vgpu_client_get();
    int rc;

    if (!pp)
        return CUDA_ERROR_INVALID_VALUE;
    if (flags & CU_MEMHOSTALLOC_DEVICEMAP) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cuMemHostAlloc: mapped (zero-copy) host memory is not "
                      "supported by vgpu yet; allocate without CU_MEMHOSTALLOC_DEVICEMAP");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    /* shared with the server where it can be: copies from and to it are then DMA */
    if (bytes >= VGPU_SHIM_SHARE_MIN && vgpu_client_connect(c) == 0 && vgpu_client_can_share(c)) {
        region = __atomic_add_fetch(&next_region, 1, __ATOMIC_RELAXED);
        if (!(p = vgpu_client_region_new(c, region, round_page(bytes))))
            region = 0;
    }
    if (!p && posix_memalign(&p, 4096, bytes ? bytes : 1))
        return CUDA_ERROR_OUT_OF_MEMORY;
    rc = span_add(&host_spans, &nhost, &caphost, &host_flags, (uintptr_t)p, bytes ? bytes : 1,
                  flags | 0x80000000u);
    if (!rc) {
        pthread_mutex_lock(&mem_lock);
        rc = host_region_set(nhost - 1, region);
        if (rc)
            nhost--;
        pthread_mutex_unlock(&mem_lock);
    }
    if (rc) {
        if (region)
            vgpu_client_region_free(c, region, p, round_page(bytes));
        else
            free(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    return host_alloc(pp, bytesize, 0);
}

VGPU_EXPORT CUresult cuMemAllocHost(void **pp, unsigned int bytesize)
{
    return host_alloc(pp, bytesize, 0);
}

VGPU_EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int flags)
{
    return host_alloc(pp, bytesize, flags);
}

VGPU_EXPORT CUresult cuMemFreeHost(void *p)
{
    long i;
    uint32_t region = 0;
    size_t size = 0;

    pthread_mutex_lock(&mem_lock);
    i = span_find(host_spans, nhost, (uintptr_t)p, true);
    if (i >= 0 && (host_flags[i] & 0x80000000u)) {
        region = (size_t)i < caphost_regions ? host_regions[i] : 0;
        size = host_spans[i].size;
        host_spans[i] = host_spans[nhost - 1];
        host_flags[i] = host_flags[nhost - 1];
        if ((size_t)i < caphost_regions && nhost - 1 < caphost_regions)
            host_regions[i] = host_regions[nhost - 1];
        nhost--;
    } else {
        i = -1;
    }
    pthread_mutex_unlock(&mem_lock);
    if (i < 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (region)
        vgpu_client_region_free(vgpu_client_get(), region, p, round_page(size));
    else
        free(p);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int flags)
{
    long i;

    if (!p || !bytesize)
        return CUDA_ERROR_INVALID_VALUE;
    if (flags & (CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_IOMEMORY)) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cuMemHostRegister: mapped or I/O memory is not supported "
                      "by vgpu yet; register without CU_MEMHOSTREGISTER_DEVICEMAP");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    pthread_mutex_lock(&mem_lock);
    i = span_find(host_spans, nhost, (uintptr_t)p, false);
    pthread_mutex_unlock(&mem_lock);
    if (i >= 0)
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    if (span_add(&host_spans, &nhost, &caphost, &host_flags, (uintptr_t)p, bytesize, flags))
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&mem_lock);
    i = host_region_set(nhost - 1, 0) ? -1 : 0;
    if (i < 0)
        nhost--;
    pthread_mutex_unlock(&mem_lock);
    return i < 0 ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int flags)
{
    return cuMemHostRegister_v2(p, bytesize, flags);
}

VGPU_EXPORT CUresult cuMemHostUnregister(void *p)
{
    long i;

    pthread_mutex_lock(&mem_lock);
    i = span_find(host_spans, nhost, (uintptr_t)p, true);
    if (i >= 0 && !(host_flags[i] & 0x80000000u)) {
        host_spans[i] = host_spans[nhost - 1];
        host_flags[i] = host_flags[nhost - 1];
        if ((size_t)i < caphost_regions && nhost - 1 < caphost_regions)
            host_regions[i] = host_regions[nhost - 1];
        nhost--;
    } else {
        i = -1;
    }
    pthread_mutex_unlock(&mem_lock);
    return i >= 0 ? CUDA_SUCCESS : CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
}

VGPU_EXPORT CUresult cuMemHostGetFlags(unsigned int *pflags, void *p)
{
    long i;

    if (!pflags)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&mem_lock);
    i = span_find(host_spans, nhost, (uintptr_t)p, false);
    if (i >= 0)
        *pflags = host_flags[i] & ~0x80000000u;
    pthread_mutex_unlock(&mem_lock);
    return i >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- copies ---- */

#define VGPU_DRV_CHUNK ((size_t)VGPU_SHIM_CHUNK)

/* The call a copy through the data plane is sent as (the copying function's own). */
static __thread uint32_t dp_id;
static __thread const char *dp_name;

static CUresult copy_call(uint32_t id, const char *name, Vgpu__Manual__CopyArgs *a,
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
    if (a->async && !out)
        req.flags = VGPU_FN_ASYNC;
    st = vgpu_drv_call(id, name, &a->base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    return st;
}

static int dp_call(Vgpu__Manual__CopyArgs *a, const void *in, void *out, size_t bytes)
{
    return copy_call(dp_id, dp_name, a, in, out, bytes);
}

/* The shared region [p, p+n) lies in, with its offset, or 0. */
static uint32_t host_region(const void *p, size_t n, uint64_t *off)
{
    uint32_t region = 0;
    long i;

    pthread_mutex_lock(&mem_lock);
    i = span_find(host_spans, nhost, (uintptr_t)p, false);
    if (i >= 0 && (size_t)i < caphost_regions && host_regions[i] &&
        n <= host_spans[i].size - ((uintptr_t)p - host_spans[i].base)) {
        region = host_regions[i];
        *off = (uintptr_t)p - host_spans[i].base;
    }
    pthread_mutex_unlock(&mem_lock);
    return region;
}

static void mem_fork_lock(void)
{
    pthread_mutex_lock(&mem_lock);
}

static void mem_fork_unlock(void)
{
    pthread_mutex_unlock(&mem_lock);
}

/* The child's connection is its own: its copies carry bytes (the parent's regions are not its session's). */
static void mem_forked(void)
{
    if (host_regions)
        memset(host_regions, 0, caphost_regions * sizeof(*host_regions));
}

static const struct vgpu_dp driver_dp = {
    .staging_region = DRV_STAGING_REGION,
    .call = dp_call,
    .host_region = host_region,
    .lock = mem_fork_lock,
    .unlock = mem_fork_unlock,
    .forked = mem_forked,
};

__attribute__((constructor)) static void calls_init(void)
{
    vgpu_dp_init(&driver_dp);
}

/*
 * One linear copy, in pieces that fit a frame; dir as the pointers say.
 * An asynchronous copy from pageable memory travels with its call, so the
 * caller may reuse its buffer at once, as with the driver's staging.
 */
static CUresult copy1d(uint32_t id, const char *name, Vgpu__Manual__Direction dir, uint64_t dst,
                       uint64_t src, size_t n, CUstream stream, bool async)
{
    int st = CUDA_SUCCESS;

    if (dir == VGPU__MANUAL__DIRECTION__DIR_NONE) {
        if (n && (!dst || !src))
            return CUDA_ERROR_INVALID_VALUE;
        memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
        return CUDA_SUCCESS;
    }
    if (dir != VGPU__MANUAL__DIRECTION__DIR_D2D && n) {
        Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;

        a.dir = dir;
        a.async = async;
        a.stream = (uint64_t)(uintptr_t)stream;
        dp_id = id;
        dp_name = name;
        return vgpu_dp_copy(&a, (void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    }
    for (size_t off = 0; st == CUDA_SUCCESS && (off < n || (n == 0 && off == 0));) {
        size_t k = n - off < VGPU_DRV_CHUNK ? n - off : VGPU_DRV_CHUNK;
        Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;

        a.dir = dir;
        a.dst = dst + off;
        a.src = src + off;
        a.count = k;
        a.async = async;
        a.stream = (uint64_t)(uintptr_t)stream;
        st = copy_call(id, name, &a,
                       dir == VGPU__MANUAL__DIRECTION__DIR_H2D ? (const void *)(uintptr_t)(src + off) : NULL,
                       dir == VGPU__MANUAL__DIRECTION__DIR_D2H ? (void *)(uintptr_t)(dst + off) : NULL, k);
        if (n == 0)
            break;
        off += k;
    }
    return st;
}

#define H2D VGPU__MANUAL__DIRECTION__DIR_H2D
#define D2H VGPU__MANUAL__DIRECTION__DIR_D2H
#define D2D VGPU__MANUAL__DIRECTION__DIR_D2D

#define COPY_FN(name, dir, dty, sty, async, pt)                                                   \
    VGPU_EXPORT CUresult name(dty dst, sty src, size_t n)                                        \
    {                                                                                             \
        return copy1d(ID(name), #name, dir, (uint64_t)(uintptr_t)dst, (uint64_t)(uintptr_t)src,  \
                      n, pt, async);                                                              \
    }
#define COPY_FN_ASYNC(name, dir, dty, sty, pt)                                                    \
    VGPU_EXPORT CUresult name(dty dst, sty src, size_t n, CUstream stream)                       \
    {                                                                                             \
        return copy1d(ID(name), #name, dir, (uint64_t)(uintptr_t)dst, (uint64_t)(uintptr_t)src,  \
                      n, stream ? stream : pt, true);                                             \
    }

COPY_FN(cuMemcpyHtoD_v2, H2D, CUdeviceptr, const void *, false, NULL)
COPY_FN(cuMemcpyHtoD_v2_ptds, H2D, CUdeviceptr, const void *, false, CU_STREAM_PER_THREAD)
COPY_FN(cuMemcpyDtoH_v2, D2H, void *, CUdeviceptr, false, NULL)
COPY_FN(cuMemcpyDtoH_v2_ptds, D2H, void *, CUdeviceptr, false, CU_STREAM_PER_THREAD)
COPY_FN(cuMemcpyDtoD_v2, D2D, CUdeviceptr, CUdeviceptr, false, NULL)
COPY_FN(cuMemcpyDtoD_v2_ptds, D2D, CUdeviceptr, CUdeviceptr, false, CU_STREAM_PER_THREAD)
COPY_FN_ASYNC(cuMemcpyHtoDAsync_v2, H2D, CUdeviceptr, const void *, NULL)
COPY_FN_ASYNC(cuMemcpyHtoDAsync_v2_ptsz, H2D, CUdeviceptr, const void *, CU_STREAM_PER_THREAD)
COPY_FN_ASYNC(cuMemcpyDtoHAsync_v2, D2H, void *, CUdeviceptr, NULL)
COPY_FN_ASYNC(cuMemcpyDtoHAsync_v2_ptsz, D2H, void *, CUdeviceptr, CU_STREAM_PER_THREAD)
COPY_FN_ASYNC(cuMemcpyDtoDAsync_v2, D2D, CUdeviceptr, CUdeviceptr, NULL)
COPY_FN_ASYNC(cuMemcpyDtoDAsync_v2_ptsz, D2D, CUdeviceptr, CUdeviceptr, CU_STREAM_PER_THREAD)

/*
 * Is [p, p+1) memory of this process?  An address that is not is taken for
 * device memory this library did not allocate (the runtime shim's, in a
 * program that uses both): the server then checks it, where a memmove here
 * would fault.
 */
static bool mapped_here(CUdeviceptr p)
{
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)4095;

    return p && msync((void *)page, 1, MS_ASYNC) == 0;
}

/* Unified addressing: the side of each address from the allocations known here. */
static Vgpu__Manual__Direction unified_dir(CUdeviceptr dst, CUdeviceptr src)
{
    bool d = is_device(dst) || !mapped_here(dst), s = is_device(src) || !mapped_here(src);

    return d && s ? D2D : d ? H2D : s ? D2H : VGPU__MANUAL__DIRECTION__DIR_NONE;
}

VGPU_EXPORT CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return copy1d(ID(cuMemcpy), "cuMemcpy", unified_dir(dst, src), dst, src, n, NULL, false);
}

VGPU_EXPORT CUresult cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    return copy1d(ID(cuMemcpy_ptds), "cuMemcpy_ptds", unified_dir(dst, src), dst, src, n,
                  CU_STREAM_PER_THREAD, false);
}

VGPU_EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream)
{
    return copy1d(ID(cuMemcpyAsync), "cuMemcpyAsync", unified_dir(dst, src), dst, src, n, stream,
                  true);
}

VGPU_EXPORT CUresult cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream)
{
    return copy1d(ID(cuMemcpyAsync_ptsz), "cuMemcpyAsync_ptsz", unified_dir(dst, src), dst, src,
                  n, stream ? stream : CU_STREAM_PER_THREAD, true);
}

VGPU_EXPORT CUresult cuMemcpyPeer(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src, CUcontext sctx,
                                  size_t n)
{
    (void)dctx;
    (void)sctx;
    /* one session sees its devices in one address space (unified addressing) */
    return copy1d(ID(cuMemcpyPeer), "cuMemcpyPeer", D2D, dst, src, n, NULL, false);
}

VGPU_EXPORT CUresult cuMemcpyPeer_ptds(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src,
                                       CUcontext sctx, size_t n)
{
    (void)dctx;
    (void)sctx;
    return copy1d(ID(cuMemcpyPeer_ptds), "cuMemcpyPeer_ptds", D2D, dst, src, n,
                  CU_STREAM_PER_THREAD, false);
}

VGPU_EXPORT CUresult cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src,
                                       CUcontext sctx, size_t n, CUstream stream)
{
    (void)dctx;
    (void)sctx;
    return copy1d(ID(cuMemcpyPeerAsync), "cuMemcpyPeerAsync", D2D, dst, src, n, stream, true);
}

VGPU_EXPORT CUresult cuMemcpyPeerAsync_ptsz(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src,
                                            CUcontext sctx, size_t n, CUstream stream)
{
    (void)dctx;
    (void)sctx;
    return copy1d(ID(cuMemcpyPeerAsync_ptsz), "cuMemcpyPeerAsync_ptsz", D2D, dst, src, n,
                  stream ? stream : CU_STREAM_PER_THREAD, true);
}

/* The start of one side of a 2D copy, and whether it is on the device. */
static int side(CUmemorytype type, const void *host, CUdeviceptr dev, CUarray array, size_t x,
                size_t y, size_t pitch, uint64_t *addr, bool *on_device)
{
    uint64_t base;

    switch (type) {
    case CU_MEMORYTYPE_HOST:
        base = (uint64_t)(uintptr_t)host;
        *on_device = false;
        break;
    case CU_MEMORYTYPE_DEVICE:
        base = dev;
        *on_device = true;
        break;
    case CU_MEMORYTYPE_UNIFIED:
        base = dev;
        *on_device = is_device(dev) || !mapped_here(dev);
        break;
    default:
        (void)array;
        return -1;              /* CUDA arrays are not remoted yet */
    }
    if (y && pitch > (UINT64_MAX - x) / y)
        return -1;
    *addr = base + y * pitch + x;
    return 0;
}

static CUresult copy2d(uint32_t id, const char *name, const CUDA_MEMCPY2D *p, CUstream stream,
                       bool async)
{
    Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;
    uint64_t dst, src;
    bool dd, sd;
    size_t bytes;
    uint8_t *tmp = NULL;
    int st;

    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    if (side(p->srcMemoryType, p->srcHost, p->srcDevice, p->srcArray, p->srcXInBytes, p->srcY,
             p->srcPitch, &src, &sd) ||
        side(p->dstMemoryType, p->dstHost, p->dstDevice, p->dstArray, p->dstXInBytes, p->dstY,
             p->dstPitch, &dst, &dd)) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: copies to and from CUDA arrays are not supported by "
                      "vgpu yet", name);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (p->WidthInBytes && p->Height > VGPU_DRV_CHUNK / p->WidthInBytes)
        return CUDA_ERROR_INVALID_VALUE;     /* larger 2D copies: not in one frame yet */
    bytes = p->WidthInBytes * p->Height;
    a.dir = dd && sd ? D2D : dd ? H2D : sd ? D2H : VGPU__MANUAL__DIRECTION__DIR_NONE;
    if (a.dir == VGPU__MANUAL__DIRECTION__DIR_NONE) {
        for (size_t r = 0; r < p->Height; r++)
            memmove((uint8_t *)(uintptr_t)dst + r * p->dstPitch,
                    (const uint8_t *)(uintptr_t)src + r * p->srcPitch, p->WidthInBytes);
        return CUDA_SUCCESS;
    }
    a.is_2d = true;
    a.dst = dst;
    a.src = src;
    a.count = p->WidthInBytes;
    a.height = p->Height;
    a.dpitch = p->dstPitch;
    a.spitch = p->srcPitch;
    a.async = async;
    a.stream = (uint64_t)(uintptr_t)stream;
    /* the host side travels packed: rows of WidthInBytes */
    if (a.dir != D2D && !(tmp = malloc(bytes ? bytes : 1)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (a.dir == H2D) {
        for (size_t r = 0; r < p->Height; r++)
            memcpy(tmp + r * p->WidthInBytes, (const uint8_t *)(uintptr_t)src + r * p->srcPitch,
                   p->WidthInBytes);
        a.spitch = p->WidthInBytes;
    } else if (a.dir == D2H) {
        a.dpitch = p->WidthInBytes;
    }
    st = copy_call(id, name, &a, a.dir == H2D ? tmp : NULL, a.dir == D2H ? tmp : NULL, bytes);
    if (st == CUDA_SUCCESS && a.dir == D2H)
        for (size_t r = 0; r < p->Height; r++)
            memcpy((uint8_t *)(uintptr_t)dst + r * p->dstPitch, tmp + r * p->WidthInBytes,
                   p->WidthInBytes);
    free(tmp);
    return st;
}

#define COPY2D_FN(name, async, pt)                                                                \
    VGPU_EXPORT CUresult name(const CUDA_MEMCPY2D *p)                                            \
    {                                                                                             \
        return copy2d(ID(name), #name, p, pt, async);                                             \
    }
#define COPY2D_FN_ASYNC(name, pt)                                                                 \
    VGPU_EXPORT CUresult name(const CUDA_MEMCPY2D *p, CUstream stream)                           \
    {                                                                                             \
        return copy2d(ID(name), #name, p, stream ? stream : pt, true);                            \
    }

COPY2D_FN(cuMemcpy2D_v2, false, NULL)
COPY2D_FN(cuMemcpy2D_v2_ptds, false, CU_STREAM_PER_THREAD)
COPY2D_FN(cuMemcpy2DUnaligned_v2, false, NULL)
COPY2D_FN(cuMemcpy2DUnaligned_v2_ptds, false, CU_STREAM_PER_THREAD)
COPY2D_FN_ASYNC(cuMemcpy2DAsync_v2, NULL)
COPY2D_FN_ASYNC(cuMemcpy2DAsync_v2_ptsz, CU_STREAM_PER_THREAD)

/* ---- pointer attributes ---- */

/* Answers for page-locked host memory, known here; -1 when attr is not one of them. */
static int host_attr(void *data, CUpointer_attribute attr, uint64_t p, unsigned flags)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        *(unsigned *)data = CU_MEMORYTYPE_HOST;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        *(void **)data = (void *)(uintptr_t)p;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_MAPPED:
        *(int *)data = 0;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        *(CUcontext *)data = (CUcontext)(uintptr_t)vgpu_drv_context();
        return CUDA_SUCCESS;
    default:
        (void)flags;
        return CUDA_ERROR_NOT_SUPPORTED;
    }
}

/* Asks the server for n attributes of a device address; values written where data[i] says. */
static CUresult device_attrs(unsigned n, const CUpointer_attribute *attrs, void **data, uint64_t p,
                             bool each)
{
    Vgpu__Manual__PointerAttrArgs a = VGPU__MANUAL__POINTER_ATTR_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int32_t ids[32];
    int st;

    if (n == 0 || n > 32)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < n; i++)
        ids[i] = (int32_t)attrs[i];
    a.ptr = p;
    a.attr = ids;
    a.n_attr = n;
    st = CALL(cuPointerGetAttribute, a, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__PointerAttrRet *r =
            vgpu__manual__pointer_attr_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (!r || r->n_value != n || r->n_status != n) {
            st = vgpu_shim_bad_reply(&req);
        } else {
            for (unsigned i = 0; i < n && st == CUDA_SUCCESS; i++) {
                if (r->status[i] == CUDA_SUCCESS && data[i])
                    memcpy(data[i], r->value[i].data, r->value[i].len);
                else if (!each)
                    st = r->status[i];
            }
        }
        if (r)
            vgpu__manual__pointer_attr_ret__free_unpacked(r, NULL);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attr, CUdeviceptr p)
{
    long i;
    unsigned flags = 0;

    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    if (is_device(p))
        return device_attrs(1, &attr, &data, p, false);
    pthread_mutex_lock(&mem_lock);
    if ((i = span_find(host_spans, nhost, p, false)) >= 0)
        flags = host_flags[i];
    pthread_mutex_unlock(&mem_lock);
    if (i < 0)
        return CUDA_ERROR_INVALID_VALUE;     /* memory CUDA does not know, as natively */
    return host_attr(data, attr, p, flags);
}

VGPU_EXPORT CUresult cuPointerGetAttributes(unsigned int n, CUpointer_attribute *attrs, void **data,
                                            CUdeviceptr p)
{
    if (!attrs || !data)
        return CUDA_ERROR_INVALID_VALUE;
    if (is_device(p))
        return device_attrs(n, attrs, data, p, true);
    /* memory not CUDA's: the type is 0 and the rest stays as it was, as natively */
    for (unsigned i = 0; i < n; i++) {
        if (!data[i])
            continue;
        if (cuPointerGetAttribute(data[i], attrs[i], p) != CUDA_SUCCESS &&
            attrs[i] == CU_POINTER_ATTRIBUTE_MEMORY_TYPE)
            *(unsigned *)data[i] = 0;
    }
    return CUDA_SUCCESS;
}

/* ---- error names and texts: the server driver's, kept once asked ---- */

#define ERR_SLOTS 1024

static const char *err_cache[2][ERR_SLOTS];

static CUresult error_string(int text, CUresult error, const char **pstr)
{
    Vgpu__Manual__ErrorStringArgs a = VGPU__MANUAL__ERROR_STRING_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    const char *s;
    int st;

    if (!pstr)
        return CUDA_ERROR_INVALID_VALUE;
    if ((unsigned)error < ERR_SLOTS &&
        (s = __atomic_load_n(&err_cache[text][error], __ATOMIC_ACQUIRE))) {
        *pstr = s;
        return CUDA_SUCCESS;
    }
    a.error = error;
    a.text = text;
    st = text ? CALL(cuGetErrorString, a, &req, &rep) : CALL(cuGetErrorName, a, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__ErrorStringRet *r =
            vgpu__manual__error_string_ret__unpack(NULL, rep.ret_len, rep.ret);
        char *copy = r ? strdup(r->s) : NULL;

        if (!copy) {
            st = r ? CUDA_ERROR_OUT_OF_MEMORY : vgpu_shim_bad_reply(&req);
        } else {
            const char *old = NULL;

            /* kept for the process's life, as the driver's strings are */
            if ((unsigned)error < ERR_SLOTS &&
                !__atomic_compare_exchange_n(&err_cache[text][error], &old, copy, false,
                                             __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                free(copy);
                copy = (char *)old;
            }
            *pstr = copy;
        }
        if (r)
            vgpu__manual__error_string_ret__free_unpacked(r, NULL);
    } else if (st == CUDA_ERROR_NO_DEVICE && error == CUDA_ERROR_NO_DEVICE) {
        /* no server to ask: this one is ours to name */
        *pstr = text ? "no CUDA-capable device is detected (vgpu-server unreachable)"
                     : "CUDA_ERROR_NO_DEVICE";
        st = CUDA_SUCCESS;
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuGetErrorName(CUresult error, const char **pstr)
{
    return error_string(0, error, pstr);
}

VGPU_EXPORT CUresult cuGetErrorString(CUresult error, const char **pstr)
{
    return error_string(1, error, pstr);
}

/* ---- globals ---- */

static CUresult global(uint32_t id, const char *name, CUdeviceptr *dptr, size_t *bytes,
                       uint64_t handle, const char *sym, bool library)
{
    Vgpu__Manual__GlobalArgs a = VGPU__MANUAL__GLOBAL_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!sym)
        return CUDA_ERROR_INVALID_VALUE;
    a.handle = handle;
    a.name = (char *)sym;
    a.library = library;
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__GlobalRet *r = vgpu__manual__global_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (r) {
            if (dptr)
                *dptr = r->dptr;
            if (bytes)
                *bytes = r->bytes;
            device_span_add(r->dptr, r->bytes);
            vgpu__manual__global_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod,
                                          const char *name)
{
    return global(ID(cuModuleGetGlobal_v2), "cuModuleGetGlobal_v2", dptr, bytes,
                  (uint64_t)(uintptr_t)hmod, name, false);
}

VGPU_EXPORT CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
                                        const char *name)
{
    return global(ID(cuLibraryGetGlobal), "cuLibraryGetGlobal", dptr, bytes,
                  (uint64_t)(uintptr_t)library, name, true);
}
