// SPDX-License-Identifier: Apache-2.0
//
// Kernels that tests/fakecuda runs by name (exec.c), for test programs
// that run against the fake runtime in CI and natively and through vgpu on
// a GPU: the same work on both.  And CHECK, which prints a failed call and
// returns 1 from main.
#ifndef VGPU_TESTS_FAKE_KERNELS_CUH
#define VGPU_TESTS_FAKE_KERNELS_CUH

#include <cstdio>
#include <cuda_runtime.h>

// dst[i] = a[i] + b[i] for i < n
__global__ void fake_add(int *dst, const int *a, const int *b, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n)
        dst[i] = a[i] + b[i];
}

// the n bytes at p set to value
__global__ void fake_fill(void *p, unsigned int value, size_t n)
{
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;

    if (i < n)
        ((unsigned char *)p)[i] = (unsigned char)value;
}

// a loop's body counting down: counter[0]--, and the conditional node's
// handle h set to 1 while it stays above 0, else 0 (one thread does it)
__global__ void fake_cond_count(cudaGraphConditionalHandle h, int *counter)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        int left = --counter[0];

        cudaGraphSetConditional(h, left > 0 ? 1 : 0);
    }
}

#define CHECK(call)                                                                  \
    do {                                                                             \
        cudaError_t st_ = (call);                                                    \
        if (st_ != cudaSuccess) {                                                    \
            printf("%s: %s\n", #call, cudaGetErrorName(st_));                        \
            return 1;                                                                \
        }                                                                            \
    } while (0)

#endif
