/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C outputs:
 *   <api>_common.[ch]  struct <-> message conversions and call names, shared
 *                      by both sides;
 *   <api>_shim.c       one exported stub per header function that is
 *                      generated or unsupported (manual ones live in shim/);
 *   <api>_dispatch.c   the server's table: per call id, state, flags,
 *                      argument kinds, libffi types, and generated decoders
 *                      and encoders.
 * Element conversions are emitted by put_elem/get_elem so that parameters,
 * struct fields and array elements share one rule each way.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "codegen_internal.h"

struct names {
    char *pkg_camel;   /* "Vgpu__Cudart__" */
    char *pkg_lower;   /* "vgpu__cudart__" */
    const char *api;
};

static struct names names_of(const struct cg_api *api)
{
    struct names n = { cg_xstrdup(""), cg_xstrdup(""), api->spec->api };
    char *pkg = cg_xstrdup(api->spec->package), *save = NULL;

    for (char *tok = strtok_r(pkg, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
        char *c = cg_proto_camel(tok), *l = cg_proto_lower(tok);
        char *nc = cg_xasprintf("%s%s__", n.pkg_camel, c);
        char *nl = cg_xasprintf("%s%s__", n.pkg_lower, l);

        free(n.pkg_camel);
        free(n.pkg_lower);
        n.pkg_camel = nc;
        n.pkg_lower = nl;
        free(c);
        free(l);
    }
    free(pkg);
    return n;
}

static char *msg_type(const struct names *n, const char *msg)
{
    char *c = cg_proto_camel(msg), *s = cg_xasprintf("%s%s", n->pkg_camel, c);

    free(c);
    return s;
}

static char *msg_func(const struct names *n, const char *msg, const char *what)
{
    char *l = cg_proto_lower(msg), *s = cg_xasprintf("%s%s__%s", n->pkg_lower, l, what);

    free(l);
    return s;
}

/* "const struct X" -> "struct X": storage the server writes into. */
static const char *unconst(const char *spelling)
{
    return strncmp(spelling, "const ", 6) ? spelling : spelling + 6;
}

/* A declaration of name with type t, also for function pointer spellings. */
static char *decl(const struct cg_type *t, const char *name)
{
    const char *star = strstr(t->spelling, "(*)");
    size_t n = strlen(t->spelling);

    if (star)
        return cg_xasprintf("%.*s(*%s)%s", (int)(star - t->spelling), t->spelling, name, star + 3);
    return cg_xasprintf("%s%s%s", t->spelling, n && t->spelling[n - 1] == '*' ? "" : " ", name);
}

static void c_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static bool is_addr(const struct cg_type *t)
{
    return t->handle >= 0 || t->kind == CG_T_POINTER || t->kind == CG_T_FUNCPTR;
}

static bool is_struct(const struct cg_type *t)
{
    return t->kind == CG_T_STRUCT && t->handle < 0;
}

/*
 * C value cv -> proto value lv.  Structs go through their put function, which
 * allocates the sub-message in arena ar.  on_err is the statement run when
 * rc is non-zero.
 */
static void put_elem(FILE *f, const struct names *n, const char *ind, const char *lv,
                     const char *cv, const struct cg_type *t, const char *ar, const char *on_err)
{
    if (is_struct(t)) {
        fprintf(f, "%sif ((rc = vgpu_%s_put_%s(%s, &%s, &%s)))\n%s    %s\n", ind, n->api,
                t->st->msg_name, ar, lv, cv, ind, on_err);
    } else if (is_addr(t)) {
        fprintf(f, "%s%s = (uint64_t)(uintptr_t)%s;\n", ind, lv, cv);
    } else if (t->kind == CG_T_BOOL) {
        fprintf(f, "%s%s = %s != 0;\n", ind, lv, cv);
    } else {
        fprintf(f, "%s%s = %s;\n", ind, lv, cv);
    }
}

/* proto value lv -> C value cv. */
static void get_elem(FILE *f, const struct names *n, const char *ind, const char *cv,
                     const char *lv, const struct cg_type *t, const char *on_err)
{
    if (is_struct(t)) {
        fprintf(f, "%sif ((rc = vgpu_%s_get_%s(&%s, %s)))\n%s    %s\n", ind, n->api,
                t->st->msg_name, cv, lv, ind, on_err);
    } else if (is_addr(t)) {
        fprintf(f, "%s%s = (__typeof__(%s))(uintptr_t)%s;\n", ind, cv, cv, lv);
    } else {
        fprintf(f, "%s%s = (__typeof__(%s))%s;\n", ind, cv, cv, lv);
    }
}

/* ---------------------------------------------------------------- common */

static void emit_struct_fns(FILE *f, const struct names *n, const struct cg_struct *st)
{
    char *mt = msg_type(n, st->msg_name), *init = msg_func(n, st->msg_name, "init");

    fprintf(f, "int vgpu_%s_put_%s(struct vgpu_arena *a, %s **out, const %s *c)\n{\n", n->api,
            st->msg_name, mt, st->c_name);
    fprintf(f, "    %s *m = vgpu_arena_alloc(a, sizeof(*m));\n    int rc = 0;\n\n", mt);
    fprintf(f, "    if (!m)\n        return -ENOMEM;\n    %s(m);\n", init);
    for (int i = 0; i < st->nfields; i++) {
        const struct cg_field *fd = &st->fields[i];
        const struct cg_type *t = fd->type;
        char *pf = cg_field_name(fd->name);
        char *lv, *cv;

        if (t->kind == CG_T_ARRAY && t->elem->is_char) {
            fprintf(f, "    m->%s.len = sizeof(c->%s);\n    m->%s.data = (uint8_t *)c->%s;\n",
                    pf, fd->name, pf, fd->name);
        } else if (t->kind == CG_T_ARRAY) {
            fprintf(f, "    m->n_%s = %lld;\n    m->%s = vgpu_arena_alloc(a, %lld * sizeof(*m->%s));\n"
                       "    if (!m->%s)\n        return -ENOMEM;\n",
                    pf, t->array_len, pf, t->array_len, pf, pf);
            fprintf(f, "    for (size_t i = 0; i < %lld; i++) {\n", t->array_len);
            lv = cg_xasprintf("m->%s[i]", pf);
            cv = cg_xasprintf("c->%s[i]", fd->name);
            put_elem(f, n, "        ", lv, cv, t->elem, "a", "return rc;");
            fprintf(f, "    }\n");
            free(lv);
            free(cv);
        } else {
            lv = cg_xasprintf("m->%s", pf);
            cv = cg_xasprintf("c->%s", fd->name);
            put_elem(f, n, "    ", lv, cv, t, "a", "return rc;");
            free(lv);
            free(cv);
        }
        free(pf);
    }
    fprintf(f, "    *out = m;\n    return rc;\n}\n\n");
    fprintf(f, "int vgpu_%s_get_%s(%s *c, const %s *m)\n{\n    int rc = 0;\n\n", n->api,
            st->msg_name, st->c_name, mt);
    fprintf(f, "    memset(c, 0, sizeof(*c));\n    if (!m)\n        return 0;\n");
    for (int i = 0; i < st->nfields; i++) {
        const struct cg_field *fd = &st->fields[i];
        const struct cg_type *t = fd->type;
        char *pf = cg_field_name(fd->name);
        char *lv, *cv;

        if (t->kind == CG_T_ARRAY && t->elem->is_char) {
            fprintf(f, "    if (m->%s.len != sizeof(c->%s))\n        return -EBADMSG;\n"
                       "    memcpy(c->%s, m->%s.data, sizeof(c->%s));\n",
                    pf, fd->name, fd->name, pf, fd->name);
        } else if (t->kind == CG_T_ARRAY) {
            fprintf(f, "    if (m->n_%s != %lld)\n        return -EBADMSG;\n", pf,
                    t->array_len);
            fprintf(f, "    for (size_t i = 0; i < %lld; i++) {\n", t->array_len);
            lv = cg_xasprintf("m->%s[i]", pf);
            cv = cg_xasprintf("c->%s[i]", fd->name);
            get_elem(f, n, "        ", cv, lv, t->elem, "return rc;");
            fprintf(f, "    }\n");
            free(lv);
            free(cv);
        } else {
            lv = cg_xasprintf("m->%s", pf);
            cv = cg_xasprintf("c->%s", fd->name);
            get_elem(f, n, "    ", cv, lv, t, "return rc;");
            free(lv);
            free(cv);
        }
        free(pf);
    }
    fprintf(f, "    return rc;\n}\n\n");
    free(mt);
    free(init);
}

static void banner(FILE *f, const struct cg_api *api)
{
    fprintf(f, "/* Generated by vgpu-codegen from %s and %s. Do not edit. */\n", api->spec->header,
            api->spec->name);
}

static void includes(FILE *f, const struct cg_api *api)
{
    fprintf(f, "#include <errno.h>\n#include <stdint.h>\n#include <string.h>\n\n");
    for (int i = 0; i < api->spec->nheaders; i++)
        fprintf(f, "#include <%s>\n", api->spec->headers[i]);
    fprintf(f, "\n#include \"vgpu/callgen.h\"\n#include \"%s.pb-c.h\"\n#include \"%s_calltable.h\"\n"
               "#include \"%s_common.h\"\n\n",
            api->spec->api, api->spec->api, api->spec->api);
}

static int emit_common(const struct cg_api *api, const struct names *n, const char *dir)
{
    char *hn = cg_xasprintf("%s_common.h", n->api), *cn = cg_xasprintf("%s_common.c", n->api);
    FILE *h = cg_open_out(dir, hn), *c = cg_open_out(dir, cn);
    char *guard = cg_upper(n->api);

    banner(h, api);
    fprintf(h, "#ifndef VGPU_%s_COMMON_H\n#define VGPU_%s_COMMON_H\n\n", guard, guard);
    fprintf(h, "#include \"vgpu/callgen.h\"\n#include \"%s.pb-c.h\"\n\n", n->api);
    for (const struct cg_struct *st = api->structs; st; st = st->next) {
        char *mt;

        if (!st->used)
            continue;
        mt = msg_type(n, st->msg_name);
        fprintf(h, "int vgpu_%s_put_%s(struct vgpu_arena *a, %s **out, const %s *c);\n", n->api,
                st->msg_name, mt, st->c_name);
        fprintf(h, "int vgpu_%s_get_%s(%s *c, const %s *m);\n", n->api, st->msg_name,
                st->c_name, mt);
        free(mt);
    }
    fprintf(h, "\n#endif\n");
    banner(c, api);
    includes(c, api);
    for (const struct cg_struct *st = api->structs; st; st = st->next)
        if (st->used)
            emit_struct_fns(c, n, st);
    fprintf(c, "static const struct {\n    uint32_t id;\n    const char *name;\n} call_names[] = {\n");
    for (const struct cg_func *fn = api->funcs; fn; fn = fn->next)
        fprintf(c, "    { %u, \"%s\" },\n", fn->id, fn->name);
    fprintf(c, "};\n\nconst char *vgpu_%s_call_name(uint32_t id)\n{\n"
               "    size_t lo = 0, hi = sizeof(call_names) / sizeof(call_names[0]);\n\n"
               "    while (lo < hi) {\n        size_t mid = lo + (hi - lo) / 2;\n\n"
               "        if (call_names[mid].id == id)\n            return call_names[mid].name;\n"
               "        if (call_names[mid].id < id)\n            lo = mid + 1;\n"
               "        else\n            hi = mid;\n    }\n    return NULL;\n}\n", n->api);
    free(hn);
    free(cn);
    free(guard);
    return fclose(h) | fclose(c);
}

/* ------------------------------------------------------------------ shim */

static char *count_expr(const struct cg_func *fn, const struct cg_param *p, const char *prefix)
{
    if (p->count == CG_C_ONE)
        return cg_xstrdup("1");
    if (p->count == CG_C_CONST)
        return cg_xasprintf("%lld", p->count_const);
    return cg_xasprintf("(long long)%s%s", prefix, fn->params[p->count_arg].name);
}

static const char *elem_size(const struct cg_param *p)
{
    return p->elem->kind == CG_T_VOID ? "1" : NULL;
}

static void emit_params(FILE *f, const struct cg_func *fn)
{
    if (!fn->nparams)
        fputs("void", f);
    for (int i = 0; i < fn->nparams; i++) {
        char *d = decl(fn->params[i].type, fn->params[i].name);

        fprintf(f, "%s%s", i ? ", " : "", d);
        free(d);
    }
}

static void emit_shim_unsupported(FILE *f, const struct cg_func *fn)
{
    fprintf(f, "VGPU_EXPORT %s %s(", fn->ret->spelling, fn->name);
    emit_params(f, fn);
    fprintf(f, ")\n{\n");
    for (int i = 0; i < fn->nparams; i++)
        fprintf(f, "    (void)%s;\n", fn->params[i].name);
    fprintf(f, "    %s(%s)vgpu_shim_unsupported(%u, \"%s\", ", fn->ret->kind == CG_T_VOID ? "" : "return ",
            fn->ret->spelling, fn->id, fn->name);
    c_string(f, fn->reason);
    fprintf(f, ");\n}\n\n");
}

static void emit_shim_generated(FILE *f, const struct names *n, const struct cg_func *fn)
{
    char *an = cg_xasprintf("%s_args", fn->name), *rn = cg_xasprintf("%s_ret", fn->name);
    char *at = msg_type(n, an), *rt = msg_type(n, rn);
    char *ainit = msg_func(n, an, "init"), *runpack = msg_func(n, rn, "unpack");
    char *rfree = msg_func(n, rn, "free_unpacked");
    bool has_ret = !fn->returns_error && fn->ret->kind != CG_T_VOID;
    bool has_out = has_ret;
    const char *err_local = "{ st = vgpu_shim_local_error(&req, rc); goto out; }";

    for (int i = 0; i < fn->nparams; i++)
        if (fn->params[i].kind == CG_P_OUT || fn->params[i].kind == CG_P_INOUT)
            has_out = true;
    fprintf(f, "VGPU_EXPORT %s %s(", fn->ret->spelling, fn->name);
    emit_params(f, fn);
    fprintf(f, ")\n{\n    %s a;\n    struct vgpu_arena ar = { 0 };\n", at);
    /* work: the guest library acts before work goes to the GPU (the runtime's managed memory) */
    fprintf(f, "    struct vgpu_call_req req = { .call_id = %u, .flags = %s%s, .name = \"%s\" };\n",
            fn->id, fn->async ? "VGPU_FN_ASYNC" : fn->cached ? "VGPU_FN_CACHED"
                  : fn->cached_ctx ? "VGPU_FN_CACHE_CTX" : fn->ctx_change ? "VGPU_FN_CTX_CHANGE" : "0",
            fn->work ? " | VGPU_FN_WORK" : "", fn->name);
    fprintf(f, "    struct vgpu_call_rep rep = { 0 };\n    int st = 0, rc = 0;\n%s\n",
            has_ret ? "    int64_t ret = 0;\n" : "");
    fprintf(f, "    %s(&a);\n", ainit);
    for (int i = 0; i < fn->nparams; i++) {
        const struct cg_param *p = &fn->params[i];
        char *lv = cg_xasprintf("a.%s", p->name), *cnt;

        switch (p->kind) {
        case CG_P_VALUE:
            put_elem(f, n, "    ", lv, p->name, p->type, "&ar", err_local);
            break;
        case CG_P_HANDLE:
        case CG_P_DEVPTR:
            fprintf(f, "    a.%s = (uint64_t)(uintptr_t)%s;\n", p->name, p->name);
            break;
        case CG_P_STRING:
            fprintf(f, "    if (!%s)\n        a.vgpu_null |= 1ull << %d;\n    else\n"
                       "        a.%s = (char *)%s;\n", p->name, i, p->name, p->name);
            break;
        case CG_P_IN:
        case CG_P_INOUT:
        case CG_P_OUT:
            fprintf(f, "    if (!%s) {\n        a.vgpu_null |= 1ull << %d;\n    } else {\n", p->name, i);
            cnt = count_expr(fn, p, "");
            if (p->bytes) {
                const char *es = elem_size(p);
                char *len = es ? cg_xasprintf("(size_t)%s", cnt)
                               : cg_xasprintf("(size_t)%s * sizeof(*%s)", cnt, p->name);

                if (p->kind != CG_P_OUT)
                    fprintf(f, "        req.seg[req.nseg].data = %s;\n        req.seg[req.nseg++].len = %s;\n",
                            p->name, len);
                if (p->kind != CG_P_IN)
                    fprintf(f, "        req.out[req.nout].dst = %s;\n        req.out[req.nout++].len = %s;\n",
                            p->name, len);
                free(len);
            } else if (p->kind != CG_P_OUT) {
                if (p->count == CG_C_ONE) {
                    char *cv = cg_xasprintf("(*%s)", p->name);

                    if (p->elem_devptr || p->elem_handle >= 0)
                        fprintf(f, "        a.%s = (uint64_t)(uintptr_t)*%s;\n", p->name, p->name);
                    else
                        put_elem(f, n, "        ", lv, cv, p->elem, "&ar", err_local);
                    free(cv);
                } else if (p->elem->is_char) {
                    fprintf(f, "        if (%s < 0)\n            %s\n", cnt,
                            "{ st = vgpu_shim_local_error(&req, -EINVAL); goto out; }");
                    fprintf(f, "        a.%s.len = (size_t)%s;\n        a.%s.data = (uint8_t *)%s;\n",
                            p->name, cnt, p->name, p->name);
                } else {
                    char *cv = cg_xasprintf("%s[i]", p->name);
                    char *ev = cg_xasprintf("a.%s[i]", p->name);

                    fprintf(f, "        if (%s < 0)\n            %s\n", cnt,
                            "{ st = vgpu_shim_local_error(&req, -EINVAL); goto out; }");
                    fprintf(f, "        a.n_%s = (size_t)%s;\n        a.%s = vgpu_arena_alloc(&ar, a.n_%s * sizeof(*a.%s));\n"
                               "        if (!a.%s)\n            %s\n",
                            p->name, cnt, p->name, p->name, p->name, p->name,
                            "{ st = vgpu_shim_local_error(&req, -ENOMEM); goto out; }");
                    fprintf(f, "        for (size_t i = 0; i < a.n_%s; i++) {\n", p->name);
                    if (p->elem_devptr || p->elem_handle >= 0)
                        fprintf(f, "            %s = (uint64_t)(uintptr_t)%s;\n", ev, cv);
                    else
                        put_elem(f, n, "            ", ev, cv, p->elem, "&ar", err_local);
                    fprintf(f, "        }\n");
                    free(cv);
                    free(ev);
                }
            }
            fprintf(f, "    }\n");
            free(cnt);
            break;
        }
        free(lv);
    }
    fprintf(f, "    if ((rc = vgpu_call_pack(&ar, &a.base, &req.args, &req.args_len)))\n        %s\n",
            err_local);
    fprintf(f, "    st = vgpu_shim_invoke(&req, &rep);\n");
    if (has_out) {
        const char *bad = "{ st = vgpu_shim_bad_reply(&req); goto done; }";

        fprintf(f, "    if (st == 0) {\n        %s *r = %s(NULL, rep.ret_len, rep.ret);\n\n", rt, runpack);
        fprintf(f, "        if (!r) {\n            st = vgpu_shim_bad_reply(&req);\n            goto out;\n        }\n");
        for (int i = 0; i < fn->nparams; i++) {
            const struct cg_param *p = &fn->params[i];
            char *cnt;

            if ((p->kind != CG_P_OUT && p->kind != CG_P_INOUT) || p->bytes)
                continue;
            cnt = count_expr(fn, p, "");
            fprintf(f, "        if (%s) {\n", p->name);
            if (p->count == CG_C_ONE) {
                char *cv = cg_xasprintf("(*%s)", p->name), *lv = cg_xasprintf("r->%s", p->name);

                if (p->elem_devptr || p->elem_handle >= 0)
                    fprintf(f, "            *%s = (__typeof__(*%s))(uintptr_t)r->%s;\n", p->name, p->name, p->name);
                else
                    get_elem(f, n, "            ", cv, lv, p->elem, bad);
                free(cv);
                free(lv);
            } else if (p->elem->is_char) {
                fprintf(f, "            if ((long long)r->%s.len != %s)\n                %s\n"
                           "            memcpy(%s, r->%s.data, r->%s.len);\n",
                        p->name, cnt, bad, p->name, p->name, p->name);
            } else {
                char *cv = cg_xasprintf("%s[i]", p->name), *lv = cg_xasprintf("r->%s[i]", p->name);

                fprintf(f, "            if ((long long)r->n_%s != %s)\n                %s\n", p->name, cnt, bad);
                fprintf(f, "            for (size_t i = 0; i < r->n_%s; i++) {\n", p->name);
                if (p->elem_devptr || p->elem_handle >= 0)
                    fprintf(f, "                %s = (__typeof__(%s))(uintptr_t)%s;\n", cv, cv, lv);
                else
                    get_elem(f, n, "                ", cv, lv, p->elem, bad);
                fprintf(f, "            }\n");
                free(cv);
                free(lv);
            }
            fprintf(f, "        }\n");
            free(cnt);
        }
        if (has_ret)
            fprintf(f, "        ret = r->vgpu_ret;\n");
        fprintf(f, "        goto done;\n    done:\n        %s(r, NULL);\n    }\n", rfree);
    }
    fprintf(f, "out:\n    vgpu_shim_rep_release(&rep);\n    vgpu_arena_free(&ar);\n");
    if (fn->returns_error)
        fprintf(f, "    return (%s)st;\n", fn->ret->spelling);
    else if (has_ret)
        fprintf(f, "    (void)st;\n    return (%s)ret;\n", fn->ret->spelling);
    else
        fprintf(f, "    (void)st;\n");
    fprintf(f, "}\n\n");
    free(an); free(rn); free(at); free(rt); free(ainit); free(runpack); free(rfree);
}

int cg_emit_shim(const struct cg_api *api, const char *dir)
{
    struct names n = names_of(api);
    char *name = cg_xasprintf("%s_shim.c", api->spec->api);
    FILE *f;

    if (emit_common(api, &n, dir))
        return -1;
    f = cg_open_out(dir, name);
    banner(f, api);
    includes(f, api);
    fprintf(f, "#define VGPU_EXPORT __attribute__((visibility(\"default\")))\n\n");
    fprintf(f, "#pragma GCC diagnostic ignored \"-Wunused-label\"\n\n");
    for (const struct cg_func *fn = api->funcs; fn; fn = fn->next) {
        fprintf(f, "/* %s: %s */\n", fn->name,
                fn->state == CG_F_GENERATED ? "generated" :
                fn->state == CG_F_MANUAL ? "manual, see shim/manual/" : "unsupported");
        if (fn->state == CG_F_GENERATED)
            emit_shim_generated(f, &n, fn);
        else if (fn->state == CG_F_UNSUPPORTED)
            emit_shim_unsupported(f, fn);
    }
    free(name);
    return fclose(f);
}

/* ---------------------------------------------------------------- server */

static const char *ffi_scalar(const struct cg_type *t)
{
    if (t->kind == CG_T_POINTER || t->kind == CG_T_FUNCPTR)
        return "&ffi_type_pointer";
    if (t->kind == CG_T_FLOAT)
        return "&ffi_type_float";
    if (t->kind == CG_T_DOUBLE)
        return "&ffi_type_double";
    if (t->kind == CG_T_ENUM)
        return t->size == 8 ? "&ffi_type_sint64" : "&ffi_type_sint32";
    if (t->kind == CG_T_BOOL)
        return "&ffi_type_uint8";
    if (t->kind == CG_T_INT) {
        switch (t->size) {
        case 1: return t->is_signed ? "&ffi_type_sint8" : "&ffi_type_uint8";
        case 2: return t->is_signed ? "&ffi_type_sint16" : "&ffi_type_uint16";
        case 4: return t->is_signed ? "&ffi_type_sint32" : "&ffi_type_uint32";
        default: return t->is_signed ? "&ffi_type_sint64" : "&ffi_type_uint64";
        }
    }
    return NULL;
}

/* libffi describes a struct by value as the list of its members. */
static void emit_ffi_struct(FILE *f, const struct cg_struct *st, bool *done_list, int idx,
                            const struct cg_api *api);

static void ffi_ref(FILE *f, const struct cg_type *t, const struct cg_api *api)
{
    if (t->kind == CG_T_STRUCT && t->handle < 0)
        fprintf(f, "&ffi_%s", t->st->msg_name);
    else
        fputs(ffi_scalar(t) ? ffi_scalar(t) : "&ffi_type_pointer", f);
    (void)api;
}

static int struct_index(const struct cg_api *api, const struct cg_struct *st)
{
    int i = 0;

    for (const struct cg_struct *s = api->structs; s; s = s->next, i++)
        if (s == st)
            return i;
    return -1;
}

static void emit_ffi_struct(FILE *f, const struct cg_struct *st, bool *done_list, int idx,
                            const struct cg_api *api)
{
    if (done_list[idx])
        return;
    done_list[idx] = true;
    for (int i = 0; i < st->nfields; i++) {
        const struct cg_type *t = st->fields[i].type;

        if (t->kind == CG_T_ARRAY)
            t = t->elem;
        if (t->kind == CG_T_STRUCT && t->handle < 0)
            emit_ffi_struct(f, t->st, done_list, struct_index(api, t->st), api);
    }
    fprintf(f, "static ffi_type *ffi_%s_elems[] = {\n", st->msg_name);
    for (int i = 0; i < st->nfields; i++) {
        const struct cg_type *t = st->fields[i].type;
        long long reps = t->kind == CG_T_ARRAY ? t->array_len : 1;

        for (long long k = 0; k < reps; k++) {
            fputs("    ", f);
            ffi_ref(f, t->kind == CG_T_ARRAY ? t->elem : t, api);
            fputs(",\n", f);
        }
    }
    fprintf(f, "    NULL,\n};\nstatic ffi_type ffi_%s = { 0, 0, FFI_TYPE_STRUCT, ffi_%s_elems };\n\n",
            st->msg_name, st->msg_name);
}

/* Storage the server writes through: the pointee without const. */
static char *elem_ctype(const struct cg_param *p)
{
    if (p->elem->kind == CG_T_VOID)
        return cg_xstrdup("unsigned char");
    return cg_xstrdup(unconst(p->elem->spelling));
}

/*
 * One extent term as a uint64_t expression; a signed parameter is refused
 * first when negative.  The element size (PARAM*N) is applied by the caller.
 */
static char *term_expr(FILE *f, const struct cg_func *fn, const struct cg_term *t)
{
    const struct cg_param *q;

    if (t->arg < 0)
        return cg_xasprintf("%lldu", t->value);
    q = &fn->params[t->arg];
    if (q->type->is_signed)
        fprintf(f, "        if (a->%s < 0)\n            return -EINVAL;\n", q->name);
    return cg_xasprintf("(uint64_t)a->%s", q->name);
}

/*
 * A device address: bare, it must lie inside the session's memory; with an
 * extent, the whole span the call touches must, its size computed without
 * overflow (vgpu_span_1d/2d in callgen.h).
 */
static void emit_devptr(FILE *f, const struct cg_func *fn, const struct cg_param *p)
{
    char *size, *pitch, *width, *height;

    fprintf(f, "        void *h = NULL;\n");
    if (p->extent == CG_E_NONE) {
        fprintf(f, "\n        if ((rc = r->ops->devptr_in(r->ctx, a->%s, &h)))\n            return rc;\n",
                p->name);
    } else if (p->extent == CG_E_1D) {
        fprintf(f, "        uint64_t span;\n\n");
        size = term_expr(f, fn, &p->ext_size);
        fprintf(f, "        if ((rc = vgpu_span_1d(%s, %lld, &span)))\n            return rc;\n", size,
                p->ext_size.mult);
        free(size);
    } else {
        fprintf(f, "        uint64_t span;\n\n");
        pitch = term_expr(f, fn, &p->ext_pitch);
        width = term_expr(f, fn, &p->ext_width);
        height = term_expr(f, fn, &p->ext_height);
        /* the width in bytes first, when it counts elements */
        fprintf(f, "        if ((rc = vgpu_span_1d(%s, %lld, &span)) ||\n"
                   "            (rc = vgpu_span_2d(%s, span, %s, &span)))\n            return rc;\n",
                width, p->ext_width.mult, pitch, height);
        free(pitch);
        free(width);
        free(height);
    }
    if (p->extent != CG_E_NONE)
        fprintf(f, "        if ((rc = r->ops->range_in(r->ctx, a->%s, span, &h)))\n            return rc;\n",
                p->name);
    fprintf(f, "        *v = (__typeof__(*v))(uintptr_t)h;\n");
}

static void emit_decode(FILE *f, const struct names *n, const struct cg_func *fn)
{
    char *an = cg_xasprintf("%s_args", fn->name), *at = msg_type(n, an);
    char *aunpack = msg_func(n, an, "unpack");
    const char *ret_rc = "return rc;";

    fprintf(f, "static int dec_%s(struct vgpu_replay *r, const uint8_t *buf, size_t len)\n{\n", fn->name);
    fprintf(f, "    ProtobufCAllocator al = { vgpu_arena_pb_alloc, vgpu_arena_pb_keep, &r->arena };\n");
    fprintf(f, "    %s *a = %s(&al, len, buf);\n    int rc = 0;\n\n", at, aunpack);
    fprintf(f, "    if (!a)\n        return -EBADMSG;\n    r->args_msg = &a->base;\n"
               "    r->args_in_arena = 1;\n");
    for (int i = 0; i < fn->nparams; i++) {
        const struct cg_param *p = &fn->params[i];
        char *d = decl(p->type, "*v");
        char *et, *cnt;

        fprintf(f, "    {\n        %s = vgpu_arena_alloc(&r->arena, sizeof(*v));\n\n", d);
        fprintf(f, "        if (!v)\n            return -ENOMEM;\n        r->av[%d] = v;\n", i);
        free(d);
        switch (p->kind) {
        case CG_P_VALUE: {
            char *lv = cg_xasprintf("a->%s", p->name);

            get_elem(f, n, "        ", "(*v)", lv, p->type, ret_rc);
            free(lv);
            break;
        }
        case CG_P_HANDLE:
            fprintf(f, "        void *h = NULL;\n\n        if ((rc = r->ops->handle_in(r->ctx, %d, a->%s, &h)))\n"
                       "            return rc;\n        *v = (__typeof__(*v))(uintptr_t)h;\n",
                    p->type->handle, p->name);
            break;
        case CG_P_DEVPTR:
            emit_devptr(f, fn, p);
            break;
        case CG_P_STRING:
            fprintf(f, "        *v = (a->vgpu_null >> %d) & 1 ? NULL : a->%s;\n", i, p->name);
            break;
        case CG_P_IN:
        case CG_P_INOUT:
        case CG_P_OUT:
            et = elem_ctype(p);
            cnt = count_expr(fn, p, "a->");
            fprintf(f, "        size_t bytes;\n        %s *e;\n\n", et);
            fprintf(f, "        if ((a->vgpu_null >> %d) & 1) {\n            *v = NULL;\n        } else {\n", i);
            fprintf(f, "            if ((rc = vgpu_replay_count(r, %s, sizeof(*e), %d, &bytes)))\n"
                       "                return rc;\n", cnt, p->kind != CG_P_IN);
            if (p->bytes && p->kind == CG_P_IN) {
                fprintf(f, "            if (!(e = (%s *)vgpu_replay_seg(r, bytes)))\n                return -EBADMSG;\n", et);
            } else {
                fprintf(f, "            if (!(e = vgpu_arena_alloc(&r->arena, bytes)))\n                return -ENOMEM;\n");
                if (p->bytes && p->kind == CG_P_INOUT) {
                    fprintf(f, "            const void *s = vgpu_replay_seg(r, bytes);\n\n"
                               "            if (!s)\n                return -EBADMSG;\n"
                               "            memcpy(e, s, bytes);\n");
                } else if (p->kind != CG_P_OUT && p->count == CG_C_ONE) {
                    char *lv = cg_xasprintf("a->%s", p->name);

                    if (p->elem_handle >= 0)
                        fprintf(f, "            void *h = NULL;\n\n            if ((rc = r->ops->handle_in(r->ctx, %d, %s, &h)))\n"
                                   "                return rc;\n            *e = (__typeof__(*e))(uintptr_t)h;\n", p->elem_handle, lv);
                    else if (p->elem_devptr)
                        fprintf(f, "            void *h = NULL;\n\n            if ((rc = r->ops->devptr_in(r->ctx, %s, &h)))\n"
                                   "                return rc;\n            *e = (__typeof__(*e))(uintptr_t)h;\n", lv);
                    else
                        get_elem(f, n, "            ", "(*e)", lv, p->elem, ret_rc);
                    free(lv);
                } else if (p->kind != CG_P_OUT && p->elem->is_char) {
                    fprintf(f, "            if (a->%s.len != bytes)\n                return -EBADMSG;\n"
                               "            memcpy(e, a->%s.data, bytes);\n", p->name, p->name);
                } else if (p->kind != CG_P_OUT) {
                    char *lv = cg_xasprintf("a->%s[i]", p->name);

                    fprintf(f, "            if (a->n_%s * sizeof(*e) != bytes)\n                return -EBADMSG;\n", p->name);
                    fprintf(f, "            for (size_t i = 0; i < a->n_%s; i++) {\n", p->name);
                    if (p->elem_handle >= 0)
                        fprintf(f, "                void *h = NULL;\n\n                if ((rc = r->ops->handle_in(r->ctx, %d, %s, &h)))\n"
                                   "                    return rc;\n                e[i] = (__typeof__(e[i]))(uintptr_t)h;\n", p->elem_handle, lv);
                    else if (p->elem_devptr)
                        fprintf(f, "                void *h = NULL;\n\n                if ((rc = r->ops->devptr_in(r->ctx, %s, &h)))\n"
                                   "                    return rc;\n                e[i] = (__typeof__(e[i]))(uintptr_t)h;\n", lv);
                    else
                        get_elem(f, n, "                ", "e[i]", lv, p->elem, ret_rc);
                    fprintf(f, "            }\n");
                    free(lv);
                }
            }
            fprintf(f, "            *v = (__typeof__(*v))e;\n        }\n");
            free(et);
            free(cnt);
            break;
        }
        fprintf(f, "    }\n");
    }
    fprintf(f, "    return rc;\n}\n\n");
    free(an); free(at); free(aunpack);
}

static void emit_encode(FILE *f, const struct names *n, const struct cg_func *fn)
{
    char *an = cg_xasprintf("%s_args", fn->name), *rn = cg_xasprintf("%s_ret", fn->name);
    char *at = msg_type(n, an), *rt = msg_type(n, rn), *rinit = msg_func(n, rn, "init");
    const char *ret_rc = "return rc;";

    fprintf(f, "static int enc_%s(struct vgpu_replay *r)\n{\n", fn->name);
    fprintf(f, "    const %s *a = (const %s *)r->args_msg;\n    %s m;\n    int rc = 0;\n\n", at, at, rt);
    fprintf(f, "    (void)a;\n    %s(&m);\n", rinit);
    for (int i = 0; i < fn->nparams; i++) {
        const struct cg_param *p = &fn->params[i];
        char *et, *cnt;

        if (p->kind != CG_P_OUT && p->kind != CG_P_INOUT)
            continue;
        et = elem_ctype(p);
        cnt = count_expr(fn, p, "a->");
        fprintf(f, "    {\n        %s *e = *(%s **)r->av[%d];\n        size_t cnt = (size_t)%s;\n\n", et, et, i, cnt);
        fprintf(f, "        (void)cnt;\n        if (e) {\n");
        if (p->bytes) {
            fprintf(f, "            if ((rc = vgpu_replay_out_seg(r, e, cnt * sizeof(*e))))\n                return rc;\n");
        } else if (p->count == CG_C_ONE) {
            char *lv = cg_xasprintf("m.%s", p->name);

            if (p->elem_handle >= 0)
                fprintf(f, "            if ((rc = r->ops->handle_out(r->ctx, %d, (void *)(uintptr_t)*e, &m.%s)))\n"
                           "                return rc;\n", p->elem_handle, p->name);
            else if (p->elem_devptr)
                fprintf(f, "            m.%s = (uint64_t)(uintptr_t)*e;\n", p->name);
            else
                put_elem(f, n, "            ", lv, "(*e)", p->elem, "&r->arena", ret_rc);
            free(lv);
        } else if (p->elem->is_char) {
            fprintf(f, "            m.%s.len = cnt;\n            m.%s.data = (uint8_t *)e;\n", p->name, p->name);
        } else {
            char *lv = cg_xasprintf("m.%s[i]", p->name);

            fprintf(f, "            m.n_%s = cnt;\n            m.%s = vgpu_arena_alloc(&r->arena, cnt * sizeof(*m.%s));\n"
                       "            if (!m.%s)\n                return -ENOMEM;\n", p->name, p->name, p->name, p->name);
            fprintf(f, "            for (size_t i = 0; i < cnt; i++) {\n");
            if (p->elem_handle >= 0)
                fprintf(f, "                if ((rc = r->ops->handle_out(r->ctx, %d, (void *)(uintptr_t)e[i], &%s)))\n"
                           "                    return rc;\n", p->elem_handle, lv);
            else if (p->elem_devptr)
                fprintf(f, "                %s = (uint64_t)(uintptr_t)e[i];\n", lv);
            else
                put_elem(f, n, "                ", lv, "e[i]", p->elem, "&r->arena", ret_rc);
            fprintf(f, "            }\n");
            free(lv);
        }
        fprintf(f, "        }\n    }\n");
        free(et);
        free(cnt);
    }
    if (!fn->returns_error && fn->ret->kind != CG_T_VOID)
        fprintf(f, "    m.vgpu_ret = (int64_t)(%s)r->rv;\n", fn->ret->is_signed ? "int64_t" : "uint64_t");
    fprintf(f, "    if ((rc = vgpu_call_pack(&r->arena, &m.base, &r->ret, &r->ret_len)))\n        return rc;\n");
    fprintf(f, "    return rc;\n}\n\n");
    free(an); free(rn); free(at); free(rt); free(rinit);
}

static const char *kind_enum(enum cg_pkind k)
{
    static const char *names[] = { "VGPU_ARG_VALUE", "VGPU_ARG_HANDLE", "VGPU_ARG_DEVPTR", "VGPU_ARG_IN",
                                   "VGPU_ARG_OUT", "VGPU_ARG_INOUT", "VGPU_ARG_STRING" };

    return names[k];
}

int cg_emit_server(const struct cg_api *api, const char *dir)
{
    struct names n = names_of(api);
    char *name = cg_xasprintf("%s_dispatch.c", api->spec->api);
    FILE *f = cg_open_out(dir, name);
    int nstructs = 0;
    bool *done;

    for (const struct cg_struct *s = api->structs; s; s = s->next)
        nstructs++;
    done = cg_xcalloc((size_t)nstructs + 1, sizeof(*done));
    banner(f, api);
    fprintf(f, "#include <ffi.h>\n");
    includes(f, api);
    for (const struct cg_func *fn = api->funcs; fn; fn = fn->next) {
        if (fn->state != CG_F_GENERATED)
            continue;
        for (int i = 0; i < fn->nparams; i++)
            if (fn->params[i].kind == CG_P_VALUE && is_struct(fn->params[i].type))
                emit_ffi_struct(f, fn->params[i].type->st, done,
                                struct_index(api, fn->params[i].type->st), api);
    }
    for (const struct cg_func *fn = api->funcs; fn; fn = fn->next) {
        if (fn->state != CG_F_GENERATED)
            continue;
        fprintf(f, "/* %s (call %u) */\n", fn->name, fn->id);
        if (fn->nparams) {
            fprintf(f, "static ffi_type *at_%s[] = {", fn->name);
            for (int i = 0; i < fn->nparams; i++) {
                fputs(i ? ", " : " ", f);
                ffi_ref(f, fn->params[i].type, api);
            }
            fprintf(f, " };\n");
            fprintf(f, "static const struct vgpu_arg_desc ad_%s[] = {\n", fn->name);
            for (int i = 0; i < fn->nparams; i++) {
                const struct cg_param *p = &fn->params[i];

                fprintf(f, "    { \"%s\", %s, %d },\n", p->name, kind_enum(p->kind),
                        p->kind == CG_P_HANDLE ? p->type->handle : p->elem_handle);
            }
            fprintf(f, "};\n\n");
        }
        emit_decode(f, &n, fn);
        emit_encode(f, &n, fn);
    }
    fprintf(f, "const struct vgpu_dispatch_entry vgpu_%s_dispatch[] = {\n", n.api);
    for (const struct cg_func *fn = api->funcs; fn; fn = fn->next) {
        fprintf(f, "    { .id = %u, .name = \"%s\", ", fn->id, fn->name);
        if (fn->state == CG_F_GENERATED) {
            fprintf(f, ".state = VGPU_FN_GENERATED, .flags = %s%s%s, .nargs = %d,\n",
                    fn->async ? "VGPU_FN_ASYNC | " : fn->cached ? "VGPU_FN_CACHED | " : "",
                    fn->work ? "VGPU_FN_WORK | " : "",
                    fn->returns_error ? "VGPU_FN_RET_STATUS" : "0",
                    fn->nparams);
            if (fn->nparams)
                fprintf(f, "      .args = ad_%s, .atypes = (void **)at_%s,\n", fn->name, fn->name);
            fprintf(f, "      .rtype = ");
            if (fn->ret->kind == CG_T_VOID)
                fputs("&ffi_type_void", f);
            else
                ffi_ref(f, fn->ret, api);
            fprintf(f, ", .decode = dec_%s, .encode = enc_%s },\n", fn->name, fn->name);
        } else if (fn->state == CG_F_MANUAL) {
            fprintf(f, ".state = VGPU_FN_MANUAL },\n");
        } else {
            fprintf(f, ".state = VGPU_FN_UNSUPPORTED,\n      .reason = ");
            c_string(f, fn->reason);
            fprintf(f, " },\n");
        }
    }
    fprintf(f, "};\n\nconst size_t vgpu_%s_dispatch_len = sizeof(vgpu_%s_dispatch) / sizeof(vgpu_%s_dispatch[0]);\n\n",
            n.api, n.api, n.api);
    fprintf(f, "const struct vgpu_dispatch_entry *vgpu_%s_dispatch_find(uint32_t id)\n{\n"
               "    size_t lo = 0, hi = vgpu_%s_dispatch_len;\n\n    while (lo < hi) {\n"
               "        size_t mid = lo + (hi - lo) / 2;\n\n"
               "        if (vgpu_%s_dispatch[mid].id == id)\n            return &vgpu_%s_dispatch[mid];\n"
               "        if (vgpu_%s_dispatch[mid].id < id)\n            lo = mid + 1;\n"
               "        else\n            hi = mid;\n    }\n    return NULL;\n}\n",
            n.api, n.api, n.api, n.api, n.api);
    free(done);
    free(name);
    return fclose(f);
}
