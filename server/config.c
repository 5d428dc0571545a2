/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading vgpu-server's INI configuration.  Sections:
 *   [server]      cache_dir, log_level, admin, admin_group, max_pending, contain, user
 *   [scheduler]   hold_us, starvation_ms, queue_high, queue_medium, queue_low
 *   [pool X]      gpus = 0,1          (X is one letter A..Z)
 *   [listen NAME] address, type, vm_id, pool, priority, sessions, tls, mode, owner, group
 *   [vm N]        memory, streams, sessions
 *   [tls]         dir, ca, cert, key, crl
 *   [cert NAME]   cn, sha256, vm_id, pool, priority
 * Unknown sections and keys are errors: a typo must not silently become a
 * default.
 */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

const struct vgpu_config *vgpu_cfg;

void vgpu_config_init(struct vgpu_config *c)
{
    memset(c, 0, sizeof(*c));
    c->log_level = -1;
    vgpu_sched_params_default(&c->sched);
}

int vgpu_config_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    int shift = 0;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: return -1;
    }
    if (*end == 'i' || *end == 'I')
        end++;
    if (*end == 'b' || *end == 'B')
        end++;
    if (*end || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_pool(const char *s, char *out)
{
    if (s[0] < 'A' || s[0] > 'Z' || s[1])
        return -1;
    *out = s[0];
    return 0;
}

/* Sets one identity key; 1 if key is one, 0 if not, -1 if its value is bad. */
static int identity_key(struct vgpu_identity *who, const char *key, const char *val)
{
    uint32_t v;
    int p;

    if (!strcmp(key, "vm_id"))
        return parse_u32(val, &v) ? -1 : (who->vm_id = v, 1);
    if (!strcmp(key, "pool"))
        return parse_pool(val, &who->pool) ? -1 : 1;
    if (!strcmp(key, "priority")) {
        p = vgpu_prio_parse(val);
        return p < 0 ? -1 : (who->priority = (uint8_t)p, 1);
    }
    return 0;
}

/*
 * Sets one key of a listener other than its address; 1 if key is one, 0 if
 * not, -1 if its value is bad.  On a device socket an identity key pins
 * that identity: the device's HELLO must say the same.
 */
static int listen_key(struct vgpu_listen_cfg *l, const char *key, const char *val)
{
    int r;

    if (!strcmp(key, "type")) {
        if (!strcmp(val, "client"))
            l->type = VGPU_LISTEN_CLIENT;
        else if (!strcmp(val, "device"))
            l->type = VGPU_LISTEN_DEVICE;
        else
            return -1;
        return 1;
    }
    if (!strcmp(key, "sessions"))
        return parse_u32(val, &l->max_conns) || !l->max_conns ? -1 : 1;
    if (!strcmp(key, "mode")) {
        char *end;
        unsigned long m = strtoul(val, &end, 8);

        if (!*val || *end || m > 0777)
            return -1;
        l->mode = (uint32_t)m;
        return 1;
    }
    if (!strcmp(key, "owner") || !strcmp(key, "group")) {
        char *dst = key[0] == 'o' ? l->owner : l->group;

        if (!*val || strlen(val) >= sizeof(l->owner))
            return -1;
        snprintf(dst, sizeof(l->owner), "%s", val);
        return 1;
    }
    if (!strcmp(key, "tls")) {
        if (!strcmp(val, "on"))
            l->tls = VGPU_TLS_ON;
        else if (!strcmp(val, "insecure"))
            l->tls = VGPU_TLS_INSECURE;
        else
            return -1;
        return 1;
    }
    r = identity_key(&l->who, key, val);
    if (r == 1)
        l->pinned = true;
    return r;
}

#define LISTEN_KEYS "type: client or device; vm_id: a number; pool: A..Z; " \
                    "priority: low, medium or high; sessions: a number from 1; " \
                    "tls: on or insecure; mode: octal like 0660; owner, group: names"

static void listen_init(struct vgpu_listen_cfg *l)
{
    memset(l, 0, sizeof(*l));
    l->mode = 0660;
    l->who.pool = 'A';
    l->who.priority = VGPU_PRIO_MEDIUM;
}

struct parse {
    struct vgpu_config *c;
    char section[64];
    struct vgpu_listen_cfg *listen;   /* the [listen NAME] being read */
    struct vgpu_vm_limits *vm;
    struct vgpu_cert_cfg *cert;       /* the [cert NAME] being read */
    int pool;
    char msg[256];                    /* the first problem found */
};

/* Records the first problem (inih reports its line); returns 0 for inih. */
__attribute__((format(printf, 2, 0))) static int fail(struct parse *p, const char *fmt,
                                                      const char *a, const char *b)
{
    if (!p->msg[0])
        snprintf(p->msg, sizeof(p->msg), fmt, a, b);
    return 0;
}

/* A new section starts: what it configures is created here. */
static int section(struct parse *p, const char *name)
{
    uint32_t vm;

    snprintf(p->section, sizeof(p->section), "%s", name);
    p->listen = NULL;
    p->vm = NULL;
    p->cert = NULL;
    p->pool = -1;
    if (!strcmp(name, "server") || !strcmp(name, "scheduler") || !strcmp(name, "tls"))
        return 1;
    if (!strncmp(name, "cert ", 5)) {
        if (p->c->ncerts == VGPU_CONFIG_MAX_CERTS)
            return fail(p, "too many [cert] sections%s%s", "", "");
        if (strlen(name + 5) >= sizeof(p->cert->name))
            return fail(p, "[%s]: name too long%s", name, "");
        p->cert = &p->c->certs[p->c->ncerts++];
        memset(p->cert, 0, sizeof(*p->cert));
        snprintf(p->cert->name, sizeof(p->cert->name), "%s", name + 5);
        snprintf(p->cert->where, sizeof(p->cert->where), "[%s]", name);   /* placed by where_of() */
        p->cert->who.pool = 'A';
        p->cert->who.priority = VGPU_PRIO_MEDIUM;
        return 1;
    }
    if (!strncmp(name, "listen ", 7)) {
        if (p->c->nlisten == VGPU_CONFIG_MAX_LISTEN)
            return fail(p, "too many [listen] sections%s%s", "", "");
        p->listen = &p->c->listen[p->c->nlisten++];
        listen_init(p->listen);
        snprintf(p->listen->where, sizeof(p->listen->where), "[%.*s]", 300, name);
        return 1;
    }
    if (!strncmp(name, "pool ", 5)) {
        char pool;

        if (parse_pool(name + 5, &pool))
            return fail(p, "[%s]: a pool is named by one letter A..Z%s", name, "");
        p->pool = pool - 'A';
        return 1;
    }
    if (!strncmp(name, "vm ", 3)) {
        if (parse_u32(name + 3, &vm))
            return fail(p, "[%s]: expected [vm N] with N a vm_id%s", name, "");
        for (int i = 0; i < p->c->nvms; i++)
            if (p->c->vms[i].vm_id == vm)
                p->vm = &p->c->vms[i];
        if (!p->vm) {
            if (p->c->nvms == VGPU_CONFIG_MAX_VMS)
                return fail(p, "too many [vm] sections%s%s", "", "");
            p->vm = &p->c->vms[p->c->nvms++];
            memset(p->vm, 0, sizeof(*p->vm));
            p->vm->vm_id = vm;
        }
        return 1;
    }
    return fail(p, "unknown section [%s]%s", name, "");
}

static int set_gpus(struct vgpu_pool_cfg *pc, const char *val)
{
    char buf[256], *save = NULL, *tok;

    snprintf(buf, sizeof(buf), "%s", val);
    pc->ngpus = 0;
    pc->gpus_text[0] = '\0';
    for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        uint32_t g;
        size_t n = strlen(pc->gpus_text);

        if (parse_u32(tok, &g) || g > 255 || pc->ngpus == VGPU_SCHED_MAX_GPUS)
            return -1;
        pc->gpus[pc->ngpus++] = (int)g;
        snprintf(pc->gpus_text + n, sizeof(pc->gpus_text) - n, "%s%u", n ? "," : "", g);
    }
    return pc->ngpus ? 0 : -1;
}

