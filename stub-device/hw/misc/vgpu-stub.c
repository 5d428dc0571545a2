/*
 * vgpu-stub: a PCI device that carries vgpu frames between a guest and
 * vgpu-server.
 *
 * The guest pushes a frame through a 1 KB request buffer in BAR0, chunk by
 * chunk, and reads the answer through a 1 KB response window.  Whole frames
 * travel to vgpu-server over a chardev, wrapped in link records that carry
 * the guest client's channel.  The server's answer arrives in the chardev's
 * read handler, so a vCPU never waits inside an MMIO handler while the GPU
 * works.  The device looks at nothing but a frame's 32-byte header.
 *
 * Register map, state machine, error codes and the link format:
 * docs/specs/vgpu-stub.md in the vgpu project.
 *
 * Copyright (c) 2026 The vgpu developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/event_notifier.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "hw/pci/pci.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "sysemu/hostmem.h"
#include "chardev/char-fe.h"
#include "migration/blocker.h"
#include "qom/object.h"
#include "trace.h"
/*
 * The device ABI (registers, values, slots, link records, the frame header
 * facts checked here): the vgpu project's include/vgpu/stub_abi.h (MIT),
 * which its build copies into QEMU's include/vgpu/.
 */
#include "vgpu/stub_abi.h"

#define TYPE_VGPU_STUB "vgpu-stub"
OBJECT_DECLARE_SIMPLE_TYPE(VgpuStubState, VGPU_STUB)

/*
 * Bounds on what a guest can make QEMU hold: answers still owed for frames
 * it gave up on, and link bytes waiting for a slow server.
 */
#define VGPU_STUB_MAX_OWED      4
#define VGPU_STUB_MAX_QUEUED    (VGPU_STUB_MAX_FRAME + 1 * MiB)

struct VgpuStubState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    CharBackend chr;
    Error *migration_blocker;
    HostMemoryBackend *hostmem;     /* BAR2, shared with the server, or NULL */
    EventNotifier bells[VGPU_STUB_MAX_DOORBELLS];
    uint32_t nbells;                /* doorbells set up, one per slot of BAR2 */

    /* identity, from properties: the guest cannot change it */
    uint32_t vm_id;
    char *pool_id;
    uint8_t priority;

    /* guest-visible registers */
    uint32_t status;
    uint32_t error_code;
    uint32_t request_len;
    uint32_t irq_ctrl;
    uint32_t irq_status;
    uint32_t request_id;
    uint32_t chunk_ctrl;
    uint32_t channel;
    uint32_t link_epoch;
    uint32_t response_offset;
    uint8_t request[VGPU_STUB_BUF_SIZE];

    /* the frame being assembled from chunks */
    uint8_t *frame;
    uint32_t frame_len;

    /* the answer being read */
    uint8_t *answer;
    uint32_t answer_len;

    /*
     * Frames sent whose answer (one FRAME or FAIL record each, in order)
     * has not arrived yet.  While in_flight is set the last of them is the
     * guest's; those before it belong to frames the guest gave up on (a
     * reset, a mistake while BUSY), and their answers are dropped whatever
     * their channel and seq: seq is the guest client's, not unique.
     */
    uint32_t owed;
    bool in_flight;
    uint32_t flight_channel;

    /* link: bytes queued for the chardev, and the record being received */
    bool connected;
    GByteArray *out;
    guint out_watch;
    uint8_t in_header[VGPU_LINK_HEADER_SIZE];
    uint32_t in_header_len;
    uint32_t in_type;
    uint32_t in_channel;
    uint8_t *in_payload;
    uint32_t in_len;
    uint32_t in_got;
};

static void vgpu_stub_update_irq(VgpuStubState *s)
{
    pci_set_irq(PCI_DEVICE(s), (s->irq_ctrl & VGPU_STUB_IRQ_DONE) &&
                (s->irq_status & VGPU_STUB_IRQ_DONE));
}

/* STATUS becomes DONE or ERROR: that is what the interrupt announces. */
static void vgpu_stub_set_status(VgpuStubState *s, uint32_t status)
{
    s->status = status;
    if (status == VGPU_STUB_STATUS_DONE || status == VGPU_STUB_STATUS_ERROR) {
        s->irq_status |= VGPU_STUB_IRQ_DONE;
        vgpu_stub_update_irq(s);
    }
}

static void vgpu_stub_drop_frame(VgpuStubState *s)
{
    g_free(s->frame);
    s->frame = NULL;
    s->frame_len = 0;
}

static void vgpu_stub_drop_answer(VgpuStubState *s)
{
    g_free(s->answer);
    s->answer = NULL;
    s->answer_len = 0;
    s->response_offset = 0;
}

