/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake libnvidia-ml.so.1 for vgpu-server on machines without a GPU
 * (tests only), following NVML's documented semantics
 * (https://docs.nvidia.com/deploy/nvml-api/): a reference-counted
 * nvmlInit, NVML_ERROR_UNINITIALIZED before it, handles checked,
 * NVML_ERROR_INSUFFICIENT_SIZE for short buffers (with the count needed
 * for process lists).
 *
 * It has two GPUs where the fake CUDA runtime has one: GPU 0 is the CUDA
 * device (bus id 00000000:01:00.0, as fakecuda's cudaDeviceGetPCIBusId
 * says), GPU 1 (00000000:02:00.0) stands for another tenant's GPU that a
 * session must never see.  Each GPU lists as its compute processes pid 1,
 * standing for another tenant's, the calling process and the server's
 * other sessions (as if each had a context there).  Built into its own
 * directory (nvml/), so a test
 * chooses whether the server has an NVML at all.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "nvml_api.h"

#define FAKE_EXPORT __attribute__((visibility("default")))
#define NDEV 2
#define TOTAL (80ull << 30)
#define PROC_MEM (512ull << 20)

struct nvmlDevice_st {
    int index;
};

static struct nvmlDevice_st devs[NDEV] = { { 0 }, { 1 } };
static int refs;

static nvmlReturn_t dev_ok(nvmlDevice_t d)
{
    if (refs <= 0)
        return NVML_ERROR_UNINITIALIZED;
    return d == &devs[0] || d == &devs[1] ? NVML_SUCCESS : NVML_ERROR_INVALID_ARGUMENT;
}

/* Copies s into buf of length len, or NVML_ERROR_INSUFFICIENT_SIZE. */
static nvmlReturn_t put_str(char *buf, unsigned int len, const char *s)
{
    if (!buf)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(s) + 1 > len)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(buf, s, strlen(s) + 1);
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    refs++;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlInit(void)
{
    return nvmlInit_v2();
}

FAKE_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)flags;
    return nvmlInit_v2();
}

FAKE_EXPORT nvmlReturn_t nvmlShutdown(void)
{
    if (refs <= 0)
        return NVML_ERROR_UNINITIALIZED;
    refs--;
    return NVML_SUCCESS;
}

FAKE_EXPORT const char *nvmlErrorString(nvmlReturn_t r)
{
    return r == NVML_SUCCESS ? "Success" : "fake NVML error";
}

FAKE_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    return refs <= 0 ? NVML_ERROR_UNINITIALIZED : put_str(version, length, "580.00.01");
}

FAKE_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    return refs <= 0 ? NVML_ERROR_UNINITIALIZED : put_str(version, length, "13.580.00.01");
}

FAKE_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    if (!v)
        return NVML_ERROR_INVALID_ARGUMENT;
    *v = 13000;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v)
{
    return nvmlSystemGetCudaDriverVersion_v2(v);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *n)
{
    if (refs <= 0)
        return NVML_ERROR_UNINITIALIZED;
    if (!n)
        return NVML_ERROR_INVALID_ARGUMENT;
    *n = NDEV;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d)
{
    if (refs <= 0)
        return NVML_ERROR_UNINITIALIZED;
    if (i >= NDEV || !d)
        return NVML_ERROR_INVALID_ARGUMENT;
    *d = &devs[i];
    return NVML_SUCCESS;
}

static void bus_of(int i, char *buf, size_t n)
{
    snprintf(buf, n, "00000000:%02x:00.0", (unsigned)(i + 1));
}

static void uuid_of(int i, char *buf, size_t n)
{
    snprintf(buf, n, "GPU-fa4e0000-0000-4000-8000-00000000000%d", i);
}

