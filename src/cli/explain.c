/* SPDX-License-Identifier: Apache-2.0 */
/* The analysis behind `meshctl explain`: route one request with the proxy's router, then say
 * which documents produced the answer and, when there is none, why. */
#include "explain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "model/service_host.h"

/* --- which documents are behind what the snapshot compiled --- */

/* The host of vs that host matches, by the snapshot's precedence: exact, then the longest
 * wildcard, then "*". */
static const char *matching_pattern(const struct mesh_string_list *hosts, struct mesh_slice host)
{
    const char *best = NULL;
    for (size_t i = 0; i < hosts->len; i++) {
        const char *p = hosts->items[i];
        if (!mesh_host_matches(p, host))
            continue;
        if (p[0] != '*')
            return p;
        if (!best || strlen(p) > strlen(best))
            best = p;
    }
    return best;
}

/* snapshot.c's reading of a destination or policy target as a Service: name, name.ns,
 * name.ns.svc or name.ns.svc.cluster.local, the short form in default_ns. */
static bool names_cluster(const char *target, const char *default_ns, const struct mesh_cluster *c)
{
    struct mesh_service_ref ref;
    return mesh_service_host_split(target, default_ns, &ref) &&
           mesh_service_ref_is(&ref, c->name, c->ns);
}

/* Whether target (in ns) reads as the name of any Service of the snapshot. */
static bool names_any_cluster(const struct cli_explain *x, const char *target, const char *ns)
{
    for (size_t i = 0; i < x->snap->n_clusters; i++)
        if (names_cluster(target, ns, &x->snap->clusters[i]))
            return true;
    return false;
}

/* Whether a policy aimed at target (in ns) lands on c, as snapshot.c's for_each_target decides:
 * a Service name guards that Service; otherwise a VirtualService name guards every destination
 * of that VirtualService. Faults only ever land on Services this way. */
static bool policy_lands_on(const struct cli_explain *x, const char *target, const char *ns,
                            bool via_vs, const struct mesh_cluster *c)
{
    if (names_any_cluster(x, target, ns))
        return names_cluster(target, ns, c);
    if (!via_vs)
        return false;
    for (size_t i = 0; i < x->snap->n_res; i++) {
        const struct mesh_resource *r = x->snap->res[i];
        if (r->kind != MESH_KIND_VIRTUAL_SERVICE || strcmp(r->name, target) != 0 ||
            strcmp(mesh_resource_namespace(r), ns) != 0)
            continue;
        const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)r;
        for (size_t k = 0; k < vs->n_http_routes; k++)
            for (size_t d = 0; d < vs->http_routes[k].n_destinations; d++)
                if (names_cluster(vs->http_routes[k].destinations[d].host, ns, c))
                    return true;
        return false; /* the first VirtualService of that name decides, as in snapshot.c */
    }
    return false;
}

void cli_explain_policies(const struct cli_explain *x, enum mesh_kind kind,
                          const struct mesh_cluster *c, const struct mesh_resource ***out,
                          size_t *n)
{
    const struct mesh_resource **found = xcalloc(x->snap->n_res + 1, sizeof(*found));
    *n = 0;
    for (size_t i = 0; i < x->snap->n_res; i++) {
        const struct mesh_resource *r = x->snap->res[i];
        const char *ns = mesh_resource_namespace(r);
        bool lands = false;
        if (r->kind != kind)
            continue;
        if (kind == MESH_KIND_CIRCUIT_BREAKER)
            lands =
                policy_lands_on(x, ((const struct mesh_circuit_breaker *)r)->service, ns, true, c);
        else if (kind == MESH_KIND_FAULT_INJECTION)
            lands =
                policy_lands_on(x, ((const struct mesh_fault_injection *)r)->service, ns, false, c);
        if (lands)
            found[(*n)++] = r;
    }
    *out = found;
}

/* snapshot.c's route_fault: a FaultInjection naming the route wins over one for the whole
 * VirtualService. */
static const struct mesh_fault_injection *route_fault(const struct cli_explain *x)
{
    const struct mesh_fault_injection *whole = NULL;
    const char *route_name = x->route_model ? x->route_model->name : NULL;
    for (size_t i = 0; i < x->snap->n_res; i++) {
        const struct mesh_fault_injection *fi =
            (const struct mesh_fault_injection *)x->snap->res[i];
        if (x->snap->res[i]->kind != MESH_KIND_FAULT_INJECTION ||
            strcmp(fi->service, x->vs->res.name) != 0 ||
            strcmp(mesh_resource_namespace(x->snap->res[i]),
                   mesh_resource_namespace(&x->vs->res)) != 0)
            continue;
        if (!fi->route)
            whole = whole ? whole : fi;
        else if (route_name && strcmp(fi->route, route_name) == 0)
            return fi;
    }
    return whole;
}

