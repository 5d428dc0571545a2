/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TLS transport: tcp:HOST:PORT to a remote vgpu-server, with mutual
 * TLS (the server's certificate is checked against the CA and the host
 * name; ours says who we are).  GnuTLS is loaded when a program first
 * connects this way, not linked: programs in a guest, which reach the
 * server through the device, never load it.
 *
 * Credentials (docs/shim.md, "Remote servers"): VGPU_TLS_CA, VGPU_TLS_CERT
 * and VGPU_TLS_KEY name the files; what they leave out comes from
 * VGPU_TLS_DIR, else $XDG_CONFIG_HOME/vgpu/tls (~/.config/vgpu/tls without
 * it) when that exists, else /etc/vgpu/tls, in the layout
 * of QEMU's tls-creds-x509 client objects (ca-cert.pem, client-cert.pem,
 * client-key.pem).  VGPU_TLS_SERVER_NAME replaces HOST in the name check.
 * VGPU_TLS=insecure speaks plain TCP instead, to a server whose socket says
 * tls = insecure.
 *
 * Frames are sent as records (the header and envelope, then each payload
 * piece: nothing copied into one buffer) and read back header first.  The
 * client's lock is held around every use, so one thread at a time.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/transport.h"
#include "vgpu/fdio.h"

#define TLS_HANDSHAKE_MS 10000
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* The GnuTLS functions we call, by the header's own prototypes. */
#define TLS_FUNCTIONS(X)                                                              \
    X(gnutls_certificate_allocate_credentials) X(gnutls_certificate_free_credentials)  \
    X(gnutls_certificate_set_x509_trust_file) X(gnutls_certificate_set_x509_key_file)  \
    X(gnutls_init) X(gnutls_deinit) X(gnutls_priority_set_direct)                      \
    X(gnutls_credentials_set) X(gnutls_session_set_verify_cert2) X(gnutls_server_name_set) \
    X(gnutls_transport_set_int2) X(gnutls_handshake_set_timeout) X(gnutls_handshake)    \
    X(gnutls_error_is_fatal) X(gnutls_record_send) X(gnutls_record_recv) X(gnutls_bye)  \
    X(gnutls_strerror) X(gnutls_session_get_verify_cert_status)                        \
    X(gnutls_certificate_verification_status_print) X(gnutls_alert_get)               \
    X(gnutls_alert_get_name)

static struct {
#define TLS_FIELD(f) __typeof__(f) *f;
    TLS_FUNCTIONS(TLS_FIELD)
#undef TLS_FIELD
    gnutls_free_function *free;
} gt;

/* One connection's TLS state (t->tls). */
struct tls_conn {
    gnutls_session_t session;
    gnutls_certificate_credentials_t creds;
};

