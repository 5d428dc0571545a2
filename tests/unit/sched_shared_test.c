/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scheduler's shared state (server/sched.c) across real processes, as
 * sessions use it: a high-priority session is granted at once while a
 * low-priority one holds work; a low waiter is granted only after the
 * high class's work ended and its hold ran out; a session killed while it
 * holds work or waits frees its place; a low session under a high one that
 * never stops still gets through (starvation rule); per-VM limits count
 * every session of the VM.  Every test runs twice: with sessions as the
 * scheduler alone makes them, and confined as the server's are
 * (server/contain.c: only their own page writable, seccomp).  A session
 * that lies in its own page (any values) delays nobody of another VM and
 * refuses only its own VM's allocations.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "contain.h"
#include "sched_internal.h"
#include "vgpu/futex.h"

#define MS 1000000ull

static bool confined;                 /* children confine themselves as sessions do */

/* What a session taken over could publish: always waiting, since forever, the GPU full. */
static void lie(void)
{
    size_t len;
    struct vgpu_sched_page *p = vgpu_sched_own_page(&len);

    p->queued = UINT32_MAX;
    p->waiting = 1;
    p->since_ns = 0;
    p->active_ns = UINT64_MAX;
    p->held[VGPU_HELD_MEMORY] = UINT64_MAX;
    p->held[VGPU_HELD_STREAMS] = UINT64_MAX;
}

/* A child session: joins with prio, then follows one-byte commands on cmd. */
struct child {
    pid_t pid;
    int cmd, ack;
};

static struct child spawn(uint8_t prio, uint32_t vm)
{
    int c[2], a[2];
    struct child ch;

    assert_int_equal(pipe(c), 0);
    assert_int_equal(pipe(a), 0);
    ch.pid = fork();
    assert_true(ch.pid >= 0);
    if (ch.pid == 0) {
        struct vgpu_sched_join j = { .vm_id = vm, .pool = 'A', .priority = prio, .client = "t" };
        char op;
        uint64_t t;

        close(c[1]);
        close(a[0]);
        if (confined) {
            struct vgpu_identity who = { .vm_id = vm, .pool = 'A', .priority = prio };

            if (vgpu_contain_session(&who, true) < 0)
                _exit(5);
        }
        if (vgpu_sched_join(&j) < 0)
            _exit(3);
        while (read(c[0], &op, 1) == 1) {
            switch (op) {
            case 'a':       /* acquire; answers the time of the grant */
                vgpu_sched_acquire();
                t = vgpu_mono_ns();
                if (write(a[1], &t, sizeof(t)) != sizeof(t))
                    _exit(4);
                continue;
            case 'r':
                vgpu_sched_release(1);
                break;
            case 'm':       /* charge 40 MiB against a 100 MiB limit */
                t = (uint64_t)vgpu_sched_charge(VGPU_HELD_MEMORY, 40 << 20, 100 << 20);
                if (write(a[1], &t, sizeof(t)) != sizeof(t))
                    _exit(4);
                continue;
            case 's':       /* alone on its GPU? */
                t = vgpu_sched_alone();
                if (write(a[1], &t, sizeof(t)) != sizeof(t))
                    _exit(4);
                continue;
            case 'f':       /* hammer: acquire and release for 300 ms */
                for (uint64_t end = vgpu_mono_ns() + 300 * MS; vgpu_mono_ns() < end;) {
                    vgpu_sched_acquire();
                    vgpu_sched_release(1);
                }
                break;
            case 'L':       /* lie: the worst values in its own page */
                lie();
                break;
            case 'q':
                vgpu_sched_leave();
                _exit(0);
            }
            t = 0;
            if (write(a[1], &t, sizeof(t)) != sizeof(t))
                _exit(4);
        }
        _exit(0);
    }
    close(c[0]);
    close(a[1]);
    ch.cmd = c[1];
    ch.ack = a[0];
    return ch;
}

static void send_op(struct child *ch, char op)
{
    assert_int_equal(write(ch->cmd, &op, 1), 1);
}

