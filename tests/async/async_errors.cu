// SPDX-License-Identifier: Apache-2.0
//
// Where asynchronous errors surface.  Through vgpu, launches, async copies to
// the device and memsets wait in the shim's queue and travel in batches; a
// failure among them must reach the program exactly where CUDA reports it:
// at cudaGetLastError / cudaPeekAtLastError (or the next synchronizing call
// for faults), never lost, never early.  Prints one line per check; the
// return values of the async calls themselves are not printed (natively a
// launch error is also only seen through the last error with <<<>>>).
#include <cstdio>
#include <cuda_runtime.h>

// Fills n bytes at p with value (the name and signature are also the fake
// runtime's one known kernel, so the CI run has an effect to check).
__global__ void fake_fill(void *p, unsigned value, size_t n)
{
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        ((unsigned char *)p)[i] = (unsigned char)value;
}

static void say(const char *what, cudaError_t e)
{
    printf("%s: %s\n", what, cudaGetErrorName(e));
}

int main()
{
    int *d = nullptr;
    int h[32];

    if (cudaMalloc(&d, 4096) != cudaSuccess) {
        say("cudaMalloc", cudaGetLastError());
        return 1;
    }
    // 1. a failing launch in the middle of a batch
    fake_fill<<<1, 1>>>(d, 1, 128);
    fake_fill<<<1, 2048>>>(d, 2, 128);            // too many threads per block
    fake_fill<<<1, 1>>>(d, 3, 128);
    say("last error after three launches, the second bad", cudaGetLastError());
    say("last error again", cudaGetLastError());
    // 2. the error stays for cudaGetLastError when a synchronizing call comes first
    fake_fill<<<1, 32>>>(d, 4, 128);
    fake_fill<<<1, 4096>>>(d, 5, 128);
    cudaMemsetAsync(d, 0, 64);
    say("cudaDeviceSynchronize after a bad launch", cudaDeviceSynchronize());
    say("last error after the synchronize", cudaGetLastError());
    // 3. an async memset the runtime refuses: seen by peek, then taken by get
    cudaMemsetAsync((char *)d + (1 << 30), 0, 4);
    say("peek after a bad memset", cudaPeekAtLastError());
    say("get after a bad memset", cudaGetLastError());
    say("get once more", cudaGetLastError());
    // 4. many good launches in batches, then the data: all of them ran, in order
    for (int i = 0; i < 1000; i++)
        fake_fill<<<1, 32>>>(d, (unsigned)i, sizeof(h));
    say("copy back after 1000 launches", cudaMemcpy(h, d, sizeof(h), cudaMemcpyDeviceToHost));
    printf("last value written: %#x %#x\n", (unsigned)h[0], (unsigned)h[31]);
    say("last error at the end", cudaGetLastError());
    cudaFree(d);
    return 0;
}
