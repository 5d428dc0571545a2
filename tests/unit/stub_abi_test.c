/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device ABI (include/vgpu/stub_abi.h) byte for byte against
 * docs/specs/vgpu-stub.md: link record headers and HELLO payloads as they
 * travel, the slot and doorbell arithmetic, the capability test, and the
 * frame header facts against what the codec (wire.c) actually writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vgpu/qp.h"
#include "vgpu/stub_abi.h"
#include "vgpu/wire.h"

static void link_header_bytes(void **state)
{
    static const uint8_t want[VGPU_LINK_HEADER_SIZE] = {
        'V', 'P', 'D', 'L', 0x02, 0x00, 0x00, 0x00,
        0x78, 0x56, 0x34, 0x12, 0x00, 0x00, 0x00, 0x04,
    };
    uint8_t got[VGPU_LINK_HEADER_SIZE];
    struct vgpu_link_header h;

    (void)state;
    memset(got, 0xee, sizeof(got));
    vgpu_link_header_pack(got, VGPU_LINK_FRAME, 0x12345678u, VGPU_LINK_MAX_PAYLOAD);
    assert_memory_equal(got, want, sizeof(want));
    vgpu_link_header_unpack(got, &h);
    assert_int_equal(h.magic, VGPU_LINK_MAGIC);
    assert_int_equal(h.type, VGPU_LINK_FRAME);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.channel, 0x12345678u);
    assert_int_equal(h.length, 64u << 20);
    /* unpack reports what it finds: flags and a high type byte included */
    got[5] = 0x80;
    got[6] = 0x01;
    vgpu_link_header_unpack(got, &h);
    assert_int_equal(h.type, 0x8002);
    assert_int_equal(h.flags, 1);
    assert_int_equal(VGPU_LINK_HELLO, 1);
    assert_int_equal(VGPU_LINK_FRAME, 2);
    assert_int_equal(VGPU_LINK_CLOSE, 3);
    assert_int_equal(VGPU_LINK_FAIL, 4);
}

static void hello_sizes(void **state)
{
    static const uint8_t want[VGPU_LINK_HELLO_MAX] = {
        0x2a, 0x00, 0x00, 0x00, 'B', 0x02, 0x00, 0x00,          /* vm_id, pool, prio */
        0x01, 0x00, 0x00, 0x00,                                 /* version */
        0x00, 0x00, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00,         /* 0x104000000 bytes */
        0x08, 0x00, 0x00, 0x00,                                 /* 8 doorbells */
    };
    const struct vgpu_link_hello h = { .vm_id = 42, .pool_id = 'B', .priority = 2,
                                       .version = VGPU_STUB_REG_VERSION,
                                       .bar_size = 0x104000000ull, .doorbells = 8 };
    static const uint32_t sizes[] = { VGPU_LINK_HELLO_SIZE, VGPU_LINK_HELLO_SIZE_BAR,
                                      VGPU_LINK_HELLO_SIZE_DOORBELLS };

    (void)state;
    assert_int_equal(VGPU_LINK_HELLO_SIZE, 12);
    assert_int_equal(VGPU_LINK_HELLO_SIZE_BAR, 20);
    assert_int_equal(VGPU_LINK_HELLO_SIZE_DOORBELLS, 24);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t got[VGPU_LINK_HELLO_MAX];
        struct vgpu_link_hello back;

        memset(got, 0xee, sizeof(got));
        vgpu_link_hello_pack(got, &h, sizes[i]);
        assert_memory_equal(got, want, sizes[i]);
        for (size_t k = sizes[i]; k < sizeof(got); k++)
            assert_int_equal(got[k], 0xee); /* nothing past the payload */
        assert_true(vgpu_link_hello_size_ok(sizes[i]));
        assert_int_equal(vgpu_link_hello_unpack(want, sizes[i], &back), 0);
        assert_int_equal(back.vm_id, 42);
        assert_int_equal(back.pool_id, 'B');
        assert_int_equal(back.priority, 2);
        assert_int_equal(back.version, 1);
        assert_true(back.bar_size == (sizes[i] >= 20 ? 0x104000000ull : 0));
        assert_int_equal(back.doorbells, sizes[i] >= 24 ? 8 : 0);
    }
    for (uint32_t len = 0; len < 64; len++) {
        struct vgpu_link_hello back = { .vm_id = 7 };

        if (len == 12 || len == 20 || len == 24)
            continue;
        assert_false(vgpu_link_hello_size_ok(len));
        assert_int_equal(vgpu_link_hello_unpack(want, len, &back), -1);
        assert_int_equal(back.vm_id, 7);
    }
    assert_false(vgpu_link_hello_size_ok(0xffffffffu));
}

static void slots_and_doorbells(void **state)
{
    (void)state;
    assert_int_equal(VGPU_STUB_SLOT_SIZE, 8u << 20);
    assert_int_equal(1u << VGPU_STUB_SLOT_SHIFT, VGPU_STUB_SLOT_SIZE);
    assert_int_equal(VGPU_STUB_SLOT_QP_SIZE, 2u << 20);
    assert_int_equal(VGPU_STUB_SLOT_STAGING_OFFSET, 2u << 20);
    /* a BAR under two slots is one slot */
    assert_true(vgpu_stub_slot_size(1u << 20) == 1u << 20);
    assert_true(vgpu_stub_slot_size(8u << 20) == 8u << 20);
    assert_true(vgpu_stub_slot_size((16u << 20) - 1) == (16u << 20) - 1);
    assert_true(vgpu_stub_slot_size(16u << 20) == 8u << 20);
    assert_true(vgpu_stub_slot_size(64ull << 30) == 8u << 20);
    /* one doorbell per 8 MiB, at least 1, at most 64 */
    assert_int_equal(vgpu_stub_doorbells(1u << 20), 1);
    assert_int_equal(vgpu_stub_doorbells(8u << 20), 1);
    assert_int_equal(vgpu_stub_doorbells(16u << 20), 2);
    assert_int_equal(vgpu_stub_doorbells(512u << 20), 64);
    assert_int_equal(vgpu_stub_doorbells(64ull << 30), 64);
    assert_int_equal(VGPU_STUB_R_QP_DOORBELL_K(0), 0x900);
    assert_int_equal(VGPU_STUB_R_QP_DOORBELL_K(63), 0x9fc);
    assert_int_equal(VGPU_LINK_HELLO_MAX_FDS, 65);
}

