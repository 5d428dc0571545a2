/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cuGetErrorName and cuGetErrorString for libcuda.so.1: the server driver's strings, kept once
 * asked.  The driver's log (cuLogsDumpToMemory, cuLogsDumpToFile): its text, read here; its
 * callbacks (cuLogsRegisterCallback): run here, with the messages the server keeps for them.
 */
#include <cuda.h>
#include <pthread.h>
#include <stdbool.h>
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

/*
 * ---- the driver's log callbacks ----
 *
 * The program's callbacks live here; the server keeps the driver's
 * messages while this process has at least one (the first registration
 * asks it to, the last one gone tells it to stop) and sends them with the
 * reply of the call that follows them; the client hands them to
 * log_sink() on that call's thread once the call is done, and each
 * callback registered then gets each message, in order.  Natively the
 * driver calls them while the failing call runs; here they run before it
 * returns to the program, or, for a call that was queued, when a later
 * call brings the reply.
 */
struct log_cb {
    struct log_cb *next;
    CUlogsCallback fn;
    void *data;
};

static pthread_mutex_t log_reg_lock = PTHREAD_MUTEX_INITIALIZER;    /* one change at a time */
static pthread_mutex_t log_list_lock = PTHREAD_MUTEX_INITIALIZER;   /* log_cbs */
static struct log_cb *log_cbs;

static void log_sink(int level, const char *text, size_t len)
{
    struct log_cb *l, *snap = NULL;
    size_t n = 0, i = 0;

    pthread_mutex_lock(&log_list_lock);
    for (l = log_cbs; l; l = l->next)
        n++;
    if (n && (snap = malloc(n * sizeof(*snap))))
        for (l = log_cbs; l; l = l->next)
            snap[i++] = *l;
    pthread_mutex_unlock(&log_list_lock);
    /* outside the lock: a callback may register or unregister one */
    for (size_t k = 0; k < i; k++)
        snap[k].fn(snap[k].data, (CUlogLevel)level, (char *)text, len);
    free(snap);
}

/* Tells the server to start (on) or stop keeping the driver's messages for this process. */
static CUresult log_watch(bool on)
{
    Vgpu__Manual__LogsWatchArgs a = VGPU__MANUAL__LOGS_WATCH_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    CUresult st;

    /* log_reg_lock is held: a callback run inside this call could not register one */
    vgpu_client_quiet(vgpu_client_get(), 1);
    st = on ? CALL(cuLogsRegisterCallback, a, &req, &rep)
            : CALL(cuLogsUnregisterCallback, a, &req, &rep);
    vgpu_client_quiet(vgpu_client_get(), -1);
    vgpu_shim_rep_release(&rep);
    return st;
}

VGPU_EXPORT CUresult cuLogsRegisterCallback(CUlogsCallback callbackFunc, void *userData,
                                            CUlogsCallbackHandle *callback_out)
{
    struct log_cb *e;
    CUresult st = CUDA_SUCCESS;

    if (!callbackFunc)
        return CUDA_ERROR_INVALID_VALUE;
    if (!(e = malloc(sizeof(*e))))
        return CUDA_ERROR_OUT_OF_MEMORY;
    *e = (struct log_cb){ .fn = callbackFunc, .data = userData };
    pthread_mutex_lock(&log_reg_lock);
    if (!log_cbs) {
        /* the client keeps log_sink: this library stays loaded */
        vgpu_client_pin((const void *)(uintptr_t)log_sink);
        if (vgpu_client_set_log_sink(vgpu_client_get(), log_sink))
            st = CUDA_ERROR_NOT_SUPPORTED;    /* another library's older client */
        else if ((st = log_watch(true)) != CUDA_SUCCESS)
            vgpu_client_set_log_sink(vgpu_client_get(), NULL);
    }
    if (st == CUDA_SUCCESS) {
        pthread_mutex_lock(&log_list_lock);
        e->next = log_cbs;
        log_cbs = e;
        pthread_mutex_unlock(&log_list_lock);
        if (callback_out)
            *callback_out = (CUlogsCallbackHandle)e;
    } else {
        free(e);
    }
    pthread_mutex_unlock(&log_reg_lock);
    return st;
}

VGPU_EXPORT CUresult cuLogsUnregisterCallback(CUlogsCallbackHandle callback)
{
    struct log_cb **p, *e = NULL;
    bool last;

    pthread_mutex_lock(&log_reg_lock);
    pthread_mutex_lock(&log_list_lock);
    for (p = &log_cbs; *p; p = &(*p)->next)
        if (*p == (struct log_cb *)callback) {
            e = *p;
            *p = e->next;
            break;
        }
    last = e && !log_cbs;
    pthread_mutex_unlock(&log_list_lock);
    if (last)
        log_watch(false);   /* the callback is gone whatever the server says */
    pthread_mutex_unlock(&log_reg_lock);
    /* a sink running on another thread works on copies (log_sink); the handle is compared, never read */
    free(e);
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
