// SPDX-License-Identifier: Apache-2.0
// A client that stops at one stage of its work and waits there to be killed
// (run_stages.sh): "copy" loops on 8 MiB copies both ways, "capture" holds a
// stream capture open with a kernel in it, "graph" holds an instantiated
// graph and device memory; each prints "ready" once there.  "probe" sets,
// reads back and checks 4 KiB, and ends.
#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__global__ void bump(int *p, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;

    if (i < n)
        p[i] += 1;
}

static int check(cudaError_t st, const char *what)
{
    if (st != cudaSuccess) {
        fprintf(stderr, "stage_client: %s: %s\n", what, cudaGetErrorString(st));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const int n = 1 << 21;
    const char *stage = argc > 1 ? argv[1] : "";
    static int host[1 << 21];
    int *dev = NULL;
    cudaStream_t s;

    if (check(cudaMalloc(&dev, n * sizeof(int)), "cudaMalloc") ||
        check(cudaStreamCreate(&s), "cudaStreamCreate"))
        return 1;
    if (!strcmp(stage, "copy")) {
        printf("ready\n");
        fflush(stdout);
        for (;;)
            if (check(cudaMemcpy(dev, host, sizeof(host), cudaMemcpyHostToDevice), "copy in") ||
                check(cudaMemcpy(host, dev, sizeof(host), cudaMemcpyDeviceToHost), "copy out"))
                return 1;
    }
    if (!strcmp(stage, "capture") || !strcmp(stage, "graph")) {
        cudaGraph_t g;
        cudaGraphExec_t e;

        if (check(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), "begin capture"))
            return 1;
        bump<<<(n + 255) / 256, 256, 0, s>>>(dev, n);
        if (!strcmp(stage, "graph") &&
            (check(cudaStreamEndCapture(s, &g), "end capture") ||
             check(cudaGraphInstantiate(&e, g, 0), "instantiate") ||
             check(cudaGraphLaunch(e, s), "launch")))
            return 1;
        printf("ready\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    if (!strcmp(stage, "probe")) {
        if (check(cudaMemset(dev, 1, 4096), "cudaMemset") ||
            check(cudaMemcpy(host, dev, 4096, cudaMemcpyDeviceToHost), "copy out"))
            return 1;
        printf("%s\n", host[0] == 0x01010101 && host[1023] == 0x01010101 ? "ok" : "wrong");
        return host[0] == 0x01010101 ? 0 : 1;
    }
    fprintf(stderr, "usage: stage_client copy|capture|graph|probe\n");
    return 2;
}
