/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Launches for libcuda.so.1.  A launch packs the kernel's parameters into
 * one buffer by the layout the server's driver reports for the function
 * (cuFuncGetParamInfo, or cuKernelGetParamInfo for a CUkernel), asked once
 * per function and kept here; `extra` with a packed buffer is taken as is.
 * The launch is queued like the runtime's, its failure reported by a later
 * call; the sizes the driver refuses at the launch itself are refused here
 * first.
 */
#include <cuda.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"

#define ID(name) VGPU_CUDA_ID_##name

#define MAX_PARAMS 1024

struct layout {
    uint64_t fn;
    int n;
    size_t bytes;                /* end of the last parameter */
    uint32_t *off, *size;
    struct layout *next;
};

static pthread_mutex_t layout_lock = PTHREAD_MUTEX_INITIALIZER;
static struct layout *layouts;

/* The layout kept for fn, or NULL; layout_lock held. */
static struct layout *layout_find_locked(uint64_t fn)
{
    for (struct layout *l = layouts; l; l = l->next)
        if (l->fn == fn)
            return l;
    return NULL;
}

/* The parameter layout of fn, asked of the server: a new layout, or NULL with *st set. */
static struct layout *layout_ask(CUfunction fn, CUresult *st)
{
    struct layout *l;
    size_t off, size;
    bool kernel = false;

    if (!(l = calloc(1, sizeof(*l))) || !(l->off = calloc(MAX_PARAMS, sizeof(*l->off))) ||
        !(l->size = calloc(MAX_PARAMS, sizeof(*l->size)))) {
        if (l) {
            free(l->off);
            free(l);
        }
        *st = CUDA_ERROR_OUT_OF_MEMORY;
        return NULL;
    }
    l->fn = (uint64_t)(uintptr_t)fn;
    for (int i = 0; i < MAX_PARAMS; i++) {
        CUresult r = kernel ? cuKernelGetParamInfo((CUkernel)fn, (size_t)i, &off, &size)
                            : cuFuncGetParamInfo(fn, (size_t)i, &off, &size);

        /* a CUkernel stands for a function here; the server knows which it is */
        if (r == CUDA_ERROR_INVALID_HANDLE && i == 0 && !kernel) {
            kernel = true;
            i--;
            continue;
        }
        if (r == CUDA_ERROR_INVALID_VALUE)
            break;               /* past the last parameter */
        if (r != CUDA_SUCCESS) {
            free(l->off);
            free(l->size);
            free(l);
            *st = r;
            return NULL;
        }
        l->off[i] = (uint32_t)off;
        l->size[i] = (uint32_t)size;
        l->n = i + 1;
        if (off + size > l->bytes)
            l->bytes = off + size;
    }
    return l;
}

/*
 * The parameters of fn packed by its layout (asked of the server the first
 * time): into small when they fit, else into *heap (the caller frees it).
 * Packed under the lock, so a layout forgotten meanwhile is never read.
 */
static CUresult pack_params(CUfunction fn, void **params, uint8_t *small, size_t small_size,
                            uint8_t **heap, const void **buf, size_t *len)
{
    struct layout *l, *fresh = NULL;
    uint8_t *out;
    CUresult st = CUDA_SUCCESS;

    pthread_mutex_lock(&layout_lock);
    l = layout_find_locked((uint64_t)(uintptr_t)fn);
    pthread_mutex_unlock(&layout_lock);
    if (!l && !(fresh = layout_ask(fn, &st)))
        return st;
    pthread_mutex_lock(&layout_lock);
    if (fresh) {
        fresh->next = layouts;
        layouts = fresh;
    }
    l = layout_find_locked((uint64_t)(uintptr_t)fn);
    if (!l) {
        st = CUDA_ERROR_INVALID_HANDLE;      /* forgotten at once: its module went */
    } else if (l->n && !params) {
        st = CUDA_ERROR_INVALID_VALUE;
    } else if (l->bytes > small_size && !(*heap = malloc(l->bytes))) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
    } else {
        out = l->bytes > small_size ? *heap : small;
        memset(out, 0, l->bytes);
        for (int i = 0; i < l->n; i++)
            memcpy(out + l->off[i], params[i], l->size[i]);
        *buf = out;
        *len = l->bytes;
    }
    pthread_mutex_unlock(&layout_lock);
    return st;
}

