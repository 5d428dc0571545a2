// SPDX-License-Identifier: Apache-2.0
//
// cuSOLVER: a dense LU factorisation and solve (getrf/getrs, device info
// word and workspace), a Cholesky factorisation and solve (potrf/potrs) of
// a symmetric positive definite matrix, and a symmetric eigenvalue problem
// (syevd), checked by residuals on the host and hashed for the comparison
// with native; and a sparse QR solve through cusolverSp.
#include "lib_common.h"
#include <cusolverDn.h>
#include <cusolverSp.h>
#include <cusparse.h>
#include <vector>

#define CKD(expr) CK(#expr, expr, CUSOLVER_STATUS_SUCCESS)

static const int n = 256;

static double residual(const std::vector<double> &A, const std::vector<double> &x,
                       const std::vector<double> &b)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < n; k++) {
            s += A[i + (size_t)k * n] * x[k];
        }
        worst = fmax(worst, fabs(s - b[i]));
    }
    return worst;
}

static void lu(cusolverDnHandle_t h, const std::vector<double> &A, const std::vector<double> &b)
{
    double *dA, *db, *work;
    int *piv, *info, lwork = 0, hinfo = -1;
    CKR(cudaMalloc(&dA, A.size() * 8));
    CKR(cudaMalloc(&db, n * 8));
    CKR(cudaMalloc(&piv, n * 4));
    CKR(cudaMalloc(&info, 4));
    CKR(cudaMemcpy(dA, A.data(), A.size() * 8, cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(db, b.data(), n * 8, cudaMemcpyHostToDevice));
    CKD(cusolverDnDgetrf_bufferSize(h, n, n, dA, n, &lwork));
    CKR(cudaMalloc(&work, (size_t)lwork * 8));
    CKD(cusolverDnDgetrf(h, n, n, dA, n, work, piv, info));
    CKD(cusolverDnDgetrs(h, CUBLAS_OP_N, n, 1, dA, n, piv, db, n, info));
    std::vector<double> x(n);
    CKR(cudaMemcpy(x.data(), db, n * 8, cudaMemcpyDeviceToHost));
    CKR(cudaMemcpy(&hinfo, info, 4, cudaMemcpyDeviceToHost));
    CK("getrf info", hinfo, 0);
    lib_report("getrf/getrs 256", x.data(), n * 8, residual(A, x, b), 1e-8);
    cudaFree(dA); cudaFree(db); cudaFree(piv); cudaFree(info); cudaFree(work);
}

static void chol_eig(cusolverDnHandle_t h, const std::vector<double> &S, const std::vector<double> &b)
{
    double *dA, *db, *work, *w;
    int *info, lwork = 0, hinfo = -1;
    CKR(cudaMalloc(&dA, S.size() * 8));
    CKR(cudaMalloc(&db, n * 8));
    CKR(cudaMalloc(&w, n * 8));
    CKR(cudaMalloc(&info, 4));
    CKR(cudaMemcpy(dA, S.data(), S.size() * 8, cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(db, b.data(), n * 8, cudaMemcpyHostToDevice));
    CKD(cusolverDnDpotrf_bufferSize(h, CUBLAS_FILL_MODE_LOWER, n, dA, n, &lwork));
    CKR(cudaMalloc(&work, (size_t)lwork * 8));
    CKD(cusolverDnDpotrf(h, CUBLAS_FILL_MODE_LOWER, n, dA, n, work, lwork, info));
    CKD(cusolverDnDpotrs(h, CUBLAS_FILL_MODE_LOWER, n, 1, dA, n, db, n, info));
    std::vector<double> x(n);
    CKR(cudaMemcpy(x.data(), db, n * 8, cudaMemcpyDeviceToHost));
    CKR(cudaMemcpy(&hinfo, info, 4, cudaMemcpyDeviceToHost));
    CK("potrf info", hinfo, 0);
    lib_report("potrf/potrs 256", x.data(), n * 8, residual(S, x, b), 1e-8);
    cudaFree(work);

    CKR(cudaMemcpy(dA, S.data(), S.size() * 8, cudaMemcpyHostToDevice));
    CKD(cusolverDnDsyevd_bufferSize(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER,
                                    n, dA, n, w, &lwork));
    CKR(cudaMalloc(&work, (size_t)lwork * 8));
    CKD(cusolverDnDsyevd(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n, dA, n,
                         w, work, lwork, info));
    std::vector<double> ev(n), V(S.size());
    CKR(cudaMemcpy(ev.data(), w, n * 8, cudaMemcpyDeviceToHost));
    CKR(cudaMemcpy(V.data(), dA, V.size() * 8, cudaMemcpyDeviceToHost));
    // Residual of the largest pair: S v = lambda v.
    double err = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < n; k++) {
            s += S[i + (size_t)k * n] * V[k + (size_t)(n - 1) * n];
        }
        err = fmax(err, fabs(s - ev[n - 1] * V[i + (size_t)(n - 1) * n]));
    }
    lib_report("syevd 256 eigenvalues", ev.data(), n * 8, err, 1e-8);
    cudaFree(dA); cudaFree(db); cudaFree(w); cudaFree(info); cudaFree(work);
}

