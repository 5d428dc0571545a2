/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Memory: device allocations live on the server and are recorded here as
 * ranges, so cudaMemcpyDefault and cudaPointerGetAttributes know which side
 * an address is on.  Page-locked host memory is ordinary memory of this
 * process (there is no DMA across the VM boundary to pin it for), tracked so
 * it can be freed and described, and shared with the server where it can
 * be.  The copies are in copy.c.
 */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../ranges.h"
#include "../shim_internal.h"
#include "cudart_calltable.h"
#include "manual.pb-c.h"

static uint32_t next_region = VGPU_SHIM_STAGING_REGION;

static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vgpu_mem_table dev, host;

bool vgpu_shim_is_device(const void *p)
{
    bool yes;

    pthread_mutex_lock(&mem_lock);
    yes = vgpu_mem_table_find(&dev, (uintptr_t)p, false) != NULL;
    pthread_mutex_unlock(&mem_lock);
    return yes;
}

void vgpu_shim_device_range_add(const void *p, size_t size)
{
    pthread_mutex_lock(&mem_lock);
    if (!vgpu_mem_table_find(&dev, (uintptr_t)p, false))
        vgpu_mem_table_add(&dev, (struct vgpu_mem_range){ .base = (uintptr_t)p, .size = size });
    pthread_mutex_unlock(&mem_lock);
}

/* A graph allocation node's memory: a device range a free leaves in place (graph.c). */
void vgpu_shim_device_range_add_graph(const void *p, size_t size)
{
    pthread_mutex_lock(&mem_lock);
    if (!vgpu_mem_table_find(&dev, (uintptr_t)p, false))
        vgpu_mem_table_add(&dev, (struct vgpu_mem_range){ .base = (uintptr_t)p, .size = size,
                                                          .graph = true });
    pthread_mutex_unlock(&mem_lock);
}

void vgpu_shim_device_range_drop(const void *p)
{
    struct vgpu_mem_range *r;

    pthread_mutex_lock(&mem_lock);
    r = vgpu_mem_table_find(&dev, (uintptr_t)p, true);
    if (r)
        vgpu_mem_table_remove(&dev, r);
    pthread_mutex_unlock(&mem_lock);
}

static int do_malloc(void **p, size_t size, size_t width, size_t height, size_t *pitch,
                     cudaStream_t stream, int mode)
{
    Vgpu__Manual__MallocArgs a = VGPU__MANUAL__MALLOC_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__MallocRet *r;
    uint32_t id = mode == 1 ? VGPU_CUDART_ID_cudaMallocPitch :
                  mode == 2 ? VGPU_CUDART_ID_cudaMallocAsync : VGPU_CUDART_ID_cudaMalloc;
    int st;

    if (!p)
        return vgpu_shim_status(cudaErrorInvalidValue);
    a.size = size;
    a.width = width;
    a.height = height;
    a.pitch = mode == 1;
    a.async = mode == 2;
    a.stream = (uint64_t)(uintptr_t)stream;
    /* all three share one handler on the server: the cudaMalloc id */
    (void)id;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaMalloc, "cudaMalloc", &a.base, &req, &rep);
    if (st == cudaSuccess) {
        r = vgpu__manual__malloc_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (!r) {
            st = vgpu_shim_status(cudaErrorUnknown);
        } else {
            *p = (void *)(uintptr_t)r->ptr;
            if (pitch)
                *pitch = r->pitch;
            if (r->ptr && r->graph)
                vgpu_shim_device_range_add_graph(*p, size);   /* a captured allocation */
            else if (r->ptr)
                vgpu_shim_device_range_add(*p, mode == 1 ? r->pitch * height : size);
            vgpu__manual__malloc_ret__free_unpacked(r, NULL);
        }
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT cudaError_t cudaMalloc(void **devPtr, size_t size)
{
    return (cudaError_t)do_malloc(devPtr, size, 0, 0, NULL, NULL, 0);
}

static int do_free(void *p, cudaStream_t stream, bool async);

/*
 * Managed memory is the server's (cudaMallocManaged there); the program
 * gets its address, where managed.c maps the shadow its host code uses.
 */
VGPU_EXPORT cudaError_t cudaMallocManaged(void **devPtr, size_t size, unsigned int flags)
{
    Vgpu__Manual__MallocArgs a = VGPU__MANUAL__MALLOC_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__MallocRet *r;
    void *p = NULL;
    int st, rc;

    if (!devPtr)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    a.size = size;
    a.managed = true;
    a.flags = flags;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaMalloc, "cudaMallocManaged", &a.base, &req, &rep);
    if (st == cudaSuccess) {
        r = vgpu__manual__malloc_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (r) {
            p = (void *)(uintptr_t)r->ptr;
            vgpu__manual__malloc_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_status(cudaErrorUnknown);
        }
    }
    vgpu_shim_rep_release(&rep);
    if (st != cudaSuccess)
        return (cudaError_t)st;
    if (p && (rc = vgpu_managed_add(p, size)) != 0) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cudaMallocManaged: the GPU server's address %p for %zu bytes "
                      "cannot hold this program's copy of them (%s); the allocation fails",
                      p, size, strerror(-rc));
        do_free(p, NULL, false);
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    }
    *devPtr = p;
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaMallocPitch(void **devPtr, size_t *pitch, size_t width, size_t height)
{
    if (!pitch)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    return (cudaError_t)do_malloc(devPtr, 0, width, height, pitch, NULL, 1);
}

