/* SPDX-License-Identifier: Apache-2.0 */
/* Compiles resource documents into an immutable snapshot, and finds a virtual host by Host. */
#include "snapshot.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "model/service_host.h"
#include "net/sock.h"

/* --- shared cluster states, kept across reloads --- */

static pthread_mutex_t states_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mesh_cluster_state *states;

static struct mesh_cluster_state *cluster_state_get(const char *key, const char *service,
                                                    size_t n_endpoints)
{
    pthread_mutex_lock(&states_lock);
    struct mesh_cluster_state *st = states;
    while (st && strcmp(st->key, key) != 0)
        st = st->next;
    if (st) {
        atomic_fetch_add(&st->refs, 1);
    } else {
        st = xcalloc(1, sizeof(*st));
        atomic_init(&st->refs, 1);
        st->key = xstrdup(key);
        st->service = xstrdup(service);
        st->n_endpoints = n_endpoints;
        st->active = xcalloc(n_endpoints ? n_endpoints : 1, sizeof(*st->active));
        for (size_t i = 0; i < n_endpoints; i++)
            atomic_init(&st->active[i], 0);
        mesh_breaker_init(&st->breaker);
        mesh_outlier_cluster_init(&st->outlier, n_endpoints);
        st->next = states;
        states = st;
    }
    pthread_mutex_unlock(&states_lock);
    return st;
}

