/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime's queries of managed memory's advice and prefetches
 * (cudaMemRangeGetAttribute(s)) and its records of them (from managed.c):
 * both kept by the client library (client/advice.c), one record per
 * process for both guest libraries, so cuMemRangeGetAttribute sees what
 * cudaMemAdvise asked and the other way round.  The runtime's values are
 * the client's (client/managed.h), as asserted below.
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <stdint.h>

#include "../shim_internal.h"
#include "client/managed.h"

_Static_assert((int)cudaMemLocationTypeInvalid == VGPU_LOC_INVALID &&
               (int)cudaMemLocationTypeDevice == VGPU_LOC_DEVICE &&
               (int)cudaMemLocationTypeHost == VGPU_LOC_HOST &&
               (int)cudaMemLocationTypeHostNuma == VGPU_LOC_HOST_NUMA &&
               (int)cudaMemLocationTypeHostNumaCurrent == VGPU_LOC_HOST_NUMA_CURRENT,
               "the runtime's locations are the client's");
_Static_assert((int)cudaMemAdviseSetReadMostly == VGPU_ADVISE_SET_READ_MOSTLY &&
               (int)cudaMemAdviseUnsetReadMostly == VGPU_ADVISE_UNSET_READ_MOSTLY &&
               (int)cudaMemAdviseSetPreferredLocation == VGPU_ADVISE_SET_PREFERRED &&
               (int)cudaMemAdviseUnsetPreferredLocation == VGPU_ADVISE_UNSET_PREFERRED &&
               (int)cudaMemAdviseSetAccessedBy == VGPU_ADVISE_SET_ACCESSED_BY &&
               (int)cudaMemAdviseUnsetAccessedBy == VGPU_ADVISE_UNSET_ACCESSED_BY,
               "the runtime's advice is the client's");
_Static_assert((int)cudaMemRangeAttributeReadMostly == VGPU_RANGE_READ_MOSTLY &&
               (int)cudaMemRangeAttributePreferredLocation == VGPU_RANGE_PREFERRED &&
               (int)cudaMemRangeAttributeAccessedBy == VGPU_RANGE_ACCESSED_BY &&
               (int)cudaMemRangeAttributeLastPrefetchLocation == VGPU_RANGE_LAST_PREFETCH &&
               (int)cudaMemRangeAttributePreferredLocationType == VGPU_RANGE_PREFERRED_TYPE &&
               (int)cudaMemRangeAttributePreferredLocationId == VGPU_RANGE_PREFERRED_ID &&
               (int)cudaMemRangeAttributeLastPrefetchLocationType == VGPU_RANGE_LAST_PREFETCH_TYPE &&
               (int)cudaMemRangeAttributeLastPrefetchLocationId == VGPU_RANGE_LAST_PREFETCH_ID &&
               sizeof(enum cudaMemRangeAttribute) == sizeof(int),
               "the runtime's range attributes are the client's");
_Static_assert((int)cudaCpuDeviceId == VGPU_CPU_DEVICE && (int)cudaInvalidDeviceId == VGPU_INVALID_DEVICE &&
               (int)cudaErrorInvalidValue == VGPU_RANGE_EINVAL, "the runtime's ids are the client's");

static struct vgpu_mem_loc loc_of(struct cudaMemLocation l)
{
    return (struct vgpu_mem_loc){ .type = (int)l.type, .id = l.id };
}

int vgpu_advice_set(const void *p, size_t n, enum cudaMemoryAdvise advice, struct cudaMemLocation loc)
{
    return vgpu_client_managed_advise(vgpu_client_get(), p, n, (int)advice, loc_of(loc));
}

int vgpu_advice_prefetched(const void *p, size_t n, struct cudaMemLocation loc)
{
    return vgpu_client_managed_prefetched(vgpu_client_get(), p, n, loc_of(loc));
}

/* The attributes of [devPtr, +count), which must be managed memory of this program's. */
static cudaError_t range_attrs(void **data, const size_t *sizes,
                               const enum cudaMemRangeAttribute *attrs, size_t n,
                               const void *devPtr, size_t count)
{
    int st;

    vgpu_shim_connect();
    if (vgpu_shim_init_status() != cudaSuccess)
        return (cudaError_t)vgpu_shim_status(vgpu_shim_init_status());
    st = vgpu_client_managed_range_attrs(vgpu_client_get(), data, sizes, (const int *)attrs, n,
                                         devPtr, count);
    return st == 0 ? cudaSuccess : (cudaError_t)vgpu_shim_status(st);
}

VGPU_EXPORT cudaError_t cudaMemRangeGetAttribute(void *data, size_t dataSize,
                                                 enum cudaMemRangeAttribute attribute,
                                                 const void *devPtr, size_t count)
{
    return range_attrs(&data, &dataSize, &attribute, 1, devPtr, count);
}

VGPU_EXPORT cudaError_t cudaMemRangeGetAttributes(void **data, size_t *dataSizes,
                                                  enum cudaMemRangeAttribute *attributes,
                                                  size_t numAttributes, const void *devPtr,
                                                  size_t count)
{
    return range_attrs(data, dataSizes, attributes, numAttributes, devPtr, count);
}
