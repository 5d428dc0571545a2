/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A confined session (server/contain.c) against its neighbours, as one
 * taken over would try: each test forks a session that confines itself as
 * vgpu_session_run() does and then attacks a sibling session (another VM's),
 * the scheduler's policy area and its parent.  Writes to anything but its
 * own page must fault, the read-only view must not become writable by any
 * route (mprotect, a new mapping of the memfd, mremap of its own page),
 * signals and tracing of any other process must fail with EPERM, and the
 * parent's memory must not open; what a CUDA runtime needs (threads, fork,
 * signals to itself) must still work.  Each child reports the first step
 * that went wrong as its exit status.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "contain.h"
#include "sched_internal.h"

static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
    siglongjmp(fault_jmp, sig);
}

/* Does a 32-bit write to p fault? */
static bool write_faults(volatile uint32_t *p, uint32_t v)
{
    struct sigaction sa = { .sa_handler = on_fault }, old_segv, old_bus;
    bool faulted;

    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    if (sigsetjmp(fault_jmp, 1) == 0) {
        *p = v;
        faulted = false;
    } else {
        faulted = true;
    }
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    return faulted;
}

/* A session of vm that joins and then sleeps until killed: the victim. */
static pid_t victim(uint32_t vm)
{
    int p[2];
    pid_t pid;
    char c;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct vgpu_sched_join j = { .vm_id = vm, .pool = 'A', .priority = VGPU_PRIO_HIGH,
                                     .client = "victim" };

        if (vgpu_sched_join(&j) < 0)
            _exit(3);
        vgpu_sched_charge(VGPU_HELD_MEMORY, 4096, 0);
        if (write(p[1], "j", 1) != 1)
            _exit(4);
        for (;;)
            pause();
    }
    close(p[1]);
    assert_int_equal(read(p[0], &c, 1), 1);
    close(p[0]);
    return pid;
}

static void end_victim(pid_t v)
{
    int st;

    /* still alive and untouched after the attack */
    assert_int_equal(waitpid(v, &st, WNOHANG), 0);
    kill(v, SIGKILL);
    assert_int_equal(waitpid(v, &st, 0), v);
    vgpu_sched_reap(v);
}

static int slot_of(const struct vgpu_sched_shared *sh, pid_t pid)
{
    for (int i = 0; i < VGPU_SCHED_MAX_SESSIONS; i++)
        if (sh->pol.p.id[i].pid == pid)
            return i;
    return -1;
}

/* Runs attack(arg) in a session of vm 1 that confined itself; returns its exit status. */
static int run_confined(int (*attack)(pid_t), pid_t arg)
{
    pid_t pid = fork();
    int st;

    assert_true(pid >= 0);
    if (pid == 0) {
        struct vgpu_identity who = { .vm_id = 1, .pool = 'A', .priority = VGPU_PRIO_LOW };

        if (vgpu_contain_session(&who, true) < 0)
            _exit(99);
        _exit(attack(arg));
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st))
        return 200 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

/* The fd number the parent holds the memfd under, found as a process of the same uid would. */
static int parents_memfd(pid_t parent, char *path, size_t len)
{
    char dir[64], target[256];
    struct dirent *e;
    DIR *d;

    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)parent);
    d = opendir(dir);
    if (!d)
        return -errno;
    while ((e = readdir(d))) {
        ssize_t n;

        snprintf(path, len, "%s/%s", dir, e->d_name);
        n = readlink(path, target, sizeof(target) - 1);
        if (n > 0 && (target[n] = 0, strstr(target, "memfd:vgpu-sched"))) {
            closedir(d);
            return 0;
        }
    }
    closedir(d);
    return -ENOENT;
}

