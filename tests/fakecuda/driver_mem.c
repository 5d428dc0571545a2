/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver API's memory calls on the fake runtime's memory (memory.c):
 * a CUdeviceptr is the address cudaMalloc would give, in the same table,
 * so runtime and driver allocations, copies and memsets mix freely.
 * Every call needs cuInit and a current context (CUDA_ERROR_NOT_INITIALIZED,
 * CUDA_ERROR_INVALID_CONTEXT).  A device range the fake did not hand out is
 * refused with CUDA_ERROR_INVALID_VALUE (logged "fakecuda: refused"), never
 * touched.  Work is synchronous; the Async forms check their stream.
 *
 * Page-locked host memory (cuMemHostAlloc, cuMemAllocHost) is plain
 * malloc'ed memory, and registration (cuMemHostRegister) only remembers the
 * range: both are kept in a small table here so that cuMemFreeHost,
 * cuMemHostUnregister and cuPointerGetAttribute know them.
 */
#include <stdlib.h>
#include <string.h>

#include "fakecuda_internal.h"

#define DP(d) ((void *)(uintptr_t)(d))
#define CUDP(p) ((CUdeviceptr)(uintptr_t)(p))

/* ---- the host memory table ---- */

struct host_range {
    uintptr_t base;
    size_t size;
    bool registered;            /* cuMemHostRegister'ed, not ours to free */
};

static struct host_range *hosts;
static size_t nhosts, cap_hosts;

static struct host_range *host_holding(const void *p)
{
    uintptr_t a = (uintptr_t)p;

    for (size_t i = 0; i < nhosts; i++)
        if (a >= hosts[i].base && a - hosts[i].base < hosts[i].size)
            return &hosts[i];
    return NULL;
}

static int host_add(void *p, size_t size, bool registered)
{
    if (nhosts == cap_hosts) {
        size_t cap = cap_hosts ? 2 * cap_hosts : 16;
        struct host_range *n = realloc(hosts, cap * sizeof(*n));

        if (!n)
            return -1;
        hosts = n;
        cap_hosts = cap;
    }
    hosts[nhosts++] = (struct host_range){ (uintptr_t)p, size, registered };
    return 0;
}

static void host_remove(struct host_range *h)
{
    *h = hosts[--nhosts];
}

/* ---- allocation ---- */

FAKE_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    void *p = NULL;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!dptr || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = vgpu_fake_capture_unsafe("cuMemAlloc")))
        return r;
    if ((r = VGPU_FAKE_CU(vgpu_fake_malloc(&p, bytesize))))
        return r;
    *dptr = CUDP(p);
    return CUDA_SUCCESS;
}

/* Managed memory: the runtime's cudaMallocManaged (managed.c), flags checked as the driver does. */
FAKE_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    void *p = NULL;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!dptr || bytesize == 0 || (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST))
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = vgpu_fake_capture_unsafe("cuMemAllocManaged")))
        return r;
    if ((r = VGPU_FAKE_CU(cudaMallocManaged(&p, bytesize, flags))))
        return r;
    *dptr = CUDP(p);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    CUresult r = vgpu_fake_cu_ready();

    return r ? r : VGPU_FAKE_CU(vgpu_fake_free("cuMemFree", DP(dptr)));
}

FAKE_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                        size_t Height, unsigned int ElementSizeBytes)
{
    void *p = NULL;
    size_t pitch;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!dptr || !pPitch || !WidthInBytes || !Height ||
        (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
        return CUDA_ERROR_INVALID_VALUE;
    if (WidthInBytes > SIZE_MAX - 511)
        return CUDA_ERROR_INVALID_VALUE;
    pitch = (WidthInBytes + 511) / 512 * 512;
    if (pitch > SIZE_MAX / Height)
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = VGPU_FAKE_CU(vgpu_fake_malloc(&p, pitch * Height))))
        return r;
    *dptr = CUDP(p);
    *pPitch = pitch;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemAllocAsync(CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!vgpu_fake_stream_ok("cuMemAllocAsync", hStream))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!dptr)
        return CUDA_ERROR_INVALID_VALUE;
    return vgpu_fake_alloc_async("cuMemAllocAsync", (void **)dptr, bytesize, hStream);
}

