/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: bytes from a hostile device link through the record
 * parser (server/link_record.c), in the chunk sizes the input's first byte
 * picks, as the link process reads them; every FRAME record goes through the
 * one-whole-frame check and, when it passes, the strict frame decoder, as
 * the link does before a record reaches a session.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "link_record.h"
#include "vgpu/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vgpu_link_rx rx;
    size_t chunk, off = 1;

    if (!size)
        return 0;
    chunk = (size_t)data[0] + 1;
    vgpu_link_rx_init(&rx, 1u << 16);
    while (off < size) {
        size_t want = size - off < chunk ? size - off : chunk, used;
        struct vgpu_link_record r;
        int rc = vgpu_link_rx_feed(&rx, data + off, want, &used, &r);

        if (used > want)
            abort();
        off += used;
        if (rc < 0)
            break;
        if (rc == 1) {
            if (r.type == VGPU_LINK_FRAME && !vgpu_link_frame_check(r.payload, r.len)) {
                struct vgpu_frame f = { 0 };

                vgpu_frame_decode(r.payload, r.len, NULL, NULL, NULL, &f);
                vgpu_frame_release(&f);
            }
            free(r.payload);
        } else if (!used) {
            abort();           /* no progress and no record */
        }
    }
    vgpu_link_rx_release(&rx);
    return 0;
}
