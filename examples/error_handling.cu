// SPDX-License-Identifier: Apache-2.0
//
// error_handling: CUDA errors must come back as errors, with the right
// names, and must not poison what follows. Prints the names and strings of
// a few codes (no device needed), then provokes non-sticky errors: a launch
// with 2048 threads per block (seen by cudaPeekAtLastError and
// cudaGetLastError, cleared by the latter), an impossible allocation, a
// copy from a freed device pointer and a cudaFree of a pointer that was
// never allocated. Each error is printed, the last error is read (and so
// cleared) after it, and a valid launch at the end must still work.
//
// Exit status: 0 when every provoked error came back as an error and the
// device still works; 1 at the first call that should have succeeded and
// did not (without a GPU that is the first cudaMalloc); 2 when a call that
// should have failed succeeded or the final result is wrong.
#include <cstdint>
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

static int unexpected_success;

// Prints an error that was provoked on purpose; a success is a failure here.
static void expect_error(cudaError_t err, const char *what)
{
    printf("%s -> %s (%s)\n", what, cudaGetErrorName(err), cudaGetErrorString(err));
    if (err == cudaSuccess) {
        printf("  unexpected: this should have failed\n");
        unexpected_success++;
    }
}

// After a provoked error: what the runtime still remembers (printed, then
// cleared), and proof that the error is not sticky.
static void clear_and_recover(const char *after)
{
    cudaError_t last = cudaGetLastError();
    printf("  cudaGetLastError after %s -> %s\n", after, cudaGetErrorName(last));
    CHECK(cudaDeviceSynchronize());
}

__global__ void fill(int *data, int n, int value)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        data[i] = value + i;
}

int main()
{
    printf("error_handling: names and strings\n");
    const cudaError_t codes[] = {cudaSuccess, cudaErrorInvalidValue, cudaErrorMemoryAllocation,
                                 cudaErrorInvalidConfiguration, cudaErrorInsufficientDriver,
                                 cudaErrorNoDevice, cudaErrorNotReady,
                                 static_cast<cudaError_t>(9999)};
    for (cudaError_t e : codes)
        printf("  %d: %s: %s\n", (int)e, cudaGetErrorName(e), cudaGetErrorString(e));

    const int n = 1024;
    int *d_buf;
    CHECK(cudaMalloc(&d_buf, n * sizeof(int)));

    // 1. Invalid launch configuration: more threads per block than any GPU allows.
    fill<<<1, 2048>>>(d_buf, n, 0);
    cudaError_t peek = cudaPeekAtLastError();
    cudaError_t first = cudaGetLastError();
    cudaError_t second = cudaGetLastError();
    expect_error(peek, "fill<<<1, 2048>>>: cudaPeekAtLastError");
    expect_error(first, "fill<<<1, 2048>>>: cudaGetLastError");
    printf("  second cudaGetLastError -> %s\n", cudaGetErrorName(second));
    if (second != cudaSuccess || first != peek) {
        printf("  unexpected: cudaGetLastError should return the launch error once\n");
        unexpected_success++;
    }
    CHECK(cudaDeviceSynchronize());

    // 2. An allocation no device can satisfy.
    void *huge = nullptr;
    expect_error(cudaMalloc(&huge, (size_t)1 << 60), "cudaMalloc(1 << 60 bytes)");
    clear_and_recover("cudaMalloc");

    // 3. A copy from a device pointer that is no longer allocated.
    int *stale;
    int host[n];
    CHECK(cudaMalloc(&stale, n * sizeof(int)));
    CHECK(cudaFree(stale));
    expect_error(cudaMemcpy(host, stale, sizeof(host), cudaMemcpyDeviceToHost),
                 "cudaMemcpy from a freed device pointer");
    clear_and_recover("cudaMemcpy");

    // 4. Freeing something that was never allocated.
    expect_error(cudaFree(reinterpret_cast<void *>((uintptr_t)0x1000)), "cudaFree(0x1000)");
    clear_and_recover("cudaFree");

    // 5. The device still works.
    fill<<<(n + 255) / 256, 256>>>(d_buf, n, 100);
    check(cudaGetLastError(), "fill<<<4, 256>>>");
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemcpy(host, d_buf, sizeof(host), cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int i = 0; i < n; i++)
        wrong += host[i] != 100 + i;
    printf("valid launch after the errors: %d of %d wrong, host[%d] = %d\n", wrong, n, n - 1,
           host[n - 1]);
    CHECK(cudaFree(d_buf));

    if (unexpected_success || wrong) {
        printf("FAILED: %d unexpected result(s), %d wrong element(s)\n", unexpected_success,
               wrong);
        return 2;
    }
    printf("error_handling: PASSED\n");
    return 0;
}
