/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hand-written NVML calls of libnvidia-ml.so.1 (codegen/spec/nvml.spec
 * "manual"): nvmlErrorString, answered here from the documented meaning of
 * each nvmlReturn_t, and the running compute processes, whose count must
 * reach the caller with NVML_ERROR_INSUFFICIENT_SIZE (a generated call
 * leaves its outputs alone on any failure; the server lists the VM's
 * processes under their own pids, docs/nvml.md), and process names, read
 * from the guest's /proc.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/client.h"
#include "nvml_api.h"
#include "nvml_calltable.h"
#include "nvml_internal.h"
#include "nvml_manual.pb-c.h"

VGPU_EXPORT const char *nvmlErrorString(nvmlReturn_t result)
{
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires reset";
    case NVML_ERROR_OPERATING_SYSTEM: return "GPU access blocked by the operating system";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "Driver/library version mismatch";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_VGPU_ECC_NOT_SUPPORTED: return "ECC is not supported on vGPU";
    case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Insufficient resources";
    case NVML_ERROR_FREQ_NOT_SUPPORTED: return "Frequency not supported";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    case NVML_ERROR_DEPRECATED: return "Deprecated";
    case NVML_ERROR_NOT_READY: return "Not ready";
    case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
    case NVML_ERROR_INVALID_STATE: return "Invalid state";
    case NVML_ERROR_UNKNOWN: return "Unknown Error";
    default: return "Unknown Error";
    }
}

/*
 * vgpu's own (vgpu-smi): the server's release, connecting first if need be.
 * NVML_SUCCESS, NVML_ERROR_DRIVER_NOT_LOADED when the server cannot be
 * reached (the library said why on stderr), NVML_ERROR_INSUFFICIENT_SIZE,
 * NVML_ERROR_INVALID_ARGUMENT for a NULL buffer.
 */
VGPU_EXPORT nvmlReturn_t vgpu_nvml_server_version(char *version, unsigned int length)
{
    char v[64];
    int rc;

    if (!version || !length)
        return NVML_ERROR_INVALID_ARGUMENT;
    rc = vgpu_client_server_version(vgpu_client_get(), v, sizeof(v));
    if (rc == -EOPNOTSUPP)
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    if (rc)
        return NVML_ERROR_DRIVER_NOT_LOADED;
    if (strlen(v) >= length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(version, v, strlen(v) + 1);
    return NVML_SUCCESS;
}

/*
 * Asks for the processes; on success copies them into infos by put(),
 * which knows the caller's struct version.  *infoCount is the capacity in,
 * the count out: also with NVML_ERROR_INSUFFICIENT_SIZE, as NVML does.
 */
static nvmlReturn_t procs(uint32_t id, const char *name, nvmlDevice_t device,
                          unsigned int *infoCount, void *infos,
                          void (*put)(void *infos, unsigned int i, const Vgpu__Nvmlm__NvmlProcess *p))
{
    Vgpu__Nvmlm__NvmlProcsArgs a = VGPU__NVMLM__NVML_PROCS_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Nvmlm__NvmlProcsRet *r;
    int st;

    if (!infoCount || (*infoCount && !infos))
        return NVML_ERROR_INVALID_ARGUMENT;
    a.device = (uint64_t)(uintptr_t)device;
    a.capacity = *infoCount;
    st = vgpu_nvml_call(id, name, &a.base, &req, &rep);
    if (st != NVML_SUCCESS && st != NVML_ERROR_INSUFFICIENT_SIZE)
        goto out;
    r = vgpu__nvmlm__nvml_procs_ret__unpack(NULL, rep.ret_len, rep.ret);
    if (!r || r->n_procs > *infoCount || (st == NVML_SUCCESS && r->n_procs != r->count)) {
        st = vgpu_shim_bad_reply(&req);
    } else {
        for (size_t i = 0; i < r->n_procs; i++)
            put(infos, (unsigned int)i, r->procs[i]);
        *infoCount = r->count;
    }
    if (r)
        vgpu__nvmlm__nvml_procs_ret__free_unpacked(r, NULL);
out:
    vgpu_shim_rep_release(&rep);
    return (nvmlReturn_t)st;
}

static void put_v1(void *infos, unsigned int i, const Vgpu__Nvmlm__NvmlProcess *p)
{
    nvmlProcessInfo_v1_t *e = (nvmlProcessInfo_v1_t *)infos + i;

    e->pid = p->pid;
    e->usedGpuMemory = p->used_memory;
}

static void put_v2(void *infos, unsigned int i, const Vgpu__Nvmlm__NvmlProcess *p)
{
    nvmlProcessInfo_v2_t *e = (nvmlProcessInfo_v2_t *)infos + i;

    e->pid = p->pid;
    e->usedGpuMemory = p->used_memory;
    e->gpuInstanceId = p->gpu_instance;
    e->computeInstanceId = p->compute_instance;
}

#define PROCS(name, put)                                                       \
    procs(VGPU_NVML_ID_##name, #name, device, infoCount, infos, put)

VGPU_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int *infoCount,
                                                              nvmlProcessInfo_v1_t *infos)
{
    return PROCS(nvmlDeviceGetComputeRunningProcesses, put_v1);
}

VGPU_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                                 unsigned int *infoCount,
                                                                 nvmlProcessInfo_v2_t *infos)
{
    return PROCS(nvmlDeviceGetComputeRunningProcesses_v2, put_v2);
}

VGPU_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                                 unsigned int *infoCount,
                                                                 nvmlProcessInfo_t *infos)
{
    return PROCS(nvmlDeviceGetComputeRunningProcesses_v3, put_v2);
}

/*
 * The name of a guest process, from the guest's own /proc: the pids this
 * library lists are the guest's (nvmlDeviceGetComputeRunningProcesses), and
 * the server must not be asked about pids of its own host.  The name is
 * the program's first argument, cropped to length, as NVML crops it.
 */
VGPU_EXPORT nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char *name, unsigned int length)
{
    char path[64], buf[4096];
    size_t n;
    FILE *f;

    if (!name || !length || !pid)
        return NVML_ERROR_INVALID_ARGUMENT;
    snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
    f = fopen(path, "re");
    if (!f)
        return NVML_ERROR_NOT_FOUND;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    if (!n) {                      /* a kernel thread, or one exiting: its comm */
        snprintf(path, sizeof(path), "/proc/%u/comm", pid);
        f = fopen(path, "re");
        if (!f)
            return NVML_ERROR_NOT_FOUND;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
    }
    snprintf(name, length, "%s", buf);
    return NVML_SUCCESS;
}
