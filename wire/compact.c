/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The compact form of the envelope (frame flag VGPU_FRAME_F_COMPACT), for
 * call batches and result batches on the queue pair: the same messages as
 * the protobuf envelope, laid out in fixed little-endian words, so that the
 * hot path does not pay protobuf-c's reflective packing and unpacking for
 * the wrapping of every call (the calls' own argument messages stay
 * protobuf).  The decoder fills the same protobuf-c structures the protobuf
 * decoder does, so everything after decoding is shared, checks included.
 * Layout: docs/protocol.md, "The compact envelope".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compact.h"
#include "le.h"

#define KIND_CALLS 3u           /* the Envelope oneof numbers */
#define KIND_RESULTS 4u

static uint32_t pad8(uint32_t n)
{
    return (n + 7u) & ~7u;
}

/* Writing moves a cursor; the words themselves are le.h's, as in the frame header. */
static void put32(uint8_t **p, uint32_t v)
{
    put_le32(*p, v);
    *p += 4;
}

static void put64(uint8_t **p, uint64_t v)
{
    put_le64(*p, v);
    *p += 8;
}

static void put_bytes(uint8_t **p, const ProtobufCBinaryData *b)
{
    uint32_t n = (uint32_t)b->len;

    if (n)
        memcpy(*p, b->data, n);
    memset(*p + n, 0, pad8(n) - n);
    *p += pad8(n);
}

static void put_segs(uint8_t **p, Vgpu__Wire__Segment *const *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        put64(p, s[i]->offset);
        put64(p, s[i]->length);
    }
}

int vgpu_compact_size(const Vgpu__Wire__Envelope *env, size_t *out)
{
    uint64_t n = 4;

    if (env->body_case == VGPU__WIRE__ENVELOPE__BODY_CALLS && env->calls) {
        n += 12 + (env->calls->context ? 8 : 0);
        for (size_t i = 0; i < env->calls->n_calls; i++) {
            const Vgpu__Wire__Call *c = env->calls->calls[i];

            if (c->args.len > UINT32_MAX - 8)
                return -E2BIG;
            n += 16 + 16 * (uint64_t)c->n_segments + pad8((uint32_t)c->args.len);
        }
    } else if (env->body_case == VGPU__WIRE__ENVELOPE__BODY_RESULTS && env->results) {
        n += 8;
        for (size_t i = 0; i < env->results->n_results; i++) {
            const Vgpu__Wire__Result *r = env->results->results[i];

            if (r->ret.len > UINT32_MAX - 8)
                return -E2BIG;
            n += 24 + 16 * (uint64_t)r->n_segments + pad8((uint32_t)r->ret.len);
        }
    } else {
        return -EINVAL;         /* only batches have a compact form */
    }
    if (n > UINT32_MAX)
        return -E2BIG;
    *out = (size_t)n;
    return 0;
}

void vgpu_compact_write(const Vgpu__Wire__Envelope *env, uint8_t *p)
{
    if (env->body_case == VGPU__WIRE__ENVELOPE__BODY_CALLS) {
        const Vgpu__Wire__CallBatch *b = env->calls;

        put32(&p, KIND_CALLS);
        put32(&p, (uint32_t)b->n_calls);
        put32(&p, (uint32_t)b->device);
        put32(&p, (b->flight ? 1u : 0u) | (b->context ? 2u : 0u));
        if (b->context)
            put64(&p, b->context);
        for (size_t i = 0; i < b->n_calls; i++) {
            const Vgpu__Wire__Call *c = b->calls[i];

            put32(&p, c->call_id);
            put32(&p, (uint32_t)c->args.len);
            put32(&p, (uint32_t)c->n_segments);
            put32(&p, 0);
            put_segs(&p, c->segments, c->n_segments);
            put_bytes(&p, &c->args);
        }
    } else {
        const Vgpu__Wire__ResultBatch *b = env->results;

        put32(&p, KIND_RESULTS);
        put32(&p, (uint32_t)b->n_results);
        put32(&p, (b->failures_only ? 1u : 0u) | (b->device_output ? 2u : 0u));
        for (size_t i = 0; i < b->n_results; i++) {
            const Vgpu__Wire__Result *r = b->results[i];

            put32(&p, r->call_id);
            put32(&p, (uint32_t)r->status);
            put32(&p, r->index);
            put32(&p, (uint32_t)r->ret.len);
            put32(&p, (uint32_t)r->n_segments);
            put32(&p, 0);
            put_segs(&p, r->segments, r->n_segments);
            put_bytes(&p, &r->ret);
        }
    }
}

/* ---- decoding: untrusted input, every read bounded ---- */

struct rd {
    const uint8_t *p;
    size_t left;
    int bad;
};

