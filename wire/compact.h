/* SPDX-License-Identifier: Apache-2.0 */
/* The compact envelope (wire/compact.c), for wire.c. */
#ifndef VGPU_WIRE_COMPACT_H
#define VGPU_WIRE_COMPACT_H

#include <stddef.h>
#include <stdint.h>

#include "vgpu/wire.h"

/* Bytes of env's compact form; -EINVAL for a body that has none, -E2BIG. */
int vgpu_compact_size(const Vgpu__Wire__Envelope *env, size_t *out);
/* Writes it (vgpu_compact_size() bytes) at p. */
void vgpu_compact_write(const Vgpu__Wire__Envelope *env, uint8_t *p);
/*
 * Decodes len bytes of a compact envelope into protobuf-c structures laid
 * out in scratch (advancing *scratch_used) or, when it is full, in one
 * malloc'ed block returned in *heap.  0 or a negative enum vgpu_wire_err.
 */
int vgpu_compact_decode(const uint8_t *body, size_t len, const struct vgpu_wire_limits *lim,
                        void *scratch, size_t scratch_size, size_t *scratch_used,
                        Vgpu__Wire__Envelope **out, void **heap);

#endif
