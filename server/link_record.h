/* SPDX-License-Identifier: Apache-2.0 */
/* Link records between a vgpu-stub device and vgpu-server (link_record.c). */
#ifndef VGPU_LINK_RECORD_H
#define VGPU_LINK_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "vgpu/stub_abi.h"           /* the record layout, types and magic */

struct vgpu_link_record {
    uint16_t type;
    uint32_t channel;
    uint32_t len;
    uint8_t *payload;          /* malloc'ed, len bytes (NULL when 0) */
};

/* A header from h (magic, zero flags, length at most max); 0 or -EPROTO. */
int vgpu_link_header_read(const uint8_t h[VGPU_LINK_HEADER_SIZE], uint32_t max,
                          struct vgpu_link_record *r);

/* Reassembles records from a byte stream. */
struct vgpu_link_rx {
    uint8_t h[VGPU_LINK_HEADER_SIZE];
    uint32_t hn;               /* header bytes so far */
    uint32_t got;              /* payload bytes so far */
    uint32_t max;
    struct vgpu_link_record rec;
};

void vgpu_link_rx_init(struct vgpu_link_rx *rx, uint32_t max);
/* Frees a record half read. */
void vgpu_link_rx_release(struct vgpu_link_rx *rx);
/*
 * Takes bytes from data[0..n) up to the end of one record (*used says how
 * many).  Returns 1 when a record is complete in *out (the caller frees its
 * payload), 0 when more bytes are needed, -EPROTO for a header that is not
 * a record's (the stream cannot be trusted after it), -ENOMEM.
 */
int vgpu_link_rx_feed(struct vgpu_link_rx *rx, const uint8_t *data, size_t n, size_t *used,
                      struct vgpu_link_record *out);

/* Is p[0..len) exactly one frame by its header's lengths?  0 or -EPROTO. */
int vgpu_link_frame_check(const uint8_t *p, uint32_t len);

#endif
