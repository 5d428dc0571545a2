/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver API's modules, libraries, functions, kernels and launches.
 *
 * A module is a copy of its image: a fatbin (magic 0xBA55ED50, header_size
 * + fat_size bytes, or the 0x466243B1 wrapper that points at one), a 64-bit
 * ELF (cubin; its section and program header tables end it) or NUL-
 * terminated PTX text (".version" or ".target" in it, else
 * CUDA_ERROR_INVALID_PTX); anything else is CUDA_ERROR_INVALID_IMAGE.
 * Nothing is compiled: a module "contains" a function or global when the
 * name asked for occurs as bytes in the image, else CUDA_ERROR_NOT_FOUND.
 * A global is 256 zeroed bytes of device memory (GLOBAL_SIZE; the image
 * is not parsed for its size), freed with its module; a managed one
 * (cuLibraryGetManaged) is the same in the managed window (managed.c), so a
 * guest can shadow it at its address.
 *
 * A library (cuLibraryLoadData) owns one module loaded from its image;
 * its CUkernels are found by name like functions, and cuKernelGetFunction
 * gives the module's CUfunction of that name.  Handles are pointers to the
 * records below and are looked up before use: an unknown one is
 * CUDA_ERROR_INVALID_HANDLE (logged "fakecuda: refused").
 *
 * Launches run the fake kernels of exec.c, chosen by the function's name
 * (vgpu_fake_kernel_named); other functions run nothing.  Arguments come
 * from kernelParams or from extra (CU_LAUNCH_PARAM_BUFFER_POINTER/SIZE/END),
 * laid out as cuFuncGetParamInfo reports.  A fault in a fake kernel is
 * CUDA_ERROR_ILLEGAL_ADDRESS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakecuda_internal.h"

#define GLOBAL_SIZE 256
#define IMAGE_MAX (1ull << 30)
#define FATBIN_MAGIC 0xBA55ED50u
#define FATBIN_WRAPPER_MAGIC 0x466243B1u
#define EXTRA_MAX 64                /* entries of a launch's extra array */

struct mod;
struct lib;

/* A CUfunction (of a module) or a CUkernel (of a library). */
struct fn {
    bool is_kernel;
    struct mod *mod;
    struct lib *lib;
    char *name;
    const struct vgpu_fake_kernel *fake;    /* NULL: runs nothing */
    int attrs[CU_FUNC_ATTRIBUTE_MAX];
    struct fn *next;
};

struct global {
    char *name;
    void *dev;
    bool managed;               /* cuLibraryGetManaged's: in the managed window (managed.c) */
    struct global *next;
};

struct mod {
    unsigned char *image;
    size_t size;
    struct fn *fns;
    struct global *globals;
    struct mod *next;
};

struct lib {
    struct mod *mod;
    struct fn *kernels;
    struct lib *next;
};

static struct mod *mods;
static struct lib *libs;

/* ---- lookups ---- */

static struct mod *mod_find(CUmodule h)
{
    for (struct mod *m = mods; m; m = m->next)
        if ((void *)m == (void *)h)
            return m;
    return NULL;
}

static struct lib *lib_find(CUlibrary h)
{
    for (struct lib *l = libs; l; l = l->next)
        if ((void *)l == (void *)h)
            return l;
    return NULL;
}

/* The functions of kernels the runtime registered (cudaGetFuncBySymbol), in a module of their own. */
static struct mod runtime_mod;

static struct fn *func_find(CUfunction h)
{
    for (struct mod *m = mods; m; m = m->next)
        for (struct fn *f = m->fns; f; f = f->next)
            if ((void *)f == (void *)h)
                return f;
    for (struct fn *f = runtime_mod.fns; f; f = f->next)
        if ((void *)f == (void *)h)
            return f;
    return NULL;
}


static struct fn *kernel_find(CUkernel h)
{
    for (struct lib *l = libs; l; l = l->next)
        for (struct fn *f = l->kernels; f; f = f->next)
            if ((void *)f == (void *)h)
                return f;
    return NULL;
}

