// SPDX-License-Identifier: Apache-2.0
//
// Device code of drv_ptx_jit, compiled at build time to compute_75 PTX only,
// so the driver must JIT it at load time (cuModuleLoadDataEx). drv_scale is
// a module global the host finds with cuModuleGetGlobal and writes with
// cuMemcpyHtoD before the first launch. axpy's parameters mix a float, two
// pointers and an int so that the host's hand-packed `extra` buffer has to
// respect the kernel's parameter alignment (offsets 0, 8, 16, 24).

__device__ float drv_scale;

extern "C" __global__ void scale_by_global(const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = drv_scale * x[i];
}

extern "C" __global__ void axpy(float a, const float *x, float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}
