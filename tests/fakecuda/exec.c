/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streams, events, registration and launches.  Work runs when it is
 * issued, so a stream or event is only bookkeeping: queries and
 * synchronizations succeed at once, an event remembers the time of its
 * last record (for cudaEventElapsedTime).
 *
 * Registration records modules, kernels and variables by the host address
 * they were registered under; a variable gets zeroed device memory of its
 * size.  A launch runs nothing, except the fake kernels below, chosen by
 * the kernel's device name (plain, or the identifier of an Itanium-mangled
 * name: _Z9fake_fillPhjm is fake_fill).  cudaFuncGetParamInfo reports a
 * fake kernel's parameters as listed; every other kernel has none, so a
 * caller packing arguments by that layout (the shim) reads none of them.
 *
 *   fake_fill(void *p, unsigned int value, size_t n)
 *       offsets 0, 8, 16; sizes 8, 4, 8.  Sets the n bytes at p to
 *       value & 0xff.  A range outside the process's device memory is a
 *       fault: nothing is written, the launch returns cudaErrorIllegalAddress
 *       and "fakecuda: fault" is logged.
 *   fake_add(int *dst, const int *a, const int *b, int n)
 *       offsets 0, 8, 16, 24; sizes 8, 8, 8, 4.  dst[i] = a[i] + b[i] for
 *       i < n; faults like fake_fill.
 *   fake_cond_count(cudaGraphConditionalHandle h, int *counter)
 *       offsets 0, 8; sizes 8, 8.  Decrements counter[0] and sets the
 *       conditional node handle h to 1 while it stays above 0, else 0 (a
 *       loop's body counting down); faults like fake_fill.
 *   fake_print(int tag, int lines)
 *       offsets 0, 4; sizes 4, 4.  "Prints" lines lines "kernel TAG: line
 *       I" as a kernel's printf: kept until the next synchronizing call
 *       (cudaDeviceSynchronize, cudaStreamSynchronize, cudaMemcpy,
 *       cuCtxSynchronize), then written to stdout.
 *
 * The driver's modules and launches (driver_exec.c) use the same kernels
 * and stream records.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fakecuda_internal.h"

#define PRIO_LEAST 0
#define PRIO_GREATEST (-5)

static double now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- streams ---- */

cudaError_t vgpu_fake_stream_create(cudaStream_t *s, unsigned flags, int priority)
{
    static unsigned long long next_id = 16;   /* above the default streams' ids */
    struct vgpu_fake_stream *f;

    if (!s)
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (!(f = calloc(1, sizeof(*f))))
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    f->flags = flags;
    f->priority = priority > PRIO_LEAST ? PRIO_LEAST :
                  priority < PRIO_GREATEST ? PRIO_GREATEST : priority;
    f->id = next_id++;
    f->ctx = vgpu_fake_ctx_current();
    f->next = vgpu_fake_streams;
    vgpu_fake_streams = f;
    *s = (cudaStream_t)(void *)f;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaStreamCreate(cudaStream_t *pStream)
{
    vgpu_fake_rt_ctx();
    return vgpu_fake_stream_create(pStream, cudaStreamDefault, 0);
}

FAKE_EXPORT cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags)
{
    vgpu_fake_rt_ctx();
    return vgpu_fake_stream_create(pStream, flags, 0);
}

FAKE_EXPORT cudaError_t cudaStreamCreateWithPriority(cudaStream_t *pStream, unsigned int flags,
                                                     int priority)
{
    vgpu_fake_rt_ctx();
    return vgpu_fake_stream_create(pStream, flags, priority);
}

FAKE_EXPORT cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    for (struct vgpu_fake_stream **p = &vgpu_fake_streams; *p; p = &(*p)->next)
        if ((void *)*p == (void *)stream) {
            struct vgpu_fake_stream *f = *p;

            *p = f->next;
            free(f);
            return cudaSuccess;
        }
    if (stream == NULL || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
        return vgpu_fake_status(cudaErrorInvalidResourceHandle);
    return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, "cudaStreamDestroy",
                            "unknown stream %p", (void *)stream);
}

FAKE_EXPORT cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    vgpu_fake_devout_flush();
    return vgpu_fake_stream_ok("cudaStreamSynchronize", stream) ? cudaSuccess
                                                                : cudaErrorInvalidResourceHandle;
}

