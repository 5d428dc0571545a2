/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpuctl: prints what a running vgpu-server is doing, from its admin
 * socket: per session the VM, pool, priority, calls served, work queued on
 * the GPU, device memory and streams held; per pool its GPUs and queue
 * depths.  --json gives the same as one JSON object for scripts.
 *
 *   vgpuctl [--admin PATH] [--json]
 *
 * The admin socket is PATH.admin beside the server's first unix socket
 * unless the server was told otherwise; vgpuctl looks, in order, at
 * --admin, $VGPU_ADMIN, $VGPU_SERVER (unix:PATH -> PATH.admin) and
 * /tmp/vgpu.sock.admin.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vgpu/version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vgpuctl [--admin PATH] [--json] [--version]\n"
               "Shows the sessions, queues and pools of a running vgpu-server.\n");
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char *admin = getenv("VGPU_ADMIN"), *server = getenv("VGPU_SERVER");
    char derived[sizeof(sa.sun_path)];
    const char *req = "status\n";
    char buf[65536];
    ssize_t n;
    int fd, got = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            req = "status json\n";
        else if (!strcmp(argv[i], "--admin") && i + 1 < argc)
            admin = argv[++i];
        else if (!strcmp(argv[i], "--version")) {
            printf("vgpuctl %s\n", VGPU_VERSION);
            return 0;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!admin && server && !strncmp(server, "unix:", 5) &&
        (size_t)snprintf(derived, sizeof(derived), "%s.admin", server + 5) < sizeof(derived))
        admin = derived;
    if (!admin)
        admin = "/tmp/vgpu.sock.admin";
    if (strlen(admin) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "vgpuctl: admin socket path too long: %s\n", admin);
        return 1;
    }
    strcpy(sa.sun_path, admin);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        fprintf(stderr, "vgpuctl: cannot reach vgpu-server's admin socket %s: %s (%s)\n", admin,
                strerror(e),
                e == EACCES ? "run as the server's user, or as a member of its admin_group"
                            : "is vgpu-server running? give its socket with --admin PATH");
        return 1;
    }
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        fprintf(stderr, "vgpuctl: cannot send to %s: %s\n", admin, strerror(errno));
        return 1;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        fwrite(buf, 1, (size_t)n, stdout);
        got = 1;
    }
    close(fd);
    if (!got) {
        fprintf(stderr, "vgpuctl: %s closed without an answer\n", admin);
        return 1;
    }
    return 0;
}
