/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Managed memory for libcuda.so.1: cuMemAllocManaged, a library's managed
 * variables (cuLibraryGetManaged, modules.c), and the driver's calls about
 * managed memory (advice, prefetches and their batches, discards, range
 * attributes, stream attachment).  The memory is real managed memory on
 * the server; its shadow here is the client library's (client/managed.c:
 * one per process for both guest libraries), whose header says what a
 * device without concurrent managed access, which vgpu reports, lets the
 * host do.  This library's ranges move their bytes with its own raw
 * copies (copy.c), and its launches and memsets are work the client sends
 * the host's side before.  The calls are checked as the driver checks
 * them and taken here; advice and prefetches are recorded by the client,
 * which answers cuMemRangeGetAttribute(s).
 */
#include <cuda.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "client/managed.h"
#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"

#define ID(name) VGPU_CUDA_ID_##name

_Static_assert((int)CU_MEM_LOCATION_TYPE_INVALID == VGPU_LOC_INVALID &&
               (int)CU_MEM_LOCATION_TYPE_DEVICE == VGPU_LOC_DEVICE &&
               (int)CU_MEM_LOCATION_TYPE_HOST == VGPU_LOC_HOST &&
               (int)CU_MEM_LOCATION_TYPE_HOST_NUMA == VGPU_LOC_HOST_NUMA &&
               (int)CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT == VGPU_LOC_HOST_NUMA_CURRENT,
               "the driver's locations are the client's");
_Static_assert((int)CU_MEM_ADVISE_SET_READ_MOSTLY == VGPU_ADVISE_SET_READ_MOSTLY &&
               (int)CU_MEM_ADVISE_UNSET_READ_MOSTLY == VGPU_ADVISE_UNSET_READ_MOSTLY &&
               (int)CU_MEM_ADVISE_SET_PREFERRED_LOCATION == VGPU_ADVISE_SET_PREFERRED &&
               (int)CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION == VGPU_ADVISE_UNSET_PREFERRED &&
               (int)CU_MEM_ADVISE_SET_ACCESSED_BY == VGPU_ADVISE_SET_ACCESSED_BY &&
               (int)CU_MEM_ADVISE_UNSET_ACCESSED_BY == VGPU_ADVISE_UNSET_ACCESSED_BY,
               "the driver's advice is the client's");
_Static_assert((int)CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY == VGPU_RANGE_READ_MOSTLY &&
               (int)CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION == VGPU_RANGE_PREFERRED &&
               (int)CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY == VGPU_RANGE_ACCESSED_BY &&
               (int)CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION == VGPU_RANGE_LAST_PREFETCH &&
               (int)CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE == VGPU_RANGE_PREFERRED_TYPE &&
               (int)CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID == VGPU_RANGE_PREFERRED_ID &&
               (int)CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE == VGPU_RANGE_LAST_PREFETCH_TYPE &&
               (int)CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID == VGPU_RANGE_LAST_PREFETCH_ID &&
               sizeof(CUmem_range_attribute) == sizeof(int),
               "the driver's range attributes are the client's");
_Static_assert((int)CU_DEVICE_CPU == VGPU_CPU_DEVICE && (int)CU_DEVICE_INVALID == VGPU_INVALID_DEVICE &&
               CUDA_ERROR_INVALID_VALUE == VGPU_RANGE_EINVAL, "the driver's ids are the client's");

static void *addr(CUdeviceptr p)
{
    return (void *)(uintptr_t)p;
}

/* The status of a range the client could not shadow, said once with what to do. */
static CUresult add_failed(const char *what, CUdeviceptr p, int rc)
{
    if (rc == -EEXIST)
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the managed memory's address %#llx is taken in this "
                      "process, so its host side cannot be mapped there; free or move what is "
                      "mapped there (or allocate the managed memory earlier)", what,
                      (unsigned long long)p);
    else if (rc == -EOPNOTSUPP)
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: another vgpu library of an older build serves this "
                      "process and keeps no managed memory; use libcudart.so.13 and libcuda.so.1 "
                      "of one vgpu build", what);
    else
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the host side of managed memory at %#llx could not be "
                      "mapped (%s)", what, (unsigned long long)p, strerror(-rc));
    return rc == -ENOMEM ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_NOT_SUPPORTED;
}