FAKE_EXPORT cudaError_t cudaStreamSynchronize_ptsz(cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return cudaStreamSynchronize(stream);
}

FAKE_EXPORT cudaError_t cudaStreamQuery(cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return vgpu_fake_stream_ok("cudaStreamQuery", stream) ? cudaSuccess
                                                          : cudaErrorInvalidResourceHandle;
}

FAKE_EXPORT cudaError_t cudaStreamQuery_ptsz(cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return cudaStreamQuery(stream);
}

FAKE_EXPORT cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    vgpu_fake_rt_ctx();
    (void)flags;
    if (!vgpu_fake_stream_ok("cudaStreamWaitEvent", stream))
        return cudaErrorInvalidResourceHandle;
    return vgpu_fake_event_find("cudaStreamWaitEvent", event) ? cudaSuccess
                                                              : cudaErrorInvalidResourceHandle;
}

FAKE_EXPORT cudaError_t cudaStreamWaitEvent_ptsz(cudaStream_t stream, cudaEvent_t event,
                                                 unsigned int flags)
{
    vgpu_fake_rt_ctx();
    return cudaStreamWaitEvent(stream, event, flags);
}

struct vgpu_fake_stream *vgpu_fake_stream_of(cudaStream_t s)
{
    return s == NULL || s == cudaStreamLegacy || s == cudaStreamPerThread
               ? NULL : (struct vgpu_fake_stream *)(void *)s;
}

FAKE_EXPORT cudaError_t cudaStreamGetPriority(cudaStream_t hStream, int *priority)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaStreamGetPriority", hStream))
        return cudaErrorInvalidResourceHandle;
    if (!priority)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *priority = vgpu_fake_stream_of(hStream) ? vgpu_fake_stream_of(hStream)->priority : 0;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaStreamGetPriority_ptsz(cudaStream_t hStream, int *priority)
{
    vgpu_fake_rt_ctx();
    return cudaStreamGetPriority(hStream, priority);
}

FAKE_EXPORT cudaError_t cudaStreamGetFlags(cudaStream_t hStream, unsigned int *flags)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaStreamGetFlags", hStream))
        return cudaErrorInvalidResourceHandle;
    if (!flags)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *flags = vgpu_fake_stream_of(hStream) ? vgpu_fake_stream_of(hStream)->flags : cudaStreamDefault;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaStreamGetFlags_ptsz(cudaStream_t hStream, unsigned int *flags)
{
    vgpu_fake_rt_ctx();
    return cudaStreamGetFlags(hStream, flags);
}

FAKE_EXPORT cudaError_t cudaStreamGetDevice(cudaStream_t hStream, int *device)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaStreamGetDevice", hStream))
        return cudaErrorInvalidResourceHandle;
    if (!device)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *device = 0;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaStreamGetDevice_ptsz(cudaStream_t hStream, int *device)
{
    vgpu_fake_rt_ctx();
    return cudaStreamGetDevice(hStream, device);
}

/* ---- events ---- */

FAKE_EXPORT cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    vgpu_fake_rt_ctx();
    struct vgpu_fake_event *f;

    if (!event)
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (!(f = calloc(1, sizeof(*f))))
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    f->flags = flags;
    f->next = vgpu_fake_events;
    vgpu_fake_events = f;
    *event = (cudaEvent_t)(void *)f;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaEventCreate(cudaEvent_t *event)
{
    vgpu_fake_rt_ctx();
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

FAKE_EXPORT cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream,
                                                 unsigned int flags)
{
    vgpu_fake_rt_ctx();
    struct vgpu_fake_event *e = vgpu_fake_event_find("cudaEventRecord", event);

    (void)flags;
    if (!e || !vgpu_fake_stream_ok("cudaEventRecord", stream))
        return cudaErrorInvalidResourceHandle;
    e->recorded = true;
    e->when_ms = now_ms();
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaEventRecordWithFlags_ptsz(cudaEvent_t event, cudaStream_t stream,
                                                      unsigned int flags)
{
    vgpu_fake_rt_ctx();
    return cudaEventRecordWithFlags(event, stream, flags);
}

FAKE_EXPORT cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return cudaEventRecordWithFlags(event, stream, 0);
}

FAKE_EXPORT cudaError_t cudaEventRecord_ptsz(cudaEvent_t event, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return cudaEventRecordWithFlags(event, stream, 0);
}

