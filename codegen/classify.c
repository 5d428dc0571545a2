/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deciding how each parameter travels.  Spec annotations win; otherwise the
 * defaults below apply, and a function they cannot decide (void pointers,
 * pointers to pointers, function pointers, unions, input structs holding
 * addresses) is reported as needing a spec entry, so nothing is guessed.
 *
 * Defaults:
 *   scalar, enum, wire-safe struct by value  -> value
 *   a typedef the spec names as a handle      -> handle (checked by the server)
 *   const char *                              -> input string
 *   const T * (T complete, wire-safe)         -> input, one element
 *   T * (T complete, wire-safe, incl. handle) -> output, one element
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codegen_internal.h"

static bool scalar(const struct cg_type *t)
{
    return t->kind == CG_T_BOOL || t->kind == CG_T_INT || t->kind == CG_T_FLOAT ||
           t->kind == CG_T_DOUBLE || t->kind == CG_T_ENUM;
}

const char *cg_proto_scalar(const struct cg_type *t)
{
    if (t->handle >= 0 || t->kind == CG_T_POINTER || t->kind == CG_T_FUNCPTR)
        return "uint64";
    switch (t->kind) {
    case CG_T_BOOL:
        return "bool";
    case CG_T_ENUM:
        return "int32";
    case CG_T_FLOAT:
        return "float";
    case CG_T_DOUBLE:
        return "double";
    case CG_T_INT:
        if (t->is_signed)
            return t->size <= 4 ? "int32" : "int64";
        return t->size <= 4 ? "uint32" : "uint64";
    default:
        return NULL;
    }
}

static bool struct_wire_ok(struct cg_struct *st);

/*
 * A type that can be described field by field in protobuf.  Pointers inside
 * structs travel as plain 64-bit values and mark the struct, because a
 * server must never dereference an address a guest gave it.
 */
bool cg_type_wire_ok(struct cg_type *t)
{
    if (t->handle >= 0 || scalar(t))
        return true;
    switch (t->kind) {
    case CG_T_STRUCT:
        return struct_wire_ok(t->st);
    case CG_T_ARRAY:
        return t->elem->kind != CG_T_ARRAY && t->array_len > 0 && cg_type_wire_ok(t->elem);
    default:
        return false;
    }
}

static bool struct_wire_ok(struct cg_struct *st)
{
    if (st->wire_ok >= 0)
        return st->wire_ok;
    st->wire_ok = 0;               /* breaks cycles */
    if (st->nfields == 0)
        return false;
    for (int i = 0; i < st->nfields; i++) {
        struct cg_type *ft = st->fields[i].type;

        if (ft->handle >= 0 || ft->devptr || ft->kind == CG_T_POINTER || ft->kind == CG_T_FUNCPTR) {
            st->has_pointer = true;
            continue;
        }
        if (!cg_type_wire_ok(ft))
            return false;
        if (ft->kind == CG_T_STRUCT && ft->st->has_pointer)
            st->has_pointer = true;
        if (ft->kind == CG_T_ARRAY && ft->elem->kind == CG_T_STRUCT && ft->elem->st->has_pointer)
            st->has_pointer = true;
    }
    st->wire_ok = 1;
    return true;
}

static bool holds_addresses(const struct cg_type *t)
{
    return t->kind == CG_T_STRUCT && t->st->has_pointer;
}

/* What may travel as its raw bytes though protobuf cannot spell it (an unnamed member struct):
 * numbers all through, no handle, address or pointer. */
static bool raw_ok(const struct cg_type *t)
{
    if (t->handle >= 0 || t->devptr)
        return false;
    if (scalar(t))
        return true;
    if (t->kind == CG_T_ARRAY)
        return t->array_len > 0 && raw_ok(t->elem);
    if (t->kind != CG_T_STRUCT || t->st->nfields == 0)
        return false;
    for (int i = 0; i < t->st->nfields; i++)
        if (!raw_ok(t->st->fields[i].type))
            return false;
    return true;
}