int vgpu_drv_kernel_params(CUfunction f, void **params, void **extra, uint8_t *small,
                           size_t small_size, uint8_t **heap, const void **buf, size_t *len)
{
    if (!extra)
        return pack_params(f, params, small, small_size, heap, buf, len);
    /* CU_LAUNCH_PARAM_BUFFER_POINTER, ptr, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END */
    for (int i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
        if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
            *buf = extra[i + 1];
        else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1])
            *len = *(size_t *)extra[i + 1];
        else
            return CUDA_ERROR_INVALID_VALUE;
        if (i > 16)
            return CUDA_ERROR_INVALID_VALUE;
    }
    if (params || (*len && !*buf))
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

void vgpu_drv_forget_layouts(void)
{
    struct layout *l;

    pthread_mutex_lock(&layout_lock);
    l = layouts;
    layouts = NULL;
    pthread_mutex_unlock(&layout_lock);
    while (l) {
        struct layout *next = l->next;

        free(l->off);
        free(l->size);
        free(l);
        l = next;
    }
}

struct launch {
    CUfunction f;
    unsigned grid[3], block[3], shmem;
    CUstream stream;
    bool ptsz, cooperative, ex;
    const CUlaunchAttribute *attrs;
    unsigned nattrs;
};

/* A device's launch limits, asked once (cached queries). */
#define MAX_DEVICES 64

static struct limits {
    int known;
    int threads, block[3], grid[3];
} limits[MAX_DEVICES];

static __thread uint64_t limits_ctx = UINT64_MAX;
static __thread int limits_dev = -1;

static const struct limits *limits_of_current(void)
{
    uint64_t ctx = vgpu_drv_context();
    struct limits *lim;
    CUdevice dev;

    if (ctx != limits_ctx) {
        limits_dev = cuCtxGetDevice(&dev) == CUDA_SUCCESS ? dev : -1;
        limits_ctx = ctx;
    }
    if (limits_dev < 0 || limits_dev >= MAX_DEVICES)
        return NULL;
    lim = &limits[limits_dev];
    if (!__atomic_load_n(&lim->known, __ATOMIC_ACQUIRE)) {
        static const CUdevice_attribute attr[7] = {
            CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X,
            CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z,
            CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y,
            CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z,
        };
        int v[7];

        for (int i = 0; i < 7; i++)
            if (cuDeviceGetAttribute(&v[i], attr[i], limits_dev) != CUDA_SUCCESS)
                return NULL;
        lim->threads = v[0];
        memcpy(lim->block, v + 1, sizeof(lim->block));
        memcpy(lim->grid, v + 4, sizeof(lim->grid));
        __atomic_store_n(&lim->known, 1, __ATOMIC_RELEASE);
    }
    return lim;
}

/*
 * What the driver refuses at the launch itself (it reports them there, not
 * later): empty or oversized grids and blocks.  Checked here because the
 * launch is queued; everything else the server's driver reports.
 */
