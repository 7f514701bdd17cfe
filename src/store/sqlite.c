/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite store: versioned documents in DIR/mesh.db, WAL + synchronous=FULL, migrated schema. */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <sqlite3.h>

/* meshd and several meshctl processes may share one store: a writer waits this long for another
 * one's transaction to end before it reports the store unavailable. */
#define BUSY_TIMEOUT_MS 5000

/* migrations[i] brings the schema from version i to i + 1. Append only: a released migration
 * never changes, because stores in the field have already run it. */
static const char *const migrations[] = {
    /* 1: the documents, the change log that watches read, the store-wide version counter. */
    "CREATE TABLE resources ("
    " kind TEXT NOT NULL,"
    " ns TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " resource_version INTEGER NOT NULL,"
    " generation INTEGER NOT NULL,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL,"
    " PRIMARY KEY (kind, ns, name));"
    "CREATE TABLE changes ("
    " version INTEGER PRIMARY KEY,"
    " op TEXT NOT NULL CHECK (op IN ('put', 'delete')),"
    " kind TEXT NOT NULL,"
    " ns TEXT NOT NULL,"
    " name TEXT NOT NULL);"
    /* The counter has its own row rather than being max(changes.version), so that trimming the
     * change log can never hand out a version twice. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "INSERT INTO meta (key, value) VALUES ('version', 0);",
};
#define SCHEMA_VERSION ((int64_t)(sizeof migrations / sizeof migrations[0]))

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_GET,
    ST_UPSERT,
    ST_DELETE,
    ST_ADD_CHANGE,
    ST_GET_VERSION,
    ST_SET_VERSION,
    ST_LIST_ALL,
    ST_LIST_KIND,
    ST_LIST_NS,
    ST_LIST_KIND_NS,
    ST_CHANGES_AFTER,
    ST_COUNT,
};

#define SELECT_RECORD "SELECT kind, ns, name, body, resource_version, generation FROM resources "
#define BY_KEY        " ORDER BY kind, ns, name"
#define NOW           "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* Every statement is prepared once at open; values are always bound, never spliced in. */
static const char *const stmt_sql[ST_COUNT] = {
    /* IMMEDIATE takes the write lock up front, so that concurrent writers queue in the busy
     * handler instead of failing when a read lock cannot be upgraded. */
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT mesh_op",
    [ST_RELEASE] = "RELEASE mesh_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO mesh_op",
    [ST_GET] = SELECT_RECORD "WHERE kind = ?1 AND ns = ?2 AND name = ?3",
    [ST_UPSERT] = "INSERT INTO resources"
                  " (kind, ns, name, body, resource_version, generation, created_at, updated_at)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, " NOW ", " NOW ")"
                  " ON CONFLICT (kind, ns, name) DO UPDATE SET body = excluded.body,"
                  " resource_version = excluded.resource_version,"
                  " generation = excluded.generation, updated_at = excluded.updated_at",
    [ST_DELETE] = "DELETE FROM resources WHERE kind = ?1 AND ns = ?2 AND name = ?3",
    [ST_ADD_CHANGE] = "INSERT INTO changes (version, op, kind, ns, name)"
                      " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_GET_VERSION] = "SELECT value FROM meta WHERE key = 'version'",
    [ST_SET_VERSION] = "UPDATE meta SET value = ?1 WHERE key = 'version'",
    [ST_LIST_ALL] = SELECT_RECORD BY_KEY,
    [ST_LIST_KIND] = SELECT_RECORD "WHERE kind = ?1" BY_KEY,
    [ST_LIST_NS] = SELECT_RECORD "WHERE ns = ?2" BY_KEY,
    [ST_LIST_KIND_NS] = SELECT_RECORD "WHERE kind = ?1 AND ns = ?2" BY_KEY,
    [ST_CHANGES_AFTER] = "SELECT version, op, kind, ns, name FROM changes"
                         " WHERE version > ?1 ORDER BY version LIMIT ?2",
};

struct sqlite_store {
    struct mesh_store base; /* first, so that a struct mesh_store * converts back */
    sqlite3 *db;
    bool in_tx; /* the caller's begin() is open */
    /* Set when an error made SQLite roll back the caller's transaction behind its back: later
     * writes and commit() must fail instead of running outside any transaction. */
    enum mesh_err tx_err;
    sqlite3_stmt *stmt[ST_COUNT];
};

static const struct mesh_store_ops sqlite_ops;

static enum mesh_err set_error(struct sqlite_store *s, enum mesh_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum mesh_err set_error(struct sqlite_store *s, enum mesh_err err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->base.errmsg, sizeof s->base.errmsg, fmt, ap);
    va_end(ap);
    return err;
}

static enum mesh_err err_from_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return MESH_E_UNAVAILABLE;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_PROTOCOL:
        return MESH_E_IO;
    case SQLITE_NOMEM:
        return MESH_E_NOMEM;
    default: /* CORRUPT, NOTADB, and SQL errors, which mean a bug or a foreign database */
        return MESH_E_INTERNAL;
    }
}

