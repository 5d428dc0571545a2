/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu's libnvidia-ml.so.1 against a vgpu-server on the fake runtime and
 * the fake NVML (tests/fakecuda/nvml.c: two GPUs of which the session's
 * CUDA sees one, each listing the server process and pid 1 as its compute
 * processes), started by run_nvml.sh with vm 7 limited to 256 MiB, while
 * a peer process of vm 7 holds 32 MiB and one of vm 8 96 MiB.  The
 * program also links vgpu's libcudart.so.13: both libraries share one
 * connection, and the runtime's allocations are the VM's NVML "used".
 *
 * Modes (argv[1]):
 *   fake      everything below against the fake NVML;
 *   nonvml    the server has no NVML: nvmlInit is NVML_ERROR_LIBRARY_NOT_FOUND
 *             and every other call NVML_ERROR_UNINITIALIZED;
 *   noserver  no server at all: NVML_ERROR_DRIVER_NOT_LOADED;
 *   hold N    holds N MiB of device memory, says "holding PID" (and what
 *             nvmlDeviceGetMemoryInfo answers, if NVML is there) and waits
 *             for its stdin to close: run_nvml.sh runs one in vm 7 (32 MiB,
 *             a peer of the same tenant: VGPU_TEST_PEER_PID) and one in
 *             vm 8 (96 MiB, another tenant: VGPU_TEST_OTHER_PID).
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cuda_runtime_api.h>

#include "nvml_api.h"

#define MiB (1ull << 20)
#define OTHER_UUID "GPU-fa4e0000-0000-4000-8000-000000000001"
#define OTHER_BUS "00000000:02:00.0"

static nvmlDevice_t dev0(void)
{
    nvmlDevice_t d = NULL;

    assert_int_equal(nvmlDeviceGetHandleByIndex_v2(0, &d), NVML_SUCCESS);
    assert_non_null(d);
    return d;
}

static int setup(void **state)
{
    (void)state;
    return nvmlInit_v2() == NVML_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nvmlShutdown() == NVML_SUCCESS ? 0 : -1;
}

/* Only the session's CUDA devices: one, though the host's NVML has two. */
static void devices_are_the_sessions(void **state)
{
    unsigned int n = 0, idx = 9;
    nvmlDevice_t d = dev0(), h = NULL;
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    nvmlPciInfo_t pci;

    (void)state;
    assert_int_equal(nvmlDeviceGetCount_v2(&n), NVML_SUCCESS);
    assert_int_equal(n, 1);
    assert_int_equal(nvmlDeviceGetCount(&n), NVML_SUCCESS);
    assert_int_equal(n, 1);
    assert_int_equal(nvmlDeviceGetHandleByIndex_v2(1, &h), NVML_ERROR_INVALID_ARGUMENT);
    assert_int_equal(nvmlDeviceGetHandleByIndex(0, &h), NVML_SUCCESS);
    assert_ptr_equal(h, d);
    assert_int_equal(nvmlDeviceGetIndex(d, &idx), NVML_SUCCESS);
    assert_int_equal(idx, 0);

    assert_int_equal(nvmlDeviceGetUUID(d, uuid, sizeof(uuid)), NVML_SUCCESS);
    h = NULL;
    assert_int_equal(nvmlDeviceGetHandleByUUID(uuid, &h), NVML_SUCCESS);
    assert_ptr_equal(h, d);
    assert_int_equal(nvmlDeviceGetPciInfo_v3(d, &pci), NVML_SUCCESS);
    assert_string_equal(pci.busId, "00000000:01:00.0");
    assert_int_equal(pci.bus, 1);
    h = NULL;
    assert_int_equal(nvmlDeviceGetHandleByPciBusId_v2(pci.busId, &h), NVML_SUCCESS);
    assert_ptr_equal(h, d);
    assert_int_equal(nvmlDeviceGetHandleByPciBusId(pci.busId, &h), NVML_SUCCESS);

    /* another tenant's GPU is not found, by UUID or bus id */
    assert_int_equal(nvmlDeviceGetHandleByUUID(OTHER_UUID, &h), NVML_ERROR_NOT_FOUND);
    assert_int_equal(nvmlDeviceGetHandleByPciBusId_v2(OTHER_BUS, &h), NVML_ERROR_NOT_FOUND);
    assert_int_equal(nvmlDeviceGetHandleByUUID("GPU-nonexistent", &h), NVML_ERROR_NOT_FOUND);
}