FAKE_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!vgpu_fake_stream_ok("cuMemFreeAsync", hStream))
        return CUDA_ERROR_INVALID_HANDLE;
    return vgpu_fake_free_async("cuMemFreeAsync", DP(dptr), hStream);
}

FAKE_EXPORT CUresult cuMemGetInfo_v2(size_t *free, size_t *total)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!free || !total)
        return CUDA_ERROR_INVALID_VALUE;
    *total = VGPU_FAKE_TOTAL_MEM;
    *free = VGPU_FAKE_TOTAL_MEM - vgpu_fake_mem_used();
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    struct vgpu_fake_alloc *a;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!(a = vgpu_fake_alloc_holding(DP(dptr))) || vgpu_fake_graph_unused(DP(dptr)))
        return CUDA_ERROR_NOT_FOUND;
    if (pbase)
        *pbase = (CUdeviceptr)a->base;
    if (psize)
        *psize = a->size;
    return CUDA_SUCCESS;
}

/* ---- page-locked host memory ---- */

FAKE_EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    void *p;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!pp || !bytesize || Flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE |
                                                 CU_MEMHOSTALLOC_DEVICEMAP |
                                                 CU_MEMHOSTALLOC_WRITECOMBINED))
        return CUDA_ERROR_INVALID_VALUE;
    if (!(p = malloc(bytesize)))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if (host_add(p, bytesize, false)) {
        free(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    return cuMemHostAlloc(pp, bytesize, 0);
}

FAKE_EXPORT CUresult cuMemFreeHost(void *p)
{
    struct host_range *h;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    h = host_holding(p);
    if (!h || h->registered || h->base != (uintptr_t)p)
        return p ? vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_VALUE, "cuMemFreeHost",
                                       "%p is not page-locked memory of this process", p)
                 : CUDA_ERROR_INVALID_VALUE;
    host_remove(h);
    free(p);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    CUresult r = vgpu_fake_cu_ready();

    (void)Flags;
    if (r)
        return r;
    if (!p || !bytesize || (uintptr_t)p > UINTPTR_MAX - bytesize)
        return CUDA_ERROR_INVALID_VALUE;
    if (host_holding(p) || host_holding((char *)p + bytesize - 1))
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    return host_add(p, bytesize, true) ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuMemHostUnregister(void *p)
{
    struct host_range *h;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    h = host_holding(p);
    if (!h || !h->registered || h->base != (uintptr_t)p)
        return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    host_remove(h);
    return CUDA_SUCCESS;
}

/* ---- pointer attributes ---- */

/* How many bytes attribute a writes; 0 for one the fake does not answer. */
static size_t attr_size(CUpointer_attribute a)
{
    switch (a) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: return sizeof(CUcontext);
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: return sizeof(unsigned int);
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: return sizeof(CUdeviceptr);
    case CU_POINTER_ATTRIBUTE_HOST_POINTER: return sizeof(void *);
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: return sizeof(bool);
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: return sizeof(unsigned long long);
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: return sizeof(bool);
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: return sizeof(int);
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: return sizeof(bool);
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: return sizeof(CUdeviceptr);
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: return sizeof(size_t);
    case CU_POINTER_ATTRIBUTE_MAPPED: return sizeof(bool);
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: return sizeof(bool);
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: return sizeof(unsigned long long);
    default: return 0;
    }
}

/*
 * One attribute of a pointer the fake knows: device memory (with its
 * allocation as the range) or page-locked host memory.  Anything else:
 * CUDA_ERROR_INVALID_VALUE, as the driver answers for memory it never saw.
 */
