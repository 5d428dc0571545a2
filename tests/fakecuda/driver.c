/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver API's init, device and context calls for the one fake device
 * (CUdevice 0), sharing the runtime's state: libcuda.so.1 is a link to this
 * same library, so a server that calls both gets one device.
 *
 * Init: every call but cuInit, cuDriverGetVersion and cuGetError* answers
 * CUDA_ERROR_NOT_INITIALIZED until cuInit(0) -- or until the fake runtime's
 * first call, which initializes the driver as the real runtime does.
 *
 * Contexts are bookkeeping (all share the one memory space), but they
 * follow the driver's rules: each thread has a stack of current contexts;
 * a call that needs one answers CUDA_ERROR_INVALID_CONTEXT when none is
 * current or the current one was destroyed.  The primary context is one
 * static record with a reference count; it is active while retained.  The
 * runtime retains it once (vgpu_fake_rt_ctx) and makes it current on a
 * thread that has no current context, so mixed runtime and driver use
 * works as it does natively.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakecuda_internal.h"

#define STACK_MAX 64            /* contexts pushed on one thread */
#define PRIMARY_FLAGS_MASK 0x3f /* scheduling, map host, lmem resize, coredump, ... */

static bool initialized;
static struct vgpu_fake_ctx primary = { .primary = true, .id = 1 };
static unsigned primary_refs;
static bool rt_holds_primary;
static struct vgpu_fake_ctx *ctxs;          /* made by cuCtxCreate */
static unsigned long long next_ctx_id = 2;

static __thread struct vgpu_fake_ctx *stack[STACK_MAX];
static __thread int depth;

static void ctx_defaults(struct vgpu_fake_ctx *c)
{
    memset(c->limits, 0, sizeof(c->limits));
    c->limits[CU_LIMIT_STACK_SIZE] = 1024;
    c->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20;
    c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20;
    c->limits[CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH] = 2;
    c->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
    c->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64;
    c->cache = CU_FUNC_CACHE_PREFER_NONE;
}

struct vgpu_fake_ctx *vgpu_fake_ctx_find(CUcontext ctx)
{
    if ((void *)ctx == (void *)&primary)
        return primary_refs ? &primary : NULL;
    for (struct vgpu_fake_ctx *c = ctxs; c; c = c->next)
        if ((void *)c == (void *)ctx)
            return c;
    return NULL;
}

struct vgpu_fake_ctx *vgpu_fake_ctx_current(void)
{
    return depth ? vgpu_fake_ctx_find((CUcontext)(void *)stack[depth - 1]) : NULL;
}

CUresult vgpu_fake_cu_init_ok(void)
{
    vgpu_fake_hostfn_drain();
    return initialized ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

CUresult vgpu_fake_cu_ready(void)
{
    vgpu_fake_hostfn_drain();
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    return vgpu_fake_ctx_current() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

void vgpu_fake_rt_ctx(void)
{
    vgpu_fake_hostfn_drain();
    if (vgpu_fake_in_driver())
        return;                 /* a driver call reusing a runtime function */
    initialized = true;
    if (!rt_holds_primary) {
        if (!primary_refs++)
            ctx_defaults(&primary);
        rt_holds_primary = true;
    }
    if (!vgpu_fake_ctx_current()) {
        if (depth)
            stack[depth - 1] = &primary;    /* replaces a destroyed one */
        else
            stack[depth++] = &primary;
    }
}

static CUresult dev_ok(CUdevice dev)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    return dev == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

/* ---- init and devices ---- */

FAKE_EXPORT CUresult cuInit(unsigned int Flags)
{
    if (Flags != 0)
        return CUDA_ERROR_INVALID_VALUE;
    initialized = true;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDriverGetVersion(int *driverVersion)
{
    if (!driverVersion)
        return CUDA_ERROR_INVALID_VALUE;
    *driverVersion = CUDA_VERSION;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetCount(int *count)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    *count = 1;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    if (ordinal != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!name || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "%s", VGPU_FAKE_DEVICE_NAME);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    struct cudaDeviceProp p;
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!uuid)
        return CUDA_ERROR_INVALID_VALUE;
    vgpu_fake_props(&p);
    _Static_assert(sizeof(uuid->bytes) == sizeof(p.uuid.bytes), "CUuuid and cudaUUID_t differ");
    memcpy(uuid->bytes, p.uuid.bytes, sizeof(uuid->bytes));
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!bytes)
        return CUDA_ERROR_INVALID_VALUE;
    *bytes = VGPU_FAKE_TOTAL_MEM;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!pi)
        return CUDA_ERROR_INVALID_VALUE;
    return vgpu_fake_attribute((int)attrib, pi) == -EINVAL ? CUDA_ERROR_INVALID_VALUE
                                                           : CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    struct cudaDeviceProp p;
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!pciBusId || len <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    vgpu_fake_props(&p);
    snprintf(pciBusId, (size_t)len, "%08x:%02x:%02x.0", (unsigned)p.pciDomainID,
             (unsigned)p.pciBusID, (unsigned)p.pciDeviceID);
    return CUDA_SUCCESS;
}

