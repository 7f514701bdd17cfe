/* SPDX-License-Identifier: Apache-2.0 */
/* Internal: the native provider, which keeps resources in the embedded store, or talks to meshd
 * when mesh_config.server names one. */
#ifndef MESH_PROVIDER_NATIVE_H
#define MESH_PROVIDER_NATIVE_H

#include "mesh/provider.h"

/* The built-in "native" provider's ops; process lifetime. */
extern const struct mesh_provider_ops mesh_native_provider;

/* The meshd client behind mesh_native_provider when mesh_config.server is set (remote.c). Not
 * registered by itself: native's open picks it. */
extern const struct mesh_provider_ops mesh_native_remote_ops;

#endif
