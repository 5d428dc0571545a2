/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One client connection, served by its own process (forked by main.c), so
 * each session has its own CUDA context and its own address space: when the
 * client goes away, however it goes, the process exits and the driver frees
 * everything the session held.
 *
 * Flow: Hello/HelloReply (handshake.c), then CallBatch -> ResultBatch and
 * Control -> ControlReply (control.c) until the client closes.  Each call is
 * a generated one (replayed through libffi on the real runtime), a
 * hand-written one (manual/), or unsupported.  Requests come and replies go
 * through the session's carrier (carrier.h): the socket, or a queue pair.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carrier.h"
#include "cuda_calltable.h"
#include "cudart_calltable.h"
#include "contain.h"
#include "nvml_calltable.h"
#include "server_internal.h"
#include "vgpu/agree.h"
#include "vgpu/apis.h"
#include "vgpu/wire.h"

extern const struct vgpu_dispatch_entry vgpu_cudart_dispatch[];
extern const size_t vgpu_cudart_dispatch_len;
const struct vgpu_dispatch_entry *vgpu_cudart_dispatch_find(uint32_t id);
const struct vgpu_dispatch_entry *vgpu_cuda_dispatch_find(uint32_t id);
const struct vgpu_dispatch_entry *vgpu_nvml_dispatch_find(uint32_t id);

/* The APIs' ids in one index: the runtime's, then the driver's, then NVML's. */
#define DRV_SLOTS (VGPU_CUDA_MAX_ID - VGPU_CUDA_ID_BASE + 1)
#define NVML_SLOTS (VGPU_NVML_MAX_ID - VGPU_NVML_ID_BASE + 1)
#define ID_SLOTS (VGPU_CUDART_MAX_ID + 1 + DRV_SLOTS + NVML_SLOTS)

static int slot_of(uint32_t id)
{
    if (id <= VGPU_CUDART_MAX_ID)
        return (int)id;
    if (id >= VGPU_CUDA_ID_BASE && id <= VGPU_CUDA_MAX_ID)
        return (int)(VGPU_CUDART_MAX_ID + 1 + (id - VGPU_CUDA_ID_BASE));
    if (id >= VGPU_NVML_ID_BASE && id <= VGPU_NVML_MAX_ID)
        return (int)(VGPU_CUDART_MAX_ID + 1 + DRV_SLOTS + (id - VGPU_NVML_ID_BASE));
    return -1;
}

static bool is_driver(uint32_t id)
{
    return vgpu_api_of(id) == VGPU_API_CUDA;
}

static bool is_nvml(uint32_t id)
{
    return vgpu_api_of(id) == VGPU_API_NVML;
}

/*
 * Calls at which the driver writes what kernels printed, besides the ones
 * that put work on the GPU (vgpu_work_begin: launches and blocking copies):
 * the synchronizing calls, module loading and unloading, context
 * destruction (CUDA C++ Programming Guide, "Formatted Output").  Only
 * replies to batches with one of them look at the session's files.
 */
