/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A session's tables: the device ranges it allocated (or looked up as
 * symbols) and the handles the runtime gave it.  Everything a guest sends is
 * checked here before it reaches CUDA.  Sessions are small, so these are
 * plain arrays.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cudart_calltable.h"
#include "cuda_calltable.h"
#include "server_internal.h"
#include "vmm.h"

int vgpu_range_reserve(struct vgpu_session *s, int n)
{
    if (n < 0 || s->nranges > INT32_MAX / 4 - n)
        return -ENOMEM;
    while (s->cap_ranges - s->nranges < n) {
        int cap = s->cap_ranges ? 2 * s->cap_ranges : 64;
        void *p = realloc(s->ranges, (size_t)cap * sizeof(*s->ranges));

        if (!p)
            return -ENOMEM;
        s->ranges = p;
        s->cap_ranges = cap;
    }
    return 0;
}

int vgpu_range_add(struct vgpu_session *s, uint64_t base, uint64_t size, bool freeable)
{
    if (vgpu_range_reserve(s, 1))
        return -ENOMEM;
    s->ranges[s->nranges].base = base;
    s->ranges[s->nranges].size = size;
    s->ranges[s->nranges].freeable = freeable;
    s->ranges[s->nranges].graph = false;
    s->nranges++;
    return 0;
}

int vgpu_range_remove(struct vgpu_session *s, uint64_t base)
{
    for (int i = 0; i < s->nranges; i++)
        if (s->ranges[i].base == base && s->ranges[i].freeable) {
            s->ranges[i] = s->ranges[--s->nranges];
            return 0;
        }
    return -EFAULT;
}

int vgpu_range_drop(struct vgpu_session *s, uint64_t base)
{
    for (int i = 0; i < s->nranges; i++)
        if (s->ranges[i].base == base && !s->ranges[i].freeable) {
            s->ranges[i] = s->ranges[--s->nranges];
            return 0;
        }
    return -EFAULT;
}

bool vgpu_range_graph(const struct vgpu_session *s, uint64_t base)
{
    for (int i = 0; i < s->nranges; i++)
        if (s->ranges[i].base == base && s->ranges[i].freeable)
            return s->ranges[i].graph;
    return false;
}

int vgpu_range_remove_graph(struct vgpu_session *s, uint64_t base)
{
    for (int i = 0; i < s->nranges; i++)
        if (s->ranges[i].base == base && s->ranges[i].graph) {
            s->ranges[i] = s->ranges[--s->nranges];
            return 0;
        }
    return -EFAULT;
}

uint64_t vgpu_range_size(const struct vgpu_session *s, uint64_t base)
{
    for (int i = 0; i < s->nranges; i++)
        if (s->ranges[i].base == base && s->ranges[i].freeable)
            return s->ranges[i].size;
    return 0;
}

bool vgpu_range_owned(const struct vgpu_session *s, uint64_t base)
{
    for (int i = 0; i < s->nranges; i++)
        if (s->ranges[i].base == base && s->ranges[i].freeable)
            return true;
    return false;
}

bool vgpu_range_check(const struct vgpu_session *s, uint64_t addr, uint64_t len)
{
    for (int i = 0; i < s->nranges; i++) {
        const struct vgpu_range *r = &s->ranges[i];

        if (addr >= r->base && addr - r->base <= r->size && len <= r->size - (addr - r->base))
            return true;
    }
    return vgpu_vmm_covers(s, addr, len);   /* mapped with access (cuMemMap, cuMemSetAccess) */
}

bool vgpu_addr_check(const struct vgpu_session *s, uint64_t addr)
{
    return vgpu_range_check(s, addr, 1);
}

int vgpu_handle_add(struct vgpu_session *s, int kind, uint64_t value)
{
    if (vgpu_handle_known(s, kind, value))
        return 0;
    if (s->nhandles == s->cap_handles) {
        int cap = s->cap_handles ? 2 * s->cap_handles : 64;
        void *p = realloc(s->handles, (size_t)cap * sizeof(*s->handles));

        if (!p)
            return -ENOMEM;
        s->handles = p;
        s->cap_handles = cap;
    }
    s->handles[s->nhandles].kind = kind;
    s->handles[s->nhandles].value = value;
    s->nhandles++;
    return 0;
}

int vgpu_handle_remove(struct vgpu_session *s, int kind, uint64_t value)
{
    for (int i = 0; i < s->nhandles; i++)
        if (s->handles[i].kind == kind && s->handles[i].value == value) {
            s->handles[i] = s->handles[--s->nhandles];
            return 0;
        }
    return -ENOENT;
}

bool vgpu_handle_known(const struct vgpu_session *s, int kind, uint64_t value)
{
    for (int i = 0; i < s->nhandles; i++)
        if (s->handles[i].kind == kind && s->handles[i].value == value)
            return true;
    return false;
}