/* A key of [tls]: a path each. */
static int tls_key(struct parse *p, const char *key, const char *val)
{
    struct vgpu_tls_cfg *t = &p->c->tls;
    char *dst = !strcmp(key, "dir") ? t->dir : !strcmp(key, "ca") ? t->ca :
                !strcmp(key, "cert") ? t->cert : !strcmp(key, "key") ? t->key :
                !strcmp(key, "crl") ? t->crl : NULL;

    if (!dst)
        return fail(p, "unknown key '%s' in [tls] (dir, ca, cert, key, crl)%s", key, "");
    if (strlen(val) >= sizeof(t->dir))
        return fail(p, "%s: path too long%s", key, "");
    snprintf(dst, sizeof(t->dir), "%s", val);
    return 1;
}

/* "ab:CD:..." or "abcd...": 64 hex digits, colons anywhere between pairs.  0 or -1. */
static int parse_sha256(const char *s, uint8_t out[32])
{
    size_t n = 0;

    while (*s && n < 32) {
        unsigned int b;

        if (*s == ':') {
            s++;
            continue;
        }
        if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) ||
            sscanf(s, "%2x", &b) != 1)
            return -1;
        out[n++] = (uint8_t)b;
        s += 2;
    }
    return n == 32 && !*s ? 0 : -1;
}