static CUresult pointer_attr(void *data, CUpointer_attribute attr, CUdeviceptr ptr)
{
    struct vgpu_fake_alloc *a = vgpu_fake_alloc_holding(DP(ptr));
    uintptr_t vbase = 0;
    size_t vsize = 0;
    bool dev = a || vgpu_fake_vmm_span(DP(ptr), &vbase, &vsize);   /* or mapped (driver_vmm.c) */
    struct host_range *h = dev ? NULL : host_holding(DP(ptr));
    uintptr_t base = a ? a->base : h ? h->base : vbase;
    size_t size = a ? a->size : h ? h->size : vsize;
    unsigned long long id = base;
    unsigned int type = dev ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
    CUcontext ctx = (CUcontext)(void *)(a ? a->ctx : vgpu_fake_ctx_current());
    CUdeviceptr dp = dev ? ptr : 0;
    void *hp = dev ? NULL : DP(ptr);
    int ordinal = 0;
    bool yes = true, no = false;
    const void *src;

    if (!data)
        return CUDA_ERROR_INVALID_VALUE;
    if (!dev && !h)
        return CUDA_ERROR_INVALID_VALUE;
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: src = &ctx; break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: src = &type; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: src = h ? (const void *)&ptr : &dp; break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (dev)
            return CUDA_ERROR_INVALID_VALUE;        /* device memory has no host address */
        src = &hp;
        break;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: src = &yes; break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: src = &id; break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: src = a && a->managed ? &yes : &no; break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: src = &no; break;
    case CU_POINTER_ATTRIBUTE_MAPPED: src = &yes; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: src = &ordinal; break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: src = &base; break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: src = &size; break;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    _Static_assert(sizeof(uintptr_t) == sizeof(CUdeviceptr), "CUdeviceptr is an address");
    memcpy(data, src, attr_size(attr));
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute,
                                           CUdeviceptr ptr)
{
    CUresult r = vgpu_fake_cu_init_ok();

    return r ? r : pointer_attr(data, attribute, ptr);
}

/* Unlike the single form, unknown memory is no error: its attributes read as zero. */
FAKE_EXPORT CUresult cuPointerGetAttributes(unsigned int numAttributes,
                                            CUpointer_attribute *attributes, void **data,
                                            CUdeviceptr ptr)
{
    bool known = vgpu_fake_alloc_holding(DP(ptr)) || host_holding(DP(ptr)) ||
                 vgpu_fake_vmm_span(DP(ptr), &(uintptr_t){ 0 }, &(size_t){ 0 });
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!numAttributes || !attributes || !data)
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < numAttributes; i++) {
        size_t n = attr_size(attributes[i]);

        if (!n || !data[i])
            return CUDA_ERROR_INVALID_VALUE;
        if (known && pointer_attr(data[i], attributes[i], ptr) == CUDA_SUCCESS)
            continue;
        memset(data[i], 0, n);
        if (attributes[i] == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL)
            *(int *)data[i] = -2;
    }
    return CUDA_SUCCESS;
}

/* ---- copies ---- */

static CUresult copy(const char *fn, void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                     CUstream stream, bool async)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!vgpu_fake_stream_ok(fn, stream))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!async && (r = vgpu_fake_capture_unsafe(fn)))
        return r;
    if (async && vgpu_fake_capture_copy(fn, dst, n, src, n, n, 1, kind, stream, &r))
        return r;
    return VGPU_FAKE_CU(vgpu_fake_copy2d(fn, dst, n, src, n, n, 1, kind));
}

FAKE_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
    return copy("cuMemcpyHtoD", DP(dstDevice), srcHost, ByteCount, cudaMemcpyHostToDevice, NULL,
                false);
}

FAKE_EXPORT CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
    return copy("cuMemcpyDtoH", dstHost, DP(srcDevice), ByteCount, cudaMemcpyDeviceToHost, NULL,
                false);
}

FAKE_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                     size_t ByteCount)
{
    return copy("cuMemcpyDtoD", DP(dstDevice), DP(srcDevice), ByteCount,
                cudaMemcpyDeviceToDevice, NULL, false);
}

FAKE_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost,
                                          size_t ByteCount, CUstream hStream)
{
    return copy("cuMemcpyHtoDAsync", DP(dstDevice), srcHost, ByteCount, cudaMemcpyHostToDevice,
                hStream, true);
}

FAKE_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                                          CUstream hStream)
{
    return copy("cuMemcpyDtoHAsync", dstHost, DP(srcDevice), ByteCount, cudaMemcpyDeviceToHost,
                hStream, true);
}

