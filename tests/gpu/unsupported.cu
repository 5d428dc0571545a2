// SPDX-License-Identifier: Apache-2.0
// Calls a function vgpu does not remote, twice: through the shim each call
// must return cudaErrorNotSupported and the reason must be printed once.
#include <cstdio>

int main()
{
    cudaChannelFormatDesc desc = cudaCreateChannelDesc<float>();
    cudaArray_t a;

    for (int i = 0; i < 2; i++) {
        cudaError_t e = cudaMallocArray(&a, &desc, 16, 16, 0);
        printf("cudaMallocArray: %s\n", cudaGetErrorName(e));
    }
    return 0;
}
