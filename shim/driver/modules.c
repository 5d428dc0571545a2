/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Modules, libraries and launches for libcuda.so.1.  An image (fatbin,
 * cubin, ELF or PTX text) is named by its SHA-256 first and travels only
 * when the server's content cache lacks it; a file the program names is
 * read here, in the guest.  A launch packs the kernel's parameters into one
 * buffer by the layout the server's driver reports for the function
 * (cuFuncGetParamInfo, or cuKernelGetParamInfo for a CUkernel), asked once
 * per function and kept here; the launch itself is queued like the
 * runtime's, its failure reported by a later call.
 */
#include <cuda.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"
#include "vgpu/sha256.h"

#define ID(name) VGPU_CUDA_ID_##name

#define FATBIN_HEADER_MAGIC 0xBA55ED50u
#define FATBIN_WRAPPER_MAGIC 0x466243B1u
#define IMAGE_MAX ((size_t)512 << 20)

/*
 * The bytes of an image the driver would read from p: a fatbin by its
 * header (header size + fat size), an ELF by its section headers' end, PTX
 * (or anything else) up to its NUL.  0 when p is not an image.
 */
static size_t image_size(const void *p)
{
    const uint8_t *b = p;
    uint32_t magic;

    if (!p)
        return 0;
    memcpy(&magic, b, 4);
    if (magic == FATBIN_WRAPPER_MAGIC) {
        const void *data;

        memcpy(&data, b + 8, sizeof(data));
        return data ? image_size(data) : 0;
    }
    if (magic == FATBIN_HEADER_MAGIC) {
        uint16_t hsize;
        uint64_t fsize;

        memcpy(&hsize, b + 6, 2);
        memcpy(&fsize, b + 8, 8);
        return fsize > IMAGE_MAX ? 0 : (size_t)hsize + (size_t)fsize;
    }
    if (!memcmp(b, "\177ELF", 4) && b[4] == 2) {     /* 64-bit ELF: e_shoff + e_shnum * e_shentsize */
        uint64_t shoff;
        uint16_t shentsize, shnum;

        memcpy(&shoff, b + 0x28, 8);
        memcpy(&shentsize, b + 0x3A, 2);
        memcpy(&shnum, b + 0x3C, 2);
        return shoff > IMAGE_MAX ? 0 : (size_t)(shoff + (uint64_t)shentsize * shnum);
    }
    return strnlen(p, IMAGE_MAX) + 1;
}

/* The data an image pointer names: a fatbin wrapper holds a pointer to its fatbin. */
static const void *image_data(const void *p)
{
    uint32_t magic;
    const void *data;

    memcpy(&magic, p, 4);
    if (magic != FATBIN_WRAPPER_MAGIC)
        return p;
    memcpy(&data, (const uint8_t *)p + 8, sizeof(data));
    return data;
}

