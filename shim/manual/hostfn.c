/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host callbacks of the runtime API: cudaLaunchHostFunc and
 * cudaStreamAddCallback (and their _ptsz forms, which name the per-thread
 * stream for stream 0).  As libcuda.so.1's (shim/driver/hostfn.c): the
 * function is registered with the client under an id
 * (client/callbacks.c), the id goes to the server, which puts the real
 * call on the stream, and the client's callback thread runs the function
 * in this process when the stream reaches it.  The call waits for the
 * server's answer, so its status is the real one.  Without the
 * shared-memory queue pair both return cudaErrorNotSupported.
 */
#include <cuda_runtime_api.h>

#include "../hostfn_reply.h"
#include "../shim_internal.h"
#include "cudart_calltable.h"
#include "manual.pb-c.h"

static cudaError_t host_call(uint32_t id, const char *name, cudaStream_t stream, int kind,
                             void (*fn)(void), void *data, cudaStream_t program_stream)
{
    struct vgpu_client *c = vgpu_client_get();
    Vgpu__Manual__HostFnArgs a = VGPU__MANUAL__HOST_FN_ARGS__INIT;
    struct vgpu_callback cb = { .kind = kind, .fn = fn, .data = data, .stream = program_stream };
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!fn)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    st = vgpu_client_callback_add(c, &cb, &a.id);
    if (st)
        return (cudaError_t)vgpu_shim_client_status(st);
    a.stream = (uint64_t)(uintptr_t)stream;
    vgpu_client_callback_keep(c, a.id, VGPU_CB_KEEP, NULL);
    st = vgpu_shim_call(id, name, &a.base, &req, &rep);
    if (st == cudaSuccess)
        vgpu_hostfn_reply_kept(c, a.id, &rep);
    vgpu_shim_rep_release(&rep);
    if (st != cudaSuccess)
        vgpu_client_callback_cancel(c, a.id);
    return (cudaError_t)st;
}

#define ID(name) VGPU_CUDART_ID_##name

VGPU_EXPORT cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *userData)
{
    return host_call(ID(cudaLaunchHostFunc), "cudaLaunchHostFunc", stream, VGPU_CB_HOST_FN,
                     (void (*)(void))fn, userData, stream);
}

VGPU_EXPORT cudaError_t cudaLaunchHostFunc_ptsz(cudaStream_t stream, cudaHostFn_t fn, void *userData)
{
    return host_call(ID(cudaLaunchHostFunc), "cudaLaunchHostFunc_ptsz",
                     stream ? stream : cudaStreamPerThread, VGPU_CB_HOST_FN, (void (*)(void))fn,
                     userData, stream);
}

/* flags is reserved and must be 0. */
VGPU_EXPORT cudaError_t cudaStreamAddCallback(cudaStream_t stream, cudaStreamCallback_t callback,
                                              void *userData, unsigned int flags)
{
    if (flags)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    return host_call(ID(cudaStreamAddCallback), "cudaStreamAddCallback", stream, VGPU_CB_STREAM,
                     (void (*)(void))callback, userData, stream);
}

VGPU_EXPORT cudaError_t cudaStreamAddCallback_ptsz(cudaStream_t stream, cudaStreamCallback_t callback,
                                                   void *userData, unsigned int flags)
{
    if (flags)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    return host_call(ID(cudaStreamAddCallback), "cudaStreamAddCallback_ptsz",
                     stream ? stream : cudaStreamPerThread, VGPU_CB_STREAM,
                     (void (*)(void))callback, userData, stream);
}
