/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Managed memory (cudaMallocManaged, __managed__ variables) for
 * libcudart.so.13.  The shadows that keep the host's side of it live in
 * the client library (client/managed.c, whose header says how), one set
 * per process for both guest libraries; here are the runtime's side: its
 * ranges handed to the client with this library's raw copy as their move,
 * and the runtime's calls about managed memory (advice, prefetches and
 * their batches, discards, stream attachment), checked here and taken;
 * what the advice and prefetches asked for is recorded by the client
 * (client/advice.c), which answers cudaMemRangeGetAttribute(s)
 * (advice.c).
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../shim_internal.h"
#include "client/managed.h"
#include "cudart_calltable.h"

/* A range's move (client/managed.h): a copy that skips managed memory's own handling. */
static int move(void *host, uint64_t dev, size_t n, bool to_device)
{
    void *d = (void *)(uintptr_t)dev;

    return to_device ? vgpu_shim_copy_raw(d, host, n, cudaMemcpyHostToDevice)
                     : vgpu_shim_copy_raw(host, d, n, cudaMemcpyDeviceToHost);
}

int vgpu_managed_add(void *p, size_t size)
{
    int rc = vgpu_client_managed_add(vgpu_client_get(), p, size, move);

    if (rc == 0)
        vgpu_shim_device_range_add(p, size);   /* cudaMemcpyDefault: a device address */
    return rc;
}

bool vgpu_managed_remove(void *p)
{
    return vgpu_client_managed_remove(vgpu_client_get(), p, NULL);
}

void vgpu_managed_device_reads(const void *p, size_t n)
{
    vgpu_client_managed_device_side(vgpu_client_get(), p, n, false);
}

void vgpu_managed_device_writes(const void *p, size_t n)
{
    vgpu_client_managed_device_side(vgpu_client_get(), p, n, true);
}

bool vgpu_managed_holds(const void *p, size_t n)
{
    return vgpu_client_managed_holds(vgpu_client_get(), p, n);
}

/* ---- the runtime's managed-memory calls ---- */

/* Checks that [p, p+count) is managed memory of this program (count 0: p is). */
static int managed_arg(const void *p, size_t count)
{
    if (!p || !vgpu_managed_holds(p, count ? count : 1))
        return vgpu_shim_status(cudaErrorInvalidValue);
    return cudaSuccess;
}

/*
 * A location a prefetch or an advice may name: a device of this process's
 * (else cudaErrorInvalidDevice, or for an advice cudaErrorInvalidValue, as
 * the driver answers cuMemAdvise), the host, and with numa a host NUMA node
 * or the current one; a status.
 */
static int location_ok(struct cudaMemLocation l, bool numa, bool advice)
{
    int n = 0, st;

    switch (l.type) {
    case cudaMemLocationTypeDevice:
        if ((st = cudaGetDeviceCount(&n)) != cudaSuccess)
            return st;
        if (l.id >= 0 && l.id < n)
            return cudaSuccess;
        return vgpu_shim_status(advice ? cudaErrorInvalidValue : cudaErrorInvalidDevice);
    case cudaMemLocationTypeHost:
        return cudaSuccess;
    case cudaMemLocationTypeHostNuma:
        return numa && l.id >= 0 ? cudaSuccess : vgpu_shim_status(cudaErrorInvalidValue);
    case cudaMemLocationTypeHostNumaCurrent:
        return numa ? cudaSuccess : vgpu_shim_status(cudaErrorInvalidValue);
    default:
        return vgpu_shim_status(cudaErrorInvalidValue);
    }
}

/*
 * A checked prefetch: to the device, what the host wrote goes now; to the
 * host, it is fetched at the first access.  Where it went is recorded for
 * cudaMemRangeGetAttribute; a record that cannot be made costs the query
 * its answer, never the prefetch.
 */
