/* SPDX-License-Identifier: Apache-2.0 */
/* LaunchArgs from its wire form; see launch_args.h. */
#include <string.h>

#include "launch_args.h"

struct rd {
    const uint8_t *p, *end;
};

/* A varint of at most 10 bytes; -1 when it runs past the end or is longer. */
static int varint(struct rd *r, uint64_t *v)
{
    uint64_t x = 0;

    for (int i = 0; i < 10; i++) {
        uint8_t b;

        if (r->p == r->end)
            return -1;
        b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Where the value of a field of this wire type ends (groups are refused, as protobuf-c does). */
static int value_end(struct rd *r, unsigned type, const uint8_t **end)
{
    struct rd v = *r;
    uint64_t len;

    switch (type) {
    case 0:
        if (varint(&v, &len))
            return -1;
        break;
    case 1:
        if (v.end - v.p < 8)
            return -1;
        v.p += 8;
        break;
    case 2:
        if (varint(&v, &len) || len > (uint64_t)(v.end - v.p))
            return -1;
        v.p += len;
        break;
    case 5:
        if (v.end - v.p < 4)
            return -1;
        v.p += 4;
        break;
    default:
        return -1;
    }
    *end = v.p;
    return 0;
}

static int skip(struct rd *r, unsigned type)
{
    return value_end(r, type, &r->p);
}

/*
 * A tag as protobuf-c reads it: at most 5 bytes, the field number kept to
 * 32 bits; a one-byte tag of field 0 is refused (a longer one is an unknown
 * field, as protobuf-c has it).
 */
static int tag(struct rd *r, uint32_t *field, unsigned *type)
{
    uint32_t f;
    unsigned shift = 4;

    if (r->p == r->end)
        return -1;
    *type = *r->p & 7;
    f = (*r->p & 0x7f) >> 3;
    if (!(*r->p++ & 0x80)) {
        *field = f;
        return f ? 0 : -1;
    }
    for (int i = 1; i < 5 && r->p < r->end; i++, shift += 7) {
        uint8_t b = *r->p++;

        f |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *field = f;
            return 0;
        }
    }
    return -1;
}

/*
 * A bool as protobuf-c reads one: whatever the wire type, true when any
 * byte of the field's value (a length-delimited one with its length) has a
 * bit set below the top one.
 */
static int boolean(struct rd *r, unsigned type, bool *out)
{
    const uint8_t *end;

    if (value_end(r, type, &end))
        return -1;
    *out = false;
    for (; r->p < end; r->p++)
        if (*r->p & 0x7f)
            *out = true;
    return 0;
}

/* A Dim3 into d; a later occurrence replaces an earlier one whole, as protobuf-c does. */
static int dim3(const uint8_t *p, size_t n, struct vgpu_dim3 *d)
{
    struct rd r = { p, p + n };

    memset(d, 0, sizeof(*d));
    d->present = true;
    while (r.p < r.end) {
        uint32_t f;
        unsigned t;
        uint64_t v;

        if (tag(&r, &f, &t))
            return -1;
        if (f >= 1 && f <= 3) {
            if (t != 0 || varint(&r, &v))
                return -1;
            if (f == 1)
                d->x = (uint32_t)v;
            else if (f == 2)
                d->y = (uint32_t)v;
            else
                d->z = (uint32_t)v;
        } else if (skip(&r, t)) {
            return -1;
        }
    }
    return 0;
}

int vgpu_launch_args_read(const uint8_t *p, size_t n, struct vgpu_launch_args *out)
{
    /* An empty message may come as NULL: NULL + 0 is undefined in C, so no arithmetic on it. */
    struct rd r = { p, n ? p + n : p };

    memset(out, 0, sizeof(*out));
    while (r.p < r.end) {
        uint32_t f;
        unsigned t;
        uint64_t v;

        if (tag(&r, &f, &t))
            return -1;
        if (f == 6 || f == 7) {
            if (boolean(&r, t, f == 6 ? &out->ptsz : &out->cooperative))
                return -1;
        } else if (f == 2 || f == 3) {
            if (t != 2 || varint(&r, &v) || v > (uint64_t)(r.end - r.p) ||
                dim3(r.p, (size_t)v, f == 2 ? &out->grid : &out->block))
                return -1;
            r.p += v;
        } else if (f == 1 || f == 4 || f == 5) {
            if (t != 0 || varint(&r, &v))
                return -1;
            if (f == 1)
                out->host = v;
            else if (f == 4)
                out->shared_mem = v;
            else
                out->stream = v;
        } else if (skip(&r, t)) {
            return -1;
        }
    }
    return 0;
}
