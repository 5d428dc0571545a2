/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the program told CUDA about its managed memory: the advice of
 * cudaMemAdvise and the locations it prefetched to (cudaMemPrefetchAsync
 * and the batched prefetches, managed.c), kept per span of pages as CUDA
 * keeps them per page, so that cudaMemRangeGetAttribute(s) answer from
 * here without a call.  The shadow (managed.c) neither migrates nor
 * duplicates pages, so these records are all the attributes can report,
 * and all CUDA reports too: what was asked, not where the bytes are.
 *
 * The spans are sorted, disjoint, page-aligned, and hold only pages with
 * something recorded; a page in none has no advice and was never
 * prefetched.  They go when their managed range is freed
 * (vgpu_advice_forget, from managed.c).  One lock, never held across a
 * call to the server.
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shim_internal.h"

struct advice {
    bool read_mostly;
    struct cudaMemLocation preferred;   /* type cudaMemLocationTypeInvalid: none */
    uint64_t accessed_by;               /* bit d: device d advised cudaMemAdviseSetAccessedBy
                                           (devices from 64 on are not recorded) */
    bool accessed_by_host;
    struct cudaMemLocation prefetched;  /* type cudaMemLocationTypeInvalid: never */
};

struct span {
    uintptr_t lo, hi;
    struct advice a;
};

static pthread_mutex_t advice_lock = PTHREAD_MUTEX_INITIALIZER;
static struct span *spans;
static size_t nspans;

static const struct advice none = { .preferred.type = cudaMemLocationTypeInvalid,
                                    .prefetched.type = cudaMemLocationTypeInvalid };

static uintptr_t page(void)
{
    static uintptr_t size;

    if (!size) {
        long s = sysconf(_SC_PAGESIZE);

        size = s > 0 ? (uintptr_t)s : 4096;
    }
    return size;
}

/* [p, p+n) widened to whole pages, as CUDA applies advice; false when it wraps. */
static bool pages(const void *p, size_t n, uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t a = (uintptr_t)p, b = a + n;

    if (b < a || b > UINTPTR_MAX - page())
        return false;
    *lo = a & ~(page() - 1);
    *hi = (b + page() - 1) & ~(page() - 1);
    return true;
}

static bool same_location(struct cudaMemLocation x, struct cudaMemLocation y)
{
    return x.type == y.type && (x.type == cudaMemLocationTypeInvalid ||
                                x.type == cudaMemLocationTypeHost || x.id == y.id);
}

static bool same(const struct advice *x, const struct advice *y)
{
    return x->read_mostly == y->read_mostly && same_location(x->preferred, y->preferred) &&
           x->accessed_by == y->accessed_by && x->accessed_by_host == y->accessed_by_host &&
           same_location(x->prefetched, y->prefetched);
}

/*
 * Applies change to every page of [lo, hi): the spans rebuilt with the
 * range's pieces changed and its gaps filled from none, then neighbours
 * that agree merged and pieces with nothing recorded dropped.  0, or
 * -ENOMEM with nothing changed.
 */
static int update(uintptr_t lo, uintptr_t hi, void (*change)(struct advice *, const void *),
                  const void *arg)
{
    struct span *out = malloc((4 * nspans + 1) * sizeof(*out));
    size_t n = 0, kept = 0;
    uintptr_t at = lo;

    if (!out)
        return -ENOMEM;
#define PUSH(l, h, adv)                                                                            \
    do {                                                                                           \
        out[n] = (struct span){ .lo = (l), .hi = (h), .a = (adv) };                                 \
        n++;                                                                                       \
    } while (0)
    for (size_t i = 0; i < nspans; i++) {
        struct span *s = &spans[i];
        uintptr_t a = s->lo > lo ? s->lo : lo, b = s->hi < hi ? s->hi : hi;

        if (s->lo < lo)
            PUSH(s->lo, s->hi < lo ? s->hi : lo, s->a);
        if (a < b) {
            if (at < a) {
                PUSH(at, a, none);
                change(&out[n - 1].a, arg);
            }
            PUSH(a, b, s->a);
            change(&out[n - 1].a, arg);
            at = b;
        }
        if (s->hi > hi) {
            if (at < hi) {
                PUSH(at, hi, none);
                change(&out[n - 1].a, arg);
                at = hi;
            }
            PUSH(s->lo > hi ? s->lo : hi, s->hi, s->a);
        }
    }
    if (at < hi) {
        PUSH(at, hi, none);
        change(&out[n - 1].a, arg);
    }
#undef PUSH
    for (size_t i = 0; i < n; i++) {
        if (same(&out[i].a, &none))
            continue;
        if (kept && out[kept - 1].hi == out[i].lo && same(&out[kept - 1].a, &out[i].a))
            out[kept - 1].hi = out[i].hi;
        else
            out[kept++] = out[i];
    }
    free(spans);
    spans = out;
    nspans = kept;
    return 0;
}

