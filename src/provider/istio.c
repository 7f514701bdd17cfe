/* SPDX-License-Identifier: Apache-2.0 */
/* Our resources as Istio manifests (translate.h): VirtualService, DestinationRule, Gateway,
 * PeerAuthentication, AuthorizationPolicy and Telemetry, for Istio 1.14 and newer.
 *
 * API versions follow what each Istio release serves and documents (MeshConfig `version`, or
 * the caller's; none means the newest): up to 1.21, networking.istio.io/v1beta1 (served since
 * 1.5), security.istio.io/v1beta1 (since 1.5) and telemetry.istio.io/v1alpha1 (since 1.11); from
 * 1.22, which promoted the three groups together, v1 for all (the older versions stay served,
 * but v1 is what those releases document). The one field that differs with them is the
 * least-request balancer: LEAST_CONN before 1.22, LEAST_REQUEST from then on. Releases before
 * 1.14 are refused: they balance round robin by default where we balance by least request, and
 * they have long been out of support.
 *
 * Kubernetes owns the Services: nothing is written for ours, but they are read to resolve
 * destinations. A Service that is one version of an app (labels app and version, app not its
 * own name, the pair unique in its namespace) is reached as a subset of the app's Service host
 * (payment-v1 -> payment.default.svc.cluster.local, subset v1), so that one DestinationRule per
 * app carries the versions; the app's own Kubernetes Service (selector app: payment) is the
 * cluster's, as Istio's own examples have it. */
#include "translate.h"
#include "istio_names.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "mesh/circuit_breaker.h"
#include "mesh/fault_injection.h"
#include "mesh/mesh_config.h"
#include "mesh/security_policy.h"
#include "mesh/service.h"
#include "mesh/virtual_service.h"
#include "model/mtls_mode.h"
#include "model/service_host.h"

#define ISTIO_OLDEST_MINOR 14
#define ISTIO_V1_MINOR     22
/* Istio's root namespace: mesh-wide PeerAuthentication and Telemetry live there. */
#define ISTIO_ROOT_NS  "istio-system"
#define DEFAULT_DOMAIN "cluster.local"
/* Our outlier detection never ejects more than this share unless told (Istio's default is 10). */
#define OUR_MAX_EJECTION_PERCENT 50
/* The conditions our proxy retries on when a route asks for retries without naming any. */
#define OUR_DEFAULT_RETRY_ON "gateway-error,connect-failure,reset"

static const struct mesh_capability istio_caps[] = {
    {MESH_FEAT_HOSTS, MESH_SUPPORT_FULL,
     "VirtualService spec.hosts; a host naming a Service becomes its cluster FQDN"},
    {MESH_FEAT_GATEWAYS, MESH_SUPPORT_FULL,
     "VirtualService spec.gateways; with ingress enabled, a Gateway per name (selector istio: "
     "ingressgateway, port 80 HTTP, the hosts of the VirtualServices naming it)"},
    {MESH_FEAT_MATCH_PATH, MESH_SUPPORT_FULL,
     "http[].match[].uri exact / prefix / regex (RE2); a glob whose one * ends it is a prefix, "
     "any other glob a regex"},
    {MESH_FEAT_MATCH_HEADER_EXACT, MESH_SUPPORT_FULL,
     "http[].match[].headers.NAME.exact / regex; present is regex \".*\", which Istio reads as a "
     "presence match in every release"},
    {MESH_FEAT_MATCH_HEADER_PREFIX, MESH_SUPPORT_FULL, "http[].match[].headers.NAME.prefix"},
    {MESH_FEAT_MATCH_METHOD, MESH_SUPPORT_FULL, "http[].match[].method.exact"},
    {MESH_FEAT_WEIGHTED_SPLIT, MESH_SUPPORT_FULL,
     "http[].route[].weight; versions of one app (labels app and version) are subsets of a "
     "DestinationRule on the app's Service host"},
    {MESH_FEAT_TIMEOUT, MESH_SUPPORT_FULL, "http[].timeout"},
    {MESH_FEAT_RETRIES, MESH_SUPPORT_FULL,
     "http[].retries attempts / perTryTimeout / retryOn (Envoy's condition names, as ours); no "
     "retries is attempts: 0, since Istio retries twice by default"},
    {MESH_FEAT_FAULT_DELAY, MESH_SUPPORT_PARTIAL,
     "a delay on one destination of a weighted route, or a second fault on a route that has "
     "one: Istio decides one fault per route before it picks the destination (a delay on a "
     "VirtualService, one of its routes or a Service is http[].fault.delay)"},
    {MESH_FEAT_FAULT_ABORT, MESH_SUPPORT_PARTIAL,
     "an abort on one destination of a weighted route, or a second fault on a route that has "
     "one: Istio decides one fault per route before it picks the destination (an abort on a "
     "VirtualService, one of its routes or a Service is http[].fault.abort)"},
    {MESH_FEAT_MAX_CONNECTIONS, MESH_SUPPORT_FULL,
     "DestinationRule trafficPolicy.connectionPool.tcp.maxConnections"},
    {MESH_FEAT_MAX_PENDING, MESH_SUPPORT_FULL,
     "DestinationRule trafficPolicy.connectionPool.http.http1MaxPendingRequests"},
    {MESH_FEAT_MAX_REQUESTS, MESH_SUPPORT_FULL,
     "DestinationRule trafficPolicy.connectionPool.http.http2MaxRequests"},
    {MESH_FEAT_MAX_RETRIES, MESH_SUPPORT_FULL,
     "DestinationRule trafficPolicy.connectionPool.http.maxRetries"},
    {MESH_FEAT_OUTLIER_CONSECUTIVE, MESH_SUPPORT_FULL,
     "DestinationRule trafficPolicy.outlierDetection.consecutive5xxErrors / baseEjectionTime / "
     "maxEjectionPercent (ours, 50 unless set)"},
    {MESH_FEAT_OUTLIER_INTERVAL, MESH_SUPPORT_FULL,
     "DestinationRule trafficPolicy.outlierDetection.interval"},
    {MESH_FEAT_MTLS_STRICT, MESH_SUPPORT_FULL,
     "PeerAuthentication mtls.mode STRICT, plus DestinationRule trafficPolicy.tls.mode "
     "ISTIO_MUTUAL when mtls.auto_upgrade is off; Istio has one CA for the mesh, so a policy's "
     "certificate_authority is a warning"},
    {MESH_FEAT_MTLS_PERMISSIVE, MESH_SUPPORT_FULL,
     "PeerAuthentication mtls.mode PERMISSIVE (also Istio's default)"},
    {MESH_FEAT_MTLS_DISABLE, MESH_SUPPORT_FULL,
     "PeerAuthentication mtls.mode DISABLE; MeshConfig mtls.enabled: false is a mesh-wide one in "
     "istio-system"},
    {MESH_FEAT_AUTHZ, MESH_SUPPORT_FULL,
     "AuthorizationPolicy action ALLOW per covered workload (selector app, version): "
     "from[].source.principals TRUST-DOMAIN/ns/NS/sa/SA, to[].operation.methods / paths"},
    {MESH_FEAT_TRACING_SAMPLING, MESH_SUPPORT_FULL,
     "Telemetry mesh-default in istio-system: tracing[].randomSamplingPercentage"},
    {MESH_FEAT_PROXY_RESOURCES, MESH_SUPPORT_NONE,
     "Istio sets sidecar resources per pod (annotations sidecar.istio.io/proxyCPU, proxyMemory "
     "on the workload) or at installation (values.global.proxy.resources), never in a mesh "
     "resource"},
};

/* One of our Services, as the translation sees it. */
struct svc {
    const struct mesh_service *src;
    const char *name, *ns;
    const char *app, *version; /* labels; NULL when absent */
    char *fqdn;                /* name.ns.svc.DOMAIN */
    char *subset;              /* its subset of the app's host, or NULL: reached by its own host */
    const struct mesh_circuit_breaker *cb;
    int cb_rank; /* 2: the breaker names the Service; 1: it names a VirtualService routing here */
    bool mutual; /* clients must ask for ISTIO_MUTUAL (auto-mTLS off, mode strict) */
    const struct mesh_fault_injection *fault; /* a FaultInjection naming the Service */
    bool host_routed;   /* a VirtualService served by sidecars names its host */
    bool subset_routed; /* some route sends traffic to its subset */
};

