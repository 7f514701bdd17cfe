/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's web dashboard (docs/dashboard.md): the page at /ui (HTML, CSS and JavaScript compiled
 * into meshd, ui_assets.h) and GET /v1/ui/summary, the JSON it polls: services with their rate,
 * success rate and latency, each VirtualService's observed split beside its weights, the proxies
 * and their sync status, the security policies and the authorization denials.
 *
 * The traffic figures come from the proxies' admin /stats, read in rounds (ui_fetch.h) at most
 * once per MESH_UI_FRESH_MS however many browsers poll: a summary asked for while the last
 * round is fresh is answered from it at once; otherwise it waits (a deferred request) for the
 * round it starts or joins, which ends within MESH_UI_FETCH_ROUND_MS. Each proxy's readings are
 * kept for MESH_UI_WINDOW_MS, so that rates cover up to that window.
 *
 * Everything here runs on meshd's loop thread. */
#ifndef MESH_CONTROL_UI_H
#define MESH_CONTROL_UI_H

#include <stdbool.h>

#include "core/slice.h"

#define MESH_UI_FRESH_MS   1000u  /* a round younger than this answers a summary as it is */
#define MESH_UI_WINDOW_MS  60000u /* the window of rates, shares and percentiles */
#define MESH_UI_HISTORY    32u    /* readings kept per proxy (thinned evenly over the window) */
#define MESH_UI_REFRESH_MS 2000u  /* how often the page polls (told to it in the summary) */
#define MESH_UI_DENIALS    100u   /* rows of authorization denials in a summary */

struct mesh_api;
struct mesh_httpd_req;
struct mesh_ui;

/* The dashboard's state for api (borrowed; the api owns the ui). NULL when its eventfd cannot be
 * made (then every summary says so with a 503). */
struct mesh_ui *mesh_ui_new(struct mesh_api *api);
/* Stops a round in progress (its threads end within about 200 ms) and frees everything. The
 * httpd must be freed first: its waiting summaries are handed back as their clients go. NULL is
 * a no-op. */
void mesh_ui_free(struct mesh_ui *ui);

/* Whether path is the page's: "/ui" or anything under "/ui/". */
bool mesh_ui_is_page_path(struct mesh_slice path);
/* Answers a request for the page or one of its files (GET, HEAD): 200 with the file, 404 for a
 * file that does not exist or while the dashboard is turned off (the message says which
 * MeshConfig turned it off), 405 for other methods. */
void mesh_ui_page(struct mesh_api *api, struct mesh_httpd_req *req);
/* GET /v1/ui/summary. Answers req, or defers it until the round it waits for ends. */
void mesh_ui_summary(struct mesh_api *api, struct mesh_httpd_req *req);

#endif
