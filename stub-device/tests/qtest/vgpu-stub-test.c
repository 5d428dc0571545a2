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

#define VGPU_STUB_DEVFN     QPCI_DEVFN(4, 0)

/* Registers (docs/specs/vgpu-stub.md in the vgpu project) */
#define R_DOORBELL          0x000
#define R_STATUS            0x004
#define R_POOL_ID           0x008
#define R_PRIORITY          0x00c
#define R_VM_ID             0x010
#define R_ERROR_CODE        0x014
#define R_REQUEST_LEN       0x018
#define R_RESPONSE_LEN      0x01c
#define R_PROTOCOL_VER      0x020
#define R_CAPABILITIES      0x024
#define R_IRQ_CTRL          0x028
#define R_IRQ_STATUS        0x02c
#define R_REQUEST_ID        0x030
#define R_CHUNK_CTRL        0x034
#define R_CHANNEL           0x038
#define R_LINK_EPOCH        0x03c
#define R_REQUEST           0x040
#define R_RESPONSE          0x440
#define R_RESPONSE_TOTAL    0x840
#define R_RESPONSE_OFFSET   0x844
#define R_REQUEST_TOTAL     0x848
#define R_MAX_FRAME         0x84c
#define R_QP_DOORBELL       0x900

#define CAP_SHARED          0x8
#define CAP_DOORBELLS       0x10

#define FRAME_MAGIC         0x55504756  /* "VGPU" */

#define STATUS_IDLE         0
#define STATUS_ERROR        3

#define CMD_SUBMIT          1
#define CMD_ACK             2

#define ERR_NONE            0
#define ERR_BAD_OFFSET      1
#define ERR_BAD_WIDTH       2
#define ERR_BAD_LENGTH      3
#define ERR_BAD_FRAME       5
#define ERR_NO_SERVER       7
#define ERR_BAD_COMMAND     9
#define ERR_READ_PAST_END   11
#define ERR_NO_CHANNEL      13
#define ERR_READ_ONLY       14

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
    g_assert_cmpuint(size, ==, 4096);
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
    g_assert_cmpuint(rd(t, R_STATUS), ==, STATUS_ERROR);
    g_assert_cmpuint(rd(t, R_ERROR_CODE), ==, code);
    wr(t, R_DOORBELL, CMD_ACK);
    g_assert_cmpuint(rd(t, R_STATUS), ==, STATUS_IDLE);
    g_assert_cmpuint(rd(t, R_ERROR_CODE), ==, ERR_NONE);
}

/* The 32-byte header of a vgpu frame with no envelope and no payload. */
static void make_header(uint8_t f[32], uint32_t magic)
{
    memset(f, 0, 32);
    stl_le_p(f, magic);
    stw_le_p(f + 4, 1);             /* protocol version */
    stq_le_p(f + 16, 1);            /* seq */
}

/* One chunk: len bytes of p into REQUEST, then its length and MORE bit. */
static void put_chunk(VgpuStubTest *t, const uint8_t *p, uint32_t len,
                      bool more)
{
    qpci_memwrite(t->dev, t->bar, R_REQUEST, p, len);
    wr(t, R_REQUEST_LEN, len);
    wr(t, R_CHUNK_CTRL, more);
}

