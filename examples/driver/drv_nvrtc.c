/* SPDX-License-Identifier: Apache-2.0
 *
 * drv_nvrtc: compiles a saxpy kernel from a source string at run time with
 * NVRTC and runs it twice: once as compute_75 PTX (nvrtcGetPTX, JIT-compiled
 * by the driver in cuModuleLoadData) and once as a CUBIN for the device's own
 * architecture (sm_XY from cuDeviceGetAttribute's compute capability,
 * nvrtcGetCUBIN), which the driver loads without JIT. Compile logs and the
 * architecture go to stderr, so stdout is the same on every GPU.
 *
 * Output contract: see examples/README.md.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cuda.h>
#include <nvrtc.h>

#include "drv_check.h"

enum { N = 100000 };

static const char saxpy_src[] =
    "extern \"C\" __global__ void saxpy(float a, const float *x, float *y, int n)\n"
    "{\n"
    "    int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "    if (i < n)\n"
    "        y[i] = a * x[i] + y[i];\n"
    "}\n";

static void nvrtc_check(nvrtcResult res, const char *what)
{
    if (res != NVRTC_SUCCESS) {
        printf("%s: %s\n", what, nvrtcGetErrorString(res));
        exit(1);
    }
}

/* Compiles saxpy_src for arch ("compute_75" or "sm_XY"); returns the PTX or
 * CUBIN image in a malloc'd buffer the caller frees. */
static char *compile(const char *arch, int cubin)
{
    nvrtcProgram prog;
    char arch_opt[64];
    const char *opts[] = {arch_opt};
    size_t size;

    snprintf(arch_opt, sizeof(arch_opt), "--gpu-architecture=%s", arch);
    nvrtc_check(nvrtcCreateProgram(&prog, saxpy_src, "saxpy.cu", 0, NULL, NULL),
                "nvrtcCreateProgram");
    nvrtcResult res = nvrtcCompileProgram(prog, 1, opts);
    size_t log_size = 0;
    if (nvrtcGetProgramLogSize(prog, &log_size) == NVRTC_SUCCESS && log_size > 1) {
        char *log = malloc(log_size);
        if (log && nvrtcGetProgramLog(prog, log) == NVRTC_SUCCESS)
            fprintf(stderr, "nvrtc log (%s):\n%s\n", arch, log);
        free(log);
    }
    nvrtc_check(res, "nvrtcCompileProgram");

    if (cubin)
        nvrtc_check(nvrtcGetCUBINSize(prog, &size), "nvrtcGetCUBINSize");
    else
        nvrtc_check(nvrtcGetPTXSize(prog, &size), "nvrtcGetPTXSize");
    char *image = malloc(size);
    if (!image) {
        printf("drv_nvrtc: host allocation of %zu bytes failed\n", size);
        exit(1);
    }
    if (cubin)
        nvrtc_check(nvrtcGetCUBIN(prog, image), "nvrtcGetCUBIN");
    else
        nvrtc_check(nvrtcGetPTX(prog, image), "nvrtcGetPTX");
    nvrtc_check(nvrtcDestroyProgram(&prog), "nvrtcDestroyProgram");
    return image;
}

/* Loads image, runs y = 2x + y over N elements and checks every value. */
static int run_saxpy(const char *label, const char *image, CUdeviceptr d_x, CUdeviceptr d_y,
                     const float *x, float *y)
{
    CUmodule mod;
    CUfunction fn;

    DRV_CHECK(cuModuleLoadData(&mod, image));
    DRV_CHECK(cuModuleGetFunction(&fn, mod, "saxpy"));
    for (int i = 0; i < N; i++)
        y[i] = 1.0f;
    DRV_CHECK(cuMemcpyHtoD(d_y, y, N * sizeof(float)));

    float a = 2.0f;
    int n = N;
    void *params[] = {&a, &d_x, &d_y, &n};
    const unsigned threads = 256, blocks = (N + threads - 1) / threads;
    DRV_CHECK(cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0, NULL, params, NULL));
    DRV_CHECK(cuMemcpyDtoH(y, d_y, N * sizeof(float)));
    DRV_CHECK(cuModuleUnload(mod));

    int wrong = 0, first = -1;
    for (int i = 0; i < N; i++) {
        if (y[i] != 2.0f * x[i] + 1.0f) {
            if (first < 0)
                first = i;
            wrong++;
        }
    }
    if (wrong) {
        printf("FAILED: %s: %d of %d values wrong, first y[%d] = %.1f, expected %.1f\n", label,
               wrong, N, first, y[first], 2.0f * x[first] + 1.0f);
        return 1;
    }
    printf("%s: y[0] = %.1f, y[%d] = %.1f\n", label, y[0], N - 1, y[N - 1]);
    return 0;
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CUdeviceptr d_x, d_y;
    int major, minor;
    static float x[N], y[N];

    for (int i = 0; i < N; i++)
        x[i] = (float)(i % 1000);
    printf("drv_nvrtc: n = %d\n", N);

    DRV_CHECK(cuInit(0));
    DRV_CHECK(cuDeviceGet(&dev, 0));
    DRV_CHECK(cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
    DRV_CHECK(cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
    DRV_CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    DRV_CHECK(cuCtxSetCurrent(ctx));
    DRV_CHECK(cuMemAlloc(&d_x, sizeof(x)));
    DRV_CHECK(cuMemAlloc(&d_y, sizeof(y)));
    DRV_CHECK(cuMemcpyHtoD(d_x, x, sizeof(x)));

    char *ptx = compile("compute_75", 0);
    int failed = run_saxpy("saxpy (ptx, compute_75)", ptx, d_x, d_y, x, y);
    free(ptx);

    char sm[32];
    snprintf(sm, sizeof(sm), "sm_%d%d", major, minor);
    fprintf(stderr, "drv_nvrtc: device architecture %s\n", sm);
    char *cubin = compile(sm, 1);
    failed |= run_saxpy("saxpy (cubin, device arch)", cubin, d_x, d_y, x, y);
    free(cubin);

    DRV_CHECK(cuMemFree(d_x));
    DRV_CHECK(cuMemFree(d_y));
    DRV_CHECK(cuDevicePrimaryCtxRelease(dev));
    if (failed)
        return 2;
    printf("drv_nvrtc: PASSED\n");
    return 0;
}
