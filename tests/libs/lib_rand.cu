// SPDX-License-Identifier: Apache-2.0
//
// cuRAND's host API: Philox, XORWOW, MRG32k3a and Sobol generators with a
// seed, uniform, normal, log-normal and Poisson draws into device memory,
// and a host generator for comparison of the interface. The same seed on
// the same GPU gives the same numbers, so the hashes must match native;
// the moments are checked against the distributions'.
#include "lib_common.h"
#include <curand.h>
#include <vector>

#define CKN(expr) CK(#expr, expr, CURAND_STATUS_SUCCESS)

static void draw(curandRngType_t type, const char *name)
{
    const size_t n = 1 << 20;
    curandGenerator_t g;
    float *d;
    unsigned *du;
    CKR(cudaMalloc(&d, n * 4));
    CKR(cudaMalloc(&du, n * 4));
    CKN(curandCreateGenerator(&g, type));
    if (type == CURAND_RNG_QUASI_SOBOL32) {
        CKN(curandSetQuasiRandomGeneratorDimensions(g, 4));
    } else {
        CKN(curandSetPseudoRandomGeneratorSeed(g, 1234));
    }
    std::vector<float> h(n);
    char what[80];
    CKN(curandGenerateUniform(g, d, n));
    CKR(cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost));
    double m = 0;
    for (float v : h) {
        m += v;
    }
    snprintf(what, sizeof(what), "%s uniform", name);
    lib_report(what, h.data(), n * 4, fabs(m / n - 0.5), 5e-3);
    CKN(curandGenerateNormal(g, d, n, 1.0f, 2.0f));
    CKR(cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost));
    m = 0;
    double v2 = 0;
    for (float v : h) {
        m += v;
        v2 += (double)v * v;
    }
    m /= n;
    snprintf(what, sizeof(what), "%s normal", name);
    lib_report(what, h.data(), n * 4, fmax(fabs(m - 1.0), fabs(sqrt(v2 / n - m * m) - 2.0)), 2e-2);
    if (type != CURAND_RNG_QUASI_SOBOL32) {
        CKN(curandGenerateLogNormal(g, d, n, 0.0f, 0.5f));
        CKR(cudaMemcpy(h.data(), d, n * 4, cudaMemcpyDeviceToHost));
        snprintf(what, sizeof(what), "%s log-normal", name);
        m = 0;
        for (float v : h) {
            m += v;
        }
        lib_report(what, h.data(), n * 4, fabs(m / n - exp(0.125)), 1e-2);
        CKN(curandGeneratePoisson(g, du, n, 4.0));
        std::vector<unsigned> hu(n);
        CKR(cudaMemcpy(hu.data(), du, n * 4, cudaMemcpyDeviceToHost));
        m = 0;
        for (unsigned v : hu) {
            m += v;
        }
        snprintf(what, sizeof(what), "%s poisson", name);
        lib_report(what, hu.data(), n * 4, fabs(m / n - 4.0), 2e-2);
    }
    CKN(curandDestroyGenerator(g));
    cudaFree(d);
    cudaFree(du);
}

int main(void)
{
    int ver = 0;
    CKN(curandGetVersion(&ver));
    printf("curand version %d\n", ver);
    draw(CURAND_RNG_PSEUDO_PHILOX4_32_10, "philox");
    draw(CURAND_RNG_PSEUDO_XORWOW, "xorwow");
    draw(CURAND_RNG_PSEUDO_MRG32K3A, "mrg32k3a");
    draw(CURAND_RNG_QUASI_SOBOL32, "sobol32");
    printf("done\n");
    return 0;
}
