/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The session tables every guest value is checked against (server/tables.c):
 * ranges that cannot be escaped by overflow, handles of the right kind only,
 * the default-stream aliases.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../server/tables.c"

int vgpu_log_level;
void vgpu_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

static void test_ranges(void **state)
{
    struct vgpu_session s = { 0 };

    (void)state;
    assert_int_equal(vgpu_range_add(&s, 0x1000, 0x100, true), 0);
    assert_true(vgpu_range_check(&s, 0x1000, 0x100));
    assert_true(vgpu_range_check(&s, 0x10ff, 1));
    assert_true(vgpu_range_check(&s, 0x1100, 0));       /* end pointer, empty */
    assert_false(vgpu_range_check(&s, 0x10ff, 2));
    assert_false(vgpu_range_check(&s, 0xfff, 1));
    /* lengths that would wrap around the address space */
    assert_false(vgpu_range_check(&s, 0x1080, UINT64_MAX));
    assert_false(vgpu_range_check(&s, 0x1080, UINT64_MAX - 0x1000));
    assert_false(vgpu_range_check(&s, UINT64_MAX, 2));
    /* symbols can be checked against but not freed */
    assert_int_equal(vgpu_range_add(&s, 0x9000, 0x10, false), 0);
    assert_int_equal(vgpu_range_remove(&s, 0x9000), -EFAULT);
    assert_int_equal(vgpu_range_remove(&s, 0x1010), -EFAULT);  /* not the start */
    assert_int_equal(vgpu_range_remove(&s, 0x1000), 0);
    assert_false(vgpu_range_check(&s, 0x1000, 1));
    free(s.ranges);
}

static void test_handles(void **state)
{
    struct vgpu_session s = { 0 };
    void *native = NULL;
    uint64_t wire = 0;

    (void)state;
    assert_int_equal(vgpu_session_ops.handle_out(&s, VGPU_CUDART_H_STREAM, (void *)0x5000, &wire), 0);
    assert_int_equal(wire, 0x5000);
    assert_int_equal(vgpu_session_ops.handle_in(&s, VGPU_CUDART_H_STREAM, 0x5000, &native), 0);
    assert_ptr_equal(native, (void *)0x5000);
    /* the same value is not an event */
    assert_int_equal(vgpu_session_ops.handle_in(&s, VGPU_CUDART_H_EVENT, 0x5000, &native), -ENOENT);
    assert_int_equal(vgpu_session_ops.handle_in(&s, VGPU_CUDART_H_STREAM, 0x6000, &native), -ENOENT);
    /* NULL and the default-stream aliases always pass */
    assert_int_equal(vgpu_session_ops.handle_in(&s, VGPU_CUDART_H_STREAM, 0, &native), 0);
    assert_int_equal(vgpu_session_ops.handle_in(&s, VGPU_CUDART_H_STREAM, 1, &native), 0);
    assert_int_equal(vgpu_session_ops.handle_in(&s, VGPU_CUDART_H_STREAM, 2, &native), 0);
    assert_int_equal(vgpu_session_ops.handle_in(&s, VGPU_CUDART_H_EVENT, 2, &native), -ENOENT);
    /* device addresses */
    assert_int_equal(vgpu_session_ops.devptr_in(&s, 0x7000, &native), -EFAULT);
    assert_int_equal(vgpu_range_add(&s, 0x7000, 0x40, true), 0);
    assert_int_equal(vgpu_session_ops.devptr_in(&s, 0x7020, &native), 0);
    assert_int_equal(vgpu_session_ops.devptr_in(&s, 0, &native), 0);
    free(s.ranges);
    free(s.handles);
}

/*
 * The driver API's handles check the same table: a stream the runtime made
 * is a CUstream, a CUkernel stands for a CUfunction, and a driver kind the
 * runtime lacks (a module) is a kind of its own.
 */
static void test_driver_handles(void **state)
{
    struct vgpu_session s = { 0 };
    const struct vgpu_replay_ops *drv = &vgpu_session_cuda_ops;
    void *native = NULL;
    uint64_t wire = 0;

    (void)state;
    assert_int_equal(vgpu_cuda_kind(VGPU_CUDA_H_STREAM), VGPU_CUDART_H_STREAM);
    assert_int_equal(vgpu_cuda_kind(VGPU_CUDA_H_EVENT), VGPU_CUDART_H_EVENT);
    assert_true(vgpu_cuda_kind(VGPU_CUDA_H_MODULE) >= VGPU_CUDART_NHANDLE_KINDS);
    assert_int_equal(vgpu_cuda_kind(VGPU_CUDA_NHANDLE_KINDS), -1);
    assert_int_equal(vgpu_session_ops.handle_out(&s, VGPU_CUDART_H_STREAM, (void *)0x5000, &wire), 0);
    assert_int_equal(drv->handle_in(&s, VGPU_CUDA_H_STREAM, 0x5000, &native), 0);
    assert_int_equal(drv->handle_in(&s, VGPU_CUDA_H_EVENT, 0x5000, &native), -ENOENT);
    assert_int_equal(drv->handle_in(&s, VGPU_CUDA_H_STREAM, 2, &native), 0);   /* CU_STREAM_PER_THREAD */
    assert_int_equal(drv->handle_out(&s, VGPU_CUDA_H_KERNEL, (void *)0x8000, &wire), 0);
    assert_int_equal(drv->handle_in(&s, VGPU_CUDA_H_FUNCTION, 0x8000, &native), 0);
    assert_int_equal(drv->handle_in(&s, VGPU_CUDA_H_MODULE, 0x8000, &native), -ENOENT);
    assert_int_equal(drv->handle_out(&s, VGPU_CUDA_H_MODULE, (void *)0x9000, &wire), 0);
    assert_int_equal(drv->handle_in(&s, VGPU_CUDA_H_MODULE, 0x9000, &native), 0);
    assert_int_equal(drv->handle_in(&s, VGPU_CUDA_H_LIBRARY, 0x9000, &native), -ENOENT);
    /* a module is not a runtime handle of the same number */
    assert_int_equal(vgpu_session_ops.handle_in(&s, vgpu_cuda_kind(VGPU_CUDA_H_MODULE) - VGPU_CUDART_NHANDLE_KINDS,
                                                0x9000, &native), -ENOENT);
    free(s.handles);
}

