/* SPDX-License-Identifier: Apache-2.0 */
/* The mesh's Grafana dashboards, built from tables of panels: each panel's PromQL reads the
 * families of docs/metrics.md, by the labels meshd's service discovery gives every scraped proxy
 * (docs/observability.md). A test scrapes a real proxy and checks every metric named here. */
#include "dashboards.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TARGETS 4
#define GRID_WIDTH  24 /* Grafana's grid is 24 columns wide */

/* Destination services as the calling side counts them: a sidecar's inbound side counts its own
 * service again as "inbound|NAME", which would count every request twice in a sum. */
#define OUTBOUND "service!~\"inbound[|].*\""
/* Successes, for a success rate: anything but 5xx and 000 (no response was sent). */
#define SUCCEEDED "code!~\"5..|000\""
#define RATE      "[$__rate_interval]"

struct target_def {
    const char *expr;
    const char *legend;
};

struct panel_def {
    const char *type; /* "stat", "timeseries", or "row" (a heading; no targets) */
    const char *title;
    const char *description;
    const char *unit; /* Grafana unit: reqps, percentunit, s, bytes, short, ops, Bps */
    int width, height;
    struct target_def targets[MAX_TARGETS];
};

enum var_kind {
    VAR_NONE = 0,
    VAR_SERVICE, /* a destination service, from mesh_requests_total */
    VAR_PROXY,   /* a proxy, from the mesh_proxy target label */
};

struct dashboard_def {
    const char *uid, *file, *title, *description;
    enum var_kind var;
    const struct panel_def *panels;
    size_t n_panels;
};

/* clang-format off */
static const struct panel_def overview_panels[] = {
    {"stat", "Requests per second", "Requests the proxies answered, every destination service.",
     "reqps", 6, 4,
     {{"sum(rate(mesh_requests_total{" OUTBOUND "}" RATE "))", "requests/s"}}},
    {"stat", "Success rate", "Share of requests not answered 5xx (or not answered at all).",
     "percentunit", 6, 4,
     {{"sum(rate(mesh_requests_total{" OUTBOUND "," SUCCEEDED "}" RATE ")) / "
       "sum(rate(mesh_requests_total{" OUTBOUND "}" RATE "))", "success"}}},
    {"stat", "p99 latency", "99th percentile of request duration, every service.",
     "s", 6, 4,
     {{"histogram_quantile(0.99, sum by (le) (rate(mesh_request_duration_seconds_bucket{"
       OUTBOUND "}" RATE ")))", "p99"}}},
    {"stat", "Proxies up", "Proxies Prometheus found through meshd and scraped successfully.",
     "short", 6, 4,
     {{"sum(up{mesh_proxy!=\"\"})", "proxies"}}},
    {"timeseries", "Requests per second by service", NULL, "reqps", 12, 8,
     {{"sum by (service) (rate(mesh_requests_total{" OUTBOUND "}" RATE "))", "{{service}}"}}},
    {"timeseries", "Success rate by service", NULL, "percentunit", 12, 8,
     {{"sum by (service) (rate(mesh_requests_total{" OUTBOUND "," SUCCEEDED "}" RATE ")) / "
       "sum by (service) (rate(mesh_requests_total{" OUTBOUND "}" RATE "))", "{{service}}"}}},
    {"timeseries", "p99 latency by service", NULL, "s", 12, 8,
     {{"histogram_quantile(0.99, sum by (le, service) (rate(mesh_request_duration_seconds_bucket{"
       OUTBOUND "}" RATE ")))", "{{service}}"}}},
    {"timeseries", "Circuit breaker overflows by service",
     "Requests refused with 503 because a CircuitBreaker limit was reached.", "reqps", 12, 8,
     {{"sum by (service) (rate(mesh_circuit_breaker_overflows_total" RATE "))", "{{service}}"}}},
    {"timeseries", "Outlier ejections by service",
     "Endpoints ejected by outlier detection in each interval.", "short", 12, 8,
     {{"sum by (service) (increase(mesh_outlier_ejections_total" RATE "))", "{{service}}"}}},
    {"timeseries", "Authorization denials by source",
     "Requests a sidecar refused (403) because no rule allowed the caller.", "reqps", 12, 8,
     {{"sum by (source) (rate(mesh_authz_requests_total{result=\"deny\"}" RATE "))",
       "{{source}}"}}},
};