static bool flushes_printf(uint32_t id)
{
    switch (id) {
    case VGPU_CUDART_ID_cudaDeviceSynchronize:
    case VGPU_CUDART_ID_cudaStreamSynchronize:
    case VGPU_CUDART_ID_cudaStreamSynchronize_ptsz:
    case VGPU_CUDART_ID_cudaEventSynchronize:
    case VGPU_CUDART_ID_cudaDeviceReset:
    case VGPU_CUDART_ID_cudaLibraryLoadData:
    case VGPU_CUDART_ID_cudaLibraryLoadFromFile:
    case VGPU_CUDART_ID_cudaLibraryUnload:
    case VGPU_CUDA_ID_cuCtxSynchronize:
    case VGPU_CUDA_ID_cuCtxSynchronize_v2:
    case VGPU_CUDA_ID_cuStreamSynchronize:
    case VGPU_CUDA_ID_cuStreamSynchronize_ptsz:
    case VGPU_CUDA_ID_cuEventSynchronize:
    case VGPU_CUDA_ID_cuCtxDestroy:
    case VGPU_CUDA_ID_cuCtxDestroy_v2:
    case VGPU_CUDA_ID_cuDevicePrimaryCtxReset:
    case VGPU_CUDA_ID_cuDevicePrimaryCtxReset_v2:
    case VGPU_CUDA_ID_cuDevicePrimaryCtxRelease:
    case VGPU_CUDA_ID_cuDevicePrimaryCtxRelease_v2:
    /* blocking copies that put no work item on the GPU (symbol.c) */
    case VGPU_CUDART_ID_cudaMemcpyToSymbol:
    case VGPU_CUDART_ID_cudaMemcpyToSymbol_ptds:
    case VGPU_CUDART_ID_cudaMemcpyFromSymbol:
    case VGPU_CUDART_ID_cudaMemcpyFromSymbol_ptds:
    case VGPU_CUDA_ID_cuModuleLoad:
    case VGPU_CUDA_ID_cuModuleLoadData:
    case VGPU_CUDA_ID_cuModuleLoadDataEx:
    case VGPU_CUDA_ID_cuModuleLoadFatBinary:
    case VGPU_CUDA_ID_cuModuleUnload:
    case VGPU_CUDA_ID_cuLibraryLoadData:
    case VGPU_CUDA_ID_cuLibraryLoadFromFile:
    case VGPU_CUDA_ID_cuLibraryUnload:
        return true;
    default:
        return false;
    }
}

/* A refusal (negative errno) in the call's API's status. */
static int refused_status(uint32_t id, int rc)
{
    if (is_nvml(id))
        return vgpu_errno_to_nvml(rc);
    return is_driver(id) ? vgpu_errno_to_cu(rc) : vgpu_errno_to_cuda(rc);
}


/* The same failures as the driver API's CUresult. */
int vgpu_errno_to_cu(int neg)
{
    switch (neg) {
    case 0:
        return CUDA_SUCCESS;
    case -ENOENT:
        return CUDA_ERROR_INVALID_HANDLE;
    case -ENOMEM:
        return CUDA_ERROR_OUT_OF_MEMORY;
    case -ENOSYS:
        return CUDA_ERROR_NOT_SUPPORTED;
    case -EFAULT:
    case -EINVAL:
    case -EBADMSG:
    case -E2BIG:
        return CUDA_ERROR_INVALID_VALUE;
    default:
        return CUDA_ERROR_UNKNOWN;
    }
}

int vgpu_errno_to_cuda(int neg)
{
    switch (neg) {
    case 0:
        return cudaSuccess;
    case -ENOENT:
        return cudaErrorInvalidResourceHandle;
    case -ENOMEM:
        return cudaErrorMemoryAllocation;
    case -ENOSYS:
        return cudaErrorNotSupported;
    case -EFAULT:
    case -EINVAL:
    case -EBADMSG:
    case -E2BIG:
        return cudaErrorInvalidValue;
    default:
        return cudaErrorUnknown;
    }
}

/* The dispatch entry of a call id, by a table filled at the first look (a session is one thread). */
static const struct vgpu_dispatch_entry *entry_of(uint32_t id)
{
    static const struct vgpu_dispatch_entry *by_id[ID_SLOTS];
    static bool filled;
    int k = slot_of(id);

    if (!filled) {
        for (uint32_t i = 0; i <= VGPU_CUDART_MAX_ID; i++)
            by_id[slot_of(i)] = vgpu_cudart_dispatch_find(i);
        for (uint32_t i = VGPU_CUDA_ID_BASE; i <= VGPU_CUDA_MAX_ID; i++)
            by_id[slot_of(i)] = vgpu_cuda_dispatch_find(i);
        for (uint32_t i = VGPU_NVML_ID_BASE; i <= VGPU_NVML_MAX_ID; i++)
            by_id[slot_of(i)] = vgpu_nvml_dispatch_find(i);
        filled = true;
    }
    return k >= 0 ? by_id[k] : NULL;
}

