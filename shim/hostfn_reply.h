/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What both guest libraries do with the server's answer to a host callback
 * (shim/manual/hostfn.c, shim/driver/hostfn.c): the entry is kept while
 * the call is on its way (into a capturing stream the server makes it a
 * graph's host node, which another thread could launch before this one
 * reads the reply); when the reply (HostFnRet) says it was not captured,
 * it goes back to one run.
 */
#ifndef VGPU_SHIM_HOSTFN_REPLY_H
#define VGPU_SHIM_HOSTFN_REPLY_H

#include "client/client.h"
#include "manual.pb-c.h"
#include "vgpu/callgen.h"

static inline void vgpu_hostfn_reply_kept(struct vgpu_client *c, uint64_t id,
                                          const struct vgpu_call_rep *rep)
{
    Vgpu__Manual__HostFnRet *r = vgpu__manual__host_fn_ret__unpack(NULL, rep->ret_len, rep->ret);

    if (!r || !r->kept)
        vgpu_client_callback_keep(c, id, VGPU_CB_ONCE, NULL);
    if (r)
        vgpu__manual__host_fn_ret__free_unpacked(r, NULL);
}

#endif