/*
 * A bare address must be a byte of an allocation; a span with its length is
 * checked whole, and an empty one may sit at the end (native CUDA accepts a
 * zero-byte memset there).  The end pointer used to pass as a bare address.
 */
static void test_addresses_and_spans(void **state)
{
    struct vgpu_session s = { 0 };
    void *native = NULL;

    (void)state;
    assert_int_equal(vgpu_range_add(&s, 0x7000, 0x40, true), 0);
    assert_int_equal(vgpu_range_add(&s, 0x7040, 0x40, true), 0);   /* adjacent */
    assert_true(vgpu_addr_check(&s, 0x7000));
    assert_true(vgpu_addr_check(&s, 0x707f));
    assert_false(vgpu_addr_check(&s, 0x7080));                      /* end pointer */
    assert_false(vgpu_addr_check(&s, 0x6fff));
    assert_int_equal(vgpu_session_ops.devptr_in(&s, 0x7080, &native), -EFAULT);
    assert_int_equal(vgpu_session_ops.devptr_in(&s, 0x703f, &native), 0);
    assert_ptr_equal(native, (void *)0x703f);

    /* spans */
    assert_int_equal(vgpu_session_ops.range_in(&s, 0x7000, 0x40, &native), 0);
    assert_int_equal(vgpu_session_ops.range_in(&s, 0x7040, 0x40, &native), 0);
    assert_int_equal(vgpu_session_ops.range_in(&s, 0x7030, 0x11, &native), -EFAULT);
    /* two allocations that happen to touch are still two: a span may not cross */
    assert_int_equal(vgpu_session_ops.range_in(&s, 0x7000, 0x80, &native), -EFAULT);
    assert_int_equal(vgpu_session_ops.range_in(&s, 0x7000, UINT64_MAX, &native), -EFAULT);
    assert_int_equal(vgpu_session_ops.range_in(&s, UINT64_MAX, 1, &native), -EFAULT);
    /* empty spans: inside or at an end, never outside */
    assert_int_equal(vgpu_session_ops.range_in(&s, 0x7080, 0, &native), 0);
    assert_int_equal(vgpu_session_ops.range_in(&s, 0x7081, 0, &native), -EFAULT);
    assert_int_equal(vgpu_session_ops.range_in(&s, 0x6fff, 0, &native), -EFAULT);
    /* NULL passes: the runtime answers it as natively */
    assert_int_equal(vgpu_session_ops.range_in(&s, 0, 16, &native), 0);
    assert_null(native);
    free(s.ranges);
}

/* Span sizes from guest values (include/vgpu/callgen.h): no overflow gets through. */
static void test_span_arithmetic(void **state)
{
    uint64_t span = 1;

    (void)state;
    assert_int_equal(vgpu_span_1d(16, 4, &span), 0);
    assert_int_equal(span, 64);
    assert_int_equal(vgpu_span_1d(UINT64_MAX / 4 + 1, 4, &span), -EINVAL);
    assert_int_equal(vgpu_span_1d(UINT64_MAX, 1, &span), 0);
    assert_int_equal(vgpu_span_2d(512, 100, 7, &span), 0);
    assert_int_equal(span, 6 * 512 + 100);
    assert_int_equal(vgpu_span_2d(512, 512, 1, &span), 0);
    assert_int_equal(span, 512);
    assert_int_equal(vgpu_span_2d(0, 0, 5, &span), 0);                /* empty */
    assert_int_equal(span, 0);
    assert_int_equal(vgpu_span_2d(8, 16, 0, &span), 0);
    assert_int_equal(span, 0);
    assert_int_equal(vgpu_span_2d(8, 9, 2, &span), -EINVAL);          /* width > pitch */
    assert_int_equal(vgpu_span_2d((uint64_t)1 << 32, 1, ((uint64_t)1 << 32) + 2, &span), -EINVAL);
    assert_int_equal(vgpu_span_2d(UINT64_MAX, UINT64_MAX, 2, &span), -EINVAL);  /* the + overflows */
    assert_int_equal(vgpu_span_2d(UINT64_MAX, 1, 2, &span), -EINVAL);
    assert_int_equal(vgpu_span_2d(UINT64_MAX - 1, 1, 2, &span), 0);
    assert_int_equal(span, UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_driver_handles),
        cmocka_unit_test(test_addresses_and_spans),
        cmocka_unit_test(test_span_arithmetic),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