/* Records SQLite's own message for a failed call made while doing `what`. Call it right after
 * the failure: the next call on the connection replaces sqlite3_errmsg(). */
static enum mesh_err sqlite_fail(struct sqlite_store *s, int rc, const char *what)
{
    if ((rc & 0xff) == SQLITE_BUSY)
        return set_error(s, MESH_E_UNAVAILABLE,
                         "%s: %s (another process kept the store locked for more than %d ms)", what,
                         sqlite3_errmsg(s->db), BUSY_TIMEOUT_MS);
    return set_error(s, err_from_sqlite(rc), "%s: %s", what, sqlite3_errmsg(s->db));
}

/* "VirtualService default/payment"; "MeshConfig mesh" for a kind without a namespace. */
static void format_ref(char *buf, size_t size, const char *kind, const char *ns, const char *name)
{
    if (ns[0])
        snprintf(buf, size, "%s %s/%s", kind, ns, name);
    else
        snprintf(buf, size, "%s %s", kind, name);
}

static bool valid_key(const char *kind, const char *ns, const char *name)
{
    return kind && kind[0] && ns && name && name[0];
}

static enum mesh_err invalid_key(struct sqlite_store *s, const char *op)
{
    return set_error(s, MESH_E_INVALID,
                     "%s: kind and name must be non-empty and namespace must not be NULL", op);
}

/* Steps a statement that returns no row (or whose rows are not wanted), then resets it. */
static enum mesh_err run(struct sqlite_store *s, enum stmt_id id, const char *what)
{
    sqlite3_stmt *st = s->stmt[id];
    enum mesh_err err = MESH_OK;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = sqlite_fail(s, rc, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

/* For undoing after a failure whose message is already recorded: errors are not reported. */
static void run_quiet(struct sqlite_store *s, enum stmt_id id)
{
    sqlite3_step(s->stmt[id]);
    sqlite3_reset(s->stmt[id]);
}

static void finish(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int bind_text(sqlite3_stmt *st, int idx, const char *v)
{
    return sqlite3_bind_text(st, idx, v, -1, SQLITE_STATIC);
}

static int bind_key(sqlite3_stmt *st, const char *kind, const char *ns, const char *name)
{
    int rc = bind_text(st, 1, kind);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 2, ns);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 3, name);
    return rc;
}

static bool tx_lost(const struct sqlite_store *s)
{
    return s->in_tx && sqlite3_get_autocommit(s->db);
}

static enum mesh_err tx_lost_error(struct sqlite_store *s, const char *what)
{
    enum mesh_err err = s->tx_err != MESH_OK ? s->tx_err : MESH_E_INTERNAL;
    return set_error(s, err,
                     "%s: the transaction was rolled back by an earlier error; nothing of it was "
                     "written",
                     what);
}

/* Opens the scope of one write: its own transaction, or a savepoint inside the caller's, so that
 * a write that fails half-way leaves nothing behind either way. */
static enum mesh_err op_begin(struct sqlite_store *s, const char *what)
{
    if (!s->in_tx)
        return run(s, ST_BEGIN, what);
    if (tx_lost(s))
        return tx_lost_error(s, what);
    return run(s, ST_SAVEPOINT, what);
}

/* Undoes what the failed write did; the caller's transaction, if any, stays open when SQLite
 * has not already rolled it back. */
static void op_undo(struct sqlite_store *s, enum mesh_err err)
{
    if (sqlite3_get_autocommit(s->db)) {
        /* SQLite rolled back the whole transaction itself (I/O error, full disk, ...). */
        if (s->in_tx && s->tx_err == MESH_OK)
            s->tx_err = err;
        return;
    }
    if (s->in_tx) {
        run_quiet(s, ST_ROLLBACK_TO);
        run_quiet(s, ST_RELEASE);
    } else {
        run_quiet(s, ST_ROLLBACK);
    }
}

/* Closes the scope op_begin opened: commits on success, undoes on failure. */
static enum mesh_err op_end(struct sqlite_store *s, enum mesh_err err, const char *what)
{
    if (err == MESH_OK)
        err = run(s, s->in_tx ? ST_RELEASE : ST_COMMIT, what);
    if (err != MESH_OK)
        op_undo(s, err);
    return err;
}

static char *dup_column(sqlite3_stmt *st, int col)
{
    const unsigned char *text = sqlite3_column_text(st, col);
    if (!text) /* every column read is NOT NULL: this is SQLite out of memory */
        return NULL;
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, text, n);
    p[n] = '\0';
    return p;
}

