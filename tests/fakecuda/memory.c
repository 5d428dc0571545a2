/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device memory is host memory of this process: cudaMalloc is a 256-byte
 * aligned allocation (recorded with the size asked for, never zeroed, at
 * most VGPU_FAKE_TOTAL_MEM in all; cudaMallocPitch and cudaMalloc3D pitch
 * rows to 512 bytes), so copies and memsets are memmove and memset once
 * every device range has been found whole inside one allocation or
 * variable.  Host sides are the caller's and are not checked.  Everything
 * is synchronous; the asynchronous forms check their stream and do the same.
 *
 * The allocation, copy and memset helpers (vgpu_fake_malloc, _free,
 * _copy2d, _memset2d) serve the driver's cuMem* calls too (driver_mem.c).
 *
 * Status for a device range the fake did not hand out, or a symbol copy
 * running past its variable: cudaErrorInvalidValue (logged as refused); cudaFree of anything but the start of an allocation:
 * cudaErrorInvalidValue; over the total: cudaErrorMemoryAllocation.
 *
 * A driver that dies under a call (tests/faults): with VGPU_FAKE_DIE_ON_MEMSET=N
 * in its environment, a cudaMemset of exactly N bytes writes through a null
 * pointer, as a driver bug would, and the process ends with SIGSEGV.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fakecuda_internal.h"

#define ALIGN 256

static size_t round_up(size_t n, size_t a)
{
    return n > SIZE_MAX - (a - 1) ? 0 : (n + a - 1) / a * a;
}

cudaError_t vgpu_fake_malloc(void **p, size_t size)
{
    size_t bytes = round_up(size, ALIGN);
    void *m = NULL;

    if (!p)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *p = NULL;
    if (size == 0)
        return cudaSuccess;
    if (bytes == 0 || size > VGPU_FAKE_TOTAL_MEM - vgpu_fake_mem_used())
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    if (!(m = vgpu_fake_dev_map(bytes)))
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    if (vgpu_fake_alloc_add(m, size, true)) {
        vgpu_fake_dev_unmap(m, bytes);
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    }
    *p = m;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaMalloc(void **devPtr, size_t size)
{
    vgpu_fake_rt_ctx();
    if (vgpu_fake_capture_unsafe("cudaMalloc"))
        return vgpu_fake_status(cudaErrorStreamCaptureUnsupported);
    return vgpu_fake_malloc(devPtr, size);
}

FAKE_EXPORT cudaError_t cudaMallocAsync(void **devPtr, size_t size, cudaStream_t hStream)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaMallocAsync", hStream))
        return cudaErrorInvalidResourceHandle;
    if (!devPtr)
        return vgpu_fake_status(cudaErrorInvalidValue);
    return vgpu_fake_status(
        (cudaError_t)vgpu_fake_alloc_async("cudaMallocAsync", devPtr, size, (CUstream)hStream));
}

FAKE_EXPORT cudaError_t cudaMallocPitch(void **devPtr, size_t *pitch, size_t width, size_t height)
{
    vgpu_fake_rt_ctx();
    size_t p = round_up(width ? width : 1, 512);

    if (!pitch || p == 0 || (height && p > SIZE_MAX / height))
        return vgpu_fake_status(cudaErrorInvalidValue);
    *pitch = p;
    return vgpu_fake_malloc(devPtr, p * height);
}

FAKE_EXPORT cudaError_t cudaMalloc3D(struct cudaPitchedPtr *pitchedDevPtr, struct cudaExtent extent)
{
    vgpu_fake_rt_ctx();
    size_t p = round_up(extent.width ? extent.width : 1, 512), rows = extent.height * extent.depth;
    cudaError_t st;

    if (!pitchedDevPtr || p == 0 || (extent.depth && rows / extent.depth != extent.height) ||
        (rows && p > SIZE_MAX / rows))
        return vgpu_fake_status(cudaErrorInvalidValue);
    st = vgpu_fake_malloc(&pitchedDevPtr->ptr, p * rows);
    pitchedDevPtr->pitch = p;
    pitchedDevPtr->xsize = extent.width;
    pitchedDevPtr->ysize = extent.height;
    return st;
}

