/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's connection: one per process to the vgpu-server named by
 * VGPU_SERVER (mmio, unix:PATH, tcp:HOST:PORT; default: mmio when a
 * vgpu-stub device is present, else unix:/tmp/vgpu.sock), opened at the
 * first call that needs it, then Hello/HelloReply, the error table and the
 * queue pair.  Requests go through the queue pair when they fit it, else on
 * the transport's frame path; replies come in order.  A failure of the
 * connection is for good: it is logged once, and every later call gets
 * -ENOTCONN.  Also what exit and fork() do to the connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client_internal.h"
#include "vgpu/agree.h"
#include "cudart_calltable.h"
#include "vgpu/apis.h"
#include "vgpu/version.h"

#define DEFAULT_SERVER "unix:/tmp/vgpu.sock"

void vgpu_conn_drop_locked(struct vgpu_client *c, const char *why)
{
    struct vgpu_transport *t = &c->conn.transport;
    const char *at = t->ops == &vgpu_transport_mmio ? "the vgpu-stub device" : c->conn.server_addr;

    if (!why)
        ;                       /* the caller said why already */
    else if (c->conn.state == VGPU_CONN_UP && !c->conn.server_version[0])
        vgpu_shim_log(VGPU_LOG_ERROR, "cannot reach vgpu-server at %s (%s); CUDA calls fail with "
                      "cudaErrorNoDevice", at, why);
    else if (c->conn.state == VGPU_CONN_UP)
        vgpu_shim_log(VGPU_LOG_ERROR, "lost the connection to vgpu-server at %s (%s); "
                      "CUDA calls now fail with cudaErrorNoDevice", at, why);
    vgpu_callbacks_stop_locked(c);
    if (t->ops)
        t->ops->close(t);
    c->conn.state = VGPU_CONN_FAILED;
    vgpu_flights_clear(&c->flights);
}

static const char *rc_text(int rc)
{
    return rc < -1000 ? vgpu_wire_strerror(rc) : strerror(-rc);
}

/*
 * Why the connection ended, as the user should read it: in a guest the
 * device answers "no server" for a server that is down, which would read
 * as a connection reset.
 */
static const char *drop_text(const struct vgpu_client *c, int rc)
{
    if (c->conn.transport.ops != &vgpu_transport_mmio || (rc != -ECONNRESET && rc != -EPIPE))
        return rc_text(rc);
    if (c->conn.server_version[0])
        return "the host ended this program's session: vgpu-server stopped or restarted, the "
               "session's process ended (the server's log says why), or QEMU lost its chardev; "
               "a program started once the server is up is served";
    return "the host's vgpu-server is not linked to this VM's vgpu-stub device: it is not "
           "running, or QEMU's chardev does not reach it (QEMU links again by itself, every "
           "reconnect-ms)";
}

/*
 * Sends one request: through the queue pair when it is up and the frame
 * and a reply of up to reply_hint bytes fit it, else on the frame path
 * (after whatever is in flight has landed), or, with qp_only, -EAGAIN
 * instead.  Sets *via_qp and *sent_seq.
 */
int vgpu_conn_send_locked(struct vgpu_client *c, Vgpu__Wire__Envelope *env,
                          const struct iovec *payload, int npayload, size_t reply_hint,
                          bool qp_only, bool *via_qp, uint64_t *sent_seq)
{
    struct vgpu_transport *t = &c->conn.transport;
    struct vgpu_frame_header h = { 0 };
    size_t len = 0;
    bool qp = false;
    int rc;

    /* through the queue pair, the envelope goes in its compact form */
    if (t->qp_mem && t->pass_fd < 0 &&
        vgpu_frame_head_size_flags(env, VGPU_FRAME_F_COMPACT, &len) == 0) {
        for (int i = 0; i < npayload; i++)
            len += payload[i].iov_len;
        qp = len <= vgpu_qring_max(&t->qp.sub) && reply_hint + 4096 <= vgpu_qring_max(&t->qp.comp);
    }
    if (!qp && qp_only)
        return -EAGAIN;
    if (!qp && c->flights.n && vgpu_flight_land_all_locked(c))
        return -ENOTCONN;
    h.seq = ++c->conn.seq;
    h.flags = qp ? VGPU_FRAME_F_COMPACT : 0;
    *sent_seq = h.seq;
    *via_qp = qp;
    rc = qp ? vgpu_shim_qp_send(t, &h, env, payload, npayload, len)
            : t->ops->send(t, &h, env, payload, npayload);
    if (rc && rc != -E2BIG)
        vgpu_conn_drop_locked(c, drop_text(c, rc));
    return rc;
}

