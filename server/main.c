/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-server: accepts host programs and QEMU devices on the sockets its
 * configuration names and serves each connection in a process of its own
 * (session.c for a program, link.c for a device).  The parent never touches
 * CUDA, so a crash or a dying client never takes the server down, and a
 * session's GPU memory is freed with its process.  The parent also answers
 * vgpuctl on the admin socket, from the scheduler's shared state.
 *
 * Connections are bounded: per socket (sessions=), per VM (the scheduler),
 * and those not yet past their handshake (max_pending, each with a
 * deadline), so a flood of idle connections cannot exhaust the server.
 *
 *   vgpu-server [--config FILE] [--listen ADDRESS[,KEY=VALUE]...]...
 *               [--admin PATH] [--cache-dir DIR] [--log-level error|warn|info|debug]
 *               [--no-contain]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "contain.h"
#include "loop.h"
#include "server_internal.h"
#include "vgpu/stub_abi.h"
#include "vgpu/fdio.h"
#include "vgpu/futex.h"

#define DEFAULT_LISTEN "unix:/tmp/vgpu.sock"

static volatile sig_atomic_t stop, reload;
static bool check_only;          /* --check: read the configuration, say whether it is valid, exit */

struct child {
    pid_t pid;
    int listener;
    uint64_t started_ns;
};

struct listener {
    int fd;
    const struct vgpu_listen_cfg *cfg;
    uint32_t conns;                   /* its children alive */
};

struct server {
    const struct vgpu_config *cfg;
    uint64_t started_ns;              /* for the uptime vgpuctl shows */
    struct vgpu_loop *loop;
    struct listener ls[VGPU_CONFIG_MAX_LISTEN];
    int nls;
    int afd;
    struct child *children;
    size_t nchildren, cap_children;
};

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload = 1;
    else
        stop = 1;
}

static int track_child(struct server *sv, pid_t pid, int listener)
{
    if (sv->nchildren == sv->cap_children) {
        size_t cap = sv->cap_children ? 2 * sv->cap_children : 64;
        struct child *p = realloc(sv->children, cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        sv->children = p;
        sv->cap_children = cap;
    }
    sv->children[sv->nchildren++] = (struct child){ pid, listener, vgpu_mono_ns() };
    sv->ls[listener].conns++;
    return 0;
}

static void reap(struct server *sv)
{
    pid_t pid;
    int status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        vgpu_contain_reaped(pid, status);
        vgpu_sched_reap(pid);
        for (size_t i = 0; i < sv->nchildren; i++)
            if (sv->children[i].pid == pid) {
                sv->ls[sv->children[i].listener].conns--;
                sv->children[i] = sv->children[--sv->nchildren];
                break;
            }
    }
}

/*
 * Connections not yet past their handshake: programs that have not joined
 * the scheduler, and device links younger than the handshake's deadline
 * (a link has no session of its own; its HELLO is read within it).
 */
static uint32_t pending(const struct server *sv)
{
    uint64_t now = vgpu_mono_ns();
    uint32_t n = 0;

    for (size_t i = 0; i < sv->nchildren; i++) {
        const struct child *c = &sv->children[i];

        if (sv->ls[c->listener].cfg->type == VGPU_LISTEN_DEVICE)
            n += now - c->started_ns < (uint64_t)VGPU_HANDSHAKE_TIMEOUT_MS * 1000000u;
        else
            n += !vgpu_sched_admitted(c->pid);
    }
    return n;
}

/*
 * In the child: the connection is a program speaking frames or a vgpu-stub
 * device speaking link records (the first four bytes tell), and each may
 * only come to a socket of its type.  The alarm bounds the handshake.
 */