/* A Gateway to write: the hosts of the VirtualServices naming it. */
struct gateway {
    char *ns, *name;
    struct mesh_string_list hosts;
};

/* The resources of one kind, sorted by namespace and name so that every choice below is the same
 * whatever the order of the input. */
struct kind_list {
    const struct mesh_resource **items;
    size_t len;
};

struct ctx {
    const struct mesh_translate_options *opt;
    struct mesh_translation *out;
    char **errmsg;
    const char *domain;
    bool v1;                           /* Istio >= 1.22 */
    const struct mesh_mesh_config *mc; /* the MeshConfig naming istio, or NULL */
    struct kind_list kinds[MESH_KIND_COUNT];
    struct svc *svcs;
    size_t n_svcs;
    struct gateway *gateways;
    size_t n_gateways, cap_gateways;
};

/* --- small helpers --- */

static const char *ns_of(const struct mesh_resource *res)
{
    return mesh_resource_namespace(res);
}

const char *mesh_istio_label(const struct mesh_labels *labels, const char *key)
{
    for (size_t i = 0; i < labels->len; i++)
        if (labels->items[i].key && strcmp(labels->items[i].key, key) == 0)
            return labels->items[i].value;
    return NULL;
}

static bool span_is(const char *p, size_t n, const char *s)
{
    return strncmp(p, s, n) == 0 && s[n] == '\0';
}

static const char *net_api(const struct ctx *c)
{
    return c->v1 ? "networking.istio.io/v1" : "networking.istio.io/v1beta1";
}

static const char *sec_api(const struct ctx *c)
{
    return c->v1 ? "security.istio.io/v1" : "security.istio.io/v1beta1";
}

static const char *tel_api(const struct ctx *c)
{
    return c->v1 ? "telemetry.istio.io/v1" : "telemetry.istio.io/v1alpha1";
}

static void set_str(struct mesh_node *map, const char *key, const char *value)
{
    mesh_node_map_set(map, key, mesh_node_str(value));
}

static struct mesh_node *child_map(struct mesh_node *map, const char *key)
{
    struct mesh_node *n = mesh_node_map_get(map, key);
    if (!n) {
        n = mesh_node_map();
        mesh_node_map_set(map, key, n);
    }
    return n;
}

static struct mesh_node *str_seq(const char *const *items, size_t n)
{
    struct mesh_node *seq = mesh_node_seq();
    for (size_t i = 0; i < n; i++)
        mesh_node_seq_append(seq, mesh_node_str(items[i]));
    return seq;
}

static void set_duration(struct mesh_node *map, const char *key, unsigned long long ms)
{
    char buf[32];
    mesh_translate_duration(ms, buf, sizeof(buf));
    set_str(map, key, buf);
}

/* A percentage (unset reads as 100); a whole one prints as an integer. */
static struct mesh_node *percent_value(double p)
{
    if (p == MESH_UNSET)
        p = 100;
    if (p == floor(p) && p >= 0 && p <= 100)
        return mesh_node_int((long long)p);
    return mesh_node_float(p);
}

/* {value: P}, Istio's Percent. */
static struct mesh_node *percentage(double p)
{
    struct mesh_node *m = mesh_node_map();
    mesh_node_map_set(m, "value", percent_value(p));
    return m;
}

static void set_fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_fail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    free(*c->errmsg);
    *c->errmsg = xstrdup(buf);
}

/* A warning in the form of the table's ("KIND NS/NAME FIELD: istio cannot express ..."), for
 * what has no row of its own and never stops the translation. */
static void warn(struct ctx *c, const struct mesh_resource *res, const char *path, const char *what,
                 const char *why)
{
    mesh_diags_add(&c->out->warnings, NULL, 0, 0, path, "%s %s/%s %s: istio cannot express %s: %s",
                   mesh_kind_name(res->kind), ns_of(res), res->name ? res->name : "", path, what,
                   why);
}

static enum mesh_err refuse(struct ctx *c, const struct mesh_resource *res, const char *path,
                            enum mesh_feature f)
{
    return mesh_translation_refuse(&mesh_translator_istio, c->opt, c->out, res, path, f, c->errmsg);
}

/* --- the version asked for --- */

/* minor: Istio 1.MINOR; a later major reads as the newest. */
static enum mesh_err parse_version(const char *text, unsigned long *minor, char **errmsg)
{
    const char *p = text[0] == 'v' ? text + 1 : text;
    char *end = NULL;
    unsigned long major = 0, mn = 0;
    bool ok = isdigit((unsigned char)p[0]);
    if (ok) {
        major = strtoul(p, &end, 10);
        ok = *end == '.' && isdigit((unsigned char)end[1]);
    }
    if (ok) {
        mn = strtoul(end + 1, &end, 10);
        ok = *end == '\0' || *end == '.';
    }
    if (!ok) {
        *errmsg =
            xasprintf("istio version \"%s\" is not a version: write MAJOR.MINOR, as 1.22", text);
        return MESH_E_INVALID;
    }
    if (major == 0 || (major == 1 && mn < ISTIO_OLDEST_MINOR)) {
        *errmsg = xasprintf("istio %s is older than 1.%d, the oldest Istio the translation "
                            "writes for (older releases balance round robin by default, where the "
                            "mesh balances by least request)",
                            text, ISTIO_OLDEST_MINOR);
        return MESH_E_UNSUPPORTED;
    }
    *minor = major > 1 ? (unsigned long)-1 : mn;
    return MESH_OK;
}

/* --- sorting the input --- */

static int compare_resources(const void *pa, const void *pb)
{
    const struct mesh_resource *a = *(const struct mesh_resource *const *)pa;
    const struct mesh_resource *b = *(const struct mesh_resource *const *)pb;
    int d = strcmp(ns_of(a), ns_of(b));
    return d ? d : strcmp(a->name ? a->name : "", b->name ? b->name : "");
}

static void sort_input(struct ctx *c, const struct mesh_resource *const *res, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!res[i] || (int)res[i]->kind < 0 || res[i]->kind >= MESH_KIND_COUNT)
            continue;
        struct kind_list *l = &c->kinds[res[i]->kind];
        l->items = xrealloc(l->items, (l->len + 1) * sizeof(*l->items));
        l->items[l->len++] = res[i];
    }
    for (int k = 0; k < MESH_KIND_COUNT; k++)
        if (c->kinds[k].len > 1)
            qsort(c->kinds[k].items, c->kinds[k].len, sizeof(*c->kinds[k].items),
                  compare_resources);
}

static size_t count(const struct ctx *c, enum mesh_kind kind)
{
    return c->kinds[kind].len;
}

/* The i-th resource of kind, as its own struct (struct mesh_resource comes first in each). */
static const void *item(const struct ctx *c, enum mesh_kind kind, size_t i)
{
    return c->kinds[kind].items[i];
}

/* --- Services --- */

char *mesh_istio_subset_name(const char *version)
{
    size_t n = strlen(version);
    char *s = xmalloc(n + 2);
    size_t len = 0;
    for (size_t i = 0; i < n && len < 63; i++) {
        unsigned char ch = (unsigned char)tolower((unsigned char)version[i]);
        s[len++] = isalnum(ch) ? (char)ch : '-';
    }
    s[len] = '\0';
    while (len && s[len - 1] == '-')
        s[--len] = '\0';
    size_t lead = strspn(s, "-");
    memmove(s, s + lead, len - lead + 1);
    if (!s[0])
        strcpy(s, "v");
    return s;
}

char *mesh_istio_subset(const struct mesh_istio_workload *w, size_t n, size_t i)
{
    const struct mesh_istio_workload *s = &w[i];
    if (!s->app || !s->version || strcmp(s->app, s->name) == 0)
        return NULL;
    char *name = mesh_istio_subset_name(s->version);
    bool unique = true;
    for (size_t j = 0; j < n && unique; j++) {
        const struct mesh_istio_workload *o = &w[j];
        if (j == i || !o->app || !o->version || strcmp(o->ns, s->ns) != 0 ||
            strcmp(o->app, s->app) != 0)
            continue;
        char *other = mesh_istio_subset_name(o->version);
        unique = strcmp(other, name) != 0;
        free(other);
    }
    if (unique)
        return name;
    free(name);
    return NULL;
}

