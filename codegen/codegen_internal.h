/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-codegen: shared model between the libclang front end (parse.c), the
 * spec/registry reader (spec.c), the classifier (classify.c) and the emitters
 * (emit_*.c).  Nothing here knows about CUDA: every API-specific fact comes
 * from the spec file.
 */
#ifndef VGPU_CODEGEN_INTERNAL_H
#define VGPU_CODEGEN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CG_MAX_PARAMS 32
#define CG_MAX_FIELDS 128

/* C types as the generator sees them, canonicalised by libclang. */
enum cg_tkind {
    CG_T_VOID,
    CG_T_BOOL,
    CG_T_INT,      /* any integer; size and signedness below */
    CG_T_FLOAT,
    CG_T_DOUBLE,
    CG_T_ENUM,
    CG_T_STRUCT,
    CG_T_UNION,
    CG_T_POINTER,
    CG_T_ARRAY,    /* fixed-size array inside a struct */
    CG_T_FUNCPTR,
    CG_T_OTHER,
};

struct cg_struct;

struct cg_type {
    enum cg_tkind kind;
    size_t size;
    bool is_signed;
    bool is_const;            /* this type itself is const-qualified */
    bool is_char;             /* char / signed char / unsigned char */
    char *spelling;           /* as written, e.g. "cudaStream_t" */
    char *typedef_name;       /* outermost typedef name, or NULL */
    int handle;               /* index into spec handles, or -1 */
    bool devptr;              /* a typedef the spec names a device address (devptr_type) */
    struct cg_type *pointee;  /* CG_T_POINTER */
    struct cg_type *elem;     /* CG_T_ARRAY */
    long long array_len;      /* CG_T_ARRAY */
    struct cg_struct *st;     /* CG_T_STRUCT / CG_T_UNION */
};

struct cg_field {
    char *name;
    struct cg_type *type;
};

struct cg_struct {
    char *usr;             /* libclang USR of the declaration: identity */
    char *c_name;          /* spelling usable in C, e.g. "struct cudaDeviceProp" */
    char *msg_name;        /* proto message name, e.g. "cudaDeviceProp" */
    size_t size, align;
    int nfields;
    struct cg_field fields[CG_MAX_FIELDS];
    int wire_ok;           /* -1 unknown, 0 no, 1 yes (scalars, arrays, nested ok structs) */
    bool has_pointer;      /* some field (recursively) is a pointer */
    bool used;             /* referenced by a generated function */
    struct cg_struct *next;
};

/* How one parameter travels. */
enum cg_pkind {
    CG_P_VALUE,     /* scalar, enum or struct by value */
    CG_P_HANDLE,    /* opaque handle by value, checked by the server */
    CG_P_DEVPTR,    /* device address by value, checked by the server */
    CG_P_IN,        /* pointer to count elements the callee reads */
    CG_P_OUT,       /* pointer to count elements the callee writes */
    CG_P_INOUT,
    CG_P_STRING,    /* NUL-terminated input string */
};

enum cg_count {
    CG_C_ONE,       /* sizeof the pointee: one element */
    CG_C_CONST,     /* a constant number of elements */
    CG_C_ARG,       /* the value of another (scalar) parameter */
};

/*
 * The extent of a device span, from the spec's size=, pitch=, width= and
 * height= attributes: a term is a constant or another integer parameter, in
 * bytes or times a constant element size (PARAM*N).
 */
enum cg_extent {
    CG_E_NONE,      /* a bare address: the server checks it lies inside an allocation */
    CG_E_1D,        /* size bytes from the address */
    CG_E_2D,        /* height rows of width bytes, pitch apart */
};

struct cg_term {
    int arg;                   /* parameter index, or -1 for a constant */
    long long value;           /* the constant, when arg < 0 */
    long long mult;            /* element size in bytes (1 unless PARAM*N) */
};

struct cg_param {
    char *name;
    struct cg_type *type;
    enum cg_pkind kind;
    struct cg_type *elem;      /* element type for IN/OUT/INOUT */
    enum cg_count count;
    long long count_const;
    int count_arg;             /* parameter index */
    bool bytes;                /* elements are raw bytes in a payload segment */
    bool elem_devptr;          /* elements are device addresses */
    int elem_handle;           /* elements are handles of this kind, or -1 */
    enum cg_extent extent;     /* CG_P_DEVPTR: what the server range-checks */
    struct cg_term ext_size, ext_pitch, ext_width, ext_height;
};

enum cg_fstate { CG_F_GENERATED, CG_F_MANUAL, CG_F_UNSUPPORTED };

