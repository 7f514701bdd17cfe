/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/proxy/breaker: hard admission limits, also under contention. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proxy/breaker.h"

static void test_breaker_resource_names(void **state)
{
    (void)state;
    assert_string_equal(mesh_breaker_resource_str(MESH_BREAKER_CONNECTIONS), "connections");
    assert_string_equal(mesh_breaker_resource_str(MESH_BREAKER_PENDING), "pending_requests");
    assert_string_equal(mesh_breaker_resource_str(MESH_BREAKER_REQUESTS), "requests");
    assert_string_equal(mesh_breaker_resource_str(MESH_BREAKER_RETRIES), "retries");
    assert_string_equal(mesh_breaker_resource_str(MESH_BREAKER_N_RESOURCES), "unknown");
}

static void test_breaker_limits_from_config(void **state)
{
    (void)state;
    struct mesh_circuit_breaker_config cfg = MESH_CIRCUIT_BREAKER_CONFIG_INIT;
    cfg.max_connections = 10;
    cfg.max_pending_requests = 20;
    cfg.max_requests = 30;
    cfg.max_retries = 3;
    struct mesh_breaker_limits l;
    mesh_breaker_limits_from_config(&l, &cfg);
    assert_int_equal(l.max_connections, 10);
    assert_int_equal(l.max_pending_requests, 20);
    assert_int_equal(l.max_requests, 30);
    assert_int_equal(l.max_retries, 3);
}

static void test_breaker_enforces_each_limit_separately(void **state)
{
    (void)state;
    struct mesh_breaker b;
    mesh_breaker_init(&b);
    const struct mesh_breaker_limits l = {
        .max_connections = 2, .max_pending_requests = 1, .max_requests = 3, .max_retries = 1};
    assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_CONNECTIONS));
    assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_CONNECTIONS));
    assert_false(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_CONNECTIONS));
    assert_false(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_CONNECTIONS));
    assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_PENDING));
    assert_false(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_PENDING));
    for (int k = 0; k < 3; k++)
        assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_REQUESTS));
    assert_false(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_REQUESTS));
    assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_RETRIES));
    assert_false(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_RETRIES));

    assert_int_equal(mesh_breaker_active(&b, MESH_BREAKER_CONNECTIONS), 2);
    assert_int_equal(mesh_breaker_overflows(&b, MESH_BREAKER_CONNECTIONS), 2);
    assert_int_equal(mesh_breaker_active(&b, MESH_BREAKER_PENDING), 1);
    assert_int_equal(mesh_breaker_overflows(&b, MESH_BREAKER_PENDING), 1);
    assert_int_equal(mesh_breaker_active(&b, MESH_BREAKER_REQUESTS), 3);
    assert_int_equal(mesh_breaker_overflows(&b, MESH_BREAKER_REQUESTS), 1);
    assert_int_equal(mesh_breaker_overflows(&b, MESH_BREAKER_RETRIES), 1);

    /* A release makes room for exactly one more. */
    mesh_breaker_release(&b, MESH_BREAKER_CONNECTIONS);
    assert_int_equal(mesh_breaker_active(&b, MESH_BREAKER_CONNECTIONS), 1);
    assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_CONNECTIONS));
    assert_false(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_CONNECTIONS));
    assert_int_equal(mesh_breaker_overflows(&b, MESH_BREAKER_CONNECTIONS), 3);
}

static void test_breaker_zero_means_unlimited_but_counted(void **state)
{
    (void)state;
    struct mesh_breaker b;
    mesh_breaker_init(&b);
    const struct mesh_breaker_limits l = {0};
    for (int k = 0; k < 10000; k++)
        assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_REQUESTS));
    assert_int_equal(mesh_breaker_active(&b, MESH_BREAKER_REQUESTS), 10000);
    assert_int_equal(mesh_breaker_overflows(&b, MESH_BREAKER_REQUESTS), 0);
    for (int k = 0; k < 10000; k++)
        mesh_breaker_release(&b, MESH_BREAKER_REQUESTS);
    assert_int_equal(mesh_breaker_active(&b, MESH_BREAKER_REQUESTS), 0);
}

static void test_breaker_lowered_limit_admits_nothing_until_drained(void **state)
{
    (void)state;
    struct mesh_breaker b;
    mesh_breaker_init(&b);
    struct mesh_breaker_limits l = {.max_requests = 5};
    for (int k = 0; k < 5; k++)
        assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_REQUESTS));
    l.max_requests = 2; /* a reload */
    mesh_breaker_release(&b, MESH_BREAKER_REQUESTS);
    mesh_breaker_release(&b, MESH_BREAKER_REQUESTS);
    assert_false(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_REQUESTS));
    mesh_breaker_release(&b, MESH_BREAKER_REQUESTS);
    mesh_breaker_release(&b, MESH_BREAKER_REQUESTS);
    assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_REQUESTS));
}

