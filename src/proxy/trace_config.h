/* SPDX-License-Identifier: Apache-2.0 */
/* The tracing settings of a snapshot, read from its documents: the native MeshConfig's
 * telemetry (enabled, sampling_rate) and the collector of an ObservabilityConfig
 * (jaeger_endpoint). Built with the snapshot (main or control thread), then read-only. */
#ifndef MESH_PROXY_TRACE_CONFIG_H
#define MESH_PROXY_TRACE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh/resource.h"

/* Percent of new traces sampled when the MeshConfig sets no telemetry.sampling_rate (Istio's
 * default). */
#define MESH_TRACE_DEFAULT_SAMPLING 1.0

#define MESH_TRACE_URL_MAX 512

struct mesh_trace_config {
    /* Tracing applies: telemetry is not disabled and a collector is configured. Without it the
     * trace headers pass through untouched, like any other header, and nothing is recorded. */
    bool enabled;
    double sampling_rate; /* percent of the traces this proxy starts (0..100) */
    /* Where spans are POSTed: the jaeger_endpoint with "/v1/traces" appended (unless it ends
     * with it already). Empty when not enabled. */
    char url[MESH_TRACE_URL_MAX];
    char source[256]; /* "NAMESPACE/NAME" of the ObservabilityConfig, for dumps and logs */
};

/* The settings res[0..n) say (any kinds; only MeshConfig and ObservabilityConfig are read):
 * the first MeshConfig whose provider is native or unset (as for mTLS) gives telemetry; the
 * first ObservabilityConfig, in the order given, with a jaeger_endpoint gives the collector. A
 * URL too long for url leaves tracing off. Never allocates. */
void mesh_trace_config_build(struct mesh_resource *const *res, size_t n,
                             struct mesh_trace_config *out);

#endif
