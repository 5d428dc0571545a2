// SPDX-License-Identifier: Apache-2.0
/*
 * Writes the seed corpus of control_fuzz (format in control_fuzz.h): a
 * host-direct session that attaches a queue pair and registers, uses and
 * drops memfd regions; a guest session with a shared BAR that attaches its
 * pair in a slot and registers BAR regions; the error table, device output
 * and close.
 * Made with the real protobuf-c packer, so the seeds follow the schema.
 * Usage: control_seeds OUTDIR (the directory must exist).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_fuzz.h"
#include "vgpu/qp.h"
#include "vgpu/wire.h"

struct seed {
    uint8_t buf[4096];
    size_t len;
};

static void add(struct seed *s, uint8_t fd, Vgpu__Wire__Control *c)
{
    size_t n = vgpu__wire__control__get_packed_size(c);

    if (s->len + 3 + n > sizeof(s->buf)) {
        fprintf(stderr, "control_seeds: a seed outgrew its buffer\n");
        exit(1);
    }
    s->buf[s->len++] = fd;
    s->buf[s->len++] = (uint8_t)n;
    s->buf[s->len++] = (uint8_t)(n >> 8);
    vgpu__wire__control__pack(c, s->buf + s->len);
    s->len += n;
}

static void attach(struct seed *s, uint8_t fd, uint64_t size, int in_bar, uint64_t off)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__AttachQueuePair a = VGPU__WIRE__ATTACH_QUEUE_PAIR__INIT;

    a.size = size;
    a.in_bar = in_bar;
    a.bar_offset = off;
    c.op_case = VGPU__WIRE__CONTROL__OP_ATTACH_QUEUE_PAIR;
    c.attach_queue_pair = &a;
    add(s, fd, &c);
}

static void memfd_region(struct seed *s, uint8_t fd, uint32_t id, uint64_t size)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterMemfdRegion a = VGPU__WIRE__REGISTER_MEMFD_REGION__INIT;

    a.id = id;
    a.size = size;
    c.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_MEMFD_REGION;
    c.register_memfd_region = &a;
    add(s, fd, &c);
}

static void bar_region(struct seed *s, uint32_t id, uint64_t off, uint64_t size)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__RegisterBarRegion a = VGPU__WIRE__REGISTER_BAR_REGION__INIT;

    a.id = id;
    a.bar_offset = off;
    a.size = size;
    c.op_case = VGPU__WIRE__CONTROL__OP_REGISTER_BAR_REGION;
    c.register_bar_region = &a;
    add(s, 0, &c);
}

static void unregister(struct seed *s, uint32_t id)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__UnregisterRegion a = VGPU__WIRE__UNREGISTER_REGION__INIT;

    a.id = id;
    c.op_case = VGPU__WIRE__CONTROL__OP_UNREGISTER_REGION;
    c.unregister_region = &a;
    add(s, 0, &c);
}

static void table_and_close(struct seed *s)
{
    Vgpu__Wire__Control c = VGPU__WIRE__CONTROL__INIT;
    Vgpu__Wire__FetchErrorTable t = VGPU__WIRE__FETCH_ERROR_TABLE__INIT;
    Vgpu__Wire__Close cl = VGPU__WIRE__CLOSE__INIT;
    Vgpu__Wire__FetchDeviceOutput d = VGPU__WIRE__FETCH_DEVICE_OUTPUT__INIT;

    c.op_case = VGPU__WIRE__CONTROL__OP_FETCH_ERROR_TABLE;
    c.fetch_error_table = &t;
    add(s, 0, &c);
    c.op_case = VGPU__WIRE__CONTROL__OP_FETCH_DEVICE_OUTPUT;
    c.fetch_device_output = &d;
    add(s, 0, &c);
    c.op_case = VGPU__WIRE__CONTROL__OP_CLOSE;
    c.close = &cl;
    add(s, 0, &c);
}

static int save(const char *dir, const char *name, const struct seed *s)
{
    char path[4096];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    if (!fp || fwrite(s->buf, 1, s->len, fp) != s->len || fclose(fp)) {
        fprintf(stderr, "control_seeds: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t qp = vgpu_qp_bytes(CF_RING, CF_RING), slot = (uint64_t)1 << VGPU_STUB_SLOT_SHIFT;
    uint8_t qp_units = (uint8_t)((qp + CF_UNIT - 1) / CF_UNIT);
    struct seed host = { .len = 1 }, guest = { .len = 1 };

    if (argc != 2) {
        fprintf(stderr, "usage: control_seeds OUTDIR\n");
        return 2;
    }
    host.buf[0] = 0;
    attach(&host, CF_FD | CF_SEAL | CF_FD_QP | qp_units, qp, 0, 0);
    memfd_region(&host, CF_FD | CF_SEAL | 4, 1, 4 * CF_UNIT);
    memfd_region(&host, CF_FD | 2, 2, 2 * CF_UNIT);
    unregister(&host, 1);
    table_and_close(&host);

    guest.buf[0] = CF_BAR | 2 << CF_BELLS_SHIFT | CF_BAR_QP;
    attach(&guest, 0, qp, 1, slot);
    bar_region(&guest, 3, slot + (2u << 20), 6u << 20);
    bar_region(&guest, 4, 2 * slot, 4096);
    unregister(&guest, 3);
    table_and_close(&guest);
    return save(argv[1], "host.bin", &host) || save(argv[1], "guest.bin", &guest);
}
