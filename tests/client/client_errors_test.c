/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error state (shim/client/errors.c): owed errors kept per thread and
 * collected by it, the bound on how many are kept, and lookups in the
 * server's error table with its catch-all entry.
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

static void last_error_set_and_clear(void **state)
{
    (void)state;
    vgpu_errors_set(0);
    assert_int_equal(vgpu_errors_last(false), 0);
    vgpu_errors_set(9);
    vgpu_errors_set(0);             /* a success leaves the last error alone */
    assert_int_equal(vgpu_errors_last(true), 9);
    assert_int_equal(vgpu_errors_last(false), 0);
    vgpu_errors_set_device(3);
    assert_int_equal(vgpu_errors_device(), 3);
    vgpu_errors_set_device(0);
}

struct collect {
    struct vgpu_client *c;
    pthread_t self;
    int seen;
};

static void *collector(void *p)
{
    struct collect *a = p;

    pthread_mutex_lock(&a->c->lock);
    vgpu_owed_collect_locked(a->c);
    pthread_mutex_unlock(&a->c->lock);
    a->seen = vgpu_errors_last(false);
    return NULL;
}

/* Owed to this thread: at once; to another: kept (the latest wins) until it collects. */
static void owed_errors_reach_their_thread(void **state)
{
    struct vgpu_client *c = *state;
    struct collect a = { .c = c };
    pthread_t t;

    pthread_mutex_lock(&c->lock);
    vgpu_owe_error_locked(c, pthread_self(), 4);
    pthread_mutex_unlock(&c->lock);
    assert_int_equal(vgpu_errors_last(true), 4);

    /* the thread's id is known only once it runs: owe before it collects */
    pthread_mutex_lock(&c->lock);
    assert_int_equal(pthread_create(&t, NULL, collector, &a), 0);
    vgpu_owe_error_locked(c, t, 5);
    vgpu_owe_error_locked(c, t, 6);
    assert_int_equal(c->owed.n, 1);
    pthread_mutex_unlock(&c->lock);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.seen, 6);
    assert_int_equal(c->owed.n, 0);
    assert_int_equal(vgpu_errors_last(false), 0);
}

/* At most VGPU_OWED_MAX threads are owed; more are dropped (with a warning). */
static void owed_is_bounded(void **state)
{
    struct vgpu_client *c = *state;

    pthread_mutex_lock(&c->lock);
    for (uintptr_t i = 1; i <= VGPU_OWED_MAX + 3; i++)
        vgpu_owe_error_locked(c, (pthread_t)(i * 4096), 1);
    pthread_mutex_unlock(&c->lock);
    assert_int_equal(c->owed.n, VGPU_OWED_MAX);
}

static void table_lookup(void **state)
{
    struct vgpu_client *c = *state;
    struct vgpu_errtab *t = &c->errtab;

    assert_null(vgpu_errtab_lookup(t, 1, false));
    t->n = 2;
    t->code = calloc(2, sizeof(*t->code));
    t->name = calloc(2, sizeof(*t->name));
    t->text = calloc(2, sizeof(*t->text));
    t->code[0] = 1;
    t->name[0] = strdup("errorOne");
    t->text[0] = strdup("the first error");
    t->code[1] = -1;
    t->name[1] = strdup("unrecognized");
    t->text[1] = NULL;
    assert_string_equal(vgpu_errtab_lookup(t, 1, false), "errorOne");
    assert_string_equal(vgpu_errtab_lookup(t, 1, true), "the first error");
    assert_string_equal(vgpu_errtab_lookup(t, 2, false), "unrecognized");
    assert_null(vgpu_errtab_lookup(t, 2, true));
    assert_int_equal(vgpu_client_init_status(c), 0);
    t->init_status = 35;
    assert_int_equal(vgpu_client_init_status(c), 35);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(last_error_set_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(owed_errors_reach_their_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(owed_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(table_lookup, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
