// SPDX-License-Identifier: Apache-2.0
//
// Host callbacks in stream order, through both APIs on one stream:
// cudaLaunchHostFunc, cudaStreamAddCallback, cuLaunchHostFunc,
// cuStreamAddCallback.  Checks that a callback sees the results of the
// kernel and copy before it, that a copy after it sees what it wrote to
// page-locked memory, that callbacks run in order with the stream and
// status they were given, that cuStreamSynchronize returns only after a
// slow callback that was due when it was called, and that a program that
// spins on a flag a callback sets (no CUDA call meanwhile) gets there.
// Runs natively and through vgpu (tests/callbacks/CMakeLists.txt).
//
// With VGPU_TEST_CALLBACK_CUDA=1 a callback also calls CUDA, which CUDA
// forbids: through vgpu that call fails at once (not permitted); natively
// it is undefined, so the GPU run leaves it out.  With
// VGPU_TEST_CALLBACK_DIE=1 the process ends (status 3) inside a callback
// while its main thread waits in cuStreamSynchronize for it
// (tests/callbacks/run_died.sh).
#include <cuda.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unistd.h>

extern "C" __global__ void fake_fill(unsigned char *p, unsigned int value, size_t n)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;

    for (; i < n; i += (size_t)gridDim.x * blockDim.x)
        p[i] = (unsigned char)value;
}

