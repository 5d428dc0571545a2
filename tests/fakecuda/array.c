/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CUDA arrays, texture and surface objects in the fake: an array is host
 * memory of this process with its channel format and extent (rows of
 * width elements, height rows, 1 for a 1D array); copies check every
 * offset and extent as the real runtime does (cudaErrorInvalidValue),
 * between two arrays too (cudaMemcpy3D and its async form only so); a
 * texture or surface object is a record of its descriptors whose resource
 * must be an array of the fake's or its device memory.  The fake kernel
 * fake_tex_read (exec.c) reads a texture's texels in row order.  A
 * mipmapped array is its levels, each an array of its own (each dimension
 * halved, at least 1) that cudaFreeArray refuses: they go with it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fakecuda_internal.h"

struct fake_array {
    struct cudaChannelFormatDesc desc;
    size_t width, height, depth, elem;
    unsigned int flags;
    unsigned char *data;
    bool level;                /* a mipmapped array's: freed with it */
    struct fake_array *next;
};

struct fake_mipmapped {
    unsigned int levels;
    cudaArray_t level[16];
    struct fake_mipmapped *next;
};

static struct fake_mipmapped *mipmapped;

struct fake_object {
    struct cudaResourceDesc res;
    struct cudaTextureDesc tex;
    bool surface;
    struct fake_object *next;
};

static struct fake_array *arrays;
static struct fake_object *objects;

static struct fake_array *array_find(const void *h)
{
    for (struct fake_array *a = arrays; a; a = a->next)
        if ((const void *)a == h)
            return a;
    return NULL;
}

static cudaError_t array_new(cudaArray_t *out, const struct cudaChannelFormatDesc *desc, size_t w,
                             size_t h, size_t d, unsigned int flags)
{
    struct fake_array *a;
    size_t elem, n;

    if (!out || !desc || !w)
        return vgpu_fake_status(cudaErrorInvalidValue);
    elem = (size_t)(desc->x + desc->y + desc->z + desc->w) / 8;
    if (!elem || (desc->x + desc->y + desc->z + desc->w) % 8)
        return vgpu_fake_status(cudaErrorInvalidChannelDescriptor);
    n = w * elem * (h ? h : 1) * (d ? d : 1);
    if (n / w / elem != (h ? h : 1) * (d ? d : 1) || n > VGPU_FAKE_TOTAL_MEM)
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    if (!(a = calloc(1, sizeof(*a))) || !(a->data = calloc(1, n))) {
        free(a);
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    }
    a->desc = *desc;
    a->width = w;
    a->height = h;
    a->depth = d;
    a->elem = elem;
    a->flags = flags;
    a->next = arrays;
    arrays = a;
    *out = (cudaArray_t)(void *)a;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaMallocArray(cudaArray_t *array, const struct cudaChannelFormatDesc *desc,
                                        size_t width, size_t height, unsigned int flags)
{
    vgpu_fake_rt_ctx();
    return array_new(array, desc, width, height, 0, flags);
}

FAKE_EXPORT cudaError_t cudaMalloc3DArray(cudaArray_t *array, const struct cudaChannelFormatDesc *desc,
                                          struct cudaExtent extent, unsigned int flags)
{
    vgpu_fake_rt_ctx();
    return array_new(array, desc, extent.width, extent.height, extent.depth, flags);
}

static cudaError_t array_free(cudaArray_t array, bool level)
{
    for (struct fake_array **p = &arrays; *p; p = &(*p)->next)
        if ((void *)*p == (void *)array && (*p)->level == level) {
            struct fake_array *a = *p;

            *p = a->next;
            free(a->data);
            free(a);
            return cudaSuccess;
        }
    return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, "cudaFreeArray",
                            "unknown array %p (or a mipmapped array's level)", (void *)array);
}

