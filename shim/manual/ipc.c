/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUDA IPC for the runtime API, among the processes of one VM: the driver
 * API's of vgpu's own libcuda.so.1 (ondriver.h, shim/driver/ipc.c).  The
 * runtime's handle types are the driver's 64 bytes under other names.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <string.h>

#include "../shim_internal.h"

#include "ondriver.h"

_Static_assert(sizeof(cudaIpcMemHandle_t) == sizeof(CUipcMemHandle) &&
               sizeof(cudaIpcEventHandle_t) == sizeof(CUipcEventHandle),
               "IPC handles have one layout in both APIs");

ONDRIVER_PASS(cudaIpcGetMemHandle, (cudaIpcMemHandle_t *handle, void *devPtr),
     cuIpcGetMemHandle, cuIpcGetMemHandle,
     ((CUipcMemHandle *)handle, (CUdeviceptr)(uintptr_t)devPtr))
ONDRIVER_PASS(cudaIpcGetEventHandle, (cudaIpcEventHandle_t *handle, cudaEvent_t event),
     cuIpcGetEventHandle, cuIpcGetEventHandle, ((CUipcEventHandle *)handle, (CUevent)event))
/* Memory opened from a handle is device memory to this library's copies (cudaMemcpyDefault). */
VGPU_EXPORT cudaError_t cudaIpcCloseMemHandle(void *devPtr)
{
    CUresult r;
    ONDRIVER(cuIpcCloseMemHandle, cuIpcCloseMemHandle);

    if ((r = p((CUdeviceptr)(uintptr_t)devPtr)) == CUDA_SUCCESS)
        vgpu_shim_device_range_drop(devPtr);
    return vgpu_ondriver_done(r);
}

VGPU_EXPORT cudaError_t cudaIpcOpenMemHandle(void **devPtr, cudaIpcMemHandle_t handle,
                                             unsigned int flags)
{
    CUipcMemHandle h;
    CUdeviceptr dptr = 0;
    CUresult r;
    ONDRIVER(cuIpcOpenMemHandle_v2, cuIpcOpenMemHandle_v2);

    if (!devPtr)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    memcpy(&h, &handle, sizeof(h));
    if ((r = p(&dptr, h, flags)) == CUDA_SUCCESS) {
        static __typeof__(&cuMemGetAddressRange_v2) range;
        CUdeviceptr base = 0;
        size_t size = 0;

        if (!range)
            *(void **)&range = vgpu_ondriver_sym("cuMemGetAddressRange_v2", __func__);
        if (range && range(&base, &size, dptr) == CUDA_SUCCESS && base == dptr)
            vgpu_shim_device_range_add((void *)(uintptr_t)dptr, size);
        *devPtr = (void *)(uintptr_t)dptr;
    }
    return vgpu_ondriver_done(r);
}

VGPU_EXPORT cudaError_t cudaIpcOpenEventHandle(cudaEvent_t *event, cudaIpcEventHandle_t handle)
{
    CUipcEventHandle h;
    ONDRIVER(cuIpcOpenEventHandle, cuIpcOpenEventHandle);

    memcpy(&h, &handle, sizeof(h));
    return vgpu_ondriver_done(p(event, h));
}
