/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the SQLite store: versions, generations, conflicts, transactions, durability. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"

#define VS "VirtualService"

struct fixture {
    char dir[64];   /* fresh temporary directory, removed after the test */
    char store[96]; /* dir/store: where the tests open their store */
    char db[128];   /* store/mesh.db */
};

static void remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char child[512];
                snprintf(child, sizeof child, "%s/%s", path, e->d_name);
                remove_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    snprintf(fx->store, sizeof fx->store, "%s/store", fx->dir);
    snprintf(fx->db, sizeof fx->db, "%s/mesh.db", fx->store);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

static struct mesh_store *open_store(const char *dir)
{
    struct mesh_store *st = NULL;
    char *msg = NULL;
    enum mesh_err err = mesh_store_open_sqlite(dir, &st, &msg);
    if (err != MESH_OK)
        fail_msg("open %s: %s: %s", dir, mesh_err_name(err), msg ? msg : "(no message)");
    assert_null(msg);
    assert_non_null(st);
    return st;
}

static struct mesh_store_put_result put_ok(struct mesh_store *st, const char *kind, const char *ns,
                                           const char *name, const char *body)
{
    struct mesh_store_put_result res;
    enum mesh_err err = st->ops->put(st, kind, ns, name, body, 0, &res);
    if (err != MESH_OK)
        fail_msg("put %s %s/%s: %s: %s", kind, ns, name, mesh_err_name(err), mesh_store_error(st));
    return res;
}

static uint64_t current_version(struct mesh_store *st)
{
    uint64_t v = 12345;
    assert_int_equal(st->ops->current_version(st, &v), MESH_OK);
    return v;
}

static size_t count_changes(struct mesh_store *st)
{
    struct mesh_store_change *ch = NULL;
    size_t n = 0;
    assert_int_equal(st->ops->changes_after(st, 0, 100000, &ch, &n), MESH_OK);
    mesh_store_changes_free(ch, n);
    return n;
}

static void assert_absent(struct mesh_store *st, const char *kind, const char *ns, const char *name)
{
    struct mesh_store_record rec;
    assert_int_equal(st->ops->get(st, kind, ns, name, &rec), MESH_E_NOTFOUND);
    assert_null(rec.body);
}

static void assert_body(struct mesh_store *st, const char *kind, const char *ns, const char *name,
                        const char *body, uint64_t version, uint64_t generation)
{
    struct mesh_store_record rec;
    enum mesh_err err = st->ops->get(st, kind, ns, name, &rec);
    if (err != MESH_OK)
        fail_msg("get %s %s/%s: %s: %s", kind, ns, name, mesh_err_name(err), mesh_store_error(st));
    assert_string_equal(rec.kind, kind);
    assert_string_equal(rec.ns, ns);
    assert_string_equal(rec.name, name);
    assert_string_equal(rec.body, body);
    assert_int_equal(rec.resource_version, version);
    assert_int_equal(rec.generation, generation);
    mesh_store_record_clear(&rec);
    assert_null(rec.kind);
}

/* Runs SQL on the database file behind the store's back, as another tool would. */
static void raw_exec(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(h);
}

