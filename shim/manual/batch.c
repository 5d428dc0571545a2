/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Batched copies (cudaMemcpyBatchAsync, cudaMemcpy3DBatchAsync) as what
 * they mean: the batch's copies on its stream, one after another through
 * the shim's own cudaMemcpyAsync and cudaMemcpy3DAsync, each checked by
 * the server as those are.  CUDA leaves the order of a batch's copies open
 * and runs the batch in stream order, which this order is one of.  The
 * arguments are checked first, as CUDA documents them, so a batch that is
 * refused puts nothing on the stream; a copy that fails stops the batch
 * there with its status (CUDA 13's calls say no more: they have no
 * failIdx).
 *
 * A source whose accesses must end within the call
 * (cudaMemcpySrcAccessOrderDuringApiCall, meant for sources on the stack)
 * is read before the call returns: pageable memory is already (the data
 * plane stages or carries its bytes in the call), and page-locked memory
 * shared with the server, which it would DMA later, is copied aside first.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../shim_internal.h"

/* The legacy stream, which the batch calls refuse (0 is the per-thread one in a _ptsz call). */
static bool legacy(cudaStream_t stream, bool ptsz)
{
    return stream == cudaStreamLegacy || (!stream && !ptsz);
}

static bool order_ok(enum cudaMemcpySrcAccessOrder order)
{
    return order == cudaMemcpySrcAccessOrderStream || order == cudaMemcpySrcAccessOrderDuringApiCall ||
           order == cudaMemcpySrcAccessOrderAny;
}

static bool flags_ok(unsigned long long flags)
{
    return !(flags & ~(unsigned long long)cudaMemcpyFlagPreferOverlapWithCompute);
}

/*
 * attrs and attrsIdxs: numAttrs entries (at least 1, at most count), the
 * first index 0, each greater than the one before, the last below count;
 * every attribute's access order and flags valid.
 */
static bool attrs_ok(const struct cudaMemcpyAttributes *attrs, const size_t *idxs, size_t n,
                     size_t count)
{
    if (!attrs || !idxs || !n || n > count || idxs[0] != 0)
        return false;
    for (size_t k = 0; k < n; k++)
        if ((k && idxs[k] <= idxs[k - 1]) || idxs[k] >= count || !order_ok(attrs[k].srcAccessOrder) ||
            !flags_ok(attrs[k].flags))
            return false;
    return true;
}

/*
 * One copy of count bytes on stream; a source read within the call that
 * the server would otherwise DMA from later goes through a copy of it.
 */
static cudaError_t copy_one(void *dst, const void *src, size_t count, bool during_call,
                            cudaStream_t stream)
{
    uint64_t off;
    cudaError_t st;
    void *aside;

    if (!during_call || !count || vgpu_shim_is_device(src) || !vgpu_shim_host_region(src, count, &off))
        return cudaMemcpyAsync(dst, src, count, cudaMemcpyDefault, stream);
    if (!(aside = malloc(count)))
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    memcpy(aside, src, count);
    st = cudaMemcpyAsync(dst, aside, count, cudaMemcpyDefault, stream);
    /* pageable memory: read by the time the call returns (the data plane's staging) */
    free(aside);
    return st;
}

static cudaError_t batch(void *const *dsts, const void *const *srcs, const size_t *sizes,
                         size_t count, const struct cudaMemcpyAttributes *attrs,
                         const size_t *attrsIdxs, size_t numAttrs, cudaStream_t stream, bool ptsz)
{
    cudaError_t st = cudaSuccess;
    size_t k = 0;

    if (!count || !dsts || !srcs || !sizes || !attrs_ok(attrs, attrsIdxs, numAttrs, count) ||
        legacy(stream, ptsz))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if (ptsz && !stream)
        stream = cudaStreamPerThread;
    for (size_t i = 0; i < count && st == cudaSuccess; i++) {
        if (k + 1 < numAttrs && i == attrsIdxs[k + 1])
            k++;
        st = copy_one(dsts[i], srcs[i], sizes[i],
                      attrs[k].srcAccessOrder == cudaMemcpySrcAccessOrderDuringApiCall, stream);
    }
    return st;
}

VGPU_EXPORT cudaError_t cudaMemcpyBatchAsync(void *const *dsts, const void *const *srcs,
                                             const size_t *sizes, size_t count,
                                             struct cudaMemcpyAttributes *attrs, size_t *attrsIdxs,
                                             size_t numAttrs, cudaStream_t stream)
{
    return batch(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, stream, false);
}

VGPU_EXPORT cudaError_t cudaMemcpyBatchAsync_ptsz(void *const *dsts, const void *const *srcs,
                                                  const size_t *sizes, size_t count,
                                                  struct cudaMemcpyAttributes *attrs,
                                                  size_t *attrsIdxs, size_t numAttrs,
                                                  cudaStream_t stream)
{
    return batch(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, stream, true);
}

/* ---- 3D ---- */

/* Bytes of one element of an array operand; 0 when it is no array of this process's. */
static size_t elem_of(cudaArray_t a)
{
    struct cudaChannelFormatDesc d;
    struct cudaExtent e;
    unsigned int flags;

    if (!a || cudaArrayGetInfo(&d, &e, &flags, a) != cudaSuccess)
        return 0;
    return (size_t)(d.x + d.y + d.z + d.w) / 8;
}

/*
 * One side of op as cudaMemcpy3DParms names it: an array at its offset,
 * or a pointer with its rows rowLength elements of elem bytes apart (0:
 * the copy's width) and its layers layerHeight rows (0: the copy's
 * height).  false when the operand is not valid.
 */
