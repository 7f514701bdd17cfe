/* SPDX-License-Identifier: Apache-2.0 */
/* meshproxy: flags, the first snapshot, listeners and workers, the link to meshd in sidecar and
 * gateway modes, and the main thread's signal loop (SIGHUP reloads, SIGTERM drains) with the
 * outlier sweeps. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "core/xalloc.h"
#include "identity.h"
#include "net/http_client.h"
#include "net/sock.h"
#include "proxy.h"
#include "tls_load.h"
#include "tls_plugin.h"
#include "trace.h"

static const char usage[] =
    "Usage: meshproxy --config FILE --listen ADDR --admin ADDR [options]\n"
    "       meshproxy --control URL --token FILE --service NAME --namespace NS [--version V]\n"
    "                 --app ADDR --outbound ADDR --inbound ADDR --admin ADDR [options]\n"
    "       meshproxy --control URL --token FILE --gateway NAME [--namespace NS]\n"
    "                 --listen ADDR --admin ADDR [options]\n"
    "\n"
    "An L7 HTTP/1.1 proxy that routes by resource documents (Service endpoints, VirtualService,\n"
    "CircuitBreaker, FaultInjection): from FILE (static mode), or from meshd as a sidecar in\n"
    "front of one app or as a gateway.\n"
    "\n"
    "Static mode:\n"
    "  --config FILE            resource documents (YAML or JSON); SIGHUP re-reads it\n"
    "  --listen ADDR            where clients connect, e.g. 127.0.0.1:15001\n"
    "Sidecar and gateway modes:\n"
    "  --control URL            meshd, e.g. http://127.0.0.1:15010 (or https://)\n"
    "  --token FILE             meshd's token (default: $MESH_TOKEN_FILE)\n"
    "  --cacert FILE            with an https:// meshd: the PEM CA bundle that signed its\n"
    "                           certificate (default: $MESH_CACERT, else the system's)\n"
    "  --namespace NS           the service's (or gateway's) namespace (default \"default\")\n"
    "  --id ID                  the proxy id at meshd (default SERVICE.NS-PID or GATEWAY-PID)\n"
    "  --service NAME           sidecar: the service of the app it fronts\n"
    "  --version V              sidecar: registered as the label version=V\n"
    "  --app ADDR               sidecar: the app; the inbound listener forwards everything there\n"
    "  --outbound ADDR          sidecar: the app's requests to other services, routed by Host\n"
    "  --inbound ADDR           sidecar: where other proxies reach the app (registered at meshd)\n"
    "  --gateway NAME           gateway: serves the VirtualServices whose gateways list NAME\n"
    "  --listen ADDR            gateway: where clients connect\n"
    "  --tls-cert FILE          gateway: serve HTTPS on --listen with this certificate (PEM,\n"
    "                           leaf first, then intermediates)\n"
    "  --tls-key FILE           gateway: its private key (PEM, unencrypted, not readable by\n"
    "                           group or others); both flags or neither\n"
    "  --deregister-wait DUR    SIGTERM: after deregistering, keep serving this long so that\n"
    "                           peers stop routing here before the listeners close (default "
    "500ms)\n"
    "Common:\n"
    "  --admin ADDR             /metrics, /stats, /ready, /config_dump, e.g. 127.0.0.1:15000\n"
    "  --workers N              worker threads (default: one per core)\n"
    "  --access-log FILE        JSON lines, one per request; \"-\" for stdout (default: off)\n"
    "  --connect-timeout DUR    upstream connect timeout (default 1s)\n"
    "  --route-timeout DUR      when a route sets no timeout (default 15s)\n"
    "  --header-timeout DUR     a request head must arrive within this (default 10s)\n"
    "  --idle-timeout DUR       keep-alive client connections idle this long close (default 60s)\n"
    "  --drain-timeout DUR      SIGTERM: longest wait for in-flight requests (default 10s)\n"
    "  -h, --help               this help\n"
    "  --version                print the version\n"
    "\n"
    "An address with port 0 takes a free port; the ready line on stderr says which.\n"
    "Sidecars and gateways load meshproxy-tls.so, the plugin that holds the proxy's OpenSSL\n"
    "code (its workload certificate), at start: from $MESHPROXY_TLS_PLUGIN when set, else\n"
    "next to the meshproxy binary, else from where `make install` puts it (the last line\n"
    "below). Static mode never loads it.\n"
    "Signals: SIGHUP reloads FILE (a bad file is refused and the running config stays);\n"
    "SIGTERM or SIGINT deregisters from meshd (sidecar, gateway), stops accepting, finishes\n"
    "in-flight requests, and exits 0.\n";

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "meshproxy: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nRun 'meshproxy --help' for usage.\n");
    va_end(ap);
    return 2;
}

static bool parse_duration(const char *text, uint64_t *ms)
{
    char *end = NULL;
    double v = strtod(text, &end);
    if (!end || end == text || v <= 0)
        return false;
    double scale = strcmp(end, "ms") == 0  ? 1
                   : strcmp(end, "s") == 0 ? 1000
                   : strcmp(end, "m") == 0 ? 60000
                                           : 0;
    if (scale == 0)
        return false;
    *ms = (uint64_t)(v * scale);
    return *ms > 0;
}

enum {
    OPT_CONFIG = 1000,
    OPT_LISTEN,
    OPT_ADMIN,
    OPT_WORKERS,
    OPT_ACCESS_LOG,
    OPT_CONNECT_TO,
    OPT_ROUTE_TO,
    OPT_HEADER_TO,
    OPT_IDLE_TO,
    OPT_DRAIN_TO,
    OPT_VERSION,
    OPT_CONTROL,
    OPT_TOKEN,
    OPT_SERVICE,
    OPT_NAMESPACE,
    OPT_SVC_VERSION,
    OPT_ID,
    OPT_APP,
    OPT_OUTBOUND,
    OPT_INBOUND,
    OPT_GATEWAY,
    OPT_DEREG_WAIT,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_CACERT,
};

/* Flags that only make sense in one mode, with the mode, for messages. */
static int check_mode(const struct mesh_proxy_options *o, const char *outbound)
{
    if (o->control_url && o->config_path)
        return usage_error("%s", "--config (static mode) and --control (meshd) exclude each other");
    if (o->cacert && !o->control_url)
        return usage_error("%s", "--cacert is for the link to meshd (--control https://...)");
    if ((o->tls_cert || o->tls_key) && !o->gateway)
        return usage_error("%s", "--tls-cert and --tls-key are for gateways (--control URL "
                                 "--gateway NAME): only a gateway serves HTTPS");
    if (!o->tls_cert != !o->tls_key)
        return usage_error("--tls-cert and --tls-key go together: %s is missing",
                           o->tls_cert ? "--tls-key FILE" : "--tls-cert FILE");
    if (!o->control_url) {
        if (o->service || o->gateway || o->app || o->inbound || outbound || o->id || o->version)
            return usage_error("%s", "--service, --gateway, --app, --inbound, --outbound, --id "
                                     "and --version need --control URL");
        if (!o->config_path || !o->listen || !o->admin)
            return usage_error("%s", "--config, --listen and --admin are required");
        return -1;
    }
    if (!o->token_path)
        return usage_error("%s", "--control needs --token FILE (or $MESH_TOKEN_FILE)");
    if (o->service && o->gateway)
        return usage_error("%s", "--service (sidecar) and --gateway exclude each other");
    if (o->mode == MESH_PROXY_SIDECAR) {
        if (o->listen)
            return usage_error("%s",
                               "a sidecar listens with --outbound and --inbound, not --listen");
        if (!o->app || !outbound || !o->inbound || !o->admin)
            return usage_error("%s", "a sidecar needs --app, --outbound, --inbound and --admin");
        return -1;
    }
    if (o->mode == MESH_PROXY_GATEWAY) {
        if (o->app || o->inbound || outbound || o->version)
            return usage_error("%s", "--app, --inbound, --outbound and --version are for sidecars");
        if (!o->listen || !o->admin)
            return usage_error("%s", "a gateway needs --listen and --admin");
        return -1;
    }
    return usage_error("%s", "--control needs --service NAME (sidecar) or --gateway NAME");
}