void mesh_cluster_state_unref(struct mesh_cluster_state *st)
{
    if (!st || atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    pthread_mutex_lock(&states_lock);
    struct mesh_cluster_state **pp = &states;
    while (*pp && *pp != st)
        pp = &(*pp)->next;
    if (*pp)
        *pp = st->next;
    pthread_mutex_unlock(&states_lock);
    mesh_outlier_cluster_destroy(&st->outlier);
    free(st->active);
    free(st->service);
    free(st->key);
    free(st);
}

void mesh_cluster_state_ref(struct mesh_cluster_state *st)
{
    atomic_fetch_add(&st->refs, 1);
}

void mesh_cluster_states_foreach(void (*fn)(struct mesh_cluster_state *st, void *ctx), void *ctx)
{
    pthread_mutex_lock(&states_lock);
    for (struct mesh_cluster_state *st = states; st; st = st->next)
        fn(st, ctx);
    pthread_mutex_unlock(&states_lock);
}

/* --- building --- */

struct builder {
    struct mesh_snapshot *snap;
    struct mesh_strbuf err;
    size_t vhost_cap, host_cap, n_hosts;
    struct mesh_host_entry *hosts; /* collected, then indexed */
};

/* Records "KIND NAME: why" for the user. */
static void fail(struct builder *b, const char *what, const char *name, const char *why)
{
    if (b->err.len)
        mesh_strbuf_puts(&b->err, "\n");
    mesh_strbuf_printf(&b->err, "%s %s: %s", what, name, why);
}

/* A destination host names a Service: name, name.ns, name.ns.svc, name.ns.svc.cluster.local. */
static struct mesh_cluster *resolve_service(struct mesh_snapshot *s, const char *host,
                                            const char *default_ns)
{
    struct mesh_service_ref ref;
    if (!mesh_service_host_split(host, default_ns, &ref))
        return NULL;
    for (size_t i = 0; i < s->n_clusters; i++)
        if (mesh_service_ref_is(&ref, s->clusters[i].name, s->clusters[i].ns))
            return &s->clusters[i];
    return NULL;
}

static void add_endpoint(struct builder *b, struct mesh_cluster *c, const char *address,
                         const struct mesh_labels *labels)
{
    struct mesh_endpoint_rt *ep = &c->endpoints[c->n_endpoints];
    char why[256];
    if (mesh_sock_parse_addr(address, MESH_SOCK_F_RESOLVE, &ep->addr, &ep->addrlen, why,
                             sizeof(why)) != MESH_OK) {
        fail(b, "Service", c->name, why);
        return;
    }
    snprintf(ep->name, sizeof(ep->name), "%s", address);
    ep->labels = labels;
    for (size_t i = 0; i < labels->len; i++)
        if (strcmp(labels->items[i].key, MESH_LABEL_SIDECAR) == 0 &&
            strcmp(labels->items[i].value, "true") == 0)
            ep->sidecar = true;
    ep->id = b->snap->n_endpoints++;
    c->n_endpoints++;
}

static void build_clusters(struct builder *b, struct mesh_resource *const *res, size_t n)
{
    struct mesh_snapshot *s = b->snap;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += res[i]->kind == MESH_KIND_SERVICE;
    s->clusters = xcalloc(count ? count : 1, sizeof(*s->clusters));
    for (size_t i = 0; i < n; i++) {
        if (res[i]->kind != MESH_KIND_SERVICE)
            continue;
        const struct mesh_service *svc = (const struct mesh_service *)res[i];
        struct mesh_cluster *c = &s->clusters[s->n_clusters];
        c->id = (uint32_t)s->n_clusters++;
        c->src = svc;
        c->name = xstrdup(svc->res.name);
        c->ns = xstrdup(mesh_resource_namespace(&svc->res));
        c->lb = !svc->load_balancer                              ? MESH_LB_LEAST_REQUEST
                : strcmp(svc->load_balancer, "round_robin") == 0 ? MESH_LB_ROUND_ROBIN
                : strcmp(svc->load_balancer, "random") == 0      ? MESH_LB_RANDOM
                                                                 : MESH_LB_LEAST_REQUEST;
        c->mtls = mesh_security_outbound_mtls(res, n, c->name, c->ns);
        c->peer_strict = mesh_security_mode(res, n, c->name, c->ns) == MESH_MTLS_STRICT;
        c->peer_path = xasprintf("/ns/%s/sa/%s", c->ns, c->name);
        c->endpoints = xcalloc(svc->n_endpoints ? svc->n_endpoints : 1, sizeof(*c->endpoints));
        for (size_t e = 0; e < svc->n_endpoints; e++)
            add_endpoint(b, c, svc->endpoints[e].address, &svc->endpoints[e].labels);
    }
}

/* The clusters a CircuitBreaker or FaultInjection guards: a Service, or every destination of a
 * VirtualService. fn is called once per cluster; false when the target names nothing. */
static bool for_each_target(struct builder *b, struct mesh_resource *const *res, size_t n,
                            const char *target, const char *ns,
                            void (*fn)(struct mesh_cluster *c, const void *src), const void *src)
{
    struct mesh_cluster *c = resolve_service(b->snap, target, ns);
    if (c) {
        fn(c, src);
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (res[i]->kind != MESH_KIND_VIRTUAL_SERVICE || strcmp(res[i]->name, target) != 0 ||
            strcmp(mesh_resource_namespace(res[i]), ns) != 0)
            continue;
        const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)res[i];
        for (size_t r = 0; r < vs->n_http_routes; r++) {
            for (size_t d = 0; d < vs->http_routes[r].n_destinations; d++) {
                c = resolve_service(b->snap, vs->http_routes[r].destinations[d].host, ns);
                if (c)
                    fn(c, src);
            }
        }
        return true;
    }
    return false;
}

static void apply_breaker(struct mesh_cluster *c, const void *src)
{
    const struct mesh_circuit_breaker_config *cfg = src;
    c->limits.max_connections = cfg->max_connections;
    c->limits.max_pending_requests = cfg->max_pending_requests;
    c->limits.max_requests = cfg->max_requests;
    c->limits.max_retries = cfg->max_retries;
    if (cfg->detection.consecutive_errors) {
        c->outlier_enabled = true;
        mesh_outlier_config_from_detection(&c->outlier, &cfg->detection);
    }
}

static void apply_fault(struct mesh_cluster *c, const void *src)
{
    c->has_fault = true;
    mesh_fault_rt_from_model(&c->fault, src);
}

