/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NVML for the guest (codegen/spec/nvml.spec, docs/nvml.md): the real
 * libnvidia-ml.so.1, reached through dlopen like the driver (driver.c), so
 * a server on a host without it still starts and answers nvmlInit with
 * NVML_ERROR_LIBRARY_NOT_FOUND and every other call as NVML does before a
 * successful nvmlInit.
 *
 * Most calls are generated and reach the real NVML by name, their device
 * handle checked against the session's table first.  Where the session's
 * view differs from the real NVML's, the name resolves to a function of
 * this file with the same signature instead (overrides[] below):
 *   - the devices are the session's CUDA devices (its pool's GPUs, in
 *     CUDA's order), matched to NVML's by PCI bus id; a handle of any other
 *     GPU is never handed out, and a lookup of one by UUID or bus id is
 *     NVML_ERROR_NOT_FOUND;
 *   - memory is the VM's: total is its memory limit when it has one (and
 *     it is below the device's), used what its sessions hold;
 *   - nvmlInit and nvmlShutdown count the guest's references, so a guest
 *     cannot shut down more than it initialised.
 * The one hand-written call, the running processes, lists the processes
 * of the session's VM alone, each under its program's own pid.
 *
 * A session is one process: the library, its functions and the session the
 * current call runs for are kept once here.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "nvml_api.h"
#include "nvml_calltable.h"
#include "nvml_manual.pb-c.h"
#include "cuda_calltable.h"
#include "cudart_calltable.h"
#include "server_internal.h"
#include "scheduler.h"
#include "config.h"

#define MAX_DEVICES 64
#define MAX_PROCS 1024     /* processes asked of the real NVML at most */

/* The real functions this file calls. */
static struct {
    bool tried;
    void *lib;
    __typeof__(&nvmlInit) init_v1;
    __typeof__(&nvmlInit_v2) init_v2;
    __typeof__(&nvmlInitWithFlags) init_flags;
    __typeof__(&nvmlShutdown) shutdown;
    __typeof__(&nvmlDeviceGetHandleByPciBusId_v2) by_pci;
    __typeof__(&nvmlDeviceGetHandleByUUID) by_uuid;
    __typeof__(&nvmlDeviceGetMemoryInfo) memory;
    __typeof__(&nvmlDeviceGetComputeRunningProcesses_v3) procs;
} nv;

static struct vgpu_session *cur;  /* the session of the call being served */

static void *real(const char *name)
{
    return nv.lib ? dlsym(nv.lib, name) : NULL;
}

static bool load(void)
{
    if (nv.tried)
        return nv.lib != NULL;
    nv.tried = true;
#ifdef VGPU_CUDA_LINKED_IN
    nv.lib = dlopen(NULL, RTLD_NOW);    /* the in-process fuzzer links the fake NVML in */
#else
    nv.lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
#endif
    if (!nv.lib) {
        vgpu_log(VGPU_LOG_INFO, "no NVML here (%s): guests' nvmlInit answers "
                 "NVML_ERROR_LIBRARY_NOT_FOUND", dlerror());
        return false;
    }
    *(void **)&nv.init_v1 = real("nvmlInit");
    *(void **)&nv.init_v2 = real("nvmlInit_v2");
    *(void **)&nv.init_flags = real("nvmlInitWithFlags");
    *(void **)&nv.shutdown = real("nvmlShutdown");
    *(void **)&nv.by_pci = real("nvmlDeviceGetHandleByPciBusId_v2");
    *(void **)&nv.by_uuid = real("nvmlDeviceGetHandleByUUID");
    *(void **)&nv.memory = real("nvmlDeviceGetMemoryInfo");
    *(void **)&nv.procs = real("nvmlDeviceGetComputeRunningProcesses_v3");
    return true;
}

int vgpu_errno_to_nvml(int neg)
{
    switch (neg) {
    case 0:
        return NVML_SUCCESS;
    case -ENOENT:                 /* a handle not the session's: as NVML answers a bad one */
    case -EFAULT:
    case -EINVAL:
    case -EBADMSG:
    case -E2BIG:
        return NVML_ERROR_INVALID_ARGUMENT;
    case -ENOMEM:
        return NVML_ERROR_MEMORY;
    case -ENOSYS:                 /* the real NVML lacks the function, or there is none */
        return load() ? NVML_ERROR_FUNCTION_NOT_FOUND : NVML_ERROR_UNINITIALIZED;
    default:
        return NVML_ERROR_UNKNOWN;
    }
}

void vgpu_nvml_enter(struct vgpu_session *s)
{
    cur = s;
}

/* ---- the session's devices ---- */

