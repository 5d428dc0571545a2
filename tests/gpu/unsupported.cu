// SPDX-License-Identifier: Apache-2.0
// Calls a function vgpu does not remote, twice: through the shim each call
// must return cudaErrorNotSupported and the reason must be printed once.
#include <cstdio>

int main()
{
    cudaExternalMemory_t m;
    cudaExternalMemoryHandleDesc d = {};

    // no GPU needed: the shim answers before anything reaches the server
    for (int i = 0; i < 2; i++) {
        cudaError_t e = cudaImportExternalMemory(&m, &d);
        printf("cudaImportExternalMemory: %s\n", cudaGetErrorName(e));
    }
    return 0;
}
