/* SPDX-License-Identifier: Apache-2.0 */
/* The dashboard's summary document (ui_summary.h). It is built on meshd's loop thread every
 * couple of seconds per open page, so every pass is a sort or a binary search over the
 * readings, never a scan of everything for every row. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "compile.h"
#include "core/xalloc.h"
#include "mesh/mesh.h"
#include "mesh/security_policy.h"
#include "mesh/virtual_service.h"
#include "model/service_host.h"
#include "ui.h"
#include "ui_summary.h"

#define INBOUND_PREFIX "inbound|"

/* A (route label, destination service) of a VirtualService: what the proxies count its
 * requests under. */
struct triple {
    char *label, *service;
    size_t vs; /* index into sum.vs */
};

struct sum {
    struct mesh_api *api;
    const struct mesh_ui_view *views;
    size_t n_views;
    uint64_t wall_ms;
    uint64_t span_ms; /* the longest window any proxy's rates cover; 0: none yet */
    const struct mesh_virtual_service **vs; /* every VirtualService, in store order */
    size_t n_vs;
    bool *served; /* served[i * n_views + v]: view v gets vs[i] */
    struct triple *triples;
    size_t n_triples;
};

/* --- numbers --- */

static json_t *num_or_null(double x)
{
    return isnan(x) || isinf(x) ? json_null() : json_real(x);
}

static json_t *count_or_null(bool known, uint64_t n)
{
    return known ? json_integer((json_int_t)n) : json_null();
}

static json_t *share(uint64_t part, uint64_t whole)
{
    return whole ? json_real((double)part / (double)whole) : json_null();
}

/* Without a rate from any proxy: 0 when nothing was counted (a quiet service), unknown when only
 * proxies without a second reading counted requests. */
static json_t *rate_json(const struct mesh_ui_figures *f)
{
    return f->has_rate || !f->requests ? json_real(f->rps) : json_null();
}

static json_t *figures_json(const struct mesh_ui_figures *f, bool window)
{
    json_t *o = json_object();
    json_object_set_new(o, "requests", json_integer((json_int_t)f->requests));
    json_object_set_new(o, "failures", json_integer((json_int_t)f->failures));
    json_object_set_new(o, "success_rate", num_or_null(mesh_ui_figures_success_rate(f)));
    if (window)
        json_object_set_new(o, "rps", rate_json(f));
    json_object_set_new(o, "p50", num_or_null(mesh_ui_figures_quantile(f, 0.50)));
    json_object_set_new(o, "p95", num_or_null(mesh_ui_figures_quantile(f, 0.95)));
    json_object_set_new(o, "p99", num_or_null(mesh_ui_figures_quantile(f, 0.99)));
    return o;
}

/* --- adding up readings --- */

/* The first entry of r whose service is not below service (r->n_traffic when none). */
static size_t first_of_service(const struct mesh_ui_reading *r, const char *service)
{
    size_t lo = 0, hi = r->n_traffic;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r->traffic[mid].service, service) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void add_one(const struct mesh_ui_view *vw, const struct mesh_ui_traffic *t,
                    struct mesh_ui_figures *total, struct mesh_ui_figures *window)
{
    mesh_ui_figures_add(total, t, NULL, 0);
    if (vw->B)
        mesh_ui_figures_add(window, t, mesh_ui_reading_find(vw->B, t->service, t->route),
                            vw->span_ms);
}

/* Every route of service at vw: since the proxy started (total) and over the window. */
static void add_service(const struct mesh_ui_view *vw, const char *service,
                        struct mesh_ui_figures *total, struct mesh_ui_figures *window)
{
    if (!vw->L)
        return;
    for (size_t i = first_of_service(vw->L, service);
         i < vw->L->n_traffic && strcmp(vw->L->traffic[i].service, service) == 0; i++)
        add_one(vw, &vw->L->traffic[i], total, window);
}

static void add_route(const struct mesh_ui_view *vw, const char *service, const char *label,
                      struct mesh_ui_figures *total, struct mesh_ui_figures *window)
{
    const struct mesh_ui_traffic *t = vw->L ? mesh_ui_reading_find(vw->L, service, label) : NULL;
    if (t)
        add_one(vw, t, total, window);
}

