/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-server logging: leveled lines on stderr, prefixed with the pid.  A
 * session keeps the server's stderr as vgpu_log_fd: its own fd 2 takes
 * what the program's kernels print (devout.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "server_internal.h"

int vgpu_log_level = VGPU_LOG_WARN;
int vgpu_log_fd = 2;

static const char *const names[] = { "error", "warn", "info", "debug" };

int vgpu_log_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

void vgpu_log(int level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    int n;

    if (level > vgpu_log_level)
        return;
    n = snprintf(line, sizeof(line), "vgpu-server[%d] %s: ", (int)getpid(), names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    /* one write per line so lines of concurrent sessions do not interleave */
    if (write(vgpu_log_fd, line, strlen(line)) < 0)
        return;
}