/* A device must have every capability asked for, not one of them. */
static void caps_have_all(void **state)
{
    const uint32_t need = VGPU_STUB_CAP_CHUNKS | VGPU_STUB_CAP_CHANNELS;

    (void)state;
    assert_int_equal(VGPU_STUB_CAP_BASE, 0x27);   /* chunks, INTx, channels, LINK_STATE */
    assert_true(vgpu_stub_caps_have(0x7, need));
    assert_true(vgpu_stub_caps_have(0x1f, need));
    assert_true(vgpu_stub_caps_have(0x5, need));
    assert_false(vgpu_stub_caps_have(0x1, need));
    assert_false(vgpu_stub_caps_have(0x4, need));
    assert_false(vgpu_stub_caps_have(0x0, need));
    assert_false(vgpu_stub_caps_have(0x7 | VGPU_STUB_CAP_SHARED,
                                     VGPU_STUB_CAP_SHARED | VGPU_STUB_CAP_DOORBELLS));
    assert_true(vgpu_stub_caps_have(0x1f, VGPU_STUB_CAP_SHARED | VGPU_STUB_CAP_DOORBELLS));
}

/* The offsets the device reads are where the codec writes each field. */
static void frame_header_offsets(void **state)
{
    const struct vgpu_frame_header h = {
        .magic = VGPU_FRAME_MAGIC, .version = 0x0a0b, .flags = 0x0c0d, .env_len = 0x11223344,
        .payload_len = 0x55667788, .seq = 0x0102030405060708ull, .reserved = 0x1112131415161718ull,
    };
    uint8_t b[VGPU_FRAME_HEADER_SIZE];

    (void)state;
    vgpu_frame_header_encode(&h, b);
    assert_memory_equal(b + VGPU_FRAME_OFF_MAGIC, "VGPU", 4);
    assert_int_equal(vgpu_abi_get_le16(b + VGPU_FRAME_OFF_VERSION), 0x0a0b);
    assert_int_equal(vgpu_abi_get_le16(b + VGPU_FRAME_OFF_FLAGS), 0x0c0d);
    assert_int_equal(vgpu_abi_get_le32(b + VGPU_FRAME_OFF_ENV_LEN), 0x11223344);
    assert_int_equal(vgpu_abi_get_le32(b + VGPU_FRAME_OFF_PAYLOAD_LEN), 0x55667788);
    assert_true(vgpu_abi_get_le64(b + VGPU_FRAME_OFF_SEQ) == 0x0102030405060708ull);
    assert_true(vgpu_abi_get_le64(b + VGPU_FRAME_OFF_RESERVED) == 0x1112131415161718ull);
    assert_int_equal(VGPU_FRAME_F_KNOWN, VGPU_FRAME_F_REPLY | VGPU_FRAME_F_COMPACT);
}

/* The flags the device lets through are exactly those the codec accepts. */
static void frame_flags_match_codec(void **state)
{
    (void)state;
    for (uint32_t bit = 0; bit < 16; bit++) {
        struct vgpu_frame_header h = { .magic = VGPU_FRAME_MAGIC,
                                       .version = VGPU_PROTOCOL_VERSION,
                                       .flags = (uint16_t)(1u << bit) };
        struct vgpu_frame_header out;
        uint8_t b[VGPU_FRAME_HEADER_SIZE];
        int rc;

        vgpu_frame_header_encode(&h, b);
        rc = vgpu_frame_header_decode(b, sizeof(b), NULL, &out);
        if (VGPU_FRAME_F_KNOWN & (1u << bit))
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, VGPU_WIRE_E_BAD_FLAGS);
    }
}

static void le_helpers(void **state)
{
    uint8_t b[8];

    (void)state;
    vgpu_abi_put_le64(b, 0x8877665544332211ull);
    for (int i = 0; i < 8; i++)
        assert_int_equal(b[i], 0x11 * (i + 1));
    assert_true(vgpu_abi_get_le64(b) == 0x8877665544332211ull);
    assert_int_equal(vgpu_abi_get_le32(b + 4), 0x88776655u);
    assert_int_equal(vgpu_abi_get_le16(b + 6), 0x8877);
    vgpu_abi_put_le32(b, 0xfffefdfcu);
    assert_int_equal(b[0], 0xfc);
    assert_int_equal(b[3], 0xff);
    vgpu_abi_put_le16(b, 0xa1b2);
    assert_int_equal(b[0], 0xb2);
    assert_int_equal(b[1], 0xa1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(link_header_bytes),
        cmocka_unit_test(hello_sizes),
        cmocka_unit_test(slots_and_doorbells),
        cmocka_unit_test(caps_have_all),
        cmocka_unit_test(frame_header_offsets),
        cmocka_unit_test(frame_flags_match_codec),
        cmocka_unit_test(le_helpers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