static void raw_query(const char *db, const char *sql, char *out, size_t size)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    snprintf(out, size, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(h);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_store_open_creates_private_directory_in_wal_mode(void **state)
{
    struct fixture *fx = *state;
    char nested[160], db[192], mode[32];
    struct stat sb;

    snprintf(nested, sizeof nested, "%s/a/b", fx->dir);
    struct mesh_store *st = open_store(nested);
    assert_string_equal(st->ops->name, "sqlite");
    assert_int_equal(stat(nested, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
    snprintf(db, sizeof db, "%s/mesh.db", nested);
    assert_int_equal(stat(db, &sb), 0);
    raw_query(db, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    raw_query(db, "SELECT version FROM schema_version", mode, sizeof mode);
    assert_string_equal(mode, "1");
    assert_int_equal(current_version(st), 0);
    mesh_store_close(st);
}

static void test_store_create_get_list_remove(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);

    struct mesh_store_put_result res = put_ok(st, VS, "default", "payment", "{\"a\":1}");
    assert_true(res.created);
    assert_false(res.unchanged);
    assert_int_equal(res.resource_version, 1);
    assert_int_equal(res.generation, 1);
    assert_body(st, VS, "default", "payment", "{\"a\":1}", 1, 1);

    struct mesh_store_record *recs = NULL;
    size_t n = 99;
    assert_int_equal(st->ops->list(st, VS, "default", &recs, &n), MESH_OK);
    assert_int_equal(n, 1);
    assert_string_equal(recs[0].name, "payment");
    assert_string_equal(recs[0].body, "{\"a\":1}");
    mesh_store_records_free(recs, n);

    assert_int_equal(st->ops->remove(st, VS, "default", "payment", 0), MESH_OK);
    assert_absent(st, VS, "default", "payment");
    assert_string_equal(mesh_store_error(st), "VirtualService default/payment not found");
    assert_int_equal(st->ops->remove(st, VS, "default", "payment", 0), MESH_E_NOTFOUND);
    assert_string_equal(mesh_store_error(st), "VirtualService default/payment not found");
    assert_int_equal(st->ops->list(st, NULL, NULL, &recs, &n), MESH_OK);
    assert_int_equal(n, 0);
    assert_null(recs);
    mesh_store_close(st);
}

static void test_store_versions_are_monotonic_and_store_wide(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);

    assert_int_equal(put_ok(st, VS, "default", "a", "{}").resource_version, 1);
    assert_int_equal(put_ok(st, "Service", "default", "b", "{}").resource_version, 2);
    assert_int_equal(put_ok(st, VS, "other", "a", "{}").resource_version, 3);
    assert_int_equal(put_ok(st, VS, "default", "a", "{\"x\":1}").resource_version, 4);
    assert_int_equal(st->ops->remove(st, "Service", "default", "b", 0), MESH_OK);
    assert_int_equal(current_version(st), 5);
    /* Recreated after a delete: a new version, and a fresh generation. */
    struct mesh_store_put_result res = put_ok(st, "Service", "default", "b", "{}");
    assert_true(res.created);
    assert_int_equal(res.resource_version, 6);
    assert_int_equal(res.generation, 1);
    assert_int_equal(current_version(st), 6);
    assert_body(st, VS, "other", "a", "{}", 3, 1);
    mesh_store_close(st);
}

static void test_store_generation_bumps_only_on_content_change(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);

    assert_int_equal(put_ok(st, VS, "default", "a", "{\"w\":1}").generation, 1);
    assert_int_equal(put_ok(st, VS, "default", "a", "{\"w\":1}").generation, 1);
    struct mesh_store_put_result res = put_ok(st, VS, "default", "a", "{\"w\":2}");
    assert_false(res.created);
    assert_false(res.unchanged);
    assert_int_equal(res.generation, 2);
    assert_int_equal(res.resource_version, 2);
    assert_int_equal(put_ok(st, VS, "default", "a", "{\"w\":2}").generation, 2);
    /* A body that only grows is a change too, not a prefix match. */
    assert_int_equal(put_ok(st, VS, "default", "a", "{\"w\":2} ").generation, 3);
    assert_body(st, VS, "default", "a", "{\"w\":2} ", 3, 3);
    mesh_store_close(st);
}

static void test_store_identical_put_is_a_noop(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);

    put_ok(st, VS, "default", "a", "{\"w\":1}");
    put_ok(st, VS, "default", "b", "{}");
    struct mesh_store_put_result res = put_ok(st, VS, "default", "a", "{\"w\":1}");
    assert_true(res.unchanged);
    assert_false(res.created);
    assert_int_equal(res.resource_version, 1);
    assert_int_equal(res.generation, 1);
    assert_int_equal(current_version(st), 2);
    assert_int_equal(count_changes(st), 2);
    assert_body(st, VS, "default", "a", "{\"w\":1}", 1, 1);
    /* The right expected version with the same body is just as much a no-op. */
    assert_int_equal(st->ops->put(st, VS, "default", "a", "{\"w\":1}", 1, &res), MESH_OK);
    assert_true(res.unchanged);
    assert_int_equal(current_version(st), 2);
    mesh_store_close(st);
}

static void test_store_stale_expected_version_conflicts_and_keeps_record(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_put_result res;

    put_ok(st, VS, "default", "payment", "{\"v\":1}");
    put_ok(st, VS, "default", "payment", "{\"v\":2}");
    assert_int_equal(st->ops->put(st, VS, "default", "payment", "{\"v\":3}", 1, &res),
                     MESH_E_CONFLICT);
    assert_string_equal(
        mesh_store_error(st),
        "conflict: VirtualService default/payment is at resource_version 2, the request names 1");
    assert_int_equal(res.resource_version, 0);
    assert_body(st, VS, "default", "payment", "{\"v\":2}", 2, 2);
    assert_int_equal(current_version(st), 2);

    /* The same body with a stale version is still a conflict: the caller read old data. */
    assert_int_equal(st->ops->put(st, VS, "default", "payment", "{\"v\":2}", 1, &res),
                     MESH_E_CONFLICT);
    /* Naming a version for a record that does not exist is a conflict too. */
    assert_int_equal(st->ops->put(st, VS, "default", "ghost", "{}", 4, &res), MESH_E_CONFLICT);
    assert_non_null(strstr(mesh_store_error(st), "VirtualService default/ghost does not exist"));
    assert_absent(st, VS, "default", "ghost");

    assert_int_equal(st->ops->remove(st, VS, "default", "payment", 1), MESH_E_CONFLICT);
    assert_non_null(strstr(mesh_store_error(st), "is at resource_version 2, the request names 1"));
    assert_body(st, VS, "default", "payment", "{\"v\":2}", 2, 2);
    assert_int_equal(current_version(st), 2);

    /* The current version goes through. */
    assert_int_equal(st->ops->put(st, VS, "default", "payment", "{\"v\":3}", 2, &res), MESH_OK);
    assert_int_equal(res.resource_version, 3);
    assert_int_equal(res.generation, 3);
    assert_int_equal(st->ops->remove(st, VS, "default", "payment", 3), MESH_OK);
    assert_absent(st, VS, "default", "payment");
    mesh_store_close(st);
}

static void test_store_rollback_leaves_nothing(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);

    put_ok(st, VS, "default", "keep", "{}");
    assert_int_equal(st->ops->begin(st), MESH_OK);
    put_ok(st, VS, "default", "a", "{}");
    put_ok(st, VS, "default", "b", "{}");
    put_ok(st, "Service", "default", "c", "{}");
    put_ok(st, VS, "default", "keep", "{\"changed\":true}");
    /* Inside the transaction its own writes are visible. */
    assert_int_equal(current_version(st), 5);
    assert_body(st, VS, "default", "a", "{}", 2, 1);
    st->ops->rollback(st);

    assert_absent(st, VS, "default", "a");
    assert_absent(st, VS, "default", "b");
    assert_absent(st, "Service", "default", "c");
    assert_body(st, VS, "default", "keep", "{}", 1, 1);
    assert_int_equal(current_version(st), 1);
    assert_int_equal(count_changes(st), 1);
    /* The versions the rolled-back transaction used are handed out again: nobody saw them. */
    assert_int_equal(put_ok(st, VS, "default", "a", "{}").resource_version, 2);
    mesh_store_close(st);
}

