/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small API, unrelated to CUDA, that exercises every parameter kind
 * vgpu-codegen knows.  Its generated output is compared with golden/ and
 * replayed end to end by mini_roundtrip_test.c.
 */
#ifndef MINI_API_H
#define MINI_API_H

#include <stddef.h>

typedef enum miniStatus {
    miniSuccess = 0,
    miniErrorInvalid = 1,
    miniErrorNotSupported = 2,
} miniStatus_t;

typedef struct miniQueue_st *miniQueue_t;
typedef unsigned long long miniTicket_t;

enum miniMode { miniModeFast = 1, miniModeSafe = 2 };

struct miniVec3 {
    int x, y, z;
};

struct miniInfo {
    char name[16];
    unsigned long long bytes;
    int dims[3];
    struct miniVec3 origin;
    double scale;
    void *base;
};

miniStatus_t miniAdd(int a, int b, int *sum);
miniStatus_t miniScale(double factor, struct miniVec3 v, struct miniVec3 *out);
miniStatus_t miniQueueCreate(miniQueue_t *queue, enum miniMode mode);
miniStatus_t miniQueueDestroy(miniQueue_t queue);
miniStatus_t miniQueueDepth(miniQueue_t queue, size_t *depth);
miniStatus_t miniGetInfo(struct miniInfo *info, int index);
miniStatus_t miniSetOrigin(const struct miniVec3 *origin);
miniStatus_t miniSum(const int *values, int count, long long *total);
miniStatus_t miniFill(float *out, int count, float value);
miniStatus_t miniLookup(const char *key, miniTicket_t *ticket);
miniStatus_t miniName(char *buf, int len, int index);
miniStatus_t miniWrite(void *dst, const void *src, size_t bytes);
miniStatus_t miniRead(void *dst, size_t bytes, miniQueue_t queue);
miniStatus_t miniFill2D(void *dst, size_t pitch, int value, size_t width, size_t height);
miniStatus_t miniZero(void *dst, int n);
miniStatus_t miniPost(miniQueue_t queue, int value);
miniStatus_t miniWait(miniQueue_t queue, miniQueue_t *pair, int n);
miniStatus_t miniNotify(void (*cb)(void *), void *user);
miniStatus_t miniSpecial(void *anything);
int miniVersion(void);

#endif
