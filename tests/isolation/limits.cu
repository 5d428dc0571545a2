// SPDX-License-Identifier: Apache-2.0
//
// iso_limits: the client side of the per-VM limits test (run_limits.sh).
// The server's config gives vm 42 64 MiB of device memory and 4 streams;
// every client of this test connects to that VM's listener.
//
//   iso_limits solo WORK     one process: up to the limits, over them by
//                            each allocating and stream-creating call, and
//                            back under after a free or a destroy
//   iso_limits holder WORK   with sharer: two processes of the same VM
//   iso_limits sharer WORK   share its limits (run_limits.sh starts both;
//                            they pace each other through files in WORK)
//
// Prints "STEP -> cudaErrorXxx" lines for run_limits.sh to compare with
// expected/limits_<role>.txt; exit 0 unless a wait timed out.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <cuda_runtime.h>

#include "iso_vals.h"

#define MIB (size_t(1) << 20)
#define BLOCK (16 * MIB)

static void *blocks[8];
static cudaStream_t streams[8];

static cudaError_t step(const char *what, cudaError_t err)
{
    printf("%s -> %s\n", what, cudaGetErrorName(err));
    cudaGetLastError();
    return err;
}

static void wait_for(const char *work, const char *name)
{
    if (iso_wait_file(work, name, 60) != 0) {
        printf("no %s after 60 s\n", name);
        exit(1);
    }
}

static void signal_file(const char *work, const char *name)
{
    if (iso_touch(work, name) != 0) {
        perror(name);
        exit(1);
    }
}

// What a finished session gives back may take a moment to count again:
// retries for up to 5 s, then reports the last status.
static cudaError_t retry_malloc(void **p, size_t size)
{
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    cudaError_t err = cudaErrorUnknown;

    for (int i = 0; i < 50 && (err = cudaMalloc(p, size)) == cudaErrorMemoryAllocation; i++)
        nanosleep(&tick, NULL);
    return err;
}

static cudaError_t retry_stream(cudaStream_t *s)
{
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    cudaError_t err = cudaErrorUnknown;

    for (int i = 0; i < 50 && (err = cudaStreamCreate(s)) == cudaErrorMemoryAllocation; i++)
        nanosleep(&tick, NULL);
    return err;
}

/* The device as the VM sees it: its limit, not the GPU's size (server/view.c). */
static void view(const char *when)
{
    size_t avail = 0, total = 0;
    cudaDeviceProp prop;

    step("cudaMemGetInfo", cudaMemGetInfo(&avail, &total));
    step("cudaGetDeviceProperties", cudaGetDeviceProperties(&prop, 0));
    printf("%s: cudaMemGetInfo free %zuM of %zuM, totalGlobalMem %zuM\n", when, avail / MIB,
           total / MIB, prop.totalGlobalMem / MIB);
}

static int solo()
{
    struct cudaPitchedPtr pp;
    void *p = nullptr;
    size_t pitch;
    char what[64];

    printf("# one process of vm 42 (memory 64M, streams 4)\n");
    view("before any allocation");
    step("cudaMalloc 65M at once", cudaMalloc(&p, 65 * MIB));
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof(what), "cudaMalloc 16M #%d", i + 1);
        step(what, cudaMalloc(&blocks[i], BLOCK));
    }
    view("holding 64M");
    step("cudaMalloc 16M over the limit", cudaMalloc(&p, BLOCK));
    step("cudaMalloc 1 byte over the limit", cudaMalloc(&p, 1));
    step("cudaMallocPitch 1024x16 over the limit", cudaMallocPitch(&p, &pitch, 1024, 16));
    step("cudaMallocAsync 16M over the limit", cudaMallocAsync(&p, BLOCK, 0));
    /* a pitched allocation of height x depth rows: the limit holds for it too */
    step("cudaMalloc3D 1024x1024x16 over the limit", cudaMalloc3D(&pp, make_cudaExtent(1024, 1024, 16)));
    step("cudaFree of one 16M block", cudaFree(blocks[3]));
    step("cudaMalloc 16M after the free", cudaMalloc(&blocks[3], BLOCK));
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof(what), "cudaStreamCreate #%d", i + 1);
        step(what, cudaStreamCreate(&streams[i]));
    }
    step("cudaStreamCreate over the limit", cudaStreamCreate(&streams[4]));
    step("cudaStreamCreateWithFlags over the limit",
         cudaStreamCreateWithFlags(&streams[4], cudaStreamNonBlocking));
    step("cudaStreamCreateWithPriority over the limit",
         cudaStreamCreateWithPriority(&streams[4], cudaStreamDefault, 0));
    step("cudaStreamDestroy of one stream", cudaStreamDestroy(streams[3]));
    step("cudaStreamCreate after the destroy", cudaStreamCreate(&streams[3]));
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof(what), "cleanup: cudaFree #%d", i + 1);
        step(what, cudaFree(blocks[i]));
        snprintf(what, sizeof(what), "cleanup: cudaStreamDestroy #%d", i + 1);
        step(what, cudaStreamDestroy(streams[i]));
    }
    return 0;
}

