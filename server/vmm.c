/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A session's virtual memory management tables: reservations, physical
 * allocations and mappings (vmm.h says what each holds and the invariants).
 * Everything here is arithmetic over plain arrays that cannot overflow on
 * guest values, so the checks are unit-tested without a GPU
 * (tests/unit/server_vmm_test.c).  A session holds a few hundred entries at
 * most (an expandable segment maps one chunk per 2 MiB or 20 MiB), so
 * linear scans do.
 */
#include <errno.h>
#include <stdlib.h>

#include "server_internal.h"
#include "vmm.h"

/* Entries of one kind a session may hold: far above an expandable segment's chunks. */
#define VMM_MAX (1 << 16)

/* Grows an array of *cap elements of size each to hold one more; 0 or -ENOMEM. */
static int grow(void **arr, int n, int *cap, size_t size)
{
    void *p;
    int c;

    if (n < *cap)
        return 0;
    if (n >= VMM_MAX)
        return -ENOMEM;
    c = *cap ? 2 * *cap : 16;
    if (!(p = realloc(*arr, (size_t)c * size)))
        return -ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

/* The session's tables, made on first use; NULL when out of memory. */
static struct vgpu_vmm *vmm(struct vgpu_session *s)
{
    if (!s->vmm)
        s->vmm = calloc(1, sizeof(*s->vmm));
    return s->vmm;
}

/* [a, a+alen) inside [b, b+blen), without overflow. */
static bool inside(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a >= b && a - b <= blen && alen <= blen - (a - b);
}

/* [a, a+alen) and [b, b+blen) share a byte (both non-empty, neither wrapping). */
static bool overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return alen && blen && a < b + blen && b < a + alen;
}

static bool wraps(uint64_t base, uint64_t size)
{
    return size > UINT64_MAX - base;
}

int vgpu_vmm_reserve_add(struct vgpu_session *s, uint64_t base, uint64_t size)
{
    struct vgpu_vmm *v = vmm(s);

    if (!v || grow((void **)&v->resv, v->nresv, &v->cap_resv, sizeof(*v->resv)))
        return -ENOMEM;
    v->resv[v->nresv++] = (struct vgpu_vmm_resv){ base, size };
    return 0;
}

int vgpu_vmm_reserve_check_free(const struct vgpu_session *s, uint64_t base, uint64_t size)
{
    const struct vgpu_vmm *v = s->vmm;

    for (int i = 0; v && i < v->nresv; i++) {
        if (v->resv[i].base != base || v->resv[i].size != size)
            continue;
        for (int j = 0; j < v->nmap; j++)
            if (overlap(v->map[j].va, v->map[j].size, base, size))
                return -EBUSY;
        return 0;
    }
    return -ENOENT;
}

void vgpu_vmm_reserve_remove(struct vgpu_session *s, uint64_t base)
{
    struct vgpu_vmm *v = s->vmm;

    for (int i = 0; v && i < v->nresv; i++)
        if (v->resv[i].base == base) {
            v->resv[i] = v->resv[--v->nresv];
            return;
        }
}

bool vgpu_vmm_reserved(const struct vgpu_session *s, uint64_t addr)
{
    const struct vgpu_vmm *v = s->vmm;

    for (int i = 0; v && i < v->nresv; i++)
        if (addr >= v->resv[i].base && addr - v->resv[i].base < v->resv[i].size)
            return true;
    return false;
}

int vgpu_vmm_alloc_add(struct vgpu_session *s, uint64_t handle, uint64_t size)
{
    struct vgpu_vmm *v = vmm(s);

    if (!v || grow((void **)&v->alloc, v->nalloc, &v->cap_alloc, sizeof(*v->alloc)))
        return -ENOMEM;
    v->alloc[v->nalloc++] = (struct vgpu_vmm_alloc){ .handle = handle, .size = size, .refs = 1 };
    return 0;
}

/* The allocation handle names, live or only still mapped; NULL when unknown. */
static struct vgpu_vmm_alloc *alloc_find(const struct vgpu_session *s, uint64_t handle)
{
    const struct vgpu_vmm *v = s->vmm;

    for (int i = 0; v && i < v->nalloc; i++)
        if (v->alloc[i].handle == handle)
            return &v->alloc[i];
    return NULL;
}

struct vgpu_vmm_alloc *vgpu_vmm_alloc_live(const struct vgpu_session *s, uint64_t handle)
{
    struct vgpu_vmm_alloc *a = alloc_find(s, handle);

    return a && a->refs ? a : NULL;
}

/* Forgets a when nothing holds it any more: the bytes now gone, or 0. */
static uint64_t alloc_gone(struct vgpu_session *s, struct vgpu_vmm_alloc *a)
{
    uint64_t size = a->size;

    if (a->refs || a->maps)
        return 0;
    *a = s->vmm->alloc[--s->vmm->nalloc];
    return size;
}