static int call_known(void *opaque, uint32_t id)
{
    (void)opaque;
    return entry_of(id) != NULL;
}

/* The real functions, resolved once by name from the real libcudart, libcuda and NVML. */
static void (*resolve(const struct vgpu_dispatch_entry *e))(void)
{
    static void (*cache[ID_SLOTS])(void);
    static unsigned char missing[ID_SLOTS];
    int k = slot_of(e->id);
    void (*fn)(void);

    if (k >= 0 && (cache[k] || missing[k]))
        return cache[k];
    if (is_nvml(e->id))
        fn = vgpu_nvml_sym(e->name);
    else if ((fn = vgpu_view_sym(e->name)))
        ;                       /* the device as the guest sees it (view.c) */
    else if (is_driver(e->id))
        fn = vgpu_driver_sym(e->name);
    else
        *(void **)&fn = dlsym(RTLD_DEFAULT, e->name);
    /* said once per session: a guest repeating the call must not flood the log */
    if (!fn)
        vgpu_log(VGPU_LOG_WARN, "%s: not found in the %s", e->name,
                 is_nvml(e->id) ? "NVML" : is_driver(e->id) ? "CUDA driver" : "CUDA runtime");
    if (k >= 0) {
        cache[k] = fn;
        missing[k] = !fn;
    }
    return fn;
}

/* Is handle kind k of e's API the stream kind? */
static bool stream_kind(const struct vgpu_dispatch_entry *e, int k)
{
    if (is_nvml(e->id))
        return false;
    return is_driver(e->id) ? k == VGPU_CUDA_H_STREAM : k == VGPU_CUDART_H_STREAM;
}

/* Does e create a stream (an output parameter of the stream handle kind)? */
static int creates_stream(const struct vgpu_dispatch_entry *e)
{
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i].kind == VGPU_ARG_OUT && stream_kind(e, e->args[i].handle))
            return 1;
    return 0;
}

/* The stream a decoded call runs on (its stream handle argument), or NULL. */
static void *stream_arg(const struct vgpu_dispatch_entry *e, const struct vgpu_replay *r)
{
    for (int i = 0; i < e->nargs; i++)
        if (e->args[i].kind == VGPU_ARG_HANDLE && stream_kind(e, e->args[i].handle) && r->av[i])
            return *(void **)r->av[i];
    return NULL;
}

/* Streams held count against the VM's limit; 0 or -ENOMEM (logged). */
static int stream_charge(struct vgpu_session *s, int delta)
{
    const struct vgpu_vm_limits *lim = vgpu_config_vm(vgpu_cfg, s->who.vm_id);

    if (vgpu_sched_charge(VGPU_HELD_STREAMS, delta, lim ? lim->streams : 0) == 0)
        return 0;
    vgpu_log(VGPU_LOG_WARN, "vm %u: stream limit of %u reached; stream creation refused "
             "(raise streams in [vm %u] of the server's configuration)", s->who.vm_id,
             lim->streams, s->who.vm_id);
    return -ENOMEM;
}

/* The session-table kind of the handle a destroying call takes first, or -1. */
static int destroyed_kind(uint32_t id)
{
    switch (id) {
    case VGPU_CUDART_ID_cudaStreamDestroy:
    case VGPU_CUDA_ID_cuStreamDestroy:
    case VGPU_CUDA_ID_cuStreamDestroy_v2:
        return VGPU_CUDART_H_STREAM;
    case VGPU_CUDART_ID_cudaEventDestroy:
    case VGPU_CUDA_ID_cuEventDestroy:
    case VGPU_CUDA_ID_cuEventDestroy_v2:
        return VGPU_CUDART_H_EVENT;
    case VGPU_CUDA_ID_cuModuleUnload:
        return vgpu_cuda_kind(VGPU_CUDA_H_MODULE);
    case VGPU_CUDA_ID_cuLibraryUnload:
        return vgpu_cuda_kind(VGPU_CUDA_H_LIBRARY);
    case VGPU_CUDA_ID_cuMemPoolDestroy:
        return vgpu_cuda_kind(VGPU_CUDA_H_MEM_POOL);
    case VGPU_CUDA_ID_cuGraphExecDestroy:
        return vgpu_cuda_kind(VGPU_CUDA_H_GRAPH_EXEC);
    case VGPU_CUDART_ID_cudaDestroyTextureObject:
        return VGPU_CUDART_H_TEXTURE_OBJECT;
    case VGPU_CUDART_ID_cudaDestroySurfaceObject:
        return VGPU_CUDART_H_SURFACE_OBJECT;
    default:
        return -1;
    }
}

