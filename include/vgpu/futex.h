/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Waiting on a 32-bit word in memory shared between processes (futexes
 * without the private flag, so they work on MAP_SHARED mappings), and the
 * monotonic clock the waits are measured with.  Shared by the scheduler's
 * shared state and the shared-memory queue pair, on both sides.
 */
#ifndef VGPU_FUTEX_H
#define VGPU_FUTEX_H

#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Nanoseconds of CLOCK_MONOTONIC. */
static inline uint64_t vgpu_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wakes one process sleeping on w. */
static inline void vgpu_futex_wake(uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Sleeps while *w == val, at most timeout_ns (or until woken or a signal). */
static inline void vgpu_futex_wait(uint32_t *w, uint32_t val, uint64_t timeout_ns)
{
    struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000u),
                           .tv_nsec = (long)(timeout_ns % 1000000000u) };

    syscall(SYS_futex, w, FUTEX_WAIT, val, &ts, NULL, 0);
}

#endif