static const struct panel_def service_panels[] = {
    {"timeseries", "Requests per second by status code", NULL, "reqps", 12, 8,
     {{"sum by (code) (rate(mesh_requests_total{service=\"$service\"}" RATE "))", "{{code}}"}}},
    {"timeseries", "Success rate", "Share of requests not answered 5xx (or not answered at all).",
     "percentunit", 12, 8,
     {{"sum(rate(mesh_requests_total{service=\"$service\"," SUCCEEDED "}" RATE ")) / "
       "sum(rate(mesh_requests_total{service=\"$service\"}" RATE "))",
       "success"}}},
    {"timeseries", "Latency", "Request duration percentiles, from the duration histogram.", "s",
     12, 8,
     {{"histogram_quantile(0.50, sum by (le) (rate(mesh_request_duration_seconds_bucket{"
       "service=\"$service\"}" RATE ")))", "p50"},
      {"histogram_quantile(0.95, sum by (le) (rate(mesh_request_duration_seconds_bucket{"
       "service=\"$service\"}" RATE ")))", "p95"},
      {"histogram_quantile(0.99, sum by (le) (rate(mesh_request_duration_seconds_bucket{"
       "service=\"$service\"}" RATE ")))", "p99"}}},
    {"timeseries", "Requests per second by endpoint", NULL, "reqps", 12, 8,
     {{"sum by (endpoint) (rate(mesh_requests_total{service=\"$service\"}" RATE "))",
       "{{endpoint}}"}}},
    {"timeseries", "Circuit breaker overflows",
     "Requests refused with 503 because a CircuitBreaker limit was reached, by limit.", "reqps",
     12, 8,
     {{"sum by (resource) (rate(mesh_circuit_breaker_overflows_total{service=\"$service\"}" RATE
       "))", "{{resource}}"}}},
    {"timeseries", "Outlier ejections", "Times outlier detection ejected each endpoint.", "short",
     12, 8,
     {{"sum by (endpoint) (increase(mesh_outlier_ejections_total{service=\"$service\"}" RATE
       "))", "{{endpoint}}"}}},
    {"timeseries", "Retries and injected faults", NULL, "reqps", 12, 8,
     {{"sum(rate(mesh_retries_total{service=\"$service\"}" RATE "))", "retries"},
      {"sum by (kind) (rate(mesh_faults_injected_total{service=\"$service\"}" RATE "))",
       "fault {{kind}}"}}},
    {"timeseries", "Upstream connections", "Connections to the service's endpoints, by proxy.",
     "short", 12, 8,
     {{"sum by (mesh_proxy) (mesh_upstream_connections_open{service=\"$service\"})",
       "{{mesh_proxy}} open"},
      {"sum by (mesh_proxy) (mesh_upstream_connections_pending{service=\"$service\"})",
       "{{mesh_proxy}} connecting"}}},
};

