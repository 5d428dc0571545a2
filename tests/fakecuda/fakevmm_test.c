/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fake driver's virtual memory management and memory pools
 * (driver_vmm.c, driver_pool.c), called directly, against what the CUDA
 * documentation says: two mappings of one allocation alias; mapped memory
 * is device memory only with access and until unmapped; a release while
 * mapped keeps the memory; whole mappings only; a pool's attributes and its
 * accounting, and a destroyed pool's allocations stay valid.
 */
#include <cuda.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#define G (2u << 20)

static CUmemAllocationProp prop(void)
{
    CUmemAllocationProp p;

    memset(&p, 0, sizeof(p));
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    return p;
}

static CUmemAccessDesc access_of(CUmemAccess_flags flags)
{
    CUmemAccessDesc d;

    memset(&d, 0, sizeof(d));
    d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    d.flags = flags;
    return d;
}

static int setup(void **state)
{
    CUcontext ctx;

    (void)state;
    if (cuInit(0) || cuDevicePrimaryCtxRetain(&ctx, 0) || cuCtxSetCurrent(ctx))
        return -1;
    return 0;
}

static void test_vmm(void **state)
{
    CUmemAllocationProp p = prop(), back;
    CUmemAccessDesc rw = access_of(CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
    CUmemAccessDesc none = access_of(CU_MEM_ACCESS_FLAGS_PROT_NONE);
    CUmemGenericAllocationHandle h, h2;
    CUdeviceptr base;
    size_t g = 0, free0 = 0, free1 = 0, total = 0;
    char in[8] = "", out[8] = "aliased";

    (void)state;
    assert_int_equal(cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM), 0);
    assert_int_equal(g, G);
    assert_int_equal(cuMemAddressReserve(&base, 4 * G, 0, 0, 0), 0);
    assert_int_equal(base % G, 0);
    assert_int_equal(cuMemAddressReserve(&base, G + 1, 0, 0, 0), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemGetInfo(&free0, &total), 0);
    assert_int_equal(cuMemCreate(&h, G, &p, 0), 0);
    assert_int_equal(cuMemGetInfo(&free1, &total), 0);
    assert_int_equal(free0 - free1, G);                  /* physical memory is taken */
    assert_int_equal(cuMemCreate(&h2, G / 2, &p, 0), CUDA_ERROR_INVALID_VALUE);
    /* the same allocation twice: one memory */
    assert_int_equal(cuMemMap(base, G, 0, h, 0), 0);
    assert_int_equal(cuMemMap(base + 2 * G, G, 0, h, 0), 0);
    assert_int_equal(cuMemMap(base, G, 0, h, 0), CUDA_ERROR_INVALID_VALUE);      /* mapped */
    assert_int_equal(cuMemMap(base + 3 * G, 2 * G, 0, h, 0), CUDA_ERROR_INVALID_VALUE);
    /* no access yet: not device memory for copies */
    assert_int_equal(cuMemcpyHtoD(base, out, sizeof(out)), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemSetAccess(base, G, &rw, 1), 0);
    assert_int_equal(cuMemSetAccess(base + 2 * G, G, &rw, 1), 0);
    assert_int_equal(cuMemSetAccess(base + G, G, &rw, 1), CUDA_ERROR_INVALID_VALUE); /* unmapped */
    assert_int_equal(cuMemcpyHtoD(base + 100, out, sizeof(out)), 0);
    assert_int_equal(cuMemcpyDtoH(in, base + 2 * G + 100, sizeof(in)), 0);
    assert_string_equal(in, "aliased");
    assert_int_equal(cuMemGetAllocationPropertiesFromHandle(&back, h), 0);
    assert_int_equal(back.location.type, CU_MEM_LOCATION_TYPE_DEVICE);
    /* released while mapped: still there; retained again from an address */
    assert_int_equal(cuMemRelease(h), 0);
    assert_int_equal(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemcpyDtoH(in, base + 100, sizeof(in)), 0);
    assert_int_equal(cuMemRetainAllocationHandle(&h2, (void *)(uintptr_t)(base + 5)), 0);
    assert_int_equal(h2, h);
    assert_int_equal(cuMemRelease(h2), 0);
    /* access taken away, then whole mappings only */
    assert_int_equal(cuMemSetAccess(base + 2 * G, G, &none, 1), 0);
    assert_int_equal(cuMemcpyDtoH(in, base + 2 * G, sizeof(in)), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemUnmap(base, G / 2), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemAddressFree(base, 4 * G), CUDA_ERROR_INVALID_VALUE);   /* mapped */
    assert_int_equal(cuMemUnmap(base, G), 0);
    assert_int_equal(cuMemcpyDtoH(in, base, sizeof(in)), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemUnmap(base + 2 * G, G), 0);
    assert_int_equal(cuMemAddressFree(base, 4 * G), 0);
    assert_int_equal(cuMemAddressFree(base, 4 * G), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemGetInfo(&free1, &total), 0);
    assert_int_equal(free1, free0);                      /* and given back with the last unmap */
}

static void test_pools(void **state)
{
    CUmemPoolProps props;
    CUmemoryPool pool, def, cur;
    CUdeviceptr p;
    cuuint64_t v = 0, zero = 0;
    int flag = 0;

    (void)state;
    memset(&props, 0, sizeof(props));
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.maxSize = 1 << 20;
    assert_int_equal(cuMemPoolCreate(&pool, &props), 0);
    assert_int_equal(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC, &flag), 0);
    assert_int_equal(flag, 1);
    v = 12345;
    assert_int_equal(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &v), 0);
    v = 0;
    assert_int_equal(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &v), 0);
    assert_int_equal(v, 12345);
    assert_int_equal(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &zero),
                     CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemAllocFromPoolAsync(&p, 4096, pool, NULL), 0);
    assert_int_equal(cuMemAllocFromPoolAsync(&p, 1 << 20, pool, NULL), CUDA_ERROR_OUT_OF_MEMORY);
    assert_int_equal(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &v), 0);
    assert_int_equal(v, 4096);
    /* destroyed with an allocation out: the allocation stays valid until freed */
    assert_int_equal(cuMemPoolDestroy(pool), 0);
    assert_int_equal(cuMemsetD8(p, 1, 4096), 0);
    assert_int_equal(cuMemFreeAsync(p, NULL), 0);
    assert_int_equal(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &v),
                     CUDA_ERROR_INVALID_VALUE);
    /* the default pool, and the device's current one */
    assert_int_equal(cuDeviceGetDefaultMemPool(&def, 0), 0);
    assert_int_equal(cuDeviceGetMemPool(&cur, 0), 0);
    assert_ptr_equal(cur, def);
    assert_int_equal(cuMemPoolDestroy(def), CUDA_ERROR_INVALID_VALUE);
    assert_int_equal(cuMemPoolTrimTo(def, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vmm),
        cmocka_unit_test(test_pools),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
