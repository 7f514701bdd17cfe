/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/core/bufpool: the hard cap, recycling, the idle bound, buffer helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/bufpool.h"

static void test_bufpool_refuses_bad_settings(void **state)
{
    (void)state;
    struct mesh_bufpool pool;
    assert_int_equal(mesh_bufpool_init(&pool, 0, 10, 10), MESH_E_INVALID);
    assert_int_equal(mesh_bufpool_init(&pool, 1024, 0, 10), MESH_E_INVALID);
    assert_int_equal(mesh_bufpool_init(&pool, MESH_BUF_DEFAULT_SIZE, 1, 0), MESH_OK);
    mesh_bufpool_destroy(&pool);
}

static void test_bufpool_hard_cap_and_recycling(void **state)
{
    (void)state;
    struct mesh_bufpool pool;
    assert_int_equal(mesh_bufpool_init(&pool, MESH_BUF_DEFAULT_SIZE, 3, 8), MESH_OK);
    struct mesh_buf *b[3];
    for (int i = 0; i < 3; i++) {
        b[i] = mesh_bufpool_get(&pool);
        assert_non_null(b[i]);
        assert_int_equal(b[i]->cap, MESH_BUF_DEFAULT_SIZE);
        assert_int_equal(mesh_buf_readable(b[i]), 0);
        assert_int_equal(mesh_buf_writable(b[i]), MESH_BUF_DEFAULT_SIZE);
        memset(b[i]->data, i, b[i]->cap); /* the whole capacity is ours to write */
    }
    assert_int_equal(mesh_bufpool_in_use(&pool), 3);
    /* The cap holds: the fourth get fails and is counted. */
    assert_null(mesh_bufpool_get(&pool));
    assert_int_equal(pool.failures, 1);
    /* A returned buffer comes back (same memory, reset), and the cap applies again after. */
    mesh_buf_commit(b[1], 100);
    mesh_bufpool_put(&pool, b[1]);
    assert_int_equal(mesh_bufpool_in_use(&pool), 2);
    struct mesh_buf *again = mesh_bufpool_get(&pool);
    assert_ptr_equal(again, b[1]);
    assert_int_equal(mesh_buf_readable(again), 0);
    assert_null(again->next);
    assert_null(mesh_bufpool_get(&pool));
    assert_int_equal(pool.failures, 2);
    mesh_bufpool_put(&pool, NULL); /* a no-op */
    for (int i = 0; i < 3; i++)
        mesh_bufpool_put(&pool, b[i]);
    assert_int_equal(mesh_bufpool_in_use(&pool), 0);
    assert_int_equal(pool.idle, 3);
    mesh_bufpool_destroy(&pool);
    assert_int_equal(pool.allocated, 0);
}

static void test_bufpool_frees_idle_beyond_bound(void **state)
{
    (void)state;
    struct mesh_bufpool pool;
    assert_int_equal(mesh_bufpool_init(&pool, 4096, 100, 2), MESH_OK);
    struct mesh_buf *b[5];
    for (int i = 0; i < 5; i++)
        assert_non_null(b[i] = mesh_bufpool_get(&pool));
    assert_int_equal(pool.allocated, 5);
    for (int i = 0; i < 5; i++)
        mesh_bufpool_put(&pool, b[i]);
    /* Only two stay idle; the rest went back to the allocator (LSan checks nothing leaks). */
    assert_int_equal(pool.idle, 2);
    assert_int_equal(pool.allocated, 2);
    /* A buffer still out at destroy time is freed by its put. */
    struct mesh_buf *out = mesh_bufpool_get(&pool);
    mesh_bufpool_destroy(&pool);
    assert_int_equal(pool.allocated, 1);
    mesh_bufpool_put(&pool, out);
    assert_int_equal(pool.allocated, 0);
}

static void test_buf_consume_and_compact(void **state)
{
    (void)state;
    struct mesh_bufpool pool;
    assert_int_equal(mesh_bufpool_init(&pool, 16, 1, 1), MESH_OK);
    struct mesh_buf *b = mesh_bufpool_get(&pool);
    memcpy(mesh_buf_wptr(b), "hello world", 11);
    mesh_buf_commit(b, 11);
    assert_int_equal(mesh_buf_readable(b), 11);
    assert_int_equal(mesh_buf_writable(b), 5);
    mesh_buf_consume(b, 6);
    assert_memory_equal(mesh_buf_rptr(b), "world", 5);
    assert_int_equal(mesh_buf_writable(b), 5);
    mesh_buf_compact(b);
    assert_int_equal(b->start, 0);
    assert_int_equal(mesh_buf_readable(b), 5);
    assert_int_equal(mesh_buf_writable(b), 11);
    assert_memory_equal(mesh_buf_rptr(b), "world", 5);
    mesh_buf_compact(b); /* already compact: unchanged */
    assert_memory_equal(mesh_buf_rptr(b), "world", 5);
    /* Consuming everything rewinds, so the full capacity is writable without compacting. */
    mesh_buf_consume(b, 5);
    assert_int_equal(b->start, 0);
    assert_int_equal(b->end, 0);
    assert_int_equal(mesh_buf_writable(b), 16);
    mesh_buf_commit(b, 3);
    mesh_buf_reset(b);
    assert_int_equal(mesh_buf_readable(b), 0);
    mesh_bufpool_put(&pool, b);
    mesh_bufpool_destroy(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bufpool_refuses_bad_settings),
        cmocka_unit_test(test_bufpool_hard_cap_and_recycling),
        cmocka_unit_test(test_bufpool_frees_idle_beyond_bound),
        cmocka_unit_test(test_buf_consume_and_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
