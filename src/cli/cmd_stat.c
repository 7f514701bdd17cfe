/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl stat`: per service (or per proxy) request rate, success rate and latency percentiles
 * over a recent window, from every proxy's stats history (admin GET /stats/window). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "model/schema.h"
#include "proxies.h"
#include "proxy/quantile.h"
#include "table.h"

#define WINDOW_DEFAULT_MS 60000ull
#define WINDOW_MIN_MS     1000ull
#define WINDOW_MAX_MS     600000ull
#define READ_TIMEOUT_MS   5000
#define MAX_BUCKETS       32

static int run_stat(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_stat = {
    .name = "stat",
    .summary = "Show request rate, success rate and latency per service or proxy",
    .usage =
        "Show request rate, success rate and latency percentiles per service or per proxy, over\n"
        "the last --window (like linkerd viz stat).\n"
        "\n"
        "Every proxy registered with meshd keeps a second-by-second history of its request\n"
        "counters and latency histogram; stat asks each for the traffic of the window (admin GET\n"
        "/stats/window) and adds them up, so it answers at once. REQUESTS are the requests\n"
        "answered in the window, SUCCESS the share not answered with a 5xx (or not answered at\n"
        "all), RPS the requests per second, and the latencies are estimated from the histogram\n"
        "buckets as Prometheus' histogram_quantile() does. A window longer than a proxy has run\n"
        "covers its whole life.\n"
        "\n"
        "svc (the default): one row per service. A service with sidecars (MESHED) is measured\n"
        "where it receives requests, at its sidecars' inbound listeners, whoever the callers\n"
        "are; a service without sidecars where its callers' proxies (sidecars, gateways) send\n"
        "to it. proxy: one row per proxy and direction, inbound (requests to its service) and\n"
        "outbound (requests its app, or a gateway, sent on).\n"
        "\n"
        "Usage:\n"
        "  meshctl stat [svc|proxy] [NAME] [--window 1m] [-n NS | -A] [-o table|json]\n"
        "  meshctl stat [svc|proxy] --admin ADDR [--window 1m] [-o table|json]\n"
        "\n"
        "NAME is a service name (svc), or a proxy id, service or gateway name (proxy).\n"
        "\n"
        "Flags:\n"
        "  -w, --window D        how far back: 1s to 10m (default 1m)\n"
        "  -n, --namespace NS    services (or proxies) of namespace NS (default \"default\")\n"
        "  -A, --all-namespaces  every namespace (adds a NAMESPACE column)\n"
        "      --admin ADDR      read one proxy's admin listener (HOST:PORT), without meshd\n"
        "  -o, --output FORMAT   table (default) or json\n"
        "      --server URL      meshd (default $MESH_SERVER, else " CLI_DEFAULT_SERVER ")\n"
        "      --token FILE      meshd's token, when reads need one\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl stat\n"
        "  meshctl stat svc payment-v1 --window 5m\n"
        "  meshctl stat proxy -A -o json\n",
    .run = run_stat,
};

enum {
    OPT_ADMIN = 300,
};

/* Traffic added up over proxies. */
struct acc {
    unsigned long long requests, failures;
    double rps;
    double span; /* the longest span among the answers added */
    struct mesh_quantile_bucket b[MAX_BUCKETS];
    size_t nb;
    size_t sources;
};

/* One proxy read: its answer, or why not. */
struct source {
    const struct cli_proxy *px; /* NULL with --admin */
    const char *name;           /* its id, or with --admin its address */
    json_t *answer;
    char *error;
};

struct row {
    char *ns, *name; /* svc: the service; proxy: the proxy id and "inbound"/"outbound" */
    const struct cli_proxy *px;
    const char *direction;
    unsigned meshed; /* svc: its sidecars registered (or, with --admin, seen inbound) */
    /* svc: the traffic at its sidecars and at its callers' proxies; proxy: the row's own
     * traffic is in inbound, whichever its direction. */
    struct acc inbound, outbound;
    json_t *in_proxies, *out_proxies; /* ids, for -o json */
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static double le_value(const char *le)
{
    if (strcmp(le, "+Inf") == 0)
        return INFINITY;
    char *end;
    double v = strtod(le, &end);
    return *end ? NAN : v;
}

static void acc_add(struct acc *a, const json_t *svc, double span)
{
    json_int_t requests = json_integer_value(json_object_get(svc, "requests"));
    json_int_t failures = json_integer_value(json_object_get(svc, "failures"));
    a->requests += requests > 0 ? (unsigned long long)requests : 0;
    a->failures += failures > 0 ? (unsigned long long)failures : 0;
    /* Each proxy's own rate over its own span: spans differ by the few ms between the reads. */
    if (span > 0)
        a->rps += (double)(requests > 0 ? requests : 0) / span;
    if (span > a->span)
        a->span = span;
    a->sources++;
    const char *le;
    json_t *count;
    json_object_foreach((json_t *)json_object_get(svc, "buckets"), le, count)
    {
        double bound = le_value(le);
        if (isnan(bound))
            continue;
        size_t i = 0;
        while (i < a->nb && a->b[i].upper_bound != bound)
            i++;
        if (i == a->nb) {
            if (a->nb == MAX_BUCKETS)
                continue;
            a->b[a->nb++] = (struct mesh_quantile_bucket){bound, 0};
        }
        a->b[i].count += (double)json_integer_value(count);
    }
}

/* A latency percentile in milliseconds; NAN when there were no requests. */
static double percentile_ms(const struct acc *a, double q)
{
    struct mesh_quantile_bucket b[MAX_BUCKETS];
    memcpy(b, a->b, sizeof(b));
    return a->requests ? mesh_quantile(q, b, a->nb) * 1000 : NAN;
}

static struct row *row_get(struct rows *rows, const char *ns, const char *name)
{
    for (size_t i = 0; i < rows->n; i++)
        if (strcmp(rows->v[i].ns, ns) == 0 && strcmp(rows->v[i].name, name) == 0)
            return &rows->v[i];
    xgrow((void **)&rows->v, &rows->cap, rows->n + 1, sizeof(*rows->v));
    struct row *r = &rows->v[rows->n++];
    memset(r, 0, sizeof(*r));
    r->ns = xstrdup(ns);
    r->name = xstrdup(name);
    r->in_proxies = json_array();
    r->out_proxies = json_array();
    return r;
}

static void rows_free(struct rows *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        free(rows->v[i].ns);
        free(rows->v[i].name);
        json_decref(rows->v[i].in_proxies);
        json_decref(rows->v[i].out_proxies);
    }
    free(rows->v);
}

static int by_ns_name(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static void note_proxy(json_t *list, const struct source *src)
{
    const char *id = src->name;
    for (size_t i = 0; i < json_array_size(list); i++)
        if (strcmp(json_string_value(json_array_get(list, i)), id) == 0)
            return;
    json_array_append_new(list, json_string(id));
}

static double span_of(const json_t *answer)
{
    return json_number_value(json_object_get(answer, "span_seconds"));
}

/* --- svc --- */

static void svc_rows(struct source *src, size_t n_src, const struct cli_proxy *list, size_t n_list,
                     struct rows *rows)
{
    for (size_t s = 0; s < n_src; s++) {
        if (!src[s].answer)
            continue;
        double span = span_of(src[s].answer);
        size_t i;
        json_t *svc;
        json_array_foreach(json_object_get(src[s].answer, "services"), i, svc)
        {
            const char *label = json_string_value(json_object_get(svc, "service"));
            const char *ns = json_string_value(json_object_get(svc, "namespace"));
            if (!label || !*label || strcmp(label, "inbound|") == 0)
                continue; /* requests that reached no service (404s) */
            bool inbound = strncmp(label, "inbound|", 8) == 0;
            const struct cli_proxy *px = src[s].px;
            if (inbound && px && px->ns)
                ns = px->ns;
            struct row *r = row_get(rows, ns ? ns : "-", inbound ? label + 8 : label);
            if (inbound) {
                acc_add(&r->inbound, svc, span);
                note_proxy(r->in_proxies, &src[s]);
                if (!px)
                    r->meshed = 1; /* --admin: a sidecar's own inbound traffic */
            } else {
                acc_add(&r->outbound, svc, span);
                note_proxy(r->out_proxies, &src[s]);
            }
        }
    }
    /* A sidecar makes its service meshed, and shows it even before its first request. */
    for (size_t i = 0; i < n_list; i++) {
        if (list[i].role != MESH_PROXY_SIDECAR || !list[i].service)
            continue;
        struct row *r =
            row_get(rows, list[i].ns ? list[i].ns : MESH_DEFAULT_NAMESPACE, list[i].service);
        r->meshed++;
    }
}

/* --- proxy --- */

static bool proxy_named(const struct cli_proxy *p, const char *name)
{
    if (!name)
        return true;
    const char *what = p->role == MESH_PROXY_GATEWAY ? p->gateway : p->service;
    return strcmp(p->id, name) == 0 || (what && strcmp(what, name) == 0) ||
           strncmp(p->id, name, strlen(name)) == 0;
}

static void proxy_rows(struct source *src, size_t n_src, struct rows *rows)
{
    for (size_t s = 0; s < n_src; s++) {
        const struct cli_proxy *px = src[s].px;
        const char *id = src[s].name;
        const char *ns = px && px->ns ? px->ns : MESH_DEFAULT_NAMESPACE;
        bool sidecar = px && px->role == MESH_PROXY_SIDECAR;
        struct row *in = NULL;
        if (sidecar) {
            in = row_get(rows, ns, id);
            in->px = px;
            in->direction = "inbound";
        }
        /* Keyed apart from the inbound row: the name is the id plus a space, never an id. */
        char *key = xasprintf("%s ", id);
        struct row *out = row_get(rows, ns, key);
        free(key);
        out->px = px;
        out->direction = "outbound";
        if (!src[s].answer)
            continue;
        double span = span_of(src[s].answer);
        size_t i;
        json_t *svc;
        json_array_foreach(json_object_get(src[s].answer, "services"), i, svc)
        {
            const char *label = json_string_value(json_object_get(svc, "service"));
            bool inbound = label && strncmp(label, "inbound|", 8) == 0;
            if (inbound && !in) { /* --admin: a sidecar, it turns out */
                in = row_get(rows, ns, id);
                in->direction = "inbound";
            }
            acc_add(inbound ? &in->inbound : &out->inbound, svc, span);
        }
    }
}

/* --- output --- */

static void fmt_ms(double ms, char *buf, size_t size)
{
    if (isnan(ms))
        snprintf(buf, size, "-");
    else if (ms < 10)
        snprintf(buf, size, "%.2fms", ms);
    else if (ms < 1000)
        snprintf(buf, size, "%.1fms", ms);
    else
        snprintf(buf, size, "%.2fs", ms / 1000);
}

static void add_figures(struct cli_table *t, const struct acc *a)
{
    char p50[32], p95[32], p99[32];
    cli_table_addf(t, "%llu", a->requests);
    if (a->requests)
        cli_table_addf(t, "%.2f%%",
                       100.0 * (double)(a->requests - a->failures) / (double)a->requests);
    else
        cli_table_add(t, "-");
    cli_table_addf(t, "%.2f", a->rps);
    fmt_ms(percentile_ms(a, 0.50), p50, sizeof(p50));
    fmt_ms(percentile_ms(a, 0.95), p95, sizeof(p95));
    fmt_ms(percentile_ms(a, 0.99), p99, sizeof(p99));
    cli_table_add(t, p50);
    cli_table_add(t, p95);
    cli_table_add(t, p99);
}

static json_t *number_or_null(double v)
{
    return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static void json_figures(json_t *o, const struct acc *a)
{
    json_object_set_new(o, "requests", json_integer((json_int_t)a->requests));
    json_object_set_new(o, "successes", json_integer((json_int_t)(a->requests - a->failures)));
    json_object_set_new(o, "failures", json_integer((json_int_t)a->failures));
    json_object_set_new(o, "success_rate",
                        a->requests
                            ? json_real((double)(a->requests - a->failures) / (double)a->requests)
                            : json_null());
    json_object_set_new(o, "rps", json_real(a->rps));
    json_object_set_new(o, "span_seconds", json_real(a->span));
    json_t *lat = json_object();
    json_object_set_new(lat, "p50", number_or_null(percentile_ms(a, 0.50)));
    json_object_set_new(lat, "p95", number_or_null(percentile_ms(a, 0.95)));
    json_object_set_new(lat, "p99", number_or_null(percentile_ms(a, 0.99)));
    json_object_set_new(o, "latency_ms", lat);
}

static json_t *unreachable_json(const struct source *src, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        if (!src[i].answer)
            json_array_append_new(list, json_pack("{s:s,s:s}", "proxy", src[i].name, "error",
                                                  src[i].error ? src[i].error : ""));
    return list;
}

static int print_json(json_t *items, unsigned long long window_ms, const struct source *src,
                      size_t n_src)
{
    json_t *root = json_object();
    json_object_set_new(root, "window_seconds", json_real((double)window_ms / 1000));
    json_object_set_new(root, "items", items);
    json_object_set_new(root, "unreachable", unreachable_json(src, n_src));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (!text)
        return cli_error("out of memory");
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

/* --- reading the proxies --- */

static void read_proxy(struct source *src, const char *admin, unsigned long long window_ms)
{
    if (strncmp(admin, "http://", 7) == 0)
        admin += 7;
    char *url = xasprintf("http://%s/stats/window?window=%llums", admin, window_ms);
    const char *peer = src->px ? "the proxy's admin listener" : "the admin listener";
    char *why = NULL;
    if (cli_http_get_json(url, peer, NULL, READ_TIMEOUT_MS, &src->answer, &why) != MESH_OK) {
        src->error = src->px ? xasprintf("proxy %s: %s", src->px->id, why) : xstrdup(why);
        free(why);
        src->answer = NULL;
    } else if (!json_is_array(json_object_get(src->answer, "services"))) {
        src->error = xasprintf("%s answered GET %s without a \"services\" list", peer, url);
        json_decref(src->answer);
        src->answer = NULL;
    }
    free(url);
}

static int run_stat(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"window", required_argument, NULL, 'w'},   {"namespace", required_argument, NULL, 'n'},
        {"all-namespaces", no_argument, NULL, 'A'}, {"admin", required_argument, NULL, OPT_ADMIN},
        {"output", required_argument, NULL, 'o'},   CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_stat;
    unsigned long long window_ms = WINDOW_DEFAULT_MS;
    const char *ns = MESH_DEFAULT_NAMESPACE, *admin = NULL;
    bool all_ns = false, json = false, ns_given = false;
    char why[200];
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":w:n:Ao:h", opts, NULL)) != -1) {
        switch (c) {
        case 'w':
            if (!mesh_duration_parse(optarg, &window_ms, why, sizeof(why)))
                return cli_usage_error(cmd, "--window: %s", why);
            if (window_ms < WINDOW_MIN_MS || window_ms > WINDOW_MAX_MS)
                return cli_usage_error(cmd,
                                       "--window \"%s\": from 1s to 10m (proxies keep ten "
                                       "minutes of history)",
                                       optarg);
            break;
        case 'n':
            if (!*optarg)
                return cli_usage_error(cmd, "--namespace needs a name");
            ns = optarg;
            ns_given = true;
            break;
        case 'A':
            all_ns = true;
            break;
        case OPT_ADMIN:
            if (!*optarg)
                return cli_usage_error(cmd, "--admin needs an address (HOST:PORT)");
            admin = optarg;
            break;
        case 'o':
            rc = cli_output_json(cmd, optarg, &json);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    bool by_proxy = false;
    int pos = optind;
    if (pos < argc) {
        const char *what = argv[pos];
        if (strcmp(what, "proxy") == 0 || strcmp(what, "proxies") == 0 || strcmp(what, "px") == 0) {
            by_proxy = true;
            pos++;
        } else if (strcmp(what, "svc") == 0 || strcmp(what, "service") == 0 ||
                   strcmp(what, "services") == 0) {
            pos++;
        }
    }
    if (argc - pos > 1)
        return cli_usage_error(cmd, "stat takes at most one NAME after svc or proxy");
    const char *name = pos < argc ? argv[pos] : NULL;
    if (all_ns && ns_given)
        return cli_usage_error(cmd, "-n and -A do not go together");
    if (!admin && !cli_server(ctx) && ctx->store_dir)
        return cli_usage_error(cmd, "stat needs meshd (--server URL) to find the proxies, or "
                                    "--admin ADDR");
    if (admin) {
        all_ns = true; /* one proxy: whatever it saw */
        if (by_proxy && name)
            return cli_usage_error(cmd, "with --admin, give no proxy NAME");
    }

    struct cli_proxy *list = NULL;
    size_t n_list = 0, n_src = 0;
    struct source *src = NULL;
    struct rows rows = {0};
    rc = CLI_EXIT_OK;
    if (admin) {
        src = xcalloc(1, sizeof(*src));
        src[0].name = admin;
        n_src = 1;
        read_proxy(&src[0], admin, window_ms);
        if (!src[0].answer) {
            rc = cli_error("%s", src[0].error);
            goto out;
        }
    } else {
        rc = cli_proxies_fetch_or_explain(ctx, "stat", "read", &list, &n_list);
        if (rc != CLI_EXIT_OK)
            goto out;
        if (n_list == 0) {
            char *url = cli_meshd_url(ctx);
            fprintf(stderr, "No proxies are registered with meshd at %s.\n", url);
            free(url);
            goto out;
        }
        src = xcalloc(n_list, sizeof(*src));
        for (size_t i = 0; i < n_list; i++) {
            const struct cli_proxy *px = &list[i];
            if (by_proxy && (!proxy_named(px, name) ||
                             (!all_ns && strcmp(px->ns ? px->ns : MESH_DEFAULT_NAMESPACE, ns))))
                continue;
            src[n_src].px = px;
            src[n_src].name = px->id;
            if (px->admin && *px->admin)
                read_proxy(&src[n_src], px->admin, window_ms);
            else
                src[n_src].error = xasprintf("proxy %s registered no admin address", px->id);
            n_src++;
        }
        if (by_proxy && n_src == 0) {
            rc = cli_error("no proxy %s\"%s\"%s%s is registered with meshd (meshctl proxy-status "
                           "lists them)",
                           "named ", name ? name : "", all_ns ? "" : " in namespace ",
                           all_ns ? "" : ns);
            goto out;
        }
    }
    for (size_t i = 0; i < n_src; i++)
        if (!src[i].answer)
            fprintf(stderr, "warning: %s: its traffic is left out\n", src[i].error);

    if (by_proxy)
        proxy_rows(src, n_src, &rows);
    else
        svc_rows(src, n_src, list, n_list, &rows);
    qsort(rows.v, rows.n, sizeof(*rows.v), by_ns_name);

    json_t *items = json_array();
    struct cli_table t;
    size_t shown = 0;
    if (by_proxy) {
        const char *head[] = {"NAMESPACE",   "PROXY",       "ROLE",       "SERVICE/GATEWAY",
                              "DIRECTION",   "REQUESTS",    "SUCCESS",    "RPS",
                              "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"};
        size_t skip = all_ns ? 0 : 1;
        cli_table_init(&t, 11 - skip);
        for (size_t i = skip; i < 11; i++)
            cli_table_add(&t, head[i]);
        for (size_t i = 0; i < rows.n; i++) {
            const struct row *r = &rows.v[i];
            const struct cli_proxy *px = r->px;
            const char *role = !px ? "-" : px->role == MESH_PROXY_GATEWAY ? "gateway" : "sidecar";
            const char *what = !px                              ? "-"
                               : px->role == MESH_PROXY_GATEWAY ? px->gateway
                                                                : px->service;
            const char *id = px ? px->id : admin;
            if (all_ns)
                cli_table_add(&t, r->ns);
            cli_table_add(&t, id);
            cli_table_add(&t, role);
            cli_table_add(&t, what ? what : "-");
            cli_table_add(&t, r->direction);
            add_figures(&t, &r->inbound);
            json_t *o = json_pack(
                "{s:s,s:s,s:s,s:s?,s:s?,s:s}", "namespace", r->ns, "proxy", id, "role", role,
                "service", px && px->role == MESH_PROXY_SIDECAR ? px->service : NULL, "gateway",
                px && px->role == MESH_PROXY_GATEWAY ? px->gateway : NULL, "direction",
                r->direction);
            json_figures(o, &r->inbound);
            json_array_append_new(items, o);
            shown++;
        }
    } else {
        const char *head[] = {"NAMESPACE", "SERVICE",     "MESHED",      "REQUESTS",   "SUCCESS",
                              "RPS",       "LATENCY_P50", "LATENCY_P95", "LATENCY_P99"};
        size_t skip = all_ns ? 0 : 1;
        cli_table_init(&t, 9 - skip);
        for (size_t i = skip; i < 9; i++)
            cli_table_add(&t, head[i]);
        for (size_t i = 0; i < rows.n; i++) {
            const struct row *r = &rows.v[i];
            if ((!all_ns && strcmp(r->ns, ns) != 0) || (name && strcmp(r->name, name) != 0))
                continue;
            /* Meshed: measured where it receives; else where its callers send. */
            const struct acc *a = r->meshed ? &r->inbound : &r->outbound;
            if (all_ns)
                cli_table_add(&t, r->ns);
            cli_table_add(&t, r->name);
            cli_table_addf(&t, "%u", r->meshed);
            add_figures(&t, a);
            json_t *o =
                json_pack("{s:s,s:s,s:i,s:s,s:O}", "namespace", r->ns, "service", r->name, "meshed",
                          (int)r->meshed, "measured_at", r->meshed ? "inbound" : "outbound",
                          "proxies", r->meshed ? r->in_proxies : r->out_proxies);
            json_figures(o, a);
            json_array_append_new(items, o);
            shown++;
        }
    }
    if (name && !by_proxy && shown == 0) {
        json_decref(items);
        cli_table_free(&t);
        rc = cli_error("no proxy has seen service \"%s\"%s%s, and no sidecar of it is registered "
                       "(meshctl stat -A lists what the proxies saw)",
                       name, all_ns ? "" : " in namespace ", all_ns ? "" : ns);
        goto out;
    }
    if (json) {
        cli_table_free(&t);
        rc = print_json(items, window_ms, src, n_src);
    } else {
        json_decref(items);
        if (shown)
            cli_table_print(&t, stdout);
        else
            fprintf(stderr, "No traffic seen%s%s in the last %llus.\n",
                    all_ns ? "" : " in namespace ", all_ns ? "" : ns, window_ms / 1000);
        cli_table_free(&t);
    }
out:
    rows_free(&rows);
    for (size_t i = 0; i < n_src; i++) {
        json_decref(src[i].answer);
        free(src[i].error);
    }
    free(src);
    cli_proxies_free(list, n_list);
    return rc;
}
