/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUDA IPC among the processes of one VM: cuIpcGetMemHandle,
 * cuIpcOpenMemHandle(_v2), cuIpcCloseMemHandle, cuIpcGetEventHandle,
 * cuIpcOpenEventHandle (the runtime's cudaIpc* come through vgpu's
 * libcuda.so.1).  Each guest process is a session process of its own, so
 * the real driver's IPC works between them as between any two processes;
 * what vgpu adds is the tenant boundary.  A session that exports a handle
 * publishes it in its page of the shared state (sched.c); a session opens
 * a handle only when a live session of its own VM published it, so a
 * handle from another VM, or made up by a hostile guest, opens nothing
 * (CUDA_ERROR_INVALID_VALUE, logged).
 *
 * What is exported must be the session's: device memory it allocated, an
 * event it created.  Memory opened from a handle becomes a range of the
 * session that copies and kernels may use, not its own to free, and counts
 * against the VM's memory limit while open (so memory its exporter frees
 * early still counts); closing it drops the range and the charge.  A
 * handle stays published until the allocation is freed or the event
 * destroyed (vgpu_ipc_forget) or the session ends.
 */
#include <cuda.h>
#include <errno.h>
#include <string.h>

#include "cuda_calltable.h"
#include "manual_internal.h"
#include "scheduler.h"

#define SYM VGPU_DRIVER_SYM
#define OPENED_MAX 256                 /* handles a session has open at once */

/*
 * Per session process: what it exported (an allocation's base or an event,
 * with its published entry; at most one per entry, so never more than
 * VGPU_IPC_MAX) and what it opened (with the size charged).
 */
static struct { uint64_t what; int entry; } exported[VGPU_IPC_MAX];
static int nexported;
static struct { uint64_t ptr, base, size; } opened[OPENED_MAX];
static int nopened;

void vgpu_ipc_forget(uint64_t what)
{
    for (int i = 0; i < nexported; i++)
        if (exported[i].what == what) {
            vgpu_sched_ipc_unpublish(exported[i].entry);
            exported[i] = exported[--nexported];
            return;
        }
}

/*
 * Publishes the handle of what (an allocation's base, an event): the entry
 * it already has when exported again (the driver gives the same handle),
 * else a new one.  0, or CUDA_ERROR_OUT_OF_MEMORY with every entry in use.
 */
static int publish(uint64_t what, enum vgpu_ipc_kind k, const uint8_t *handle)
{
    int entry = vgpu_sched_ipc_publish(k, handle), old = -1;

    for (int i = 0; i < nexported; i++)
        if (exported[i].what == what) {
            old = i;
            break;
        }
    if (old >= 0 && entry == exported[old].entry)
        return CUDA_SUCCESS;           /* the same handle, published already */
    if (old >= 0 && entry >= 0) {
        /* a new handle for what: published before the old one goes, so none is ever missing */
        vgpu_sched_ipc_unpublish(exported[old].entry);
        exported[old].entry = entry;
        return CUDA_SUCCESS;
    }
    if (entry < 0 || nexported >= VGPU_IPC_MAX) {
        vgpu_log(VGPU_LOG_WARN, "CUDA IPC: cannot publish the handle (%s); a session has %d "
                 "handles exported at most", entry == -ENODEV ? "no shared state" :
                 "all entries in use", VGPU_IPC_MAX);
        if (entry >= 0)
            vgpu_sched_ipc_unpublish(entry);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    exported[nexported].what = what;
    exported[nexported++].entry = entry;
    return CUDA_SUCCESS;
}

static int kind(int cuda_kind)
{
    return vgpu_cuda_kind(cuda_kind);
}

static int h_get_mem(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__IpcArgs, ipc_args, c);
    Vgpu__Manual__IpcRet r = VGPU__MANUAL__IPC_RET__INIT;
    SYM(get, cuIpcGetMemHandle);
    SYM(range, cuMemGetAddressRange_v2);
    CUipcMemHandle h;
    CUdeviceptr base = 0;
    size_t size = 0;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!get || !range)
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!vgpu_addr_check(s, a->ptr) || range(&base, &size, (CUdeviceptr)a->ptr) != CUDA_SUCCESS ||
        !vgpu_range_owned(s, base)) {
        vgpu_log(VGPU_LOG_INFO, "cuIpcGetMemHandle refused: %#llx is not in memory this session "
                 "allocated", (unsigned long long)a->ptr);
        goto out;
    }
    if ((st = get(&h, (CUdeviceptr)a->ptr)) != CUDA_SUCCESS)
        goto out;
    if ((st = publish(base, VGPU_IPC_MEM, (const uint8_t *)h.reserved)) != CUDA_SUCCESS)
        goto out;
    r.handle.data = (uint8_t *)h.reserved;
    r.handle.len = sizeof(h.reserved);
    st = reply(c, &r.base);
out:
    vgpu__manual__ipc_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* The guest's handle bytes, published by a session of this VM: true, and *h holds them. */
