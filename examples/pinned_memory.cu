// SPDX-License-Identifier: Apache-2.0
//
// pinned_memory: page-locked host memory, both ways of getting it.
// cudaHostAlloc buffers (default and portable) feed synchronous and
// asynchronous copies; a plain malloc'd buffer is pinned in place with
// cudaHostRegister, used for copies in both directions and unpinned again.
// A kernel transforms the data in between, and the host compares every word.
// Mapped (zero-copy) memory is deliberately left out.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <cuda_runtime.h>

static void check(cudaError_t err, const char *what)
{
    if (err != cudaSuccess) {
        printf("%s: %s (%s)\n", what, cudaGetErrorName(err), cudaGetErrorString(err));
        exit(1);
    }
}
#define CHECK(call) check((call), #call)

__global__ void mix(uint32_t *data, int n, uint32_t key)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        data[i] = (data[i] ^ key) + (uint32_t)i;
}

static uint32_t pattern(int i)
{
    return (uint32_t)i * 2654435761u;
}

static uint32_t mixed(uint32_t v, int i, uint32_t key)
{
    return (v ^ key) + (uint32_t)i;
}

// Returns the number of words of out that differ from mix(in, key).
static int compare(const uint32_t *in, const uint32_t *out, int n, uint32_t key, const char *what)
{
    int wrong = 0;
    for (int i = 0; i < n; i++) {
        if (out[i] != mixed(in[i], i, key)) {
            if (!wrong)
                printf("%s: first mismatch at word %d: 0x%08x, expected 0x%08x\n", what, i,
                       out[i], mixed(in[i], i, key));
            wrong++;
        }
    }
    printf("%s: %d words, %d wrong, out[%d] = 0x%08x\n", what, n, wrong, n - 1, out[n - 1]);
    return wrong;
}

int main()
{
    const int n = 1 << 20;
    const size_t bytes = (size_t)n * sizeof(uint32_t);
    const uint32_t key = 0xa5a5a5a5u;
    const int threads = 256, blocks = (n + threads - 1) / threads;
    int wrong = 0;
    printf("pinned_memory: %d words per buffer\n", n);

    uint32_t *d_buf;
    CHECK(cudaMalloc(&d_buf, bytes));

    // cudaHostAlloc: synchronous copy in, asynchronous copy out.
    uint32_t *h_src, *h_dst;
    CHECK(cudaHostAlloc(&h_src, bytes, cudaHostAllocDefault));
    CHECK(cudaHostAlloc(&h_dst, bytes, cudaHostAllocPortable));
    for (int i = 0; i < n; i++) {
        h_src[i] = pattern(i);
        h_dst[i] = 0;
    }
    CHECK(cudaMemcpy(d_buf, h_src, bytes, cudaMemcpyHostToDevice));
    mix<<<blocks, threads>>>(d_buf, n, key);
    check(cudaGetLastError(), "mix<<<blocks, threads>>> (cudaHostAlloc)");
    CHECK(cudaMemcpyAsync(h_dst, d_buf, bytes, cudaMemcpyDeviceToHost, 0));
    CHECK(cudaStreamSynchronize(0));
    wrong += compare(h_src, h_dst, n, key, "cudaHostAlloc");

    // cudaHostRegister on ordinary, page-aligned malloc'd memory.
    uint32_t *plain = static_cast<uint32_t *>(aligned_alloc(4096, bytes));
    uint32_t *orig = static_cast<uint32_t *>(malloc(bytes));
    if (!plain || !orig) {
        printf("pinned_memory: host allocation failed\n");
        return 1;
    }
    for (int i = 0; i < n; i++)
        plain[i] = orig[i] = ~pattern(i);
    CHECK(cudaHostRegister(plain, bytes, cudaHostRegisterDefault));
    CHECK(cudaMemcpy(d_buf, plain, bytes, cudaMemcpyHostToDevice));
    mix<<<blocks, threads>>>(d_buf, n, ~key);
    check(cudaGetLastError(), "mix<<<blocks, threads>>> (cudaHostRegister)");
    CHECK(cudaMemcpy(plain, d_buf, bytes, cudaMemcpyDeviceToHost));
    wrong += compare(orig, plain, n, ~key, "cudaHostRegister");
    CHECK(cudaHostUnregister(plain));

    // The memory is ordinary again: pageable copies still work on it.
    CHECK(cudaMemcpy(plain, h_src, bytes, cudaMemcpyHostToHost));
    CHECK(cudaMemcpy(d_buf, plain, bytes, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(h_dst, d_buf, bytes, cudaMemcpyDeviceToHost));
    int same = 1;
    for (int i = 0; i < n; i++)
        same &= h_dst[i] == h_src[i];
    printf("after cudaHostUnregister: pageable round trip %s\n", same ? "identical" : "differs");
    wrong += !same;

    free(plain);
    free(orig);
    CHECK(cudaFreeHost(h_src));
    CHECK(cudaFreeHost(h_dst));
    CHECK(cudaFree(d_buf));

    if (wrong) {
        printf("FAILED: %d mismatches\n", wrong);
        return 2;
    }
    printf("pinned_memory: PASSED\n");
    return 0;
}