static void prefetch(const void *p, size_t count, struct cudaMemLocation location)
{
    if (location.type == cudaMemLocationTypeDevice)
        vgpu_managed_device_reads(p, count);
    if (vgpu_advice_prefetched(p, count, location))
        vgpu_shim_log(VGPU_LOG_WARN, "a prefetch of managed memory at %p could not be recorded: "
                      "cudaMemRangeGetAttribute will not report it", p);
}

VGPU_EXPORT cudaError_t cudaMemPrefetchAsync(const void *devPtr, size_t count,
                                             struct cudaMemLocation location, unsigned int flags,
                                             cudaStream_t stream)
{
    int st = managed_arg(devPtr, count);

    (void)stream;
    if (st != cudaSuccess)
        return (cudaError_t)st;
    if (flags)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if ((st = location_ok(location, true, false)) != cudaSuccess)
        return (cudaError_t)st;
    prefetch(devPtr, count, location);
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaMemPrefetchAsync_ptsz(const void *devPtr, size_t count,
                                                  struct cudaMemLocation location,
                                                  unsigned int flags, cudaStream_t stream)
{
    return cudaMemPrefetchAsync(devPtr, count, location, flags, stream);
}

VGPU_EXPORT cudaError_t cudaMemAdvise(const void *devPtr, size_t count,
                                      enum cudaMemoryAdvise advice, struct cudaMemLocation location)
{
    int st = managed_arg(devPtr, count);

    if (st != cudaSuccess)
        return (cudaError_t)st;
    /* hints about migration, which the shadow does not do: checked, and recorded for the queries */
    switch (advice) {
    case cudaMemAdviseSetReadMostly:
    case cudaMemAdviseUnsetReadMostly:
    case cudaMemAdviseUnsetPreferredLocation:
        break;                  /* the location is ignored */
    case cudaMemAdviseSetPreferredLocation:
        st = location_ok(location, true, true);
        break;
    case cudaMemAdviseSetAccessedBy:
    case cudaMemAdviseUnsetAccessedBy:
        st = location_ok(location, false, true);
        break;
    default:
        st = vgpu_shim_status(cudaErrorInvalidValue);
    }
    if (st != cudaSuccess)
        return (cudaError_t)st;
    if (vgpu_advice_set(devPtr, count, advice, location))
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaStreamAttachMemAsync(cudaStream_t stream, void *devPtr, size_t length,
                                                 unsigned int flags)
{
    int st = managed_arg(devPtr, length);

    (void)stream;
    if (st != cudaSuccess)
        return (cudaError_t)st;
    if (flags != cudaMemAttachGlobal && flags != cudaMemAttachHost && flags != cudaMemAttachSingle)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    return cudaSuccess;         /* every launch makes all managed memory the device's until a sync */
}

VGPU_EXPORT cudaError_t cudaStreamAttachMemAsync_ptsz(cudaStream_t stream, void *devPtr,
                                                      size_t length, unsigned int flags)
{
    return cudaStreamAttachMemAsync(stream, devPtr, length, flags);
}

/* ---- batches of prefetches and discards ---- */

/*
 * locs and idxs: n entries (at least 1, at most count), the first index 0,
 * each greater than the one before, the last below count.
 */
static bool locs_ok(const struct cudaMemLocation *locs, const size_t *idxs, size_t n, size_t count)
{
    if (!locs || !idxs || !n || n > count || idxs[0] != 0)
        return false;
    for (size_t k = 1; k < n; k++)
        if (idxs[k] <= idxs[k - 1] || idxs[k] >= count)
            return false;
    return true;
}

/*
 * The batched calls: their arguments checked as CUDA documents them (the
 * stream not the legacy one, flags 0, every range managed memory of this
 * program's, every location valid), then each range as cudaMemPrefetchAsync
 * takes it.  A discard makes a range's contents undefined until it is
 * written or prefetched; keeping them is one valid outcome, and the one
 * here, where nothing migrates that a discard could spare.  CUDA asks
 * every device for concurrent managed access, which vgpu reports as 0;
 * the calls are served anyway, as cudaMemPrefetchAsync is.
 */
static cudaError_t batch(void **dptrs, size_t *sizes, size_t count, struct cudaMemLocation *locs,
                         size_t *idxs, size_t nlocs, unsigned long long flags, cudaStream_t stream,
                         bool ptsz, bool prefetches)
{
    int st;
    size_t k = 0;

    if (!count || !dptrs || !sizes || flags || stream == cudaStreamLegacy || (!stream && !ptsz) ||
        (prefetches && !locs_ok(locs, idxs, nlocs, count)))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    for (size_t i = 0; i < count; i++)
        if ((st = managed_arg(dptrs[i], sizes[i])) != cudaSuccess)
            return (cudaError_t)st;
    for (size_t j = 0; prefetches && j < nlocs; j++)
        if ((st = location_ok(locs[j], true, false)) != cudaSuccess)
            return (cudaError_t)st;
    for (size_t i = 0; prefetches && i < count; i++) {
        if (k + 1 < nlocs && i == idxs[k + 1])
            k++;
        prefetch(dptrs[i], sizes[i], locs[k]);
    }
    return cudaSuccess;
}

VGPU_EXPORT cudaError_t cudaMemPrefetchBatchAsync(void **dptrs, size_t *sizes, size_t count,
                                                  struct cudaMemLocation *prefetchLocs,
                                                  size_t *prefetchLocIdxs, size_t numPrefetchLocs,
                                                  unsigned long long flags, cudaStream_t stream)
{
    return batch(dptrs, sizes, count, prefetchLocs, prefetchLocIdxs, numPrefetchLocs, flags, stream,
                 false, true);
}

VGPU_EXPORT cudaError_t cudaMemPrefetchBatchAsync_ptsz(void **dptrs, size_t *sizes, size_t count,
                                                       struct cudaMemLocation *prefetchLocs,
                                                       size_t *prefetchLocIdxs,
                                                       size_t numPrefetchLocs,
                                                       unsigned long long flags, cudaStream_t stream)
{
    return batch(dptrs, sizes, count, prefetchLocs, prefetchLocIdxs, numPrefetchLocs, flags, stream,
                 true, true);
}

VGPU_EXPORT cudaError_t cudaMemDiscardBatchAsync(void **dptrs, size_t *sizes, size_t count,
                                                 unsigned long long flags, cudaStream_t stream)
{
    return batch(dptrs, sizes, count, NULL, NULL, 0, flags, stream, false, false);
}

VGPU_EXPORT cudaError_t cudaMemDiscardBatchAsync_ptsz(void **dptrs, size_t *sizes, size_t count,
                                                      unsigned long long flags, cudaStream_t stream)
{
    return batch(dptrs, sizes, count, NULL, NULL, 0, flags, stream, true, false);
}

/* a discard then a prefetch: the prefetch alone, the contents kept */
VGPU_EXPORT cudaError_t cudaMemDiscardAndPrefetchBatchAsync(void **dptrs, size_t *sizes, size_t count,
                                                            struct cudaMemLocation *prefetchLocs,
                                                            size_t *prefetchLocIdxs,
                                                            size_t numPrefetchLocs,
                                                            unsigned long long flags,
                                                            cudaStream_t stream)
{
    return batch(dptrs, sizes, count, prefetchLocs, prefetchLocIdxs, numPrefetchLocs, flags, stream,
                 false, true);
}

VGPU_EXPORT cudaError_t cudaMemDiscardAndPrefetchBatchAsync_ptsz(void **dptrs, size_t *sizes,
                                                                 size_t count,
                                                                 struct cudaMemLocation *prefetchLocs,
                                                                 size_t *prefetchLocIdxs,
                                                                 size_t numPrefetchLocs,
                                                                 unsigned long long flags,
                                                                 cudaStream_t stream)
{
    return batch(dptrs, sizes, count, prefetchLocs, prefetchLocIdxs, numPrefetchLocs, flags, stream,
                 true, true);
}