static CUresult check_config(const struct launch *l)
{
    const struct limits *lim;
    uint64_t threads = (uint64_t)l->block[0] * l->block[1] * l->block[2];

    for (int i = 0; i < 3; i++)
        if (!l->grid[i] || !l->block[i])
            return CUDA_ERROR_INVALID_VALUE;
    if (!(lim = limits_of_current()))
        return CUDA_SUCCESS;
    if (threads > (uint64_t)lim->threads)
        return CUDA_ERROR_INVALID_VALUE;
    for (int i = 0; i < 3; i++)
        if (l->block[i] > (unsigned)lim->block[i] || l->grid[i] > (unsigned)lim->grid[i])
            return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

/* The launch's configuration as the message that carries it (dims and attributes in the caller's storage). */
static void fill_args(Vgpu__Manual__DrvLaunchArgs *a, Vgpu__Manual__Dim3 *grid,
                      Vgpu__Manual__Dim3 *block, uint32_t *attr_id, ProtobufCBinaryData *attr_val,
                      const struct launch *l)
{
    grid->x = l->grid[0];
    grid->y = l->grid[1];
    grid->z = l->grid[2];
    block->x = l->block[0];
    block->y = l->block[1];
    block->z = l->block[2];
    a->function = (uint64_t)(uintptr_t)l->f;
    a->grid = grid;
    a->block = block;
    a->shared_mem = l->shmem;
    a->stream = (uint64_t)(uintptr_t)l->stream;
    a->ptsz = l->ptsz;
    a->cooperative = l->cooperative;
    a->ex = l->ex;
    for (unsigned i = 0; i < l->nattrs; i++) {
        attr_id[i] = (uint32_t)l->attrs[i].id;
        attr_val[i].data = (uint8_t *)&l->attrs[i].value;
        attr_val[i].len = sizeof(l->attrs[i].value);
    }
    a->attr_id = attr_id;
    a->n_attr_id = l->nattrs;
    a->attr_value = attr_val;
    a->n_attr_value = l->nattrs;
}

static CUresult launch(uint32_t id, const char *name, const struct launch *l, void **params,
                       void **extra)
{
    Vgpu__Manual__DrvLaunchArgs a = VGPU__MANUAL__DRV_LAUNCH_ARGS__INIT;
    Vgpu__Manual__Dim3 grid = VGPU__MANUAL__DIM3__INIT, block = VGPU__MANUAL__DIM3__INIT;
    struct vgpu_call_req req = { .flags = VGPU_FN_ASYNC | VGPU_FN_WORK };
    struct vgpu_call_rep rep = { 0 };
    uint32_t attr_id[8];
    ProtobufCBinaryData attr_val[8];
    const void *buf = NULL;
    size_t len = 0;
    _Alignas(16) uint8_t small[1024];
    uint8_t *heap = NULL;
    CUresult st = CUDA_SUCCESS;

    if (!l->f)
        return CUDA_ERROR_INVALID_HANDLE;
    if (l->nattrs > 8)
        return CUDA_ERROR_NOT_SUPPORTED;
    if ((st = check_config(l)) != CUDA_SUCCESS)
        return st;
    if ((st = vgpu_drv_kernel_params(l->f, params, extra, small, sizeof(small), &heap, &buf,
                                     &len)))
        return st;
    fill_args(&a, &grid, &block, attr_id, attr_val, l);
    if (len) {
        req.seg[0].data = buf;
        req.seg[0].len = len;
        req.nseg = 1;
    }
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    vgpu_shim_rep_release(&rep);
    free(heap);
    return st;
}

#define LAUNCH_ARGS(fn, gx, gy, gz, bx, by, bz, sh, s)                                          \
    { .f = fn, .grid = { gx, gy, gz }, .block = { bx, by, bz }, .shmem = sh, .stream = s }

VGPU_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                    unsigned by, unsigned bz, unsigned shmem, CUstream stream,
                                    void **params, void **extra)
{
    struct launch l = LAUNCH_ARGS(f, gx, gy, gz, bx, by, bz, shmem, stream);

    return launch(ID(cuLaunchKernel), "cuLaunchKernel", &l, params, extra);
}

VGPU_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                         unsigned bx, unsigned by, unsigned bz, unsigned shmem,
                                         CUstream stream, void **params, void **extra)
{
    struct launch l = LAUNCH_ARGS(f, gx, gy, gz, bx, by, bz, shmem,
                                  stream ? stream : CU_STREAM_PER_THREAD);

    l.ptsz = true;
    return launch(ID(cuLaunchKernel_ptsz), "cuLaunchKernel_ptsz", &l, params, extra);
}

