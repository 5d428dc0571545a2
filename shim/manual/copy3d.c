/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 3D allocations, copies and memsets as what they are made of: a pitched
 * allocation of height x depth rows (cudaMalloc3D, as cudaMallocPitch
 * makes it), and one 2D copy or memset per slice, each checked by the
 * server as those are (copy.c, array.c, the generated cudaMemset2D).  A
 * copy with one array side takes the 2D array copies, so the array must be
 * one slice deep; a copy between two arrays is one call, which the server
 * checks against both (array.c).  cudaMemcpy3DPeer is cudaMemcpy3D on the
 * one device it names, or, between two devices, two copies through a host
 * buffer, as CUDA copies between devices without a direct path.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdlib.h>

#include "../shim_internal.h"
#include "cudart_calltable.h"

VGPU_EXPORT cudaError_t cudaMalloc3D(struct cudaPitchedPtr *pitchedDevPtr, struct cudaExtent extent)
{
    size_t pitch = 0;
    void *p = NULL;
    cudaError_t st;

    if (!pitchedDevPtr || (extent.depth && extent.height > SIZE_MAX / extent.depth))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    st = cudaMallocPitch(&p, &pitch, extent.width, extent.height * extent.depth);
    if (st == cudaSuccess)
        *pitchedDevPtr = (struct cudaPitchedPtr){ .ptr = p, .pitch = pitch, .xsize = extent.width,
                                                  .ysize = extent.height };
    return st;
}

/* Slice z's first row of a pitched pointer at pos: NULL when it does not fit in size_t. */
static char *slice(struct cudaPitchedPtr pp, struct cudaPos pos, size_t z)
{
    size_t stride, at;

    if (pp.ysize && pp.pitch > SIZE_MAX / pp.ysize)
        return NULL;
    stride = pp.pitch * pp.ysize;
    if (pos.z + z < pos.z || (stride && pos.z + z > SIZE_MAX / stride))
        return NULL;
    at = (pos.z + z) * stride;
    if (pos.y && pp.pitch > (SIZE_MAX - at) / pos.y)
        return NULL;
    at += pos.y * pp.pitch;
    if (pos.x > SIZE_MAX - at)
        return NULL;
    return (char *)pp.ptr + at + pos.x;
}

static cudaError_t memset3d(struct cudaPitchedPtr pp, int value, struct cudaExtent extent,
                            cudaStream_t stream, bool async)
{
    cudaError_t st = cudaSuccess;

    if (extent.depth > 1 && extent.height > pp.ysize)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    for (size_t z = 0; z < extent.depth && st == cudaSuccess; z++) {
        char *at = slice(pp, (struct cudaPos){ 0, 0, 0 }, z);

        if (!at)
            return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
        st = async ? cudaMemset2DAsync(at, pp.pitch, value, extent.width, extent.height, stream)
                   : cudaMemset2D(at, pp.pitch, value, extent.width, extent.height);
    }
    return st;
}

VGPU_EXPORT cudaError_t cudaMemset3D(struct cudaPitchedPtr pitchedDevPtr, int value,
                                     struct cudaExtent extent)
{
    return memset3d(pitchedDevPtr, value, extent, NULL, false);
}

/* the synchronous forms of a per-thread default stream build: on its stream, then waited for */
VGPU_EXPORT cudaError_t cudaMemset3D_ptds(struct cudaPitchedPtr pitchedDevPtr, int value,
                                          struct cudaExtent extent)
{
    cudaError_t st = memset3d(pitchedDevPtr, value, extent, cudaStreamPerThread, true);

    return st == cudaSuccess ? cudaStreamSynchronize(cudaStreamPerThread) : st;
}

