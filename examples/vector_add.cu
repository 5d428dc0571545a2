// SPDX-License-Identifier: Apache-2.0
//
// vector_add: the seed workload. Adds two vectors of one million floats on
// the device and checks every element on the host. The inputs are small
// integers, so every sum is exact and the printed values do not depend on
// the GPU or on rounding.
//
// Output contract (shared by all examples): deterministic lines on stdout;
// a failing CUDA call prints "<what>: <name> (<description>)" and exits 1;
// a wrong result prints "FAILED ..." and exits 2; success ends with
// "vector_add: PASSED" and exit status 0.
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>

static void check(cudaError_t err, const char *what)
{
    if (err != cudaSuccess) {
        printf("%s: %s (%s)\n", what, cudaGetErrorName(err), cudaGetErrorString(err));
        exit(1);
    }
}
#define CHECK(call) check((call), #call)

__global__ void vector_add(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        c[i] = a[i] + b[i];
}

int main()
{
    const int n = 1000000;
    const size_t bytes = n * sizeof(float);

    float *a = static_cast<float *>(malloc(bytes));
    float *b = static_cast<float *>(malloc(bytes));
    float *c = static_cast<float *>(malloc(bytes));
    if (!a || !b || !c) {
        printf("vector_add: host allocation of %zu bytes failed\n", bytes);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        a[i] = static_cast<float>(i);
        b[i] = static_cast<float>(2 * (i % 1000));
        c[i] = -1.0f;
    }
    printf("vector_add: n = %d\n", n);

    float *d_a, *d_b, *d_c;
    CHECK(cudaMalloc(&d_a, bytes));
    CHECK(cudaMalloc(&d_b, bytes));
    CHECK(cudaMalloc(&d_c, bytes));
    CHECK(cudaMemcpy(d_a, a, bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(d_b, b, bytes, cudaMemcpyHostToDevice));

    const int threads = 256;
    const int blocks = (n + threads - 1) / threads;
    vector_add<<<blocks, threads>>>(d_a, d_b, d_c, n);
    check(cudaGetLastError(), "vector_add<<<blocks, threads>>>");
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(c, d_c, bytes, cudaMemcpyDeviceToHost));

    const int shown[] = {0, 1, 999, 1000, 500000, 999999};
    for (int i : shown)
        printf("c[%d] = %.1f\n", i, c[i]);

    int wrong = 0, first_wrong = -1;
    for (int i = 0; i < n; i++) {
        if (c[i] != a[i] + b[i]) {
            if (first_wrong < 0)
                first_wrong = i;
            wrong++;
        }
    }

    CHECK(cudaFree(d_a));
    CHECK(cudaFree(d_b));
    CHECK(cudaFree(d_c));

    if (wrong)
        printf("FAILED: %d of %d sums wrong, first c[%d] = %.1f, expected %.1f\n", wrong, n,
               first_wrong, c[first_wrong], a[first_wrong] + b[first_wrong]);
    free(a);
    free(b);
    free(c);
    if (wrong)
        return 2;
    printf("vector_add: PASSED\n");
    return 0;
}
