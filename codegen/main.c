/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu-codegen: turns an API header, a spec of annotations and an
 * append-only call-id registry into the .proto, the shim's stubs, the
 * server's dispatch table, a linker version script and coverage.txt.
 *
 *   vgpu-codegen --spec S --registry R --out DIR [--regen] [-- clang args]
 *
 * Without --regen, a header function missing from the registry fails the run
 * (call ids never come from header order).  With --regen, missing functions
 * are appended to the registry and listed, and nothing is emitted.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codegen_internal.h"
#include "vgpu/version.h"

static int cmp_id(const void *a, const void *b)
{
    const struct cg_func *fa = *(struct cg_func *const *)a, *fb = *(struct cg_func *const *)b;

    return fa->id < fb->id ? -1 : fa->id > fb->id;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Order functions by call id; collect the names the registry lacks. */
static int assign_ids(struct cg_api *api, struct cg_registry *reg, char ***missing)
{
    struct cg_func **v = cg_xcalloc((size_t)api->nfuncs, sizeof(*v));
    char **miss = cg_xcalloc((size_t)api->nfuncs, sizeof(*miss));
    int n = 0, nmiss = 0;

    for (struct cg_func *f = api->funcs; f; f = f->next) {
        int r = cg_registry_find(reg, f->name);

        if (r < 0)
            miss[nmiss++] = f->name;
        else
            f->id = api->spec->id_base + reg->rows[r].id;
        v[n++] = f;
    }
    qsort(v, (size_t)n, sizeof(*v), cmp_id);
    for (int i = 0; i < n; i++)
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
    api->funcs = n ? v[0] : NULL;
    free(v);
    qsort(miss, (size_t)nmiss, sizeof(*miss), cmp_name);
    *missing = miss;
    return nmiss;
}

static const char *pkind_name(enum cg_pkind k)
{
    static const char *names[] = { "value", "handle", "devptr", "in", "out", "inout", "string" };

    return names[k];
}

/*
 * The call-table hash covers what guest and host must agree on: every id,
 * name, state and the wire shape of every parameter.  Each call's share of
 * it is kept too (its shape, folded to 32 bits and never 0): a guest and a
 * server of different releases serve the calls whose shapes agree
 * (docs/protocol.md §1).
 */
static void compute_hash(struct cg_api *api)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    h = cg_fnv1a(h, api->spec->package);
    for (struct cg_func *f = api->funcs; f; f = f->next) {
        char *line = cg_xasprintf("|%u %s %s %d %d %d", f->id, f->name, cg_state_name(f->state),
                                  f->async, f->cached, f->nparams);
        uint64_t fh = cg_fnv1a(cg_fnv1a(0xcbf29ce484222325ULL, api->spec->package), line);

        h = cg_fnv1a(h, line);
        free(line);
        for (int i = 0; f->state == CG_F_GENERATED && i < f->nparams; i++) {
            const struct cg_param *p = &f->params[i];

            line = cg_xasprintf(";%s %s %s %d %lld %d %d %d %d", p->name, pkind_name(p->kind),
                                p->type->spelling, p->count, p->count_const, p->count_arg,
                                p->bytes, p->elem_devptr, p->elem_handle);
            h = cg_fnv1a(h, line);
            fh = cg_fnv1a(fh, line);
            free(line);
        }
        f->shape = (uint32_t)(fh ^ (fh >> 32));
        if (!f->shape)
            f->shape = 1;
    }
    api->hash = h;
}

static void usage(void)
{
    fprintf(stderr, "usage: vgpu-codegen --spec FILE --registry FILE --out DIR [--regen] "
                    "[-- CLANG-ARGS...]\n       vgpu-codegen --version\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "spec", required_argument, NULL, 's' },
        { "registry", required_argument, NULL, 'r' },
        { "out", required_argument, NULL, 'o' },
        { "regen", no_argument, NULL, 'g' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *spec_path = NULL, *reg_path = NULL, *out = NULL;
    bool regen = false;
    struct cg_api api = { 0 };
    struct cg_registry *reg;
    char **missing;
    int c, nmiss;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': spec_path = optarg; break;
        case 'r': reg_path = optarg; break;
        case 'o': out = optarg; break;
        case 'g': regen = true; break;
        case 'V': printf("vgpu-codegen %s\n", VGPU_VERSION); return 0;
        default: usage();
        }
    }
    if (!spec_path || !reg_path || (!out && !regen))
        usage();
    api.spec = cg_spec_load(spec_path);
    reg = cg_registry_load(reg_path);
    if (cg_parse(&api, argv + optind, argc - optind) < 0)
        cg_fatal("%s did not parse; check the include path (-I) after '--'", api.spec->header);
    if (api.nfuncs == 0)
        cg_fatal("no function matching '%s*' in %s", api.spec->match, api.spec->header);
    nmiss = assign_ids(&api, reg, &missing);
    if (regen) {
        if (nmiss && cg_registry_append(reg, missing, nmiss) < 0)
            cg_fatal("cannot append to %s", reg_path);
        printf("%s: %d function(s) in %s, %d new\n", reg_path, api.nfuncs, api.spec->header,
               nmiss);
        for (int i = 0; i < nmiss; i++)
            printf("  new: %s\n", missing[i]);
        if (cg_classify(&api) < 0) {
            printf("the functions above marked 'need a spec entry' need one in %s\n",
                   spec_path);
            return 1;
        }
        return 0;
    }
    if (nmiss) {
        fprintf(stderr, "vgpu-codegen: %d function(s) of %s have no call id in %s:\n", nmiss,
                api.spec->header, reg_path);
        for (int i = 0; i < nmiss; i++)
            fprintf(stderr, "  %s\n", missing[i]);
        fprintf(stderr, "vgpu-codegen: run 'cmake --build <build> --target regen' to append "
                        "them, then give each a spec entry if it needs one\n");
        return 1;
    }
    if (cg_classify(&api) < 0)
        return 1;
    for (struct cg_func *f = api.funcs; f; f = f->next) {
        if (f->state == CG_F_GENERATED)
            api.n_generated++;
        else if (f->state == CG_F_MANUAL)
            api.n_manual++;
        else
            api.n_unsupported++;
    }
    compute_hash(&api);
    mkdir(out, 0755);
    if (cg_emit_proto(&api, out) || cg_emit_calltable(&api, out) || cg_emit_shim(&api, out) ||
        cg_emit_server(&api, out) || cg_emit_mapfile(&api, out) || cg_emit_coverage(&api, out))
        cg_fatal("emitting into %s failed", out);
    printf("remoted: %d generated, %d manual, %d unsupported of %d functions\n",
           api.n_generated, api.n_manual, api.n_unsupported, api.nfuncs);
    return 0;
}
