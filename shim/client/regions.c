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

/* Mapped host memory shared with the server as region id, or NULL; *devptr: for kernels. */
void *vgpu_client_local_region_new_mapped(struct vgpu_client *c, uint32_t id, size_t size,
                                          uint64_t *devptr)
{
    int fd, rc = -ENOTCONN;
    void *p = memfd_map(size, &fd);

    if (!p)
        return NULL;
    pthread_mutex_lock(&c->lock);
    if (vgpu_conn_ensure_locked(c) == 0 && c->conn.transport.ops == &vgpu_transport_unix)
        rc = vgpu_ctl_region_register_mapped_locked(c, id, size, fd, (uint64_t)(uintptr_t)p, devptr);
    pthread_mutex_unlock(&c->lock);
    close(fd);
    if (rc == -EOPNOTSUPP)
        region_call(c, id, 0, true, -1);
    if (rc) {
        vgpu_shim_log(VGPU_LOG_INFO, "the server did not map a shared region of %zu bytes for "
                      "kernels (%s)", size, strerror(-rc));
        munmap(p, size);
        return NULL;
    }
    return p;
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
    region_call(c, id, 0, true, -1);
    munmap(base, size);
}
