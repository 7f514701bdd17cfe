/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl tap`: a live stream of the requests passing through a service's proxies, read from
 * each proxy's admin GET /tap (docs/meshproxy.md), as lines or JSON lines. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "model/schema.h"
#include "proxies.h"
#include "tap_stream.h"

#define OPEN_TIMEOUT_MS   5000
#define PROXY_MAX_EVENTS  100000ull        /* what a proxy streams at most per session */
#define PROXY_MAX_TIMEOUT (3600ull * 1000) /* and for how long */
#define POLL_SLICE_MS     200              /* how often Ctrl-C and the deadline are looked at */

static int run_tap(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_tap = {
    .name = "tap",
    .summary = "Watch the requests passing through a service's proxies, live",
    .usage =
        "Watch the requests passing through a service's proxies, live.\n"
        "\n"
        "Every request a proxy of SERVICE finishes from now on, and that matches the filters, is\n"
        "printed as it happens: its time, direction (inbound: a request to SERVICE, through its\n"
        "sidecar's inbound listener; outbound: a request SERVICE's app, or a gateway, sent on),\n"
        "method, status, latency, authority and path, the client (and its verified identity over\n"
        "mTLS), the destination service and endpoint, and the proxy that saw it. SERVICE is a\n"
        "service whose sidecars, or a gateway whose proxies, are registered with meshd in the\n"
        "namespace (meshctl proxy-status lists them); --admin ADDR taps one proxy directly,\n"
        "without meshd (a static meshproxy too).\n"
        "\n"
        "The proxies stream what they see from their admin listener (GET /tap), each on its own\n"
        "connection. Tapping costs a proxy nothing while nobody taps, and never slows its\n"
        "requests: when meshctl reads too slowly, a proxy drops events (counted in its\n"
        "mesh_tap_events_dropped_total) rather than wait. Stops after --max events, after\n"
        "--timeout, or on Ctrl-C.\n"
        "\n"
        "Usage:\n"
        "  meshctl tap SERVICE [--path P] [--method M] [--max N] [--timeout D] [-n NS]\n"
        "              [-o table|json]\n"
        "  meshctl tap --admin ADDR [--path P] [--method M] [--max N] [--timeout D]\n"
        "\n"
        "Flags:\n"
        "      --path P          only requests whose path starts with P (/api/)\n"
        "      --method M        only requests with method M (exact: GET, POST)\n"
        "      --max N           stop after N requests (default: until stopped; a proxy sends\n"
        "                        at most 100000)\n"
        "      --timeout D       stop after D (10s, 5m; default: until stopped, at most 1h)\n"
        "  -n, --namespace NS    SERVICE's namespace (default \"default\")\n"
        "      --admin ADDR      tap the proxy whose admin listener is ADDR (HOST:PORT)\n"
        "  -o, --output FORMAT   table (default: one line per request) or json (one JSON object\n"
        "                        per line, as the proxy sends it, with \"proxy\" added)\n"
        "      --server URL      meshd (default $MESH_SERVER, else " CLI_DEFAULT_SERVER ")\n"
        "      --token FILE      meshd's token, when reads need one\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl tap payment-v1\n"
        "  meshctl tap payment-v1 --path /api/v1/ --method POST --max 20\n"
        "  meshctl tap external-gateway -o json --timeout 30s\n",
    .run = run_tap,
};

enum {
    OPT_PATH = 300,
    OPT_METHOD,
    OPT_MAX,
    OPT_TIMEOUT,
    OPT_ADMIN,
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Percent-encodes v for a query value: everything but unreserved characters and '/'. */
static void put_query_value(struct mesh_strbuf *sb, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p))
            mesh_strbuf_append(sb, p, 1);
        else
            mesh_strbuf_printf(sb, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
    }
}

struct tap_run {
    bool json;
    unsigned long long max;   /* 0: no limit of ours */
    unsigned long long count; /* events printed */
    bool stop;
};

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static void print_line(struct tap_run *run, json_t *ev, const char *proxy)
{
    double latency = json_number_value(json_object_get(ev, "latency_ms"));
    char lat[32];
    if (latency < 10)
        snprintf(lat, sizeof(lat), "%.2fms", latency);
    else if (latency < 1000)
        snprintf(lat, sizeof(lat), "%.1fms", latency);
    else
        snprintf(lat, sizeof(lat), "%.2fs", latency / 1000);
    const char *identity = str(ev, "source_identity");
    const char *dest = str(ev, "destination");
    const char *endpoint = str(ev, "endpoint");
    printf("%s %-8s %-6s %3lld %9s %s%s src=%s%s%s dst=%s%s%s proxy=%s\n", str(ev, "time"),
           str(ev, "direction"), str(ev, "method"),
           (long long)json_integer_value(json_object_get(ev, "status")), lat, str(ev, "authority"),
           str(ev, "path"), str(ev, "source"), *identity ? " identity=" : "", identity,
           *dest ? dest : "-", *endpoint ? "@" : "", endpoint, proxy);
    (void)run;
}

static void on_line(void *ctx, struct cli_tap_stream *s, const char *line)
{
    struct tap_run *run = ctx;
    if (run->stop)
        return; /* --max reached: the rest of what was read is not printed */
    json_error_t jerr;
    json_t *ev = json_loads(line, 0, &jerr);
    if (!json_is_object(ev)) {
        fprintf(stderr, "warning: proxy %s sent a tap line that is not a JSON object: %s\n",
                s->proxy, jerr.text);
        json_decref(ev);
        return;
    }
    if (run->json) {
        json_object_set_new(ev, "proxy", *s->proxy ? json_string(s->proxy) : json_null());
        char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
        if (text)
            puts(text);
        free(text);
    } else {
        print_line(run, ev, *s->proxy ? s->proxy : s->admin);
    }
    fflush(stdout); /* a live view: each request as it comes, also into a pipe */
    json_decref(ev);
    run->count++;
    if (run->max && run->count >= run->max)
        run->stop = true;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The proxies that serve NAME in ns: its sidecars, or the gateway of that name; a proxy id
 * also names its proxy. */
static bool serves(const struct cli_proxy *p, const char *name, const char *ns)
{
    if (strcmp(p->id, name) == 0)
        return true;
    const char *pns = p->ns ? p->ns : MESH_DEFAULT_NAMESPACE;
    if (strcmp(pns, ns) != 0)
        return false;
    const char *what = p->role == MESH_PROXY_GATEWAY ? p->gateway : p->service;
    return what && strcmp(what, name) == 0;
}

/* Reads every stream until --max, the end of every stream, the deadline or Ctrl-C. */
static int pump(struct cli_tap_stream *streams, size_t n, struct tap_run *run, uint64_t deadline)
{
    struct pollfd *fds = xcalloc(n, sizeof(*fds));
    int rc = CLI_EXIT_OK;
    size_t open = n;
    while (open && !run->stop && !interrupted) {
        uint64_t now = now_ms();
        if (deadline && now >= deadline)
            break;
        int wait = POLL_SLICE_MS;
        if (deadline && deadline - now < (uint64_t)wait)
            wait = (int)(deadline - now);
        for (size_t i = 0; i < n; i++)
            fds[i] = (struct pollfd){.fd = streams[i].fd, .events = POLLIN};
        int ready = poll(fds, n, wait);
        if (ready < 0 && errno != EINTR) {
            rc = cli_error("poll: %s", strerror(errno));
            break;
        }
        for (size_t i = 0; ready > 0 && i < n && !run->stop; i++) {
            if (fds[i].fd < 0 || !fds[i].revents)
                continue;
            char *why = NULL;
            enum mesh_err err = cli_tap_stream_read(&streams[i], on_line, run, &why);
            if (err == MESH_OK && streams[i].state != CLI_TAP_DONE)
                continue;
            if (err != MESH_OK)
                fprintf(stderr, "warning: %s\n", why);
            free(why);
            /* This proxy's tap ended (its max or timeout, or it went away): the others go on. */
            close(streams[i].fd);
            streams[i].fd = -1;
            open--;
        }
    }
    free(fds);
    return rc;
}

static int run_tap(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"path", required_argument, NULL, OPT_PATH},
        {"method", required_argument, NULL, OPT_METHOD},
        {"max", required_argument, NULL, OPT_MAX},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"namespace", required_argument, NULL, 'n'},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"output", required_argument, NULL, 'o'},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_tap;
    const char *path = NULL, *method = NULL, *ns = MESH_DEFAULT_NAMESPACE, *admin = NULL;
    unsigned long long timeout_ms = 0;
    struct tap_run run = {0};
    char why[200];
    char *end = NULL;
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:o:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_PATH:
            if (optarg[0] != '/')
                return cli_usage_error(cmd, "--path \"%s\": a path prefix starts with '/'", optarg);
            if (strlen(optarg) > 255)
                return cli_usage_error(cmd, "--path: at most 255 bytes");
            path = optarg;
            break;
        case OPT_METHOD:
            if (!*optarg || strlen(optarg) > 15 ||
                strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz"
                               "0123456789!#$%&'*+-.^_`|~") != strlen(optarg))
                return cli_usage_error(cmd, "--method \"%s\" is not an HTTP method", optarg);
            method = optarg;
            break;
        case OPT_MAX:
            errno = 0;
            run.max = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-' || run.max < 1)
                return cli_usage_error(cmd, "--max \"%s\": a count of requests, at least 1",
                                       optarg);
            break;
        case OPT_TIMEOUT:
            if (!mesh_duration_parse(optarg, &timeout_ms, why, sizeof(why)))
                return cli_usage_error(cmd, "--timeout: %s", why);
            if (timeout_ms < 1 || timeout_ms > PROXY_MAX_TIMEOUT)
                return cli_usage_error(cmd, "--timeout \"%s\": from 1ms to 1h", optarg);
            break;
        case 'n':
            if (!*optarg)
                return cli_usage_error(cmd, "--namespace needs a name");
            ns = optarg;
            break;
        case OPT_ADMIN:
            if (!*optarg)
                return cli_usage_error(cmd, "--admin needs an address (HOST:PORT)");
            admin = optarg;
            break;
        case 'o':
            rc = cli_output_json(cmd, optarg, &run.json);
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
    int want = admin ? 0 : 1;
    if (argc - optind != want)
        return admin ? cli_usage_error(cmd, "with --admin, give no SERVICE")
                     : cli_usage_error(cmd, "tap needs one SERVICE (meshctl proxy-status lists "
                                            "the services with proxies)");
    if (!admin && !cli_server(ctx) && ctx->store_dir)
        return cli_usage_error(cmd, "tap needs meshd (--server URL) to find the proxies, or "
                                    "--admin ADDR");
    const char *name = admin ? NULL : argv[optind];

    /* The proxies to tap. */
    struct cli_proxy *list = NULL;
    size_t n_list = 0;
    char **ids = NULL, **admins = NULL;
    size_t n = 0;
    struct cli_tap_stream *streams = NULL;
    rc = CLI_EXIT_OK;
    if (admin) {
        ids = xcalloc(1, sizeof(*ids));
        admins = xcalloc(1, sizeof(*admins));
        ids[0] = xstrdup("");
        admins[0] = xstrdup(admin);
        n = 1;
    } else {
        rc = cli_proxies_fetch_or_explain(ctx, "tap", "tap", &list, &n_list);
        if (rc != CLI_EXIT_OK)
            goto out;
        ids = xcalloc(n_list + 1, sizeof(*ids));
        admins = xcalloc(n_list + 1, sizeof(*admins));
        for (size_t i = 0; i < n_list; i++) {
            if (!serves(&list[i], name, ns))
                continue;
            if (!list[i].admin || !*list[i].admin) {
                fprintf(stderr, "warning: proxy %s registered no admin address: not tapped\n",
                        list[i].id);
                continue;
            }
            ids[n] = xstrdup(list[i].id);
            admins[n] = xstrdup(list[i].admin);
            n++;
        }
        if (n == 0) {
            rc = cli_error("no sidecar or gateway of \"%s\" in namespace %s is registered with "
                           "meshd (meshctl proxy-status lists the proxies)",
                           name, ns);
            goto out;
        }
    }

    /* GET /tap on each: every proxy streams at most --max (we stop at --max in all). */
    struct mesh_strbuf target;
    mesh_strbuf_init(&target, 0);
    mesh_strbuf_printf(&target, "/tap?max=%llu&timeout=%llums",
                       run.max && run.max < PROXY_MAX_EVENTS ? run.max : PROXY_MAX_EVENTS,
                       timeout_ms ? timeout_ms : PROXY_MAX_TIMEOUT);
    if (path) {
        mesh_strbuf_puts(&target, "&path=");
        put_query_value(&target, path);
    }
    if (method) {
        mesh_strbuf_puts(&target, "&method=");
        put_query_value(&target, method);
    }
    streams = xcalloc(n, sizeof(*streams));
    for (size_t i = 0; i < n; i++)
        streams[i].fd = -1;
    for (size_t i = 0; i < n; i++) {
        char *msg = NULL;
        if (cli_tap_stream_open(&streams[i], ids[i], admins[i], target.data, OPEN_TIMEOUT_MS,
                                &msg) != MESH_OK) {
            rc = cli_error("%s", msg);
            free(msg);
            mesh_strbuf_free(&target);
            goto out;
        }
    }
    mesh_strbuf_free(&target);

    /* Every proxy has the session open: what finishes from now on is seen. */
    struct mesh_strbuf said;
    mesh_strbuf_init(&said, 0);
    if (admin)
        mesh_strbuf_printf(&said, "Tapping the proxy at %s", admin);
    else
        mesh_strbuf_printf(&said, "Tapping %zu prox%s of %s.%s (", n, n == 1 ? "y" : "ies", name,
                           ns);
    for (size_t i = 0; !admin && i < n; i++)
        mesh_strbuf_printf(&said, "%s%s", i ? ", " : "", ids[i]);
    mesh_strbuf_printf(&said, "%s: path %s%s, method %s, ", admin ? "" : ")", path ? "prefix " : "",
                       path ? path : "any", method ? method : "any");
    if (run.max)
        mesh_strbuf_printf(&said, "at most %llu requests", run.max);
    else
        mesh_strbuf_puts(&said, "no limit");
    if (timeout_ms)
        mesh_strbuf_printf(&said, ", for %llums", timeout_ms);
    fprintf(stderr, "%s. Ctrl-C to stop.\n", said.data);
    mesh_strbuf_free(&said);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: poll returns at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    uint64_t deadline = timeout_ms ? now_ms() + timeout_ms + 2000 : 0;
    rc = pump(streams, n, &run, deadline);
    fprintf(stderr, "%llu request%s tapped.\n", run.count, run.count == 1 ? "" : "s");
out:
    for (size_t i = 0; streams && i < n; i++)
        cli_tap_stream_close(&streams[i]);
    free(streams);
    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
        free(admins[i]);
    }
    free(ids);
    free(admins);
    cli_proxies_free(list, n_list);
    return rc;
}
