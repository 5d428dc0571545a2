/* SPDX-License-Identifier: Apache-2.0 */
/* The queue pair's rings (wire/qp.c): order, wrapping, back-pressure, and bad peers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vgpu/qp.h"

#define RING (64u << 10)

struct pair {
    uint8_t *mem;
    struct vgpu_qp client, server;
};

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    uint64_t n = vgpu_qp_bytes(RING, RING);

    p->mem = malloc(n);
    assert_int_equal(vgpu_qp_create(&p->client, p->mem, n, RING, RING), 0);
    assert_int_equal(vgpu_qp_attach(&p->server, p->mem, n), 0);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;

    free(p->mem);
    free(p);
    return 0;
}

static void put(struct vgpu_qring *r, uint32_t len, uint8_t fill)
{
    int err;
    uint8_t *w = vgpu_qring_reserve(r, len, &err);

    assert_non_null(w);
    memset(w, fill, len);
    vgpu_qring_publish(r, len, VGPU_QP_FRAME);
}

static void take(struct vgpu_qring *r, uint32_t len, uint8_t fill)
{
    const uint8_t *d;
    uint32_t l, k;

    assert_int_equal(vgpu_qring_peek(r, &d, &l, &k), 0);
    assert_int_equal(l, len);
    assert_int_equal(k, VGPU_QP_FRAME);
    for (uint32_t i = 0; i < l; i++)
        assert_int_equal(d[i], fill);
    vgpu_qring_pop(r, l);
}

static void in_order_and_empty(void **state)
{
    struct pair *p = *state;
    const uint8_t *d;
    uint32_t l, k;

    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EAGAIN);
    put(&p->client.sub, 5, 1);
    put(&p->client.sub, 100, 2);
    put(&p->client.sub, 0, 3);
    assert_true(vgpu_qring_pending(&p->server.sub));
    take(&p->server.sub, 5, 1);
    take(&p->server.sub, 100, 2);
    take(&p->server.sub, 0, 3);
    assert_false(vgpu_qring_pending(&p->server.sub));
    /* the other direction is independent */
    put(&p->server.comp, 7, 9);
    take(&p->client.comp, 7, 9);
}

/* Records never split: one that would cross the end starts over after a WRAP. */
static void wraps_around(void **state)
{
    struct pair *p = *state;

    for (int round = 0; round < 50; round++) {
        uint32_t len = 1000 + (uint32_t)round * 777 % 9000;

        put(&p->client.sub, len, (uint8_t)round);
        put(&p->client.sub, len / 3, (uint8_t)(round + 1));
        take(&p->server.sub, len, (uint8_t)round);
        take(&p->server.sub, len / 3, (uint8_t)(round + 1));
    }
    assert_false(vgpu_qring_pending(&p->server.sub));
}

/* Between a WRAP and the record after it, the consumer sees "not yet", not a broken ring. */
static void wrap_before_record(void **state)
{
    struct pair *p = *state;
    const uint8_t *d;
    uint32_t l, k;
    uint8_t *w;
    int err;

    put(&p->client.sub, RING / 2 - 8, 1);
    take(&p->server.sub, RING / 2 - 8, 1);
    put(&p->client.sub, RING / 4, 2);
    take(&p->server.sub, RING / 4, 2);
    /* this one does not fit before the end: a WRAP goes there now, the record later */
    w = vgpu_qring_reserve(&p->client.sub, RING / 3, &err);
    assert_non_null(w);
    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EAGAIN);
    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EAGAIN);
    memset(w, 3, RING / 3);
    vgpu_qring_publish(&p->client.sub, RING / 3, VGPU_QP_FRAME);
    take(&p->server.sub, RING / 3, 3);
}

