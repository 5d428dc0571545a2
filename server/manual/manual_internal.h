/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the server's hand-written CUDA runtime handlers (server/manual/)
 * share: unpacking a call's arguments into its arena, packing its result,
 * the session's stream and kernel look-ups, and each handler, so that the
 * table in cudart_manual.c can name them.  Internal to server/manual/.
 */
#ifndef VGPU_MANUAL_INTERNAL_H
#define VGPU_MANUAL_INTERNAL_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdint.h>

#include "cudart_calltable.h"
#include "manual.pb-c.h"
#include "server_internal.h"

/*
 * vmm.c: a guest's CUmemLocation (device memory only), its n access
 * descriptors (each one there), a memory pool's properties (the location's
 * rule): each a CUresult.
 */
#include <cuda.h>
int vgpu_vmm_location_in(const Vgpu__Manual__MemLocation *m, CUmemLocation *loc);
int vgpu_vmm_access_descs_in(Vgpu__Manual__AccessDesc *const *acc, size_t n,
                             CUmemAccessDesc *desc);
int vgpu_vmm_pool_props_in(const Vgpu__Manual__MemProp *m, CUmemPoolProps *p);

/* The arguments, unpacked into the call's arena (no malloc per call). */
#define UNPACK(type, fn, c)                                                   \
    ProtobufCAllocator unpack_alloc_ = { vgpu_arena_pb_alloc, vgpu_arena_pb_keep, (c)->arena }; \
    type *a = vgpu__manual__##fn##__unpack(&unpack_alloc_, (c)->args_len, (c)->args); \
    if (!a)                                                                   \
        return cudaErrorInvalidValue

/* Packs a result message into the call's arena. */
static inline int reply(struct vgpu_manual_call *c, const ProtobufCMessage *m)
{
    return vgpu_call_pack(c->arena, m, &c->ret, &c->ret_len) ? cudaErrorMemoryAllocation : 0;
}

/* The null, legacy and per-thread streams (0, 1, 2), or one the session created. */
static inline bool stream_ok(struct vgpu_session *s, uint64_t stream)
{
    return stream == 0 || stream == 1 || stream == 2 ||
           vgpu_handle_known(s, VGPU_CUDART_H_STREAM, stream);
}

/* The kernel (not a variable) the guest registered at host address host, or NULL. */
static inline struct vgpu_hostfn *kernel_of(struct vgpu_session *s, uint64_t host)
{
    struct vgpu_hostfn *fn = vgpu_hostfn_find(s, host);

    return fn && !fn->is_var ? fn : NULL;
}

/*
 * The handlers: each takes the call's arguments from c and leaves its
 * result there, in c's arena; the return value is the call's cudaError_t.
 * vgpu_manual_symbol() and vgpu_manual_func() serve several call ids, told
 * apart by id.
 */
/*
 * register.c: fatbins (and their on-disk cache), functions, variables.  The
 * cache holds images by their SHA-256 (cache_load checks it): a malloc'ed
 * copy, or NULL.
 */
uint8_t *vgpu_image_cache_load(struct vgpu_session *s, const uint8_t *sha, size_t size);
void vgpu_image_cache_store(struct vgpu_session *s, const uint8_t *sha, const uint8_t *img, size_t size);
int vgpu_manual_fatbin(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_register(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_fatbin_end(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_init_module(struct vgpu_session *s, struct vgpu_manual_call *c);
/* copy.c: its own stream for managed memory is gone (a device reset). */
void vgpu_copy_forget_stream(void);
int vgpu_manual_func_by_symbol(struct vgpu_session *s, struct vgpu_manual_call *c);
/* array.c: CUDA arrays, their copies, texture and surface objects. */
int vgpu_manual_malloc_array(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_free_array(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_malloc_3d_array(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_malloc_mipmapped(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_mipmapped_level(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_free_mipmapped(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_array_copy(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_array_to_array(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_texture(struct vgpu_session *s, struct vgpu_manual_call *c);
/* launch.c: a kernel's parameter layout, launches */
int vgpu_manual_param_info(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_launch(struct vgpu_session *s, struct vgpu_manual_call *c);
/* memory.c: device allocations */
int vgpu_manual_malloc(struct vgpu_session *s, struct vgpu_manual_call *c);
/*
 * A module's or library's variable at p, bytes long, found by the driver for
 * this call: entered as the session's memory (once) and answered as
 * GlobalRet.  A CUresult (driver.c).
 */
int vgpu_drv_global_reply(struct vgpu_session *s, struct vgpu_manual_call *c, uint64_t p,
                          uint64_t bytes);
/* drv_managed.c: cuMemAllocManaged and cuLibraryGetManaged's handlers, or NULL for another id. */
vgpu_manual_fn vgpu_drv_managed_manual_find(uint32_t id);
int vgpu_manual_free(struct vgpu_session *s, struct vgpu_manual_call *c);
/* copy.c: copies, through the frame or a shared region */
int vgpu_manual_copy(struct vgpu_session *s, struct vgpu_manual_call *c);
/* symbol.c: variables' addresses, sizes and copies */
int vgpu_manual_symbol(struct vgpu_session *s, struct vgpu_manual_call *c, uint32_t id);
/* func.c: function attributes and occupancy */
int vgpu_manual_func(struct vgpu_session *s, struct vgpu_manual_call *c, uint32_t id);
/* device.c: device selection and reset, pointer attributes */
int vgpu_manual_set_device(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_device_reset(struct vgpu_session *s, struct vgpu_manual_call *c);
int vgpu_manual_pointer(struct vgpu_session *s, struct vgpu_manual_call *c);

#endif
