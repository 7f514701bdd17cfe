/* SPDX-License-Identifier: Apache-2.0 */
/* Internal: the process-wide provider table that mesh_new() resolves provider names through. */
#ifndef MESH_PROVIDER_REGISTRY_H
#define MESH_PROVIDER_REGISTRY_H

#include "mesh/provider.h"

/* Finds the provider called name. On MESH_OK *out is the (borrowed, process-lifetime or
 * caller-registered) ops table and *errmsg is untouched. On error *out is NULL and, when errmsg is
 * non-NULL, *errmsg (caller frees) says why: MESH_E_UNSUPPORTED for a known provider this build
 * cannot run yet (istio, linkerd), MESH_E_NOTFOUND for an unknown name (the message lists the
 * known ones), MESH_E_NOMEM. Thread-safe. */
enum mesh_err mesh_registry_lookup(const char *name, const struct mesh_provider_ops **out,
                                   char **errmsg);

#endif