static void vgpu_stub_fail(VgpuStubState *s, uint32_t code)
{
    trace_vgpu_stub_error(code);
    s->in_flight = false;       /* the guest no longer waits for an answer */
    s->error_code = code;
    vgpu_stub_drop_frame(s);
    vgpu_stub_drop_answer(s);
    vgpu_stub_set_status(s, VGPU_STUB_STATUS_ERROR);
}

static void G_GNUC_PRINTF(3, 4)
vgpu_stub_guest_error(VgpuStubState *s, uint32_t code, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    qemu_log_mask(LOG_GUEST_ERROR, "vgpu-stub: %s (error code %u)\n",
                  msg, code);
    g_free(msg);
    vgpu_stub_fail(s, code);
}

/* ---- the link to vgpu-server ---- */

static gboolean vgpu_stub_link_writable(void *do_not_use, GIOCondition cond,
                                        void *opaque);

static void vgpu_stub_link_flush(VgpuStubState *s)
{
    while (s->out->len) {
        int n = qemu_chr_fe_write(&s->chr, s->out->data, s->out->len);

        if (n <= 0) {
            break;
        }
        g_byte_array_remove_range(s->out, 0, n);
    }
    if (s->out->len && !s->out_watch) {
        s->out_watch = qemu_chr_fe_add_watch(&s->chr, G_IO_OUT | G_IO_HUP,
                                             vgpu_stub_link_writable, s);
    }
}

static gboolean vgpu_stub_link_writable(void *do_not_use, GIOCondition cond,
                                        void *opaque)
{
    VgpuStubState *s = opaque;

    s->out_watch = 0;
    vgpu_stub_link_flush(s);
    return G_SOURCE_REMOVE;
}

static void vgpu_stub_link_send(VgpuStubState *s, uint16_t type,
                                uint32_t channel, const uint8_t *payload,
                                uint32_t len)
{
    uint8_t h[VGPU_LINK_HEADER_SIZE];

    vgpu_link_header_pack(h, type, channel, len);
    g_byte_array_append(s->out, h, sizeof(h));
    if (len) {
        g_byte_array_append(s->out, payload, len);
    }
    vgpu_stub_link_flush(s);
}

/*
 * HELLO: the VM's identity; with a shared BAR, also its size, and its
 * memory's fd rides with this first record (the out buffer is empty right
 * after connecting, so the fd goes with the record's first bytes).
 */
static void vgpu_stub_link_hello(VgpuStubState *s)
{
    int fds[VGPU_LINK_HELLO_MAX_FDS];
    uint8_t p[VGPU_LINK_HELLO_MAX];
    struct vgpu_link_hello hello = {
        .vm_id = s->vm_id,
        .pool_id = (uint8_t)s->pool_id[0],
        .priority = s->priority,
        .version = VGPU_STUB_REG_VERSION,
    };
    uint32_t len = VGPU_LINK_HELLO_SIZE;

    if (s->hostmem) {
        MemoryRegion *mr = host_memory_backend_get_memory(s->hostmem);
        uint32_t k;

        fds[0] = memory_region_get_fd(mr);
        for (k = 0; k < s->nbells; k++) {
            fds[1 + k] = event_notifier_get_fd(&s->bells[k]);
        }
        hello.bar_size = memory_region_size(mr);
        hello.doorbells = s->nbells;
        len = VGPU_LINK_HELLO_SIZE_DOORBELLS;
        if (qemu_chr_fe_set_msgfds(&s->chr, fds, 1 + s->nbells) < 0) {
            qemu_log_mask(LOG_UNIMP, "vgpu-stub: the chardev cannot pass "
                          "the shared BAR's memory to vgpu-server (use a "
                          "unix socket)\n");
            len = VGPU_LINK_HELLO_SIZE;
        }
    }
    vgpu_link_hello_pack(p, &hello, len);
    vgpu_stub_link_send(s, VGPU_LINK_HELLO, 0, p, len);
}

static void vgpu_stub_link_reset_input(VgpuStubState *s)
{
    g_free(s->in_payload);
    s->in_payload = NULL;
    s->in_header_len = 0;
    s->in_len = 0;
    s->in_got = 0;
}

/*
 * Whether p[0..len) is one vgpu frame as far as its header tells: the
 * magic, and exactly as long as the lengths in the header say.
 */
