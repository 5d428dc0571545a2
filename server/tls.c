/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS on the server's tcp: listeners (GnuTLS), with client certificates
 * required: a remote program or vgpu-stub device is known by the
 * certificate it presents, never by what it says (docs/server.md, "TLS").
 *
 * The parent loads the credentials once, at start, so that bad files stop
 * the server there.  Each connection's process (main.c forks one per
 * connection) does the handshake under the connection's deadline, checks
 * the certificate against the CA (and CRL), and looks it up in the [cert]
 * sections.  From then on the session or link code runs unchanged on one
 * end of a socketpair: two threads relay between it and the TLS session,
 * one each way (GnuTLS allows one sending and one receiving thread on a
 * session).  The relay ends when either side closes; shutting the
 * socketpair down in both directions is what the session sees as its
 * client hanging up.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "server_internal.h"

#define TLS_HANDSHAKE_MS VGPU_HANDSHAKE_TIMEOUT_MS
#define RELAY_CHUNK (64u << 10)
/* TLS 1.2 and 1.3 only, the system's choice of ciphers within them */
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static gnutls_certificate_credentials_t creds;   /* the parent's, inherited by every fork */

/* The relay of this process's one TLS connection. */
static struct {
    gnutls_session_t session;
    int net;          /* the TCP connection */
    int near;         /* our end of the socketpair; the session serves the other */
    pthread_t out;    /* relay_out, joined by vgpu_tls_end() */
} relay = { .net = -1, .near = -1 };

int vgpu_tls_server_init(const struct vgpu_config *cfg)
{
    const struct vgpu_tls_cfg *t = &cfg->tls;
    int rc;

    if (!t->ca[0])
        return 0;                /* no TLS listener (vgpu_config_finish checked) */
    if ((rc = gnutls_certificate_allocate_credentials(&creds)) < 0)
        goto fail;
    rc = gnutls_certificate_set_x509_trust_file(creds, t->ca, GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
        vgpu_log(VGPU_LOG_ERROR, "[tls] ca %s: %s", t->ca,
                 rc == 0 ? "no CA certificate in it" : gnutls_strerror(rc));
        return -1;
    }
    if (t->crl[0] &&
        (rc = gnutls_certificate_set_x509_crl_file(creds, t->crl, GNUTLS_X509_FMT_PEM)) < 0) {
        vgpu_log(VGPU_LOG_ERROR, "[tls] crl %s: %s", t->crl, gnutls_strerror(rc));
        return -1;
    }
    rc = gnutls_certificate_set_x509_key_file(creds, t->cert, t->key, GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        vgpu_log(VGPU_LOG_ERROR, "[tls] cert %s and key %s: %s", t->cert, t->key,
                 gnutls_strerror(rc));
        return -1;
    }
    vgpu_log(VGPU_LOG_INFO, "TLS: certificate %s, client certificates checked against %s%s%s",
             t->cert, t->ca, t->crl[0] ? " and " : "", t->crl);
    return 0;
fail:
    vgpu_log(VGPU_LOG_ERROR, "TLS credentials: %s", gnutls_strerror(rc));
    return -1;
}

/* TLS -> the session; then the session's side reads end of file and its peer is gone. */
static void *relay_in(void *arg)
{
    static uint8_t buf[RELAY_CHUNK];
    ssize_t n;

    (void)arg;
    for (;;) {
        n = gnutls_record_recv(relay.session, buf, sizeof(buf));
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(relay.near, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    if (n < 0 && n != GNUTLS_E_PREMATURE_TERMINATION)
        vgpu_log(VGPU_LOG_DEBUG, "TLS connection ended: %s", gnutls_strerror((int)n));
    shutdown(relay.near, SHUT_RDWR);
    shutdown(relay.net, SHUT_RD);
    return NULL;
}

/* The session -> TLS; when the session closes, the client is told (close_notify). */
static void *relay_out(void *arg)
{
    static uint8_t buf[RELAY_CHUNK];
    ssize_t n;

    (void)arg;
    for (;;) {
        n = recv(relay.near, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = gnutls_record_send(relay.session, buf + off, (size_t)(n - off));

            if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
                continue;
            if (w < 0)
                goto out;
            off += w;
        }
    }
    gnutls_bye(relay.session, GNUTLS_SHUT_WR);
out:
    shutdown(relay.net, SHUT_WR);
    shutdown(relay.near, SHUT_RDWR);
    return NULL;
}

/* The two relay threads, with every signal blocked (the session's own thread takes them). */
static int relay_start(void)
{
    sigset_t all, old;
    pthread_attr_t a;
    pthread_t t;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&t, &a, relay_in, NULL);
    if (!rc)
        rc = pthread_create(&relay.out, NULL, relay_out, NULL);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

/* The client's certificate: its common name (or "") and SHA-256 fingerprint.  0 or -1. */
static int peer_cert(gnutls_session_t s, char *cn, size_t cnlen, uint8_t sha256[32])
{
    const gnutls_datum_t *der;
    gnutls_x509_crt_t crt;
    unsigned int n = 0;
    size_t len = 32;
    int rc;

    der = gnutls_certificate_get_peers(s, &n);
    if (!der || !n || gnutls_x509_crt_init(&crt) < 0)
        return -1;
    rc = gnutls_x509_crt_import(crt, &der[0], GNUTLS_X509_FMT_DER);
    if (!rc)
        rc = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, sha256, &len);
    if (!rc) {
        size_t l = cnlen;

        if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &l) < 0)
            cn[0] = '\0';
    }
    gnutls_x509_crt_deinit(crt);
    return rc < 0 || len != 32 ? -1 : 0;
}