struct advise_arg {
    enum cudaMemoryAdvise advice;
    struct cudaMemLocation loc;
};

static void advise(struct advice *a, const void *arg)
{
    const struct advise_arg *x = arg;
    bool host = x->loc.type == cudaMemLocationTypeHost;

    switch (x->advice) {
    case cudaMemAdviseSetReadMostly: a->read_mostly = true; break;
    case cudaMemAdviseUnsetReadMostly: a->read_mostly = false; break;
    case cudaMemAdviseSetPreferredLocation: a->preferred = x->loc; break;
    case cudaMemAdviseUnsetPreferredLocation: a->preferred = none.preferred; break;
    case cudaMemAdviseSetAccessedBy:
    case cudaMemAdviseUnsetAccessedBy:
        if (host)
            a->accessed_by_host = x->advice == cudaMemAdviseSetAccessedBy;
        else if (x->loc.id >= 0 && x->loc.id < 64)
            a->accessed_by = x->advice == cudaMemAdviseSetAccessedBy
                             ? a->accessed_by | 1ull << x->loc.id
                             : a->accessed_by & ~(1ull << x->loc.id);
        break;
    default: break;
    }
}

/*
 * The location CUDA records: the host NUMA node "closest to the calling
 * thread's CPU" for cudaMemLocationTypeHostNumaCurrent (this machine's
 * node: in a guest, the guest's).
 */
static struct cudaMemLocation resolved(struct cudaMemLocation l)
{
    unsigned int cpu, node;

    if (l.type != cudaMemLocationTypeHostNumaCurrent)
        return l;
    return (struct cudaMemLocation){ cudaMemLocationTypeHostNuma,
                                     getcpu(&cpu, &node) == 0 ? (int)node : 0 };
}

static void prefetched(struct advice *a, const void *arg)
{
    a->prefetched = *(const struct cudaMemLocation *)arg;
}

int vgpu_advice_set(const void *p, size_t n, enum cudaMemoryAdvise advice, struct cudaMemLocation loc)
{
    struct advise_arg x = { advice, resolved(loc) };
    uintptr_t lo, hi;
    int rc;

    if (!pages(p, n, &lo, &hi))
        return -EINVAL;
    pthread_mutex_lock(&advice_lock);
    rc = update(lo, hi, advise, &x);
    pthread_mutex_unlock(&advice_lock);
    return rc;
}

int vgpu_advice_prefetched(const void *p, size_t n, struct cudaMemLocation loc)
{
    uintptr_t lo, hi;
    int rc;

    if (!pages(p, n, &lo, &hi))
        return -EINVAL;
    loc = resolved(loc);
    pthread_mutex_lock(&advice_lock);
    rc = update(lo, hi, prefetched, &loc);
    pthread_mutex_unlock(&advice_lock);
    return rc;
}

static void forget(struct advice *a, const void *arg)
{
    (void)arg;
    *a = none;
}

void vgpu_advice_forget(const void *p, size_t n)
{
    uintptr_t lo, hi;

    if (!pages(p, n, &lo, &hi))
        return;
    pthread_mutex_lock(&advice_lock);
    /* without memory for the rebuild, the spans inside go one by one */
    if (update(lo, hi, forget, NULL)) {
        for (size_t i = 0; i < nspans;) {
            if (spans[i].lo >= lo && spans[i].hi <= hi)
                memmove(&spans[i], &spans[i + 1], (--nspans - i) * sizeof(*spans));
            else
                i++;
        }
    }
    pthread_mutex_unlock(&advice_lock);
}

/* ---- the queries ---- */

/* all as far as a, the next piece of the range, agrees with it */
static void fold(struct advice *all, const struct advice *a)
{
    all->read_mostly &= a->read_mostly;
    all->accessed_by &= a->accessed_by;
    all->accessed_by_host &= a->accessed_by_host;
    if (!same_location(all->preferred, a->preferred))
        all->preferred = none.preferred;
    if (!same_location(all->prefetched, a->prefetched))
        all->prefetched = none.prefetched;
}

/*
 * What every page of [lo, hi) agrees on: read-mostly only if all are, the
 * devices advised for all, a location only where all pages have the same
 * (type cudaMemLocationTypeInvalid otherwise).  advice_lock held.
 */
static struct advice agree(uintptr_t lo, uintptr_t hi)
{
    struct advice all = none;
    uintptr_t at = lo;
    size_t i = 0;
    bool first = true;

    while (at < hi) {
        const struct advice *a = &none;         /* a gap: nothing recorded */
        uintptr_t next = hi;

        while (i < nspans && spans[i].hi <= at)
            i++;
        if (i < nspans && spans[i].lo <= at) {
            a = &spans[i].a;
            next = spans[i].hi;
        } else if (i < nspans && spans[i].lo < hi) {
            next = spans[i].lo;
        }
        if (first)
            all = *a;
        else
            fold(&all, a);
        first = false;
        at = next;
    }
    return all;
}

