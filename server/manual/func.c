/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Function attributes and occupancy (spec: manual): each asks the runtime
 * about the server's stand-in for a kernel the guest registered.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>

#include "manual_internal.h"

int vgpu_manual_func(struct vgpu_session *s, struct vgpu_manual_call *c, uint32_t id)
{
    UNPACK(Vgpu__Manual__FuncArgs, func_args, c);
    Vgpu__Manual__FuncRet r = VGPU__MANUAL__FUNC_RET__INIT;
    struct vgpu_hostfn *fn = kernel_of(s, a->host);
    struct cudaFuncAttributes at;
    const char *name = NULL;
    int rc = cudaErrorInvalidDeviceFunction, iv = 0;
    size_t sv = 0;

    if (!fn)
        goto out;
    switch (id) {
    case VGPU_CUDART_ID_cudaFuncGetAttributes:
        rc = cudaFuncGetAttributes(&at, fn->fake);
        r.shared_size_bytes = at.sharedSizeBytes;
        r.const_size_bytes = at.constSizeBytes;
        r.local_size_bytes = at.localSizeBytes;
        r.max_threads_per_block = at.maxThreadsPerBlock;
        r.num_regs = at.numRegs;
        r.ptx_version = at.ptxVersion;
        r.binary_version = at.binaryVersion;
        r.cache_mode_ca = at.cacheModeCA;
        r.max_dynamic_shared_size_bytes = at.maxDynamicSharedSizeBytes;
        r.preferred_shmem_carveout = at.preferredShmemCarveout;
        r.cluster_dim_must_be_set = at.clusterDimMustBeSet;
        r.required_cluster_width = at.requiredClusterWidth;
        r.required_cluster_height = at.requiredClusterHeight;
        r.required_cluster_depth = at.requiredClusterDepth;
        r.cluster_scheduling_policy_preference = at.clusterSchedulingPolicyPreference;
        r.non_portable_cluster_size_allowed = at.nonPortableClusterSizeAllowed;
        break;
    case VGPU_CUDART_ID_cudaFuncSetAttribute:
        rc = cudaFuncSetAttribute(fn->fake, (enum cudaFuncAttribute)a->attr, (int)a->value);
        break;
    case VGPU_CUDART_ID_cudaFuncSetCacheConfig:
        rc = cudaFuncSetCacheConfig(fn->fake, (enum cudaFuncCache)a->value);
        break;
    case VGPU_CUDART_ID_cudaFuncSetSharedMemConfig:
        /* deprecated in CUDA, still part of the API programs call */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        rc = cudaFuncSetSharedMemConfig(fn->fake, (enum cudaSharedMemConfig)a->value);
#pragma GCC diagnostic pop
        break;
    case VGPU_CUDART_ID_cudaFuncGetName:
        rc = cudaFuncGetName(&name, fn->fake);
        r.name = (char *)(name ? name : "");
        break;
    case VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessor:
        rc = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&iv, fn->fake, a->block_size, a->dynamic_smem);
        r.value = iv;
        break;
    case VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags:
        rc = cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&iv, fn->fake, a->block_size,
                                                                    a->dynamic_smem, a->flags);
        r.value = iv;
        break;
    case VGPU_CUDART_ID_cudaOccupancyAvailableDynamicSMemPerBlock:
        rc = cudaOccupancyAvailableDynamicSMemPerBlock(&sv, fn->fake, (int)a->value, a->block_size);
        r.value = (int64_t)sv;
        break;
    default:
        rc = cudaErrorNotSupported;
        break;
    }
    if (rc == cudaSuccess)
        rc = reply(c, &r.base);
out:
    vgpu__manual__func_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}
