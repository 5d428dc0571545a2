/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Generic replay of one generated call: decode the guest's arguments with
 * the generated decoder (which checks every handle, address and count through
 * the session's ops), call the real function through libffi, encode the
 * outputs.  Nothing here knows which API it replays.
 */
#include <errno.h>
#include <ffi.h>

#include "server_internal.h"

int vgpu_replay_call(const struct vgpu_dispatch_entry *e, void (*fn)(void),
                     struct vgpu_replay *r, const uint8_t *args, size_t len, int *status)
{
    ffi_cif cif;
    int rc;

    *status = 0;
    if (e->state != VGPU_FN_GENERATED || !fn)
        return -ENOSYS;
    if (e->nargs > VGPU_CALL_MAX_ARGS)
        return -E2BIG;
    rc = e->decode(r, args, len);
    if (rc)
        return rc;
    /* Every segment the guest sent must belong to a parameter. */
    if (r->seg_used != r->nseg_in)
        return -EBADMSG;
    if (ffi_prep_cif(&cif, FFI_DEFAULT_ABI, e->nargs, (ffi_type *)e->rtype,
                     (ffi_type **)e->atypes) != FFI_OK)
        return -EINVAL;
    ffi_call(&cif, fn, &r->rv, r->av);
    if (e->flags & VGPU_FN_RET_STATUS)
        *status = (int)(ffi_sarg)r->rv;
    return e->encode(r);
}

void vgpu_replay_release(struct vgpu_replay *r)
{
    if (r->args_msg && !r->args_in_arena)
        protobuf_c_message_free_unpacked(r->args_msg, NULL);
    r->args_msg = NULL;
    r->args_in_arena = 0;
    vgpu_arena_free(&r->arena);
}
