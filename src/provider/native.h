/* SPDX-License-Identifier: Apache-2.0 */
/* Internal: the native provider, which keeps resources in the embedded store. */
#ifndef MESH_PROVIDER_NATIVE_H
#define MESH_PROVIDER_NATIVE_H

#include "mesh/provider.h"

/* The built-in "native" provider's ops; process lifetime. */
extern const struct mesh_provider_ops mesh_native_provider;

#endif