/* Does id begin a stream capture? */
static bool begins_capture(uint32_t id)
{
    return id == VGPU_CUDA_ID_cuStreamBeginCapture || id == VGPU_CUDA_ID_cuStreamBeginCapture_ptsz ||
           id == VGPU_CUDA_ID_cuStreamBeginCapture_v2 ||
           id == VGPU_CUDA_ID_cuStreamBeginCapture_v2_ptsz ||
           id == VGPU_CUDA_ID_cuStreamBeginCaptureToGraph ||
           id == VGPU_CUDA_ID_cuStreamBeginCaptureToGraph_ptsz;
}

/* A destroyed stream, event, module, ... leaves the session's tables (and its VM's count). */
static void after_destroy(struct vgpu_session *s, const struct vgpu_dispatch_entry *e,
                          const struct vgpu_replay *r)
{
    int kind = destroyed_kind(e->id);
    uint64_t h;

    if (kind < 0 || !r->av[0])
        return;
    h = (uint64_t)(uintptr_t)*(void **)r->av[0];
    if (e->id == VGPU_CUDA_ID_cuModuleUnload || e->id == VGPU_CUDA_ID_cuLibraryUnload)
        vgpu_driver_forget_layouts();
    if (vgpu_handle_remove(s, kind, h) == 0 && kind == VGPU_CUDART_H_STREAM)
        stream_charge(s, -1);
    if (kind == VGPU_CUDART_H_EVENT)
        vgpu_ipc_forget(h);     /* an exported event's handle is withdrawn */
}

/*
 * What a successful generated call changes beyond its outputs: a primary
 * context reset or released may take the functions kept for launches with
 * it; what a synchronizing call waited for needs no event to be known
 * finished.
 */
static void after_success(struct vgpu_session *s, const struct vgpu_dispatch_entry *e,
                          const struct vgpu_replay *r)
{
    switch (e->id) {
    case VGPU_CUDA_ID_cuDevicePrimaryCtxReset:
    case VGPU_CUDA_ID_cuDevicePrimaryCtxReset_v2:
    case VGPU_CUDA_ID_cuDevicePrimaryCtxRelease:
    case VGPU_CUDA_ID_cuDevicePrimaryCtxRelease_v2:
        vgpu_driver_forget_layouts();
        break;
    case VGPU_CUDART_ID_cudaDeviceSynchronize:
    case VGPU_CUDA_ID_cuCtxSynchronize:
    case VGPU_CUDA_ID_cuCtxSynchronize_v2:
        vgpu_work_synced(s, NULL, 1);
        break;
    case VGPU_CUDART_ID_cudaStreamSynchronize:
    case VGPU_CUDART_ID_cudaStreamSynchronize_ptsz:
    case VGPU_CUDA_ID_cuStreamSynchronize:
    case VGPU_CUDA_ID_cuStreamSynchronize_ptsz:
        vgpu_work_synced(s, stream_arg(e, r), 0);
        break;
    default:
        if (begins_capture(e->id))
            s->capture_seen = true;
        break;
    }
}

/* Everything one call leaves behind until the reply is sent. */
struct call_out {
    struct vgpu_replay r;
    struct vgpu_arena arena;
    Vgpu__Wire__Result res;
    Vgpu__Wire__Segment segs[VGPU_CALL_MAX_SEG];
    Vgpu__Wire__Segment *segp[VGPU_CALL_MAX_SEG];
};