static int parse_flags(int argc, char **argv, struct mesh_proxy_options *o,
                       uint64_t *deregister_wait_ms)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
        {"connect-timeout", required_argument, NULL, OPT_CONNECT_TO},
        {"route-timeout", required_argument, NULL, OPT_ROUTE_TO},
        {"header-timeout", required_argument, NULL, OPT_HEADER_TO},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TO},
        {"drain-timeout", required_argument, NULL, OPT_DRAIN_TO},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"service", required_argument, NULL, OPT_SERVICE},
        {"namespace", required_argument, NULL, OPT_NAMESPACE},
        {"version", optional_argument, NULL, OPT_VERSION},
        {"id", required_argument, NULL, OPT_ID},
        {"app", required_argument, NULL, OPT_APP},
        {"outbound", required_argument, NULL, OPT_OUTBOUND},
        {"inbound", required_argument, NULL, OPT_INBOUND},
        {"gateway", required_argument, NULL, OPT_GATEWAY},
        {"deregister-wait", required_argument, NULL, OPT_DEREG_WAIT},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *outbound = NULL;
    bool print_version = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        uint64_t *dur = NULL;
        switch (opt) {
        case OPT_CONFIG:
            o->config_path = optarg;
            break;
        case OPT_LISTEN:
            o->listen = optarg;
            break;
        case OPT_ADMIN:
            o->admin = optarg;
            break;
        case OPT_ACCESS_LOG:
            o->access_log = optarg;
            break;
        case OPT_WORKERS: {
            char *end = NULL;
            long n = strtol(optarg, &end, 10);
            if (!end || *end || n < 1 || n > MESH_PROXY_MAX_WORKERS)
                return usage_error("--workers must be 1..64, got \"%s\"", optarg);
            o->workers = (unsigned)n;
            break;
        }
        case OPT_CONNECT_TO:
            dur = &o->connect_timeout_ms;
            break;
        case OPT_ROUTE_TO:
            dur = &o->route_timeout_ms;
            break;
        case OPT_HEADER_TO:
            dur = &o->header_timeout_ms;
            break;
        case OPT_IDLE_TO:
            dur = &o->idle_timeout_ms;
            break;
        case OPT_DRAIN_TO:
            dur = &o->drain_timeout_ms;
            break;
        case OPT_DEREG_WAIT:
            dur = deregister_wait_ms;
            break;
        case OPT_CONTROL:
            o->control_url = optarg;
            break;
        case OPT_TOKEN:
            o->token_path = optarg;
            break;
        case OPT_SERVICE:
            o->service = optarg;
            break;
        case OPT_NAMESPACE:
            o->ns = optarg;
            break;
        case OPT_ID:
            o->id = optarg;
            break;
        case OPT_APP:
            o->app = optarg;
            break;
        case OPT_OUTBOUND:
            outbound = optarg;
            break;
        case OPT_INBOUND:
            o->inbound = optarg;
            break;
        case OPT_GATEWAY:
            o->gateway = optarg;
            break;
        case OPT_TLS_CERT:
            o->tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            o->tls_key = optarg;
            break;
        case OPT_CACERT:
            o->cacert = optarg;
            break;
        case OPT_VERSION:
            /* Bare --version prints the program's version; --version V (or --version=V) is a
             * sidecar's version label. */
            if (!optarg && optind < argc && argv[optind][0] != '-')
                optarg = argv[optind++];
            if (optarg)
                o->version = optarg;
            else
                print_version = true;
            break;
        case 'h':
            fputs(usage, stdout);
            printf("Installed TLS plugin: %s\n", mesh_tls_installed_path());
            return 0;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown flag %s", argv[optind - 1]);
        }
        if (dur && !parse_duration(optarg, dur))
            return usage_error("invalid duration \"%s\": use 500ms, 10s or 1m", optarg);
    }
    if (print_version) {
        printf("meshproxy %s\n", MESH_VERSION);
        return 0;
    }
    if (optind < argc)
        return usage_error("unexpected argument \"%s\"", argv[optind]);
    if (!o->token_path)
        o->token_path = getenv("MESH_TOKEN_FILE");
    o->mode = o->service ? MESH_PROXY_SIDECAR : o->gateway ? MESH_PROXY_GATEWAY : MESH_PROXY_STATIC;
    if (!o->control_url && !o->service && !o->gateway)
        o->token_path = NULL; /* $MESH_TOKEN_FILE means nothing to static mode */
    int rc = check_mode(o, outbound);
    if (rc >= 0)
        return rc;
    if (o->mode == MESH_PROXY_SIDECAR)
        o->listen = outbound;
    if (o->mode != MESH_PROXY_STATIC && !o->ns)
        o->ns = MESH_DEFAULT_NAMESPACE;
    return -1;
}

