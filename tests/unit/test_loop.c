/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of src/net/loop: I/O events on socketpairs, timers, teardown inside callbacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/loop.h"
#include "net/sock.h"

/* An io that records what it was told. */
struct watcher {
    struct mesh_io io;
    int calls;
    uint32_t events;              /* union of all events seen */
    struct watcher *victim;       /* torn down (del + close + free) by our callback */
    struct watcher **victim_slot; /* set to NULL once the victim is freed */
    char got[64];
    size_t got_len;
};

static void watcher_cb(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    struct watcher *w = io->data;
    w->calls++;
    w->events |= events;
    if (events & MESH_IO_READ) {
        ssize_t n;
        while (w->got_len < sizeof(w->got) &&
               (n = read(io->fd, w->got + w->got_len, sizeof(w->got) - w->got_len)) > 0)
            w->got_len += (size_t)n;
    }
    if (w->victim != NULL) {
        struct watcher *v = w->victim;
        mesh_loop_del(loop, &v->io);
        close(v->io.fd);
        free(v);
        *w->victim_slot = NULL;
        w->victim = NULL;
    }
}

static struct watcher *watcher_new(int fd)
{
    struct watcher *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->io.fd = fd;
    w->io.cb = watcher_cb;
    w->io.data = w;
    return w;
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_loop_reports_read_write_and_hup(void **state)
{
    (void)state;
    struct mesh_loop loop;
    assert_int_equal(mesh_loop_init(&loop), MESH_OK);
    int sv[2];
    pair(sv);
    struct watcher *w = watcher_new(sv[0]);
    assert_int_equal(mesh_loop_add(&loop, &w->io), MESH_OK);

    /* Registration of a writable socket reports WRITE once (edge-triggered). */
    assert_int_equal(mesh_loop_run_once(&loop, 1000), 1);
    assert_int_equal(w->calls, 1);
    assert_true(w->events & MESH_IO_WRITE);
    assert_false(w->events & MESH_IO_READ);

    /* Nothing new: an edge-triggered io is not reported again. */
    w->events = 0;
    assert_int_equal(mesh_loop_run_once(&loop, 20), 0);
    assert_int_equal(w->calls, 1);

    assert_int_equal(write(sv[1], "ping", 4), 4);
    assert_int_equal(mesh_loop_run_once(&loop, 1000), 1);
    assert_true(w->events & MESH_IO_READ);
    assert_int_equal(w->got_len, 4);
    assert_memory_equal(w->got, "ping", 4);

    w->events = 0;
    close(sv[1]);
    assert_int_equal(mesh_loop_run_once(&loop, 1000), 1);
    assert_true(w->events & MESH_IO_HUP);
    assert_true(w->events & MESH_IO_READ);

    mesh_loop_del(&loop, &w->io);
    close(sv[0]);
    free(w);
    mesh_loop_close(&loop);
}

static void test_loop_callback_may_free_another_io_of_the_same_batch(void **state)
{
    (void)state;
    struct mesh_loop loop;
    assert_int_equal(mesh_loop_init(&loop), MESH_OK);
    int a[2], b[2];
    pair(a);
    pair(b);
    struct watcher *wa = watcher_new(a[0]);
    struct watcher *wb = watcher_new(b[0]);
    assert_int_equal(mesh_loop_add(&loop, &wa->io), MESH_OK);
    assert_int_equal(mesh_loop_add(&loop, &wb->io), MESH_OK);
    assert_int_equal(mesh_loop_run_once(&loop, 1000), 2); /* the initial WRITE edges */

    /* Both become readable in the same batch; whichever runs first frees the other. Without
     * the batch invalidation the second callback would run on freed memory (ASan catches it;
     * the call count catches it without ASan as long as the memory is not reused). */
    wa->victim = wb;
    wa->victim_slot = &wb;
    wb->victim = wa;
    wb->victim_slot = &wa;
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "y", 1), 1);
    assert_int_equal(mesh_loop_run_once(&loop, 1000), 1);
    assert_true((wa == NULL) != (wb == NULL));
    struct watcher *survivor = wa != NULL ? wa : wb;
    assert_int_equal(survivor->calls, 2);
    assert_null(survivor->victim);

    /* The survivor keeps working. */
    int peer = survivor == wa ? a[1] : b[1];
    assert_int_equal(write(peer, "z", 1), 1);
    assert_int_equal(mesh_loop_run_once(&loop, 1000), 1);
    assert_int_equal(survivor->calls, 3);

    mesh_loop_del(&loop, &survivor->io);
    close(survivor->io.fd);
    free(survivor);
    close(a[1]);
    close(b[1]);
    mesh_loop_close(&loop);
}

struct tick {
    struct mesh_timer timer;
    struct mesh_loop *loop;
    int fired;
    uint64_t fired_at;
    struct watcher *victim; /* torn down from the timer */
};

static void tick_cb(struct mesh_timer *t, void *data)
{
    struct tick *k = data;
    (void)t;
    k->fired++;
    k->fired_at = mesh_loop_now_ms(k->loop);
    if (k->victim != NULL) {
        mesh_loop_del(k->loop, &k->victim->io);
        close(k->victim->io.fd);
        free(k->victim);
        k->victim = NULL;
    }
}

