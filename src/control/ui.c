/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's web dashboard (ui.h): the embedded page, the rounds that read the proxies' /stats,
 * each proxy's readings over the window, and the summary the page polls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <jansson.h>

#include "api.h"
#include "core/xalloc.h"
#include "mesh/mesh_config.h"
#include "ui.h"
#include "ui_assets.h"
#include "ui_fetch.h"
#include "ui_stats.h"
#include "ui_summary.h"

/* The browser runs nothing but the page's own script and talks to nothing but meshd. */
#define PAGE_HEADERS                                                                               \
    "cache-control: no-cache\r\n"                                                                  \
    "x-content-type-options: nosniff\r\n"                                                          \
    "referrer-policy: no-referrer\r\n"                                                             \
    "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "              \
    "frame-ancestors 'none'\r\n"

/* What the dashboard knows of one registered proxy. */
struct ui_proxy {
    char *admin;                                  /* the address its readings came from */
    struct mesh_ui_reading hist[MESH_UI_HISTORY]; /* oldest first, within the window */
    size_t n;
    char *error;           /* why the last round could not read it; NULL after a reading */
    uint64_t read_wall_ms; /* when the newest reading arrived (unix ms) */
    struct mesh_ui_denial_seen *denials;
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
    p->denials[p->n_denials++] = (struct mesh_ui_denial_seen){xstrdup(source), xstrdup(rule), wall};
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

static json_t *summary_json(struct mesh_ui *ui)
{
    struct mesh_api *api = ui->api;
    size_t n = 0;
    const struct mesh_proxy_entry *const *list = mesh_registry_list(api->reg, &n);
    struct mesh_ui_view *views = xcalloc(n ? n : 1, sizeof(*views));
    for (size_t i = 0; i < n; i++) {
        struct mesh_ui_view *vw = &views[i];
        const struct ui_proxy *p = mesh_api_map_get(&ui->proxies, list[i]->id);
        vw->e = list[i];
        if (!p || !list[i]->admin || strcmp(p->admin, list[i]->admin) != 0)
            continue; /* not read yet as what it is now */
        vw->error = p->error;
        vw->denials = p->denials;
        vw->n_denials = p->n_denials;
        if (!p->n)
            continue;
        vw->L = &p->hist[p->n - 1];
        vw->read_wall_ms = p->read_wall_ms;
        if (p->n > 1) {
            vw->B = &p->hist[0];
            vw->span_ms = vw->L->at_ms - vw->B->at_ms;
        }
    }
    json_t *doc = mesh_ui_summary_build(api, views, n, mesh_api_wall_ms());
    free(views);
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
