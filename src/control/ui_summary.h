/* SPDX-License-Identifier: Apache-2.0 */
/* The dashboard's summary document (GET /v1/ui/summary, docs/dashboard.md) from the stored
 * resources, the registry and each proxy's readings: per-service figures, each VirtualService's
 * observed split beside its weights, the proxies' sync status, the SecurityPolicies with their
 * rules' counts, and the authorization denials. No I/O: ui.c hands it what the rounds read.
 * Loop thread (it reads the api's cache and registry). */
#ifndef MESH_CONTROL_UI_SUMMARY_H
#define MESH_CONTROL_UI_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "registry.h"
#include "ui_stats.h"

struct mesh_api;

/* When a denial count of (source, rule) was last seen growing at one proxy. */
struct mesh_ui_denial_seen {
    char *source, *rule;
    uint64_t last_wall_ms; /* unix ms */
};

/* One registered proxy as the summary sees it; everything borrowed. */
struct mesh_ui_view {
    const struct mesh_proxy_entry *e;
    const struct mesh_ui_reading *L; /* its newest reading; NULL: never read */
    const struct mesh_ui_reading *B; /* its oldest one in the window; NULL: no rate yet */
    uint64_t span_ms;                /* L->at_ms - B->at_ms */
    uint64_t read_wall_ms;           /* when L arrived (unix ms) */
    const char *error;               /* why the last round could not read it; NULL: it could */
    const struct mesh_ui_denial_seen *denials;
    size_t n_denials;
};

/* The summary for views[0..n) (one per registered proxy, in the registry's order) at wall-clock
 * time wall_ms. The caller owns the document. */
json_t *mesh_ui_summary_build(struct mesh_api *api, const struct mesh_ui_view *views, size_t n,
                              uint64_t wall_ms);

#endif