static void build_services(struct ctx *c)
{
    struct kind_list *l = &c->kinds[MESH_KIND_SERVICE];
    c->svcs = xcalloc(l->len ? l->len : 1, sizeof(*c->svcs));
    c->n_svcs = l->len;
    struct mesh_istio_workload *w = xcalloc(l->len ? l->len : 1, sizeof(*w));
    for (size_t i = 0; i < l->len; i++) {
        struct svc *s = &c->svcs[i];
        s->src = (const struct mesh_service *)l->items[i];
        s->name = s->src->res.name;
        s->ns = ns_of(&s->src->res);
        s->app = mesh_istio_label(&s->src->res.labels, "app");
        s->version = mesh_istio_label(&s->src->res.labels, "version");
        s->fqdn = xasprintf("%s.%s.svc.%s", s->name, s->ns, c->domain);
        w[i] = (struct mesh_istio_workload){s->name, s->ns, s->app, s->version};
    }
    for (size_t i = 0; i < c->n_svcs; i++)
        c->svcs[i].subset = mesh_istio_subset(w, c->n_svcs, i);
    free(w);
}

static struct svc *svc_by_ref(struct ctx *c, const struct mesh_service_ref *ref)
{
    for (size_t i = 0; i < c->n_svcs; i++)
        if (mesh_service_ref_is(ref, c->svcs[i].name, c->svcs[i].ns))
            return &c->svcs[i];
    return NULL;
}

/* The Service a destination host (name, name.ns, name.ns.svc[.cluster.local]) names. */
static struct svc *find_svc(struct ctx *c, const char *host, const char *default_ns)
{
    struct mesh_service_ref ref;
    if (!host || !mesh_service_host_split(host, default_ns, &ref))
        return NULL;
    return svc_by_ref(c, &ref);
}

static struct svc *find_svc_named(struct ctx *c, const char *name, const char *ns)
{
    for (size_t i = 0; i < c->n_svcs; i++)
        if (strcmp(c->svcs[i].name, name) == 0 && strcmp(c->svcs[i].ns, ns) == 0)
            return &c->svcs[i];
    return NULL;
}

/* The host a route sends s's traffic to: the app's Service for a subset, else its own. */
static char *svc_route_host(const struct ctx *c, const struct svc *s)
{
    return s->subset ? xasprintf("%s.%s.svc.%s", s->app, s->ns, c->domain) : xstrdup(s->fqdn);
}

/* The Service a VirtualService host names, read as our proxy reads it: a two-label host is
 * name.namespace only in the VirtualService's own namespace, so that example.com stays a DNS
 * name. Fills ref. */
static bool vs_host_ref(const char *host, const char *vs_ns, struct mesh_service_ref *ref)
{
    if (strchr(host, '*') || !mesh_service_host_split(host, vs_ns, ref))
        return false;
    const char *dot = strchr(host, '.');
    return !(dot && !strchr(dot + 1, '.') && strcmp(dot + 1, vs_ns) != 0);
}

static const struct mesh_virtual_service *find_vs(struct ctx *c, const char *name, const char *ns)
{
    for (size_t vs_i = 0; vs_i < count(c, MESH_KIND_VIRTUAL_SERVICE); vs_i++) {
        const struct mesh_virtual_service *vs = item(c, MESH_KIND_VIRTUAL_SERVICE, vs_i);
        if (strcmp(vs->res.name, name) == 0 && strcmp(ns_of(&vs->res), ns) == 0)
            return vs;
    }
    return NULL;
}

/* Whether sidecars serve vs: no gateways, or Istio's reserved "mesh" among them. */
static bool vs_in_mesh(const struct mesh_virtual_service *vs)
{
    for (size_t i = 0; i < vs->gateways.len; i++)
        if (strcmp(vs->gateways.items[i], "mesh") == 0)
            return true;
    return vs->gateways.len == 0;
}

/* --- circuit breakers and faults: what each Service gets --- */

static void give_breaker(struct svc *s, const struct mesh_circuit_breaker *cb, int rank)
{
    /* The breakers come in name order: the first of the highest rank keeps the Service. */
    if (!s->cb || s->cb_rank < rank) {
        s->cb = cb;
        s->cb_rank = rank;
    }
}

static enum mesh_err resolve_breakers(struct ctx *c)
{
    for (size_t cb_i = 0; cb_i < count(c, MESH_KIND_CIRCUIT_BREAKER); cb_i++) {
        const struct mesh_circuit_breaker *cb = item(c, MESH_KIND_CIRCUIT_BREAKER, cb_i);
        const char *ns = ns_of(&cb->res);
        struct svc *s = find_svc(c, cb->service, ns);
        if (s) {
            give_breaker(s, cb, 2);
            continue;
        }
        const struct mesh_virtual_service *vs = cb->service ? find_vs(c, cb->service, ns) : NULL;
        if (!vs) {
            set_fail(c,
                     "CircuitBreaker %s/%s spec.service: \"%s\" names no Service or "
                     "VirtualService of the input",
                     ns, cb->res.name, cb->service ? cb->service : "");
            return MESH_E_INVALID;
        }
        for (size_t r = 0; r < vs->n_http_routes; r++)
            for (size_t d = 0; d < vs->http_routes[r].n_destinations; d++) {
                s = find_svc(c, vs->http_routes[r].destinations[d].host, ns);
                if (s)
                    give_breaker(s, cb, 1);
            }
    }
    return MESH_OK;
}

static enum mesh_err resolve_faults(struct ctx *c)
{
    for (size_t fi_i = 0; fi_i < count(c, MESH_KIND_FAULT_INJECTION); fi_i++) {
        const struct mesh_fault_injection *fi = item(c, MESH_KIND_FAULT_INJECTION, fi_i);
        const char *ns = ns_of(&fi->res);
        const struct mesh_virtual_service *vs = fi->service ? find_vs(c, fi->service, ns) : NULL;
        struct svc *s = find_svc(c, fi->service, ns);
        if (!vs && !s) {
            set_fail(c,
                     "FaultInjection %s/%s spec.service: \"%s\" names no Service or "
                     "VirtualService of the input",
                     ns, fi->res.name, fi->service ? fi->service : "");
            return MESH_E_INVALID;
        }
        if (vs && fi->route) {
            bool found = false;
            for (size_t r = 0; r < vs->n_http_routes && !found; r++)
                found = vs->http_routes[r].name && strcmp(vs->http_routes[r].name, fi->route) == 0;
            if (!found) {
                set_fail(c,
                         "FaultInjection %s/%s spec.route: VirtualService %s/%s has no route "
                         "named \"%s\"",
                         ns, fi->res.name, ns, vs->res.name, fi->route);
                return MESH_E_INVALID;
            }
        }
        /* As our proxy does: a Service's fault applies to its cluster, a VirtualService's to its
         * routes; a name that is both gets both. The first by name wins a Service. */
        if (s && !s->fault)
            s->fault = fi;
    }
    return MESH_OK;
}

/* --- mTLS modes --- */

/* --- VirtualService --- */

char *mesh_istio_glob_regex(const char *glob)
{
    size_t n = strlen(glob);
    char *re = xmalloc(2 * n + 1);
    size_t len = 0;
    for (const char *p = glob; *p; p++) {
        if (*p == '*') {
            re[len++] = '.';
            re[len++] = '*';
        } else {
            if (strchr(MESH_ISTIO_REGEX_META, *p))
                re[len++] = '\\';
            re[len++] = *p;
        }
    }
    re[len] = '\0';
    return re;
}

static struct mesh_node *uri_match(const struct mesh_path_match *pm)
{
    struct mesh_node *uri = mesh_node_map();
    const char *v = pm->value ? pm->value : "";
    switch (pm->kind) {
    case MESH_PATH_EXACT:
        set_str(uri, "exact", v);
        break;
    case MESH_PATH_PREFIX:
        set_str(uri, "prefix", v);
        break;
    case MESH_PATH_REGEX:
        set_str(uri, "regex", v);
        break;
    case MESH_PATH_GLOB: {
        const char *star = strchr(v, '*');
        if (star && star[1] == '\0') {
            char *prefix = xstrndup(v, (size_t)(star - v));
            set_str(uri, "prefix", prefix);
            free(prefix);
        } else {
            char *re = mesh_istio_glob_regex(v);
            set_str(uri, "regex", re);
            free(re);
        }
        break;
    }
    case MESH_PATH_ANY:
        break;
    }
    return uri;
}

