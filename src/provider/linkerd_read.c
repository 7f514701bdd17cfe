/* SPDX-License-Identifier: Apache-2.0 */
/* The Linkerd reader (translate.h read): what linkerd.c writes, and the same kinds written by
 * hand, read back into our resources, so that translating them again gives the same objects.
 *
 *  - HTTPRoutes attached to Services are VirtualServices (and the fault backends in them
 *    FaultInjections); HTTPRoutes attached to Servers, with the AuthorizationPolicies, Servers
 *    and authentications around them, and the Namespaces' default-inbound-policy, are
 *    SecurityPolicies; failure accrual annotations on Services are CircuitBreakers; the proxy's
 *    resources on Namespaces a MeshConfig of provider linkerd (version: opt->version); v1
 *    Services our Services.
 *  - An object is read as the resources its source annotation names (several for an object
 *    made from several); one without is read as its own resource, named after it.
 *
 * Where Linkerd keeps less than we said, the reader takes the reading that translates back to
 * the same objects, and names what is lost in a warning only when the objects themselves say
 * something our model cannot hold:
 *  - Spellings: hosts, `to` and `services` come back as Service names (payment-v1, or the app
 *    payment when the Servers are exactly that app's Services), identities as name.namespace
 *    (or spiffe://DOMAIN/ns/NS/sa/NAME when the short form would admit more Services), paths in
 *    the shortest form that translates to the same expression (a prefix as a glob).
 *  - Route names are not kept: routes come back unnamed, except one a FaultInjection names,
 *    which takes the fault's name. Rules an HTTPRoute split 8 matches at a time are joined.
 *  - Weights come back as percentages; a fault's share is taken back out of the weights.
 *  - A FaultInjection on a VirtualService is read as one for the whole route set when its
 *    backend is in every rule, else one per route; which of several faults with the same
 *    status and share came from which resource is not kept, and does not change the objects.
 *  - Ports: Kubernetes keeps a Service's endpoints (EndpointSlices), which are not read; the
 *    port the translation named (backendRefs, the Server) comes back as one endpoint, the
 *    Service's cluster DNS name on that port. A Server's proxyProtocol is its Service's
 *    protocol.
 *  - A CircuitBreaker that annotated several Services guarded a VirtualService: the one read
 *    back whose hosts and destinations are exactly those Services; when none is (its routes
 *    were never written: a gateway's, or an older Linkerd's), a stand-in VirtualService named
 *    after the breaker, bound to gateway "unknown" so that no sidecar takes its routes, names
 *    them, with a warning.
 *  - A per-service mTLS mode under rules survives only in the authentication of rules that
 *    admit anyone (every meshed identity, or every network): the reader restores the mode when
 *    the namespace's default would not give that authentication.
 *  - Rules a partial translation left out leave a gap in the rule numbers kept in object names;
 *    the rules read back are numbered anew. */
#include "translate.h"
#include "linkerd_names.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "mesh/security_policy.h"
#include "mesh/service.h"
#include "model/model.h"
#include "model/schema.h"

#define GW_GROUP         "gateway.networking.k8s.io"
#define LK_IDENTITY      ".serviceaccount.identity.linkerd."
#define LK_INBOUND       "config.linkerd.io/default-inbound-policy"
#define LK_CPU           "config.linkerd.io/proxy-cpu-request"
#define LK_MEMORY        "config.linkerd.io/proxy-memory-request"
#define LK_ACCRUAL       "balancer.linkerd.io/failure-accrual"
#define LK_MAX_FAILURES  LK_ACCRUAL "-consecutive-max-failures"
#define LK_MIN_PENALTY   LK_ACCRUAL "-consecutive-min-penalty"
#define LK_MAX_PENALTY   LK_ACCRUAL "-consecutive-max-penalty"
#define LK_JITTER        LK_ACCRUAL "-consecutive-jitter-ratio"
#define LK_RETRY         "retry.linkerd.io/"
#define LK_TIMEOUT       "timeout.linkerd.io/"
#define LK_PCT_SCALE     10000ULL
#define LK_PENALTY_LIMIT 60000ULL /* Linkerd's default max-penalty */
#define STAND_IN_GATEWAY "unknown"

/* --- small lists --- */

struct strs {
    char **v;
    size_t n, cap;
};

static bool strs_has(const struct strs *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return true;
    return false;
}

/* Adds a copy of x unless it is there; whether it was added. */
static bool strs_add(struct strs *s, const char *x)
{
    if (strs_has(s, x))
        return false;
    xgrow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v));
    s->v[s->n++] = xstrdup(x);
    return true;
}

static void strs_clear(struct strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static bool strs_same_set(const struct strs *a, const struct strs *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!strs_has(b, a->v[i]))
            return false;
    return true;
}

/* --- node access: every lookup tolerates a missing or mistyped node --- */

static const struct mesh_node *child(const struct mesh_node *n, const char *key)
{
    return mesh_node_map_get(n, key);
}

static const struct mesh_node *child_seq(const struct mesh_node *n, const char *key)
{
    const struct mesh_node *c = child(n, key);
    return c && c->type == MESH_NODE_SEQ ? c : NULL;
}

static const char *text(const struct mesh_node *n)
{
    return n && n->type == MESH_NODE_SCALAR && n->scalar_kind != MESH_SCALAR_NULL && n->text
               ? n->text
               : NULL;
}

static const char *text_at(const struct mesh_node *n, const char *key)
{
    return text(child(n, key));
}

static const struct mesh_node *annotations(const struct mesh_node *obj)
{
    return child(child(obj, "metadata"), "annotations");
}

static const char *annotation(const struct mesh_node *obj, const char *key)
{
    return text_at(annotations(obj), key);
}

/* A non-negative integer: a YAML/JSON integer, or a string of digits (annotations). */
static bool uint_of(const struct mesh_node *n, unsigned long long max, unsigned long long *out)
{
    const char *t = text(n);
    if (!t || !*t || strlen(t) > 18 || n->scalar_kind == MESH_SCALAR_FLOAT ||
        n->scalar_kind == MESH_SCALAR_BOOL)
        return false;
    unsigned long long v = 0;
    for (const char *p = t; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long long)(*p - '0');
    }
    if (v > max)
        return false;
    *out = v;
    return true;
}

static bool duration_ok(const char *t, unsigned long long *ms)
{
    char why[256];
    return t && mesh_duration_parse(t, ms, why, sizeof(why)) && *ms != ULLONG_MAX;
}

/* "group/version" -> whether the group is g ("" for the core group "v1"). */
static bool api_group_is(const struct mesh_node *obj, const char *g)
{
    const char *api = text_at(obj, "apiVersion");
    if (!api)
        return false;
    const char *slash = strchr(api, '/');
    if (!slash)
        return !*g;
    return strlen(g) == (size_t)(slash - api) && strncmp(api, g, strlen(g)) == 0;
}

static bool kind_is(const struct mesh_node *obj, const char *kind)
{
    const char *k = text_at(obj, "kind");
    return k && strcmp(k, kind) == 0;
}

/* A reference's group: absent, "" and "core" are Kubernetes' core group. */
static bool core_group(const char *g)
{
    return !g || !*g || strcmp(g, "core") == 0;
}

/* --- source annotations: "KIND/NS/NAME[,KIND/NS/NAME...]" --- */

struct src {
    enum mesh_kind kind;
    char *ns, *name;
};

struct srcs {
    struct src *v;
    size_t n, cap;
};

static void srcs_read(const struct mesh_node *obj, struct srcs *s)
{
    memset(s, 0, sizeof(*s));
    const char *t = annotation(obj, MESH_SOURCE_ANNOTATION);
    if (!t)
        return;
    char *copy = xstrdup(t);
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        char *a = strchr(p, '/');
        char *b = a ? strchr(a + 1, '/') : NULL;
        if (!a || !b || a == p || b == a + 1 || !b[1] || strchr(b + 1, '/'))
            continue;
        *a = '\0';
        enum mesh_kind kind;
        if (mesh_kind_parse(p, &kind) != MESH_OK)
            continue;
        xgrow((void **)&s->v, &s->cap, s->n + 1, sizeof(*s->v));
        s->v[s->n++] = (struct src){kind, xstrndup(a + 1, (size_t)(b - a - 1)), xstrdup(b + 1)};
    }
    free(copy);
}

static void srcs_clear(struct srcs *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].ns);
        free(s->v[i].name);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* The last source of that kind: the translator writes sources sorted, and when several
 * resources set one annotation the last one's value stays. */
static const struct src *srcs_last(const struct srcs *s, enum mesh_kind kind)
{
    for (size_t i = s->n; i-- > 0;)
        if (s->v[i].kind == kind)
            return &s->v[i];
    return NULL;
}

static size_t srcs_count(const struct srcs *s, enum mesh_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->v[i].kind == kind;
    return n;
}

/* --- regular expressions, as linkerd.c writes them --- */

/* The literal text of s[0..n) when it is escaped literals only ('*' for each unescaped ".*" when
 * stars is set); NULL when it holds any other regex syntax, or a literal '*' a glob would read
 * as a wildcard. */
static char *regex_literal(const char *s, size_t n, bool stars)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && strchr(LK_REGEX_META, s[i + 1]) &&
            !(stars && s[i + 1] == '*')) {
            mesh_strbuf_append(&sb, &s[i + 1], 1);
            i++;
        } else if (stars && s[i] == '.' && i + 1 < n && s[i + 1] == '*') {
            mesh_strbuf_puts(&sb, "*");
            i++;
        } else if (strchr(LK_REGEX_META, s[i])) {
            mesh_strbuf_free(&sb);
            return NULL;
        } else {
            mesh_strbuf_append(&sb, &s[i], 1);
        }
    }
    return mesh_strbuf_take(&sb);
}

/* The glob a path regex was written from (mesh_linkerd_glob_regex: "^" literals and ".*" "$"),
 * with at least one '*'; NULL when it is not one. */
static char *glob_of_regex(const char *re)
{
    size_t n = strlen(re);
    if (n < 2 || re[0] != '^' || re[n - 1] != '$' || mesh_linkerd_escaped_at(re, n))
        return NULL;
    char *g = regex_literal(re + 1, n - 2, true);
    if (!g || !strchr(g, '*') || g[0] != '/') {
        free(g);
        return NULL;
    }
    /* The same text back, or it was not written from this glob. */
    char *back = mesh_linkerd_glob_regex(g, false);
    bool same = strcmp(back, re) == 0;
    free(back);
    if (!same) {
        free(g);
        return NULL;
    }
    return g;
}

/* Our regex (POSIX ERE, anchored at both ends) for an anchored one as linkerd.c writes it:
 * without its anchors, and without the (?:...) it wraps an alternation in. */
static char *regex_unanchored(const char *re)
{
    size_t from = re[0] == '^' ? 1 : 0, n = strlen(re);
    if (n > from && re[n - 1] == '$' && !mesh_linkerd_escaped_at(re, n))
        n--;
    const char *s = re + from;
    size_t len = n - from;
    if (len >= 5 && strncmp(s, "(?:", 3) == 0 && mesh_linkerd_regex_top(s, len, ')') == len - 1 &&
        mesh_linkerd_regex_top(s + 3, len - 4, '|') < len - 4)
        return xstrndup(s + 3, len - 4);
    return xstrndup(s, len);
}

/* --- the read's state --- */

/* A v1 Service: the full object (with a spec) and our Service read from it, and what
 * Linkerd's objects say of its port and protocol. */
struct rsvc {
    char *ns, *name;
    const struct mesh_node *full;
    struct mesh_resource *res; /* NULL: not ours to read */
    long port;                 /* from backendRefs: -1 none */
    const struct mesh_node *port_obj;
    char *port_field;
    bool server;       /* a Server stands for it */
    long server_port;  /* -1: the port named http */
    const char *proto; /* our protocol from the Server's proxyProtocol; NULL: none */
};

/* A Server and the host of ours it stands for. */
struct rserver {
    const struct mesh_node *obj;
    const char *ns, *name;
    char *host;                 /* NULL: none (warned) */
    enum mesh_mtls_mode access; /* hand-written accessPolicy all-(un)authenticated */
    bool used;                  /* an AuthorizationPolicy targets it */
    enum mesh_mtls_mode anyone; /* what the rules admitting anyone required; UNSET: none */
    struct rsp *anyone_sp;
};

/* A request condition of an authorization rule: method and path (exact, "/x*" a prefix), NULL
 * for any. */
struct unit {
    char *method, *path;
};

struct rrule {
    long index; /* from the object names (P-ruleR-...); -1: one of its own */
    char *key;  /* the AuthorizationPolicy's name, for order */
    const struct mesh_node *obj;
    bool anyone;
    struct strs ids;     /* Linkerd identities NAME.NS.serviceaccount.identity.linkerd.DOMAIN */
    struct strs servers; /* "ns/name" of the Servers' hosts */
    struct unit *units;  /* NULL: every request */
    size_t n_units;
    bool filled; /* read from a first object */
};

struct rsp {
    char *ns, *name;
    const struct mesh_node *obj;
    enum mesh_mtls_mode mode;
    bool ns_wide;
    struct strs services; /* "ns/name" hosts the mode covers */
    struct rrule *rules;
    size_t n_rules, cap_rules;
};

struct rbackend {
    char *name, *ns;
    unsigned long long weight;
    bool weight_set;
    long port;  /* -1: none */
    size_t ref; /* its index in backendRefs */
    int fault;  /* 0, or its status: a fault backend */
    enum { FAULT_NONE, FAULT_VS, FAULT_SVC } fault_of;
};

struct rrule_out {
    size_t idx;                /* its index in spec.rules */
    struct mesh_node *matches; /* our matches; NULL: every request */
    size_t n_matches;
    struct rbackend *b;
    size_t nb, cap;
    char *timeout;
    struct mesh_node *retries; /* the rule's own retry field */
    bool drop;
    int vs_status;
    unsigned long long vs_share;
    struct mesh_node *dests; /* our destinations, after the faults are taken out */
};

struct rhttp {
    size_t first, n; /* rules */
    char *name;
    int vs_status;
    unsigned long long vs_share;
};

struct rroute {
    const struct mesh_node *obj;
    const char *ns, *name;
    struct srcs srcs;
    const struct src *vs; /* the VirtualService source */
    bool fault_only;      /* made from FaultInjections only: a Service's fault route */
    bool skip;            /* a second object of one VirtualService */
    struct strs hosts;
    struct rrule_out *rules;
    size_t n_rules, cap_rules;
    struct rhttp *http;
    size_t n_http, cap_http;
    struct mesh_node *retries;
    char *timeout; /* timeout.linkerd.io/request */
};

struct rfault { /* a fault on a Service, seen in one or more routes */
    char *svc, *ns;
    int status;
    unsigned long long share;
    struct strs routes; /* route indices, as text, for set comparison */
    const struct src *fi;
    const struct mesh_node *obj;
};