/* The handshake, and the certificate checked; 0 or -1 (logged). */
static int handshake(gnutls_session_t s, const char *where)
{
    unsigned int status = 0;
    int rc;

    do
        rc = gnutls_handshake(s);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    if (rc < 0) {
        vgpu_log(VGPU_LOG_WARN, "%s: TLS handshake failed: %s", where, gnutls_strerror(rc));
        gnutls_alert_send_appropriate(s, rc);     /* the client learns why */
        return -1;
    }
    /* gnutls_session_set_verify_cert() checked it already; a second look costs nothing */
    rc = gnutls_certificate_verify_peers2(s, &status);
    if (rc < 0 || status) {
        gnutls_datum_t why = { 0 };

        if (rc >= 0)
            gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
        vgpu_log(VGPU_LOG_WARN, "%s: client certificate refused: %s", where,
                 rc < 0 ? gnutls_strerror(rc) : why.data ? (char *)why.data : "not trusted");
        gnutls_free(why.data);
        gnutls_alert_send(s, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
        return -1;
    }
    return 0;
}

/*
 * Before closing on a refused client: what it sent is read and dropped for
 * up to a second, so the close does not reset the connection before the
 * client has read our alert.
 */
static void linger(int fd)
{
    uint8_t sink[4096];
    struct pollfd p = { .fd = fd, .events = POLLIN };

    shutdown(fd, SHUT_WR);
    while (poll(&p, 1, 1000) > 0 && read(fd, sink, sizeof(sink)) > 0)
        ;
}

int vgpu_tls_accept(int fd, const char *where, struct vgpu_identity *who, char *refuse,
                    size_t refuselen)
{
    const struct vgpu_cert_cfg *ct;
    uint8_t sha256[32];
    char cn[128] = "";
    int sp[2] = { -1, -1 };
    gnutls_session_t s;

    if (!creds || gnutls_init(&s, GNUTLS_SERVER) < 0)
        return -1;
    if (gnutls_priority_set_direct(s, TLS_PRIORITY, NULL) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds) < 0)
        goto fail;
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_cert(s, NULL, 0);
    gnutls_transport_set_int(s, fd);
    gnutls_handshake_set_timeout(s, TLS_HANDSHAKE_MS);
    if (handshake(s, where) < 0) {
        linger(fd);
        goto fail;
    }
    if (peer_cert(s, cn, sizeof(cn), sha256) < 0) {
        vgpu_log(VGPU_LOG_WARN, "%s: the client's certificate could not be read", where);
        goto fail;
    }
    ct = vgpu_config_cert(vgpu_cfg, cn, sha256);
    refuse[0] = '\0';
    if (ct) {
        *who = ct->who;
        vgpu_log(VGPU_LOG_INFO, "%s: TLS client [cert %s] (CN %s): vm %u, pool %c, %s", where,
                 ct->name, cn[0] ? cn : "none", ct->who.vm_id, ct->who.pool,
                 vgpu_prio_name(ct->who.priority));
    } else {
        char fp[65];

        for (int i = 0; i < 32; i++)
            snprintf(fp + 2 * i, 3, "%02x", sha256[i]);
        snprintf(refuse, refuselen, "the client certificate (CN %s, SHA-256 %s) is trusted but "
                 "no [cert] section of the server's configuration names it; its operator adds "
                 "one with its cn or sha256 and the vm_id it stands for", cn[0] ? cn : "none", fp);
        vgpu_log(VGPU_LOG_WARN, "%s: %s", where, refuse);
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
        goto fail;
    relay.session = s;
    relay.net = fd;
    relay.near = sp[0];
    if (relay_start() < 0) {
        close(sp[1]);
        relay.near = relay.net = -1;
        sp[0] = -1;
        goto fail;
    }
    return sp[1];
fail:
    if (sp[0] >= 0)
        close(sp[0]);
    gnutls_deinit(s);
    return -1;
}

void vgpu_tls_end(int inner)
{
    close(inner);                /* relay_out reads what is left, then end of file */
    if (relay.near < 0)
        return;
    alarm(5);                    /* a client that reads nothing more does not hold us */
    pthread_join(relay.out, NULL);
    alarm(0);
}

void vgpu_tls_forget(void)
{
    if (relay.near >= 0)
        close(relay.near);
    if (relay.net >= 0)
        close(relay.net);
    relay.near = relay.net = -1;
}
