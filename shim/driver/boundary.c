/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcuda.so.1's edge with the client library: what the generated stubs
 * call (vgpu_shim_invoke and friends, in this library's own hidden copy),
 * each client failure told as a CUresult once, here.  The driver has no
 * "last error": a failure of a call the client queued (launches, async
 * copies, memsets) is returned by the thread's next call that waits for the
 * server, as the driver reports asynchronous errors at a later call.
 */
#include <cuda.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "client/client.h"
#include "cuda_calltable.h"
#include "driver_internal.h"

int vgpu_drv_status(int rc)
{
    if (rc >= 0)
        return rc;
    switch (rc) {
    case -ENOMEM:
    case -ENOSPC:                         /* too many host callbacks waiting */
        return CUDA_ERROR_OUT_OF_MEMORY;
    case -EOPNOTSUPP:                     /* host callbacks without the queue pair */
        return CUDA_ERROR_NOT_SUPPORTED;
    case -EDEADLK:                        /* a CUDA call from a host callback */
        return CUDA_ERROR_NOT_PERMITTED;
    case -E2BIG:
        return CUDA_ERROR_INVALID_VALUE;
    case -EMSGSIZE:
    case -EPROTO:
        return CUDA_ERROR_UNKNOWN;
    default:
        return CUDA_ERROR_NO_DEVICE;      /* no server: as a host without a GPU */
    }
}

/*
 * Calls after which function handles may be reused for other functions:
 * the launch layouts kept for them are forgotten (launch.c).
 */
static bool frees_functions(uint32_t id)
{
    switch (id) {
    case VGPU_CUDA_ID_cuModuleUnload:
    case VGPU_CUDA_ID_cuLibraryUnload:
    case VGPU_CUDA_ID_cuCtxDestroy:
    case VGPU_CUDA_ID_cuCtxDestroy_v2:
    case VGPU_CUDA_ID_cuDevicePrimaryCtxReset:
    case VGPU_CUDA_ID_cuDevicePrimaryCtxReset_v2:
        return true;
    default:
        return false;
    }
}

int vgpu_shim_invoke(struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    struct vgpu_client *c = vgpu_client_get();
    int st = vgpu_drv_status(vgpu_client_invoke(c, req, rep));
    int owed;

    if (st == CUDA_SUCCESS && frees_functions(req->call_id))
        vgpu_drv_forget_layouts();

    if (req->flags & VGPU_FN_ASYNC)
        return st;
    /* a queued call's failure comes back with the next call that waited */
    owed = vgpu_client_take_owed(c);
    return st == CUDA_SUCCESS && owed ? vgpu_drv_status(owed) : st;
}

void vgpu_shim_rep_release(struct vgpu_call_rep *rep)
{
    vgpu_client_rep_release(vgpu_client_get(), rep);
}

int vgpu_drv_call(uint32_t id, const char *name, const ProtobufCMessage *msg,
                  struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    struct vgpu_arena ar = { 0 };
    int st;

    req->call_id = id;
    req->name = name;
    if (vgpu_call_pack(&ar, msg, &req->args, &req->args_len))
        return CUDA_ERROR_OUT_OF_MEMORY;
    st = vgpu_shim_invoke(req, rep);
    vgpu_arena_free(&ar);
    req->args = NULL;
    return st;
}

/* Which unsupported functions have said so (once each, for the process). */
static uint8_t unsupported_said[VGPU_CUDA_MAX_ID - VGPU_CUDA_ID_BASE + 1];

int vgpu_shim_unsupported(uint32_t call_id, const char *name, const char *reason)
{
    if (call_id >= VGPU_CUDA_ID_BASE && call_id <= VGPU_CUDA_MAX_ID &&
        !__atomic_exchange_n(&unsupported_said[call_id - VGPU_CUDA_ID_BASE], 1, __ATOMIC_RELAXED))
        vgpu_shim_log(VGPU_LOG_ERROR, "%s is not supported by vgpu (%s); it returns "
                      "CUDA_ERROR_NOT_SUPPORTED", name, reason);
    return CUDA_ERROR_NOT_SUPPORTED;
}

int vgpu_shim_bad_reply(const struct vgpu_call_req *req)
{
    vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply did not decode", req->name);
    return CUDA_ERROR_UNKNOWN;
}

int vgpu_shim_local_error(const struct vgpu_call_req *req, int neg_errno)
{
    vgpu_shim_log(VGPU_LOG_INFO, "%s: %s", req->name, strerror(-neg_errno));
    return neg_errno == -ENOMEM ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_VALUE;
}

uint64_t vgpu_drv_context(void)
{
    return vgpu_client_context(vgpu_client_get());
}

void vgpu_drv_set_context(uint64_t ctx)
{
    vgpu_client_set_context(vgpu_client_get(), ctx);
}
