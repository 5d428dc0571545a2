/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUDA IPC between processes, as far as a fake can: device memory here is
 * whole pages of the process's own (vgpu_fake_dev_map), and
 * cuIpcGetMemHandle moves an allocation's pages, contents kept, onto a
 * file (in $VGPU_FAKE_IPC_DIR, else /dev/shm) mapped shared at the same
 * address, so another process that opens the handle maps the same bytes:
 * what one writes the other reads.  The handle holds a magic, the
 * exporter's pid, a number and the size.  Opening a handle of this very
 * process is refused (CUDA_ERROR_INVALID_CONTEXT), as by the driver.  An
 * exported allocation freed unlinks its file; an opened one is closed by
 * cuIpcCloseMemHandle.
 *
 * Events: the fake's work is done when issued, so an event opened from a
 * handle is a new event with nothing pending; the handle names the
 * exporter and its event, and needs CU_EVENT_INTERPROCESS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fakecuda_internal.h"

#define MAGIC_MEM 0x4d4350494b414646ull   /* "FFAKIPCM" */
#define MAGIC_EVENT 0x454350494b414646ull /* "FFAKIPCE" */

struct ipc_handle {                /* inside the 64 bytes */
    uint64_t magic;
    int64_t pid;
    uint64_t n;
    uint64_t size;
};
_Static_assert(sizeof(struct ipc_handle) <= sizeof(CUipcMemHandle), "fits a handle");

struct shared {                    /* exported (file named) or opened (file NULL) */
    void *base;
    size_t bytes;
    char path[256];
    bool opened;
    struct shared *next;
};

static struct shared *shared;
static uint64_t exports;

static size_t pages(size_t size)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);

    return size > SIZE_MAX - pg ? 0 : (size + pg - 1) / pg * pg;
}