/* --- services --- */

/* A Service name with a namespace it is known in, from a Service resource or a sidecar. */
struct named {
    const char *name, *ns;
    bool sidecar;
};

static int cmp_named(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->ns, y->ns);
}

static bool counted_service(const char *name)
{
    return name && name[0] && strncmp(name, INBOUND_PREFIX, strlen(INBOUND_PREFIX)) != 0;
}

/* One row per Service name (the metrics know names, not namespaces): the Services stored, the
 * services of registered sidecars, and whatever else the proxies sent requests to. */
static json_t *services_json(const struct sum *s)
{
    const struct mesh_api_cache *c = &s->api->cache;
    struct named *known = NULL;
    size_t n_known = 0, cap = 0;
    for (size_t i = 0; i < c->n_res; i++) {
        if (c->res[i]->kind != MESH_KIND_SERVICE)
            continue;
        xgrow((void **)&known, &cap, n_known + 1, sizeof(*known));
        known[n_known++] =
            (struct named){c->res[i]->name, mesh_resource_namespace(c->res[i]), false};
    }
    for (size_t v = 0; v < s->n_views; v++) {
        const struct mesh_proxy_entry *e = s->views[v].e;
        if (e->role != MESH_PROXY_SIDECAR || !counted_service(e->service))
            continue;
        xgrow((void **)&known, &cap, n_known + 1, sizeof(*known));
        known[n_known++] = (struct named){e->service, e->ns ? e->ns : MESH_DEFAULT_NAMESPACE, true};
    }
    for (size_t v = 0; v < s->n_views; v++) {
        const struct mesh_ui_reading *L = s->views[v].L;
        for (size_t i = 0; L && i < L->n_traffic; i++) {
            if (!counted_service(L->traffic[i].service) ||
                (i && strcmp(L->traffic[i].service, L->traffic[i - 1].service) == 0))
                continue;
            xgrow((void **)&known, &cap, n_known + 1, sizeof(*known));
            known[n_known++] = (struct named){L->traffic[i].service, "", false};
        }
    }
    if (n_known > 1)
        qsort(known, n_known, sizeof(*known), cmp_named);

    json_t *out = json_array();
    for (size_t k = 0; k < n_known;) {
        const char *name = known[k].name;
        json_t *namespaces = json_array();
        size_t sidecars = 0;
        for (; k < n_known && strcmp(known[k].name, name) == 0; k++) {
            sidecars += known[k].sidecar;
            /* sorted by namespace within a name: a repeat follows its first */
            size_t len = json_array_size(namespaces);
            if (known[k].ns[0] &&
                (!len ||
                 strcmp(json_string_value(json_array_get(namespaces, len - 1)), known[k].ns) != 0))
                json_array_append_new(namespaces, json_string(known[k].ns));
        }
        struct mesh_ui_figures total = {0}, window = {0}, in_total = {0}, in_window = {0};
        char *inbound = xasprintf(INBOUND_PREFIX "%s", name);
        for (size_t v = 0; v < s->n_views; v++) {
            add_service(&s->views[v], name, &total, &window);
            add_service(&s->views[v], inbound, &in_total, &in_window);
        }
        free(inbound);
        json_t *row = json_pack("{s:s,s:o,s:I}", "name", name, "namespaces", namespaces, "sidecars",
                                (json_int_t)sidecars);
        json_object_set_new(row, "total", figures_json(&total, false));
        json_object_set_new(row, "window", s->span_ms ? figures_json(&window, true) : json_null());
        json_object_set_new(row, "inbound",
                            json_pack("{s:o,s:o}", "total", figures_json(&in_total, false),
                                      "window",
                                      s->span_ms ? figures_json(&in_window, true) : json_null()));
        json_array_append_new(out, row);
    }
    free(known);
    return out;
}

/* --- VirtualServices --- */

/* The route label the proxies count a route's requests under (snapshot.c): its name, else
 * "route-INDEX". */
static char *route_label(const struct mesh_http_route *r, size_t index)
{
    return r->name ? xstrdup(r->name) : xasprintf("route-%zu", index);
}

/* The Service name a destination host counts under: the name part of "name", "name.ns", ...;
 * the host itself when it names no Service (no requests count under it then). */
