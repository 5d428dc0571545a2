// SPDX-License-Identifier: Apache-2.0
//
// The runtime's memory pools through vgpu's libcudart.so.13 (sent as the
// driver's pool calls): the default pool's release threshold, a pool of
// its own with attributes, a stream-ordered allocation from it written by
// a kernel and read back, its accounting, a free and a trim, the device's
// current pool switched and back, and cudaMallocAsync from it.  Prints
// what it saw; the same output natively and through vgpu (against the
// fake in CI).
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <cuda_runtime.h>

#define CHECK(call)                                                                    \
    do {                                                                               \
        cudaError_t e_ = (call);                                                       \
        if (e_ != cudaSuccess) {                                                       \
            printf("%s failed: %s\n", #call, cudaGetErrorName(e_));                    \
            return 1;                                                                  \
        }                                                                              \
    } while (0)

extern "C" __global__ void fake_fill(unsigned char *p, unsigned int value, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

    for (; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned char)value;
}

int main()
{
    cudaMemPool_t def, pool, cur;
    cudaMemPoolProps props;
    cudaStream_t s;
    uint64_t threshold = 32ull << 20, got = 0, used = 0;
    int opportunistic = 0;
    unsigned char *p, *q, host[4096];
    size_t n = 1 << 20;

    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK(cudaDeviceGetDefaultMemPool(&def, 0));
    CHECK(cudaMemPoolSetAttribute(def, cudaMemPoolAttrReleaseThreshold, &threshold));
    CHECK(cudaMemPoolGetAttribute(def, cudaMemPoolAttrReleaseThreshold, &got));
    printf("default pool threshold: %s\n", got == threshold ? "as set" : "other");

    memset(&props, 0, sizeof(props));
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = 0;
    CHECK(cudaMemPoolCreate(&pool, &props));
    CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolReuseAllowOpportunistic, &opportunistic));
    printf("opportunistic reuse: %d\n", opportunistic);
    CHECK(cudaMallocFromPoolAsync((void **)&p, n, pool, s));
    fake_fill<<<8, 128, 0, s>>>(p, 0x42, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpyAsync(host, p + n - sizeof(host), sizeof(host), cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamSynchronize(s));
    bool ok = true;
    for (size_t i = 0; i < sizeof(host); i++)
        ok = ok && host[i] == 0x42;
    printf("pool memory filled: %s\n", ok ? "ok" : "wrong");
    CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used));
    printf("pool in use: %s\n", used >= n ? "at least the allocation" : "less");
    CHECK(cudaFreeAsync(p, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemPoolTrimTo(pool, 0));

    CHECK(cudaDeviceSetMemPool(0, pool));
    CHECK(cudaDeviceGetMemPool(&cur, 0));
    printf("current pool: %s\n", cur == pool ? "the new one" : "another");
    CHECK(cudaMallocAsync((void **)&q, 4096, s));
    CHECK(cudaMemsetAsync(q, 7, 4096, s));
    CHECK(cudaMemcpyAsync(host, q, 4096, cudaMemcpyDeviceToHost, s));
    CHECK(cudaFreeAsync(q, s));
    CHECK(cudaStreamSynchronize(s));
    printf("async allocation from it: %s\n", host[4095] == 7 ? "ok" : "wrong");
    CHECK(cudaDeviceSetMemPool(0, def));
    CHECK(cudaMemPoolDestroy(pool));
    CHECK(cudaStreamDestroy(s));
    printf("done\n");
    return 0;
}
