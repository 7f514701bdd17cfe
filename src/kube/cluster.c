/* SPDX-License-Identifier: Apache-2.0 */
/* Connecting to a cluster and checking it is ready for a provider (cluster.h). */
#include "cluster.h"

#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"

static const char *const istio_crds[] = {
    "virtualservices.networking.istio.io",
    "destinationrules.networking.istio.io",
    "gateways.networking.istio.io",
    "peerauthentications.security.istio.io",
    "authorizationpolicies.security.istio.io",
    "telemetries.telemetry.istio.io",
    NULL,
};

static const char *const linkerd_crds[] = {
    "servers.policy.linkerd.io",
    "httproutes.policy.linkerd.io",
    "authorizationpolicies.policy.linkerd.io",
    "meshtlsauthentications.policy.linkerd.io",
    "networkauthentications.policy.linkerd.io",
    NULL,
};

const char *const *mesh_kube_provider_crds(const char *provider)
{
    if (provider && strcmp(provider, "istio") == 0)
        return istio_crds;
    if (provider && strcmp(provider, "linkerd") == 0)
        return linkerd_crds;
    return NULL;
}

enum mesh_err mesh_kube_cluster_open(const struct mesh_kube_target *t,
                                     struct mesh_kube_cluster *out, char **errmsg)
{
    struct mesh_kubeconfig *kc = NULL;
    struct mesh_kube_credentials cred = {0};
    enum mesh_err err = mesh_kubeconfig_load(t->kubeconfig, &kc, errmsg);

    if (err != MESH_OK)
        goto out;
    if ((err = mesh_kubeconfig_resolve(kc, t->context, &cred, errmsg)) != MESH_OK)
        goto out;
    if ((err = mesh_kube_client_new(&cred, t->timeout_ms, &out->client, errmsg)) != MESH_OK)
        goto out;
    out->context = xstrdup(cred.context);
    out->server = xstrdup(cred.server);
    out->ns = xstrdup(t->ns && *t->ns ? t->ns : cred.namespace ? cred.namespace : "default");
out:
    mesh_kube_credentials_clear(&cred);
    mesh_kubeconfig_free(kc);
    return err;
}

void mesh_kube_cluster_close(struct mesh_kube_cluster *c)
{
    if (!c)
        return;
    mesh_kube_client_free(c->client);
    free(c->context);
    free(c->ns);
    free(c->server);
    memset(c, 0, sizeof(*c));
}

enum mesh_err mesh_kube_precheck(struct mesh_kube_cluster *c, const char *provider, char **version,
                                 char **errmsg)
{
    const char *const *crds = mesh_kube_provider_crds(provider);
    struct mesh_strbuf missing;
    size_t n_missing = 0, n = 0;
    *version = NULL;
    enum mesh_err err = mesh_kube_version(c->client, version, errmsg);

    mesh_strbuf_init(&missing, 0);
    if (err != MESH_OK)
        goto out;
    for (; crds && crds[n]; n++) {
        bool installed = false;
        if ((err = mesh_kube_crd_installed(c->client, crds[n], &installed, errmsg)) != MESH_OK)
            goto out;
        if (!installed)
            mesh_strbuf_printf(&missing, "%s%s", n_missing++ ? ", " : "", crds[n]);
    }
    if (n_missing == 0)
        goto out;
    err = MESH_E_NOTFOUND;
    bool istio = strcmp(provider, "istio") == 0;
    const char *what = n_missing == n ? (istio ? "Istio's CRDs are not installed in this cluster"
                                               : "Linkerd's CRDs are not installed in this cluster")
                                      : (istio ? "some of Istio's CRDs are missing in this cluster"
                                               : "some of Linkerd's CRDs are missing in this "
                                                 "cluster");
    *errmsg = xasprintf("%s (%s at %s, context %s; missing: %s): %s, then run this again", what,
                        *version, c->server, c->context, missing.data,
                        istio ? "install Istio (istioctl install) or its base chart "
                                "(helm install istio-base istio/base -n istio-system)"
                              : "install Linkerd's CRDs (linkerd install --crds | kubectl apply "
                                "-f -, or the linkerd-crds chart)");
out:
    if (err != MESH_OK) {
        free(*version);
        *version = NULL;
    }
    mesh_strbuf_free(&missing);
    return err;
}
