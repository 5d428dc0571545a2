/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver's memory pools on the fake's memory: the device's default
 * pool and pools from cuMemPoolCreate, each with its attributes and its
 * accounting (bytes in use and their high-water mark).  Work is
 * synchronous, so a freed block is never kept for reuse: reserved memory
 * equals used memory and cuMemPoolTrimTo has nothing to give back.  An
 * allocation from a pool (cuMemAllocFromPoolAsync) is ordinary fake device
 * memory that remembers its pool; freeing it by any free (vgpu_fake_free)
 * tells the pool.  A destroyed pool with allocations still out lives on
 * until the last is freed, as the documentation says.
 */
#include <stdlib.h>

#include "fakecuda_internal.h"

struct pool {
    CUmemPoolProps props;
    int reuse[3];              /* the three CU_MEMPOOL_ATTR_REUSE_* flags */
    uint64_t threshold, used, used_high;
    unsigned out;              /* allocations not yet freed */
    bool destroyed;
    struct pool *next;
};

struct block {
    uintptr_t p;
    size_t size;
    struct pool *pool;
    struct block *next;
};

static struct pool default_pool = { .reuse = { 1, 1, 1 } };
static struct pool *pools = &default_pool, *current = &default_pool;
static struct block *blocks;

static CUresult dev_ok(CUdevice dev)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : dev == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

/* The live pool p names, or NULL (logged). */
static struct pool *pool_find(const char *fn, CUmemoryPool p)
{
    for (struct pool *q = pools; q; q = q->next)
        if ((void *)q == (void *)p && !q->destroyed)
            return q;
    if (p)
        vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, fn, "unknown memory pool %p", (void *)p);
    return NULL;
}

static void pool_unlink(struct pool *p)
{
    for (struct pool **pp = &pools; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            free(p);
            return;
        }
}

FAKE_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool *pool_out, CUdevice dev)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!pool_out)
        return CUDA_ERROR_INVALID_VALUE;
    *pool_out = (CUmemoryPool)(void *)&default_pool;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool *pool, CUdevice dev)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!pool)
        return CUDA_ERROR_INVALID_VALUE;
    *pool = (CUmemoryPool)(void *)current;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool)
{
    struct pool *p;
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!(p = pool_find("cuDeviceSetMemPool", pool)))
        return CUDA_ERROR_INVALID_VALUE;
    current = p;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemPoolCreate(CUmemoryPool *pool, const CUmemPoolProps *props)
{
    struct pool *p;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!pool || !props || props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
        props->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    if (props->location.id != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (!(p = calloc(1, sizeof(*p))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    p->props = *props;
    p->reuse[0] = p->reuse[1] = p->reuse[2] = 1;
    p->next = pools;
    pools = p;
    *pool = (CUmemoryPool)(void *)p;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool)
{
    struct pool *p;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!(p = pool_find("cuMemPoolDestroy", pool)) || p == &default_pool)
        return CUDA_ERROR_INVALID_VALUE;
    if (current == p)
        current = &default_pool;
    p->destroyed = true;
    if (!p->out)
        pool_unlink(p);
    return CUDA_SUCCESS;
}

/* The value of attr lives at *slot as an int (reuse flags) or a uint64_t; NULL: no such attribute. */
static void *attr_slot(struct pool *p, CUmemPool_attribute attr, bool *is_int)
{
    *is_int = attr <= CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: return &p->reuse[0];
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: return &p->reuse[1];
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: return &p->reuse[2];
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: return &p->threshold;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: return &p->used;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: return &p->used_high;
    default: return NULL;
    }
}

FAKE_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    struct pool *p;
    void *slot;
    bool is_int;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!(p = pool_find("cuMemPoolSetAttribute", pool)) || !value ||
        !(slot = attr_slot(p, attr, &is_int)))
        return CUDA_ERROR_INVALID_VALUE;
    switch (attr) {
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
        return CUDA_ERROR_INVALID_VALUE;      /* read-only */
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        if (*(cuuint64_t *)value != 0)        /* may only be reset */
            return CUDA_ERROR_INVALID_VALUE;
        p->used_high = p->used;
        return CUDA_SUCCESS;
    default:
        if (is_int)
            *(int *)slot = *(int *)value != 0;
        else
            *(uint64_t *)slot = *(cuuint64_t *)value;
        return CUDA_SUCCESS;
    }
}

FAKE_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void *value)
{
    struct pool *p;
    void *slot;
    bool is_int;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!(p = pool_find("cuMemPoolGetAttribute", pool)) || !value ||
        !(slot = attr_slot(p, attr, &is_int)))
        return CUDA_ERROR_INVALID_VALUE;
    if (is_int)
        *(int *)value = *(int *)slot;
    else
        *(cuuint64_t *)value = *(uint64_t *)slot;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep)
{
    CUresult r = vgpu_fake_cu_init_ok();

    (void)minBytesToKeep;     /* nothing is cached beyond what is in use */
    if (r)
        return r;
    return pool_find("cuMemPoolTrimTo", pool) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

FAKE_EXPORT CUresult cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc *map, size_t count)
{
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!pool_find("cuMemPoolSetAccess", pool) || (!map && count))
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < count; i++)
        if (map[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || map[i].location.id != 0)
            return CUDA_ERROR_INVALID_DEVICE;
    return CUDA_SUCCESS;      /* the one device always has read-write access to its pools */
}

