/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fake runtime's own behaviour, called directly (linked against it):
 * what the isolation tests rely on -- device memory round trips, refusal of
 * pointers and handles it never handed out, registration, kernel parameter
 * layouts and the fake_fill kernel -- and that error names and
 * texts exist for every int.
 */
#include <cuda_runtime_api.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

void **__cudaRegisterFatBinary(void *fatCubin);
void __cudaRegisterFatBinaryEnd(void **handle);
void __cudaUnregisterFatBinary(void **handle);
void __cudaRegisterFunction(void **handle, const char *hostFun, char *deviceFun,
                            const char *deviceName, int thread_limit, uint3 *tid, uint3 *bid,
                            dim3 *bDim, dim3 *gDim, int *wSize);
void __cudaRegisterVar(void **handle, char *hostVar, char *deviceAddress, const char *deviceName,
                       int ext, size_t size, int constant, int global);

static void test_error_names(void **state)
{
    static const int odd[] = { INT_MIN, -1, 10, 1100, 99999, INT_MAX };

    (void)state;
    for (int code = -5; code < 1100; code++) {
        assert_non_null(cudaGetErrorName((cudaError_t)code));
        assert_non_null(cudaGetErrorString((cudaError_t)code));
    }
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        assert_string_equal(cudaGetErrorName((cudaError_t)odd[i]), "unrecognized error code");
        assert_string_equal(cudaGetErrorString((cudaError_t)odd[i]), "unrecognized error code");
    }
    assert_string_equal(cudaGetErrorName(cudaErrorInvalidResourceHandle),
                        "cudaErrorInvalidResourceHandle");
    assert_string_equal(cudaGetErrorName(cudaErrorInvalidResourceConfiguration),
                        "cudaErrorInvalidResourceConfiguration");
    assert_string_equal(cudaGetErrorString(cudaErrorInvalidValue), "invalid argument");
}

static void test_device(void **state)
{
    struct cudaDeviceProp p;
    size_t free_b, total;
    int n = 0;

    (void)state;
    assert_int_equal(cudaGetDeviceCount(&n), cudaSuccess);
    assert_int_equal(n, 1);
    assert_int_equal(cudaSetDevice(0), cudaSuccess);
    assert_int_equal(cudaSetDevice(1), cudaErrorInvalidDevice);
    assert_int_equal(cudaGetLastError(), cudaErrorInvalidDevice);
    assert_int_equal(cudaGetLastError(), cudaSuccess);
    assert_int_equal(cudaGetDeviceProperties(&p, 0), cudaSuccess);
    assert_string_equal(p.name, "vgpu fake device");
    assert_int_equal(cudaMemGetInfo(&free_b, &total), cudaSuccess);
    assert_true(free_b == total && total == p.totalGlobalMem);
}

