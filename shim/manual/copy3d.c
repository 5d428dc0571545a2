/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 3D allocations, copies and memsets as what they are made of: a pitched
 * allocation of height x depth rows (cudaMalloc3D, as cudaMallocPitch
 * makes it), and one 2D copy or memset per slice, each checked by the
 * server as those are (copy.c, array.c, the generated cudaMemset2D).  A
 * copy with an array side takes the 2D array copies, so the array must be
 * one slice deep; copies between arrays and between devices' memory
 * (cudaMemcpy3DPeer) are not remoted yet.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>

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

/* Bytes of one element of a one-slice array, 0 for an array of more slices (or none). */
static size_t array_elem(cudaArray_const_t a)
{
    struct cudaChannelFormatDesc d;
    struct cudaExtent e;
    unsigned int flags;

    if (cudaArrayGetInfo(&d, &e, &flags, (cudaArray_t)a) != cudaSuccess || e.depth > 1)
        return 0;
    return (size_t)(d.x + d.y + d.z + d.w) / 8;
}

static cudaError_t copy3d(const struct cudaMemcpy3DParms *p, cudaStream_t stream, bool async)
{
    struct cudaExtent e;
    cudaError_t st = cudaSuccess;
    size_t elem;

    if (!p || (p->srcArray && p->srcPtr.ptr) || (p->dstArray && p->dstPtr.ptr) ||
        (!p->srcArray && !p->srcPtr.ptr) || (!p->dstArray && !p->dstPtr.ptr))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    e = p->extent;
    if (!e.width || !e.height || !e.depth)
        return cudaSuccess;
    if (p->srcArray && p->dstArray)
        return (cudaError_t)vgpu_shim_unsupported(async ? VGPU_CUDART_ID_cudaMemcpy3DAsync : VGPU_CUDART_ID_cudaMemcpy3D,
                                                  async ? "cudaMemcpy3DAsync" : "cudaMemcpy3D",
                                                  "copies between CUDA arrays are not remoted yet");
    if (p->srcArray || p->dstArray) {
        cudaArray_const_t a = p->srcArray ? (cudaArray_const_t)p->srcArray : (cudaArray_const_t)p->dstArray;
        struct cudaPos apos = p->srcArray ? p->srcPos : p->dstPos;

        /* an array side: one slice of it, its width in elements */
        if (!(elem = array_elem(a)) || e.depth != 1 || apos.z || e.width > SIZE_MAX / elem)
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
