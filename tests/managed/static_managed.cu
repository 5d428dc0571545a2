// SPDX-License-Identifier: Apache-2.0
//
// Managed memory in a program built with NVIDIA's static runtime
// (libcudart_static.a), which reaches it through the driver API of vgpu's
// libcuda.so.1: cudaMallocManaged (cuMemAllocManaged) and a __managed__
// variable (cuLibraryGetManaged), written by the host, changed by a
// kernel, read by the host after a synchronize.  The kernel is
// tests/driver's fake_fill, which the fake runs by its name.
#include <cstdio>
#include <cstring>

extern "C" __global__ void fake_fill(unsigned char *p, unsigned int value, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

    for (; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned char)value;
}

__managed__ unsigned char managed_var[256];

static int failures;

static void check(const char *what, cudaError_t e)
{
    printf("%s: %s\n", what, cudaGetErrorName(e));
    if (e != cudaSuccess)
        failures++;
}

int main()
{
    const size_t n = 1 << 20;
    unsigned char *p = nullptr;
    bool ok = true;
    cudaPointerAttributes attr;

    check("cudaMallocManaged", cudaMallocManaged(&p, n));
    if (!p)
        return 1;
    memset(p, 7, n);
    fake_fill<<<64, 128>>>(p + n / 4, 42, n / 2);
    check("cudaDeviceSynchronize", cudaDeviceSynchronize());
    for (size_t i = 0; i < n; i++)
        ok &= p[i] == (i >= n / 4 && i < 3 * n / 4 ? 42 : 7);
    printf("host sees the kernel's bytes and its own: %s\n", ok ? "yes" : "no");
    failures += !ok;
    check("cudaPointerGetAttributes", cudaPointerGetAttributes(&attr, p));
    printf("memory type managed: %d\n", attr.type == cudaMemoryTypeManaged);

    memset(managed_var, 5, sizeof(managed_var));
    fake_fill<<<1, 64>>>(managed_var + 128, 9, 64);
    check("cudaDeviceSynchronize", cudaDeviceSynchronize());
    printf("__managed__ variable: %d %d %d\n", managed_var[0], managed_var[128], managed_var[200]);
    failures += managed_var[0] != 5 || managed_var[128] != 9 || managed_var[200] != 5;

    check("cudaFree", cudaFree(p));
    printf("%s\n", failures ? "FAILED" : "done");
    return failures != 0;
}