/*
 * The next reply (to the oldest request not answered yet), decoded into f
 * with the scratch f lends, if any.  -EMSGSIZE: the server could not send
 * it (the connection is fine).
 */
int vgpu_conn_take_reply_locked(struct vgpu_client *c, bool qp, uint8_t **buf, size_t *len,
                                struct vgpu_frame *f)
{
    struct vgpu_transport *t = &c->conn.transport;
    int rc = qp ? vgpu_shim_qp_recv(t, buf, len) : t->ops->recv(t, buf, len);

    if (rc == -EMSGSIZE)
        return rc;
    if (rc == VGPU_WIRE_E_BAD_VERSION) {
        char why[160];

        snprintf(why, sizeof(why), "its frames carry another protocol version than this "
                 "shim's %u: rebuild the shim and server from the same vgpu release",
                 VGPU_PROTOCOL_VERSION);
        vgpu_conn_drop_locked(c, why);
        return rc;
    }
    if (rc) {
        vgpu_conn_drop_locked(c, drop_text(c, rc));
        return rc;
    }
    rc = vgpu_frame_decode_scratch(*buf, *len, NULL, NULL, NULL, f->scratch, f->scratch_size, f);
    if (rc || !(f->hdr.flags & VGPU_FRAME_F_REPLY)) {
        vgpu_conn_drop_locked(c, rc ? vgpu_wire_strerror(rc) : "not a reply");
        vgpu_frame_release(f);
        free(*buf);
        *buf = NULL;
        return rc ? rc : -EPROTO;
    }
    return 0;
}

/* One request and its reply (flights before it land first). */
int vgpu_conn_roundtrip_locked(struct vgpu_client *c, Vgpu__Wire__Envelope *env,
                               const struct iovec *payload, int npayload, size_t reply_hint,
                               uint8_t **buf, size_t *len, struct vgpu_frame *f)
{
    uint64_t mine;
    bool qp;
    int rc = vgpu_conn_send_locked(c, env, payload, npayload, reply_hint, false, &qp, &mine);

    if (rc)
        return rc;
    while (qp && c->flights.n)
        if (vgpu_flight_land_one_locked(c))
            return -ENOTCONN;
    rc = vgpu_conn_take_reply_locked(c, qp, buf, len, f);
    if (rc)
        return rc;
    if (f->hdr.seq != mine) {
        vgpu_conn_drop_locked(c, "reply out of sequence");
        vgpu_frame_release(f);
        free(*buf);
        *buf = NULL;
        return -EPROTO;
    }
    return 0;
}

int vgpu_conn_control_locked(struct vgpu_client *c, Vgpu__Wire__Envelope *env, int fd,
                             struct vgpu_frame *f, uint8_t **buf)
{
    size_t len;
    int rc;

    if (c->queue.n)
        vgpu_queue_flush_locked(c);  /* queued calls go first: they may use what this changes */
    if (c->conn.state != VGPU_CONN_UP)
        return -ENOTCONN;
    c->conn.transport.pass_fd = fd;
    rc = vgpu_conn_roundtrip_locked(c, env, NULL, 0, 0, buf, &len, f);
    c->conn.transport.pass_fd = -1;
    return rc;
}

/*
 * A server of another release that took this client: its call tables
 * differ, and it sent its shapes.  The calls that do not agree are refused
 * here (vgpu_conn_agreed), each once with a message naming both releases.
 */
static bool other_release(struct vgpu_client *c, const Vgpu__Wire__HelloReply *r)
{
    if (!r->ok || r->protocol_version != VGPU_PROTOCOL_VERSION ||
        r->call_table_hash == VGPU_CALL_TABLES_HASH ||
        (!r->n_shapes_cudart && !r->n_shapes_cuda && !r->n_shapes_nvml))
        return false;
    c->conn.agree = malloc(sizeof(*c->conn.agree));
    if (!c->conn.agree)
        return false;
    vgpu_agree(c->conn.agree, r->shapes_cudart, r->n_shapes_cudart, r->shapes_cuda,
               r->n_shapes_cuda, r->shapes_nvml, r->n_shapes_nvml);
    vgpu_shim_log(VGPU_LOG_INFO, "%s is of another release than this shim (vgpu %s): %u of "
                  "this shim's calls are not served by it as they are, and fail with 'not "
                  "supported'", r->server_version && r->server_version[0] ? r->server_version
                  : "the server", VGPU_VERSION, c->conn.agree->differ);
    return true;
}