static bool vgpu_stub_frame_whole(const uint8_t *p, uint32_t len)
{
    return len >= VGPU_FRAME_HEADER_SIZE &&
           ldl_le_p(p + VGPU_FRAME_OFF_MAGIC) == VGPU_FRAME_MAGIC &&
           (uint64_t)VGPU_FRAME_HEADER_SIZE +
           ldl_le_p(p + VGPU_FRAME_OFF_ENV_LEN) +
           ldl_le_p(p + VGPU_FRAME_OFF_PAYLOAD_LEN) == len;
}

/* A whole record arrived: the answer to the oldest frame still owed one. */
static void vgpu_stub_link_record(VgpuStubState *s)
{
    uint8_t *p = s->in_payload;
    uint32_t len = s->in_len;

    s->in_payload = NULL;
    if ((s->in_type != VGPU_LINK_FRAME && s->in_type != VGPU_LINK_FAIL) ||
        !s->owed) {
        g_free(p);
        return;
    }
    if (--s->owed || !s->in_flight) {
        /* the answer to a frame the guest gave up on (reset, error) */
        trace_vgpu_stub_link("stale answer dropped");
        g_free(p);
        return;
    }
    if (s->in_channel != s->flight_channel) {
        g_free(p);
        vgpu_stub_fail(s, VGPU_STUB_ERR_BAD_ANSWER);
        return;
    }
    if (s->in_type == VGPU_LINK_FAIL) {
        g_free(p);
        vgpu_stub_fail(s, VGPU_STUB_ERR_SERVER_GONE);
        return;
    }
    if (!vgpu_stub_frame_whole(p, len)) {
        g_free(p);
        vgpu_stub_fail(s, VGPU_STUB_ERR_BAD_ANSWER);
        return;
    }
    s->in_flight = false;
    trace_vgpu_stub_answer(s->in_channel, len);
    s->answer = p;
    s->answer_len = len;
    s->response_offset = 0;
    vgpu_stub_set_status(s, VGPU_STUB_STATUS_DONE);
}

static int vgpu_stub_can_receive(void *opaque)
{
    VgpuStubState *s = opaque;

    if (s->in_header_len < VGPU_LINK_HEADER_SIZE) {
        return VGPU_LINK_HEADER_SIZE - s->in_header_len;
    }
    return MIN(s->in_len - s->in_got, 1 * MiB);
}

static void vgpu_stub_receive(void *opaque, const uint8_t *buf, int size)
{
    VgpuStubState *s = opaque;

    while (size > 0) {
        struct vgpu_link_header h;
        uint32_t n;

        if (s->in_header_len < VGPU_LINK_HEADER_SIZE) {
            n = MIN((uint32_t)size, VGPU_LINK_HEADER_SIZE - s->in_header_len);
            memcpy(s->in_header + s->in_header_len, buf, n);
            s->in_header_len += n;
            buf += n;
            size -= n;
            if (s->in_header_len < VGPU_LINK_HEADER_SIZE) {
                return;
            }
            vgpu_link_header_unpack(s->in_header, &h);
            s->in_type = h.type;
            s->in_channel = h.channel;
            s->in_len = h.length;
            s->in_got = 0;
            if (h.magic != VGPU_LINK_MAGIC ||
                h.length > VGPU_LINK_MAX_PAYLOAD) {
                /* The stream is out of step: start over on a new link. */
                trace_vgpu_stub_link("bad record from the server");
                vgpu_stub_link_reset_input(s);
                if (s->status == VGPU_STUB_STATUS_BUSY) {
                    vgpu_stub_fail(s, VGPU_STUB_ERR_BAD_ANSWER);
                }
                qemu_chr_fe_disconnect(&s->chr);
                return;
            }
            s->in_payload = s->in_len ? g_malloc(s->in_len) : NULL;
        }
        n = MIN((uint32_t)size, s->in_len - s->in_got);
        if (n) {
            memcpy(s->in_payload + s->in_got, buf, n);
            s->in_got += n;
            buf += n;
            size -= n;
        }
        if (s->in_got == s->in_len) {
            vgpu_stub_link_record(s);
            vgpu_stub_link_reset_input(s);
        }
    }
}

static void vgpu_stub_event(void *opaque, QEMUChrEvent event)
{
    VgpuStubState *s = opaque;

    switch (event) {
    case CHR_EVENT_OPENED:
        s->connected = true;
        s->link_epoch++;
        trace_vgpu_stub_link("connected");
        vgpu_stub_link_hello(s);
        break;
    case CHR_EVENT_CLOSED:
        s->connected = false;
        trace_vgpu_stub_link("disconnected");
        g_byte_array_set_size(s->out, 0);
        vgpu_stub_link_reset_input(s);
        s->owed = 0;
        if (s->in_flight) {
            vgpu_stub_fail(s, VGPU_STUB_ERR_SERVER_GONE);
        }
        break;
    default:
        break;
    }
}

