// SPDX-License-Identifier: Apache-2.0
// Calls a function vgpu does not remote, twice: through the shim each call
// must return cudaErrorNotSupported and the reason must be printed once.
#include <cstdio>

int main()
{
    cudaMemcpy3DPeerParms p = {};

    for (int i = 0; i < 2; i++) {
        cudaError_t e = cudaMemcpy3DPeer(&p);
        printf("cudaMemcpy3DPeer: %s\n", cudaGetErrorName(e));
    }
    return 0;
}
