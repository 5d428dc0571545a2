/* SPDX-License-Identifier: Apache-2.0 */
/* The shim's internals: transports, the call path, per-thread state. */
#ifndef VGPU_SHIM_INTERNAL_H
#define VGPU_SHIM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "envelope.pb-c.h"
#include "vgpu/callgen.h"
#include "vgpu/qp.h"
#include "vgpu/wire.h"

#define VGPU_HIDDEN __attribute__((visibility("hidden")))
#define VGPU_EXPORT __attribute__((visibility("default")))

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
extern const struct vgpu_transport_ops vgpu_transport_mmio;
/* Is there a vgpu-stub device (PCI 1af4:1111) in this machine? */
VGPU_HIDDEN bool vgpu_mmio_present(void);
/* A slot of the device's shared BAR for this process (size, offset in the BAR), or NULL. */
VGPU_HIDDEN void *vgpu_mmio_shared_slot(size_t *size, uint64_t *offset);
/* Has the device doorbells for the queue pair (the server waits on them)? */
VGPU_HIDDEN bool vgpu_mmio_doorbells(void);
/* In a forked child: drop the parent's device mapping without closing its channel. */
VGPU_HIDDEN void vgpu_mmio_forget(void);

/*
 * ---- host memory shared with the server (rpc.c) ----
 * Over a unix socket the shim can hand the server a memfd: the server maps
 * it and pins it, and copies name it instead of carrying bytes.
 */
VGPU_HIDDEN bool vgpu_shim_can_share(void);
/* A sealed memfd of size bytes mapped here, registered as region id: its address, or NULL. */
VGPU_HIDDEN void *vgpu_shim_region_new(uint32_t id, size_t size);
/* In a guest: a slot of the device's shared BAR, registered as region id; its address, or NULL. */
VGPU_HIDDEN void *vgpu_shim_bar_region(uint32_t id, size_t *size);
/* Unregisters and unmaps region id at base. */
VGPU_HIDDEN void vgpu_shim_region_free(uint32_t id, void *base, size_t size);

/*
 * ---- the control plane (control.c) ----
 * vgpu's own operations, each a Control message (docs/protocol.md, "The two planes").
 * Called with the call path's lock held and the connection up.  Each
 * returns 0 or a negative errno: the server's ControlStatus mapped back
 * (-EINVAL, -EBADF, -EBUSY, -ENOSPC, -ENOMEM, -ENOENT, -EIO for a CUDA
 * refusal, -EOPNOTSUPP), -ENOTCONN when the connection failed, -EPROTO for
 * a reply that does not answer.  An fd passed in stays the caller's.
 */
/* The queue pair: a memfd (fd) of size bytes, or with in_bar the BAR slot at bar_offset. */
VGPU_HIDDEN int vgpu_ctl_attach_qp(uint64_t size, bool in_bar, uint64_t bar_offset, int fd);
/* Host memory shared as region id: the sealed memfd fd of size bytes. */
VGPU_HIDDEN int vgpu_ctl_region_register(uint32_t id, uint64_t size, int fd);
/* [bar_offset, bar_offset+size) of the device's shared BAR as region id. */
VGPU_HIDDEN int vgpu_ctl_region_register_bar(uint32_t id, uint64_t bar_offset, uint64_t size);
VGPU_HIDDEN int vgpu_ctl_region_unregister(uint32_t id);
/* The session ends (the server answers first). */
VGPU_HIDDEN int vgpu_ctl_close(void);
/* The server runtime's error names and texts; the caller owns it (vgpu_ctl_error_table_free). */
struct vgpu_ctl_error_table {
    int n;
    int *code;
    char **name, **text;
    int init_status;
};
VGPU_HIDDEN int vgpu_ctl_error_table(struct vgpu_ctl_error_table *t);
VGPU_HIDDEN void vgpu_ctl_error_table_free(struct vgpu_ctl_error_table *t);
/*
 * rpc.c: sends env (a Control) on the frame path, passing fd (or -1), after
 * whatever calls are queued, and reads its reply into *f and *buf (the
 * caller releases both when it returns 0).  0, or -errno with the
 * connection dropped.  Lock held.
 */
VGPU_HIDDEN int vgpu_shim_control_exchange_locked(Vgpu__Wire__Envelope *env, int fd,
                                                  struct vgpu_frame *f, uint8_t **buf);

/* ---- logging: VGPU_LOG=error|warn|info|debug, to stderr ---- */
enum { VGPU_LOG_ERROR, VGPU_LOG_WARN, VGPU_LOG_INFO, VGPU_LOG_DEBUG };
VGPU_HIDDEN void vgpu_shim_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- per-thread state ---- */
VGPU_HIDDEN int vgpu_shim_device(void);
VGPU_HIDDEN void vgpu_shim_set_device(int device);
/* Records a non-success status as the thread's last error; returns st. */
VGPU_HIDDEN int vgpu_shim_status(int st);
/* cudaSuccess, or the status the server's runtime failed to start with. */
VGPU_HIDDEN int vgpu_shim_init_status(void);
VGPU_HIDDEN int vgpu_shim_take_last_error(bool clear);

/* Sends one manual call whose args are msg; see vgpu_shim_invoke(). */
VGPU_HIDDEN int vgpu_shim_call(uint32_t id, const char *name, const ProtobufCMessage *msg,
                               struct vgpu_call_req *req, struct vgpu_call_rep *rep);

/* Connects now if no call has yet (so the runtime's start status is known). */
VGPU_HIDDEN void vgpu_shim_connect(void);

/* Error names and texts, from the server (fetched once). */
VGPU_HIDDEN const char *vgpu_shim_error_name(int code);
VGPU_HIDDEN const char *vgpu_shim_error_text(int code);

/* ---- what the shim knows about memory (manual/memory.c) ---- */
VGPU_HIDDEN bool vgpu_shim_is_device(const void *p);
VGPU_HIDDEN void vgpu_shim_device_range_add(const void *p, size_t size);

/* Largest payload one copy frame carries; bigger copies go in pieces. */
#define VGPU_SHIM_CHUNK (32u << 20)

#endif