FAKE_EXPORT cudaError_t cudaFreeArray(cudaArray_t array)
{
    vgpu_fake_rt_ctx();
    return array ? array_free(array, false) : cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaMallocMipmappedArray(cudaMipmappedArray_t *mipmappedArray,
                                                 const struct cudaChannelFormatDesc *desc,
                                                 struct cudaExtent extent, unsigned int numLevels,
                                                 unsigned int flags)
{
    struct fake_mipmapped *m;
    size_t w = extent.width, h = extent.height, d = extent.depth, big;
    unsigned int most = 1;
    cudaError_t st;

    bool layers = flags & (cudaArrayLayered | cudaArrayCubemap);

    vgpu_fake_rt_ctx();
    big = w > h ? w : h;
    if (!layers && d > big)
        big = d;
    while (big >> most)
        most++;
    /* clamped to [1, 1 + log2 of the largest dimension], as CUDA does */
    numLevels = numLevels < 1 ? 1 : numLevels > most ? most : numLevels;
    if (!mipmappedArray || numLevels > 16)
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (!(m = calloc(1, sizeof(*m))))
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    for (unsigned int i = 0; i < numLevels; i++) {
        if ((st = array_new(&m->level[i], desc, w, h, d, flags))) {
            while (i--)
                array_free(m->level[i], true);
            free(m);
            return st;
        }
        ((struct fake_array *)(void *)m->level[i])->level = true;
        m->levels = i + 1;
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : h;
        d = d > 1 && !layers ? d / 2 : d;
    }
    m->next = mipmapped;
    mipmapped = m;
    *mipmappedArray = (cudaMipmappedArray_t)(void *)m;
    return cudaSuccess;
}

static struct fake_mipmapped *mipmapped_find(cudaMipmappedArray_const_t h)
{
    for (struct fake_mipmapped *m = mipmapped; m; m = m->next)
        if ((const void *)m == (const void *)h)
            return m;
    return NULL;
}

FAKE_EXPORT cudaError_t cudaGetMipmappedArrayLevel(cudaArray_t *levelArray,
                                                   cudaMipmappedArray_const_t mipmappedArray,
                                                   unsigned int level)
{
    struct fake_mipmapped *m;

    vgpu_fake_rt_ctx();
    if (!(m = mipmapped_find(mipmappedArray)))
        return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, "cudaGetMipmappedArrayLevel",
                                "unknown mipmapped array %p", (const void *)mipmappedArray);
    if (!levelArray || level >= m->levels)
        return vgpu_fake_status(cudaErrorInvalidValue);
    *levelArray = m->level[level];
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaFreeMipmappedArray(cudaMipmappedArray_t mipmappedArray)
{
    vgpu_fake_rt_ctx();
    if (!mipmappedArray)
        return cudaSuccess;
    for (struct fake_mipmapped **p = &mipmapped; *p; p = &(*p)->next)
        if ((void *)*p == (void *)mipmappedArray) {
            struct fake_mipmapped *m = *p;

            *p = m->next;
            for (unsigned int i = 0; i < m->levels; i++)
                array_free(m->level[i], true);
            free(m);
            return cudaSuccess;
        }
    return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, "cudaFreeMipmappedArray",
                            "unknown mipmapped array %p", (void *)mipmappedArray);
}

FAKE_EXPORT cudaError_t cudaArrayGetInfo(struct cudaChannelFormatDesc *desc, struct cudaExtent *extent,
                                         unsigned int *flags, cudaArray_t array)
{
    struct fake_array *a;

    vgpu_fake_rt_ctx();
    if (!(a = array_find(array)))
        return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, "cudaArrayGetInfo",
                                "unknown array %p", (void *)array);
    if (desc)
        *desc = a->desc;
    if (extent)
        *extent = (struct cudaExtent){ a->width, a->height, a->depth };
    if (flags)
        *flags = a->flags;
    return cudaSuccess;
}

/* A sparse array's tiles are 64 KiB, shaped by the element's size (1, 2, 4, 8, 16 bytes). */
static void sparse_tile(const struct fake_array *a, struct cudaArraySparseProperties *p)
{
    static const unsigned int flat[5][2] = { { 256, 256 }, { 256, 128 }, { 128, 128 },
                                             { 128, 64 }, { 64, 64 } };
    static const unsigned int cube[5][3] = { { 64, 32, 32 }, { 32, 32, 32 }, { 32, 32, 16 },
                                             { 32, 16, 16 }, { 16, 16, 16 } };
    unsigned int i = 0;

    while (i < 4 && (1u << i) < a->elem)
        i++;
    memset(p, 0, sizeof(*p));
    p->tileExtent.width = a->depth ? cube[i][0] : flat[i][0];
    p->tileExtent.height = a->depth ? cube[i][1] : flat[i][1];
    p->tileExtent.depth = a->depth ? cube[i][2] : 1;
}