static void serve(int fd, const char *cache_dir, const struct vgpu_listen_cfg *l,
                  const char *refuse)
{
    uint8_t magic[4];
    unsigned int left;
    ssize_t n;
    bool link;

    left = alarm(0);           /* a TLS connection's deadline runs on from its handshake */
    alarm(left ? left : (VGPU_HANDSHAKE_TIMEOUT_MS + 999) / 1000);
    do
        n = recv(fd, magic, sizeof(magic), MSG_PEEK | MSG_WAITALL);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(magic))
        return;
    link = vgpu_abi_get_le32(magic) == VGPU_LINK_MAGIC;
    if (l->type == VGPU_LISTEN_DEVICE && !link) {
        vgpu_log(VGPU_LOG_WARN, "%s is a device socket: a connection that is not a vgpu-stub "
                 "device's link was closed (programs connect to a socket of type client)",
                 l->address);
    } else if (l->type == VGPU_LISTEN_CLIENT && link) {
        vgpu_log(VGPU_LOG_WARN, "%s is a client socket: a device-link HELLO there was refused "
                 "(its clients are vm %u; QEMU's chardev must connect to a socket of type "
                 "device)", l->address, l->who.vm_id);
    } else if (link && refuse) {
        vgpu_log(VGPU_LOG_WARN, "refused a device link on %s: %s", l->address, refuse);
    } else if (link) {
        vgpu_link_run(fd, cache_dir, l);
    } else {
        vgpu_session_run(fd, cache_dir, &l->who, refuse);
    }
}

/*
 * In the child, on a TLS socket: the TLS relay started while this process
 * still has the server's privileges (it reads the key), then this one
 * becomes the sessions' user and learns whose certificate the client
 * presented: the connection is served as any other, with that identity (a
 * device's HELLO must say exactly that one).  A trusted certificate that
 * no [cert] names is refused: a program is told why, a device link closed.
 */
static void serve_tls(int fd, const char *cache_dir, const struct vgpu_listen_cfg *l,
                      char *refuse, pid_t parent)
{
    struct vgpu_listen_cfg as = *l;
    char unknown[384];
    int inner;

    alarm((VGPU_HANDSHAKE_TIMEOUT_MS + 999) / 1000);
    inner = vgpu_tls_relay_start(fd, l->address);
    if (inner < 0 || vgpu_contain_become_user(parent) < 0 ||
        vgpu_tls_identify(inner, l->address, &as.who, unknown, sizeof(unknown)) < 0)
        return;
    as.pinned = true;
    if (!unknown[0] || l->type != VGPU_LISTEN_DEVICE)
        serve(inner, cache_dir, &as, refuse[0] ? refuse : unknown[0] ? unknown : NULL);
}

static void on_accept(struct vgpu_loop *loop, int lfd, short revents, void *opaque)
{
    struct server *sv = opaque;
    struct listener *ls = NULL;
    uint32_t max_pending = sv->cfg->max_pending ? sv->cfg->max_pending : VGPU_DEFAULT_MAX_PENDING;
    uint32_t max_conns;
    char refuse[384] = "";
    int cfd, idx;
    pid_t pid, parent;

    (void)loop;
    (void)revents;
    for (idx = 0; idx < sv->nls && !ls; idx++)
        if (sv->ls[idx].fd == lfd)
            ls = &sv->ls[idx];
    idx--;
    cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0 || !ls)
        return;
    if (pending(sv) >= max_pending) {
        vgpu_log(VGPU_LOG_WARN, "closed a new connection on %s: %u connections are not past "
                 "their handshake, the server's max_pending", ls->cfg->address, max_pending);
        close(cfd);
        return;
    }
    max_conns = ls->cfg->max_conns ? ls->cfg->max_conns : VGPU_LISTEN_MAX_CONNS;
    if (ls->conns >= max_conns)
        snprintf(refuse, sizeof(refuse), "%s has %u connections, its limit; end one, or raise "
                 "'sessions' of that listener", ls->cfg->address, max_conns);
    parent = getpid();
    pid = fork();
    if (pid == 0) {
        vgpu_contain_orphan(parent);
        /* a TLS connection's relay is started as the server first (serve_tls) */
        if (!vgpu_listen_uses_tls(ls->cfg) && vgpu_contain_become_user(parent) < 0)
            _exit(1);
        for (int j = 0; j < sv->nls; j++)
            close(sv->ls[j].fd);
        if (sv->afd >= 0)
            close(sv->afd);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_IGN);    /* the server's reload; a session keeps what it started with */
        unsetenv("NOTIFY_SOCKET");  /* only the server speaks to systemd */
        if (vgpu_listen_uses_tls(ls->cfg))
            serve_tls(cfd, sv->cfg->cache_dir, ls->cfg, refuse, parent);
        else
            serve(cfd, sv->cfg->cache_dir, ls->cfg, refuse[0] ? refuse : NULL);
        vgpu_sched_leave();
        _exit(0);
    }
    if (pid < 0)
        vgpu_log(VGPU_LOG_ERROR, "cannot start a session: %s", strerror(errno));
    else if (track_child(sv, pid, idx) < 0)
        kill(pid, SIGKILL);    /* untracked, it could outlive the server */
    close(cfd);
}