/* Tries every way to write the memfd at path: 0 when all fail as the seals say. */
static int write_through_fd(const char *path)
{
    int fd = open(path, O_RDWR);
    void *m;

    if (fd < 0)
        return 0;
    m = mmap(NULL, VGPU_SCHED_STRIDE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED || errno != EPERM)
        return 9;
    if (pwrite(fd, "x", 1, 0) >= 0)
        return 10;
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, VGPU_SCHED_STRIDE) == 0)
        return 11;
    if (ftruncate(fd, 0) == 0)
        return 12;
    close(fd);
    return 0;
}

static int attack_memory(pid_t v)
{
    const struct vgpu_sched_shared *sh = vgpu_sched_view();
    struct vgpu_sched_page *mine;
    size_t len;
    char path[512];
    int i = slot_of(sh, v);

    mine = vgpu_sched_own_page(&len);
    if (i < 0 || !mine)
        return 1;
    /* another session's page, its identity, the policy's parameters */
    if (!write_faults((volatile uint32_t *)&sh->page[i].s.queued, 1000))
        return 2;
    if (!write_faults((volatile uint32_t *)&sh->page[i].s.held[VGPU_HELD_MEMORY], 0))
        return 3;
    if (!write_faults((volatile uint32_t *)&sh->pol.p.id[i].vm_id, 1))
        return 4;
    if (!write_faults((volatile uint32_t *)&sh->pol.p.params.max_queued[VGPU_PRIO_LOW], 1000))
        return 5;
    /* its own page stays writable */
    if (write_faults(&mine->queued, 0))
        return 6;
    /* the view cannot be made writable */
    if (mprotect((void *)sh, VGPU_SCHED_STRIDE, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
        return 7;
    /* its own page cannot grow over its neighbour's */
    if (mremap(mine, len, 2 * len, MREMAP_MAYMOVE) != MAP_FAILED || errno != EPERM)
        return 8;
    /* nor can the memfd be written through another process's fd (test_memfd_sealed) */
    if (parents_memfd(getppid(), path, sizeof(path)) == 0)
        return write_through_fd(path);
    return 0;
}

static void test_writes_to_others_fault(void **state)
{
    pid_t v = victim(2);
    const struct vgpu_sched_shared *sh = vgpu_sched_view();
    int i = slot_of(sh, v);

    (void)state;
    assert_true(i >= 0);
    assert_int_equal(run_confined(attack_memory, v), 0);
    /* nothing of the victim's changed */
    assert_int_equal(sh->page[i].s.queued, 0);
    assert_int_equal(sh->page[i].s.held[VGPU_HELD_MEMORY], 4096);
    assert_int_equal(sh->pol.p.id[i].vm_id, 2);
    assert_int_equal(sh->pol.p.id[i].priority, VGPU_PRIO_HIGH);
    end_victim(v);
}

/* Sealed after the server mapped it: not even the server can map it writable again. */
static void test_memfd_sealed(void **state)
{
    char path[512];

    (void)state;
    assert_int_equal(parents_memfd(getpid(), path, sizeof(path)), 0);
    assert_int_equal(write_through_fd(path), 0);
}

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
    (void)sig;
    got_usr1 = 1;
}

static void *thread_main(void *arg)
{
    return arg;
}

/* What a runtime needs of its own process still works: signals to itself, threads, fork. */
static int own_process_works(void)
{
    static int token;
    pthread_t t;
    void *ret = NULL;
    pid_t c;
    int st;

    signal(SIGUSR1, on_usr1);
    if (raise(SIGUSR1) != 0 || !got_usr1)
        return 30;
    if (kill(getpid(), 0) != 0)
        return 31;
    if (pthread_create(&t, NULL, thread_main, &token) != 0 || pthread_join(t, &ret) != 0 ||
        ret != &token)
        return 32;
    c = fork();
    if (c == 0)
        _exit(7);
    if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
        return 33;
    return 0;
}

#define DENIED(call) ((call) == -1 && errno == EPERM)

static int attack_processes(pid_t v)
{
    pid_t parent = getppid();
    struct rlimit rl = { 1, 1 };
    char buf[8];
    struct iovec local = { buf, sizeof(buf) }, remote = { buf, sizeof(buf) };
    int p[2];

    if (!DENIED(kill(v, SIGKILL)) || !DENIED(kill(parent, SIGTERM)) || !DENIED(kill(0, SIGKILL)) ||
        !DENIED(kill(-1, SIGKILL)) || !DENIED(kill(-parent, SIGKILL)))
        return 11;
    if (!DENIED(syscall(SYS_tgkill, v, v, SIGKILL)) || !DENIED(syscall(SYS_tkill, v, SIGKILL)))
        return 12;
    if (!DENIED(syscall(SYS_pidfd_open, v, 0)))
        return 13;
    if (!DENIED(ptrace(PTRACE_ATTACH, v, NULL, NULL)) || !DENIED(ptrace(PTRACE_SEIZE, parent, NULL, NULL)))
        return 14;
    if (!DENIED(process_vm_readv(v, &local, 1, &remote, 1, 0)) ||
        !DENIED(process_vm_writev(parent, &local, 1, &remote, 1, 0)))
        return 15;
    if (!DENIED(prlimit(v, RLIMIT_NOFILE, &rl, NULL)) || prlimit(v, RLIMIT_NOFILE, NULL, &rl) != 0)
        return 16;
    if (pipe(p) != 0 || !DENIED(fcntl(p[0], F_SETOWN, v)) || fcntl(p[0], F_SETOWN, getpid()) != 0)
        return 17;
    if (!DENIED(unshare(CLONE_NEWUSER)) || !DENIED(setsid()) || !DENIED(setpgid(0, 0)))
        return 18;
    /* a liveness probe (signal 0) is all it may send another process */
    if (kill(v, 0) != 0)
        return 19;
    return own_process_works();
}

static void test_no_signals_or_tracing_of_others(void **state)
{
    pid_t v = victim(2);

    (void)state;
    assert_int_equal(run_confined(attack_processes, v), 0);
    end_victim(v);
}

/* The server's parent process, as a session sees it: its memory and environment do not open. */
static int attack_parent(pid_t parent)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%d/mem", (int)parent);
    if (open(path, O_RDWR) >= 0)
        return 21;
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)parent);
    if (open(path, O_RDONLY) >= 0)
        return 22;
    return 0;
}

