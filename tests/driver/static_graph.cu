// SPDX-License-Identifier: Apache-2.0
//
// CUDA graphs through NVIDIA's own runtime (static, and -cudart shared as
// nvidia_runtime_graph) on vgpu's libcuda.so.1, in the order PyTorch's
// torch.cuda.CUDAGraph makes the calls: a side stream captures in global
// mode, its capture id asked, an allocation made under a relaxed thread
// mode as the caching allocator does, a kernel, a memset and a
// device-to-device copy captured; the graph's nodes counted, instantiated
// with flags, uploaded, launched many times, then destroyed and graph
// memory trimmed.  Prints what it saw; the same natively and through vgpu.
#include <cstdio>

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
    const size_t n = 1 << 16;
    static unsigned char host[1 << 16];
    unsigned char *a = nullptr, *b = nullptr, *tmp = nullptr;
    cudaStream_t s;
    cudaGraph_t g;
    cudaGraphExec_t e;
    cudaStreamCaptureStatus st;
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    unsigned long long id = 0;
    size_t nodes = 0;
    int bad = 0;

    CHECK(cudaMalloc(&a, n));
    CHECK(cudaMalloc(&b, n));
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK(cudaStreamGetCaptureInfo(s, &st, &id));
    printf("capture: %s, id %s\n", st == cudaStreamCaptureStatusActive ? "active" : "not",
           id ? "set" : "0");
    CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    CHECK(cudaMalloc(&tmp, 1 << 20));
    CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    CHECK(cudaMemsetAsync(a, 1, n, s));
    fake_fill<<<16, 256, 0, s>>>(a, 0x33, n / 2);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, s));
    CHECK(cudaStreamEndCapture(s, &g));
    CHECK(cudaGraphGetNodes(g, nullptr, &nodes));
    printf("graph: %zu nodes\n", nodes);
    CHECK(cudaGraphInstantiateWithFlags(&e, g, 0));
    CHECK(cudaGraphUpload(e, s));
    CHECK(cudaMemset(b, 0, n));
    for (int i = 0; i < 50; i++)
        CHECK(cudaGraphLaunch(e, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemcpy(host, b, n, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++)
        bad += host[i] != (i < n / 2 ? 0x33 : 1);
    printf("50 launches: b = %#x .. %#x, %s\n", host[0], host[n - 1], bad ? "wrong" : "right");
    CHECK(cudaGraphExecDestroy(e));
    CHECK(cudaGraphDestroy(g));
    CHECK(cudaDeviceGraphMemTrim(0));
    CHECK(cudaFree(tmp));
    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
    CHECK(cudaStreamDestroy(s));
    printf("done\n");
    return 0;
}