int vgpu_vmm_alloc_retain(struct vgpu_session *s, uint64_t handle)
{
    struct vgpu_vmm_alloc *a = alloc_find(s, handle);

    if (!a || a->refs == UINT32_MAX)
        return -ENOENT;
    a->refs++;
    return 0;
}

uint64_t vgpu_vmm_alloc_put(struct vgpu_session *s, uint64_t handle)
{
    struct vgpu_vmm_alloc *a = vgpu_vmm_alloc_live(s, handle);

    if (!a)
        return 0;
    a->refs--;
    return alloc_gone(s, a);
}

int vgpu_vmm_map_check(const struct vgpu_session *s, uint64_t va, uint64_t size, uint64_t offset,
                       uint64_t handle)
{
    const struct vgpu_vmm *v = s->vmm;
    const struct vgpu_vmm_alloc *a = vgpu_vmm_alloc_live(s, handle);
    bool in = false;

    if (!a)
        return -ENOENT;
    if (size == 0 || wraps(va, size))
        return -EFAULT;
    for (int i = 0; i < v->nresv && !in; i++)
        in = inside(va, size, v->resv[i].base, v->resv[i].size);
    if (!in)
        return -EFAULT;
    for (int i = 0; i < v->nmap; i++)
        if (overlap(va, size, v->map[i].va, v->map[i].size))
            return -EEXIST;
    if (!inside(offset, size, 0, a->size))
        return -ERANGE;
    return 0;
}

int vgpu_vmm_map_add(struct vgpu_session *s, uint64_t va, uint64_t size, uint64_t handle)
{
    struct vgpu_vmm *v = vmm(s);
    struct vgpu_vmm_alloc *a = alloc_find(s, handle);

    if (!v || !a || grow((void **)&v->map, v->nmap, &v->cap_map, sizeof(*v->map)))
        return -ENOMEM;
    v->map[v->nmap++] = (struct vgpu_vmm_map){ .va = va, .size = size, .handle = handle };
    a->maps++;
    return 0;
}

const struct vgpu_vmm_map *vgpu_vmm_map_at(const struct vgpu_session *s, uint64_t addr)
{
    const struct vgpu_vmm *v = s->vmm;

    for (int i = 0; v && i < v->nmap; i++)
        if (addr >= v->map[i].va && addr - v->map[i].va < v->map[i].size)
            return &v->map[i];
    return NULL;
}

int vgpu_vmm_tiled(const struct vgpu_session *s, uint64_t va, uint64_t size)
{
    const struct vgpu_vmm *v = s->vmm;
    uint64_t pos = va, end;

    if (!v || size == 0 || wraps(va, size))
        return -EFAULT;
    end = va + size;
    for (int i = 0; i < v->nmap; i++)    /* nothing reaches out of the range */
        if (overlap(va, size, v->map[i].va, v->map[i].size) &&
            !inside(v->map[i].va, v->map[i].size, va, size))
            return -EFAULT;
    while (pos < end) {                  /* and nothing in it is left unmapped */
        const struct vgpu_vmm_map *m = vgpu_vmm_map_at(s, pos);

        if (!m)
            return -EFAULT;
        pos = m->va + m->size;
    }
    return 0;
}

uint64_t vgpu_vmm_unmap(struct vgpu_session *s, uint64_t va, uint64_t size)
{
    struct vgpu_vmm *v = s->vmm;
    uint64_t gone = 0;

    for (int i = 0; v && i < v->nmap;) {
        struct vgpu_vmm_map m = v->map[i];
        struct vgpu_vmm_alloc *a;

        if (!inside(m.va, m.size, va, size)) {
            i++;
            continue;
        }
        v->map[i] = v->map[--v->nmap];
        if ((a = alloc_find(s, m.handle))) {
            a->maps--;
            gone += alloc_gone(s, a);
        }
    }
    return gone;
}

void vgpu_vmm_set_access(struct vgpu_session *s, uint64_t va, uint64_t size, bool on)
{
    struct vgpu_vmm *v = s->vmm;

    for (int i = 0; v && i < v->nmap; i++)
        if (inside(v->map[i].va, v->map[i].size, va, size))
            v->map[i].access = on;
}

bool vgpu_vmm_covers(const struct vgpu_session *s, uint64_t addr, uint64_t len)
{
    const struct vgpu_vmm_map *m;
    uint64_t end;

    if (!s->vmm || wraps(addr, len))
        return false;
    if (len == 0) {
        /* an empty span may sit at an accessible mapping's end, as at an allocation's */
        m = vgpu_vmm_map_at(s, addr);
        if (!m && addr)
            m = vgpu_vmm_map_at(s, addr - 1);
        return m && m->access;
    }
    end = addr + len;
    while (addr < end) {
        if (!(m = vgpu_vmm_map_at(s, addr)) || !m->access)
            return false;
        addr = m->va + m->size;
    }
    return true;
}

void vgpu_vmm_free(struct vgpu_session *s)
{
    if (!s->vmm)
        return;
    free(s->vmm->resv);
    free(s->vmm->alloc);
    free(s->vmm->map);
    free(s->vmm);
    s->vmm = NULL;
}
