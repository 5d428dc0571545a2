/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The queue pair: a submission ring and a completion ring of whole frames
 * in memory the shim and its session share (docs/specs/shared-memory.md).
 * Host-direct it is a memfd passed over the unix socket; in a guest it is
 * the head of the process's slot of vgpu-stub's shared BAR.  The client
 * (the shim) puts request frames in the submission ring and takes replies
 * from the completion ring; the server does the opposite.  Both rings are
 * single-producer, single-consumer byte rings of records, with free-running
 * 32-bit indices: a record is an 8-byte header (length, kind, and the
 * position it was written at, so that a header is told from one left by an
 * earlier lap) and the frame, padded to 8 bytes, never split at the end of
 * the ring (a WRAP record fills the rest and the frame starts over at the
 * beginning).  The consumer waits on the header where it stands; the
 * producer's index is kept too (sleeping, and telling a lie from "not yet").
 *
 * Each side keeps its own index and the ring's size in private memory and
 * trusts nothing it reads from the shared memory: the other side's index
 * and every record header are checked (vgpu_qring_peek, vgpu_qring_reserve)
 * and what does not add up is -EPROTO.
 */
#ifndef VGPU_QP_H
#define VGPU_QP_H

#include <stdint.h>

#include "vgpu/stub_abi.h"

#define VGPU_QP_MAGIC 0x50515056u          /* "VPQP" */
#define VGPU_QP_HEADER 4096u               /* the header page before the rings */
#define VGPU_QP_RING_MIN (64u << 10)
#define VGPU_QP_RING_MAX (16u << 20)
#define VGPU_QP_REGION 0xfffffff0u         /* the region id a queue pair registers as */

/* Record kinds. */
enum {
    VGPU_QP_FRAME = 1,                     /* a frame of len bytes follows */
    VGPU_QP_WRAP = 2,                      /* the rest of the ring is unused; go on at its start */
    VGPU_QP_ON_SOCKET = 3,                 /* completion: this reply went over the socket */
    VGPU_QP_TOO_LARGE = 4,                 /* completion: the reply did not fit and had no other way */
};

/*
 * The header page.  Each side writes only its own lines; what a side
 * writes on every request (its indices) and what it writes only now and
 * then (that it sleeps) are on separate lines, so looking at the other's
 * sleeping word costs no cache-line transfer on the hot path.  The sizes
 * are written by the client before it hands the memory over.
 */
struct vgpu_qp_hdr {
    uint32_t magic;
    uint32_t sub_size;                     /* bytes of the submission ring (power of two) */
    uint32_t comp_size;                    /* bytes of the completion ring (power of two) */
    uint8_t pad0[52];
    /* the client's hot line */
    uint32_t sub_tail;                     /* submission bytes written */
    uint32_t comp_head;                    /* completion bytes taken */
    uint32_t doorbell;                     /* bumped after each submission (host futex word) */
    uint8_t pad1[52];
    /* the client's quiet line (the server looks at it while it spins) */
    uint32_t client_sleeping;              /* 1 while it sleeps on comp_tail (host only) */
    uint32_t socket_frames;                /* bumped after each frame sent on the socket instead */
    uint8_t pad2[56];
    /* the server's hot line */
    uint32_t sub_head;                     /* submission bytes taken */
    uint32_t comp_tail;                    /* completion bytes written */
    uint8_t pad3[56];
    /* the server's quiet line */
    uint32_t server_sleeping;              /* 1 while it sleeps on the doorbell */
    uint32_t pad4;
    uint64_t server_state;                 /* the session's pid << 32, | 1 once it has ended */
    uint8_t pad5[48];
    /*
     * Host callbacks (docs/specs/shared-memory.md, "Host callbacks"): one
     * due at a time.  The server's line: it writes cb_id and cb_status, then
     * bumps cb_due (release; the client's futex word host-direct).
     */
    uint32_t cb_due;                       /* callbacks made due so far (0: none yet) */
    int32_t cb_status;                     /* the stream's status for it (cuStreamAddCallback) */
    uint64_t cb_id;                        /* the client's id of the callback due */
    uint64_t cb_arg;                       /* an async notification's figure (bytes over budget) */
    uint8_t pad6[40];
    /* the client's line: the cb_due value whose callback has returned (the server's futex word) */
    uint32_t cb_done;
    uint8_t pad7[60];
};
_Static_assert(sizeof(struct vgpu_qp_hdr) <= VGPU_QP_HEADER, "the header page holds the header");

/* One ring as one side sees it. */
struct vgpu_qring {
    uint32_t *tail, *head;                 /* the shared indices */
    uint8_t *data;
    uint32_t size;                         /* private copy, power of two */
    uint32_t pos;                          /* private: the producer's tail or the consumer's head */
    uint32_t seen;                         /* producer: the consumer's head when last read */
};

/* Both rings of one queue pair, for one side. */
struct vgpu_qp {
    struct vgpu_qp_hdr *hdr;
    struct vgpu_qring sub, comp;
};

/*
 * The session whose pid is in server_state has ended: say so (a client that
 * made a new queue pair here meanwhile is left alone).
 */
static inline void vgpu_qp_mark_gone(struct vgpu_qp_hdr *h, uint32_t pid)
{
    uint64_t live = (uint64_t)pid << 32;

    __atomic_compare_exchange_n(&h->server_state, &live, live | 1, 0, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
}

/* Total bytes of a queue pair with rings of these sizes. */
static inline uint64_t vgpu_qp_bytes(uint32_t sub_size, uint32_t comp_size)
{
    return (uint64_t)VGPU_QP_HEADER + sub_size + comp_size;
}

/*
 * The client lays out a queue pair in len bytes at base (zeroed here) with
 * rings of the given sizes; 0 or -EINVAL.
 */
int vgpu_qp_create(struct vgpu_qp *q, void *base, uint64_t len, uint32_t sub_size, uint32_t comp_size);
/*
 * The server takes one over: the sizes in the header must be powers of two
 * between VGPU_QP_RING_MIN and VGPU_QP_RING_MAX that add up to len; they are
 * read once.  0 or -EINVAL.
 */
int vgpu_qp_attach(struct vgpu_qp *q, void *base, uint64_t len);

/* The largest frame a record of this ring can carry. */
static inline uint32_t vgpu_qring_max(const struct vgpu_qring *r)
{
    return r->size / 2 - 8;
}

/*
 * Producer: room for a record of len bytes: where to write its frame, or
 * NULL with *err 0 (full for now), -E2BIG (never fits) or -EPROTO (the
 * consumer's index is impossible).
 */
uint8_t *vgpu_qring_reserve(struct vgpu_qring *r, uint32_t len, int *err);
/* Producer: publishes the record reserved last, of len bytes and this kind. */
void vgpu_qring_publish(struct vgpu_qring *r, uint32_t len, uint32_t kind);
/*
 * Consumer: the next record: 0 with its frame, length and kind; -EAGAIN when
 * the ring is empty; -EPROTO when the producer broke the format.  The frame
 * stays the producer's memory: copy it before trusting it.
 */
int vgpu_qring_peek(struct vgpu_qring *r, const uint8_t **data, uint32_t *len, uint32_t *kind);
/* Consumer: done with the record peeked last (of len bytes). */
void vgpu_qring_pop(struct vgpu_qring *r, uint32_t len);
/*
 * Anything to take (or something wrong to find)?  Consumer side.  ready()
 * looks at the header where the consumer stands only (for spinning: no
 * look at the producer's line); pending() also at the producer's index.
 */
int vgpu_qring_ready(const struct vgpu_qring *r);
int vgpu_qring_pending(const struct vgpu_qring *r);

#endif