static void build_policies(struct builder *b, struct mesh_resource *const *res, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *ns = mesh_resource_namespace(res[i]);
        if (res[i]->kind == MESH_KIND_CIRCUIT_BREAKER) {
            const struct mesh_circuit_breaker *cb = (const struct mesh_circuit_breaker *)res[i];
            if (!for_each_target(b, res, n, cb->service, ns, apply_breaker, &cb->config))
                fprintf(stderr,
                        "lvl=warn msg=\"circuit breaker guards nothing\" breaker=%s service=%s\n",
                        cb->res.name, cb->service);
        } else if (res[i]->kind == MESH_KIND_FAULT_INJECTION) {
            const struct mesh_fault_injection *fi = (const struct mesh_fault_injection *)res[i];
            /* A VirtualService-wide fault is decided per route, before a destination is picked. */
            if (!resolve_service(b->snap, fi->service, ns))
                continue;
            for_each_target(b, res, n, fi->service, ns, apply_fault, &fi->fault);
        }
    }
}

static uint32_t retry_bits(const struct mesh_string_list *on)
{
    static const char *const names[] = {"5xx", "gateway-error", "reset", "connect-failure"};
    uint32_t bits = 0;
    for (size_t i = 0; i < on->len; i++)
        for (uint32_t k = 0; k < 4; k++)
            if (strcmp(on->items[i], names[k]) == 0)
                bits |= 1u << k;
    /* Istio's default when retries are asked for without conditions. */
    return bits ? bits
                : MESH_RETRY_ON_GATEWAY_ERROR | MESH_RETRY_ON_CONNECT_FAILURE | MESH_RETRY_ON_RESET;
}

/* The FaultInjection for route r of vs: one naming that route wins over one for the whole
 * VirtualService. */
static const struct mesh_fault_injection *route_fault(struct mesh_resource *const *res, size_t n,
                                                      const struct mesh_virtual_service *vs,
                                                      const struct mesh_http_route *r)
{
    const struct mesh_fault_injection *whole = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct mesh_fault_injection *fi = (const struct mesh_fault_injection *)res[i];
        if (res[i]->kind != MESH_KIND_FAULT_INJECTION || strcmp(fi->service, vs->res.name) != 0 ||
            strcmp(mesh_resource_namespace(res[i]), mesh_resource_namespace(&vs->res)) != 0)
            continue;
        if (!fi->route)
            whole = whole ? whole : fi;
        else if (r->name && strcmp(fi->route, r->name) == 0)
            return fi;
    }
    return whole;
}

static void build_route(struct builder *b, struct mesh_vhost *vh, const struct mesh_http_route *r,
                        size_t index, const char *ns, const struct mesh_fault_injection *fi)
{
    struct mesh_snapshot *s = b->snap;
    struct mesh_route_rt *rt = &vh->routes[index];
    rt->src = r;
    rt->name = r->name ? xstrdup(r->name) : xasprintf("route-%zu", index);
    rt->id = s->n_routes++;
    rt->vhost = vh;
    rt->matchers = xcalloc(r->n_matches ? r->n_matches : 1, sizeof(*rt->matchers));
    for (size_t m = 0; m < r->n_matches; m++) {
        char why[256];
        if (mesh_route_matcher_compile(&r->matches[m], &rt->matchers[m], why, sizeof(why)) !=
            MESH_OK) {
            fail(b, "VirtualService", vh->name, why);
            continue;
        }
        rt->n_matchers++;
    }
    rt->dests = xcalloc(r->n_destinations, sizeof(*rt->dests));
    rt->weights = xcalloc(r->n_destinations, sizeof(*rt->weights));
    rt->n_dests = r->n_destinations;
    rt->dest_base = s->n_dests;
    s->n_dests += (uint32_t)r->n_destinations;
    for (size_t d = 0; d < r->n_destinations; d++) {
        const struct mesh_route_destination *dst = &r->destinations[d];
        rt->dests[d].host = xstrdup(dst->host);
        rt->dests[d].cluster = resolve_service(s, dst->host, ns);
        rt->weights[d] =
            dst->weight == MESH_UNSET ? (r->n_destinations == 1 ? 100 : 0) : dst->weight;
        if (!rt->dests[d].cluster)
            fprintf(stderr,
                    "lvl=warn msg=\"destination names no Service: its share answers 503\" "
                    "virtualservice=%s host=%s\n",
                    vh->name, dst->host);
    }
    rt->timeout_ms = r->timeout_ms;
    rt->retry_attempts = r->retries.attempts;
    rt->per_try_timeout_ms = r->retries.per_try_timeout_ms;
    rt->retry_on = retry_bits(&r->retries.retry_on);
    if (fi) {
        rt->has_fault = true;
        mesh_fault_rt_from_model(&rt->fault, &fi->fault);
    }
}

