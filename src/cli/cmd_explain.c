/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl explain`: how a proxy would route one request, worked out by the proxy's own router on
 * the config that proxy gets, with the reason when nothing matches. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "control/compile.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "explain.h"
#include "input.h"
#include "proxies.h"

static int run_explain(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_explain = {
    .name = "explain",
    .summary = "Show how a proxy routes one request, and why",
    .usage =
        "Show how a proxy routes one request, and why.\n"
        "\n"
        "Compiles the config a proxy gets (as meshd compiles it) and routes the request with\n"
        "meshproxy's own router: the VirtualService and route that match, the destinations and\n"
        "their weights, the fault, circuit breaker and outlier settings that apply, and the\n"
        "endpoints. When nothing matches it says why: no VirtualService serves the host (and\n"
        "which one would, on another proxy), or the routes tried and the condition each one\n"
        "failed. Exits 1 when no route matches (meshproxy answers such a request with 404).\n"
        "\n"
        "The proxy is a sidecar by default (it gets the VirtualServices without gateways, or\n"
        "listing \"mesh\"); --gateway NAME explains the gateway NAME instead (it gets the\n"
        "VirtualServices whose gateways list it).\n"
        "\n"
        "Usage:\n"
        "  meshctl explain METHOD URL [-H 'NAME: VALUE' ...] [--from SERVICE | --gateway NAME]\n"
        "                 [-n NAMESPACE] [-f FILE ...] [-o text|json]\n"
        "\n"
        "URL is http://HOST[:PORT]/PATH[?QUERY], HOST/PATH, or /PATH with -H 'Host: HOST'. As\n"
        "with curl, a Host header given with -H replaces the URL's host.\n"
        "\n"
        "Flags:\n"
        "  -H, --header 'NAME: VALUE'  a request header; repeatable\n"
        "      --from SERVICE          the sidecar of SERVICE (SERVICE or SERVICE.NAMESPACE)\n"
        "                              sends the request\n"
        "      --gateway NAME          the gateway NAME receives the request\n"
        "  -n, --namespace NS          the namespace of --from and --gateway (default\n"
        "                              \"default\")\n"
        "  -f, --filename PATH         explain with the resources of files instead of the store\n"
        "                              (a file, a directory or -); repeatable\n"
        "  -R, --recursive             also read the subdirectories of a -f directory\n"
        "  -o, --output FORMAT         text (default) or json\n"
        "      --store DIR             embedded store directory (default $MESH_STORE, else\n"
        "                              ./.mesh)\n"
        "  -h, --help                  show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl explain GET http://payment-v1/api/v1/pay --from orders\n"
        "  meshctl explain GET payment.example.com/api/v1/pay --gateway external-gateway\n"
        "  meshctl explain GET http://web.example.com/ -H 'x-canary: yes' -f examples/ -o json\n",
    .run = run_explain,
};

enum {
    OPT_FROM = 300,
    OPT_GATEWAY,
};

/* Header lines the request may carry; the proxy's own parser applies the same bound. */
#define EXPLAIN_MAX_HEADERS MESH_H1_DEFAULT_MAX_HEADERS

struct explain_args {
    const char *method;
    const char *url;
    char **headers; /* "NAME: VALUE", as typed */
    size_t n_headers;
    const char *from;
    const char *gateway;
    const char *ns;
    char **files;
    size_t n_files;
    bool recursive;
    bool json;
};

/* The request as the proxy would have parsed it off the wire. */
struct explain_request {
    char *head; /* the HTTP/1.1 head text, which msg's slices borrow */
    struct mesh_h1_header storage[EXPLAIN_MAX_HEADERS];
    struct mesh_h1_parser parser;
    struct mesh_h1_message msg;
};

/* Where the config came from, and the proxy whose view it is. */
struct explain_config {
    struct mesh_proxy_entry proxy; /* the view: role, service or gateway, namespace */
    char *proxy_text;              /* "the sidecar of orders.default" */
    char *source;                  /* "store ./.mesh", "file examples/" */
    struct cli_input in;           /* -f: owns the documents */
    struct mesh_resource **stored; /* store: owned */
    size_t n_stored;
    struct mesh_resource *const *all; /* every resource (borrowed from in or stored) */
    size_t n_all;
    struct mesh_resource **view; /* what the proxy gets, compiled by meshd's rules; owned */
    size_t n_view;
    char *live_id;      /* with meshd: the registered proxy whose config this is, or NULL */
    char *live_version; /* and the version meshd serves it */
    bool from_meshd;    /* the resources came from meshd */
};

/* --- the request --- */

/* Splits URL into its authority (NULL when the URL is a bare /path) and request target. */
static bool split_url(const char *url, char **authority, char **target, char **why)
{
    const char *rest = url;
    const char *scheme_end = strstr(url, "://");
    *authority = NULL;
    *target = NULL;
    if (scheme_end && (size_t)(scheme_end - url) > strcspn(url, "/?#"))
        scheme_end = NULL; /* "://" in the path or query: no scheme */
    if (scheme_end) {
        size_t n = (size_t)(scheme_end - url);
        if (!((n == 4 && strncasecmp(url, "http", 4) == 0) ||
              (n == 5 && strncasecmp(url, "https", 5) == 0))) {
            *why = xasprintf("URL \"%s\": only http:// and https:// URLs can be explained", url);
            return false;
        }
        rest = scheme_end + 3;
    }
    size_t path_at = strcspn(rest, "/?#");
    if (rest != url || *rest != '/') {
        if (path_at == 0) {
            *why = xasprintf("URL \"%s\" has no host", url);
            return false;
        }
        *authority = xstrndup(rest, path_at);
        rest += path_at;
    }
    size_t len = strcspn(rest, "#"); /* a fragment never leaves the client */
    if (len == 0 || rest[0] == '?')
        *target = xasprintf("/%.*s", (int)len, rest);
    else
        *target = xstrndup(rest, len);
    return true;
}

/* RFC 9110 tchar: what a method may be made of. */
#define TOKEN_CHARS "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

static bool is_host_header(const char *line)
{
    return strncasecmp(line, "host", 4) == 0 && (line[4] == ':' || line[4] == ' ');
}

/* Writes the request head as a client would send it, then parses it with the proxy's parser, so
 * that the router sees exactly the message a worker would. Returns CLI_EXIT_OK or a usage error
 * (printed). */
static int build_request(const struct explain_args *a, struct explain_request *r)
{
    const struct cli_command *cmd = &cli_cmd_explain;
    char *authority = NULL, *target = NULL, *why = NULL;
    bool has_host = false;
    struct mesh_strbuf head;
    int rc = CLI_EXIT_OK;

    mesh_strbuf_init(&head, 0);
    if (!*a->method || a->method[strspn(a->method, TOKEN_CHARS)] != '\0') {
        rc =
            cli_usage_error(cmd, "METHOD \"%s\" is not an HTTP method (GET, POST, ...)", a->method);
        goto out;
    }
    if (!split_url(a->url, &authority, &target, &why)) {
        rc = cli_usage_error(cmd, "%s", why);
        goto out;
    }
    for (size_t i = 0; i < a->n_headers; i++) {
        const char *colon = strchr(a->headers[i], ':');
        if (!colon || colon == a->headers[i]) {
            rc =
                cli_usage_error(cmd, "-H \"%s\": a header is written 'NAME: VALUE'", a->headers[i]);
            goto out;
        }
        has_host = has_host || is_host_header(a->headers[i]);
    }
    if (!authority && !has_host) {
        rc = cli_usage_error(cmd,
                             "URL \"%s\" has no host: write http://HOST%s or add -H 'Host: "
                             "HOST'",
                             a->url, a->url);
        goto out;
    }
    mesh_strbuf_printf(&head, "%s %s HTTP/1.1\r\n", a->method, target);
    if (!has_host)
        mesh_strbuf_printf(&head, "Host: %s\r\n", authority);
    for (size_t i = 0; i < a->n_headers; i++) {
        const char *colon = strchr(a->headers[i], ':');
        const char *value = colon + 1;
        value += strspn(value, " \t");
        mesh_strbuf_printf(&head, "%.*s: %s\r\n", (int)(colon - a->headers[i]), a->headers[i],
                           value);
    }
    mesh_strbuf_puts(&head, "\r\n");
    r->head = mesh_strbuf_take(&head);
    mesh_h1_parser_init(&r->parser, MESH_H1_REQUEST, NULL, r->storage, EXPLAIN_MAX_HEADERS);
    enum mesh_err err = mesh_h1_parse(&r->parser, r->head, strlen(r->head), &r->msg);
    if (err != MESH_OK)
        rc = cli_usage_error(cmd,
                             "the request is not valid HTTP/1.1 (%s): check METHOD, URL "
                             "and -H",
                             err == MESH_E_INVALID ? mesh_h1_error_name(r->parser.error)
                                                   : mesh_strerror(err));
out:
    mesh_strbuf_free(&head);
    free(authority);
    free(target);
    free(why);
    return rc;
}

/* --- the config --- */

static int load_store(struct cli_ctx *ctx, struct explain_config *cfg)
{
    struct mesh *mesh = NULL;
    int rc = CLI_EXIT_OK;
    size_t cap = 0;

    if (cli_open(ctx, &mesh) != MESH_OK)
        return CLI_EXIT_ERROR;
    for (int k = 0; k < MESH_KIND_COUNT; k++) {
        struct mesh_resource **items = NULL;
        size_t n = 0;
        enum mesh_err err = mesh_list(mesh, (enum mesh_kind)k, NULL, &items, &n);
        if (err != MESH_OK) {
            const char *msg = mesh_last_error(mesh);
            rc = cli_error("cannot list %ss: %s", cli_kind_lower((enum mesh_kind)k),
                           msg && *msg ? msg : mesh_strerror(err));
            goto out;
        }
        xgrow((void **)&cfg->stored, &cap, cfg->n_stored + n + 1, sizeof(*cfg->stored));
        if (n) /* an empty kind has no list */
            memcpy(cfg->stored + cfg->n_stored, items, n * sizeof(*items));
        cfg->n_stored += n;
        free(items); /* the resources moved to cfg->stored */
    }
    cfg->all = cfg->stored;
    cfg->n_all = cfg->n_stored;
    cfg->source = xasprintf("store %s", ctx->store_dir         ? ctx->store_dir
                                        : getenv("MESH_STORE") ? getenv("MESH_STORE")
                                                               : "./.mesh");
out:
    mesh_free(mesh);
    return rc;
}

static int load_files(const struct explain_args *a, struct explain_config *cfg)
{
    if (cli_input_load(&cfg->in, a->files, a->n_files, a->recursive) != MESH_OK)
        return CLI_EXIT_ERROR;
    cli_input_check_duplicates(&cfg->in);
    if (!cli_input_valid(&cfg->in)) {
        cli_input_print_problems(&cfg->in, stderr);
        return CLI_EXIT_ERROR;
    }
    cfg->all = cfg->in.all;
    cfg->n_all = cfg->in.n_all;
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_printf(&sb, "file%s", a->n_files > 1 ? "s" : "");
    for (size_t i = 0; i < a->n_files; i++)
        mesh_strbuf_printf(&sb, " %s", a->files[i]);
    cfg->source = mesh_strbuf_take(&sb);
    return CLI_EXIT_OK;
}

/* Fills cfg->proxy from --from / --gateway / -n. "SERVICE.NAMESPACE" in --from sets the
 * namespace too. */
static void set_view(const struct explain_args *a, struct explain_config *cfg)
{
    struct mesh_proxy_entry *p = &cfg->proxy;
    snprintf(p->id, sizeof(p->id), "meshctl-explain");
    p->ns = xstrdup(a->ns ? a->ns : MESH_DEFAULT_NAMESPACE);
    if (a->gateway) {
        p->role = MESH_PROXY_GATEWAY;
        p->gateway = xstrdup(a->gateway);
        cfg->proxy_text = xasprintf("the gateway %s (namespace %s)", p->gateway, p->ns);
        return;
    }
    p->role = MESH_PROXY_SIDECAR;
    if (!a->from) {
        cfg->proxy_text = xstrdup("a sidecar");
        return;
    }
    const char *dot = strchr(a->from, '.');
    if (dot) {
        p->service = xstrndup(a->from, (size_t)(dot - a->from));
        free(p->ns);
        p->ns = xstrdup(dot + 1);
    } else {
        p->service = xstrdup(a->from);
    }
    cfg->proxy_text = xasprintf("the sidecar of %s.%s", p->service, p->ns);
}

/* Reads a JSON array of documents (a compiled config) into cfg->view. */
static int read_view(struct explain_config *cfg, const char *json, const char *what)
{
    struct mesh_diags diags = {0};
    int rc = CLI_EXIT_OK;
    enum mesh_err err =
        mesh_parse_documents(json, strlen(json), what, &cfg->view, &cfg->n_view, &diags);
    if (err != MESH_OK) {
        char *line = diags.len ? mesh_diag_format(&diags.items[0]) : NULL;
        rc = cli_error("cannot read %s: %s", what, line ? line : mesh_strerror(err));
        free(line);
    }
    mesh_diags_clear(&diags);
    return rc;
}

/* What the proxy gets: meshd's compiler picks the documents for its role, exactly as meshd does
 * for a live proxy. reg (may be NULL) holds the registered sidecars, whose addresses are
 * endpoints of their services. */
static int compile_view(struct explain_config *cfg, const struct mesh_registry *reg)
{
    struct mesh_proxy_config out = {0};
    int rc;
    enum mesh_err err = mesh_compile_proxy_config((const struct mesh_resource *const *)cfg->all,
                                                  cfg->n_all, reg, &cfg->proxy, &out);
    if (err != MESH_OK)
        rc = cli_error("cannot compile the proxy's config: %s", mesh_strerror(err));
    else
        rc = read_view(cfg, out.resources_json, "the compiled config");
    mesh_proxy_config_clear(&out);
    return rc;
}

/* The registered proxy whose view is asked for: the gateway named, the sidecar of the service
 * named, or any sidecar (they all get the same VirtualServices). NULL when none is registered. */
static const struct cli_proxy *pick_proxy(const struct explain_config *cfg,
                                          const struct cli_proxy *list, size_t n)
{
    const struct mesh_proxy_entry *want = &cfg->proxy;
    for (size_t i = 0; i < n; i++) {
        const struct cli_proxy *p = &list[i];
        const char *ns = p->ns ? p->ns : MESH_DEFAULT_NAMESPACE;
        if (p->role != want->role || strcmp(ns, want->ns) != 0)
            continue;
        if (want->role == MESH_PROXY_GATEWAY && p->gateway &&
            strcmp(p->gateway, want->gateway) == 0)
            return p;
        if (want->role == MESH_PROXY_SIDECAR &&
            (!want->service || (p->service && strcmp(p->service, want->service) == 0)))
            return p;
    }
    return NULL;
}

/* The config meshd serves proxy p right now (GET /v1/proxies/{id}/config without `after`:
 * answered at once, and not taken as an acknowledgement). */
static int fetch_live_view(struct cli_ctx *ctx, struct explain_config *cfg,
                           const struct cli_proxy *p)
{
    json_t *root = NULL;
    char *why = NULL, *text = NULL;
    char *path = xasprintf("/v1/proxies/%s/config", p->id);
    int rc = CLI_EXIT_OK;
    if (cli_meshd_get_json(ctx, path, &root, &why) != MESH_OK) {
        rc = cli_error("%s", why);
        goto out;
    }
    const json_t *res = json_object_get(root, "resources");
    const char *version = json_string_value(json_object_get(root, "version"));
    if (!json_is_array(res)) {
        rc = cli_error("meshd's answer to GET %s has no \"resources\" list", path);
        goto out;
    }
    text = json_dumps(res, JSON_COMPACT);
    if (!text) {
        rc = cli_error("out of memory");
        goto out;
    }
    rc = read_view(cfg, text, "the config meshd serves");
    cfg->live_id = xstrdup(p->id);
    cfg->live_version = xstrdup(version ? version : "?");
out:
    free(text);
    free(why);
    free(path);
    json_decref(root);
    return rc;
}

/* meshd's registry, rebuilt from its proxy list, so that the compiler run here sees the same
 * endpoints meshd's does. */
static struct mesh_registry *rebuild_registry(const struct cli_proxy *list, size_t n)
{
    struct mesh_registry *reg = mesh_registry_new(UINT64_MAX / 2);
    for (size_t i = 0; i < n; i++) {
        const struct cli_proxy *p = &list[i];
        struct mesh_proxy_registration r = {
            .id = p->id,
            .role = p->role,
            .service = p->service,
            .ns = p->ns,
            .gateway = p->gateway,
            .address = p->address,
            .admin = p->admin,
            .labels = &p->labels,
        };
        bool created;
        char *why = NULL;
        /* meshd accepted it, so it registers here too; one it would refuse adds nothing. */
        if (mesh_registry_register(reg, &r, 1, p->registered_ms, &created, &why) != MESH_OK)
            fprintf(stderr, "warning: proxy %s: %s\n", p->id, why ? why : "not registered");
        free(why);
    }
    return reg;
}

/* With meshd: every resource through meshd's API, then the config meshd serves a registered
 * proxy of the view asked for, or, when none is registered, meshd's compiler run here on the
 * resources and meshd's registrations. */
static int load_meshd(struct cli_ctx *ctx, struct explain_config *cfg)
{
    struct cli_proxy *proxies = NULL;
    size_t n = 0;
    char *why = NULL;
    int rc = load_store(ctx, cfg);
    if (rc != CLI_EXIT_OK)
        return rc;
    char *base = cli_meshd_url(ctx);
    free(cfg->source);
    cfg->source = xasprintf("meshd at %s", base);
    cfg->from_meshd = true;
    free(base);
    if (cli_proxies_fetch(ctx, &proxies, &n, &why) != MESH_OK) {
        rc = cli_error("%s", why);
        goto out;
    }
    const struct cli_proxy *p = pick_proxy(cfg, proxies, n);
    if (p) {
        rc = fetch_live_view(ctx, cfg, p);
    } else {
        struct mesh_registry *reg = rebuild_registry(proxies, n);
        rc = compile_view(cfg, reg);
        mesh_registry_free(reg);
    }
out:
    free(why);
    cli_proxies_free(proxies, n);
    return rc;
}

static void config_free(struct explain_config *cfg)
{
    cli_input_free(&cfg->in);
    mesh_resource_list_free(cfg->stored, cfg->n_stored);
    mesh_resource_list_free(cfg->view, cfg->n_view);
    free(cfg->proxy.service);
    free(cfg->proxy.ns);
    free(cfg->proxy.gateway);
    free(cfg->proxy_text);
    free(cfg->source);
    free(cfg->live_id);
    free(cfg->live_version);
}

/* --- text --- */

static char *fault_text(const struct mesh_fault_rt *f)
{
    struct mesh_strbuf sb;
    char d[32];
    mesh_strbuf_init(&sb, 0);
    if (f->delay_ms && f->delay_pct > 0) {
        cli_format_duration(f->delay_ms, d, sizeof(d));
        mesh_strbuf_printf(&sb, "delay %s for %g%% of requests", d, f->delay_pct);
    }
    if (f->abort_status && f->abort_pct > 0)
        mesh_strbuf_printf(&sb, "%sabort with %u for %g%% of requests", sb.len ? ", " : "",
                           f->abort_status, f->abort_pct);
    if (!sb.len)
        mesh_strbuf_puts(&sb, "none (0% of requests)");
    return mesh_strbuf_take(&sb);
}

static char *names_text(const struct mesh_resource *const *list, size_t n)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < n; i++)
        mesh_strbuf_printf(&sb, "%s%s", i ? ", " : "", list[i]->name);
    return mesh_strbuf_take(&sb);
}

static char *limits_text(const struct mesh_breaker_limits *l)
{
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    const struct {
        const char *name;
        uint32_t v;
    } f[] = {{"max_connections", l->max_connections},
             {"max_pending_requests", l->max_pending_requests},
             {"max_requests", l->max_requests},
             {"max_retries", l->max_retries}};
    for (size_t i = 0; i < 4; i++)
        if (f[i].v)
            mesh_strbuf_printf(&sb, "%s%s %u", sb.len ? ", " : "", f[i].name, f[i].v);
    if (!sb.len)
        mesh_strbuf_puts(&sb, "no limits");
    return mesh_strbuf_take(&sb);
}

static char *outlier_text(const struct mesh_outlier_config *o)
{
    char iv[32], ej[32];
    cli_format_duration(o->interval_ms, iv, sizeof(iv));
    cli_format_duration(o->base_ejection_time_ms, ej, sizeof(ej));
    return xasprintf("eject an endpoint after %u consecutive errors for %s (longer each time), "
                     "at most %u%% of endpoints; checked every %s",
                     o->consecutive_errors, ej, o->max_ejection_percent, iv);
}

static char *retry_on_text(uint32_t bits)
{
    static const char *const names[] = {"5xx", "gateway-error", "reset", "connect-failure"};
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (uint32_t k = 0; k < 4; k++)
        if (bits & (1u << k))
            mesh_strbuf_printf(&sb, "%s%s", sb.len ? "," : "", names[k]);
    return mesh_strbuf_take(&sb);
}

static void print_destination(const struct cli_explain *x, const struct mesh_route_dest *d,
                              int weight)
{
    const struct mesh_cluster *c = d->cluster;
    printf("  %s  weight %d%%", d->host, weight);
    if (!c) {
        printf("  no such Service: meshproxy answers this share with 503\n");
        return;
    }
    printf("  -> Service %s.%s\n", c->name, c->ns);
    printf("      endpoints:          ");
    if (!c->n_endpoints)
        printf("none: meshproxy answers with 503");
    for (size_t e = 0; e < c->n_endpoints; e++)
        printf("%s%s", e ? ", " : "", c->endpoints[e].name);
    putchar('\n');

    const struct mesh_resource **cbs = NULL, **fis = NULL;
    size_t n_cbs = 0, n_fis = 0;
    cli_explain_policies(x, MESH_KIND_CIRCUIT_BREAKER, c, &cbs, &n_cbs);
    cli_explain_policies(x, MESH_KIND_FAULT_INJECTION, c, &fis, &n_fis);
    if (n_cbs) {
        char *names = names_text(cbs, n_cbs), *limits = limits_text(&c->limits);
        printf("      circuit breaker:    %s (%s)\n", limits, names);
        free(names);
        free(limits);
        if (c->outlier_enabled) {
            char *o = outlier_text(&c->outlier);
            printf("      outlier detection:  %s\n", o);
            free(o);
        }
    } else {
        printf("      circuit breaker:    none\n");
    }
    if (c->has_fault) {
        char *names = names_text(fis, n_fis), *f = fault_text(&c->fault);
        printf("      fault:              %s (%s)\n", f, names);
        free(names);
        free(f);
    }
    free(cbs);
    free(fis);
}

static void print_elsewhere(const struct cli_explain *x, const struct explain_config *cfg)
{
    for (size_t i = 0; i < x->n_elsewhere; i++) {
        const struct mesh_virtual_service *vs = x->elsewhere[i].vs;
        printf("  VirtualService %s.%s lists host %s, ", vs->res.name,
               mesh_resource_namespace(&vs->res), x->elsewhere[i].pattern);
        if (vs->gateways.len == 0) {
            printf("but it is for sidecars only (it has no gateways): drop --gateway\n");
            continue;
        }
        printf("but only ");
        for (size_t g = 0; g < vs->gateways.len; g++)
            printf("%s%s", g ? ", " : "", vs->gateways.items[g]);
        printf(" get%s it", vs->gateways.len > 1 ? "" : "s");
        const char *first = vs->gateways.items[0];
        const char *slash = strchr(first, '/');
        if (cfg->proxy.role == MESH_PROXY_SIDECAR && strcmp(first, "mesh") != 0) {
            if (slash)
                printf(": try --gateway %s -n %.*s", slash + 1, (int)(slash - first), first);
            else
                printf(": try --gateway %s -n %s", first, mesh_resource_namespace(&vs->res));
        }
        putchar('\n');
    }
}

static void print_text(const struct cli_explain *x, const struct explain_config *cfg,
                       const struct explain_request *r)
{
    const struct mesh_h1_message *m = &r->msg;
    printf("Request:         %.*s %.*s (Host: %.*s)\n", (int)m->method.len, m->method.p,
           (int)m->target.len, m->target.p, (int)m->host.len, m->host.p);
    printf("Proxy:           %s\n", cfg->proxy_text);
    if (cfg->live_id)
        printf("Config:          %s: the config it serves proxy %s (version %s)\n", cfg->source,
               cfg->live_id, cfg->live_version);
    else if (cfg->from_meshd)
        printf("Config:          %s: no such proxy is registered, so compiled here by meshd's "
               "rules, with the endpoints of every registered sidecar\n",
               cfg->source);
    else
        printf("Config:          %s\n", cfg->source);
    if (!x->vhost) {
        printf("Result:          no route: no VirtualService or Service serves host %.*s on "
               "%s; meshproxy answers 404\n",
               (int)x->host.len, x->host.p, cfg->proxy_text);
        print_elsewhere(x, cfg);
        return;
    }
    const struct mesh_vhost *vh = x->vhost;
    if (x->vs)
        printf("VirtualService:  %s (host %s)\n", vh->name,
               x->host_pattern ? x->host_pattern : "?");
    else
        printf("VirtualService:  none: host %.*s names Service %s, which gets every request\n",
               (int)x->host.len, x->host.p, vh->name);
    if (!x->route) {
        if (vh->n_routes == 1)
            printf("Result:          no route: the only route of %s does not match; meshproxy "
                   "answers 404\n",
                   vh->name);
        else
            printf("Result:          no route: none of the %zu routes of %s matches; meshproxy "
                   "answers 404\n",
                   vh->n_routes, vh->name);
        for (size_t i = 0; i < x->n_misses; i++) {
            const struct mesh_route_rt *rt = &vh->routes[x->misses[i].index];
            printf("  http_routes[%zu] %s: %s\n", x->misses[i].index, rt->name, x->misses[i].why);
        }
        return;
    }
    const struct mesh_route_rt *rt = x->route;
    if (!x->vs)
        printf("Route:           the Service's own: every request");
    else
        printf("Route:           %s (http_routes[%zu])", rt->name, x->route_index);
    if (!x->vs) {
        putchar('\n');
    } else if (x->match_index >= 0 && x->route_model) {
        char *t = cli_explain_match_text(&x->route_model->matches[x->match_index]);
        printf(", matches[%d]: %s\n", x->match_index, t);
        free(t);
    } else {
        printf(", no conditions: every request\n");
    }
    for (size_t i = 0; i < x->n_misses; i++) {
        const struct mesh_route_rt *prev = &vh->routes[x->misses[i].index];
        printf("  passed over http_routes[%zu] %s: %s\n", x->misses[i].index, prev->name,
               x->misses[i].why);
    }
    if (rt->has_fault) {
        char *f = fault_text(&rt->fault);
        printf("Fault:           %s (FaultInjection %s)\n", f, x->fault ? x->fault->res.name : "?");
        free(f);
    } else {
        printf("Fault:           none\n");
    }
    if (rt->timeout_ms) {
        char t[32];
        cli_format_duration(rt->timeout_ms, t, sizeof(t));
        printf("Timeout:         %s\n", t);
    } else {
        printf("Timeout:         meshproxy's default (--route-timeout, 15s unless set)\n");
    }
    if (rt->retry_attempts) {
        char *on = retry_on_text(rt->retry_on);
        printf("Retries:         %u on %s", rt->retry_attempts, on);
        if (rt->per_try_timeout_ms) {
            char t[32];
            cli_format_duration(rt->per_try_timeout_ms, t, sizeof(t));
            printf(", %s per try", t);
        }
        putchar('\n');
        free(on);
    } else {
        printf("Retries:         none\n");
    }
    printf("Destinations:\n");
    for (size_t d = 0; d < rt->n_dests; d++)
        print_destination(x, &rt->dests[d], rt->weights[d]);
    for (size_t i = 0; i < x->n_shadowed; i++)
        printf("Shadowed:        http_routes[%zu] %s also matches, but %s comes first: it "
               "never sees this request\n",
               x->shadowed[i], vh->routes[x->shadowed[i]].name, rt->name);
}

/* --- JSON --- */

static json_t *slice_json(struct mesh_slice s)
{
    return json_stringn(s.p ? s.p : "", s.len);
}

static json_t *fault_json(const struct mesh_fault_rt *f, const struct mesh_resource *const *by,
                          size_t n_by)
{
    json_t *o = json_object();
    json_t *names = json_array();
    for (size_t i = 0; i < n_by; i++)
        json_array_append_new(names, json_string(by[i]->name));
    json_object_set_new(o, "delay_ms", json_integer((json_int_t)f->delay_ms));
    json_object_set_new(o, "delay_percentage", json_real(f->delay_pct));
    json_object_set_new(o, "abort_status", json_integer(f->abort_status));
    json_object_set_new(o, "abort_percentage", json_real(f->abort_pct));
    json_object_set_new(o, "fault_injections", names);
    return o;
}

static json_t *destination_json(const struct cli_explain *x, const struct mesh_route_dest *d,
                                int weight)
{
    const struct mesh_cluster *c = d->cluster;
    json_t *o = json_object();
    json_object_set_new(o, "host", json_string(d->host));
    json_object_set_new(o, "weight", json_integer(weight));
    if (!c) {
        json_object_set_new(o, "service", json_null());
        return o;
    }
    json_object_set_new(o, "service", json_pack("{s:s, s:s}", "name", c->name, "namespace", c->ns));
    json_t *eps = json_array();
    for (size_t e = 0; e < c->n_endpoints; e++)
        json_array_append_new(eps, json_string(c->endpoints[e].name));
    json_object_set_new(o, "endpoints", eps);

    const struct mesh_resource **cbs = NULL, **fis = NULL;
    size_t n_cbs = 0, n_fis = 0;
    cli_explain_policies(x, MESH_KIND_CIRCUIT_BREAKER, c, &cbs, &n_cbs);
    cli_explain_policies(x, MESH_KIND_FAULT_INJECTION, c, &fis, &n_fis);
    if (n_cbs) {
        json_t *names = json_array();
        for (size_t i = 0; i < n_cbs; i++)
            json_array_append_new(names, json_string(cbs[i]->name));
        json_t *cb = json_pack("{s:o, s:I, s:I, s:I, s:I}", "circuit_breakers", names,
                               "max_connections", (json_int_t)c->limits.max_connections,
                               "max_pending_requests", (json_int_t)c->limits.max_pending_requests,
                               "max_requests", (json_int_t)c->limits.max_requests, "max_retries",
                               (json_int_t)c->limits.max_retries);
        if (c->outlier_enabled)
            json_object_set_new(
                cb, "outlier_detection",
                json_pack("{s:I, s:I, s:I, s:I}", "consecutive_errors",
                          (json_int_t)c->outlier.consecutive_errors, "interval_ms",
                          (json_int_t)c->outlier.interval_ms, "base_ejection_time_ms",
                          (json_int_t)c->outlier.base_ejection_time_ms, "max_ejection_percent",
                          (json_int_t)c->outlier.max_ejection_percent));
        json_object_set_new(o, "circuit_breaker", cb);
    } else {
        json_object_set_new(o, "circuit_breaker", json_null());
    }
    json_object_set_new(o, "fault", c->has_fault ? fault_json(&c->fault, fis, n_fis) : json_null());
    free(cbs);
    free(fis);
    return o;
}

static json_t *proxy_json(const struct explain_config *cfg)
{
    const struct mesh_proxy_entry *p = &cfg->proxy;
    json_t *o = json_object();
    json_object_set_new(o, "role",
                        json_string(p->role == MESH_PROXY_GATEWAY ? "gateway" : "sidecar"));
    json_object_set_new(o, "service", p->service ? json_string(p->service) : json_null());
    json_object_set_new(o, "gateway", p->gateway ? json_string(p->gateway) : json_null());
    json_object_set_new(o, "namespace", json_string(p->ns));
    return o;
}

static json_t *route_json(const struct cli_explain *x)
{
    const struct mesh_route_rt *rt = x->route;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(rt->name));
    json_object_set_new(o, "index", json_integer((json_int_t)x->route_index));
    json_object_set_new(o, "match_index",
                        x->match_index >= 0 ? json_integer(x->match_index) : json_null());
    if (x->match_index >= 0 && x->route_model) {
        char *t = cli_explain_match_text(&x->route_model->matches[x->match_index]);
        json_object_set_new(o, "match", json_string(t));
        free(t);
    } else {
        json_object_set_new(o, "match", json_null());
    }
    json_object_set_new(o, "timeout_ms", json_integer((json_int_t)rt->timeout_ms));
    char *on = retry_on_text(rt->retry_on);
    json_object_set_new(o, "retries",
                        json_pack("{s:I, s:I, s:s}", "attempts", (json_int_t)rt->retry_attempts,
                                  "per_try_timeout_ms", (json_int_t)rt->per_try_timeout_ms,
                                  "retry_on", rt->retry_attempts ? on : ""));
    free(on);
    const struct mesh_resource *by = x->fault ? &x->fault->res : NULL;
    json_object_set_new(o, "fault",
                        rt->has_fault ? fault_json(&rt->fault, &by, by ? 1 : 0) : json_null());
    json_t *dests = json_array();
    for (size_t d = 0; d < rt->n_dests; d++)
        json_array_append_new(dests, destination_json(x, &rt->dests[d], rt->weights[d]));
    json_object_set_new(o, "destinations", dests);
    return o;
}

static int print_json(const struct cli_explain *x, const struct explain_config *cfg,
                      const struct explain_request *r)
{
    const struct mesh_h1_message *m = &r->msg;
    json_t *root = json_object();
    json_t *req = json_object();
    json_object_set_new(req, "method", slice_json(m->method));
    json_object_set_new(req, "host", slice_json(m->host));
    json_object_set_new(req, "path", slice_json(m->path));
    json_object_set_new(req, "query", slice_json(m->query));
    json_t *hdrs = json_array();
    for (size_t i = 0; i < m->n_headers; i++)
        json_array_append_new(hdrs, json_pack("{s:o, s:o}", "name", slice_json(m->headers[i].name),
                                              "value", slice_json(m->headers[i].value)));
    json_object_set_new(req, "headers", hdrs);
    json_object_set_new(root, "request", req);
    json_object_set_new(root, "proxy", proxy_json(cfg));
    json_object_set_new(root, "config",
                        json_pack("{s:s, s:s?, s:s?}", "source", cfg->source, "proxy", cfg->live_id,
                                  "version", cfg->live_version));
    json_object_set_new(root, "matched", json_boolean(x->route != NULL));
    json_object_set_new(root, "reason",
                        x->route   ? json_null()
                        : x->vhost ? json_string("no_route")
                                   : json_string("no_virtual_host"));
    const struct mesh_vhost *vh = x->vhost;
    if (vh && x->vs)
        json_object_set_new(root, "virtual_service",
                            json_pack("{s:s, s:s, s:s?}", "name", x->vs->res.name, "namespace",
                                      mesh_resource_namespace(&x->vs->res), "host",
                                      x->host_pattern));
    else
        json_object_set_new(root, "virtual_service", json_null());
    if (vh && !x->vs)
        json_object_set_new(root, "service_host", json_string(vh->name));
    else
        json_object_set_new(root, "service_host", json_null());
    json_object_set_new(root, "route", x->route ? route_json(x) : json_null());
    json_t *misses = json_array();
    for (size_t i = 0; vh && i < x->n_misses; i++)
        json_array_append_new(
            misses, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)x->misses[i].index, "name",
                              vh->routes[x->misses[i].index].name, "why", x->misses[i].why));
    json_object_set_new(root, "routes_passed_over", misses);
    json_t *shadowed = json_array();
    for (size_t i = 0; vh && i < x->n_shadowed; i++)
        json_array_append_new(shadowed, json_pack("{s:I, s:s}", "index", (json_int_t)x->shadowed[i],
                                                  "name", vh->routes[x->shadowed[i]].name));
    json_object_set_new(root, "shadowed_routes", shadowed);
    json_t *elsewhere = json_array();
    for (size_t i = 0; i < x->n_elsewhere; i++) {
        const struct mesh_virtual_service *vs = x->elsewhere[i].vs;
        json_t *gws = json_array();
        for (size_t g = 0; g < vs->gateways.len; g++)
            json_array_append_new(gws, json_string(vs->gateways.items[g]));
        json_array_append_new(elsewhere,
                              json_pack("{s:s, s:s, s:s, s:o}", "name", vs->res.name, "namespace",
                                        mesh_resource_namespace(&vs->res), "host",
                                        x->elsewhere[i].pattern, "gateways", gws));
    }
    json_object_set_new(root, "served_elsewhere", elsewhere);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return cli_error("cannot print JSON: out of memory");
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

/* --- the command --- */

static int parse_args(struct cli_ctx *ctx, int argc, char **argv, struct explain_args *a)
{
    static const struct option opts[] = {
        {"header", required_argument, NULL, 'H'},
        {"from", required_argument, NULL, OPT_FROM},
        {"gateway", required_argument, NULL, OPT_GATEWAY},
        {"namespace", required_argument, NULL, 'n'},
        {"filename", required_argument, NULL, 'f'},
        {"recursive", no_argument, NULL, 'R'},
        {"output", required_argument, NULL, 'o'},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_explain;
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":H:n:f:Ro:h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            a->headers[a->n_headers++] = optarg;
            break;
        case OPT_FROM:
            if (!*optarg)
                return cli_usage_error(cmd, "--from needs a SERVICE");
            a->from = optarg;
            break;
        case OPT_GATEWAY:
            if (!*optarg)
                return cli_usage_error(cmd, "--gateway needs a NAME");
            a->gateway = optarg;
            break;
        case 'n':
            if (!*optarg)
                return cli_usage_error(cmd, "--namespace needs a name");
            a->ns = optarg;
            break;
        case 'f':
            a->files[a->n_files++] = optarg;
            break;
        case 'R':
            a->recursive = true;
            break;
        case 'o':
            if (strcmp(optarg, "json") == 0)
                a->json = true;
            else if (strcmp(optarg, "text") == 0)
                a->json = false;
            else
                return cli_usage_error(cmd, "unknown output format \"%s\" (use text or json)",
                                       optarg);
            break;
        case 'h':
            return -1;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(cmd, "explain needs a METHOD and a URL (got %d argument%s)",
                               argc - optind, argc - optind == 1 ? "" : "s");
    a->method = argv[optind];
    a->url = argv[optind + 1];
    if (a->from && a->gateway)
        return cli_usage_error(cmd, "--from and --gateway cannot be used together: a request "
                                    "is sent by a sidecar or received by a gateway");
    const char *dot = a->from ? strchr(a->from, '.') : NULL;
    if (dot && (dot == a->from || !dot[1]))
        return cli_usage_error(cmd, "--from \"%s\": write SERVICE or SERVICE.NAMESPACE", a->from);
    if (dot && a->ns && strcmp(dot + 1, a->ns) != 0)
        return cli_usage_error(cmd, "--from %s names namespace %s, but -n says %s", a->from,
                               dot + 1, a->ns);
    if (a->recursive && !a->n_files)
        return cli_usage_error(cmd, "-R needs -f");
    return CLI_EXIT_OK;
}

static int run_explain(struct cli_ctx *ctx, int argc, char **argv)
{
    struct explain_args a = {0};
    struct explain_request *req = xcalloc(1, sizeof(*req));
    struct explain_config cfg = {0};
    struct cli_explain x = {0};
    struct mesh_snapshot *snap = NULL;
    char *why = NULL;
    int rc;

    a.headers = xcalloc((size_t)argc + 1, sizeof(*a.headers));
    a.files = xcalloc((size_t)argc + 1, sizeof(*a.files));
    rc = parse_args(ctx, argc, argv, &a);
    if (rc < 0) {
        rc = cli_help(&cli_cmd_explain);
        goto out;
    }
    if (rc != CLI_EXIT_OK)
        goto out;
    rc = build_request(&a, req);
    if (rc != CLI_EXIT_OK)
        goto out;
    set_view(&a, &cfg);
    if (a.n_files) {
        rc = load_files(&a, &cfg);
        if (rc == CLI_EXIT_OK)
            rc = compile_view(&cfg, NULL);
    } else if (cli_server(ctx)) {
        rc = load_meshd(ctx, &cfg);
    } else {
        rc = load_store(ctx, &cfg);
        if (rc == CLI_EXIT_OK)
            rc = compile_view(&cfg, NULL);
    }
    if (rc != CLI_EXIT_OK)
        goto out;
    if (mesh_snapshot_build(cfg.view, cfg.n_view, 0, &snap, &why) != MESH_OK) {
        rc = cli_error("meshproxy would refuse this config:\n%s", why ? why : "");
        goto out;
    }
    x.snap = snap;
    x.all_res = cfg.all;
    x.n_all_res = cfg.n_all;
    x.req = &req->msg;
    cli_explain_run(&x);
    rc = a.json ? print_json(&x, &cfg, req) : (print_text(&x, &cfg, req), CLI_EXIT_OK);
    if (rc == CLI_EXIT_OK && !x.route)
        rc = CLI_EXIT_ERROR;
out:
    cli_explain_free(&x);
    mesh_snapshot_unref(snap);
    config_free(&cfg);
    free(why);
    free(req->head);
    free(req);
    free(a.headers);
    free(a.files);
    return rc;
}
