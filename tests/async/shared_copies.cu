// SPDX-License-Identifier: Apache-2.0
//
// Large copies from and to pageable and page-locked memory, synchronous and
// asynchronous.  Host-direct over a unix socket, vgpu moves them through
// memory shared with the server (the staging region and page-locked
// allocations as regions); the data must arrive intact either way.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

static int fails;

static void check(const char *what, cudaError_t e)
{
    printf("%s: %s\n", what, cudaGetErrorName(e));
    fails += e != cudaSuccess;
}

static void same(const char *what, const unsigned char *a, const unsigned char *b, size_t n)
{
    printf("%s: %s\n", what, memcmp(a, b, n) ? "DIFFERENT" : "same");
    fails += memcmp(a, b, n) != 0;
}

int main()
{
    const size_t n = (size_t)150 << 20;      // more than one staging piece (64 MiB)
    unsigned char *pageable = (unsigned char *)malloc(n), *back = (unsigned char *)malloc(n);
    unsigned char *pinned = nullptr, *pinned2 = nullptr, *d = nullptr;
    cudaStream_t s;

    for (size_t i = 0; i < n; i++)
        pageable[i] = (unsigned char)(i * 7 + (i >> 20));
    check("cudaMalloc", cudaMalloc(&d, n));
    check("cudaMallocHost", cudaMallocHost(&pinned, n));
    check("cudaHostAlloc", cudaHostAlloc(&pinned2, 1 << 20, cudaHostAllocDefault));
    check("cudaStreamCreate", cudaStreamCreate(&s));
    check("pageable to device", cudaMemcpy(d, pageable, n, cudaMemcpyHostToDevice));
    check("device to pinned", cudaMemcpy(pinned, d, n, cudaMemcpyDeviceToHost));
    same("pinned holds what pageable had", pinned, pageable, n);
    memset(back, 0, n);
    check("pinned to device, async", cudaMemcpyAsync(d + 4096, pinned, n - 4096, cudaMemcpyHostToDevice, s));
    check("device to pageable, async", cudaMemcpyAsync(back, d + 4096, n - 4096, cudaMemcpyDeviceToHost, s));
    check("synchronize", cudaStreamSynchronize(s));
    same("pageable back after the async round trip", back, pageable, n - 4096);
    // a page-locked buffer in the middle of a shared region, offset copies
    memcpy(pinned2, pageable + 12345, 1 << 20);
    check("pinned offset to device", cudaMemcpy(d, pinned2 + 100, (1 << 20) - 100, cudaMemcpyHostToDevice));
    memset(back, 0, 1 << 20);
    check("device to pageable", cudaMemcpy(back, d, (1 << 20) - 100, cudaMemcpyDeviceToHost));
    same("offset copy", back, pageable + 12345 + 100, (1 << 20) - 100);
    // a reply too big for the shared-memory channel comes over the socket (2D copies carry bytes)
    {
        const size_t w = 4096, h = 2048;
        unsigned char *two = (unsigned char *)malloc(w * h);

        check("2D device to pageable, 8 MiB in the reply",
              cudaMemcpy2D(two, w, d, w, w, h, cudaMemcpyDeviceToHost));
        check("1D device to pageable, the same 8 MiB", cudaMemcpy(back, d, w * h, cudaMemcpyDeviceToHost));
        same("2D and 1D copies", two, back, w * h);
        free(two);
    }
    check("cudaFreeHost", cudaFreeHost(pinned));
    check("cudaFreeHost", cudaFreeHost(pinned2));
    check("cudaStreamDestroy", cudaStreamDestroy(s));
    check("cudaFree", cudaFree(d));
    free(pageable);
    free(back);
    return fails ? 1 : 0;
}