static void test_breaker_unmatched_release_does_not_wrap(void **state)
{
    (void)state;
    struct mesh_breaker b;
    mesh_breaker_init(&b);
    const struct mesh_breaker_limits l = {.max_retries = 1};
    mesh_breaker_release(&b, MESH_BREAKER_RETRIES);
    assert_int_equal(mesh_breaker_active(&b, MESH_BREAKER_RETRIES), 0);
    assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_RETRIES));
}

#define N_THREADS 8
#define ROUNDS    20000
#define LIMIT     5

struct hammer {
    struct mesh_breaker *b;
    const struct mesh_breaker_limits *limits;
    atomic_uint *holders; /* how many threads believe they hold a unit right now */
    atomic_uint *max_holders;
    unsigned acquired, refused;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    for (int k = 0; k < ROUNDS; k++) {
        if (!mesh_breaker_try_acquire(h->b, h->limits, MESH_BREAKER_REQUESTS)) {
            h->refused++;
            continue;
        }
        h->acquired++;
        unsigned now = atomic_fetch_add(h->holders, 1) + 1;
        unsigned seen = atomic_load(h->max_holders);
        while (now > seen && !atomic_compare_exchange_weak(h->max_holders, &seen, now))
            ;
        if (mesh_breaker_active(h->b, MESH_BREAKER_REQUESTS) > LIMIT)
            atomic_store(h->max_holders, 1000); /* the count itself went over */
        atomic_fetch_sub(h->holders, 1);
        mesh_breaker_release(h->b, MESH_BREAKER_REQUESTS);
    }
    return NULL;
}

static void test_breaker_never_exceeds_limit_under_contention(void **state)
{
    (void)state;
    struct mesh_breaker b;
    mesh_breaker_init(&b);
    const struct mesh_breaker_limits l = {.max_requests = LIMIT};
    atomic_uint holders = 0, max_holders = 0;
    struct hammer h[N_THREADS];
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        h[i] = (struct hammer){
            .b = &b, .limits = &l, .holders = &holders, .max_holders = &max_holders};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    unsigned acquired = 0, refused = 0;
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        acquired += h[i].acquired;
        refused += h[i].refused;
    }
    assert_true(atomic_load(&max_holders) <= LIMIT);
    assert_true(atomic_load(&max_holders) >= 1);
    assert_int_equal(acquired + refused, N_THREADS * ROUNDS);
    assert_int_equal(mesh_breaker_overflows(&b, MESH_BREAKER_REQUESTS), refused);
    assert_int_equal(mesh_breaker_active(&b, MESH_BREAKER_REQUESTS), 0);
}

/* Every unit already held: each racing attempt is refused and each refusal counted once. */
static void test_breaker_counts_every_overflow_across_threads(void **state)
{
    (void)state;
    struct mesh_breaker b;
    mesh_breaker_init(&b);
    const struct mesh_breaker_limits l = {.max_requests = LIMIT};
    for (int k = 0; k < LIMIT; k++)
        assert_true(mesh_breaker_try_acquire(&b, &l, MESH_BREAKER_REQUESTS));
    atomic_uint holders = 0, max_holders = 0;
    struct hammer h[N_THREADS];
    pthread_t t[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        h[i] = (struct hammer){
            .b = &b, .limits = &l, .holders = &holders, .max_holders = &max_holders};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(h[i].acquired, 0);
    }
    assert_int_equal(mesh_breaker_overflows(&b, MESH_BREAKER_REQUESTS), N_THREADS * ROUNDS);
    assert_int_equal(mesh_breaker_active(&b, MESH_BREAKER_REQUESTS), LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breaker_resource_names),
        cmocka_unit_test(test_breaker_limits_from_config),
        cmocka_unit_test(test_breaker_enforces_each_limit_separately),
        cmocka_unit_test(test_breaker_zero_means_unlimited_but_counted),
        cmocka_unit_test(test_breaker_lowered_limit_admits_nothing_until_drained),
        cmocka_unit_test(test_breaker_unmatched_release_does_not_wrap),
        cmocka_unit_test(test_breaker_never_exceeds_limit_under_contention),
        cmocka_unit_test(test_breaker_counts_every_overflow_across_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