static char *dest_service(const char *host, const char *ns)
{
    struct mesh_service_ref ref;
    if (!mesh_service_host_split(host, ns, &ref))
        return xstrdup(host);
    return xstrndup(ref.name, ref.name_len);
}

static int cmp_triple(const void *a, const void *b)
{
    const struct triple *x = a, *y = b;
    int c = strcmp(x->label, y->label);
    return c ? c : strcmp(x->service, y->service);
}

/* The VirtualServices, which proxies serve each, and every (label, service) they count under. */
static void index_virtual_services(struct sum *s)
{
    const struct mesh_api_cache *c = &s->api->cache;
    size_t cap = 0;
    s->vs = xcalloc(c->n_res ? c->n_res : 1, sizeof(*s->vs));
    for (size_t i = 0; i < c->n_res; i++)
        if (c->res[i]->kind == MESH_KIND_VIRTUAL_SERVICE)
            s->vs[s->n_vs++] = (const struct mesh_virtual_service *)c->res[i];
    s->served = xcalloc(s->n_vs * s->n_views + 1, sizeof(*s->served));
    for (size_t i = 0; i < s->n_vs; i++) {
        for (size_t v = 0; v < s->n_views; v++)
            s->served[i * s->n_views + v] = mesh_compile_vs_serves(s->vs[i], s->views[v].e);
        const char *ns = mesh_resource_namespace(&s->vs[i]->res);
        for (size_t r = 0; r < s->vs[i]->n_http_routes; r++) {
            const struct mesh_http_route *rt = &s->vs[i]->http_routes[r];
            for (size_t d = 0; d < rt->n_destinations; d++) {
                xgrow((void **)&s->triples, &cap, s->n_triples + 1, sizeof(*s->triples));
                s->triples[s->n_triples++] = (struct triple){
                    route_label(rt, r), dest_service(rt->destinations[d].host, ns), i};
            }
        }
    }
    if (s->n_triples > 1)
        qsort(s->triples, s->n_triples, sizeof(*s->triples), cmp_triple);
}

/* Whether another VirtualService, served by one of the proxies that serve vs[i], counts requests
 * under the same (label, service): the proxies' counters cannot tell the two apart. */