struct cg_func {
    char *name;               /* exported name, e.g. cudaMemcpy_ptds */
    char *base;               /* base name (== name unless a variant) */
    struct cg_type *ret;
    int nparams;
    struct cg_param params[CG_MAX_PARAMS];
    enum cg_fstate state;
    bool async;
    bool cached;
    bool cached_ctx;          /* cached per current context (may take a context handle) */
    bool ctx_change;          /* drops the per-context answers */
    bool work;                /* puts work on the GPU: the server schedules it */
    char *reason;             /* for CG_F_UNSUPPORTED */
    char *problem;            /* why defaults failed, when no spec entry */
    uint32_t id;
    uint32_t shape;           /* hash of what guest and host must agree on for this call (never 0) */
    bool returns_error;       /* return type is the spec's error type */
    bool exported_only;       /* a spec 'export': hand-written, in no header */
    struct cg_func *next;
};

/* One annotation line of the spec for a parameter. */
struct cg_pannot {
    char *param;
    char *dir;                /* in out inout value devptr string handle */
    char *handle;             /* for dir handle / elements of handle kind */
    char *count;              /* NULL, digits or a parameter name */
    bool bytes;
    bool devptr;
    char *size, *pitch, *width, *height;   /* extent of a devptr, or NULL */
};

struct cg_entry {
    char *pattern;            /* exact name, or prefix ending in '*' */
    bool glob;
    enum cg_fstate state;
    bool have_state;
    bool async;
    bool cached;
    bool cached_ctx;
    bool ctx_change;
    bool work;
    char *reason;
    int nannot;
    struct cg_pannot annot[CG_MAX_PARAMS];
    int line;
    bool matched;
    struct cg_entry *next;
};

struct cg_handle {
    char *type_name;          /* typedef name, e.g. cudaStream_t */
    int kind;                 /* index into cg_spec.kinds */
};

struct cg_spec {
    char *path;
    const char *name;         /* file name of path, for banners */
    char *api;                /* short name, e.g. cudart */
    char *package;            /* proto package, e.g. vgpu.cudart */
    char *header;             /* first header, used in messages */
    int nheaders;
    char *headers[16];        /* headers to include, in order */
    int nexports;
    char *exports[64];        /* hand-written exports declared in no parsed header */
    char *match;              /* name prefix of the API's functions */
    char *error_type;         /* typedef name of the status return type */
    char *version_node;       /* ELF version node of exported names */
    int nvariants;
    char *variants[8];        /* macros that produce variant names */
    int nhandles;
    struct cg_handle handles[64];
    int nkinds;
    char *kinds[64];          /* distinct handle kinds, e.g. stream */
    int ndevptr_types;
    char *devptr_types[8];    /* typedefs whose values are device addresses */
    uint32_t id_base;         /* added to every registry id on the wire (one range per API) */
    struct cg_entry *entries;
};

struct cg_registry {
    char *path;
    int n, cap;
    struct { uint32_t id; char *name; } *rows;
    uint32_t next_id;
};

struct cg_api {
    struct cg_spec *spec;
    struct cg_func *funcs;      /* in call-id order after assign_ids */
    int nfuncs;
    struct cg_struct *structs;
    uint64_t hash;
    int n_generated, n_manual, n_unsupported;
};

/* util.c */
void *cg_xcalloc(size_t n, size_t size);
char *cg_xstrdup(const char *s);
char *cg_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
char *cg_proto_lower(const char *s);   /* protoc-c's CamelToLower */
char *cg_proto_camel(const char *s);   /* protoc-c's ToCamel */
char *cg_upper(const char *s);
uint64_t cg_fnv1a(uint64_t h, const char *s);
bool cg_reserved_name(const char *name);
char *cg_field_name(const char *name);
const char *cg_state_name(enum cg_fstate s);
FILE *cg_open_out(const char *dir, const char *name);

/* spec.c */
struct cg_spec *cg_spec_load(const char *path);
struct cg_entry *cg_spec_find(struct cg_spec *spec, const char *name, const char *base);
/* Handle kind of a typedef name, or -1. */
int cg_spec_handle(const struct cg_spec *spec, const char *typedef_name);
/* Is typedef_name a device-address type (devptr_type)? */
bool cg_spec_devptr(const struct cg_spec *spec, const char *typedef_name);
/* Handle kind by its short name, or -1. */
int cg_spec_kind(const struct cg_spec *spec, const char *kind);
struct cg_registry *cg_registry_load(const char *path);
int cg_registry_find(const struct cg_registry *reg, const char *name);
int cg_registry_append(struct cg_registry *reg, char **names, int n);

/* parse.c: fills api->funcs (unordered) from the header */
int cg_parse(struct cg_api *api, char **clang_args, int nargs);

/* classify.c */
int cg_classify(struct cg_api *api);
const char *cg_proto_scalar(const struct cg_type *t);
bool cg_type_wire_ok(struct cg_type *t);

/* emitters */
int cg_emit_proto(const struct cg_api *api, const char *dir);
int cg_emit_calltable(const struct cg_api *api, const char *dir);
int cg_emit_shim(const struct cg_api *api, const char *dir);
int cg_emit_server(const struct cg_api *api, const char *dir);
int cg_emit_coverage(const struct cg_api *api, const char *dir);
int cg_emit_mapfile(const struct cg_api *api, const char *dir);

#endif
