/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim's internals: what the generated stubs and manual/ call
 * (boundary.c, on top of the client library in client/), and what manual/
 * shares across its files.
 */
#ifndef VGPU_SHIM_INTERNAL_H
#define VGPU_SHIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <cuda.h>
#include <driver_types.h>
#include <vector_types.h>

#include "client/client.h"
#include "dataplane.h"
#include "vgpu/callgen.h"

/*
 * ---- host memory shared with the server (boundary.c, client/regions.c) ----
 * Over a unix socket the shim can hand the server a memfd: the server maps
 * it and pins it, and copies name it instead of carrying bytes.
 */
VGPU_HIDDEN bool vgpu_shim_can_share(void);
/* A sealed memfd of size bytes mapped here, registered as region id: its address, or NULL. */
VGPU_HIDDEN void *vgpu_shim_region_new(uint32_t id, size_t size);
/* The same for mapped (zero-copy) memory; *devptr: where kernels reach it. */
VGPU_HIDDEN void *vgpu_shim_region_new_mapped(uint32_t id, size_t size, uint64_t *devptr);
/* In a guest: a slot of the device's shared BAR, registered as region id; its address, or NULL. */
VGPU_HIDDEN void *vgpu_shim_bar_region(uint32_t id, size_t *size);
/* Unregisters and unmaps region id at base. */
VGPU_HIDDEN void vgpu_shim_region_free(uint32_t id, void *base, size_t size);

/* Logging (vgpu_shim_log, VGPU_LOG_*) is the client's: client/client.h. */

/* ---- per-thread state ---- */
VGPU_HIDDEN int vgpu_shim_device(void);
VGPU_HIDDEN void vgpu_shim_set_device(int device);
/* Records a non-success status as the thread's last error; returns st. */
VGPU_HIDDEN int vgpu_shim_status(int st);
/* cudaSuccess, or the status the server's runtime failed to start with. */
VGPU_HIDDEN int vgpu_shim_init_status(void);
VGPU_HIDDEN int vgpu_shim_take_last_error(bool clear);

/* A client result (status, or -errno) as a cudaError_t, recorded as the thread's last error. */
VGPU_HIDDEN int vgpu_shim_client_status(int rc);

/* Sends one manual call whose args are msg; see vgpu_shim_invoke(). */
VGPU_HIDDEN int vgpu_shim_call(uint32_t id, const char *name, const ProtobufCMessage *msg,
                               struct vgpu_call_req *req, struct vgpu_call_rep *rep);

/*
 * The same for a call whose bytes go as segment 0 (in) or come back into
 * out (bytes of them), and whose reply carries nothing else; async: it may
 * be queued (in only).
 */
VGPU_HIDDEN int vgpu_shim_call_bytes(uint32_t id, const char *name, const ProtobufCMessage *msg,
                                     bool async, const void *in, void *out, size_t bytes);

/* Connects now if no call has yet (so the runtime's start status is known). */
VGPU_HIDDEN void vgpu_shim_connect(void);

/* Error names and texts, from the server (fetched once). */
VGPU_HIDDEN const char *vgpu_shim_error_name(int code);
VGPU_HIDDEN const char *vgpu_shim_error_text(int code);

/* ---- what the shim knows about memory (manual/memory.c) ---- */
VGPU_HIDDEN bool vgpu_shim_is_device(const void *p);
VGPU_HIDDEN void vgpu_shim_device_range_add(const void *p, size_t size);
/* The same for a graph allocation node's memory, which a free leaves in the table. */
VGPU_HIDDEN void vgpu_shim_device_range_add_graph(const void *p, size_t size);
VGPU_HIDDEN void vgpu_shim_device_range_drop(const void *p);
/* The shared region the host range [p, p+n) lies in, with its offset, or 0. */
VGPU_HIDDEN uint32_t vgpu_shim_host_region(const void *p, size_t n, uint64_t *off);
/* Whether p is in page-locked memory the program allocated or registered. */
VGPU_HIDDEN bool vgpu_shim_host_locked(const void *p);
/* fork(): memory.c's lock, taken after copy.c's; in the child, shared buffers made private. */
VGPU_HIDDEN void vgpu_shim_memory_lock(void);
VGPU_HIDDEN void vgpu_shim_memory_unlock(void);
VGPU_HIDDEN void vgpu_shim_memory_forked(void);
/* The region id of the staging region (copy.c); page-locked buffers take the ids after it. */
#define VGPU_SHIM_STAGING_REGION 1u