struct vgpu_hostfn *vgpu_hostfn_find(struct vgpu_session *s, uint64_t guest)
{
    for (int i = 0; i < s->nfns; i++)
        if (s->fns[i].guest == guest)
            return &s->fns[i];
    return NULL;
}

void vgpu_session_reset_tables(struct vgpu_session *s)
{
    s->nranges = 0;
    s->nhandles = 0;
    vgpu_vmm_free(s);
    /* graph memory, executable graphs' charges and conditional bodies went with the device */
    s->ngraph_mem = 0;
    s->nexec_mem = 0;
    s->ncond_bodies = 0;
}

/*
 * NULL passes through for every kind (the runtime answers it as natively);
 * the default-stream aliases cudaStreamLegacy (1) and cudaStreamPerThread
 * (2) are always valid streams.
 */
static int handle_in(void *ctx, int kind, uint64_t wire, void **native)
{
    struct vgpu_session *s = ctx;

    if (wire == 0 || (kind == VGPU_CUDART_H_STREAM && (wire == 1 || wire == 2)) ||
        vgpu_handle_known(s, kind, wire)) {
        *native = (void *)(uintptr_t)wire;
        return 0;
    }
    vgpu_log(VGPU_LOG_INFO, "refused handle %#llx of kind %d: not this session's",
             (unsigned long long)wire, kind);
    return -ENOENT;
}

static int handle_out(void *ctx, int kind, void *native, uint64_t *wire)
{
    *wire = (uint64_t)(uintptr_t)native;
    return native ? vgpu_handle_add(ctx, kind, *wire) : 0;
}

/*
 * A bare address (the call's extent is not known) must be a byte the
 * session owns: an allocation's end pointer is not.
 */
static int devptr_in(void *ctx, uint64_t addr, void **native)
{
    struct vgpu_session *s = ctx;

    if (addr == 0 || vgpu_addr_check(s, addr)) {
        *native = (void *)(uintptr_t)addr;
        return 0;
    }
    vgpu_log(VGPU_LOG_INFO, "refused device address %#llx: not this session's",
             (unsigned long long)addr);
    return -EFAULT;
}

/* The whole span a call touches, [addr, addr + len), must be the session's. */
static int range_in(void *ctx, uint64_t addr, uint64_t len, void **native)
{
    struct vgpu_session *s = ctx;

    if (addr == 0 || vgpu_range_check(s, addr, len)) {
        *native = (void *)(uintptr_t)addr;
        return 0;
    }
    vgpu_log(VGPU_LOG_INFO, "refused device range %#llx+%llu: not inside one of this "
             "session's allocations", (unsigned long long)addr, (unsigned long long)len);
    return -EFAULT;
}

const struct vgpu_replay_ops vgpu_session_ops = { handle_in, handle_out, devptr_in, range_in };

/*
 * The driver API's handles: its kinds are named like the runtime's where
 * they are the same objects (a CUstream is a cudaStream_t), so both APIs'
 * calls check one table.  A driver kind the runtime lacks gets a number of
 * its own, above the runtime's.  A CUkernel is accepted where a CUfunction
 * is (the driver takes one for the other, and NVIDIA's runtime passes it so).
 */
int vgpu_cuda_kind(int kind)
{
    static const char *const rt[] = VGPU_CUDART_HANDLE_KIND_NAMES;
    static const char *const drv[] = VGPU_CUDA_HANDLE_KIND_NAMES;

    if (kind < 0 || kind >= VGPU_CUDA_NHANDLE_KINDS)
        return -1;
    for (int i = 0; i < VGPU_CUDART_NHANDLE_KINDS; i++)
        if (!strcmp(rt[i], drv[kind]))
            return i;
    return VGPU_CUDART_NHANDLE_KINDS + kind;
}

static int cuda_handle_in(void *ctx, int kind, uint64_t wire, void **native)
{
    int k = vgpu_cuda_kind(kind);

    if (kind == VGPU_CUDA_H_FUNCTION && wire &&
        vgpu_handle_known(ctx, vgpu_cuda_kind(VGPU_CUDA_H_KERNEL), wire)) {
        *native = (void *)(uintptr_t)wire;
        return 0;
    }
    return handle_in(ctx, k == VGPU_CUDART_H_STREAM ? VGPU_CUDART_H_STREAM : k, wire, native);
}

static int cuda_handle_out(void *ctx, int kind, void *native, uint64_t *wire)
{
    return handle_out(ctx, vgpu_cuda_kind(kind), native, wire);
}

const struct vgpu_replay_ops vgpu_session_cuda_ops = { cuda_handle_in, cuda_handle_out, devptr_in,
                                                       range_in };
