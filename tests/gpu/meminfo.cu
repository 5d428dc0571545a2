// SPDX-License-Identifier: Apache-2.0
// Prints the device's free memory in MiB (cudaMemGetInfo): the probe of the
// killed-client check in scripts/gpu-check.sh.
#include <cstdio>

int main()
{
    size_t free_b = 0, total_b = 0;
    cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) {
        printf("cudaMemGetInfo: %s\n", cudaGetErrorString(e));
        return 1;
    }
    printf("free_mib %zu total_mib %zu\n", free_b >> 20, total_b >> 20);
    return 0;
}
