/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpuctl: prints what a running vgpu-server is doing, from its admin
 * socket: the server's version and uptime; per session the VM, pool,
 * priority, calls served, work queued on the GPU, device memory (MiB) and
 * streams held; per device link (a VM's QEMU) its identity, channels and
 * uptime; per VM its sessions, memory and streams against its limits; per
 * pool its GPUs and queue depths; a warning for a vm_id two links say.
 * --json gives the same as one
 * JSON object for scripts (with a timestamp), --prometheus as Prometheus
 * metrics (for node-exporter's textfile collector); -l N prints it again
 * every N seconds, as nvidia-smi -l does.
 *
 *   vgpuctl [--admin PATH] [--json | --prometheus] [-l SECONDS] [--version]
 *
 * The admin socket is PATH.admin beside the server's first unix socket
 * unless the server was told otherwise; vgpuctl looks, in order, at
 * --admin, $VGPU_ADMIN, $VGPU_SERVER (unix:PATH -> PATH.admin) and
 * /tmp/vgpu.sock.admin.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vgpu/version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vgpuctl [--admin PATH] [--json | --prometheus] [-l SECONDS] [--version]\n"
               "Shows the sessions, VMs, queues and pools of a running vgpu-server.\n"
               "  --json        one JSON object (version, timestamp, sessions, vms, pools)\n"
               "  --prometheus  Prometheus text format (node-exporter's textfile collector)\n"
               "  -l, --loop N  again every N seconds until interrupted\n");
}

/* One request, its answer to stdout.  0, or 1 (said why). */
static int ask(const char *admin, const char *req)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char buf[65536];
    ssize_t n;
    int fd, got = 0;

    if (strlen(admin) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "vgpuctl: admin socket path too long: %s\n", admin);
        return 1;
    }
    strcpy(sa.sun_path, admin);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        fprintf(stderr, "vgpuctl: cannot reach vgpu-server's admin socket %s: %s (%s)\n", admin,
                strerror(e),
                e == EACCES ? "run as the server's user, or as a member of its admin_group"
                            : "is vgpu-server running? give its socket with --admin PATH");
        if (fd >= 0)
            close(fd);
        return 1;
    }
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        fprintf(stderr, "vgpuctl: cannot send to %s: %s\n", admin, strerror(errno));
        close(fd);
        return 1;
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        fwrite(buf, 1, (size_t)n, stdout);
        got = 1;
    }
    close(fd);
    fflush(stdout);
    if (!got) {
        fprintf(stderr, "vgpuctl: %s closed without an answer\n", admin);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "admin", required_argument, NULL, 'a' },
        { "json", no_argument, NULL, 'j' },
        { "prometheus", no_argument, NULL, 'p' },
        { "loop", required_argument, NULL, 'l' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *admin = getenv("VGPU_ADMIN"), *server = getenv("VGPU_SERVER");
    char derived[108];
    const char *req = "status\n";
    long every = 0;
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': admin = optarg; break;
        case 'j': req = "status json\n"; break;
        case 'p': req = "status prometheus\n"; break;
        case 'l':
            every = strtol(optarg, &end, 10);
            if (*end || every < 1 || every > 86400) {
                fprintf(stderr, "vgpuctl: -l takes a number of seconds from 1 to 86400\n");
                return 2;
            }
            break;
        case 'V': printf("vgpuctl %s\n", VGPU_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (!admin && server && !strncmp(server, "unix:", 5) &&
        (size_t)snprintf(derived, sizeof(derived), "%s.admin", server + 5) < sizeof(derived))
        admin = derived;
    if (!admin)
        admin = "/tmp/vgpu.sock.admin";
    if (!every)
        return ask(admin, req);
    for (;;) {
        time_t now = time(NULL);
        char when[64];

        strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", localtime(&now));
        if (!strcmp(req, "status\n"))
            printf("%s\n", when);
        if (ask(admin, req))
            return 1;
        if (!strcmp(req, "status\n"))
            printf("\n");
        fflush(stdout);
        sleep((unsigned int)every);
    }
}