/* --- static mode: reloads --- */

static void reload(struct mesh_proxy *p, uint64_t *version)
{
    struct mesh_snapshot *s = NULL;
    char *why = NULL;
    if (mesh_snapshot_load_file(p->opt.config_path, *version + 1, &s, &why) != MESH_OK) {
        atomic_fetch_add(&p->reloads_failed, 1);
        fprintf(stderr, "lvl=error msg=\"reload refused, the running config stays\" file=%s\n%s\n",
                p->opt.config_path, why ? why : "");
        free(why);
        return;
    }
    (*version)++;
    mesh_proxy_publish(p, s);
    atomic_fetch_add(&p->reloads_ok, 1);
    fprintf(stderr, "lvl=info msg=\"config reloaded\" file=%s version=%llu\n", p->opt.config_path,
            (unsigned long long)*version);
}

/* The outlier sweeps run here, not on workers: one thread returns ejected endpoints. */
static void sweep(struct mesh_cluster_state *st, void *ctx)
{
    uint64_t now = *(const uint64_t *)ctx;
    if (now < st->next_sweep_ms)
        return;
    mesh_outlier_sweep(&st->outlier, now);
    uint64_t interval = st->outlier_cfg.interval_ms ? st->outlier_cfg.interval_ms : 10000;
    st->next_sweep_ms = now + interval;
}