VGPU_EXPORT cudaError_t cudaMemset3DAsync(struct cudaPitchedPtr pitchedDevPtr, int value,
                                          struct cudaExtent extent, cudaStream_t stream)
{
    return memset3d(pitchedDevPtr, value, extent, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemset3DAsync_ptsz(struct cudaPitchedPtr pitchedDevPtr, int value,
                                               struct cudaExtent extent, cudaStream_t stream)
{
    return memset3d(pitchedDevPtr, value, extent, stream ? stream : cudaStreamPerThread, true);
}

/* Bytes of one element of the array, 0 when it cannot say; *depth: its slices (0 or 1: one). */
static size_t array_elem(cudaArray_const_t a, size_t *depth)
{
    struct cudaChannelFormatDesc d;
    struct cudaExtent e;
    unsigned int flags;

    if (cudaArrayGetInfo(&d, &e, &flags, (cudaArray_t)a) != cudaSuccess)
        return 0;
    *depth = e.depth;
    return (size_t)(d.x + d.y + d.z + d.w) / 8;
}

/* One source and one destination, each an array or a pointer. */
static bool sides_ok(const struct cudaMemcpy3DParms *p)
{
    return p && !(p->srcArray && p->srcPtr.ptr) && !(p->dstArray && p->dstPtr.ptr) &&
           (p->srcArray || p->srcPtr.ptr) && (p->dstArray || p->dstPtr.ptr);
}

static cudaError_t copy3d(const struct cudaMemcpy3DParms *p, cudaStream_t stream, bool async)
{
    struct cudaExtent e;
    cudaError_t st = cudaSuccess;
    size_t elem;

    if (!sides_ok(p))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    e = p->extent;
    if (!e.width || !e.height || !e.depth)
        return cudaSuccess;
    if (p->srcArray && p->dstArray)
        return (cudaError_t)vgpu_shim_copy3d_arrays(p, stream, async);
    if (p->srcArray || p->dstArray) {
        cudaArray_const_t a = p->srcArray ? (cudaArray_const_t)p->srcArray : (cudaArray_const_t)p->dstArray;
        struct cudaPos apos = p->srcArray ? p->srcPos : p->dstPos;
        size_t depth = 0;

        /* an array side: one slice of it, its width in elements */
        if (!(elem = array_elem(a, &depth)) || depth > 1 || e.depth != 1 || apos.z ||
            e.width > SIZE_MAX / elem)
            return (cudaError_t)vgpu_shim_unsupported(async ? VGPU_CUDART_ID_cudaMemcpy3DAsync : VGPU_CUDART_ID_cudaMemcpy3D,
                                                  async ? "cudaMemcpy3DAsync" : "cudaMemcpy3D",
                                                      "3D copies of arrays deeper than one slice are not remoted yet");
        if (p->srcArray) {
            char *dst = slice(p->dstPtr, p->dstPos, 0);

            if (!dst)
                return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
            return async ? cudaMemcpy2DFromArrayAsync(dst, p->dstPtr.pitch, a, apos.x * elem, apos.y,
                                                      e.width * elem, e.height, p->kind, stream)
                         : cudaMemcpy2DFromArray(dst, p->dstPtr.pitch, a, apos.x * elem, apos.y,
                                                 e.width * elem, e.height, p->kind);
        } else {
            const char *src = slice(p->srcPtr, p->srcPos, 0);

            if (!src)
                return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
            return async ? cudaMemcpy2DToArrayAsync((cudaArray_t)a, apos.x * elem, apos.y, src,
                                                    p->srcPtr.pitch, e.width * elem, e.height,
                                                    p->kind, stream)
                         : cudaMemcpy2DToArray((cudaArray_t)a, apos.x * elem, apos.y, src,
                                               p->srcPtr.pitch, e.width * elem, e.height, p->kind);
        }
    }
    /* pitched memory on both sides: a slice must lie within its allocation's rows */
    if (e.depth > 1 && (p->srcPos.y + e.height > p->srcPtr.ysize ||
                        p->dstPos.y + e.height > p->dstPtr.ysize))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    for (size_t z = 0; z < e.depth && st == cudaSuccess; z++) {
        char *dst = slice(p->dstPtr, p->dstPos, z);
        const char *src = slice(p->srcPtr, p->srcPos, z);

        if (!dst || !src)
            return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
        st = async ? cudaMemcpy2DAsync(dst, p->dstPtr.pitch, src, p->srcPtr.pitch, e.width, e.height,
                                       p->kind, stream)
                   : cudaMemcpy2D(dst, p->dstPtr.pitch, src, p->srcPtr.pitch, e.width, e.height,
                                  p->kind);
    }
    return st;
}

VGPU_EXPORT cudaError_t cudaMemcpy3D(const struct cudaMemcpy3DParms *p)
{
    return copy3d(p, NULL, false);
}

VGPU_EXPORT cudaError_t cudaMemcpy3D_ptds(const struct cudaMemcpy3DParms *p)
{
    cudaError_t st = copy3d(p, cudaStreamPerThread, true);

    return st == cudaSuccess ? cudaStreamSynchronize(cudaStreamPerThread) : st;
}

VGPU_EXPORT cudaError_t cudaMemcpy3DAsync(const struct cudaMemcpy3DParms *p, cudaStream_t stream)
{
    return copy3d(p, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpy3DAsync_ptsz(const struct cudaMemcpy3DParms *p, cudaStream_t stream)
{
    return copy3d(p, stream ? stream : cudaStreamPerThread, true);
}

/* ---- between devices ---- */

/* device is one of this process's devices (cudaGetDeviceCount through the shim) */
static cudaError_t device_ok(int device)
{
    int n = 0;
    cudaError_t st = cudaGetDeviceCount(&n);

    if (st != cudaSuccess)
        return st;
    return device >= 0 && device < n ? cudaSuccess : (cudaError_t)vgpu_shim_status(cudaErrorInvalidDevice);
}

/* copy3d with device current for it, the thread's device again after */
static cudaError_t copy3d_on(int device, const struct cudaMemcpy3DParms *p, cudaStream_t stream,
                             bool async)
{
    int cur = vgpu_shim_device();
    cudaError_t st = cur == device ? cudaSuccess : cudaSetDevice(device);

    if (st != cudaSuccess)
        return st;
    st = copy3d(p, stream, async);
    if (cur != device) {
        cudaError_t back = cudaSetDevice(cur);

        st = st == cudaSuccess ? back : st;
    }
    return st;
}

/* The bytes of one row of the copy: its width in elements of its array side (bytes without one). */
static size_t row_bytes(const struct cudaMemcpy3DParms *p)
{
    size_t elem = 1, depth;

    if (p->srcArray || p->dstArray)
        elem = array_elem(p->srcArray ? (cudaArray_const_t)p->srcArray : (cudaArray_const_t)p->dstArray,
                          &depth);
    return elem && p->extent.width <= SIZE_MAX / elem ? p->extent.width * elem : 0;
}

/*
 * Two copies through a packed host buffer: from the source on its device,
 * then to the destination on its.  The async form waits for its stream
 * before the buffer goes (so only its first copy is asynchronous).
 */
static cudaError_t peer_by_host(const struct cudaMemcpy3DPeerParms *p, cudaStream_t stream, bool async)
{
    struct cudaMemcpy3DParms out = { 0 }, in = { 0 };
    struct cudaExtent e = p->extent;
    size_t row, bytes;
    cudaError_t st;
    void *buf;

    out.srcArray = p->srcArray;
    out.srcPos = p->srcPos;
    out.srcPtr = p->srcPtr;
    out.extent = e;
    in.dstArray = p->dstArray;
    in.dstPos = p->dstPos;
    in.dstPtr = p->dstPtr;
    in.extent = e;
    row = row_bytes(&out) ? row_bytes(&out) : row_bytes(&in);
    if (!row || (p->srcArray && p->dstArray && row_bytes(&out) != row_bytes(&in)))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if (e.height > SIZE_MAX / row || (e.depth && e.height * row > SIZE_MAX / e.depth))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    bytes = row * e.height * e.depth;
    if (!(buf = malloc(bytes)))
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    out.dstPtr = (struct cudaPitchedPtr){ .ptr = buf, .pitch = row, .xsize = row, .ysize = e.height };
    out.kind = cudaMemcpyDeviceToHost;
    in.srcPtr = out.dstPtr;
    in.kind = cudaMemcpyHostToDevice;
    st = copy3d_on(p->srcDevice, &out, stream, async);
    if (st == cudaSuccess)
        st = copy3d_on(p->dstDevice, &in, stream, async);
    if (async) {
        cudaError_t done = cudaStreamSynchronize(stream);

        st = st == cudaSuccess ? done : st;
    }
    free(buf);
    return st;
}

static cudaError_t peer3d(const struct cudaMemcpy3DPeerParms *p, cudaStream_t stream, bool async)
{
    struct cudaMemcpy3DParms q = { 0 };
    cudaError_t st;

    if (!p)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if ((st = device_ok(p->srcDevice)) != cudaSuccess || (st = device_ok(p->dstDevice)) != cudaSuccess)
        return st;
    q.srcArray = p->srcArray;
    q.srcPos = p->srcPos;
    q.srcPtr = p->srcPtr;
    q.dstArray = p->dstArray;
    q.dstPos = p->dstPos;
    q.dstPtr = p->dstPtr;
    q.extent = p->extent;
    q.kind = cudaMemcpyDeviceToDevice;  /* both sides are device memory or arrays */
    if (!sides_ok(&q))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if (p->srcDevice == p->dstDevice || !q.extent.width || !q.extent.height || !q.extent.depth)
        return copy3d_on(p->srcDevice, &q, stream, async);
    return peer_by_host(p, stream, async);
}

VGPU_EXPORT cudaError_t cudaMemcpy3DPeer(const struct cudaMemcpy3DPeerParms *p)
{
    return peer3d(p, NULL, false);
}

VGPU_EXPORT cudaError_t cudaMemcpy3DPeer_ptds(const struct cudaMemcpy3DPeerParms *p)
{
    cudaError_t st = peer3d(p, cudaStreamPerThread, true);

    return st == cudaSuccess ? cudaStreamSynchronize(cudaStreamPerThread) : st;
}

VGPU_EXPORT cudaError_t cudaMemcpy3DPeerAsync(const struct cudaMemcpy3DPeerParms *p, cudaStream_t stream)
{
    return peer3d(p, stream, true);
}

VGPU_EXPORT cudaError_t cudaMemcpy3DPeerAsync_ptsz(const struct cudaMemcpy3DPeerParms *p,
                                                   cudaStream_t stream)
{
    return peer3d(p, stream ? stream : cudaStreamPerThread, true);
}
