/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS on the server's tcp: listeners (GnuTLS), with client certificates
 * required: a remote program or vgpu-stub device is known by the
 * certificate it presents, never by what it says (docs/server.md, "TLS").
 *
 * The TLS itself runs in a process of its own per connection, the relay:
 * the connection's process (forked by main.c, the future session) forks it
 * and it executes vgpu-server again (`--tls-relay`), so it starts from a
 * fresh image.  Only the relay ever loads the server's private key and
 * parses the client's TLS messages; sessions, link processes and the
 * parent never hold the key (the parent checks the files at start in a
 * child that exits), so a session taken over through the driver cannot
 * read it out of its own memory.  The relay:
 *   - leaves the server's terminal and stdin/stdout (setsid, /dev/null),
 *     loads the credentials, then drops to the sessions' user (nobody when
 *     the server runs as root without one) and takes the sessions' seccomp
 *     filter (no_new_privs, non-dumpable);
 *   - does the handshake, requiring a client certificate the CA signed
 *     for TLS client use (and the CRL does not revoke);
 *   - writes the certificate's common name and SHA-256 fingerprint (a
 *     struct relay_result) to the socketpair the session reads, which
 *     looks them up in the [cert] sections;
 *   - relays bytes between the TCP connection and that socketpair, one
 *     thread each way, until either side closes, and exits.
 * The session serves its end of the socketpair as any connection.  When it
 * ends, the relay sees end of file, tells the client (close_notify) and
 * exits; a client that stops reading cannot hold it (send timeout), nor
 * can one that vanishes (TCP keepalive and user timeout).
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <grp.h>
#include <pwd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "contain.h"
#include "server_internal.h"

#define TLS_HANDSHAKE_MS VGPU_HANDSHAKE_TIMEOUT_MS
#define RELAY_CHUNK (64u << 10)
#define RELAY_SEND_TIMEOUT_S 60          /* a client that reads nothing for this long is gone */
#define RELAY_NET_FD 3                   /* the relay's fds after exec */
#define RELAY_NEAR_FD 4
/* TLS 1.2 and 1.3 only, the system's choice of ciphers within them */
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define RESULT_MAGIC 0x544c5352u         /* "RSLT" */

/* What the relay tells the session before the first relayed byte. */
struct relay_result {
    uint32_t magic;
    uint32_t ok;                         /* 1: the handshake passed and the certificate is good */
    char cn[128];                        /* its subject's common name, or "" */
    uint8_t sha256[32];
};

/* ---- credentials ---- */

/* Loads the [tls] files; 0, or -1 (logged). */
static int load_creds(gnutls_certificate_credentials_t *creds, const char *ca, const char *cert,
                      const char *key, const char *crl)
{
    int rc = gnutls_certificate_allocate_credentials(creds);

    if (rc < 0) {
        vgpu_log(VGPU_LOG_ERROR, "TLS credentials: %s", gnutls_strerror(rc));
        return -1;
    }
    rc = gnutls_certificate_set_x509_trust_file(*creds, ca, GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
        vgpu_log(VGPU_LOG_ERROR, "[tls] ca %s: %s", ca,
                 rc == 0 ? "no CA certificate in it" : gnutls_strerror(rc));
        return -1;
    }
    if (crl[0] && (rc = gnutls_certificate_set_x509_crl_file(*creds, crl, GNUTLS_X509_FMT_PEM)) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "[tls] crl %s: %s", crl, gnutls_strerror(rc));
        return -1;
    }
    rc = gnutls_certificate_set_x509_key_file(*creds, cert, key, GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        vgpu_log(VGPU_LOG_ERROR, "[tls] cert %s and key %s: %s", cert, key, gnutls_strerror(rc));
        return -1;
    }
    return 0;
}

