// SPDX-License-Identifier: Apache-2.0
// Holds GIB GiB of device memory and copies a 1 GiB pageable buffer into it
// over and over, printing "copying" once it starts: a client to kill with
// SIGKILL in the middle of a large copy (scripts/gpu-check.sh).
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char **argv)
{
    size_t gib = argc > 1 ? strtoul(argv[1], nullptr, 10) : 8;
    size_t chunk = (size_t)1 << 30;
    char *d = nullptr;
    cudaError_t e = cudaMalloc(&d, gib * chunk);
    if (e != cudaSuccess) {
        printf("cudaMalloc: %s\n", cudaGetErrorString(e));
        return 1;
    }
    char *h = (char *)malloc(chunk);
    memset(h, 0x5a, chunk);
    printf("allocated %zu GiB\ncopying\n", gib);
    fflush(stdout);
    for (unsigned long i = 0;; i++) {
        e = cudaMemcpy(d + (i % gib) * chunk, h, chunk, cudaMemcpyHostToDevice);
        if (e != cudaSuccess) {
            printf("cudaMemcpy: %s\n", cudaGetErrorString(e));
            return 1;
        }
    }
}