struct rcb {
    char *ns, *name;
    const struct mesh_node *obj;
    struct strs targets; /* "ns/name" */
    bool have;           /* values read */
    bool last;           /* the values came from an object where it is the last breaker */
    unsigned long long errors, penalty_ms;
    char *penalty;
};

struct rmc {
    char *ns, *name;
    const struct mesh_node *obj;
    char *cpu, *memory;
};

/* A VirtualService read back: what a breaker on it annotates. */
struct rvs {
    char *ns, *name;
    struct strs targets;
};

struct nsmode {
    char *ns;
    enum mesh_mtls_mode mode;
};

struct rd {
    const struct mesh_translate_options *opt;
    const char *domain;
    struct mesh_diags *warnings;
    struct mesh_resource **out;
    size_t n_out, cap_out;

    const struct mesh_node **svc_objs, **ns_objs, **route_objs, **server_objs, **authz_objs,
        **mtls_objs, **net_objs;
    size_t n_svc_objs, n_ns_objs, n_route_objs, n_server_objs, n_authz_objs, n_mtls_objs,
        n_net_objs;

    struct rsvc *svcs;
    size_t n_svcs, cap_svcs;
    struct rserver *servers;
    size_t n_servers;
    struct rroute *routes;
    size_t n_routes, cap_routes;
    struct rfault *faults;
    size_t n_faults, cap_faults;
    struct rsp **sps;
    size_t n_sps, cap_sps;
    struct rcb *cbs;
    size_t n_cbs, cap_cbs;
    struct rmc *mcs;
    size_t n_mcs, cap_mcs;
    struct rvs *vss;
    size_t n_vss, cap_vss;
    struct nsmode *nsmodes;
    size_t n_nsmodes, cap_nsmodes;
};

/* "KIND NS/NAME FIELD: not read: why", naming the object read. */
static void warn(struct rd *rd, const struct mesh_node *obj, const char *field, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));
static void warn(struct rd *rd, const struct mesh_node *obj, const char *field, const char *fmt,
                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    mesh_read_warnv(rd->warnings, obj, field, fmt, ap);
    va_end(ap);
}

static char *key_of(const char *ns, const char *name)
{
    return xasprintf("%s/%s", ns, name);
}

/* The host spelling of "ns/name" as seen from namespace from. */
static char *host_of_key(const char *key, const char *from)
{
    const char *slash = strchr(key, '/');
    size_t nslen = (size_t)(slash - key);
    if (strlen(from) == nslen && strncmp(key, from, nslen) == 0)
        return xstrdup(slash + 1);
    return xasprintf("%s.%.*s", slash + 1, (int)nslen, key);
}

static void emit(struct rd *rd, struct mesh_node *doc, const struct mesh_node *obj)
{
    mesh_read_emit(doc, obj, &rd->out, &rd->n_out, &rd->cap_out, rd->warnings);
}

static struct mesh_node *str_list(const struct strs *s)
{
    struct mesh_node *seq = mesh_node_seq();
    for (size_t i = 0; i < s->n; i++)
        mesh_node_seq_append(seq, mesh_node_str(s->v[i]));
    return seq;
}

/* --- Services --- */

static struct rsvc *svc_find(struct rd *rd, const char *ns, const char *name)
{
    for (size_t i = 0; i < rd->n_svcs; i++)
        if (!strcmp(rd->svcs[i].ns, ns) && !strcmp(rd->svcs[i].name, name))
            return &rd->svcs[i];
    return NULL;
}

/* One of our Services of that name (read from a full v1 Service). */
static const struct rsvc *svc_ours(struct rd *rd, const char *ns, const char *name)
{
    const struct rsvc *s = svc_find(rd, ns, name);
    return s && s->res ? s : NULL;
}

static const char *svc_label(const struct rsvc *s, const char *key)
{
    for (size_t i = 0; s->res && i < s->res->labels.len; i++)
        if (!strcmp(s->res->labels.items[i].key, key))
            return s->res->labels.items[i].value;
    return NULL;
}

/* What a host of a policy, or an identity, names besides itself (linkerd.c app_services): the
 * Service of that name and every Service of the namespace labelled app: name, as "ns/name". */
static void app_services(struct rd *rd, const char *ns, const char *name, struct strs *out)
{
    for (size_t i = 0; i < rd->n_svcs; i++) {
        const struct rsvc *s = &rd->svcs[i];
        if (!s->res || strcmp(s->ns, ns))
            continue;
        const char *app = svc_label(s, "app");
        if (!strcmp(s->name, name) || (app && !strcmp(app, name))) {
            char *k = key_of(ns, s->name);
            strs_add(out, k);
            free(k);
        }
    }
}

static void read_services(struct rd *rd)
{
    for (size_t i = 0; i < rd->n_svc_objs; i++) {
        const struct mesh_node *obj = rd->svc_objs[i];
        const char *ns = mesh_read_namespace(obj), *name = mesh_read_name(obj);
        struct rsvc *s = svc_find(rd, ns, name);
        if (!s) {
            xgrow((void **)&rd->svcs, &rd->cap_svcs, rd->n_svcs + 1, sizeof(*rd->svcs));
            s = &rd->svcs[rd->n_svcs++];
            memset(s, 0, sizeof(*s));
            s->ns = xstrdup(ns);
            s->name = xstrdup(name);
            s->port = -1;
            s->server_port = -1;
        }
        /* The translator writes only annotations of a Service (no spec): the Service itself is
         * the object with a spec, given before or after. */
        const struct mesh_node *spec = child(obj, "spec");
        if (!spec)
            continue;
        if (spec->type != MESH_NODE_MAP) {
            warn(rd, obj, "spec", "not a mapping");
            continue;
        }
        if (s->full) {
            warn(rd, obj, "", "a second Service %s/%s", ns, name);
            continue;
        }
        s->full = obj;
        s->res = mesh_read_kube_service(obj);
        if (!s->res)
            warn(rd, obj, "metadata", "its name or labels are not ones our Services can hold");
    }
}

/* The Service a backendRef port or a Server names a port of: kept for its endpoint. */
static void svc_port_from_backend(struct rd *rd, const struct mesh_node *obj, const char *field,
                                  const char *ns, const char *name, long port)
{
    struct rsvc *s = svc_find(rd, ns, name);
    if (!s || !s->res) {
        if (port != LK_DEFAULT_PORT && port >= 0)
            warn(rd, obj, field,
                 "port %ld of Service %s/%s: our destinations take the port of their Service's "
                 "endpoints, and that Service was not given",
                 port, ns, name);
        return;
    }
    if (s->port < 0) {
        s->port = port;
        s->port_obj = obj;
        s->port_field = xstrdup(field);
    } else if (s->port != port) {
        warn(rd, obj, field,
             "port %ld of Service %s/%s: another object names port %ld, and our Service has one "
             "port",
             port, ns, name, s->port);
    }
}

static void emit_services(struct rd *rd)
{
    for (size_t i = 0; i < rd->n_svcs; i++) {
        struct rsvc *s = &rd->svcs[i];
        if (!s->res)
            continue;
        long ep = -1;
        if (s->server) {
            ep = s->server_port;
            long want = ep >= 0 ? ep : LK_DEFAULT_PORT;
            if (s->port >= 0 && s->port != want)
                warn(rd, s->port_obj, s->port_field,
                     "port %ld of Service %s/%s: its Server names port %ld, and our Service has "
                     "one port",
                     s->port, s->ns, s->name, want);
        } else if (s->port >= 0 && s->port != LK_DEFAULT_PORT) {
            ep = s->port;
        }
        struct mesh_node *doc = mesh_model_to_node(s->res);
        struct mesh_node *spec = mesh_node_map_get(doc, "spec");
        if (!spec) {
            spec = mesh_node_map();
            mesh_node_map_set(doc, "spec", spec);
        }
        /* The Server says what Linkerd was told of the protocol; it wins over the port name. */
        if (s->server) {
            for (size_t k = 0; k < spec->len; k++) {
                if (strcmp(spec->pairs[k].key->text, "protocol") != 0)
                    continue;
                mesh_node_free(spec->pairs[k].key);
                mesh_node_free(spec->pairs[k].value);
                memmove(&spec->pairs[k], &spec->pairs[k + 1],
                        (spec->len - k - 1) * sizeof(*spec->pairs));
                spec->len--;
                break;
            }
            if (s->proto)
                mesh_node_map_set(spec, "protocol", mesh_node_str(s->proto));
        }
        if (ep >= 0) {
            char *addr = xasprintf("%s.%s.svc.%s:%ld", s->name, s->ns, rd->domain, ep);
            struct mesh_node *eps = mesh_node_seq();
            mesh_node_seq_append(eps, mesh_node_str(addr));
            mesh_node_map_set(spec, "endpoints", eps);
            free(addr);
        }
        emit(rd, doc, s->full);
    }
}

/* --- Servers --- */

static bool labels_equal(const struct mesh_node *sel, const struct mesh_labels *labels)
{
    if (!sel || sel->type != MESH_NODE_MAP || sel->len != labels->len)
        return false;
    for (size_t i = 0; i < labels->len; i++) {
        const char *v = text_at(sel, labels->items[i].key);
        if (!v || strcmp(v, labels->items[i].value))
            return false;
    }
    return true;
}

static bool selects_app(const struct mesh_node *sel, const char **app)
{
    *app = sel && sel->type == MESH_NODE_MAP && sel->len == 1 ? text_at(sel, "app") : NULL;
    return *app != NULL;
}

/* The host of ours a Server's pods are: the Service it is named after when it selects that
 * Service's pods (its labels, or app: NAME), a Service with exactly those labels, or the app. */
static char *server_host(struct rd *rd, const struct mesh_node *obj, const char *ns,
                         const char *name)
{
    const struct mesh_node *ps = child(child(obj, "spec"), "podSelector");
    if (child(ps, "matchExpressions")) {
        warn(rd, obj, "spec.podSelector.matchExpressions",
             "our policies name Services, whose pods are selected by labels alone");
        return NULL;
    }
    const struct mesh_node *sel = child(ps, "matchLabels");
    const char *app;
    const struct rsvc *own = svc_ours(rd, ns, name);
    if (own) {
        struct mesh_labels app_only = {0};
        struct mesh_label l = {"app", (char *)name};
        if (!own->res->labels.len) {
            app_only.items = &l;
            app_only.len = 1;
        }
        if (labels_equal(sel, own->res->labels.len ? &own->res->labels : &app_only))
            return xstrdup(name);
    } else if (selects_app(sel, &app) && !strcmp(app, name)) {
        return xstrdup(name);
    }
    for (size_t i = 0; i < rd->n_svcs; i++)
        if (rd->svcs[i].res && !strcmp(rd->svcs[i].ns, ns) && rd->svcs[i].res->labels.len &&
            labels_equal(sel, &rd->svcs[i].res->labels))
            return xstrdup(rd->svcs[i].name);
    if (selects_app(sel, &app))
        return xstrdup(app);
    warn(rd, obj, "spec.podSelector", "it selects pods that no Service of ours stands for");
    return NULL;
}