/* The session's NVML kind in the session's table (after the CUDA APIs' kinds). */
static int table_kind(void)
{
    return VGPU_CUDART_NHANDLE_KINDS + VGPU_CUDA_NHANDLE_KINDS + VGPU_NVML_H_NVML_DEVICE;
}

/* How many CUDA devices the session has (its pool's), at most MAX_DEVICES. */
static unsigned int device_count(void)
{
    int n = 0;

    if (!cur || cur->init_status != cudaSuccess || cudaGetDeviceCount(&n) != cudaSuccess || n < 0)
        return 0;
    return n > MAX_DEVICES ? MAX_DEVICES : (unsigned int)n;
}

/* The real NVML handle of the session's CUDA device i, by its PCI bus id. */
static nvmlReturn_t device_at(unsigned int i, nvmlDevice_t *d)
{
    char bus[32];

    if (!nv.by_pci || cudaDeviceGetPCIBusId(bus, (int)sizeof(bus), (int)i) != cudaSuccess)
        return NVML_ERROR_UNKNOWN;
    return nv.by_pci(bus, d);
}

/* The session's index of real handle d, or -1 when it is not one of its devices. */
static int index_of(nvmlDevice_t d)
{
    unsigned int n = device_count();

    for (unsigned int i = 0; d && i < n; i++) {
        nvmlDevice_t h;

        if (device_at(i, &h) == NVML_SUCCESS && h == d)
            return (int)i;
    }
    return -1;
}

/* Calls that need an nvmlInit of the guest's first. */
static bool inited(void)
{
    return cur && cur->nvml_inits > 0;
}

/* ---- overrides: the server's answer in place of the real NVML's ---- */

static nvmlReturn_t took(nvmlReturn_t r)
{
    if (r == NVML_SUCCESS && cur)
        cur->nvml_inits++;
    return r;
}

static nvmlReturn_t o_init(void)
{
    if (!load())
        return NVML_ERROR_LIBRARY_NOT_FOUND;
    return took(nv.init_v1 ? nv.init_v1() : NVML_ERROR_FUNCTION_NOT_FOUND);
}

static nvmlReturn_t o_init_v2(void)
{
    if (!load())
        return NVML_ERROR_LIBRARY_NOT_FOUND;
    return took(nv.init_v2 ? nv.init_v2() : NVML_ERROR_FUNCTION_NOT_FOUND);
}

static nvmlReturn_t o_init_flags(unsigned int flags)
{
    if (!load())
        return NVML_ERROR_LIBRARY_NOT_FOUND;
    return took(nv.init_flags ? nv.init_flags(flags) : NVML_ERROR_FUNCTION_NOT_FOUND);
}

static nvmlReturn_t o_shutdown(void)
{
    nvmlReturn_t r;

    if (!inited() || !nv.shutdown)
        return NVML_ERROR_UNINITIALIZED;
    r = nv.shutdown();
    if (r == NVML_SUCCESS)
        cur->nvml_inits--;
    return r;
}

static nvmlReturn_t o_count(unsigned int *count)
{
    if (!inited())
        return NVML_ERROR_UNINITIALIZED;
    if (!count)
        return NVML_ERROR_INVALID_ARGUMENT;
    *count = device_count();
    return NVML_SUCCESS;
}

static nvmlReturn_t o_by_index(unsigned int index, nvmlDevice_t *device)
{
    if (!inited())
        return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= device_count())
        return NVML_ERROR_INVALID_ARGUMENT;
    return device_at(index, device);
}

/* A device the real NVML found is answered only when it is one of the session's. */
static nvmlReturn_t only_mine(nvmlReturn_t r, nvmlDevice_t *device)
{
    if (r == NVML_SUCCESS && index_of(*device) < 0) {
        *device = NULL;
        return NVML_ERROR_NOT_FOUND;
    }
    return r;
}

static nvmlReturn_t o_by_uuid(const char *uuid, nvmlDevice_t *device)
{
    if (!inited())
        return NVML_ERROR_UNINITIALIZED;
    if (!uuid || !device || !nv.by_uuid)
        return NVML_ERROR_INVALID_ARGUMENT;
    return only_mine(nv.by_uuid(uuid, device), device);
}

static nvmlReturn_t o_by_pci(const char *bus, nvmlDevice_t *device)
{
    if (!inited())
        return NVML_ERROR_UNINITIALIZED;
    if (!bus || !device || !nv.by_pci)
        return NVML_ERROR_INVALID_ARGUMENT;
    return only_mine(nv.by_pci(bus, device), device);
}