/* Loads an image on the server: a module, or a library; numeric JIT options travel. */
static CUresult load(uint32_t id, const char *name, uint64_t *handle, const void *image,
                     unsigned nopt, const CUjit_option *opts, void *const *vals, bool library)
{
    Vgpu__Manual__ModuleLoadArgs a = VGPU__MANUAL__MODULE_LOAD_ARGS__INIT;
    uint8_t sha[VGPU_SHA256_LEN];
    uint32_t jopt[16];
    uint64_t jval[16];
    char *info = NULL, *err = NULL;
    size_t info_size = 0, err_size = 0;
    const void *data;
    size_t size;
    int st = CUDA_ERROR_INVALID_VALUE;

    if (!handle || !image || (nopt && (!opts || !vals)))
        return CUDA_ERROR_INVALID_VALUE;
    data = image_data(image);
    if (!data || !(size = image_size(data)))
        return CUDA_ERROR_INVALID_IMAGE;
    vgpu_sha256(data, size, sha);
    for (unsigned i = 0; i < nopt; i++) {
        switch (opts[i]) {
        case CU_JIT_INFO_LOG_BUFFER:
            info = vals[i];
            break;
        case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES:
            info_size = (size_t)(uintptr_t)vals[i];
            break;
        case CU_JIT_ERROR_LOG_BUFFER:
            err = vals[i];
            break;
        case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
            err_size = (size_t)(uintptr_t)vals[i];
            break;
        default:
            if (a.n_jit_option < 16) {
                jopt[a.n_jit_option] = (uint32_t)opts[i];
                jval[a.n_jit_option++] = (uint64_t)(uintptr_t)vals[i];
                a.n_jit_value = a.n_jit_option;
            }
        }
    }
    a.jit_option = jopt;
    a.jit_value = jval;
    a.info_log_size = info && info_size ? (uint32_t)(info_size < (64u << 10) ? info_size : 64u << 10) : 0;
    a.error_log_size = err && err_size ? (uint32_t)(err_size < (64u << 10) ? err_size : 64u << 10) : 0;
    a.sha256.data = sha;
    a.sha256.len = sizeof(sha);
    a.size = size;
    a.library = library;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct vgpu_call_req req = { 0 };
        struct vgpu_call_rep rep = { 0 };
        Vgpu__Manual__ModuleLoadRet *r;
        bool again = false;

        a.with_image = attempt == 1;
        if (a.with_image) {
            req.seg[0].data = data;
            req.seg[0].len = size;
            req.nseg = 1;
        }
        st = vgpu_drv_call(id, name, &a.base, &req, &rep);
        r = rep.ret ? vgpu__manual__module_load_ret__unpack(NULL, rep.ret_len, rep.ret) : NULL;
        if (r) {
            if (info && a.info_log_size)
                snprintf(info, a.info_log_size, "%s", r->info_log);
            if (err && a.error_log_size)
                snprintf(err, a.error_log_size, "%s", r->error_log);
            if (st == CUDA_SUCCESS && r->need_image)
                again = true;
            else if (st == CUDA_SUCCESS)
                *handle = r->handle;
            vgpu__manual__module_load_ret__free_unpacked(r, NULL);
        } else if (st == CUDA_SUCCESS) {
            st = vgpu_shim_bad_reply(&req);
        }
        vgpu_shim_rep_release(&rep);
        if (!again)
            return st;
    }
    return st == CUDA_SUCCESS ? CUDA_ERROR_UNKNOWN : st;   /* the server asked twice */
}

VGPU_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    return load(ID(cuModuleLoadData), "cuModuleLoadData", (uint64_t *)module, image, 0, NULL, NULL,
                false);
}

VGPU_EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int nopt,
                                        CUjit_option *options, void **values)
{
    return load(ID(cuModuleLoadDataEx), "cuModuleLoadDataEx", (uint64_t *)module, image, nopt,
                options, values, false);
}

VGPU_EXPORT CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatbin)
{
    return load(ID(cuModuleLoadFatBinary), "cuModuleLoadFatBinary", (uint64_t *)module, fatbin, 0,
                NULL, NULL, false);
}

VGPU_EXPORT CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jopts,
                                       void **jvals, unsigned int njit, CUlibraryOption *lopts,
                                       void **lvals, unsigned int nlib)
{
    (void)lopts;
    (void)lvals;
    if (nlib)
        vgpu_shim_log(VGPU_LOG_INFO, "cuLibraryLoadData: %u library option(s) not remoted, "
                      "ignored", nlib);
    return load(ID(cuLibraryLoadData), "cuLibraryLoadData", (uint64_t *)library, code, njit, jopts,
                jvals, true);
}

/* A file the program names is the guest's: read here, loaded as data. */
static void *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && (size_t)n < IMAGE_MAX &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = calloc(1, (size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

VGPU_EXPORT CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
    void *img;
    CUresult st;

    if (!fname)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(img = read_file(fname)))
        return CUDA_ERROR_FILE_NOT_FOUND;
    st = load(ID(cuModuleLoad), "cuModuleLoad", (uint64_t *)module, img, 0, NULL, NULL, false);
    free(img);
    return st;
}

