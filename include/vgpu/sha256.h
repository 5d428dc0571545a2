/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SHA-256 (FIPS 180-4), used to name fatbin images by content: a server's
 * cache is shared by every guest, so its key must not be forgeable.
 */
#ifndef VGPU_SHA256_H
#define VGPU_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define VGPU_SHA256_LEN 32

void vgpu_sha256(const void *data, size_t len, uint8_t out[VGPU_SHA256_LEN]);

#endif
