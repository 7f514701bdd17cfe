/* SPDX-License-Identifier: Apache-2.0 */
/* The restore rule over any store: a new store takes a backup with its own versions, any other
 * store applies it. One implementation, so that libmesh and meshd can never disagree. */
#include "store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum mesh_err restore_error(struct mesh_store *st, enum mesh_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum mesh_err restore_error(struct mesh_store *st, enum mesh_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof st->errmsg, fmt, ap);
    va_end(ap);
    return err;
}

static int by_version(const void *pa, const void *pb)
{
    const struct mesh_store_restore_item *a = *(const struct mesh_store_restore_item *const *)pa;
    const struct mesh_store_restore_item *b = *(const struct mesh_store_restore_item *const *)pb;
    return a->resource_version < b->resource_version   ? -1
           : a->resource_version > b->resource_version ? 1
                                                       : 0;
}

static int by_key(const void *pa, const void *pb)
{
    const struct mesh_store_restore_item *a = *(const struct mesh_store_restore_item *const *)pa;
    const struct mesh_store_restore_item *b = *(const struct mesh_store_restore_item *const *)pb;
    int c = strcmp(a->kind, b->kind);
    if (c == 0)
        c = strcmp(a->ns, b->ns);
    return c ? c : strcmp(a->name, b->name);
}

/* True when the items can be written with their own versions: each carries both, the versions
 * are distinct (two records can never share the change that produced them) and no resource comes
 * twice (the later would silently replace the earlier). order then points at the items in
 * ascending version order, the order in which their versions were first handed out. */
static bool versions_usable(const struct mesh_store_restore_item *items, size_t n,
                            const struct mesh_store_restore_item **order)
{
    for (size_t i = 0; i < n; i++) {
        /* A key put would refuse is left for put to report, in its words. */
        if (!items[i].kind || !items[i].ns || !items[i].name)
            return false;
        if (items[i].resource_version == 0 || items[i].generation == 0)
            return false;
        order[i] = &items[i];
    }
    qsort(order, n, sizeof *order, by_key);
    for (size_t i = 1; i < n; i++)
        if (by_key(&order[i - 1], &order[i]) == 0)
            return false;
    qsort(order, n, sizeof *order, by_version);
    for (size_t i = 1; i < n; i++)
        if (order[i - 1]->resource_version == order[i]->resource_version)
            return false;
    return true;
}

/* *out: true when the store has never been written: no record and the counter at 0. A store whose
 * records were all deleted still has history (its counter), and its versions must go on from
 * there. */
static enum mesh_err store_is_new(struct mesh_store *st, bool *out)
{
    struct mesh_store_record *recs = NULL;
    uint64_t version = 0;
    size_t n = 0;

    *out = false;
    enum mesh_err err = st->ops->current_version(st, &version);
    if (err != MESH_OK || version != 0)
        return err;
    err = st->ops->list(st, NULL, NULL, &recs, &n);
    if (err != MESH_OK)
        return err;
    mesh_store_records_free(recs, n);
    *out = n == 0;
    return MESH_OK;
}

enum mesh_err mesh_store_restore(struct mesh_store *st, const struct mesh_store_restore_item *items,
                                 size_t n, struct mesh_store_put_result *results,
                                 bool *kept_versions)
{
    const struct mesh_store_restore_item **order = NULL;
    bool keep = false;
    enum mesh_err err = MESH_OK;

    *kept_versions = false;
    if (n == 0)
        return MESH_OK;
    order = malloc(n * sizeof *order);
    if (!order)
        return restore_error(st, MESH_E_NOMEM, "restore: out of memory");
    if (versions_usable(items, n, order)) {
        err = store_is_new(st, &keep);
        if (err != MESH_OK)
            goto out;
    }
    for (size_t k = 0; k < n; k++) {
        const struct mesh_store_restore_item *it = keep ? order[k] : &items[k];
        struct mesh_store_put_result *res = &results[it - items];
        if (keep) {
            err = st->ops->import(st, it->kind, it->ns, it->name, it->body, it->resource_version,
                                  it->generation);
            *res = (struct mesh_store_put_result){
                .created = true,
                .resource_version = it->resource_version,
                .generation = it->generation,
            };
        } else {
            err = st->ops->put(st, it->kind, it->ns, it->name, it->body, 0, res);
        }
        if (err != MESH_OK)
            goto out;
    }
    *kept_versions = keep;
out:
    free(order);
    return err;
}
