/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device allocations (spec: manual): each is charged to the VM's memory
 * limit before the GPU is asked, padding of pitched allocations included,
 * and entered in the session's range table that every later device
 * pointer is checked against; a free is undone only once CUDA let go.
 *
 * A stream-ordered allocation on a capturing stream becomes the graph's
 * allocation node: its address is fixed now, its memory is taken at each
 * launch, so it is charged with the executable graph (manual/graph.c),
 * not here.  A captured free becomes a free node, which may only name
 * such memory.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>

#include "manual_internal.h"

int vgpu_manual_malloc(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__MallocArgs, malloc_args, c);
    Vgpu__Manual__MallocRet r = VGPU__MANUAL__MALLOC_RET__INIT;
    void *p = NULL;
    size_t pitch = 0;
    /* charged before the GPU is asked, so a request over the VM's limit never takes memory */
    uint64_t size = a->pitch ? a->width * a->height : a->size, padded = 0, graph;
    int rc = cudaErrorMemoryAllocation;

    if ((a->pitch && a->height && a->width > UINT64_MAX / a->height) || size > INT64_MAX / 2)
        goto out;
    if (a->managed && (a->pitch || a->async ||
                       (a->flags != cudaMemAttachGlobal && a->flags != cudaMemAttachHost))) {
        rc = cudaErrorInvalidValue;
        goto out;
    }
    if (a->async && !stream_ok(s, a->stream)) {
        rc = cudaErrorInvalidResourceHandle;
        goto out;
    }
    if (a->async && !a->pitch &&
        (graph = vgpu_graph_capture_graph(s, (void *)(uintptr_t)a->stream))) {
        /* room first: a free on the capturing stream would be a node of its own */
        if (vgpu_graph_mem_reserve(s))
            goto out;
        rc = cudaMallocAsync(&p, a->size, (cudaStream_t)(uintptr_t)a->stream);
        if (rc == cudaSuccess && p && vgpu_graph_mem_add(s, graph, (uintptr_t)p, a->size))
            rc = cudaErrorMemoryAllocation;     /* not after the reservation */
        if (rc == cudaSuccess && p) {
            r.ptr = (uintptr_t)p;
            r.graph = true;
            rc = reply(c, &r.base);
        }
        goto out;
    }
    if (vgpu_memory_charge(s, (int64_t)size))
        goto out;
    if (a->pitch)
        rc = cudaMallocPitch(&p, &pitch, a->width, a->height);
    else if (a->async)
        rc = cudaMallocAsync(&p, a->size, (cudaStream_t)(uintptr_t)a->stream);
    else if (a->managed)
        rc = cudaMallocManaged(&p, a->size, a->flags);   /* the guest keeps a shadow of it */
    else
        rc = cudaMalloc(&p, a->size);
    if (rc != cudaSuccess || !p) {
        vgpu_memory_charge(s, -(int64_t)size);
        goto out;
    }
    if (a->pitch && (vgpu_span_1d(a->height, pitch, &padded) || padded > INT64_MAX / 2)) {
        vgpu_memory_charge(s, -(int64_t)size);
        cudaFree(p);
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    if (a->pitch && padded > size) {
        /* the padding rows got counts too */
        uint64_t more = padded - size;

        if (vgpu_memory_charge(s, (int64_t)more)) {
            vgpu_memory_charge(s, -(int64_t)size);
            cudaFree(p);
            rc = cudaErrorMemoryAllocation;
            goto out;
        }
        size += more;
    }
    vgpu_graph_mem_stale(s, (uintptr_t)p, size);
    if (vgpu_range_add(s, (uintptr_t)p, size, true)) {
        vgpu_memory_charge(s, -(int64_t)size);
        cudaFree(p);
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    r.ptr = (uintptr_t)p;
    r.pitch = pitch;
    rc = reply(c, &r.base);
out:
    vgpu__manual__malloc_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

int vgpu_manual_free(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__FreeArgs, free_args, c);
    bool graph = a->ptr && vgpu_range_graph(s, a->ptr);
    bool into_capture = a->async && graph && stream_ok(s, a->stream) &&
                        vgpu_graph_capture_graph(s, (void *)(uintptr_t)a->stream);
    int rc;

    if (a->ptr && !vgpu_range_owned(s, a->ptr))
        rc = cudaErrorInvalidValue;
    else if (a->async && !stream_ok(s, a->stream))
        rc = cudaErrorInvalidResourceHandle;
    else if (a->async && !graph &&
             vgpu_graph_alloc_refused(s, (void *)(uintptr_t)a->stream, "a stream-ordered free",
                                      "a graph's free node may only free memory an allocation "
                                      "node made; free it outside the capture"))
        rc = cudaErrorStreamCaptureUnsupported;
    else if (a->async)
        rc = cudaFreeAsync((void *)(uintptr_t)a->ptr, (cudaStream_t)(uintptr_t)a->stream);
    else
        rc = cudaFree((void *)(uintptr_t)a->ptr);
    /*
     * The range is forgotten only once CUDA has let go of it; a graph
     * allocation's stays while its graph lives (every launch makes it again).
     */
    if (rc == cudaSuccess && graph && !into_capture)
        vgpu_graph_mem_freed(s, a->ptr);    /* a free node made in a capture frees nothing yet */
    if (rc == cudaSuccess && a->ptr && !graph) {
        vgpu_memory_charge(s, -(int64_t)vgpu_range_size(s, a->ptr));
        vgpu_range_remove(s, a->ptr);
        vgpu_ipc_forget(a->ptr);
    }
    vgpu__manual__free_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}
