/* SPDX-License-Identifier: Apache-2.0 */
/* The queue pair's rings; see include/vgpu/qp.h. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "vgpu/qp.h"

#define REC_HEAD 8u

static uint32_t rec_bytes(uint32_t len)
{
    return REC_HEAD + ((len + 7u) & ~7u);
}

static int pow2_ok(uint32_t n)
{
    return n >= VGPU_QP_RING_MIN && n <= VGPU_QP_RING_MAX && !(n & (n - 1));
}

static void wire_up(struct vgpu_qp *q, uint8_t *base, uint32_t sub_size, uint32_t comp_size)
{
    struct vgpu_qp_hdr *h = (struct vgpu_qp_hdr *)base;

    q->hdr = h;
    q->sub = (struct vgpu_qring){ .tail = &h->sub_tail, .head = &h->sub_head,
                                  .data = base + VGPU_QP_HEADER, .size = sub_size };
    q->comp = (struct vgpu_qring){ .tail = &h->comp_tail, .head = &h->comp_head,
                                   .data = base + VGPU_QP_HEADER + sub_size, .size = comp_size };
}

int vgpu_qp_create(struct vgpu_qp *q, void *base, uint64_t len, uint32_t sub_size, uint32_t comp_size)
{
    struct vgpu_qp_hdr *h = base;

    if (!pow2_ok(sub_size) || !pow2_ok(comp_size) || len < vgpu_qp_bytes(sub_size, comp_size))
        return -EINVAL;
    /*
     * The rings too: memory used before (a guest's BAR slot, left by the
     * process that had it) holds records whose positions a new pair would
     * reach again, from 0.
     */
    memset(base, 0, (size_t)vgpu_qp_bytes(sub_size, comp_size));
    h->sub_size = sub_size;
    h->comp_size = comp_size;
    __atomic_store_n(&h->magic, VGPU_QP_MAGIC, __ATOMIC_RELEASE);
    wire_up(q, base, sub_size, comp_size);
    return 0;
}

int vgpu_qp_attach(struct vgpu_qp *q, void *base, uint64_t len)
{
    struct vgpu_qp_hdr *h = base;
    uint32_t sub = __atomic_load_n(&h->sub_size, __ATOMIC_RELAXED);
    uint32_t comp = __atomic_load_n(&h->comp_size, __ATOMIC_RELAXED);

    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != VGPU_QP_MAGIC || !pow2_ok(sub) ||
        !pow2_ok(comp) || len != vgpu_qp_bytes(sub, comp))
        return -EINVAL;
    wire_up(q, base, sub, comp);
    /*
     * Start where the client is now, which must be a record boundary (a
     * multiple of 8): every offset computed from here on assumes it, and an
     * odd one would put a header across the end of a ring.
     */
    q->sub.pos = __atomic_load_n(q->sub.tail, __ATOMIC_ACQUIRE);
    __atomic_store_n(q->sub.head, q->sub.pos, __ATOMIC_RELEASE);
    q->comp.pos = __atomic_load_n(q->comp.head, __ATOMIC_ACQUIRE);
    q->comp.seen = q->comp.pos;
    if ((q->sub.pos | q->comp.pos) & 7)
        return -EINVAL;
    __atomic_store_n(q->comp.tail, q->comp.pos, __ATOMIC_RELEASE);
    return 0;
}

/*
 * A record's header is one 64-bit word, stored last (release): its length
 * and kind, and the position it was written at.  The consumer looks at the
 * header where it stands rather than at the producer's index, so what it
 * waits for arrives in the cache line that brings the frame's first bytes;
 * a header left from an earlier lap has another position.
 */
static uint64_t head_word(uint32_t len, uint32_t kind, uint32_t pos)
{
    return (uint64_t)pos << 32 | (uint64_t)kind << 24 | len;
}

static void put_head(uint8_t *p, uint32_t len, uint32_t kind, uint32_t pos)
{
    __atomic_store_n((uint64_t *)(void *)p, head_word(len, kind, pos), __ATOMIC_RELEASE);
}

static uint64_t get_head(const uint8_t *p)
{
    return __atomic_load_n((const uint64_t *)(const void *)p, __ATOMIC_ACQUIRE);
}

/* Bytes in use, by the consumer's head as last read (fresh: read it again). */
static int used_bytes(struct vgpu_qring *r, int fresh, uint32_t *used)
{
    if (fresh)
        r->seen = __atomic_load_n(r->head, __ATOMIC_ACQUIRE);
    *used = r->pos - r->seen;
    return *used > r->size ? -EPROTO : 0;
}

