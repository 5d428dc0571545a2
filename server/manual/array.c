/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUDA arrays, texture and surface objects (spec: manual).  An array is
 * charged to the VM's memory limit by its extent and channel size before
 * the GPU is asked, and becomes a handle of the session's; copies between
 * an array and host or device memory are checked against the array's own
 * extent (cudaArrayGetInfo) and the session's ranges, copies between two
 * arrays against both arrays' extents; a texture or surface object is
 * created only from a resource of the session's: its array, or device
 * memory whose whole span the session holds.  A mipmapped array is charged
 * for all its levels; a level's array (cudaGetMipmappedArrayLevel) becomes
 * a handle of the session's until the mipmapped array is freed, and is not
 * the session's to free itself.
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manual_internal.h"

/* What each array was charged (one session per process). */
static struct charged { uint64_t array, bytes; } *charged;
static int ncharged, cap_charged;

static int charge_keep(uint64_t array, uint64_t bytes)
{
    if (ncharged == cap_charged) {
        int cap = cap_charged ? 2 * cap_charged : 32;
        struct charged *p = realloc(charged, (size_t)cap * sizeof(*p));

        if (!p)
            return -1;
        charged = p;
        cap_charged = cap;
    }
    charged[ncharged++] = (struct charged){ array, bytes };
    return 0;
}

static uint64_t charge_take(uint64_t array)
{
    for (int i = 0; i < ncharged; i++)
        if (charged[i].array == array) {
            uint64_t b = charged[i].bytes;

            charged[i] = charged[--ncharged];
            return b;
        }
    return 0;
}

/* Bytes of one element of desc's format, 0 when it is not a whole number of bytes. */
static uint64_t elem_bytes(int x, int y, int z, int w)
{
    int64_t bits;

    if (x < 0 || y < 0 || z < 0 || w < 0 || x > 64 || y > 64 || z > 64 || w > 64)
        return 0;
    bits = (int64_t)x + y + z + w;
    return bits % 8 ? 0 : (uint64_t)bits / 8;
}

/*
 * The levels CUDA makes of levels asked for: clamped to [1, 1 + log2 of the
 * largest dimension], the depth of a layered or cubemap array being layers,
 * not a dimension.
 */
static uint32_t levels_made(uint64_t w, uint64_t h, uint64_t d, uint32_t levels, bool layers)
{
    uint64_t big = w > h ? w : h;
    uint32_t most = 1;

    if (!layers && d > big)
        big = d;
    while (most < 64 && big >> most)
        most++;
    return levels < 1 ? 1 : levels > most ? most : levels;
}

/*
 * The bytes of levels levels of a width x height x depth array of e-byte
 * elements (each level's dimensions halved, at least 1; 0 height or depth
 * stays 0; the depth of a layered or cubemap array, its layers, kept): 0
 * when it does not fit 2^62.
 */
static uint64_t levels_bytes(uint64_t e, uint64_t w, uint64_t h, uint64_t d, uint32_t levels,
                             bool layers)
{
    uint64_t total = 0, b;

    if (!e || !w)
        return 0;
    for (uint32_t i = 0; i < levels; i++) {
        if (vgpu_span_1d(w, e, &b) || vgpu_span_1d(h ? h : 1, b, &b) ||
            vgpu_span_1d(d ? d : 1, b, &b) || total + b > INT64_MAX / 2)
            return 0;
        total += b;
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : h;
        d = d > 1 && !layers ? d / 2 : d;
    }
    return total;
}

enum array_op { ARRAY_2D, ARRAY_3D, ARRAY_MIPMAPPED };

