/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host functions on streams: cudaLaunchHostFunc, cudaStreamAddCallback,
 * cuLaunchHostFunc, cuStreamAddCallback.  Work runs when it is issued, so
 * everything before a host function on its stream is done when it is
 * enqueued; the function then runs as the real driver runs it, on a thread
 * of the library's own (one, in the order they were enqueued), and the
 * call returns at once.  Work issued after it must wait until it returned:
 * every API call (the runtime's and the driver's gates, driver.c) first
 * waits until no host function is queued or running -- stricter than
 * CUDA, which holds back only the same stream's later work, never looser.
 * A stream callback gets success as its status (the fake has no sticky
 * stream errors).
 *
 * Only this file's queue is shared with that thread, under its own lock;
 * the thread never calls into the rest of the fake.
 */
#include <pthread.h>
#include <stdlib.h>

#include "fakecuda_internal.h"

struct job {
    void (*host)(void *);                              /* a host function, or */
    void (*rt_cb)(cudaStream_t, cudaError_t, void *);  /* a runtime stream callback, or */
    void (*cu_cb)(CUstream, CUresult, void *);         /* a driver stream callback */
    void *stream, *data;
    struct job *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct job *head, *tail;
static int busy;                        /* queued or running */
static bool started;

static void *worker(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        struct job *j;

        while (!head)
            pthread_cond_wait(&changed, &lock);
        j = head;
        head = j->next;
        if (!head)
            tail = NULL;
        pthread_mutex_unlock(&lock);
        if (j->host)
            j->host(j->data);
        else if (j->rt_cb)
            j->rt_cb((cudaStream_t)j->stream, cudaSuccess, j->data);
        else
            j->cu_cb((CUstream)j->stream, CUDA_SUCCESS, j->data);
        free(j);
        pthread_mutex_lock(&lock);
        busy--;
        pthread_cond_broadcast(&changed);
    }
    return NULL;
}

void vgpu_fake_hostfn_drain(void)
{
    pthread_mutex_lock(&lock);
    while (busy)
        pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
}

/* Queues j for the thread (started on first use): cudaSuccess or cudaErrorMemoryAllocation. */
static cudaError_t enqueue(struct job *j)
{
    pthread_t th;

    pthread_mutex_lock(&lock);
    if (!started) {
        if (pthread_create(&th, NULL, worker, NULL)) {
            pthread_mutex_unlock(&lock);
            free(j);
            return cudaErrorMemoryAllocation;
        }
        pthread_detach(th);
        started = true;
    }
    j->next = NULL;
    if (tail)
        tail->next = j;
    else
        head = j;
    tail = j;
    busy++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    return cudaSuccess;
}

void vgpu_fake_host_fn_later(void (*fn)(void *), void *data)
{
    struct job *j = malloc(sizeof(*j));

    if (j) {
        *j = (struct job){ .host = fn, .data = data };
        enqueue(j);
    }
}

CUresult vgpu_fake_host_node_run(void (*fn)(void *), void *data)
{
    struct job *j = malloc(sizeof(*j));

    if (!j)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *j = (struct job){ .host = fn, .data = data };
    if (enqueue(j))
        return CUDA_ERROR_OUT_OF_MEMORY;
    vgpu_fake_hostfn_drain();
    return CUDA_SUCCESS;
}

/*
 * Queues proto's function on stream.  Into a capturing stream a host
 * function becomes a host node (run at each launch of the graph); a stream
 * callback there is refused, as CUDA refuses it.
 */
static cudaError_t add(const char *fn, cudaStream_t stream, const struct job *proto)
{
    struct vgpu_fake_op op = { .kind = VGPU_FAKE_OP_HOST, .host = proto->host,
                               .host_data = proto->data };
    CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
    struct job *j;
    CUresult r;

    if (!vgpu_fake_stream_ok(fn, stream))
        return cudaErrorInvalidResourceHandle;
    if (stream && cuStreamIsCapturing((CUstream)stream, &cs) == CUDA_SUCCESS &&
        cs != CU_STREAM_CAPTURE_STATUS_NONE) {
        if (!proto->host)
            return cudaErrorStreamCaptureUnsupported;
        vgpu_fake_captured((CUstream)stream, &op, &r);
        return (cudaError_t)r;          /* the numbers of these statuses agree */
    }
    j = malloc(sizeof(*j));
    if (!j)
        return cudaErrorMemoryAllocation;
    *j = *proto;
    j->stream = stream;
    return enqueue(j);
}

