// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the queue pair's rings (wire/qp.c) as their
 * consumers read them from shared memory the other side can write: the
 * server taking a guest's submissions, and the shim taking a hostile
 * server's completions (shim/qp_client.c's vgpu_shim_qp_recv does the same
 * peek, copy and pop).  Each input is a program of operations on one queue
 * pair: honest records produced, bytes and indices of the shared memory
 * written by the other side at any moment (between a peek and the copy
 * too, as a producer racing the consumer would), peeks, copies (decoded as
 * frames), pops, and the server's attach of a header whose sizes the
 * client chose.
 *
 * Checked after every step: a record peeked lies inside its ring, no
 * longer than the ring allows; a broken ring gives -EPROTO and nothing
 * else; an attach accepts only sizes that fit the memory.  ASan and UBSan
 * catch reads outside it.  A violation aborts, which libFuzzer reports.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/qp.h"
#include "vgpu/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RING (64u << 10)
#define QP_LEN (VGPU_QP_HEADER + 2u * RING)

static uint8_t *mem;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "qp_fuzz: %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
            abort();                                                                   \
        }                                                                              \
    } while (0)

struct input {
    const uint8_t *p;
    size_t left;
};

static uint32_t take(struct input *in, unsigned bytes)
{
    uint32_t v = 0;

    for (unsigned i = 0; i < bytes && in->left; i++, in->left--)
        v |= (uint32_t)*in->p++ << (8 * i);
    return v;
}

/* One consumer's view, with the record it peeked last (if any). */
struct side {
    struct vgpu_qring *ring;
    const uint8_t *rec;
    uint32_t len, kind;
    int peeked;
};

static void peek(struct side *s)
{
    const uint8_t *d = NULL;
    uint32_t len = 0, kind = 0;
    int rc = vgpu_qring_peek(s->ring, &d, &len, &kind);

    CHECK(rc == 0 || rc == -EAGAIN || rc == -EPROTO);
    s->peeked = rc == 0;
    if (rc)
        return;
    CHECK(d >= s->ring->data && d + len <= s->ring->data + s->ring->size);
    CHECK(len <= vgpu_qring_max(s->ring));
    CHECK(kind == VGPU_QP_FRAME || kind == VGPU_QP_ON_SOCKET || kind == VGPU_QP_TOO_LARGE);
    s->rec = d;
    s->len = len;
    s->kind = kind;
}

/* What a consumer does with a frame record: copy it, then trust only the copy. */
static void copy_and_decode(struct side *s)
{
    struct vgpu_frame f = { 0 };
    uint8_t *copy;

    if (!s->peeked || s->kind != VGPU_QP_FRAME || s->len < VGPU_FRAME_HEADER_SIZE)
        return;
    copy = malloc(s->len);
    CHECK(copy);
    memcpy(copy, s->rec, s->len);
    if (vgpu_frame_decode(copy, s->len, NULL, NULL, NULL, &f) == 0)
        vgpu_frame_release(&f);
    free(copy);
}

static void pop(struct side *s)
{
    uint32_t before = s->ring->pos;

    if (!s->peeked)
        return;
    vgpu_qring_pop(s->ring, s->len);
    CHECK(s->ring->pos - before >= 8 && s->ring->pos - before <= s->ring->size);
    s->peeked = 0;
}

/* An honest producer's record: a frame header and filler, or another kind. */
static void produce(struct vgpu_qring *r, struct input *in)
{
    uint32_t len = take(in, 2) % (vgpu_qring_max(r) + 16), kind = 1 + take(in, 1) % 3;
    int err = 0;
    uint8_t *p = vgpu_qring_reserve(r, len, &err);

    CHECK(p || err == 0 || err == -E2BIG || err == -EPROTO);
    if (!p)
        return;
    CHECK(p >= r->data && p + len <= r->data + r->size);
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 31u + len);
    vgpu_qring_publish(r, len, kind);
}

/* The other side writes what it likes where it likes. */
static void scribble(struct input *in)
{
    uint32_t off = take(in, 4) % QP_LEN, n = 1 + take(in, 1) % 16;

    for (uint32_t i = 0; i < n && off + i < QP_LEN; i++)
        mem[off + i] = (uint8_t)take(in, 1);
}

static void set_index(struct vgpu_qp *q, struct input *in)
{
    uint32_t *w[] = { &q->hdr->sub_tail, &q->hdr->sub_head, &q->hdr->comp_tail, &q->hdr->comp_head };
    uint32_t which = take(in, 1) % 4, v = take(in, 4);

    __atomic_store_n(w[which], v, __ATOMIC_RELEASE);
}

/* The server attaching a queue pair whose header the client wrote. */
static void attach_hostile(struct input *in)
{
    struct vgpu_qp q;
    struct vgpu_qp_hdr *h = (struct vgpu_qp_hdr *)mem;
    uint64_t len = take(in, 1) % 2 ? QP_LEN : take(in, 4);

    h->magic = take(in, 1) % 4 ? VGPU_QP_MAGIC : take(in, 4);
    h->sub_size = take(in, 1) % 2 ? RING : take(in, 4);
    h->comp_size = take(in, 1) % 2 ? RING : take(in, 4);
    if (vgpu_qp_attach(&q, mem, len) == 0) {
        CHECK(len <= QP_LEN);
        CHECK(vgpu_qp_bytes(q.sub.size, q.comp.size) <= len);
        CHECK(q.sub.data + q.sub.size <= mem + len && q.comp.data + q.comp.size <= mem + len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = { data, size };
    struct vgpu_qp client, server;
    struct side srv, cli;

    if (!mem)
        mem = aligned_alloc(4096, QP_LEN);
    CHECK(mem);
    CHECK(vgpu_qp_create(&client, mem, QP_LEN, RING, RING) == 0);
    CHECK(vgpu_qp_attach(&server, mem, QP_LEN) == 0);
    srv = (struct side){ .ring = &server.sub };
    cli = (struct side){ .ring = &client.comp };
    while (in.left) {
        switch (take(&in, 1) % 12) {
        case 0: produce(&client.sub, &in); break;      /* a guest's request */
        case 1: produce(&server.comp, &in); break;     /* the server's reply */
        case 2: scribble(&in); break;
        case 3: set_index(&client, &in); break;
        case 4: peek(&srv); break;
        case 5: peek(&cli); break;
        case 6: copy_and_decode(&srv); break;
        case 7: copy_and_decode(&cli); break;
        case 8: pop(&srv); break;
        case 9: pop(&cli); break;
        case 10:
            (void)vgpu_qring_pending(&server.sub);
            (void)vgpu_qring_ready(&client.comp);
            break;
        default: attach_hostile(&in); return 0;     /* the header is the input's now */
        }
    }
    return 0;
}
