/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The compact envelope (wire/compact.c): call and result batches round-trip
 * to the same structures as the protobuf envelope, with and without lent
 * scratch; the limits hold; and a hostile body (every truncation, every bit
 * flipped, random bytes) is refused or decoded, never read out of bounds
 * (run under -DVGPU_SANITIZE=ON for ASan to check that).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vgpu/wire.h"

static const struct vgpu_frame_header req = { .flags = VGPU_FRAME_F_COMPACT, .seq = 7 };
static const struct vgpu_frame_header rep = { .flags = VGPU_FRAME_F_COMPACT | VGPU_FRAME_F_REPLY,
                                              .seq = 7 };

enum { NCALLS = 5 };

struct calls {
    Vgpu__Wire__Envelope env;
    Vgpu__Wire__CallBatch batch;
    Vgpu__Wire__Call c[NCALLS], *cp[NCALLS];
    Vgpu__Wire__Segment s[NCALLS][3], *sp[NCALLS][3];
    uint8_t args[NCALLS][13];
    uint8_t payload[300];
    struct iovec iov;
};

static void make_calls(struct calls *k)
{
    vgpu__wire__envelope__init(&k->env);
    vgpu__wire__call_batch__init(&k->batch);
    for (int i = 0; i < NCALLS; i++) {
        vgpu__wire__call__init(&k->c[i]);
        k->cp[i] = &k->c[i];
        k->c[i].call_id = (uint32_t)(100 + i);
        memset(k->args[i], 0x40 + i, sizeof(k->args[i]));
        k->c[i].args = (ProtobufCBinaryData){ (size_t)(i * 3), k->args[i] };
        for (int j = 0; j < 3; j++) {
            vgpu__wire__segment__init(&k->s[i][j]);
            k->sp[i][j] = &k->s[i][j];
            k->s[i][j].offset = (uint64_t)(i * 50 + j * 10);
            k->s[i][j].length = 10;
        }
        k->c[i].n_segments = (size_t)(i % 4 == 3 ? 3 : i % 4);
        k->c[i].segments = k->c[i].n_segments ? k->sp[i] : NULL;
    }
    k->batch.n_calls = NCALLS;
    k->batch.calls = k->cp;
    k->batch.device = -3;
    k->batch.flight = 1;
    k->env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    k->env.calls = &k->batch;
    for (size_t i = 0; i < sizeof(k->payload); i++)
        k->payload[i] = (uint8_t)i;
    k->iov = (struct iovec){ k->payload, sizeof(k->payload) };
}

static uint8_t *encode(const struct vgpu_frame_header *h, const Vgpu__Wire__Envelope *env,
                       const struct iovec *iov, int niov, size_t *len)
{
    uint8_t *buf = NULL;

    assert_int_equal(vgpu_frame_encode(h, env, iov, niov, NULL, &buf, len), 0);
    return buf;
}

static void check_calls(const struct calls *k, const struct vgpu_frame *f)
{
    const Vgpu__Wire__CallBatch *b = f->env->calls;

    assert_int_equal(f->env->body_case, VGPU__WIRE__ENVELOPE__BODY_CALLS);
    assert_int_equal(b->n_calls, NCALLS);
    assert_int_equal(b->device, -3);
    assert_true(b->flight);
    for (int i = 0; i < NCALLS; i++) {
        assert_int_equal(b->calls[i]->call_id, 100 + i);
        assert_int_equal(b->calls[i]->args.len, i * 3);
        if (i)
            assert_memory_equal(b->calls[i]->args.data, k->args[i], (size_t)(i * 3));
        assert_int_equal(b->calls[i]->n_segments, k->c[i].n_segments);
        for (size_t j = 0; j < k->c[i].n_segments; j++) {
            assert_int_equal(b->calls[i]->segments[j]->offset, k->s[i][j].offset);
            assert_memory_equal(vgpu_frame_segment(f, b->calls[i]->segments[j]),
                                k->payload + k->s[i][j].offset, 10);
        }
    }
}

