/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's log: one line on stderr per message, prefixed "vgpu: ", at
 * or above the level VGPU_LOG names (error, warn, info, debug; default
 * warn).  The level is read once from the environment; it is the one piece
 * of state outside struct vgpu_client, since the transports log before a
 * client exists, and every copy of this library reads the same variable.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

static int log_level = -1;     /* not read yet; a racing first read gives the same answer */

static int level_from_env(void)
{
    const char *v = getenv("VGPU_LOG");

    if (v && !strcmp(v, "error"))
        return VGPU_LOG_ERROR;
    if (v && !strcmp(v, "info"))
        return VGPU_LOG_INFO;
    if (v && !strcmp(v, "debug"))
        return VGPU_LOG_DEBUG;
    if (v && *v && strcmp(v, "warn"))
        fprintf(stderr, "vgpu: VGPU_LOG=%s is not a level (error, warn, info or debug); "
                "logging warnings and errors\n", v);
    return VGPU_LOG_WARN;
}

void vgpu_shim_log(int level, const char *fmt, ...)
{
    int max = __atomic_load_n(&log_level, __ATOMIC_RELAXED);
    va_list ap;

    if (max < 0) {
        max = level_from_env();
        __atomic_store_n(&log_level, max, __ATOMIC_RELAXED);
    }
    if (level > max)
        return;
    /* one line, whole: another thread's line (the flusher's) must not land inside it */
    flockfile(stderr);
    fputs("vgpu: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    funlockfile(stderr);
}
