/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The APIs one connection carries and how a call id names its API: each
 * API's registry ids are offset by its id base (codegen/spec/<api>.spec,
 * id_base), so the runtime's ids stay below 0x10000 and the driver's start
 * at 0x10000 and NVML's at 0x20000.  Guest and server agree on all tables at once: the handshake
 * carries one hash over them (VGPU_CALL_TABLES_HASH).
 */
#ifndef VGPU_APIS_H
#define VGPU_APIS_H

#include <stdint.h>

#include "cuda_calltable.h"
#include "cudart_calltable.h"
#include "nvml_calltable.h"

#define VGPU_CALL_TABLES_HASH \
    (VGPU_CUDART_CALL_TABLE_HASH ^ (VGPU_CUDA_CALL_TABLE_HASH * 0x9e3779b97f4a7c15ull) ^ \
     (VGPU_NVML_CALL_TABLE_HASH * 0xc2b2ae3d27d4eb4full))
#define VGPU_CALL_TABLES_API "cudart+cuda+nvml"

enum vgpu_api { VGPU_API_CUDART = 0, VGPU_API_CUDA = 1, VGPU_API_NVML = 2, VGPU_API_NONE = -1 };

/* The API a call id belongs to (by its id range), or VGPU_API_NONE. */
static inline int vgpu_api_of(uint32_t id)
{
    if (id <= VGPU_CUDART_MAX_ID)
        return VGPU_API_CUDART;
    if (id >= VGPU_CUDA_ID_BASE && id <= VGPU_CUDA_MAX_ID)
        return VGPU_API_CUDA;
    if (id >= VGPU_NVML_ID_BASE && id <= VGPU_NVML_MAX_ID)
        return VGPU_API_NVML;
    return VGPU_API_NONE;
}

#endif
