/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control plane (docs/protocol.md, "The two planes"): vgpu's own
 * operations, each a message of its own in the envelope (wire/envelope.proto
 * Control), apart from the CUDA calls.  Attaching the queue pair, registering and dropping
 * shared host regions (a memfd, or a slot of the VM's shared BAR), handing
 * out the runtime's error table, closing.
 *
 * Each operation returns 0 or a negative errno with a sentence for the
 * client's log; vgpu_control_status() maps the errno to the reply's
 * ControlStatus in one place.  A memfd passed with the frame belongs to
 * the operation that takes it, and is closed whatever happens.
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carrier.h"
#include "server_internal.h"
#include "vgpu/fdio.h"
#include "vgpu/wire.h"

/* What an operation says about itself, besides its errno. */
struct ctl_out {
    char why[256];
    int cuda_status;
    uint64_t device_pointer;    /* a mapped region's */
    bool retired;               /* an unregistered region kept until the session ends */
};

static int refuse(struct ctl_out *o, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct ctl_out *o, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(o->why, sizeof(o->why), fmt, ap);
    va_end(ap);
    vgpu_log(VGPU_LOG_INFO, "control: %s", o->why);
    return err;
}

int vgpu_control_status(int err)
{
    switch (err) {
    case 0:
        return VGPU__WIRE__CONTROL_STATUS__CONTROL_OK;
    case -EBADF:
        return VGPU__WIRE__CONTROL_STATUS__CONTROL_NO_FD;
    case -EBUSY:
        return VGPU__WIRE__CONTROL_STATUS__CONTROL_BUSY;
    case -ENOSPC:
        return VGPU__WIRE__CONTROL_STATUS__CONTROL_LIMIT;
    case -ENOMEM:
        return VGPU__WIRE__CONTROL_STATUS__CONTROL_NO_MEMORY;
    case -ENOENT:
        return VGPU__WIRE__CONTROL_STATUS__CONTROL_NOT_FOUND;
    case -EIO:
        return VGPU__WIRE__CONTROL_STATUS__CONTROL_CUDA;
    case -EOPNOTSUPP:
        return VGPU__WIRE__CONTROL_STATUS__CONTROL_UNSUPPORTED;
    default:
        return VGPU__WIRE__CONTROL_STATUS__CONTROL_INVALID;
    }
}

/* ---- shared host regions ---- */

struct vgpu_region *vgpu_region_find(struct vgpu_session *s, uint32_t id)
{
    for (int i = 0; id && i < s->nregions; i++)
        if (s->regions[i].id == id)
            return &s->regions[i];
    return NULL;
}

static void region_drop(struct vgpu_session *s, struct vgpu_region *r)
{
    if (r->devptr)
        vgpu_range_drop(s, r->devptr);
    cudaHostUnregister(r->base);
    if (!r->in_bar)
        munmap(r->base, r->size);
}

void vgpu_regions_release(struct vgpu_session *s)
{
    if (s->qp_mem) {
        vgpu_carrier_leave_qp(s);
        vgpu_qp_mark_gone(s->qp.hdr, (uint32_t)getpid());
        if (!s->qp_in_bar)
            munmap(s->qp_mem, s->qp_len);
    }
    s->qp_mem = NULL;
    for (int i = 0; i < s->nretired; i++)
        region_drop(s, &s->retired[i]);
    free(s->retired);
    s->retired = NULL;
    s->nretired = 0;
    for (int i = 0; i < s->nregions; i++)
        region_drop(s, &s->regions[i]);
    free(s->regions);
    s->regions = NULL;
    s->nregions = 0;
}

bool vgpu_sealed_memfd(int fd, uint64_t size)
{
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);

    return seals >= 0 && (seals & F_SEAL_SHRINK) && fstat(fd, &st) == 0 &&
           (uint64_t)st.st_size >= size;
}

static uint64_t regions_bytes(const struct vgpu_session *s)
{
    uint64_t n = 0;

    for (int i = 0; i < s->nregions; i++)
        n += s->regions[i].size;
    for (int i = 0; i < s->nretired; i++)   /* still mapped and pinned */
        n += s->retired[i].size;
    return n;
}

