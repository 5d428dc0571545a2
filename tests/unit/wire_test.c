// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the frame codec (wire/wire.c): round trips of every body
 * kind, one test per decode error class asserting its distinct code, the
 * handshake sentences, and robustness sweeps (every truncation, every header
 * bit flip, random garbage) that must never crash or read out of bounds;
 * run them under -DVGPU_SANITIZE=ON to have ASan/UBSan check the latter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vgpu/sha256.h"
#include "vgpu/wire.h"
#include "xorshift.h"

/* ---- helpers ---------------------------------------------------------- */

static const struct vgpu_frame_header req_tmpl = { .seq = 42, .flags = 0 };
static const struct vgpu_frame_header rep_tmpl = { .seq = 42, .flags = VGPU_FRAME_F_REPLY };

/* Encode through the public encoder, asserting success. */
static uint8_t *encode_ok(const struct vgpu_frame_header *tmpl,
                          const Vgpu__Wire__Envelope *env,
                          const struct iovec *iov, int niov, size_t *len)
{
    uint8_t *buf = NULL;
    int rc = vgpu_frame_encode(tmpl, env, iov, niov, NULL, &buf, len);
    assert_int_equal(rc, 0);
    assert_non_null(buf);
    return buf;
}

/*
 * Build a frame by hand, bypassing the encoder's checks, so that the decoder
 * can be fed envelopes the encoder would refuse. The header is canonical
 * except for what the caller patches afterwards.
 */
static uint8_t *raw_frame(const Vgpu__Wire__Envelope *env,
                          const uint8_t *env_bytes, size_t env_len,
                          size_t payload_len, size_t *len)
{
    struct vgpu_frame_header h = {
        .magic = VGPU_FRAME_MAGIC, .version = VGPU_PROTOCOL_VERSION, .seq = 7,
    };
    uint8_t *buf;

    if (env)
        env_len = vgpu__wire__envelope__get_packed_size(env);
    h.env_len = (uint32_t)env_len;
    h.payload_len = (uint32_t)payload_len;
    *len = VGPU_FRAME_HEADER_SIZE + env_len + payload_len;
    buf = calloc(1, *len ? *len : 1);
    assert_non_null(buf);
    vgpu_frame_header_encode(&h, buf);
    if (env)
        vgpu__wire__envelope__pack(env, buf + VGPU_FRAME_HEADER_SIZE);
    else if (env_len)
        memcpy(buf + VGPU_FRAME_HEADER_SIZE, env_bytes, env_len);
    for (size_t i = 0; i < payload_len; i++)
        buf[VGPU_FRAME_HEADER_SIZE + env_len + i] = (uint8_t)i;
    return buf;
}

/* Decode expecting failure with rc; also checks *out stays empty. */
static void expect_decode(const uint8_t *buf, size_t len,
                          const struct vgpu_wire_limits *lim,
                          vgpu_wire_call_known_fn known, int rc)
{
    struct vgpu_frame f;
    memset(&f, 0xA5, sizeof(f));
    int got = vgpu_frame_decode(buf, len, lim, known, NULL, &f);
    if (got != rc)
        fail_msg("decode: expected %d (%s), got %d (%s)", rc,
                 vgpu_wire_strerror(rc), got, vgpu_wire_strerror(got));
    if (got == 0) {
        vgpu_frame_release(&f);
    } else {
        assert_null(f.env);
        assert_null(f.payload);
        assert_int_equal(f.payload_len, 0);
    }
}

/* A small valid CallBatch frame with segments, used by the sweeps. */
struct sample {
    Vgpu__Wire__Envelope env;
    Vgpu__Wire__CallBatch batch;
    Vgpu__Wire__Call calls[2];
    Vgpu__Wire__Call *callp[2];
    Vgpu__Wire__Segment segs[2];
    Vgpu__Wire__Segment *segp[2];
    uint8_t payload[24];
};

static uint8_t *sample_frame(struct sample *s, size_t *len)
{
    static const uint8_t args[] = { 0x08, 0x01, 0x10, 0x02 };
    struct iovec iov;

    vgpu__wire__envelope__init(&s->env);
    vgpu__wire__call_batch__init(&s->batch);
    for (int i = 0; i < 2; i++) {
        vgpu__wire__call__init(&s->calls[i]);
        vgpu__wire__segment__init(&s->segs[i]);
        s->callp[i] = &s->calls[i];
        s->segp[i] = &s->segs[i];
    }
    s->calls[0].call_id = 17;
    s->calls[0].args = (ProtobufCBinaryData){ sizeof(args), (uint8_t *)args };
    s->segs[0] = (Vgpu__Wire__Segment)VGPU__WIRE__SEGMENT__INIT;
    s->segs[0].offset = 0;
    s->segs[0].length = 16;
    s->segs[1] = (Vgpu__Wire__Segment)VGPU__WIRE__SEGMENT__INIT;
    s->segs[1].offset = 16;
    s->segs[1].length = 8;
    s->calls[0].n_segments = 2;
    s->calls[0].segments = s->segp;
    s->calls[1].call_id = 300;
    s->batch.n_calls = 2;
    s->batch.calls = s->callp;
    s->env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    s->env.calls = &s->batch;
    for (size_t i = 0; i < sizeof(s->payload); i++)
        s->payload[i] = (uint8_t)(0xC0 + i);
    iov = (struct iovec){ s->payload, sizeof(s->payload) };
    return encode_ok(&req_tmpl, &s->env, &iov, 1, len);
}

static int known_below_1000(void *opaque, uint32_t id)
{
    (void)opaque;
    return id < 1000;
}

/* ---- round trips ------------------------------------------------------ */

