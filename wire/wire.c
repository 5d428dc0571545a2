// SPDX-License-Identifier: Apache-2.0
/*
 * Frame codec: header (de)serialization, strict full-frame decode with
 * limits, head-only encode for zero-copy payloads (the handshake is hello.c).
 *
 * Everything that comes off the wire is untrusted: lengths are compared
 * against the bytes actually present before anything is read, sums are done
 * in 64 bits from 32-bit fields (so they cannot wrap), and segment bounds use
 * subtraction on already-checked values. The envelope is unpacked through a
 * counting allocator (budget.c), so a small hostile envelope cannot expand
 * into an unbounded number of heap objects before the per-batch limits are
 * checked.
 */
#include "vgpu/wire.h"
#include "budget.h"
#include "compact.h"
#include "le.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(VGPU_WIRE_E_NOMEM == -ENOMEM, "VGPU_WIRE_E_NOMEM must be -ENOMEM");

const char *vgpu_wire_strerror(int err)
{
    switch (err) {
    case VGPU_WIRE_OK:
        return "success";
    case VGPU_WIRE_E_NOMEM:
        return "out of memory";
    case VGPU_WIRE_E_TRUNCATED:
        return "frame truncated: fewer bytes than the header announces";
    case VGPU_WIRE_E_TRAILING:
        return "trailing bytes after the end of the frame";
    case VGPU_WIRE_E_BAD_MAGIC:
        return "bad magic: not a vgpu frame";
    case VGPU_WIRE_E_BAD_VERSION:
        return "unsupported protocol version";
    case VGPU_WIRE_E_BAD_FLAGS:
        return "reserved header flag bits or reserved field not zero";
    case VGPU_WIRE_E_ENV_TOO_LARGE:
        return "envelope larger than the limit";
    case VGPU_WIRE_E_PAYLOAD_TOO_LARGE:
        return "payload larger than the limit";
    case VGPU_WIRE_E_MALFORMED:
        return "malformed envelope";
    case VGPU_WIRE_E_UNKNOWN_CALL:
        return "unknown call id";
    case VGPU_WIRE_E_BAD_SEGMENT:
        return "segment outside the payload area";
    case VGPU_WIRE_E_TOO_MANY_CALLS:
        return "too many calls in one frame";
    case VGPU_WIRE_E_TOO_MANY_SEGMENTS:
        return "too many segments in one call";
    case VGPU_WIRE_E_ENV_BUDGET:
        return "envelope decodes to more objects than the limits allow";
    case VGPU_WIRE_E_CALL_TABLE:
        return "call table hash mismatch";
    case VGPU_WIRE_E_INVAL:
        return "invalid argument";
    case VGPU_WIRE_E_REFUSED:
        return "session refused by the server";
    default:
        return "unknown vgpu wire error";
    }
}

static const struct vgpu_wire_limits default_limits = VGPU_WIRE_LIMITS_DEFAULT;

static const struct vgpu_wire_limits *limits_or_default(const struct vgpu_wire_limits *lim)
{
    return lim ? lim : &default_limits;
}

/* ---- header ---------------------------------------------------------- */

/* Wire offsets of the header fields; docs/protocol.md has the same table. */
enum {
    HDR_OFF_MAGIC = 0,
    HDR_OFF_VERSION = VGPU_FRAME_VERSION_OFFSET,
    HDR_OFF_FLAGS = 6,
    HDR_OFF_ENV_LEN = 8,
    HDR_OFF_PAYLOAD_LEN = 12,
    HDR_OFF_SEQ = 16,
    HDR_OFF_RESERVED = 24,
};
_Static_assert(HDR_OFF_RESERVED + 8 == VGPU_FRAME_HEADER_SIZE, "header is 32 bytes");

void vgpu_frame_header_encode(const struct vgpu_frame_header *hdr,
                              uint8_t out[VGPU_FRAME_HEADER_SIZE])
{
    put_le32(out + HDR_OFF_MAGIC, hdr->magic);
    put_le16(out + HDR_OFF_VERSION, hdr->version);
    put_le16(out + HDR_OFF_FLAGS, hdr->flags);
    put_le32(out + HDR_OFF_ENV_LEN, hdr->env_len);
    put_le32(out + HDR_OFF_PAYLOAD_LEN, hdr->payload_len);
    put_le64(out + HDR_OFF_SEQ, hdr->seq);
    put_le64(out + HDR_OFF_RESERVED, hdr->reserved);
}