FAKE_EXPORT cudaError_t cudaEventQuery(cudaEvent_t event)
{
    vgpu_fake_rt_ctx();
    return vgpu_fake_event_find("cudaEventQuery", event) ? cudaSuccess
                                                         : cudaErrorInvalidResourceHandle;
}

FAKE_EXPORT cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    vgpu_fake_rt_ctx();
    return vgpu_fake_event_find("cudaEventSynchronize", event) ? cudaSuccess
                                                               : cudaErrorInvalidResourceHandle;
}

FAKE_EXPORT cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    vgpu_fake_rt_ctx();
    struct vgpu_fake_event *a = vgpu_fake_event_find("cudaEventElapsedTime", start);
    struct vgpu_fake_event *b = a ? vgpu_fake_event_find("cudaEventElapsedTime", end) : NULL;

    if (!a || !b)
        return cudaErrorInvalidResourceHandle;
    if (!ms)
        return vgpu_fake_status(cudaErrorInvalidValue);
    if ((a->flags | b->flags) & cudaEventDisableTiming || !a->recorded || !b->recorded)
        return vgpu_fake_status(cudaErrorInvalidResourceHandle);
    *ms = (float)(b->when_ms - a->when_ms);
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    vgpu_fake_rt_ctx();
    for (struct vgpu_fake_event **p = &vgpu_fake_events; *p; p = &(*p)->next)
        if ((void *)*p == (void *)event) {
            struct vgpu_fake_event *f = *p;

            *p = f->next;
            free(f);
            return cudaSuccess;
        }
    vgpu_fake_event_find("cudaEventDestroy", event);    /* logs an unknown one */
    return cudaErrorInvalidResourceHandle;
}

/* ---- registration ---- */

static struct vgpu_fake_module *module_of(void **handle)
{
    for (struct vgpu_fake_module *m = vgpu_fake_modules; m; m = m->next)
        if ((void *)m == (void *)handle)
            return m;
    vgpu_fake_diag("fakecuda: refused registration: unknown module handle %p\n", (void *)handle);
    return NULL;
}

FAKE_EXPORT void **__cudaRegisterFatBinary(void *fatCubin)
{
    struct vgpu_fake_module *m = calloc(1, sizeof(*m));

    (void)fatCubin;                     /* the image is not read */
    if (!m)
        return NULL;
    m->next = vgpu_fake_modules;
    vgpu_fake_modules = m;
    return (void **)(void *)m;
}

FAKE_EXPORT void __cudaRegisterFatBinaryEnd(void **handle)
{
    module_of(handle);
}

