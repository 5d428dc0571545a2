/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Reading the two committed inputs of vgpu-codegen: the spec (annotations,
 * see docs/codegen.md for the grammar) and the append-only call-id registry.
 * Both are line-oriented; '#' starts a comment.  Errors name file and line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codegen_internal.h"

static char *trim(char *s)
{
    char *e;

    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static char *next_word(char **cursor)
{
    char *s = *cursor, *w;

    while (isspace((unsigned char)*s))
        s++;
    if (!*s) {
        *cursor = s;
        return NULL;
    }
    w = s;
    while (*s && !isspace((unsigned char)*s))
        s++;
    if (*s)
        *s++ = '\0';
    *cursor = s;
    return w;
}

/*
 * "name:dir[,attr...]" where attr is count=X, bytes, devptr, handle=K, or the
 * extent of a devptr: size=X, or pitch=X,width=X,height=X.
 */
static void parse_annot(struct cg_spec *spec, int line, struct cg_pannot *a, char *word)
{
    char *colon = strchr(word, ':');
    char *tok, *save = NULL;

    if (!colon)
        cg_fatal("%s:%d: parameter annotation '%s' needs NAME:DIRECTION", spec->path,
                 line, word);
    *colon = '\0';
    a->param = cg_xstrdup(word);
    for (tok = strtok_r(colon + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!a->dir && (!strcmp(tok, "in") || !strcmp(tok, "out") || !strcmp(tok, "inout") ||
                        !strcmp(tok, "value") || !strcmp(tok, "devptr") ||
                        !strcmp(tok, "string"))) {
            a->dir = cg_xstrdup(tok);
        } else if (!strncmp(tok, "handle=", 7)) {
            a->handle = cg_xstrdup(tok + 7);
            if (!a->dir)
                a->dir = cg_xstrdup("handle");
        } else if (!strncmp(tok, "count=", 6)) {
            a->count = cg_xstrdup(tok + 6);
        } else if (!strncmp(tok, "size=", 5)) {
            a->size = cg_xstrdup(tok + 5);
        } else if (!strncmp(tok, "pitch=", 6)) {
            a->pitch = cg_xstrdup(tok + 6);
        } else if (!strncmp(tok, "width=", 6)) {
            a->width = cg_xstrdup(tok + 6);
        } else if (!strncmp(tok, "height=", 7)) {
            a->height = cg_xstrdup(tok + 7);
        } else if (!strcmp(tok, "bytes")) {
            a->bytes = true;
        } else if (!strcmp(tok, "devptr")) {
            a->devptr = true;
        } else {
            cg_fatal("%s:%d: unknown annotation '%s' for parameter %s", spec->path, line,
                     tok, a->param);
        }
    }
    if (!a->dir)
        cg_fatal("%s:%d: parameter %s has no direction", spec->path, line, a->param);
}

static void parse_fn(struct cg_spec *spec, int line, char *rest)
{
    struct cg_entry *e = cg_xcalloc(1, sizeof(*e));
    struct cg_entry **tail;
    char *w = next_word(&rest);
    size_t n;

    if (!w)
        cg_fatal("%s:%d: 'fn' needs a function name", spec->path, line);
    e->pattern = cg_xstrdup(w);
    e->line = line;
    n = strlen(e->pattern);
    if (n && e->pattern[n - 1] == '*') {
        e->glob = true;
        e->pattern[n - 1] = '\0';
    }
    while ((w = next_word(&rest))) {
        if (!strcmp(w, "async")) {
            e->async = true;
        } else if (!strcmp(w, "cached")) {
            e->cached = true;
        } else if (!strcmp(w, "cached_per_context")) {
            e->cached_ctx = true;
        } else if (!strcmp(w, "changes_contexts")) {
            e->ctx_change = true;
        } else if (!strcmp(w, "work")) {
            e->work = true;
        } else if (!strcmp(w, "manual")) {
            e->state = CG_F_MANUAL;
            e->have_state = true;
        } else if (!strcmp(w, "unsupported:") || !strcmp(w, "unsupported")) {
            char *reason = trim(rest);

            if (!*reason)
                cg_fatal("%s:%d: 'unsupported:' needs a reason", spec->path, line);
            e->state = CG_F_UNSUPPORTED;
            e->have_state = true;
            e->reason = cg_xstrdup(reason);
            break;
        } else if (strchr(w, ':')) {
            if (e->nannot == CG_MAX_PARAMS)
                cg_fatal("%s:%d: too many annotations", spec->path, line);
            parse_annot(spec, line, &e->annot[e->nannot++], w);
        } else {
            cg_fatal("%s:%d: unknown word '%s' (expected async, cached, cached_per_context, "
                     "changes_contexts, work, manual, "
                     "unsupported: REASON or NAME:DIRECTION)", spec->path, line, w);
        }
    }
    for (tail = &spec->entries; *tail; tail = &(*tail)->next)
        if ((*tail)->glob == e->glob && !strcmp((*tail)->pattern, e->pattern))
            cg_fatal("%s:%d: a second entry for %s%s (the first is on line %d): put "
                     "everything about it on one line", spec->path, line, e->pattern,
                     e->glob ? "*" : "", (*tail)->line);
    *tail = e;
}

static char *need_word(struct cg_spec *spec, int line, char **rest, const char *what)
{
    char *w = next_word(rest);

    if (!w)
        cg_fatal("%s:%d: '%s' needs a value", spec->path, line, what);
    return cg_xstrdup(w);
}

struct cg_spec *cg_spec_load(const char *path)
{
    struct cg_spec *spec = cg_xcalloc(1, sizeof(*spec));
    FILE *f = fopen(path, "r");
    char buf[4096];
    int line = 0;

    if (!f)
        cg_fatal("cannot read spec %s: %s", path, strerror(errno));
    spec->path = cg_xstrdup(path);
    spec->name = strrchr(spec->path, '/') ? strrchr(spec->path, '/') + 1 : spec->path;
    while (fgets(buf, sizeof(buf), f)) {
        char *hash = strchr(buf, '#');
        char *rest, *key;

        line++;
        if (hash)
            *hash = '\0';
        rest = trim(buf);
        key = next_word(&rest);
        if (!key)
            continue;
        if (!strcmp(key, "api")) {
            spec->api = need_word(spec, line, &rest, key);
        } else if (!strcmp(key, "package")) {
            spec->package = need_word(spec, line, &rest, key);
        } else if (!strcmp(key, "header")) {
            if (spec->nheaders == 16)
                cg_fatal("%s:%d: too many headers", path, line);
            spec->headers[spec->nheaders++] = need_word(spec, line, &rest, key);
            if (!spec->header)
                spec->header = spec->headers[0];
        } else if (!strcmp(key, "export")) {
            if (spec->nexports == 64)
                cg_fatal("%s:%d: too many exports", path, line);
            spec->exports[spec->nexports++] = need_word(spec, line, &rest, key);
        } else if (!strcmp(key, "match")) {
            spec->match = need_word(spec, line, &rest, key);
        } else if (!strcmp(key, "error_type")) {
            spec->error_type = need_word(spec, line, &rest, key);
        } else if (!strcmp(key, "version_node")) {
            spec->version_node = need_word(spec, line, &rest, key);
        } else if (!strcmp(key, "variant")) {
            if (spec->nvariants == 8)
                cg_fatal("%s:%d: too many variants", path, line);
            spec->variants[spec->nvariants++] = need_word(spec, line, &rest, key);
        } else if (!strcmp(key, "handle")) {
            struct cg_handle *h;
            char *kind;

            if (spec->nhandles == 64)
                cg_fatal("%s:%d: too many handle types", path, line);
            h = &spec->handles[spec->nhandles++];
            h->type_name = need_word(spec, line, &rest, key);
            kind = need_word(spec, line, &rest, key);
            h->kind = cg_spec_kind(spec, kind);
            if (h->kind < 0) {
                h->kind = spec->nkinds;
                spec->kinds[spec->nkinds++] = kind;
            } else {
                free(kind);
            }
        } else if (!strcmp(key, "devptr_type")) {
            char *w;

            while ((w = next_word(&rest))) {
                if (spec->ndevptr_types == 8)
                    cg_fatal("%s:%d: too many devptr types", path, line);
                spec->devptr_types[spec->ndevptr_types++] = cg_xstrdup(w);
            }
        } else if (!strcmp(key, "id_base")) {
            char *w = need_word(spec, line, &rest, key), *end;
            unsigned long v = strtoul(w, &end, 0);

            if (*end || v == 0 || v > 0x7fff0000ul || (v & 0xffff))
                cg_fatal("%s:%d: id_base must be a multiple of 0x10000 below 0x7fff0000", path, line);
            spec->id_base = (uint32_t)v;
            free(w);
        } else if (!strcmp(key, "fn")) {
            parse_fn(spec, line, rest);
        } else {
            cg_fatal("%s:%d: unknown directive '%s'", path, line, key);
        }
    }
    fclose(f);
    if (!spec->api || !spec->package || !spec->header || !spec->match || !spec->error_type)
        cg_fatal("%s: 'api', 'package', 'header', 'match' and 'error_type' are required",
                 path);
    return spec;
}

/*
 * The entry for a function: an exact entry for its own name, else an exact
 * entry for its base name (variants share their base's annotations), else the
 * longest glob prefix matching the name.
 */
struct cg_entry *cg_spec_find(struct cg_spec *spec, const char *name, const char *base)
{
    struct cg_entry *best = NULL;
    size_t best_len = 0;

    for (struct cg_entry *e = spec->entries; e; e = e->next)
        if (!e->glob && !strcmp(e->pattern, name))
            return e;
    for (struct cg_entry *e = spec->entries; e; e = e->next)
        if (!e->glob && !strcmp(e->pattern, base))
            return e;
    for (struct cg_entry *e = spec->entries; e; e = e->next) {
        size_t n = strlen(e->pattern);

        if (e->glob && !strncmp(e->pattern, name, n) && (!best || n > best_len)) {
            best = e;
            best_len = n;
        }
    }
    return best;
}

int cg_spec_handle(const struct cg_spec *spec, const char *typedef_name)
{
    if (!typedef_name)
        return -1;
    for (int i = 0; i < spec->nhandles; i++)
        if (!strcmp(spec->handles[i].type_name, typedef_name))
            return spec->handles[i].kind;
    return -1;
}

bool cg_spec_devptr(const struct cg_spec *spec, const char *typedef_name)
{
    for (int i = 0; typedef_name && i < spec->ndevptr_types; i++)
        if (!strcmp(spec->devptr_types[i], typedef_name))
            return true;
    return false;
}

int cg_spec_kind(const struct cg_spec *spec, const char *kind)
{
    for (int i = 0; i < spec->nkinds; i++)
        if (!strcmp(spec->kinds[i], kind))
            return i;
    return -1;
}

struct cg_registry *cg_registry_load(const char *path)
{
    struct cg_registry *reg = cg_xcalloc(1, sizeof(*reg));
    FILE *f = fopen(path, "r");
    char buf[512];
    int line = 0;

    reg->path = cg_xstrdup(path);
    reg->next_id = 1;
    if (!f) {
        if (errno == ENOENT)
            return reg;
        cg_fatal("cannot read registry %s: %s", path, strerror(errno));
    }
    while (fgets(buf, sizeof(buf), f)) {
        char *hash = strchr(buf, '#');
        char *rest, *idw, *name, *end;
        unsigned long id;

        line++;
        if (hash)
            *hash = '\0';
        rest = trim(buf);
        idw = next_word(&rest);
        if (!idw)
            continue;
        name = next_word(&rest);
        id = strtoul(idw, &end, 10);
        if (*end || !name || next_word(&rest) || id == 0 || id > 0xffffff)
            cg_fatal("%s:%d: expected 'ID NAME' with 0 < ID < 2^24", path, line);
        if (id < reg->next_id)
            cg_fatal("%s:%d: id %lu is not above the previous one: the registry is "
                     "append-only and ids never change", path, line, id);
        if (cg_registry_find(reg, name) >= 0)
            cg_fatal("%s:%d: %s is registered twice", path, line, name);
        if (reg->n == reg->cap) {
            reg->cap = reg->cap ? reg->cap * 2 : 256;
            reg->rows = realloc(reg->rows, (size_t)reg->cap * sizeof(*reg->rows));
            if (!reg->rows)
                cg_fatal("out of memory");
        }
        reg->rows[reg->n].id = (uint32_t)id;
        reg->rows[reg->n].name = cg_xstrdup(name);
        reg->n++;
        reg->next_id = (uint32_t)id + 1;
    }
    fclose(f);
    return reg;
}

int cg_registry_find(const struct cg_registry *reg, const char *name)
{
    for (int i = 0; i < reg->n; i++)
        if (!strcmp(reg->rows[i].name, name))
            return i;
    return -1;
}

/* Append names with fresh ids; existing rows are never rewritten. */
int cg_registry_append(struct cg_registry *reg, char **names, int n)
{
    FILE *f = fopen(reg->path, "a");

    if (!f)
        return -errno;
    for (int i = 0; i < n; i++)
        fprintf(f, "%u %s\n", reg->next_id++, names[i]);
    return fclose(f) ? -errno : 0;
}
