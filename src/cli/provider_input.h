/* SPDX-License-Identifier: Apache-2.0 */
/* Which provider an input is for and its translation: what render, apply and diff share when the
 * resources go to Istio or Linkerd instead of the store (provider/translate.h). */
#ifndef MESH_CLI_PROVIDER_INPUT_H
#define MESH_CLI_PROVIDER_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "input.h"
#include "mesh/kubernetes_config.h"
#include "mesh/mesh_config.h"
#include "provider/translate.h"

/* The input's first MeshConfig for provider; provider NULL: the first naming a provider we
 * translate for (istio, linkerd). NULL when there is none. Borrowed from in. */
const struct mesh_mesh_config *cli_provider_config(const struct cli_input *in,
                                                   const char *provider);

/* The one provider we translate for that the input's MeshConfigs name, or NULL when they name
 * none, or several (examples/ holds both the seed's Istio and Linkerd MeshConfigs: such an input
 * is stored as it is, not sent to one of them). Borrowed from in. */
const char *cli_provider_named(const struct cli_input *in);

/* The input's first KubernetesConfig, or NULL. Borrowed from in. */
const struct mesh_kubernetes_config *cli_provider_kube_config(const struct cli_input *in);

/* What to translate for provider: every resource but the MeshConfigs of other providers.
 * *n of them; the array is malloc'ed (free it), its items borrowed from in. */
const struct mesh_resource **cli_provider_pick(const struct cli_input *in, const char *provider,
                                               size_t *n);

/* Translates the (valid) input for provider (NULL: the MeshConfig's, see cli_provider_config) at
 * version (NULL: the MeshConfig's, else the newest). t must be zeroed. Returns CLI_EXIT_OK with
 * t filled (its warnings not printed yet; *provider_out, may be NULL, borrowed: the provider in
 * effect), else the exit code after printing why (no provider, unknown provider, a part the
 * provider cannot express without allow_partial, a dangling reference); t holds nothing then. */
int cli_provider_translate(const struct cli_input *in, const char *provider, const char *version,
                           bool allow_partial, struct mesh_translation *t,
                           const char **provider_out);

/* Prints t's warnings to stderr, one "warning: ..." line each. */
void cli_provider_print_warnings(const struct mesh_translation *t);

#endif
