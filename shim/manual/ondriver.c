/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu's own libcuda.so.1 for the runtime calls made on it (ondriver.h),
 * loaded once from this library's directory.  The two libraries share one
 * client and one connection (client/instance.c), so the calls of both go
 * to the server in the program's order.  Without it, each such call says
 * so once and returns cudaErrorNotSupported.
 */
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>

#include <cuda_runtime_api.h>

#include "ondriver.h"

static void *drv;
static char drv_path[PATH_MAX];
static pthread_once_t drv_once = PTHREAD_ONCE_INIT;

static void drv_load(void)
{
    Dl_info di;
    char self[PATH_MAX];

    if (!dladdr((void *)drv_load, &di) || !di.dli_fname ||
        snprintf(self, sizeof(self), "%s", di.dli_fname) >= (int)sizeof(self))
        return;
    snprintf(drv_path, sizeof(drv_path), "%s/libcuda.so.1", dirname(self));
    drv = dlopen(drv_path, RTLD_NOW | RTLD_LOCAL);
    /*
     * As NVIDIA's runtime before its driver calls: the device's primary
     * context made current (on the server's session thread), so a runtime
     * call that is the program's first (cudaIpcOpenMemHandle in a process
     * that only imports, cudaGraphCreate) finds the driver initialized.
     */
    if (drv)
        cudaFree(NULL);
    if (!drv)
        vgpu_shim_log(VGPU_LOG_ERROR, "CUDA graphs, stream capture, launches with attributes and "
                      "libraries use vgpu's libcuda.so.1 beside libcudart.so.13, which could not be "
                      "loaded (%s): those calls return cudaErrorNotSupported", dlerror());
}

void *vgpu_ondriver_sym(const char *name, const char *rt)
{
    void *f;

    pthread_once(&drv_once, drv_load);
    f = drv ? dlsym(drv, name) : NULL;
    if (!f && drv)
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: %s is missing from %s", rt, name, drv_path);
    return f;
}