int vgpu_frame_header_decode(const uint8_t *buf, size_t len,
                             const struct vgpu_wire_limits *lim,
                             struct vgpu_frame_header *out)
{
    struct vgpu_frame_header h;

    if (!out || (!buf && len))
        return VGPU_WIRE_E_INVAL;
    lim = limits_or_default(lim);
    if (len < VGPU_FRAME_HEADER_SIZE) {
        memset(out, 0, sizeof(*out));
        return VGPU_WIRE_E_TRUNCATED;
    }

    h.magic = get_le32(buf + HDR_OFF_MAGIC);
    h.version = get_le16(buf + HDR_OFF_VERSION);
    h.flags = get_le16(buf + HDR_OFF_FLAGS);
    h.env_len = get_le32(buf + HDR_OFF_ENV_LEN);
    h.payload_len = get_le32(buf + HDR_OFF_PAYLOAD_LEN);
    h.seq = get_le64(buf + HDR_OFF_SEQ);
    h.reserved = get_le64(buf + HDR_OFF_RESERVED);
    /* Filled even on failure: the caller may want the peer's version. */
    *out = h;

    if (h.magic != VGPU_FRAME_MAGIC)
        return VGPU_WIRE_E_BAD_MAGIC;
    if (h.version != VGPU_PROTOCOL_VERSION)
        return VGPU_WIRE_E_BAD_VERSION;
    if ((h.flags & ~VGPU_FRAME_F_KNOWN) != 0 || h.reserved != 0)
        return VGPU_WIRE_E_BAD_FLAGS;
    if (h.env_len > lim->max_env)
        return VGPU_WIRE_E_ENV_TOO_LARGE;
    if (h.payload_len > lim->max_payload)
        return VGPU_WIRE_E_PAYLOAD_TOO_LARGE;
    return 0;
}

/* ---- envelope checks -------------------------------------------------- */

/*
 * protobuf-c keeps unknown fields (proto3 rules) but, reading a tag written
 * in more bytes than needed, lets field number 0 through, and keeps tags
 * above the 29-bit maximum that it cannot write back. Both are invalid
 * protobuf; refusing them keeps decode(encode(decode(x))) == decode(x), the
 * property the fuzzer checks (found by frame_fuzz, see wire_test's
 * test_fuzz_unknown_field_zero).
 */
#define PB_MAX_FIELD_NUMBER 0x1FFFFFFFu

static int check_unknown(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        uint32_t tag = m->unknown_fields[i].tag;
        if (tag == 0 || tag > PB_MAX_FIELD_NUMBER)
            return VGPU_WIRE_E_MALFORMED;
    }
    return 0;
}

static int check_segments(Vgpu__Wire__Segment *const *segs, size_t n,
                          uint64_t payload_len, const struct vgpu_wire_limits *lim)
{
    if (n > lim->max_segments)
        return VGPU_WIRE_E_TOO_MANY_SEGMENTS;
    if (n && !segs)
        return VGPU_WIRE_E_MALFORMED;
    for (size_t i = 0; i < n; i++) {
        const Vgpu__Wire__Segment *s = segs[i];
        if (!s || check_unknown(&s->base))
            return VGPU_WIRE_E_MALFORMED;
        /* offset <= payload_len first, so the subtraction cannot wrap. */
        if (s->offset > payload_len || s->length > payload_len - s->offset)
            return VGPU_WIRE_E_BAD_SEGMENT;
    }
    return 0;
}

static int check_call_id(uint32_t id, vgpu_wire_call_known_fn known, void *opaque)
{
    if (known && !known(opaque, id))
        return VGPU_WIRE_E_UNKNOWN_CALL;
    return 0;
}

static int check_bytes(const ProtobufCBinaryData *b)
{
    return (b->len && !b->data) ? VGPU_WIRE_E_MALFORMED : 0;
}