FAKE_EXPORT void __cudaUnregisterFatBinary(void **handle)
{
    struct vgpu_fake_module *m = module_of(handle);

    if (!m)
        return;
    for (struct vgpu_fake_fn **p = &vgpu_fake_fns; *p;) {
        struct vgpu_fake_fn *f = *p;

        if (f->module != m) {
            p = &f->next;
            continue;
        }
        *p = f->next;
        if (f->dev) {
            struct vgpu_fake_alloc *a = vgpu_fake_alloc_at(f->dev);

            if (a)
                vgpu_fake_alloc_remove(a);
            free(f->dev);
        }
        free(f->name);
        free(f);
    }
    for (struct vgpu_fake_module **p = &vgpu_fake_modules; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    free(m);
}

static void register_fn(void **handle, const void *host, const char *name, bool is_var, size_t size,
                        bool managed)
{
    struct vgpu_fake_module *m = module_of(handle);
    struct vgpu_fake_fn *f;

    if (!m || !host || !name)
        return;
    for (f = vgpu_fake_fns; f; f = f->next)
        if (f->host == host)
            return;                     /* the first registration stands */
    if (!(f = calloc(1, sizeof(*f))) || !(f->name = strdup(name)))
        goto fail;
    if (managed && (!(f->dev = vgpu_fake_managed_map(size)) ||
                    vgpu_fake_alloc_add(f->dev, size, false))) {
        if (f->dev)
            vgpu_fake_managed_unmap(f->dev, size);
        f->dev = NULL;
        goto fail;
    }
    if (!managed && is_var && (posix_memalign(&f->dev, 256, size ? size : 1) ||
                               vgpu_fake_alloc_add(f->dev, size, false)))
        goto fail;
    if (f->dev)
        memset(f->dev, 0, size);
    f->managed = managed;
    f->host = host;
    f->module = m;
    f->is_var = is_var;
    f->size = size;
    f->next = vgpu_fake_fns;
    vgpu_fake_fns = f;
    return;
fail:
    vgpu_fake_diag("fakecuda: out of memory registering %s\n", name);
    if (f) {
        free(f->dev);
        free(f->name);
    }
    free(f);
}

FAKE_EXPORT void __cudaRegisterFunction(void **handle, const char *hostFun, char *deviceFun,
                                        const char *deviceName, int thread_limit, uint3 *tid,
                                        uint3 *bid, dim3 *bDim, dim3 *gDim, int *wSize)
{
    (void)deviceFun; (void)thread_limit; (void)tid; (void)bid; (void)bDim; (void)gDim; (void)wSize;
    register_fn(handle, hostFun, deviceName, false, 0, false);
}

FAKE_EXPORT void __cudaRegisterVar(void **handle, char *hostVar, char *deviceAddress,
                                   const char *deviceName, int ext, size_t size, int constant,
                                   int global)
{
    (void)deviceAddress; (void)ext; (void)constant; (void)global;
    register_fn(handle, hostVar, deviceName, true, size, false);
}

/* Its memory in the managed window; __cudaInitModule (managed.c) points *hostVarPtrAddress at it. */
FAKE_EXPORT void __cudaRegisterManagedVar(void **handle, void **hostVarPtrAddress,
                                          char *deviceAddress, const char *deviceName, int ext,
                                          size_t size, int constant, int global)
{
    (void)deviceAddress; (void)ext; (void)constant; (void)global;
    register_fn(handle, hostVarPtrAddress, deviceName, true, size, true);
}

/* ---- kernels ---- */

static cudaError_t fake_fill(void **args);
static cudaError_t fake_add(void **args);
static cudaError_t fake_print(void **args);
static cudaError_t fake_tex_read(void **args);
static cudaError_t fake_cond_count(void **args);

static const struct vgpu_fake_kernel fake_kernels[] = {
    { "fake_cond_count", 2, { 0, 8 }, { 8, 8 }, fake_cond_count },
    { "fake_fill", 3, { 0, 8, 16 }, { 8, 4, 8 }, fake_fill },
    { "fake_add", 4, { 0, 8, 16, 24 }, { 8, 8, 8, 4 }, fake_add },
    { "fake_print", 2, { 0, 4 }, { 4, 4 }, fake_print },
    { "fake_tex_read", 3, { 0, 8, 16 }, { 8, 8, 4 }, fake_tex_read },
};

/* True when a kernel's device name stands for id: itself, or an Itanium name's identifier. */
static bool name_is(const char *name, const char *id)
{
    size_t n = 0;

    if (name[0] != '_' || name[1] != 'Z')
        return !strcmp(name, id);
    for (name += 2; *name >= '0' && *name <= '9' && n < 4096; name++)
        n = n * 10 + (size_t)(*name - '0');
    return n == strlen(id) && !strncmp(name, id, n);
}

const struct vgpu_fake_kernel *vgpu_fake_kernel_named(const char *name)
{
    for (size_t i = 0; i < sizeof(fake_kernels) / sizeof(fake_kernels[0]); i++)
        if (name_is(name, fake_kernels[i].name))
            return &fake_kernels[i];
    return NULL;
}

static const struct vgpu_fake_kernel *fake_kernel_of(const struct vgpu_fake_fn *f)
{
    return vgpu_fake_kernel_named(f->name);
}

FAKE_EXPORT cudaError_t cudaFuncGetParamInfo(const void *func, size_t paramIndex,
                                             size_t *paramOffset, size_t *paramSize)
{
    vgpu_fake_rt_ctx();
    struct vgpu_fake_fn *f = vgpu_fake_fn_find("cudaFuncGetParamInfo", func, false);
    const struct vgpu_fake_kernel *k;

    if (!f)
        return cudaErrorInvalidDeviceFunction;
    k = fake_kernel_of(f);
    /* past the last parameter: how callers find the end of the list */
    if (!k || paramIndex >= (size_t)k->nparams)
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (paramOffset)
        *paramOffset = k->off[paramIndex];
    if (paramSize)
        *paramSize = k->size[paramIndex];
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_fn_find("cudaFuncGetAttributes", func, false))
        return cudaErrorInvalidDeviceFunction;
    if (!attr)
        return vgpu_fake_status(cudaErrorInvalidValue);
    memset(attr, 0, sizeof(*attr));
    attr->maxThreadsPerBlock = 1024;
    attr->numRegs = 16;
    attr->ptxVersion = 90;
    attr->binaryVersion = 90;
    attr->maxDynamicSharedSizeBytes = 48 << 10;
    attr->preferredShmemCarveout = -1;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value)
{
    vgpu_fake_rt_ctx();
    (void)attr; (void)value;
    return vgpu_fake_fn_find("cudaFuncSetAttribute", func, false) ? cudaSuccess
                                                                  : cudaErrorInvalidDeviceFunction;
}

