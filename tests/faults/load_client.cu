// SPDX-License-Identifier: Apache-2.0
//
// One of many clients at once (run_load.sh): CALLS round trips whose
// answers only this process can predict (a pattern from its pid and the
// iteration, copied in, doubled by a kernel, copied back), so a reply lost,
// sent to another client or wrong shows as a mismatch.  Prints
// "ok CALLS" or the first mismatch.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#include <unistd.h>

#include "fake_kernels.cuh"

static const int N = 256;

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 1000;
    unsigned seed = (unsigned)getpid() * 2654435761u;
    int in[N], out[N], *a, *b;

    CHECK(cudaMalloc(&a, sizeof(in)));
    CHECK(cudaMalloc(&b, sizeof(in)));
    for (int i = 0; i < calls; i += 4) {
        for (int k = 0; k < N; k++)
            in[k] = (int)((seed ^ (unsigned)(i * 7919 + k)) & 0x3fffffff);
        CHECK(cudaMemcpy(a, in, sizeof(in), cudaMemcpyHostToDevice));
        fake_add<<<1, 256>>>(b, a, a, N);
        CHECK(cudaGetLastError());
        CHECK(cudaMemcpy(out, b, sizeof(out), cudaMemcpyDeviceToHost));
        for (int k = 0; k < N; k++)
            if (out[k] != 2 * in[k]) {
                printf("mismatch at call %d, element %d: %d, want %d\n", i, k, out[k], 2 * in[k]);
                return 1;
            }
    }
    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
    printf("ok %d\n", calls);
    return 0;
}
