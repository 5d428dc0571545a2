/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host callbacks of the driver API: cuLaunchHostFunc and cuStreamAddCallback
 * (and their _ptsz forms).  The function is registered with the client
 * under an id (client/callbacks.c), the id goes to the server, which puts
 * the real call on the session's stream; the client's callback thread runs
 * the function in this process when the stream reaches it.  The call waits
 * for the server's answer, so an invalid stream is reported here and the
 * callback is on the stream before the program goes on (a program may spin
 * on a flag the callback sets without calling CUDA again).  Without the
 * shared-memory queue pair (TCP, VGPU_SHM=0, a guest without a shared BAR)
 * both fail with CUDA_ERROR_NOT_SUPPORTED (docs/driver.md).
 */
#include <cuda.h>
#include <errno.h>

#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"

static CUresult host_call(uint32_t id, const char *name, CUstream stream, int kind, void (*fn)(void),
                          void *data)
{
    struct vgpu_client *c = vgpu_client_get();
    Vgpu__Manual__HostFnArgs a = VGPU__MANUAL__HOST_FN_ARGS__INIT;
    struct vgpu_callback cb = { .kind = kind, .fn = fn, .data = data, .stream = stream };
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!fn)
        return CUDA_ERROR_INVALID_VALUE;
    st = vgpu_client_callback_add(c, &cb, &a.id);
    if (st)
        return (CUresult)vgpu_drv_status(st);
    a.stream = (uint64_t)(uintptr_t)stream;
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    vgpu_client_rep_release(c, &rep);
    if (st != CUDA_SUCCESS)
        vgpu_client_callback_cancel(c, a.id);
    return (CUresult)st;
}

#define ID(name) VGPU_CUDA_ID_##name

VGPU_EXPORT CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    return host_call(ID(cuLaunchHostFunc), "cuLaunchHostFunc", hStream, VGPU_CB_HOST_FN,
                     (void (*)(void))fn, userData);
}

VGPU_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData)
{
    return host_call(ID(cuLaunchHostFunc_ptsz), "cuLaunchHostFunc_ptsz", hStream, VGPU_CB_HOST_FN,
                     (void (*)(void))fn, userData);
}

/* flags is reserved and must be 0 (the server checks it again through the real call). */
VGPU_EXPORT CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                                         unsigned int flags)
{
    if (flags)
        return CUDA_ERROR_INVALID_VALUE;
    return host_call(ID(cuStreamAddCallback), "cuStreamAddCallback", hStream, VGPU_CB_STREAM,
                     (void (*)(void))callback, userData);
}

VGPU_EXPORT CUresult cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback callback,
                                              void *userData, unsigned int flags)
{
    if (flags)
        return CUDA_ERROR_INVALID_VALUE;
    return host_call(ID(cuStreamAddCallback_ptsz), "cuStreamAddCallback_ptsz", hStream,
                     VGPU_CB_STREAM, (void (*)(void))callback, userData);
}