static void add_host(struct builder *b, const char *host, const struct mesh_vhost *vh)
{
    xgrow((void **)&b->hosts, &b->host_cap, b->n_hosts + 1, sizeof(*b->hosts));
    char *lower = xstrdup(host);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    b->hosts[b->n_hosts].host = lower;
    b->hosts[b->n_hosts].vhost = vh;
    b->n_hosts++;
}

static struct mesh_vhost *new_vhost(struct builder *b, const struct mesh_virtual_service *src,
                                    char *name, size_t n_routes)
{
    struct mesh_snapshot *s = b->snap;
    struct mesh_vhost *vh = &s->vhosts[s->n_vhosts++];
    vh->src = src;
    vh->name = name;
    vh->routes = xcalloc(n_routes ? n_routes : 1, sizeof(*vh->routes));
    vh->n_routes = n_routes;
    return vh;
}

/* The other spellings of a VirtualService host that names an in-mesh service, as Kubernetes DNS
 * resolves them: "payment" in namespace default is also payment.default, payment.default.svc and
 * payment.default.svc.cluster.local; "payment.default.svc" is also payment.default, the
 * cluster.local form, and "payment" for clients in its own namespace. A two-label host is read as
 * name.namespace only when its second label is the VirtualService's namespace, so that
 * "example.com" stays a DNS name. */
static void add_host_aliases(struct builder *b, const char *host, const char *vs_ns,
                             const struct mesh_vhost *vh)
{
    if (strchr(host, '*') || strlen(host) > 253)
        return;
    struct mesh_service_ref ref;
    if (!mesh_service_host_split(host, vs_ns, &ref))
        return; /* an ordinary DNS name */
    /* A two-label host is name.namespace only in the VirtualService's own namespace, so that
     * "example.com" stays a DNS name. */
    const char *dot = strchr(host, '.');
    if (dot && !strchr(dot + 1, '.') && strcmp(dot + 1, vs_ns) != 0)
        return;
    char name[256], ns[256];
    snprintf(name, sizeof(name), "%.*s", (int)ref.name_len, ref.name);
    snprintf(ns, sizeof(ns), "%.*s", (int)ref.ns_len, ref.ns);
    char *names[4] = {
        strcmp(ns, vs_ns) == 0 ? xstrdup(name) : NULL,
        xasprintf("%s.%s", name, ns),
        xasprintf("%s.%s.svc", name, ns),
        xasprintf("%s.%s.svc.cluster.local", name, ns),
    };
    for (size_t k = 0; k < 4; k++) {
        if (names[k] && strcasecmp(names[k], host) != 0)
            add_host(b, names[k], vh);
        free(names[k]);
    }
}