static void test_store_commit_makes_all_visible(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store *other = open_store(fx->store);

    assert_int_equal(st->ops->begin(st), MESH_OK);
    put_ok(st, VS, "default", "a", "{}");
    put_ok(st, VS, "default", "b", "{}");
    put_ok(st, "Service", "default", "c", "{}");
    /* Another handle sees nothing before the commit. */
    assert_absent(other, VS, "default", "a");
    assert_int_equal(current_version(other), 0);
    assert_int_equal(st->ops->commit(st), MESH_OK);

    assert_body(other, VS, "default", "a", "{}", 1, 1);
    assert_body(other, VS, "default", "b", "{}", 2, 1);
    assert_body(other, "Service", "default", "c", "{}", 3, 1);
    assert_int_equal(current_version(other), 3);
    /* After commit the handle writes on its own again. */
    put_ok(st, VS, "default", "d", "{}");
    assert_body(other, VS, "default", "d", "{}", 4, 1);
    mesh_store_close(other);
    mesh_store_close(st);
}

static void test_store_changes_after_returns_puts_and_deletes_in_order(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_change *ch = NULL;
    size_t n = 0;

    put_ok(st, VS, "default", "a", "{}");     /* 1 */
    put_ok(st, "Service", "prod", "b", "{}"); /* 2 */
    put_ok(st, VS, "default", "a", "{}");     /* unchanged: no change */
    assert_int_equal(st->ops->remove(st, VS, "default", "a", 0), MESH_OK); /* 3 */
    put_ok(st, "Service", "prod", "b", "{\"x\":1}");                       /* 4 */

    assert_int_equal(st->ops->changes_after(st, 0, 100, &ch, &n), MESH_OK);
    assert_int_equal(n, 4);
    const struct {
        uint64_t version;
        enum mesh_store_op op;
        const char *kind, *ns, *name;
    } want[] = {
        {1, MESH_STORE_OP_PUT, VS, "default", "a"},
        {2, MESH_STORE_OP_PUT, "Service", "prod", "b"},
        {3, MESH_STORE_OP_DELETE, VS, "default", "a"},
        {4, MESH_STORE_OP_PUT, "Service", "prod", "b"},
    };
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ch[i].version, want[i].version);
        assert_int_equal(ch[i].op, want[i].op);
        assert_string_equal(ch[i].kind, want[i].kind);
        assert_string_equal(ch[i].ns, want[i].ns);
        assert_string_equal(ch[i].name, want[i].name);
    }
    mesh_store_changes_free(ch, n);

    assert_int_equal(st->ops->changes_after(st, 2, 1, &ch, &n), MESH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ch[0].version, 3);
    assert_int_equal(ch[0].op, MESH_STORE_OP_DELETE);
    mesh_store_changes_free(ch, n);

    assert_int_equal(st->ops->changes_after(st, 4, 100, &ch, &n), MESH_OK);
    assert_int_equal(n, 0);
    assert_null(ch);
    assert_int_equal(st->ops->changes_after(st, 0, 0, &ch, &n), MESH_OK);
    assert_int_equal(n, 0);
    mesh_store_close(st);
}

static void test_store_data_survives_close_and_reopen(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    put_ok(st, VS, "default", "a", "{\"a\":1}");
    put_ok(st, VS, "default", "a", "{\"a\":2}");
    put_ok(st, VS, "default", "gone", "{}");
    assert_int_equal(st->ops->remove(st, VS, "default", "gone", 0), MESH_OK);
    mesh_store_close(st);

    st = open_store(fx->store);
    assert_body(st, VS, "default", "a", "{\"a\":2}", 2, 2);
    assert_absent(st, VS, "default", "gone");
    assert_int_equal(current_version(st), 4);
    assert_int_equal(count_changes(st), 4);
    /* A delete's version is never reused, even across a restart. */
    assert_int_equal(st->ops->remove(st, VS, "default", "a", 0), MESH_OK);
    mesh_store_close(st);
    st = open_store(fx->store);
    assert_int_equal(current_version(st), 5);
    assert_int_equal(put_ok(st, VS, "default", "new", "{}").resource_version, 6);
    mesh_store_close(st);
}

static void test_store_close_discards_open_transaction(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    assert_int_equal(st->ops->begin(st), MESH_OK);
    put_ok(st, VS, "default", "a", "{}");
    mesh_store_close(st);

    st = open_store(fx->store);
    assert_absent(st, VS, "default", "a");
    assert_int_equal(current_version(st), 0);
    mesh_store_close(st);
}

static void test_store_refuses_newer_schema_naming_both_versions(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    put_ok(st, VS, "default", "a", "{}");
    mesh_store_close(st);
    raw_exec(fx->db, "UPDATE schema_version SET version = 99");

    char *msg = NULL;
    st = (struct mesh_store *)&msg; /* must be reset to NULL */
    assert_int_equal(mesh_store_open_sqlite(fx->store, &st, &msg), MESH_E_UNSUPPORTED);
    assert_null(st);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "schema version 99"));
    assert_non_null(strstr(msg, "only up to version 1"));
    assert_non_null(strstr(msg, fx->db));
    free(msg);

    /* Refusing changed nothing: the data is still there for the newer binary. */
    raw_exec(fx->db, "UPDATE schema_version SET version = 1");
    st = open_store(fx->store);
    assert_body(st, VS, "default", "a", "{}", 1, 1);
    mesh_store_close(st);
}