static bool ambiguous(const struct sum *s, size_t i, const char *label, const char *service)
{
    struct triple key = {(char *)label, (char *)service, 0};
    size_t lo = 0, hi = s->n_triples;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_triple(&s->triples[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < s->n_triples && cmp_triple(&s->triples[lo], &key) == 0; lo++) {
        size_t other = s->triples[lo].vs;
        for (size_t v = 0; other != i && v < s->n_views; v++)
            if (s->served[i * s->n_views + v] && s->served[other * s->n_views + v])
                return true;
    }
    return false;
}

static json_t *route_json(const struct sum *s, size_t i, const struct mesh_http_route *r,
                          size_t index)
{
    const char *ns = mesh_resource_namespace(&s->vs[i]->res);
    char *label = route_label(r, index);
    size_t n = r->n_destinations;
    struct mesh_ui_figures *tot = xcalloc(n ? n : 1, sizeof(*tot));
    struct mesh_ui_figures *win = xcalloc(n ? n : 1, sizeof(*win));
    char **svc = xcalloc(n ? n : 1, sizeof(*svc));
    uint64_t sum_tot = 0, sum_win = 0;
    bool amb = false;
    for (size_t d = 0; d < n; d++) {
        svc[d] = dest_service(r->destinations[d].host, ns);
        /* A destination listed twice would be counted twice: its first row has the count. */
        bool repeated = false;
        for (size_t e = 0; e < d && !repeated; e++)
            repeated = strcmp(svc[e], svc[d]) == 0;
        for (size_t v = 0; !repeated && v < s->n_views; v++)
            if (s->served[i * s->n_views + v])
                add_route(&s->views[v], svc[d], label, &tot[d], &win[d]);
        sum_tot += tot[d].requests;
        sum_win += win[d].requests;
        amb = amb || ambiguous(s, i, label, svc[d]);
    }
    json_t *dests = json_array();
    for (size_t d = 0; d < n; d++) {
        const struct mesh_route_destination *dst = &r->destinations[d];
        int weight = dst->weight == MESH_UNSET ? (n == 1 ? 100 : 0) : dst->weight;
        json_t *row =
            json_pack("{s:s,s:s,s:i}", "host", dst->host, "service", svc[d], "weight", weight);
        json_object_set_new(row, "requests_total", json_integer((json_int_t)tot[d].requests));
        json_object_set_new(row, "share_total", share(tot[d].requests, sum_tot));
        json_object_set_new(row, "requests_window",
                            count_or_null(s->span_ms != 0, win[d].requests));
        json_object_set_new(row, "share_window",
                            s->span_ms ? share(win[d].requests, sum_win) : json_null());
        json_object_set_new(row, "rps", s->span_ms ? rate_json(&win[d]) : json_null());
        json_array_append_new(dests, row);
        free(svc[d]);
    }
    json_t *out = json_pack("{s:s,s:b,s:I,s:o,s:o}", "name", label, "ambiguous", amb,
                            "requests_total", (json_int_t)sum_tot, "requests_window",
                            count_or_null(s->span_ms != 0, sum_win), "destinations", dests);
    free(svc);
    free(tot);
    free(win);
    free(label);
    return out;
}

static json_t *strings_json(const struct mesh_string_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->len; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

static json_t *virtual_services_json(const struct sum *s)
{
    json_t *out = json_array();
    for (size_t i = 0; i < s->n_vs; i++) {
        const struct mesh_virtual_service *vs = s->vs[i];
        size_t proxies = 0, sidecars = 0;
        for (size_t v = 0; v < s->n_views; v++) {
            if (!s->served[i * s->n_views + v])
                continue;
            proxies++;
            sidecars += s->views[v].e->role == MESH_PROXY_SIDECAR;
        }
        json_t *routes = json_array();
        for (size_t r = 0; r < vs->n_http_routes; r++)
            json_array_append_new(routes, route_json(s, i, &vs->http_routes[r], r));
        json_array_append_new(out,
                              json_pack("{s:s,s:s,s:o,s:o,s:I,s:I,s:o}", "namespace",
                                        mesh_resource_namespace(&vs->res), "name", vs->res.name,
                                        "hosts", strings_json(&vs->hosts), "gateways",
                                        strings_json(&vs->gateways), "proxies", (json_int_t)proxies,
                                        "sidecars", (json_int_t)sidecars, "routes", routes));
    }
    return out;
}

/* --- proxies --- */

static json_t *proxies_json(const struct sum *s)
{
    json_t *out = json_array();
    for (size_t v = 0; v < s->n_views; v++) {
        const struct mesh_ui_view *vw = &s->views[v];
        json_t *st = mesh_api_proxy_status_json(s->api, vw->e);
        bool synced = json_is_true(json_object_get(st, "synced"));
        json_object_set_new(st, "status", json_string(synced ? "SYNCED" : "STALE"));
        uint64_t hb = vw->e->last_heartbeat_ms;
        json_object_set_new(st, "heartbeat_age_ms",
                            json_integer(s->wall_ms > hb ? (json_int_t)(s->wall_ms - hb) : 0));
        const char *why = vw->error       ? vw->error
                          : !vw->e->admin ? "no admin listener registered"
                          : !vw->L        ? "not read yet"
                                          : NULL;
        json_object_set_new(st, "stats",
                            json_pack("{s:b,s:o,s:o}", "ok", !why, "error",
                                      why ? json_string(why) : json_null(), "read_ms",
                                      count_or_null(vw->L != NULL, vw->read_wall_ms)));
        json_array_append_new(out, st);
    }
    return out;
}

/* --- security --- */

/* One (rule, counts) over every proxy; or a denial row: one (service, namespace, source, rule)
 * summed over the service's sidecars. */
struct authz_row {
    const char *service, *ns, *source, *rule;
    uint64_t allowed, denied, denied_window;
    uint64_t last_ms; /* 0: never seen happen (before meshd's first reading) */
};

static int cmp_rule(const void *a, const void *b)
{
    return strcmp(((const struct authz_row *)a)->rule, ((const struct authz_row *)b)->rule);
}

static int cmp_denial_key(const void *a, const void *b)
{
    const struct authz_row *x = a, *y = b;
    int c = strcmp(x->service, y->service);
    if (!c)
        c = strcmp(x->ns, y->ns);
    if (!c)
        c = strcmp(x->source, y->source);
    return c ? c : strcmp(x->rule, y->rule);
}

/* The latest first, then the most denied. */
static int cmp_denial_rank(const void *a, const void *b)
{
    const struct authz_row *x = a, *y = b;
    if (x->last_ms != y->last_ms)
        return x->last_ms > y->last_ms ? -1 : 1;
    if (x->denied != y->denied)
        return x->denied > y->denied ? -1 : 1;
    return cmp_denial_key(a, b);
}

/* Every authorization count of every proxy, one row each. */
static struct authz_row *authz_rows(const struct sum *s, size_t *n)
{
    struct authz_row *rows = NULL;
    size_t len = 0, cap = 0;
    for (size_t v = 0; v < s->n_views; v++) {
        const struct mesh_ui_view *vw = &s->views[v];
        const char *service = vw->e->role == MESH_PROXY_GATEWAY ? vw->e->gateway : vw->e->service;
        for (size_t i = 0; vw->L && i < vw->L->n_authz; i++) {
            const struct mesh_ui_authz *a = &vw->L->authz[i];
            const struct mesh_ui_authz *b =
                vw->B ? mesh_ui_reading_find_authz(vw->B, a->source, a->rule) : NULL;
            uint64_t last = 0;
            for (size_t k = 0; k < vw->n_denials; k++)
                if (strcmp(vw->denials[k].source, a->source) == 0 &&
                    strcmp(vw->denials[k].rule, a->rule) == 0)
                    last = vw->denials[k].last_wall_ms;
            xgrow((void **)&rows, &cap, len + 1, sizeof(*rows));
            rows[len++] = (struct authz_row){
                service ? service : "",
                vw->e->ns ? vw->e->ns : MESH_DEFAULT_NAMESPACE,
                a->source,
                a->rule,
                a->allowed,
                a->denied,
                /* a proxy read once has no window: it adds nothing to one */
                vw->B ? a->denied - (b && b->denied <= a->denied ? b->denied : 0) : 0,
                last,
            };
        }
    }
    *n = len;
    return rows;
}

static json_t *policies_json(const struct sum *s, struct authz_row *rows, size_t n)
{
    const struct mesh_api_cache *c = &s->api->cache;
    if (n > 1)
        qsort(rows, n, sizeof(*rows), cmp_rule);
    json_t *out = json_array();
    for (size_t i = 0; i < c->n_res; i++) {
        if (c->res[i]->kind != MESH_KIND_SECURITY_POLICY)
            continue;
        const struct mesh_security_policy *sp = (const struct mesh_security_policy *)c->res[i];
        const char *ns = mesh_resource_namespace(&sp->res);
        json_t *rules = json_array();
        for (size_t r = 0; r < sp->n_authorization; r++) {
            const struct mesh_authorization_rule *ar = &sp->authorization[r];
            /* the label the proxies count decisions under (security.c) */
            char *id = xasprintf("%s/%s#%zu", ns, sp->res.name, r);
            struct authz_row key = {.rule = id};
            uint64_t allowed = 0;
            const struct authz_row *hit =
                n ? bsearch(&key, rows, n, sizeof(*rows), cmp_rule) : NULL;
            if (hit) {
                while (hit > rows && strcmp(hit[-1].rule, id) == 0)
                    hit--;
                for (; hit < rows + n && strcmp(hit->rule, id) == 0; hit++)
                    allowed += hit->allowed;
            }
            json_array_append_new(
                rules,
                json_pack("{s:s,s:o,s:o,s:o,s:o,s:I}", "id", id, "from", strings_json(&ar->from),
                          "to", strings_json(&ar->to), "methods", strings_json(&ar->methods),
                          "paths", strings_json(&ar->paths), "allowed_total", (json_int_t)allowed));
            free(id);
        }
        json_t *mtls =
            json_pack("{s:o,s:o}", "mode",
                      sp->mtls.mode ? json_string(mesh_mtls_mode_name(sp->mtls.mode)) : json_null(),
                      "certificate_authority",
                      sp->mtls.certificate_authority ? json_string(sp->mtls.certificate_authority)
                                                     : json_null());
        json_array_append_new(out, json_pack("{s:s,s:s,s:o,s:o,s:o}", "namespace", ns, "name",
                                             sp->res.name, "services", strings_json(&sp->services),
                                             "mtls", mtls, "rules", rules));
    }
    return out;
}

/* The denials, merged per (service, namespace, source, rule), latest first, at most
 * MESH_UI_DENIALS rows; *total says how many there are in all. */
static json_t *denials_json(const struct sum *s, struct authz_row *rows, size_t n, size_t *total)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].denied)
            rows[len++] = rows[i];
    if (len > 1)
        qsort(rows, len, sizeof(*rows), cmp_denial_key);
    size_t merged = 0;
    for (size_t i = 0; i < len; i++) {
        if (merged && cmp_denial_key(&rows[merged - 1], &rows[i]) == 0) {
            struct authz_row *m = &rows[merged - 1];
            m->denied += rows[i].denied;
            m->denied_window += rows[i].denied_window;
            if (rows[i].last_ms > m->last_ms)
                m->last_ms = rows[i].last_ms;
        } else {
            rows[merged++] = rows[i];
        }
    }
    if (merged > 1)
        qsort(rows, merged, sizeof(*rows), cmp_denial_rank);
    json_t *out = json_array();
    for (size_t k = 0; k < merged && k < MESH_UI_DENIALS; k++)
        json_array_append_new(
            out, json_pack("{s:s,s:s,s:s,s:s,s:I,s:o,s:o}", "service", rows[k].service, "namespace",
                           rows[k].ns, "source", rows[k].source, "rule", rows[k].rule,
                           "denied_total", (json_int_t)rows[k].denied, "denied_window",
                           count_or_null(s->span_ms != 0, rows[k].denied_window), "last_denied_ms",
                           count_or_null(rows[k].last_ms != 0, rows[k].last_ms)));
    *total = merged;
    return out;
}

