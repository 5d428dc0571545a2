// SPDX-License-Identifier: Apache-2.0
//
// device_query: what a program asks before it picks a device. Runtime and
// driver versions, the device count, each device's properties, a few
// attributes cross-checked against those properties, and free/total memory.
// Only facts that are fixed for a given GPU go to stdout (compute
// capability, multiprocessor count, warp size, ...); the name, exact
// versions and memory sizes, which a differential test must not compare,
// go to stderr.
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>

static void check(cudaError_t err, const char *what)
{
    if (err != cudaSuccess) {
        printf("%s: %s (%s)\n", what, cudaGetErrorName(err), cudaGetErrorString(err));
        exit(1);
    }
}
#define CHECK(call) check((call), #call)

static int attribute(cudaDeviceAttr attr, int dev, const char *what)
{
    int value = -1;
    check(cudaDeviceGetAttribute(&value, attr, dev), what);
    return value;
}

int main()
{
    int runtime = 0, driver = 0;
    CHECK(cudaRuntimeGetVersion(&runtime));
    CHECK(cudaDriverGetVersion(&driver));
    printf("runtime version: %d.%d\n", runtime / 1000, (runtime % 1000) / 10);
    if (driver == 0)
        printf("driver: none installed\n");
    else
        printf("driver supports this runtime: %s\n", driver >= runtime ? "yes" : "no");
    fprintf(stderr, "runtime version %d, driver version %d\n", runtime, driver);

    int count = 0;
    CHECK(cudaGetDeviceCount(&count));
    printf("device count: %d\n", count);

    int mismatches = 0;
    for (int dev = 0; dev < count; dev++) {
        cudaDeviceProp prop;
        CHECK(cudaGetDeviceProperties(&prop, dev));
        printf("device %d: compute capability %d.%d\n", dev, prop.major, prop.minor);
        printf("device %d: multiprocessors %d\n", dev, prop.multiProcessorCount);
        printf("device %d: warp size %d\n", dev, prop.warpSize);
        printf("device %d: max threads per block %d\n", dev, prop.maxThreadsPerBlock);
        printf("device %d: max block dims %d x %d x %d\n", dev, prop.maxThreadsDim[0],
               prop.maxThreadsDim[1], prop.maxThreadsDim[2]);
        printf("device %d: shared memory per block %zu\n", dev, prop.sharedMemPerBlock);
        printf("device %d: totalGlobalMem > 0: %s\n", dev, prop.totalGlobalMem > 0 ? "yes" : "no");
        fprintf(stderr, "device %d: %s, %zu bytes global memory, pci %04x:%02x:%02x\n", dev,
                prop.name, prop.totalGlobalMem, prop.pciDomainID, prop.pciBusID,
                prop.pciDeviceID);

        struct {
            cudaDeviceAttr attr;
            const char *name;
            int expected;
        } const attrs[] = {
            {cudaDevAttrComputeCapabilityMajor, "cudaDevAttrComputeCapabilityMajor", prop.major},
            {cudaDevAttrComputeCapabilityMinor, "cudaDevAttrComputeCapabilityMinor", prop.minor},
            {cudaDevAttrMultiProcessorCount, "cudaDevAttrMultiProcessorCount",
             prop.multiProcessorCount},
            {cudaDevAttrWarpSize, "cudaDevAttrWarpSize", prop.warpSize},
            {cudaDevAttrMaxThreadsPerBlock, "cudaDevAttrMaxThreadsPerBlock",
             prop.maxThreadsPerBlock},
        };
        int agree = 1;
        for (const auto &a : attrs) {
            int value = attribute(a.attr, dev, a.name);
            if (value != a.expected) {
                printf("device %d: %s = %d but cudaGetDeviceProperties says %d\n", dev, a.name,
                       value, a.expected);
                agree = 0;
            }
        }
        printf("device %d: cudaDeviceGetAttribute agrees with cudaGetDeviceProperties: %s\n",
               dev, agree ? "yes" : "no");
        mismatches += !agree;

        size_t free_bytes = 0, total_bytes = 0;
        CHECK(cudaSetDevice(dev));
        CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
        printf("device %d: cudaMemGetInfo total > 0: %s, free <= total: %s\n", dev,
               total_bytes > 0 ? "yes" : "no", free_bytes <= total_bytes ? "yes" : "no");
        fprintf(stderr, "device %d: %zu bytes free of %zu\n", dev, free_bytes, total_bytes);
        if (total_bytes == 0 || free_bytes > total_bytes || prop.totalGlobalMem == 0)
            mismatches++;
    }

    if (count < 1) {
        printf("FAILED: no CUDA device\n");
        return 2;
    }
    if (mismatches) {
        printf("FAILED: %d device(s) with inconsistent answers\n", mismatches);
        return 2;
    }
    printf("device_query: PASSED\n");
    return 0;
}