VGPU_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                               unsigned bx, unsigned by, unsigned bz,
                                               unsigned shmem, CUstream stream, void **params)
{
    struct launch l = LAUNCH_ARGS(f, gx, gy, gz, bx, by, bz, shmem, stream);

    l.cooperative = true;
    return launch(ID(cuLaunchCooperativeKernel), "cuLaunchCooperativeKernel", &l, params, NULL);
}

VGPU_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy,
                                                    unsigned gz, unsigned bx, unsigned by,
                                                    unsigned bz, unsigned shmem, CUstream stream,
                                                    void **params)
{
    struct launch l = LAUNCH_ARGS(f, gx, gy, gz, bx, by, bz, shmem,
                                  stream ? stream : CU_STREAM_PER_THREAD);

    l.cooperative = true;
    l.ptsz = true;
    return launch(ID(cuLaunchCooperativeKernel_ptsz), "cuLaunchCooperativeKernel_ptsz", &l, params,
                  NULL);
}

static CUresult launch_ex(uint32_t id, const char *name, const CUlaunchConfig *c, CUfunction f,
                          void **params, void **extra, bool ptsz)
{
    struct launch l;

    if (!c)
        return CUDA_ERROR_INVALID_VALUE;
    l = (struct launch)LAUNCH_ARGS(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX,
                                   c->blockDimY, c->blockDimZ, c->sharedMemBytes,
                                   ptsz && !c->hStream ? CU_STREAM_PER_THREAD : c->hStream);
    l.ex = true;
    l.ptsz = ptsz;
    l.attrs = c->attrs;
    l.nattrs = c->numAttrs;
    if (l.nattrs && !l.attrs)
        return CUDA_ERROR_INVALID_VALUE;
    return launch(id, name, &l, params, extra);
}

VGPU_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **params,
                                      void **extra)
{
    return launch_ex(ID(cuLaunchKernelEx), "cuLaunchKernelEx", config, f, params, extra, false);
}

VGPU_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f,
                                           void **params, void **extra)
{
    return launch_ex(ID(cuLaunchKernelEx_ptsz), "cuLaunchKernelEx_ptsz", config, f, params, extra,
                     true);
}

/* ---- occupancy of a launch configuration (clusters) ---- */

static CUresult occupancy(uint32_t id, const char *name, int *out, CUfunction f,
                          const CUlaunchConfig *c)
{
    Vgpu__Manual__DrvLaunchArgs a = VGPU__MANUAL__DRV_LAUNCH_ARGS__INIT;
    Vgpu__Manual__Dim3 grid = VGPU__MANUAL__DIM3__INIT, block = VGPU__MANUAL__DIM3__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    uint32_t attr_id[8];
    ProtobufCBinaryData attr_val[8];
    struct launch l;
    CUresult st;

    if (!out || !c || !f || (c->numAttrs && !c->attrs))
        return CUDA_ERROR_INVALID_VALUE;
    if (c->numAttrs > 8)
        return CUDA_ERROR_NOT_SUPPORTED;
    l = (struct launch)LAUNCH_ARGS(f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX,
                                   c->blockDimY, c->blockDimZ, c->sharedMemBytes, c->hStream);
    l.ex = true;
    l.attrs = c->attrs;
    l.nattrs = c->numAttrs;
    fill_args(&a, &grid, &block, attr_id, attr_val, &l);
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__OccupancyRet *r = vgpu__manual__occupancy_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (r) {
            *out = r->value;
            vgpu__manual__occupancy_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func,
                                                  const CUlaunchConfig *config)
{
    return occupancy(ID(cuOccupancyMaxActiveClusters), "cuOccupancyMaxActiveClusters", numClusters,
                     func, config);
}

VGPU_EXPORT CUresult cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func,
                                                        const CUlaunchConfig *config)
{
    return occupancy(ID(cuOccupancyMaxPotentialClusterSize), "cuOccupancyMaxPotentialClusterSize",
                     clusterSize, func, config);
}
