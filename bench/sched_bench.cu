// SPDX-License-Identifier: Apache-2.0
//
// The clients of the scheduler benchmark (bench/sched_bench.sh): one program,
// two roles.  It runs unmodified natively or through the shim, so the same
// binary measures the GPU's own time-slicing and vgpu-server's scheduler.
//
//   sched_bench --role busy [--kernel-ms M] [--seconds S] [--depth D] [--start-at NS]
//       Keeps the GPU busy: launches a kernel that runs for about M ms of GPU
//       time (default 3), at most D launches outstanding (default 2), for S
//       seconds (default 10) or until SIGTERM/SIGINT.  Prints
//         busy kernels=N seconds=T kernels_per_s=X
//
//   sched_bench --role probe [--requests R] [--warmup W] [--gap-us G]
//               [--max-seconds X] [--latencies FILE] [--start-at NS]
//       A small inference-like client: each request is a synchronous 4 KiB
//       host-to-device copy, a tiny kernel and a 4 KiB device-to-host copy.
//       After W unmeasured requests (default 100) it times R requests
//       (default 2000; fewer if X seconds pass first), G µs apart (default 0),
//       checks every result and prints
//         probe requests=N p50_us=.. p90_us=.. p99_us=.. mean_us=.. max_us=..
//       FILE gets each measured latency in µs, one per line.
//
// --start-at NS (CLOCK_REALTIME nanoseconds, as `date +%s%N` prints) makes the
// client finish its setup (context, allocations, module load) and then wait
// for that instant, so that clients started together measure the same window.
// Exit status: 0 measured, 1 a CUDA error or a wrong result, 2 usage.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

namespace {

struct options {
    const char *role = nullptr;
    double kernel_ms = 3.0;
    double seconds = 10.0;
    int depth = 2;
    long long start_at_ns = 0;
    int requests = 2000;
    int warmup = 100;
    long gap_us = 0;
    double max_seconds = 0.0;
    const char *latencies = nullptr;
};

constexpr int kProbeWords = 1024;   // 4 KiB each way
constexpr int kBusyThreads = 32;    // one warp per block

volatile sig_atomic_t stop_requested;

void on_stop(int) { stop_requested = 1; }

double mono_s()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int check(cudaError_t e, const char *what)
{
    if (e != cudaSuccess) {
        fprintf(stderr, "sched_bench: %s: %s\n", what, cudaGetErrorString(e));
        return 1;
    }
    return 0;
}

// Sleeps until the CLOCK_REALTIME instant `ns`; says so when it has passed
// already, since the measured windows of the clients then differ.
void wait_until(long long ns, const char *role)
{
    if (ns <= 0)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long late = now.tv_sec * 1000000000LL + now.tv_nsec - ns;
    if (late > 0) {
        fprintf(stderr, "sched_bench %s: setup ended %.1f ms after --start-at\n", role, late / 1e6);
        return;
    }
    struct timespec t = { (time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL) };
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &t, nullptr) == EINTR && !stop_requested) {
    }
}

__device__ __forceinline__ long long globaltimer_ns()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return (long long)t;
}

// Spins until `run_ns` nanoseconds have passed while the block was running.
// A step of kSwitchedOutNs or more between two reads of the timer means the
// block was switched out (the driver time-slicing with another context), and
// does not count: so a kernel is the same amount of GPU time however the GPU
// is shared, and kernels per second measure each client's share of it.
// %globaltimer rather than clock64(): the SM clock follows the load (a 1 ms
// clock64() kernel took 3 ms on an H200 whose clocks had not ramped up),
// while the global timer is wall time on every SM.  `wall_cap_ns` bounds the
// kernel should the timer step more coarsely than kSwitchedOutNs, or the block
// be switched out nearly all the time.
constexpr long long kSwitchedOutNs = 20000;

__global__ void spin_kernel(long long run_ns, long long wall_cap_ns, long long *out)
{
    long long begin = globaltimer_ns(), last = begin, ran = 0;
    while (ran < run_ns && last - begin < wall_cap_ns) {
        long long now = globaltimer_ns();
        if (now - last < kSwitchedOutNs)
            ran += now - last;
        last = now;
    }
    if (threadIdx.x == 0)
        out[blockIdx.x] = ran;
}

__global__ void probe_kernel(const unsigned *in, unsigned *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        out[i] = in[i] * 3u + 1u;
}

