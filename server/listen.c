/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's sockets: the listeners clients and devices connect to
 * (unix or TCP), and the admin socket vgpuctl asks.  Opening them is all
 * this file does; main.c accepts on them.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "contain.h"
#include "server_internal.h"

/*
 * A socket file's owner and group from their names ((uid_t)-1 / (gid_t)-1:
 * the server's).  Neither may be the sessions' user or one of its groups: a
 * session taken over could connect to the socket and open sessions as its
 * tenant.  0 or -1 (logged).
 */
static int socket_ids(const char *what, const char *owner, const char *group, uid_t *uid,
                      gid_t *gid)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (owner[0]) {
        struct passwd *pw = getpwnam(owner);

        if (!pw) {
            vgpu_log(VGPU_LOG_ERROR, "%s: owner %s: no such user", what, owner);
            return -1;
        }
        *uid = pw->pw_uid;
        if (*uid == vgpu_contain_user_uid()) {
            vgpu_log(VGPU_LOG_ERROR, "%s: owner %s is the user sessions run as: a session taken "
                     "over could connect to it; give it another owner", what, owner);
            return -1;
        }
    }
    if (group[0]) {
        struct group *gr = getgrnam(group);

        if (!gr) {
            vgpu_log(VGPU_LOG_ERROR, "%s: group %s: no such group", what, group);
            return -1;
        }
        *gid = gr->gr_gid;
        if (vgpu_contain_user_in_group(*gid)) {
            vgpu_log(VGPU_LOG_ERROR, "%s: group %s is a group of the user sessions run as: a "
                     "session taken over could connect to it; use a group of its own", what, group);
            return -1;
        }
    }
    return 0;
}

int vgpu_listen_check(const struct vgpu_config *cfg)
{
    char what[300];
    uid_t uid;
    gid_t gid;

    for (int i = 0; i < cfg->nlisten; i++) {
        const struct vgpu_listen_cfg *l = &cfg->listen[i];

        snprintf(what, sizeof(what), "listener %s", l->address);
        if (!strncmp(l->address, "unix:", 5) && socket_ids(what, l->owner, l->group, &uid, &gid))
            return -1;
    }
    return cfg->admin_group[0] ? socket_ids("admin_group", "", cfg->admin_group, &uid, &gid) : 0;
}

/* The socket file's owner and group, as its [listen] says (its mode came with bind).  0 or -1. */
static int set_owner(const char *path, const struct vgpu_listen_cfg *l)
{
    uid_t uid;
    gid_t gid;

    if (socket_ids(l->address, l->owner, l->group, &uid, &gid))
        return -1;
    /* not through a link planted in the socket's directory */
    if ((l->owner[0] || l->group[0]) &&
        fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "unix:%s: cannot give it to %s%s%s: %s", path, l->owner,
                 l->group[0] ? ":" : "", l->group, strerror(errno));
        return -1;
    }
    return 0;
}

static int listen_unix(const char *path, const struct vgpu_listen_cfg *l)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    mode_t old;
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
    /* the file is made with [listen]'s mode (umask), then given to its owner and group */
    old = umask(~(mode_t)l->mode & 0777);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        umask(old);
        vgpu_log(VGPU_LOG_ERROR, "cannot listen on unix:%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    umask(old);
    if (set_owner(path, l) < 0 || listen(fd, 64) < 0) {
        close(fd);
        unlink(path);
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

int vgpu_listen_open(const struct vgpu_listen_cfg *l)
{
    const char *address = l->address;

    if (!strncmp(address, "unix:", 5))
        return listen_unix(address + 5, l);
    if (!strncmp(address, "tcp:", 4))
        return listen_tcp(address + 4);
    vgpu_log(VGPU_LOG_ERROR, "listen address %s: expected unix:PATH or tcp:HOST:PORT", address);
    return -1;
}

int vgpu_listen_admin(const struct vgpu_config *cfg)
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
    /* 0600, or 0660 for admin_group: made so by bind (the umask), never changed by path */
    old = umask(cfg->admin_group[0] ? 0117 : 0177);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
        umask(old);
        vgpu_log(VGPU_LOG_ERROR, "cannot listen on the admin socket %s: %s", cfg->admin,
                 strerror(errno));
        close(fd);
        return -1;
    }
    umask(old);
    if (cfg->admin_group[0]) {
        uid_t uid;
        gid_t gid;

        if (socket_ids("admin_group", "", cfg->admin_group, &uid, &gid) < 0 ||
            fchownat(AT_FDCWD, cfg->admin, (uid_t)-1, gid, AT_SYMLINK_NOFOLLOW) < 0) {
            vgpu_log(VGPU_LOG_ERROR, "cannot give the admin socket %s to group %s: %s",
                     cfg->admin, cfg->admin_group, strerror(errno));
            close(fd);
            unlink(cfg->admin);
            return -1;
        }
    }
    return fd;
}

