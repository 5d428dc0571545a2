/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The records of managed-memory advice and prefetches (shim/client/advice.c)
 * and the runtime's queries of them (shim/manual/advice.c), included
 * whole, the client's ops called directly: spans split, merged and dropped
 * as advice comes and goes, what a range agrees on, and the answers of
 * cudaMemRangeGetAttribute(s), over addresses that are never touched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../shim/client/advice.c"
#include "../../shim/manual/advice.c"

#define BASE ((uintptr_t)0x7e0000000000ull)
#define PAGES 64

/* what the two advice.c need of the rest: one managed range of PAGES pages at BASE */
int vgpu_shim_status(int st)
{
    return st;
}

void vgpu_shim_connect(void)
{
}

int vgpu_shim_init_status(void)
{
    return cudaSuccess;
}

struct vgpu_client *vgpu_client_get(void)
{
    return NULL;
}

int vgpu_client_managed_advise(struct vgpu_client *c, const void *p, size_t n, int advice,
                               struct vgpu_mem_loc loc)
{
    return vgpu_managed_local_advise(c, p, n, advice, loc);
}

int vgpu_client_managed_prefetched(struct vgpu_client *c, const void *p, size_t n,
                                   struct vgpu_mem_loc loc)
{
    return vgpu_managed_local_prefetched(c, p, n, loc);
}

int vgpu_client_managed_range_attrs(struct vgpu_client *c, void **data, const size_t *sizes,
                                    const int *attrs, size_t n, const void *p, size_t count)
{
    return vgpu_managed_local_range_attrs(c, data, sizes, attrs, n, p, count);
}

bool vgpu_managed_local_holds(struct vgpu_client *c, const void *p, size_t n)
{
    (void)c;
    uintptr_t a = (uintptr_t)p;

    return a >= BASE && a - BASE < PAGES * page() && n <= PAGES * page() - (a - BASE);
}

static const void *at(size_t pg)
{
    return (const void *)(BASE + pg * page());
}

static const struct cudaMemLocation dev0 = { cudaMemLocationTypeDevice, 0 };
static const struct cudaMemLocation dev1 = { cudaMemLocationTypeDevice, 1 };
static const struct cudaMemLocation host = { cudaMemLocationTypeHost, 0 };

static int attr(enum cudaMemRangeAttribute a, size_t pg, size_t npages)
{
    int v = 12345;

    assert_int_equal(cudaMemRangeGetAttribute(&v, sizeof(v), a, at(pg), npages * page()), cudaSuccess);
    return v;
}

static int teardown(void **state)
{
    (void)state;
    vgpu_advice_forget(at(0), PAGES * page());
    assert_int_equal(nspans, 0);
    return 0;
}

static void nothing_recorded(void **state)
{
    int acc[2];
    enum cudaMemLocationType t;

    (void)state;
    assert_int_equal(attr(cudaMemRangeAttributeReadMostly, 0, PAGES), 0);
    assert_int_equal(attr(cudaMemRangeAttributePreferredLocation, 0, PAGES), cudaInvalidDeviceId);
    assert_int_equal(attr(cudaMemRangeAttributeLastPrefetchLocation, 0, PAGES), cudaInvalidDeviceId);
    assert_int_equal(cudaMemRangeGetAttribute(&t, sizeof(t), cudaMemRangeAttributePreferredLocationType,
                                              at(0), page()), cudaSuccess);
    assert_int_equal(t, cudaMemLocationTypeInvalid);
    assert_int_equal(cudaMemRangeGetAttribute(acc, sizeof(acc), cudaMemRangeAttributeAccessedBy, at(0),
                                              page()), cudaSuccess);
    assert_int_equal(acc[0], cudaInvalidDeviceId);
    assert_int_equal(acc[1], cudaInvalidDeviceId);
}