// One block of one warp per SM, each spinning for the whole kernel: the
// kernel holds every SM, as a large kernel of a real workload would.
int run_busy(const options &o)
{
    int dev = 0, sms = 0;
    long long *out = nullptr;
    std::vector<cudaEvent_t> ring(o.depth);

    if (check(cudaGetDevice(&dev), "cudaGetDevice") ||
        check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev),
              "cudaDeviceGetAttribute(MultiProcessorCount)"))
        return 1;
    if (sms <= 0) {
        fprintf(stderr, "sched_bench busy: device reports %d SMs\n", sms);
        return 1;
    }
    long long run_ns = (long long)(o.kernel_ms * 1e6);
    long long cap_ns = 50 * run_ns;
    if (check(cudaMalloc(&out, sms * sizeof(*out)), "cudaMalloc"))
        return 1;
    for (auto &e : ring)
        if (check(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreateWithFlags"))
            return 1;

    // one kernel before the start: loads the module, and its time (alone,
    // unless another client is already running) says what a kernel costs
    cudaEvent_t t0, t1;
    float first_ms = 0;
    if (check(cudaEventCreate(&t0), "cudaEventCreate") || check(cudaEventCreate(&t1), "cudaEventCreate"))
        return 1;
    cudaEventRecord(t0, 0);
    spin_kernel<<<sms, kBusyThreads>>>(run_ns, cap_ns, out);
    cudaEventRecord(t1, 0);
    if (check(cudaGetLastError(), "launch") || check(cudaEventSynchronize(t1), "first kernel"))
        return 1;
    cudaEventElapsedTime(&first_ms, t0, t1);
    fprintf(stderr, "sched_bench busy: %d blocks x %d threads, %.3f ms each, queue depth %d, "
            "first kernel %.3f ms\n", sms, kBusyThreads, o.kernel_ms, o.depth, first_ms);

    wait_until(o.start_at_ns, "busy");
    // At most `depth` kernels are outstanding: before launch i, wait for the
    // event recorded after launch i - depth.  So a scheduler can always put
    // another client's work ahead of all but `depth` of this client's kernels.
    long long kernels = 0;
    double start = mono_s(), end = start + o.seconds;
    while (!stop_requested && mono_s() < end) {
        cudaEvent_t &slot = ring[kernels % o.depth];
        if (kernels >= o.depth && check(cudaEventSynchronize(slot), "cudaEventSynchronize"))
            return 1;
        spin_kernel<<<sms, kBusyThreads>>>(run_ns, cap_ns, out);
        if (check(cudaGetLastError(), "launch") || check(cudaEventRecord(slot, 0), "cudaEventRecord"))
            return 1;
        kernels++;
    }
    if (check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"))
        return 1;
    double t = mono_s() - start;
    printf("busy kernels=%lld seconds=%.3f kernels_per_s=%.2f\n", kernels, t, kernels / t);
    // the last kernel's blocks say whether the wall cap cut any of them short
    std::vector<long long> ran(sms);
    if (check(cudaMemcpy(ran.data(), out, sms * sizeof(*out), cudaMemcpyDeviceToHost), "cudaMemcpy"))
        return 1;
    long long least = *std::min_element(ran.begin(), ran.end());
    if (least < run_ns)
        fprintf(stderr, "sched_bench busy: a block of the last kernel ran %.3f ms, cut short "
                "after %.0f ms of wall time\n", least / 1e6, cap_ns / 1e6);
    for (auto &e : ring)
        cudaEventDestroy(e);
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    cudaFree(out);
    return 0;
}

// One request: returns its wall latency in µs, or a negative value after a
// CUDA error or a wrong result (already reported).
double probe_request(unsigned seq, std::vector<unsigned> &in, std::vector<unsigned> &res,
                     unsigned *d_in, unsigned *d_out)
{
    for (int i = 0; i < kProbeWords; i++)
        in[i] = (seq * 2654435761u) ^ (unsigned)i;
    double t0 = mono_s();
    if (check(cudaMemcpy(d_in, in.data(), kProbeWords * sizeof(unsigned), cudaMemcpyHostToDevice),
              "cudaMemcpy H2D"))
        return -1;
    probe_kernel<<<kProbeWords / 256, 256>>>(d_in, d_out, kProbeWords);
    if (check(cudaGetLastError(), "launch") ||
        check(cudaMemcpy(res.data(), d_out, kProbeWords * sizeof(unsigned), cudaMemcpyDeviceToHost),
              "cudaMemcpy D2H"))
        return -1;
    double t1 = mono_s();
    for (int i = 0; i < kProbeWords; i++)
        if (res[i] != in[i] * 3u + 1u) {
            fprintf(stderr, "sched_bench probe: request %u: word %d is %u, expected %u\n",
                    seq, i, res[i], in[i] * 3u + 1u);
            return -1;
        }
    return (t1 - t0) * 1e6;
}

// Nearest-rank percentile of sorted values.
double percentile(const std::vector<double> &v, double p)
{
    size_t rank = (size_t)(p / 100.0 * v.size() + 0.999999);
    rank = std::min(std::max(rank, (size_t)1), v.size());
    return v[rank - 1];
}

int run_probe(const options &o)
{
    std::vector<unsigned> in(kProbeWords), res(kProbeWords);
    std::vector<double> lat;
    unsigned *d_in = nullptr, *d_out = nullptr;
    unsigned seq = 0;
    struct timespec gap = { (time_t)(o.gap_us / 1000000), (o.gap_us % 1000000) * 1000 };

    if (check(cudaMalloc(&d_in, kProbeWords * sizeof(unsigned)), "cudaMalloc") ||
        check(cudaMalloc(&d_out, kProbeWords * sizeof(unsigned)), "cudaMalloc"))
        return 1;
    if (probe_request(seq++, in, res, d_in, d_out) < 0)   // context and module
        return 1;
    wait_until(o.start_at_ns, "probe");
    for (int i = 0; i < o.warmup; i++) {
        if (probe_request(seq++, in, res, d_in, d_out) < 0)
            return 1;
        if (o.gap_us > 0)
            nanosleep(&gap, nullptr);
    }
    lat.reserve(o.requests);
    double start = mono_s();
    for (int i = 0; i < o.requests; i++) {
        if (o.max_seconds > 0 && mono_s() - start >= o.max_seconds) {
            fprintf(stderr, "sched_bench probe: stopped after %d of %d requests (--max-seconds %g)\n",
                    i, o.requests, o.max_seconds);
            break;
        }
        double us = probe_request(seq++, in, res, d_in, d_out);
        if (us < 0)
            return 1;
        lat.push_back(us);
        if (o.gap_us > 0)
            nanosleep(&gap, nullptr);
    }
    if (lat.empty()) {
        fprintf(stderr, "sched_bench probe: no request measured\n");
        return 1;
    }
    if (o.latencies) {
        FILE *f = fopen(o.latencies, "w");
        if (!f) {
            fprintf(stderr, "sched_bench probe: %s: %s\n", o.latencies, strerror(errno));
            return 1;
        }
        for (double us : lat)
            fprintf(f, "%.1f\n", us);
        fclose(f);
    }
    double sum = 0;
    for (double us : lat)
        sum += us;
    std::sort(lat.begin(), lat.end());
    printf("probe requests=%zu p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f max_us=%.1f\n",
           lat.size(), percentile(lat, 50), percentile(lat, 90), percentile(lat, 99),
           sum / lat.size(), lat.back());
    cudaFree(d_in);
    cudaFree(d_out);
    return 0;
}

int usage()
{
    fprintf(stderr,
            "usage: sched_bench --role busy [--kernel-ms M] [--seconds S] [--depth D] [--start-at NS]\n"
            "       sched_bench --role probe [--requests R] [--warmup W] [--gap-us G]\n"
            "                   [--max-seconds X] [--latencies FILE] [--start-at NS]\n");
    return 2;
}

}  // namespace

int main(int argc, char **argv)
{
    options o;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (!v)
            return usage();
        i++;
        if (!strcmp(a, "--role"))
            o.role = v;
        else if (!strcmp(a, "--kernel-ms"))
            o.kernel_ms = atof(v);
        else if (!strcmp(a, "--seconds"))
            o.seconds = atof(v);
        else if (!strcmp(a, "--depth"))
            o.depth = atoi(v);
        else if (!strcmp(a, "--start-at"))
            o.start_at_ns = atoll(v);
        else if (!strcmp(a, "--requests"))
            o.requests = atoi(v);
        else if (!strcmp(a, "--warmup"))
            o.warmup = atoi(v);
        else if (!strcmp(a, "--gap-us"))
            o.gap_us = atol(v);
        else if (!strcmp(a, "--max-seconds"))
            o.max_seconds = atof(v);
        else if (!strcmp(a, "--latencies"))
            o.latencies = v;
        else
            return usage();
    }
    if (!o.role || o.kernel_ms <= 0 || o.seconds <= 0 || o.depth < 1 || o.requests < 1 ||
        o.warmup < 0 || o.gap_us < 0 || o.max_seconds < 0)
        return usage();

    // SA_RESTART: a stop request must not fail a read the shim has under way
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    setvbuf(stdout, nullptr, _IOLBF, 0);

    if (!strcmp(o.role, "busy"))
        return run_busy(o);
    if (!strcmp(o.role, "probe"))
        return run_probe(o);
    return usage();
}
