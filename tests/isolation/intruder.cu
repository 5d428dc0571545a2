// SPDX-License-Identifier: Apache-2.0
//
// iso_intruder: client B of the isolation test (run_isolation.sh), an
// ordinary CUDA program going through the shim.  It reads client A's values
// from WORK/owner.vals and uses them in every call that takes a device
// pointer, a stream, an event, a kernel or a variable; each must fail.
//
//   iso_intruder WORK
//
// Prints "CALL -> cudaErrorXxx" for each attempt, in a fixed order, for the
// driver to compare with expected/intruder.txt; exit 0 unless its own setup
// failed.
//
// Values can coincide across processes (two sessions forked from one server
// often get the same addresses from the same sequence of calls), and then
// "A's value" would really be one of B's own.  So each phase uses A's values
// only of kinds B holds none of at that moment: first B holds nothing; then
// only memory (A's stream and event with B's memory); then only a stream and
// an event (A's memory and event with B's stream).
//
// Kernels and variables are named by host addresses in the guest: B is built
// from its own source, so A's kernel and variable are not registered in B at
// all and the shim itself refuses them; the raw client (intruder_raw.c) sends
// the same values to the server directly.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>

#include "iso_vals.h"

#define N 4096

__global__ void fake_fill(unsigned char *p, unsigned int value, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned char)value;
}

static void own(cudaError_t err, const char *what)
{
    if (err != cudaSuccess) {
        printf("intruder: own call %s -> %s\n", what, cudaGetErrorName(err));
        exit(1);
    }
}
#define OWN(call) own((call), #call)

/*
 * The status of one attempt: what the call returned, or, for a call that
 * returned success, the last error (through vgpu an asynchronous call waits
 * in a batch and its failure surfaces there, as CUDA's asynchronous errors
 * do).  The last error is clear before every attempt.
 */
static void attempt(const char *what, cudaError_t err)
{
    if (err == cudaSuccess)
        err = cudaGetLastError();
    printf("%s -> %s\n", what, cudaGetErrorName(err));
    cudaGetLastError();
}

static cudaError_t fill(const void *kernel, void *p, unsigned int value, size_t n, cudaStream_t s)
{
    void *args[] = { &p, &value, &n };

    return cudaLaunchKernel(kernel, dim3(1), dim3(256), args, 0, s);
}

static const char *memory_type(enum cudaMemoryType t)
{
    switch (t) {
    case cudaMemoryTypeUnregistered: return "unregistered";
    case cudaMemoryTypeHost: return "host";
    case cudaMemoryTypeDevice: return "device";
    case cudaMemoryTypeManaged: return "managed";
    default: return "?";
    }
}