bool vgpu_conn_agreed(struct vgpu_client *c, const struct vgpu_call_req *req)
{
    if (vgpu_agreed(c->conn.agree, req->call_id))
        return true;
    if (vgpu_agree_first_refusal(c->conn.agree, req->call_id))
        vgpu_shim_log(VGPU_LOG_ERROR, "%s is not served by %s as this shim (vgpu %s) makes it: "
                      "install the guest libraries of the server's release, or a server of this "
                      "one; the call fails with 'not supported'", req->name,
                      c->conn.server_version, VGPU_VERSION);
    return false;
}

/* Hello and its reply, right after connecting. */
static int handshake(struct vgpu_client *c)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__Hello hello = VGPU__WIRE__HELLO__INIT;
    struct vgpu_frame f = { 0 };
    char host[256] = "", name[256] = "", why[512];
    uint8_t *buf = NULL;
    size_t len;
    int rc;

    free(c->conn.agree);        /* this server's say, not an earlier one's (a fork's child) */
    c->conn.agree = NULL;
    gethostname(host, sizeof(host) - 1);
    snprintf(name, sizeof(name), "%s", program_invocation_short_name);
    vgpu_hello_init(&hello, VGPU_CALL_TABLES_HASH, VGPU_CALL_TABLES_API, name, (uint32_t)getpid(), host);
    /* a server of another release serves the calls whose shapes agree (vgpu/agree.h) */
    hello.client_version = (char *)VGPU_VERSION;
    VGPU_AGREE_PUT_SHAPES(&hello);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    rc = vgpu_conn_roundtrip_locked(c, &env, NULL, 0, 4096, &buf, &len, &f);
    if (rc)
        return rc;
    if (f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY)
        rc = -EPROTO;
    else if (other_release(c, f.env->hello_reply))
        rc = 0;
    else if (!f.env->hello_reply->ok && f.env->hello_reply->n_shapes_cudart &&
             f.env->hello_reply->message && f.env->hello_reply->message[0]) {
        /* a server that compares call by call said why itself (a bound, a pool, a limit) */
        snprintf(why, sizeof(why), "%s", f.env->hello_reply->message);
        rc = VGPU_WIRE_E_REFUSED;
    } else
        rc = vgpu_hello_reply_check(f.env->hello_reply, VGPU_CALL_TABLES_HASH, why, sizeof(why));
    if (rc)
        vgpu_shim_log(VGPU_LOG_ERROR, "vgpu-server at %s refused this program: %s", c->conn.server_addr,
                      rc == -EPROTO ? "it did not answer the handshake" : why);
    else
        snprintf(c->conn.server_version, sizeof(c->conn.server_version), "%s",
                 f.env->hello_reply->server_version && f.env->hello_reply->server_version[0]
                 ? f.env->hello_reply->server_version : "vgpu-server of unknown version");
    vgpu_frame_release(&f);
    free(buf);
    return rc;
}

/* The transport VGPU_SERVER names, and the address it takes: 0 or -EINVAL (logged). */
static int pick_transport(struct vgpu_client *c, const char **addr)
{
    struct vgpu_transport *t = &c->conn.transport;
    const char *env = getenv("VGPU_SERVER");
    const char *a;

    /* In a VM with the device, the device is the way out unless told otherwise. */
    a = env && *env ? env : vgpu_mmio_present() ? "mmio" : DEFAULT_SERVER;
    c->conn.server_addr = a;
    if (!strcmp(a, "mmio")) {
        t->ops = &vgpu_transport_mmio;
        *addr = a;
    } else if (!strncmp(a, "unix:", 5)) {
        t->ops = &vgpu_transport_unix;
        *addr = a + 5;
    } else if (!strncmp(a, "tcp:", 4)) {
        const char *tls = getenv("VGPU_TLS");

        t->ops = tls && !strcmp(tls, "insecure") ? &vgpu_transport_tcp : &vgpu_transport_tls;
        *addr = a + 4;
    } else {
        vgpu_shim_log(VGPU_LOG_ERROR, "VGPU_SERVER=%s is not understood: use mmio, unix:PATH "
                      "or tcp:HOST:PORT", a);
        t->ops = NULL;
        return -EINVAL;
    }
    return 0;
}

