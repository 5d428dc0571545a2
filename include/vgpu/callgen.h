/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The contract between code vgpu-codegen generates and the hand-written
 * runtimes around it: the shim side (vgpu_shim_*: send one call, get its
 * reply) and the server side (struct vgpu_replay: decode, check, call through
 * libffi, encode).  Generated code includes this header; nothing in it is
 * specific to one API.
 */
#ifndef VGPU_CALLGEN_H
#define VGPU_CALLGEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

/* At most this many parameters travel as raw payload segments per call. */
#define VGPU_CALL_MAX_SEG 8
/* Upper bound on what one counted parameter may make the server allocate. */
#define VGPU_CALL_MAX_BYTES (32u << 20)
/*
 * Upper bound on the output bytes of all calls of one batch: the reply must
 * fit a frame every transport carries (the vgpu-stub device takes 64 MiB).
 */
#define VGPU_REPLY_MAX_BYTES (48u << 20)
#define VGPU_CALL_MAX_ARGS 32

/* Function flags in the dispatch table. */
#define VGPU_FN_ASYNC      0x1u /* only an error code comes back: may be sent without waiting */
#define VGPU_FN_RET_STATUS 0x2u /* the return value is the call's status */
#define VGPU_FN_CACHED     0x4u /* a pure query: the shim may answer a repeat from its cache */
#define VGPU_FN_WORK       0x8u /* puts work on the GPU: the server's scheduler grants it */
/* a query of a context's fixed facts: cached per current context, until a context changes */
#define VGPU_FN_CACHE_CTX  0x10u
/* changes contexts (destroy, primary-context retain, release, reset, flags): drops those answers */
#define VGPU_FN_CTX_CHANGE 0x20u
/*
 * A request's own flag, never a function's: the call is an asynchronous
 * copy to the host (a Vgpu__Manual__CopyArgs) whose bytes come back in its
 * reply, so the server answered it only once its stream had done
 * everything before it.  Until another call goes to the server, the
 * client answers that stream's synchronize itself (shim/client/instance.c).
 */
#define VGPU_REQ_DRAINS    0x10000u

enum vgpu_fn_state {
    VGPU_FN_GENERATED = 0,
    VGPU_FN_MANUAL = 1,
    VGPU_FN_UNSUPPORTED = 2,
};

enum vgpu_arg_kind {
    VGPU_ARG_VALUE,
    VGPU_ARG_HANDLE,
    VGPU_ARG_DEVPTR,
    VGPU_ARG_IN,
    VGPU_ARG_OUT,
    VGPU_ARG_INOUT,
    VGPU_ARG_STRING,
};

/*
 * A tiny arena: every allocation for one call is freed at once.  Owned by the
 * call; vgpu_arena_free() may be called on a zeroed arena.
 */
struct vgpu_arena_blk {
    struct vgpu_arena_blk *next;
    max_align_t data[];
};

/* Small allocations come from an inline area first (no malloc); larger ones are blocks. */
#define VGPU_ARENA_INLINE 512

struct vgpu_arena {
    struct vgpu_arena_blk *head;
    size_t used;                    /* bytes of first[] handed out */
    max_align_t first[VGPU_ARENA_INLINE / sizeof(max_align_t)];
};

static inline void *vgpu_arena_alloc(struct vgpu_arena *a, size_t n)
{
    struct vgpu_arena_blk *b;
    size_t r = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);

    if (n > ((size_t)1 << 40))
        return NULL;
    if (!r)
        r = sizeof(max_align_t);
    if (r <= sizeof(a->first) - a->used) {
        void *p = (unsigned char *)a->first + a->used;

        a->used += r;
        memset(p, 0, r);
        return p;
    }
    b = calloc(1, sizeof(*b) + (n ? n : 1));
    if (!b)
        return NULL;
    b->next = a->head;
    a->head = b;
    return b->data;
}

static inline void vgpu_arena_free(struct vgpu_arena *a)
{
    while (a->head) {
        struct vgpu_arena_blk *b = a->head;

        a->head = b->next;
        free(b);
    }
    a->used = 0;
}

