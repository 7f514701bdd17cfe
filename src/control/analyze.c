/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl analyze`'s checks: destinations without endpoints, hosts claimed twice, routes that
 * can never match, gateways nobody serves, policies naming nothing. Names are resolved exactly
 * as the proxy's snapshot resolves them (src/proxy/snapshot.c), so a finding is what a proxy
 * would do, not a guess. */
#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "analyze.h"
#include "compile.h"
#include "core/xalloc.h"
#include "mesh/circuit_breaker.h"
#include "mesh/fault_injection.h"
#include "mesh/security_policy.h"
#include "mesh/service.h"
#include "mesh/virtual_service.h"
#include "model/schema.h"
#include "model/service_host.h"
#include "proxy/route_match.h"
#include "proxy/security.h"

static const struct {
    const char *id, *name;
    enum mesh_severity severity;
} codes[MESH_FINDING_COUNT] = {
    [MESH_FINDING_SERVICE_NOT_FOUND] = {"MESH0101", "ServiceNotFound", MESH_SEVERITY_ERROR},
    [MESH_FINDING_HOST_CONFLICT] = {"MESH0102", "HostConflict", MESH_SEVERITY_ERROR},
    [MESH_FINDING_UNREACHABLE_ROUTE] = {"MESH0103", "UnreachableRoute", MESH_SEVERITY_WARNING},
    [MESH_FINDING_GATEWAY_NOT_FOUND] = {"MESH0104", "GatewayNotFound", MESH_SEVERITY_ERROR},
    [MESH_FINDING_POLICY_TARGET_NOT_FOUND] = {"MESH0105", "PolicyTargetNotFound",
                                              MESH_SEVERITY_WARNING},
    [MESH_FINDING_CA_NOT_FOUND] = {"MESH0106", "CertificateAuthorityNotFound",
                                   MESH_SEVERITY_WARNING},
    [MESH_FINDING_AUTHZ_WITHOUT_MTLS] = {"MESH0107", "AuthorizationWithoutMTLS",
                                         MESH_SEVERITY_ERROR},
};

const char *mesh_finding_code_id(enum mesh_finding_code code)
{
    return (int)code >= 0 && code < MESH_FINDING_COUNT ? codes[code].id : "MESH0000";
}

const char *mesh_finding_code_name(enum mesh_finding_code code)
{
    return (int)code >= 0 && code < MESH_FINDING_COUNT ? codes[code].name : "Unknown";
}

const char *mesh_severity_name(enum mesh_severity sev)
{
    return sev == MESH_SEVERITY_ERROR ? "Error" : "Warning";
}

void mesh_findings_clear(struct mesh_findings *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->len; i++) {
        free(f->items[i].path);
        free(f->items[i].message);
    }
    free(f->items);
    memset(f, 0, sizeof(*f));
}

size_t mesh_findings_count(const struct mesh_findings *f, enum mesh_severity sev)
{
    size_t n = 0;
    for (size_t i = 0; i < f->len; i++)
        n += f->items[i].severity == sev;
    return n;
}

/* --- what the checks share --- */

/* A Service as the proxies will see it: from a resource, from registrations, or both. */
struct known_service {
    const char *name, *ns;
    size_t static_endpoints;
    size_t sidecars;
};

struct analysis {
    const struct mesh_resource *const *res;
    size_t n;
    const struct mesh_registry *reg; /* NULL: not known */
    const char *const *ca_names;     /* NULL: not known */
    struct known_service *services;  /* sorted by namespace, then name */
    size_t n_services, cap_services;
    struct mesh_findings *out;
};

static void add_finding(struct analysis *a, enum mesh_finding_code code, size_t resource,
                        const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void add_finding(struct analysis *a, enum mesh_finding_code code, size_t resource,
                        const char *path, const char *fmt, ...)
{
    struct mesh_findings *out = a->out;
    xgrow((void **)&out->items, &out->cap, out->len + 1, sizeof(*out->items));
    struct mesh_finding *f = &out->items[out->len++];
    f->code = code;
    f->severity = codes[code].severity;
    f->resource = resource;
    f->path = xstrdup(path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    f->message = xmalloc(len > 0 ? (size_t)len + 1 : 1);
    f->message[0] = '\0';
    va_start(ap, fmt);
    if (len > 0)
        vsnprintf(f->message, (size_t)len + 1, fmt, ap);
    va_end(ap);
}

static int compare_services(const void *pa, const void *pb)
{
    const struct known_service *a = pa, *b = pb;
    int c = strcmp(a->ns, b->ns);
    return c ? c : strcmp(a->name, b->name);
}

static struct known_service *find_service(const struct analysis *a, const char *name,
                                          const char *ns)
{
    struct known_service key = {.name = name, .ns = ns};
    if (!a->n_services)
        return NULL;
    return bsearch(&key, a->services, a->n_services, sizeof(key), compare_services);
}

static void add_known(struct analysis *a, const char *name, const char *ns, size_t endpoints,
                      size_t sidecars)
{
    xgrow((void **)&a->services, &a->cap_services, a->n_services + 1, sizeof(*a->services));
    struct known_service *s = &a->services[a->n_services++];
    s->name = name;
    s->ns = ns;
    s->static_endpoints = endpoints;
    s->sidecars = sidecars;
}

/* Every Service resource and every registered sidecar's service, merged by (namespace, name). */
static void index_services(struct analysis *a)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->res[i]->kind != MESH_KIND_SERVICE)
            continue;
        const struct mesh_service *svc = (const struct mesh_service *)a->res[i];
        add_known(a, svc->res.name, mesh_resource_namespace(&svc->res), svc->n_endpoints, 0);
    }
    size_t np = 0;
    const struct mesh_proxy_entry *const *proxies = a->reg ? mesh_registry_list(a->reg, &np) : NULL;
    for (size_t i = 0; i < np; i++)
        if (proxies[i]->role == MESH_PROXY_SIDECAR && proxies[i]->service)
            add_known(a, proxies[i]->service,
                      proxies[i]->ns ? proxies[i]->ns : MESH_DEFAULT_NAMESPACE, 0, 1);
    if (a->n_services > 1)
        qsort(a->services, a->n_services, sizeof(*a->services), compare_services);
    size_t kept = 0;
    for (size_t i = 0; i < a->n_services; i++) {
        if (kept && compare_services(&a->services[kept - 1], &a->services[i]) == 0) {
            struct known_service *k = &a->services[kept - 1];
            k->static_endpoints += a->services[i].static_endpoints;
            k->sidecars += a->services[i].sidecars;
        } else {
            a->services[kept++] = a->services[i];
        }
    }
    a->n_services = kept;
}

/* Splits a Service host as the snapshot reads it: name, name.ns, name.ns.svc,
 * name.ns.svc.cluster.local. False for any other dotted form, which names no Service. */
static bool split_service_host(const char *host, const char *default_ns, char *name,
                               size_t name_len, char *ns, size_t ns_len)
{
    struct mesh_service_ref ref;
    if (!mesh_service_host_split(host, default_ns, &ref))
        return false;
    snprintf(name, name_len, "%.*s", (int)ref.name_len, ref.name);
    snprintf(ns, ns_len, "%.*s", (int)ref.ns_len, ref.ns);
    return true;
}

static const struct known_service *resolve(const struct analysis *a, const char *host,
                                           const char *default_ns)
{
    char name[256], ns[256];
    if (!split_service_host(host, default_ns, name, sizeof(name), ns, sizeof(ns)))
        return NULL;
    return find_service(a, name, ns);
}

/* What a CircuitBreaker or FaultInjection is, in a sentence. */
static const char *guard_noun(enum mesh_kind kind)
{
    return kind == MESH_KIND_CIRCUIT_BREAKER ? "circuit breaker" : "fault injection";
}

/* --- destinations --- */

static void check_destinations(struct analysis *a, size_t idx)
{
    const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)a->res[idx];
    const char *ns = mesh_resource_namespace(&vs->res);
    for (size_t r = 0; r < vs->n_http_routes; r++) {
        const struct mesh_http_route *route = &vs->http_routes[r];
        for (size_t d = 0; d < route->n_destinations; d++) {
            const char *host = route->destinations[d].host;
            char path[MESH_PATH_LEN], name[256], sns[256];
            snprintf(path, sizeof(path), "spec.http_routes[%zu].destinations[%zu].host", r, d);
            if (!split_service_host(host, ns, name, sizeof(name), sns, sizeof(sns))) {
                add_finding(a, MESH_FINDING_SERVICE_NOT_FOUND, idx, path,
                            "Service not found: %s names no Service (a destination host is "
                            "name, name.namespace or name.namespace.svc), so its share of the "
                            "traffic is answered 503; write the Service's name",
                            host);
                continue;
            }
            const struct known_service *s = find_service(a, name, sns);
            if (!s) {
                add_finding(a, MESH_FINDING_SERVICE_NOT_FOUND, idx, path,
                            "Service not found: %s has no registered endpoints: there is no "
                            "Service %s/%s%s, so its share of the traffic is answered 503; "
                            "apply a Service named %s in namespace %s with its endpoints%s",
                            host, sns, name, a->reg ? " and no sidecar registered for it" : "",
                            name, sns, a->reg ? ", or start a sidecar for it" : "");
            } else if (a->reg && s->static_endpoints == 0 && s->sidecars == 0) {
                add_finding(a, MESH_FINDING_SERVICE_NOT_FOUND, idx, path,
                            "Service not found: %s has no registered endpoints: Service %s/%s "
                            "lists no endpoints and no sidecar is registered for it, so its "
                            "share of the traffic is answered 503; start its sidecar "
                            "(meshproxy --service %s --namespace %s) or add spec.endpoints",
                            host, sns, name, name, sns);
            }
        }
    }
}

/* --- hosts claimed twice --- */

/* One (host, proxies) claim of a VirtualService: scope is "" for the sidecars, else the
 * gateway as NAMESPACE/NAME. */
struct claim {
    char *host; /* lower case */
    char *scope;
    const char *ns, *name; /* of the VirtualService */
    size_t vs;             /* resource index */
    size_t host_at;        /* index in spec.hosts */
};

static int compare_claims(const void *pa, const void *pb)
{
    const struct claim *a = pa, *b = pb;
    int c = strcmp(a->host, b->host);
    if (!c)
        c = strcmp(a->scope, b->scope);
    /* The proxies keep the first VirtualService in canonical order, as meshd compiles them. */
    if (!c)
        c = strcmp(a->ns, b->ns);
    if (!c)
        c = strcmp(a->name, b->name);
    if (!c)
        c = a->host_at < b->host_at ? -1 : a->host_at > b->host_at;
    return c;
}

static void add_claim(struct claim **v, size_t *n, size_t *cap, const char *host, const char *scope,
                      const struct mesh_resource *res, size_t vs, size_t host_at)
{
    xgrow((void **)v, cap, *n + 1, sizeof(**v));
    struct claim *c = &(*v)[(*n)++];
    c->ns = mesh_resource_namespace(res);
    c->name = res->name;
    c->host = xstrdup(host);
    for (char *p = c->host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    c->scope = xstrdup(scope);
    c->vs = vs;
    c->host_at = host_at;
}

static void check_host_conflicts(struct analysis *a)
{
    struct claim *claims = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->res[i]->kind != MESH_KIND_VIRTUAL_SERVICE)
            continue;
        const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)a->res[i];
        const char *ns = mesh_resource_namespace(&vs->res);
        for (size_t h = 0; h < vs->hosts.len; h++) {
            if (vs->gateways.len == 0)
                add_claim(&claims, &n, &cap, vs->hosts.items[h], "", a->res[i], i, h);
            for (size_t g = 0; g < vs->gateways.len; g++) {
                const char *ref = vs->gateways.items[g];
                char *scope = strcmp(ref, "mesh") == 0 ? xstrdup("")
                              : strchr(ref, '/')       ? xstrdup(ref)
                                                       : xasprintf("%s/%s", ns, ref);
                add_claim(&claims, &n, &cap, vs->hosts.items[h], scope, a->res[i], i, h);
                free(scope);
            }
        }
    }
    if (n > 1)
        qsort(claims, n, sizeof(*claims), compare_claims);
    /* Reported once per losing (VirtualService, host), even when it loses in several scopes. */
    size_t *reported = xcalloc(n ? n : 1, sizeof(*reported));
    size_t n_reported = 0;
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(claims[i].host, claims[first].host) != 0 ||
            strcmp(claims[i].scope, claims[first].scope) != 0) {
            first = i;
            continue;
        }
        if (claims[i].vs == claims[first].vs)
            continue;
        bool seen = false;
        for (size_t k = 0; k < n_reported && !seen; k++)
            seen = claims[reported[k]].vs == claims[i].vs &&
                   claims[reported[k]].host_at == claims[i].host_at;
        if (seen)
            continue;
        reported[n_reported++] = i;
        const struct mesh_resource *winner = a->res[claims[first].vs];
        const struct mesh_virtual_service *vs =
            (const struct mesh_virtual_service *)a->res[claims[i].vs];
        char path[MESH_PATH_LEN];
        snprintf(path, sizeof(path), "spec.hosts[%zu]", claims[i].host_at);
        char *where = claims[i].scope[0] ? xasprintf("on gateway %s", claims[i].scope)
                                         : xstrdup("for the sidecars");
        add_finding(a, MESH_FINDING_HOST_CONFLICT, claims[i].vs, path,
                    "host %s is also claimed %s by VirtualService %s/%s, which the proxies use "
                    "instead (the first by namespace and name wins), so these routes are never "
                    "used; merge the routes into one VirtualService or remove the host from one "
                    "of them",
                    vs->hosts.items[claims[i].host_at], where, mesh_resource_namespace(winner),
                    winner->name);
        free(where);
    }
    for (size_t i = 0; i < n; i++) {
        free(claims[i].host);
        free(claims[i].scope);
    }
    free(claims);
    free(reported);
}

/* --- routes an earlier route shadows --- */

/* A glob "L*" (or "L**"): every path starting with L, like a prefix. */
static bool glob_is_prefix(const char *glob, size_t *literal_len)
{
    const char *star = strchr(glob, '*');
    if (!star)
        return false;
    for (const char *p = star; *p; p++)
        if (*p != '*')
            return false;
    *literal_len = (size_t)(star - glob);
    return true;
}

/* Whether path condition p matches every path: no condition, a prefix "", a glob of stars. */
static bool path_is_any(const struct mesh_path_match *p)
{
    size_t lit;
    if (p->kind == MESH_PATH_ANY)
        return true;
    if (!p->value)
        return false;
    return (p->kind == MESH_PATH_PREFIX && p->value[0] == '\0') ||
           (p->kind == MESH_PATH_GLOB && glob_is_prefix(p->value, &lit) && lit == 0);
}

/* Whether the path condition of a matches the single path `path`, by the proxy's own
 * matcher. */
static bool path_matches_exact(const struct mesh_path_match *a, const char *path)
{
    struct mesh_route_match only = {.path = *a};
    struct mesh_route_matcher m;
    if (mesh_route_matcher_compile(&only, &m, NULL, 0) != MESH_OK)
        return false;
    bool ok = mesh_route_matcher_match(&m, mesh_slice_cstr("GET"), mesh_slice_cstr(path), NULL, 0);
    mesh_route_matcher_free(&m);
    return ok;
}

/* Whether every path b matches, a matches too. Exact where it decides "yes"; "no" when unsure
 * (a regex against a pattern, two different globs). */
static bool path_covers(const struct mesh_path_match *a, const struct mesh_path_match *b)
{
    if (path_is_any(a))
        return true;
    if (b->kind == MESH_PATH_ANY)
        return false;
    if (a->kind == b->kind && strcmp(a->value, b->value) == 0)
        return true;
    if (b->kind == MESH_PATH_EXACT)
        return path_matches_exact(a, b->value);
    /* b matches paths that all start with its literal head; a covers them when it is a
     * prefix of that head. */
    size_t head;
    if (b->kind == MESH_PATH_PREFIX)
        head = strlen(b->value);
    else if (b->kind == MESH_PATH_GLOB)
        head = strcspn(b->value, "*");
    else
        return false; /* a regex: only the same regex (or a catch-all) is sure to cover it */
    size_t lit;
    if (a->kind == MESH_PATH_PREFIX)
        lit = strlen(a->value);
    else if (a->kind == MESH_PATH_GLOB && glob_is_prefix(a->value, &lit))
        ;
    else
        return false;
    return lit <= head && strncmp(a->value, b->value, lit) == 0;
}

static bool regex_matches(const char *re, const char *text)
{
    char *anchored = xasprintf("^(%s)$", re);
    regex_t r;
    bool ok = false;
    if (regcomp(&r, anchored, REG_EXTENDED | REG_NOSUB) == 0) {
        ok = regexec(&r, text, 0, NULL, 0) == 0;
        regfree(&r);
    }
    free(anchored);
    return ok;
}

/* Whether every header value b accepts, a accepts too (both on the same header name). */
static bool header_implies(const struct mesh_header_match *b, const struct mesh_header_match *a)
{
    if (a->kind == MESH_HEADER_PRESENT)
        return true; /* every condition needs the header to be there */
    if (b->kind == MESH_HEADER_PRESENT)
        return false;
    if (a->kind == b->kind && strcmp(a->value, b->value) == 0)
        return true;
    switch (a->kind) {
    case MESH_HEADER_PREFIX:
        return (b->kind == MESH_HEADER_EXACT || b->kind == MESH_HEADER_PREFIX) &&
               strncmp(b->value, a->value, strlen(a->value)) == 0;
    case MESH_HEADER_REGEX:
        return b->kind == MESH_HEADER_EXACT && regex_matches(a->value, b->value);
    default:
        return false;
    }
}

/* Whether every request match b accepts, match a accepts too. */
static bool match_covers(const struct mesh_route_match *a, const struct mesh_route_match *b)
{
    if (a->method && (!b->method || strcmp(a->method, b->method) != 0))
        return false;
    if (!path_covers(&a->path, &b->path))
        return false;
    for (size_t i = 0; i < a->n_headers; i++) {
        bool implied = false;
        for (size_t j = 0; j < b->n_headers && !implied; j++)
            implied = strcasecmp(a->headers[i].name, b->headers[j].name) == 0 &&
                      header_implies(&b->headers[j], &a->headers[i]);
        if (!implied)
            return false;
    }
    return true;
}

static bool match_is_catch_all(const struct mesh_route_match *m)
{
    return !m->method && m->n_headers == 0 && path_is_any(&m->path);
}

/* Whether every request route b matches is matched by route a (which comes first). */
static bool route_covers(const struct mesh_http_route *a, const struct mesh_http_route *b)
{
    for (size_t i = 0; i < a->n_matches; i++)
        if (match_is_catch_all(&a->matches[i]))
            return true;
    if (a->n_matches == 0)
        return true;
    if (b->n_matches == 0)
        return false;
    for (size_t j = 0; j < b->n_matches; j++) {
        bool covered = false;
        for (size_t i = 0; i < a->n_matches && !covered; i++)
            covered = match_covers(&a->matches[i], &b->matches[j]);
        if (!covered)
            return false;
    }
    return true;
}

static char *route_label(const struct mesh_http_route *r, size_t index)
{
    return r->name ? xasprintf("route %zu (\"%s\")", index, r->name)
                   : xasprintf("route %zu", index);
}

static void check_shadowed_routes(struct analysis *a, size_t idx)
{
    const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)a->res[idx];
    for (size_t j = 1; j < vs->n_http_routes; j++) {
        for (size_t i = 0; i < j; i++) {
            if (!route_covers(&vs->http_routes[i], &vs->http_routes[j]))
                continue;
            char path[MESH_PATH_LEN];
            snprintf(path, sizeof(path), "spec.http_routes[%zu]", j);
            char *later = route_label(&vs->http_routes[j], j);
            char *earlier = route_label(&vs->http_routes[i], i);
            const struct mesh_http_route *ri = &vs->http_routes[i];
            bool all = ri->n_matches == 0;
            for (size_t m = 0; m < ri->n_matches && !all; m++)
                all = match_is_catch_all(&ri->matches[m]);
            add_finding(a, MESH_FINDING_UNREACHABLE_ROUTE, idx, path,
                        "%s is never used: the earlier %s %s, and the first matching route "
                        "wins; put %s before %s if it should win, or remove it",
                        later, earlier,
                        all ? "matches every request" : "matches every request this one matches",
                        later, earlier);
            free(later);
            free(earlier);
            break;
        }
    }
}

/* --- gateways --- */

static void check_gateways(struct analysis *a, size_t idx)
{
    const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)a->res[idx];
    const char *ns = mesh_resource_namespace(&vs->res);
    size_t np = 0;
    const struct mesh_proxy_entry *const *proxies = mesh_registry_list(a->reg, &np);
    for (size_t g = 0; g < vs->gateways.len; g++) {
        const char *ref = vs->gateways.items[g];
        if (strcmp(ref, "mesh") == 0)
            continue;
        bool served = false;
        for (size_t p = 0; p < np && !served; p++)
            served = proxies[p]->role == MESH_PROXY_GATEWAY && proxies[p]->gateway &&
                     mesh_compile_gateway_ref_matches(ref, ns, proxies[p]->gateway,
                                                      proxies[p]->ns ? proxies[p]->ns
                                                                     : MESH_DEFAULT_NAMESPACE);
        if (served)
            continue;
        char path[MESH_PATH_LEN];
        snprintf(path, sizeof(path), "spec.gateways[%zu]", g);
        char *full = strchr(ref, '/') ? xstrdup(ref) : xasprintf("%s/%s", ns, ref);
        const char *slash = strchr(full, '/');
        add_finding(a, MESH_FINDING_GATEWAY_NOT_FOUND, idx, path,
                    "gateway %s is not served by any registered gateway proxy, so requests for "
                    "%s through it go nowhere; start one (meshproxy --gateway %s --namespace "
                    "%.*s) or fix the gateway name",
                    full, vs->hosts.len ? vs->hosts.items[0] : "its hosts", slash + 1,
                    (int)(slash - full), full);
        free(full);
    }
}

/* --- policies --- */

static const struct mesh_virtual_service *find_vs(const struct analysis *a, const char *name,
                                                  const char *ns)
{
    for (size_t i = 0; i < a->n; i++)
        if (a->res[i]->kind == MESH_KIND_VIRTUAL_SERVICE && strcmp(a->res[i]->name, name) == 0 &&
            strcmp(mesh_resource_namespace(a->res[i]), ns) == 0)
            return (const struct mesh_virtual_service *)a->res[i];
    return NULL;
}

/* spec.service of a CircuitBreaker or FaultInjection: a Service, else a VirtualService of the
 * policy's namespace by name (as the snapshot applies them). */
static void check_guard_target(struct analysis *a, size_t idx, const char *target,
                               const char *route)
{
    const char *ns = mesh_resource_namespace(a->res[idx]);
    const char *kind = guard_noun(a->res[idx]->kind);
    if (resolve(a, target, ns))
        return;
    const struct mesh_virtual_service *vs = find_vs(a, target, ns);
    if (!vs) {
        add_finding(a, MESH_FINDING_POLICY_TARGET_NOT_FOUND, idx, "spec.service",
                    "%s names %s, but there is no Service %s and no VirtualService %s in "
                    "namespace %s%s, so the %s applies to nothing; set spec.service to a "
                    "Service (name, name.namespace or name.namespace.svc) or a VirtualService "
                    "of namespace %s",
                    mesh_kind_name(a->res[idx]->kind), target, target, target, ns,
                    a->reg ? " (nor a registered sidecar)" : "", kind, ns);
        return;
    }
    if (!route)
        return;
    for (size_t r = 0; r < vs->n_http_routes; r++)
        if (vs->http_routes[r].name && strcmp(vs->http_routes[r].name, route) == 0)
            return;
    add_finding(a, MESH_FINDING_POLICY_TARGET_NOT_FOUND, idx, "spec.route",
                "VirtualService %s/%s has no route named %s, so the %s applies to nothing; "
                "name one of its routes %s or fix spec.route",
                ns, vs->res.name, route, kind, route);
}

/* True when a Service of namespace ns carries the label app=name: as in Kubernetes, "payment"
 * names the application whose versions are the Services payment-v1 and payment-v2. */
static bool names_an_app(const struct analysis *a, const char *name, const char *ns)
{
    for (size_t i = 0; i < a->n; i++) {
        const struct mesh_resource *r = a->res[i];
        if (r->kind != MESH_KIND_SERVICE || strcmp(mesh_resource_namespace(r), ns) != 0)
            continue;
        for (size_t l = 0; l < r->labels.len; l++)
            if (strcmp(r->labels.items[l].key, "app") == 0 &&
                strcmp(r->labels.items[l].value, name) == 0)
                return true;
    }
    return false;
}

static void check_policy_service(struct analysis *a, size_t idx, const char *host, const char *path,
                                 const char *what)
{
    const char *ns = mesh_resource_namespace(a->res[idx]);
    if (resolve(a, host, ns))
        return;
    char name[256], sns[256];
    if (!split_service_host(host, ns, name, sizeof(name), sns, sizeof(sns))) {
        snprintf(name, sizeof(name), "%s", host); /* a dotted form that names no Service */
        snprintf(sns, sizeof(sns), "%s", ns);
    } else if (names_an_app(a, name, sns)) {
        return;
    }
    add_finding(a, MESH_FINDING_POLICY_TARGET_NOT_FOUND, idx, path,
                "%s names service %s, but there is no Service %s/%s%s and no Service labelled "
                "app: %s, so %s covers nothing there; write the name of an existing Service "
                "(name, name.namespace or name.namespace.svc) or of an app",
                mesh_kind_name(a->res[idx]->kind), host, sns, name,
                a->reg ? " and no sidecar registered for it" : "", name, what);
}

/* A certificate_authority meshd does not have: the services it covers still get certificates,
 * from meshd's own root, which the policy's author did not ask for. */
static void check_certificate_authority(struct analysis *a, size_t idx)
{
    const struct mesh_security_policy *sp = (const struct mesh_security_policy *)a->res[idx];
    const char *ca = sp->mtls.certificate_authority;
    if (!ca || !a->ca_names)
        return;
    for (size_t i = 0; a->ca_names[i]; i++)
        if (strcmp(a->ca_names[i], ca) == 0)
            return;
    add_finding(a, MESH_FINDING_CA_NOT_FOUND, idx, "spec.mtls.certificate_authority",
                "SecurityPolicy names certificate_authority %s, but meshd has no CA by that "
                "name, so meshd's own root (mesh-root) signs the certificates of the services it "
                "covers; start meshd with --ca %s=CERT,KEY, or remove certificate_authority",
                ca, ca);
}

/* True when the rule admits some caller without an identity ("*" or an empty from). */
static bool admits_plaintext(const struct mesh_authorization_rule *r)
{
    if (r->from.len == 0)
        return true;
    for (size_t i = 0; i < r->from.len; i++)
        if (strcmp(r->from.items[i], "*") == 0)
            return true;
    return false;
}

/* A rule of the policy at idx that admits only identities, for a service (to, or a Service of
 * that app) that its callers reach in plaintext. One finding per rule and service. */
static void check_rule_needs_mtls(struct analysis *a, size_t idx, size_t r, const char *to)
{
    const char *pns = mesh_resource_namespace(a->res[idx]);
    char name[256], ns[256];
    if (!split_service_host(to, pns, name, sizeof(name), ns, sizeof(ns)))
        return;
    struct mesh_resource *const *all = (struct mesh_resource *const *)a->res;
    for (size_t i = 0; i < a->n; i++) {
        const struct mesh_resource *svc = a->res[i];
        if (svc->kind != MESH_KIND_SERVICE || strcmp(mesh_resource_namespace(svc), ns) != 0)
            continue;
        const char *app = NULL;
        for (size_t l = 0; l < svc->labels.len; l++)
            if (strcmp(svc->labels.items[l].key, "app") == 0)
                app = svc->labels.items[l].value;
        if (strcmp(svc->name, name) != 0 && !(app && strcmp(app, name) == 0))
            continue;
        if (mesh_security_outbound_mtls(all, a->n, svc->name, ns))
            continue;
        enum mesh_mtls_mode mode = mesh_security_mode(all, a->n, svc->name, ns);
        char path[MESH_PATH_LEN];
        snprintf(path, sizeof(path), "spec.authorization[%zu].from", r);
        add_finding(
            a, MESH_FINDING_AUTHZ_WITHOUT_MTLS, idx, path,
            "this rule admits only callers with an identity, but %s/%s's mtls mode is %s%s, "
            "so its callers come in plaintext, with no identity: the rule never matches "
            "and %s denies every request (RBAC: access denied); set mtls.mode: strict "
            "for %s, or admit from: [\"*\"]",
            ns, svc->name, mesh_mtls_mode_name(mode),
            mode == MESH_MTLS_PERMISSIVE ? " and the MeshConfig turns mtls.auto_upgrade "
                                           "(or mtls.enabled) off"
                                         : "",
            svc->name, svc->name);
    }
}

static void check_policy(struct analysis *a, size_t idx)
{
    const struct mesh_resource *res = a->res[idx];
    if (res->kind == MESH_KIND_CIRCUIT_BREAKER) {
        const struct mesh_circuit_breaker *cb = (const struct mesh_circuit_breaker *)res;
        if (cb->service)
            check_guard_target(a, idx, cb->service, NULL);
    } else if (res->kind == MESH_KIND_FAULT_INJECTION) {
        const struct mesh_fault_injection *fi = (const struct mesh_fault_injection *)res;
        if (fi->service)
            check_guard_target(a, idx, fi->service, fi->route);
    } else if (res->kind == MESH_KIND_SECURITY_POLICY) {
        const struct mesh_security_policy *sp = (const struct mesh_security_policy *)res;
        char path[MESH_PATH_LEN];
        for (size_t s = 0; s < sp->services.len; s++) {
            snprintf(path, sizeof(path), "spec.services[%zu]", s);
            check_policy_service(a, idx, sp->services.items[s], path, "its mtls setting");
        }
        for (size_t r = 0; r < sp->n_authorization; r++) {
            const struct mesh_string_list *to = &sp->authorization[r].to;
            for (size_t t = 0; t < to->len; t++) {
                snprintf(path, sizeof(path), "spec.authorization[%zu].to[%zu]", r, t);
                check_policy_service(a, idx, to->items[t], path, "this authorization rule");
                if (!admits_plaintext(&sp->authorization[r]))
                    check_rule_needs_mtls(a, idx, r, to->items[t]);
            }
        }
        check_certificate_authority(a, idx);
    }
}

static int compare_findings(const void *pa, const void *pb)
{
    const struct mesh_finding *a = pa, *b = pb;
    if (a->resource != b->resource)
        return a->resource < b->resource ? -1 : 1;
    return 0;
}

enum mesh_err mesh_analyze(const struct mesh_resource *const *res, size_t n,
                           const struct mesh_analyze_live *live, struct mesh_findings *out)
{
    const struct mesh_registry *reg = live ? live->reg : NULL;
    struct analysis a = {
        .res = res, .n = n, .reg = reg, .ca_names = live ? live->ca_names : NULL, .out = out};
    size_t first = out->len;
    index_services(&a);
    for (size_t i = 0; i < n; i++) {
        if (res[i]->kind == MESH_KIND_VIRTUAL_SERVICE) {
            check_destinations(&a, i);
            check_shadowed_routes(&a, i);
            if (reg)
                check_gateways(&a, i);
        } else {
            check_policy(&a, i);
        }
    }
    check_host_conflicts(&a);
    /* By resource, keeping the order found within one: an insertion sort is stable, and cheap
     * here since only the host conflicts, found last, are out of place. */
    struct mesh_finding *f = out->items + first;
    size_t len = out->len - first;
    for (size_t i = 1; i < len; i++) {
        struct mesh_finding t = f[i];
        size_t j = i;
        while (j > 0 && compare_findings(&f[j - 1], &t) > 0) {
            f[j] = f[j - 1];
            j--;
        }
        f[j] = t;
    }
    free(a.services);
    return MESH_OK;
}

/* --- positions --- */

bool mesh_analyze_locate(const struct mesh_node *root, const char *path, unsigned *line,
                         unsigned *col)
{
    const struct mesh_node *at = root;
    const char *p = path ? path : "";
    while (at && *p) {
        const struct mesh_node *next = NULL;
        if (*p == '[') {
            char *end;
            unsigned long i = strtoul(p + 1, &end, 10);
            if (*end != ']')
                break;
            if (at->type == MESH_NODE_SEQ && i < at->len)
                next = at->items[i];
            p = end + 1;
        } else {
            if (*p == '.')
                p++;
            size_t len = strcspn(p, ".[");
            for (size_t k = 0; at->type == MESH_NODE_MAP && k < at->len && !next; k++)
                if (strlen(at->pairs[k].key->text) == len &&
                    strncmp(at->pairs[k].key->text, p, len) == 0)
                    next = at->pairs[k].value;
            p += len;
        }
        if (!next)
            break;
        at = next;
    }
    if (!at || !at->line)
        return false;
    *line = at->line;
    *col = at->col;
    return true;
}