/* A control message: exactly one operation this version knows, no invalid field numbers. */
static int check_control(const Vgpu__Wire__Control *c)
{
    const ProtobufCMessage *op;

    if (!c || check_unknown(&c->base))
        return VGPU_WIRE_E_MALFORMED;
    switch (c->op_case) {
    case VGPU__WIRE__CONTROL__OP_ATTACH_QUEUE_PAIR:
        op = &c->attach_queue_pair->base;
        break;
    case VGPU__WIRE__CONTROL__OP_REGISTER_MEMFD_REGION:
        op = &c->register_memfd_region->base;
        break;
    case VGPU__WIRE__CONTROL__OP_REGISTER_BAR_REGION:
        op = &c->register_bar_region->base;
        break;
    case VGPU__WIRE__CONTROL__OP_UNREGISTER_REGION:
        op = &c->unregister_region->base;
        break;
    case VGPU__WIRE__CONTROL__OP_FETCH_ERROR_TABLE:
        op = &c->fetch_error_table->base;
        break;
    case VGPU__WIRE__CONTROL__OP_CLOSE:
        op = &c->close->base;
        break;
    case VGPU__WIRE__CONTROL__OP_FETCH_DEVICE_OUTPUT:
        op = &c->fetch_device_output->base;
        break;
    default:
        return VGPU_WIRE_E_MALFORMED;
    }
    return op && !check_unknown(op) ? 0 : VGPU_WIRE_E_MALFORMED;
}

static int check_control_reply(const Vgpu__Wire__ControlReply *r)
{
    if (!r || check_unknown(&r->base) ||
        (r->error_table && check_unknown(&r->error_table->base)))
        return VGPU_WIRE_E_MALFORMED;
    return 0;
}

int vgpu_envelope_check(const Vgpu__Wire__Envelope *env, uint64_t payload_len,
                        const struct vgpu_wire_limits *lim,
                        vgpu_wire_call_known_fn call_known, void *opaque)
{
    int rc;

    if (!env)
        return VGPU_WIRE_E_INVAL;
    lim = limits_or_default(lim);
    if (check_unknown(&env->base))
        return VGPU_WIRE_E_MALFORMED;

    switch (env->body_case) {
    case VGPU__WIRE__ENVELOPE__BODY_HELLO:
        return (env->hello && !check_unknown(&env->hello->base)) ? 0 : VGPU_WIRE_E_MALFORMED;
    case VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY:
        return (env->hello_reply && !check_unknown(&env->hello_reply->base))
                   ? 0 : VGPU_WIRE_E_MALFORMED;
    case VGPU__WIRE__ENVELOPE__BODY_CALLS: {
        const Vgpu__Wire__CallBatch *b = env->calls;
        if (!b || (b->n_calls && !b->calls) || check_unknown(&b->base))
            return VGPU_WIRE_E_MALFORMED;
        if (b->n_calls > lim->max_calls)
            return VGPU_WIRE_E_TOO_MANY_CALLS;
        for (size_t i = 0; i < b->n_calls; i++) {
            const Vgpu__Wire__Call *c = b->calls[i];
            if (!c || check_unknown(&c->base))
                return VGPU_WIRE_E_MALFORMED;
            if ((rc = check_call_id(c->call_id, call_known, opaque)) ||
                (rc = check_bytes(&c->args)) ||
                (rc = check_segments(c->segments, c->n_segments, payload_len, lim)))
                return rc;
        }
        return 0;
    }
    case VGPU__WIRE__ENVELOPE__BODY_RESULTS: {
        const Vgpu__Wire__ResultBatch *b = env->results;
        if (!b || (b->n_results && !b->results) || check_unknown(&b->base))
            return VGPU_WIRE_E_MALFORMED;
        if (b->n_results > lim->max_calls)
            return VGPU_WIRE_E_TOO_MANY_CALLS;
        for (size_t i = 0; i < b->n_results; i++) {
            const Vgpu__Wire__Result *r = b->results[i];
            if (!r || check_unknown(&r->base))
                return VGPU_WIRE_E_MALFORMED;
            if ((rc = check_call_id(r->call_id, call_known, opaque)) ||
                (rc = check_bytes(&r->ret)) ||
                (rc = check_segments(r->segments, r->n_segments, payload_len, lim)))
                return rc;
        }
        return 0;
    }
    case VGPU__WIRE__ENVELOPE__BODY_CONTROL:
        return check_control(env->control);
    case VGPU__WIRE__ENVELOPE__BODY_CONTROL_REPLY:
        return check_control_reply(env->control_reply);
    default:
        /* NOT_SET (empty envelope) or a body this version does not know. */
        return VGPU_WIRE_E_MALFORMED;
    }
}

/* ---- full-frame decode ------------------------------------------------ */

