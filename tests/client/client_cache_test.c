/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The answer cache (shim/client/cache.c): an answer is found again only for
 * the same call id, device, context and arguments, and handed back as a
 * copy that is released as any reply; answers cached per context are
 * forgotten when a call that changes contexts runs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_internal.h"

static void hits_only_the_same_question(void **state)
{
    struct vgpu_client c;
    const uint8_t args[] = { 1, 2, 3 }, other[] = { 1, 2, 4 }, ret[] = { 9, 8, 7, 6 };
    struct vgpu_call_req req = { .call_id = 5, .args = args, .args_len = sizeof(args) };
    struct vgpu_call_req diff = req;
    struct vgpu_call_rep rep = { .ret = ret, .ret_len = sizeof(ret) }, got = { 0 };
    const struct vgpu_cache_entry *e;

    (void)state;
    assert_int_equal(vgpu_client_init(&c), 0);
    assert_null(vgpu_cache_find(&c, &req, 0, 0));
    vgpu_cache_add(&c, &req, &rep, 0, 0);
    e = vgpu_cache_find(&c, &req, 0, 0);
    assert_non_null(e);
    assert_null(vgpu_cache_find(&c, &req, 1, 0));           /* another device */
    diff.call_id = 6;
    assert_null(vgpu_cache_find(&c, &diff, 0, 0));          /* another call */
    diff = req;
    diff.args = other;
    assert_null(vgpu_cache_find(&c, &diff, 0, 0));          /* other arguments */
    diff.args_len = 2;
    assert_null(vgpu_cache_find(&c, &diff, 0, 0));          /* shorter arguments */

    assert_int_equal(vgpu_cache_answer(e, &got), 0);
    assert_int_equal(got.ret_len, sizeof(ret));
    assert_memory_equal(got.ret, ret, sizeof(ret));
    assert_ptr_not_equal(got.ret, ret);
    vgpu_client_rep_release(&c, &got);
    assert_null(got.priv);
    vgpu_client_destroy(&c);
}

/* A cached call is answered without a connection; an uncached one is not. */
static void invoke_answers_from_the_cache(void **state)
{
    struct vgpu_client c;
    const uint8_t args[] = { 1 }, ret[] = { 42 };
    struct vgpu_call_req req = { .call_id = 5, .flags = VGPU_FN_CACHED, .name = "cached",
                                 .args = args, .args_len = sizeof(args) };
    struct vgpu_call_rep rep = { .ret = ret, .ret_len = sizeof(ret) }, got;

    (void)state;
    assert_int_equal(vgpu_client_init(&c), 0);
    c.conn.state = VGPU_CONN_FAILED;
    vgpu_cache_add(&c, &req, &rep, vgpu_errors_device(), 0);
    assert_int_equal(vgpu_client_invoke(&c, &req, &got), 0);
    assert_int_equal(got.ret_len, 1);
    assert_int_equal(got.ret[0], 42);
    vgpu_client_rep_release(&c, &got);
    req.flags = 0;
    assert_int_equal(vgpu_client_invoke(&c, &req, &got), -ENOTCONN);
    vgpu_client_rep_release(&c, &got);
    vgpu_errors_last(true);
    vgpu_client_destroy(&c);
}

/*
 * Per context: found under the thread's current context only, and dropped
 * (the plain cache kept) by a call marked as changing contexts, whatever
 * that call answered.
 */
static void per_context_answers(void **state)
{
    struct vgpu_client c;
    const uint8_t args[] = { 1 }, ret[] = { 7 };
    struct vgpu_call_req q = { .call_id = 8, .flags = VGPU_FN_CACHE_CTX, .name = "per context",
                               .args = args, .args_len = sizeof(args) };
    struct vgpu_call_req plain = { .call_id = 9, .flags = VGPU_FN_CACHED, .name = "plain",
                                   .args = args, .args_len = sizeof(args) };
    struct vgpu_call_req change = { .call_id = 10, .flags = VGPU_FN_CTX_CHANGE, .name = "change",
                                    .args = args, .args_len = sizeof(args) };
    struct vgpu_call_rep rep = { .ret = ret, .ret_len = sizeof(ret) }, got;

    (void)state;
    assert_int_equal(vgpu_client_init(&c), 0);
    c.conn.state = VGPU_CONN_FAILED;
    vgpu_errors_set_context(0x1000);
    vgpu_cache_add(&c, &q, &rep, vgpu_errors_device(), 0x1000);
    vgpu_cache_add(&c, &plain, &rep, vgpu_errors_device(), 0);
    assert_int_equal(vgpu_client_invoke(&c, &q, &got), 0);
    assert_int_equal(got.ret[0], 7);
    vgpu_client_rep_release(&c, &got);
    vgpu_errors_set_context(0x2000);                     /* another context: not known */
    assert_int_equal(vgpu_client_invoke(&c, &q, &got), -ENOTCONN);
    vgpu_client_rep_release(&c, &got);
    vgpu_errors_set_context(0x1000);
    assert_int_equal(vgpu_client_invoke(&c, &change, &got), -ENOTCONN);
    vgpu_client_rep_release(&c, &got);
    assert_null(vgpu_cache_find(&c, &q, vgpu_errors_device(), 0x1000));
    assert_non_null(vgpu_cache_find(&c, &plain, vgpu_errors_device(), 0));
    vgpu_errors_last(true);
    vgpu_errors_set_context(0);
    vgpu_client_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hits_only_the_same_question),
        cmocka_unit_test(invoke_answers_from_the_cache),
        cmocka_unit_test(per_context_answers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
