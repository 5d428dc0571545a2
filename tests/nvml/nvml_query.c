/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What NVML says that must be the same natively and through vgpu on a host
 * without per-VM limits or pools (tests/e2e/run_diff.sh compares the two
 * runs' output byte for byte): versions, the device count, and per device
 * its name, UUID, PCI bus id, compute capability, total memory (no VM
 * limit: the device's), its index, and that a lookup by UUID and by bus id
 * finds it again.  Nothing that moves (temperature, power, used memory) or
 * that differs by design (processes: docs/nvml.md) is printed.
 *
 * libnvidia-ml.so.1 is opened with dlopen, as PyTorch and CuPy open it, so
 * that the dynamic linker finds vgpu's through LD_LIBRARY_PATH.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "nvml_api.h"

static void *lib;

#define FN(name) ((__typeof__(&name))(void (*)(void))dlsym(lib, #name))
#define NEED(call)                                                            \
    do {                                                                      \
        nvmlReturn_t r_ = (call);                                             \
        if (r_ != NVML_SUCCESS) {                                             \
            printf("%s: %d\n", #call, (int)r_);                               \
            return 1;                                                         \
        }                                                                     \
    } while (0)

static int device(unsigned int i)
{
    nvmlDevice_t d, by_uuid, by_bus;
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE], uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    nvmlPciInfo_t pci;
    nvmlMemory_t m;
    int major, minor;
    unsigned int idx, idx_uuid, idx_bus;

    NEED(FN(nvmlDeviceGetHandleByIndex_v2)(i, &d));
    NEED(FN(nvmlDeviceGetName)(d, name, sizeof(name)));
    NEED(FN(nvmlDeviceGetUUID)(d, uuid, sizeof(uuid)));
    NEED(FN(nvmlDeviceGetPciInfo_v3)(d, &pci));
    NEED(FN(nvmlDeviceGetCudaComputeCapability)(d, &major, &minor));
    NEED(FN(nvmlDeviceGetMemoryInfo)(d, &m));
    NEED(FN(nvmlDeviceGetIndex)(d, &idx));
    NEED(FN(nvmlDeviceGetHandleByUUID)(uuid, &by_uuid));
    NEED(FN(nvmlDeviceGetHandleByPciBusId_v2)(pci.busId, &by_bus));
    NEED(FN(nvmlDeviceGetIndex)(by_uuid, &idx_uuid));
    NEED(FN(nvmlDeviceGetIndex)(by_bus, &idx_bus));
    printf("device %u: %s\n  uuid %s\n  pci %s (domain %u bus %u device %u, id %08x)\n"
           "  compute capability %d.%d\n  memory total %llu\n  index %u, by uuid %u, by bus id %u\n",
           i, name, uuid, pci.busId, pci.domain, pci.bus, pci.device, pci.pciDeviceId, major, minor,
           m.total, idx, idx_uuid, idx_bus);
    return 0;
}

int main(void)
{
    char drv[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE], ver[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE];
    unsigned int n;
    int cuda;

    lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (!lib) {
        printf("no libnvidia-ml.so.1\n");
        return 1;
    }
    NEED(FN(nvmlInit_v2)());
    NEED(FN(nvmlSystemGetDriverVersion)(drv, sizeof(drv)));
    NEED(FN(nvmlSystemGetNVMLVersion)(ver, sizeof(ver)));
    NEED(FN(nvmlSystemGetCudaDriverVersion_v2)(&cuda));
    NEED(FN(nvmlDeviceGetCount_v2)(&n));
    printf("driver %s, NVML %s, CUDA %d\ndevices: %u\n", drv, ver, cuda, n);
    for (unsigned int i = 0; i < n; i++)
        if (device(i))
            return 1;
    printf("nvmlErrorString(NVML_ERROR_NOT_SUPPORTED): %s\n",
           FN(nvmlErrorString)(NVML_ERROR_NOT_SUPPORTED));
    NEED(FN(nvmlShutdown)());
    return 0;
}
