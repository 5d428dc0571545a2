// SPDX-License-Identifier: Apache-2.0
//
// multi_thread: four host threads share one device. Each has its own
// non-blocking stream, pinned and device buffers, and runs several rounds of
// copy in, kernel, copy out, synchronize, verify, so the runtime sees calls
// from all threads interleaved. Threads record their results (or their
// first CUDA error) and the main thread prints them in thread order after
// joining, so stdout does not depend on scheduling.
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <cuda_runtime.h>

static void check(cudaError_t err, const char *what)
{
    if (err != cudaSuccess) {
        printf("%s: %s (%s)\n", what, cudaGetErrorName(err), cudaGetErrorString(err));
        exit(1);
    }
}
#define CHECK(call) check((call), #call)

#define NTHREADS 4
#define ROUNDS 8

struct result {
    char error[256]; // first CUDA error of this thread, empty if none
    int rounds;
    long long wrong;
    long long sum;
};

// Records the first CUDA error of a thread; returns false on error.
static bool tcheck(result *r, int t, cudaError_t err, const char *what)
{
    if (err == cudaSuccess)
        return true;
    snprintf(r->error, sizeof(r->error), "thread %d: %s: %s (%s)", t, what,
             cudaGetErrorName(err), cudaGetErrorString(err));
    return false;
}
#define TCHECK(call)                       \
    do {                                   \
        if (!tcheck(r, t, (call), #call))  \
            goto out;                      \
    } while (0)

__global__ void affine(int *data, int n, int mul, int add)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        data[i] = data[i] * mul + add;
}

static void worker(int t, result *r)
{
    const int n = 1 << 18;
    const size_t bytes = (size_t)n * sizeof(int);
    cudaStream_t stream = nullptr;
    int *h = nullptr, *d = nullptr;

    TCHECK(cudaSetDevice(0));
    TCHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    TCHECK(cudaMallocHost(&h, bytes));
    TCHECK(cudaMalloc(&d, bytes));
    for (int round = 0; round < ROUNDS; round++) {
        const int base = t * 100000 + round * 1000;
        const int mul = 3 + t, add = round - t;
        for (int i = 0; i < n; i++)
            h[i] = base + (i & 1023);
        TCHECK(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice, stream));
        affine<<<(n + 255) / 256, 256, 0, stream>>>(d, n, mul, add);
        TCHECK(cudaGetLastError());
        TCHECK(cudaMemcpyAsync(h, d, bytes, cudaMemcpyDeviceToHost, stream));
        TCHECK(cudaStreamSynchronize(stream));
        for (int i = 0; i < n; i++) {
            if (h[i] != (base + (i & 1023)) * mul + add)
                r->wrong++;
            r->sum += h[i];
        }
        r->rounds++;
    }
out:
    // Release what was acquired; the first error, if any, is already recorded.
    if (d)
        tcheck(r, t, cudaFree(d), "cudaFree(d)");
    if (h)
        tcheck(r, t, cudaFreeHost(h), "cudaFreeHost(h)");
    if (stream)
        tcheck(r, t, cudaStreamDestroy(stream), "cudaStreamDestroy(stream)");
}

int main()
{
    printf("multi_thread: %d threads, %d rounds each\n", NTHREADS, ROUNDS);
    // Create the primary context once, before the threads race to it.
    CHECK(cudaSetDevice(0));
    CHECK(cudaFree(nullptr));

    std::vector<result> results(NTHREADS, result{});
    std::vector<std::thread> threads;
    for (int t = 0; t < NTHREADS; t++)
        threads.emplace_back(worker, t, &results[t]);
    for (auto &th : threads)
        th.join();

    int cuda_failed = 0;
    long long wrong = 0;
    for (int t = 0; t < NTHREADS; t++) {
        const result &r = results[t];
        printf("thread %d: %d rounds, %lld wrong, sum = %lld\n", t, r.rounds, r.wrong, r.sum);
        wrong += r.wrong;
    }
    for (int t = 0; t < NTHREADS; t++) {
        if (results[t].error[0]) {
            printf("%s\n", results[t].error);
            cuda_failed = 1;
        }
    }
    if (cuda_failed)
        return 1;
    if (wrong) {
        printf("FAILED: %lld wrong elements\n", wrong);
        return 2;
    }
    printf("multi_thread: PASSED\n");
    return 0;
}