/* Copies the current row of a SELECT_RECORD statement into rec. */
static enum mesh_err copy_record(struct sqlite_store *s, sqlite3_stmt *st,
                                 struct mesh_store_record *rec, const char *what)
{
    rec->kind = dup_column(st, 0);
    rec->ns = dup_column(st, 1);
    rec->name = dup_column(st, 2);
    rec->body = dup_column(st, 3);
    rec->resource_version = (uint64_t)sqlite3_column_int64(st, 4);
    rec->generation = (uint64_t)sqlite3_column_int64(st, 5);
    if (!rec->kind || !rec->ns || !rec->name || !rec->body) {
        mesh_store_record_clear(rec);
        return set_error(s, MESH_E_NOMEM, "%s: out of memory", what);
    }
    return MESH_OK;
}

static enum mesh_err read_version(struct sqlite_store *s, uint64_t *out, const char *what)
{
    sqlite3_stmt *st = s->stmt[ST_GET_VERSION];
    enum mesh_err err = MESH_OK;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        err = set_error(s, MESH_E_INTERNAL, "%s: the store has lost its version counter", what);
    else
        err = sqlite_fail(s, rc, what);
    finish(st);
    return err;
}

/* Sets the store-wide version; the callers only ever move it forward. */
static enum mesh_err write_version(struct sqlite_store *s, uint64_t v, const char *what)
{
    sqlite3_stmt *st = s->stmt[ST_SET_VERSION];
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)v);
    if (rc != SQLITE_OK) {
        enum mesh_err err = sqlite_fail(s, rc, what);
        finish(st);
        return err;
    }
    return run(s, ST_SET_VERSION, what);
}

/* Takes the next store-wide version. Runs inside a write transaction, so no one else can take
 * the same one; the counter only grows, whatever is deleted. */
static enum mesh_err next_version(struct sqlite_store *s, uint64_t *out, const char *what)
{
    uint64_t v = 0;
    enum mesh_err err = read_version(s, &v, what);
    if (err != MESH_OK)
        return err;
    if (v >= (uint64_t)INT64_MAX)
        return set_error(s, MESH_E_INTERNAL, "%s: the store version counter is exhausted", what);
    v++;
    err = write_version(s, v, what);
    if (err == MESH_OK)
        *out = v;
    return err;
}

static enum mesh_err add_change(struct sqlite_store *s, uint64_t version, const char *op,
                                const char *kind, const char *ns, const char *name,
                                const char *what)
{
    sqlite3_stmt *st = s->stmt[ST_ADD_CHANGE];
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)version);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 2, op);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 3, kind);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 4, ns);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 5, name);
    if (rc != SQLITE_OK) {
        enum mesh_err err = sqlite_fail(s, rc, what);
        finish(st);
        return err;
    }
    return run(s, ST_ADD_CHANGE, what);
}

/* What the store holds under a key, read inside the write's transaction. */
struct current {
    bool exists;
    bool same_body; /* only meaningful when exists */
    uint64_t version;
    uint64_t generation;
};

static enum mesh_err read_current(struct sqlite_store *s, const char *kind, const char *ns,
                                  const char *name, const char *body, struct current *cur,
                                  const char *what)
{
    sqlite3_stmt *st = s->stmt[ST_GET];
    enum mesh_err err = MESH_OK;
    memset(cur, 0, sizeof *cur);
    int rc = bind_key(st, kind, ns, name);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        cur->exists = true;
        cur->version = (uint64_t)sqlite3_column_int64(st, 4);
        cur->generation = (uint64_t)sqlite3_column_int64(st, 5);
        if (body) {
            const unsigned char *old = sqlite3_column_text(st, 3);
            size_t n = (size_t)sqlite3_column_bytes(st, 3);
            if (!old)
                err = set_error(s, MESH_E_NOMEM, "%s: out of memory", what);
            else
                cur->same_body = n == strlen(body) && memcmp(old, body, n) == 0;
        }
    } else if (rc != SQLITE_DONE) {
        err = sqlite_fail(s, rc, what);
    }
    finish(st);
    return err;
}

