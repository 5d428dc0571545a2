/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cuGetErrorName and cuGetErrorString for libcuda.so.1: the server driver's strings, kept once
 * asked.  The driver's log (cuLogsDumpToMemory, cuLogsDumpToFile): its text, read here.
 */
#include <cuda.h>
#include <stdio.h>
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


/* ---- the driver's log: the server's text, read here ---- */

/* The log from *iterator (all when NULL) as text; size: the caller's room. */
static CUresult logs_dump(uint32_t id, const char *name, CUlogIterator *iterator, uint64_t size,
                          unsigned flags, Vgpu__Manual__LogsDumpRet **out,
                          struct vgpu_call_rep *rep)
{
    Vgpu__Manual__LogsDumpArgs a = VGPU__MANUAL__LOGS_DUMP_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    CUresult st;

    a.has_iterator = iterator != NULL;
    a.iterator = iterator ? *iterator : 0;
    a.size = size;
    a.flags = flags;
    *out = NULL;
    st = vgpu_drv_call(id, name, &a.base, &req, rep);
    if (st == CUDA_SUCCESS &&
        !(*out = vgpu__manual__logs_dump_ret__unpack(NULL, rep->ret_len, rep->ret)))
        st = vgpu_shim_bad_reply(&req);
    if (st == CUDA_SUCCESS && iterator)
        *iterator = (*out)->iterator;
    return st;
}

VGPU_EXPORT CUresult cuLogsDumpToMemory(CUlogIterator *iterator, char *buffer, size_t *size,
                                        unsigned int flags)
{
    Vgpu__Manual__LogsDumpRet *r;
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    if (!buffer || !size || !*size)
        return CUDA_ERROR_INVALID_VALUE;
    st = logs_dump(ID(cuLogsDumpToMemory), "cuLogsDumpToMemory", iterator, *size, flags, &r,
                   &rep);
    if (st == CUDA_SUCCESS) {
        /* the server's driver wrote at most what fits with its NUL; said again here */
        size_t n = r->text.len < *size ? r->text.len : *size - 1;

        memcpy(buffer, r->text.data, n);
        buffer[n] = '\0';
        *size = n;
    } else if (st == CUDA_ERROR_INVALID_VALUE) {
        *size = 0;
    }
    if (r)
        vgpu__manual__logs_dump_ret__free_unpacked(r, NULL);
    vgpu_shim_rep_release(&rep);
    return st;
}

/* The text comes from the server; the file is written here, in the guest. */
VGPU_EXPORT CUresult cuLogsDumpToFile(CUlogIterator *iterator, const char *pathToFile,
                                      unsigned int flags)
{
    Vgpu__Manual__LogsDumpRet *r;
    struct vgpu_call_rep rep = { 0 };
    CUresult st;
    FILE *f;

    if (!pathToFile)
        return CUDA_ERROR_INVALID_VALUE;
    st = logs_dump(ID(cuLogsDumpToFile), "cuLogsDumpToFile", iterator, 32768, flags, &r, &rep);
    if (st == CUDA_SUCCESS) {
        if (!(f = fopen(pathToFile, "w"))) {
            st = CUDA_ERROR_INVALID_VALUE;
        } else {
            bool short_write = r->text.len &&
                               fwrite(r->text.data, 1, r->text.len, f) != r->text.len;

            if (fclose(f) != 0 || short_write)
                st = CUDA_ERROR_INVALID_VALUE;
        }
    }
    if (r)
        vgpu__manual__logs_dump_ret__free_unpacked(r, NULL);
    vgpu_shim_rep_release(&rep);
    return st;
}
