// SPDX-License-Identifier: Apache-2.0
//
// kernel_args: the ways a program hands data to kernels, each checked on
// the host. A struct passed by value (with padding inside), a template
// kernel instantiated for int and double, a kernel with twelve parameters
// of mixed sizes and alignments, a kernel with none, dynamic shared memory
// from the launch configuration, a __constant__ array written with
// cudaMemcpyToSymbol (whole and at an offset) and read back, and a
// statically initialized __device__ variable read with cudaMemcpyFromSymbol
// and through cudaGetSymbolAddress + cudaMemcpy.
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
#define CHECK_LAUNCH(what)                     \
    do {                                       \
        check(cudaGetLastError(), what);       \
        CHECK(cudaDeviceSynchronize());        \
    } while (0)

static int failures;

static void expect(bool ok, const char *what)
{
    printf("%s: %s\n", what, ok ? "ok" : "WRONG");
    failures += !ok;
}

// --- struct by value ------------------------------------------------------
struct params {
    int n;
    char tag;      // followed by padding up to the double
    double offset;
    float scale;
    short shift;
};

__global__ void apply_params(params p, const double *in, double *out)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.n)
        out[i] = in[i] * p.scale + p.offset + p.tag + p.shift;
}

// --- template kernel ------------------------------------------------------
template <typename T> __global__ void axpy(T a, const T *x, T *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = a * x[i] + y[i];
}

template <typename T> static bool run_axpy(T a, int n, const char *name)
{
    T *x = new T[n], *y = new T[n];
    for (int i = 0; i < n; i++) {
        x[i] = static_cast<T>(i);
        y[i] = static_cast<T>(n - i);
    }
    T *d_x, *d_y;
    CHECK(cudaMalloc(&d_x, n * sizeof(T)));
    CHECK(cudaMalloc(&d_y, n * sizeof(T)));
    CHECK(cudaMemcpy(d_x, x, n * sizeof(T), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(d_y, y, n * sizeof(T), cudaMemcpyHostToDevice));
    axpy<T><<<(n + 127) / 128, 128>>>(a, d_x, d_y, n);
    CHECK_LAUNCH(name);
    CHECK(cudaMemcpy(y, d_y, n * sizeof(T), cudaMemcpyDeviceToHost));
    bool ok = true;
    for (int i = 0; i < n; i++)
        ok &= y[i] == a * static_cast<T>(i) + static_cast<T>(n - i);
    printf("%s: y[0] = %g, y[%d] = %g\n", name, (double)y[0], n - 1, (double)y[n - 1]);
    CHECK(cudaFree(d_x));
    CHECK(cudaFree(d_y));
    delete[] x;
    delete[] y;
    return ok;
}

// --- many parameters of mixed types ---------------------------------------
#define NMANY 12
__global__ void many_params(char c, short s, int i, long long ll, float f, double d,
                            unsigned char uc, unsigned short us, bool b, const int *p,
                            unsigned u, double *out)
{
    if (threadIdx.x != 0 || blockIdx.x != 0)
        return;
    out[0] = c;
    out[1] = s;
    out[2] = i;
    out[3] = (double)ll;
    out[4] = f;
    out[5] = d;
    out[6] = uc;
    out[7] = us;
    out[8] = b ? 1.0 : 0.0;
    out[9] = p[0] + p[1];
    out[10] = u;
    out[11] = c + s + i + uc + us + (b ? 1 : 0);
}

// --- no parameters, a statically initialized __device__ variable -----------
__device__ int dev_counter = 1000;

__global__ void bump()
{
    atomicAdd(&dev_counter, 1);
}

// --- __constant__ memory --------------------------------------------------
#define NCOEF 8
__constant__ int coeffs[NCOEF];

// Horner evaluation of the polynomial in coeffs at x = i - n/2, reduced
// modulo a prime at every step so nothing overflows.
__global__ void poly(int *out, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    long long x = i - n / 2, acc = 0;
    for (int k = NCOEF - 1; k >= 0; k--)
        acc = (acc * x + coeffs[k]) % 1000003;
    out[i] = (int)acc;
}

static int poly_host(const int *c, int i, int n)
{
    long long x = i - n / 2, acc = 0;
    for (int k = NCOEF - 1; k >= 0; k--)
        acc = (acc * x + c[k]) % 1000003;
    return (int)acc;
}

// --- dynamic shared memory ------------------------------------------------
__global__ void block_sum(const int *in, int *out, int n)
{
    extern __shared__ int partial[];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    partial[threadIdx.x] = i < n ? in[i] : 0;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride)
            partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        out[blockIdx.x] = partial[0];
}

