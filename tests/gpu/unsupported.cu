// SPDX-License-Identifier: Apache-2.0
// Calls a function vgpu does not remote, twice: through the shim each call
// must return cudaErrorNotSupported and the reason must be printed once.
#include <cstdio>

int main()
{
    cudaGraph_t g;
    for (int i = 0; i < 2; i++) {
        cudaError_t e = cudaGraphCreate(&g, 0);
        printf("cudaGraphCreate: %s\n", cudaGetErrorName(e));
    }
    return 0;
}
