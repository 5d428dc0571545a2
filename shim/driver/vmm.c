/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Virtual memory management and memory pools for libcuda.so.1: every call
 * goes to the server (server/manual/vmm.c checks it against the session's
 * reservations, allocations, mappings and pools), with native structs
 * turned into messages field by field.  What the guest keeps: a mapped
 * range, and an allocation from a pool, are device memory in the
 * address-range table (memory.c), so cuMemcpy knows which side they are
 * on; unmapping forgets the range again.
 *
 * Refused in the guest: Windows handle metadata and security attributes
 * (this is Linux), host-located memory (the server's host memory is out of
 * the guest's reach: the server says so too).
 */
#include <cuda.h>
#include <string.h>

#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"

#define ID(name) VGPU_CUDA_ID_##name

/* One call; on success *out is the unpacked result (the caller frees it) when out is not NULL. */
static CUresult vmm_call(uint32_t id, const char *name, Vgpu__Manual__VmmArgs *a,
                         Vgpu__Manual__VmmRet **out)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st = vgpu_drv_call(id, name, &a->base, &req, &rep);

    if (st == CUDA_SUCCESS && out &&
        !(*out = vgpu__manual__vmm_ret__unpack(NULL, rep.ret_len, rep.ret)))
        st = vgpu_shim_bad_reply(&req);
    vgpu_shim_rep_release(&rep);
    return st;
}

#define CALL(name, a, out) vmm_call(ID(name), #name, (a), (out))

static void ret_free(Vgpu__Manual__VmmRet *r)
{
    vgpu__manual__vmm_ret__free_unpacked(r, NULL);
}

static void location_out(const CUmemLocation *loc, Vgpu__Manual__MemLocation *m)
{
    m->type = loc->type;
    m->id = loc->id;
}

static CUresult prop_out(const CUmemAllocationProp *p, Vgpu__Manual__MemProp *m,
                         Vgpu__Manual__MemLocation *loc)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    if (p->win32HandleMetaData && p->requestedHandleTypes == CU_MEM_HANDLE_TYPE_WIN32)
        return CUDA_ERROR_NOT_SUPPORTED;
    m->type = p->type;
    m->handle_types = p->requestedHandleTypes;
    location_out(&p->location, loc);
    m->location = loc;
    m->compression = p->allocFlags.compressionType;
    m->rdma = p->allocFlags.gpuDirectRDMACapable;
    m->usage = p->allocFlags.usage;
    return CUDA_SUCCESS;
}

void vgpu_drv_pool_props_out(const CUmemPoolProps *p, Vgpu__Manual__MemProp *m,
                             Vgpu__Manual__MemLocation *loc)
{
    m->type = p->allocType;
    m->handle_types = p->handleTypes;
    location_out(&p->location, loc);
    m->location = loc;
    m->max_size = p->maxSize;
    m->usage = p->usage;
}

void vgpu_drv_access_out(const CUmemAccessDesc *desc, size_t n, Vgpu__Manual__AccessDesc *d,
                         Vgpu__Manual__AccessDesc **dp, Vgpu__Manual__MemLocation *loc)
{
    for (size_t i = 0; i < n; i++) {
        vgpu__manual__access_desc__init(&d[i]);
        vgpu__manual__mem_location__init(&loc[i]);
        location_out(&desc[i].location, &loc[i]);
        d[i].location = &loc[i];
        d[i].flags = desc[i].flags;
        dp[i] = &d[i];
    }
}

VGPU_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity,
                                                   const CUmemAllocationProp *prop,
                                                   CUmemAllocationGranularity_flags option)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__MemProp m = VGPU__MANUAL__MEM_PROP__INIT;
    Vgpu__Manual__MemLocation loc = VGPU__MANUAL__MEM_LOCATION__INIT;
    Vgpu__Manual__VmmRet *r;
    CUresult st;

    if (!granularity || (st = prop_out(prop, &m, &loc)))
        return granularity ? st : CUDA_ERROR_INVALID_VALUE;
    a.prop = &m;
    a.flags = option;
    if ((st = CALL(cuMemGetAllocationGranularity, &a, &r)) == CUDA_SUCCESS) {
        *granularity = r->value;
        ret_free(r);
    }
    return st;
}

/* ---- address reservations ---- */