static const struct panel_def proxy_panels[] = {
    {"timeseries", "Client connections", NULL, "short", 12, 8,
     {{"mesh_downstream_connections_active{mesh_proxy=\"$proxy\"}", "open"},
      {"rate(mesh_downstream_connections_accepted_total{mesh_proxy=\"$proxy\"}" RATE ")",
       "accepted/s"}}},
    {"timeseries", "Upstream connections", NULL, "short", 12, 8,
     {{"sum by (service) (mesh_upstream_connections_open{mesh_proxy=\"$proxy\"})",
       "{{service}} open"},
      {"sum by (service) (mesh_upstream_connections_pending{mesh_proxy=\"$proxy\"})",
       "{{service}} connecting"}}},
    {"timeseries", "Resident memory", NULL, "bytes", 12, 8,
     {{"mesh_process_resident_memory_bytes{mesh_proxy=\"$proxy\"}", "resident"}}},
    {"timeseries", "CPU", "CPU seconds used per second (1 = one core).", "short", 12, 8,
     {{"rate(mesh_process_cpu_seconds_total{mesh_proxy=\"$proxy\"}" RATE ")", "cpu"}}},
    {"timeseries", "Requests per second by destination", NULL, "reqps", 12, 8,
     {{"sum by (service) (rate(mesh_requests_total{mesh_proxy=\"$proxy\"}" RATE "))",
       "{{service}}"}}},
    {"timeseries", "Client traffic", NULL, "Bps", 12, 8,
     {{"rate(mesh_downstream_received_bytes_total{mesh_proxy=\"$proxy\"}" RATE ")", "received"},
      {"rate(mesh_downstream_sent_bytes_total{mesh_proxy=\"$proxy\"}" RATE ")", "sent"}}},
    {"timeseries", "Open file descriptors", NULL, "short", 12, 8,
     {{"mesh_process_open_fds{mesh_proxy=\"$proxy\"}", "fds"}}},
    {"timeseries", "Workload certificate expires in",
     "Time left on the proxy's workload certificate (it renews at half its lifetime).", "s", 12,
     8,
     {{"mesh_certificate_expiry_timestamp_seconds{mesh_proxy=\"$proxy\"} - time() > 0",
       "expires in"}}},
};
/* clang-format on */

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct dashboard_def dashboards[] = {
    {"mesh-overview", "mesh-overview.json", "ClusterDB Mesh / Overview",
     "Every service of the mesh: traffic, success rate, latency, circuit breakers, ejections.",
     VAR_NONE, overview_panels, N(overview_panels)},
    {"mesh-service", "mesh-service.json", "ClusterDB Mesh / Service",
     "One destination service: requests, success rate, p50/p95/p99 latency, circuit breaker "
     "overflows, outlier ejections.",
     VAR_SERVICE, service_panels, N(service_panels)},
    {"mesh-proxy", "mesh-proxy.json", "ClusterDB Mesh / Proxy",
     "One sidecar or gateway: connections, memory, CPU, traffic.", VAR_PROXY, proxy_panels,
     N(proxy_panels)},
};

/* Panels query the data source the user picks in the $datasource variable. */
static json_t *datasource(void)
{
    return json_pack("{s:s,s:s}", "type", "prometheus", "uid", "${datasource}");
}

static json_t *panel_json(const struct panel_def *p, int id, int x, int y)
{
    json_t *targets = json_array();
    for (size_t i = 0; i < MAX_TARGETS && p->targets[i].expr; i++) {
        char ref[2] = {(char)('A' + i), 0};
        json_array_append_new(targets,
                              json_pack("{s:s,s:o,s:s,s:s,s:b}", "refId", ref, "datasource",
                                        datasource(), "expr", p->targets[i].expr, "legendFormat",
                                        p->targets[i].legend, "range", 1));
    }
    json_t *options;
    if (strcmp(p->type, "stat") == 0)
        options = json_pack("{s:{s:[s],s:s,s:b},s:s,s:s,s:s}", "reduceOptions", "calcs",
                            "lastNotNull", "fields", "", "values", 0, "colorMode", "value",
                            "graphMode", "area", "textMode", "auto");
    else
        options =
            json_pack("{s:{s:s,s:s,s:b},s:{s:s,s:s}}", "legend", "displayMode", "list", "placement",
                      "bottom", "showLegend", 1, "tooltip", "mode", "multi", "sort", "desc");
    json_t *panel =
        json_pack("{s:i,s:s,s:s,s:o,s:{s:i,s:i,s:i,s:i},s:{s:{s:s},s:[]},s:o,s:o}", "id", id,
                  "type", p->type, "title", p->title, "datasource", datasource(), "gridPos", "h",
                  p->height, "w", p->width, "x", x, "y", y, "fieldConfig", "defaults", "unit",
                  p->unit, "overrides", "options", options, "targets", targets);
    if (panel && p->description)
        json_object_set_new(panel, "description", json_string(p->description));
    return panel;
}

