/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver API's hand-written calls (codegen/spec/cuda.spec "manual"),
 * replayed on the real libcuda.so.1 in the session's process: contexts the
 * guest creates, modules and libraries (images through the same content
 * cache as fatbins), globals, launches laid out by the driver's own
 * parameter info, pointer attributes and error strings.  Device memory and
 * copies take the runtime's handlers (memory.c, copy.c): they run in the
 * context current here, the one the guest's batch named, and their
 * cudaError_t is told in CUresult (cu_status()).
 *
 * The driver is reached through dlopen, not linked: a server on a host
 * without libcuda.so.1 still starts and answers every driver call with
 * CUDA_ERROR_NOT_INITIALIZED.
 */
#include <cuda.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_calltable.h"
#include "manual_internal.h"
#include "vgpu/sha256.h"

#define STR_(x) #x
#define STR(x) STR_(x)     /* the name after cuda.h's renaming (cuMemAlloc -> cuMemAlloc_v2) */

/* The driver functions this file calls, resolved once. */
static struct {
    bool tried, ok;
    CUresult (*ctx_create)(CUcontext *ctx, unsigned int flags, CUdevice dev);  /* cuCtxCreate_v2 */
    __typeof__(&cuCtxDestroy) ctx_destroy;
    __typeof__(&cuCtxSetCurrent) ctx_set_current;
    __typeof__(&cuModuleLoadDataEx) module_load;
    __typeof__(&cuLibraryLoadData) library_load;
    __typeof__(&cuModuleGetGlobal) module_global;
    __typeof__(&cuLibraryGetGlobal) library_global;
    __typeof__(&cuFuncGetParamInfo) func_param_info;
    __typeof__(&cuKernelGetParamInfo) kernel_param_info;
    __typeof__(&cuKernelGetFunction) kernel_function;
    __typeof__(&cuLaunchKernel) launch;
    __typeof__(&cuLaunchCooperativeKernel) launch_coop;
    __typeof__(&cuLaunchKernelEx) launch_ex;
    __typeof__(&cuOccupancyMaxActiveClusters) max_active_clusters;
    __typeof__(&cuOccupancyMaxPotentialClusterSize) max_cluster_size;
    __typeof__(&cuPointerGetAttribute) pointer_attr;
    __typeof__(&cuGetErrorName) error_name;
    __typeof__(&cuGetErrorString) error_string;
} drv;

/* Resolves name into the function pointer at slot (of n bytes). */
static bool sym(void *h, const char *name, void *slot, size_t n)
{
    void *p = dlsym(h, name);

    memcpy(slot, &p, n < sizeof(p) ? n : sizeof(p));
    return p != NULL;
}

/* The driver library, opened once (the runtime opens it with RTLD_LOCAL, out of dlsym's default scope). */
static void *driver_lib(void)
{
    static void *h;
    static bool tried;

    if (!tried) {
        tried = true;
#ifdef VGPU_CUDA_LINKED_IN
        h = dlopen(NULL, RTLD_NOW);     /* the in-process fuzzer links the fake driver in */
#else
        h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
#endif
    }
    return h;
}

void (*vgpu_driver_sym(const char *name))(void)
{
    void *h = driver_lib(), *p = h ? dlsym(h, name) : NULL;
    void (*fn)(void);

    memcpy(&fn, &p, sizeof(fn));
    return fn;
}

static bool driver(void)
{
    void *h;

    if (drv.tried)
        return drv.ok;
    drv.tried = true;
    h = driver_lib();
    if (!h) {
        vgpu_log(VGPU_LOG_WARN, "no CUDA driver here (libcuda.so.1: %s): driver API calls fail",
                 dlerror());
        return false;
    }
#define GET(field, name)                                                      \
    if (!sym(h, STR(name), &drv.field, sizeof(drv.field)))                    \
        vgpu_log(VGPU_LOG_INFO, "the CUDA driver here has no %s: calls that need it fail", \
                 STR(name))
    /* what a driver lacks (an older one) fails the calls that need it, and no other */
    GET(ctx_create, cuCtxCreate_v2);
    GET(ctx_destroy, cuCtxDestroy);
    GET(ctx_set_current, cuCtxSetCurrent);
    GET(module_load, cuModuleLoadDataEx);
    GET(library_load, cuLibraryLoadData);
    GET(module_global, cuModuleGetGlobal);
    GET(library_global, cuLibraryGetGlobal);
    GET(func_param_info, cuFuncGetParamInfo);
    GET(kernel_param_info, cuKernelGetParamInfo);
    GET(kernel_function, cuKernelGetFunction);
    GET(launch, cuLaunchKernel);
    GET(launch_coop, cuLaunchCooperativeKernel);
    GET(launch_ex, cuLaunchKernelEx);
    GET(max_active_clusters, cuOccupancyMaxActiveClusters);
    GET(max_cluster_size, cuOccupancyMaxPotentialClusterSize);
    GET(pointer_attr, cuPointerGetAttribute);
    GET(error_name, cuGetErrorName);
    GET(error_string, cuGetErrorString);
#undef GET
    drv.ok = true;
    return drv.ok;
}

