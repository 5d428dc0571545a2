/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-thread state answered in the guest (current device, last error),
 * error names and texts, and the calls about kernels that take a host stub:
 * attributes, cache configuration, names, occupancy.
 */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../shim_internal.h"
#include "cudart_calltable.h"
#include "manual.pb-c.h"

int vgpu_shim_kernel(const void *func, uint64_t *key);
int vgpu_shim_param_info(const void *func, size_t index, size_t *off, size_t *size);

VGPU_EXPORT cudaError_t cudaGetLastError(void)
{
    return (cudaError_t)vgpu_shim_take_last_error(true);
}

VGPU_EXPORT cudaError_t cudaPeekAtLastError(void)
{
    return (cudaError_t)vgpu_shim_take_last_error(false);
}

VGPU_EXPORT const char *cudaGetErrorName(cudaError_t error)
{
    return vgpu_shim_error_name((int)error);
}

VGPU_EXPORT const char *cudaGetErrorString(cudaError_t error)
{
    return vgpu_shim_error_text((int)error);
}

VGPU_EXPORT cudaError_t cudaSetDevice(int device)
{
    Vgpu__Manual__DeviceArgs a = VGPU__MANUAL__DEVICE_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    a.device = device;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaSetDevice, "cudaSetDevice", &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    if (st == cudaSuccess)
        vgpu_shim_set_device(device);
    return (cudaError_t)st;
}

