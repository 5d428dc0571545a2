// SPDX-License-Identifier: Apache-2.0
//
// cuFFT: a batch of 1D complex transforms forward and back, a 2D
// real-to-complex transform, and a plan made with cufftPlanMany executed on
// a stream with a work area the program supplies. Hashes of the results
// (same GPU, same bytes) and errors against a host DFT of a few outputs.
#include "lib_common.h"
#include <cufft.h>
#include <vector>

#define CKF(expr) CK(#expr, expr, CUFFT_SUCCESS)

static double dft_err(const std::vector<cufftComplex> &in,
                      const std::vector<cufftComplex> &out, int n, int batch)
{
    double worst = 0;
    for (int b = 0; b < batch; b += 5) {
        for (int k = 0; k < n; k += 37) {
            double re = 0, im = 0;
            for (int t = 0; t < n; t++) {
                double ang = -2 * M_PI * (double)k * t / n;
                const cufftComplex &x = in[(size_t)b * n + t];
                re += x.x * cos(ang) - x.y * sin(ang);
                im += x.x * sin(ang) + x.y * cos(ang);
            }
            const cufftComplex &y = out[(size_t)b * n + k];
            worst = fmax(worst, fmax(fabs(re - y.x), fabs(im - y.y)));
        }
    }
    return worst;
}

int main(void)
{
    const int n = 1024, batch = 32;
    size_t total = (size_t)n * batch;
    std::vector<cufftComplex> in(total), out(total), back(total);
    for (size_t i = 0; i < total; i++) {
        in[i].x = lib_val((unsigned)i, 1);
        in[i].y = lib_val((unsigned)i, 2);
    }
    int ver = 0;
    CKF(cufftGetVersion(&ver));
    printf("cufft version %d\n", ver);
    cufftComplex *d;
    CKR(cudaMalloc(&d, total * sizeof(cufftComplex)));
    CKR(cudaMemcpy(d, in.data(), total * sizeof(cufftComplex), cudaMemcpyHostToDevice));
    cufftHandle p;
    CKF(cufftPlan1d(&p, n, CUFFT_C2C, batch));
    CKF(cufftExecC2C(p, d, d, CUFFT_FORWARD));
    CKR(cudaMemcpy(out.data(), d, total * sizeof(cufftComplex), cudaMemcpyDeviceToHost));
    lib_report("c2c forward 1024 x 32", out.data(), total * sizeof(cufftComplex),
               dft_err(in, out, n, batch), 1e-2);
    CKF(cufftExecC2C(p, d, d, CUFFT_INVERSE));
    CKR(cudaMemcpy(back.data(), d, total * sizeof(cufftComplex), cudaMemcpyDeviceToHost));
    double err = 0;
    for (size_t i = 0; i < total; i++) {
        err = fmax(err, fabs(back[i].x / n - in[i].x) + fabs(back[i].y / n - in[i].y));
    }
    lib_report("c2c round trip", back.data(), total * sizeof(cufftComplex), err, 1e-4);
    CKF(cufftDestroy(p));

    const int nx = 256, ny = 128;
    std::vector<float> r((size_t)nx * ny);
    std::vector<cufftComplex> rc((size_t)nx * (ny / 2 + 1));
    for (size_t i = 0; i < r.size(); i++) {
        r[i] = lib_val((unsigned)i, 3);
    }
    float *dr;
    cufftComplex *drc;
    CKR(cudaMalloc(&dr, r.size() * 4));
    CKR(cudaMalloc(&drc, rc.size() * sizeof(cufftComplex)));
    CKR(cudaMemcpy(dr, r.data(), r.size() * 4, cudaMemcpyHostToDevice));
    CKF(cufftPlan2d(&p, nx, ny, CUFFT_R2C));
    CKF(cufftExecR2C(p, dr, drc));
    CKR(cudaMemcpy(rc.data(), drc, rc.size() * sizeof(cufftComplex), cudaMemcpyDeviceToHost));
    double sum = 0;
    for (float v : r) {
        sum += v;
    }
    lib_report("r2c 2d 256 x 128", rc.data(), rc.size() * sizeof(cufftComplex),
               fabs(rc[0].x - sum) + fabs(rc[0].y), 1e-2);
    CKF(cufftDestroy(p));

    // A plan with the program's own stream and work area.
    cudaStream_t s;
    CKR(cudaStreamCreate(&s));
    int dims[1] = { n };
    size_t ws = 0;
    CKF(cufftCreate(&p));
    CKF(cufftSetAutoAllocation(p, 0));
    CKF(cufftMakePlanMany(p, 1, dims, NULL, 1, n, NULL, 1, n, CUFFT_C2C, batch, &ws));
    void *work = NULL;
    if (ws) {
        CKR(cudaMalloc(&work, ws));
    }
    CKF(cufftSetWorkArea(p, work));
    CKF(cufftSetStream(p, s));
    CKR(cudaMemcpyAsync(d, in.data(), total * sizeof(cufftComplex), cudaMemcpyHostToDevice, s));
    CKF(cufftExecC2C(p, d, d, CUFFT_FORWARD));
    CKR(cudaMemcpyAsync(back.data(), d, total * sizeof(cufftComplex), cudaMemcpyDeviceToHost, s));
    CKR(cudaStreamSynchronize(s));
    lib_report("planmany on a stream", back.data(), total * sizeof(cufftComplex),
               dft_err(in, back, n, batch), 1e-2);
    CKF(cufftDestroy(p));
    cudaFree(work);
    cudaFree(d);
    cudaFree(dr);
    cudaFree(drc);
    cudaStreamDestroy(s);
    printf("done\n");
    return 0;
}
