/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-server: accepts clients on unix sockets (or TCP when asked) and
 * serves each in a process of its own (session.c).  The parent never touches
 * CUDA, so a crash or a dying client never takes the server down, and a
 * session's GPU memory is freed with its process.  The parent also answers
 * vgpuctl on the admin socket, from the scheduler's shared state.
 *
 *   vgpu-server [--config FILE] [--listen ADDRESS[,vm_id=N][,pool=P][,priority=P]]...
 *               [--admin PATH] [--cache-dir DIR] [--log-level error|warn|info|debug]
 *               [--no-contain]
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "contain.h"
#include "server_internal.h"
#include "vgpu/fdio.h"
#include "vgpu/futex.h"

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

    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
        vgpu_sched_reap(pid);
        for (size_t i = 0; i < nchildren; i++)
            if (children[i] == pid) {
                children[i] = children[--nchildren];
                break;
            }
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
 * Host-direct clients get the identity configured for their socket.
 */
static void serve(int fd, const char *cache_dir, const struct vgpu_identity *who)
{
    uint8_t magic[4];
    ssize_t n;

    do
        n = recv(fd, magic, sizeof(magic), MSG_PEEK | MSG_WAITALL);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(magic) && magic[0] == 'V' && magic[1] == 'P' && magic[2] == 'D' &&
        magic[3] == 'L')
        vgpu_link_run(fd, cache_dir);
    else if (n == (ssize_t)sizeof(magic))
        vgpu_session_run(fd, cache_dir, who);
}

/* The admin socket: one request line ("status" or "status json"), one answer. */
static void admin_serve(int afd, const struct vgpu_config *cfg)
{
    const char *pool_gpus[VGPU_SCHED_MAX_POOLS] = { NULL };
    char req[64];
    struct pollfd p;
    size_t got = 0;
    int fd = accept4(afd, NULL, NULL, SOCK_CLOEXEC);

    struct timeval tmo = { .tv_sec = 1 };
    uint64_t deadline;

    if (fd < 0)
        return;
    /*
     * The parent must not hang on an admin client: one second in all to ask,
     * and writes that time out (a client that does not read is dropped).
     */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
    deadline = vgpu_mono_ns() + 1000000000u;
    p.fd = fd;
    p.events = POLLIN;
    while (got < sizeof(req) - 1 && vgpu_mono_ns() < deadline &&
           poll(&p, 1, (int)((deadline - vgpu_mono_ns()) / 1000000u) + 1) > 0) {
        ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);

        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr(req, '\n', got))
            break;
    }
    req[got] = '\0';
    for (int i = 0; i < VGPU_SCHED_MAX_POOLS; i++)
        if (cfg->pools[i].ngpus)
            pool_gpus[i] = cfg->pools[i].gpus_text;
    if (!strncmp(req, "status json", 11))
        vgpu_sched_report(fd, true, pool_gpus);
    else if (!strncmp(req, "status", 6))
        vgpu_sched_report(fd, false, pool_gpus);
    else {
        static const char msg[] = "error: unknown request (expected 'status' or 'status json')\n";
        struct iovec iov = { (void *)msg, sizeof(msg) - 1 };

        vgpu_fd_writev_all(fd, &iov, 1);
    }
    close(fd);
}

