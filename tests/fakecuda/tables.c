/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the fake has handed out: device memory (allocations and the memory
 * of registered variables), streams, events, modules, kernels and
 * variables.  Plain arrays and lists: a test session holds a handful.
 * Every pointer or handle the API receives is found here before it is
 * used, so an unknown value is refused, never dereferenced.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fakecuda_internal.h"

struct vgpu_fake_stream *vgpu_fake_streams;
struct vgpu_fake_event *vgpu_fake_events;
struct vgpu_fake_module *vgpu_fake_modules;
struct vgpu_fake_fn *vgpu_fake_fns;

static struct vgpu_fake_alloc *allocs;
static size_t nallocs, cap_allocs;

int vgpu_fake_alloc_add(void *base, size_t size, bool freeable)
{
    if (nallocs == cap_allocs) {
        size_t cap = cap_allocs ? 2 * cap_allocs : 64;
        struct vgpu_fake_alloc *p = realloc(allocs, cap * sizeof(*p));

        if (!p)
            return -1;
        allocs = p;
        cap_allocs = cap;
    }
    allocs[nallocs++] = (struct vgpu_fake_alloc){ .base = (uintptr_t)base, .size = size,
                                                .freeable = freeable,
                                                .ctx = vgpu_fake_ctx_current() };
    return 0;
}

struct vgpu_fake_alloc *vgpu_fake_alloc_at(const void *base)
{
    for (size_t i = 0; i < nallocs; i++)
        if (allocs[i].base == (uintptr_t)base)
            return &allocs[i];
    return NULL;
}

struct vgpu_fake_alloc *vgpu_fake_alloc_of(const void *p)
{
    for (size_t i = 0; i < nallocs; i++)
        if ((uintptr_t)p >= allocs[i].base && (uintptr_t)p - allocs[i].base < allocs[i].size)
            return &allocs[i];
    return NULL;
}

void vgpu_fake_alloc_remove(struct vgpu_fake_alloc *a)
{
    *a = allocs[--nallocs];
}

bool vgpu_fake_is_dev(const void *p, size_t len)
{
    uintptr_t addr = (uintptr_t)p;

    for (size_t i = 0; i < nallocs; i++) {
        const struct vgpu_fake_alloc *a = &allocs[i];

        if (addr >= a->base && addr - a->base <= a->size && len <= a->size - (addr - a->base))
            return true;
    }
    /* mapped host memory (memory.c), or mapped with access (driver_vmm.c) */
    return vgpu_fake_is_mapped(p, len) || vgpu_fake_vmm_covers(p, len);
}

struct vgpu_fake_alloc *vgpu_fake_alloc_holding(const void *p)
{
    uintptr_t addr = (uintptr_t)p;

    for (size_t i = 0; i < nallocs; i++)
        if (addr >= allocs[i].base && addr - allocs[i].base < (allocs[i].size ? allocs[i].size : 1))
            return &allocs[i];
    return NULL;
}

void vgpu_fake_alloc_reset(void)
{
    for (size_t i = 0; i < nallocs;) {
        if (allocs[i].freeable) {
            if (allocs[i].managed)
                vgpu_fake_managed_unmap((void *)allocs[i].base, allocs[i].size);
            else
                vgpu_fake_dev_unmap((void *)allocs[i].base, allocs[i].size);
            vgpu_fake_alloc_remove(&allocs[i]);
        } else {
            i++;
        }
    }
}

uint64_t vgpu_fake_mem_used(void)
{
    uint64_t used = 0;

    for (size_t i = 0; i < nallocs; i++)
        if (allocs[i].freeable)
            used += allocs[i].size;
    return used + vgpu_fake_vmm_used();       /* and cuMemCreate's (driver_vmm.c) */
}

/*
 * NULL is a value the server lets through for the runtime to answer, as it
 * would natively: refused quietly.  Anything else unknown is logged.
 */
bool vgpu_fake_dev_ok(const char *fn, const void *p, size_t len)
{
    if (p && vgpu_fake_is_dev(p, len))
        return true;
    if (!p) {
        vgpu_fake_status(cudaErrorInvalidValue);
        return false;
    }
    vgpu_fake_refuse(cudaErrorInvalidValue, fn, "[%p, +%zu) is not device memory of this process",
                     p, len);
    return false;
}

bool vgpu_fake_stream_ok(const char *fn, cudaStream_t s)
{
    /* the legacy default stream and its aliases cudaStreamLegacy, cudaStreamPerThread */
    if (s == NULL || s == cudaStreamLegacy || s == cudaStreamPerThread)
        return true;
    for (struct vgpu_fake_stream *f = vgpu_fake_streams; f; f = f->next)
        if ((void *)f == (void *)s)
            return true;
    vgpu_fake_refuse(cudaErrorInvalidResourceHandle, fn, "unknown stream %p", (void *)s);
    return false;
}

struct vgpu_fake_event *vgpu_fake_event_find(const char *fn, cudaEvent_t e)
{
    for (struct vgpu_fake_event *f = vgpu_fake_events; f; f = f->next)
        if ((void *)f == (void *)e)
            return f;
    if (e)
        vgpu_fake_refuse(cudaErrorInvalidResourceHandle, fn, "unknown event %p", (void *)e);
    else
        vgpu_fake_status(cudaErrorInvalidResourceHandle);
    return NULL;
}

struct vgpu_fake_fn *vgpu_fake_fn_find(const char *fn, const void *host, bool is_var)
{
    for (struct vgpu_fake_fn *f = vgpu_fake_fns; f; f = f->next)
        if (f->host == host && f->is_var == is_var)
            return f;
    if (host)
        vgpu_fake_refuse(is_var ? cudaErrorInvalidSymbol : cudaErrorInvalidDeviceFunction, fn,
                         "%s %p was never registered", is_var ? "variable" : "kernel", host);
    else
        vgpu_fake_status(is_var ? cudaErrorInvalidSymbol : cudaErrorInvalidDeviceFunction);
    return NULL;
}
