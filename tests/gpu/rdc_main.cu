// SPDX-License-Identifier: Apache-2.0
// A program built with separate compilation (-rdc): its kernel calls a
// device function from another file, so nvcc registers a version 2 fatbin
// with prelinked images.  Prints the result and exits 0 when it is right.
#include <cstdio>

extern __device__ int rdc_helper(int x);

__global__ void rdc_kernel(int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = rdc_helper(i);
}

int main()
{
    const int n = 1024;
    int *d = nullptr, h[n];
    cudaError_t e = cudaMalloc(&d, n * sizeof(int));
    if (e != cudaSuccess) {
        printf("cudaMalloc: %s (%s)\n", cudaGetErrorName(e), cudaGetErrorString(e));
        return 1;
    }
    rdc_kernel<<<(n + 255) / 256, 256>>>(d, n);
    e = cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
        printf("cudaMemcpy: %s (%s)\n", cudaGetErrorName(e), cudaGetErrorString(e));
        return 1;
    }
    for (int i = 0; i < n; i++)
        if (h[i] != 3 * i + 7) {
            printf("rdc: FAILED at %d: %d\n", i, h[i]);
            return 2;
        }
    printf("rdc: h[1023] = %d\nrdc: PASSED\n", h[n - 1]);
    cudaFree(d);
    return 0;
}
