/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Memory for libcuda.so.1.  Device allocations live on the server and are
 * recorded here as ranges, so cuMemcpy knows which side an address is on
 * and cuPointerGetAttribute which question to ask.  Page-locked host memory
 * is memory of this process (there is no DMA across the VM boundary to pin
 * it for): allocations of 64 KiB and more are shared with the server as
 * regions where the connection can (a memfd host-direct), so copies from and
 * to them are DMA; registered memory is only recorded.
 */
#include <cuda.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_calltable.h"
#include "dataplane.h"
#include "driver_internal.h"
#include "manual.pb-c.h"
#include "ranges.h"

#define ID(name) VGPU_CUDA_ID_##name

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vgpu_mem_table dev, host;

bool vgpu_drv_is_device(uint64_t addr)
{
    bool yes;

    pthread_mutex_lock(&mem_lock);
    yes = vgpu_mem_table_find(&dev, addr, false) != NULL;
    pthread_mutex_unlock(&mem_lock);
    return yes;
}

void vgpu_drv_device_add(uint64_t base, uint64_t size)
{
    int rc = 0;

    pthread_mutex_lock(&mem_lock);
    if (!vgpu_mem_table_find(&dev, base, false))
        rc = vgpu_mem_table_add(&dev, (struct vgpu_mem_range){ .base = base, .size = size });
    pthread_mutex_unlock(&mem_lock);
    if (rc)
        vgpu_shim_log(VGPU_LOG_WARN, "out of memory recording a device allocation: cuMemcpy "
                      "may mistake it for host memory");
}

void vgpu_drv_device_add_graph(uint64_t base, uint64_t size)
{
    int rc = 0;

    pthread_mutex_lock(&mem_lock);
    if (!vgpu_mem_table_find(&dev, base, false))
        rc = vgpu_mem_table_add(&dev, (struct vgpu_mem_range){ .base = base, .size = size,
                                                               .graph = true });
    pthread_mutex_unlock(&mem_lock);
    if (rc)
        vgpu_shim_log(VGPU_LOG_WARN, "out of memory recording a graph allocation: cuMemcpy "
                      "may mistake it for host memory");
}

/* A free: the range goes, unless a graph's allocation node makes it again at each launch. */
static void device_remove(uint64_t base)
{
    struct vgpu_mem_range *r;

    pthread_mutex_lock(&mem_lock);
    if ((r = vgpu_mem_table_find(&dev, base, true)) && !r->graph)
        vgpu_mem_table_remove(&dev, r);
    pthread_mutex_unlock(&mem_lock);
}

void vgpu_drv_device_remove_span(uint64_t base, uint64_t size)
{
    pthread_mutex_lock(&mem_lock);
    for (size_t i = 0; i < dev.n;) {
        if (dev.r[i].base >= base && dev.r[i].base - base < size)
            vgpu_mem_table_remove(&dev, &dev.r[i]);    /* the last one took its place */
        else
            i++;
    }
    pthread_mutex_unlock(&mem_lock);
}

uint32_t vgpu_drv_host_region(const void *p, size_t n, uint64_t *off)
{
    uint32_t region;

    pthread_mutex_lock(&mem_lock);
    region = vgpu_mem_table_region(&host, p, n, off);
    pthread_mutex_unlock(&mem_lock);
    return region;
}

bool vgpu_drv_host_locked(const void *p)
{
    bool locked;

    pthread_mutex_lock(&mem_lock);
    locked = vgpu_mem_table_find(&host, (uint64_t)(uintptr_t)p, false) != NULL;
    pthread_mutex_unlock(&mem_lock);
    return locked;
}

/* The host range holding p: a copy of it in *out, true; or false. */
static bool host_range(uint64_t p, struct vgpu_mem_range *out)
{
    struct vgpu_mem_range *r;

    pthread_mutex_lock(&mem_lock);
    if ((r = vgpu_mem_table_find(&host, p, false)))
        *out = *r;
    pthread_mutex_unlock(&mem_lock);
    return r != NULL;
}

