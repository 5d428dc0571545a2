/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Contexts for libcuda.so.1.  A context is current per thread: each
 * thread's current context, and the stack cuCtxPushCurrent builds, live
 * here; the client library sends the current one with every batch
 * (CallBatch.context) and the server makes it current, once it has checked
 * it is the session's, before the batch's calls run.  Creating and
 * destroying one goes to the server.
 */
#include <cuda.h>
#include <stdlib.h>

#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"

#define ID(name) VGPU_CUDA_ID_##name
#define CALL(name, msg, req, rep) vgpu_drv_call(ID(name), #name, &(msg).base, req, rep)

/* ---- contexts ---- */

#define CTX_STACK 32
static __thread uint64_t ctx_stack[CTX_STACK];
static __thread int ctx_depth;

VGPU_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = (CUcontext)(uintptr_t)vgpu_drv_context();
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
    /* the server checks the context is the session's when the next batch names it */
    vgpu_drv_set_context((uint64_t)(uintptr_t)ctx);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    if (!ctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (ctx_depth == CTX_STACK)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ctx_stack[ctx_depth++] = vgpu_drv_context();
    vgpu_drv_set_context((uint64_t)(uintptr_t)ctx);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuCtxPushCurrent(CUcontext ctx)
{
    return cuCtxPushCurrent_v2(ctx);
}

VGPU_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    uint64_t cur = vgpu_drv_context();

    if (!cur)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (pctx)
        *pctx = (CUcontext)(uintptr_t)cur;
    vgpu_drv_set_context(ctx_depth ? ctx_stack[--ctx_depth] : 0);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuCtxPopCurrent(CUcontext *pctx)
{
    return cuCtxPopCurrent_v2(pctx);
}

/* A new context is current on the calling thread (pushed, as the driver does). */
static CUresult ctx_create(CUcontext *pctx, unsigned flags, CUdevice dev)
{
    Vgpu__Manual__CtxArgs a = VGPU__MANUAL__CTX_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    a.flags = flags;
    a.device = dev;
    st = CALL(cuCtxCreate_v2, a, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__CtxRet *r = vgpu__manual__ctx_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (r && r->ctx) {
            if (ctx_depth < CTX_STACK && vgpu_drv_context())
                ctx_stack[ctx_depth++] = vgpu_drv_context();
            vgpu_drv_set_context(r->ctx);
            *pctx = (CUcontext)(uintptr_t)r->ctx;
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
        if (r)
            vgpu__manual__ctx_ret__free_unpacked(r, NULL);
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

VGPU_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return ctx_create(pctx, flags, dev);
}

VGPU_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
                                    CUdevice dev)
{
    if (params && (params->execAffinityParams || params->numExecAffinityParams ||
                   params->cigParams)) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cuCtxCreate: contexts with execution affinity or CIG "
                      "parameters are not supported by vgpu; pass NULL parameters");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return ctx_create(pctx, flags, dev);
}

VGPU_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    Vgpu__Manual__CtxArgs a = VGPU__MANUAL__CTX_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!ctx)
        return CUDA_ERROR_INVALID_VALUE;
    a.ctx = (uint64_t)(uintptr_t)ctx;
    req.flags = VGPU_FN_CTX_CHANGE;     /* the shim's answers about contexts are forgotten */
    st = CALL(cuCtxDestroy_v2, a, &req, &rep);
    vgpu_shim_rep_release(&rep);
    if (st == CUDA_SUCCESS)
        vgpu_drv_context_destroyed(a.ctx);
    /* destroyed while current here: the one below it on the stack is current again */
    if (st == CUDA_SUCCESS && vgpu_drv_context() == a.ctx)
        vgpu_drv_set_context(ctx_depth ? ctx_stack[--ctx_depth] : 0);
    return st;
}

VGPU_EXPORT CUresult cuCtxDestroy(CUcontext ctx)
{
    return cuCtxDestroy_v2(ctx);
}