/* Room for one more region, and id free: 0 or -errno. */
static int region_room(struct vgpu_session *s, uint32_t id, struct ctl_out *o)
{
    struct vgpu_region *r;

    if (!id)
        return refuse(o, -EINVAL, "region id 0 is not a region: use an id from 1");
    if (vgpu_region_find(s, id))
        return refuse(o, -EBUSY, "region %u is registered already: unregister it first", id);
    if (s->nregions + s->nretired >= VGPU_MAX_REGIONS)
        return refuse(o, -ENOSPC, "a session holds at most %d shared regions (regions freed "
                    "after a stream capture count until the session ends): free one first",
                    VGPU_MAX_REGIONS);
    r = realloc(s->regions, (size_t)(s->nregions + 1) * sizeof(*r));
    if (!r)
        return refuse(o, -ENOMEM, "no memory for region %u", id);
    s->regions = r;
    return 0;
}

/*
 * Pins [base, base+size) as region id of this session: 0 or -EIO (cuda_status
 * set).  A mapped region is also pinned for kernels: its device pointer
 * becomes session memory, which copies, memsets and launches may name.
 */
static int region_pin(struct vgpu_session *s, uint32_t id, uint8_t *base, uint64_t size,
                      bool in_bar, bool mapped, struct ctl_out *o)
{
    int st = cudaHostRegister(base, size, mapped ? cudaHostRegisterMapped : cudaHostRegisterDefault);
    void *dev = NULL;

    if (st == cudaSuccess && mapped && (st = cudaHostGetDevicePointer(&dev, base, 0)) != cudaSuccess)
        cudaHostUnregister(base);
    if (st == cudaSuccess && mapped && vgpu_range_add(s, (uint64_t)(uintptr_t)dev, size, false)) {
        cudaHostUnregister(base);
        return refuse(o, -ENOMEM, "no memory to track region %u", id);
    }
    if (st != cudaSuccess) {
        o->cuda_status = st;
        return refuse(o, -EIO, "the server's CUDA runtime did not pin region %u (%llu bytes%s): %s",
                    id, (unsigned long long)size, mapped ? ", mapped" : "",
                    cudaGetErrorName((cudaError_t)st));
    }
    o->device_pointer = (uint64_t)(uintptr_t)dev;
    s->regions[s->nregions++] = (struct vgpu_region){ id, base, size, in_bar, o->device_pointer,
                                                      UINT64_MAX };
    return 0;
}

/*
 * Where size bytes of fd from off are mapped here: for a mapped region, at
 * the client's own address when that is free in this process (then the
 * device pointer equals the client's pointer, as unified addressing
 * promises); otherwise anywhere.
 */
static void *region_map(int fd, uint64_t off, uint64_t size, bool mapped, uint64_t want)
{
    void *base;

    if (mapped && want && !(want & 4095)) {
        base = mmap((void *)(uintptr_t)want, size, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_FIXED_NOREPLACE, fd, (off_t)off);
        if (base == (void *)(uintptr_t)want)
            return base;
        if (base != MAP_FAILED)
            munmap(base, size);     /* a kernel that took the address as a hint only */
    }
    return mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)off);
}

/*
 * A host region the client shares: the memfd passed with this frame must be
 * at least size bytes and sealed against shrinking (a client that shrank a
 * mapped file would make our accesses fault); it is mapped and pinned.
 */
static int register_memfd(struct vgpu_session *s, const Vgpu__Wire__RegisterMemfdRegion *a,
                          int fd, struct ctl_out *o)
{
    void *base;
    int rc;

    if (fd < 0 || !vgpu_sealed_memfd(fd, a->size))
        return refuse(o, -EBADF, "region %u: no memfd sealed against shrinking of %llu bytes came "
                    "with it", a->id, (unsigned long long)a->size);
    if (!a->size)
        return refuse(o, -EINVAL, "region %u: a region of 0 bytes", a->id);
    if (a->size > VGPU_REGIONS_MAX_BYTES - regions_bytes(s))
        return refuse(o, -ENOSPC, "region %u: over the %llu GiB a session may share", a->id,
                    (unsigned long long)(VGPU_REGIONS_MAX_BYTES >> 30));
    rc = region_room(s, a->id, o);
    if (rc)
        return rc;
    base = region_map(fd, 0, a->size, a->mapped, a->address);
    if (base == MAP_FAILED)
        return refuse(o, -ENOMEM, "region %u: mapping %llu bytes failed: %s", a->id,
                    (unsigned long long)a->size, strerror(errno));
    rc = region_pin(s, a->id, base, a->size, false, a->mapped, o);
    if (rc)
        munmap(base, a->size);
    return rc;
}