/* ---- guest commands ---- */

/*
 * The last chunk is in: check the frame's header and send it.  The flags
 * must be ones the frame format defines and the reserved word 0; the
 * version is the server's to judge, so that it can answer a client of
 * another version with the versions each side speaks.
 */
static void vgpu_stub_send_frame(VgpuStubState *s)
{
    const uint8_t *h = s->frame;
    uint32_t len = s->frame_len;

    if (!vgpu_stub_frame_whole(h, len) ||
        (lduw_le_p(h + VGPU_FRAME_OFF_FLAGS) & ~VGPU_FRAME_F_KNOWN) ||
        ldq_le_p(h + VGPU_FRAME_OFF_RESERVED) != 0) {
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_BAD_FRAME,
                              "a %u-byte frame with a bad header", len);
        return;
    }
    if (!s->connected) {
        vgpu_stub_fail(s, VGPU_STUB_ERR_NO_SERVER);
        return;
    }
    trace_vgpu_stub_submit(s->channel, len);
    s->owed++;
    s->in_flight = true;
    s->flight_channel = s->channel;
    vgpu_stub_link_send(s, VGPU_LINK_FRAME, s->channel, s->frame, len);
    vgpu_stub_drop_frame(s);
    vgpu_stub_set_status(s, VGPU_STUB_STATUS_BUSY);
}

static void vgpu_stub_submit(VgpuStubState *s)
{
    uint32_t n = s->request_len;

    if (s->status != VGPU_STUB_STATUS_IDLE) {
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_BUSY, "SUBMIT in state %u",
                              s->status);
        return;
    }
    if (!s->channel) {
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_NO_CHANNEL,
                              "SUBMIT with CHANNEL 0");
        return;
    }
    if (n > VGPU_STUB_BUF_SIZE) {
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_BAD_LENGTH, "REQUEST_LEN %u", n);
        return;
    }
    if (!(s->chunk_ctrl & VGPU_STUB_CHUNK_MORE) &&
        (s->owed >= VGPU_STUB_MAX_OWED || s->out->len > VGPU_STUB_MAX_QUEUED)) {
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_BUSY, "SUBMIT while %u "
                              "earlier frames are still unanswered", s->owed);
        return;
    }
    if (n > VGPU_STUB_MAX_FRAME - s->frame_len) {
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_TOO_LARGE,
                              "a frame over %u bytes",
                              (unsigned)VGPU_STUB_MAX_FRAME);
        return;
    }
    /* an empty chunk adds nothing (and an empty frame is BAD_FRAME below) */
    if (n) {
        s->frame = g_realloc(s->frame, s->frame_len + n);
        memcpy(s->frame + s->frame_len, s->request, n);
        s->frame_len += n;
    }
    if (!(s->chunk_ctrl & VGPU_STUB_CHUNK_MORE)) {
        vgpu_stub_send_frame(s);
    }
}

static void vgpu_stub_doorbell(VgpuStubState *s, uint32_t cmd)
{
    switch (cmd) {
    case VGPU_STUB_CMD_SUBMIT:
        vgpu_stub_submit(s);
        break;
    case VGPU_STUB_CMD_ACK:
        if (s->status != VGPU_STUB_STATUS_DONE &&
            s->status != VGPU_STUB_STATUS_ERROR) {
            vgpu_stub_guest_error(s, VGPU_STUB_ERR_BAD_COMMAND,
                                  "ACK in state %u", s->status);
            break;
        }
        vgpu_stub_drop_answer(s);
        s->error_code = VGPU_STUB_ERR_NONE;
        s->status = VGPU_STUB_STATUS_IDLE;
        break;
    case VGPU_STUB_CMD_CLOSE:
        if (s->status != VGPU_STUB_STATUS_IDLE) {
            vgpu_stub_guest_error(s, VGPU_STUB_ERR_BUSY, "CLOSE in state %u",
                                  s->status);
        } else if (!s->channel) {
            vgpu_stub_guest_error(s, VGPU_STUB_ERR_NO_CHANNEL,
                                  "CLOSE with CHANNEL 0");
        } else if (s->out->len > 1 * MiB) {
            vgpu_stub_guest_error(s, VGPU_STUB_ERR_BUSY,
                                  "CLOSE while the server is behind");
        } else if (s->connected) {
            vgpu_stub_link_send(s, VGPU_LINK_CLOSE, s->channel, NULL, 0);
        }
        break;
    default:
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_BAD_COMMAND,
                              "DOORBELL value %u", cmd);
        break;
    }
}

/* ---- BAR0 ---- */

