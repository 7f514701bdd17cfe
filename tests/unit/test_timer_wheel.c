/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/net/timer_wheel: order, cancellation from callbacks, laps, jumps, next_ms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/timer_wheel.h"

#define START   1000000u /* an arbitrary, non-zero start time */
#define MAX_LOG 4096

/* A timer that records when it fired and can act on the wheel from its callback. */
struct probe {
    struct mesh_timer timer;
    struct mesh_timer_wheel *wheel;
    int id;
    int fired;
    uint64_t fired_at; /* the wheel's time when it fired */
    struct probe *cancel_other;
    uint64_t rearm_at; /* non-zero: re-arm itself at this absolute time */
    int rearm_times;
};

static int fire_log[MAX_LOG];
static int fire_log_len;

static void probe_cb(struct mesh_timer *t, void *data)
{
    struct probe *p = data;
    assert_ptr_equal(t, &p->timer);
    assert_false(mesh_timer_armed(t));
    p->fired++;
    p->fired_at = p->wheel->now_ms;
    if (fire_log_len < MAX_LOG)
        fire_log[fire_log_len++] = p->id;
    if (p->cancel_other != NULL)
        mesh_timer_wheel_cancel(p->wheel, &p->cancel_other->timer);
    if (p->rearm_times > 0) {
        p->rearm_times--;
        mesh_timer_wheel_add(p->wheel, &p->timer, p->rearm_at);
    }
}

static void probe_init(struct probe *p, struct mesh_timer_wheel *w, int id)
{
    memset(p, 0, sizeof(*p));
    mesh_timer_init(&p->timer, probe_cb, p);
    p->wheel = w;
    p->id = id;
}