FAKE_EXPORT cudaError_t cudaArrayGetSparseProperties(struct cudaArraySparseProperties *sparseProperties,
                                                     cudaArray_t array)
{
    struct fake_array *a;

    vgpu_fake_rt_ctx();
    if (!(a = array_find(array)))
        return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, "cudaArrayGetSparseProperties",
                                "unknown array %p", (void *)array);
    if (!sparseProperties || !(a->flags & cudaArraySparse))
        return vgpu_fake_status(cudaErrorInvalidValue);
    sparse_tile(a, sparseProperties);
    return cudaSuccess;
}

/* The mip tail: the levels from the first smaller than a tile in width or height, one tile. */
FAKE_EXPORT cudaError_t cudaMipmappedArrayGetSparseProperties(
    struct cudaArraySparseProperties *sparseProperties, cudaMipmappedArray_t mipmap)
{
    struct fake_mipmapped *m;
    struct fake_array *a;
    unsigned int l;

    vgpu_fake_rt_ctx();
    for (m = mipmapped; m && (void *)m != (void *)mipmap; m = m->next)
        ;
    if (!m)
        return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, "cudaMipmappedArrayGetSparseProperties",
                                "unknown mipmapped array %p", (void *)mipmap);
    a = (struct fake_array *)(void *)m->level[0];
    if (!sparseProperties || !(a->flags & cudaArraySparse))
        return vgpu_fake_status(cudaErrorInvalidValue);
    sparse_tile(a, sparseProperties);
    for (l = 0; l < m->levels; l++) {
        a = (struct fake_array *)(void *)m->level[l];
        if (a->width < sparseProperties->tileExtent.width ||
            (a->height ? a->height : 1) < sparseProperties->tileExtent.height)
            break;
    }
    sparseProperties->miptailFirstLevel = l;
    sparseProperties->miptailSize = l < m->levels ? 64 << 10 : 0;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaGetChannelDesc(struct cudaChannelFormatDesc *desc, cudaArray_const_t array)
{
    return cudaArrayGetInfo(desc, NULL, NULL, (cudaArray_t)array);
}

/* The array's rows [h, +height) at byte w, width bytes each, or NULL when out of it. */
static unsigned char *array_at(struct fake_array *a, size_t w, size_t h, size_t width, size_t height)
{
    size_t row = a->width * a->elem, rows = a->height ? a->height : 1;

    if (w > row || width > row - w || h > rows || height > rows - h)
        return NULL;
    return a->data + h * row + w;
}

static cudaError_t array_copy(const char *fn, cudaArray_const_t array, size_t w, size_t h, void *mem,
                              size_t pitch, size_t width, size_t height, enum cudaMemcpyKind kind,
                              bool to_array)
{
    struct fake_array *a = array_find(array);
    unsigned char *at;
    bool dev = kind == cudaMemcpyDeviceToDevice;

    if (!a)
        return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, fn, "unknown array %p", (void *)array);
    if (kind != cudaMemcpyDeviceToDevice && kind != cudaMemcpyDefault &&
        kind != (to_array ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost))
        return vgpu_fake_status(cudaErrorInvalidMemcpyDirection);
    if (width > pitch)
        return vgpu_fake_status(cudaErrorInvalidPitchValue);
    if (!width || !height)
        return cudaSuccess;
    if (!(at = array_at(a, w, h, width, height)))
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (dev && !vgpu_fake_is_dev(mem, (height - 1) * pitch + width))
        return vgpu_fake_refuse(cudaErrorInvalidValue, fn, "%p is not device memory", mem);
    for (size_t y = 0; y < height; y++) {
        unsigned char *row = at + y * a->width * a->elem;

        if (to_array)
            memcpy(row, (const unsigned char *)mem + y * pitch, width);
        else
            memcpy((unsigned char *)mem + y * pitch, row, width);
    }
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaMemcpy2DToArray(cudaArray_t dst, size_t wOffset, size_t hOffset,
                                            const void *src, size_t spitch, size_t width,
                                            size_t height, enum cudaMemcpyKind kind)
{
    vgpu_fake_rt_ctx();
    return array_copy("cudaMemcpy2DToArray", dst, wOffset, hOffset, (void *)src, spitch, width,
                      height, kind, true);
}

