// SPDX-License-Identifier: Apache-2.0
//
// A program whose server goes away under it: it allocates, prints
// "ready", then makes a synchronous call every 10 ms until one fails, and
// prints that call's error and how long the failing call took.  It must
// never hang (run_killed.sh bounds it) and must say what happened.
// With the argument "once": one allocation and one call, for a program
// started after the server was (re)started.  With "die": after "ready", one
// cudaMemset of 4093 bytes, which a fake driver told so dies under
// (VGPU_FAKE_DIE_ON_MEMSET=4093), then the same loop.
// Built as fault_victim_after_restart (VGPU_VICTIM_AFTER_RESTART): "once"
// after six seconds, a program a guest starts while its server restarts.
#include <chrono>
#include <cstdio>
#include <cuda_runtime.h>
#include <string>
#include <unistd.h>

int main(int argc, char **argv)
{
    void *p;

#ifdef VGPU_VICTIM_AFTER_RESTART
    static char once[] = "once";
    char *args[] = { argv[0], once, NULL };

    sleep(6);
    argc = 2;
    argv = args;
#endif
    if (cudaMalloc(&p, 4096) != cudaSuccess) {
        printf("no allocation\n");
        return 1;
    }
    if (argc > 1 && std::string(argv[1]) == "once") {
        cudaError_t st = cudaMemset(p, 0, 4096);

        printf("a new program: %s\n", cudaGetErrorName(st));
        return st != cudaSuccess;
    }
    printf("ready\n");
    fflush(stdout);
    if (argc > 1 && std::string(argv[1]) == "die") {
        auto t0 = std::chrono::steady_clock::now();
        cudaError_t st = cudaMemset(p, 0, 4093);
        auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

        printf("the call its driver died under: %s (%s)\n", cudaGetErrorName(st),
               ms < 1000 ? "under a second" : "a second or more");
    }
    for (int i = 0; i < 3000; i++) {
        auto t0 = std::chrono::steady_clock::now();
        cudaError_t st = cudaMemset(p, i & 0xff, 4096);
        auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

        if (st != cudaSuccess) {
            printf("error: %s (the call took %s)\n", cudaGetErrorName(st),
                   ms < 1000 ? "under a second" : "a second or more");
            printf("the next call: %s\n", cudaGetErrorName(cudaDeviceSynchronize()));
            return 0;
        }
        usleep(10000);
    }
    printf("no error in 30 s\n");
    return 1;
}
