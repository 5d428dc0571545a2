/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Link records as they arrive from a vgpu-stub device: a parser fed with
 * whatever bytes a read returned, and the check that a FRAME record holds
 * exactly one frame.  Pure (no I/O), so unit tests and the fuzzer drive it
 * as the link process does.  The layout: docs/specs/vgpu-stub.md, "The link
 * to vgpu-server".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "link_record.h"
#include "vgpu/wire.h"

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void vgpu_link_header_write(uint8_t h[VGPU_LINK_HEADER_SIZE], uint16_t type, uint32_t channel,
                            uint32_t len)
{
    st32(h, VGPU_LINK_MAGIC);
    h[4] = (uint8_t)type;
    h[5] = (uint8_t)(type >> 8);
    h[6] = h[7] = 0;
    st32(h + 8, channel);
    st32(h + 12, len);
}

int vgpu_link_header_read(const uint8_t h[VGPU_LINK_HEADER_SIZE], uint32_t max,
                          struct vgpu_link_record *r)
{
    if (ld32(h) != VGPU_LINK_MAGIC || h[6] || h[7] || ld32(h + 12) > max)
        return -EPROTO;
    r->type = (uint16_t)(h[4] | h[5] << 8);
    r->channel = ld32(h + 8);
    r->len = ld32(h + 12);
    r->payload = NULL;
    return 0;
}

void vgpu_link_rx_init(struct vgpu_link_rx *rx, uint32_t max)
{
    memset(rx, 0, sizeof(*rx));
    rx->max = max;
}

void vgpu_link_rx_release(struct vgpu_link_rx *rx)
{
    free(rx->rec.payload);
    vgpu_link_rx_init(rx, rx->max);
}

int vgpu_link_rx_feed(struct vgpu_link_rx *rx, const uint8_t *data, size_t n, size_t *used,
                      struct vgpu_link_record *out)
{
    size_t take;

    *used = 0;
    if (rx->hn < VGPU_LINK_HEADER_SIZE) {
        take = VGPU_LINK_HEADER_SIZE - rx->hn;
        take = take < n ? take : n;
        memcpy(rx->h + rx->hn, data, take);
        rx->hn += (uint32_t)take;
        *used = take;
        if (rx->hn < VGPU_LINK_HEADER_SIZE)
            return 0;
        if (vgpu_link_header_read(rx->h, rx->max, &rx->rec))
            return -EPROTO;
        if (rx->rec.len && !(rx->rec.payload = malloc(rx->rec.len)))
            return -ENOMEM;
        rx->got = 0;
    }
    take = rx->rec.len - rx->got;
    take = take < n - *used ? take : n - *used;
    if (take) {
        memcpy(rx->rec.payload + rx->got, data + *used, take);
        rx->got += (uint32_t)take;
        *used += take;
    }
    if (rx->got < rx->rec.len)
        return 0;
    *out = rx->rec;            /* the payload is the caller's now */
    rx->rec.payload = NULL;
    rx->hn = 0;
    return 1;
}

int vgpu_link_frame_check(const uint8_t *p, uint32_t len)
{
    uint64_t env, pay;

    if (len < VGPU_FRAME_HEADER_SIZE || ld32(p) != VGPU_FRAME_MAGIC)
        return -EPROTO;
    env = ld32(p + 8);
    pay = ld32(p + 12);
    return VGPU_FRAME_HEADER_SIZE + env + pay == len ? 0 : -EPROTO;
}
