/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The mmio transport: a guest with a vgpu-stub PCI device (1af4:1111) maps
 * its BAR0 through sysfs (resource0) and moves each frame through the 1 KB
 * request buffer in chunks, then reads the answer through the 1 KB response
 * window (docs/specs/vgpu-stub.md).  Every guest process is one client with
 * a channel of its own; an flock on resource0 serialises the processes and a
 * mutex in client/ the threads.  Waiting is a short spin, then sleeps that grow
 * to 1 ms: an idle wait costs almost nothing, and a server that goes away is
 * reported by the device (ERROR), so nothing waits for ever on a dead link.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client/transport.h"
#include "vgpu/fdio.h"
#include "vgpu/stub_abi.h"

/* What the window transport needs of a device: chunks, and a channel per process. */
#define NEED_CAPS (VGPU_STUB_CAP_CHUNKS | VGPU_STUB_CAP_CHANNELS)
/* What a queue pair in the shared BAR needs: the memory, and doorbells to wake the server. */
#define QP_CAPS (VGPU_STUB_CAP_SHARED | VGPU_STUB_CAP_DOORBELLS)
#define CHUNK VGPU_STUB_BUF_SIZE

static struct mmio {
    int fd;
    volatile uint32_t *bar;
    uint32_t channel;
    uint32_t epoch;
    uint32_t max_frame;
    uint8_t *answer;
    size_t answer_len;
    char where[300];
    char dir[300];             /* the device's sysfs directory */
    int shared_fd;             /* resource2, held open for its slot lock, or -1 */
    uint64_t slot_off;         /* where the slot is in the shared BAR */
    uint64_t bar2_size;        /* the shared BAR's size */
    bool link_state;           /* the device has LINK_STATE (VGPU_STUB_CAP_LINK_STATE) */
    uint8_t *claimed;          /* per slot: 1 when this process holds it for mapped memory */
} m = { .fd = -1, .shared_fd = -1 };

static uint32_t rd(uint32_t off)
{
    return m.bar[off / 4];
}

static void wr(uint32_t off, uint32_t v)
{
    m.bar[off / 4] = v;
}

static int read_hex(const char *dir, const char *file, unsigned *out)
{
    char path[512], buf[32];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    f = fopen(path, "r");
    if (!f)
        return -1;
    ok = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    return ok && sscanf(buf, "%x", out) == 1 ? 0 : -1;
}

/* The sysfs directory of the first vgpu-stub device, or -ENODEV. */
static int find_device(char *dir, size_t len)
{
    const char *base = "/sys/bus/pci/devices";
    DIR *d = opendir(base);
    struct dirent *e;
    int rc = -ENODEV;

    if (!d)
        return -ENODEV;
    while ((e = readdir(d))) {
        unsigned vendor, device;

        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, len, "%s/%s", base, e->d_name);
        if (!read_hex(dir, "vendor", &vendor) && !read_hex(dir, "device", &device) &&
            vendor == VGPU_STUB_PCI_VENDOR && device == VGPU_STUB_PCI_DEVICE) {
            rc = 0;
            break;
        }
    }
    closedir(d);
    return rc;
}

VGPU_HIDDEN bool vgpu_mmio_present(void)
{
    char dir[300];

    return find_device(dir, sizeof(dir)) == 0;
}

/*
 * Whether the shim can drive a device with this register version and these
 * capabilities: it needs every bit of NEED_CAPS, not just one of them.
 */
static bool device_usable(uint32_t version, uint32_t caps)
{
    return version == VGPU_STUB_REG_VERSION && vgpu_stub_caps_have(caps, NEED_CAPS);
}

