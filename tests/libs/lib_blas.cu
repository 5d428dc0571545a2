// SPDX-License-Identifier: Apache-2.0
//
// cuBLAS and cuBLASLt as NVIDIA ships them: SGEMM at three sizes, HGEMM
// and a BF16 GEMM through cublasGemmEx, a cuBLASLt matmul with a heuristic
// algorithm and workspace, level-1 calls whose results come back to host
// pointers (dot, nrm2, iamax) and to device pointers, and a strided
// batched GEMM, on a stream of the program's own. Results are hashed (the
// same GPU gives the same bytes) and checked against a host reference.
#include "lib_common.h"
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <vector>

#define CKB(expr) CK(#expr, expr, CUBLAS_STATUS_SUCCESS)

static double ref_err(const std::vector<float> &a, const std::vector<float> &b,
                      const std::vector<float> &c, int n, double alpha)
{
    double worst = 0;
    for (int j = 0; j < n; j += 7) {
        for (int i = 0; i < n; i += 5) {
            double s = 0;
            for (int k = 0; k < n; k++) {
                s += (double)a[i + (size_t)k * n] * b[k + (size_t)j * n];
            }
            worst = fmax(worst, fabs(alpha * s - c[i + (size_t)j * n]));
        }
    }
    return worst;
}

static void sgemm(cublasHandle_t h, int n)
{
    size_t nn = (size_t)n * n;
    std::vector<float> a(nn), b(nn), c(nn);
    for (size_t i = 0; i < nn; i++) {
        a[i] = lib_val((unsigned)i, 1);
        b[i] = lib_val((unsigned)i, 2);
    }
    float *da, *db, *dc;
    CKR(cudaMalloc(&da, nn * 4));
    CKR(cudaMalloc(&db, nn * 4));
    CKR(cudaMalloc(&dc, nn * 4));
    CKB(cublasSetMatrix(n, n, 4, a.data(), n, da, n));
    CKB(cublasSetMatrix(n, n, 4, b.data(), n, db, n));
    const float alpha = 1.0f, beta = 0.0f;
    CKB(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, da, n, db, n,
                    &beta, dc, n));
    CKB(cublasGetMatrix(n, n, 4, dc, n, c.data(), n));
    char what[64];
    snprintf(what, sizeof(what), "sgemm %d", n);
    lib_report(what, c.data(), nn * 4, ref_err(a, b, c, n, 1.0), 1e-3);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
}

template <typename T, cudaDataType_t DT>
static void gemm_ex(cublasHandle_t h, int n, const char *name, double tol)
{
    size_t nn = (size_t)n * n;
    std::vector<T> a(nn), b(nn), c(nn);
    std::vector<float> af(nn), bf(nn), cf(nn);
    for (size_t i = 0; i < nn; i++) {
        af[i] = lib_val((unsigned)i, 3) * 0.25f;
        bf[i] = lib_val((unsigned)i, 4) * 0.25f;
        a[i] = T(af[i]);
        b[i] = T(bf[i]);
    }
    T *da, *db, *dc;
    CKR(cudaMalloc(&da, nn * sizeof(T)));
    CKR(cudaMalloc(&db, nn * sizeof(T)));
    CKR(cudaMalloc(&dc, nn * sizeof(T)));
    CKR(cudaMemcpy(da, a.data(), nn * sizeof(T), cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(db, b.data(), nn * sizeof(T), cudaMemcpyHostToDevice));
    const float alpha = 1.0f, beta = 0.0f;
    CKB(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, da, DT, n,
                     db, DT, n, &beta, dc, DT, n, CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT));
    CKR(cudaMemcpy(c.data(), dc, nn * sizeof(T), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < nn; i++) {
        cf[i] = (float)c[i];
    }
    char what[64];
    snprintf(what, sizeof(what), "%s %d", name, n);
    lib_report(what, c.data(), nn * sizeof(T), ref_err(af, bf, cf, n, 1.0), tol);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
}

static void lt_matmul(cudaStream_t s, int n)
{
    cublasLtHandle_t lt;
    CKB(cublasLtCreate(&lt));
    size_t nn = (size_t)n * n;
    std::vector<float> a(nn), b(nn), c(nn);
    for (size_t i = 0; i < nn; i++) {
        a[i] = lib_val((unsigned)i, 5);
        b[i] = lib_val((unsigned)i, 6);
    }
    float *da, *db, *dc;
    void *ws;
    size_t wsz = 4 << 20;
    CKR(cudaMalloc(&da, nn * 4));
    CKR(cudaMalloc(&db, nn * 4));
    CKR(cudaMalloc(&dc, nn * 4));
    CKR(cudaMalloc(&ws, wsz));
    CKR(cudaMemcpyAsync(da, a.data(), nn * 4, cudaMemcpyHostToDevice, s));
    CKR(cudaMemcpyAsync(db, b.data(), nn * 4, cudaMemcpyHostToDevice, s));
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulPreference_t pref;
    CKB(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CKB(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, n, n, n));
    CKB(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, n, n, n));
    CKB(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, n, n, n));
    CKB(cublasLtMatmulPreferenceCreate(&pref));
    CKB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &wsz, sizeof(wsz)));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    CKB(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &heur, &found));
    CK("heuristic count", found > 0, 1);
    const float alpha = 2.0f, beta = 0.0f;
    CKB(cublasLtMatmul(lt, op, &alpha, da, la, db, lb, &beta, dc, lc, dc, lc,
                       &heur.algo, ws, wsz, s));
    CKR(cudaMemcpyAsync(c.data(), dc, nn * 4, cudaMemcpyDeviceToHost, s));
    CKR(cudaStreamSynchronize(s));
    char what[64];
    snprintf(what, sizeof(what), "cublasLt matmul %d", n);
    lib_report(what, c.data(), nn * 4, ref_err(a, b, c, n, 2.0), 1e-3);
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
    cublasLtDestroy(lt);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    cudaFree(ws);
}