static void test_loop_timers_bound_the_wait_and_fire(void **state)
{
    (void)state;
    struct mesh_loop loop;
    assert_int_equal(mesh_loop_init(&loop), MESH_OK);
    struct tick k = {.loop = &loop};
    mesh_timer_init(&k.timer, tick_cb, &k);
    uint64_t t0 = wall_ms();
    mesh_timer_start(&loop, &k.timer, 30);
    uint64_t armed_at = mesh_loop_now_ms(&loop);
    /* No limit but the timer: the loop wakes for it. */
    int rounds = 0;
    while (k.fired == 0 && rounds++ < 100)
        assert_true(mesh_loop_run_once(&loop, -1) >= 0);
    assert_int_equal(k.fired, 1);
    assert_true(k.fired_at >= armed_at + 30);
    uint64_t elapsed = wall_ms() - t0;
    assert_true(elapsed >= 29);
    assert_true(elapsed < 1000);
    assert_true(rounds <= 5); /* slept until the timer, did not spin */

    /* max_wait bounds the wait when no timer is armed. */
    t0 = wall_ms();
    assert_int_equal(mesh_loop_run_once(&loop, 15), 0);
    elapsed = wall_ms() - t0;
    assert_true(elapsed >= 14 && elapsed < 1000);

    /* A stopped timer does not fire. */
    mesh_timer_start(&loop, &k.timer, 5);
    mesh_timer_stop(&loop, &k.timer);
    assert_int_equal(mesh_loop_run_once(&loop, 20), 0);
    assert_int_equal(k.fired, 1);
    mesh_loop_close(&loop);
}

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The clock is cached in whole milliseconds; a timer must still never fire before its delay
 * has really passed (tests elsewhere measure "took at least the injected delay"). */
static void test_loop_timer_never_fires_early(void **state)
{
    (void)state;
    struct mesh_loop loop;
    assert_int_equal(mesh_loop_init(&loop), MESH_OK);
    struct tick k = {.loop = &loop};
    mesh_timer_init(&k.timer, tick_cb, &k);
    for (int i = 0; i < 40; i++) {
        uint64_t after = 1 + (uint64_t)(i % 7);
        uint64_t t0 = wall_ns(); /* before the loop reads the clock */
        mesh_loop_update_time(&loop);
        mesh_timer_start(&loop, &k.timer, after);
        int fired = k.fired;
        /* Short waits wake the loop many times on the way, as other traffic would. */
        while (k.fired == fired)
            assert_true(mesh_loop_run_once(&loop, i % 2 == 0 ? -1 : 1) >= 0);
        uint64_t elapsed = wall_ns() - t0;
        if (elapsed < after * 1000000u)
            fail_msg("a %u ms timer fired after %u us", (unsigned)after,
                     (unsigned)(elapsed / 1000));
    }
    mesh_loop_close(&loop);
}

static void test_loop_timer_may_tear_down_io(void **state)
{
    (void)state;
    struct mesh_loop loop;
    assert_int_equal(mesh_loop_init(&loop), MESH_OK);
    int sv[2];
    pair(sv);
    struct watcher *w = watcher_new(sv[0]);
    assert_int_equal(mesh_loop_add(&loop, &w->io), MESH_OK);
    struct tick k = {.loop = &loop, .victim = w};
    mesh_timer_init(&k.timer, tick_cb, &k);
    mesh_timer_start(&loop, &k.timer, 0);
    assert_int_equal(mesh_loop_run_once(&loop, 1000), 1);
    assert_int_equal(k.fired, 1);
    assert_null(k.victim);
    /* The fd is gone from the loop: writes to the peer wake nothing. */
    assert_int_equal(send(sv[1], "x", 1, MSG_NOSIGNAL), -1); /* peer closed */
    assert_int_equal(mesh_loop_run_once(&loop, 10), 0);
    close(sv[1]);
    mesh_loop_close(&loop);
}

struct acceptor {
    struct mesh_io io;
    int accepted;
    int fds[4];
};

static void acceptor_cb(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    (void)loop;
    struct acceptor *a = io->data;
    assert_true(events & MESH_IO_READ);
    /* Accept only one per event: a level-triggered listener reports the rest again. */
    int fd;
    assert_int_equal(mesh_sock_accept(io->fd, &fd, NULL, NULL), MESH_OK);
    a->fds[a->accepted++] = fd;
}

static void test_loop_listener_is_level_triggered(void **state)
{
    (void)state;
    struct mesh_loop loop;
    assert_int_equal(mesh_loop_init(&loop), MESH_OK);
    struct sockaddr_storage ss, bound;
    socklen_t len, blen;
    assert_int_equal(mesh_sock_parse_addr("127.0.0.1:0", 0, &ss, &len, NULL, 0), MESH_OK);
    struct acceptor a = {.accepted = 0};
    assert_int_equal(mesh_sock_listen((struct sockaddr *)&ss, len, 0, &a.io.fd, NULL, 0), MESH_OK);
    a.io.cb = acceptor_cb;
    a.io.data = &a;
    assert_int_equal(mesh_loop_add_listener(&loop, &a.io), MESH_OK);
    assert_int_equal(mesh_sock_local_addr(a.io.fd, &bound, &blen), MESH_OK);
    int c[2];
    for (int i = 0; i < 2; i++) {
        enum mesh_err err = mesh_sock_connect((struct sockaddr *)&bound, blen, &c[i], NULL, 0);
        assert_true(err == MESH_OK || err == MESH_E_AGAIN);
    }
    for (int i = 0; i < 10 && a.accepted < 2; i++)
        mesh_loop_run_once(&loop, 1000);
    assert_int_equal(a.accepted, 2);
    for (int i = 0; i < 2; i++) {
        close(c[i]);
        close(a.fds[i]);
    }
    mesh_loop_del(&loop, &a.io);
    close(a.io.fd);
    mesh_loop_close(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_reports_read_write_and_hup),
        cmocka_unit_test(test_loop_callback_may_free_another_io_of_the_same_batch),
        cmocka_unit_test(test_loop_timers_bound_the_wait_and_fire),
        cmocka_unit_test(test_loop_timer_never_fires_early),
        cmocka_unit_test(test_loop_timer_may_tear_down_io),
        cmocka_unit_test(test_loop_listener_is_level_triggered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
