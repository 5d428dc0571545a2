/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host memory shared with the server.  Over a unix socket the client hands
 * the server a sealed memfd: the server maps it and pins it, and copies
 * name it instead of carrying bytes.  In a guest, this process's slot of
 * the vgpu-stub device's shared BAR plays that part.  The queue pair
 * (include/vgpu/qp.h) is such a region too, offered right after the
 * handshake.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client_internal.h"

static bool shm_off(void)
{
    const char *v = getenv("VGPU_SHM");

    return v && !strcmp(v, "0");
}

bool vgpu_client_local_can_share(struct vgpu_client *c)
{
    bool yes;

    if (shm_off())
        return false;
    pthread_mutex_lock(&c->lock);
    yes = vgpu_conn_ensure_locked(c) == 0 && c->conn.transport.ops == &vgpu_transport_unix;
    pthread_mutex_unlock(&c->lock);
    return yes;
}

/* Registers (unregister: drops) a memfd host region, passing fd: 0 or -errno. */
static int region_call(struct vgpu_client *c, uint32_t id, uint64_t size, bool unregister, int fd)
{
    int rc = -ENOTCONN;

    pthread_mutex_lock(&c->lock);
    if (vgpu_conn_ensure_locked(c) == 0 && c->conn.transport.ops == &vgpu_transport_unix)
        rc = unregister ? vgpu_ctl_region_unregister_locked(c, id)
                        : vgpu_ctl_region_register_locked(c, id, size, fd);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* A sealed memfd of size bytes mapped here, or NULL; *fd stays open for passing. */
static void *memfd_map(size_t size, int *fd)
{
    void *p = MAP_FAILED;

    *fd = memfd_create("vgpu-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (*fd < 0)
        return NULL;
    /* sealed against shrinking: the server's mapping can never fault */
    if (ftruncate(*fd, (off_t)size) == 0 && fcntl(*fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (p == MAP_FAILED) {
        close(*fd);
        *fd = -1;
        return NULL;
    }
    return p;
}

/*
 * The queue pair (include/vgpu/qp.h), offered to the server right after
 * the handshake; a server that says no leaves the frame path as the only
 * carrier.  Host-direct it is a memfd of its own; in a guest, the head of
 * this process's slot of the shared BAR (the rest of the slot is the
 * staging region), when the device has doorbells for the server.
 * VGPU_SHM=0 turns it off.
 */
#define HOST_RING (1u << 20)
#define GUEST_RING (512u << 10)

void vgpu_qp_setup_locked(struct vgpu_client *c)
{
    struct vgpu_transport *t = &c->conn.transport;
    struct vgpu_slot *s = &c->slot;
    uint64_t n;
    void *p = NULL;
    int fd = -1, rc;

    if (shm_off())
        return;
    if (t->ops == &vgpu_transport_unix) {
        n = vgpu_qp_bytes(HOST_RING, HOST_RING);
        p = memfd_map(n, &fd);
        if (!p || vgpu_qp_create(&t->qp, p, n, HOST_RING, HOST_RING)) {
            if (p)
                munmap(p, n);
            if (fd >= 0)
                close(fd);
            return;
        }
        rc = vgpu_ctl_attach_qp_locked(c, n, false, 0, fd);
        close(fd);
        if (rc) {
            munmap(p, n);
            return;
        }
    } else if (t->ops == &vgpu_transport_mmio && vgpu_mmio_doorbells()) {
        n = vgpu_qp_bytes(GUEST_RING, GUEST_RING);
        if (!s->base)
            s->base = vgpu_mmio_shared_slot(&s->size, &s->off);
        if (!s->base || s->size < VGPU_STUB_SLOT_MIN_FOR_QP ||
            vgpu_qp_create(&t->qp, s->base, n, GUEST_RING, GUEST_RING))
            return;
        if (vgpu_ctl_attach_qp_locked(c, n, true, s->off, -1))
            return;
        p = s->base;
        s->used = VGPU_STUB_SLOT_QP_SIZE;
    } else {
        return;
    }
    /* a server that took the memory as a queue pair says so in its header */
    if (!(__atomic_load_n(&t->qp.hdr->server_state, __ATOMIC_ACQUIRE) >> 32)) {
        vgpu_shim_log(VGPU_LOG_INFO, "vgpu-server did not take the queue pair; frames use the %s",
                      t->ops == &vgpu_transport_mmio ? "1 KB window" : "socket");
        if (t->ops == &vgpu_transport_unix)
            munmap(p, n);
        else
            s->used = 0;
        return;
    }
    t->qp_mem = p;
    t->qp_len = n;
}

/* Host memory shared with the server as region id: mapped here, or NULL (copies carry bytes). */
void *vgpu_client_local_region_new(struct vgpu_client *c, uint32_t id, size_t size)
{
    int fd, rc;
    void *p = memfd_map(size, &fd);

    if (!p)
        return NULL;
    rc = region_call(c, id, size, false, fd);
    close(fd);
    if (rc) {
        vgpu_shim_log(VGPU_LOG_INFO, "the server did not take a shared region of %zu bytes (%s); "
                      "copies carry their bytes instead", size, strerror(-rc));
        munmap(p, size);
        return NULL;
    }
    return p;
}

/* ---- mapped host memory in a guest: slots of the shared BAR ---- */

/* First of n free pages in a row in r, or SIZE_MAX. */
static size_t run_fit(const struct vgpu_bar_run *r, size_t n)
{
    size_t len = 0;

    for (size_t i = 0; i < r->pages; i++) {
        len = r->used[i] ? 0 : len + 1;
        if (len == n)
            return i + 1 - n;
    }
    return SIZE_MAX;
}

static void run_release_locked(struct vgpu_client *c, struct vgpu_bar_run *r)
{
    for (struct vgpu_bar_run **q = &c->bar_runs; *q; q = &(*q)->next)
        if (*q == r) {
            *q = r->next;
            break;
        }
    vgpu_mmio_release_slots(r->base, r->off, r->nslots);
    free(r->used);
    free(r);
}

/*
 * Mapped memory of size bytes (whole pages) in slots of the shared BAR
 * other than this process's own: in a run it holds already where pages
 * are free in a row, otherwise in a new run of as many slots as it needs.
 * The server maps those pages again at the same address where it can and
 * pins them for kernels.  Lock held.  The pages, or NULL with *rc set.
 */
static void *bar_mapped_new_locked(struct vgpu_client *c, uint32_t id, size_t size,
                                   uint64_t *devptr, int *rc)
{
    size_t np = size / 4096, slot, at = SIZE_MAX;
    struct vgpu_bar_run *r;

    if (!c->slot.base)
        c->slot.base = vgpu_mmio_shared_slot(&c->slot.size, &c->slot.off);
    slot = vgpu_mmio_slot_size();
    if (!c->slot.base || !slot) {
        *rc = -EOPNOTSUPP;
        return NULL;
    }
    for (r = c->bar_runs; r && (at = run_fit(r, np)) == SIZE_MAX; r = r->next)
        ;
    if (!r) {
        if (!(r = calloc(1, sizeof(*r)))) {
            *rc = -ENOMEM;
            return NULL;
        }
        r->nslots = (size + slot - 1) / slot;
        r->pages = r->nslots * slot / 4096;
        r->used = calloc(r->pages, 1);
        if (!r->used || !(r->base = vgpu_mmio_claim_slots(r->nslots, &r->off))) {
            vgpu_shim_log(VGPU_LOG_WARN, "mapped host memory of %zu bytes: no %zu free %zu MiB "
                          "slot%s in a row left in the device's shared BAR (each guest CUDA process "
                          "holds one; give QEMU's memory backend more)", size, r->nslots,
                          slot >> 20, r->nslots == 1 ? "" : "s");
            free(r->used);
            free(r);
            *rc = -ENOSPC;
            return NULL;
        }
        r->next = c->bar_runs;
        c->bar_runs = r;
        at = 0;
    }
    *rc = vgpu_ctl_region_register_bar_mapped_locked(c, id, r->off + at * 4096, size,
                                                     (uint64_t)(uintptr_t)(r->base + at * 4096),
                                                     devptr);
    if (*rc == -EOPNOTSUPP)
        vgpu_ctl_region_unregister_locked(c, id);   /* a server that pinned it unmapped */
    if (*rc) {
        if (!r->nused)
            run_release_locked(c, r);
        return NULL;
    }
    memset(r->used + at, 1, np);
    r->nused += np;
    return r->base + at * 4096;
}

/* The run holding p, or NULL. */
static struct vgpu_bar_run *run_of(struct vgpu_client *c, const void *p)
{
    for (struct vgpu_bar_run *r = c->bar_runs; r; r = r->next)
        if ((const uint8_t *)p >= r->base && (const uint8_t *)p < r->base + r->pages * 4096)
            return r;
    return NULL;
}

/*
 * Mapped host memory shared with the server as region id, or NULL; *devptr:
 * for kernels.  Host-direct a memfd of its own; in a guest, pages of the
 * shared BAR; over TCP or without shared memory, NULL.
 */
void *vgpu_client_local_region_new_mapped(struct vgpu_client *c, uint32_t id, size_t size,
                                          uint64_t *devptr)
{
    int fd = -1, rc = -EOPNOTSUPP;
    void *p = NULL;
    bool guest = false;

    if (shm_off() || !size || size % 4096)
        return NULL;
    pthread_mutex_lock(&c->lock);
    if (vgpu_conn_ensure_locked(c) == 0) {
        if (c->conn.transport.ops == &vgpu_transport_unix) {
            p = memfd_map(size, &fd);
            rc = p ? vgpu_ctl_region_register_mapped_locked(c, id, size, fd,
                                                            (uint64_t)(uintptr_t)p, devptr)
                   : -ENOMEM;
        } else if (c->conn.transport.ops == &vgpu_transport_mmio) {
            guest = true;
            p = bar_mapped_new_locked(c, id, size, devptr, &rc);
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (fd >= 0)
        close(fd);
    if (rc == -EOPNOTSUPP && p && !guest)
        region_call(c, id, 0, true, -1);
    if (rc && p && !guest)
        munmap(p, size);
    if (rc && rc != -EOPNOTSUPP)
        vgpu_shim_log(VGPU_LOG_INFO, "the server did not map a shared region of %zu bytes for "
                      "kernels (%s)", size, strerror(-rc));
    return rc ? NULL : p;
}

/* The rest of this process's BAR slot as staging region id, or NULL (the 1 KB window). */
void *vgpu_client_local_bar_region(struct vgpu_client *c, uint32_t id, size_t *size)
{
    struct vgpu_slot *s = &c->slot;
    uint8_t *p = NULL;

    if (shm_off())
        return NULL;
    pthread_mutex_lock(&c->lock);
    if (vgpu_conn_ensure_locked(c) == 0 && c->conn.transport.ops == &vgpu_transport_mmio && !s->base)
        s->base = vgpu_mmio_shared_slot(&s->size, &s->off);
    if (s->base && s->size > s->used) {
        p = s->base + s->used;
        *size = s->size - s->used;
        if (vgpu_ctl_region_register_bar_locked(c, id, s->off + s->used, *size)) {
            vgpu_shim_log(VGPU_LOG_INFO, "the server did not take the shared BAR's slot at %#llx; "
                          "copies use the 1 KB window", (unsigned long long)(s->off + s->used));
            p = NULL;
        } else {
            s->used = s->size;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (p)
        vgpu_shim_log(VGPU_LOG_INFO, "staging through the shared BAR, %zu KiB at %#llx",
                      *size >> 10, (unsigned long long)(s->off + s->size - *size));
    return p;
}

void vgpu_client_local_region_free(struct vgpu_client *c, uint32_t id, void *base, size_t size)
{
    struct vgpu_bar_run *r;

    pthread_mutex_lock(&c->lock);
    r = run_of(c, base);
    if (r) {
        size_t at = (size_t)((uint8_t *)base - r->base) / 4096, np = size / 4096;
        bool kept = true;

        /*
         * Its pages may be taken again only once the server let go of them:
         * not when it keeps them (freed after a stream capture, a graph may
         * still write them) or could not be asked; they stay this process's.
         */
        if (vgpu_conn_ensure_locked(c) == 0 &&
            vgpu_ctl_region_unregister_kept_locked(c, id, &kept) != 0)
            kept = true;
        if (!kept && at + np <= r->pages) {
            memset(r->used + at, 0, np);
            r->nused -= np;
        }
        if (!r->nused)
            run_release_locked(c, r);
    }
    pthread_mutex_unlock(&c->lock);
    if (r)
        return;
    region_call(c, id, 0, true, -1);
    munmap(base, size);
}
