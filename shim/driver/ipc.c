/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUDA IPC for libcuda.so.1, among the processes of one VM: the handle is
 * the server's driver's 64 bytes, which the program passes to its other
 * process by its own means; that process's session opens it when a
 * session of the same VM exported it (server/manual/ipc.c).  A handle from
 * another VM answers CUDA_ERROR_INVALID_VALUE.
 */
#include <cuda.h>
#include <string.h>

#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"

#define ID(name) VGPU_CUDA_ID_##name

/* One call; the reply unpacked into *r (the caller frees it) when r is not NULL. */
static CUresult ipc_call(uint32_t id, const char *name, Vgpu__Manual__IpcArgs *a,
                         Vgpu__Manual__IpcRet **r)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    st = vgpu_drv_call(id, name, &a->base, &req, &rep);
    if (st == CUDA_SUCCESS && r &&
        !(*r = vgpu__manual__ipc_ret__unpack(NULL, rep.ret_len, rep.ret)))
        st = vgpu_shim_bad_reply(&req);
    vgpu_shim_rep_release(&rep);
    return st;
}

/* An export (a, filled by the caller): the handle's 64 bytes into out. */
static CUresult get_handle(uint32_t id, const char *name, Vgpu__Manual__IpcArgs *a, char out[64])
{
    Vgpu__Manual__IpcRet *r = NULL;
    CUresult st;

    if ((st = ipc_call(id, name, a, &r)) == CUDA_SUCCESS) {
        if (r->handle.len == 64)
            memcpy(out, r->handle.data, 64);
        else
            st = CUDA_ERROR_INVALID_VALUE;
    }
    if (r)
        vgpu__manual__ipc_ret__free_unpacked(r, NULL);
    return st;
}

VGPU_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
    Vgpu__Manual__IpcArgs a = VGPU__MANUAL__IPC_ARGS__INIT;

    if (!pHandle)
        return CUDA_ERROR_INVALID_VALUE;
    a.ptr = dptr;
    return get_handle(ID(cuIpcGetMemHandle), "cuIpcGetMemHandle", &a, pHandle->reserved);
}

static CUresult open_mem(uint32_t id, const char *name, CUdeviceptr *pdptr, CUipcMemHandle handle,
                         unsigned int flags)
{
    Vgpu__Manual__IpcArgs a = VGPU__MANUAL__IPC_ARGS__INIT;
    Vgpu__Manual__IpcRet *r = NULL;
    CUresult st;

    if (!pdptr)
        return CUDA_ERROR_INVALID_VALUE;
    a.handle.data = (uint8_t *)handle.reserved;
    a.handle.len = sizeof(handle.reserved);
    a.flags = flags;
    if ((st = ipc_call(id, name, &a, &r)) == CUDA_SUCCESS)
        *pdptr = r->ptr;
    if (r)
        vgpu__manual__ipc_ret__free_unpacked(r, NULL);
    return st;
}

VGPU_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle,
                                           unsigned int Flags)
{
    return open_mem(ID(cuIpcOpenMemHandle_v2), "cuIpcOpenMemHandle_v2", pdptr, handle, Flags);
}

/* The CUDA 10 name, which cuda.h now maps to _v2. */
#undef cuIpcOpenMemHandle
CUresult cuIpcOpenMemHandle(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags);
VGPU_EXPORT CUresult cuIpcOpenMemHandle(CUdeviceptr *pdptr, CUipcMemHandle handle,
                                        unsigned int Flags)
{
    return open_mem(ID(cuIpcOpenMemHandle), "cuIpcOpenMemHandle", pdptr, handle, Flags);
}

VGPU_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    Vgpu__Manual__IpcArgs a = VGPU__MANUAL__IPC_ARGS__INIT;

    a.ptr = dptr;
    return ipc_call(ID(cuIpcCloseMemHandle), "cuIpcCloseMemHandle", &a, NULL);
}

VGPU_EXPORT CUresult cuIpcGetEventHandle(CUipcEventHandle *pHandle, CUevent event)
{
    Vgpu__Manual__IpcArgs a = VGPU__MANUAL__IPC_ARGS__INIT;

    if (!pHandle)
        return CUDA_ERROR_INVALID_VALUE;
    a.event = (uint64_t)(uintptr_t)event;
    return get_handle(ID(cuIpcGetEventHandle), "cuIpcGetEventHandle", &a, pHandle->reserved);
}

VGPU_EXPORT CUresult cuIpcOpenEventHandle(CUevent *phEvent, CUipcEventHandle handle)
{
    Vgpu__Manual__IpcArgs a = VGPU__MANUAL__IPC_ARGS__INIT;
    Vgpu__Manual__IpcRet *r = NULL;
    CUresult st;

    if (!phEvent)
        return CUDA_ERROR_INVALID_VALUE;
    a.handle.data = (uint8_t *)handle.reserved;
    a.handle.len = sizeof(handle.reserved);
    if ((st = ipc_call(ID(cuIpcOpenEventHandle), "cuIpcOpenEventHandle", &a, &r)) == CUDA_SUCCESS)
        *phEvent = (CUevent)(uintptr_t)r->event;
    if (r)
        vgpu__manual__ipc_ret__free_unpacked(r, NULL);
    return st;
}
