/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The libclang front end: parses the API header once as written and once per
 * variant macro (e.g. per-thread default stream), and turns every declared
 * function whose name starts with the spec's prefix into a cg_func with
 * canonical parameter types.  A name that exists only under a variant macro
 * is a variant; its base is the function declared at the same spot.
 */
#include <clang-c/Index.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "codegen_internal.h"

struct parse_ctx {
    struct cg_api *api;
    const char *variant;      /* NULL on the plain parse */
    struct loc_map {
        char *key;
        char *name;
        struct loc_map *next;
    } *locs;
    int errors;
};

static char *cx_str(CXString s)
{
    char *out = cg_xstrdup(clang_getCString(s));

    clang_disposeString(s);
    return out;
}

/* Records are identified by their declaration's USR: spellings vary with const. */
static struct cg_struct *find_struct(struct cg_api *api, const char *usr)
{
    for (struct cg_struct *s = api->structs; s; s = s->next)
        if (!strcmp(s->usr, usr))
            return s;
    return NULL;
}

static struct cg_type *convert(struct cg_api *api, CXType t);

struct field_ctx {
    struct cg_api *api;
    struct cg_struct *st;
};

static enum CXVisitorResult visit_field(CXCursor c, CXClientData data)
{
    struct field_ctx *fc = data;
    struct cg_field *f;

    if (fc->st->nfields == CG_MAX_FIELDS)
        cg_fatal("struct %s has more than %d fields", fc->st->c_name, CG_MAX_FIELDS);
    f = &fc->st->fields[fc->st->nfields++];
    f->name = cx_str(clang_getCursorSpelling(c));
    f->type = convert(fc->api, clang_getCursorType(c));
    return CXVisit_Continue;
}

static struct cg_struct *convert_record(struct cg_api *api, CXType canon, const char *tdname)
{
    CXCursor decl = clang_getTypeDeclaration(canon);
    char *usr = cx_str(clang_getCursorUSR(decl));
    struct cg_struct *st = find_struct(api, usr);
    char *c_name = cx_str(clang_getTypeSpelling(canon)), *tag;
    struct field_ctx fc;

    if (st) {
        free(usr);
        free(c_name);
        return st;
    }
    st = cg_xcalloc(1, sizeof(*st));
    st->usr = usr;
    if (!strncmp(c_name, "const ", 6))
        memmove(c_name, c_name + 6, strlen(c_name + 6) + 1);
    st->c_name = c_name;
    st->wire_ok = -1;
    tag = cx_str(clang_getCursorSpelling(decl));
    if (clang_Cursor_isAnonymous(decl) || !*tag || strchr(tag, ' ')) {
        free(tag);
        tag = cg_xstrdup(tdname ? tdname : "anonymous");
        /*
         * An anonymous struct is only nameable through its typedef; one
         * without a typedef (a nested member) cannot be spelled, so it never
         * travels by itself.
         */
        if (tdname) {
            free(st->c_name);
            st->c_name = cg_xstrdup(tdname);
        } else {
            st->wire_ok = 0;
        }
    }
    st->msg_name = tag;
    st->size = (size_t)clang_Type_getSizeOf(canon);
    st->align = (size_t)clang_Type_getAlignOf(canon);
    st->next = api->structs;
    api->structs = st;
    fc.api = api;
    fc.st = st;
    clang_Type_visitFields(canon, visit_field, &fc);
    return st;
}

static struct cg_type *convert(struct cg_api *api, CXType t)
{
    struct cg_type *ty = cg_xcalloc(1, sizeof(*ty));
    CXType canon;

    ty->spelling = cx_str(clang_getTypeSpelling(t));
    ty->is_const = clang_isConstQualifiedType(t);
    ty->handle = -1;
    /* Walk the typedef chain: the first typedef the spec names a handle wins. */
    CXType cur = t;