VGPU_EXPORT cudaError_t cudaMallocAsync(void **devPtr, size_t size, cudaStream_t hStream)
{
    return (cudaError_t)do_malloc(devPtr, size, 0, 0, NULL, hStream, 2);
}

VGPU_EXPORT cudaError_t cudaMallocAsync_ptsz(void **devPtr, size_t size, cudaStream_t hStream)
{
    return cudaMallocAsync(devPtr, size, hStream);
}

static int do_free(void *p, cudaStream_t stream, bool async)
{
    Vgpu__Manual__FreeArgs a = VGPU__MANUAL__FREE_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    a.ptr = (uint64_t)(uintptr_t)p;
    a.async = async;
    a.stream = (uint64_t)(uintptr_t)stream;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaFree, "cudaFree", &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    if (st == cudaSuccess && p)
        vgpu_managed_remove(p);    /* its shadow goes too */
    if (st == cudaSuccess && p) {
        pthread_mutex_lock(&mem_lock);
        struct vgpu_mem_range *r = vgpu_mem_table_find(&dev, (uintptr_t)p, false);
        /* a graph allocation's address stays device memory: the next launch makes it again */
        if (r && r->base == (uintptr_t)p && !r->graph)
            vgpu_mem_table_remove(&dev, r);
        pthread_mutex_unlock(&mem_lock);
    }
    return st;
}

VGPU_EXPORT cudaError_t cudaFree(void *devPtr)
{
    return (cudaError_t)do_free(devPtr, NULL, false);
}

VGPU_EXPORT cudaError_t cudaFreeAsync(void *devPtr, cudaStream_t hStream)
{
    return (cudaError_t)do_free(devPtr, hStream, true);
}

VGPU_EXPORT cudaError_t cudaFreeAsync_ptsz(void *devPtr, cudaStream_t hStream)
{
    return cudaFreeAsync(devPtr, hStream);
}

/* ---- page-locked host memory: local ---- */

VGPU_EXPORT cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
    void *p = NULL;
    uint32_t region = 0;
    uint64_t devptr = 0;

    if (!pHost)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    vgpu_shim_connect();
    if (vgpu_shim_init_status() != cudaSuccess)
        return (cudaError_t)vgpu_shim_status(vgpu_shim_init_status());
    /*
     * Mapped (zero-copy): kernels reach it through the server's mapping of
     * the same memory, at the same address where the server could map it
     * there: a memfd host-direct, pages of the shared BAR in a guest.
     * Where it cannot be shared (TCP, VGPU_SHM=0, a device without the
     * shared BAR or none of it free) it is page-locked memory all the
     * same, and cudaHostGetDevicePointer says why there is no device
     * pointer.
     */
    if (flags & cudaHostAllocMapped) {
        region = __atomic_add_fetch(&next_region, 1, __ATOMIC_RELAXED);
        p = vgpu_shim_region_new_mapped(region, vgpu_round_page(size ? size : 1), &devptr);
        if (!p)
            region = devptr = 0;
    }
    /* page-locked memory is shared with the server where it can be: copies are then DMA */
    if (!p && size >= VGPU_SHIM_SHARE_MIN && vgpu_shim_can_share()) {
        region = __atomic_add_fetch(&next_region, 1, __ATOMIC_RELAXED);
        p = vgpu_shim_region_new(region, vgpu_round_page(size));
        if (!p)
            region = 0;
    }
    if (!p && posix_memalign(&p, 4096, size ? size : 1))
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    pthread_mutex_lock(&mem_lock);
    if (vgpu_mem_table_add(&host, (struct vgpu_mem_range){ .base = (uintptr_t)p, .size = size,
                                                         .flags = flags, .owned = true,
                                                         .region = region, .devptr = devptr })) {
        pthread_mutex_unlock(&mem_lock);
        if (region)
            vgpu_shim_region_free(region, p, vgpu_round_page(size ? size : 1));
        else
            free(p);
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    }
    pthread_mutex_unlock(&mem_lock);
    if (devptr)
        vgpu_shim_device_range_add((void *)(uintptr_t)devptr, size ? size : 1);  /* kernels' and copies' */
    *pHost = p;
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaMallocHost(void **ptr, size_t size)
{
    return cudaHostAlloc(ptr, size, cudaHostAllocDefault);
}

