/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver's virtual memory management on the fake's memory, modelled on
 * the host's own: a reservation is an inaccessible anonymous mapping
 * (PROT_NONE) aligned to the granularity; a physical allocation
 * (cuMemCreate) is a memfd of its size; cuMemMap maps the memfd over part of
 * a reservation, still inaccessible; cuMemSetAccess makes it readable and
 * writable (or not again); cuMemUnmap puts the inaccessible mapping back.
 * Two mappings of one allocation alias, as on a GPU, and touching memory
 * without access faults, as on a GPU.  Only what the CUDA documentation
 * allows passes: a mapping inside one reservation, not over another, of a
 * granularity-aligned size within its allocation; an unmap or access
 * change of whole mappings; a release while mapped keeps the memory until
 * the last unmap.  Mapped memory with access is device memory for copies
 * and memsets (vgpu_fake_vmm_covers(), used by tables.c).
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fakecuda_internal.h"

#define GRANULARITY (2u << 20)

struct resv {
    uintptr_t base;
    size_t size;
    struct resv *next;
};

struct phys {
    unsigned long long handle;
    int fd;                    /* the memory (a mapping keeps it too) */
    size_t size;
    unsigned refs, maps;
    CUmemAllocationProp prop;
    struct phys *next;
};

struct map {
    uintptr_t va;
    size_t size;
    struct phys *phys;
    bool access;
    struct map *next;
};

static struct resv *resvs;
static struct phys *physs;
static struct map *maps;
static unsigned long long next_handle = 0x7000;

static bool inside(uintptr_t a, size_t alen, uintptr_t b, size_t blen)
{
    return a >= b && a - b <= blen && alen <= blen - (a - b);
}

static struct phys *phys_find(unsigned long long h, bool live)
{
    for (struct phys *p = physs; p; p = p->next)
        if (p->handle == h && (!live || p->refs))
            return p;
    return NULL;
}

static void phys_drop(struct phys *p)
{
    struct phys **pp;

    if (p->refs || p->maps)
        return;
    for (pp = &physs; *pp != p; pp = &(*pp)->next)
        ;
    *pp = p->next;
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}

static struct map *map_at(uintptr_t a)
{
    for (struct map *m = maps; m; m = m->next)
        if (a >= m->va && a - m->va < m->size)
            return m;
    return NULL;
}

bool vgpu_fake_vmm_covers(const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)p, end = a + len;
    struct map *m;

    if (len > UINTPTR_MAX - a)
        return false;
    if (len == 0)
        return ((m = map_at(a)) || (a && (m = map_at(a - 1)))) && m->access;
    while (a < end) {
        if (!(m = map_at(a)) || !m->access)
            return false;
        a = m->va + m->size;
    }
    return true;
}

uint64_t vgpu_fake_vmm_used(void)
{
    uint64_t used = 0;

    for (struct phys *p = physs; p; p = p->next)
        used += p->size;
    return used;
}

bool vgpu_fake_vmm_span(const void *p, uintptr_t *base, size_t *size)
{
    struct map *m = map_at((uintptr_t)p);

    if (!m || !m->access)
        return false;
    *base = m->va;
    *size = m->size;
    return true;
}

/* The driver's checks of a CUmemAllocationProp: pinned memory on device 0. */
static CUresult prop_ok(const CUmemAllocationProp *prop)
{
    if (!prop || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED ||
        prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    return prop->location.id == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

FAKE_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity,
                                                   const CUmemAllocationProp *prop,
                                                   CUmemAllocationGranularity_flags option)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r || (r = prop_ok(prop)))
        return r;
    if (!granularity || (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM &&
                         option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED))
        return CUDA_ERROR_INVALID_VALUE;
    *granularity = GRANULARITY;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                         CUdeviceptr addr, unsigned long long flags)
{
    struct resv *v;
    uintptr_t base, cut;
    size_t align = alignment ? alignment : GRANULARITY;
    void *p;
    CUresult r = vgpu_fake_cu_ready();

    (void)addr;               /* a hint the driver may ignore; the fake does */
    if (r)
        return r;
    if (!ptr || !size || size % GRANULARITY || flags || (align & (align - 1)) ||
        align % GRANULARITY || size > (SIZE_MAX >> 2))
        return CUDA_ERROR_INVALID_VALUE;
    p = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return CUDA_ERROR_OUT_OF_MEMORY;
    base = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    if ((cut = base - (uintptr_t)p))
        munmap(p, cut);
    if (align - cut)
        munmap((void *)(base + size), align - cut);
    if (!(v = calloc(1, sizeof(*v)))) {
        munmap((void *)base, size);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *v = (struct resv){ base, size, resvs };
    resvs = v;
    *ptr = base;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    for (struct resv **pp = &resvs; *pp; pp = &(*pp)->next) {
        struct resv *v = *pp;

        if (v->base != ptr || v->size != size)
            continue;
        for (struct map *m = maps; m; m = m->next)
            if (inside(m->va, m->size, v->base, v->size))
                return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuMemAddressFree",
                                           "%#llx is still mapped", (unsigned long long)m->va);
        munmap((void *)v->base, v->size);
        *pp = v->next;
        free(v);
        return CUDA_SUCCESS;
    }
    return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuMemAddressFree",
                               "[%#llx, +%zu) is not a reservation", (unsigned long long)ptr, size);
}