/* A key of [cert NAME]: what to match, and the identity. */
static int cert_key(struct parse *p, const char *key, const char *val)
{
    struct vgpu_cert_cfg *ct = p->cert;
    int r;

    if (!strcmp(key, "cn")) {
        if (!*val || strlen(val) >= sizeof(ct->cn))
            return fail(p, "cn: '%s' is empty or too long%s", val, "");
        snprintf(ct->cn, sizeof(ct->cn), "%s", val);
        return 1;
    }
    if (!strcmp(key, "sha256")) {
        if (parse_sha256(val, ct->sha256))
            return fail(p, "sha256: '%s' is not a SHA-256 fingerprint (64 hex digits, colons "
                        "allowed)%s", val, "");
        ct->has_sha256 = true;
        return 1;
    }
    r = identity_key(&ct->who, key, val);
    if (r < 0)
        return fail(p, "%s: bad value '%s' (vm_id: a number; pool: A..Z; priority: low, "
                    "medium or high)", key, val);
    if (r == 0)
        return fail(p, "unknown key '%s' in [cert %s] (cn, sha256, vm_id, pool, priority)", key,
                    ct->name);
    ct->has_vm_id |= !strcmp(key, "vm_id");
    return 1;
}

/*
 * inih ends a value at an inline "; comment"; "# comment" after whitespace
 * ends it too, as docs/server.md promises (no value of ours holds " #").
 */
__attribute__((noinline)) static const char *strip_comment(const char *val, char *buf, size_t len)
{
    const char *hash = val;
    size_t n;

    while ((hash = strchr(hash, '#')) && !(hash > val && isspace((unsigned char)hash[-1])))
        hash++;
    if (!hash)
        return val;
    n = (size_t)(hash - val);
    while (n && isspace((unsigned char)val[n - 1]))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(buf, val, n);
    buf[n] = '\0';
    return buf;
}