/* A CUfunction, or a CUkernel passed where one goes (the driver allows it). */
static struct fn *callable(const char *fn, CUfunction h)
{
    struct fn *f = func_find(h);

    if (!f)
        f = kernel_find((CUkernel)(void *)h);
    if (!f && h)
        vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_HANDLE, fn, "unknown function %p", (void *)h);
    return f;
}

/* ---- images ---- */

static uint64_t rd(const unsigned char *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];        /* little-endian, as every target of CUDA is */
    return v;
}

static CUresult image_size(const void *image, size_t *size, int depth)
{
    const unsigned char *p = image;
    uint64_t n;

    if (!image)
        return CUDA_ERROR_INVALID_VALUE;
    if (rd(p, 4) == FATBIN_MAGIC) {
        n = rd(p + 6, 2) + rd(p + 8, 8);
    } else if (rd(p, 4) == FATBIN_WRAPPER_MAGIC && depth == 0) {
        const void *inner;

        memcpy(&inner, p + 8, sizeof(inner));
        return inner == image ? CUDA_ERROR_INVALID_IMAGE : image_size(inner, size, 1);
    } else if (!memcmp(p, "\177ELF", 4)) {
        uint64_t sh, ph;

        if (p[4] != 2)                  /* ELFCLASS64 only */
            return CUDA_ERROR_INVALID_IMAGE;
        sh = rd(p + 0x28, 8) + rd(p + 0x3a, 2) * rd(p + 0x3c, 2);
        ph = rd(p + 0x20, 8) + rd(p + 0x36, 2) * rd(p + 0x38, 2);
        n = sh > ph ? sh : ph;
        if (n < 64)
            n = 64;
    } else {
        size_t len = 0;

        for (; len < IMAGE_MAX && p[len]; len++)
            if (p[len] < 0x09 || (p[len] > 0x0d && p[len] < 0x20) || p[len] > 0x7e)
                return CUDA_ERROR_INVALID_IMAGE;
        if (len == IMAGE_MAX || len == 0)
            return CUDA_ERROR_INVALID_IMAGE;
        if (!strstr((const char *)p, ".version") && !strstr((const char *)p, ".target"))
            return CUDA_ERROR_INVALID_PTX;
        n = len + 1;
    }
    if (n > IMAGE_MAX)
        return CUDA_ERROR_INVALID_IMAGE;
    *size = (size_t)n;
    return CUDA_SUCCESS;
}

static bool image_has(const struct mod *m, const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > m->size)
        return false;
    for (size_t i = 0; i + n <= m->size; i++)
        if (m->image[i] == (unsigned char)name[0] && !memcmp(m->image + i, name, n))
            return true;
    return false;
}

static CUresult load(struct mod **out, const void *image)
{
    struct mod *m;
    size_t size;
    const void *bytes = image;
    CUresult r = image_size(image, &size, 0);

    if (r)
        return r;
    if (rd(image, 4) == FATBIN_WRAPPER_MAGIC)
        memcpy(&bytes, (const unsigned char *)image + 8, sizeof(bytes));
    if (!(m = calloc(1, sizeof(*m))) || !(m->image = malloc(size))) {
        free(m);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    memcpy(m->image, bytes, size);
    m->size = size;
    m->next = mods;
    mods = m;
    *out = m;
    return CUDA_SUCCESS;
}

static void fns_free(struct fn *f)
{
    while (f) {
        struct fn *next = f->next;

        free(f->name);
        free(f);
        f = next;
    }
}

static void unload(struct mod *m)
{
    for (struct mod **p = &mods; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    fns_free(m->fns);
    while (m->globals) {
        struct global *g = m->globals;
        struct vgpu_fake_alloc *a = vgpu_fake_alloc_at(g->dev);

        m->globals = g->next;
        if (a)
            vgpu_fake_alloc_remove(a);
        if (g->managed)
            vgpu_fake_managed_unmap(g->dev, GLOBAL_SIZE);
        else
            free(g->dev);
        free(g->name);
        free(g);
    }
    free(m->image);
    free(m);
}

/* ---- modules ---- */

FAKE_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    struct mod *m;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!module)
        return CUDA_ERROR_INVALID_VALUE;
    if ((r = load(&m, image)))
        return r;
    *module = (CUmodule)(void *)m;
    return CUDA_SUCCESS;
}