static const char *proxy_protocol_ours(const char *p)
{
    static const char *const map[][2] = {
        {"HTTP/1", "http"}, {"HTTP/2", "http2"}, {"gRPC", "grpc"}, {"opaque", "tcp"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(p, map[i][0]))
            return map[i][1];
    return NULL;
}

static void read_servers(struct rd *rd)
{
    rd->servers = xcalloc(rd->n_server_objs + 1, sizeof(*rd->servers));
    for (size_t i = 0; i < rd->n_server_objs; i++) {
        const struct mesh_node *obj = rd->server_objs[i];
        struct rserver *srv = &rd->servers[rd->n_servers++];
        srv->obj = obj;
        srv->ns = mesh_read_namespace(obj);
        srv->name = mesh_read_name(obj);
        srv->host = server_host(rd, obj, srv->ns, srv->name);
        const struct mesh_node *spec = child(obj, "spec");
        const char *access = text_at(spec, "accessPolicy");
        if (access && !strcmp(access, "all-authenticated"))
            srv->access = MESH_MTLS_STRICT;
        else if (access && !strcmp(access, "all-unauthenticated"))
            srv->access = MESH_MTLS_PERMISSIVE;
        else if (access && strcmp(access, "deny"))
            warn(rd, obj, "spec.accessPolicy",
                 "\"%s\": our policies allow every meshed client, anyone, or the callers their "
                 "rules name",
                 access);
        if (!srv->host)
            continue;
        struct rsvc *s = svc_find(rd, srv->ns, srv->host);
        const struct mesh_node *port = child(spec, "port");
        unsigned long long p = 0;
        const char *pname = text(port);
        bool numeric = uint_of(port, 65535, &p) && port->scalar_kind == MESH_SCALAR_INT;
        if (!numeric && (!pname || strcmp(pname, "http")))
            warn(rd, obj, "spec.port",
                 "a policy of ours covers its Service's pods on the port their endpoints share, "
                 "or the one named http");
        /* "unknown" (the API server's default): Linkerd detects the protocol, as ours does
         * when none is given. */
        const char *pp = text_at(spec, "proxyProtocol");
        if (pp && !strcmp(pp, "unknown"))
            pp = NULL;
        const char *proto = pp ? proxy_protocol_ours(pp) : NULL;
        if (pp && !proto)
            warn(rd, obj, "spec.proxyProtocol", "\"%s\" is no protocol of ours", pp);
        if (!s || !s->res) {
            if (numeric || proto)
                warn(rd, obj, numeric ? "spec.port" : "spec.proxyProtocol",
                     "the port and protocol are those of Service %s/%s, which was not given",
                     srv->ns, srv->host);
            continue;
        }
        if (s->server) {
            warn(rd, obj, "", "a second Server for Service %s/%s", srv->ns, srv->host);
            continue;
        }
        s->server = true;
        s->server_port = numeric ? (long)p : -1;
        s->proto = proto;
    }
}

static struct rserver *server_find(struct rd *rd, const char *ns, const char *name)
{
    for (size_t i = 0; i < rd->n_servers; i++)
        if (rd->servers[i].name && !strcmp(rd->servers[i].ns, ns) &&
            !strcmp(rd->servers[i].name, name))
            return &rd->servers[i];
    return NULL;
}

/* --- outbound HTTPRoutes: VirtualServices and faults --- */

static bool parent_is(const struct mesh_node *ref, const char *group, const char *kind)
{
    const char *g = text_at(ref, "group"), *k = text_at(ref, "kind");
    if (!strcmp(group, ""))
        return core_group(g) && k && !strcmp(k, kind);
    return g && !strcmp(g, group) && k && !strcmp(k, kind);
}

/* Whether an HTTPRoute is attached to Servers (inbound: authorization) rather than Services. */
static bool route_inbound(const struct mesh_node *obj)
{
    const struct mesh_node *parents = child_seq(child(obj, "spec"), "parentRefs");
    for (size_t i = 0; parents && i < parents->len; i++)
        if (parent_is(parents->items[i], LK_GROUP, "Server"))
            return true;
    return false;
}

static struct mesh_node *map1(const char *key, struct mesh_node *value)
{
    struct mesh_node *m = mesh_node_map();
    mesh_node_map_set(m, key, value);
    return m;
}

/* An anchored RegularExpression as our regex condition; NULL (with *why) when ours cannot say it.
 */
static struct mesh_node *regex_read(const char *value, const char **why)
{
    char *re = regex_unanchored(value);
    char err[300];
    struct mesh_node *out = NULL;
    if (mesh_regex_ok(re, err, sizeof(err)))
        out = map1("regex", mesh_node_str(re));
    else
        *why = "a regular expression that is not POSIX extended syntax";
    free(re);
    return out;
}

/* An HTTPRoute path condition as ours; NULL (with *why) when ours cannot say it. */
static struct mesh_node *path_read(const struct mesh_node *p, const char **why)
{
    const char *type = text_at(p, "type"), *value = text_at(p, "value");
    if (!type)
        type = "PathPrefix";
    if (!value)
        value = "/";
    if (!strcmp(type, "Exact")) {
        if (value[0] != '/')
            return *why = "an exact path that does not start with /", NULL;
        return strchr(value, '*') ? map1("exact", mesh_node_str(value)) : mesh_node_str(value);
    }
    if (!strcmp(type, "PathPrefix")) {
        if (value[0] != '/')
            return *why = "a prefix that does not start with /", NULL;
        if (!strcmp(value, "/"))
            return map1("prefix", mesh_node_str("/"));
        /* Gateway API prefixes match whole segments: /a is /a and /a/..., not /ab. */
        size_t n = strlen(value);
        while (n > 1 && value[n - 1] == '/')
            n--;
        struct mesh_strbuf sb;
        mesh_strbuf_init(&sb, 0);
        mesh_linkerd_regex_escape(&sb, value, n);
        mesh_strbuf_puts(&sb, "(/.*)?");
        char *re = mesh_strbuf_take(&sb);
        struct mesh_node *out = map1("regex", mesh_node_str(re));
        free(re);
        return out;
    }
    if (!strcmp(type, "RegularExpression")) {
        char *g = glob_of_regex(value);
        if (g) {
            struct mesh_node *out = mesh_node_str(g);
            free(g);
            return out;
        }
        return regex_read(value, why);
    }
    *why = "an unknown path match type";
    return NULL;
}

/* The prefix of a header regex as linkerd.c writes a prefix ("^" escaped ".*"), or NULL. */
static char *header_prefix(const char *re)
{
    size_t n = strlen(re);
    if (n < 3 || re[0] != '^' || re[n - 2] != '.' || re[n - 1] != '*' ||
        mesh_linkerd_escaped_at(re, n - 1))
        return NULL;
    return regex_literal(re + 1, n - 3, false);
}

static struct mesh_node *header_read(const struct mesh_node *h, const char **why)
{
    const char *type = text_at(h, "type"), *value = text_at(h, "value");
    if (!type)
        type = "Exact";
    if (!value)
        return *why = "a header match without a value", NULL;
    if (!strcmp(type, "Exact"))
        return map1("exact", mesh_node_str(value));
    if (strcmp(type, "RegularExpression"))
        return *why = "an unknown header match type", NULL;
    if (!strcmp(value, ".*"))
        return map1("present", mesh_node_bool(true));
    if (!strcmp(value, "^$"))
        return map1("exact", mesh_node_str(""));
    char *p = header_prefix(value);
    if (p) {
        struct mesh_node *out = map1("prefix", mesh_node_str(p));
        free(p);
        return out;
    }
    return regex_read(value, why);
}

/* One HTTPRouteMatch as ours; false (warned) when ours cannot hold it: the rule is dropped,
 * since a condition left out would widen what it matches. */
static bool match_read(struct rd *rd, const struct mesh_node *obj, const struct mesh_node *m,
                       const char *field, struct mesh_node **out)
{
    char f[320];
    const char *why = NULL;
    *out = NULL;
    if (!m || m->type != MESH_NODE_MAP) {
        warn(rd, obj, field, "not a mapping");
        return false;
    }
    struct mesh_node *ours = mesh_node_map();
    for (size_t i = 0; i < m->len; i++) {
        const char *k = m->pairs[i].key->text;
        const struct mesh_node *v = m->pairs[i].value;
        snprintf(f, sizeof(f), "%s.%s", field, k);
        if (!strcmp(k, "path")) {
            struct mesh_node *p = path_read(v, &why);
            if (!p)
                goto bad;
            mesh_node_map_set(ours, "path", p);
        } else if (!strcmp(k, "method")) {
            char w[200];
            const char *meth = text(v);
            if (!meth || !mesh_text_ok(MESH_CHECK_METHOD, meth, w, sizeof(w))) {
                why = "not an HTTP method";
                goto bad;
            }
            mesh_node_map_set(ours, "method", mesh_node_str(meth));
        } else if (!strcmp(k, "headers")) {
            if (v->type != MESH_NODE_SEQ) {
                why = "not a sequence";
                goto bad;
            }
            struct mesh_node *hs = mesh_node_map();
            mesh_node_map_set(ours, "headers", hs);
            for (size_t h = 0; h < v->len; h++) {
                char w[200];
                snprintf(f, sizeof(f), "%s.headers[%zu]", field, h);
                const char *name = text_at(v->items[h], "name");
                if (!name || !mesh_text_ok(MESH_CHECK_HEADER_NAME, name, w, sizeof(w))) {
                    why = "not a header name of ours";
                    goto bad;
                }
                for (size_t k2 = 0; k2 < hs->len; k2++)
                    if (!strcasecmp(hs->pairs[k2].key->text, name)) {
                        why = "a second condition on one header";
                        goto bad;
                    }
                struct mesh_node *hm = header_read(v->items[h], &why);
                if (!hm)
                    goto bad;
                mesh_node_map_set(hs, name, hm);
            }
        } else if (!strcmp(k, "queryParams")) {
            why = "our routes match no query parameters";
            goto bad;
        } else {
            why = "our routes have no such condition";
            goto bad;
        }
    }
    *out = ours;
    return true;
bad:
    warn(rd, obj, f, "%s (the rule is left out)", why);
    mesh_node_free(ours);
    return false;
}

/* Gateway API's own retry field (rules[].retry) as our retries. */
static struct mesh_node *rule_retry_read(struct rd *rd, const struct mesh_node *obj,
                                         const struct mesh_node *r, const char *field)
{
    char f[320];
    unsigned long long attempts = 0;
    if (!uint_of(child(r, "attempts"), 100, &attempts) || !attempts) {
        snprintf(f, sizeof(f), "%s.attempts", field);
        warn(rd, obj, f, "our retries need 1 to 100 attempts");
        return NULL;
    }
    if (child(r, "backoff")) {
        snprintf(f, sizeof(f), "%s.backoff", field);
        warn(rd, obj, f, "our retries have no backoff");
    }
    struct mesh_node *out = mesh_node_map();
    mesh_node_map_set(out, "attempts", mesh_node_int((long long)attempts));
    const struct mesh_node *codes = child_seq(r, "codes");
    if (codes) {
        bool all5 = codes->len == 100, gw = codes->len == 3;
        for (size_t i = 0; i < codes->len; i++) {
            unsigned long long c = 0;
            bool ok = uint_of(codes->items[i], 999, &c);
            all5 = all5 && ok && c >= 500 && c <= 599;
            gw = gw && ok && c >= 502 && c <= 504;
        }
        if (all5 || gw) {
            struct mesh_node *on = mesh_node_seq();
            mesh_node_seq_append(on, mesh_node_str(all5 ? "5xx" : "gateway-error"));
            mesh_node_map_set(out, "retry_on", on);
        } else {
            snprintf(f, sizeof(f), "%s.codes", field);
            warn(rd, obj, f,
                 "our retries are on 5xx or gateway-error (502, 503, 504), not on other codes");
            mesh_node_free(out);
            return NULL;
        }
    }
    return out;
}

/* The retry.linkerd.io annotations of a route as our retries; NULL for none. */
static struct mesh_node *retry_annotations(struct rd *rd, const struct mesh_node *obj)
{
    const char *http = annotation(obj, LK_RETRY "http");
    const char *limit = annotation(obj, LK_RETRY "limit");
    const char *timeout = annotation(obj, LK_RETRY "timeout");
    if (annotation(obj, LK_RETRY "grpc"))
        warn(rd, obj, "metadata.annotations[\"" LK_RETRY "grpc\"]",
             "our retries are on HTTP statuses and connection errors, not on gRPC statuses");
    if (!http) {
        if (limit || timeout)
            warn(rd, obj, "metadata.annotations[\"" LK_RETRY "limit\"]",
                 "Linkerd retries only on the conditions of " LK_RETRY "http or grpc");
        return NULL;
    }
    struct strs on = {0};
    char *copy = xstrdup(http);
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        while (*p == ' ')
            p++;
        size_t n = strlen(p);
        while (n && p[n - 1] == ' ')
            p[--n] = '\0';
        if (!strcmp(p, "5xx") || !strcmp(p, "gateway-error"))
            strs_add(&on, p);
        else
            warn(rd, obj, "metadata.annotations[\"" LK_RETRY "http\"]",
                 "condition \"%s\": our retries are on 5xx or gateway-error", p);
    }
    free(copy);
    struct mesh_node *out = NULL;
    unsigned long long attempts = 1, ms = 0;
    if (!on.n)
        goto done; /* nothing of ours left: no retries rather than our default conditions */
    if (limit) {
        struct mesh_node *tmp = mesh_node_str(limit);
        bool ok = uint_of(tmp, 100, &attempts);
        mesh_node_free(tmp);
        if (!ok) {
            warn(rd, obj, "metadata.annotations[\"" LK_RETRY "limit\"]",
                 "\"%s\": our retries make 0 to 100 attempts", limit);
            goto done;
        }
    }
    if (!attempts)
        goto done;
    out = mesh_node_map();
    mesh_node_map_set(out, "attempts", mesh_node_int((long long)attempts));
    if (timeout && duration_ok(timeout, &ms) && ms)
        mesh_node_map_set(out, "per_try_timeout", mesh_node_str(timeout));
    else if (timeout)
        warn(rd, obj, "metadata.annotations[\"" LK_RETRY "timeout\"]", "\"%s\": not a duration",
             timeout);
    mesh_node_map_set(out, "retry_on", str_list(&on));
done:
    strs_clear(&on);
    return out;
}

static void backend_clear(struct rbackend *b)
{
    free(b->name);
    free(b->ns);
}

static void rule_out_clear(struct rrule_out *r)
{
    mesh_node_free(r->matches);
    for (size_t i = 0; i < r->nb; i++)
        backend_clear(&r->b[i]);
    free(r->b);
    free(r->timeout);
    mesh_node_free(r->retries);
    mesh_node_free(r->dests);
}

static void read_rule(struct rd *rd, struct rroute *r, const struct mesh_node *rule, size_t i)
{
    char f[160];
    xgrow((void **)&r->rules, &r->cap_rules, r->n_rules + 1, sizeof(*r->rules));
    struct rrule_out *out = &r->rules[r->n_rules++];
    memset(out, 0, sizeof(*out));
    out->idx = i;
    snprintf(f, sizeof(f), "spec.rules[%zu]", i);
    if (!rule || rule->type != MESH_NODE_MAP) {
        warn(rd, r->obj, f, "not a mapping");
        out->drop = true;
        return;
    }
    for (size_t k = 0; k < rule->len; k++) {
        const char *key = rule->pairs[k].key->text;
        if (strcmp(key, "matches") && strcmp(key, "backendRefs") && strcmp(key, "timeouts") &&
            strcmp(key, "filters") && strcmp(key, "retry") && strcmp(key, "name")) {
            snprintf(f, sizeof(f), "spec.rules[%zu].%s", i, key);
            warn(rd, r->obj, f, "our routes have no such setting");
        }
    }
    const struct mesh_node *filters = child(rule, "filters");
    for (size_t k = 0; filters && filters->type == MESH_NODE_SEQ && k < filters->len; k++) {
        const char *type = text_at(filters->items[k], "type");
        snprintf(f, sizeof(f), "spec.rules[%zu].filters[%zu]", i, k);
        warn(rd, r->obj, f, "our routes have no %s filter", type ? type : "such");
    }
    const struct mesh_node *matches = child(rule, "matches");
    if (matches && matches->type != MESH_NODE_SEQ) {
        snprintf(f, sizeof(f), "spec.rules[%zu].matches", i);
        warn(rd, r->obj, f, "not a sequence (the rule is left out)");
        out->drop = true;
        return;
    }
    if (matches && matches->len) {
        out->matches = mesh_node_seq();
        for (size_t m = 0; m < matches->len; m++) {
            struct mesh_node *ours;
            snprintf(f, sizeof(f), "spec.rules[%zu].matches[%zu]", i, m);
            if (!match_read(rd, r->obj, matches->items[m], f, &ours)) {
                out->drop = true;
                return;
            }
            mesh_node_seq_append(out->matches, ours);
        }
        out->n_matches = matches->len;
    }
    const struct mesh_node *refs = child(rule, "backendRefs");
    for (size_t b = 0; refs && refs->type == MESH_NODE_SEQ && b < refs->len; b++) {
        const struct mesh_node *ref = refs->items[b];
        snprintf(f, sizeof(f), "spec.rules[%zu].backendRefs[%zu]", i, b);
        const char *name = text_at(ref, "name"), *kind = text_at(ref, "kind");
        if (!name || !core_group(text_at(ref, "group")) || (kind && strcmp(kind, "Service"))) {
            warn(rd, r->obj, f, "our destinations are Services");
            continue;
        }
        if (child(ref, "filters")) {
            char ff[200];
            snprintf(ff, sizeof(ff), "%s.filters", f);
            warn(rd, r->obj, ff, "our destinations have no filters");
        }
        unsigned long long w = 1, port = 0;
        const struct mesh_node *wn = child(ref, "weight"), *pn = child(ref, "port");
        if (wn && !uint_of(wn, 1000000, &w)) {
            warn(rd, r->obj, f, "weight is not a number from 0 to 1000000 (the rule is left out)");
            out->drop = true;
            return;
        }
        if (pn && !uint_of(pn, 65535, &port)) {
            warn(rd, r->obj, f, "port is not a port number");
            pn = NULL;
        }
        xgrow((void **)&out->b, &out->cap, out->nb + 1, sizeof(*out->b));
        struct rbackend *be = &out->b[out->nb++];
        memset(be, 0, sizeof(*be));
        be->name = xstrdup(name);
        be->ns = xstrdup(text_at(ref, "namespace") ? text_at(ref, "namespace") : r->ns);
        be->weight = w;
        be->weight_set = wn != NULL;
        be->port = pn ? (long)port : -1;
        be->ref = b;
    }
    if (!out->nb) {
        snprintf(f, sizeof(f), "spec.rules[%zu].backendRefs", i);
        warn(rd, r->obj, f, "no Service to route to (the rule is left out)");
        out->drop = true;
        return;
    }
    const struct mesh_node *to = child(rule, "timeouts");
    const char *req = text_at(to, "request");
    unsigned long long ms = 0;
    if (req && duration_ok(req, &ms)) {
        if (ms)
            out->timeout = xstrdup(req);
    } else if (req) {
        snprintf(f, sizeof(f), "spec.rules[%zu].timeouts.request", i);
        warn(rd, r->obj, f, "\"%s\" is not a duration", req);
    }
    if (child(to, "backendRequest")) {
        snprintf(f, sizeof(f), "spec.rules[%zu].timeouts.backendRequest", i);
        warn(rd, r->obj, f, "our per-attempt timeout comes with retries only");
    }
    if (child(rule, "retry")) {
        snprintf(f, sizeof(f), "spec.rules[%zu].retry", i);
        out->retries = rule_retry_read(rd, r->obj, child(rule, "retry"), f);
    }
}

