/*
 * QTest testcase for the vgpu-stub PCI device
 *
 * Identity registers, reset values and guest mistakes, with the device's
 * chardev on a null backend: it never connects, so no vgpu-server is
 * needed and a well-formed frame ends in NO_SERVER.  The exchange of
 * frames with a real server is tested by the vgpu project (tests/device).
 *
 * Copyright (c) 2026 The vgpu developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "libqtest.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_regs.h"
/* Registers, values and frame header facts: the vgpu project's ABI header */
#include "vgpu/stub_abi.h"

#define VGPU_STUB_DEVFN     QPCI_DEVFN(4, 0)

typedef struct {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar bar;
} VgpuStubTest;

static void vgpu_stub_map(VgpuStubTest *t)
{
    uint64_t size;

    t->dev = qpci_device_find(t->bus, VGPU_STUB_DEVFN);
    g_assert(t->dev);
    qpci_device_enable(t->dev);
    t->bar = qpci_iomap(t->dev, 0, &size);
    g_assert_cmpuint(size, ==, VGPU_STUB_BAR0_SIZE);
}

static void vgpu_stub_start(VgpuStubTest *t)
{
    t->qts = qtest_init("-chardev null,id=vgpu0 "
                        "-device vgpu-stub,chardev=vgpu0,addr=04.0,"
                        "vm_id=7,pool_id=C,priority=0");
    t->bus = qpci_new_pc(t->qts, NULL);
    vgpu_stub_map(t);
}

static void vgpu_stub_stop(VgpuStubTest *t)
{
    g_free(t->dev);
    qpci_free_pc(t->bus);
    qtest_quit(t->qts);
}

static uint32_t rd(VgpuStubTest *t, uint64_t off)
{
    return qpci_io_readl(t->dev, t->bar, off);
}

static void wr(VgpuStubTest *t, uint64_t off, uint32_t val)
{
    qpci_io_writel(t->dev, t->bar, off, val);
}

/* The device shows ERROR with code; ACK brings it back to IDLE. */
static void expect_error(VgpuStubTest *t, uint32_t code)
{
    g_assert_cmpuint(rd(t, VGPU_STUB_R_STATUS), ==, VGPU_STUB_STATUS_ERROR);
    g_assert_cmpuint(rd(t, VGPU_STUB_R_ERROR_CODE), ==, code);
    wr(t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    g_assert_cmpuint(rd(t, VGPU_STUB_R_STATUS), ==, VGPU_STUB_STATUS_IDLE);
    g_assert_cmpuint(rd(t, VGPU_STUB_R_ERROR_CODE), ==, VGPU_STUB_ERR_NONE);
}

/*
 * The 32-byte header of a vgpu frame with no envelope and no payload, of
 * frame protocol version 1 and no flags.
 */
static void make_header(uint8_t f[VGPU_FRAME_HEADER_SIZE], uint32_t magic)
{
    memset(f, 0, VGPU_FRAME_HEADER_SIZE);
    stl_le_p(f + VGPU_FRAME_OFF_MAGIC, magic);
    stw_le_p(f + VGPU_FRAME_OFF_VERSION, 1);
    stq_le_p(f + VGPU_FRAME_OFF_SEQ, 1);
}

/* One chunk: len bytes of p into REQUEST, then its length and MORE bit. */
static void put_chunk(VgpuStubTest *t, const uint8_t *p, uint32_t len,
                      bool more)
{
    qpci_memwrite(t->dev, t->bar, VGPU_STUB_R_REQUEST, p, len);
    wr(t, VGPU_STUB_R_REQUEST_LEN, len);
    wr(t, VGPU_STUB_R_CHUNK_CTRL, more);
}

static void test_identity(void)
{
    VgpuStubTest t;

    vgpu_stub_start(&t);
    g_assert_cmphex(qpci_config_readw(t.dev, PCI_VENDOR_ID), ==,
                    VGPU_STUB_PCI_VENDOR);
    g_assert_cmphex(qpci_config_readw(t.dev, PCI_DEVICE_ID), ==,
                    VGPU_STUB_PCI_DEVICE);
    g_assert_cmphex(qpci_config_readw(t.dev, PCI_CLASS_DEVICE), ==,
                    VGPU_STUB_PCI_CLASS);
    g_assert_cmphex(qpci_config_readb(t.dev, PCI_REVISION_ID), ==,
                    VGPU_STUB_PCI_REVISION);
    g_assert_cmphex(qpci_config_readb(t.dev, PCI_INTERRUPT_PIN), ==, 1);

    g_assert_cmphex(rd(&t, VGPU_STUB_R_DOORBELL), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_STATUS), ==, VGPU_STUB_STATUS_IDLE);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_POOL_ID), ==, 'C');
    g_assert_cmphex(rd(&t, VGPU_STUB_R_PRIORITY), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_VM_ID), ==, 7);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_ERROR_CODE), ==, VGPU_STUB_ERR_NONE);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_REQUEST_LEN), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_RESPONSE_LEN), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_PROTOCOL_VER), ==,
                    VGPU_STUB_REG_VERSION);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_CAPABILITIES), ==, VGPU_STUB_CAP_BASE);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_IRQ_CTRL), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_IRQ_STATUS), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_REQUEST_ID), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_CHUNK_CTRL), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_CHANNEL), ==, 0);
    /* a null chardev never connects */
    g_assert_cmphex(rd(&t, VGPU_STUB_R_LINK_EPOCH), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_LINK_STATE), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_RESPONSE_TOTAL), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_RESPONSE_OFFSET), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_REQUEST_TOTAL), ==, 0);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_MAX_FRAME), ==, VGPU_STUB_MAX_FRAME);
    vgpu_stub_stop(&t);
}

