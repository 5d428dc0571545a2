/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fakecuda: a stand-in for NVIDIA's libcudart.so.13 that vgpu-server loads
 * on machines without a GPU (tests only).  One fake device whose "device
 * memory" is host memory of the calling process; work runs synchronously,
 * so streams and events are bookkeeping.  What it does, function by
 * function, is in each file's header comment; this header is what the
 * files share.
 *
 * The fake never trusts a pointer or handle it did not hand out: each is
 * looked up in its tables before use.  An unknown one is refused with the
 * status the real runtime gives and a line on stderr starting
 * "fakecuda: refused" -- vgpu-server checks every guest value before CUDA
 * sees it, so in a server log that line means a check is missing.  With
 * VGPU_FAKE_ABORT_ON_REFUSE set in the environment the fake aborts after that
 * line, so a test sees the session die rather than a status the server could
 * have given itself (tests/server/server_input_test.c).
 *
 * Not thread-safe: vgpu-server calls the runtime from one thread per
 * session process.
 */
#ifndef VGPU_FAKECUDA_INTERNAL_H
#define VGPU_FAKECUDA_INTERNAL_H

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_EXPORT __attribute__((visibility("default")))

/* The one device: 2 GiB of "global memory". */
#define VGPU_FAKE_TOTAL_MEM (2ull << 30)
#define VGPU_FAKE_DEVICE_NAME "vgpu fake device"

/* ---- errors (errors.c) ---- */

/* Records st as this thread's last error when it is one; returns st. */
cudaError_t vgpu_fake_status(cudaError_t st);
/* Logs "fakecuda: refused FN: ..." and returns vgpu_fake_status(st). */
cudaError_t vgpu_fake_refuse(cudaError_t st, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the tables (tables.c) ---- */

struct vgpu_fake_alloc {
    uintptr_t base;
    size_t size;
    bool freeable;             /* from a cudaMalloc*; variables are not */
};

struct vgpu_fake_stream {
    unsigned flags;
    int priority;
    struct vgpu_fake_stream *next;
};

struct vgpu_fake_event {
    unsigned flags;
    bool recorded;
    double when_ms;            /* CLOCK_MONOTONIC at the last record */
    struct vgpu_fake_event *next;
};

struct vgpu_fake_module {
    struct vgpu_fake_module *next;
};

/* A kernel or a variable, by the host address it was registered under. */
struct vgpu_fake_fn {
    const void *host;
    struct vgpu_fake_module *module;
    char *name;                /* the device-side name */
    bool is_var;
    void *dev;                 /* variables: their device memory */
    size_t size;
    struct vgpu_fake_fn *next;
};

extern struct vgpu_fake_stream *vgpu_fake_streams;
extern struct vgpu_fake_event *vgpu_fake_events;
extern struct vgpu_fake_module *vgpu_fake_modules;
extern struct vgpu_fake_fn *vgpu_fake_fns;

/* Device memory: allocations and variables. */
int vgpu_fake_alloc_add(void *base, size_t size, bool freeable);
/* The entry that starts at base, or NULL. */
struct vgpu_fake_alloc *vgpu_fake_alloc_at(const void *base);
void vgpu_fake_alloc_remove(struct vgpu_fake_alloc *a);
/* True when [p, p+len) lies inside one entry (len 0: p inside, or at its end). */
bool vgpu_fake_is_dev(const void *p, size_t len);
/* Frees every freeable allocation (cudaDeviceReset). */
void vgpu_fake_alloc_reset(void);
uint64_t vgpu_fake_mem_used(void);

/* The checks the API functions run: false (after logging) when unknown. */
bool vgpu_fake_dev_ok(const char *fn, const void *p, size_t len);
bool vgpu_fake_stream_ok(const char *fn, cudaStream_t s);
struct vgpu_fake_event *vgpu_fake_event_find(const char *fn, cudaEvent_t e);
struct vgpu_fake_fn *vgpu_fake_fn_find(const char *fn, const void *host, bool is_var);

/* ---- _ptsz / _ptds entry points, which cuda_runtime_api.h declares only
 * under CUDA_API_PER_THREAD_DEFAULT_STREAM ---- */
cudaError_t cudaLaunchKernel_ptsz(const void *func, dim3 gridDim, dim3 blockDim, void **args,
                                  size_t sharedMem, cudaStream_t stream);
cudaError_t cudaLaunchCooperativeKernel_ptsz(const void *func, dim3 gridDim, dim3 blockDim,
                                             void **args, size_t sharedMem, cudaStream_t stream);
cudaError_t cudaStreamSynchronize_ptsz(cudaStream_t stream);
cudaError_t cudaStreamQuery_ptsz(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent_ptsz(cudaStream_t stream, cudaEvent_t event, unsigned int flags);
cudaError_t cudaStreamGetPriority_ptsz(cudaStream_t hStream, int *priority);
cudaError_t cudaStreamGetFlags_ptsz(cudaStream_t hStream, unsigned int *flags);
cudaError_t cudaStreamGetDevice_ptsz(cudaStream_t hStream, int *device);
cudaError_t cudaEventRecord_ptsz(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventRecordWithFlags_ptsz(cudaEvent_t event, cudaStream_t stream,
                                          unsigned int flags);
cudaError_t cudaMemset_ptds(void *devPtr, int value, size_t count);
cudaError_t cudaMemsetAsync_ptsz(void *devPtr, int value, size_t count, cudaStream_t stream);
cudaError_t cudaMemset2D_ptds(void *devPtr, size_t pitch, int value, size_t width, size_t height);
cudaError_t cudaMemset2DAsync_ptsz(void *devPtr, size_t pitch, int value, size_t width,
                                   size_t height, cudaStream_t stream);

/* ---- registration (crt/host_runtime.h declares these for C++ only) ---- */
void **__cudaRegisterFatBinary(void *fatCubin);
void __cudaRegisterFatBinaryEnd(void **handle);
void __cudaUnregisterFatBinary(void **handle);
void __cudaRegisterFunction(void **handle, const char *hostFun, char *deviceFun,
                            const char *deviceName, int thread_limit, uint3 *tid, uint3 *bid,
                            dim3 *bDim, dim3 *gDim, int *wSize);
void __cudaRegisterVar(void **handle, char *hostVar, char *deviceAddress, const char *deviceName,
                       int ext, size_t size, int constant, int global);

#endif