static int on_key(void *user, const char *sec, const char *key, const char *raw)
{
    struct parse *p = user;
    struct vgpu_config *c = p->c;
    char buf[512];
    /* a certificate's common name may hold " #" itself */
    const char *val = strcmp(key, "cn") ? strip_comment(raw, buf, sizeof(buf)) : raw;
    uint64_t size;
    uint32_t u;
    int r;

    if (strcmp(sec, p->section) && !section(p, sec))
        return 0;
    if (!strcmp(sec, "server")) {
        if (!strcmp(key, "cache_dir"))
            snprintf(c->cache_dir, sizeof(c->cache_dir), "%s", val);
        else if (!strcmp(key, "admin")) {
            if (strlen(val) >= sizeof(c->admin))
                return fail(p, "admin: path too long%s%s", "", "");
            snprintf(c->admin, sizeof(c->admin), "%s", val);
        } else if (!strcmp(key, "admin_group"))
            snprintf(c->admin_group, sizeof(c->admin_group), "%s", val);
        else if (!strcmp(key, "max_pending")) {
            if (parse_u32(val, &c->max_pending) || !c->max_pending)
                return fail(p, "max_pending: '%s' is not a number from 1%s", val, "");
        } else if (!strcmp(key, "user")) {
            if (!*val || strlen(val) >= sizeof(c->user))
                return fail(p, "user: '%s' is empty or too long%s", val, "");
            snprintf(c->user, sizeof(c->user), "%s", val);
        } else if (!strcmp(key, "contain")) {
            if (strcmp(val, "on") && strcmp(val, "off"))
                return fail(p, "contain: '%s' is not on or off%s", val, "");
            c->no_contain = !strcmp(val, "off");
        } else if (!strcmp(key, "log_level")) {
            static const char *const lv[] = { "error", "warn", "info", "debug" };

            c->log_level = -1;
            for (int i = 0; i < 4; i++)
                if (!strcmp(val, lv[i]))
                    c->log_level = i;
            if (c->log_level < 0)
                return fail(p, "log_level: '%s' is not error, warn, info or debug%s", val, "");
        } else
            return fail(p, "unknown key '%s' in [server]%s", key, "");
        return 1;
    }
    if (!strcmp(sec, "scheduler")) {
        if (strcmp(key, "hold_us") && strcmp(key, "starvation_ms") && strcmp(key, "queue_high") &&
            strcmp(key, "queue_medium") && strcmp(key, "queue_low"))
            return fail(p, "unknown key '%s' in [scheduler]%s", key, "");
        if (parse_u32(val, &u))
            return fail(p, "%s: '%s' is not a whole number", key, val);
        if (!strcmp(key, "hold_us"))
            c->sched.hold_ns = (uint64_t)u * 1000;
        else if (!strcmp(key, "starvation_ms"))
            c->sched.starve_ns = (uint64_t)u * 1000000;
        else {
            if (!u)
                return fail(p, "%s must be at least 1%s", key, "");
            c->sched.max_queued[vgpu_prio_parse(key + 6)] = u;
        }
        return 1;
    }
    if (p->pool >= 0) {
        if (strcmp(key, "gpus"))
            return fail(p, "unknown key '%s' in [%s]", key, sec);
        if (set_gpus(&c->pools[p->pool], val))
            return fail(p, "gpus: '%s' is not a list of GPU indices like 0,1%s", val, "");
        return 1;
    }
    if (p->listen) {
        if (!strcmp(key, "address")) {
            if (strlen(val) >= sizeof(p->listen->address))
                return fail(p, "address: too long%s%s", "", "");
            snprintf(p->listen->address, sizeof(p->listen->address), "%s", val);
            return 1;
        }
        r = listen_key(p->listen, key, val);
        if (r < 0)
            return fail(p, "%s: bad value '%s' (" LISTEN_KEYS ")", key, val);
        return r ? 1 : fail(p, "unknown key '%s' in [%s]", key, sec);
    }
    if (!strcmp(sec, "tls"))
        return tls_key(p, key, val);
    if (p->cert)
        return cert_key(p, key, val);
    if (p->vm) {
        if (!strcmp(key, "memory")) {
            if (vgpu_config_size(val, &size))
                return fail(p, "memory: '%s' is not a size like 512M or 8G%s", val, "");
            p->vm->memory = size;
        } else if (!strcmp(key, "streams")) {
            if (parse_u32(val, &u))
                return fail(p, "streams: '%s' is not a whole number%s", val, "");
            p->vm->streams = u;
        } else if (!strcmp(key, "sessions")) {
            if (parse_u32(val, &u) || !u)
                return fail(p, "sessions: '%s' is not a number from 1%s", val, "");
            p->vm->sessions = u;
        } else
            return fail(p, "unknown key '%s' in [%s]", key, sec);
        return 1;
    }
    return fail(p, "unknown section [%s]%s", sec, "");
}

/*
 * A section's "[NAME]" in where becomes "PATH:LINE: [NAME]", LINE being its
 * header's in the file (inih tells a key's line only when it fails), so
 * problems found after the whole file was read still name the place.
 */