int vgpu_frame_decode(const uint8_t *buf, size_t len,
                      const struct vgpu_wire_limits *lim,
                      vgpu_wire_call_known_fn call_known, void *opaque,
                      struct vgpu_frame *out)
{
    return vgpu_frame_decode_scratch(buf, len, lim, call_known, opaque, NULL, 0, out);
}

int vgpu_frame_decode_scratch(const uint8_t *buf, size_t len,
                              const struct vgpu_wire_limits *lim,
                              vgpu_wire_call_known_fn call_known, void *opaque,
                              void *scratch, size_t scratch_size, struct vgpu_frame *out)
{
    struct vgpu_frame_header h;
    Vgpu__Wire__Envelope *env;
    uint64_t total;
    int rc;

    if (!out)
        return VGPU_WIRE_E_INVAL;
    memset(out, 0, sizeof(*out));
    out->scratch = scratch;
    out->scratch_size = scratch ? scratch_size : 0;
    lim = limits_or_default(lim);

    rc = vgpu_frame_header_decode(buf, len, lim, &h);
    if (rc)
        return rc;

    /* Both lengths are 32-bit, so the sum fits in 64 bits. */
    total = (uint64_t)VGPU_FRAME_HEADER_SIZE + h.env_len + h.payload_len;
    if ((uint64_t)len < total)
        return VGPU_WIRE_E_TRUNCATED;
    if ((uint64_t)len > total)
        return VGPU_WIRE_E_TRAILING;

    if (h.flags & VGPU_FRAME_F_COMPACT) {
        rc = vgpu_compact_decode(buf + VGPU_FRAME_HEADER_SIZE, h.env_len, lim, out->scratch,
                                 out->scratch_size, &out->scratch_used, &env, &out->compact_heap);
        if (rc)
            return rc;
        rc = vgpu_envelope_check(env, h.payload_len, lim, call_known, opaque);
        if (rc) {
            free(out->compact_heap);
            out->compact_heap = NULL;
            return rc;
        }
        goto decoded;
    }
    rc = vgpu_wire_budget_unpack(buf + VGPU_FRAME_HEADER_SIZE, h.env_len, lim, out, &env);
    if (rc)
        return rc;
    rc = vgpu_envelope_check(env, h.payload_len, lim, call_known, opaque);
    if (rc) {
        vgpu_wire_budget_release(out, env);
        return rc;
    }

decoded:
    out->hdr = h;
    out->env = env;
    out->payload_len = h.payload_len;
    out->payload = h.payload_len ? buf + VGPU_FRAME_HEADER_SIZE + h.env_len : NULL;
    return 0;
}

void vgpu_frame_release(struct vgpu_frame *f)
{
    if (!f)
        return;
    if (f->env && (f->hdr.flags & VGPU_FRAME_F_COMPACT))
        free(f->compact_heap);          /* the rest lives in the frame's buffer and scratch */
    else if (f->env)
        vgpu_wire_budget_release(f, f->env);
    f->compact_heap = NULL;
    f->env = NULL;
    f->payload = NULL;
    f->payload_len = 0;
    f->scratch_used = 0;
}

const uint8_t *vgpu_frame_segment(const struct vgpu_frame *f,
                                  const Vgpu__Wire__Segment *seg)
{
    if (!f || !seg || !f->payload || seg->length == 0)
        return NULL;
    return f->payload + seg->offset;
}

/* ---- encode ----------------------------------------------------------- */

int vgpu_frame_head_size(const Vgpu__Wire__Envelope *env, size_t *out)
{
    return vgpu_frame_head_size_flags(env, 0, out);
}

int vgpu_frame_head_size_flags(const Vgpu__Wire__Envelope *env, uint16_t flags, size_t *out)
{
    size_t n;

    if (!env || !out)
        return VGPU_WIRE_E_INVAL;
    if (flags & VGPU_FRAME_F_COMPACT) {
        if (vgpu_compact_size(env, &n))
            return VGPU_WIRE_E_INVAL;
        *out = VGPU_FRAME_HEADER_SIZE + n;
        return 0;
    }
    *out = VGPU_FRAME_HEADER_SIZE + vgpu__wire__envelope__get_packed_size(env);
    return 0;
}

