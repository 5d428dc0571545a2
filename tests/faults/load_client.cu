// SPDX-License-Identifier: Apache-2.0
//
// One of many clients at once (run_load.sh): CALLS round trips whose
// answers only this process can predict (a pattern from its pid and the
// iteration, copied in, doubled by a kernel, copied back), so a reply lost,
// sent to another client or wrong shows as a mismatch.  Prints
// "ok CALLS" or the first mismatch.  One round trip of 1 MiB before them
// and one after go through the staging region (a memfd host-direct, a slot
// of the shared BAR in a guest).
// In a guest (tests/vm/run_vm.sh, vm_eight_guests) pids repeat from guest
// to guest, which boot alike: VGPU_TEST_GUEST (the guest's number, from the
// kernel command line) goes into the pattern beside the pid, so a reply
// routed to another guest's program is a mismatch too; the program says
// on stderr which guest it took.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#include <unistd.h>

#include "fake_kernels.cuh"

static const int N = 256;
// the large round trips at the start and the end: past the shim's 64 KiB,
// through the staging region (a memfd, or a slot of a guest's shared BAR)
static const int BIG = 1 << 18;

// One round trip of n ints at a and b, the pattern of this key and call i.
// 0, or 1 (said why on stdout).
static int round_trip(int *a, int *b, int *in, int *out, int n, unsigned key, int i)
{
    for (int k = 0; k < n; k++)
        in[k] = (int)((key ^ ((unsigned)i * 7919u + (unsigned)k) * 2654435761u) & 0x3fffffff);
    CHECK(cudaMemcpy(a, in, n * sizeof(int), cudaMemcpyHostToDevice));
    fake_add<<<(n + 255) / 256, 256>>>(b, a, a, n);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(out, b, n * sizeof(int), cudaMemcpyDeviceToHost));
    for (int k = 0; k < n; k++)
        if (out[k] != 2 * in[k]) {
            printf("mismatch at call %d, element %d of %d: %d, want %d\n", i, k, n, out[k],
                   2 * in[k]);
            return 1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 1000;
    const char *guest_env = getenv("VGPU_TEST_GUEST");
    unsigned guest = guest_env ? (unsigned)atoi(guest_env) : 0;
    // distinct for every (guest < 256, pid < 2^22) pair, and below 2^30: no two
    // clients of a run share a pattern
    unsigned key = (guest & 0xffu) << 22 | ((unsigned)getpid() & 0x3fffffu);
    int in[N], out[N], *a, *b;
    int *big_in = (int *)malloc(BIG * sizeof(int)), *big_out = (int *)malloc(BIG * sizeof(int));

    if (!big_in || !big_out) {
        printf("out of memory\n");
        return 1;
    }
    if (guest_env)
        fprintf(stderr, "load_client: pattern of guest %u, pid %d\n", guest, (int)getpid());
    CHECK(cudaMalloc(&a, BIG * sizeof(int)));
    CHECK(cudaMalloc(&b, BIG * sizeof(int)));
    if (round_trip(a, b, big_in, big_out, BIG, key, -1))
        return 1;
    for (int i = 0; i < calls; i += 4)
        if (round_trip(a, b, in, out, N, key, i))
            return 1;
    if (round_trip(a, b, big_in, big_out, BIG, key, calls))
        return 1;
    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
    free(big_in);
    free(big_out);
    printf("ok %d\n", calls);
    return 0;
}
