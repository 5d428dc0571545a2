/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Runtime calls made on vgpu's own libcuda.so.1 (ondriver.c), as NVIDIA's
 * runtime makes its calls on its driver: graphs and stream capture
 * (graph.c), launches with attributes, cluster occupancy and libraries
 * (library.c).  The library is loaded from this library's directory, never
 * from the loader's path: on a host with NVIDIA's driver, that one would
 * reach the GPU past vgpu.  The CUresult codes these calls return have the
 * numbers of their cudaError_t (cudaErrorInvalidResourceHandle is 400 as
 * CUDA_ERROR_INVALID_HANDLE is, the stream-capture errors 900-908 in
 * both), so statuses pass through.
 */
#ifndef VGPU_SHIM_ONDRIVER_H
#define VGPU_SHIM_ONDRIVER_H

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "../shim_internal.h"

/* The function name of vgpu's libcuda.so.1, or NULL (said once, for the runtime call rt). */
VGPU_HIDDEN void *vgpu_ondriver_sym(const char *name, const char *rt);

/* A driver status as the runtime call's, recorded as the thread's last error. */
static inline cudaError_t vgpu_ondriver_done(CUresult r)
{
    return (cudaError_t)vgpu_shim_status((int)r);
}

/*
 * ONDRIVER(type, sym): p, the driver function sym with type's type (a
 * _ptsz form has its base form's), or the enclosing runtime call returns
 * cudaErrorNotSupported.
 */
#define ONDRIVER(type, sym)                                                             \
    static __typeof__(&type) p;                                                         \
    if (!p && !(*(void **)&p = vgpu_ondriver_sym(#sym, __func__)))                      \
        return (cudaError_t)vgpu_shim_status(cudaErrorNotSupported)

/* A runtime call that is its driver call with the same arguments. */
#define ONDRIVER_PASS(rt, params, type, sym, args)                                      \
    VGPU_EXPORT cudaError_t rt params                                                   \
    {                                                                                   \
        ONDRIVER(type, sym);                                                            \
        return vgpu_ondriver_done(p args);                                              \
    }

#endif