/* --- listeners --- */

static const char *role_flag(const struct mesh_proxy *p, enum mesh_listener_role role)
{
    if (role == MESH_LISTENER_ROUTER)
        return p->opt.mode == MESH_PROXY_SIDECAR ? "--outbound" : "--listen";
    return role == MESH_LISTENER_INBOUND ? "--inbound" : "--admin";
}

/* Parses the address of each listener role the mode has. */
static int parse_listen_addrs(struct mesh_proxy *p)
{
    const char *text[MESH_LISTENER_N_ROLES] = {
        [MESH_LISTENER_ROUTER] = p->opt.listen,
        [MESH_LISTENER_INBOUND] = p->opt.mode == MESH_PROXY_SIDECAR ? p->opt.inbound : NULL,
        [MESH_LISTENER_ADMIN] = p->opt.admin,
    };
    for (int r = 0; r < MESH_LISTENER_N_ROLES; r++) {
        struct mesh_listen_addr *a = &p->addrs[r];
        char why[256];
        if (!text[r])
            continue;
        if (mesh_sock_parse_addr(text[r], MESH_SOCK_F_RESOLVE, &a->addr, &a->len, why,
                                 sizeof(why)) != MESH_OK)
            return usage_error("%s: %s", role_flag(p, (enum mesh_listener_role)r), why);
        a->enabled = true;
    }
    return -1;
}

/* Binds one socket of role: after the first bind, the address really bound (its port when 0
 * was asked for) is what the next workers bind and what the logs and meshd are told. */
static enum mesh_err bind_role(struct mesh_proxy *p, enum mesh_listener_role role, unsigned flags,
                               int *fd, char *why, size_t len)
{
    struct mesh_listen_addr *a = &p->addrs[role];
    enum mesh_err err =
        mesh_sock_listen((const struct sockaddr *)&a->addr, a->len, flags, fd, why, len);
    if (err != MESH_OK || a->text[0])
        return err;
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (mesh_sock_local_addr(*fd, &bound, &blen) == MESH_OK) {
        a->addr = bound;
        a->len = blen;
    }
    mesh_sock_format_addr((const struct sockaddr *)&a->addr, a->len, a->text, sizeof(a->text));
    return MESH_OK;
}