/* The admin socket: one request line ("status", "status json", "status prometheus"), one answer. */
static void on_admin(struct vgpu_loop *loop, int afd, short revents, void *opaque)
{
    const struct server *sv = opaque;
    const struct vgpu_report_ctx ctx = { .version = VGPU_SERVER_VERSION,
                                         .started_ns = sv->started_ns, .cfg = sv->cfg };
    struct timeval tmo = { .tv_sec = 1 };
    char req[64];
    struct pollfd p;
    size_t got = 0;
    uint64_t deadline;
    int fd = accept4(afd, NULL, NULL, SOCK_CLOEXEC);

    (void)loop;
    (void)revents;
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
    if (!strncmp(req, "status json", 11))
        vgpu_sched_report(fd, VGPU_REPORT_JSON, &ctx);
    else if (!strncmp(req, "status prometheus", 17))
        vgpu_sched_report(fd, VGPU_REPORT_PROMETHEUS, &ctx);
    else if (!strncmp(req, "status", 6))
        vgpu_sched_report(fd, VGPU_REPORT_TEXT, &ctx);
    else {
        static const char msg[] = "error: unknown request (expected 'status', 'status json' or "
                                  "'status prometheus')\n";
        struct iovec iov = { (void *)msg, sizeof(msg) - 1 };

        vgpu_fd_writev_all(fd, &iov, 1);
    }
    close(fd);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vgpu-server [--config FILE] [--listen ADDRESS[,KEY=VALUE]...]...\n"
               "                   [--admin PATH] [--cache-dir DIR] [--log-level error|warn|info|debug]\n"
               "                   [--no-contain] [--user NAME] [--check] [--version]\n"
               "Serves CUDA programs running through the vgpu shim.  ADDRESS is unix:PATH or\n"
               "tcp:HOST:PORT; KEY is type (client or device), vm_id, pool, priority or\n"
               "sessions; --listen flags replace the config file's [listen] sections.\n"
               "Default: --listen %s, admin socket PATH.admin for the first unix:PATH.\n",
            DEFAULT_LISTEN);
}

