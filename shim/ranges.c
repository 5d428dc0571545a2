/* SPDX-License-Identifier: Apache-2.0 */
/* The address-range tables of the guest libraries (ranges.h). */
#include <stdlib.h>

#include "ranges.h"

int vgpu_mem_table_add(struct vgpu_mem_table *t, struct vgpu_mem_range r)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        struct vgpu_mem_range *p = realloc(t->r, cap * sizeof(*p));

        if (!p)
            return -1;
        t->r = p;
        t->cap = cap;
    }
    t->r[t->n++] = r;
    return 0;
}

struct vgpu_mem_range *vgpu_mem_table_find(struct vgpu_mem_table *t, uint64_t addr, bool exact)
{
    for (size_t i = 0; i < t->n; i++) {
        uint64_t size = t->r[i].size ? t->r[i].size : 1;

        if (exact ? t->r[i].base == addr : addr - t->r[i].base < size)
            return &t->r[i];
    }
    return NULL;
}

void vgpu_mem_table_remove(struct vgpu_mem_table *t, struct vgpu_mem_range *r)
{
    *r = t->r[--t->n];
}

uint32_t vgpu_mem_table_region(struct vgpu_mem_table *t, const void *p, size_t n, uint64_t *off)
{
    uint64_t a = (uint64_t)(uintptr_t)p;
    struct vgpu_mem_range *r = vgpu_mem_table_find(t, a, false);

    if (!r || !r->region || n > r->size - (a - r->base))
        return 0;
    *off = a - r->base;
    return r->region;
}