static void full_then_room(void **state)
{
    struct pair *p = *state;
    uint32_t len = 8000;
    int n = 0, err;

    uint8_t *w;

    while ((w = vgpu_qring_reserve(&p->client.sub, len, &err))) {
        memset(w, 0, len);
        vgpu_qring_publish(&p->client.sub, len, VGPU_QP_FRAME);
        n++;
    }
    assert_int_equal(err, 0);          /* full for now, not broken */
    assert_int_equal(n, (RING - 8) / (len + 8));
    /*
     * The end cannot hold it: it needs the start of the ring free too, and
     * room for the next header (cleared when it is published).
     */
    assert_true(RING % (len + 8) < len + 8);
    take(&p->server.sub, len, 0);
    assert_null(vgpu_qring_reserve(&p->client.sub, len, &err));
    assert_int_equal(err, 0);
    take(&p->server.sub, len, 0);
    put(&p->client.sub, len, 5);       /* after a WRAP, at the start */
    assert_null(vgpu_qring_reserve(&p->client.sub, len, &err));
    assert_int_equal(err, 0);
    for (int i = 0; i < n - 2; i++)
        take(&p->server.sub, len, 0);
    take(&p->server.sub, len, 5);
    assert_false(vgpu_qring_pending(&p->server.sub));
}

static void too_big(void **state)
{
    struct pair *p = *state;
    int err;

    assert_null(vgpu_qring_reserve(&p->client.sub, RING / 2, &err));
    assert_int_equal(err, -E2BIG);
    assert_non_null(vgpu_qring_reserve(&p->client.sub, vgpu_qring_max(&p->client.sub), &err));
}

/* The header word of a record: length, kind, and the position it stands at. */
static void set_head(struct vgpu_qring *r, uint32_t off, uint32_t len, uint32_t kind, uint32_t pos)
{
    uint64_t h = (uint64_t)pos << 32 | (uint64_t)kind << 24 | len;

    memcpy(r->data + off, &h, 8);
}

/* A client that writes nonsense gets -EPROTO, never a read outside the ring. */
static void bad_producer(void **state)
{
    struct pair *p = *state;
    const uint8_t *d;
    uint32_t l, k;

    put(&p->client.sub, 16, 1);
    take(&p->server.sub, 16, 1);
    /* the next record, at position 24 */
    put(&p->client.sub, 16, 2);
    set_head(&p->client.sub, 24, (1u << 24) - 1, VGPU_QP_FRAME, 24);   /* longer than the ring */
    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EPROTO);
    set_head(&p->client.sub, 24, 16, 77, 24);                          /* no such kind */
    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EPROTO);
    set_head(&p->client.sub, 24, 16, VGPU_QP_WRAP, 24);                /* a WRAP with a length */
    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EPROTO);
    /* an index that moved with no record where it should be */
    set_head(&p->client.sub, 24, 16, VGPU_QP_FRAME, 24 + RING);        /* a header of another lap */
    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EPROTO);
    /* the same with the index where it was: nothing yet, not a lie */
    __atomic_store_n(&p->server.hdr->sub_tail, 24, __ATOMIC_RELEASE);
    assert_false(vgpu_qring_pending(&p->server.sub));
    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EAGAIN);
    /* published properly after all */
    set_head(&p->client.sub, 24, 16, VGPU_QP_FRAME, 24);
    assert_true(vgpu_qring_pending(&p->server.sub));
    take(&p->server.sub, 16, 2);
}

/* Bytes left where the next header goes never pass for a record: publishing clears them. */
static void stale_bytes_cleared(void **state)
{
    struct pair *p = *state;
    const uint8_t *d;
    uint32_t l, k;

    set_head(&p->client.sub, 24, 16, VGPU_QP_FRAME, 24);   /* as a frame of an earlier lap might */
    put(&p->client.sub, 16, 1);                             /* at 0; the next goes at 24 */
    take(&p->server.sub, 16, 1);
    assert_false(vgpu_qring_ready(&p->server.sub));
    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EAGAIN);
}

/* A WRAP at the very start of the ring is a lie too. */
static void wrap_at_start(void **state)
{
    struct pair *p = *state;
    const uint8_t *d;
    uint32_t l, k;

    set_head(&p->client.sub, 0, 0, VGPU_QP_WRAP, 0);
    __atomic_store_n(&p->server.hdr->sub_tail, 8, __ATOMIC_RELEASE);
    assert_int_equal(vgpu_qring_peek(&p->server.sub, &d, &l, &k), -EPROTO);
}

