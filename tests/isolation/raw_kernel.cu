// SPDX-License-Identifier: Apache-2.0
//
// The module iso_intruder_raw uploads as its own (built into
// raw_kernel.fatbin, not into a program): a kernel and a variable it
// registers under host addresses of its choosing, so that A's values are
// tried against a session that holds a kernel and a variable of its own.
// fake_fill means what it means in the fake runtime (tests/fakecuda/exec.c).

__device__ unsigned int raw_var[4];

__global__ void fake_fill(unsigned char *p, unsigned int value, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned char)value;
}
