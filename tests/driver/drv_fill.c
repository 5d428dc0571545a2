/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver API through vgpu's libcuda.so.1: a context created and
 * stacked, a module from PTX with its logs, functions and a global, device
 * memory, launches with kernelParams, with extra and with cuLaunchKernelEx,
 * copies and memsets, streams and events, error names, and what the server
 * must refuse (handles and addresses that are not the program's).  Also
 * cuGetProcAddress's choice of versioned names and cuGetExportTable's
 * answer for a table nobody knows.  Prints what it saw; the same output
 * natively and through vgpu (against the fake driver in CI).
 */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const unsigned char drv_test_ptx[];

#define CHECK(call)                                                                    \
    do {                                                                               \
        CUresult r_ = (call);                                                          \
        if (r_ != CUDA_SUCCESS) {                                                      \
            const char *n_ = NULL;                                                     \
            cuGetErrorName(r_, &n_);                                                   \
            printf("%s failed: %s\n", #call, n_ ? n_ : "?");                           \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static const char *name_of(CUresult r)
{
    const char *n = NULL;

    return cuGetErrorName(r, &n) == CUDA_SUCCESS && n ? n : "?";
}

/* cuGetProcAddress's answer for (symbol, version, flags) is the export named want. */
static void proc(const char *symbol, int version, cuuint64_t flags, const char *want)
{
    void *fn = NULL, *expect = want ? dlsym(RTLD_DEFAULT, want) : NULL;
    CUdriverProcAddressQueryResult q = 99;
    CUresult r = cuGetProcAddress(symbol, &fn, version, flags, &q);

    printf("proc %s@%d/%llu: %s, %s, status %d\n", symbol, version, (unsigned long long)flags,
           name_of(r), fn && fn == expect ? want : fn ? "another function" : "none", (int)q);
}

/* The shim answers repeats of a function's facts itself (cached per context): each answer
 * must follow a change of the attribute and must not outlive the function's module, even
 * where a reloaded module's function gets the old handle's value. */
static void function_facts(CUfunction fill)
{
    CUmodule m;
    CUfunction f;
    int v0 = -1, v = -1, occ1 = -1, occ2 = -1;
    const CUfunction_attribute dyn = CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;

    CHECK(cuFuncGetAttribute(&v0, dyn, fill));
    CHECK(cuFuncGetAttribute(&v, dyn, fill));
    printf("dynamic shared asked twice: %s\n", v == v0 ? "the same" : "different");
    CHECK(cuFuncSetAttribute(fill, dyn, 1024));
    CHECK(cuFuncGetAttribute(&v, dyn, fill));
    printf("dynamic shared after setting 1024: %d\n", v);
    CHECK(cuFuncSetAttribute(fill, dyn, 2048));
    CHECK(cuFuncGetAttribute(&v, dyn, fill));
    printf("dynamic shared after setting 2048: %d\n", v);
    CHECK(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&occ1, fill, 128, 0, 0));
    CHECK(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&occ2, fill, 128, 0, 0));
    printf("occupancy asked twice: %s\n", occ1 > 0 && occ1 == occ2 ? "the same" : "different");
    /* a second copy of the module: its function changed, unloaded, loaded again */
    CHECK(cuModuleLoadData(&m, drv_test_ptx));
    CHECK(cuModuleGetFunction(&f, m, "fake_fill"));
    CHECK(cuFuncGetAttribute(&v0, dyn, f));
    CHECK(cuFuncSetAttribute(f, dyn, 4096));
    CHECK(cuFuncGetAttribute(&v, dyn, f));
    printf("copy's dynamic shared: %d\n", v);
    CHECK(cuModuleUnload(m));
    CHECK(cuModuleLoadData(&m, drv_test_ptx));
    CHECK(cuModuleGetFunction(&f, m, "fake_fill"));
    CHECK(cuFuncGetAttribute(&v, dyn, f));
    printf("reloaded copy's dynamic shared: %s\n", v == v0 ? "the default" : "a stale answer");
    CHECK(cuModuleUnload(m));
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx, cur, popped;
    CUmodule mod;
    CUfunction fill, add;
    CUdeviceptr buf, a, b, c, glob;
    CUstream s;
    CUevent e0, e1;
    size_t gsize = 0;
    unsigned char host[4096];
    int ha[256], hb[256], hc[256], n = 256;
    char info[256] = "", err[256] = "";
    CUjit_option opts[] = { CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES,
                            CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                            CU_JIT_OPTIMIZATION_LEVEL };
    void *vals[] = { info, (void *)sizeof(info), err, (void *)sizeof(err), (void *)3 };
    int count = 0, version = 0;
    const void *table = (const void *)1;
    CUuuid nobody = { { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } };

    CHECK(cuInit(0));
    CHECK(cuDriverGetVersion(&version));
    CHECK(cuDeviceGetCount(&count));
    printf("driver %s, devices %s\n", version >= 13000 ? "13+" : "old", count > 0 ? "some" : "none");
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuCtxCreate(&ctx, NULL, 0, dev));
    CHECK(cuCtxGetCurrent(&cur));
    printf("created context current: %s\n", cur == ctx ? "yes" : "no");
    CHECK(cuCtxPopCurrent(&popped));
    CHECK(cuCtxGetCurrent(&cur));
    printf("popped: %s, now current: %s\n", popped == ctx ? "it" : "another", cur ? "some" : "none");
    CHECK(cuCtxPushCurrent(ctx));

    CHECK(cuModuleLoadDataEx(&mod, drv_test_ptx, 5, opts, vals));
    printf("module loaded; error log empty: %s\n", err[0] ? "no" : "yes");
    CHECK(cuModuleGetFunction(&fill, mod, "fake_fill"));
    CHECK(cuModuleGetFunction(&add, mod, "fake_add"));
    printf("missing function: %s\n", name_of(cuModuleGetFunction(&fill, mod, "no_such_kernel")));
    CHECK(cuModuleGetFunction(&fill, mod, "fake_fill"));
    CHECK(cuModuleGetGlobal(&glob, &gsize, mod, "counter"));
    CHECK(cuMemsetD32(glob, 0, 1));
    printf("global counter: %s\n", gsize >= 4 ? "found" : "too small");

    /* a fill with kernelParams, then one with extra */
    CHECK(cuMemAlloc(&buf, sizeof(host)));
    {
        unsigned int v = 0x33;
        size_t len = sizeof(host);
        void *params[] = { &buf, &v, &len };

        CHECK(cuLaunchKernel(fill, 4, 1, 1, 128, 1, 1, 0, NULL, params, NULL));
    }
    CHECK(cuMemcpyDtoH(host, buf, sizeof(host)));
    printf("fill: %d %d %d\n", host[0], host[2048], host[4095]);
    {
        struct { CUdeviceptr p; unsigned int v; unsigned int pad; size_t n; } args = { buf, 0x44, 0, 100 };
        size_t size = sizeof(args);
        void *extra[] = { CU_LAUNCH_PARAM_BUFFER_POINTER, &args, CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                          CU_LAUNCH_PARAM_END };

        CHECK(cuLaunchKernel(fill, 1, 1, 1, 128, 1, 1, 0, NULL, NULL, extra));
    }
    CHECK(cuMemcpyDtoH(host, buf, sizeof(host)));
    printf("fill with extra: %d %d\n", host[99], host[100]);

    /* streams, events, async copies and cuLaunchKernelEx */
    for (int i = 0; i < n; i++) {
        ha[i] = i;
        hb[i] = 1000 * i;
    }
    CHECK(cuMemAlloc(&a, sizeof(ha)));
    CHECK(cuMemAlloc(&b, sizeof(hb)));
    CHECK(cuMemAlloc(&c, sizeof(hc)));
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK(cuEventCreate(&e0, 0));
    CHECK(cuEventCreate(&e1, 0));
    CHECK(cuEventRecord(e0, s));
    CHECK(cuMemcpyHtoDAsync(a, ha, sizeof(ha), s));
    CHECK(cuMemcpyHtoDAsync(b, hb, sizeof(hb), s));
    {
        CUlaunchConfig cfg = { .gridDimX = 1, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 256,
                               .blockDimY = 1, .blockDimZ = 1, .hStream = s };
        void *params[] = { &c, &a, &b, &n };

        CHECK(cuLaunchKernelEx(&cfg, add, params, NULL));
    }
    CHECK(cuEventRecord(e1, s));
    CHECK(cuMemcpyDtoHAsync(hc, c, sizeof(hc), s));
    {
        CUlaunchConfig cfg = { .gridDimX = 16, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 256,
                               .blockDimY = 1, .blockDimZ = 1, .hStream = s };
        int clusters = 0;

        CHECK(cuOccupancyMaxActiveClusters(&clusters, add, &cfg));
        printf("active clusters: %s\n", clusters > 0 ? "some" : "none");
    }
    CHECK(cuStreamSynchronize(s));
    printf("add: %d %d %d\n", hc[0], hc[1], hc[255]);
    function_facts(fill);
    {
        float ms = -1;

        CHECK(cuEventSynchronize(e1));
        CHECK(cuEventElapsedTime(&ms, e0, e1));
        printf("elapsed: %s\n", ms >= 0 ? "measured" : "negative");
    }
    CHECK(cuMemcpyDtoD(a, c, sizeof(hc)));
    CHECK(cuMemsetD8(b, 0, sizeof(hb)));
    CHECK(cuMemcpy((CUdeviceptr)(uintptr_t)hb, b, sizeof(hb)));
    CHECK(cuMemcpyDtoH(ha, a, sizeof(ha)));
    printf("copies: %d %d\n", ha[255], hb[255]);
    /* mapped (zero-copy) host memory: the device writes it, the host reads it (through vgpu it
       needs memory shared with the server: over the socket alone it is refused) */
    {
        unsigned char *mh = NULL;
        CUdeviceptr md = 0;
        unsigned flags = 0;
        CUresult r = cuMemHostAlloc((void **)&mh, 8192, CU_MEMHOSTALLOC_DEVICEMAP);

        if (r != CUDA_SUCCESS) {
            printf("mapped: %s\n", name_of(r));
        } else {
            CHECK(cuMemHostGetDevicePointer(&md, mh + 4096, 0));
            CHECK(cuMemHostGetFlags(&flags, mh));
            CHECK(cuMemsetD8(md, 7, 16));
            CHECK(cuMemcpyDtoD(md + 16, a + 4, 4));
            CHECK(cuCtxSynchronize());
            printf("mapped: %d %d %d, flags %s\n", mh[4096], mh[4111],
                   mh[4096 + 16] | mh[4097 + 16] << 8,
                   flags & CU_MEMHOSTALLOC_DEVICEMAP ? "mapped" : "other");
            CHECK(cuMemFreeHost(mh));
        }
    }
    {
        CUmemorytype type = 0;

        CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, a));
        printf("pointer type: %s\n", type == CU_MEMORYTYPE_DEVICE ? "device" : "other");
    }

    /* what is not the program's: vgpu's server refuses it (natively, undefined) */
    if (getenv("VGPU_TEST_REFUSALS")) {
        CUresult r;

        printf("foreign stream: %s\n", name_of(cuStreamSynchronize((CUstream)(uintptr_t)0xdead0)));
        printf("foreign module: %s\n",
               name_of(cuModuleGetFunction(&fill, (CUmodule)(uintptr_t)0xbeef0, "fake_fill")));
        printf("memset past the end: %s\n", name_of(cuMemsetD8(buf + 4000, 1, 200)));
        r = cuGetExportTable(&table, &nobody);

        printf("unknown export table: %s, %s\n", name_of(r), table ? "a table" : "none");
        {
            /* the tools' TLS table: slot 2 answers the current context (cuBLASLt asks it) */
            static const CUuuid tools_tls = { { 0x42, (char)0xd8, 0x5a, (char)0x81, 0x23, (char)0xf6,
                                                (char)0xcb, 0x47, (char)0x82, (char)0x98, (char)0xf6,
                                                (char)0xe7, (char)0x8a, 0x3a, (char)0xec, (char)0xdc } };
            const void *t = NULL;
            CUresult (*get_current)(CUcontext *);
            CUcontext got = NULL;

            CHECK(cuGetExportTable(&t, &tools_tls));
            memcpy(&get_current, (const char *)t + 2 * sizeof(void *), sizeof(get_current));
            CHECK(get_current(&got));
            printf("tools TLS current context: %s\n", got == ctx ? "the current one" : "another");
        }
        {
            /* the libraries' tools tables: cuBLAS asks the context id (ToolsContext slot 4) and maps
               its stream (slot 51) to ask the stream's id (slot 39); cuBLASLt asks the cluster
               launch support (ClusterPrototype slot 8) and the TPC map (slot 4, not available) */
            static const CUuuid tools_ctx = { { 0x21, 0x31, (char)0x8c, 0x60, (char)0x97, 0x14, 0x32,
                                                0x48, (char)0x8c, (char)0xa6, 0x41, (char)0xff, 0x73,
                                                0x24, (char)0xc8, (char)0xf2 } };
            static const CUuuid cluster = { { 0x17, 0x34, (char)0xdc, 0x26, (char)0x80, 0x0d, 0x47,
                                              0x45, (char)0x87, 0x26, (char)0xc0, (char)0xf1,
                                              (char)0xe7, (char)0xdd, (char)0x8b, (char)0xca } };
            void *const *tc = NULL, *const *cp = NULL;
            unsigned long long id = 0, want = 0, sid = 0, want_sid = 0;
            uint64_t tools_stream = 0;
            int launch = -1, want_launch = -2;
            unsigned char *vgpc = NULL, *mtpc = NULL;

            CHECK(cuGetExportTable((const void **)&tc, &tools_ctx));
            CHECK(cuGetExportTable((const void **)&cp, &cluster));
            printf("tools context table: %zu slots\n", (size_t)tc[0] / sizeof(void *));
            CHECK(((CUresult (*)(CUcontext, unsigned long long *))tc[4])(ctx, &id));
            CHECK(cuCtxGetId(ctx, &want));
            printf("tools context id: %s\n", id == want ? "cuCtxGetId's" : "another");
            CHECK(((CUresult (*)(CUcontext, CUstream, uint64_t *, uint8_t))tc[51])(ctx, s, &tools_stream, 0));
            CHECK(((CUresult (*)(CUcontext, uint64_t, unsigned long long *))tc[39])(ctx, tools_stream, &sid));
            CHECK(cuStreamGetId(s, &want_sid));
            printf("tools stream id: %s\n", sid == want_sid ? "cuStreamGetId's" : "another");
            printf("tools slot 60: %s\n", name_of(((CUresult (*)(void))tc[60])()));
            CHECK(((CUresult (*)(CUdevice, int *))cp[8])(dev, &launch));
            CHECK(cuDeviceGetAttribute(&want_launch, CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH, dev));
            printf("cluster launch support: %s\n", launch == want_launch ? "the attribute's" : "another");
            printf("TPC map: %s\n",
                   name_of(((CUresult (*)(unsigned char **, unsigned char **))cp[4])(&vgpc, &mtpc)));
        }
        {
            /* a session's contexts are bounded (each holds GPU memory of its own) */
            CUcontext more[32];
            int made = 0;

            while (made < 32 && (r = cuCtxCreate(&more[made], NULL, 0, dev)) == CUDA_SUCCESS)
                made++;
            printf("contexts created besides the first: %d, then %s\n", made, name_of(r));
            while (made > 0)
                cuCtxDestroy(more[--made]);
            CHECK(cuCtxSetCurrent(ctx));
        }
    }
    printf("free twice: %s\n", (cuMemFree(c), name_of(cuMemFree(c))));

    /* the driver's entry points */
    proc("cuMemAlloc", 3020, 0, "cuMemAlloc_v2");
    proc("cuMemAlloc", 2000, 0, "cuMemAlloc");
    proc("cuCtxCreate", 11040, 0, "cuCtxCreate_v3");
    proc("cuCtxCreate", 13000, 0, "cuCtxCreate_v4");
    proc("cuGetProcAddress", 11030, 0, "cuGetProcAddress");
    proc("cuGetProcAddress", 12000, 0, "cuGetProcAddress_v2");
    proc("cuMemcpyHtoD", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuMemcpyHtoD_v2_ptds");
    proc("cuLaunchKernel", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, "cuLaunchKernel_ptsz");
    proc("cuLaunchKernel", 13000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, "cuLaunchKernel");
    proc("cuCtxSynchronize", 13000, 0, "cuCtxSynchronize_v2");
    proc("cuLibraryLoadData", 11000, 0, NULL);
    proc("cuNoSuchFunction", 13000, 0, NULL);
    proc("", 13000, 0, NULL);
    {
        void *fn = (void *)1;
        CUresult r = cuGetProcAddress("cuNoSuchFunction", &fn, 13000, 0, NULL);

        printf("proc without a status: %s, %s\n", name_of(r), fn ? "a function" : "none");
    }

    /* the driver's log: what a failed lookup left there, to memory and to a file */
    {
        CUlogIterator it = 0, it2;
        CUfunction none;
        char text[8192], path[] = "/tmp/drv_fill_log.XXXXXX";
        size_t n = sizeof(text);
        long file_len = -1;
        int fd = mkstemp(path);
        FILE *f;

        CHECK(cuLogsCurrent(&it, 0));
        it2 = it;
        printf("lookup of a missing kernel: %s\n",
               name_of(cuModuleGetFunction(&none, mod, "no_such_kernel")));
        CHECK(cuLogsDumpToMemory(&it, text, &n, 0));
        if (fd >= 0) {
            close(fd);
            CHECK(cuLogsDumpToFile(&it2, path, 0));
            if ((f = fopen(path, "r"))) {
                fseek(f, 0, SEEK_END);
                file_len = ftell(f);
                fclose(f);
            }
            unlink(path);
        }
        printf("driver log after it: %s, iterator %s, the file %s\n", n ? "text" : "empty",
               it2 == it ? "at the same place" : "elsewhere",
               file_len == (long)n ? "the same length" : "another length");
    }

    CHECK(cuEventDestroy(e0));
    CHECK(cuEventDestroy(e1));
    CHECK(cuStreamDestroy(s));
    CHECK(cuMemFree(a));
    CHECK(cuMemFree(b));
    CHECK(cuMemFree(buf));
    CHECK(cuModuleUnload(mod));
    CHECK(cuCtxDestroy(ctx));
    printf("done\n");
    return 0;
}
