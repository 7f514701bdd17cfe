/* SPDX-License-Identifier: Apache-2.0 */
/* The parts of the store interface every backend shares: freeing results, the last error. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

void mesh_store_record_clear(struct mesh_store_record *rec)
{
    if (!rec)
        return;
    free(rec->kind);
    free(rec->ns);
    free(rec->name);
    free(rec->body);
    memset(rec, 0, sizeof *rec);
}

void mesh_store_records_free(struct mesh_store_record *recs, size_t n)
{
    if (!recs)
        return;
    for (size_t i = 0; i < n; i++)
        mesh_store_record_clear(&recs[i]);
    free(recs);
}

void mesh_store_changes_free(struct mesh_store_change *changes, size_t n)
{
    if (!changes)
        return;
    for (size_t i = 0; i < n; i++) {
        free(changes[i].kind);
        free(changes[i].ns);
        free(changes[i].name);
    }
    free(changes);
}

const char *mesh_store_error(const struct mesh_store *st)
{
    if (!st)
        return "no store";
    return st->errmsg;
}
