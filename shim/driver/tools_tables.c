/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tools tables of cuGetExportTable that NVIDIA's CUDA libraries (not
 * the runtime itself) ask for: ToolsContext (21318c60-...: cuBLAS, cuFFT,
 * cuSOLVER), ToolsModule (6e163fbe-...: cuFFT) and ClusterPrototype
 * (1734dc26-...: cuBLASLt).  Their slot counts and
 * the slots the libraries call were observed on driver 580 with
 * tests/tools/etbl_trace.c; what a slot means comes from public copies of
 * NVIDIA's 2014 header and is confirmed by the traced arguments and
 * answers (docs/driver.md, "Export tables").
 *
 * Only what the libraries were seen to need is implemented.  Every other
 * slot is a function that answers CUDA_ERROR_NOT_SUPPORTED and logs its
 * table and number once, at debug level (a library may probe a slot and
 * carry on when it is refused, as cuBLASLt does with ClusterPrototype's
 * slot 4), so a library that depends on one says which with VGPU_LOG=debug.
 */
#include <cuda.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "driver_internal.h"

#define TOOLS_CONTEXT_SLOTS 93
#define TOOLS_MODULE_SLOTS 99
#define CLUSTER_PROTOTYPE_SLOTS 17

static void say_once(const char *table, int slot)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    static uint64_t said[3][2];
    int t = table[0] == 'C' ? 2 : table[5] == 'C' ? 0 : 1;
    bool first;

    pthread_mutex_lock(&lock);
    first = !(said[t][slot / 64] & (1ull << (slot % 64)));
    said[t][slot / 64] |= 1ull << (slot % 64);
    pthread_mutex_unlock(&lock);
    if (first)
        vgpu_shim_log(VGPU_LOG_DEBUG, "cuGetExportTable: %s slot %d is not implemented by vgpu; "
                      "answered CUDA_ERROR_NOT_SUPPORTED", table, slot);
}

#define NOT_DONE(table, name, n)                                                                   \
    static __attribute__((unused)) CUresult name##_##n(void)                                       \
    {                                                                                              \
        say_once(table, n);                                                                        \
        return CUDA_ERROR_NOT_SUPPORTED;                                                           \
    }