/* --- start and stop --- */

static int start_workers(struct mesh_proxy *p)
{
    char why[256];
    int admin_fd = -1;
    if (bind_role(p, MESH_LISTENER_ADMIN, 0, &admin_fd, why, sizeof(why)) != MESH_OK) {
        fprintf(stderr, "meshproxy: admin %s: %s\n", p->opt.admin, why);
        return 1;
    }
    p->workers = xcalloc(p->n_workers, sizeof(*p->workers));
    for (unsigned i = 0; i < p->n_workers; i++) {
        struct mesh_worker *w = &p->workers[i];
        if (mesh_worker_init(w, p, i) != MESH_OK) {
            fprintf(stderr, "meshproxy: cannot set up worker %u\n", i);
            return 1;
        }
        for (int r = MESH_LISTENER_ROUTER; r <= MESH_LISTENER_INBOUND; r++) {
            int fd = -1;
            if (!p->addrs[r].enabled)
                continue;
            if (bind_role(p, (enum mesh_listener_role)r, MESH_SOCK_F_REUSEPORT, &fd, why,
                          sizeof(why)) != MESH_OK ||
                mesh_worker_add_listener(w, (enum mesh_listener_role)r, fd) != MESH_OK) {
                fprintf(stderr, "meshproxy: listen %s: %s\n",
                        r == MESH_LISTENER_ROUTER ? p->opt.listen : p->opt.inbound, why);
                return 1;
            }
        }
    }
    mesh_worker_add_listener(&p->workers[0], MESH_LISTENER_ADMIN, admin_fd);
    if (mesh_admin_init(&p->workers[0]) != MESH_OK) {
        fprintf(stderr, "meshproxy: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < p->n_workers; i++)
        if (mesh_worker_start(&p->workers[i]) != MESH_OK)
            return 1;
    return 0;
}

static void stop_workers(struct mesh_proxy *p)
{
    atomic_store(&p->draining, true);
    for (unsigned i = 0; i < p->n_workers; i++)
        mesh_worker_wake(&p->workers[i]);
    for (unsigned i = 0; i < p->n_workers; i++)
        mesh_worker_join(&p->workers[i]);
    mesh_admin_free(p);
    for (unsigned i = 0; i < p->n_workers; i++)
        mesh_stats_shard_free(p->workers[i].st.shard);
    free(p->workers);
    p->workers = NULL;
    /* The renewal thread stopped with the control link; nobody renders its shard any more. */
    mesh_stats_shard_free(p->identity_stats);
    p->identity_stats = NULL;
    mesh_identity_unref(atomic_exchange(&p->identity, NULL));
    mesh_snapshot_unref(atomic_load(&p->current));
    mesh_snapshot_unref(p->inbound);
    p->inbound = NULL;
}

static void defaults(struct mesh_proxy_options *o)
{
    /* One worker per core the process may run on: under taskset or a cgroup cpuset that is
     * fewer than the machine has, and more workers than cores only adds context switches. */
    cpu_set_t set;
    long cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                             : sysconf(_SC_NPROCESSORS_ONLN);
    o->workers = cpus > 0 && cpus <= MESH_PROXY_MAX_WORKERS ? (unsigned)cpus : 1;
    o->connect_timeout_ms = 1000;
    o->route_timeout_ms = 15000;
    o->header_timeout_ms = 10000;
    o->idle_timeout_ms = 60000;
    o->drain_timeout_ms = 10000;
    o->limits.max_request_line = 8192;
    o->limits.max_header_bytes = MESH_BUF_DEFAULT_SIZE;
    o->limits.max_headers = MESH_PROXY_MAX_HEADERS;
}

/* --- meshd --- */

/* The token in FILE, trimmed; NULL (with a message on stderr) when it cannot be read. */
static char *read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "meshproxy: --token %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *start = buf;
    while (*start == ' ' || *start == '\t' || *start == '\n' || *start == '\r')
        start++;
    size_t len = strlen(start);
    while (len && (start[len - 1] == ' ' || start[len - 1] == '\t' || start[len - 1] == '\n' ||
                   start[len - 1] == '\r'))
        start[--len] = '\0';
    if (len == 0) {
        fprintf(stderr, "meshproxy: --token %s: the file is empty\n", path);
        return NULL;
    }
    return xstrdup(start);
}

/* Where peers reach this listener: its bound address, with a wildcard host (0.0.0.0, ::) read
 * as loopback, the only address it is sure to answer on. */
static void reachable_addr(const struct mesh_listen_addr *a, char *out, size_t size)
{
    struct sockaddr_storage ss = a->addr;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        if (in->sin_addr.s_addr == htonl(INADDR_ANY))
            in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        if (memcmp(&in6->sin6_addr, &in6addr_any, sizeof(in6addr_any)) == 0)
            in6->sin6_addr = in6addr_loopback;
    }
    mesh_sock_format_addr((const struct sockaddr *)&ss, a->len, out, size);
}