static uint32_t get32(struct rd *r)
{
    uint32_t v;

    if (r->left < 4) {
        r->bad = 1;
        return 0;
    }
    v = get_le32(r->p);
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint64_t get64(struct rd *r)
{
    uint64_t lo = get32(r);

    return lo | (uint64_t)get32(r) << 32;
}

static const uint8_t *get_bytes(struct rd *r, uint32_t n)
{
    const uint8_t *d = r->p;

    if (n > r->left || pad8(n) > r->left || n > UINT32_MAX - 8) {
        r->bad = 1;
        return NULL;
    }
    r->p += pad8(n);
    r->left -= pad8(n);
    return d;
}

/* One pass over the body: counts (fill NULL) or fills the structures laid out in mem. */
struct layout {
    size_t items, segs;         /* calls or results; segments of all of them */
};

/* Where the filling pass puts the structures: items, item pointers, segments, segment pointers. */
struct fill {
    uint8_t *items;
    size_t isz;
    void **itemp;
    Vgpu__Wire__Segment *sg, **sgp;
};

/*
 * A batch's head words: its kind, number of items, device (calls only) and
 * flags (bit 0: a flight, or failures only; bit 1: with calls, the driver
 * context follows; with results, the session holds device output).
 */
static int walk_head(struct rd *r, const struct vgpu_wire_limits *lim, uint32_t *kind,
                     uint32_t *n, int32_t *device, uint32_t *flags, uint64_t *context)
{
    *kind = get32(r);
    if (*kind != KIND_CALLS && *kind != KIND_RESULTS)
        return VGPU_WIRE_E_MALFORMED;
    *n = get32(r);
    if (*kind == KIND_CALLS)
        *device = (int32_t)get32(r);
    *flags = get32(r);
    if (r->bad || (*flags & ~3u))
        return VGPU_WIRE_E_MALFORMED;
    if (*kind == KIND_CALLS && (*flags & 2u)) {
        *context = get64(r);
        if (r->bad || !*context)
            return VGPU_WIRE_E_MALFORMED;
    }
    if (*n > lim->max_calls)
        return VGPU_WIRE_E_TOO_MANY_CALLS;
    return 0;
}

/* Fills item i, a call or a result, whose segments start at index first. */
static void fill_item(const struct fill *f, uint32_t kind, uint32_t i, uint32_t id,
                      uint32_t status, uint32_t index, uint32_t blen, const uint8_t *bytes,
                      uint32_t nseg, size_t first)
{
    if (kind == KIND_CALLS) {
        Vgpu__Wire__Call *c = (Vgpu__Wire__Call *)(f->items + i * f->isz);

        *c = (Vgpu__Wire__Call)VGPU__WIRE__CALL__INIT;
        c->call_id = id;
        c->args.len = blen;
        c->args.data = blen ? (uint8_t *)bytes : NULL;
        c->n_segments = nseg;
        c->segments = nseg ? &f->sgp[first] : NULL;
        f->itemp[i] = c;
    } else {
        Vgpu__Wire__Result *res = (Vgpu__Wire__Result *)(f->items + i * f->isz);

        *res = (Vgpu__Wire__Result)VGPU__WIRE__RESULT__INIT;
        res->call_id = id;
        res->status = (int32_t)status;
        res->index = index;
        res->ret.len = blen;
        res->ret.data = blen ? (uint8_t *)bytes : NULL;
        res->n_segments = nseg;
        res->segments = nseg ? &f->sgp[first] : NULL;
        f->itemp[i] = res;
    }
}

/* Reads item i (and fills it, with f set); *segs counts the segments read so far. */
static int walk_item(struct rd *r, const struct vgpu_wire_limits *lim, uint32_t kind,
                     uint32_t i, size_t *segs, const struct fill *f)
{
    uint32_t id = get32(r), status = 0, index = 0, blen, nseg;
    const uint8_t *bytes;
    size_t first = *segs;

    if (kind == KIND_RESULTS) {
        status = get32(r);
        index = get32(r);
    }
    blen = get32(r);
    nseg = get32(r);
    if (get32(r) != 0 || r->bad)
        return VGPU_WIRE_E_MALFORMED;
    if (nseg > lim->max_segments)
        return VGPU_WIRE_E_TOO_MANY_SEGMENTS;
    if ((uint64_t)nseg * 16 > r->left)
        return VGPU_WIRE_E_MALFORMED;
    for (uint32_t k = 0; k < nseg; k++, (*segs)++) {
        uint64_t off = get64(r), l = get64(r);

        if (f) {
            f->sg[*segs] = (Vgpu__Wire__Segment)VGPU__WIRE__SEGMENT__INIT;
            f->sg[*segs].offset = off;
            f->sg[*segs].length = l;
            f->sgp[*segs] = &f->sg[*segs];
        }
    }
    bytes = get_bytes(r, blen);
    if (r->bad)
        return VGPU_WIRE_E_MALFORMED;
    if (f)
        fill_item(f, kind, i, id, status, index, blen, bytes, nseg, first);
    return 0;
}

/* The batch, after the items' structures, and the envelope that holds it. */
static void fill_batch(const struct fill *f, const struct layout *count, uint32_t kind,
                       uint32_t n, int32_t device, uint32_t flags, uint64_t context,
                       Vgpu__Wire__Envelope *env)
{
    if (kind == KIND_CALLS) {
        Vgpu__Wire__CallBatch *b = (Vgpu__Wire__CallBatch *)(f->sgp + count->segs);

        *b = (Vgpu__Wire__CallBatch)VGPU__WIRE__CALL_BATCH__INIT;
        b->n_calls = n;
        b->calls = n ? (Vgpu__Wire__Call **)f->itemp : NULL;
        b->device = device;
        b->flight = flags & 1;
        b->context = context;
        env->body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
        env->calls = b;
    } else {
        Vgpu__Wire__ResultBatch *b = (Vgpu__Wire__ResultBatch *)(f->sgp + count->segs);

        *b = (Vgpu__Wire__ResultBatch)VGPU__WIRE__RESULT_BATCH__INIT;
        b->n_results = n;
        b->results = n ? (Vgpu__Wire__Result **)f->itemp : NULL;
        b->failures_only = flags & 1;
        b->device_output = (flags & 2) != 0;
        env->body_case = VGPU__WIRE__ENVELOPE__BODY_RESULTS;
        env->results = b;
    }
}

static int walk(const uint8_t *body, size_t len, const struct vgpu_wire_limits *lim,
                struct layout *count, Vgpu__Wire__Envelope *env, void *mem)
{
    struct rd r = { body, len, 0 };
    uint32_t kind, n, flags;
    int32_t device = 0;
    uint64_t context = 0;
    size_t segs = 0;
    struct fill f;
    int rc = walk_head(&r, lim, &kind, &n, &device, &flags, &context);

    if (rc)
        return rc;
    if (mem) {
        f.items = mem;
        f.isz = kind == KIND_CALLS ? sizeof(Vgpu__Wire__Call) : sizeof(Vgpu__Wire__Result);
        f.itemp = (void **)(f.items + count->items * f.isz);
        f.sg = (Vgpu__Wire__Segment *)((uint8_t *)f.itemp + count->items * sizeof(void *));
        f.sgp = (Vgpu__Wire__Segment **)((uint8_t *)f.sg + count->segs * sizeof(*f.sg));
    }
    for (uint32_t i = 0; i < n; i++)
        if ((rc = walk_item(&r, lim, kind, i, &segs, mem ? &f : NULL)))
            return rc;
    if (r.left)
        return VGPU_WIRE_E_MALFORMED;       /* trailing bytes in the envelope */
    if (!mem) {
        count->items = n;
        count->segs = segs;
        return 0;
    }
    fill_batch(&f, count, kind, n, device, flags, context, env);
    return 0;
}

int vgpu_compact_decode(const uint8_t *body, size_t len, const struct vgpu_wire_limits *lim,
                        void *scratch, size_t scratch_size, size_t *scratch_used,
                        Vgpu__Wire__Envelope **out, void **heap)
{
    struct layout l = { 0 };
    size_t isz, need;
    Vgpu__Wire__Envelope *env;
    uint8_t *mem;
    int rc = walk(body, len, lim, &l, NULL, NULL);

    *out = NULL;
    *heap = NULL;
    if (rc)
        return rc;
    isz = sizeof(Vgpu__Wire__Call) > sizeof(Vgpu__Wire__Result) ? sizeof(Vgpu__Wire__Call)
                                                                 : sizeof(Vgpu__Wire__Result);
    /* items, their pointers, segments, theirs, the batch, the envelope (all bounded by the limits) */
    need = sizeof(Vgpu__Wire__Envelope) + l.items * (isz + sizeof(void *)) +
           l.segs * (sizeof(Vgpu__Wire__Segment) + sizeof(void *)) +
           (sizeof(Vgpu__Wire__CallBatch) > sizeof(Vgpu__Wire__ResultBatch) ?
                sizeof(Vgpu__Wire__CallBatch) : sizeof(Vgpu__Wire__ResultBatch));
    need = (need + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (scratch && *scratch_used <= scratch_size && need <= scratch_size - *scratch_used) {
        mem = (uint8_t *)scratch + *scratch_used;
        *scratch_used += need;
    } else {
        mem = malloc(need);
        if (!mem)
            return VGPU_WIRE_E_NOMEM;
        *heap = mem;
    }
    env = (Vgpu__Wire__Envelope *)mem;
    *env = (Vgpu__Wire__Envelope)VGPU__WIRE__ENVELOPE__INIT;
    rc = walk(body, len, lim, &l, env, mem + sizeof(*env));
    if (rc) {
        free(*heap);
        *heap = NULL;
        return rc;
    }
    *out = env;
    return 0;
}