static void test_no_server(void)
{
    VgpuStubTest t;
    uint8_t f[32];

    vgpu_stub_start(&t);
    make_header(f, VGPU_FRAME_MAGIC);
    wr(&t, VGPU_STUB_R_CHANNEL, 1);
    /* a chunk with MORE is only collected */
    put_chunk(&t, f, 16, true);
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_STATUS), ==, VGPU_STUB_STATUS_IDLE);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_REQUEST_TOTAL), ==, 16);
    /* the whole frame is well-formed, but there is nobody to send it to */
    put_chunk(&t, f + 16, 16, false);
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_error(&t, VGPU_STUB_ERR_NO_SERVER);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_REQUEST_TOTAL), ==, 0);
    vgpu_stub_stop(&t);
}

static void test_guest_errors(void)
{
    VgpuStubTest t;
    uint8_t f[32];

    vgpu_stub_start(&t);

    /* ACK with nothing to acknowledge, and an unknown command */
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    expect_error(&t, VGPU_STUB_ERR_BAD_COMMAND);
    wr(&t, VGPU_STUB_R_DOORBELL, 0x42);
    expect_error(&t, VGPU_STUB_ERR_BAD_COMMAND);

    /* registers take 4-byte accesses only */
    qpci_io_readb(t.dev, t.bar, VGPU_STUB_R_STATUS);
    expect_error(&t, VGPU_STUB_ERR_BAD_WIDTH);
    qpci_io_writew(t.dev, t.bar, VGPU_STUB_R_REQUEST_ID, 1);
    expect_error(&t, VGPU_STUB_ERR_BAD_WIDTH);

    /* read-only registers keep their value */
    wr(&t, VGPU_STUB_R_VM_ID, 99);
    expect_error(&t, VGPU_STUB_ERR_READ_ONLY);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_VM_ID), ==, 7);

    /* an offset that is no register reads 0 */
    g_assert_cmpuint(rd(&t, 0x850), ==, 0);
    expect_error(&t, VGPU_STUB_ERR_BAD_OFFSET);

    /* nothing to read in RESPONSE while IDLE */
    rd(&t, VGPU_STUB_R_RESPONSE);
    expect_error(&t, VGPU_STUB_ERR_READ_PAST_END);

    /* SUBMIT mistakes */
    make_header(f, VGPU_FRAME_MAGIC);
    wr(&t, VGPU_STUB_R_CHANNEL, 0);
    put_chunk(&t, f, sizeof(f), false);
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_error(&t, VGPU_STUB_ERR_NO_CHANNEL);
    wr(&t, VGPU_STUB_R_CHANNEL, 1);
    wr(&t, VGPU_STUB_R_REQUEST_LEN, 1025);
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_error(&t, VGPU_STUB_ERR_BAD_LENGTH);
    make_header(f, 0xdeadbeef);
    put_chunk(&t, f, sizeof(f), false);
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_error(&t, VGPU_STUB_ERR_BAD_FRAME);
    /* an empty frame, and an empty chunk after a partial one */
    put_chunk(&t, f, 0, false);
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_error(&t, VGPU_STUB_ERR_BAD_FRAME);
    make_header(f, VGPU_FRAME_MAGIC);
    put_chunk(&t, f, 8, true);
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    put_chunk(&t, f, 0, false);
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
    expect_error(&t, VGPU_STUB_ERR_BAD_FRAME);

    /* the buffers take any width */
    qpci_io_writeb(t.dev, t.bar, VGPU_STUB_R_REQUEST + 1, 0xab);
    qpci_io_writew(t.dev, t.bar, VGPU_STUB_R_REQUEST + 2, 0xcdef);
    g_assert_cmphex(qpci_io_readl(t.dev, t.bar, VGPU_STUB_R_REQUEST) >> 8, ==,
                    0xcdefab);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_STATUS), ==, VGPU_STUB_STATUS_IDLE);
    vgpu_stub_stop(&t);
}