cudaError_t vgpu_fake_free(const char *fn, void *p)
{
    struct vgpu_fake_alloc *a;

    if (!p)
        return cudaSuccess;
    if (vgpu_fake_graph_free(p))
        return cudaSuccess;     /* a graph allocation: no longer in use, its memory kept */
    a = vgpu_fake_alloc_at(p);
    if (!a || !a->freeable)
        return vgpu_fake_refuse(cudaErrorInvalidValue, fn, "%p is not an allocation of this process", p);
    {
        bool managed = a->managed;
        size_t size = a->size;

        vgpu_fake_alloc_remove(a);
        vgpu_fake_pool_freed(p);
        if (managed)
            vgpu_fake_managed_unmap(p, size);
        else
            vgpu_fake_dev_unmap(p, size);
    }
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaFree(void *devPtr)
{
    vgpu_fake_rt_ctx();
    return vgpu_fake_free("cudaFree", devPtr);
}

FAKE_EXPORT cudaError_t cudaFreeAsync(void *devPtr, cudaStream_t hStream)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaFreeAsync", hStream))
        return cudaErrorInvalidResourceHandle;
    return vgpu_fake_status(
        (cudaError_t)vgpu_fake_free_async("cudaFreeAsync", devPtr, (CUstream)hStream));
}

FAKE_EXPORT cudaError_t cudaMemGetInfo(size_t *free, size_t *total)
{
    vgpu_fake_rt_ctx();
    if (!free || !total)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *total = VGPU_FAKE_TOTAL_MEM;
    *free = VGPU_FAKE_TOTAL_MEM - vgpu_fake_mem_used();
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes,
                                                 const void *ptr)
{
    vgpu_fake_rt_ctx();
    if (!attributes)
        return vgpu_fake_status(cudaErrorInvalidValue);
    memset(attributes, 0, sizeof(*attributes));
    if (ptr && vgpu_fake_is_dev(ptr, 1)) {
        struct vgpu_fake_alloc *a = vgpu_fake_alloc_of(ptr);

        attributes->type = a && a->managed ? cudaMemoryTypeManaged : cudaMemoryTypeDevice;
        attributes->device = 0;
        attributes->devicePointer = (void *)ptr;
        if (a && a->managed)
            attributes->hostPointer = (void *)ptr;
    } else {
        attributes->type = cudaMemoryTypeUnregistered;
        attributes->device = -2;
        attributes->hostPointer = (void *)ptr;
    }
    return cudaSuccess;
}

/* ---- copies ---- */

cudaError_t vgpu_fake_copy2d(const char *fn, void *dst, size_t dpitch, const void *src,
                             size_t spitch, size_t width, size_t height, enum cudaMemcpyKind kind)
{
    bool ddev, sdev;
    size_t dspan, sspan;

    switch (kind) {
    case cudaMemcpyHostToHost: ddev = false; sdev = false; break;
    case cudaMemcpyHostToDevice: ddev = true; sdev = false; break;
    case cudaMemcpyDeviceToHost: ddev = false; sdev = true; break;
    case cudaMemcpyDeviceToDevice: ddev = true; sdev = true; break;
    case cudaMemcpyDefault:
        ddev = vgpu_fake_is_dev(dst, 0);
        sdev = vgpu_fake_is_dev(src, 0);
        break;
    default:
        return vgpu_fake_status(cudaErrorInvalidMemcpyDirection);
    }
    if (width == 0 || height == 0)
        return cudaSuccess;
    if (width > dpitch || width > spitch)
        return vgpu_fake_status(cudaErrorInvalidPitchValue);
    if (height - 1 > (SIZE_MAX - width) / (dpitch > spitch ? dpitch : spitch))
        return vgpu_fake_status(cudaErrorInvalidValue);
    dspan = (height - 1) * dpitch + width;
    sspan = (height - 1) * spitch + width;
    if (!dst || !src || (ddev && !vgpu_fake_dev_ok(fn, dst, dspan)) ||
        (sdev && !vgpu_fake_dev_ok(fn, src, sspan)))
        return vgpu_fake_status(cudaErrorInvalidValue);
    for (size_t y = 0; y < height; y++)
        memmove((char *)dst + y * dpitch, (const char *)src + y * spitch, width);
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    vgpu_fake_rt_ctx();
    if (vgpu_fake_capture_unsafe("cudaMemcpy"))
        return vgpu_fake_status(cudaErrorStreamCaptureUnsupported);
    vgpu_fake_devout_flush();  /* a blocking copy synchronizes */
    return vgpu_fake_copy2d("cudaMemcpy", dst, count, src, count, count, 1, kind);
}

