/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The first exchange of every session (docs/protocol.md §1): the client's
 * Hello, checked for protocol version, call table, pool and room in the
 * scheduler, and the HelloReply that says yes or why not.
 *
 * A peer of another protocol version cannot parse our frames, nor we its
 * Hello; only magic and version sit at fixed offsets in every version.  So
 * the header is read on its own first, and such a peer gets the one frame
 * it can read (vgpu_hello_mismatch_encode()) and a log line here, instead
 * of a connection reset.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cudart_calltable.h"
#include "vgpu/agree.h"
#include "vgpu/apis.h"
#include "server_internal.h"
#include "vgpu/fdio.h"
#include "vgpu/wire.h"

#define DRAIN_MAX (1u << 20)   /* bytes of another version's Hello read and dropped */
#define DRAIN_MS 1000

/*
 * Reads and drops what is left of the peer's frame (so closing does not
 * reset the connection before it has read our answer), then says no more.
 */
static void drain(int fd, uint64_t left)
{
    uint8_t sink[4096];

    shutdown(fd, SHUT_WR);
    if (left > DRAIN_MAX)
        left = DRAIN_MAX;
    while (left) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, DRAIN_MS) <= 0)
            return;
        n = read(fd, sink, left < sizeof(sink) ? left : sizeof(sink));
        if (n <= 0)
            return;
        left -= (uint64_t)n;
    }
}

/* A client whose header carries another protocol version: told so, and logged. */
static int other_version(struct vgpu_session *s, const struct vgpu_frame_header *h)
{
    char why[200];
    uint8_t *out;
    size_t len;
    int rc;

    vgpu_wire_version_message(h->version, VGPU_PROTOCOL_VERSION, why, sizeof(why));
    vgpu_log(VGPU_LOG_WARN, "handshake refused: a client speaking protocol %u connected, this "
             "server speaks %u: %s", h->version, VGPU_PROTOCOL_VERSION, why);
    rc = vgpu_hello_mismatch_encode(h->version, h->seq, VGPU_CALL_TABLES_HASH,
                                    VGPU_SERVER_VERSION, &out, &len);
    if (rc == 0) {
        struct iovec iov = { .iov_base = out, .iov_len = len };

        if (vgpu_fd_writev_all(s->fd, &iov, 1) == 0)
            drain(s->fd, (uint64_t)h->env_len + h->payload_len);
        free(out);
    }
    return VGPU_WIRE_E_BAD_VERSION;
}

/* The Hello frame, whole, in a malloc'ed buffer; or the peer's version was not ours. */
static int read_hello(struct vgpu_session *s, uint8_t **buf, size_t *len)
{
    uint8_t head[VGPU_FRAME_HEADER_SIZE];
    struct vgpu_frame_header h;
    size_t total;
    int rc;

    *buf = NULL;
    rc = vgpu_fd_read_full(s->fd, head, sizeof(head));
    if (rc)
        return rc;
    rc = vgpu_frame_header_decode(head, sizeof(head), NULL, &h);
    if (rc == VGPU_WIRE_E_BAD_VERSION)
        return other_version(s, &h);
    if (rc)
        return rc;
    total = sizeof(head) + (size_t)h.env_len + h.payload_len;
    *buf = malloc(total);
    if (!*buf)
        return -ENOMEM;
    memcpy(*buf, head, sizeof(head));
    rc = vgpu_fd_read_full(s->fd, *buf + sizeof(head), total - sizeof(head));
    if (rc) {
        free(*buf);
        *buf = NULL;
        return rc;
    }
    *len = total;
    return 0;
}

/*
 * A guest of another release: with per-call shapes in its Hello, it gets
 * the calls that agree (the others are refused one by one); without them
 * (an older shim than per-call agreement), it is refused.
 */
static int other_tables(struct vgpu_session *s, const Vgpu__Wire__Hello *hello, char *why, size_t n)
{
    const char *v = hello->client_version && hello->client_version[0] ? hello->client_version : NULL;

    if (!hello->n_shapes_cudart && !hello->n_shapes_cuda && !hello->n_shapes_nvml) {
        snprintf(why, n, "the guest's vgpu libraries (%s%s) were built from other call tables "
                 "than %s and are too old to agree call by call: install the guest libraries "
                 "of the server's release (vgpu-guest %s)", v ? "vgpu " : "an older release",
                 v ? v : "", VGPU_SERVER_VERSION, VGPU_VERSION);
        return VGPU_WIRE_E_CALL_TABLE;
    }
    s->agree = malloc(sizeof(*s->agree));
    if (!s->agree) {
        snprintf(why, n, "out of memory");
        return VGPU_WIRE_E_REFUSED;
    }
    vgpu_agree(s->agree, hello->shapes_cudart, hello->n_shapes_cudart, hello->shapes_cuda,
               hello->n_shapes_cuda, hello->shapes_nvml, hello->n_shapes_nvml);
    snprintf(s->client_version, sizeof(s->client_version), "%s", v ? v : "of another release");
    vgpu_log(VGPU_LOG_INFO, "%s's vgpu libraries are vgpu %s, this is %s: %u of this server's "
             "calls are not served to it as they are (the rest agree)", hello->client_name,
             s->client_version, VGPU_SERVER_VERSION, s->agree->differ);
    return 0;
}

