/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Managed memory (cudaMallocManaged, cuMemAllocManaged, __managed__
 * variables) for every library of the process: one set of shadows, one
 * SIGSEGV handler, one before-work hook and one record of advice, kept by
 * the copy of the client library that made the process's client
 * (managed.c, advice.c) and reached through its ops, so a program that
 * uses both libcudart.so.13 and libcuda.so.1 sees one managed memory.
 *
 * What the calls mean stays with each library: it checks its API's
 * arguments, then tells the client which ranges are managed, which bytes
 * the device reads or writes, and what was advised.  Each range carries
 * the move function of the library that added it (that library is then
 * kept loaded), so the client's pushes and fetches never depend on which
 * API the range came from.
 */
#ifndef VGPU_CLIENT_MANAGED_H
#define VGPU_CLIENT_MANAGED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"

/*
 * Copies n bytes of managed memory at device address dev: to_device, from
 * host to the device; else from the device into host.  Never through the
 * managed-memory handling (a raw copy), on a stream of the server's; 0, or
 * nonzero when the bytes did not move.
 */
typedef int (*vgpu_managed_move)(void *host, uint64_t dev, size_t n, bool to_device);

/*
 * add: maps a shadow of [p, p+size) at p, all of it the device's (invalid):
 *   0, -EINVAL, -ENOMEM, -EEXIST (the address is taken in this process) or
 *   -EOPNOTSUPP (an older copy's client).
 * remove: drops the range that starts at p, its shadow and its advice
 *   (*size, when not NULL, gets its size): false when there is none.
 * device_side: the device reads [p, p+n) (its dirty chunks go first), and
 *   with write writes it (its chunks are the device's after).
 * holds: is [p, p+n) inside one managed range?
 */
int vgpu_client_managed_add(struct vgpu_client *c, void *p, size_t size, vgpu_managed_move move);
bool vgpu_client_managed_remove(struct vgpu_client *c, void *p, size_t *size);
void vgpu_client_managed_device_side(struct vgpu_client *c, const void *p, size_t n, bool write);
bool vgpu_client_managed_holds(struct vgpu_client *c, const void *p, size_t n);

/*
 * What the program advised and prefetched (advice.c), per page, for the
 * range queries.  The values are those of both APIs, which agree
 * (cudaMemLocationType and CUmemLocationType, cudaMemoryAdvise and
 * CUmem_advise, cudaMemRangeAttribute and CUmem_range_attribute; each
 * library asserts so): locations, advice and attributes as below.
 */
struct vgpu_mem_loc {
    int type;                  /* VGPU_LOC_* */
    int id;
};
enum {
    VGPU_LOC_INVALID = 0, VGPU_LOC_DEVICE = 1, VGPU_LOC_HOST = 2, VGPU_LOC_HOST_NUMA = 3,
    VGPU_LOC_HOST_NUMA_CURRENT = 4,
};
enum {
    VGPU_ADVISE_SET_READ_MOSTLY = 1, VGPU_ADVISE_UNSET_READ_MOSTLY = 2,
    VGPU_ADVISE_SET_PREFERRED = 3, VGPU_ADVISE_UNSET_PREFERRED = 4,
    VGPU_ADVISE_SET_ACCESSED_BY = 5, VGPU_ADVISE_UNSET_ACCESSED_BY = 6,
};
enum {
    VGPU_RANGE_READ_MOSTLY = 1, VGPU_RANGE_PREFERRED = 2, VGPU_RANGE_ACCESSED_BY = 3,
    VGPU_RANGE_LAST_PREFETCH = 4, VGPU_RANGE_PREFERRED_TYPE = 5, VGPU_RANGE_PREFERRED_ID = 6,
    VGPU_RANGE_LAST_PREFETCH_TYPE = 7, VGPU_RANGE_LAST_PREFETCH_ID = 8,
};
#define VGPU_CPU_DEVICE (-1)         /* cudaCpuDeviceId, CU_DEVICE_CPU */
#define VGPU_INVALID_DEVICE (-2)     /* cudaInvalidDeviceId, CU_DEVICE_INVALID */
#define VGPU_RANGE_EINVAL 1          /* cudaErrorInvalidValue, CUDA_ERROR_INVALID_VALUE */

/*
 * advise, prefetched: recorded after the library's checks; 0, or -errno
 * (nothing recorded).  range_attrs: n attributes of [p, p+count), which
 * must be managed memory, into data[i] (sizes[i] bytes each): 0 or
 * VGPU_RANGE_EINVAL.
 */
int vgpu_client_managed_advise(struct vgpu_client *c, const void *p, size_t n, int advice,
                               struct vgpu_mem_loc loc);
int vgpu_client_managed_prefetched(struct vgpu_client *c, const void *p, size_t n,
                                   struct vgpu_mem_loc loc);
int vgpu_client_managed_range_attrs(struct vgpu_client *c, void **data, const size_t *sizes,
                                    const int *attrs, size_t n, const void *p, size_t count);

/* ---- the ops of a client made by this copy (instance.c's table) ---- */
int vgpu_managed_local_add(struct vgpu_client *c, void *p, size_t size, vgpu_managed_move move);
bool vgpu_managed_local_remove(struct vgpu_client *c, void *p, size_t *size);
void vgpu_managed_local_device_side(struct vgpu_client *c, const void *p, size_t n, bool write);
bool vgpu_managed_local_holds(struct vgpu_client *c, const void *p, size_t n);
/* This thread is inside the code of managed.c (its lock held: its moves are calls of ours). */
bool vgpu_managed_local_busy(void);
int vgpu_managed_local_advise(struct vgpu_client *c, const void *p, size_t n, int advice,
                              struct vgpu_mem_loc loc);
int vgpu_managed_local_prefetched(struct vgpu_client *c, const void *p, size_t n,
                                  struct vgpu_mem_loc loc);
int vgpu_managed_local_range_attrs(struct vgpu_client *c, void **data, const size_t *sizes,
                                   const int *attrs, size_t n, const void *p, size_t count);
/* advice.c, for managed.c: forgets what was recorded about [p, p+n). */
void vgpu_advice_forget(const void *p, size_t n);
/* Is this thread inside a call of this copy's client (instance.c counts it)? */
extern __thread int vgpu_client_in_call;

#endif
