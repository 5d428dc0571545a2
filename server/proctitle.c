/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process titles: a session shows `vgpu-server: vm 7 pool A high` (and
 * its program) in ps and top, a device link `vgpu-server: link vm 7 ...`,
 * so an operator sees whose each process is.  Linux shows a process's
 * command line from the memory argv and environ occupy at start: main
 * hands argv over once (vgpu_proctitle_init), the environment is copied
 * elsewhere, and a title is written over that whole area.  The short name
 * (comm, 15 bytes: `top`, `/proc/PID/stat`) is set with PR_SET_NAME.
 * Nothing from libc offers this (setproctitle is BSD's; libbsd's needs the
 * same hand-over), hence this file.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "server_internal.h"

extern char **environ;

static char *area;       /* argv[0] to the end of the last contiguous string */
static size_t area_len;

void vgpu_proctitle_init(int argc, char **argv)
{
    char *end = argv[0] + strlen(argv[0]) + 1, **env;
    int n = 0;

    for (int i = 1; i < argc && argv[i] == end; i++)
        end = argv[i] + strlen(argv[i]) + 1;
    for (; environ[n]; n++)
        ;
    env = calloc((size_t)n + 1, sizeof(*env));
    if (!env)
        return;
    for (int i = 0; i < n; i++) {
        if (environ[i] == end)
            end = environ[i] + strlen(environ[i]) + 1;
        env[i] = strdup(environ[i]);
        if (!env[i])
            return;          /* the title stays as it is; environ untouched */
    }
    environ = env;
    area = argv[0];
    area_len = (size_t)(end - area);
}

void vgpu_proctitle_set(const char *fmt, ...)
{
    char title[256], comm[16];
    const char *c;
    size_t n;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(title, sizeof(title), fmt, ap);
    va_end(ap);
    /* comm: what follows "vgpu-server: ", 15 bytes of it ("vm 7 pool A hig") */
    c = !strncmp(title, "vgpu-server: ", 13) ? title + 13 : title;
    n = strnlen(c, sizeof(comm) - 1);
    memcpy(comm, c, n);
    comm[n] = '\0';
    prctl(PR_SET_NAME, comm, 0, 0, 0);
    if (!area || area_len < 2)
        return;
    memset(area, 0, area_len);
    snprintf(area, area_len, "%s", title);
}
