/* SPDX-License-Identifier: Apache-2.0 */
/* libcuda.so.1's internals: boundary.c and the hand-written calls (calls.c, procs.c). */
#ifndef VGPU_DRIVER_INTERNAL_H
#define VGPU_DRIVER_INTERNAL_H

#include <stdint.h>

#include "client/client.h"
#include "vgpu/callgen.h"

/* A client result (status >= 0, or -errno) as a CUresult. */
VGPU_HIDDEN int vgpu_drv_status(int rc);
/* Sends one hand-written call whose arguments are msg; a CUresult. */
VGPU_HIDDEN int vgpu_drv_call(uint32_t id, const char *name, const ProtobufCMessage *msg,
                              struct vgpu_call_req *req, struct vgpu_call_rep *rep);
/* The calling thread's current context (0: none), kept by the client library. */
VGPU_HIDDEN uint64_t vgpu_drv_context(void);
VGPU_HIDDEN void vgpu_drv_set_context(uint64_t ctx);
/* Context-local storage of a destroyed context: its destructors run (exports.c). */
VGPU_HIDDEN void vgpu_drv_context_destroyed(uint64_t ctx);

/* A row of the table cuGetProcAddress resolves from (generated from cudaTypedefs.h). */
struct vgpu_proc {
    const char *name;          /* base name, as programs ask for it */
    int version;               /* the CUDA version this signature dates from */
    int per_thread;            /* 1: the version from which its _ptds/_ptsz form exists */
};
extern const struct vgpu_proc vgpu_procs[];
extern const unsigned vgpu_nprocs;

#endif