int main(int argc, char **argv)
{
    static unsigned char host[N], junk[N];
    struct iso_vals v;
    struct cudaPointerAttributes pa;
    struct cudaFuncAttributes fa;
    unsigned char *buf, *mine;
    cudaStream_t s, my_s;
    cudaEvent_t ev, my_ev;
    const void *kernel, *symbol;
    void *p;
    float ms;
    int prio;
    unsigned int flags;
    cudaError_t err;

    if (argc != 2) {
        fprintf(stderr, "usage: iso_intruder WORK\n");
        return 2;
    }
    if (iso_vals_read(argv[1], &v) != 0) {
        printf("intruder: cannot read %s/owner.vals\n", argv[1]);
        return 1;
    }
    buf = (unsigned char *)(uintptr_t)v.buf;
    s = (cudaStream_t)(uintptr_t)v.stream;
    ev = (cudaEvent_t)(uintptr_t)v.event;
    kernel = (const void *)(uintptr_t)v.kernel;
    symbol = (const void *)(uintptr_t)v.symbol;
    if (kernel == (const void *)fake_fill) {
        printf("intruder: A's kernel has the address of B's own; the kernel checks mean nothing\n");
        return 1;
    }
    for (int i = 0; i < N; i++)
        junk[i] = 0x66;

    printf("# B holds nothing: A's memory, streams, events, kernel and variable\n");
    attempt("cudaMemcpy D2H from A's buffer", cudaMemcpy(host, buf, 256, cudaMemcpyDeviceToHost));
    attempt("cudaMemcpy D2H from inside A's buffer",
            cudaMemcpy(host, buf + 1000, 16, cudaMemcpyDeviceToHost));
    attempt("cudaMemcpy H2D into A's buffer", cudaMemcpy(buf, junk, 256, cudaMemcpyHostToDevice));
    attempt("cudaMemcpyAsync H2D into A's buffer",
            cudaMemcpyAsync(buf, junk, 256, cudaMemcpyHostToDevice, 0));
    attempt("cudaMemcpy D2D within A's buffer",
            cudaMemcpy(buf, buf + 2048, 256, cudaMemcpyDeviceToDevice));
    attempt("cudaMemcpy2D H2D into A's buffer",
            cudaMemcpy2D(buf, 512, junk, 256, 256, 4, cudaMemcpyHostToDevice));
    attempt("cudaMemset on A's buffer", cudaMemset(buf, 0x66, 256));
    attempt("cudaMemsetAsync on A's buffer", cudaMemsetAsync(buf, 0x66, 256, 0));
    attempt("cudaMemset2D on A's buffer", cudaMemset2D(buf, 512, 0x66, 256, 4));
    attempt("cudaFree of A's buffer", cudaFree(buf));
    attempt("cudaFree inside A's buffer", cudaFree(buf + 256));
    attempt("cudaFreeAsync of A's buffer", cudaFreeAsync(buf, 0));
    err = cudaPointerGetAttributes(&pa, buf);
    printf("cudaPointerGetAttributes of A's buffer -> %s, %s\n", cudaGetErrorName(err),
           memory_type(pa.type));

    attempt("cudaStreamSynchronize on A's stream", cudaStreamSynchronize(s));
    attempt("cudaStreamQuery on A's stream", cudaStreamQuery(s));
    attempt("cudaStreamGetPriority of A's stream", cudaStreamGetPriority(s, &prio));
    attempt("cudaStreamGetFlags of A's stream", cudaStreamGetFlags(s, &flags));
    attempt("cudaStreamWaitEvent of A's stream on A's event", cudaStreamWaitEvent(s, ev, 0));
    attempt("cudaStreamDestroy of A's stream", cudaStreamDestroy(s));

    attempt("cudaEventRecord of A's event", cudaEventRecord(ev, 0));
    attempt("cudaEventQuery on A's event", cudaEventQuery(ev));
    attempt("cudaEventSynchronize on A's event", cudaEventSynchronize(ev));
    attempt("cudaEventElapsedTime of A's events", cudaEventElapsedTime(&ms, ev, ev));
    attempt("cudaStreamWaitEvent of the default stream on A's event", cudaStreamWaitEvent(0, ev, 0));
    attempt("cudaEventDestroy of A's event", cudaEventDestroy(ev));

    attempt("cudaLaunchKernel of A's kernel", fill(kernel, nullptr, 0, 0, 0));
    attempt("cudaFuncGetAttributes of A's kernel", cudaFuncGetAttributes(&fa, kernel));
    attempt("cudaFuncSetAttribute of A's kernel",
            cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 1024));
    attempt("cudaMemcpyFromSymbol of A's variable",
            cudaMemcpyFromSymbol(host, symbol, 16, 0, cudaMemcpyDeviceToHost));
    attempt("cudaMemcpyToSymbol of A's variable",
            cudaMemcpyToSymbol(symbol, junk, 16, 0, cudaMemcpyHostToDevice));
    attempt("cudaGetSymbolAddress of A's variable", cudaGetSymbolAddress(&p, symbol));

    printf("# B holds device memory only: A's stream and event with B's memory\n");
    OWN(cudaMalloc((void **)&mine, N));
    OWN(cudaMemset(mine, 0x11, N));
    attempt("cudaMemcpyAsync H2D into B's buffer on A's stream",
            cudaMemcpyAsync(mine, junk, 256, cudaMemcpyHostToDevice, s));
    attempt("cudaMemcpyAsync D2H from B's buffer on A's stream",
            cudaMemcpyAsync(host, mine, 256, cudaMemcpyDeviceToHost, s));
    attempt("cudaMemsetAsync on B's buffer on A's stream", cudaMemsetAsync(mine, 0x66, 256, s));
    attempt("cudaLaunchKernel of B's kernel on A's stream",
            fill((const void *)fake_fill, mine, 0x66, 256, s));
    attempt("cudaMallocAsync on A's stream", cudaMallocAsync(&p, 256, s));
    attempt("cudaFreeAsync of B's buffer on A's stream", cudaFreeAsync(mine, s));
    OWN(cudaMemcpy(host, mine, N, cudaMemcpyDeviceToHost));
    err = cudaSuccess;
    for (int i = 0; i < N; i++)
        if (host[i] != 0x11)
            err = cudaErrorUnknown;
    printf("B's buffer untouched by the refused calls -> %s\n", err == cudaSuccess ? "yes" : "NO");
    OWN(cudaFree(mine));

    printf("# B holds a stream and an event only: A's memory and event with B's stream\n");
    OWN(cudaStreamCreate(&my_s));
    OWN(cudaEventCreate(&my_ev));
    OWN(cudaEventRecord(my_ev, my_s));
    attempt("cudaMemcpyAsync D2H from A's buffer on B's stream",
            cudaMemcpyAsync(host, buf, 256, cudaMemcpyDeviceToHost, my_s));
    attempt("cudaMemcpyAsync H2D into A's buffer on B's stream",
            cudaMemcpyAsync(buf, junk, 256, cudaMemcpyHostToDevice, my_s));
    attempt("cudaMemsetAsync on A's buffer on B's stream", cudaMemsetAsync(buf, 0x66, 256, my_s));
    attempt("cudaFreeAsync of A's buffer on B's stream", cudaFreeAsync(buf, my_s));
    attempt("cudaEventRecord of A's event on B's stream", cudaEventRecord(ev, my_s));
    attempt("cudaStreamWaitEvent of B's stream on A's event", cudaStreamWaitEvent(my_s, ev, 0));
    attempt("cudaEventElapsedTime from B's event to A's", cudaEventElapsedTime(&ms, my_ev, ev));
    OWN(cudaStreamSynchronize(my_s));

    // Last, as it may break B's own context: kernel arguments are opaque to
    // the server, so B's kernel runs with A's address in B's own context,
    // where it names nothing of A's (a fault, or B's own memory on a GPU
    // whose addresses coincide; on the fake runtime a fault).  The status is
    // not compared: the owner's checks show whether A's buffer changed.
    printf("# B's own kernel given A's buffer address: A's buffer must not change\n");
    err = fill((const void *)fake_fill, buf, 0x77, 256, my_s);
    if (err == cudaSuccess)
        err = cudaStreamSynchronize(my_s);
    fprintf(stderr, "intruder: B's kernel on A's address -> %s\n", cudaGetErrorName(err));
    printf("launched\n");
    return 0;
}