static nvmlReturn_t o_index(nvmlDevice_t device, unsigned int *index)
{
    int i;

    if (!inited())
        return NVML_ERROR_UNINITIALIZED;
    if (!device || !index)
        return NVML_ERROR_INVALID_ARGUMENT;
    i = index_of(device);
    if (i < 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    *index = (unsigned int)i;
    return NVML_SUCCESS;
}

/*
 * The VM's memory.  Under a limit below the device's size: total is the
 * limit and used what the VM's sessions hold (their allocations), so
 * another tenant's use never shows.  Without one, total is the device's,
 * and so used and free are the device's (an aggregate over all tenants,
 * naming none): the VM's own use there would make free hide what others
 * took.
 */
static nvmlReturn_t vm_memory(nvmlDevice_t device, unsigned long long *total,
                              unsigned long long *used, unsigned long long *avail)
{
    const struct vgpu_vm_limits *lim;
    nvmlMemory_t m;
    nvmlReturn_t r;

    if (!inited())
        return NVML_ERROR_UNINITIALIZED;
    if (!device || !nv.memory)
        return NVML_ERROR_INVALID_ARGUMENT;
    r = nv.memory(device, &m);
    if (r != NVML_SUCCESS)
        return r;
    lim = vgpu_config_vm(vgpu_cfg, cur->who.vm_id);
    if (!lim || !lim->memory || lim->memory >= m.total) {
        *total = m.total;
        *used = m.used;
        *avail = m.free;
        return NVML_SUCCESS;
    }
    *total = lim->memory;
    *used = vgpu_sched_vm_held(VGPU_HELD_MEMORY);
    if (*used > *total)
        *used = *total;
    *avail = *total - *used;
    return NVML_SUCCESS;
}

static nvmlReturn_t o_memory(nvmlDevice_t device, nvmlMemory_t *memory)
{
    unsigned long long total, used, avail;
    nvmlReturn_t r;

    if (!memory && inited())
        return NVML_ERROR_INVALID_ARGUMENT;
    r = vm_memory(device, &total, &used, &avail);
    if (r == NVML_SUCCESS) {
        memory->total = total;
        memory->used = used;
        memory->free = avail;
    }
    return r;
}

static nvmlReturn_t o_memory_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    unsigned long long total, used, avail;
    nvmlReturn_t r;

    if (!memory && inited())
        return NVML_ERROR_INVALID_ARGUMENT;
    if (memory && memory->version != nvmlMemory_v2 && inited())
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    r = vm_memory(device, &total, &used, &avail);
    if (r == NVML_SUCCESS) {
        memory->total = total;
        memory->reserved = 0;
        memory->used = used;
        memory->free = avail;
    }
    return r;
}

/* The conditional makes the compiler check that fn has name's exact type. */
#define OVERRIDE(name, fn) { #name, (void (*)(void))(1 ? (fn) : &name) }
static const struct { const char *name; void (*fn)(void); } overrides[] = {
    OVERRIDE(nvmlInit, o_init),
    OVERRIDE(nvmlInit_v2, o_init_v2),
    OVERRIDE(nvmlInitWithFlags, o_init_flags),
    OVERRIDE(nvmlShutdown, o_shutdown),
    OVERRIDE(nvmlDeviceGetCount, o_count),
    OVERRIDE(nvmlDeviceGetCount_v2, o_count),
    OVERRIDE(nvmlDeviceGetHandleByIndex, o_by_index),
    OVERRIDE(nvmlDeviceGetHandleByIndex_v2, o_by_index),
    OVERRIDE(nvmlDeviceGetHandleByUUID, o_by_uuid),
    OVERRIDE(nvmlDeviceGetHandleByPciBusId, o_by_pci),
    OVERRIDE(nvmlDeviceGetHandleByPciBusId_v2, o_by_pci),
    OVERRIDE(nvmlDeviceGetIndex, o_index),
    OVERRIDE(nvmlDeviceGetMemoryInfo, o_memory),
    OVERRIDE(nvmlDeviceGetMemoryInfo_v2, o_memory_v2),
};

void (*vgpu_nvml_sym(const char *name))(void)
{
    void *p;
    void (*fn)(void);

    for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++)
        if (!strcmp(overrides[i].name, name))
            return overrides[i].fn;
    if (!load())
        return NULL;
    p = real(name);
    memcpy(&fn, &p, sizeof(fn));
    return fn;
}

/* ---- the handles' checks: only devices the session was given ---- */

static int nvml_handle_in(void *ctx, int kind, uint64_t wire, void **native)
{
    struct vgpu_session *s = ctx;

    (void)kind;
    if (wire == 0 || vgpu_handle_known(s, table_kind(), wire)) {
        *native = (void *)(uintptr_t)wire;
        return 0;
    }
    vgpu_log(VGPU_LOG_INFO, "refused NVML device handle %#llx: not this session's",
             (unsigned long long)wire);
    return -ENOENT;
}

