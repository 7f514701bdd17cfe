/* SPDX-License-Identifier: Apache-2.0 */
/* Choosing the provider of an input and translating it (provider_input.h). */
#include "provider_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/xalloc.h"

const struct mesh_mesh_config *cli_provider_config(const struct cli_input *in, const char *provider)
{
    for (size_t i = 0; i < in->n_all; i++) {
        const struct mesh_resource *r = in->all[i];
        if (r->kind != MESH_KIND_MESH_CONFIG)
            continue;
        const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)r;
        if (!provider ? mc->provider && mesh_translator_find(mc->provider)
                      : mc->provider && strcmp(mc->provider, provider) == 0)
            return mc;
    }
    return NULL;
}

const char *cli_provider_named(const struct cli_input *in)
{
    const char *named = NULL;
    for (size_t i = 0; i < in->n_all; i++) {
        const struct mesh_resource *r = in->all[i];
        if (r->kind != MESH_KIND_MESH_CONFIG)
            continue;
        const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)r;
        if (!mc->provider || !mesh_translator_find(mc->provider))
            continue;
        if (named && strcmp(named, mc->provider) != 0)
            return NULL;
        named = mc->provider;
    }
    return named;
}

const struct mesh_kubernetes_config *cli_provider_kube_config(const struct cli_input *in)
{
    for (size_t i = 0; i < in->n_all; i++)
        if (in->all[i]->kind == MESH_KIND_KUBERNETES_CONFIG)
            return (const struct mesh_kubernetes_config *)in->all[i];
    return NULL;
}

const struct mesh_resource **cli_provider_pick(const struct cli_input *in, const char *provider,
                                               size_t *n)
{
    const struct mesh_resource **res = xcalloc(in->n_all + 1, sizeof(*res));
    *n = 0;
    for (size_t i = 0; i < in->n_all; i++) {
        const struct mesh_resource *r = in->all[i];
        if (r->kind == MESH_KIND_MESH_CONFIG) {
            const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)r;
            if (!mc->provider || strcmp(mc->provider, provider) != 0)
                continue;
        }
        res[(*n)++] = r;
    }
    return res;
}

int cli_provider_translate(const struct cli_input *in, const char *provider, const char *version,
                           bool allow_partial, struct mesh_translation *t,
                           const char **provider_out)
{
    const struct mesh_mesh_config *mc = cli_provider_config(in, provider);
    if (!provider && mc)
        provider = mc->provider;
    if (!provider)
        return cli_error("no provider: give --provider istio|linkerd, or a MeshConfig naming one "
                         "in the input");
    const struct mesh_translator *tr = mesh_translator_find(provider);
    if (!tr)
        return cli_error("unknown provider \"%s\": render knows istio and linkerd (the "
                         "native provider needs no rendering: meshctl apply)",
                         provider);
    struct mesh_translate_options opt = {
        .version = version ? version
                   : mc    ? mc->version
                           : NULL,
        .allow_partial = allow_partial,
    };
    size_t n = 0;
    const struct mesh_resource **res = cli_provider_pick(in, provider, &n);
    char *why = NULL;
    int rc = CLI_EXIT_OK;
    enum mesh_err err = tr->translate(res, n, &opt, t, &why);
    if (err == MESH_E_UNSUPPORTED)
        rc = cli_error("%s (--allow-partial renders the rest, with a warning for each such part)",
                       why ? why : "the provider cannot express part of the input");
    else if (err != MESH_OK)
        rc = cli_error("%s", why ? why : mesh_strerror(err));
    if (rc == CLI_EXIT_OK && provider_out)
        *provider_out = provider;
    free(why);
    free(res);
    return rc;
}

void cli_provider_print_warnings(const struct mesh_translation *t)
{
    for (size_t i = 0; i < t->warnings.len; i++)
        fprintf(stderr, "warning: %s\n", t->warnings.items[i].message);
}