int vgpu_tls_server_init(const struct vgpu_config *cfg)
{
    const struct vgpu_tls_cfg *t = &cfg->tls;
    bool used = false;
    int st = -1;
    pid_t pid;

    for (int i = 0; i < cfg->nlisten; i++)
        used |= vgpu_listen_uses_tls(&cfg->listen[i]);
    if (!used)
        return 0;
    /* checked in a child, so that the key never enters this process's memory */
    pid = fork();
    if (pid == 0) {
        gnutls_certificate_credentials_t creds;

        _exit(load_creds(&creds, t->ca, t->cert, t->key, t->crl) ? 1 : 0);
    }
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
        return -1;
    vgpu_log(VGPU_LOG_INFO, "TLS: certificate %s, client certificates checked against %s%s%s "
             "(read at every connection)", t->cert, t->ca, t->crl[0] ? " and " : "", t->crl);
    return 0;
}

/* ---- the session's side ---- */

/* Reads the relay's result within the deadline: 0, or -1 when it ended without one. */
static int read_result(int fd, struct relay_result *r)
{
    size_t got = 0;

    while (got < sizeof(*r)) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, TLS_HANDSHAKE_MS + 1000) != 1)
            return -1;
        n = read(fd, (uint8_t *)r + got, sizeof(*r) - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    r->cn[sizeof(r->cn) - 1] = '\0';
    return r->magic == RESULT_MAGIC && r->ok == 1 ? 0 : -1;
}

/* The relay: this program again, on fd (the client) and near (ours), and nothing else. */
static pid_t start_relay(int fd, int near, const char *where)
{
    const struct vgpu_tls_cfg *t = &vgpu_cfg->tls;
    char uid_s[16] = "", gid_s[16] = "", level[4];
    char *argv[] = { "vgpu-server", "--tls-relay", (char *)t->ca, (char *)t->cert, (char *)t->key,
                     (char *)t->crl, uid_s, gid_s, level, (char *)where, NULL };
    uid_t uid;
    gid_t gid;
    pid_t pid;

    if (vgpu_contain_user_ids(&uid, &gid)) {
        snprintf(uid_s, sizeof(uid_s), "%u", (unsigned)uid);
        snprintf(gid_s, sizeof(gid_s), "%u", (unsigned)gid);
    }
    snprintf(level, sizeof(level), "%d", vgpu_log_level);
    pid = fork();
    if (pid != 0)
        return pid;
    /* above the targets first, so that neither dup2 closes the other's source */
    fd = fcntl(fd, F_DUPFD, RELAY_NEAR_FD + 1);
    near = fcntl(near, F_DUPFD, RELAY_NEAR_FD + 1);
    if (fd < 0 || near < 0 || dup2(fd, RELAY_NET_FD) < 0 || dup2(near, RELAY_NEAR_FD) < 0)
        _exit(1);
    /* nothing of the server's but the log (stderr) goes along */
    if (syscall(SYS_close_range, RELAY_NEAR_FD + 1, ~0u, 0) < 0)
        for (int i = RELAY_NEAR_FD + 1; i < 1024; i++)
            close(i);
    execv("/proc/self/exe", argv);
    vgpu_log(VGPU_LOG_ERROR, "cannot start the TLS relay (/proc/self/exe): %s", strerror(errno));
    _exit(1);
}

int vgpu_tls_relay_start(int fd, const char *where)
{
    int sp[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "%s: no socketpair for the TLS relay: %s", where, strerror(errno));
        close(fd);
        return -1;
    }
    pid = start_relay(fd, sp[0], where);
    close(sp[0]);
    close(fd);                   /* the connection is the relay's alone */
    if (pid < 0) {
        vgpu_log(VGPU_LOG_ERROR, "%s: cannot start the TLS relay: %s", where, strerror(errno));
        close(sp[1]);
        return -1;
    }
    return sp[1];
}

