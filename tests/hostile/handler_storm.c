/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_storm: a hostile client for every hand-written handler of the
 * server (server/manual/), through the session's real input path.  It
 * speaks the wire protocol itself (tests/lib/rawclient.c) and sends, call
 * after call, a manual call id with arguments shaped like one of
 * manual.proto's messages: each field present or not, its value from a
 * pool of edge values (0, 1, powers of two and their neighbours, the
 * largest of each width), random bits, and the session's own handles and
 * addresses (a buffer it allocated, its ends and one past them, a stream,
 * an event, a graph),
 * nested messages and repeated fields included; sometimes an input segment
 * of random bytes.  A call whose answer is neither "invalid value" nor a
 * failed unpack marks the message as one the id takes, which later calls
 * of that id then favour: a cheap feedback that gets past the unpacking.
 * Functions the shim serves alone (no server handler: the server answers
 * "not supported") are dropped after 16 such answers in a row.
 *
 * Every call must get one result: a session that dies or answers anything
 * else fails the run, printing the seed, the call number, the id and the
 * argument bytes in hex, which `handler_storm SOCKET IDS... --seed S
 * --calls N` replays.  The server under test is the sanitized one in the
 * clang build, so a memory error in a handler ends the session and shows
 * in its log.
 *
 *   handler_storm SOCKET CALLS SEED IDS_FILE:BASE:COVERAGE...
 *   handler_storm SOCKET --replay FILE
 *
 * The second form sends each line of FILE, "NAME ID HEX [SEGLEN]" (a call
 * an earlier storm found, its id, its argument bytes in hex, the length of
 * its segment of zero bytes), and fails unless each gets one result: the
 * storm's findings kept as regression tests (regressions.txt).
 *
 * Each IDS_FILE (codegen/spec/<api>.ids) with its id base and the build's
 * coverage.txt names the API's manual functions.
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manual.pb-c.h"
#include "manual_descriptors.h"
#include "rawclient.h"
#include "vgpu/apis.h"

#define MAX_IDS 2048
#define MAX_WIRE 65536
#define SEG_MAX 8192

static struct vgpu_rawclient conn = { .fd = -1, .pass_fd = -1 };
static uint64_t rng;

