/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Batches in flight (shim/client/flight.c): a reply that lists only the
 * failures settles the oldest flight, each failure owed to the thread that
 * made the call; a reply that does not answer owes -EPROTO to every call.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_internal.h"

static int setup(void **state)
{
    struct vgpu_client *c = malloc(sizeof(*c));

    assert_non_null(c);
    assert_int_equal(vgpu_client_init(c), 0);
    vgpu_errors_last(true);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    vgpu_client_destroy(*state);
    free(*state);
    return 0;
}

/* A flight of n calls with ids 100.. made by thread, pushed at the ring's tail. */
static void push_flight(struct vgpu_client *c, uint64_t seq, int n, pthread_t thread)
{
    struct vgpu_flight *fl = &c->flights.ring[(c->flights.first + c->flights.n) % VGPU_FLIGHTS_MAX];

    fl->seq = seq;
    fl->n = n;
    fl->calls = calloc((size_t)n, sizeof(*fl->calls));
    assert_non_null(fl->calls);
    for (int i = 0; i < n; i++)
        fl->calls[i] = (struct vgpu_flight_call){ 100u + (uint32_t)i, "call", thread, false };
    c->flights.n++;
}

struct reply {
    Vgpu__Wire__Envelope env;
    Vgpu__Wire__ResultBatch rb;
    Vgpu__Wire__Result res[4], *resp[4];
    struct vgpu_frame f;
};

/* A failures-only reply: call index[i] failed with status[i]. */
static void make_reply(struct reply *r, int n, const uint32_t *index, const uint32_t *id,
                       const int *status)
{
    vgpu__wire__envelope__init(&r->env);
    vgpu__wire__result_batch__init(&r->rb);
    for (int i = 0; i < n; i++) {
        vgpu__wire__result__init(&r->res[i]);
        r->res[i].index = index[i];
        r->res[i].call_id = id[i];
        r->res[i].status = status[i];
        r->resp[i] = &r->res[i];
    }
    r->rb.results = r->resp;
    r->rb.n_results = (size_t)n;
    r->rb.failures_only = true;
    r->env.body_case = VGPU__WIRE__ENVELOPE__BODY_RESULTS;
    r->env.results = &r->rb;
    memset(&r->f, 0, sizeof(r->f));
    r->f.env = &r->env;
}

static void failures_become_last_errors(void **state)
{
    struct vgpu_client *c = *state;
    struct reply r;
    const uint32_t index[] = { 1, 2 }, id[] = { 101, 102 };
    const int status[] = { 11, 12 };

    push_flight(c, 5, 3, pthread_self());
    make_reply(&r, 2, index, id, status);
    vgpu_flight_settle_locked(c, &r.f);
    assert_int_equal(c->flights.n, 0);
    assert_int_equal(c->flights.first, 1);
    /* the last failure of the batch is the thread's last error */
    assert_int_equal(vgpu_errors_last(true), 12);
}

static void other_threads_failures_are_owed(void **state)
{
    struct vgpu_client *c = *state;
    struct reply r;
    const uint32_t index[] = { 0 }, id[] = { 100 };
    const int status[] = { 33 };
    pthread_t other = (pthread_t)0x1234;

    push_flight(c, 5, 1, other);
    make_reply(&r, 1, index, id, status);
    vgpu_flight_settle_locked(c, &r.f);
    assert_int_equal(vgpu_errors_last(false), 0);
    assert_int_equal(c->owed.n, 1);
    assert_true(pthread_equal(c->owed.slot[0].thread, other));
    assert_int_equal(c->owed.slot[0].status, 33);
}

/* Each way a reply can fail to answer: every call of the flight gets -EPROTO. */
static void a_reply_that_does_not_answer(void **state)
{
    struct vgpu_client *c = *state;
    struct reply r;
    const uint32_t index_order[] = { 1, 0 }, id_order[] = { 101, 100 };
    const uint32_t index_range[] = { 3 }, id_range[] = { 103 };
    const uint32_t index_id[] = { 0 }, id_wrong[] = { 999 };
    const int st2[] = { 1, 1 }, st1[] = { 1 }, st_ok[] = { 0 };

    push_flight(c, 1, 2, pthread_self());
    make_reply(&r, 2, index_order, id_order, st2);          /* out of order */
    vgpu_flight_settle_locked(c, &r.f);
    assert_int_equal(vgpu_errors_last(true), -EPROTO);

    push_flight(c, 2, 2, pthread_self());
    make_reply(&r, 1, index_range, id_range, st1);          /* index past the batch */
    vgpu_flight_settle_locked(c, &r.f);
    assert_int_equal(vgpu_errors_last(true), -EPROTO);

    push_flight(c, 3, 2, pthread_self());
    make_reply(&r, 1, index_id, id_wrong, st1);             /* another call's id */
    vgpu_flight_settle_locked(c, &r.f);
    assert_int_equal(vgpu_errors_last(true), -EPROTO);

    push_flight(c, 4, 2, pthread_self());
    make_reply(&r, 1, index_id, id_order + 1, st_ok);       /* a success listed */
    vgpu_flight_settle_locked(c, &r.f);
    assert_int_equal(vgpu_errors_last(true), -EPROTO);

    push_flight(c, 5, 2, pthread_self());
    vgpu_flight_settle_locked(c, NULL);                     /* no reply could come */
    assert_int_equal(vgpu_errors_last(true), -EPROTO);
    assert_int_equal(c->flights.n, 0);
}

/* The ring wraps, and clearing frees what is still in flight. */
static void ring_wraps_and_clears(void **state)
{
    struct vgpu_client *c = *state;
    struct reply r;

    make_reply(&r, 0, NULL, NULL, NULL);
    for (int round = 0; round < 3 * VGPU_FLIGHTS_MAX; round++) {
        push_flight(c, (uint64_t)round, 1, pthread_self());
        if (c->flights.n == VGPU_FLIGHTS_MAX)
            vgpu_flight_settle_locked(c, &r.f);
    }
    assert_int_equal(c->flights.n, VGPU_FLIGHTS_MAX - 1);
    assert_int_equal(c->flights.first, (3 * VGPU_FLIGHTS_MAX - (VGPU_FLIGHTS_MAX - 1)) % VGPU_FLIGHTS_MAX);
    vgpu_flights_clear(&c->flights);
    assert_int_equal(c->flights.n, 0);
    assert_int_equal(vgpu_errors_last(false), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(failures_become_last_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(other_threads_failures_are_owed, setup, teardown),
        cmocka_unit_test_setup_teardown(a_reply_that_does_not_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(ring_wraps_and_clears, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