static enum mesh_err check_expected(struct sqlite_store *s, const char *kind, const char *ns,
                                    const char *name, uint64_t expected, const struct current *cur)
{
    char ref[256];
    if (expected == 0 || (cur->exists && cur->version == expected))
        return MESH_OK;
    format_ref(ref, sizeof ref, kind, ns, name);
    if (!cur->exists)
        return set_error(s, MESH_E_CONFLICT,
                         "conflict: %s does not exist, the request names resource_version %llu",
                         ref, (unsigned long long)expected);
    return set_error(s, MESH_E_CONFLICT,
                     "conflict: %s is at resource_version %llu, the request names %llu", ref,
                     (unsigned long long)cur->version, (unsigned long long)expected);
}

static enum mesh_err upsert(struct sqlite_store *s, const char *kind, const char *ns,
                            const char *name, const char *body, uint64_t version,
                            uint64_t generation, const char *what)
{
    sqlite3_stmt *st = s->stmt[ST_UPSERT];
    int rc = bind_key(st, kind, ns, name);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 4, body);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, (sqlite3_int64)version);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 6, (sqlite3_int64)generation);
    if (rc != SQLITE_OK) {
        enum mesh_err err = sqlite_fail(s, rc, what);
        finish(st);
        return err;
    }
    return run(s, ST_UPSERT, what);
}

static enum mesh_err sqlite_put(struct mesh_store *base, const char *kind, const char *ns,
                                const char *name, const char *body, uint64_t expected_version,
                                struct mesh_store_put_result *out)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct mesh_store_put_result res = {0};
    struct current cur;
    char ref[256], what[300];
    enum mesh_err err;

    if (out)
        *out = res;
    if (!valid_key(kind, ns, name))
        return invalid_key(s, "put");
    format_ref(ref, sizeof ref, kind, ns, name);
    if (!body)
        return set_error(s, MESH_E_INVALID, "put %s: no body", ref);
    snprintf(what, sizeof what, "put %s", ref);

    err = op_begin(s, what);
    if (err != MESH_OK)
        return err;
    err = read_current(s, kind, ns, name, body, &cur, what);
    if (err != MESH_OK)
        goto out;
    err = check_expected(s, kind, ns, name, expected_version, &cur);
    if (err != MESH_OK)
        goto out;
    if (cur.exists && cur.same_body) {
        /* Re-applying a file must not wake every watcher nor bump generations. */
        res.unchanged = true;
        res.resource_version = cur.version;
        res.generation = cur.generation;
        goto out;
    }
    res.created = !cur.exists;
    res.generation = cur.exists ? cur.generation + 1 : 1;
    err = next_version(s, &res.resource_version, what);
    if (err != MESH_OK)
        goto out;
    err = upsert(s, kind, ns, name, body, res.resource_version, res.generation, what);
    if (err != MESH_OK)
        goto out;
    err = add_change(s, res.resource_version, "put", kind, ns, name, what);
out:
    err = op_end(s, err, what);
    if (err == MESH_OK && out)
        *out = res;
    return err;
}

static enum mesh_err sqlite_import(struct mesh_store *base, const char *kind, const char *ns,
                                   const char *name, const char *body, uint64_t resource_version,
                                   uint64_t generation)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    char ref[256], what[300];
    uint64_t current = 0;
    enum mesh_err err;

    if (!valid_key(kind, ns, name))
        return invalid_key(s, "import");
    format_ref(ref, sizeof ref, kind, ns, name);
    if (!body)
        return set_error(s, MESH_E_INVALID, "import %s: no body", ref);
    snprintf(what, sizeof what, "import %s", ref);
    if (resource_version == 0 || resource_version > (uint64_t)INT64_MAX || generation == 0 ||
        generation > (uint64_t)INT64_MAX)
        return set_error(s, MESH_E_INVALID,
                         "%s: resource_version %llu and generation %llu must both be between 1 "
                         "and %lld",
                         what, (unsigned long long)resource_version, (unsigned long long)generation,
                         (long long)INT64_MAX);

    err = op_begin(s, what);
    if (err != MESH_OK)
        return err;
    err = read_version(s, &current, what);
    if (err != MESH_OK)
        goto out;
    if (resource_version <= current) {
        /* A version at or below the counter may already have been seen by a watcher or held by
         * a client for a conditional write: handing it out again would lie to them. */
        err = set_error(s, MESH_E_CONFLICT,
                        "%s: resource_version %llu is not above the store version %llu (versions "
                        "only move forward)",
                        what, (unsigned long long)resource_version, (unsigned long long)current);
        goto out;
    }
    err = write_version(s, resource_version, what);
    if (err != MESH_OK)
        goto out;
    err = upsert(s, kind, ns, name, body, resource_version, generation, what);
    if (err != MESH_OK)
        goto out;
    err = add_change(s, resource_version, "put", kind, ns, name, what);