static void test_hello_roundtrip(void **state)
{
    (void)state;
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Hello h;
    struct vgpu_frame f;
    size_t len;
    uint8_t *buf;

    vgpu_hello_init(&h, 0x0123456789ABCDEFull, "cudart", "matmul", 4242, "guest1");
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    buf = encode_ok(&req_tmpl, &env, NULL, 0, &len);

    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    assert_int_equal(f.hdr.magic, VGPU_FRAME_MAGIC);
    assert_int_equal(f.hdr.version, VGPU_PROTOCOL_VERSION);
    assert_int_equal(f.hdr.flags, 0);
    assert_int_equal(f.hdr.seq, 42);
    assert_int_equal(f.hdr.payload_len, 0);
    assert_null(f.payload);
    assert_int_equal(f.env->body_case, VGPU__WIRE__ENVELOPE__BODY_HELLO);
    assert_int_equal(f.env->hello->protocol_version, VGPU_PROTOCOL_VERSION);
    assert_true(f.env->hello->call_table_hash == 0x0123456789ABCDEFull);
    assert_string_equal(f.env->hello->api, "cudart");
    assert_string_equal(f.env->hello->client_name, "matmul");
    assert_int_equal(f.env->hello->client_pid, 4242);
    assert_string_equal(f.env->hello->client_host, "guest1");

    char why[256];
    assert_int_equal(vgpu_hello_check(f.env->hello, 0x0123456789ABCDEFull, why, sizeof(why)), 0);
    assert_string_equal(why, "");

    vgpu_frame_release(&f);
    assert_null(f.env);
    vgpu_frame_release(&f); /* twice is fine */
    free(buf);
}

static void test_hello_reply_roundtrip(void **state)
{
    (void)state;
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__HelloReply r;
    struct vgpu_frame f;
    size_t len;
    uint8_t *buf;
    char why[256];

    vgpu_hello_reply_init(&r, 0, 0xFEEDull, "vgpu 0.1.0", "");
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY;
    env.hello_reply = &r;
    buf = encode_ok(&rep_tmpl, &env, NULL, 0, &len);

    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    assert_int_equal(f.hdr.flags, VGPU_FRAME_F_REPLY);
    assert_int_equal(f.env->body_case, VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY);
    assert_true(f.env->hello_reply->ok);
    assert_int_equal(f.env->hello_reply->protocol_version, VGPU_PROTOCOL_VERSION);
    assert_true(f.env->hello_reply->call_table_hash == 0xFEEDull);
    assert_string_equal(f.env->hello_reply->server_version, "vgpu 0.1.0");
    assert_int_equal(vgpu_hello_reply_check(f.env->hello_reply, 0xFEEDull, why, sizeof(why)), 0);
    vgpu_frame_release(&f);
    free(buf);
}

static void test_call_batch_roundtrip(void **state)
{
    (void)state;
    enum { NCALLS = 5 };
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__CallBatch batch = VGPU__WIRE__CALL_BATCH__INIT;
    Vgpu__Wire__Call calls[NCALLS], *callp[NCALLS];
    Vgpu__Wire__Segment segs[NCALLS][3], *segp[NCALLS][3];
    uint8_t args[NCALLS][8];
    uint8_t p0[100], p1[1], p2[4000];
    struct iovec iov[3] = { { p0, sizeof(p0) }, { p1, sizeof(p1) }, { p2, sizeof(p2) } };
    const uint64_t total = sizeof(p0) + sizeof(p1) + sizeof(p2);
    struct vgpu_frame f;
    size_t len;
    uint8_t *buf;

    memset(p0, 0x11, sizeof(p0));
    memset(p1, 0x22, sizeof(p1));
    memset(p2, 0x33, sizeof(p2));
    for (int i = 0; i < NCALLS; i++) {
        vgpu__wire__call__init(&calls[i]);
        callp[i] = &calls[i];
        calls[i].call_id = (uint32_t)(10 * i + 1);
        memset(args[i], i, sizeof(args[i]));
        calls[i].args = (ProtobufCBinaryData){ (size_t)i, args[i] };
        for (int j = 0; j < 3; j++) {
            vgpu__wire__segment__init(&segs[i][j]);
            segp[i][j] = &segs[i][j];
            segs[i][j].offset = (uint64_t)(i * 7 + j) % total;
            segs[i][j].length = (uint64_t)j * 50 % (total - segs[i][j].offset + 1);
        }
        calls[i].n_segments = (size_t)(i % 4); /* 0..3 segments */
        calls[i].segments = calls[i].n_segments ? segp[i] : NULL;
    }
    /* One segment that spans the payload area exactly. */
    segs[3][0].offset = 0;
    segs[3][0].length = total;
    batch.n_calls = NCALLS;
    batch.calls = callp;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env.calls = &batch;

    buf = encode_ok(&req_tmpl, &env, iov, 3, &len);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, known_below_1000, NULL, &f), 0);
    assert_int_equal(f.payload_len, total);
    assert_ptr_equal(f.payload, buf + len - total);
    assert_int_equal(f.env->calls->n_calls, NCALLS);
    for (int i = 0; i < NCALLS; i++) {
        const Vgpu__Wire__Call *c = f.env->calls->calls[i];
        assert_int_equal(c->call_id, 10 * i + 1);
        assert_int_equal(c->args.len, i);
        if (i)
            assert_memory_equal(c->args.data, args[i], (size_t)i);
        assert_int_equal(c->n_segments, i % 4);
        for (size_t j = 0; j < c->n_segments; j++) {
            assert_true(c->segments[j]->offset == segs[i][j].offset);
            assert_true(c->segments[j]->length == segs[i][j].length);
            const uint8_t *p = vgpu_frame_segment(&f, c->segments[j]);
            if (c->segments[j]->length == 0) {
                assert_null(p);
                continue;
            }
            /* The segment's bytes are the concatenated iovecs at offset. */
            for (uint64_t k = 0; k < c->segments[j]->length; k++) {
                uint64_t o = c->segments[j]->offset + k;
                uint8_t want = o < sizeof(p0) ? 0x11 : o < sizeof(p0) + 1 ? 0x22 : 0x33;
                assert_int_equal(p[k], want);
            }
        }
    }
    vgpu_frame_release(&f);

    /* The two-step encoder produces the same head as the one-step one. */
    size_t head_len, written;
    assert_int_equal(vgpu_frame_head_size(&env, &head_len), 0);
    assert_int_equal(head_len, len - total);
    uint8_t *head = malloc(head_len);
    assert_non_null(head);
    assert_int_equal(vgpu_frame_head_write(&req_tmpl, &env, total, NULL, head,
                                           head_len, &written), 0);
    assert_int_equal(written, head_len);
    assert_memory_equal(head, buf, head_len);
    /* One byte short of room is an argument error, not an overflow. */
    assert_int_equal(vgpu_frame_head_write(&req_tmpl, &env, total, NULL, head,
                                           head_len - 1, &written),
                     VGPU_WIRE_E_INVAL);
    free(head);
    free(buf);
}