static int start_control(struct mesh_proxy *p, const char *token)
{
    char address[MESH_SOCK_ADDR_STRLEN] = "", admin[MESH_SOCK_ADDR_STRLEN] = "";
    if (p->addrs[MESH_LISTENER_INBOUND].enabled)
        reachable_addr(&p->addrs[MESH_LISTENER_INBOUND], address, sizeof(address));
    reachable_addr(&p->addrs[MESH_LISTENER_ADMIN], admin, sizeof(admin));
    struct mesh_control_config cfg = {
        .url = p->opt.control_url,
        .token = token,
        .id = p->opt.id,
        .mode = p->opt.mode,
        .service = p->opt.service,
        .ns = p->opt.ns,
        .version = p->opt.version,
        .gateway = p->opt.gateway,
        .address = address,
        .admin = admin,
        .identity_stats = p->identity_stats,
    };
    char *why = NULL;
    if (mesh_control_start(p, &cfg, &p->control, &why) != MESH_OK) {
        fprintf(stderr, "meshproxy: %s\n", why ? why : "cannot start talking to meshd");
        free(why);
        return 1;
    }
    return 0;
}

/* The placeholder served until meshd's first config: every outbound request answers 503. */
static struct mesh_snapshot *placeholder(void)
{
    struct mesh_snapshot *s = NULL;
    char *why = NULL;
    if (mesh_snapshot_build(NULL, 0, 0, &s, &why) != MESH_OK) {
        fprintf(stderr, "meshproxy: %s\n", why ? why : "out of memory");
        free(why);
        return NULL;
    }
    s->awaiting_config = true;
    snprintf(s->version_text, sizeof(s->version_text), "none");
    return s;
}

/* The span exporter (trace.h), told the first snapshot's settings before any worker runs. Its
 * spans say who they come from: the sidecar's service, the gateway, or a static proxy. */
static int start_tracer(struct mesh_proxy *p, const struct mesh_snapshot *first)
{
    struct mesh_trace_resource res = {
        .service = p->opt.mode == MESH_PROXY_SIDECAR   ? p->opt.service
                   : p->opt.mode == MESH_PROXY_GATEWAY ? p->opt.gateway
                                                       : "meshproxy",
        .ns = p->opt.ns,
        .instance = p->opt.id,
        .mode = mesh_proxy_mode_str(p->opt.mode),
    };
    if (mesh_tracer_new(&res, p->n_workers, &p->tracer) != MESH_OK) {
        fprintf(stderr, "meshproxy: out of memory\n");
        return 1;
    }
    mesh_tracer_configure(p->tracer, &first->trace);
    if (mesh_tracer_start(p->tracer) != MESH_OK) {
        fprintf(stderr, "meshproxy: cannot start the trace exporter thread\n");
        return 1;
    }
    return 0;
}