static int listen_admin(const struct vgpu_config *cfg)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    mode_t old;
    int fd;

    if (strlen(cfg->admin) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, cfg->admin);
    unlink(cfg->admin);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    old = umask(0177);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
        umask(old);
        vgpu_log(VGPU_LOG_ERROR, "cannot listen on the admin socket %s: %s", cfg->admin,
                 strerror(errno));
        close(fd);
        return -1;
    }
    umask(old);
    if (cfg->admin_group[0]) {
        struct group *g = getgrnam(cfg->admin_group);

        if (!g || chown(cfg->admin, (uid_t)-1, g->gr_gid) < 0 || chmod(cfg->admin, 0660) < 0) {
            vgpu_log(VGPU_LOG_ERROR, "cannot give the admin socket %s to group %s: %s",
                     cfg->admin, cfg->admin_group, g ? strerror(errno) : "no such group");
            close(fd);
            unlink(cfg->admin);
            return -1;
        }
    }
    return fd;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vgpu-server [--config FILE] [--listen ADDRESS[,vm_id=N][,pool=P][,priority=P]]...\n"
               "                   [--admin PATH] [--cache-dir DIR] [--log-level error|warn|info|debug]\n"
               "                   [--no-contain]\n"
               "Serves CUDA programs running through the vgpu shim.  ADDRESS is unix:PATH or\n"
               "tcp:HOST:PORT; --listen flags replace the config file's [listen] sections.\n"
               "Default: --listen %s, admin socket PATH.admin for the first unix:PATH.\n",
            DEFAULT_LISTEN);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'f' },
        { "listen", required_argument, NULL, 'l' },
        { "admin", required_argument, NULL, 'a' },
        { "cache-dir", required_argument, NULL, 'c' },
        { "log-level", required_argument, NULL, 'v' },
        { "no-contain", no_argument, NULL, 'N' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static struct vgpu_config cfg, flags;
    const char *config_path = NULL;
    char err[512];
    struct sigaction sa = { .sa_handler = on_signal };
    struct pollfd pfd[VGPU_CONFIG_MAX_LISTEN + 1];
    int c, nfd = 0, afd = -1;

    vgpu_config_init(&flags);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': config_path = optarg; break;
        case 'l':
            if (vgpu_config_add_listen(&flags, optarg, err, sizeof(err))) {
                fprintf(stderr, "vgpu-server: %s\n", err);
                return 2;
            }
            break;
        case 'a':
            if (strlen(optarg) >= sizeof(flags.admin)) {
                fprintf(stderr, "vgpu-server: --admin: path too long\n");
                return 2;
            }
            snprintf(flags.admin, sizeof(flags.admin), "%s", optarg);
            break;
        case 'c': snprintf(flags.cache_dir, sizeof(flags.cache_dir), "%s", optarg); break;
        case 'v':
            flags.log_level = vgpu_log_parse(optarg);
            if (flags.log_level < 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'N': flags.no_contain = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    vgpu_config_init(&cfg);
    if (config_path && vgpu_config_load(&cfg, config_path, err, sizeof(err))) {
        fprintf(stderr, "vgpu-server: %s\n", err);
        return 2;
    }
    /* flags override the file */
    if (flags.nlisten) {
        memcpy(cfg.listen, flags.listen, sizeof(cfg.listen));
        cfg.nlisten = flags.nlisten;
    }
    if (flags.admin[0])
        memcpy(cfg.admin, flags.admin, sizeof(cfg.admin));
    if (flags.cache_dir[0])
        memcpy(cfg.cache_dir, flags.cache_dir, sizeof(cfg.cache_dir));
    if (flags.log_level >= 0)
        cfg.log_level = flags.log_level;
    if (cfg.log_level >= 0)
        vgpu_log_level = cfg.log_level;
    if (!cfg.nlisten)
        vgpu_config_add_listen(&cfg, DEFAULT_LISTEN, err, sizeof(err));
    if (!cfg.admin[0] && !strncmp(cfg.listen[0].address, "unix:", 5) &&
        strlen(cfg.listen[0].address + 5) + 6 < sizeof(cfg.admin))
        snprintf(cfg.admin, sizeof(cfg.admin), "%s.admin", cfg.listen[0].address + 5);
    if (!cfg.cache_dir[0])
        snprintf(cfg.cache_dir, sizeof(cfg.cache_dir), "/tmp/vgpu-cache-%u", (unsigned)getuid());
    vgpu_cfg = &cfg;
    if (mkdir(cfg.cache_dir, 0700) < 0 && errno != EEXIST) {
        vgpu_log(VGPU_LOG_ERROR, "cannot create the fatbin cache %s: %s", cfg.cache_dir,
                 strerror(errno));
        return 1;
    }
    {
        /* The cache holds every tenant's kernels: it must be ours alone. */
        struct stat st;

        if (lstat(cfg.cache_dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
            (st.st_mode & 022)) {
            vgpu_log(VGPU_LOG_ERROR, "the fatbin cache %s must be a directory owned by this user "
                     "that no one else can write (remove it, or pick another with --cache-dir)",
                     cfg.cache_dir);
            return 1;
        }
        if (st.st_mode & 044)
            vgpu_log(VGPU_LOG_WARN, "the fatbin cache %s is readable by others: they can read "
                     "every client's kernels (chmod 0700 it)", cfg.cache_dir);
    }
    if (vgpu_sched_init(&cfg.sched) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "cannot create the scheduler's shared state: %s", strerror(errno));
        return 1;
    }
    cfg.no_contain |= flags.no_contain;
    if (vgpu_contain_parent(!cfg.no_contain) < 0)
        return 1;
    for (int i = 0; i < cfg.nlisten; i++) {
        const char *a = cfg.listen[i].address;
        int fd;

        if (!strncmp(a, "unix:", 5))
            fd = listen_unix(a + 5);
        else if (!strncmp(a, "tcp:", 4))
            fd = listen_tcp(a + 4);
        else {
            vgpu_log(VGPU_LOG_ERROR, "listen address %s: expected unix:PATH or tcp:HOST:PORT", a);
            fd = -1;
        }
        if (fd < 0)
            goto out;
        pfd[nfd].fd = fd;
        pfd[nfd++].events = POLLIN;
        vgpu_log(VGPU_LOG_INFO, "listening on %s (host-direct clients: vm %u, pool %c, %s)", a,
                 cfg.listen[i].who.vm_id, cfg.listen[i].who.pool,
                 vgpu_prio_name(cfg.listen[i].who.priority));
    }
    if (cfg.admin[0]) {
        afd = listen_admin(&cfg);
        if (afd < 0)
            goto out;
        pfd[nfd].fd = afd;
        pfd[nfd++].events = POLLIN;
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    vgpu_log(VGPU_LOG_INFO, "fatbin cache %s, admin socket %s", cfg.cache_dir,
             cfg.admin[0] ? cfg.admin : "(none)");
    while (!stop) {
        reap();
        if (poll(pfd, (nfds_t)nfd, 500) <= 0)
            continue;
        for (int i = 0; i < nfd; i++) {
            int cfd;
            pid_t pid;

            if (!(pfd[i].revents & POLLIN))
                continue;
            if (pfd[i].fd == afd) {
                admin_serve(afd, &cfg);
                continue;
            }
            cfd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd < 0)
                continue;
            pid = fork();
            if (pid == 0) {
                for (int j = 0; j < nfd; j++)
                    close(pfd[j].fd);
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                serve(cfd, cfg.cache_dir, &cfg.listen[i].who);
                vgpu_sched_leave();
                _exit(0);
            }
            if (pid < 0)
                vgpu_log(VGPU_LOG_ERROR, "cannot start a session: %s", strerror(errno));
            else
                track_child(pid);
            close(cfd);
        }
    }
    vgpu_log(VGPU_LOG_INFO, "shutting down");
out:
    for (int i = 0; i < nfd; i++)
        close(pfd[i].fd);
    for (int i = 0; i < nfd && i < cfg.nlisten; i++)
        if (!strncmp(cfg.listen[i].address, "unix:", 5) && pfd[i].fd != afd)
            unlink(cfg.listen[i].address + 5);
    if (afd >= 0)
        unlink(cfg.admin);
    for (size_t i = 0; i < nchildren; i++)
        kill(children[i], SIGTERM);
    while (wait(NULL) > 0)
        ;
    free(children);
    return stop ? 0 : 1;
}