/* May this client have a session here?  0, or a wire error with the sentence in why. */
static int admit(struct vgpu_session *s, const Vgpu__Wire__Hello *hello, char *why, size_t n)
{
    int rc = vgpu_hello_check(hello, VGPU_CALL_TABLES_HASH, why, n);
    struct vgpu_sched_join j = { .vm_id = s->who.vm_id, .pool = s->who.pool,
                                 .priority = s->who.priority, .client = s->client,
                                 .max_vm = vgpu_config_vm_sessions(vgpu_cfg, s->who.vm_id) };

    if (rc == VGPU_WIRE_E_CALL_TABLE)
        rc = other_tables(s, hello, why, n);
    if (rc)
        return rc;
    if (s->refuse) {
        snprintf(why, n, "%s", s->refuse);     /* a bound of the server's, or an unknown certificate */
        return VGPU_WIRE_E_REFUSED;
    }
    if (!vgpu_config_pool(vgpu_cfg, s->who.pool)) {
        snprintf(why, n, "vgpu-server has no GPU pool %c for vm %u: add a [pool %c] "
                 "section to its configuration, or give the VM a configured pool",
                 s->who.pool ? s->who.pool : '?', s->who.vm_id, s->who.pool ? s->who.pool : '?');
        return VGPU_WIRE_E_REFUSED;
    }
    snprintf(s->client, sizeof(s->client), "%s", hello->client_name);
    s->client_pid = hello->client_pid;
    s->client_features = hello->features;
    j.client_pid = s->client_pid;
    /* a session the scheduler cannot hold would escape priorities and limits */
    rc = vgpu_sched_join(&j);
    if (rc == -EUSERS) {
        snprintf(why, n, "vm %u has %u sessions, its limit; end one, or raise 'sessions' in "
                 "the server's [vm %u] section", s->who.vm_id, j.max_vm, s->who.vm_id);
        return VGPU_WIRE_E_REFUSED;
    }
    if (rc < 0) {
        snprintf(why, n, "vgpu-server serves at most %d sessions at once; try "
                 "again when one has ended", VGPU_SCHED_MAX_SESSIONS);
        return VGPU_WIRE_E_REFUSED;
    }
    return 0;
}

int vgpu_session_handshake(struct vgpu_session *s)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    Vgpu__Wire__HelloReply reply = VGPU__WIRE__HELLO_REPLY__INIT;
    struct vgpu_frame f = { 0 };
    struct vgpu_frame_header h = { .flags = VGPU_FRAME_F_REPLY };
    char why[512] = "";
    uint8_t *buf;
    size_t len;
    int rc;

    rc = read_hello(s, &buf, &len);
    if (rc)
        return rc;     /* gone before a Hello, or of another version (said there) */
    rc = vgpu_frame_decode(buf, len, NULL, NULL, NULL, &f);
    if (!rc && f.env->body_case != VGPU__WIRE__ENVELOPE__BODY_HELLO)
        rc = VGPU_WIRE_E_MALFORMED;
    if (rc) {
        vgpu_log(VGPU_LOG_WARN, "client did not start with a valid Hello: %s",
                 vgpu_wire_strerror(rc));
        goto out;
    }
    rc = admit(s, f.env->hello, why, sizeof(why));
    vgpu_hello_reply_init(&reply, rc, VGPU_CALL_TABLES_HASH, VGPU_SERVER_VERSION, why);
    /* the client refuses what does not agree itself, naming both releases */
    VGPU_AGREE_PUT_SHAPES(&reply);
    env.body_case = VGPU__WIRE__ENVELOPE__BODY_HELLO_REPLY;
    env.hello_reply = &reply;
    h.seq = f.hdr.seq;
    if (vgpu_fd_send_frame(s->fd, &h, &env, NULL, 0) == 0 && rc == 0) {
        vgpu_log(VGPU_LOG_INFO, "session for %s (pid %u on %s), vm %u pool %c priority %s",
                 f.env->hello->client_name, f.env->hello->client_pid, f.env->hello->client_host,
                 s->who.vm_id, s->who.pool, vgpu_prio_name(s->who.priority));
        vgpu_proctitle_set("vgpu-server: vm %u pool %c %s (%.64s, pid %u)", s->who.vm_id,
                           s->who.pool, vgpu_prio_name(s->who.priority),
                           f.env->hello->client_name, f.env->hello->client_pid);
    }
    else if (rc)
        vgpu_log(VGPU_LOG_WARN, "handshake refused: %s", why);
out:
    vgpu_frame_release(&f);
    free(buf);
    return rc;
}