static void split_merge_drop(void **state)
{
    (void)state;
    assert_int_equal(vgpu_advice_set(at(0), 8 * page(), cudaMemAdviseSetReadMostly, dev0), 0);
    assert_int_equal(vgpu_advice_set(at(4), 4 * page(), cudaMemAdviseUnsetReadMostly, dev0), 0);
    /* the unset half has nothing recorded: dropped */
    assert_int_equal(nspans, 1);
    assert_int_equal(spans[0].lo, BASE);
    assert_int_equal(spans[0].hi, BASE + 4 * page());
    assert_int_equal(attr(cudaMemRangeAttributeReadMostly, 0, 4), 1);
    assert_int_equal(attr(cudaMemRangeAttributeReadMostly, 0, 8), 0);
    assert_int_equal(attr(cudaMemRangeAttributeReadMostly, 3, 2), 0);
    /* the same advice on the neighbouring pages: one span again */
    assert_int_equal(vgpu_advice_set(at(4), 4 * page(), cudaMemAdviseSetReadMostly, dev1), 0);
    assert_int_equal(nspans, 1);
    assert_int_equal(spans[0].hi, BASE + 8 * page());
    /* a hole in the middle of it: three spans */
    assert_int_equal(vgpu_advice_set(at(2), page(), cudaMemAdviseSetPreferredLocation, dev1), 0);
    assert_int_equal(nspans, 3);
    assert_int_equal(attr(cudaMemRangeAttributePreferredLocation, 2, 1), 1);
    assert_int_equal(attr(cudaMemRangeAttributePreferredLocation, 1, 2), cudaInvalidDeviceId);
    assert_int_equal(attr(cudaMemRangeAttributeReadMostly, 0, 8), 1);
    /* advice over gaps and spans at once, starting and ending in gaps */
    assert_int_equal(vgpu_advice_set(at(6), 10 * page(), cudaMemAdviseSetAccessedBy, dev0), 0);
    assert_int_equal(nspans, 5);
    for (size_t i = 1; i < nspans; i++)
        assert_true(spans[i - 1].hi <= spans[i].lo);
    assert_int_equal(attr(cudaMemRangeAttributeReadMostly, 6, 10), 0);
    assert_int_equal(attr(cudaMemRangeAttributeReadMostly, 6, 2), 1);
}

static void unaligned_ranges_are_whole_pages(void **state)
{
    int v = 0;

    (void)state;
    /* a byte of page 3 advises all of it; a query of a byte of it sees all of it */
    assert_int_equal(vgpu_advice_set((const char *)at(3) + 100, 1, cudaMemAdviseSetReadMostly, dev0), 0);
    assert_int_equal(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeReadMostly,
                                              (const char *)at(3) + page() - 1, 1), cudaSuccess);
    assert_int_equal(v, 1);
    assert_int_equal(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeReadMostly,
                                              (const char *)at(3) + page() - 1, 2), cudaSuccess);
    assert_int_equal(v, 0);
}

static void locations_and_prefetches(void **state)
{
    enum cudaMemLocationType t;
    int acc[4];

    (void)state;
    assert_int_equal(vgpu_advice_prefetched(at(0), 4 * page(), dev1), 0);
    assert_int_equal(vgpu_advice_prefetched(at(4), 4 * page(), host), 0);
    assert_int_equal(attr(cudaMemRangeAttributeLastPrefetchLocation, 0, 4), 1);
    assert_int_equal(attr(cudaMemRangeAttributeLastPrefetchLocationId, 0, 4), 1);
    assert_int_equal(attr(cudaMemRangeAttributeLastPrefetchLocation, 4, 4), cudaCpuDeviceId);
    assert_int_equal(attr(cudaMemRangeAttributeLastPrefetchLocation, 0, 8), cudaInvalidDeviceId);
    assert_int_equal(cudaMemRangeGetAttribute(&t, sizeof(t), cudaMemRangeAttributeLastPrefetchLocationType,
                                              at(4), page()), cudaSuccess);
    assert_int_equal(t, cudaMemLocationTypeHost);
    /* a later prefetch of all: one location again */
    assert_int_equal(vgpu_advice_prefetched(at(0), 8 * page(), dev0), 0);
    assert_int_equal(attr(cudaMemRangeAttributeLastPrefetchLocation, 0, 8), 0);
    assert_int_equal(nspans, 1);
    /* accessed by: the devices advised for every page, then cudaInvalidDeviceId */
    assert_int_equal(vgpu_advice_set(at(0), 8 * page(), cudaMemAdviseSetAccessedBy, dev1), 0);
    assert_int_equal(vgpu_advice_set(at(0), 4 * page(), cudaMemAdviseSetAccessedBy, dev0), 0);
    assert_int_equal(vgpu_advice_set(at(0), 8 * page(), cudaMemAdviseSetAccessedBy, host), 0);
    assert_int_equal(cudaMemRangeGetAttribute(acc, sizeof(acc), cudaMemRangeAttributeAccessedBy, at(0),
                                              8 * page()), cudaSuccess);
    assert_int_equal(acc[0], cudaCpuDeviceId);
    assert_int_equal(acc[1], 1);
    assert_int_equal(acc[2], cudaInvalidDeviceId);
    assert_int_equal(acc[3], cudaInvalidDeviceId);
    assert_int_equal(cudaMemRangeGetAttribute(acc, sizeof(int), cudaMemRangeAttributeAccessedBy, at(0),
                                              4 * page()), cudaSuccess);
    assert_int_equal(acc[0], cudaCpuDeviceId);
    assert_int_equal(vgpu_advice_set(at(0), 8 * page(), cudaMemAdviseUnsetAccessedBy, dev1), 0);
    assert_int_equal(cudaMemRangeGetAttribute(acc, 2 * sizeof(int), cudaMemRangeAttributeAccessedBy,
                                              at(0), 4 * page()), cudaSuccess);
    assert_int_equal(acc[0], cudaCpuDeviceId);
    assert_int_equal(acc[1], 0);
}

