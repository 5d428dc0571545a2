/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fake driver API (driver*.c), called directly: the init and context
 * rules, modules loaded from PTX text and what they report about fake_fill
 * and fake_add, launches with kernelParams and with extra, memory round
 * trips, a fault caught, and the state shared with the fake runtime (a
 * cudaMalloc'ed pointer read by cuMemcpyDtoH, streams of either API).  The
 * tests run in order in one process: the first one runs before cuInit.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const char ptx[] =
    ".version 8.0\n"
    ".target sm_90\n"
    ".address_size 64\n"
    ".global .align 4 .u32 counter;\n"
    ".visible .entry fake_fill(.param .u64 p, .param .u32 v, .param .u64 n) { ret; }\n"
    ".visible .entry _Z8fake_addPiPKiS1_i(.param .u64 a, .param .u64 b, .param .u64 c,"
    " .param .u32 n) { ret; }\n"
    ".visible .entry noop() { ret; }\n";

static CUcontext primary;

static void test_init_rules(void **state)
{
    const char *s = NULL;
    CUdeviceptr d;
    CUcontext c = (CUcontext)(void *)&d;
    unsigned flags;
    int n = 0, active = 1;

    (void)state;
    assert_int_equal(cuDriverGetVersion(&n), CUDA_SUCCESS);
    assert_int_equal(n, 13000);
    assert_int_equal(cuGetErrorName(CUDA_ERROR_NOT_INITIALIZED, &s), CUDA_SUCCESS);
    assert_string_equal(s, "CUDA_ERROR_NOT_INITIALIZED");
    assert_int_equal(cuDeviceGetCount(&n), CUDA_ERROR_NOT_INITIALIZED);
    assert_int_equal(cuMemAlloc(&d, 16), CUDA_ERROR_NOT_INITIALIZED);
    assert_int_equal(cuCtxGetCurrent(&c), CUDA_ERROR_NOT_INITIALIZED);
    assert_int_equal(cuInit(1), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuInit(0), CUDA_SUCCESS);
    assert_int_equal(cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuDeviceGetCount(&n), CUDA_SUCCESS);
    assert_int_equal(n, 1);
    assert_int_equal(cuDeviceGet(&n, 1), CUDA_ERROR_INVALID_DEVICE);
    assert_int_equal(cuDeviceGet(&n, 0), CUDA_SUCCESS);
    /* initialized, but no context yet */
    assert_int_equal(cuCtxGetCurrent(&c), CUDA_SUCCESS);
    assert_null(c);
    assert_int_equal(cuMemAlloc(&d, 16), CUDA_ERROR_INVALID_CONTEXT);
    assert_int_equal(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
    assert_int_equal(cuDevicePrimaryCtxGetState(0, &flags, &active), CUDA_SUCCESS);
    assert_int_equal(active, 0);
    assert_int_equal(cuDevicePrimaryCtxRetain(&primary, 0), CUDA_SUCCESS);
    assert_int_equal(cuDevicePrimaryCtxGetState(0, &flags, &active), CUDA_SUCCESS);
    assert_int_equal(active, 1);
    assert_int_equal(cuCtxSetCurrent(primary), CUDA_SUCCESS);
    assert_int_equal(cuCtxGetCurrent(&c), CUDA_SUCCESS);
    assert_ptr_equal(c, primary);
    assert_int_equal(cuCtxSynchronize(), CUDA_SUCCESS);
}

static void test_contexts(void **state)
{
    CUcontext c, top;
    CUdevice dev = -1;
    unsigned long long id1, id2;
    size_t v;

    (void)state;
    assert_int_equal(cuCtxCreate(&c, NULL, 0, 0), CUDA_SUCCESS);
    assert_int_equal(cuCtxGetCurrent(&top), CUDA_SUCCESS);
    assert_ptr_equal(top, c);
    assert_int_equal(cuCtxGetDevice(&dev), CUDA_SUCCESS);
    assert_int_equal(dev, 0);
    assert_int_equal(cuCtxGetId(c, &id1), CUDA_SUCCESS);
    assert_int_equal(cuCtxGetId(primary, &id2), CUDA_SUCCESS);
    assert_true(id1 != id2);
    assert_int_equal(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 1 << 24), CUDA_SUCCESS);
    assert_int_equal(cuCtxGetLimit(&v, CU_LIMIT_MALLOC_HEAP_SIZE), CUDA_SUCCESS);
    assert_int_equal(v, 1 << 24);
    assert_int_equal(cuCtxPopCurrent(&top), CUDA_SUCCESS);
    assert_ptr_equal(top, c);
    assert_int_equal(cuCtxGetCurrent(&top), CUDA_SUCCESS);
    assert_ptr_equal(top, primary);
    assert_int_equal(cuCtxPushCurrent(c), CUDA_SUCCESS);
    assert_int_equal(cuCtxDestroy(c), CUDA_SUCCESS);
    assert_int_equal(cuCtxGetCurrent(&top), CUDA_SUCCESS);
    assert_ptr_equal(top, primary);
    assert_int_equal(cuCtxSetCurrent(c), CUDA_ERROR_INVALID_CONTEXT);
}

static void test_device_queries(void **state)
{
    struct cudaDeviceProp p;
    char name[64], bus[32];
    int v, rt;
    size_t total;

    (void)state;
    assert_int_equal(cudaGetDeviceProperties(&p, 0), cudaSuccess);
    assert_int_equal(cuDeviceGetName(name, sizeof(name), 0), CUDA_SUCCESS);
    assert_string_equal(name, p.name);
    assert_int_equal(cuDeviceTotalMem(&total, 0), CUDA_SUCCESS);
    assert_int_equal(total, p.totalGlobalMem);
    for (int a = 1; a < CU_DEVICE_ATTRIBUTE_MAX; a++) {
        assert_int_equal(cuDeviceGetAttribute(&v, (CUdevice_attribute)a, 0), CUDA_SUCCESS);
        assert_int_equal(cudaDeviceGetAttribute(&rt, (enum cudaDeviceAttr)a, 0), cudaSuccess);
        assert_int_equal(v, rt);
    }
    assert_int_equal(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MAX, 0),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuDeviceGetAttribute(&v, (CUdevice_attribute)0, 0), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0),
                     CUDA_SUCCESS);
    assert_int_equal(v, p.multiProcessorCount);
    assert_int_equal(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 1),
                     CUDA_ERROR_INVALID_DEVICE);
    assert_int_equal(cuDeviceGetPCIBusId(bus, sizeof(bus), 0), CUDA_SUCCESS);
    assert_int_equal(cuDeviceCanAccessPeer(&v, 0, 0), CUDA_SUCCESS);
    assert_int_equal(v, 0);
}

