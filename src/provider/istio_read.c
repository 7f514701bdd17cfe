/* SPDX-License-Identifier: Apache-2.0 */
/* The Istio reader (translate.h): the objects a cluster holds read back into our resources, the
 * inverse of istio.c, so that translating what was read gives back what was written.
 *
 * Where istio.c folds several of ours into one object, or leaves something out, the reader picks
 * the reading that translates back to the same objects:
 * - a route's host + subset is the Service labelled app: HOST whose version label istio.c names
 *   that subset after (a destination in the VirtualService's namespace by its name, in another as
 *   name.ns.svc); a VirtualService host NAME.NS.svc.DOMAIN is NAME at home, NAME.NS.svc elsewhere;
 * - a uri prefix P is the glob "P*", a regex made of escaped literals and ".*" the glob it came
 *   from; a header regex ".*" is present: true;
 * - http[].fault: a FaultInjection named after the VirtualService when every route carries the
 *   same one, else one per named route (VS-ROUTE, spec.route); a fault that a Service's own
 *   FaultInjection (read from its VirtualService, annotated FaultInjection/...) explains on a route
 *   going only to that Service is that Service's; a percentage of 100 is ours unset;
 * - DestinationRules: each Service's traffic policy comes from the rule on its own host or from
 *   its subset of the app's rule (the app's own Service takes the top-level policy unless every
 *   subset already has it); Services with the limits of one CircuitBreaker are that breaker, whose
 *   spec.service is the Service when it guards one, else the VirtualService whose destinations
 *   they are (checked by resolving the breakers as istio.c does); maxEjectionPercent 50 is ours
 *   unset; loadBalancer is the Service's load_balancer; ISTIO_MUTUAL is auto_upgrade: false;
 * - PeerAuthentication / AuthorizationPolicy of one source are one SecurityPolicy: each selector
 *   back to the services/to item (name.ns.svc) that istio.c selects it for, its mode the weakest
 *   of its PeerAuthentications (istio.c only ever raises one), rules with the same body across
 *   workloads one rule; principals TRUST-DOMAIN/ns/NS/sa/SA the fewest SA.NS.svc identities whose
 *   service accounts (and those of the Services labelled app: SA) give exactly them, any other a
 *   spiffe:// one; an ALLOW policy without rules (nobody may call) a rule from ALLOW_NOBODY;
 * - Telemetry, mesh-wide PeerAuthentication DISABLE and Gateways of a MeshConfig are that
 *   MeshConfig (provider istio, the version asked for; none asked, and ours written with the
 *   APIs of releases before 1.22, 1.14); mesh-wide ones by hand the seed's, default/istio;
 * - an object written by hand is named after itself; a VirtualService without retries gets
 *   Istio's default of two attempts, an outlierDetection without consecutive5xxErrors or
 *   maxEjectionPercent Istio's defaults, a fault without a percentage Istio's 0.
 * Anything else Istio can say and we cannot is a warning "KIND NS/NAME FIELD: not read: why"; a
 * match, rule or route that would take more requests without what was left out is left out as a
 * whole, so that reading never widens what a route or a policy lets through. */
#include "translate.h"
#include "istio_names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "mesh/circuit_breaker.h"
#include "mesh/security_policy.h"
#include "mesh/service.h"
#include "mesh/virtual_service.h"
#include "model/schema.h"
#include "model/service_host.h"

#define ROOT_NS        "istio-system"
#define DEFAULT_DOMAIN "cluster.local"
/* istio.c spells our unset ejection cap as this; Istio's own default is the other. */
#define OUR_MAX_EJECTION_PERCENT   50
#define ISTIO_MAX_EJECTION_PERCENT 10
#define ISTIO_CONSECUTIVE_5XX      5
#define ISTIO_RETRY_ATTEMPTS       2
#define ISTIO_OLD_API_VERSION      "1.14"
/* An identity no caller has (.invalid is reserved): the one rule of a policy that lets nobody
 * in, which istio.c writes as an ALLOW policy without rules. */
#define ALLOW_NOBODY "nobody.nowhere.invalid"
#define PATH_LEN     256

/* --- the reader's state --- */

struct policy {
    struct mesh_node *cb; /* a CircuitBreaker's spec without service, or NULL */
    const char *lb;       /* our load_balancer (static), or NULL */
    bool mutual;          /* ISTIO_MUTUAL */
};

/* One of the v1 Services, as our Service, with what the DestinationRules say of it. */
struct svc {
    struct mesh_service *res; /* in the output list */
    const char *name, *ns, *app, *version;
    char *subset; /* its subset of the app's host, as istio.c names it, or NULL */
    bool has_policy;
    struct policy pol;
    char *cb_ns, *cb_name;           /* the CircuitBreaker its limits came from */
    const struct mesh_node *pol_obj; /* the DestinationRule that said it */
    long group;                      /* its breaker group, or -1 */
};

/* A top-level trafficPolicy of an app's DestinationRule (one with subsets). */
struct app_rule {
    const struct mesh_node *obj;
    char *app, *ns;
    struct policy pol;
    char *cb_ns, *cb_name;
    struct svc **members; /* the Services its subsets are */
    size_t n_members;
};

/* A Service's own FaultInjection, read from the VirtualService istio.c wrote on its host. */
struct svc_fault {
    struct svc *svc;
    struct mesh_node *fault;
};

struct cb_group {
    char *ns, *name;
    const char *src_name;        /* the name it was read under (name, unless two share it) */
    const struct mesh_node *cfg; /* borrowed from a member's policy */
    const struct mesh_node *obj;
    struct svc **members;
    size_t n;
    char *service; /* spec.service when it is one breaker */
    bool split;    /* one breaker per member instead */
};

struct sp_rule {
    struct mesh_node *body; /* from / methods / paths */
    struct mesh_string_list to;
};

struct sp_group {
    char *ns, *name;
    const struct mesh_node *obj;
    enum mesh_mtls_mode mode;
    bool ns_wide;
    struct mesh_string_list services;
    struct sp_rule *rules;
    size_t n_rules, cap_rules;
};

struct mcfg {
    char *ns, *name;
    const struct mesh_node *obj;
    bool mtls_off, ingress, tracing_off;
    struct mesh_node *sampling;
};

struct rd {
    const struct mesh_translate_options *opt;
    const char *domain;
    struct mesh_diags *warnings;
    struct mesh_resource **list;
    size_t len, cap;
    struct svc *svcs;
    size_t n_svcs;
    const struct mesh_node **drs; /* the DestinationRules, for subsets written by hand */
    size_t n_drs;
    struct svc_fault *sfaults;
    size_t n_sfaults, cap_sfaults;
    struct app_rule *apps;
    size_t n_apps, cap_apps;
    struct sp_group *sps;
    size_t n_sps, cap_sps;
    struct mcfg *mcs;
    size_t n_mcs, cap_mcs;
    const struct mesh_node *mutual_obj; /* a DestinationRule asking for ISTIO_MUTUAL */
    const char *version;                /* the MeshConfigs' version, or NULL */
    const struct mesh_node *old_api;    /* one of ours written for Istio before 1.22 */
};

/* --- small helpers --- */

static const struct mesh_node *get(const struct mesh_node *map, const char *key)
{
    return mesh_node_map_get(map, key);
}

static bool is_map(const struct mesh_node *n)
{
    return n && n->type == MESH_NODE_MAP;
}

static bool is_seq(const struct mesh_node *n)
{
    return n && n->type == MESH_NODE_SEQ;
}

/* A scalar's text, NULL for anything else (null included). */
static const char *str_of(const struct mesh_node *n)
{
    return n && n->type == MESH_NODE_SCALAR && n->scalar_kind != MESH_SCALAR_NULL ? n->text : NULL;
}

static bool is_int(const struct mesh_node *n)
{
    return n && n->type == MESH_NODE_SCALAR && n->scalar_kind == MESH_SCALAR_INT;
}

static bool is_number(const struct mesh_node *n)
{
    return n && n->type == MESH_NODE_SCALAR &&
           (n->scalar_kind == MESH_SCALAR_INT || n->scalar_kind == MESH_SCALAR_FLOAT);
}

static bool is_true(const struct mesh_node *n)
{
    return n && n->type == MESH_NODE_SCALAR && n->scalar_kind == MESH_SCALAR_BOOL &&
           (n->text[0] == 't' || n->text[0] == 'T');
}

