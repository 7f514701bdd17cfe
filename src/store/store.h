/* SPDX-License-Identifier: Apache-2.0 */
/* The store interface: versioned documents by (kind, namespace, name). It knows nothing of the
 * resource model: a document body is opaque canonical JSON text. sqlite.c implements it; etcd
 * comes later. Nothing outside src/store touches SQL. */
#ifndef MESH_STORE_STORE_H
#define MESH_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/err.h"

struct mesh_store;

struct mesh_store_record {
    char *kind; /* "VirtualService" */
    char *ns;
    char *name;
    char *body;                /* canonical JSON of the document, without versions */
    uint64_t resource_version; /* store-wide version of this record's last change */
    uint64_t generation;       /* 1 on create, +1 on every content change */
};

void mesh_store_record_clear(struct mesh_store_record *rec);
void mesh_store_records_free(struct mesh_store_record *recs, size_t n);

enum mesh_store_op {
    MESH_STORE_OP_PUT = 0,
    MESH_STORE_OP_DELETE,
};

struct mesh_store_change {
    uint64_t version; /* the store version this change produced */
    enum mesh_store_op op;
    char *kind, *ns, *name;
};

void mesh_store_changes_free(struct mesh_store_change *changes, size_t n);

struct mesh_store_put_result {
    bool created;   /* no record existed */
    bool unchanged; /* identical body: nothing written, versions kept */
    uint64_t resource_version;
    uint64_t generation;
};

/* Every call returns MESH_OK or an error, and on error leaves a message for mesh_store_error().
 * A store is used by one thread at a time. */
struct mesh_store_ops {
    const char *name;
    void (*close)(struct mesh_store *st);
    /* Transactions do not nest. Writes outside begin/commit are their own transaction. */
    enum mesh_err (*begin)(struct mesh_store *st);
    enum mesh_err (*commit)(struct mesh_store *st);
    void (*rollback)(struct mesh_store *st);
    /* expected_version 0 = any; else MESH_E_CONFLICT unless the record exists at that version. */
    enum mesh_err (*put)(struct mesh_store *st, const char *kind, const char *ns, const char *name,
                         const char *body, uint64_t expected_version,
                         struct mesh_store_put_result *out);
    /* MESH_E_NOTFOUND when absent. *out filled with copies (caller clears). */
    enum mesh_err (*get)(struct mesh_store *st, const char *kind, const char *ns, const char *name,
                         struct mesh_store_record *out);
    /* kind NULL = every kind, ns NULL = every namespace; sorted by kind, ns, name. */
    enum mesh_err (*list)(struct mesh_store *st, const char *kind, const char *ns,
                          struct mesh_store_record **out, size_t *n);
    /* MESH_E_NOTFOUND when absent; expected_version as for put. */
    enum mesh_err (*remove)(struct mesh_store *st, const char *kind, const char *ns,
                            const char *name, uint64_t expected_version);
    /* Changes with version > after, oldest first, at most max. */
    enum mesh_err (*changes_after)(struct mesh_store *st, uint64_t after, size_t max,
                                   struct mesh_store_change **out, size_t *n);
    /* The store-wide version: that of the newest change, 0 when empty. */
    enum mesh_err (*current_version)(struct mesh_store *st, uint64_t *out);
    /* Writes a record with the versions another store gave it (a restore): the record, created
     * or replaced, at resource_version and generation, a "put" change at resource_version, and
     * the store-wide version set to resource_version. MESH_E_CONFLICT (nothing written) unless
     * resource_version is above the store-wide version: versions only move forward, because
     * watchers and optimistic concurrency rely on it. MESH_E_INVALID for a version or generation
     * of 0, or a version beyond INT64_MAX. Inside the caller's transaction, or its own. */
    enum mesh_err (*import)(struct mesh_store *st, const char *kind, const char *ns,
                            const char *name, const char *body, uint64_t resource_version,
                            uint64_t generation);
};

/* Every implementation's struct starts with this. */
struct mesh_store {
    const struct mesh_store_ops *ops;
    char errmsg[512];
};

/* Opens (creating when absent, mode 0700) a SQLite store in dir: file dir/mesh.db, WAL,
 * synchronous=FULL, schema migrated to the newest version. On error *out is NULL and *errmsg
 * (caller frees) says why. */
enum mesh_err mesh_store_open_sqlite(const char *dir, struct mesh_store **out, char **errmsg);

/* The message of the last failed call. */
const char *mesh_store_error(const struct mesh_store *st);

/* One resource for mesh_store_restore; every string borrowed. */
struct mesh_store_restore_item {
    const char *kind, *ns, *name;
    const char *body;          /* canonical JSON, as for put */
    uint64_t resource_version; /* what the backup carries; 0 = none */
    uint64_t generation;       /* likewise */
};

/* The restore rule, the same for every backend and caller (libmesh's native provider, meshd),
 * run inside the caller's open transaction. When the store is new (no record, version counter
 * 0) and every item carries a resource_version and a generation (>= 1), the versions all
 * distinct and no key twice, every item is imported with its own versions, in ascending
 * resource_version order: *kept_versions is true and every result is created with the item's
 * versions. Otherwise every item is put as an apply would put it, whatever versions it carries
 * (expected_version 0): *kept_versions is false. results has n slots, in items' order. On error
 * the store's message names the failed resource and the caller rolls back. */
enum mesh_err mesh_store_restore(struct mesh_store *st, const struct mesh_store_restore_item *items,
                                 size_t n, struct mesh_store_put_result *results,
                                 bool *kept_versions);

/* Thin inline dispatchers so that callers read like plain function calls. */
static inline void mesh_store_close(struct mesh_store *st)
{
    if (st)
        st->ops->close(st);
}

#endif
