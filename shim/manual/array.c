/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUDA arrays, texture and surface objects.  Arrays live on the server,
 * charged to the VM's memory limit; copies between an array and host
 * memory carry the rows packed (width bytes each) in pieces of at most
 * VGPU_SHIM_CHUNK, and copies between an array and device memory name
 * the device memory by address; the server checks every offset and extent
 * against the array's own (server/manual/array.c); copies between two
 * arrays name both, and the server checks the extent against each.
 * Texture and surface objects travel as their descriptor structs, whose
 * array handle or device span the server checks before CUDA sees them;
 * the resource descriptor of each is kept here, so reading it back needs
 * no call.
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../shim_internal.h"
#include "cudart.pb-c.h"
#include "cudart_calltable.h"
#include "manual.pb-c.h"

/* ---- arrays ---- */

/* An array, or with levels a mipmapped array (its handle in *array too). */
static cudaError_t malloc_array(uint32_t id, const char *name, cudaArray_t *array,
                                const struct cudaChannelFormatDesc *desc, size_t width,
                                size_t height, size_t depth, unsigned int flags, bool is_3d,
                                unsigned int levels)
{
    Vgpu__Manual__ArrayArgs a = VGPU__MANUAL__ARRAY_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__ArrayRet *r;
    int st;

    if (!array || !desc)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    a.x = desc->x;
    a.y = desc->y;
    a.z = desc->z;
    a.w = desc->w;
    a.f = desc->f;
    a.width = width;
    a.height = height;
    a.depth = depth;
    a.flags = flags;
    a.is_3d = is_3d;
    a.levels = levels;
    a.mipmapped = levels != 0;
    st = vgpu_shim_call(id, name, &a.base, &req, &rep);
    if (st == cudaSuccess) {
        r = vgpu__manual__array_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (r) {
            *array = (cudaArray_t)(uintptr_t)r->array;
            vgpu__manual__array_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_status(cudaErrorUnknown);
        }
    }
    vgpu_shim_rep_release(&rep);
    return (cudaError_t)st;
}

VGPU_EXPORT cudaError_t cudaMallocArray(cudaArray_t *array, const struct cudaChannelFormatDesc *desc,
                                        size_t width, size_t height, unsigned int flags)
{
    return malloc_array(VGPU_CUDART_ID_cudaMallocArray, "cudaMallocArray", array, desc, width,
                        height, 0, flags, false, 0);
}

VGPU_EXPORT cudaError_t cudaMalloc3DArray(cudaArray_t *array, const struct cudaChannelFormatDesc *desc,
                                          struct cudaExtent extent, unsigned int flags)
{
    return malloc_array(VGPU_CUDART_ID_cudaMalloc3DArray, "cudaMalloc3DArray", array, desc,
                        extent.width, extent.height, extent.depth, flags, true, 0);
}

/* The server clamps numLevels to what the extent allows, as CUDA does. */
VGPU_EXPORT cudaError_t cudaMallocMipmappedArray(cudaMipmappedArray_t *mipmappedArray,
                                                 const struct cudaChannelFormatDesc *desc,
                                                 struct cudaExtent extent, unsigned int numLevels,
                                                 unsigned int flags)
{
    return malloc_array(VGPU_CUDART_ID_cudaMallocMipmappedArray, "cudaMallocMipmappedArray",
                        (cudaArray_t *)(void *)mipmappedArray, desc, extent.width, extent.height,
                        extent.depth, flags, true, numLevels ? numLevels : 1);
}

VGPU_EXPORT cudaError_t cudaGetMipmappedArrayLevel(cudaArray_t *levelArray,
                                                   cudaMipmappedArray_const_t mipmappedArray,
                                                   unsigned int level)
{
    Vgpu__Manual__MipmappedLevelArgs a = VGPU__MANUAL__MIPMAPPED_LEVEL_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__ArrayRet *r;
    int st;

    if (!levelArray)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    a.mipmapped = (uint64_t)(uintptr_t)mipmappedArray;
    a.level = level;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaGetMipmappedArrayLevel, "cudaGetMipmappedArrayLevel",
                        &a.base, &req, &rep);
    if (st == cudaSuccess) {
        if ((r = vgpu__manual__array_ret__unpack(NULL, rep.ret_len, rep.ret))) {
            *levelArray = (cudaArray_t)(uintptr_t)r->array;
            vgpu__manual__array_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_status(cudaErrorUnknown);
        }
    }
    vgpu_shim_rep_release(&rep);
    return (cudaError_t)st;
}

