/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's own reader of LaunchArgs (server/manual/launch_args.c)
 * against protobuf-c's unpacker: on well-formed messages, and on many
 * truncated, bit-flipped and spliced ones, both accept or both refuse, and
 * what they read is the same.  Run under ASan to see that the reader stays
 * inside its input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "launch_args.h"
#include "manual.pb-c.h"
#include "xorshift.h"


/* A value of some typical size: small, 32-bit, 64-bit. */
static uint64_t value(void)
{
    switch (xorshift() % 4) {
    case 0: return xorshift() % 4;
    case 1: return xorshift() % 1024;
    case 2: return (uint32_t)xorshift();
    default: return xorshift();
    }
}

static size_t make(uint8_t *buf, size_t cap)
{
    Vgpu__Manual__LaunchArgs a = VGPU__MANUAL__LAUNCH_ARGS__INIT;
    Vgpu__Manual__Dim3 g = VGPU__MANUAL__DIM3__INIT, b = VGPU__MANUAL__DIM3__INIT;
    size_t n;

    a.host = value();
    a.shared_mem = value();
    a.stream = value();
    a.ptsz = xorshift() % 2;
    a.cooperative = xorshift() % 4 == 0;
    g.x = (uint32_t)value();
    g.y = (uint32_t)value();
    g.z = (uint32_t)value();
    b.x = (uint32_t)value();
    a.grid = xorshift() % 8 ? &g : NULL;
    a.block = xorshift() % 8 ? &b : NULL;
    n = vgpu__manual__launch_args__get_packed_size(&a);
    assert_true(n <= cap);
    return vgpu__manual__launch_args__pack(&a, buf);
}

static void same_dim(const struct vgpu_dim3 *mine, const Vgpu__Manual__Dim3 *pb)
{
    assert_int_equal(mine->present, pb != NULL);
    if (pb) {
        assert_int_equal(mine->x, pb->x);
        assert_int_equal(mine->y, pb->y);
        assert_int_equal(mine->z, pb->z);
    }
}

/* Both readers on the same bytes: the same verdict, the same values. */
static void compare(const uint8_t *p, size_t n)
{
    struct vgpu_launch_args mine;
    int rc = vgpu_launch_args_read(p, n, &mine);
    Vgpu__Manual__LaunchArgs *pb = vgpu__manual__launch_args__unpack(NULL, n, p);

    if (!pb) {
        assert_int_equal(rc, -1);
        return;
    }
    assert_int_equal(rc, 0);
    assert_true(mine.host == pb->host);
    assert_true(mine.shared_mem == pb->shared_mem);
    assert_true(mine.stream == pb->stream);
    assert_int_equal(mine.ptsz, pb->ptsz);
    assert_int_equal(mine.cooperative, pb->cooperative);
    same_dim(&mine.grid, pb->grid);
    same_dim(&mine.block, pb->block);
    vgpu__manual__launch_args__free_unpacked(pb, NULL);
}

static void well_formed(void **state)
{
    uint8_t buf[256];

    (void)state;
    for (int i = 0; i < 20000; i++)
        compare(buf, make(buf, sizeof(buf)));
    compare(buf, 0);                        /* the empty message: all defaults */
}

/*
 * A launch with no arguments set packs to zero bytes, which the server may
 * hold as NULL: reading it must do no arithmetic on the NULL (UBSan's
 * "applying zero offset to null pointer" in the ASan+UBSan build).
 */
static void empty_from_null(void **state)
{
    struct vgpu_launch_args a;

    (void)state;
    memset(&a, 0xa5, sizeof(a));
    assert_int_equal(vgpu_launch_args_read(NULL, 0, &a), 0);
    assert_true(a.host == 0 && a.shared_mem == 0 && a.stream == 0);
    assert_false(a.grid.present);
    assert_false(a.block.present);
    assert_false(a.ptsz);
    assert_false(a.cooperative);
}

static void mutated(void **state)
{
    uint8_t buf[256], m[600];

    (void)state;
    for (int i = 0; i < 300000; i++) {
        size_t n = make(buf, sizeof(buf)), k;

        memcpy(m, buf, n);
        switch (xorshift() % 6) {
        case 0:                             /* truncated */
            k = n ? xorshift() % n : 0;
            compare(m, k);
            break;
        case 1:                             /* one bit flipped */
            if (n)
                m[xorshift() % n] ^= (uint8_t)(1u << (xorshift() % 8));
            compare(m, n);
            break;
        case 2:                             /* one byte replaced */
            if (n)
                m[xorshift() % n] = (uint8_t)xorshift();
            compare(m, n);
            break;
        case 3: {                           /* two messages spliced: repeated fields merge */
            size_t n2 = make(m + n, sizeof(m) - n);

            compare(m, n + n2);
            break;
        }
        case 4:                             /* a field of any number and wire type inserted */
            k = n ? xorshift() % n : 0;
            memmove(m + k + 3, m + k, n - k);
            m[k] = (uint8_t)xorshift();
            m[k + 1] = (uint8_t)(xorshift() % 4);
            m[k + 2] = (uint8_t)xorshift();
            compare(m, n + 3);
            break;
        default:                            /* random bytes appended */
            k = xorshift() % 12;
            for (size_t j = 0; j < k; j++)
                m[n + j] = (uint8_t)xorshift();
            compare(m, n + k);
            break;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_formed),
        cmocka_unit_test(empty_from_null),
        cmocka_unit_test(mutated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