/* Whether an access of size bytes at addr lies in [base, base + len). */
static bool vgpu_stub_within(hwaddr addr, unsigned size, hwaddr base,
                             uint32_t len)
{
    return addr >= base && addr + size <= base + len;
}

static uint32_t vgpu_stub_window_len(VgpuStubState *s)
{
    if (s->status != VGPU_STUB_STATUS_DONE ||
        s->response_offset >= s->answer_len) {
        return 0;
    }
    return MIN(VGPU_STUB_BUF_SIZE, s->answer_len - s->response_offset);
}

static uint64_t vgpu_stub_read(void *opaque, hwaddr addr, unsigned size)
{
    VgpuStubState *s = opaque;
    uint64_t val = 0;

    if (vgpu_stub_within(addr, size, VGPU_STUB_R_REQUEST,
                         VGPU_STUB_BUF_SIZE)) {
        val = ldn_le_p(s->request + (addr - VGPU_STUB_R_REQUEST), size);
        goto out;
    }
    if (vgpu_stub_within(addr, size, VGPU_STUB_R_RESPONSE,
                         VGPU_STUB_BUF_SIZE)) {
        uint32_t off = addr - VGPU_STUB_R_RESPONSE;
        uint32_t win = vgpu_stub_window_len(s);
        uint8_t bytes[8] = { 0 };

        if (off >= ROUND_UP(win, 4)) {
            vgpu_stub_guest_error(s, VGPU_STUB_ERR_READ_PAST_END,
                                  "read of RESPONSE+0x%x, %u bytes valid",
                                  off, win);
            goto out;
        }
        memcpy(bytes, s->answer + s->response_offset + off,
               MIN(size, win - MIN(off, win)));
        val = ldn_le_p(bytes, size);
        goto out;
    }
    if (addr >= VGPU_STUB_R_QP_DOORBELL &&
        addr < VGPU_STUB_R_QP_DOORBELL_K(s->nbells)) {
        goto out;               /* doorbells read as 0 */
    }
    if (size != 4 || (addr & 3)) {
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_BAD_WIDTH,
                              "%u-byte read of register 0x%" HWADDR_PRIx,
                              size, addr);
        goto out;
    }
    switch (addr) {
    case VGPU_STUB_R_DOORBELL:
        val = 0;
        break;
    case VGPU_STUB_R_STATUS:
        val = s->status;
        break;
    case VGPU_STUB_R_POOL_ID:
        val = (uint8_t)s->pool_id[0];
        break;
    case VGPU_STUB_R_PRIORITY:
        val = s->priority;
        break;
    case VGPU_STUB_R_VM_ID:
        val = s->vm_id;
        break;
    case VGPU_STUB_R_ERROR_CODE:
        val = s->error_code;
        break;
    case VGPU_STUB_R_REQUEST_LEN:
        val = s->request_len;
        break;
    case VGPU_STUB_R_RESPONSE_LEN:
        val = vgpu_stub_window_len(s);
        break;
    case VGPU_STUB_R_PROTOCOL_VER:
        val = VGPU_STUB_REG_VERSION;
        break;
    case VGPU_STUB_R_CAPABILITIES:
        val = VGPU_STUB_CAP_BASE | (s->hostmem ? VGPU_STUB_CAP_SHARED : 0) |
              (s->nbells ? VGPU_STUB_CAP_DOORBELLS : 0);
        break;
    case VGPU_STUB_R_IRQ_CTRL:
        val = s->irq_ctrl;
        break;
    case VGPU_STUB_R_IRQ_STATUS:
        val = s->irq_status;
        break;
    case VGPU_STUB_R_REQUEST_ID:
        val = s->request_id;
        break;
    case VGPU_STUB_R_CHUNK_CTRL:
        val = s->chunk_ctrl;
        break;
    case VGPU_STUB_R_CHANNEL:
        val = s->channel;
        break;
    case VGPU_STUB_R_LINK_EPOCH:
        val = s->link_epoch;
        break;
    case VGPU_STUB_R_RESPONSE_TOTAL:
        val = s->status == VGPU_STUB_STATUS_DONE ? s->answer_len : 0;
        break;
    case VGPU_STUB_R_RESPONSE_OFFSET:
        val = s->response_offset;
        break;
    case VGPU_STUB_R_REQUEST_TOTAL:
        val = s->frame_len;
        break;
    case VGPU_STUB_R_MAX_FRAME:
        val = VGPU_STUB_MAX_FRAME;
        break;
    case VGPU_STUB_R_LINK_STATE:
        val = s->connected ? 1 : 0;
        break;
    default:
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_BAD_OFFSET,
                              "read of unknown register 0x%" HWADDR_PRIx, addr);
        break;
    }
