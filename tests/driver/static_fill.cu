// SPDX-License-Identifier: Apache-2.0
//
// A program built with nvcc's default static runtime: NVIDIA's own
// libcudart_static.a runs in it and reaches the GPU through libcuda.so.1
// (vgpu's, through LD_LIBRARY_PATH).  Device memory, a launch, copies both
// ways, a memset, streams and events, and an error that must come back.
#include <cstdio>
#include <cstring>

extern "C" __global__ void fake_fill(unsigned char *p, unsigned int value, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

    for (; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned char)value;
}

#define CHECK(call)                                                                     \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (e_ != cudaSuccess) {                                                        \
            printf("%s failed: %s (%s)\n", #call, cudaGetErrorName(e_), cudaGetErrorString(e_)); \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

int main()
{
    const size_t n = 1 << 20;
    static unsigned char host[1 << 20];
    unsigned char *dev = nullptr;
    cudaStream_t s;
    cudaEvent_t a, b;
    int count = 0, version = 0;

    CHECK(cudaGetDeviceCount(&count));
    CHECK(cudaDriverGetVersion(&version));
    printf("devices: %s, driver %s\n", count > 0 ? "some" : "none", version >= 13000 ? "13+" : "old");
    CHECK(cudaMalloc(&dev, n));
    fake_fill<<<64, 256>>>(dev, 0x5a, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(host, dev, n, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++)
        if (host[i] != 0x5a) {
            printf("byte %zu is %#x, not 0x5a\n", i, host[i]);
            return 1;
        }
    printf("fill: %zu bytes of 0x5a\n", n);
    CHECK(cudaStreamCreate(&s));
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    memset(host, 7, n);
    CHECK(cudaEventRecord(a, s));
    CHECK(cudaMemcpyAsync(dev, host, n, cudaMemcpyHostToDevice, s));
    CHECK(cudaMemsetAsync(dev + 100, 1, 10, s));
    CHECK(cudaEventRecord(b, s));
    CHECK(cudaStreamSynchronize(s));
    memset(host, 0, n);
    CHECK(cudaMemcpy(host, dev, n, cudaMemcpyDeviceToHost));
    printf("round trip: %d %d %d %d\n", host[0], host[100], host[109], host[110]);
    CHECK(cudaEventSynchronize(b));
    float ms = -1;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    printf("elapsed: %s\n", ms >= 0 ? "measured" : "negative");
    unsigned char *pinned = nullptr;
    CHECK(cudaMallocHost(&pinned, n));
    memset(pinned, 9, n);
    CHECK(cudaMemcpy(dev, pinned, n, cudaMemcpyHostToDevice));
    memset(pinned, 0, n);
    CHECK(cudaMemcpy(pinned, dev, n, cudaMemcpyDeviceToHost));
    printf("pinned round trip: %d %d\n", pinned[0], pinned[n - 1]);
    CHECK(cudaFreeHost(pinned));
    cudaError_t e = cudaMemcpy(host, (void *)0x10, 16, cudaMemcpyDeviceToHost);
    printf("bad copy: %s\n", cudaGetErrorName(e));
    CHECK(cudaStreamDestroy(s));
    CHECK(cudaEventDestroy(a));
    CHECK(cudaEventDestroy(b));
    CHECK(cudaFree(dev));
    printf("done\n");
    return 0;
}