static void test_store_open_reports_unusable_files(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = NULL;
    char *msg = NULL;
    char path[192];
    FILE *f;

    /* Not a database: a corrupt store is an internal error, never silently recreated. */
    assert_int_equal(mkdir(fx->store, 0700), 0);
    f = fopen(fx->db, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database file at all. ", f);
    fclose(f);
    assert_int_equal(mesh_store_open_sqlite(fx->store, &st, &msg), MESH_E_INTERNAL);
    assert_null(st);
    assert_non_null(strstr(msg, "not a database"));
    assert_non_null(strstr(msg, fx->db));
    free(msg);
    msg = NULL;

    /* mesh.db is a directory: SQLite cannot open it. */
    assert_int_equal(unlink(fx->db), 0);
    assert_int_equal(mkdir(fx->db, 0700), 0);
    assert_int_equal(mesh_store_open_sqlite(fx->store, &st, &msg), MESH_E_UNAVAILABLE);
    assert_null(st);
    assert_non_null(strstr(msg, "unable to open"));
    free(msg);
    msg = NULL;

    /* The store path is a regular file. */
    snprintf(path, sizeof path, "%s/file", fx->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(mesh_store_open_sqlite(path, &st, &msg), MESH_E_IO);
    assert_null(st);
    assert_non_null(strstr(msg, "not a directory"));
    free(msg);
    msg = NULL;

    assert_int_equal(mesh_store_open_sqlite("", &st, &msg), MESH_E_INVALID);
    assert_non_null(msg);
    free(msg);
    /* errmsg may be NULL when the caller wants only the code. */
    assert_int_equal(mesh_store_open_sqlite(path, &st, NULL), MESH_E_IO);
}

struct writer {
    struct mesh_store *st;
    atomic_int done;
    enum mesh_err err;
    struct mesh_store_put_result res;
    double elapsed;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    double start = now_s();
    w->err = w->st->ops->put(w->st, "Service", "default", "b", "{}", 0, &w->res);
    w->elapsed = now_s() - start;
    atomic_store(&w->done, 1);
    return NULL;
}

static void test_store_second_writer_waits_instead_of_failing(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *first = open_store(fx->store);
    struct mesh_store *second = open_store(fx->store);
    struct writer w = {.st = second};
    pthread_t thread;

    assert_int_equal(first->ops->begin(first), MESH_OK);
    put_ok(first, VS, "default", "a", "{}");
    /* Readers are not blocked by the open write transaction, and do not see it. */
    assert_absent(second, VS, "default", "a");

    assert_int_equal(pthread_create(&thread, NULL, writer_main, &w), 0);
    sleep_ms(300);
    int waiting = !atomic_load(&w.done);
    assert_int_equal(first->ops->commit(first), MESH_OK);
    assert_int_equal(pthread_join(thread, NULL), 0);

    assert_true(waiting);
    if (w.err != MESH_OK)
        fail_msg("second writer: %s: %s", mesh_err_name(w.err), mesh_store_error(second));
    assert_true(w.elapsed >= 0.25);
    /* It ran after the first transaction, on top of its version. */
    assert_int_equal(w.res.resource_version, 2);
    assert_body(first, "Service", "default", "b", "{}", 2, 1);
    assert_body(second, VS, "default", "a", "{}", 1, 1);
    mesh_store_close(second);
    mesh_store_close(first);
}

/* Child of the test below: opens the store (racing the others on its creation and migration)
 * and writes its own documents, half of them in one transaction. Exits 0 on success. */
static void writer_process(const char *dir, int id)
{
    struct mesh_store *st = NULL;
    char *msg = NULL;
    int rc = 0;
    if (mesh_store_open_sqlite(dir, &st, &msg) != MESH_OK) {
        fprintf(stderr, "writer %d: %s\n", id, msg);
        free(msg);
        _exit(1);
    }
    for (int i = 0; i < 20 && rc == 0; i++) {
        char name[32];
        struct mesh_store_put_result res;
        snprintf(name, sizeof name, "w%d-%02d", id, i);
        if (i == 10 && st->ops->begin(st) != MESH_OK)
            rc = 2;
        if (rc == 0 && st->ops->put(st, "Service", "default", name, "{}", 0, &res) != MESH_OK)
            rc = 3;
        if (rc == 0 && i == 19 && st->ops->commit(st) != MESH_OK)
            rc = 4;
    }
    if (rc != 0)
        fprintf(stderr, "writer %d: %s\n", id, mesh_store_error(st));
    mesh_store_close(st);
    _exit(rc);
}

static void test_store_concurrent_processes_serialize_writes(void **state)
{
    struct fixture *fx = *state;
    enum { WRITERS = 4 };
    pid_t pids[WRITERS];

    for (int i = 0; i < WRITERS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0)
            writer_process(fx->store, i);
    }
    for (int i = 0; i < WRITERS; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }

    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_record *recs = NULL;
    size_t n = 0;
    assert_int_equal(st->ops->list(st, NULL, NULL, &recs, &n), MESH_OK);
    assert_int_equal(n, WRITERS * 20);
    /* Every write got its own version: no version was handed out twice. */
    bool seen[WRITERS * 20 + 1] = {false};
    for (size_t i = 0; i < n; i++) {
        assert_in_range(recs[i].resource_version, 1, WRITERS * 20);
        assert_false(seen[recs[i].resource_version]);
        seen[recs[i].resource_version] = true;
    }
    mesh_store_records_free(recs, n);
    assert_int_equal(current_version(st), WRITERS * 20);
    assert_int_equal(count_changes(st), WRITERS * 20);
    mesh_store_close(st);
}

static void test_store_conflict_inside_transaction_keeps_the_transaction(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_put_result res;

    put_ok(st, VS, "default", "a", "{}");
    assert_int_equal(st->ops->begin(st), MESH_OK);
    put_ok(st, VS, "default", "b", "{}");
    assert_int_equal(st->ops->put(st, VS, "default", "a", "{\"x\":1}", 7, &res), MESH_E_CONFLICT);
    assert_int_equal(st->ops->remove(st, VS, "default", "nope", 0), MESH_E_NOTFOUND);
    put_ok(st, VS, "default", "c", "{}");
    assert_int_equal(st->ops->commit(st), MESH_OK);

    assert_body(st, VS, "default", "a", "{}", 1, 1);
    assert_body(st, VS, "default", "b", "{}", 2, 1);
    assert_body(st, VS, "default", "c", "{}", 3, 1);
    assert_int_equal(current_version(st), 3);
    mesh_store_close(st);
}

/* A write that fails half-way (here: a trigger refuses the change-log row after the document was
 * written and the version counter bumped) must leave nothing of itself, with or without begin. */
static void test_store_failed_write_leaves_nothing_half_done(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_put_result res;

    put_ok(st, VS, "default", "victim", "{}");
    raw_exec(fx->db, "CREATE TRIGGER inject_failure BEFORE INSERT ON changes"
                     " WHEN NEW.name = 'boom' OR (NEW.op = 'delete' AND NEW.name = 'victim')"
                     " BEGIN SELECT RAISE(ABORT, 'injected failure'); END");

    assert_int_equal(st->ops->put(st, VS, "default", "boom", "{}", 0, &res), MESH_E_INTERNAL);
    assert_string_equal(mesh_store_error(st), "put VirtualService default/boom: injected failure");
    assert_absent(st, VS, "default", "boom");
    assert_int_equal(st->ops->remove(st, VS, "default", "victim", 0), MESH_E_INTERNAL);
    assert_non_null(strstr(mesh_store_error(st), "remove VirtualService default/victim"));
    assert_body(st, VS, "default", "victim", "{}", 1, 1);
    assert_int_equal(current_version(st), 1);

    /* Inside a transaction only the failed write is undone; the rest commits. */
    assert_int_equal(st->ops->begin(st), MESH_OK);
    put_ok(st, VS, "default", "a", "{}");
    assert_int_equal(st->ops->put(st, VS, "default", "boom", "{}", 0, &res), MESH_E_INTERNAL);
    assert_int_equal(st->ops->remove(st, VS, "default", "victim", 0), MESH_E_INTERNAL);
    put_ok(st, VS, "default", "c", "{}");
    assert_int_equal(st->ops->commit(st), MESH_OK);

    assert_absent(st, VS, "default", "boom");
    assert_body(st, VS, "default", "victim", "{}", 1, 1);
    assert_body(st, VS, "default", "a", "{}", 2, 1);
    assert_body(st, VS, "default", "c", "{}", 3, 1);
    assert_int_equal(current_version(st), 3);
    assert_int_equal(count_changes(st), 3);
    mesh_store_close(st);
}

static void test_store_transactions_do_not_nest(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);

    assert_int_equal(st->ops->commit(st), MESH_E_INTERNAL);
    assert_non_null(strstr(mesh_store_error(st), "no transaction"));
    st->ops->rollback(st); /* harmless without a transaction */

    assert_int_equal(st->ops->begin(st), MESH_OK);
    put_ok(st, VS, "default", "a", "{}");
    assert_int_equal(st->ops->begin(st), MESH_E_INTERNAL);
    assert_non_null(strstr(mesh_store_error(st), "do not nest"));
    /* The refused begin did not disturb the open transaction. */
    assert_int_equal(st->ops->commit(st), MESH_OK);
    assert_body(st, VS, "default", "a", "{}", 1, 1);
    mesh_store_close(st);
}

