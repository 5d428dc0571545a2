/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's checks of virtual memory management (server/vmm.c): a
 * mapping outside the session's reservations, of a handle that is not the
 * session's, over another mapping or past its allocation is refused; mapped
 * memory is session memory for the range checks (server/tables.c) only
 * with access given and only until it is unmapped; physical memory is
 * uncharged only when no reference and no mapping holds it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../server/tables.c"
#include "../../server/vmm.c"

#define G 0x200000ull          /* 2 MiB, a granularity */
#define BASE 0x7f0000000000ull

int vgpu_log_level;
void vgpu_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

/* A session with [BASE, BASE + 4G) reserved and allocations 0x10 and 0x20 of G each. */
static void setup(struct vgpu_session *s)
{
    assert_int_equal(vgpu_vmm_reserve_add(s, BASE, 4 * G), 0);
    assert_int_equal(vgpu_vmm_alloc_add(s, 0x10, G), 0);
    assert_int_equal(vgpu_vmm_alloc_add(s, 0x20, G), 0);
}

static void test_map_checks(void **state)
{
    struct vgpu_session s = { 0 };

    (void)state;
    setup(&s);
    assert_int_equal(vgpu_vmm_map_check(&s, BASE, G, 0, 0x10), 0);
    /* outside the reservation, across its end, wrapping */
    assert_int_equal(vgpu_vmm_map_check(&s, BASE - G, G, 0, 0x10), -EFAULT);
    assert_int_equal(vgpu_vmm_map_check(&s, BASE + 3 * G, 2 * G, 0, 0x10), -EFAULT);
    assert_int_equal(vgpu_vmm_map_check(&s, UINT64_MAX - G + 2, G, 0, 0x10), -EFAULT);
    assert_int_equal(vgpu_vmm_map_check(&s, BASE, 0, 0, 0x10), -EFAULT);
    /* a handle the session never had (another session's is one) */
    assert_int_equal(vgpu_vmm_map_check(&s, BASE, G, 0, 0x30), -ENOENT);
    /* past the allocation's end, and an offset that would wrap */
    assert_int_equal(vgpu_vmm_map_check(&s, BASE, 2 * G, 0, 0x10), -ERANGE);
    assert_int_equal(vgpu_vmm_map_check(&s, BASE, G, G, 0x10), -ERANGE);
    assert_int_equal(vgpu_vmm_map_check(&s, BASE, G, UINT64_MAX, 0x10), -ERANGE);
    /* a double map */
    assert_int_equal(vgpu_vmm_map_add(&s, BASE, G, 0x10), 0);
    assert_int_equal(vgpu_vmm_map_check(&s, BASE, G, 0, 0x20), -EEXIST);
    assert_int_equal(vgpu_vmm_map_check(&s, BASE + G / 2, G, 0, 0x20), -EEXIST);
    assert_int_equal(vgpu_vmm_map_check(&s, BASE + G, G, 0, 0x20), 0);
    /* a reservation still mapped is not freed; a foreign one is not known */
    assert_int_equal(vgpu_vmm_reserve_check_free(&s, BASE, 4 * G), -EBUSY);
    assert_int_equal(vgpu_vmm_reserve_check_free(&s, BASE, 2 * G), -ENOENT);
    assert_int_equal(vgpu_vmm_reserve_check_free(&s, BASE + G, 4 * G), -ENOENT);
    vgpu_vmm_free(&s);
}