/*
 * The device checks what the frame format defines and nothing more: any
 * flag the format knows passes (REPLY, COMPACT), and so does any version,
 * which is the server's to judge; an undefined flag or a reserved word
 * that is not 0 is BAD_FRAME.  With no server, an accepted frame ends in
 * NO_SERVER.
 */
static void test_frame_header(void)
{
    static const struct {
        uint16_t version, flags;
        uint64_t reserved;
        uint32_t error;
    } cases[] = {
        { 1, 0, 0, VGPU_STUB_ERR_NO_SERVER },
        { 1, VGPU_FRAME_F_REPLY, 0, VGPU_STUB_ERR_NO_SERVER },
        { 1, VGPU_FRAME_F_COMPACT, 0, VGPU_STUB_ERR_NO_SERVER },
        { 1, VGPU_FRAME_F_KNOWN, 0, VGPU_STUB_ERR_NO_SERVER },
        { 2, 0, 0, VGPU_STUB_ERR_NO_SERVER },
        { 0, 0, 0, VGPU_STUB_ERR_NO_SERVER },
        { 0xffff, VGPU_FRAME_F_COMPACT, 0, VGPU_STUB_ERR_NO_SERVER },
        { 1, 0x0004, 0, VGPU_STUB_ERR_BAD_FRAME },
        { 1, 0x8000, 0, VGPU_STUB_ERR_BAD_FRAME },
        { 1, VGPU_FRAME_F_REPLY | 0x0100, 0, VGPU_STUB_ERR_BAD_FRAME },
        { 1, 0, 1ull << 63, VGPU_STUB_ERR_BAD_FRAME },
    };
    VgpuStubTest t;
    uint8_t f[VGPU_FRAME_HEADER_SIZE];
    size_t i;

    g_assert_cmphex(VGPU_FRAME_F_KNOWN, ==, 0x3);
    vgpu_stub_start(&t);
    wr(&t, VGPU_STUB_R_CHANNEL, 1);
    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        make_header(f, VGPU_FRAME_MAGIC);
        stw_le_p(f + VGPU_FRAME_OFF_VERSION, cases[i].version);
        stw_le_p(f + VGPU_FRAME_OFF_FLAGS, cases[i].flags);
        stq_le_p(f + VGPU_FRAME_OFF_RESERVED, cases[i].reserved);
        put_chunk(&t, f, sizeof(f), false);
        wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
        expect_error(&t, cases[i].error);
    }
    vgpu_stub_stop(&t);
}

/*
 * With memdev=, BAR2 is the backend's memory (64-bit, prefetchable), the
 * capabilities say so, and each 8 MiB slot has a doorbell that reads 0
 * and takes writes quietly; past the last slot's, a register that is not.
 */