/* JIT options change nothing here: there is no JIT. */
FAKE_EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image,
                                        unsigned int numOptions, CUjit_option *options,
                                        void **optionValues)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (numOptions && (!options || !optionValues))
        return CUDA_ERROR_INVALID_VALUE;
    return cuModuleLoadData(module, image);
}

FAKE_EXPORT CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
    return cuModuleLoadData(module, fatCubin);
}

FAKE_EXPORT CUresult cuModuleUnload(CUmodule hmod)
{
    struct mod *m;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!(m = mod_find(hmod)))
        return hmod ? vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_HANDLE, "cuModuleUnload",
                                          "unknown module %p", (void *)hmod)
                    : CUDA_ERROR_INVALID_HANDLE;
    for (struct lib *l = libs; l; l = l->next)
        if (l->mod == m)
            return CUDA_ERROR_INVALID_HANDLE;     /* the library's: cuLibraryUnload */
    unload(m);
    return CUDA_SUCCESS;
}

static void attrs_default(int *a)
{
    memset(a, 0, sizeof(int) * CU_FUNC_ATTRIBUTE_MAX);
    a[CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK] = 1024;
    a[CU_FUNC_ATTRIBUTE_NUM_REGS] = 16;
    a[CU_FUNC_ATTRIBUTE_PTX_VERSION] = 90;
    a[CU_FUNC_ATTRIBUTE_BINARY_VERSION] = 90;
    a[CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES] = 48 << 10;
    a[CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT] = -1;
}

int vgpu_fake_runtime_function(const char *name, CUfunction *out)
{
    struct fn *f;

    for (f = runtime_mod.fns; f; f = f->next)
        if (!strcmp(f->name, name))
            break;
    if (!f) {
        if (!(f = calloc(1, sizeof(*f))) || !(f->name = strdup(name))) {
            free(f);
            return -1;
        }
        f->mod = &runtime_mod;
        f->fake = vgpu_fake_kernel_named(name);
        attrs_default(f->attrs);
        f->next = runtime_mod.fns;
        runtime_mod.fns = f;
    }
    *out = (CUfunction)(void *)f;
    return 0;
}

/* The record for name in list (made on first use, so handles are stable). */
static CUresult fn_get(struct fn **list, struct mod *m, struct lib *l, const char *name,
                       struct fn **out)
{
    struct fn *f;

    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    for (f = *list; f; f = f->next)
        if (!strcmp(f->name, name)) {
            *out = f;
            return CUDA_SUCCESS;
        }
    if (!image_has(m, name))
        return CUDA_ERROR_NOT_FOUND;
    if (!(f = calloc(1, sizeof(*f))) || !(f->name = strdup(name))) {
        free(f);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    f->is_kernel = l != NULL;
    f->mod = m;
    f->lib = l;
    f->fake = vgpu_fake_kernel_named(name);
    attrs_default(f->attrs);
    f->next = *list;
    *list = f;
    *out = f;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    struct mod *m;
    struct fn *f;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!hfunc)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(m = mod_find(hmod)))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((r = fn_get(&m->fns, m, NULL, name, &f))) {
        if (r == CUDA_ERROR_NOT_FOUND)
            vgpu_fake_log("cuModuleGetFunction", "no function of that name in the module");
        return r;
    }
    *hfunc = (CUfunction)(void *)f;
    return CUDA_SUCCESS;
}