int main()
{
    printf("kernel_args: start\n");

    // Struct by value.
    {
        const int n = 4096;
        params p = {n, 3, 0.5, 2.0f, -7};
        double *in = new double[n], *out = new double[n];
        for (int i = 0; i < n; i++)
            in[i] = i * 0.25;
        double *d_in, *d_out;
        CHECK(cudaMalloc(&d_in, n * sizeof(double)));
        CHECK(cudaMalloc(&d_out, n * sizeof(double)));
        CHECK(cudaMemcpy(d_in, in, n * sizeof(double), cudaMemcpyHostToDevice));
        apply_params<<<(n + 255) / 256, 256>>>(p, d_in, d_out);
        CHECK_LAUNCH("apply_params<<<...>>>(struct params)");
        CHECK(cudaMemcpy(out, d_out, n * sizeof(double), cudaMemcpyDeviceToHost));
        bool ok = true;
        for (int i = 0; i < n; i++)
            ok &= out[i] == in[i] * p.scale + p.offset + p.tag + p.shift;
        printf("struct by value (sizeof %zu): out[1] = %.2f, out[%d] = %.2f\n", sizeof(params),
               out[1], n - 1, out[n - 1]);
        expect(ok, "struct by value");
        CHECK(cudaFree(d_in));
        CHECK(cudaFree(d_out));
        delete[] in;
        delete[] out;
    }

    // Template instantiations.
    expect(run_axpy<int>(3, 1000, "axpy<int>"), "template int");
    expect(run_axpy<double>(0.5, 1000, "axpy<double>"), "template double");

    // Twelve parameters.
    {
        const int h_pair[2] = {40, 2};
        int *d_pair;
        double *d_out, out[NMANY];
        CHECK(cudaMalloc(&d_pair, sizeof(h_pair)));
        CHECK(cudaMalloc(&d_out, sizeof(out)));
        CHECK(cudaMemcpy(d_pair, h_pair, sizeof(h_pair), cudaMemcpyHostToDevice));
        CHECK(cudaMemset(d_out, 0, sizeof(out)));
        many_params<<<1, 32>>>('A', (short)-1234, 567890, 1LL << 40, 1.5f, -2.25, 200,
                               60000, true, d_pair, 4000000000u, d_out);
        CHECK_LAUNCH("many_params<<<1, 32>>>");
        CHECK(cudaMemcpy(out, d_out, sizeof(out), cudaMemcpyDeviceToHost));
        const double want[NMANY] = {65,  -1234, 567890, 1099511627776.0, 1.5, -2.25, 200,
                                    60000, 1,    42,     4000000000.0,
                                    65 - 1234 + 567890 + 200 + 60000 + 1};
        bool ok = true;
        printf("many_params:");
        for (int k = 0; k < NMANY; k++) {
            printf(" %.2f", out[k]);
            ok &= out[k] == want[k];
        }
        printf("\n");
        expect(ok, "twelve mixed parameters");
        CHECK(cudaFree(d_pair));
        CHECK(cudaFree(d_out));
    }

    // __device__ variable: initial value, a parameterless kernel, read back
    // both ways, then written through its address.
    {
        int before = 0, after_symbol = 0, after_address = 0;
        CHECK(cudaMemcpyFromSymbol(&before, dev_counter, sizeof(int)));
        bump<<<4, 256>>>();
        CHECK_LAUNCH("bump<<<4, 256>>>");
        CHECK(cudaMemcpyFromSymbol(&after_symbol, dev_counter, sizeof(int)));
        int *addr = nullptr;
        size_t size = 0;
        CHECK(cudaGetSymbolAddress(reinterpret_cast<void **>(&addr), dev_counter));
        CHECK(cudaGetSymbolSize(&size, dev_counter));
        CHECK(cudaMemcpy(&after_address, addr, sizeof(int), cudaMemcpyDeviceToHost));
        printf("dev_counter: initial %d, after bump %d (cudaMemcpyFromSymbol), %d "
               "(cudaGetSymbolAddress), size %zu\n",
               before, after_symbol, after_address, size);
        expect(before == 1000 && after_symbol == 2024 && after_address == 2024 &&
                   size == sizeof(int),
               "__device__ variable");
        const int reset = 7;
        int readback = 0;
        CHECK(cudaMemcpy(addr, &reset, sizeof(int), cudaMemcpyHostToDevice));
        CHECK(cudaMemcpyFromSymbol(&readback, dev_counter, sizeof(int)));
        printf("dev_counter: after cudaMemcpy to its address %d\n", readback);
        expect(readback == reset, "__device__ variable written through its address");
    }

    // __constant__ array: whole, then the upper half at an offset.
    {
        const int n = 2048;
        int c[NCOEF] = {5, -3, 2, 0, 1, 0, 0, 0};
        int *d_out, *out = new int[n];
        CHECK(cudaMalloc(&d_out, n * sizeof(int)));
        CHECK(cudaMemcpyToSymbol(coeffs, c, sizeof(c)));
        poly<<<(n + 255) / 256, 256>>>(d_out, n);
        CHECK_LAUNCH("poly<<<...>>> (first coefficients)");
        CHECK(cudaMemcpy(out, d_out, n * sizeof(int), cudaMemcpyDeviceToHost));
        bool ok = true;
        for (int i = 0; i < n; i++)
            ok &= out[i] == poly_host(c, i, n);
        printf("poly: out[0] = %d, out[%d] = %d\n", out[0], n - 1, out[n - 1]);

        const int upper[4] = {0, -1, 0, 1};
        for (int k = 0; k < 4; k++)
            c[4 + k] = upper[k];
        CHECK(cudaMemcpyToSymbol(coeffs, upper, sizeof(upper), 4 * sizeof(int)));
        poly<<<(n + 255) / 256, 256>>>(d_out, n);
        CHECK_LAUNCH("poly<<<...>>> (after offset write)");
        CHECK(cudaMemcpy(out, d_out, n * sizeof(int), cudaMemcpyDeviceToHost));
        for (int i = 0; i < n; i++)
            ok &= out[i] == poly_host(c, i, n);
        printf("poly: out[0] = %d, out[%d] = %d\n", out[0], n - 1, out[n - 1]);

        int back[NCOEF];
        CHECK(cudaMemcpyFromSymbol(back, coeffs, sizeof(back)));
        for (int k = 0; k < NCOEF; k++)
            ok &= back[k] == c[k];
        expect(ok, "__constant__ array");
        CHECK(cudaFree(d_out));
        delete[] out;
    }

    // Dynamic shared memory.
    {
        const int n = 100000, threads = 256, blocks = (n + threads - 1) / threads;
        int *in = new int[n], *sums = new int[blocks];
        for (int i = 0; i < n; i++)
            in[i] = i % 100;
        int *d_in, *d_sums;
        CHECK(cudaMalloc(&d_in, n * sizeof(int)));
        CHECK(cudaMalloc(&d_sums, blocks * sizeof(int)));
        CHECK(cudaMemcpy(d_in, in, n * sizeof(int), cudaMemcpyHostToDevice));
        block_sum<<<blocks, threads, threads * sizeof(int)>>>(d_in, d_sums, n);
        CHECK_LAUNCH("block_sum<<<blocks, threads, shared>>>");
        CHECK(cudaMemcpy(sums, d_sums, blocks * sizeof(int), cudaMemcpyDeviceToHost));
        long long total = 0, want = 0;
        for (int b = 0; b < blocks; b++)
            total += sums[b];
        for (int i = 0; i < n; i++)
            want += in[i];
        printf("block_sum: %d blocks, total %lld\n", blocks, total);
        expect(total == want, "dynamic shared memory");
        CHECK(cudaFree(d_in));
        CHECK(cudaFree(d_sums));
        delete[] in;
        delete[] sums;
    }

    if (failures) {
        printf("FAILED: %d check(s) wrong\n", failures);
        return 2;
    }
    printf("kernel_args: PASSED\n");
    return 0;
}
