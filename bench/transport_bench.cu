// SPDX-License-Identifier: Apache-2.0
//
// Per-call latency and copy bandwidth of whatever carries this program's
// CUDA calls: run it natively, through the shim over a socket, or in a guest
// through the vgpu-stub device.  Prints one line per measure:
//   <measure> <value> <unit>
//   bench/transport_bench [calls] [copy_mib]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static double now_us()
{
    using namespace std::chrono;
    return duration<double, std::micro>(steady_clock::now().time_since_epoch()).count();
}

static int check(cudaError_t e, const char *what)
{
    if (e != cudaSuccess) {
        printf("%s: %s\n", what, cudaGetErrorString(e));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 2000;
    size_t mib = argc > 2 ? strtoul(argv[2], nullptr, 10) : 16;
    size_t bytes = mib << 20;
    std::vector<char> host(bytes, 7);
    char *dev = nullptr;
    double t0, t1;

    if (check(cudaMalloc(&dev, bytes), "cudaMalloc"))
        return 1;
    // warm up: module load, first copies
    cudaStreamQuery(0);
    cudaMemcpy(dev, host.data(), 4, cudaMemcpyHostToDevice);

    t0 = now_us();
    for (int i = 0; i < calls; i++)
        cudaStreamQuery(0);
    t1 = now_us();
    printf("sync_call_roundtrip %.2f us\n", (t1 - t0) / calls);

    t0 = now_us();
    for (int i = 0; i < calls / 4; i++)
        if (check(cudaMemcpy(dev, host.data(), 4, cudaMemcpyHostToDevice), "cudaMemcpy"))
            return 1;
    t1 = now_us();
    printf("copy_4B_h2d %.2f us\n", (t1 - t0) / (calls / 4));

    t0 = now_us();
    if (check(cudaMemcpy(dev, host.data(), bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D"))
        return 1;
    t1 = now_us();
    printf("copy_h2d_%zuMiB %.1f MB/s\n", mib, bytes / (t1 - t0));

    t0 = now_us();
    if (check(cudaMemcpy(host.data(), dev, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H"))
        return 1;
    t1 = now_us();
    printf("copy_d2h_%zuMiB %.1f MB/s\n", mib, bytes / (t1 - t0));
    cudaFree(dev);
    return 0;
}