/* protobuf-c allocation from an arena: nothing is freed before the arena is. */
static inline void *vgpu_arena_pb_alloc(void *arena, size_t n)
{
    return vgpu_arena_alloc(arena, n);
}

static inline void vgpu_arena_pb_keep(void *arena, void *p)
{
    (void)arena;
    (void)p;
}

/* A raw byte range travelling after the envelope. */
struct vgpu_seg {
    const void *data;
    size_t len;
};

/* Where a returned raw segment must land in the program's memory. */
struct vgpu_oseg {
    void *dst;
    size_t len;
};

/* ---- shim side ---- */

struct vgpu_call_req {
    uint32_t call_id;
    uint32_t flags;             /* VGPU_FN_* */
    const char *name;
    const uint8_t *args;        /* packed <name>_args message */
    size_t args_len;
    int nseg;
    struct vgpu_seg seg[VGPU_CALL_MAX_SEG];   /* input segments, parameter order */
    int nout;
    struct vgpu_oseg out[VGPU_CALL_MAX_SEG];  /* output segments, parameter order */
};

struct vgpu_call_rep {
    const uint8_t *ret;         /* packed <name>_ret message; valid until release */
    size_t ret_len;
    void *priv;                 /* the transport's buffer */
};

/*
 * Send one call and wait for its reply (or queue it, for VGPU_FN_ASYNC).
 * Returns the CUDA status the program must see: the server's status, or the
 * mapped transport failure.  Output segments are written to req->out[].dst
 * only when the status is success.  rep must be released in every case.
 */
int vgpu_shim_invoke(struct vgpu_call_req *req, struct vgpu_call_rep *rep);
void vgpu_shim_rep_release(struct vgpu_call_rep *rep);
/* A function vgpu does not remote: prints once why, returns the status. */
int vgpu_shim_unsupported(uint32_t call_id, const char *name, const char *reason);
/* The server's reply did not decode: logs it, returns the status. */
int vgpu_shim_bad_reply(const struct vgpu_call_req *req);
/* Internal failure (negative errno) to the status the program sees. */
int vgpu_shim_local_error(const struct vgpu_call_req *req, int neg_errno);

/* Packs msg into arena-owned bytes as req->args; 0 or a negative errno. */
static inline int vgpu_call_pack(struct vgpu_arena *a, const ProtobufCMessage *msg,
                                 const uint8_t **out, size_t *out_len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = vgpu_arena_alloc(a, n);

    if (!buf)
        return -12; /* ENOMEM */
    *out_len = protobuf_c_message_pack(msg, buf);
    *out = buf;
    return 0;
}

/* ---- server side ---- */

struct vgpu_replay;

/*
 * How the server checks what a guest sends.  Each returns 0 or a negative
 * errno; the generated decoder stops at the first failure.
 *   handle_in:  wire value -> native handle the session owns (NULL/0 allowed
 *               where CUDA allows it: the callback decides)
 *   handle_out: native handle the call created -> wire value, recorded
 *   devptr_in:  a bare device address (no extent known): it must lie inside
 *               memory the session owns -> native address
 *   range_in:   a device address with the extent the call will touch,
 *               [addr, addr + len), which must lie inside one range the
 *               session owns; len 0 is an empty range and may sit at a range's
 *               end (what CUDA accepts for a zero-byte memset) -> native address
 * NULL (0) passes both unchanged: the runtime answers it as natively.
 */
struct vgpu_replay_ops {
    int (*handle_in)(void *ctx, int kind, uint64_t wire, void **native);
    int (*handle_out)(void *ctx, int kind, void *native, uint64_t *wire);
    int (*devptr_in)(void *ctx, uint64_t addr, void **native);
    int (*range_in)(void *ctx, uint64_t addr, uint64_t len, void **native);
};

