// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for a session's calls, in-process: every hand-written
 * handler of the server (server/manual/) and every generated call of the
 * runtime, the driver and NVML, entered where a real session enters them
 * (vgpu_session_serve(): the frame decoded, the batch served, the reply
 * sent through the session's carrier), against the fake runtime, driver
 * and NVML (tests/fakecuda) compiled into this program.  The session's
 * sources and the fake's carry libFuzzer's coverage instrumentation, so
 * the fuzzer sees past each handler's unpacking, and its comparison
 * tracing finds the session's own handles (a buffer, a stream, an event
 * made for each input) in the handlers' table lookups.
 *
 * Input (little-endian), one fresh session per input:
 *   byte 0            bit 0: the batches are flights (queued calls, only
 *                     failures answered); bit 1: they name device 1
 *   then calls, each  u16 selector (bit 15: this call begins a new batch;
 *                     the rest, modulo the table, picks the call id),
 *                     u16 argument length, the argument bytes,
 *                     u16 segment length (0: none), its bytes (what the
 *                     input has left of them; zeros after)
 * At most 32 calls an input.  The call table is the manual calls first,
 * then the generated ones, in id order: `HANDLER_FUZZ_LIST=1` prints it,
 * and `HANDLER_FUZZ_SEEDS=DIR` writes a seed for each call into DIR (its
 * name) and exits.
 *
 * After every batch: the reply must encode as the client would receive it
 * and decode again with the client's checks, with one result per call (a
 * flight: at most one per call, each naming a call of the batch), every
 * output segment inside the payload; the session must not have asked to
 * end.  A violation aborts, which libFuzzer reports.  At the end of the
 * input the session's objects go (cudaDeviceReset on the fake, the
 * session's tables emptied), as a session's process ending would.
 */
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "carrier.h"
#include "cuda_calltable.h"
#include "cudart_calltable.h"
#include "manual_internal.h"
#include "nvml_calltable.h"
#include "server_internal.h"
#include "vgpu/apis.h"
#include "vgpu/callgen.h"
#include "vgpu/wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

const struct vgpu_dispatch_entry *vgpu_cudart_dispatch_find(uint32_t id);
const struct vgpu_dispatch_entry *vgpu_cuda_dispatch_find(uint32_t id);
const struct vgpu_dispatch_entry *vgpu_nvml_dispatch_find(uint32_t id);

/* What link.c owns in a real server: no device link here. */
uint8_t *vgpu_link_bar;
uint64_t vgpu_link_bar_size;
int vgpu_link_bar_fd = -1;
int vgpu_link_bells[VGPU_STUB_MAX_DOORBELLS];
int vgpu_link_nbells;

/* proctitle.c's: this program's title stays. */
void vgpu_proctitle_set(const char *fmt, ...)
{
    (void)fmt;
}

enum { MAX_CALLS = 32, SEG_MAX = 16384 };

static uint32_t ids[4096];
static size_t nids, nmanual;

/* The batch being served, for the reply's checks. */
static struct {
    size_t n;
    bool flight;
    bool replied;
} sent;

static void fail(const char *what)
{
    fprintf(stderr, "handler_fuzz: %s\n", what);
    abort();
}

/* The reply as the client receives it: encoded, decoded again, one result per call. */
static int check_reply(struct vgpu_session *s, const struct vgpu_frame_header *h,
                       Vgpu__Wire__Envelope *env, const struct iovec *iov, int niov)
{
    struct vgpu_frame f = { 0 };
    uint8_t *buf = NULL;
    size_t len = 0;
    const Vgpu__Wire__ResultBatch *rb;
    int rc;

    (void)s;
    if (sent.replied)
        fail("two replies to one batch");
    sent.replied = true;
    rc = vgpu_frame_encode(h, env, iov, niov, NULL, &buf, &len);
    if (rc) {
        fprintf(stderr, "handler_fuzz: %s\n", vgpu_wire_strerror(rc));
        fail("the session's reply does not encode");
    }
    if (vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f))
        fail("the session's reply does not decode");
    if (f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_RESULTS)
        fail("a batch answered with something other than results");
    rb = f.env->results;
    if (sent.flight) {
        if (rb->n_results > sent.n)
            fail("a flight answered with more failures than calls");
        for (size_t i = 0; i < rb->n_results; i++)
            if (rb->results[i]->index >= sent.n)
                fail("a flight's failure names no call of the batch");
    } else if (rb->n_results != sent.n) {
        fail("a batch answered with a different number of results");
    }
    vgpu_frame_release(&f);
    free(buf);
    return 0;
}