static void test_result_batch_roundtrip(void **state)
{
    (void)state;
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__ResultBatch batch = VGPU__WIRE__RESULT_BATCH__INIT;
    Vgpu__Wire__Result res[3], *resp[3];
    Vgpu__Wire__Segment seg[2], *segp[2];
    uint8_t payload[64];
    uint8_t ret[] = { 0x0a, 0x03, 'a', 'b', 'c' };
    struct iovec iov = { payload, sizeof(payload) };
    struct vgpu_frame f;
    size_t len;
    uint8_t *buf;

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)i;
    for (int i = 0; i < 3; i++) {
        vgpu__wire__result__init(&res[i]);
        resp[i] = &res[i];
        res[i].call_id = (uint32_t)(100 + i);
        res[i].status = i == 1 ? 2 /* cudaErrorMemoryAllocation */ : 0;
    }
    for (int i = 0; i < 2; i++) {
        vgpu__wire__segment__init(&seg[i]);
        segp[i] = &seg[i];
    }
    seg[0].offset = 0;
    seg[0].length = 32;
    seg[1].offset = 32;
    seg[1].length = 32;
    res[0].ret = (ProtobufCBinaryData){ sizeof(ret), ret };
    res[2].n_segments = 2;
    res[2].segments = segp;
    res[2].status = -1; /* negative statuses must survive (sint vs int32) */
    batch.n_results = 3;
    batch.results = resp;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_RESULTS;
    env.results = &batch;

    buf = encode_ok(&rep_tmpl, &env, &iov, 1, &len);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, known_below_1000, NULL, &f), 0);
    assert_int_equal(f.hdr.flags, VGPU_FRAME_F_REPLY);
    const Vgpu__Wire__ResultBatch *b = f.env->results;
    assert_int_equal(b->n_results, 3);
    assert_int_equal(b->results[0]->call_id, 100);
    assert_memory_equal(b->results[0]->ret.data, ret, sizeof(ret));
    assert_int_equal(b->results[1]->status, 2);
    assert_int_equal(b->results[2]->status, -1);
    assert_int_equal(b->results[2]->n_segments, 2);
    assert_memory_equal(vgpu_frame_segment(&f, b->results[2]->segments[1]), payload + 32, 32);
    vgpu_frame_release(&f);
    free(buf);
}

static void test_empty_payload(void **state)
{
    (void)state;
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__CallBatch batch = VGPU__WIRE__CALL_BATCH__INIT;
    Vgpu__Wire__Call call = VGPU__WIRE__CALL__INIT, *callp = &call;
    Vgpu__Wire__Segment seg = VGPU__WIRE__SEGMENT__INIT, *segp = &seg;
    struct iovec empty = { NULL, 0 };
    struct vgpu_frame f;
    size_t len;
    uint8_t *buf;

    /* An empty segment at offset 0 of an empty payload area is in bounds. */
    call.call_id = 5;
    call.n_segments = 1;
    call.segments = &segp;
    batch.n_calls = 1;
    batch.calls = &callp;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env.calls = &batch;
    buf = encode_ok(&req_tmpl, &env, &empty, 1, &len);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    assert_int_equal(f.payload_len, 0);
    assert_null(f.payload);
    assert_null(vgpu_frame_segment(&f, f.env->calls->calls[0]->segments[0]));
    vgpu_frame_release(&f);
    free(buf);

    /* An empty batch is a valid (if pointless) frame. */
    batch.n_calls = 0;
    batch.calls = NULL;
    buf = encode_ok(&req_tmpl, &env, NULL, 0, &len);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    assert_int_equal(f.env->calls->n_calls, 0);
    vgpu_frame_release(&f);
    free(buf);
}

static void test_header_layout(void **state)
{
    (void)state;
    /* Pin the byte layout: docs/protocol.md's table must match this. */
    struct vgpu_frame_header h = {
        .magic = VGPU_FRAME_MAGIC, .version = 0x0201, .flags = 0x0403,
        .env_len = 0x08070605, .payload_len = 0x0C0B0A09,
        .seq = 0x14131211100F0E0Dull, .reserved = 0x1C1B1A1918171615ull,
    };
    static const uint8_t want[32] = {
        'V', 'G', 'P', 'U', 0x01, 0x02, 0x03, 0x04,
        0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C,
        0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x13, 0x14,
        0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C,
    };
    uint8_t out[32];
    struct vgpu_frame_header back;

    vgpu_frame_header_encode(&h, out);
    assert_memory_equal(out, want, 32);
    /* Decoding reports the version error but still fills the fields. */
    assert_int_equal(vgpu_frame_header_decode(out, 32, NULL, &back), VGPU_WIRE_E_BAD_VERSION);
    assert_memory_equal(&back, &h, sizeof(h));
}

/* ---- one test per error class ----------------------------------------- */

static void test_err_truncated(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len);
    struct vgpu_frame_header h;

    expect_decode(buf, 0, NULL, NULL, VGPU_WIRE_E_TRUNCATED);
    expect_decode(NULL, 0, NULL, NULL, VGPU_WIRE_E_TRUNCATED);
    expect_decode(buf, 31, NULL, NULL, VGPU_WIRE_E_TRUNCATED);
    expect_decode(buf, 32, NULL, NULL, VGPU_WIRE_E_TRUNCATED);
    expect_decode(buf, len - 1, NULL, NULL, VGPU_WIRE_E_TRUNCATED);
    assert_int_equal(vgpu_frame_header_decode(buf, 31, NULL, &h), VGPU_WIRE_E_TRUNCATED);
    /* The header alone is enough for a stream transport. */
    assert_int_equal(vgpu_frame_header_decode(buf, 32, NULL, &h), 0);
    assert_int_equal(32 + h.env_len + h.payload_len, len);
    free(buf);
}