/*
 * A call_out as calloc would leave it, but for the arenas' inline areas
 * (1 KiB that nothing reads before writing).
 */
static void call_out_init(struct call_out *o)
{
    size_t a = offsetof(struct vgpu_replay, arena), z = a + sizeof(o->r.arena);

    memset(&o->r, 0, a);
    memset((char *)&o->r + z, 0, sizeof(o->r) - z);
    o->r.arena.head = NULL;
    o->r.arena.used = 0;
    o->arena.head = NULL;
    o->arena.used = 0;
    memset(&o->res, 0, sizeof(*o) - offsetof(struct call_out, res));
}

/*
 * A result's fields besides its returned values, and each output segment's
 * entry, at most (tags, varints, length prefixes): what the reply's
 * envelope is charged for them.
 */
enum { RESULT_BYTES = 32, SEGMENT_BYTES = 24 };
_Static_assert(VGPU_WIRE_MAX_ENV > 4096 + VGPU_WIRE_MAX_CALLS * RESULT_BYTES,
               "a reply's envelope has room for a result of every call a batch may hold");

static void exec_call(struct vgpu_session *s, const struct vgpu_frame *f, const Vgpu__Wire__Call *c,
                      struct call_out *o, struct iovec *iov, int *niov, uint64_t *payload_off,
                      size_t *env_left)
{
    /* what is left of the reply for this call's outputs */
    size_t budget = *payload_off < VGPU_REPLY_MAX_BYTES ? VGPU_REPLY_MAX_BYTES - *payload_off : 0;
    const struct vgpu_dispatch_entry *e = entry_of(c->call_id);
    struct vgpu_seg in[VGPU_CALL_MAX_SEG];
    struct iovec outs[VGPU_CALL_MAX_SEG];
    int nin = 0, nouts = 0, status = is_nvml(c->call_id) ? 3 /* NVML_ERROR_NOT_SUPPORTED */
                                                       : cudaErrorNotSupported;
    const uint8_t *ret = NULL;
    size_t ret_len = 0;

    vgpu__wire__result__init(&o->res);
    o->res.call_id = c->call_id;
    if (flushes_printf(c->call_id))
        s->devout_flush = true;
    s->calls++;
    if (!vgpu_agreed(s->agree, c->call_id)) {
        /* a guest of another release: this call's shape differs, or one side lacks it */
        if (vgpu_agree_first_refusal(s->agree, c->call_id))
            vgpu_log(VGPU_LOG_WARN, "%s refused: the guest's vgpu %s does not make this call as "
                     "%s serves it", e ? e->name : "a call", s->client_version, VGPU_SERVER_VERSION);
        status = refused_status(c->call_id, -ENOSYS);
        goto done;
    }
    vgpu_sched_count_call();
    if (c->n_segments > VGPU_CALL_MAX_SEG) {
        status = cudaErrorInvalidValue;
        goto done;
    }
    for (size_t i = 0; i < c->n_segments; i++) {
        in[nin].data = vgpu_frame_segment(f, c->segments[i]);
        in[nin].len = c->segments[i]->length;
        nin++;
    }
    if (e->state == VGPU_FN_GENERATED) {
        int rc, creates = creates_stream(e);

        o->r.ctx = s;
        o->r.ops = is_nvml(e->id) ? &vgpu_session_nvml_ops
                   : is_driver(e->id) ? &vgpu_session_cuda_ops : &vgpu_session_ops;
        if (is_nvml(e->id))
            vgpu_nvml_enter(s);
        o->r.seg_in = in;
        o->r.nseg_in = nin;
        o->r.out_budget = budget;
        if (creates && stream_charge(s, 1)) {
            status = cudaErrorMemoryAllocation;
            goto done;
        }
        if (e->flags & VGPU_FN_WORK)
            vgpu_work_begin(s);
        else if (destroyed_kind(e->id) == VGPU_CUDART_H_STREAM || begins_capture(e->id))
            vgpu_work_cover(s);       /* recorded while the stream exists, and before it captures */
        rc = vgpu_replay_call(e, resolve(e), &o->r, c->args.data, c->args.len, &status);
        if (e->flags & VGPU_FN_WORK)
            vgpu_work_end(s, rc ? NULL : stream_arg(e, &o->r), rc == 0);
        if (creates && (rc || status != cudaSuccess))
            stream_charge(s, -1);
        if (!rc && status == cudaSuccess)
            after_destroy(s, e, &o->r);
        if (!rc && status == cudaSuccess)
            after_success(s, e, &o->r);
        if (rc) {
            vgpu_log(VGPU_LOG_INFO, "%s refused: %s", e->name, strerror(-rc));
            status = refused_status(e->id, rc);
        } else {
            ret = o->r.ret;
            ret_len = o->r.ret_len;
            for (int i = 0; i < o->r.nseg_out; i++) {
                outs[nouts].iov_base = (void *)o->r.seg_out[i].data;
                outs[nouts++].iov_len = o->r.seg_out[i].len;
            }
        }
    } else if (e->state == VGPU_FN_MANUAL) {
        vgpu_manual_fn h = is_nvml(e->id) ? vgpu_nvml_manual_find(e->id)
                           : vgpu_hostcb_find(e->id) ? vgpu_hostcb_find(e->id)
                           : is_driver(e->id) ? vgpu_driver_manual_find(e->id) : vgpu_manual_find(e->id);
        struct vgpu_manual_call mc = { .args = c->args.data, .args_len = c->args.len,
                                       .seg = in, .nseg = nin, .arena = &o->arena,
                                       .out_budget = budget };

        if (!h) {
            vgpu_log(VGPU_LOG_WARN, "%s: no handler in this server", e->name);
        } else {
            status = h(s, &mc);
            ret = mc.ret;
            ret_len = mc.ret_len;
            for (int i = 0; i < mc.nout; i++)
                outs[nouts++] = mc.out[i];
        }
    } else {
        vgpu_log(VGPU_LOG_INFO, "%s: unsupported (%s)", e->name, e->reason);
    }
done:
    vgpu_log(VGPU_LOG_DEBUG, "%s -> %d", e->name, status);
    /* Output segments only with success: a failed call leaves outputs alone. */
    if (status != cudaSuccess)
        nouts = 0;
    /*
     * What a call returns travels in the reply's envelope, which a frame
     * limits (VGPU_WIRE_MAX_ENV); a reply over it could not be sent at all.
     * RESULT_BYTES of each call's are set aside by serve_batch.
     */
    if (ret_len + (size_t)nouts * SEGMENT_BYTES > *env_left) {
        vgpu_log(VGPU_LOG_INFO, "%s refused: what it returns (%zu bytes) does not fit the reply",
                 e->name, ret_len);
        status = refused_status(c->call_id, -E2BIG);
        ret = NULL;
        ret_len = 0;
        nouts = 0;
    }
    *env_left -= ret_len + (size_t)nouts * SEGMENT_BYTES;
    o->res.status = status;
    o->res.ret.data = (uint8_t *)ret;
    o->res.ret.len = ret_len;
    for (int i = 0; i < nouts; i++) {
        vgpu__wire__segment__init(&o->segs[i]);
        o->segs[i].offset = *payload_off;
        o->segs[i].length = outs[i].iov_len;
        o->segp[i] = &o->segs[i];
        *payload_off += outs[i].iov_len;
        iov[(*niov)++] = outs[i];
    }
    o->res.n_segments = (size_t)nouts;
    o->res.segments = o->segp;
}