out:
    return op_end(s, err, what);
}

static enum mesh_err sqlite_remove(struct mesh_store *base, const char *kind, const char *ns,
                                   const char *name, uint64_t expected_version)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct current cur;
    char ref[256], what[300];
    uint64_t version = 0;
    enum mesh_err err;

    if (!valid_key(kind, ns, name))
        return invalid_key(s, "remove");
    format_ref(ref, sizeof ref, kind, ns, name);
    snprintf(what, sizeof what, "remove %s", ref);

    err = op_begin(s, what);
    if (err != MESH_OK)
        return err;
    err = read_current(s, kind, ns, name, NULL, &cur, what);
    if (err != MESH_OK)
        goto out;
    if (!cur.exists) {
        err = set_error(s, MESH_E_NOTFOUND, "%s not found", ref);
        goto out;
    }
    err = check_expected(s, kind, ns, name, expected_version, &cur);
    if (err != MESH_OK)
        goto out;
    err = next_version(s, &version, what);
    if (err != MESH_OK)
        goto out;
    sqlite3_stmt *st = s->stmt[ST_DELETE];
    int rc = bind_key(st, kind, ns, name);
    if (rc != SQLITE_OK) {
        err = sqlite_fail(s, rc, what);
        finish(st);
        goto out;
    }
    err = run(s, ST_DELETE, what);
    if (err != MESH_OK)
        goto out;
    err = add_change(s, version, "delete", kind, ns, name, what);
out:
    return op_end(s, err, what);
}

static enum mesh_err sqlite_get(struct mesh_store *base, const char *kind, const char *ns,
                                const char *name, struct mesh_store_record *out)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *st = s->stmt[ST_GET];
    char ref[256], what[300];
    enum mesh_err err = MESH_OK;

    memset(out, 0, sizeof *out);
    if (!valid_key(kind, ns, name))
        return invalid_key(s, "get");
    format_ref(ref, sizeof ref, kind, ns, name);
    snprintf(what, sizeof what, "get %s", ref);

    int rc = bind_key(st, kind, ns, name);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        err = copy_record(s, st, out, what);
    else if (rc == SQLITE_DONE)
        err = set_error(s, MESH_E_NOTFOUND, "%s not found", ref);
    else
        err = sqlite_fail(s, rc, what);
    finish(st);
    return err;
}

/* Makes room for one more row in a growing result array; false (nothing changed) without
 * memory. */
static bool grow_rows(void **rows, size_t *cap, size_t count, size_t size)
{
    if (count < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *grown = realloc(*rows, ncap * size);
    if (!grown)
        return false;
    *rows = grown;
    *cap = ncap;
    return true;
}

static enum mesh_err sqlite_list(struct mesh_store *base, const char *kind, const char *ns,
                                 struct mesh_store_record **out, size_t *n)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct mesh_store_record *recs = NULL;
    size_t count = 0, cap = 0;
    enum mesh_err err = MESH_OK;
    enum stmt_id id =
        kind ? (ns ? ST_LIST_KIND_NS : ST_LIST_KIND) : (ns ? ST_LIST_NS : ST_LIST_ALL);
    sqlite3_stmt *st = s->stmt[id];
    const char *what = "list";
    int rc = SQLITE_OK;

    *out = NULL;
    *n = 0;
    if (kind)
        rc = bind_text(st, 1, kind);
    if (rc == SQLITE_OK && ns)
        rc = bind_text(st, 2, ns);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (!grow_rows((void **)&recs, &cap, count, sizeof *recs)) {
            err = set_error(s, MESH_E_NOMEM, "%s: out of memory", what);
            goto out;
        }
        memset(&recs[count], 0, sizeof recs[count]);
        err = copy_record(s, st, &recs[count], what);
        if (err != MESH_OK)
            goto out;
        count++;
    }
    if (rc != SQLITE_DONE) {
        err = sqlite_fail(s, rc, what);
        goto out;
    }
    *out = recs;
    *n = count;
    recs = NULL; /* the caller owns them now */
    count = 0;
