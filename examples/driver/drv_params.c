/* SPDX-License-Identifier: Apache-2.0
 *
 * drv_params: a kernel with 18 parameters of odd sizes and alignments (char,
 * short, int, long long, float, double, a struct {char; double; int} with
 * padding, a float3, an unsigned char, a 40-byte array inside a struct, a
 * bool, unsigned short/int/long long, another float and double, a signed
 * char, and the output pointer). The kernel stores a checksum of every value
 * it received; the host computes the same checksum (params.h) over the values
 * it passed. Launched with cuLaunchKernel's kernelParams, then with
 * cuLaunchKernelEx (a CUlaunchConfig without attributes) and other values.
 *
 * Output contract: see examples/README.md.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda.h>

#include "drv_check.h"
#include "params.h"

extern const unsigned char drv_params_fatbin[];

/* One set of argument values; seed makes the two launches differ. */
struct args {
    char c;
    short s;
    int i;
    long long ll;
    float f;
    double d;
    struct drv_mixed m;
    float3 v;
    unsigned char uc;
    struct drv_arr40 a;
    bool b;
    unsigned short us;
    unsigned int ui;
    unsigned long long ull;
    float f2;
    double d2;
    signed char sc;
};

static struct args make_args(int seed)
{
    struct args p = {
        .c = (char)('A' + seed),
        .s = (short)(-12345 + seed),
        .i = -2000000000 + seed,
        .ll = -9000000000000000000ll + seed,
        .f = 1.25f * (float)(seed + 1),
        .d = -3.0e300 / (double)(seed + 1),
        .m = {.c = (char)('z' - seed), .d = 0.1 * (seed + 1), .i = 77 - seed},
        .v = {.x = 0.5f, .y = -1.5f * (float)seed, .z = 1.0e-30f},
        .uc = (unsigned char)(250 + seed),
        .b = seed % 2 == 0,
        .us = (unsigned short)(65535 - seed),
        .ui = 4000000000u + (unsigned)seed,
        .ull = 0xfedcba9876543210ull ^ (unsigned long long)seed,
        .f2 = -0.0f,
        .d2 = 6.02214076e23 * (seed + 1),
        .sc = (signed char)(-128 + seed),
    };
    for (int k = 0; k < 10; k++)
        p.a.v[k] = (k + 1) * (seed % 2 ? -1000003 : 999983);
    return p;
}

static unsigned long long host_checksum(const struct args *p)
{
    return drv_params_checksum(p->c, p->s, p->i, p->ll, p->f, p->d, p->m, p->v, p->uc, p->a,
                               p->b, p->us, p->ui, p->ull, p->f2, p->d2, p->sc);
}

/* Returns the checksum the kernel stored for p, launched one way or other. */
static unsigned long long launch(CUfunction fn, struct args *p, CUdeviceptr d_out, int ex)
{
    void *params[] = {&p->c,  &p->s,  &p->i, &p->ll, &p->f, &p->d,   &p->m,  &p->v,  &p->uc,
                      &p->a,  &p->b,  &p->us, &p->ui, &p->ull, &p->f2, &p->d2, &p->sc, &d_out};
    unsigned long long got = 0;

    DRV_CHECK(cuMemsetD8(d_out, 0, sizeof(got)));
    if (ex) {
        CUlaunchConfig cfg = {
            .gridDimX = 1, .gridDimY = 1, .gridDimZ = 1,
            .blockDimX = 1, .blockDimY = 1, .blockDimZ = 1,
            .sharedMemBytes = 0, .hStream = NULL, .attrs = NULL, .numAttrs = 0,
        };
        DRV_CHECK(cuLaunchKernelEx(&cfg, fn, params, NULL));
    } else {
        DRV_CHECK(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL));
    }
    DRV_CHECK(cuCtxSynchronize());
    DRV_CHECK(cuMemcpyDtoH(&got, d_out, sizeof(got)));
    return got;
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fn;
    CUdeviceptr d_out;
    int failed = 0;

    printf("drv_params: 18 parameters, struct drv_mixed %zu bytes, struct drv_arr40 %zu bytes\n",
           sizeof(struct drv_mixed), sizeof(struct drv_arr40));

    DRV_CHECK(cuInit(0));
    DRV_CHECK(cuDeviceGet(&dev, 0));
    DRV_CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    DRV_CHECK(cuCtxSetCurrent(ctx));
    DRV_CHECK(cuModuleLoadData(&mod, drv_params_fatbin));
    DRV_CHECK(cuModuleGetFunction(&fn, mod, "params_sum"));
    DRV_CHECK(cuMemAlloc(&d_out, sizeof(unsigned long long)));

    for (int ex = 0; ex <= 1; ex++) {
        const char *how = ex ? "cuLaunchKernelEx" : "cuLaunchKernel";
        struct args p = make_args(ex);
        unsigned long long want = host_checksum(&p);
        unsigned long long got = launch(fn, &p, d_out, ex);
        printf("%s: checksum %016llx\n", how, got);
        if (got != want) {
            printf("FAILED: %s: kernel checksum %016llx, host checksum %016llx\n", how, got,
                   want);
            failed = 1;
        }
    }

    DRV_CHECK(cuMemFree(d_out));
    DRV_CHECK(cuModuleUnload(mod));
    DRV_CHECK(cuDevicePrimaryCtxRelease(dev));
    if (failed)
        return 2;
    printf("drv_params: PASSED\n");
    return 0;
}
