/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-server's configuration (server/config.c): a whole file, the --listen
 * flag syntax, sizes, and errors that name the line and the problem.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char path[64];

static void write_file(const char *text)
{
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/vgpu-config-test-%d.ini", (int)getpid());
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_whole_file(void **state)
{
    struct vgpu_config c;
    char err[256] = "";

    (void)state;
    write_file("; a comment\n"
               "[server]\n"
               "cache_dir = /var/cache/vgpu\n"
               "admin = /run/vgpu/admin.sock   ; inline comment\n"
               "admin_group = vgpu\n"
               "log_level = debug # a comment of the other kind\n"
               "contain = off\n"
               "[scheduler]\n"
               "hold_us = 500\n"
               "starvation_ms = 20\n"
               "queue_low = 1\n"
               "[pool A]\n"
               "gpus = 0, 1\n"
               "[pool B]\n"
               "gpus = 2\n"
               "[listen vms]\n"
               "address = unix:/run/vgpu/vm.sock\n"
               "[listen batch]\n"
               "address = unix:/run/vgpu/batch.sock\n"
               "vm_id = 1000\n"
               "pool = B\n"
               "priority = low\n"
               "[vm 7]\n"
               "memory = 8G\n"
               "streams = 64\n");
    vgpu_config_init(&c);
    assert_int_equal(vgpu_config_load(&c, path, err, sizeof(err)), 0);
    assert_string_equal(c.cache_dir, "/var/cache/vgpu");
    assert_string_equal(c.admin, "/run/vgpu/admin.sock");
    assert_string_equal(c.admin_group, "vgpu");
    assert_int_equal(c.log_level, 3);
    assert_true(c.no_contain);
    assert_true(c.sched.hold_ns == 500000);
    assert_true(c.sched.starve_ns == 20000000);
    assert_int_equal(c.sched.max_queued[VGPU_PRIO_LOW], 1);
    assert_int_equal(c.sched.max_queued[VGPU_PRIO_HIGH], 32);     /* default kept */
    assert_int_equal(c.pools[0].ngpus, 2);
    assert_string_equal(c.pools[0].gpus_text, "0,1");
    assert_string_equal(c.pools[1].gpus_text, "2");
    assert_non_null(vgpu_config_pool(&c, 'A'));
    assert_null(vgpu_config_pool(&c, 'C'));                       /* pools configured: C is not one */
    assert_int_equal(c.nlisten, 2);
    assert_string_equal(c.listen[0].address, "unix:/run/vgpu/vm.sock");
    assert_int_equal(c.listen[0].who.pool, 'A');                  /* defaults */
    assert_int_equal(c.listen[0].who.priority, VGPU_PRIO_MEDIUM);
    assert_int_equal(c.listen[1].who.vm_id, 1000);
    assert_int_equal(c.listen[1].who.pool, 'B');
    assert_int_equal(c.listen[1].who.priority, VGPU_PRIO_LOW);
    assert_non_null(vgpu_config_vm(&c, 7));
    assert_true(vgpu_config_vm(&c, 7)->memory == 8ull << 30);
    assert_int_equal(vgpu_config_vm(&c, 7)->streams, 64);
    assert_null(vgpu_config_vm(&c, 8));
    unlink(path);
}

static void expect_error(const char *text, int line, const char *words)
{
    struct vgpu_config c;
    char err[256] = "", want[32];

    write_file(text);
    vgpu_config_init(&c);
    assert_int_equal(vgpu_config_load(&c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), ":%d: ", line);
    if (!strstr(err, want) || !strstr(err, words))
        fail_msg("error '%s' should name line %d and say '%s'", err, line, words);
    unlink(path);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("[server]\nchache_dir = /x\n", 2, "unknown key 'chache_dir'");
    expect_error("[pools A]\ngpus = 0\n", 2, "unknown section [pools A]");
    expect_error("[pool AB]\ngpus = 0\n", 2, "one letter");
    expect_error("[pool A]\ngpus = zero\n", 2, "list of GPU indices");
    expect_error("[listen x]\naddress = unix:/a\npriority = urgent\n", 3, "priority");
    expect_error("[vm 7]\nmemory = lots\n", 2, "size like");
    expect_error("[vm seven]\nmemory = 1G\n", 2, "[vm N]");
    expect_error("[scheduler]\nqueue_low = 0\n", 2, "at least 1");
    expect_error("[scheduler]\nhold = 3\n", 2, "unknown key 'hold'");
    expect_error("[server]\nno equals sign here\n", 2, "key = value");
    expect_error("[listen x]\naddress = unix:/a\ntype = qemu\n", 3, "client or device");
    expect_error("[listen x]\naddress = unix:/a\nsessions = 0\n", 3, "sessions");
    expect_error("[server]\nmax_pending = 0\n", 2, "max_pending");
    expect_error("[vm 7]\nsessions = none\n", 2, "sessions");
    expect_error("[server]\ncontain = no\n", 2, "not on or off");
}

/* Loads text, then vgpu_config_finish(): its result, the message in err. */
static int load_finish(struct vgpu_config *c, const char *text, char *err, size_t errlen)
{
    int rc;

    write_file(text);
    vgpu_config_init(c);
    rc = vgpu_config_load(c, path, err, errlen);
    unlink(path);
    return rc ? rc : vgpu_config_finish(c, err, errlen);
}

static void test_tls(void **state)
{
    static struct vgpu_config c;
    static const uint8_t fp[32] = { 0xab, 0xcd, [31] = 0x01 };
    uint8_t other[32] = { 0 };
    const struct vgpu_cert_cfg *ct;
    char err[512] = "", want[600];

    (void)state;
    assert_int_equal(load_finish(&c, "[listen remote]\naddress = tcp:0.0.0.0:7000\n"
                                     "[listen devs]\naddress = tcp::7001\ntype = device\n"
                                     "[listen local]\naddress = unix:/run/vgpu.sock\n"
                                     "[tls]\ndir = /etc/vgpu/tls\n"
                                     "[cert alice]\ncn = alice\nvm_id = 7\npool = B\n"
                                     "priority = high\n"
                                     "[cert pinned]\nsha256 = AB:CD:00:00:00:00:00:00:00:00:00:00:00:"
                                     "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:01\n"
                                     "cn = bob\nvm_id = 8\n", err, sizeof(err)), 0);
    assert_true(vgpu_listen_uses_tls(&c.listen[0]));
    assert_true(vgpu_listen_uses_tls(&c.listen[1]));
    assert_false(vgpu_listen_uses_tls(&c.listen[2]));
    assert_string_equal(c.tls.ca, "/etc/vgpu/tls/ca-cert.pem");
    assert_string_equal(c.tls.cert, "/etc/vgpu/tls/server-cert.pem");
    assert_string_equal(c.tls.key, "/etc/vgpu/tls/server-key.pem");
    ct = vgpu_config_cert(&c, "alice", other);
    assert_non_null(ct);
    assert_int_equal(ct->who.vm_id, 7);
    assert_int_equal(ct->who.pool, 'B');
    assert_int_equal(ct->who.priority, VGPU_PRIO_HIGH);
    /* both cn and sha256 must match where both are set */
    assert_null(vgpu_config_cert(&c, "bob", other));
    assert_null(vgpu_config_cert(&c, "mallory", fp));
    assert_null(vgpu_config_cert(&c, NULL, other));
    ct = vgpu_config_cert(&c, "bob", fp);
    assert_non_null(ct);
    assert_int_equal(ct->who.vm_id, 8);
    assert_int_equal(ct->who.pool, 'A');
    assert_int_equal(ct->who.priority, VGPU_PRIO_MEDIUM);

    /* plain TCP only when asked */
    assert_int_equal(load_finish(&c, "[listen r]\naddress = tcp::7000\ntls = insecure\nvm_id = 3\n",
                                 err, sizeof(err)), 0);
    assert_false(vgpu_listen_uses_tls(&c.listen[0]));
    /* what start-up refuses, and says why */
    assert_int_equal(load_finish(&c, "[listen r]\naddress = tcp::7000\n[cert a]\ncn = a\nvm_id = 1\n",
                                 err, sizeof(err)), -1);
    assert_non_null(strstr(err, "names no credentials"));
    assert_int_equal(load_finish(&c, "[listen r]\naddress = tcp::7000\n[tls]\ndir = /x\n",
                                 err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no [cert] section"));
    assert_int_equal(load_finish(&c, "[listen r]\naddress = tcp::7000\nvm_id = 4\n[tls]\ndir = /x\n"
                                     "[cert a]\ncn = a\nvm_id = 1\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "takes no vm_id"));
    assert_int_equal(load_finish(&c, "[listen r]\naddress = unix:/a\ntls = on\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "tls is for tcp:"));
    assert_int_equal(load_finish(&c, "[cert a]\npool = B\nvm_id = 1\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "needs cn or sha256"));
    assert_int_equal(load_finish(&c, "[cert a]\ncn = a\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "needs cn or sha256"));
    /* pools configured: a listener's or a certificate's pool must be one of them */
    assert_int_equal(load_finish(&c, "[pool A]\ngpus = 0\n[listen r]\naddress = unix:/a\npool = B\n",
                                 err, sizeof(err)), -1);
    assert_non_null(strstr(err, "pool B has no [pool B] section"));
    /* found after the whole file was read, and still named by its file and line */
    snprintf(want, sizeof(want), "%s:3: [listen r]: listener unix:/a", path);
    assert_non_null(strstr(err, want));
    assert_int_equal(load_finish(&c, "[pool A]\ngpus = 0\n[cert a]\ncn = a\nvm_id = 1\npool = C\n",
                                 err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:3: [cert a]: pool C", path);
    assert_non_null(strstr(err, want));
    assert_int_equal(load_finish(&c, "[server]\nlog_level = info\n\n[cert b]\nvm_id = 1\n",
                                 err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4: [cert b] needs cn", path);
    assert_non_null(strstr(err, want));
    assert_int_equal(load_finish(&c, "[listen r]\naddress = unix:/a\npool = B\n", err, sizeof(err)), 0);
    expect_error("[cert a]\nsha256 = 12:34\n", 2, "SHA-256 fingerprint");
    expect_error("[cert a]\nvm = 3\n", 2, "unknown key 'vm'");
    expect_error("[tls]\nca_file = /x\n", 2, "unknown key 'ca_file'");
    expect_error("[listen x]\naddress = tcp::1\ntls = off\n", 3, "tls: on or insecure");
}

static void test_socket_file(void **state)
{
    static struct vgpu_config c;
    char err[512] = "";

    (void)state;
    vgpu_config_init(&c);
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/run/vgpu/vm.sock,type=device,mode=0666,"
                                            "owner=vgpu,group=libvirt-qemu", err, sizeof(err)), 0);
    assert_int_equal(c.listen[0].mode, 0666);
    assert_string_equal(c.listen[0].owner, "vgpu");
    assert_string_equal(c.listen[0].group, "libvirt-qemu");
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/a", err, sizeof(err)), 0);
    assert_int_equal(c.listen[1].mode, 0660);                    /* not the umask's */
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/a,mode=999", err, sizeof(err)), -1);
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/a,mode=01777", err, sizeof(err)), -1);
    expect_error("[listen x]\naddress = unix:/a\nmode = rw\n", 3, "octal");
}

static void test_typed_listeners(void **state)
{
    struct vgpu_config c;
    char err[256];

    (void)state;
    vgpu_config_init(&c);
    write_file("[server]\nmax_pending = 8\n"
               "[listen vms]\naddress = unix:/run/vgpu/vm.sock\ntype = device\n"
               "[listen vm7]\naddress = unix:/run/vgpu/vm7.sock\ntype = device\nvm_id = 7\n"
               "[listen progs]\naddress = unix:/run/vgpu/p.sock\nsessions = 4\n"
               "[vm 7]\nsessions = 3\n");
    assert_int_equal(vgpu_config_load(&c, path, err, sizeof(err)), 0);
    unlink(path);
    assert_int_equal(c.max_pending, 8);
    assert_int_equal(c.listen[0].type, VGPU_LISTEN_DEVICE);
    assert_false(c.listen[0].pinned);            /* identity from each device's HELLO */
    assert_int_equal(c.listen[1].type, VGPU_LISTEN_DEVICE);
    assert_true(c.listen[1].pinned);
    assert_int_equal(c.listen[1].who.vm_id, 7);
    assert_int_equal(c.listen[2].type, VGPU_LISTEN_CLIENT);   /* the default */
    assert_int_equal(c.listen[2].max_conns, 4);
    assert_int_equal(vgpu_config_vm(&c, 7)->sessions, 3);

    vgpu_config_init(&c);
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/tmp/d.sock,type=device,vm_id=3,sessions=2",
                                            err, sizeof(err)), 0);
    assert_int_equal(c.listen[0].type, VGPU_LISTEN_DEVICE);
    assert_true(c.listen[0].pinned);
    assert_int_equal(c.listen[0].max_conns, 2);
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/tmp/e.sock,type=vm", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "type=vm"));
}

static void test_listen_flag(void **state)
{
    struct vgpu_config c;
    char err[256];

    (void)state;
    vgpu_config_init(&c);
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/tmp/a.sock", err, sizeof(err)), 0);
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/tmp/b.sock,vm_id=9,pool=C,priority=high",
                                            err, sizeof(err)), 0);
    assert_int_equal(c.nlisten, 2);
    assert_int_equal(c.listen[0].who.priority, VGPU_PRIO_MEDIUM);
    assert_string_equal(c.listen[1].address, "unix:/tmp/b.sock");
    assert_int_equal(c.listen[1].who.vm_id, 9);
    assert_int_equal(c.listen[1].who.pool, 'C');
    assert_int_equal(c.listen[1].who.priority, VGPU_PRIO_HIGH);
    /* without pools configured, every pool letter means every GPU */
    assert_non_null(vgpu_config_pool(&c, 'C'));
    assert_int_equal(vgpu_config_pool(&c, 'C')->ngpus, 0);
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/tmp/c.sock,prio=high", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "prio=high"));
    assert_int_equal(vgpu_config_add_listen(&c, "unix:/tmp/c.sock,vm_id=-1", err, sizeof(err)), -1);
    assert_int_equal(c.nlisten, 2);
}

static void test_sizes(void **state)
{
    uint64_t v;

    (void)state;
    assert_int_equal(vgpu_config_size("1024", &v), 0);
    assert_true(v == 1024);
    assert_int_equal(vgpu_config_size("64M", &v), 0);
    assert_true(v == 64ull << 20);
    assert_int_equal(vgpu_config_size("8GiB", &v), 0);
    assert_true(v == 8ull << 30);
    assert_int_equal(vgpu_config_size("2k", &v), 0);
    assert_true(v == 2048);
    assert_int_equal(vgpu_config_size("", &v), -1);
    assert_int_equal(vgpu_config_size("-1G", &v), -1);
    assert_int_equal(vgpu_config_size("1X", &v), -1);
    assert_int_equal(vgpu_config_size("99999999999999999999", &v), -1);
    assert_int_equal(vgpu_config_size("17179869184G", &v), -1);   /* 2^64: overflows */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_file),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_listen_flag),
        cmocka_unit_test(test_typed_listeners),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_socket_file),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
