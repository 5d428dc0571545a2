// SPDX-License-Identifier: Apache-2.0
/*
 * Writes the seed corpus of frame_fuzz: one small valid frame of each body
 * kind, made with the real encoder so the seeds follow the format whenever
 * it changes. Usage: frame_seeds OUTDIR (the directory must exist).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/wire.h"

static int write_seed(const char *dir, const char *name,
                      const struct vgpu_frame_header *tmpl,
                      const Vgpu__Wire__Envelope *env,
                      const void *payload, size_t payload_len)
{
    struct iovec iov = { (void *)payload, payload_len };
    char path[4096];
    uint8_t *buf;
    size_t len;
    FILE *fp;
    int rc;

    rc = vgpu_frame_encode(tmpl, env, &iov, 1, NULL, &buf, &len);
    if (rc) {
        fprintf(stderr, "frame_seeds: %s: %s\n", name, vgpu_wire_strerror(rc));
        return rc;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    if (!fp) {
        rc = -errno;
        fprintf(stderr, "frame_seeds: %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (fwrite(buf, 1, len, fp) != len)
        rc = -EIO;
    if (fclose(fp) != 0 && rc == 0)
        rc = -EIO;
    if (rc)
        fprintf(stderr, "frame_seeds: %s: write failed\n", path);
out:
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct vgpu_frame_header req = { .seq = 1 };
    static const struct vgpu_frame_header rep = { .seq = 1, .flags = VGPU_FRAME_F_REPLY };
    static const uint8_t args[] = { 0x08, 0x80, 0x08, 0x10, 0x01 };
    static uint32_t shapes[] = { 0, 0x12345678u, 1, 0xffffffffu };
    static const uint8_t payload[48] = "0123456789abcdef0123456789abcdef0123456789abcde";
    Vgpu__Wire__Envelope env;
    Vgpu__Wire__Hello hello;
    Vgpu__Wire__HelloReply reply;
    Vgpu__Wire__CallBatch cb = VGPU__WIRE__CALL_BATCH__INIT;
    Vgpu__Wire__ResultBatch rb = VGPU__WIRE__RESULT_BATCH__INIT;
    Vgpu__Wire__Call c[3], *cp[3];
    Vgpu__Wire__Result r[2], *rp[2];
    Vgpu__Wire__Segment s[2], *sp[2];
    int rc = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }

    for (int i = 0; i < 2; i++) {
        vgpu__wire__segment__init(&s[i]);
        sp[i] = &s[i];
    }
    s[0].offset = 0;
    s[0].length = 16;
    s[1].offset = 16;
    s[1].length = 32;

    vgpu__wire__envelope__init(&env);
    vgpu_hello_init(&hello, 0x1122334455667788ull, "cudart", "seed", 1, "host");
    /* per-call shapes, so mutations reach the agreement (a few, of any value) */
    hello.client_version = (char *)"0.0.1";
    hello.shapes_cudart = shapes;
    hello.n_shapes_cudart = sizeof(shapes) / sizeof(shapes[0]);
    hello.shapes_nvml = shapes;
    hello.n_shapes_nvml = 2;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    rc |= write_seed(argv[1], "hello.bin", &req, &env, NULL, 0);

    vgpu__wire__envelope__init(&env);
    vgpu_hello_reply_init(&reply, 0, 0x1122334455667788ull, "vgpu seed", "");
    reply.shapes_cuda = shapes;
    reply.n_shapes_cuda = sizeof(shapes) / sizeof(shapes[0]);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY;
    env.hello_reply = &reply;
    rc |= write_seed(argv[1], "hello_reply.bin", &rep, &env, NULL, 0);

    for (int i = 0; i < 3; i++) {
        vgpu__wire__call__init(&c[i]);
        cp[i] = &c[i];
        c[i].call_id = (uint32_t)(2 * i + 2);
    }
    c[0].args = (ProtobufCBinaryData){ sizeof(args), (uint8_t *)args };
    c[1].n_segments = 2;
    c[1].segments = sp;
    cb.n_calls = 3;
    cb.calls = cp;
    vgpu__wire__envelope__init(&env);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env.calls = &cb;
    rc |= write_seed(argv[1], "calls.bin", &req, &env, payload, sizeof(payload));

    for (int i = 0; i < 2; i++) {
        vgpu__wire__result__init(&r[i]);
        rp[i] = &r[i];
        r[i].call_id = (uint32_t)(2 * i + 2);
    }
    r[0].status = 2;
    r[1].ret = (ProtobufCBinaryData){ sizeof(args), (uint8_t *)args };
    r[1].n_segments = 1;
    r[1].segments = sp;
    rb.n_results = 2;
    rb.results = rp;
    vgpu__wire__envelope__init(&env);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_RESULTS;
    env.results = &rb;
    rc |= write_seed(argv[1], "results.bin", &rep, &env, payload, 16);

    /*
     * A driver-API batch (call ids from 0x10000) naming the thread's driver
     * context, in the protobuf and the compact envelope.
     */
    {
        static const struct vgpu_frame_header compact = { .seq = 1, .flags = VGPU_FRAME_F_COMPACT };

        for (int i = 0; i < 3; i++)
            c[i].call_id = 0x10000u + (uint32_t)(2 * i + 2);
        cb.context = 0x7f0000a0b000ull;
        vgpu__wire__envelope__init(&env);
        env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
        env.calls = &cb;
        rc |= write_seed(argv[1], "driver_calls.bin", &req, &env, payload, sizeof(payload));
        rc |= write_seed(argv[1], "driver_calls_compact.bin", &compact, &env, payload, sizeof(payload));
        cb.context = 0;
    }

    /* An empty batch and no payload: the smallest valid frame. */
    cb.n_calls = 0;
    cb.calls = NULL;
    vgpu__wire__envelope__init(&env);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env.calls = &cb;
    rc |= write_seed(argv[1], "empty_calls.bin", &req, &env, NULL, 0);

    return rc ? 1 : 0;
}