/* "X-fault-NNN": the status, and X's length; 0 when the name is not one. */
static int fault_name(const char *name, size_t *prefix)
{
    size_t n = strlen(name);
    if (n < 11 || strncmp(name + n - 10, "-fault-", 7) != 0)
        return 0;
    int status = 0;
    for (size_t i = n - 3; i < n; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        status = status * 10 + (name[i] - '0');
    }
    *prefix = n - 10;
    return status >= 200 && status <= 599 ? status : 0;
}

static struct rbackend *rule_backend(struct rrule_out *rule, const char *name, size_t len,
                                     const char *ns)
{
    for (size_t i = 0; i < rule->nb; i++)
        if (!rule->b[i].fault && strlen(rule->b[i].name) == len &&
            !strncmp(rule->b[i].name, name, len) && !strcmp(rule->b[i].ns, ns))
            return &rule->b[i];
    return NULL;
}

static unsigned long long share_of(unsigned long long part, unsigned long long whole)
{
    return whole ? (unsigned long long)llround((double)part * (double)LK_PCT_SCALE / (double)whole)
                 : LK_PCT_SCALE;
}

static void fault_seen(struct rd *rd, const struct mesh_node *obj, size_t route, const char *svc,
                       size_t len, const char *ns, int status, unsigned long long share)
{
    char *name = xstrndup(svc, len);
    struct rfault *f = NULL;
    for (size_t i = 0; i < rd->n_faults && !f; i++)
        if (!strcmp(rd->faults[i].svc, name) && !strcmp(rd->faults[i].ns, ns))
            f = &rd->faults[i];
    if (!f) {
        xgrow((void **)&rd->faults, &rd->cap_faults, rd->n_faults + 1, sizeof(*rd->faults));
        f = &rd->faults[rd->n_faults++];
        memset(f, 0, sizeof(*f));
        f->svc = name;
        name = NULL;
        f->ns = xstrdup(ns);
        f->status = status;
        f->share = share;
        f->obj = obj;
    } else if (f->status != status || f->share != share) {
        warn(rd, obj, "spec.rules.backendRefs",
             "a second fault on Service %s/%s (status %d, share %.2f%%): one FaultInjection of "
             "ours applies to a Service",
             ns, f->svc, status, (double)share / 100);
    }
    free(name);
    char idx[32];
    snprintf(idx, sizeof(idx), "%zu", route);
    strs_add(&f->routes, idx);
}

/* Takes the fault backends out of a rule: a VirtualService's share of the whole rule, then each
 * Service's share of its backend (linkerd.c splits in the other order), and leaves our
 * destinations. */
static void rule_faults(struct rd *rd, struct rroute *r, size_t ri, struct rrule_out *rule)
{
    const char *vs_name = r->vs ? r->vs->name : r->name;
    bool faults = srcs_count(&r->srcs, MESH_KIND_FAULT_INJECTION) > 0;
    for (size_t i = 0; !r->fault_only && faults && i < rule->nb; i++) {
        struct rbackend *b = &rule->b[i];
        size_t len = 0;
        int status = fault_name(b->name, &len);
        if (!status)
            continue;
        bool has_target = rule_backend(rule, b->name, len, b->ns) != NULL;
        char *x = xstrndup(b->name, len);
        bool is_vs = strcmp(x, vs_name) == 0 && !strcmp(b->ns, r->ns);
        bool svc = has_target && (!is_vs || svc_ours(rd, b->ns, x));
        free(x);
        if (svc) {
            b->fault = status;
            b->fault_of = FAULT_SVC;
        } else if (is_vs && !rule->vs_status) {
            b->fault = status;
            b->fault_of = FAULT_VS;
            rule->vs_status = status;
        }
    }
    if (r->fault_only) {
        for (size_t i = 0; i < rule->nb; i++) {
            size_t len = 0;
            int status = fault_name(rule->b[i].name, &len);
            if (status && rule_backend(rule, rule->b[i].name, len, rule->b[i].ns)) {
                rule->b[i].fault = status;
                rule->b[i].fault_of = FAULT_SVC;
            }
        }
    }
    unsigned long long total = 0;
    for (size_t i = 0; i < rule->nb; i++)
        total += rule->b[i].weight;
    for (size_t i = 0; i < rule->nb; i++)
        if (rule->b[i].fault_of == FAULT_VS)
            rule->vs_share = share_of(rule->b[i].weight, total);
    for (size_t i = 0; i < rule->nb; i++) {
        struct rbackend *f = &rule->b[i];
        if (f->fault_of != FAULT_SVC)
            continue;
        size_t len = 0;
        fault_name(f->name, &len);
        struct rbackend *t = rule_backend(rule, f->name, len, f->ns);
        fault_seen(rd, r->obj, ri, f->name, len, f->ns, f->fault,
                   share_of(f->weight, f->weight + t->weight));
        t->weight += f->weight;
    }
    /* Our destinations: the other backends, their weights as percentages. */
    size_t n = 0;
    unsigned long long sum = 0;
    for (size_t i = 0; i < rule->nb; i++)
        if (!rule->b[i].fault) {
            n++;
            sum += rule->b[i].weight;
        }
    bool faulted = n != rule->nb;
    char f[160];
    snprintf(f, sizeof(f), "spec.rules[%zu].backendRefs", rule->idx);
    if (n > 1 && !sum && !faulted) {
        warn(rd, r->obj, f,
             "every backend of a rule has weight 0, and our weights sum to 100 (the rule is left "
             "out)");
        rule->drop = true;
        return;
    }
    rule->dests = mesh_node_seq();
    unsigned long long given = 0;
    size_t left = n;
    bool rounded = false;
    for (size_t i = 0; i < rule->nb; i++) {
        struct rbackend *b = &rule->b[i];
        if (b->fault)
            continue;
        snprintf(f, sizeof(f), "spec.rules[%zu].backendRefs[%zu]", rule->idx, b->ref);
        struct mesh_node *d = mesh_node_map();
        char *host = !strcmp(b->ns, r->ns) ? xstrdup(b->name) : xasprintf("%s.%s", b->name, b->ns);
        mesh_node_map_set(d, "host", mesh_node_str(host));
        free(host);
        if (n == 1) {
            if (!faulted && b->weight_set && b->weight == 100)
                mesh_node_map_set(d, "weight", mesh_node_int(100));
            else if (!b->weight && !faulted)
                warn(rd, r->obj, f,
                     "weight 0 on the only backend of a rule: our lone destination takes every "
                     "request");
        } else {
            /* The last one takes what is left, so that rounding still sums to 100. A fault of
             * all requests left every weight 0: any split of ours says the same, an even one
             * is written. */
            unsigned long long pct;
            if (!sum)
                pct = 100 / n + (n - left < 100 % n ? 1 : 0);
            else
                pct = left > 1
                          ? (unsigned long long)llround((double)b->weight * 100.0 / (double)sum)
                          : 100 - given;
            left--;
            rounded = rounded || (sum && pct * sum != b->weight * 100);
            if (pct > 100 - given)
                pct = 100 - given;
            given += pct;
            mesh_node_map_set(d, "weight", mesh_node_int((long long)pct));
        }
        mesh_node_seq_append(rule->dests, d);
        if (b->port >= 0) {
            char pf[200];
            snprintf(pf, sizeof(pf), "%s.port", f);
            svc_port_from_backend(rd, r->obj, pf, b->ns, b->name, b->port);
        }
    }
    if (rounded) {
        snprintf(f, sizeof(f), "spec.rules[%zu].backendRefs", rule->idx);
        warn(rd, r->obj, f, "weights that are no whole percentages: rounded to ours");
    }
}

static bool rules_join(const struct rrule_out *a, const struct rrule_out *b)
{
    return a->n_matches == LK_MAX_MATCHES && b->n_matches && a->vs_status == b->vs_status &&
           a->vs_share == b->vs_share && mesh_node_equal(a->dests, b->dests) &&
           ((!a->timeout && !b->timeout) ||
            (a->timeout && b->timeout && !strcmp(a->timeout, b->timeout))) &&
           ((!a->retries && !b->retries) || mesh_node_equal(a->retries, b->retries));
}

static void read_route(struct rd *rd, const struct mesh_node *obj)
{
    xgrow((void **)&rd->routes, &rd->cap_routes, rd->n_routes + 1, sizeof(*rd->routes));
    size_t ri = rd->n_routes++;
    struct rroute *r = &rd->routes[ri];
    memset(r, 0, sizeof(*r));
    r->obj = obj;
    r->ns = mesh_read_namespace(obj);
    r->name = mesh_read_name(obj);
    srcs_read(obj, &r->srcs);
    r->vs = srcs_last(&r->srcs, MESH_KIND_VIRTUAL_SERVICE);
    r->fault_only =
        !r->vs && r->srcs.n && srcs_count(&r->srcs, MESH_KIND_FAULT_INJECTION) == r->srcs.n;
    const struct mesh_node *spec = child(obj, "spec");
    if (!spec || spec->type != MESH_NODE_MAP) {
        warn(rd, obj, "spec", "no spec");
        return;
    }
    if (child(spec, "hostnames"))
        warn(rd, obj, "spec.hostnames",
             "our hosts are the Services a route is attached to (Linkerd ignores hostnames)");
    const struct mesh_node *parents = child_seq(spec, "parentRefs");
    char f[160];
    for (size_t i = 0; parents && i < parents->len; i++) {
        const struct mesh_node *p = parents->items[i];
        snprintf(f, sizeof(f), "spec.parentRefs[%zu]", i);
        const char *name = text_at(p, "name"), *pns = text_at(p, "namespace");
        if (!name || !parent_is(p, "", "Service")) {
            warn(rd, obj, f, "our routes are attached to Services");
            continue;
        }
        if (pns && strcmp(pns, r->ns)) {
            warn(rd, obj, f,
                 "a route attached to a Service of another namespace applies only to callers "
                 "of its own, and our hosts apply to every caller");
            continue;
        }
        if (child(p, "port") || child(p, "sectionName"))
            warn(rd, obj, f, "our routes cover every port of the Service");
        strs_add(&r->hosts, name);
    }
    const struct mesh_node *rules = child_seq(spec, "rules");
    for (size_t i = 0; rules && i < rules->len; i++)
        read_rule(rd, r, rules->items[i], i);
    r->retries = retry_annotations(rd, obj);
    const char *t = annotation(obj, LK_TIMEOUT "request");
    unsigned long long ms = 0;
    if (t && duration_ok(t, &ms) && ms)
        r->timeout = xstrdup(t);
    if (annotation(obj, LK_TIMEOUT "response") || annotation(obj, LK_TIMEOUT "idle"))
        warn(rd, obj, "metadata.annotations[\"" LK_TIMEOUT "response\"]",
             "our routes have one timeout, for the whole request");
    for (size_t i = 0; i < r->n_rules; i++)
        if (!r->rules[i].drop)
            rule_faults(rd, r, ri, &r->rules[i]);
    /* Rules with the same backends after a full rule of 8 matches are one route of ours. */
    for (size_t i = 0; i < r->n_rules; i++) {
        if (r->rules[i].drop)
            continue;
        if (r->n_http) {
            struct rhttp *h = &r->http[r->n_http - 1];
            if (h->first + h->n == i && rules_join(&r->rules[i - 1], &r->rules[i])) {
                h->n++;
                continue;
            }
        }
        xgrow((void **)&r->http, &r->cap_http, r->n_http + 1, sizeof(*r->http));
        r->http[r->n_http++] = (struct rhttp){.first = i,
                                              .n = 1,
                                              .vs_status = r->rules[i].vs_status,
                                              .vs_share = r->rules[i].vs_share};
    }
}

/* --- faults: which FaultInjection each fault came from --- */

static bool route_lists(const struct rroute *r, const struct src *fi)
{
    for (size_t i = 0; i < r->srcs.n; i++)
        if (r->srcs.v[i].kind == MESH_KIND_FAULT_INJECTION && !strcmp(r->srcs.v[i].ns, fi->ns) &&
            !strcmp(r->srcs.v[i].name, fi->name))
            return true;
    return false;
}

/* Every FaultInjection source, once. */
struct fis {
    const struct src **v;
    bool *used;
    size_t n, cap;
};

static void fis_collect(struct rd *rd, struct fis *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < rd->n_routes; i++)
        for (size_t k = 0; k < rd->routes[i].srcs.n; k++) {
            const struct src *s = &rd->routes[i].srcs.v[k];
            bool seen = s->kind != MESH_KIND_FAULT_INJECTION;
            for (size_t j = 0; !seen && j < out->n; j++)
                seen = !strcmp(out->v[j]->ns, s->ns) && !strcmp(out->v[j]->name, s->name);
            if (seen)
                continue;
            xgrow((void **)&out->v, &out->cap, out->n + 1, sizeof(*out->v));
            out->v[out->n++] = s;
        }
    out->used = xcalloc(out->n + 1, sizeof(*out->used));
}

static void fi_routes(struct rd *rd, const struct src *fi, struct strs *out)
{
    for (size_t i = 0; i < rd->n_routes; i++)
        if (route_lists(&rd->routes[i], fi)) {
            char idx[32];
            snprintf(idx, sizeof(idx), "%zu", i);
            strs_add(out, idx);
        }
}

