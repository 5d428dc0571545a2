/* SPDX-License-Identifier: MIT */
/*
 * The vgpu-stub device ABI: what the guest, the QEMU device and vgpu-server
 * must agree on, written once.  BAR0's registers (offsets, widths, values),
 * the shared BAR's slots and doorbells, the link records on the device's
 * chardev, and the few facts about a frame's 32-byte header that the device
 * checks.  docs/specs/vgpu-stub.md explains each item; this header is its
 * normative C view, and a disagreement between the two is a bug in one.
 *
 * Included by the QEMU device (GPL-2.0-or-later; the build copies it into
 * QEMU's include/vgpu/), the guest shim, vgpu-server and the tests (all
 * Apache-2.0), hence the MIT licence.  Plain C11 with <stdint.h> only: no
 * state, no other headers, nothing that clashes with QEMU's osdep.h.
 * Everything on the wire is little-endian and is read and written byte by
 * byte (the helpers at the end), never by casting a buffer to a struct.
 *
 * Copyright (c) 2026 The vgpu developers
 *
 * Permission is hereby granted, free of charge, to any person obtaining a
 * copy of this software and associated documentation files (the "Software"),
 * to deal in the Software without restriction, including without limitation
 * the rights to use, copy, modify, merge, publish, distribute, sublicense,
 * and/or sell copies of the Software, and to permit persons to whom the
 * Software is furnished to do so, subject to the following conditions:
 *
 * The above copyright notice and this permission notice shall be included in
 * all copies or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
 * IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
 * FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
 * AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
 * LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
 * FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
 * DEALINGS IN THE SOFTWARE.
 */
#ifndef VGPU_STUB_ABI_H
#define VGPU_STUB_ABI_H

#include <stdint.h>

/* ---- PCI identity ---------------------------------------------------------- */

#define VGPU_STUB_PCI_VENDOR    0x1af4u
#define VGPU_STUB_PCI_DEVICE    0x1111u
#define VGPU_STUB_PCI_CLASS     0x1200u     /* processing accelerator */
#define VGPU_STUB_PCI_REVISION  1u

/*
 * Version of the register interface and of the link records, read from
 * PROTOCOL_VER and sent in HELLO.  It is not the version of the frames the
 * device carries (VGPU_PROTOCOL_VERSION in wire.h): the device does not
 * judge a frame's version, so that a guest and a server of another frame
 * version still reach each other and the server can say which versions
 * each side speaks (docs/protocol.md, section 1).
 */
#define VGPU_STUB_REG_VERSION   1u

/* ---- BAR0 ------------------------------------------------------------------ */

#define VGPU_STUB_BAR0_SIZE     0x1000u     /* 4 KiB, 32-bit, non-prefetchable */
#define VGPU_STUB_BUF_SIZE      1024u       /* REQUEST buffer, RESPONSE window */
#define VGPU_STUB_MAX_FRAME     (64u << 20) /* MAX_FRAME: largest frame either way */

/*
 * Registers: 32 bits wide, little-endian, accessed with 4-byte accesses at
 * their offset.  REQUEST and RESPONSE (VGPU_STUB_BUF_SIZE bytes each) and
 * the QP doorbells take 1, 2 and 4-byte accesses.  RO: a write is the
 * error READ_ONLY; WO: reads 0.
 */