static void where_of(const char *path, char *where, size_t len)
{
    char line[512], want[320];
    FILE *f;
    int n = 0;

    if (where[0] != '[' || !(f = fopen(path, "r")))
        return;
    snprintf(want, sizeof(want), "%s", where + 1);
    want[strcspn(want, "]")] = '\0';
    while (fgets(line, sizeof(line), f)) {
        char *a = line, *b;

        n++;
        while (*a == ' ' || *a == '\t')
            a++;
        if (*a++ != '[' || !(b = strchr(a, ']')))
            continue;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if ((size_t)(b - a) == strlen(want) && !strncmp(a, want, (size_t)(b - a))) {
            char name[330];

            snprintf(name, sizeof(name), "%s", where);
            snprintf(where, len, "%.*s:%d: %.320s", 60, path, n, name);
            break;
        }
    }
    fclose(f);
}

int vgpu_config_load(struct vgpu_config *c, const char *path, char *err, size_t errlen)
{
    struct parse p = { .c = c, .pool = -1 };
    int line;

    line = ini_parse(path, on_key, &p);
    for (int i = 0; line == 0 && i < c->nlisten; i++)
        where_of(path, c->listen[i].where, sizeof(c->listen[i].where));
    for (int i = 0; line == 0 && i < c->ncerts; i++)
        where_of(path, c->certs[i].where, sizeof(c->certs[i].where));
    if (line == -1)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    else if (line == -2)
        snprintf(err, errlen, "%s: out of memory", path);
    else if (line > 0)
        snprintf(err, errlen, "%s:%d: %s", path, line,
                 p.msg[0] ? p.msg : "expected [section] or key = value");
    return line ? -1 : 0;
}

int vgpu_config_add_listen(struct vgpu_config *c, const char *arg, char *err, size_t errlen)
{
    char buf[512], *save = NULL, *tok;
    struct vgpu_listen_cfg *l;

    if (c->nlisten == VGPU_CONFIG_MAX_LISTEN) {
        snprintf(err, errlen, "--listen: at most %d sockets", VGPU_CONFIG_MAX_LISTEN);
        return -1;
    }
    if (strlen(arg) >= sizeof(buf)) {
        snprintf(err, errlen, "--listen: argument too long");
        return -1;
    }
    snprintf(buf, sizeof(buf), "%s", arg);
    l = &c->listen[c->nlisten];
    listen_init(l);
    snprintf(l->where, sizeof(l->where), "--listen %.*s", 380, arg);
    tok = strtok_r(buf, ",", &save);
    if (!tok || strlen(tok) >= sizeof(l->address)) {
        snprintf(err, errlen, "--listen: expected ADDRESS[,type=T][,vm_id=N][,pool=P]"
                 "[,priority=P][,sessions=N]");
        return -1;
    }
    snprintf(l->address, sizeof(l->address), "%s", tok);
    while ((tok = strtok_r(NULL, ",", &save))) {
        char key[32], *eq = strchr(tok, '=');
        int r = -1;

        if (eq && (size_t)(eq - tok) < sizeof(key)) {
            memcpy(key, tok, (size_t)(eq - tok));
            key[eq - tok] = '\0';
            r = listen_key(l, key, eq + 1);
        }
        if (r != 1) {
            snprintf(err, errlen, "--listen %s: '%s' is not a KEY=VALUE of " LISTEN_KEYS, arg, tok);
            return -1;
        }
    }
    c->nlisten++;
    return 0;
}

bool vgpu_listen_uses_tls(const struct vgpu_listen_cfg *l)
{
    return !strncmp(l->address, "tcp:", 4) && l->tls != VGPU_TLS_INSECURE;
}

/* dst = explicit path, else dir/name when dir is set; 0 or -1 when too long. */
static int tls_path(char *dst, size_t cap, const char *dir, const char *name)
{
    if (dst[0] || !dir[0])
        return 0;
    return snprintf(dst, cap, "%s/%s", dir, name) < (int)cap ? 0 : -1;
}