static bool streq(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

/* Whether obj carries a source annotation we can read. */
static bool has_source(const struct mesh_node *obj)
{
    enum mesh_kind kind;
    char *ns = NULL, *name = NULL;
    bool ok = mesh_read_source(obj, &kind, &ns, &name);
    free(ns);
    free(name);
    return ok;
}

static void set_str(struct mesh_node *map, const char *key, const char *value)
{
    mesh_node_map_set(map, key, mesh_node_str(value));
}

static void seq_add_str(struct mesh_node *seq, const char *s)
{
    mesh_node_seq_append(seq, mesh_node_str(s));
}

static bool list_has(const struct mesh_string_list *l, const char *s)
{
    for (size_t i = 0; i < l->len; i++)
        if (strcmp(l->items[i], s) == 0)
            return true;
    return false;
}

static void fmt_path(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A field path into a PATH_LEN buffer (cut short, never overrun, when absurdly deep). */
static void fmt_path(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, PATH_LEN, fmt, ap);
    va_end(ap);
}

static void warn(struct rd *r, const struct mesh_node *obj, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "KIND NS/NAME PATH: not read: why", obj being the Istio object. */
static void warn(struct rd *r, const struct mesh_node *obj, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mesh_read_warnv(r->warnings, obj, path, fmt, ap);
    va_end(ap);
}

/* Why the fields Istio has and we do not are left out. */
static const struct {
    const char *key, *why;
} field_notes[] = {
    {"rewrite", "our routes do not rewrite the path or the authority"},
    {"redirect", "our routes do not redirect"},
    {"directResponse", "our routes do not answer by themselves"},
    {"delegate", "our VirtualServices do not delegate to others"},
    {"mirror", "our routes do not mirror traffic"},
    {"mirrors", "our routes do not mirror traffic"},
    {"mirrorPercentage", "our routes do not mirror traffic"},
    {"mirrorPercent", "our routes do not mirror traffic"},
    {"mirror_percent", "our routes do not mirror traffic"},
    {"corsPolicy", "our routes have no CORS policy"},
    {"headers", "our routes do not add, set or remove headers"},
    {"tcp", "our VirtualServices route HTTP only"},
    {"tls", "our VirtualServices route HTTP only"},
    {"exportTo", "our resources are seen by the whole mesh"},
    {"workloadSelector", "our traffic policies apply to every client"},
    {"portLevelSettings", "our traffic policies apply to every port"},
    {"retryRemoteLocalities", "our retries do not choose localities"},
    {"exponentialDelay", "our delays are fixed"},
    {"grpcStatus", "our aborts answer an HTTP status"},
    {"http2Error", "our aborts answer an HTTP status"},
};

/* Warns for each key of map (at path) that is not among handled (NULL-terminated). */
static void unread_keys(struct rd *r, const struct mesh_node *obj, const struct mesh_node *map,
                        const char *path, const char *const *handled)
{
    if (!is_map(map))
        return;
    for (size_t i = 0; i < map->len; i++) {
        const char *key = map->pairs[i].key->text;
        bool known = false;
        for (const char *const *h = handled; *h && !known; h++)
            known = strcmp(*h, key) == 0;
        if (known)
            continue;
        const char *why = "our model has no such field";
        for (size_t n = 0; n < sizeof(field_notes) / sizeof(field_notes[0]); n++)
            if (strcmp(field_notes[n].key, key) == 0)
                why = field_notes[n].why;
        char p[PATH_LEN];
        fmt_path(p, "%s.%s", path, key);
        warn(r, obj, p, "%s", why);
    }
}

static struct mesh_resource *find_res(const struct rd *r, enum mesh_kind kind, const char *ns,
                                      const char *name, size_t upto)
{
    for (size_t i = 0; i < upto; i++)
        if (r->list[i]->kind == kind && strcmp(mesh_resource_namespace(r->list[i]), ns) == 0 &&
            streq(r->list[i]->name, name))
            return r->list[i];
    return NULL;
}

/* Decodes doc (taken) into the output; the resource, or NULL when it was not valid or repeats
 * one already read (each with a warning naming obj). */
static struct mesh_resource *emit(struct rd *r, struct mesh_node *doc, const struct mesh_node *obj)
{
    size_t before = r->len;
    mesh_read_emit(doc, obj, &r->list, &r->len, &r->cap, r->warnings);
    if (r->len == before)
        return NULL;
    struct mesh_resource *res = r->list[r->len - 1];
    if (find_res(r, res->kind, mesh_resource_namespace(res), res->name, before)) {
        warn(r, obj, "", "%s %s/%s was read already from another object", mesh_kind_name(res->kind),
             mesh_resource_namespace(res), res->name);
        mesh_resource_free(res);
        r->len--;
        return NULL;
    }
    return res;
}

/* base, or base-2, base-3, ...: a name no resource of kind in ns has yet. */
static char *unique_name(const struct rd *r, enum mesh_kind kind, const char *ns, const char *base)
{
    char *name = xstrdup(base);
    for (int i = 2; find_res(r, kind, ns, name, r->len); i++) {
        free(name);
        name = xasprintf("%s-%d", base, i);
    }
    return name;
}

/* --- Services and hosts --- */

/* A version of an app (istio.c selects it by app and version). */
static bool is_version(const struct svc *s)
{
    return s->app && s->version && strcmp(s->app, s->name) != 0;
}

static int compare_svcs(const void *pa, const void *pb)
{
    const struct svc *a = pa, *b = pb;
    int c = strcmp(a->ns, b->ns);
    return c ? c : strcmp(a->name, b->name);
}

static void read_services(struct rd *r, const struct mesh_node *const *objs, size_t n)
{
    r->svcs = xcalloc(n ? n : 1, sizeof(*r->svcs));
    for (size_t i = 0; i < n; i++) {
        struct mesh_resource *res = mesh_read_kube_service(objs[i]);
        if (!res) {
            warn(r, objs[i], "",
                 "not a Service of ours: its name, namespace or labels are not "
                 "valid ones");
            continue;
        }
        if (find_res(r, MESH_KIND_SERVICE, mesh_resource_namespace(res), res->name, r->len)) {
            warn(r, objs[i], "", "Service %s/%s was read already", mesh_resource_namespace(res),
                 res->name);
            mesh_resource_free(res);
            continue;
        }
        xgrow((void **)&r->list, &r->cap, r->len + 1, sizeof(*r->list));
        r->list[r->len++] = res;
        struct svc *s = &r->svcs[r->n_svcs++];
        s->res = (struct mesh_service *)res;
        s->name = res->name;
        s->ns = mesh_resource_namespace(res);
        s->app = mesh_istio_label(&res->labels, "app");
        s->version = mesh_istio_label(&res->labels, "version");
        s->group = -1;
    }
    if (r->n_svcs > 1)
        qsort(r->svcs, r->n_svcs, sizeof(*r->svcs), compare_svcs);
    /* The subsets istio.c gave them. */
    struct mesh_istio_workload *w = xcalloc(r->n_svcs ? r->n_svcs : 1, sizeof(*w));
    for (size_t i = 0; i < r->n_svcs; i++)
        w[i] = (struct mesh_istio_workload){r->svcs[i].name, r->svcs[i].ns, r->svcs[i].app,
                                            r->svcs[i].version};
    for (size_t i = 0; i < r->n_svcs; i++)
        r->svcs[i].subset = mesh_istio_subset(w, r->n_svcs, i);
    free(w);
}

static struct svc *svc_named(struct rd *r, const char *name, size_t name_len, const char *ns,
                             size_t ns_len)
{
    for (size_t i = 0; i < r->n_svcs; i++)
        if (strlen(r->svcs[i].name) == name_len && !strncmp(r->svcs[i].name, name, name_len) &&
            strlen(r->svcs[i].ns) == ns_len && !strncmp(r->svcs[i].ns, ns, ns_len))
            return &r->svcs[i];
    return NULL;
}

/* A host as a Service reference: NAME.NS.svc.DOMAIN with our trust domain, or what the mesh reads
 * as one (name, name.ns, name.ns.svc, name.ns.svc.cluster.local). *name and *ns malloc'ed. */
static bool host_ref(const struct rd *r, const char *host, const char *default_ns, char **name,
                     char **ns)
{
    struct mesh_service_ref ref;
    char *suffix = xasprintf(".svc.%s", r->domain);
    size_t hl = strlen(host), sl = strlen(suffix);
    char *plain = hl > sl && strcmp(host + hl - sl, suffix) == 0 ? xstrndup(host, hl - sl + 4)
                                                                 : xstrdup(host);
    bool ok = mesh_service_host_split(plain, default_ns, &ref);
    if (ok) {
        *name = xstrndup(ref.name, ref.name_len);
        *ns = xstrndup(ref.ns, ref.ns_len);
    }
    free(plain);
    free(suffix);
    return ok;
}

/* The Service a host (and subset) names, as istio.c writes destinations: the version of the app
 * HOST with that subset name, else (a subset written by hand) the one its DestinationRule's
 * version label picks; without a subset, the Service of that name. */
static struct svc *service_of(struct rd *r, const char *host, const char *subset, const char *ns)
{
    char *name = NULL, *hns = NULL;
    struct svc *found = NULL;
    if (!host || !host_ref(r, host, ns, &name, &hns))
        return NULL;
    if (!subset) {
        found = svc_named(r, name, strlen(name), hns, strlen(hns));
        goto out;
    }
    for (size_t i = 0; i < r->n_svcs && !found; i++) {
        struct svc *s = &r->svcs[i];
        if (s->subset && !strcmp(s->subset, subset) && !strcmp(s->app, name) && !strcmp(s->ns, hns))
            found = s;
    }
    for (size_t d = 0; d < r->n_drs && !found; d++) {
        const struct mesh_node *spec = get(r->drs[d], "spec");
        char *dname = NULL, *dns = NULL;
        const char *dhost = mesh_read_str(spec, "host");
        if (!dhost || !host_ref(r, dhost, mesh_read_namespace(r->drs[d]), &dname, &dns))
            continue;
        const struct mesh_node *subsets = get(spec, "subsets");
        if (!strcmp(dname, name) && !strcmp(dns, hns) && is_seq(subsets))
            for (size_t k = 0; k < subsets->len && !found; k++) {
                const char *version = mesh_read_str(subsets->items[k], "labels.version");
                if (!streq(mesh_read_str(subsets->items[k], "name"), subset) || !version)
                    continue;
                for (size_t i = 0; i < r->n_svcs && !found; i++)
                    if (is_version(&r->svcs[i]) && !strcmp(r->svcs[i].app, name) &&
                        !strcmp(r->svcs[i].ns, hns) && !strcmp(r->svcs[i].version, version))
                        found = &r->svcs[i];
            }
        free(dname);
        free(dns);
    }
out:
    free(name);
    free(hns);
    return found;
}

/* How a document in ns names s: by name at home, else name.ns.svc. */
static char *svc_ref(const struct svc *s, const char *ns)
{
    return strcmp(s->ns, ns) == 0 ? xstrdup(s->name) : xasprintf("%s.%s.svc", s->name, s->ns);
}

/* --- VirtualService --- */

/* The glob istio.c made re from, or NULL: escaped literals and ".*" only, at least one of them not
 * a lone trailing one (that glob would have been a prefix), starting with '/'. */
static char *regex_glob(const char *re)
{
    char *g = xmalloc(strlen(re) + 1);
    size_t len = 0, stars = 0;
    for (const char *p = re; *p;) {
        if (p[0] == '\\' && p[1] && strchr(MESH_ISTIO_REGEX_META, p[1])) {
            g[len++] = p[1];
            p += 2;
        } else if (p[0] == '.' && p[1] == '*') {
            g[len++] = '*';
            stars++;
            p += 2;
        } else if (strchr(MESH_ISTIO_REGEX_META, *p) || *p == '*') {
            goto fail;
        } else {
            g[len++] = *p++;
        }
    }
    g[len] = '\0';
    if (!stars || g[0] != '/' || (stars == 1 && g[len - 1] == '*'))
        goto fail;
    char *back = mesh_istio_glob_regex(g);
    bool same = strcmp(back, re) == 0;
    free(back);
    if (same)
        return g;
fail:
    free(g);
    return NULL;
}

/* Our path for an Istio uri match; NULL (with *why) when ours cannot hold it. */
static struct mesh_node *path_of_uri(const struct mesh_node *uri, char *why, size_t why_len)
{
    if (!is_map(uri) || uri->len != 1 || !str_of(uri->pairs[0].value)) {
        snprintf(why, why_len, "a uri match is one of exact, prefix, regex");
        return NULL;
    }
    const char *key = uri->pairs[0].key->text, *v = str_of(uri->pairs[0].value);
    struct mesh_node *map = NULL;
    if (!strcmp(key, "regex")) {
        char *glob = regex_glob(v);
        if (glob) {
            struct mesh_node *n = mesh_node_str(glob);
            free(glob);
            return n;
        }
        if (!mesh_regex_ok(v, why, why_len))
            return NULL; /* RE2 our POSIX matcher does not read */
        map = mesh_node_map();
        set_str(map, "regex", v);
        return map;
    }
    if (strcmp(key, "exact") != 0 && strcmp(key, "prefix") != 0) {
        snprintf(why, why_len, "a uri match is one of exact, prefix, regex");
        return NULL;
    }
    if (v[0] != '/') {
        snprintf(why, why_len, "our paths start with \"/\"");
        return NULL;
    }
    if (!strchr(v, '*')) {
        /* As the seed writes them: "/a" exact, "/api/v1/" + "*" the prefix /api/v1/. */
        if (!strcmp(key, "exact"))
            return mesh_node_str(v);
        char *glob = xasprintf("%s*", v);
        struct mesh_node *n = mesh_node_str(glob);
        free(glob);
        return n;
    }
    map = mesh_node_map();
    set_str(map, key, v);
    return map;
}

/* Our match for one of Istio's, or NULL when it is left out (warned). */
static struct mesh_node *read_match(struct rd *r, const struct mesh_node *obj,
                                    const struct mesh_node *m, const char *path)
{
    char p[PATH_LEN], why[300];
    if (!is_map(m)) {
        warn(r, obj, path, "a match is a mapping");
        return NULL;
    }
    struct mesh_node *out = mesh_node_map();
    for (size_t i = 0; i < m->len; i++) {
        const char *key = m->pairs[i].key->text;
        const struct mesh_node *v = m->pairs[i].value;
        fmt_path(p, "%s.%s", path, key);
        if (!strcmp(key, "uri")) {
            struct mesh_node *pn = path_of_uri(v, why, sizeof(why));
            if (!pn)
                goto drop;
            mesh_node_map_set(out, "path", pn);
        } else if (!strcmp(key, "method")) {
            const char *exact = mesh_read_str(v, "exact");
            if (!exact || v->len != 1 ||
                !mesh_text_ok(MESH_CHECK_METHOD, exact, why, sizeof(why))) {
                if (!exact || v->len != 1)
                    snprintf(why, sizeof(why), "our method matches are exact");
                goto drop;
            }
            set_str(out, "method", exact);
        } else if (!strcmp(key, "headers")) {
            if (!is_map(v)) {
                snprintf(why, sizeof(why), "headers is a mapping of names to matches");
                goto drop;
            }
            struct mesh_node *headers = mesh_node_map();
            mesh_node_map_set(out, "headers", headers);
            for (size_t h = 0; h < v->len; h++) {
                const struct mesh_node *hm = v->pairs[h].value;
                const char *hk = is_map(hm) && hm->len == 1 ? hm->pairs[0].key->text : "";
                const char *hv = is_map(hm) && hm->len == 1 ? str_of(hm->pairs[0].value) : NULL;
                fmt_path(p, "%s.headers.%s", path, v->pairs[h].key->text);
                if (!hv || (strcmp(hk, "exact") && strcmp(hk, "prefix") && strcmp(hk, "regex"))) {
                    snprintf(why, sizeof(why),
                             "our header matches are exact, prefix, regex or "
                             "present");
                    goto drop;
                }
                struct mesh_node *ours = mesh_node_map();
                if (!strcmp(hk, "regex") && !strcmp(hv, ".*")) {
                    /* istio.c's spelling of a presence match */
                    mesh_node_map_set(ours, "present", mesh_node_bool(true));
                } else if (!strcmp(hk, "regex") && !mesh_regex_ok(hv, why, sizeof(why))) {
                    mesh_node_free(ours);
                    goto drop;
                } else {
                    set_str(ours, hk, hv);
                }
                mesh_node_map_set(headers, v->pairs[h].key->text, ours);
            }
        } else if (!strcmp(key, "name") || !strcmp(key, "statPrefix")) {
            warn(r, obj, p, "our matches have no names"); /* the match itself holds */
        } else if (!strcmp(key, "ignoreUriCase") && !is_true(v)) {
            continue;
        } else {
            snprintf(why, sizeof(why), "our matches look at the path, headers and method only");
            goto drop;
        }
    }
    return out;
drop:
    /* Without the condition the match would take more requests than Istio's: all of it goes. */
    warn(r, obj, p, "%s; the whole match is left out", why);
    mesh_node_free(out);
    return NULL;
}

/* A percentage of a fault (value, or the older integer percent) as ours: NULL when it is 100,
 * our default; Istio reads a missing one as no request. false: not a number. */
static bool fault_percentage(const struct mesh_node *f, struct mesh_node **out)
{
    const struct mesh_node *v = get(get(f, "percentage"), "value");
    if (!v)
        v = get(f, "percent");
    *out = NULL;
    if (!v) {
        *out = mesh_node_int(0);
        return true;
    }
    if (!is_number(v))
        return false;
    if (strtod(v->text, NULL) != 100.0)
        *out = mesh_read_copy(v);
    return true;
}

/* Our fault fields (delay, delay_percentage, abort) for http[].fault, or NULL. */
static struct mesh_node *read_fault(struct rd *r, const struct mesh_node *obj,
                                    const struct mesh_node *fault, const char *path)
{
    char p[PATH_LEN], why[200];
    struct mesh_node *out = mesh_node_map();
    static const char *const handled[] = {"delay", "abort", NULL};
    static const char *const delay_keys[] = {"fixedDelay", "percentage", "percent", NULL};
    static const char *const abort_keys[] = {"httpStatus", "percentage", "percent", NULL};
    unread_keys(r, obj, fault, path, handled);
    const struct mesh_node *delay = get(fault, "delay");
    if (delay) {
        fmt_path(p, "%s.delay", path);
        unread_keys(r, obj, delay, p, delay_keys);
        const char *fixed = mesh_read_str(delay, "fixedDelay");
        unsigned long long ms = 0;
        struct mesh_node *pct = NULL;
        if (!fixed || !mesh_duration_parse(fixed, &ms, why, sizeof(why)) || !ms)
            warn(r, obj, p, "our delays are a fixed duration of at least 1ms");
        else if (!fault_percentage(delay, &pct))
            warn(r, obj, p, "percentage.value is not a number");
        else {
            set_str(out, "delay", fixed);
            if (pct)
                mesh_node_map_set(out, "delay_percentage", pct);
        }
    }
    const struct mesh_node *abort_ = get(fault, "abort");
    if (abort_) {
        fmt_path(p, "%s.abort", path);
        unread_keys(r, obj, abort_, p, abort_keys);
        const struct mesh_node *status = get(abort_, "httpStatus");
        struct mesh_node *pct = NULL;
        if (!is_int(status))
            warn(r, obj, p, "our aborts answer an HTTP status");
        else if (!fault_percentage(abort_, &pct))
            warn(r, obj, p, "percentage.value is not a number");
        else {
            struct mesh_node *a = mesh_node_map();
            mesh_node_map_set(a, "http_status", mesh_read_copy(status));
            if (pct)
                mesh_node_map_set(a, "percentage", pct);
            mesh_node_map_set(out, "abort", a);
        }
    }
    if (!out->len) {
        mesh_node_free(out);
        return NULL;
    }
    return out;
}

enum outcome {
    READ_OK = 0,
    READ_SKIP, /* left out, warned */
    READ_BAD,  /* the whole object is too malformed to read, warned */
};

/* A route as read. */
struct route_read {
    struct mesh_node *fault; /* our fault fields, or NULL */
    struct svc *only;        /* the one Service of every destination, or NULL */
    const char *name;        /* borrowed from the object */
    size_t index;            /* in spec.http */
};

static enum outcome read_retries(struct rd *r, const struct mesh_node *obj,
                                 const struct mesh_node *retries, const char *path,
                                 struct mesh_node *route)
{
    static const char *const handled[] = {"attempts", "perTryTimeout", "retryOn", NULL};
    static const char *const ours[] = {"5xx", "gateway-error", "reset", "connect-failure"};
    char p[PATH_LEN], why[200];
    struct mesh_node *out = mesh_node_map();
    mesh_node_map_set(route, "retries", out);
    if (!retries) {
        /* Istio's default: two attempts on failed connections and refused streams (reset here);
         * its gRPC conditions and 503 alone have no equal among ours. */
        mesh_node_map_set(out, "attempts", mesh_node_int(ISTIO_RETRY_ATTEMPTS));
        struct mesh_node *on = mesh_node_seq();
        seq_add_str(on, "connect-failure");
        seq_add_str(on, "reset");
        mesh_node_map_set(out, "retry_on", on);
        return READ_OK;
    }
    if (!is_map(retries) || !is_int(get(retries, "attempts"))) {
        warn(r, obj, path, "retries.attempts is not an integer");
        return READ_BAD;
    }
    unread_keys(r, obj, retries, path, handled);
    mesh_node_map_set(out, "attempts", mesh_read_copy(get(retries, "attempts")));
    if (!strcmp(get(retries, "attempts")->text, "0"))
        return READ_OK;
    const char *per_try = mesh_read_str(retries, "perTryTimeout");
    unsigned long long ms = 0;
    fmt_path(p, "%s.perTryTimeout", path);
    bool parsed = per_try && mesh_duration_parse(per_try, &ms, why, sizeof(why));
    if (per_try && (!parsed || !ms))
        warn(r, obj, p, "%s", parsed ? "our per-try timeouts are at least 1ms" : why);
    else if (per_try)
        set_str(out, "per_try_timeout", per_try);
    const char *on = mesh_read_str(retries, "retryOn");
    if (!on)
        return READ_OK;
    struct mesh_node *list = mesh_node_seq();
    fmt_path(p, "%s.retryOn", path);
    for (const char *c = on; *c;) {
        size_t n = strcspn(c, ",");
        bool known = false;
        for (size_t k = 0; k < sizeof(ours) / sizeof(ours[0]) && !known; k++)
            if (strlen(ours[k]) == n && !strncmp(ours[k], c, n)) {
                known = true;
                seq_add_str(list, ours[k]);
            }
        if (!known && n)
            warn(r, obj, p,
                 "\"%.*s\" is not one of our retry conditions (5xx, gateway-error, "
                 "reset, connect-failure)",
                 (int)n, c);
        c += n + (c[n] == ',');
    }
    if (list->len)
        mesh_node_map_set(out, "retry_on", list);
    else
        mesh_node_free(list);
    return READ_OK;
}

/* One http[] route into routes (ours), with what faults need in *rr. */
static enum outcome read_route(struct rd *r, const struct mesh_node *obj, const char *ns,
                               const struct mesh_node *h, size_t index, struct mesh_node *routes,
                               struct route_read *rr)
{
    static const char *const handled[] = {"name",    "match", "route", "timeout",
                                          "retries", "fault", NULL};
    static const char *const dest_keys[] = {"destination", "weight", NULL};
    char path[PATH_LEN], p[PATH_LEN], why[200];
    fmt_path(path, "spec.http[%zu]", index);
    memset(rr, 0, sizeof(*rr));
    rr->index = index;
    if (!is_map(h)) {
        warn(r, obj, path, "a route is a mapping");
        return READ_BAD;
    }
    const struct mesh_node *dests = get(h, "route");
    if (!is_seq(dests) || !dests->len) {
        unread_keys(r, obj, h, path, handled);
        warn(r, obj, path, "it sends requests to no destination, and ours always do");
        return READ_SKIP;
    }
    /* Weights first: a weight that is no integer makes the object unreadable. */
    for (size_t d = 0; d < dests->len; d++) {
        const struct mesh_node *w = get(dests->items[d], "weight");
        fmt_path(p, "%s.route[%zu].weight", path, d);
        if (w && !is_int(w)) {
            warn(r, obj, p, "%s is not an integer", str_of(w) ? str_of(w) : "the weight");
            return READ_BAD;
        }
    }
    struct mesh_node *route = mesh_node_map();
    enum outcome res = READ_OK;
    rr->name = mesh_read_str(h, "name");
    if (rr->name)
        set_str(route, "name", rr->name);
    const struct mesh_node *match = get(h, "match");
    if (match) {
        fmt_path(p, "%s.match", path);
        if (!is_seq(match)) {
            warn(r, obj, p, "match is a list");
            res = READ_BAD;
            goto out;
        }
        struct mesh_node *matches = mesh_node_seq();
        for (size_t m = 0; m < match->len; m++) {
            fmt_path(p, "%s.match[%zu]", path, m);
            struct mesh_node *ours = read_match(r, obj, match->items[m], p);
            if (ours)
                mesh_node_seq_append(matches, ours);
        }
        if (match->len && !matches->len) {
            mesh_node_free(matches);
            warn(r, obj, path,
                 "none of its matches could be read, and without one it would take "
                 "every request");
            res = READ_SKIP;
            goto out;
        }
        mesh_node_map_set(route, "matches", matches);
    }
    struct mesh_node *ours = mesh_node_seq();
    mesh_node_map_set(route, "destinations", ours);
    for (size_t d = 0; d < dests->len; d++) {
        const struct mesh_node *rd = dests->items[d];
        const struct mesh_node *dest = get(rd, "destination");
        const char *host = mesh_read_str(dest, "host"), *subset = mesh_read_str(dest, "subset");
        fmt_path(p, "%s.route[%zu]", path, d);
        unread_keys(r, obj, rd, p, dest_keys);
        fmt_path(p, "%s.route[%zu].destination", path, d);
        static const char *const dkeys[] = {"host", "subset", NULL};
        unread_keys(r, obj, dest, p, dkeys);
        struct svc *s = service_of(r, host, subset, ns);
        if (!s) {
            warn(r, obj, p,
                 "%s%s%s names no Service among the v1 Services read, so the route is "
                 "left out",
                 host ? host : "(no host)", subset ? " subset " : "", subset ? subset : "");
            res = READ_SKIP;
            goto out;
        }
        rr->only = d == 0 || rr->only == s ? s : NULL;
        struct mesh_node *od = mesh_node_map();
        char *ref = svc_ref(s, ns);
        set_str(od, "host", ref);
        free(ref);
        const struct mesh_node *w = get(rd, "weight");
        if (w)
            mesh_node_map_set(od, "weight", mesh_read_copy(w));
        mesh_node_seq_append(ours, od);
    }
    const char *timeout = mesh_read_str(h, "timeout");
    unsigned long long ms = 0;
    fmt_path(p, "%s.timeout", path);
    if (timeout && !mesh_duration_parse(timeout, &ms, why, sizeof(why)))
        warn(r, obj, p, "%s", why);
    else if (timeout && ms) /* 0s: none, as ours unset */
        set_str(route, "timeout", timeout);
    fmt_path(p, "%s.retries", path);
    res = read_retries(r, obj, get(h, "retries"), p, route);
    if (res != READ_OK)
        goto out;
    unread_keys(r, obj, h, path, handled);
    const struct mesh_node *fault = get(h, "fault");
    if (fault) {
        fmt_path(p, "%s.fault", path);
        rr->fault = read_fault(r, obj, fault, p);
    }
    mesh_node_seq_append(routes, route);
    route = NULL;
out:
    mesh_node_free(route);
    return res;
}

static const struct svc_fault *service_fault(const struct rd *r, const struct svc *s)
{
    for (size_t i = 0; s && i < r->n_sfaults; i++)
        if (r->sfaults[i].svc == s)
            return &r->sfaults[i];
    return NULL;
}

static struct mesh_resource *emit_fault(struct rd *r, const struct mesh_node *obj, const char *name,
                                        const char *ns, const char *service, const char *route,
                                        const struct mesh_node *fault)
{
    struct mesh_node *spec = NULL;
    struct mesh_node *doc = mesh_read_doc("FaultInjection", name, ns, &spec);
    set_str(spec, "service", service);
    if (route)
        set_str(spec, "route", route);
    for (size_t i = 0; i < fault->len; i++)
        mesh_node_map_set(spec, fault->pairs[i].key->text, mesh_read_copy(fault->pairs[i].value));
    return emit(r, doc, obj);
}

/* The FaultInjections of a VirtualService read as vs_name in ns, from its routes' faults. */
static void read_route_faults(struct rd *r, const struct mesh_node *obj, const char *vs_name,
                              const char *ns, struct route_read *rr, size_t n)
{
    /* A fault a route gets from its one Service's own FaultInjection is that one's. */
    for (size_t i = 0; i < n; i++) {
        const struct svc_fault *sf = service_fault(r, rr[i].only);
        if (rr[i].fault && sf && mesh_node_equal(rr[i].fault, sf->fault)) {
            mesh_node_free(rr[i].fault);
            rr[i].fault = NULL;
        }
    }
    bool whole = n > 0;
    for (size_t i = 0; i < n && whole; i++)
        whole = rr[i].fault && mesh_node_equal(rr[i].fault, rr[0].fault);
    if (whole) {
        char *name = unique_name(r, MESH_KIND_FAULT_INJECTION, ns, vs_name);
        emit_fault(r, obj, name, ns, vs_name, NULL, rr[0].fault);
        free(name);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (!rr[i].fault)
            continue;
        if (!rr[i].name) {
            char p[PATH_LEN];
            fmt_path(p, "spec.http[%zu].fault", rr[i].index);
            warn(r, obj, p,
                 "a fault on some routes only is a FaultInjection naming each route, and this "
                 "route has no name");
            continue;
        }
        char *base = xasprintf("%s-%s", vs_name, rr[i].name);
        char *name = unique_name(r, MESH_KIND_FAULT_INJECTION, ns, base);
        emit_fault(r, obj, name, ns, vs_name, rr[i].name, rr[i].fault);
        free(name);
        free(base);
    }
}

/* The VirtualService istio.c writes on the host of a Service with a FaultInjection of its own:
 * that FaultInjection (ns/name from the source annotation). */
static void read_service_fault(struct rd *r, const struct mesh_node *obj, const char *ns,
                               const char *name)
{
    const struct mesh_node *http = get(get(obj, "spec"), "http");
    const struct mesh_node *h = is_seq(http) && http->len ? http->items[0] : NULL;
    const struct mesh_node *dest =
        get(is_seq(get(h, "route")) && get(h, "route")->len ? get(h, "route")->items[0] : NULL,
            "destination");
    struct svc *s = service_of(r, mesh_read_str(dest, "host"), mesh_read_str(dest, "subset"),
                               mesh_read_namespace(obj));
    if (!s) {
        warn(r, obj, "spec.http[0].route[0].destination",
             "names no Service among the v1 Services read");
        return;
    }
    struct mesh_node *fault =
        get(h, "fault") ? read_fault(r, obj, get(h, "fault"), "spec.http[0].fault") : NULL;
    if (!fault) {
        warn(r, obj, "spec.http[0].fault", "no fault to read");
        return;
    }
    char *ref = svc_ref(s, ns);
    struct mesh_resource *res = emit_fault(r, obj, name, ns, ref, NULL, fault);
    free(ref);
    if (!res) {
        mesh_node_free(fault);
        return;
    }
    xgrow((void **)&r->sfaults, &r->cap_sfaults, r->n_sfaults + 1, sizeof(*r->sfaults));
    r->sfaults[r->n_sfaults++] = (struct svc_fault){s, fault};
}

/* A VirtualService host as ours: a Service's FQDN as the seed writes it (NAME at home,
 * NAME.NS.svc elsewhere), any other as it is. */
static char *vs_host(const struct rd *r, const char *host, const char *ns)
{
    char *suffix = xasprintf(".svc.%s", r->domain);
    size_t hl = strlen(host), sl = strlen(suffix);
    char *out = NULL;
    if (hl > sl && !strcmp(host + hl - sl, suffix) && !strchr(host, '*')) {
        const char *dot = memchr(host, '.', hl - sl);
        if (dot && !memchr(dot + 1, '.', (size_t)(host + hl - sl - dot - 1)) && dot != host) {
            size_t nl = (size_t)(dot - host), nsl = (size_t)(host + hl - sl - dot - 1);
            out = nsl == strlen(ns) && !strncmp(dot + 1, ns, nsl)
                      ? xstrndup(host, nl)
                      : xasprintf("%.*s.svc", (int)(hl - sl), host);
        }
    }
    free(suffix);
    return out ? out : xstrdup(host);
}

static bool string_seq(const struct mesh_node *n)
{
    if (!is_seq(n))
        return false;
    for (size_t i = 0; i < n->len; i++)
        if (!str_of(n->items[i]))
            return false;
    return true;
}

static void read_virtual_service(struct rd *r, const struct mesh_node *obj)
{
    static const char *const handled[] = {"hosts", "gateways", "http", NULL};
    enum mesh_kind sk;
    char *sns = NULL, *sname = NULL;
    bool ours = mesh_read_source(obj, &sk, &sns, &sname) && sk == MESH_KIND_VIRTUAL_SERVICE;
    const char *name = ours ? sname : mesh_read_name(obj);
    const char *ns = ours ? sns : mesh_read_namespace(obj);
    const struct mesh_node *spec = get(obj, "spec");
    const struct mesh_node *hosts = get(spec, "hosts"), *gateways = get(spec, "gateways");
    const struct mesh_node *http = get(spec, "http");
    struct route_read *rr = NULL;
    size_t n_rr = 0;
    struct mesh_node *doc = NULL, *dspec = NULL;

    if ((hosts && !string_seq(hosts)) || (gateways && !string_seq(gateways)) ||
        (http && !is_seq(http))) {
        warn(r, obj, "spec", "hosts and gateways are lists of names, http a list of routes");
        goto out;
    }
    unread_keys(r, obj, spec, "spec", handled);
    doc = mesh_read_doc("VirtualService", name, ns, &dspec);
    struct mesh_node *ohosts = mesh_node_seq();
    for (size_t i = 0; hosts && i < hosts->len; i++) {
        char *h = vs_host(r, hosts->items[i]->text, ns);
        seq_add_str(ohosts, h);
        free(h);
    }
    mesh_node_map_set(dspec, "hosts", ohosts);
    if (gateways && gateways->len)
        mesh_node_map_set(dspec, "gateways", mesh_read_copy(gateways));
    struct mesh_node *routes = mesh_node_seq();
    mesh_node_map_set(dspec, "http_routes", routes);
    rr = xcalloc(http && http->len ? http->len : 1, sizeof(*rr));
    for (size_t i = 0; http && i < http->len; i++) {
        enum outcome o = read_route(r, obj, ns, http->items[i], i, routes, &rr[n_rr]);
        if (o == READ_BAD)
            goto out;
        if (o == READ_OK)
            n_rr++;
    }
    if (!n_rr) {
        warn(r, obj, "spec.http", "no HTTP route could be read");
        goto out;
    }
    struct mesh_resource *res = emit(r, doc, obj);
    doc = NULL;
    if (res)
        read_route_faults(r, obj, name, ns, rr, n_rr);
out:
    mesh_node_free(doc);
    for (size_t i = 0; rr && i < (http ? http->len : 0); i++)
        mesh_node_free(rr[i].fault);
    free(rr);
    free(sns);
    free(sname);
}

/* --- DestinationRule --- */

static void policy_clear(struct policy *p)
{
    mesh_node_free(p->cb);
    memset(p, 0, sizeof(*p));
}

static bool policy_empty(const struct policy *p)
{
    return !p->cb && !p->lb && !p->mutual;
}

/* A positive integer field of map into ours (absent: nothing); false when it is no integer. */
static bool limit(struct rd *r, const struct mesh_node *obj, const struct mesh_node *map,
                  const char *key, const char *path, struct mesh_node *out, const char *ours)
{
    const struct mesh_node *v = get(map, key);
    char p[PATH_LEN];
    fmt_path(p, "%s.%s", path, key);
    if (!v)
        return true;
    if (!is_int(v)) {
        warn(r, obj, p, "%s is not an integer", str_of(v) ? str_of(v) : "the value");
        return false;
    }
    if (strtoll(v->text, NULL, 10) <= 0)
        warn(r, obj, p, "our limits are positive (Istio reads %s as its default)", v->text);
    else
        mesh_node_map_set(out, ours, mesh_read_copy(v));
    return true;
}

static void duration_field(struct rd *r, const struct mesh_node *obj, const struct mesh_node *map,
                           const char *key, const char *path, struct mesh_node *out,
                           const char *ours)
{
    const char *v = mesh_read_str(map, key);
    char p[PATH_LEN], why[200];
    unsigned long long ms = 0;
    fmt_path(p, "%s.%s", path, key);
    bool parsed = v && mesh_duration_parse(v, &ms, why, sizeof(why));
    if (v && (!parsed || !ms))
        warn(r, obj, p, "%s", parsed ? "our durations are at least 1ms" : why);
    else if (v)
        set_str(out, ours, v);
}

/* trafficPolicy (at path) into pol; false when it is too malformed to read. */
static bool read_policy(struct rd *r, const struct mesh_node *obj, const struct mesh_node *tp,
                        const char *path, struct policy *pol)
{
    static const char *const handled[] = {"connectionPool", "outlierDetection", "loadBalancer",
                                          "tls", NULL};
    static const char *const pool_keys[] = {"tcp", "http", NULL};
    static const char *const tcp_keys[] = {"maxConnections", NULL};
    static const char *const http_keys[] = {"http1MaxPendingRequests", "http2MaxRequests",
                                            "maxRetries", NULL};
    static const char *const od_keys[] = {"consecutive5xxErrors", "interval", "baseEjectionTime",
                                          "maxEjectionPercent", NULL};
    char p[PATH_LEN];
    memset(pol, 0, sizeof(*pol));
    if (!is_map(tp)) {
        warn(r, obj, path, "a traffic policy is a mapping");
        return false;
    }
    unread_keys(r, obj, tp, path, handled);
    struct mesh_node *cb = mesh_node_map();
    const struct mesh_node *pool = get(tp, "connectionPool");
    fmt_path(p, "%s.connectionPool", path);
    unread_keys(r, obj, pool, p, pool_keys);
    const struct mesh_node *tcp = get(pool, "tcp"), *hp = get(pool, "http");
    char tp_path[PATH_LEN], hp_path[PATH_LEN];
    fmt_path(tp_path, "%s.tcp", p);
    fmt_path(hp_path, "%s.http", p);
    unread_keys(r, obj, tcp, tp_path, tcp_keys);
    unread_keys(r, obj, hp, hp_path, http_keys);
    if (!limit(r, obj, tcp, "maxConnections", tp_path, cb, "max_connections") ||
        !limit(r, obj, hp, "http1MaxPendingRequests", hp_path, cb, "max_pending_requests") ||
        !limit(r, obj, hp, "http2MaxRequests", hp_path, cb, "max_requests") ||
        !limit(r, obj, hp, "maxRetries", hp_path, cb, "max_retries"))
        goto bad;
    const struct mesh_node *od = get(tp, "outlierDetection");
    if (od) {
        fmt_path(p, "%s.outlierDetection", path);
        unread_keys(r, obj, od, p, od_keys);
        const struct mesh_node *c5 = get(od, "consecutive5xxErrors");
        struct mesh_node *det = mesh_node_map();
        mesh_node_map_set(cb, "detection", det);
        if (!c5) /* Istio's default */
            mesh_node_map_set(det, "consecutive_errors", mesh_node_int(ISTIO_CONSECUTIVE_5XX));
        else if (is_int(c5) && strtoll(c5->text, NULL, 10) == 0)
            ; /* 0 turns 5xx detection off: ours unset */
        else if (!limit(r, obj, od, "consecutive5xxErrors", p, det, "consecutive_errors"))
            goto bad;
        if (get(det, "consecutive_errors")) {
            duration_field(r, obj, od, "interval", p, det, "interval");
            duration_field(r, obj, od, "baseEjectionTime", p, det, "base_ejection_time");
            const struct mesh_node *mep = get(od, "maxEjectionPercent");
            if (mep && !is_int(mep)) {
                warn(r, obj, p, "maxEjectionPercent is not an integer");
                goto bad;
            }
            if (!mep)
                mesh_node_map_set(det, "max_ejection_percent",
                                  mesh_node_int(ISTIO_MAX_EJECTION_PERCENT));
            else if (strtoll(mep->text, NULL, 10) != OUR_MAX_EJECTION_PERCENT)
                mesh_node_map_set(det, "max_ejection_percent", mesh_read_copy(mep));
        }
    }
    if (!get(get(cb, "detection"), "consecutive_errors") && get(cb, "detection")) {
        /* Detection off: only the limits stay (the detection pair was added last). */
        struct mesh_node *limits = mesh_node_map();
        for (size_t i = 0; i + 1 < cb->len; i++)
            mesh_node_map_set(limits, cb->pairs[i].key->text, mesh_read_copy(cb->pairs[i].value));
        mesh_node_free(cb);
        cb = limits;
    }
    if (cb->len)
        pol->cb = cb;
    else
        mesh_node_free(cb);
    cb = NULL;
    const struct mesh_node *lb = get(tp, "loadBalancer");
    if (lb) {
        static const char *const lb_keys[] = {"simple", NULL};
        fmt_path(p, "%s.loadBalancer", path);
        unread_keys(r, obj, lb, p, lb_keys);
        const char *simple = mesh_read_str(lb, "simple");
        if (streq(simple, "ROUND_ROBIN"))
            pol->lb = "round_robin";
        else if (streq(simple, "RANDOM"))
            pol->lb = "random";
        else if (streq(simple, "LEAST_CONN") || streq(simple, "LEAST_REQUEST"))
            pol->lb = "least_request";
        else if (simple) {
            fmt_path(p, "%s.loadBalancer.simple", path);
            warn(r, obj, p, "our balancers are least request, round robin and random");
        }
    }
    const struct mesh_node *tls = get(tp, "tls");
    if (tls) {
        static const char *const tls_keys[] = {"mode", NULL};
        fmt_path(p, "%s.tls", path);
        unread_keys(r, obj, tls, p, tls_keys);
        if (streq(mesh_read_str(tls, "mode"), "ISTIO_MUTUAL"))
            pol->mutual = true;
        else
            warn(r, obj, p,
                 "our clients speak the mesh's mutual TLS (ISTIO_MUTUAL) or what "
                 "auto-mTLS picks, nothing else");
    }
    return true;
bad:
    mesh_node_free(cb);
    policy_clear(pol);
    return false;
}

static bool policy_equal(const struct policy *a, const char *a_ns, const char *a_name,
                         const struct policy *b, const char *b_ns, const char *b_name)
{
    if (!mesh_node_equal(a->cb, b->cb) || !streq(a->lb, b->lb) || a->mutual != b->mutual)
        return false;
    return !a->cb || (streq(a_ns, b_ns) && streq(a_name, b_name));
}

/* Gives s the policy read from obj (limits of CircuitBreaker cb_ns/cb_name); takes pol. */
static void give_policy(struct rd *r, struct svc *s, struct policy *pol, const char *cb_ns,
                        const char *cb_name, const struct mesh_node *obj, const char *path)
{
    if (policy_empty(pol)) {
        policy_clear(pol);
        return;
    }
    if (s->has_policy) {
        if (!policy_equal(&s->pol, s->cb_ns, s->cb_name, pol, cb_ns, cb_name))
            warn(r, obj, path, "Service %s/%s has another traffic policy already", s->ns, s->name);
        policy_clear(pol);
        return;
    }
    s->has_policy = true;
    s->pol = *pol;
    memset(pol, 0, sizeof(*pol));
    s->cb_ns = xstrdup(cb_ns);
    s->cb_name = xstrdup(cb_name);
    s->pol_obj = obj;
}

/* A DestinationRule: apps false reads those on one Service's host, true those with subsets (an
 * app's), after all the others, so that a version's policy comes from its own host's rule. */
static void read_destination_rule(struct rd *r, const struct mesh_node *obj, bool apps)
{
    static const char *const handled[] = {"host", "trafficPolicy", "subsets", NULL};
    const struct mesh_node *spec = get(obj, "spec");
    const char *host = mesh_read_str(spec, "host");
    const char *ns = mesh_read_namespace(obj);
    char *name = NULL, *hns = NULL, *sns = NULL, *sname = NULL;
    struct policy top = {0};
    enum mesh_kind sk;
    bool annotated = has_source(obj);
    const struct mesh_node *subsets = get(spec, "subsets");
    if ((is_seq(subsets) && subsets->len) != apps)
        return;
    if (!host) {
        warn(r, obj, "spec.host", "the rule has no host");
        goto out;
    }
    unread_keys(r, obj, spec, "spec", handled);
    /* The breaker whose limits these are: the source, or the rule itself when written by hand. */
    if (!mesh_read_source(obj, &sk, &sns, &sname) || sk != MESH_KIND_CIRCUIT_BREAKER) {
        free(sns);
        free(sname);
        sns = xstrdup(ns);
        sname = xstrdup(mesh_read_name(obj));
    }
    if (!host_ref(r, host, ns, &name, &hns)) {
        warn(r, obj, "spec.host", "\"%s\" names no Service", host);
        goto out;
    }
    const struct mesh_node *tp = get(spec, "trafficPolicy");
    if (tp && !read_policy(r, obj, tp, "spec.trafficPolicy", &top))
        goto out;
    if (subsets && !is_seq(subsets)) {
        warn(r, obj, "spec.subsets", "subsets is a list");
        goto out;
    }
    if (!subsets || !subsets->len) {
        struct svc *s = svc_named(r, name, strlen(name), hns, strlen(hns));
        if (!s && !policy_empty(&top))
            warn(r, obj, "spec.host", "\"%s\" names no Service among the v1 Services read", host);
        else if (s)
            give_policy(r, s, &top, sns, sname, obj, "spec.trafficPolicy");
        goto out;
    }
    /* An app's rule: its subsets are the versions, each maybe with a policy of its own. */
    struct app_rule *app = NULL;
    if (!policy_empty(&top)) {
        xgrow((void **)&r->apps, &r->cap_apps, r->n_apps + 1, sizeof(*r->apps));
        app = &r->apps[r->n_apps++];
        *app = (struct app_rule){obj,          xstrdup(name),  xstrdup(hns), top,
                                 xstrdup(sns), xstrdup(sname), NULL,         0};
        memset(&top, 0, sizeof(top));
        app->members = xcalloc(subsets->len, sizeof(*app->members));
    }
    for (size_t i = 0; i < subsets->len; i++) {
        const struct mesh_node *sub = subsets->items[i];
        const char *sub_name = mesh_read_str(sub, "name");
        char p[PATH_LEN];
        fmt_path(p, "spec.subsets[%zu]", i);
        static const char *const sub_keys[] = {"name", "labels", "trafficPolicy", NULL};
        unread_keys(r, obj, sub, p, sub_keys);
        const struct mesh_node *labels = get(sub, "labels");
        struct svc *s = service_of(r, host, sub_name, ns);
        if (!s || !is_map(labels) || labels->len != 1) {
            warn(r, obj, p,
                 "a subset is one version (label version) of an app, and this one "
                 "is no Service among the v1 Services read");
            continue;
        }
        if (app)
            app->members[app->n_members++] = s;
        const struct mesh_node *stp = get(sub, "trafficPolicy");
        if (!stp)
            continue;
        struct policy pol;
        fmt_path(p, "spec.subsets[%zu].trafficPolicy", i);
        if (!read_policy(r, obj, stp, p, &pol))
            continue;
        /* istio.c repeats there what the version's own rule says (that one names its breaker);
         * a subset's own limits by hand are a breaker of their own. */
        if (annotated && s->has_policy) {
            policy_clear(&pol);
            continue;
        }
        char *cb_name = annotated ? xstrdup(sname) : xasprintf("%s-%s", sname, sub_name);
        give_policy(r, s, &pol, sns, cb_name, obj, p);
        free(cb_name);
    }
out:
    policy_clear(&top);
    free(name);
    free(hns);
    free(sns);
    free(sname);
}

/* The top-level policies of app rules, once every Service's own rule has been read: shared by
 * all the subsets (each already has it from its own host's rule), else the app's own Service's;
 * written by hand without that Service, the subsets' that have none of their own. */
static void resolve_app_rules(struct rd *r)
{
    for (size_t a = 0; a < r->n_apps; a++) {
        struct app_rule *app = &r->apps[a];
        bool shared = app->n_members > 0;
        for (size_t i = 0; i < app->n_members && shared; i++) {
            const struct svc *m = app->members[i];
            shared = m->has_policy && policy_equal(&m->pol, m->cb_ns, m->cb_name, &app->pol,
                                                   app->cb_ns, app->cb_name);
        }
        if (shared)
            continue;
        struct svc *own = svc_named(r, app->app, strlen(app->app), app->ns, strlen(app->ns));
        if (own) {
            give_policy(r, own, &app->pol, app->cb_ns, app->cb_name, app->obj,
                        "spec.trafficPolicy");
            continue;
        }
        for (size_t i = 0; i < app->n_members; i++) {
            struct policy copy = {mesh_read_copy(app->pol.cb), app->pol.lb, app->pol.mutual};
            if (!app->members[i]->has_policy)
                give_policy(r, app->members[i], &copy, app->cb_ns, app->cb_name, app->obj,
                            "spec.trafficPolicy");
            policy_clear(&copy);
        }
    }
}

/* --- CircuitBreakers: which Services share one, and what it names --- */

static const struct mesh_virtual_service *find_vs(const struct rd *r, const char *name,
                                                  const char *ns)
{
    return (const struct mesh_virtual_service *)find_res(r, MESH_KIND_VIRTUAL_SERVICE, ns, name,
                                                         r->len);
}

/* The Service a breaker's or a destination's host names, as istio.c's find_svc. */
static struct svc *svc_by_host(struct rd *r, const char *host, const char *ns)
{
    struct mesh_service_ref ref;
    if (!host || !mesh_service_host_split(host, ns, &ref))
        return NULL;
    return svc_named(r, ref.name, ref.name_len, ref.ns, ref.ns_len);
}

static bool vs_routes_to(struct rd *r, const struct mesh_virtual_service *vs, const char *ns,
                         const struct svc *s)
{
    for (size_t i = 0; i < vs->n_http_routes; i++)
        for (size_t d = 0; d < vs->http_routes[i].n_destinations; d++)
            if (svc_by_host(r, vs->http_routes[i].destinations[d].host, ns) == s)
                return true;
    return false;
}

/* Whether breaker g may name vs: every member is a destination of it, and every other
 * destination has a breaker of its own (which the simulation then checks wins it). */
static bool vs_fits(struct rd *r, const struct cb_group *g, const struct mesh_virtual_service *vs)
{
    if (svc_by_host(r, vs->res.name, g->ns))
        return false; /* the name would read as that Service */
    for (size_t m = 0; m < g->n; m++)
        if (!vs_routes_to(r, vs, g->ns, g->members[m]))
            return false;
    for (size_t i = 0; i < vs->n_http_routes; i++)
        for (size_t d = 0; d < vs->http_routes[i].n_destinations; d++) {
            struct svc *s = svc_by_host(r, vs->http_routes[i].destinations[d].host, g->ns);
            if (s && s->group < 0)
                return false;
        }
    return true;
}

static int compare_groups(const struct cb_group *a, const struct cb_group *b)
{
    int c = strcmp(a->ns, b->ns);
    return c ? c : strcmp(a->name, b->name);
}

/* Resolves the breakers as istio.c does (in name order; a Service named outright beats one
 * reached through a VirtualService; the first of a rank wins) and marks in bad[] every group
 * whose result differs from what was read. Whether all agree. */
static bool simulate(struct rd *r, struct cb_group *g, size_t ng, bool *bad)
{
    long *got = xcalloc(r->n_svcs ? r->n_svcs : 1, sizeof(*got));
    int *rank = xcalloc(r->n_svcs ? r->n_svcs : 1, sizeof(*rank));
    size_t *order = xcalloc(ng ? ng : 1, sizeof(*order));
    for (size_t i = 0; i < r->n_svcs; i++)
        got[i] = -1;
    for (size_t i = 0; i < ng; i++) {
        size_t j = i;
        for (; j > 0 && compare_groups(&g[order[j - 1]], &g[i]) > 0; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    for (size_t k = 0; k < ng; k++) {
        size_t gi = order[k];
        if (g[gi].split) {
            for (size_t m = 0; m < g[gi].n; m++) {
                size_t si = (size_t)(g[gi].members[m] - r->svcs);
                got[si] = (long)gi;
                rank[si] = 2;
            }
            continue;
        }
        struct svc *s = svc_by_host(r, g[gi].service, g[gi].ns);
        if (s) {
            size_t si = (size_t)(s - r->svcs);
            if (got[si] < 0 || rank[si] < 2) {
                got[si] = (long)gi;
                rank[si] = 2;
            }
            continue;
        }
        const struct mesh_virtual_service *vs = find_vs(r, g[gi].service, g[gi].ns);
        for (size_t i = 0; vs && i < vs->n_http_routes; i++)
            for (size_t d = 0; d < vs->http_routes[i].n_destinations; d++) {
                s = svc_by_host(r, vs->http_routes[i].destinations[d].host, g[gi].ns);
                size_t si = s ? (size_t)(s - r->svcs) : 0;
                if (s && got[si] < 0) {
                    got[si] = (long)gi;
                    rank[si] = 1;
                }
            }
    }
    bool ok = true;
    for (size_t i = 0; i < r->n_svcs; i++) {
        if (got[i] == r->svcs[i].group)
            continue;
        ok = false;
        /* The breaker that took a Service it should not have covers too much; one that did
         * not reach its own too little. */
        if (got[i] >= 0)
            bad[got[i]] = true;
        else
            bad[r->svcs[i].group] = true;
    }
    free(got);
    free(rank);
    free(order);
    return ok;
}

static void emit_breaker(struct rd *r, const struct cb_group *g, const char *name,
                         const char *service)
{
    struct mesh_node *spec = NULL;
    struct mesh_node *doc = mesh_read_doc("CircuitBreaker", name, g->ns, &spec);
    set_str(spec, "service", service);
    for (size_t i = 0; i < g->cfg->len; i++)
        mesh_node_map_set(spec, g->cfg->pairs[i].key->text, mesh_read_copy(g->cfg->pairs[i].value));
    emit(r, doc, g->obj);
}

static void read_breakers(struct rd *r)
{
    struct cb_group *g = NULL;
    size_t ng = 0, cap = 0;
    /* Services with the same limits from the same source are one breaker. */
    for (size_t i = 0; i < r->n_svcs; i++) {
        struct svc *s = &r->svcs[i];
        if (s->pol.lb) {
            free(s->res->load_balancer);
            s->res->load_balancer = xstrdup(s->pol.lb);
        }
        if (s->pol.mutual && !r->mutual_obj)
            r->mutual_obj = s->pol_obj;
        if (!s->pol.cb)
            continue;
        size_t k = 0;
        while (k < ng && !(streq(g[k].ns, s->cb_ns) && streq(g[k].src_name, s->cb_name) &&
                           mesh_node_equal(g[k].cfg, s->pol.cb)))
            k++;
        if (k == ng) {
            xgrow((void **)&g, &cap, ng + 1, sizeof(*g));
            bool name_taken = false;
            for (size_t j = 0; j < ng && !name_taken; j++)
                name_taken = streq(g[j].ns, s->cb_ns) && streq(g[j].src_name, s->cb_name);
            struct cb_group *ng_ = &g[ng++];
            memset(ng_, 0, sizeof(*ng_));
            ng_->ns = xstrdup(s->cb_ns);
            /* Limits that differ under one name (by hand) are a breaker each. */
            ng_->name = name_taken ? xasprintf("%s-%s", s->cb_name, s->name) : xstrdup(s->cb_name);
            ng_->src_name = s->cb_name;
            ng_->cfg = s->pol.cb;
            ng_->obj = s->pol_obj;
            ng_->members = xcalloc(r->n_svcs, sizeof(*ng_->members));
        }
        g[k].members[g[k].n++] = s;
        s->group = (long)k;
    }
    /* What each names: its one Service, else a VirtualService routing to all of them (the
     * one named like the breaker first). */
    for (size_t k = 0; k < ng; k++) {
        if (g[k].n == 1) {
            g[k].service = svc_ref(g[k].members[0], g[k].ns);
            continue;
        }
        const struct mesh_virtual_service *vs = find_vs(r, g[k].name, g[k].ns);
        if (!vs || !vs_fits(r, &g[k], vs)) {
            vs = NULL;
            for (size_t i = 0; i < r->len && !vs; i++) {
                const struct mesh_virtual_service *c = (const void *)r->list[i];
                if (c->res.kind == MESH_KIND_VIRTUAL_SERVICE &&
                    !strcmp(mesh_resource_namespace(&c->res), g[k].ns) && vs_fits(r, &g[k], c))
                    vs = c;
            }
        }
        if (vs)
            g[k].service = xstrdup(vs->res.name);
        else
            g[k].split = true;
    }
    /* A breaker that would reach more or fewer Services than it had is one per Service. */
    bool *bad = xcalloc(ng ? ng : 1, sizeof(*bad));
    while (!simulate(r, g, ng, bad)) {
        bool changed = false;
        for (size_t k = 0; k < ng; k++) {
            if (bad[k] && !g[k].split && g[k].n > 1) {
                g[k].split = true;
                changed = true;
            }
            bad[k] = false;
        }
        if (!changed)
            break;
    }
    free(bad);
    for (size_t k = 0; k < ng; k++) {
        if (!g[k].split) {
            emit_breaker(r, &g[k], g[k].name, g[k].service);
        } else {
            warn(r, g[k].obj, "spec.trafficPolicy",
                 "no Service or VirtualService reaches exactly the Services of CircuitBreaker "
                 "%s/%s: it is read as one breaker per Service",
                 g[k].ns, g[k].name);
            for (size_t m = 0; m < g[k].n; m++) {
                char *base = xasprintf("%s-%s", g[k].name, g[k].members[m]->name);
                char *name = unique_name(r, MESH_KIND_CIRCUIT_BREAKER, g[k].ns, base);
                char *ref = svc_ref(g[k].members[m], g[k].ns);
                emit_breaker(r, &g[k], name, ref);
                free(ref);
                free(name);
                free(base);
            }
        }
        free(g[k].ns);
        free(g[k].name);
        free(g[k].members);
        free(g[k].service);
    }
    free(g);
}

/* --- PeerAuthentication, AuthorizationPolicy: SecurityPolicy --- */

static struct sp_group *sp_group(struct rd *r, const struct mesh_node *obj)
{
    enum mesh_kind sk;
    char *ns = NULL, *name = NULL;
    if (!mesh_read_source(obj, &sk, &ns, &name) || sk != MESH_KIND_SECURITY_POLICY) {
        free(ns);
        free(name);
        ns = xstrdup(mesh_read_namespace(obj));
        name = xstrdup(mesh_read_name(obj));
    }
    for (size_t i = 0; i < r->n_sps; i++)
        if (!strcmp(r->sps[i].ns, ns) && !strcmp(r->sps[i].name, name)) {
            free(ns);
            free(name);
            return &r->sps[i];
        }
    xgrow((void **)&r->sps, &r->cap_sps, r->n_sps + 1, sizeof(*r->sps));
    struct sp_group *g = &r->sps[r->n_sps++];
    memset(g, 0, sizeof(*g));
    g->ns = ns;
    g->name = name;
    g->obj = obj;
    return g;
}

/* The services/to item whose workloads istio.c selects with selector in ns (app, version), as
 * name.ns.svc; NULL (warned) when none would. */
static char *item_for_selector(struct rd *r, const struct mesh_node *obj,
                               const struct mesh_node *selector, const char *ns)
{
    const struct mesh_node *ml = get(selector, "matchLabels");
    const char *app = mesh_read_str(ml, "app"), *version = mesh_read_str(ml, "version");
    if (!is_map(selector) || selector->len != 1 || !app || ml->len != 1u + (version != NULL)) {
        warn(r, obj, "spec.selector",
             "our policies select workloads by their labels app and "
             "version only");
        return NULL;
    }
    if (version) {
        for (size_t i = 0; i < r->n_svcs; i++) {
            const struct svc *s = &r->svcs[i];
            if (!strcmp(s->ns, ns) && is_version(s) && !strcmp(s->app, app) &&
                !strcmp(s->version, version))
                return xasprintf("%s.%s.svc", s->name, ns);
        }
    } else {
        /* The app's own name when it selects them (no Service of that name: its pods by app),
         * else a Service of the app that is no version of it. */
        const struct svc *own = svc_named(r, app, strlen(app), ns, strlen(ns));
        if (!own || (!is_version(own) && !strcmp(own->app ? own->app : own->name, app)))
            return xasprintf("%s.%s.svc", app, ns);
        for (size_t i = 0; i < r->n_svcs; i++) {
            const struct svc *s = &r->svcs[i];
            if (!strcmp(s->ns, ns) && !is_version(s) && s->app && !strcmp(s->app, app))
                return xasprintf("%s.%s.svc", s->name, ns);
        }
    }
    warn(r, obj, "spec.selector", "no Service among the v1 Services read is selected this way");
    return NULL;
}

static int strictness(enum mesh_mtls_mode mode)
{
    return mode == MESH_MTLS_STRICT ? 3 : mode == MESH_MTLS_PERMISSIVE ? 2 : 1;
}

static struct mcfg *mesh_config(struct rd *r, const char *ns, const char *name,
                                const struct mesh_node *obj);

static void read_peer_authentication(struct rd *r, const struct mesh_node *obj)
{
    static const char *const handled[] = {"selector", "mtls", NULL};
    const struct mesh_node *spec = get(obj, "spec");
    const char *ns = mesh_read_namespace(obj);
    const char *mode = mesh_read_str(spec, "mtls.mode");
    enum mesh_mtls_mode m = streq(mode, "STRICT")       ? MESH_MTLS_STRICT
                            : streq(mode, "PERMISSIVE") ? MESH_MTLS_PERMISSIVE
                            : streq(mode, "DISABLE")    ? MESH_MTLS_DISABLE
                                                        : MESH_MTLS_UNSET;
    enum mesh_kind sk;
    char *sns = NULL, *sname = NULL;
    if (mesh_read_source(obj, &sk, &sns, &sname) && sk == MESH_KIND_MESH_CONFIG) {
        if (m == MESH_MTLS_DISABLE && !get(spec, "selector") && !strcmp(ns, ROOT_NS))
            mesh_config(r, sns, sname, obj)->mtls_off = true;
        else
            warn(r, obj, "spec", "a MeshConfig only turns mTLS off for the whole mesh");
        goto out;
    }
    unread_keys(r, obj, spec, "spec", handled);
    static const char *const mtls_keys[] = {"mode", NULL};
    unread_keys(r, obj, get(spec, "mtls"), "spec.mtls", mtls_keys);
    if (m == MESH_MTLS_UNSET) {
        warn(r, obj, "spec.mtls.mode",
             "our policies say strict, permissive or disable (Istio "
             "inherits the mode from above)");
        goto out;
    }
    struct sp_group *g = sp_group(r, obj);
    const struct mesh_node *selector = get(spec, "selector");
    if (selector) {
        char *item = item_for_selector(r, obj, selector, ns);
        if (!item)
            goto out;
        if (g->ns_wide)
            warn(r, obj, "spec.selector", "SecurityPolicy %s/%s covers its whole namespace already",
                 g->ns, g->name);
        else if (!list_has(&g->services, item))
            mesh_string_list_add(&g->services, item);
        free(item);
    } else if (g->services.len || strcmp(g->ns, ns) != 0) {
        warn(r, obj, "spec", "SecurityPolicy %s/%s covers named services already", g->ns, g->name);
        goto out;
    } else {
        g->ns_wide = true;
    }
    /* istio.c only ever raises a policy's mode for a version (the app's is stricter): the
     * weakest of its PeerAuthentications is the policy's. */
    if (!g->mode || strictness(m) < strictness(g->mode))
        g->mode = m;
out:
    free(sns);
    free(sname);
}

/* Splits DOMAIN/ns/NS/sa/SA with our trust domain. */
static bool principal_split(const char *p, const char *domain, char **ns, char **sa)
{
    size_t dl = strlen(domain);
    char a[64], b[64];
    int end = 0;
    if (strncmp(p, domain, dl) != 0 ||
        sscanf(p + dl, "/ns/%63[^/]/sa/%63[^/]%n", a, b, &end) != 2 || p[dl + (size_t)end])
        return false;
    *ns = xstrdup(a);
    *sa = xstrdup(b);
    return true;
}

/* istio.c's principals for identity SA.NS.svc: SA's and those of the Services labelled app: SA. */
static struct mesh_string_list expansion(const struct rd *r, const char *ns, const char *sa)
{
    struct mesh_string_list e = {0};
    char *p = xasprintf("%s/ns/%s/sa/%s", r->domain, ns, sa);
    mesh_string_list_add(&e, p);
    free(p);
    for (size_t i = 0; i < r->n_svcs; i++)
        if (r->svcs[i].app && !strcmp(r->svcs[i].ns, ns) && !strcmp(r->svcs[i].app, sa)) {
            p = xasprintf("%s/ns/%s/sa/%s", r->domain, ns, r->svcs[i].name);
            if (!list_has(&e, p))
                mesh_string_list_add(&e, p);
            free(p);
        }
    return e;
}

/* Our `from` for a set of principals: the fewest short identities whose principals are exactly
 * some of them, then spiffe:// for the rest. false when one is no SPIFFE ID we can hold. */
static bool from_principals(struct rd *r, const struct mesh_string_list *pr, struct mesh_node *from)
{
    size_t n = pr->len;
    struct mesh_string_list *exp = xcalloc(n ? n : 1, sizeof(*exp));
    char **ident = xcalloc(n ? n : 1, sizeof(*ident));
    bool *covered = xcalloc(n ? n : 1, sizeof(*covered));
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        char *ns = NULL, *sa = NULL;
        if (!principal_split(pr->items[i], r->domain, &ns, &sa))
            continue;
        exp[i] = expansion(r, ns, sa);
        bool subset = true;
        for (size_t k = 0; k < exp[i].len && subset; k++)
            subset = list_has(pr, exp[i].items[k]);
        if (subset)
            ident[i] = xasprintf("%s.%s.svc", sa, ns);
        else
            mesh_string_list_clear(&exp[i]);
        free(ns);
        free(sa);
    }
    /* Greedy, widest first: an identity is kept when its own principal is not yet given. */
    bool *keep = xcalloc(n ? n : 1, sizeof(*keep));
    for (size_t width = n; width > 0; width--)
        for (size_t i = 0; i < n; i++) {
            if (!ident[i] || exp[i].len != width || covered[i])
                continue;
            keep[i] = true;
            for (size_t k = 0; k < exp[i].len; k++)
                for (size_t j = 0; j < n; j++)
                    if (!strcmp(pr->items[j], exp[i].items[k]))
                        covered[j] = true;
        }
    for (size_t i = 0; i < n && ok; i++) {
        if (keep[i]) {
            seq_add_str(from, ident[i]);
        } else if (!covered[i]) {
            char *id = xasprintf("spiffe://%s", pr->items[i]);
            char why[200];
            ok = mesh_text_ok(MESH_CHECK_IDENTITY, id, why, sizeof(why));
            if (ok)
                seq_add_str(from, id);
            free(id);
        }
    }
    for (size_t i = 0; i < n; i++) {
        mesh_string_list_clear(&exp[i]);
        free(ident[i]);
    }
    free(exp);
    free(ident);
    free(covered);
    free(keep);
    return ok;
}

/* One Istio rule as our rule bodies (one per to[] entry), appended to bodies; false (warned)
 * when it is left out. */
static bool read_authz_rule(struct rd *r, const struct mesh_node *obj, const struct mesh_node *rule,
                            const char *path, struct mesh_node *bodies)
{
    char p[PATH_LEN], why[300];
    struct mesh_string_list principals = {0};
    struct mesh_node *from = mesh_node_seq();
    bool ok = false;
    if (!is_map(rule)) {
        fmt_path(p, "%s", path);
        snprintf(why, sizeof(why), "a rule is a mapping");
        goto out;
    }
    for (size_t i = 0; i < rule->len; i++) {
        const char *key = rule->pairs[i].key->text;
        if (strcmp(key, "from") && strcmp(key, "to")) {
            fmt_path(p, "%s.%s", path, key);
            snprintf(why, sizeof(why),
                     "our rules look at the caller's identity, the method and "
                     "the path only");
            goto out;
        }
    }
    const struct mesh_node *froms = get(rule, "from");
    if (froms && !is_seq(froms)) {
        fmt_path(p, "%s.from", path);
        snprintf(why, sizeof(why), "from is a list");
        goto out;
    }
    bool anyone = !froms || !froms->len;
    for (size_t i = 0; froms && i < froms->len; i++) {
        const struct mesh_node *src = get(froms->items[i], "source");
        const struct mesh_node *pl = get(src, "principals");
        fmt_path(p, "%s.from[%zu]", path, i);
        if (!is_map(froms->items[i]) || froms->items[i]->len != 1 || !is_map(src) ||
            src->len != 1 || !string_seq(pl)) {
            snprintf(why, sizeof(why), "our rules name callers by their principals only");
            goto out;
        }
        for (size_t k = 0; k < pl->len; k++) {
            const char *pr = pl->items[k]->text;
            if (!strcmp(pr, "*") || strchr(pr, '*')) {
                snprintf(why, sizeof(why),
                         "\"%s\" is any caller with a certificate, which ours "
                         "cannot tell from any caller at all",
                         pr);
                goto out;
            }
            if (!list_has(&principals, pr))
                mesh_string_list_add(&principals, pr);
        }
    }
    fmt_path(p, "%s.from", path);
    snprintf(why, sizeof(why), "a principal is no SPIFFE ID (TRUST-DOMAIN/ns/NS/sa/SA)");
    if (!anyone && !from_principals(r, &principals, from))
        goto out;
    const struct mesh_node *tos = get(rule, "to");
    size_t n_to = is_seq(tos) && tos->len ? tos->len : 1;
    if (tos && !is_seq(tos)) {
        fmt_path(p, "%s.to", path);
        snprintf(why, sizeof(why), "to is a list");
        goto out;
    }
    struct mesh_node *made = mesh_node_seq();
    for (size_t t = 0; t < n_to; t++) {
        const struct mesh_node *op = tos && tos->len ? get(tos->items[t], "operation") : NULL;
        fmt_path(p, "%s.to[%zu]", path, t);
        struct mesh_node *body = mesh_node_map();
        mesh_node_seq_append(made, body);
        if (from->len)
            mesh_node_map_set(body, "from", mesh_read_copy(from));
        if (!tos || !tos->len)
            continue;
        const struct mesh_node *methods = get(op, "methods"), *paths = get(op, "paths");
        bool fits = is_map(tos->items[t]) && tos->items[t]->len == 1 && is_map(op) &&
                    op->len == (size_t)(methods != NULL) + (paths != NULL) &&
                    (!methods || string_seq(methods)) && (!paths || string_seq(paths));
        if (!fits)
            snprintf(why, sizeof(why), "our rules look at the method and the path only");
        for (size_t k = 0; fits && methods && k < methods->len; k++)
            fits = mesh_text_ok(MESH_CHECK_METHOD, methods->items[k]->text, why, sizeof(why));
        for (size_t k = 0; fits && paths && k < paths->len; k++)
            fits = mesh_text_ok(MESH_CHECK_AUTHZ_PATH, paths->items[k]->text, why, sizeof(why));
        if (!fits) {
            mesh_node_free(made);
            goto out;
        }
        if (methods && methods->len)
            mesh_node_map_set(body, "methods", mesh_read_copy(methods));
        if (paths && paths->len)
            mesh_node_map_set(body, "paths", mesh_read_copy(paths));
    }
    for (size_t i = 0; i < made->len; i++)
        mesh_node_seq_append(bodies, made->items[i]);
    made->len = 0;
    mesh_node_free(made);
    ok = true;
out:
    if (!ok)
        warn(r, obj, p, "%s; the rule is left out", why);
    mesh_string_list_clear(&principals);
    mesh_node_free(from);
    return ok;
}

static void read_authorization_policy(struct rd *r, const struct mesh_node *obj)
{
    static const char *const handled[] = {"selector", "action", "rules", NULL};
    const struct mesh_node *spec = get(obj, "spec");
    const char *ns = mesh_read_namespace(obj);
    const char *action = mesh_read_str(spec, "action");
    if (action && strcmp(action, "ALLOW") != 0) {
        warn(r, obj, "spec.action", "our rules allow, and %s is not allowing", action);
        return;
    }
    if (!get(spec, "selector")) {
        warn(r, obj, "spec.selector",
             "our rules name the services they cover, and this policy "
             "covers a whole namespace or its target references");
        return;
    }
    unread_keys(r, obj, spec, "spec", handled);
    const struct mesh_node *rules = get(spec, "rules");
    if (rules && !is_seq(rules)) {
        warn(r, obj, "spec.rules", "rules is a list");
        return;
    }
    char *item = item_for_selector(r, obj, get(spec, "selector"), ns);
    if (!item)
        return;
    struct mesh_node *bodies = mesh_node_seq();
    for (size_t i = 0; rules && i < rules->len; i++) {
        char p[PATH_LEN];
        fmt_path(p, "spec.rules[%zu]", i);
        read_authz_rule(r, obj, rules->items[i], p, bodies);
    }
    if (!bodies->len) {
        /* Nobody may call (no rules, or none we could read: reading never lets more in): a rule
         * no caller matches, which istio.c leaves out. */
        struct mesh_node *body = mesh_node_map();
        struct mesh_node *from = mesh_node_seq();
        seq_add_str(from, ALLOW_NOBODY);
        mesh_node_map_set(body, "from", from);
        mesh_node_seq_append(bodies, body);
    }
    /* The same body on several workloads is one rule to all of them, as long as every
     * workload keeps its rules in the order they were. */
    struct sp_group *g = sp_group(r, obj);
    long last = -1;
    for (size_t b = 0; b < bodies->len; b++) {
        long found = -1;
        for (size_t k = (size_t)(last + 1); k < g->n_rules && found < 0; k++)
            if (mesh_node_equal(g->rules[k].body, bodies->items[b]) &&
                !list_has(&g->rules[k].to, item))
                found = (long)k;
        if (found < 0) {
            xgrow((void **)&g->rules, &g->cap_rules, g->n_rules + 1, sizeof(*g->rules));
            g->rules[g->n_rules] = (struct sp_rule){mesh_read_copy(bodies->items[b]), {0}};
            found = (long)g->n_rules++;
        }
        mesh_string_list_add(&g->rules[found].to, item);
        last = found;
    }
    mesh_node_free(bodies);
    free(item);
}

static void emit_security_policies(struct rd *r)
{
    for (size_t i = 0; i < r->n_sps; i++) {
        struct sp_group *g = &r->sps[i];
        if (g->mode || g->n_rules) {
            struct mesh_node *spec = NULL;
            struct mesh_node *doc = mesh_read_doc("SecurityPolicy", g->name, g->ns, &spec);
            if (g->services.len) {
                struct mesh_node *services = mesh_node_seq();
                for (size_t k = 0; k < g->services.len; k++)
                    seq_add_str(services, g->services.items[k]);
                mesh_node_map_set(spec, "services", services);
            }
            if (g->mode) {
                struct mesh_node *mtls = mesh_node_map();
                set_str(mtls, "mode", mesh_mtls_mode_name(g->mode));
                mesh_node_map_set(spec, "mtls", mtls);
            }
            if (g->n_rules) {
                struct mesh_node *rules = mesh_node_seq();
                for (size_t k = 0; k < g->n_rules; k++) {
                    struct mesh_node *rule = g->rules[k].body;
                    g->rules[k].body = NULL;
                    struct mesh_node *to = mesh_node_seq();
                    for (size_t t = 0; t < g->rules[k].to.len; t++)
                        seq_add_str(to, g->rules[k].to.items[t]);
                    mesh_node_map_set(rule, "to", to);
                    mesh_node_seq_append(rules, rule);
                }
                mesh_node_map_set(spec, "authorization", rules);
            }
            emit(r, doc, g->obj);
        }
        for (size_t k = 0; k < g->n_rules; k++) {
            mesh_node_free(g->rules[k].body);
            mesh_string_list_clear(&g->rules[k].to);
        }
        free(g->rules);
        mesh_string_list_clear(&g->services);
        free(g->ns);
        free(g->name);
    }
}

/* --- MeshConfig: Telemetry, Gateways, mesh-wide mTLS --- */

static struct mcfg *mesh_config(struct rd *r, const char *ns, const char *name,
                                const struct mesh_node *obj)
{
    for (size_t i = 0; i < r->n_mcs; i++)
        if ((!ns || !strcmp(r->mcs[i].ns, ns)) && (!name || !strcmp(r->mcs[i].name, name)))
            return &r->mcs[i];
    xgrow((void **)&r->mcs, &r->cap_mcs, r->n_mcs + 1, sizeof(*r->mcs));
    struct mcfg *mc = &r->mcs[r->n_mcs++];
    memset(mc, 0, sizeof(*mc));
    /* Mesh-wide objects written by hand belong to the seed's MeshConfig, default/istio. */
    mc->ns = xstrdup(ns ? ns : MESH_DEFAULT_NAMESPACE);
    mc->name = xstrdup(name ? name : "istio");
    mc->obj = obj;
    return mc;
}

/* The MeshConfig obj was made from, or (written by hand) the first one. */
static struct mcfg *mesh_config_of(struct rd *r, const struct mesh_node *obj)
{
    enum mesh_kind sk;
    char *ns = NULL, *name = NULL;
    struct mcfg *mc = NULL;
    if (mesh_read_source(obj, &sk, &ns, &name) && sk == MESH_KIND_MESH_CONFIG)
        mc = mesh_config(r, ns, name, obj);
    else if (!has_source(obj))
        mc = mesh_config(r, NULL, NULL, obj);
    free(ns);
    free(name);
    return mc;
}

static void read_telemetry(struct rd *r, const struct mesh_node *obj)
{
    static const char *const handled[] = {"tracing", NULL};
    static const char *const tracing_keys[] = {"randomSamplingPercentage", "disableSpanReporting",
                                               NULL};
    const struct mesh_node *spec = get(obj, "spec");
    const struct mesh_node *tracing = get(spec, "tracing");
    if (strcmp(mesh_read_namespace(obj), ROOT_NS) != 0 || get(spec, "selector") ||
        get(spec, "targetRef") || get(spec, "targetRefs")) {
        warn(r, obj, "spec",
             "our telemetry settings are the whole mesh's (a Telemetry in %s "
             "without a selector)",
             ROOT_NS);
        return;
    }
    if (tracing && !is_seq(tracing)) {
        warn(r, obj, "spec.tracing", "tracing is a list");
        return;
    }
    unread_keys(r, obj, spec, "spec", handled);
    if (!tracing || !tracing->len)
        return;
    struct mcfg *mc = mesh_config_of(r, obj);
    if (!mc) {
        warn(r, obj, "", "its source is no MeshConfig");
        return;
    }
    if (tracing->len > 1)
        warn(r, obj, "spec.tracing", "our telemetry has one tracing setting; the first is read");
    const struct mesh_node *t = tracing->items[0];
    unread_keys(r, obj, t, "spec.tracing[0]", tracing_keys);
    const struct mesh_node *pct = get(t, "randomSamplingPercentage");
    if (is_true(get(t, "disableSpanReporting")))
        mc->tracing_off = true;
    else if (is_number(pct)) {
        mesh_node_free(mc->sampling);
        mc->sampling = mesh_read_copy(pct);
    } else if (pct)
        warn(r, obj, "spec.tracing[0].randomSamplingPercentage", "not a number");
}

/* A Gateway istio.c writes for our ingress: selector istio: ingressgateway, one server on port 80
 * for HTTP (its hosts are those of the VirtualServices naming it). */
static void read_gateway(struct rd *r, const struct mesh_node *obj)
{
    const struct mesh_node *spec = get(obj, "spec");
    struct mcfg *mc = mesh_config_of(r, obj);
    if (!mc) {
        warn(r, obj, "", "its source is no MeshConfig");
        return;
    }
    mc->ingress = true;
    static const char *const handled[] = {"selector", "servers", NULL};
    unread_keys(r, obj, spec, "spec", handled);
    const struct mesh_node *sel = get(spec, "selector");
    if (!is_map(sel) || sel->len != 1 || !streq(mesh_read_str(sel, "istio"), "ingressgateway"))
        warn(r, obj, "spec.selector",
             "our Gateways run on Istio's ingress gateway (istio: "
             "ingressgateway)");
    const struct mesh_node *servers = get(spec, "servers");
    const struct mesh_node *s0 = is_seq(servers) && servers->len == 1 ? servers->items[0] : NULL;
    const struct mesh_node *port = get(s0, "port");
    bool plain = is_map(s0) && s0->len == 2 && get(s0, "hosts") && is_map(port) &&
                 streq(mesh_read_str(port, "number"), "80") &&
                 streq(mesh_read_str(port, "protocol"), "HTTP") &&
                 port->len == 2u + (get(port, "name") != NULL);
    if (!plain)
        warn(r, obj, "spec.servers",
             "our Gateways serve plain HTTP on port 80 for the hosts of the "
             "VirtualServices naming them");
}

static void emit_mesh_configs(struct rd *r)
{
    for (size_t i = 0; i < r->n_mcs; i++) {
        struct mcfg *mc = &r->mcs[i];
        struct mesh_node *spec = NULL;
        struct mesh_node *doc = mesh_read_doc("MeshConfig", mc->name, mc->ns, &spec);
        set_str(spec, "provider", "istio");
        if (r->version)
            set_str(spec, "version", r->version);
        if (mc->mtls_off || r->mutual_obj) {
            struct mesh_node *mtls = mesh_node_map();
            if (mc->mtls_off)
                mesh_node_map_set(mtls, "enabled", mesh_node_bool(false));
            if (r->mutual_obj)
                mesh_node_map_set(mtls, "auto_upgrade", mesh_node_bool(false));
            mesh_node_map_set(spec, "mtls", mtls);
        }
        if (mc->tracing_off || mc->sampling) {
            struct mesh_node *tel = mesh_node_map();
            mesh_node_map_set(tel, "enabled", mesh_node_bool(!mc->tracing_off));
            if (mc->sampling && !mc->tracing_off)
                mesh_node_map_set(tel, "sampling_rate", mesh_read_copy(mc->sampling));
            mesh_node_map_set(spec, "telemetry", tel);
        }
        if (mc->ingress) {
            struct mesh_node *ing = mesh_node_map();
            mesh_node_map_set(ing, "enabled", mesh_node_bool(true));
            mesh_node_map_set(spec, "ingress", ing);
        }
        emit(r, doc, mc->obj);
        mesh_node_free(mc->sampling);
        free(mc->ns);
        free(mc->name);
    }
}

/* --- the reader --- */

enum obj_kind {
    OBJ_OTHER = 0,
    OBJ_SERVICE,
    OBJ_VIRTUAL_SERVICE,
    OBJ_DESTINATION_RULE,
    OBJ_GATEWAY,
    OBJ_PEER_AUTHENTICATION,
    OBJ_AUTHORIZATION_POLICY,
    OBJ_TELEMETRY,
    OBJ_COUNT,
};

static enum obj_kind classify(const struct mesh_node *obj)
{
    static const struct {
        const char *group, *kind;
        enum obj_kind k;
    } table[] = {
        {"networking.istio.io", "VirtualService", OBJ_VIRTUAL_SERVICE},
        {"networking.istio.io", "DestinationRule", OBJ_DESTINATION_RULE},
        {"networking.istio.io", "Gateway", OBJ_GATEWAY},
        {"security.istio.io", "PeerAuthentication", OBJ_PEER_AUTHENTICATION},
        {"security.istio.io", "AuthorizationPolicy", OBJ_AUTHORIZATION_POLICY},
        {"telemetry.istio.io", "Telemetry", OBJ_TELEMETRY},
    };
    const char *api = mesh_read_str(obj, "apiVersion"), *kind = mesh_read_str(obj, "kind");
    if (!api || !kind)
        return OBJ_OTHER;
    if (!strcmp(api, "v1"))
        return strcmp(kind, "Service") == 0 ? OBJ_SERVICE : OBJ_OTHER;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        size_t gl = strlen(table[i].group);
        if (!strncmp(api, table[i].group, gl) && api[gl] == '/' && !strcmp(kind, table[i].kind))
            return table[i].k;
    }
    return OBJ_OTHER;
}

struct sorted_obj {
    const struct mesh_node *obj;
    enum obj_kind kind;
    size_t index;
};

/* By kind, namespace, name, then input order: what is read does not depend on that order. */
static int compare_objs(const void *pa, const void *pb)
{
    const struct sorted_obj *a = pa, *b = pb;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    int c = strcmp(mesh_read_namespace(a->obj), mesh_read_namespace(b->obj));
    if (!c) {
        const char *na = mesh_read_name(a->obj), *nb = mesh_read_name(b->obj);
        c = strcmp(na ? na : "", nb ? nb : "");
    }
    return c ? c : a->index < b->index ? -1 : a->index > b->index;
}

/* An Istio object we can start reading: a name, and a spec that is a mapping. */
static bool well_formed(struct rd *r, const struct mesh_node *obj)
{
    if (!mesh_read_name(obj)) {
        warn(r, obj, "metadata.name", "the object has no name");
        return false;
    }
    if (!is_map(get(obj, "spec"))) {
        warn(r, obj, "spec", "%s",
             get(obj, "spec") ? "the spec is not a mapping" : "the object has no spec");
        return false;
    }
    return true;
}

enum mesh_err mesh_istio_read(struct mesh_node *const *objects, size_t n,
                              const struct mesh_translate_options *opt, struct mesh_resource ***out,
                              size_t *n_out, struct mesh_diags *warnings)
{
    static const struct mesh_translate_options defaults = {0};
    struct mesh_diags scratch = {0};
    struct rd r = {.opt = opt ? opt : &defaults, .warnings = warnings ? warnings : &scratch};
    r.domain =
        r.opt->cluster_domain && *r.opt->cluster_domain ? r.opt->cluster_domain : DEFAULT_DOMAIN;
    struct sorted_obj *objs = xcalloc(n ? n : 1, sizeof(*objs));
    size_t n_objs = 0;
    for (size_t i = 0; i < n; i++) {
        if (!objects[i])
            continue;
        if (!is_map(objects[i])) {
            warn(&r, objects[i], "", "an object is a mapping");
            continue;
        }
        enum obj_kind k = classify(objects[i]);
        if (k == OBJ_OTHER)
            continue; /* nothing istio.c writes, nor a Service */
        if (k != OBJ_SERVICE && !well_formed(&r, objects[i]))
            continue;
        const char *api = mesh_read_str(objects[i], "apiVersion");
        if (k != OBJ_SERVICE && !r.old_api && has_source(objects[i]) &&
            (strstr(api, "/v1beta1") || strstr(api, "/v1alpha1")))
            r.old_api = objects[i];
        objs[n_objs++] = (struct sorted_obj){objects[i], k, i};
    }
    qsort(objs, n_objs, sizeof(*objs), compare_objs);
    /* The kinds' runs, in the order the reading needs them. */
    size_t first[OBJ_COUNT + 1] = {0};
    for (size_t i = 0, k = 0; k <= OBJ_COUNT; k++) {
        while (i < n_objs && objs[i].kind < (enum obj_kind)k)
            i++;
        first[k] = i;
    }
#define EACH(kind, var) for (size_t var = first[kind]; var < first[(kind) + 1]; var++)

    const struct mesh_node **svc_objs = xcalloc(n_objs ? n_objs : 1, sizeof(*svc_objs));
    size_t n_svc_objs = 0;
    EACH(OBJ_SERVICE, i)
    svc_objs[n_svc_objs++] = objs[i].obj;
    read_services(&r, svc_objs, n_svc_objs);
    free(svc_objs);
    r.drs = xcalloc(n_objs ? n_objs : 1, sizeof(*r.drs));
    EACH(OBJ_DESTINATION_RULE, i)
    r.drs[r.n_drs++] = objs[i].obj;

    /* The Services' own faults first: routes' faults are told from them. */
    enum mesh_kind sk;
    EACH(OBJ_VIRTUAL_SERVICE, i)
    {
        char *sns = NULL, *sname = NULL;
        if (mesh_read_source(objs[i].obj, &sk, &sns, &sname) && sk == MESH_KIND_FAULT_INJECTION)
            read_service_fault(&r, objs[i].obj, sns, sname);
        free(sns);
        free(sname);
    }
    EACH(OBJ_VIRTUAL_SERVICE, i)
    {
        char *sns = NULL, *sname = NULL;
        bool fault =
            mesh_read_source(objs[i].obj, &sk, &sns, &sname) && sk == MESH_KIND_FAULT_INJECTION;
        free(sns);
        free(sname);
        if (!fault)
            read_virtual_service(&r, objs[i].obj);
    }
    EACH(OBJ_DESTINATION_RULE, i)
    read_destination_rule(&r, objs[i].obj, false);
    EACH(OBJ_DESTINATION_RULE, i)
    read_destination_rule(&r, objs[i].obj, true);
    resolve_app_rules(&r);
    read_breakers(&r);
    EACH(OBJ_PEER_AUTHENTICATION, i)
    read_peer_authentication(&r, objs[i].obj);
    EACH(OBJ_AUTHORIZATION_POLICY, i)
    read_authorization_policy(&r, objs[i].obj);
    emit_security_policies(&r);
    EACH(OBJ_TELEMETRY, i)
    read_telemetry(&r, objs[i].obj);
    EACH(OBJ_GATEWAY, i)
    read_gateway(&r, objs[i].obj);
    /* Clients asking for ISTIO_MUTUAL are what auto_upgrade: false makes. */
    if (r.mutual_obj)
        mesh_config(&r, NULL, NULL, r.mutual_obj);
    /* The version asked for; none, and our objects use the API versions releases before 1.22
     * write: the oldest of those, which istio.c writes the same objects for (1.14 to 1.21 differ
     * in nothing it writes), kept in the seed's MeshConfig so that they translate back alike. */
    r.version = r.opt->version;
    if (!r.version && r.old_api) {
        r.version = ISTIO_OLD_API_VERSION;
        mesh_config(&r, NULL, NULL, r.old_api);
    }
    emit_mesh_configs(&r);
#undef EACH

    mesh_read_sort(r.list, r.len);
    *out = r.list;
    *n_out = r.len;
    for (size_t i = 0; i < r.n_svcs; i++) {
        free(r.svcs[i].subset);
        policy_clear(&r.svcs[i].pol);
        free(r.svcs[i].cb_ns);
        free(r.svcs[i].cb_name);
    }
    free(r.svcs);
    free(r.drs);
    for (size_t i = 0; i < r.n_sfaults; i++)
        mesh_node_free(r.sfaults[i].fault);
    free(r.sfaults);
    for (size_t i = 0; i < r.n_apps; i++) {
        policy_clear(&r.apps[i].pol);
        free(r.apps[i].app);
        free(r.apps[i].ns);
        free(r.apps[i].cb_ns);
        free(r.apps[i].cb_name);
        free(r.apps[i].members);
    }
    free(r.apps);
    free(r.sps);
    free(r.mcs);
    free(objs);
    mesh_diags_clear(&scratch);
    return MESH_OK;
}