out:
    finish(st);
    mesh_store_records_free(recs, count);
    return err;
}

static enum mesh_err sqlite_changes_after(struct mesh_store *base, uint64_t after, size_t max,
                                          struct mesh_store_change **out, size_t *n)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *st = s->stmt[ST_CHANGES_AFTER];
    struct mesh_store_change *changes = NULL;
    size_t count = 0, cap = 0;
    enum mesh_err err = MESH_OK;
    const char *what = "read changes";

    *out = NULL;
    *n = 0;
    if (max == 0 || after >= (uint64_t)INT64_MAX)
        return MESH_OK;
    int rc = sqlite3_bind_int64(st, 1, (sqlite3_int64)after);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, max > (size_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (!grow_rows((void **)&changes, &cap, count, sizeof *changes)) {
            err = set_error(s, MESH_E_NOMEM, "%s: out of memory", what);
            goto out;
        }
        struct mesh_store_change *c = &changes[count];
        memset(c, 0, sizeof *c);
        count++; /* counted now, so that a failure below frees what was copied */
        c->version = (uint64_t)sqlite3_column_int64(st, 0);
        const unsigned char *op = sqlite3_column_text(st, 1);
        if (op && strcmp((const char *)op, "put") == 0) {
            c->op = MESH_STORE_OP_PUT;
        } else if (op && strcmp((const char *)op, "delete") == 0) {
            c->op = MESH_STORE_OP_DELETE;
        } else {
            err = set_error(s, MESH_E_INTERNAL, "%s: change %llu has an unknown operation", what,
                            (unsigned long long)c->version);
            goto out;
        }
        c->kind = dup_column(st, 2);
        c->ns = dup_column(st, 3);
        c->name = dup_column(st, 4);
        if (!c->kind || !c->ns || !c->name) {
            err = set_error(s, MESH_E_NOMEM, "%s: out of memory", what);
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        err = sqlite_fail(s, rc, what);
        goto out;
    }
    *out = changes;
    *n = count;
    changes = NULL; /* the caller owns them now */
    count = 0;
out:
    finish(st);
    mesh_store_changes_free(changes, count);
    return err;
}

static enum mesh_err sqlite_current_version(struct mesh_store *base, uint64_t *out)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    *out = 0;
    return read_version(s, out, "read the store version");
}

static enum mesh_err sqlite_begin(struct mesh_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (s->in_tx)
        return set_error(s, MESH_E_INTERNAL,
                         "begin: a transaction is already open (transactions do not nest)");
    enum mesh_err err = run(s, ST_BEGIN, "begin");
    if (err != MESH_OK)
        return err;
    s->in_tx = true;
    s->tx_err = MESH_OK;
    return MESH_OK;
}

static enum mesh_err sqlite_commit(struct mesh_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    enum mesh_err err;
    if (!s->in_tx)
        return set_error(s, MESH_E_INTERNAL, "commit: no transaction is open");
    if (tx_lost(s)) {
        err = tx_lost_error(s, "commit");
    } else {
        err = run(s, ST_COMMIT, "commit");
        if (err != MESH_OK && !sqlite3_get_autocommit(s->db))
            run_quiet(s, ST_ROLLBACK);
    }
    s->in_tx = false;
    s->tx_err = MESH_OK;
    return err;
}

static void sqlite_rollback(struct mesh_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (!s->in_tx)
        return;
    if (!sqlite3_get_autocommit(s->db))
        run_quiet(s, ST_ROLLBACK);
    s->in_tx = false;
    s->tx_err = MESH_OK;
}

static void sqlite_close(struct mesh_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    if (s->db) {
        /* An open transaction dies with the handle: nothing of it is written. */
        if (!sqlite3_get_autocommit(s->db) && s->stmt[ST_ROLLBACK])
            run_quiet(s, ST_ROLLBACK);
        for (int i = 0; i < ST_COUNT; i++)
            sqlite3_finalize(s->stmt[i]);
        sqlite3_close(s->db);
    }
    free(s);
}

