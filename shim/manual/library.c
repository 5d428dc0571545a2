/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Launches with attributes (cudaLaunchKernelExC: clusters, cooperative,
 * priority, ...), cluster occupancy, and the library API (cudaLibrary*,
 * cudaKernel_t) for the runtime, on vgpu's own libcuda.so.1 (ondriver.h):
 * cuLaunchKernelEx, cuOccupancyMax*Cluster*, cuLibrary* and cuKernel*,
 * with the driver layer's checks on the server.
 *
 * A kernel is named by the program's host stub or by a cudaKernel_t of a
 * library.  A host stub becomes the kernel's cudaFunction_t
 * (cudaGetFuncBySymbol); a cudaKernel_t is a CUkernel, which the driver
 * takes where a CUfunction goes.  The kernels this process got from
 * libraries are kept here, so cudaLaunchKernel of one (which the runtime
 * allows) is launched as the driver's.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../shim_internal.h"
#include "ondriver.h"

_Static_assert(sizeof(cudaLaunchAttribute) == sizeof(CUlaunchAttribute),
               "a runtime launch attribute is the driver's");

/* ---- the kernels of libraries ---- */

static pthread_mutex_t kern_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t *kerns;
static size_t nkerns, cap_kerns;

static void kernel_keep(cudaKernel_t k)
{
    pthread_mutex_lock(&kern_lock);
    for (size_t i = 0; i < nkerns; i++)
        if (kerns[i] == (uintptr_t)k)
            goto out;
    if (nkerns == cap_kerns) {
        size_t cap = cap_kerns ? 2 * cap_kerns : 64;
        uintptr_t *p = realloc(kerns, cap * sizeof(*p));

        if (!p)
            goto out;
        kerns = p;
        cap_kerns = cap;
    }
    kerns[nkerns++] = (uintptr_t)k;
out:
    pthread_mutex_unlock(&kern_lock);
}

bool vgpu_shim_library_kernel(const void *func)
{
    bool yes = false;

    pthread_mutex_lock(&kern_lock);
    for (size_t i = 0; i < nkerns && !yes; i++)
        yes = kerns[i] == (uintptr_t)func;
    pthread_mutex_unlock(&kern_lock);
    return yes;
}

/*
 * The function a launch or a kernel node names: a host stub's
 * cudaFunction_t; a library's kernel, or a function handle (as a kernel
 * node's parameters read back give it), as it is: the server checks it is
 * the session's.
 */
cudaError_t vgpu_shim_function_of(const void *func, CUfunction *f)
{
    cudaFunction_t rf;
    cudaError_t st;

    if (func && (vgpu_shim_library_kernel(func) || vgpu_shim_is_function(func))) {
        *f = (CUfunction)func;
        return cudaSuccess;
    }
    if (!vgpu_shim_is_stub(func)) {
        *f = (CUfunction)func;         /* a handle from elsewhere (a captured node): the server judges */
        return cudaSuccess;
    }
    if ((st = cudaGetFuncBySymbol(&rf, func)) != cudaSuccess)
        return st;
    *f = (CUfunction)rf;
    return cudaSuccess;
}

/* ---- launches ---- */

static void launch_config(const cudaLaunchConfig_t *c, CUlaunchConfig *d)
{
    memset(d, 0, sizeof(*d));
    d->gridDimX = c->gridDim.x;
    d->gridDimY = c->gridDim.y;
    d->gridDimZ = c->gridDim.z;
    d->blockDimX = c->blockDim.x;
    d->blockDimY = c->blockDim.y;
    d->blockDimZ = c->blockDim.z;
    d->sharedMemBytes = (unsigned int)c->dynamicSmemBytes;
    d->hStream = c->stream;
    d->attrs = (CUlaunchAttribute *)c->attrs;
    d->numAttrs = c->numAttrs;
}

static cudaError_t launch_ex(const cudaLaunchConfig_t *config, const void *func, void **args,
                             bool ptsz)
{
    CUlaunchConfig c;
    CUfunction f;
    cudaError_t st;
    ONDRIVER(cuLaunchKernelEx, cuLaunchKernelEx);

    if (!config || config->dynamicSmemBytes > UINT32_MAX)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if ((st = vgpu_shim_function_of(func, &f)) != cudaSuccess)
        return st;
    launch_config(config, &c);
    if (ptsz && !config->stream)
        c.hStream = CU_STREAM_PER_THREAD;   /* a per-thread default stream build's stream 0 */
    return vgpu_ondriver_done(p(&c, f, args, NULL));   /* work: managed memory goes first (client) */
}

VGPU_EXPORT cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t *config, const void *func,
                                            void **args)
{
    return launch_ex(config, func, args, false);
}

VGPU_EXPORT cudaError_t cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t *config, const void *func,
                                                 void **args)
{
    return launch_ex(config, func, args, true);
}

cudaError_t vgpu_shim_launch_library_kernel(const void *func, dim3 grid, dim3 block, void **args,
                                            size_t shmem, cudaStream_t stream, bool ptsz)
{
    cudaLaunchConfig_t c = { .gridDim = grid, .blockDim = block, .dynamicSmemBytes = shmem,
                             .stream = stream };

    return launch_ex(&c, func, args, ptsz);
}

VGPU_EXPORT cudaError_t cudaOccupancyMaxActiveClusters(int *numClusters, const void *func,
                                                       const cudaLaunchConfig_t *launchConfig)
{
    CUlaunchConfig c;
    CUfunction f;
    cudaError_t st;
    ONDRIVER(cuOccupancyMaxActiveClusters, cuOccupancyMaxActiveClusters);

    if (!launchConfig)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if ((st = vgpu_shim_function_of(func, &f)) != cudaSuccess)
        return st;
    launch_config(launchConfig, &c);
    return vgpu_ondriver_done(p(numClusters, f, &c));
}