FAKE_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                                          size_t ByteCount, CUstream hStream)
{
    return copy("cuMemcpyDtoDAsync", DP(dstDevice), DP(srcDevice), ByteCount,
                cudaMemcpyDeviceToDevice, hStream, true);
}

/* Unified addressing: the tables say which side is device memory. */
FAKE_EXPORT CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
    return copy("cuMemcpy", DP(dst), DP(src), ByteCount, cudaMemcpyDefault, NULL, false);
}

FAKE_EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount,
                                   CUstream hStream)
{
    return copy("cuMemcpyAsync", DP(dst), DP(src), ByteCount, cudaMemcpyDefault, hStream, true);
}

/* One side of a CUDA_MEMCPY2D: its first byte and whether it is device memory. */
static CUresult side(CUmemorytype type, const void *host, CUdeviceptr dev, size_t x, size_t y,
                     size_t pitch, char **at, bool *is_dev)
{
    uintptr_t base;

    switch (type) {
    case CU_MEMORYTYPE_HOST: base = (uintptr_t)host; *is_dev = false; break;
    case CU_MEMORYTYPE_DEVICE: base = (uintptr_t)dev; *is_dev = true; break;
    case CU_MEMORYTYPE_UNIFIED:
        base = (uintptr_t)dev;
        *is_dev = vgpu_fake_is_dev(DP(dev), 0);
        break;
    case CU_MEMORYTYPE_ARRAY: return CUDA_ERROR_NOT_SUPPORTED;     /* no CUDA arrays here */
    default: return CUDA_ERROR_INVALID_VALUE;
    }
    if (!base || (y && pitch > (UINTPTR_MAX - base) / y) || x > UINTPTR_MAX - base - y * pitch)
        return CUDA_ERROR_INVALID_VALUE;
    *at = (char *)(base + y * pitch + x);
    return CUDA_SUCCESS;
}

static CUresult copy2d(const char *fn, const CUDA_MEMCPY2D *c, CUstream stream)
{
    static const enum cudaMemcpyKind kinds[2][2] = {
        { cudaMemcpyHostToHost, cudaMemcpyHostToDevice },       /* [src dev][dst dev] */
        { cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice },
    };
    char *src, *dst;
    bool sdev, ddev;
    size_t spitch, dpitch;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    if (!vgpu_fake_stream_ok(fn, stream))
        return CUDA_ERROR_INVALID_HANDLE;
    /* a single row needs no pitch */
    spitch = c->Height == 1 && !c->srcPitch ? c->WidthInBytes : c->srcPitch;
    dpitch = c->Height == 1 && !c->dstPitch ? c->WidthInBytes : c->dstPitch;
    if ((r = side(c->srcMemoryType, c->srcHost, c->srcDevice, c->srcXInBytes, c->srcY, spitch,
                  &src, &sdev)) ||
        (r = side(c->dstMemoryType, c->dstHost, c->dstDevice, c->dstXInBytes, c->dstY, dpitch,
                  &dst, &ddev)))
        return r;
    return VGPU_FAKE_CU(vgpu_fake_copy2d(fn, dst, dpitch, src, spitch, c->WidthInBytes,
                                         c->Height, kinds[sdev][ddev]));
}

FAKE_EXPORT CUresult cuMemcpy2D_v2(const CUDA_MEMCPY2D *pCopy)
{
    return copy2d("cuMemcpy2D", pCopy, NULL);
}

FAKE_EXPORT CUresult cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D *pCopy)
{
    return copy2d("cuMemcpy2DUnaligned", pCopy, NULL);
}

FAKE_EXPORT CUresult cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
    return copy2d("cuMemcpy2DAsync", pCopy, hStream);
}

/* ---- memsets ---- */