VGPU_EXPORT CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fname,
                                           CUjit_option *jopts, void **jvals, unsigned int njit,
                                           CUlibraryOption *lopts, void **lvals, unsigned int nlib)
{
    void *img;
    CUresult st;

    (void)lopts;
    (void)lvals;
    (void)nlib;
    if (!fname)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(img = read_file(fname)))
        return CUDA_ERROR_FILE_NOT_FOUND;
    st = load(ID(cuLibraryLoadFromFile), "cuLibraryLoadFromFile", (uint64_t *)library, img, njit,
              jopts, jvals, true);
    free(img);
    return st;
}

/* ---- launches ---- */

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

/* The parameter layout of fn, asked of the server once; NULL with *st set. */
static const struct layout *layout_of(CUfunction fn, CUresult *st)
{
    struct layout *l;
    size_t off, size;
    bool kernel = false;

    pthread_mutex_lock(&layout_lock);
    for (l = layouts; l; l = l->next)
        if (l->fn == (uint64_t)(uintptr_t)fn)
            break;
    pthread_mutex_unlock(&layout_lock);
    if (l)
        return l;
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
    pthread_mutex_lock(&layout_lock);
    l->next = layouts;
    layouts = l;
    pthread_mutex_unlock(&layout_lock);
    return l;
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

static CUresult launch(uint32_t id, const char *name, const struct launch *l, void **params,
                       void **extra)
{
    Vgpu__Manual__DrvLaunchArgs a = VGPU__MANUAL__DRV_LAUNCH_ARGS__INIT;
    Vgpu__Manual__Dim3 grid = VGPU__MANUAL__DIM3__INIT, block = VGPU__MANUAL__DIM3__INIT;
    struct vgpu_call_req req = { .flags = VGPU_FN_ASYNC };
    struct vgpu_call_rep rep = { 0 };
    uint32_t attr_id[8];
    ProtobufCBinaryData attr_val[8];
    const void *buf = NULL;
    size_t len = 0;
    _Alignas(16) uint8_t small[1024];
    uint8_t *packed = NULL, *heap = NULL;
    CUresult st = CUDA_SUCCESS;

    if (!l->f)
        return CUDA_ERROR_INVALID_HANDLE;
    if (l->nattrs > 8)
        return CUDA_ERROR_NOT_SUPPORTED;
    if ((st = check_config(l)) != CUDA_SUCCESS)
        return st;
    if (extra) {
        /* CU_LAUNCH_PARAM_BUFFER_POINTER, ptr, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END */
        for (int i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
                buf = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE && extra[i + 1])
                len = *(size_t *)extra[i + 1];
            else
                return CUDA_ERROR_INVALID_VALUE;
            if (i > 16)
                return CUDA_ERROR_INVALID_VALUE;
        }
        if (params || (len && !buf))
            return CUDA_ERROR_INVALID_VALUE;
    } else {
        const struct layout *lay = layout_of(l->f, &st);

        if (!lay)
            return st;
        if (lay->n && !params)
            return CUDA_ERROR_INVALID_VALUE;
        if (lay->bytes <= sizeof(small))
            packed = small;
        else if (!(packed = heap = malloc(lay->bytes)))
            return CUDA_ERROR_OUT_OF_MEMORY;
        memset(packed, 0, lay->bytes);
        for (int i = 0; i < lay->n; i++)
            memcpy(packed + lay->off[i], params[i], lay->size[i]);
        buf = packed;
        len = lay->bytes;
    }
    grid.x = l->grid[0];
    grid.y = l->grid[1];
    grid.z = l->grid[2];
    block.x = l->block[0];
    block.y = l->block[1];
    block.z = l->block[2];
    a.function = (uint64_t)(uintptr_t)l->f;
    a.grid = &grid;
    a.block = &block;
    a.shared_mem = l->shmem;
    a.stream = (uint64_t)(uintptr_t)l->stream;
    a.ptsz = l->ptsz;
    a.cooperative = l->cooperative;
    a.ex = l->ex;
    for (unsigned i = 0; i < l->nattrs; i++) {
        attr_id[i] = (uint32_t)l->attrs[i].id;
        attr_val[i].data = (uint8_t *)&l->attrs[i].value;
        attr_val[i].len = sizeof(l->attrs[i].value);
    }
    a.attr_id = attr_id;
    a.n_attr_id = l->nattrs;
    a.attr_value = attr_val;
    a.n_attr_value = l->nattrs;
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