/* --- the document --- */

json_t *mesh_ui_summary_build(struct mesh_api *api, const struct mesh_ui_view *views, size_t n,
                              uint64_t wall_ms)
{
    struct sum s = {.api = api, .views = views, .n_views = n, .wall_ms = wall_ms};
    size_t read = 0, n_rows = 0, n_denials = 0;
    for (size_t v = 0; v < n; v++) {
        read += views[v].L && !views[v].error;
        if (views[v].B && views[v].span_ms > s.span_ms)
            s.span_ms = views[v].span_ms;
    }
    index_virtual_services(&s);
    struct authz_row *rows = authz_rows(&s, &n_rows);

    json_t *doc = json_object();
    json_object_set_new(doc, "version", json_string(MESH_VERSION));
    json_object_set_new(doc, "store_version", json_integer((json_int_t)api->cache.version));
    json_object_set_new(doc, "generated_ms", json_integer((json_int_t)wall_ms));
    json_object_set_new(doc, "refresh_ms", json_integer(MESH_UI_REFRESH_MS));
    json_object_set_new(doc, "window",
                        json_pack("{s:I,s:o}", "target_ms", (json_int_t)MESH_UI_WINDOW_MS,
                                  "span_ms", count_or_null(s.span_ms != 0, s.span_ms)));
    json_object_set_new(doc, "proxies_read", json_integer((json_int_t)read));
    json_object_set_new(doc, "services", services_json(&s));
    json_object_set_new(doc, "virtual_services", virtual_services_json(&s));
    json_object_set_new(doc, "proxies", proxies_json(&s));
    json_object_set_new(doc, "security_policies", policies_json(&s, rows, n_rows));
    json_object_set_new(doc, "denials", denials_json(&s, rows, n_rows, &n_denials));
    json_object_set_new(doc, "denials_total_rows", json_integer((json_int_t)n_denials));

    free(rows);
    for (size_t i = 0; i < s.n_triples; i++) {
        free(s.triples[i].label);
        free(s.triples[i].service);
    }
    free(s.triples);
    free(s.served);
    free(s.vs);
    return doc;
}