static void test_module_ptx(void **state)
{
    static const unsigned char junk[] = { 0x01, 0x02, 0x03, 0x00 };
    CUmodule m;
    CUfunction fill, add, noop, again;
    CUdeviceptr g;
    size_t off, size, bytes;
    unsigned char back[256], zero[256] = { 0 };
    const char *name;

    (void)state;
    assert_int_equal(cuModuleLoadData(&m, junk), CUDA_ERROR_INVALID_IMAGE);
    assert_int_equal(cuModuleLoadData(&m, "just some text"), CUDA_ERROR_INVALID_PTX);
    assert_int_equal(cuModuleLoadData(&m, ptx), CUDA_SUCCESS);
    assert_int_equal(cuModuleGetFunction(&fill, m, "fake_fill"), CUDA_SUCCESS);
    assert_int_equal(cuModuleGetFunction(&again, m, "fake_fill"), CUDA_SUCCESS);
    assert_ptr_equal(fill, again);
    assert_int_equal(cuModuleGetFunction(&add, m, "_Z8fake_addPiPKiS1_i"), CUDA_SUCCESS);
    assert_int_equal(cuModuleGetFunction(&noop, m, "noop"), CUDA_SUCCESS);
    assert_int_equal(cuModuleGetFunction(&again, m, "absent"), CUDA_ERROR_NOT_FOUND);
    assert_int_equal(cuFuncGetName(&name, add), CUDA_SUCCESS);
    assert_string_equal(name, "_Z8fake_addPiPKiS1_i");

    static const size_t fill_off[] = { 0, 8, 16 }, fill_size[] = { 8, 4, 8 };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(cuFuncGetParamInfo(fill, i, &off, &size), CUDA_SUCCESS);
        assert_int_equal(off, fill_off[i]);
        assert_int_equal(size, fill_size[i]);
    }
    assert_int_equal(cuFuncGetParamInfo(fill, 3, &off, &size), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuFuncGetParamInfo(add, 3, &off, &size), CUDA_SUCCESS);
    assert_int_equal(off, 24);
    assert_int_equal(size, 4);
    assert_int_equal(cuFuncGetParamInfo(noop, 0, &off, &size), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuFuncGetParamInfo((CUfunction)(void *)back, 0, &off, &size),
                     CUDA_ERROR_INVALID_HANDLE);

    assert_int_equal(cuModuleGetGlobal(&g, &bytes, m, "counter"), CUDA_SUCCESS);
    assert_int_equal(bytes, 256);
    memset(back, 0xff, sizeof(back));
    assert_int_equal(cuMemcpyDtoH(back, g, bytes), CUDA_SUCCESS);
    assert_memory_equal(back, zero, sizeof(back));
    assert_int_equal(cuModuleGetGlobal(&g, &bytes, m, "nothere"), CUDA_ERROR_NOT_FOUND);
    assert_int_equal(cuModuleUnload(m), CUDA_SUCCESS);
    assert_int_equal(cuModuleUnload(m), CUDA_ERROR_INVALID_HANDLE);
}

