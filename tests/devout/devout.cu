// SPDX-License-Identifier: Apache-2.0
//
// What kernels print reaches the program's own stdout, where CUDA flushes
// it: at cudaDeviceSynchronize, cudaStreamSynchronize, a blocking copy and
// a blocking symbol copy (after a cudaStreamQuery, which flushes nothing),
// between the host's lines before and after each.  The last kernel prints
// more than one reply of the server carries (512 KiB).  On a GPU the same
// program runs natively for a differential test; against vgpu's fake
// runtime, fake_print is emulated by name (tests/fakecuda/exec.c).
#include <cstdio>
#include <cuda_runtime.h>

__device__ int sym_value;

__global__ void fake_print(int tag, int lines)
{
    if (blockIdx.x == 0 && threadIdx.x == 0)
        for (int i = 0; i < lines; i++)
            printf("kernel %d: line %d\n", tag, i);
}

static int check(cudaError_t st, const char *what)
{
    if (st != cudaSuccess) {
        printf("%s: %s\n", what, cudaGetErrorName(st));
        return 1;
    }
    return 0;
}

int main()
{
    cudaStream_t s;
    int *d, h = 0;

    printf("host: before\n");
    if (check(cudaDeviceSetLimit(cudaLimitPrintfFifoSize, 64u << 20), "cudaDeviceSetLimit"))
        return 1;
    fake_print<<<1, 32>>>(1, 3);
    if (check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"))
        return 1;
    printf("host: after a device synchronize\n");

    if (check(cudaStreamCreate(&s), "cudaStreamCreate"))
        return 1;
    fake_print<<<1, 1, 0, s>>>(2, 2);
    if (check(cudaStreamSynchronize(s), "cudaStreamSynchronize"))
        return 1;
    printf("host: after a stream synchronize\n");

    if (check(cudaMalloc(&d, sizeof(int)), "cudaMalloc") ||
        check(cudaMemset(d, 0, sizeof(int)), "cudaMemset"))
        return 1;
    fake_print<<<1, 1>>>(3, 1);
    if (check(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy"))
        return 1;
    printf("host: after a blocking copy (%d)\n", h);

    fake_print<<<1, 1>>>(5, 1);
    if (check(cudaStreamQuery(0) == cudaErrorNotReady ? cudaSuccess : cudaGetLastError(),
              "cudaStreamQuery") ||
        check(cudaMemcpyFromSymbol(&h, sym_value, sizeof(int)), "cudaMemcpyFromSymbol"))
        return 1;
    printf("host: after a symbol copy (%d)\n", h);

    // about 700 KB of text: more than one reply carries
    fake_print<<<1, 1>>>(4, 30000);
    if (check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"))
        return 1;
    printf("host: done\n");
    cudaFree(d);
    cudaStreamDestroy(s);
    return 0;
}