// cusolverSp is deprecated in favour of cuDSS (not in the toolkit) but ships
// in CUDA 13.0 and programs use it.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void sparse_qr(const std::vector<double> &S, const std::vector<double> &b)
{
    // S is dense but diagonally dominant: keep entries above a threshold.
    std::vector<int> rp(n + 1), ci;
    std::vector<double> v;
    for (int i = 0; i < n; i++) {
        rp[i] = (int)ci.size();
        for (int j = 0; j < n; j++) {
            if (i == j || (abs(i - j) < 3)) {
                ci.push_back(j);
                v.push_back(S[i + (size_t)j * n]);
            }
        }
    }
    rp[n] = (int)ci.size();
    int nnz = rp[n], sing = -2;
    int *drp, *dci;
    double *dv, *db, *dx;
    CKR(cudaMalloc(&drp, (n + 1) * 4));
    CKR(cudaMalloc(&dci, nnz * 4));
    CKR(cudaMalloc(&dv, nnz * 8));
    CKR(cudaMalloc(&db, n * 8));
    CKR(cudaMalloc(&dx, n * 8));
    CKR(cudaMemcpy(drp, rp.data(), (n + 1) * 4, cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(dci, ci.data(), nnz * 4, cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(dv, v.data(), nnz * 8, cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(db, b.data(), n * 8, cudaMemcpyHostToDevice));
    cusolverSpHandle_t sh;
    cusparseMatDescr_t d;
    CKD(cusolverSpCreate(&sh));
    CK("cusparseCreateMatDescr", cusparseCreateMatDescr(&d), CUSPARSE_STATUS_SUCCESS);
    CKD(cusolverSpDcsrlsvqr(sh, n, nnz, d, dv, drp, dci, db, 1e-12, 0, dx, &sing));
    std::vector<double> x(n);
    CKR(cudaMemcpy(x.data(), dx, n * 8, cudaMemcpyDeviceToHost));
    double err = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = rp[i]; k < rp[i + 1]; k++) {
            s += v[k] * x[ci[k]];
        }
        err = fmax(err, fabs(s - b[i]));
    }
    CK("csrlsvqr singularity", sing, -1);
    lib_report("csrlsvqr 256", x.data(), n * 8, err, 1e-8);
    cusparseDestroyMatDescr(d);
    cusolverSpDestroy(sh);
    cudaFree(drp); cudaFree(dci); cudaFree(dv); cudaFree(db); cudaFree(dx);
}

int main(void)
{
    std::vector<double> A((size_t)n * n), S((size_t)n * n), b(n);
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++) {
            A[i + (size_t)j * n] = lib_val((unsigned)(i * n + j), 1) + (i == j ? 2.0 * n : 0.0);
        }
        b[j] = lib_val((unsigned)j, 2);
    }
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++) {
            S[i + (size_t)j * n] = 0.5 * (A[i + (size_t)j * n] + A[j + (size_t)i * n]);
        }
    }
    int major = 0, minor = 0, patch = 0;
    CKD(cusolverGetProperty(MAJOR_VERSION, &major));
    CKD(cusolverGetProperty(MINOR_VERSION, &minor));
    CKD(cusolverGetProperty(PATCH_LEVEL, &patch));
    printf("cusolver version %d.%d.%d\n", major, minor, patch);
    cusolverDnHandle_t h;
    CKD(cusolverDnCreate(&h));
    lu(h, A, b);
    chol_eig(h, S, b);
    CKD(cusolverDnDestroy(h));
    sparse_qr(S, b);
    printf("done\n");
    return 0;
}