static int serve_batch(struct vgpu_session *s, const struct vgpu_frame *f)
{
    const Vgpu__Wire__CallBatch *b = f->env->calls;
    size_t n = b->n_calls;
    /* a session is a process: batches up to POOL calls reuse these */
    enum { POOL = 256 };
    static struct call_out pool[POOL];
    static Vgpu__Wire__Result *resp_pool[POOL];
    static struct iovec iov_pool[POOL * VGPU_CALL_MAX_SEG + 1];
    bool heap = n > POOL;
    struct call_out *outs = heap ? calloc(n, sizeof(*outs)) : pool;
    Vgpu__Wire__Result **resp = heap ? calloc(n, sizeof(*resp)) : resp_pool;
    struct iovec *iov = heap ? calloc(n * VGPU_CALL_MAX_SEG + 1, sizeof(*iov)) : iov_pool;
    Vgpu__Wire__ResultBatch rb = VGPU__WIRE__RESULT_BATCH__INIT;
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    struct vgpu_frame_header h = { .flags = VGPU_FRAME_F_REPLY, .seq = f->hdr.seq };
    uint64_t off = 0;
    /* the envelope's room for what calls return (the decoder bounds n by VGPU_WIRE_MAX_CALLS) */
    size_t env_left = VGPU_WIRE_MAX_ENV - 4096 - n * RESULT_BYTES;
    int niov = 0, rc = -ENOMEM;

    if (!outs || !resp || !iov)
        goto out;
    if (b->device != s->device || (s->context && !b->context)) {
        /* the device's primary context becomes current again */
        int st = cudaSetDevice(b->device);

        if (st == cudaSuccess && b->device != s->device)
            vgpu_work_switch_device(s, b->device);
        s->context = 0;
    }
    /* the driver context the guest's thread has current, checked to be the session's */
    if (b->context && b->context != s->context) {
        int st = vgpu_driver_make_current(s, b->context);

        if (st == 0)
            s->context = b->context;
        else
            vgpu_log(VGPU_LOG_INFO, "context %#llx not made current (CUresult %d): the batch runs "
                     "in the current one", (unsigned long long)b->context, st);
    }
    for (size_t i = 0; i < n; i++) {
        if (!heap)
            call_out_init(&outs[i]);
        exec_call(s, f, b->calls[i], &outs[i], iov, &niov, &off, &env_left);
        resp[i] = &outs[i].res;
    }
    rb.n_results = n;
    if (b->flight) {
        /* a flight of queued calls: only the failures, by their place in the batch */
        rb.failures_only = true;
        rb.n_results = 0;
        for (size_t i = 0; i < n; i++)
            if (outs[i].res.status != cudaSuccess) {
                outs[i].res.index = (uint32_t)i;
                resp[rb.n_results++] = &outs[i].res;
            }
    }
    rb.results = resp;
    /* queued calls the client does not wait for flush nothing it could see now */
    rb.device_output = vgpu_devout_pending(s, !b->flight && s->devout_flush);
    if (!b->flight)
        s->devout_flush = false;    /* a flight's launches wrote for the next waited reply to see */
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_RESULTS;
    env.results = &rb;
    vgpu_work_cover(s);
    rc = s->carrier->reply(s, &h, &env, iov, niov);    /* the way the request came */
    vgpu_work_poll(s);
out:
    for (size_t i = 0; outs && i < n; i++) {
        vgpu_replay_release(&outs[i].r);
        vgpu_arena_free(&outs[i].arena);
    }
    if (heap) {
        free(outs);
        free(resp);
        free(iov);
    }
    return rc;
}