FAKE_EXPORT cudaError_t cudaMemcpy2DToArrayAsync(cudaArray_t dst, size_t wOffset, size_t hOffset,
                                                 const void *src, size_t spitch, size_t width,
                                                 size_t height, enum cudaMemcpyKind kind,
                                                 cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaMemcpy2DToArrayAsync", stream))
        return cudaErrorInvalidResourceHandle;
    return array_copy("cudaMemcpy2DToArrayAsync", dst, wOffset, hOffset, (void *)src, spitch,
                      width, height, kind, true);
}

FAKE_EXPORT cudaError_t cudaMemcpy2DFromArray(void *dst, size_t dpitch, cudaArray_const_t src,
                                              size_t wOffset, size_t hOffset, size_t width,
                                              size_t height, enum cudaMemcpyKind kind)
{
    vgpu_fake_rt_ctx();
    return array_copy("cudaMemcpy2DFromArray", src, wOffset, hOffset, dst, dpitch, width, height,
                      kind, false);
}

FAKE_EXPORT cudaError_t cudaMemcpy2DFromArrayAsync(void *dst, size_t dpitch, cudaArray_const_t src,
                                                   size_t wOffset, size_t hOffset, size_t width,
                                                   size_t height, enum cudaMemcpyKind kind,
                                                   cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaMemcpy2DFromArrayAsync", stream))
        return cudaErrorInvalidResourceHandle;
    return array_copy("cudaMemcpy2DFromArrayAsync", src, wOffset, hOffset, dst, dpitch, width,
                      height, kind, false);
}

/* ---- between two arrays ---- */

static bool kind_ok(enum cudaMemcpyKind kind)
{
    /* every direction: CUDA corrects one that would put an array on the host */
    return kind >= cudaMemcpyHostToHost && kind <= cudaMemcpyDefault;
}

FAKE_EXPORT cudaError_t cudaMemcpy2DArrayToArray(cudaArray_t dst, size_t wOffsetDst, size_t hOffsetDst,
                                                 cudaArray_const_t src, size_t wOffsetSrc,
                                                 size_t hOffsetSrc, size_t width, size_t height,
                                                 enum cudaMemcpyKind kind)
{
    struct fake_array *d, *s;
    unsigned char *to, *from;

    vgpu_fake_rt_ctx();
    if (!(d = array_find(dst)) || !(s = array_find(src)))
        return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, "cudaMemcpy2DArrayToArray",
                                "unknown array %p or %p", (void *)dst, (const void *)src);
    if (!kind_ok(kind))
        return vgpu_fake_status(cudaErrorInvalidMemcpyDirection);
    if (!width || !height)
        return cudaSuccess;
    if (!(to = array_at(d, wOffsetDst, hOffsetDst, width, height)) ||
        !(from = array_at(s, wOffsetSrc, hOffsetSrc, width, height)))
        return vgpu_fake_status(cudaErrorInvalidValue);
    for (size_t y = 0; y < height; y++)
        memmove(to + y * d->width * d->elem, from + y * s->width * s->elem, width);
    return cudaSuccess;
}

/* The 1D form: count bytes from each offset on, row after row of each array. */
FAKE_EXPORT cudaError_t cudaMemcpyArrayToArray(cudaArray_t dst, size_t wOffsetDst, size_t hOffsetDst,
                                               cudaArray_const_t src, size_t wOffsetSrc,
                                               size_t hOffsetSrc, size_t count,
                                               enum cudaMemcpyKind kind)
{
    struct fake_array *d, *s;
    size_t dat, sat, dtotal, stotal;