static int mmio_connect(struct vgpu_transport *t, const char *addr)
{
    char dir[300], path[400];
    int fd, e;
    void *p;

    (void)addr;
    if (find_device(dir, sizeof(dir))) {
        vgpu_shim_log(VGPU_LOG_ERROR, "no vgpu-stub device (PCI 1af4:1111) in this machine: "
                      "start the VM with '-device vgpu-stub,chardev=...', or set "
                      "VGPU_SERVER=unix:PATH for a vgpu-server on this host; "
                      "CUDA calls fail with cudaErrorNoDevice");
        return -ENODEV;
    }
    snprintf(m.where, sizeof(m.where), "%s", strrchr(dir, '/') + 1);
    snprintf(m.dir, sizeof(m.dir), "%s", dir);
    /* Memory decoding may be off while no kernel driver owns the device. */
    snprintf(path, sizeof(path), "%s/enable", dir);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "1", 1) < 0)
            vgpu_shim_log(VGPU_LOG_DEBUG, "could not enable %s", m.where);
        close(fd);
    }
    snprintf(path, sizeof(path), "%s/resource0", dir);
    fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
    if (fd < 0) {
        e = errno;
        vgpu_shim_log(VGPU_LOG_ERROR, "the vgpu-stub device %s is here, but %s cannot be opened "
                      "(%s): run as root, or give a trusted group access with a udev rule such "
                      "as SUBSYSTEM==\"pci\", ATTR{vendor}==\"0x1af4\", ATTR{device}==\"0x1111\", "
                      "RUN+=\"/bin/chgrp vgpu /sys%%p/resource0 /sys%%p/enable\", "
                      "RUN+=\"/bin/chmod 0660 /sys%%p/resource0 /sys%%p/enable\" (whoever can map "
                      "it can reach every CUDA session of this VM)", m.where, path, strerror(e));
        return -e;
    }
    p = mmap(NULL, VGPU_STUB_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        e = errno;
        close(fd);
        vgpu_shim_log(VGPU_LOG_ERROR, "cannot map BAR0 of the vgpu-stub device %s (%s)", m.where,
                      strerror(e));
        return -e;
    }
    m.fd = fd;
    m.bar = p;
    if (!device_usable(rd(VGPU_STUB_R_PROTOCOL_VER), rd(VGPU_STUB_R_CAPABILITIES))) {
        vgpu_shim_log(VGPU_LOG_ERROR, "the vgpu-stub device %s speaks register protocol %u "
                      "(capabilities %#x); this shim needs protocol %u with chunks and "
                      "channels (%#x): update QEMU or the shim", m.where,
                      rd(VGPU_STUB_R_PROTOCOL_VER), rd(VGPU_STUB_R_CAPABILITIES),
                      VGPU_STUB_REG_VERSION, NEED_CAPS);
        munmap(p, VGPU_STUB_BAR0_SIZE);
        close(fd);
        m.fd = -1;
        return -EPROTO;
    }
    m.max_frame = rd(VGPU_STUB_R_MAX_FRAME);
    m.epoch = rd(VGPU_STUB_R_LINK_EPOCH);
    m.link_state = rd(VGPU_STUB_R_CAPABILITIES) & VGPU_STUB_CAP_LINK_STATE;
    /*
     * The pid makes the channel unique among live processes (pids fit in 22
     * bits); the top bits, random, tell apart processes of other pid
     * namespaces.  A reused pid restarts its session with its Hello.
     */
    {
        uint32_t rnd = 0;

        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
            rnd = (uint32_t)time(NULL);
        m.channel = ((uint32_t)getpid() & 0x3fffff) | (rnd << 22);
        if (!m.channel)
            m.channel = 1;
    }
    t->fd = fd;
    return 0;
}

/* Spin a little, then sleep up to 1 ms at a time, while STATUS is BUSY. */
static uint32_t wait_not_busy(void)
{
    struct timespec ts = { 0, 1000 };
    uint32_t st;

    for (int i = 0; (st = rd(VGPU_STUB_R_STATUS)) == VGPU_STUB_STATUS_BUSY; i++) {
        if (i < 200)
            continue;
        nanosleep(&ts, NULL);
        if (ts.tv_nsec < 1000000)
            ts.tv_nsec *= 2;
    }
    return st;
}