/*
 * ---- managed memory (manual/managed.c, over the client's: client/managed.h) ----
 * vgpu_managed_add() maps a shadow of [p, p+size) at p (0, or -errno);
 * vgpu_managed_remove() drops the range starting at p (false: none);
 * copies and memsets say which managed bytes the device reads or writes;
 * vgpu_managed_holds() says whether [p, p+n) is managed memory.  The
 * client sends what the host wrote before any work of either library.
 */
VGPU_HIDDEN int vgpu_managed_add(void *p, size_t size);
VGPU_HIDDEN bool vgpu_managed_remove(void *p);
VGPU_HIDDEN void vgpu_managed_device_reads(const void *p, size_t n);
VGPU_HIDDEN void vgpu_managed_device_writes(const void *p, size_t n);
VGPU_HIDDEN bool vgpu_managed_holds(const void *p, size_t n);
/*
 * What the program advised and prefetched, per page of managed memory
 * (manual/advice.c, over the client's record, for cudaMemRangeGetAttribute):
 * recorded after the call's checks (0, or -errno: nothing recorded),
 * forgotten by the client when the range is removed.
 */
VGPU_HIDDEN int vgpu_advice_set(const void *p, size_t n, enum cudaMemoryAdvise advice,
                                struct cudaMemLocation loc);
VGPU_HIDDEN int vgpu_advice_prefetched(const void *p, size_t n, struct cudaMemLocation loc);
/* A 1D copy as copy.c makes it, without managed memory's handling (managed.c's own moves). */
VGPU_HIDDEN int vgpu_shim_copy_raw(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind);

/*
 * A cudaKernel_t this process got from a library (manual/library.c), and
 * its launch through cudaLaunchKernel (the driver's, with the same checks).
 */
VGPU_HIDDEN bool vgpu_shim_library_kernel(const void *func);
VGPU_HIDDEN cudaError_t vgpu_shim_launch_library_kernel(const void *func, dim3 grid, dim3 block,
                                                        void **args, size_t shmem,
                                                        cudaStream_t stream, bool ptsz);
/*
 * What a launch or kernel node names (library.c): a host stub's
 * cudaFunction_t, or a kernel or function handle as it is; a status.
 */
VGPU_HIDDEN cudaError_t vgpu_shim_function_of(const void *func, CUfunction *f);
/* Is p a kernel's host stub this program registered; a cudaFunction_t it was given (launch.c)? */
VGPU_HIDDEN bool vgpu_shim_is_stub(const void *p);
VGPU_HIDDEN bool vgpu_shim_is_function(const void *p);
/* The host stub of the kernel whose cudaFunction_t is function (launch.c), or NULL. */
VGPU_HIDDEN const void *vgpu_shim_stub_of_function(uint64_t function);

/* A registered symbol's key (manual/launch.c): 0, or a CUDA status. */
VGPU_HIDDEN int vgpu_shim_symbol(const void *symbol, uint64_t *key);

/*
 * ---- arrays, texture and surface objects (manual/array.c) ----
 * A 3D copy with an array on both sides (copy3d.c): a status.  A texture
 * or surface object's destroy call succeeded (req: the generated stub's);
 * a device was reset: the resource descriptors kept for reading back go.
 */
VGPU_HIDDEN int vgpu_shim_copy3d_arrays(const struct cudaMemcpy3DParms *p, cudaStream_t stream,
                                        bool async);
VGPU_HIDDEN void vgpu_shim_object_destroyed(const struct vgpu_call_req *req);
VGPU_HIDDEN void vgpu_shim_objects_reset(int device);


#endif