static void fi_doc(struct rd *rd, const struct src *fi, const char *service, const char *route,
                   int status, unsigned long long share, const struct mesh_node *obj)
{
    struct mesh_node *spec;
    struct mesh_node *doc = mesh_read_doc("FaultInjection", fi->name, fi->ns, &spec);
    mesh_node_map_set(spec, "service", mesh_node_str(service));
    if (route)
        mesh_node_map_set(spec, "route", mesh_node_str(route));
    struct mesh_node *ab = mesh_node_map();
    mesh_node_map_set(ab, "http_status", mesh_node_int(status));
    if (share < LK_PCT_SCALE)
        mesh_node_map_set(ab, "percentage", mesh_node_float((double)share / 100.0));
    mesh_node_map_set(spec, "abort", ab);
    emit(rd, doc, obj);
}

/* A host naming Service ns/name for a resource of namespace from: the short name unless a
 * VirtualService of that name would be read first (translators take a name that is a
 * VirtualService and no Service as the VirtualService). */
static char *service_host(struct rd *rd, const char *ns, const char *name, const char *from)
{
    bool vs = false;
    for (size_t i = 0; i < rd->n_routes && !vs; i++) {
        const struct rroute *r = &rd->routes[i];
        vs = r->n_http && !r->fault_only && !r->skip && !strcmp(r->vs ? r->vs->ns : r->ns, from) &&
             !strcmp(r->vs ? r->vs->name : r->name, name);
    }
    for (size_t i = 0; i < rd->n_vss && !vs; i++)
        vs = !strcmp(rd->vss[i].ns, from) && !strcmp(rd->vss[i].name, name);
    if (!strcmp(ns, from) && !(vs && !svc_ours(rd, ns, name)))
        return xstrdup(name);
    return xasprintf("%s.%s", name, ns);
}

static void service_faults(struct rd *rd, struct fis *fis)
{
    /* A fault route of one FaultInjection names its Service outright. */
    for (size_t i = 0; i < rd->n_faults; i++) {
        struct rfault *f = &rd->faults[i];
        for (size_t k = 0; k < f->routes.n && !f->fi; k++) {
            const struct rroute *r = &rd->routes[strtoul(f->routes.v[k], NULL, 10)];
            if (!r->fault_only || r->srcs.n != 1)
                continue;
            for (size_t j = 0; j < fis->n && !f->fi; j++)
                if (!fis->used[j] && route_lists(r, fis->v[j])) {
                    f->fi = fis->v[j];
                    fis->used[j] = true;
                }
        }
    }
    /* Else the FaultInjection listed by exactly the routes the fault is in. */
    for (size_t i = 0; i < rd->n_faults; i++) {
        struct rfault *f = &rd->faults[i];
        for (size_t j = 0; j < fis->n && !f->fi; j++) {
            if (fis->used[j])
                continue;
            struct strs rs = {0};
            fi_routes(rd, fis->v[j], &rs);
            if (strs_same_set(&rs, &f->routes)) {
                f->fi = fis->v[j];
                fis->used[j] = true;
            }
            strs_clear(&rs);
        }
        if (!f->fi) {
            warn(rd, f->obj, "spec.rules.backendRefs",
                 "the fault backend %s-fault-%d: no FaultInjection source names the routes it "
                 "is in",
                 f->svc, f->status);
            continue;
        }
        char *svc = service_host(rd, f->ns, f->svc, f->fi->ns);
        fi_doc(rd, f->fi, svc, NULL, f->status, f->share, f->obj);
        free(svc);
    }
}

/* The faults of a VirtualService's routes: one FaultInjection for the whole route set (every
 * route has the same fault), one per route otherwise. */
static void vs_faults(struct rd *rd, struct rroute *r, struct fis *fis)
{
    const struct src *mine[64];
    size_t k = 0;
    for (size_t j = 0; j < fis->n && k < 64; j++)
        if (!fis->used[j] && route_lists(r, fis->v[j])) {
            mine[k++] = fis->v[j];
            fis->used[j] = true;
        }
    size_t m = 0;
    for (size_t i = 0; i < r->n_http; i++)
        m += r->http[i].vs_status != 0;
    if (!m) {
        for (size_t j = 0; j < k; j++)
            warn(rd, r->obj, "metadata.annotations[\"" MESH_SOURCE_ANNOTATION "\"]",
                 "FaultInjection %s/%s: no fault backend of it", mine[j]->ns, mine[j]->name);
        return;
    }
    if (!k) {
        warn(rd, r->obj, "spec.rules.backendRefs", "fault backends no FaultInjection source names");
        return;
    }
    /* With every route faulted and fewer faults than routes, the most common fault is the
     * whole route set's; the others are routes' own. */
    size_t best = SIZE_MAX, best_n = 0;
    if (m == r->n_http && k < m) {
        for (size_t i = 0; i < r->n_http; i++) {
            size_t c = 0;
            for (size_t j = 0; j < r->n_http; j++)
                c += r->http[j].vs_status == r->http[i].vs_status &&
                     r->http[j].vs_share == r->http[i].vs_share;
            if (c > best_n) {
                best = i;
                best_n = c;
            }
        }
    } else if (m == r->n_http && k == 1) {
        best = 0;
        best_n = m;
    }
    size_t next = 0;
    bool whole = best != SIZE_MAX && r->n_http - best_n <= k - 1;
    size_t spare = whole ? k - 1 - (r->n_http - best_n) : 0;
    for (size_t i = 0; i < r->n_http; i++) {
        struct rhttp *h = &r->http[i];
        if (!h->vs_status)
            continue;
        bool common = whole && h->vs_status == r->http[best].vs_status &&
                      h->vs_share == r->http[best].vs_share;
        if (common && !spare)
            continue;
        if (common)
            spare--;
        if (next >= (whole ? k - 1 : k)) {
            warn(rd, r->obj, "spec.rules.backendRefs",
                 "fault backend %s-fault-%d: more faults than FaultInjection sources",
                 r->vs ? r->vs->name : r->name, h->vs_status);
            continue;
        }
        h->name = xstrdup(mine[next]->name);
        fi_doc(rd, mine[next], r->vs ? r->vs->name : r->name, h->name, h->vs_status, h->vs_share,
               r->obj);
        next++;
    }
    if (whole) {
        fi_doc(rd, mine[k - 1], r->vs ? r->vs->name : r->name, NULL, r->http[best].vs_status,
               r->http[best].vs_share, r->obj);
        next++;
    }
    for (size_t j = next; j < k; j++)
        warn(rd, r->obj, "metadata.annotations[\"" MESH_SOURCE_ANNOTATION "\"]",
             "FaultInjection %s/%s: no fault backend left for it", mine[j]->ns, mine[j]->name);
}

static void emit_vs(struct rd *rd, struct rroute *r)
{
    const char *name = r->vs ? r->vs->name : r->name, *ns = r->vs ? r->vs->ns : r->ns;
    if (!r->hosts.n) {
        warn(rd, r->obj, "spec.parentRefs", "attached to no Service of its namespace");
        return;
    }
    if (!r->n_http) {
        warn(rd, r->obj, "spec.rules", "no rule of it could be read");
        return;
    }
    struct mesh_node *spec;
    struct mesh_node *doc = mesh_read_doc("VirtualService", name, ns, &spec);
    mesh_node_map_set(spec, "hosts", str_list(&r->hosts));
    struct mesh_node *routes = mesh_node_seq();
    xgrow((void **)&rd->vss, &rd->cap_vss, rd->n_vss + 1, sizeof(*rd->vss));
    struct rvs *v = &rd->vss[rd->n_vss++];
    memset(v, 0, sizeof(*v));
    v->ns = xstrdup(ns);
    v->name = xstrdup(name);
    for (size_t i = 0; i < r->hosts.n; i++) {
        char *k = key_of(r->ns, r->hosts.v[i]);
        strs_add(&v->targets, k);
        free(k);
    }
    for (size_t i = 0; i < r->n_http; i++) {
        const struct rhttp *h = &r->http[i];
        struct rrule_out *first = &r->rules[h->first];
        struct mesh_node *hr = mesh_node_map();
        if (h->name)
            mesh_node_map_set(hr, "name", mesh_node_str(h->name));
        if (first->matches) {
            struct mesh_node *ms = mesh_node_seq();
            for (size_t k = h->first; k < h->first + h->n; k++) {
                struct mesh_node *src = r->rules[k].matches;
                for (size_t j = 0; src && j < src->len; j++) {
                    mesh_node_seq_append(ms, src->items[j]);
                    src->items[j] = NULL;
                }
            }
            mesh_node_map_set(hr, "matches", ms);
        }
        mesh_node_map_set(hr, "destinations", first->dests);
        for (size_t k = 0; k < first->nb; k++)
            if (!first->b[k].fault) {
                char *key = key_of(first->b[k].ns, first->b[k].name);
                strs_add(&v->targets, key);
                free(key);
            }
        first->dests = NULL;
        const char *timeout = first->timeout ? first->timeout : r->timeout;
        if (timeout)
            mesh_node_map_set(hr, "timeout", mesh_node_str(timeout));
        const struct mesh_node *retries = r->retries ? r->retries : first->retries;
        if (retries) /* every route carries the route set's retries */
            mesh_node_map_set(hr, "retries", mesh_read_copy(retries));
        mesh_node_seq_append(routes, hr);
    }
    mesh_node_map_set(spec, "http_routes", routes);
    emit(rd, doc, r->obj);
}

static void read_routes(struct rd *rd)
{
    for (size_t i = 0; i < rd->n_route_objs; i++)
        if (!route_inbound(rd->route_objs[i]))
            read_route(rd, rd->route_objs[i]);
    /* A VirtualService read from two objects (its own and one written by hand with its name):
     * the first one only. */
    for (size_t i = 0; i < rd->n_routes; i++) {
        struct rroute *r = &rd->routes[i];
        const char *ns = r->vs ? r->vs->ns : r->ns, *name = r->vs ? r->vs->name : r->name;
        for (size_t k = 0; !r->fault_only && !r->skip && k < i; k++) {
            const struct rroute *o = &rd->routes[k];
            if (o->fault_only || o->skip || strcmp(o->vs ? o->vs->ns : o->ns, ns) ||
                strcmp(o->vs ? o->vs->name : o->name, name))
                continue;
            warn(rd, r->obj, "metadata",
                 "VirtualService %s/%s was read from HTTPRoute %s/%s already", ns, name, o->ns,
                 o->name);
            r->skip = true;
        }
    }
    struct fis fis;
    fis_collect(rd, &fis);
    service_faults(rd, &fis);
    for (size_t i = 0; i < rd->n_routes; i++)
        if (!rd->routes[i].fault_only && !rd->routes[i].skip)
            vs_faults(rd, &rd->routes[i], &fis);
    for (size_t i = 0; i < rd->n_routes; i++)
        if (!rd->routes[i].fault_only && !rd->routes[i].skip)
            emit_vs(rd, &rd->routes[i]);
    free(fis.v);
    free(fis.used);
}

/* --- Namespaces: inbound policies and the proxy's resources --- */

static struct rsp *sp_get(struct rd *rd, const char *ns, const char *name,
                          const struct mesh_node *obj)
{
    for (size_t i = 0; i < rd->n_sps; i++)
        if (!strcmp(rd->sps[i]->ns, ns) && !strcmp(rd->sps[i]->name, name))
            return rd->sps[i];
    xgrow((void **)&rd->sps, &rd->cap_sps, rd->n_sps + 1, sizeof(*rd->sps));
    struct rsp *sp = xcalloc(1, sizeof(*sp));
    sp->ns = xstrdup(ns);
    sp->name = xstrdup(name);
    sp->obj = obj;
    rd->sps[rd->n_sps++] = sp;
    return sp;
}

static enum mesh_mtls_mode ns_mode(const struct rd *rd, const char *ns)
{
    for (size_t i = 0; i < rd->n_nsmodes; i++)
        if (!strcmp(rd->nsmodes[i].ns, ns))
            return rd->nsmodes[i].mode;
    return MESH_MTLS_UNSET;
}

static struct rmc *mc_get(struct rd *rd, const char *ns, const char *name,
                          const struct mesh_node *obj)
{
    for (size_t i = 0; i < rd->n_mcs; i++)
        if (!strcmp(rd->mcs[i].ns, ns) && !strcmp(rd->mcs[i].name, name))
            return &rd->mcs[i];
    xgrow((void **)&rd->mcs, &rd->cap_mcs, rd->n_mcs + 1, sizeof(*rd->mcs));
    struct rmc *mc = &rd->mcs[rd->n_mcs++];
    memset(mc, 0, sizeof(*mc));
    mc->ns = xstrdup(ns);
    mc->name = xstrdup(name);
    mc->obj = obj;
    return mc;
}

static void mc_set(struct rd *rd, const struct mesh_node *obj, char **field, const char *value,
                   const char *key)
{
    if (!*field) {
        *field = xstrdup(value);
    } else if (strcmp(*field, value)) {
        char f[128];
        snprintf(f, sizeof(f), "metadata.annotations[\"%s\"]", key);
        warn(rd, obj, f, "\"%s\": another Namespace of the same MeshConfig says \"%s\"", value,
             *field);
    }
}

static void read_namespaces(struct rd *rd)
{
    for (size_t i = 0; i < rd->n_ns_objs; i++) {
        const struct mesh_node *obj = rd->ns_objs[i];
        const char *name = mesh_read_name(obj);
        struct srcs s;
        srcs_read(obj, &s);
        const char *inbound = annotation(obj, LK_INBOUND);
        if (inbound) {
            enum mesh_mtls_mode mode = !strcmp(inbound, "all-authenticated") ? MESH_MTLS_STRICT
                                       : !strcmp(inbound, "all-unauthenticated")
                                           ? MESH_MTLS_PERMISSIVE
                                           : MESH_MTLS_UNSET;
            if (!mode) {
                warn(rd, obj, "metadata.annotations[\"" LK_INBOUND "\"]",
                     "\"%s\": our namespace-wide mTLS is strict (all-authenticated) or "
                     "permissive (all-unauthenticated)",
                     inbound);
            } else {
                const struct src *sp = srcs_last(&s, MESH_KIND_SECURITY_POLICY);
                struct rsp *p =
                    sp ? sp_get(rd, sp->ns, sp->name, obj) : sp_get(rd, name, name, obj);
                p->mode = mode;
                p->ns_wide = true;
                xgrow((void **)&rd->nsmodes, &rd->cap_nsmodes, rd->n_nsmodes + 1,
                      sizeof(*rd->nsmodes));
                rd->nsmodes[rd->n_nsmodes++] = (struct nsmode){xstrdup(name), mode};
            }
        }
        const char *cpu = annotation(obj, LK_CPU), *mem = annotation(obj, LK_MEMORY);
        if (cpu || mem) {
            const struct src *mcs = srcs_last(&s, MESH_KIND_MESH_CONFIG);
            if (!mcs) {
                warn(rd, obj, "metadata.annotations[\"" LK_CPU "\"]",
                     "the proxy's resources of one namespace: our MeshConfig sets them for every "
                     "namespace");
            } else {
                struct rmc *mc = mc_get(rd, mcs->ns, mcs->name, obj);
                if (cpu)
                    mc_set(rd, obj, &mc->cpu, cpu, LK_CPU);
                if (mem)
                    mc_set(rd, obj, &mc->memory, mem, LK_MEMORY);
            }
        }
        const char *limits[] = {"config.linkerd.io/proxy-cpu-limit",
                                "config.linkerd.io/proxy-memory-limit"};
        for (size_t k = 0; k < 2; k++)
            if (annotation(obj, limits[k])) {
                char f[128];
                snprintf(f, sizeof(f), "metadata.annotations[\"%s\"]", limits[k]);
                warn(rd, obj, f, "our MeshConfig sets the proxy's requests, not its limits");
            }
        srcs_clear(&s);
    }
}

