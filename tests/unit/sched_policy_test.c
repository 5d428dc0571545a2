/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduling policy (server/sched_policy.c) over hand-made snapshots:
 * strict priority, FIFO within a class, the hold after a class's last work,
 * the starvation rule and the time it asks to be asked again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "scheduler.h"

#define MS 1000000ull

static struct vgpu_sched_params params(void)
{
    struct vgpu_sched_params p;

    vgpu_sched_params_default(&p);
    p.hold_ns = 2 * MS;
    p.starve_ns = 50 * MS;
    return p;
}

static void test_idle(void **state)
{
    struct vgpu_sched_params p = params();
    struct vgpu_sched_view v = { .now_ns = 1000 * MS };
    uint32_t out[8];
    uint64_t re;

    (void)state;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 0);
    assert_true(re == UINT64_MAX);
}

static void test_fifo_within_class(void **state)
{
    struct vgpu_sched_params p = params();
    /* given out of order: the grant order must follow the tickets */
    struct vgpu_sched_waiter w[] = { { 7, 30, 0 }, { 3, 10, 0 }, { 5, 20, 0 } };
    struct vgpu_sched_view v = { .now_ns = 1000 * MS };
    uint32_t out[8];
    uint64_t re;

    (void)state;
    v.cls[VGPU_PRIO_LOW].w = w;
    v.cls[VGPU_PRIO_LOW].nw = 3;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 3);
    assert_int_equal(out[0], 3);
    assert_int_equal(out[1], 5);
    assert_int_equal(out[2], 7);
    /* max bounds what one decision hands out, oldest first */
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 2, &re), 2);
    assert_int_equal(out[0], 3);
    assert_int_equal(out[1], 5);
}

static void test_strict_priority(void **state)
{
    struct vgpu_sched_params p = params();
    struct vgpu_sched_waiter hi[] = { { 1, 50, 999 * MS } };
    struct vgpu_sched_waiter me[] = { { 2, 10, 990 * MS } };
    struct vgpu_sched_waiter lo[] = { { 3, 5, 995 * MS } };
    struct vgpu_sched_view v = { .now_ns = 1000 * MS };
    uint32_t out[8];
    uint64_t re;

    (void)state;
    v.cls[VGPU_PRIO_HIGH].w = hi;
    v.cls[VGPU_PRIO_HIGH].nw = 1;
    v.cls[VGPU_PRIO_MEDIUM].w = me;
    v.cls[VGPU_PRIO_MEDIUM].nw = 1;
    v.cls[VGPU_PRIO_LOW].w = lo;
    v.cls[VGPU_PRIO_LOW].nw = 1;
    /* high first although it came last */
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 1);
    assert_int_equal(out[0], 1);
    /* the others will be looked at again when they reach starvation */
    assert_true(re == 990 * MS + p.starve_ns);
    /* without high, medium goes before low */
    v.cls[VGPU_PRIO_HIGH].nw = 0;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 1);
    assert_int_equal(out[0], 2);
}

static void test_work_on_gpu_blocks_lower(void **state)
{
    struct vgpu_sched_params p = params();
    struct vgpu_sched_waiter lo[] = { { 3, 5, 995 * MS } };
    struct vgpu_sched_view v = { .now_ns = 1000 * MS };
    uint32_t out[8];
    uint64_t re;

    (void)state;
    v.cls[VGPU_PRIO_LOW].w = lo;
    v.cls[VGPU_PRIO_LOW].nw = 1;
    v.cls[VGPU_PRIO_HIGH].queued = 1;
    v.cls[VGPU_PRIO_HIGH].last_active_ns = 999 * MS;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 0);
    /* high's work can end at any time: only starvation is a time to recheck */
    assert_true(re == 995 * MS + p.starve_ns);
}

static void test_hold_after_higher_work(void **state)
{
    struct vgpu_sched_params p = params();
    struct vgpu_sched_waiter lo[] = { { 3, 5, 999 * MS } };
    struct vgpu_sched_view v = { .now_ns = 1000 * MS };
    uint32_t out[8];
    uint64_t re;

    (void)state;
    v.cls[VGPU_PRIO_LOW].w = lo;
    v.cls[VGPU_PRIO_LOW].nw = 1;
    /* high finished 1 ms ago: between two of its requests, low still waits */
    v.cls[VGPU_PRIO_HIGH].last_active_ns = 999 * MS;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 0);
    assert_true(re == 999 * MS + p.hold_ns);
    /* the hold ran out: low goes */
    v.now_ns = 999 * MS + p.hold_ns;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 1);
    assert_int_equal(out[0], 3);
    /* a hold of a lower class never blocks a higher one */
    v.now_ns = 1000 * MS;
    v.cls[VGPU_PRIO_HIGH].last_active_ns = 0;
    v.cls[VGPU_PRIO_LOW].nw = 0;
    v.cls[VGPU_PRIO_LOW].last_active_ns = 999 * MS;
    v.cls[VGPU_PRIO_LOW].queued = 2;
    v.cls[VGPU_PRIO_HIGH].w = lo;
    v.cls[VGPU_PRIO_HIGH].nw = 1;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 1);
}

