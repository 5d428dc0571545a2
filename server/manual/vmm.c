/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Virtual memory management and memory pools of the driver API (spec:
 * manual), replayed on the real libcuda.so.1.  Reservations, physical
 * allocations and mappings are the session's (server/vmm.h): each call is
 * checked against its tables before the driver is asked, and the tables
 * change only once the driver agreed.  cuMemCreate and
 * cuMemAllocFromPoolAsync are charged to the VM's memory limit first, as
 * cudaMalloc is; a mapping the guest gave access to is memory of the
 * session for every later check (copies, memsets, launch arguments,
 * pointer attributes), and stops being so when it is unmapped.  Only
 * device memory is served: host-located allocations and pools would be
 * memory of the server's process, out of the guest's reach.
 */
#include <cuda.h>
#include <errno.h>
#include <string.h>

#include "cuda_calltable.h"
#include "manual_internal.h"
#include "vmm.h"

/* The driver functions this file calls, resolved once. */
static struct {
    bool tried;
    __typeof__(&cuMemGetAllocationGranularity) granularity;
    __typeof__(&cuMemAddressReserve) reserve;
    __typeof__(&cuMemAddressFree) address_free;
    __typeof__(&cuMemCreate) create;
    __typeof__(&cuMemRelease) release;
    __typeof__(&cuMemMap) map;
    __typeof__(&cuMemUnmap) unmap;
    __typeof__(&cuMemSetAccess) set_access;
    __typeof__(&cuMemGetAccess) get_access;
    __typeof__(&cuMemRetainAllocationHandle) retain;
    __typeof__(&cuMemGetAllocationPropertiesFromHandle) props;
    __typeof__(&cuMemPoolCreate) pool_create;
    __typeof__(&cuMemPoolDestroy) pool_destroy;
    __typeof__(&cuMemPoolSetAttribute) pool_set;
    __typeof__(&cuMemPoolGetAttribute) pool_get;
    __typeof__(&cuMemAllocFromPoolAsync) pool_alloc;
    __typeof__(&cuMemFreeAsync) free_async;
} d;

static void resolve(void)
{
    if (d.tried)
        return;
    d.tried = true;
#define GET(field, name)                                                      \
    do {                                                                      \
        void (*f_)(void) = vgpu_driver_sym(name);                             \
        memcpy(&d.field, &f_, sizeof(d.field));                               \
    } while (0)
    GET(granularity, "cuMemGetAllocationGranularity");
    GET(reserve, "cuMemAddressReserve");
    GET(address_free, "cuMemAddressFree");
    GET(create, "cuMemCreate");
    GET(release, "cuMemRelease");
    GET(map, "cuMemMap");
    GET(unmap, "cuMemUnmap");
    GET(set_access, "cuMemSetAccess");
    GET(get_access, "cuMemGetAccess");
    GET(retain, "cuMemRetainAllocationHandle");
    GET(props, "cuMemGetAllocationPropertiesFromHandle");
    GET(pool_create, "cuMemPoolCreate");
    GET(pool_destroy, "cuMemPoolDestroy");
    GET(pool_set, "cuMemPoolSetAttribute");
    GET(pool_get, "cuMemPoolGetAttribute");
    GET(pool_alloc, "cuMemAllocFromPoolAsync");
    GET(free_async, "cuMemFreeAsync");
#undef GET
}

/* The driver function at fn is there (resolved): else the call fails, and the log says why. */
#define NEED(fn, name)                                                        \
    do {                                                                      \
        resolve();                                                            \
        if (!(fn)) {                                                          \
            vgpu_log(VGPU_LOG_INFO, "the CUDA driver here has no %s: the call fails", name); \
            st = CUDA_ERROR_NOT_SUPPORTED;                                    \
            goto out;                                                         \
        }                                                                     \
    } while (0)

/* A refusal of guest input: logged with the reason, answered with st. */
#define REFUSE(code, ...)                                                     \
    do {                                                                      \
        vgpu_log(VGPU_LOG_INFO, __VA_ARGS__);                                 \
        st = (code);                                                          \
        goto out;                                                             \
    } while (0)

static int pool_kind(void)
{
    return vgpu_cuda_kind(VGPU_CUDA_H_MEM_POOL);
}