VGPU_EXPORT cudaError_t cudaOccupancyMaxPotentialClusterSize(int *clusterSize, const void *func,
                                                             const cudaLaunchConfig_t *launchConfig)
{
    CUlaunchConfig c;
    CUfunction f;
    cudaError_t st;
    ONDRIVER(cuOccupancyMaxPotentialClusterSize, cuOccupancyMaxPotentialClusterSize);

    if (!launchConfig)
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    if ((st = vgpu_shim_function_of(func, &f)) != cudaSuccess)
        return st;
    launch_config(launchConfig, &c);
    return vgpu_ondriver_done(p(clusterSize, f, &c));
}

/* ---- libraries ---- */

ONDRIVER_PASS(cudaLibraryLoadData,
              (cudaLibrary_t *library, const void *code, enum cudaJitOption *jitOptions,
               void **jitOptionsValues, unsigned int numJitOptions,
               enum cudaLibraryOption *libraryOptions, void **libraryOptionValues,
               unsigned int numLibraryOptions),
              cuLibraryLoadData, cuLibraryLoadData,
              ((CUlibrary *)library, code, (CUjit_option *)jitOptions, jitOptionsValues,
               numJitOptions, (CUlibraryOption *)libraryOptions, libraryOptionValues,
               numLibraryOptions))
ONDRIVER_PASS(cudaLibraryLoadFromFile,
              (cudaLibrary_t *library, const char *fileName, enum cudaJitOption *jitOptions,
               void **jitOptionsValues, unsigned int numJitOptions,
               enum cudaLibraryOption *libraryOptions, void **libraryOptionValues,
               unsigned int numLibraryOptions),
              cuLibraryLoadFromFile, cuLibraryLoadFromFile,
              ((CUlibrary *)library, fileName, (CUjit_option *)jitOptions, jitOptionsValues,
               numJitOptions, (CUlibraryOption *)libraryOptions, libraryOptionValues,
               numLibraryOptions))
ONDRIVER_PASS(cudaLibraryUnload, (cudaLibrary_t library), cuLibraryUnload, cuLibraryUnload,
              ((CUlibrary)library))
ONDRIVER_PASS(cudaLibraryGetKernelCount, (unsigned int *count, cudaLibrary_t lib),
              cuLibraryGetKernelCount, cuLibraryGetKernelCount, (count, (CUlibrary)lib))
ONDRIVER_PASS(cudaKernelSetAttributeForDevice,
              (cudaKernel_t kernel, enum cudaFuncAttribute attr, int value, int device),
              cuKernelSetAttribute, cuKernelSetAttribute,
              ((CUfunction_attribute)attr, value, (CUkernel)kernel, (CUdevice)device))

VGPU_EXPORT cudaError_t cudaLibraryGetKernel(cudaKernel_t *pKernel, cudaLibrary_t library,
                                             const char *name)
{
    CUresult r;
    ONDRIVER(cuLibraryGetKernel, cuLibraryGetKernel);

    r = p((CUkernel *)pKernel, (CUlibrary)library, name);
    if (r == CUDA_SUCCESS && pKernel)
        kernel_keep(*pKernel);
    return vgpu_ondriver_done(r);
}

VGPU_EXPORT cudaError_t cudaLibraryEnumerateKernels(cudaKernel_t *kernels, unsigned int numKernels,
                                                    cudaLibrary_t lib)
{
    CUresult r;
    ONDRIVER(cuLibraryEnumerateKernels, cuLibraryEnumerateKernels);

    r = p((CUkernel *)kernels, numKernels, (CUlibrary)lib);
    for (unsigned int i = 0; r == CUDA_SUCCESS && kernels && i < numKernels; i++)
        if (kernels[i])
            kernel_keep(kernels[i]);
    return vgpu_ondriver_done(r);
}

/* A library's symbol the driver found (r): device memory of the program's, told to the caller. */
static cudaError_t library_symbol(CUresult r, CUdeviceptr d, size_t n, void **dptr, size_t *bytes)
{
    if (r == CUDA_SUCCESS) {
        if (d && n)
            vgpu_shim_device_range_add((void *)(uintptr_t)d, n);
        if (dptr)
            *dptr = (void *)(uintptr_t)d;
        if (bytes)
            *bytes = n;
    }
    return vgpu_ondriver_done(r);
}

/*
 * A library's managed variable: vgpu's libcuda.so.1 maps its shadow in the
 * client, which both libraries share, so the runtime's copies, launches
 * and cudaMemRangeGetAttribute know it as managed memory too.
 */
VGPU_EXPORT cudaError_t cudaLibraryGetManaged(void **dptr, size_t *bytes, cudaLibrary_t library,
                                              const char *name)
{
    CUdeviceptr d = 0;
    size_t n = 0;
    CUresult r;
    ONDRIVER(cuLibraryGetManaged, cuLibraryGetManaged);

    r = p(&d, &n, (CUlibrary)library, name);       /* before d and n are read */
    return library_symbol(r, d, n, dptr, bytes);
}

/* A library's global is device memory of the program's: cudaMemcpyDefault knows it as such. */
VGPU_EXPORT cudaError_t cudaLibraryGetGlobal(void **dptr, size_t *bytes, cudaLibrary_t library,
                                             const char *name)
{
    CUdeviceptr d = 0;
    size_t n = 0;
    CUresult r;
    ONDRIVER(cuLibraryGetGlobal, cuLibraryGetGlobal);

    r = p(&d, &n, (CUlibrary)library, name);       /* before d and n are read */
    return library_symbol(r, d, n, dptr, bytes);
}
