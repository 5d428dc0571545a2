/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the program told CUDA about its managed memory, through either
 * library: the advice (cudaMemAdvise, cuMemAdvise) and the locations it
 * prefetched to (cudaMemPrefetchAsync, cuMemPrefetchAsync and the batched
 * forms), kept per span of pages as CUDA keeps them per page, so that the
 * range queries (cudaMemRangeGetAttribute(s), cuMemRangeGetAttribute(s))
 * answer from here without a call.  The shadow (managed.c) neither
 * migrates nor duplicates pages, so these records are all the attributes
 * can report, and all CUDA reports too: what was asked, not where the
 * bytes are.  Values are both APIs' (managed.h).
 *
 * The spans are sorted, disjoint, page-aligned, and hold only pages with
 * something recorded; a page in none has no advice and was never
 * prefetched.  They go when their managed range is removed
 * (vgpu_advice_forget, from managed.c).  One lock, never held across a
 * call to the server.  Like managed.c's, the state is the process's, kept
 * by the copy that made the client.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_internal.h"
#include "managed.h"

struct advice {
    bool read_mostly;
    struct vgpu_mem_loc preferred;   /* type VGPU_LOC_INVALID: none */
    uint64_t accessed_by;               /* bit d: device d advised VGPU_ADVISE_SET_ACCESSED_BY
                                           (devices from 64 on are not recorded) */
    bool accessed_by_host;
    struct vgpu_mem_loc prefetched;  /* type VGPU_LOC_INVALID: never */
};

struct span {
    uintptr_t lo, hi;
    struct advice a;
};

static pthread_mutex_t advice_lock = PTHREAD_MUTEX_INITIALIZER;
static struct span *spans;
static size_t nspans;

static const struct advice none = { .preferred.type = VGPU_LOC_INVALID,
                                    .prefetched.type = VGPU_LOC_INVALID };

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

static bool same_location(struct vgpu_mem_loc x, struct vgpu_mem_loc y)
{
    return x.type == y.type && (x.type == VGPU_LOC_INVALID ||
                                x.type == VGPU_LOC_HOST || x.id == y.id);
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
    int advice;
    struct vgpu_mem_loc loc;
};

static void advise(struct advice *a, const void *arg)
{
    const struct advise_arg *x = arg;
    bool host = x->loc.type == VGPU_LOC_HOST;

    switch (x->advice) {
    case VGPU_ADVISE_SET_READ_MOSTLY: a->read_mostly = true; break;
    case VGPU_ADVISE_UNSET_READ_MOSTLY: a->read_mostly = false; break;
    case VGPU_ADVISE_SET_PREFERRED: a->preferred = x->loc; break;
    case VGPU_ADVISE_UNSET_PREFERRED: a->preferred = none.preferred; break;
    case VGPU_ADVISE_SET_ACCESSED_BY:
    case VGPU_ADVISE_UNSET_ACCESSED_BY:
        if (host)
            a->accessed_by_host = x->advice == VGPU_ADVISE_SET_ACCESSED_BY;
        else if (x->loc.id >= 0 && x->loc.id < 64)
            a->accessed_by = x->advice == VGPU_ADVISE_SET_ACCESSED_BY
                             ? a->accessed_by | 1ull << x->loc.id
                             : a->accessed_by & ~(1ull << x->loc.id);
        break;
    default: break;
    }
}

/*
 * The location CUDA records: the host NUMA node "closest to the calling
 * thread's CPU" for VGPU_LOC_HOST_NUMA_CURRENT (this machine's
 * node: in a guest, the guest's).
 */
static struct vgpu_mem_loc resolved(struct vgpu_mem_loc l)
{
    unsigned int cpu, node;

    if (l.type != VGPU_LOC_HOST_NUMA_CURRENT)
        return l;
    return (struct vgpu_mem_loc){ VGPU_LOC_HOST_NUMA,
                                     getcpu(&cpu, &node) == 0 ? (int)node : 0 };
}

static void prefetched(struct advice *a, const void *arg)
{
    a->prefetched = *(const struct vgpu_mem_loc *)arg;
}