static void test_store_list_filters_and_sorts(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_record *recs = NULL;
    size_t n = 0;

    /* Written out of order on purpose. */
    put_ok(st, VS, "prod", "b", "{}");
    put_ok(st, "Service", "default", "z", "{}");
    put_ok(st, VS, "default", "c", "{}");
    put_ok(st, VS, "default", "a", "{}");
    put_ok(st, "Service", "prod", "a", "{}");

    assert_int_equal(st->ops->list(st, NULL, NULL, &recs, &n), MESH_OK);
    const char *all[][3] = {
        {"Service", "default", "z"}, {"Service", "prod", "a"}, {VS, "default", "a"},
        {VS, "default", "c"},        {VS, "prod", "b"},
    };
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(recs[i].kind, all[i][0]);
        assert_string_equal(recs[i].ns, all[i][1]);
        assert_string_equal(recs[i].name, all[i][2]);
    }
    mesh_store_records_free(recs, n);

    assert_int_equal(st->ops->list(st, VS, NULL, &recs, &n), MESH_OK);
    assert_int_equal(n, 3);
    assert_string_equal(recs[0].name, "a");
    assert_string_equal(recs[2].ns, "prod");
    mesh_store_records_free(recs, n);

    assert_int_equal(st->ops->list(st, NULL, "prod", &recs, &n), MESH_OK);
    assert_int_equal(n, 2);
    assert_string_equal(recs[0].kind, "Service");
    assert_string_equal(recs[1].kind, VS);
    mesh_store_records_free(recs, n);

    assert_int_equal(st->ops->list(st, VS, "default", &recs, &n), MESH_OK);
    assert_int_equal(n, 2);
    assert_string_equal(recs[0].name, "a");
    assert_string_equal(recs[1].name, "c");
    assert_int_equal(recs[1].resource_version, 3);
    mesh_store_records_free(recs, n);

    assert_int_equal(st->ops->list(st, "CircuitBreaker", NULL, &recs, &n), MESH_OK);
    assert_int_equal(n, 0);

    /* Many records: the result array grows past its first allocation. */
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "svc-%02d", i);
        put_ok(st, "CircuitBreaker", "default", name, "{}");
    }
    assert_int_equal(st->ops->list(st, "CircuitBreaker", "default", &recs, &n), MESH_OK);
    assert_int_equal(n, 40);
    assert_string_equal(recs[39].name, "svc-39");
    mesh_store_records_free(recs, n);
    mesh_store_close(st);
}