uint8_t *vgpu_qring_reserve(struct vgpu_qring *r, uint32_t len, int *err)
{
    uint32_t off = r->pos & (r->size - 1), to_end = r->size - off, need, used, want;

    *err = 0;
    if (len > vgpu_qring_max(r)) {
        *err = -E2BIG;
        return NULL;
    }
    need = rec_bytes(len);
    /* and room for the next record's header, cleared at publication */
    want = (to_end < need ? to_end + need : need) + REC_HEAD;
    /* the consumer's index is read only when the last look says the room is short */
    if ((*err = used_bytes(r, 0, &used)) == 0 && r->size - used < want)
        *err = used_bytes(r, 1, &used);
    if (*err)
        return NULL;
    if (r->size - used < want)
        return NULL;
    if (to_end < need) {
        /*
         * The record would cross the end: a WRAP fills it, the record starts
         * over; the start is cleared first, so nothing left there from an
         * earlier lap looks like a record.
         */
        __atomic_store_n((uint64_t *)(void *)r->data, 0, __ATOMIC_RELAXED);
        put_head(r->data + off, 0, VGPU_QP_WRAP, r->pos);
        r->pos += to_end;
        off = 0;
    }
    return r->data + off + REC_HEAD;
}

void vgpu_qring_publish(struct vgpu_qring *r, uint32_t len, uint32_t kind)
{
    uint32_t next = (r->pos + rec_bytes(len)) & (r->size - 1);

    /*
     * Where the next record's header will be is cleared before this one is
     * published (reserve kept it free), so bytes left there from an earlier
     * lap never look like a record.
     */
    __atomic_store_n((uint64_t *)(void *)(r->data + next), 0, __ATOMIC_RELAXED);
    put_head(r->data + (r->pos & (r->size - 1)), len, kind, r->pos);
    r->pos += rec_bytes(len);
    __atomic_store_n(r->tail, r->pos, __ATOMIC_RELEASE);
}

/*
 * Is the producer's index ahead of us?  Right after a WRAP it is behind
 * (it moves with the record that follows), which is "not yet" too.
 */
static int ahead(const struct vgpu_qring *r)
{
    return (int32_t)(__atomic_load_n(r->tail, __ATOMIC_ACQUIRE) - r->pos) > 0;
}

int vgpu_qring_ready(const struct vgpu_qring *r)
{
    uint64_t h = get_head(r->data + (r->pos & (r->size - 1)));

    return (uint32_t)(h >> 32) == r->pos && (h & 0xff000000u);
}

int vgpu_qring_pending(const struct vgpu_qring *r)
{
    /* a header for here, or (to be looked at) an index that moved */
    return vgpu_qring_ready(r) || ahead(r);
}

int vgpu_qring_peek(struct vgpu_qring *r, const uint8_t **data, uint32_t *len, uint32_t *kind)
{
    for (;;) {
        uint32_t off = r->pos & (r->size - 1), to_end = r->size - off, l, k;
        /* read once: the producer may scribble on it meanwhile */
        uint64_t h = get_head(r->data + off);

        /* (a zeroed ring has headers of kind 0 at position 0: nothing) */
        if ((uint32_t)(h >> 32) != r->pos || !(h & 0xff000000u)) {
            /*
             * Nothing here yet, or it came just after we looked: the index
             * moves after the header is stored, so once the index has
             * moved, the header must be there.
             */
            if (!ahead(r))
                return -EAGAIN;
            h = get_head(r->data + off);
            if ((uint32_t)(h >> 32) != r->pos || !(h & 0xff000000u))
                return -EPROTO;
        }
        l = (uint32_t)h & 0xffffffu;
        k = (uint32_t)(h >> 24) & 0xffu;
        if (k == VGPU_QP_WRAP) {
            if (off == 0 || l)
                return -EPROTO;
            r->pos += to_end;
            __atomic_store_n(r->head, r->pos, __ATOMIC_RELEASE);
            continue;
        }
        if (l > vgpu_qring_max(r) || rec_bytes(l) > to_end ||
            (k != VGPU_QP_FRAME && k != VGPU_QP_ON_SOCKET && k != VGPU_QP_TOO_LARGE))
            return -EPROTO;
        *data = r->data + off + REC_HEAD;
        *len = l;
        *kind = k;
        return 0;
    }
}

void vgpu_qring_pop(struct vgpu_qring *r, uint32_t len)
{
    r->pos += rec_bytes(len);
    __atomic_store_n(r->head, r->pos, __ATOMIC_RELEASE);
}
