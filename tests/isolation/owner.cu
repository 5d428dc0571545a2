// SPDX-License-Identifier: Apache-2.0
//
// iso_owner: client A of the isolation test (run_isolation.sh).  Creates a
// device buffer with known contents, a stream, an event, and uses its own
// kernel and __device__ variable; publishes their values in WORK/owner.vals
// (iso_vals.h); waits for WORK/intruders.done; then checks that nothing the
// intruders tried had any effect: its memory and variable hold what it
// wrote, and its stream, event, kernel and buffer all still work (the
// buffer is still its own to free).
//
//   iso_owner WORK
//
// Prints one stable line per check ("owner: CHECK -> ok" or "-> FAILED:
// why"); exit 0 when every check passed, 1 otherwise.
//
// fake_fill has the signature and meaning of the fake runtime's kernel of
// that name (tests/fakecuda/exec.c), so the test means the same on the fake
// runtime and on a GPU.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <cuda_runtime.h>

#include "iso_vals.h"

#define N 4096

__device__ unsigned int owner_secret[4];

__global__ void fake_fill(unsigned char *p, unsigned int value, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned char)value;
}

static const unsigned int secret[4] = { 0x5ec1e7u, 0xa11ceu, 42u, 0xffffffffu };
static unsigned char expected[N];
static int failures;

static void setup_check(cudaError_t err, const char *what)
{
    if (err != cudaSuccess) {
        printf("owner: setup: %s -> %s\n", what, cudaGetErrorName(err));
        exit(1);
    }
}
#define SETUP(call) setup_check((call), #call)

// One check: ok, or FAILED with the first CUDA error or the reason given.
static void report(const char *what, cudaError_t err, const char *why)
{
    if (err != cudaSuccess) {
        printf("owner: %s -> FAILED: %s\n", what, cudaGetErrorName(err));
        failures++;
    } else if (why) {
        printf("owner: %s -> FAILED: %s\n", what, why);
        failures++;
    } else {
        printf("owner: %s -> ok\n", what);
    }
}

// The buffer against expected[]; why describes the first difference.
static cudaError_t compare(unsigned char *buf, cudaStream_t s, const char **why)
{
    static unsigned char got[N];
    static char text[128];
    cudaError_t err = cudaMemcpyAsync(got, buf, N, cudaMemcpyDeviceToHost, s);

    if (err == cudaSuccess)
        err = cudaStreamSynchronize(s);
    *why = nullptr;
    for (int i = 0; err == cudaSuccess && i < N; i++)
        if (got[i] != expected[i]) {
            snprintf(text, sizeof(text), "byte %d is 0x%02x, not 0x%02x", i, got[i], expected[i]);
            *why = text;
            break;
        }
    return err;
}

static cudaError_t fill(unsigned char *p, unsigned int value, size_t n, cudaStream_t s)
{
    void *args[] = { &p, &value, &n };

    return cudaLaunchKernel((const void *)fake_fill, dim3(4), dim3(256), args, 0, s);
}

int main(int argc, char **argv)
{
    cudaStream_t s;
    cudaEvent_t ev;
    unsigned char *buf;
    unsigned int got[4];
    struct cudaFuncAttributes fa;
    struct iso_vals v;
    const char *why;
    cudaError_t err;

    if (argc != 2) {
        fprintf(stderr, "usage: iso_owner WORK\n");
        return 2;
    }
    // A's objects: the first half of the buffer a pattern, the second filled by A's kernel.
    for (int i = 0; i < N; i++)
        expected[i] = i < N / 2 ? (unsigned char)(i * 7 + 3) : 0xa5;
    SETUP(cudaStreamCreate(&s));
    SETUP(cudaEventCreate(&ev));
    SETUP(cudaMalloc((void **)&buf, N));
    SETUP(cudaMemcpyAsync(buf, expected, N / 2, cudaMemcpyHostToDevice, s));
    SETUP(fill(buf + N / 2, 0xa5, N / 2, s));
    SETUP(cudaEventRecord(ev, s));
    SETUP(cudaEventSynchronize(ev));
    SETUP(cudaMemcpyToSymbol(owner_secret, secret, sizeof(secret)));
    err = compare(buf, s, &why);
    report("setup", err, why);
    if (failures)
        return 1;

    v.buf = (uintptr_t)buf;
    v.size = N;
    v.stream = (uintptr_t)s;
    v.event = (uintptr_t)ev;
    v.kernel = (uintptr_t)(const void *)fake_fill;
    v.symbol = (uintptr_t)(const void *)&owner_secret;
    if (iso_vals_write(argv[1], &v) != 0) {
        perror("owner: writing owner.vals");
        return 1;
    }
    if (iso_wait_file(argv[1], "intruders.done", 120) != 0) {
        printf("owner: no intruders.done after 120 s\n");
        return 1;
    }

    err = compare(buf, s, &why);
    report("buffer unchanged", err, why);
    err = cudaMemcpyFromSymbol(got, owner_secret, sizeof(got));
    report("variable unchanged", err, err == cudaSuccess && memcmp(got, secret, sizeof(got))
                                          ? "owner_secret differs" : nullptr);
    err = cudaStreamQuery(s);
    if (err == cudaSuccess)
        err = cudaStreamSynchronize(s);
    report("stream works", err, nullptr);
    err = cudaEventRecord(ev, s);
    if (err == cudaSuccess)
        err = cudaEventSynchronize(ev);
    if (err == cudaSuccess)
        err = cudaEventQuery(ev);
    report("event works", err, nullptr);
    err = fill(buf, 0x3c, 256, s);
    memset(expected, 0x3c, 256);
    if (err == cudaSuccess)
        err = compare(buf, s, &why);
    report("kernel works", err, why);
    report("kernel attributes", cudaFuncGetAttributes(&fa, (const void *)fake_fill), nullptr);
    report("event destroyed", cudaEventDestroy(ev), nullptr);
    report("stream destroyed", cudaStreamDestroy(s), nullptr);
    report("buffer still its own to free", cudaFree(buf), nullptr);
    return failures ? 1 : 0;
}