void *vgpu_fake_dev_map(size_t size)
{
    size_t bytes = pages(size);
    void *p;

    if (!bytes)
        return NULL;
    p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void vgpu_fake_dev_unmap(void *p, size_t size)
{
    for (struct shared **s = &shared; *s; s = &(*s)->next)
        if ((*s)->base == p && !(*s)->opened) {
            struct shared *x = *s;

            unlink(x->path);
            *s = x->next;
            free(x);
            break;
        }
    munmap(p, pages(size));
}

static const char *dir(void)
{
    const char *d = getenv("VGPU_FAKE_IPC_DIR");

    return d && *d ? d : "/dev/shm";
}

static void path_of(char *out, size_t len, int64_t pid, uint64_t n)
{
    snprintf(out, len, "%s/vgpu-fake-ipc.%lld.%llu", dir(), (long long)pid, (unsigned long long)n);
}

/* The allocation's pages onto a file mapped shared at the same address, contents kept. */
static CUresult share(struct vgpu_fake_alloc *a, struct shared **out)
{
    size_t bytes = pages(a->size);
    struct shared *s;
    void *copy, *m;
    int fd;

    for (s = shared; s; s = s->next)
        if (s->base == (void *)a->base && !s->opened) {
            *out = s;
            return CUDA_SUCCESS;
        }
    if (!(s = calloc(1, sizeof(*s))) || !(copy = malloc(bytes))) {
        free(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    s->base = (void *)a->base;
    s->bytes = bytes;
    path_of(s->path, sizeof(s->path), getpid(), ++exports);
    fd = open(s->path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) {
        /* our pid, a number this process never used: left by a process killed long ago */
        unlink(s->path);
        fd = open(s->path, O_RDWR | O_CREAT | O_EXCL, 0600);
    }
    if (fd < 0 || ftruncate(fd, (off_t)bytes)) {
        vgpu_fake_cu_refuse(CUDA_ERROR_OPERATING_SYSTEM, "cuIpcGetMemHandle", "cannot make %s",
                            s->path);
        if (fd >= 0) {
            close(fd);
            unlink(s->path);
        }
        free(copy);
        free(s);
        return CUDA_ERROR_OPERATING_SYSTEM;
    }
    memcpy(copy, s->base, bytes);
    m = mmap(s->base, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        unlink(s->path);
        free(copy);
        free(s);
        return CUDA_ERROR_OPERATING_SYSTEM;
    }
    memcpy(s->base, copy, bytes);
    free(copy);
    s->next = shared;
    shared = s;
    *out = s;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
    struct vgpu_fake_alloc *a = vgpu_fake_alloc_at((void *)(uintptr_t)dptr);
    struct ipc_handle h = { .magic = MAGIC_MEM, .pid = getpid() };
    struct shared *s = NULL;
    CUresult r;

    if (!pHandle || !a || !a->freeable || a->managed)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuIpcGetMemHandle",
                                   "%#llx is not the base of a device allocation",
                                   (unsigned long long)dptr);
    if ((r = share(a, &s)))
        return r;
    sscanf(strrchr(s->path, '.') + 1, "%llu", (unsigned long long *)&h.n);
    h.size = a->size;
    memset(pHandle, 0, sizeof(*pHandle));
    memcpy(pHandle->reserved, &h, sizeof(h));
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle,
                                           unsigned int Flags)
{
    struct ipc_handle h;
    struct shared *s;
    char path[256];
    void *m;
    int fd;

    memcpy(&h, handle.reserved, sizeof(h));
    if (!pdptr || h.magic != MAGIC_MEM || (Flags & ~CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuIpcOpenMemHandle", "not a handle");
    if (h.pid == getpid())
        return CUDA_ERROR_INVALID_CONTEXT;
    path_of(path, sizeof(path), h.pid, h.n);
    if ((fd = open(path, O_RDWR)) < 0)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuIpcOpenMemHandle",
                                   "no exported allocation %s", path);
    m = mmap(NULL, pages(h.size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED || !(s = calloc(1, sizeof(*s)))) {
        if (m != MAP_FAILED)
            munmap(m, pages(h.size));
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (vgpu_fake_alloc_add(m, h.size, false)) {
        munmap(m, pages(h.size));
        free(s);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *s = (struct shared){ .base = m, .bytes = pages(h.size), .opened = true, .next = shared };
    shared = s;
    *pdptr = (CUdeviceptr)(uintptr_t)m;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    for (struct shared **p = &shared; *p; p = &(*p)->next)
        if ((*p)->base == (void *)(uintptr_t)dptr && (*p)->opened) {
            struct shared *s = *p;
            struct vgpu_fake_alloc *a = vgpu_fake_alloc_at(s->base);

            if (a)
                vgpu_fake_alloc_remove(a);
            munmap(s->base, s->bytes);
            *p = s->next;
            free(s);
            return CUDA_SUCCESS;
        }
    return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuIpcCloseMemHandle",
                               "%#llx was not opened from a handle", (unsigned long long)dptr);
}

FAKE_EXPORT CUresult cuIpcGetEventHandle(CUipcEventHandle *pHandle, CUevent event)
{
    struct ipc_handle h = { .magic = MAGIC_EVENT, .pid = getpid(),
                            .n = (uint64_t)(uintptr_t)event };
    struct vgpu_fake_event *e = vgpu_fake_event_find("cuIpcGetEventHandle", (cudaEvent_t)event);

    if (!pHandle || !e || !(e->flags & CU_EVENT_INTERPROCESS))
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuIpcGetEventHandle",
                                   "%p is not an interprocess event", (void *)event);
    memset(pHandle, 0, sizeof(*pHandle));
    memcpy(pHandle->reserved, &h, sizeof(h));
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuIpcOpenEventHandle(CUevent *phEvent, CUipcEventHandle handle)
{
    struct ipc_handle h;

    memcpy(&h, handle.reserved, sizeof(h));
    if (!phEvent || h.magic != MAGIC_EVENT)
        return vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuIpcOpenEventHandle", "not a handle");
    if (h.pid == getpid())
        return CUDA_ERROR_INVALID_CONTEXT;
    return cuEventCreate(phEvent, CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS);
}
