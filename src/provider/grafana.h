/* SPDX-License-Identifier: Apache-2.0 */
/* Pushing the mesh's dashboards (dashboards.h) to Grafana through its HTTP API
 * (POST /api/dashboards/db), for mesh_configure_observability() and `meshctl dashboards --push`.
 * libcurl, blocking; never on a proxy's request path. */
#ifndef MESH_PROVIDER_GRAFANA_H
#define MESH_PROVIDER_GRAFANA_H

#include <jansson.h>

#include "mesh/err.h"

/* Where credentials come from when the call gives none: a Grafana service account token
 * (Bearer), else a user and password (basic auth). */
#define MESH_GRAFANA_TOKEN_ENV    "MESH_GRAFANA_TOKEN"
#define MESH_GRAFANA_USER_ENV     "MESH_GRAFANA_USER"
#define MESH_GRAFANA_PASSWORD_ENV "MESH_GRAFANA_PASSWORD"

#define MESH_GRAFANA_TIMEOUT_MS 10000

/* Creates or replaces dashboard (borrowed; a dashboard model with a uid) in Grafana at base_url
 * (http:// or https://, maybe with a sub-path: "http://127.0.0.1:3000", "https://example.org/
 * grafana"), as {"dashboard": ..., "overwrite": true}. Credentials: token (NULL:
 * $MESH_GRAFANA_TOKEN) as "Authorization: Bearer"; else user:password in base_url as basic auth;
 * else $MESH_GRAFANA_USER and $MESH_GRAFANA_PASSWORD as basic auth; else none (a Grafana with
 * anonymous editors). https:// is verified against the system trust
 * store. On MESH_OK *url (caller frees; may be NULL when Grafana did not say) is the dashboard's
 * address in Grafana. On error *errmsg (caller frees) says why, with base_url's password left
 * out: MESH_E_INVALID a URL that is not http(s) or an answer 4xx (refused credentials: 401, 403),
 * MESH_E_UNAVAILABLE Grafana cannot be reached or answered 5xx, MESH_E_TLS the TLS handshake
 * failed, MESH_E_INTERNAL libcurl cannot start. Any thread. */
enum mesh_err mesh_grafana_push(const char *base_url, const char *token, const json_t *dashboard,
                                char **url, char **errmsg);

/* base_url without its user:password, for messages (caller frees). */
char *mesh_grafana_redact(const char *base_url);

#endif