void vgpu_drv_memory_lock(void)
{
    pthread_mutex_lock(&mem_lock);
}

void vgpu_drv_memory_unlock(void)
{
    pthread_mutex_unlock(&mem_lock);
}

/* The child's connection is its own: its copies carry bytes (the parent's regions are not its session's). */
void vgpu_drv_memory_forked(void)
{
    for (size_t i = 0; i < host.n; i++)
        host.r[i].region = 0;
}

/* ---- device allocations ---- */

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
            if (r->graph)
                vgpu_drv_device_add_graph(r->ptr, width);      /* a captured allocation */
            else
                vgpu_drv_device_add(r->ptr, pitch ? r->pitch * height : width);
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
    if (st == CUDA_SUCCESS) {
        device_remove(p);
        vgpu_drv_managed_remove(p);    /* managed memory: its shadow goes too */
    }
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

/* ---- page-locked host memory ---- */

/*
 * Region ids of this library: its staging region, then one per shared
 * page-locked allocation; above the runtime shim's, so both libraries can
 * share memory on one connection.
 */
static uint32_t next_region = VGPU_DRV_STAGING_REGION;

static CUresult host_alloc(void **pp, size_t bytes, unsigned flags)
{
    struct vgpu_client *c = vgpu_client_get();
    void *p = NULL;
    uint32_t region = 0;
    uint64_t devptr = 0;
    int rc;

    if (!pp)
        return CUDA_ERROR_INVALID_VALUE;
    if (flags & CU_MEMHOSTALLOC_DEVICEMAP) {
        /* mapped: kernels reach it, so it is always shared with the server */
        region = __atomic_add_fetch(&next_region, 1, __ATOMIC_RELAXED);
        if (vgpu_client_connect(c) == 0)
            p = vgpu_client_region_new_mapped(c, region, vgpu_round_page(bytes ? bytes : 1), &devptr);
        if (!p) {
            vgpu_shim_log(VGPU_LOG_ERROR, "cuMemHostAlloc: mapped (zero-copy) host memory needs "
                          "memory shared with vgpu-server (host-direct: a unix socket with VGPU_SHM "
                          "not 0; in a guest: a vgpu-stub device with a shared BAR and a free slot "
                          "of it) and a server that maps it; allocate without "
                          "CU_MEMHOSTALLOC_DEVICEMAP");
            return CUDA_ERROR_NOT_SUPPORTED;
        }
    }
    /* shared with the server where it can be: copies from and to it are then DMA */
    else if (bytes >= VGPU_SHIM_SHARE_MIN && vgpu_client_connect(c) == 0 && vgpu_client_can_share(c)) {
        region = __atomic_add_fetch(&next_region, 1, __ATOMIC_RELAXED);
        if (!(p = vgpu_client_region_new(c, region, vgpu_round_page(bytes))))
            region = 0;
    }
    if (!p && posix_memalign(&p, 4096, bytes ? bytes : 1))
        return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&mem_lock);
    rc = vgpu_mem_table_add(&host, (struct vgpu_mem_range){ .base = (uintptr_t)p,
                                                           .size = bytes ? bytes : 1,
                                                           .flags = flags, .owned = true,
                                                           .region = region, .devptr = devptr });
    pthread_mutex_unlock(&mem_lock);
    if (rc == 0 && devptr)
        vgpu_drv_device_add(devptr, bytes ? bytes : 1);   /* what kernels and copies may name */
    if (rc) {
        if (region)
            vgpu_client_region_free(c, region, p, vgpu_round_page(bytes ? bytes : 1));
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

/* Drops the host range starting at p if it is owned == owned: true and a copy of it, or false. */
static bool host_take(void *p, bool owned, struct vgpu_mem_range *out)
{
    struct vgpu_mem_range *r;
    bool found;

    pthread_mutex_lock(&mem_lock);
    r = vgpu_mem_table_find(&host, (uintptr_t)p, true);
    found = r && r->owned == owned;
    if (found) {
        *out = *r;
        vgpu_mem_table_remove(&host, r);
    }
    pthread_mutex_unlock(&mem_lock);
    return found;
}

VGPU_EXPORT CUresult cuMemFreeHost(void *p)
{
    struct vgpu_mem_range r;

    if (!host_take(p, true, &r))
        return CUDA_ERROR_INVALID_VALUE;
    if (r.devptr)
        device_remove(r.devptr);
    if (r.region)
        vgpu_client_region_free(vgpu_client_get(), r.region, p, vgpu_round_page(r.size));
    else
        free(p);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int flags)
{
    int st = CUDA_SUCCESS;

    if (!p || !bytesize)
        return CUDA_ERROR_INVALID_VALUE;
    if (flags & (CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_IOMEMORY)) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cuMemHostRegister: mapped or I/O memory is not supported "
                      "by vgpu yet; register without CU_MEMHOSTREGISTER_DEVICEMAP");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    pthread_mutex_lock(&mem_lock);
    if (vgpu_mem_table_find(&host, (uintptr_t)p, false))
        st = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    else if (vgpu_mem_table_add(&host, (struct vgpu_mem_range){ .base = (uintptr_t)p,
                                                                 .size = bytesize, .flags = flags }))
        st = CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_unlock(&mem_lock);
    return st;
}