/* Flags into *flags; 0, 1 when the program should exit 0 (--help), or 2 on a bad flag. */
static int parse_args(int argc, char **argv, struct vgpu_config *flags, const char **config_path)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'f' },
        { "listen", required_argument, NULL, 'l' },
        { "admin", required_argument, NULL, 'a' },
        { "cache-dir", required_argument, NULL, 'c' },
        { "log-level", required_argument, NULL, 'v' },
        { "no-contain", no_argument, NULL, 'N' },
        { "user", required_argument, NULL, 'u' },
        { "version", no_argument, NULL, 'V' },
        { "check", no_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    char err[512];
    int c;

    vgpu_config_init(flags);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f': *config_path = optarg; break;
        case 'l':
            if (vgpu_config_add_listen(flags, optarg, err, sizeof(err))) {
                fprintf(stderr, "vgpu-server: %s\n", err);
                return 2;
            }
            break;
        case 'a':
            if (strlen(optarg) >= sizeof(flags->admin)) {
                fprintf(stderr, "vgpu-server: --admin: path too long\n");
                return 2;
            }
            snprintf(flags->admin, sizeof(flags->admin), "%s", optarg);
            break;
        case 'c': snprintf(flags->cache_dir, sizeof(flags->cache_dir), "%s", optarg); break;
        case 'v':
            flags->log_level = vgpu_log_parse(optarg);
            if (flags->log_level < 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'N': flags->no_contain = true; break;
        case 'u':
            if (!*optarg || strlen(optarg) >= sizeof(flags->user)) {
                fprintf(stderr, "vgpu-server: --user: expected a user name\n");
                return 2;
            }
            snprintf(flags->user, sizeof(flags->user), "%s", optarg);
            break;
        case 'h': usage(stdout); return 1;
        case 'V': printf("%s\n", VGPU_SERVER_VERSION); return 1;
        case 'C': check_only = true; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    return 0;
}

/* The file, then the flags over it, then the defaults; 0 or 2 (said why). */
static int configure(struct vgpu_config *cfg, const struct vgpu_config *flags,
                     const char *config_path, char *err, size_t errlen)
{
    char tmp[512];

    vgpu_config_init(cfg);
    if (config_path && vgpu_config_load(cfg, config_path, err, errlen))
        return 2;
    if (flags->nlisten) {
        memcpy(cfg->listen, flags->listen, sizeof(cfg->listen));
        cfg->nlisten = flags->nlisten;
    }
    if (flags->admin[0])
        memcpy(cfg->admin, flags->admin, sizeof(cfg->admin));
    if (flags->cache_dir[0])
        memcpy(cfg->cache_dir, flags->cache_dir, sizeof(cfg->cache_dir));
    if (flags->log_level >= 0)
        cfg->log_level = flags->log_level;
    cfg->no_contain |= flags->no_contain;
    if (flags->user[0])
        memcpy(cfg->user, flags->user, sizeof(cfg->user));
    if (!cfg->nlisten)
        vgpu_config_add_listen(cfg, DEFAULT_LISTEN, tmp, sizeof(tmp));
    if (vgpu_config_finish(cfg, tmp, sizeof(tmp))) {
        /* a problem of a section names its file and line itself */
        bool named = !config_path || !strncmp(tmp, config_path, strlen(config_path)) ||
                     !strncmp(tmp, "--listen ", 9);

        snprintf(err, errlen, "%s%s%s", named ? "" : config_path, named ? "" : ": ", tmp);
        return 2;
    }
    if (!cfg->admin[0] && !strncmp(cfg->listen[0].address, "unix:", 5) &&
        strlen(cfg->listen[0].address + 5) + 6 < sizeof(cfg->admin))
        snprintf(cfg->admin, sizeof(cfg->admin), "%s.admin", cfg->listen[0].address + 5);
    if (!cfg->cache_dir[0])
        snprintf(cfg->cache_dir, sizeof(cfg->cache_dir), "/tmp/vgpu-cache-%u", (unsigned)getuid());
    return 0;
}

/* A name the cache's own files have: 64 hex digits and ".fatbin". */
static bool cache_name(const char *n)
{
    return strlen(n) == 64 + 7 && strspn(n, "0123456789abcdef") == 64 && !strcmp(n + 64, ".fatbin");
}

/*
 * Started as root with sessions running as another user: the cache becomes
 * that user's (it writes it), with the images already in it.  Reached
 * through an fd opened without following links, and only the cache's own
 * regular files with one link each are chowned: nothing planted in it (a
 * link to another file) changes owner.  0 or -1.
 */
static int give_cache(const char *dir, uid_t uid, gid_t gid)
{
    struct dirent *e;
    struct stat st;
    DIR *d;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc = 0;

    if (dfd < 0 || fstat(dfd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022) ||
        fchown(dfd, uid, gid) < 0) {
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    while ((e = readdir(d)))
        if (cache_name(e->d_name) && fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && st.st_nlink == 1 &&
            fchownat(dfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            rc = -1;
    closedir(d);
    return rc;
}

/*
 * The fatbin cache holds every tenant's kernels: it must be the sessions'
 * user's alone (the server's, or [server] user's).  0 or -1 (logged).
 */
static int check_cache_dir(const char *dir)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    struct stat st;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        vgpu_log(VGPU_LOG_ERROR, "cannot create the fatbin cache %s: %s", dir, strerror(errno));
        return -1;
    }
    if (vgpu_contain_user_ids(&uid, &gid) && lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
        st.st_uid == 0 && !(st.st_mode & 022) && give_cache(dir, uid, gid) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "cannot give the fatbin cache %s to the sessions' user: %s",
                 dir, strerror(errno));
        return -1;
    }
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid ||
        (st.st_mode & 022)) {
        vgpu_log(VGPU_LOG_ERROR, "the fatbin cache %s must be a directory owned by the sessions' "
                 "user (uid %u) that no one else can write (remove it, or pick another with "
                 "--cache-dir)", dir, (unsigned)uid);
        return -1;
    }
    if (st.st_mode & 044)
        vgpu_log(VGPU_LOG_WARN, "the fatbin cache %s is readable by others: they can read "
                 "every client's kernels (chmod 0700 it)", dir);
    return 0;
}