VGPU_EXPORT cudaError_t cudaFreeHost(void *ptr)
{
    struct vgpu_mem_range *r;
    uint64_t devptr;
    uint32_t region;
    bool mapped;
    size_t size;

    if (!ptr)
        return cudaSuccess;
    pthread_mutex_lock(&mem_lock);
    r = vgpu_mem_table_find(&host, (uintptr_t)ptr, false);
    if (!r || r->base != (uintptr_t)ptr || !r->owned) {
        pthread_mutex_unlock(&mem_lock);
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    }
    region = r->region;
    mapped = r->mapped;
    size = r->size;
    devptr = r->devptr;
    vgpu_mem_table_remove(&host, r);
    pthread_mutex_unlock(&mem_lock);
    if (devptr)
        vgpu_shim_device_range_drop((void *)(uintptr_t)devptr);
    if (region)
        vgpu_shim_region_free(region, ptr, vgpu_round_page(size ? size : 1));
    else if (mapped)
        munmap(ptr, vgpu_round_page(size));
    else
        free(ptr);
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
    int st = cudaSuccess;

    if (!ptr || !size)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    vgpu_shim_connect();
    if (vgpu_shim_init_status() != cudaSuccess)
        return (cudaError_t)vgpu_shim_status(vgpu_shim_init_status());
    pthread_mutex_lock(&mem_lock);
    if (vgpu_mem_table_find(&host, (uintptr_t)ptr, false))
        st = cudaErrorHostMemoryAlreadyRegistered;
    else if (vgpu_mem_table_add(&host, (struct vgpu_mem_range){ .base = (uintptr_t)ptr,
                                                                 .size = size, .flags = flags }))
        st = cudaErrorMemoryAllocation;
    pthread_mutex_unlock(&mem_lock);
    return (cudaError_t)vgpu_shim_status(st);
}

VGPU_EXPORT cudaError_t cudaHostUnregister(void *ptr)
{
    struct vgpu_mem_range *r;
    int st = cudaSuccess;

    pthread_mutex_lock(&mem_lock);
    r = vgpu_mem_table_find(&host, (uintptr_t)ptr, false);
    if (!r || r->base != (uintptr_t)ptr || r->owned)
        st = cudaErrorHostMemoryNotRegistered;
    else
        vgpu_mem_table_remove(&host, r);
    pthread_mutex_unlock(&mem_lock);
    return (cudaError_t)vgpu_shim_status(st);
}

/*
 * Mapped memory's device pointer: the server's mapping of the shared
 * memory (cudaHostAlloc with cudaHostAllocMapped).  Other page-locked
 * memory is the program's own and cannot be reached by kernels across the
 * VM boundary: refused with the reason.
 */
