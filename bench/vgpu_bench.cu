// SPDX-License-Identifier: Apache-2.0
//
// The fast-path benchmark: one program, run natively or through vgpu (any
// transport), printing one line per measure:
//   <measure> <value> <unit>
// Measures: synchronous call round trip (cudaStreamQuery), empty launch plus
// synchronize, async launch throughput, 4 B copies each way, 256 MiB copies
// each way from pageable and from pinned memory, a 1M-element vector add
// with its copies, and a decode-style loop (per step 50 tiny kernels and one
// 4 KB copy back).  Every result that has data is checked.
//   bench/vgpu_bench [--quick]
// vgpu_bench_quick is the same program with --quick as its default (for
// guests, whose programs run without arguments).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static double now_us()
{
    using namespace std::chrono;
    return duration<double, std::micro>(steady_clock::now().time_since_epoch()).count();
}

#define CHECK(call)                                                                 \
    do {                                                                            \
        cudaError_t e_ = (call);                                                    \
        if (e_ != cudaSuccess) {                                                    \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,           \
                    cudaGetErrorString(e_));                                        \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

__global__ void empty() {}

__global__ void add(const float *a, const float *b, float *c, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        c[i] = a[i] + b[i];
}

__global__ void step(float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        x[i] = x[i] * 0.5f + 1.0f;
}

// The median of reps runs of f, in microseconds.
template <class F> static double median_us(int reps, F f)
{
    std::vector<double> t;
    for (int r = 0; r < reps; r++) {
        double t0 = now_us();
        f();
        t.push_back(now_us() - t0);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

int main(int argc, char **argv)
{
#ifdef VGPU_BENCH_QUICK
    bool quick = true;
#else
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
#endif
    int calls = quick ? 200 : 5000, launches = quick ? 1000 : 20000, reps = quick ? 2 : 5;
    size_t big = (quick ? 16u : 256u) << 20;
    const int n = 1 << 20;
    char *dev, *pinned;
    std::vector<char> pageable(big);
    float *da, *db, *dc, *dx;
    double t0, us;

    CHECK(cudaMalloc(&dev, big));
    CHECK(cudaMallocHost(&pinned, big));
    memset(pageable.data(), 7, big);
    memset(pinned, 7, big);
    // warm up: module load, first copies, first launch
    CHECK(cudaStreamQuery(0));
    CHECK(cudaMemcpy(dev, pageable.data(), 4, cudaMemcpyHostToDevice));
    empty<<<1, 1>>>();
    CHECK(cudaDeviceSynchronize());
    // one large copy each way first: whatever a first one sets up (vgpu's
    // staging region, the driver's buffers) is not what is measured
    CHECK(cudaMemcpy(dev, pageable.data(), big, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(pageable.data(), dev, big, cudaMemcpyDeviceToHost));

    t0 = now_us();
    for (int i = 0; i < calls; i++)
        CHECK(cudaStreamQuery(0));
    printf("sync_call %.2f us\n", (now_us() - t0) / calls);

    t0 = now_us();
    for (int i = 0; i < calls; i++) {
        empty<<<1, 1>>>();
        CHECK(cudaStreamSynchronize(0));
    }
    printf("launch_sync %.2f us\n", (now_us() - t0) / calls);

    t0 = now_us();
    for (int i = 0; i < launches; i++)
        empty<<<1, 1>>>();
    CHECK(cudaDeviceSynchronize());
    printf("async_launch %.0f launches/s\n", launches / ((now_us() - t0) / 1e6));

    t0 = now_us();
    for (int i = 0; i < calls; i++)
        CHECK(cudaMemcpy(dev, pageable.data(), 4, cudaMemcpyHostToDevice));
    printf("copy_4B_h2d %.2f us\n", (now_us() - t0) / calls);
    t0 = now_us();
    for (int i = 0; i < calls; i++)
        CHECK(cudaMemcpy(pageable.data(), dev, 4, cudaMemcpyDeviceToHost));
    printf("copy_4B_d2h %.2f us\n", (now_us() - t0) / calls);

    us = median_us(reps, [&] { CHECK(cudaMemcpy(dev, pageable.data(), big, cudaMemcpyHostToDevice)); });
    printf("pageable_h2d %.0f MB/s\n", big / us);
    memset(pageable.data(), 0, big);
    us = median_us(reps, [&] { CHECK(cudaMemcpy(pageable.data(), dev, big, cudaMemcpyDeviceToHost)); });
    printf("pageable_d2h %.0f MB/s\n", big / us);
    if (pageable[0] != 7 || pageable[big - 1] != 7) {
        fprintf(stderr, "pageable copies: wrong data\n");
        return 1;
    }
    us = median_us(reps, [&] { CHECK(cudaMemcpy(dev, pinned, big, cudaMemcpyHostToDevice)); });
    printf("pinned_h2d %.0f MB/s\n", big / us);
    memset(pinned, 0, big);
    us = median_us(reps, [&] { CHECK(cudaMemcpy(pinned, dev, big, cudaMemcpyDeviceToHost)); });
    printf("pinned_d2h %.0f MB/s\n", big / us);
    if (pinned[0] != 7 || pinned[big - 1] != 7) {
        fprintf(stderr, "pinned copies: wrong data\n");
        return 1;
    }

    // 1M-element vector add with its copies
    {
        std::vector<float> a(n), b(n), c(n);
        for (int i = 0; i < n; i++) {
            a[i] = (float)i;
            b[i] = 2.0f * i;
        }
        CHECK(cudaMalloc(&da, n * sizeof(float)));
        CHECK(cudaMalloc(&db, n * sizeof(float)));
        CHECK(cudaMalloc(&dc, n * sizeof(float)));
        us = median_us(reps * 2, [&] {
            CHECK(cudaMemcpy(da, a.data(), n * sizeof(float), cudaMemcpyHostToDevice));
            CHECK(cudaMemcpy(db, b.data(), n * sizeof(float), cudaMemcpyHostToDevice));
            add<<<(n + 255) / 256, 256>>>(da, db, dc, n);
            CHECK(cudaMemcpy(c.data(), dc, n * sizeof(float), cudaMemcpyDeviceToHost));
        });
        for (int i = 0; i < n; i += 4099)
            if (c[i] != 3.0f * i) {
                fprintf(stderr, "vector add: wrong result at %d\n", i);
                return 1;
            }
        printf("vector_add_1M %.1f us\n", us);
    }

    // decode-style loop: 50 tiny kernels and one 4 KB copy back per step
    {
        int steps = quick ? 20 : 200;
        std::vector<float> back(1024);
        CHECK(cudaMalloc(&dx, 1024 * sizeof(float)));
        CHECK(cudaMemset(dx, 0, 1024 * sizeof(float)));
        t0 = now_us();
        for (int s = 0; s < steps; s++) {
            for (int k = 0; k < 50; k++)
                step<<<4, 256>>>(dx, 1024);
            CHECK(cudaMemcpy(back.data(), dx, 1024 * sizeof(float), cudaMemcpyDeviceToHost));
        }
        printf("decode_step %.1f us\n", (now_us() - t0) / steps);
        if (back[0] < 1.9f || back[0] > 2.0f) {
            fprintf(stderr, "decode loop: wrong value %f\n", back[0]);
            return 1;
        }
    }
    CHECK(cudaGetLastError());
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    cudaFree(dx);
    cudaFree(dev);
    cudaFreeHost(pinned);
    return 0;
}
