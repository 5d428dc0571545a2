/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Managed memory through the driver API (libcuda.so.1's cuMemAllocManaged
 * and cuLibraryGetManaged), with the runtime's checks (memory.c's
 * cudaMallocManaged): the allocation is charged to the VM's memory limit
 * and entered in the session's range table like any other; a library's
 * managed variable is memory of the session from then on, not freeable.
 * The guest keeps a shadow of both (shim/client/managed.c) and moves bytes
 * with copies flagged managed (copy.c).  Advice, prefetches and stream
 * attachment are answered in the guest, which neither migrates nor needs
 * the server to.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <stdint.h>

#include "cuda_calltable.h"
#include "manual_internal.h"

/*
 * cuMemAllocManaged: MallocArgs with managed set (nothing else: no pitch,
 * no stream), flags CU_MEM_ATTACH_GLOBAL or CU_MEM_ATTACH_HOST (checked by
 * vgpu_manual_malloc, whose cudaMemAttach* values they are).  The
 * runtime's status told as the driver's: the two share success, invalid
 * value and out of memory, the ones an allocation returns.
 */
static int h_alloc_managed(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    _Static_assert(CU_MEM_ATTACH_GLOBAL == cudaMemAttachGlobal &&
                   CU_MEM_ATTACH_HOST == cudaMemAttachHost, "the driver's flags are the runtime's");
    Vgpu__Manual__MallocArgs *a = vgpu__manual__malloc_args__unpack(NULL, c->args_len, c->args);
    bool ok = a && a->managed && !a->pitch && !a->async && a->size;
    int st;

    if (a)
        vgpu__manual__malloc_args__free_unpacked(a, NULL);
    if (!ok)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vgpu_driver_sym("cuInit"))
        return CUDA_ERROR_NOT_INITIALIZED;
    st = vgpu_manual_malloc(s, c);
    return st > 4 && st < 100 ? CUDA_ERROR_INVALID_VALUE : st;
}

/* cuLibraryGetManaged: GlobalArgs of a library of the session's; GlobalRet. */
static int h_library_managed(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__GlobalArgs, global_args, c);
    VGPU_DRIVER_SYM(get_managed, cuLibraryGetManaged);
    CUdeviceptr p = 0;
    size_t bytes = 0;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!get_managed)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!a->library || !vgpu_handle_known(s, vgpu_cuda_kind(VGPU_CUDA_H_LIBRARY), a->handle))
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!a->name || !a->name[0])
        goto out;
    st = get_managed(&p, &bytes, (CUlibrary)(uintptr_t)a->handle, a->name);
    if (st == CUDA_SUCCESS)
        st = vgpu_drv_global_reply(s, c, p, bytes);
out:
    vgpu__manual__global_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

vgpu_manual_fn vgpu_drv_managed_manual_find(uint32_t id)
{
    switch (id) {
    case VGPU_CUDA_ID_cuMemAllocManaged: return h_alloc_managed;
    case VGPU_CUDA_ID_cuLibraryGetManaged: return h_library_managed;
    default: return NULL;
    }
}
