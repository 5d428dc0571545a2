/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-smi: what a guest (or a host-direct client) can see of its GPU
 * through vgpu, in the spirit of nvidia-smi.
 *
 *   - the vgpu-stub devices of this machine (PCI 1af4:1111), read from their
 *     read-only registers through sysfs: the identity the server gave the
 *     VM (vm id, pool, priority), whether the device is linked to the
 *     server now and how often it connected, the register protocol and
 *     capabilities, the shared BAR's size;
 *   - where CUDA programs here go (VGPU_SERVER, or the device), and whether
 *     vgpu-server is reachable from here and its release (vgpu's NVML's
 *     own export, vgpu_nvml_server_version);
 *   - the GPUs through libnvidia-ml.so.1 as programs load it (vgpu's, from
 *     its ld.so.conf.d entry or LD_LIBRARY_PATH): name, UUID, bus id,
 *     memory used and total as this VM may use them, utilization,
 *     temperature, power, and this VM's processes; the driver's and CUDA's
 *     versions.  It says whether that library is vgpu's (its ELF note) or
 *     another one.
 *
 * Only reads: no register is written, nothing on the server changes.
 *   vgpu-smi [-l SECONDS] [--no-gpu] [--help] [--version]
 */
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nvml_api.h"
#include "vgpu/stub_abi.h"
#include "vgpu/version.h"

#define SYSFS_PCI "/sys/bus/pci/devices"

static int read_hex(const char *dir, const char *file, unsigned long long *out)
{
    char path[600], buf[64];
    FILE *f;
    bool ok;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (!(f = fopen(path, "r")))
        return -1;
    ok = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    return ok && sscanf(buf, "%llx", out) == 1 ? 0 : -1;
}

/* Size of BAR n from sysfs's resource file (0: none). */
static unsigned long long bar_size(const char *dir, int n)
{
    char path[600], line[256];
    unsigned long long start, end, flags;
    FILE *f;
    int i = 0;

    snprintf(path, sizeof(path), "%s/resource", dir);
    if (!(f = fopen(path, "r")))
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (i++ == n) {
            fclose(f);
            if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) == 3 && end > start)
                return end - start + 1;
            return 0;
        }
    }
    fclose(f);
    return 0;
}

static const char *priority_name(uint32_t p)
{
    return p == 0 ? "low" : p == 1 ? "medium" : p == 2 ? "high" : "?";
}

/* One device: its registers, read through a read-only mapping of BAR0. */
static void show_device(const char *dir, const char *bdf)
{
    char path[600];
    unsigned long long shared = bar_size(dir, 2);
    volatile const uint32_t *r;
    uint32_t ver, caps, pool;
    int fd;

    printf("vgpu-stub %s", bdf);
    snprintf(path, sizeof(path), "%s/resource0", dir);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        printf(": %s cannot be read (%s): run as root or as a member of the group the "
               "device's udev rule names (vgpu)\n", path, strerror(errno));
        return;
    }
    r = mmap(NULL, VGPU_STUB_BAR0_SIZE, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (r == MAP_FAILED) {
        printf(": BAR0 cannot be mapped (%s)\n", strerror(errno));
        return;
    }
    ver = r[VGPU_STUB_R_PROTOCOL_VER / 4];
    caps = r[VGPU_STUB_R_CAPABILITIES / 4];
    if (ver == 0xffffffffu) {
        printf(": memory decoding is off (no CUDA program has opened it yet, or write 1 to "
               "%s/enable)\n", dir);
        munmap((void *)r, VGPU_STUB_BAR0_SIZE);
        return;
    }
    pool = r[VGPU_STUB_R_POOL_ID / 4];
    printf("\n  vm %u, pool %c, priority %s\n", r[VGPU_STUB_R_VM_ID / 4],
           pool >= 0x20 && pool < 0x7f ? (char)pool : '?',
           priority_name(r[VGPU_STUB_R_PRIORITY / 4]));
    if (caps & VGPU_STUB_CAP_LINK_STATE)
        printf("  link to vgpu-server: %s (connected %u time%s)\n",
               r[VGPU_STUB_R_LINK_STATE / 4] ? "up" : "down", r[VGPU_STUB_R_LINK_EPOCH / 4],
               r[VGPU_STUB_R_LINK_EPOCH / 4] == 1 ? "" : "s");
    else
        printf("  link to vgpu-server: not reported by this device (connected %u times)\n",
               r[VGPU_STUB_R_LINK_EPOCH / 4]);
    printf("  register protocol %u, capabilities %#x, frames up to %u bytes\n", ver, caps,
           r[VGPU_STUB_R_MAX_FRAME / 4]);
    if ((caps & VGPU_STUB_CAP_SHARED) && shared)
        printf("  shared BAR %llu MiB (queue pairs and bulk data)\n", shared >> 20);
    else
        printf("  no shared BAR: every call and copy goes through the 1 KB window\n");
    munmap((void *)r, VGPU_STUB_BAR0_SIZE);
}

