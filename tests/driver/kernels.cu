// SPDX-License-Identifier: Apache-2.0
//
// The kernels of the driver-path tests: real kernels, which the fake
// runtime and driver (tests/fakecuda) also run by their names, so the same
// programs check vgpu against the fake in CI and against a GPU natively.
#include <cstddef>

extern "C" __global__ void fake_fill(unsigned char *p, unsigned int value, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

    for (; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned char)value;
}

extern "C" __global__ void fake_add(int *dst, const int *a, const int *b, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n)
        dst[i] = a[i] + b[i];
}

__device__ int counter;
