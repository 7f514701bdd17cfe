/* SPDX-License-Identifier: Apache-2.0 */
/* One round of GET /stats to the admin listeners of many proxies, for the dashboard: a few
 * threads share the list, each answer is read into a mesh_ui_reading on the thread that fetched
 * it, and the whole round ends within MESH_UI_FETCH_ROUND_MS whatever the proxies do. meshd's
 * loop thread never waits on a proxy: it learns that a thread finished through notify_fd (an
 * eventfd it polls) and collects the round once every thread has. */
#ifndef MESH_CONTROL_UI_FETCH_H
#define MESH_CONTROL_UI_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "mesh/err.h"
#include "ui_stats.h"

#define MESH_UI_FETCH_THREADS    4          /* proxies fetched at once */
#define MESH_UI_FETCH_CONNECT_MS 250        /* connecting to one admin listener (loopback) */
#define MESH_UI_FETCH_TIMEOUT_MS 1000       /* one whole /stats exchange */
#define MESH_UI_FETCH_ROUND_MS   2000       /* the round: proxies not reached by then are skipped */
#define MESH_UI_FETCH_MAX_BODY   (4u << 20) /* a larger /stats answer fails that proxy */

/* One proxy to read. The caller fills id and admin; the round fills the rest. */
struct mesh_ui_fetch_target {
    char *id;                       /* the proxy id (owned by the caller) */
    char *admin;                    /* its admin listener, "host:port" (owned by the caller) */
    enum mesh_err err;              /* MESH_OK: reading holds the answer */
    struct mesh_ui_reading reading; /* at_ms: when the answer arrived (CLOCK_MONOTONIC ms) */
    char *errmsg;                   /* otherwise why, naming the URL (caller frees) */
};

struct mesh_ui_fetch;

/* Starts reading targets[0..n) (n > 0; borrowed until mesh_ui_fetch_finish) on up to
 * MESH_UI_FETCH_THREADS threads; each thread writes 1 to notify_fd as it ends. MESH_E_NOMEM
 * when no thread could be started (nothing runs then). Loop thread only. */
enum mesh_err mesh_ui_fetch_start(struct mesh_ui_fetch_target *targets, size_t n, int notify_fd,
                                  struct mesh_ui_fetch **out);
/* Whether every thread of the round has ended (the results are all written). */
bool mesh_ui_fetch_done(const struct mesh_ui_fetch *f);
/* Asks the threads to stop early: transfers in progress end within about 200 ms, and the
 * targets not yet started are skipped. */
void mesh_ui_fetch_cancel(struct mesh_ui_fetch *f);
/* Joins the threads (blocks until they end: call it once done, or after cancel at shutdown)
 * and frees the round; the targets' results stay with the caller. NULL is a no-op. */
void mesh_ui_fetch_finish(struct mesh_ui_fetch *f);

#endif