/*
 * Mapped host memory in the VM's shared BAR: its pages mapped again from the
 * BAR's memfd, at the guest process's address where that range is free here
 * (the device pointer then equals the guest's pointer, as unified
 * addressing promises), otherwise anywhere.
 */
static int register_bar_mapped(struct vgpu_session *s, const Vgpu__Wire__RegisterBarRegion *a,
                               uint64_t own_slot, struct ctl_out *o)
{
    uint64_t slot = vgpu_stub_slot_size(vgpu_link_bar_size);
    void *base;
    int rc;

    if (vgpu_link_bar_fd < 0)
        return refuse(o, -EOPNOTSUPP, "region %u: the shared BAR's memory cannot be mapped again "
                    "here", a->id);
    /* the process's own slot holds its queue pair and staging memory, never mapped memory */
    if (own_slot != UINT64_MAX && a->bar_offset < (own_slot + 1) * slot &&
        a->bar_offset + a->size > own_slot * slot)
        return refuse(o, -EINVAL, "region %u: [%#llx, +%#llx) overlaps this process's own slot "
                    "of the shared BAR, which mapped memory may not use", a->id,
                    (unsigned long long)a->bar_offset, (unsigned long long)a->size);
    if (a->size > VGPU_REGIONS_MAX_BYTES - regions_bytes(s))
        return refuse(o, -ENOSPC, "region %u: over the %llu GiB a session may share", a->id,
                    (unsigned long long)(VGPU_REGIONS_MAX_BYTES >> 30));
    /* retired regions too: still pinned, and a captured graph may still write them */
    for (int i = 0; i < s->nregions + s->nretired; i++) {
        const struct vgpu_region *r = i < s->nregions ? &s->regions[i]
                                                      : &s->retired[i - s->nregions];

        if (r->bar_offset != UINT64_MAX && a->bar_offset < r->bar_offset + r->size &&
            r->bar_offset < a->bar_offset + a->size)
            return refuse(o, -EINVAL, "region %u: [%#llx, +%#llx) overlaps region %u of the "
                        "shared BAR%s", a->id, (unsigned long long)a->bar_offset,
                        (unsigned long long)a->size, r->id,
                        i < s->nregions ? "" : " (freed after a stream capture: kept)");
    }
    rc = region_room(s, a->id, o);
    if (rc)
        return rc;
    base = region_map(vgpu_link_bar_fd, a->bar_offset, a->size, true, a->address);
    if (base == MAP_FAILED)
        return refuse(o, -ENOMEM, "region %u: mapping %llu bytes of the shared BAR failed: %s",
                    a->id, (unsigned long long)a->size, strerror(errno));
    rc = region_pin(s, a->id, base, a->size, false, true, o);
    if (rc)
        munmap(base, a->size);
    else
        s->regions[s->nregions - 1].bar_offset = a->bar_offset;
    return rc;
}

/*
 * Part of a slot of the VM's shared BAR: page-aligned, inside one slot (the
 * one of the session's queue pair, when it has one there), no fd.  The link
 * gives a slot's queue pair to one session at a time; its staging memory
 * stays that session's too.  Mapped host memory (a->mapped) lies in other
 * slots, which the guest process claimed for it.
 */
static int register_bar(struct vgpu_session *s, const Vgpu__Wire__RegisterBarRegion *a,
                        struct ctl_out *o)
{
    uint64_t slot = vgpu_stub_slot_size(vgpu_link_bar_size);
    uint64_t own = s->qp_in_bar ? (uint64_t)((uint8_t *)s->qp_mem - vgpu_link_bar) / slot
                                : UINT64_MAX;
    int rc;