/* The global of m named name (managed: a managed variable's), made at its first lookup. */
static CUresult global_find(struct mod *m, const char *name, bool managed, struct global **out)
{
    struct global *g;
    struct vgpu_fake_alloc *a;

    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    for (g = m->globals; g; g = g->next)
        if (!strcmp(g->name, name))
            break;
    if (!g) {
        if (!image_has(m, name))
            return CUDA_ERROR_NOT_FOUND;
        if (!(g = calloc(1, sizeof(*g))) || !(g->name = strdup(name)))
            goto nomem;
        g->managed = managed;
        if (managed ? !(g->dev = vgpu_fake_managed_map(GLOBAL_SIZE))
                    : posix_memalign(&g->dev, 256, GLOBAL_SIZE) != 0)
            goto nomem;
        if (vgpu_fake_alloc_add(g->dev, GLOBAL_SIZE, false))
            goto nomem;
        if (managed && (a = vgpu_fake_alloc_at(g->dev)))
            a->managed = true;
        memset(g->dev, 0, GLOBAL_SIZE);
        g->next = m->globals;
        m->globals = g;
    }
    if (g->managed != managed)
        return CUDA_ERROR_INVALID_VALUE;    /* a variable is managed or not */
    *out = g;
    return CUDA_SUCCESS;
nomem:
    if (g && g->dev) {
        if (managed)
            vgpu_fake_managed_unmap(g->dev, GLOBAL_SIZE);
        else
            free(g->dev);
    }
    if (g)
        free(g->name);
    free(g);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

static CUresult global_get(struct mod *m, CUdeviceptr *dptr, size_t *bytes, const char *name)
{
    struct global *g;
    CUresult r = global_find(m, name, false, &g);

    if (r)
        return r;
    if (dptr)
        *dptr = (CUdeviceptr)(uintptr_t)g->dev;
    if (bytes)
        *bytes = GLOBAL_SIZE;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod,
                                          const char *name)
{
    struct mod *m;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!(m = mod_find(hmod)))
        return CUDA_ERROR_INVALID_HANDLE;
    return global_get(m, dptr, bytes, name);
}

FAKE_EXPORT CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!mode)
        return CUDA_ERROR_INVALID_VALUE;
    *mode = CU_MODULE_EAGER_LOADING;
    return CUDA_SUCCESS;
}

/* ---- libraries and kernels (no context needed: they are context-independent) ---- */

FAKE_EXPORT CUresult cuLibraryLoadData(CUlibrary *library, const void *code,
                                       CUjit_option *jitOptions, void **jitOptionsValues,
                                       unsigned int numJitOptions,
                                       CUlibraryOption *libraryOptions,
                                       void **libraryOptionValues,
                                       unsigned int numLibraryOptions)
{
    struct lib *l;
    struct mod *m;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!library || (numJitOptions && (!jitOptions || !jitOptionsValues)) ||
        (numLibraryOptions && (!libraryOptions || !libraryOptionValues)))
        return CUDA_ERROR_INVALID_VALUE;
    if (!(l = calloc(1, sizeof(*l))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    if ((r = load(&m, code))) {
        free(l);
        return r;
    }
    l->mod = m;
    l->next = libs;
    libs = l;
    *library = (CUlibrary)(void *)l;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuLibraryUnload(CUlibrary library)
{
    struct lib *l;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!(l = lib_find(library)))
        return library ? vgpu_fake_cu_refuse(CUDA_ERROR_INVALID_HANDLE, "cuLibraryUnload",
                                             "unknown library %p", (void *)library)
                       : CUDA_ERROR_INVALID_HANDLE;
    for (struct lib **p = &libs; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    fns_free(l->kernels);
    unload(l->mod);
    free(l);
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name)
{
    struct lib *l;
    struct fn *f;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!pKernel)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(l = lib_find(library)))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((r = fn_get(&l->kernels, l->mod, l, name, &f)))
        return r;
    *pKernel = (CUkernel)(void *)f;
    return CUDA_SUCCESS;
}

/*
 * The kernels of a library whose image is PTX: each ".entry NAME" of the
 * text, as a kernel of the library (made as cuLibraryGetKernel makes
 * them).  A binary image's kernels are found only by name.
 */
