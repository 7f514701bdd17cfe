/* SPDX-License-Identifier: Apache-2.0 */
/* The table of kinds: names, aliases, struct sizes and the schema of each kind's spec. */
#ifndef MESH_MODEL_KINDS_H
#define MESH_MODEL_KINDS_H

#include "mesh/resource.h"
#include "schema.h"

struct mesh_kind_info {
    enum mesh_kind kind;
    const char *name;               /* "VirtualService" */
    const char *plural;             /* "virtualservices" */
    const char *alias;              /* "vs" */
    const struct mesh_schema *spec; /* offsets are within the kind's struct; size = its size */
};

/* NULL for an out-of-range kind. */
const struct mesh_kind_info *mesh_kind_info(enum mesh_kind kind);

extern const struct mesh_schema mesh_virtual_service_schema;
extern const struct mesh_schema mesh_security_policy_schema;
extern const struct mesh_schema mesh_circuit_breaker_schema;
extern const struct mesh_schema mesh_fault_injection_schema;
extern const struct mesh_schema mesh_service_schema;
extern const struct mesh_schema mesh_mesh_config_schema;
extern const struct mesh_schema mesh_observability_config_schema;
extern const struct mesh_schema mesh_kubernetes_config_schema;

#define MESH_FIELDS(arr) (arr), (sizeof(arr) / sizeof((arr)[0]))

#endif