static void several_at_once(void **state)
{
    int rm = -1, pl = -1, lp = -1;
    void *data[3] = { &rm, &pl, &lp };
    size_t sizes[3] = { 4, 4, 4 };
    enum cudaMemRangeAttribute attrs[3] = { cudaMemRangeAttributeReadMostly,
                                            cudaMemRangeAttributePreferredLocation,
                                            cudaMemRangeAttributeLastPrefetchLocation };

    (void)state;
    assert_int_equal(vgpu_advice_set(at(10), page(), cudaMemAdviseSetPreferredLocation, host), 0);
    assert_int_equal(cudaMemRangeGetAttributes(data, sizes, attrs, 3, at(10), page()), cudaSuccess);
    assert_int_equal(rm, 0);
    assert_int_equal(pl, cudaCpuDeviceId);
    assert_int_equal(lp, cudaInvalidDeviceId);
    /* unset: nothing left to record */
    assert_int_equal(vgpu_advice_set(at(10), page(), cudaMemAdviseUnsetPreferredLocation, host), 0);
    assert_int_equal(nspans, 0);
}

static void refused(void **state)
{
    int v;
    long long big;
    void *data[1] = { &v };
    size_t sizes[1] = { 4 };
    enum cudaMemRangeAttribute bad[1] = { (enum cudaMemRangeAttribute)99 };

    (void)state;
    assert_int_equal(cudaMemRangeGetAttribute(&big, sizeof(big), cudaMemRangeAttributeReadMostly, at(0),
                                              page()), cudaErrorInvalidValue);
    assert_int_equal(cudaMemRangeGetAttribute(&v, 6, cudaMemRangeAttributeAccessedBy, at(0), page()),
                     cudaErrorInvalidValue);
    assert_int_equal(cudaMemRangeGetAttribute(NULL, 4, cudaMemRangeAttributeReadMostly, at(0), page()),
                     cudaErrorInvalidValue);
    assert_int_equal(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeReadMostly, at(0), 0),
                     cudaErrorInvalidValue);
    /* not managed memory, or running past it */
    assert_int_equal(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeReadMostly, &v, sizeof(v)),
                     cudaErrorInvalidValue);
    assert_int_equal(cudaMemRangeGetAttribute(&v, 4, cudaMemRangeAttributeReadMostly, at(PAGES - 1),
                                              2 * page()), cudaErrorInvalidValue);
    assert_int_equal(cudaMemRangeGetAttributes(data, sizes, bad, 1, at(0), page()), cudaErrorInvalidValue);
    assert_int_equal(cudaMemRangeGetAttributes(data, sizes, bad, 0, at(0), page()), cudaErrorInvalidValue);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(nothing_recorded, teardown),
        cmocka_unit_test_teardown(split_merge_drop, teardown),
        cmocka_unit_test_teardown(unaligned_ranges_are_whole_pages, teardown),
        cmocka_unit_test_teardown(locations_and_prefetches, teardown),
        cmocka_unit_test_teardown(several_at_once, teardown),
        cmocka_unit_test_teardown(refused, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
