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
#include "cudart_calltable.h"
#include "manual.pb-c.h"

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

/* Registers (or drops) a host region, passing fd: 0, the server's status, or -errno.  Connection up. */
int vgpu_region_call_locked(struct vgpu_client *c, uint32_t id, uint64_t size, bool unregister,
                            bool control, int fd, bool in_bar, uint64_t bar_offset)
{
    Vgpu__Manual__HostRegionArgs a = VGPU__MANUAL__HOST_REGION_ARGS__INIT;
    struct vgpu_call_req req = { 0 };
    struct vgpu_call_rep rep = { 0 };
    struct vgpu_arena ar = { 0 };
    int st;

    a.id = id;
    a.size = size;
    a.unregister = unregister;
    a.control = control;
    a.in_bar = in_bar;
    a.bar_offset = bar_offset;
    req.call_id = VGPU_CUDART_ID_cudaHostRegister;
    req.name = "cudaHostRegister (shared region)";
    if (vgpu_call_pack(&ar, &a.base, &req.args, &req.args_len))
        return -ENOMEM;
    c->conn.transport.pass_fd = fd;
    st = vgpu_queue_invoke_locked(c, &req, &rep);
    c->conn.transport.pass_fd = -1;
    vgpu_shim_log(VGPU_LOG_DEBUG, "%s %u -> %d", req.name, id, st);
    vgpu_client_rep_release(c, &rep);
    vgpu_arena_free(&ar);
    return st;
}

static int region_call(struct vgpu_client *c, uint32_t id, uint64_t size, bool unregister, int fd)
{
    int st = -ENOTCONN;

    pthread_mutex_lock(&c->lock);
    if (vgpu_conn_ensure_locked(c) == 0 && c->conn.transport.ops == &vgpu_transport_unix)
        st = vgpu_region_call_locked(c, id, size, unregister, false, fd, false, 0);
    pthread_mutex_unlock(&c->lock);
    return st;
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
#define SLOT_QP_SPAN ((size_t)2 << 20)       /* the queue pair's part of a BAR slot */

void vgpu_qp_setup_locked(struct vgpu_client *c)
{
    struct vgpu_transport *t = &c->conn.transport;
    struct vgpu_slot *s = &c->slot;
    uint64_t n;
    void *p = NULL;
    int fd = -1, st;

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
        st = vgpu_region_call_locked(c, VGPU_QP_REGION, n, false, true, fd, false, 0);
        close(fd);
        if (st != 0) {
            munmap(p, n);
            return;
        }
    } else if (t->ops == &vgpu_transport_mmio && vgpu_mmio_doorbells()) {
        n = vgpu_qp_bytes(GUEST_RING, GUEST_RING);
        if (!s->base)
            s->base = vgpu_mmio_shared_slot(&s->size, &s->off);
        if (!s->base || s->size < 2 * SLOT_QP_SPAN ||
            vgpu_qp_create(&t->qp, s->base, n, GUEST_RING, GUEST_RING))
            return;
        if (vgpu_region_call_locked(c, VGPU_QP_REGION, n, false, true, -1, true, s->off) != 0)
            return;
        p = s->base;
        s->used = SLOT_QP_SPAN;
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

/* was rpc.c vgpu_shim_region_new */
void *vgpu_client_local_region_new(struct vgpu_client *c, uint32_t id, size_t size)
{
    int fd, st;
    void *p = memfd_map(size, &fd);

    if (!p)
        return NULL;
    st = region_call(c, id, size, false, fd);
    close(fd);
    if (st != 0) {
        vgpu_shim_log(VGPU_LOG_INFO, "the server did not take a shared region of %zu bytes (%d); "
                      "copies carry their bytes instead", size, st);
        munmap(p, size);
        return NULL;
    }
    return p;
}

/* was rpc.c vgpu_shim_bar_region */
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
        if (vgpu_region_call_locked(c, id, *size, false, false, -1, true, s->off + s->used) != 0) {
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
