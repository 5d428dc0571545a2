/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CUDA boundary of libcudart.so.13: what the generated stubs and
 * manual/ call (vgpu/callgen.h, shim_internal.h), on top of the process's
 * client (client/client.h).  The client answers statuses of the server's
 * runtime, or a negative errno; this file maps the errno to a cudaError_t,
 * once, with this table (docs/shim.md):
 *
 *   -ENOMEM                     cudaErrorMemoryAllocation
 *   -E2BIG (too large a call)   cudaErrorInvalidValue
 *   -EMSGSIZE, -EPROTO          cudaErrorUnknown (a reply that could not come
 *                               back, or does not answer the call)
 *   -EOPNOTSUPP                 cudaErrorNotSupported (host callbacks without
 *                               the shared-memory queue pair)
 *   -EDEADLK                    cudaErrorNotPermitted (a CUDA call from a host
 *                               callback, client/callbacks.c)
 *   -ENOSPC                     cudaErrorMemoryAllocation (too many callbacks)
 *   any other (-ENOTCONN: no    cudaErrorNoDevice, with one line on stderr
 *   server, refused, lost)      that says what happened and what to do
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <string.h>

#include "client/client.h"
#include "cudart_calltable.h"
#include "shim_internal.h"

/* A client's result (status, or -errno) as the status the program sees. */
static int cuda_status(int rc)
{
    if (rc >= 0)
        return rc;
    switch (rc) {
    case -ENOMEM:
    case -ENOSPC:
        return cudaErrorMemoryAllocation;
    case -EOPNOTSUPP:
        return cudaErrorNotSupported;
    case -EDEADLK:
        return cudaErrorNotPermitted;
    case -E2BIG:
        return cudaErrorInvalidValue;
    case -EMSGSIZE:
    case -EPROTO:
        return cudaErrorUnknown;
    default:
        return cudaErrorNoDevice;
    }
}

int vgpu_shim_client_status(int rc)
{
    return vgpu_shim_status(cuda_status(rc));
}

int vgpu_shim_device(void)
{
    return vgpu_client_device(vgpu_client_get());
}

void vgpu_shim_set_device(int device)
{
    vgpu_client_set_device(vgpu_client_get(), device);
}

int vgpu_shim_status(int st)
{
    vgpu_client_set_error(vgpu_client_get(), st);
    return st;
}

int vgpu_shim_init_status(void)
{
    return vgpu_client_init_status(vgpu_client_get());
}

int vgpu_shim_take_last_error(bool clear)
{
    struct vgpu_client *c = vgpu_client_get();
    int e, init;

    /* the calls still queued may hold this thread's error: send them first */
    vgpu_client_settle(c);
    e = vgpu_client_last_error(c, false);
    /* A runtime that could not start keeps reporting it, as natively. */
    init = vgpu_client_init_status(c);
    if (init != cudaSuccess)
        return init;
    if (clear)
        vgpu_client_last_error(c, true);
    return cuda_status(e);
}

int vgpu_shim_invoke(struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    int rc;

    rc = vgpu_client_invoke(vgpu_client_get(), req, rep);
    /* the generated destroy calls: the object's kept resource descriptor goes (manual/array.c) */
    if (rc == cudaSuccess && (req->call_id == VGPU_CUDART_ID_cudaDestroyTextureObject ||
                              req->call_id == VGPU_CUDART_ID_cudaDestroySurfaceObject))
        vgpu_shim_object_destroyed(req);
    return cuda_status(rc);
}

void vgpu_shim_rep_release(struct vgpu_call_rep *rep)
{
    vgpu_client_rep_release(vgpu_client_get(), rep);
}

int vgpu_shim_call(uint32_t id, const char *name, const ProtobufCMessage *msg,
                   struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    struct vgpu_arena ar = { 0 };
    int st;

    req->call_id = id;
    req->name = name;
    if (vgpu_call_pack(&ar, msg, &req->args, &req->args_len))
        return vgpu_shim_status(cudaErrorMemoryAllocation);
    st = vgpu_shim_invoke(req, rep);
    vgpu_arena_free(&ar);
    req->args = NULL;
    return st;
}

int vgpu_shim_call_bytes(uint32_t id, const char *name, const ProtobufCMessage *msg, bool async,
                         const void *in, void *out, size_t bytes)
{
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    vgpu_shim_req_bytes(&req, in, out, bytes, async);
    st = vgpu_shim_call(id, name, msg, &req, &rep);
    vgpu_shim_rep_release(&rep);
    return st;
}

/* Which unsupported functions have said so (once each, for the process). */
static uint8_t unsupported_said[VGPU_CUDART_MAX_ID + 1];

int vgpu_shim_unsupported(uint32_t call_id, const char *name, const char *reason)
{
    if (call_id <= VGPU_CUDART_MAX_ID &&
        !__atomic_exchange_n(&unsupported_said[call_id], 1, __ATOMIC_RELAXED))
        vgpu_shim_log(VGPU_LOG_ERROR, "%s is not supported by vgpu (%s); it returns "
                      "cudaErrorNotSupported", name, reason);
    return vgpu_shim_status(cudaErrorNotSupported);
}

int vgpu_shim_bad_reply(const struct vgpu_call_req *req)
{
    vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply did not decode", req->name);
    return vgpu_shim_status(cudaErrorUnknown);
}

int vgpu_shim_local_error(const struct vgpu_call_req *req, int neg_errno)
{
    vgpu_shim_log(VGPU_LOG_INFO, "%s: %s", req->name, strerror(-neg_errno));
    return vgpu_shim_status(neg_errno == -ENOMEM ? cudaErrorMemoryAllocation : cudaErrorInvalidValue);
}

void vgpu_shim_connect(void)
{
    vgpu_client_connect(vgpu_client_get());
}

/*
 * Before a connection there is no table: cudaErrorNoDevice (what every call
 * then returns) still gets its name, without trying to connect.
 */
const char *vgpu_shim_error_name(int code)
{
    struct vgpu_client *c = vgpu_client_get();
    const char *s;

    if (code == cudaErrorNoDevice)
        return (s = vgpu_client_error_string(c, code, false, false)) ? s : "cudaErrorNoDevice";
    s = vgpu_client_error_string(c, code, false, true);
    return s ? s : "vgpu: unknown error (no vgpu-server to name it)";
}

const char *vgpu_shim_error_text(int code)
{
    struct vgpu_client *c = vgpu_client_get();
    const char *s;

    if (code == cudaErrorNoDevice)
        return (s = vgpu_client_error_string(c, code, true, false)) ? s :
               "no CUDA-capable device is detected (vgpu-server unreachable)";
    s = vgpu_client_error_string(c, code, true, true);
    return s ? s : "unknown error (vgpu-server unreachable)";
}

bool vgpu_shim_can_share(void)
{
    return vgpu_client_can_share(vgpu_client_get());
}

void *vgpu_shim_region_new(uint32_t id, size_t size)
{
    return vgpu_client_region_new(vgpu_client_get(), id, size);
}

void *vgpu_shim_region_new_mapped(uint32_t id, size_t size, uint64_t *devptr)
{
    return vgpu_client_region_new_mapped(vgpu_client_get(), id, size, devptr);
}

void *vgpu_shim_bar_region(uint32_t id, size_t *size)
{
    return vgpu_client_bar_region(vgpu_client_get(), id, size);
}

void vgpu_shim_region_free(uint32_t id, void *base, size_t size)
{
    vgpu_client_region_free(vgpu_client_get(), id, base, size);
}