static const struct mesh_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .put = sqlite_put,
    .get = sqlite_get,
    .list = sqlite_list,
    .remove = sqlite_remove,
    .changes_after = sqlite_changes_after,
    .current_version = sqlite_current_version,
    .import = sqlite_import,
};

/* mkdir -p with mode 0700: the store holds the mesh's whole configuration. An existing directory
 * keeps the mode its owner gave it. */
static enum mesh_err make_dir(struct sqlite_store *s, const char *dir)
{
    enum mesh_err err = MESH_OK;
    struct stat sb;
    char *path = strdup(dir);
    if (!path)
        return set_error(s, MESH_E_NOMEM, "open store %s: out of memory", dir);
    for (char *c = path + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char saved = *c;
        *c = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            int mkdir_errno = errno;
            /* mkdir may refuse an existing directory for lack of permission on its parent. */
            if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                err = set_error(s, MESH_E_IO, "open store %s: cannot create directory %s: %s", dir,
                                path, strerror(mkdir_errno));
                goto out;
            }
        }
        *c = saved;
        if (saved == '\0')
            break;
    }
    if (stat(dir, &sb) != 0) {
        err = set_error(s, MESH_E_IO, "open store %s: %s", dir, strerror(errno));
        goto out;
    }
    if (!S_ISDIR(sb.st_mode))
        err = set_error(s, MESH_E_IO, "open store %s: not a directory", dir);
out:
    free(path);
    return err;
}

/* Runs constant SQL (pragmas, migrations, which carry no values). */
static enum mesh_err exec_sql(struct sqlite_store *s, const char *sql, const char *what)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? MESH_OK : sqlite_fail(s, rc, what);
}

static enum mesh_err configure(struct sqlite_store *s, const char *path)
{
    char what[600];
    sqlite3_stmt *st = NULL;
    enum mesh_err err = MESH_OK;

    /* A writer waits for another process's transaction instead of failing at once. */
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    /* WAL: readers never block the writer nor each other. With synchronous=FULL every commit
     * fsyncs the log, so an apply that returned success survives kill -9 and power loss. */
    snprintf(what, sizeof what, "open %s: set journal_mode=WAL", path);
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    /* Switching a fresh file to WAL needs an exclusive lock, and SQLite answers BUSY at once,
     * without its busy handler, when another process opening the same new store holds a shared
     * one: retry for the same budget a writer gets. */
    for (int waited = 0; rc == SQLITE_OK || (rc == SQLITE_BUSY && waited < BUSY_TIMEOUT_MS);
         waited += 10) {
        if (rc == SQLITE_BUSY) {
            sqlite3_reset(st);
            sqlite3_sleep(10);
        }
        rc = sqlite3_step(st);
        if (rc != SQLITE_BUSY)
            break;
    }
    if (rc != SQLITE_ROW) {
        err = sqlite_fail(s, rc, what);
        goto out;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        err = set_error(s, MESH_E_UNSUPPORTED,
                        "%s: SQLite kept journal_mode=%s (the file system may not support the "
                        "shared memory WAL needs)",
                        what, mode ? mode : "?");
        goto out;
    }
    snprintf(what, sizeof what, "open %s: set synchronous=FULL", path);
    err = exec_sql(s, "PRAGMA synchronous = FULL", what);
    if (err != MESH_OK)
        goto out;
    snprintf(what, sizeof what, "open %s: set foreign_keys=ON", path);
    err = exec_sql(s, "PRAGMA foreign_keys = ON", what);
out:
    sqlite3_finalize(st);
    return err;
}