/*
 * One request frame as it came from the carrier: decoded, served, answered.
 * 0, or a negative errno / wire error after which the session ends (logged
 * here).  The in-process handler fuzzer (fuzz/handler_fuzz.c) enters here.
 */
int vgpu_session_serve(struct vgpu_session *s, const uint8_t *buf, size_t len)
{
    /* a session is a process of its own: one scratch for unpacking its requests */
    static max_align_t scratch[(256 << 10) / sizeof(max_align_t)];
    struct vgpu_frame f = { 0 };
    int rc = vgpu_frame_decode_scratch(buf, len, NULL, call_known, NULL, scratch, sizeof(scratch),
                                       &f);

    /* control frames travel on the frame path only: their replies have no compact form */
    if (!rc && f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_CALLS &&
        (f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_CONTROL || s->via_qp))
        rc = VGPU_WIRE_E_MALFORMED;
    if (rc) {
        vgpu_log(VGPU_LOG_WARN, "bad frame from the client, closing: %s", vgpu_wire_strerror(rc));
        vgpu_frame_release(&f);
        return rc;
    }
    if (s->via_qp)
        s->frames_qp++;
    else
        s->frames_path++;
    if (f.env->body_case == VGPU__WIRE__ENVELOPE__BODY_CONTROL)
        rc = vgpu_control_serve(s, &f);
    else
        rc = serve_batch(s, &f);
    vgpu_frame_release(&f);
    if (rc)
        vgpu_log(VGPU_LOG_INFO, "client went away: %s",
                 rc < -1000 ? vgpu_wire_strerror(rc) : strerror(-rc));
    return rc;
}