int vgpu_config_finish(struct vgpu_config *c, char *err, size_t errlen)
{
    struct vgpu_tls_cfg *t = &c->tls;
    bool tls = false;

    for (int i = 0; i < c->nlisten; i++) {
        const struct vgpu_listen_cfg *l = &c->listen[i];

        if (strncmp(l->address, "tcp:", 4) && l->tls != VGPU_TLS_DEFAULT) {
            snprintf(err, errlen, "%s: listener %s: tls is for tcp: sockets (a unix socket's "
                     "clients are known by the socket's permissions)", l->where, l->address);
            return -1;
        }
        if (!vgpu_listen_uses_tls(l))
            continue;
        tls = true;
        if (l->pinned) {
            snprintf(err, errlen, "%s: listener %s speaks TLS: its clients' identity comes from "
                     "their certificates ([cert] sections), so it takes no vm_id, pool or "
                     "priority (or set tls = insecure for plain TCP)", l->where, l->address);
            return -1;
        }
    }
    /* a pool named where pools are configured must be one of them (else every session is refused) */
    for (int i = 0; i < c->nlisten; i++)
        if (c->listen[i].pinned && !vgpu_config_pool(c, c->listen[i].who.pool)) {
            snprintf(err, errlen, "%s: listener %s: pool %c has no [pool %c] section",
                     c->listen[i].where, c->listen[i].address, c->listen[i].who.pool,
                     c->listen[i].who.pool);
            return -1;
        }
    for (int i = 0; i < c->ncerts; i++)
        if (!vgpu_config_pool(c, c->certs[i].who.pool)) {
            snprintf(err, errlen, "%s: pool %c has no [pool %c] section", c->certs[i].where,
                     c->certs[i].who.pool, c->certs[i].who.pool);
            return -1;
        }
    for (int i = 0; i < c->ncerts; i++) {
        const struct vgpu_cert_cfg *ct = &c->certs[i];

        if ((!ct->cn[0] && !ct->has_sha256) || !ct->has_vm_id) {
            snprintf(err, errlen, "%s needs cn or sha256 (which certificate) and vm_id "
                     "(whose it is)", ct->where);
            return -1;
        }
    }
    if (tls_path(t->ca, sizeof(t->ca), t->dir, "ca-cert.pem") ||
        tls_path(t->cert, sizeof(t->cert), t->dir, "server-cert.pem") ||
        tls_path(t->key, sizeof(t->key), t->dir, "server-key.pem")) {
        snprintf(err, errlen, "[tls] dir: path too long");
        return -1;
    }
    if (!t->crl[0] && t->dir[0]) {       /* a revocation list only where the dir has one */
        char crl[sizeof(t->crl)];

        if (snprintf(crl, sizeof(crl), "%s/ca-crl.pem", t->dir) < (int)sizeof(crl) &&
            access(crl, F_OK) == 0)
            memcpy(t->crl, crl, sizeof(crl));
    }
    if (!tls)
        return 0;
    if (!t->ca[0] || !t->cert[0] || !t->key[0]) {
        snprintf(err, errlen, "a tcp: listener speaks TLS and [tls] names no credentials: set "
                 "[tls] dir (with ca-cert.pem, server-cert.pem, server-key.pem) or ca, cert and "
                 "key; or give the listener tls = insecure for plain TCP");
        return -1;
    }
    if (!c->ncerts) {
        snprintf(err, errlen, "a tcp: listener speaks TLS and no [cert] section says whose a "
                 "client certificate is: add [cert NAME] with cn or sha256, and vm_id");
        return -1;
    }
    return 0;
}

const struct vgpu_cert_cfg *vgpu_config_cert(const struct vgpu_config *c, const char *cn,
                                             const uint8_t sha256[32])
{
    for (int i = 0; i < c->ncerts; i++) {
        const struct vgpu_cert_cfg *ct = &c->certs[i];

        if (ct->cn[0] && (!cn || strcmp(ct->cn, cn)))
            continue;
        if (ct->has_sha256 && memcmp(ct->sha256, sha256, 32))
            continue;
        return ct;
    }
    return NULL;
}

const struct vgpu_vm_limits *vgpu_config_vm(const struct vgpu_config *c, uint32_t vm)
{
    for (int i = 0; c && i < c->nvms; i++)
        if (c->vms[i].vm_id == vm)
            return &c->vms[i];
    return NULL;
}

