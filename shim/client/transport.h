/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client library's transports: the frame path of a unix or TCP socket
 * (transport_sock.c) or of the vgpu-stub device's 1 KB window
 * (transport_mmio.c), and the queue pair that carries frames through shared
 * memory once it is up (qp_client.c).  Used by client/conn.c and
 * client/regions.c with the client's lock held.
 */
#ifndef VGPU_CLIENT_TRANSPORT_H
#define VGPU_CLIENT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "client.h"
#include "envelope.pb-c.h"
#include "vgpu/qp.h"
#include "vgpu/wire.h"

/*
 * A transport moves whole frames (transport_sock.c, transport_mmio.c): its
 * frame path (send, recv) carries one frame and its reply at a time, or
 * several in order (sockets); once a queue pair is up (qp_client.c), frames
 * that fit go through it instead, many in flight.
 */
struct vgpu_transport {
    const struct vgpu_transport_ops *ops;
    int fd;
    int pass_fd;               /* an fd the next send passes along (socket only), or -1 */
    struct vgpu_qp qp;         /* the queue pair, when qp_mem is set */
    void *qp_mem;              /* its memory (the caller's to unmap), or NULL */
    size_t qp_len;
    uint32_t qp_room_seen;     /* the submission head while waiting for room */
    uint32_t qp_looks;         /* turns of waiting for a reply */
    void *tls;                 /* the TLS transport's connection (transport_tls.c), or NULL */
};

struct vgpu_transport_ops {
    const char *name;
    /* addr without the scheme; 0 or -errno */
    int (*connect)(struct vgpu_transport *t, const char *addr);
    /* the frame path */
    int (*send)(struct vgpu_transport *t, const struct vgpu_frame_header *h,
                const Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload);
    /* one whole frame in a malloc'ed buffer the caller frees */
    int (*recv)(struct vgpu_transport *t, uint8_t **buf, size_t *len);
    void (*close)(struct vgpu_transport *t);
    /* with a queue pair: wake the sleeping server; is it still there (0, or -errno)? */
    void (*bell)(struct vgpu_transport *t);
    int (*alive)(struct vgpu_transport *t);
    bool qp_futex;             /* the server wakes a sleeping client with a futex */
};

/*
 * The queue pair (qp_client.c).  Sends a frame of len bytes (the gathered
 * size) through the submission ring, waiting for room: 0, -E2BIG when it
 * can never fit, or another -errno.
 */
VGPU_HIDDEN int vgpu_shim_qp_send(struct vgpu_transport *t, const struct vgpu_frame_header *h,
                                  const Vgpu__Wire__Envelope *env, const struct iovec *payload,
                                  int npayload, size_t len);
/* After a request on either path: wakes the server if it sleeps. */
VGPU_HIDDEN void vgpu_shim_qp_ring(struct vgpu_transport *t);
/* The next reply, in a malloc'ed buffer; -EMSGSIZE when the server could not send it. */
VGPU_HIDDEN int vgpu_shim_qp_recv(struct vgpu_transport *t, uint8_t **buf, size_t *len);

extern const struct vgpu_transport_ops vgpu_transport_unix;
extern const struct vgpu_transport_ops vgpu_transport_tcp;
extern const struct vgpu_transport_ops vgpu_transport_tls;
/* tcp:HOST:PORT connected into t->fd (bounded wait); 0 or -errno. */
VGPU_HIDDEN int vgpu_shim_tcp_connect(struct vgpu_transport *t, const char *hostport);
/* In a forked child: drops the parent's TLS state without a word to the server. */
VGPU_HIDDEN void vgpu_shim_tls_forget(struct vgpu_transport *t);
extern const struct vgpu_transport_ops vgpu_transport_mmio;
/* Is there a vgpu-stub device (PCI 1af4:1111) in this machine? */
VGPU_HIDDEN bool vgpu_mmio_present(void);
/* A slot of the device's shared BAR for this process (size, offset in the BAR), or NULL. */
VGPU_HIDDEN void *vgpu_mmio_shared_slot(size_t *size, uint64_t *offset);
/*
 * Slots of the shared BAR for mapped host memory (after the process's own
 * slot): a run of n claimed and mapped here with its offset in the BAR, or
 * NULL; release gives one back; slot_size is a slot's size (0: none yet).
 */
VGPU_HIDDEN void *vgpu_mmio_claim_slots(size_t n, uint64_t *offset);
VGPU_HIDDEN void vgpu_mmio_release_slots(void *p, uint64_t offset, size_t n);
VGPU_HIDDEN size_t vgpu_mmio_slot_size(void);
/* Has the device doorbells for the queue pair (the server waits on them)? */
VGPU_HIDDEN bool vgpu_mmio_doorbells(void);
/* In a forked child: drop the parent's device mapping without closing its channel. */
VGPU_HIDDEN void vgpu_mmio_forget(void);

#endif
