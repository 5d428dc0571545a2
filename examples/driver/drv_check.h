/* SPDX-License-Identifier: Apache-2.0
 *
 * Error checking shared by the driver-API examples. It follows the output
 * contract of examples/README.md: a failing call prints
 * "<what>: <CUresult name> (<description>)" on stdout and the program exits
 * with status 1; a wrong result is reported by the example itself with a
 * line starting "FAILED" and status 2. Header-only so that each example stays
 * a single program built from one source file.
 */
#ifndef VGPU_EXAMPLES_DRV_CHECK_H
#define VGPU_EXAMPLES_DRV_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include <cuda.h>

static inline void drv_check(CUresult res, const char *what)
{
    const char *name = NULL;
    const char *desc = NULL;

    if (res == CUDA_SUCCESS)
        return;
    /* Both lookups fail for codes this driver does not know, and for every
     * code in the toolkit's stub libcuda.so: print the number instead. */
    if (cuGetErrorName(res, &name) != CUDA_SUCCESS || !name) {
        printf("%s: CUresult %d (no name from cuGetErrorName; 34 is "
               "CUDA_ERROR_STUB_LIBRARY)\n", what, (int)res);
        fflush(stdout);
        exit(1);
    }
    if (cuGetErrorString(res, &desc) != CUDA_SUCCESS || !desc)
        desc = "no description";
    printf("%s: %s (%s)\n", what, name, desc);
    fflush(stdout);
    exit(1);
}
#define DRV_CHECK(call) drv_check((call), #call)

#endif