/* 0 when the connection is up (made now if it was never tried), else -errno. */
int vgpu_conn_ensure_locked(struct vgpu_client *c)
{
    struct vgpu_transport *t = &c->conn.transport;
    const char *addr;
    int rc;

    if (c->conn.state == VGPU_CONN_UP)
        return 0;
    if (c->conn.state == VGPU_CONN_FAILED)
        return -ENOTCONN;
    c->conn.state = VGPU_CONN_FAILED;
    rc = pick_transport(c, &addr);
    if (rc)
        return rc;
    rc = t->ops->connect(t, addr);
    if (rc && (t->ops == &vgpu_transport_mmio || rc == -EKEYREJECTED)) {
        t->ops = NULL;           /* the transport said what is wrong */
        return rc;
    }
    if (rc) {
        vgpu_shim_log(VGPU_LOG_ERROR, "cannot reach vgpu-server at %s (%s): start it with "
                      "'vgpu-server --listen %s', or set VGPU_SERVER to a running one; "
                      "CUDA calls fail with cudaErrorNoDevice", c->conn.server_addr, strerror(-rc),
                      c->conn.server_addr);
        t->ops = NULL;
        return rc;
    }
    c->conn.state = VGPU_CONN_UP;
    rc = handshake(c);
    if (rc) {
        vgpu_conn_drop_locked(c, NULL);    /* the handshake said why */
        return rc;
    }
    rc = vgpu_fetch_error_table_locked(c);
    if (rc) {
        vgpu_conn_drop_locked(c, "the server's error table did not come");
        return rc;
    }
    vgpu_qp_setup_locked(c);
    vgpu_shim_log(VGPU_LOG_INFO, "connected to %s at %s%s (this shim: vgpu %s)",
                  c->conn.server_version, c->conn.server_addr,
                  t->qp_mem ? " (shared-memory queue pair)" : "", VGPU_VERSION);
    return 0;
}

/*
 * At exit, end this client's session at once (the mmio link shares one
 * device).  A thread still inside a call keeps the lock: then the session
 * ends when the server sees the client gone, and exit does not wait.
 */
void vgpu_conn_fini(struct vgpu_client *c)
{
    struct vgpu_transport *t = &c->conn.transport;

    if (pthread_mutex_trylock(&c->lock))
        return;
    /* work the program queued still runs, as it would natively before exit */
    vgpu_queue_settle_locked(c);
    vgpu_callbacks_stop_locked(c);
    /* what kernels printed that a flight's reply announced last */
    if (c->devout_pending && c->conn.state == VGPU_CONN_UP && t->ops)
        vgpu_ctl_device_output_locked(c);
    if (c->conn.state == VGPU_CONN_UP && t->ops && vgpu_ctl_close_locked(c) == 0)
        t->ops->close(t);
    c->conn.state = VGPU_CONN_FAILED;
    pthread_mutex_unlock(&c->lock);
}

/*
 * fork(): the child shares the parent's connection (socket or channel) but
 * not its session.  It starts over with no connection, and the parent's is
 * left alone; the lock is held across fork so it is consistent in both.
 */
void vgpu_conn_atfork_prepare(struct vgpu_client *c)
{
    pthread_mutex_lock(&c->lock);
    vgpu_queue_settle_locked(c);
}

void vgpu_conn_atfork_parent(struct vgpu_client *c)
{
    pthread_mutex_unlock(&c->lock);
}

void vgpu_conn_atfork_child(struct vgpu_client *c)
{
    struct vgpu_transport *t = &c->conn.transport;

    vgpu_shim_tls_forget(t);
    if (t->ops == &vgpu_transport_mmio)
        vgpu_mmio_forget();
    else if (t->fd >= 0)
        close(t->fd);
    if (t->qp_mem && t->ops != &vgpu_transport_mmio)
        munmap(t->qp_mem, t->qp_len);
    t->qp_mem = NULL;
    vgpu_flights_clear(&c->flights);    /* none: they landed before the fork */
    if (c->slot.base)
        munmap(c->slot.base, c->slot.size);   /* the parent's; the child takes a slot of its own */
    c->slot.base = NULL;
    c->slot.used = 0;
    /* the parent's mapped memory stays mapped here, but its slots and regions are the parent's */
    while (c->bar_runs) {
        struct vgpu_bar_run *r = c->bar_runs;

        c->bar_runs = r->next;
        free(r->used);
        free(r);
    }
    t->ops = NULL;
    t->fd = -1;
    t->pass_fd = -1;
    c->conn.state = VGPU_CONN_UNTRIED;
    c->drained.valid = false;           /* the parent's streams are not the child's session's */
    c->conn.server_version[0] = '\0';   /* the child's own handshake says it again */
    c->queue.n = 0;                     /* flushed before the fork */
    c->queue.flusher_started = false;   /* the flusher thread is not in the child */
    vgpu_queue_init(&c->queue);         /* its flusher's words anew */
    vgpu_callbacks_forked(c);
    pthread_mutex_unlock(&c->lock);
}
