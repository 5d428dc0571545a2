// SPDX-License-Identifier: Apache-2.0
//
// Device code of drv_streams_events (fatbin, embedded): one kernel per
// stream, the second reading what the first stream produced, so a missing
// cross-stream dependency shows up as wrong sums.

extern "C" __global__ void add_const(unsigned int *p, unsigned int v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] += v;
}

extern "C" __global__ void add_from(unsigned int *dst, const unsigned int *src, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        dst[i] += src[i];
}
