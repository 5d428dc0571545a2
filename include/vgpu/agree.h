/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest and server of different releases (docs/protocol.md §1, "Call
 * tables"): call ids are append-only, and vgpu-codegen hashes each call's
 * shape (id, name, state, and the wire shape of its parameters) into the
 * call tables (vgpu_<api>_shapes).  Both sides send theirs in the handshake;
 * a call is served when both have it with the same shape.  An older guest's
 * table is a prefix of a newer server's: all its calls agree unless one
 * changed shape; a newer guest's calls the server lacks are refused, each
 * with a message naming both releases.  When the whole-table hashes match,
 * everything agrees and no table is built.
 */
#ifndef VGPU_AGREE_H
#define VGPU_AGREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/apis.h"

#define VGPU_AGREE_SLOTS (VGPU_CUDART_NSHAPES + VGPU_CUDA_NSHAPES + VGPU_NVML_NSHAPES)

struct vgpu_agreement {
    uint32_t differ;                  /* calls of ours the peer does not serve as we do */
    uint8_t off[VGPU_AGREE_SLOTS];    /* 1: refused (differs, or one side lacks it); 2: said so */
};

/* Our shapes into a Hello or a HelloReply (the fields have the same names in both). */
#define VGPU_AGREE_PUT_SHAPES(m)                                      \
    do {                                                              \
        (m)->shapes_cudart = (uint32_t *)vgpu_cudart_shapes;          \
        (m)->n_shapes_cudart = VGPU_CUDART_NSHAPES;                   \
        (m)->shapes_cuda = (uint32_t *)vgpu_cuda_shapes;              \
        (m)->n_shapes_cuda = VGPU_CUDA_NSHAPES;                       \
        (m)->shapes_nvml = (uint32_t *)vgpu_nvml_shapes;              \
        (m)->n_shapes_nvml = VGPU_NVML_NSHAPES;                       \
    } while (0)

/* The slot of a call id, or -1 when it is in none of our tables. */
static inline long vgpu_agree_slot(uint32_t id)
{
    switch (vgpu_api_of(id)) {
    case VGPU_API_CUDART:
        return (long)(id - VGPU_CUDART_ID_BASE);
    case VGPU_API_CUDA:
        return VGPU_CUDART_NSHAPES + (long)(id - VGPU_CUDA_ID_BASE);
    case VGPU_API_NVML:
        return VGPU_CUDART_NSHAPES + VGPU_CUDA_NSHAPES + (long)(id - VGPU_NVML_ID_BASE);
    default:
        return -1;
    }
}

static inline void vgpu_agree_api(struct vgpu_agreement *a, long at, const uint32_t *mine, size_t n,
                                  const uint32_t *theirs, size_t nt)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t t = i < nt ? theirs[i] : 0;

        a->off[at + (long)i] = mine[i] != t;
        a->differ += mine[i] && mine[i] != t;
    }
}

/* Compares the peer's shapes (each array as it came, any length) with ours. */
static inline void vgpu_agree(struct vgpu_agreement *a, const uint32_t *cudart, size_t ncudart,
                              const uint32_t *cuda, size_t ncuda, const uint32_t *nvml, size_t nnvml)
{
    a->differ = 0;
    vgpu_agree_api(a, 0, vgpu_cudart_shapes, VGPU_CUDART_NSHAPES, cudart, ncudart);
    vgpu_agree_api(a, VGPU_CUDART_NSHAPES, vgpu_cuda_shapes, VGPU_CUDA_NSHAPES, cuda, ncuda);
    vgpu_agree_api(a, VGPU_CUDART_NSHAPES + VGPU_CUDA_NSHAPES, vgpu_nvml_shapes, VGPU_NVML_NSHAPES,
                   nvml, nnvml);
}

/* May call id go through?  (NULL: the tables match whole.) */
static inline bool vgpu_agreed(const struct vgpu_agreement *a, uint32_t id)
{
    long k = vgpu_agree_slot(id);

    return !a || (k >= 0 && k < VGPU_AGREE_SLOTS && !a->off[k]);
}

/*
 * The first refusal of call id: true once (the caller says why), false
 * after.  Not thread-safe by itself: the callers hold their lock.
 */
static inline bool vgpu_agree_first_refusal(struct vgpu_agreement *a, uint32_t id)
{
    long k = vgpu_agree_slot(id);

    if (k < 0 || k >= VGPU_AGREE_SLOTS || a->off[k] == 2)
        return false;
    a->off[k] = 2;
    return true;
}

#endif
