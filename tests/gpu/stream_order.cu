// SPDX-License-Identifier: Apache-2.0
// Copies between pageable host memory and the device on a non-blocking
// stream must wait for the kernels queued before them on that stream, and
// later work must wait for them: CUDA orders cudaMemcpyAsync in its stream
// whatever the host memory (the runtime stages pageable memory itself).
// Each kernel first spins for a few milliseconds so a copy that ran ahead
// of it would see, or be overwritten by, the wrong values.  Sizes from 4
// bytes to 8 MiB cover the shim's inline and staged copies.  Prints one
// line per case and exits 0 when all are right.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define CHECK(x)                                                                    \
    do {                                                                            \
        cudaError_t e_ = (x);                                                       \
        if (e_ != cudaSuccess) {                                                    \
            printf("%s: %s (%s)\n", #x, cudaGetErrorName(e_), cudaGetErrorString(e_)); \
            return 1;                                                               \
        }                                                                           \
    } while (0)

// Every thread waits `spin` clock cycles, then writes v at its elements.
__global__ void late_fill(int *d, size_t n, int v, long long spin)
{
    long long t0 = clock64();
    while (clock64() - t0 < spin)
        ;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        d[i] = v;
}

// Every thread waits, then adds one to its elements.
__global__ void late_inc(int *d, size_t n, long long spin)
{
    long long t0 = clock64();
    while (clock64() - t0 < spin)
        ;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        d[i] += 1;
}

static size_t count(const int *h, size_t n, int v)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += h[i] == v;
    return k;
}

int main()
{
    static const size_t sizes[] = {4, 4096, 65536, 1 << 20, 8 << 20};
    const long long spin = 20000000;    // about 10 ms at 2 GHz
    const size_t max = 8 << 20;
    cudaStream_t s;
    int *d, *h = (int *)malloc(max);
    int bad = 0;

    if (!h)
        return 1;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK(cudaMalloc(&d, max));
    for (size_t bytes : sizes) {
        size_t n = bytes / sizeof(int);
        size_t k;

        // device to host: the copy must see the late kernel's values
        CHECK(cudaMemset(d, 0, bytes));
        memset(h, 0xff, bytes);
        late_fill<<<64, 256, 0, s>>>(d, n, 7, spin);
        CHECK(cudaMemcpyAsync(h, d, bytes, cudaMemcpyDeviceToHost, s));
        CHECK(cudaStreamSynchronize(s));
        k = count(h, n, 7);
        printf("stream_order: %8zu bytes to the host after a kernel: %zu of %zu right\n", bytes, k, n);
        bad += k != n;

        // host to device: the kernel before must not overwrite the copy,
        // and the kernel after must see it
        for (size_t i = 0; i < n; i++)
            h[i] = 40;
        late_fill<<<64, 256, 0, s>>>(d, n, 3, spin);
        CHECK(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, s));
        late_inc<<<64, 256, 0, s>>>(d, n, spin / 4);
        memset(h, 0, bytes);
        CHECK(cudaMemcpyAsync(h, d, bytes, cudaMemcpyDeviceToHost, s));
        CHECK(cudaStreamSynchronize(s));
        k = count(h, n, 41);
        printf("stream_order: %8zu bytes to the device between kernels: %zu of %zu right\n", bytes, k, n);
        bad += k != n;
    }
    CHECK(cudaFree(d));
    CHECK(cudaStreamDestroy(s));
    free(h);
    printf("stream_order: %s\n", bad ? "FAILED" : "PASSED");
    return bad ? 2 : 0;
}
