/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Generic replay of one generated call: decode the guest's arguments with
 * the generated decoder (which checks every handle, address and count through
 * the session's ops), call the real function through libffi, encode the
 * outputs.  Nothing here knows which API it replays.
 */
#include <errno.h>
#include <ffi.h>
#include <stdint.h>

#include "server_internal.h"

/*
 * The call interface of each function, prepared once (a session is a
 * process; its dispatch table never changes): by entry, in a small table.
 */
#define CIF_SLOTS 1024

static ffi_cif *cif_of(const struct vgpu_dispatch_entry *e)
{
    static struct { const struct vgpu_dispatch_entry *e; ffi_cif cif; } slot[CIF_SLOTS];
    size_t i = ((uintptr_t)e / sizeof(*e)) % CIF_SLOTS;
    static ffi_cif scratch;

    if (slot[i].e == e)
        return &slot[i].cif;
    if (ffi_prep_cif(&scratch, FFI_DEFAULT_ABI, e->nargs, (ffi_type *)e->rtype,
                     (ffi_type **)e->atypes) != FFI_OK)
        return NULL;
    slot[i].cif = scratch;
    slot[i].e = e;
    return &slot[i].cif;
}

int vgpu_replay_call(const struct vgpu_dispatch_entry *e, void (*fn)(void),
                     struct vgpu_replay *r, const uint8_t *args, size_t len, int *status)
{
    ffi_cif *cif;
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
    cif = cif_of(e);
    if (!cif)
        return -EINVAL;
    ffi_call(cif, fn, &r->rv, r->av);
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
