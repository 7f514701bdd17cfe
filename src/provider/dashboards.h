/* SPDX-License-Identifier: Apache-2.0 */
/* The mesh's Grafana dashboards (overview, per service, per proxy) as Grafana dashboard JSON,
 * their PromQL over the metrics meshproxy exports (docs/metrics.md) and the target labels meshd's
 * Prometheus service discovery adds (mesh_proxy, mesh_service, ...). `meshctl dashboards` writes
 * them to files; mesh_configure_observability() and `meshctl dashboards --push` send them to
 * Grafana (grafana.h). */
#ifndef MESH_PROVIDER_DASHBOARDS_H
#define MESH_PROVIDER_DASHBOARDS_H

#include <stddef.h>

#include <jansson.h>

#include "mesh/err.h"

#define MESH_DASHBOARD_TAG "clusterdb-mesh" /* every dashboard carries it; they link by it */

struct mesh_dashboard {
    const char *uid;   /* Grafana uid, stable across versions: a push replaces the old one */
    const char *file;  /* file name meshctl writes it to ("mesh-overview.json"); static */
    const char *title; /* static */
    json_t *json;      /* the dashboard model, owned */
};

/* Builds every dashboard. On MESH_OK *out is an array of *n dashboards (free with
 * mesh_dashboards_free). MESH_E_NOMEM: nothing is left allocated. Any thread. */
enum mesh_err mesh_dashboards_build(struct mesh_dashboard **out, size_t *n);
void mesh_dashboards_free(struct mesh_dashboard *list, size_t n);

#endif