static bool operand(const struct cudaMemcpy3DOperand *o, struct cudaExtent e, size_t elem,
                    cudaArray_t *array, struct cudaPos *pos, struct cudaPitchedPtr *ptr)
{
    size_t row, rows;

    if (o->type == cudaMemcpyOperandTypeArray) {
        if (!o->op.array.array)
            return false;
        *array = o->op.array.array;
        *pos = (struct cudaPos){ o->op.array.offset.x, o->op.array.offset.y, o->op.array.offset.z };
        return true;
    }
    if (o->type != cudaMemcpyOperandTypePointer || !o->op.ptr.ptr ||
        (o->op.ptr.rowLength && o->op.ptr.rowLength < e.width) ||
        (o->op.ptr.layerHeight && o->op.ptr.layerHeight < e.height))
        return false;
    row = o->op.ptr.rowLength ? o->op.ptr.rowLength : e.width;
    rows = o->op.ptr.layerHeight ? o->op.ptr.layerHeight : e.height;
    if (row > SIZE_MAX / elem)
        return false;
    *ptr = (struct cudaPitchedPtr){ .ptr = o->op.ptr.ptr, .pitch = row * elem,
                                    .xsize = e.width * elem, .ysize = rows };
    return true;
}

/* op as the cudaMemcpy3DParms of cudaMemcpy3DAsync; false when it is not valid. */
static bool op_params(const struct cudaMemcpy3DBatchOp *op, struct cudaMemcpy3DParms *p)
{
    size_t elem = 1;

    memset(p, 0, sizeof(*p));
    p->extent = op->extent;
    p->kind = cudaMemcpyDefault;
    if (!op->extent.width || !op->extent.height || !op->extent.depth ||
        !order_ok(op->srcAccessOrder) || !flags_ok(op->flags))
        return false;
    /* a pointer's elements are bytes, or the array's on the other side */
    if (op->src.type == cudaMemcpyOperandTypeArray && op->dst.type == cudaMemcpyOperandTypePointer)
        elem = elem_of(op->src.op.array.array);
    else if (op->dst.type == cudaMemcpyOperandTypeArray && op->src.type == cudaMemcpyOperandTypePointer)
        elem = elem_of(op->dst.op.array.array);
    return elem && operand(&op->src, op->extent, elem, &p->srcArray, &p->srcPos, &p->srcPtr) &&
           operand(&op->dst, op->extent, elem, &p->dstArray, &p->dstPos, &p->dstPtr);
}

/*
 * The span a pointer operand's copy reads: whole layers but the last, whole
 * rows of it but the last, then the row's width (SIZE_MAX when it would not fit).
 */
static size_t pointer_span(const struct cudaMemcpy3DParms *p)
{
    size_t layer, layers, rows;

    if (p->srcPtr.ysize && p->srcPtr.pitch > SIZE_MAX / p->srcPtr.ysize)
        return SIZE_MAX;
    layer = p->srcPtr.pitch * p->srcPtr.ysize;
    if (p->extent.depth > 1 && layer > SIZE_MAX / (p->extent.depth - 1))
        return SIZE_MAX;
    if (p->extent.height > 1 && p->srcPtr.pitch > SIZE_MAX / (p->extent.height - 1))
        return SIZE_MAX;
    layers = (p->extent.depth - 1) * layer;
    rows = (p->extent.height - 1) * p->srcPtr.pitch;
    if (rows > SIZE_MAX - p->srcPtr.xsize || layers > SIZE_MAX - rows - p->srcPtr.xsize)
        return SIZE_MAX;
    return layers + rows + p->srcPtr.xsize;
}

static cudaError_t batch3d(size_t numOps, const struct cudaMemcpy3DBatchOp *opList,
                           unsigned long long flags, cudaStream_t stream, bool ptsz)
{
    struct cudaMemcpy3DParms *ps;
    cudaError_t st = cudaSuccess;

    if (!numOps || !opList || flags || legacy(stream, ptsz) || numOps > SIZE_MAX / sizeof(*ps))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if (!(ps = malloc(numOps * sizeof(*ps))))
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    for (size_t i = 0; i < numOps; i++)
        if (!op_params(&opList[i], &ps[i])) {
            free(ps);
            return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
        }
    if (ptsz && !stream)
        stream = cudaStreamPerThread;
    for (size_t i = 0; i < numOps && st == cudaSuccess; i++) {
        struct cudaMemcpy3DParms *p = &ps[i];
        uint64_t off;
        size_t span;
        void *aside = NULL;

        /* a source read within the call, which the server would DMA from later: copied aside */
        if (opList[i].srcAccessOrder == cudaMemcpySrcAccessOrderDuringApiCall && p->srcPtr.ptr &&
            !vgpu_shim_is_device(p->srcPtr.ptr) && (span = pointer_span(p)) != SIZE_MAX &&
            vgpu_shim_host_region(p->srcPtr.ptr, span, &off)) {
            if (!(aside = malloc(span))) {
                st = (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
                break;
            }
            memcpy(aside, p->srcPtr.ptr, span);
            p->srcPtr.ptr = aside;
        }
        st = cudaMemcpy3DAsync(p, stream);
        free(aside);
    }
    free(ps);
    return st;
}

VGPU_EXPORT cudaError_t cudaMemcpy3DBatchAsync(size_t numOps, struct cudaMemcpy3DBatchOp *opList,
                                               unsigned long long flags, cudaStream_t stream)
{
    return batch3d(numOps, opList, flags, stream, false);
}

VGPU_EXPORT cudaError_t cudaMemcpy3DBatchAsync_ptsz(size_t numOps, struct cudaMemcpy3DBatchOp *opList,
                                                    unsigned long long flags, cudaStream_t stream)
{
    return batch3d(numOps, opList, flags, stream, true);
}
