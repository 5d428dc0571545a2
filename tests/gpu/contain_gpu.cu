// SPDX-License-Identifier: Apache-2.0
//
// A confined session (server/contain.c) on the real NVIDIA driver and
// runtime: what a session does (device query, allocations, pinned memory,
// streams, events, launches under the scheduler, copies) with a kernel built
// as PTX only, so the driver's JIT compiles it inside the seccomp filter.
// First unconfined (no GPU there: exit 77, skipped), then confined; both
// must give the same right answers.  Run by ctest as gpu_contain (label gpu).
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <cuda_runtime.h>
#include <sys/wait.h>
#include <unistd.h>
extern "C" {
#include "contain.h"
#include "scheduler.h"
}
__global__ void fill(int *p, int n, int v)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = v + i;
}
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("  %s: %s\n", #x, cudaGetErrorString(e_)); return 2; } } while (0)
static int session(void)
{
    const int n = 1 << 22;
    int count = 0, *d, *h;
    cudaStream_t s;
    cudaEvent_t ev;
    CK(cudaGetDeviceCount(&count));
    CK(cudaMalloc(&d, n * sizeof(int)));
    CK(cudaMallocHost(&h, n * sizeof(int)));
    CK(cudaStreamCreate(&s));
    CK(cudaEventCreate(&ev));
    for (int k = 0; k < 50; k++) {
        vgpu_sched_acquire();
        fill<<<(n + 255) / 256, 256, 0, s>>>(d, n, k);
        vgpu_sched_release(1);
    }
    CK(cudaGetLastError());
    CK(cudaEventRecord(ev, s));
    CK(cudaEventSynchronize(ev));
    CK(cudaMemcpyAsync(h, d, n * sizeof(int), cudaMemcpyDeviceToHost, s));
    CK(cudaStreamSynchronize(s));
    for (int i = 0; i < n; i++)
        if (h[i] != 49 + i) { printf("  wrong value at %d\n", i); return 3; }
    CK(cudaFree(d));
    CK(cudaFreeHost(h));
    CK(cudaDeviceSynchronize());
    printf("  %d device(s), 50 JIT-compiled launches, copies, streams, events: ok\n", count);
    return 0;
}
int main(void)
{
    struct vgpu_sched_params p;
    vgpu_sched_params_default(&p);
    if (vgpu_sched_init(&p) || vgpu_contain_parent(true)) return 1;
    int fails = 0;
    for (int on = 0; on <= 1; on++) {
        pid_t c = fork();
        if (c == 0) {
            struct vgpu_identity who = { 1, 'A', 2, false };
            int rc = vgpu_contain_session(&who, on);
            struct vgpu_sched_join j = { 1, 'A', 2, "gpu" };
            printf("session %s: contain rc %d, join %d, kill(parent) %d\n", on ? "confined" : "unconfined", rc,
                   vgpu_sched_join(&j), on ? kill(getppid(), SIGCONT) : 0);
            fflush(stdout);
            int count = 0;
            if (!on && cudaGetDeviceCount(&count) != cudaSuccess)
                _exit(77);
            int r = session();
            fflush(stdout);
            _exit(r);
        }
        int st;
        waitpid(c, &st, 0);
        printf("session %s: %s %d\n", on ? "confined" : "unconfined", WIFEXITED(st) ? "exit" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        if (!on && WIFEXITED(st) && WEXITSTATUS(st) == 77)
            return 77;
        fails += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    return fails;
}
