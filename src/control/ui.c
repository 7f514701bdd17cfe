/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's web dashboard (ui.h): the embedded page, the rounds that read the proxies' /stats,
 * each proxy's readings over the window, and the summary the page polls. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "compile.h"
#include "core/xalloc.h"
#include "mesh/mesh.h"
#include "mesh/mesh_config.h"
#include "mesh/security_policy.h"
#include "mesh/service.h"
#include "mesh/virtual_service.h"
#include "model/service_host.h"
#include "ui.h"
#include "ui_assets.h"
#include "ui_fetch.h"
#include "ui_stats.h"

#define INBOUND_PREFIX "inbound|"

/* The browser runs nothing but the page's own script and talks to nothing but meshd. */
#define PAGE_HEADERS                                                                               \
    "cache-control: no-cache\r\n"                                                                  \
    "x-content-type-options: nosniff\r\n"                                                          \
    "referrer-policy: no-referrer\r\n"                                                             \
    "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "              \
    "frame-ancestors 'none'\r\n"

/* When the last denial of (source, rule) was seen at one proxy. */
struct ui_denial {
    char *source, *rule;
    uint64_t last_wall_ms;
};

/* What the dashboard knows of one registered proxy. */
struct ui_proxy {
    char *admin;                                  /* the address its readings came from */
    struct mesh_ui_reading hist[MESH_UI_HISTORY]; /* oldest first, within the window */
    size_t n;
    char *error;           /* why the last round could not read it; NULL after a reading */
    uint64_t read_wall_ms; /* when the newest reading arrived (unix ms) */
    struct ui_denial *denials;
    size_t n_denials;
};

/* A summary waiting for the round in progress. */
struct ui_waiter {
    struct ui_waiter *prev, *next;
    struct mesh_ui *ui;
    struct mesh_httpd_req *req;
};

struct mesh_ui {
    struct mesh_api *api;
    struct mesh_io io;           /* the eventfd the round's threads write as they end */
    struct mesh_api_map proxies; /* id -> struct ui_proxy */
    struct mesh_ui_fetch *round; /* the round in progress, or NULL */
    struct mesh_ui_fetch_target *targets;
    size_t n_targets;
    uint64_t round_done_ms; /* monotonic end of the last round; 0 before the first */
    struct ui_waiter *waiters;
};

/* --- each proxy's readings --- */

static void proxy_free(void *v)
{
    struct ui_proxy *p = v;
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        mesh_ui_reading_clear(&p->hist[i]);
    for (size_t i = 0; i < p->n_denials; i++) {
        free(p->denials[i].source);
        free(p->denials[i].rule);
    }
    free(p->denials);
    free(p->error);
    free(p->admin);
    free(p);
}

static void history_drop(struct ui_proxy *p, size_t i)
{
    mesh_ui_reading_clear(&p->hist[i]);
    memmove(&p->hist[i], &p->hist[i + 1], (p->n - i - 1) * sizeof(p->hist[0]));
    p->n--;
    memset(&p->hist[p->n], 0, sizeof(p->hist[0]));
}

static void note_denial(struct ui_proxy *p, const char *source, const char *rule, uint64_t wall)
{
    for (size_t i = 0; i < p->n_denials; i++) {
        if (strcmp(p->denials[i].source, source) == 0 && strcmp(p->denials[i].rule, rule) == 0) {
            p->denials[i].last_wall_ms = wall;
            return;
        }
    }
    p->denials = xrealloc(p->denials, (p->n_denials + 1) * sizeof(*p->denials));
    p->denials[p->n_denials++] = (struct ui_denial){xstrdup(source), xstrdup(rule), wall};
}

static const struct ui_denial *find_denial(const struct ui_proxy *p, const char *source,
                                           const char *rule)
{
    for (size_t i = 0; i < p->n_denials; i++)
        if (strcmp(p->denials[i].source, source) == 0 && strcmp(p->denials[i].rule, rule) == 0)
            return &p->denials[i];
    return NULL;
}

