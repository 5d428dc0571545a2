/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's side of the control plane (docs/protocol.md, "The two
 * planes"): vgpu's own operations as Control messages of their own, never
 * CUDA call ids.  Attaching the queue pair, registering and dropping shared
 * regions, fetching the server runtime's error table, closing the session.
 *
 * Every function here is called with c->lock held and the connection up,
 * sends one Control on the frame path through vgpu_conn_control_locked()
 * and returns 0 or a negative errno: the server's ControlStatus mapped back
 * (control_errno()), -ENOTCONN when the connection failed, -EPROTO when the
 * reply does not answer.  What the server said about a failure goes to the
 * log at info level; the callers fall back (no queue pair, copies that carry
 * their bytes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

static int control_errno(int status)
{
    switch (status) {
    case VGPU__WIRE__CONTROL_STATUS__CONTROL_OK:
        return 0;
    case VGPU__WIRE__CONTROL_STATUS__CONTROL_NO_FD:
        return -EBADF;
    case VGPU__WIRE__CONTROL_STATUS__CONTROL_BUSY:
        return -EBUSY;
    case VGPU__WIRE__CONTROL_STATUS__CONTROL_LIMIT:
        return -ENOSPC;
    case VGPU__WIRE__CONTROL_STATUS__CONTROL_NO_MEMORY:
        return -ENOMEM;
    case VGPU__WIRE__CONTROL_STATUS__CONTROL_NOT_FOUND:
        return -ENOENT;
    case VGPU__WIRE__CONTROL_STATUS__CONTROL_CUDA:
        return -EIO;
    case VGPU__WIRE__CONTROL_STATUS__CONTROL_UNSUPPORTED:
        return -EOPNOTSUPP;
    default:
        return -EINVAL;
    }
}

static void release(struct vgpu_frame *f, uint8_t *buf)
{
    vgpu_frame_release(f);
    free(buf);
}

/*
 * Sends m (passing fd, or -1) and waits for its ControlReply.  On 0 the
 * reply is in *f and *buf, which the caller releases with release(); on an
 * error *buf is NULL or still to be released.
 */
static int exchange(struct vgpu_client *c, const char *what, Vgpu__Wire__Control *m, int fd,
                    struct vgpu_frame *f, uint8_t **buf)
{
    Vgpu__Wire__Envelope env = VGPU__WIRE__ENVELOPE__INIT;
    const Vgpu__Wire__ControlReply *r;
    int rc;

    env.body_case = VGPU__WIRE__ENVELOPE__BODY_CONTROL;
    env.control = m;
    *buf = NULL;
    if (vgpu_conn_control_locked(c, &env, fd, f, buf))
        return -ENOTCONN;
    if (f->env->body_case != VGPU__WIRE__ENVELOPE__BODY_CONTROL_REPLY) {
        vgpu_shim_log(VGPU_LOG_ERROR, "%s: the server's reply does not answer it", what);
        release(f, *buf);
        *buf = NULL;
        return -EPROTO;
    }
    r = f->env->control_reply;
    rc = control_errno(r->status);
    vgpu_shim_log(rc ? VGPU_LOG_INFO : VGPU_LOG_DEBUG, "%s -> %s%s%s", what,
                  rc ? strerror(-rc) : "done", r->message && r->message[0] ? ": " : "",
                  r->message ? r->message : "");
    return rc;
}

/* One operation whose reply carries nothing but its status. */
static int simple(struct vgpu_client *c, const char *what, Vgpu__Wire__Control *m, int fd)
{
    struct vgpu_frame f = { 0 };
    uint8_t *buf;
    int rc = exchange(c, what, m, fd, &f, &buf);

    if (buf)
        release(&f, buf);
    return rc;
}

int vgpu_ctl_attach_qp_locked(struct vgpu_client *c, uint64_t size, bool in_bar,
                              uint64_t bar_offset, int fd)
{
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__AttachQueuePair a = VGPU__WIRE__ATTACH_QUEUE_PAIR__INIT;

    a.size = size;
    a.in_bar = in_bar;
    a.bar_offset = bar_offset;
    m.op_case = VGPU__WIRE__CONTROL__OP_ATTACH_QUEUE_PAIR;
    m.attach_queue_pair = &a;
    return simple(c, "attach queue pair", &m, fd);
}

int vgpu_ctl_region_register_locked(struct vgpu_client *c, uint32_t id, uint64_t size, int fd)
{
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterMemfdRegion a = VGPU__WIRE__REGISTER_MEMFD_REGION__INIT;
    char what[48];

    a.id = id;
    a.size = size;
    m.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_MEMFD_REGION;
    m.register_memfd_region = &a;
    snprintf(what, sizeof(what), "register memfd region %u", id);
    return simple(c, what, &m, fd);
}

/*
 * A mapped region's registration: 0 with *devptr, where kernels reach it.
 * A server that knows no mapped regions pins it unmapped and says no
 * pointer: -EOPNOTSUPP (the caller unregisters it).
 */
static int mapped_exchange(struct vgpu_client *c, const char *what, Vgpu__Wire__Control *m,
                           int fd, uint64_t *devptr)
{
    struct vgpu_frame f = { 0 };
    uint8_t *buf;
    int rc = exchange(c, what, m, fd, &f, &buf);

    if (rc == 0 && !(*devptr = f.env->control_reply->device_pointer))
        rc = -EOPNOTSUPP;
    if (buf)
        release(&f, buf);
    return rc;
}

int vgpu_ctl_region_register_mapped_locked(struct vgpu_client *c, uint32_t id, uint64_t size,
                                           int fd, uint64_t address, uint64_t *devptr)
{
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterMemfdRegion a = VGPU__WIRE__REGISTER_MEMFD_REGION__INIT;
    char what[56];

    a.id = id;
    a.size = size;
    a.mapped = true;
    a.address = address;
    m.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_MEMFD_REGION;
    m.register_memfd_region = &a;
    snprintf(what, sizeof(what), "register mapped memfd region %u", id);
    return mapped_exchange(c, what, &m, fd, devptr);
}

int vgpu_ctl_region_register_bar_locked(struct vgpu_client *c, uint32_t id, uint64_t bar_offset,
                                        uint64_t size)
{
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterBarRegion a = VGPU__WIRE__REGISTER_BAR_REGION__INIT;
    char what[48];

    a.id = id;
    a.bar_offset = bar_offset;
    a.size = size;
    m.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_BAR_REGION;
    m.register_bar_region = &a;
    snprintf(what, sizeof(what), "register BAR region %u", id);
    return simple(c, what, &m, -1);
}

int vgpu_ctl_region_register_bar_mapped_locked(struct vgpu_client *c, uint32_t id,
                                               uint64_t bar_offset, uint64_t size,
                                               uint64_t address, uint64_t *devptr)
{
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterBarRegion a = VGPU__WIRE__REGISTER_BAR_REGION__INIT;
    char what[56];

    a.id = id;
    a.bar_offset = bar_offset;
    a.size = size;
    a.mapped = true;
    a.address = address;
    m.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_BAR_REGION;
    m.register_bar_region = &a;
    snprintf(what, sizeof(what), "register mapped BAR region %u", id);
    return mapped_exchange(c, what, &m, -1, devptr);
}

int vgpu_ctl_region_unregister_locked(struct vgpu_client *c, uint32_t id)
{
    return vgpu_ctl_region_unregister_kept_locked(c, id, NULL);
}

int vgpu_ctl_region_unregister_kept_locked(struct vgpu_client *c, uint32_t id, bool *kept)
{
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__UnregisterRegion a = VGPU__WIRE__UNREGISTER_REGION__INIT;
    struct vgpu_frame f = { 0 };
    uint8_t *buf;
    char what[48];
    int rc;

    a.id = id;
    m.op_case = VGPU__WIRE__CONTROL__OP_UNREGISTER_REGION;
    m.unregister_region = &a;
    snprintf(what, sizeof(what), "unregister region %u", id);
    rc = exchange(c, what, &m, -1, &f, &buf);
    if (kept)
        *kept = rc == 0 && f.env->control_reply->retired;
    if (buf)
        release(&f, buf);
    return rc;
}

int vgpu_ctl_close_locked(struct vgpu_client *c)
{
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__Close a = VGPU__WIRE__CLOSE__INIT;

    m.op_case = VGPU__WIRE__CONTROL__OP_CLOSE;
    m.close = &a;
    return simple(c, "close", &m, -1);
}

/* Writes n bytes to a stdio stream the program owns, as its driver would have. */
static void emit(FILE *to, const ProtobufCBinaryData *d)
{
    if (d->len && fwrite(d->data, 1, d->len, to) == d->len)
        fflush(to);
}

/*
 * The driver's log messages of a reply, kept for the program's thread
 * (instance.c hands them to the sink once its call has left the client).
 * At most VGPU_DRVLOG_KEPT wait; a message is at most 2 KiB (the server's
 * bound, said again here).
 */
#define VGPU_DRVLOG_KEPT 1024
#define VGPU_DRVLOG_TEXT 2048

static void keep_logs(struct vgpu_client *c, const Vgpu__Wire__ControlReply *r)
{
    if (r->driver_log_dropped)
        vgpu_shim_log(VGPU_LOG_WARN, "vgpu-server dropped %u driver log messages before these "
                      "(more than it keeps between two calls)", r->driver_log_dropped);
    for (size_t i = 0; i < r->n_driver_log && c->log_sink; i++) {
        const ProtobufCBinaryData *t = &r->driver_log[i]->text;
        size_t n = t->len < VGPU_DRVLOG_TEXT ? t->len : VGPU_DRVLOG_TEXT;
        struct vgpu_drvlog *l;

        if (c->nlogs >= VGPU_DRVLOG_KEPT || !(l = malloc(sizeof(*l) + n + 1))) {
            vgpu_shim_log(VGPU_LOG_WARN, "%zu driver log messages dropped: the program's "
                          "callbacks have not run for %d of them", r->n_driver_log - i, c->nlogs);
            break;
        }
        l->next = NULL;
        l->level = r->driver_log[i]->level;
        memcpy(l->text, t->data, n);
        l->text[n] = '\0';
        l->len = strlen(l->text);
        *c->logs_tail = l;
        c->logs_tail = &l->next;
        c->nlogs++;
    }
}

int vgpu_ctl_device_output_locked(struct vgpu_client *c)
{
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__FetchDeviceOutput a = VGPU__WIRE__FETCH_DEVICE_OUTPUT__INIT;
    int rc = 0;

    c->devout_pending = false;
    m.op_case = VGPU__WIRE__CONTROL__OP_FETCH_DEVICE_OUTPUT;
    m.fetch_device_output = &a;
    /* at most 512 KiB a reply; a kernel's printf buffer is 1 MiB unless raised (bounded anyway) */
    for (int round = 0; round < 4096; round++) {
        struct vgpu_frame f = { 0 };
        uint8_t *buf;
        bool more;

        rc = exchange(c, "fetch device output", &m, -1, &f, &buf);
        if (rc) {
            if (buf)
                release(&f, buf);
            break;
        }
        emit(stdout, &f.env->control_reply->stdout_data);
        emit(stderr, &f.env->control_reply->stderr_data);
        keep_logs(c, f.env->control_reply);
        more = f.env->control_reply->more;
        release(&f, buf);
        if (!more)
            break;
    }
    return rc;
}

/* A copy of the server's table, made whole or not at all. */
static int table_copy(const Vgpu__Wire__ErrorTable *e, struct vgpu_errtab *t)
{
    size_t n = e->n_code;

    if (e->n_name != n || e->n_text != n || n > 65536)
        return -EPROTO;
    t->code = calloc(n + 1, sizeof(*t->code));
    t->name = calloc(n + 1, sizeof(*t->name));
    t->text = calloc(n + 1, sizeof(*t->text));
    if (!t->code || !t->name || !t->text) {
        vgpu_errtab_free(t);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        t->code[i] = e->code[i];
        t->name[i] = strdup(e->name[i]);
        t->text[i] = strdup(e->text[i]);
        t->n = (int)i + 1;
        if (!t->name[i] || !t->text[i]) {
            vgpu_errtab_free(t);
            return -ENOMEM;
        }
    }
    t->init_status = e->init_status;
    return 0;
}

int vgpu_ctl_error_table_locked(struct vgpu_client *c, struct vgpu_errtab *t)
{
    Vgpu__Wire__Control m = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__FetchErrorTable a = VGPU__WIRE__FETCH_ERROR_TABLE__INIT;
    struct vgpu_frame f = { 0 };
    uint8_t *buf;
    int rc;

    m.op_case = VGPU__WIRE__CONTROL__OP_FETCH_ERROR_TABLE;
    m.fetch_error_table = &a;
    rc = exchange(c, "fetch error table", &m, -1, &f, &buf);
    if (rc == 0 && !f.env->control_reply->error_table)
        rc = -EPROTO;
    if (rc == 0)
        rc = table_copy(f.env->control_reply->error_table, t);
    if (buf)
        release(&f, buf);
    return rc;
}
