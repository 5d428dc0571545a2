/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Virtual memory management and memory pools through vgpu's libcuda.so.1,
 * the way PyTorch's expandable segments and its cudaMallocAsync backend use
 * them: a reservation, a physical allocation mapped into it with access
 * given, copies, memsets and a launch on the mapped range; the mapping
 * grown by a second allocation right after the first, with copies across
 * the seam; the handle retained from an address, properties read back,
 * everything unmapped, released and freed.  Then a pool of its own with
 * attributes, a stream-ordered allocation from it and from the default
 * pool.  Under VGPU_TEST_REFUSALS, what the server must refuse: a mapping
 * outside a reservation, of a handle the program never had, over another
 * mapping, and memory used after it was unmapped.  Prints what it saw; the
 * same output natively and through vgpu (against the fake driver in CI).
 *
 * `vmm_fill limit` instead checks the VM's memory limit of 7 MiB
 * (run_vmm_limit.sh): what cuMemCreate and pools hold counts, a released
 * allocation still mapped counts until it is unmapped, and stream-ordered
 * allocations and frees on a capturing stream are refused, a pool's release
 * threshold stays within the limit and a session creates at most 16 pools.
 */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char drv_test_ptx[];

#define CHECK(call)                                                                    \
    do {                                                                               \
        CUresult r_ = (call);                                                          \
        if (r_ != CUDA_SUCCESS) {                                                      \
            printf("%s failed: %s\n", #call, name_of(r_));                             \
            return 1;                                                                  \
        }                                                                              \
    } while (0)

static const char *name_of(CUresult r)
{
    const char *n = NULL;

    return cuGetErrorName(r, &n) == CUDA_SUCCESS && n ? n : "?";
}

static CUmemAllocationProp device_prop(void)
{
    CUmemAllocationProp p;

    memset(&p, 0, sizeof(p));
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = 0;
    return p;
}

static CUmemAccessDesc rw_access(void)
{
    CUmemAccessDesc d;

    memset(&d, 0, sizeof(d));
    d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    d.location.id = 0;
    d.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return d;
}

/* Bytes [off, off+n) of the device range hold value? */
static int all_are(CUdeviceptr p, size_t off, size_t n, unsigned char value)
{
    unsigned char *h = malloc(n);
    int ok = h && cuMemcpyDtoH(h, p + off, n) == CUDA_SUCCESS;

    for (size_t i = 0; ok && i < n; i++)
        ok = h[i] == value;
    free(h);
    return ok;
}

/* The refusals vgpu's server must give (natively some of these are undefined). */
static void refusals(CUdeviceptr base, size_t g, CUmemGenericAllocationHandle h)
{
    CUmemAccessDesc rw = rw_access();

    printf("map outside any reservation: %s\n",
           name_of(cuMemMap((CUdeviceptr)0x10000000000ull, g, 0, h, 0)));
    printf("map past the reservation's end: %s\n", name_of(cuMemMap(base + 3 * g, 2 * g, 0, h, 0)));
    printf("map a handle never had: %s\n",
           name_of(cuMemMap(base + 2 * g, g, 0, (CUmemGenericAllocationHandle)0xdead0, 0)));
    printf("map over a mapping: %s\n", name_of(cuMemMap(base, g, 0, h, 0)));
    printf("release a handle never had: %s\n",
           name_of(cuMemRelease((CUmemGenericAllocationHandle)0xdead0)));
    printf("access to an unmapped range: %s\n", name_of(cuMemSetAccess(base + 2 * g, g, &rw, 1)));
    printf("unmap half a mapping: %s\n", name_of(cuMemUnmap(base, g / 2)));
    printf("free a range never reserved: %s\n",
           name_of(cuMemAddressFree((CUdeviceptr)0x10000000000ull, g)));
    printf("free a reservation still mapped: %s\n", name_of(cuMemAddressFree(base, 4 * g)));
}

static int vmm(CUfunction fill, int refuse)
{
    CUmemAllocationProp prop = device_prop(), back;
    CUmemAccessDesc rw = rw_access();
    CUmemLocation loc = rw.location;
    CUmemGenericAllocationHandle h1, h2, again;
    CUdeviceptr base, seam;
    size_t g = 0, n;
    unsigned long long flags = 0;
    unsigned int type = 0, value = 0x7e;
    unsigned char out[8192], in[8192];
    void *args[3];

    CHECK(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    printf("granularity: %s\n", g && !(g & (g - 1)) && g >= 4096 ? "a power of two" : "odd");
    CHECK(cuMemAddressReserve(&base, 4 * g, 0, 0, 0));
    CHECK(cuMemCreate(&h1, g, &prop, 0));
    CHECK(cuMemMap(base, g, 0, h1, 0));
    CHECK(cuMemSetAccess(base, g, &rw, 1));
    CHECK(cuMemGetAccess(&flags, &loc, base));
    printf("access: %s\n", flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE ? "read-write" : "other");
    CHECK(cuMemsetD8(base, 0x11, g));
    printf("memset mapped: %s\n", all_are(base, 0, g, 0x11) ? "ok" : "wrong");
    n = g;
    args[0] = &base;
    args[1] = &value;
    args[2] = &n;
    CHECK(cuLaunchKernel(fill, 8, 1, 1, 128, 1, 1, 0, NULL, args, NULL));
    CHECK(cuCtxSynchronize());
    printf("kernel on mapped: %s\n", all_are(base, 0, g, 0x7e) ? "ok" : "wrong");
    CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, base + 100));
    printf("pointer type: %s\n", type == CU_MEMORYTYPE_DEVICE ? "device" : "other");

    /* grow the segment: a second allocation right after the first */
    CHECK(cuMemCreate(&h2, g, &prop, 0));
    CHECK(cuMemMap(base + g, g, 0, h2, 0));
    CHECK(cuMemSetAccess(base + g, g, &rw, 1));
    seam = base + g - sizeof(out) / 2;
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (unsigned char)(i * 7 + 3);
    CHECK(cuMemcpyHtoD(seam, out, sizeof(out)));
    memset(in, 0, sizeof(in));
    CHECK(cuMemcpyDtoH(in, seam, sizeof(in)));
    printf("copy across the seam: %s\n", memcmp(in, out, sizeof(in)) ? "wrong" : "ok");
    CHECK(cuMemcpyDtoD(base + g + 65536, seam, sizeof(out)));
    CHECK(cuMemcpyDtoH(in, base + g + 65536, sizeof(in)));
    printf("device to device: %s\n", memcmp(in, out, sizeof(in)) ? "wrong" : "ok");
    CHECK(cuMemsetD8(base + g - 16, 0x5a, 32));
    printf("memset across the seam: %s\n", all_are(base, g - 16, 32, 0x5a) ? "ok" : "wrong");

    CHECK(cuMemRetainAllocationHandle(&again, (void *)(uintptr_t)(base + g + 8)));
    printf("retained handle: %s\n", again == h2 ? "the second" : "another");
    CHECK(cuMemRelease(again));
    CHECK(cuMemGetAllocationPropertiesFromHandle(&back, h1));
    printf("properties: %s on device %d\n",
           back.type == CU_MEM_ALLOCATION_TYPE_PINNED ? "pinned" : "other", back.location.id);
    if (refuse)
        refusals(base, g, h1);

    /* release while mapped: the memory stays until unmapped */
    CHECK(cuMemRelease(h1));
    CHECK(cuMemRelease(h2));
    printf("mapped after release: %s\n", all_are(base, g - 16, 32, 0x5a) ? "ok" : "wrong");
    CHECK(cuMemUnmap(base, 2 * g));
    if (refuse)
        printf("memset after unmap: %s\n", name_of(cuMemsetD8(base, 1, 16)));
    CHECK(cuMemAddressFree(base, 4 * g));
    printf("vmm: done\n");
    return 0;
}