FAKE_EXPORT cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count,
                                        enum cudaMemcpyKind kind, cudaStream_t stream)
{
    CUresult r;

    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaMemcpyAsync", stream))
        return cudaErrorInvalidResourceHandle;
    if (vgpu_fake_capture_copy("cudaMemcpyAsync", dst, count, src, count, count, 1, kind, stream,
                               &r))
        return vgpu_fake_status((cudaError_t)r);
    return vgpu_fake_copy2d("cudaMemcpyAsync", dst, count, src, count, count, 1, kind);
}

FAKE_EXPORT cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch,
                                     size_t width, size_t height, enum cudaMemcpyKind kind)
{
    vgpu_fake_rt_ctx();
    if (vgpu_fake_capture_unsafe("cudaMemcpy2D"))
        return vgpu_fake_status(cudaErrorStreamCaptureUnsupported);
    return vgpu_fake_copy2d("cudaMemcpy2D", dst, dpitch, src, spitch, width, height, kind);
}

FAKE_EXPORT cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                                          size_t width, size_t height, enum cudaMemcpyKind kind,
                                          cudaStream_t stream)
{
    CUresult r;

    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaMemcpy2DAsync", stream))
        return cudaErrorInvalidResourceHandle;
    if (vgpu_fake_capture_copy("cudaMemcpy2DAsync", dst, dpitch, src, spitch, width, height, kind,
                               stream, &r))
        return vgpu_fake_status((cudaError_t)r);
    return vgpu_fake_copy2d("cudaMemcpy2DAsync", dst, dpitch, src, spitch, width, height, kind);
}

FAKE_EXPORT cudaError_t cudaMemcpyPeer(void *dst, int dstDevice, const void *src, int srcDevice,
                                       size_t count)
{
    vgpu_fake_rt_ctx();
    if (dstDevice != 0 || srcDevice != 0)
        return vgpu_fake_status(cudaErrorInvalidDevice);
    return vgpu_fake_copy2d("cudaMemcpyPeer", dst, count, src, count, count, 1,
                            cudaMemcpyDeviceToDevice);
}

FAKE_EXPORT cudaError_t cudaMemcpyPeerAsync(void *dst, int dstDevice, const void *src, int srcDevice,
                                            size_t count, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaMemcpyPeerAsync", stream))
        return cudaErrorInvalidResourceHandle;
    return cudaMemcpyPeer(dst, dstDevice, src, srcDevice, count);
}

/* ---- memset ---- */

/* The driver's cuMemsetD16/D32 want 2- and 4-byte elements; the runtime sets bytes. */
cudaError_t vgpu_fake_memset2d(const char *fn, void *p, size_t pitch, uint32_t value, size_t elem,
                               size_t width, size_t height, cudaStream_t stream)
{
    size_t bytes;

    if (!vgpu_fake_stream_ok(fn, stream))
        return cudaErrorInvalidResourceHandle;
    if (width == 0 || height == 0)
        return cudaSuccess;
    if (width > SIZE_MAX / elem)
        return vgpu_fake_status(cudaErrorInvalidValue);
    bytes = width * elem;
    if (bytes > pitch || height - 1 > (SIZE_MAX - bytes) / pitch)
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (!vgpu_fake_dev_ok(fn, p, (height - 1) * pitch + bytes))
        return cudaErrorInvalidValue;
    for (size_t y = 0; y < height; y++) {
        char *row = (char *)p + y * pitch;

        if (elem == 1) {
            memset(row, (int)(value & 0xff), bytes);
            continue;
        }
        for (size_t x = 0; x < width; x++) {
            uint16_t v16 = (uint16_t)value;

            memcpy(row + x * elem, elem == 2 ? (const void *)&v16 : (const void *)&value, elem);
        }
    }
    return cudaSuccess;
}

static cudaError_t memset2d(const char *fn, void *p, size_t pitch, int value, size_t width,
                           size_t height, cudaStream_t stream)
{
    return vgpu_fake_memset2d(fn, p, pitch, (uint32_t)value & 0xff, 1, width, height, stream);
}

