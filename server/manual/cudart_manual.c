/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Server side of the hand-written calls (spec: manual).  Kernels and
 * variables are registered with the real runtime under stand-in host
 * addresses the server owns, so every runtime entry point that takes a host
 * stub or a symbol (launches, symbol copies, attributes, occupancy) works as
 * it does natively.  Every device range and handle is checked against the
 * session's tables first.
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cudart_calltable.h"
#include "manual.pb-c.h"
#include "server_internal.h"
#include "launch_args.h"
#include "vgpu/sha256.h"

/* The runtime's registration entry points (crt/host_runtime.h, C++ only). */
extern void **__cudaRegisterFatBinary(void *fatCubin);
extern void __cudaRegisterFatBinaryEnd(void **handle);
extern void __cudaRegisterFunction(void **handle, const char *hostFun, char *deviceFun,
                                   const char *deviceName, int thread_limit, uint3 *tid,
                                   uint3 *bid, dim3 *bDim, dim3 *gDim, int *wSize);
extern void __cudaRegisterVar(void **handle, char *hostVar, char *deviceAddress,
                              const char *deviceName, int ext, size_t size, int constant,
                              int global);
extern cudaError_t cudaLaunchKernel_ptsz(const void *func, dim3 gridDim, dim3 blockDim,
                                         void **args, size_t sharedMem, cudaStream_t stream);

#define FATBIN_WRAPPER_MAGIC 0x466243B1u
#define FATBIN_MAX (512u << 20)

struct fatbin_wrapper {
    int magic;
    int version;
    const void *data;
    void *filename_or_fatbins;
};

/* The arguments, unpacked into the call's arena (no malloc per call). */
#define UNPACK(type, fn, c)                                                   \
    ProtobufCAllocator unpack_alloc_ = { vgpu_arena_pb_alloc, vgpu_arena_pb_keep, (c)->arena }; \
    type *a = vgpu__manual__##fn##__unpack(&unpack_alloc_, (c)->args_len, (c)->args); \
    if (!a)                                                                   \
        return cudaErrorInvalidValue

/* Packs a result message into the call's arena. */
static int reply(struct vgpu_manual_call *c, const ProtobufCMessage *m)
{
    return vgpu_call_pack(c->arena, m, &c->ret, &c->ret_len) ? cudaErrorMemoryAllocation : 0;
}

static bool stream_ok(struct vgpu_session *s, uint64_t stream)
{
    return stream == 0 || stream == 1 || stream == 2 ||
           vgpu_handle_known(s, VGPU_CUDART_H_STREAM, stream);
}