/* A handle the server did not give is refused before the real NVML sees it. */
static void forged_handles_refused(void **state)
{
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    unsigned int v;
    nvmlDevice_t forged = (nvmlDevice_t)(uintptr_t)((uintptr_t)dev0() + sizeof(int));

    (void)state;
    assert_int_equal(nvmlDeviceGetName(forged, name, sizeof(name)), NVML_ERROR_INVALID_ARGUMENT);
    assert_int_equal(nvmlDeviceGetPowerUsage((nvmlDevice_t)(uintptr_t)0x1000, &v),
                     NVML_ERROR_INVALID_ARGUMENT);
    assert_int_equal(nvmlDeviceGetPowerUsage(NULL, &v), NVML_ERROR_INVALID_ARGUMENT);
    unsigned int n = 4;
    nvmlProcessInfo_t p[4];
    assert_int_equal(nvmlDeviceGetComputeRunningProcesses_v3(forged, &n, p),
                     NVML_ERROR_INVALID_ARGUMENT);
}

static void identity(void **state)
{
    nvmlDevice_t d = dev0();
    char buf[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
    int major = 0, minor = 0, v = 0;
    nvmlBrandType_t brand;
    unsigned int minor_no = 9;

    (void)state;
    assert_int_equal(nvmlDeviceGetName(d, buf, sizeof(buf)), NVML_SUCCESS);
    assert_string_equal(buf, "vgpu fake device");
    assert_int_equal(nvmlDeviceGetName(d, buf, 4), NVML_ERROR_INSUFFICIENT_SIZE);
    assert_int_equal(nvmlSystemGetDriverVersion(buf, sizeof(buf)), NVML_SUCCESS);
    assert_string_equal(buf, "580.00.01");
    assert_int_equal(nvmlSystemGetNVMLVersion(buf, sizeof(buf)), NVML_SUCCESS);
    assert_string_equal(buf, "13.580.00.01");
    assert_int_equal(nvmlSystemGetCudaDriverVersion_v2(&v), NVML_SUCCESS);
    assert_int_equal(v, 13000);
    assert_int_equal(nvmlSystemGetCudaDriverVersion(&v), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetCudaComputeCapability(d, &major, &minor), NVML_SUCCESS);
    assert_int_equal(major * 10 + minor, 90);
    assert_int_equal(nvmlDeviceGetSerial(d, buf, sizeof(buf)), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetVbiosVersion(d, buf, sizeof(buf)), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetBrand(d, &brand), NVML_SUCCESS);
    assert_int_equal(brand, NVML_BRAND_NVIDIA);
    assert_int_equal(nvmlDeviceGetMinorNumber(d, &minor_no), NVML_SUCCESS);
    assert_int_equal(minor_no, 0);
}

static void sensors(void **state)
{
    nvmlDevice_t d = dev0();
    nvmlUtilization_t u;
    nvmlEnableState_t cur, pend;
    nvmlPstates_t ps;
    nvmlComputeMode_t cm;
    nvmlBAR1Memory_t bar1;
    nvmlDeviceArchitecture_t arch;
    unsigned long long energy;
    char part[32];
    unsigned int v = 0, v2 = 0;

    (void)state;
    assert_int_equal(nvmlDeviceGetUtilizationRates(d, &u), NVML_SUCCESS);
    assert_int_equal(u.gpu, 37);
    assert_int_equal(nvmlDeviceGetTemperature(d, NVML_TEMPERATURE_GPU, &v), NVML_SUCCESS);
    assert_int_equal(v, 41);
    assert_int_equal(nvmlDeviceGetPowerUsage(d, &v), NVML_SUCCESS);
    assert_int_equal(v, 123456);
    assert_int_equal(nvmlDeviceGetPowerManagementLimit(d, &v), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetClockInfo(d, NVML_CLOCK_SM, &v), NVML_SUCCESS);
    assert_int_equal(v, 1980);
    assert_int_equal(nvmlDeviceGetMaxClockInfo(d, NVML_CLOCK_MEM, &v), NVML_SUCCESS);
    assert_int_equal(v, 2619);
    assert_int_equal(nvmlDeviceGetFanSpeed(d, &v), NVML_ERROR_NOT_SUPPORTED);
    assert_int_equal(nvmlDeviceGetPerformanceState(d, &ps), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetComputeMode(d, &cm), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetPersistenceMode(d, &cur), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetEccMode(d, &cur, &pend), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetDisplayMode(d, &cur), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetDisplayActive(d, &cur), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetBAR1MemoryInfo(d, &bar1), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetCurrPcieLinkGeneration(d, &v), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetCurrPcieLinkWidth(d, &v), NVML_SUCCESS);
    assert_int_equal(v, 16);
    assert_int_equal(nvmlDeviceGetMaxPcieLinkGeneration(d, &v), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetMaxPcieLinkWidth(d, &v), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetEnforcedPowerLimit(d, &v), NVML_SUCCESS);
    assert_int_equal(v, 700000);
    assert_int_equal(nvmlDeviceGetArchitecture(d, &arch), NVML_SUCCESS);
    assert_int_equal(arch, 9);
    assert_int_equal(nvmlDeviceGetMigMode(d, &v, &v2), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetTotalEnergyConsumption(d, &energy), NVML_SUCCESS);
    assert_int_equal(energy, 123456789012ull);
    assert_int_equal(nvmlDeviceGetBoardPartNumber(d, part, sizeof(part)), NVML_SUCCESS);
    assert_string_equal(part, "900-2G520-0000-000");
    /* the fake has no NVML_ERROR_FUNCTION_NOT_FOUND answer of its own: missing there */
    assert_int_equal(nvmlDeviceGetNumGpuCores(d, &v), NVML_ERROR_FUNCTION_NOT_FOUND);
}

/* total: vm 7's limit (256 MiB), not the device's 80 GiB; used: what the VM allocated (the peer's 32 MiB too). */
static void memory_is_the_vms(void **state)
{
    nvmlDevice_t d = dev0();
    nvmlMemory_t m;
    nvmlMemory_v2_t m2 = { .version = nvmlMemory_v2 };
    void *p = NULL;

    (void)state;
    assert_int_equal(nvmlDeviceGetMemoryInfo(d, &m), NVML_SUCCESS);
    assert_int_equal(m.total, 256 * MiB);
    assert_int_equal(m.used, 32 * MiB);     /* vm 8's 96 MiB are not this VM's */
    assert_int_equal(m.free, 224 * MiB);

    assert_int_equal(cudaMalloc(&p, 64 * MiB), cudaSuccess);
    assert_int_equal(nvmlDeviceGetMemoryInfo_v2(d, &m2), NVML_SUCCESS);
    assert_int_equal(m2.total, 256 * MiB);
    assert_int_equal(m2.used, 96 * MiB);
    assert_int_equal(m2.free, 160 * MiB);
    assert_int_equal(m2.reserved, 0);
    assert_int_equal(cudaFree(p), cudaSuccess);
    assert_int_equal(nvmlDeviceGetMemoryInfo(d, &m), NVML_SUCCESS);
    assert_int_equal(m.used, 32 * MiB);

    m2.version = 1;
    assert_int_equal(nvmlDeviceGetMemoryInfo_v2(d, &m2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
    assert_int_equal(nvmlDeviceGetMemoryInfo(d, NULL), NVML_ERROR_INVALID_ARGUMENT);
}

/* The pid a holder run_nvml.sh started printed, from the environment. */
static unsigned int env_pid(const char *name)
{
    const char *v = getenv(name);

    assert_non_null(v);
    return (unsigned int)strtoul(v, NULL, 10);
}

/* Is pid among the n entries of p (of stride bytes each, pid first)? */
static bool has_pid(const void *p, size_t stride, unsigned int n, unsigned int pid)
{
    for (unsigned int i = 0; i < n; i++)
        if (*(const unsigned int *)((const char *)p + i * stride) == pid)
            return true;
    return false;
}

/*
 * The tenant's processes, each under its own pid: this one and its vm 7
 * peer; never pid 1 or vm 8's process, the "other tenants" of the fake.
 */
static void processes_are_the_tenants(void **state)
{
    nvmlDevice_t d = dev0();
    nvmlProcessInfo_t p[4];
    nvmlProcessInfo_v1_t p1[4];
    unsigned int n = 0, peer = env_pid("VGPU_TEST_PEER_PID"), other = env_pid("VGPU_TEST_OTHER_PID");

    (void)state;
    assert_int_equal(nvmlDeviceGetComputeRunningProcesses_v3(d, &n, NULL),
                     NVML_ERROR_INSUFFICIENT_SIZE);
    assert_int_equal(n, 2);
    n = 1;
    assert_int_equal(nvmlDeviceGetComputeRunningProcesses_v3(d, &n, p), NVML_ERROR_INSUFFICIENT_SIZE);
    assert_int_equal(n, 2);
    n = 4;
    memset(p, 0, sizeof(p));
    assert_int_equal(nvmlDeviceGetComputeRunningProcesses_v3(d, &n, p), NVML_SUCCESS);
    assert_int_equal(n, 2);
    assert_true(has_pid(p, sizeof(p[0]), n, (unsigned int)getpid()));
    assert_true(has_pid(p, sizeof(p[0]), n, peer));
    assert_false(has_pid(p, sizeof(p[0]), n, other));
    assert_false(has_pid(p, sizeof(p[0]), n, 1));
    assert_int_equal(p[0].usedGpuMemory, 512 * MiB);
    assert_int_equal(p[0].gpuInstanceId, 0xFFFFFFFFu);
    n = 4;
    assert_int_equal(nvmlDeviceGetComputeRunningProcesses_v2(d, &n, p), NVML_SUCCESS);
    assert_int_equal(n, 2);
    n = 4;
    assert_int_equal(nvmlDeviceGetComputeRunningProcesses(d, &n, p1), NVML_SUCCESS);
    assert_int_equal(n, 2);
    assert_true(has_pid(p1, sizeof(p1[0]), n, (unsigned int)getpid()));
    assert_true(has_pid(p1, sizeof(p1[0]), n, peer));
    assert_int_equal(p1[0].usedGpuMemory, 512 * MiB);
    assert_int_equal(nvmlDeviceGetComputeRunningProcesses_v3(d, NULL, p), NVML_ERROR_INVALID_ARGUMENT);
}

/* A process's name comes from the guest's own /proc. */
static void process_names(void **state)
{
    char name[4096], small[4];

    (void)state;
    assert_int_equal(nvmlSystemGetProcessName((unsigned int)getpid(), name, sizeof(name)), NVML_SUCCESS);
    assert_non_null(strstr(name, "nvml_test"));
    assert_int_equal(nvmlSystemGetProcessName((unsigned int)getpid(), small, sizeof(small)), NVML_SUCCESS);
    assert_int_equal(strlen(small), 3);
    assert_int_equal(nvmlSystemGetProcessName(0x7ffffffe, name, sizeof(name)), NVML_ERROR_NOT_FOUND);
    assert_int_equal(nvmlSystemGetProcessName((unsigned int)getpid(), NULL, 4), NVML_ERROR_INVALID_ARGUMENT);
}

/* Other functions exist: queries are not supported, changes are refused. */
static void others_answer(void **state)
{
    nvmlReturn_t (*query)(nvmlDevice_t, unsigned int *, unsigned int *) =
        (nvmlReturn_t (*)(nvmlDevice_t, unsigned int *, unsigned int *))(void (*)(void))
            nvmlDeviceGetEncoderUtilization;
    nvmlReturn_t (*set)(nvmlDevice_t, nvmlEnableState_t) =
        (nvmlReturn_t (*)(nvmlDevice_t, nvmlEnableState_t))(void (*)(void))nvmlDeviceSetPersistenceMode;
    nvmlReturn_t (*reset)(nvmlDevice_t) = (nvmlReturn_t (*)(nvmlDevice_t))(void (*)(void))
        nvmlDeviceResetGpuLockedClocks;
    nvmlPciInfo_t pci;
    unsigned int a, b;

    (void)state;
    assert_int_equal(query(dev0(), &a, &b), NVML_ERROR_NOT_SUPPORTED);
    assert_int_equal(set(dev0(), NVML_FEATURE_ENABLED), NVML_ERROR_NO_PERMISSION);
    assert_int_equal(reset(dev0()), NVML_ERROR_NO_PERMISSION);
    assert_int_equal(nvmlDeviceGetPciInfo(dev0(), &pci), NVML_ERROR_NOT_SUPPORTED);
    assert_string_equal(nvmlErrorString(NVML_ERROR_NOT_FOUND), "Not Found");
    assert_string_equal(nvmlErrorString((nvmlReturn_t)12345), "Unknown Error");
}

/* References: a guest cannot shut down what it did not initialise. */
static void init_counts(void **state)
{
    unsigned int n;

    (void)state;
    assert_int_equal(nvmlInitWithFlags(0), NVML_SUCCESS);
    assert_int_equal(nvmlInit(), NVML_SUCCESS);
    assert_int_equal(nvmlShutdown(), NVML_SUCCESS);
    assert_int_equal(nvmlShutdown(), NVML_SUCCESS);
    assert_int_equal(nvmlDeviceGetCount_v2(&n), NVML_SUCCESS);   /* setup's reference remains */
}

static int run_fake(void)
{
    unsigned int n;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(devices_are_the_sessions), cmocka_unit_test(forged_handles_refused),
        cmocka_unit_test(identity), cmocka_unit_test(sensors),
        cmocka_unit_test(memory_is_the_vms), cmocka_unit_test(processes_are_the_tenants),
        cmocka_unit_test(process_names), cmocka_unit_test(others_answer), cmocka_unit_test(init_counts),
    };

    /* before any nvmlInit, as NVML answers */
    if (nvmlDeviceGetCount_v2(&n) != NVML_ERROR_UNINITIALIZED || nvmlShutdown() != NVML_ERROR_UNINITIALIZED) {
        fprintf(stderr, "nvml_test: calls before nvmlInit did not answer NVML_ERROR_UNINITIALIZED\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}

static int run_without(nvmlReturn_t init, nvmlReturn_t others)
{
    unsigned int n;
    nvmlDevice_t d;
    char buf[80];
    int fails = 0;

    fails += nvmlInit_v2() != init;
    fails += nvmlInitWithFlags(0) != init;
    fails += nvmlDeviceGetCount_v2(&n) != others;
    fails += nvmlDeviceGetHandleByIndex_v2(0, &d) != others;
    fails += nvmlSystemGetDriverVersion(buf, sizeof(buf)) != others;
    fails += nvmlShutdown() != others;
    printf("nvmlInit_v2: %s; nvmlDeviceGetCount_v2: %s\n", nvmlErrorString(nvmlInit_v2()),
           nvmlErrorString(nvmlDeviceGetCount_v2(&n)));
    return fails ? 1 : 0;
}

static int hold(const char *mib)
{
    void *p = NULL;
    nvmlDevice_t d;
    nvmlMemory_t m;
    char c;

    if (!mib || cudaMalloc(&p, strtoull(mib, NULL, 10) * MiB) != cudaSuccess)
        return 1;
    printf("holding %d\n", (int)getpid());
    /* what NVML says here (vm 8 has no memory limit: the device's numbers) */
    if (nvmlInit_v2() == NVML_SUCCESS) {
        if (nvmlDeviceGetHandleByIndex_v2(0, &d) == NVML_SUCCESS &&
            nvmlDeviceGetMemoryInfo(d, &m) == NVML_SUCCESS)
            printf("memory total %llu used %llu free %llu\n", m.total, m.used, m.free);
        nvmlShutdown();
    }
    fflush(stdout);
    while (fread(&c, 1, 1, stdin) == 1)
        ;
    return cudaFree(p) == cudaSuccess ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "fake";

    if (!strcmp(mode, "hold"))
        return hold(argc > 2 ? argv[2] : NULL);

    if (!strcmp(mode, "nonvml"))
        return run_without(NVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_UNINITIALIZED);
    if (!strcmp(mode, "noserver"))
        return run_without(NVML_ERROR_DRIVER_NOT_LOADED, NVML_ERROR_DRIVER_NOT_LOADED);
    return run_fake();
}