static void die_on_memset(size_t count)
{
    const char *v = getenv("VGPU_FAKE_DIE_ON_MEMSET");

    if (v && strtoull(v, NULL, 10) == count)
        *(volatile int *)(uintptr_t)0 = 1;
}

FAKE_EXPORT cudaError_t cudaMemset(void *devPtr, int value, size_t count)
{
    vgpu_fake_rt_ctx();
    die_on_memset(count);
    return memset2d("cudaMemset", devPtr, count, value, count, 1, NULL);
}

FAKE_EXPORT cudaError_t cudaMemset_ptds(void *devPtr, int value, size_t count)
{
    vgpu_fake_rt_ctx();
    return memset2d("cudaMemset_ptds", devPtr, count, value, count, 1, cudaStreamPerThread);
}

FAKE_EXPORT cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return memset2d("cudaMemsetAsync", devPtr, count, value, count, 1, stream);
}

FAKE_EXPORT cudaError_t cudaMemsetAsync_ptsz(void *devPtr, int value, size_t count, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return memset2d("cudaMemsetAsync_ptsz", devPtr, count, value, count, 1, stream);
}

FAKE_EXPORT cudaError_t cudaMemset2D(void *devPtr, size_t pitch, int value, size_t width, size_t height)
{
    vgpu_fake_rt_ctx();
    return memset2d("cudaMemset2D", devPtr, pitch, value, width, height, NULL);
}

FAKE_EXPORT cudaError_t cudaMemset2D_ptds(void *devPtr, size_t pitch, int value, size_t width,
                                          size_t height)
{
    vgpu_fake_rt_ctx();
    return memset2d("cudaMemset2D_ptds", devPtr, pitch, value, width, height, cudaStreamPerThread);
}

FAKE_EXPORT cudaError_t cudaMemset2DAsync(void *devPtr, size_t pitch, int value, size_t width,
                                          size_t height, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return memset2d("cudaMemset2DAsync", devPtr, pitch, value, width, height, stream);
}

FAKE_EXPORT cudaError_t cudaMemset2DAsync_ptsz(void *devPtr, size_t pitch, int value, size_t width,
                                               size_t height, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return memset2d("cudaMemset2DAsync_ptsz", devPtr, pitch, value, width, height, stream);
}

/* ---- variables (symbols): registered in exec.c, their memory is device memory ---- */

FAKE_EXPORT cudaError_t cudaGetSymbolAddress(void **devPtr, const void *symbol)
{
    vgpu_fake_rt_ctx();
    struct vgpu_fake_fn *v = vgpu_fake_fn_find("cudaGetSymbolAddress", symbol, true);

    if (!v)
        return cudaErrorInvalidSymbol;
    if (!devPtr)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *devPtr = v->dev;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaGetSymbolSize(size_t *size, const void *symbol)
{
    vgpu_fake_rt_ctx();
    struct vgpu_fake_fn *v = vgpu_fake_fn_find("cudaGetSymbolSize", symbol, true);

    if (!v)
        return cudaErrorInvalidSymbol;
    if (!size)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *size = v->size;
    return cudaSuccess;
}

/* to: host or device memory into the variable; else the variable into it. */
static cudaError_t symbol_copy(const char *fn, bool to, const void *symbol, void *mem, size_t count,
                               size_t offset, enum cudaMemcpyKind kind, cudaStream_t stream)
{
    struct vgpu_fake_fn *v = vgpu_fake_fn_find(fn, symbol, true);
    enum cudaMemcpyKind host = to ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    char *var;

    if (!v)
        return cudaErrorInvalidSymbol;
    if (!vgpu_fake_stream_ok(fn, stream))
        return cudaErrorInvalidResourceHandle;
    if (!stream)
        vgpu_fake_devout_flush();  /* a blocking copy synchronizes */
    if (kind != host && kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault)
        return vgpu_fake_status(cudaErrorInvalidMemcpyDirection);
    if (offset > v->size || count > v->size - offset)
        return vgpu_fake_refuse(cudaErrorInvalidValue, fn,
                                "offset %zu + count %zu runs past the variable's %zu bytes",
                                offset, count, v->size);
    var = (char *)v->dev + offset;
    if (kind == cudaMemcpyDefault)
        kind = vgpu_fake_is_dev(mem, 0) ? cudaMemcpyDeviceToDevice : host;
    return to ? vgpu_fake_copy2d(fn, var, count, mem, count, count, 1, kind)
              : vgpu_fake_copy2d(fn, mem, count, var, count, count, 1, kind);
}

FAKE_EXPORT cudaError_t cudaMemcpyToSymbol(const void *symbol, const void *src, size_t count,
                                           size_t offset, enum cudaMemcpyKind kind)
{
    vgpu_fake_rt_ctx();
    return symbol_copy("cudaMemcpyToSymbol", true, symbol, (void *)src, count, offset, kind, NULL);
}

FAKE_EXPORT cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t count,
                                                size_t offset, enum cudaMemcpyKind kind,
                                                cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return symbol_copy("cudaMemcpyToSymbolAsync", true, symbol, (void *)src, count, offset, kind,
                       stream);
}

