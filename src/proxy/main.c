/* SPDX-License-Identifier: Apache-2.0 */
/* meshproxy: flags, the first snapshot, workers, and the main thread's signal loop (SIGHUP
 * reloads, SIGTERM drains) with the outlier sweeps. */
#define _GNU_SOURCE /* sched_getaffinity */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/xalloc.h"
#include "net/sock.h"
#include "proxy.h"

static const char usage[] =
    "Usage: meshproxy --config FILE --listen ADDR --admin ADDR [options]\n"
    "\n"
    "An L7 HTTP/1.1 proxy that routes by the resource documents in FILE (Service endpoints,\n"
    "VirtualService, CircuitBreaker, FaultInjection), as meshctl applies them.\n"
    "\n"
    "  --config FILE            resource documents (YAML or JSON); SIGHUP re-reads it\n"
    "  --listen ADDR            where clients connect, e.g. 127.0.0.1:15001\n"
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
    "Signals: SIGHUP reloads FILE (a bad file is refused and the running config stays);\n"
    "SIGTERM or SIGINT stops accepting, finishes in-flight requests, and exits 0.\n";

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
    OPT_VERSION
};

static int parse_flags(int argc, char **argv, struct mesh_proxy_options *o)
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
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
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
        case 'h':
            fputs(usage, stdout);
            return 0;
        case OPT_VERSION:
            printf("meshproxy %s\n", MESH_VERSION);
            return 0;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown flag %s", argv[optind - 1]);
        }
        if (dur && !parse_duration(optarg, dur))
            return usage_error("invalid duration \"%s\": use 500ms, 10s or 1m", optarg);
    }
    if (optind < argc)
        return usage_error("unexpected argument \"%s\"", argv[optind]);
    if (!o->config_path || !o->listen || !o->admin)
        return usage_error("%s", "--config, --listen and --admin are required");
    return -1;
}

void mesh_access_log(struct mesh_proxy *p, const char *line, size_t len)
{
    pthread_mutex_lock(&p->access_log_lock);
    fwrite(line, 1, len, p->access_log);
    fflush(p->access_log);
    pthread_mutex_unlock(&p->access_log_lock);
}

/* --- publication of snapshots --- */

/* Stores s as current and frees the old one once every worker has moved past it. */
static void publish(struct mesh_proxy *p, struct mesh_snapshot *s)
{
    uint64_t seen[MESH_PROXY_MAX_WORKERS];
    for (unsigned i = 0; i < p->n_workers; i++)
        seen[i] = atomic_load(&p->workers[i].epoch);
    struct mesh_snapshot *old = atomic_exchange(&p->current, s);
    for (unsigned i = 0; i < p->n_workers; i++) {
        uint64_t deadline = monotonic_ms() + 5000;
        while (atomic_load(&p->workers[i].epoch) <= seen[i] + 1 && monotonic_ms() < deadline)
            nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    mesh_snapshot_unref(old);
}

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
    publish(p, s);
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

/* --- start and stop --- */

static int start_workers(struct mesh_proxy *p)
{
    char why[256];
    struct sockaddr_storage admin;
    socklen_t admin_len;
    int admin_fd = -1;
    if (mesh_sock_parse_addr(p->opt.admin, MESH_SOCK_F_RESOLVE, &admin, &admin_len, why,
                             sizeof(why)) != MESH_OK ||
        mesh_sock_listen((const struct sockaddr *)&admin, admin_len, 0, &admin_fd, why,
                         sizeof(why)) != MESH_OK) {
        fprintf(stderr, "meshproxy: admin %s: %s\n", p->opt.admin, why);
        return 1;
    }
    p->workers = xcalloc(p->n_workers, sizeof(*p->workers));
    for (unsigned i = 0; i < p->n_workers; i++) {
        struct mesh_worker *w = &p->workers[i];
        if (mesh_worker_init(w, p, i) != MESH_OK ||
            mesh_worker_listen(w, why, sizeof(why)) != MESH_OK) {
            fprintf(stderr, "meshproxy: listen %s: %s\n", p->opt.listen, why);
            return 1;
        }
    }
    mesh_worker_listen_admin(&p->workers[0], admin_fd);
    for (unsigned i = 0; i < p->n_workers; i++)
        if (mesh_worker_start(&p->workers[i]) != MESH_OK)
            return 1;
    return 0;
}

static void stop_workers(struct mesh_proxy *p)
{
    atomic_store(&p->draining, true);
    for (unsigned i = 0; i < p->n_workers; i++)
        mesh_worker_join(&p->workers[i]);
    for (unsigned i = 0; i < p->n_workers; i++)
        mesh_stats_shard_free(p->workers[i].st.shard);
    free(p->workers);
    mesh_snapshot_unref(atomic_load(&p->current));
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

static int serve(struct mesh_proxy *p)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    uint64_t version = 1;
    fprintf(stderr, "meshproxy listening on %s with %u workers, admin on %s\n", p->opt.listen,
            p->n_workers, p->opt.admin);
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &(struct timespec){0, 100000000});
        if (sig == SIGHUP) {
            reload(p, &version);
        } else if (sig == SIGTERM || sig == SIGINT) {
            fprintf(stderr, "lvl=info msg=\"draining\" signal=%s\n", strsignal(sig));
            stop_workers(p);
            fprintf(stderr, "lvl=info msg=\"stopped\"\n");
            return 0;
        }
        uint64_t now = monotonic_ms();
        mesh_cluster_states_foreach(sweep, &now);
    }
}

int main(int argc, char **argv)
{
    struct mesh_proxy p = {0};
    defaults(&p.opt);
    int rc = parse_flags(argc, argv, &p.opt);
    if (rc >= 0)
        return rc;
    p.n_workers = p.opt.workers;
    char why[256];
    if (mesh_sock_parse_addr(p.opt.listen, MESH_SOCK_F_RESOLVE, &p.listen_addr, &p.listen_addrlen,
                             why, sizeof(why)) != MESH_OK)
        return usage_error("--listen: %s", why);
    struct mesh_snapshot *first = NULL;
    char *msg = NULL;
    if (mesh_snapshot_load_file(p.opt.config_path, 1, &first, &msg) != MESH_OK) {
        fprintf(stderr, "%s\n", msg ? msg : "meshproxy: cannot load the config");
        free(msg);
        return 1;
    }
    atomic_init(&p.current, first);
    pthread_mutex_init(&p.access_log_lock, NULL);
    if (p.opt.access_log) {
        p.access_log = strcmp(p.opt.access_log, "-") == 0 ? stdout : fopen(p.opt.access_log, "a");
        if (!p.access_log) {
            fprintf(stderr, "meshproxy: --access-log %s: %s\n", p.opt.access_log, strerror(errno));
            return 1;
        }
    }
    /* Signals are taken by the main thread only: block them before the workers exist. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (start_workers(&p) != 0)
        return 1;
    rc = serve(&p);
    if (p.access_log && p.access_log != stdout)
        fclose(p.access_log);
    return rc;
}