void vgpu_session_run(int fd, const char *cache_dir, const struct vgpu_identity *who,
                      const char *refuse)
{
    struct vgpu_session s = { .fd = fd, .cache_dir = cache_dir, .device = 0, .devices_used = 1,
                              .who = *who, .refuse = refuse,
                              .pending_fd = -1, .qp_bell = -1 };
    const struct vgpu_pool_cfg *pool;
    int count = 0, rc;

    if (s.who.priority >= VGPU_PRIO_CLASSES)
        s.who.priority = VGPU_PRIO_LOW;
    vgpu_devout_start(&s);     /* fds 1 and 2 take what kernels print; the log keeps stderr */
    vgpu_view_enter(&s);       /* the device as this VM sees it (view.c) */
    if (vgpu_contain_session(&s.who, !vgpu_cfg || !vgpu_cfg->no_contain) < 0)
        return;
    if (vgpu_carrier_start(&s)) {
        vgpu_log(VGPU_LOG_ERROR, "no memory for the session's event loop");
        return;
    }
    if (vgpu_session_handshake(&s)) {
        vgpu_carrier_end(&s);
        return;
    }
    alarm(0);                  /* the handshake's deadline (main.c) */
    /* The pool's GPUs are all this session's CUDA context will ever see. */
    pool = vgpu_config_pool(vgpu_cfg, s.who.pool);
    if (pool && pool->ngpus)
        setenv("CUDA_VISIBLE_DEVICES", pool->gpus_text, 1);

    /* The runtime's answer to a first call: what every call will get if it cannot start. */
    s.init_status = cudaGetDeviceCount(&count);
    if (s.init_status != cudaSuccess)
        vgpu_log(VGPU_LOG_WARN, "CUDA runtime unavailable here: %s", cudaGetErrorString(s.init_status));
    for (;;) {
        uint8_t *buf;
        size_t len;

        if (s.pending_fd >= 0)
            close(s.pending_fd);     /* a passed fd no call took */
        s.pending_fd = -1;
        rc = s.carrier->receive(&s, &buf, &len);
        if (rc == -ECONNRESET)
            break;
        if (rc) {
            vgpu_log(VGPU_LOG_WARN, "reading from the client failed: %s",
                     rc < -1000 ? vgpu_wire_strerror(rc) : strerror(-rc));
            break;
        }
        rc = vgpu_session_serve(&s, buf, len);
        free(buf);
        if (!rc && s.closing) {
            vgpu_log(VGPU_LOG_INFO, "the client closed the session");
            break;
        }
        if (rc)
            break;
    }
    vgpu_log(VGPU_LOG_INFO, "session ends after %llu calls (%llu frames through the queue pair, "
             "%llu on the frame path)", (unsigned long long)s.calls,
             (unsigned long long)s.frames_qp, (unsigned long long)s.frames_path);
    if (s.pending_fd >= 0)
        close(s.pending_fd);
    vgpu_hostcb_end(&s);
    vgpu_devout_log_end(&s);
    vgpu_regions_release(&s);
    vgpu_carrier_end(&s);
    vgpu_sched_leave();
}