/* Adds r (taken over) as p's newest reading, taken at wall-clock time wall. */
static void history_add(struct ui_proxy *p, struct mesh_ui_reading *r, uint64_t wall)
{
    bool restarted = p->n && mesh_ui_reading_restarted(r, &p->hist[p->n - 1]);
    const struct mesh_ui_reading *prev = p->n && !restarted ? &p->hist[p->n - 1] : NULL;
    /* A denial count that grew since the last reading happened since then. Counts in the first
     * reading of a proxy happened at some unknown time before it; after a restart, since it. */
    for (size_t i = 0; (prev || restarted) && i < r->n_authz; i++) {
        const struct mesh_ui_authz *a = &r->authz[i];
        const struct mesh_ui_authz *b =
            prev ? mesh_ui_reading_find_authz(prev, a->source, a->rule) : NULL;
        if (a->denied > (b ? b->denied : 0))
            note_denial(p, a->source, a->rule, wall);
    }
    if (restarted) /* deltas across a restart mean nothing */
        while (p->n)
            history_drop(p, p->n - 1);
    while (p->n && r->at_ms - p->hist[0].at_ms > MESH_UI_WINDOW_MS)
        history_drop(p, 0);
    if (p->n == MESH_UI_HISTORY) {
        /* Full: drop the inner reading whose neighbours are closest, so that the readings stay
         * spread over the window (the oldest, the base of rates, always stays). */
        size_t best = 1;
        for (size_t i = 2; i + 1 < p->n; i++)
            if (p->hist[i + 1].at_ms - p->hist[i - 1].at_ms <
                p->hist[best + 1].at_ms - p->hist[best - 1].at_ms)
                best = i;
        history_drop(p, best);
    }
    p->hist[p->n++] = *r;
    memset(r, 0, sizeof(*r));
    p->read_wall_ms = wall;
    free(p->error);
    p->error = NULL;
}

/* --- rounds --- */

static void send_summary(struct mesh_ui *ui, struct mesh_httpd_req *req);

static void waiter_unlink(struct mesh_ui *ui, struct ui_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        ui->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

static void waiter_gone(struct mesh_httpd_req *req, void *data)
{
    struct ui_waiter *w = data;
    (void)req;
    waiter_unlink(w->ui, w);
    free(w);
}

static void answer_waiters(struct mesh_ui *ui)
{
    while (ui->waiters) {
        struct ui_waiter *w = ui->waiters;
        waiter_unlink(ui, w);
        send_summary(ui, w->req);
        free(w);
    }
}

static void free_targets(struct mesh_ui *ui)
{
    for (size_t i = 0; i < ui->n_targets; i++) {
        free(ui->targets[i].id);
        free(ui->targets[i].admin);
        free(ui->targets[i].errmsg);
        mesh_ui_reading_clear(&ui->targets[i].reading);
    }
    free(ui->targets);
    ui->targets = NULL;
    ui->n_targets = 0;
}

static bool unregistered(const char *key, void *value, void *arg)
{
    struct mesh_ui *ui = arg;
    if (mesh_registry_find(ui->api->reg, key))
        return false;
    proxy_free(value);
    return true;
}

/* The round's results into each proxy's history; proxies no longer registered are forgotten. */
static void collect_round(struct mesh_ui *ui)
{
    uint64_t wall = mesh_api_wall_ms();
    for (size_t i = 0; i < ui->n_targets; i++) {
        struct mesh_ui_fetch_target *t = &ui->targets[i];
        struct ui_proxy *p = mesh_api_map_get(&ui->proxies, t->id);
        if (p && strcmp(p->admin, t->admin) != 0) {
            /* another process under the same id: its counters are not the old one's */
            proxy_free(mesh_api_map_remove(&ui->proxies, t->id));
            p = NULL;
        }
        if (!p) {
            p = xcalloc(1, sizeof(*p));
            p->admin = xstrdup(t->admin);
            mesh_api_map_put(&ui->proxies, t->id, p);
        }
        if (t->err == MESH_OK) {
            history_add(p, &t->reading, wall);
        } else {
            free(p->error);
            p->error = t->errmsg;
            t->errmsg = NULL;
        }
    }
    mesh_api_map_sweep(&ui->proxies, unregistered, ui);
    free_targets(ui);
    ui->round_done_ms = mesh_loop_now_ms(ui->api->loop);
    if (!ui->round_done_ms)
        ui->round_done_ms = 1; /* 0 means "never" */
}

static void on_round_event(struct mesh_loop *loop, struct mesh_io *io, uint32_t events)
{
    struct mesh_ui *ui = io->data;
    uint64_t count;
    (void)loop;
    (void)events;
    while (read(io->fd, &count, sizeof(count)) == (ssize_t)sizeof(count))
        ;
    if (!ui->round || !mesh_ui_fetch_done(ui->round))
        return;
    mesh_ui_fetch_finish(ui->round);
    ui->round = NULL;
    mesh_loop_update_time(ui->api->loop);
    collect_round(ui);
    answer_waiters(ui);
}

/* Starts a round over every registered proxy with an admin listener. false when there is
 * nothing to wait for (no such proxy, or no thread could start: then every proxy says so). */
static bool start_round(struct mesh_ui *ui)
{
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(ui->api->reg, &n);
    ui->targets = xcalloc(n ? n : 1, sizeof(*ui->targets));
    for (size_t i = 0; i < n; i++) {
        if (!list[i]->admin || !list[i]->admin[0])
            continue;
        struct mesh_ui_fetch_target *t = &ui->targets[ui->n_targets++];
        t->id = xstrdup(list[i]->id);
        t->admin = xstrdup(list[i]->admin);
    }
    if (ui->n_targets &&
        mesh_ui_fetch_start(ui->targets, ui->n_targets, ui->io.fd, &ui->round) == MESH_OK)
        return true;
    for (size_t i = 0; i < ui->n_targets; i++) {
        ui->targets[i].err = MESH_E_NOMEM;
        ui->targets[i].errmsg = xstrdup("not read: meshd could not start a thread to read it");
    }
    collect_round(ui);
    return false;
}

struct mesh_ui *mesh_ui_new(struct mesh_api *api)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct mesh_ui *ui = xcalloc(1, sizeof(*ui));
    ui->api = api;
    ui->io = (struct mesh_io){.fd = fd, .cb = on_round_event, .data = ui};
    if (mesh_loop_add_listener(api->loop, &ui->io) != MESH_OK) {
        close(fd);
        free(ui);
        return NULL;
    }
    return ui;
}