FAKE_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                 const CUmemAllocationProp *prop, unsigned long long flags)
{
    struct phys *p;
    CUresult r = vgpu_fake_cu_ready();

    if (r || (r = prop_ok(prop)))
        return r;
    if (!handle || !size || size % GRANULARITY || flags)
        return CUDA_ERROR_INVALID_VALUE;
    if (size > VGPU_FAKE_TOTAL_MEM - vgpu_fake_mem_used())
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (!(p = calloc(1, sizeof(*p))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if ((p->fd = memfd_create("fakecuda-phys", MFD_CLOEXEC)) < 0 || ftruncate(p->fd, (off_t)size)) {
        if (p->fd >= 0)
            close(p->fd);
        free(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    p->handle = next_handle++;
    p->size = size;
    p->refs = 1;
    p->prop = *prop;
    p->prop.win32HandleMetaData = NULL;
    p->next = physs;
    physs = p;
    *handle = p->handle;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    struct phys *p;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!(p = phys_find(handle, true)))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuMemRelease", "unknown handle %#llx",
                                   (unsigned long long)handle);
    p->refs--;
    phys_drop(p);
    return CUDA_SUCCESS;
}

static struct resv *resv_holding(uintptr_t va, size_t size)
{
    for (struct resv *v = resvs; v; v = v->next)
        if (inside(va, size, v->base, v->size))
            return v;
    return NULL;
}

FAKE_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                              CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    struct phys *p;
    struct map *m;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!(p = phys_find(handle, true)))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuMemMap", "unknown handle %#llx",
                                   (unsigned long long)handle);
    if (!size || size % GRANULARITY || offset % GRANULARITY || ptr % GRANULARITY || flags ||
        !inside(offset, size, 0, p->size))
        return CUDA_ERROR_INVALID_VALUE;
    if (!resv_holding(ptr, size))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuMemMap",
                                   "[%#llx, +%zu) is not inside a reservation",
                                   (unsigned long long)ptr, size);
    for (m = maps; m; m = m->next)
        if (ptr < m->va + m->size && m->va < ptr + size)
            return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuMemMap",
                                       "[%#llx, +%zu) is already mapped", (unsigned long long)ptr,
                                       size);
    if (!(m = calloc(1, sizeof(*m))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (mmap((void *)(uintptr_t)ptr, size, PROT_NONE, MAP_SHARED | MAP_FIXED, p->fd,
             (off_t)offset) == MAP_FAILED) {
        free(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *m = (struct map){ .va = ptr, .size = size, .phys = p, .next = maps };
    maps = m;
    p->maps++;
    return CUDA_SUCCESS;
}

/* Whole mappings, one after another, cover [va, va+size) and none reaches outside it. */
static bool tiled(uintptr_t va, size_t size)
{
    uintptr_t a = va;
    struct map *m;

    if (!size || size > UINTPTR_MAX - va)
        return false;
    for (m = maps; m; m = m->next)
        if (m->va < va + size && va < m->va + m->size && !inside(m->va, m->size, va, size))
            return false;
    while (a < va + size) {
        if (!(m = map_at(a)))
            return false;
        a = m->va + m->size;
    }
    return true;
}

FAKE_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!tiled(ptr, size))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuMemUnmap",
                                   "[%#llx, +%zu) is not whole mappings", (unsigned long long)ptr,
                                   size);
    for (struct map **pp = &maps; *pp;) {
        struct map *m = *pp;

        if (!inside(m->va, m->size, ptr, size)) {
            pp = &m->next;
            continue;
        }
        /* the reservation stays: inaccessible anonymous memory again */
        mmap((void *)m->va, m->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |
             MAP_NORESERVE, -1, 0);
        *pp = m->next;
        m->phys->maps--;
        phys_drop(m->phys);
        free(m);
    }
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                    size_t count)
{
    int prot = PROT_NONE;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!desc || !count)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < count; i++) {
        if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE)
            return CUDA_ERROR_INVALID_VALUE;
        if (desc[i].location.id != 0)
            return CUDA_ERROR_INVALID_DEVICE;
        if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READ)
            prot = PROT_READ;
        else if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
            prot = PROT_READ | PROT_WRITE;
        else if (desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE)
            return CUDA_ERROR_INVALID_VALUE;
    }
    if (!tiled(ptr, size))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuMemSetAccess",
                                   "[%#llx, +%zu) is not whole mappings", (unsigned long long)ptr,
                                   size);
    if (mprotect((void *)(uintptr_t)ptr, size, prot))
        return CUDA_ERROR_INVALID_VALUE;
    for (struct map *m = maps; m; m = m->next)
        if (inside(m->va, m->size, ptr, size))
            m->access = prot != PROT_NONE;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location,
                                    CUdeviceptr ptr)
{
    struct map *m;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!flags || !location || location->type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    if (location->id != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (!resv_holding(ptr, 1))
        return CUDA_ERROR_INVALID_VALUE;
    m = map_at(ptr);
    *flags = m && m->access ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE : CU_MEM_ACCESS_FLAGS_PROT_NONE;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    struct map *m;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!handle || !(m = map_at((uintptr_t)addr)))
        return CUDA_ERROR_INVALID_VALUE;
    m->phys->refs++;
    *handle = m->phys->handle;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                            CUmemGenericAllocationHandle handle)
{
    struct phys *p;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!prop || !(p = phys_find(handle, true)))
        return CUDA_ERROR_INVALID_VALUE;
    *prop = p->prop;
    return CUDA_SUCCESS;
}