static void mark_used(struct cg_type *t)
{
    if (t->kind == CG_T_ARRAY)
        mark_used(t->elem);
    if (t->kind != CG_T_STRUCT || t->st->used)
        return;
    t->st->used = true;
    for (int i = 0; i < t->st->nfields; i++)
        mark_used(t->st->fields[i].type);
}

static char *param_default(struct cg_api *api, struct cg_func *f, struct cg_param *p)
{
    struct cg_type *t = p->type, *pt = t->pointee;

    (void)api;
    if (t->handle >= 0) {
        p->kind = CG_P_HANDLE;
        return NULL;
    }
    if (t->devptr) {
        p->kind = CG_P_DEVPTR;
        return NULL;
    }
    if (scalar(t)) {
        p->kind = CG_P_VALUE;
        return NULL;
    }
    if (t->kind == CG_T_STRUCT) {
        if (!cg_type_wire_ok(t) || holds_addresses(t))
            return cg_xasprintf("%s: struct by value holding addresses or unions", p->name);
        p->kind = CG_P_VALUE;
        return NULL;
    }
    if (t->kind == CG_T_FUNCPTR)
        return cg_xasprintf("%s: function pointer", p->name);
    if (t->kind != CG_T_POINTER)
        return cg_xasprintf("%s: type %s cannot travel", p->name, t->spelling);
    if (pt->is_char && pt->is_const) {
        p->kind = CG_P_STRING;
        return NULL;
    }
    if (pt->kind == CG_T_VOID)
        return cg_xasprintf("%s: void pointer (say devptr, or in/out with bytes,count=)",
                            p->name);
    if (pt->handle < 0 && (pt->kind == CG_T_POINTER || pt->kind == CG_T_FUNCPTR))
        return cg_xasprintf("%s: pointer to pointer", p->name);
    if (pt->is_char)
        return cg_xasprintf("%s: char buffer without a length", p->name);
    if (!cg_type_wire_ok(pt))
        return cg_xasprintf("%s: pointee %s cannot travel", p->name, pt->spelling);
    p->elem = pt;
    p->count = CG_C_ONE;
    p->elem_handle = pt->handle;
    if (pt->devptr && pt->is_const)
        return cg_xasprintf("%s: device addresses as input (say devptr, with an extent)", p->name);
    if (pt->is_const) {
        if (holds_addresses(pt))
            return cg_xasprintf("%s: input struct %s holds addresses", p->name,
                                pt->spelling);
        p->kind = CG_P_IN;
    } else {
        p->kind = CG_P_OUT;
    }
    (void)f;
    return NULL;
}

static int param_index(const struct cg_func *f, const char *name)
{
    for (int i = 0; i < f->nparams; i++)
        if (!strcasecmp(f->params[i].name, name))
            return i;
    return -1;
}