static int setup(void **state)
{
    struct mesh_timer_wheel *w = malloc(sizeof(*w));
    assert_non_null(w);
    mesh_timer_wheel_init(w, START);
    fire_log_len = 0;
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_timer_wheel_fires_in_expiry_order(void **state)
{
    struct mesh_timer_wheel *w = *state;
    static const unsigned delays[] = {50, 3, 4000, 17, 3, 1, 999, 250, 4095, 2};
    enum { N = sizeof(delays) / sizeof(delays[0]) };
    struct probe p[N];
    for (int i = 0; i < N; i++) {
        probe_init(&p[i], w, i);
        mesh_timer_wheel_add(w, &p[i].timer, START + delays[i]);
        assert_true(mesh_timer_armed(&p[i].timer));
    }
    assert_int_equal(w->armed, N);
    /* Nothing is due yet. */
    assert_int_equal(mesh_timer_wheel_advance(w, START), 0);
    /* Advance in uneven steps; each timer fires exactly at its time, never before. */
    uint64_t now = START;
    unsigned total = 0;
    while (now < START + 5000) {
        now += 1 + (now % 7);
        total += mesh_timer_wheel_advance(w, now);
        for (int i = 0; i < N; i++) {
            if (START + delays[i] <= now)
                assert_int_equal(p[i].fired, 1);
            else
                assert_int_equal(p[i].fired, 0);
        }
    }
    assert_int_equal(total, N);
    assert_int_equal(w->armed, 0);
    assert_int_equal(fire_log_len, N);
    for (int i = 1; i < N; i++) {
        unsigned a = delays[fire_log[i - 1]], b = delays[fire_log[i]];
        assert_true(a < b || (a == b && fire_log[i - 1] < fire_log[i])); /* ties: arming order */
    }
    assert_int_equal(mesh_timer_wheel_next_ms(w), -1);
}

static void test_timer_wheel_cancel_and_rearm(void **state)
{
    struct mesh_timer_wheel *w = *state;
    struct probe a, b;
    probe_init(&a, w, 1);
    probe_init(&b, w, 2);
    mesh_timer_wheel_add(w, &a.timer, START + 10);
    mesh_timer_wheel_add(w, &b.timer, START + 10);
    mesh_timer_wheel_cancel(w, &a.timer);
    mesh_timer_wheel_cancel(w, &a.timer); /* twice is a no-op */
    assert_false(mesh_timer_armed(&a.timer));
    assert_int_equal(w->armed, 1);
    /* Re-arming moves it: b now fires at +30, not +10. */
    mesh_timer_wheel_add(w, &b.timer, START + 30);
    assert_int_equal(w->armed, 1);
    assert_int_equal(mesh_timer_wheel_advance(w, START + 29), 0);
    assert_int_equal(mesh_timer_wheel_advance(w, START + 30), 1);
    assert_int_equal(a.fired, 0);
    assert_int_equal(b.fired, 1);
    assert_int_equal(b.fired_at, START + 30);
}

static void test_timer_wheel_callback_cancels_others_in_same_slot(void **state)
{
    struct mesh_timer_wheel *w = *state;
    struct probe p[4];
    for (int i = 0; i < 4; i++) {
        probe_init(&p[i], w, i);
        mesh_timer_wheel_add(w, &p[i].timer, START + 5); /* all in one slot */
    }
    struct probe far;
    probe_init(&far, w, 9);
    mesh_timer_wheel_add(w, &far.timer, START + 5 + MESH_TIMER_WHEEL_SLOTS); /* same slot too */
    /* The first cancels its successor in the list; the third cancels a lap-later neighbour. */
    p[0].cancel_other = &p[1];
    p[2].cancel_other = &far;
    assert_int_equal(mesh_timer_wheel_advance(w, START + 5), 3);
    assert_int_equal(p[0].fired, 1);
    assert_int_equal(p[1].fired, 0);
    assert_int_equal(p[2].fired, 1);
    assert_int_equal(p[3].fired, 1);
    assert_int_equal(far.fired, 0);
    assert_false(mesh_timer_armed(&far.timer));
    assert_int_equal(w->armed, 0);
    assert_int_equal(mesh_timer_wheel_next_ms(w), -1);
}

static void test_timer_wheel_callback_cancels_itself_and_later_slot(void **state)
{
    struct mesh_timer_wheel *w = *state;
    struct probe a, b;
    probe_init(&a, w, 1);
    probe_init(&b, w, 2);
    a.cancel_other = &a; /* cancelling the firing timer is a no-op */
    mesh_timer_wheel_add(w, &a.timer, START + 1);
    mesh_timer_wheel_add(w, &b.timer, START + 2);
    struct probe c;
    probe_init(&c, w, 3);
    c.cancel_other = &b;
    mesh_timer_wheel_add(w, &c.timer, START + 1);
    /* One advance covers both slots: b is cancelled before its slot is swept. */
    assert_int_equal(mesh_timer_wheel_advance(w, START + 10), 2);
    assert_int_equal(a.fired, 1);
    assert_int_equal(b.fired, 0);
    assert_int_equal(c.fired, 1);
    assert_int_equal(w->armed, 0);
}

static void test_timer_wheel_periodic_rearm_from_callback(void **state)
{
    struct mesh_timer_wheel *w = *state;
    struct probe p;
    probe_init(&p, w, 1);
    mesh_timer_wheel_add(w, &p.timer, START + 10);
    for (int i = 1; i <= 5; i++) {
        p.rearm_times = 1;
        p.rearm_at = START + 10 * (uint64_t)(i + 1);
        assert_int_equal(mesh_timer_wheel_advance(w, START + 10 * (uint64_t)i), 1);
        assert_int_equal(p.fired, i);
        assert_true(mesh_timer_armed(&p.timer));
    }
    mesh_timer_wheel_cancel(w, &p.timer);
    assert_int_equal(w->armed, 0);
}

static void test_timer_wheel_past_time_fires_on_next_advance_only(void **state)
{
    struct mesh_timer_wheel *w = *state;
    struct probe p;
    probe_init(&p, w, 1);
    mesh_timer_wheel_add(w, &p.timer, START - 500); /* already past */
    assert_int_equal(mesh_timer_wheel_next_ms(w), 0);
    /* A callback re-arming itself in the past does not make advance loop forever. */
    p.rearm_times = 1000;
    p.rearm_at = START;
    assert_int_equal(mesh_timer_wheel_advance(w, START), 1);
    assert_int_equal(mesh_timer_wheel_advance(w, START), 1);
    assert_int_equal(p.fired, 2);
    assert_int_equal(mesh_timer_wheel_next_ms(w), 0);
    /* Time going backwards counts as no time passing. */
    assert_int_equal(mesh_timer_wheel_advance(w, START - 100), 1);
    assert_int_equal(w->now_ms, START);
    p.rearm_times = 0;
    assert_int_equal(mesh_timer_wheel_advance(w, START + 1), 1);
    assert_int_equal(w->armed, 0);
}

static void test_timer_wheel_rearm_at_later_tick_fires_in_same_advance(void **state)
{
    struct mesh_timer_wheel *w = *state;
    struct probe p;
    probe_init(&p, w, 1);
    mesh_timer_wheel_add(w, &p.timer, START + 1);
    p.rearm_times = 1;
    p.rearm_at = START + 3;
    assert_int_equal(mesh_timer_wheel_advance(w, START + 5), 2);
    assert_int_equal(p.fired_at, START + 3);
}

static void test_timer_wheel_far_future_waits_for_its_lap(void **state)
{
    struct mesh_timer_wheel *w = *state;
    struct probe far, near;
    probe_init(&far, w, 1);
    probe_init(&near, w, 2);
    uint64_t far_at = START + 3 * MESH_TIMER_WHEEL_SLOTS + 7;
    mesh_timer_wheel_add(w, &far.timer, far_at);
    mesh_timer_wheel_add(w, &near.timer, START + 7); /* the same slot, three laps earlier */
    for (uint64_t now = START + 1; now < far_at; now++) {
        mesh_timer_wheel_advance(w, now);
        assert_int_equal(far.fired, 0);
        int64_t next = mesh_timer_wheel_next_ms(w);
        assert_true(next >= 1);
        assert_true((uint64_t)next <= far_at - now);
    }
    assert_int_equal(near.fired, 1);
    assert_int_equal(near.fired_at, START + 7);
    assert_int_equal(mesh_timer_wheel_advance(w, far_at), 1);
    assert_int_equal(far.fired, 1);
    assert_int_equal(far.fired_at, far_at);
}

static void test_timer_wheel_time_jump_fires_everything_due(void **state)
{
    struct mesh_timer_wheel *w = *state;
    enum { N = 64 };
    struct probe p[N];
    for (int i = 0; i < N; i++) {
        probe_init(&p[i], w, i);
        /* Spread over ten laps, several per slot. */
        mesh_timer_wheel_add(w, &p[i].timer, START + 1 + (uint64_t)i * 640);
    }
    uint64_t jump = START + 20000;
    unsigned fired = mesh_timer_wheel_advance(w, jump);
    unsigned due = 0;
    for (int i = 0; i < N; i++) {
        uint64_t at = START + 1 + (uint64_t)i * 640;
        if (at <= jump) {
            due++;
            assert_int_equal(p[i].fired, 1);
        } else {
            assert_int_equal(p[i].fired, 0);
            assert_true(mesh_timer_armed(&p[i].timer));
        }
    }
    assert_int_equal(fired, due);
    assert_int_equal(w->now_ms, jump);
    /* The rest fire on time afterwards, and next_ms never overshoots them. */
    uint64_t now = jump;
    while (w->armed > 0) {
        int64_t next = mesh_timer_wheel_next_ms(w);
        assert_true(next >= 1);
        now += (uint64_t)next;
        mesh_timer_wheel_advance(w, now);
    }
    for (int i = 0; i < N; i++) {
        uint64_t at = START + 1 + (uint64_t)i * 640;
        assert_int_equal(p[i].fired, 1);
        if (at > jump)
            assert_int_equal(p[i].fired_at, at);
    }
}

static void test_timer_wheel_jump_callback_rearms(void **state)
{
    struct mesh_timer_wheel *w = *state;
    struct probe p;
    probe_init(&p, w, 1);
    mesh_timer_wheel_add(w, &p.timer, START + 100);
    p.rearm_times = 1;
    p.rearm_at = START + 9000; /* due, but armed during the jump: waits for the next advance */
    assert_int_equal(mesh_timer_wheel_advance(w, START + 10000), 1);
    assert_true(mesh_timer_armed(&p.timer));
    assert_int_equal(mesh_timer_wheel_next_ms(w), 0);
    assert_int_equal(mesh_timer_wheel_advance(w, START + 10000), 1);
    assert_int_equal(p.fired, 2);
}

/* Random timers, random advances: next_ms is never later than the true earliest expiry, and
 * every timer fires exactly once, at the first advance at or after its time. */
static void test_timer_wheel_next_ms_never_late(void **state)
{
    struct mesh_timer_wheel *w = *state;
    enum { N = 500 };
    static struct probe p[N];
    uint64_t at[N];
    srand(42);
    for (int i = 0; i < N; i++) {
        probe_init(&p[i], w, i);
        at[i] = 0;
    }
    uint64_t now = START;
    for (int round = 0; round < 3000; round++) {
        int i = rand() % N;
        int action = rand() % 4;
        if (action <= 1) {
            uint64_t d = (uint64_t)(rand() % 3 == 0 ? rand() % 20000 : rand() % 300);
            at[i] = now + d;
            mesh_timer_wheel_add(w, &p[i].timer, at[i]);
            p[i].fired = 0;
        } else if (action == 2) {
            mesh_timer_wheel_cancel(w, &p[i].timer);
        }
        uint64_t earliest = UINT64_MAX;
        uint64_t armed = 0;
        for (int j = 0; j < N; j++) {
            if (mesh_timer_armed(&p[j].timer)) {
                armed++;
                if (at[j] < earliest)
                    earliest = at[j];
            }
        }
        assert_int_equal(armed, w->armed);
        int64_t next = mesh_timer_wheel_next_ms(w);
        if (armed == 0) {
            assert_int_equal(next, -1);
        } else {
            assert_true(next >= 0);
            uint64_t truth = earliest > now ? earliest - now : 0;
            assert_true((uint64_t)next <= truth);
        }
        uint64_t step = (uint64_t)(rand() % 5 == 0 ? rand() % 6000 : rand() % 40);
        if (action == 3 && next > 0)
            step = (uint64_t)next; /* as the loop would: sleep exactly until next */
        static int fired_before[N];
        for (int j = 0; j < N; j++)
            fired_before[j] = p[j].fired;
        uint64_t prev = now;
        now += step;
        mesh_timer_wheel_advance(w, now);
        for (int j = 0; j < N; j++) {
            if (mesh_timer_armed(&p[j].timer))
                assert_true(at[j] > now);
            else if (at[j] != 0 && p[j].fired)
                assert_true(p[j].fired_at >= at[j]);
            /* Within a lap the sweep goes tick by tick: each fires at exactly its time. */
            if (p[j].fired != fired_before[j] && step < MESH_TIMER_WHEEL_SLOTS && at[j] > prev)
                assert_int_equal(p[j].fired_at, at[j]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timer_wheel_fires_in_expiry_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_cancel_and_rearm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_callback_cancels_others_in_same_slot,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_callback_cancels_itself_and_later_slot,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_periodic_rearm_from_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_past_time_fires_on_next_advance_only,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_rearm_at_later_tick_fires_in_same_advance,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_far_future_waits_for_its_lap, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_time_jump_fires_everything_due, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_jump_callback_rearms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_wheel_next_ms_never_late, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