static CUresult lib_entries(struct lib *l)
{
    const char *t = (const char *)l->mod->image, *end = t + l->mod->size;
    char name[256];

    if (l->mod->size < 8 || memchr(t, 0, l->mod->size) == NULL)
        return CUDA_SUCCESS;             /* PTX is a NUL-terminated text */
    while ((t = strstr(t, ".entry")) && t < end) {
        size_t n = 0;
        struct fn *f;
        CUresult r;

        t += 6;
        while (*t == ' ' || *t == '\t')
            t++;
        while (n < sizeof(name) - 1 && (*t == '_' || *t == '$' || (*t >= '0' && *t <= '9') ||
                                        (*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z')))
            name[n++] = *t++;
        name[n] = 0;
        if (n && (r = fn_get(&l->kernels, l->mod, l, name, &f)))
            return r;
    }
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuLibraryGetKernelCount(unsigned int *count, CUlibrary lib)
{
    struct lib *l;
    unsigned int n = 0;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!count)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(l = lib_find(lib)))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((r = lib_entries(l)))
        return r;
    for (struct fn *f = l->kernels; f; f = f->next)
        n++;
    *count = n;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuLibraryEnumerateKernels(CUkernel *kernels, unsigned int numKernels, CUlibrary lib)
{
    struct lib *l;
    unsigned int i = 0;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!kernels || !numKernels)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(l = lib_find(lib)))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((r = lib_entries(l)))
        return r;
    for (struct fn *f = l->kernels; f && i < numKernels; f = f->next)
        kernels[i++] = (CUkernel)(void *)f;
    return i == numKernels ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

FAKE_EXPORT CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library)
{
    struct lib *l;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!pMod)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(l = lib_find(library)))
        return CUDA_ERROR_INVALID_HANDLE;
    *pMod = (CUmodule)(void *)l->mod;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
                                        const char *name)
{
    struct lib *l;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!(l = lib_find(library)))
        return CUDA_ERROR_INVALID_HANDLE;
    return global_get(l->mod, dptr, bytes, name);
}

/* A managed variable of the library: its memory, which the host may reach too. */
FAKE_EXPORT CUresult cuLibraryGetManaged(CUdeviceptr *dptr, size_t *bytes, CUlibrary library,
                                         const char *name)
{
    struct lib *l;
    struct global *g;
    CUresult r = vgpu_fake_cu_init_ok();      /* context-independent, as NVIDIA's runtime calls it */

    if (r)
        return r;
    if (!(l = lib_find(library)))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((r = global_find(l->mod, name, true, &g)))
        return r;
    if (dptr)
        *dptr = (CUdeviceptr)(uintptr_t)g->dev;
    if (bytes)
        *bytes = GLOBAL_SIZE;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel)
{
    struct fn *k, *f;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!pFunc)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(k = kernel_find(kernel)))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((r = fn_get(&k->mod->fns, k->mod, NULL, k->name, &f)))
        return r;
    *pFunc = (CUfunction)(void *)f;
    return CUDA_SUCCESS;
}

/* ---- what a function or kernel says about itself ---- */

static CUresult param_info(const struct fn *f, size_t i, size_t *off, size_t *size)
{
    /* past the last parameter (or none at all): how callers find the end */
    if (!f->fake || i >= (size_t)f->fake->nparams)
        return CUDA_ERROR_INVALID_VALUE;
    if (off)
        *off = f->fake->off[i];
    if (size)
        *size = f->fake->size[i];
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
                                        size_t *paramSize)
{
    struct fn *f;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!(f = callable("cuFuncGetParamInfo", func)))
        return CUDA_ERROR_INVALID_HANDLE;
    return param_info(f, paramIndex, paramOffset, paramSize);
}

FAKE_EXPORT CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex,
                                          size_t *paramOffset, size_t *paramSize)
{
    struct fn *f;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!(f = kernel_find(kernel)))
        return CUDA_ERROR_INVALID_HANDLE;
    return param_info(f, paramIndex, paramOffset, paramSize);
}