static void test_err_trailing(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len);
    uint8_t *big = calloc(1, len + 1);

    assert_non_null(big);
    memcpy(big, buf, len);
    expect_decode(big, len + 1, NULL, NULL, VGPU_WIRE_E_TRAILING);
    expect_decode(big, len, NULL, NULL, 0);
    free(big);
    free(buf);
}

static void test_err_bad_magic(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len);

    buf[3] = 'X';
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_BAD_MAGIC);
    /* Big-endian "VGPU" is not our magic either. */
    memcpy(buf, "UPGV", 4);
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_BAD_MAGIC);
    free(buf);
}

static void test_err_bad_version(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len);
    struct vgpu_frame_header h;
    char why[256];

    buf[4] = 3;
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_BAD_VERSION);
    assert_int_equal(vgpu_frame_header_decode(buf, len, NULL, &h), VGPU_WIRE_E_BAD_VERSION);
    assert_int_equal(h.version, 3);
    vgpu_wire_version_message(h.version, VGPU_PROTOCOL_VERSION, why, sizeof(why));
    assert_string_equal(why, "guest speaks protocol 3, server speaks 2: rebuild "
                             "the shim and server from the same vgpu release");
    buf[4] = 0;
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_BAD_VERSION);
    free(buf);
}

static void test_err_bad_flags(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len);

    buf[6] |= 0x04; /* first reserved flag bit */
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_BAD_FLAGS);
    buf[6] &= (uint8_t)~0x04;
    buf[7] = 0x80; /* last reserved flag bit */
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_BAD_FLAGS);
    buf[7] = 0;
    buf[31] = 1; /* reserved u64 */
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_BAD_FLAGS);
    buf[31] = 0;
    expect_decode(buf, len, NULL, NULL, 0);

    /* The encoder refuses reserved flags too. */
    struct vgpu_frame_header bad = { .flags = 0x8000 };
    uint8_t *out;
    size_t out_len;
    assert_int_equal(vgpu_frame_encode(&bad, &s.env, NULL, 0, NULL, &out, &out_len),
                     VGPU_WIRE_E_BAD_FLAGS);
    assert_null(out);
    free(buf);
}

static void test_err_env_too_large(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len);
    struct vgpu_frame_header h;
    struct vgpu_wire_limits lim = VGPU_WIRE_LIMITS_DEFAULT;

    /* Refused from the header alone, before the bytes would arrive. */
    assert_int_equal(vgpu_frame_header_decode(buf, 32, NULL, &h), 0);
    h.env_len = VGPU_WIRE_MAX_ENV + 1;
    vgpu_frame_header_encode(&h, buf);
    expect_decode(buf, 32, NULL, NULL, VGPU_WIRE_E_ENV_TOO_LARGE);
    h.env_len = UINT32_MAX;
    vgpu_frame_header_encode(&h, buf);
    expect_decode(buf, 32, NULL, NULL, VGPU_WIRE_E_ENV_TOO_LARGE);
    free(buf);

    /* A caller's tighter limit applies to decode and encode alike. */
    buf = sample_frame(&s, &len);
    lim.max_env = 4;
    expect_decode(buf, len, &lim, NULL, VGPU_WIRE_E_ENV_TOO_LARGE);
    uint8_t *out;
    size_t out_len;
    assert_int_equal(vgpu_frame_encode(&req_tmpl, &s.env, NULL, 0, &lim, &out, &out_len),
                     VGPU_WIRE_E_ENV_TOO_LARGE);
    free(buf);
}

static void test_err_payload_too_large(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len);
    struct vgpu_frame_header h;
    struct vgpu_wire_limits lim = VGPU_WIRE_LIMITS_DEFAULT;

    assert_int_equal(vgpu_frame_header_decode(buf, 32, NULL, &h), 0);
    h.payload_len = VGPU_WIRE_MAX_PAYLOAD + 1;
    vgpu_frame_header_encode(&h, buf);
    expect_decode(buf, 32, NULL, NULL, VGPU_WIRE_E_PAYLOAD_TOO_LARGE);
    h.payload_len = UINT32_MAX;
    vgpu_frame_header_encode(&h, buf);
    expect_decode(buf, 32, NULL, NULL, VGPU_WIRE_E_PAYLOAD_TOO_LARGE);
    free(buf);

    buf = sample_frame(&s, &len);
    lim.max_payload = sizeof(s.payload) - 1;
    expect_decode(buf, len, &lim, NULL, VGPU_WIRE_E_PAYLOAD_TOO_LARGE);
    struct iovec iov = { s.payload, sizeof(s.payload) };
    uint8_t *out;
    size_t out_len;
    assert_int_equal(vgpu_frame_encode(&req_tmpl, &s.env, &iov, 1, &lim, &out, &out_len),
                     VGPU_WIRE_E_PAYLOAD_TOO_LARGE);
    free(buf);
}

static void test_err_malformed(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf;

    /* Empty envelope: valid protobuf, but no body. */
    buf = raw_frame(NULL, NULL, 0, 0, &len);
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_MALFORMED);
    free(buf);

    /* Not protobuf at all: a varint that never ends. */
    static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    buf = raw_frame(NULL, junk, sizeof(junk), 0, &len);
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_MALFORMED);
    free(buf);

    /* Field 3 (calls) claims 100 bytes but the envelope has 2. */
    static const uint8_t short_sub[] = { 0x1a, 0x64, 0x0a, 0x00 };
    buf = raw_frame(NULL, short_sub, sizeof(short_sub), 0, &len);
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_MALFORMED);
    free(buf);

    /* Only an unknown field (a newer body we do not know): no body for us. */
    static const uint8_t unknown[] = { 0x2a, 0x00 }; /* field 5, len 0 */
    buf = raw_frame(NULL, unknown, sizeof(unknown), 0, &len);
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_MALFORMED);
    free(buf);

    /* The encoder refuses an envelope without body. */
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    uint8_t *out;
    assert_int_equal(vgpu_frame_encode(&req_tmpl, &env, NULL, 0, NULL, &out, &len),
                     VGPU_WIRE_E_MALFORMED);
}

