/* SPDX-License-Identifier: Apache-2.0
 *
 * drv_context: explicit contexts. Creates a context with cuCtxCreate (in
 * CUDA 13 the macro for cuCtxCreate_v4, whose creation parameters may be
 * NULL), checks cuCtxGetCurrent/cuCtxGetDevice/cuCtxGetApiVersion, then
 * pushes the device's primary context (cuDevicePrimaryCtxRetain) on top of
 * it and pops it again. Memory allocated in each context must report that
 * context and the right memory type through cuPointerGetAttribute, and must
 * hold what was written to it. Handles and versions are compared, never
 * printed.
 *
 * Output contract: see examples/README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda.h>

#include "drv_check.h"

enum { N = 1024 };

static int failed;

static void expect(int ok, const char *what)
{
    printf("%s: %s\n", what, ok ? "ok" : "WRONG");
    if (!ok) {
        printf("FAILED: %s\n", what);
        failed = 1;
    }
}

/* Checks that ptr belongs to ctx and is device memory, then fills it with
 * value and reads it back. ctx must be current. */
static void check_device_memory(const char *label, CUdeviceptr ptr, CUcontext ctx,
                                unsigned value)
{
    CUcontext owner = NULL;
    unsigned int type = 0;
    static unsigned host[N];
    char what[128];

    DRV_CHECK(cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, ptr));
    snprintf(what, sizeof(what), "%s: pointer's context", label);
    expect(owner == ctx, what);
    DRV_CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, ptr));
    snprintf(what, sizeof(what), "%s: memory type device", label);
    expect(type == CU_MEMORYTYPE_DEVICE, what);

    DRV_CHECK(cuMemsetD32(ptr, value, N));
    DRV_CHECK(cuMemcpyDtoH(host, ptr, sizeof(host)));
    int same = 1;
    for (int i = 0; i < N; i++)
        same &= host[i] == value;
    snprintf(what, sizeof(what), "%s: contents", label);
    expect(same, what);
}

int main(void)
{
    CUdevice dev, got_dev;
    CUcontext ctx, primary, current, popped;
    CUdeviceptr d_own, d_primary;
    unsigned int api_version = 0;
    void *host;

    printf("drv_context: explicit and primary contexts\n");
    DRV_CHECK(cuInit(0));
    DRV_CHECK(cuDeviceGet(&dev, 0));

    DRV_CHECK(cuCtxCreate(&ctx, NULL, 0, dev));
    DRV_CHECK(cuCtxGetCurrent(&current));
    expect(current == ctx, "new context is current");
    DRV_CHECK(cuCtxGetDevice(&got_dev));
    expect(got_dev == dev, "cuCtxGetDevice");
    DRV_CHECK(cuCtxGetApiVersion(ctx, &api_version));
    expect(api_version > 0, "cuCtxGetApiVersion");

    DRV_CHECK(cuMemAlloc(&d_own, N * sizeof(unsigned)));
    check_device_memory("created context", d_own, ctx, 0x11111111u);

    DRV_CHECK(cuMemAllocHost(&host, 4096));
    unsigned int type = 0;
    DRV_CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
                                    (CUdeviceptr)(uintptr_t)host));
    expect(type == CU_MEMORYTYPE_HOST, "cuMemAllocHost: memory type host");

    DRV_CHECK(cuDevicePrimaryCtxRetain(&primary, dev));
    expect(primary != ctx, "primary context differs from created one");
    DRV_CHECK(cuCtxPushCurrent(primary));
    DRV_CHECK(cuCtxGetCurrent(&current));
    expect(current == primary, "pushed primary context is current");
    DRV_CHECK(cuMemAlloc(&d_primary, N * sizeof(unsigned)));
    check_device_memory("primary context", d_primary, primary, 0x22222222u);
    DRV_CHECK(cuMemFree(d_primary));
    DRV_CHECK(cuCtxPopCurrent(&popped));
    expect(popped == primary, "cuCtxPopCurrent returns the primary context");
    DRV_CHECK(cuCtxGetCurrent(&current));
    expect(current == ctx, "created context is current again");
    DRV_CHECK(cuDevicePrimaryCtxRelease(dev));

    /* The created context's memory survived the detour. */
    check_device_memory("created context after pop", d_own, ctx, 0x33333333u);
    DRV_CHECK(cuMemFreeHost(host));
    DRV_CHECK(cuMemFree(d_own));
    DRV_CHECK(cuCtxDestroy(ctx));

    if (failed)
        return 2;
    printf("drv_context: PASSED\n");
    return 0;
}
