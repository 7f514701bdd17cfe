/* SPDX-License-Identifier: Apache-2.0 */
/* The columns `meshctl get` shows for each resource kind, between NAME and GENERATION. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/strbuf.h"
#include "table.h"

#define MAX_KIND_COLUMNS 5

struct kind_columns {
    const char *headers[MAX_KIND_COLUMNS];
    size_t n;
    void (*cells)(const struct mesh_resource *res, struct cli_table *t);
};

/* Lists are joined with ","; an empty list shows as "-" so that columns stay readable. */
static void add_list(struct cli_table *t, const struct mesh_string_list *list)
{
    if (list->len == 0) {
        cli_table_add(t, "-");
        return;
    }
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < list->len; i++)
        mesh_strbuf_printf(&sb, "%s%s", i ? "," : "", list->items[i]);
    char *joined = mesh_strbuf_take(&sb);
    cli_table_add(t, joined);
    free(joined);
}

static void add_str(struct cli_table *t, const char *s)
{
    cli_table_add(t, s && *s ? s : "-");
}

/* 0 means "no limit set" for every circuit breaker number. */
static void add_limit(struct cli_table *t, unsigned long long v)
{
    if (v == 0)
        cli_table_add(t, "-");
    else
        cli_table_addf(t, "%llu", v);
}

/* An unset percentage means every request (100%). */
static double percent_or_all(double p)
{
    return p < 0 ? 100.0 : p;
}

static void vs_cells(const struct mesh_resource *res, struct cli_table *t)
{
    const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)res;
    add_list(t, &vs->hosts);
    add_list(t, &vs->gateways);
    cli_table_addf(t, "%zu", vs->n_http_routes);
}

static void sp_cells(const struct mesh_resource *res, struct cli_table *t)
{
    const struct mesh_security_policy *sp = (const struct mesh_security_policy *)res;
    add_str(t, mesh_mtls_mode_name(sp->mtls.mode));
    cli_table_addf(t, "%zu", sp->n_authorization);
}

static void cb_cells(const struct mesh_resource *res, struct cli_table *t)
{
    const struct mesh_circuit_breaker *cb = (const struct mesh_circuit_breaker *)res;
    add_str(t, cb->service);
    add_limit(t, cb->config.max_connections);
    add_limit(t, cb->config.max_pending_requests);
    add_limit(t, cb->config.max_requests);
    add_limit(t, cb->config.max_retries);
}

static void fi_cells(const struct mesh_resource *res, struct cli_table *t)
{
    const struct mesh_fault_injection *fi = (const struct mesh_fault_injection *)res;
    char dur[32];
    add_str(t, fi->service);
    if (fi->fault.delay_ms == 0) {
        cli_table_add(t, "-");
    } else {
        cli_format_duration(fi->fault.delay_ms, dur, sizeof(dur));
        double pct = percent_or_all(fi->fault.delay_percentage);
        if (pct >= 100.0)
            cli_table_add(t, dur);
        else
            cli_table_addf(t, "%s@%g%%", dur, pct);
    }
    if (fi->fault.abort.http_status == 0)
        cli_table_add(t, "-");
    else
        cli_table_addf(t, "%d@%g%%", fi->fault.abort.http_status,
                       percent_or_all(fi->fault.abort.percentage));
}

static void svc_cells(const struct mesh_resource *res, struct cli_table *t)
{
    const struct mesh_service *svc = (const struct mesh_service *)res;
    /* http is what an unset protocol means, so say it rather than "-" */
    add_str(t, svc->protocol ? svc->protocol : "http");
    if (svc->n_endpoints == 0) {
        cli_table_add(t, "-");
        return;
    }
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < svc->n_endpoints; i++)
        mesh_strbuf_printf(&sb, "%s%s", i ? "," : "", svc->endpoints[i].address);
    char *joined = mesh_strbuf_take(&sb);
    cli_table_add(t, joined);
    free(joined);
}

static void mc_cells(const struct mesh_resource *res, struct cli_table *t)
{
    const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)res;
    add_str(t, mc->provider ? mc->provider : "native");
    add_str(t, mc->version);
}

static void oc_cells(const struct mesh_resource *res, struct cli_table *t)
{
    const struct mesh_observability_config *oc = (const struct mesh_observability_config *)res;
    add_str(t, oc->prometheus_endpoint);
    add_str(t, oc->grafana_endpoint);
    add_str(t, oc->jaeger_endpoint);
}

static void kc_cells(const struct mesh_resource *res, struct cli_table *t)
{
    const struct mesh_kubernetes_config *kc = (const struct mesh_kubernetes_config *)res;
    add_str(t, kc->context);
    add_str(t, kc->target_namespace);
}

static const struct kind_columns columns[MESH_KIND_COUNT] = {
    [MESH_KIND_VIRTUAL_SERVICE] = {{"HOSTS", "GATEWAYS", "ROUTES"}, 3, vs_cells},
    [MESH_KIND_SECURITY_POLICY] = {{"MTLS", "RULES"}, 2, sp_cells},
    [MESH_KIND_CIRCUIT_BREAKER] = {{"SERVICE", "MAX-CONN", "MAX-PENDING", "MAX-REQ", "MAX-RETRIES"},
                                   5,
                                   cb_cells},
    [MESH_KIND_FAULT_INJECTION] = {{"SERVICE", "DELAY", "ABORT"}, 3, fi_cells},
    [MESH_KIND_SERVICE] = {{"PROTOCOL", "ENDPOINTS"}, 2, svc_cells},
    [MESH_KIND_MESH_CONFIG] = {{"PROVIDER", "VERSION"}, 2, mc_cells},
    [MESH_KIND_OBSERVABILITY_CONFIG] = {{"PROMETHEUS", "GRAFANA", "JAEGER"}, 3, oc_cells},
    [MESH_KIND_KUBERNETES_CONFIG] = {{"CONTEXT", "TARGET-NAMESPACE"}, 2, kc_cells},
};

void cli_columns_table(enum mesh_kind kind, struct mesh_resource *const *res, size_t n,
                       bool with_namespace, bool with_kind, struct cli_table *t)
{
    const struct kind_columns *kc = &columns[kind];
    cli_table_init(t, (with_namespace ? 1 : 0) + 1 + kc->n + 1);
    if (with_namespace)
        cli_table_add(t, "NAMESPACE");
    cli_table_add(t, "NAME");
    for (size_t i = 0; i < kc->n; i++)
        cli_table_add(t, kc->headers[i]);
    cli_table_add(t, "GENERATION");

    for (size_t i = 0; i < n; i++) {
        if (with_namespace)
            cli_table_add(t, mesh_resource_namespace(res[i]));
        if (with_kind)
            cli_table_addf(t, "%s/%s", cli_kind_lower(kind), res[i]->name);
        else
            cli_table_add(t, res[i]->name);
        kc->cells(res[i], t);
        cli_table_addf(t, "%llu", (unsigned long long)res[i]->generation);
    }
}
