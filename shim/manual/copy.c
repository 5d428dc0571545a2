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

static int copy_call(uint32_t id, const char *name, Vgpu__Manual__CopyArgs *a,
                     const void *in, void *out, size_t bytes)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    vgpu_shim_copy_req(&req, a, in, out, bytes);
    st = vgpu_shim_call(id, name, &a->base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    return st;
}

static int dp_call(Vgpu__Manual__CopyArgs *a, const void *in, void *out, size_t bytes)
{
    return copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy", a, in, out, bytes);
}

/* A stream being captured is not waited for: that would end its capture (the copy becomes a node). */
static void dp_sync(uint64_t stream)
{
    cudaError_t last = cudaPeekAtLastError();
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;

    if (cudaStreamIsCapturing((cudaStream_t)(uintptr_t)stream, &cs) == cudaSuccess &&
        cs == cudaStreamCaptureStatusNone)
        cudaStreamSynchronize((cudaStream_t)(uintptr_t)stream);
    if (last == cudaSuccess)
        cudaGetLastError();    /* the copy reports its own status, not the wait's */
}

static const struct vgpu_dp cudart_dp = {
    .staging_region = VGPU_SHIM_STAGING_REGION,
    .call = dp_call,
    .host_region = vgpu_shim_host_region,
    .sync = dp_sync,
    .host_locked = vgpu_shim_host_locked,
    .lock = vgpu_shim_memory_lock,
    .unlock = vgpu_shim_memory_unlock,
    .forked = vgpu_shim_memory_forked,
};

__attribute__((constructor)) static void copy_init(void)
{
    vgpu_dp_init(&cudart_dp);
}

/*
 * Managed memory named by a copy is device memory to it (managed.c): the
 * bytes the host wrote there go first, and the chunks it writes are the
 * device's after.  The copy then goes by the pointers, as with unified
 * addressing (managed ranges are device ranges here).
 */
static enum cudaMemcpyKind managed_sides(void *dst, const void *src, size_t dspan, size_t sspan,
                                         enum cudaMemcpyKind kind)
{
    bool d = dst && dspan && vgpu_managed_holds(dst, 1), s = src && sspan && vgpu_managed_holds(src, 1);

    if (!d && !s)
        return kind;
    if (s)
        vgpu_managed_device_reads(src, sspan);
    if (d)
        vgpu_managed_device_writes(dst, dspan);
    return (int)kind >= cudaMemcpyHostToHost && kind <= cudaMemcpyDefault ? cudaMemcpyDefault : kind;
}

static int copy1d_raw(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                      cudaStream_t stream, bool async, bool managed);

static int copy1d(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                  cudaStream_t stream, bool async)
{
    kind = managed_sides(dst, src, count, count, kind);
    return copy1d_raw(dst, src, count, kind, stream, async, false);
}

int vgpu_shim_copy_raw(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    return copy1d_raw(dst, src, count, kind, NULL, false, true);
}

static int copy1d_raw(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                      cudaStream_t stream, bool async, bool managed)
{
    Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;
    Vgpu__Manual__Direction dir = direction(dst, src, kind);

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
    a.managed = managed;
    if (dir == VGPU__MANUAL__DIRECTION__DIR_D2D) {
        a.dst = (uint64_t)(uintptr_t)dst;
        a.src = (uint64_t)(uintptr_t)src;
        a.count = count;
        return copy_call(VGPU_CUDART_ID_cudaMemcpy, "cudaMemcpy", &a, NULL, NULL, 0);
    }
    return vgpu_dp_copy(&a, dst, src, count);
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

/* The bytes a 2D copy spans on one side: (height - 1) rows of pitch, then width; 0 on overflow. */
static size_t span2d(size_t pitch, size_t width, size_t height)
{
    if (!width || !height || (height > 1 && pitch > (SIZE_MAX - width) / (height - 1)))
        return 0;
    return (height - 1) * pitch + width;
}

static int copy2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                  size_t height, enum cudaMemcpyKind kind, cudaStream_t stream, bool async)
{
    Vgpu__Manual__CopyArgs a = VGPU__MANUAL__COPY_ARGS__INIT;
    Vgpu__Manual__Direction dir;
    size_t rows_per, done = 0;
    uint8_t *buf;
    int st = cudaSuccess;

    kind = managed_sides(dst, src, span2d(dpitch, width, height), span2d(spitch, width, height), kind);
    dir = direction(dst, src, kind);
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
    vgpu_dp_wait_for_callbacks(a.dir, a.async, a.stream, src);
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