FAKE_EXPORT cudaError_t cudaFuncSetCacheConfig(const void *func, enum cudaFuncCache cacheConfig)
{
    vgpu_fake_rt_ctx();
    (void)cacheConfig;
    return vgpu_fake_fn_find("cudaFuncSetCacheConfig", func, false) ? cudaSuccess
                                                                    : cudaErrorInvalidDeviceFunction;
}

FAKE_EXPORT cudaError_t cudaFuncSetSharedMemConfig(const void *func, enum cudaSharedMemConfig config)
{
    vgpu_fake_rt_ctx();
    (void)config;
    return vgpu_fake_fn_find("cudaFuncSetSharedMemConfig", func, false)
               ? cudaSuccess : cudaErrorInvalidDeviceFunction;
}

FAKE_EXPORT cudaError_t cudaFuncGetName(const char **name, const void *func)
{
    vgpu_fake_rt_ctx();
    struct vgpu_fake_fn *f = vgpu_fake_fn_find("cudaFuncGetName", func, false);

    if (!f)
        return cudaErrorInvalidDeviceFunction;
    if (!name)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *name = f->name;
    return cudaSuccess;
}

static cudaError_t occupancy(const char *fn, int *numBlocks, const void *func, int blockSize)
{
    if (!vgpu_fake_fn_find(fn, func, false))
        return cudaErrorInvalidDeviceFunction;
    if (!numBlocks || blockSize <= 0 || blockSize > 1024)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *numBlocks = 2048 / blockSize > 32 ? 32 : 2048 / blockSize;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, const void *func,
                                                                      int blockSize,
                                                                      size_t dynamicSMemSize)
{
    vgpu_fake_rt_ctx();
    (void)dynamicSMemSize;
    return occupancy("cudaOccupancyMaxActiveBlocksPerMultiprocessor", numBlocks, func, blockSize);
}

FAKE_EXPORT cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
    int *numBlocks, const void *func, int blockSize, size_t dynamicSMemSize, unsigned int flags)
{
    vgpu_fake_rt_ctx();
    (void)dynamicSMemSize; (void)flags;
    return occupancy("cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags", numBlocks, func,
                     blockSize);
}

FAKE_EXPORT cudaError_t cudaOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize,
                                                                  const void *func, int numBlocks,
                                                                  int blockSize)
{
    vgpu_fake_rt_ctx();
    int n;
    cudaError_t st = occupancy("cudaOccupancyAvailableDynamicSMemPerBlock", &n, func, blockSize);

    if (st != cudaSuccess)
        return st;
    if (!dynamicSmemSize || numBlocks <= 0)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *dynamicSmemSize = 48 << 10;
    return cudaSuccess;
}

static cudaError_t fake_fill(void **args)
{
    void *p;
    unsigned value;
    size_t n;

    if (!args || !args[0] || !args[1] || !args[2])
        return vgpu_fake_status(cudaErrorInvalidValue);
    memcpy(&p, args[0], sizeof(p));
    memcpy(&value, args[1], sizeof(value));
    memcpy(&n, args[2], sizeof(n));
    if (n == 0)
        return cudaSuccess;
    if (!vgpu_fake_is_dev(p, n)) {
        vgpu_fake_diag("fakecuda: fault in fake_fill: [%p, +%zu) is not device memory of this "
                "process\n", p, n);
        return vgpu_fake_status(cudaErrorIllegalAddress);
    }
    memset(p, (int)(value & 0xff), n);
    return cudaSuccess;
}

/*
 * fake_add(int *dst, const int *a, const int *b, int n): dst[i] = a[i] + b[i]
 * for i < n (wrapping), every range checked first like fake_fill's.
 */