void mesh_ui_free(struct mesh_ui *ui)
{
    if (!ui)
        return;
    if (ui->round) {
        mesh_ui_fetch_cancel(ui->round);
        mesh_ui_fetch_finish(ui->round);
        ui->round = NULL;
    }
    free_targets(ui);
    /* The httpd went first and handed every waiting summary to waiter_gone. */
    while (ui->waiters) {
        struct ui_waiter *w = ui->waiters;
        waiter_unlink(ui, w);
        free(w);
    }
    mesh_api_map_clear(&ui->proxies, proxy_free);
    mesh_loop_del(ui->api->loop, &ui->io);
    close(ui->io.fd);
    free(ui);
}

/* --- the MeshConfig switch --- */

/* The MeshConfig that turns the dashboard off: a native one (provider native, or none, which
 * means native) with dashboard.enabled: false. A MeshConfig for istio or linkerd describes that
 * provider's mesh, whose dashboard is its own (Kiali, linkerd-viz); it does not switch meshd's. */
static const struct mesh_mesh_config *turned_off_by(const struct mesh_api *api)
{
    for (size_t i = 0; i < api->cache.n_res; i++) {
        const struct mesh_resource *r = api->cache.res[i];
        if (r->kind != MESH_KIND_MESH_CONFIG)
            continue;
        const struct mesh_mesh_config *mc = (const struct mesh_mesh_config *)r;
        if ((!mc->provider || strcmp(mc->provider, "native") == 0) &&
            mc->dashboard.enabled == MESH_TRI_FALSE)
            return mc;
    }
    return NULL;
}

static char *turned_off_message(const struct mesh_mesh_config *mc)
{
    return xasprintf("the dashboard is turned off: MeshConfig %s/%s sets dashboard.enabled: "
                     "false; set it to true (or remove it) and apply, to turn the dashboard on",
                     mesh_resource_namespace(&mc->res), mc->res.name);
}

/* --- the page --- */

bool mesh_ui_is_page_path(struct mesh_slice path)
{
    return mesh_slice_eq_cstr(path, "/ui") || mesh_slice_starts_with(path, mesh_slice_cstr("/ui/"));
}

static const struct mesh_ui_asset *find_asset(const char *name, size_t len)
{
    for (size_t i = 0; i < mesh_ui_assets_len; i++)
        if (strlen(mesh_ui_assets[i].name) == len && memcmp(mesh_ui_assets[i].name, name, len) == 0)
            return &mesh_ui_assets[i];
    return NULL;
}

static void send_text(struct mesh_httpd_req *req, int status, const char *text)
{
    char *body = xasprintf("%s\n", text);
    mesh_api_send(req, status, "text/plain; charset=utf-8", "cache-control: no-cache\r\n", body);
    free(body);
}