static void test_parent_not_dumpable(void **state)
{
    pid_t server = fork();
    int st;

    (void)state;
    assert_true(server >= 0);
    if (server == 0) {
        /* the server: non-dumpable, then a session of its own */
        if (vgpu_contain_parent(true) < 0 || prctl(PR_GET_DUMPABLE) != 0)
            _exit(1);
        _exit(run_confined(attack_parent, getpid()));
    }
    assert_int_equal(waitpid(server, &st, 0), server);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* Containment off (debugging): the session still holds a slot and nothing is filtered. */
static void test_off_switch(void **state)
{
    pid_t pid = fork();
    int st;

    (void)state;
    if (pid == 0) {
        struct vgpu_identity who = { .vm_id = 3, .pool = 'A', .priority = VGPU_PRIO_LOW };
        struct vgpu_sched_join j = { .vm_id = 3, .pool = 'A', .client = "off" };
        int slot;

        if (vgpu_contain_session(&who, false) < 0)
            _exit(1);
        slot = vgpu_sched_join(&j);
        if (slot < 0 || !vgpu_sched_writable() || kill(getppid(), 0) != 0)
            _exit(2);
        vgpu_sched_leave();
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static int setup(void **state)
{
    struct vgpu_sched_params p;

    (void)state;
    vgpu_sched_params_default(&p);
    return vgpu_sched_init(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writes_to_others_fault),
        cmocka_unit_test(test_memfd_sealed),
        cmocka_unit_test(test_no_signals_or_tracing_of_others),
        cmocka_unit_test(test_parent_not_dumpable),
        cmocka_unit_test(test_off_switch),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