FAKE_EXPORT CUresult cuFuncGetName(const char **name, CUfunction hfunc)
{
    struct fn *f;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(f = callable("cuFuncGetName", hfunc)))
        return CUDA_ERROR_INVALID_HANDLE;
    *name = f->name;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuKernelGetName(const char **name, CUkernel hfunc)
{
    struct fn *f;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!name)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(f = kernel_find(hfunc)))
        return CUDA_ERROR_INVALID_HANDLE;
    *name = f->name;
    return CUDA_SUCCESS;
}

static CUresult attr_get(const struct fn *f, int *pi, CUfunction_attribute a)
{
    if (!pi || (unsigned)a >= CU_FUNC_ATTRIBUTE_MAX)
        return CUDA_ERROR_INVALID_VALUE;
    *pi = f->attrs[a];
    return CUDA_SUCCESS;
}

/* Only the attributes the driver lets a program set, within their ranges. */
static CUresult attr_set(struct fn *f, CUfunction_attribute a, int v)
{
    switch (a) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        if (v < 0 || v > 227 << 10)
            return CUDA_ERROR_INVALID_VALUE;
        break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
        if (v < -1 || v > 100)
            return CUDA_ERROR_INVALID_VALUE;
        break;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
        if (v < 0 || v > 8)
            return CUDA_ERROR_INVALID_VALUE;
        break;
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        if (v < 0 || v > 2)
            return CUDA_ERROR_INVALID_VALUE;
        break;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    f->attrs[a] = v;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
    struct fn *f;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!(f = callable("cuFuncGetAttribute", hfunc)))
        return CUDA_ERROR_INVALID_HANDLE;
    return attr_get(f, pi, attrib);
}

FAKE_EXPORT CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
    struct fn *f;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (!(f = callable("cuFuncSetAttribute", hfunc)))
        return CUDA_ERROR_INVALID_HANDLE;
    return attr_set(f, attrib, value);
}

FAKE_EXPORT CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!callable("cuFuncSetCacheConfig", hfunc))
        return CUDA_ERROR_INVALID_HANDLE;
    return (unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL ? CUDA_ERROR_INVALID_VALUE
                                                         : CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuKernelGetAttribute(int *pi, CUfunction_attribute attrib, CUkernel kernel,
                                          CUdevice dev)
{
    struct fn *f;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (!(f = kernel_find(kernel)))
        return CUDA_ERROR_INVALID_HANDLE;
    return attr_get(f, pi, attrib);
}

FAKE_EXPORT CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel,
                                          CUdevice dev)
{
    struct fn *f;
    CUresult r = vgpu_fake_cu_init_ok();

    if (r)
        return r;
    if (dev != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (!(f = kernel_find(kernel)))
        return CUDA_ERROR_INVALID_HANDLE;
    return attr_set(f, attrib, val);
}

/* ---- occupancy: what exec.c's runtime answers ---- */

static CUresult occupancy(int *numBlocks, CUfunction func, int blockSize)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!callable("cuOccupancyMaxActiveBlocksPerMultiprocessor", func))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!numBlocks || blockSize <= 0 || blockSize > 1024)
        return CUDA_ERROR_INVALID_VALUE;
    *numBlocks = 2048 / blockSize > 32 ? 32 : 2048 / blockSize;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func,
                                                                 int blockSize,
                                                                 size_t dynamicSMemSize)
{
    (void)dynamicSMemSize;
    return occupancy(numBlocks, func, blockSize);
}

FAKE_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(
    int *numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize, unsigned int flags)
{
    (void)dynamicSMemSize;
    if (flags & ~(unsigned)CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE)
        return CUDA_ERROR_INVALID_VALUE;
    return occupancy(numBlocks, func, blockSize);
}

/*
 * Clusters: the fake device's blocks all fit on its 80 multiprocessors, one
 * block a cluster unless the config asks for cluster dimensions.
 */