static void test_launch(void **state)
{
    CUmodule m;
    CUfunction fill, add;
    CUdeviceptr d, a, b;
    unsigned char host[64];
    int ha[8], hb[8], hc[8];
    unsigned value = 0x5a;
    size_t n = 64;
    int count = 8;

    (void)state;
    assert_int_equal(cuModuleLoadData(&m, ptx), CUDA_SUCCESS);
    assert_int_equal(cuModuleGetFunction(&fill, m, "fake_fill"), CUDA_SUCCESS);
    assert_int_equal(cuModuleGetFunction(&add, m, "_Z8fake_addPiPKiS1_i"), CUDA_SUCCESS);
    assert_int_equal(cuMemAlloc(&d, 64), CUDA_SUCCESS);

    /* kernelParams */
    void *params[] = { &d, &value, &n };
    assert_int_equal(cuLaunchKernel(fill, 1, 1, 1, 64, 1, 1, 0, NULL, params, NULL), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoH(host, d, 64), CUDA_SUCCESS);
    for (int i = 0; i < 64; i++)
        assert_int_equal(host[i], 0x5a);

    /* extra: one buffer laid out as cuFuncGetParamInfo says */
    unsigned char buf[24] = { 0 };
    size_t bufsize = sizeof(buf), half = 32;
    value = 0x11;
    memcpy(buf, &d, 8);
    memcpy(buf + 8, &value, 4);
    memcpy(buf + 16, &half, 8);
    void *extra[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &bufsize,
                      CU_LAUNCH_PARAM_END };
    assert_int_equal(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoH(host, d, 64), CUDA_SUCCESS);
    assert_int_equal(host[0], 0x11);
    assert_int_equal(host[31], 0x11);
    assert_int_equal(host[32], 0x5a);
    bufsize = 20;           /* too short for n */
    assert_int_equal(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, extra),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuLaunchKernel(fill, 1, 1, 1, 32, 1, 1, 0, NULL, params, extra),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuLaunchKernel(fill, 0, 1, 1, 32, 1, 1, 0, NULL, params, NULL),
                     CUDA_ERROR_INVALID_VALUE);

    /* a fault: a range past the allocation is caught, nothing written */
    n = 65;
    assert_int_equal(cuLaunchKernel(fill, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL),
                     CUDA_ERROR_ILLEGAL_ADDRESS);

    /* fake_add through cuLaunchKernelEx */
    for (int i = 0; i < 8; i++) {
        ha[i] = i;
        hb[i] = 100 * i;
    }
    assert_int_equal(cuMemAlloc(&a, sizeof(ha)), CUDA_SUCCESS);
    assert_int_equal(cuMemAlloc(&b, sizeof(hb)), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyHtoD(a, ha, sizeof(ha)), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyHtoD(b, hb, sizeof(hb)), CUDA_SUCCESS);
    void *addp[] = { &d, &a, &b, &count };
    CUlaunchConfig cfg = { .gridDimX = 1, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 8,
                           .blockDimY = 1, .blockDimZ = 1 };
    assert_int_equal(cuLaunchKernelEx(&cfg, add, addp, NULL), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoH(hc, d, sizeof(hc)), CUDA_SUCCESS);
    for (int i = 0; i < 8; i++)
        assert_int_equal(hc[i], 101 * i);
    assert_int_equal(cuMemFree(a), CUDA_SUCCESS);
    assert_int_equal(cuMemFree(b), CUDA_SUCCESS);
    assert_int_equal(cuMemFree(d), CUDA_SUCCESS);
    assert_int_equal(cuModuleUnload(m), CUDA_SUCCESS);
}