VGPU_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                         CUdeviceptr addr, unsigned long long flags)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__VmmRet *r;
    CUresult st;

    if (!ptr)
        return CUDA_ERROR_INVALID_VALUE;
    a.size = size;
    a.alignment = alignment;
    a.ptr = addr;
    a.flags = flags;
    if ((st = CALL(cuMemAddressReserve, &a, &r)) == CUDA_SUCCESS) {
        *ptr = r->ptr;
        ret_free(r);
    }
    return st;
}

VGPU_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;

    a.ptr = ptr;
    a.size = size;
    return CALL(cuMemAddressFree, &a, NULL);
}

/* ---- physical allocations ---- */

VGPU_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                 const CUmemAllocationProp *prop, unsigned long long flags)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__MemProp m = VGPU__MANUAL__MEM_PROP__INIT;
    Vgpu__Manual__MemLocation loc = VGPU__MANUAL__MEM_LOCATION__INIT;
    Vgpu__Manual__VmmRet *r;
    CUresult st;

    if (!handle || (st = prop_out(prop, &m, &loc)))
        return handle ? st : CUDA_ERROR_INVALID_VALUE;
    a.size = size;
    a.prop = &m;
    a.flags = flags;
    if ((st = CALL(cuMemCreate, &a, &r)) == CUDA_SUCCESS) {
        *handle = r->handle;
        ret_free(r);
    }
    return st;
}

VGPU_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;

    a.handle = handle;
    return CALL(cuMemRelease, &a, NULL);
}

VGPU_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__VmmRet *r;
    CUresult st;

    if (!handle)
        return CUDA_ERROR_INVALID_VALUE;
    a.ptr = (uintptr_t)addr;
    if ((st = CALL(cuMemRetainAllocationHandle, &a, &r)) == CUDA_SUCCESS) {
        *handle = r->handle;
        ret_free(r);
    }
    return st;
}

VGPU_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                            CUmemGenericAllocationHandle handle)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__VmmRet *r;
    CUresult st;

    if (!prop)
        return CUDA_ERROR_INVALID_VALUE;
    a.handle = handle;
    if ((st = CALL(cuMemGetAllocationPropertiesFromHandle, &a, &r)) != CUDA_SUCCESS)
        return st;
    if (!r->prop || !r->prop->location) {
        ret_free(r);
        return CUDA_ERROR_UNKNOWN;
    }
    memset(prop, 0, sizeof(*prop));
    prop->type = (CUmemAllocationType)r->prop->type;
    prop->requestedHandleTypes = (CUmemAllocationHandleType)r->prop->handle_types;
    prop->location.type = (CUmemLocationType)r->prop->location->type;
    prop->location.id = r->prop->location->id;
    prop->allocFlags.compressionType = (unsigned char)r->prop->compression;
    prop->allocFlags.gpuDirectRDMACapable = r->prop->rdma;
    prop->allocFlags.usage = (unsigned short)r->prop->usage;
    ret_free(r);
    return CUDA_SUCCESS;
}

/* ---- mappings ---- */

VGPU_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                              CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    CUresult st;

    a.ptr = ptr;
    a.size = size;
    a.offset = offset;
    a.handle = handle;
    a.flags = flags;
    if ((st = CALL(cuMemMap, &a, NULL)) == CUDA_SUCCESS)
        vgpu_drv_device_add(ptr, size);
    return st;
}

VGPU_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    CUresult st;

    a.ptr = ptr;
    a.size = size;
    if ((st = CALL(cuMemUnmap, &a, NULL)) == CUDA_SUCCESS)
        vgpu_drv_device_remove_span(ptr, size);
    return st;
}

VGPU_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                    size_t count)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__AccessDesc d[64], *dp[64];
    Vgpu__Manual__MemLocation loc[64];

    if (!desc || count == 0 || count > 64)
        return CUDA_ERROR_INVALID_VALUE;
    vgpu_drv_access_out(desc, count, d, dp, loc);
    a.ptr = ptr;
    a.size = size;
    a.access = dp;
    a.n_access = count;
    return CALL(cuMemSetAccess, &a, NULL);
}