/*
 * A runtime handler's cudaError_t as the driver's CUresult: the codes the
 * two share keep their numbers (success, invalid value, out of memory, not
 * initialized, deinitialized, invalid handle, the 200s, 300s, 700s, not
 * supported); the runtime-only ones below 100 (invalid device pointer,
 * invalid memcpy direction, ...) are an invalid value to the driver.
 */
static int cu_status(int st)
{
    return st > 4 && st < 100 ? CUDA_ERROR_INVALID_VALUE : st;
}

static int kind(int cuda_kind)
{
    return vgpu_cuda_kind(cuda_kind);
}

/* The context a batch names becomes current here before its calls run (session.c). */
int vgpu_driver_make_current(struct vgpu_session *s, uint64_t ctx)
{
    if (!driver())
        return CUDA_ERROR_NOT_INITIALIZED;
    if (ctx && !vgpu_handle_known(s, kind(VGPU_CUDA_H_CONTEXT), ctx))
        return CUDA_ERROR_INVALID_CONTEXT;
    return drv.ctx_set_current ? drv.ctx_set_current((CUcontext)(uintptr_t)ctx)
                               : CUDA_ERROR_NOT_SUPPORTED;
}

/* ---- contexts ---- */

/* The slot of created context ctx in s->contexts (0: a free slot), or -1. */
static int ctx_slot(struct vgpu_session *s, uint64_t ctx)
{
    for (int i = 0; i < VGPU_MAX_CONTEXTS; i++)
        if (s->contexts[i] == ctx)
            return i;
    return -1;
}

