/* SPDX-License-Identifier: Apache-2.0
 *
 * Parameter types and checksum of drv_params, shared by the host program
 * (C) and its kernel (CUDA C++), so both sides lay the structs out alike and
 * compute the same checksum: the kernel over the parameters it received, the
 * host over the values it passed. The checksum folds every parameter in as a
 * 64-bit word (signed values sign-extended, floats by their bit pattern) with
 * FNV-1a, so it is exact and independent of rounding; it never reads struct
 * padding.
 */
#ifndef VGPU_EXAMPLES_DRV_PARAMS_H
#define VGPU_EXAMPLES_DRV_PARAMS_H

#include <string.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#include <vector_types.h>

#ifdef __CUDACC__
#define DRV_HD __host__ __device__
#else
#define DRV_HD
#endif

/* Mixed alignment: 7 bytes of padding after c, 4 after i (24 bytes). */
struct drv_mixed {
    char c;
    double d;
    int i;
};

/* An array inside a struct, passed by value: 40 bytes, 4-byte aligned. */
struct drv_arr40 {
    int v[10];
};

static inline DRV_HD unsigned long long drv_fold(unsigned long long h, unsigned long long v)
{
    /* FNV-1a over the 8 bytes of v, least significant first. */
    for (int k = 0; k < 8; k++) {
        h ^= (v >> (8 * k)) & 0xffu;
        h *= 1099511628211ull;
    }
    return h;
}

static inline DRV_HD unsigned long long drv_float_bits(float f)
{
    unsigned int u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline DRV_HD unsigned long long drv_double_bits(double d)
{
    unsigned long long u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

#define DRV_FOLD_S(h, x) drv_fold((h), (unsigned long long)(long long)(x))
#define DRV_FOLD_U(h, x) drv_fold((h), (unsigned long long)(x))

/* The checksum of drv_params' 17 value parameters, in their order. */
static inline DRV_HD unsigned long long
drv_params_checksum(char c, short s, int i, long long ll, float f, double d,
                    struct drv_mixed m, float3 v, unsigned char uc, struct drv_arr40 a,
                    bool b, unsigned short us, unsigned int ui, unsigned long long ull,
                    float f2, double d2, signed char sc)
{
    unsigned long long h = 14695981039346656037ull;

    h = DRV_FOLD_S(h, c);
    h = DRV_FOLD_S(h, s);
    h = DRV_FOLD_S(h, i);
    h = DRV_FOLD_S(h, ll);
    h = drv_fold(h, drv_float_bits(f));
    h = drv_fold(h, drv_double_bits(d));
    h = DRV_FOLD_S(h, m.c);
    h = drv_fold(h, drv_double_bits(m.d));
    h = DRV_FOLD_S(h, m.i);
    h = drv_fold(h, drv_float_bits(v.x));
    h = drv_fold(h, drv_float_bits(v.y));
    h = drv_fold(h, drv_float_bits(v.z));
    h = DRV_FOLD_U(h, uc);
    for (int k = 0; k < 10; k++)
        h = DRV_FOLD_S(h, a.v[k]);
    h = DRV_FOLD_U(h, b ? 1u : 0u);
    h = DRV_FOLD_U(h, us);
    h = DRV_FOLD_U(h, ui);
    h = DRV_FOLD_U(h, ull);
    h = drv_fold(h, drv_float_bits(f2));
    h = drv_fold(h, drv_double_bits(d2));
    h = DRV_FOLD_S(h, sc);
    return h;
}

#endif
