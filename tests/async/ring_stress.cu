// SPDX-License-Identifier: Apache-2.0
//
// Many small requests through the shared-memory queue pair, so that both of
// its rings wrap many times, with batches of queued calls in flight between
// synchronous ones: every call must succeed and the data must be what the
// calls wrote.  Prints one line; the same natively and through vgpu.
#include <cstdio>
#include <cstring>

int main()
{
    const int rounds = 100, per = 1000, slots = 1024;
    static int expect[1024], host[1024];
    int *dev;

    if (cudaMalloc(&dev, slots * sizeof(int)) != cudaSuccess || cudaMemset(dev, 0, slots * sizeof(int)))
        return 1;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < per; i++) {
            int n = r * per + i, slot = (n * 7) % slots, v = n & 0x7f;
            /* a synchronous call now and then; the memsets between go in batches */
            cudaError_t e = n % 40 ? cudaSuccess : cudaStreamQuery(0);

            if (e != cudaSuccess && e != cudaErrorNotReady) {
                printf("ring_stress: call %d: %s\n", n, cudaGetErrorString(e));
                return 1;
            }
            if (cudaMemsetAsync(dev + slot, v, sizeof(int)) != cudaSuccess) {
                printf("ring_stress: memset %d failed\n", n);
                return 1;
            }
            memset(&expect[slot], v, sizeof(int));
        }
        if (cudaMemcpy(host, dev, sizeof(host), cudaMemcpyDeviceToHost) != cudaSuccess) {
            printf("ring_stress: copy back %d failed\n", r);
            return 1;
        }
        if (memcmp(host, expect, sizeof(host))) {
            printf("ring_stress: round %d: the device holds other data than was written\n", r);
            return 1;
        }
    }
    printf("ring_stress: %d queries, %d memsets, %d checks: ok\n", rounds * per / 40, rounds * per, rounds);
    return cudaFree(dev) == cudaSuccess ? 0 : 1;
}