/* The $datasource variable, then the dashboard's own. */
static json_t *templating(enum var_kind var)
{
    json_t *list = json_array();
    json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:i,s:b,s:b,s:s}", "name", "datasource",
                                          "label", "Data source", "type", "datasource", "query",
                                          "prometheus", "refresh", 1, "includeAll", 0, "multi", 0,
                                          "regex", ""));
    const char *name = NULL, *label = NULL, *query = NULL, *regex = "";
    if (var == VAR_SERVICE) {
        name = "service";
        label = "Service";
        query = "label_values(mesh_requests_total, service)";
        regex = "/^[^|]+$/"; /* destination services, not the inbound|NAME of sidecars */
    } else if (var == VAR_PROXY) {
        name = "proxy";
        label = "Proxy";
        query = "label_values(mesh_downstream_connections_active, mesh_proxy)";
    }
    if (name)
        json_array_append_new(
            list, json_pack("{s:s,s:s,s:s,s:o,s:s,s:{s:s,s:s},s:i,s:s,s:i,s:b,s:b}", "name", name,
                            "label", label, "type", "query", "datasource", datasource(),
                            "definition", query, "query", "query", query, "refId",
                            "PrometheusVariableQueryEditor-VariableQuery", "refresh", 2, "regex",
                            regex, "sort", 1, "includeAll", 0, "multi", 0));
    return json_pack("{s:o}", "list", list);
}

static json_t *dashboard_json(const struct dashboard_def *d)
{
    json_t *panels = json_array();
    int x = 0, y = 0, row_height = 0;
    for (size_t i = 0; i < d->n_panels; i++) {
        const struct panel_def *p = &d->panels[i];
        if (x + p->width > GRID_WIDTH) {
            x = 0;
            y += row_height;
            row_height = 0;
        }
        json_array_append_new(panels, panel_json(p, (int)i + 1, x, y));
        x += p->width;
        if (p->height > row_height)
            row_height = p->height;
    }
    /* Links to the other dashboards by tag; the variables carry over where they mean the same. */
    json_t *links = json_pack("[{s:s,s:[s],s:b,s:b,s:b,s:s,s:s}]", "title", "ClusterDB Mesh",
                              "tags", MESH_DASHBOARD_TAG, "asDropdown", 1, "includeVars", 1,
                              "keepTime", 1, "type", "dashboards", "icon", "external link");
    json_t *doc = json_pack(
        "{s:n,s:s,s:s,s:s,s:[s],s:b,s:i,s:s,s:s,s:{s:s,s:s},s:o,s:o,s:o,s:i}", "id", "uid", d->uid,
        "title", d->title, "description", d->description, "tags", MESH_DASHBOARD_TAG, "editable", 1,
        "graphTooltip", 1, "refresh", "10s", "timezone", "", "time", "from", "now-30m", "to", "now",
        "templating", templating(d->var), "links", links, "panels", panels, "schemaVersion", 36);
    return doc;
}

/* Whether a built document came out whole: json_pack and json_array_append_new answer NULL or
 * -1 when out of memory, and a NULL handed on makes the enclosing pack fail too, so a complete
 * top-level document means every part of it was built. Arrays are the exception (append
 * ignores NULL): check that each holds what it should. */
static bool complete(const json_t *doc, const struct dashboard_def *d)
{
    const json_t *panels = json_object_get(doc, "panels");
    if (!doc || json_array_size(panels) != d->n_panels)
        return false;
    for (size_t i = 0; i < d->n_panels; i++) {
        const json_t *targets = json_object_get(json_array_get(panels, i), "targets");
        size_t want = 0;
        while (want < MAX_TARGETS && d->panels[i].targets[want].expr)
            want++;
        if (json_array_size(targets) != want)
            return false;
    }
    const json_t *vars = json_object_get(json_object_get(doc, "templating"), "list");
    return json_array_size(vars) == (d->var == VAR_NONE ? 1u : 2u);
}

enum mesh_err mesh_dashboards_build(struct mesh_dashboard **out, size_t *n)
{
    struct mesh_dashboard *list = calloc(N(dashboards), sizeof(*list));
    *out = NULL;
    *n = 0;
    if (!list)
        return MESH_E_NOMEM;
    for (size_t i = 0; i < N(dashboards); i++) {
        const struct dashboard_def *d = &dashboards[i];
        list[i].uid = d->uid;
        list[i].file = d->file;
        list[i].title = d->title;
        list[i].json = dashboard_json(d);
        if (!complete(list[i].json, d)) {
            mesh_dashboards_free(list, i + 1);
            return MESH_E_NOMEM;
        }
    }
    *out = list;
    *n = N(dashboards);
    return MESH_OK;
}

void mesh_dashboards_free(struct mesh_dashboard *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        json_decref(list[i].json);
    free(list);
}