/* A device by bus id or UUID (which = 0 or 1): compared without case, as bus ids may come either way. */
static nvmlReturn_t find(int which, const char *key, nvmlDevice_t *d)
{
    char buf[NVML_DEVICE_UUID_BUFFER_SIZE];

    if (refs <= 0)
        return NVML_ERROR_UNINITIALIZED;
    if (!key || !d)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < NDEV; i++) {
        if (which)
            uuid_of(i, buf, sizeof(buf));
        else
            bus_of(i, buf, sizeof(buf));
        if (!strcasecmp(buf, key)) {
            *d = &devs[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus, nvmlDevice_t *d)
{
    return find(0, bus, d);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *d)
{
    return find(1, uuid, d);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length)
{
    nvmlReturn_t r = dev_ok(d);

    return r ? r : put_str(name, length, d->index ? "other tenant's fake GPU" : "vgpu fake device");
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length)
{
    char buf[NVML_DEVICE_UUID_BUFFER_SIZE];
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    uuid_of(d->index, buf, sizeof(buf));
    return put_str(uuid, length, buf);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t d, char *serial, unsigned int length)
{
    nvmlReturn_t r = dev_ok(d);

    return r ? r : put_str(serial, length, d->index ? "1320000000002" : "1320000000001");
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetVbiosVersion(nvmlDevice_t d, char *v, unsigned int length)
{
    nvmlReturn_t r = dev_ok(d);

    return r ? r : put_str(v, length, "96.00.00.00.01");
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *pci)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!pci)
        return NVML_ERROR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof(*pci));
    bus_of(d->index, pci->busId, sizeof(pci->busId));
    snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "0000:%02x:00.0", (unsigned)(d->index + 1));
    pci->bus = (unsigned int)(d->index + 1);
    pci->pciDeviceId = 0x233510deu;
    pci->pciSubSystemId = 0x18a610deu;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int *i)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!i)
        return NVML_ERROR_INVALID_ARGUMENT;
    *i = (unsigned int)d->index;
    return NVML_SUCCESS;
}

/* Device-wide: what every tenant together uses (the server must not pass it on). */
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!m)
        return NVML_ERROR_INVALID_ARGUMENT;
    m->total = TOTAL;
    m->used = 3 * PROC_MEM;
    m->free = TOTAL - m->used;
    return NVML_SUCCESS;
}

/*
 * The processes with a context on the GPU, as the fake tells them: pid 1
 * (another tenant's, never a vgpu session), the calling process, and every
 * other child of its parent (the server's other sessions, of this tenant
 * or others), found in /proc.
 */
static unsigned int processes(unsigned int *pids, unsigned int max)
{
    unsigned int n = 0;
    DIR *dir = opendir("/proc");
    struct dirent *e;

    pids[n++] = 1;
    pids[n++] = (unsigned int)getpid();
    while (dir && (e = readdir(dir)) && n < max) {
        char path[300], buf[512], *close_paren;
        int pid = atoi(e->d_name), ppid = 0;
        FILE *f;
        size_t len;

        if (pid <= 1 || pid == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        f = fopen(path, "r");
        if (!f)
            continue;
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = 0;
        close_paren = strrchr(buf, ')');
        if (close_paren && sscanf(close_paren + 1, " %*c %d", &ppid) == 1 && ppid == getppid())
            pids[n++] = (unsigned int)pid;
    }
    if (dir)
        closedir(dir);
    return n;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *n,
                                                                 nvmlProcessInfo_t *infos)
{
    unsigned int pids[64], count;
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!n)
        return NVML_ERROR_INVALID_ARGUMENT;
    count = processes(pids, 64);
    if (*n < count) {
        *n = count;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (!infos)
        return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned int i = 0; i < count; i++) {
        infos[i].pid = pids[i];
        infos[i].usedGpuMemory = PROC_MEM;
        infos[i].gpuInstanceId = 0xFFFFFFFFu;
        infos[i].computeInstanceId = 0xFFFFFFFFu;
    }
    *n = count;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *major, int *minor)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!major || !minor)
        return NVML_ERROR_INVALID_ARGUMENT;
    *major = 9;
    *minor = 0;
    return NVML_SUCCESS;
}