/* One match, or NULL when it matches every request (Istio refuses an empty match). */
static struct mesh_node *route_match(const struct mesh_route_match *m)
{
    if (m->path.kind == MESH_PATH_ANY && !m->n_headers && !m->method)
        return NULL;
    struct mesh_node *out = mesh_node_map();
    if (m->path.kind != MESH_PATH_ANY)
        mesh_node_map_set(out, "uri", uri_match(&m->path));
    if (m->n_headers) {
        struct mesh_node *headers = mesh_node_map();
        for (size_t h = 0; h < m->n_headers; h++) {
            const struct mesh_header_match *hm = &m->headers[h];
            /* Istio wants header names in lower case; ours match case-insensitively anyway. */
            char *name = xstrdup(hm->name);
            for (char *p = name; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            struct mesh_node *sm = mesh_node_map();
            switch (hm->kind) {
            case MESH_HEADER_EXACT:
                set_str(sm, "exact", hm->value ? hm->value : "");
                break;
            case MESH_HEADER_PREFIX:
                set_str(sm, "prefix", hm->value ? hm->value : "");
                break;
            case MESH_HEADER_REGEX:
                set_str(sm, "regex", hm->value ? hm->value : "");
                break;
            case MESH_HEADER_PRESENT:
                /* Envoy never matches a value against an absent header, and Istio has turned
                 * ".*" into a presence match since 1.5, whereas "{}" only works from 1.20. */
                set_str(sm, "regex", ".*");
                break;
            }
            mesh_node_map_set(headers, name, sm);
            free(name);
        }
        mesh_node_map_set(out, "headers", headers);
    }
    if (m->method) {
        struct mesh_node *method = mesh_node_map();
        set_str(method, "exact", m->method);
        mesh_node_map_set(out, "method", method);
    }
    return out;
}

static struct mesh_node *fault_node(const struct mesh_fault *f)
{
    struct mesh_node *fault = mesh_node_map();
    if (f->delay_ms) {
        struct mesh_node *delay = mesh_node_map();
        set_duration(delay, "fixedDelay", f->delay_ms);
        /* Spelled out: Istio reads a missing percentage as "no request". */
        mesh_node_map_set(delay, "percentage", percentage(f->delay_percentage));
        mesh_node_map_set(fault, "delay", delay);
    }
    if (f->abort.http_status) {
        struct mesh_node *abort = mesh_node_map();
        mesh_node_map_set(abort, "httpStatus", mesh_node_int(f->abort.http_status));
        mesh_node_map_set(abort, "percentage", percentage(f->abort.percentage));
        mesh_node_map_set(fault, "abort", abort);
    }
    return fault;
}

static struct mesh_node *retries_node(const struct mesh_retry_policy *rp)
{
    struct mesh_node *retries = mesh_node_map();
    mesh_node_map_set(retries, "attempts", mesh_node_int(rp->attempts));
    if (!rp->attempts)
        return retries;
    if (rp->per_try_timeout_ms)
        set_duration(retries, "perTryTimeout", rp->per_try_timeout_ms);
    if (rp->retry_on.len) {
        size_t len = 1;
        for (size_t i = 0; i < rp->retry_on.len; i++)
            len += strlen(rp->retry_on.items[i]) + 1;
        char *on = xcalloc(len, 1);
        for (size_t i = 0; i < rp->retry_on.len; i++) {
            if (i)
                strcat(on, ",");
            strcat(on, rp->retry_on.items[i]);
        }
        set_str(retries, "retryOn", on);
        free(on);
    } else {
        set_str(retries, "retryOn", OUR_DEFAULT_RETRY_ON);
    }
    return retries;
}

/* The FaultInjection for route r of vs: one naming that route beats one for the whole
 * VirtualService; among equals, the first by name. */
static const struct mesh_fault_injection *vs_route_fault(struct ctx *c,
                                                         const struct mesh_virtual_service *vs,
                                                         const struct mesh_http_route *r)
{
    const struct mesh_fault_injection *whole = NULL;
    for (size_t fi_i = 0; fi_i < count(c, MESH_KIND_FAULT_INJECTION); fi_i++) {
        const struct mesh_fault_injection *fi = item(c, MESH_KIND_FAULT_INJECTION, fi_i);
        if (!fi->service || strcmp(fi->service, vs->res.name) != 0 ||
            strcmp(ns_of(&fi->res), ns_of(&vs->res)) != 0)
            continue;
        if (!fi->route)
            whole = whole ? whole : fi;
        else if (r->name && strcmp(fi->route, r->name) == 0)
            return fi;
    }
    return whole;
}

static enum mesh_feature fault_feature(const struct mesh_fault_injection *fi)
{
    return fi->fault.delay_ms ? MESH_FEAT_FAULT_DELAY : MESH_FEAT_FAULT_ABORT;
}

static void add_gateway_hosts(struct ctx *c, const struct mesh_virtual_service *vs,
                              const struct mesh_node *hosts)
{
    for (size_t g = 0; g < vs->gateways.len; g++) {
        const char *ref = vs->gateways.items[g];
        const char *slash = strchr(ref, '/');
        char *ns = slash ? xstrndup(ref, (size_t)(slash - ref)) : xstrdup(ns_of(&vs->res));
        const char *name = slash ? slash + 1 : ref;
        if (strcmp(name, "mesh") == 0) {
            free(ns);
            continue;
        }
        struct gateway *gw = NULL;
        for (size_t i = 0; i < c->n_gateways && !gw; i++)
            if (strcmp(c->gateways[i].ns, ns) == 0 && strcmp(c->gateways[i].name, name) == 0)
                gw = &c->gateways[i];
        if (!gw) {
            xgrow((void **)&c->gateways, &c->cap_gateways, c->n_gateways + 1, sizeof(*c->gateways));
            gw = &c->gateways[c->n_gateways++];
            memset(gw, 0, sizeof(*gw));
            gw->ns = ns;
            gw->name = xstrdup(name);
            ns = NULL; /* the gateway owns it now */
        }
        free(ns);
        for (size_t h = 0; h < hosts->len; h++) {
            const char *host = hosts->items[h]->text;
            bool seen = false;
            for (size_t i = 0; i < gw->hosts.len && !seen; i++)
                seen = strcmp(gw->hosts.items[i], host) == 0;
            if (!seen)
                mesh_string_list_add(&gw->hosts, host);
        }
    }
}

/* The faults of one route: the VirtualService's own, else a Service's when every destination is
 * that Service. Anything else would need a fault per destination: refused. */
static enum mesh_err route_fault(struct ctx *c, const struct mesh_virtual_service *vs,
                                 const struct mesh_http_route *r, struct svc *const *dests,
                                 struct mesh_node *http)
{
    const struct mesh_fault_injection *fi = vs_route_fault(c, vs, r);
    bool one_service = true;
    for (size_t d = 1; d < r->n_destinations; d++)
        one_service = one_service && dests[d] == dests[0];
    for (size_t d = 0; d < r->n_destinations; d++) {
        const struct mesh_fault_injection *sf = dests[d]->fault;
        bool seen = false;
        for (size_t e = 0; e < d && !seen; e++)
            seen = dests[e]->fault == sf;
        /* A FaultInjection named after both a VirtualService and a Service is one fault. */
        if (!sf || seen || sf == fi)
            continue;
        if (!fi && one_service) {
            fi = sf;
            continue;
        }
        enum mesh_err err = refuse(c, &sf->res, "spec.service", fault_feature(sf));
        if (err != MESH_OK)
            return err;
    }
    if (fi)
        mesh_node_map_set(http, "fault", fault_node(&fi->fault));
    return MESH_OK;
}

static enum mesh_err translate_route(struct ctx *c, const struct mesh_virtual_service *vs,
                                     size_t index, struct mesh_node *http)
{
    const struct mesh_http_route *r = &vs->http_routes[index];
    const char *ns = ns_of(&vs->res);
    enum mesh_err err = MESH_OK;
    struct svc **dests = xcalloc(r->n_destinations ? r->n_destinations : 1, sizeof(*dests));

    for (size_t d = 0; d < r->n_destinations; d++) {
        dests[d] = find_svc(c, r->destinations[d].host, ns);
        if (!dests[d]) {
            set_fail(c,
                     "VirtualService %s/%s spec.http_routes[%zu].destinations[%zu].host: \"%s\" "
                     "names no Service of the input (Istio routes to Kubernetes Services: give "
                     "the Service resource)",
                     ns, vs->res.name, index, d, r->destinations[d].host);
            err = MESH_E_INVALID;
            goto out;
        }
    }
    if (r->name)
        set_str(http, "name", r->name);
    struct mesh_node *matches = mesh_node_seq();
    bool any = r->n_matches == 0;
    for (size_t m = 0; m < r->n_matches && !any; m++) {
        struct mesh_node *match = route_match(&r->matches[m]);
        if (match)
            mesh_node_seq_append(matches, match);
        else
            any = true; /* one match takes every request: the route needs no condition */
    }
    if (any)
        mesh_node_free(matches);
    else
        mesh_node_map_set(http, "match", matches);

    struct mesh_node *route = mesh_node_seq();
    for (size_t d = 0; d < r->n_destinations; d++) {
        struct mesh_node *rd = mesh_node_map();
        struct mesh_node *dest = mesh_node_map();
        char *host = svc_route_host(c, dests[d]);
        set_str(dest, "host", host);
        free(host);
        if (dests[d]->subset) {
            set_str(dest, "subset", dests[d]->subset);
            dests[d]->subset_routed = true;
        }
        mesh_node_map_set(rd, "destination", dest);
        int w = r->destinations[d].weight;
        if (r->n_destinations > 1 || w != MESH_UNSET)
            mesh_node_map_set(rd, "weight", mesh_node_int(w == MESH_UNSET ? 0 : w));
        mesh_node_seq_append(route, rd);
    }
    mesh_node_map_set(http, "route", route);
    if (r->timeout_ms)
        set_duration(http, "timeout", r->timeout_ms);
    mesh_node_map_set(http, "retries", retries_node(&r->retries));
    err = route_fault(c, vs, r, dests, http);
out:
    free(dests);
    return err;
}

static enum mesh_err translate_vs(struct ctx *c, const struct mesh_virtual_service *vs)
{
    const char *ns = ns_of(&vs->res);
    struct mesh_node *spec = NULL;
    mesh_translation_add(c->out, net_api(c), "VirtualService", vs->res.name, ns, &vs->res, &spec);
    struct mesh_node *hosts = mesh_node_seq();
    for (size_t h = 0; h < vs->hosts.len; h++) {
        struct mesh_service_ref ref;
        const char *host = vs->hosts.items[h];
        if (vs_host_ref(host, ns, &ref)) {
            char *fqdn = xasprintf("%.*s.%.*s.svc.%s", (int)ref.name_len, ref.name, (int)ref.ns_len,
                                   ref.ns, c->domain);
            mesh_node_seq_append(hosts, mesh_node_str(fqdn));
            free(fqdn);
        } else {
            mesh_node_seq_append(hosts, mesh_node_str(host));
        }
    }
    mesh_node_map_set(spec, "hosts", hosts);
    if (vs->gateways.len) {
        mesh_node_map_set(spec, "gateways",
                          str_seq((const char *const *)vs->gateways.items, vs->gateways.len));
        add_gateway_hosts(c, vs, hosts);
    }
    struct mesh_node *http = mesh_node_seq();
    mesh_node_map_set(spec, "http", http);
    for (size_t r = 0; r < vs->n_http_routes; r++) {
        struct mesh_node *h = mesh_node_map();
        mesh_node_seq_append(http, h);
        enum mesh_err err = translate_route(c, vs, r, h);
        if (err != MESH_OK)
            return err;
    }
    return MESH_OK;
}

/* A Service with a fault of its own that no sidecar-served VirtualService names: a
 * VirtualService on its host carries the fault, as our proxy's direct route to it does. */
static void translate_service_fault(struct ctx *c, const struct svc *s)
{
    const struct mesh_fault_injection *fi = s->fault;
    char *name = find_vs(c, fi->res.name, s->ns) ? xasprintf("%s-fault", fi->res.name)
                                                 : xstrdup(fi->res.name);
    struct mesh_node *spec = NULL;
    mesh_translation_add(c->out, net_api(c), "VirtualService", name, s->ns, &fi->res, &spec);
    free(name);
    const char *host = s->fqdn;
    mesh_node_map_set(spec, "hosts", str_seq(&host, 1));
    struct mesh_node *h = mesh_node_map();
    struct mesh_node *rd = mesh_node_map();
    struct mesh_node *dest = mesh_node_map();
    set_str(dest, "host", s->fqdn);
    mesh_node_map_set(rd, "destination", dest);
    struct mesh_node *route = mesh_node_seq();
    mesh_node_seq_append(route, rd);
    mesh_node_map_set(h, "route", route);
    struct mesh_retry_policy none = {0};
    mesh_node_map_set(h, "retries", retries_node(&none));
    mesh_node_map_set(h, "fault", fault_node(&fi->fault));
    struct mesh_node *http = mesh_node_seq();
    mesh_node_seq_append(http, h);
    mesh_node_map_set(spec, "http", http);
}

/* --- DestinationRule --- */

/* Whether two Services need the same traffic policy. */
static bool same_policy(const struct svc *a, const struct svc *b)
{
    const char *la = a->src->load_balancer, *lb = b->src->load_balancer;
    return a->cb == b->cb && a->mutual == b->mutual && (la && lb ? strcmp(la, lb) == 0 : la == lb);
}

static bool has_policy(const struct svc *s)
{
    return s->cb || s->mutual || s->src->load_balancer;
}

/* s's trafficPolicy: breaker limits, outlier detection, ISTIO_MUTUAL, load balancer. */
static struct mesh_node *traffic_policy(const struct ctx *c, const struct svc *s)
{
    struct mesh_node *tp = mesh_node_map();
    const char *lb = s->src->load_balancer;
    if (lb) {
        const char *simple = strcmp(lb, "round_robin") == 0 ? "ROUND_ROBIN"
                             : strcmp(lb, "random") == 0    ? "RANDOM"
                             : c->v1                        ? "LEAST_REQUEST"
                                                            : "LEAST_CONN"; /* its older name */
        set_str(child_map(tp, "loadBalancer"), "simple", simple);
    }
    if (s->cb) {
        const struct mesh_circuit_breaker_config *cfg = &s->cb->config;
        if (cfg->max_connections || cfg->max_pending_requests || cfg->max_requests ||
            cfg->max_retries) {
            struct mesh_node *pool = child_map(tp, "connectionPool");
            if (cfg->max_connections)
                mesh_node_map_set(child_map(pool, "tcp"), "maxConnections",
                                  mesh_node_int(cfg->max_connections));
            if (cfg->max_pending_requests)
                mesh_node_map_set(child_map(pool, "http"), "http1MaxPendingRequests",
                                  mesh_node_int(cfg->max_pending_requests));
            if (cfg->max_requests)
                mesh_node_map_set(child_map(pool, "http"), "http2MaxRequests",
                                  mesh_node_int(cfg->max_requests));
            if (cfg->max_retries)
                mesh_node_map_set(child_map(pool, "http"), "maxRetries",
                                  mesh_node_int(cfg->max_retries));
        }
        const struct mesh_outlier_detection *od = &cfg->detection;
        /* Our proxy detects outliers only when consecutive_errors is set. */
        if (od->consecutive_errors) {
            struct mesh_node *o = child_map(tp, "outlierDetection");
            mesh_node_map_set(o, "consecutive5xxErrors", mesh_node_int(od->consecutive_errors));
            if (od->interval_ms)
                set_duration(o, "interval", od->interval_ms);
            if (od->base_ejection_time_ms)
                set_duration(o, "baseEjectionTime", od->base_ejection_time_ms);
            int pct = od->max_ejection_percent == MESH_UNSET ? OUR_MAX_EJECTION_PERCENT
                                                             : od->max_ejection_percent;
            mesh_node_map_set(o, "maxEjectionPercent", mesh_node_int(pct));
        }
    }
    if (s->mutual)
        set_str(child_map(tp, "tls"), "mode", "ISTIO_MUTUAL");
    return tp;
}

static const struct mesh_resource *policy_source(const struct svc *s)
{
    return s->cb ? &s->cb->res : &s->src->res;
}

static int compare_subset_members(const void *pa, const void *pb)
{
    const struct svc *a = *(const struct svc *const *)pa;
    const struct svc *b = *(const struct svc *const *)pb;
    return strcmp(a->subset, b->subset);
}

/* The DestinationRule of app's host in ns: its versions as subsets, and the traffic policy at
 * the top when they share it (or the app's own Service has one), else per subset. */
static void translate_app_rule(struct ctx *c, const char *app, const char *ns)
{
    struct svc **members = xcalloc(c->n_svcs, sizeof(*members));
    size_t n = 0;
    for (size_t i = 0; i < c->n_svcs; i++) {
        struct svc *s = &c->svcs[i];
        if (s->subset && strcmp(s->ns, ns) == 0 && strcmp(s->app, app) == 0)
            members[n++] = s;
    }
    qsort(members, n, sizeof(*members), compare_subset_members);
    const struct svc *own = find_svc_named(c, app, ns);
    const struct svc *top = own && has_policy(own) ? own : NULL;
    bool shared = !top && has_policy(members[0]);
    for (size_t i = 1; i < n && shared; i++)
        shared = same_policy(members[i], members[0]);
    if (shared)
        top = members[0];

    const struct mesh_resource *src = top ? policy_source(top) : NULL;
    for (size_t i = 0; i < n && !src; i++)
        if (members[i]->cb)
            src = &members[i]->cb->res;
    if (!src)
        src = own ? &own->src->res : &members[0]->src->res;
    struct mesh_node *spec = NULL;
    mesh_translation_add(c->out, net_api(c), "DestinationRule", app, ns, src, &spec);
    char *host = svc_route_host(c, members[0]);
    set_str(spec, "host", host);
    free(host);
    if (top)
        mesh_node_map_set(spec, "trafficPolicy", traffic_policy(c, top));
    struct mesh_node *subsets = mesh_node_seq();
    for (size_t i = 0; i < n; i++) {
        struct mesh_node *sub = mesh_node_map();
        set_str(sub, "name", members[i]->subset);
        struct mesh_node *labels = mesh_node_map();
        set_str(labels, "version", members[i]->version);
        mesh_node_map_set(sub, "labels", labels);
        if (!shared && has_policy(members[i]) && !(top && same_policy(members[i], top)))
            mesh_node_map_set(sub, "trafficPolicy", traffic_policy(c, members[i]));
        mesh_node_seq_append(subsets, sub);
    }
    mesh_node_map_set(spec, "subsets", subsets);
    free(members);
}

/* Whether the app rule of (app, ns) is written: some route uses one of its subsets. */
static bool app_rule_needed(const struct ctx *c, const char *app, const char *ns)
{
    for (size_t i = 0; i < c->n_svcs; i++) {
        const struct svc *s = &c->svcs[i];
        if (s->subset && s->subset_routed && strcmp(s->ns, ns) == 0 && strcmp(s->app, app) == 0)
            return true;
    }
    return false;
}

static void translate_rules(struct ctx *c)
{
    /* One rule per app host whose subsets are used, written once (by its first member). */
    for (size_t i = 0; i < c->n_svcs; i++) {
        const struct svc *s = &c->svcs[i];
        if (!s->subset || !app_rule_needed(c, s->app, s->ns))
            continue;
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            first = !(c->svcs[j].subset && strcmp(c->svcs[j].ns, s->ns) == 0 &&
                      strcmp(c->svcs[j].app, s->app) == 0);
        if (first)
            translate_app_rule(c, s->app, s->ns);
    }
    /* Every Service with a policy also has one on its own host: callers that name it directly
     * get the same limits, as they do from our proxy. */
    for (size_t i = 0; i < c->n_svcs; i++) {
        const struct svc *s = &c->svcs[i];
        if (!has_policy(s))
            continue;
        /* The app's own Service shares its host with the app rule, which already holds it. */
        bool merged = false;
        for (size_t j = 0; j < c->n_svcs && !merged; j++)
            merged = c->svcs[j].subset && strcmp(c->svcs[j].app, s->name) == 0 &&
                     strcmp(c->svcs[j].ns, s->ns) == 0 && app_rule_needed(c, s->name, s->ns);
        if (merged)
            continue;
        struct mesh_node *spec = NULL;
        mesh_translation_add(c->out, net_api(c), "DestinationRule", s->name, s->ns,
                             policy_source(s), &spec);
        set_str(spec, "host", s->fqdn);
        mesh_node_map_set(spec, "trafficPolicy", traffic_policy(c, s));
    }
}

/* --- PeerAuthentication and AuthorizationPolicy --- */

/* The workloads a services/to item names, as a selector: a Service that is a version of an app
 * selects {app, version}; another Service its app label (or its name); a name that is no
 * Service of the input the pods labelled app: NAME (which our proxy reads the same way). */
struct selector {
    char *ns;
    char *app;     /* NULL: the whole namespace */
    char *version; /* NULL: every version */
};

static void selector_clear(struct selector *sel)
{
    free(sel->ns);
    free(sel->app);
    free(sel->version);
    memset(sel, 0, sizeof(*sel));
}

static bool selector_for(struct ctx *c, const char *item, const char *policy_ns,
                         struct selector *out)
{
    struct mesh_service_ref ref;
    memset(out, 0, sizeof(*out));
    if (!mesh_service_host_split(item, policy_ns, &ref))
        return false;
    out->ns = xstrndup(ref.ns, ref.ns_len);
    char *name = xstrndup(ref.name, ref.name_len);
    const struct svc *s = find_svc_named(c, name, out->ns);
    if (s && s->app && s->version && strcmp(s->app, s->name) != 0) {
        out->app = xstrdup(s->app);
        out->version = xstrdup(s->version);
    } else {
        out->app = xstrdup(s && s->app ? s->app : name);
    }
    free(name);
    return true;
}

static bool selector_equal(const struct selector *a, const struct selector *b)
{
    return strcmp(a->ns, b->ns) == 0 &&
           (a->app && b->app ? !strcmp(a->app, b->app) : a->app == b->app) &&
           (a->version && b->version ? !strcmp(a->version, b->version) : a->version == b->version);
}

static void set_selector(struct mesh_node *spec, const struct selector *sel)
{
    if (!sel->app)
        return;
    struct mesh_node *labels = mesh_node_map();
    set_str(labels, "app", sel->app);
    if (sel->version)
        set_str(labels, "version", sel->version);
    struct mesh_node *selector = mesh_node_map();
    mesh_node_map_set(selector, "matchLabels", labels);
    mesh_node_map_set(spec, "selector", selector);
}

/* "payment-security", or "payment-security-payment-v1" when one policy makes several. */
static char *object_name(const char *base, const struct selector *sel, bool several)
{
    if (!several || !sel->app)
        return xstrdup(base);
    char *name = sel->version ? xasprintf("%s-%s-%s", base, sel->app, sel->version)
                              : xasprintf("%s-%s", base, sel->app);
    for (char *p = name; *p; p++)
        *p = isalnum((unsigned char)*p) || *p == '-' ? (char)tolower((unsigned char)*p) : '-';
    return name;
}

static const char *mode_name(enum mesh_mtls_mode mode)
{
    return mode == MESH_MTLS_STRICT       ? "STRICT"
           : mode == MESH_MTLS_PERMISSIVE ? "PERMISSIVE"
                                          : "DISABLE";
}

struct peer_entry {
    const struct mesh_security_policy *sp;
    struct selector sel;
    enum mesh_mtls_mode mode;
    bool keep;
};

/* One PeerAuthentication per selector: as in our proxy, a policy naming a workload beats a
 * namespace-wide one (Istio's precedence too), and among policies for the same workloads the
 * strictest wins (Istio would take the oldest, so only the winner is written). */
static void translate_peer_auth(struct ctx *c)
{
    struct peer_entry *e = NULL;
    size_t n = 0, cap = 0;
    for (size_t sp_i = 0; sp_i < count(c, MESH_KIND_SECURITY_POLICY); sp_i++) {
        const struct mesh_security_policy *sp = item(c, MESH_KIND_SECURITY_POLICY, sp_i);
        if (!mesh_mtls_strictness(sp->mtls.mode))
            continue;
        size_t items = sp->services.len ? sp->services.len : 1;
        for (size_t i = 0; i < items; i++) {
            struct selector sel = {0};
            if (!sp->services.len)
                sel.ns = xstrdup(ns_of(&sp->res));
            else if (!selector_for(c, sp->services.items[i], ns_of(&sp->res), &sel))
                continue;
            xgrow((void **)&e, &cap, n + 1, sizeof(*e));
            e[n++] = (struct peer_entry){sp, sel, sp->mtls.mode, true};
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i && e[i].keep; j++)
            if (e[j].keep && selector_equal(&e[i].sel, &e[j].sel)) {
                /* Policies come in name order: a later one replaces only a weaker one. */
                if (mesh_mtls_strictness(e[i].mode) > mesh_mtls_strictness(e[j].mode))
                    e[j].keep = false;
                else
                    e[i].keep = false;
            }
    /* A version's pods are also the app's: the stricter of the two modes is theirs. */
    for (size_t i = 0; i < n; i++) {
        if (!e[i].keep || !e[i].sel.version)
            continue;
        for (size_t j = 0; j < n; j++) {
            if (!e[j].keep || e[j].sel.version || !e[j].sel.app ||
                strcmp(e[j].sel.ns, e[i].sel.ns) != 0 || strcmp(e[j].sel.app, e[i].sel.app) != 0)
                continue;
            if (mesh_mtls_strictness(e[j].mode) >= mesh_mtls_strictness(e[i].mode))
                e[i].mode = e[j].mode;
            else
                warn(c, &e[i].sp->res, "spec.mtls.mode",
                     "a stricter mode for one version of an app than for the app",
                     "Istio applies the older of two PeerAuthentications that select the same "
                     "pods");
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!e[i].keep)
            continue;
        size_t made = 0;
        for (size_t j = 0; j < n; j++)
            made += e[j].keep && e[j].sp == e[i].sp;
        char *name = object_name(e[i].sp->res.name, &e[i].sel, made > 1);
        struct mesh_node *spec = NULL;
        mesh_translation_add(c->out, sec_api(c), "PeerAuthentication", name, e[i].sel.ns,
                             &e[i].sp->res, &spec);
        free(name);
        set_selector(spec, &e[i].sel);
        set_str(child_map(spec, "mtls"), "mode", mode_name(e[i].mode));
    }
    for (size_t i = 0; i < n; i++)
        selector_clear(&e[i].sel);
    free(e);
}

static int compare_strings(const void *pa, const void *pb)
{
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

static void add_unique(struct mesh_string_list *list, char *s)
{
    for (size_t i = 0; i < list->len; i++)
        if (strcmp(list->items[i], s) == 0) {
            free(s);
            return;
        }
    mesh_string_list_add(list, s);
    free(s);
}

/* The Istio rule of one of ours, or NULL when its `from` names nobody (it can match no request,
 * and a rule without `from` would admit anyone). */
static struct mesh_node *authz_rule(struct ctx *c, const struct mesh_authorization_rule *r)
{
    struct mesh_string_list principals = {0};
    bool anyone = r->from.len == 0;
    for (size_t i = 0; i < r->from.len && !anyone; i++) {
        const char *id = r->from.items[i];
        struct mesh_service_ref who;
        if (strcmp(id, "*") == 0) {
            anyone = true; /* plaintext callers too: no `from` at all, not principals ["*"] */
        } else if (strncmp(id, "spiffe://", 9) == 0) {
            add_unique(&principals, xstrdup(id + 9));
        } else if (mesh_service_host_split(id, NULL, &who)) {
            /* A short form names the service account of that name and those of the Services
             * labelled app: that name, as our proxy reads it. */
            add_unique(&principals, xasprintf("%s/ns/%.*s/sa/%.*s", c->domain, (int)who.ns_len,
                                              who.ns, (int)who.name_len, who.name));
            for (size_t s = 0; s < c->n_svcs; s++)
                if (c->svcs[s].app && span_is(who.ns, who.ns_len, c->svcs[s].ns) &&
                    span_is(who.name, who.name_len, c->svcs[s].app))
                    add_unique(&principals, xasprintf("%s/ns/%s/sa/%s", c->domain, c->svcs[s].ns,
                                                      c->svcs[s].name));
        }
    }
    if (!anyone && principals.len == 0)
        return NULL;
    struct mesh_node *rule = mesh_node_map();
    if (!anyone) {
        qsort(principals.items, principals.len, sizeof(*principals.items), compare_strings);
        struct mesh_node *source = mesh_node_map();
        mesh_node_map_set(source, "principals",
                          str_seq((const char *const *)principals.items, principals.len));
        struct mesh_node *from = mesh_node_map();
        mesh_node_map_set(from, "source", source);
        struct mesh_node *froms = mesh_node_seq();
        mesh_node_seq_append(froms, from);
        mesh_node_map_set(rule, "from", froms);
    }
    mesh_string_list_clear(&principals);
    bool any_path = r->paths.len == 0;
    for (size_t i = 0; i < r->paths.len; i++)
        any_path = any_path || strcmp(r->paths.items[i], "*") == 0;
    if (r->methods.len || !any_path) {
        struct mesh_node *op = mesh_node_map();
        if (r->methods.len)
            mesh_node_map_set(op, "methods",
                              str_seq((const char *const *)r->methods.items, r->methods.len));
        /* A path ending in * is a prefix for us and for Istio alike. */
        if (!any_path)
            mesh_node_map_set(op, "paths",
                              str_seq((const char *const *)r->paths.items, r->paths.len));
        struct mesh_node *to = mesh_node_map();
        mesh_node_map_set(to, "operation", op);
        struct mesh_node *tos = mesh_node_seq();
        mesh_node_seq_append(tos, to);
        mesh_node_map_set(rule, "to", tos);
    }
    return rule;
}

struct authz_group {
    struct selector sel;
    size_t *rules; /* indexes into sp->authorization, in order */
    size_t n_rules;
};

/* One AuthorizationPolicy per workload selector a policy's rules cover (Istio attaches a policy
 * to workloads; our rules name services in `to`). ALLOW policies add up on a workload as our
 * rules do: a request passes when any rule naming its service matches. */
static void translate_authz_policy(struct ctx *c, const struct mesh_security_policy *sp)
{
    struct authz_group *g = NULL;
    size_t n = 0, cap = 0;
    for (size_t r = 0; r < sp->n_authorization; r++) {
        const struct mesh_authorization_rule *rule = &sp->authorization[r];
        for (size_t t = 0; t < rule->to.len; t++) {
            struct selector sel;
            if (!selector_for(c, rule->to.items[t], ns_of(&sp->res), &sel))
                continue;
            struct authz_group *grp = NULL;
            for (size_t i = 0; i < n && !grp; i++)
                if (selector_equal(&g[i].sel, &sel))
                    grp = &g[i];
            if (grp) {
                selector_clear(&sel);
            } else {
                xgrow((void **)&g, &cap, n + 1, sizeof(*g));
                grp = &g[n++];
                *grp = (struct authz_group){sel, NULL, 0};
            }
            if (grp->n_rules && grp->rules[grp->n_rules - 1] == r)
                continue;
            grp->rules = xrealloc(grp->rules, (grp->n_rules + 1) * sizeof(*grp->rules));
            grp->rules[grp->n_rules++] = r;
        }
    }
    for (size_t i = 0; i < n; i++) {
        char *name = object_name(sp->res.name, &g[i].sel, n > 1);
        struct mesh_node *spec = NULL;
        mesh_translation_add(c->out, sec_api(c), "AuthorizationPolicy", name, g[i].sel.ns, &sp->res,
                             &spec);
        free(name);
        set_selector(spec, &g[i].sel);
        set_str(spec, "action", "ALLOW");
        /* Rules that can match nobody are left out; with none left the policy denies every
         * request to these workloads, as ours then do. */
        struct mesh_node *rules = mesh_node_seq();
        for (size_t k = 0; k < g[i].n_rules; k++) {
            struct mesh_node *rule = authz_rule(c, &sp->authorization[g[i].rules[k]]);
            if (rule)
                mesh_node_seq_append(rules, rule);
        }
        if (rules->len)
            mesh_node_map_set(spec, "rules", rules);
        else
            mesh_node_free(rules);
        selector_clear(&g[i].sel);
        free(g[i].rules);
    }
    free(g);
}

static void translate_security(struct ctx *c)
{
    translate_peer_auth(c);
    for (size_t sp_i = 0; sp_i < count(c, MESH_KIND_SECURITY_POLICY); sp_i++) {
        const struct mesh_security_policy *sp = item(c, MESH_KIND_SECURITY_POLICY, sp_i);
        translate_authz_policy(c, sp);
        if (sp->mtls.certificate_authority)
            warn(c, &sp->res, "spec.mtls.certificate_authority",
                 "a certificate authority per policy",
                 "every workload certificate comes from the mesh's one CA (istiod's own, or the "
                 "cacerts secret in istio-system it was installed with)");
    }
}

/* --- MeshConfig: mesh-wide objects --- */

static enum mesh_err translate_mesh_config(struct ctx *c)
{
    const struct mesh_mesh_config *mc = c->mc;
    if (!mc)
        return MESH_OK;
    if (mc->proxy.resources.cpu || mc->proxy.resources.memory) {
        enum mesh_err err = refuse(c, &mc->res, "spec.proxy.resources", MESH_FEAT_PROXY_RESOURCES);
        if (err != MESH_OK)
            return err;
    }
    if (mc->ha.enabled == MESH_TRI_TRUE || mc->ha.replicas != MESH_UNSET)
        warn(c, &mc->res, "spec.ha", "high availability in a mesh resource",
             "istiod's replicas are an installation setting (components.pilot.k8s.replicaCount)");
    if (mc->dashboard.enabled == MESH_TRI_TRUE)
        warn(c, &mc->res, "spec.dashboard", "a dashboard in a mesh resource",
             "Istio's dashboard is Kiali, installed on its own");
    if (mc->mtls.enabled == MESH_TRI_FALSE) {
        struct mesh_node *spec = NULL;
        mesh_translation_add(c->out, sec_api(c), "PeerAuthentication", "default", ISTIO_ROOT_NS,
                             &mc->res, &spec);
        set_str(child_map(spec, "mtls"), "mode", "DISABLE");
    }
    if (mc->telemetry.enabled == MESH_TRI_FALSE || mc->telemetry.sampling_rate != MESH_UNSET) {
        struct mesh_node *spec = NULL;
        mesh_translation_add(c->out, tel_api(c), "Telemetry", "mesh-default", ISTIO_ROOT_NS,
                             &mc->res, &spec);
        struct mesh_node *tracing = mesh_node_map();
        if (mc->telemetry.enabled == MESH_TRI_FALSE)
            mesh_node_map_set(tracing, "disableSpanReporting", mesh_node_bool(true));
        else
            mesh_node_map_set(tracing, "randomSamplingPercentage",
                              percent_value(mc->telemetry.sampling_rate));
        struct mesh_node *seq = mesh_node_seq();
        mesh_node_seq_append(seq, tracing);
        mesh_node_map_set(spec, "tracing", seq);
    }
    if (mc->ingress.enabled == MESH_TRI_TRUE) {
        for (size_t i = 0; i < c->n_gateways; i++) {
            const struct gateway *gw = &c->gateways[i];
            struct mesh_node *spec = NULL;
            mesh_translation_add(c->out, net_api(c), "Gateway", gw->name, gw->ns, &mc->res, &spec);
            /* Istio's own ingress gateway deployment; gateway_class names a Gateway API class,
             * which this classic Gateway has no use for. */
            set_str(child_map(spec, "selector"), "istio", "ingressgateway");
            struct mesh_node *server = mesh_node_map();
            struct mesh_node *port = mesh_node_map();
            mesh_node_map_set(port, "number", mesh_node_int(80));
            set_str(port, "name", "http");
            set_str(port, "protocol", "HTTP");
            mesh_node_map_set(server, "port", port);
            char **hosts = xcalloc(gw->hosts.len ? gw->hosts.len : 1, sizeof(*hosts));
            memcpy(hosts, gw->hosts.items, gw->hosts.len * sizeof(*hosts));
            qsort(hosts, gw->hosts.len, sizeof(*hosts), compare_strings);
            mesh_node_map_set(server, "hosts", str_seq((const char *const *)hosts, gw->hosts.len));
            free(hosts);
            struct mesh_node *servers = mesh_node_seq();
            mesh_node_seq_append(servers, server);
            mesh_node_map_set(spec, "servers", servers);
        }
    }
    return MESH_OK;
}

/* --- the translator --- */

static void ctx_clear(struct ctx *c)
{
    for (size_t i = 0; i < c->n_svcs; i++) {
        free(c->svcs[i].fqdn);
        free(c->svcs[i].subset);
    }
    free(c->svcs);
    for (size_t i = 0; i < c->n_gateways; i++) {
        free(c->gateways[i].ns);
        free(c->gateways[i].name);
        mesh_string_list_clear(&c->gateways[i].hosts);
    }
    free(c->gateways);
    for (int k = 0; k < MESH_KIND_COUNT; k++)
        free(c->kinds[k].items);
}

static enum mesh_err istio_translate(const struct mesh_resource *const *res, size_t n,
                                     const struct mesh_translate_options *opt,
                                     struct mesh_translation *out, char **errmsg)
{
    static const struct mesh_translate_options defaults = {0};
    struct ctx c = {.opt = opt ? opt : &defaults, .out = out, .errmsg = errmsg};
    enum mesh_err err = MESH_OK;
    *errmsg = NULL;
    c.domain =
        c.opt->cluster_domain && *c.opt->cluster_domain ? c.opt->cluster_domain : DEFAULT_DOMAIN;
    sort_input(&c, res, n);
    /* The MeshConfig that speaks for Istio: the first (by namespace and name) naming it. */
    for (size_t mc_i = 0; mc_i < count(&c, MESH_KIND_MESH_CONFIG); mc_i++) {
        const struct mesh_mesh_config *mc = item(&c, MESH_KIND_MESH_CONFIG, mc_i);
        if (!c.mc && mc->provider && strcmp(mc->provider, "istio") == 0)
            c.mc = mc;
    }
    const char *version = c.opt->version ? c.opt->version : c.mc ? c.mc->version : NULL;
    unsigned long minor = (unsigned long)-1;
    if (version) {
        err = parse_version(version, &minor, errmsg);
        if (err != MESH_OK)
            goto out;
    }
    c.v1 = minor >= ISTIO_V1_MINOR;

    build_services(&c);
    err = resolve_breakers(&c);
    if (err == MESH_OK)
        err = resolve_faults(&c);
    if (err != MESH_OK)
        goto out;
    /* With auto-mTLS off a client speaks plaintext unless told: strict services need it said. */
    if (c.mc && c.mc->mtls.auto_upgrade == MESH_TRI_FALSE)
        for (size_t i = 0; i < c.n_svcs; i++)
            c.svcs[i].mutual = mesh_security_mode((struct mesh_resource *const *)res, n,
                                                  c.svcs[i].name, c.svcs[i].ns) == MESH_MTLS_STRICT;
    for (size_t vs_i = 0; vs_i < count(&c, MESH_KIND_VIRTUAL_SERVICE); vs_i++) {
        const struct mesh_virtual_service *vs = item(&c, MESH_KIND_VIRTUAL_SERVICE, vs_i);
        if (!vs_in_mesh(vs))
            continue;
        for (size_t h = 0; h < vs->hosts.len; h++) {
            struct mesh_service_ref ref;
            struct svc *s = vs_host_ref(vs->hosts.items[h], ns_of(&vs->res), &ref)
                                ? svc_by_ref(&c, &ref)
                                : NULL;
            if (s)
                s->host_routed = true;
        }
    }
    for (size_t vs_i = 0; vs_i < count(&c, MESH_KIND_VIRTUAL_SERVICE); vs_i++) {
        const struct mesh_virtual_service *vs = item(&c, MESH_KIND_VIRTUAL_SERVICE, vs_i);
        err = translate_vs(&c, vs);
        if (err != MESH_OK)
            goto out;
    }
    for (size_t i = 0; i < c.n_svcs; i++)
        if (c.svcs[i].fault && !c.svcs[i].host_routed)
            translate_service_fault(&c, &c.svcs[i]);
    translate_rules(&c);
    translate_security(&c);
    err = translate_mesh_config(&c);
    if (err != MESH_OK)
        goto out;
    mesh_translation_sort(out);
out:
    ctx_clear(&c);
    if (err != MESH_OK)
        mesh_translation_clear(out);
    return err;
}

const struct mesh_translator mesh_translator_istio = {
    .name = "istio",
    .caps = istio_caps,
    .n_caps = sizeof(istio_caps) / sizeof(istio_caps[0]),
    .translate = istio_translate,
    .read = mesh_istio_read,
};
