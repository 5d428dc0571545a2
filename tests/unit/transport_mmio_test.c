/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mmio transport's judgement of a device (shim/transport_mmio.c,
 * included here to reach its static functions): it takes a device only
 * with the register version it speaks and every capability it needs.  The
 * rest of the transport needs a guest with the device (tests/vm).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../shim/transport_mmio.c"

/* The shim's logger, which the transport calls on its error paths. */
void vgpu_shim_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

/* Chunks and channels are both needed; a device with one of them is refused. */
static void needs_both_capabilities(void **state)
{
    (void)state;
    assert_true(device_usable(VGPU_STUB_REG_VERSION, VGPU_STUB_CAP_BASE));
    assert_true(device_usable(VGPU_STUB_REG_VERSION, 0x1f));
    assert_true(device_usable(VGPU_STUB_REG_VERSION,
                              VGPU_STUB_CAP_CHUNKS | VGPU_STUB_CAP_CHANNELS));
    assert_false(device_usable(VGPU_STUB_REG_VERSION, VGPU_STUB_CAP_CHUNKS));
    assert_false(device_usable(VGPU_STUB_REG_VERSION, VGPU_STUB_CAP_CHANNELS));
    assert_false(device_usable(VGPU_STUB_REG_VERSION,
                               VGPU_STUB_CAP_CHUNKS | VGPU_STUB_CAP_INTX |
                               VGPU_STUB_CAP_SHARED | VGPU_STUB_CAP_DOORBELLS));
    assert_false(device_usable(VGPU_STUB_REG_VERSION, 0));
}

/* The register version, not the frame protocol's, decides. */
static void needs_register_version(void **state)
{
    (void)state;
    assert_false(device_usable(0, VGPU_STUB_CAP_BASE));
    assert_false(device_usable(VGPU_STUB_REG_VERSION + 1, VGPU_STUB_CAP_BASE));
    assert_false(device_usable(0xffffffffu, 0xffffffffu));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(needs_both_capabilities),
        cmocka_unit_test(needs_register_version),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