/* A location as the device ids of the older attributes: a GPU, the CPU, or none. */
static int device_id(struct cudaMemLocation l)
{
    switch (l.type) {
    case cudaMemLocationTypeDevice: return l.id;
    case cudaMemLocationTypeHost:
    case cudaMemLocationTypeHostNuma:
    case cudaMemLocationTypeHostNumaCurrent: return cudaCpuDeviceId;
    default: return cudaInvalidDeviceId;
    }
}

/* The id of a location's _Id attribute: a device or a NUMA node; to be ignored otherwise. */
static int location_id(struct cudaMemLocation l)
{
    return l.type == cudaMemLocationTypeDevice || l.type == cudaMemLocationTypeHostNuma
           ? l.id : cudaInvalidDeviceId;
}

/* One attribute of what the range agrees on into data (size bytes); a status. */
static cudaError_t answer(const struct advice *all, enum cudaMemRangeAttribute attr, void *data,
                          size_t size)
{
    int v;

    if (!data)
        return cudaErrorInvalidValue;
    switch (attr) {
    case cudaMemRangeAttributeAccessedBy: {
        int *out = data;
        size_t n = size / sizeof(int), k = 0;

        if (!n || size % sizeof(int))
            return cudaErrorInvalidValue;
        if (all->accessed_by_host)
            out[k++] = cudaCpuDeviceId;
        for (int d = 0; d < 64 && k < n; d++)
            if (all->accessed_by & 1ull << d)
                out[k++] = d;
        while (k < n)
            out[k++] = cudaInvalidDeviceId;
        return cudaSuccess;
    }
    case cudaMemRangeAttributePreferredLocationType:
    case cudaMemRangeAttributeLastPrefetchLocationType: {
        enum cudaMemLocationType t = attr == cudaMemRangeAttributePreferredLocationType
                                     ? all->preferred.type : all->prefetched.type;

        if (size != sizeof(t))
            return cudaErrorInvalidValue;
        memcpy(data, &t, sizeof(t));
        return cudaSuccess;
    }
    case cudaMemRangeAttributeReadMostly: v = all->read_mostly; break;
    case cudaMemRangeAttributePreferredLocation: v = device_id(all->preferred); break;
    case cudaMemRangeAttributeLastPrefetchLocation: v = device_id(all->prefetched); break;
    case cudaMemRangeAttributePreferredLocationId: v = location_id(all->preferred); break;
    case cudaMemRangeAttributeLastPrefetchLocationId: v = location_id(all->prefetched); break;
    default: return cudaErrorInvalidValue;
    }
    if (size != sizeof(v))
        return cudaErrorInvalidValue;
    memcpy(data, &v, sizeof(v));
    return cudaSuccess;
}

/* The attributes of [devPtr, +count), which must be managed memory of this program's. */
static cudaError_t range_attrs(void **data, const size_t *sizes,
                               const enum cudaMemRangeAttribute *attrs, size_t n,
                               const void *devPtr, size_t count)
{
    struct advice all;
    uintptr_t lo, hi;
    cudaError_t st = cudaSuccess;

    vgpu_shim_connect();
    if (vgpu_shim_init_status() != cudaSuccess)
        return (cudaError_t)vgpu_shim_status(vgpu_shim_init_status());
    if (!data || !sizes || !attrs || !n || !devPtr || !count || !vgpu_managed_holds(devPtr, count) ||
        !pages(devPtr, count, &lo, &hi))
        return (cudaError_t)vgpu_shim_status(cudaErrorInvalidValue);
    pthread_mutex_lock(&advice_lock);
    all = agree(lo, hi);
    pthread_mutex_unlock(&advice_lock);
    for (size_t i = 0; i < n && st == cudaSuccess; i++)
        st = answer(&all, attrs[i], data[i], sizes[i]);
    return st == cudaSuccess ? st : (cudaError_t)vgpu_shim_status(st);
}

VGPU_EXPORT cudaError_t cudaMemRangeGetAttribute(void *data, size_t dataSize,
                                                 enum cudaMemRangeAttribute attribute,
                                                 const void *devPtr, size_t count)
{
    return range_attrs(&data, &dataSize, &attribute, 1, devPtr, count);
}

VGPU_EXPORT cudaError_t cudaMemRangeGetAttributes(void **data, size_t *dataSizes,
                                                  enum cudaMemRangeAttribute *attributes,
                                                  size_t numAttributes, const void *devPtr,
                                                  size_t count)
{
    return range_attrs(data, dataSizes, attributes, numAttributes, devPtr, count);
}