#define VGPU_STUB_REG_WIDTH         4u
#define VGPU_STUB_R_DOORBELL        0x000u  /* WO  a VGPU_STUB_CMD_* */
#define VGPU_STUB_R_STATUS          0x004u  /* RO  a VGPU_STUB_STATUS_* */
#define VGPU_STUB_R_POOL_ID         0x008u  /* RO  ASCII pool letter */
#define VGPU_STUB_R_PRIORITY        0x00cu  /* RO  0 low, 1 medium, 2 high */
#define VGPU_STUB_R_VM_ID           0x010u  /* RO */
#define VGPU_STUB_R_ERROR_CODE      0x014u  /* RO  a VGPU_STUB_ERR_*, kept until ACK */
#define VGPU_STUB_R_REQUEST_LEN     0x018u  /* RW  bytes of REQUEST the next SUBMIT takes */
#define VGPU_STUB_R_RESPONSE_LEN    0x01cu  /* RO  bytes valid in RESPONSE */
#define VGPU_STUB_R_PROTOCOL_VER    0x020u  /* RO  VGPU_STUB_REG_VERSION */
#define VGPU_STUB_R_CAPABILITIES    0x024u  /* RO  VGPU_STUB_CAP_* */
#define VGPU_STUB_R_IRQ_CTRL        0x028u  /* RW  VGPU_STUB_IRQ_DONE: raise INTx */
#define VGPU_STUB_R_IRQ_STATUS      0x02cu  /* RW  VGPU_STUB_IRQ_DONE; write 1 to clear */
#define VGPU_STUB_R_REQUEST_ID      0x030u  /* RW  free for the guest */
#define VGPU_STUB_R_CHUNK_CTRL      0x034u  /* RW  VGPU_STUB_CHUNK_MORE */
#define VGPU_STUB_R_CHANNEL         0x038u  /* RW  the guest client; not 0 */
#define VGPU_STUB_R_LINK_EPOCH      0x03cu  /* RO  connections to the server so far */
#define VGPU_STUB_R_REQUEST         0x040u  /* RW  request buffer */
#define VGPU_STUB_R_RESPONSE        0x440u  /* RO  response window */
#define VGPU_STUB_R_RESPONSE_TOTAL  0x840u  /* RO  bytes of the whole answer */
#define VGPU_STUB_R_RESPONSE_OFFSET 0x844u  /* RW  window start, multiple of BUF_SIZE */
#define VGPU_STUB_R_REQUEST_TOTAL   0x848u  /* RO  bytes of the frame assembled so far */
#define VGPU_STUB_R_MAX_FRAME       0x84cu  /* RO  VGPU_STUB_MAX_FRAME */
#define VGPU_STUB_R_LINK_STATE      0x880u  /* RO  1 while the device is linked to the server */
#define VGPU_STUB_R_QP_DOORBELL     0x900u  /* WO  slot 0's doorbell; see below */
/* Slot k's doorbell (k below the number of doorbells): any value, any width. */
#define VGPU_STUB_R_QP_DOORBELL_K(k) (VGPU_STUB_R_QP_DOORBELL + 4u * (uint32_t)(k))

/* CAPABILITIES bits. */
#define VGPU_STUB_CAP_CHUNKS    0x01u       /* frames in chunks, CHUNK_CTRL */
#define VGPU_STUB_CAP_INTX      0x02u       /* IRQ_CTRL, IRQ_STATUS, INTx pin A */
#define VGPU_STUB_CAP_CHANNELS  0x04u       /* CHANNEL, CLOSE */
#define VGPU_STUB_CAP_SHARED    0x08u       /* BAR2: memory shared with the server */
#define VGPU_STUB_CAP_DOORBELLS 0x10u       /* QP_DOORBELL registers */
#define VGPU_STUB_CAP_LINK_STATE 0x20u      /* LINK_STATE */
/* What every device has. */
#define VGPU_STUB_CAP_BASE \
    (VGPU_STUB_CAP_CHUNKS | VGPU_STUB_CAP_INTX | VGPU_STUB_CAP_CHANNELS | VGPU_STUB_CAP_LINK_STATE)

/* STATUS values. */
enum {
    VGPU_STUB_STATUS_IDLE = 0,
    VGPU_STUB_STATUS_BUSY = 1,
    VGPU_STUB_STATUS_DONE = 2,
    VGPU_STUB_STATUS_ERROR = 3,
};

/* DOORBELL commands. */
enum {
    VGPU_STUB_CMD_SUBMIT = 1,
    VGPU_STUB_CMD_ACK = 2,
    VGPU_STUB_CMD_CLOSE = 3,
};

#define VGPU_STUB_CHUNK_MORE    0x1u        /* CHUNK_CTRL: not the frame's last chunk */
#define VGPU_STUB_IRQ_DONE      0x1u        /* IRQ_CTRL, IRQ_STATUS: STATUS became DONE or ERROR */