static void build_virtual_services(struct builder *b, struct mesh_resource *const *res, size_t n)
{
    size_t first = b->snap->n_vhosts;
    for (size_t i = 0; i < n; i++) {
        if (res[i]->kind != MESH_KIND_VIRTUAL_SERVICE)
            continue;
        const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)res[i];
        const char *ns = mesh_resource_namespace(&vs->res);
        /* Every VirtualService given is served: meshd sends a sidecar the mesh ones and a gateway
         * its own; a static file is taken as written. */
        struct mesh_vhost *vh =
            new_vhost(b, vs, xasprintf("%s.%s", vs->res.name, ns), vs->n_http_routes);
        for (size_t r = 0; r < vs->n_http_routes; r++)
            build_route(b, vh, &vs->http_routes[r], r, ns,
                        route_fault(res, n, vs, &vs->http_routes[r]));
        vh->index = mesh_route_index_build(vs->http_routes, vs->n_http_routes);
        for (size_t h = 0; h < vs->hosts.len; h++)
            add_host(b, vs->hosts.items[h], vh);
    }
    /* Aliases after every host as written, so that a host some VirtualService names literally
     * is never taken by another one's alias (the first definition wins). */
    for (size_t v = first; v < b->snap->n_vhosts; v++) {
        const struct mesh_vhost *vh = &b->snap->vhosts[v];
        const char *ns = mesh_resource_namespace(&vh->src->res);
        for (size_t h = 0; h < vh->src->hosts.len; h++)
            add_host_aliases(b, vh->src->hosts.items[h], ns, vh);
    }
}

/* A request whose Host names a Service goes straight to it. */
static void build_service_hosts(struct builder *b)
{
    struct mesh_snapshot *s = b->snap;
    for (size_t i = 0; i < s->n_clusters; i++) {
        struct mesh_cluster *c = &s->clusters[i];
        struct mesh_vhost *vh = new_vhost(b, NULL, xasprintf("%s.%s", c->name, c->ns), 1);
        struct mesh_route_rt *rt = &vh->routes[0];
        rt->name = xstrdup("default");
        rt->id = s->n_routes++;
        rt->vhost = vh;
        rt->matchers = xcalloc(1, sizeof(*rt->matchers));
        rt->dests = xcalloc(1, sizeof(*rt->dests));
        rt->weights = xcalloc(1, sizeof(*rt->weights));
        rt->dests[0].cluster = c;
        rt->dests[0].host = xstrdup(c->name);
        rt->weights[0] = 100;
        rt->n_dests = 1;
        rt->dest_base = s->n_dests++;
        char *names[4] = {
            xstrdup(c->name),
            xasprintf("%s.%s", c->name, c->ns),
            xasprintf("%s.%s.svc", c->name, c->ns),
            xasprintf("%s.%s.svc.cluster.local", c->name, c->ns),
        };
        for (size_t k = 0; k < 4; k++) {
            add_host(b, names[k], vh);
            free(names[k]);
        }
    }
}

static uint64_t host_hash(const char *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint64_t)(unsigned char)tolower((unsigned char)p[i])) * 1099511628211ULL;
    return h;
}

