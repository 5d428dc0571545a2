/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End-to-end check of what vgpu-codegen emits for mini_api.h: each call goes
 * through the generated shim stub, is packed, decoded by the generated
 * server decoder, checked against a session's handles and device range,
 * replayed through libffi into mini_impl.c, encoded and unpacked back into
 * the caller's variables.  The transport is an in-process loopback.
 */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mini_api.h"
#include "mini_calltable.h"
#include "server_internal.h"

extern const struct vgpu_dispatch_entry vgpu_mini_dispatch[];
extern const size_t vgpu_mini_dispatch_len;
const struct vgpu_dispatch_entry *vgpu_mini_dispatch_find(uint32_t id);
extern struct miniVec3 mini_impl_origin;
extern int mini_impl_posted;

/* ---- a fake session: handles it created, one device range ---- */
static void *handles[16];
static int handle_kinds[16];
static int nhandles;
static unsigned char device_mem[256];
static int replay_errors, last_replay_error;
static uint32_t last_flags;
static const char *unsupported_name;

static int handle_in(void *ctx, int kind, uint64_t wire, void **native)
{
    (void)ctx;
    for (int i = 0; i < nhandles; i++)
        if ((uint64_t)(uintptr_t)handles[i] == wire && handle_kinds[i] == kind) {
            *native = handles[i];
            return 0;
        }
    return -EINVAL;
}

static int handle_out(void *ctx, int kind, void *native, uint64_t *wire)
{
    (void)ctx;
    if (nhandles == 16)
        return -ENOSPC;
    handles[nhandles] = native;
    handle_kinds[nhandles++] = kind;
    *wire = (uint64_t)(uintptr_t)native;
    return 0;
}

static int devptr_in(void *ctx, uint64_t addr, void **native)
{
    (void)ctx;
    if (addr < (uintptr_t)device_mem || addr >= (uintptr_t)device_mem + sizeof(device_mem))
        return -EFAULT;
    *native = (void *)(uintptr_t)addr;
    return 0;
}

/* The session's device memory is device_mem: a span must lie inside it. */
static uint64_t last_range_len;

static int range_in(void *ctx, uint64_t addr, uint64_t len, void **native)
{
    uint64_t base = (uintptr_t)device_mem;

    (void)ctx;
    last_range_len = len;
    if (addr < base || addr - base > sizeof(device_mem) || len > sizeof(device_mem) - (addr - base))
        return -EFAULT;
    *native = (void *)(uintptr_t)addr;
    return 0;
}

static const struct vgpu_replay_ops ops = { handle_in, handle_out, devptr_in, range_in };

/* ---- the shim runtime, over a loopback ---- */
int vgpu_shim_invoke(struct vgpu_call_req *req, struct vgpu_call_rep *rep)
{
    const struct vgpu_dispatch_entry *e = vgpu_mini_dispatch_find(req->call_id);
    struct vgpu_replay r = { .ctx = NULL, .ops = &ops, .nseg_in = req->nseg, .seg_in = req->seg,
                             .out_budget = VGPU_REPLY_MAX_BYTES };
    char sym[128];
    void (*fn)(void);
    int status = 0, rc;

    last_flags = req->flags;
    if (!e)
        return miniErrorInvalid;
    snprintf(sym, sizeof(sym), "real_%s", e->name);
    *(void **)&fn = dlsym(RTLD_DEFAULT, sym);
    rc = vgpu_replay_call(e, fn, &r, req->args, req->args_len, &status);
    if (rc) {
        replay_errors++;
        last_replay_error = rc;
        vgpu_replay_release(&r);
        return miniErrorInvalid;
    }
    if (status == 0) {
        assert_int_equal(r.nseg_out, req->nout);
        for (int i = 0; i < r.nseg_out; i++) {
            assert_int_equal(r.seg_out[i].len, req->out[i].len);
            memcpy(req->out[i].dst, r.seg_out[i].data, r.seg_out[i].len);
        }
    }
    rep->priv = malloc(r.ret_len + 1);
    memcpy(rep->priv, r.ret, r.ret_len);
    rep->ret = rep->priv;
    rep->ret_len = r.ret_len;
    vgpu_replay_release(&r);
    return status;
}

void vgpu_shim_rep_release(struct vgpu_call_rep *rep)
{
    free(rep->priv);
    rep->priv = NULL;
}

int vgpu_shim_unsupported(uint32_t call_id, const char *name, const char *reason)
{
    (void)call_id;
    (void)reason;
    unsupported_name = name;
    return miniErrorNotSupported;
}

int vgpu_shim_bad_reply(const struct vgpu_call_req *req)
{
    (void)req;
    return miniErrorInvalid;
}

int vgpu_shim_local_error(const struct vgpu_call_req *req, int neg_errno)
{
    (void)req;
    (void)neg_errno;
    return miniErrorInvalid;
}

/* ---- tests ---- */