    if (!vgpu_link_bar)
        return refuse(o, -EOPNOTSUPP, "region %u: this connection has no shared BAR (it is not "
                    "a VM's, or QEMU gave the device no memory backend)", a->id);
    if (!a->size || (a->bar_offset | a->size) & 4095 || a->bar_offset > vgpu_link_bar_size ||
        a->size > vgpu_link_bar_size - a->bar_offset)
        return refuse(o, -EINVAL, "region %u: [%#llx, +%#llx) is not page-aligned inside the "
                    "%llu-byte shared BAR", a->id, (unsigned long long)a->bar_offset,
                    (unsigned long long)a->size, (unsigned long long)vgpu_link_bar_size);
    if (a->mapped)
        return register_bar_mapped(s, a, own, o);
    if (a->bar_offset / slot != (a->bar_offset + a->size - 1) / slot ||
        (own != UINT64_MAX && a->bar_offset / slot != own))
        return refuse(o, -EINVAL, "region %u: [%#llx, +%#llx) is not inside this process's slot "
                    "of the shared BAR", a->id, (unsigned long long)a->bar_offset,
                    (unsigned long long)a->size);
    rc = region_room(s, a->id, o);
    if (rc)
        return rc;
    rc = region_pin(s, a->id, vgpu_link_bar + a->bar_offset, a->size, true, false, o);
    if (rc == 0) {
        s->regions[s->nregions - 1].bar_offset = a->bar_offset;
        vgpu_log(VGPU_LOG_INFO, "vm %u: shared BAR slot at %#llx (%llu MiB) is region %u of "
                 "this session", s->who.vm_id, (unsigned long long)a->bar_offset,
                 (unsigned long long)(a->size >> 20), a->id);
    }
    return rc;
}

static int unregister(struct vgpu_session *s, const Vgpu__Wire__UnregisterRegion *a,
                      struct ctl_out *o)
{
    struct vgpu_region *r = vgpu_region_find(s, a->id);

    if (!r)
        return refuse(o, -ENOENT, "region %u is not registered", a->id);
    /* as cudaFreeHost: copies still running from or to it finish first */
    cudaDeviceSynchronize();
    if (s->capture_seen) {
        /* a captured copy may name it at every launch of its graph: kept until the session ends */
        struct vgpu_region *t = realloc(s->retired, (size_t)(s->nretired + 1) * sizeof(*t));

        if (!t)
            return refuse(o, -ENOMEM, "no memory to retire region %u", a->id);
        s->retired = t;
        s->retired[s->nretired++] = *r;
        o->retired = true;
    } else {
        region_drop(s, r);
    }
    *r = s->regions[--s->nregions];
    return 0;
}

/* ---- the queue pair ---- */

#define QP_MAX_BYTES ((uint64_t)64 << 20)

/* The memory of a queue pair in the VM's shared BAR: a slot's start with a doorbell. */
static int qp_in_bar(const Vgpu__Wire__AttachQueuePair *a, void **mem, int *bell,
                     struct ctl_out *o)
{
    /* a slot is 8 MiB, or the whole BAR below 16 MiB */
    uint64_t slot = vgpu_stub_slot_size(vgpu_link_bar_size);
    uint64_t k = a->bar_offset >> VGPU_STUB_SLOT_SHIFT;

    if (!vgpu_link_bar)
        return refuse(o, -EOPNOTSUPP, "queue pair: this connection has no shared BAR");
    if (a->bar_offset % slot || a->bar_offset >= vgpu_link_bar_size || a->size > slot)
        return refuse(o, -EINVAL, "queue pair: %#llx is not the start of a slot of the shared "
                    "BAR, or %llu bytes do not fit one", (unsigned long long)a->bar_offset,
                    (unsigned long long)a->size);
    if (k >= (uint64_t)vgpu_link_nbells || vgpu_link_bells[k] < 0)
        return refuse(o, -EOPNOTSUPP, "queue pair: the slot at %#llx has no doorbell (QEMU gave "
                    "the device fewer)", (unsigned long long)a->bar_offset);
    *mem = vgpu_link_bar + a->bar_offset;
    *bell = vgpu_link_bells[k];
    return 0;
}