/* ERROR_CODE values (docs/specs/vgpu-stub.md, "Error codes"). */
enum {
    VGPU_STUB_ERR_NONE = 0,
    VGPU_STUB_ERR_BAD_OFFSET = 1,
    VGPU_STUB_ERR_BAD_WIDTH = 2,
    VGPU_STUB_ERR_BAD_LENGTH = 3,
    VGPU_STUB_ERR_BUSY = 4,
    VGPU_STUB_ERR_BAD_FRAME = 5,
    VGPU_STUB_ERR_TOO_LARGE = 6,
    VGPU_STUB_ERR_NO_SERVER = 7,
    VGPU_STUB_ERR_SERVER_GONE = 8,
    VGPU_STUB_ERR_BAD_COMMAND = 9,
    VGPU_STUB_ERR_BAD_RESPONSE_OFFSET = 10,
    VGPU_STUB_ERR_READ_PAST_END = 11,
    VGPU_STUB_ERR_BAD_ANSWER = 12,
    VGPU_STUB_ERR_NO_CHANNEL = 13,
    VGPU_STUB_ERR_READ_ONLY = 14,
};

/* Whether CAPABILITIES caps has every bit of need (not just one of them). */
static inline int vgpu_stub_caps_have(uint32_t caps, uint32_t need)
{
    return (caps & need) == need;
}

/* ---- BAR2, the shared BAR: slots and doorbells ----------------------------- */

/*
 * BAR2 (with the device's memdev) is a power of two of at least 1 MiB.  The
 * guest's processes cut it into slots of 8 MiB (the whole BAR is one slot
 * when it is smaller than two of them); slot k's queue pair rings doorbell
 * k.  A slot holds its queue pair in its first 2 MiB and staging memory
 * for bulk copies after it; a queue pair needs a slot of at least 4 MiB.
 */
#define VGPU_STUB_BAR2_MIN          (1u << 20)
#define VGPU_STUB_SLOT_SHIFT        23
#define VGPU_STUB_SLOT_SIZE         (1u << VGPU_STUB_SLOT_SHIFT)    /* 8 MiB */
#define VGPU_STUB_SLOT_QP_OFFSET    0u
#define VGPU_STUB_SLOT_QP_SIZE      (2u << 20)
#define VGPU_STUB_SLOT_STAGING_OFFSET (VGPU_STUB_SLOT_QP_OFFSET + VGPU_STUB_SLOT_QP_SIZE)
#define VGPU_STUB_SLOT_MIN_FOR_QP   (2u * VGPU_STUB_SLOT_QP_SIZE)   /* 4 MiB */
#define VGPU_STUB_MAX_DOORBELLS     64u

/* The size of each slot of a shared BAR of bar_size bytes. */
static inline uint64_t vgpu_stub_slot_size(uint64_t bar_size)
{
    return bar_size < 2ull * VGPU_STUB_SLOT_SIZE ? bar_size : VGPU_STUB_SLOT_SIZE;
}

/* The number of doorbells a device with a BAR2 of bar_size bytes offers. */
static inline uint32_t vgpu_stub_doorbells(uint64_t bar_size)
{
    uint64_t n = bar_size >> VGPU_STUB_SLOT_SHIFT;

    if (n < 1) {
        return 1;
    }
    return n > VGPU_STUB_MAX_DOORBELLS ? VGPU_STUB_MAX_DOORBELLS : (uint32_t)n;
}

/* ---- frames: the header facts the device checks ------------------------------ */

/*
 * A vgpu frame starts with a 32-byte header (docs/protocol.md, section 2);
 * wire.h takes these definitions from here.  The device accepts a frame
 * whose magic, flags (only bits of VGPU_FRAME_F_KNOWN), reserved word (0)
 * and lengths (32 + env_len + payload_len == its size) are right; it does
 * not look at the version (see VGPU_STUB_REG_VERSION) or the seq.
 */
#define VGPU_FRAME_MAGIC            0x55504756u /* bytes 'V' 'G' 'P' 'U' */
#define VGPU_FRAME_HEADER_SIZE      32u
#define VGPU_FRAME_OFF_MAGIC        0u          /* u32, in every version */
#define VGPU_FRAME_OFF_VERSION      4u          /* u16, in every version */
#define VGPU_FRAME_OFF_FLAGS        6u          /* u16 */
#define VGPU_FRAME_OFF_ENV_LEN      8u          /* u32 */
#define VGPU_FRAME_OFF_PAYLOAD_LEN  12u         /* u32 */
#define VGPU_FRAME_OFF_SEQ          16u         /* u64 */
#define VGPU_FRAME_OFF_RESERVED     24u         /* u64, must be 0 */

