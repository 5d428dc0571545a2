/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-server logging: leveled lines on stderr, prefixed with the pid.  A
 * session keeps the server's stderr as vgpu_log_fd: its own fd 2 takes
 * what the program's kernels print (devout.c).  When stderr is journald's
 * stream (systemd says so in JOURNAL_STREAM, the device and inode of the
 * stream), each line starts with its syslog priority ("<3>" for an error,
 * sd-daemon(3)), so the journal files it at that priority.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int journal = -1;      /* is the log journald's stream?  -1: not decided yet */

/* Decided on the log's own fd (a session's fd 2 is its kernels' output, devout.c). */
static int to_journal(void)
{
    const char *js;
    unsigned long long dev, ino;
    struct stat st;

    if (journal >= 0)
        return journal;
    js = getenv("JOURNAL_STREAM");
    journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(vgpu_log_fd, &st) == 0 &&
              (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    return journal;
}

void vgpu_log_init(void)
{
    to_journal();                /* decided once, before the first fork: every process agrees */
}

void vgpu_log(int level, const char *fmt, ...)
{
    static const char *const prio[] = { "<3>", "<4>", "<6>", "<7>" };  /* err, warning, info, debug */
    char line[1024];
    va_list ap;
    int n;

    if (level > vgpu_log_level)
        return;
    n = snprintf(line, sizeof(line), "%svgpu-server[%d] %s: ", to_journal() ? prio[level] : "",
                 (int)getpid(), names[level]);
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    /* one write per line so lines of concurrent sessions do not interleave */
    if (write(vgpu_log_fd, line, strlen(line)) < 0)
        return;
}