static void calls_round_trip(void **state)
{
    static max_align_t scratch[512];
    struct calls k;
    struct vgpu_frame f, g;
    size_t len, plen;
    uint8_t *buf, *pbuf;
    struct vgpu_frame_header plain = req;

    (void)state;
    make_calls(&k);
    buf = encode(&req, &k.env, &k.iov, 1, &len);
    /* the protobuf form of the same batch decodes to the same */
    plain.flags = 0;
    pbuf = encode(&plain, &k.env, &k.iov, 1, &plen);
    assert_int_equal(vgpu_frame_decode(pbuf, plen, NULL, NULL, NULL, &f), 0);
    check_calls(&k, &f);
    vgpu_frame_release(&f);
    /* on the heap, and in lent scratch */
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    check_calls(&k, &f);
    assert_int_equal(vgpu_frame_decode_scratch(buf, len, NULL, NULL, NULL, scratch, sizeof(scratch), &g), 0);
    check_calls(&k, &g);
    assert_null(g.compact_heap);
    vgpu_frame_release(&f);
    vgpu_frame_release(&g);
    /* scratch too small: the heap takes over */
    assert_int_equal(vgpu_frame_decode_scratch(buf, len, NULL, NULL, NULL, scratch, 64, &g), 0);
    check_calls(&k, &g);
    assert_non_null(g.compact_heap);
    vgpu_frame_release(&g);
    free(buf);
    free(pbuf);
}

/*
 * A batch naming a driver context carries it in both forms; the compact
 * form's flag for it is refused on results and with a zero context.
 */
static void context_round_trip(void **state)
{
    struct calls k;
    struct vgpu_frame f;
    struct vgpu_frame_header plain = req;
    size_t len;
    uint8_t *buf;

    (void)state;
    make_calls(&k);
    k.batch.context = 0x7f00deadbeef0ull;
    for (int form = 0; form < 2; form++) {
        plain.flags = form ? VGPU_FRAME_F_COMPACT : 0;
        buf = encode(&plain, &k.env, &k.iov, 1, &len);
        assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
        check_calls(&k, &f);
        assert_int_equal(f.env->calls->context, 0x7f00deadbeef0ull);
        vgpu_frame_release(&f);
        if (form) {
            /* the context word zeroed: malformed */
            memset(buf + 32 + 16, 0, 8);
            assert_int_not_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
        }
        free(buf);
    }
    /* without a context, the compact batch has no context word and decodes to 0 */
    k.batch.context = 0;
    buf = encode(&req, &k.env, &k.iov, 1, &len);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    assert_int_equal(f.env->calls->context, 0);
    vgpu_frame_release(&f);
    free(buf);
}

static void results_round_trip(void **state)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__ResultBatch b = VGPU__WIRE__RESULT_BATCH__INIT;
    Vgpu__Wire__Result r[2], *rp[2];
    Vgpu__Wire__Segment s = VGPU__WIRE__SEGMENT__INIT, *sp = &s;
    uint8_t ret[] = { 1, 2, 3 }, payload[16] = { 9 };
    struct iovec iov = { payload, sizeof(payload) };
    struct vgpu_frame f;
    size_t len;
    uint8_t *buf;

    (void)state;
    for (int i = 0; i < 2; i++) {
        vgpu__wire__result__init(&r[i]);
        rp[i] = &r[i];
    }
    r[0].call_id = 5;
    r[0].status = -1;
    r[0].index = 17;
    r[1].call_id = 6;
    r[1].status = 2;
    r[1].index = 40;
    r[1].ret = (ProtobufCBinaryData){ sizeof(ret), ret };
    s.offset = 0;
    s.length = 16;
    r[1].n_segments = 1;
    r[1].segments = &sp;
    b.n_results = 2;
    b.results = rp;
    b.failures_only = 1;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_RESULTS;
    env.results = &b;
    buf = encode(&rep, &env, &iov, 1, &len);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    assert_int_equal(f.hdr.flags, VGPU_FRAME_F_COMPACT | VGPU_FRAME_F_REPLY);
    assert_true(f.env->results->failures_only);
    assert_int_equal(f.env->results->n_results, 2);
    assert_int_equal(f.env->results->results[0]->status, -1);
    assert_int_equal(f.env->results->results[0]->index, 17);
    assert_int_equal(f.env->results->results[1]->index, 40);
    assert_memory_equal(f.env->results->results[1]->ret.data, ret, sizeof(ret));
    assert_int_equal(vgpu_frame_segment(&f, f.env->results->results[1]->segments[0])[0], 9);
    assert_false(f.env->results->device_output);
    vgpu_frame_release(&f);
    free(buf);

    /* the session holds what kernels printed: flags bit 1, and no context word follows */
    b.device_output = 1;
    buf = encode(&rep, &env, &iov, 1, &len);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f), 0);
    assert_true(f.env->results->device_output);
    assert_true(f.env->results->failures_only);
    assert_int_equal(f.env->results->results[1]->index, 40);
    vgpu_frame_release(&f);
    free(buf);
}

