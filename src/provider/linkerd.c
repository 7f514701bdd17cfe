/* SPDX-License-Identifier: Apache-2.0 */
/* The Linkerd 2.x translator: our resources as Linkerd's own Kubernetes resources, and a refusal
 * (or, with allow_partial, a warning) naming the field for everything Linkerd cannot express.
 *
 * What we emit, and since which Linkerd release (2.<minor>) it exists:
 *  - HTTPRoute policy.linkerd.io/v1beta3 (2.14: the first with rules[].timeouts; Service parents
 *    and weighted backendRefs came in 2.13). Not gateway.networking.k8s.io/v1: Linkerd's policy
 *    controller ignores rules[].timeouts on Gateway API routes, and the Gateway API CRDs are an
 *    optional install, while policy.linkerd.io comes with every Linkerd.
 *  - Server policy.linkerd.io/v1beta3 with accessPolicy (2.17), v1beta1 before (2.11..2.16).
 *  - AuthorizationPolicy, MeshTLSAuthentication, NetworkAuthentication v1alpha1 (2.12).
 *  - Route annotations retry.linkerd.io/{http,limit,timeout} (2.16); Service annotations
 *    balancer.linkerd.io/failure-accrual* (2.13); Namespace annotations
 *    config.linkerd.io/default-inbound-policy (2.11) and config.linkerd.io/proxy-*-request.
 * The version is opt->version, else the `version` of a MeshConfig whose provider is linkerd in
 * the input, else the newest we know (2.20). A resource needing a release newer than that
 * version is refused with a sentence naming both versions, like any other refusal.
 *
 * Choices the model leaves open:
 *  - Ports. Our Services list endpoints (host:port, the port the workload listens on) and no
 *    Kubernetes Service port. A backendRef takes the port the Service's endpoints share when the
 *    input declares the Service, else 80; a Server (a pod port) takes that shared port, else the
 *    port named "http". parentRefs name no port: the route covers every port of the Service.
 *  - Each destination is its own Kubernetes Service (payment-v1, payment-v2); a host is the
 *    parent Service clients address (payment), which must exist in the cluster.
 *  - Services and Namespaces are not ours: circuit breakers and namespace-wide settings become
 *    partial objects holding only metadata.annotations (server-side apply claims just those
 *    keys under our field manager). They carry the source annotation but NOT the managed-by
 *    label, so that nothing selecting our objects by label (prune) ever deletes them.
 *  - An object made from several resources (a Server two policies protect, a Service two
 *    breakers guard) carries every source in its source annotation, sorted, comma-separated.
 *  - Fault abort: Linkerd's documented fault injection is a weighted backend that fails. The
 *    abort's share goes to the backendRef SERVICE-fault-STATUS (port 80), which must exist and
 *    answer STATUS; we do not deploy it.
 *  - Gateways: Linkerd has no ingress of its own, so a VirtualService bound to a gateway and the
 *    MeshConfig's ingress are refused.
 *  - MeshConfig dashboard and ha are options of Linkerd's install (linkerd-viz, the HA values),
 *    not resources: nothing to emit, nothing refused.
 *  - Routing order: our routes match first to last; Gateway API routes rank by specificity (path
 *    match length, then method, then header count), then by order. Prefix and glob paths become
 *    anchored regular expressions, which Linkerd ranks by the whole path's length like exact
 *    paths, so that route order decides between them as ours does. */
#include "translate.h"
#include "linkerd_names.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "mesh/circuit_breaker.h"
#include "mesh/fault_injection.h"
#include "mesh/mesh_config.h"
#include "mesh/security_policy.h"
#include "mesh/service.h"
#include "mesh/virtual_service.h"
#include "model/service_host.h"

#define LK_ROUTE_API  "policy.linkerd.io/v1beta3"
#define LK_AUTHN_API  "policy.linkerd.io/v1alpha1"
#define LK_NEWEST     INT_MAX
#define LK_FAULT_PORT 80
/* HTTPRoute limits of the CRD schema. */
#define LK_MAX_RULES    16
#define LK_MAX_BACKENDS 16
#define LK_MAX_WEIGHT   1000000u
/* Percentages are kept in hundredths of a percent, so that weights stay integers. */
#define LK_PCT_SCALE 10000u

/* The Linkerd 2.<minor> release that introduced each thing we emit. */
enum {
    LK_SINCE_DEFAULT_POLICY = 11,
    LK_SINCE_AUTHZ = 12,
    LK_SINCE_ACCRUAL = 13,
    LK_SINCE_ROUTE = 14,
    LK_SINCE_RETRY = 16,
    LK_SINCE_SERVER_V1BETA3 = 17,
};

static const struct mesh_capability linkerd_caps[] = {
    {MESH_FEAT_HOSTS, MESH_SUPPORT_PARTIAL,
     "only a host that names a Kubernetes Service of the VirtualService's own namespace (name, "
     "name.namespace, name.namespace.svc) becomes an HTTPRoute parentRef: Linkerd routes by the "
     "Service a request is addressed to, not by an external DNS name, and a route attached to a "
     "Service of another namespace would apply only to callers in the route's namespace"},
    {MESH_FEAT_GATEWAYS, MESH_SUPPORT_NONE,
     "Linkerd has no ingress gateway of its own: routes bound to a gateway, and MeshConfig "
     "ingress, need a separate Gateway API controller, which this translation does not "
     "configure"},
    {MESH_FEAT_MATCH_PATH, MESH_SUPPORT_FULL,
     "HTTPRoute matches[].path: an exact path as Exact; a prefix or a glob as an anchored "
     "RegularExpression (Linkerd's PathPrefix matches whole segments, ours bytes); a regex as "
     "an anchored RegularExpression"},
    {MESH_FEAT_MATCH_HEADER_EXACT, MESH_SUPPORT_FULL,
     "HTTPRoute matches[].headers[]: Exact, or an anchored RegularExpression; present as "
     "RegularExpression \".*\""},
    {MESH_FEAT_MATCH_HEADER_PREFIX, MESH_SUPPORT_FULL,
     "HTTPRoute header matches have no prefix type: a prefix becomes the RegularExpression "
     "^PREFIX.* (its regex metacharacters escaped), which matches exactly the values that start "
     "with it"},
    {MESH_FEAT_MATCH_METHOD, MESH_SUPPORT_FULL, "HTTPRoute matches[].method"},
    {MESH_FEAT_WEIGHTED_SPLIT, MESH_SUPPORT_FULL,
     "HTTPRoute rules[].backendRefs[].{name, port, weight}: each destination is its own "
     "Service, on the port its endpoints share (80 when the input does not declare the "
     "Service)"},
    {MESH_FEAT_TIMEOUT, MESH_SUPPORT_FULL,
     "HTTPRoute rules[].timeouts.request (policy.linkerd.io/v1beta3, Linkerd 2.14 and later)"},
    {MESH_FEAT_RETRIES, MESH_SUPPORT_PARTIAL,
     "retries are HTTPRoute annotations retry.linkerd.io/http, /limit and /timeout (Linkerd "
     "2.16 and later), which cover every rule of the route, so the routes of one VirtualService "
     "must share one retry policy; they retry on HTTP statuses only (5xx, gateway-error; "
     "gateway-error when retry_on is empty), not on reset or connect-failure, and the last "
     "attempt has no per-try timeout"},
    {MESH_FEAT_FAULT_DELAY, MESH_SUPPORT_NONE,
     "Linkerd has no fault injection, and its documented substitute, a weighted backend that "
     "fails, can answer an error but not delay a request"},
    {MESH_FEAT_FAULT_ABORT, MESH_SUPPORT_PARTIAL,
     "Linkerd has no fault injection: the abort becomes its documented substitute, a weighted "
     "backendRef to the Service SERVICE-fault-STATUS taking the abort's share of requests, and "
     "that Service must exist and answer STATUS"},
    {MESH_FEAT_MAX_CONNECTIONS, MESH_SUPPORT_NONE,
     "Linkerd has no per-service connection limit (HTTPLocalRateLimitPolicy limits the request "
     "rate, not concurrency)"},
    {MESH_FEAT_MAX_PENDING, MESH_SUPPORT_NONE,
     "Linkerd has no per-service limit on queued requests (HTTPLocalRateLimitPolicy limits the "
     "request rate, not concurrency)"},
    {MESH_FEAT_MAX_REQUESTS, MESH_SUPPORT_NONE,
     "Linkerd has no per-service limit on concurrent requests (HTTPLocalRateLimitPolicy limits "
     "the request rate, not concurrency)"},
    {MESH_FEAT_MAX_RETRIES, MESH_SUPPORT_NONE,
     "Linkerd has no cap on concurrent retries: retry.linkerd.io/limit bounds the retries of "
     "one request, and ServiceProfile retry budgets cannot be combined with HTTPRoute retries"},
    {MESH_FEAT_OUTLIER_CONSECUTIVE, MESH_SUPPORT_PARTIAL,
     "consecutive_errors and base_ejection_time become Service annotations "
     "balancer.linkerd.io/failure-accrual: consecutive, "
     "failure-accrual-consecutive-max-failures and -min-penalty (Linkerd 2.13 and later); "
     "later penalties back off exponentially with jitter up to -max-penalty (60s, or "
     "base_ejection_time when longer) instead of growing by the base, and max_ejection_percent "
     "has no counterpart"},
    {MESH_FEAT_OUTLIER_INTERVAL, MESH_SUPPORT_NONE,
     "failure accrual has no sweep interval: an endpoint is tried again when its penalty ends"},
    {MESH_FEAT_MTLS_STRICT, MESH_SUPPORT_FULL,
     "meshed traffic is always mTLS; a namespace-wide policy becomes the Namespace annotation "
     "config.linkerd.io/default-inbound-policy: all-authenticated (pods take it when injected), "
     "a per-service one a Server with an AuthorizationPolicy requiring a MeshTLSAuthentication "
     "of identities [\"*\"]; the certificate authority is Linkerd's identity issuer, chosen at "
     "install"},
    {MESH_FEAT_MTLS_PERMISSIVE, MESH_SUPPORT_FULL,
     "a namespace-wide policy becomes the Namespace annotation "
     "config.linkerd.io/default-inbound-policy: all-unauthenticated, a per-service one a Server "
     "with an AuthorizationPolicy requiring a NetworkAuthentication of 0.0.0.0/0 and ::/0"},
    {MESH_FEAT_MTLS_DISABLE, MESH_SUPPORT_NONE,
     "Linkerd always uses mTLS between meshed pods and cannot turn it off"},
    {MESH_FEAT_AUTHZ, MESH_SUPPORT_PARTIAL,
     "rules become a Server per Service, an inbound HTTPRoute for methods and paths, and an "
     "AuthorizationPolicy requiring a MeshTLSAuthentication of identities "
     "NAME.NAMESPACE.serviceaccount.identity.linkerd.DOMAIN (a service's ServiceAccount has "
     "its name); Linkerd authorizes a request by the one inbound route it matches best, so "
     "rules for one service whose methods and paths overlap cannot admit different callers"},
    {MESH_FEAT_TRACING_SAMPLING, MESH_SUPPORT_NONE,
     "Linkerd follows the caller's sampling decision and has no sampling percentage of its "
     "own"},
    {MESH_FEAT_PROXY_RESOURCES, MESH_SUPPORT_FULL,
     "Namespace annotations config.linkerd.io/proxy-cpu-request and proxy-memory-request on "
     "every namespace of the input (pods take them when injected)"},
};

/* --- the translation's state --- */

struct lk_backend {
    char *name;
    char *ns; /* NULL: the route's namespace */
    int port;
    uint64_t weight;
    bool weight_set;
};

struct lk_rule {
    struct mesh_node *matches; /* a sequence, owned; NULL: match everything */
    struct lk_backend *backends;
    size_t n_backends, cap_backends;
    uint64_t timeout_ms;
    size_t route; /* the VirtualService http_route it came from */
};