int vgpu_tls_identify(int inner, const char *where, struct vgpu_identity *who, char *refuse,
                      size_t refuselen)
{
    const struct vgpu_cert_cfg *ct;
    struct relay_result r;

    refuse[0] = '\0';
    if (read_result(inner, &r) < 0) {
        vgpu_log(VGPU_LOG_INFO, "%s: no TLS session (the relay's line says why)", where);
        return -1;
    }
    ct = vgpu_config_cert(vgpu_cfg, r.cn, r.sha256);
    if (ct) {
        *who = ct->who;
        vgpu_log(VGPU_LOG_INFO, "%s: TLS client [cert %s] (CN %s): vm %u, pool %c, %s", where,
                 ct->name, r.cn[0] ? r.cn : "none", ct->who.vm_id, ct->who.pool,
                 vgpu_prio_name(ct->who.priority));
    } else {
        char fp[65];

        for (int i = 0; i < 32; i++)
            snprintf(fp + 2 * i, 3, "%02x", r.sha256[i]);
        snprintf(refuse, refuselen, "the client certificate (CN %s, SHA-256 %s) is trusted but "
                 "no [cert] section of the server's configuration names it; its operator adds "
                 "one with its cn or sha256 and the vm_id it stands for", r.cn[0] ? r.cn : "none", fp);
        vgpu_log(VGPU_LOG_WARN, "%s: %s", where, refuse);
    }
    return 0;
}

/* ---- the relay (vgpu-server --tls-relay) ---- */

static gnutls_session_t session;

/* TLS -> the session; then the session reads end of file and sees its client gone. */
static void *relay_in(void *arg)
{
    static uint8_t buf[RELAY_CHUNK];
    ssize_t n;

    (void)arg;
    for (;;) {
        n = gnutls_record_recv(session, buf, sizeof(buf));
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(RELAY_NEAR_FD, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto out;
            off += w;
        }
    }
    if (n < 0 && n != GNUTLS_E_PREMATURE_TERMINATION)
        vgpu_log(VGPU_LOG_DEBUG, "TLS connection ended: %s", gnutls_strerror((int)n));
out:
    shutdown(RELAY_NEAR_FD, SHUT_RDWR);
    return NULL;
}

/* The session -> TLS, until the session closes: then the client is told (close_notify). */
static void relay_out(void)
{
    static uint8_t buf[RELAY_CHUNK];

    for (;;) {
        ssize_t n = recv(RELAY_NEAR_FD, buf, sizeof(buf), 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = gnutls_record_send(session, buf + off, (size_t)(n - off));

            /* on this blocking socket E_AGAIN is SO_SNDTIMEO: a client that reads nothing */
            if (w == GNUTLS_E_INTERRUPTED)
                continue;
            if (w < 0)
                return;
            off += w;
        }
    }
    gnutls_bye(session, GNUTLS_SHUT_WR);
}

/* A connection that goes quiet without a FIN (a machine lost) ends within minutes. */
static void tcp_timeouts(int fd)
{
    int one = 1, idle = 60, intvl = 10, cnt = 6;
    unsigned int user_ms = 120000;
    struct timeval snd = { .tv_sec = RELAY_SEND_TIMEOUT_S };

    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_ms, sizeof(user_ms));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
}

/* The handshake and the certificate's checks; 0, or -1 (logged, the client told). */
static int handshake(const char *where)
{
    unsigned int status = 0;
    int rc;

    do
        rc = gnutls_handshake(session);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    if (rc < 0) {
        vgpu_log(VGPU_LOG_WARN, "%s: TLS handshake failed: %s", where, gnutls_strerror(rc));
        gnutls_alert_send_appropriate(session, rc);     /* the client learns why */
        return -1;
    }
    /* gnutls_session_set_verify_cert2() checked it already; a second look costs nothing */
    rc = gnutls_certificate_verify_peers2(session, &status);
    if (rc < 0 || status) {
        gnutls_datum_t why = { 0 };

        if (rc >= 0)
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
        vgpu_log(VGPU_LOG_WARN, "%s: client certificate refused: %s", where,
                 rc < 0 ? gnutls_strerror(rc) : why.data ? (char *)why.data : "not trusted");
        gnutls_free(why.data);
        gnutls_alert_send(session, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
        return -1;
    }
    return 0;
}

/* The client's certificate: its common name (or "") and SHA-256 fingerprint.  0 or -1. */
static int peer_cert(struct relay_result *r)
{
    const gnutls_datum_t *der;
    gnutls_x509_crt_t crt;
    unsigned int n = 0;
    size_t len = sizeof(r->sha256), cnlen = sizeof(r->cn);
    int rc;

    der = gnutls_certificate_get_peers(session, &n);
    if (!der || !n || gnutls_x509_crt_init(&crt) < 0)
        return -1;
    rc = gnutls_x509_crt_import(crt, &der[0], GNUTLS_X509_FMT_DER);
    if (!rc)
        rc = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, r->sha256, &len);
    if (!rc && gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, r->cn,
                                             &cnlen) < 0)
        r->cn[0] = '\0';
    gnutls_x509_crt_deinit(crt);
    return rc < 0 || len != sizeof(r->sha256) ? -1 : 0;
}