static cudaError_t fake_add(void **args)
{
    int *dst;
    const int *a, *b;
    int n;
    size_t bytes;

    if (!args || !args[0] || !args[1] || !args[2] || !args[3])
        return vgpu_fake_status(cudaErrorInvalidValue);
    memcpy(&dst, args[0], sizeof(dst));
    memcpy(&a, args[1], sizeof(a));
    memcpy(&b, args[2], sizeof(b));
    memcpy(&n, args[3], sizeof(n));
    if (n <= 0)
        return cudaSuccess;
    bytes = (size_t)n * sizeof(int);
    if (!vgpu_fake_is_dev(dst, bytes) || !vgpu_fake_is_dev(a, bytes) || !vgpu_fake_is_dev(b, bytes)) {
        vgpu_fake_diag("fakecuda: fault in fake_add: %d ints at %p, %p, %p are not all device "
                "memory of this process\n", n, (void *)dst, (const void *)a, (const void *)b);
        return vgpu_fake_status(cudaErrorIllegalAddress);
    }
    for (int i = 0; i < n; i++) {
        int x, y;

        memcpy(&x, a + i, sizeof(x));
        memcpy(&y, b + i, sizeof(y));
        x = (int)((unsigned)x + (unsigned)y);
        memcpy(dst + i, &x, sizeof(x));
    }
    return cudaSuccess;
}

/*
 * fake_print(int tag, int lines): what a kernel whose first thread runs
 * printf("kernel %d: line %d\n", tag, i) for i < lines prints, kept until
 * the next synchronizing call as the real driver keeps it.
 */
static cudaError_t fake_print(void **args)
{
    int tag, lines;

    if (!args || !args[0] || !args[1])
        return vgpu_fake_status(cudaErrorInvalidValue);
    memcpy(&tag, args[0], sizeof(tag));
    memcpy(&lines, args[1], sizeof(lines));
    for (int i = 0; i < lines && i < 1000000; i++)
        vgpu_fake_devout_add("kernel %d: line %d\n", tag, i);
    return cudaSuccess;
}

/*
 * fake_tex_read(int *out, cudaTextureObject_t tex, int n): out[i] = the
 * texture's i-th texel in row order (array.c), as a kernel reading
 * tex2D<int>(tex, i % width + 0.5, i / width + 0.5) with point filtering
 * gets them; faults like fake_fill.
 */
static cudaError_t fake_tex_read(void **args)
{
    int *out;
    unsigned long long tex;
    int n;
    const void *src;

    if (!args || !args[0] || !args[1] || !args[2])
        return vgpu_fake_status(cudaErrorInvalidValue);
    memcpy(&out, args[0], sizeof(out));
    memcpy(&tex, args[1], sizeof(tex));
    memcpy(&n, args[2], sizeof(n));
    if (n <= 0)
        return cudaSuccess;
    if (!vgpu_fake_is_dev(out, (size_t)n * sizeof(int)) || !(src = vgpu_fake_texels(tex, (size_t)n))) {
        vgpu_fake_diag("fakecuda: fault in fake_tex_read: %d ints to %p from texture %#llx\n", n,
                       (void *)out, tex);
        return vgpu_fake_status(cudaErrorIllegalAddress);
    }
    memcpy(out, src, (size_t)n * sizeof(int));
    return cudaSuccess;
}

static cudaError_t fake_cond_count(void **args)
{
    unsigned long long h;
    int *counter;

    if (!args || !args[0] || !args[1])
        return vgpu_fake_status(cudaErrorInvalidValue);
    memcpy(&h, args[0], sizeof(h));
    memcpy(&counter, args[1], sizeof(counter));
    if (!vgpu_fake_is_dev(counter, sizeof(int))) {
        vgpu_fake_diag("fakecuda: fault in fake_cond_count: counter at %p\n", (void *)counter);
        return vgpu_fake_status(cudaErrorIllegalAddress);
    }
    counter[0]--;
    if (!vgpu_fake_cond_set(h, counter[0] > 0)) {
        vgpu_fake_diag("fakecuda: fault in fake_cond_count: %#llx is no conditional handle\n", h);
        return vgpu_fake_status(cudaErrorIllegalAddress);
    }
    return cudaSuccess;
}

static char *devout;
static size_t devout_len, devout_cap;

void vgpu_fake_devout_add(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    /* the real printf buffer is 1 MiB and circular: the fake keeps the first 8 MiB */
    if (devout_len + (size_t)n > devout_cap) {
        size_t cap = devout_cap ? 2 * devout_cap : 4096;
        char *p;

        while (cap < devout_len + (size_t)n)
            cap *= 2;
        if (cap > (8u << 20) || !(p = realloc(devout, cap)))
            return;
        devout = p;
        devout_cap = cap;
    }
    memcpy(devout + devout_len, line, (size_t)n);
    devout_len += (size_t)n;
}

