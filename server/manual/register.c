/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registration of the guest's device code (spec: manual).  Fatbins come
 * with their images or by hash from the server's content-addressed cache;
 * kernels and variables are registered with the real runtime under
 * stand-in host addresses the server owns, so every runtime entry point
 * that takes a host stub or a symbol works as it does natively.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manual_internal.h"
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
extern void __cudaRegisterManagedVar(void **handle, void **hostVarPtrAddress, char *deviceAddress,
                                     const char *deviceName, int ext, size_t size, int constant,
                                     int global);
extern char __cudaInitModule(void **handle);

#define FATBIN_WRAPPER_MAGIC 0x466243B1u
#define FATBIN_MAX (512u << 20)

struct fatbin_wrapper {
    int magic;
    int version;
    const void *data;
    void *filename_or_fatbins;
};

static void hex(const uint8_t *h, char out[2 * VGPU_SHA256_LEN + 1])
{
    for (int i = 0; i < VGPU_SHA256_LEN; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

/* The cache holds images by content; a guest can only add images whose hash it cannot fake. */
uint8_t *vgpu_image_cache_load(struct vgpu_session *s, const uint8_t *sha, size_t size)
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

void vgpu_image_cache_store(struct vgpu_session *s, const uint8_t *sha, const uint8_t *img, size_t size)
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

int vgpu_manual_fatbin(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__FatbinArgs, fatbin_args, c);
    Vgpu__Manual__FatbinRet r = VGPU__MANUAL__FATBIN_RET__INIT;
    struct fatbin_wrapper *w = NULL;
    uint8_t **imgs = NULL, got[VGPU_SHA256_LEN];
    void **pre = NULL;
    size_t n = a->n_sha256;
    uint64_t total = 0;
    int rc = cudaErrorInvalidValue;

    if (n == 0 || n > FATBIN_MAX_IMAGES || a->n_size != n || (a->version != 1 && a->version != 2) ||
        (a->version == 1 && n != 1) || (a->with_image && (size_t)c->nseg != n))
        goto out;
    for (size_t i = 0; i < n; i++)
        total += a->size[i] < FATBIN_MAX ? a->size[i] : FATBIN_MAX;   /* each checked below */
    if (s->nmodules >= VGPU_MAX_MODULES || total > VGPU_IMAGES_MAX_BYTES - s->image_bytes) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: fatbin refused: the session holds %d modules and %llu MiB "
                 "of images, and a session may hold %d and %llu MiB", s->who.vm_id, s->nmodules,
                 (unsigned long long)(s->image_bytes >> 20), VGPU_MAX_MODULES,
                 (unsigned long long)(VGPU_IMAGES_MAX_BYTES >> 20));
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
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
            vgpu_image_cache_store(s, got, imgs[i], a->size[i]);
            vgpu_log(VGPU_LOG_INFO, "fatbin image received: %llu bytes, now cached",
                     (unsigned long long)a->size[i]);
        } else if (!(imgs[i] = vgpu_image_cache_load(s, a->sha256[i].data, a->size[i]))) {
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
    s->image_bytes += total;
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

int vgpu_manual_register(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__RegisterArgs, register_args, c);
    struct vgpu_module *m = module_of(s, a->module);
    struct vgpu_hostfn *fn;
    int rc = cudaErrorInvalidValue;

    if (!m || m->ended || !a->name || !*a->name || vgpu_hostfn_find(s, a->host) ||
        (a->is_var && (a->size == 0 || a->size > (1u << 30))))
        goto out;
    if (s->nfns >= VGPU_MAX_FNS ||
        (a->is_var && a->size > VGPU_VARS_MAX_BYTES - s->var_bytes)) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: %s refused: the session has registered %d kernels and "
                 "variables (%llu MiB of variables), and a session may register %d (%llu MiB)",
                 s->who.vm_id, a->name, s->nfns, (unsigned long long)(s->var_bytes >> 20),
                 VGPU_MAX_FNS, (unsigned long long)(VGPU_VARS_MAX_BYTES >> 20));
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
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
    fn->managed = a->is_var && a->managed;
    fn->var_size = a->is_var ? a->size : 0;
    /*
     * A unique host address of ours, the runtime's key for this entry; for
     * a managed variable, the pointer the runtime sets to its memory.
     */
    fn->fake = fn->managed ? calloc(1, sizeof(void *)) : malloc(a->is_var ? a->size : 1);
    char *name = strdup(a->name);
    if (!fn->fake || !name) {
        free(fn->fake);
        free(name);
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    if (fn->managed) {
        __cudaRegisterManagedVar(m->handle, (void **)fn->fake, name, name, 0, a->size, a->constant, 0);
        s->var_bytes += a->size;
    } else if (a->is_var) {
        __cudaRegisterVar(m->handle, fn->fake, name, name, 0, a->size, a->constant, 0);
        s->var_bytes += a->size;
    } else {
        __cudaRegisterFunction(m->handle, fn->fake, name, name, -1, NULL, NULL, NULL, NULL, NULL);
    }
    s->nfns++;
    rc = cudaSuccess;
out:
    vgpu__manual__register_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

/*
 * The size the guest registered for a managed variable at p is a claim; the
 * module's own is the bound: the runtime's size of the symbol where it knows
 * it (the fake does), else the driver's allocation around p: on the H200
 * (CUDA 13.0, driver 580) the runtime's answer alone refused every managed
 * variable of tests/managed.
 */
static bool managed_var_fits(const struct vgpu_hostfn *fn, uint64_t p)
{
    VGPU_DRIVER_SYM(range, cuMemGetAddressRange_v2);
    CUdeviceptr base = 0;
    size_t real = 0;
    cudaError_t before = cudaPeekAtLastError();

    if (cudaGetSymbolSize(&real, fn->fake) == cudaSuccess) {
        if (fn->var_size <= real)
            return true;
    } else {
        if (before == cudaSuccess)
            cudaGetLastError();    /* the failed query's own error is not left for the session */
        if (range && range(&base, &real, (CUdeviceptr)p) == CUDA_SUCCESS && p >= base &&
            p - base < real && fn->var_size <= real - (p - base))
            return true;
    }
    vgpu_log(VGPU_LOG_INFO, "__cudaInitModule refused: a managed variable registered as %llu bytes "
             "is larger than its module's (%zu bytes from %s)", (unsigned long long)fn->var_size,
             real, base ? "its allocation" : "the runtime");
    return false;
}

/*
 * __cudaInitModule: the runtime sets up the module's managed variables;
 * each one's memory becomes session memory (not freeable) and the guest
 * learns its address, where its shadow of the variable goes.
 */
int vgpu_manual_init_module(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__FatbinEndArgs, fatbin_end_args, c);
    Vgpu__Manual__ManagedVarsRet r = VGPU__MANUAL__MANAGED_VARS_RET__INIT;
    struct vgpu_module *m = module_of(s, a->module);
    uint64_t *host = NULL, *addr = NULL, *size = NULL;
    size_t n = 0;
    int rc = cudaErrorInvalidValue;

    if (!m || !m->ended)
        goto out;
    if (!__cudaInitModule(m->handle)) {
        rc = cudaErrorInitializationError;
        goto out;
    }
    host = vgpu_arena_alloc(c->arena, (size_t)s->nfns * sizeof(*host) + 1);
    addr = vgpu_arena_alloc(c->arena, (size_t)s->nfns * sizeof(*addr) + 1);
    size = vgpu_arena_alloc(c->arena, (size_t)s->nfns * sizeof(*size) + 1);
    if (!host || !addr || !size) {
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    for (int i = 0; i < s->nfns; i++) {
        const struct vgpu_hostfn *fn = &s->fns[i];
        uint64_t p;

        if (!fn->managed || (uint64_t)fn->module != a->module)
            continue;
        memcpy(&p, fn->fake, sizeof(p));
        if (!p) {
            rc = cudaErrorInitializationError;
            goto out;
        }
        if (!managed_var_fits(fn, p)) {
            rc = cudaErrorInvalidValue;
            goto out;
        }
        if (!vgpu_range_check(s, p, fn->var_size) && vgpu_range_add(s, p, fn->var_size, false)) {
            rc = cudaErrorMemoryAllocation;
            goto out;
        }
        host[n] = fn->guest;
        addr[n] = p;
        size[n] = fn->var_size;
        n++;
    }
    r.n_host = r.n_address = r.n_size = n;
    r.host = host;
    r.address = addr;
    r.size = size;
    rc = reply(c, &r.base);
out:
    vgpu__manual__fatbin_end_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

/* cudaGetFuncBySymbol: the kernel's function handle, the session's from now on. */
int vgpu_manual_func_by_symbol(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__RegisterArgs, register_args, c);
    Vgpu__Manual__FuncBySymbolRet r = VGPU__MANUAL__FUNC_BY_SYMBOL_RET__INIT;
    struct vgpu_hostfn *fn = kernel_of(s, a->host);
    cudaFunction_t f = NULL;
    int rc = cudaErrorInvalidDeviceFunction;

    if (!fn)
        goto out;
    rc = cudaGetFuncBySymbol(&f, fn->fake);
    if (rc != cudaSuccess)
        goto out;
    if (!vgpu_handle_known(s, VGPU_CUDART_H_FUNCTION, (uintptr_t)f) &&
        vgpu_handle_add(s, VGPU_CUDART_H_FUNCTION, (uintptr_t)f)) {
        rc = cudaErrorMemoryAllocation;
        goto out;
    }
    r.function = (uintptr_t)f;
    rc = reply(c, &r.base);
out:
    vgpu__manual__register_args__free_unpacked(a, &unpack_alloc_);
    return rc;
}

int vgpu_manual_fatbin_end(struct vgpu_session *s, struct vgpu_manual_call *c)
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
