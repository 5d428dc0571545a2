// SPDX-License-Identifier: Apache-2.0
//
// Mapped (zero-copy) host memory through the runtime API: cudaHostAlloc
// with cudaHostAllocMapped, its device pointer, kernels reading and
// writing the host's memory in place, pointer attributes, and the refusal
// for page-locked memory that is not mapped.  The kernels are named as
// tests/fakecuda emulates them.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#include "fake_kernels.cuh"

int main()
{
    const int n = 65536;
    int *h, *dh, *out;
    int wrong = 0, bad;

    CHECK(cudaHostAlloc(&h, n * sizeof(int), cudaHostAllocMapped));
    CHECK(cudaHostGetDevicePointer((void **)&dh, h, 0));
    CHECK(cudaMalloc(&out, n * sizeof(int)));
    for (int i = 0; i < n; i++)
        h[i] = i;
    // the kernel reads the host's memory in place, and writes into it
    fake_add<<<n / 256, 256>>>(out, dh, dh, n);
    fake_add<<<n / 256, 256>>>(dh, out, dh, n);
    CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < n; i++)
        wrong += h[i] != 3 * i;
    printf("kernels on mapped memory: h[100] = %d, %d wrong\n", h[100], wrong);

    cudaPointerAttributes attr;
    CHECK(cudaPointerGetAttributes(&attr, h + 5));
    printf("pointer attributes: %s, device pointer %s\n",
           attr.type == cudaMemoryTypeHost ? "host" : "not host",
           attr.devicePointer == (void *)(dh + 5) ? "as cudaHostGetDevicePointer says" : "differs");
    CHECK(cudaFreeHost(h));
    CHECK(cudaFree(out));

    // several mapped buffers at once, small and larger than 8 MiB, freed out of order and
    // allocated again: each one doubled in place by a kernel
    const size_t sizes[5] = { 4096, 100000, 3u << 20, 9u << 20, 4096 };
    int *m[5];
    bad = 0;
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 5; k++) {
            if (round && k % 2 == 0)
                continue;           // kept from the first round
            int cnt = (int)(sizes[k] / sizeof(int));
            CHECK(cudaHostAlloc(&m[k], sizes[k], cudaHostAllocMapped));
            for (int i = 0; i < cnt; i++)
                m[k][i] = i + k;
        }
        for (int k = 0; k < 5; k++) {
            int cnt = (int)(sizes[k] / sizeof(int)), *d;
            CHECK(cudaHostGetDevicePointer((void **)&d, m[k], 0));
            fake_add<<<(cnt + 255) / 256, 256>>>(d, d, d, cnt);
        }
        CHECK(cudaDeviceSynchronize());
        for (int k = 0; k < 5; k++) {
            int cnt = (int)(sizes[k] / sizeof(int)), times = round && k % 2 == 0 ? 4 : 2;
            for (int i = 0; i < cnt; i++)
                bad += m[k][i] != times * (i + k);
        }
        for (int k = 1; k < 5; k += 2)
            CHECK(cudaFreeHost(m[k]));
    }
    for (int k = 0; k < 5; k += 2)
        CHECK(cudaFreeHost(m[k]));
    printf("five mapped buffers, freed and allocated again: %d wrong\n", bad);

    if (getenv("VGPU_TEST_REFUSALS")) {
        // page-locked but not mapped: vgpu cannot give kernels the program's own memory
        int *p, *dp;
        CHECK(cudaMallocHost(&p, 4096));
        printf("device pointer of unmapped page-locked memory: %s\n",
               cudaGetErrorName(cudaHostGetDevicePointer((void **)&dp, p, 0)));
        cudaGetLastError();
        CHECK(cudaFreeHost(p));
    }
    printf("done\n");
    return 0;
}