static void test_err_unknown_call(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf;

    buf = sample_frame(&s, &len);
    expect_decode(buf, len, NULL, known_below_1000, 0);
    free(buf);

    s.calls[1].call_id = 5000;
    buf = encode_ok(&req_tmpl, &s.env, &(struct iovec){ s.payload, sizeof(s.payload) },
                    1, &len);
    expect_decode(buf, len, NULL, known_below_1000, VGPU_WIRE_E_UNKNOWN_CALL);
    expect_decode(buf, len, NULL, NULL, 0); /* no callback: accept all */
    free(buf);

    /* Results are checked the same way. */
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__ResultBatch rb = VGPU__WIRE__RESULT_BATCH__INIT;
    Vgpu__Wire__Result r = VGPU__WIRE__RESULT__INIT, *rp = &r;
    r.call_id = 1000;
    rb.n_results = 1;
    rb.results = &rp;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_RESULTS;
    env.results = &rb;
    buf = encode_ok(&rep_tmpl, &env, NULL, 0, &len);
    expect_decode(buf, len, NULL, known_below_1000, VGPU_WIRE_E_UNKNOWN_CALL);
    free(buf);
}

static void test_err_bad_segment(void **state)
{
    (void)state;
    static const struct { uint64_t off, len; } bad[] = {
        { 25, 0 },                   /* offset past the end (payload is 24) */
        { 0, 25 },                   /* length past the end */
        { 24, 1 },                   /* one byte at the end */
        { 1, UINT64_MAX },           /* offset + length wraps to 0 */
        { UINT64_MAX, 2 },           /* wraps the other way */
        { UINT64_MAX, UINT64_MAX },
    };
    struct sample s;
    size_t len;
    uint8_t *buf;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        free(sample_frame(&s, &len));
        s.segs[1].offset = bad[i].off;
        s.segs[1].length = bad[i].len;
        buf = raw_frame(&s.env, NULL, 0, sizeof(s.payload), &len);
        expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_BAD_SEGMENT);
        free(buf);
        /* and the encoder will not produce it */
        struct iovec iov = { s.payload, sizeof(s.payload) };
        uint8_t *out;
        assert_int_equal(vgpu_frame_encode(&req_tmpl, &s.env, &iov, 1, NULL, &out, &len),
                         VGPU_WIRE_E_BAD_SEGMENT);
    }
    /* The exact end is fine: an empty segment there, and one ending there. */
    free(sample_frame(&s, &len));
    s.segs[1].offset = 24;
    s.segs[1].length = 0;
    buf = raw_frame(&s.env, NULL, 0, sizeof(s.payload), &len);
    expect_decode(buf, len, NULL, NULL, 0);
    free(buf);
}

/*
 * Regression for frame_fuzz crash-aff3a447...: protobuf-c accepts field
 * number 0 when the tag is written in two bytes (0x85 0x00), and field
 * numbers above 2^29-1 that it cannot write back; a frame carrying either
 * decoded but its re-encoding did not. Both are now MALFORMED, while a
 * legitimate unknown field (a newer peer's addition) is still accepted.
 */
static void test_fuzz_unknown_field_zero(void **state)
{
    (void)state;
    /* hello_reply { <field 0, fixed32> 0x44556677 } */
    static const uint8_t field0[] = { 0x12, 0x06, 0x85, 0x00, 0x77, 0x66, 0x55, 0x44 };
    /* hello { <field 2^29, varint> 0 } */
    static const uint8_t field_big[] = { 0x0a, 0x06, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00 };
    /* hello { <field 2^29-1, varint> 0 }: the largest valid field number */
    static const uint8_t field_max[] = { 0x0a, 0x06, 0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00 };
    /* the fuzzer's original input, verbatim */
    static const uint8_t artifact[] = {
        0x56, 0x47, 0x50, 0x55, 0x02, 0x00, 0x01, 0x00, 0x1a, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x18, 0x08, 0x01,
        0x10, 0x01, 0x85, 0x00, 0x77, 0x66, 0x55, 0x44, 0x31, 0x22, 0x11, 0xea,
        0x22, 0x09, 0x76, 0x67, 0x70, 0x75, 0x20, 0x73, 0x65, 0x65,
    };
    size_t len;
    uint8_t *buf;
    struct vgpu_frame f;

    buf = raw_frame(NULL, field0, sizeof(field0), 0, &len);
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_MALFORMED);
    free(buf);
    buf = raw_frame(NULL, field_big, sizeof(field_big), 0, &len);
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_MALFORMED);
    free(buf);
    expect_decode(artifact, sizeof(artifact), NULL, NULL, VGPU_WIRE_E_MALFORMED);

    /* A valid unknown field survives decode and re-encode. */
    buf = raw_frame(NULL, field_max, sizeof(field_max), 0, &len);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    assert_int_equal(f.env->hello->base.n_unknown_fields, 1);
    uint8_t *again;
    size_t again_len;
    assert_int_equal(vgpu_frame_encode(&(struct vgpu_frame_header){ .seq = 7 }, f.env,
                                       NULL, 0, NULL, &again, &again_len), 0);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, buf, len);
    free(again);
    vgpu_frame_release(&f);
    free(buf);
}

