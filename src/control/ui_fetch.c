/* SPDX-License-Identifier: Apache-2.0 */
/* The dashboard's fetch rounds (ui_fetch.h): threads that read proxies' /stats with short
 * timeouts and tell meshd's loop through an eventfd when they end. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/xalloc.h"
#include "net/http_client.h"
#include "ui_fetch.h"

struct mesh_ui_fetch {
    struct mesh_ui_fetch_target *targets;
    size_t n;
    int notify_fd;
    int64_t deadline_ms; /* CLOCK_MONOTONIC */
    atomic_size_t next;  /* the next target a thread takes */
    atomic_size_t finished;
    atomic_int cancel;
    size_t n_threads;
    pthread_t threads[MESH_UI_FETCH_THREADS];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fetch_one(struct mesh_ui_fetch *f, struct mesh_ui_fetch_target *t)
{
    char *url = xasprintf("http://%s/stats", t->admin);
    char *peer = xasprintf("the admin listener of proxy %s", t->id);
    struct mesh_http_response resp = {0};
    int64_t left = f->deadline_ms - mono_ms();

    if (atomic_load(&f->cancel)) {
        t->err = MESH_E_AGAIN;
        t->errmsg = xstrdup("not read: meshd is stopping");
        goto out;
    }
    if (left <= 0) {
        t->err = MESH_E_UNAVAILABLE;
        t->errmsg = xasprintf("not read: the round's %d ms were spent on slower proxies",
                              MESH_UI_FETCH_ROUND_MS);
        goto out;
    }
    struct mesh_http_request req = {
        .url = url,
        .peer_name = peer,
        .connect_timeout_ms = MESH_UI_FETCH_CONNECT_MS,
        .timeout_ms = left < MESH_UI_FETCH_TIMEOUT_MS ? (long)left : MESH_UI_FETCH_TIMEOUT_MS,
        .max_body = MESH_UI_FETCH_MAX_BODY,
        .cancel = &f->cancel,
    };
    t->err = mesh_http_do(&req, &resp, &t->errmsg);
    if (t->err != MESH_OK)
        goto out;
    if (resp.status != 200) {
        t->err = MESH_E_UNAVAILABLE;
        t->errmsg = xasprintf("%s answered %ld", url, resp.status);
        goto out;
    }
    char *why = NULL;
    t->err =
        mesh_ui_reading_parse(resp.body, resp.body_len, (uint64_t)mono_ms(), &t->reading, &why);
    if (t->err != MESH_OK)
        t->errmsg = xasprintf("%s: %s", url, why ? why : mesh_strerror(t->err));
    free(why);
out:
    if (t->err != MESH_OK && !t->errmsg)
        t->errmsg = xasprintf("%s: %s", url, mesh_strerror(t->err));
    mesh_http_response_clear(&resp);
    free(peer);
    free(url);
}

static void *fetch_thread(void *arg)
{
    struct mesh_ui_fetch *f = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&f->next, 1);
        if (i >= f->n)
            break;
        fetch_one(f, &f->targets[i]);
    }
    atomic_fetch_add(&f->finished, 1);
    /* After the count: the loop thread that wakes on this finds it. A full eventfd counter (it
     * never is: the loop reads it) would only delay the wake-up to the next thread's write. */
    uint64_t one = 1;
    ssize_t w = write(f->notify_fd, &one, sizeof(one));
    (void)w;
    return NULL;
}

enum mesh_err mesh_ui_fetch_start(struct mesh_ui_fetch_target *targets, size_t n, int notify_fd,
                                  struct mesh_ui_fetch **out)
{
    struct mesh_ui_fetch *f = xcalloc(1, sizeof(*f));
    f->targets = targets;
    f->n = n;
    f->notify_fd = notify_fd;
    f->deadline_ms = mono_ms() + MESH_UI_FETCH_ROUND_MS;
    for (size_t i = 0; i < n; i++) {
        targets[i].err = MESH_E_UNAVAILABLE;
        targets[i].errmsg = NULL;
        memset(&targets[i].reading, 0, sizeof(targets[i].reading));
    }
    size_t want = n < MESH_UI_FETCH_THREADS ? n : MESH_UI_FETCH_THREADS;
    for (size_t i = 0; i < want; i++) {
        if (pthread_create(&f->threads[i], NULL, fetch_thread, f) != 0)
            break; /* fewer threads take longer; the deadline still holds */
        f->n_threads++;
    }
    if (!f->n_threads) {
        free(f);
        *out = NULL;
        return MESH_E_NOMEM;
    }
    *out = f;
    return MESH_OK;
}

bool mesh_ui_fetch_done(const struct mesh_ui_fetch *f)
{
    return atomic_load(&f->finished) == f->n_threads;
}

void mesh_ui_fetch_cancel(struct mesh_ui_fetch *f)
{
    if (f)
        atomic_store(&f->cancel, 1);
}

void mesh_ui_fetch_finish(struct mesh_ui_fetch *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_threads; i++)
        pthread_join(f->threads[i], NULL);
    /* A target no thread reached (every thread stopped early) keeps the error set at start. */
    for (size_t i = 0; i < f->n; i++)
        if (f->targets[i].err != MESH_OK && !f->targets[i].errmsg)
            f->targets[i].errmsg = xstrdup("not read");
    free(f);
}
