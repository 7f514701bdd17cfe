/* SPDX-License-Identifier: Apache-2.0 */
/* MeshConfig: the seed's `mesh:` block (provider, version, mtls, telemetry, ingress, proxy,
 * dashboard, ha). A bare `mesh:` document is read as a MeshConfig named for its provider. */
#ifndef MESH_MESH_CONFIG_H
#define MESH_MESH_CONFIG_H

#include "resource.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mesh_mesh_config {
    struct mesh_resource res; /* kind MESH_KIND_MESH_CONFIG */
    char *provider;           /* native (default), istio, linkerd, or a registered name */
    char *version;            /* the provider's version, as written ("1.14") */
    char *server;             /* native: the meshd URL; NULL = embedded store */
    struct {
        enum mesh_tristate enabled;
        enum mesh_tristate auto_upgrade;
    } mtls;
    struct {
        enum mesh_tristate enabled;
        double sampling_rate; /* 0..100 percent, or MESH_UNSET */
    } telemetry;
    struct {
        enum mesh_tristate enabled;
        char *gateway_class;
    } ingress;
    struct {
        struct {
            char *cpu;    /* Kubernetes quantity: 100m, 1 */
            char *memory; /* Kubernetes quantity: 128Mi */
        } resources;
    } proxy;
    struct {
        enum mesh_tristate enabled;
    } dashboard;
    struct {
        enum mesh_tristate enabled;
        int replicas; /* >= 1, or MESH_UNSET */
    } ha;
};

struct mesh_mesh_config *mesh_mesh_config_new(const char *name, const char *ns);
void mesh_mesh_config_free(struct mesh_mesh_config *mc);

#ifdef __cplusplus
}
#endif
#endif