/* Every listener and the admin socket, watched by sv->loop; 0 or -1 (logged). */
static int open_sockets(struct server *sv)
{
    const struct vgpu_config *cfg = sv->cfg;

    for (int i = 0; i < cfg->nlisten; i++) {
        const struct vgpu_listen_cfg *l = &cfg->listen[i];
        int fd = vgpu_listen_open(l);

        if (fd < 0)
            return -1;
        sv->ls[sv->nls++] = (struct listener){ .fd = fd, .cfg = l };
        if (vgpu_loop_add(sv->loop, fd, POLLIN, on_accept, sv) < 0)
            return -1;
        if (vgpu_listen_uses_tls(l))
            vgpu_log(VGPU_LOG_INFO, "listening on %s (TLS) for %s: identity from each client "
                     "certificate's [cert] section", l->address,
                     l->type == VGPU_LISTEN_DEVICE ? "vgpu-stub devices" : "programs");
        else if (!strncmp(l->address, "tcp:", 4))
            vgpu_log(VGPU_LOG_WARN, "listening on %s without TLS (tls = insecure): anyone who "
                     "can reach it is served (as %s), and its traffic can be read and changed "
                     "on the network", l->address, l->type == VGPU_LISTEN_DEVICE && !l->pinned
                     ? "whatever VM its HELLO names" : "this socket's VM");
        if (vgpu_listen_uses_tls(l))
            continue;
        if (l->type == VGPU_LISTEN_DEVICE && l->pinned)
            vgpu_log(VGPU_LOG_INFO, "listening on %s for a vgpu-stub device of vm %u, pool %c, "
                     "%s", l->address, l->who.vm_id, l->who.pool, vgpu_prio_name(l->who.priority));
        else if (l->type == VGPU_LISTEN_DEVICE)
            vgpu_log(VGPU_LOG_INFO, "listening on %s for vgpu-stub devices (identity from "
                     "each QEMU's command line)", l->address);
        else
            vgpu_log(VGPU_LOG_INFO, "listening on %s for programs: vm %u, pool %c, %s",
                     l->address, l->who.vm_id, l->who.pool, vgpu_prio_name(l->who.priority));
    }
    if (cfg->admin[0]) {
        sv->afd = vgpu_listen_admin(cfg);
        if (sv->afd < 0 || vgpu_loop_add(sv->loop, sv->afd, POLLIN, on_admin, sv) < 0)
            return -1;
    }
    return 0;
}

/* Closes and removes the sockets, ends every child and waits for them. */
static void shut_down(struct server *sv)
{
    for (int i = 0; i < sv->nls; i++) {
        close(sv->ls[i].fd);
        if (!strncmp(sv->ls[i].cfg->address, "unix:", 5))
            unlink(sv->ls[i].cfg->address + 5);
    }
    if (sv->afd >= 0) {
        close(sv->afd);
        unlink(sv->cfg->admin);
    }
    for (size_t i = 0; i < sv->nchildren; i++)
        kill(sv->children[i].pid, SIGTERM);
    while (wait(NULL) > 0)
        ;
    free(sv->children);
    vgpu_loop_free(sv->loop);
}

/*
 * SIGHUP: the configuration file and flags read again; what they change
 * applies to connections from now on (vgpu_config_apply_reload says what),
 * the sockets stay open.  A file with an error changes nothing.
 */