static void test_identity(void)
{
    VgpuStubTest t;

    vgpu_stub_start(&t);
    g_assert_cmphex(qpci_config_readw(t.dev, PCI_VENDOR_ID), ==, 0x1af4);
    g_assert_cmphex(qpci_config_readw(t.dev, PCI_DEVICE_ID), ==, 0x1111);
    g_assert_cmphex(qpci_config_readw(t.dev, PCI_CLASS_DEVICE), ==, 0x1200);
    g_assert_cmphex(qpci_config_readb(t.dev, PCI_REVISION_ID), ==, 1);
    g_assert_cmphex(qpci_config_readb(t.dev, PCI_INTERRUPT_PIN), ==, 1);

    g_assert_cmphex(rd(&t, R_DOORBELL), ==, 0);
    g_assert_cmphex(rd(&t, R_STATUS), ==, STATUS_IDLE);
    g_assert_cmphex(rd(&t, R_POOL_ID), ==, 'C');
    g_assert_cmphex(rd(&t, R_PRIORITY), ==, 0);
    g_assert_cmphex(rd(&t, R_VM_ID), ==, 7);
    g_assert_cmphex(rd(&t, R_ERROR_CODE), ==, ERR_NONE);
    g_assert_cmphex(rd(&t, R_REQUEST_LEN), ==, 0);
    g_assert_cmphex(rd(&t, R_RESPONSE_LEN), ==, 0);
    g_assert_cmphex(rd(&t, R_PROTOCOL_VER), ==, 1);
    g_assert_cmphex(rd(&t, R_CAPABILITIES), ==, 0x7);
    g_assert_cmphex(rd(&t, R_IRQ_CTRL), ==, 0);
    g_assert_cmphex(rd(&t, R_IRQ_STATUS), ==, 0);
    g_assert_cmphex(rd(&t, R_REQUEST_ID), ==, 0);
    g_assert_cmphex(rd(&t, R_CHUNK_CTRL), ==, 0);
    g_assert_cmphex(rd(&t, R_CHANNEL), ==, 0);
    /* a null chardev never connects */
    g_assert_cmphex(rd(&t, R_LINK_EPOCH), ==, 0);
    g_assert_cmphex(rd(&t, R_RESPONSE_TOTAL), ==, 0);
    g_assert_cmphex(rd(&t, R_RESPONSE_OFFSET), ==, 0);
    g_assert_cmphex(rd(&t, R_REQUEST_TOTAL), ==, 0);
    g_assert_cmphex(rd(&t, R_MAX_FRAME), ==, 64 * 1024 * 1024);
    vgpu_stub_stop(&t);
}

static void test_no_server(void)
{
    VgpuStubTest t;
    uint8_t f[32];

    vgpu_stub_start(&t);
    make_header(f, FRAME_MAGIC);
    wr(&t, R_CHANNEL, 1);
    /* a chunk with MORE is only collected */
    put_chunk(&t, f, 16, true);
    wr(&t, R_DOORBELL, CMD_SUBMIT);
    g_assert_cmpuint(rd(&t, R_STATUS), ==, STATUS_IDLE);
    g_assert_cmpuint(rd(&t, R_REQUEST_TOTAL), ==, 16);
    /* the whole frame is well-formed, but there is nobody to send it to */
    put_chunk(&t, f + 16, 16, false);
    wr(&t, R_DOORBELL, CMD_SUBMIT);
    expect_error(&t, ERR_NO_SERVER);
    g_assert_cmpuint(rd(&t, R_REQUEST_TOTAL), ==, 0);
    vgpu_stub_stop(&t);
}

static void test_guest_errors(void)
{
    VgpuStubTest t;
    uint8_t f[32];

    vgpu_stub_start(&t);

    /* ACK with nothing to acknowledge, and an unknown command */
    wr(&t, R_DOORBELL, CMD_ACK);
    expect_error(&t, ERR_BAD_COMMAND);
    wr(&t, R_DOORBELL, 0x42);
    expect_error(&t, ERR_BAD_COMMAND);

    /* registers take 4-byte accesses only */
    qpci_io_readb(t.dev, t.bar, R_STATUS);
    expect_error(&t, ERR_BAD_WIDTH);
    qpci_io_writew(t.dev, t.bar, R_REQUEST_ID, 1);
    expect_error(&t, ERR_BAD_WIDTH);

    /* read-only registers keep their value */
    wr(&t, R_VM_ID, 99);
    expect_error(&t, ERR_READ_ONLY);
    g_assert_cmpuint(rd(&t, R_VM_ID), ==, 7);

    /* an offset that is no register reads 0 */
    g_assert_cmpuint(rd(&t, 0x850), ==, 0);
    expect_error(&t, ERR_BAD_OFFSET);

    /* nothing to read in RESPONSE while IDLE */
    rd(&t, R_RESPONSE);
    expect_error(&t, ERR_READ_PAST_END);

    /* SUBMIT mistakes */
    make_header(f, FRAME_MAGIC);
    wr(&t, R_CHANNEL, 0);
    put_chunk(&t, f, sizeof(f), false);
    wr(&t, R_DOORBELL, CMD_SUBMIT);
    expect_error(&t, ERR_NO_CHANNEL);
    wr(&t, R_CHANNEL, 1);
    wr(&t, R_REQUEST_LEN, 1025);
    wr(&t, R_DOORBELL, CMD_SUBMIT);
    expect_error(&t, ERR_BAD_LENGTH);
    make_header(f, 0xdeadbeef);
    put_chunk(&t, f, sizeof(f), false);
    wr(&t, R_DOORBELL, CMD_SUBMIT);
    expect_error(&t, ERR_BAD_FRAME);

    /* the buffers take any width */
    qpci_io_writeb(t.dev, t.bar, R_REQUEST + 1, 0xab);
    qpci_io_writew(t.dev, t.bar, R_REQUEST + 2, 0xcdef);
    g_assert_cmphex(qpci_io_readl(t.dev, t.bar, R_REQUEST) >> 8, ==, 0xcdefab);
    g_assert_cmpuint(rd(&t, R_STATUS), ==, STATUS_IDLE);
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
    g_assert_cmphex(rd(&t, R_CAPABILITIES), ==, 0x7 | CAP_SHARED | CAP_DOORBELLS);
    flags = qpci_config_readl(t.dev, PCI_BASE_ADDRESS_2);
    g_assert_cmphex(flags & PCI_BASE_ADDRESS_MEM_TYPE_MASK, ==, PCI_BASE_ADDRESS_MEM_TYPE_64);
    g_assert_true(flags & PCI_BASE_ADDRESS_MEM_PREFETCH);
    bar2 = qpci_iomap(t.dev, 2, &size);
    g_assert_cmpuint(size, ==, 16 * 1024 * 1024);
    for (size_t i = 0; i < sizeof(in); i++) {
        in[i] = (uint8_t)(i * 7 + 1);
    }
    qpci_memwrite(t.dev, bar2, 8 * 1024 * 1024 - 32, in, sizeof(in));
    qpci_memread(t.dev, bar2, 8 * 1024 * 1024 - 32, out, sizeof(out));
    g_assert_cmpmem(in, sizeof(in), out, sizeof(out));
    /* two slots, two doorbells */
    g_assert_cmphex(rd(&t, R_QP_DOORBELL), ==, 0);
    wr(&t, R_QP_DOORBELL, 1);
    wr(&t, R_QP_DOORBELL + 4, 1);
    g_assert_cmpuint(rd(&t, R_STATUS), ==, STATUS_IDLE);
    g_assert_cmpuint(rd(&t, R_ERROR_CODE), ==, ERR_NONE);
    wr(&t, R_QP_DOORBELL + 8, 1);
    expect_error(&t, ERR_BAD_OFFSET);
    vgpu_stub_stop(&t);
}

