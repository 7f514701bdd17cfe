/* SPDX-License-Identifier: Apache-2.0 */
/* Which SecurityPolicy decides a service's mTLS mode, and what that means for its callers
 * (mtls_mode.h). */
#include "mtls_mode.h"

#include <string.h>

#include "mesh/mesh_config.h"
#include "model.h"
#include "service_host.h"

/* Whether the n bytes at p spell exactly the NUL-terminated s. */
static bool span_is(const char *p, size_t n, const char *s)
{
    return strncmp(p, s, n) == 0 && s[n] == '\0';
}

/* Whether the Service `service` of `ns` carries app: app (app_len bytes). */
static bool service_has_app(struct mesh_resource *const *res, size_t n, const char *service,
                            const char *ns, const char *app, size_t app_len)
{
    for (size_t i = 0; i < n; i++) {
        const struct mesh_resource *r = res[i];
        if (!r || r->kind != MESH_KIND_SERVICE || !r->name || strcmp(r->name, service) != 0 ||
            strcmp(mesh_resource_namespace(r), ns) != 0)
            continue;
        if (mesh_labels_has(&r->labels, "app", app, app_len))
            return true;
    }
    return false;
}

/* Whether a services/to item of a policy in policy_ns names service in ns: the Service of that
 * name, or one labelled app: that name. */
bool mesh_security_host_names(struct mesh_resource *const *res, size_t n, const char *host,
                              const char *policy_ns, const char *service, const char *ns)
{
    struct mesh_service_ref h;
    if (!mesh_service_host_split(host, policy_ns, &h) || !span_is(h.ns, h.ns_len, ns))
        return false;
    return span_is(h.name, h.name_len, service) ||
           service_has_app(res, n, service, ns, h.name, h.name_len);
}

static bool list_names(struct mesh_resource *const *res, size_t n,
                       const struct mesh_string_list *hosts, const char *policy_ns,
                       const char *service, const char *ns)
{
    for (size_t i = 0; i < hosts->len; i++)
        if (mesh_security_host_names(res, n, hosts->items[i], policy_ns, service, ns))
            return true;
    return false;
}

int mesh_mtls_strictness(enum mesh_mtls_mode mode)
{
    switch (mode) {
    case MESH_MTLS_STRICT:
        return 3;
    case MESH_MTLS_PERMISSIVE:
        return 2;
    case MESH_MTLS_DISABLE:
        return 1;
    default:
        return 0;
    }
}

/* Orders policies by namespace, then name: which of several equal policies is named as the
 * source must not depend on the order of the snapshot. */
static int compare_policies(const struct mesh_security_policy *a,
                            const struct mesh_security_policy *b)
{
    int c = strcmp(mesh_resource_namespace(&a->res), mesh_resource_namespace(&b->res));
    if (c != 0)
        return c;
    return strcmp(a->res.name ? a->res.name : "", b->res.name ? b->res.name : "");
}

const struct mesh_security_policy *mesh_security_deciding_policy(struct mesh_resource *const *res,
                                                                 size_t n, const char *service,
                                                                 const char *ns)
{
    if (!service)
        service = "";
    if (!ns)
        ns = MESH_DEFAULT_NAMESPACE;
    const struct mesh_security_policy *best = NULL;
    int best_tier = 0; /* 2: names the service; 1: namespace-wide */
    for (size_t i = 0; i < n; i++) {
        if (!res[i] || res[i]->kind != MESH_KIND_SECURITY_POLICY)
            continue;
        const struct mesh_security_policy *sp = (const struct mesh_security_policy *)res[i];
        if (mesh_mtls_strictness(sp->mtls.mode) == 0)
            continue;
        const char *sp_ns = mesh_resource_namespace(&sp->res);
        int tier = 0;
        if (sp->services.len == 0)
            tier = strcmp(sp_ns, ns) == 0 ? 1 : 0;
        else if (list_names(res, n, &sp->services, sp_ns, service, ns))
            tier = 2;
        if (tier == 0 || tier < best_tier)
            continue;
        if (best && tier == best_tier) {
            int d = mesh_mtls_strictness(sp->mtls.mode) - mesh_mtls_strictness(best->mtls.mode);
            if (d < 0 || (d == 0 && compare_policies(sp, best) >= 0))
                continue;
        }
        best = sp;
        best_tier = tier;
    }
    return best;
}

enum mesh_mtls_mode mesh_security_mode(struct mesh_resource *const *res, size_t n,
                                       const char *service, const char *ns)
{
    const struct mesh_security_policy *by = mesh_security_deciding_policy(res, n, service, ns);
    if (by)
        return by->mtls.mode;
    const struct mesh_mesh_config *mc = mesh_model_native_mesh_config(res, n);
    return mc && mc->mtls.enabled == MESH_TRI_FALSE ? MESH_MTLS_DISABLE : MESH_MTLS_PERMISSIVE;
}

bool mesh_security_outbound_mtls(struct mesh_resource *const *res, size_t n, const char *service,
                                 const char *ns)
{
    enum mesh_mtls_mode mode = mesh_security_mode(res, n, service, ns);
    if (mode == MESH_MTLS_STRICT)
        return true;
    if (mode != MESH_MTLS_PERMISSIVE)
        return false;
    const struct mesh_mesh_config *mc = mesh_model_native_mesh_config(res, n);
    return !mc || (mc->mtls.auto_upgrade != MESH_TRI_FALSE && mc->mtls.enabled != MESH_TRI_FALSE);
}