/* The device's error code to what the call path makes of it. */
static int device_error(void)
{
    uint32_t code = rd(VGPU_STUB_R_ERROR_CODE);

    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    if (code == VGPU_STUB_ERR_NO_SERVER || code == VGPU_STUB_ERR_SERVER_GONE)
        return -ECONNRESET;
    vgpu_shim_log(VGPU_LOG_ERROR, "the vgpu-stub device %s refused a frame (error code %u)",
                  m.where, code);
    return -EPROTO;
}

static void put_chunk(const uint8_t *p, uint32_t n)
{
    uint32_t w;

    for (uint32_t i = 0; i < n; i += 4) {
        w = 0;
        memcpy(&w, p + i, n - i < 4 ? n - i : 4);
        wr(VGPU_STUB_R_REQUEST + i, w);
    }
    wr(VGPU_STUB_R_REQUEST_LEN, n);
}

static int exchange(const uint8_t *frame, size_t len)
{
    uint32_t st, total;

    /* A session of ours lives only as long as the link it was made on. */
    if (rd(VGPU_STUB_R_LINK_EPOCH) != m.epoch)
        return -ECONNRESET;
    /* Left over by a client that died mid-exchange: settle it first. */
    st = wait_not_busy();
    if (st == VGPU_STUB_STATUS_DONE || st == VGPU_STUB_STATUS_ERROR)
        wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    /* A dead client's half-sent frame: an ACK while IDLE makes the device
     * drop it (with an error), and a second ACK clears that error. */
    if (rd(VGPU_STUB_R_REQUEST_TOTAL) != 0) {
        wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
        wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    }
    wr(VGPU_STUB_R_CHANNEL, m.channel);
    for (size_t off = 0; off < len; off += CHUNK) {
        uint32_t n = len - off < CHUNK ? (uint32_t)(len - off) : CHUNK;
        bool last = off + n == len;

        put_chunk(frame + off, n);
        wr(VGPU_STUB_R_CHUNK_CTRL, last ? 0 : 1);
        wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_SUBMIT);
        if (!last && rd(VGPU_STUB_R_STATUS) != VGPU_STUB_STATUS_IDLE)
            return device_error();
    }
    st = wait_not_busy();
    if (st != VGPU_STUB_STATUS_DONE)
        return device_error();
    total = rd(VGPU_STUB_R_RESPONSE_TOTAL);
    free(m.answer);
    m.answer = malloc(total ? total : 1);
    if (!m.answer) {
        wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
        return -ENOMEM;
    }
    for (uint32_t off = 0; off < total; off += CHUNK) {
        uint32_t n;

        if (off)
            wr(VGPU_STUB_R_RESPONSE_OFFSET, off);
        n = rd(VGPU_STUB_R_RESPONSE_LEN);
        if (n > CHUNK || n > total - off) {
            wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
            return -EPROTO;
        }
        for (uint32_t i = 0; i < n; i += 4) {
            uint32_t w = rd(VGPU_STUB_R_RESPONSE + i);

            memcpy(m.answer + off + i, &w, n - i < 4 ? n - i : 4);
        }
    }
    m.answer_len = total;
    wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
    return 0;
}

/* The device serves one exchange at a time: all processes take this lock. */
static int lock_device(void)
{
    int rc;

    while ((rc = flock(m.fd, LOCK_EX)) < 0 && errno == EINTR)
        ;
    return rc;
}

/*
 * After fork() the child must neither use nor close the parent's channel
 * (they share the open file, so even the lock would not keep them apart):
 * it forgets the mapping and gets a channel of its own when it calls CUDA.
 */
VGPU_HIDDEN void vgpu_mmio_forget(void)
{
    if (m.shared_fd >= 0)
        close(m.shared_fd);    /* the parent's slot lock is not the child's */
    m.shared_fd = -1;
    free(m.claimed);           /* nor its slots of mapped memory (their pages stay mapped) */
    m.claimed = NULL;
    if (m.bar)
        munmap((void *)m.bar, VGPU_STUB_BAR0_SIZE);
    if (m.fd >= 0)
        close(m.fd);
    m.bar = NULL;
    m.fd = -1;
    free(m.answer);
    m.answer = NULL;
}

