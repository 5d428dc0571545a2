// SPDX-License-Identifier: Apache-2.0
//
// The runtime's library API and launches with attributes, through vgpu's
// libcudart.so.13 on vgpu's libcuda.so.1: a library loaded from PTX made
// at build time (tests/driver/kernels.cu), its kernels counted, listed,
// found by name and launched with cudaLaunchKernel and cudaLaunchKernelExC;
// a kernel of this program launched with a cluster dimension attribute;
// cluster occupancy asked.  The kernels are named as tests/fakecuda
// emulates them, so the program runs against the fake in CI and on a GPU
// natively and through vgpu for a differential test.
#include <cstdio>
#include <cstring>
#include <cuda_runtime.h>

#include "fake_kernels.cuh"

extern "C" const char rt_library_ptx[];

static const int N = 4096;

static int check(const int *d, int want)
{
    static int h[N];
    int bad = 0;

    if (cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost) != cudaSuccess)
        return -1;
    for (int i = 0; i < N; i++)
        bad += h[i] != want;
    return bad;
}

int main()
{
    int *a, *b, *c, n = N;
    cudaLibrary_t lib;
    cudaKernel_t fill, add, all[8];
    unsigned int count = 0;

    CHECK(cudaMalloc(&a, N * sizeof(int)));
    CHECK(cudaMalloc(&b, N * sizeof(int)));
    CHECK(cudaMalloc(&c, N * sizeof(int)));

    CHECK(cudaLibraryLoadData(&lib, rt_library_ptx, NULL, NULL, 0, NULL, NULL, 0));
    CHECK(cudaLibraryGetKernelCount(&count, lib));
    printf("library: %u kernels\n", count);
    CHECK(cudaLibraryEnumerateKernels(all, count < 8 ? count : 8, lib));
    CHECK(cudaLibraryGetKernel(&fill, lib, "fake_fill"));
    CHECK(cudaLibraryGetKernel(&add, lib, "fake_add"));
    printf("kernels found by name: %s\n", fill && add && fill != add ? "yes" : "no");

    // the library's fill by cudaLaunchKernel: a and b filled with bytes 1 and 2
    size_t bytes = N * sizeof(int);
    unsigned int one = 1, two = 2;
    void *fa[] = { &a, &one, &bytes }, *fb[] = { &b, &two, &bytes };
    CHECK(cudaLaunchKernel((const void *)fill, dim3((unsigned)(bytes + 255) / 256), dim3(256), fa, 0, 0));
    CHECK(cudaLaunchKernel((const void *)fill, dim3((unsigned)(bytes + 255) / 256), dim3(256), fb, 0, 0));
    CHECK(cudaDeviceSynchronize());
    printf("library kernel by cudaLaunchKernel: %d wrong\n", check(a, 0x01010101));

    // the library's add by cudaLaunchKernelExC
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(N / 256);
    cfg.blockDim = dim3(256);
    void *args[] = { &c, &a, &b, &n };
    CHECK(cudaLaunchKernelExC(&cfg, (const void *)add, args));
    CHECK(cudaDeviceSynchronize());
    printf("library kernel by cudaLaunchKernelExC: %d wrong\n", check(c, 0x03030303));

    // this program's own kernel, in clusters of two blocks
    cudaLaunchAttribute attr;
    memset(&attr, 0, sizeof(attr));
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = 2;
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    CHECK(cudaLaunchKernelEx(&cfg, fake_add, c, c, a, N));
    CHECK(cudaDeviceSynchronize());
    printf("cluster launch of a program kernel: %d wrong\n", check(c, 0x04040404));

    int size = 0, clusters = 0;
    cfg.attrs = NULL;
    cfg.numAttrs = 0;
    CHECK(cudaOccupancyMaxPotentialClusterSize(&size, (const void *)fake_add, &cfg));
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    CHECK(cudaOccupancyMaxActiveClusters(&clusters, (const void *)fake_add, &cfg));
    printf("cluster occupancy: size %s, active clusters %s\n", size >= 1 ? "at least 1" : "none",
           clusters >= 1 ? "at least 1" : "none");

    CHECK(cudaLibraryUnload(lib));
    printf("unloaded\n");
    return 0;
}