struct lk_srcs {
    const struct mesh_resource **v;
    size_t n, cap;
};

/* An outbound HTTPRoute, built first and printed last so that faults can reshape its
 * backends. */
struct lk_route {
    const struct mesh_virtual_service *vs; /* NULL for a Service's fault route */
    char *name, *ns;
    char **parents; /* Services of ns */
    size_t n_parents;
    struct lk_rule *rules;
    size_t n_rules, cap_rules;
    uint32_t retry_limit; /* 0: no retry annotations */
    uint64_t retry_timeout_ms;
    char *retry_http;
    struct lk_srcs srcs;
};

struct ctx {
    const struct mesh_translate_options *opt;
    struct mesh_translation *t;
    char **errmsg;
    const struct mesh_resource **res; /* the input, sorted by kind, namespace, name */
    size_t n;
    int minor;         /* Linkerd 2.<minor>; LK_NEWEST when unknown */
    const char *label; /* "linkerd 2.11", for version refusals */
    char label_buf[64];
    const char *domain;
    struct lk_route *routes;
    size_t n_routes, cap_routes;
};

/* --- small helpers --- */

static const char *res_ns(const struct mesh_resource *r)
{
    return mesh_resource_namespace(r);
}

static int compare_res(const void *pa, const void *pb)
{
    const struct mesh_resource *a = *(const struct mesh_resource *const *)pa;
    const struct mesh_resource *b = *(const struct mesh_resource *const *)pb;
    int c = strcmp(mesh_kind_name(a->kind), mesh_kind_name(b->kind));
    if (!c)
        c = strcmp(res_ns(a), res_ns(b));
    if (!c)
        c = strcmp(a->name ? a->name : "", b->name ? b->name : "");
    return c;
}

bool mesh_linkerd_label_ok(const char *s, size_t n)
{
    if (!n || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* A host read as a Kubernetes Service (model/service_host.h), whose name and namespace must be
 * names Kubernetes accepts: "*" is a wildcard host, not a Service. */
static bool split_service(const char *host, const char *default_ns, struct mesh_service_ref *out)
{
    return mesh_service_host_split(host, default_ns, out) &&
           mesh_linkerd_label_ok(out->name, out->name_len) &&
           mesh_linkerd_label_ok(out->ns, out->ns_len);
}

static char *ref_name(const struct mesh_service_ref *ref)
{
    return xstrndup(ref->name, ref->name_len);
}

static char *ref_ns(const struct mesh_service_ref *ref)
{
    return xstrndup(ref->ns, ref->ns_len);
}

static char *path_index(const char *base, const char *field, size_t i)
{
    return xasprintf("%s%s%s[%zu]", base, *base && *field ? "." : "", field, i);
}

static enum mesh_err refuse(struct ctx *c, const struct mesh_resource *res, const char *path,
                            enum mesh_feature f)
{
    return mesh_translation_refuse(&mesh_translator_linkerd, c->opt, c->t, res, path, f, c->errmsg);
}

/* A refusal in our own words: "KIND NS/NAME PATH: TEXT", a warning with allow_partial. */
static enum mesh_err refuse_text(struct ctx *c, const struct mesh_resource *res, const char *path,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum mesh_err refuse_text(struct ctx *c, const struct mesh_resource *res, const char *path,
                                 const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    return mesh_translation_refuse_why(c->opt, c->t, res, path, body, c->errmsg);
}

static enum mesh_err invalid(struct ctx *c, const struct mesh_resource *res, const char *path,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum mesh_err invalid(struct ctx *c, const struct mesh_resource *res, const char *path,
                             const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    *c->errmsg = xasprintf("%s %s/%s %s: %s", mesh_kind_name(res->kind), res_ns(res),
                           res->name ? res->name : "", path, body);
    return MESH_E_INVALID;
}

/* *go: whether the configured Linkerd has what needs release 2.<since>. When it does not, a
 * refusal naming both versions (MESH_OK with a warning under allow_partial, *go false). */
static enum mesh_err gate(struct ctx *c, const struct mesh_resource *res, const char *path,
                          int since, const char *what, bool *go)
{
    *go = c->minor >= since;
    if (*go)
        return MESH_OK;
    return refuse_text(c, res, path, "%s cannot express %s: it needs Linkerd 2.%d or later",
                       c->label, what, since);
}

/* Reads "2.14", "2.14.10", "stable-2.14.10", "v2.14"; an "edge-" release is newer than any
 * stable release we know. */
static bool parse_version(const char *v, int *minor)
{
    if (strncmp(v, "edge-", 5) == 0) {
        *minor = LK_NEWEST;
        return true;
    }
    if (strncmp(v, "stable-", 7) == 0)
        v += 7;
    else if (*v == 'v')
        v++;
    if (v[0] != '2' || v[1] != '.' || v[2] < '0' || v[2] > '9')
        return false;
    char *end;
    long m = strtol(v + 2, &end, 10);
    if (m > 1000 || (*end && *end != '.' && *end != '-'))
        return false;
    *minor = (int)m;
    return true;
}

/* --- node helpers --- */

static void map_put(struct mesh_node *map, const char *key, struct mesh_node *value)
{
    for (size_t i = 0; i < map->len; i++) {
        if (strcmp(map->pairs[i].key->text, key) == 0) {
            mesh_node_free(map->pairs[i].value);
            map->pairs[i].value = value;
            return;
        }
    }
    mesh_node_map_set(map, key, value);
}

static void map_remove(struct mesh_node *map, const char *key)
{
    for (size_t i = 0; i < map->len; i++) {
        if (strcmp(map->pairs[i].key->text, key) != 0)
            continue;
        mesh_node_free(map->pairs[i].key);
        mesh_node_free(map->pairs[i].value);
        memmove(&map->pairs[i], &map->pairs[i + 1], (map->len - i - 1) * sizeof(*map->pairs));
        map->len--;
        return;
    }
}

static struct mesh_node *map_child(struct mesh_node *map, const char *key)
{
    struct mesh_node *n = mesh_node_map_get(map, key);
    if (!n) {
        n = mesh_node_map();
        mesh_node_map_set(map, key, n);
    }
    return n;
}

static const char *scalar_at(const struct mesh_node *obj, const char *a, const char *b)
{
    const struct mesh_node *n = mesh_node_map_get(obj, a);
    if (n && b)
        n = mesh_node_map_get(n, b);
    return n && n->type == MESH_NODE_SCALAR ? n->text : NULL;
}

static struct mesh_node *str_seq(const char *const *items, size_t n)
{
    struct mesh_node *seq = mesh_node_seq();
    for (size_t i = 0; i < n; i++)
        mesh_node_seq_append(seq, mesh_node_str(items[i]));
    return seq;
}

/* --- objects --- */

static char *source_of(const struct mesh_resource *res)
{
    return xasprintf("%s/%s/%s", mesh_kind_name(res->kind), res_ns(res),
                     res->name ? res->name : "");
}

static int compare_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds res to obj's source annotation: every source, sorted, comma-separated. */
static void add_source(struct mesh_node *obj, const struct mesh_resource *res)
{
    struct mesh_node *ann = map_child(mesh_node_map_get(obj, "metadata"), "annotations");
    char *mine = source_of(res);
    const char *cur = scalar_at(ann, MESH_SOURCE_ANNOTATION, NULL);
    char **parts = NULL;
    size_t n = 0, cap = 0;
    char *copy = xstrdup(cur ? cur : "");
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        xgrow((void **)&parts, &cap, n + 1, sizeof(*parts));
        parts[n++] = p;
    }
    bool have = false;
    for (size_t i = 0; i < n; i++)
        have = have || strcmp(parts[i], mine) == 0;
    if (!have) {
        xgrow((void **)&parts, &cap, n + 1, sizeof(*parts));
        parts[n++] = mine;
    }
    qsort(parts, n, sizeof(*parts), compare_str);
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < n; i++)
        mesh_strbuf_printf(&sb, "%s%s", i ? "," : "", parts[i]);
    char *joined = mesh_strbuf_take(&sb);
    map_put(ann, MESH_SOURCE_ANNOTATION, mesh_node_str(joined));
    free(joined);
    free(parts);
    free(copy);
    free(mine);
}

static struct mesh_node *find_object(struct ctx *c, const char *kind, const char *ns,
                                     const char *name)
{
    for (size_t i = 0; i < c->t->n_objects; i++) {
        struct mesh_node *o = c->t->objects[i];
        const char *ons = scalar_at(o, "metadata", "namespace");
        if (strcmp(scalar_at(o, "kind", NULL), kind) == 0 &&
            strcmp(scalar_at(o, "metadata", "name"), name) == 0 &&
            (ns ? ons && strcmp(ons, ns) == 0 : !ons))
            return o;
    }
    return NULL;
}

/* Our object KIND ns/name made from res: a new one, or the one already made (from another
 * resource too). *spec: its spec map. *fresh: whether it is new. */
static struct mesh_node *object(struct ctx *c, const char *api, const char *kind, const char *name,
                                const char *ns, const struct mesh_resource *res,
                                struct mesh_node **spec, bool *fresh)
{
    struct mesh_node *o = find_object(c, kind, ns, name);
    if (fresh)
        *fresh = !o;
    if (o) {
        add_source(o, res);
        if (spec)
            *spec = mesh_node_map_get(o, "spec");
        return o;
    }
    return mesh_translation_add(c->t, api, kind, name, ns, res, spec);
}

/* The annotations of a partial Service or Namespace (ns NULL: cluster-scoped): metadata and
 * annotations only, no managed-by label and no spec, since the object itself is the user's. */
static struct mesh_node *patch(struct ctx *c, const char *kind, const char *name, const char *ns,
                               const struct mesh_resource *res)
{
    struct mesh_node *o = find_object(c, kind, ns, name);
    if (o) {
        add_source(o, res);
    } else {
        o = mesh_translation_add(c->t, "v1", kind, name, ns ? ns : "", res, NULL);
        struct mesh_node *meta = mesh_node_map_get(o, "metadata");
        map_remove(meta, "labels");
        if (!ns)
            map_remove(meta, "namespace");
        map_remove(o, "spec");
    }
    return mesh_node_map_get(mesh_node_map_get(o, "metadata"), "annotations");
}

/* --- the input's Services --- */

static const struct mesh_service *find_service(const struct ctx *c, const char *name,
                                               const char *ns)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->res[i]->kind == MESH_KIND_SERVICE && strcmp(c->res[i]->name, name) == 0 &&
            strcmp(res_ns(c->res[i]), ns) == 0)
            return (const struct mesh_service *)c->res[i];
    return NULL;
}

static const char *label_value(const struct mesh_labels *labels, const char *key)
{
    for (size_t i = 0; i < labels->len; i++)
        if (strcmp(labels->items[i].key, key) == 0)
            return labels->items[i].value;
    return NULL;
}

/* The port every endpoint of svc listens on; 0 when they differ or there is none. */
static int service_port(const struct mesh_service *svc)
{
    int port = 0;
    for (size_t i = 0; svc && i < svc->n_endpoints; i++) {
        const char *a = svc->endpoints[i].address;
        const char *colon = strrchr(a, ':');
        const char *bracket = strrchr(a, ']');
        if (!colon || (bracket && colon < bracket))
            return 0;
        int p = atoi(colon + 1);
        if (p <= 0 || p > 65535 || (port && p != port))
            return 0;
        port = p;
    }
    return port;
}

static int backend_port(const struct ctx *c, const char *name, const char *ns)
{
    int p = service_port(find_service(c, name, ns));
    return p ? p : LK_DEFAULT_PORT;
}

/* The Services a host of a policy names, as security.h reads them: the Service of that name
 * and every Service of that namespace labelled app: name. */
