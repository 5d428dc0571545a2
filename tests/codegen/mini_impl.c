/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "real" mini API the round-trip test replays into: what a GPU library
 * is to vgpu-server.  Named real_* so they do not clash with the generated
 * stubs linked into the same test; found with dlsym like the server does.
 */
#include <stdio.h>
#include <string.h>

#include "mini_api.h"

#define EXPORT __attribute__((visibility("default")))

struct miniQueue_st {
    size_t depth;
};

static struct miniQueue_st queues[4];
static int nqueues;
struct miniVec3 mini_impl_origin;
int mini_impl_posted;

EXPORT miniStatus_t real_miniAdd(int a, int b, int *sum)
{
    if (!sum)
        return miniErrorInvalid;
    *sum = a + b;
    return miniSuccess;
}

EXPORT miniStatus_t real_miniScale(double factor, struct miniVec3 v, struct miniVec3 *out)
{
    out->x = (int)(v.x * factor);
    out->y = (int)(v.y * factor);
    out->z = (int)(v.z * factor);
    return miniSuccess;
}

EXPORT miniStatus_t real_miniQueueCreate(miniQueue_t *queue, enum miniMode mode)
{
    if (nqueues == 4)
        return miniErrorInvalid;
    queues[nqueues].depth = (size_t)mode * 10;
    *queue = &queues[nqueues++];
    return miniSuccess;
}

EXPORT miniStatus_t real_miniQueueDestroy(miniQueue_t queue)
{
    queue->depth = 0;
    return miniSuccess;
}

EXPORT miniStatus_t real_miniQueueDepth(miniQueue_t queue, size_t *depth)
{
    *depth = queue->depth;
    return miniSuccess;
}

EXPORT miniStatus_t real_miniGetInfo(struct miniInfo *info, int index)
{
    memset(info, 0, sizeof(*info));
    snprintf(info->name, sizeof(info->name), "unit%d", index);
    info->bytes = 1ull << 40;
    info->dims[0] = 1;
    info->dims[1] = 2;
    info->dims[2] = index;
    info->origin.x = -1;
    info->origin.z = 9;
    info->scale = 0.25;
    info->base = (void *)0x1000;
    return miniSuccess;
}

EXPORT miniStatus_t real_miniSetOrigin(const struct miniVec3 *origin)
{
    mini_impl_origin = *origin;
    return miniSuccess;
}

EXPORT miniStatus_t real_miniSum(const int *values, int count, long long *total)
{
    *total = 0;
    for (int i = 0; i < count; i++)
        *total += values[i];
    return miniSuccess;
}

EXPORT miniStatus_t real_miniFill(float *out, int count, float value)
{
    for (int i = 0; i < count; i++)
        out[i] = value + (float)i;
    return miniSuccess;
}

EXPORT miniStatus_t real_miniLookup(const char *key, miniTicket_t *ticket)
{
    if (!key)
        return miniErrorInvalid;
    *ticket = 0x7000 + strlen(key);
    return miniSuccess;
}

EXPORT miniStatus_t real_miniName(char *buf, int len, int index)
{
    snprintf(buf, (size_t)len, "name-%d", index);
    return miniSuccess;
}

EXPORT miniStatus_t real_miniWrite(void *dst, const void *src, size_t bytes)
{
    memcpy(dst, src, bytes);
    return miniSuccess;
}

EXPORT miniStatus_t real_miniRead(void *dst, size_t bytes, miniQueue_t queue)
{
    memset(dst, (int)queue->depth, bytes);
    return miniSuccess;
}

EXPORT miniStatus_t real_miniFill2D(void *dst, size_t pitch, int value, size_t width,
                                    size_t height)
{
    for (size_t y = 0; y < height; y++)
        memset((unsigned char *)dst + y * pitch, value, width);
    return miniSuccess;
}

EXPORT miniStatus_t real_miniZero(void *dst, int n)
{
    memset(dst, 0, (size_t)n * 4);
    return miniSuccess;
}

EXPORT miniStatus_t real_miniPost(miniQueue_t queue, int value)
{
    (void)queue;
    mini_impl_posted = value;
    return miniSuccess;
}

EXPORT miniStatus_t real_miniWait(miniQueue_t queue, miniQueue_t *pair, int n)
{
    size_t total = queue->depth;

    for (int i = 0; i < n; i++)
        total += pair[i]->depth;
    return total == 50 ? miniSuccess : miniErrorInvalid;
}

EXPORT int real_miniVersion(void)
{
    return 7;
}