static int h_ctx_create(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__CtxArgs, ctx_args, c);
    Vgpu__Manual__CtxRet r = VGPU__MANUAL__CTX_RET__INIT;
    CUcontext ctx = NULL;
    int st = CUDA_ERROR_NOT_INITIALIZED, slot = ctx_slot(s, 0);

    if (slot < 0) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: context refused: a session may create %d contexts",
                 s->who.vm_id, VGPU_MAX_CONTEXTS);
        st = CUDA_ERROR_OUT_OF_MEMORY;
    } else if (driver() && !(drv.ctx_create && drv.ctx_destroy)) {
        st = CUDA_ERROR_NOT_SUPPORTED;
    } else if (drv.ok && (st = drv.ctx_create(&ctx, a->flags, a->device)) == CUDA_SUCCESS) {
        r.ctx = (uint64_t)(uintptr_t)ctx;
        s->contexts[slot] = r.ctx;
        if (vgpu_handle_add(s, kind(VGPU_CUDA_H_CONTEXT), r.ctx) == 0) {
            s->context = r.ctx;        /* current here now, as for the guest's thread */
            st = reply(c, &r.base);
        } else {
            drv.ctx_destroy(ctx);
            s->contexts[slot] = 0;
            st = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    vgpu__manual__ctx_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_ctx_destroy(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__CtxArgs, ctx_args, c);
    int st = CUDA_ERROR_NOT_INITIALIZED;

    if (!driver())
        goto out;
    st = CUDA_ERROR_NOT_SUPPORTED;
    if (!drv.ctx_destroy)
        goto out;
    st = CUDA_ERROR_INVALID_CONTEXT;
    if (!a->ctx || !vgpu_handle_known(s, kind(VGPU_CUDA_H_CONTEXT), a->ctx))
        goto out;
    st = drv.ctx_destroy((CUcontext)(uintptr_t)a->ctx);
    if (st == CUDA_SUCCESS) {
        int slot = ctx_slot(s, a->ctx);

        vgpu_driver_forget_layouts();
        /* the events tracking GPU work may have been the context's: the work is over */
        vgpu_work_forget(s);
        if (slot >= 0)
            s->contexts[slot] = 0;
        vgpu_handle_remove(s, kind(VGPU_CUDA_H_CONTEXT), a->ctx);
        if (s->context == a->ctx)
            s->context = 0;
    }
out:
    vgpu__manual__ctx_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- modules and libraries ---- */

#define IMAGE_MAX (512u << 20)
#define JIT_OPTIONS_MAX 16
#define LOG_MAX (64u << 10)

/* JIT options whose values are plain numbers; the log buffers are the server's own. */
static bool jit_option_ok(uint32_t o)
{
    switch (o) {
    case CU_JIT_MAX_REGISTERS:
    case CU_JIT_THREADS_PER_BLOCK:
    case CU_JIT_OPTIMIZATION_LEVEL:
    case CU_JIT_TARGET_FROM_CUCONTEXT:
    case CU_JIT_TARGET:
    case CU_JIT_FALLBACK_STRATEGY:
    case CU_JIT_GENERATE_DEBUG_INFO:
    case CU_JIT_LOG_VERBOSE:
    case CU_JIT_GENERATE_LINE_INFO:
    case CU_JIT_CACHE_MODE:
    case CU_JIT_POSITION_INDEPENDENT_CODE:
    case CU_JIT_MIN_CTA_PER_SM:
    case CU_JIT_MAX_THREADS_PER_BLOCK:
    case CU_JIT_OVERRIDE_DIRECTIVE_VALUES:
        return true;
    default:
        return false;
    }
}

static int h_module_load(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__ModuleLoadArgs, module_load_args, c);
    Vgpu__Manual__ModuleLoadRet r = VGPU__MANUAL__MODULE_LOAD_RET__INIT;
    CUjit_option opt[JIT_OPTIONS_MAX + 4];
    void *val[JIT_OPTIONS_MAX + 4];
    uint8_t got[VGPU_SHA256_LEN], *img = NULL;
    char *info = NULL, *err = NULL;
    unsigned nopt = 0;
    int st = CUDA_ERROR_INVALID_VALUE;

    if (!driver()) {
        st = CUDA_ERROR_NOT_INITIALIZED;
        goto out;
    }
    if (a->library ? !drv.library_load : !drv.module_load) {
        st = CUDA_ERROR_NOT_SUPPORTED;
        goto out;
    }
    if (a->sha256.len != VGPU_SHA256_LEN || a->size == 0 || a->size > IMAGE_MAX ||
        a->n_jit_option != a->n_jit_value || a->n_jit_option > JIT_OPTIONS_MAX ||
        a->info_log_size > LOG_MAX || a->error_log_size > LOG_MAX ||
        (a->with_image && (c->nseg != 1 || c->seg[0].len != a->size)) ||
        (!a->with_image && c->nseg != 0))
        goto out;
    if (s->nmodules >= VGPU_MAX_MODULES || a->size > VGPU_IMAGES_MAX_BYTES - s->image_bytes) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: module refused: the session holds %d modules and %llu MiB "
                 "of images", s->who.vm_id, s->nmodules, (unsigned long long)(s->image_bytes >> 20));
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    if (a->with_image) {
        vgpu_sha256(c->seg[0].data, a->size, got);
        if (memcmp(got, a->sha256.data, VGPU_SHA256_LEN))
            goto out;
        /* a PTX image must be a string the JIT can read: NUL within the bytes sent */
        if (!(img = malloc(a->size + 1))) {
            st = CUDA_ERROR_OUT_OF_MEMORY;
            goto out;
        }
        memcpy(img, c->seg[0].data, a->size);
        vgpu_image_cache_store(s, got, img, a->size);
    } else if (!(img = vgpu_image_cache_load(s, a->sha256.data, a->size))) {
        r.need_image = true;         /* the guest sends it again with the bytes */
        st = reply(c, &r.base);
        goto out;
    } else if (!(img = realloc(img, a->size + 1))) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    img[a->size] = 0;
    for (size_t i = 0; i < a->n_jit_option; i++) {
        if (!jit_option_ok(a->jit_option[i]))
            continue;                /* log buffers and callbacks stay the server's */
        opt[nopt] = (CUjit_option)a->jit_option[i];
        val[nopt++] = (void *)(uintptr_t)a->jit_value[i];
    }
    if (a->info_log_size && (info = vgpu_arena_alloc(c->arena, a->info_log_size))) {
        opt[nopt] = CU_JIT_INFO_LOG_BUFFER;
        val[nopt++] = info;
        opt[nopt] = CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES;
        val[nopt++] = (void *)(uintptr_t)a->info_log_size;
    }
    if (a->error_log_size && (err = vgpu_arena_alloc(c->arena, a->error_log_size))) {
        opt[nopt] = CU_JIT_ERROR_LOG_BUFFER;
        val[nopt++] = err;
        opt[nopt] = CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES;
        val[nopt++] = (void *)(uintptr_t)a->error_log_size;
    }
    if (a->library) {
        CUlibrary lib = NULL;

        st = drv.library_load(&lib, img, opt, val, nopt, NULL, NULL, 0);
        if (st == CUDA_SUCCESS) {
            r.handle = (uint64_t)(uintptr_t)lib;
            vgpu_handle_add(s, kind(VGPU_CUDA_H_LIBRARY), r.handle);
        }
    } else {
        CUmodule mod = NULL;

        st = drv.module_load(&mod, img, nopt, opt, val);
        if (st == CUDA_SUCCESS) {
            r.handle = (uint64_t)(uintptr_t)mod;
            vgpu_handle_add(s, kind(VGPU_CUDA_H_MODULE), r.handle);
        }
    }
    /* the driver keeps what it needs of the image once loaded */
    if (st == CUDA_SUCCESS) {
        s->nmodules++;
        s->image_bytes += a->size;
    }
    r.info_log = info ? info : "";
    r.error_log = err ? err : "";
    if (info && a->info_log_size)
        info[a->info_log_size - 1] = 0;
    if (err && a->error_log_size)
        err[a->error_log_size - 1] = 0;
    {
        int prc = reply(c, &r.base);

        if (st == CUDA_SUCCESS)
            st = prc;
    }
out:
    free(img);
    vgpu__manual__module_load_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_global(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__GlobalArgs, global_args, c);
    CUdeviceptr p = 0;
    size_t bytes = 0;
    int st = CUDA_ERROR_NOT_INITIALIZED;

    if (!driver())
        goto out;
    st = CUDA_ERROR_NOT_SUPPORTED;
    if (a->library ? !drv.library_global : !drv.module_global)
        goto out;
    st = CUDA_ERROR_INVALID_HANDLE;
    if (!vgpu_handle_known(s, kind(a->library ? VGPU_CUDA_H_LIBRARY : VGPU_CUDA_H_MODULE), a->handle))
        goto out;
    st = a->library ? drv.library_global(&p, &bytes, (CUlibrary)(uintptr_t)a->handle, a->name)
                    : drv.module_global(&p, &bytes, (CUmodule)(uintptr_t)a->handle, a->name);
    if (st == CUDA_SUCCESS)
        st = vgpu_drv_global_reply(s, c, p, bytes);
out:
    vgpu__manual__global_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

int vgpu_drv_global_reply(struct vgpu_session *s, struct vgpu_manual_call *c, uint64_t p,
                          uint64_t bytes)
{
    Vgpu__Manual__GlobalRet r = VGPU__MANUAL__GLOBAL_RET__INIT;

    /* the variable's span is memory of this session from now on (not freeable; once) */
    if (!vgpu_range_check(s, p, bytes) && vgpu_range_add(s, p, bytes, false))
        return CUDA_ERROR_OUT_OF_MEMORY;
    r.dptr = p;
    r.bytes = bytes;
    return reply(c, &r.base);
}

/* ---- launches ---- */

#define PARAMS_MAX 1024

/* Launch attributes whose values hold no handle and no address. */
static bool attr_ok(uint32_t id)
{
    switch (id) {
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
    case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
        return true;
    default:
        return false;
    }
}

/*
 * Kernel parameter layouts, asked of the driver once per function and kept
 * for the session (launches are hot): open addressing by handle.  A module
 * or library unloaded may free handles the driver reuses, so unloading one
 * forgets them all (vgpu_driver_forget_layouts).
 */
#define LAYOUTS 4096

struct layout {
    uint64_t fn;                 /* 0: a free slot */
    int n;
    uint32_t *off, *size;
    bool is_kernel;              /* fn is a CUkernel: launched as its function in the context */
    uint64_t func_ctx;           /* the context (s->context, device + 1 for a primary) func is of */
    CUfunction func;
};

static struct layout *layouts;
static int nlayouts;

void vgpu_driver_forget_layouts(void)
{
    for (int i = 0; layouts && i < LAYOUTS; i++) {
        free(layouts[i].off);
        layouts[i] = (struct layout){ 0 };
    }
    nlayouts = 0;
}

/* The layout of fn from the driver: a CUresult; l filled on success. */
static int layout_ask(struct vgpu_session *s, uint64_t fn, struct layout *l)
{
    bool is_kernel = vgpu_handle_known(s, kind(VGPU_CUDA_H_KERNEL), fn);
    size_t off[PARAMS_MAX], size[PARAMS_MAX];
    int n = 0;

    if (is_kernel ? !drv.kernel_param_info : !drv.func_param_info)
        return CUDA_ERROR_NOT_SUPPORTED;

    for (size_t i = 0; i < PARAMS_MAX; i++, n++) {
        int st = is_kernel ? drv.kernel_param_info((CUkernel)(uintptr_t)fn, i, &off[i], &size[i])
                           : drv.func_param_info((CUfunction)(uintptr_t)fn, i, &off[i], &size[i]);

        if (st == CUDA_ERROR_INVALID_VALUE)
            break;               /* past the last parameter */
        if (st != CUDA_SUCCESS)
            return st;
    }
    if (n == PARAMS_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    l->fn = fn;
    l->n = n;
    l->is_kernel = is_kernel;
    if (n && !(l->off = malloc(2 * (size_t)n * sizeof(uint32_t))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    l->size = l->off ? l->off + n : NULL;
    for (int i = 0; i < n; i++) {
        l->off[i] = (uint32_t)off[i];
        l->size[i] = (uint32_t)size[i];
    }
    return CUDA_SUCCESS;
}

static int layout_of(struct vgpu_session *s, uint64_t fn, const struct layout **out)
{
    struct layout tmp = { 0 }, *slot = NULL;
    size_t h;
    int st;

    if (!layouts && !(layouts = calloc(LAYOUTS, sizeof(*layouts))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    h = (size_t)((fn >> 4) * 0x9E3779B97F4A7C15ull >> 52) % LAYOUTS;
    for (int probe = 0; probe < 16; probe++) {
        struct layout *l = &layouts[(h + (size_t)probe) % LAYOUTS];

        if (l->fn == fn) {
            *out = l;
            return CUDA_SUCCESS;
        }
        if (!l->fn && !slot)
            slot = l;
    }
    if (!slot) {                 /* a crowded neighbourhood: start again */
        vgpu_driver_forget_layouts();
        slot = &layouts[h];
    }
    if ((st = layout_ask(s, fn, &tmp)) != CUDA_SUCCESS)
        return st;
    *slot = tmp;
    nlayouts++;
    *out = slot;
    return CUDA_SUCCESS;
}

/*
 * The kernel's parameters as pointers into buf (every one inside the bytes
 * sent; none with ptrs NULL), and what to launch: a CUkernel's function in
 * the current context, asked of the driver once per context (a launch
 * would resolve it each time).
 */
static int lay_out(struct vgpu_session *s, uint64_t fn, const uint8_t *buf, size_t len, void **ptrs,
                   int *n, CUfunction *func)
{
    struct layout *l;
    int st = layout_of(s, fn, (const struct layout **)&l);
    uint64_t ctx = s->context ? s->context : (uint64_t)s->device + 1;

    *n = 0;
    if (st != CUDA_SUCCESS)
        return st;
    *func = (CUfunction)(uintptr_t)fn;
    if (l->is_kernel) {
        if (l->func_ctx != ctx) {
            CUfunction f = NULL;

            if (drv.kernel_function &&
                drv.kernel_function(&f, (CUkernel)(uintptr_t)fn) == CUDA_SUCCESS && f) {
                l->func = f;
                l->func_ctx = ctx;
            }
        }
        if (l->func_ctx == ctx)
            *func = l->func;
    }
    for (int i = 0; ptrs && i < l->n; i++) {
        if (l->off[i] > len || l->size[i] > len - l->off[i])
            return CUDA_ERROR_INVALID_VALUE;
        ptrs[i] = (void *)(buf + l->off[i]);
    }
    *n = ptrs ? l->n : 0;
    return CUDA_SUCCESS;
}

int vgpu_driver_layout(struct vgpu_session *s, uint64_t fn, int *n, const uint32_t **off,
                       const uint32_t **size)
{
    const struct layout *l;
    int st;

    if (!driver())
        return CUDA_ERROR_NOT_INITIALIZED;
    if ((st = layout_of(s, fn, &l)) != CUDA_SUCCESS)
        return st;
    *n = l->n;
    *off = l->off;
    *size = l->size;
    return CUDA_SUCCESS;
}

int vgpu_driver_lay_out(struct vgpu_session *s, uint64_t fn, const uint8_t *buf, size_t len,
                        void **ptrs, int *n, void **func)
{
    CUfunction f = NULL;
    int st;

    if (!driver())
        return CUDA_ERROR_NOT_INITIALIZED;
    st = lay_out(s, fn, buf, len, ptrs, n, &f);
    *func = (void *)f;
    return st;
}

/*
 * A launch configuration from the guest, checked: the function (or kernel)
 * and stream are the session's, the attributes hold no handle or address.
 * The function and the config's dimensions and attributes are filled; a
 * CUresult.
 */
static int launch_config(struct vgpu_session *s, const Vgpu__Manual__DrvLaunchArgs *a,
                         CUlaunchConfig *cfg, CUlaunchAttribute *attrs, size_t max_attrs)
{
    if (!a->grid || !a->block || a->n_attr_id != a->n_attr_value || a->n_attr_id > max_attrs)
        return CUDA_ERROR_INVALID_VALUE;
    if (!a->function || (!vgpu_handle_known(s, kind(VGPU_CUDA_H_FUNCTION), a->function) &&
                         !vgpu_handle_known(s, kind(VGPU_CUDA_H_KERNEL), a->function)) ||
        !stream_ok(s, a->stream))
        return CUDA_ERROR_INVALID_HANDLE;
    for (size_t i = 0; i < a->n_attr_id; i++) {
        if (!attr_ok(a->attr_id[i]) || a->attr_value[i].len != sizeof(attrs[i].value)) {
            vgpu_log(VGPU_LOG_INFO, "launch attribute %u refused (not remoted)", a->attr_id[i]);
            return CUDA_ERROR_NOT_SUPPORTED;
        }
        memset(&attrs[i], 0, sizeof(attrs[i]));
        attrs[i].id = (CUlaunchAttributeID)a->attr_id[i];
        memcpy(&attrs[i].value, a->attr_value[i].data, sizeof(attrs[i].value));
    }
    *cfg = (CUlaunchConfig){
        .gridDimX = a->grid->x, .gridDimY = a->grid->y, .gridDimZ = a->grid->z,
        .blockDimX = a->block->x, .blockDimY = a->block->y, .blockDimZ = a->block->z,
        .sharedMemBytes = a->shared_mem, .hStream = (CUstream)(uintptr_t)a->stream,
        .attrs = a->n_attr_id ? attrs : NULL, .numAttrs = (unsigned)a->n_attr_id,
    };
    return CUDA_SUCCESS;
}

static int h_launch(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__DrvLaunchArgs, drv_launch_args, c);
    void *ptrs[PARAMS_MAX];
    CUfunction func = NULL;
    CUlaunchAttribute attrs[8];
    CUlaunchConfig cfg;
    const uint8_t *buf = c->nseg ? c->seg[0].data : (const uint8_t *)"";
    size_t len = c->nseg ? c->seg[0].len : 0;
    int n = 0, st = CUDA_ERROR_NOT_INITIALIZED;

    if (!driver())
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    if (c->nseg > 1)
        goto out;
    if ((st = launch_config(s, a, &cfg, attrs, sizeof(attrs) / sizeof(attrs[0]))) != CUDA_SUCCESS ||
        (st = lay_out(s, a->function, buf, len, ptrs, &n, &func)) != CUDA_SUCCESS)
        goto out;
    st = CUDA_ERROR_NOT_SUPPORTED;
    if (a->ex ? !drv.launch_ex : a->cooperative ? !drv.launch_coop : !drv.launch)
        goto out;
    vgpu_work_begin(s);
    if (a->ex)
        st = drv.launch_ex(&cfg, func, n ? ptrs : NULL, NULL);
    else if (a->cooperative)
        st = drv.launch_coop(func, cfg.gridDimX, cfg.gridDimY, cfg.gridDimZ, cfg.blockDimX,
                             cfg.blockDimY, cfg.blockDimZ, cfg.sharedMemBytes, cfg.hStream,
                             n ? ptrs : NULL);
    else
        st = drv.launch(func, cfg.gridDimX, cfg.gridDimY, cfg.gridDimZ, cfg.blockDimX,
                        cfg.blockDimY, cfg.blockDimZ, cfg.sharedMemBytes, cfg.hStream,
                        n ? ptrs : NULL, NULL);
    vgpu_work_end(s, (void *)cfg.hStream, st == CUDA_SUCCESS);
out:
    vgpu__manual__drv_launch_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/*
 * cuOccupancyMaxActiveClusters (max_active), cuOccupancyMaxPotentialClusterSize
 * of a checked configuration, for the function the launch would run.
 */
static int occupancy(struct vgpu_session *s, struct vgpu_manual_call *c, bool max_active)
{
    UNPACK(Vgpu__Manual__DrvLaunchArgs, drv_launch_args, c);
    Vgpu__Manual__OccupancyRet r = VGPU__MANUAL__OCCUPANCY_RET__INIT;
    CUlaunchAttribute attrs[8];
    CUlaunchConfig cfg;
    CUfunction func = NULL;
    int n = 0, value = 0, st = CUDA_ERROR_NOT_INITIALIZED;

    if (!driver())
        goto out;
    /* without parameters, lay_out only finds the function (a CUkernel's in this context) */
    if ((st = launch_config(s, a, &cfg, attrs, sizeof(attrs) / sizeof(attrs[0]))) != CUDA_SUCCESS ||
        (st = lay_out(s, a->function, NULL, 0, NULL, &n, &func)) != CUDA_SUCCESS)
        goto out;
    if (max_active ? !drv.max_active_clusters : !drv.max_cluster_size) {
        st = CUDA_ERROR_NOT_SUPPORTED;
        goto out;
    }
    st = max_active ? drv.max_active_clusters(&value, func, &cfg)
                    : drv.max_cluster_size(&value, func, &cfg);
    if (st == CUDA_SUCCESS) {
        r.value = value;
        st = reply(c, &r.base);
    }
out:
    vgpu__manual__drv_launch_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_active_clusters(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return occupancy(s, c, true);
}

static int h_cluster_size(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return occupancy(s, c, false);
}

/* ---- pointer attributes ---- */

/* Bytes of an attribute's value, for those that hold no host address; 0 for the rest. */
static size_t attr_size(int attr)
{
    switch (attr) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
        return sizeof(void *);
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
        return sizeof(unsigned long long);
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
    case CU_POINTER_ATTRIBUTE_MAPPED:
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        return sizeof(int);
    default:
        return 0;
    }
}

static int h_pointer_attr(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__PointerAttrArgs, pointer_attr_args, c);
    Vgpu__Manual__PointerAttrRet r = VGPU__MANUAL__POINTER_ATTR_RET__INIT;
    int st = CUDA_ERROR_NOT_INITIALIZED;

    if (!driver())
        goto out;
    st = CUDA_ERROR_INVALID_VALUE;
    /* only the session's own memory is asked about */
    if (a->n_attr == 0 || a->n_attr > 32 || !vgpu_addr_check(s, a->ptr))
        goto out;
    r.value = vgpu_arena_alloc(c->arena, a->n_attr * sizeof(*r.value));
    r.status = vgpu_arena_alloc(c->arena, a->n_attr * sizeof(*r.status));
    if (!r.value || !r.status) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    r.n_value = r.n_status = a->n_attr;
    for (size_t i = 0; i < a->n_attr; i++) {
        size_t n = attr_size(a->attr[i]);
        uint8_t *v = n ? vgpu_arena_alloc(c->arena, n) : NULL;

        r.status[i] = n && drv.pointer_attr
                          ? (v ? drv.pointer_attr(v, (CUpointer_attribute)a->attr[i], a->ptr)
                               : CUDA_ERROR_OUT_OF_MEMORY)
                          : CUDA_ERROR_NOT_SUPPORTED;
        if (r.status[i] == CUDA_SUCCESS && a->attr[i] == CU_POINTER_ATTRIBUTE_CONTEXT) {
            uint64_t ctx = 0;

            memcpy(&ctx, v, sizeof(void *));
            if (ctx)
                vgpu_handle_add(s, kind(VGPU_CUDA_H_CONTEXT), ctx);
        }
        r.value[i].data = v;
        r.value[i].len = r.status[i] == CUDA_SUCCESS ? n : 0;
    }
    st = reply(c, &r.base);
out:
    vgpu__manual__pointer_attr_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- error strings ---- */

static int h_error_string(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__ErrorStringArgs, error_string_args, c);
    Vgpu__Manual__ErrorStringRet r = VGPU__MANUAL__ERROR_STRING_RET__INIT;
    const char *str = NULL;
    int st = CUDA_ERROR_NOT_INITIALIZED;

    (void)s;
    if (driver() && !(a->text ? drv.error_string : drv.error_name)) {
        st = CUDA_ERROR_NOT_SUPPORTED;
    } else if (drv.ok) {
        st = a->text ? drv.error_string((CUresult)a->error, &str)
                     : drv.error_name((CUresult)a->error, &str);
        if (st == CUDA_SUCCESS) {
            r.s = (char *)(str ? str : "");
            st = reply(c, &r.base);
        }
    }
    vgpu__manual__error_string_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- the driver's log ---- */

/*
 * The driver keeps at most 25600 bytes of log (cuda.h); a guest's buffer
 * size above that is this.  The log is the session process's own: the
 * program's calls and the server's for it.
 */
#define LOGS_MAX 32768

static int h_logs_dump(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__LogsDumpArgs, logs_dump_args, c);
    Vgpu__Manual__LogsDumpRet r = VGPU__MANUAL__LOGS_DUMP_RET__INIT;
    VGPU_DRIVER_SYM(dump, cuLogsDumpToMemory);
    CUlogIterator it = a->iterator;
    size_t size = a->size > LOGS_MAX ? LOGS_MAX : (size_t)a->size;
    char *buf = vgpu_arena_alloc(c->arena, LOGS_MAX + 1);
    int st = CUDA_ERROR_NOT_SUPPORTED;

    (void)s;
    if (!dump)
        goto out;
    st = CUDA_ERROR_OUT_OF_MEMORY;
    if (!buf)
        goto out;
    st = dump(a->has_iterator ? &it : NULL, buf, &size, a->flags);
    if (st == CUDA_SUCCESS) {
        r.iterator = it;
        r.text.data = (uint8_t *)buf;
        r.text.len = size > LOGS_MAX ? LOGS_MAX : size;
        st = reply(c, &r.base);
    }
out:
    vgpu__manual__logs_dump_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* cuLogsRegisterCallback / cuLogsUnregisterCallback: the guest's first and its last (devout.c). */
static int logs_watch(struct vgpu_session *s, struct vgpu_manual_call *c, bool on)
{
    UNPACK(Vgpu__Manual__LogsWatchArgs, logs_watch_args, c);
    int st = vgpu_devout_log_watch(s, on);

    vgpu__manual__logs_watch_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_logs_register(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return logs_watch(s, c, true);
}

static int h_logs_unregister(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return logs_watch(s, c, false);
}

/* ---- memory and copies: the runtime's handlers, their status told in CUresult ---- */

static int h_malloc(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return driver() ? cu_status(vgpu_manual_malloc(s, c)) : CUDA_ERROR_NOT_INITIALIZED;
}

static int h_free(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return driver() ? cu_status(vgpu_manual_free(s, c)) : CUDA_ERROR_NOT_INITIALIZED;
}

static int h_copy(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return driver() ? cu_status(vgpu_manual_copy(s, c)) : CUDA_ERROR_NOT_INITIALIZED;
}

#define ID(name) VGPU_CUDA_ID_##name

static const struct {
    uint32_t id;
    vgpu_manual_fn fn;
} handlers[] = {
    { ID(cuCtxCreate), h_ctx_create }, { ID(cuCtxCreate_v2), h_ctx_create },
    { ID(cuCtxCreate_v4), h_ctx_create }, { ID(cuCtxDestroy), h_ctx_destroy },
    { ID(cuCtxDestroy_v2), h_ctx_destroy },
    { ID(cuModuleLoad), h_module_load }, { ID(cuModuleLoadData), h_module_load },
    { ID(cuModuleLoadDataEx), h_module_load }, { ID(cuModuleLoadFatBinary), h_module_load },
    { ID(cuLibraryLoadData), h_module_load }, { ID(cuLibraryLoadFromFile), h_module_load },
    { ID(cuModuleGetGlobal_v2), h_global }, { ID(cuLibraryGetGlobal), h_global },
    { ID(cuLaunchKernel), h_launch }, { ID(cuLaunchKernel_ptsz), h_launch },
    { ID(cuLaunchKernelEx), h_launch }, { ID(cuLaunchKernelEx_ptsz), h_launch },
    { ID(cuLaunchCooperativeKernel), h_launch }, { ID(cuLaunchCooperativeKernel_ptsz), h_launch },
    { ID(cuOccupancyMaxActiveClusters), h_active_clusters },
    { ID(cuOccupancyMaxPotentialClusterSize), h_cluster_size },
    { ID(cuPointerGetAttribute), h_pointer_attr }, { ID(cuPointerGetAttributes), h_pointer_attr },
    { ID(cuGetErrorName), h_error_string }, { ID(cuGetErrorString), h_error_string },
    { ID(cuLogsDumpToMemory), h_logs_dump }, { ID(cuLogsDumpToFile), h_logs_dump },
    { ID(cuLogsRegisterCallback), h_logs_register },
    { ID(cuLogsUnregisterCallback), h_logs_unregister },
    { ID(cuMemAlloc_v2), h_malloc }, { ID(cuMemAllocPitch_v2), h_malloc },
    { ID(cuMemAllocAsync), h_malloc }, { ID(cuMemAllocAsync_ptsz), h_malloc },
    { ID(cuMemFree_v2), h_free }, { ID(cuMemFreeAsync), h_free }, { ID(cuMemFreeAsync_ptsz), h_free },
    { ID(cuMemcpy), h_copy }, { ID(cuMemcpy_ptds), h_copy }, { ID(cuMemcpyAsync), h_copy },
    { ID(cuMemcpyAsync_ptsz), h_copy }, { ID(cuMemcpyHtoD_v2), h_copy },
    { ID(cuMemcpyHtoD_v2_ptds), h_copy }, { ID(cuMemcpyDtoH_v2), h_copy },
    { ID(cuMemcpyDtoH_v2_ptds), h_copy }, { ID(cuMemcpyDtoD_v2), h_copy },
    { ID(cuMemcpyDtoD_v2_ptds), h_copy }, { ID(cuMemcpyHtoDAsync_v2), h_copy },
    { ID(cuMemcpyHtoDAsync_v2_ptsz), h_copy }, { ID(cuMemcpyDtoHAsync_v2), h_copy },
    { ID(cuMemcpyDtoHAsync_v2_ptsz), h_copy }, { ID(cuMemcpyDtoDAsync_v2), h_copy },
    { ID(cuMemcpyDtoDAsync_v2_ptsz), h_copy }, { ID(cuMemcpy2D_v2), h_copy },
    { ID(cuMemcpy2D_v2_ptds), h_copy }, { ID(cuMemcpy2DAsync_v2), h_copy },
    { ID(cuMemcpy2DAsync_v2_ptsz), h_copy }, { ID(cuMemcpy2DUnaligned_v2), h_copy },
    { ID(cuMemcpy2DUnaligned_v2_ptds), h_copy }, { ID(cuMemcpyPeer), h_copy },
    { ID(cuMemcpyPeer_ptds), h_copy }, { ID(cuMemcpyPeerAsync), h_copy },
    { ID(cuMemcpyPeerAsync_ptsz), h_copy },
};

vgpu_manual_fn vgpu_driver_manual_find(uint32_t id)
{
    vgpu_manual_fn f;

    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (handlers[i].id == id)
            return handlers[i].fn;
    f = vgpu_vmm_manual_find(id);
    if (!f)
        f = vgpu_ipc_manual_find(id);
    if (!f)
        f = vgpu_drv_managed_manual_find(id);
    return f ? f : vgpu_graph_manual_find(id);
}