/* --- conditions as text --- */

static const char *header_kind_text(enum mesh_header_match_kind kind)
{
    switch (kind) {
    case MESH_HEADER_EXACT:
        return "exact";
    case MESH_HEADER_PREFIX:
        return "prefix";
    case MESH_HEADER_REGEX:
        return "regex";
    case MESH_HEADER_PRESENT:
        return "present";
    }
    return "?";
}

static void put_path_condition(struct mesh_strbuf *sb, const struct mesh_path_match *p)
{
    static const char *const kinds[] = {
        [MESH_PATH_ANY] = "any",   [MESH_PATH_EXACT] = "exact", [MESH_PATH_PREFIX] = "prefix",
        [MESH_PATH_GLOB] = "glob", [MESH_PATH_REGEX] = "regex",
    };
    mesh_strbuf_printf(sb, "%s %s", kinds[p->kind], p->value ? p->value : "");
}

static void put_header_condition(struct mesh_strbuf *sb, const struct mesh_header_match *h)
{
    if (h->kind == MESH_HEADER_PRESENT)
        mesh_strbuf_printf(sb, "header %s present", h->name);
    else
        mesh_strbuf_printf(sb, "header %s %s \"%s\"", h->name, header_kind_text(h->kind),
                           h->value ? h->value : "");
}

char *cli_explain_match_text(const struct mesh_route_match *m)
{
    struct mesh_strbuf sb;
    const char *sep = "";
    mesh_strbuf_init(&sb, 0);
    if (m->path.kind != MESH_PATH_ANY) {
        mesh_strbuf_puts(&sb, "path ");
        put_path_condition(&sb, &m->path);
        sep = ", ";
    }
    if (m->method) {
        mesh_strbuf_printf(&sb, "%smethod %s", sep, m->method);
        sep = ", ";
    }
    for (size_t i = 0; i < m->n_headers; i++) {
        mesh_strbuf_puts(&sb, sep);
        put_header_condition(&sb, &m->headers[i]);
        sep = ", ";
    }
    if (!*sep)
        mesh_strbuf_puts(&sb, "any request");
    return mesh_strbuf_take(&sb);
}

/* --- why a match entry did not match --- */

static bool matcher_matches(const struct mesh_route_matcher *m, const struct mesh_h1_message *req)
{
    return mesh_route_matcher_match(m, req->method, req->path, req->headers, req->n_headers);
}

/* Appends, for each condition of matcher m (compiled from model) that req fails, a clause saying
 * so. Each condition is tried alone with the router's own matcher: a shallow copy of m with the
 * other conditions taken out. The copy only reads what m owns and is never freed. */
static void put_failed_conditions(struct mesh_strbuf *sb, const struct mesh_route_matcher *m,
                                  const struct mesh_route_match *model,
                                  const struct mesh_h1_message *req)
{
    const char *sep = "";
    if (m->method && !mesh_slice_eq_cstr(req->method, m->method)) {
        mesh_strbuf_printf(sb, "method %.*s is not %s", (int)req->method.len, req->method.p,
                           m->method);
        sep = "; ";
    }
    struct mesh_route_matcher only = *m;
    only.method = NULL;
    only.n_headers = 0;
    if (!matcher_matches(&only, req)) {
        mesh_strbuf_printf(sb, "%spath %.*s does not match ", sep, (int)req->path.len, req->path.p);
        put_path_condition(sb, &model->path);
        sep = "; ";
    }
    for (size_t i = 0; i < m->n_headers; i++) {
        only = *m;
        only.method = NULL;
        only.path_kind = MESH_PATH_ANY;
        only.headers = &m->headers[i];
        only.n_headers = 1;
        if (matcher_matches(&only, req))
            continue;
        const struct mesh_header_match *h = &model->headers[i];
        const struct mesh_h1_header *got = mesh_h1_find_header(req, mesh_slice_cstr(h->name));
        mesh_strbuf_puts(sb, sep);
        if (!got)
            mesh_strbuf_printf(sb, "header %s is absent (wanted: ", h->name);
        else
            mesh_strbuf_printf(sb, "header %s: \"%.*s\" does not match (wanted: ", h->name,
                               (int)got->value.len, got->value.p);
        put_header_condition(sb, h);
        mesh_strbuf_puts(sb, ")");
        sep = "; ";
    }
}