static void announce(const struct mesh_proxy *p)
{
    const char *router = p->addrs[MESH_LISTENER_ROUTER].text;
    const char *admin = p->addrs[MESH_LISTENER_ADMIN].text;
    switch (p->opt.mode) {
    case MESH_PROXY_STATIC:
        fprintf(stderr, "meshproxy listening on %s with %u workers, admin on %s\n", router,
                p->n_workers, admin);
        break;
    case MESH_PROXY_SIDECAR:
        fprintf(stderr,
                "meshproxy sidecar %s (service %s.%s) outbound on %s, inbound on %s -> app %s, "
                "with %u workers, admin on %s, meshd %s\n",
                p->opt.id, p->opt.service, p->opt.ns, router, p->addrs[MESH_LISTENER_INBOUND].text,
                p->opt.app, p->n_workers, admin, p->opt.control_url);
        break;
    case MESH_PROXY_GATEWAY:
        fprintf(stderr,
                "meshproxy gateway %s (%s/%s) listening on %s with %u workers, admin on %s, "
                "meshd %s\n",
                p->opt.id, p->opt.ns, p->opt.gateway, router, p->n_workers, admin,
                p->opt.control_url);
        break;
    }
}

static int serve(struct mesh_proxy *p, uint64_t deregister_wait_ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    uint64_t version = 1;
    announce(p);
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &(struct timespec){0, 100000000});
        if (sig == SIGHUP && p->opt.mode == MESH_PROXY_STATIC) {
            reload(p, &version);
        } else if (sig == SIGHUP) {
            fprintf(stderr, "lvl=info msg=\"SIGHUP ignored: the config comes from meshd\"\n");
        } else if (sig == SIGTERM || sig == SIGINT) {
            fprintf(stderr, "lvl=info msg=\"draining\" signal=%s\n", strsignal(sig));
            if (p->control) {
                /* Peers first: once meshd has pushed them a config without this proxy, they
                 * stop sending it requests; only then do the listeners close. */
                mesh_control_stop(p->control, true, 2000, deregister_wait_ms);
                p->control = NULL;
            }
            stop_workers(p);
            /* After the workers: the spans they left go to the collector once more. */
            mesh_tracer_stop(p->tracer);
            fprintf(stderr, "lvl=info msg=\"stopped\"\n");
            return 0;
        }
        uint64_t now = monotonic_ms();
        mesh_cluster_states_foreach(sweep, &now);
    }
}

/* Sidecars and gateways need the TLS plugin for their workload certificate and mTLS: loaded
 * before anything registers, so that a missing plugin fails the start, not the first renewal.
 * Static mode never calls this and so never maps OpenSSL (tls_plugin.h says why). */
static int load_tls(struct mesh_proxy *p)
{
    char *path = NULL, *why = NULL;
    if (mesh_tls_load(&path, &why) != MESH_OK) {
        fprintf(stderr, "meshproxy: %s\n", why);
        free(why);
        return 1;
    }
    fprintf(stderr, "lvl=info msg=\"TLS plugin loaded\" path=%s library=\"%s\"\n", path,
            mesh_tls_ops()->library_version());
    free(path);
    p->tls_ops = mesh_tls_ops();
    if (strncmp(p->opt.control_url, "https://", 8) == 0) {
        /* The control link and the certificate requests speak TLS through the plugin too. */
        const char *ca = p->opt.cacert ? p->opt.cacert : getenv("MESH_CACERT");
        p->tls_ops->http_tls_set_default_ca(ca && *ca ? ca : NULL);
        mesh_http_client_set_tls(p->tls_ops->http_tls);
    }
    return 0;
}

/* A gateway's HTTPS: its server context, made before the listeners open so that a bad file
 * fails the start in words naming the flag and the file. */
static int load_tls_server(struct mesh_proxy *p)
{
    char *why = NULL;
    if (p->tls_ops->server_ctx_new(p->opt.tls_cert, p->opt.tls_key, &p->tls_server, &why) !=
        MESH_OK) {
        fprintf(stderr, "meshproxy: --tls-cert %s / --tls-key %s: %s\n", p->opt.tls_cert,
                p->opt.tls_key, why ? why : "cannot make a TLS server context");
        free(why);
        p->tls_server = NULL;
        return 1;
    }
    fprintf(stderr, "lvl=info msg=\"serving HTTPS\" cert=%s\n", p->opt.tls_cert);
    return 0;
}

