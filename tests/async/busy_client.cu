// SPDX-License-Identifier: Apache-2.0
//
// A client that keeps requests in flight until it is killed: page-locked
// memory (a shared region), device memory, and copies and launches in a
// loop.  Prints "ready" once it holds all of that.  run_killed.sh kills it.
#include <cstdio>
#include <cuda_runtime.h>

__global__ void fake_fill(void *p, unsigned value, size_t n)
{
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        ((unsigned char *)p)[i] = (unsigned char)value;
}

int main()
{
    const size_t n = 4 << 20;
    unsigned char *h = nullptr, *d = nullptr;
    cudaStream_t s;

    if (cudaMallocHost(&h, n) != cudaSuccess || cudaMalloc(&d, n) != cudaSuccess ||
        cudaStreamCreate(&s) != cudaSuccess)
        return 1;
    printf("ready\n");
    fflush(stdout);
    for (unsigned i = 0;; i++) {
        fake_fill<<<1, 32, 0, s>>>(d, i, n);
        cudaMemcpyAsync(h, d, n, cudaMemcpyDeviceToHost, s);
        cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, s);
        if (cudaStreamSynchronize(s) != cudaSuccess)
            return 1;
    }
}