static void level1(cublasHandle_t h)
{
    const int n = 1 << 16;
    std::vector<float> x(n), y(n);
    double dot = 0, nrm = 0;
    int imax = 0;
    for (int i = 0; i < n; i++) {
        x[i] = lib_val(i, 7);
        y[i] = lib_val(i, 8);
        dot += (double)x[i] * y[i];
        nrm += (double)x[i] * x[i];
        if (fabsf(x[i]) > fabsf(x[imax])) {
            imax = i;
        }
    }
    float *dx, *dy, *dres;
    CKR(cudaMalloc(&dx, n * 4));
    CKR(cudaMalloc(&dy, n * 4));
    CKR(cudaMalloc(&dres, 4));
    CKB(cublasSetVector(n, 4, x.data(), 1, dx, 1));
    CKB(cublasSetVector(n, 4, y.data(), 1, dy, 1));
    float r_dot = 0, r_nrm = 0, r_ddot = 0;
    int r_imax = 0;
    CKB(cublasSdot(h, n, dx, 1, dy, 1, &r_dot));
    CKB(cublasSnrm2(h, n, dx, 1, &r_nrm));
    CKB(cublasIsamax(h, n, dx, 1, &r_imax));
    CKB(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE));
    CKB(cublasSdot(h, n, dx, 1, dy, 1, dres));
    CKB(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
    CKR(cudaMemcpy(&r_ddot, dres, 4, cudaMemcpyDeviceToHost));
    const float a = 0.5f;
    CKB(cublasSaxpy(h, n, &a, dx, 1, dy, 1));
    CKB(cublasGetVector(n, 4, dy, 1, y.data(), 1));
    // fp32 sums of 65536 terms in the library's order: relative errors.
    double err = fmax(fabs(r_dot - dot), fabs(r_ddot - dot)) / fmax(1.0, fabs(dot));
    err = fmax(err, fabs(r_nrm - sqrt(nrm)) / sqrt(nrm));
    err = fmax(err, (double)abs(r_imax - 1 - imax));
    float v[4] = { r_dot, r_nrm, r_ddot, (float)r_imax };
    lib_report("dot nrm2 iamax", v, sizeof(v), err, 1e-5);
    lib_report("axpy result", y.data(), (size_t)n * 4, 0, 0);
    cudaFree(dx);
    cudaFree(dy);
    cudaFree(dres);
}

static void batched(cublasHandle_t h)
{
    const int n = 32, batch = 64;
    size_t nn = (size_t)n * n * batch;
    std::vector<float> a(nn), c(nn);
    for (size_t i = 0; i < nn; i++) {
        a[i] = lib_val((unsigned)i, 9);
    }
    float *da, *dc;
    CKR(cudaMalloc(&da, nn * 4));
    CKR(cudaMalloc(&dc, nn * 4));
    CKR(cudaMemcpy(da, a.data(), nn * 4, cudaMemcpyHostToDevice));
    const float alpha = 1.0f, beta = 0.0f;
    CKB(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_T, n, n, n, &alpha,
                                  da, n, (long long)n * n, da, n, (long long)n * n,
                                  &beta, dc, n, (long long)n * n, batch));
    CKR(cudaMemcpy(c.data(), dc, nn * 4, cudaMemcpyDeviceToHost));
    double err = 0;
    for (int bt = 0; bt < batch; bt += 9) {
        const float *A = &a[(size_t)bt * n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int k = 0; k < n; k++) {
                    s += (double)A[i + k * n] * A[j + k * n];
                }
                err = fmax(err, fabs(s - c[(size_t)bt * n * n + i + j * n]));
            }
        }
    }
    lib_report("sgemm strided batched", c.data(), nn * 4, err, 1e-3);
    cudaFree(da);
    cudaFree(dc);
}

int main(void)
{
    cublasHandle_t h;
    cudaStream_t s;
    CKB(cublasCreate(&h));
    CKR(cudaStreamCreate(&s));
    CKB(cublasSetStream(h, s));
    int ver = 0;
    CKB(cublasGetVersion(h, &ver));
    printf("cublas version %d\n", ver);
    for (int n : { 64, 256, 1024 }) {
        sgemm(h, n);
    }
    gemm_ex<__half, CUDA_R_16F>(h, 512, "hgemm", 0.25);
    gemm_ex<__nv_bfloat16, CUDA_R_16BF>(h, 512, "bf16 gemm", 1.0);
    lt_matmul(s, 256);
    level1(h);
    batched(h);
    CKB(cublasDestroy(h));
    CKR(cudaStreamDestroy(s));
    printf("done\n");
    return 0;
}
