/* SPDX-License-Identifier: Apache-2.0
 *
 * drv_streams_events: two streams (one created with the greatest priority)
 * doing asynchronous work on page-locked host memory of the three kinds the
 * driver offers: cuMemAllocHost, cuMemHostAlloc, and malloc'd memory pinned
 * with cuMemHostRegister. Stream one copies the input up and adds 1; stream
 * two clears its buffer with cuMemsetD32Async, waits (cuStreamWaitEvent) for
 * an event recorded on stream one, adds stream one's result, and copies back.
 * Every element of both results is checked; cuEventElapsedTime is checked
 * to be non-negative, never printed.
 *
 * Output contract: see examples/README.md.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cuda.h>

#include "drv_check.h"

extern const unsigned char drv_streams_fatbin[];

enum { N = 1 << 20 };

/* Every element must be (i % 1000) + 1 + extra. */
static int check(const char *what, const unsigned *got, unsigned extra)
{
    int wrong = 0, first = -1;
    for (int i = 0; i < N; i++) {
        if (got[i] != (unsigned)(i % 1000) + 1u + extra) {
            if (first < 0)
                first = i;
            wrong++;
        }
    }
    if (wrong) {
        printf("FAILED: %s: %d of %d values wrong, first [%d] = %u\n", what, wrong, N, first,
               got[first]);
        return 1;
    }
    printf("%s: [0] = %u, [%d] = %u\n", what, got[0], N - 1, got[N - 1]);
    return 0;
}

int main(void)
{
    const size_t bytes = N * sizeof(unsigned);
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUfunction add_const, add_from;
    CUstream s1, s2;
    CUevent start, stop, ready;
    CUdeviceptr d1, d2;
    void *in, *out1;
    int least, greatest;

    printf("drv_streams_events: n = %d, 2 streams\n", N);
    DRV_CHECK(cuInit(0));
    DRV_CHECK(cuDeviceGet(&dev, 0));
    DRV_CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    DRV_CHECK(cuCtxSetCurrent(ctx));
    DRV_CHECK(cuModuleLoadData(&mod, drv_streams_fatbin));
    DRV_CHECK(cuModuleGetFunction(&add_const, mod, "add_const"));
    DRV_CHECK(cuModuleGetFunction(&add_from, mod, "add_from"));

    DRV_CHECK(cuCtxGetStreamPriorityRange(&least, &greatest));
    DRV_CHECK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    DRV_CHECK(cuStreamCreateWithPriority(&s2, CU_STREAM_NON_BLOCKING, greatest));
    DRV_CHECK(cuEventCreate(&start, CU_EVENT_DEFAULT));
    DRV_CHECK(cuEventCreate(&stop, CU_EVENT_DEFAULT));
    DRV_CHECK(cuEventCreate(&ready, CU_EVENT_DISABLE_TIMING));

    DRV_CHECK(cuMemAllocHost(&in, bytes));
    DRV_CHECK(cuMemHostAlloc(&out1, bytes, CU_MEMHOSTALLOC_PORTABLE));
    unsigned *out2 = aligned_alloc(4096, bytes);
    if (!out2) {
        printf("drv_streams_events: host allocation of %zu bytes failed\n", bytes);
        return 1;
    }
    DRV_CHECK(cuMemHostRegister(out2, bytes, 0));
    unsigned *h_in = in, *h_out1 = out1;
    for (int i = 0; i < N; i++) {
        h_in[i] = (unsigned)(i % 1000);
        h_out1[i] = out2[i] = 0xdeadbeefu;
    }
    DRV_CHECK(cuMemAlloc(&d1, bytes));
    DRV_CHECK(cuMemAlloc(&d2, bytes));

    const unsigned threads = 256, blocks = (N + threads - 1) / threads;
    int n = N;
    unsigned one = 1;
    void *p_const[] = {&d1, &one, &n};
    void *p_from[] = {&d2, &d1, &n};

    /* stream one: d1 = in + 1, copied back to out1 */
    DRV_CHECK(cuEventRecord(start, s1));
    DRV_CHECK(cuMemcpyHtoDAsync(d1, in, bytes, s1));
    DRV_CHECK(cuLaunchKernel(add_const, blocks, 1, 1, threads, 1, 1, 0, s1, p_const, NULL));
    DRV_CHECK(cuEventRecord(ready, s1));
    DRV_CHECK(cuMemcpyDtoHAsync(out1, d1, bytes, s1));
    DRV_CHECK(cuEventRecord(stop, s1));

    /* stream two: d2 = 7 + d1 once stream one's kernel is done */
    DRV_CHECK(cuMemsetD32Async(d2, 7, N, s2));
    DRV_CHECK(cuStreamWaitEvent(s2, ready, 0));
    DRV_CHECK(cuLaunchKernel(add_from, blocks, 1, 1, threads, 1, 1, 0, s2, p_from, NULL));
    DRV_CHECK(cuMemcpyDtoHAsync(out2, d2, bytes, s2));

    /* Either answer is right while work may be in flight. */
    CUresult q = cuStreamQuery(s2);
    if (q != CUDA_SUCCESS && q != CUDA_ERROR_NOT_READY)
        drv_check(q, "cuStreamQuery(s2) while busy");

    DRV_CHECK(cuEventSynchronize(stop));
    DRV_CHECK(cuStreamSynchronize(s2));
    DRV_CHECK(cuStreamQuery(s1));
    DRV_CHECK(cuStreamQuery(s2));
    float ms = -1.0f;
    DRV_CHECK(cuEventElapsedTime(&ms, start, stop));
    int failed = 0;
    if (!(ms >= 0.0f)) {
        printf("FAILED: cuEventElapsedTime gave a negative time\n");
        failed = 1;
    }

    failed |= check("stream one (in + 1)", h_out1, 0);
    failed |= check("stream two (7 + in + 1)", out2, 7);

    DRV_CHECK(cuMemFree(d1));
    DRV_CHECK(cuMemFree(d2));
    DRV_CHECK(cuMemHostUnregister(out2));
    free(out2);
    DRV_CHECK(cuMemFreeHost(out1));
    DRV_CHECK(cuMemFreeHost(in));
    DRV_CHECK(cuEventDestroy(start));
    DRV_CHECK(cuEventDestroy(stop));
    DRV_CHECK(cuEventDestroy(ready));
    DRV_CHECK(cuStreamDestroy(s1));
    DRV_CHECK(cuStreamDestroy(s2));
    DRV_CHECK(cuModuleUnload(mod));
    DRV_CHECK(cuDevicePrimaryCtxRelease(dev));
    if (failed)
        return 2;
    printf("drv_streams_events: PASSED\n");
    return 0;
}