/* The schema version of the database; 0 for one that has never been migrated. */
static enum mesh_err read_schema_version(struct sqlite_store *s, int64_t *out, const char *what)
{
    sqlite3_stmt *st = NULL;
    enum mesh_err err = MESH_OK;
    *out = 0;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT count(*) FROM sqlite_master"
                                " WHERE type = 'table' AND name = 'schema_version'",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        err = sqlite_fail(s, rc, what);
        goto out;
    }
    if (sqlite3_column_int64(st, 0) == 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    rc =
        sqlite3_prepare_v2(s->db, "SELECT version FROM schema_version WHERE id = 1", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        err = sqlite_fail(s, rc, what);
out:
    sqlite3_finalize(st);
    return err;
}

static enum mesh_err check_not_newer(struct sqlite_store *s, int64_t version, const char *path)
{
    if (version <= SCHEMA_VERSION)
        return MESH_OK;
    return set_error(s, MESH_E_UNSUPPORTED,
                     "open %s: the store has schema version %lld, but this build of libmesh knows "
                     "only up to version %lld; use a newer meshctl/meshd with this store",
                     path, (long long)version, (long long)SCHEMA_VERSION);
}

static enum mesh_err write_schema_version(struct sqlite_store *s, const char *what)
{
    sqlite3_stmt *st = NULL;
    enum mesh_err err = MESH_OK;
    int rc = sqlite3_prepare_v2(
        s->db, "INSERT OR REPLACE INTO schema_version (id, version) VALUES (1, ?1)", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 1, SCHEMA_VERSION);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        err = sqlite_fail(s, rc, what);
    sqlite3_finalize(st);
    return err;
}

/* Brings the schema to SCHEMA_VERSION: every migration newer than the stored version, all in one
 * transaction, so that a crash half-way leaves the old schema intact. */
static enum mesh_err migrate(struct sqlite_store *s, const char *path)
{
    char what[600];
    int64_t version = 0;
    bool in_tx = false;

    snprintf(what, sizeof what, "open %s: read the schema version", path);
    enum mesh_err err = read_schema_version(s, &version, what);
    if (err == MESH_OK)
        err = check_not_newer(s, version, path);
    if (err != MESH_OK || version == SCHEMA_VERSION)
        return err;

    snprintf(what, sizeof what, "open %s: migrate the schema", path);
    err = exec_sql(s, "BEGIN IMMEDIATE", what);
    if (err != MESH_OK)
        goto out;
    in_tx = true;
    /* Read again under the write lock: another process may have migrated meanwhile. */
    err = read_schema_version(s, &version, what);
    if (err == MESH_OK)
        err = check_not_newer(s, version, path);
    if (err != MESH_OK)
        goto out;
    err = exec_sql(s,
                   "CREATE TABLE IF NOT EXISTS schema_version ("
                   " id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
                   what);
    for (int64_t v = version; err == MESH_OK && v < SCHEMA_VERSION; v++) {
        snprintf(what, sizeof what, "open %s: migrate the schema to version %lld", path,
                 (long long)v + 1);
        err = exec_sql(s, migrations[v], what);
    }
    if (err == MESH_OK)
        err = write_schema_version(s, what);
    if (err == MESH_OK)
        err = exec_sql(s, "COMMIT", what);
    if (err == MESH_OK)
        in_tx = false;
out:
    if (in_tx && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

static enum mesh_err prepare_statements(struct sqlite_store *s, const char *path)
{
    char what[600];
    for (int i = 0; i < ST_COUNT; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                                    NULL);
        if (rc != SQLITE_OK) {
            snprintf(what, sizeof what, "open %s: prepare statement %d", path, i);
            return sqlite_fail(s, rc, what);
        }
    }
    return MESH_OK;
}

enum mesh_err mesh_store_open_sqlite(const char *dir, struct mesh_store **out, char **errmsg)
{
    struct sqlite_store *s = NULL;
    char *path = NULL;
    enum mesh_err err = MESH_OK;

    *out = NULL;
    if (errmsg)
        *errmsg = NULL;
    s = calloc(1, sizeof *s);
    if (!s)
        return MESH_E_NOMEM;
    s->base.ops = &sqlite_ops;
    if (!dir || !dir[0]) {
        err = set_error(s, MESH_E_INVALID, "open store: no directory given");
        goto out;
    }
    err = make_dir(s, dir);
    if (err != MESH_OK)
        goto out;
    size_t len = strlen(dir) + sizeof "/mesh.db";
    path = malloc(len);
    if (!path) {
        err = set_error(s, MESH_E_NOMEM, "open store %s: out of memory", dir);
        goto out;
    }
    snprintf(path, len, "%s/mesh.db", dir);

    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        if (!s->db) /* SQLite could not even allocate the handle */
            err = set_error(s, MESH_E_NOMEM, "open %s: out of memory", path);
        else
            err = set_error(s, err_from_sqlite(rc), "open %s: %s", path, sqlite3_errmsg(s->db));
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    err = configure(s, path);
    if (err == MESH_OK)
        err = migrate(s, path);
    if (err == MESH_OK)
        err = prepare_statements(s, path);
out:
    free(path);
    if (err != MESH_OK) {
        if (errmsg)
            *errmsg = strdup(s->base.errmsg);
        sqlite_close(&s->base);
        return err;
    }
    *out = &s->base;
    return MESH_OK;
}