FAKE_EXPORT cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *userData)
{
    vgpu_fake_rt_ctx();
    if (!fn)
        return vgpu_fake_status(cudaErrorInvalidValue);
    return vgpu_fake_status(add(__func__, stream, &(struct job){ .host = fn, .data = userData }));
}

FAKE_EXPORT cudaError_t cudaStreamAddCallback(cudaStream_t stream, cudaStreamCallback_t callback,
                                              void *userData, unsigned int flags)
{
    vgpu_fake_rt_ctx();
    if (!callback || flags)
        return vgpu_fake_status(cudaErrorInvalidValue);
    return vgpu_fake_status(add(__func__, stream, &(struct job){ .rt_cb = callback, .data = userData }));
}

FAKE_EXPORT CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!fn)
        return CUDA_ERROR_INVALID_VALUE;
    return vgpu_fake_cu_of(add(__func__, (cudaStream_t)hStream,
                               &(struct job){ .host = fn, .data = userData }));
}

FAKE_EXPORT CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                                         unsigned int flags)
{
    CUresult r = vgpu_fake_cu_ready();

    if (r)
        return r;
    if (!callback || flags)
        return CUDA_ERROR_INVALID_VALUE;
    return vgpu_fake_cu_of(add(__func__, (cudaStream_t)hStream,
                               &(struct job){ .cu_cb = callback, .data = userData }));
}

/*
 * Async notifications (cuDeviceRegisterAsyncNotification): the fake has no
 * budget to go over, so each registration gets one notification of its
 * own, OVER_BUDGET by 1 MiB, from a thread of its own shortly after it
 * was made (as the real driver calls on a thread of its own, whenever);
 * unregistering waits for that thread.  On device 0 only.
 */
#define NOTIFY_MAX 8

static struct notify {
    CUasyncCallback fn;
    void *data;
    pthread_t th;
    bool used;
} notify[NOTIFY_MAX];
static pthread_mutex_t notify_lock = PTHREAD_MUTEX_INITIALIZER;

static void *notify_thread(void *arg)
{
    struct notify *n = arg;
    CUasyncNotificationInfo info = { .type = CU_ASYNC_NOTIFICATION_TYPE_OVER_BUDGET };

    info.info.overBudget.bytesOverBudget = 1u << 20;
    n->fn(&info, n->data, (CUasyncCallbackHandle)n);
    return NULL;
}

FAKE_EXPORT CUresult cuDeviceRegisterAsyncNotification(CUdevice device, CUasyncCallback callbackFunc,
                                                       void *userData,
                                                       CUasyncCallbackHandle *callback)
{
    CUresult st = CUDA_ERROR_OUT_OF_MEMORY;

    if (device != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    if (!callbackFunc || !callback)
        return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&notify_lock);
    for (int i = 0; i < NOTIFY_MAX; i++) {
        struct notify *n = &notify[i];

        if (n->used)
            continue;
        *n = (struct notify){ .fn = callbackFunc, .data = userData, .used = true };
        if (pthread_create(&n->th, NULL, notify_thread, n)) {
            n->used = false;
            break;
        }
        *callback = (CUasyncCallbackHandle)n;
        st = CUDA_SUCCESS;
        break;
    }
    pthread_mutex_unlock(&notify_lock);
    return st;
}

FAKE_EXPORT CUresult cuDeviceUnregisterAsyncNotification(CUdevice device, CUasyncCallbackHandle callback)
{
    struct notify *n = (struct notify *)callback;
    pthread_t th;

    if (device != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&notify_lock);
    if (n < notify || n >= notify + NOTIFY_MAX || !n->used) {
        pthread_mutex_unlock(&notify_lock);
        return CUDA_ERROR_INVALID_VALUE;
    }
    th = n->th;
    n->used = false;
    pthread_mutex_unlock(&notify_lock);
    pthread_join(th, NULL);
    return CUDA_SUCCESS;
}