static char *param_annotated(struct cg_api *api, struct cg_func *f, struct cg_param *p,
                             const struct cg_pannot *a)
{
    struct cg_type *t = p->type;
    const char *d = a->dir;

    if (a->handle) {
        p->elem_handle = cg_spec_handle(api->spec, a->handle);
        if (p->elem_handle < 0)
            p->elem_handle = cg_spec_kind(api->spec, a->handle);
        if (p->elem_handle < 0)
            return cg_xasprintf("%s: unknown handle kind %s", p->name, a->handle);
    }
    if (!strcmp(d, "value")) {
        if (!scalar(t) && !(t->kind == CG_T_STRUCT && cg_type_wire_ok(t)))
            return cg_xasprintf("%s: 'value' needs a scalar or a plain struct", p->name);
        p->kind = CG_P_VALUE;
    } else if (!strcmp(d, "handle")) {
        if (t->kind != CG_T_POINTER && t->kind != CG_T_INT)
            return cg_xasprintf("%s: a handle must be a pointer or an integer", p->name);
        p->kind = CG_P_HANDLE;
        p->type->handle = p->elem_handle;
    } else if (!strcmp(d, "devptr")) {
        if (t->kind != CG_T_POINTER && t->kind != CG_T_INT)
            return cg_xasprintf("%s: a device address must be a pointer or an integer",
                                p->name);
        p->kind = CG_P_DEVPTR;
    } else if (!strcmp(d, "string")) {
        if (t->kind != CG_T_POINTER || !t->pointee->is_char)
            return cg_xasprintf("%s: 'string' needs a char pointer", p->name);
        p->kind = CG_P_STRING;
    } else {
        if (t->kind != CG_T_POINTER)
            return cg_xasprintf("%s: '%s' needs a pointer", p->name, d);
        p->kind = !strcmp(d, "in") ? CG_P_IN : !strcmp(d, "out") ? CG_P_OUT : CG_P_INOUT;
        p->elem = t->pointee;
        p->bytes = a->bytes;
        p->elem_devptr = a->devptr;
        if (p->elem_handle < 0)
            p->elem_handle = t->pointee->handle;
        if (p->bytes && p->elem->kind != CG_T_VOID && !scalar(p->elem) &&
            !cg_type_wire_ok(p->elem) && !raw_ok(p->elem))
            return cg_xasprintf("%s: bytes of %s", p->name, p->elem->spelling);
        if (!p->bytes && !p->elem_devptr && p->elem_handle < 0) {
            if (p->elem->kind == CG_T_VOID)
                return cg_xasprintf("%s: void elements need 'bytes'", p->name);
            if (!cg_type_wire_ok(p->elem))
                return cg_xasprintf("%s: elements of type %s cannot travel", p->name,
                                    p->elem->spelling);
            if (p->kind != CG_P_OUT && holds_addresses(p->elem))
                return cg_xasprintf("%s: input struct %s holds addresses", p->name,
                                    p->elem->spelling);
        }
        if (p->elem_devptr && p->elem->kind != CG_T_POINTER && p->elem->kind != CG_T_INT)
            return cg_xasprintf("%s: device-address elements must be pointers", p->name);
    }
    p->count = CG_C_ONE;
    if (a->count) {
        char *end;
        long long n = strtoll(a->count, &end, 10);

        if (!*end) {
            if (n <= 0 || n > 1 << 20)
                return cg_xasprintf("%s: count %s out of range", p->name, a->count);
            p->count = CG_C_CONST;
            p->count_const = n;
        } else {
            int j = param_index(f, a->count);

            if (j < 0)
                return cg_xasprintf("%s: count names no parameter '%s'", p->name, a->count);
            if (f->params[j].type->kind != CG_T_INT)
                return cg_xasprintf("%s: count %s is not an integer", p->name, a->count);
            p->count = CG_C_ARG;
            p->count_arg = j;
        }
    } else if (p->bytes && p->elem->kind == CG_T_VOID) {
        return cg_xasprintf("%s: bytes of void need count=", p->name);
    }
    return NULL;
}

/* "PARAM", "PARAM*N" or (when constants are allowed) "N": one extent term. */
static char *parse_term(const struct cg_func *f, const struct cg_param *p, const char *what,
                        const char *text, bool allow_const, struct cg_term *t)
{
    char *name = cg_xstrdup(text), *star = strchr(name, '*'), *end;
    char *why = NULL;
    long long n;
    int j;

    t->arg = -1;
    t->value = 0;
    t->mult = 1;
    if (star) {
        *star = '\0';
        t->mult = strtoll(star + 1, &end, 10);
        if (*end || star[1] == '\0' || t->mult <= 0 || t->mult > 1 << 20) {
            why = cg_xasprintf("%s: %s=%s: element size out of range", p->name, what, text);
            goto out;
        }
    }
    n = strtoll(name, &end, 10);
    if (!*end && *name) {
        if (!allow_const || star || n < 0 || n > 1LL << 40)
            why = cg_xasprintf("%s: %s=%s must name an integer parameter", p->name, what, text);
        t->value = n;
        goto out;
    }
    j = param_index(f, name);
    if (j < 0)
        why = cg_xasprintf("%s: %s names no parameter '%s'", p->name, what, name);
    else if (f->params[j].type->kind != CG_T_INT || f->params[j].kind != CG_P_VALUE)
        why = cg_xasprintf("%s: %s %s is not an integer passed by value", p->name, what, name);
    else
        t->arg = j;
out:
    free(name);
    return why;
}