static int pools(void)
{
    CUmemPoolProps props;
    CUmemoryPool pool, def;
    CUmemLocation loc = rw_access().location;
    CUmemAccess_flags acc;
    CUstream s;
    CUdeviceptr p, q;
    cuuint64_t threshold = 64ull << 20, got = 0, used = 0;
    int follow = 0;

    memset(&props, 0, sizeof(props));
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = 0;
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK(cuMemPoolCreate(&pool, &props));
    CHECK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold));
    CHECK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &got));
    CHECK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES, &follow));
    printf("pool threshold: %s, follows events: %d\n", got == threshold ? "as set" : "other", follow);
    CHECK(cuMemPoolGetAccess(&acc, pool, &loc));
    printf("pool access: %s\n", acc == CU_MEM_ACCESS_FLAGS_PROT_READWRITE ? "read-write" : "other");
    CHECK(cuMemAllocFromPoolAsync(&p, 1 << 20, pool, s));
    CHECK(cuMemsetD8Async(p, 0x33, 1 << 20, s));
    CHECK(cuStreamSynchronize(s));
    printf("pool memory: %s\n", all_are(p, (1 << 20) - 64, 64, 0x33) ? "ok" : "wrong");
    CHECK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
    printf("pool in use: %s\n", used >= (1 << 20) ? "at least the allocation" : "less");
    CHECK(cuMemFreeAsync(p, s));
    CHECK(cuStreamSynchronize(s));
    CHECK(cuMemPoolTrimTo(pool, 0));
    CHECK(cuMemPoolDestroy(pool));

    CHECK(cuDeviceGetDefaultMemPool(&def, 0));
    CHECK(cuMemAllocFromPoolAsync(&q, 4096, def, s));
    CHECK(cuMemAllocAsync(&p, 4096, s));
    CHECK(cuMemcpyDtoDAsync(q, p, 4096, s));
    CHECK(cuMemFreeAsync(q, s));
    CHECK(cuMemFreeAsync(p, s));
    CHECK(cuStreamSynchronize(s));
    CHECK(cuStreamDestroy(s));
    printf("pools: done\n");
    return 0;
}

