/* SPDX-License-Identifier: Apache-2.0 */
/* What the hand-written parts of libnvidia-ml.so.1 (shim/nvml/) share. */
#ifndef VGPU_NVML_INTERNAL_H
#define VGPU_NVML_INTERNAL_H

#include <stdint.h>

#include "vgpu/callgen.h"

/* A client result (>= 0: the server's status, < 0: -errno) as an nvmlReturn_t. */
int vgpu_nvml_status(int rc);
/*
 * Packs msg and sends it as call id (name for messages); the status the
 * program sees.  rep holds the reply until vgpu_shim_rep_release(), in
 * every case; unlike the generated calls, its message is there whatever
 * the status (the processes' count comes with NVML_ERROR_INSUFFICIENT_SIZE).
 */
int vgpu_nvml_call(uint32_t id, const char *name, const ProtobufCMessage *msg,
                   struct vgpu_call_req *req, struct vgpu_call_rep *rep);

#endif