FAKE_EXPORT cudaError_t cudaMemcpyFromSymbol(void *dst, const void *symbol, size_t count,
                                             size_t offset, enum cudaMemcpyKind kind)
{
    vgpu_fake_rt_ctx();
    return symbol_copy("cudaMemcpyFromSymbol", false, symbol, dst, count, offset, kind, NULL);
}

FAKE_EXPORT cudaError_t cudaMemcpyFromSymbolAsync(void *dst, const void *symbol, size_t count,
                                                  size_t offset, enum cudaMemcpyKind kind,
                                                  cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    return symbol_copy("cudaMemcpyFromSymbolAsync", false, symbol, dst, count, offset, kind, stream);
}

/*
 * Page-locking host memory: nothing to lock here.  Host memory is the
 * process's own, so registration checks its arguments and remembers
 * mapped ranges: their device pointer is the host pointer itself, as with
 * unified addressing (the fake's device memory is host memory too).
 */
#define FAKE_MAPPED_MAX 1024
struct fake_mapped { uintptr_t base; size_t size; };
static struct fake_mapped fake_mapped[FAKE_MAPPED_MAX];
static int fake_nmapped;
static pthread_mutex_t fake_mapped_lock = PTHREAD_MUTEX_INITIALIZER;

FAKE_EXPORT cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
    cudaError_t st = ptr && size ? cudaSuccess : cudaErrorInvalidValue;

    vgpu_fake_rt_ctx();
    if (st == cudaSuccess && (flags & cudaHostRegisterMapped)) {
        pthread_mutex_lock(&fake_mapped_lock);
        if (fake_nmapped < FAKE_MAPPED_MAX)
            fake_mapped[fake_nmapped++] = (struct fake_mapped){ (uintptr_t)ptr, size };
        else
            st = cudaErrorMemoryAllocation;
        pthread_mutex_unlock(&fake_mapped_lock);
    }
    return vgpu_fake_status(st);
}

FAKE_EXPORT cudaError_t cudaHostUnregister(void *ptr)
{
    vgpu_fake_rt_ctx();
    pthread_mutex_lock(&fake_mapped_lock);
    for (int i = 0; i < fake_nmapped; i++)
        if (fake_mapped[i].base == (uintptr_t)ptr) {
            fake_mapped[i] = fake_mapped[--fake_nmapped];
            break;
        }
    pthread_mutex_unlock(&fake_mapped_lock);
    return vgpu_fake_status(ptr ? cudaSuccess : cudaErrorInvalidValue);
}

bool vgpu_fake_is_mapped(const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)p;
    bool in = false;

    pthread_mutex_lock(&fake_mapped_lock);
    for (int i = 0; !in && i < fake_nmapped; i++)
        in = a - fake_mapped[i].base < fake_mapped[i].size &&
             len <= fake_mapped[i].size - (a - fake_mapped[i].base);
    pthread_mutex_unlock(&fake_mapped_lock);
    return in;
}

FAKE_EXPORT cudaError_t cudaHostGetDevicePointer(void **pdev, void *host, unsigned int flags)
{
    cudaError_t st = cudaErrorInvalidValue;

    vgpu_fake_rt_ctx();
    pthread_mutex_lock(&fake_mapped_lock);
    for (int i = 0; pdev && !flags && i < fake_nmapped; i++)
        if ((uintptr_t)host - fake_mapped[i].base < fake_mapped[i].size) {
            *pdev = host;
            st = cudaSuccess;
        }
    pthread_mutex_unlock(&fake_mapped_lock);
    return vgpu_fake_status(st);
}