VGPU_EXPORT cudaError_t cudaFreeMipmappedArray(cudaMipmappedArray_t mipmappedArray)
{
    Vgpu__Manual__ArrayHandleArgs a = VGPU__MANUAL__ARRAY_HANDLE_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    a.array = (uint64_t)(uintptr_t)mipmappedArray;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaFreeMipmappedArray, "cudaFreeMipmappedArray", &a.base,
                        &req, &rep);
    vgpu_shim_rep_release(&rep);
    return (cudaError_t)st;
}

VGPU_EXPORT cudaError_t cudaFreeArray(cudaArray_t array)
{
    Vgpu__Manual__ArrayHandleArgs a = VGPU__MANUAL__ARRAY_HANDLE_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    a.array = (uint64_t)(uintptr_t)array;
    st = vgpu_shim_call(VGPU_CUDART_ID_cudaFreeArray, "cudaFreeArray", &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    return (cudaError_t)st;
}

/* ---- copies ---- */

/*
 * Which side of an array copy the other memory is on: the device (true),
 * or the host; -1 for a kind that does not fit the direction.  Managed
 * memory is device memory to a copy (managed.c): what the host wrote goes
 * first, and what the copy writes is the device's after.
 */
static int other_side(const void *mem, size_t span, enum cudaMemcpyKind kind, bool to_array)
{
    bool dev;

    switch (kind) {
    case cudaMemcpyDeviceToDevice: dev = true; break;
    case cudaMemcpyHostToDevice: dev = false; if (!to_array) return -1; break;
    case cudaMemcpyDeviceToHost: dev = false; if (to_array) return -1; break;
    case cudaMemcpyDefault: dev = vgpu_shim_is_device(mem); break;
    default: return -1;
    }
    if (mem && span && vgpu_managed_holds(mem, 1)) {
        if (to_array)
            vgpu_managed_device_reads(mem, span);
        else
            vgpu_managed_device_writes(mem, span);
        dev = true;
    }
    return dev;
}

/*
 * height rows of width bytes between the array at (w_offset, h_offset) and
 * mem, pitch bytes apart.  Host rows go packed in pieces.
 */
static cudaError_t copy2d_array(uint32_t id, const char *name, cudaArray_const_t array,
                                size_t w_offset, size_t h_offset, void *mem, size_t pitch,
                                size_t width, size_t height, enum cudaMemcpyKind kind,
                                cudaStream_t stream, bool async, bool to_array)
{
    Vgpu__Manual__ArrayCopyArgs a = VGPU__MANUAL__ARRAY_COPY_ARGS__INIT;
    size_t span = 0, rows_per, done = 0;
    uint8_t *buf;
    int dev, st = cudaSuccess;

    if (width > pitch || (height > 1 && pitch > (SIZE_MAX - width) / (height - 1)))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidPitchValue);
    if (width && height)
        span = (height - 1) * pitch + width;
    dev = other_side(mem, span, kind, to_array);
    if (dev < 0)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidMemcpyDirection);
    if (!width || !height)
        return cudaSuccess;
    a.array = (uint64_t)(uintptr_t)array;
    a.to_array = to_array;
    a.device = dev;
    a.stream = (uint64_t)(uintptr_t)stream;
    a.async = async;
    a.w_offset = w_offset;
    a.width = width;
    if (dev) {
        a.h_offset = h_offset;
        a.height = height;
        a.ptr = (uint64_t)(uintptr_t)mem;
        a.pitch = pitch;
        return (cudaError_t)vgpu_shim_call_bytes(id, name, &a.base, a.async, NULL, NULL, 0);
    }
    rows_per = VGPU_SHIM_CHUNK / width ? VGPU_SHIM_CHUNK / width : 1;
    if (width > VGPU_SHIM_CHUNK) {
        /* a row wider than a frame carries: no array is that wide (CUDA's limits) */
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    }
    buf = malloc((rows_per < height ? rows_per : height) * width);
    if (!buf)
        return (cudaError_t)vgpu_shim_status(cudaErrorMemoryAllocation);
    while (done < height && st == cudaSuccess) {
        size_t rows = height - done < rows_per ? height - done : rows_per;

        a.h_offset = h_offset + done;
        a.height = rows;
        if (to_array) {
            for (size_t y = 0; y < rows; y++)
                memcpy(buf + y * width, (const uint8_t *)mem + (done + y) * pitch, width);
            st = vgpu_shim_call_bytes(id, name, &a.base, a.async, buf, NULL, rows * width);
        } else {
            st = vgpu_shim_call_bytes(id, name, &a.base, a.async, NULL, buf, rows * width);
            for (size_t y = 0; st == cudaSuccess && y < rows; y++)
                memcpy((uint8_t *)mem + (done + y) * pitch, buf + y * width, width);
        }
        done += rows;
    }
    free(buf);
    return (cudaError_t)st;
}