static void bad_consumer(void **state)
{
    struct pair *p = *state;
    int err;

    /* fill the ring, so the producer must look at the consumer's index again */
    while (vgpu_qring_reserve(&p->server.comp, 8000, &err))
        vgpu_qring_publish(&p->server.comp, 8000, VGPU_QP_FRAME);
    assert_int_equal(err, 0);
    /* a client that claims to have taken more than was written */
    __atomic_store_n(&p->server.hdr->comp_head, 1u << 30, __ATOMIC_RELEASE);
    assert_null(vgpu_qring_reserve(&p->server.comp, 8000, &err));
    assert_int_equal(err, -EPROTO);
}

/* A pair laid out again over memory a previous one used starts empty (a guest's slot is reused). */
static void new_pair_over_old(void **state)
{
    struct pair *p = *state;
    uint64_t n = vgpu_qp_bytes(RING, RING);
    struct vgpu_qp c, sv;
    const uint8_t *d;
    uint32_t l, k;

    for (int i = 0; i < 10; i++) {
        put(&p->client.sub, 100, (uint8_t)i);
        put(&p->server.comp, 100, (uint8_t)i);
    }
    assert_int_equal(vgpu_qp_create(&c, p->mem, n, RING, RING), 0);
    assert_int_equal(vgpu_qp_attach(&sv, p->mem, n), 0);
    assert_false(vgpu_qring_pending(&sv.sub));
    assert_int_equal(vgpu_qring_peek(&sv.sub, &d, &l, &k), -EAGAIN);
    assert_false(vgpu_qring_pending(&c.comp));
    assert_int_equal(vgpu_qring_peek(&c.comp, &d, &l, &k), -EAGAIN);
}

static void attach_checks_sizes(void **state)
{
    uint64_t n = vgpu_qp_bytes(RING, RING);
    uint8_t *mem = calloc(1, n);
    struct vgpu_qp c, s;
    struct vgpu_qp_hdr *h = (struct vgpu_qp_hdr *)mem;

    (void)state;
    assert_int_equal(vgpu_qp_attach(&s, mem, n), -EINVAL);              /* no magic */
    assert_int_equal(vgpu_qp_create(&c, mem, n, RING, RING + 1), -EINVAL);
    assert_int_equal(vgpu_qp_create(&c, mem, n - 1, RING, RING), -EINVAL);
    assert_int_equal(vgpu_qp_create(&c, mem, n, RING, RING), 0);
    assert_int_equal(vgpu_qp_attach(&s, mem, n + 4096), -EINVAL);       /* sizes do not add up */
    h->comp_size = RING * 2;                                           /* changed behind our back */
    assert_int_equal(vgpu_qp_attach(&s, mem, n), -EINVAL);
    h->comp_size = RING;
    assert_int_equal(vgpu_qp_attach(&s, mem, n), 0);
    /* indices that are not record boundaries (a header would cross the ring's end) */
    h->comp_head = 2 * RING - 4;
    assert_int_equal(vgpu_qp_attach(&s, mem, n), -EINVAL);
    h->comp_head = 0;
    h->sub_tail = 12;
    assert_int_equal(vgpu_qp_attach(&s, mem, n), -EINVAL);
    h->sub_tail = 16;
    assert_int_equal(vgpu_qp_attach(&s, mem, n), 0);
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(in_order_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(wraps_around, setup, teardown),
        cmocka_unit_test_setup_teardown(wrap_before_record, setup, teardown),
        cmocka_unit_test_setup_teardown(full_then_room, setup, teardown),
        cmocka_unit_test_setup_teardown(too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_producer, setup, teardown),
        cmocka_unit_test_setup_teardown(wrap_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_bytes_cleared, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_consumer, setup, teardown),
        cmocka_unit_test_setup_teardown(new_pair_over_old, setup, teardown),
        cmocka_unit_test(attach_checks_sizes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
