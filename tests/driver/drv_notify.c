/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the driver tells a program unasked: its error log through callbacks
 * (cuLogsRegisterCallback and the runtime's cudaLogsRegisterCallback) and
 * async notifications (cuDeviceRegisterAsyncNotification and the
 * runtime's).  A failed function lookup makes the driver log an error;
 * the program checks that each registered callback saw it when the call
 * returned, on the calling thread, and that an unregistered one did not.
 * Notifications: the real driver has none to give on such a machine (the
 * fake gives one per registration), so the program prints how many came.
 * Prints what it saw; the same output natively and through vgpu.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const unsigned char drv_test_ptx[];

#define CHECK(call)                                                                    \
    do {                                                                               \
        CUresult r_ = (call);                                                          \
        if (r_ != CUDA_SUCCESS) {                                                      \
            const char *n_ = NULL;                                                     \
            cuGetErrorName(r_, &n_);                                                   \
            printf("%s failed: %s\n", #call, n_ ? n_ : "?");                           \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static const char *name_of(CUresult r)
{
    const char *n = NULL;

    return cuGetErrorName(r, &n) == CUDA_SUCCESS && n ? n : "?";
}

struct seen {
    int calls;
    int errors;                /* messages at CU_LOG_LEVEL_ERROR */
    int with_text;             /* ... with a non-empty message */
    int elsewhere;             /* ... on another thread than main's */
};

static pthread_t main_thread;

static void CUDA_CB on_log(void *data, CUlogLevel level, char *message, size_t length)
{
    struct seen *s = data;

    s->calls++;
    s->errors += level == CU_LOG_LEVEL_ERROR;
    s->with_text += message && length && message[0];
    s->elsewhere += !pthread_equal(pthread_self(), main_thread);
}

static void CUDART_CB on_rt_log(void *data, cudaLogLevel level, char *message, size_t length)
{
    on_log(data, (CUlogLevel)level, message, length);
}

static void report(const char *who, const struct seen *s)
{
    printf("%s: %s", who, s->calls ? "called" : "not called");
    if (s->calls)
        printf(", %s, %s, %s", s->errors == s->calls ? "every message an error" : "other levels",
               s->with_text == s->calls ? "with text" : "some without text",
               s->elsewhere ? "on another thread" : "on the calling thread");
    printf("\n");
}

struct notes {
    int count;
    int type;
    unsigned long long bytes;
};

static void CUDA_CB on_notify(CUasyncNotificationInfo *info, void *data, CUasyncCallbackHandle h)
{
    struct notes *n = data;

    (void)h;
    n->type = info ? (int)info->type : -1;
    n->bytes = info ? info->info.overBudget.bytesOverBudget : 0;
    __atomic_add_fetch(&n->count, 1, __ATOMIC_RELEASE);
}

static void CUDART_CB on_rt_notify(cudaAsyncNotificationInfo_t *info, void *data,
                                   cudaAsyncCallbackHandle_t h)
{
    struct notes *n = data;

    (void)h;
    n->type = info ? (int)info->type : -1;
    n->bytes = info ? info->info.overBudget.bytesOverBudget : 0;
    __atomic_add_fetch(&n->count, 1, __ATOMIC_RELEASE);
}

/* Until one came or half a second passed. */
static void await(struct notes *n)
{
    for (int i = 0; i < 50 && !__atomic_load_n(&n->count, __ATOMIC_ACQUIRE); i++) {
        struct timespec ms10 = { 0, 10000000 };

        nanosleep(&ms10, NULL);
    }
}

static void print_notes(const char *who, const struct notes *n)
{
    int c = __atomic_load_n(&n->count, __ATOMIC_ACQUIRE);

    printf("%s: %d notification(s)", who, c);
    if (c)
        printf(", type %d, %llu bytes over budget", n->type, n->bytes);
    printf("\n");
}

static void lookup_missing(CUmodule mod)
{
    CUfunction f;

    printf("lookup of a missing kernel: %s\n", name_of(cuModuleGetFunction(&f, mod, "no_such_kernel")));
}

int main(void)
{
    CUdevice dev;
    CUcontext ctx;
    CUmodule mod;
    CUlogsCallbackHandle h1 = NULL, h2 = NULL;
    cudaLogsCallbackHandle h3 = NULL;
    CUasyncCallbackHandle hn = NULL;
    cudaAsyncCallbackHandle_t hr = NULL;
    struct seen first = { 0 }, second = { 0 }, rt = { 0 };
    struct notes drv_notes = { 0 }, rt_notes = { 0 };
    bool refusals = getenv("VGPU_TEST_REFUSALS") != NULL;
    CUresult r;
    cudaError_t e;

    main_thread = pthread_self();
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    CHECK(cuModuleLoadData(&mod, drv_test_ptx));

    /* ---- log callbacks ---- */
    printf("register without a function: %s\n", name_of(cuLogsRegisterCallback(NULL, NULL, &h1)));
    CHECK(cuLogsRegisterCallback(on_log, &first, &h1));
    CHECK(cuLogsRegisterCallback(on_log, &second, &h2));
    lookup_missing(mod);
    report("first callback", &first);
    report("second callback", &second);
    CHECK(cuLogsUnregisterCallback(h1));
    first = second = (struct seen){ 0 };
    lookup_missing(mod);
    report("first callback, unregistered", &first);
    report("second callback", &second);
    CHECK(cuLogsUnregisterCallback(h2));
    second = (struct seen){ 0 };
    lookup_missing(mod);
    report("second callback, unregistered", &second);

    e = cudaLogsRegisterCallback(on_rt_log, &rt, &h3);
    printf("cudaLogsRegisterCallback: %s\n", cudaGetErrorName(e));
    lookup_missing(mod);
    report("runtime's callback", &rt);
    printf("cudaLogsUnregisterCallback: %s\n", cudaGetErrorName(cudaLogsUnregisterCallback(h3)));
    if (refusals)
        printf("unregistering it again: %s\n", cudaGetErrorName(cudaLogsUnregisterCallback(h3)));

    /* ---- async notifications ---- */
    printf("notification without a function: %s\n",
           name_of(cuDeviceRegisterAsyncNotification(dev, NULL, NULL, &hn)));
    r = cuDeviceRegisterAsyncNotification(dev, on_notify, &drv_notes, &hn);
    printf("cuDeviceRegisterAsyncNotification: %s\n", name_of(r));
    if (r == CUDA_SUCCESS) {
        await(&drv_notes);
        print_notes("driver API", &drv_notes);
        printf("cuDeviceUnregisterAsyncNotification: %s\n",
               name_of(cuDeviceUnregisterAsyncNotification(dev, hn)));
        if (refusals)
            printf("unregistering it again: %s\n",
                   name_of(cuDeviceUnregisterAsyncNotification(dev, hn)));
    }
    e = cudaDeviceRegisterAsyncNotification(0, on_rt_notify, &rt_notes, &hr);
    printf("cudaDeviceRegisterAsyncNotification: %s\n", cudaGetErrorName(e));
    if (e == cudaSuccess) {
        await(&rt_notes);
        print_notes("runtime", &rt_notes);
        printf("cudaDeviceUnregisterAsyncNotification: %s\n",
               cudaGetErrorName(cudaDeviceUnregisterAsyncNotification(0, hr)));
    }

    CHECK(cuModuleUnload(mod));
    CHECK(cuDevicePrimaryCtxRelease(dev));
    printf("done\n");
    return 0;
}