static void test_store_accepts_empty_namespace_and_rejects_bad_keys(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_put_result res;
    struct mesh_store_record rec;

    put_ok(st, "MeshConfig", "", "mesh", "{}");
    assert_body(st, "MeshConfig", "", "mesh", "{}", 1, 1);
    assert_int_equal(st->ops->get(st, "MeshConfig", "", "other", &rec), MESH_E_NOTFOUND);
    assert_string_equal(mesh_store_error(st), "MeshConfig other not found");

    assert_int_equal(st->ops->put(st, "", "default", "a", "{}", 0, &res), MESH_E_INVALID);
    assert_int_equal(st->ops->put(st, VS, NULL, "a", "{}", 0, &res), MESH_E_INVALID);
    assert_int_equal(st->ops->put(st, VS, "default", "", "{}", 0, &res), MESH_E_INVALID);
    assert_int_equal(st->ops->put(st, VS, "default", "a", NULL, 0, &res), MESH_E_INVALID);
    assert_int_equal(st->ops->get(st, NULL, "default", "a", &rec), MESH_E_INVALID);
    assert_int_equal(st->ops->remove(st, VS, "default", NULL, 0), MESH_E_INVALID);
    assert_int_equal(current_version(st), 1);
    /* Names are data, never SQL. */
    put_ok(st, VS, "default", "x'); DROP TABLE resources; --", "{\"q\":\"'\"}");
    assert_body(st, VS, "default", "x'); DROP TABLE resources; --", "{\"q\":\"'\"}", 2, 1);
    mesh_store_close(st);
}

/* --- import and the restore rule --- */

static void test_store_import_keeps_versions_moves_the_counter_and_logs_the_change(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_change *ch = NULL;
    size_t n = 0;

    assert_int_equal(st->ops->import(st, "Service", "default", "web", "{\"s\":1}", 3, 1), MESH_OK);
    assert_int_equal(current_version(st), 3);
    assert_int_equal(st->ops->import(st, VS, "shop", "pay", "{\"v\":3}", 7, 3), MESH_OK);
    assert_int_equal(current_version(st), 7);
    assert_body(st, "Service", "default", "web", "{\"s\":1}", 3, 1);
    assert_body(st, VS, "shop", "pay", "{\"v\":3}", 7, 3);

    /* The change log has each import at its own version, for the watches. */
    assert_int_equal(st->ops->changes_after(st, 0, 100, &ch, &n), MESH_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ch[0].version, 3);
    assert_int_equal(ch[0].op, MESH_STORE_OP_PUT);
    assert_string_equal(ch[0].name, "web");
    assert_int_equal(ch[1].version, 7);
    assert_string_equal(ch[1].kind, VS);
    assert_string_equal(ch[1].ns, "shop");
    assert_string_equal(ch[1].name, "pay");
    mesh_store_changes_free(ch, n);

    /* Ordinary writes go on from the imported versions. */
    struct mesh_store_put_result res = put_ok(st, VS, "shop", "pay", "{\"v\":4}");
    assert_false(res.created);
    assert_int_equal(res.resource_version, 8);
    assert_int_equal(res.generation, 4);
    assert_int_equal(put_ok(st, VS, "shop", "pay", "{\"v\":4}").resource_version, 8);
    assert_true(put_ok(st, VS, "default", "new", "{}").resource_version == 9);
    /* And an import may follow them, above the counter: it replaces the record. */
    assert_int_equal(st->ops->import(st, VS, "shop", "pay", "{\"v\":9}", 12, 9), MESH_OK);
    assert_body(st, VS, "shop", "pay", "{\"v\":9}", 12, 9);
    assert_int_equal(current_version(st), 12);
    mesh_store_close(st);

    /* Durable like any write. */
    st = open_store(fx->store);
    assert_body(st, VS, "shop", "pay", "{\"v\":9}", 12, 9);
    assert_int_equal(current_version(st), 12);
    assert_int_equal(count_changes(st), 5);
    mesh_store_close(st);
}

