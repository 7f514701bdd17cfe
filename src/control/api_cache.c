/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's decoded copy of the store, which every proxy's config is compiled from: decoding is
 * the costly part, so it happens once per stored change, not once per proxy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/xalloc.h"
#include "model/model.h"

/* More changes than this since the cached version: reloading everything is as cheap. */
#define INCREMENTAL_MAX 1024

struct mesh_api_cached {
    char *kind, *ns, *name;
    struct mesh_resource *res;
};

static int compare_key(const struct mesh_api_cached *e, const char *kind, const char *ns,
                       const char *name)
{
    int c = strcmp(e->kind, kind);
    if (c == 0)
        c = strcmp(e->ns, ns);
    if (c == 0)
        c = strcmp(e->name, name);
    return c;
}

/* Index of the key, or where it would go (*found false). */
static size_t lookup(const struct mesh_api_cache *c, const char *kind, const char *ns,
                     const char *name, bool *found)
{
    size_t lo = 0, hi = c->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int d = compare_key(&c->items[mid], kind, ns, name);
        if (d == 0) {
            *found = true;
            return mid;
        }
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void cached_clear(struct mesh_api_cached *e)
{
    free(e->kind);
    free(e->ns);
    free(e->name);
    mesh_resource_free(e->res);
}

static void clear_items(struct mesh_api_cache *c)
{
    for (size_t i = 0; i < c->len; i++)
        cached_clear(&c->items[i]);
    c->len = 0;
}

void mesh_api_cache_free(struct mesh_api_cache *c)
{
    clear_items(c);
    free(c->items);
    free(c->res);
    memset(c, 0, sizeof(*c));
}

/* Decodes a record; NULL (with a log line) for one that cannot be read: the store only holds
 * what was validated, so that is a newer meshd's document or corruption, and one bad record
 * must not take every proxy's config down with it. */
static struct mesh_resource *decode(const struct mesh_store_record *rec)
{
    struct mesh_resource *res = NULL;
    char *msg = NULL;
    if (mesh_model_from_json(rec->body, &res, &msg) != MESH_OK) {
        fprintf(stderr,
                "lvl=warn msg=\"stored resource unreadable, left out of configs\" "
                "kind=%s ns=%s name=%s reason=\"%s\"\n",
                rec->kind, rec->ns, rec->name, msg ? msg : "?");
        free(msg);
        return NULL;
    }
    res->resource_version = rec->resource_version;
    res->generation = rec->generation;
    return res;
}

static void set_entry(struct mesh_api_cache *c, const struct mesh_store_record *rec,
                      struct mesh_resource *res)
{
    bool found;
    size_t at = lookup(c, rec->kind, rec->ns, rec->name, &found);
    if (found) {
        mesh_resource_free(c->items[at].res);
        c->items[at].res = res;
        return;
    }
    xgrow((void **)&c->items, &c->cap, c->len + 1, sizeof(*c->items));
    memmove(&c->items[at + 1], &c->items[at], (c->len - at) * sizeof(*c->items));
    c->items[at] =
        (struct mesh_api_cached){xstrdup(rec->kind), xstrdup(rec->ns), xstrdup(rec->name), res};
    c->len++;
}

static void drop_entry(struct mesh_api_cache *c, const char *kind, const char *ns, const char *name)
{
    bool found;
    size_t at = lookup(c, kind, ns, name, &found);
    if (!found)
        return;
    cached_clear(&c->items[at]);
    memmove(&c->items[at], &c->items[at + 1], (c->len - at - 1) * sizeof(*c->items));
    c->len--;
}

/* The compiler's view: every readable resource, in cache order. */
static void rebuild_view(struct mesh_api_cache *c)
{
    free(c->res);
    c->res = xcalloc(c->len ? c->len : 1, sizeof(*c->res));
    size_t n = 0;
    /* an unreadable record keeps its slot in items (so later changes find it) but not here */
    for (size_t i = 0; i < c->len; i++)
        if (c->items[i].res)
            c->res[n++] = c->items[i].res;
    c->n_res = n;
}

static enum mesh_err full_reload(struct mesh_api_cache *c, struct mesh_store *st, uint64_t version,
                                 char **errmsg)
{
    struct mesh_store_record *recs = NULL;
    size_t n = 0;
    enum mesh_err err = st->ops->list(st, NULL, NULL, &recs, &n);
    if (err != MESH_OK) {
        *errmsg = xasprintf("store: cannot list resources: %s", mesh_store_error(st));
        return err;
    }
    clear_items(c);
    xgrow((void **)&c->items, &c->cap, n, sizeof(*c->items));
    for (size_t i = 0; i < n; i++)
        set_entry(c, &recs[i], decode(&recs[i]));
    mesh_store_records_free(recs, n);
    c->version = version;
    c->loaded = true;
    return MESH_OK;
}

/* Applies the change log since c->version. MESH_E_AGAIN when it cannot (too many changes, or
 * a gap in the log): reload instead. */
static enum mesh_err incremental(struct mesh_api_cache *c, struct mesh_store *st, uint64_t current,
                                 char **errmsg)
{
    struct mesh_store_change *ch = NULL;
    size_t n = 0;
    enum mesh_err err = st->ops->changes_after(st, c->version, INCREMENTAL_MAX, &ch, &n);
    if (err != MESH_OK) {
        *errmsg = xasprintf("store: cannot read changes: %s", mesh_store_error(st));
        return err;
    }
    err = MESH_E_AGAIN;
    if (n == 0 || n >= INCREMENTAL_MAX || ch[n - 1].version < current)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (ch[i].version != c->version + 1 + i)
            goto out;
    for (size_t i = 0; i < n; i++) {
        struct mesh_store_record rec = {0};
        if (ch[i].op == MESH_STORE_OP_DELETE) {
            drop_entry(c, ch[i].kind, ch[i].ns, ch[i].name);
            continue;
        }
        enum mesh_err e = st->ops->get(st, ch[i].kind, ch[i].ns, ch[i].name, &rec);
        if (e == MESH_E_NOTFOUND) {
            drop_entry(c, ch[i].kind, ch[i].ns, ch[i].name); /* deleted by a later change */
        } else if (e != MESH_OK) {
            *errmsg = xasprintf("store: cannot read %s %s/%s: %s", ch[i].kind, ch[i].ns, ch[i].name,
                                mesh_store_error(st));
            err = e;
            goto out;
        } else {
            set_entry(c, &rec, decode(&rec));
        }
        mesh_store_record_clear(&rec);
    }
    c->version = ch[n - 1].version;
    err = MESH_OK;
out:
    mesh_store_changes_free(ch, n);
    return err;
}

enum mesh_err mesh_api_cache_refresh(struct mesh_api_cache *c, struct mesh_store *st, bool *changed,
                                     char **errmsg)
{
    uint64_t current = 0;
    *changed = false;
    *errmsg = NULL;
    enum mesh_err err = st->ops->current_version(st, &current);
    if (err != MESH_OK) {
        *errmsg = xasprintf("store: cannot read the version: %s", mesh_store_error(st));
        goto fail;
    }
    if (c->loaded && current == c->version)
        return MESH_OK;
    err = MESH_E_AGAIN;
    if (c->loaded && current > c->version)
        err = incremental(c, st, current, errmsg);
    if (err == MESH_E_AGAIN)
        err = full_reload(c, st, current, errmsg);
    rebuild_view(c);
    *changed = err == MESH_OK;
fail:
    return err;
}