static size_t app_services(const struct ctx *c, const char *name, const char *ns,
                           const struct mesh_service **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n && n < max; i++) {
        const struct mesh_resource *r = c->res[i];
        if (r->kind != MESH_KIND_SERVICE || strcmp(res_ns(r), ns) != 0)
            continue;
        const char *app = label_value(&r->labels, "app");
        if (strcmp(r->name, name) == 0 || (app && strcmp(app, name) == 0))
            out[n++] = (const struct mesh_service *)r;
    }
    return n;
}

static const struct mesh_virtual_service *find_vs(const struct ctx *c, const char *name,
                                                  const char *ns)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->res[i]->kind == MESH_KIND_VIRTUAL_SERVICE && strcmp(c->res[i]->name, name) == 0 &&
            strcmp(res_ns(c->res[i]), ns) == 0)
            return (const struct mesh_virtual_service *)c->res[i];
    return NULL;
}

/* --- durations --- */

/* One number and one unit ("1500ms", "30s", "2m"): how Linkerd's annotations read durations. */
static void annotation_duration(uint64_t ms, char *buf, size_t len)
{
    if (ms && ms % 3600000 == 0)
        snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms && ms % 60000 == 0)
        snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, len, "%llums", (unsigned long long)ms);
}

/* The Gateway API duration format (GEP-2257: "1h2m3s4ms", no fractions) of HTTPRoute timeouts. */
static void route_duration(uint64_t ms, char *buf, size_t len)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < 4; i++) {
        uint64_t v = ms / units[i].ms;
        ms %= units[i].ms;
        if (v && at < len)
            at += (size_t)snprintf(buf + at, len - at, "%llu%s", (unsigned long long)v,
                                   units[i].unit);
    }
    if (!buf[0])
        snprintf(buf, len, "0s");
}

/* --- regular expressions --- */

void mesh_linkerd_regex_escape(struct mesh_strbuf *sb, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strchr(LK_REGEX_META, s[i]))
            mesh_strbuf_puts(sb, "\\");
        mesh_strbuf_append(sb, &s[i], 1);
    }
}

size_t mesh_linkerd_regex_top(const char *re, size_t n, char c)
{
    int depth = 0;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '\\') {
            i++;
        } else if (in_class) {
            in_class = re[i] != ']';
        } else if (re[i] == '[') {
            in_class = true;
            if (i + 1 < n && re[i + 1] == ']')
                i++;
        } else if (re[i] == '(') {
            depth++;
        } else if (re[i] == ')') {
            if (--depth == 0 && c == ')')
                return i;
        } else if (re[i] == '|' && depth == 0 && c == '|') {
            return i;
        }
    }
    return n;
}

bool mesh_linkerd_escaped_at(const char *s, size_t n)
{
    size_t k = 0;
    while (n >= 2 + k && s[n - 2 - k] == '\\')
        k++;
    return k % 2 == 1;
}

/* Our regexes match the whole value (POSIX ERE anchored at both ends); written out anchored, so
 * that they read the same to any Gateway API implementation (Linkerd anchors them too). */
static char *anchored(const char *re)
{
    size_t n = strlen(re);
    size_t from = re[0] == '^' ? 1 : 0;
    if (n > from && re[n - 1] == '$' && !mesh_linkerd_escaped_at(re, n))
        n--;
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    bool wrap = mesh_linkerd_regex_top(re + from, n - from, '|') < n - from;
    mesh_strbuf_puts(&sb, wrap ? "^(?:" : "^");
    mesh_strbuf_append(&sb, re + from, n - from);
    mesh_strbuf_puts(&sb, wrap ? ")$" : "$");
    return mesh_strbuf_take(&sb);
}

/* A header prefix: Gateway API header matches have no prefix type, and a regular expression
 * anchored at the start only says the same (the value starts with the prefix, then anything). */
static char *prefix_regex(const char *prefix)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_puts(&sb, "^");
    mesh_linkerd_regex_escape(&sb, prefix, strlen(prefix));
    mesh_strbuf_puts(&sb, ".*");
    return mesh_strbuf_take(&sb);
}

/* A glob's '*' matches any run of characters; a prefix is a glob ending in one. */
char *mesh_linkerd_glob_regex(const char *glob, bool prefix)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_puts(&sb, "^");
    for (const char *p = glob; *p;) {
        const char *star = strchr(p, '*');
        size_t lit = star ? (size_t)(star - p) : strlen(p);
        mesh_linkerd_regex_escape(&sb, p, lit);
        p += lit;
        if (star) {
            mesh_strbuf_puts(&sb, ".*");
            p++;
        }
    }
    if (prefix)
        mesh_strbuf_puts(&sb, ".*");
    mesh_strbuf_puts(&sb, "$");
    return mesh_strbuf_take(&sb);
}

static struct mesh_node *path_match(const char *type, const char *value)
{
    struct mesh_node *p = mesh_node_map();
    mesh_node_map_set(p, "type", mesh_node_str(type));
    mesh_node_map_set(p, "value", mesh_node_str(value));
    return p;
}

/* The HTTPRoute path condition of one of our path matches; NULL for any path. */
static struct mesh_node *route_path(const struct mesh_path_match *pm)
{
    const char *v = pm->value ? pm->value : "";
    bool glob = pm->kind == MESH_PATH_GLOB;
    if (pm->kind == MESH_PATH_ANY)
        return NULL;
    if (pm->kind == MESH_PATH_EXACT || (glob && !strchr(v, '*')))
        return path_match("Exact", v);
    /* Every path starts with a slash: the prefix "/" (or the glob slash-star) is every path. */
    if ((pm->kind == MESH_PATH_PREFIX && strcmp(v, "/") == 0) || (glob && strcmp(v, "/*") == 0))
        return path_match("PathPrefix", "/");
    char *re = pm->kind == MESH_PATH_REGEX ? anchored(v) : mesh_linkerd_glob_regex(v, !glob);
    struct mesh_node *p = path_match("RegularExpression", re);
    free(re);
    return p;
}

/* --- outbound routes (VirtualService -> HTTPRoute) --- */

static void srcs_add(struct lk_srcs *s, const struct mesh_resource *r)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == r)
            return;
    xgrow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v));
    s->v[s->n++] = r;
}

static struct lk_route *route_new(struct ctx *c, const char *name, const char *ns)
{
    xgrow((void **)&c->routes, &c->cap_routes, c->n_routes + 1, sizeof(*c->routes));
    struct lk_route *r = &c->routes[c->n_routes++];
    memset(r, 0, sizeof(*r));
    r->name = xstrdup(name);
    r->ns = xstrdup(ns);
    return r;
}

static struct lk_rule *rule_new(struct lk_route *r, size_t route_index)
{
    xgrow((void **)&r->rules, &r->cap_rules, r->n_rules + 1, sizeof(*r->rules));
    struct lk_rule *rule = &r->rules[r->n_rules++];
    memset(rule, 0, sizeof(*rule));
    rule->route = route_index;
    return rule;
}

static struct lk_backend *backend_add(struct lk_rule *rule, const char *name, const char *ns,
                                      int port)
{
    xgrow((void **)&rule->backends, &rule->cap_backends, rule->n_backends + 1,
          sizeof(*rule->backends));
    struct lk_backend *b = &rule->backends[rule->n_backends++];
    memset(b, 0, sizeof(*b));
    b->name = xstrdup(name);
    b->ns = xstrdup(ns);
    b->port = port;
    return b;
}

static void rule_clear(struct lk_rule *rule)
{
    mesh_node_free(rule->matches);
    for (size_t i = 0; i < rule->n_backends; i++) {
        free(rule->backends[i].name);
        free(rule->backends[i].ns);
    }
    free(rule->backends);
}

static void routes_free(struct ctx *c)
{
    for (size_t i = 0; i < c->n_routes; i++) {
        struct lk_route *r = &c->routes[i];
        for (size_t k = 0; k < r->n_rules; k++)
            rule_clear(&r->rules[k]);
        free(r->rules);
        for (size_t k = 0; k < r->n_parents; k++)
            free(r->parents[k]);
        free(r->parents);
        free(r->name);
        free(r->ns);
        free(r->retry_http);
        free(r->srcs.v);
    }
    free(c->routes);
    c->routes = NULL;
    c->n_routes = c->cap_routes = 0;
}

/* One match of a route as an HTTPRouteMatch. Header conditions are Exact or RegularExpression,
 * the only types Gateway API has: the others become regular expressions that match the same
 * values. */
static struct mesh_node *route_match(const struct mesh_route_match *m)
{
    struct mesh_node *match = mesh_node_map();
    struct mesh_node *p = route_path(&m->path);
    if (p)
        mesh_node_map_set(match, "path", p);
    struct mesh_node *headers = mesh_node_seq();
    for (size_t h = 0; h < m->n_headers; h++) {
        const struct mesh_header_match *hm = &m->headers[h];
        const char *type = "RegularExpression";
        char *value = NULL;
        if (hm->kind == MESH_HEADER_PREFIX) {
            value = prefix_regex(hm->value ? hm->value : "");
        } else if (hm->kind == MESH_HEADER_REGEX) {
            value = anchored(hm->value ? hm->value : "");
        } else if (hm->kind == MESH_HEADER_PRESENT) {
            value = xstrdup(".*");
        } else if (!hm->value || !*hm->value) {
            /* The schema wants a value of at least one byte: an empty value as a regex. */
            value = xstrdup("^$");
        } else {
            type = "Exact";
            value = xstrdup(hm->value);
        }
        struct mesh_node *hn = mesh_node_map();
        mesh_node_map_set(hn, "name", mesh_node_str(hm->name));
        mesh_node_map_set(hn, "type", mesh_node_str(type));
        mesh_node_map_set(hn, "value", mesh_node_str(value));
        free(value);
        mesh_node_seq_append(headers, hn);
    }
    if (headers->len)
        mesh_node_map_set(match, "headers", headers);
    else
        mesh_node_free(headers);
    if (m->method)
        mesh_node_map_set(match, "method", mesh_node_str(m->method));
    return match;
}

/* A route's retries as Linkerd's route annotations: the conditions, or NULL for none. */
static enum mesh_err retry_conditions(struct ctx *c, const struct mesh_virtual_service *vs,
                                      size_t r, char **out)
{
    const struct mesh_retry_policy *rp = &vs->http_routes[r].retries;
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    bool has_5xx = false, has_gw = false;
    for (size_t i = 0; i < rp->retry_on.len; i++) {
        const char *on = rp->retry_on.items[i];
        if (strcmp(on, "5xx") == 0 || strcmp(on, "gateway-error") == 0) {
            bool *seen = on[0] == '5' ? &has_5xx : &has_gw;
            if (!*seen)
                mesh_strbuf_printf(&sb, "%s%s", sb.len ? "," : "", on);
            *seen = true;
            continue;
        }
        char base[96];
        snprintf(base, sizeof(base), "spec.http_routes[%zu].retries", r);
        char *p = path_index(base, "retry_on", i);
        enum mesh_err err = refuse(c, &vs->res, p, MESH_FEAT_RETRIES);
        free(p);
        if (err != MESH_OK) {
            mesh_strbuf_free(&sb);
            return err;
        }
    }
    /* Our default conditions are gateway-error, reset and connect-failure: the first is all
     * Linkerd has. */
    if (!sb.len && rp->retry_on.len == 0)
        mesh_strbuf_puts(&sb, "gateway-error");
    *out = sb.len ? mesh_strbuf_take(&sb) : NULL;
    mesh_strbuf_free(&sb);
    return MESH_OK;
}

static bool same_retries(const struct mesh_retry_policy *a, const struct mesh_retry_policy *b)
{
    if (a->attempts != b->attempts)
        return false;
    if (!a->attempts)
        return true; /* no retries: per_try_timeout went into the request timeout */
    if (a->per_try_timeout_ms != b->per_try_timeout_ms || a->retry_on.len != b->retry_on.len)
        return false;
    for (size_t i = 0; i < a->retry_on.len; i++)
        if (strcmp(a->retry_on.items[i], b->retry_on.items[i]) != 0)
            return false;
    return true;
}

