/* SPDX-License-Identifier: Apache-2.0
 *
 * drv_module_fatbin: the driver-API vector add. The kernel was compiled at
 * build time to a fatbin (sm_75 and sm_90 SASS, compute_75 PTX) that is
 * embedded in this program; it is loaded with cuModuleLoadData, found with
 * cuModuleGetFunction and launched with cuLaunchKernel's kernelParams over
 * one million floats. Inputs are small integers, so every sum is exact and
 * the output does not depend on the GPU.
 *
 * Output contract: see examples/README.md (errors exit 1, wrong results
 * print FAILED and exit 2, success ends with "drv_module_fatbin: PASSED").
 */
#include <stdio.h>
#include <stdlib.h>

#include <cuda.h>

#include "drv_check.h"

extern const unsigned char drv_vector_add_fatbin[];

int main(void)
{
    const int n = 1000000;
    const size_t bytes = (size_t)n * sizeof(float);
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUdeviceptr d_a, d_b, d_c;

    float *a = malloc(bytes);
    float *b = malloc(bytes);
    float *c = malloc(bytes);
    if (!a || !b || !c) {
        printf("drv_module_fatbin: host allocation of %zu bytes failed\n", bytes);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        a[i] = (float)i;
        b[i] = (float)(2 * (i % 1000));
        c[i] = -1.0f;
    }
    printf("drv_module_fatbin: n = %d\n", n);

    DRV_CHECK(cuInit(0));
    DRV_CHECK(cuDeviceGet(&dev, 0));
    DRV_CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    DRV_CHECK(cuCtxSetCurrent(ctx));

    DRV_CHECK(cuModuleLoadData(&mod, drv_vector_add_fatbin));
    DRV_CHECK(cuModuleGetFunction(&fn, mod, "vector_add"));

    DRV_CHECK(cuMemAlloc(&d_a, bytes));
    DRV_CHECK(cuMemAlloc(&d_b, bytes));
    DRV_CHECK(cuMemAlloc(&d_c, bytes));
    DRV_CHECK(cuMemcpyHtoD(d_a, a, bytes));
    DRV_CHECK(cuMemcpyHtoD(d_b, b, bytes));

    const unsigned threads = 256;
    const unsigned blocks = (unsigned)((n + threads - 1) / threads);
    int count = n;
    void *params[] = {&d_a, &d_b, &d_c, &count};
    DRV_CHECK(cuLaunchKernel(fn, blocks, 1, 1, threads, 1, 1, 0, NULL, params, NULL));
    DRV_CHECK(cuCtxSynchronize());
    DRV_CHECK(cuMemcpyDtoH(c, d_c, bytes));

    const int shown[] = {0, 1, 999, 1000, 500000, 999999};
    for (size_t k = 0; k < sizeof(shown) / sizeof(shown[0]); k++)
        printf("c[%d] = %.1f\n", shown[k], c[shown[k]]);

    int wrong = 0, first_wrong = -1;
    for (int i = 0; i < n; i++) {
        if (c[i] != a[i] + b[i]) {
            if (first_wrong < 0)
                first_wrong = i;
            wrong++;
        }
    }

    DRV_CHECK(cuMemFree(d_a));
    DRV_CHECK(cuMemFree(d_b));
    DRV_CHECK(cuMemFree(d_c));
    DRV_CHECK(cuModuleUnload(mod));
    DRV_CHECK(cuDevicePrimaryCtxRelease(dev));

    if (wrong) {
        printf("FAILED: %d of %d sums wrong, first at %d: %.1f + %.1f gave %.1f\n", wrong, n,
               first_wrong, a[first_wrong], b[first_wrong], c[first_wrong]);
        return 2;
    }
    free(a);
    free(b);
    free(c);
    printf("drv_module_fatbin: PASSED\n");
    return 0;
}