static void test_memory(void **state)
{
    unsigned char host[1000], back[1000], *d = NULL, *d2 = NULL, *foreign = host;
    struct cudaPointerAttributes at;
    struct cudaPitchedPtr pp;

    (void)state;
    for (int i = 0; i < 1000; i++)
        host[i] = (unsigned char)(i * 7);
    assert_int_equal(cudaMalloc((void **)&d, 1000), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&d2, 1000), cudaSuccess);
    assert_int_equal(cudaMemcpy(d, host, 1000, cudaMemcpyHostToDevice), cudaSuccess);
    assert_int_equal(cudaMemcpy(d2, d, 1000, cudaMemcpyDeviceToDevice), cudaSuccess);
    assert_int_equal(cudaMemset(d2, 0xee, 10), cudaSuccess);
    assert_int_equal(cudaMemcpy(back, d2, 1000, cudaMemcpyDefault), cudaSuccess);
    assert_int_equal(back[9], 0xee);
    assert_memory_equal(back + 10, host + 10, 990);

    /* ranges the fake never handed out, or that run past an allocation */
    assert_int_equal(cudaMemcpy(back, foreign, 10, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    assert_int_equal(cudaMemcpy(foreign, back, 10, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
    assert_int_equal(cudaMemset(d + 990, 0, 11), cudaErrorInvalidValue);
    assert_int_equal(cudaMemcpy(back, d + 1, 1000, cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
    assert_int_equal(cudaFree(d + 1), cudaErrorInvalidValue);
    assert_int_equal(cudaFree(foreign), cudaErrorInvalidValue);

    assert_int_equal(cudaPointerGetAttributes(&at, d + 5), cudaSuccess);
    assert_int_equal(at.type, cudaMemoryTypeDevice);
    assert_int_equal(cudaPointerGetAttributes(&at, host), cudaSuccess);
    assert_int_equal(at.type, cudaMemoryTypeUnregistered);
    assert_int_equal(cudaFree(d), cudaSuccess);
    assert_int_equal(cudaFree(d), cudaErrorInvalidValue);
    assert_int_equal(cudaFree(d2), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&d, (size_t)3 << 30), cudaErrorMemoryAllocation);
    assert_int_equal(cudaMalloc3D(&pp, (struct cudaExtent){ 100, 3, 2 }), cudaSuccess);
    assert_int_equal(pp.pitch, 512);
    assert_int_equal(cudaMemset2D(pp.ptr, pp.pitch, 1, 100, 6), cudaSuccess);
    assert_int_equal(cudaMemset2D(pp.ptr, pp.pitch, 1, 100, 7), cudaErrorInvalidValue);
    assert_int_equal(cudaFree(pp.ptr), cudaSuccess);
}

static void test_streams_events(void **state)
{
    cudaStream_t s;
    cudaEvent_t a, b, nt;
    float ms = -1;
    int prio = 1;
    int bogus;

    (void)state;
    assert_int_equal(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, -100), cudaSuccess);
    assert_int_equal(cudaStreamGetPriority(s, &prio), cudaSuccess);
    assert_int_equal(prio, -5);
    assert_int_equal(cudaEventCreate(&a), cudaSuccess);
    assert_int_equal(cudaEventCreate(&b), cudaSuccess);
    assert_int_equal(cudaEventCreateWithFlags(&nt, cudaEventDisableTiming), cudaSuccess);
    assert_int_equal(cudaEventRecord(a, s), cudaSuccess);
    assert_int_equal(cudaEventRecord(b, cudaStreamPerThread), cudaSuccess);
    assert_int_equal(cudaEventRecord(nt, NULL), cudaSuccess);
    assert_int_equal(cudaStreamWaitEvent(s, b, 0), cudaSuccess);
    assert_int_equal(cudaEventElapsedTime(&ms, a, b), cudaSuccess);
    assert_true(ms >= 0);
    assert_int_equal(cudaEventElapsedTime(&ms, a, nt), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaStreamQuery(s), cudaSuccess);
    assert_int_equal(cudaEventSynchronize(a), cudaSuccess);

    /* handles the fake never handed out */
    assert_int_equal(cudaStreamSynchronize((cudaStream_t)(void *)&bogus), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaStreamDestroy((cudaStream_t)(void *)&bogus), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaEventQuery((cudaEvent_t)(void *)&bogus), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaEventDestroy((cudaEvent_t)(void *)&bogus), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaMemsetAsync(NULL, 0, 0, (cudaStream_t)(void *)&bogus),
                     cudaErrorInvalidResourceHandle);

    assert_int_equal(cudaStreamDestroy(s), cudaSuccess);
    assert_int_equal(cudaStreamQuery(s), cudaErrorInvalidResourceHandle);
    assert_int_equal(cudaEventDestroy(a), cudaSuccess);
    assert_int_equal(cudaEventDestroy(b), cudaSuccess);
    assert_int_equal(cudaEventDestroy(nt), cudaSuccess);
    assert_int_equal(cudaEventQuery(a), cudaErrorInvalidResourceHandle);
}

static char host_fill, host_other, host_var[16];

static void test_kernels(void **state)
{
    void **mod = __cudaRegisterFatBinary(NULL);
    unsigned char *d, back[64];
    unsigned value = 0x1a5;
    size_t n = 32, off, size;
    void *p, *args[3] = { &p, &value, &n };
    dim3 one = { 1, 1, 1 }, none = { 0, 1, 1 };
    const char *name;
    uint32_t secret = 0xc0ffee, got = 0;
    void *vaddr;

    (void)state;
    __cudaRegisterFunction(mod, &host_fill, (char *)"_Z9fake_fillPhjm", "_Z9fake_fillPhjm", -1,
                           NULL, NULL, NULL, NULL, NULL);
    __cudaRegisterFunction(mod, &host_other, (char *)"other", "other", -1, NULL, NULL, NULL, NULL,
                           NULL);
    __cudaRegisterVar(mod, host_var, (char *)"secret", "secret", 0, sizeof(host_var), 0, 0);
    __cudaRegisterFatBinaryEnd(mod);

    /* fake_fill's layout, then the end of the list; other kernels have no parameters */
    assert_int_equal(cudaFuncGetParamInfo(&host_fill, 1, &off, &size), cudaSuccess);
    assert_true(off == 8 && size == 4);
    assert_int_equal(cudaFuncGetParamInfo(&host_fill, 3, &off, &size), cudaErrorInvalidValue);
    assert_int_equal(cudaFuncGetParamInfo(&host_other, 0, &off, &size), cudaErrorInvalidValue);
    assert_int_equal(cudaFuncGetParamInfo(&host_var, 0, &off, &size), cudaErrorInvalidDeviceFunction);
    assert_int_equal(cudaFuncGetName(&name, &host_other), cudaSuccess);
    assert_string_equal(name, "other");

    assert_int_equal(cudaMalloc((void **)&d, 64), cudaSuccess);
    assert_int_equal(cudaMemset(d, 0, 64), cudaSuccess);
    p = d + 8;
    assert_int_equal(cudaLaunchKernel(&host_fill, one, one, args, 0, NULL), cudaSuccess);
    assert_int_equal(cudaMemcpy(back, d, 64, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(back[7], 0);
    assert_int_equal(back[8], 0xa5);
    assert_int_equal(back[39], 0xa5);
    assert_int_equal(back[40], 0);
    /* a fault: past the allocation, or not device memory at all */
    p = d + 40;
    assert_int_equal(cudaLaunchKernel(&host_fill, one, one, args, 0, NULL), cudaErrorIllegalAddress);
    p = back;
    assert_int_equal(cudaLaunchKernel(&host_fill, one, one, args, 0, NULL), cudaErrorIllegalAddress);
    assert_int_equal(cudaLaunchKernel(&host_other, one, one, NULL, 0, NULL), cudaSuccess);
    assert_int_equal(cudaLaunchKernel(&host_other, none, one, NULL, 0, NULL),
                     cudaErrorInvalidConfiguration);
    assert_int_equal(cudaLaunchKernel(&host_var, one, one, NULL, 0, NULL),
                     cudaErrorInvalidDeviceFunction);

    assert_int_equal(cudaMemcpyToSymbol(host_var, &secret, 4, 4, cudaMemcpyHostToDevice), cudaSuccess);
    assert_int_equal(cudaGetSymbolAddress(&vaddr, host_var), cudaSuccess);
    assert_int_equal(cudaMemcpy(&got, (char *)vaddr + 4, 4, cudaMemcpyDeviceToHost), cudaSuccess);
    assert_int_equal(got, secret);
    assert_int_equal(cudaMemcpyFromSymbol(&got, host_var, 4, 13, cudaMemcpyDeviceToHost),
                     cudaErrorInvalidValue);
    assert_int_equal(cudaFree(vaddr), cudaErrorInvalidValue);
    assert_int_equal(cudaFree(d), cudaSuccess);

    __cudaUnregisterFatBinary(mod);
    assert_int_equal(cudaFuncGetName(&name, &host_other), cudaErrorInvalidDeviceFunction);
    assert_int_equal(cudaGetSymbolAddress(&vaddr, host_var), cudaErrorInvalidSymbol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_device),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_streams_events),
        cmocka_unit_test(test_kernels),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