/* A location the guest may name: a device (host memory here is the server's, out of its reach). */
int vgpu_vmm_location_in(const Vgpu__Manual__MemLocation *m, CUmemLocation *loc)
{
    memset(loc, 0, sizeof(*loc));
    if (!m)
        return CUDA_ERROR_INVALID_VALUE;
    loc->type = (CUmemLocationType)m->type;
    loc->id = m->id;
    if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE) {
        vgpu_log(VGPU_LOG_INFO, "refused a memory location of type %d: vgpu serves device memory "
                 "only (host memory of the server is out of the guest's reach)", m->type);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return CUDA_SUCCESS;
}

static int prop_in(const Vgpu__Manual__MemProp *m, CUmemAllocationProp *p)
{
    memset(p, 0, sizeof(*p));
    if (!m)
        return CUDA_ERROR_INVALID_VALUE;
    p->type = (CUmemAllocationType)m->type;
    p->requestedHandleTypes = (CUmemAllocationHandleType)m->handle_types;
    p->allocFlags.compressionType = (unsigned char)m->compression;
    p->allocFlags.gpuDirectRDMACapable = m->rdma;
    p->allocFlags.usage = (unsigned short)m->usage;
    return vgpu_vmm_location_in(m->location, &p->location);
}

static int h_granularity(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    Vgpu__Manual__VmmRet r = VGPU__MANUAL__VMM_RET__INIT;
    CUmemAllocationProp prop;
    size_t g = 0;
    int st;

    (void)s;
    NEED(d.granularity, "cuMemGetAllocationGranularity");
    if ((st = prop_in(a->prop, &prop)))
        goto out;
    if ((st = d.granularity(&g, &prop, (CUmemAllocationGranularity_flags)a->flags)) == CUDA_SUCCESS) {
        r.value = g;
        st = reply(c, &r.base);
    }
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- address reservations ---- */

static int h_reserve(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    Vgpu__Manual__VmmRet r = VGPU__MANUAL__VMM_RET__INIT;
    CUdeviceptr p = 0;
    int st;

    NEED(d.reserve, "cuMemAddressReserve");
    NEED(d.address_free, "cuMemAddressFree");
    if (a->size == 0 || a->size > INT64_MAX)
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemAddressReserve of %llu bytes refused",
               s->who.vm_id, (unsigned long long)a->size);
    st = d.reserve(&p, a->size, a->alignment, a->ptr, a->flags);
    if (st != CUDA_SUCCESS)
        goto out;
    if (vgpu_vmm_reserve_add(s, p, a->size)) {
        d.address_free(p, a->size);
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    r.ptr = p;
    st = reply(c, &r.base);
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_address_free(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    int st, rc;

    NEED(d.address_free, "cuMemAddressFree");
    rc = vgpu_vmm_reserve_check_free(s, a->ptr, a->size);
    if (rc == -ENOENT)
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemAddressFree(%#llx, %llu) refused: not a "
               "reservation of this session (free exactly what cuMemAddressReserve gave)",
               s->who.vm_id, (unsigned long long)a->ptr, (unsigned long long)a->size);
    if (rc)
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemAddressFree(%#llx) refused: memory is "
               "still mapped in it (cuMemUnmap it first)", s->who.vm_id,
               (unsigned long long)a->ptr);
    if ((st = d.address_free(a->ptr, a->size)) == CUDA_SUCCESS)
        vgpu_vmm_reserve_remove(s, a->ptr);
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- physical allocations ---- */

static int h_create(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    Vgpu__Manual__VmmRet r = VGPU__MANUAL__VMM_RET__INIT;
    CUmemAllocationProp prop;
    CUmemGenericAllocationHandle h = 0;
    int st;

    NEED(d.create, "cuMemCreate");
    NEED(d.release, "cuMemRelease");
    if ((st = prop_in(a->prop, &prop)))
        goto out;
    if (a->size == 0 || a->size > INT64_MAX / 2)
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemCreate of %llu bytes refused",
               s->who.vm_id, (unsigned long long)a->size);
    /* charged before the GPU is asked, so a request over the VM's limit never takes memory */
    if (vgpu_memory_charge(s, (int64_t)a->size)) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    if ((st = d.create(&h, a->size, &prop, a->flags)) == CUDA_SUCCESS &&
        vgpu_vmm_alloc_add(s, h, a->size)) {
        d.release(h);
        st = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (st != CUDA_SUCCESS) {
        vgpu_memory_charge(s, -(int64_t)a->size);
        goto out;
    }
    r.handle = h;
    st = reply(c, &r.base);
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_release(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    int st;

    NEED(d.release, "cuMemRelease");
    if (!vgpu_vmm_alloc_live(s, a->handle))
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemRelease of handle %#llx refused: not an "
               "allocation of this session", s->who.vm_id, (unsigned long long)a->handle);
    /* the bytes count until no reference and no mapping holds them */
    if ((st = d.release(a->handle)) == CUDA_SUCCESS)
        vgpu_memory_charge(s, -(int64_t)vgpu_vmm_alloc_put(s, a->handle));
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_retain(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    Vgpu__Manual__VmmRet r = VGPU__MANUAL__VMM_RET__INIT;
    const struct vgpu_vmm_map *m = vgpu_vmm_map_at(s, a->ptr);
    CUmemGenericAllocationHandle h = 0;
    int st;

    NEED(d.retain, "cuMemRetainAllocationHandle");
    NEED(d.release, "cuMemRelease");
    if (!m)
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemRetainAllocationHandle(%#llx) refused: "
               "nothing of this session is mapped there", s->who.vm_id,
               (unsigned long long)a->ptr);
    if ((st = d.retain(&h, (void *)(uintptr_t)a->ptr)) != CUDA_SUCCESS)
        goto out;
    if (h != m->handle || vgpu_vmm_alloc_retain(s, h)) {
        d.release(h);      /* the driver disagrees with the table: keep the table's word */
        st = CUDA_ERROR_INVALID_VALUE;
        goto out;
    }
    r.handle = h;
    st = reply(c, &r.base);
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_props(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    Vgpu__Manual__VmmRet r = VGPU__MANUAL__VMM_RET__INIT;
    Vgpu__Manual__MemProp p = VGPU__MANUAL__MEM_PROP__INIT;
    Vgpu__Manual__MemLocation loc = VGPU__MANUAL__MEM_LOCATION__INIT;
    CUmemAllocationProp prop;
    int st;

    NEED(d.props, "cuMemGetAllocationPropertiesFromHandle");
    if (!vgpu_vmm_alloc_live(s, a->handle))
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemGetAllocationPropertiesFromHandle(%#llx) "
               "refused: not an allocation of this session", s->who.vm_id,
               (unsigned long long)a->handle);
    memset(&prop, 0, sizeof(prop));
    if ((st = d.props(&prop, a->handle)) != CUDA_SUCCESS)
        goto out;
    p.type = prop.type;
    p.handle_types = prop.requestedHandleTypes;
    loc.type = prop.location.type;
    loc.id = prop.location.id;
    p.location = &loc;
    p.compression = prop.allocFlags.compressionType;
    p.rdma = prop.allocFlags.gpuDirectRDMACapable;
    p.usage = prop.allocFlags.usage;
    r.prop = &p;
    st = reply(c, &r.base);
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- mappings ---- */

static const char *map_refusal(int rc)
{
    switch (rc) {
    case -ENOENT: return "the handle is not an allocation of this session";
    case -EFAULT: return "the range is not inside one of this session's reservations "
                         "(cuMemAddressReserve it first)";
    case -EEXIST: return "the range overlaps a mapping (cuMemUnmap it first)";
    case -ERANGE: return "offset and size reach past the allocation's end";
    default: return "out of memory";
    }
}

static int h_map(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    int st, rc;

    NEED(d.map, "cuMemMap");
    NEED(d.unmap, "cuMemUnmap");
    if ((rc = vgpu_vmm_map_check(s, a->ptr, a->size, a->offset, a->handle)))
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemMap(%#llx, %llu) refused: %s", s->who.vm_id,
               (unsigned long long)a->ptr, (unsigned long long)a->size, map_refusal(rc));
    if ((st = d.map(a->ptr, a->size, a->offset, a->handle, a->flags)) != CUDA_SUCCESS)
        goto out;
    if (vgpu_vmm_map_add(s, a->ptr, a->size, a->handle)) {
        d.unmap(a->ptr, a->size);
        st = CUDA_ERROR_OUT_OF_MEMORY;
    }
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_unmap(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    int st;

    NEED(d.unmap, "cuMemUnmap");
    if (vgpu_vmm_tiled(s, a->ptr, a->size))
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemUnmap(%#llx, %llu) refused: not whole "
               "mappings of this session", s->who.vm_id, (unsigned long long)a->ptr,
               (unsigned long long)a->size);
    /* from here on the range is no memory of the session; physical memory no one holds is uncharged */
    if ((st = d.unmap(a->ptr, a->size)) == CUDA_SUCCESS)
        vgpu_memory_charge(s, -(int64_t)vgpu_vmm_unmap(s, a->ptr, a->size));
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

int vgpu_vmm_access_descs_in(Vgpu__Manual__AccessDesc *const *acc, size_t n,
                             CUmemAccessDesc *desc)
{
    int st;

    for (size_t i = 0; i < n; i++) {
        if (!acc[i] || (st = vgpu_vmm_location_in(acc[i]->location, &desc[i].location)))
            return acc[i] ? st : CUDA_ERROR_INVALID_VALUE;
        desc[i].flags = (CUmemAccess_flags)acc[i]->flags;
    }
    return CUDA_SUCCESS;
}

int vgpu_vmm_pool_props_in(const Vgpu__Manual__MemProp *m, CUmemPoolProps *p)
{
    int st = vgpu_vmm_location_in(m->location, &p->location);

    if (st)
        return st;
    p->allocType = (CUmemAllocationType)m->type;
    p->handleTypes = (CUmemAllocationHandleType)m->handle_types;
    p->maxSize = m->max_size;
    p->usage = (unsigned short)m->usage;
    return CUDA_SUCCESS;
}

/* Access descriptors as the driver takes them; at most 64 (one per device is what they mean). */
static int access_in(const Vgpu__Manual__VmmArgs *a, CUmemAccessDesc *desc, bool *any)
{
    int st;

    *any = false;
    if (a->n_access == 0 || a->n_access > 64)
        return CUDA_ERROR_INVALID_VALUE;
    if ((st = vgpu_vmm_access_descs_in(a->access, a->n_access, desc)))
        return st;
    for (size_t i = 0; i < a->n_access; i++)
        *any |= desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE;
    return CUDA_SUCCESS;
}

static int h_set_access(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    CUmemAccessDesc desc[64];
    bool any;
    int st;

    NEED(d.set_access, "cuMemSetAccess");
    if (vgpu_vmm_tiled(s, a->ptr, a->size))
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemSetAccess(%#llx, %llu) refused: not whole "
               "mappings of this session (cuMemMap first)", s->who.vm_id,
               (unsigned long long)a->ptr, (unsigned long long)a->size);
    if ((st = access_in(a, desc, &any)))
        goto out;
    if ((st = d.set_access(a->ptr, a->size, desc, a->n_access)) == CUDA_SUCCESS)
        vgpu_vmm_set_access(s, a->ptr, a->size, any);
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_get_access(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    Vgpu__Manual__VmmRet r = VGPU__MANUAL__VMM_RET__INIT;
    CUmemLocation loc;
    unsigned long long flags = 0;
    int st;

    NEED(d.get_access, "cuMemGetAccess");
    if (!vgpu_vmm_reserved(s, a->ptr))
        REFUSE(CUDA_ERROR_INVALID_VALUE, "vm %u: cuMemGetAccess(%#llx) refused: not in one of "
               "this session's reservations", s->who.vm_id, (unsigned long long)a->ptr);
    if ((st = vgpu_vmm_location_in(a->location, &loc)))
        goto out;
    if ((st = d.get_access(&flags, &loc, a->ptr)) == CUDA_SUCCESS) {
        r.value = flags;
        st = reply(c, &r.base);
    }
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* ---- memory pools ---- */

/*
 * What a pool keeps cached after frees is not charged to the VM's memory
 * limit, and each pool caches up to its release threshold: a session may
 * create at most VMM_POOLS_MAX pools, and under a limit a threshold the
 * guest sets is clamped to what the VM may still allocate then.
 */
#define VMM_POOLS_MAX 16

static cuuint64_t release_threshold(struct vgpu_session *s, cuuint64_t v)
{
    const struct vgpu_vm_limits *lim = vgpu_config_vm(vgpu_cfg, s->who.vm_id);
    uint64_t held = vgpu_sched_vm_held(VGPU_HELD_MEMORY), room;

    if (!lim || !lim->memory)
        return v;
    room = held < lim->memory ? lim->memory - held : 0;
    if (v <= room)
        return v;
    vgpu_log(VGPU_LOG_INFO, "vm %u: a memory pool's release threshold of %llu bytes lowered to "
             "%llu, what the VM's memory limit leaves (memory in [vm %u])", s->who.vm_id,
             (unsigned long long)v, (unsigned long long)room, s->who.vm_id);
    return room;
}

static int h_pool_create(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    Vgpu__Manual__VmmRet r = VGPU__MANUAL__VMM_RET__INIT;
    CUmemPoolProps props;
    CUmemoryPool pool = NULL;
    int st;

    NEED(d.pool_create, "cuMemPoolCreate");
    NEED(d.pool_destroy, "cuMemPoolDestroy");
    memset(&props, 0, sizeof(props));
    if (!a->prop) {
        st = CUDA_ERROR_INVALID_VALUE;
        goto out;
    }
    if (s->pools_created >= VMM_POOLS_MAX) {
        vgpu_log(VGPU_LOG_WARN, "vm %u: cuMemPoolCreate refused: a session may create at most %d "
                 "memory pools (destroy one it no longer needs first)", s->who.vm_id,
                 VMM_POOLS_MAX);
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    if ((st = vgpu_vmm_pool_props_in(a->prop, &props)))
        goto out;
    if ((st = d.pool_create(&pool, &props)) != CUDA_SUCCESS)
        goto out;
    if (vgpu_handle_add(s, pool_kind(), (uintptr_t)pool)) {
        d.pool_destroy(pool);
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    s->pools_created++;
    r.handle = (uintptr_t)pool;
    st = reply(c, &r.base);
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* The pool the guest named, if the session was given it (created, or a device's default). */
static bool pool_ok(struct vgpu_session *s, uint64_t pool)
{
    if (pool && vgpu_handle_known(s, pool_kind(), pool))
        return true;
    vgpu_log(VGPU_LOG_INFO, "vm %u: memory pool %#llx refused: not this session's",
             s->who.vm_id, (unsigned long long)pool);
    return false;
}

static int h_pool_destroy(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    int st = CUDA_ERROR_INVALID_VALUE;

    NEED(d.pool_destroy, "cuMemPoolDestroy");
    /* allocations still out stay valid (and counted) until freed, as the driver keeps them */
    if (pool_ok(s, a->pool) &&
        (st = d.pool_destroy((CUmemoryPool)(uintptr_t)a->pool)) == CUDA_SUCCESS) {
        vgpu_handle_remove(s, pool_kind(), a->pool);
        /* a device's default pool cannot be destroyed: this was a created one */
        if (s->pools_created > 0)
            s->pools_created--;
    }
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

/* The size of a pool attribute's value: an int or a cuuint64_t; 0 for one not known. */
static size_t pool_attr_size(int attr)
{
    switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
        return sizeof(int);
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        return sizeof(cuuint64_t);
    default:
        return 0;
    }
}

static int h_pool_attr(struct vgpu_session *s, struct vgpu_manual_call *c, bool set)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    Vgpu__Manual__VmmRet r = VGPU__MANUAL__VMM_RET__INIT;
    size_t n = pool_attr_size(a->attr);
    CUmemoryPool pool = (CUmemoryPool)(uintptr_t)a->pool;
    int iv = (int)a->value;
    cuuint64_t v = a->value;
    void *val = n == sizeof(int) ? (void *)&iv : (void *)&v;
    int st = CUDA_ERROR_INVALID_VALUE;

    NEED(d.pool_set, "cuMemPoolSetAttribute");
    NEED(d.pool_get, "cuMemPoolGetAttribute");
    if (!n || !pool_ok(s, a->pool))
        goto out;
    if (set) {
        if (a->attr == CU_MEMPOOL_ATTR_RELEASE_THRESHOLD)
            v = release_threshold(s, v);
        st = d.pool_set(pool, (CUmemPool_attribute)a->attr, val);
    } else if ((st = d.pool_get(pool, (CUmemPool_attribute)a->attr, val)) == CUDA_SUCCESS) {
        r.value = n == sizeof(int) ? (uint64_t)(int64_t)iv : v;
        st = reply(c, &r.base);
    }
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

static int h_pool_set(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return h_pool_attr(s, c, true);
}

static int h_pool_get(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    return h_pool_attr(s, c, false);
}

/* cuMemAllocFromPoolAsync: charged and entered as cuMemAllocAsync is; cuMemFreeAsync frees it. */
static int h_pool_alloc(struct vgpu_session *s, struct vgpu_manual_call *c)
{
    UNPACK(Vgpu__Manual__VmmArgs, vmm_args, c);
    Vgpu__Manual__VmmRet r = VGPU__MANUAL__VMM_RET__INIT;
    CUdeviceptr p = 0;
    int st = CUDA_ERROR_INVALID_VALUE;

    NEED(d.pool_alloc, "cuMemAllocFromPoolAsync");
    NEED(d.free_async, "cuMemFreeAsync");
    if (!pool_ok(s, a->pool))
        goto out;
    if (!stream_ok(s, a->stream))
        REFUSE(CUDA_ERROR_INVALID_HANDLE, "vm %u: cuMemAllocFromPoolAsync refused: stream %#llx "
               "is not this session's", s->who.vm_id, (unsigned long long)a->stream);
    if (a->size == 0 || a->size > INT64_MAX / 2)
        goto out;
    if (vgpu_graph_alloc_refused(s, (void *)(uintptr_t)a->stream, "cuMemAllocFromPoolAsync",
                                 "an allocation node from a pool of the program's is not "
                                 "charged to the VM's memory limit yet; allocate from the "
                                 "default pool (cuMemAllocAsync) in the capture, or before it")) {
        st = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
        goto out;
    }
    if (vgpu_memory_charge(s, (int64_t)a->size)) {
        st = CUDA_ERROR_OUT_OF_MEMORY;
        goto out;
    }
    st = d.pool_alloc(&p, a->size, (CUmemoryPool)(uintptr_t)a->pool,
                      (CUstream)(uintptr_t)a->stream);
    if (st == CUDA_SUCCESS && vgpu_range_add(s, p, a->size, true)) {
        d.free_async(p, (CUstream)(uintptr_t)a->stream);
        st = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (st != CUDA_SUCCESS) {
        vgpu_memory_charge(s, -(int64_t)a->size);
        goto out;
    }
    r.ptr = p;
    st = reply(c, &r.base);
out:
    vgpu__manual__vmm_args__free_unpacked(a, &unpack_alloc_);
    return st;
}

#define ID(name) VGPU_CUDA_ID_##name

static const struct {
    uint32_t id;
    vgpu_manual_fn fn;
} handlers[] = {
    { ID(cuMemGetAllocationGranularity), h_granularity },
    { ID(cuMemAddressReserve), h_reserve }, { ID(cuMemAddressFree), h_address_free },
    { ID(cuMemCreate), h_create }, { ID(cuMemRelease), h_release },
    { ID(cuMemRetainAllocationHandle), h_retain },
    { ID(cuMemGetAllocationPropertiesFromHandle), h_props },
    { ID(cuMemMap), h_map }, { ID(cuMemUnmap), h_unmap },
    { ID(cuMemSetAccess), h_set_access }, { ID(cuMemGetAccess), h_get_access },
    { ID(cuMemPoolCreate), h_pool_create }, { ID(cuMemPoolDestroy), h_pool_destroy },
    { ID(cuMemPoolSetAttribute), h_pool_set }, { ID(cuMemPoolGetAttribute), h_pool_get },
    { ID(cuMemAllocFromPoolAsync), h_pool_alloc }, { ID(cuMemAllocFromPoolAsync_ptsz), h_pool_alloc },
};

vgpu_manual_fn vgpu_vmm_manual_find(uint32_t id)
{
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (handlers[i].id == id)
            return handlers[i].fn;
    return NULL;
}