void vgpu_fake_devout_flush(void)
{
    if (!devout_len)
        return;
    fwrite(devout, 1, devout_len, stdout);
    fflush(stdout);
    devout_len = 0;
}

cudaError_t vgpu_fake_launch_config(dim3 grid, dim3 block)
{
    if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z ||
        (uint64_t)block.x * block.y * block.z > 1024)
        return vgpu_fake_status(cudaErrorInvalidConfiguration);
    return cudaSuccess;
}

static cudaError_t launch(const char *fn, const void *func, dim3 grid, dim3 block, void **args,
                          cudaStream_t stream)
{
    struct vgpu_fake_fn *f = vgpu_fake_fn_find(fn, func, false);
    const struct vgpu_fake_kernel *k;

    if (!f)
        return cudaErrorInvalidDeviceFunction;
    if (!vgpu_fake_stream_ok(fn, stream))
        return cudaErrorInvalidResourceHandle;
    if (vgpu_fake_launch_config(grid, block) != cudaSuccess)
        return cudaErrorInvalidConfiguration;
    k = fake_kernel_of(f);
    {
        /* into a capturing stream: the graph's next node (driver_graph.c) */
        struct vgpu_fake_op op = { .kind = k ? VGPU_FAKE_OP_KERNEL : VGPU_FAKE_OP_EMPTY, .kernel = k,
                                   .grid = { grid.x, grid.y, grid.z },
                                   .block = { block.x, block.y, block.z } };
        CUresult r;

        for (int i = 0; k && i < k->nparams; i++) {
            if (!args || !args[i])
                return vgpu_fake_status(cudaErrorInvalidValue);
            memcpy(op.args + k->off[i], args[i], k->size[i]);
        }
        /* the node's function, as the driver reads it back (cuGraphKernelNodeGetParams) */
        if (vgpu_fake_runtime_function(f->name, &op.func))
            return vgpu_fake_status(cudaErrorMemoryAllocation);
        if (vgpu_fake_captured((CUstream)stream, &op, &r))
            return vgpu_fake_status((cudaError_t)r);   /* the capture errors share their numbers */
    }
    return k ? k->run(args) : cudaSuccess;
}

/* The runtime-registered kernel's CUfunction (driver_exec.c keeps it). */
FAKE_EXPORT cudaError_t cudaGetFuncBySymbol(cudaFunction_t *functionPtr, const void *symbolPtr)
{
    struct vgpu_fake_fn *f;

    vgpu_fake_rt_ctx();
    if (!functionPtr)
        return vgpu_fake_status(cudaErrorInvalidValue);
    f = vgpu_fake_fn_find("cudaGetFuncBySymbol", symbolPtr, false);
    if (!f)
        return vgpu_fake_status(cudaErrorInvalidDeviceFunction);
    if (vgpu_fake_runtime_function(f->name, (CUfunction *)functionPtr))
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaLaunchKernel(const void *func, dim3 gridDim, dim3 blockDim, void **args,
                                         size_t sharedMem, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    (void)sharedMem;
    return launch("cudaLaunchKernel", func, gridDim, blockDim, args, stream);
}

FAKE_EXPORT cudaError_t cudaLaunchKernel_ptsz(const void *func, dim3 gridDim, dim3 blockDim,
                                              void **args, size_t sharedMem, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    (void)sharedMem;
    return launch("cudaLaunchKernel_ptsz", func, gridDim, blockDim, args, stream);
}

FAKE_EXPORT cudaError_t cudaLaunchCooperativeKernel(const void *func, dim3 gridDim, dim3 blockDim,
                                                    void **args, size_t sharedMem, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    (void)sharedMem;
    return launch("cudaLaunchCooperativeKernel", func, gridDim, blockDim, args, stream);
}

FAKE_EXPORT cudaError_t cudaLaunchCooperativeKernel_ptsz(const void *func, dim3 gridDim,
                                                         dim3 blockDim, void **args,
                                                         size_t sharedMem, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    (void)sharedMem;
    return launch("cudaLaunchCooperativeKernel_ptsz", func, gridDim, blockDim, args, stream);
}
