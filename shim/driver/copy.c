/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Copies for libcuda.so.1: every linear form (1D, 2D, peer, async, the
 * per-thread ones), through the data plane both guest libraries share
 * (shim/dataplane.c): page-locked regions in place, pageable memory through
 * the staging region, frames otherwise.  Each copy is sent under its own
 * call id; the server's handler is the runtime's.  Which side an address is
 * on comes from memory.c.  Copies with CUDA arrays are not remoted yet.
 */
#include <cuda.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cuda_calltable.h"
#include "dataplane.h"
#include "driver_internal.h"
#include "manual.pb-c.h"

#define ID(name) VGPU_CUDA_ID_##name

#define VGPU_DRV_CHUNK ((size_t)VGPU_SHIM_CHUNK)
#define H2D VGPU__MANUAL__DIRECTION__DIR_H2D
#define D2H VGPU__MANUAL__DIRECTION__DIR_D2H
#define D2D VGPU__MANUAL__DIRECTION__DIR_D2D

/* The call a copy through the data plane is sent as (the copying function's own). */
static __thread uint32_t dp_id;
static __thread const char *dp_name;

static CUresult copy_call(uint32_t id, const char *name, Vgpu__Manual__CopyArgs *a,
                          const void *in, void *out, size_t bytes)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    vgpu_shim_copy_req(&req, a, in, out, bytes);
    st = vgpu_drv_call(id, name, &a->base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    return st;
}

static int dp_call(Vgpu__Manual__CopyArgs *a, const void *in, void *out, size_t bytes)
{
    return copy_call(dp_id, dp_name, a, in, out, bytes);
}

/* A stream being captured is not waited for: that would end its capture (the copy becomes a node). */
static void dp_sync(uint64_t stream)
{
    CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;

    if (cuStreamIsCapturing((CUstream)(uintptr_t)stream, &cs) == CUDA_SUCCESS &&
        cs == CU_STREAM_CAPTURE_STATUS_NONE)
        cuStreamSynchronize((CUstream)(uintptr_t)stream);
}

static const struct vgpu_dp driver_dp = {
    .staging_region = VGPU_DRV_STAGING_REGION,
    .call = dp_call,
    .host_region = vgpu_drv_host_region,
    .sync = dp_sync,
    .host_locked = vgpu_drv_host_locked,
    .lock = vgpu_drv_memory_lock,
    .unlock = vgpu_drv_memory_unlock,
    .forked = vgpu_drv_memory_forked,
};

__attribute__((constructor)) static void copy_init(void)
{
    vgpu_dp_init(&driver_dp);
}

/*
 * One linear copy, in pieces that fit a frame; dir as the pointers say.
 * An asynchronous copy from pageable memory travels with its call, so the
 * caller may reuse its buffer at once, as with the driver's staging.
 */
static CUresult copy1d_raw(uint32_t id, const char *name, Vgpu__Manual__Direction dir,
                           uint64_t dst, uint64_t src, size_t n, CUstream stream, bool async,
                           bool managed);

/*
 * Managed memory named by a copy is device memory to it (the client's
 * shadow, client/managed.c): the bytes the host wrote there go first, the
 * chunks it writes are the device's after, and the copy's direction says
 * so, whatever the function's name claims of a side.
 */
static Vgpu__Manual__Direction managed_sides(Vgpu__Manual__Direction dir, uint64_t dst,
                                             uint64_t src, size_t dspan, size_t sspan)
{
    bool d = dspan && vgpu_drv_managed_holds(dst, 1), s = sspan && vgpu_drv_managed_holds(src, 1);
    bool dd = d || dir == H2D || dir == D2D, sd = s || dir == D2H || dir == D2D;

    if (!d && !s)
        return dir;
    if (s)
        vgpu_drv_managed_device_side(src, sspan, false);
    if (d)
        vgpu_drv_managed_device_side(dst, dspan, true);
    return dd && sd ? D2D : dd ? H2D : sd ? D2H : VGPU__MANUAL__DIRECTION__DIR_NONE;
}

static CUresult copy1d(uint32_t id, const char *name, Vgpu__Manual__Direction dir, uint64_t dst,
                       uint64_t src, size_t n, CUstream stream, bool async)
{
    return copy1d_raw(id, name, managed_sides(dir, dst, src, n, n), dst, src, n, stream, async,
                      false);
}

int vgpu_drv_copy_raw(void *host, uint64_t dev, size_t n, bool to_device)
{
    uint64_t h = (uint64_t)(uintptr_t)host;

    return to_device ? copy1d_raw(ID(cuMemcpyHtoD_v2), "cuMemcpyHtoD_v2", H2D, dev, h, n, NULL,
                                  false, true)
                     : copy1d_raw(ID(cuMemcpyDtoH_v2), "cuMemcpyDtoH_v2", D2H, h, dev, n, NULL,
                                  false, true);
}

/* A copy as copy1d makes it; managed: one of managed memory's own moves (on the server's stream). */
static CUresult copy1d_raw(uint32_t id, const char *name, Vgpu__Manual__Direction dir,
                           uint64_t dst, uint64_t src, size_t n, CUstream stream, bool async,
                           bool managed)
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
        a.managed = managed;
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
    bool d = vgpu_drv_is_device(dst) || !mapped_here(dst), s = vgpu_drv_is_device(src) || !mapped_here(src);

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
        *on_device = vgpu_drv_is_device(dev) || !mapped_here(dev);
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
    /* rows of managed memory: the spans from the first row's start to the last row's end */
    if (p->Height && p->WidthInBytes)
        a.dir = managed_sides(a.dir, dst, src, (p->Height - 1) * p->dstPitch + p->WidthInBytes,
                              (p->Height - 1) * p->srcPitch + p->WidthInBytes);
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
        vgpu_dp_wait_for_callbacks(a.dir, a.async, a.stream, (const void *)(uintptr_t)src);
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