/*
 * With room under the limit, stream-ordered allocations and frees on a
 * capturing stream are refused all the same: a graph would allocate at
 * every launch, uncharged.
 */
static int captured(CUmemoryPool def, size_t g)
{
    CUstream st;
    CUdeviceptr p, q, r, x;
    CUgraph graph;
    CUgraphExec e;

    /* 2 MiB held before: q makes 4 */
    CHECK(cuStreamCreate(&st, CU_STREAM_NON_BLOCKING));
    CHECK(cuMemAllocAsync(&q, g, st));
    CHECK(cuStreamBeginCapture(st, CU_STREAM_CAPTURE_MODE_RELAXED));
    printf("captured cuMemAllocAsync: %s\n", name_of(cuMemAllocAsync(&p, 2 * g, st)));
    printf("captured cuMemAllocFromPoolAsync: %s\n",
           name_of(cuMemAllocFromPoolAsync(&x, g, def, st)));
    printf("captured cuMemFreeAsync of memory from before: %s\n", name_of(cuMemFreeAsync(q, st)));
    printf("captured cuMemFreeAsync of the captured allocation: %s\n",
           name_of(cuMemFreeAsync(p, st)));
    CHECK(cuStreamEndCapture(st, &graph));
    /* the graph's 4 MiB are charged when it is instantiated */
    printf("instantiated over the limit: %s\n", name_of(cuGraphInstantiateWithFlags(&e, graph, 0)));
    CHECK(cuMemFreeAsync(q, st));
    CHECK(cuStreamSynchronize(st));
    CHECK(cuGraphInstantiateWithFlags(&e, graph, 0));
    CHECK(cuGraphLaunch(e, st));
    CHECK(cuGraphLaunch(e, st));
    CHECK(cuStreamSynchronize(st));
    printf("instantiated under the limit, launched twice: ok\n");
    printf("an allocation while the executable graph lives: %s\n",
           name_of(cuMemAlloc(&r, 2 * g)));
    CHECK(cuGraphExecDestroy(e));
    CHECK(cuMemAlloc(&r, 2 * g));
    CHECK(cuMemFree(r));
    printf("after cuGraphExecDestroy: ok\n");
    CHECK(cuGraphDestroy(graph));

    /* an allocation no node frees outlives its graph: counted until the program frees it */
    CHECK(cuStreamBeginCapture(st, CU_STREAM_CAPTURE_MODE_GLOBAL));
    CHECK(cuMemAllocAsync(&p, 2 * g, st));
    CHECK(cuMemsetD32Async(p, 5, 2 * g / 4, st));
    CHECK(cuStreamEndCapture(st, &graph));
    CHECK(cuGraphInstantiateWithFlags(&e, graph, 0));
    CHECK(cuGraphLaunch(e, st));
    CHECK(cuStreamSynchronize(st));
    CHECK(cuGraphExecDestroy(e));
    CHECK(cuGraphDestroy(graph));
    printf("an allocation while a graph's unfreed memory lives: %s\n",
           name_of(cuMemAlloc(&r, 2 * g)));
    CHECK(cuMemsetD32(p, 6, 2 * g / 4));
    CHECK(cuMemFree(p));
    CHECK(cuMemAlloc(&r, 2 * g));
    CHECK(cuMemFree(r));
    printf("after freeing it: ok\n");
    CHECK(cuStreamDestroy(st));
    return 0;
}