static int no_receive(struct vgpu_session *s, uint8_t **buf, size_t *len)
{
    (void)s;
    (void)buf;
    (void)len;
    return -ECONNRESET;
}

static int no_wait(struct vgpu_session *s, uint64_t timeout_ns)
{
    (void)s;
    (void)timeout_ns;
    return 0;
}

static bool alive(const struct vgpu_session *s)
{
    (void)s;
    return true;
}

static const struct vgpu_carrier_ops fuzz_carrier = {
    .name = "in-process",
    .receive = no_receive,
    .reply = check_reply,
    .wait = no_wait,
    .alive = alive,
};

static void add_ids(uint32_t first, uint32_t last,
                    const struct vgpu_dispatch_entry *(*find)(uint32_t), int state)
{
    for (uint32_t id = first; id <= last && nids < sizeof(ids) / sizeof(ids[0]); id++) {
        const struct vgpu_dispatch_entry *e = find(id);

        if (e && e->state == state)
            ids[nids++] = id;
    }
}

static const char *name_of(uint32_t id)
{
    const struct vgpu_dispatch_entry *e =
        id >= VGPU_NVML_ID_BASE ? vgpu_nvml_dispatch_find(id)
        : id >= VGPU_CUDA_ID_BASE ? vgpu_cuda_dispatch_find(id) : vgpu_cudart_dispatch_find(id);

    return e ? e->name : "?";
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    vgpu_log_level = getenv("HANDLER_FUZZ_LOG") ? VGPU_LOG_DEBUG : -1;
    add_ids(0, VGPU_CUDART_MAX_ID, vgpu_cudart_dispatch_find, VGPU_FN_MANUAL);
    add_ids(VGPU_CUDA_ID_BASE, VGPU_CUDA_MAX_ID, vgpu_cuda_dispatch_find, VGPU_FN_MANUAL);
    add_ids(VGPU_NVML_ID_BASE, VGPU_NVML_MAX_ID, vgpu_nvml_dispatch_find, VGPU_FN_MANUAL);
    nmanual = nids;
    add_ids(0, VGPU_CUDART_MAX_ID, vgpu_cudart_dispatch_find, VGPU_FN_GENERATED);
    add_ids(VGPU_CUDA_ID_BASE, VGPU_CUDA_MAX_ID, vgpu_cuda_dispatch_find, VGPU_FN_GENERATED);
    add_ids(VGPU_NVML_ID_BASE, VGPU_NVML_MAX_ID, vgpu_nvml_dispatch_find, VGPU_FN_GENERATED);
    if (getenv("HANDLER_FUZZ_SEEDS")) {
        /* one seed a call: its selector, no arguments (every field 0), no segment */
        for (size_t i = 0; i < nids; i++) {
            const uint8_t seed[] = { 0, (uint8_t)i, (uint8_t)(i >> 8), 0, 0, 0, 0 };
            char path[4096];
            FILE *f;

            snprintf(path, sizeof(path), "%s/%s", getenv("HANDLER_FUZZ_SEEDS"), name_of(ids[i]));
            if (!(f = fopen(path, "wb")) || fwrite(seed, sizeof(seed), 1, f) != 1 || fclose(f)) {
                perror(path);
                exit(1);
            }
        }
        exit(0);
    }
    if (getenv("HANDLER_FUZZ_LIST")) {
        for (size_t i = 0; i < nids; i++)
            printf("%zu %u %s %s\n", i, ids[i], name_of(ids[i]), i < nmanual ? "manual" : "generated");
        exit(0);
    }
    return 0;
}

static uint16_t u16(const uint8_t **p, const uint8_t *end)
{
    uint16_t v = 0;

    if (end - *p >= 2) {
        v = (uint16_t)((*p)[0] | (*p)[1] << 8);
        *p += 2;
    } else {
        *p = end;
    }
    return v;
}

/* One batch of calls, encoded as a client would and served. */
static void serve(struct vgpu_session *s, Vgpu__Wire__Call **calls, size_t n, bool flight,
                  uint32_t device, const struct iovec *seg, int nseg)
{
    Vgpu__Wire__CallBatch b = VGPU__WIRE__CALL_BATCH__INIT;
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    struct vgpu_frame_header h = { .seq = 1 };
    uint8_t *buf = NULL;
    size_t len = 0;

    if (!n)
        return;
    b.n_calls = n;
    b.calls = calls;
    b.flight = flight;
    b.device = device;
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CALLS;
    env.calls = &b;
    if (vgpu_frame_encode(&h, &env, seg, nseg, NULL, &buf, &len))
        return;                 /* a batch no client could send */
    sent.n = n;
    sent.flight = flight;
    sent.replied = false;
    if (vgpu_session_serve(s, buf, len))
        fail("the session ended on a batch");
    if (!sent.replied)
        fail("a batch went unanswered");
    free(buf);
}