static CUresult cluster_occupancy(int *out, CUfunction func, const CUlaunchConfig *config, bool size)
{
    unsigned cluster = 1;
    int blocks = 0;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!out || !config || (config->numAttrs && !config->attrs))
        return CUDA_ERROR_INVALID_VALUE;
    for (unsigned i = 0; i < config->numAttrs; i++)
        if (config->attrs[i].id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION)
            cluster = config->attrs[i].value.clusterDim.x * config->attrs[i].value.clusterDim.y *
                      config->attrs[i].value.clusterDim.z;
    if (!cluster || cluster > 16)
        return CUDA_ERROR_INVALID_CLUSTER_SIZE;
    if ((r = occupancy(&blocks, func, (int)(config->blockDimX * config->blockDimY * config->blockDimZ))))
        return r;
    *out = size ? 8 : blocks * 80 / (int)cluster;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func,
                                                  const CUlaunchConfig *config)
{
    return cluster_occupancy(numClusters, func, config, false);
}

FAKE_EXPORT CUresult cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func,
                                                        const CUlaunchConfig *config)
{
    return cluster_occupancy(clusterSize, func, config, true);
}

/* ---- launches ---- */

struct launch {
    unsigned grid[3], block[3];
    unsigned shmem;
    CUstream stream;
    bool cooperative;
};

/* argv[i] points at parameter i inside extra's buffer. */
static CUresult args_from_extra(const struct fn *f, void **extra, void **argv)
{
    char *buf = NULL;
    size_t *size = NULL;
    int i;

    for (i = 0; i < EXTRA_MAX && extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
        if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
            buf = extra[i + 1];
        else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE)
            size = extra[i + 1];
        else
            return CUDA_ERROR_INVALID_VALUE;
    }
    if (i >= EXTRA_MAX || !buf || !size)
        return CUDA_ERROR_INVALID_VALUE;
    for (int j = 0; f->fake && j < f->fake->nparams; j++) {
        if (f->fake->off[j] + f->fake->size[j] > *size)
            return CUDA_ERROR_INVALID_VALUE;
        argv[j] = buf + f->fake->off[j];
    }
    return CUDA_SUCCESS;
}

/* A launch into a capturing stream becomes a node holding a copy of its parameters. */
static bool capture(const struct fn *f, void **args, CUstream stream, CUresult *r)
{
    struct vgpu_fake_op op = { .kind = f->fake ? VGPU_FAKE_OP_KERNEL : VGPU_FAKE_OP_EMPTY,
                               .kernel = f->fake };

    for (int i = 0; f->fake && i < f->fake->nparams; i++)
        memcpy(op.args + f->fake->off[i], args[i], f->fake->size[i]);
    return vgpu_fake_captured(stream, &op, r);
}

CUresult vgpu_fake_kernel_op(const char *fn, CUfunction h, void **params, void **extra,
                             struct vgpu_fake_op *op)
{
    struct fn *f = callable(fn, h);
    void *argv[4] = { 0 };
    CUresult r;

    if (!f)
        return CUDA_ERROR_INVALID_HANDLE;
    if (params && extra)
        return CUDA_ERROR_INVALID_VALUE;
    if (extra && (r = args_from_extra(f, extra, argv)))
        return r;
    if (f->fake && !params && !extra && f->fake->nparams)
        return CUDA_ERROR_INVALID_VALUE;
    *op = (struct vgpu_fake_op){ .kind = f->fake ? VGPU_FAKE_OP_KERNEL : VGPU_FAKE_OP_EMPTY,
                                 .kernel = f->fake, .func = h };
    for (int i = 0; f->fake && i < f->fake->nparams; i++)
        memcpy(op->args + f->fake->off[i], (extra ? argv : params)[i], f->fake->size[i]);
    return CUDA_SUCCESS;
}

