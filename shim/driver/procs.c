/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cuGetProcAddress: a base name, a CUDA version and the stream flags to the
 * exported function a real driver would give.  The versions come from the
 * toolkit's cudaTypedefs.h (PFN_<name>_v<version>, the table procs.cmake
 * writes): the newest signature dating from at or before the requested
 * version wins.  The k-th of a name's versions is exported as <name> (k =
 * 0) and <name>_v<k+1> after, unless the name also has an export older than
 * every typedef (the CUDA 3.1 ABI of cuMemAlloc, cuCtxCreate, ...): then
 * the versions count from _v2 and requests older than the first get the
 * unsuffixed one.  With CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM and a
 * version at or after the name's per-thread typedef, the _ptds or _ptsz
 * form of the chosen export is given.  Names are resolved in this library
 * (dlsym), so every answer is one of its exports.
 */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "driver_internal.h"

#define MAX_VERSIONS 16

static void *self(void)
{
    static void *h;
    Dl_info di;

    if (!h && dladdr((void *)self, &di) && di.dli_fname)
        h = dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    return h;
}

static void *lookup(const char *name)
{
    void *h = self();

    return h ? dlsym(h, name) : NULL;
}

/* How many of name, name_v2, name_v3, ... this library exports (in a row). */
static int exported_variants(const char *name)
{
    char buf[256];
    int m = lookup(name) ? 1 : 0;

    for (int k = 2; k < 10; k++) {
        snprintf(buf, sizeof(buf), "%s_v%d", name, k);
        if (!lookup(buf))
            break;
        m = k;
    }
    return m;
}

static CUresult resolve(const char *symbol, void **pfn, int version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult *status)
{
    int versions[MAX_VERSIONS], n = 0, pt_version = -1, m, k = -1;
    char name[200], pt[256];
    void *fn = NULL;

    *pfn = NULL;
    if (strlen(symbol) > 180) {
        if (status)
            *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return CUDA_ERROR_NOT_FOUND;
    }
    for (unsigned i = 0; i < vgpu_nprocs; i++) {
        if (strcmp(vgpu_procs[i].name, symbol))
            continue;
        if (vgpu_procs[i].per_thread) {
            if (pt_version < 0 || vgpu_procs[i].version < pt_version)
                pt_version = vgpu_procs[i].version;
        } else if (n < MAX_VERSIONS) {
            int j = n++;

            /* kept ascending */
            while (j > 0 && versions[j - 1] > vgpu_procs[i].version) {
                versions[j] = versions[j - 1];
                j--;
            }
            versions[j] = vgpu_procs[i].version;
        }
    }
    if (n == 0) {
        if (status)
            *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return CUDA_ERROR_NOT_FOUND;
    }
    m = exported_variants(symbol);
    for (int i = 0; i < n; i++)
        if (versions[i] <= version)
            k = i;
    if (m > n)
        k++;                     /* an unsuffixed export older than every typedef */
    if (k < 0 || k >= m) {
        if (status)
            *status = k < 0 ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
                            : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return CUDA_ERROR_NOT_FOUND;
    }
    if (k == 0)
        snprintf(name, sizeof(name), "%s", symbol);
    else
        snprintf(name, sizeof(name), "%s_v%d", symbol, k + 1);
    if ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && pt_version >= 0 &&
        version >= pt_version) {
        snprintf(pt, sizeof(pt), "%s_ptds", name);
        if (!(fn = lookup(pt))) {
            snprintf(pt, sizeof(pt), "%s_ptsz", name);
            fn = lookup(pt);
        }
    }
    if (!fn)
        fn = lookup(name);
    if (!fn) {
        if (status)
            *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return CUDA_ERROR_NOT_FOUND;
    }
    *pfn = fn;
    if (status)
        *status = CU_GET_PROC_ADDRESS_SUCCESS;
    return CUDA_SUCCESS;
}

/*
 * A name not found (or not at that version) is CUDA_SUCCESS with a NULL
 * function and the reason in the status, as NVIDIA's documentation says and
 * driver 580 does on an H200, with or without a status to write
 * (tests/driver/drv_fill.c, docs/driver.md).
 */
VGPU_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version,
                                         cuuint64_t flags, CUdriverProcAddressQueryResult *status)
{
    CUresult st;

    if (!symbol || !pfn || (flags & ~(cuuint64_t)(CU_GET_PROC_ADDRESS_LEGACY_STREAM |
                                                 CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))) {
        if (pfn)
            *pfn = NULL;
        return CUDA_ERROR_INVALID_VALUE;
    }
    st = resolve(symbol, pfn, version, flags, status);
    if (st == CUDA_ERROR_NOT_FOUND)
        vgpu_shim_log(VGPU_LOG_DEBUG, "cuGetProcAddress: %s at version %d is not in vgpu's "
                      "libcuda.so.1 (a NULL function)", symbol, version);
    return st == CUDA_ERROR_NOT_FOUND ? CUDA_SUCCESS : st;
}

VGPU_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    return cuGetProcAddress_v2(symbol, pfn, version, flags, NULL);
}