    for (;;) {
        if (cur.kind == CXType_Elaborated) {
            cur = clang_Type_getNamedType(cur);
            continue;
        }
        if (cur.kind != CXType_Typedef)
            break;
        char *name = cx_str(clang_getTypedefName(cur));

        if (!ty->typedef_name)
            ty->typedef_name = cg_xstrdup(name);
        if (ty->handle < 0)
            ty->handle = cg_spec_handle(api->spec, name);
        if (cg_spec_devptr(api->spec, name))
            ty->devptr = true;
        free(name);
        cur = clang_getTypedefDeclUnderlyingType(clang_getTypeDeclaration(cur));
    }
    canon = clang_getCanonicalType(t);
    ty->size = clang_Type_getSizeOf(canon) > 0 ? (size_t)clang_Type_getSizeOf(canon) : 0;
    switch (canon.kind) {
    case CXType_Void:
        ty->kind = CG_T_VOID;
        break;
    case CXType_Bool:
        ty->kind = CG_T_BOOL;
        break;
    case CXType_Char_S: case CXType_SChar: case CXType_Char_U: case CXType_UChar:
        ty->is_char = true;
        /* fall through */
    case CXType_Short: case CXType_Int: case CXType_Long: case CXType_LongLong:
    case CXType_UShort: case CXType_UInt: case CXType_ULong: case CXType_ULongLong:
        ty->kind = CG_T_INT;
        ty->is_signed = canon.kind == CXType_Char_S || canon.kind == CXType_SChar ||
                        canon.kind == CXType_Short || canon.kind == CXType_Int ||
                        canon.kind == CXType_Long || canon.kind == CXType_LongLong;
        break;
    case CXType_Float:
        ty->kind = CG_T_FLOAT;
        break;
    case CXType_Double:
        ty->kind = CG_T_DOUBLE;
        break;
    case CXType_Enum:
        ty->kind = CG_T_ENUM;
        ty->is_signed = true;
        break;
    case CXType_Record: {
        CXCursor decl = clang_getTypeDeclaration(canon);

        ty->kind = clang_getCursorKind(decl) == CXCursor_UnionDecl ? CG_T_UNION : CG_T_STRUCT;
        ty->st = convert_record(api, canon, ty->typedef_name);
        break;
    }
    case CXType_Pointer: {
        CXType pt = clang_getPointeeType(cur);
        CXType pc = clang_getCanonicalType(pt);

        if (pc.kind == CXType_FunctionProto || pc.kind == CXType_FunctionNoProto) {
            ty->kind = CG_T_FUNCPTR;
        } else {
            ty->kind = CG_T_POINTER;
            ty->pointee = convert(api, pt);
        }
        break;
    }
    case CXType_ConstantArray:
        ty->kind = CG_T_ARRAY;
        ty->elem = convert(api, clang_getArrayElementType(canon));
        ty->array_len = clang_getArraySize(canon);
        break;
    default:
        ty->kind = CG_T_OTHER;
        break;
    }
    return ty;
}

static char *loc_key(CXCursor c)
{
    CXFile file;
    unsigned line, col;
    char *name, *key;

    clang_getSpellingLocation(clang_getCursorLocation(c), &file, &line, &col, NULL);
    name = cx_str(clang_getFileName(file));
    key = cg_xasprintf("%s:%u:%u", name, line, col);
    free(name);
    return key;
}

static struct cg_func *find_func(struct cg_api *api, const char *name)
{
    for (struct cg_func *f = api->funcs; f; f = f->next)
        if (!strcmp(f->name, name))
            return f;
    return NULL;
}

static enum CXChildVisitResult visit_top(CXCursor c, CXCursor parent, CXClientData data)
{
    struct parse_ctx *pc = data;
    struct cg_api *api = pc->api;
    const char *match = api->spec->match;
    struct cg_func *f;
    char *name, *key;

    (void)parent;
    if (clang_getCursorKind(c) == CXCursor_LinkageSpec)
        return CXChildVisit_Recurse;
    if (clang_getCursorKind(c) != CXCursor_FunctionDecl)
        return CXChildVisit_Continue;
    name = cx_str(clang_getCursorSpelling(c));
    if (strncmp(name, match, strlen(match)) || find_func(api, name)) {
        free(name);
        return CXChildVisit_Continue;
    }
    key = loc_key(c);
    if (!pc->variant) {
        struct loc_map *m = cg_xcalloc(1, sizeof(*m));

        m->key = key;
        m->name = cg_xstrdup(name);
        m->next = pc->locs;
        pc->locs = m;
    }
    f = cg_xcalloc(1, sizeof(*f));
    f->name = name;
    f->base = name;
    if (pc->variant) {
        for (struct loc_map *m = pc->locs; m; m = m->next)
            if (!strcmp(m->key, key))
                f->base = m->name;
        free(key);
    }
    f->ret = convert(api, clang_getCursorResultType(c));
    f->nparams = clang_Cursor_getNumArguments(c);
    if (f->nparams < 0 || f->nparams > CG_MAX_PARAMS)
        cg_fatal("%s: unsupported parameter count %d", name, f->nparams);
    if (clang_Cursor_isVariadic(c))
        f->problem = cg_xstrdup("variadic function");
    for (int i = 0; i < f->nparams; i++) {
        CXCursor a = clang_Cursor_getArgument(c, (unsigned)i);
        struct cg_param *p = &f->params[i];

        p->name = cx_str(clang_getCursorSpelling(a));
        if (!*p->name) {
            free(p->name);
            p->name = cg_xasprintf("arg%d", i);
        }
        /*
         * protoc-c lower-cases field names in the C it emits; naming the
         * parameters of the generated definitions the same way lets one name
         * serve both.
         */
        for (char *q = p->name; *q; q++)
            *q = (char)tolower((unsigned char)*q);
        if (cg_reserved_name(p->name)) {
            char *renamed = cg_xasprintf("%s_", p->name);

            free(p->name);
            p->name = renamed;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(f->params[j].name, p->name))
                cg_fatal("%s: parameters %d and %d differ only in case", name, j, i);
        p->type = convert(api, clang_getCursorType(a));
        p->count_arg = -1;
        p->elem_handle = -1;
    }
    f->next = api->funcs;
    api->funcs = f;
    api->nfuncs++;
    return CXChildVisit_Continue;
}