static void test_mapped_is_session_memory(void **state)
{
    struct vgpu_session s = { 0 };

    (void)state;
    setup(&s);
    assert_int_equal(vgpu_vmm_map_add(&s, BASE, G, 0x10), 0);
    /* mapped but no access yet: not the session's memory */
    assert_false(vgpu_range_check(&s, BASE, 16));
    assert_int_equal(vgpu_vmm_tiled(&s, BASE, G), 0);
    vgpu_vmm_set_access(&s, BASE, G, true);
    assert_true(vgpu_range_check(&s, BASE, G));
    assert_true(vgpu_range_check(&s, BASE + G, 0));      /* its end, empty */
    assert_false(vgpu_range_check(&s, BASE + G - 8, 16)); /* past it: the next chunk is not mapped */
    assert_true(vgpu_addr_check(&s, BASE + 100));
    /* the segment grows: a span across the seam is the session's */
    assert_int_equal(vgpu_vmm_map_add(&s, BASE + G, G, 0x20), 0);
    assert_false(vgpu_range_check(&s, BASE + G - 8, 16));
    vgpu_vmm_set_access(&s, BASE + G, G, true);
    assert_true(vgpu_range_check(&s, BASE + G - 8, 16));
    assert_true(vgpu_range_check(&s, BASE, 2 * G));
    assert_false(vgpu_range_check(&s, BASE, 2 * G + 1));
    assert_false(vgpu_range_check(&s, BASE + 8, UINT64_MAX));
    /* whole mappings only */
    assert_int_equal(vgpu_vmm_tiled(&s, BASE, G / 2), -EFAULT);
    assert_int_equal(vgpu_vmm_tiled(&s, BASE, 3 * G), -EFAULT);
    assert_int_equal(vgpu_vmm_tiled(&s, BASE + 2 * G, G), -EFAULT);
    assert_int_equal(vgpu_vmm_tiled(&s, BASE, 2 * G), 0);
    /* used after unmap: no longer the session's */
    assert_int_equal(vgpu_vmm_unmap(&s, BASE + G, G), 0);   /* the handle still holds it */
    assert_false(vgpu_range_check(&s, BASE + G, 16));
    assert_true(vgpu_range_check(&s, BASE, 16));
    assert_null(vgpu_vmm_map_at(&s, BASE + G));
    vgpu_vmm_free(&s);
}

static void test_references(void **state)
{
    struct vgpu_session s = { 0 };

    (void)state;
    setup(&s);
    assert_int_equal(vgpu_vmm_map_add(&s, BASE, G, 0x10), 0);
    /* released while mapped: the memory stays (charged) until unmapped */
    assert_int_equal(vgpu_vmm_alloc_put(&s, 0x10), 0);
    assert_null(vgpu_vmm_alloc_live(&s, 0x10));
    assert_int_equal(vgpu_vmm_map_check(&s, BASE + G, G, 0, 0x10), -ENOENT);
    /* retained again from its address */
    assert_int_equal(vgpu_vmm_alloc_retain(&s, 0x10), 0);
    assert_non_null(vgpu_vmm_alloc_live(&s, 0x10));
    assert_int_equal(vgpu_vmm_alloc_put(&s, 0x10), 0);
    assert_int_equal(vgpu_vmm_unmap(&s, BASE, G), G);
    assert_int_equal(vgpu_vmm_alloc_retain(&s, 0x10), -ENOENT);
    /* released and never mapped: gone at once; twice is nothing */
    assert_int_equal(vgpu_vmm_alloc_put(&s, 0x20), G);
    assert_int_equal(vgpu_vmm_alloc_put(&s, 0x20), 0);
    assert_int_equal(vgpu_vmm_reserve_check_free(&s, BASE, 4 * G), 0);
    vgpu_vmm_reserve_remove(&s, BASE);
    assert_int_equal(vgpu_vmm_reserve_check_free(&s, BASE, 4 * G), -ENOENT);
    assert_false(vgpu_vmm_reserved(&s, BASE));
    vgpu_vmm_free(&s);
}

/* A device reset forgets the tables with the charges (vgpu_session_reset_tables). */
static void test_reset(void **state)
{
    struct vgpu_session s = { 0 };

    (void)state;
    setup(&s);
    assert_int_equal(vgpu_vmm_map_add(&s, BASE, G, 0x10), 0);
    vgpu_vmm_set_access(&s, BASE, G, true);
    vgpu_session_reset_tables(&s);
    assert_false(vgpu_range_check(&s, BASE, 1));
    assert_null(s.vmm);
    free(s.ranges);
    free(s.handles);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_checks),
        cmocka_unit_test(test_mapped_is_session_memory),
        cmocka_unit_test(test_references),
        cmocka_unit_test(test_reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
