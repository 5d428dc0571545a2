/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one fake device (ordinal 0): properties of a plausible compute
 * capability 9.0 part named "vgpu fake device" with VGPU_FAKE_TOTAL_MEM of
 * memory, the attributes read from them (device_attr.c), versions,
 * device selection, reset and synchronization.
 */
#include <stdio.h>
#include <string.h>

#include "fakecuda_internal.h"

void vgpu_fake_props(struct cudaDeviceProp *p)
{
    memset(p, 0, sizeof(*p));
    strcpy(p->name, VGPU_FAKE_DEVICE_NAME);
    memcpy(p->uuid.bytes, "vgpu-fake-device", sizeof(p->uuid.bytes));
    p->totalGlobalMem = VGPU_FAKE_TOTAL_MEM;
    p->sharedMemPerBlock = 48 << 10;
    p->sharedMemPerBlockOptin = 227 << 10;
    p->sharedMemPerMultiprocessor = 228 << 10;
    p->regsPerBlock = 65536;
    p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->memPitch = 2147483647;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024;
    p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647;
    p->maxGridSize[1] = 65535;
    p->maxGridSize[2] = 65535;
    p->totalConstMem = 64 << 10;
    p->major = 9;
    p->minor = 0;
    p->textureAlignment = 512;
    p->texturePitchAlignment = 32;
    p->multiProcessorCount = 4;
    p->maxThreadsPerMultiProcessor = 2048;
    p->maxBlocksPerMultiProcessor = 32;
    p->l2CacheSize = 4 << 20;
    p->memoryBusWidth = 256;
    p->canMapHostMemory = 1;
    p->concurrentKernels = 1;
    p->asyncEngineCount = 2;
    p->unifiedAddressing = 1;
    p->streamPrioritiesSupported = 1;
    p->cooperativeLaunch = 1;
    p->pciBusID = 1;
    /* managed memory as an H200's driver reports it (managed.c; vgpu-server shows a guest less) */
    p->managedMemory = 1;
    p->concurrentManagedAccess = 1;
    p->pageableMemoryAccess = 1;
}

FAKE_EXPORT cudaError_t cudaGetDeviceCount(int *count)
{
    if (!count)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *count = 1;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaGetDevice(int *device)
{
    vgpu_fake_rt_ctx();
    if (!device)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *device = 0;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaSetDevice(int device)
{
    vgpu_fake_rt_ctx();
    return device == 0 ? cudaSuccess : vgpu_fake_status(cudaErrorInvalidDevice);
}

FAKE_EXPORT cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    vgpu_fake_rt_ctx();
    if (!prop)
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (device != 0)
        return vgpu_fake_status(cudaErrorInvalidDevice);
    vgpu_fake_props(prop);
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device)
{
    vgpu_fake_rt_ctx();
    if (!value)
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (device != 0)
        return vgpu_fake_status(cudaErrorInvalidDevice);
    return vgpu_fake_attribute((int)attr, value) ? vgpu_fake_status(cudaErrorInvalidValue)
                                                 : cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaDeviceGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    vgpu_fake_rt_ctx();
    if (leastPriority)
        *leastPriority = 0;
    if (greatestPriority)
        *greatestPriority = -5;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaDriverGetVersion(int *driverVersion)
{
    if (!driverVersion)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *driverVersion = CUDART_VERSION;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaRuntimeGetVersion(int *runtimeVersion)
{
    if (!runtimeVersion)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *runtimeVersion = CUDART_VERSION;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaDeviceSynchronize(void)
{
    vgpu_fake_rt_ctx();
    vgpu_fake_devout_flush();
    return cudaSuccess;
}

/* The current context's limits, which the driver keeps (cuCtxGetLimit, cuCtxSetLimit). */
static cudaError_t limit_status(CUresult r)
{
    return vgpu_fake_status(r == CUDA_SUCCESS ? cudaSuccess
                            : r == CUDA_ERROR_UNSUPPORTED_LIMIT ? cudaErrorUnsupportedLimit
                            : cudaErrorInvalidValue);
}

FAKE_EXPORT cudaError_t cudaDeviceSetLimit(enum cudaLimit limit, size_t value)
{
    vgpu_fake_rt_ctx();
    return limit_status(cuCtxSetLimit((CUlimit)limit, value));
}

FAKE_EXPORT cudaError_t cudaDeviceGetLimit(size_t *pValue, enum cudaLimit limit)
{
    vgpu_fake_rt_ctx();
    return limit_status(cuCtxGetLimit(pValue, (CUlimit)limit));
}

/* Everything the program created goes; registrations stay, variables read zero again. */
FAKE_EXPORT cudaError_t cudaDeviceReset(void)
{
    vgpu_fake_rt_ctx();
    vgpu_fake_alloc_reset();
    while (vgpu_fake_streams)
        cudaStreamDestroy((cudaStream_t)(void *)vgpu_fake_streams);
    while (vgpu_fake_events)
        cudaEventDestroy((cudaEvent_t)(void *)vgpu_fake_events);
    for (struct vgpu_fake_fn *f = vgpu_fake_fns; f; f = f->next)
        if (f->dev)
            memset(f->dev, 0, f->size);
    return cudaSuccess;
}

/* The bus id as cuDeviceGetPCIBusId writes it (driver.c): the server's NVML matches devices by it. */
FAKE_EXPORT cudaError_t cudaDeviceGetPCIBusId(char *pciBusId, int len, int device)
{
    struct cudaDeviceProp p;

    if (device != 0)
        return vgpu_fake_status(cudaErrorInvalidDevice);
    if (!pciBusId || len <= 0)
        return vgpu_fake_status(cudaErrorInvalidValue);
    vgpu_fake_props(&p);
    snprintf(pciBusId, (size_t)len, "%08x:%02x:%02x.0", (unsigned)p.pciDomainID,
             (unsigned)p.pciBusID, (unsigned)p.pciDeviceID);
    return cudaSuccess;
}