static int nvml_handle_out(void *ctx, int kind, void *native, uint64_t *wire)
{
    (void)kind;
    *wire = (uint64_t)(uintptr_t)native;
    return native ? vgpu_handle_add(ctx, table_kind(), *wire) : 0;
}

/* NVML takes no device addresses: the spec declares none, so none is accepted. */
static int nvml_no_devptr(void *ctx, uint64_t addr, void **native)
{
    (void)ctx;
    (void)addr;
    (void)native;
    return -EFAULT;
}

static int nvml_no_range(void *ctx, uint64_t addr, uint64_t len, void **native)
{
    (void)len;
    return nvml_no_devptr(ctx, addr, native);
}

const struct vgpu_replay_ops vgpu_session_nvml_ops = { nvml_handle_in, nvml_handle_out,
                                                       nvml_no_devptr, nvml_no_range };

/* ---- the hand-written call: the VM's own processes ---- */

/*
 * The real device's processes that are this tenant's, into mine[], each
 * under its program's own pid: this session's server process (the guest
 * program that is asking) and those of the other sessions of its VM
 * (vgpu_sched_vm_peer).  Anyone else's process is never listed.
 */
static nvmlReturn_t vm_processes(nvmlDevice_t d, nvmlProcessInfo_t *mine, unsigned int *n)
{
    static nvmlProcessInfo_t all[MAX_PROCS];
    unsigned int count = MAX_PROCS;
    nvmlReturn_t r;

    *n = 0;
    if (!nv.procs)
        return NVML_ERROR_FUNCTION_NOT_FOUND;
    r = nv.procs(d, &count, all);
    if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
        /* not the guest's buffer that is short, but ours: more than any GPU runs */
        vgpu_log(VGPU_LOG_WARN, "more than %d processes on a GPU: not listed", MAX_PROCS);
        return NVML_ERROR_UNKNOWN;
    }
    if (r != NVML_SUCCESS)
        return r;
    for (unsigned int i = 0; i < count && i < MAX_PROCS; i++) {
        uint32_t pid;

        if (all[i].pid == (unsigned int)getpid())
            pid = cur->client_pid;
        else if (all[i].pid > INT32_MAX || !vgpu_sched_vm_peer((int32_t)all[i].pid, &pid))
            continue;
        mine[*n] = all[i];
        mine[(*n)++].pid = pid;
    }
    return NVML_SUCCESS;
}

static int h_procs(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    ProtobufCAllocator alloc = { vgpu_arena_pb_alloc, vgpu_arena_pb_keep, c->arena };
    Vgpu__Nvmlm__NvmlProcsArgs *a = vgpu__nvmlm__nvml_procs_args__unpack(&alloc, c->args_len, c->args);
    Vgpu__Nvmlm__NvmlProcsRet ret = VGPU__NVMLM__NVML_PROCS_RET__INIT;
    static nvmlProcessInfo_t mine[MAX_PROCS];
    static Vgpu__Nvmlm__NvmlProcess procs[MAX_PROCS];
    static Vgpu__Nvmlm__NvmlProcess *procp[MAX_PROCS];
    void *d = NULL;
    unsigned int n = 0;
    nvmlReturn_t r;

    vgpu_nvml_enter(s);
    if (!a)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (!inited())
        return NVML_ERROR_UNINITIALIZED;
    if (!a->device || nvml_handle_in(s, 0, a->device, &d))
        return NVML_ERROR_INVALID_ARGUMENT;
    r = vm_processes(d, mine, &n);
    if (r != NVML_SUCCESS)
        return r;
    ret.count = n;
    if (n > a->capacity) {
        r = NVML_ERROR_INSUFFICIENT_SIZE;        /* the count alone, as NVML answers */
    } else {
        for (unsigned int i = 0; i < n; i++) {
            vgpu__nvmlm__nvml_process__init(&procs[i]);
            procs[i].pid = mine[i].pid;
            procs[i].used_memory = mine[i].usedGpuMemory;
            procs[i].gpu_instance = mine[i].gpuInstanceId;
            procs[i].compute_instance = mine[i].computeInstanceId;
            procp[i] = &procs[i];
        }
        ret.n_procs = n;
        ret.procs = procp;
    }
    if (vgpu_call_pack(c->arena, &ret.base, &c->ret, &c->ret_len))
        return NVML_ERROR_MEMORY;
    return r;
}

vgpu_manual_fn vgpu_nvml_manual_find(uint32_t id)
{
    switch (id) {
    case VGPU_NVML_ID_nvmlDeviceGetComputeRunningProcesses:
    case VGPU_NVML_ID_nvmlDeviceGetComputeRunningProcesses_v2:
    case VGPU_NVML_ID_nvmlDeviceGetComputeRunningProcesses_v3:
        return h_procs;
    default:
        return NULL;
    }
}