/*
 * Before exiting on a refused client: what it sent is read and dropped for
 * up to a second, so that our close does not reset the connection before
 * the client has read the alert.
 */
static void linger(void)
{
    uint8_t sink[4096];
    struct pollfd p = { .fd = RELAY_NET_FD, .events = POLLIN };

    shutdown(RELAY_NET_FD, SHUT_WR);
    while (poll(&p, 1, 1000) > 0 && read(RELAY_NET_FD, sink, sizeof(sink)) > 0)
        ;
}

/*
 * After the key is loaded, before the first byte from the client: the
 * sessions' user, if the server runs as root with one; a relay left as
 * root gives up every capability.  Then no_new_privs.  0 or -1.
 */
static int drop_privileges(const char *uid_s, const char *gid_s)
{
    uid_t uid = (uid_t)strtoul(uid_s, NULL, 10);
    gid_t gid = (gid_t)strtoul(gid_s, NULL, 10);

    if (!*uid_s && geteuid() == 0) {          /* no sessions' user: nobody, never root */
        struct passwd *pw = getpwnam("nobody");

        if (!pw)
            return -1;
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (geteuid() == 0 &&
        (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0 || setuid(0) == 0))
        return -1;
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    return vgpu_contain_relay();
}

int vgpu_tls_relay_main(int argc, char **argv)
{
    gnutls_certificate_credentials_t creds;
    gnutls_datum_t purpose = { (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
                               (unsigned int)strlen(GNUTLS_KP_TLS_WWW_CLIENT) };
    gnutls_typed_vdata_st want = { .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = purpose.data,
                                   .size = purpose.size };
    struct relay_result r = { .magic = RESULT_MAGIC };
    const char *where;
    pthread_t in;

    /* argv: --tls-relay CA CERT KEY CRL UID GID LOG-LEVEL WHERE */
    if (argc != 10)
        return 2;
    where = argv[9];
    vgpu_log_level = atoi(argv[8]);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* no terminal (no TIOCSTI into the shell that started the server), nothing on 0 and 1 */
    setsid();
    {
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            close(nul);
        }
    }
    signal(SIGPIPE, SIG_IGN);
    tcp_timeouts(RELAY_NET_FD);
    if (load_creds(&creds, argv[2], argv[3], argv[4], argv[5]) < 0)
        return 1;
    if (drop_privileges(argv[6], argv[7]) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "%s: the TLS relay cannot drop its privileges (uid %s): %s",
                 where, *argv[6] ? argv[6] : "kept", strerror(errno));
        return 1;
    }
    if (gnutls_init(&session, GNUTLS_SERVER | GNUTLS_NO_SIGNAL) < 0 ||
        gnutls_priority_set_direct(session, TLS_PRIORITY, NULL) < 0 ||
        gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, creds) < 0)
        return 1;
    gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
    /* a certificate made for TLS clients, not a server's reused (its EKU, where it has one) */
    gnutls_session_set_verify_cert2(session, &want, 1, 0);
    gnutls_transport_set_int(session, RELAY_NET_FD);
    gnutls_handshake_set_timeout(session, TLS_HANDSHAKE_MS);
    if (handshake(where) < 0) {
        linger();
        return 1;
    }
    if (peer_cert(&r) < 0) {
        vgpu_log(VGPU_LOG_WARN, "%s: the client's certificate could not be read", where);
        return 1;
    }
    r.ok = 1;
    if (send(RELAY_NEAR_FD, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
        return 1;
    if (pthread_create(&in, NULL, relay_in, NULL))
        return 1;
    relay_out();
    return 0;
}