/* Retry annotations cover the whole HTTPRoute: the first route's policy is the route's; any
 * other route asking for another one is refused. */
static enum mesh_err route_retries(struct ctx *c, const struct mesh_virtual_service *vs,
                                   struct lk_route *lr)
{
    enum mesh_err err = MESH_OK;
    char path[96];
    for (size_t r = 1; r < vs->n_http_routes; r++) {
        if (same_retries(&vs->http_routes[0].retries, &vs->http_routes[r].retries))
            continue;
        snprintf(path, sizeof(path), "spec.http_routes[%zu].retries", r);
        if ((err = refuse(c, &vs->res, path, MESH_FEAT_RETRIES)) != MESH_OK)
            return err;
    }
    const struct mesh_retry_policy *rp = &vs->http_routes[0].retries;
    if (!rp->attempts)
        return MESH_OK;
    bool go;
    snprintf(path, sizeof(path), "spec.http_routes[0].retries");
    err = gate(c, &vs->res, path, LK_SINCE_RETRY, "retries (retry.linkerd.io annotations)", &go);
    if (err != MESH_OK || !go)
        return err;
    if ((err = retry_conditions(c, vs, 0, &lr->retry_http)) != MESH_OK)
        return err;
    lr->retry_limit = rp->attempts;
    lr->retry_timeout_ms = rp->per_try_timeout_ms;
    return MESH_OK;
}

static enum mesh_err route_rules(struct ctx *c, const struct mesh_virtual_service *vs,
                                 struct lk_route *lr)
{
    const char *ns = res_ns(&vs->res);
    enum mesh_err err = MESH_OK;
    struct mesh_node *matches = NULL;
    for (size_t r = 0; r < vs->n_http_routes; r++) {
        const struct mesh_http_route *hr = &vs->http_routes[r];
        char base[64];
        snprintf(base, sizeof(base), "spec.http_routes[%zu]", r);
        matches = mesh_node_seq();
        for (size_t m = 0; m < hr->n_matches; m++)
            mesh_node_seq_append(matches, route_match(&hr->matches[m]));
        /* Without retries a per-try timeout bounds the one attempt: a request timeout. */
        uint64_t timeout = hr->timeout_ms;
        if (!hr->retries.attempts && hr->retries.per_try_timeout_ms &&
            (!timeout || hr->retries.per_try_timeout_ms < timeout))
            timeout = hr->retries.per_try_timeout_ms;
        /* An HTTPRoute rule holds at most 8 matches: more become rules of their own, with the
         * same backends, in order. */
        size_t n_chunks = matches->len ? (matches->len + LK_MAX_MATCHES - 1) / LK_MAX_MATCHES : 1;
        for (size_t k = 0; k < n_chunks; k++) {
            struct lk_rule *rule = rule_new(lr, r);
            rule->timeout_ms = timeout;
            if (matches->len) {
                rule->matches = mesh_node_seq();
                for (size_t i = k * LK_MAX_MATCHES;
                     i < matches->len && i < (k + 1) * LK_MAX_MATCHES; i++) {
                    mesh_node_seq_append(rule->matches, matches->items[i]);
                    matches->items[i] = NULL;
                }
            }
            for (size_t d = 0; d < hr->n_destinations; d++) {
                const struct mesh_route_destination *dst = &hr->destinations[d];
                struct mesh_service_ref ref;
                if (!split_service(dst->host, ns, &ref)) {
                    char dp[128];
                    snprintf(dp, sizeof(dp), "%s.destinations[%zu].host", base, d);
                    err = invalid(c, &vs->res, dp,
                                  "\"%s\" names no Service (write name, name.namespace or "
                                  "name.namespace.svc)",
                                  dst->host);
                    goto out;
                }
                char *name = ref_name(&ref), *bns = ref_ns(&ref);
                struct lk_backend *b = backend_add(rule, name, strcmp(bns, lr->ns) ? bns : NULL,
                                                   backend_port(c, name, bns));
                b->weight_set = dst->weight != MESH_UNSET || hr->n_destinations > 1;
                b->weight = dst->weight == MESH_UNSET ? (hr->n_destinations == 1 ? 1 : 0)
                                                      : (uint64_t)dst->weight;
                free(name);
                free(bns);
            }
        }
        for (size_t i = 0; i < matches->len; i++)
            mesh_node_free(matches->items[i]);
        matches->len = 0;
        mesh_node_free(matches);
        matches = NULL;
    }
out:
    if (matches) {
        /* Items handed to rules were set to NULL; mesh_node_free skips them. */
        mesh_node_free(matches);
    }
    return err;
}

static enum mesh_err translate_vs(struct ctx *c, const struct mesh_virtual_service *vs)
{
    const char *ns = res_ns(&vs->res);
    enum mesh_err err = MESH_OK;
    bool mesh_part = vs->gateways.len == 0;
    for (size_t i = 0; i < vs->gateways.len; i++) {
        if (strcmp(vs->gateways.items[i], "mesh") == 0) {
            mesh_part = true;
            continue;
        }
        char *p = path_index("spec", "gateways", i);
        err = refuse(c, &vs->res, p, MESH_FEAT_GATEWAYS);
        free(p);
        if (err != MESH_OK)
            return err;
    }
    if (!mesh_part)
        return MESH_OK; /* a gateway's routes only: nothing of it reaches sidecars */
    char **parents = NULL;
    size_t n_parents = 0, cap = 0;
    for (size_t i = 0; i < vs->hosts.len; i++) {
        struct mesh_service_ref ref;
        if (!split_service(vs->hosts.items[i], ns, &ref) || ref.ns_len != strlen(ns) ||
            strncmp(ref.ns, ns, ref.ns_len) != 0) {
            char *p = path_index("spec", "hosts", i);
            err = refuse(c, &vs->res, p, MESH_FEAT_HOSTS);
            free(p);
            if (err != MESH_OK)
                goto out;
            continue;
        }
        char *name = ref_name(&ref);
        bool dup = false;
        for (size_t k = 0; k < n_parents; k++)
            dup = dup || strcmp(parents[k], name) == 0;
        if (dup) {
            free(name);
            continue;
        }
        xgrow((void **)&parents, &cap, n_parents + 1, sizeof(*parents));
        parents[n_parents++] = name;
    }
    if (!n_parents)
        goto out; /* every host was left out (allow_partial): nothing to attach a route to */
    bool go;
    err = gate(c, &vs->res, "spec.http_routes", LK_SINCE_ROUTE,
               "routes (HTTPRoute policy.linkerd.io/v1beta3)", &go);
    if (err != MESH_OK || !go)
        goto out;
    struct lk_route *lr = route_new(c, vs->res.name, ns);
    lr->vs = vs;
    srcs_add(&lr->srcs, &vs->res);
    lr->parents = parents;
    lr->n_parents = n_parents;
    parents = NULL;
    n_parents = 0;
    if ((err = route_rules(c, vs, lr)) != MESH_OK)
        goto out;
    if ((err = route_retries(c, vs, lr)) != MESH_OK)
        goto out;
    if (lr->n_rules > LK_MAX_RULES) {
        err = refuse_text(c, &vs->res, "spec.http_routes",
                          "linkerd cannot express %zu HTTPRoute rules (these routes and their "
                          "matches, 8 to a rule): an HTTPRoute holds at most %d",
                          lr->n_rules, LK_MAX_RULES);
        if (err != MESH_OK)
            goto out;
        for (size_t k = LK_MAX_RULES; k < lr->n_rules; k++)
            rule_clear(&lr->rules[k]);
        lr->n_rules = LK_MAX_RULES;
    }
out:
    for (size_t k = 0; k < n_parents; k++)
        free(parents[k]);
    free(parents);
    return err;
}

/* --- fault injection (a weighted failing backend) --- */

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Smallest integers in the same proportions; within the schema's maximum weight (rounded,
 * never to 0, in the rare case two faults compound past it). */
static void normalize_weights(struct lk_rule *rule)
{
    uint64_t g = 0, max = 0;
    for (size_t i = 0; i < rule->n_backends; i++)
        g = gcd(g, rule->backends[i].weight);
    for (size_t i = 0; g > 1 && i < rule->n_backends; i++)
        rule->backends[i].weight /= g;
    for (size_t i = 0; i < rule->n_backends; i++)
        if (rule->backends[i].weight > max)
            max = rule->backends[i].weight;
    for (size_t i = 0; max > LK_MAX_WEIGHT && i < rule->n_backends; i++) {
        uint64_t w = rule->backends[i].weight;
        uint64_t s = (uint64_t)((long double)w * LK_MAX_WEIGHT / max + 0.5L);
        rule->backends[i].weight = w && !s ? 1 : s;
    }
    for (size_t i = 0; i < rule->n_backends; i++)
        rule->backends[i].weight_set = true;
}

static uint64_t abort_share(const struct mesh_fault_injection *fi)
{
    double p = fi->fault.abort.percentage;
    if (p == MESH_UNSET || p >= 100)
        return LK_PCT_SCALE;
    return p <= 0 ? 0 : (uint64_t)llround(p * (LK_PCT_SCALE / 100));
}

static char *fault_backend_name(const char *target, uint32_t status)
{
    return xasprintf("%s-fault-%u", target, status);
}

static struct lk_backend *rule_backend(struct lk_rule *rule, const char *name, const char *ns)
{
    for (size_t i = 0; i < rule->n_backends; i++)
        if (strcmp(rule->backends[i].name, name) == 0 &&
            ((!ns && !rule->backends[i].ns) ||
             (ns && rule->backends[i].ns && strcmp(ns, rule->backends[i].ns) == 0)))
            return &rule->backends[i];
    return NULL;
}

/* The fault backend lives beside the Service it stands in for (ns NULL: the route's
 * namespace). */
static void add_fault_weight(struct lk_rule *rule, const char *fault, const char *ns, uint64_t w)
{
    struct lk_backend *f = rule_backend(rule, fault, ns);
    if (!f) {
        f = backend_add(rule, fault, ns, LK_FAULT_PORT);
        f->weight = 0;
    }
    f->weight += w;
}

/* share/10000 of the requests that the rule sends to backend k go to the fault backend. */
static void split_backend(struct lk_rule *rule, size_t k, uint64_t share, const char *fault)
{
    uint64_t w = rule->backends[k].weight;
    char *ns = xstrdup(rule->backends[k].ns);
    for (size_t i = 0; i < rule->n_backends; i++)
        rule->backends[i].weight *= LK_PCT_SCALE;
    rule->backends[k].weight = w * (LK_PCT_SCALE - share);
    add_fault_weight(rule, fault, ns, w * share);
    free(ns);
    normalize_weights(rule);
}

/* share/10000 of all the rule's requests go to the fault backend. */
static void split_rule(struct lk_rule *rule, uint64_t share, const char *fault)
{
    uint64_t total = 0;
    for (size_t i = 0; i < rule->n_backends; i++) {
        total += rule->backends[i].weight;
        rule->backends[i].weight *= LK_PCT_SCALE - share;
    }
    add_fault_weight(rule, fault, NULL, total * share);
    normalize_weights(rule);
}

static bool route_has_parent(const struct lk_route *r, const char *name, const char *ns)
{
    if (strcmp(r->ns, ns) != 0)
        return false;
    for (size_t i = 0; i < r->n_parents; i++)
        if (strcmp(r->parents[i], name) == 0)
            return true;
    return false;
}

/* A fault on a Service: its share of every rule that routes to it, and, when no route of ours
 * is attached to it, a route of its own for the callers that address it directly. */