out:
    trace_vgpu_stub_mmio_read(addr, size, val);
    return val;
}

static void vgpu_stub_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    VgpuStubState *s = opaque;

    trace_vgpu_stub_mmio_write(addr, size, val);
    if (vgpu_stub_within(addr, size, VGPU_STUB_R_REQUEST,
                         VGPU_STUB_BUF_SIZE)) {
        stn_le_p(s->request + (addr - VGPU_STUB_R_REQUEST), size, val);
        return;
    }
    if (vgpu_stub_within(addr, size, VGPU_STUB_R_RESPONSE,
                         VGPU_STUB_BUF_SIZE)) {
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_READ_ONLY, "write to RESPONSE");
        return;
    }
    if (addr >= VGPU_STUB_R_QP_DOORBELL &&
        addr < VGPU_STUB_R_QP_DOORBELL_K(s->nbells)) {
        /* an access the ioeventfd did not match (another width): ring anyway */
        event_notifier_set(&s->bells[(addr - VGPU_STUB_R_QP_DOORBELL) / 4]);
        return;
    }
    if (size != 4 || (addr & 3)) {
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_BAD_WIDTH,
                              "%u-byte write of register 0x%" HWADDR_PRIx,
                              size, addr);
        return;
    }
    switch (addr) {
    case VGPU_STUB_R_DOORBELL:
        vgpu_stub_doorbell(s, val);
        break;
    case VGPU_STUB_R_REQUEST_LEN:
        s->request_len = val;
        break;
    case VGPU_STUB_R_IRQ_CTRL:
        s->irq_ctrl = val & VGPU_STUB_IRQ_DONE;
        vgpu_stub_update_irq(s);
        break;
    case VGPU_STUB_R_IRQ_STATUS:
        s->irq_status &= ~(val & VGPU_STUB_IRQ_DONE);
        vgpu_stub_update_irq(s);
        break;
    case VGPU_STUB_R_REQUEST_ID:
        s->request_id = val;
        break;
    case VGPU_STUB_R_CHUNK_CTRL:
        s->chunk_ctrl = val & VGPU_STUB_CHUNK_MORE;
        break;
    case VGPU_STUB_R_CHANNEL:
        s->channel = val;
        break;
    case VGPU_STUB_R_RESPONSE_OFFSET:
        if (s->status != VGPU_STUB_STATUS_DONE || (val % VGPU_STUB_BUF_SIZE) ||
            val >= s->answer_len) {
            vgpu_stub_guest_error(s, VGPU_STUB_ERR_BAD_RESPONSE_OFFSET,
                                  "RESPONSE_OFFSET %" PRIu64
                                  " of a %u-byte answer", val, s->answer_len);
            break;
        }
        s->response_offset = val;
        break;
    case VGPU_STUB_R_STATUS:
    case VGPU_STUB_R_POOL_ID:
    case VGPU_STUB_R_PRIORITY:
    case VGPU_STUB_R_VM_ID:
    case VGPU_STUB_R_ERROR_CODE:
    case VGPU_STUB_R_RESPONSE_LEN:
    case VGPU_STUB_R_PROTOCOL_VER:
    case VGPU_STUB_R_CAPABILITIES:
    case VGPU_STUB_R_LINK_EPOCH:
    case VGPU_STUB_R_RESPONSE_TOTAL:
    case VGPU_STUB_R_REQUEST_TOTAL:
    case VGPU_STUB_R_MAX_FRAME:
    case VGPU_STUB_R_LINK_STATE:
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_READ_ONLY,
                              "write to read-only register 0x%" HWADDR_PRIx,
                              addr);
        break;
    default:
        vgpu_stub_guest_error(s, VGPU_STUB_ERR_BAD_OFFSET,
                              "write to unknown register 0x%" HWADDR_PRIx,
                              addr);
        break;
    }
}

