/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A session's virtual memory management tables (server/vmm.c): the address
 * ranges it reserved (cuMemAddressReserve), the physical allocations it
 * created (cuMemCreate, by their generic allocation handles) and what it
 * mapped where (cuMemMap).  Pure bookkeeping over plain arrays, checked
 * before the driver is asked and updated after it answered; the handlers
 * that call the driver are in server/manual/vmm.c.
 *
 * Invariants: a mapping lies inside one reservation, overlaps no other
 * mapping and names a live allocation (refs > 0 when it was made); an
 * allocation stays in the table while the guest holds a reference or any
 * mapping uses it, and its bytes count against the VM's memory limit until
 * then.  A mapping becomes memory of the session (vgpu_vmm_covers(), which
 * vgpu_range_check() consults) once cuMemSetAccess gave access to it.
 */
#ifndef VGPU_SERVER_VMM_H
#define VGPU_SERVER_VMM_H

#include <stdbool.h>
#include <stdint.h>

struct vgpu_session;

struct vgpu_vmm_resv {
    uint64_t base, size;
};

struct vgpu_vmm_alloc {
    uint64_t handle;           /* the driver's CUmemGenericAllocationHandle */
    uint64_t size;
    uint32_t refs;             /* cuMemCreate and each cuMemRetainAllocationHandle */
    uint32_t maps;             /* mappings that use it */
};

struct vgpu_vmm_map {
    uint64_t va, size, handle;
    bool access;               /* cuMemSetAccess gave some access to it */
};

struct vgpu_vmm {
    struct vgpu_vmm_resv *resv;
    int nresv, cap_resv;
    struct vgpu_vmm_alloc *alloc;
    int nalloc, cap_alloc;
    struct vgpu_vmm_map *map;
    int nmap, cap_map;
};

/* Each returns 0 or a negative errno; -ENOMEM when the table cannot grow. */
int vgpu_vmm_reserve_add(struct vgpu_session *s, uint64_t base, uint64_t size);
/*
 * May [base, base+size) be freed?  0: it is exactly one reservation and
 * nothing is mapped in it; -ENOENT: not a reservation; -EBUSY: mapped.
 */
int vgpu_vmm_reserve_check_free(const struct vgpu_session *s, uint64_t base, uint64_t size);
void vgpu_vmm_reserve_remove(struct vgpu_session *s, uint64_t base);

int vgpu_vmm_alloc_add(struct vgpu_session *s, uint64_t handle, uint64_t size);
/* The allocation handle names if the guest still holds a reference to it, else NULL. */
struct vgpu_vmm_alloc *vgpu_vmm_alloc_live(const struct vgpu_session *s, uint64_t handle);
/* Takes one more reference (cuMemRetainAllocationHandle): 0, or -ENOENT when unknown. */
int vgpu_vmm_alloc_retain(struct vgpu_session *s, uint64_t handle);
/*
 * Drops one reference (cuMemRelease): the bytes whose physical memory is
 * now gone (the allocation's size when no mapping uses it any more, else 0).
 */
uint64_t vgpu_vmm_alloc_put(struct vgpu_session *s, uint64_t handle);

/*
 * May [va, va+size) be mapped to handle from offset?  0; -ENOENT: handle is
 * not a live allocation of the session; -EFAULT: not inside one of its
 * reservations; -EEXIST: overlaps a mapping; -ERANGE: past the allocation's end.
 */
int vgpu_vmm_map_check(const struct vgpu_session *s, uint64_t va, uint64_t size, uint64_t offset,
                       uint64_t handle);
int vgpu_vmm_map_add(struct vgpu_session *s, uint64_t va, uint64_t size, uint64_t handle);
/*
 * Is [va, va+size) covered by whole mappings, one after another, none
 * reaching outside it (cuMemUnmap, cuMemSetAccess)?  0 or -EFAULT.
 */
int vgpu_vmm_tiled(const struct vgpu_session *s, uint64_t va, uint64_t size);
/* Removes the mappings inside [va, va+size); the bytes of physical memory now gone. */
uint64_t vgpu_vmm_unmap(struct vgpu_session *s, uint64_t va, uint64_t size);
void vgpu_vmm_set_access(struct vgpu_session *s, uint64_t va, uint64_t size, bool on);
/* The mapping holding byte addr, or NULL. */
const struct vgpu_vmm_map *vgpu_vmm_map_at(const struct vgpu_session *s, uint64_t addr);
/* Is addr inside one of the session's reservations? */
bool vgpu_vmm_reserved(const struct vgpu_session *s, uint64_t addr);
/*
 * True when accessible mappings cover [addr, addr+len) without a gap (an
 * expandable segment's neighbouring chunks count as one); len 0: addr is
 * inside one or at its end.
 */
bool vgpu_vmm_covers(const struct vgpu_session *s, uint64_t addr, uint64_t len);
/* Frees the tables (the driver frees what they name when the session's process ends). */
void vgpu_vmm_free(struct vgpu_session *s);

#endif