/* One unsigned value of a device (sensors, clocks, link), for the getters below. */
static nvmlReturn_t value(nvmlDevice_t d, unsigned int *out, unsigned int v)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!out)
        return NVML_ERROR_INVALID_ARGUMENT;
    *out = v;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!u)
        return NVML_ERROR_INVALID_ARGUMENT;
    u->gpu = 37;
    u->memory = 12;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, nvmlTemperatureSensors_t s,
                                                  unsigned int *t)
{
    if (s != NVML_TEMPERATURE_GPU && dev_ok(d) == NVML_SUCCESS)
        return NVML_ERROR_INVALID_ARGUMENT;
    return value(d, t, 41);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *p)
{
    return value(d, p, 123456);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t d, unsigned int *p)
{
    return value(d, p, 700000);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, nvmlClockType_t t, unsigned int *c)
{
    if ((unsigned)t >= NVML_CLOCK_COUNT && dev_ok(d) == NVML_SUCCESS)
        return NVML_ERROR_INVALID_ARGUMENT;
    return value(d, c, t == NVML_CLOCK_MEM ? 2619 : 1980);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, nvmlClockType_t t, unsigned int *c)
{
    return nvmlDeviceGetClockInfo(d, t, c);
}

/* A data-centre part without a fan, as an H200's NVML answers. */
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetFanSpeed(nvmlDevice_t d, unsigned int *s)
{
    nvmlReturn_t r = dev_ok(d);

    return r ? r : !s ? NVML_ERROR_INVALID_ARGUMENT : NVML_ERROR_NOT_SUPPORTED;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t d, nvmlPstates_t *p)
{
    return value(d, (unsigned int *)p, NVML_PSTATE_0);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t d, nvmlComputeMode_t *m)
{
    return value(d, (unsigned int *)m, NVML_COMPUTEMODE_DEFAULT);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t d, nvmlEnableState_t *m)
{
    return value(d, (unsigned int *)m, NVML_FEATURE_ENABLED);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t d, unsigned int *m)
{
    return value(d, m, d == &devs[1] ? 1u : 0u);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t d, nvmlBAR1Memory_t *b)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!b)
        return NVML_ERROR_INVALID_ARGUMENT;
    b->bar1Total = 128ull << 30;
    b->bar1Used = 32ull << 20;
    b->bar1Free = b->bar1Total - b->bar1Used;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t d, nvmlEnableState_t *cur,
                                              nvmlEnableState_t *pending)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!cur || !pending)
        return NVML_ERROR_INVALID_ARGUMENT;
    *cur = *pending = NVML_FEATURE_ENABLED;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetDisplayMode(nvmlDevice_t d, nvmlEnableState_t *m)
{
    return value(d, (unsigned int *)m, NVML_FEATURE_DISABLED);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetDisplayActive(nvmlDevice_t d, nvmlEnableState_t *m)
{
    return value(d, (unsigned int *)m, NVML_FEATURE_DISABLED);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t d, nvmlBrandType_t *b)
{
    return value(d, (unsigned int *)b, NVML_BRAND_NVIDIA);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t d, unsigned int *g)
{
    return value(d, g, 5);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t d, unsigned int *w)
{
    return value(d, w, 16);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t d, unsigned int *g)
{
    return value(d, g, 5);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t d, unsigned int *w)
{
    return value(d, w, 16);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int *p)
{
    return value(d, p, 700000);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t d, nvmlDeviceArchitecture_t *a)
{
    return value(d, a, 9);    /* Hopper */
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *cur, unsigned int *pending)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!cur || !pending)
        return NVML_ERROR_INVALID_ARGUMENT;
    *cur = *pending = 0;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *e)
{
    nvmlReturn_t r = dev_ok(d);

    if (r)
        return r;
    if (!e)
        return NVML_ERROR_INVALID_ARGUMENT;
    *e = 123456789012ull;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetBoardPartNumber(nvmlDevice_t d, char *part, unsigned int length)
{
    nvmlReturn_t r = dev_ok(d);

    return r ? r : put_str(part, length, "900-2G520-0000-000");
}
