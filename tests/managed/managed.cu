// SPDX-License-Identifier: Apache-2.0
//
// Managed memory as a program written for a device without concurrent
// managed access uses it: cudaMallocManaged and __managed__ variables,
// written by the host, used by kernels, read back after a synchronize;
// memsets, copies in every direction and symbol-free kernels on it;
// prefetch, advice and stream attachment accepted; range attributes as
// the advice and prefetches set them; batched prefetches and discards;
// pointer attributes.
// The kernels are named as tests/fakecuda emulates them, so the same
// program runs against the fake runtime in CI and on a GPU natively and
// through vgpu for a differential test.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#include "fake_kernels.cuh"

__managed__ int mv_in[256];
__managed__ int mv_out[256];

static int count_wrong(const int *c, int n, int (*want)(int))
{
    int wrong = 0;

    for (int i = 0; i < n; i++)
        wrong += c[i] != want(i);
    return wrong;
}

static int triple(int i) { return 3 * i; }
static int one_plus_double(int i) { return 1 + 2 * i; }
static int zero(int) { return 0; }
static int ones(int) { return 0x01010101; }
static int seven(int) { return 7; }
static int doubled(int i) { return 2 * i; }

int main()
{
    const int n = 100000;                  // 400 KB each: more than one chunk of vgpu's shadow
    const size_t bytes = n * sizeof(int);
    int *a, *b, *c, *d, *h;
    long long sum = 0;

    CHECK(cudaMallocManaged(&a, bytes));
    CHECK(cudaMallocManaged(&b, bytes));
    CHECK(cudaMallocManaged(&c, bytes, cudaMemAttachGlobal));
    for (int i = 0; i < n; i++) {
        a[i] = i;
        b[i] = 2 * i;
    }
    fake_add<<<(n + 255) / 256, 256>>>(c, a, b, n);
    CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < n; i++)
        sum += c[i];
    printf("kernel on host-written managed memory: sum %lld, %d wrong\n", sum, count_wrong(c, n, triple));

    for (int i = 0; i < n; i++)
        a[i] = 1;                          // written again after the synchronize
    fake_add<<<(n + 255) / 256, 256>>>(c, a, b, n);
    CHECK(cudaDeviceSynchronize());
    printf("after host writes: %d wrong\n", count_wrong(c, n, one_plus_double));

    CHECK(cudaMemset(c, 0, bytes));
    CHECK(cudaDeviceSynchronize());
    printf("after cudaMemset: %d wrong\n", count_wrong(c, n, zero));
    fake_fill<<<(unsigned)((bytes + 255) / 256), 256>>>(c, 1, bytes);
    CHECK(cudaDeviceSynchronize());
    printf("after a filling kernel: %d wrong\n", count_wrong(c, n, ones));

    h = (int *)malloc(bytes);
    CHECK(cudaMalloc(&d, bytes));
    for (int i = 0; i < n; i++)
        b[i] = 7;                          // dirty on the host, then copied by CUDA
    CHECK(cudaMemcpy(d, b, bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    printf("managed to device, device to host: %d wrong\n", count_wrong(h, n, seven));
    for (int i = 0; i < n; i++)
        h[i] = 2 * i;
    CHECK(cudaMemcpy(a, h, bytes, cudaMemcpyHostToDevice));
    printf("host to managed, read by the host: %d wrong\n", count_wrong(a, n, doubled));
    CHECK(cudaMemcpy(c, a, bytes, cudaMemcpyDefault));
    printf("managed to managed: %d wrong\n", count_wrong(c, n, doubled));
    CHECK(cudaMemcpy(h, b, bytes, cudaMemcpyDeviceToHost));
    printf("managed to host: %d wrong\n", count_wrong(h, n, seven));

    for (int i = 0; i < 256; i++)
        mv_in[i] = i;
    fake_add<<<1, 256>>>(mv_out, mv_in, mv_in, 256);
    CHECK(cudaDeviceSynchronize());
    printf("__managed__ variables: %d wrong, last %d\n", count_wrong(mv_out, 256, doubled), mv_out[255]);

    // written by the host, then used by a kernel captured into a graph: the host's bytes go
    // to the GPU while the capture is under way, without joining or breaking it
    cudaStream_t cs;
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CHECK(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking));
    for (int i = 0; i < 256; i++)
        mv_in[i] = 3 * i;
    CHECK(cudaStreamBeginCapture(cs, cudaStreamCaptureModeGlobal));
    fake_add<<<1, 256, 0, cs>>>(mv_out, mv_in, mv_in, 256);
    CHECK(cudaStreamEndCapture(cs, &g));
    CHECK(cudaGraphInstantiate(&ge, g, 0));
    CHECK(cudaGraphLaunch(ge, cs));
    CHECK(cudaStreamSynchronize(cs));
    printf("a captured graph on host-written managed memory: last %d\n", mv_out[255]);
    CHECK(cudaGraphExecDestroy(ge));
    CHECK(cudaGraphDestroy(g));
    CHECK(cudaStreamDestroy(cs));

    cudaMemLocation dev = { cudaMemLocationTypeDevice, 0 }, host = { cudaMemLocationTypeHost, 0 };
    CHECK(cudaMemAdvise(a, bytes, cudaMemAdviseSetReadMostly, dev));
    CHECK(cudaMemPrefetchAsync(a, bytes, dev, 0, 0));
    CHECK(cudaMemPrefetchAsync(a, bytes, host, 0, 0));
    CHECK(cudaStreamAttachMemAsync(0, c, 0, cudaMemAttachGlobal));
    CHECK(cudaDeviceSynchronize());
    printf("advice, prefetch, attach: accepted; a[5] = %d\n", a[5]);

    // range attributes: what the advice and prefetches asked for, page by page, over a fresh
    // range of two halves; then batched prefetches and discards of the halves
    {
        const size_t rb = 128 << 10, half = rb / 2;
        char *r;
        int v, acc[3], *dm;
        enum cudaMemLocationType lt;

        CHECK(cudaMallocManaged(&r, rb));
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeReadMostly, r, rb));
        printf("a fresh range: read mostly %d", v);
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributePreferredLocation, r, rb));
        printf(", preferred %d", v);
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeLastPrefetchLocation, r, rb));
        printf(", last prefetch %d", v);
        CHECK(cudaMemRangeGetAttribute(acc, sizeof(acc), cudaMemRangeAttributeAccessedBy, r, rb));
        printf(", accessed by %d %d %d\n", acc[0], acc[1], acc[2]);
        CHECK(cudaMemAdvise(r, rb, cudaMemAdviseSetReadMostly, dev));
        CHECK(cudaMemAdvise(r + half, half, cudaMemAdviseUnsetReadMostly, dev));
        CHECK(cudaMemAdvise(r, half, cudaMemAdviseSetPreferredLocation, dev));
        CHECK(cudaMemAdvise(r, rb, cudaMemAdviseSetAccessedBy, dev));
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeReadMostly, r, rb));
        printf("after advice: read mostly %d", v);
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeReadMostly, r, half));
        printf(" (first half %d)", v);
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributePreferredLocation, r, rb));
        printf(", preferred %d", v);
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributePreferredLocation, r, half));
        printf(" (first half %d", v);
        CHECK(cudaMemRangeGetAttribute(&lt, sizeof(lt), cudaMemRangeAttributePreferredLocationType, r,
                                       half));
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributePreferredLocationId, r, half));
        printf(": %s %d)", lt == cudaMemLocationTypeDevice ? "device" : "not a device", v);
        CHECK(cudaMemRangeGetAttribute(acc, sizeof(acc), cudaMemRangeAttributeAccessedBy, r, rb));
        printf(", accessed by %d %d %d\n", acc[0], acc[1], acc[2]);

        cudaStream_t ps;
        void *ptrs[2] = { r, r + half };
        size_t sizes[2] = { half, half }, idxs[2] = { 0, 1 }, bad_idxs[1] = { 1 };
        cudaMemLocation locs[2] = { host, dev };
        int vs[3];
        void *data[3] = { &vs[0], &vs[1], &vs[2] };
        size_t data_sizes[3] = { 4, 4, 4 };
        cudaMemRangeAttribute attrs[3] = { cudaMemRangeAttributeReadMostly,
                                           cudaMemRangeAttributePreferredLocation,
                                           cudaMemRangeAttributeLastPrefetchLocation };

        CHECK(cudaStreamCreate(&ps));
        CHECK(cudaMemPrefetchAsync(r, rb, dev, 0, ps));
        CHECK(cudaStreamSynchronize(ps));
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeLastPrefetchLocation, r, rb));
        printf("prefetched to the device: last prefetch %d", v);
        CHECK(cudaMemRangeGetAttribute(&lt, sizeof(lt), cudaMemRangeAttributeLastPrefetchLocationType,
                                       r, rb));
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeLastPrefetchLocationId, r, rb));
        printf(" (%s %d)", lt == cudaMemLocationTypeDevice ? "device" : "not a device", v);
        CHECK(cudaMemRangeGetAttributes(data, data_sizes, attrs, 3, r, half));
        printf("; first half all at once: %d %d %d\n", vs[0], vs[1], vs[2]);

        CHECK(cudaMemPrefetchBatchAsync(ptrs, sizes, 2, locs, idxs, 2, 0, ps));
        CHECK(cudaStreamSynchronize(ps));
        CHECK(cudaMemRangeGetAttribute(&vs[0], 4, cudaMemRangeAttributeLastPrefetchLocation, r, half));
        CHECK(cudaMemRangeGetAttribute(&vs[1], 4, cudaMemRangeAttributeLastPrefetchLocation, r + half,
                                       half));
        CHECK(cudaMemRangeGetAttribute(&vs[2], 4, cudaMemRangeAttributeLastPrefetchLocation, r, rb));
        printf("a batch of prefetches to the host and the device: last prefetch %d and %d, over both %d\n",
               vs[0], vs[1], vs[2]);
        CHECK(cudaMemDiscardBatchAsync(ptrs, sizes, 2, 0, ps));
        CHECK(cudaStreamSynchronize(ps));
        for (size_t i = 0; i < rb; i++)
            r[i] = (char)(i % 101);     // the contents are undefined after a discard until written
        CHECK(cudaMemDiscardAndPrefetchBatchAsync(ptrs + 1, sizes + 1, 1, &dev, idxs, 1, 0, ps));
        CHECK(cudaStreamSynchronize(ps));
        CHECK(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeLastPrefetchLocation, r + half, half));
        int rwrong = 0;
        for (size_t i = 0; i < half; i++)
            rwrong += r[i] != (char)(i % 101);
        printf("discarded, written again: first half %d wrong; the second discarded and prefetched: "
               "last prefetch %d\n", rwrong, v);

        printf("refused: a batch whose first location index is not 0: %s",
               cudaGetErrorName(cudaMemPrefetchBatchAsync(ptrs, sizes, 2, locs, bad_idxs, 1, 0, ps)));
        printf(", a read-mostly answer of 8 bytes: %s",
               cudaGetErrorName(cudaMemRangeGetAttribute(vs, 8, cudaMemRangeAttributeReadMostly, r, rb)));
        CHECK(cudaMalloc(&dm, 4096));
        printf(", device memory: %s\n",
               cudaGetErrorName(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeReadMostly, dm, 4096)));
        cudaGetLastError();
        CHECK(cudaFree(dm));
        CHECK(cudaStreamDestroy(ps));
        CHECK(cudaFree(r));
    }

    cudaPointerAttributes attr;
    CHECK(cudaPointerGetAttributes(&attr, a + 10));
    printf("pointer attributes: %s, host and device pointer %s\n",
           attr.type == cudaMemoryTypeManaged ? "managed" : "not managed",
           attr.hostPointer == (void *)(a + 10) && attr.devicePointer == (void *)(a + 10) ? "equal" : "differ");

    CHECK(cudaFree(a));
    CHECK(cudaFree(b));
    CHECK(cudaFree(c));
    CHECK(cudaFree(d));
    CHECK(cudaMallocManaged(&a, 4096));
    a[0] = 42;
    fake_add<<<1, 1>>>(a + 1, a, a, 1);
    CHECK(cudaDeviceSynchronize());
    printf("a fresh allocation after the frees: %d\n", a[1]);
    int rm = -1;
    CHECK(cudaMemRangeGetAttribute(&rm, 4, cudaMemRangeAttributeReadMostly, a, 4096));
    printf("its range: read mostly %d\n", rm);

    // work sent through the driver API (vgpu's libcuda.so.1 in the guest) sees the host's writes too
    typedef int (*launch_t)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                            unsigned, void *, void **, void **);
    cudaFunction_t fn;
    void *ep = NULL;
    cudaDriverEntryPointQueryResult q;
    int half = 512, *second = a + 512;
    CHECK(cudaGetFuncBySymbol(&fn, (const void *)fake_add));
    CHECK(cudaGetDriverEntryPointByVersion("cuLaunchKernel", &ep, 13000, cudaEnableDefault, &q));
    for (int i = 0; i < half; i++)
        a[i] = 5;
    void *dargs[] = { &second, &a, &a, &half };
    int lr = ep ? ((launch_t)ep)((void *)fn, 2, 1, 1, 256, 1, 1, 0, NULL, dargs, NULL) : -1;
    CHECK(cudaDeviceSynchronize());
    int dwrong = 0;
    for (int i = 0; i < half; i++)
        dwrong += second[i] != 10;
    printf("a driver-API launch on managed memory: status %d, %d wrong\n", lr, dwrong);
    CHECK(cudaFree(a));
    printf("cudaMallocManaged of 0 bytes: %s\n", cudaGetErrorName(cudaMallocManaged(&a, 0)));
    if (getenv("VGPU_TEST_ATTRS")) {
        // what vgpu reports, which a GPU host's native run does not (an H200 has concurrent access)
        cudaDeviceProp prop;
        int cma = -1;

        CHECK(cudaGetDeviceProperties(&prop, 0));
        CHECK(cudaDeviceGetAttribute(&cma, cudaDevAttrConcurrentManagedAccess, 0));
        printf("managed memory %d, concurrent managed access %d and %d, pageable memory access %d\n",
               prop.managedMemory, prop.concurrentManagedAccess, cma, prop.pageableMemoryAccess);
    }
    free(h);
    return 0;
}