static int mmio_send(struct vgpu_transport *t, const struct vgpu_frame_header *h,
                     const Vgpu__Wire__Envelope *env, const struct iovec *payload, int npayload)
{
    size_t head, written, len;
    uint64_t plen = 0;
    uint8_t *frame;
    int rc;

    (void)t;
    for (int i = 0; i < npayload; i++)
        plen += payload[i].iov_len;
    rc = vgpu_frame_head_size(env, &head);
    if (rc)
        return rc;
    len = head + plen;
    if (len > m.max_frame)
        return -E2BIG;
    frame = malloc(len);
    if (!frame)
        return -ENOMEM;
    rc = vgpu_frame_gather(h, env, payload, npayload, frame, len, &written);
    if (rc == 0) {
        if (lock_device() == 0) {
            rc = exchange(frame, written);
            flock(m.fd, LOCK_UN);
        } else {
            rc = -errno;
        }
    }
    free(frame);
    return rc;
}

static int mmio_recv(struct vgpu_transport *t, uint8_t **buf, size_t *len)
{
    (void)t;
    if (!m.answer)
        return -EPROTO;
    *buf = m.answer;
    *len = m.answer_len;
    m.answer = NULL;
    m.answer_len = 0;
    return 0;
}

/* Tells the server this client is gone, so its session ends now. */
static void mmio_close(struct vgpu_transport *t)
{
    if (m.bar) {
        if (lock_device() == 0) {
            if (wait_not_busy() != VGPU_STUB_STATUS_IDLE)
                wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_ACK);
            wr(VGPU_STUB_R_CHANNEL, m.channel);
            wr(VGPU_STUB_R_DOORBELL, VGPU_STUB_CMD_CLOSE);
            flock(m.fd, LOCK_UN);
        }
        munmap((void *)m.bar, VGPU_STUB_BAR0_SIZE);
        m.bar = NULL;
    }
    if (m.fd >= 0)
        close(m.fd);
    m.fd = -1;
    t->fd = -1;
    t->qp_mem = NULL;          /* it lives in the slot, which the client holds */
    free(m.answer);
    m.answer = NULL;
}

VGPU_HIDDEN bool vgpu_mmio_doorbells(void)
{
    return m.bar && vgpu_stub_caps_have(rd(VGPU_STUB_R_CAPABILITIES), QP_CAPS);
}

/* The slot's doorbell: QEMU turns the write into an eventfd the server waits on. */
static void mmio_bell(struct vgpu_transport *t)
{
    uint64_t k = m.slot_off >> VGPU_STUB_SLOT_SHIFT;

    (void)t;
    if (m.bar && k < VGPU_STUB_MAX_DOORBELLS)
        wr(VGPU_STUB_R_QP_DOORBELL_K(k), 1);
}

/*
 * The session is gone when the link says so, when the device lost its
 * link to the server (LINK_STATE: the server and its link process may have
 * died together, leaving no one to say so in the pair's header), or when
 * the link itself was replaced.
 */
static int mmio_alive(struct vgpu_transport *t)
{
    if ((__atomic_load_n(&t->qp.hdr->server_state, __ATOMIC_ACQUIRE) & 1) || !m.bar ||
        rd(VGPU_STUB_R_LINK_EPOCH) != m.epoch || (m.link_state && !rd(VGPU_STUB_R_LINK_STATE)))
        return -ECONNRESET;
    return 0;
}

const struct vgpu_transport_ops vgpu_transport_mmio = {
    .name = "mmio", .connect = mmio_connect, .send = mmio_send, .recv = mmio_recv,
    .close = mmio_close, .bell = mmio_bell, .alive = mmio_alive, .qp_futex = false,
};