/* Takes the pair in its header: from nobody, or from a session that ended. */
static int qp_take(struct vgpu_session *s, struct ctl_out *o)
{
    uint64_t was = __atomic_load_n(&s->qp.hdr->server_state, __ATOMIC_SEQ_CST);

    if ((was && !(was & 1)) ||
        !__atomic_compare_exchange_n(&s->qp.hdr->server_state, &was, (uint64_t)getpid() << 32,
                                     0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        return refuse(o, -EBUSY, "queue pair refused: another session has it");
    return 0;
}

/*
 * The queue pair: exactly one per session, not pinned.  Host-direct, a
 * sealed memfd of at least its size; in a guest, the head of a slot of the
 * shared BAR that has a doorbell.
 */
static int attach_qp(struct vgpu_session *s, const Vgpu__Wire__AttachQueuePair *a, int fd,
                     struct ctl_out *o)
{
    void *mem = NULL;
    int bell = -1, rc;

    if (s->qp_mem)
        return refuse(o, -EBUSY, "this session has a queue pair already");
    if (!a->size)
        return refuse(o, -EINVAL, "queue pair: a pair of 0 bytes");
    if (a->size > QP_MAX_BYTES)
        return refuse(o, -ENOSPC, "queue pair: %llu bytes, over the %llu MiB a pair may have",
                    (unsigned long long)a->size, (unsigned long long)(QP_MAX_BYTES >> 20));
    if (a->in_bar) {
        if (fd >= 0)
            return refuse(o, -EBADF, "queue pair in the shared BAR: no fd may come with it");
        rc = qp_in_bar(a, &mem, &bell, o);
        if (rc)
            return rc;
    } else {
        if (fd < 0 || !vgpu_sealed_memfd(fd, a->size))
            return refuse(o, -EBADF, "queue pair: no memfd sealed against shrinking of %llu "
                        "bytes came with it", (unsigned long long)a->size);
        mem = mmap(NULL, a->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (mem == MAP_FAILED)
            return refuse(o, -ENOMEM, "queue pair: mapping %llu bytes failed: %s",
                        (unsigned long long)a->size, strerror(errno));
    }
    if (vgpu_qp_attach(&s->qp, mem, a->size))
        rc = refuse(o, -EINVAL, "queue pair refused: its header does not describe %llu bytes of "
                  "rings", (unsigned long long)a->size);
    else
        rc = qp_take(s, o);
    if (rc == 0) {
        rc = vgpu_carrier_use_qp(s, a->in_bar, bell);   /* requests may come through it from now on */
        if (rc) {
            vgpu_qp_mark_gone(s->qp.hdr, (uint32_t)getpid());
            rc = refuse(o, -ENOMEM, "queue pair: the session cannot watch its doorbell: %s",
                        strerror(-rc));
        }
    }
    if (rc) {
        if (!a->in_bar)
            munmap(mem, a->size);
        return rc;
    }
    s->qp_mem = mem;
    s->qp_len = a->size;
    s->qp_in_bar = a->in_bar;
    if (a->in_bar)
        vgpu_log(VGPU_LOG_INFO, "vm %u: queue pair in the shared BAR slot at %#llx", s->who.vm_id,
                 (unsigned long long)a->bar_offset);
    return 0;
}

/* ---- the error table ---- */

#define ERROR_CODES 1100   /* cudaError_t values asked about: every one CUDA 13 has */

static int error_table(struct vgpu_session *s, struct vgpu_arena *arena,
                       Vgpu__Wire__ErrorTable *t, struct ctl_out *o)
{
    const char *unknown = cudaGetErrorName((cudaError_t)-1);
    int32_t *codes = vgpu_arena_alloc(arena, (ERROR_CODES + 1) * sizeof(*codes));
    char **names = vgpu_arena_alloc(arena, (ERROR_CODES + 1) * sizeof(*names));
    char **texts = vgpu_arena_alloc(arena, (ERROR_CODES + 1) * sizeof(*texts));
    size_t n = 0;

    if (!codes || !names || !texts)
        return refuse(o, -ENOMEM, "no memory for the error table");
    for (int code = 0; code < ERROR_CODES; code++) {
        const char *name = cudaGetErrorName((cudaError_t)code);

        if (!name || (unknown && !strcmp(name, unknown) && code != 0))
            continue;
        codes[n] = code;
        names[n] = (char *)name;
        texts[n] = (char *)cudaGetErrorString((cudaError_t)code);
        n++;
    }
    /* the text for codes the runtime does not know */
    codes[n] = -1;
    names[n] = (char *)(unknown ? unknown : "");
    texts[n] = (char *)cudaGetErrorString((cudaError_t)-1);
    n++;
    t->n_code = t->n_name = t->n_text = n;
    t->code = codes;
    t->name = names;
    t->text = texts;
    t->init_status = s->init_status;
    return 0;
}

/* ---- one operation ---- */

int vgpu_control_handle(struct vgpu_session *s, const Vgpu__Wire__Control *c, int fd,
                        struct vgpu_arena *arena, Vgpu__Wire__ControlReply *r)
{
    static char no_memory[] = "the server is out of memory";
    struct ctl_out *o = vgpu_arena_alloc(arena, sizeof(*o));   /* the reply points into it */
    Vgpu__Wire__ErrorTable *t;
    bool takes_fd = c->op_case == VGPU__WIRE__CONTROL__OP_ATTACH_QUEUE_PAIR ||
                    c->op_case == VGPU__WIRE__CONTROL__OP_REGISTER_MEMFD_REGION;
    int rc;

    vgpu__wire__control_reply__init(r);
    if (!o) {
        if (fd >= 0)
            close(fd);
        r->status = vgpu_control_status(-ENOMEM);
        r->message = no_memory;
        return -ENOMEM;
    }
    memset(o, 0, sizeof(*o));
    if (fd >= 0 && !takes_fd) {
        rc = refuse(o, -EBADF, "an fd came with an operation that takes none");
        goto out;
    }
    switch (c->op_case) {
    case VGPU__WIRE__CONTROL__OP_ATTACH_QUEUE_PAIR:
        rc = attach_qp(s, c->attach_queue_pair, fd, o);
        break;
    case VGPU__WIRE__CONTROL__OP_REGISTER_MEMFD_REGION:
        rc = register_memfd(s, c->register_memfd_region, fd, o);
        break;
    case VGPU__WIRE__CONTROL__OP_REGISTER_BAR_REGION:
        rc = register_bar(s, c->register_bar_region, o);
        break;
    case VGPU__WIRE__CONTROL__OP_UNREGISTER_REGION:
        rc = unregister(s, c->unregister_region, o);
        break;
    case VGPU__WIRE__CONTROL__OP_FETCH_ERROR_TABLE:
        t = vgpu_arena_alloc(arena, sizeof(*t));
        if (!t) {
            rc = refuse(o, -ENOMEM, "no memory for the error table");
            break;
        }
        vgpu__wire__error_table__init(t);
        rc = error_table(s, arena, t, o);
        if (rc == 0)
            r->error_table = t;
        break;
    case VGPU__WIRE__CONTROL__OP_CLOSE:
        s->closing = true;
        rc = 0;
        break;
    case VGPU__WIRE__CONTROL__OP_FETCH_DEVICE_OUTPUT:
        rc = vgpu_devout_fetch(s, arena, r);
        if (rc)
            rc = refuse(o, rc, "the kernels' output could not be read");
        break;
    default:
        rc = refuse(o, -EINVAL, "an operation this server does not know");
        break;
    }
out:
    if (fd >= 0)
        close(fd);
    r->status = vgpu_control_status(rc);
    r->message = o->why;
    r->cuda_status = o->cuda_status;
    r->device_pointer = o->device_pointer;
    r->retired = o->retired;
    return rc;
}

int vgpu_control_serve(struct vgpu_session *s, const struct vgpu_frame *f)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__ControlReply r;
    struct vgpu_frame_header h = { .flags = VGPU_FRAME_F_REPLY, .seq = f->hdr.seq };
    struct vgpu_arena arena = { 0 };
    int fd = s->pending_fd, rc;

    s->pending_fd = -1;
    vgpu_control_handle(s, f->env->control, fd, &arena, &r);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL_REPLY;
    env.control_reply = &r;
    rc = vgpu_fd_send_frame(s->fd, &h, &env, NULL, 0);
    vgpu_arena_free(&arena);
    return rc;
}
