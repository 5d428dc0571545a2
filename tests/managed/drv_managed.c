/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Managed memory through the driver API, as NVIDIA's static runtime and
 * the frameworks use it on a device without concurrent managed access:
 * cuMemAllocManaged, host writes, a kernel that changes the memory, a
 * synchronize, host reads; copies and a memset naming managed memory;
 * advice, prefetches and range attributes; stream attachment; the
 * refusals the driver gives.  Prints what it saw; the same output natively
 * (drv_managed_gpu) and through vgpu's libcuda.so.1 on the fake.
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char drv_test_ptx[];

#define N (1u << 20)            /* four of the shadow's chunks */

static int failures;

static void check(const char *what, CUresult r, CUresult want)
{
    const char *name = NULL;

    cuGetErrorName(r, &name);
    printf("%s: %s\n", what, name ? name : "?");
    if (r != want)
        failures++;
}

static void must(const char *what, CUresult r)
{
    if (r != CUDA_SUCCESS) {
        const char *name = NULL;

        cuGetErrorName(r, &name);
        printf("%s failed: %s\n", what, name ? name : "?");
        exit(1);
    }
}

static void fill(CUfunction f, CUdeviceptr p, unsigned value, size_t n)
{
    void *args[] = { &p, &value, &n };

    must("cuLaunchKernel", cuLaunchKernel(f, 64, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
}

static int range_attr(CUmem_range_attribute a, CUdeviceptr p, size_t n)
{
    int v = 12345;

    must("cuMemRangeGetAttribute", cuMemRangeGetAttribute(&v, sizeof(v), a, p, n));
    return v;
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction f;
    CUdeviceptr p, q, plain;
    unsigned char *h, buf[16], five[16];
    unsigned int is_managed = 0;
    int ok = 1;

    must("cuInit", cuInit(0));
    must("cuDeviceGet", cuDeviceGet(&dev, 0));
    must("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&ctx, dev));
    must("cuCtxSetCurrent", cuCtxSetCurrent(ctx));
    must("cuModuleLoadData", cuModuleLoadData(&mod, drv_test_ptx));
    must("cuModuleGetFunction", cuModuleGetFunction(&f, mod, "fake_fill"));

    /* refusals of the driver's */
    check("cuMemAllocManaged(0 bytes)", cuMemAllocManaged(&q, 0, CU_MEM_ATTACH_GLOBAL),
          CUDA_ERROR_INVALID_VALUE);
    check("cuMemAllocManaged(CU_MEM_ATTACH_SINGLE)", cuMemAllocManaged(&q, 64, CU_MEM_ATTACH_SINGLE),
          CUDA_ERROR_INVALID_VALUE);

    check("cuMemAllocManaged", cuMemAllocManaged(&p, N, CU_MEM_ATTACH_GLOBAL), CUDA_SUCCESS);
    if (!p)
        return 1;
    h = (unsigned char *)(uintptr_t)p;
    check("cuPointerGetAttribute(IS_MANAGED)",
          cuPointerGetAttribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, p), CUDA_SUCCESS);
    printf("is managed: %u\n", is_managed);

    /* the host writes, a kernel changes half, the host reads after a synchronize */
    memset(h, 7, N);
    fill(f, p + N / 4, 42, N / 2);
    must("cuCtxSynchronize", cuCtxSynchronize());
    for (size_t i = 0; i < N; i++)
        ok &= h[i] == (i >= N / 4 && i < 3 * N / 4 ? 42 : 7);
    printf("host sees the kernel's bytes and its own: %s\n", ok ? "yes" : "no");
    failures += !ok;

    /* copies: managed memory is device memory to them */
    memset(h, 9, 16);
    check("cuMemcpyDtoH(from managed)", cuMemcpyDtoH(buf, p, 16), CUDA_SUCCESS);
    printf("copied from what the host wrote: %d\n", buf[0] == 9 && buf[15] == 9);
    memset(five, 5, sizeof(five));
    check("cuMemcpyHtoD(to managed)", cuMemcpyHtoD(p + 16, five, 16), CUDA_SUCCESS);
    printf("the host sees the copy: %d %d\n", h[16], h[31]);
    check("cuMemcpy(managed to managed)", cuMemcpy(p + N - 16, p + 16, 16), CUDA_SUCCESS);
    printf("the host sees the device's copy: %d\n", h[N - 1]);
    h[100] = 1;
    check("cuMemsetD8(managed)", cuMemsetD8(p + 64, 3, 32), CUDA_SUCCESS);
    must("cuCtxSynchronize", cuCtxSynchronize());
    printf("after a memset: %d %d %d\n", h[63], h[64], h[100]);

    /* advice, prefetches and what the range says of them */
    {
        CUmemLocation dev0 = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0 };
        CUmemLocation host = { .type = CU_MEM_LOCATION_TYPE_HOST, .id = 0 };
        CUmemLocation bad = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 999 };
        int rm = -1, pref = -1;
        void *data[2] = { &rm, &pref };
        size_t sizes[2] = { sizeof(rm), sizeof(pref) };
        CUmem_range_attribute attrs[2] = { CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY,
                                           CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION };

        check("cuMemAdvise(read mostly)",
              cuMemAdvise_v2(p, N / 2, CU_MEM_ADVISE_SET_READ_MOSTLY, dev0), CUDA_SUCCESS);
        check("cuMemAdvise(preferred: device 0)",
              cuMemAdvise_v2(p, N, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, dev0), CUDA_SUCCESS);
        /* the H100's driver 580 answers INVALID_VALUE here, not INVALID_DEVICE */
        check("cuMemAdvise(preferred: device 999)",
              cuMemAdvise_v2(p, N, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, bad),
              CUDA_ERROR_INVALID_VALUE);
        printf("read mostly: first half %d, all %d\n",
               range_attr(CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, p, N / 2),
               range_attr(CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, p, N));
        check("cuMemRangeGetAttributes",
              cuMemRangeGetAttributes(data, sizes, attrs, 2, p, N / 4), CUDA_SUCCESS);
        printf("read mostly %d, preferred location %d\n", rm, pref);
        check("cuMemPrefetchAsync(device 0)", cuMemPrefetchAsync_v2(p, N, dev0, 0, NULL),
              CUDA_SUCCESS);
        printf("last prefetch location: %d\n",
               range_attr(CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, p, N));
        check("cuMemPrefetchAsync(host)", cuMemPrefetchAsync_v2(p, N / 2, host, 0, NULL),
              CUDA_SUCCESS);
        must("cuCtxSynchronize", cuCtxSynchronize());
        printf("last prefetch location of the first half: %d\n",
               range_attr(CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION, p, N / 2));
        printf("the host still reads: %d %d\n", h[N / 4], h[N - 1]);
        check("cuMemPrefetchAsync(flags 1)", cuMemPrefetchAsync_v2(p, N, dev0, 1, NULL),
              CUDA_ERROR_INVALID_VALUE);
        check("cuMemAllocManaged(a second)", cuMemAllocManaged(&q, 4096, CU_MEM_ATTACH_HOST),
              CUDA_SUCCESS);
        check("cuMemAdvise(past the allocation)",
              cuMemAdvise_v2(q, 8192, CU_MEM_ADVISE_SET_READ_MOSTLY, dev0), CUDA_ERROR_INVALID_VALUE);
        check("cuMemAlloc", cuMemAlloc(&plain, 4096), CUDA_SUCCESS);
        check("cuMemAdvise(device memory)",
              cuMemAdvise_v2(plain, 4096, CU_MEM_ADVISE_SET_READ_MOSTLY, dev0),
              CUDA_ERROR_INVALID_VALUE);
        check("cuMemRangeGetAttribute(device memory)",
              cuMemRangeGetAttribute(&rm, sizeof(rm), CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY, plain, 4096),
              CUDA_ERROR_INVALID_VALUE);
        check("cuMemFree(device memory)", cuMemFree(plain), CUDA_SUCCESS);
    }

    /* stream attachment */
    check("cuStreamAttachMemAsync", cuStreamAttachMemAsync(NULL, q, 0, CU_MEM_ATTACH_GLOBAL),
          CUDA_SUCCESS);
    check("cuStreamAttachMemAsync(flags 8)", cuStreamAttachMemAsync(NULL, q, 0, 8),
          CUDA_ERROR_INVALID_VALUE);
    must("cuStreamSynchronize", cuStreamSynchronize(NULL));
    ((unsigned char *)(uintptr_t)q)[0] = 77;
    fill(f, q + 1, 78, 1);
    must("cuCtxSynchronize", cuCtxSynchronize());
    printf("the second allocation: %d %d\n", ((unsigned char *)(uintptr_t)q)[0],
           ((unsigned char *)(uintptr_t)q)[1]);

    check("cuMemFree(managed)", cuMemFree(q), CUDA_SUCCESS);
    check("cuMemFree(managed)", cuMemFree(p), CUDA_SUCCESS);
    must("cuModuleUnload", cuModuleUnload(mod));
    must("cuDevicePrimaryCtxRelease", cuDevicePrimaryCtxRelease(dev));
    printf("%s\n", failures ? "FAILED" : "done");
    return failures != 0;
}