static void test_store_import_refuses_a_version_not_above_the_counter(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);

    put_ok(st, VS, "default", "a", "{}");                                  /* 1 */
    put_ok(st, VS, "default", "b", "{}");                                  /* 2 */
    assert_int_equal(st->ops->remove(st, VS, "default", "b", 0), MESH_OK); /* 3 */
    /* 3 was taken by a delete: a watcher may have seen it. */
    assert_int_equal(st->ops->import(st, VS, "default", "c", "{}", 3, 1), MESH_E_CONFLICT);
    assert_string_equal(mesh_store_error(st),
                        "import VirtualService default/c: resource_version 3 is not above the "
                        "store version 3 (versions only move forward)");
    assert_int_equal(st->ops->import(st, VS, "default", "a", "{\"x\":1}", 1, 2), MESH_E_CONFLICT);
    assert_absent(st, VS, "default", "c");
    assert_body(st, VS, "default", "a", "{}", 1, 1);
    assert_int_equal(current_version(st), 3);
    assert_int_equal(count_changes(st), 3);

    /* Nonsense versions are refused before anything is read. */
    assert_int_equal(st->ops->import(st, VS, "default", "c", "{}", 0, 1), MESH_E_INVALID);
    assert_int_equal(st->ops->import(st, VS, "default", "c", "{}", 9, 0), MESH_E_INVALID);
    assert_int_equal(st->ops->import(st, VS, "default", "c", "{}", (uint64_t)INT64_MAX + 1, 1),
                     MESH_E_INVALID);
    assert_int_equal(st->ops->import(st, VS, "default", "c", NULL, 9, 1), MESH_E_INVALID);
    assert_int_equal(st->ops->import(st, VS, NULL, "c", "{}", 9, 1), MESH_E_INVALID);
    assert_absent(st, VS, "default", "c");

    /* Inside a transaction a refused import leaves the rest of it alone. */
    assert_int_equal(st->ops->begin(st), MESH_OK);
    assert_int_equal(st->ops->import(st, VS, "default", "c", "{}", 10, 1), MESH_OK);
    assert_int_equal(st->ops->import(st, VS, "default", "d", "{}", 10, 1), MESH_E_CONFLICT);
    assert_int_equal(st->ops->import(st, VS, "default", "d", "{}", 11, 2), MESH_OK);
    assert_int_equal(st->ops->commit(st), MESH_OK);
    assert_body(st, VS, "default", "c", "{}", 10, 1);
    assert_body(st, VS, "default", "d", "{}", 11, 2);
    assert_int_equal(current_version(st), 11);

    /* A rolled-back import leaves neither the record nor the counter moved. */
    assert_int_equal(st->ops->begin(st), MESH_OK);
    assert_int_equal(st->ops->import(st, VS, "default", "e", "{}", 50, 1), MESH_OK);
    st->ops->rollback(st);
    assert_absent(st, VS, "default", "e");
    assert_int_equal(current_version(st), 11);
    mesh_store_close(st);
}

#define ITEM(kind, ns, name, body, rv, gen)                                                        \
    {                                                                                              \
        (kind), (ns), (name), (body), (rv), (gen)                                                  \
    }

/* Runs mesh_store_restore in a transaction and commits. */
static bool restore_ok(struct mesh_store *st, const struct mesh_store_restore_item *items, size_t n,
                       struct mesh_store_put_result *results)
{
    bool kept = true;
    assert_int_equal(st->ops->begin(st), MESH_OK);
    enum mesh_err err = mesh_store_restore(st, items, n, results, &kept);
    if (err != MESH_OK)
        fail_msg("restore: %s: %s", mesh_err_name(err), mesh_store_error(st));
    assert_int_equal(st->ops->commit(st), MESH_OK);
    return kept;
}

static void test_store_restore_into_a_new_store_keeps_versions_in_version_order(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_put_result res[3];
    struct mesh_store_change *ch = NULL;
    size_t n = 0;
    /* A backup's order (by kind, then name), not the versions' order. */
    const struct mesh_store_restore_item items[] = {
        ITEM("Service", "default", "web", "{\"s\":1}", 9, 2),
        ITEM(VS, "default", "pay", "{\"v\":1}", 4, 1),
        ITEM(VS, "shop", "cart", "{\"c\":3}", 17, 3),
    };

    assert_true(restore_ok(st, items, 3, res));
    for (size_t i = 0; i < 3; i++) {
        assert_true(res[i].created);
        assert_false(res[i].unchanged);
        assert_int_equal(res[i].resource_version, items[i].resource_version);
        assert_int_equal(res[i].generation, items[i].generation);
        assert_body(st, items[i].kind, items[i].ns, items[i].name, items[i].body,
                    items[i].resource_version, items[i].generation);
    }
    assert_int_equal(current_version(st), 17);
    /* Written in ascending version order: the change log reads 4, 9, 17. */
    assert_int_equal(st->ops->changes_after(st, 0, 100, &ch, &n), MESH_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ch[0].version, 4);
    assert_string_equal(ch[0].name, "pay");
    assert_int_equal(ch[1].version, 9);
    assert_string_equal(ch[1].name, "web");
    assert_int_equal(ch[2].version, 17);
    assert_string_equal(ch[2].name, "cart");
    mesh_store_changes_free(ch, n);

    /* Again: the store has history now, so it is an apply, and nothing changes. */
    assert_false(restore_ok(st, items, 3, res));
    for (size_t i = 0; i < 3; i++) {
        assert_true(res[i].unchanged);
        assert_int_equal(res[i].resource_version, items[i].resource_version);
        assert_int_equal(res[i].generation, items[i].generation);
    }
    assert_int_equal(current_version(st), 17);
    mesh_store_close(st);
}