#define NOT_DONE10(table, name, d)                                                                 \
    NOT_DONE(table, name, d##0) NOT_DONE(table, name, d##1) NOT_DONE(table, name, d##2)            \
    NOT_DONE(table, name, d##3) NOT_DONE(table, name, d##4) NOT_DONE(table, name, d##5)            \
    NOT_DONE(table, name, d##6) NOT_DONE(table, name, d##7) NOT_DONE(table, name, d##8)            \
    NOT_DONE(table, name, d##9)
#define NOT_DONE_ALL(table, name)                                                                  \
    NOT_DONE(table, name, 1) NOT_DONE(table, name, 2) NOT_DONE(table, name, 3)                     \
    NOT_DONE(table, name, 4) NOT_DONE(table, name, 5) NOT_DONE(table, name, 6)                     \
    NOT_DONE(table, name, 7) NOT_DONE(table, name, 8) NOT_DONE(table, name, 9)                     \
    NOT_DONE10(table, name, 1) NOT_DONE10(table, name, 2) NOT_DONE10(table, name, 3)               \
    NOT_DONE10(table, name, 4) NOT_DONE10(table, name, 5) NOT_DONE10(table, name, 6)               \
    NOT_DONE10(table, name, 7) NOT_DONE10(table, name, 8) NOT_DONE10(table, name, 9)

#define SLOT(name, n) (void *)name##_##n,
#define SLOT10(name, d)                                                                            \
    SLOT(name, d##0) SLOT(name, d##1) SLOT(name, d##2) SLOT(name, d##3) SLOT(name, d##4)           \
    SLOT(name, d##5) SLOT(name, d##6) SLOT(name, d##7) SLOT(name, d##8) SLOT(name, d##9)
#define SLOTS_ALL(name)                                                                            \
    SLOT(name, 1) SLOT(name, 2) SLOT(name, 3) SLOT(name, 4) SLOT(name, 5) SLOT(name, 6)            \
    SLOT(name, 7) SLOT(name, 8) SLOT(name, 9) SLOT10(name, 1) SLOT10(name, 2) SLOT10(name, 3)      \
    SLOT10(name, 4) SLOT10(name, 5) SLOT10(name, 6) SLOT10(name, 7) SLOT10(name, 8)                \
    SLOT10(name, 9)

NOT_DONE_ALL("ToolsContext", tc)
NOT_DONE_ALL("ToolsModule", tm)
NOT_DONE_ALL("ClusterPrototype", cp)

/*
 * ToolsContext.  The tools handle of a stream is the public handle itself
 * (the null stream as CU_STREAM_LEGACY, or CU_STREAM_PER_THREAD), which
 * every public stream call takes; a caller only hands it back to this
 * table.  Traced on driver 580: cuBLAS maps its stream with slot 51 and
 * asks its id with slot 39 on every GEMM, and the context id with slot 4.
 */
typedef uint64_t tools_stream;

static CUstream public_stream(tools_stream s)
{
    return (CUstream)(uintptr_t)s;
}

/* 1 StreamSynchronize(ctx, stream), 2 StreamQuery(ctx, stream) */
static CUresult tcx_1(CUcontext ctx, tools_stream s)
{
    (void)ctx;
    return cuStreamSynchronize(public_stream(s));
}

static CUresult tcx_2(CUcontext ctx, tools_stream s)
{
    (void)ctx;
    return cuStreamQuery(public_stream(s));
}

/* 3 CtxGetDevice(ctx, uint32_t *index) */
static CUresult tcx_3(CUcontext ctx, uint32_t *index)
{
    CUdevice dev;
    CUresult r;

    if (!index)
        return CUDA_ERROR_INVALID_VALUE;
    r = cuCtxGetDevice_v2(&dev, ctx);
    if (r == CUDA_SUCCESS)
        *index = (uint32_t)dev;
    return r;
}

/* 4 CtxGetId(ctx, uint64_t *id): what cuCtxGetId answers. */
static CUresult tcx_4(CUcontext ctx, unsigned long long *id)
{
    if (!id)
        return CUDA_ERROR_INVALID_VALUE;
    return cuCtxGetId(ctx, id);
}

/* 5 StreamGetId(ctx, stream, id) and 39 StreamGetIdEx(ctx, stream, id): cuStreamGetId. */
static CUresult tcx_5(CUcontext ctx, tools_stream s, unsigned long long *id)
{
    (void)ctx;
    if (!id)
        return CUDA_ERROR_INVALID_VALUE;
    return cuStreamGetId(public_stream(s), id);
}

/* 6 CtxSynchronize(ctx) */
static CUresult tcx_6(CUcontext ctx)
{
    return cuCtxSynchronize_v2(ctx);
}

/* 13 CtxGetApiVersion(ctx, uint32_t *version) */
static CUresult tcx_13(CUcontext ctx, uint32_t *version)
{
    unsigned v = 0;
    CUresult r;

    if (!version)
        return CUDA_ERROR_INVALID_VALUE;
    r = cuCtxGetApiVersion(ctx, &v);
    if (r == CUDA_SUCCESS)
        *version = v;
    return r;
}

/* 16 StreamGetPublicHandle(stream, CUstream *out) */
static CUresult tcx_16(tools_stream s, CUstream *out)
{
    if (!s || !out)
        return CUDA_ERROR_INVALID_VALUE;
    *out = public_stream(s);
    return CUDA_SUCCESS;
}

/* 51 StreamGetToolsHandleEx(ctx, CUstream, tools_stream *out, uint8_t per_thread); 17 without the flag. */
static CUresult tcx_51(CUcontext ctx, CUstream stream, tools_stream *out, uint8_t per_thread)
{
    (void)ctx;
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    if (!stream)
        stream = per_thread ? CU_STREAM_PER_THREAD : CU_STREAM_LEGACY;
    *out = (tools_stream)(uintptr_t)stream;
    return CUDA_SUCCESS;
}

static CUresult tcx_17(CUcontext ctx, CUstream stream, tools_stream *out)
{
    return tcx_51(ctx, stream, out, 0);
}

/* 20 StreamGetCtx(stream, CUcontext *ctx) */
static CUresult tcx_20(tools_stream s, CUcontext *ctx)
{
    if (!ctx)
        return CUDA_ERROR_INVALID_VALUE;
    return cuStreamGetCtx(public_stream(s), ctx);
}


/*
 * ToolsModule slot 7: cuFFT calls it after each module it loads, with the
 * context, the module, a callback `cb(user, item)` that stores item at
 * user, and user, and then uses what was stored as the module's kernel
 * (cuFuncGetAttribute, cuLaunchKernel) without ever calling
 * cuModuleGetFunction: so it hands out the module's functions.  Traced on
 * driver 580: the callback ran once for cuFFT's one-kernel modules, and the
 * answer was CUDA_ERROR_INVALID_VALUE (1), which cuFFT ignores; vgpu calls
 * the callback with each function cuModuleEnumerateFunctions lists and
 * answers the same.
 */
typedef void (*module_item_cb)(void *user, CUfunction f);

static CUresult tmx_7(CUcontext ctx, CUmodule mod, module_item_cb cb, void *user)
{
    CUfunction fns[64];
    unsigned n = 0;

    (void)ctx;
    if (!cb || cuModuleGetFunctionCount(&n, mod) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_VALUE;
    if (n > 64) {
        vgpu_shim_log(VGPU_LOG_WARN, "cuGetExportTable: ToolsModule slot 7 lists the first 64 of "
                      "a module's %u functions", n);
        n = 64;
    }
    if (n && cuModuleEnumerateFunctions(fns, n, mod) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < n; i++)
        cb(user, fns[i]);
    return CUDA_ERROR_INVALID_VALUE;
}

/*
 * ClusterPrototype (1734dc26-...), slots as NVIDIA's 2022 header in public
 * copies names them, answered through the public function attributes and
 * occupancy calls that replaced them.  Slot 4, the TPC-to-GPC map of the
 * device, is a layout this library cannot learn through a public call: it
 * answers CUDA_ERROR_NOT_SUPPORTED (cuBLASLt, which asks, carries on), and
 * slot 13 frees nothing.
 */
static CUresult func_attr(CUfunction f, CUfunction_attribute a, int *out)
{
    if (!out)
        return CUDA_ERROR_INVALID_VALUE;
    return cuFuncGetAttribute(out, a, f);
}

/* 3 SetFunctionClusterNonPortableSizeSupport(f, enable) */
static CUresult cpx_3(CUfunction f, int enable)
{
    return cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, enable);
}

/* 2 SetFunctionClusterSchedulingPolicy(f, policy) */
static CUresult cpx_2(CUfunction f, int policy)
{
    return cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE, policy);
}

/* 5 GetFunctionClusterDim(f, x, y, z) */
static CUresult cpx_5(CUfunction f, int *x, int *y, int *z)
{
    CUresult r = func_attr(f, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH, x);

    if (r == CUDA_SUCCESS)
        r = func_attr(f, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT, y);
    if (r == CUDA_SUCCESS)
        r = func_attr(f, CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH, z);
    return r;
}

/* 6 GetFunctionClusterSchedulingPolicy, 7 ...NonPortableSizeSupport, 12 ...DimMustBeSet */
static CUresult cpx_6(CUfunction f, int *policy)
{
    return func_attr(f, CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE, policy);
}

static CUresult cpx_7(CUfunction f, int *enable)
{
    return func_attr(f, CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED, enable);
}

static CUresult cpx_12(CUfunction f, int *must)
{
    return func_attr(f, CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET, must);
}

/* 8 GetDeviceClusterLaunchSupported(dev, int *supported) */
static CUresult cpx_8(CUdevice dev, int *supported)
{
    if (!supported)
        return CUDA_ERROR_INVALID_VALUE;
    return cuDeviceGetAttribute(supported, CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH, dev);
}

/* 13 FreeTpcIDtovGPCmTPCMappingPointers(vgpc, mtpc): slot 4 never hands any out. */
static CUresult cpx_13(unsigned char *vgpc, unsigned char *mtpc)
{
    return vgpc || mtpc ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

/* The implemented slots in place of the stubs. */
#define tc_1 tcx_1
#define tc_2 tcx_2
#define tc_3 tcx_3
#define tc_4 tcx_4
#define tc_5 tcx_5
#define tc_6 tcx_6
#define tc_13 tcx_13
#define tc_16 tcx_16
#define tc_17 tcx_17
#define tc_20 tcx_20
#define tc_51 tcx_51
#define tc_39 tcx_5
#define tm_7 tmx_7
#define cp_2 cpx_2
#define cp_3 cpx_3
#define cp_5 cpx_5
#define cp_6 cpx_6
#define cp_7 cpx_7
#define cp_8 cpx_8
#define cp_12 cpx_12
#define cp_13 cpx_13

/* Slot 0 is the table's size in bytes; slots 1..99 as made above, with the implemented ones. */
VGPU_HIDDEN void *const vgpu_drv_tools_context[100] = {
    (void *)(sizeof(void *) * TOOLS_CONTEXT_SLOTS), SLOTS_ALL(tc)
};
VGPU_HIDDEN void *const vgpu_drv_tools_module[100] = {
    (void *)(sizeof(void *) * TOOLS_MODULE_SLOTS), SLOTS_ALL(tm)
};
VGPU_HIDDEN void *const vgpu_drv_cluster_prototype[100] = {
    (void *)(sizeof(void *) * CLUSTER_PROTOTYPE_SLOTS), SLOTS_ALL(cp)
};
