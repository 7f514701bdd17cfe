/* SPDX-License-Identifier: Apache-2.0 */
/* FaultInjection: a delay and an abort for a share of a service's requests. */
#include "kinds.h"
#include "mesh/fault_injection.h"

static const struct mesh_field abort_fields[] = {
    {.name = "http_status",
     .type = MESH_F_UINT,
     .offset = offsetof(struct mesh_http_abort, http_status),
     .min = 200,
     .max = 599,
     .required = true,
     .presence = true},
    {.name = "percentage",
     .type = MESH_F_PERCENT,
     .offset = offsetof(struct mesh_http_abort, percentage)},
};

static const struct mesh_schema abort_schema = {sizeof(struct mesh_http_abort),
                                                MESH_FIELDS(abort_fields), -1, NULL};

static void fault_injection_validate(struct mesh_decoder *d, const void *obj,
                                     const struct mesh_node *node, const char *path)
{
    const struct mesh_fault *f = &((const struct mesh_fault_injection *)obj)->fault;
    if (!f->delay_ms && !f->abort.http_status) {
        mesh_decoder_error(d, node, path, "needs a delay or an abort");
    } else if (!f->delay_ms && f->delay_percentage != MESH_UNSET) {
        char p[MESH_PATH_LEN];
        mesh_path_join(p, path, "delay_percentage");
        mesh_decoder_error(d, mesh_node_map_get(node, "delay_percentage"), p, "needs a delay");
    }
}

static const struct mesh_field fault_injection_fields[] = {
    {.name = "service",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_fault_injection, service),
     .check = MESH_CHECK_SERVICE_HOST,
     .required = true},
    {.name = "route",
     .type = MESH_F_STRING,
     .offset = offsetof(struct mesh_fault_injection, route),
     .check = MESH_CHECK_DNS_LABEL},
    {.name = "delay",
     .type = MESH_F_DURATION,
     .offset = offsetof(struct mesh_fault_injection, fault.delay_ms)},
    {.name = "delay_percentage",
     .type = MESH_F_PERCENT,
     .offset = offsetof(struct mesh_fault_injection, fault.delay_percentage)},
    {.name = "abort",
     .type = MESH_F_OBJECT,
     .offset = offsetof(struct mesh_fault_injection, fault.abort),
     .schema = &abort_schema},
};

const struct mesh_schema mesh_fault_injection_schema = {sizeof(struct mesh_fault_injection),
                                                        MESH_FIELDS(fault_injection_fields), -1,
                                                        fault_injection_validate};

struct mesh_fault_injection *mesh_fault_injection_new(const char *name, const char *ns)
{
    return (struct mesh_fault_injection *)mesh_resource_new(MESH_KIND_FAULT_INJECTION, name, ns);
}

void mesh_fault_injection_free(struct mesh_fault_injection *fi)
{
    mesh_resource_free(fi ? &fi->res : NULL);
}
