/* SPDX-License-Identifier: Apache-2.0 */
/* vgpu-server internals shared between its files. */
#ifndef VGPU_SERVER_INTERNAL_H
#define VGPU_SERVER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "vgpu/callgen.h"

/*
 * Replays one generated call on fn (the real function).  r must be zeroed
 * with ctx, ops and the input segments set; on return *status is the
 * function's own status and r->ret/r->seg_out hold the encoded outputs.
 * Returns 0, or a negative errno when the call could not be replayed
 * (malformed arguments, a handle or address the session does not own, a
 * count over VGPU_CALL_MAX_BYTES); the function is not called then unless
 * the failure came from encoding.  r is released with vgpu_replay_release().
 */
int vgpu_replay_call(const struct vgpu_dispatch_entry *e, void (*fn)(void),
                     struct vgpu_replay *r, const uint8_t *args, size_t len, int *status);
void vgpu_replay_release(struct vgpu_replay *r);

#endif
