/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Copies (spec: manual): host bytes travel in the frame's segments or
 * stay in a shared region the session mapped; every device extent, pitched
 * spans included, is checked against the session's ranges before CUDA
 * sees it, and bytes that travel are bounded.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>

#include "manual_internal.h"

/* The host side of a copy in a shared region: [off, off+len) inside region id. */
static void *region_span(struct vgpu_session *s, uint32_t id, uint64_t off, uint64_t len)
{
    struct vgpu_region *r = vgpu_region_find(s, id);

    if (!r || off > r->size || len > r->size - off)
        return NULL;
    return r->base + off;
}

static int copy_dir(struct vgpu_session *s, struct vgpu_manual_call *c,
                    const Vgpu__Manual__CopyArgs *a, cudaStream_t st, bool ordered, uint64_t bytes,
                    uint64_t dspan, uint64_t sspan);

/* The server's own stream for managed memory's moves, made once (again after a device reset). */
static cudaStream_t managed_st;

static cudaStream_t managed_stream(void)
{
    if (!managed_st && cudaStreamCreateWithFlags(&managed_st, cudaStreamNonBlocking) != cudaSuccess)
        managed_st = NULL;
    return managed_st;
}

void vgpu_copy_forget_stream(void)
{
    managed_st = NULL;          /* a device reset destroyed it */
}

int vgpu_manual_copy(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__CopyArgs, copy_args, c);
    cudaStream_t st = (cudaStream_t)(uintptr_t)a->stream;
    uint64_t bytes = a->is_2d ? a->count * a->height : a->count, dspan, sspan;
    int rc = cudaErrorInvalidValue;
    /*
     * A part of a pageable copy through the staging region is synchronous
     * (the shim reuses the region), but its stream still orders it: it runs
     * on that stream and is waited for, so it comes after the stream's
     * earlier work, which the legacy stream's cudaMemcpy would not wait for
     * on a non-blocking stream.  Not while the stream captures: the region
     * must not become a graph's node (refused as before).
     */
    bool ordered = !a->async && a->region && a->stream;

    if ((a->async || ordered) && !stream_ok(s, a->stream)) {
        rc = cudaErrorInvalidResourceHandle;
        goto out;
    }
    if (ordered && vgpu_graph_capturing(s, st))
        ordered = false;
    if (a->is_2d && a->count && a->height > UINT64_MAX / a->count)
        goto out;
    /* bytes that travel are bounded; a device-to-device copy or a shared region carries none */
    if (a->dir != VGPU__MANUAL__DIRECTION__DIR_D2D && !a->region && bytes > VGPU_CALL_MAX_BYTES)
        goto out;
    dspan = sspan = bytes;
    /* pitched spans: (height - 1) * pitch + width, width <= pitch, no overflow */
    if (a->is_2d && (vgpu_span_2d(a->dpitch, a->count, a->height, &dspan) ||
                     vgpu_span_2d(a->spitch, a->count, a->height, &sspan)))
        goto out;
    if (a->managed) {
        /* managed memory's own move: never part of, nor in the way of, the program's capture */
        enum cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;

        if (!(st = managed_stream())) {
            rc = cudaErrorMemoryAllocation;
            goto out;
        }
        a->async = true;
        cudaThreadExchangeStreamCaptureMode(&mode);
        vgpu_work_begin(s);
        rc = copy_dir(s, c, a, st, false, bytes, dspan, sspan);
        if (rc == cudaSuccess)
            rc = cudaStreamSynchronize(st);
        vgpu_work_end(s, NULL, 0);
        cudaThreadExchangeStreamCaptureMode(&mode);
        goto out;
    }
    if (a->async && a->dir != VGPU__MANUAL__DIRECTION__DIR_D2D &&
        vgpu_graph_copy_refused(s, st, a->region)) {
        rc = cudaErrorStreamCaptureUnsupported;
        goto out;
    }
    vgpu_work_begin(s);
    rc = copy_dir(s, c, a, st, ordered, bytes, dspan, sspan);
    vgpu_work_end(s, a->async || ordered ? (void *)st : NULL, rc == cudaSuccess);
    /*
     * A synchronous copy to the host has finished, and waited for the work
     * before it on the default stream: no event needs to tell.
     */
    if (rc == cudaSuccess && !a->async && !ordered && a->dir == VGPU__MANUAL__DIRECTION__DIR_D2H)
        vgpu_work_synced(s, NULL, 0);
    /* ... and so has one on a stream waited for: ordered, or whose bytes go back in the reply */
    if (rc == cudaSuccess && (ordered || (a->async && !a->region &&
                                          a->dir == VGPU__MANUAL__DIRECTION__DIR_D2H)))
        vgpu_work_synced(s, st, 0);
