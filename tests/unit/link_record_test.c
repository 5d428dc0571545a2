/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The device link's record parser (server/link_record.c): records split at
 * every byte, several in one read, bad headers, and FRAME records that are
 * not exactly one frame.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "link_record.h"
#include "vgpu/wire.h"

/* A FRAME record around a frame of env bytes of envelope and pay of payload. */
static size_t frame_record(uint8_t *out, uint32_t channel, uint32_t env, uint32_t pay)
{
    struct vgpu_frame_header h = { .magic = VGPU_FRAME_MAGIC, .version = VGPU_PROTOCOL_VERSION,
                                   .env_len = env, .payload_len = pay };
    uint32_t len = VGPU_FRAME_HEADER_SIZE + env + pay;

    vgpu_link_header_pack(out, VGPU_LINK_FRAME, channel, len);
    vgpu_frame_header_encode(&h, out + VGPU_LINK_HEADER_SIZE);
    memset(out + VGPU_LINK_HEADER_SIZE + VGPU_FRAME_HEADER_SIZE, 0xab, env + pay);
    return VGPU_LINK_HEADER_SIZE + len;
}

static void test_split_anywhere(void **state)
{
    uint8_t buf[256];
    size_t n = frame_record(buf, 7, 10, 20);

    (void)state;
    n += frame_record(buf + n, 8, 0, 0);
    for (size_t chunk = 1; chunk <= n; chunk++) {
        struct vgpu_link_rx rx;
        struct vgpu_link_record r[2];
        int got = 0;

        vgpu_link_rx_init(&rx, VGPU_LINK_MAX_PAYLOAD);
        for (size_t off = 0; off < n;) {
            size_t want = n - off < chunk ? n - off : chunk, used;

            while (want) {
                int rc = vgpu_link_rx_feed(&rx, buf + off, want, &used, &r[got]);

                assert_true(rc >= 0);
                assert_true(used <= want);
                off += used;
                want -= used;
                if (rc == 1)
                    got++;
            }
        }
        assert_int_equal(got, 2);
        assert_int_equal(r[0].type, VGPU_LINK_FRAME);
        assert_int_equal(r[0].channel, 7);
        assert_int_equal(r[0].len, VGPU_FRAME_HEADER_SIZE + 30);
        assert_int_equal(vgpu_link_frame_check(r[0].payload, r[0].len), 0);
        assert_int_equal(r[1].channel, 8);
        assert_int_equal(vgpu_link_frame_check(r[1].payload, r[1].len), 0);
        free(r[0].payload);
        free(r[1].payload);
        vgpu_link_rx_release(&rx);
    }
}

static void test_bad_headers(void **state)
{
    uint8_t h[VGPU_LINK_HEADER_SIZE];
    struct vgpu_link_record r;

    (void)state;
    vgpu_link_header_pack(h, VGPU_LINK_CLOSE, 1, 0);
    assert_int_equal(vgpu_link_header_read(h, 100, &r), 0);
    h[0] ^= 1;                                   /* magic */
    assert_int_equal(vgpu_link_header_read(h, 100, &r), -EPROTO);
    vgpu_link_header_pack(h, VGPU_LINK_CLOSE, 1, 0);
    h[6] = 1;                                    /* flags must be 0 */
    assert_int_equal(vgpu_link_header_read(h, 100, &r), -EPROTO);
    vgpu_link_header_pack(h, VGPU_LINK_FRAME, 1, 101);
    assert_int_equal(vgpu_link_header_read(h, 100, &r), -EPROTO);   /* over max */
    vgpu_link_header_pack(h, VGPU_LINK_FRAME, 1, 100);
    assert_int_equal(vgpu_link_header_read(h, 100, &r), 0);
    assert_int_equal(r.len, 100);
}

static void test_frame_check(void **state)
{
    uint8_t buf[256];
    uint8_t *f = buf + VGPU_LINK_HEADER_SIZE;
    uint32_t len;

    (void)state;
    frame_record(buf, 1, 8, 8);
    len = VGPU_FRAME_HEADER_SIZE + 16;
    assert_int_equal(vgpu_link_frame_check(f, len), 0);
    for (uint32_t n = 0; n < VGPU_FRAME_HEADER_SIZE; n++)
        assert_int_equal(vgpu_link_frame_check(f, n), -EPROTO);      /* 0..31 bytes */
    assert_int_equal(vgpu_link_frame_check(f, len - 1), -EPROTO);    /* header says more */
    assert_int_equal(vgpu_link_frame_check(f, len + 1), -EPROTO);    /* trailing bytes */
    {   /* lengths whose 32-bit sum wraps to 30: no frame of 30 bytes */
        struct vgpu_frame_header h = { .magic = VGPU_FRAME_MAGIC, .version = VGPU_PROTOCOL_VERSION,
                                       .env_len = 0xffffffffu, .payload_len = 0xffffffffu };

        vgpu_frame_header_encode(&h, f);
    }
    assert_int_equal(vgpu_link_frame_check(f, VGPU_FRAME_HEADER_SIZE - 2), -EPROTO);
    f[0] ^= 1;
    assert_int_equal(vgpu_link_frame_check(f, VGPU_FRAME_HEADER_SIZE), -EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_anywhere),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_frame_check),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