/* A CallBatch of n empty calls, or one call with n empty segments. */
static Vgpu__Wire__Envelope *big_env(size_t ncalls, size_t nsegs)
{
    Vgpu__Wire__Envelope *env = calloc(1, sizeof(*env));
    Vgpu__Wire__CallBatch *b = calloc(1, sizeof(*b));
    Vgpu__Wire__Call *calls = calloc(ncalls, sizeof(*calls));
    Vgpu__Wire__Call **callp = calloc(ncalls, sizeof(*callp));
    Vgpu__Wire__Segment *segs = calloc(nsegs ? nsegs : 1, sizeof(*segs));
    Vgpu__Wire__Segment **segp = calloc(nsegs ? nsegs : 1, sizeof(*segp));

    assert_true(env && b && calls && callp && segs && segp);
    vgpu__wire__envelope__init(env);
    vgpu__wire__call_batch__init(b);
    for (size_t i = 0; i < ncalls; i++) {
        vgpu__wire__call__init(&calls[i]);
        callp[i] = &calls[i];
    }
    /* segp[0] always points at the segs block so free_big_env() finds it. */
    for (size_t i = 0; i < (nsegs ? nsegs : 1); i++) {
        vgpu__wire__segment__init(&segs[i]);
        segp[i] = &segs[i];
    }
    calls[0].n_segments = nsegs;
    calls[0].segments = segp;
    b->n_calls = ncalls;
    b->calls = callp;
    env->body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env->calls = b;
    return env;
}

static void free_big_env(Vgpu__Wire__Envelope *env)
{
    free(env->calls->calls[0]->segments[0]);
    free(env->calls->calls[0]->segments);
    free(env->calls->calls[0]);
    free(env->calls->calls);
    free(env->calls);
    free(env);
}

static void test_err_too_many_calls(void **state)
{
    (void)state;
    Vgpu__Wire__Envelope *env = big_env(VGPU_WIRE_MAX_CALLS + 1, 0);
    struct vgpu_wire_limits lim = VGPU_WIRE_LIMITS_DEFAULT;
    size_t len;
    uint8_t *buf = raw_frame(env, NULL, 0, 0, &len), *out;

    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_TOO_MANY_CALLS);
    assert_int_equal(vgpu_frame_encode(&req_tmpl, env, NULL, 0, NULL, &out, &len),
                     VGPU_WIRE_E_TOO_MANY_CALLS);
    lim.max_calls = VGPU_WIRE_MAX_CALLS + 1;
    assert_int_equal(vgpu_frame_encode(&req_tmpl, env, NULL, 0, &lim, &out, &len), 0);
    expect_decode(out, len, &lim, NULL, 0);
    free(out);
    free(buf);
    free_big_env(env);
}

static void test_err_too_many_segments(void **state)
{
    (void)state;
    Vgpu__Wire__Envelope *env = big_env(1, VGPU_WIRE_MAX_SEGMENTS + 1);
    size_t len;
    uint8_t *buf = raw_frame(env, NULL, 0, 0, &len), *out;

    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_TOO_MANY_SEGMENTS);
    assert_int_equal(vgpu_frame_encode(&req_tmpl, env, NULL, 0, NULL, &out, &len),
                     VGPU_WIRE_E_TOO_MANY_SEGMENTS);
    free(buf);
    free_big_env(env);

    env = big_env(1, VGPU_WIRE_MAX_SEGMENTS);
    buf = raw_frame(env, NULL, 0, 0, &len);
    expect_decode(buf, len, NULL, NULL, 0);
    free(buf);
    free_big_env(env);
}

static void test_err_env_budget(void **state)
{
    (void)state;
    /* 300000 empty calls pack into 600 KB (under max_env) but would unpack
     * into ~40 MB of heap objects: refused while unpacking. */
    Vgpu__Wire__Envelope *env = big_env(300000, 0);
    size_t len;
    uint8_t *buf = raw_frame(env, NULL, 0, 0, &len);

    assert_true(len - 32 <= VGPU_WIRE_MAX_ENV);
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_ENV_BUDGET);
    free(buf);
    free_big_env(env);

    /* Same for one call with 300000 segments. */
    env = big_env(1, 300000);
    buf = raw_frame(env, NULL, 0, 0, &len);
    expect_decode(buf, len, NULL, NULL, VGPU_WIRE_E_ENV_BUDGET);
    free(buf);
    free_big_env(env);

    /* The biggest legitimate shape fits in the budget: max calls, each
     * with max segments, each call with some args. */
    enum { NC = VGPU_WIRE_MAX_CALLS, NS = VGPU_WIRE_MAX_SEGMENTS };
    static uint8_t args[100];
    Vgpu__Wire__Envelope *e = big_env(NC, NS);
    for (size_t i = 0; i < NC; i++) {
        e->calls->calls[i]->n_segments = NS;
        e->calls->calls[i]->segments = e->calls->calls[0]->segments;
        e->calls->calls[i]->args = (ProtobufCBinaryData){ sizeof(args), args };
        e->calls->calls[i]->call_id = (uint32_t)i;
    }
    for (size_t j = 0; j < NS; j++) {
        e->calls->calls[0]->segments[j]->offset = 1;
        e->calls->calls[0]->segments[j]->length = 1;
    }
    buf = raw_frame(e, NULL, 0, 2, &len);
    expect_decode(buf, len, NULL, NULL, 0);
    free(buf);
    free_big_env(e);
}

static void test_strerror_distinct(void **state)
{
    (void)state;
    static const int codes[] = {
        VGPU_WIRE_OK, VGPU_WIRE_E_NOMEM, VGPU_WIRE_E_TRUNCATED, VGPU_WIRE_E_TRAILING,
        VGPU_WIRE_E_BAD_MAGIC, VGPU_WIRE_E_BAD_VERSION, VGPU_WIRE_E_BAD_FLAGS,
        VGPU_WIRE_E_ENV_TOO_LARGE, VGPU_WIRE_E_PAYLOAD_TOO_LARGE, VGPU_WIRE_E_MALFORMED,
        VGPU_WIRE_E_UNKNOWN_CALL, VGPU_WIRE_E_BAD_SEGMENT, VGPU_WIRE_E_TOO_MANY_CALLS,
        VGPU_WIRE_E_TOO_MANY_SEGMENTS, VGPU_WIRE_E_ENV_BUDGET, VGPU_WIRE_E_CALL_TABLE,
        VGPU_WIRE_E_INVAL, VGPU_WIRE_E_REFUSED,
    };
    const size_t n = sizeof(codes) / sizeof(codes[0]);
    const char *unknown = vgpu_wire_strerror(-999999);

    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] <= 0);
        const char *s = vgpu_wire_strerror(codes[i]);
        assert_non_null(s);
        assert_string_not_equal(s, unknown);
        for (size_t j = i + 1; j < n; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(s, vgpu_wire_strerror(codes[j]));
        }
    }
}