FAKE_EXPORT CUresult cuMemPoolGetAccess(CUmemAccess_flags *flags, CUmemoryPool memPool,
                                        CUmemLocation *location)
{
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!flags || !location || !pool_find("cuMemPoolGetAccess", memPool))
        return CUDA_ERROR_INVALID_VALUE;
    if (location->type != CU_MEM_LOCATION_TYPE_DEVICE || location->id != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                             CUstream hStream)
{
    struct pool *p;
    struct block *b;
    void *mem = NULL;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!(p = pool_find("cuMemAllocFromPoolAsync", pool)) || !dptr || !bytesize)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vgpu_fake_stream_ok("cuMemAllocFromPoolAsync", hStream))
        return CUDA_ERROR_INVALID_HANDLE;
    if (p->props.maxSize && bytesize > p->props.maxSize - p->used)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (!(b = calloc(1, sizeof(*b))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if ((r = VGPU_FAKE_CU(vgpu_fake_malloc(&mem, bytesize)))) {
        free(b);
        return r;
    }
    *b = (struct block){ (uintptr_t)mem, bytesize, p, blocks };
    blocks = b;
    p->out++;
    p->used += bytesize;
    if (p->used > p->used_high)
        p->used_high = p->used;
    *dptr = (CUdeviceptr)(uintptr_t)mem;
    return CUDA_SUCCESS;
}

CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool,
                                      CUstream hStream);
FAKE_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr *dptr, size_t bytesize,
                                                  CUmemoryPool pool, CUstream hStream)
{
    return cuMemAllocFromPoolAsync(dptr, bytesize, pool, hStream);
}

void vgpu_fake_pool_freed(const void *mem)
{
    for (struct block **bp = &blocks; *bp; bp = &(*bp)->next) {
        struct block *b = *bp;

        if (b->p != (uintptr_t)mem)
            continue;
        b->pool->used -= b->size;
        if (!--b->pool->out && b->pool->destroyed)
            pool_unlink(b->pool);
        *bp = b->next;
        free(b);
        return;
    }
}

/* ---- the runtime's names for the same pools (cudaMemPool_t is a CUmemoryPool) ---- */

/* A driver status as the runtime's, recorded as its last error: the codes used here share numbers. */
static cudaError_t rt(CUresult r)
{
    return vgpu_fake_status((cudaError_t)r);
}

FAKE_EXPORT cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int device)
{
    vgpu_fake_rt_ctx();
    return rt(cuDeviceGetDefaultMemPool((CUmemoryPool *)pool, device));
}

FAKE_EXPORT cudaError_t cudaDeviceGetMemPool(cudaMemPool_t *pool, int device)
{
    vgpu_fake_rt_ctx();
    return rt(cuDeviceGetMemPool((CUmemoryPool *)pool, device));
}

FAKE_EXPORT cudaError_t cudaDeviceSetMemPool(int device, cudaMemPool_t pool)
{
    vgpu_fake_rt_ctx();
    return rt(cuDeviceSetMemPool(device, (CUmemoryPool)pool));
}

FAKE_EXPORT cudaError_t cudaMemPoolDestroy(cudaMemPool_t pool)
{
    vgpu_fake_rt_ctx();
    return rt(cuMemPoolDestroy((CUmemoryPool)pool));
}

FAKE_EXPORT cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t minBytesToKeep)
{
    vgpu_fake_rt_ctx();
    return rt(cuMemPoolTrimTo((CUmemoryPool)pool, minBytesToKeep));
}

FAKE_EXPORT cudaError_t cudaMemPoolSetAccess(cudaMemPool_t pool,
                                             const struct cudaMemAccessDesc *descList, size_t count)
{
    _Static_assert(sizeof(struct cudaMemAccessDesc) == sizeof(CUmemAccessDesc), "same layout");
    vgpu_fake_rt_ctx();
    return rt(cuMemPoolSetAccess((CUmemoryPool)pool, (const CUmemAccessDesc *)descList, count));
}

FAKE_EXPORT cudaError_t cudaMemPoolGetAccess(enum cudaMemAccessFlags *flags, cudaMemPool_t pool,
                                             struct cudaMemLocation *location)
{
    vgpu_fake_rt_ctx();
    return rt(cuMemPoolGetAccess((CUmemAccess_flags *)flags, (CUmemoryPool)pool,
                                 (CUmemLocation *)location));
}