static void test_store_restore_into_a_store_with_history_applies(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_put_result res[2];
    const struct mesh_store_restore_item items[] = {
        ITEM(VS, "default", "a", "{\"a\":2}", 4, 2),
        ITEM(VS, "default", "b", "{}", 9, 1),
    };

    put_ok(st, VS, "default", "a", "{\"a\":1}"); /* 1 */
    assert_false(restore_ok(st, items, 2, res));
    assert_false(res[0].created);
    assert_false(res[0].unchanged);
    assert_int_equal(res[0].resource_version, 2);
    assert_int_equal(res[0].generation, 2);
    assert_true(res[1].created);
    assert_int_equal(res[1].resource_version, 3);
    assert_int_equal(res[1].generation, 1);
    assert_body(st, VS, "default", "b", "{}", 3, 1);
    assert_int_equal(current_version(st), 3);

    /* Everything deleted: no record, but history all the same. */
    assert_int_equal(st->ops->remove(st, VS, "default", "a", 0), MESH_OK);
    assert_int_equal(st->ops->remove(st, VS, "default", "b", 0), MESH_OK);
    assert_false(restore_ok(st, items, 2, res));
    assert_body(st, VS, "default", "a", "{\"a\":2}", 6, 1);
    assert_body(st, VS, "default", "b", "{}", 7, 1);
    mesh_store_close(st);
}

static void test_store_restore_applies_input_that_cannot_keep_versions(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store_put_result res[2];
    const struct mesh_store_restore_item no_version[] = {
        ITEM(VS, "default", "a", "{}", 5, 1),
        ITEM(VS, "default", "b", "{}", 0, 0), /* an older meshctl's backup */
    };
    const struct mesh_store_restore_item same_version[] = {
        ITEM(VS, "default", "a", "{}", 5, 1),
        ITEM(VS, "default", "b", "{}", 5, 1),
    };
    const struct mesh_store_restore_item no_generation[] = {
        ITEM(VS, "default", "a", "{}", 5, 0),
        ITEM(VS, "default", "b", "{}", 6, 1),
    };
    const struct mesh_store_restore_item twice[] = {
        ITEM(VS, "default", "a", "{\"x\":1}", 5, 1),
        ITEM(VS, "default", "a", "{\"x\":2}", 6, 2),
    };
    const struct mesh_store_restore_item *cases[] = {no_version, same_version, no_generation,
                                                     twice};

    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char dir[160];
        snprintf(dir, sizeof dir, "%s/case%zu", fx->dir, c);
        struct mesh_store *st = open_store(dir);
        assert_false(restore_ok(st, cases[c], 2, res));
        /* The store's own versions, from 1, in input order. */
        assert_int_equal(res[0].resource_version, 1);
        assert_true(res[0].created);
        assert_int_equal(res[0].generation, 1);
        assert_int_equal(res[1].resource_version, 2);
        assert_int_equal(current_version(st), 2);
        mesh_store_close(st);
    }

    /* Nothing to restore: nothing written, and not "kept". */
    struct mesh_store *st = open_store(fx->store);
    assert_false(restore_ok(st, NULL, 0, NULL));
    assert_int_equal(current_version(st), 0);
    mesh_store_close(st);
}

static void test_store_restore_failure_leaves_the_transaction_to_roll_back(void **state)
{
    struct fixture *fx = *state;
    struct mesh_store *st = open_store(fx->store);
    struct mesh_store_put_result res[2];
    bool kept = true;
    const struct mesh_store_restore_item items[] = {
        ITEM(VS, "default", "a", "{}", 3, 1),
        ITEM(VS, "default", "boom", "{}", 8, 1),
    };

    raw_exec(fx->db, "CREATE TRIGGER inject_failure BEFORE INSERT ON changes"
                     " WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
    assert_int_equal(st->ops->begin(st), MESH_OK);
    assert_int_equal(mesh_store_restore(st, items, 2, res, &kept), MESH_E_INTERNAL);
    assert_false(kept);
    assert_string_equal(mesh_store_error(st),
                        "import VirtualService default/boom: injected failure");
    st->ops->rollback(st);
    assert_absent(st, VS, "default", "a");
    assert_int_equal(current_version(st), 0);
    mesh_store_close(st);
}

static void test_store_free_functions_accept_null(void **state)
{
    (void)state;
    mesh_store_record_clear(NULL);
    mesh_store_records_free(NULL, 3);
    mesh_store_changes_free(NULL, 3);
    mesh_store_close(NULL);
    assert_string_equal(mesh_store_error(NULL), "no store");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_open_creates_private_directory_in_wal_mode),
        T(test_store_create_get_list_remove),
        T(test_store_versions_are_monotonic_and_store_wide),
        T(test_store_generation_bumps_only_on_content_change),
        T(test_store_identical_put_is_a_noop),
        T(test_store_stale_expected_version_conflicts_and_keeps_record),
        T(test_store_rollback_leaves_nothing),
        T(test_store_commit_makes_all_visible),
        T(test_store_changes_after_returns_puts_and_deletes_in_order),
        T(test_store_data_survives_close_and_reopen),
        T(test_store_close_discards_open_transaction),
        T(test_store_refuses_newer_schema_naming_both_versions),
        T(test_store_open_reports_unusable_files),
        T(test_store_second_writer_waits_instead_of_failing),
        T(test_store_concurrent_processes_serialize_writes),
        T(test_store_conflict_inside_transaction_keeps_the_transaction),
        T(test_store_failed_write_leaves_nothing_half_done),
        T(test_store_transactions_do_not_nest),
        T(test_store_list_filters_and_sorts),
        T(test_store_accepts_empty_namespace_and_rejects_bad_keys),
        T(test_store_import_keeps_versions_moves_the_counter_and_logs_the_change),
        T(test_store_import_refuses_a_version_not_above_the_counter),
        T(test_store_restore_into_a_new_store_keeps_versions_in_version_order),
        T(test_store_restore_into_a_store_with_history_applies),
        T(test_store_restore_applies_input_that_cannot_keep_versions),
        T(test_store_restore_failure_leaves_the_transaction_to_roll_back),
        cmocka_unit_test(test_store_free_functions_accept_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