struct vgpu_replay {
    struct vgpu_arena arena;        /* everything below that is allocated */
    void *ctx;
    const struct vgpu_replay_ops *ops;
    ProtobufCMessage *args_msg;     /* unpacked args (into arena when args_in_arena) */
    int args_in_arena;
    void *av[VGPU_CALL_MAX_ARGS];   /* libffi argument values */
    uint64_t rv;                    /* libffi return value (ffi_arg) */
    int nseg_in;
    const struct vgpu_seg *seg_in;  /* input segments from the frame */
    int seg_used;                   /* how many the decoder consumed */
    int nseg_out;
    struct vgpu_seg seg_out[VGPU_CALL_MAX_SEG];
    const uint8_t *ret;             /* packed <name>_ret, arena-owned */
    size_t ret_len;
    size_t out_budget;              /* output bytes this call may still allocate */
};

struct vgpu_arg_desc {
    const char *name;
    uint8_t kind;                   /* enum vgpu_arg_kind */
    int8_t handle;                  /* handle kind, or -1 */
};

struct vgpu_dispatch_entry {
    uint32_t id;
    uint8_t state;                  /* enum vgpu_fn_state */
    uint8_t flags;                  /* VGPU_FN_* */
    uint8_t nargs;
    const char *name;
    const char *reason;             /* for VGPU_FN_UNSUPPORTED */
    const struct vgpu_arg_desc *args;
    void **atypes;                  /* ffi_type *[nargs] */
    void *rtype;                    /* ffi_type * */
    int (*decode)(struct vgpu_replay *r, const uint8_t *buf, size_t len);
    int (*encode)(struct vgpu_replay *r);
};

/* Takes the next input segment, which must be exactly len bytes. */
static inline const void *vgpu_replay_seg(struct vgpu_replay *r, size_t len)
{
    const struct vgpu_seg *s;

    if (r->seg_used >= r->nseg_in)
        return NULL;
    s = &r->seg_in[r->seg_used];
    if (s->len != len)
        return NULL;
    r->seg_used++;
    return s->data ? s->data : (const void *)"";
}

static inline int vgpu_replay_out_seg(struct vgpu_replay *r, const void *data, size_t len)
{
    if (r->nseg_out >= VGPU_CALL_MAX_SEG)
        return -7; /* E2BIG */
    r->seg_out[r->nseg_out].data = data;
    r->seg_out[r->nseg_out].len = len;
    r->nseg_out++;
    return 0;
}

/*
 * An element count from the guest, bounded before anything is allocated;
 * outputs also draw on the call's share of the reply (out_budget).
 */
static inline int vgpu_replay_count(struct vgpu_replay *r, long long n, size_t elem_size,
                                    int output, size_t *bytes)
{
    if (n < 0 || (unsigned long long)n > VGPU_CALL_MAX_BYTES / (elem_size ? elem_size : 1))
        return -7; /* E2BIG */
    *bytes = (size_t)n * (elem_size ? elem_size : 1);
    if (output) {
        if (*bytes > r->out_budget)
            return -7; /* E2BIG */
        r->out_budget -= *bytes;
    }
    return 0;
}

/*
 * Extents of device spans, from guest values, with arithmetic that cannot
 * overflow.  Each returns 0 and the span in bytes, or -EINVAL (22) when the
 * span does not fit 64 bits or is malformed.
 *   1D: n elements of elem bytes.
 *   2D: height rows of width bytes, pitch bytes apart: (height - 1) * pitch +
 *       width; empty when width or height is 0; width > pitch is refused
 *       (rows would overlap; CUDA refuses it too).
 */
static inline int vgpu_span_1d(uint64_t n, uint64_t elem, uint64_t *span)
{
    if (elem && n > UINT64_MAX / elem)
        return -22; /* EINVAL */
    *span = n * elem;
    return 0;
}

static inline int vgpu_span_2d(uint64_t pitch, uint64_t width, uint64_t height, uint64_t *span)
{
    uint64_t rows;

    if (width == 0 || height == 0) {
        *span = 0;
        return 0;
    }
    if (width > pitch || height - 1 > UINT64_MAX / pitch)
        return -22; /* EINVAL */
    rows = (height - 1) * pitch;
    if (width > UINT64_MAX - rows)
        return -22; /* EINVAL */
    *span = rows + width;
    return 0;
}

#endif