/*
 * The device's shared BAR (BAR2, VGPU_STUB_CAP_SHARED) is cut into slots
 * (vgpu_stub_slot_size()); a process takes the first free one with a write
 * lock on that byte of resource2 (released by the kernel when the process
 * ends, and not inherited by a fork).  Returns the slot mapped here, or NULL.
 */

VGPU_HIDDEN void *vgpu_mmio_shared_slot(size_t *size, uint64_t *offset)
{
    char path[400];
    struct stat st;
    size_t slot;
    int fd;

    if (!m.bar || !(rd(VGPU_STUB_R_CAPABILITIES) & VGPU_STUB_CAP_SHARED) ||
        m.shared_fd >= 0)
        return NULL;
    snprintf(path, sizeof(path), "%s/resource2", m.dir);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < (off_t)VGPU_STUB_BAR2_MIN) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    slot = (size_t)vgpu_stub_slot_size((uint64_t)st.st_size);
    for (size_t k = 0; k < (size_t)st.st_size / slot; k++) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)k, .l_len = 1 };
        void *p;

        if (fcntl(fd, F_SETLK, &fl) < 0)
            continue;
        p = mmap(NULL, slot, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(k * slot));
        if (p == MAP_FAILED)
            break;
        m.shared_fd = fd;
        m.slot_off = k * slot;
        m.bar2_size = (uint64_t)st.st_size;
        *size = slot;
        *offset = k * slot;
        return p;
    }
    close(fd);
    return NULL;
}

/*
 * Mapped host memory's slots: n free slots in a row, claimed with write
 * locks on their bytes of resource2 like the process's own slot, and
 * through the same fd (a lock taken through another fd of the file would
 * go when that fd closed).  A process's own locks never stop it, so the
 * slots it holds are skipped by name.  Only after the own slot: returns the
 * run mapped here with its offset in the BAR, or NULL.
 */
VGPU_HIDDEN void *vgpu_mmio_claim_slots(size_t n, uint64_t *offset)
{
    uint64_t slot = vgpu_stub_slot_size(m.bar2_size), nslots = m.bar2_size / (slot ? slot : 1);

    if (m.shared_fd < 0 || !n || n > nslots)
        return NULL;
    if (!m.claimed && !(m.claimed = calloc(nslots, 1)))
        return NULL;
    for (uint64_t k = 0; k + n <= nslots; k++) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)k,
                            .l_len = (off_t)n };
        bool mine = false;
        void *p;

        for (uint64_t j = k; j < k + n && !mine; j++)
            mine = m.claimed[j] || j * slot == m.slot_off;
        if (mine || fcntl(m.shared_fd, F_SETLK, &fl) < 0)
            continue;
        p = mmap(NULL, n * slot, PROT_READ | PROT_WRITE, MAP_SHARED, m.shared_fd,
                 (off_t)(k * slot));
        if (p == MAP_FAILED) {
            fl.l_type = F_UNLCK;
            fcntl(m.shared_fd, F_SETLK, &fl);
            return NULL;
        }
        memset(m.claimed + k, 1, n);
        *offset = k * slot;
        return p;
    }
    return NULL;
}

/* Gives back a run vgpu_mmio_claim_slots() claimed: unmapped and unlocked. */
VGPU_HIDDEN void vgpu_mmio_release_slots(void *p, uint64_t offset, size_t n)
{
    uint64_t slot = vgpu_stub_slot_size(m.bar2_size);
    struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET,
                        .l_start = (off_t)(offset / slot), .l_len = (off_t)n };

    munmap(p, n * slot);
    if (m.shared_fd < 0 || !m.claimed)
        return;                 /* a forked child's: the parent's locks were never its own */
    fcntl(m.shared_fd, F_SETLK, &fl);
    memset(m.claimed + offset / slot, 0, n);
}

/* The size of a slot of the shared BAR (0 before this process took its own). */
VGPU_HIDDEN size_t vgpu_mmio_slot_size(void)
{
    return m.shared_fd < 0 ? 0 : (size_t)vgpu_stub_slot_size(m.bar2_size);
}