/* Loads libgnutls.so.30 once; 0 or -1 (logged). */
static int load_gnutls(void)
{
    static int loaded;          /* 1 loaded, -1 failed; the client's lock orders callers */
    void *h;

    if (loaded)
        return loaded > 0 ? 0 : -1;
    loaded = -1;
    h = dlopen("libgnutls.so.30", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        vgpu_shim_log(VGPU_LOG_ERROR, "tcp: needs GnuTLS for TLS and cannot load it (%s): "
                      "install libgnutls30", dlerror());
        return -1;
    }
#define TLS_LOAD(f)                                                                    \
    if (!(*(void **)&gt.f = dlsym(h, #f))) {                                          \
        vgpu_shim_log(VGPU_LOG_ERROR, "the GnuTLS found lacks %s: install libgnutls30 " \
                      "3.6 or newer", #f);                                             \
        return -1;                                                                     \
    }
    TLS_FUNCTIONS(TLS_LOAD)
#undef TLS_LOAD
    *(void **)&gt.free = dlsym(h, "gnutls_free");
    if (!gt.free)
        return -1;
    loaded = 1;
    return 0;
}

/* dst = the variable's value, else dir/name.  Which dir: the first of the list that exists. */
static void cred_path(char *dst, size_t cap, const char *var, const char *dir, const char *name)
{
    const char *v = getenv(var);

    if (v && *v)
        snprintf(dst, cap, "%s", v);
    else
        snprintf(dst, cap, "%s/%s", dir, name);
}

static void cred_dir(char *dir, size_t cap)
{
    const char *v = getenv("VGPU_TLS_DIR"), *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME");

    if (v && *v) {
        snprintf(dir, cap, "%s", v);
        return;
    }
    if (xdg && *xdg)
        snprintf(dir, cap, "%s/vgpu/tls", xdg);
    else if (home && *home)
        snprintf(dir, cap, "%s/.config/vgpu/tls", home);
    else
        dir[0] = '\0';
    if (!dir[0] || access(dir, F_OK))
        snprintf(dir, cap, "/etc/vgpu/tls");
}

/* The credentials: our certificate and key, the CA the server's must chain to.  0 or -1. */
static int load_creds(struct tls_conn *tc)
{
    char dir[PATH_MAX - 32], ca[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];
    int rc;

    cred_dir(dir, sizeof(dir));
    cred_path(ca, sizeof(ca), "VGPU_TLS_CA", dir, "ca-cert.pem");
    cred_path(cert, sizeof(cert), "VGPU_TLS_CERT", dir, "client-cert.pem");
    cred_path(key, sizeof(key), "VGPU_TLS_KEY", dir, "client-key.pem");
    if (access(ca, R_OK) || access(cert, R_OK) || access(key, R_OK)) {
        vgpu_shim_log(VGPU_LOG_ERROR, "tcp: speaks TLS and needs this client's certificate: "
                      "cannot read %s", access(ca, R_OK) ? ca : access(cert, R_OK) ? cert : key);
        vgpu_shim_log(VGPU_LOG_ERROR, "set VGPU_TLS_DIR to a directory with ca-cert.pem, "
                      "client-cert.pem and client-key.pem (or VGPU_TLS_CA, VGPU_TLS_CERT, "
                      "VGPU_TLS_KEY); VGPU_TLS=insecure speaks plain TCP to a server that allows it");
        return -1;
    }
    if ((rc = gt.gnutls_certificate_allocate_credentials(&tc->creds)) < 0)
        goto fail;
    rc = gt.gnutls_certificate_set_x509_trust_file(tc->creds, ca, GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
        vgpu_shim_log(VGPU_LOG_ERROR, "TLS: %s: %s", ca,
                      rc ? gt.gnutls_strerror(rc) : "no CA certificate in it");
        return -1;
    }
    rc = gt.gnutls_certificate_set_x509_key_file(tc->creds, cert, key, GNUTLS_X509_FMT_PEM);
    if (rc < 0) {
        vgpu_shim_log(VGPU_LOG_ERROR, "TLS: certificate %s with key %s: %s", cert, key,
                      gt.gnutls_strerror(rc));
        return -1;
    }
    return 0;
fail:
    vgpu_shim_log(VGPU_LOG_ERROR, "TLS: %s", gt.gnutls_strerror(rc));
    return -1;
}

/* Alerts that say the server did not take our certificate. */
static bool certificate_alert(gnutls_alert_description_t a)
{
    return a == GNUTLS_A_CERTIFICATE_REQUIRED || a == GNUTLS_A_BAD_CERTIFICATE ||
           a == GNUTLS_A_UNKNOWN_CA || a == GNUTLS_A_CERTIFICATE_REVOKED ||
           a == GNUTLS_A_CERTIFICATE_EXPIRED || a == GNUTLS_A_UNSUPPORTED_CERTIFICATE ||
           a == GNUTLS_A_CERTIFICATE_UNKNOWN;
}

#define REFUSED_OURS ": the server refused this client's certificate (is it one the server's CA " \
                     "signed for TLS clients, unexpired and not revoked?)"

/* The handshake failed: why, in words a user can act on. */
static void handshake_failed(struct tls_conn *tc, int rc, const char *server)
{
    unsigned int status = gt.gnutls_session_get_verify_cert_status(tc->session);
    gnutls_datum_t why = { 0 };

    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR && status &&
        gt.gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) >= 0) {
        vgpu_shim_log(VGPU_LOG_ERROR, "TLS: the certificate of vgpu-server at %s is not "
                      "trusted: %s (check VGPU_TLS_CA, or VGPU_TLS_SERVER_NAME)", server,
                      (char *)why.data);
        (*gt.free)(why.data);
        return;
    }
    if (rc == GNUTLS_E_FATAL_ALERT_RECEIVED) {
        gnutls_alert_description_t a = gt.gnutls_alert_get(tc->session);
        const char *name = gt.gnutls_alert_get_name(a);

        vgpu_shim_log(VGPU_LOG_ERROR, "TLS handshake with vgpu-server at %s failed: the server "
                      "sent the alert '%s'%s", server, name ? name : "?",
                      certificate_alert(a) ? REFUSED_OURS : "");
        return;
    }
    vgpu_shim_log(VGPU_LOG_ERROR, "TLS handshake with vgpu-server at %s failed: %s%s", server,
                  gt.gnutls_strerror(rc),
                  rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PULL_ERROR ||
                  rc == GNUTLS_E_PUSH_ERROR || rc == GNUTLS_E_UNEXPECTED_PACKET_LENGTH
                  ? " (the server closed the connection during the handshake: is its socket one "
                    "that speaks TLS, and is it within its connection limits?)" : "");
}

static void tls_free(struct vgpu_transport *t)
{
    struct tls_conn *tc = t->tls;

    if (!tc)
        return;
    if (tc->session)
        gt.gnutls_deinit(tc->session);
    if (tc->creds)
        gt.gnutls_certificate_free_credentials(tc->creds);
    free(tc);
    t->tls = NULL;
}

/* The HOST of HOST:PORT (brackets of [v6] dropped) for the name check. */
static void host_of(const char *hostport, char *host, size_t cap)
{
    const char *colon = strrchr(hostport, ':'), *v = getenv("VGPU_TLS_SERVER_NAME");
    size_t n = colon ? (size_t)(colon - hostport) : strlen(hostport);

    if (v && *v) {
        snprintf(host, cap, "%s", v);
        return;
    }
    if (n >= 2 && hostport[0] == '[' && hostport[n - 1] == ']') {
        hostport++;
        n -= 2;
    }
    snprintf(host, cap, "%.*s", (int)n, hostport);
}

static int tls_connect(struct vgpu_transport *t, const char *hostport)
{
    struct tls_conn *tc;
    char host[256];
    int rc;

    if (load_gnutls() < 0)
        return -EKEYREJECTED;
    tc = calloc(1, sizeof(*tc));
    if (!tc)
        return -ENOMEM;
    t->tls = tc;
    if (load_creds(tc) < 0) {
        tls_free(t);
        return -EKEYREJECTED;
    }
    rc = vgpu_shim_tcp_connect(t, hostport);
    if (rc) {
        tls_free(t);
        return rc;
    }
    host_of(hostport, host, sizeof(host));
    /* GNUTLS_NO_SIGNAL: a server gone must give an error, not a SIGPIPE that kills the program */
    if ((rc = gt.gnutls_init(&tc->session, GNUTLS_CLIENT | GNUTLS_NO_SIGNAL)) < 0 ||
        (rc = gt.gnutls_priority_set_direct(tc->session, TLS_PRIORITY, NULL)) < 0 ||
        (rc = gt.gnutls_credentials_set(tc->session, GNUTLS_CRD_CERTIFICATE, tc->creds)) < 0)
        goto fail;
    /* SNI takes names only; the certificate check below takes addresses too */
    if (strspn(host, "0123456789.:") != strlen(host) || !host[0])
        gt.gnutls_server_name_set(tc->session, GNUTLS_NAME_DNS, host, strlen(host));
    {
        /* the host name, and a certificate made for TLS servers (its EKU, where it has one) */
        gnutls_typed_vdata_st want[2] = {
            { .type = GNUTLS_DT_DNS_HOSTNAME, .data = (unsigned char *)host },
            { .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (unsigned char *)GNUTLS_KP_TLS_WWW_SERVER },
        };

        gt.gnutls_session_set_verify_cert2(tc->session, want, 2, 0);
    }
    gt.gnutls_transport_set_int2(tc->session, t->fd, t->fd);
    gt.gnutls_handshake_set_timeout(tc->session, TLS_HANDSHAKE_MS);
    do
        rc = gt.gnutls_handshake(tc->session);
    while (rc < 0 && !gt.gnutls_error_is_fatal(rc));
    if (rc < 0) {
        handshake_failed(tc, rc, hostport);
        goto out;
    }
    return 0;
fail:
    vgpu_shim_log(VGPU_LOG_ERROR, "TLS: %s", gt.gnutls_strerror(rc));
out:
    tls_free(t);
    close(t->fd);
    t->fd = -1;
    return -EKEYREJECTED;
}

/* Writes all n bytes as records.  0 or -EPIPE. */
static int send_all(gnutls_session_t s, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = gt.gnutls_record_send(s, p, n);

        if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED)
            continue;
        if (w <= 0)
            return -EPIPE;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * The server ended the session with an alert.  Under TLS 1.3 that is how a
 * refused client certificate shows: our handshake had already finished.
 */
static void alert_received(gnutls_session_t s)
{
    gnutls_alert_description_t a = gt.gnutls_alert_get(s);
    const char *name = gt.gnutls_alert_get_name(a);

    vgpu_shim_log(VGPU_LOG_ERROR, "TLS: vgpu-server ended the connection with the alert '%s'%s",
                  name ? name : "?", certificate_alert(a) ? REFUSED_OURS : "");
}

/* Reads exactly n bytes: 0, -ECONNRESET when the server closed before the first, or -EPIPE. */
static int recv_all(gnutls_session_t s, uint8_t *p, size_t n, bool first)
{
    while (n) {
        ssize_t r = gt.gnutls_record_recv(s, p, n);

        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
            alert_received(s);
        if (r <= 0)
            return first ? -ECONNRESET : -EPIPE;
        first = false;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int tls_send(struct vgpu_transport *t, const struct vgpu_frame_header *h,
                    const Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload)
{
    struct tls_conn *tc = t->tls;
    uint64_t plen = 0;
    size_t hsize, written;
    uint8_t *head;
    int rc;

    t->pass_fd = -1;             /* nothing passes an fd over TCP */
    if (!tc)
        return -ENOTCONN;
    for (int i = 0; i < npayload; i++)
        plen += payload[i].iov_len;
    rc = vgpu_frame_head_size_flags(env, h->flags, &hsize);
    if (rc)
        return rc;
    head = malloc(hsize);
    if (!head)
        return -ENOMEM;
    rc = vgpu_frame_head_write(h, env, plen, NULL, head, hsize, &written);
    if (!rc)
        rc = send_all(tc->session, head, written);
    for (int i = 0; !rc && i < npayload; i++)
        rc = send_all(tc->session, payload[i].iov_base, payload[i].iov_len);
    free(head);
    return rc;
}

static int tls_recv(struct vgpu_transport *t, uint8_t **buf, size_t *len)
{
    struct tls_conn *tc = t->tls;
    uint8_t head[VGPU_FRAME_HEADER_SIZE];
    struct vgpu_frame_header h;
    size_t total;
    uint8_t *b;
    int rc;

    *buf = NULL;
    *len = 0;
    if (!tc)
        return -ENOTCONN;
    rc = recv_all(tc->session, head, sizeof(head), true);
    if (!rc)
        rc = vgpu_frame_header_decode(head, sizeof(head), NULL, &h);
    if (rc)
        return rc;
    total = sizeof(head) + (size_t)h.env_len + (size_t)h.payload_len;
    b = malloc(total);
    if (!b)
        return -ENOMEM;
    memcpy(b, head, sizeof(head));
    rc = recv_all(tc->session, b + sizeof(head), total - sizeof(head), false);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = total;
    return 0;
}

static int tls_alive(struct vgpu_transport *t)
{
    struct pollfd p = { .fd = t->fd, .events = POLLIN };

    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
        return -EPIPE;
    return 0;
}

static void tls_close(struct vgpu_transport *t)
{
    struct tls_conn *tc = t->tls;

    if (tc && tc->session)
        gt.gnutls_bye(tc->session, GNUTLS_SHUT_WR);
    tls_free(t);
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

static void tls_bell(struct vgpu_transport *t)
{
    (void)t;                     /* no queue pair over TCP */
}

void vgpu_shim_tls_forget(struct vgpu_transport *t)
{
    tls_free(t);                 /* the parent's session: nothing is sent from here */
}

const struct vgpu_transport_ops vgpu_transport_tls = {
    .name = "tls", .connect = tls_connect, .send = tls_send, .recv = tls_recv,
    .close = tls_close, .bell = tls_bell, .alive = tls_alive,
};