static void hex(const uint8_t *h, char out[2 * VGPU_SHA256_LEN + 1])
{
    for (int i = 0; i < VGPU_SHA256_LEN; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

/* The cache holds images by content; a guest can only add images whose hash it cannot fake. */
static uint8_t *cache_load(struct vgpu_session *s, const uint8_t *sha, size_t size)
{
    char name[2 * VGPU_SHA256_LEN + 1], path[4096];
    uint8_t got[VGPU_SHA256_LEN], *buf;
    FILE *f;

    hex(sha, name);
    snprintf(path, sizeof(path), "%s/%s.fatbin", s->cache_dir, name);
    f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf = malloc(size ? size : 1);
    if (buf && fread(buf, 1, size, f) == size && fgetc(f) == EOF) {
        vgpu_sha256(buf, size, got);
        if (!memcmp(got, sha, VGPU_SHA256_LEN)) {
            fclose(f);
            return buf;
        }
    }
    free(buf);
    fclose(f);
    return NULL;
}

static void cache_store(struct vgpu_session *s, const uint8_t *sha, const uint8_t *img, size_t size)
{
    char name[2 * VGPU_SHA256_LEN + 1], path[4096], tmp[4200];
    int fd;

    hex(sha, name);
    snprintf(path, sizeof(path), "%s/%s.fatbin", s->cache_dir, name);
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return;
    if (write(fd, img, size) == (ssize_t)size && close(fd) == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

#define FATBIN_MAX_IMAGES 64

static int do_fatbin(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__FatbinArgs, fatbin_args, c);
    Vgpu__Manual__FatbinRet r = VGPU__MANUAL__FATBIN_RET__INIT;
    struct fatbin_wrapper *w = NULL;
    uint8_t **imgs = NULL, got[VGPU_SHA256_LEN];
    void **pre = NULL;
    size_t n = a->n_sha256;
    int rc = cudaErrorInvalidValue;

    if (n == 0 || n > FATBIN_MAX_IMAGES || a->n_size != n || (a->version != 1 && a->version != 2) ||
        (a->version == 1 && n != 1) || (a->with_image && (size_t)c->nseg != n))
        goto out;
    imgs = calloc(n + 1, sizeof(*imgs));
    pre = calloc(n + 1, sizeof(*pre));
    w = calloc(1, sizeof(*w));
    if (!imgs || !pre || !w) {
        rc = cudaErrorMemoryAllocation;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (a->sha256[i].len != VGPU_SHA256_LEN || a->size[i] == 0 || a->size[i] > FATBIN_MAX)
            goto fail;
        if (a->with_image) {
            if (c->seg[i].len != a->size[i])
                goto fail;
            vgpu_sha256(c->seg[i].data, a->size[i], got);
            if (memcmp(got, a->sha256[i].data, VGPU_SHA256_LEN))
                goto fail;
            if (!(imgs[i] = malloc(a->size[i]))) {
                rc = cudaErrorMemoryAllocation;
                goto fail;
            }
            memcpy(imgs[i], c->seg[i].data, a->size[i]);
            cache_store(s, got, imgs[i], a->size[i]);
            vgpu_log(VGPU_LOG_INFO, "fatbin image received: %llu bytes, now cached",
                     (unsigned long long)a->size[i]);
        } else if (!(imgs[i] = cache_load(s, a->sha256[i].data, a->size[i]))) {
            rc = reply(c, &r.base);     /* module 0: send the images */
            goto fail;
        } else {
            vgpu_log(VGPU_LOG_INFO, "fatbin image from the cache: %llu bytes",
                     (unsigned long long)a->size[i]);
        }
    }
    void *mods = realloc(s->modules, (size_t)(s->nmodules + 1) * sizeof(*s->modules));
    if (!mods) {
        rc = cudaErrorMemoryAllocation;
        goto fail;
    }
    s->modules = mods;
    for (size_t i = 1; i < n; i++)
        pre[i - 1] = imgs[i];
    w->magic = (int)FATBIN_WRAPPER_MAGIC;
    w->version = a->version;
    w->data = imgs[0];
    w->filename_or_fatbins = a->version == 2 ? pre : NULL;
    s->modules[s->nmodules].images = imgs;
    s->modules[s->nmodules].prelinked = pre;
    s->modules[s->nmodules].handle = __cudaRegisterFatBinary(w);
    s->modules[s->nmodules].ended = false;
    r.module = (uint64_t)++s->nmodules;
    vgpu_log(VGPU_LOG_DEBUG, "module %llu: %zu image(s)", (unsigned long long)r.module, n);
    rc = reply(c, &r.base);
    goto out;
fail:
    for (size_t i = 0; imgs && i < n; i++)
        free(imgs[i]);
    free(imgs);
    free(pre);
    free(w);
out:
    vgpu__manual__fatbin_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

static struct vgpu_module *module_of(struct vgpu_session *s, uint64_t id)
{
    return id >= 1 && id <= (uint64_t)s->nmodules ? &s->modules[id - 1] : NULL;
}

static int do_register(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__RegisterArgs, register_args, c);
    struct vgpu_module *m = module_of(s, a->module);
    struct vgpu_hostfn *fn;
    int rc = cudaErrorInvalidValue;

    if (!m || m->ended || !a->name || !*a->name || vgpu_hostfn_find(s, a->host) ||
        (a->is_var && (a->size == 0 || a->size > (1u << 30))))
        goto out;
    void *fns = realloc(s->fns, (size_t)(s->nfns + 1) * sizeof(*s->fns));
    if (!fns) {
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    s->fns = fns;
    fn = &s->fns[s->nfns];
    memset(fn, 0, sizeof(*fn));
    fn->guest = a->host;
    fn->module = (int)a->module;
    fn->is_var = a->is_var;
    /* A unique host address of ours, the runtime's key for this entry. */
    fn->fake = malloc(a->is_var ? a->size : 1);
    char *name = strdup(a->name);
    if (!fn->fake || !name) {
        free(fn->fake);
        free(name);
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    if (a->is_var)
        __cudaRegisterVar(m->handle, fn->fake, name, name, 0, a->size, a->constant, 0);
    else
        __cudaRegisterFunction(m->handle, fn->fake, name, name, -1, NULL, NULL, NULL, NULL, NULL);
    s->nfns++;
    rc = cudaSuccess;
out:
    vgpu__manual__register_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

static int do_fatbin_end(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__FatbinEndArgs, fatbin_end_args, c);
    struct vgpu_module *m = module_of(s, a->module);
    int rc = cudaErrorInvalidValue;

    if (m && !m->ended) {
        __cudaRegisterFatBinaryEnd(m->handle);
        m->ended = true;
        rc = cudaSuccess;
    }
    vgpu__manual__fatbin_end_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

static struct vgpu_hostfn *kernel_of(struct vgpu_session *s, uint64_t host)
{
    struct vgpu_hostfn *fn = vgpu_hostfn_find(s, host);

    return fn && !fn->is_var ? fn : NULL;
}

/* The kernel's parameter layout, from the runtime, cached. */
static int layout(struct vgpu_hostfn *fn)
{
    size_t off, size;
    int n = 0, st;

    if (fn->layout_known)
        return cudaSuccess;
    while ((st = cudaFuncGetParamInfo(fn->fake, (size_t)n, &off, &size)) == cudaSuccess) {
        uint32_t *o = realloc(fn->off, (size_t)(n + 1) * sizeof(*o));
        uint32_t *z = realloc(fn->size, (size_t)(n + 1) * sizeof(*z));

        if (o)
            fn->off = o;
        if (z)
            fn->size = z;
        if (!o || !z || n >= 4096)
            return cudaErrorMemoryAllocation;
        fn->off[n] = (uint32_t)off;
        fn->size[n] = (uint32_t)size;
        n++;
    }
    /* The end of the list is reported as an invalid index; anything else is real. */
    if (st != cudaErrorInvalidValue)
        return st;
    cudaGetLastError();
    fn->nparams = n;
    fn->layout_known = true;
    return cudaSuccess;
}

static int do_param_info(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__RegisterArgs, register_args, c);
    Vgpu__Manual__RegisterRet r = VGPU__MANUAL__REGISTER_RET__INIT;
    struct vgpu_hostfn *fn = kernel_of(s, a->host);
    int rc = cudaErrorInvalidDeviceFunction;

    if (fn && (rc = layout(fn)) == cudaSuccess) {
        r.n_param_offset = r.n_param_size = (size_t)fn->nparams;
        r.param_offset = fn->off;
        r.param_size = fn->size;
        rc = reply(c, &r.base);
    }
    vgpu__manual__register_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

static dim3 dim(const struct vgpu_dim3 *d)
{
    dim3 r = { 1, 1, 1 };

    if (d->present) {
        r.x = d->x;
        r.y = d->y;
        r.z = d->z;
    }
    return r;
}

static int do_launch(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    struct vgpu_launch_args a;
    struct vgpu_hostfn *fn;
    void *argv[512];
    int rc = cudaErrorInvalidDeviceFunction;

    /* the hottest call: its arguments are read without protobuf-c (launch_args.h) */
    if (vgpu_launch_args_read(c->args, c->args_len, &a))
        return cudaErrorInvalidValue;
    fn = kernel_of(s, a.host);
    if (!fn)
        return rc;
    if ((rc = layout(fn)) != cudaSuccess)
        return rc;
    if (!stream_ok(s, a.stream))
        return cudaErrorInvalidResourceHandle;
    if (fn->nparams > 512 || c->nseg != 1)
        return cudaErrorInvalidValue;
    for (int i = 0; i < fn->nparams; i++) {
        if ((uint64_t)fn->off[i] + fn->size[i] > c->seg[0].len)
            return cudaErrorInvalidValue;
        argv[i] = (uint8_t *)c->seg[0].data + fn->off[i];
    }
    vgpu_work_begin(s);
    if (a.cooperative)
        rc = cudaLaunchCooperativeKernel(fn->fake, dim(&a.grid), dim(&a.block), argv,
                                         a.shared_mem, (cudaStream_t)(uintptr_t)a.stream);
    else if (a.ptsz)
        rc = cudaLaunchKernel_ptsz(fn->fake, dim(&a.grid), dim(&a.block), argv, a.shared_mem,
                                   (cudaStream_t)(uintptr_t)a.stream);
    else
        rc = cudaLaunchKernel(fn->fake, dim(&a.grid), dim(&a.block), argv, a.shared_mem,
                              (cudaStream_t)(uintptr_t)a.stream);
    vgpu_work_end(s, (void *)(uintptr_t)a.stream, rc == cudaSuccess);
    return rc;
}

static int do_malloc(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__MallocArgs, malloc_args, c);
    Vgpu__Manual__MallocRet r = VGPU__MANUAL__MALLOC_RET__INIT;
    void *p = NULL;
    size_t pitch = 0;
    /* charged before the GPU is asked, so a request over the VM's limit never takes memory */
    uint64_t size = a->pitch ? a->width * a->height : a->size, padded = 0;
    int rc = cudaErrorMemoryAllocation;

    if ((a->pitch && a->height && a->width > UINT64_MAX / a->height) || size > INT64_MAX / 2)
        goto out;
    if (a->async && !stream_ok(s, a->stream)) {
        rc = cudaErrorInvalidResourceHandle;
        goto out;
    }
    if (vgpu_memory_charge(s, (int64_t)size))
        goto out;
    if (a->pitch)
        rc = cudaMallocPitch(&p, &pitch, a->width, a->height);
    else if (a->async)
        rc = cudaMallocAsync(&p, a->size, (cudaStream_t)(uintptr_t)a->stream);
    else
        rc = cudaMalloc(&p, a->size);
    if (rc != cudaSuccess || !p) {
        vgpu_memory_charge(s, -(int64_t)size);
        goto out;
    }
    if (a->pitch && (vgpu_span_1d(a->height, pitch, &padded) || padded > INT64_MAX / 2)) {
        vgpu_memory_charge(s, -(int64_t)size);
        cudaFree(p);
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    if (a->pitch && padded > size) {
        /* the padding rows got counts too */
        uint64_t more = padded - size;

        if (vgpu_memory_charge(s, (int64_t)more)) {
            vgpu_memory_charge(s, -(int64_t)size);
            cudaFree(p);
            rc = cudaErrorMemoryAllocation;
            goto out;
        }
        size += more;
    }
    if (vgpu_range_add(s, (uintptr_t)p, size, true)) {
        vgpu_memory_charge(s, -(int64_t)size);
        cudaFree(p);
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    r.ptr = (uintptr_t)p;
    r.pitch = pitch;
    rc = reply(c, &r.base);
out:
    vgpu__manual__malloc_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

static int do_free(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__FreeArgs, free_args, c);
    int rc;

    if (a->ptr && !vgpu_range_owned(s, a->ptr))
        rc = cudaErrorInvalidValue;
    else if (a->async && !stream_ok(s, a->stream))
        rc = cudaErrorInvalidResourceHandle;
    else if (a->async)
        rc = cudaFreeAsync((void *)(uintptr_t)a->ptr, (cudaStream_t)(uintptr_t)a->stream);
    else
        rc = cudaFree((void *)(uintptr_t)a->ptr);
    /* the range is forgotten only once CUDA has let go of it */
    if (rc == cudaSuccess && a->ptr) {
        vgpu_memory_charge(s, -(int64_t)vgpu_range_size(s, a->ptr));
        vgpu_range_remove(s, a->ptr);
    }
    vgpu__manual__free_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

/* The host side of a copy in a shared region: [off, off+len) inside region id. */
static void *region_span(struct vgpu_session *s, uint32_t id, uint64_t off, uint64_t len)
{
    struct vgpu_region *r = vgpu_region_find(s, id);

    if (!r || off > r->size || len > r->size - off)
        return NULL;
    return r->base + off;
}

static int copy_dir(struct vgpu_session *s, struct vgpu_manual_call *c,
                    const Vgpu__Manual__CopyArgs *a, cudaStream_t st, uint64_t bytes,
                    uint64_t dspan, uint64_t sspan);

static int do_copy(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__CopyArgs, copy_args, c);
    cudaStream_t st = (cudaStream_t)(uintptr_t)a->stream;
    uint64_t bytes = a->is_2d ? a->count * a->height : a->count, dspan, sspan;
    int rc = cudaErrorInvalidValue;

    if (a->async && !stream_ok(s, a->stream)) {
        rc = cudaErrorInvalidResourceHandle;
        goto out;
    }
    if (a->is_2d && a->count && a->height > UINT64_MAX / a->count)
        goto out;
    /* bytes that travel are bounded; a device-to-device copy or a shared region carries none */
    if (a->dir != VGPU__MANUAL__DIRECTION__DIR_D2D && !a->region && bytes > VGPU_CALL_MAX_BYTES)
        goto out;
    dspan = sspan = bytes;
    /* pitched spans: (height - 1) * pitch + width, width <= pitch, no overflow */
    if (a->is_2d && (vgpu_span_2d(a->dpitch, a->count, a->height, &dspan) ||
                     vgpu_span_2d(a->spitch, a->count, a->height, &sspan)))
        goto out;
    vgpu_work_begin(s);
    rc = copy_dir(s, c, a, st, bytes, dspan, sspan);
    vgpu_work_end(s, a->async ? (void *)st : NULL, rc == cudaSuccess);
    /*
     * A synchronous copy to the host has finished, and waited for the work
     * before it on the default stream: no event needs to tell.
     */
    if (rc == cudaSuccess && !a->async && a->dir == VGPU__MANUAL__DIRECTION__DIR_D2H)
        vgpu_work_synced(s, NULL, 0);
out:
    vgpu__manual__copy_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

/* One checked copy in the direction a names; the status CUDA gave, or why not. */
static int copy_dir(struct vgpu_session *s, struct vgpu_manual_call *c,
                    const Vgpu__Manual__CopyArgs *a, cudaStream_t st, uint64_t bytes,
                    uint64_t dspan, uint64_t sspan)
{
    void *dst = (void *)(uintptr_t)a->dst, *buf;
    const void *src = (const void *)(uintptr_t)a->src;
    int rc = cudaErrorInvalidValue;

    switch (a->dir) {
    case VGPU__MANUAL__DIRECTION__DIR_H2D:
        if (a->region) {
            /* from shared, pinned host memory: DMA, no bytes in the frame */
            const void *from = region_span(s, a->region, a->region_offset, bytes);

            if (!from || c->nseg != 0 || a->is_2d || !vgpu_range_check(s, a->dst, dspan))
                goto out;
            rc = a->async ? cudaMemcpyAsync(dst, from, bytes, cudaMemcpyHostToDevice, st)
                          : cudaMemcpy(dst, from, bytes, cudaMemcpyHostToDevice);
            break;
        }
        if (c->nseg != 1 || c->seg[0].len != bytes || !vgpu_range_check(s, a->dst, dspan))
            goto out;
        if (a->is_2d)
            rc = a->async ? cudaMemcpy2DAsync(dst, a->dpitch, c->seg[0].data, a->count, a->count,
                                              a->height, cudaMemcpyHostToDevice, st)
                          : cudaMemcpy2D(dst, a->dpitch, c->seg[0].data, a->count, a->count,
                                         a->height, cudaMemcpyHostToDevice);
        else
            rc = a->async ? cudaMemcpyAsync(dst, c->seg[0].data, bytes, cudaMemcpyHostToDevice, st)
                          : cudaMemcpy(dst, c->seg[0].data, bytes, cudaMemcpyHostToDevice);
        break;
    case VGPU__MANUAL__DIRECTION__DIR_D2H:
        if (a->region) {
            void *to = region_span(s, a->region, a->region_offset, bytes);

            if (!to || a->is_2d || !vgpu_range_check(s, a->src, sspan))
                goto out;
            rc = a->async ? cudaMemcpyAsync(to, src, bytes, cudaMemcpyDeviceToHost, st)
                          : cudaMemcpy(to, src, bytes, cudaMemcpyDeviceToHost);
            break;
        }
        if (!vgpu_range_check(s, a->src, sspan) || bytes > c->out_budget)
            goto out;
        buf = vgpu_arena_alloc(c->arena, bytes);
        if (!buf) {
            rc = cudaErrorMemoryAllocation;
            goto out;
        }
        if (a->is_2d)
            rc = a->async ? cudaMemcpy2DAsync(buf, a->count, src, a->spitch, a->count, a->height,
                                              cudaMemcpyDeviceToHost, st)
                          : cudaMemcpy2D(buf, a->count, src, a->spitch, a->count, a->height,
                                         cudaMemcpyDeviceToHost);
        else
            rc = a->async ? cudaMemcpyAsync(buf, src, bytes, cudaMemcpyDeviceToHost, st)
                          : cudaMemcpy(buf, src, bytes, cudaMemcpyDeviceToHost);
        /* The bytes go back with this reply, so the copy must be complete. */
        if (rc == cudaSuccess && a->async)
            rc = cudaStreamSynchronize(st);
        c->out[0].iov_base = buf;
        c->out[0].iov_len = bytes;
        c->nout = 1;
        break;
    case VGPU__MANUAL__DIRECTION__DIR_D2D:
        if (!vgpu_range_check(s, a->src, sspan) || !vgpu_range_check(s, a->dst, dspan))
            goto out;
        if (a->peer)
            rc = a->async ? cudaMemcpyPeerAsync(dst, a->dst_device, src, a->src_device, bytes, st)
                          : cudaMemcpyPeer(dst, a->dst_device, src, a->src_device, bytes);
        else if (a->is_2d)
            rc = a->async ? cudaMemcpy2DAsync(dst, a->dpitch, src, a->spitch, a->count, a->height,
                                              cudaMemcpyDeviceToDevice, st)
                          : cudaMemcpy2D(dst, a->dpitch, src, a->spitch, a->count, a->height,
                                         cudaMemcpyDeviceToDevice);
        else
            rc = a->async ? cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, st)
                          : cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);
        break;
    default:
        break;
    }
out:
    return rc;
}

static struct vgpu_hostfn *var_of(struct vgpu_session *s, uint64_t host)
{
    struct vgpu_hostfn *fn = vgpu_hostfn_find(s, host);

    return fn && fn->is_var ? fn : NULL;
}

/*
 * [offset, offset + count) inside the variable: the guest's extent checked
 * against the size the runtime gives for our stand-in, before any copy.
 */
static bool symbol_span_ok(const struct vgpu_hostfn *v, uint64_t offset, uint64_t count)
{
    size_t size = 0;

    if (cudaGetSymbolSize(&size, v->fake) != cudaSuccess)
        return false;
    return offset <= size && count <= size - offset;
}

static int do_symbol(struct vgpu_session *s, struct vgpu_manual_call *c, uint32_t id)
{
    UNPACK(Vgpu__Manual__SymbolArgs, symbol_args, c);
    Vgpu__Manual__SymbolRet r = VGPU__MANUAL__SYMBOL_RET__INIT;
    struct vgpu_hostfn *v = var_of(s, a->host);
    cudaStream_t st = (cudaStream_t)(uintptr_t)a->stream;
    void *addr = NULL, *buf;
    size_t size = 0;
    int rc = cudaErrorInvalidSymbol;

    if (!v)
        goto out;
    rc = cudaErrorInvalidResourceHandle;
    if (a->async && !stream_ok(s, a->stream))
        goto out;
    rc = cudaErrorInvalidValue;
    if (a->dir != VGPU__MANUAL__DIRECTION__DIR_D2D && a->count > VGPU_CALL_MAX_BYTES)
        goto out;
    if ((id == VGPU_CUDART_ID_cudaMemcpyToSymbol || id == VGPU_CUDART_ID_cudaMemcpyFromSymbol) &&
        !symbol_span_ok(v, a->offset, a->count))
        goto out;
    switch (id) {
    case VGPU_CUDART_ID_cudaGetSymbolAddress:
    case VGPU_CUDART_ID_cudaGetSymbolSize:
        rc = cudaGetSymbolAddress(&addr, v->fake);
        if (rc == cudaSuccess)
            rc = cudaGetSymbolSize(&size, v->fake);
        if (rc == cudaSuccess && !vgpu_range_check(s, (uintptr_t)addr, size) &&
            vgpu_range_add(s, (uintptr_t)addr, size, false))
            rc = cudaErrorMemoryAllocation;
        r.addr = (uintptr_t)addr;
        r.size = size;
        if (rc == cudaSuccess)
            rc = reply(c, &r.base);
        break;
    case VGPU_CUDART_ID_cudaMemcpyToSymbol:
        if (a->dir == VGPU__MANUAL__DIRECTION__DIR_H2D) {
            if (c->nseg != 1 || c->seg[0].len != a->count)
                break;
            rc = a->async ? cudaMemcpyToSymbolAsync(v->fake, c->seg[0].data, a->count, a->offset,
                                                    cudaMemcpyHostToDevice, st)
                          : cudaMemcpyToSymbol(v->fake, c->seg[0].data, a->count, a->offset,
                                               cudaMemcpyHostToDevice);
        } else if (a->dir == VGPU__MANUAL__DIRECTION__DIR_D2D) {
            if (!vgpu_range_check(s, a->devptr, a->count))
                break;
            rc = a->async ? cudaMemcpyToSymbolAsync(v->fake, (void *)(uintptr_t)a->devptr, a->count,
                                                    a->offset, cudaMemcpyDeviceToDevice, st)
                          : cudaMemcpyToSymbol(v->fake, (void *)(uintptr_t)a->devptr, a->count,
                                               a->offset, cudaMemcpyDeviceToDevice);
        }
        break;
    case VGPU_CUDART_ID_cudaMemcpyFromSymbol:
        if (a->dir == VGPU__MANUAL__DIRECTION__DIR_D2H) {
            if (a->count > c->out_budget)
                break;
            buf = vgpu_arena_alloc(c->arena, a->count);
            if (!buf) {
                rc = cudaErrorMemoryAllocation;
                break;
            }
            rc = a->async ? cudaMemcpyFromSymbolAsync(buf, v->fake, a->count, a->offset,
                                                      cudaMemcpyDeviceToHost, st)
                          : cudaMemcpyFromSymbol(buf, v->fake, a->count, a->offset,
                                                 cudaMemcpyDeviceToHost);
            if (rc == cudaSuccess && a->async)
                rc = cudaStreamSynchronize(st);
            c->out[0].iov_base = buf;
            c->out[0].iov_len = a->count;
            c->nout = 1;
        } else if (a->dir == VGPU__MANUAL__DIRECTION__DIR_D2D) {
            if (!vgpu_range_check(s, a->devptr, a->count))
                break;
            rc = a->async ? cudaMemcpyFromSymbolAsync((void *)(uintptr_t)a->devptr, v->fake,
                                                      a->count, a->offset, cudaMemcpyDeviceToDevice, st)
                          : cudaMemcpyFromSymbol((void *)(uintptr_t)a->devptr, v->fake, a->count,
                                                 a->offset, cudaMemcpyDeviceToDevice);
        }
        break;
    }
out:
    vgpu__manual__symbol_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

static int do_func(struct vgpu_session *s, struct vgpu_manual_call *c, uint32_t id)
{
    UNPACK(Vgpu__Manual__FuncArgs, func_args, c);
    Vgpu__Manual__FuncRet r = VGPU__MANUAL__FUNC_RET__INIT;
    struct vgpu_hostfn *fn = kernel_of(s, a->host);
    struct cudaFuncAttributes at;
    const char *name = NULL;
    int rc = cudaErrorInvalidDeviceFunction, iv = 0;
    size_t sv = 0;

    if (!fn)
        goto out;
    switch (id) {
    case VGPU_CUDART_ID_cudaFuncGetAttributes:
        rc = cudaFuncGetAttributes(&at, fn->fake);
        r.shared_size_bytes = at.sharedSizeBytes;
        r.const_size_bytes = at.constSizeBytes;
        r.local_size_bytes = at.localSizeBytes;
        r.max_threads_per_block = at.maxThreadsPerBlock;
        r.num_regs = at.numRegs;
        r.ptx_version = at.ptxVersion;
        r.binary_version = at.binaryVersion;
        r.cache_mode_ca = at.cacheModeCA;
        r.max_dynamic_shared_size_bytes = at.maxDynamicSharedSizeBytes;
        r.preferred_shmem_carveout = at.preferredShmemCarveout;
        r.cluster_dim_must_be_set = at.clusterDimMustBeSet;
        r.required_cluster_width = at.requiredClusterWidth;
        r.required_cluster_height = at.requiredClusterHeight;
        r.required_cluster_depth = at.requiredClusterDepth;
        r.cluster_scheduling_policy_preference = at.clusterSchedulingPolicyPreference;
        r.non_portable_cluster_size_allowed = at.nonPortableClusterSizeAllowed;
        break;
    case VGPU_CUDART_ID_cudaFuncSetAttribute:
        rc = cudaFuncSetAttribute(fn->fake, (enum cudaFuncAttribute)a->attr, (int)a->value);
        break;
    case VGPU_CUDART_ID_cudaFuncSetCacheConfig:
        rc = cudaFuncSetCacheConfig(fn->fake, (enum cudaFuncCache)a->value);
        break;
    case VGPU_CUDART_ID_cudaFuncSetSharedMemConfig:
        /* deprecated in CUDA, still part of the API programs call */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        rc = cudaFuncSetSharedMemConfig(fn->fake, (enum cudaSharedMemConfig)a->value);
#pragma GCC diagnostic pop
        break;
    case VGPU_CUDART_ID_cudaFuncGetName:
        rc = cudaFuncGetName(&name, fn->fake);
        r.name = (char *)(name ? name : "");
        break;
    case VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessor:
        rc = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&iv, fn->fake, a->block_size, a->dynamic_smem);
        r.value = iv;
        break;
    case VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags:
        rc = cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&iv, fn->fake, a->block_size,
                                                                    a->dynamic_smem, a->flags);
        r.value = iv;
        break;
    case VGPU_CUDART_ID_cudaOccupancyAvailableDynamicSMemPerBlock:
        rc = cudaOccupancyAvailableDynamicSMemPerBlock(&sv, fn->fake, (int)a->value, a->block_size);
        r.value = (int64_t)sv;
        break;
    default:
        rc = cudaErrorNotSupported;
        break;
    }
    if (rc == cudaSuccess)
        rc = reply(c, &r.base);
out:
    vgpu__manual__func_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

static int do_set_device(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__DeviceArgs, device_args, c);
    int rc = cudaSetDevice(a->device);

    if (rc == cudaSuccess)
        vgpu_work_switch_device(s, a->device);
    vgpu__manual__device_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

static int do_device_reset(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    int rc = cudaDeviceReset();

    (void)c;
    if (rc == cudaSuccess && !(s->devices_used & ~(1ull << (s->device & 63)))) {
        /*
         * The reset freed every allocation, stream and event of this
         * process's only device.  A session that used several devices keeps
         * its tables and charges: the reset freed only the current one's,
         * and they are not told apart (so limits err on the safe side).
         */
        vgpu_work_forget(s);
        vgpu_memory_charge(s, INT64_MIN / 2);
        vgpu_sched_charge(VGPU_HELD_STREAMS, INT64_MIN / 2, 0);
        vgpu_session_reset_tables(s);
    } else if (rc == cudaSuccess) {
        vgpu_work_forget(s);
    }
    return rc;
}

static int do_pointer(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__PointerArgs, pointer_args, c);
    Vgpu__Manual__PointerRet r = VGPU__MANUAL__POINTER_RET__INIT;
    struct cudaPointerAttributes at;
    int rc;

    /* A query only: an address outside the session's ranges just reads as unregistered. */
    memset(&at, 0, sizeof(at));
    if (a->ptr && !vgpu_range_check(s, a->ptr, 1)) {
        r.type = cudaMemoryTypeUnregistered;
        r.device = -2;
        rc = cudaSuccess;
    } else {
        rc = cudaPointerGetAttributes(&at, (void *)(uintptr_t)a->ptr);
        r.type = at.type;
        r.device = at.device;
        r.device_pointer = (uintptr_t)at.devicePointer;
    }
    if (rc == cudaSuccess)
        rc = reply(c, &r.base);
    vgpu__manual__pointer_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

#define SYM(name) static int h_##name(struct vgpu_session *s, struct vgpu_manual_call *c) \
    { return do_symbol(s, c, VGPU_CUDART_ID_##name); }
#define FUNC(name) static int h_##name(struct vgpu_session *s, struct vgpu_manual_call *c) \
    { return do_func(s, c, VGPU_CUDART_ID_##name); }
SYM(cudaGetSymbolAddress)
SYM(cudaGetSymbolSize)
SYM(cudaMemcpyToSymbol)
SYM(cudaMemcpyFromSymbol)
FUNC(cudaFuncGetAttributes)
FUNC(cudaFuncSetAttribute)
FUNC(cudaFuncSetCacheConfig)
FUNC(cudaFuncSetSharedMemConfig)
FUNC(cudaFuncGetName)
FUNC(cudaOccupancyMaxActiveBlocksPerMultiprocessor)
FUNC(cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags)
FUNC(cudaOccupancyAvailableDynamicSMemPerBlock)

static const struct {
    uint32_t id;
    vgpu_manual_fn fn;
} handlers[] = {
    { VGPU_CUDART_ID___cudaRegisterFatBinary, do_fatbin },
    { VGPU_CUDART_ID___cudaRegisterFunction, do_register },
    { VGPU_CUDART_ID___cudaRegisterVar, do_register },
    { VGPU_CUDART_ID___cudaRegisterFatBinaryEnd, do_fatbin_end },
    { VGPU_CUDART_ID_cudaFuncGetParamInfo, do_param_info },
    { VGPU_CUDART_ID___cudaLaunchKernel, do_launch },
    { VGPU_CUDART_ID_cudaMalloc, do_malloc },
    { VGPU_CUDART_ID_cudaFree, do_free },
    { VGPU_CUDART_ID_cudaMemcpy, do_copy },
    { VGPU_CUDART_ID_cudaGetSymbolAddress, h_cudaGetSymbolAddress },
    { VGPU_CUDART_ID_cudaGetSymbolSize, h_cudaGetSymbolSize },
    { VGPU_CUDART_ID_cudaMemcpyToSymbol, h_cudaMemcpyToSymbol },
    { VGPU_CUDART_ID_cudaMemcpyFromSymbol, h_cudaMemcpyFromSymbol },
    { VGPU_CUDART_ID_cudaFuncGetAttributes, h_cudaFuncGetAttributes },
    { VGPU_CUDART_ID_cudaFuncSetAttribute, h_cudaFuncSetAttribute },
    { VGPU_CUDART_ID_cudaFuncSetCacheConfig, h_cudaFuncSetCacheConfig },
    { VGPU_CUDART_ID_cudaFuncSetSharedMemConfig, h_cudaFuncSetSharedMemConfig },
    { VGPU_CUDART_ID_cudaFuncGetName, h_cudaFuncGetName },
    { VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessor,
      h_cudaOccupancyMaxActiveBlocksPerMultiprocessor },
    { VGPU_CUDART_ID_cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
      h_cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags },
    { VGPU_CUDART_ID_cudaOccupancyAvailableDynamicSMemPerBlock,
      h_cudaOccupancyAvailableDynamicSMemPerBlock },
    { VGPU_CUDART_ID_cudaSetDevice, do_set_device },
    { VGPU_CUDART_ID_cudaDeviceReset, do_device_reset },
    { VGPU_CUDART_ID_cudaPointerGetAttributes, do_pointer },
};

vgpu_manual_fn vgpu_manual_find(uint32_t id)
{
    /* by id, filled at the first look (a session is one thread) */
    static vgpu_manual_fn by_id[VGPU_CUDART_MAX_ID + 1];
    static bool filled;

    if (!filled) {
        for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
            if (handlers[i].id <= VGPU_CUDART_MAX_ID)
                by_id[handlers[i].id] = handlers[i].fn;
        filled = true;
    }
    return id <= VGPU_CUDART_MAX_ID ? by_id[id] : NULL;
}
