/* SPDX-License-Identifier: Apache-2.0 */
/* cuGetErrorName and cuGetErrorString for libcuda.so.1: the server driver's strings, kept once asked. */
#include <cuda.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_calltable.h"
#include "driver_internal.h"
#include "manual.pb-c.h"

#define ID(name) VGPU_CUDA_ID_##name
#define CALL(name, msg, req, rep) vgpu_drv_call(ID(name), #name, &(msg).base, req, rep)

#define ERR_SLOTS 1024

static const char *err_cache[2][ERR_SLOTS];

static CUresult error_string(int text, CUresult error, const char **pstr)
{
    Vgpu__Manual__ErrorStringArgs a = VGPU__MANUAL__ERROR_STRING_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    const char *s;
    int st;

    if (!pstr)
        return CUDA_ERROR_INVALID_VALUE;
    if ((unsigned)error < ERR_SLOTS &&
        (s = __atomic_load_n(&err_cache[text][error], __ATOMIC_ACQUIRE))) {
        *pstr = s;
        return CUDA_SUCCESS;
    }
    a.error = error;
    a.text = text;
    st = text ? CALL(cuGetErrorString, a, &req, &rep) : CALL(cuGetErrorName, a, &req, &rep);
    if (st == CUDA_SUCCESS) {
        Vgpu__Manual__ErrorStringRet *r =
            vgpu__manual__error_string_ret__unpack(NULL, rep.ret_len, rep.ret);
        char *copy = r ? strdup(r->s) : NULL;

        if (!copy) {
            st = r ? CUDA_ERROR_OUT_OF_MEMORY : vgpu_shim_bad_reply(&req);
        } else {
            const char *old = NULL;

            /* kept for the process's life, as the driver's strings are */
            if ((unsigned)error < ERR_SLOTS &&
                !__atomic_compare_exchange_n(&err_cache[text][error], &old, copy, false,
                                             __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                free(copy);
                copy = (char *)old;
            }
            *pstr = copy;
        }
        if (r)
            vgpu__manual__error_string_ret__free_unpacked(r, NULL);
    } else if (st == CUDA_ERROR_NO_DEVICE && error == CUDA_ERROR_NO_DEVICE) {
        /* no server to ask: this one is ours to name */
        *pstr = text ? "no CUDA-capable device is detected (vgpu-server unreachable)"
                     : "CUDA_ERROR_NO_DEVICE";
        st = CUDA_SUCCESS;
    }
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuGetErrorName(CUresult error, const char **pstr)
{
    return error_string(0, error, pstr);
}

VGPU_EXPORT CUresult cuGetErrorString(CUresult error, const char **pstr)
{
    return error_string(1, error, pstr);
}

