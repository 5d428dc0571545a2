/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver API's streams and events: the fake runtime's records
 * (exec.c), so a CUstream is a cudaStream_t and a CUevent a cudaEvent_t,
 * either API may use what the other made.  Work runs when issued, so
 * synchronizations and queries succeed at once.  Creating and recording
 * need a current context; the rest only cuInit, as a stream or event
 * carries its own context.  Statuses are the runtime's, mapped by
 * vgpu_fake_cu_of (errors.c).
 */
#include "fakecuda_internal.h"

#define STREAM_FLAGS CU_STREAM_NON_BLOCKING
#define EVENT_FLAGS (CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS)

FAKE_EXPORT CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags,
                                                int priority)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!phStream || flags & ~(unsigned)STREAM_FLAGS)
        return CUDA_ERROR_INVALID_VALUE;
    return VGPU_FAKE_CU(vgpu_fake_stream_create(phStream, flags, priority));
}

FAKE_EXPORT CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    return cuStreamCreateWithPriority(phStream, Flags, 0);
}

/* The default streams are no streams to destroy. */
FAKE_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : VGPU_FAKE_CU(cudaStreamDestroy(hStream));
}

FAKE_EXPORT CUresult cuStreamSynchronize(CUstream hStream)
{
    CUresult r = vgpu_fake_cu_init_ok();

    if (!r)
        r = vgpu_fake_capture_sync("cuStreamSynchronize", hStream);
    return r ? r : VGPU_FAKE_CU(cudaStreamSynchronize(hStream));
}

FAKE_EXPORT CUresult cuStreamQuery(CUstream hStream)
{
    CUresult r = vgpu_fake_cu_init_ok();

    if (!r)
        r = vgpu_fake_capture_sync("cuStreamQuery", hStream);
    return r ? r : VGPU_FAKE_CU(cudaStreamQuery(hStream));
}

FAKE_EXPORT CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (Flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    return VGPU_FAKE_CU(cudaStreamWaitEvent(hStream, hEvent, Flags));
}

FAKE_EXPORT CUresult cuStreamGetPriority(CUstream hStream, int *priority)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : VGPU_FAKE_CU(cudaStreamGetPriority(hStream, priority));
}

FAKE_EXPORT CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : VGPU_FAKE_CU(cudaStreamGetFlags(hStream, flags));
}

/* A default stream belongs to the current context. */
FAKE_EXPORT CUresult cuStreamGetCtx(CUstream hStream, CUcontext *pctx)
{
    struct vgpu_fake_stream *s;
    struct vgpu_fake_ctx *c;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!vgpu_fake_stream_ok("cuStreamGetCtx", hStream))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    s = vgpu_fake_stream_of(hStream);
    c = s ? s->ctx : vgpu_fake_ctx_current();
    if (!c || !vgpu_fake_ctx_find((CUcontext)(void *)c))
        return CUDA_ERROR_INVALID_CONTEXT;
    *pctx = (CUcontext)(void *)c;
    return CUDA_SUCCESS;
}

/* Created streams count from 16; the legacy default stream is 0, the per-thread one 1. */
FAKE_EXPORT CUresult cuStreamGetId(CUstream hStream, unsigned long long *streamId)
{
    struct vgpu_fake_stream *s;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!vgpu_fake_stream_ok("cuStreamGetId", hStream))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!streamId)
        return CUDA_ERROR_INVALID_VALUE;
    s = vgpu_fake_stream_of(hStream);
    *streamId = s ? s->id : hStream == CU_STREAM_PER_THREAD ? 1 : 0;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!phEvent || Flags & ~(unsigned)EVENT_FLAGS)
        return CUDA_ERROR_INVALID_VALUE;
    return VGPU_FAKE_CU(cudaEventCreateWithFlags(phEvent, Flags));
}

FAKE_EXPORT CUresult cuEventDestroy_v2(CUevent hEvent)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : VGPU_FAKE_CU(cudaEventDestroy(hEvent));
}

FAKE_EXPORT CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL)
        return CUDA_ERROR_INVALID_VALUE;
    return VGPU_FAKE_CU(cudaEventRecordWithFlags(hEvent, hStream, flags));
}

FAKE_EXPORT CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
    return cuEventRecordWithFlags(hEvent, hStream, 0);
}

FAKE_EXPORT CUresult cuEventSynchronize(CUevent hEvent)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : VGPU_FAKE_CU(cudaEventSynchronize(hEvent));
}

FAKE_EXPORT CUresult cuEventQuery(CUevent hEvent)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : VGPU_FAKE_CU(cudaEventQuery(hEvent));
}

/* Unrecorded events and events without timing: CUDA_ERROR_INVALID_HANDLE, as natively. */
FAKE_EXPORT CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : VGPU_FAKE_CU(cudaEventElapsedTime(pMilliseconds, hStart, hEnd));
}

/* ---- per-thread default stream forms, and the old unversioned names (same ABI) ---- */

#define PT(name, base, params, args)                                                              \
    FAKE_EXPORT CUresult name params;                                                             \
    CUresult name params { return base args; }

PT(cuStreamSynchronize_ptsz, cuStreamSynchronize, (CUstream s), (s))
PT(cuStreamQuery_ptsz, cuStreamQuery, (CUstream s), (s))
PT(cuStreamWaitEvent_ptsz, cuStreamWaitEvent, (CUstream s, CUevent e, unsigned int f), (s, e, f))
PT(cuStreamGetPriority_ptsz, cuStreamGetPriority, (CUstream s, int *p), (s, p))
PT(cuStreamGetFlags_ptsz, cuStreamGetFlags, (CUstream s, unsigned int *f), (s, f))
PT(cuStreamGetCtx_ptsz, cuStreamGetCtx, (CUstream s, CUcontext *c), (s, c))
PT(cuStreamGetId_ptsz, cuStreamGetId, (CUstream s, unsigned long long *id), (s, id))
PT(cuEventRecord_ptsz, cuEventRecord, (CUevent e, CUstream s), (e, s))
PT(cuEventRecordWithFlags_ptsz, cuEventRecordWithFlags, (CUevent e, CUstream s, unsigned int f),
   (e, s, f))

#undef cuStreamDestroy
#undef cuEventDestroy
#undef cuEventElapsedTime
PT(cuStreamDestroy, cuStreamDestroy_v2, (CUstream s), (s))
PT(cuEventDestroy, cuEventDestroy_v2, (CUevent e), (e))
PT(cuEventElapsedTime, cuEventElapsedTime_v2, (float *ms, CUevent a, CUevent b), (ms, a, b))