int vgpu_frame_head_write(const struct vgpu_frame_header *tmpl,
                          const Vgpu__Wire__Envelope *env, uint64_t payload_len,
                          const struct vgpu_wire_limits *lim,
                          uint8_t *buf, size_t buflen, size_t *written)
{
    struct vgpu_frame_header h;
    size_t env_len;
    int rc;

    if (written)
        *written = 0;
    if (!tmpl || !env || !buf)
        return VGPU_WIRE_E_INVAL;
    lim = limits_or_default(lim);
    if (tmpl->flags & ~VGPU_FRAME_F_KNOWN)
        return VGPU_WIRE_E_BAD_FLAGS;
    if (payload_len > lim->max_payload)
        return VGPU_WIRE_E_PAYLOAD_TOO_LARGE;
    rc = vgpu_envelope_check(env, payload_len, lim, NULL, NULL);
    if (rc)
        return rc;

    if (tmpl->flags & VGPU_FRAME_F_COMPACT) {
        if (vgpu_compact_size(env, &env_len))
            return VGPU_WIRE_E_INVAL;
    } else {
        env_len = vgpu__wire__envelope__get_packed_size(env);
    }
    if (env_len > lim->max_env)
        return VGPU_WIRE_E_ENV_TOO_LARGE;
    if (buflen < VGPU_FRAME_HEADER_SIZE || buflen - VGPU_FRAME_HEADER_SIZE < env_len)
        return VGPU_WIRE_E_INVAL;

    h = (struct vgpu_frame_header){
        .magic = VGPU_FRAME_MAGIC,
        .version = VGPU_PROTOCOL_VERSION,
        .flags = tmpl->flags,
        .env_len = (uint32_t)env_len,        /* <= max_env, a uint32_t */
        .payload_len = (uint32_t)payload_len, /* <= max_payload, likewise */
        .seq = tmpl->seq,
        .reserved = 0,
    };
    vgpu_frame_header_encode(&h, buf);
    if (tmpl->flags & VGPU_FRAME_F_COMPACT)
        vgpu_compact_write(env, buf + VGPU_FRAME_HEADER_SIZE);
    else if (vgpu__wire__envelope__pack(env, buf + VGPU_FRAME_HEADER_SIZE) != env_len)
        return VGPU_WIRE_E_MALFORMED; /* packed size changed under us */
    if (written)
        *written = VGPU_FRAME_HEADER_SIZE + env_len;
    return 0;
}

int vgpu_frame_encode(const struct vgpu_frame_header *tmpl,
                      const Vgpu__Wire__Envelope *env,
                      const struct iovec *payload, int npayload,
                      const struct vgpu_wire_limits *lim,
                      uint8_t **out, size_t *out_len)
{
    uint64_t payload_len = 0;
    size_t head_len, written, off;
    uint8_t *buf;
    int rc;

    if (!out || !out_len)
        return VGPU_WIRE_E_INVAL;
    *out = NULL;
    *out_len = 0;
    if (!tmpl || !env || npayload < 0 || (npayload > 0 && !payload))
        return VGPU_WIRE_E_INVAL;
    lim = limits_or_default(lim);

    for (int i = 0; i < npayload; i++) {
        if (payload[i].iov_len && !payload[i].iov_base)
            return VGPU_WIRE_E_INVAL;
        /* Checked per element, so the running sum stays <= 2 * 2^32. */
        if (payload[i].iov_len > lim->max_payload)
            return VGPU_WIRE_E_PAYLOAD_TOO_LARGE;
        payload_len += payload[i].iov_len;
        if (payload_len > lim->max_payload)
            return VGPU_WIRE_E_PAYLOAD_TOO_LARGE;
    }

    rc = vgpu_frame_head_size_flags(env, tmpl ? tmpl->flags : 0, &head_len);
    if (rc)
        return rc;
    if (head_len - VGPU_FRAME_HEADER_SIZE > lim->max_env)
        return VGPU_WIRE_E_ENV_TOO_LARGE;

    /* head_len <= 32 + 4 GiB and payload_len <= 4 GiB: no wrap on 64-bit. */
    buf = malloc(head_len + (size_t)payload_len);
    if (!buf)
        return VGPU_WIRE_E_NOMEM;
    rc = vgpu_frame_head_write(tmpl, env, payload_len, lim, buf, head_len, &written);
    if (rc) {
        free(buf);
        return rc;
    }
    off = written;
    for (int i = 0; i < npayload; i++) {
        if (payload[i].iov_len)
            memcpy(buf + off, payload[i].iov_base, payload[i].iov_len);
        off += payload[i].iov_len;
    }
    *out = buf;
    *out_len = off;
    return 0;
}
