// SPDX-License-Identifier: Apache-2.0
//
// Host nodes through the runtime API: one added by hand runs its function
// in this process at each launch of the graph, reads back its function
// and data, and takes new data in the executable graph; a
// cudaLaunchHostFunc captured between two kernels becomes one and runs at
// each launch, in stream order; a user object whose destructor runs in
// this process once its graph is gone.  Host functions need vgpu's shared-memory
// queue pair (shim/client/callbacks.c), so this runs host-direct over it
// and in a guest with a shared BAR, not over a plain socket.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#include <unistd.h>

#include "fake_kernels.cuh"

static const int N = 4096;

// A host node's function: counts its runs.
static void bump(void *p)
{
    ++*(volatile int *)p;
}

int main()
{
    const size_t bytes = N * sizeof(int);
    int *b, *c, *h = (int *)malloc(bytes);
    unsigned blocks = (N + 255) / 256;
    cudaStream_t s;
    int hits = 0, hits2 = 0, captured = 0, bad = 0;

    CHECK(cudaMalloc(&b, bytes));
    CHECK(cudaMalloc(&c, bytes));
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

    // 1. by hand
    cudaGraph_t g3, g4;
    cudaGraphExec_t e3, e4;
    cudaGraphNode_t hn;
    cudaHostNodeParams hp = {}, hb = {};
    hp.fn = bump;
    hp.userData = &hits;
    CHECK(cudaGraphCreate(&g3, 0));
    CHECK(cudaGraphAddHostNode(&hn, g3, NULL, 0, &hp));
    CHECK(cudaGraphHostNodeGetParams(hn, &hb));
    printf("host node reads back: %s\n",
           hb.fn == bump && hb.userData == &hits ? "its function and data" : "something else");
    CHECK(cudaGraphInstantiate(&e3, g3, 0));
    for (int i = 0; i < 5; i++)
        CHECK(cudaGraphLaunch(e3, s));
    CHECK(cudaStreamSynchronize(s));
    printf("host node after 5 launches: %d runs\n", hits);
    hp.userData = &hits2;
    CHECK(cudaGraphExecHostNodeSetParams(e3, hn, &hp));
    CHECK(cudaGraphLaunch(e3, s));
    CHECK(cudaStreamSynchronize(s));
    printf("after cudaGraphExecHostNodeSetParams: %d and %d runs\n", hits, hits2);
    hp.userData = &bad;
    CHECK(cudaGraphHostNodeSetParams(hn, &hp));
    CHECK(cudaGraphHostNodeGetParams(hn, &hb));
    printf("after cudaGraphHostNodeSetParams the node reads back: %s\n",
           hb.userData == &bad ? "the new data" : "the old data");

    // 2. captured between two kernels
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    fake_fill<<<(unsigned)((bytes + 255) / 256), 256, 0, s>>>(b, 2, bytes);
    CHECK(cudaLaunchHostFunc(s, bump, &captured));
    fake_add<<<blocks, 256, 0, s>>>(c, b, b, N);
    CHECK(cudaStreamEndCapture(s, &g4));
    size_t n = 0;
    CHECK(cudaGraphGetNodes(g4, NULL, &n));
    printf("captured graph: %zu nodes\n", n);
    CHECK(cudaGraphInstantiate(&e4, g4, 0));
    for (int i = 0; i < 3; i++)
        CHECK(cudaGraphLaunch(e4, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaMemcpy(h, c, bytes, cudaMemcpyDeviceToHost));
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += h[i] != 2 * 0x02020202;
    printf("captured host function after 3 launches: %d runs; c[0] = %d, %d wrong\n", captured,
           h[0], wrong);

    // 3. a user object owned by the hand-built graph: destroyed with it, by the destructor
    int gone = 0;
    cudaUserObject_t uo;
    CHECK(cudaUserObjectCreate(&uo, &gone, bump, 1, cudaUserObjectNoDestructorSync));
    CHECK(cudaUserObjectRetain(uo, 2));
    CHECK(cudaUserObjectRelease(uo, 2));
    CHECK(cudaGraphRetainUserObject(g3, uo, 1, cudaGraphUserObjectMove));

    CHECK(cudaGraphExecDestroy(e3));
    CHECK(cudaGraphExecDestroy(e4));
    CHECK(cudaGraphDestroy(g3));
    CHECK(cudaGraphDestroy(g4));
    for (int i = 0; i < 500 && !*(volatile int *)&gone; i++)
        usleep(10000);         // the destructor runs on CUDA's thread, never waited for
    printf("user object's destructor after its graph went: %d run\n", *(volatile int *)&gone);
    CHECK(cudaStreamDestroy(s));
    CHECK(cudaFree(b));
    CHECK(cudaFree(c));
    free(h);
    printf("host functions that ran with the wrong data: %d\n", bad);
    return 0;
}
