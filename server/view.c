/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a guest sees of its device where that differs from the real one.
 * Generated calls reach these instead of the real functions (session.c's
 * resolve()), which they call first.
 *
 * Managed memory: the guest keeps a shadow of it that the host may touch
 * only while no kernel runs (shim/manual/managed.c), the model of a device
 * without concurrent managed access; and the guest's pageable memory is
 * not the GPU's to reach.  So concurrent managed access, pageable memory
 * access (and through the host's page tables) and direct host access to
 * managed memory read 0, in cudaGetDeviceProperties, cudaDeviceGetAttribute
 * and cuDeviceGetAttribute alike.
 *
 * Memory: a VM with a memory limit below the device's size sees a device
 * of that size (totalGlobalMem, cuDeviceTotalMem), and cudaMemGetInfo and
 * cuMemGetInfo answer total as the limit and free as what the limit leaves
 * the VM's sessions (never more than the device has free), as NVML does
 * (manual/nvml.c); another tenant's use never shows.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <string.h>

#include "server_internal.h"

_Static_assert((int)CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS == (int)cudaDevAttrConcurrentManagedAccess &&
               (int)CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS == (int)cudaDevAttrPageableMemoryAccess &&
               (int)CU_DEVICE_ATTRIBUTE_PAGEABLE_MEMORY_ACCESS_USES_HOST_PAGE_TABLES ==
                   (int)cudaDevAttrPageableMemoryAccessUsesHostPageTables &&
               (int)CU_DEVICE_ATTRIBUTE_DIRECT_MANAGED_MEM_ACCESS_FROM_HOST ==
                   (int)cudaDevAttrDirectManagedMemAccessFromHost,
               "the driver's attribute numbers are the runtime's");

static bool hidden(int attr)
{
    return attr == cudaDevAttrPageableMemoryAccess || attr == cudaDevAttrConcurrentManagedAccess ||
           attr == cudaDevAttrPageableMemoryAccessUsesHostPageTables ||
           attr == cudaDevAttrDirectManagedMemAccessFromHost;
}

static const struct vgpu_session *view_s;

void vgpu_view_enter(const struct vgpu_session *s)
{
    view_s = s;
}

/* The VM's memory limit when it is below total (the device's), else 0. */
static uint64_t vm_limit(uint64_t total)
{
    const struct vgpu_vm_limits *lim = view_s ? vgpu_config_vm(vgpu_cfg, view_s->who.vm_id) : NULL;

    return lim && lim->memory && lim->memory < total ? lim->memory : 0;
}

/* free and total as the VM sees them. */
static void vm_mem_info(size_t *avail, size_t *total)
{
    uint64_t lim = vm_limit(*total), used;

    if (!lim)
        return;
    used = vgpu_sched_vm_held(VGPU_HELD_MEMORY);
    *total = lim;
    if (used > lim)
        used = lim;
    if (*avail > lim - used)
        *avail = lim - used;
}

static cudaError_t view_mem_info(size_t *avail, size_t *total)
{
    static __typeof__(&cudaMemGetInfo) real;
    cudaError_t st;

    if (!real && !(*(void **)&real = dlsym(RTLD_DEFAULT, "cudaMemGetInfo")))
        return cudaErrorNotSupported;
    st = real(avail, total);
    if (st == cudaSuccess && avail && total)
        vm_mem_info(avail, total);
    return st;
}

static CUresult view_cu_mem_info(size_t *avail, size_t *total)
{
    static __typeof__(&cuMemGetInfo_v2) real;
    CUresult st;

    if (!real && !(*(void **)&real = (void *)vgpu_driver_sym("cuMemGetInfo_v2")))
        return CUDA_ERROR_NOT_SUPPORTED;
    st = real(avail, total);
    if (st == CUDA_SUCCESS && avail && total)
        vm_mem_info(avail, total);
    return st;
}

static CUresult view_cu_total(size_t *bytes, CUdevice dev)
{
    static __typeof__(&cuDeviceTotalMem_v2) real;
    CUresult st;

    if (!real && !(*(void **)&real = (void *)vgpu_driver_sym("cuDeviceTotalMem_v2")))
        return CUDA_ERROR_NOT_SUPPORTED;
    st = real(bytes, dev);
    if (st == CUDA_SUCCESS && bytes && vm_limit(*bytes))
        *bytes = vm_limit(*bytes);
    return st;
}

static cudaError_t view_props(struct cudaDeviceProp *prop, int device)
{
    static __typeof__(&cudaGetDeviceProperties) real;
    cudaError_t st;

    if (!real && !(*(void **)&real = dlsym(RTLD_DEFAULT, "cudaGetDeviceProperties")))
        return cudaErrorNotSupported;
    st = real(prop, device);
    if (st == cudaSuccess && prop) {
        prop->pageableMemoryAccess = 0;
        prop->concurrentManagedAccess = 0;
        prop->pageableMemoryAccessUsesHostPageTables = 0;
        prop->directManagedMemAccessFromHost = 0;
        if (vm_limit(prop->totalGlobalMem))
            prop->totalGlobalMem = vm_limit(prop->totalGlobalMem);
    }
    return st;
}

static cudaError_t view_attr(int *value, enum cudaDeviceAttr attr, int device)
{
    static __typeof__(&cudaDeviceGetAttribute) real;
    cudaError_t st;

    if (!real && !(*(void **)&real = dlsym(RTLD_DEFAULT, "cudaDeviceGetAttribute")))
        return cudaErrorNotSupported;
    st = real(value, attr, device);
    if (st == cudaSuccess && value && hidden((int)attr))
        *value = 0;
    return st;
}

static CUresult view_cu_attr(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    static __typeof__(&cuDeviceGetAttribute) real;
    CUresult st;

    if (!real && !(*(void **)&real = (void *)vgpu_driver_sym("cuDeviceGetAttribute")))
        return CUDA_ERROR_NOT_SUPPORTED;
    st = real(pi, attrib, dev);
    if (st == CUDA_SUCCESS && pi && hidden((int)attrib))
        *pi = 0;
    return st;
}

void (*vgpu_view_sym(const char *name))(void)
{
    static const struct { const char *name; void (*fn)(void); } views[] = {
        { "cudaGetDeviceProperties", (void (*)(void))view_props },
        { "cudaDeviceGetAttribute", (void (*)(void))view_attr },
        { "cuDeviceGetAttribute", (void (*)(void))view_cu_attr },
        { "cudaMemGetInfo", (void (*)(void))view_mem_info },
        { "cuMemGetInfo_v2", (void (*)(void))view_cu_mem_info },
        { "cuDeviceTotalMem_v2", (void (*)(void))view_cu_total },
    };

    for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
        if (!strcmp(name, views[i].name))
            return views[i].fn;
    return NULL;
}
