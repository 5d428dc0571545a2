/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Managed memory in the fake: cudaMallocManaged and __managed__ variables
 * (registered with __cudaRegisterManagedVar, set up by __cudaInitModule,
 * which points the program's host-side pointer at the variable).  The
 * memory is "device memory" of this process like cudaMalloc's, but taken
 * from a window of addresses far from the heap (mmap, MAP_FIXED_NOREPLACE),
 * as a real driver hands out unified addresses from its own reserved
 * range: so a shim in another process can put its shadow of the memory at
 * the same address (shim/manual/managed.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fakecuda_internal.h"

#define WINDOW_BASE 0x6f0000000000ull
#define WINDOW_SIZE (64ull << 30)
#define GRAIN (64u << 10)

static uintptr_t next_addr = WINDOW_BASE;

void *vgpu_fake_managed_map(size_t size)
{
    size_t bytes = (size + GRAIN - 1) / GRAIN * GRAIN;

    if (!bytes)
        bytes = GRAIN;
    while (next_addr + bytes + GRAIN <= WINDOW_BASE + WINDOW_SIZE) {
        void *want = (void *)next_addr;
        void *p = mmap(want, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

        next_addr += bytes + GRAIN;          /* a guard gap between allocations */
        if (p == want)
            return p;
        if (p != MAP_FAILED)
            munmap(p, bytes);                /* a kernel without MAP_FIXED_NOREPLACE put it elsewhere */
    }
    return NULL;
}

void vgpu_fake_managed_unmap(void *p, size_t size)
{
    munmap(p, (size + GRAIN - 1) / GRAIN * GRAIN);
}

FAKE_EXPORT cudaError_t cudaMallocManaged(void **devPtr, size_t size, unsigned int flags)
{
    struct vgpu_fake_alloc *a;
    void *p;

    vgpu_fake_rt_ctx();
    if (!devPtr || size == 0 || (flags != cudaMemAttachGlobal && flags != cudaMemAttachHost))
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (size > VGPU_FAKE_TOTAL_MEM - vgpu_fake_mem_used() || !(p = vgpu_fake_managed_map(size)))
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    if (vgpu_fake_alloc_add(p, size, true) || !(a = vgpu_fake_alloc_at(p))) {
        vgpu_fake_managed_unmap(p, size);
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    }
    a->managed = true;
    *devPtr = p;
    return cudaSuccess;
}

/* Points each managed variable's host-side pointer of the module at its memory. */
FAKE_EXPORT char __cudaInitModule(void **handle)
{
    char any = 0;

    vgpu_fake_rt_ctx();
    for (struct vgpu_fake_fn *f = vgpu_fake_fns; f; f = f->next)
        if (f->managed && (void *)f->module == (void *)handle) {
            *(void **)f->host = f->dev;
            any = 1;
        }
    for (struct vgpu_fake_module *m = vgpu_fake_modules; m; m = m->next)
        if ((void *)m == (void *)handle)
            return 1;
    return any;
}
