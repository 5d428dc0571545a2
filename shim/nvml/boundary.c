/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libnvidia-ml.so.1's edge with the client library: what the generated
 * stubs call (vgpu_shim_invoke and friends, in this library's own hidden
 * copy), each client failure told as an nvmlReturn_t once, here.  NVML
 * calls are never queued and never collect the CUDA calls' queued failures:
 * those stay owed to the CUDA calls of their threads.
 */
#include <errno.h>
#include <string.h>

#include "client/client.h"
#include "nvml_api.h"
#include "nvml_calltable.h"
#include "nvml_internal.h"

int vgpu_nvml_status(int rc)
{
    if (rc >= 0)
        return rc;
    switch (rc) {
    case -ENOMEM:
        return NVML_ERROR_MEMORY;
    case -E2BIG:
        return NVML_ERROR_INVALID_ARGUMENT;
    case -EMSGSIZE:
    case -EPROTO:
        return NVML_ERROR_UNKNOWN;
    case -EOPNOTSUPP:                     /* a call this server serves otherwise (another release) */
        return NVML_ERROR_NOT_SUPPORTED;
    default:
        return NVML_ERROR_DRIVER_NOT_LOADED;  /* no server: as a host without the driver */
    }
}

int vgpu_shim_invoke(struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    return vgpu_nvml_status(vgpu_client_invoke(vgpu_client_get(), req, rep));
}

void vgpu_shim_rep_release(struct vgpu_call_rep *rep)
{
    vgpu_client_rep_release(vgpu_client_get(), rep);
}

int vgpu_nvml_call(uint32_t id, const char *name, const ProtobufCMessage *msg,
                   struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    struct vgpu_arena ar = { 0 };
    int st;

    req->call_id = id;
    req->name = name;
    if (vgpu_call_pack(&ar, msg, &req->args, &req->args_len))
        return NVML_ERROR_MEMORY;
    st = vgpu_shim_invoke(req, rep);
    vgpu_arena_free(&ar);
    req->args = NULL;
    return st;
}

/* Which unsupported functions have said so (once each, for the process). */
static uint8_t unsupported_said[VGPU_NVML_MAX_ID - VGPU_NVML_ID_BASE + 1];

/*
 * NVML_ERROR_NOT_SUPPORTED is an ordinary NVML answer (tools such as
 * nvidia-smi ask for everything and print "N/A"), so it is logged at info
 * level only.  Functions that would change the GPU (their reason starts
 * with "refused") answer NVML_ERROR_NO_PERMISSION, as to an unprivileged user.
 */
int vgpu_shim_unsupported(uint32_t call_id, const char *name, const char *reason)
{
    bool refused = !strncmp(reason, "refused", 7);

    if (call_id >= VGPU_NVML_ID_BASE && call_id <= VGPU_NVML_MAX_ID &&
        !__atomic_exchange_n(&unsupported_said[call_id - VGPU_NVML_ID_BASE], 1, __ATOMIC_RELAXED))
        vgpu_shim_log(VGPU_LOG_INFO, "%s: %s; it returns %s", name, reason,
                      refused ? "NVML_ERROR_NO_PERMISSION" : "NVML_ERROR_NOT_SUPPORTED");
    return refused ? NVML_ERROR_NO_PERMISSION : NVML_ERROR_NOT_SUPPORTED;
}

int vgpu_shim_bad_reply(const struct vgpu_call_req *req)
{
    vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply did not decode", req->name);
    return NVML_ERROR_UNKNOWN;
}

int vgpu_shim_local_error(const struct vgpu_call_req *req, int neg_errno)
{
    vgpu_shim_log(VGPU_LOG_INFO, "%s: %s", req->name, strerror(-neg_errno));
    return neg_errno == -ENOMEM ? NVML_ERROR_MEMORY : NVML_ERROR_INVALID_ARGUMENT;
}
