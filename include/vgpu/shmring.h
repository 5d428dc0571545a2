/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared-memory control channel between the shim and its session in
 * vgpu-server (host-direct over a unix socket; docs/specs/shared-memory.md).
 *
 * One memfd the shim creates and passes to the server (a host region with
 * the control flag).  The protocol stays one frame out, one frame back; only
 * the carrier changes: a frame that fits the request area is written there
 * and req_seq is bumped; the server answers in the reply area and sets
 * rep_seq to the same number.  A frame that does not fit (or carries an fd)
 * still goes over the socket, as does a reply too large for the reply area
 * (rep_len == VGPU_RING_ON_SOCKET).  Waiting is a bounded spin on the
 * sequence word, then a futex sleep on it (the memfd is MAP_SHARED, so the
 * futex works across the two processes); a side about to sleep says so in
 * its *_sleeping word, and the other side wakes it only then.  The server
 * also sleeps on doorbell, which the shim bumps after a frame on either
 * carrier, so a frame on the socket wakes it too.
 */
#ifndef VGPU_SHMRING_H
#define VGPU_SHMRING_H

#include <stdint.h>

#define VGPU_RING_AREA (1u << 20)          /* bytes of each of the two areas */
#define VGPU_RING_ON_SOCKET 0xffffffffu    /* rep_len: the reply went over the socket */
#define VGPU_RING_REGION 0xfffffff0u       /* the region id the control memfd registers as */
#define VGPU_RING_SPIN_NS 30000L           /* the shim spins this long for a reply, then sleeps */
#define VGPU_RING_IDLE_SPIN_NS 50000L      /* the server spins this long for the next request */

struct vgpu_ring {
    uint32_t req_seq;                      /* shim: bumped after a request is in req[] */
    uint32_t req_len;
    uint32_t doorbell;                     /* shim: bumped after any request (futex word) */
    uint32_t server_sleeping;              /* server: set before it sleeps on doorbell */
    uint8_t pad0[48];
    uint32_t rep_seq;                      /* server: = req_seq once the reply is out */
    uint32_t rep_len;                      /* bytes in rep[], or VGPU_RING_ON_SOCKET */
    uint32_t client_sleeping;              /* shim: set before it sleeps on rep_seq */
    uint8_t pad1[52];
    uint8_t req[VGPU_RING_AREA];
    uint8_t rep[VGPU_RING_AREA];
};

#endif