/* Header flags.  Every bit not in VGPU_FRAME_F_KNOWN is reserved and must be 0. */
#define VGPU_FRAME_F_REPLY          0x0001u     /* answers the request with the same seq */
#define VGPU_FRAME_F_COMPACT        0x0002u     /* the envelope is in the compact form */
#define VGPU_FRAME_F_KNOWN          (VGPU_FRAME_F_REPLY | VGPU_FRAME_F_COMPACT)

/* ---- the link: records on the device's chardev ---------------------------- */

/*
 * Each record is a 16-byte header and length bytes of payload:
 *   0 u32 magic   VGPU_LINK_MAGIC
 *   4 u16 type    VGPU_LINK_*
 *   6 u16 flags   0
 *   8 u32 channel the guest client (0 for HELLO)
 *  12 u32 length  of the payload, at most VGPU_LINK_MAX_PAYLOAD
 */
#define VGPU_LINK_MAGIC             0x4c445056u /* bytes 'V' 'P' 'D' 'L' */
#define VGPU_LINK_HEADER_SIZE       16u
#define VGPU_LINK_OFF_MAGIC         0u
#define VGPU_LINK_OFF_TYPE          4u
#define VGPU_LINK_OFF_FLAGS         6u
#define VGPU_LINK_OFF_CHANNEL       8u
#define VGPU_LINK_OFF_LENGTH        12u
#define VGPU_LINK_MAX_PAYLOAD       VGPU_STUB_MAX_FRAME

/* Record types; a receiver ignores types it does not know. */
enum {
    VGPU_LINK_HELLO = 1,    /* device to server, first record; channel 0 */
    VGPU_LINK_FRAME = 2,    /* both ways: one whole frame of the channel */
    VGPU_LINK_CLOSE = 3,    /* device to server, no payload: the client is gone */
    VGPU_LINK_FAIL = 4,     /* server to device, no payload: the session failed */
};

/*
 * HELLO's payload: 12 bytes, or 20 with the shared BAR's size (its memfd
 * rides with the record), or 24 with the number of doorbell eventfds that
 * follow the memfd, in slot order.
 */
#define VGPU_LINK_HELLO_OFF_VM_ID       0u      /* u32 */
#define VGPU_LINK_HELLO_OFF_POOL_ID     4u      /* u8, ASCII letter */
#define VGPU_LINK_HELLO_OFF_PRIORITY    5u      /* u8 */
#define VGPU_LINK_HELLO_OFF_ZERO        6u      /* 2 bytes, 0 */
#define VGPU_LINK_HELLO_OFF_VERSION     8u      /* u32, VGPU_STUB_REG_VERSION */
#define VGPU_LINK_HELLO_OFF_BAR_SIZE    12u     /* u64 */
#define VGPU_LINK_HELLO_OFF_DOORBELLS   20u     /* u32 */
#define VGPU_LINK_HELLO_SIZE            12u
#define VGPU_LINK_HELLO_SIZE_BAR        20u
#define VGPU_LINK_HELLO_SIZE_DOORBELLS  24u
#define VGPU_LINK_HELLO_MAX             VGPU_LINK_HELLO_SIZE_DOORBELLS
/* fds that may ride with HELLO: the memfd and one eventfd per doorbell */
#define VGPU_LINK_HELLO_MAX_FDS         (1u + VGPU_STUB_MAX_DOORBELLS)

/* ---- little-endian words in byte buffers ------------------------------------ */