/* A Windows (WDDM) notion: not supported on Linux, as natively. */
FAKE_EXPORT CUresult cuDeviceGetLuid(char *luid, unsigned int *deviceNodeMask, CUdevice dev)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!luid || !deviceNodeMask)
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_ERROR_NOT_SUPPORTED;
}

FAKE_EXPORT CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev)
{
    CUresult r = dev_ok(dev);

    if (r || (r = dev_ok(peerDev)))
        return r;
    if (!canAccessPeer)
        return CUDA_ERROR_INVALID_VALUE;
    *canAccessPeer = 0;         /* one device: no peer, and not itself */
    return CUDA_SUCCESS;
}

/* Only between two different devices, and there is one. */
FAKE_EXPORT CUresult cuDeviceGetP2PAttribute(int *value, CUdevice_P2PAttribute attrib,
                                             CUdevice srcDevice, CUdevice dstDevice)
{
    CUresult r = dev_ok(srcDevice);

    (void)attrib;
    if (r || (r = dev_ok(dstDevice)))
        return r;
    if (!value)
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_ERROR_INVALID_DEVICE;
}

/* The device's memory pools: driver_pool.c. */

FAKE_EXPORT CUresult cuDeviceGetTexture1DLinearMaxWidth(size_t *maxWidthInElements,
                                                        CUarray_format format,
                                                        unsigned numChannels, CUdevice dev)
{
    CUresult r = dev_ok(dev);

    (void)format;
    if (r)
        return r;
    if (!maxWidthInElements || (numChannels != 1 && numChannels != 2 && numChannels != 4))
        return CUDA_ERROR_INVALID_VALUE;
    *maxWidthInElements = (size_t)1 << 28;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
    struct cudaDeviceProp p;
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!major || !minor)
        return CUDA_ERROR_INVALID_VALUE;
    vgpu_fake_props(&p);
    *major = p.major;
    *minor = p.minor;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDeviceGetProperties(CUdevprop *prop, CUdevice dev)
{
    struct cudaDeviceProp p;
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!prop)
        return CUDA_ERROR_INVALID_VALUE;
    vgpu_fake_props(&p);
    prop->maxThreadsPerBlock = p.maxThreadsPerBlock;
    for (int i = 0; i < 3; i++) {
        prop->maxThreadsDim[i] = p.maxThreadsDim[i];
        prop->maxGridSize[i] = p.maxGridSize[i];
    }
    prop->sharedMemPerBlock = (int)p.sharedMemPerBlock;
    prop->totalConstantMemory = (int)p.totalConstMem;
    prop->SIMDWidth = p.warpSize;
    prop->memPitch = (int)p.memPitch;
    prop->regsPerBlock = p.regsPerBlock;
    vgpu_fake_attribute(CU_DEVICE_ATTRIBUTE_CLOCK_RATE, &prop->clockRate);
    prop->textureAlign = (int)p.textureAlignment;
    return CUDA_SUCCESS;
}

/* ---- the primary context ---- */

FAKE_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    if (!primary_refs++)
        ctx_defaults(&primary);
    *pctx = (CUcontext)(void *)&primary;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!primary_refs)
        return CUDA_ERROR_INVALID_CONTEXT;
    if (!--primary_refs)
        rt_holds_primary = false;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!flags || !active)
        return CUDA_ERROR_INVALID_VALUE;
    *flags = primary.flags;
    *active = primary_refs > 0;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (flags & ~(unsigned)PRIMARY_FLAGS_MASK || (flags & CU_CTX_SCHED_MASK) == CU_CTX_SCHED_MASK)
        return CUDA_ERROR_INVALID_VALUE;
    primary.flags = flags;
    return CUDA_SUCCESS;
}