static CUresult set(const char *fn, CUdeviceptr d, size_t pitch, uint32_t value, size_t elem,
                    size_t width, size_t height, CUstream stream)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (d % elem || (height > 1 && pitch % elem) || width > SIZE_MAX / elem)
        return CUDA_ERROR_INVALID_VALUE;          /* elements must be aligned */
    if (height == 1)
        pitch = width * elem;                     /* one row needs no pitch */
    if (stream) {
        struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_MEMSET, .dst = DP(d), .pitch = pitch,
                                   .value = value, .elem = elem, .width = width,
                                   .height = height };

        if (width && height && !vgpu_fake_dev_ok(fn, DP(d), (height - 1) * pitch + width * elem))
            return CUDA_ERROR_INVALID_VALUE;
        if (vgpu_fake_captured(stream, &op, &r))
            return r;
    }
    return VGPU_FAKE_CU(vgpu_fake_memset2d(fn, DP(d), pitch, value, elem, width, height, stream));
}

FAKE_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N)
{
    return set("cuMemsetD8", dstDevice, N, uc, 1, N, 1, NULL);
}

FAKE_EXPORT CUresult cuMemsetD16_v2(CUdeviceptr dstDevice, unsigned short us, size_t N)
{
    return set("cuMemsetD16", dstDevice, 0, us, 2, N, 1, NULL);
}

FAKE_EXPORT CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N)
{
    return set("cuMemsetD32", dstDevice, 0, ui, 4, N, 1, NULL);
}

FAKE_EXPORT CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N,
                                     CUstream hStream)
{
    return set("cuMemsetD8Async", dstDevice, N, uc, 1, N, 1, hStream);
}

FAKE_EXPORT CUresult cuMemsetD16Async(CUdeviceptr dstDevice, unsigned short us, size_t N,
                                      CUstream hStream)
{
    return set("cuMemsetD16Async", dstDevice, 0, us, 2, N, 1, hStream);
}

FAKE_EXPORT CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N,
                                      CUstream hStream)
{
    return set("cuMemsetD32Async", dstDevice, 0, ui, 4, N, 1, hStream);
}

FAKE_EXPORT CUresult cuMemsetD2D8_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc,
                                     size_t Width, size_t Height)
{
    return set("cuMemsetD2D8", dstDevice, dstPitch, uc, 1, Width, Height, NULL);
}

FAKE_EXPORT CUresult cuMemsetD2D16_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us,
                                      size_t Width, size_t Height)
{
    return set("cuMemsetD2D16", dstDevice, dstPitch, us, 2, Width, Height, NULL);
}

FAKE_EXPORT CUresult cuMemsetD2D32_v2(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui,
                                      size_t Width, size_t Height)
{
    return set("cuMemsetD2D32", dstDevice, dstPitch, ui, 4, Width, Height, NULL);
}

FAKE_EXPORT CUresult cuMemsetD2D8Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned char uc,
                                       size_t Width, size_t Height, CUstream hStream)
{
    return set("cuMemsetD2D8Async", dstDevice, dstPitch, uc, 1, Width, Height, hStream);
}

FAKE_EXPORT CUresult cuMemsetD2D16Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned short us,
                                        size_t Width, size_t Height, CUstream hStream)
{
    return set("cuMemsetD2D16Async", dstDevice, dstPitch, us, 2, Width, Height, hStream);
}

FAKE_EXPORT CUresult cuMemsetD2D32Async(CUdeviceptr dstDevice, size_t dstPitch, unsigned int ui,
                                        size_t Width, size_t Height, CUstream hStream)
{
    return set("cuMemsetD2D32Async", dstDevice, dstPitch, ui, 4, Width, Height, hStream);
}

/*
 * The per-thread default stream forms (cuda.h's __CUDA_API_PTDS/PTSZ names):
 * the fake has one stream of work, so each is its plain form.
 */
#define PT(ret, name, base, params, args)                                                         \
    FAKE_EXPORT ret name params;                                                                  \
    ret name params { return base args; }

PT(CUresult, cuMemcpyHtoD_v2_ptds, cuMemcpyHtoD_v2, (CUdeviceptr d, const void *s, size_t n),
   (d, s, n))
PT(CUresult, cuMemcpyDtoH_v2_ptds, cuMemcpyDtoH_v2, (void *d, CUdeviceptr s, size_t n), (d, s, n))
PT(CUresult, cuMemcpyDtoD_v2_ptds, cuMemcpyDtoD_v2, (CUdeviceptr d, CUdeviceptr s, size_t n),
   (d, s, n))