VGPU_EXPORT CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int flags)
{
    return cuMemHostRegister_v2(p, bytesize, flags);
}

VGPU_EXPORT CUresult cuMemHostUnregister(void *p)
{
    struct vgpu_mem_range r;

    return host_take(p, false, &r) ? CUDA_SUCCESS : CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
}

/* Mapped page-locked memory: where kernels reach p (the same address where the server could map it there). */
static CUresult host_device_pointer(CUdeviceptr *pdptr, void *p, unsigned int flags)
{
    struct vgpu_mem_range r;

    if (!pdptr || flags)
        return CUDA_ERROR_INVALID_VALUE;
    if (!host_range((uintptr_t)p, &r) || !r.devptr)
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = r.devptr + ((uintptr_t)p - r.base);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int flags)
{
    return host_device_pointer(pdptr, p, flags);
}

VGPU_EXPORT CUresult cuMemHostGetDevicePointer(CUdeviceptr_v1 *pdptr, void *p, unsigned int flags)
{
    CUdeviceptr d = 0;
    CUresult r;

    if (!pdptr)
        return CUDA_ERROR_INVALID_VALUE;
    r = host_device_pointer(&d, p, flags);
    if (r == CUDA_SUCCESS && d > UINT32_MAX)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        *pdptr = (CUdeviceptr_v1)d;
    return r;
}

VGPU_EXPORT CUresult cuMemHostGetFlags(unsigned int *pflags, void *p)
{
    struct vgpu_mem_range r;

    if (!pflags || !host_range((uintptr_t)p, &r))
        return CUDA_ERROR_INVALID_VALUE;
    *pflags = r.flags;
    return CUDA_SUCCESS;
}

/* ---- pointer attributes ---- */

/* Answers for page-locked host memory, known here. */
static int host_attr(void *data, CUpointer_attribute attr, uint64_t p)
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
    st = vgpu_drv_call(ID(cuPointerGetAttribute), "cuPointerGetAttribute", &a.base, &req, &rep);
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
    struct vgpu_mem_range r;

    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_drv_is_device(p))
        return device_attrs(1, &attr, &data, p, false);
    if (!host_range(p, &r))
        return CUDA_ERROR_INVALID_VALUE;     /* memory CUDA does not know, as natively */
    return host_attr(data, attr, p);
}

VGPU_EXPORT CUresult cuPointerGetAttributes(unsigned int n, CUpointer_attribute *attrs, void **data,
                                            CUdeviceptr p)
{
    if (!attrs || !data)
        return CUDA_ERROR_INVALID_VALUE;
    if (vgpu_drv_is_device(p))
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