static int show_devices(void)
{
    DIR *d = opendir(SYSFS_PCI);
    struct dirent *e;
    int n = 0;

    if (!d)
        return 0;
    while ((e = readdir(d))) {
        char dir[512];
        unsigned long long vendor, device;

        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, sizeof(dir), "%s/%s", SYSFS_PCI, e->d_name);
        if (read_hex(dir, "vendor", &vendor) || read_hex(dir, "device", &device) ||
            vendor != VGPU_STUB_PCI_VENDOR || device != VGPU_STUB_PCI_DEVICE)
            continue;
        show_device(dir, e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

/* ---- the GPUs, through NVML ---- */

static void *nvml;

#define FN(name) ((__typeof__(&name))(void (*)(void))dlsym(nvml, #name))
/* name(args...), or NVML_ERROR_FUNCTION_NOT_FOUND from an NVML without it (another, older one) */
#define NV(name, ...) (FN(name) ? FN(name)(__VA_ARGS__) : NVML_ERROR_FUNCTION_NOT_FOUND)

static bool is_vgpu;

/* The loaded libnvidia-ml.so.1 carries vgpu's client note (shim/client/instance.c). */
static int find_note(struct dl_phdr_info *info, size_t size, void *arg)
{
    const char *want = arg;

    (void)size;
    if (!info->dlpi_name || !strstr(info->dlpi_name, want))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        const char *p, *end;

        if (ph->p_type != PT_NOTE)
            continue;
        p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)(const void *)p;
            const char *name = p + sizeof(*n);

            if (n->n_namesz == 5 && name + 5 <= end && memcmp(name, "vgpu", 5) == 0)
                is_vgpu = true;
            p = name + ((n->n_namesz + 3) & ~3u) + ((n->n_descsz + 3) & ~3u);
        }
    }
    return 0;
}

