/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The address ranges a guest library keeps (ranges.c), for both libraries:
 * device allocations (which side of a copy an address is on) and
 * page-locked host memory (allocated or registered, shared with the server
 * as a region or not).  A table is not locked here: its library holds its
 * own lock around every use.
 */
#ifndef VGPU_RANGES_H
#define VGPU_RANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client.h"

struct vgpu_mem_range {
    uint64_t base, size;
    unsigned flags;             /* host: the allocation's or registration's flags */
    bool owned;                 /* host: allocated by the library (it frees it) */
    uint32_t region;            /* host: shared with the server as this region, or 0 */
    bool mapped;                /* host: the library's own mapping (munmap, not free) */
    uint64_t devptr;            /* host, mapped for kernels: where they reach base (0: not) */
    bool graph;                 /* device: a graph allocation node's (each launch makes it again) */
};

struct vgpu_mem_table {
    struct vgpu_mem_range *r;
    size_t n, cap;
};

/* Appends r: 0, or -1 without memory. */
VGPU_HIDDEN int vgpu_mem_table_add(struct vgpu_mem_table *t, struct vgpu_mem_range r);
/*
 * The range holding addr (a range of size 0 holds its base), or with exact
 * the range starting at addr; NULL when there is none.
 */
VGPU_HIDDEN struct vgpu_mem_range *vgpu_mem_table_find(struct vgpu_mem_table *t, uint64_t addr,
                                                       bool exact);
/* Drops r, a range of t (the last one takes its place). */
VGPU_HIDDEN void vgpu_mem_table_remove(struct vgpu_mem_table *t, struct vgpu_mem_range *r);
/*
 * The region [p, p+n) lies in, within one shared range of t, with its
 * offset in *off; 0 when it is not shared memory.
 */
VGPU_HIDDEN uint32_t vgpu_mem_table_region(struct vgpu_mem_table *t, const void *p, size_t n,
                                           uint64_t *off);

static inline size_t vgpu_round_page(size_t n)
{
    return (n + 4095) & ~(size_t)4095;
}

#endif
