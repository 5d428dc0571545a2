/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device selection and reset, pointer attributes (spec: manual): what the
 * session's tables and scheduler charges must follow, and a pointer query
 * that reads only the session's own ranges.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <string.h>

#include "manual_internal.h"

int vgpu_manual_set_device(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__DeviceArgs, device_args, c);
    int rc = cudaSetDevice(a->device);

    if (rc == cudaSuccess)
        vgpu_work_switch_device(s, a->device);
    vgpu__manual__device_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

int vgpu_manual_device_reset(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    int rc = cudaDeviceReset();

    (void)c;
    if (rc == cudaSuccess) {
        vgpu_driver_forget_layouts();   /* the primary context's functions are gone */
        vgpu_copy_forget_stream();      /* ... and the streams */
    }
    if (rc == cudaSuccess && !(s->devices_used & ~(1ull << (s->device & 63)))) {
        /*
         * The reset freed every allocation, stream and event of this
         * process's only device.  A session that used several devices keeps
         * its tables and charges: the reset freed only the current one's,
         * and they are not told apart (so limits err on the safe side).
         */
        vgpu_work_forget(s);
        vgpu_memory_charge(s, INT64_MIN / 2);
        vgpu_sched_charge(VGPU_HELD_STREAMS, INT64_MIN / 2, 0);
        vgpu_session_reset_tables(s);
    } else if (rc == cudaSuccess) {
        vgpu_work_forget(s);
    }
    return rc;
}

int vgpu_manual_pointer(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__PointerArgs, pointer_args, c);
    Vgpu__Manual__PointerRet r = VGPU__MANUAL__POINTER_RET__INIT;
    struct cudaPointerAttributes at;
    int rc;

    /* A query only: an address outside the session's ranges just reads as unregistered. */
    memset(&at, 0, sizeof(at));
    if (a->ptr && !vgpu_range_check(s, a->ptr, 1)) {
        r.type = cudaMemoryTypeUnregistered;
        r.device = -2;
        rc = cudaSuccess;
    } else {
        rc = cudaPointerGetAttributes(&at, (void *)(uintptr_t)a->ptr);
        r.type = at.type;
        r.device = at.device;
        r.device_pointer = (uintptr_t)at.devicePointer;
    }
    if (rc == cudaSuccess)
        rc = reply(c, &r.base);
    vgpu__manual__pointer_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}