static void show_gpus(void)
{
    char ver[96] = "?", path[512] = "?";
    unsigned int count = 0;
    int cuda = 0;
    nvmlReturn_t st;
    Dl_info di;

    nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!nvml) {
        printf("GPUs: libnvidia-ml.so.1 not found (install vgpu-guest, or set LD_LIBRARY_PATH to "
               "vgpu's library directory)\n");
        return;
    }
    if (dladdr((void *)(uintptr_t)FN(nvmlInit_v2), &di) && di.dli_fname)
        snprintf(path, sizeof(path), "%s", di.dli_fname);
    dl_iterate_phdr(find_note, "libnvidia-ml.so");
    printf("NVML: %s (%s)\n", path, is_vgpu ? "vgpu's" : "not vgpu's: this is another NVML");
    if (is_vgpu) {
        /* vgpu's own export: connects, so an unreachable server is said here (and why, on stderr) */
        nvmlReturn_t (*server_version)(char *, unsigned int) =
            (nvmlReturn_t (*)(char *, unsigned int))(void (*)(void))dlsym(nvml, "vgpu_nvml_server_version");
        char sv[64];

        fflush(stdout);        /* the library's reason, on stderr, comes after what is said so far */
        if (!server_version || (st = server_version(sv, sizeof(sv))) == NVML_ERROR_FUNCTION_NOT_FOUND)
            printf("vgpu-server: not asked (this vgpu NVML is of a release without the question)\n");
        else if (st == NVML_SUCCESS)
            printf("vgpu-server: reachable, %s\n", sv);
        else
            printf("vgpu-server: not reachable (%s; the library's line on stderr says why)\n",
                   FN(nvmlErrorString) ? FN(nvmlErrorString)(st) : "?");
    }
    if ((st = FN(nvmlInit_v2) ? FN(nvmlInit_v2)() : NVML_ERROR_FUNCTION_NOT_FOUND) != NVML_SUCCESS) {
        printf("GPUs: nvmlInit failed: %s\n", FN(nvmlErrorString) ? FN(nvmlErrorString)(st) : "?");
        return;
    }
    NV(nvmlSystemGetDriverVersion, ver, sizeof(ver));
    NV(nvmlSystemGetCudaDriverVersion_v2, &cuda);
    printf("driver %s, CUDA %d.%d (the server's)\n", ver, cuda / 1000, cuda % 1000 / 10);
    NV(nvmlDeviceGetCount_v2, &count);
    for (unsigned int i = 0; i < count; i++) {
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = "?", uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = "?";
        nvmlDevice_t d;
        nvmlPciInfo_t pci = { 0 };
        nvmlMemory_t m = { 0 };
        nvmlUtilization_t u = { 0 };
        nvmlProcessInfo_t procs[64];
        unsigned int temp = 0, power = 0, np = 64;

        if (NV(nvmlDeviceGetHandleByIndex_v2, i, &d) != NVML_SUCCESS)
            continue;
        NV(nvmlDeviceGetName, d, name, sizeof(name));
        NV(nvmlDeviceGetUUID, d, uuid, sizeof(uuid));
        NV(nvmlDeviceGetPciInfo_v3, d, &pci);
        printf("GPU %u: %s\n  %s, bus %s\n", i, name, uuid, pci.busId);
        if (NV(nvmlDeviceGetMemoryInfo, d, &m) == NVML_SUCCESS)
            printf("  memory %llu MiB used of %llu MiB%s\n", m.used >> 20, m.total >> 20,
                   is_vgpu ? " (this VM's share)" : "");
        if (NV(nvmlDeviceGetUtilizationRates, d, &u) == NVML_SUCCESS)
            printf("  utilization %u%% (GPU), %u%% (memory)\n", u.gpu, u.memory);
        if (NV(nvmlDeviceGetTemperature, d, NVML_TEMPERATURE_GPU, &temp) == NVML_SUCCESS &&
            NV(nvmlDeviceGetPowerUsage, d, &power) == NVML_SUCCESS)
            printf("  %u C, %u W\n", temp, power / 1000);
        if (NV(nvmlDeviceGetComputeRunningProcesses_v3, d, &np, procs) == NVML_SUCCESS) {
            printf("  %u process%s%s\n", np, np == 1 ? "" : "es",
                   is_vgpu ? " of this VM (pids as the server sees them)" : "");
            for (unsigned int k = 0; k < np && k < 64; k++)
                printf("    pid %u, %llu MiB\n", procs[k].pid, procs[k].usedGpuMemory >> 20);
        }
    }
    if (FN(nvmlShutdown))
        FN(nvmlShutdown)();
}

static void usage(FILE *to)
{
    fprintf(to, "usage: vgpu-smi [-l SECONDS] [--no-gpu]\n"
                "  what this machine sees of its GPU through vgpu: the vgpu-stub devices\n"
                "  (identity, link, shared BAR) and the GPUs through libnvidia-ml.so.1\n"
                "  -l, --loop SECONDS   print again every SECONDS until interrupted\n"
                "  --no-gpu             the devices only (no NVML, no call to the server)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "loop", required_argument, NULL, 'l' }, { "no-gpu", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },       { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *server = getenv("VGPU_SERVER");
    bool gpu = true;
    long loop = 0;
    int c;

    while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': {
            char *end;

            loop = strtol(optarg, &end, 10);
            if (*end || loop < 1 || loop > 86400) {
                fprintf(stderr, "vgpu-smi: -l takes seconds between 1 and 86400, not '%s'\n", optarg);
                return 2;
            }
            break;
        }
        case 'n':
            gpu = false;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("vgpu-smi %s\n", VGPU_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    for (;;) {
        int n;

        printf("vgpu-smi %s\n", VGPU_VERSION);
        n = show_devices();
        if (!n)
            printf("no vgpu-stub device in this machine\n");
        if (server && *server)
            printf("CUDA programs here use vgpu-server at %s (VGPU_SERVER)\n", server);
        else if (n)
            printf("CUDA programs here use vgpu-server through the vgpu-stub device\n");
        else
            printf("CUDA programs here have no vgpu-server: set VGPU_SERVER=unix:PATH, or start "
                   "the VM with a vgpu-stub device\n");
        if (gpu)
            show_gpus();
        if (!loop)
            return 0;
        fflush(stdout);
        sleep((unsigned)loop);
        printf("\n");
    }
}