int main(int argc, char **argv)
{
    struct mesh_proxy p = {0};
    uint64_t deregister_wait_ms = 500;
    char *token = NULL, *default_id = NULL;
    defaults(&p.opt);
    int rc = parse_flags(argc, argv, &p.opt, &deregister_wait_ms);
    if (rc >= 0)
        return rc;
    p.n_workers = p.opt.workers;
    if ((rc = parse_listen_addrs(&p)) >= 0)
        return rc;
    if (p.opt.mode != MESH_PROXY_STATIC) {
        if (!p.opt.id) {
            default_id = p.opt.mode == MESH_PROXY_SIDECAR
                             ? xasprintf("%s.%s-%ld", p.opt.service, p.opt.ns, (long)getpid())
                             : xasprintf("%s-%ld", p.opt.gateway, (long)getpid());
            p.opt.id = default_id;
        }
        if (!mesh_control_id_valid(p.opt.id)) {
            rc = usage_error("proxy id \"%s\" is not valid: [a-z0-9][a-z0-9.-]*, at most 63 "
                             "characters (set one with --id)",
                             p.opt.id);
            free(default_id);
            return rc;
        }
        if (!(token = read_token(p.opt.token_path))) {
            free(default_id);
            return 1;
        }
        if (load_tls(&p) != 0 || (p.opt.tls_cert && load_tls_server(&p) != 0)) {
            free(token);
            free(default_id);
            return 1;
        }
    }
    struct mesh_snapshot *first = NULL;
    if (p.opt.mode == MESH_PROXY_STATIC) {
        char *msg = NULL;
        if (mesh_snapshot_load_file(p.opt.config_path, 1, &first, &msg) != MESH_OK) {
            fprintf(stderr, "%s\n", msg ? msg : "meshproxy: cannot load the config");
            free(msg);
            rc = 1;
            goto out;
        }
    } else if (!(first = placeholder())) {
        rc = 1;
        goto out;
    }
    if (p.opt.mode == MESH_PROXY_SIDECAR) {
        char *msg = NULL;
        if (mesh_snapshot_build_inbound(p.opt.service, p.opt.ns, p.opt.app, &p.inbound, &msg) !=
            MESH_OK) {
            fprintf(stderr, "meshproxy: --app %s: %s\n", p.opt.app, msg ? msg : "invalid");
            free(msg);
            rc = 1;
            goto out;
        }
    }
    atomic_init(&p.current, first);
    atomic_init(&p.identity, NULL);
    /* Sidecars and gateways keep a workload certificate; its renewal thread counts into a shard
     * of its own, which the admin listener renders with the workers'. Made before the workers so
     * that worker 0 sees it from its start. */
    if (p.opt.mode != MESH_PROXY_STATIC && mesh_stats_shard_new(16, &p.identity_stats) != MESH_OK) {
        fprintf(stderr, "meshproxy: out of memory\n");
        rc = 1;
        goto out;
    }
    pthread_mutex_init(&p.access_log_lock, NULL);
    pthread_mutex_init(&p.publish_lock, NULL);
    /* Signals are taken by the main thread only: block them before any other thread
     * exists (the tracer's exporter is the first), so that none inherits them unblocked. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (start_tracer(&p, first) != 0) {
        rc = 1;
        goto out;
    }
    if (p.opt.access_log) {
        p.access_log = strcmp(p.opt.access_log, "-") == 0 ? stdout : fopen(p.opt.access_log, "a");
        if (!p.access_log) {
            fprintf(stderr, "meshproxy: --access-log %s: %s\n", p.opt.access_log, strerror(errno));
            rc = 1;
            goto out;
        }
    }
    if (start_workers(&p) != 0) {
        rc = 1;
        goto out;
    }
    /* After the listeners: meshd is told the inbound address really bound. */
    if (p.opt.mode != MESH_PROXY_STATIC && start_control(&p, token) != 0) {
        stop_workers(&p);
        rc = 1;
        goto out;
    }
    rc = serve(&p, deregister_wait_ms);
out:
    mesh_tracer_stop(p.tracer);
    mesh_tracer_free(p.tracer);
    if (p.tls_server)
        p.tls_ops->ctx_free(p.tls_server); /* after the workers: they closed every connection */
    if (p.access_log && p.access_log != stdout)
        fclose(p.access_log);
    free(token);
    free(default_id);
    return rc;
}