/* What a session's process ending frees: the fake's objects, the session's tables. */
static void end_session(struct vgpu_session *s)
{
    vgpu_hostcb_end(s);
    vgpu_devout_log_end(s);
    vgpu_regions_release(s);
    cudaDeviceReset();
    vgpu_driver_forget_layouts();       /* as the session's own reset does (manual/device.c) */
    vgpu_copy_forget_stream();
    for (int i = 0; i < VGPU_MAX_CONTEXTS; i++)
        if (s->contexts[i])
            cuCtxDestroy((CUcontext)(uintptr_t)s->contexts[i]);
    vgpu_session_reset_tables(s);
    free(s->ranges);
    free(s->handles);
    for (int i = 0; i < s->nmodules; i++)
        free(s->modules[i].images);
    free(s->modules);
    free(s->fns);
    free(s->graph_mem);
    free(s->exec_mem);
    free(s->cond_bodies);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t segbuf[MAX_CALLS][SEG_MAX];
    struct vgpu_session s = { .fd = -1, .device = 0, .devices_used = 1, .pending_fd = -1,
                              .qp_bell = -1, .carrier = &fuzz_carrier,
                              .devout_fd = { -1, -1 } };
    Vgpu__Wire__Call call[MAX_CALLS], *callp[MAX_CALLS];
    Vgpu__Wire__Segment segs[MAX_CALLS], *segp[MAX_CALLS];
    struct iovec iov[MAX_CALLS];
    const uint8_t *p = data, *end = data + size;
    size_t n = 0, ncalls = 0;
    int niov = 0;
    uint64_t off = 0;
    bool flight;
    uint32_t device;
    void *buf = NULL;
    cudaStream_t stream = NULL;
    cudaEvent_t event = NULL;

    if (size < 1)
        return 0;
    flight = data[0] & 1;
    device = (data[0] >> 1) & 1;
    p++;
    s.who.vm_id = 1;
    s.who.priority = VGPU_PRIO_LOW;
    vgpu_view_enter(&s);
    s.init_status = cudaSuccess;
    /* the session's own objects, as a program's first calls would have made them */
    if (cudaMalloc(&buf, 4096) == cudaSuccess)
        vgpu_range_add(&s, (uint64_t)(uintptr_t)buf, 4096, true);
    if (cudaStreamCreate(&stream) == cudaSuccess)
        vgpu_handle_add(&s, VGPU_CUDART_H_STREAM, (uint64_t)(uintptr_t)stream);
    if (cudaEventCreate(&event) == cudaSuccess)
        vgpu_handle_add(&s, VGPU_CUDART_H_EVENT, (uint64_t)(uintptr_t)event);

    while (p < end && ncalls < MAX_CALLS) {
        uint16_t sel = u16(&p, end), alen = u16(&p, end), slen;
        Vgpu__Wire__Call *c;

        if ((sel & 0x8000) && n) {
            serve(&s, callp, n, flight, device, iov, niov);
            n = 0;
            niov = 0;
            off = 0;
        }
        c = &call[n];
        vgpu__wire__call__init(c);
        c->call_id = ids[(sel & 0x7fff) % nids];
        if (alen > end - p)
            alen = (uint16_t)(end - p);
        c->args.data = (uint8_t *)p;
        c->args.len = alen;
        p += alen;
        slen = u16(&p, end);
        if (slen > SEG_MAX)
            slen = SEG_MAX;
        if (slen) {
            size_t have = (size_t)(end - p) < slen ? (size_t)(end - p) : slen;

            memcpy(segbuf[ncalls], p, have);
            memset(segbuf[ncalls] + have, 0, slen - have);
            p += have;
            vgpu__wire__segment__init(&segs[n]);
            segs[n].offset = off;
            segs[n].length = slen;
            segp[n] = &segs[n];
            c->n_segments = 1;
            c->segments = &segp[n];
            iov[niov].iov_base = segbuf[ncalls];
            iov[niov++].iov_len = slen;
            off += slen;
        }
        callp[n++] = c;
        ncalls++;
    }
    serve(&s, callp, n, flight, device, iov, niov);
    end_session(&s);
    return 0;
}