void mesh_ui_page(struct mesh_api *api, struct mesh_httpd_req *req)
{
    const struct mesh_h1_message *m = req->head;
    if (m->method_id != MESH_H1_M_GET && m->method_id != MESH_H1_M_HEAD) {
        mesh_api_method_not_allowed(req, "GET, HEAD");
        return;
    }
    mesh_api_changed(api); /* the MeshConfig as stored now, even one written behind meshd */
    const struct mesh_mesh_config *off = turned_off_by(api);
    if (off) {
        char *msg = turned_off_message(off);
        send_text(req, 404, msg);
        free(msg);
        return;
    }
    /* "/ui", "/ui/" and "/ui/index.html" are the page; "/ui/NAME" one of its files. */
    const char *name = m->path.p + 3;
    size_t len = m->path.len - 3;
    if (len && name[0] == '/') {
        name++;
        len--;
    }
    const struct mesh_ui_asset *a = len ? find_asset(name, len) : find_asset("index.html", 10);
    if (!a) {
        char *msg =
            xasprintf("the dashboard has no file %.*s: it is at /ui", (int)m->path.len, m->path.p);
        send_text(req, 404, msg);
        free(msg);
        return;
    }
    char *headers = xasprintf("content-type: %s\r\n" PAGE_HEADERS, a->content_type);
    mesh_httpd_respond(req, 200, headers, (const char *)a->data, a->len);
    free(headers);
}

/* --- the summary --- */

/* One registered proxy's readings as the summary uses them. */
struct view {
    const struct mesh_proxy_entry *e;
    const struct ui_proxy *p;        /* NULL: never read */
    const struct mesh_ui_reading *L; /* the newest reading, or NULL */
    const struct mesh_ui_reading *B; /* the oldest one in the window, or NULL (no rate yet) */
    uint64_t span_ms;                /* L - B */
};

struct summary {
    struct mesh_ui *ui;
    struct mesh_api *api;
    struct view *views;
    size_t n_views;
    uint64_t wall_ms;
    uint64_t span_ms; /* the longest window any proxy's rates cover */
};

static json_t *num_or_null(double x)
{
    return isnan(x) || isinf(x) ? json_null() : json_real(x);
}

static json_t *figures_json(const struct mesh_ui_figures *f, bool window)
{
    json_t *o = json_object();
    json_object_set_new(o, "requests", json_integer((json_int_t)f->requests));
    json_object_set_new(o, "failures", json_integer((json_int_t)f->failures));
    json_object_set_new(o, "success_rate", num_or_null(mesh_ui_figures_success_rate(f)));
    /* Without a rate from any proxy: 0 when nothing was counted (a quiet service), unknown when
     * only proxies without a second reading counted requests. */
    if (window)
        json_object_set_new(o, "rps",
                            f->has_rate || !f->requests ? json_real(f->rps) : json_null());
    json_object_set_new(o, "p50", num_or_null(mesh_ui_figures_quantile(f, 0.50)));
    json_object_set_new(o, "p95", num_or_null(mesh_ui_figures_quantile(f, 0.95)));
    json_object_set_new(o, "p99", num_or_null(mesh_ui_figures_quantile(f, 0.99)));
    return o;
}

/* Adds every (service, route) of every proxy for which want() holds, since start (total) and
 * over the window (window). */
static void add_traffic(const struct summary *s, const char *service, const char *route,
                        const struct view *only, struct mesh_ui_figures *total,
                        struct mesh_ui_figures *window)
{
    for (size_t v = 0; v < s->n_views; v++) {
        const struct view *vw = &s->views[v];
        if (!vw->L || (only && only != vw))
            continue;
        for (size_t i = 0; i < vw->L->n_traffic; i++) {
            const struct mesh_ui_traffic *t = &vw->L->traffic[i];
            if (strcmp(t->service, service) != 0 || (route && strcmp(t->route, route) != 0))
                continue;
            mesh_ui_figures_add(total, t, NULL, 0);
            if (vw->B)
                mesh_ui_figures_add(window, t, mesh_ui_reading_find(vw->B, t->service, t->route),
                                    vw->span_ms);
        }
    }
}

/* Service names: one entry per name, as the metrics key them (a Service's name, without its
 * namespace). */
struct names {
    char **v;
    size_t len, cap;
};