static void test_starvation(void **state)
{
    struct vgpu_sched_params p = params();
    struct vgpu_sched_waiter hi[] = { { 1, 100, 1000 * MS } };
    struct vgpu_sched_waiter lo[] = { { 4, 9, 950 * MS }, { 3, 8, 940 * MS } };
    struct vgpu_sched_view v = { .now_ns = 1000 * MS };
    uint32_t out[8];
    uint64_t re;

    (void)state;
    v.cls[VGPU_PRIO_HIGH].w = hi;
    v.cls[VGPU_PRIO_HIGH].nw = 1;
    v.cls[VGPU_PRIO_HIGH].queued = 3;
    v.cls[VGPU_PRIO_LOW].w = lo;
    v.cls[VGPU_PRIO_LOW].nw = 2;
    /* low's oldest has waited 60 ms >= 50: it goes with high; the other (49 ms) not yet */
    v.now_ns = 999 * MS;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 2);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 3);
    assert_true(re == 1000 * MS);
    /* once both have waited 50 ms, both go, oldest first */
    v.now_ns = 1000 * MS;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 3);
    assert_int_equal(out[1], 3);
    assert_int_equal(out[2], 4);
    /* a moment earlier, nobody from low */
    v.now_ns = 989 * MS;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 1);
    assert_true(re == 990 * MS);
}

/* A waiter that claims to have waited since time 0 and never takes its grant holds nobody up. */
static void test_starvation_no_queue_jumping(void **state)
{
    struct vgpu_sched_params p = params();
    struct vgpu_sched_waiter lo[] = { { 7, 0, 0 }, { 3, 8, 940 * MS } };
    struct vgpu_sched_view v = { .now_ns = 1000 * MS };
    uint32_t out[8];
    uint64_t re;

    (void)state;
    v.cls[VGPU_PRIO_HIGH].queued = 1;
    v.cls[VGPU_PRIO_LOW].w = lo;
    v.cls[VGPU_PRIO_LOW].nw = 2;
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 2);
    assert_int_equal(out[0], 7);
    assert_int_equal(out[1], 3);
}

static void test_starvation_each_class(void **state)
{
    struct vgpu_sched_params p = params();
    struct vgpu_sched_waiter me[] = { { 2, 7, 900 * MS } };
    struct vgpu_sched_waiter lo[] = { { 3, 5, 980 * MS } };
    struct vgpu_sched_view v = { .now_ns = 1000 * MS };
    uint32_t out[8];
    uint64_t re;

    (void)state;
    v.cls[VGPU_PRIO_HIGH].queued = 1;
    v.cls[VGPU_PRIO_MEDIUM].w = me;
    v.cls[VGPU_PRIO_MEDIUM].nw = 1;
    v.cls[VGPU_PRIO_LOW].w = lo;
    v.cls[VGPU_PRIO_LOW].nw = 1;
    /* medium starved behind high; low (20 ms) not yet, and medium is now busy above it */
    assert_int_equal(vgpu_sched_decide(&p, &v, out, 8, &re), 1);
    assert_int_equal(out[0], 2);
    assert_true(re == 980 * MS + p.starve_ns);
}

static void test_prio_names(void **state)
{
    (void)state;
    assert_int_equal(vgpu_prio_parse("high"), VGPU_PRIO_HIGH);
    assert_int_equal(vgpu_prio_parse("medium"), VGPU_PRIO_MEDIUM);
    assert_int_equal(vgpu_prio_parse("low"), VGPU_PRIO_LOW);
    assert_int_equal(vgpu_prio_parse("2"), VGPU_PRIO_HIGH);
    assert_int_equal(vgpu_prio_parse("0"), VGPU_PRIO_LOW);
    assert_int_equal(vgpu_prio_parse("3"), -1);
    assert_int_equal(vgpu_prio_parse("urgent"), -1);
    assert_int_equal(vgpu_prio_parse(""), -1);
    assert_string_equal(vgpu_prio_name(VGPU_PRIO_MEDIUM), "medium");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle),
        cmocka_unit_test(test_fifo_within_class),
        cmocka_unit_test(test_strict_priority),
        cmocka_unit_test(test_work_on_gpu_blocks_lower),
        cmocka_unit_test(test_hold_after_higher_work),
        cmocka_unit_test(test_starvation),
        cmocka_unit_test(test_starvation_each_class),
        cmocka_unit_test(test_starvation_no_queue_jumping),
        cmocka_unit_test(test_prio_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