static enum mesh_err fault_on_service(struct ctx *c, const struct mesh_fault_injection *fi,
                                      const char *name, const char *ns)
{
    uint64_t share = abort_share(fi);
    char *fault = fault_backend_name(name, fi->fault.abort.http_status);
    bool attached = false;
    size_t n_routes = c->n_routes;
    for (size_t i = 0; i < n_routes; i++) {
        struct lk_route *r = &c->routes[i];
        attached = attached || route_has_parent(r, name, ns);
        for (size_t k = 0; k < r->n_rules; k++) {
            struct lk_backend *b = rule_backend(&r->rules[k], name, strcmp(ns, r->ns) ? ns : NULL);
            if (!b)
                continue;
            split_backend(&r->rules[k], (size_t)(b - r->rules[k].backends), share, fault);
            srcs_add(&r->srcs, &fi->res);
        }
    }
    if (!attached) {
        char *rname = xasprintf("%s-fault", name);
        struct lk_route *r = route_new(c, rname, ns);
        free(rname);
        srcs_add(&r->srcs, &fi->res);
        r->parents = xcalloc(1, sizeof(*r->parents));
        r->parents[0] = xstrdup(name);
        r->n_parents = 1;
        struct lk_rule *rule = rule_new(r, 0);
        struct lk_backend *b = backend_add(rule, name, NULL, backend_port(c, name, ns));
        b->weight = 1;
        split_backend(rule, 0, share, fault);
    }
    free(fault);
    return MESH_OK;
}

/* The FaultInjection that applies to route r of vs: one naming the route beats one for the
 * whole VirtualService; among equals the first (as the native proxy picks). */
static const struct mesh_fault_injection *vs_fault(const struct ctx *c,
                                                   const struct mesh_virtual_service *vs, size_t r)
{
    const struct mesh_fault_injection *whole = NULL;
    const char *rname = vs->http_routes[r].name;
    for (size_t i = 0; i < c->n; i++) {
        const struct mesh_fault_injection *fi = (const struct mesh_fault_injection *)c->res[i];
        if (c->res[i]->kind != MESH_KIND_FAULT_INJECTION || !fi->fault.abort.http_status ||
            strcmp(fi->service, vs->res.name) != 0 ||
            strcmp(res_ns(&fi->res), res_ns(&vs->res)) != 0 ||
            find_service(c, fi->service, res_ns(&fi->res)))
            continue;
        if (!fi->route)
            whole = whole ? whole : fi;
        else if (rname && strcmp(fi->route, rname) == 0)
            return fi;
    }
    return whole;
}

static enum mesh_err translate_fi(struct ctx *c, const struct mesh_fault_injection *fi,
                                  bool *service_fault)
{
    const char *ns = res_ns(&fi->res);
    enum mesh_err err = MESH_OK;
    *service_fault = false;
    if (fi->fault.delay_ms && (err = refuse(c, &fi->res, "spec.delay", MESH_FEAT_FAULT_DELAY)))
        return err;
    if (!fi->fault.abort.http_status)
        return MESH_OK;
    bool go;
    err = gate(c, &fi->res, "spec.abort", LK_SINCE_ROUTE,
               "a fault abort (a weighted backendRef of an HTTPRoute policy.linkerd.io/v1beta3)",
               &go);
    if (err != MESH_OK || !go)
        return err;
    struct mesh_service_ref ref;
    bool is_host = split_service(fi->service, ns, &ref);
    char *name = is_host ? ref_name(&ref) : NULL, *sns = is_host ? ref_ns(&ref) : NULL;
    const struct mesh_virtual_service *vs = find_vs(c, fi->service, ns);
    if (is_host && (find_service(c, name, sns) || !vs)) {
        *service_fault = true;
        goto out; /* applied after every VirtualService's own faults */
    }
    if (!vs) {
        err = invalid(c, &fi->res, "spec.service",
                      "\"%s\" names no Service and no VirtualService of namespace %s", fi->service,
                      ns);
        goto out;
    }
    if (fi->route) {
        bool found = false;
        for (size_t r = 0; r < vs->n_http_routes; r++)
            found =
                found || (vs->http_routes[r].name && !strcmp(vs->http_routes[r].name, fi->route));
        if (!found) {
            err = invalid(c, &fi->res, "spec.route", "VirtualService %s/%s has no route named %s",
                          ns, vs->res.name, fi->route);
            goto out;
        }
    }
    bool has_route = false;
    for (size_t i = 0; i < c->n_routes; i++)
        has_route = has_route || c->routes[i].vs == vs;
    if (!has_route)
        err = refuse_text(c, &fi->res, "spec.abort",
                          "linkerd cannot express this fault: VirtualService %s/%s has no "
                          "HTTPRoute to add its failing backend to",
                          ns, vs->res.name);
out:
    free(name);
    free(sns);
    return err;
}

static void apply_vs_faults(struct ctx *c)
{
    for (size_t i = 0; i < c->n_routes; i++) {
        struct lk_route *r = &c->routes[i];
        for (size_t k = 0; r->vs && k < r->n_rules; k++) {
            const struct mesh_fault_injection *fi = vs_fault(c, r->vs, r->rules[k].route);
            if (!fi)
                continue;
            char *fault = fault_backend_name(fi->service, fi->fault.abort.http_status);
            split_rule(&r->rules[k], abort_share(fi), fault);
            free(fault);
            srcs_add(&r->srcs, &fi->res);
        }
    }
}

static enum mesh_err translate_faults(struct ctx *c)
{
    enum mesh_err err = MESH_OK;
    const struct mesh_fault_injection **service_faults = xcalloc(c->n + 1, sizeof(*service_faults));
    size_t n_sf = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->res[i]->kind != MESH_KIND_FAULT_INJECTION)
            continue;
        bool sf;
        const struct mesh_fault_injection *fi = (const struct mesh_fault_injection *)c->res[i];
        if ((err = translate_fi(c, fi, &sf)) != MESH_OK)
            goto out;
        if (sf)
            service_faults[n_sf++] = fi;
    }
    /* The native proxy decides a VirtualService's fault before it picks a destination, and a
     * Service's fault after: splitting the Service's share first and the rule's second gives
     * the same probabilities. When several faults name one Service, the last one counts. */
    for (size_t i = 0; i < n_sf; i++) {
        const struct mesh_fault_injection *fi = service_faults[i];
        struct mesh_service_ref ref;
        split_service(fi->service, res_ns(&fi->res), &ref);
        bool later = false;
        for (size_t k = i + 1; k < n_sf; k++) {
            struct mesh_service_ref other;
            split_service(service_faults[k]->service, res_ns(&service_faults[k]->res), &other);
            later = later || (other.name_len == ref.name_len && other.ns_len == ref.ns_len &&
                              !strncmp(other.name, ref.name, ref.name_len) &&
                              !strncmp(other.ns, ref.ns, ref.ns_len));
        }
        if (later)
            continue;
        char *name = ref_name(&ref), *ns = ref_ns(&ref);
        err = fault_on_service(c, fi, name, ns);
        free(name);
        free(ns);
        if (err != MESH_OK)
            goto out;
    }
    apply_vs_faults(c);
out:
    free(service_faults);
    return err;
}

static enum mesh_err emit_routes(struct ctx *c)
{
    for (size_t i = 0; i < c->n_routes; i++) {
        struct lk_route *r = &c->routes[i];
        struct mesh_node *spec;
        const struct mesh_node *other = find_object(c, "HTTPRoute", r->ns, r->name);
        if (other) {
            char *mine = source_of(r->srcs.v[0]);
            *c->errmsg = xasprintf("HTTPRoute %s/%s would be made from %s and from %s: rename one "
                                   "of them",
                                   r->ns, r->name, mine,
                                   scalar_at(mesh_node_map_get(other, "metadata"), "annotations",
                                             MESH_SOURCE_ANNOTATION));
            free(mine);
            return MESH_E_INVALID;
        }
        struct mesh_node *obj = mesh_translation_add(c->t, LK_ROUTE_API, "HTTPRoute", r->name,
                                                     r->ns, r->srcs.v[0], &spec);
        for (size_t s = 1; s < r->srcs.n; s++)
            add_source(obj, r->srcs.v[s]);
        /* No condition left (each refused): no retries at all, rather than Linkerd's 5xx. */
        if (r->retry_limit && r->retry_http && r->retry_http[0]) {
            struct mesh_node *ann = map_child(mesh_node_map_get(obj, "metadata"), "annotations");
            char buf[32];
            mesh_node_map_set(ann, "retry.linkerd.io/http", mesh_node_str(r->retry_http));
            snprintf(buf, sizeof(buf), "%u", r->retry_limit);
            mesh_node_map_set(ann, "retry.linkerd.io/limit", mesh_node_str(buf));
            if (r->retry_timeout_ms) {
                annotation_duration(r->retry_timeout_ms, buf, sizeof(buf));
                mesh_node_map_set(ann, "retry.linkerd.io/timeout", mesh_node_str(buf));
            }
        }
        struct mesh_node *parents = mesh_node_seq();
        for (size_t p = 0; p < r->n_parents; p++) {
            struct mesh_node *ref = mesh_node_map();
            mesh_node_map_set(ref, "group", mesh_node_str("core"));
            mesh_node_map_set(ref, "kind", mesh_node_str("Service"));
            mesh_node_map_set(ref, "name", mesh_node_str(r->parents[p]));
            mesh_node_seq_append(parents, ref);
        }
        mesh_node_map_set(spec, "parentRefs", parents);
        struct mesh_node *rules = mesh_node_seq();
        for (size_t k = 0; k < r->n_rules; k++) {
            struct lk_rule *rule = &r->rules[k];
            struct mesh_node *rn = mesh_node_map();
            if (rule->matches) {
                mesh_node_map_set(rn, "matches", rule->matches);
                rule->matches = NULL;
            }
            struct mesh_node *backends = mesh_node_seq();
            for (size_t b = 0; b < rule->n_backends; b++) {
                const struct lk_backend *be = &rule->backends[b];
                struct mesh_node *bn = mesh_node_map();
                mesh_node_map_set(bn, "name", mesh_node_str(be->name));
                if (be->ns)
                    mesh_node_map_set(bn, "namespace", mesh_node_str(be->ns));
                mesh_node_map_set(bn, "port", mesh_node_int(be->port));
                if (be->weight_set)
                    mesh_node_map_set(bn, "weight", mesh_node_int((long long)be->weight));
                mesh_node_seq_append(backends, bn);
            }
            mesh_node_map_set(rn, "backendRefs", backends);
            if (rule->timeout_ms) {
                char buf[48];
                route_duration(rule->timeout_ms, buf, sizeof(buf));
                struct mesh_node *tn = mesh_node_map();
                mesh_node_map_set(tn, "request", mesh_node_str(buf));
                mesh_node_map_set(rn, "timeouts", tn);
            }
            mesh_node_seq_append(rules, rn);
        }
        mesh_node_map_set(spec, "rules", rules);
    }
    return MESH_OK;
}

static enum mesh_err check_backend_counts(struct ctx *c)
{
    for (size_t i = 0; i < c->n_routes; i++) {
        struct lk_route *r = &c->routes[i];
        for (size_t k = 0; k < r->n_rules; k++) {
            struct lk_rule *rule = &r->rules[k];
            if (rule->n_backends <= LK_MAX_BACKENDS)
                continue;
            char path[64];
            snprintf(path, sizeof(path), "spec.http_routes[%zu].destinations", rule->route);
            enum mesh_err err =
                refuse_text(c, r->srcs.v[0], path,
                            "linkerd cannot express %zu backends in one HTTPRoute rule "
                            "(destinations and fault backends): a rule holds at most %d",
                            rule->n_backends, LK_MAX_BACKENDS);
            if (err != MESH_OK)
                return err;
            for (size_t b = LK_MAX_BACKENDS; b < rule->n_backends; b++) {
                free(rule->backends[b].name);
                free(rule->backends[b].ns);
            }
            rule->n_backends = LK_MAX_BACKENDS;
        }
    }
    return MESH_OK;
}

