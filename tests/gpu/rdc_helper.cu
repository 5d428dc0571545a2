// SPDX-License-Identifier: Apache-2.0
// The device function rdc_main.cu links against.
__device__ int rdc_helper(int x)
{
    return 3 * x + 7;
}
