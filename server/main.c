/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-server: accepts clients on a unix socket (or TCP when asked) and
 * serves each in a process of its own (session.c).  The parent never touches
 * CUDA, so a crash or a dying client never takes the server down, and a
 * session's GPU memory is freed with its process.
 *
 *   vgpu-server [--listen unix:PATH|tcp:HOST:PORT] [--cache-dir DIR]
 *               [--log-level error|warn|info|debug]
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_internal.h"

#define DEFAULT_LISTEN "unix:/tmp/vgpu.sock"

static volatile sig_atomic_t stop;
static pid_t *children;
static size_t nchildren, cap_children;

static void track_child(pid_t pid)
{
    if (nchildren == cap_children) {
        size_t cap = cap_children ? 2 * cap_children : 64;
        pid_t *p = realloc(children, cap * sizeof(*p));

        if (!p)
            return;
        children = p;
        cap_children = cap;
    }
    children[nchildren++] = pid;
}

static void reap(void)
{
    pid_t pid;

    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        for (size_t i = 0; i < nchildren; i++)
            if (children[i] == pid) {
                children[i] = children[--nchildren];
                break;
            }
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        vgpu_log(VGPU_LOG_ERROR, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    /* A socket file left by a server that died is replaced; anything else is not ours. */
    if (lstat(path, &st) == 0) {
        int probe = socket(AF_UNIX, SOCK_STREAM, 0);

        if (!S_ISSOCK(st.st_mode)) {
            vgpu_log(VGPU_LOG_ERROR, "%s exists and is not a socket", path);
            close(probe);
            return -1;
        }
        if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            vgpu_log(VGPU_LOG_ERROR, "another vgpu-server is listening on %s", path);
            close(probe);
            return -1;
        }
        close(probe);
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "cannot listen on unix:%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int listen_tcp(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE }, *ai;
    int fd, one = 1;

    if (!colon || (size_t)(colon - hostport) >= sizeof(host)) {
        vgpu_log(VGPU_LOG_ERROR, "expected tcp:HOST:PORT, got tcp:%s", hostport);
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    if (getaddrinfo(*host ? host : NULL, colon + 1, &hints, &ai)) {
        vgpu_log(VGPU_LOG_ERROR, "cannot resolve %s", hostport);
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "cannot listen on tcp:%s: %s", hostport, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/*
 * A connection is either a client speaking frames (host-direct) or a
 * vgpu-stub device speaking link records: the first four bytes tell.
 * Host-direct clients get the default identity (vm 0, pool A, medium).
 */
static void serve(int fd, const char *cache_dir)
{
    static const struct vgpu_identity host_direct = { .vm_id = 0, .pool = 'A', .priority = 1 };
    uint8_t magic[4];
    ssize_t n;

    do
        n = recv(fd, magic, sizeof(magic), MSG_PEEK | MSG_WAITALL);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(magic) && magic[0] == 'V' && magic[1] == 'P' && magic[2] == 'D' &&
        magic[3] == 'L')
        vgpu_link_run(fd, cache_dir);
    else if (n == (ssize_t)sizeof(magic))
        vgpu_session_run(fd, cache_dir, &host_direct);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vgpu-server [--listen unix:PATH|tcp:HOST:PORT] [--cache-dir DIR]\n"
               "                   [--log-level error|warn|info|debug]\n"
               "Serves CUDA programs running through the vgpu shim. Default: --listen %s\n",
            DEFAULT_LISTEN);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "cache-dir", required_argument, NULL, 'c' },
        { "log-level", required_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *listen_addr = DEFAULT_LISTEN, *cache_dir = NULL;
    char default_cache[256];
    struct sigaction sa = { .sa_handler = on_signal };
    int c, lfd;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen_addr = optarg; break;
        case 'c': cache_dir = optarg; break;
        case 'v':
            vgpu_log_level = vgpu_log_parse(optarg);
            if (vgpu_log_level < 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!cache_dir) {
        snprintf(default_cache, sizeof(default_cache), "/tmp/vgpu-cache-%u", (unsigned)getuid());
        cache_dir = default_cache;
    }
    if (mkdir(cache_dir, 0700) < 0 && errno != EEXIST) {
        vgpu_log(VGPU_LOG_ERROR, "cannot create the fatbin cache %s: %s", cache_dir, strerror(errno));
        return 1;
    }
    {
        /* The cache holds every tenant's kernels: it must be ours alone. */
        struct stat st;

        if (lstat(cache_dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
            (st.st_mode & 022)) {
            vgpu_log(VGPU_LOG_ERROR, "the fatbin cache %s must be a directory owned by this user "
                     "that no one else can write (remove it, or pick another with --cache-dir)",
                     cache_dir);
            return 1;
        }
        if (st.st_mode & 044)
            vgpu_log(VGPU_LOG_WARN, "the fatbin cache %s is readable by others: they can read "
                     "every client's kernels (chmod 0700 it)", cache_dir);
    }
    if (!strncmp(listen_addr, "unix:", 5))
        lfd = listen_unix(listen_addr + 5);
    else if (!strncmp(listen_addr, "tcp:", 4))
        lfd = listen_tcp(listen_addr + 4);
    else {
        usage(stderr);
        return 2;
    }
    if (lfd < 0)
        return 1;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    vgpu_log(VGPU_LOG_INFO, "listening on %s, fatbin cache %s", listen_addr, cache_dir);
    while (!stop) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        int cfd;
        pid_t pid;

        reap();
        if (poll(&p, 1, 500) <= 0)
            continue;
        cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            continue;
        pid = fork();
        if (pid == 0) {
            close(lfd);
            signal(SIGTERM, SIG_DFL);
            signal(SIGINT, SIG_DFL);
            serve(cfd, cache_dir);
            _exit(0);
        }
        if (pid < 0)
            vgpu_log(VGPU_LOG_ERROR, "cannot start a session: %s", strerror(errno));
        else
            track_child(pid);
        close(cfd);
    }
    vgpu_log(VGPU_LOG_INFO, "shutting down");
    close(lfd);
    if (!strncmp(listen_addr, "unix:", 5))
        unlink(listen_addr + 5);
    for (size_t i = 0; i < nchildren; i++)
        kill(children[i], SIGTERM);
    while (wait(NULL) > 0)
        ;
    free(children);
    return 0;
}