    vgpu_fake_rt_ctx();
    if (!(d = array_find(dst)) || !(s = array_find(src)))
        return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, "cudaMemcpyArrayToArray",
                                "unknown array %p or %p", (void *)dst, (const void *)src);
    if (!kind_ok(kind))
        return vgpu_fake_status(cudaErrorInvalidMemcpyDirection);
    dtotal = d->width * d->elem * (d->height ? d->height : 1);
    stotal = s->width * s->elem * (s->height ? s->height : 1);
    if (d->depth > 1 || s->depth > 1 || wOffsetDst > d->width * d->elem ||
        wOffsetSrc > s->width * s->elem || hOffsetDst > dtotal / (d->width * d->elem) ||
        hOffsetSrc > stotal / (s->width * s->elem))
        return vgpu_fake_status(cudaErrorInvalidValue);
    dat = hOffsetDst * d->width * d->elem + wOffsetDst;
    sat = hOffsetSrc * s->width * s->elem + wOffsetSrc;
    if (dat > dtotal || count > dtotal - dat || sat > stotal || count > stotal - sat)
        return vgpu_fake_status(cudaErrorInvalidValue);
    memmove(d->data + dat, s->data + sat, count);      /* rows are contiguous here */
    return cudaSuccess;
}

/*
 * cudaMemcpy3D and cudaMemcpy3DAsync as the server calls them: between two
 * arrays only (every other 3D copy is one 2D copy per slice in the shim).
 */