PT(CUresult, cuMemcpyHtoDAsync_v2_ptsz, cuMemcpyHtoDAsync_v2,
   (CUdeviceptr d, const void *s, size_t n, CUstream st), (d, s, n, st))
PT(CUresult, cuMemcpyDtoHAsync_v2_ptsz, cuMemcpyDtoHAsync_v2,
   (void *d, CUdeviceptr s, size_t n, CUstream st), (d, s, n, st))
PT(CUresult, cuMemcpyDtoDAsync_v2_ptsz, cuMemcpyDtoDAsync_v2,
   (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st), (d, s, n, st))
PT(CUresult, cuMemcpy_ptds, cuMemcpy, (CUdeviceptr d, CUdeviceptr s, size_t n), (d, s, n))
PT(CUresult, cuMemcpyAsync_ptsz, cuMemcpyAsync,
   (CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st), (d, s, n, st))
PT(CUresult, cuMemcpy2D_v2_ptds, cuMemcpy2D_v2, (const CUDA_MEMCPY2D *c), (c))
PT(CUresult, cuMemcpy2DUnaligned_v2_ptds, cuMemcpy2DUnaligned_v2, (const CUDA_MEMCPY2D *c), (c))
PT(CUresult, cuMemcpy2DAsync_v2_ptsz, cuMemcpy2DAsync_v2, (const CUDA_MEMCPY2D *c, CUstream st),
   (c, st))
PT(CUresult, cuMemsetD8_v2_ptds, cuMemsetD8_v2, (CUdeviceptr d, unsigned char v, size_t n),
   (d, v, n))
PT(CUresult, cuMemsetD16_v2_ptds, cuMemsetD16_v2, (CUdeviceptr d, unsigned short v, size_t n),
   (d, v, n))
PT(CUresult, cuMemsetD32_v2_ptds, cuMemsetD32_v2, (CUdeviceptr d, unsigned int v, size_t n),
   (d, v, n))
PT(CUresult, cuMemsetD8Async_ptsz, cuMemsetD8Async,
   (CUdeviceptr d, unsigned char v, size_t n, CUstream st), (d, v, n, st))
PT(CUresult, cuMemsetD16Async_ptsz, cuMemsetD16Async,
   (CUdeviceptr d, unsigned short v, size_t n, CUstream st), (d, v, n, st))
PT(CUresult, cuMemsetD32Async_ptsz, cuMemsetD32Async,
   (CUdeviceptr d, unsigned int v, size_t n, CUstream st), (d, v, n, st))
PT(CUresult, cuMemsetD2D8_v2_ptds, cuMemsetD2D8_v2,
   (CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h), (d, p, v, w, h))
PT(CUresult, cuMemsetD2D16_v2_ptds, cuMemsetD2D16_v2,
   (CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h), (d, p, v, w, h))
PT(CUresult, cuMemsetD2D32_v2_ptds, cuMemsetD2D32_v2,
   (CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h), (d, p, v, w, h))
PT(CUresult, cuMemsetD2D8Async_ptsz, cuMemsetD2D8Async,
   (CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h, CUstream st),
   (d, p, v, w, h, st))
PT(CUresult, cuMemsetD2D16Async_ptsz, cuMemsetD2D16Async,
   (CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h, CUstream st),
   (d, p, v, w, h, st))
PT(CUresult, cuMemsetD2D32Async_ptsz, cuMemsetD2D32Async,
   (CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h, CUstream st),
   (d, p, v, w, h, st))
PT(CUresult, cuMemAllocAsync_ptsz, cuMemAllocAsync, (CUdeviceptr *d, size_t n, CUstream st),
   (d, n, st))
PT(CUresult, cuMemFreeAsync_ptsz, cuMemFreeAsync, (CUdeviceptr d, CUstream st), (d, st))

/* The unversioned cuMemHostRegister of old binaries has the _v2's ABI. */
#undef cuMemHostRegister
PT(CUresult, cuMemHostRegister, cuMemHostRegister_v2, (void *p, size_t n, unsigned int f),
   (p, n, f))
