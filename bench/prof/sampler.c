/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sampling profiler to preload where perf is not installed (the GPU
 * machine): every SIGPROF (each millisecond of the process's CPU time)
 * takes the interrupted instruction's address; every 512 samples, and at
 * exit, the process appends its memory map and the addresses to
 * /tmp/vgpu-prof.PID.  bench/prof/report.py sums them by library and, for
 * the files it is given, by function.
 *
 *   VGPU_PROF=self LD_PRELOAD=libvgpu_prof.so PROGRAM    the process itself
 *   VGPU_PROF=children LD_PRELOAD=... vgpu-server ...    each forked child
 *                                                        (a session), not
 *                                                        the parent
 *
 * Only CPU time is sampled: time a process sleeps or waits does not show.
 * A child that ends with _exit() keeps its last partial chunk unwritten.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define CHUNK 512

static uint64_t pcs[CHUNK];
static volatile sig_atomic_t npcs;

/* write() whose result is looked at (a profile is best effort) */
static void put(int fd, const void *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);

        if (w <= 0)
            return;
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

/* Async-signal-safe: open, read, write, close and our own formatting only. */
static void dump(void)
{
    char path[64], buf[4096], hex[20];
    int fd, mf;
    ssize_t m;

    snprintf(path, sizeof(path), "/tmp/vgpu-prof.%d", (int)getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    put(fd, "MAPS\n", 5);
    mf = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    while (mf >= 0 && (m = read(mf, buf, sizeof(buf))) > 0)
        put(fd, buf, (size_t)m);
    if (mf >= 0)
        close(mf);
    put(fd, "PCS\n", 4);
    for (int i = 0; i < npcs; i++) {
        int k = (int)sizeof(hex);

        hex[--k] = '\n';
        for (uint64_t v = pcs[i]; k == (int)sizeof(hex) - 1 || v; v >>= 4)
            hex[--k] = "0123456789abcdef"[v & 15];
        put(fd, hex + k, sizeof(hex) - (size_t)k);
    }
    close(fd);
    npcs = 0;
}

static void on_prof(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si;
    pcs[npcs++] = (uint64_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
    if (npcs == CHUNK)
        dump();
}

/*
 * A POSIX timer on the process's CPU time, not setitimer(): an interval
 * timer outlives execve() and would kill the next program with SIGPROF
 * before its handler exists; a POSIX timer is deleted there.
 */
static void arm(void)
{
    struct sigaction sa;
    struct sigevent ev;
    struct itimerspec it = { { 0, 1000000 }, { 0, 1000000 } };
    timer_t t;

    memset(&sa, 0, sizeof(sa));
    memset(&ev, 0, sizeof(ev));
    npcs = 0;
    sa.sa_sigaction = on_prof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGPROF, &sa, NULL);
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = SIGPROF;
    if (timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &t) == 0)
        timer_settime(t, 0, &it, NULL);
}

__attribute__((destructor)) static void fini(void)
{
    if (npcs)
        dump();
}

__attribute__((constructor)) static void init(void)
{
    const char *v = getenv("VGPU_PROF");

    if (v && !strcmp(v, "self"))
        arm();
    else if (v && !strcmp(v, "children"))
        pthread_atfork(NULL, NULL, arm);
}