static int holder(const char *work)
{
    printf("# holder: 48M and 2 streams of vm 42\n");
    step("cudaMalloc 16M #1", cudaMalloc(&blocks[0], BLOCK));
    step("cudaMalloc 16M #2", cudaMalloc(&blocks[1], BLOCK));
    step("cudaMalloc 16M #3", cudaMalloc(&blocks[2], BLOCK));
    step("cudaStreamCreate #1", cudaStreamCreate(&streams[0]));
    step("cudaStreamCreate #2", cudaStreamCreate(&streams[1]));
    fflush(stdout);
    signal_file(work, "holder.ready");
    wait_for(work, "sharer.full");
    printf("# holder gives back 16M and a stream\n");
    step("cudaFree of one 16M block", cudaFree(blocks[2]));
    step("cudaStreamDestroy of one stream", cudaStreamDestroy(streams[1]));
    fflush(stdout);
    signal_file(work, "holder.freed");
    wait_for(work, "sharer.done");
    printf("# holder exits holding 32M and a stream\n");
    return 0;
}

static int sharer(const char *work)
{
    void *p = nullptr;

    wait_for(work, "holder.ready");
    printf("# sharer: same vm, while the holder has 48M and 2 streams\n");
    step("cudaMalloc 16M", cudaMalloc(&blocks[0], BLOCK));
    step("cudaMalloc 16M over the vm's limit", cudaMalloc(&p, BLOCK));
    step("cudaStreamCreate #1", cudaStreamCreate(&streams[0]));
    step("cudaStreamCreate #2", cudaStreamCreate(&streams[1]));
    step("cudaStreamCreate over the vm's limit", cudaStreamCreate(&streams[2]));
    fflush(stdout);
    signal_file(work, "sharer.full");
    wait_for(work, "holder.freed");
    printf("# sharer, after the holder gave back 16M and a stream\n");
    step("cudaMalloc 16M", cudaMalloc(&blocks[1], BLOCK));
    step("cudaStreamCreate", cudaStreamCreate(&streams[2]));
    step("cudaMalloc 16M over the vm's limit", cudaMalloc(&p, BLOCK));
    step("cudaStreamCreate over the vm's limit", cudaStreamCreate(&streams[3]));
    fflush(stdout);
    signal_file(work, "sharer.done");
    wait_for(work, "holder.gone");
    printf("# sharer, after the holder's process ended holding 32M and a stream\n");
    step("cudaMalloc 16M", retry_malloc(&blocks[2], BLOCK));
    step("cudaMalloc 16M", retry_malloc(&blocks[3], BLOCK));
    step("cudaStreamCreate", retry_stream(&streams[3]));
    step("cudaMalloc 16M over the vm's limit", cudaMalloc(&p, BLOCK));
    step("cudaStreamCreate over the vm's limit", cudaStreamCreate(&streams[4]));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "solo"))
        return solo();
    if (argc == 3 && !strcmp(argv[1], "holder"))
        return holder(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "sharer"))
        return sharer(argv[2]);
    fprintf(stderr, "usage: iso_limits solo|holder|sharer WORK\n");
    return 2;
}