static bool handle_ok(const Vgpu__Manual__IpcArgs *a, enum vgpu_ipc_kind k, void *h, size_t len,
                      const char *name)
{
    if (a->handle.len != len || len != VGPU_IPC_HANDLE_SIZE)
        return false;
    memcpy(h, a->handle.data, len);
    if (vgpu_sched_ipc_published(k, a->handle.data))
        return true;
    vgpu_log(VGPU_LOG_WARN, "%s refused: the handle was not exported by a live process of this "
             "VM (handles of other VMs open nothing)", name);
    return false;
}

static int h_open_mem(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__IpcArgs, ipc_args, c);
    Vgpu__Manual__IpcRet r = VGPU__MANUAL__IPC_RET__INIT;
    SYM(open, cuIpcOpenMemHandle_v2);
    SYM(close, cuIpcCloseMemHandle);
    SYM(range, cuMemGetAddressRange_v2);
    CUipcMemHandle h;
    CUdeviceptr p = 0, base = 0;
    size_t size = 0;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!open || !close || !range)
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!handle_ok(a, VGPU_IPC_MEM, h.reserved, sizeof(h.reserved), "cuIpcOpenMemHandle"))
        goto out;
    st = CUDA_ERROR_OUT_OF_MEMORY;
    if (nopened >= OPENED_MAX)
        goto out;
    if ((st = open(&p, h, a->flags)) != CUDA_SUCCESS)
        goto out;
    if ((st = range(&base, &size, p)) != CUDA_SUCCESS) {
        vgpu_log(VGPU_LOG_WARN, "cuIpcOpenMemHandle: the opened memory's range is unknown "
                 "(CUresult %d); closed again", st);
        close(p);
        goto out;
    }
    /* the VM's memory counts it while open here: its exporter may free it first */
    st = CUDA_ERROR_OUT_OF_MEMORY;
    if (vgpu_memory_charge(s, (int64_t)size)) {
        close(p);
        goto out;
    }
    if (vgpu_range_add(s, base, size, false)) {
        vgpu_memory_charge(s, -(int64_t)size);
        close(p);
        goto out;
    }
    opened[nopened].ptr = p;
    opened[nopened].base = base;
    opened[nopened++].size = size;
    r.ptr = p;
    st = reply(c, &r.base);
out:
    vgpu__manual__ipc_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_close_mem(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__IpcArgs, ipc_args, c);
    SYM(close, cuIpcCloseMemHandle);
    int st = CUDA_ERROR_NOT_SUPPORTED, i;

    if (!close)
        goto out;
    for (i = 0; i < nopened && opened[i].ptr != a->ptr; i++)
        ;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!a->ptr || i == nopened)
        goto out;
    if ((st = close((CUdeviceptr)a->ptr)) != CUDA_SUCCESS)
        goto out;
    vgpu_range_drop(s, opened[i].base);
    vgpu_memory_charge(s, -(int64_t)opened[i].size);
    opened[i] = opened[--nopened];
out:
    vgpu__manual__ipc_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_get_event(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__IpcArgs, ipc_args, c);
    Vgpu__Manual__IpcRet r = VGPU__MANUAL__IPC_RET__INIT;
    SYM(get, cuIpcGetEventHandle);
    CUipcEventHandle h;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!get)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!vgpu_handle_known(s, kind(VGPU_CUDA_H_EVENT), a->event))
        goto out;
    if ((st = get(&h, (CUevent)(uintptr_t)a->event)) != CUDA_SUCCESS)
        goto out;
    if ((st = publish(a->event, VGPU_IPC_EVENT, (const uint8_t *)h.reserved)) != CUDA_SUCCESS)
        goto out;
    r.handle.data = (uint8_t *)h.reserved;
    r.handle.len = sizeof(h.reserved);
    st = reply(c, &r.base);
out:
    vgpu__manual__ipc_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_open_event(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__IpcArgs, ipc_args, c);
    Vgpu__Manual__IpcRet r = VGPU__MANUAL__IPC_RET__INIT;
    SYM(open, cuIpcOpenEventHandle);
    CUipcEventHandle h;
    CUevent ev = NULL;
    int st = CUDA_ERROR_NOT_SUPPORTED;

    if (!open)
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (!handle_ok(a, VGPU_IPC_EVENT, h.reserved, sizeof(h.reserved), "cuIpcOpenEventHandle"))
        goto out;
    if ((st = open(&ev, h)) != CUDA_SUCCESS)
        goto out;
    r.event = (uint64_t)(uintptr_t)ev;
    if (vgpu_handle_add(s, kind(VGPU_CUDA_H_EVENT), r.event)) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    st = reply(c, &r.base);
out:
    vgpu__manual__ipc_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

vgpu_manual_fn vgpu_ipc_manual_find(uint32_t id)
{
    switch (id) {
    case VGPU_CUDA_ID_cuIpcGetMemHandle: return h_get_mem;
    case VGPU_CUDA_ID_cuIpcOpenMemHandle:
    case VGPU_CUDA_ID_cuIpcOpenMemHandle_v2: return h_open_mem;
    case VGPU_CUDA_ID_cuIpcCloseMemHandle: return h_close_mem;
    case VGPU_CUDA_ID_cuIpcGetEventHandle: return h_get_event;
    case VGPU_CUDA_ID_cuIpcOpenEventHandle: return h_open_event;
    default: return NULL;
    }
}
