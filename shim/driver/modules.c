/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Modules, libraries and their globals for libcuda.so.1.  An image (fatbin,
 * cubin, ELF or PTX text) is named by its SHA-256 first and travels only
 * when the server's content cache lacks it; a file the program names is
 * read here, in the guest.  A global's span becomes device memory of the
 * program (memory.c).  Launches are launch.c's.
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

/* ---- globals: the variable's span is device memory of the program ---- */

static CUresult global(uint32_t id, const char *name, CUdeviceptr *dptr, size_t *bytes,
                       uint64_t handle, const char *sym, bool library)
{
    Vgpu__Manual__GlobalArgs a = VGPU__MANUAL__GLOBAL_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    int st;

    if (!sym)
        return CUDA_ERROR_INVALID_VALUE;
    a.handle = handle;
    a.name = (char *)sym;
    a.library = library;
    st = vgpu_drv_call(id, name, &a.base, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__GlobalRet *r = vgpu__manual__global_ret__unpack(NULL, rep.ret_len, rep.ret);

        if (r) {
            if (dptr)
                *dptr = r->dptr;
            if (bytes)
                *bytes = r->bytes;
            vgpu_drv_device_add(r->dptr, r->bytes);
            vgpu__manual__global_ret__free_unpacked(r, NULL);
        } else {
            st = vgpu_shim_bad_reply(&req);
        }
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod,
                                          const char *name)
{
    return global(ID(cuModuleGetGlobal_v2), "cuModuleGetGlobal_v2", dptr, bytes,
                  (uint64_t)(uintptr_t)hmod, name, false);
}

VGPU_EXPORT CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
                                        const char *name)
{
    return global(ID(cuLibraryGetGlobal), "cuLibraryGetGlobal", dptr, bytes,
                  (uint64_t)(uintptr_t)library, name, true);
}

/* A managed variable of the library: memory of the server's the host reaches through a shadow. */
VGPU_EXPORT CUresult cuLibraryGetManaged(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
                                         const char *name)
{
    CUdeviceptr p = 0;
    size_t n = 0;
    CUresult st = global(ID(cuLibraryGetManaged), "cuLibraryGetManaged", &p, &n,
                         (uint64_t)(uintptr_t)library, name, true);

    if (st == CUDA_SUCCESS)
        st = vgpu_drv_managed_add("cuLibraryGetManaged", p, n);
    if (st == CUDA_SUCCESS && dptr)
        *dptr = p;
    if (st == CUDA_SUCCESS && bytes)
        *bytes = n;
    return st;
}