static cudaError_t copy3d_arrays(const char *fn, const struct cudaMemcpy3DParms *p)
{
    struct fake_array *d, *s;
    struct cudaExtent e;

    if (!p)
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (!p->srcArray || !p->dstArray || p->srcPtr.ptr || p->dstPtr.ptr)
        return vgpu_fake_refuse(cudaErrorNotSupported, fn, "only copies between arrays are emulated");
    if (!(d = array_find(p->dstArray)) || !(s = array_find(p->srcArray)))
        return vgpu_fake_refuse(cudaErrorInvalidResourceHandle, fn, "unknown array %p or %p",
                                (void *)p->dstArray, (void *)p->srcArray);
    if (!kind_ok(p->kind))
        return vgpu_fake_status(cudaErrorInvalidMemcpyDirection);
    e = p->extent;
    if (!e.width || !e.height || !e.depth)
        return cudaSuccess;
    if (d->elem != s->elem)
        return vgpu_fake_status(cudaErrorInvalidValue);
    for (int side = 0; side < 2; side++) {
        struct fake_array *a = side ? s : d;
        struct cudaPos at = side ? p->srcPos : p->dstPos;
        size_t rows = a->height ? a->height : 1, slices = a->depth ? a->depth : 1;

        if (at.x > a->width || e.width > a->width - at.x || at.y > rows || e.height > rows - at.y ||
            at.z > slices || e.depth > slices - at.z)
            return vgpu_fake_status(cudaErrorInvalidValue);
    }
    for (size_t z = 0; z < e.depth; z++)
        for (size_t y = 0; y < e.height; y++) {
            size_t drow = d->width * d->elem, srow = s->width * s->elem;
            size_t drows = d->height ? d->height : 1, srows = s->height ? s->height : 1;

            memmove(d->data + ((p->dstPos.z + z) * drows + p->dstPos.y + y) * drow + p->dstPos.x * d->elem,
                    s->data + ((p->srcPos.z + z) * srows + p->srcPos.y + y) * srow + p->srcPos.x * s->elem,
                    e.width * d->elem);
        }
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaMemcpy3D(const struct cudaMemcpy3DParms *p)
{
    vgpu_fake_rt_ctx();
    return copy3d_arrays("cudaMemcpy3D", p);
}

FAKE_EXPORT cudaError_t cudaMemcpy3DAsync(const struct cudaMemcpy3DParms *p, cudaStream_t stream)
{
    vgpu_fake_rt_ctx();
    if (!vgpu_fake_stream_ok("cudaMemcpy3DAsync", stream))
        return cudaErrorInvalidResourceHandle;
    return copy3d_arrays("cudaMemcpy3DAsync", p);
}

/* ---- texture and surface objects ---- */

static struct fake_object *object_find(unsigned long long h, bool surface)
{
    for (struct fake_object *o = objects; o; o = o->next)
        if ((uintptr_t)o == h && o->surface == surface)
            return o;
    return NULL;
}

static cudaError_t object_new(const char *fn, unsigned long long *out,
                              const struct cudaResourceDesc *res, const struct cudaTextureDesc *tex,
                              bool surface)
{
    struct fake_object *o;

    if (!out || !res || (!surface && !tex))
        return vgpu_fake_status(cudaErrorInvalidValue);
    if (res->resType == cudaResourceTypeArray ? !array_find(res->res.array.array)
        : surface || (res->resType == cudaResourceTypeLinear
                      ? !vgpu_fake_is_dev(res->res.linear.devPtr, res->res.linear.sizeInBytes)
                      : res->resType != cudaResourceTypePitch2D))
        return vgpu_fake_refuse(cudaErrorInvalidValue, fn, "its resource is not this process's");
    if (!(o = calloc(1, sizeof(*o))))
        return vgpu_fake_status(cudaErrorMemoryAllocation);
    o->res = *res;
    if (tex)
        o->tex = *tex;
    o->surface = surface;
    o->next = objects;
    objects = o;
    *out = (uintptr_t)o;
    return cudaSuccess;
}

static cudaError_t object_free(const char *fn, unsigned long long h, bool surface)
{
    for (struct fake_object **p = &objects; *p; p = &(*p)->next)
        if ((uintptr_t)*p == h && (*p)->surface == surface) {
            struct fake_object *o = *p;

            *p = o->next;
            free(o);
            return cudaSuccess;
        }
    return vgpu_fake_refuse(cudaErrorInvalidValue, fn, "unknown object %#llx", h);
}

FAKE_EXPORT cudaError_t cudaCreateTextureObject(cudaTextureObject_t *pTexObject,
                                                const struct cudaResourceDesc *pResDesc,
                                                const struct cudaTextureDesc *pTexDesc,
                                                const struct cudaResourceViewDesc *pResViewDesc)
{
    vgpu_fake_rt_ctx();
    (void)pResViewDesc;
    return object_new("cudaCreateTextureObject", pTexObject, pResDesc, pTexDesc, false);
}

FAKE_EXPORT cudaError_t cudaDestroyTextureObject(cudaTextureObject_t texObject)
{
    vgpu_fake_rt_ctx();
    return object_free("cudaDestroyTextureObject", texObject, false);
}

FAKE_EXPORT cudaError_t cudaGetTextureObjectTextureDesc(struct cudaTextureDesc *pTexDesc,
                                                        cudaTextureObject_t texObject)
{
    struct fake_object *o;

    vgpu_fake_rt_ctx();
    if (!pTexDesc || !(o = object_find(texObject, false)))
        return vgpu_fake_status(cudaErrorInvalidValue);
    *pTexDesc = o->tex;
    return cudaSuccess;
}

FAKE_EXPORT cudaError_t cudaCreateSurfaceObject(cudaSurfaceObject_t *pSurfObject,
                                                const struct cudaResourceDesc *pResDesc)
{
    vgpu_fake_rt_ctx();
    return object_new("cudaCreateSurfaceObject", pSurfObject, pResDesc, NULL, true);
}

FAKE_EXPORT cudaError_t cudaDestroySurfaceObject(cudaSurfaceObject_t surfObject)
{
    vgpu_fake_rt_ctx();
    return object_free("cudaDestroySurfaceObject", surfObject, true);
}

/* fake_tex_read's source: n ints of the texture's texels in row order, or NULL. */
const void *vgpu_fake_texels(unsigned long long tex, size_t n)
{
    struct fake_object *o = object_find(tex, false);
    struct fake_array *a;

    if (!o)
        return NULL;
    if (o->res.resType == cudaResourceTypeLinear)
        return n * sizeof(int) <= o->res.res.linear.sizeInBytes ? o->res.res.linear.devPtr : NULL;
    if (o->res.resType != cudaResourceTypeArray || !(a = array_find(o->res.res.array.array)))
        return NULL;
    return n * sizeof(int) <= a->width * a->elem * (a->height ? a->height : 1) ? a->data : NULL;
}
