/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256, one-shot (vgpu/sha256.h), from nettle: the fatbin cache's keys
 * and the shim's image digests.  Linked statically where it is used, so
 * that guests need no nettle of their own.
 */
#include <nettle/sha2.h>

#include "vgpu/sha256.h"

_Static_assert(VGPU_SHA256_LEN == SHA256_DIGEST_SIZE, "nettle's SHA-256 digest size");

void vgpu_sha256(const void *data, size_t len, uint8_t out[VGPU_SHA256_LEN])
{
    struct sha256_ctx ctx;

    sha256_init(&ctx);
    sha256_update(&ctx, len, data);
    sha256_digest(&ctx, VGPU_SHA256_LEN, out);
}