static void test_shared_bar(void)
{
    VgpuStubTest t;
    QPCIBar bar2;
    uint64_t size;
    uint32_t flags;
    uint8_t in[64], out[64];

    t.qts = qtest_init("-object memory-backend-memfd,id=vgpumem,size=16M,share=on "
                       "-chardev null,id=vgpu0 "
                       "-device vgpu-stub,chardev=vgpu0,addr=04.0,memdev=vgpumem");
    t.bus = qpci_new_pc(t.qts, NULL);
    vgpu_stub_map(&t);
    g_assert_cmphex(rd(&t, VGPU_STUB_R_CAPABILITIES), ==,
                    VGPU_STUB_CAP_BASE | VGPU_STUB_CAP_SHARED |
                    VGPU_STUB_CAP_DOORBELLS);
    flags = qpci_config_readl(t.dev, PCI_BASE_ADDRESS_2);
    g_assert_cmphex(flags & PCI_BASE_ADDRESS_MEM_TYPE_MASK, ==, PCI_BASE_ADDRESS_MEM_TYPE_64);
    g_assert_true(flags & PCI_BASE_ADDRESS_MEM_PREFETCH);
    bar2 = qpci_iomap(t.dev, 2, &size);
    g_assert_cmpuint(size, ==, 16 * 1024 * 1024);
    for (size_t i = 0; i < sizeof(in); i++) {
        in[i] = (uint8_t)(i * 7 + 1);
    }
    qpci_memwrite(t.dev, bar2, VGPU_STUB_SLOT_SIZE - 32, in, sizeof(in));
    qpci_memread(t.dev, bar2, VGPU_STUB_SLOT_SIZE - 32, out, sizeof(out));
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    /* two slots, two doorbells */
    g_assert_cmphex(rd(&t, VGPU_STUB_R_QP_DOORBELL), ==, 0);
    wr(&t, VGPU_STUB_R_QP_DOORBELL, 1);
    wr(&t, VGPU_STUB_R_QP_DOORBELL_K(1), 1);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_STATUS), ==, VGPU_STUB_STATUS_IDLE);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_ERROR_CODE), ==, VGPU_STUB_ERR_NONE);
    wr(&t, VGPU_STUB_R_QP_DOORBELL_K(2), 1);
    expect_error(&t, VGPU_STUB_ERR_BAD_OFFSET);
    vgpu_stub_stop(&t);
}

static void test_no_shared_bar(void)
{
    VgpuStubTest t;

    vgpu_stub_start(&t);
    /* without memdev: no BAR2 and no doorbells */
    g_assert_cmphex(qpci_config_readl(t.dev, PCI_BASE_ADDRESS_2), ==, 0);
    wr(&t, VGPU_STUB_R_QP_DOORBELL, 1);
    expect_error(&t, VGPU_STUB_ERR_BAD_OFFSET);
    vgpu_stub_stop(&t);
}

static void test_reset(void)
{
    VgpuStubTest t;

    vgpu_stub_start(&t);
    wr(&t, VGPU_STUB_R_REQUEST_ID, 0x1234);
    wr(&t, VGPU_STUB_R_CHANNEL, 5);
    wr(&t, VGPU_STUB_R_IRQ_CTRL, 1);
    qpci_io_writel(t.dev, t.bar, VGPU_STUB_R_REQUEST, 0xffffffff);
    wr(&t, VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_STATUS), ==, VGPU_STUB_STATUS_ERROR);

    qtest_qmp_assert_success(t.qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(t.qts, "RESET");
    g_free(t.dev);
    vgpu_stub_map(&t);      /* the reset cleared BAR0 and COMMAND */

    g_assert_cmpuint(rd(&t, VGPU_STUB_R_STATUS), ==, VGPU_STUB_STATUS_IDLE);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_ERROR_CODE), ==, VGPU_STUB_ERR_NONE);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_REQUEST_ID), ==, 0);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_CHANNEL), ==, 0);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_IRQ_CTRL), ==, 0);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_IRQ_STATUS), ==, 0);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_REQUEST), ==, 0);
    g_assert_cmpuint(rd(&t, VGPU_STUB_R_VM_ID), ==, 7);
    vgpu_stub_stop(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vgpu-stub/identity", test_identity);
    qtest_add_func("/vgpu-stub/no-server", test_no_server);
    qtest_add_func("/vgpu-stub/guest-errors", test_guest_errors);
    qtest_add_func("/vgpu-stub/frame-header", test_frame_header);
    qtest_add_func("/vgpu-stub/reset", test_reset);
    qtest_add_func("/vgpu-stub/shared-bar", test_shared_bar);
    qtest_add_func("/vgpu-stub/no-shared-bar", test_no_shared_bar);
    return g_test_run();
}