/* --- circuit breakers (failure accrual annotations on Services) --- */

static void accrual_annotations(struct ctx *c, const struct mesh_circuit_breaker *cb,
                                const char *name, const char *ns)
{
    const struct mesh_outlier_detection *d = &cb->config.detection;
    struct mesh_node *ann = patch(c, "Service", name, ns, &cb->res);
    char buf[32];
    uint64_t base = d->base_ejection_time_ms ? d->base_ejection_time_ms : 30000;
    map_put(ann, "balancer.linkerd.io/failure-accrual", mesh_node_str("consecutive"));
    snprintf(buf, sizeof(buf), "%u", d->consecutive_errors);
    map_put(ann, "balancer.linkerd.io/failure-accrual-consecutive-max-failures",
            mesh_node_str(buf));
    annotation_duration(base, buf, sizeof(buf));
    map_put(ann, "balancer.linkerd.io/failure-accrual-consecutive-min-penalty", mesh_node_str(buf));
    /* Linkerd refuses a min-penalty above max-penalty (60s unless set). */
    if (base > 60000)
        map_put(ann, "balancer.linkerd.io/failure-accrual-consecutive-max-penalty",
                mesh_node_str(buf));
}

static enum mesh_err translate_cb(struct ctx *c, const struct mesh_circuit_breaker *cb)
{
    const struct mesh_circuit_breaker_config *cfg = &cb->config;
    const struct mesh_outlier_detection *d = &cfg->detection;
    const char *ns = res_ns(&cb->res);
    enum mesh_err err = MESH_OK;
    const struct {
        bool set;
        const char *path;
        enum mesh_feature f;
    } limits[] = {
        {cfg->max_connections != 0, "spec.max_connections", MESH_FEAT_MAX_CONNECTIONS},
        {cfg->max_pending_requests != 0, "spec.max_pending_requests", MESH_FEAT_MAX_PENDING},
        {cfg->max_requests != 0, "spec.max_requests", MESH_FEAT_MAX_REQUESTS},
        {cfg->max_retries != 0, "spec.max_retries", MESH_FEAT_MAX_RETRIES},
        {d->interval_ms != 0, "spec.detection.interval", MESH_FEAT_OUTLIER_INTERVAL},
        {d->max_ejection_percent != MESH_UNSET, "spec.detection.max_ejection_percent",
         MESH_FEAT_OUTLIER_CONSECUTIVE},
    };
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        if (limits[i].set && (err = refuse(c, &cb->res, limits[i].path, limits[i].f)) != MESH_OK)
            return err;
    /* As in the native proxy, detection acts only with consecutive_errors. */
    if (!d->consecutive_errors)
        return MESH_OK;
    bool go;
    err = gate(c, &cb->res, "spec.detection.consecutive_errors", LK_SINCE_ACCRUAL,
               "outlier detection (balancer.linkerd.io/failure-accrual annotations)", &go);
    if (err != MESH_OK || !go)
        return err;
    struct mesh_service_ref ref;
    bool is_host = split_service(cb->service, ns, &ref);
    char *name = is_host ? ref_name(&ref) : NULL, *sns = is_host ? ref_ns(&ref) : NULL;
    const struct mesh_virtual_service *vs = find_vs(c, cb->service, ns);
    if (is_host && (find_service(c, name, sns) || !vs)) {
        accrual_annotations(c, cb, name, sns);
    } else if (vs) {
        /* Linkerd takes failure accrual from the Service a caller addresses: the routes'
         * parents for callers in the mesh, each destination for callers that reach it
         * directly (a gateway). */
        for (size_t h = 0; h < vs->hosts.len; h++) {
            struct mesh_service_ref hr;
            if (!split_service(vs->hosts.items[h], ns, &hr))
                continue;
            char *hn = ref_name(&hr), *hns = ref_ns(&hr);
            accrual_annotations(c, cb, hn, hns);
            free(hn);
            free(hns);
        }
        for (size_t r = 0; r < vs->n_http_routes; r++) {
            for (size_t k = 0; k < vs->http_routes[r].n_destinations; k++) {
                struct mesh_service_ref dr;
                if (!split_service(vs->http_routes[r].destinations[k].host, ns, &dr))
                    continue;
                char *dn = ref_name(&dr), *dns = ref_ns(&dr);
                accrual_annotations(c, cb, dn, dns);
                free(dn);
                free(dns);
            }
        }
    } else {
        err = invalid(c, &cb->res, "spec.service",
                      "\"%s\" names no Service and no VirtualService of namespace %s", cb->service,
                      ns);
    }
    free(name);
    free(sns);
    return err;
}

/* --- security (Server, AuthorizationPolicy, authentications, Namespace defaults) --- */

/* Who a rule admits: anyone (an empty from, or "*"), or Linkerd identities, sorted. */
struct lk_from {
    bool anyone;
    char **ids;
    size_t n, cap;
};

static void from_clear(struct lk_from *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->ids[i]);
    free(f->ids);
    memset(f, 0, sizeof(*f));
}

static void from_add(struct lk_from *f, char *id)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->ids[i], id) == 0) {
            free(id);
            return;
        }
    }
    xgrow((void **)&f->ids, &f->cap, f->n + 1, sizeof(*f->ids));
    f->ids[f->n++] = id;
}

/* A Linkerd identity is NAME.NAMESPACE.serviceaccount.identity.linkerd.TRUST_DOMAIN. Our short
 * identities name a service, and the Services of that app (security.h): each is read as the
 * ServiceAccount of its name. */
static void rule_from(const struct ctx *c, const struct mesh_authorization_rule *rule,
                      struct lk_from *out)
{
    memset(out, 0, sizeof(*out));
    out->anyone = rule->from.len == 0;
    for (size_t i = 0; i < rule->from.len; i++) {
        const char *id = rule->from.items[i];
        if (strcmp(id, "*") == 0) {
            out->anyone = true;
            continue;
        }
        if (strncmp(id, "spiffe://", 9) == 0) {
            char td[256], ns[72], sa[72];
            if (sscanf(id + 9, "%255[^/]/ns/%71[^/]/sa/%71s", td, ns, sa) == 3)
                from_add(out, xasprintf("%s.%s.serviceaccount.identity.linkerd.%s", sa, ns, td));
            continue;
        }
        struct mesh_service_ref ref;
        if (!split_service(id, NULL, &ref))
            continue;
        char *name = ref_name(&ref), *ns = ref_ns(&ref);
        from_add(out, xasprintf("%s.%s.serviceaccount.identity.linkerd.%s", name, ns, c->domain));
        const struct mesh_service *svcs[64];
        size_t n = app_services(c, name, ns, svcs, 64);
        for (size_t k = 0; k < n; k++)
            from_add(out, xasprintf("%s.%s.serviceaccount.identity.linkerd.%s", svcs[k]->res.name,
                                    ns, c->domain));
        free(name);
        free(ns);
    }
    if (out->anyone) {
        from_clear(out);
        out->anyone = true; /* identities add nothing to anyone */
    } else if (out->n > 1) {
        qsort(out->ids, out->n, sizeof(*out->ids), compare_str);
    }
}

static bool from_equal(const struct lk_from *a, const struct lk_from *b)
{
    if (a->anyone != b->anyone || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->ids[i], b->ids[i]) != 0)
            return false;
    return true;
}

/* One condition of a rule: a method (NULL: any) and a path (exact, prefix, or NULL: any). */
struct lk_unit {
    const char *method;
    const char *path;
    size_t path_len; /* a prefix: the bytes before '*' */
    bool prefix;
};

static size_t rule_units(const struct mesh_authorization_rule *rule, struct lk_unit **out)
{
    size_t nm = rule->methods.len ? rule->methods.len : 1;
    bool any_path = rule->paths.len == 0;
    for (size_t p = 0; p < rule->paths.len; p++)
        any_path =
            any_path || !strcmp(rule->paths.items[p], "*") || !strcmp(rule->paths.items[p], "/*");
    size_t np = any_path ? 1 : rule->paths.len;
    struct lk_unit *u = xcalloc(nm * np, sizeof(*u));
    for (size_t m = 0; m < nm; m++) {
        for (size_t p = 0; p < np; p++) {
            struct lk_unit *x = &u[m * np + p];
            x->method = rule->methods.len ? rule->methods.items[m] : NULL;
            if (any_path)
                continue;
            x->path = rule->paths.items[p];
            x->path_len = strlen(x->path);
            x->prefix = x->path_len && x->path[x->path_len - 1] == '*';
            if (x->prefix)
                x->path_len--;
        }
    }
    *out = u;
    return nm * np;
}

static bool units_overlap(const struct lk_unit *a, const struct lk_unit *b)
{
    if (a->method && b->method && strcmp(a->method, b->method) != 0)
        return false;
    if (!a->path || !b->path)
        return true;
    if (!a->prefix && !b->prefix)
        return a->path_len == b->path_len && !strncmp(a->path, b->path, a->path_len);
    size_t n = a->path_len < b->path_len ? a->path_len : b->path_len;
    if (a->prefix && b->prefix)
        return !strncmp(a->path, b->path, n);
    const struct lk_unit *pre = a->prefix ? a : b, *ex = a->prefix ? b : a;
    return ex->path_len >= pre->path_len && !strncmp(ex->path, pre->path, pre->path_len);
}

/* A rule for every request (no method, any path) authorizes at the Server; others need an
 * inbound route. */
static bool rule_is_any(const struct mesh_authorization_rule *rule)
{
    struct lk_unit *u;
    size_t n = rule_units(rule, &u);
    bool any = n == 1 && !u[0].method && !u[0].path;
    free(u);
    return any;
}

/* A rule of a policy, reaching a Server through its `to` entry `to`. */
struct lk_entry {
    const struct mesh_security_policy *sp;
    size_t rule;
    size_t to; /* index in the rule's `to`, for messages */
};

/* A Server: the pods of one of our Services on one port, which Linkerd authorizes as a unit.
 * The mode and the rules of every host that names the Service (by name or app label) meet
 * here, as they meet at a Service's inbound listener in the native proxy. */
struct lk_server {
    char *name, *ns;
    const struct mesh_service *svc; /* NULL: the input does not declare it */
    enum mesh_mtls_mode mode;       /* from policies naming it; UNSET: none */
    const struct mesh_security_policy *mode_sp;
    size_t mode_index; /* in mode_sp's services, for messages */
    struct lk_entry *entries;
    size_t n_entries, cap_entries;
};

struct lk_security {
    struct lk_server *v;
    size_t n, cap;
    struct lk_nsmode {
        char *ns;
        enum mesh_mtls_mode mode;
        const struct mesh_security_policy *sp;
    } * nsw; /* namespace-wide modes */
    size_t n_nsw, cap_nsw;
};

static int strictness(enum mesh_mtls_mode m)
{
    return m == MESH_MTLS_STRICT ? 2 : m == MESH_MTLS_PERMISSIVE ? 1 : 0;
}

static void security_free(struct lk_security *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].ns);
        free(s->v[i].entries);
    }
    free(s->v);
    for (size_t i = 0; i < s->n_nsw; i++)
        free(s->nsw[i].ns);
    free(s->nsw);
}

static enum mesh_mtls_mode namespace_mode(const struct lk_security *s, const char *ns)
{
    for (size_t i = 0; i < s->n_nsw; i++)
        if (!strcmp(s->nsw[i].ns, ns))
            return s->nsw[i].mode;
    return MESH_MTLS_UNSET;
}

