// SPDX-License-Identifier: Apache-2.0
//
// cuSPARSE's generic API: a banded CSR matrix times a vector (SpMV, the
// deterministic CSR algorithm) with the buffer size query and external
// buffer, and times a dense matrix (SpMM), checked against a host product;
// the results are hashed for the bitwise comparison with native.
#include "lib_common.h"
#include <cusparse.h>
#include <vector>

#define CKS(expr) CK(#expr, expr, CUSPARSE_STATUS_SUCCESS)

int main(void)
{
    const int n = 4096, band = 5, cols = 8;
    std::vector<int> rowptr(n + 1), colind;
    std::vector<float> val, x(n), y(n), B((size_t)n * cols), C((size_t)n * cols);
    for (int i = 0; i < n; i++) {
        rowptr[i] = (int)colind.size();
        for (int j = i - band; j <= i + band; j++) {
            if (j >= 0 && j < n) {
                colind.push_back(j);
                val.push_back(lib_val((unsigned)(i * 31 + j), 1));
            }
        }
        x[i] = lib_val((unsigned)i, 2);
    }
    rowptr[n] = (int)colind.size();
    for (size_t i = 0; i < B.size(); i++) {
        B[i] = lib_val((unsigned)i, 3);
    }
    int nnz = rowptr[n];
    int *drp, *dci;
    float *dv, *dx, *dy, *dB, *dC;
    CKR(cudaMalloc(&drp, (n + 1) * 4));
    CKR(cudaMalloc(&dci, nnz * 4));
    CKR(cudaMalloc(&dv, nnz * 4));
    CKR(cudaMalloc(&dx, n * 4));
    CKR(cudaMalloc(&dy, n * 4));
    CKR(cudaMalloc(&dB, B.size() * 4));
    CKR(cudaMalloc(&dC, C.size() * 4));
    CKR(cudaMemcpy(drp, rowptr.data(), (n + 1) * 4, cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(dci, colind.data(), nnz * 4, cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(dv, val.data(), nnz * 4, cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(dx, x.data(), n * 4, cudaMemcpyHostToDevice));
    CKR(cudaMemcpy(dB, B.data(), B.size() * 4, cudaMemcpyHostToDevice));

    cusparseHandle_t h;
    CKS(cusparseCreate(&h));
    int ver = 0;
    CKS(cusparseGetVersion(h, &ver));
    printf("cusparse version %d\n", ver);
    cusparseSpMatDescr_t A;
    cusparseDnVecDescr_t vx, vy;
    CKS(cusparseCreateCsr(&A, n, n, nnz, drp, dci, dv, CUSPARSE_INDEX_32I,
                          CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F));
    CKS(cusparseCreateDnVec(&vx, n, dx, CUDA_R_32F));
    CKS(cusparseCreateDnVec(&vy, n, dy, CUDA_R_32F));
    const float alpha = 1.0f, beta = 0.0f;
    size_t bsz = 0;
    CKS(cusparseSpMV_bufferSize(h, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, A, vx,
                                &beta, vy, CUDA_R_32F, CUSPARSE_SPMV_CSR_ALG2, &bsz));
    void *buf = NULL;
    CKR(cudaMalloc(&buf, bsz ? bsz : 1));
    CKS(cusparseSpMV(h, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, A, vx, &beta, vy,
                     CUDA_R_32F, CUSPARSE_SPMV_CSR_ALG2, buf));
    CKR(cudaMemcpy(y.data(), dy, n * 4, cudaMemcpyDeviceToHost));
    double err = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = rowptr[i]; k < rowptr[i + 1]; k++) {
            s += (double)val[k] * x[colind[k]];
        }
        err = fmax(err, fabs(s - y[i]));
    }
    lib_report("spmv csr 4096", y.data(), n * 4, err, 1e-4);

    cusparseDnMatDescr_t mB, mC;
    CKS(cusparseCreateDnMat(&mB, n, cols, n, dB, CUDA_R_32F, CUSPARSE_ORDER_COL));
    CKS(cusparseCreateDnMat(&mC, n, cols, n, dC, CUDA_R_32F, CUSPARSE_ORDER_COL));
    size_t bsz2 = 0;
    CKS(cusparseSpMM_bufferSize(h, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, A, mB, &beta,
                                mC, CUDA_R_32F, CUSPARSE_SPMM_CSR_ALG1, &bsz2));
    void *buf2 = NULL;
    CKR(cudaMalloc(&buf2, bsz2 ? bsz2 : 1));
    CKS(cusparseSpMM(h, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE,
                     &alpha, A, mB, &beta, mC, CUDA_R_32F, CUSPARSE_SPMM_CSR_ALG1, buf2));
    CKR(cudaMemcpy(C.data(), dC, C.size() * 4, cudaMemcpyDeviceToHost));
    err = 0;
    for (int c = 0; c < cols; c++) {
        for (int i = 0; i < n; i += 3) {
            double s = 0;
            for (int k = rowptr[i]; k < rowptr[i + 1]; k++) {
                s += (double)val[k] * B[(size_t)c * n + colind[k]];
            }
            err = fmax(err, fabs(s - C[(size_t)c * n + i]));
        }
    }
    lib_report("spmm csr 4096 x 8", C.data(), C.size() * 4, err, 1e-4);
    cusparseDestroyDnMat(mB);
    cusparseDestroyDnMat(mC);
    cusparseDestroySpMat(A);
    cusparseDestroyDnVec(vx);
    cusparseDestroyDnVec(vy);
    CKS(cusparseDestroy(h));
    cudaFree(buf);
    cudaFree(buf2);
    printf("done\n");
    return 0;
}