static int parse_once(CXIndex idx, struct parse_ctx *pc, char **args, int nargs)
{
    const char *argv[64];
    int argc = 0;
    char *src = cg_xstrdup("");
    const struct cg_spec *spec = pc->api->spec;
    struct CXUnsavedFile uf;
    char *def = NULL;
    CXTranslationUnit tu;
    unsigned nd;

    for (int i = 0; i < spec->nheaders; i++) {
        char *more = cg_xasprintf("%s#include <%s>\n", src, spec->headers[i]);

        free(src);
        src = more;
    }
    uf.Filename = "vgpu_codegen_input.c";
    uf.Contents = src;
    uf.Length = (unsigned long)strlen(src);
    argv[argc++] = "-x";
    argv[argc++] = "c";
    argv[argc++] = "-std=gnu11";
    for (int i = 0; i < nargs && argc < 60; i++)
        argv[argc++] = args[i];
    if (pc->variant) {
        def = cg_xasprintf("-D%s", pc->variant);
        argv[argc++] = def;
    }
    tu = clang_parseTranslationUnit(idx, "vgpu_codegen_input.c", argv, argc, &uf, 1,
                                    CXTranslationUnit_SkipFunctionBodies);
    if (!tu)
        cg_fatal("libclang could not parse %s", spec->header);
    nd = clang_getNumDiagnostics(tu);
    for (unsigned i = 0; i < nd; i++) {
        CXDiagnostic d = clang_getDiagnostic(tu, i);

        if (clang_getDiagnosticSeverity(d) >= CXDiagnostic_Error) {
            char *msg = cx_str(clang_formatDiagnostic(d, clang_defaultDiagnosticDisplayOptions()));

            fprintf(stderr, "vgpu-codegen: %s\n", msg);
            free(msg);
            pc->errors++;
        }
        clang_disposeDiagnostic(d);
    }
    clang_visitChildren(clang_getTranslationUnitCursor(tu), visit_top, pc);
    clang_disposeTranslationUnit(tu);
    free(def);
    free(src);
    return pc->errors ? -1 : 0;
}

int cg_parse(struct cg_api *api, char **clang_args, int nargs)
{
    CXIndex idx = clang_createIndex(0, 0);
    struct parse_ctx pc = { .api = api };
    int rc = parse_once(idx, &pc, clang_args, nargs);

    for (int v = 0; rc == 0 && v < api->spec->nvariants; v++) {
        pc.variant = api->spec->variants[v];
        rc = parse_once(idx, &pc, clang_args, nargs);
    }
    clang_disposeIndex(idx);
    /* Hand-written exports no parsed header declares: always manual. */
    for (int i = 0; rc == 0 && i < api->spec->nexports; i++) {
        struct cg_func *f;

        if (find_func(api, api->spec->exports[i]))
            cg_fatal("%s: export %s is declared in a header; give it an fn entry instead",
                     api->spec->path, api->spec->exports[i]);
        f = cg_xcalloc(1, sizeof(*f));
        f->name = api->spec->exports[i];
        f->base = f->name;
        f->ret = cg_xcalloc(1, sizeof(*f->ret));
        f->ret->kind = CG_T_VOID;
        f->ret->handle = -1;
        f->exported_only = true;
        f->next = api->funcs;
        api->funcs = f;
        api->nfuncs++;
    }
    return rc;
}