static void emit_mesh_configs(struct rd *rd)
{
    for (size_t i = 0; i < rd->n_mcs; i++) {
        const struct rmc *mc = &rd->mcs[i];
        struct mesh_node *spec;
        struct mesh_node *doc = mesh_read_doc("MeshConfig", mc->name, mc->ns, &spec);
        mesh_node_map_set(spec, "provider", mesh_node_str("linkerd"));
        if (rd->opt && rd->opt->version)
            mesh_node_map_set(spec, "version", mesh_node_str(rd->opt->version));
        struct mesh_node *res = mesh_node_map();
        if (mc->cpu)
            mesh_node_map_set(res, "cpu", mesh_node_str(mc->cpu));
        if (mc->memory)
            mesh_node_map_set(res, "memory", mesh_node_str(mc->memory));
        mesh_node_map_set(spec, "proxy", map1("resources", res));
        emit(rd, doc, mc->obj);
    }
}

/* --- authorization: AuthorizationPolicies and what they point at --- */

static const struct mesh_node *find_obj(const struct mesh_node **objs, size_t n, const char *ns,
                                        const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(mesh_read_namespace(objs[i]), ns) && !strcmp(mesh_read_name(objs[i]), name))
            return objs[i];
    return NULL;
}

/* Who an AuthorizationPolicy admits. */
struct auth {
    bool anyone;
    enum mesh_mtls_mode anyone_mode; /* strict: every meshed identity; permissive: every address */
    struct strs ids;
};

static bool all_networks(const struct mesh_node *nets)
{
    bool v4 = false, v6 = false;
    for (size_t i = 0; nets && nets->type == MESH_NODE_SEQ && i < nets->len; i++) {
        const char *cidr = text_at(nets->items[i], "cidr");
        if (child(nets->items[i], "except") || !cidr)
            return false;
        v4 = v4 || !strcmp(cidr, "0.0.0.0/0");
        v6 = v6 || !strcmp(cidr, "::/0");
    }
    return v4 && v6;
}

/* Whether id is the Linkerd identity of one ServiceAccount, NAME.NS.serviceaccount.identity.
 * linkerd.DOMAIN (not a wildcard). */
static bool identity_ok(const char *id)
{
    const char *mid = strstr(id, LK_IDENTITY);
    if (!mid || !mid[strlen(LK_IDENTITY)])
        return false;
    const char *dot = memchr(id, '.', (size_t)(mid - id));
    return dot && mesh_linkerd_label_ok(id, (size_t)(dot - id)) &&
           mesh_linkerd_label_ok(dot + 1, (size_t)(mid - dot - 1));
}

static bool read_auth(struct rd *rd, const struct mesh_node *authz, struct auth *out)
{
    memset(out, 0, sizeof(*out));
    const char *ns = mesh_read_namespace(authz);
    const struct mesh_node *refs = child(child(authz, "spec"), "requiredAuthenticationRefs");
    bool restricted = false;
    char f[160];
    if (!refs || (refs->type == MESH_NODE_SEQ && !refs->len)) {
        out->anyone = true;
        return true;
    }
    if (refs->type != MESH_NODE_SEQ) {
        warn(rd, authz, "spec.requiredAuthenticationRefs", "not a sequence");
        return false;
    }
    for (size_t i = 0; i < refs->len; i++) {
        const struct mesh_node *ref = refs->items[i];
        const char *kind = text_at(ref, "kind"), *name = text_at(ref, "name");
        const char *rns = text_at(ref, "namespace") ? text_at(ref, "namespace") : ns;
        snprintf(f, sizeof(f), "spec.requiredAuthenticationRefs[%zu]", i);
        if (!kind || !name) {
            warn(rd, authz, f, "no kind or name");
            return false;
        }
        if (!strcmp(kind, "ServiceAccount") && core_group(text_at(ref, "group"))) {
            if (restricted) {
                warn(rd, authz, f, "our rules admit any of a list of identities, not all of them");
                return false;
            }
            char *id = xasprintf("%s.%s" LK_IDENTITY "%s", name, rns, rd->domain);
            strs_add(&out->ids, id);
            free(id);
            restricted = true;
            continue;
        }
        const struct mesh_node *a = NULL;
        if (!strcmp(kind, "MeshTLSAuthentication"))
            a = find_obj(rd->mtls_objs, rd->n_mtls_objs, rns, name);
        else if (!strcmp(kind, "NetworkAuthentication"))
            a = find_obj(rd->net_objs, rd->n_net_objs, rns, name);
        else {
            warn(rd, authz, f, "%s: our rules admit identities", kind);
            return false;
        }
        if (!a) {
            warn(rd, authz, f, "no %s %s/%s was given", kind, rns, name);
            return false;
        }
        const struct mesh_node *spec = child(a, "spec");
        if (!strcmp(kind, "NetworkAuthentication")) {
            if (!all_networks(child(spec, "networks"))) {
                warn(rd, a, "spec.networks", "our rules admit identities, not networks");
                return false;
            }
            if (!restricted && !out->anyone) {
                out->anyone = true;
                out->anyone_mode = MESH_MTLS_PERMISSIVE;
            }
            continue;
        }
        if (restricted) {
            warn(rd, authz, f, "our rules admit any of a list of identities, not all of them");
            return false;
        }
        restricted = true;
        const struct mesh_node *ids = child_seq(spec, "identities");
        const struct mesh_node *irefs = child_seq(spec, "identityRefs");
        bool star = false;
        for (size_t k = 0; ids && k < ids->len; k++) {
            const char *id = text(ids->items[k]);
            char ff[64];
            snprintf(ff, sizeof(ff), "spec.identities[%zu]", k);
            if (id && !strcmp(id, "*"))
                star = true;
            else if (id && identity_ok(id))
                strs_add(&out->ids, id);
            else
                warn(rd, a, ff, "\"%s\": our identities are a ServiceAccount's", id ? id : "");
        }
        for (size_t k = 0; irefs && k < irefs->len; k++) {
            const char *ik = text_at(irefs->items[k], "kind"),
                       *in = text_at(irefs->items[k], "name");
            const char *ins = text_at(irefs->items[k], "namespace");
            char ff[64];
            snprintf(ff, sizeof(ff), "spec.identityRefs[%zu]", k);
            if (!ik || strcmp(ik, "ServiceAccount") || !in) {
                warn(rd, a, ff, "our identities are a ServiceAccount's");
                continue;
            }
            char *id = xasprintf("%s.%s" LK_IDENTITY "%s", in, ins ? ins : rns, rd->domain);
            strs_add(&out->ids, id);
            free(id);
        }
        if (star) {
            strs_clear(&out->ids);
            out->anyone = true;
            out->anyone_mode = MESH_MTLS_STRICT;
        } else if (!out->ids.n) {
            /* Never read as anyone what admitted no one we can name. */
            warn(rd, a, "spec.identities", "no identity of it can be read (the rule is left out)");
            return false;
        }
    }
    if (restricted && out->anyone_mode != MESH_MTLS_STRICT)
        out->anyone = false; /* every address, and only these identities: these identities */
    return true;
}

static void units_free(struct unit *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(u[i].method);
        free(u[i].path);
    }
    free(u);
}

static void unit_add(struct unit **u, size_t *n, size_t *cap, const char *method, const char *path)
{
    xgrow((void **)u, cap, *n + 1, sizeof(**u));
    (*u)[(*n)++] = (struct unit){xstrdup(method), xstrdup(path)};
}

/* An inbound HTTPRoute's conditions as units; false (warned) when ours cannot hold them. */
static bool route_units(struct rd *rd, const struct mesh_node *route, struct unit **out,
                        size_t *n_out)
{
    struct unit *u = NULL;
    size_t n = 0, cap = 0;
    char f[160];
    const struct mesh_node *rules = child_seq(child(route, "spec"), "rules");
    for (size_t i = 0; rules && i < rules->len; i++) {
        const struct mesh_node *rule = rules->items[i];
        if (child(rule, "filters") || child(rule, "backendRefs")) {
            snprintf(f, sizeof(f), "spec.rules[%zu]", i);
            warn(rd, route, f, "an inbound route's filters and backends are not ours");
        }
        const struct mesh_node *ms = child_seq(rule, "matches");
        if (!ms || !ms->len) {
            unit_add(&u, &n, &cap, NULL, NULL);
            continue;
        }
        for (size_t m = 0; m < ms->len; m++) {
            const struct mesh_node *match = ms->items[m];
            snprintf(f, sizeof(f), "spec.rules[%zu].matches[%zu]", i, m);
            if (child(match, "headers") || child(match, "queryParams")) {
                warn(rd, route, f,
                     "our authorization rules match methods and paths only (the rule is left "
                     "out)");
                goto bad;
            }
            const char *method = text_at(match, "method");
            const struct mesh_node *p = child(match, "path");
            const char *type = p ? text_at(p, "type") : NULL,
                       *value = p ? text_at(p, "value") : NULL;
            if (p && !type)
                type = "PathPrefix";
            if (p && !value)
                value = "/";
            if (!p || (!strcmp(type, "PathPrefix") && !strcmp(value, "/"))) {
                unit_add(&u, &n, &cap, method, NULL);
            } else if (!strcmp(type, "Exact") && value[0] == '/' && !strchr(value, '*')) {
                unit_add(&u, &n, &cap, method, value);
            } else if (!strcmp(type, "PathPrefix") && value[0] == '/' && !strchr(value, '*')) {
                /* Whole segments: the path itself, and what is under it. */
                size_t len = strlen(value);
                while (len > 1 && value[len - 1] == '/')
                    len--;
                char *exact = xstrndup(value, len), *under = xasprintf("%s/*", exact);
                unit_add(&u, &n, &cap, method, exact);
                unit_add(&u, &n, &cap, method, under);
                free(exact);
                free(under);
            } else {
                char *g = !strcmp(type, "RegularExpression") ? glob_of_regex(value) : NULL;
                char *star = g ? strchr(g, '*') : NULL;
                if (!g || star[1]) {
                    free(g);
                    warn(rd, route, f,
                         "our authorization paths are exact or a prefix (the rule is left out)");
                    goto bad;
                }
                unit_add(&u, &n, &cap, method, g);
                free(g);
            }
        }
    }
    if (!n)
        unit_add(&u, &n, &cap, NULL, NULL);
    *out = u;
    *n_out = n;
    return true;
bad:
    units_free(u, n);
    return false;
}

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool units_equal(const struct unit *a, size_t na, const struct unit *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i].method, b[i].method) || !same_str(a[i].path, b[i].path))
            return false;
    return true;
}

/* Rule R of policy P from an object named P-ruleR-..., or -1. */
static long rule_index(const char *authz, const struct rsp *sp, bool ours)
{
    size_t n = strlen(sp->name);
    if (!ours || strncmp(authz, sp->name, n) || strncmp(authz + n, "-rule", 5))
        return -1;
    const char *p = authz + n + 5;
    char *end;
    if (*p < '0' || *p > '9')
        return -1;
    long r = strtol(p, &end, 10);
    return *end == '-' && r < 1000000 ? r : -1;
}

static struct rrule *sp_rule(struct rsp *sp, long index, const char *key,
                             const struct mesh_node *obj)
{
    for (size_t i = 0; index >= 0 && i < sp->n_rules; i++)
        if (sp->rules[i].index == index)
            return &sp->rules[i];
    xgrow((void **)&sp->rules, &sp->cap_rules, sp->n_rules + 1, sizeof(*sp->rules));
    struct rrule *r = &sp->rules[sp->n_rules++];
    memset(r, 0, sizeof(*r));
    r->index = index;
    r->key = xstrdup(key);
    r->obj = obj;
    return r;
}