/* ---- handshake -------------------------------------------------------- */

/*
 * The answer to a peer of another version carries that peer's version in
 * its header (a decoder accepts only its own) and names both versions.
 */
static void test_mismatch_reply(void **state)
{
    static const uint16_t peers[] = { VGPU_PROTOCOL_VERSION - 1, VGPU_PROTOCOL_VERSION + 1, 0xffff };
    (void)state;

    for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
        struct vgpu_frame f = { 0 };
        uint8_t *buf;
        size_t len;
        char want[200];

        assert_int_equal(vgpu_hello_mismatch_encode(peers[i], 42, 0x1234, "test", &buf, &len), 0);
        assert_int_equal(buf[4] | buf[5] << 8, peers[i]);
        /* what that peer's decoder does: its own version is the one in the header */
        buf[4] = VGPU_PROTOCOL_VERSION;
        buf[5] = 0;
        assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
        assert_int_equal(f.hdr.seq, 42);
        assert_true(f.hdr.flags & VGPU_FRAME_F_REPLY);
        assert_int_equal(f.env->body_case, VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY);
        assert_false(f.env->hello_reply->ok);
        assert_int_equal(f.env->hello_reply->protocol_version, VGPU_PROTOCOL_VERSION);
        vgpu_wire_version_message(peers[i], VGPU_PROTOCOL_VERSION, want, sizeof(want));
        assert_string_equal(f.env->hello_reply->message, want);
        vgpu_frame_release(&f);
        free(buf);
    }
}

static void test_handshake_messages(void **state)
{
    (void)state;
    Vgpu__Wire__Hello h;
    Vgpu__Wire__HelloReply r;
    char why[512];

    vgpu_hello_init(&h, 0xAAAAull, "cudart", NULL, 1, NULL);
    assert_string_equal(h.client_name, "");

    h.protocol_version = 3;
    assert_int_equal(vgpu_hello_check(&h, 0xAAAAull, why, sizeof(why)), VGPU_WIRE_E_BAD_VERSION);
    assert_string_equal(why, "guest speaks protocol 3, server speaks 2: rebuild "
                             "the shim and server from the same vgpu release");

    h.protocol_version = VGPU_PROTOCOL_VERSION;
    assert_int_equal(vgpu_hello_check(&h, 0xBBBBull, why, sizeof(why)), VGPU_WIRE_E_CALL_TABLE);
    assert_string_equal(why, "guest shim and vgpu-server were generated from different "
                             "call tables (hash 000000000000aaaa vs 000000000000bbbb): "
                             "rebuild both from the same CUDA headers and registry");

    /* The server answers with the check's verdict; the guest sees the same
     * sentence computed from its own side. */
    int rc = vgpu_hello_check(&h, 0xBBBBull, why, sizeof(why));
    vgpu_hello_reply_init(&r, rc, 0xBBBBull, "vgpu 0.1.0", why);
    assert_false(r.ok);
    char guest_why[512];
    assert_int_equal(vgpu_hello_reply_check(&r, 0xAAAAull, guest_why, sizeof(guest_why)),
                     VGPU_WIRE_E_CALL_TABLE);
    assert_string_equal(guest_why, why);

    r.protocol_version = 3;
    assert_int_equal(vgpu_hello_reply_check(&r, 0xAAAAull, guest_why, sizeof(guest_why)),
                     VGPU_WIRE_E_BAD_VERSION);
    assert_non_null(strstr(guest_why, "guest speaks protocol 2, server speaks 3"));

    /* Refusal for another reason (e.g. pool full) carries the server's text. */
    vgpu_hello_reply_init(&r, VGPU_WIRE_E_REFUSED, 0xAAAAull, "vgpu 0.1.0", "pool A is full");
    assert_int_equal(vgpu_hello_reply_check(&r, 0xAAAAull, guest_why, sizeof(guest_why)),
                     VGPU_WIRE_E_REFUSED);
    assert_string_equal(guest_why, "vgpu-server refused the session: pool A is full");

    /* A tiny buffer is truncated, still terminated. */
    char tiny[8];
    assert_int_equal(vgpu_hello_check(&h, 0xBBBBull, tiny, sizeof(tiny)), VGPU_WIRE_E_CALL_TABLE);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_int_equal(vgpu_hello_check(&h, 0xAAAAull, NULL, 0), 0);
}

/* ---- robustness sweeps ------------------------------------------------ */

static void test_every_truncation(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len);

    /* Copy each prefix into an exact-size heap block so that ASan catches
     * any read past its end. */
    for (size_t n = 0; n < len; n++) {
        uint8_t *p = malloc(n ? n : 1);
        assert_non_null(p);
        memcpy(p, buf, n);
        expect_decode(p, n, NULL, NULL, VGPU_WIRE_E_TRUNCATED);
        free(p);
    }
    expect_decode(buf, len, NULL, NULL, 0);
    free(buf);
}