static const MemoryRegionOps vgpu_stub_mmio_ops = {
    .read = vgpu_stub_read,
    .write = vgpu_stub_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

/* ---- the device ---- */

static void vgpu_stub_reset(DeviceState *dev)
{
    VgpuStubState *s = VGPU_STUB(dev);

    vgpu_stub_drop_frame(s);
    vgpu_stub_drop_answer(s);
    s->status = VGPU_STUB_STATUS_IDLE;
    s->error_code = VGPU_STUB_ERR_NONE;
    s->request_len = 0;
    s->irq_ctrl = 0;
    s->irq_status = 0;
    s->request_id = 0;
    s->chunk_ctrl = 0;
    s->channel = 0;
    memset(s->request, 0, sizeof(s->request));
    /* an answer still on its way stays owed, and is dropped when it comes */
    s->in_flight = false;
    pci_set_irq(PCI_DEVICE(s), 0);
}

static void vgpu_stub_del_bells(VgpuStubState *s)
{
    uint32_t k;

    for (k = 0; k < s->nbells; k++) {
        memory_region_del_eventfd(&s->mmio, VGPU_STUB_R_QP_DOORBELL_K(k), 4,
                                  false, 0, &s->bells[k]);
        event_notifier_cleanup(&s->bells[k]);
    }
    s->nbells = 0;
}

static void vgpu_stub_realize(PCIDevice *pdev, Error **errp)
{
    VgpuStubState *s = VGPU_STUB(pdev);

    if (!qemu_chr_fe_backend_connected(&s->chr)) {
        error_setg(errp, "vgpu-stub: property 'chardev' is required "
                   "(the socket of vgpu-server)");
        return;
    }
    if (!s->pool_id || strlen(s->pool_id) != 1 ||
        !g_ascii_isupper(s->pool_id[0])) {
        error_setg(errp, "vgpu-stub: pool-id must be one letter A-Z");
        return;
    }
    if (s->priority > 2) {
        error_setg(errp, "vgpu-stub: priority must be 0 (low), 1 (medium) "
                   "or 2 (high)");
        return;
    }
    error_setg(&s->migration_blocker, "vgpu-stub: the GPU state of this "
               "VM lives in vgpu-server and does not migrate");
    if (migrate_add_blocker(s->migration_blocker, errp) < 0) {
        error_free(s->migration_blocker);
        s->migration_blocker = NULL;
        return;
    }

    memory_region_init_io(&s->mmio, OBJECT(s), &vgpu_stub_mmio_ops, s,
                          "vgpu-stub-mmio", VGPU_STUB_BAR0_SIZE);
    if (s->hostmem) {
        MemoryRegion *mr = host_memory_backend_get_memory(s->hostmem);
        uint64_t size = memory_region_size(mr);
        uint32_t k, want;

        if (host_memory_backend_is_mapped(s->hostmem)) {
            error_setg(errp, "vgpu-stub: memdev %s is already in use",
                       object_get_canonical_path_component(OBJECT(s->hostmem)));
            goto fail_blocker;
        }
        if (memory_region_get_fd(mr) < 0 || !is_power_of_2(size) ||
            size < VGPU_STUB_BAR2_MIN) {
            error_setg(errp, "vgpu-stub: memdev must be shared memory with an "
                       "fd (memory-backend-memfd) of a power of two, at least "
                       "1 MiB");
            goto fail_blocker;
        }
        want = vgpu_stub_doorbells(size);
        for (k = 0; k < want; k++) {
            if (event_notifier_init(&s->bells[k], 0) < 0) {
                break;
            }
            memory_region_add_eventfd(&s->mmio, VGPU_STUB_R_QP_DOORBELL_K(k),
                                      4, false, 0, &s->bells[k]);
        }
        s->nbells = k;
        host_memory_backend_set_mapped(s->hostmem, true);
        pci_register_bar(pdev, 2, PCI_BASE_ADDRESS_SPACE_MEMORY |
                         PCI_BASE_ADDRESS_MEM_PREFETCH |
                         PCI_BASE_ADDRESS_MEM_TYPE_64, mr);
    }
    pci_config_set_interrupt_pin(pdev->config, 1);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->mmio);

    s->out = g_byte_array_new();
    qemu_chr_fe_set_handlers(&s->chr, vgpu_stub_can_receive, vgpu_stub_receive,
                             vgpu_stub_event, NULL, s, NULL, true);
    return;

fail_blocker:
    vgpu_stub_del_bells(s);
    migrate_del_blocker(s->migration_blocker);
    error_free(s->migration_blocker);
    s->migration_blocker = NULL;
}

static void vgpu_stub_exit(PCIDevice *pdev)
{
    VgpuStubState *s = VGPU_STUB(pdev);

    qemu_chr_fe_deinit(&s->chr, false);
    if (s->out_watch) {
        g_source_remove(s->out_watch);
        s->out_watch = 0;
    }
    if (s->out) {
        g_byte_array_free(s->out, true);
        s->out = NULL;
    }
    vgpu_stub_link_reset_input(s);
    vgpu_stub_drop_frame(s);
    vgpu_stub_drop_answer(s);
    vgpu_stub_del_bells(s);
    if (s->hostmem) {
        host_memory_backend_set_mapped(s->hostmem, false);
    }
    if (s->migration_blocker) {
        migrate_del_blocker(s->migration_blocker);
        error_free(s->migration_blocker);
        s->migration_blocker = NULL;
    }
}