static void test_no_shared_bar(void)
{
    VgpuStubTest t;

    vgpu_stub_start(&t);
    /* without memdev: no BAR2 and no doorbells */
    g_assert_cmphex(qpci_config_readl(t.dev, PCI_BASE_ADDRESS_2), ==, 0);
    wr(&t, R_QP_DOORBELL, 1);
    expect_error(&t, ERR_BAD_OFFSET);
    vgpu_stub_stop(&t);
}

static void test_reset(void)
{
    VgpuStubTest t;

    vgpu_stub_start(&t);
    wr(&t, R_REQUEST_ID, 0x1234);
    wr(&t, R_CHANNEL, 5);
    wr(&t, R_IRQ_CTRL, 1);
    qpci_io_writel(t.dev, t.bar, R_REQUEST, 0xffffffff);
    wr(&t, R_DOORBELL, CMD_ACK);
    g_assert_cmpuint(rd(&t, R_STATUS), ==, STATUS_ERROR);

    qtest_qmp_assert_success(t.qts, "{ 'execute': 'system_reset' }");
    qtest_qmp_eventwait(t.qts, "RESET");
    g_free(t.dev);
    vgpu_stub_map(&t);      /* the reset cleared BAR0 and COMMAND */

    g_assert_cmpuint(rd(&t, R_STATUS), ==, STATUS_IDLE);
    g_assert_cmpuint(rd(&t, R_ERROR_CODE), ==, ERR_NONE);
    g_assert_cmpuint(rd(&t, R_REQUEST_ID), ==, 0);
    g_assert_cmpuint(rd(&t, R_CHANNEL), ==, 0);
    g_assert_cmpuint(rd(&t, R_IRQ_CTRL), ==, 0);
    g_assert_cmpuint(rd(&t, R_IRQ_STATUS), ==, 0);
    g_assert_cmpuint(rd(&t, R_REQUEST), ==, 0);
    g_assert_cmpuint(rd(&t, R_VM_ID), ==, 7);
    vgpu_stub_stop(&t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/vgpu-stub/identity", test_identity);
    qtest_add_func("/vgpu-stub/no-server", test_no_server);
    qtest_add_func("/vgpu-stub/guest-errors", test_guest_errors);
    qtest_add_func("/vgpu-stub/reset", test_reset);
    qtest_add_func("/vgpu-stub/shared-bar", test_shared_bar);
    qtest_add_func("/vgpu-stub/no-shared-bar", test_no_shared_bar);
    return g_test_run();
}
