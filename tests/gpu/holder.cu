// SPDX-License-Identifier: Apache-2.0
//
// Holds MIB MiB of device memory and keeps the GPU busy with it, round
// after round: a kernel that spins for SPIN_MS milliseconds (a fake
// runtime runs nothing for it), a memset of the whole allocation, a
// synchronize.  Prints "ready" once the memory is held and one round is
// done.  The first call that fails prints "error: <name> in <call> (the
// call took N ms)" and the next call's error, and the program exits 1; on
// SIGTERM it ends its round, prints "done: no error" and exits 0.  The
// victim and the bystander of tests/gpu/run_session_died.sh.
//   vgpu_holder MIB [SPIN_MS]
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

static volatile sig_atomic_t stop;

static void on_term(int) { stop = 1; }

__global__ void spin(unsigned long long ns)
{
    unsigned long long t0, t;

    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    do
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    while (t - t0 < ns);
}

// Times one call; on failure says which and how long it took, then what the
// next call gets (a dead session must keep failing, not hang), and exits 1.
template <typename F> static void call(const char *what, F f)
{
    auto t0 = std::chrono::steady_clock::now();
    cudaError_t st = f();
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    if (st == cudaSuccess)
        return;
    printf("error: %s in %s (the call took %.0f ms)\n", cudaGetErrorName(st), what, ms);
    printf("the next call: %s\n", cudaGetErrorName(cudaDeviceSynchronize()));
    exit(1);
}

int main(int argc, char **argv)
{
    size_t bytes = (argc > 1 ? strtoul(argv[1], nullptr, 10) : 1024) << 20;
    unsigned long long spin_ns = (argc > 2 ? strtoull(argv[2], nullptr, 10) : 20) * 1000000ull;
    bool ready = false;
    void *p = nullptr;

    signal(SIGTERM, on_term);
    call("cudaMalloc", [&] { return cudaMalloc(&p, bytes); });
    for (unsigned i = 0; !stop; i++) {
        call("a kernel launch", [&] { spin<<<1, 1>>>(spin_ns); return cudaGetLastError(); });
        call("cudaMemset", [&] { return cudaMemset(p, i & 0xff, bytes); });
        call("cudaDeviceSynchronize", [&] { return cudaDeviceSynchronize(); });
        if (!ready) {
            printf("ready\n");
            fflush(stdout);
            ready = true;
        }
    }
    call("cudaFree", [&] { return cudaFree(p); });
    printf("done: no error\n");
    return 0;
}
