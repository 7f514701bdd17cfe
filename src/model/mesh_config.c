/* SPDX-License-Identifier: Apache-2.0 */
/* MeshConfig: the seed's `mesh:` block (provider, version, mtls, telemetry, ingress, proxy,
 * dashboard, ha). Its nested blocks are anonymous structs, so sub-field offsets are taken
 * relative to their block with SUB(). */
#include <string.h>

#include "kinds.h"
#include "mesh/mesh_config.h"
#include "model.h"

#define MC                struct mesh_mesh_config
#define SUB(block, field) (offsetof(MC, block.field) - offsetof(MC, block))

static const struct mesh_field mtls_fields[] = {
    {.name = "enabled", .type = MESH_F_TRISTATE, .offset = SUB(mtls, enabled)},
    {.name = "auto_upgrade", .type = MESH_F_TRISTATE, .offset = SUB(mtls, auto_upgrade)},
};
static const struct mesh_schema mtls_schema = {0, MESH_FIELDS(mtls_fields), -1, NULL};

static const struct mesh_field telemetry_fields[] = {
    {.name = "enabled", .type = MESH_F_TRISTATE, .offset = SUB(telemetry, enabled)},
    {.name = "sampling_rate", .type = MESH_F_PERCENT, .offset = SUB(telemetry, sampling_rate)},
};
static const struct mesh_schema telemetry_schema = {0, MESH_FIELDS(telemetry_fields), -1, NULL};

static const struct mesh_field ingress_fields[] = {
    {.name = "enabled", .type = MESH_F_TRISTATE, .offset = SUB(ingress, enabled)},
    {.name = "gateway_class",
     .type = MESH_F_STRING,
     .offset = SUB(ingress, gateway_class),
     .check = MESH_CHECK_DNS_LABEL},
};
static const struct mesh_schema ingress_schema = {0, MESH_FIELDS(ingress_fields), -1, NULL};

static const struct mesh_field resources_fields[] = {
    {.name = "cpu",
     .type = MESH_F_STRING,
     .offset = SUB(proxy.resources, cpu),
     .check = MESH_CHECK_QUANTITY},
    {.name = "memory",
     .type = MESH_F_STRING,
     .offset = SUB(proxy.resources, memory),
     .check = MESH_CHECK_QUANTITY},
};
static const struct mesh_schema resources_schema = {0, MESH_FIELDS(resources_fields), -1, NULL};

static const struct mesh_field proxy_fields[] = {
    {.name = "resources",
     .type = MESH_F_OBJECT,
     .offset = SUB(proxy, resources),
     .schema = &resources_schema},
};
static const struct mesh_schema proxy_schema = {0, MESH_FIELDS(proxy_fields), -1, NULL};

static const struct mesh_field dashboard_fields[] = {
    {.name = "enabled", .type = MESH_F_TRISTATE, .offset = SUB(dashboard, enabled)},
};
static const struct mesh_schema dashboard_schema = {0, MESH_FIELDS(dashboard_fields), -1, NULL};

static const struct mesh_field ha_fields[] = {
    {.name = "enabled", .type = MESH_F_TRISTATE, .offset = SUB(ha, enabled)},
    {.name = "replicas", .type = MESH_F_INT_OPT, .offset = SUB(ha, replicas), .min = 1, .max = 15},
};
static const struct mesh_schema ha_schema = {0, MESH_FIELDS(ha_fields), -1, NULL};

#define BLOCK(field, sch)                                                                          \
    {                                                                                              \
        .name = #field, .type = MESH_F_OBJECT, .offset = offsetof(MC, field), .schema = &(sch)     \
    }

static const struct mesh_field mesh_config_fields[] = {
    {.name = "provider",
     .type = MESH_F_STRING,
     .offset = offsetof(MC, provider),
     .check = MESH_CHECK_DNS_LABEL},
    {.name = "version", .type = MESH_F_STRING, .offset = offsetof(MC, version)},
    {.name = "server",
     .type = MESH_F_STRING,
     .offset = offsetof(MC, server),
     .check = MESH_CHECK_URL},
    BLOCK(mtls, mtls_schema),
    BLOCK(telemetry, telemetry_schema),
    BLOCK(ingress, ingress_schema),
    BLOCK(proxy, proxy_schema),
    BLOCK(dashboard, dashboard_schema),
    BLOCK(ha, ha_schema),
};

const struct mesh_schema mesh_mesh_config_schema = {sizeof(MC), MESH_FIELDS(mesh_config_fields), -1,
                                                    NULL};

struct mesh_mesh_config *mesh_mesh_config_new(const char *name, const char *ns)
{
    return (struct mesh_mesh_config *)mesh_resource_new(MESH_KIND_MESH_CONFIG, name, ns);
}

void mesh_mesh_config_free(struct mesh_mesh_config *mc)
{
    mesh_resource_free(mc ? &mc->res : NULL);
}

const struct mesh_mesh_config *mesh_model_native_mesh_config(struct mesh_resource *const *res,
                                                             size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!res[i] || res[i]->kind != MESH_KIND_MESH_CONFIG)
            continue;
        const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)res[i];
        if (!mc->provider || strcmp(mc->provider, "native") == 0)
            return mc;
    }
    return NULL;
}