/* A device address's extent from its annotation: size=, or pitch=,width=,height=. */
static char *extent_annotated(const struct cg_func *f, struct cg_param *p,
                              const struct cg_pannot *a)
{
    bool two_d = a->pitch || a->width || a->height;
    char *why;

    if (!a->size && !two_d)
        return NULL;
    if (p->kind != CG_P_DEVPTR)
        return cg_xasprintf("%s: size=, pitch=, width= and height= belong to a devptr", p->name);
    if (a->size && two_d)
        return cg_xasprintf("%s: an extent is size= or pitch=,width=,height=, not both", p->name);
    if (a->size) {
        p->extent = CG_E_1D;
        return parse_term(f, p, "size", a->size, true, &p->ext_size);
    }
    if (!a->pitch || !a->width || !a->height)
        return cg_xasprintf("%s: a 2D extent needs pitch=, width= and height=", p->name);
    p->extent = CG_E_2D;
    if ((why = parse_term(f, p, "pitch", a->pitch, false, &p->ext_pitch)) ||
        (why = parse_term(f, p, "width", a->width, false, &p->ext_width)) ||
        (why = parse_term(f, p, "height", a->height, false, &p->ext_height)))
        return why;
    if (p->ext_pitch.mult != 1 || p->ext_height.mult != 1)
        return cg_xasprintf("%s: only width= takes an element size", p->name);
    return NULL;
}

/* An integer that says how many bytes or elements: size_t, or 64-bit unsigned. */
static bool size_like(const struct cg_param *p)
{
    const struct cg_type *t = p->type;

    return p->kind == CG_P_VALUE && t->kind == CG_T_INT &&
           ((t->typedef_name && !strcmp(t->typedef_name, "size_t")) ||
            (!t->is_signed && t->size == 8));
}

/*
 * A device address followed by a size is almost certainly the start of a
 * span the call touches: without an extent the server could check only its
 * first byte, so the spec must say how far it reaches.
 */
static char *extent_missing(const struct cg_func *f)
{
    for (int i = 0; i < f->nparams; i++) {
        const struct cg_param *p = &f->params[i];

        if (p->kind != CG_P_DEVPTR || p->extent != CG_E_NONE)
            continue;
        for (int j = i + 1; j < f->nparams; j++)
            if (size_like(&f->params[j]))
                return cg_xasprintf("%s: device address followed by size %s but no extent "
                                    "(say %s:devptr,size=PARAM or pitch=,width=,height=)",
                                    p->name, f->params[j].name, p->name);
    }
    return NULL;
}

/* Handle types a per-context answer may be keyed by: their objects end with their context or
 * with an unload, calls the spec marks changes_contexts. */
static bool ctx_lived_handle(const char *type)
{
    static const char *const kinds[] = { "CUcontext", "CUmodule", "CUlibrary", "CUkernel",
                                         "CUfunction" };

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!strcmp(type, kinds[i]))
            return true;
    return false;
}