/* Destroys the context's state now; the handle stays the primary's. */
FAKE_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    primary_refs = 0;
    rt_holds_primary = false;
    primary.flags = 0;
    return CUDA_SUCCESS;
}

/* ---- contexts ---- */

static CUresult push(struct vgpu_fake_ctx *c)
{
    if (depth == STACK_MAX)
        return CUDA_ERROR_OUT_OF_MEMORY;
    stack[depth++] = c;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams,
                                    unsigned int flags, CUdevice dev)
{
    struct vgpu_fake_ctx *c;
    CUresult r = dev_ok(dev);

    if (r)
        return r;
    if (!pctx || flags & ~(unsigned)PRIMARY_FLAGS_MASK)
        return CUDA_ERROR_INVALID_VALUE;
    if (ctxCreateParams && (ctxCreateParams->numExecAffinityParams || ctxCreateParams->cigParams))
        return CUDA_ERROR_NOT_SUPPORTED;     /* no affinity, no CIG on the fake */
    if (depth == STACK_MAX)
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (!(c = calloc(1, sizeof(*c))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    ctx_defaults(c);
    c->flags = flags;
    c->id = next_ctx_id++;
    c->next = ctxs;
    ctxs = c;
    push(c);
    *pctx = (CUcontext)(void *)c;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray,
                                    int numParams, unsigned int flags, CUdevice dev)
{
    CUctxCreateParams p = { .execAffinityParams = paramsArray, .numExecAffinityParams = numParams };

    return cuCtxCreate_v4(pctx, &p, flags, dev);
}

FAKE_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return cuCtxCreate_v4(pctx, NULL, flags, dev);
}

/* Popped from this thread's stack; other threads find it gone. */
FAKE_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    for (struct vgpu_fake_ctx **p = &ctxs; *p; p = &(*p)->next)
        if ((void *)*p == (void *)ctx) {
            struct vgpu_fake_ctx *c = *p;

            *p = c->next;
            for (int i = 0; i < depth; i++)
                if (stack[i] == c) {
                    memmove(&stack[i], &stack[i + 1], (size_t)(depth - i - 1) * sizeof(stack[0]));
                    depth--;
                    i--;
                }
            free(c);
            return CUDA_SUCCESS;
        }
    if ((void *)ctx == (void *)&primary)
        return CUDA_ERROR_INVALID_CONTEXT;  /* the primary is released, not destroyed */
    return ctx ? vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_CONTEXT, "cuCtxDestroy",
                                     "unknown context %p", (void *)ctx)
               : CUDA_ERROR_INVALID_VALUE;
}

FAKE_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
    struct vgpu_fake_ctx *c;

    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!ctx) {
        if (depth)
            depth--;
        return CUDA_SUCCESS;
    }
    if (!(c = vgpu_fake_ctx_find(ctx)))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (depth)
        stack[depth - 1] = c;
    else
        stack[depth++] = c;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!pctx)
        return CUDA_ERROR_INVALID_VALUE;
    *pctx = (CUcontext)(void *)vgpu_fake_ctx_current();
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    struct vgpu_fake_ctx *c;

    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!(c = vgpu_fake_ctx_find(ctx)))
        return ctx ? CUDA_ERROR_INVALID_CONTEXT : CUDA_ERROR_INVALID_VALUE;
    return push(c);
}

FAKE_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!depth)
        return CUDA_ERROR_INVALID_CONTEXT;
    depth--;
    if (pctx)
        *pctx = (CUcontext)(void *)stack[depth];
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxGetDevice(CUdevice *device)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    *device = 0;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxGetFlags(unsigned int *flags)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!flags)
        return CUDA_ERROR_INVALID_VALUE;
    *flags = vgpu_fake_ctx_current()->flags;
    return CUDA_SUCCESS;
}

/* Work runs when issued: nothing to wait for. */
FAKE_EXPORT CUresult cuCtxSynchronize(void)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r == CUDA_SUCCESS)
        vgpu_fake_devout_flush();
    return r;
}