VGPU_EXPORT cudaError_t cudaGetDevice(int *device)
{
    int st;

    if (!device)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    /* Connects if nothing has yet, so a runtime that cannot start is reported. */
    vgpu_shim_connect();
    st = vgpu_shim_init_status();
    if (st != cudaSuccess)
        return (cudaError_t)vgpu_shim_status(st);
    *device = vgpu_shim_device();
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaDeviceReset(void)
{
    Vgpu__Manual__DeviceResetArgs a = VGPU__MANUAL__DEVICE_RESET_ARGS__INIT;
    struct vgpu_call_req req = { .flags = VGPU_FN_CTX_CHANGE };  /* its contexts go */
    struct vgpu_call_rep rep = { 0 };
    int st;

    st = vgpu_shim_call(VGPU_CUDART_ID_cudaDeviceReset, "cudaDeviceReset", &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    if (st == cudaSuccess)
        vgpu_shim_objects_reset(vgpu_shim_device());   /* its texture and surface objects are gone */
    return (cudaError_t)st;
}

VGPU_EXPORT struct cudaChannelFormatDesc cudaCreateChannelDesc(int x, int y, int z, int w,
                                                               enum cudaChannelFormatKind f)
{
    struct cudaChannelFormatDesc d = { x, y, z, w, f };

    return d;
}

/*
 * One call about a kernel; *ret is unpacked for the caller to free.  A call
 * that sets something (ret NULL) makes the client forget its per-context
 * answers: a function's attributes and occupancy (docs/codegen.md).
 */
static int func_call(uint32_t id, const char *name, const void *func, Vgpu__Manual__FuncArgs *a,
                     Vgpu__Manual__FuncRet **ret)
{
    struct vgpu_call_req req = { .flags = ret ? 0 : VGPU_FN_CTX_CHANGE };
    struct vgpu_call_rep rep = { 0 };
    int st = vgpu_shim_kernel(func, &a->host);

    if (st != cudaSuccess)
        return vgpu_shim_status(st);
    st = vgpu_shim_call(id, name, &a->base, &req, &rep);
    if (st == cudaSuccess && ret) {
        *ret = vgpu__manual__func_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (!*ret)
            st = vgpu_shim_status(cudaErrorUnknown);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func)
{
    Vgpu__Manual__FuncArgs a = VGPU__MANUAL__FUNC_ARGS__INIT;
    Vgpu__Manual__FuncRet *r = NULL;
    int st;

    if (!attr)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    st = func_call(VGPU_CUDART_ID_cudaFuncGetAttributes, "cudaFuncGetAttributes", func, &a, &r);
    if (st != cudaSuccess)
        return (cudaError_t)st;
    memset(attr, 0, sizeof(*attr));
    attr->sharedSizeBytes = r->shared_size_bytes;
    attr->constSizeBytes = r->const_size_bytes;
    attr->localSizeBytes = r->local_size_bytes;
    attr->maxThreadsPerBlock = r->max_threads_per_block;
    attr->numRegs = r->num_regs;
    attr->ptxVersion = r->ptx_version;
    attr->binaryVersion = r->binary_version;
    attr->cacheModeCA = r->cache_mode_ca;
    attr->maxDynamicSharedSizeBytes = r->max_dynamic_shared_size_bytes;
    attr->preferredShmemCarveout = r->preferred_shmem_carveout;
    attr->clusterDimMustBeSet = r->cluster_dim_must_be_set;
    attr->requiredClusterWidth = r->required_cluster_width;
    attr->requiredClusterHeight = r->required_cluster_height;
    attr->requiredClusterDepth = r->required_cluster_depth;
    attr->clusterSchedulingPolicyPreference = r->cluster_scheduling_policy_preference;
    attr->nonPortableClusterSizeAllowed = r->non_portable_cluster_size_allowed;
    vgpu__manual__func_ret__free_unpacked(r, NULL);
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value)
{
    Vgpu__Manual__FuncArgs a = VGPU__MANUAL__FUNC_ARGS__INIT;

    a.attr = attr;
    a.value = value;
    return (cudaError_t)func_call(VGPU_CUDART_ID_cudaFuncSetAttribute, "cudaFuncSetAttribute", func,
                                  &a, NULL);
}

VGPU_EXPORT cudaError_t cudaFuncSetCacheConfig(const void *func, enum cudaFuncCache cacheConfig)
{
    Vgpu__Manual__FuncArgs a = VGPU__MANUAL__FUNC_ARGS__INIT;

    a.value = cacheConfig;
    return (cudaError_t)func_call(VGPU_CUDART_ID_cudaFuncSetCacheConfig, "cudaFuncSetCacheConfig",
                                  func, &a, NULL);
}

VGPU_EXPORT cudaError_t cudaFuncSetSharedMemConfig(const void *func, enum cudaSharedMemConfig config)
{
    Vgpu__Manual__FuncArgs a = VGPU__MANUAL__FUNC_ARGS__INIT;

    a.value = config;
    return (cudaError_t)func_call(VGPU_CUDART_ID_cudaFuncSetSharedMemConfig,
                                  "cudaFuncSetSharedMemConfig", func, &a, NULL);
}

VGPU_EXPORT cudaError_t cudaFuncGetName(const char **name, const void *func)
{
    static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
    static struct kept { const void *func; char *name; struct kept *next; } *kept;
    Vgpu__Manual__FuncArgs a = VGPU__MANUAL__FUNC_ARGS__INIT;
    Vgpu__Manual__FuncRet *r = NULL;
    struct kept *k;
    int st;

    if (!name)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    st = func_call(VGPU_CUDART_ID_cudaFuncGetName, "cudaFuncGetName", func, &a, &r);
    if (st != cudaSuccess)
        return (cudaError_t)st;
    /* the returned string must stay valid: keep one copy per kernel */
    pthread_mutex_lock(&names_lock);
    for (k = kept; k && k->func != func; k = k->next)
        ;
    if (!k && (k = calloc(1, sizeof(*k)))) {
        k->func = func;
        k->name = strdup(r->name);
        k->next = kept;
        kept = k;
    }
    *name = k ? k->name : NULL;
    pthread_mutex_unlock(&names_lock);
    vgpu__manual__func_ret__free_unpacked(r, NULL);
    return *name ? cudaSuccess : (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
}

/* Answered from the layout the shim fetched for launches. */
VGPU_EXPORT cudaError_t cudaFuncGetParamInfo(const void *func, size_t paramIndex,
                                             size_t *paramOffset, size_t *paramSize)
{
    return (cudaError_t)vgpu_shim_status(vgpu_shim_param_info(func, paramIndex, paramOffset, paramSize));
}

static int occupancy(uint32_t id, const char *name, const void *func, int block, size_t smem,
                     unsigned flags, int64_t value, int64_t *out)
{
    Vgpu__Manual__FuncArgs a = VGPU__MANUAL__FUNC_ARGS__INIT;
    Vgpu__Manual__FuncRet *r = NULL;
    int st;

    if (!out)
        return vgpu_shim_status(cudaErrorInvalidValue);
    a.block_size = block;
    a.dynamic_smem = smem;
    a.flags = flags;
    a.value = value;
    st = func_call(id, name, func, &a, &r);
    if (st == cudaSuccess) {
        *out = r->value;
        vgpu__manual__func_ret__free_unpacked(r, NULL);
    }
    return st;
}

VGPU_EXPORT cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, const void *func,
                                                                      int blockSize,
                                                                      size_t dynamicSMemSize)
{
    int64_t v = 0;
    int st = occupancy(VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessor,
                       "cudaOccupancyMaxActiveBlocksPerMultiprocessor", func, blockSize,
                       dynamicSMemSize, 0, 0, numBlocks ? &v : NULL);

    if (st == cudaSuccess)
        *numBlocks = (int)v;
    return (cudaError_t)st;
}

VGPU_EXPORT cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
    int *numBlocks, const void *func, int blockSize, size_t dynamicSMemSize, unsigned int flags)
{
    int64_t v = 0;
    int st = occupancy(VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
                       "cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags", func, blockSize,
                       dynamicSMemSize, flags, 0, numBlocks ? &v : NULL);

    if (st == cudaSuccess)
        *numBlocks = (int)v;
    return (cudaError_t)st;
}

VGPU_EXPORT cudaError_t cudaOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize,
                                                                  const void *func, int numBlocks,
                                                                  int blockSize)
{
    int64_t v = 0;
    int st = occupancy(VGPU_CUDART_ID_cudaOccupancyAvailableDynamicSMemPerBlock,
                       "cudaOccupancyAvailableDynamicSMemPerBlock", func, blockSize, 0, 0,
                       numBlocks, dynamicSmemSize ? &v : NULL);

    if (st == cudaSuccess)
        *dynamicSmemSize = (size_t)v;
    return (cudaError_t)st;
}
