/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-codegen helpers: allocation that cannot fail silently, protoc-c's
 * name mangling (the emitted C must name the structs protoc-c generates),
 * and a stable hash for the call table.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "codegen_internal.h"

void cg_fatal(const char *fmt, ...)
{
    va_list ap;

    fputs("vgpu-codegen: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

void *cg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (!p)
        cg_fatal("out of memory");
    return p;
}

char *cg_xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");

    if (!p)
        cg_fatal("out of memory");
    return p;
}

char *cg_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        cg_fatal("out of memory");
    return s;
}

/*
 * protoc-c lowers a name by putting '_' before every upper-case letter that
 * does not follow another upper-case letter: "cudaGetP2PAttr" becomes
 * "cuda_get_p2_pattr".  The golden tests pin this down.
 */
char *cg_proto_lower(const char *s)
{
    size_t n = strlen(s);
    char *out = cg_xcalloc(2 * n + 1, 1);
    char *o = out;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (isupper(c) && i > 0 && !isupper((unsigned char)s[i - 1]))
            *o++ = '_';
        *o++ = (char)tolower(c);
    }
    return out;
}

/* protoc-c's type names: drop each '_' and capitalise what follows it. */
char *cg_proto_camel(const char *s)
{
    char *out = cg_xcalloc(strlen(s) + 1, 1);
    char *o = out;
    bool cap = true;

    for (; *s; s++) {
        if (*s == '_') {
            cap = true;
            continue;
        }
        *o++ = cap ? (char)toupper((unsigned char)*s) : *s;
        cap = false;
    }
    return out;
}

char *cg_upper(const char *s)
{
    char *out = cg_xstrdup(s);

    for (char *p = out; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return out;
}

uint64_t cg_fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

FILE *cg_open_out(const char *dir, const char *name)
{
    char *path = cg_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");

    if (!f)
        cg_fatal("cannot write %s: %s", path, strerror(errno));
    free(path);
    return f;
}

/*
 * Names a generated parameter or field cannot have: protobuf-c's "base"
 * member, our own vgpu_ fields, and the locals of the generated shim stubs.
 * Such a name gets a trailing '_'.
 */
bool cg_reserved_name(const char *name)
{
    static const char *const reserved[] = { "base", "a", "ar", "req", "rep", "st", "rc",
                                            "ret", "r", "i", "vgpu_null", "vgpu_ret" };

    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (!strcmp(name, reserved[i]))
            return true;
    return false;
}

/*
 * The proto field name of a struct member: lower case, as protoc-c names the
 * C member anyway, and renamed when reserved.  Caller frees.
 */
char *cg_field_name(const char *name)
{
    char *s = cg_xstrdup(name);

    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (cg_reserved_name(s)) {
        char *renamed = cg_xasprintf("%s_", s);

        free(s);
        s = renamed;
    }
    return s;
}

/* The word coverage.txt and the call-table hash use for a function's state. */
const char *cg_state_name(enum cg_fstate s)
{
    return s == CG_F_GENERATED ? "generated" : s == CG_F_MANUAL ? "manual" : "unsupported";
}