static CUresult launch(const char *fn, CUfunction h, const struct launch *l, void **params,
                       void **extra)
{
    struct fn *f;
    void *argv[4] = { 0 };
    dim3 grid = { l->grid[0], l->grid[1], l->grid[2] };
    dim3 block = { l->block[0], l->block[1], l->block[2] };
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!(f = callable(fn, h)))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!vgpu_fake_stream_ok(fn, l->stream))
        return CUDA_ERROR_INVALID_HANDLE;
    if ((r = VGPU_FAKE_CU(vgpu_fake_launch_config(grid, block))))
        return r;
    if (l->shmem > (unsigned)f->attrs[CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES])
        return CUDA_ERROR_INVALID_VALUE;
    if (l->cooperative &&
        (uint64_t)grid.x * grid.y * grid.z >
            4ull * (uint64_t)(2048 / (block.x * block.y * block.z) > 32
                                  ? 32 : 2048 / (block.x * block.y * block.z)))
        return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
    if (params && extra)
        return CUDA_ERROR_INVALID_VALUE;
    if (extra && (r = args_from_extra(f, extra, argv)))
        return r;
    if (f->fake && !params && !extra && f->fake->nparams)
        return CUDA_ERROR_INVALID_VALUE;
    if (capture(f, extra ? argv : params, l->stream, &r))
        return r;
    if (!f->fake)
        return CUDA_SUCCESS;
    return VGPU_FAKE_CU(f->fake->run(extra ? argv : params));
}

FAKE_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                    unsigned int gridDimZ, unsigned int blockDimX,
                                    unsigned int blockDimY, unsigned int blockDimZ,
                                    unsigned int sharedMemBytes, CUstream hStream,
                                    void **kernelParams, void **extra)
{
    struct launch l = { { gridDimX, gridDimY, gridDimZ }, { blockDimX, blockDimY, blockDimZ },
                        sharedMemBytes, hStream, false };

    return launch("cuLaunchKernel", f, &l, kernelParams, extra);
}

FAKE_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX,
                                               unsigned int gridDimY, unsigned int gridDimZ,
                                               unsigned int blockDimX, unsigned int blockDimY,
                                               unsigned int blockDimZ,
                                               unsigned int sharedMemBytes, CUstream hStream,
                                               void **kernelParams)
{
    struct launch l = { { gridDimX, gridDimY, gridDimZ }, { blockDimX, blockDimY, blockDimZ },
                        sharedMemBytes, hStream, true };

    return launch("cuLaunchCooperativeKernel", f, &l, kernelParams, NULL);
}

/* Launch attributes are accepted; but for cooperative, they change nothing. */
FAKE_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f,
                                      void **kernelParams, void **extra)
{
    struct launch l;
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!config || (config->numAttrs && !config->attrs))
        return CUDA_ERROR_INVALID_VALUE;
    l = (struct launch){ { config->gridDimX, config->gridDimY, config->gridDimZ },
                         { config->blockDimX, config->blockDimY, config->blockDimZ },
                         config->sharedMemBytes, config->hStream, false };
    for (unsigned i = 0; i < config->numAttrs; i++)
        if (config->attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE)
            l.cooperative = config->attrs[i].value.cooperative != 0;
    return launch("cuLaunchKernelEx", f, &l, kernelParams, extra);
}

FAKE_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX,
                                         unsigned int gridDimY, unsigned int gridDimZ,
                                         unsigned int blockDimX, unsigned int blockDimY,
                                         unsigned int blockDimZ, unsigned int sharedMemBytes,
                                         CUstream hStream, void **kernelParams, void **extra);
CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                             unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                             unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                             void **kernelParams, void **extra)
{
    return cuLaunchKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                          sharedMemBytes, hStream, kernelParams, extra);
}

FAKE_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX,
                                                    unsigned int gridDimY, unsigned int gridDimZ,
                                                    unsigned int blockDimX,
                                                    unsigned int blockDimY,
                                                    unsigned int blockDimZ,
                                                    unsigned int sharedMemBytes,
                                                    CUstream hStream, void **kernelParams);
CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                        unsigned int gridDimZ, unsigned int blockDimX,
                                        unsigned int blockDimY, unsigned int blockDimZ,
                                        unsigned int sharedMemBytes, CUstream hStream,
                                        void **kernelParams)
{
    return cuLaunchCooperativeKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                                     blockDimZ, sharedMemBytes, hStream, kernelParams);
}

FAKE_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f,
                                           void **kernelParams, void **extra);
CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                               void **extra)
{
    return cuLaunchKernelEx(config, f, kernelParams, extra);
}
