// SPDX-License-Identifier: Apache-2.0
//
// matrix_mul: C = A * B for 256x256 single-precision matrices with the
// classic shared-memory tiled kernel, checked element by element against a
// double-precision CPU product with a relative tolerance. The inputs are
// small multiples of 1/8 and 1/4, so every partial sum is exact in float
// and the printed values are the same on every GPU.
#include <cmath>
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

#define TILE 16

// Row-major, n x n. Works for any n: out-of-range tile entries load as 0.
__global__ void matmul_tiled(const float *a, const float *b, float *c, int n)
{
    __shared__ float ta[TILE][TILE];
    __shared__ float tb[TILE][TILE];

    int row = blockIdx.y * TILE + threadIdx.y;
    int col = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;

    for (int t = 0; t < (n + TILE - 1) / TILE; t++) {
        int ka = t * TILE + threadIdx.x;
        int kb = t * TILE + threadIdx.y;
        ta[threadIdx.y][threadIdx.x] = (row < n && ka < n) ? a[row * n + ka] : 0.0f;
        tb[threadIdx.y][threadIdx.x] = (kb < n && col < n) ? b[kb * n + col] : 0.0f;
        __syncthreads();
        for (int k = 0; k < TILE; k++)
            acc += ta[threadIdx.y][k] * tb[k][threadIdx.x];
        __syncthreads();
    }
    if (row < n && col < n)
        c[row * n + col] = acc;
}

int main()
{
    const int n = 256;
    const size_t bytes = (size_t)n * n * sizeof(float);

    float *a = static_cast<float *>(malloc(bytes));
    float *b = static_cast<float *>(malloc(bytes));
    float *c = static_cast<float *>(malloc(bytes));
    double *ref = static_cast<double *>(malloc((size_t)n * n * sizeof(double)));
    if (!a || !b || !c || !ref) {
        printf("matrix_mul: host allocation failed\n");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            a[i * n + j] = static_cast<float>((i * 7 + j * 3) % 17 - 8) * 0.125f;
            b[i * n + j] = static_cast<float>((i * 5 + j * 11) % 13 - 6) * 0.25f;
        }
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++)
                s += (double)a[i * n + k] * (double)b[k * n + j];
            ref[i * n + j] = s;
        }
    }
    printf("matrix_mul: %dx%d, tile %d\n", n, n, TILE);

    float *d_a, *d_b, *d_c;
    CHECK(cudaMalloc(&d_a, bytes));
    CHECK(cudaMalloc(&d_b, bytes));
    CHECK(cudaMalloc(&d_c, bytes));
    CHECK(cudaMemcpy(d_a, a, bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(d_b, b, bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemset(d_c, 0, bytes));

    dim3 block(TILE, TILE);
    dim3 grid((n + TILE - 1) / TILE, (n + TILE - 1) / TILE);
    matmul_tiled<<<grid, block>>>(d_a, d_b, d_c, n);
    check(cudaGetLastError(), "matmul_tiled<<<grid, block>>>");
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(c, d_c, bytes, cudaMemcpyDeviceToHost));

    int wrong = 0, first_wrong = -1;
    double checksum = 0.0;
    for (int i = 0; i < n * n; i++) {
        checksum += c[i];
        if (fabs((double)c[i] - ref[i]) > 1e-4 * (fabs(ref[i]) + 1.0)) {
            if (first_wrong < 0)
                first_wrong = i;
            wrong++;
        }
    }
    const int shown[][2] = {{0, 0}, {17, 42}, {128, 200}, {255, 255}};
    for (const auto &p : shown)
        printf("c[%d][%d] = %.4f\n", p[0], p[1], c[p[0] * n + p[1]]);
    printf("checksum = %.4f\n", checksum);

    CHECK(cudaFree(d_a));
    CHECK(cudaFree(d_b));
    CHECK(cudaFree(d_c));

    if (wrong)
        printf("FAILED: %d of %d elements outside tolerance, first c[%d][%d] = %.6f, "
               "expected %.6f\n",
               wrong, n * n, first_wrong / n, first_wrong % n, c[first_wrong], ref[first_wrong]);
    free(a);
    free(b);
    free(c);
    free(ref);
    if (wrong)
        return 2;
    printf("matrix_mul: PASSED\n");
    return 0;
}
