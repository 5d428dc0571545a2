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
 * The driver API (driver*.c) is part of the same library, on the same
 * tables: libcuda.so.1 is a link to it.  Every runtime entry point starts
 * with vgpu_fake_rt_ctx(), which initializes the driver and makes the
 * primary context current as the real runtime does.
 *
 * Not thread-safe: vgpu-server calls the runtime from one thread per
 * session process.  (Only the driver's current-context stack is per thread,
 * and host functions run on a thread of their own: hostfn.c.)
 */
#ifndef VGPU_FAKECUDA_INTERNAL_H
#define VGPU_FAKECUDA_INTERNAL_H

#include <cuda.h>
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
/* Writes one diagnostic line (fmt ends in a newline) to the server's log. */
void vgpu_fake_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * What fake kernels print: kept until a synchronizing call, then written to
 * stdout, as the real driver writes a kernel's printf buffer.
 */
void vgpu_fake_devout_add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vgpu_fake_devout_flush(void);
/* Logs "fakecuda: refused FN: ..." and returns vgpu_fake_status(st). */
cudaError_t vgpu_fake_refuse(cudaError_t st, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the tables (tables.c) ---- */

struct vgpu_fake_alloc {
    uintptr_t base;
    size_t size;
    bool freeable;             /* from a cudaMalloc*; variables are not */
    bool managed;              /* cudaMallocManaged: mapped in the managed window (managed.c) */
    struct vgpu_fake_ctx *ctx; /* current when it was made (NULL: none) */
};

struct vgpu_fake_stream {
    unsigned flags;
    int priority;
    unsigned long long id;
    struct vgpu_fake_ctx *ctx; /* current when it was made (NULL: none) */
    struct vgpu_fake_capture *capture; /* its capture sequence (driver_graph.c), or NULL */
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
    bool managed;              /* a __managed__ variable: host is the program's pointer to it */
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
/* The allocation holding p, or NULL. */
struct vgpu_fake_alloc *vgpu_fake_alloc_of(const void *p);
void vgpu_fake_alloc_remove(struct vgpu_fake_alloc *a);
/* True when [p, p+len) lies inside one entry (len 0: p inside, or at its end). */
bool vgpu_fake_is_dev(const void *p, size_t len);
/* Is [p, p+len) inside host memory registered mapped (its device pointer is p)? */
bool vgpu_fake_is_mapped(const void *p, size_t len);
/* The entry holding byte p (not its end), or NULL. */
struct vgpu_fake_alloc *vgpu_fake_alloc_holding(const void *p);
/* Frees every freeable allocation (cudaDeviceReset). */
void vgpu_fake_alloc_reset(void);
uint64_t vgpu_fake_mem_used(void);

/* True when [p, p+len) lies in accessible mappings (cuMemMap, cuMemSetAccess; driver_vmm.c). */
bool vgpu_fake_vmm_covers(const void *p, size_t len);
/* Bytes of the physical allocations cuMemCreate made that still live. */
uint64_t vgpu_fake_vmm_used(void);
/* The accessible mapping holding byte p: true with its start and size. */
bool vgpu_fake_vmm_span(const void *p, uintptr_t *base, size_t *size);
/* A freed allocation: the memory pool it came from, if any, is told (driver_pool.c). */
void vgpu_fake_pool_freed(const void *p);

/* The checks the API functions run: false (after logging) when unknown. */
bool vgpu_fake_dev_ok(const char *fn, const void *p, size_t len);
bool vgpu_fake_stream_ok(const char *fn, cudaStream_t s);
struct vgpu_fake_event *vgpu_fake_event_find(const char *fn, cudaEvent_t e);
struct vgpu_fake_fn *vgpu_fake_fn_find(const char *fn, const void *host, bool is_var);

/* ---- shared by the runtime (memory.c, exec.c) and the driver (driver*.c) ----
 * These return cudaError_t and record it as the runtime's last error; a
 * driver function calls them through VGPU_FAKE_CU, which maps the status
 * (vgpu_fake_cu_of) and leaves the runtime's last error alone. */

/* 256-byte aligned "device" memory; *p NULL for size 0. */
cudaError_t vgpu_fake_malloc(void **p, size_t size);
/* fake_tex_read's source (array.c): n ints of texture tex's texels in row order, or NULL. */
const void *vgpu_fake_texels(unsigned long long tex, size_t n);
/* Managed memory (managed.c): size bytes in the managed window, or NULL; and back. */
void *vgpu_fake_managed_map(size_t size);
void vgpu_fake_managed_unmap(void *p, size_t size);
/* p must start an allocation (NULL: nothing to do). */
cudaError_t vgpu_fake_free(const char *fn, void *p);
/*
 * height rows of width bytes; kind says which sides are device memory
 * (cudaMemcpyDefault: looked up).  Device spans are checked whole first.
 */
cudaError_t vgpu_fake_copy2d(const char *fn, void *dst, size_t dpitch, const void *src,
                             size_t spitch, size_t width, size_t height, enum cudaMemcpyKind kind);
/* height rows of width elements of elem (1, 2 or 4) bytes, each set to value. */
cudaError_t vgpu_fake_memset2d(const char *fn, void *p, size_t pitch, uint32_t value, size_t elem,
                               size_t width, size_t height, cudaStream_t stream);
cudaError_t vgpu_fake_stream_create(cudaStream_t *s, unsigned flags, int priority);
/* The stream's record, or NULL for the default stream and its aliases (checked before). */
struct vgpu_fake_stream *vgpu_fake_stream_of(cudaStream_t s);

/* A fake kernel (exec.c): its parameter layout and what it does. */
struct vgpu_fake_kernel {
    const char *name;
    int nparams;
    uint32_t off[4], size[4];
    cudaError_t (*run)(void **args);
};
/* The fake kernel a device name stands for (plain or Itanium-mangled), or NULL. */
const struct vgpu_fake_kernel *vgpu_fake_kernel_named(const char *name);
/* Grid and block checks of a launch: cudaSuccess or cudaErrorInvalidConfiguration. */
cudaError_t vgpu_fake_launch_config(dim3 grid, dim3 block);

/* The device's properties (device.c); attributes derived from them. */
void vgpu_fake_props(struct cudaDeviceProp *p);
/* 0 and *value for a CUdevice_attribute (== cudaDeviceAttr), -EINVAL for an unknown one. */
int vgpu_fake_attribute(int attr, int *value);

/* ---- the driver side (driver.c) ---- */

/* A context: bookkeeping only, all share the one memory space. */
struct vgpu_fake_ctx {
    unsigned flags;
    bool primary;
    unsigned long long id;
    size_t limits[CU_LIMIT_MAX];
    CUfunc_cache cache;
    struct vgpu_fake_ctx *next;
};

/*
 * What the real runtime does on its first call and in cudaSetDevice: the
 * driver counts as initialized, the runtime holds the primary context
 * (once) and makes it current on this thread when none is.
 */
void vgpu_fake_rt_ctx(void);
/* This thread's current context if it still lives, else NULL. */
struct vgpu_fake_ctx *vgpu_fake_ctx_current(void);
/* CUDA_ERROR_NOT_INITIALIZED before cuInit, CUDA_ERROR_INVALID_CONTEXT without a current one. */
CUresult vgpu_fake_cu_ready(void);
CUresult vgpu_fake_cu_init_ok(void);
/* ctx if it is a live context of this process, else NULL. */
struct vgpu_fake_ctx *vgpu_fake_ctx_find(CUcontext ctx);

/* hostfn.c: waits until no host function is queued or running (every API call's gate). */
void vgpu_fake_hostfn_drain(void);
/* A host node's function, run on the host functions' thread; returns once it returned. */
CUresult vgpu_fake_host_node_run(void (*fn)(void *), void *data);
/* A function queued for the host functions' thread, not waited for (a user object's destructor). */
void vgpu_fake_host_fn_later(void (*fn)(void *), void *data);
/* user_object.c: an owner's (a graph's, an executable's) references taken by another, or gone. */
void vgpu_fake_uobj_copy(const void *from, const void *to);
void vgpu_fake_uobj_owner_gone(const void *owner);
/*
 * ipc.c: device memory is whole pages of its own (so that cuIpcGetMemHandle
 * can share them with another process); dev_unmap also ends its sharing.
 */
void *vgpu_fake_dev_map(size_t size);
void vgpu_fake_dev_unmap(void *p, size_t size);
/* driver_graph.c: h is a live graph. */
bool vgpu_fake_graph_known(CUgraph h);

/* errors.c: the one map from the shared helpers' cudaError_t to CUresult. */
CUresult vgpu_fake_cu_of(cudaError_t st);
void vgpu_fake_quiet_begin(void);
/* True while a driver call runs a shared helper or runtime function. */
bool vgpu_fake_in_driver(void);
CUresult vgpu_fake_quiet_end(cudaError_t st);
/* A shared helper's status as a CUresult; the runtime's last error stays as it was. */
#define VGPU_FAKE_CU(call) (vgpu_fake_quiet_begin(), vgpu_fake_quiet_end(call))
/* A line in the driver's log (cuLogsDumpToMemory) alone: an error the driver answers as such. */
void vgpu_fake_log(const char *fn, const char *why);
/* Logs "fakecuda: refused FN: ..." (aborting under VGPU_FAKE_ABORT_ON_REFUSE); returns r. */
CUresult vgpu_fake_cu_refuse(CUresult r, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- stream capture and graphs (driver_graph.c) ---- */

/* One operation as a graph node holds it, to be run at each launch of the graph. */
struct vgpu_fake_op {
    enum { VGPU_FAKE_OP_EMPTY, VGPU_FAKE_OP_KERNEL, VGPU_FAKE_OP_MEMSET, VGPU_FAKE_OP_COPY,
           VGPU_FAKE_OP_GRAPH, VGPU_FAKE_OP_EVENT, VGPU_FAKE_OP_HOST, VGPU_FAKE_OP_MEM_ALLOC,
           VGPU_FAKE_OP_MEM_FREE, VGPU_FAKE_OP_COND } kind;
    struct vgpu_fake_cond_run *cond;  /* an executable's conditional node: its bodies' operations */
    const struct vgpu_fake_kernel *kernel;
    CUfunction func;           /* the function (or CUkernel) a kernel node was given */
    unsigned grid[3], block[3], shmem;
    unsigned char args[32];    /* the kernel's parameters, at its layout's offsets */
    void *dst;
    const void *src;
    size_t pitch, spitch, width, height, elem;
    uint32_t value;
    enum cudaMemcpyKind dir;
    CUevent event;             /* an event record node's */
    void (*host)(void *);      /* a host node's function and its data */
    void *host_data;
};

/*
 * When stream s captures, op becomes the capture's next node (depending on
 * the one before) and this returns true with *r its status; otherwise false
 * and the caller runs op now.
 */
bool vgpu_fake_captured(CUstream s, const struct vgpu_fake_op *op, CUresult *r);
/*
 * Conditional nodes' handles (driver_graph.c): sets the value of handle h
 * (a fake kernel's cudaGraphSetConditional); false if h is no handle.
 */
bool vgpu_fake_cond_set(unsigned long long h, unsigned value);
/*
 * Stream-ordered allocation and free on stream s (both APIs): while s
 * captures they become allocation and free nodes (the memory of an
 * allocation node is taken when the node is made, at a fixed address, and
 * kept for the process's life); otherwise they run now.
 */
CUresult vgpu_fake_alloc_async(const char *fn, void **p, size_t size, CUstream s);
/*
 * A free (outside a capture) of p: true if p is a graph allocation, which
 * is then no longer in use (what cuDeviceGetGraphMemAttribute counts).
 */
bool vgpu_fake_graph_free(const void *p);
/* Is p in a graph allocation that is not in use (its address reserved, nothing mapped there)? */
bool vgpu_fake_graph_unused(const void *p);
CUresult vgpu_fake_free_async(const char *fn, void *p, CUstream s);
/* The same for a copy (vgpu_fake_copy2d's arguments), its device spans checked first. */
bool vgpu_fake_capture_copy(const char *fn, void *dst, size_t dpitch, const void *src,
                            size_t spitch, size_t width, size_t height, enum cudaMemcpyKind kind,
                            CUstream s, CUresult *r);
/*
 * A potentially unsafe call (a synchronous copy, an allocation) while this
 * thread may not make one (a capture not begun relaxed, and this thread's
 * mode not relaxed): CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, and the
 * captures that forbade it are invalidated, as the driver does.
 */
CUresult vgpu_fake_capture_unsafe(const char *fn);
/* A kernel node's operation: the function (or CUkernel) and its parameters checked and copied. */
CUresult vgpu_fake_kernel_op(const char *fn, CUfunction h, void **params, void **extra,
                             struct vgpu_fake_op *op);
/* The CUfunction of a kernel the runtime registered by name (driver_exec.c): 0, or -1. */
int vgpu_fake_runtime_function(const char *name, CUfunction *out);
/* Synchronizing with or querying a capturing stream: the same error and invalidation. */
CUresult vgpu_fake_capture_sync(const char *fn, CUstream s);

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
