/* SPDX-License-Identifier: Apache-2.0 */
/* A snapshot's tracing settings from its MeshConfig and ObservabilityConfig documents. */
#include "trace_config.h"

#include <stdio.h>
#include <string.h>

#include "mesh/mesh_config.h"
#include "mesh/observability_config.h"
#include "model/model.h"

static const struct mesh_observability_config *collector_config(struct mesh_resource *const *res,
                                                                size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!res[i] || res[i]->kind != MESH_KIND_OBSERVABILITY_CONFIG)
            continue;
        const struct mesh_observability_config *oc =
            (const struct mesh_observability_config *)res[i];
        if (oc->jaeger_endpoint && oc->jaeger_endpoint[0])
            return oc;
    }
    return NULL;
}

void mesh_trace_config_build(struct mesh_resource *const *res, size_t n,
                             struct mesh_trace_config *out)
{
    memset(out, 0, sizeof(*out));
    out->sampling_rate = MESH_TRACE_DEFAULT_SAMPLING;
    const struct mesh_mesh_config *mc = mesh_model_native_mesh_config(res, n);
    if (mc && mc->telemetry.sampling_rate != MESH_UNSET)
        out->sampling_rate = mc->telemetry.sampling_rate;
    if (mc && mc->telemetry.enabled == MESH_TRI_FALSE)
        return;
    const struct mesh_observability_config *oc = collector_config(res, n);
    if (!oc)
        return;
    /* Jaeger's collector (and any OpenTelemetry collector) takes OTLP/HTTP at /v1/traces. */
    const char *ep = oc->jaeger_endpoint;
    size_t len = strlen(ep);
    while (len && ep[len - 1] == '/')
        len--;
    const char *suffix = "/v1/traces";
    size_t slen = strlen(suffix);
    bool has_suffix = len >= slen && memcmp(ep + len - slen, suffix, slen) == 0;
    int w = snprintf(out->url, sizeof(out->url), "%.*s%s", (int)len, ep, has_suffix ? "" : suffix);
    if (w < 0 || (size_t)w >= sizeof(out->url)) {
        out->url[0] = '\0';
        return;
    }
    snprintf(out->source, sizeof(out->source), "%s/%s", mesh_resource_namespace(&oc->res),
             oc->res.name ? oc->res.name : "");
    out->enabled = true;
}