#define CHECK(call)                                                                     \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (e_ != cudaSuccess) {                                                        \
            printf("%s failed: %s\n", #call, cudaGetErrorName(e_));                     \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

#define CU_CHECK(call)                                                                  \
    do {                                                                                \
        CUresult r_ = (call);                                                           \
        if (r_ != CUDA_SUCCESS) {                                                       \
            const char *n_ = nullptr;                                                   \
            cuGetErrorName(r_, &n_);                                                    \
            printf("%s failed: %s\n", #call, n_ ? n_ : "?");                            \
            return 1;                                                                   \
        }                                                                               \
    } while (0)

static const size_t N = 1 << 16;

struct state {
    unsigned char *seen;        // pinned: the kernel's bytes, copied back before the callback
    unsigned char *out;         // pinned: what the callback writes for the copy after it
    int order[8];
    int norder;
    bool seen_ok;
    void *stream_seen[2];
    int status_seen[2];
    int cuda_in_callback;       // the status a CUDA call made from a callback got
};

static void CUDART_CB check_and_write(void *p)
{
    state *s = (state *)p;

    s->seen_ok = true;
    for (size_t i = 0; i < N; i++)
        if (s->seen[i] != 0x21)
            s->seen_ok = false;
    memset(s->out, 0x42, N);
    s->order[s->norder++] = 1;
    if (getenv("VGPU_TEST_CALLBACK_CUDA")) {
        int count = 0;

        s->cuda_in_callback = (int)cudaGetDeviceCount(&count);
    }
}

static void CUDART_CB rt_stream_cb(cudaStream_t stream, cudaError_t status, void *p)
{
    state *s = (state *)p;

    s->stream_seen[0] = stream;
    s->status_seen[0] = status;
    s->order[s->norder++] = 2;
}

static void CUDA_CB cu_host_fn(void *p)
{
    state *s = (state *)p;

    s->order[s->norder++] = 3;
}

static void CUDA_CB cu_stream_cb(CUstream stream, CUresult status, void *p)
{
    state *s = (state *)p;

    s->stream_seen[1] = stream;
    s->status_seen[1] = status;
    s->order[s->norder++] = 4;
}

static int slow_flag;
static int spin_flag;

static void CUDA_CB slow(void *p)
{
    (void)p;
    usleep(200000);
    __atomic_store_n(&slow_flag, 1, __ATOMIC_RELEASE);
}

static void CUDART_CB set_spin_flag(void *p)
{
    (void)p;
    __atomic_store_n(&spin_flag, 1, __ATOMIC_RELEASE);
}

static void CUDA_CB die(void *p)
{
    (void)p;
    fflush(stdout);
    _exit(3);
}

struct bytes_arg {
    unsigned char *p;
    size_t n;
};

// writes after a while, so the copy queued behind it is made long before
static void CUDART_CB write_late(void *p)
{
    bytes_arg *a = (bytes_arg *)p;

    usleep(50000);
    memset(a->p, 0x42, a->n);
}

static double now_s()
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main()
{
    unsigned char *dev = nullptr, *dev2 = nullptr, *back = nullptr;
    cudaStream_t s;
    state st = {};
    cudaError_t e;

    CHECK(cudaMalloc(&dev, N));
    CHECK(cudaMalloc(&dev2, N));
    CHECK(cudaMallocHost(&st.seen, N));
    CHECK(cudaMallocHost(&st.out, N));
    CHECK(cudaMallocHost(&back, N));
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    if (getenv("VGPU_TEST_CALLBACK_DIE")) {
        printf("dying in a callback\n");
        CU_CHECK(cuLaunchHostFunc((CUstream)s, die, nullptr));
        CU_CHECK(cuStreamSynchronize((CUstream)s));
        printf("still alive?\n");
        return 1;
    }

    // kernel -> copy back -> callback checks it and writes -> copy up -> copy back
    fake_fill<<<16, 256, 0, s>>>(dev, 0x21, N);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpyAsync(st.seen, dev, N, cudaMemcpyDeviceToHost, s));
    e = cudaLaunchHostFunc(s, check_and_write, &st);
    if (e == cudaErrorNotSupported) {
        printf("host callbacks: not supported on this connection\n");
        return 0;
    }
    CHECK(e);
    CHECK(cudaMemcpyAsync(dev2, st.out, N, cudaMemcpyHostToDevice, s));
    CHECK(cudaStreamAddCallback(s, rt_stream_cb, &st, 0));
    CU_CHECK(cuLaunchHostFunc((CUstream)s, cu_host_fn, &st));
    CU_CHECK(cuStreamAddCallback((CUstream)s, cu_stream_cb, &st, 0));
    CHECK(cudaMemcpyAsync(back, dev2, N, cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamSynchronize(s));
    printf("callback saw the kernel's bytes: %s\n", st.seen_ok ? "yes" : "no");
    int later_ok = 1;
    for (size_t i = 0; i < N; i++)
        if (back[i] != 0x42)
            later_ok = 0;
    printf("copy after the callback saw its bytes: %s\n", later_ok ? "yes" : "no");
    printf("order:");
    for (int i = 0; i < st.norder; i++)
        printf(" %d", st.order[i]);
    printf("\n");
    printf("stream callbacks got the stream: %s %s, status %d %d\n",
           st.stream_seen[0] == (void *)s ? "yes" : "no", st.stream_seen[1] == (void *)s ? "yes" : "no",
           st.status_seen[0], st.status_seen[1]);
    if (getenv("VGPU_TEST_CALLBACK_CUDA"))
        printf("CUDA call in a callback: %s\n", cudaGetErrorName((cudaError_t)st.cuda_in_callback));

    // cuStreamSynchronize while a slow callback is due
    CU_CHECK(cuLaunchHostFunc((CUstream)s, slow, nullptr));
    CU_CHECK(cuStreamSynchronize((CUstream)s));
    printf("synchronize waited for the slow callback: %s\n",
           __atomic_load_n(&slow_flag, __ATOMIC_ACQUIRE) ? "yes" : "no");

    // a program that spins on a flag, with no CUDA call until it is set
    double until = now_s() + 20;
    CHECK(cudaLaunchHostFunc(s, set_spin_flag, nullptr));
    while (!__atomic_load_n(&spin_flag, __ATOMIC_ACQUIRE) && now_s() < until)
        ;
    printf("spin on a flag: %s\n", __atomic_load_n(&spin_flag, __ATOMIC_ACQUIRE) ? "set" : "timed out");

    // on the legacy default stream too, after a kernel there
    st.norder = 0;
    fake_fill<<<16, 256>>>(dev, 0x21, N);
    CHECK(cudaMemcpyAsync(st.seen, dev, N, cudaMemcpyDeviceToHost, 0));
    CHECK(cudaLaunchHostFunc(0, check_and_write, &st));
    CHECK(cudaDeviceSynchronize());
    printf("default stream: callback ran %d time(s), saw the kernel's bytes: %s\n", st.norder,
           st.seen_ok ? "yes" : "no");

    // memory a callback writes, copied to the device behind it on its stream: page-locked
    // memory is read when the copy runs (the callback's bytes); pageable memory when the
    // copy is made (on the H200, driver 580: the bytes from before the callback)
    for (int locked = 1; locked >= 0; locked--) {
        for (size_t n : { (size_t)4096, N }) {
            unsigned char *src = nullptr, *pb = (unsigned char *)malloc(n);
            bytes_arg ba;

            if (locked)
                CHECK(cudaMallocHost(&src, n));
            else
                src = (unsigned char *)malloc(n);
            ba = { src, n };
            memset(src, 0x11, n);
            memset(pb, 0, n);
            CHECK(cudaLaunchHostFunc(s, write_late, &ba));
            CHECK(cudaMemcpyAsync(dev2, src, n, cudaMemcpyHostToDevice, s));
            CHECK(cudaMemcpyAsync(pb, dev2, n, cudaMemcpyDeviceToHost, s));
            CHECK(cudaStreamSynchronize(s));
            printf("%s %zu bytes a callback wrote, copied behind it: %s\n",
                   locked ? "page-locked" : "pageable", n,
                   pb[0] == 0x42 && pb[n - 1] == 0x42 ? "the callback's"
                   : pb[0] == 0x11 && pb[n - 1] == 0x11 ? "from before it" : "mixed");
            if (locked)
                CHECK(cudaFreeHost(src));
            else
                free(src);
            free(pb);
        }
    }

    CHECK(cudaStreamDestroy(s));
    CHECK(cudaFreeHost(st.seen));
    CHECK(cudaFreeHost(st.out));
    CHECK(cudaFreeHost(back));
    CHECK(cudaFree(dev));
    CHECK(cudaFree(dev2));
    printf("done\n");
    return 0;
}