static void test_header_bit_flips(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len);

    for (unsigned bit = 0; bit < 32 * 8; bit++) {
        unsigned byte = bit / 8;
        struct vgpu_frame f;
        buf[byte] ^= (uint8_t)(1u << (bit % 8));
        int rc = vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f);
        if (byte < 4) {
            assert_int_equal(rc, VGPU_WIRE_E_BAD_MAGIC);
        } else if (byte < 6) {
            assert_int_equal(rc, VGPU_WIRE_E_BAD_VERSION);
        } else if (byte < 8) {
            /* bit 0 of flags is REPLY: still a valid frame; bit 1 says the
             * envelope is compact, which a protobuf one is not */
            if (bit == 48)
                assert_int_equal(rc, 0);
            else if (bit == 49)
                assert_true(rc != 0 && rc != VGPU_WIRE_E_BAD_FLAGS);
            else
                assert_int_equal(rc, VGPU_WIRE_E_BAD_FLAGS);
        } else if (byte < 12) {
            assert_true(rc == VGPU_WIRE_E_TRUNCATED || rc == VGPU_WIRE_E_TRAILING ||
                        rc == VGPU_WIRE_E_ENV_TOO_LARGE);
        } else if (byte < 16) {
            assert_true(rc == VGPU_WIRE_E_TRUNCATED || rc == VGPU_WIRE_E_TRAILING ||
                        rc == VGPU_WIRE_E_PAYLOAD_TOO_LARGE);
        } else if (byte < 24) {
            assert_int_equal(rc, 0); /* seq is opaque */
        } else {
            assert_int_equal(rc, VGPU_WIRE_E_BAD_FLAGS);
        }
        if (rc == 0)
            vgpu_frame_release(&f);
        buf[byte] ^= (uint8_t)(1u << (bit % 8));
    }

    /* Flips in the envelope and payload must never crash or leak; payload
     * bytes are opaque, so those frames still decode. */
    for (size_t bit = 32 * 8; bit < len * 8; bit++) {
        struct vgpu_frame f;
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f);
        if (bit / 8 >= len - sizeof(s.payload))
            assert_int_equal(rc, 0);
        if (rc == 0)
            vgpu_frame_release(&f);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    free(buf);
}

static void test_random_garbage(void **state)
{
    (void)state;
    /* Pure garbage of every length up to 1 KiB, several times each. */
    for (size_t n = 0; n <= 1024; n++) {
        for (int rep = 0; rep < 4; rep++) {
            uint8_t *p = malloc(n ? n : 1);
            struct vgpu_frame f;
            assert_non_null(p);
            for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)xorshift();
            int rc = vgpu_frame_decode(p, n, NULL, NULL, NULL, &f);
            assert_true(rc <= 0);
            if (rc == 0)
                vgpu_frame_release(&f);
            free(p);
        }
    }

    /* Garbage behind a valid, self-consistent header, so that it reaches
     * the protobuf parser and the checks after it. */
    for (int iter = 0; iter < 20000; iter++) {
        size_t env_len = xorshift() % 300, payload_len = xorshift() % 64;
        size_t n = 32 + env_len + payload_len;
        uint8_t *p = malloc(n);
        struct vgpu_frame f;
        struct vgpu_frame_header h = {
            .magic = VGPU_FRAME_MAGIC, .version = VGPU_PROTOCOL_VERSION,
            .env_len = (uint32_t)env_len, .payload_len = (uint32_t)payload_len,
        };
        assert_non_null(p);
        vgpu_frame_header_encode(&h, p);
        for (size_t i = 32; i < n; i++) {
            /* Bias toward small field tags and lengths, which parse further. */
            uint64_t r = xorshift();
            p[i] = (r & 3) ? (uint8_t)(r >> 8) % 0x30 : (uint8_t)(r >> 8);
        }
        int rc = vgpu_frame_decode(p, n, NULL, known_below_1000, NULL, &f);
        assert_true(rc <= 0);
        if (rc == 0)
            vgpu_frame_release(&f);
        free(p);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct sample s;
    size_t len;
    uint8_t *buf = sample_frame(&s, &len), *out = (uint8_t *)1;
    struct iovec iov = { NULL, 5 };

    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, NULL), VGPU_WIRE_E_INVAL);
    struct vgpu_frame f;
    assert_int_equal(vgpu_frame_decode(NULL, 64, NULL, NULL, NULL, &f), VGPU_WIRE_E_INVAL);
    assert_int_equal(vgpu_frame_header_decode(buf, len, NULL, NULL), VGPU_WIRE_E_INVAL);
    assert_int_equal(vgpu_frame_encode(&req_tmpl, &s.env, &iov, 1, NULL, &out, &len),
                     VGPU_WIRE_E_INVAL);
    assert_null(out);
    assert_int_equal(vgpu_frame_encode(&req_tmpl, &s.env, NULL, -1, NULL, &out, &len),
                     VGPU_WIRE_E_INVAL);
    assert_int_equal(vgpu_frame_encode(NULL, &s.env, NULL, 0, NULL, &out, &len),
                     VGPU_WIRE_E_INVAL);
    assert_int_equal(vgpu_envelope_check(NULL, 0, NULL, NULL, NULL), VGPU_WIRE_E_INVAL);
    vgpu_frame_release(NULL);
    free(buf);
}

/* SHA-256 (nettle's, behind vgpu_sha256): FIPS 180-4's examples. */
static void test_sha256(void **state)
{
    static const uint8_t abc[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
    };
    static const uint8_t empty[32] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
        0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
    };
    uint8_t out[VGPU_SHA256_LEN];

    (void)state;
    vgpu_sha256("abc", 3, out);
    assert_memory_equal(out, abc, sizeof(out));
    vgpu_sha256("", 0, out);
    assert_memory_equal(out, empty, sizeof(out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_roundtrip),
        cmocka_unit_test(test_hello_reply_roundtrip),
        cmocka_unit_test(test_call_batch_roundtrip),
        cmocka_unit_test(test_result_batch_roundtrip),
        cmocka_unit_test(test_empty_payload),
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_err_truncated),
        cmocka_unit_test(test_err_trailing),
        cmocka_unit_test(test_err_bad_magic),
        cmocka_unit_test(test_err_bad_version),
        cmocka_unit_test(test_mismatch_reply),
        cmocka_unit_test(test_err_bad_flags),
        cmocka_unit_test(test_err_env_too_large),
        cmocka_unit_test(test_err_payload_too_large),
        cmocka_unit_test(test_err_malformed),
        cmocka_unit_test(test_err_unknown_call),
        cmocka_unit_test(test_err_bad_segment),
        cmocka_unit_test(test_err_too_many_calls),
        cmocka_unit_test(test_err_too_many_segments),
        cmocka_unit_test(test_err_env_budget),
        cmocka_unit_test(test_fuzz_unknown_field_zero),
        cmocka_unit_test(test_strerror_distinct),
        cmocka_unit_test(test_handshake_messages),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_header_bit_flips),
        cmocka_unit_test(test_random_garbage),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_sha256),
    };
    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