out:
    vgpu__manual__copy_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

/* One checked copy in the direction a names; the status CUDA gave, or why not. */
static int copy_dir(struct vgpu_session *s, struct vgpu_manual_call *c,
                    const Vgpu__Manual__CopyArgs *a, cudaStream_t st, bool ordered, uint64_t bytes,
                    uint64_t dspan, uint64_t sspan)
{
    void *dst = (void *)(uintptr_t)a->dst, *buf;
    const void *src = (const void *)(uintptr_t)a->src;
    int rc = cudaErrorInvalidValue;

    switch (a->dir) {
    case VGPU__MANUAL__DIRECTION__DIR_H2D:
        if (a->region) {
            /* from shared, pinned host memory: DMA, no bytes in the frame */
            const void *from = region_span(s, a->region, a->region_offset, bytes);

            if (!from || c->nseg != 0 || a->is_2d || !vgpu_range_check(s, a->dst, dspan))
                goto out;
            rc = a->async || ordered ? cudaMemcpyAsync(dst, from, bytes, cudaMemcpyHostToDevice, st)
                                     : cudaMemcpy(dst, from, bytes, cudaMemcpyHostToDevice);
            if (rc == cudaSuccess && ordered)
                rc = cudaStreamSynchronize(st);
            break;
        }
        if (c->nseg != 1 || c->seg[0].len != bytes || !vgpu_range_check(s, a->dst, dspan))
            goto out;
        if (a->is_2d)
            rc = a->async ? cudaMemcpy2DAsync(dst, a->dpitch, c->seg[0].data, a->count, a->count,
                                              a->height, cudaMemcpyHostToDevice, st)
                          : cudaMemcpy2D(dst, a->dpitch, c->seg[0].data, a->count, a->count,
                                         a->height, cudaMemcpyHostToDevice);
        else
            rc = a->async ? cudaMemcpyAsync(dst, c->seg[0].data, bytes, cudaMemcpyHostToDevice, st)
                          : cudaMemcpy(dst, c->seg[0].data, bytes, cudaMemcpyHostToDevice);
        break;
    case VGPU__MANUAL__DIRECTION__DIR_D2H:
        if (a->region) {
            void *to = region_span(s, a->region, a->region_offset, bytes);

            if (!to || a->is_2d || !vgpu_range_check(s, a->src, sspan))
                goto out;
            rc = a->async || ordered ? cudaMemcpyAsync(to, src, bytes, cudaMemcpyDeviceToHost, st)
                                     : cudaMemcpy(to, src, bytes, cudaMemcpyDeviceToHost);
            if (rc == cudaSuccess && ordered)
                rc = cudaStreamSynchronize(st);
            break;
        }
        if (!vgpu_range_check(s, a->src, sspan) || bytes > c->out_budget)
            goto out;
        buf = vgpu_arena_alloc(c->arena, bytes);
        if (!buf) {
            rc = cudaErrorMemoryAllocation;
            goto out;
        }
        if (a->is_2d)
            rc = a->async ? cudaMemcpy2DAsync(buf, a->count, src, a->spitch, a->count, a->height,
                                              cudaMemcpyDeviceToHost, st)
                          : cudaMemcpy2D(buf, a->count, src, a->spitch, a->count, a->height,
                                         cudaMemcpyDeviceToHost);
        else
            rc = a->async ? cudaMemcpyAsync(buf, src, bytes, cudaMemcpyDeviceToHost, st)
                          : cudaMemcpy(buf, src, bytes, cudaMemcpyDeviceToHost);
        /* The bytes go back with this reply, so the copy must be complete. */
        if (rc == cudaSuccess && a->async)
            rc = cudaStreamSynchronize(st);
        c->out[0].iov_base = buf;
        c->out[0].iov_len = bytes;
        c->nout = 1;
        break;
    case VGPU__MANUAL__DIRECTION__DIR_D2D:
        if (!vgpu_range_check(s, a->src, sspan) || !vgpu_range_check(s, a->dst, dspan))
            goto out;
        if (a->peer)
            rc = a->async ? cudaMemcpyPeerAsync(dst, a->dst_device, src, a->src_device, bytes, st)
                          : cudaMemcpyPeer(dst, a->dst_device, src, a->src_device, bytes);
        else if (a->is_2d)
            rc = a->async ? cudaMemcpy2DAsync(dst, a->dpitch, src, a->spitch, a->count, a->height,
                                              cudaMemcpyDeviceToDevice, st)
                          : cudaMemcpy2D(dst, a->dpitch, src, a->spitch, a->count, a->height,
                                         cudaMemcpyDeviceToDevice);
        else
            rc = a->async ? cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st)
                          : cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);
        break;
    default:
        break;
    }
out:
    return rc;
}