static uint64_t wait_ack(struct child *ch)
{
    uint64_t t = 0;

    assert_int_equal(read(ch->ack, &t, sizeof(t)), (ssize_t)sizeof(t));
    return t;
}

static void finish(struct child *ch)
{
    int st;

    send_op(ch, 'q');
    assert_int_equal(waitpid(ch->pid, &st, 0), ch->pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    vgpu_sched_reap(ch->pid);
    close(ch->cmd);
    close(ch->ack);
}

/* Has the child answered within ms? */
static int answered(struct child *ch, int ms)
{
    fd_set fds;
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

    FD_ZERO(&fds);
    FD_SET(ch->ack, &fds);
    return select(ch->ack + 1, &fds, NULL, NULL, &tv) > 0;
}

static int setup(void **state)
{
    static int done;
    struct vgpu_sched_params p;

    (void)state;
    if (!done) {
        vgpu_sched_params_default(&p);
        p.hold_ns = 100 * MS;
        p.starve_ns = 1000 * MS;
        if (vgpu_sched_init(&p))
            return -1;
        done = 1;
    }
    return 0;
}

static void test_priority_and_hold(void **state)
{
    struct child lo1 = spawn(VGPU_PRIO_LOW, 1), hi = spawn(VGPU_PRIO_HIGH, 2),
                 lo2 = spawn(VGPU_PRIO_LOW, 3);
    uint64_t released, granted;

    (void)state;
    /* low holds work on the GPU; high is granted anyway, at once */
    send_op(&lo1, 'a');
    wait_ack(&lo1);
    send_op(&hi, 'a');
    assert_true(answered(&hi, 2000));
    wait_ack(&hi);
    /* a second low waits while high has work */
    send_op(&lo2, 'a');
    assert_false(answered(&lo2, 300));
    /* high's work ends: low still waits out the 100 ms hold */
    released = vgpu_mono_ns();
    send_op(&hi, 'r');
    wait_ack(&hi);
    assert_true(answered(&lo2, 3000));
    granted = wait_ack(&lo2);
    assert_true(granted - released >= 90 * MS);
    send_op(&lo1, 'r');
    wait_ack(&lo1);
    send_op(&lo2, 'r');
    wait_ack(&lo2);
    finish(&lo1);
    finish(&hi);
    finish(&lo2);
}

/* A session is alone on its GPU until another joins it, and again once that one has gone. */
static void test_alone_on_its_gpu(void **state)
{
    struct child a = spawn(VGPU_PRIO_LOW, 4), b;
    int st;

    (void)state;
    send_op(&a, 's');
    assert_int_equal(wait_ack(&a), 1);
    b = spawn(VGPU_PRIO_HIGH, 5);
    send_op(&b, 's');
    assert_int_equal(wait_ack(&b), 0);
    send_op(&a, 's');
    assert_int_equal(wait_ack(&a), 0);
    /* killed, and reaped: its place is free again */
    kill(b.pid, SIGKILL);
    waitpid(b.pid, &st, 0);
    vgpu_sched_reap(b.pid);
    close(b.cmd);
    close(b.ack);
    send_op(&a, 's');
    assert_int_equal(wait_ack(&a), 1);
    finish(&a);
}

static void test_killed_session_frees_its_place(void **state)
{
    struct child hi = spawn(VGPU_PRIO_HIGH, 2), lo = spawn(VGPU_PRIO_LOW, 3);
    int st;

    (void)state;
    send_op(&hi, 'a');
    wait_ack(&hi);
    send_op(&lo, 'a');
    assert_false(answered(&lo, 200));
    /* high dies with its work queued: the reaper frees it, low goes after the hold */
    kill(hi.pid, SIGKILL);
    waitpid(hi.pid, &st, 0);
    vgpu_sched_reap(hi.pid);
    assert_true(answered(&lo, 3000));
    wait_ack(&lo);
    send_op(&lo, 'r');
    wait_ack(&lo);
    finish(&lo);
    close(hi.cmd);
    close(hi.ack);
}

static void test_no_starvation(void **state)
{
    struct child hi = spawn(VGPU_PRIO_HIGH, 2), lo = spawn(VGPU_PRIO_LOW, 3);
    uint64_t asked, granted;

    (void)state;
    /* high keeps its class busy without a pause; low still gets one grant */
    send_op(&hi, 'a');
    wait_ack(&hi);
    asked = vgpu_mono_ns();
    send_op(&lo, 'a');
    assert_true(answered(&lo, 5000));
    granted = wait_ack(&lo);
    assert_true(granted - asked >= 900 * MS);   /* starve_ns is 1 s here */
    send_op(&lo, 'r');
    wait_ack(&lo);
    send_op(&hi, 'r');
    wait_ack(&hi);
    finish(&hi);
    finish(&lo);
}

static void test_contended_hammer(void **state)
{
    struct child a = spawn(VGPU_PRIO_MEDIUM, 5), b = spawn(VGPU_PRIO_MEDIUM, 6);

    (void)state;
    /* two sessions of one class racing on the lock: both finish, nothing lost */
    send_op(&a, 'f');
    send_op(&b, 'f');
    assert_true(answered(&a, 10000));
    assert_true(answered(&b, 10000));
    wait_ack(&a);
    wait_ack(&b);
    finish(&a);
    finish(&b);
}

static void test_vm_limit_spans_sessions(void **state)
{
    struct child a = spawn(VGPU_PRIO_LOW, 42), b = spawn(VGPU_PRIO_LOW, 42),
                 other = spawn(VGPU_PRIO_LOW, 43);

    (void)state;
    send_op(&a, 'm');
    assert_int_equal((int64_t)wait_ack(&a), 0);          /* 40 of 100 */
    send_op(&b, 'm');
    assert_int_equal((int64_t)wait_ack(&b), 0);          /* 80 of 100 */
    send_op(&a, 'm');
    assert_int_equal((int64_t)wait_ack(&a), -ENOMEM);    /* 120: refused */
    send_op(&other, 'm');
    assert_int_equal((int64_t)wait_ack(&other), 0);      /* another VM's budget */
    finish(&b);                                          /* b's 40 go with it */
    send_op(&a, 'm');
    assert_int_equal((int64_t)wait_ack(&a), 0);
    finish(&a);
    finish(&other);
}

/*
 * A low session of vm 50 lies: another VM's high, medium and low sessions
 * are granted at once and charge memory as before; its own VM's next
 * allocation is refused.
 */
static void test_lying_session_hurts_only_its_vm(void **state)
{
    struct child liar = spawn(VGPU_PRIO_LOW, 50), mate = spawn(VGPU_PRIO_LOW, 50),
                 hi = spawn(VGPU_PRIO_HIGH, 51), me = spawn(VGPU_PRIO_MEDIUM, 52),
                 lo = spawn(VGPU_PRIO_LOW, 53);
    struct child *honest[] = { &hi, &me, &lo };

    (void)state;
    send_op(&liar, 'L');
    wait_ack(&liar);
    for (int i = 0; i < 3; i++) {
        send_op(honest[i], 'a');
        assert_true(answered(honest[i], 1000));
        wait_ack(honest[i]);
        send_op(honest[i], 'r');
        wait_ack(honest[i]);
        send_op(honest[i], 'm');
        assert_int_equal((int64_t)wait_ack(honest[i]), 0);
    }
    send_op(&mate, 'm');
    assert_int_equal((int64_t)wait_ack(&mate), -ENOMEM);
    finish(&liar);
    finish(&mate);
    finish(&hi);
    finish(&me);
    finish(&lo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_priority_and_hold, setup),
        cmocka_unit_test_setup(test_killed_session_frees_its_place, setup),
        cmocka_unit_test_setup(test_alone_on_its_gpu, setup),
        cmocka_unit_test_setup(test_no_starvation, setup),
        cmocka_unit_test_setup(test_contended_hammer, setup),
        cmocka_unit_test_setup(test_vm_limit_spans_sessions, setup),
        cmocka_unit_test_setup(test_lying_session_hurts_only_its_vm, setup),
    };
    int failed = cmocka_run_group_tests_name("unconfined", tests, NULL, NULL);

    confined = true;
    return failed + cmocka_run_group_tests_name("confined", tests, NULL, NULL);
}