static char *route_why(const struct mesh_route_rt *rt, const struct mesh_http_route *model,
                       const struct mesh_h1_message *req)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t k = 0; k < rt->n_matchers; k++) {
        if (rt->n_matchers > 1)
            mesh_strbuf_printf(&sb, "%smatch %zu: ", k ? "; " : "", k + 1);
        if (model && k < model->n_matches)
            put_failed_conditions(&sb, &rt->matchers[k], &model->matches[k], req);
        else
            mesh_strbuf_puts(&sb, "no match");
    }
    return mesh_strbuf_take(&sb);
}

static bool route_matches(const struct mesh_route_rt *rt, const struct mesh_h1_message *req,
                          int *which)
{
    *which = -1;
    if (rt->n_matchers == 0)
        return true;
    for (size_t k = 0; k < rt->n_matchers; k++)
        if (matcher_matches(&rt->matchers[k], req)) {
            *which = (int)k;
            return true;
        }
    return false;
}

/* --- the whole run --- */

static void find_elsewhere(struct cli_explain *x)
{
    x->elsewhere = xcalloc(x->n_all_res + 1, sizeof(*x->elsewhere));
    for (size_t i = 0; i < x->n_all_res; i++) {
        if (x->all_res[i]->kind != MESH_KIND_VIRTUAL_SERVICE)
            continue;
        const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)x->all_res[i];
        const char *p = matching_pattern(&vs->hosts, x->host);
        if (p) {
            x->elsewhere[x->n_elsewhere].vs = vs;
            x->elsewhere[x->n_elsewhere].pattern = p;
            x->n_elsewhere++;
        }
    }
}

void cli_explain_run(struct cli_explain *x)
{
    const struct mesh_h1_message *req = x->req;
    x->host = mesh_host_strip_port(req->host);
    x->vhost = mesh_snapshot_find_vhost(x->snap, req->host);
    x->vs = NULL;
    x->host_pattern = NULL;
    x->route = NULL;
    x->route_model = NULL;
    x->route_index = 0;
    x->match_index = -1;
    x->fault = NULL;
    x->misses = NULL;
    x->n_misses = 0;
    x->shadowed = NULL;
    x->n_shadowed = 0;
    x->elsewhere = NULL;
    x->n_elsewhere = 0;
    if (!x->vhost) {
        find_elsewhere(x);
        return;
    }
    const struct mesh_vhost *vh = x->vhost;
    x->vs = vh->src;
    /* The hosts that lead to vh include the DNS spellings the snapshot adds for service names. */
    x->host_pattern = matching_pattern(&vh->hosts, x->host);
    x->route = mesh_vhost_match(vh, req);
    x->misses = xcalloc(vh->n_routes + 1, sizeof(*x->misses));
    x->shadowed = xcalloc(vh->n_routes + 1, sizeof(*x->shadowed));
    size_t end = x->route ? (size_t)(x->route - vh->routes) : vh->n_routes;
    for (size_t r = 0; r < end; r++) {
        x->misses[x->n_misses].index = r;
        x->misses[x->n_misses].why = route_why(&vh->routes[r], vh->routes[r].src, req);
        x->n_misses++;
    }
    if (!x->route)
        return;
    x->route_index = end;
    x->route_model = x->route->src;
    /* The router picked it; which of its entries matched is only for the reader. */
    route_matches(x->route, req, &x->match_index);
    for (size_t r = end + 1; r < vh->n_routes; r++) {
        int which;
        if (route_matches(&vh->routes[r], req, &which))
            x->shadowed[x->n_shadowed++] = r;
    }
    if (x->route->has_fault && x->vs)
        x->fault = route_fault(x);
}

void cli_explain_free(struct cli_explain *x)
{
    for (size_t i = 0; i < x->n_misses; i++)
        free(x->misses[i].why);
    free(x->misses);
    free(x->shadowed);
    free(x->elsewhere);
    x->misses = NULL;
    x->shadowed = NULL;
    x->elsewhere = NULL;
    x->n_misses = x->n_shadowed = x->n_elsewhere = 0;
}