/*
 * A release threshold above the limit is lowered to what the VM may still
 * allocate (all 7 MiB here); a session creates at most 16 pools.
 */
static int pool_caps(CUmemoryPool def)
{
    CUmemPoolProps props;
    CUmemoryPool pool[17];
    cuuint64_t v = UINT64_MAX;
    int n = 0;

    CHECK(cuMemPoolSetAttribute(def, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &v));
    CHECK(cuMemPoolGetAttribute(def, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &v));
    printf("release threshold UINT64_MAX became: %llu\n", (unsigned long long)v);
    memset(&props, 0, sizeof(props));
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    while (n < 17 && cuMemPoolCreate(&pool[n], &props) == CUDA_SUCCESS)
        n++;
    printf("pools created: %d; the next: %s\n", n, name_of(cuMemPoolCreate(&pool[16], &props)));
    while (n > 0)
        CHECK(cuMemPoolDestroy(pool[--n]));
    CHECK(cuMemPoolCreate(&pool[0], &props));
    CHECK(cuMemPoolDestroy(pool[0]));
    printf("after destroying them: ok\n");
    return 0;
}

/* Under a 7 MiB limit, with 2 MiB allocations (the fake's granularity). */
static int limit(void)
{
    CUmemAllocationProp prop = device_prop();
    CUmemGenericAllocationHandle h[4];
    CUmemoryPool def;
    CUdeviceptr base, p;
    size_t g = 0;

    CHECK(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    if (g != (2u << 20)) {
        printf("granularity %zu, not 2 MiB: the limit test needs the fake\n", g);
        return 1;
    }
    CHECK(cuDeviceGetDefaultMemPool(&def, 0));
    if (pool_caps(def))
        return 1;
    for (int i = 0; i < 3; i++)
        CHECK(cuMemCreate(&h[i], g, &prop, 0));
    printf("fourth allocation: %s\n", name_of(cuMemCreate(&h[3], g, &prop, 0)));
    printf("pool allocation over the limit: %s\n",
           name_of(cuMemAllocFromPoolAsync(&p, g, def, NULL)));
    CHECK(cuMemAddressReserve(&base, 2 * g, 0, 0, 0));
    CHECK(cuMemMap(base, g, 0, h[0], 0));
    CHECK(cuMemRelease(h[0]));
    printf("released but mapped: %s\n", name_of(cuMemCreate(&h[3], g, &prop, 0)));
    CHECK(cuMemUnmap(base, g));
    printf("unmapped: %s\n", name_of(cuMemCreate(&h[3], g, &prop, 0)));
    CHECK(cuMemRelease(h[1]));
    CHECK(cuMemAllocFromPoolAsync(&p, g, def, NULL));
    printf("pool allocation under the limit: ok\n");
    printf("and the next: %s\n", name_of(cuMemAllocAsync(&base, g, NULL)));
    CHECK(cuMemFreeAsync(p, NULL));
    CHECK(cuCtxSynchronize());
    CHECK(cuMemCreate(&h[1], g, &prop, 0));
    printf("after the free: ok\n");
    CHECK(cuMemRelease(h[2]));
    CHECK(cuMemRelease(h[3]));
    return captured(def, g);
}

int main(int argc, char **argv)
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction fill;
    int vmm_ok = 0, pools_ok = 0;

    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuDeviceGetAttribute(&vmm_ok, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev));
    CHECK(cuDeviceGetAttribute(&pools_ok, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED, dev));
    if (argc > 1 && !strcmp(argv[1], "limit"))
        return limit();
    printf("vmm supported: %d, pools supported: %d\n", vmm_ok, pools_ok);
    CHECK(cuModuleLoadData(&mod, drv_test_ptx));
    CHECK(cuModuleGetFunction(&fill, mod, "fake_fill"));
    if (vmm_ok && vmm(fill, getenv("VGPU_TEST_REFUSALS") != NULL))
        return 1;
    if (pools_ok && pools())
        return 1;
    CHECK(cuModuleUnload(mod));
    CHECK(cuDevicePrimaryCtxRelease(dev));
    return 0;
}