int vgpu_managed_local_advise(struct vgpu_client *c, const void *p, size_t n, int advice,
                              struct vgpu_mem_loc loc)
{
    struct advise_arg x = { advice, resolved(loc) };
    uintptr_t lo, hi;
    int rc;

    (void)c;
    if (!pages(p, n, &lo, &hi))
        return -EINVAL;
    pthread_mutex_lock(&advice_lock);
    rc = update(lo, hi, advise, &x);
    pthread_mutex_unlock(&advice_lock);
    return rc;
}

int vgpu_managed_local_prefetched(struct vgpu_client *c, const void *p, size_t n,
                                  struct vgpu_mem_loc loc)
{
    uintptr_t lo, hi;
    int rc;

    (void)c;
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
 * (type VGPU_LOC_INVALID otherwise).  advice_lock held.
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
static int device_id(struct vgpu_mem_loc l)
{
    switch (l.type) {
    case VGPU_LOC_DEVICE: return l.id;
    case VGPU_LOC_HOST:
    case VGPU_LOC_HOST_NUMA:
    case VGPU_LOC_HOST_NUMA_CURRENT: return VGPU_CPU_DEVICE;
    default: return VGPU_INVALID_DEVICE;
    }
}

/* The id of a location's _Id attribute: a device or a NUMA node; to be ignored otherwise. */
static int location_id(struct vgpu_mem_loc l)
{
    return l.type == VGPU_LOC_DEVICE || l.type == VGPU_LOC_HOST_NUMA
           ? l.id : VGPU_INVALID_DEVICE;
}

/* One attribute of what the range agrees on into data (size bytes); a status. */
static int answer(const struct advice *all, int attr, void *data,
                          size_t size)
{
    int v;

    if (!data)
        return VGPU_RANGE_EINVAL;
    switch (attr) {
    case VGPU_RANGE_ACCESSED_BY: {
        int *out = data;
        size_t n = size / sizeof(int), k = 0;

        if (!n || size % sizeof(int))
            return VGPU_RANGE_EINVAL;
        if (all->accessed_by_host)
            out[k++] = VGPU_CPU_DEVICE;
        for (int d = 0; d < 64 && k < n; d++)
            if (all->accessed_by & 1ull << d)
                out[k++] = d;
        while (k < n)
            out[k++] = VGPU_INVALID_DEVICE;
        return 0;
    }
    case VGPU_RANGE_PREFERRED_TYPE:
    case VGPU_RANGE_LAST_PREFETCH_TYPE: {
        int t = attr == VGPU_RANGE_PREFERRED_TYPE
                                     ? all->preferred.type : all->prefetched.type;

        if (size != sizeof(t))
            return VGPU_RANGE_EINVAL;
        memcpy(data, &t, sizeof(t));
        return 0;
    }
    case VGPU_RANGE_READ_MOSTLY: v = all->read_mostly; break;
    case VGPU_RANGE_PREFERRED: v = device_id(all->preferred); break;
    case VGPU_RANGE_LAST_PREFETCH: v = device_id(all->prefetched); break;
    case VGPU_RANGE_PREFERRED_ID: v = location_id(all->preferred); break;
    case VGPU_RANGE_LAST_PREFETCH_ID: v = location_id(all->prefetched); break;
    default: return VGPU_RANGE_EINVAL;
    }
    if (size != sizeof(v))
        return VGPU_RANGE_EINVAL;
    memcpy(data, &v, sizeof(v));
    return 0;
}

/* The attributes of [p, +count), which must be managed memory of this program's. */
int vgpu_managed_local_range_attrs(struct vgpu_client *c, void **data, const size_t *sizes,
                                   const int *attrs, size_t n, const void *p, size_t count)
{
    struct advice all;
    uintptr_t lo, hi;
    int st = 0;

    if (!data || !sizes || !attrs || !n || !p || !count || !vgpu_managed_local_holds(c, p, count) ||
        !pages(p, count, &lo, &hi))
        return VGPU_RANGE_EINVAL;
    pthread_mutex_lock(&advice_lock);
    all = agree(lo, hi);
    pthread_mutex_unlock(&advice_lock);
    for (size_t i = 0; i < n && st == 0; i++)
        st = answer(&all, attrs[i], data[i], sizes[i]);
    return st;
}