/* CUDA 13.0's forms with an explicit context (NULL: the current one). */
FAKE_EXPORT CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!(ctx ? vgpu_fake_ctx_find(ctx) : vgpu_fake_ctx_current()))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (!device)
        return CUDA_ERROR_INVALID_VALUE;
    *device = 0;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxSynchronize_v2(CUcontext ctx)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!(ctx ? vgpu_fake_ctx_find(ctx) : vgpu_fake_ctx_current()))
        return CUDA_ERROR_INVALID_CONTEXT;
    vgpu_fake_devout_flush();
    return CUDA_SUCCESS;
}

/* NULL: the current context. */
FAKE_EXPORT CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!(ctx ? vgpu_fake_ctx_find(ctx) : vgpu_fake_ctx_current()))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    *version = 3020;            /* what every context made by a current driver reports */
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxGetId(CUcontext ctx, unsigned long long *ctxId)
{
    struct vgpu_fake_ctx *c;

    if (!initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    if (!(c = ctx ? vgpu_fake_ctx_find(ctx) : vgpu_fake_ctx_current()))
        return CUDA_ERROR_INVALID_CONTEXT;
    if (!ctxId)
        return CUDA_ERROR_INVALID_VALUE;
    *ctxId = c->id;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxGetLimit(size_t *pvalue, CUlimit limit)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if ((unsigned)limit >= CU_LIMIT_MAX)
        return CUDA_ERROR_UNSUPPORTED_LIMIT;
    if (!pvalue)
        return CUDA_ERROR_INVALID_VALUE;
    *pvalue = vgpu_fake_ctx_current()->limits[limit];
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxSetLimit(CUlimit limit, size_t value)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if ((unsigned)limit >= CU_LIMIT_MAX || limit == CU_LIMIT_SHMEM_SIZE ||
        limit == CU_LIMIT_CIG_ENABLED)
        return CUDA_ERROR_UNSUPPORTED_LIMIT;
    if (limit == CU_LIMIT_MAX_L2_FETCH_GRANULARITY && value > 128)
        return CUDA_ERROR_INVALID_VALUE;
    vgpu_fake_ctx_current()->limits[limit] = value;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxGetCacheConfig(CUfunc_cache *pconfig)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!pconfig)
        return CUDA_ERROR_INVALID_VALUE;
    *pconfig = vgpu_fake_ctx_current()->cache;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuCtxSetCacheConfig(CUfunc_cache config)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if ((unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL)
        return CUDA_ERROR_INVALID_VALUE;
    vgpu_fake_ctx_current()->cache = config;
    return CUDA_SUCCESS;
}

/* The range exec.c clamps stream priorities to. */
FAKE_EXPORT CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (leastPriority)
        *leastPriority = 0;
    if (greatestPriority)
        *greatestPriority = -5;
    return CUDA_SUCCESS;
}

/*
 * The unversioned names of old binaries, where their ABI is the _v2's.
 * cuda.h maps these names to the _v2 ones; undo that to define them.
 */
#undef cuDevicePrimaryCtxRelease
#undef cuDevicePrimaryCtxSetFlags
#undef cuDevicePrimaryCtxReset
#undef cuCtxDestroy
#undef cuCtxPushCurrent
#undef cuCtxPopCurrent
#undef cuDeviceGetUuid
FAKE_EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev);
FAKE_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev);
FAKE_EXPORT CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags);
FAKE_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev);
FAKE_EXPORT CUresult cuCtxDestroy(CUcontext ctx);
FAKE_EXPORT CUresult cuCtxPushCurrent(CUcontext ctx);
FAKE_EXPORT CUresult cuCtxPopCurrent(CUcontext *pctx);

CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return cuDevicePrimaryCtxRelease_v2(dev); }
CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
    return cuDevicePrimaryCtxSetFlags_v2(dev, flags);
}
CUresult cuDevicePrimaryCtxReset(CUdevice dev) { return cuDevicePrimaryCtxReset_v2(dev); }
CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev) { return cuDeviceGetUuid_v2(uuid, dev); }
CUresult cuCtxDestroy(CUcontext ctx) { return cuCtxDestroy_v2(ctx); }
CUresult cuCtxPushCurrent(CUcontext ctx) { return cuCtxPushCurrent_v2(ctx); }
CUresult cuCtxPopCurrent(CUcontext *pctx) { return cuCtxPopCurrent_v2(pctx); }
