/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl proxy-config`: the routes, clusters and endpoints one proxy is really using, and its
 * workload certificate, read from its admin listener's JSON config dump (docs/meshproxy.md), as
 * tables or JSON. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "proxies.h"
#include "table.h"

static int run_proxy_config(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_proxy_config = {
    .name = "proxy-config",
    .summary = "Show the routes, clusters, endpoints and certificate a proxy is using",
    .usage =
        "Show the routes, clusters, endpoints and workload certificate a proxy is using.\n"
        "\n"
        "Reads the proxy's own config dump from its admin listener (GET "
        "/config_dump?format=json),\n"
        "so it shows what the proxy really serves: its config version, the routes by virtual\n"
        "host, the clusters with their circuit breaker, outlier detection and fault settings and\n"
        "the requests in flight, and every endpoint with its health (ejected by outlier detection\n"
        "or not). secret shows its workload certificate from meshd's CA: SPIFFE ID, serial,\n"
        "validity, issuing CA, trust bundle and renewals (never the key).\n"
        "\n"
        "meshd tells where PROXY's admin listener is: PROXY is a proxy id as proxy-status lists\n"
        "it, or the service or gateway name of exactly one proxy, or the start of exactly one\n"
        "id. --admin ADDR asks a proxy directly instead, without meshd\n"
        "(a static meshproxy too).\n"
        "\n"
        "Usage:\n"
        "  meshctl proxy-config PROXY routes|clusters|endpoints|all [-o table|json]\n"
        "  meshctl proxy-config --admin ADDR routes|clusters|endpoints|all [-o table|json]\n"
        "  meshctl proxy-config PROXY|--admin ADDR secret [-o table|json]\n"
        "\n"
        "Flags:\n"
        "      --admin ADDR      the proxy's admin listener (HOST:PORT or http://HOST:PORT)\n"
        "  -o, --output FORMAT   table (default) or json (that part of the proxy's dump; all: the\n"
        "                        whole dump)\n"
        "      --server URL      meshd (default $MESH_SERVER, else " CLI_DEFAULT_SERVER ")\n"
        "      --token FILE      meshd's token, when reads need one (default $MESH_TOKEN_FILE,\n"
        "                        else $MESH_TOKEN)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl proxy-config payment-v1 endpoints\n"
        "  meshctl proxy-config external-gateway routes -o json\n"
        "  meshctl proxy-config payment-v1 secret\n"
        "  meshctl proxy-config --admin 127.0.0.1:15000 all\n",
    .run = run_proxy_config,
};

enum {
    OPT_ADMIN = 300,
};

enum what {
    SHOW_ROUTES = 1,
    SHOW_CLUSTERS = 2,
    SHOW_ENDPOINTS = 4,
    SHOW_ALL = 7,
    SHOW_SECRET = 8, /* not part of all's tables: all's header names the certificate */
};

/* --- cells --- */

static const char *str(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && *s ? s : dflt;
}

static json_int_t num(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? json_integer_value(v) : (json_int_t)json_number_value(v);
}

static void put_ms(struct mesh_strbuf *sb, json_int_t ms)
{
    char d[32];
    cli_format_duration(ms > 0 ? (unsigned long long)ms : 0, d, sizeof(d));
    mesh_strbuf_puts(sb, d);
}

/* One match entry: "path prefix /api/, method POST, header x exact yes". */
static void put_match(struct mesh_strbuf *sb, const json_t *m)
{
    const char *sep = "";
    const char *kind;
    json_t *v;
    json_object_foreach((json_t *)json_object_get(m, "path"), kind, v)
    {
        mesh_strbuf_printf(sb, "path %s %s", kind,
                           json_string_value(v) ? json_string_value(v) : "");
        sep = ", ";
    }
    const char *method = json_string_value(json_object_get(m, "method"));
    if (method) {
        mesh_strbuf_printf(sb, "%smethod %s", sep, method);
        sep = ", ";
    }
    const char *name;
    json_t *cond;
    json_object_foreach((json_t *)json_object_get(m, "headers"), name, cond)
    {
        json_object_foreach(cond, kind, v)
        {
            if (json_is_string(v))
                mesh_strbuf_printf(sb, "%sheader %s %s %s", sep, name, kind, json_string_value(v));
            else
                mesh_strbuf_printf(sb, "%sheader %s %s", sep, name, kind);
            sep = ", ";
        }
    }
    if (!*sep)
        mesh_strbuf_puts(sb, "any request");
}

static char *fault_cell(const json_t *f)
{
    if (!json_is_object(f))
        return xstrdup("-");
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    if (num(f, "delay_ms") > 0 && json_number_value(json_object_get(f, "delay_percentage")) > 0) {
        mesh_strbuf_puts(&sb, "delay ");
        put_ms(&sb, num(f, "delay_ms"));
        mesh_strbuf_printf(&sb, "@%g%%", json_number_value(json_object_get(f, "delay_percentage")));
    }
    if (num(f, "abort_status") > 0 && json_number_value(json_object_get(f, "abort_percentage")) > 0)
        mesh_strbuf_printf(&sb, "%sabort %lld@%g%%", sb.len ? ", " : "",
                           (long long)num(f, "abort_status"),
                           json_number_value(json_object_get(f, "abort_percentage")));
    if (!sb.len)
        mesh_strbuf_puts(&sb, "-");
    return mesh_strbuf_take(&sb);
}

/* At most two hosts, then "+N more": a Service's host list holds its four DNS spellings. */
static char *hosts_cell(const json_t *hosts)
{
    struct mesh_strbuf sb;
    size_t n = json_array_size(hosts);
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < n && i < 2; i++)
        mesh_strbuf_printf(&sb, "%s%s", i ? "," : "", json_string_value(json_array_get(hosts, i)));
    if (n > 2)
        mesh_strbuf_printf(&sb, " +%zu more", n - 2);
    if (!sb.len)
        mesh_strbuf_puts(&sb, "-");
    return mesh_strbuf_take(&sb);
}

/* --- tables --- */

static void routes_table(const json_t *routes)
{
    struct cli_table t;
    const char *head[] = {"VIRTUAL SERVICE", "HOSTS",   "ROUTE",   "MATCH",
                          "DESTINATIONS",    "TIMEOUT", "RETRIES", "FAULT"};
    cli_table_init(&t, 8);
    for (size_t i = 0; i < 8; i++)
        cli_table_add(&t, head[i]);
    size_t i;
    json_t *r;
    json_array_foreach(routes, i, r)
    {
        const json_t *vs = json_object_get(r, "virtual_service");
        if (json_is_object(vs))
            cli_table_addf(&t, "%s.%s", str(vs, "name", "?"), str(vs, "namespace", "?"));
        else
            cli_table_addf(&t, "(service %s)", str(r, "virtual_host", "?"));
        char *hosts = hosts_cell(json_object_get(r, "hosts"));
        cli_table_add(&t, hosts);
        free(hosts);
        cli_table_add(&t, str(r, "name", "-"));

        struct mesh_strbuf sb;
        mesh_strbuf_init(&sb, 0);
        size_t k;
        json_t *m;
        json_array_foreach(json_object_get(r, "matches"), k, m)
        {
            if (k)
                mesh_strbuf_puts(&sb, " | ");
            put_match(&sb, m);
        }
        if (!sb.len)
            mesh_strbuf_puts(&sb, "any request");
        char *cell = mesh_strbuf_take(&sb);
        cli_table_add(&t, cell);
        free(cell);

        mesh_strbuf_init(&sb, 0);
        json_t *d;
        json_array_foreach(json_object_get(r, "destinations"), k, d)
        {
            mesh_strbuf_printf(&sb, "%s%s %lld%%", k ? ", " : "", str(d, "host", "?"),
                               (long long)num(d, "weight"));
            if (json_is_null(json_object_get(d, "service")))
                mesh_strbuf_puts(&sb, " (no such Service)");
        }
        cell = mesh_strbuf_take(&sb);
        cli_table_add(&t, cell);
        free(cell);

        mesh_strbuf_init(&sb, 0);
        put_ms(&sb, num(r, "timeout_ms"));
        cell = mesh_strbuf_take(&sb);
        cli_table_add(&t, cell);
        free(cell);

        const json_t *retries = json_object_get(r, "retries");
        if (num(retries, "attempts") > 0) {
            mesh_strbuf_init(&sb, 0);
            mesh_strbuf_printf(&sb, "%lld on ", (long long)num(retries, "attempts"));
            json_t *on;
            json_array_foreach(json_object_get(retries, "retry_on"), k, on)
                mesh_strbuf_printf(&sb, "%s%s", k ? "," : "", json_string_value(on));
            cell = mesh_strbuf_take(&sb);
            cli_table_add(&t, cell);
            free(cell);
        } else {
            cli_table_add(&t, "-");
        }
        cell = fault_cell(json_object_get(r, "fault"));
        cli_table_add(&t, cell);
        free(cell);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static char *limits_cell(const json_t *cb)
{
    static const char *const keys[] = {"max_connections", "max_pending_requests", "max_requests",
                                       "max_retries"};
    static const char *const short_names[] = {"conn", "pending", "req", "retries"};
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < 4; i++)
        if (num(cb, keys[i]) > 0)
            mesh_strbuf_printf(&sb, "%s%s=%lld", sb.len ? "," : "", short_names[i],
                               (long long)num(cb, keys[i]));
    if (!sb.len)
        mesh_strbuf_puts(&sb, "-");
    return mesh_strbuf_take(&sb);
}

static char *outlier_cell(const json_t *od)
{
    if (!json_is_object(od))
        return xstrdup("-");
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    mesh_strbuf_printf(&sb, "%lld errors, eject ", (long long)num(od, "consecutive_errors"));
    put_ms(&sb, num(od, "base_ejection_time_ms"));
    mesh_strbuf_printf(&sb, ", max %lld%%", (long long)num(od, "max_ejection_percent"));
    return mesh_strbuf_take(&sb);
}

static void clusters_table(const json_t *clusters)
{
    struct cli_table t;
    const char *head[] = {"SERVICE",         "DIRECTION",         "ENDPOINTS", "LB",
                          "CIRCUIT BREAKER", "OUTLIER DETECTION", "FAULT",     "ACTIVE REQUESTS"};
    cli_table_init(&t, 8);
    for (size_t i = 0; i < 8; i++)
        cli_table_add(&t, head[i]);
    size_t i;
    json_t *c;
    json_array_foreach(clusters, i, c)
    {
        cli_table_addf(&t, "%s.%s", str(c, "name", "?"), str(c, "namespace", "?"));
        cli_table_add(&t, str(c, "direction", "-"));
        cli_table_addf(&t, "%lld", (long long)num(c, "endpoints"));
        cli_table_add(&t, str(c, "lb_policy", "-"));
        char *cell = limits_cell(json_object_get(c, "circuit_breaker"));
        cli_table_add(&t, cell);
        free(cell);
        cell = outlier_cell(json_object_get(c, "outlier_detection"));
        cli_table_add(&t, cell);
        free(cell);
        cell = fault_cell(json_object_get(c, "fault"));
        cli_table_add(&t, cell);
        free(cell);
        cli_table_addf(&t, "%lld", (long long)num(json_object_get(c, "active"), "requests"));
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static void endpoints_table(const json_t *endpoints)
{
    struct cli_table t;
    const char *head[] = {"ENDPOINT", "SERVICE",         "DIRECTION",    "HEALTH",
                          "LABELS",   "ACTIVE REQUESTS", "TIMES EJECTED"};
    cli_table_init(&t, 7);
    for (size_t i = 0; i < 7; i++)
        cli_table_add(&t, head[i]);
    size_t i;
    json_t *e;
    json_array_foreach(endpoints, i, e)
    {
        cli_table_add(&t, str(e, "address", "?"));
        cli_table_addf(&t, "%s.%s", str(e, "cluster", "?"), str(e, "namespace", "?"));
        cli_table_add(&t, str(e, "direction", "-"));
        cli_table_add(&t, json_is_true(json_object_get(e, "ejected")) ? "EJECTED" : "HEALTHY");
        struct mesh_strbuf sb;
        mesh_strbuf_init(&sb, 0);
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(e, "labels"), key, v)
            mesh_strbuf_printf(&sb, "%s%s=%s", sb.len ? "," : "", key,
                               json_string_value(v) ? json_string_value(v) : "");
        if (!sb.len)
            mesh_strbuf_puts(&sb, "-");
        char *cell = mesh_strbuf_take(&sb);
        cli_table_add(&t, cell);
        free(cell);
        cli_table_addf(&t, "%lld", (long long)num(e, "active_requests"));
        cli_table_addf(&t, "%lld", (long long)num(e, "times_ejected"));
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

/* --- the workload certificate --- */

/* "none yet (N failed requests, last error: ...)" when the proxy has no certificate. */
static void print_no_certificate(const json_t *ident)
{
    const json_t *r = json_object_get(ident, "renewal");
    printf("No workload certificate yet");
    if (num(r, "failures") > 0)
        printf(" (%lld failed requests, last error: %s)", (long long)num(r, "failures"),
               str(r, "last_error", "?"));
    printf(".\n");
}

static void secret_tables(const json_t *ident)
{
    if (!json_is_object(ident)) {
        printf("No workload certificate: the proxy runs in static mode (--config).\n");
        return;
    }
    if (!str(ident, "spiffe_id", NULL)) {
        print_no_certificate(ident);
        return;
    }
    struct cli_table t;
    const char *head[] = {"SPIFFE ID", "SERIAL", "NOT BEFORE", "NOT AFTER", "CA"};
    cli_table_init(&t, 5);
    for (size_t i = 0; i < 5; i++)
        cli_table_add(&t, head[i]);
    cli_table_add(&t, str(ident, "spiffe_id", "-"));
    cli_table_add(&t, str(ident, "serial", "-"));
    cli_table_add(&t, str(ident, "not_before", "-"));
    cli_table_add(&t, str(ident, "not_after", "-"));
    cli_table_add(&t, str(ident, "ca", "-"));
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    printf("\nIssuer: %s\n", str(ident, "issuer", "-"));

    printf("\nTrust bundle:\n");
    const char *rhead[] = {"ROOT", "NOT AFTER", "SHA-256 FINGERPRINT"};
    cli_table_init(&t, 3);
    for (size_t i = 0; i < 3; i++)
        cli_table_add(&t, rhead[i]);
    size_t i;
    json_t *root;
    json_array_foreach(json_object_get(ident, "trust_bundle"), i, root)
    {
        cli_table_add(&t, str(root, "subject", "-"));
        cli_table_add(&t, str(root, "not_after", "-"));
        cli_table_add(&t, str(root, "sha256", "-"));
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);

    const json_t *r = json_object_get(ident, "renewal");
    printf("\nCertificate requests: %lld succeeded, %lld failed; next at %s",
           (long long)num(r, "renewals"), (long long)num(r, "failures"),
           str(r, "next_attempt", "-"));
    if (str(r, "last_error", NULL))
        printf("; last error: %s", str(r, "last_error", ""));
    putchar('\n');
}

/* The proxy's identity and config, above the tables of `all`. */
static void print_identity(const json_t *dump)
{
    const json_t *p = json_object_get(dump, "proxy");
    const json_t *cfg = json_object_get(dump, "config");
    const char *mode = str(dump, "mode", "?");
    printf("Proxy:    %s (%s", str(p, "id", "-"), mode);
    if (strcmp(mode, "gateway") == 0)
        printf(" %s", str(p, "gateway", "?"));
    else if (str(p, "service", NULL))
        printf(" of %s.%s", str(p, "service", "?"), str(p, "namespace", "default"));
    printf(")\n");
    const char *source = str(cfg, "source", "?");
    if (strcmp(source, "none") == 0)
        printf("Config:   none yet (waiting for meshd's first config: routes nothing)\n");
    else if (strcmp(source, "file") == 0)
        printf("Config:   version %s from file %s\n", str(cfg, "version", "?"),
               str(cfg, "file", "?"));
    else
        printf("Config:   version %s from meshd\n", str(cfg, "version", "?"));
    const json_t *control = json_object_get(dump, "control");
    if (json_is_object(control)) {
        printf("Control:  %s, %s, %lld configs applied, %lld refused", str(control, "url", "?"),
               json_is_true(json_object_get(control, "connected")) ? "connected" : "disconnected",
               (long long)num(control, "configs_applied"),
               (long long)num(control, "configs_refused"));
        if (str(control, "last_error", NULL))
            printf(", last error: %s", str(control, "last_error", ""));
        putchar('\n');
    }
    const json_t *ident = json_object_get(dump, "identity");
    if (json_is_object(ident)) {
        if (str(ident, "spiffe_id", NULL))
            printf("Identity: %s, serial %s, valid until %s (CA %s)\n",
                   str(ident, "spiffe_id", "?"), str(ident, "serial", "?"),
                   str(ident, "not_after", "?"), str(ident, "ca", "-"));
        else
            printf("Identity: none yet\n");
    }
}

static int print_json(const json_t *dump, enum what what)
{
    const json_t *part = what == SHOW_ROUTES      ? json_object_get(dump, "routes")
                         : what == SHOW_CLUSTERS  ? json_object_get(dump, "clusters")
                         : what == SHOW_ENDPOINTS ? json_object_get(dump, "endpoints")
                         : what == SHOW_SECRET    ? json_object_get(dump, "identity")
                                                  : dump;
    char *text = json_dumps(part, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!text)
        return cli_error("out of memory");
    puts(text);
    free(text);
    return CLI_EXIT_OK;
}

static int print_tables(const json_t *dump, enum what what)
{
    if (what == SHOW_SECRET) {
        secret_tables(json_object_get(dump, "identity"));
        return CLI_EXIT_OK;
    }
    if (what == SHOW_ALL) {
        print_identity(dump);
        printf("\nRoutes:\n");
    }
    if (what & SHOW_ROUTES)
        routes_table(json_object_get(dump, "routes"));
    if (what == SHOW_ALL)
        printf("\nClusters:\n");
    if (what & SHOW_CLUSTERS)
        clusters_table(json_object_get(dump, "clusters"));
    if (what == SHOW_ALL)
        printf("\nEndpoints:\n");
    if (what & SHOW_ENDPOINTS)
        endpoints_table(json_object_get(dump, "endpoints"));
    return CLI_EXIT_OK;
}

/* --- finding the proxy --- */

/* The proxy PROXY names: an exact id, else the one proxy whose service or gateway is PROXY or
 * whose id starts with it. Prints why when none or several do. */
static const struct cli_proxy *resolve(const char *name, const struct cli_proxy *list, size_t n)
{
    const struct cli_proxy *found = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].id, name) == 0)
            return &list[i];
    for (size_t i = 0; i < n; i++) {
        const struct cli_proxy *p = &list[i];
        if ((p->service && strcmp(p->service, name) == 0) ||
            (p->gateway && strcmp(p->gateway, name) == 0) ||
            strncmp(p->id, name, strlen(name)) == 0) {
            found = p;
            matches++;
        }
    }
    if (matches == 1)
        return found;
    if (matches == 0) {
        cli_error("no proxy \"%s\" is registered with meshd (meshctl proxy-status lists them)",
                  name);
        return NULL;
    }
    struct mesh_strbuf sb;
    mesh_strbuf_init(&sb, 0);
    for (size_t i = 0; i < n; i++) {
        const struct cli_proxy *p = &list[i];
        if ((p->service && strcmp(p->service, name) == 0) ||
            (p->gateway && strcmp(p->gateway, name) == 0) ||
            strncmp(p->id, name, strlen(name)) == 0)
            mesh_strbuf_printf(&sb, "%s%s", sb.len ? ", " : "", p->id);
    }
    cli_error("\"%s\" names %zu proxies (%s): give one id", name, matches, sb.data);
    mesh_strbuf_free(&sb);
    return NULL;
}

/* The admin listener of PROXY, as meshd knows it. Caller frees; NULL after printing why. */
static char *admin_from_meshd(const struct cli_ctx *ctx, const char *name, char **id)
{
    struct cli_proxy *list = NULL;
    size_t n = 0;
    char *why = NULL, *admin = NULL;
    enum mesh_err err = cli_proxies_fetch(ctx, &list, &n, &why);
    if (err != MESH_OK) {
        cli_error("%s", why);
        if (err == MESH_E_UNAVAILABLE)
            fputs("proxy-config PROXY asks meshd where the proxy is: start meshd or point "
                  "--server at it, or ask the proxy with --admin ADDR\n",
                  stderr);
        goto out;
    }
    const struct cli_proxy *p = resolve(name, list, n);
    if (!p)
        goto out;
    if (!p->admin || !*p->admin) {
        cli_error("proxy %s registered no admin address: start it with --admin ADDR", p->id);
        goto out;
    }
    admin = xstrdup(p->admin);
    *id = xstrdup(p->id);
out:
    free(why);
    cli_proxies_free(list, n);
    return admin;
}

static bool parse_what(const char *text, enum what *out)
{
    static const struct {
        const char *name;
        enum what what;
    } names[] = {
        {"routes", SHOW_ROUTES},    {"route", SHOW_ROUTES},        {"clusters", SHOW_CLUSTERS},
        {"cluster", SHOW_CLUSTERS}, {"endpoints", SHOW_ENDPOINTS}, {"endpoint", SHOW_ENDPOINTS},
        {"secret", SHOW_SECRET},    {"secrets", SHOW_SECRET},      {"all", SHOW_ALL},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(text, names[i].name) == 0) {
            *out = names[i].what;
            return true;
        }
    return false;
}

static int run_proxy_config(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"output", required_argument, NULL, 'o'},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_proxy_config;
    const char *admin_flag = NULL;
    bool json = false;
    enum what what;
    char *admin = NULL, *id = NULL, *url = NULL, *why = NULL;
    json_t *dump = NULL;
    int c, rc = CLI_EXIT_OK;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ADMIN:
            if (!*optarg)
                return cli_usage_error(cmd, "--admin needs an address (HOST:PORT)");
            admin_flag = optarg;
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
    int want_args = admin_flag ? 1 : 2;
    if (argc - optind != want_args) {
        if (admin_flag)
            return cli_usage_error(cmd, "with --admin, give only what to show: routes, clusters, "
                                        "endpoints, secret or all");
        return cli_usage_error(cmd, "proxy-config needs a PROXY and what to show (routes, "
                                    "clusters, endpoints, secret or all)");
    }
    const char *what_text = argv[argc - 1];
    if (!parse_what(what_text, &what))
        return cli_usage_error(
            cmd, "unknown config \"%s\" (use routes, clusters, endpoints, secret or all)",
            what_text);
    if (admin_flag) {
        admin = xstrdup(admin_flag);
    } else {
        if (!cli_server(ctx) && ctx->store_dir)
            return cli_usage_error(cmd, "proxy-config PROXY needs meshd (--server URL), or the "
                                        "proxy's --admin ADDR");
        admin = admin_from_meshd(ctx, argv[optind], &id);
        if (!admin) {
            rc = CLI_EXIT_ERROR;
            goto out;
        }
    }
    url = strstr(admin, "://") ? xasprintf("%s/config_dump?format=json", admin)
                               : xasprintf("http://%s/config_dump?format=json", admin);
    if (cli_http_get_json(url, id ? "the proxy's admin listener" : "the admin listener", NULL, 0,
                          &dump, &why) != MESH_OK) {
        rc = cli_error("%s", why);
        goto out;
    }
    if (!json_is_object(dump) || !json_is_array(json_object_get(dump, "routes"))) {
        rc = cli_error("%s is not a meshproxy config dump (no \"routes\" list)", url);
        goto out;
    }
    rc = json ? print_json(dump, what) : print_tables(dump, what);
out:
    json_decref(dump);
    free(admin);
    free(id);
    free(url);
    free(why);
    return rc;
}