/* Only batches have a compact form. */
static void hello_has_none(void **state)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Hello hello;
    uint8_t *buf = NULL;
    size_t len;

    (void)state;
    vgpu_hello_init(&hello, 1, "cudart", "t", 1, "h");
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    assert_int_not_equal(vgpu_frame_encode(&req, &env, NULL, 0, NULL, &buf, &len), 0);
    assert_null(buf);
}

static int known_below_104(void *opaque, uint32_t id)
{
    (void)opaque;
    return id < 104;
}

/* The same checks as the protobuf form: limits, call ids, segments inside the payload. */
static void limits(void **state)
{
    struct calls k;
    struct vgpu_wire_limits lim = VGPU_WIRE_LIMITS_DEFAULT;
    struct vgpu_frame f;
    size_t len;
    uint8_t *buf;

    (void)state;
    make_calls(&k);
    buf = encode(&req, &k.env, &k.iov, 1, &len);
    lim.max_calls = NCALLS - 1;
    assert_int_equal(vgpu_frame_decode(buf, len, &lim, NULL, NULL, &f), VGPU_WIRE_E_TOO_MANY_CALLS);
    lim = (struct vgpu_wire_limits)VGPU_WIRE_LIMITS_DEFAULT;
    lim.max_segments = 2;
    assert_int_equal(vgpu_frame_decode(buf, len, &lim, NULL, NULL, &f), VGPU_WIRE_E_TOO_MANY_SEGMENTS);
    assert_int_equal(vgpu_frame_decode(buf, len, NULL, known_below_104, NULL, &f),
                     VGPU_WIRE_E_UNKNOWN_CALL);
    free(buf);
    /* a segment past the payload: the encoder refuses it (and the decoder, see wire_test) */
    k.iov.iov_len = 100;
    k.s[1][0].offset = 95;
    assert_int_not_equal(vgpu_frame_encode(&req, &k.env, &k.iov, 1, NULL, &buf, &len), 0);
}

/* Whatever the body says, decoding stays inside it. */
static void hostile_bodies(void **state)
{
    static max_align_t scratch[64];
    struct calls k;
    struct vgpu_frame f;
    size_t len;
    uint8_t *buf, *copy;
    uint32_t env_len, seed = 12345;

    (void)state;
    make_calls(&k);
    buf = encode(&req, &k.env, &k.iov, 1, &len);
    env_len = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 |
              (uint32_t)buf[11] << 24;
    copy = malloc(len);
    /* every shorter envelope (the frame shortened with it) */
    for (uint32_t cut = 0; cut < env_len; cut++) {
        memcpy(copy, buf, 32 + cut);
        memcpy(copy + 32 + cut, buf + 32 + env_len, len - 32 - env_len);
        copy[8] = (uint8_t)cut;
        copy[9] = (uint8_t)(cut >> 8);
        copy[10] = copy[11] = 0;
        assert_int_not_equal(vgpu_frame_decode(copy, len - (env_len - cut), NULL, NULL, NULL, &f), 0);
    }
    /* every bit of the envelope flipped */
    for (uint32_t bit = 0; bit < env_len * 8; bit++) {
        memcpy(copy, buf, len);
        copy[32 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (vgpu_frame_decode_scratch(copy, len, NULL, NULL, NULL, scratch, sizeof(scratch), &f) == 0)
            vgpu_frame_release(&f);
    }
    /* random envelopes */
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, buf, len);
        for (uint32_t i = 0; i < env_len; i++) {
            seed = seed * 1103515245u + 12345u;
            if ((seed >> 16) % 5 == 0)
                copy[32 + i] = (uint8_t)(seed >> 24);
        }
        if (vgpu_frame_decode(copy, len, NULL, NULL, NULL, &f) == 0)
            vgpu_frame_release(&f);
    }
    free(copy);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(calls_round_trip),
        cmocka_unit_test(context_round_trip),
        cmocka_unit_test(results_round_trip),
        cmocka_unit_test(hello_has_none),
        cmocka_unit_test(limits),
        cmocka_unit_test(hostile_bodies),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