VGPU_EXPORT CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location,
                                    CUdeviceptr ptr)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__MemLocation loc = VGPU__MANUAL__MEM_LOCATION__INIT;
    Vgpu__Manual__VmmRet *r;
    CUresult st;

    if (!flags || !location)
        return CUDA_ERROR_INVALID_VALUE;
    location_out(location, &loc);
    a.location = &loc;
    a.ptr = ptr;
    if ((st = CALL(cuMemGetAccess, &a, &r)) == CUDA_SUCCESS) {
        *flags = r->value;
        ret_free(r);
    }
    return st;
}

/* ---- memory pools ---- */

VGPU_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__MemProp m = VGPU__MANUAL__MEM_PROP__INIT;
    Vgpu__Manual__MemLocation loc = VGPU__MANUAL__MEM_LOCATION__INIT;
    Vgpu__Manual__VmmRet *r;
    CUresult st;

    if (!pool || !props)
        return CUDA_ERROR_INVALID_VALUE;
    if (props->win32SecurityAttributes && props->handleTypes == CU_MEM_HANDLE_TYPE_WIN32)
        return CUDA_ERROR_NOT_SUPPORTED;
    vgpu_drv_pool_props_out(props, &m, &loc);
    a.prop = &m;
    if ((st = CALL(cuMemPoolCreate, &a, &r)) == CUDA_SUCCESS) {
        *pool = (CUmemoryPool)(uintptr_t)r->handle;
        ret_free(r);
    }
    return st;
}

VGPU_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;

    a.pool = (uintptr_t)pool;
    return CALL(cuMemPoolDestroy, &a, NULL);
}

/* The size of a pool attribute's value (an int or a cuuint64_t); 0 for one not known. */
static size_t pool_attr_size(CUmemPool_attribute attr)
{
    if (attr >= CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES &&
        attr <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES)
        return sizeof(int);
    if (attr >= CU_MEMPOOL_ATTR_RELEASE_THRESHOLD && attr <= CU_MEMPOOL_ATTR_USED_MEM_HIGH)
        return sizeof(cuuint64_t);
    return 0;
}

VGPU_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    size_t n = pool_attr_size(attr);

    if (!value || !n)
        return CUDA_ERROR_INVALID_VALUE;
    a.pool = (uintptr_t)pool;
    a.attr = attr;
    a.value = n == sizeof(int) ? (uint64_t)(int64_t)*(int *)value : *(cuuint64_t *)value;
    return CALL(cuMemPoolSetAttribute, &a, NULL);
}

VGPU_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__VmmRet *r;
    size_t n = pool_attr_size(attr);
    CUresult st;

    if (!value || !n)
        return CUDA_ERROR_INVALID_VALUE;
    a.pool = (uintptr_t)pool;
    a.attr = attr;
    if ((st = CALL(cuMemPoolGetAttribute, &a, &r)) == CUDA_SUCCESS) {
        if (n == sizeof(int))
            *(int *)value = (int)r->value;
        else
            *(cuuint64_t *)value = r->value;
        ret_free(r);
    }
    return st;
}

static CUresult pool_alloc(uint32_t id, const char *name, CUdeviceptr *dptr, size_t size,
                           CUmemoryPool pool, CUstream stream)
{
    Vgpu__Manual__VmmArgs a = VGPU__MANUAL__VMM_ARGS__INIT;
    Vgpu__Manual__VmmRet *r;
    CUresult st;

    if (!dptr || size == 0)
        return CUDA_ERROR_INVALID_VALUE;
    a.size = size;
    a.pool = (uintptr_t)pool;
    a.stream = (uintptr_t)stream;
    if ((st = vmm_call(id, name, &a, &r)) == CUDA_SUCCESS) {
        *dptr = r->ptr;
        vgpu_drv_device_add(r->ptr, size);
        ret_free(r);
    }
    return st;
}

VGPU_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t size, CUmemoryPool pool,
                                             CUstream stream)
{
    return pool_alloc(ID(cuMemAllocFromPoolAsync), "cuMemAllocFromPoolAsync", dptr, size, pool,
                      stream);
}

VGPU_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t size,
                                                  CUmemoryPool pool, CUstream stream)
{
    return pool_alloc(ID(cuMemAllocFromPoolAsync_ptsz), "cuMemAllocFromPoolAsync_ptsz", dptr, size,
                      pool, stream ? stream : CU_STREAM_PER_THREAD);
}