static void read_authz(struct rd *rd, const struct mesh_node *obj)
{
    const char *ns = mesh_read_namespace(obj), *name = mesh_read_name(obj);
    const struct mesh_node *tr = child(child(obj, "spec"), "targetRef");
    const char *tkind = text_at(tr, "kind"), *tname = text_at(tr, "name");
    if (!tkind || !tname) {
        warn(rd, obj, "spec.targetRef", "no kind or name");
        return;
    }
    if (text_at(tr, "namespace") && strcmp(text_at(tr, "namespace"), ns)) {
        warn(rd, obj, "spec.targetRef", "a target in another namespace");
        return;
    }
    struct rserver *servers[64];
    size_t n_servers = 0;
    struct unit *units = NULL;
    size_t n_units = 0;
    if (!strcmp(tkind, "Server")) {
        struct rserver *srv = server_find(rd, ns, tname);
        if (!srv) {
            warn(rd, obj, "spec.targetRef", "no Server %s/%s was given", ns, tname);
            return;
        }
        servers[n_servers++] = srv;
    } else if (!strcmp(tkind, "HTTPRoute")) {
        const struct mesh_node *route = find_obj(rd->route_objs, rd->n_route_objs, ns, tname);
        if (!route || !route_inbound(route)) {
            warn(rd, obj, "spec.targetRef", "no HTTPRoute %s/%s of a Server was given", ns, tname);
            return;
        }
        const struct mesh_node *ps = child_seq(child(route, "spec"), "parentRefs");
        for (size_t i = 0; ps && i < ps->len && n_servers < 64; i++) {
            const char *pn = text_at(ps->items[i], "name");
            struct rserver *srv =
                pn && parent_is(ps->items[i], LK_GROUP, "Server") ? server_find(rd, ns, pn) : NULL;
            if (srv)
                servers[n_servers++] = srv;
            else
                warn(rd, route, "spec.parentRefs", "no Server %s/%s was given", ns,
                     pn ? pn : "(unnamed)");
        }
        if (!route_units(rd, route, &units, &n_units))
            return;
    } else {
        warn(rd, obj, "spec.targetRef", "%s: our rules cover Services", tkind);
        return;
    }
    struct auth a;
    if (!read_auth(rd, obj, &a)) {
        units_free(units, n_units);
        return;
    }
    struct srcs s;
    srcs_read(obj, &s);
    const struct src *src = srcs_last(&s, MESH_KIND_SECURITY_POLICY);
    struct rsp *sp = src ? sp_get(rd, src->ns, src->name, obj) : sp_get(rd, ns, name, obj);
    srcs_clear(&s);
    /* The mode of a policy on a Server without rules: SERVER-strict or SERVER-permissive. */
    if (!strcmp(tkind, "Server") && a.anyone && a.anyone_mode) {
        char *mode_name = xasprintf("%s-%s", tname, mesh_mtls_mode_name(a.anyone_mode));
        bool mode_only = !strcmp(name, mode_name);
        free(mode_name);
        if (mode_only) {
            servers[0]->used = true;
            if (servers[0]->host) {
                char *k = key_of(ns, servers[0]->host);
                strs_add(&sp->services, k);
                free(k);
                if (sp->mode && sp->mode != a.anyone_mode)
                    warn(rd, obj, "", "policy %s/%s covers Services with two mTLS modes", sp->ns,
                         sp->name);
                else
                    sp->mode = a.anyone_mode;
            }
            strs_clear(&a.ids);
            return;
        }
    }
    long index = rule_index(name, sp, src != NULL);
    struct rrule *rule = sp_rule(sp, index, name, obj);
    if (!rule->filled) {
        rule->filled = true;
        rule->anyone = a.anyone;
        for (size_t i = 0; i < a.ids.n; i++)
            strs_add(&rule->ids, a.ids.v[i]);
        rule->units = units;
        rule->n_units = n_units;
        units = NULL; /* the rule owns them now */
        n_units = 0;
    } else if (!units_equal(rule->units, rule->n_units, units, n_units)) {
        warn(rd, obj, "spec.targetRef",
             "rule %ld of policy %s/%s reads with other methods and paths elsewhere", index, sp->ns,
             sp->name);
    }
    for (size_t i = 0; i < n_servers; i++) {
        servers[i]->used = true;
        if (!servers[i]->host)
            continue;
        char *k = key_of(ns, servers[i]->host);
        strs_add(&rule->servers, k);
        free(k);
        if (a.anyone && a.anyone_mode && !servers[i]->anyone) {
            servers[i]->anyone = a.anyone_mode;
            servers[i]->anyone_sp = sp;
        }
    }
    units_free(units, n_units);
    strs_clear(&a.ids);
}

/* The fewest hosts whose Servers (linkerd.c host_servers) are exactly set, each "ns/name",
 * spelled for namespace from; what no host names exactly is left out with a warning. */
static void cover_hosts(struct rd *rd, const struct strs *set, const char *from,
                        const struct mesh_node *obj, const char *field, struct strs *out)
{
    struct strs covered = {0};
    for (size_t i = 0; i < set->n; i++) {
        if (strs_has(&covered, set->v[i]))
            continue;
        const char *slash = strchr(set->v[i], '/');
        char *ns = xstrndup(set->v[i], (size_t)(slash - set->v[i]));
        const char *name = slash + 1;
        const struct rsvc *s = svc_ours(rd, ns, name);
        const char *cands[2] = {s ? svc_label(s, "app") : NULL, name};
        bool done = false;
        for (size_t c = 0; c < 2 && !done; c++) {
            if (!cands[c])
                continue;
            struct strs t = {0};
            app_services(rd, ns, cands[c], &t);
            if (!t.n) {
                char *k = key_of(ns, cands[c]);
                strs_add(&t, k);
                free(k);
            }
            bool inside = strs_has(&t, set->v[i]);
            for (size_t k = 0; inside && k < t.n; k++)
                inside = strs_has(set, t.v[k]);
            if (inside) {
                for (size_t k = 0; k < t.n; k++)
                    strs_add(&covered, t.v[k]);
                char *key = key_of(ns, cands[c]), *host = host_of_key(key, from);
                strs_add(out, host);
                free(key);
                free(host);
                done = true;
            }
            strs_clear(&t);
        }
        if (!done)
            warn(rd, obj, field,
                 "Service %s/%s alone: a host of ours naming it names the Services of its app "
                 "too",
                 ns, name);
        free(ns);
    }
    strs_clear(&covered);
}

static char *identity_of(const char *name, const char *ns, const char *domain)
{
    return xasprintf("%s.%s" LK_IDENTITY "%s", name, ns, domain);
}

/* Whether our short identity name.ns (linkerd.c rule_from: its own ServiceAccount and those of
 * the Services of app name) admits exactly identities of ids; then they are added to covered. */
static bool short_identity_fits(struct rd *rd, const char *name, const char *ns,
                                const struct strs *ids, struct strs *covered)
{
    struct strs t = {0};
    char *own = identity_of(name, ns, rd->domain);
    strs_add(&t, own);
    free(own);
    struct strs apps = {0};
    app_services(rd, ns, name, &apps);
    for (size_t k = 0; k < apps.n; k++) {
        char *id = identity_of(strchr(apps.v[k], '/') + 1, ns, rd->domain);
        strs_add(&t, id);
        free(id);
    }
    strs_clear(&apps);
    bool fits = true;
    for (size_t k = 0; fits && k < t.n; k++)
        fits = strs_has(ids, t.v[k]);
    for (size_t k = 0; fits && k < t.n; k++)
        strs_add(covered, t.v[k]);
    strs_clear(&t);
    return fits;
}

/* Identities as ours: the app's name.namespace, or the Service's, where that admits exactly
 * identities of the set; else spiffe://DOMAIN/ns/NS/sa/NAME, which admits one. */
static void cover_ids(struct rd *rd, const struct strs *ids, struct strs *out)
{
    struct strs covered = {0};
    for (size_t i = 0; i < ids->n; i++) {
        const char *id = ids->v[i];
        if (strs_has(&covered, id))
            continue;
        const char *mid = strstr(id, LK_IDENTITY);
        const char *domain = mid + strlen(LK_IDENTITY);
        const char *dot = memchr(id, '.', (size_t)(mid - id));
        char *name = xstrndup(id, (size_t)(dot - id));
        char *ns = xstrndup(dot + 1, (size_t)(mid - dot - 1));
        const struct rsvc *s = svc_ours(rd, ns, name);
        const char *cands[2] = {s ? svc_label(s, "app") : NULL, name};
        bool done = false;
        for (size_t c = 0; c < 2 && !done && !strcmp(domain, rd->domain); c++) {
            if (!cands[c] || !short_identity_fits(rd, cands[c], ns, ids, &covered))
                continue;
            char *our = xasprintf("%s.%s", cands[c], ns);
            strs_add(out, our);
            free(our);
            done = true;
        }
        if (!done) {
            char *spiffe = xasprintf("spiffe://%s/ns/%s/sa/%s", domain, ns, name);
            strs_add(out, spiffe);
            strs_add(&covered, id);
            free(spiffe);
        }
        free(name);
        free(ns);
    }
    strs_clear(&covered);
}

static int compare_rules(const void *pa, const void *pb)
{
    const struct rrule *a = pa, *b = pb;
    if ((a->index < 0) != (b->index < 0))
        return a->index < 0 ? 1 : -1;
    if (a->index != b->index)
        return a->index < b->index ? -1 : 1;
    return strcmp(a->key, b->key);
}

/* The units as methods x paths, in the order linkerd.c writes them (every method, then every
 * path of it); false when they are not such a product. */
static bool units_product(const struct unit *u, size_t n, struct strs *methods, struct strs *paths)
{
    bool any_method = !u[0].method, any_path = !u[0].path;
    for (size_t i = 0; i < n; i++) {
        if (!u[i].method != any_method || !u[i].path != any_path)
            return false;
        if (u[i].method)
            strs_add(methods, u[i].method);
        if (u[i].path)
            strs_add(paths, u[i].path);
    }
    size_t nm = methods->n ? methods->n : 1, np = paths->n ? paths->n : 1;
    if (n != nm * np)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((methods->n && strcmp(u[i].method, methods->v[i / np])) ||
            (paths->n && strcmp(u[i].path, paths->v[i % np])))
            return false;
    return true;
}

static void rule_doc(struct rd *rd, const struct rsp *sp, const struct rrule *r,
                     const struct strs *methods, const struct strs *paths, struct mesh_node *seq)
{
    struct strs to = {0}, from = {0};
    cover_hosts(rd, &r->servers, sp->ns, r->obj, "spec.targetRef", &to);
    if (!to.n) {
        strs_clear(&to);
        return;
    }
    struct mesh_node *rn = mesh_node_map();
    if (!r->anyone) {
        cover_ids(rd, &r->ids, &from);
        mesh_node_map_set(rn, "from", str_list(&from));
    }
    mesh_node_map_set(rn, "to", str_list(&to));
    if (methods->n)
        mesh_node_map_set(rn, "methods", str_list(methods));
    if (paths->n)
        mesh_node_map_set(rn, "paths", str_list(paths));
    mesh_node_seq_append(seq, rn);
    strs_clear(&to);
    strs_clear(&from);
}

static void emit_sp(struct rd *rd, struct rsp *sp)
{
    if (sp->n_rules > 1)
        qsort(sp->rules, sp->n_rules, sizeof(*sp->rules), compare_rules);
    struct mesh_node *rules = mesh_node_seq();
    for (size_t i = 0; i < sp->n_rules; i++) {
        const struct rrule *r = &sp->rules[i];
        struct strs methods = {0}, paths = {0};
        if (!r->units || units_product(r->units, r->n_units, &methods, &paths)) {
            rule_doc(rd, sp, r, &methods, &paths, rules);
        } else {
            /* Conditions no product of methods and paths: a rule for each, the same union. */
            for (size_t k = 0; k < r->n_units; k++) {
                struct strs m = {0}, p = {0};
                if (r->units[k].method)
                    strs_add(&m, r->units[k].method);
                if (r->units[k].path)
                    strs_add(&p, r->units[k].path);
                rule_doc(rd, sp, r, &m, &p, rules);
                strs_clear(&m);
                strs_clear(&p);
            }
        }
        strs_clear(&methods);
        strs_clear(&paths);
    }
    struct strs services = {0};
    if (!sp->ns_wide)
        cover_hosts(rd, &sp->services, sp->ns, sp->obj, "spec.targetRef", &services);
    bool mode = sp->mode && (sp->ns_wide || services.n);
    if (!mode && !rules->len) {
        mesh_node_free(rules);
        strs_clear(&services);
        return;
    }
    struct mesh_node *spec;
    struct mesh_node *doc = mesh_read_doc("SecurityPolicy", sp->name, sp->ns, &spec);
    if (services.n)
        mesh_node_map_set(spec, "services", str_list(&services));
    if (mode)
        mesh_node_map_set(spec, "mtls", map1("mode", mesh_node_str(mesh_mtls_mode_name(sp->mode))));
    if (rules->len)
        mesh_node_map_set(spec, "authorization", rules);
    else
        mesh_node_free(rules);
    strs_clear(&services);
    emit(rd, doc, sp->obj);
}

static void read_security(struct rd *rd)
{
    for (size_t i = 0; i < rd->n_authz_objs; i++)
        read_authz(rd, rd->authz_objs[i]);
    for (size_t i = 0; i < rd->n_servers; i++) {
        struct rserver *srv = &rd->servers[i];
        if (!srv->host)
            continue;
        char *k = key_of(srv->ns, srv->host);
        if (!srv->used && srv->access) {
            /* A Server written by hand with its own default: a mode for its Service. */
            struct rsp *sp = sp_get(rd, srv->ns, srv->name, srv->obj);
            strs_add(&sp->services, k);
            sp->mode = srv->access;
        } else if (!srv->used) {
            warn(rd, srv->obj, "",
                 "a Server no AuthorizationPolicy admits anyone to denies every "
                 "request, which no policy of ours says");
        } else if (srv->anyone) {
            /* Rules admitting anyone say which mode the Service had: every meshed identity
             * under strict mTLS, every address otherwise. The namespace's default gives one;
             * the other was the Service's own. */
            bool strict = srv->anyone == MESH_MTLS_STRICT;
            bool ns_strict = ns_mode(rd, srv->ns) == MESH_MTLS_STRICT;
            struct rsp *sp = srv->anyone_sp;
            if (strict != ns_strict && !strs_has(&sp->services, k)) {
                if (sp->ns_wide || (sp->mode && sp->mode != srv->anyone))
                    warn(rd, srv->obj, "",
                         "its rules admit %s, which policy %s/%s cannot say for it alone",
                         strict ? "every meshed client" : "every address", sp->ns, sp->name);
                else {
                    sp->mode = srv->anyone;
                    strs_add(&sp->services, k);
                }
            }
        }
        free(k);
    }
    for (size_t i = 0; i < rd->n_sps; i++)
        emit_sp(rd, rd->sps[i]);
}

/* --- circuit breakers: failure accrual annotations on Services --- */

static struct rcb *cb_get(struct rd *rd, const char *ns, const char *name,
                          const struct mesh_node *obj)
{
    for (size_t i = 0; i < rd->n_cbs; i++)
        if (!strcmp(rd->cbs[i].ns, ns) && !strcmp(rd->cbs[i].name, name))
            return &rd->cbs[i];
    xgrow((void **)&rd->cbs, &rd->cap_cbs, rd->n_cbs + 1, sizeof(*rd->cbs));
    struct rcb *cb = &rd->cbs[rd->n_cbs++];
    memset(cb, 0, sizeof(*cb));
    cb->ns = xstrdup(ns);
    cb->name = xstrdup(name);
    cb->obj = obj;
    return cb;
}

