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

int vgpu_link_header_read(const uint8_t h[VGPU_LINK_HEADER_SIZE], uint32_t max,
                          struct vgpu_link_record *r)
{
    struct vgpu_link_header lh;

    vgpu_link_header_unpack(h, &lh);
    if (lh.magic != VGPU_LINK_MAGIC || lh.flags || lh.length > max)
        return -EPROTO;
    r->type = lh.type;
    r->channel = lh.channel;
    r->len = lh.length;
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

    if (len < VGPU_FRAME_HEADER_SIZE || vgpu_abi_get_le32(p + VGPU_FRAME_OFF_MAGIC) != VGPU_FRAME_MAGIC)
        return -EPROTO;
    env = vgpu_abi_get_le32(p + VGPU_FRAME_OFF_ENV_LEN);
    pay = vgpu_abi_get_le32(p + VGPU_FRAME_OFF_PAYLOAD_LEN);
    return VGPU_FRAME_HEADER_SIZE + env + pay == len ? 0 : -EPROTO;
}