static inline void vgpu_abi_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void vgpu_abi_put_le32(uint8_t *p, uint32_t v)
{
    vgpu_abi_put_le16(p, (uint16_t)v);
    vgpu_abi_put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void vgpu_abi_put_le64(uint8_t *p, uint64_t v)
{
    vgpu_abi_put_le32(p, (uint32_t)v);
    vgpu_abi_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t vgpu_abi_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t vgpu_abi_get_le32(const uint8_t *p)
{
    return vgpu_abi_get_le16(p) | (uint32_t)vgpu_abi_get_le16(p + 2) << 16;
}

static inline uint64_t vgpu_abi_get_le64(const uint8_t *p)
{
    return vgpu_abi_get_le32(p) | (uint64_t)vgpu_abi_get_le32(p + 4) << 32;
}

/* ---- link records in host byte order ---------------------------------------- */

struct vgpu_link_header {
    uint32_t magic;
    uint16_t type;
    uint16_t flags;
    uint32_t channel;
    uint32_t length;
};

/* The header of a record of this type, channel and payload length (flags 0). */
static inline void vgpu_link_header_pack(uint8_t out[VGPU_LINK_HEADER_SIZE],
                                         uint16_t type, uint32_t channel,
                                         uint32_t length)
{
    vgpu_abi_put_le32(out + VGPU_LINK_OFF_MAGIC, VGPU_LINK_MAGIC);
    vgpu_abi_put_le16(out + VGPU_LINK_OFF_TYPE, type);
    vgpu_abi_put_le16(out + VGPU_LINK_OFF_FLAGS, 0);
    vgpu_abi_put_le32(out + VGPU_LINK_OFF_CHANNEL, channel);
    vgpu_abi_put_le32(out + VGPU_LINK_OFF_LENGTH, length);
}

/*
 * Every field as found, unchecked: the caller judges the magic, the length
 * (VGPU_LINK_MAX_PAYLOAD) and what the type asks of it.
 */
static inline void vgpu_link_header_unpack(const uint8_t in[VGPU_LINK_HEADER_SIZE],
                                           struct vgpu_link_header *h)
{
    h->magic = vgpu_abi_get_le32(in + VGPU_LINK_OFF_MAGIC);
    h->type = vgpu_abi_get_le16(in + VGPU_LINK_OFF_TYPE);
    h->flags = vgpu_abi_get_le16(in + VGPU_LINK_OFF_FLAGS);
    h->channel = vgpu_abi_get_le32(in + VGPU_LINK_OFF_CHANNEL);
    h->length = vgpu_abi_get_le32(in + VGPU_LINK_OFF_LENGTH);
}

struct vgpu_link_hello {
    uint32_t vm_id;
    uint8_t pool_id;
    uint8_t priority;
    uint32_t version;
    uint64_t bar_size;      /* 0 in a 12-byte HELLO */
    uint32_t doorbells;     /* 0 in a 12- or 20-byte HELLO */
};

/* Whether len is the length of a HELLO payload: 12, 20 or 24. */
static inline int vgpu_link_hello_size_ok(uint32_t len)
{
    return len == VGPU_LINK_HELLO_SIZE || len == VGPU_LINK_HELLO_SIZE_BAR ||
           len == VGPU_LINK_HELLO_SIZE_DOORBELLS;
}

/*
 * Writes the first len bytes of h's HELLO payload into out; len must be
 * one of the three sizes (vgpu_link_hello_size_ok).
 */
static inline void vgpu_link_hello_pack(uint8_t out[VGPU_LINK_HELLO_MAX],
                                        const struct vgpu_link_hello *h,
                                        uint32_t len)
{
    vgpu_abi_put_le32(out + VGPU_LINK_HELLO_OFF_VM_ID, h->vm_id);
    out[VGPU_LINK_HELLO_OFF_POOL_ID] = h->pool_id;
    out[VGPU_LINK_HELLO_OFF_PRIORITY] = h->priority;
    out[VGPU_LINK_HELLO_OFF_ZERO] = 0;
    out[VGPU_LINK_HELLO_OFF_ZERO + 1] = 0;
    vgpu_abi_put_le32(out + VGPU_LINK_HELLO_OFF_VERSION, h->version);
    if (len >= VGPU_LINK_HELLO_SIZE_BAR) {
        vgpu_abi_put_le64(out + VGPU_LINK_HELLO_OFF_BAR_SIZE, h->bar_size);
    }
    if (len >= VGPU_LINK_HELLO_SIZE_DOORBELLS) {
        vgpu_abi_put_le32(out + VGPU_LINK_HELLO_OFF_DOORBELLS, h->doorbells);
    }
}

/*
 * Reads a HELLO payload of len bytes into *h (fields the payload lacks are
 * 0).  Returns 0, or -1 when len is not a HELLO size (*h untouched).  The
 * values are the sender's: the caller judges them.
 */
static inline int vgpu_link_hello_unpack(const uint8_t *p, uint32_t len,
                                         struct vgpu_link_hello *h)
{
    if (!vgpu_link_hello_size_ok(len)) {
        return -1;
    }
    h->vm_id = vgpu_abi_get_le32(p + VGPU_LINK_HELLO_OFF_VM_ID);
    h->pool_id = p[VGPU_LINK_HELLO_OFF_POOL_ID];
    h->priority = p[VGPU_LINK_HELLO_OFF_PRIORITY];
    h->version = vgpu_abi_get_le32(p + VGPU_LINK_HELLO_OFF_VERSION);
    h->bar_size = len >= VGPU_LINK_HELLO_SIZE_BAR ?
                  vgpu_abi_get_le64(p + VGPU_LINK_HELLO_OFF_BAR_SIZE) : 0;
    h->doorbells = len >= VGPU_LINK_HELLO_SIZE_DOORBELLS ?
                   vgpu_abi_get_le32(p + VGPU_LINK_HELLO_OFF_DOORBELLS) : 0;
    return 0;
}

/* ---- the layouts above add up ---------------------------------------------- */

_Static_assert(VGPU_STUB_R_REQUEST + VGPU_STUB_BUF_SIZE == VGPU_STUB_R_RESPONSE,
               "REQUEST is followed by RESPONSE");
_Static_assert(VGPU_STUB_R_RESPONSE + VGPU_STUB_BUF_SIZE == VGPU_STUB_R_RESPONSE_TOTAL,
               "RESPONSE is followed by RESPONSE_TOTAL");
_Static_assert(VGPU_STUB_R_LINK_EPOCH + VGPU_STUB_REG_WIDTH == VGPU_STUB_R_REQUEST,
               "the 32-bit registers end where REQUEST starts");
_Static_assert(VGPU_STUB_R_MAX_FRAME + VGPU_STUB_REG_WIDTH <= VGPU_STUB_R_LINK_STATE &&
               VGPU_STUB_R_LINK_STATE + VGPU_STUB_REG_WIDTH <= VGPU_STUB_R_QP_DOORBELL,
               "the registers end before the doorbells");
_Static_assert(VGPU_STUB_R_QP_DOORBELL_K(VGPU_STUB_MAX_DOORBELLS) <= VGPU_STUB_BAR0_SIZE,
               "every doorbell lies in BAR0");
_Static_assert(VGPU_STUB_MAX_FRAME % VGPU_STUB_BUF_SIZE == 0,
               "the last response window of the largest frame is full");
_Static_assert((VGPU_STUB_CAP_BASE & (VGPU_STUB_CAP_SHARED | VGPU_STUB_CAP_DOORBELLS)) == 0,
               "capability bits are distinct");
_Static_assert(VGPU_STUB_SLOT_STAGING_OFFSET < VGPU_STUB_SLOT_MIN_FOR_QP &&
               VGPU_STUB_SLOT_MIN_FOR_QP <= VGPU_STUB_SLOT_SIZE,
               "a slot that takes a queue pair has staging memory after it");
_Static_assert(VGPU_STUB_BAR2_MIN <= VGPU_STUB_SLOT_SIZE,
               "the smallest shared BAR is one slot");
_Static_assert(VGPU_FRAME_OFF_RESERVED + 8 == VGPU_FRAME_HEADER_SIZE,
               "the frame header is 32 bytes");
_Static_assert(VGPU_FRAME_OFF_VERSION == VGPU_FRAME_OFF_MAGIC + 4,
               "magic and version stay at offsets 0 and 4 in every version");
_Static_assert(VGPU_LINK_OFF_LENGTH + 4 == VGPU_LINK_HEADER_SIZE,
               "the link record header is 16 bytes");
_Static_assert(VGPU_LINK_HELLO_OFF_VERSION + 4 == VGPU_LINK_HELLO_SIZE &&
               VGPU_LINK_HELLO_OFF_BAR_SIZE + 8 == VGPU_LINK_HELLO_SIZE_BAR &&
               VGPU_LINK_HELLO_OFF_DOORBELLS + 4 == VGPU_LINK_HELLO_SIZE_DOORBELLS,
               "each HELLO size ends with its last field");
_Static_assert(VGPU_LINK_MAX_PAYLOAD <= 0xffffffffu - VGPU_LINK_HEADER_SIZE,
               "a whole record's size fits 32 bits");

#endif /* VGPU_STUB_ABI_H */