/*
 * The 1D forms copy count bytes from (w_offset, h_offset) on, row after
 * row: the rest of the first row, whole rows, then the start of the last.
 */
static cudaError_t copy1d_array(uint32_t id, const char *name, cudaArray_const_t array,
                                size_t w_offset, size_t h_offset, void *mem, size_t count,
                                enum cudaMemcpyKind kind, cudaStream_t stream, bool async,
                                bool to_array)
{
    struct cudaChannelFormatDesc d;
    struct cudaExtent ext;
    unsigned int flags;
    size_t row, first;
    cudaError_t st;

    if (!count)
        return cudaSuccess;
    st = cudaArrayGetInfo(&d, &ext, &flags, (cudaArray_t)array);
    if (st != cudaSuccess)
        return st;
    row = ext.width * (size_t)((d.x + d.y + d.z + d.w) / 8);
    if (!row || w_offset > row)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    first = row - w_offset < count ? row - w_offset : count;
    st = copy2d_array(id, name, array, w_offset, h_offset, mem, first, first, 1, kind, stream,
                      async, to_array);
    count -= first;
    mem = (uint8_t *)mem + first;
    h_offset++;
    if (st == cudaSuccess && count >= row) {
        st = copy2d_array(id, name, array, 0, h_offset, mem, row, row, count / row, kind, stream,
                          async, to_array);
        h_offset += count / row;
        mem = (uint8_t *)mem + count / row * row;
        count %= row;
    }
    if (st == cudaSuccess && count)
        st = copy2d_array(id, name, array, 0, h_offset, mem, count, count, 1, kind, stream, async,
                          to_array);
    return st;
}