CUresult vgpu_drv_managed_add(const char *what, CUdeviceptr p, size_t size)
{
    struct vgpu_client *c = vgpu_client_get();
    int rc;

    vgpu_drv_device_add(p, size);           /* cuMemcpy's unified addressing: a device address */
    if (vgpu_client_managed_holds(c, addr(p), size))
        return CUDA_SUCCESS;                /* a variable asked for again */
    rc = vgpu_client_managed_add(c, addr(p), size, vgpu_drv_copy_raw);
    return rc ? add_failed(what, p, rc) : CUDA_SUCCESS;
}

bool vgpu_drv_managed_holds(CUdeviceptr p, size_t n)
{
    return p && vgpu_client_managed_holds(vgpu_client_get(), addr(p), n ? n : 1);
}

void vgpu_drv_managed_device_side(CUdeviceptr p, size_t n, bool write)
{
    vgpu_client_managed_device_side(vgpu_client_get(), addr(p), n, write);
}

void vgpu_drv_managed_remove(CUdeviceptr p)
{
    vgpu_client_managed_remove(vgpu_client_get(), addr(p), NULL);
}

/* ---- allocation ---- */

VGPU_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    Vgpu__Manual__MallocArgs a = VGPU__MANUAL__MALLOC_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUdeviceptr p = 0;
    int st;

    if (!dptr || bytesize == 0 || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    a.size = bytesize;
    a.managed = true;
    a.flags = flags;
    st = vgpu_drv_call(ID(cuMemAllocManaged), "cuMemAllocManaged", &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__MallocRet *r = vgpu__manual__malloc_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (r) {
            p = r->ptr;
            vgpu__manual__malloc_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_shim_rep_release(&rep);
    if (st == CUDA_SUCCESS && (st = vgpu_drv_managed_add("cuMemAllocManaged", p, bytesize))) {
        cuMemFree_v2(p);                    /* no host side: the allocation is undone */
        return st;
    }
    if (st == CUDA_SUCCESS)
        *dptr = p;
    return st;
}

/* ---- checks ---- */

/* [p, p+count) is managed memory of this program's (count 0: p is). */
static CUresult managed_arg(CUdeviceptr p, size_t count)
{
    return vgpu_drv_managed_holds(p, count) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/*
 * A device ordinal of this process's: else CUDA_ERROR_INVALID_DEVICE, or for
 * an advice CUDA_ERROR_INVALID_VALUE (the H100's driver 580 answers
 * cuMemAdvise so: docs/gpu-results.md, 2026-12-05 15:01).
 */
static CUresult device_ok(int id, bool advice)
{
    int n = 0;
    CUresult st = cuDeviceGetCount(&n);

    if (st != CUDA_SUCCESS)
        return st;
    if (id >= 0 && id < n)
        return CUDA_SUCCESS;
    return advice ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_INVALID_DEVICE;
}

/* A location a prefetch or an advice may name (with numa, host NUMA nodes too). */
static CUresult location_ok(CUmemLocation l, bool numa, bool advice)
{
    switch (l.type) {
    case CU_MEM_LOCATION_TYPE_DEVICE: return device_ok(l.id, advice);
    case CU_MEM_LOCATION_TYPE_HOST: return CUDA_SUCCESS;
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
        return numa && l.id >= 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
        return numa ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
}

/* The old forms' CUdevice as a location: CU_DEVICE_CPU is the host. */
static CUmemLocation device_location(CUdevice d)
{
    CUmemLocation l = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = d };

    if (d == CU_DEVICE_CPU)
        l = (CUmemLocation){ .type = CU_MEM_LOCATION_TYPE_HOST, .id = 0 };
    return l;
}

static struct vgpu_mem_loc loc_of(CUmemLocation l)
{
    return (struct vgpu_mem_loc){ .type = (int)l.type, .id = l.id };
}

/* ---- prefetches ---- */

/*
 * A checked prefetch: to the device, what the host wrote goes now; to the
 * host, it is fetched at the first access.  Where it went is recorded for
 * cuMemRangeGetAttribute; a record that cannot be made costs the query
 * its answer, never the prefetch.
 */
static void prefetch(CUdeviceptr p, size_t count, CUmemLocation l)
{
    if (l.type == CU_MEM_LOCATION_TYPE_DEVICE)
        vgpu_drv_managed_device_side(p, count, false);
    if (vgpu_client_managed_prefetched(vgpu_client_get(), addr(p), count, loc_of(l)))
        vgpu_shim_log(VGPU_LOG_WARN, "a prefetch of managed memory at %#llx could not be "
                      "recorded: cuMemRangeGetAttribute will not report it", (unsigned long long)p);
}

static CUresult prefetch_v2(CUdeviceptr p, size_t count, CUmemLocation l, unsigned flags)
{
    CUresult st = managed_arg(p, count);

    if (st != CUDA_SUCCESS)
        return st;
    if (flags)
        return CUDA_ERROR_INVALID_VALUE;
    if ((st = location_ok(l, true, false)) != CUDA_SUCCESS)
        return st;
    prefetch(p, count, l);
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemPrefetchAsync_v2(CUdeviceptr p, size_t count, CUmemLocation location,
                                           unsigned int flags, CUstream stream)
{
    (void)stream;
    return prefetch_v2(p, count, location, flags);
}

VGPU_EXPORT CUresult cuMemPrefetchAsync_v2_ptsz(CUdeviceptr p, size_t count,
                                                CUmemLocation location, unsigned int flags,
                                                CUstream stream)
{
    (void)stream;
    return prefetch_v2(p, count, location, flags);
}

VGPU_EXPORT CUresult cuMemPrefetchAsync(CUdeviceptr p, size_t count, CUdevice device,
                                        CUstream stream)
{
    (void)stream;
    return prefetch_v2(p, count, device_location(device), 0);
}

VGPU_EXPORT CUresult cuMemPrefetchAsync_ptsz(CUdeviceptr p, size_t count, CUdevice device,
                                             CUstream stream)
{
    (void)stream;
    return prefetch_v2(p, count, device_location(device), 0);
}

/* ---- advice ---- */

/* Hints about migration, which the shadow does not do: checked, and recorded for the queries. */
static CUresult advise(CUdeviceptr p, size_t count, CUmem_advise advice, CUmemLocation l)
{
    CUresult st = managed_arg(p, count);

    if (st != CUDA_SUCCESS)
        return st;
    switch (advice) {
    case CU_MEM_ADVISE_SET_READ_MOSTLY:
    case CU_MEM_ADVISE_UNSET_READ_MOSTLY:
    case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION:
        break;                  /* the location is ignored */
    case CU_MEM_ADVISE_SET_PREFERRED_LOCATION:
        st = location_ok(l, true, true);
        break;
    case CU_MEM_ADVISE_SET_ACCESSED_BY:
    case CU_MEM_ADVISE_UNSET_ACCESSED_BY:
        st = location_ok(l, false, true);
        break;
    default:
        st = CUDA_ERROR_INVALID_VALUE;
    }
    if (st != CUDA_SUCCESS)
        return st;
    if (vgpu_client_managed_advise(vgpu_client_get(), addr(p), count, (int)advice, loc_of(l)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemAdvise_v2(CUdeviceptr p, size_t count, CUmem_advise advice,
                                    CUmemLocation location)
{
    return advise(p, count, advice, location);
}

VGPU_EXPORT CUresult cuMemAdvise(CUdeviceptr p, size_t count, CUmem_advise advice, CUdevice device)
{
    return advise(p, count, advice, device_location(device));
}

/* ---- range attributes ---- */

VGPU_EXPORT CUresult cuMemRangeGetAttributes(void **data, size_t *dataSizes,
                                             CUmem_range_attribute *attributes,
                                             size_t numAttributes, CUdeviceptr devPtr, size_t count)
{
    return (CUresult)vgpu_client_managed_range_attrs(vgpu_client_get(), data, dataSizes,
                                                     (const int *)attributes, numAttributes,
                                                     addr(devPtr), count);
}

VGPU_EXPORT CUresult cuMemRangeGetAttribute(void *data, size_t dataSize,
                                            CUmem_range_attribute attribute, CUdeviceptr devPtr,
                                            size_t count)
{
    return cuMemRangeGetAttributes(&data, &dataSize, &attribute, 1, devPtr, count);
}

/* ---- stream attachment ---- */

static CUresult attach(CUdeviceptr p, size_t length, unsigned flags)
{
    CUresult st = managed_arg(p, length);

    if (st != CUDA_SUCCESS)
        return st;
    if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST &&
        flags != CU_MEM_ATTACH_SINGLE)
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;        /* every launch makes all managed memory the device's until a sync */
}

VGPU_EXPORT CUresult cuStreamAttachMemAsync(CUstream stream, CUdeviceptr p, size_t length,
                                            unsigned int flags)
{
    (void)stream;
    return attach(p, length, flags);
}

VGPU_EXPORT CUresult cuStreamAttachMemAsync_ptsz(CUstream stream, CUdeviceptr p, size_t length,
                                                 unsigned int flags)
{
    (void)stream;
    return attach(p, length, flags);
}

/* ---- batches of prefetches and discards ---- */

/*
 * locs and idxs: n entries (at least 1, at most count), the first index 0,
 * each greater than the one before, the last below count.
 */
static bool locs_ok(const CUmemLocation *locs, const size_t *idxs, size_t n, size_t count)
{
    if (!locs || !idxs || !n || n > count || idxs[0] != 0)
        return false;
    for (size_t k = 1; k < n; k++)
        if (idxs[k] <= idxs[k - 1] || idxs[k] >= count)
            return false;
    return true;
}

/*
 * The batched calls, checked as cuda.h documents them (the stream not the
 * legacy one, flags 0, every range managed memory of this program's, every
 * location valid), then each range as cuMemPrefetchAsync takes it.  A
 * discard's contents kept is one valid outcome of it, and the one here,
 * where nothing migrates that a discard could spare (as the runtime's).
 */
static CUresult batch(CUdeviceptr *dptrs, size_t *sizes, size_t count, CUmemLocation *locs,
                      size_t *idxs, size_t nlocs, unsigned long long flags, CUstream stream,
                      bool ptsz, bool prefetches)
{
    CUresult st;
    size_t k = 0;

    if (!count || !dptrs || !sizes || flags || stream == CU_STREAM_LEGACY || (!stream && !ptsz) ||
        (prefetches && !locs_ok(locs, idxs, nlocs, count)))
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < count; i++)
        if ((st = managed_arg(dptrs[i], sizes[i])) != CUDA_SUCCESS)
            return st;
    for (size_t j = 0; prefetches && j < nlocs; j++)
        if ((st = location_ok(locs[j], true, false)) != CUDA_SUCCESS)
            return st;
    for (size_t i = 0; prefetches && i < count; i++) {
        if (k + 1 < nlocs && i == idxs[k + 1])
            k++;
        prefetch(dptrs[i], sizes[i], locs[k]);
    }
    return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemPrefetchBatchAsync(CUdeviceptr *dptrs, size_t *sizes, size_t count,
                                             CUmemLocation *locs, size_t *idxs, size_t nlocs,
                                             unsigned long long flags, CUstream stream)
{
    return batch(dptrs, sizes, count, locs, idxs, nlocs, flags, stream, false, true);
}

VGPU_EXPORT CUresult cuMemPrefetchBatchAsync_ptsz(CUdeviceptr *dptrs, size_t *sizes, size_t count,
                                                  CUmemLocation *locs, size_t *idxs, size_t nlocs,
                                                  unsigned long long flags, CUstream stream)
{
    return batch(dptrs, sizes, count, locs, idxs, nlocs, flags, stream, true, true);
}

VGPU_EXPORT CUresult cuMemDiscardBatchAsync(CUdeviceptr *dptrs, size_t *sizes, size_t count,
                                            unsigned long long flags, CUstream stream)
{
    return batch(dptrs, sizes, count, NULL, NULL, 0, flags, stream, false, false);
}

VGPU_EXPORT CUresult cuMemDiscardBatchAsync_ptsz(CUdeviceptr *dptrs, size_t *sizes, size_t count,
                                                 unsigned long long flags, CUstream stream)
{
    return batch(dptrs, sizes, count, NULL, NULL, 0, flags, stream, true, false);
}

VGPU_EXPORT CUresult cuMemDiscardAndPrefetchBatchAsync(CUdeviceptr *dptrs, size_t *sizes,
                                                       size_t count, CUmemLocation *locs,
                                                       size_t *idxs, size_t nlocs,
                                                       unsigned long long flags, CUstream stream)
{
    return batch(dptrs, sizes, count, locs, idxs, nlocs, flags, stream, false, true);
}

VGPU_EXPORT CUresult cuMemDiscardAndPrefetchBatchAsync_ptsz(CUdeviceptr *dptrs, size_t *sizes,
                                                            size_t count, CUmemLocation *locs,
                                                            size_t *idxs, size_t nlocs,
                                                            unsigned long long flags,
                                                            CUstream stream)
{
    return batch(dptrs, sizes, count, locs, idxs, nlocs, flags, stream, true, true);
}