/* The index of Server ns/name in s (indices, since s->v moves as it grows). */
static size_t server_get(struct lk_security *s, const char *name, const char *ns,
                         const struct mesh_service *svc)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name) && !strcmp(s->v[i].ns, ns))
            return i;
    xgrow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v));
    struct lk_server *srv = &s->v[s->n++];
    memset(srv, 0, sizeof(*srv));
    srv->name = xstrdup(name);
    srv->ns = xstrdup(ns);
    srv->svc = svc;
    return s->n - 1;
}

/* The Servers a policy's host names: one per Service of the input it names; without any, one
 * named after the host, for the pods labelled app: NAME. *n: how many (at most max). */
static enum mesh_err host_servers(struct ctx *c, struct lk_security *s,
                                  const struct mesh_security_policy *sp, const char *host,
                                  const char *path, size_t *out, size_t max, size_t *n)
{
    struct mesh_service_ref ref;
    if (!split_service(host, res_ns(&sp->res), &ref))
        return invalid(c, &sp->res, path,
                       "\"%s\" names no Service (write name, name.namespace or "
                       "name.namespace.svc)",
                       host);
    char *name = ref_name(&ref), *ns = ref_ns(&ref);
    const struct mesh_service *svcs[64];
    size_t k = app_services(c, name, ns, svcs, max < 64 ? max : 64);
    for (size_t i = 0; i < k; i++)
        out[i] = server_get(s, svcs[i]->res.name, ns, svcs[i]);
    if (!k)
        out[k++] = server_get(s, name, ns, NULL);
    *n = k;
    free(name);
    free(ns);
    return MESH_OK;
}

static const char *proxy_protocol(const char *protocol)
{
    if (!protocol)
        return NULL;
    if (!strcmp(protocol, "http"))
        return "HTTP/1";
    if (!strcmp(protocol, "http2"))
        return "HTTP/2";
    if (!strcmp(protocol, "grpc"))
        return "gRPC";
    if (!strcmp(protocol, "tcp"))
        return "opaque";
    return NULL;
}

/* The Server selects its Service's pods by the Service's labels (ours stand for its pods'),
 * app: NAME when it has none, on the port its endpoints share, else the port named http. */
static void emit_server(struct ctx *c, const struct lk_server *srv, const struct mesh_resource *src)
{
    bool v3 = c->minor >= LK_SINCE_SERVER_V1BETA3;
    struct mesh_node *spec;
    bool fresh;
    object(c, v3 ? "policy.linkerd.io/v1beta3" : "policy.linkerd.io/v1beta1", "Server", srv->name,
           srv->ns, src, &spec, &fresh);
    if (!fresh)
        return;
    struct mesh_node *sel = mesh_node_map(), *labels = mesh_node_map();
    if (srv->svc && srv->svc->res.labels.len) {
        for (size_t i = 0; i < srv->svc->res.labels.len; i++)
            mesh_node_map_set(labels, srv->svc->res.labels.items[i].key,
                              mesh_node_str(srv->svc->res.labels.items[i].value));
    } else {
        mesh_node_map_set(labels, "app", mesh_node_str(srv->name));
    }
    mesh_node_map_set(sel, "matchLabels", labels);
    mesh_node_map_set(spec, "podSelector", sel);
    int port = service_port(srv->svc);
    mesh_node_map_set(spec, "port", port ? mesh_node_int(port) : mesh_node_str("http"));
    const char *proto = srv->svc ? proxy_protocol(srv->svc->protocol) : NULL;
    if (proto)
        mesh_node_map_set(spec, "proxyProtocol", mesh_node_str(proto));
    if (v3)
        mesh_node_map_set(spec, "accessPolicy", mesh_node_str("deny"));
}

/* The authentication of `from` in ns, named name: a MeshTLSAuthentication of its identities (of
 * every meshed client, when it admits anyone under strict mTLS), or a NetworkAuthentication of
 * every address. *kind: which. */
static void emit_authn(struct ctx *c, const struct lk_from *from, bool strict, const char *name,
                       const char *ns, const struct mesh_resource *src, const char **kind)
{
    struct mesh_node *spec;
    bool fresh;
    if (from->anyone && !strict) {
        *kind = "NetworkAuthentication";
        object(c, LK_AUTHN_API, *kind, name, ns, src, &spec, &fresh);
        if (!fresh)
            return;
        struct mesh_node *nets = mesh_node_seq();
        const char *cidrs[] = {"0.0.0.0/0", "::/0"};
        for (size_t i = 0; i < 2; i++) {
            struct mesh_node *n = mesh_node_map();
            mesh_node_map_set(n, "cidr", mesh_node_str(cidrs[i]));
            mesh_node_seq_append(nets, n);
        }
        mesh_node_map_set(spec, "networks", nets);
        return;
    }
    *kind = "MeshTLSAuthentication";
    object(c, LK_AUTHN_API, *kind, name, ns, src, &spec, &fresh);
    if (!fresh)
        return;
    static const char *const all[] = {"*"};
    mesh_node_map_set(spec, "identities",
                      from->anyone ? str_seq(all, 1)
                                   : str_seq((const char *const *)from->ids, from->n));
}

static void emit_authz(struct ctx *c, const char *name, const char *ns, const char *target_kind,
                       const char *target, const char *authn_kind, const char *authn,
                       const struct mesh_resource *src)
{
    struct mesh_node *spec;
    bool fresh;
    object(c, LK_AUTHN_API, "AuthorizationPolicy", name, ns, src, &spec, &fresh);
    if (!fresh)
        return;
    struct mesh_node *tr = mesh_node_map();
    mesh_node_map_set(tr, "group", mesh_node_str(LK_GROUP));
    mesh_node_map_set(tr, "kind", mesh_node_str(target_kind));
    mesh_node_map_set(tr, "name", mesh_node_str(target));
    mesh_node_map_set(spec, "targetRef", tr);
    struct mesh_node *refs = mesh_node_seq(), *ref = mesh_node_map();
    mesh_node_map_set(ref, "group", mesh_node_str(LK_GROUP));
    mesh_node_map_set(ref, "kind", mesh_node_str(authn_kind));
    mesh_node_map_set(ref, "name", mesh_node_str(authn));
    mesh_node_seq_append(refs, ref);
    mesh_node_map_set(spec, "requiredAuthenticationRefs", refs);
}

/* An inbound HTTPRoute of a Server with a rule's conditions, 8 to an HTTPRoute rule; no
 * condition at all is every request. */
static void emit_inbound_route(struct ctx *c, const char *name, const struct lk_server *srv,
                               const struct lk_unit *units, size_t n_units,
                               const struct mesh_resource *src)
{
    struct mesh_node *spec;
    bool fresh;
    object(c, LK_ROUTE_API, "HTTPRoute", name, srv->ns, src, &spec, &fresh);
    if (!fresh)
        return;
    struct mesh_node *parents = mesh_node_seq(), *parent = mesh_node_map();
    mesh_node_map_set(parent, "group", mesh_node_str(LK_GROUP));
    mesh_node_map_set(parent, "kind", mesh_node_str("Server"));
    mesh_node_map_set(parent, "name", mesh_node_str(srv->name));
    mesh_node_seq_append(parents, parent);
    mesh_node_map_set(spec, "parentRefs", parents);
    struct mesh_node *rules = mesh_node_seq();
    struct mesh_node *matches = NULL;
    for (size_t i = 0; i < n_units; i++) {
        if (i % LK_MAX_MATCHES == 0) {
            struct mesh_node *rule = mesh_node_map();
            matches = mesh_node_seq();
            mesh_node_map_set(rule, "matches", matches);
            mesh_node_seq_append(rules, rule);
        }
        struct mesh_node *m = mesh_node_map();
        const struct lk_unit *u = &units[i];
        if (u->path) {
            struct mesh_path_match pm = {u->prefix ? MESH_PATH_PREFIX : MESH_PATH_EXACT,
                                         xstrndup(u->path, u->path_len)};
            mesh_node_map_set(m, "path", route_path(&pm));
            free(pm.value);
        } else if (!u->method) {
            mesh_node_map_set(m, "path", path_match("PathPrefix", "/"));
        }
        if (u->method)
            mesh_node_map_set(m, "method", mesh_node_str(u->method));
        mesh_node_seq_append(matches, m);
    }
    mesh_node_map_set(spec, "rules", rules);
}

static char *entry_path(const struct lk_entry *e)
{
    return xasprintf("spec.authorization[%zu].to[%zu]", e->rule, e->to);
}

static const struct mesh_authorization_rule *entry_rule(const struct lk_entry *e)
{
    return &e->sp->authorization[e->rule];
}

/* A Server with a mode of its own and no rules: every meshed client (strict), or anyone. */
static void server_mode_only(struct ctx *c, const struct lk_server *srv)
{
    bool strict = srv->mode == MESH_MTLS_STRICT;
    struct lk_from anyone = {.anyone = true};
    const char *kind;
    const struct mesh_resource *src = &srv->mode_sp->res;
    char *authn = xasprintf("%s-%s", src->name, strict ? "meshed" : "anyone");
    emit_server(c, srv, src);
    emit_authn(c, &anyone, strict, authn, srv->ns, src, &kind);
    char *name = xasprintf("%s-%s", srv->name, mesh_mtls_mode_name(srv->mode));
    emit_authz(c, name, srv->ns, "Server", srv->name, kind, authn, src);
    free(name);
    free(authn);
}

/* Rules: Linkerd gives a request to one inbound route, the best match, and applies only its
 * authorizations and the Server's. Rules for every request authorize at the Server; the others
 * get a route each, and two of those whose conditions overlap must admit the same callers. */
static enum mesh_err server_rules(struct ctx *c, const struct lk_security *s,
                                  const struct lk_server *srv)
{
    enum mesh_err err = MESH_OK;
    enum mesh_mtls_mode mode = srv->mode ? srv->mode : namespace_mode(s, srv->ns);
    bool strict = mode == MESH_MTLS_STRICT;
    struct lk_from *froms = xcalloc(srv->n_entries, sizeof(*froms));
    bool *keep = xcalloc(srv->n_entries, sizeof(*keep));
    bool any_rule = false, specific = false;
    for (size_t e = 0; e < srv->n_entries; e++) {
        const struct lk_entry *en = &srv->entries[e];
        rule_from(c, entry_rule(en), &froms[e]);
        /* From identities that name no Service: the rule admits nobody, as natively; the
         * Server alone denies what it would have. */
        keep[e] = froms[e].anyone || froms[e].n > 0;
        if (!keep[e])
            continue;
        if (rule_is_any(entry_rule(en))) {
            any_rule = true;
            continue;
        }
        struct lk_unit *u;
        size_t nu = rule_units(entry_rule(en), &u);
        for (size_t o = 0; keep[e] && o < e; o++) {
            const struct lk_entry *on = &srv->entries[o];
            if (!keep[o] || rule_is_any(entry_rule(on)) || from_equal(&froms[o], &froms[e]))
                continue;
            struct lk_unit *ou;
            size_t nou = rule_units(entry_rule(on), &ou);
            bool overlap = false;
            for (size_t i = 0; i < nu && !overlap; i++)
                for (size_t k = 0; k < nou && !overlap; k++)
                    overlap = units_overlap(&u[i], &ou[k]);
            free(ou);
            if (!overlap)
                continue;
            char *p = xasprintf("spec.authorization[%zu]", en->rule);
            err = refuse(c, &en->sp->res, p, MESH_FEAT_AUTHZ);
            free(p);
            keep[e] = false;
        }
        free(u);
        if (err != MESH_OK)
            goto out;
        if (keep[e]) {
            char *p = entry_path(en);
            err = gate(c, &en->sp->res, p, LK_SINCE_ROUTE,
                       "methods and paths (an inbound HTTPRoute policy.linkerd.io/v1beta3)",
                       &keep[e]);
            free(p);
            if (err != MESH_OK)
                goto out;
            specific = specific || keep[e];
        }
    }
    emit_server(c, srv, &srv->entries[0].sp->res);
    for (size_t e = 0; e < srv->n_entries; e++) {
        const struct lk_entry *en = &srv->entries[e];
        if (!keep[e])
            continue;
        char *authn = xasprintf("%s-rule%zu", en->sp->res.name, en->rule);
        char *name = xasprintf("%s-rule%zu-%s", en->sp->res.name, en->rule, srv->name);
        const char *kind;
        emit_authn(c, &froms[e], strict, authn, srv->ns, &en->sp->res, &kind);
        if (rule_is_any(entry_rule(en))) {
            emit_authz(c, name, srv->ns, "Server", srv->name, kind, authn, &en->sp->res);
        } else {
            struct lk_unit *u;
            size_t nu = rule_units(entry_rule(en), &u);
            emit_inbound_route(c, name, srv, u, nu, &en->sp->res);
            emit_authz(c, name, srv->ns, "HTTPRoute", name, kind, authn, &en->sp->res);
            free(u);
        }
        free(name);
        free(authn);
    }
    /* With routes attached to a Server, a request that matches none of them is refused before
     * any authorization: a route for every request lets the Server-wide rules admit it. */
    if (any_rule && specific) {
        struct lk_unit all = {0};
        char *name = xasprintf("%s-all", srv->name);
        for (size_t e = 0; e < srv->n_entries; e++)
            if (keep[e] && rule_is_any(entry_rule(&srv->entries[e])))
                emit_inbound_route(c, name, srv, &all, 1, &srv->entries[e].sp->res);
        free(name);
    }
out:
    for (size_t e = 0; e < srv->n_entries; e++)
        from_clear(&froms[e]);
    free(froms);
    free(keep);
    return err;
}

