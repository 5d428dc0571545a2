/* SPDX-License-Identifier: Apache-2.0 */
/* libcuda.so.1's internals, shared by the files of shim/driver/. */
#ifndef VGPU_DRIVER_INTERNAL_H
#define VGPU_DRIVER_INTERNAL_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>
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

/* The ToolsContext, ToolsModule and ClusterPrototype export tables (tools_tables.c). */
VGPU_HIDDEN extern void *const vgpu_drv_tools_context[100];
VGPU_HIDDEN extern void *const vgpu_drv_tools_module[100];
VGPU_HIDDEN extern void *const vgpu_drv_cluster_prototype[100];

/* ---- virtual memory and pools (vmm.c): the guest's structs as manual.proto's ---- */
struct Vgpu__Manual__MemProp;
struct Vgpu__Manual__MemLocation;
struct Vgpu__Manual__AccessDesc;
/* A pool's properties as MemProp (its location in *loc; the Windows pointer is not carried). */
VGPU_HIDDEN void vgpu_drv_pool_props_out(const CUmemPoolProps *p, struct Vgpu__Manual__MemProp *m,
                                         struct Vgpu__Manual__MemLocation *loc);
/* n access descriptors as d[i] (locations in loc[i]), dp[i] pointing at each. */
VGPU_HIDDEN void vgpu_drv_access_out(const CUmemAccessDesc *desc, size_t n,
                                     struct Vgpu__Manual__AccessDesc *d,
                                     struct Vgpu__Manual__AccessDesc **dp,
                                     struct Vgpu__Manual__MemLocation *loc);

/* ---- memory (memory.c) ---- */
/* The staging region of this library's data plane; its page-locked regions take the ids after it. */
#define VGPU_DRV_STAGING_REGION 0x80000001u
/* Is addr inside a device allocation (or module global) this library knows? */
VGPU_HIDDEN bool vgpu_drv_is_device(uint64_t addr);
VGPU_HIDDEN void vgpu_drv_device_add(uint64_t base, uint64_t size);
/* A graph allocation node's memory: a free leaves it in the table (each launch makes it again). */
VGPU_HIDDEN void vgpu_drv_device_add_graph(uint64_t base, uint64_t size);
/* Forgets the device ranges starting inside [base, base+size) (cuMemUnmap). */
VGPU_HIDDEN void vgpu_drv_device_remove_span(uint64_t base, uint64_t size);
/* The shared region [p, p+n) lies in, with its offset, or 0. */
VGPU_HIDDEN uint32_t vgpu_drv_host_region(const void *p, size_t n, uint64_t *off);
/* Whether p is in page-locked memory the program allocated or registered. */
VGPU_HIDDEN bool vgpu_drv_host_locked(const void *p);
/* fork(): the memory tables locked around it, and the child's regions dropped. */
VGPU_HIDDEN void vgpu_drv_memory_lock(void);
VGPU_HIDDEN void vgpu_drv_memory_unlock(void);
VGPU_HIDDEN void vgpu_drv_memory_forked(void);

/* ---- managed memory (managed.c, over the client's: client/managed.h) ---- */
/* [p, p+size) is managed memory: a device range here and a shadow in the client; a CUresult. */
VGPU_HIDDEN CUresult vgpu_drv_managed_add(const char *what, CUdeviceptr p, size_t size);
VGPU_HIDDEN void vgpu_drv_managed_remove(CUdeviceptr p);
/* Is [p, p+n) managed memory (n 0: p is)? */
VGPU_HIDDEN bool vgpu_drv_managed_holds(CUdeviceptr p, size_t n);
/* The device reads [p, p+n) (the host's dirty bytes go first); with write, writes it. */
VGPU_HIDDEN void vgpu_drv_managed_device_side(CUdeviceptr p, size_t n, bool write);
/* Managed memory's own move (copy.c): a raw copy on a stream of the server's; 0 or nonzero. */
VGPU_HIDDEN int vgpu_drv_copy_raw(void *host, uint64_t dev, size_t n, bool to_device);

/* ---- launches (launch.c) ---- */
/*
 * A kernel's parameters as the bytes the server lays out (kernelParams
 * packed by the function's layout, or extra's buffer as is): *buf is small
 * (of small_size bytes), *heap (malloc'ed, the caller frees it) or extra's
 * own; a CUresult.
 */
struct CUfunc_st;
VGPU_HIDDEN int vgpu_drv_kernel_params(struct CUfunc_st *f, void **params, void **extra,
                                       uint8_t *small, size_t small_size, uint8_t **heap,
                                       const void **buf, size_t *len);
/* Forgets every kernel layout kept (their function handles may be reused). */
VGPU_HIDDEN void vgpu_drv_forget_layouts(void);

/* A row of the table cuGetProcAddress resolves from (generated from cudaTypedefs.h). */
struct vgpu_proc {
    const char *name;          /* base name, as programs ask for it */
    int version;               /* the CUDA version this signature dates from */
    int per_thread;            /* 1: the version from which its _ptds/_ptsz form exists */
};
extern const struct vgpu_proc vgpu_procs[];
extern const unsigned vgpu_nprocs;

#endif