static void names_add(struct names *n, const char *name)
{
    if (!name || !name[0] || strncmp(name, INBOUND_PREFIX, strlen(INBOUND_PREFIX)) == 0)
        return;
    for (size_t i = 0; i < n->len; i++)
        if (strcmp(n->v[i], name) == 0)
            return;
    xgrow((void **)&n->v, &n->cap, n->len + 1, sizeof(*n->v));
    n->v[n->len++] = xstrdup(name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void json_set_add(json_t *arr, const char *s)
{
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (strcmp(json_string_value(json_array_get(arr, i)), s) == 0)
            return;
    json_array_append_new(arr, json_string(s));
}

static json_t *services_json(const struct summary *s)
{
    const struct mesh_api_cache *c = &s->api->cache;
    struct names names = {0};
    for (size_t i = 0; i < c->n_res; i++)
        if (c->res[i]->kind == MESH_KIND_SERVICE)
            names_add(&names, c->res[i]->name);
    for (size_t v = 0; v < s->n_views; v++) {
        if (s->views[v].e->role == MESH_PROXY_SIDECAR)
            names_add(&names, s->views[v].e->service);
        for (size_t i = 0; s->views[v].L && i < s->views[v].L->n_traffic; i++)
            names_add(&names, s->views[v].L->traffic[i].service);
    }
    if (names.len > 1)
        qsort(names.v, names.len, sizeof(*names.v), cmp_str);

    json_t *out = json_array();
    for (size_t k = 0; k < names.len; k++) {
        const char *name = names.v[k];
        json_t *namespaces = json_array();
        size_t sidecars = 0;
        for (size_t i = 0; i < c->n_res; i++)
            if (c->res[i]->kind == MESH_KIND_SERVICE && strcmp(c->res[i]->name, name) == 0)
                json_set_add(namespaces, mesh_resource_namespace(c->res[i]));
        for (size_t v = 0; v < s->n_views; v++) {
            const struct mesh_proxy_entry *e = s->views[v].e;
            if (e->role == MESH_PROXY_SIDECAR && e->service && strcmp(e->service, name) == 0) {
                sidecars++;
                json_set_add(namespaces, e->ns ? e->ns : MESH_DEFAULT_NAMESPACE);
            }
        }
        struct mesh_ui_figures total = {0}, window = {0}, in_total = {0}, in_window = {0};
        add_traffic(s, name, NULL, NULL, &total, &window);
        char *inbound = xasprintf(INBOUND_PREFIX "%s", name);
        add_traffic(s, inbound, NULL, NULL, &in_total, &in_window);
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
        free(names.v[k]);
    }
    free(names.v);
    return out;
}

/* The route label the proxies count a route's requests under (snapshot.c): its name, else
 * "route-INDEX". */
static char *route_label(const struct mesh_http_route *r, size_t index)
{
    return r->name ? xstrdup(r->name) : xasprintf("route-%zu", index);
}

/* The Service name a destination host counts under: the name part of "name", "name.ns", ...;
 * the host itself when it names no Service (its requests then count under no service). */
static char *dest_service(const char *host, const char *ns)
{
    struct mesh_service_ref ref;
    if (!mesh_service_host_split(host, ns, &ref))
        return xstrdup(host);
    return xstrndup(ref.name, ref.name_len);
}

static bool route_sends_to(const struct mesh_virtual_service *vs, const char *label,
                           const char *service)
{
    const char *ns = mesh_resource_namespace(&vs->res);
    for (size_t r = 0; r < vs->n_http_routes; r++) {
        char *l = route_label(&vs->http_routes[r], r);
        bool same = strcmp(l, label) == 0;
        free(l);
        for (size_t d = 0; same && d < vs->http_routes[r].n_destinations; d++) {
            char *svc = dest_service(vs->http_routes[r].destinations[d].host, ns);
            bool hit = strcmp(svc, service) == 0;
            free(svc);
            if (hit)
                return true;
        }
    }
    return false;
}

/* Whether another VirtualService served by one of the same proxies counts some requests under
 * the same (service, route) label: the proxies' counters cannot tell the two apart. */
static bool ambiguous(const struct summary *s, const struct mesh_virtual_service *vs,
                      const char *label, const char *service)
{
    const struct mesh_api_cache *c = &s->api->cache;
    for (size_t i = 0; i < c->n_res; i++) {
        if (c->res[i]->kind != MESH_KIND_VIRTUAL_SERVICE || c->res[i] == &vs->res)
            continue;
        const struct mesh_virtual_service *o = (const struct mesh_virtual_service *)c->res[i];
        if (!route_sends_to(o, label, service))
            continue;
        for (size_t v = 0; v < s->n_views; v++)
            if (mesh_compile_vs_serves(vs, s->views[v].e) &&
                mesh_compile_vs_serves(o, s->views[v].e))
                return true;
    }
    return false;
}

static json_t *share(uint64_t part, uint64_t whole)
{
    return whole ? json_real((double)part / (double)whole) : json_null();
}

static json_t *route_json(const struct summary *s, const struct mesh_virtual_service *vs,
                          const struct mesh_http_route *r, size_t index)
{
    const char *ns = mesh_resource_namespace(&vs->res);
    char *label = route_label(r, index);
    size_t n = r->n_destinations;
    struct mesh_ui_figures *tot = xcalloc(n ? n : 1, sizeof(*tot));
    struct mesh_ui_figures *win = xcalloc(n ? n : 1, sizeof(*win));
    uint64_t sum_tot = 0, sum_win = 0;
    bool amb = false;
    char **svc = xcalloc(n ? n : 1, sizeof(*svc));
    for (size_t d = 0; d < n; d++) {
        svc[d] = dest_service(r->destinations[d].host, ns);
        /* A destination listed twice would count twice: only its first row counts. */
        bool repeated = false;
        for (size_t e = 0; e < d && !repeated; e++)
            repeated = strcmp(svc[e], svc[d]) == 0;
        for (size_t v = 0; !repeated && v < s->n_views; v++)
            if (mesh_compile_vs_serves(vs, s->views[v].e))
                add_traffic(s, svc[d], label, &s->views[v], &tot[d], &win[d]);
        sum_tot += tot[d].requests;
        sum_win += win[d].requests;
        amb = amb || ambiguous(s, vs, label, svc[d]);
    }
    json_t *dests = json_array();
    for (size_t d = 0; d < n; d++) {
        const struct mesh_route_destination *dst = &r->destinations[d];
        int weight = dst->weight == MESH_UNSET ? (n == 1 ? 100 : 0) : dst->weight;
        json_t *row =
            json_pack("{s:s,s:s,s:i}", "host", dst->host, "service", svc[d], "weight", weight);
        json_object_set_new(row, "requests_total", json_integer((json_int_t)tot[d].requests));
        json_object_set_new(row, "share_total", share(tot[d].requests, sum_tot));
        if (s->span_ms) {
            json_object_set_new(row, "requests_window", json_integer((json_int_t)win[d].requests));
            json_object_set_new(row, "share_window", share(win[d].requests, sum_win));
            json_object_set_new(row, "rps",
                                win[d].has_rate || !win[d].requests ? json_real(win[d].rps)
                                                                    : json_null());
        } else {
            json_object_set_new(row, "requests_window", json_null());
            json_object_set_new(row, "share_window", json_null());
            json_object_set_new(row, "rps", json_null());
        }
        json_array_append_new(dests, row);
        free(svc[d]);
    }
    json_t *out = json_pack("{s:s,s:b,s:I,s:o,s:o}", "name", label, "ambiguous", amb,
                            "requests_total", (json_int_t)sum_tot, "requests_window",
                            s->span_ms ? json_integer((json_int_t)sum_win) : json_null(),
                            "destinations", dests);
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

static json_t *virtual_services_json(const struct summary *s)
{
    const struct mesh_api_cache *c = &s->api->cache;
    json_t *out = json_array();
    for (size_t i = 0; i < c->n_res; i++) {
        if (c->res[i]->kind != MESH_KIND_VIRTUAL_SERVICE)
            continue;
        const struct mesh_virtual_service *vs = (const struct mesh_virtual_service *)c->res[i];
        size_t proxies = 0, sidecars = 0;
        for (size_t v = 0; v < s->n_views; v++) {
            if (!mesh_compile_vs_serves(vs, s->views[v].e))
                continue;
            proxies++;
            sidecars += s->views[v].e->role == MESH_PROXY_SIDECAR;
        }
        json_t *routes = json_array();
        for (size_t r = 0; r < vs->n_http_routes; r++)
            json_array_append_new(routes, route_json(s, vs, &vs->http_routes[r], r));
        json_array_append_new(out,
                              json_pack("{s:s,s:s,s:o,s:o,s:I,s:I,s:o}", "namespace",
                                        mesh_resource_namespace(&vs->res), "name", vs->res.name,
                                        "hosts", strings_json(&vs->hosts), "gateways",
                                        strings_json(&vs->gateways), "proxies", (json_int_t)proxies,
                                        "sidecars", (json_int_t)sidecars, "routes", routes));
    }
    return out;
}

static json_t *proxies_json(const struct summary *s)
{
    json_t *out = json_array();
    for (size_t v = 0; v < s->n_views; v++) {
        const struct view *vw = &s->views[v];
        json_t *st = mesh_api_proxy_status_json(s->api, vw->e);
        json_t *synced = json_object_get(st, "synced");
        json_object_set_new(st, "status", json_string(json_is_true(synced) ? "SYNCED" : "STALE"));
        uint64_t hb = vw->e->last_heartbeat_ms;
        json_object_set_new(st, "heartbeat_age_ms",
                            json_integer(s->wall_ms > hb ? (json_int_t)(s->wall_ms - hb) : 0));
        json_t *stats = json_object();
        json_object_set_new(stats, "ok", json_boolean(vw->L && !(vw->p && vw->p->error)));
        json_object_set_new(stats, "error",
                            vw->p && vw->p->error ? json_string(vw->p->error)
                            : !vw->e->admin       ? json_string("no admin listener registered")
                            : !vw->L              ? json_string("not read yet")
                                                  : json_null());
        json_object_set_new(stats, "read_ms",
                            vw->L ? json_integer((json_int_t)vw->p->read_wall_ms) : json_null());
        json_object_set_new(st, "stats", stats);
        json_array_append_new(out, st);
    }
    return out;
}

/* Allowed and denied counts of an authorization rule ("ns/name#i"), over every proxy. */
static void rule_counts(const struct summary *s, const char *rule, uint64_t *allowed,
                        uint64_t *denied)
{
    *allowed = *denied = 0;
    for (size_t v = 0; v < s->n_views; v++)
        for (size_t i = 0; s->views[v].L && i < s->views[v].L->n_authz; i++) {
            const struct mesh_ui_authz *a = &s->views[v].L->authz[i];
            if (strcmp(a->rule, rule) == 0) {
                *allowed += a->allowed;
                *denied += a->denied;
            }
        }
}

static json_t *policies_json(const struct summary *s)
{
    const struct mesh_api_cache *c = &s->api->cache;
    json_t *out = json_array();
    for (size_t i = 0; i < c->n_res; i++) {
        if (c->res[i]->kind != MESH_KIND_SECURITY_POLICY)
            continue;
        const struct mesh_security_policy *sp = (const struct mesh_security_policy *)c->res[i];
        const char *ns = mesh_resource_namespace(&sp->res);
        json_t *rules = json_array();
        for (size_t r = 0; r < sp->n_authorization; r++) {
            const struct mesh_authorization_rule *ar = &sp->authorization[r];
            char *id = xasprintf("%s/%s#%zu", ns, sp->res.name, r);
            uint64_t allowed, denied;
            rule_counts(s, id, &allowed, &denied);
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

/* A denial row: one (service, namespace, source, rule), summed over the service's sidecars. */
struct denial_row {
    const char *service, *ns, *source, *rule;
    uint64_t total, window;
    uint64_t last_ms; /* 0: not seen happen (before meshd's first reading) */
};

static int cmp_denials(const void *a, const void *b)
{
    const struct denial_row *x = a, *y = b;
    if (x->last_ms != y->last_ms)
        return x->last_ms > y->last_ms ? -1 : 1;
    if (x->total != y->total)
        return x->total > y->total ? -1 : 1;
    int c = strcmp(x->service, y->service);
    if (!c)
        c = strcmp(x->source, y->source);
    return c ? c : strcmp(x->rule, y->rule);
}

static json_t *denials_json(const struct summary *s, size_t *total_rows)
{
    struct denial_row *rows = NULL;
    size_t len = 0, cap = 0;
    for (size_t v = 0; v < s->n_views; v++) {
        const struct view *vw = &s->views[v];
        const char *service = vw->e->role == MESH_PROXY_GATEWAY ? vw->e->gateway : vw->e->service;
        const char *ns = vw->e->ns ? vw->e->ns : MESH_DEFAULT_NAMESPACE;
        for (size_t i = 0; vw->L && i < vw->L->n_authz; i++) {
            const struct mesh_ui_authz *a = &vw->L->authz[i];
            if (!a->denied)
                continue;
            const struct mesh_ui_authz *b =
                vw->B ? mesh_ui_reading_find_authz(vw->B, a->source, a->rule) : NULL;
            const struct ui_denial *seen = find_denial(vw->p, a->source, a->rule);
            struct denial_row *row = NULL;
            for (size_t k = 0; k < len && !row; k++)
                if (strcmp(rows[k].service, service ? service : "") == 0 &&
                    strcmp(rows[k].ns, ns) == 0 && strcmp(rows[k].source, a->source) == 0 &&
                    strcmp(rows[k].rule, a->rule) == 0)
                    row = &rows[k];
            if (!row) {
                xgrow((void **)&rows, &cap, len + 1, sizeof(*rows));
                row = &rows[len++];
                *row = (struct denial_row){service ? service : "", ns, a->source, a->rule, 0, 0, 0};
            }
            row->total += a->denied;
            if (vw->B)
                row->window += a->denied - (b && b->denied <= a->denied ? b->denied : 0);
            if (seen && seen->last_wall_ms > row->last_ms)
                row->last_ms = seen->last_wall_ms;
        }
    }
    if (len > 1)
        qsort(rows, len, sizeof(*rows), cmp_denials);
    json_t *out = json_array();
    for (size_t k = 0; k < len && k < MESH_UI_DENIALS; k++)
        json_array_append_new(
            out,
            json_pack("{s:s,s:s,s:s,s:s,s:I,s:o,s:o}", "service", rows[k].service, "namespace",
                      rows[k].ns, "source", rows[k].source, "rule", rows[k].rule, "denied_total",
                      (json_int_t)rows[k].total, "denied_window",
                      s->span_ms ? json_integer((json_int_t)rows[k].window) : json_null(),
                      "last_denied_ms",
                      rows[k].last_ms ? json_integer((json_int_t)rows[k].last_ms) : json_null()));
    *total_rows = len;
    free(rows);
    return out;
}

static json_t *summary_json(struct mesh_ui *ui)
{
    struct mesh_api *api = ui->api;
    size_t n = 0, read = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(api->reg, &n);
    struct summary s = {.ui = ui, .api = api, .wall_ms = mesh_api_wall_ms()};
    s.views = xcalloc(n ? n : 1, sizeof(*s.views));
    s.n_views = n;
    for (size_t i = 0; i < n; i++) {
        struct view *vw = &s.views[i];
        vw->e = list[i];
        vw->p = mesh_api_map_get(&ui->proxies, list[i]->id);
        if (!vw->p || !vw->p->n || (list[i]->admin && strcmp(vw->p->admin, list[i]->admin) != 0))
            continue;
        vw->L = &vw->p->hist[vw->p->n - 1];
        read += !vw->p->error;
        if (vw->p->n > 1) {
            vw->B = &vw->p->hist[0];
            vw->span_ms = vw->L->at_ms - vw->B->at_ms;
            if (vw->span_ms > s.span_ms)
                s.span_ms = vw->span_ms;
        }
    }
    size_t n_denials = 0;
    json_t *doc = json_object();
    json_object_set_new(doc, "version", json_string(MESH_VERSION));
    json_object_set_new(doc, "store_version", json_integer((json_int_t)api->cache.version));
    json_object_set_new(doc, "generated_ms", json_integer((json_int_t)s.wall_ms));
    json_object_set_new(doc, "refresh_ms", json_integer(MESH_UI_REFRESH_MS));
    json_object_set_new(doc, "window",
                        json_pack("{s:I,s:o}", "target_ms", (json_int_t)MESH_UI_WINDOW_MS,
                                  "span_ms",
                                  s.span_ms ? json_integer((json_int_t)s.span_ms) : json_null()));
    json_object_set_new(doc, "proxies_read", json_integer((json_int_t)read));
    json_object_set_new(doc, "services", services_json(&s));
    json_object_set_new(doc, "virtual_services", virtual_services_json(&s));
    json_object_set_new(doc, "proxies", proxies_json(&s));
    json_object_set_new(doc, "security_policies", policies_json(&s));
    json_object_set_new(doc, "denials", denials_json(&s, &n_denials));
    json_object_set_new(doc, "denials_total_rows", json_integer((json_int_t)n_denials));
    free(s.views);
    return doc;
}

static void send_summary(struct mesh_ui *ui, struct mesh_httpd_req *req)
{
    json_t *doc = summary_json(ui);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!text)
        abort(); /* control plane: out of memory is fatal, as with xalloc */
    mesh_api_send(req, 200, "application/json", "cache-control: no-store\r\n", text);
    free(text);
}

void mesh_ui_summary(struct mesh_api *api, struct mesh_httpd_req *req)
{
    struct mesh_ui *ui = api->ui;
    enum mesh_h1_method m = req->head->method_id;
    if (m != MESH_H1_M_GET && m != MESH_H1_M_HEAD) {
        mesh_api_method_not_allowed(req, "GET, HEAD");
        return;
    }
    mesh_api_changed(api);
    const struct mesh_mesh_config *off = api->cache.loaded ? turned_off_by(api) : NULL;
    if (off) {
        char *msg = turned_off_message(off);
        mesh_api_error(req, 404, NULL, "%s", msg);
        free(msg);
        return;
    }
    if (!api->cache.loaded) {
        mesh_api_error(req, 503, NULL, "the store cannot be read; try again");
        return;
    }
    if (!ui) {
        mesh_api_error(req, 503, NULL, "the dashboard could not start (no eventfd)");
        return;
    }
    uint64_t now = mesh_loop_now_ms(api->loop);
    bool fresh = ui->round_done_ms && now - ui->round_done_ms < MESH_UI_FRESH_MS;
    if (fresh || (!ui->round && !start_round(ui))) {
        send_summary(ui, req);
        return;
    }
    struct ui_waiter *w = xcalloc(1, sizeof(*w));
    w->ui = ui;
    w->req = req;
    w->next = ui->waiters;
    if (ui->waiters)
        ui->waiters->prev = w;
    ui->waiters = w;
    mesh_httpd_defer(req, waiter_gone, w);
}