/*
 * priority: low, medium or high, or their numbers 0, 1 and 2 (the form
 * before names were taken, kept).
 */
static const char *const vgpu_stub_priority_names[] = { "low", "medium", "high" };

static void vgpu_stub_get_priority(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    Property *prop = opaque;
    uint8_t *ptr = object_field_prop_ptr(obj, prop);
    char *str = g_strdup(*ptr < 3 ? vgpu_stub_priority_names[*ptr] : "?");

    visit_type_str(v, name, &str, errp);
    g_free(str);
}

static void vgpu_stub_set_priority(Object *obj, Visitor *v, const char *name,
                                   void *opaque, Error **errp)
{
    Property *prop = opaque;
    uint8_t *ptr = object_field_prop_ptr(obj, prop);
    char *str;
    int i;

    if (!visit_type_str(v, name, &str, errp)) {
        return;
    }
    for (i = 0; i < 3; i++) {
        if (!strcmp(str, vgpu_stub_priority_names[i]) ||
            (str[0] == '0' + i && !str[1])) {
            *ptr = i;
            g_free(str);
            return;
        }
    }
    error_setg(errp, "vgpu-stub: priority '%s' is not low, medium or high "
               "(or 0, 1, 2)", str);
    g_free(str);
}

static void vgpu_stub_priority_default(ObjectProperty *op,
                                       const Property *prop)
{
    object_property_set_default_str(op,
                                     vgpu_stub_priority_names[prop->defval.u]);
}

static const PropertyInfo vgpu_stub_prop_priority = {
    .name = "VgpuStubPriority",
    .description = "low, medium or high (or 0, 1, 2)",
    .get = vgpu_stub_get_priority,
    .set = vgpu_stub_set_priority,
    .set_default_value = vgpu_stub_priority_default,
};

static Property vgpu_stub_properties[] = {
    DEFINE_PROP_CHR("chardev", VgpuStubState, chr),
    DEFINE_PROP_UINT32("vm-id", VgpuStubState, vm_id, 0),
    DEFINE_PROP_STRING("pool-id", VgpuStubState, pool_id),
    DEFINE_PROP_UNSIGNED("priority", VgpuStubState, priority, 1,
                         vgpu_stub_prop_priority, uint8_t),
    DEFINE_PROP_LINK("memdev", VgpuStubState, hostmem, TYPE_MEMORY_BACKEND,
                     HostMemoryBackend *),
    DEFINE_PROP_END_OF_LIST(),
};

static void vgpu_stub_instance_init(Object *obj)
{
    VgpuStubState *s = VGPU_STUB(obj);

    s->pool_id = g_strdup("A");
    /* the names before dash-style ones were taken, kept */
    object_property_add_alias(obj, "vm_id", obj, "vm-id");
    object_property_add_alias(obj, "pool_id", obj, "pool-id");
}

static void vgpu_stub_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = vgpu_stub_realize;
    k->exit = vgpu_stub_exit;
    k->vendor_id = VGPU_STUB_PCI_VENDOR;
    k->device_id = VGPU_STUB_PCI_DEVICE;
    k->class_id = VGPU_STUB_PCI_CLASS;
    k->revision = VGPU_STUB_PCI_REVISION;
    dc->reset = vgpu_stub_reset;
    dc->desc = "vgpu stub: CUDA calls to vgpu-server";
    device_class_set_props(dc, vgpu_stub_properties);
    object_class_property_set_description(klass, "chardev",
        "the socket chardev to vgpu-server's device listener (give it "
        "reconnect, so a restarted server is reached again)");
    object_class_property_set_description(klass, "vm-id",
        "this VM's id, which vgpu-server checks against its listener "
        "(alias vm_id)");
    object_class_property_set_description(klass, "pool-id",
        "the GPU pool, one letter A-Z (alias pool_id)");
    object_class_property_set_description(klass, "priority",
        "low, medium or high (or 0, 1, 2): the scheduling class of this "
        "VM's work");
    object_class_property_set_description(klass, "memdev",
        "a shared memory backend (memory-backend-memfd, share=on) for the "
        "shared BAR: queue pairs and bulk data");
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo vgpu_stub_info = {
    .name = TYPE_VGPU_STUB,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(VgpuStubState),
    .instance_init = vgpu_stub_instance_init,
    .class_init = vgpu_stub_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { },
    },
};

static void vgpu_stub_register_types(void)
{
    type_register_static(&vgpu_stub_info);
}

type_init(vgpu_stub_register_types)