static enum mesh_err translate_server(struct ctx *c, const struct lk_security *s,
                                      const struct lk_server *srv)
{
    const struct mesh_resource *first =
        srv->n_entries ? &srv->entries[0].sp->res : &srv->mode_sp->res;
    char *path = srv->n_entries ? entry_path(&srv->entries[0])
                                : path_index("spec", "services", srv->mode_index);
    bool go;
    enum mesh_err err =
        gate(c, first, path, LK_SINCE_AUTHZ,
             "a service's policy (Server, AuthorizationPolicy, MeshTLSAuthentication)", &go);
    free(path);
    if (err != MESH_OK || !go)
        return err;
    if (!srv->n_entries) {
        server_mode_only(c, srv);
        return MESH_OK;
    }
    return server_rules(c, s, srv);
}

static enum mesh_err collect_policy(struct ctx *c, struct lk_security *s,
                                    const struct mesh_security_policy *sp)
{
    const char *ns = res_ns(&sp->res);
    enum mesh_err err = MESH_OK;
    enum mesh_mtls_mode mode = sp->mtls.mode;
    size_t srvs[64];
    size_t n;
    if (mode == MESH_MTLS_DISABLE) {
        if ((err = refuse(c, &sp->res, "spec.mtls.mode", MESH_FEAT_MTLS_DISABLE)) != MESH_OK)
            return err;
        mode = MESH_MTLS_UNSET;
    }
    if (mode && !sp->services.len) {
        size_t k = 0;
        while (k < s->n_nsw && strcmp(s->nsw[k].ns, ns))
            k++;
        if (k == s->n_nsw) {
            xgrow((void **)&s->nsw, &s->cap_nsw, s->n_nsw + 1, sizeof(*s->nsw));
            s->nsw[k] = (struct lk_nsmode){xstrdup(ns), MESH_MTLS_UNSET, NULL};
            s->n_nsw++;
        }
        if (strictness(mode) > strictness(s->nsw[k].mode)) {
            s->nsw[k].mode = mode;
            s->nsw[k].sp = sp;
        }
    }
    for (size_t h = 0; mode && h < sp->services.len; h++) {
        char *p = path_index("spec", "services", h);
        err = host_servers(c, s, sp, sp->services.items[h], p, srvs, 64, &n);
        free(p);
        if (err != MESH_OK)
            return err;
        for (size_t i = 0; i < n; i++) {
            struct lk_server *srv = &s->v[srvs[i]];
            if (strictness(mode) > strictness(srv->mode)) {
                srv->mode = mode;
                srv->mode_sp = sp;
                srv->mode_index = h;
            }
        }
    }
    for (size_t r = 0; r < sp->n_authorization; r++) {
        const struct mesh_string_list *to = &sp->authorization[r].to;
        for (size_t k = 0; k < to->len; k++) {
            char *p = xasprintf("spec.authorization[%zu].to[%zu]", r, k);
            err = host_servers(c, s, sp, to->items[k], p, srvs, 64, &n);
            free(p);
            if (err != MESH_OK)
                return err;
            for (size_t i = 0; i < n; i++) {
                struct lk_server *srv = &s->v[srvs[i]];
                bool dup = false;
                for (size_t e = 0; e < srv->n_entries; e++)
                    dup = dup || (srv->entries[e].sp == sp && srv->entries[e].rule == r);
                if (dup)
                    continue;
                xgrow((void **)&srv->entries, &srv->cap_entries, srv->n_entries + 1,
                      sizeof(*srv->entries));
                srv->entries[srv->n_entries++] = (struct lk_entry){sp, r, k};
            }
        }
    }
    return MESH_OK;
}

static enum mesh_err translate_security(struct ctx *c)
{
    struct lk_security s = {0};
    enum mesh_err err = MESH_OK;
    for (size_t i = 0; i < c->n; i++)
        if (c->res[i]->kind == MESH_KIND_SECURITY_POLICY &&
            (err = collect_policy(c, &s, (const struct mesh_security_policy *)c->res[i])) !=
                MESH_OK)
            goto out;
    for (size_t k = 0; k < s.n_nsw; k++) {
        const struct mesh_security_policy *sp = s.nsw[k].sp;
        bool go;
        err = gate(c, &sp->res, "spec.mtls.mode", LK_SINCE_DEFAULT_POLICY,
                   "a namespace's inbound policy (config.linkerd.io/default-inbound-policy)", &go);
        if (err != MESH_OK)
            goto out;
        if (!go)
            continue;
        struct mesh_node *ann = patch(c, "Namespace", s.nsw[k].ns, NULL, &sp->res);
        map_put(ann, "config.linkerd.io/default-inbound-policy",
                mesh_node_str(s.nsw[k].mode == MESH_MTLS_STRICT ? "all-authenticated"
                                                                : "all-unauthenticated"));
    }
    for (size_t i = 0; i < s.n; i++)
        if ((s.v[i].mode || s.v[i].n_entries) &&
            (err = translate_server(c, &s, &s.v[i])) != MESH_OK)
            goto out;
out:
    security_free(&s);
    return err;
}

/* --- MeshConfig --- */

static enum mesh_err translate_mesh_config(struct ctx *c, const struct mesh_mesh_config *mc)
{
    enum mesh_err err = MESH_OK;
    if (mc->mtls.enabled == MESH_TRI_FALSE &&
        (err = refuse(c, &mc->res, "spec.mtls.enabled", MESH_FEAT_MTLS_DISABLE)) != MESH_OK)
        return err;
    if (mc->telemetry.sampling_rate != MESH_UNSET && mc->telemetry.enabled != MESH_TRI_FALSE &&
        (err = refuse(c, &mc->res, "spec.telemetry.sampling_rate", MESH_FEAT_TRACING_SAMPLING)) !=
            MESH_OK)
        return err;
    bool ingress = mc->ingress.enabled == MESH_TRI_TRUE ||
                   (mc->ingress.enabled == MESH_TRI_UNSET && mc->ingress.gateway_class);
    if (ingress && (err = refuse(c, &mc->res, "spec.ingress", MESH_FEAT_GATEWAYS)) != MESH_OK)
        return err;
    if (!mc->proxy.resources.cpu && !mc->proxy.resources.memory)
        return MESH_OK;
    /* The proxy's resources are an install value for the whole mesh, and a Namespace
     * annotation that the injector reads for the pods of that namespace: every namespace we
     * translate something of gets it. */
    const char **nss = xcalloc(c->n + 1, sizeof(*nss));
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const char *ns = res_ns(c->res[i]);
        bool seen = false;
        for (size_t k = 0; k < n; k++)
            seen = seen || !strcmp(nss[k], ns);
        if (!seen)
            nss[n++] = ns;
    }
    for (size_t k = 0; k < n; k++) {
        struct mesh_node *ann = patch(c, "Namespace", nss[k], NULL, &mc->res);
        if (mc->proxy.resources.cpu)
            map_put(ann, "config.linkerd.io/proxy-cpu-request",
                    mesh_node_str(mc->proxy.resources.cpu));
        if (mc->proxy.resources.memory)
            map_put(ann, "config.linkerd.io/proxy-memory-request",
                    mesh_node_str(mc->proxy.resources.memory));
    }
    free(nss);
    return MESH_OK;
}

static bool is_linkerd_config(const struct mesh_resource *r)
{
    const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)r;
    return r->kind == MESH_KIND_MESH_CONFIG && mc->provider && !strcmp(mc->provider, "linkerd");
}

/* --- the translator --- */

static enum mesh_err linkerd_translate(const struct mesh_resource *const *res, size_t n,
                                       const struct mesh_translate_options *opt,
                                       struct mesh_translation *out, char **errmsg)
{
    struct ctx c = {.opt = opt, .t = out, .errmsg = errmsg, .n = n, .minor = LK_NEWEST};
    enum mesh_err err = MESH_OK;
    *errmsg = NULL;
    c.res = xcalloc(n + 1, sizeof(*c.res));
    for (size_t i = 0; i < n; i++)
        c.res[i] = res[i];
    qsort(c.res, n, sizeof(*c.res), compare_res);
    c.domain = opt && opt->cluster_domain ? opt->cluster_domain : "cluster.local";

    const char *version = opt ? opt->version : NULL;
    for (size_t i = 0; !version && i < n; i++)
        if (is_linkerd_config(c.res[i]))
            version = ((const struct mesh_mesh_config *)c.res[i])->version;
    if (version && !parse_version(version, &c.minor)) {
        *errmsg = xasprintf("linkerd version \"%s\": not a Linkerd 2.x version (write 2.14, "
                            "2.14.10 or stable-2.14.10)",
                            version);
        err = MESH_E_INVALID;
        goto out;
    }
    snprintf(c.label_buf, sizeof(c.label_buf), "linkerd %s", version ? version : "");
    c.label = c.label_buf;

    for (size_t i = 0; i < n; i++)
        if (is_linkerd_config(c.res[i]) &&
            (err = translate_mesh_config(&c, (const struct mesh_mesh_config *)c.res[i])) != MESH_OK)
            goto out;
    for (size_t i = 0; i < n; i++)
        if (c.res[i]->kind == MESH_KIND_VIRTUAL_SERVICE &&
            (err = translate_vs(&c, (const struct mesh_virtual_service *)c.res[i])) != MESH_OK)
            goto out;
    if ((err = translate_faults(&c)) != MESH_OK)
        goto out;
    if ((err = check_backend_counts(&c)) != MESH_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (c.res[i]->kind == MESH_KIND_CIRCUIT_BREAKER &&
            (err = translate_cb(&c, (const struct mesh_circuit_breaker *)c.res[i])) != MESH_OK)
            goto out;
    if ((err = translate_security(&c)) != MESH_OK)
        goto out;
    if ((err = emit_routes(&c)) != MESH_OK)
        goto out;
    mesh_translation_sort(out);
out:
    routes_free(&c);
    free(c.res);
    if (err != MESH_OK)
        mesh_translation_clear(out);
    return err;
}

const struct mesh_translator mesh_translator_linkerd = {
    .name = "linkerd",
    .caps = linkerd_caps,
    .n_caps = sizeof(linkerd_caps) / sizeof(linkerd_caps[0]),
    .translate = linkerd_translate,
    .read = mesh_linkerd_read,
};