static void test_scalars(void **state)
{
    int sum = 0;

    (void)state;
    assert_int_equal(miniAdd(2, 40, &sum), miniSuccess);
    assert_int_equal(sum, 42);
    /* A NULL output reaches the real function as NULL. */
    assert_int_equal(miniAdd(1, 1, NULL), miniErrorInvalid);
    assert_int_equal(replay_errors, 0);
    assert_int_equal(miniVersion(), 7);
}

static void test_struct_by_value(void **state)
{
    struct miniVec3 v = { 1, -2, 3 }, out = { 0 };

    (void)state;
    assert_int_equal(miniScale(3.0, v, &out), miniSuccess);
    assert_int_equal(out.x, 3);
    assert_int_equal(out.y, -6);
    assert_int_equal(out.z, 9);
    assert_int_equal(miniSetOrigin(&v), miniSuccess);
    assert_memory_equal(&mini_impl_origin, &v, sizeof(v));
}

static void test_out_struct(void **state)
{
    struct miniInfo info;

    (void)state;
    memset(&info, 0xff, sizeof(info));
    assert_int_equal(miniGetInfo(&info, 5), miniSuccess);
    assert_true(last_flags & VGPU_FN_CACHED);
    assert_string_equal(info.name, "unit5");
    assert_true(info.bytes == 1ull << 40);
    assert_int_equal(info.dims[2], 5);
    assert_int_equal(info.origin.x, -1);
    assert_int_equal(info.origin.z, 9);
    assert_true(info.scale == 0.25);
    assert_ptr_equal(info.base, (void *)0x1000);
}

static void test_handles(void **state)
{
    miniQueue_t q = NULL, q2 = NULL, pair[2];
    size_t depth = 0;
    miniTicket_t t = 0;

    (void)state;
    assert_int_equal(miniQueueCreate(&q, miniModeSafe), miniSuccess);
    assert_non_null(q);
    assert_int_equal(miniQueueDepth(q, &depth), miniSuccess);
    assert_int_equal(depth, 20);
    /* A handle the session never handed out is refused before the call. */
    assert_int_equal(miniQueueDepth((miniQueue_t)(uintptr_t)0xdead0, &depth), miniErrorInvalid);
    assert_int_equal(last_replay_error, -EINVAL);
    assert_int_equal(miniQueueCreate(&q2, miniModeFast), miniSuccess);
    pair[0] = q2;
    pair[1] = q;
    assert_int_equal(miniWait(q, pair, 2), miniSuccess); /* depths 20 + 10 + 20 */
    pair[1] = (miniQueue_t)(uintptr_t)0xbad;
    assert_int_equal(miniWait(q, pair, 2), miniErrorInvalid);
    assert_int_equal(miniLookup("abc", &t), miniSuccess);
    assert_true(t == 0x7003);
    assert_int_equal(miniLookup(NULL, &t), miniErrorInvalid);
    assert_int_equal(miniPost(q, 77), miniSuccess);
    assert_int_equal(mini_impl_posted, 77);
    assert_true(last_flags & VGPU_FN_ASYNC);
    assert_int_equal(miniQueueDestroy(q), miniSuccess);
}

static void test_counted_arrays(void **state)
{
    int values[4] = { 1, 2, 3, 4 };
    long long total = 0;
    float out[5] = { 0 };
    char name[12];

    (void)state;
    assert_int_equal(miniSum(values, 4, &total), miniSuccess);
    assert_int_equal(total, 10);
    assert_int_equal(miniFill(out, 5, 1.5f), miniSuccess);
    for (int i = 0; i < 5; i++)
        assert_true(out[i] == 1.5f + (float)i);
    memset(name, 'x', sizeof(name));
    assert_int_equal(miniName(name, (int)sizeof(name), 3), miniSuccess);
    assert_string_equal(name, "name-3");
    /* A negative count never reaches the wire. */
    assert_int_equal(miniSum(values, -1, &total), miniErrorInvalid);
}

static void test_bulk_and_devptr(void **state)
{
    unsigned char src[64], dst[32];
    miniQueue_t q = NULL;

    (void)state;
    for (int i = 0; i < 64; i++)
        src[i] = (unsigned char)i;
    assert_int_equal(miniWrite(device_mem + 16, src, sizeof(src)), miniSuccess);
    assert_memory_equal(device_mem + 16, src, sizeof(src));
    /* An address outside the session's device memory is refused. */
    assert_int_equal(miniWrite(dst, src, 4), miniErrorInvalid);
    assert_int_equal(last_replay_error, -EFAULT);
    assert_int_equal(miniQueueCreate(&q, miniModeFast), miniSuccess);
    assert_int_equal(miniRead(dst, sizeof(dst), q), miniSuccess);
    for (size_t i = 0; i < sizeof(dst); i++)
        assert_int_equal(dst[i], 10);
}