/* cudaMallocArray, cudaMalloc3DArray, cudaMallocMipmappedArray: which one, by the call id. */
static int malloc_array(struct vgpu_session *s, struct vgpu_manual_call *c, enum array_op op)
{
    UNPACK(Vgpu__Manual__ArrayArgs, array_args, c);
    Vgpu__Manual__ArrayRet r = VGPU__MANUAL__ARRAY_RET__INIT;
    struct cudaChannelFormatDesc desc = { a->x, a->y, a->z, a->w, (enum cudaChannelFormatKind)a->f };
    struct cudaExtent ext = { a->width, a->height, a->depth };
    bool mipmapped = op == ARRAY_MIPMAPPED;
    bool layers = a->flags & (cudaArrayLayered | cudaArrayCubemap);
    int kind = mipmapped ? VGPU_CUDART_H_MIPMAPPED_ARRAY : VGPU_CUDART_H_ARRAY;
    uint32_t levels = mipmapped ? levels_made(a->width, a->height, a->depth, a->levels, layers) : 1;
    cudaMipmappedArray_t mm = NULL;
    cudaArray_t arr = NULL;
    uint64_t e = elem_bytes(a->x, a->y, a->z, a->w), bytes, h;
    int rc = cudaErrorInvalidValue;

    /* the charge: width x height x depth elements, each dimension at least 1, of every level */
    bytes = levels_bytes(e, a->width, a->height, a->depth, levels, layers);
    if (!bytes || (op == ARRAY_2D && a->depth)) {
        rc = e ? cudaErrorInvalidValue : cudaErrorInvalidChannelDescriptor;
        goto out;
    }
    if (vgpu_memory_charge(s, (int64_t)bytes)) {
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    rc = op == ARRAY_MIPMAPPED ? cudaMallocMipmappedArray(&mm, &desc, ext, levels, a->flags)
         : op == ARRAY_3D      ? cudaMalloc3DArray(&arr, &desc, ext, a->flags)
                               : cudaMallocArray(&arr, &desc, a->width, a->height, a->flags);
    h = mipmapped ? (uintptr_t)mm : (uintptr_t)arr;
    if (rc == cudaSuccess && (vgpu_handle_add(s, kind, h) || charge_keep(h, bytes))) {
        vgpu_handle_remove(s, kind, h);
        if (mipmapped)
            cudaFreeMipmappedArray(mm);
        else
            cudaFreeArray(arr);
        rc = cudaErrorMemoryAllocation;
    }
    if (rc != cudaSuccess) {
        vgpu_memory_charge(s, -(int64_t)bytes);
        goto out;
    }
    r.array = h;
    rc = reply(c, &r.base);
out:
    vgpu__manual__array_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

int vgpu_manual_malloc_array(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return malloc_array(s, c, ARRAY_2D);
}

int vgpu_manual_malloc_3d_array(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return malloc_array(s, c, ARRAY_3D);
}

int vgpu_manual_malloc_mipmapped(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return malloc_array(s, c, ARRAY_MIPMAPPED);
}

/* The level arrays handed out, by their mipmapped array (one session per process). */
static struct level { uint64_t mipmapped, array; } *level_arrays;
static int nlevel_arrays, cap_level_arrays;

int vgpu_manual_mipmapped_level(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__MipmappedLevelArgs, mipmapped_level_args, c);
    Vgpu__Manual__ArrayRet r = VGPU__MANUAL__ARRAY_RET__INIT;
    cudaArray_t arr = NULL;
    int rc = cudaErrorInvalidResourceHandle;

    if (!vgpu_handle_known(s, VGPU_CUDART_H_MIPMAPPED_ARRAY, a->mipmapped))
        goto out;
    rc = cudaGetMipmappedArrayLevel(&arr, (cudaMipmappedArray_const_t)(uintptr_t)a->mipmapped,
                                    a->level);
    if (rc != cudaSuccess)
        goto out;
    r.array = (uintptr_t)arr;
    if (!vgpu_handle_known(s, VGPU_CUDART_H_ARRAY, r.array)) {
        rc = cudaErrorMemoryAllocation;
        if (nlevel_arrays == cap_level_arrays) {
            int cap = cap_level_arrays ? 2 * cap_level_arrays : 32;
            struct level *p = realloc(level_arrays, (size_t)cap * sizeof(*p));

            if (!p)
                goto out;
            level_arrays = p;
            cap_level_arrays = cap;
        }
        if (vgpu_handle_add(s, VGPU_CUDART_H_ARRAY, r.array))
            goto out;
        level_arrays[nlevel_arrays++] = (struct level){ a->mipmapped, r.array };
    }
    rc = reply(c, &r.base);
out:
    vgpu__manual__mipmapped_level_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

int vgpu_manual_free_mipmapped(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__ArrayHandleArgs, array_handle_args, c);
    int rc = cudaSuccess;

    if (!a->array)
        goto out;
    rc = cudaErrorInvalidResourceHandle;
    if (!vgpu_handle_known(s, VGPU_CUDART_H_MIPMAPPED_ARRAY, a->array))
        goto out;
    if ((rc = cudaFreeMipmappedArray((cudaMipmappedArray_t)(uintptr_t)a->array)) != cudaSuccess)
        goto out;
    vgpu_handle_remove(s, VGPU_CUDART_H_MIPMAPPED_ARRAY, a->array);
    vgpu_memory_charge(s, -(int64_t)charge_take(a->array));
    for (int i = 0; i < nlevel_arrays;) {      /* its level_arrays went with it */
        if (level_arrays[i].mipmapped != a->array) {
            i++;
            continue;
        }
        vgpu_handle_remove(s, VGPU_CUDART_H_ARRAY, level_arrays[i].array);
        level_arrays[i] = level_arrays[--nlevel_arrays];
    }
out:
    vgpu__manual__array_handle_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

/* An array the session allocated itself (a mipmapped array's level is not one). */
static bool charged_array(uint64_t array)
{
    for (int i = 0; i < ncharged; i++)
        if (charged[i].array == array)
            return true;
    return false;
}

int vgpu_manual_free_array(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__ArrayHandleArgs, array_handle_args, c);
    int rc = cudaSuccess;

    if (a->array) {
        if (!vgpu_handle_known(s, VGPU_CUDART_H_ARRAY, a->array)) {
            rc = cudaErrorInvalidResourceHandle;
            goto out;
        }
        if (!charged_array(a->array)) {
            vgpu_log(VGPU_LOG_INFO, "cudaFreeArray refused: a mipmapped array's level goes with "
                     "the mipmapped array (cudaFreeMipmappedArray)");
            rc = cudaErrorInvalidValue;
            goto out;
        }
        rc = cudaFreeArray((cudaArray_t)(uintptr_t)a->array);
        if (rc == cudaSuccess) {
            vgpu_handle_remove(s, VGPU_CUDART_H_ARRAY, a->array);
            vgpu_memory_charge(s, -(int64_t)charge_take(a->array));
        }
    }
out:
    vgpu__manual__array_handle_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

/*
 * [w_offset, +width) bytes of rows [h_offset, +height) lie in the array:
 * its rows are its width in elements times an element's bytes; a 1D array
 * has one row.
 */
static bool in_array(cudaArray_t arr, uint64_t w_off, uint64_t h_off, uint64_t width, uint64_t height)
{
    struct cudaChannelFormatDesc d;
    struct cudaExtent ext;
    unsigned int flags;
    uint64_t e, row, rows;

    if (cudaArrayGetInfo(&d, &ext, &flags, arr) != cudaSuccess)
        return false;
    e = elem_bytes(d.x, d.y, d.z, d.w);
    if (!e || vgpu_span_1d(ext.width, e, &row))
        return false;
    rows = ext.height ? ext.height : 1;
    return w_off <= row && width <= row - w_off && h_off <= rows && height <= rows - h_off;
}

int vgpu_manual_array_copy(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__ArrayCopyArgs, array_copy_args, c);
    cudaArray_t arr = (cudaArray_t)(uintptr_t)a->array;
    cudaStream_t st = (cudaStream_t)(uintptr_t)a->stream;
    uint64_t bytes, span = 0;
    void *buf = NULL;
    int rc = cudaErrorInvalidValue;

    if (!vgpu_handle_known(s, VGPU_CUDART_H_ARRAY, a->array)) {
        rc = cudaErrorInvalidResourceHandle;
        goto out;
    }
    if (a->async && !stream_ok(s, a->stream)) {
        rc = cudaErrorInvalidResourceHandle;
        goto out;
    }
    if (vgpu_span_1d(a->height, a->width, &bytes) ||
        !in_array(arr, a->w_offset, a->h_offset, a->width, a->height))
        goto out;
    if (!bytes) {
        rc = cudaSuccess;
        goto out;
    }
    if (a->device) {
        /* the device side: its whole pitched span is the session's */
        if (vgpu_span_2d(a->pitch, a->width, a->height, &span) || !vgpu_range_check(s, a->ptr, span))
            goto out;
    } else {
        if (bytes > VGPU_CALL_MAX_BYTES || (a->to_array && (c->nseg != 1 || c->seg[0].len != bytes)))
            goto out;
        /* the host's rows travel with the call: a graph could not read them again */
        if (a->async && vgpu_graph_copy_refused(s, st, 0)) {
            rc = cudaErrorStreamCaptureUnsupported;
            goto out;
        }
        if (!a->to_array && (bytes > c->out_budget || !(buf = vgpu_arena_alloc(c->arena, bytes)))) {
            rc = cudaErrorMemoryAllocation;
            goto out;
        }
    }
    vgpu_work_begin(s);
    if (a->to_array && a->device)
        rc = a->async ? cudaMemcpy2DToArrayAsync(arr, a->w_offset, a->h_offset, (void *)(uintptr_t)a->ptr,
                                                 a->pitch, a->width, a->height,
                                                 cudaMemcpyDeviceToDevice, st)
                      : cudaMemcpy2DToArray(arr, a->w_offset, a->h_offset, (void *)(uintptr_t)a->ptr,
                                            a->pitch, a->width, a->height, cudaMemcpyDeviceToDevice);
    else if (a->to_array)
        rc = a->async ? cudaMemcpy2DToArrayAsync(arr, a->w_offset, a->h_offset, c->seg[0].data,
                                                 a->width, a->width, a->height,
                                                 cudaMemcpyHostToDevice, st)
                      : cudaMemcpy2DToArray(arr, a->w_offset, a->h_offset, c->seg[0].data, a->width,
                                            a->width, a->height, cudaMemcpyHostToDevice);
    else if (a->device)
        rc = a->async ? cudaMemcpy2DFromArrayAsync((void *)(uintptr_t)a->ptr, a->pitch, arr,
                                                   a->w_offset, a->h_offset, a->width, a->height,
                                                   cudaMemcpyDeviceToDevice, st)
                      : cudaMemcpy2DFromArray((void *)(uintptr_t)a->ptr, a->pitch, arr, a->w_offset,
                                              a->h_offset, a->width, a->height,
                                              cudaMemcpyDeviceToDevice);
    else   /* to the host: the rows come back with the reply, so the copy is done before it */
        rc = cudaMemcpy2DFromArray(buf, a->width, arr, a->w_offset, a->h_offset, a->width,
                                   a->height, cudaMemcpyDeviceToHost);
    vgpu_work_end(s, a->async ? (void *)st : NULL, rc == cudaSuccess);
    if (rc == cudaSuccess && buf) {
        c->out[0].iov_base = buf;
        c->out[0].iov_len = bytes;
        c->nout = 1;
    }
out:
    vgpu__manual__array_copy_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

/*
 * The 1D form's run: count bytes from w_off bytes into row h_off on, row
 * after row, lie in the array.
 */
static bool run_in_array(cudaArray_t arr, uint64_t w_off, uint64_t h_off, uint64_t count)
{
    struct cudaChannelFormatDesc d;
    struct cudaExtent ext;
    unsigned int flags;
    uint64_t e, row, total, start;

    if (cudaArrayGetInfo(&d, &ext, &flags, arr) != cudaSuccess || ext.depth > 1)
        return false;
    e = elem_bytes(d.x, d.y, d.z, d.w);
    if (!e || vgpu_span_1d(ext.width, e, &row) ||
        vgpu_span_1d(ext.height ? ext.height : 1, row, &total) || w_off > row ||
        h_off > (ext.height ? ext.height : 1))
        return false;
    start = h_off * row + w_off;        /* at most total + row: no overflow */
    return start <= total && count <= total - start;
}

/*
 * The box [x, +w) x [y, +h) x [z, +d) of elements lies in the array (a
 * height or depth of 0 is 1).  Arrays of different element sizes CUDA
 * refuses itself.
 */
static bool box_in_array(cudaArray_t arr, uint64_t x, uint64_t y, uint64_t z, uint64_t w,
                         uint64_t h, uint64_t d)
{
    struct cudaChannelFormatDesc f;
    struct cudaExtent ext;
    unsigned int flags;
    uint64_t rows, slices;

    if (cudaArrayGetInfo(&f, &ext, &flags, arr) != cudaSuccess)
        return false;
    rows = ext.height ? ext.height : 1;
    slices = ext.depth ? ext.depth : 1;
    return elem_bytes(f.x, f.y, f.z, f.w) && x <= ext.width && w <= ext.width - x && y <= rows && h <= rows - y &&
           z <= slices && d <= slices - z;
}

/* Copies between two arrays of the session's, each side's extent checked against its array. */
int vgpu_manual_array_to_array(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__ArrayToArrayArgs, array_to_array_args, c);
    cudaArray_t dst = (cudaArray_t)(uintptr_t)a->dst, src = (cudaArray_t)(uintptr_t)a->src;
    cudaStream_t st = (cudaStream_t)(uintptr_t)a->stream;
    enum cudaMemcpyKind kind = (enum cudaMemcpyKind)a->kind;
    bool ok;
    int rc = cudaErrorInvalidValue;

    if (!vgpu_handle_known(s, VGPU_CUDART_H_ARRAY, a->dst) ||
        !vgpu_handle_known(s, VGPU_CUDART_H_ARRAY, a->src) ||
        (a->async && !stream_ok(s, a->stream))) {
        rc = cudaErrorInvalidResourceHandle;
        goto out;
    }
    switch (a->dims) {
    case 1:
        ok = run_in_array(dst, a->dst_x, a->dst_y, a->width) &&
             run_in_array(src, a->src_x, a->src_y, a->width);
        break;
    case 2:
        ok = in_array(dst, a->dst_x, a->dst_y, a->width, a->height) &&
             in_array(src, a->src_x, a->src_y, a->width, a->height);
        break;
    case 3:
        ok = box_in_array(dst, a->dst_x, a->dst_y, a->dst_z, a->width, a->height, a->depth) &&
             box_in_array(src, a->src_x, a->src_y, a->src_z, a->width, a->height, a->depth);
        break;
    default:
        ok = false;
    }
    if (!ok || (a->async && a->dims != 3))     /* only the 3D form has an async one */
        goto out;
    vgpu_work_begin(s);
    if (a->dims == 1) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        rc = cudaMemcpyArrayToArray(dst, a->dst_x, a->dst_y, src, a->src_x, a->src_y, a->width, kind);
#pragma GCC diagnostic pop
    } else if (a->dims == 2) {
        rc = cudaMemcpy2DArrayToArray(dst, a->dst_x, a->dst_y, src, a->src_x, a->src_y, a->width,
                                      a->height, kind);
    } else {
        struct cudaMemcpy3DParms p = { 0 };

        p.srcArray = src;
        p.srcPos = (struct cudaPos){ a->src_x, a->src_y, a->src_z };
        p.dstArray = dst;
        p.dstPos = (struct cudaPos){ a->dst_x, a->dst_y, a->dst_z };
        p.extent = (struct cudaExtent){ a->width, a->height, a->depth };
        p.kind = kind;
        rc = a->async ? cudaMemcpy3DAsync(&p, st) : cudaMemcpy3D(&p);
    }
    vgpu_work_end(s, a->async ? (void *)st : NULL, rc == cudaSuccess);
out:
    vgpu__manual__array_to_array_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

/* The resource is the session's: its array, or device memory whose whole span it holds. */
static bool resource_ok(struct vgpu_session *s, const struct cudaResourceDesc *r, bool surface)
{
    uint64_t e, row, span;

    switch (r->resType) {
    case cudaResourceTypeArray:
        return vgpu_handle_known(s, VGPU_CUDART_H_ARRAY, (uintptr_t)r->res.array.array);
    case cudaResourceTypeLinear:
        return !surface && vgpu_range_check(s, (uintptr_t)r->res.linear.devPtr,
                                            r->res.linear.sizeInBytes);
    case cudaResourceTypePitch2D:
        e = elem_bytes(r->res.pitch2D.desc.x, r->res.pitch2D.desc.y, r->res.pitch2D.desc.z,
                       r->res.pitch2D.desc.w);
        return !surface && e && !vgpu_span_1d(r->res.pitch2D.width, e, &row) &&
               !vgpu_span_2d(r->res.pitch2D.pitchInBytes, row, r->res.pitch2D.height, &span) &&
               vgpu_range_check(s, (uintptr_t)r->res.pitch2D.devPtr, span);
    case cudaResourceTypeMipmappedArray:
        return vgpu_handle_known(s, VGPU_CUDART_H_MIPMAPPED_ARRAY,
                                 (uintptr_t)r->res.mipmap.mipmap);
    default:
        return false;
    }
}

int vgpu_manual_texture(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__TextureArgs, texture_args, c);
    Vgpu__Manual__TextureRet r = VGPU__MANUAL__TEXTURE_RET__INIT;
    struct cudaResourceDesc res;
    struct cudaTextureDesc tex;
    struct cudaResourceViewDesc view;
    int rc = cudaErrorInvalidValue;

    if (a->res_desc.len != sizeof(res) ||
        (!a->surface && a->tex_desc.len != sizeof(tex)) ||
        (a->view_desc.len && (a->surface || a->view_desc.len != sizeof(view))))
        goto out;
    memcpy(&res, a->res_desc.data, sizeof(res));
    if (!resource_ok(s, &res, a->surface)) {
        vgpu_log(VGPU_LOG_INFO, "%s refused: its resource is not the session's",
                 a->surface ? "cudaCreateSurfaceObject" : "cudaCreateTextureObject");
        rc = res.resType == cudaResourceTypeArray || res.resType == cudaResourceTypeMipmappedArray
             ? cudaErrorInvalidResourceHandle : cudaErrorInvalidValue;
        goto out;
    }
    if (a->surface) {
        cudaSurfaceObject_t o = 0;

        rc = cudaCreateSurfaceObject(&o, &res);
        if (rc == cudaSuccess && vgpu_handle_add(s, VGPU_CUDART_H_SURFACE_OBJECT, o)) {
            cudaDestroySurfaceObject(o);
            rc = cudaErrorMemoryAllocation;
        }
        r.object = o;
    } else {
        cudaTextureObject_t o = 0;

        memcpy(&tex, a->tex_desc.data, sizeof(tex));
        if (a->view_desc.len)
            memcpy(&view, a->view_desc.data, sizeof(view));
        rc = cudaCreateTextureObject(&o, &res, &tex, a->view_desc.len ? &view : NULL);
        if (rc == cudaSuccess && vgpu_handle_add(s, VGPU_CUDART_H_TEXTURE_OBJECT, o)) {
            cudaDestroyTextureObject(o);
            rc = cudaErrorMemoryAllocation;
        }
        r.object = o;
    }
    if (rc == cudaSuccess)
        rc = reply(c, &r.base);
out:
    vgpu__manual__texture_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}