static void reconfigure(struct vgpu_config *cfg, const struct vgpu_config *flags,
                        const char *config_path)
{
    static struct vgpu_config fresh;
    char msg[1024], err[1024];

    sd_notify(0, "RELOADING=1\nSTATUS=reading the configuration again");
    if (configure(&fresh, flags, config_path, err, sizeof(err))) {
        vgpu_log(VGPU_LOG_ERROR, "SIGHUP: %s; serving on with the configuration before", err);
    } else if (vgpu_listen_check(&fresh) < 0 || vgpu_tls_server_init(&fresh) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "SIGHUP: the configuration names what cannot be used (the line "
                 "above); serving on with the configuration before");
    } else {
        vgpu_config_apply_reload(cfg, &fresh, msg, sizeof(msg));
        if (cfg->log_level >= 0)
            vgpu_log_level = cfg->log_level;
        vgpu_log(VGPU_LOG_INFO, "SIGHUP: configuration %s read again: limits, pools, "
                 "certificates and listeners' identities apply to new connections",
                 config_path ? config_path : "(flags only)");
        if (msg[0])
            vgpu_log(VGPU_LOG_WARN, "SIGHUP: %s", msg);
    }
    sd_notify(0, "READY=1\nSTATUS=serving");
}

int main(int argc, char **argv)
{
    static struct vgpu_config cfg, flags;
    struct server sv = { .cfg = &cfg, .afd = -1, .started_ns = vgpu_mono_ns() };
    const char *config_path = NULL;
    /* SA_RESTART: a reload must not cut an admin request short; the loop looks every 500 ms */
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
    char err[1024];
    int rc;

    if (argc > 1 && !strcmp(argv[1], "--tls-relay"))
        return vgpu_tls_relay_main(argc, argv);     /* a TLS connection's relay (tls.c) */
    rc = parse_args(argc, argv, &flags, &config_path);
    vgpu_proctitle_init(argc, argv);               /* after the arguments are read */
    if (rc)
        return rc == 1 ? 0 : rc;
    rc = configure(&cfg, &flags, config_path, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "vgpu-server: %s\n", err);
        return rc;
    }
    if (cfg.log_level >= 0)
        vgpu_log_level = cfg.log_level;
    vgpu_log_init();             /* before the first fork: whether stderr is journald's */
    vgpu_cfg = &cfg;
    if (check_only) {            /* the names resolved and the TLS files loaded too */
        if (vgpu_contain_user_init(cfg.user) < 0 || vgpu_listen_check(&cfg) < 0 ||
            vgpu_tls_server_init(&cfg) < 0)
            return 2;
        printf("vgpu-server: %s: the configuration is valid\n", config_path ? config_path : "(flags)");
        return 0;
    }
    if (vgpu_contain_user_init(cfg.user) < 0 || vgpu_listen_check(&cfg) < 0 ||
        check_cache_dir(cfg.cache_dir) < 0)
        return 1;
    if (vgpu_sched_init(&cfg.sched) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "cannot create the scheduler's shared state: %s", strerror(errno));
        return 1;
    }
    if (vgpu_contain_parent(!cfg.no_contain) < 0 || vgpu_tls_server_init(&cfg) < 0)
        return 1;
    sv.loop = vgpu_loop_new();
    if (!sv.loop || open_sockets(&sv) < 0) {
        shut_down(&sv);
        return 1;
    }
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    vgpu_log(VGPU_LOG_INFO, "fatbin cache %s, admin socket %s", cfg.cache_dir,
             cfg.admin[0] ? cfg.admin : "(none)");
    sd_notifyf(0, "READY=1\nSTATUS=serving %d socket(s)", sv.nls);
    while (!stop) {
        if (reload) {
            reload = 0;
            reconfigure(&cfg, &flags, config_path);
        }
        reap(&sv);
        vgpu_loop_run_once(sv.loop, 500);
    }
    sd_notify(0, "STOPPING=1");
    vgpu_log(VGPU_LOG_INFO, "shutting down");
    shut_down(&sv);
    return 0;
}
