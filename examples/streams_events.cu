// SPDX-License-Identifier: Apache-2.0
//
// streams_events: the usual overlap pattern. Pinned host buffers
// (cudaMallocHost) are split over four streams; each stream copies its chunk
// in, runs a kernel and copies it back, all asynchronously. Events mark the
// start, each stream's completion and the end (stream 0 waits on the other
// streams' events), and the program exercises every way to wait: stream and
// event queries, cudaEventSynchronize, cudaStreamSynchronize. The elapsed time
// is checked to be non-negative but never printed, so stdout stays
// deterministic.
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

#define NSTREAMS 4

__global__ void scale_add(const float *in, float *out, int n, float scale, float add)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = in[i] * scale + add;
}

static float expected(int i, int s)
{
    return static_cast<float>(i % 4096) * 2.0f + static_cast<float>(s + 1);
}

int main()
{
    const int chunk = 1 << 18;
    const int n = NSTREAMS * chunk;
    const size_t bytes = (size_t)n * sizeof(float);
    const size_t chunk_bytes = (size_t)chunk * sizeof(float);
    printf("streams_events: %d streams, %d floats each\n", NSTREAMS, chunk);

    float *h_in, *h_out, *d_in, *d_out;
    CHECK(cudaMallocHost(&h_in, bytes));
    CHECK(cudaMallocHost(&h_out, bytes));
    CHECK(cudaMalloc(&d_in, bytes));
    CHECK(cudaMalloc(&d_out, bytes));
    for (int i = 0; i < n; i++) {
        h_in[i] = static_cast<float>(i % 4096);
        h_out[i] = -1.0f;
    }

    cudaStream_t streams[NSTREAMS];
    cudaEvent_t done[NSTREAMS];
    cudaEvent_t start, stop;
    for (int s = 0; s < NSTREAMS; s++) {
        CHECK(cudaStreamCreate(&streams[s]));
        CHECK(cudaEventCreateWithFlags(&done[s], cudaEventDisableTiming));
    }
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));

    CHECK(cudaEventRecord(start, streams[0]));
    for (int s = 0; s < NSTREAMS; s++) {
        size_t off = (size_t)s * chunk;
        CHECK(cudaMemcpyAsync(d_in + off, h_in + off, chunk_bytes, cudaMemcpyHostToDevice,
                              streams[s]));
        scale_add<<<(chunk + 255) / 256, 256, 0, streams[s]>>>(d_in + off, d_out + off, chunk,
                                                               2.0f, static_cast<float>(s + 1));
        check(cudaGetLastError(), "scale_add<<<..., streams[s]>>>");
        CHECK(cudaMemcpyAsync(h_out + off, d_out + off, chunk_bytes, cudaMemcpyDeviceToHost,
                              streams[s]));
        CHECK(cudaEventRecord(done[s], streams[s]));
    }
    for (int s = 1; s < NSTREAMS; s++)
        CHECK(cudaStreamWaitEvent(streams[0], done[s], 0));
    CHECK(cudaEventRecord(stop, streams[0]));

    // The work may or may not have finished yet: both answers are correct.
    cudaError_t q = cudaStreamQuery(streams[NSTREAMS - 1]);
    if (q != cudaErrorNotReady)
        check(q, "cudaStreamQuery(streams[3]) before synchronizing");
    printf("cudaStreamQuery before sync: cudaSuccess or cudaErrorNotReady\n");

    for (int s = 0; s < NSTREAMS; s++)
        CHECK(cudaEventSynchronize(done[s]));
    for (int s = 0; s < NSTREAMS; s++)
        CHECK(cudaStreamSynchronize(streams[s]));
    CHECK(cudaEventSynchronize(stop));
    for (int s = 0; s < NSTREAMS; s++) {
        CHECK(cudaStreamQuery(streams[s]));
        CHECK(cudaEventQuery(done[s]));
    }
    CHECK(cudaEventQuery(stop));
    printf("after sync: all streams and events report cudaSuccess\n");

    float ms = -1.0f;
    CHECK(cudaEventElapsedTime(&ms, start, stop));
    printf("cudaEventElapsedTime >= 0: %s\n", ms >= 0.0f ? "yes" : "no");

    int wrong = 0, first_wrong = -1;
    for (int s = 0; s < NSTREAMS; s++) {
        size_t off = (size_t)s * chunk;
        printf("stream %d: out[%zu] = %.1f, out[%zu] = %.1f\n", s, off, h_out[off],
               off + chunk - 1, h_out[off + chunk - 1]);
        for (int i = 0; i < chunk; i++) {
            if (h_out[off + i] != expected((int)off + i, s)) {
                if (first_wrong < 0)
                    first_wrong = (int)off + i;
                wrong++;
            }
        }
    }

    for (int s = 0; s < NSTREAMS; s++) {
        CHECK(cudaEventDestroy(done[s]));
        CHECK(cudaStreamDestroy(streams[s]));
    }
    CHECK(cudaEventDestroy(start));
    CHECK(cudaEventDestroy(stop));
    CHECK(cudaFree(d_in));
    CHECK(cudaFree(d_out));

    int status = 0;
    if (wrong) {
        printf("FAILED: %d of %d elements wrong, first out[%d] = %.1f, expected %.1f\n", wrong,
               n, first_wrong, h_out[first_wrong], expected(first_wrong, first_wrong / chunk));
        status = 2;
    } else if (!(ms >= 0.0f)) {
        printf("FAILED: negative elapsed time\n");
        status = 2;
    }
    CHECK(cudaFreeHost(h_in));
    CHECK(cudaFreeHost(h_out));
    if (status)
        return status;
    printf("streams_events: PASSED\n");
    return 0;
}
