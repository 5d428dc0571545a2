/* SPDX-License-Identifier: Apache-2.0
 *
 * drv_ptx_jit: loads compute_75 PTX (compiled at build time, embedded as a
 * string) with cuModuleLoadDataEx and JIT options: info and error log
 * buffers with their sizes, and an optimization level. It then writes the
 * module global drv_scale through cuModuleGetGlobal + cuMemcpyHtoD, runs a
 * kernel that reads it (kernelParams), and runs a second kernel launched with
 * the `extra` form: its parameters packed by hand into one buffer at the
 * kernel's alignment (float at 0, pointers at 8 and 16, int at 24).
 * The JIT log goes to stderr: its text depends on the driver.
 *
 * Output contract: see examples/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

#include "drv_check.h"

extern const unsigned char drv_jit_ptx[];

enum { N = 4096, LOG_SIZE = 8192 };

static CUmodule load_ptx(void)
{
    static char info_log[LOG_SIZE];
    static char error_log[LOG_SIZE];
    CUjit_option opts[] = {
        CU_JIT_INFO_LOG_BUFFER,
        CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
        CU_JIT_ERROR_LOG_BUFFER,
        CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
        CU_JIT_OPTIMIZATION_LEVEL,
    };
    /* Sizes and the level travel in the pointer itself, as cuda.h says. */
    void *values[] = {
        info_log,
        (void *)(uintptr_t)LOG_SIZE,
        error_log,
        (void *)(uintptr_t)LOG_SIZE,
        (void *)(uintptr_t)3,
    };
    CUmodule mod;

    CUresult res = cuModuleLoadDataEx(&mod, drv_jit_ptx, sizeof(opts) / sizeof(opts[0]), opts,
                                      values);
    if (res != CUDA_SUCCESS) {
        fprintf(stderr, "JIT error log:\n%.*s\n", LOG_SIZE, error_log);
        drv_check(res, "cuModuleLoadDataEx(ptx, jit options)");
    }
    /* On return the size slots hold the bytes written to each log. */
    size_t info_len = (size_t)(uintptr_t)values[1];
    if (info_len > 0 && info_len <= LOG_SIZE)
        fprintf(stderr, "JIT info log: %.*s\n", (int)info_len, info_log);
    return mod;
}

static int check_values(const char *what, const float *y, float (*expect)(int))
{
    int wrong = 0, first = -1;
    for (int i = 0; i < N; i++) {
        if (y[i] != expect(i)) {
            if (first < 0)
                first = i;
            wrong++;
        }
    }
    if (wrong) {
        printf("FAILED: %s: %d of %d values wrong, first y[%d] = %.1f, expected %.1f\n", what,
               wrong, N, first, y[first], expect(first));
        return 1;
    }
    printf("%s: y[0] = %.1f, y[%d] = %.1f\n", what, y[0], N - 1, y[N - 1]);
    return 0;
}

static float x_of(int i)
{
    return (float)(i % 100);
}
static float scaled(int i)
{
    return 3.0f * x_of(i);
}
static float axpy_of(int i)
{
    return 0.5f * x_of(i) + scaled(i);
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CUfunction scale_fn, axpy_fn;
    CUdeviceptr d_x, d_y, d_scale;
    size_t scale_size;
    static float x[N], y[N];

    for (int i = 0; i < N; i++)
        x[i] = x_of(i);
    printf("drv_ptx_jit: n = %d\n", N);

    DRV_CHECK(cuInit(0));
    DRV_CHECK(cuDeviceGet(&dev, 0));
    DRV_CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    DRV_CHECK(cuCtxSetCurrent(ctx));

    CUmodule mod = load_ptx();
    DRV_CHECK(cuModuleGetFunction(&scale_fn, mod, "scale_by_global"));
    DRV_CHECK(cuModuleGetFunction(&axpy_fn, mod, "axpy"));
    DRV_CHECK(cuModuleGetGlobal(&d_scale, &scale_size, mod, "drv_scale"));
    printf("drv_scale: %zu bytes\n", scale_size);
    if (scale_size != sizeof(float)) {
        printf("FAILED: drv_scale is %zu bytes, expected %zu\n", scale_size, sizeof(float));
        return 2;
    }
    const float scale = 3.0f;
    DRV_CHECK(cuMemcpyHtoD(d_scale, &scale, sizeof(scale)));

    DRV_CHECK(cuMemAlloc(&d_x, sizeof(x)));
    DRV_CHECK(cuMemAlloc(&d_y, sizeof(y)));
    DRV_CHECK(cuMemcpyHtoD(d_x, x, sizeof(x)));
    DRV_CHECK(cuMemsetD32(d_y, 0, N));

    const unsigned threads = 128, blocks = (N + threads - 1) / threads;
    int n = N;
    void *params[] = {&d_x, &d_y, &n};
    DRV_CHECK(cuLaunchKernel(scale_fn, blocks, 1, 1, threads, 1, 1, 0, NULL, params, NULL));
    DRV_CHECK(cuMemcpyDtoH(y, d_y, sizeof(y)));
    if (check_values("scale_by_global", y, scaled))
        return 2;

    /* axpy(float a, const float *x, float *y, int n), packed at the offsets
     * the kernel's ABI gives them; the size ends at the last parameter. */
    unsigned char buf[28];
    const float a = 0.5f;
    memset(buf, 0, sizeof(buf));
    memcpy(buf + 0, &a, sizeof(a));
    memcpy(buf + 8, &d_x, sizeof(d_x));
    memcpy(buf + 16, &d_y, sizeof(d_y));
    memcpy(buf + 24, &n, sizeof(n));
    size_t buf_size = sizeof(buf);
    void *extra[] = {
        CU_LAUNCH_PARAM_BUFFER_POINTER, buf,
        CU_LAUNCH_PARAM_BUFFER_SIZE, &buf_size,
        CU_LAUNCH_PARAM_END,
    };
    DRV_CHECK(cuLaunchKernel(axpy_fn, blocks, 1, 1, threads, 1, 1, 0, NULL, NULL, extra));
    DRV_CHECK(cuMemcpyDtoH(y, d_y, sizeof(y)));
    if (check_values("axpy (extra)", y, axpy_of))
        return 2;

    DRV_CHECK(cuMemFree(d_x));
    DRV_CHECK(cuMemFree(d_y));
    DRV_CHECK(cuModuleUnload(mod));
    DRV_CHECK(cuDevicePrimaryCtxRelease(dev));
    printf("drv_ptx_jit: PASSED\n");
    return 0;
}
