/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The protobuf envelope's unpacking under a budget, for the frame decoder
 * (wire.c): protobuf-c allocates through a counting allocator, so a small
 * hostile envelope cannot expand into an unbounded number of heap objects
 * before the per-batch limits are checked, and a small envelope is laid out
 * in the frame's scratch area without any malloc.  The compact envelope
 * (compact.c) needs none of this: its size is known before it is laid out.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "budget.h"

/*
 * protobuf-c allocates one struct per sub-message plus pointer arrays and
 * parser scratch, so a 2-byte empty Call costs ~130 heap bytes: a 1 MiB
 * envelope of empty calls would cost ~70 MiB before we could count them.
 * The budget below is an upper bound on what a frame within the limits can
 * legitimately need (bytes/strings/unknown fields are bounded by env_len,
 * objects by max_calls and max_segments, each with a generous factor); going
 * past it aborts the unpack with VGPU_WIRE_E_ENV_BUDGET.
 *
 * Each block carries its size in a max_align_t-sized prefix so that live
 * bytes (not cumulative ones: the parser frees its scratch) are tracked.
 * Blocks made here must be freed here: vgpu_frame_release() frees them
 * without the accounting.  The first ones come from the frame's scratch
 * area (a small envelope needs no malloc at all); those are never freed.
 */
struct budget {
    size_t live;
    size_t limit;
    bool exceeded;
    bool failed; /* malloc itself said no */
    struct vgpu_frame *frame; /* its scratch area serves small blocks first, or NULL */
};

union block_hdr {
    size_t size;
    max_align_t align;
};

static bool in_scratch(const struct vgpu_frame *f, const void *p)
{
    uintptr_t a, q = (uintptr_t)p;

    if (!f || !f->scratch)
        return false;
    a = (uintptr_t)f->scratch;
    return q >= a && q < a + f->scratch_size;
}

static void *budget_alloc(void *state, size_t size)
{
    struct budget *b = state;
    union block_hdr *h;

    if (size > SIZE_MAX - sizeof(*h))
        return NULL;
    if (b) {
        if (size > b->limit - b->live) {
            b->exceeded = true;
            return NULL;
        }
    }
    if (b && b->frame) {
        struct vgpu_frame *f = b->frame;
        size_t r = (sizeof(*h) + size + sizeof(*h) - 1) / sizeof(*h) * sizeof(*h);

        /* scratch blocks are never reused: the parser's freed scratch stays counted */
        if (f->scratch && f->scratch_used <= f->scratch_size && r <= f->scratch_size - f->scratch_used) {
            h = (union block_hdr *)((uint8_t *)f->scratch + f->scratch_used);
            f->scratch_used += r;
            h->size = size;
            b->live += size;
            return h + 1;
        }
    }
    h = malloc(sizeof(*h) + size);
    if (!h) {
        if (b)
            b->failed = true;
        return NULL;
    }
    h->size = size;
    if (b)
        b->live += size;
    return h + 1;
}

static void budget_free(void *state, void *ptr)
{
    struct budget *b = state;
    union block_hdr *h;

    if (!ptr)
        return;
    h = (union block_hdr *)ptr - 1;
    if (b)
        b->live -= h->size;
    if (!b || !in_scratch(b->frame, h))
        free(h);
}

/* Frees what an unpack into frame f allocated (no accounting). */
static void release_free(void *state, void *ptr)
{
    union block_hdr *h;

    if (!ptr)
        return;
    h = (union block_hdr *)ptr - 1;
    if (!in_scratch(state, h))
        free(h);
}

static void *release_alloc(void *state, size_t size)
{
    (void)state;
    (void)size;
    return NULL;
}

static size_t decode_budget(const struct vgpu_wire_limits *lim, uint32_t env_len)
{
    /* All terms are products of 32-bit values, so 64-bit math cannot wrap. */
    uint64_t b = 64u * 1024u;
    b += 4u * (uint64_t)env_len;
    b += 256u * (uint64_t)lim->max_calls;
    b += 128u * (uint64_t)lim->max_calls * lim->max_segments;
    return b > SIZE_MAX ? SIZE_MAX : (size_t)b;
}

int vgpu_wire_budget_unpack(const uint8_t *body, uint32_t env_len,
                            const struct vgpu_wire_limits *lim, struct vgpu_frame *f,
                            Vgpu__Wire__Envelope **out)
{
    struct budget budget = { .limit = decode_budget(lim, env_len), .frame = f };
    ProtobufCAllocator alloc = {
        .alloc = budget_alloc, .free = budget_free, .allocator_data = &budget,
    };

    *out = vgpu__wire__envelope__unpack(&alloc, env_len, body);
    if (*out)
        return 0;
    if (budget.exceeded)
        return VGPU_WIRE_E_ENV_BUDGET;
    if (budget.failed)
        return VGPU_WIRE_E_NOMEM;
    return VGPU_WIRE_E_MALFORMED;
}

void vgpu_wire_budget_release(struct vgpu_frame *f, Vgpu__Wire__Envelope *env)
{
    ProtobufCAllocator a = { .alloc = release_alloc, .free = release_free, .allocator_data = f };

    vgpu__wire__envelope__free_unpacked(env, &a);
}