uint32_t vgpu_config_vm_sessions(const struct vgpu_config *c, uint32_t vm)
{
    const struct vgpu_vm_limits *l = vgpu_config_vm(c, vm);

    return l && l->sessions ? l->sessions : VGPU_VM_MAX_SESSIONS;
}

const struct vgpu_pool_cfg *vgpu_config_pool(const struct vgpu_config *c, char pool)
{
    static const struct vgpu_pool_cfg any;
    bool configured = false;

    if (pool < 'A' || pool > 'Z')
        return NULL;
    for (int i = 0; c && i < VGPU_SCHED_MAX_POOLS; i++)
        configured |= c->pools[i].ngpus > 0;
    if (!configured)
        return &any;
    return c->pools[pool - 'A'].ngpus ? &c->pools[pool - 'A'] : NULL;
}

/* Two listeners the same socket, of the same kind (what only a restart can change)? */
static bool same_socket(const struct vgpu_listen_cfg *a, const struct vgpu_listen_cfg *b)
{
    return !strcmp(a->address, b->address) && a->type == b->type &&
           vgpu_listen_uses_tls(a) == vgpu_listen_uses_tls(b) && a->mode == b->mode &&
           !strcmp(a->owner, b->owner) && !strcmp(a->group, b->group);
}

/* Appends "; " and a sentence to msg. */
__attribute__((format(printf, 3, 4))) static void note(char *msg, size_t len, const char *fmt, ...)
{
    size_t n = strlen(msg);
    va_list ap;

    if (n + 3 >= len)
        return;
    if (n)
        n += (size_t)snprintf(msg + n, len - n, "; ");
    va_start(ap, fmt);
    vsnprintf(msg + n, len - n, fmt, ap);
    va_end(ap);
}

void vgpu_config_apply_reload(struct vgpu_config *live, const struct vgpu_config *fresh,
                              char *msg, size_t msglen)
{
    msg[0] = '\0';
    memcpy(live->vms, fresh->vms, sizeof(live->vms));
    live->nvms = fresh->nvms;
    memcpy(live->pools, fresh->pools, sizeof(live->pools));
    live->npools = fresh->npools;
    memcpy(live->certs, fresh->certs, sizeof(live->certs));
    live->ncerts = fresh->ncerts;
    if (fresh->tls.ca[0])        /* a TLS listener kept open keeps its files otherwise */
        live->tls = fresh->tls;
    live->log_level = fresh->log_level;
    live->max_pending = fresh->max_pending;
    for (int i = 0; i < live->nlisten; i++) {
        struct vgpu_listen_cfg *l = &live->listen[i];
        int j = 0;

        while (j < fresh->nlisten && strcmp(fresh->listen[j].address, l->address))
            j++;
        if (j == fresh->nlisten) {
            note(msg, msglen, "%s is no longer configured but stays open until a restart",
                 l->address);
        } else if (!same_socket(l, &fresh->listen[j])) {
            note(msg, msglen, "%s changed its type, TLS or file permissions: kept as it was "
                 "until a restart", l->address);
        } else {
            l->who = fresh->listen[j].who;          /* for connections from now on */
            l->pinned = fresh->listen[j].pinned;
            l->max_conns = fresh->listen[j].max_conns;
        }
    }
    for (int j = 0; j < fresh->nlisten; j++) {
        int i = 0;

        while (i < live->nlisten && strcmp(fresh->listen[j].address, live->listen[i].address))
            i++;
        if (i == live->nlisten)
            note(msg, msglen, "%s is new: it opens at a restart", fresh->listen[j].address);
    }
    if (strcmp(live->cache_dir, fresh->cache_dir) || strcmp(live->admin, fresh->admin) ||
        strcmp(live->admin_group, fresh->admin_group) || strcmp(live->user, fresh->user) ||
        live->no_contain != fresh->no_contain ||
        memcmp(&live->sched, &fresh->sched, sizeof(live->sched)))
        note(msg, msglen, "[server] and [scheduler] changes (cache_dir, admin, admin_group, user, "
             "contain, the scheduler's parameters) take effect at a restart");
}