VGPU_EXPORT cudaError_t cudaHostGetDevicePointer(void **pDevice, void *pHost, unsigned int flags)
{
    struct vgpu_mem_range *r;
    uint64_t devptr = 0, off = 0;
    bool known;

    if (!pDevice || !pHost || flags)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    pthread_mutex_lock(&mem_lock);
    r = vgpu_mem_table_find(&host, (uintptr_t)pHost, false);
    known = r != NULL;
    if (r && r->devptr) {
        devptr = r->devptr;
        off = (uintptr_t)pHost - r->base;
    }
    pthread_mutex_unlock(&mem_lock);
    if (!devptr) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cudaHostGetDevicePointer: %p is %s; kernels reach host "
                      "memory only when it was allocated with cudaHostAlloc(..., cudaHostAllocMapped) "
                      "where vgpu shares memory with the server (host-direct: a unix socket with "
                      "VGPU_SHM not 0; in a guest: a vgpu-stub device with a shared BAR)", pHost,
                      known ? "page-locked memory that vgpu does not share with the GPU server"
                            : "not page-locked memory");
        return (cudaError_t)vgpu_shim_status(known ? cudaErrorNotSupported : cudaErrorInvalidValue);
    }
    *pDevice = (void *)(uintptr_t)(devptr + off);
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaHostGetFlags(unsigned int *pFlags, void *pHost)
{
    struct vgpu_mem_range *r;
    int st = cudaSuccess;

    pthread_mutex_lock(&mem_lock);
    r = vgpu_mem_table_find(&host, (uintptr_t)pHost, false);
    if (!r || !pFlags)
        st = cudaErrorInvalidValue;
    else
        *pFlags = r->flags;
    pthread_mutex_unlock(&mem_lock);
    return (cudaError_t)vgpu_shim_status(st);
}

VGPU_EXPORT cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes, const void *ptr)
{
    Vgpu__Manual__PointerArgs a = VGPU__MANUAL__POINTER_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__PointerRet *r;
    struct vgpu_mem_range *h;
    int st;

    if (!attributes)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    memset(attributes, 0, sizeof(*attributes));
    pthread_mutex_lock(&mem_lock);
    h = vgpu_mem_table_find(&host, (uintptr_t)ptr, false);
    pthread_mutex_unlock(&mem_lock);
    if (h) {
        attributes->type = cudaMemoryTypeHost;
        attributes->device = vgpu_shim_device();
        attributes->hostPointer = (void *)ptr;
        if (h->devptr)        /* mapped: where kernels reach it */
            attributes->devicePointer = (void *)(uintptr_t)(h->devptr + ((uintptr_t)ptr - h->base));
        return cudaSuccess;
    }
    a.ptr = (uint64_t)(uintptr_t)ptr;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaPointerGetAttributes, "cudaPointerGetAttributes",
                        &a.base, &req, &rep);
    if (st == cudaSuccess) {
        r = vgpu__manual__pointer_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (r) {
            attributes->type = (enum cudaMemoryType)r->type;
            attributes->device = r->device;
            attributes->devicePointer = (void *)(uintptr_t)r->device_pointer;
            /* managed memory: the program's shadow of it is at the same address (managed.c) */
            if (r->type == cudaMemoryTypeUnregistered || r->type == cudaMemoryTypeManaged)
                attributes->hostPointer = (void *)ptr;
            vgpu__manual__pointer_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_status(cudaErrorUnknown);
        }
    }
    vgpu_shim_rep_release(&rep);
    return (cudaError_t)st;
}

/* The shared region [p, p+n) lies in, with its offset, or 0. */
uint32_t vgpu_shim_host_region(const void *p, size_t n, uint64_t *off)
{
    uint32_t id;

    pthread_mutex_lock(&mem_lock);
    id = vgpu_mem_table_region(&host, p, n, off);
    pthread_mutex_unlock(&mem_lock);
    return id;
}

bool vgpu_shim_host_locked(const void *p)
{
    bool locked;

    pthread_mutex_lock(&mem_lock);
    locked = vgpu_mem_table_find(&host, (uint64_t)(uintptr_t)p, false) != NULL;
    pthread_mutex_unlock(&mem_lock);
    return locked;
}

/* fork(), with copy.c's locks already held: see copy.c. */
void vgpu_shim_memory_lock(void)
{
    pthread_mutex_lock(&mem_lock);
}

void vgpu_shim_memory_unlock(void)
{
    pthread_mutex_unlock(&mem_lock);
}

/*
 * In the child, mem_lock held: each page-locked buffer shared with the
 * parent's session becomes private memory with the same bytes.
 */
void vgpu_shim_memory_forked(void)
{
    for (size_t i = 0; i < host.n; i++) {
        struct vgpu_mem_range *r = &host.r[i];
        size_t len = vgpu_round_page(r->size);
        void *copy;

        if (!r->region)
            continue;
        r->region = 0;
        r->mapped = true;
        copy = malloc(len);
        if (!copy)
            continue;               /* left shared: better than lost */
        memcpy(copy, (void *)r->base, len);
        if (mmap((void *)r->base, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED)
            memcpy((void *)r->base, copy, len);
        free(copy);
    }
}
