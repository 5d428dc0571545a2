// SPDX-License-Identifier: Apache-2.0
// Calls a function vgpu does not remote, twice: through the shim each call
// must return cudaErrorNotSupported and the reason must be printed once.
#include <cstdio>

int main()
{
    cudaMipmappedArray_t m;
    cudaChannelFormatDesc d = cudaCreateChannelDesc<float>();

    for (int i = 0; i < 2; i++) {
        cudaError_t e = cudaMallocMipmappedArray(&m, &d, make_cudaExtent(64, 64, 0), 4);
        printf("cudaMallocMipmappedArray: %s\n", cudaGetErrorName(e));
    }
    return 0;
}
