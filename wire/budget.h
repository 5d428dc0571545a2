/* SPDX-License-Identifier: Apache-2.0 */
/* The protobuf envelope unpacked under a budget (wire/budget.c), for wire.c. */
#ifndef VGPU_WIRE_BUDGET_H
#define VGPU_WIRE_BUDGET_H

#include <stdint.h>

#include "vgpu/wire.h"

/*
 * Unpacks env_len bytes of a protobuf envelope at body into *out, its
 * blocks taken from f's scratch area first, then malloc'ed; the live bytes
 * may not pass a bound that lim and env_len give.  0, or
 * VGPU_WIRE_E_ENV_BUDGET past the bound, VGPU_WIRE_E_NOMEM, or
 * VGPU_WIRE_E_MALFORMED; *out is NULL then.  Only no envelope checks.
 */
int vgpu_wire_budget_unpack(const uint8_t *body, uint32_t env_len,
                            const struct vgpu_wire_limits *lim, struct vgpu_frame *f,
                            Vgpu__Wire__Envelope **out);
/* Frees an envelope vgpu_wire_budget_unpack() made for frame f (scratch blocks stay). */
void vgpu_wire_budget_release(struct vgpu_frame *f, Vgpu__Wire__Envelope *env);

#endif