static void test_library(void **state)
{
    CUlibrary lib;
    CUkernel k;
    CUfunction f;
    CUdeviceptr d;
    size_t off, size, n = 16;
    unsigned value = 7;
    unsigned char host[16];

    (void)state;
    assert_int_equal(cuLibraryLoadData(&lib, ptx, NULL, NULL, 0, NULL, NULL, 0), CUDA_SUCCESS);
    assert_int_equal(cuLibraryGetKernel(&k, lib, "fake_fill"), CUDA_SUCCESS);
    assert_int_equal(cuKernelGetParamInfo(k, 1, &off, &size), CUDA_SUCCESS);
    assert_int_equal(off, 8);
    assert_int_equal(size, 4);
    assert_int_equal(cuKernelGetFunction(&f, k), CUDA_SUCCESS);
    assert_int_equal(cuMemAlloc(&d, 16), CUDA_SUCCESS);
    void *params[] = { &d, &value, &n };
    assert_int_equal(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoH(host, d, 16), CUDA_SUCCESS);
    assert_int_equal(host[15], 7);
    assert_int_equal(cuMemFree(d), CUDA_SUCCESS);
    assert_int_equal(cuLibraryUnload(lib), CUDA_SUCCESS);
}

static void test_memory(void **state)
{
    CUdeviceptr d, d2, base;
    unsigned char host[256], back[256];
    uint16_t h16[8];
    uint32_t h32[8];
    size_t size, pitch;
    unsigned type = 0;
    CUcontext ctx;

    (void)state;
    for (int i = 0; i < 256; i++)
        host[i] = (unsigned char)(i * 3);
    assert_int_equal(cuMemAlloc(&d, 256), CUDA_SUCCESS);
    assert_int_equal(cuMemAlloc(&d2, 256), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyHtoD(d, host, 256), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoD(d2, d, 256), CUDA_SUCCESS);
    assert_int_equal(cuMemcpy((CUdeviceptr)(uintptr_t)back, d2, 256), CUDA_SUCCESS);
    assert_memory_equal(back, host, 256);

    assert_int_equal(cuMemsetD8(d, 0xab, 256), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoH(back, d, 256), CUDA_SUCCESS);
    assert_int_equal(back[255], 0xab);
    assert_int_equal(cuMemsetD16(d, 0x1234, 8), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoH(h16, d, sizeof(h16)), CUDA_SUCCESS);
    assert_int_equal(h16[7], 0x1234);
    assert_int_equal(cuMemsetD32Async(d, 0xdeadbeef, 8, NULL), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoH(h32, d, sizeof(h32)), CUDA_SUCCESS);
    assert_int_equal(h32[7], 0xdeadbeef);
    assert_int_equal(cuMemsetD32(d + 1, 0, 1), CUDA_ERROR_INVALID_VALUE);     /* misaligned */
    assert_int_equal(cuMemsetD2D8(d, 64, 0x77, 16, 4), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoH(back, d, 256), CUDA_SUCCESS);
    assert_int_equal(back[64 * 3 + 15], 0x77);
    assert_int_equal(back[64 * 3 + 16], 0xab);

    /* 2D: a 16x4 box from host rows of 32 into device rows of 64 */
    CUDA_MEMCPY2D c = { .srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = host, .srcPitch = 32,
                        .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = d2, .dstPitch = 64,
                        .dstXInBytes = 8, .WidthInBytes = 16, .Height = 4 };
    assert_int_equal(cuMemcpy2D(&c), CUDA_SUCCESS);
    assert_int_equal(cuMemcpyDtoH(back, d2, 256), CUDA_SUCCESS);
    assert_int_equal(back[64 * 2 + 8], host[32 * 2]);
    assert_int_equal(back[64 * 3 + 8 + 15], host[32 * 3 + 15]);
    c.Height = 5;           /* row 4 of the destination ends past the allocation */
    c.dstY = 0;
    c.dstPitch = 64;
    c.dstXInBytes = 250;
    assert_int_equal(cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE);

    /* out of range: refused, nothing touched */
    assert_int_equal(cuMemcpyHtoD(d + 200, host, 100), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemcpyDtoH(back, (CUdeviceptr)(uintptr_t)host, 16),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemFree(d + 8), CUDA_ERROR_INVALID_VALUE);

    assert_int_equal(cuMemGetAddressRange(&base, &size, d + 100), CUDA_SUCCESS);
    assert_true(base == d && size == 256);
    assert_int_equal(cuMemGetAddressRange(&base, &size, (CUdeviceptr)(uintptr_t)host),
                     CUDA_ERROR_NOT_FOUND);
    assert_int_equal(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, d + 3),
                     CUDA_SUCCESS);
    assert_int_equal(type, CU_MEMORYTYPE_DEVICE);
    assert_int_equal(cuPointerGetAttribute(&ctx, CU_POINTER_ATTRIBUTE_CONTEXT, d), CUDA_SUCCESS);
    assert_ptr_equal(ctx, primary);
    assert_int_equal(cuPointerGetAttribute(&base, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, d + 9),
                     CUDA_SUCCESS);
    assert_true(base == d);
    assert_int_equal(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                           (CUdeviceptr)(uintptr_t)host),
                     CUDA_ERROR_INVALID_VALUE);

    void *pinned;
    assert_int_equal(cuMemHostAlloc(&pinned, 128, 0), CUDA_SUCCESS);
    assert_int_equal(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                           (CUdeviceptr)(uintptr_t)pinned),
                     CUDA_SUCCESS);
    assert_int_equal(type, CU_MEMORYTYPE_HOST);
    assert_int_equal(cuMemFreeHost(pinned), CUDA_SUCCESS);
    assert_int_equal(cuMemHostRegister(host, sizeof(host), 0), CUDA_SUCCESS);
    assert_int_equal(cuMemHostRegister(host, 8, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    assert_int_equal(cuMemHostUnregister(host), CUDA_SUCCESS);
    assert_int_equal(cuMemHostUnregister(host), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);

    assert_int_equal(cuMemAllocPitch(&base, &pitch, 100, 3, 4), CUDA_SUCCESS);
    assert_true(pitch >= 100 && pitch % 4 == 0);
    assert_int_equal(cuMemFree(base), CUDA_SUCCESS);
    assert_int_equal(cuMemFree(d), CUDA_SUCCESS);
    assert_int_equal(cuMemFree(d2), CUDA_SUCCESS);
}

static void test_shared_with_runtime(void **state)
{
    unsigned char *rt = NULL, host[32], back[32];
    CUdeviceptr d;
    cudaStream_t s;
    CUstream cs;
    CUevent e;
    CUcontext ctx;
    float ms;

    (void)state;
    for (int i = 0; i < 32; i++)
        host[i] = (unsigned char)(i + 1);
    assert_int_equal(cudaMalloc((void **)&rt, 32), cudaSuccess);
    assert_int_equal(cudaMemcpy(rt, host, 32, cudaMemcpyHostToDevice), cudaSuccess);
    assert_int_equal(cuMemcpyDtoH(back, (CUdeviceptr)(uintptr_t)rt, 32), CUDA_SUCCESS);
    assert_memory_equal(back, host, 32);
    assert_int_equal(cuMemFree((CUdeviceptr)(uintptr_t)rt), CUDA_SUCCESS);

    assert_int_equal(cuMemAlloc(&d, 32), CUDA_SUCCESS);
    assert_int_equal(cuMemsetD8(d, 9, 32), CUDA_SUCCESS);
    assert_int_equal(cudaMemcpy(back, (void *)(uintptr_t)d, 32, cudaMemcpyDeviceToHost),
                     cudaSuccess);
    assert_int_equal(back[31], 9);
    assert_int_equal(cudaFree((void *)(uintptr_t)d), cudaSuccess);

    assert_int_equal(cudaStreamCreate(&s), cudaSuccess);
    assert_int_equal(cuStreamQuery(s), CUDA_SUCCESS);
    assert_int_equal(cuStreamGetCtx(s, &ctx), CUDA_SUCCESS);
    assert_ptr_equal(ctx, primary);
    assert_int_equal(cuStreamDestroy(s), CUDA_SUCCESS);
    assert_int_equal(cudaStreamQuery(s), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidResourceHandle);
    assert_int_equal(cuStreamCreate(&cs, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
    assert_int_equal(cuEventCreate(&e, 0), CUDA_SUCCESS);
    assert_int_equal(cuEventRecord(e, cs), CUDA_SUCCESS);
    assert_int_equal(cudaEventSynchronize(e), cudaSuccess);
    assert_int_equal(cuEventElapsedTime(&ms, e, e), CUDA_SUCCESS);
    assert_int_equal(cudaStreamSynchronize(cs), cudaSuccess);
    assert_int_equal(cuStreamDestroy(cs), CUDA_SUCCESS);
    assert_int_equal(cuStreamDestroy(cs), CUDA_ERROR_INVALID_HANDLE);
    assert_int_equal(cuEventDestroy(e), CUDA_SUCCESS);
    /* driver failures leave the runtime's last error alone */
    assert_int_equal(cudaGetLastError(), cudaSuccess);
}

/* A new thread has no current context until a runtime call makes the primary one current. */
static void *fresh_thread(void *arg)
{
    CUcontext c = (CUcontext)arg;
    CUdeviceptr d;
    void *p;

    (void)arg;
    if (cuCtxGetCurrent(&c) != CUDA_SUCCESS || c != NULL)
        return "a new thread had a current context";
    if (cuMemAlloc(&d, 8) != CUDA_ERROR_INVALID_CONTEXT)
        return "cuMemAlloc without a context did not fail";
    if (cudaMalloc(&p, 8) != cudaSuccess || cudaFree(p) != cudaSuccess)
        return "cudaMalloc failed";
    if (cuCtxGetCurrent(&c) != CUDA_SUCCESS || c != primary)
        return "the runtime did not make the primary context current";
    return NULL;
}

static void test_runtime_makes_primary_current(void **state)
{
    pthread_t t;
    void *err = "not run";

    (void)state;
    assert_int_equal(pthread_create(&t, NULL, fresh_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &err), 0);
    if (err)
        fail_msg("%s", (const char *)err);
}

static void test_error_names(void **state)
{
    const char *s = "x";

    (void)state;
    assert_int_equal(cuGetErrorName(CUDA_ERROR_INVALID_HANDLE, &s), CUDA_SUCCESS);
    assert_string_equal(s, "CUDA_ERROR_INVALID_HANDLE");
    assert_int_equal(cuGetErrorString(CUDA_ERROR_ILLEGAL_ADDRESS, &s), CUDA_SUCCESS);
    assert_string_equal(s, "an illegal memory access was encountered");
    assert_int_equal(cuGetErrorName(CUDA_ERROR_KEY_ROTATION, &s), CUDA_SUCCESS);
    assert_int_equal(cuGetErrorName((CUresult)12345, &s), CUDA_ERROR_INVALID_VALUE);
    assert_null(s);
    assert_int_equal(cuGetErrorString(CUDA_SUCCESS, NULL), CUDA_ERROR_INVALID_VALUE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rules),
        cmocka_unit_test(test_contexts),
        cmocka_unit_test(test_device_queries),
        cmocka_unit_test(test_module_ptx),
        cmocka_unit_test(test_launch),
        cmocka_unit_test(test_library),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_shared_with_runtime),
        cmocka_unit_test(test_runtime_makes_primary_current),
        cmocka_unit_test(test_error_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