static uint64_t next(void)
{
    /* xorshift64*: reproducible from the seed */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

static uint32_t below(uint32_t n)
{
    return n ? (uint32_t)(next() % n) : 0;
}

/* ---- the session's own values, learned at the start ---- */

static uint64_t own[16];
static int nown;

static void learn(uint64_t v)
{
    if (nown < (int)(sizeof(own) / sizeof(own[0])))
        own[nown++] = v;
}

static uint64_t value(void)
{
    static const uint64_t edge[] = {
        0, 1, 2, 3, 4, 7, 8, 16, 255, 256, 1023, 1024, 4095, 4096, 65535, 65536,
        0x7fffffffu, 0x80000000u, 0xffffffffu, 0x100000000ull, 0x7fffffffffffffffull,
        0x8000000000000000ull, ~0ull, ~0ull - 1, 1ull << 40, 1ull << 47, 0x10000u, 0x20000u,
    };

    switch (below(4)) {
    case 0:
        return edge[below(sizeof(edge) / sizeof(edge[0]))];
    case 1:
        return nown ? own[below((uint32_t)nown)] + (below(4) == 0 ? below(9) - 4 : 0) : 0;
    case 2:
        return next();
    default:
        return below(64);
    }
}

/* ---- protobuf wire bytes shaped like a message ---- */

struct out {
    uint8_t *b;
    size_t n, cap;
    bool full;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (o->n + n > o->cap) {
        o->full = true;
        return;
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void varint(struct out *o, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;

    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    put(o, b, n);
}

static void tag(struct out *o, unsigned field, unsigned wire)
{
    varint(o, ((uint64_t)field << 3) | wire);
}

static void message(struct out *o, const ProtobufCMessageDescriptor *d, int depth);

/* One value of field f. */
static void field_value(struct out *o, const ProtobufCFieldDescriptor *f, int depth)
{
    uint8_t tmp[8];
    uint64_t v = value();

    switch (f->type) {
    case PROTOBUF_C_TYPE_BOOL:
        tag(o, f->id, 0);
        varint(o, below(8) == 0 ? v : v & 1);
        break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_ENUM:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64:
        tag(o, f->id, 0);
        varint(o, v);
        break;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        tag(o, f->id, 5);
        memcpy(tmp, &v, 4);
        put(o, tmp, 4);
        break;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        tag(o, f->id, 1);
        put(o, &v, 8);
        break;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES: {
        static const uint32_t lens[] = { 0, 1, 4, 7, 8, 16, 63, 64, 65, 128, 256, 1024 };
        uint32_t len = lens[below(sizeof(lens) / sizeof(lens[0]))];

        tag(o, f->id, 2);
        varint(o, len);
        for (uint32_t i = 0; i < len && !o->full; i += 8) {
            uint64_t w = below(3) ? value() : next();

            put(o, &w, len - i < 8 ? len - i : 8);
        }
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        uint8_t inner[4096];
        struct out in = { inner, 0, sizeof(inner), false };

        if (depth < 3)
            message(&in, f->descriptor, depth + 1);
        tag(o, f->id, 2);
        varint(o, in.n);
        put(o, inner, in.n);
        break;
    }
    default:
        break;
    }
}

static void message(struct out *o, const ProtobufCMessageDescriptor *d, int depth)
{
    for (unsigned i = 0; i < d->n_fields && !o->full; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        unsigned n = 1;

        if (below(4) == 0)
            continue;                  /* absent: the default */
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            n = below(16) == 0 ? 200 + below(2000) : below(5);
        for (unsigned k = 0; k < n && !o->full; k++)
            field_value(o, f, depth);
    }
}

/* ---- the calls ---- */

struct id_entry {
    uint32_t id;
    char name[256];
    const ProtobufCMessageDescriptor *taken[4];   /* messages the id answered past unpacking */
    int ntaken;
    int unsupported;                               /* "not supported" answers in a row */
    unsigned long deep;                            /* answers past the unpacking */
};

static struct id_entry ids[MAX_IDS];
static int nids, dropped;

/* The manual functions of one API: names from coverage, ids from the registry. */
static void load_api(const char *spec)
{
    char ids_file[512], cov_file[512], line[512], name[256];
    unsigned long base;
    FILE *fi, *fc;

    if (sscanf(spec, "%511[^:]:%lu:%511s", ids_file, &base, cov_file) != 3) {
        fprintf(stderr, "handler_storm: %s: want IDS_FILE:BASE:COVERAGE\n", spec);
        exit(2);
    }
    fc = fopen(cov_file, "r");
    fi = fopen(ids_file, "r");
    if (!fc || !fi) {
        fprintf(stderr, "handler_storm: cannot read %s or %s\n", cov_file, ids_file);
        exit(2);
    }
    while (fgets(line, sizeof(line), fc)) {
        char state[32];
        unsigned long n;

        if (sscanf(line, "%255s %31s", name, state) != 2 || strcmp(state, "manual"))
            continue;
        rewind(fi);
        while (fgets(line, sizeof(line), fi)) {
            char nm[256];

            if (sscanf(line, "%lu %255s", &n, nm) == 2 && !strcmp(nm, name) && nids < MAX_IDS) {
                ids[nids].id = (uint32_t)(base + n);
                snprintf(ids[nids].name, sizeof(ids[nids].name), "%s", name);
                nids++;
                break;
            }
        }
    }
    fclose(fc);
    fclose(fi);
}

/*
 * Calls the storm leaves out, each with its reason: they end the session or
 * the process on purpose, which is not a crash.
 */
static bool left_out(const char *name)
{
    static const char *const out[] = {
        "cudaDeviceReset",      /* drops every allocation the pool of values names */
        "cuDevicePrimaryCtxReset",
        "cuDevicePrimaryCtxReset_v2",
    };

    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        if (!strcmp(name, out[i]))
            return true;
    return false;
}

static void hexdump(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x", b[i]);
    fprintf(stderr, "\n");
}

/* One call: 0, or -1 when the session stopped answering. */
static int storm_one(unsigned long k, unsigned long long seed)
{
    static uint8_t wire[MAX_WIRE], seg[SEG_MAX];
    int pick = (int)below((uint32_t)nids);
    struct id_entry *e = &ids[pick];
    const ProtobufCMessageDescriptor *d =
        e->ntaken && below(4) ? e->taken[below((uint32_t)e->ntaken)]
                              : vgpu_manual_descriptors[below(VGPU_MANUAL_NDESCRIPTORS)];
    struct out o = { wire, 0, sizeof(wire), false };
    size_t seglen = 0;
    uint8_t *ret = NULL;
    size_t ret_len = 0;
    int st;

    message(&o, d, 0);
    if (below(3) == 0) {
        static const uint32_t lens[] = { 1, 8, 64, 4096, SEG_MAX };

        seglen = lens[below(5)];
        for (size_t i = 0; i < seglen; i += 8) {
            uint64_t w = value();

            memcpy(seg + i, &w, seglen - i < 8 ? seglen - i : 8);
        }
    }
    st = vgpu_raw_call_bytes(&conn, e->id, wire, o.n, seglen ? seg : NULL, seglen, &ret, &ret_len);
    free(ret);
    if (st < 0) {
        fprintf(stderr, "handler_storm: seed %llu call %lu: %s (id %u) as %s got no result (%s); "
                "its arguments (%zu bytes, segment %zu):\n", seed, k, e->name, e->id, d->name,
                vgpu_wire_strerror(st), o.n, seglen);
        hexdump(wire, o.n);
        return -1;
    }
    if (st == cudaErrorNotSupported && ++e->unsupported >= 16 && !e->deep && nids > 1) {
        dropped++;
        ids[pick] = ids[--nids];       /* served by the shim alone */
        return 0;
    }
    if (st != cudaErrorNotSupported)
        e->unsupported = 0;
    if (st != cudaErrorInvalidValue && st != cudaErrorNotSupported) {
        bool known = false;

        e->deep++;
        for (int i = 0; i < e->ntaken; i++)
            known |= e->taken[i] == d;
        if (!known && e->ntaken < 4)
            e->taken[e->ntaken++] = d;
    }
    return 0;
}

/* A call with no arguments whose result's field 1 is a handle: it goes into the pool. */
static void learn_made(uint32_t id)
{
    uint8_t *ret = NULL;
    size_t ret_len = 0;

    if (vgpu_raw_call_bytes(&conn, id, NULL, 0, NULL, 0, &ret, &ret_len) == 0) {
        /* every generated *_ret message that makes one handle carries it as field 1 */
        Vgpu__Manual__NodeRet *r = vgpu__manual__node_ret__unpack(NULL, ret_len, ret);

        if (r) {
            learn(r->node);
            vgpu__manual__node_ret__free_unpacked(r, NULL);
        }
    }
    free(ret);
}

/* A buffer, a stream, an event and a graph of the session's own, their values in the pool. */
static void own_handles(void)
{
    Vgpu__Manual__MallocArgs m = VGPU__MANUAL__MALLOC_ARGS__INIT;
    uint8_t *ret = NULL;
    size_t ret_len = 0;

    m.size = 1 << 20;
    if (vgpu_raw_call(&conn, VGPU_CUDART_ID_cudaMalloc, &m.base, NULL, 0, &ret, &ret_len) == 0) {
        Vgpu__Manual__MallocRet *r = vgpu__manual__malloc_ret__unpack(NULL, ret_len, ret);

        if (r) {
            learn(r->ptr);
            learn(r->ptr + m.size - 1);
            learn(r->ptr + m.size);
            vgpu__manual__malloc_ret__free_unpacked(r, NULL);
        }
    }
    free(ret);
    learn_made(VGPU_CUDART_ID_cudaStreamCreate);
    learn_made(VGPU_CUDART_ID_cudaEventCreate);
    learn_made(VGPU_CUDA_ID_cuGraphCreate);
}

/* The regressions of FILE, one call each: 0 when every one was answered. */
static int replay(const char *file)
{
    static uint8_t wire[MAX_WIRE], seg[SEG_MAX];
    char line[2 * MAX_WIRE / 16], name[128], hex[sizeof(line)];
    FILE *f = fopen(file, "r");
    int n = 0;

    if (!f) {
        fprintf(stderr, "handler_storm: cannot read %s\n", file);
        return 1;
    }
    while (fgets(line, sizeof(line), f)) {
        unsigned long id, seglen = 0;
        size_t len = 0;
        uint8_t *ret = NULL;
        size_t ret_len = 0;
        int st;

        if (line[0] == '#' || sscanf(line, "%127s %lu %s %lu", name, &id, hex, &seglen) < 3)
            continue;
        for (const char *h = hex; h[0] && h[1] && len < sizeof(wire); h += 2)
            sscanf(h, "%2hhx", &wire[len++]);
        if (seglen > SEG_MAX)
            seglen = SEG_MAX;
        st = vgpu_raw_call_bytes(&conn, (uint32_t)id, wire, len, seglen ? seg : NULL, seglen, &ret,
                                 &ret_len);
        free(ret);
        n++;
        if (st < 0) {
            fprintf(stderr, "handler_storm: regression %s (id %lu) got no result (%s)\n", name, id,
                    vgpu_wire_strerror(st));
            return 1;
        }
        printf("regression %s: answered %d\n", name, st);
    }
    fclose(f);
    printf("handler_storm: %d regressions, every one answered\n", n);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long calls;
    unsigned long long seed;
    int deep = 0;
    char why[256] = "";
    int rc;

    if (argc == 4 && !strcmp(argv[2], "--replay")) {
        if ((rc = vgpu_raw_dial(&conn, argv[1])) ||
            (rc = vgpu_raw_hello(&conn, "handler_storm", VGPU_CALL_TABLES_HASH, why, sizeof(why)))) {
            fprintf(stderr, "handler_storm: %s: %s\n", argv[1], *why ? why : strerror(-rc));
            return 1;
        }
        own_handles();
        return replay(argv[3]);
    }
    if (argc < 5) {
        fprintf(stderr, "usage: handler_storm SOCKET CALLS SEED IDS_FILE:BASE:COVERAGE...\n"
                "       handler_storm SOCKET --replay FILE\n");
        return 2;
    }
    calls = strtoul(argv[2], NULL, 0);
    seed = strtoull(argv[3], NULL, 0);
    rng = seed ? seed : 1;
    for (int i = 4; i < argc; i++)
        load_api(argv[i]);
    for (int i = 0; i < nids; i++)
        if (left_out(ids[i].name))
            ids[i--] = ids[--nids];
    if (!nids) {
        fprintf(stderr, "handler_storm: no manual function found\n");
        return 2;
    }
    if ((rc = vgpu_raw_dial(&conn, argv[1])) ||
        (rc = vgpu_raw_hello(&conn, "handler_storm", VGPU_CALL_TABLES_HASH, why, sizeof(why)))) {
        fprintf(stderr, "handler_storm: %s: %s\n", argv[1], *why ? why : strerror(-rc));
        return 1;
    }
    own_handles();
    for (unsigned long k = 0; k < calls; k++)
        if (storm_one(k, seed))
            return 1;
    for (int i = 0; i < nids; i++)
        deep += ids[i].deep != 0;
    printf("handler_storm: %lu calls, seed %llu: every one answered\n", calls, seed);
    fprintf(stderr, "handler_storm: %d functions with a server handler, %d of them answered "
            "past the unpacking; %d served by the shim alone, dropped\n", nids, deep, dropped);
    return 0;
}
