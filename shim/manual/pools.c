/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime's memory pools (cudaMemPoolCreate, cudaMemPoolSetAttribute,
 * cudaMemPoolGetAttribute, cudaMallocFromPoolAsync) are the driver's under
 * another name: cudaMemPool_t is a CUmemoryPool, cudaMemPoolProps and
 * cudaMemPoolAttr have the driver's layout and numbers.  So they are sent
 * as the driver's calls on the same connection (a call id names its CUDA
 * function, whichever library sends it), checked and charged by the same
 * handlers (server/manual/vmm.c), and run in the primary context the
 * runtime made current.  The statuses they can give (invalid value, out of
 * memory, not initialized, invalid handle, not supported) have the same
 * numbers in both APIs.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <string.h>

#include "cuda_calltable.h"
#include "manual.pb-c.h"
#include "shim_internal.h"

/* One driver call with a VmmArgs; on success *out is the result (the caller frees it). */
static int pool_call(uint32_t id, const char *name, Vgpu__Manual__VmmArgs *a,
                     Vgpu__Manual__VmmRet **out)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st = vgpu_shim_call(id, name, &a->base, &req, &rep);

    if (st == cudaSuccess && out && !(*out = vgpu__manual__vmm_ret__unpack(NULL, rep.ret_len, rep.ret)))
        st = vgpu_shim_status(cudaErrorUnknown);
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT cudaError_t cudaMemPoolCreate(cudaMemPool_t *pool, const struct cudaMemPoolProps *props)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__MemProp m = VGPU__MANUAL__MEM_PROP__INIT;
    Vgpu__Manual__MemLocation loc = VGPU__MANUAL__MEM_LOCATION__INIT;
    Vgpu__Manual__VmmRet *r;
    int st;

    if (!pool || !props)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if (props->win32SecurityAttributes && props->handleTypes == cudaMemHandleTypeWin32)
        return (cudaError_t)vgpu_shim_status(cudaErrorNotSupported);
    m.type = props->allocType;
    m.handle_types = props->handleTypes;
    loc.type = props->location.type;
    loc.id = props->location.id;
    m.location = &loc;
    m.max_size = props->maxSize;
    m.usage = props->usage;
    a.prop = &m;
    st = pool_call(VGPU_CUDA_ID_cuMemPoolCreate, "cudaMemPoolCreate", &a, &r);
    if (st == cudaSuccess) {
        *pool = (cudaMemPool_t)(uintptr_t)r->handle;
        vgpu__manual__vmm_ret__free_unpacked(r, NULL);
    }
    return (cudaError_t)st;
}

/* The size of a pool attribute's value (an int or a uint64_t); 0 for one not known. */
static size_t attr_size(enum cudaMemPoolAttr attr)
{
    if (attr >= cudaMemPoolReuseFollowEventDependencies &&
        attr <= cudaMemPoolReuseAllowInternalDependencies)
        return sizeof(int);
    if (attr >= cudaMemPoolAttrReleaseThreshold && attr <= cudaMemPoolAttrUsedMemHigh)
        return sizeof(uint64_t);
    return 0;
}

VGPU_EXPORT cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, enum cudaMemPoolAttr attr,
                                                void *value)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    size_t n = attr_size(attr);

    if (!value || !n)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    a.pool = (uintptr_t)pool;
    a.attr = attr;
    a.value = n == sizeof(int) ? (uint64_t)(int64_t)*(int *)value : *(uint64_t *)value;
    return (cudaError_t)pool_call(VGPU_CUDA_ID_cuMemPoolSetAttribute, "cudaMemPoolSetAttribute",
                                  &a, NULL);
}

VGPU_EXPORT cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, enum cudaMemPoolAttr attr,
                                                void *value)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__VmmRet *r;
    size_t n = attr_size(attr);
    int st;

    if (!value || !n)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    a.pool = (uintptr_t)pool;
    a.attr = attr;
    st = pool_call(VGPU_CUDA_ID_cuMemPoolGetAttribute, "cudaMemPoolGetAttribute", &a, &r);
    if (st == cudaSuccess) {
        if (n == sizeof(int))
            *(int *)value = (int)r->value;
        else
            *(uint64_t *)value = r->value;
        vgpu__manual__vmm_ret__free_unpacked(r, NULL);
    }
    return (cudaError_t)st;
}

VGPU_EXPORT cudaError_t cudaMallocFromPoolAsync(void **ptr, size_t size, cudaMemPool_t pool,
                                                cudaStream_t stream)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__VmmRet *r;
    int st;

    if (!ptr)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    a.size = size;
    a.pool = (uintptr_t)pool;
    a.stream = (uintptr_t)stream;
    st = pool_call(VGPU_CUDA_ID_cuMemAllocFromPoolAsync, "cudaMallocFromPoolAsync", &a, &r);
    if (st == cudaSuccess) {
        *ptr = (void *)(uintptr_t)r->ptr;
        vgpu_shim_device_range_add(*ptr, size);
        vgpu__manual__vmm_ret__free_unpacked(r, NULL);
    }
    return (cudaError_t)st;
}

cudaError_t cudaMallocFromPoolAsync_ptsz(void **ptr, size_t size, cudaMemPool_t pool,
                                         cudaStream_t stream);
VGPU_EXPORT cudaError_t cudaMallocFromPoolAsync_ptsz(void **ptr, size_t size, cudaMemPool_t pool,
                                                     cudaStream_t stream)
{
    return cudaMallocFromPoolAsync(ptr, size, pool, stream ? stream : cudaStreamPerThread);
}
