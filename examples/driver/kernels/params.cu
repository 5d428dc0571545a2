// SPDX-License-Identifier: Apache-2.0
//
// Device code of drv_params (fatbin, embedded): one kernel with 18
// parameters of many sizes and alignments, which stores the checksum of the
// 17 values it received (params.h) so the host can compare it with its own.

#include "../params.h"

extern "C" __global__ void params_sum(char c, short s, int i, long long ll, float f, double d,
                                      struct drv_mixed m, float3 v, unsigned char uc,
                                      struct drv_arr40 a, bool b, unsigned short us,
                                      unsigned int ui, unsigned long long ull, float f2,
                                      double d2, signed char sc, unsigned long long *out)
{
    out[0] = drv_params_checksum(c, s, i, ll, f, d, m, v, uc, a, b, us, ui, ull, f2, d2, sc);
}