/* Every byte a call with an extent touches is checked, not just its first. */
static void test_extents(void **state)
{
    unsigned char src[64] = { 0 };
    unsigned char *end = device_mem + sizeof(device_mem);

    (void)state;
    /* Starts inside, runs past the end: refused before the call. */
    assert_int_equal(miniWrite(end - 8, src, 16), miniErrorInvalid);
    assert_int_equal(last_replay_error, -EFAULT);
    assert_int_equal(last_range_len, 16);
    assert_int_equal(miniWrite(end - 16, src, 16), miniSuccess);
    /* An empty span may sit at the end; a bare address may not. */
    assert_int_equal(miniWrite(end, src, 0), miniSuccess);
    assert_int_equal(miniZero(end - 8, 2), miniSuccess);
    assert_int_equal(last_range_len, 8);
    assert_int_equal(miniZero(end - 8, 3), miniErrorInvalid);
    assert_int_equal(last_replay_error, -EFAULT);
    assert_int_equal(miniZero(device_mem, -1), miniErrorInvalid);
    assert_int_equal(last_replay_error, -EINVAL);

    /* 2D: (height - 1) * pitch + width bytes. */
    memset(device_mem, 0, sizeof(device_mem));
    assert_int_equal(miniFill2D(device_mem, 32, 0x5a, 8, 8), miniSuccess);
    assert_int_equal(last_range_len, 7 * 32 + 8);
    assert_int_equal(device_mem[7 * 32 + 7], 0x5a);
    assert_int_equal(device_mem[7 * 32 + 8], 0);
    assert_int_equal(miniFill2D(device_mem, 32, 0, 8, 9), miniErrorInvalid);
    assert_int_equal(last_replay_error, -EFAULT);
    assert_int_equal(miniFill2D(device_mem, 32, 0, 0, 1000), miniSuccess);
    assert_int_equal(last_range_len, 0);
    /* Width beyond the pitch, and spans that overflow 64 bits. */
    assert_int_equal(miniFill2D(device_mem, 8, 0, 9, 2), miniErrorInvalid);
    assert_int_equal(last_replay_error, -EINVAL);
    assert_int_equal(miniFill2D(device_mem, (size_t)1 << 32, 0, 1, ((size_t)1 << 32) + 2),
                     miniErrorInvalid);
    assert_int_equal(last_replay_error, -EINVAL);
    assert_int_equal(miniFill2D(device_mem, SIZE_MAX, 0, SIZE_MAX, 2), miniErrorInvalid);
    assert_int_equal(last_replay_error, -EINVAL);
}

static void test_unsupported(void **state)
{
    (void)state;
    assert_int_equal(miniNotify(NULL, NULL), miniErrorNotSupported);
    assert_string_equal(unsupported_name, "miniNotify");
}

/* Hostile argument bytes straight into the generated decoders. */
static void test_decoder_rejects(void **state)
{
    const struct vgpu_dispatch_entry *fill = vgpu_mini_dispatch_find(VGPU_MINI_ID_miniFill);
    const struct vgpu_dispatch_entry *manual = vgpu_mini_dispatch_find(VGPU_MINI_ID_miniSpecial);
    /* field 2 (count) = 2^30: varint 0x80 0x80 0x80 0x80 0x04 */
    static const uint8_t huge[] = { 0x10, 0x80, 0x80, 0x80, 0x80, 0x04 };
    static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
    struct vgpu_replay r = { .ops = &ops, .out_budget = VGPU_REPLY_MAX_BYTES };
    int status;

    (void)state;
    assert_non_null(fill);
    assert_int_equal(vgpu_replay_call(fill, (void (*)(void))abort, &r, huge, sizeof(huge), &status),
                     -E2BIG);
    vgpu_replay_release(&r);
    memset(&r, 0, sizeof(r));
    r.ops = &ops;
    r.out_budget = VGPU_REPLY_MAX_BYTES;
    assert_int_equal(vgpu_replay_call(fill, (void (*)(void))abort, &r, garbage, sizeof(garbage),
                                      &status), -EBADMSG);
    vgpu_replay_release(&r);
    /* outputs beyond the call's share of the reply are refused before allocation */
    {
        static const uint8_t five[] = { 0x10, 0x05 };   /* count = 5 floats */

        memset(&r, 0, sizeof(r));
        r.ops = &ops;
        r.out_budget = 16;
        assert_int_equal(vgpu_replay_call(fill, (void (*)(void))abort, &r, five, sizeof(five),
                                          &status), -E2BIG);
        vgpu_replay_release(&r);
    }
    assert_int_equal(manual->state, VGPU_FN_MANUAL);
    assert_null(vgpu_mini_dispatch_find(0));
    assert_null(vgpu_mini_dispatch_find(VGPU_MINI_MAX_ID + 1));
    assert_string_equal(vgpu_mini_call_name(VGPU_MINI_ID_miniAdd), "miniAdd");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_struct_by_value),
        cmocka_unit_test(test_out_struct),
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_counted_arrays),
        cmocka_unit_test(test_bulk_and_devptr),
        cmocka_unit_test(test_extents),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_decoder_rejects),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