static char *classify_func(struct cg_api *api, struct cg_func *f, struct cg_entry *e)
{
    const struct cg_spec *spec = api->spec;
    struct cg_type *r = f->ret;
    char *why;

    if (f->problem)
        return f->problem;
    f->returns_error = r->typedef_name && !strcmp(r->typedef_name, spec->error_type);
    if (!f->returns_error && r->kind != CG_T_VOID && !(r->kind == CG_T_INT || r->kind == CG_T_ENUM))
        return cg_xasprintf("returns %s", r->spelling);
    if (e) {
        for (int k = 0; k < e->nannot; k++)
            if (param_index(f, e->annot[k].param) < 0)
                cg_fatal("%s:%d: %s has no parameter '%s'", spec->path, e->line, f->name,
                         e->annot[k].param);
    }
    for (int i = 0; i < f->nparams; i++) {
        struct cg_param *p = &f->params[i];
        const struct cg_pannot *a = NULL;

        for (int k = 0; e && k < e->nannot; k++)
            if (!strcasecmp(e->annot[k].param, p->name))
                a = &e->annot[k];
        why = a ? param_annotated(api, f, p, a) : param_default(api, f, p);
        if (why)
            return why;
    }
    for (int k = 0; e && k < e->nannot; k++) {
        why = extent_annotated(f, &f->params[param_index(f, e->annot[k].param)], &e->annot[k]);
        if (why)
            return why;
    }
    if ((why = extent_missing(f)))
        return why;
    for (int i = 0; i < f->nparams; i++) {
        struct cg_param *p = &f->params[i];

        if (f->async && (p->kind == CG_P_OUT || p->kind == CG_P_INOUT))
            cg_fatal("%s:%d: %s is marked async but has output %s", spec->path,
                     e ? e->line : 0, f->name, p->name);
        if (f->cached && (p->bytes || p->kind == CG_P_HANDLE || p->kind == CG_P_DEVPTR))
            cg_fatal("%s:%d: %s is marked cached but %s is a handle, an address or bulk data",
                     spec->path, e ? e->line : 0, f->name, p->name);
        /* handles of objects that end only with a call marked changes_contexts (a context
         * destroyed, a module or library unloaded), so a value reused later finds no answer */
        if (f->cached_ctx && (p->bytes || p->kind == CG_P_DEVPTR ||
                              (p->kind == CG_P_HANDLE && !ctx_lived_handle(p->type->spelling))))
            cg_fatal("%s:%d: %s is cached per context but %s is an address, bulk data or a "
                     "handle other than a context, module, library, kernel or function",
                     spec->path, e ? e->line : 0, f->name, p->name);
        if (p->kind == CG_P_VALUE)
            mark_used(p->type);
        if (p->elem && !p->bytes)
            mark_used(p->elem);
    }
    return NULL;
}

static int cmp_func_name(const void *a, const void *b)
{
    const struct cg_func *fa = *(struct cg_func *const *)a, *fb = *(struct cg_func *const *)b;

    return strcmp(fa->name, fb->name);
}

int cg_classify(struct cg_api *api)
{
    int bad = 0;

    for (struct cg_func *f = api->funcs; f; f = f->next) {
        struct cg_entry *e = cg_spec_find(api->spec, f->name, f->base);
        char *why;

        f->state = CG_F_GENERATED;
        if (f->exported_only) {
            f->state = CG_F_MANUAL;
            continue;
        }
        if (e) {
            e->matched = true;
            f->async = e->async;
            f->cached = e->cached;
            f->cached_ctx = e->cached_ctx;
            f->ctx_change = e->ctx_change;
            f->work = e->work;
            if (e->have_state) {
                f->state = e->state;
                f->reason = e->reason;
                if (f->state != CG_F_GENERATED)
                    continue;
            }
        }
        why = classify_func(api, f, e);
        if (why) {
            f->problem = why;
            bad++;
        }
    }
    if (bad) {
        struct cg_func **v = cg_xcalloc((size_t)api->nfuncs, sizeof(*v));
        int n = 0;

        for (struct cg_func *f = api->funcs; f; f = f->next)
            if (f->problem)
                v[n++] = f;
        qsort(v, (size_t)n, sizeof(*v), cmp_func_name);
        fprintf(stderr, "vgpu-codegen: %d function(s) of %s need a spec entry in %s "
                        "(annotate, or mark manual or unsupported: REASON):\n",
                n, api->spec->header, api->spec->path);
        for (int i = 0; i < n; i++)
            fprintf(stderr, "  %s: %s\n", v[i]->name, v[i]->problem);
        free(v);
        return -1;
    }
    for (struct cg_entry *e = api->spec->entries; e; e = e->next)
        if (!e->matched && !e->glob)
            cg_fatal("%s:%d: no function '%s' in %s (remove or fix the entry)",
                     api->spec->path, e->line, e->pattern, api->spec->header);
    return 0;
}
