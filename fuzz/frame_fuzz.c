// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the frame decoder (wire/wire.c), the code that
 * parses every byte a guest sends to vgpu-server.
 *
 * Each input is decoded three ways:
 *  1. as is, the way the server sees a frame from a transport;
 *  2. behind a rewritten, self-consistent header (lengths split from the
 *     input, reserved bits cleared), so that mutations reach the protobuf
 *     parser and the envelope checks instead of dying on the header;
 *  3. like 2 with tight limits and a call-id filter, to reach the limit and
 *     UNKNOWN_CALL paths with small inputs.
 * Every frame that decodes is re-encoded and decoded again: the encoder must
 * accept what the decoder accepted, and a second round must be a byte-exact
 * fixpoint. A violation aborts, which libFuzzer reports as a crash.
 * A Hello or HelloReply that decodes also has its per-call shapes compared
 * with this build's (include/vgpu/agree.h), as a server and a shim do with
 * a peer of another release, and every id at each API's edges looked up.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/agree.h"
#include "vgpu/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int known_odd_ids_rejected(void *opaque, uint32_t id)
{
    (void)opaque;
    return (id & 1) == 0;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "frame_fuzz: %s: %d (%s)\n", what, rc, vgpu_wire_strerror(rc));
    abort();
}

/* decode(x) succeeded with f: check encode/decode agreement on it. */
static void check_roundtrip(const struct vgpu_frame *f, const struct vgpu_wire_limits *lim)
{
    struct vgpu_frame_header tmpl = { .seq = f->hdr.seq, .flags = f->hdr.flags };
    struct iovec iov = { (void *)f->payload, f->payload_len };
    struct vgpu_frame g;
    uint8_t *a = NULL, *b = NULL;
    size_t alen, blen;
    int rc;

    rc = vgpu_frame_encode(&tmpl, f->env, &iov, 1, lim, &a, &alen);
    if (rc)
        die("re-encode of a decoded frame failed", rc);
    rc = vgpu_frame_decode(a, alen, lim, NULL, NULL, &g);
    if (rc)
        die("decode of a re-encoded frame failed", rc);
    if (g.payload_len != f->payload_len ||
        (f->payload_len && memcmp(g.payload, f->payload, f->payload_len)))
        die("payload changed in the round trip", 0);
    tmpl.flags = g.hdr.flags;
    rc = vgpu_frame_encode(&tmpl, g.env, &iov, 1, lim, &b, &blen);
    if (rc)
        die("second re-encode failed", rc);
    if (alen != blen || memcmp(a, b, alen))
        die("encode(decode(encode(decode(x)))) is not a fixpoint", 0);
    vgpu_frame_release(&g);
    free(a);
    free(b);
}

/* A peer's shapes, any length, against ours; then lookups at and past every table's ends. */
static void agree_with(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, const uint32_t *c,
                       size_t nc)
{
    static const uint32_t edges[] = { 0, 1, VGPU_CUDART_MAX_ID, VGPU_CUDART_MAX_ID + 1,
                                      VGPU_CUDA_ID_BASE, VGPU_CUDA_MAX_ID, VGPU_CUDA_MAX_ID + 1,
                                      VGPU_NVML_ID_BASE, VGPU_NVML_MAX_ID, VGPU_NVML_MAX_ID + 1,
                                      UINT32_MAX };
    static struct vgpu_agreement g;

    vgpu_agree(&g, a, na, b, nb, c, nc);
    if (g.differ > VGPU_AGREE_SLOTS)
        die("more calls differ than there are", 0);
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        if (!vgpu_agreed(&g, edges[i]))
            (void)vgpu_agree_first_refusal(&g, edges[i]);
}

static void agree_if_hello(const Vgpu__Wire__Envelope *env)
{
    if (env->body_case == VGPU__WIRE__ENVELOPE__BODY_HELLO)
        agree_with(env->hello->shapes_cudart, env->hello->n_shapes_cudart, env->hello->shapes_cuda,
                   env->hello->n_shapes_cuda, env->hello->shapes_nvml, env->hello->n_shapes_nvml);
    else if (env->body_case == VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY)
        agree_with(env->hello_reply->shapes_cudart, env->hello_reply->n_shapes_cudart,
                   env->hello_reply->shapes_cuda, env->hello_reply->n_shapes_cuda,
                   env->hello_reply->shapes_nvml, env->hello_reply->n_shapes_nvml);
}

static void decode_one(const uint8_t *buf, size_t len, const struct vgpu_wire_limits *lim,
                       vgpu_wire_call_known_fn known)
{
    struct vgpu_frame f;
    int rc = vgpu_frame_decode(buf, len, lim, known, NULL, &f);

    if (rc > 0)
        die("positive return code", rc);
    if (rc == 0) {
        agree_if_hello(f.env);
        check_roundtrip(&f, lim);
        vgpu_frame_release(&f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct vgpu_wire_limits tight = {
        .max_env = 4096, .max_payload = 4096, .max_calls = 3, .max_segments = 2,
    };
    struct vgpu_frame_header h;
    uint8_t *copy;
    size_t body;

    decode_one(data, size, NULL, NULL);

    if (size < VGPU_FRAME_HEADER_SIZE)
        return 0;
    /* Exact-size copy so that ASan sees any read past the end. */
    copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    vgpu_frame_header_decode(copy, size, NULL, &h); /* fields, valid or not */
    body = size - VGPU_FRAME_HEADER_SIZE;
    h.magic = VGPU_FRAME_MAGIC;
    h.version = VGPU_PROTOCOL_VERSION;
    h.flags &= VGPU_FRAME_F_KNOWN;
    h.reserved = 0;
    h.env_len = (uint32_t)(h.env_len % (body + 1));
    h.payload_len = (uint32_t)(body - h.env_len);
    vgpu_frame_header_encode(&h, copy);

    decode_one(copy, size, NULL, NULL);
    decode_one(copy, size, &tight, known_odd_ids_rejected);
    free(copy);
    return 0;
}