#define TO_ARRAY_2D(fn, stream_expr, async)                                                   \
    VGPU_EXPORT cudaError_t fn(cudaArray_t dst, size_t wOffset, size_t hOffset, const void *src,  \
                               size_t spitch, size_t width, size_t height,                        \
                               enum cudaMemcpyKind kind ASYNC_PARAM_##async)                      \
    {                                                                                             \
        return copy2d_array(VGPU_CUDART_ID_cudaMemcpy2DToArray, #fn, dst, wOffset, hOffset,       \
                            (void *)src, spitch, width, height, kind, stream_expr, async, true);  \
    }
#define FROM_ARRAY_2D(fn, stream_expr, async)                                                 \
    VGPU_EXPORT cudaError_t fn(void *dst, size_t dpitch, cudaArray_const_t src, size_t wOffset,   \
                               size_t hOffset, size_t width, size_t height,                       \
                               enum cudaMemcpyKind kind ASYNC_PARAM_##async)                      \
    {                                                                                             \
        return copy2d_array(VGPU_CUDART_ID_cudaMemcpy2DFromArray, #fn, src, wOffset, hOffset,     \
                            dst, dpitch, width, height, kind, stream_expr, async, false);         \
    }
#define TO_ARRAY_1D(fn, stream_expr, async)                                                   \
    VGPU_EXPORT cudaError_t fn(cudaArray_t dst, size_t wOffset, size_t hOffset, const void *src,  \
                               size_t count, enum cudaMemcpyKind kind ASYNC_PARAM_##async)        \
    {                                                                                             \
        return copy1d_array(VGPU_CUDART_ID_cudaMemcpyToArray, #fn, dst, wOffset, hOffset,         \
                            (void *)src, count, kind, stream_expr, async, true);                  \
    }
#define FROM_ARRAY_1D(fn, stream_expr, async)                                                 \
    VGPU_EXPORT cudaError_t fn(void *dst, cudaArray_const_t src, size_t wOffset, size_t hOffset,  \
                               size_t count, enum cudaMemcpyKind kind ASYNC_PARAM_##async)        \
    {                                                                                             \
        return copy1d_array(VGPU_CUDART_ID_cudaMemcpyFromArray, #fn, src, wOffset, hOffset, dst,  \
                            count, kind, stream_expr, async, false);                              \
    }
#define ASYNC_PARAM_false
#define ASYNC_PARAM_true , cudaStream_t stream

/* synchronous forms on the legacy stream (_ptds: the per-thread one), async on theirs */
TO_ARRAY_2D(cudaMemcpy2DToArray, NULL, false)
TO_ARRAY_2D(cudaMemcpy2DToArray_ptds, cudaStreamPerThread, false)
TO_ARRAY_2D(cudaMemcpy2DToArrayAsync, stream, true)
TO_ARRAY_2D(cudaMemcpy2DToArrayAsync_ptsz, stream ? stream : cudaStreamPerThread, true)
FROM_ARRAY_2D(cudaMemcpy2DFromArray, NULL, false)
FROM_ARRAY_2D(cudaMemcpy2DFromArray_ptds, cudaStreamPerThread, false)
FROM_ARRAY_2D(cudaMemcpy2DFromArrayAsync, stream, true)
FROM_ARRAY_2D(cudaMemcpy2DFromArrayAsync_ptsz, stream ? stream : cudaStreamPerThread, true)
TO_ARRAY_1D(cudaMemcpyToArray, NULL, false)
TO_ARRAY_1D(cudaMemcpyToArray_ptds, cudaStreamPerThread, false)
TO_ARRAY_1D(cudaMemcpyToArrayAsync, stream, true)
TO_ARRAY_1D(cudaMemcpyToArrayAsync_ptsz, stream ? stream : cudaStreamPerThread, true)
FROM_ARRAY_1D(cudaMemcpyFromArray, NULL, false)
FROM_ARRAY_1D(cudaMemcpyFromArray_ptds, cudaStreamPerThread, false)
FROM_ARRAY_1D(cudaMemcpyFromArrayAsync, stream, true)
FROM_ARRAY_1D(cudaMemcpyFromArrayAsync_ptsz, stream ? stream : cudaStreamPerThread, true)

/* ---- between two arrays ---- */

/*
 * Synchronous, as natively (the _ptds forms too: the legacy stream the
 * server copies on synchronizes with the per-thread one).
 */
static cudaError_t array_to_array(uint32_t id, const char *name, cudaArray_t dst, size_t dst_x,
                                  size_t dst_y, cudaArray_const_t src, size_t src_x, size_t src_y,
                                  size_t width, size_t height, enum cudaMemcpyKind kind, int dims)
{
    Vgpu__Manual__ArrayToArrayArgs a = VGPU__MANUAL__ARRAY_TO_ARRAY_ARGS__INIT;

    a.dst = (uint64_t)(uintptr_t)dst;
    a.src = (uint64_t)(uintptr_t)src;
    a.dst_x = dst_x;
    a.dst_y = dst_y;
    a.src_x = src_x;
    a.src_y = src_y;
    a.width = width;
    a.height = height;
    a.dims = (uint32_t)dims;
    a.kind = (uint32_t)kind;
    return (cudaError_t)vgpu_shim_call_bytes(id, name, &a.base, false, NULL, NULL, 0);
}

#define A2A_2D(fn)                                                                                \
    VGPU_EXPORT cudaError_t fn(cudaArray_t dst, size_t wOffsetDst, size_t hOffsetDst,               \
                               cudaArray_const_t src, size_t wOffsetSrc, size_t hOffsetSrc,         \
                               size_t width, size_t height, enum cudaMemcpyKind kind)               \
    {                                                                                             \
        return array_to_array(VGPU_CUDART_ID_cudaMemcpy2DArrayToArray, #fn, dst, wOffsetDst,        \
                              hOffsetDst, src, wOffsetSrc, hOffsetSrc, width, height, kind, 2);     \
    }
#define A2A_1D(fn)                                                                                \
    VGPU_EXPORT cudaError_t fn(cudaArray_t dst, size_t wOffsetDst, size_t hOffsetDst,               \
                               cudaArray_const_t src, size_t wOffsetSrc, size_t hOffsetSrc,         \
                               size_t count, enum cudaMemcpyKind kind)                              \
    {                                                                                             \
        return array_to_array(VGPU_CUDART_ID_cudaMemcpyArrayToArray, #fn, dst, wOffsetDst,          \
                              hOffsetDst, src, wOffsetSrc, hOffsetSrc, count, 1, kind, 1);          \
    }

A2A_2D(cudaMemcpy2DArrayToArray)
A2A_2D(cudaMemcpy2DArrayToArray_ptds)
A2A_1D(cudaMemcpyArrayToArray)
A2A_1D(cudaMemcpyArrayToArray_ptds)

int vgpu_shim_copy3d_arrays(const struct cudaMemcpy3DParms *p, cudaStream_t stream, bool async)
{
    Vgpu__Manual__ArrayToArrayArgs a = VGPU__MANUAL__ARRAY_TO_ARRAY_ARGS__INIT;

    a.dst = (uint64_t)(uintptr_t)p->dstArray;
    a.src = (uint64_t)(uintptr_t)p->srcArray;
    a.dst_x = p->dstPos.x;
    a.dst_y = p->dstPos.y;
    a.dst_z = p->dstPos.z;
    a.src_x = p->srcPos.x;
    a.src_y = p->srcPos.y;
    a.src_z = p->srcPos.z;
    a.width = p->extent.width;
    a.height = p->extent.height;
    a.depth = p->extent.depth;
    a.dims = 3;
    a.kind = (uint32_t)p->kind;
    a.stream = (uint64_t)(uintptr_t)stream;
    a.async = async;
    return vgpu_shim_call_bytes(VGPU_CUDART_ID_cudaMemcpy3D, async ? "cudaMemcpy3DAsync" : "cudaMemcpy3D",
                                &a.base, async, NULL, NULL, 0);
}

/* ---- texture and surface objects ---- */

/*
 * The resource descriptor each object was created with, by object: kept
 * from a successful create until its destroy call succeeds
 * (vgpu_shim_object_destroyed(), which boundary.c calls) or its device is
 * reset (vgpu_shim_objects_reset()).  An object's value may come again
 * after its destroy: a create replaces what is kept under it.
 */
struct kept_desc {
    unsigned long long object;
    bool surface;
    int device;                 /* current at its create: a reset of it destroys the object */
    struct cudaResourceDesc res;
};

static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept_desc *kept;
static size_t nkept, cap_kept;

static struct kept_desc *kept_find(unsigned long long object, bool surface)
{
    for (size_t i = 0; i < nkept; i++)
        if (kept[i].object == object && kept[i].surface == surface)
            return &kept[i];
    return NULL;
}

/* 0, or -ENOMEM (the object then has no descriptor to read back) */
static int kept_add(unsigned long long object, bool surface, const struct cudaResourceDesc *res)
{
    struct kept_desc *k;
    int rc = 0;

    pthread_mutex_lock(&kept_lock);
    if (!(k = kept_find(object, surface))) {
        if (nkept == cap_kept) {
            size_t cap = cap_kept ? 2 * cap_kept : 16;
            struct kept_desc *p = realloc(kept, cap * sizeof(*p));

            if (!p) {
                rc = -ENOMEM;
                goto out;
            }
            kept = p;
            cap_kept = cap;
        }
        k = &kept[nkept++];
    }
    *k = (struct kept_desc){ .object = object, .surface = surface, .device = vgpu_shim_device(),
                             .res = *res };
out:
    pthread_mutex_unlock(&kept_lock);
    return rc;
}

void vgpu_shim_object_destroyed(const struct vgpu_call_req *req)
{
    unsigned long long object = 0;
    bool surface = req->call_id == VGPU_CUDART_ID_cudaDestroySurfaceObject;
    struct kept_desc *k;

    /* the generated stub's arguments: its one handle */
    if (surface) {
        Vgpu__Cudart__CudaDestroySurfaceObjectArgs *a =
            vgpu__cudart__cuda_destroy_surface_object_args__unpack(NULL, req->args_len, req->args);

        if (!a)
            return;
        object = a->surfobject;
        vgpu__cudart__cuda_destroy_surface_object_args__free_unpacked(a, NULL);
    } else {
        Vgpu__Cudart__CudaDestroyTextureObjectArgs *a =
            vgpu__cudart__cuda_destroy_texture_object_args__unpack(NULL, req->args_len, req->args);

        if (!a)
            return;
        object = a->texobject;
        vgpu__cudart__cuda_destroy_texture_object_args__free_unpacked(a, NULL);
    }
    pthread_mutex_lock(&kept_lock);
    if ((k = kept_find(object, surface)))
        *k = kept[--nkept];
    pthread_mutex_unlock(&kept_lock);
}

void vgpu_shim_objects_reset(int device)
{
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < nkept;)
        if (kept[i].device == device)
            kept[i] = kept[--nkept];
        else
            i++;
    pthread_mutex_unlock(&kept_lock);
}

/* An object this process made and has not destroyed: its resource descriptor, or InvalidValue. */
static cudaError_t resource_desc(struct cudaResourceDesc *res, unsigned long long object, bool surface)
{
    struct kept_desc *k;
    cudaError_t st = cudaSuccess;

    if (!res)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    /* a program whose runtime could not start gets that status, as natively */
    vgpu_shim_connect();
    if (vgpu_shim_init_status() != cudaSuccess)
        return (cudaError_t)vgpu_shim_status(vgpu_shim_init_status());
    pthread_mutex_lock(&kept_lock);
    if ((k = kept_find(object, surface)))
        *res = k->res;
    else
        st = cudaErrorInvalidValue;
    pthread_mutex_unlock(&kept_lock);
    return st == cudaSuccess ? st : (cudaError_t)vgpu_shim_status(st);
}

VGPU_EXPORT cudaError_t cudaGetTextureObjectResourceDesc(struct cudaResourceDesc *pResDesc,
                                                         cudaTextureObject_t texObject)
{
    return resource_desc(pResDesc, texObject, false);
}

VGPU_EXPORT cudaError_t cudaGetSurfaceObjectResourceDesc(struct cudaResourceDesc *pResDesc,
                                                         cudaSurfaceObject_t surfObject)
{
    return resource_desc(pResDesc, surfObject, true);
}

static cudaError_t create_object(uint32_t id, const char *name, unsigned long long *object,
                                 const struct cudaResourceDesc *res,
                                 const struct cudaTextureDesc *tex,
                                 const struct cudaResourceViewDesc *view, bool surface)
{
    Vgpu__Manual__TextureArgs a = VGPU__MANUAL__TEXTURE_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    Vgpu__Manual__TextureRet *r;
    int st;

    if (!object || !res || (!surface && !tex))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    a.res_desc = (ProtobufCBinaryData){ sizeof(*res), (uint8_t *)res };
    if (tex)
        a.tex_desc = (ProtobufCBinaryData){ sizeof(*tex), (uint8_t *)tex };
    if (view)
        a.view_desc = (ProtobufCBinaryData){ sizeof(*view), (uint8_t *)view };
    a.surface = surface;
    st = vgpu_shim_call(id, name, &a.base, &req, &rep);
    if (st == cudaSuccess) {
        r = vgpu__manual__texture_ret__unpack(NULL, rep.ret_len, rep.ret);
        if (r) {
            *object = r->object;
            vgpu__manual__texture_ret__free_unpacked(r, NULL);
            if (kept_add(*object, surface, res))
                vgpu_shim_log(VGPU_LOG_WARN, "%s: no memory to keep the resource descriptor; "
                              "reading it back will fail", name);
        } else {
            st = vgpu_shim_status(cudaErrorUnknown);
        }
    }
    vgpu_shim_rep_release(&rep);
    return (cudaError_t)st;
}

VGPU_EXPORT cudaError_t cudaCreateTextureObject(cudaTextureObject_t *pTexObject,
                                                const struct cudaResourceDesc *pResDesc,
                                                const struct cudaTextureDesc *pTexDesc,
                                                const struct cudaResourceViewDesc *pResViewDesc)
{
    return create_object(VGPU_CUDART_ID_cudaCreateTextureObject, "cudaCreateTextureObject",
                         pTexObject, pResDesc, pTexDesc, pResViewDesc, false);
}

VGPU_EXPORT cudaError_t cudaCreateSurfaceObject(cudaSurfaceObject_t *pSurfObject,
                                                const struct cudaResourceDesc *pResDesc)
{
    return create_object(VGPU_CUDART_ID_cudaCreateSurfaceObject, "cudaCreateSurfaceObject",
                         pSurfObject, pResDesc, NULL, NULL, true);
}
