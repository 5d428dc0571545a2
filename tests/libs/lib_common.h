// SPDX-License-Identifier: Apache-2.0
//
// What the library sample programs share: status checks that print the
// library's own code and exit 1, deterministic inputs, and a 64-bit FNV-1a
// hash of result bytes. Run natively and through vgpu on the same GPU,
// a deterministic library gives the same bytes, so the hashes printed are
// compared bitwise; each program also checks its results against a host
// reference within a stated tolerance and prints "ok" or the worst error.
#ifndef VGPU_TESTS_LIB_COMMON_H
#define VGPU_TESTS_LIB_COMMON_H

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define CK(what, expr, okval)                                              \
    do {                                                                   \
        long long st_ = (long long)(expr);                                 \
        if (st_ != (long long)(okval)) {                                   \
            printf("%s failed: %lld (%s:%d)\n", what, st_, __FILE__,       \
                   __LINE__);                                              \
            exit(1);                                                       \
        }                                                                  \
    } while (0)
#define CKR(expr) CK(#expr, expr, cudaSuccess)

static inline uint64_t lib_hash(const void *p, size_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 1099511628211ULL;
    }
    return h;
}

// Small integers and halves: products and short sums are exact in fp32.
static inline float lib_val(unsigned i, unsigned salt)
{
    return (float)((int)((i * 2654435761u + salt * 40503u) >> 24) % 9 - 4) * 0.5f;
}

static inline void lib_report(const char *what, const void *p, size_t n,
                              double err, double tol)
{
    printf("%-28s hash %016llx %s", what, (unsigned long long)lib_hash(p, n),
           err <= tol ? "ok" : "MISMATCH");
    if (err > tol) {
        printf(" (max error %g > %g)", err, tol);
    }
    printf("\n");
}

#endif
