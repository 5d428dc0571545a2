// SPDX-License-Identifier: Apache-2.0
// Calls a function vgpu does not remote, twice: through the shim each call
// must return cudaErrorNotSupported and the reason must be printed once.
#include <cstdio>

int main()
{
    cudaGraphConditionalHandle h;

    // no GPU needed: the shim answers before anything reaches the server
    for (int i = 0; i < 2; i++) {
        cudaError_t e = cudaGraphConditionalHandleCreate(&h, NULL, 0, 0);
        printf("cudaGraphConditionalHandleCreate: %s\n", cudaGetErrorName(e));
    }
    return 0;
}
