// SPDX-License-Identifier: Apache-2.0
//
// Device code of drv_module_fatbin, compiled at build time to a fatbin
// (sm_75 SASS + compute_75 PTX, sm_90 SASS) that the program embeds and
// loads with cuModuleLoadData. extern "C" keeps the name unmangled for
// cuModuleGetFunction.

extern "C" __global__ void vector_add(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        c[i] = a[i] + b[i];
}