static int by_suffix_length(const void *a, const void *b)
{
    size_t la = strlen(((const struct mesh_host_entry *)a)->host);
    size_t lb = strlen(((const struct mesh_host_entry *)b)->host);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Records, in each virtual host, the hosts that really lead to it once the index is built. */
static void list_vhost_hosts(struct mesh_snapshot *s)
{
    for (size_t i = 0; i < s->exact_cap; i++)
        if (s->exact[i].host)
            mesh_string_list_add(&s->vhosts[s->exact[i].vhost - s->vhosts].hosts, s->exact[i].host);
    for (size_t i = 0; i < s->n_wildcards; i++)
        mesh_string_list_add(&s->vhosts[s->wildcards[i].vhost - s->vhosts].hosts,
                             s->wildcards[i].host);
    if (s->catch_all)
        mesh_string_list_add(&s->vhosts[s->catch_all - s->vhosts].hosts, "*");
    for (size_t v = 0; v < s->n_vhosts; v++)
        if (s->vhosts[v].hosts.len > 1)
            qsort(s->vhosts[v].hosts.items, s->vhosts[v].hosts.len, sizeof(char *), by_string);
}

/* The first definition of a host wins (VirtualServices come before Service names). */
static void index_hosts(struct builder *b)
{
    struct mesh_snapshot *s = b->snap;
    s->exact_cap = 16;
    while (s->exact_cap < b->n_hosts * 2)
        s->exact_cap *= 2;
    s->exact = xcalloc(s->exact_cap, sizeof(*s->exact));
    s->wildcards = xcalloc(b->n_hosts ? b->n_hosts : 1, sizeof(*s->wildcards));
    for (size_t i = 0; i < b->n_hosts; i++) {
        struct mesh_host_entry *e = &b->hosts[i];
        if (strcmp(e->host, "*") == 0) {
            s->catch_all = s->catch_all ? s->catch_all : e->vhost;
            free(e->host);
            continue;
        }
        if (strncmp(e->host, "*.", 2) == 0) {
            s->wildcards[s->n_wildcards++] = *e;
            continue;
        }
        size_t slot = host_hash(e->host, strlen(e->host)) & (s->exact_cap - 1);
        while (s->exact[slot].host && strcmp(s->exact[slot].host, e->host) != 0)
            slot = (slot + 1) & (s->exact_cap - 1);
        if (s->exact[slot].host)
            free(e->host);
        else
            s->exact[slot] = *e;
    }
    qsort(s->wildcards, s->n_wildcards, sizeof(*s->wildcards), by_suffix_length);
    free(b->hosts);
    b->hosts = NULL;
    list_vhost_hosts(s);
}

static void attach_states(struct mesh_snapshot *s)
{
    for (size_t i = 0; i < s->n_clusters; i++) {
        struct mesh_cluster *c = &s->clusters[i];
        struct mesh_strbuf key;
        mesh_strbuf_init(&key, 0);
        mesh_strbuf_printf(&key, "%s.%s|", c->name, c->ns);
        for (size_t e = 0; e < c->n_endpoints; e++)
            mesh_strbuf_printf(&key, "%s,", c->endpoints[e].name);
        char *k = mesh_strbuf_take(&key);
        c->state = cluster_state_get(k, c->name, c->n_endpoints);
        if (c->outlier_enabled) {
            /* For the main thread's sweeps, which read it under the same lock: snapshots of a
             * sidecar are compiled on its control thread. */
            pthread_mutex_lock(&states_lock);
            c->state->outlier_cfg = c->outlier;
            pthread_mutex_unlock(&states_lock);
        }
        free(k);
    }
}

enum mesh_err mesh_snapshot_build(struct mesh_resource *const *res, size_t n, uint64_t version,
                                  struct mesh_snapshot **out, char **errmsg)
{
    return mesh_snapshot_build_flags(res, n, version, 0, out, errmsg);
}

enum mesh_err mesh_snapshot_build_flags(struct mesh_resource *const *given, size_t n,
                                        uint64_t version, unsigned flags,
                                        struct mesh_snapshot **out, char **errmsg)
{
    struct builder b = {0};
    size_t n_vs = 0, n_svc = 0;
    for (size_t i = 0; i < n; i++) {
        n_vs += given[i]->kind == MESH_KIND_VIRTUAL_SERVICE;
        n_svc += given[i]->kind == MESH_KIND_SERVICE;
    }
    b.snap = xcalloc(1, sizeof(*b.snap));
    atomic_init(&b.snap->refs, 1);
    b.snap->version = version;
    snprintf(b.snap->version_text, sizeof(b.snap->version_text), "%llu",
             (unsigned long long)version);
    /* The snapshot keeps its own copy of the documents: routes and clusters point into it, so
     * that a dump can show them as written (matches, labels) for as long as it lives. */
    b.snap->res = xcalloc(n ? n : 1, sizeof(*b.snap->res));
    for (size_t i = 0; i < n; i++) {
        if (!(b.snap->res[i] = mesh_resource_clone(given[i]))) {
            mesh_snapshot_unref(b.snap);
            *out = NULL;
            *errmsg = xstrdup("out of memory copying the documents");
            return MESH_E_NOMEM;
        }
        b.snap->n_res++;
    }
    struct mesh_resource *const *res = b.snap->res;
    b.snap->vhosts = xcalloc(n_vs + n_svc + 1, sizeof(*b.snap->vhosts));
    mesh_strbuf_init(&b.err, 0);
    build_clusters(&b, res, n);
    build_policies(&b, res, n);
    build_virtual_services(&b, res, n);
    if (!(flags & MESH_SNAPSHOT_F_NO_SERVICE_HOSTS))
        build_service_hosts(&b);
    index_hosts(&b);
    attach_states(b.snap);
    mesh_trace_config_build(res, n, &b.snap->trace);
    mesh_print_documents((const struct mesh_resource *const *)res, n, MESH_FORMAT_YAML,
                         &b.snap->source);
    *out = NULL;
    if (b.err.len) {
        *errmsg = mesh_strbuf_take(&b.err);
        mesh_snapshot_unref(b.snap);
        return MESH_E_INVALID;
    }
    mesh_strbuf_free(&b.err);
    *out = b.snap;
    return MESH_OK;
}

enum mesh_err mesh_snapshot_secure(struct mesh_snapshot *s, const char *service, const char *ns)
{
    struct mesh_inbound_policy *p = calloc(1, sizeof(*p));
    if (!p)
        return MESH_E_NOMEM;
    enum mesh_err err = mesh_inbound_policy_build(s->res, s->n_res, service, ns, p);
    if (err != MESH_OK) {
        free(p);
        return err;
    }
    s->inbound_policy = p;
    return MESH_OK;
}

enum mesh_err mesh_snapshot_build_inbound(const char *service, const char *ns, const char *address,
                                          struct mesh_snapshot **out, char **errmsg)
{
    /* Built from documents like any other snapshot, so that the request path, the stats and the
     * dumps need nothing special for it. The cluster name cannot clash with a Service's ('|' is
     * not allowed in names). */
    char *name = xasprintf("inbound|%s", service);
    struct mesh_service *svc = mesh_service_new(name, ns);
    struct mesh_virtual_service *vs = mesh_virtual_service_new("inbound", ns);
    enum mesh_err err = MESH_E_NOMEM;
    *out = NULL;
    *errmsg = NULL;
    if (!svc || !vs || !mesh_service_add_endpoint(svc, address) ||
        mesh_string_list_add(&vs->hosts, "*") != MESH_OK) {
        *errmsg = xstrdup("out of memory");
        goto out;
    }
    struct mesh_http_route *r = mesh_virtual_service_add_route(vs, "inbound");
    if (!r || !mesh_http_route_add_destination(r, name, 100) ||
        mesh_string_list_add(&r->retries.retry_on, "connect-failure") != MESH_OK) {
        *errmsg = xstrdup("out of memory");
        goto out;
    }
    /* The app may be restarting: one more try on a refused connection, never once the request
     * may have reached it. */
    r->retries.attempts = 1;
    struct mesh_resource *res[2] = {&svc->res, &vs->res};
    err = mesh_snapshot_build(res, 2, 0, out, errmsg);
out:
    mesh_service_free(svc);
    mesh_virtual_service_free(vs);
    free(name);
    return err;
}

enum mesh_err mesh_snapshot_load_file(const char *path, uint64_t version,
                                      struct mesh_snapshot **out, char **errmsg)
{
    FILE *f = fopen(path, "rb");
    *out = NULL;
    if (!f) {
        *errmsg = xasprintf("cannot open %s: %m", path);
        return MESH_E_IO;
    }
    struct mesh_strbuf text;
    mesh_strbuf_init(&text, 64u << 20);
    char chunk[65536];
    size_t got;
    enum mesh_err err = MESH_OK;
    while (err == MESH_OK && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        err = mesh_strbuf_append(&text, chunk, got);
    fclose(f);
    if (err != MESH_OK) {
        mesh_strbuf_free(&text);
        *errmsg = xasprintf("%s: larger than 64 MiB", path);
        return err;
    }
    struct mesh_resource **res = NULL;
    size_t n = 0;
    struct mesh_diags diags = {0};
    err = mesh_parse_documents(text.data ? text.data : "", text.len, path, &res, &n, &diags);
    mesh_strbuf_free(&text);
    if (err != MESH_OK) {
        struct mesh_strbuf msg;
        mesh_strbuf_init(&msg, 0);
        for (size_t i = 0; i < diags.len; i++) {
            char *line = mesh_diag_format(&diags.items[i]);
            mesh_strbuf_printf(&msg, "%s%s", i ? "\n" : "", line);
            free(line);
        }
        mesh_diags_clear(&diags);
        *errmsg = mesh_strbuf_take(&msg);
        return err;
    }
    err = mesh_snapshot_build(res, n, version, out, errmsg);
    mesh_resource_list_free(res, n);
    return err;
}

void mesh_snapshot_ref(struct mesh_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

static void free_route(struct mesh_route_rt *rt)
{
    for (size_t m = 0; m < rt->n_matchers; m++)
        mesh_route_matcher_free(&rt->matchers[m]);
    for (size_t d = 0; d < rt->n_dests; d++)
        free(rt->dests[d].host);
    free(rt->matchers);
    free(rt->dests);
    free(rt->weights);
    free(rt->name);
}

static void snapshot_free(struct mesh_snapshot *s)
{
    for (size_t i = 0; i < s->n_vhosts; i++) {
        for (size_t r = 0; r < s->vhosts[i].n_routes; r++)
            free_route(&s->vhosts[i].routes[r]);
        free(s->vhosts[i].routes);
        free(s->vhosts[i].name);
        mesh_string_list_clear(&s->vhosts[i].hosts);
        mesh_route_index_free(s->vhosts[i].index);
    }
    for (size_t i = 0; i < s->n_clusters; i++) {
        mesh_cluster_state_unref(s->clusters[i].state);
        free(s->clusters[i].endpoints);
        free(s->clusters[i].name);
        free(s->clusters[i].ns);
        free(s->clusters[i].peer_path);
    }
    if (s->inbound_policy) {
        mesh_inbound_policy_clear(s->inbound_policy);
        free(s->inbound_policy);
    }
    for (size_t i = 0; s->exact && i < s->exact_cap; i++)
        free(s->exact[i].host);
    for (size_t i = 0; i < s->n_wildcards; i++)
        free(s->wildcards[i].host);
    free(s->exact);
    free(s->wildcards);
    free(s->vhosts);
    free(s->clusters);
    free(s->source);
    mesh_resource_list_free(s->res, s->n_res);
    free(s);
}

void mesh_snapshot_unref(struct mesh_snapshot *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(s);
}

const struct mesh_vhost *mesh_snapshot_find_vhost(const struct mesh_snapshot *s,
                                                  struct mesh_slice host)
{
    struct mesh_slice bare = mesh_host_strip_port(host);
    if (bare.len == 0 || bare.len > 253)
        return s->catch_all;
    size_t slot = host_hash(bare.p, bare.len) & (s->exact_cap - 1);
    for (; s->exact[slot].host; slot = (slot + 1) & (s->exact_cap - 1)) {
        const char *h = s->exact[slot].host;
        if (strlen(h) == bare.len && strncasecmp(h, bare.p, bare.len) == 0)
            return s->exact[slot].vhost;
    }
    for (size_t i = 0; i < s->n_wildcards; i++)
        if (mesh_host_matches(s->wildcards[i].host, bare))
            return s->wildcards[i].vhost;
    return s->catch_all;
}