/* The accrual annotations of one Service object: false (warned) when they are not ours. */
static bool accrual_read(struct rd *rd, const struct mesh_node *obj, unsigned long long *errors,
                         unsigned long long *penalty_ms, const char **penalty)
{
    const char *fa = annotation(obj, LK_ACCRUAL);
    const char *max = annotation(obj, LK_MAX_FAILURES);
    const char *min = annotation(obj, LK_MIN_PENALTY);
    const char *maxp = annotation(obj, LK_MAX_PENALTY);
    if (!fa) {
        if (max || min || maxp)
            warn(rd, obj, "metadata.annotations[\"" LK_ACCRUAL "\"]",
                 "failure accrual settings without " LK_ACCRUAL ": consecutive");
        return false;
    }
    if (strcmp(fa, "consecutive")) {
        warn(rd, obj, "metadata.annotations[\"" LK_ACCRUAL "\"]",
             "\"%s\": our outlier detection counts consecutive failures", fa);
        return false;
    }
    struct mesh_node *tmp = mesh_node_str(max ? max : "");
    bool ok = uint_of(tmp, INT32_MAX, errors) && *errors;
    mesh_node_free(tmp);
    if (!ok) {
        /* Linkerd's default is 7 consecutive failures. */
        if (max)
            warn(rd, obj, "metadata.annotations[\"" LK_MAX_FAILURES "\"]", "\"%s\": not a count",
                 max);
        *errors = 7;
    }
    *penalty = min ? min : "1s"; /* Linkerd's default minimum penalty */
    if (!duration_ok(*penalty, penalty_ms)) {
        warn(rd, obj, "metadata.annotations[\"" LK_MIN_PENALTY "\"]", "\"%s\": not a duration",
             *penalty);
        *penalty = "1s";
        *penalty_ms = 1000;
    }
    unsigned long long maxp_ms = 0;
    /* linkerd.c raises the maximum with a base above Linkerd's default 60s; anything else is
     * a backoff our ejection time does not have. */
    if (maxp &&
        !(duration_ok(maxp, &maxp_ms) && maxp_ms == *penalty_ms && *penalty_ms > LK_PENALTY_LIMIT))
        warn(rd, obj, "metadata.annotations[\"" LK_MAX_PENALTY "\"]",
             "our ejection time grows by the base, with no maximum of its own");
    if (annotation(obj, LK_JITTER))
        warn(rd, obj, "metadata.annotations[\"" LK_JITTER "\"]", "our ejection time has no jitter");
    return true;
}

static void read_breakers(struct rd *rd)
{
    for (size_t i = 0; i < rd->n_svc_objs; i++) {
        const struct mesh_node *obj = rd->svc_objs[i];
        const struct mesh_node *ann = annotations(obj);
        for (size_t k = 0; ann && ann->type == MESH_NODE_MAP && k < ann->len; k++) {
            const char *key = ann->pairs[k].key->text;
            if (!strncmp(key, LK_RETRY, strlen(LK_RETRY)) ||
                !strncmp(key, LK_TIMEOUT, strlen(LK_TIMEOUT))) {
                char f[160];
                snprintf(f, sizeof(f), "metadata.annotations[\"%s\"]", key);
                warn(rd, obj, f,
                     "our retries and timeouts are a VirtualService's routes', not a Service's");
            }
        }
        unsigned long long errors = 0, penalty_ms = 0;
        const char *penalty = NULL;
        if (!accrual_read(rd, obj, &errors, &penalty_ms, &penalty))
            continue;
        const char *ns = mesh_read_namespace(obj), *name = mesh_read_name(obj);
        struct srcs s;
        srcs_read(obj, &s);
        const struct src *last = srcs_last(&s, MESH_KIND_CIRCUIT_BREAKER);
        char *target = key_of(ns, name);
        for (size_t k = 0; k < s.n || (!last && k == 0); k++) {
            if (last && s.v[k].kind != MESH_KIND_CIRCUIT_BREAKER)
                continue;
            struct rcb *cb =
                last ? cb_get(rd, s.v[k].ns, s.v[k].name, obj) : cb_get(rd, ns, name, obj);
            strs_add(&cb->targets, target);
            bool is_last = !last || &s.v[k] == last;
            if (cb->have && cb->last && is_last &&
                (cb->errors != errors || cb->penalty_ms != penalty_ms)) {
                warn(rd, obj, "metadata.annotations[\"" LK_MAX_FAILURES "\"]",
                     "CircuitBreaker %s/%s reads with other settings elsewhere", cb->ns, cb->name);
                continue;
            }
            if (!cb->have || (is_last && !cb->last)) {
                cb->have = true;
                cb->last = is_last;
                cb->errors = errors;
                cb->penalty_ms = penalty_ms;
                free(cb->penalty);
                cb->penalty = xstrdup(penalty);
            }
            if (!last)
                break;
        }
        free(target);
        srcs_clear(&s);
    }
}

/* A stand-in VirtualService named name, bound to a gateway no sidecar serves, whose hosts are
 * the Services a breaker guarded. */
static void stand_in_vs(struct rd *rd, const struct rcb *cb, const char *name,
                        const struct strs *hosts)
{
    struct mesh_node *spec;
    struct mesh_node *doc = mesh_read_doc("VirtualService", name, cb->ns, &spec);
    mesh_node_map_set(spec, "hosts", str_list(hosts));
    struct mesh_node *gws = mesh_node_seq();
    mesh_node_seq_append(gws, mesh_node_str(STAND_IN_GATEWAY));
    mesh_node_map_set(spec, "gateways", gws);
    struct mesh_node *dests = mesh_node_seq();
    mesh_node_seq_append(dests, map1("host", mesh_node_str(hosts->v[0])));
    struct mesh_node *routes = mesh_node_seq();
    mesh_node_seq_append(routes, map1("destinations", dests));
    mesh_node_map_set(spec, "http_routes", routes);
    emit(rd, doc, cb->obj);
}

static bool name_taken(struct rd *rd, const char *ns, const char *name)
{
    if (svc_ours(rd, ns, name))
        return true;
    for (size_t i = 0; i < rd->n_vss; i++)
        if (!strcmp(rd->vss[i].ns, ns) && !strcmp(rd->vss[i].name, name))
            return true;
    return false;
}

static void emit_breakers(struct rd *rd)
{
    for (size_t i = 0; i < rd->n_cbs; i++) {
        struct rcb *cb = &rd->cbs[i];
        char *service = NULL;
        if (cb->targets.n == 1) {
            const char *slash = strchr(cb->targets.v[0], '/');
            char *ns = xstrndup(cb->targets.v[0], (size_t)(slash - cb->targets.v[0]));
            service = service_host(rd, ns, slash + 1, cb->ns);
            free(ns);
        }
        /* Several Services: the VirtualService whose hosts and destinations they are. */
        for (size_t k = 0; !service && k < rd->n_vss; k++)
            if (!strcmp(rd->vss[k].ns, cb->ns) &&
                strs_same_set(&rd->vss[k].targets, &cb->targets) &&
                !svc_ours(rd, cb->ns, rd->vss[k].name))
                service = xstrdup(rd->vss[k].name);
        if (!service) {
            char *name = name_taken(rd, cb->ns, cb->name) ? xasprintf("%s-guarded", cb->name)
                                                          : xstrdup(cb->name);
            struct strs hosts = {0};
            for (size_t k = 0; k < cb->targets.n; k++) {
                char *h = host_of_key(cb->targets.v[k], cb->ns);
                strs_add(&hosts, h);
                free(h);
            }
            struct mesh_strbuf sb;
            mesh_strbuf_init(&sb, 0);
            for (size_t k = 0; k < hosts.n; k++)
                mesh_strbuf_printf(&sb, "%s%s", k ? ", " : "", hosts.v[k]);
            char *list = mesh_strbuf_take(&sb);
            warn(rd, cb->obj, "metadata.annotations[\"" MESH_SOURCE_ANNOTATION "\"]",
                 "CircuitBreaker %s/%s guards the Services %s, which only a VirtualService names, "
                 "and no route read back goes to exactly these: it is read as guarding "
                 "VirtualService %s/%s, a stand-in bound to gateway %s",
                 cb->ns, cb->name, list, cb->ns, name, STAND_IN_GATEWAY);
            free(list);
            stand_in_vs(rd, cb, name, &hosts);
            xgrow((void **)&rd->vss, &rd->cap_vss, rd->n_vss + 1, sizeof(*rd->vss));
            struct rvs *v = &rd->vss[rd->n_vss++];
            memset(v, 0, sizeof(*v));
            v->ns = xstrdup(cb->ns);
            v->name = xstrdup(name);
            for (size_t k = 0; k < cb->targets.n; k++)
                strs_add(&v->targets, cb->targets.v[k]);
            strs_clear(&hosts);
            service = name;
        }
        struct mesh_node *spec;
        struct mesh_node *doc = mesh_read_doc("CircuitBreaker", cb->name, cb->ns, &spec);
        mesh_node_map_set(spec, "service", mesh_node_str(service));
        struct mesh_node *det = mesh_node_map();
        mesh_node_map_set(det, "consecutive_errors", mesh_node_int((long long)cb->errors));
        mesh_node_map_set(det, "base_ejection_time", mesh_node_str(cb->penalty));
        mesh_node_map_set(spec, "detection", det);
        emit(rd, doc, cb->obj);
        free(service);
    }
}

/* --- the reader --- */

static void classify(struct rd *rd, struct mesh_node *const *objects, size_t n)
{
    size_t cap = n + 1;
    rd->svc_objs = xcalloc(cap, sizeof(*rd->svc_objs));
    rd->ns_objs = xcalloc(cap, sizeof(*rd->ns_objs));
    rd->route_objs = xcalloc(cap, sizeof(*rd->route_objs));
    rd->server_objs = xcalloc(cap, sizeof(*rd->server_objs));
    rd->authz_objs = xcalloc(cap, sizeof(*rd->authz_objs));
    rd->mtls_objs = xcalloc(cap, sizeof(*rd->mtls_objs));
    rd->net_objs = xcalloc(cap, sizeof(*rd->net_objs));
    for (size_t i = 0; i < n; i++) {
        const struct mesh_node *obj = objects[i];
        if (!obj)
            continue;
        if (obj->type != MESH_NODE_MAP) {
            warn(rd, obj, "", "not a mapping");
            continue;
        }
        const char *kind = text_at(obj, "kind");
        bool core = api_group_is(obj, "") && text_at(obj, "apiVersion");
        bool lk = api_group_is(obj, LK_GROUP), gw = api_group_is(obj, GW_GROUP);
        bool svc = core && kind_is(obj, "Service"), ns = core && kind_is(obj, "Namespace");
        if (!kind || !text_at(obj, "apiVersion")) {
            warn(rd, obj, "", "no apiVersion or kind");
            continue;
        }
        if (!svc && !ns && !lk && !gw && !api_group_is(obj, "linkerd.io"))
            continue; /* not a kind any translation of ours writes or reads */
        if (!mesh_read_name(obj)) {
            warn(rd, obj, "metadata.name", "no name");
            continue;
        }
        if (svc)
            rd->svc_objs[rd->n_svc_objs++] = obj;
        else if (ns)
            rd->ns_objs[rd->n_ns_objs++] = obj;
        else if ((lk || gw) && !strcmp(kind, "HTTPRoute"))
            rd->route_objs[rd->n_route_objs++] = obj;
        else if (lk && !strcmp(kind, "Server"))
            rd->server_objs[rd->n_server_objs++] = obj;
        else if (lk && !strcmp(kind, "AuthorizationPolicy"))
            rd->authz_objs[rd->n_authz_objs++] = obj;
        else if (lk && !strcmp(kind, "MeshTLSAuthentication"))
            rd->mtls_objs[rd->n_mtls_objs++] = obj;
        else if (lk && !strcmp(kind, "NetworkAuthentication"))
            rd->net_objs[rd->n_net_objs++] = obj;
        else if (lk || gw || api_group_is(obj, "linkerd.io"))
            warn(rd, obj, "", "our model has no counterpart of a %s", kind);
    }
}

static void rd_free(struct rd *rd)
{
    free(rd->svc_objs);
    free(rd->ns_objs);
    free(rd->route_objs);
    free(rd->server_objs);
    free(rd->authz_objs);
    free(rd->mtls_objs);
    free(rd->net_objs);
    for (size_t i = 0; i < rd->n_svcs; i++) {
        free(rd->svcs[i].ns);
        free(rd->svcs[i].name);
        free(rd->svcs[i].port_field);
        mesh_resource_free(rd->svcs[i].res);
    }
    free(rd->svcs);
    for (size_t i = 0; i < rd->n_servers; i++)
        free(rd->servers[i].host);
    free(rd->servers);
    for (size_t i = 0; i < rd->n_routes; i++) {
        struct rroute *r = &rd->routes[i];
        srcs_clear(&r->srcs);
        strs_clear(&r->hosts);
        for (size_t k = 0; k < r->n_rules; k++)
            rule_out_clear(&r->rules[k]);
        free(r->rules);
        for (size_t k = 0; k < r->n_http; k++) {
            free(r->http[k].name);
        }
        free(r->http);
        mesh_node_free(r->retries);
        free(r->timeout);
    }
    free(rd->routes);
    for (size_t i = 0; i < rd->n_faults; i++) {
        free(rd->faults[i].svc);
        free(rd->faults[i].ns);
        strs_clear(&rd->faults[i].routes);
    }
    free(rd->faults);
    for (size_t i = 0; i < rd->n_sps; i++) {
        struct rsp *sp = rd->sps[i];
        for (size_t k = 0; k < sp->n_rules; k++) {
            free(sp->rules[k].key);
            strs_clear(&sp->rules[k].ids);
            strs_clear(&sp->rules[k].servers);
            units_free(sp->rules[k].units, sp->rules[k].n_units);
        }
        free(sp->rules);
        strs_clear(&sp->services);
        free(sp->ns);
        free(sp->name);
        free(sp);
    }
    free(rd->sps);
    for (size_t i = 0; i < rd->n_cbs; i++) {
        free(rd->cbs[i].ns);
        free(rd->cbs[i].name);
        free(rd->cbs[i].penalty);
        strs_clear(&rd->cbs[i].targets);
    }
    free(rd->cbs);
    for (size_t i = 0; i < rd->n_mcs; i++) {
        free(rd->mcs[i].ns);
        free(rd->mcs[i].name);
        free(rd->mcs[i].cpu);
        free(rd->mcs[i].memory);
    }
    free(rd->mcs);
    for (size_t i = 0; i < rd->n_vss; i++) {
        free(rd->vss[i].ns);
        free(rd->vss[i].name);
        strs_clear(&rd->vss[i].targets);
    }
    free(rd->vss);
    for (size_t i = 0; i < rd->n_nsmodes; i++)
        free(rd->nsmodes[i].ns);
    free(rd->nsmodes);
}

enum mesh_err mesh_linkerd_read(struct mesh_node *const *objects, size_t n,
                                const struct mesh_translate_options *opt,
                                struct mesh_resource ***out, size_t *n_out,
                                struct mesh_diags *warnings)
{
    struct mesh_diags scratch = {0};
    struct rd rd = {.opt = opt, .warnings = warnings ? warnings : &scratch};
    rd.domain = opt && opt->cluster_domain ? opt->cluster_domain : "cluster.local";
    classify(&rd, objects, n);
    read_services(&rd);
    read_servers(&rd);
    read_routes(&rd);
    read_namespaces(&rd);
    read_security(&rd);
    read_breakers(&rd);
    emit_breakers(&rd);
    emit_mesh_configs(&rd);
    emit_services(&rd);
    mesh_read_sort(rd.out, rd.n_out);
    *out = rd.out;
    *n_out = rd.n_out;
    rd.out = NULL;
    rd_free(&rd);
    mesh_diags_clear(&scratch);
    return MESH_OK;
}
