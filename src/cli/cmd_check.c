/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl check`: a checklist of the live mesh (meshd reachable, store healthy, every proxy
 * synced, clock skew), or with --pre of this machine before a first install. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cli.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "proxies.h"
#include "store/store.h"

static int run_check(struct cli_ctx *ctx, int argc, char **argv);

/* Over this, meshd's clock and ours disagree enough to mislead heartbeat ages and logs. */
#define CHECK_MAX_SKEW_MS 1000
/* meshd's default connection limit: fewer open files than this caps it. */
#define CHECK_MIN_NOFILE 4096

const struct cli_command cli_cmd_check = {
    .name = "check",
    .summary = "Check that the mesh is healthy (or, with --pre, that this machine is ready)",
    .usage =
        "Check that the mesh is healthy (or, with --pre, that this machine is ready).\n"
        "\n"
        "Prints one line per check, marked [ok], [FAIL] or [warn], and exits 1 when any check\n"
        "fails (warnings do not fail).\n"
        "\n"
        "Without --pre it asks meshd (--server URL, else $MESH_SERVER, else\n" CLI_DEFAULT_SERVER
        "): meshd is reachable, its store is healthy, every registered proxy\n"
        "acknowledged its latest config, every proxy has a valid workload certificate, the\n"
        "mTLS handshakes that failed since each proxy started (\"TLS handshake failed\", by\n"
        "cause, with the fix), and meshd's clock is within 1s of this machine's.\n"
        "\n"
        "With --pre it checks this machine before a first install, without meshd: meshd,\n"
        "meshproxy and mesh-echo are next to meshctl and executable; the default ports are\n"
        "free (15010 meshd, 15001 outbound, 15006 inbound, 15000 admin); the data directory\n"
        "is writable and a SQLite store works in it; the kernel has epoll and SO_REUSEPORT;\n"
        "the open files limit.\n"
        "\n"
        "Usage:\n"
        "  meshctl check [--server URL]\n"
        "  meshctl check --pre [--data-dir DIR]\n"
        "\n"
        "Flags:\n"
        "      --pre             check this machine instead of the running mesh\n"
        "      --data-dir DIR    with --pre: the directory meshd will keep its data in\n"
        "                        (default ./meshd-data)\n"
        "      --server URL      meshd (default $MESH_SERVER, else " CLI_DEFAULT_SERVER ")\n"
        "      --token FILE      meshd's token, when reads need one (default $MESH_TOKEN_FILE,\n"
        "                        else $MESH_TOKEN)\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl check\n"
        "  meshctl check --pre --data-dir /var/lib/meshd\n",
    .run = run_check,
};

enum {
    OPT_PRE = 300,
    OPT_DATA_DIR,
};

void check_report(struct checklist *cl, enum verdict v, const char *fmt, ...)
{
    static const char *const marks[] = {"[ok]  ", "[warn]", "[FAIL]"};
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", marks[v]);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    if (v == CHECK_FAIL)
        cl->failed++;
    else if (v == CHECK_WARN)
        cl->warned++;
    else
        cl->passed++;
    fflush(stdout); /* a slow check after this one should not hide it */
}

static int summary(const struct checklist *cl)
{
    if (cl->failed)
        printf("%u check%s failed", cl->failed, cl->failed == 1 ? "" : "s");
    else
        printf("All checks passed");
    if (cl->warned)
        printf(" (%u warning%s)", cl->warned, cl->warned == 1 ? "" : "s");
    printf(".\n");
    return cl->failed ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* --- the live mesh --- */

static void check_synced(struct checklist *cl, const struct cli_proxy *list, size_t n)
{
    size_t stale = 0;
    struct mesh_strbuf names;
    mesh_strbuf_init(&names, 0);
    for (size_t i = 0; i < n; i++) {
        if (list[i].synced)
            continue;
        stale++;
        if (*list[i].acked)
            mesh_strbuf_printf(&names, "%s%s (acked %s, latest %s)", names.len ? ", " : "",
                               list[i].id, list[i].acked, list[i].latest ? list[i].latest : "?");
        else
            mesh_strbuf_printf(&names, "%s%s (no config acknowledged yet)", names.len ? ", " : "",
                               list[i].id);
    }
    if (n == 0)
        check_report(cl, CHECK_OK, "every proxy synced: no proxies are registered");
    else if (stale == 0)
        check_report(cl, CHECK_OK, "every proxy synced: %zu of %zu", n, n);
    else
        check_report(cl, CHECK_FAIL, "every proxy synced: %zu of %zu stale: %s", stale, n,
                     names.data ? names.data : "");
    mesh_strbuf_free(&names);
}

static void check_proxies(const struct cli_ctx *ctx, struct checklist *cl)
{
    struct cli_proxy *list = NULL;
    size_t n = 0;
    char *why = NULL;
    if (cli_proxies_fetch(ctx, &list, &n, &why) != MESH_OK) {
        check_report(cl, CHECK_FAIL, "proxies: %s", why);
        free(why);
        return;
    }
    check_synced(cl, list, n);
    check_tls(cl, list, n);
    cli_proxies_free(list, n);
}

static int check_live(const struct cli_ctx *ctx)
{
    struct checklist cl = {0};
    json_t *health = NULL, *version = NULL;
    char *why = NULL, *url = cli_meshd_url(ctx);

    uint64_t sent = cli_now_ms();
    enum mesh_err err = cli_meshd_get_json(ctx, "/v1/health", &health, &why);
    uint64_t got = cli_now_ms();
    if (err == MESH_E_UNAVAILABLE) {
        check_report(&cl, CHECK_FAIL, "meshd reachable: %s", why);
        printf("       (the other checks need meshd: start it with meshd --data-dir DIR, or "
               "point --server or $MESH_SERVER at it)\n");
        goto out;
    }
    if (err != MESH_OK) {
        /* It answered, but not with its health: a refused token, or not meshd at all. */
        check_report(&cl, CHECK_FAIL, "meshd answers: %s", why ? why : mesh_strerror(err));
        goto out;
    }
    free(why);
    why = NULL;
    const char *meshd_version = "?";
    json_int_t store_version = -1;
    if (cli_meshd_get_json(ctx, "/v1/version", &version, &why) == MESH_OK) {
        const char *v = json_string_value(json_object_get(version, "version"));
        meshd_version = v ? v : "?";
        json_t *sv = json_object_get(version, "store_version");
        store_version = json_is_integer(sv) ? json_integer_value(sv) : -1;
    }
    check_report(&cl, CHECK_OK, "meshd reachable at %s (meshd %s, answered in %llu ms)", url,
                 meshd_version, (unsigned long long)(got - sent));

    const char *store = json_string_value(json_object_get(health, "store"));
    const char *status = json_string_value(json_object_get(health, "status"));
    if (store && strcmp(store, "ok") == 0) {
        if (store_version >= 0)
            check_report(&cl, CHECK_OK, "store healthy (store version %lld)",
                         (long long)store_version);
        else
            check_report(&cl, CHECK_OK, "store healthy");
    } else {
        check_report(&cl, CHECK_FAIL, "store healthy: meshd says store \"%s\" (status \"%s\")",
                     store ? store : "?", status ? status : "?");
    }

    check_proxies(ctx, &cl);

    json_t *t = json_object_get(health, "time_ms");
    if (!json_is_integer(t)) {
        check_report(&cl, CHECK_WARN, "clock skew: meshd did not say its time (no time_ms)");
    } else {
        /* meshd read its clock somewhere between our send and our receive: take the middle, and
         * forgive half the round trip. */
        int64_t ours = (int64_t)(sent + (got - sent) / 2);
        int64_t skew = (int64_t)json_integer_value(t) - ours;
        int64_t abs_skew = skew < 0 ? -skew : skew;
        int64_t slack = (int64_t)(got - sent) / 2;
        if (abs_skew - slack > CHECK_MAX_SKEW_MS)
            check_report(
                &cl, CHECK_WARN,
                "clock skew: meshd's clock is %lld ms %s this machine's (over %d ms: heartbeat "
                "ages and logs will disagree)",
                (long long)abs_skew, skew > 0 ? "ahead of" : "behind", CHECK_MAX_SKEW_MS);
        else
            check_report(&cl, CHECK_OK, "clock skew: %lld ms between meshd and this machine",
                         (long long)abs_skew);
    }
out:
    json_decref(health);
    json_decref(version);
    free(why);
    free(url);
    return summary(&cl);
}

/* --- this machine, before a first install --- */

/* The directory meshctl runs from, where make and installs put the other binaries. */
static char *self_dir(void)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n <= 0)
        return NULL;
    path[n] = '\0';
    return xstrdup(dirname(path));
}

static void check_binaries(struct checklist *cl)
{
    static const struct {
        const char *name;
        bool required;
        const char *role;
    } bins[] = {
        {"meshd", true, "control plane"},
        {"meshproxy", true, "sidecar and gateway proxy"},
        {"mesh-echo", false, "demo upstream"},
    };
    char *dir = self_dir();
    if (!dir) {
        check_report(cl, CHECK_FAIL, "binaries: cannot tell where meshctl is (/proc/self/exe: %s)",
                     strerror(errno));
        return;
    }
    for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
        char *path = xasprintf("%s/%s", dir, bins[i].name);
        struct stat st;
        if (stat(path, &st) != 0)
            check_report(cl, bins[i].required ? CHECK_FAIL : CHECK_WARN, "%s (%s): %s: %s",
                         bins[i].name, bins[i].role, path, strerror(errno));
        else if (!S_ISREG(st.st_mode) || access(path, X_OK) != 0)
            check_report(cl, bins[i].required ? CHECK_FAIL : CHECK_WARN,
                         "%s (%s): %s is not executable", bins[i].name, bins[i].role, path);
        else
            check_report(cl, CHECK_OK, "%s (%s): %s", bins[i].name, bins[i].role, path);
        free(path);
    }
    free(dir);
}

/* Binds 127.0.0.1:port as a server would (SO_REUSEADDR, so that connections in TIME_WAIT from a
 * previous run do not count as a user of the port). */
static int try_bind(uint16_t port, int *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

static void check_ports(struct checklist *cl)
{
    static const struct {
        uint16_t port;
        const char *what;
    } ports[] = {
        {15010, "meshd API"},
        {15001, "meshproxy outbound"},
        {15006, "meshproxy inbound"},
        {15000, "meshproxy admin"},
    };
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        int err = 0, fd = try_bind(ports[i].port, &err);
        if (fd >= 0) {
            close(fd);
            check_report(cl, CHECK_OK, "port %u (%s) is free", ports[i].port, ports[i].what);
        } else if (err == EADDRINUSE) {
            check_report(cl, CHECK_FAIL,
                         "port %u (%s) is in use: stop what listens there or give another address",
                         ports[i].port, ports[i].what);
        } else {
            check_report(cl, CHECK_FAIL, "port %u (%s): cannot bind: %s", ports[i].port,
                         ports[i].what, strerror(err));
        }
    }
}

/* Creates dir (and its parents) as meshd would, mode 0700. Returns false with errno set. */
static bool make_dirs(const char *dir)
{
    char *copy = xstrdup(dir);
    bool ok = true;
    for (char *p = copy + 1; ok && *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        ok = mkdir(copy, 0700) == 0 || errno == EEXIST;
        *p = '/';
    }
    ok = ok && (mkdir(copy, 0700) == 0 || errno == EEXIST);
    free(copy);
    return ok;
}

/* The data directory: writable (a file written, synced and removed), then a SQLite store
 * opened in it through meshd's own store code, written and read back. A directory that does not
 * exist yet is created for the test and removed again. */
static void check_data_dir(struct checklist *cl, const char *dir)
{
    struct stat st;
    bool created = false;
    char *probe = NULL, *store_dir = NULL, *why = NULL;
    struct mesh_store *store = NULL;

    if (stat(dir, &st) != 0) {
        if (!make_dirs(dir)) {
            check_report(cl, CHECK_FAIL, "data directory %s: cannot create it: %s", dir,
                         strerror(errno));
            return;
        }
        created = true;
    } else if (!S_ISDIR(st.st_mode)) {
        check_report(cl, CHECK_FAIL, "data directory %s: not a directory", dir);
        return;
    }
    probe = xasprintf("%s/.meshctl-check-XXXXXX", dir);
    int fd = mkstemp(probe);
    if (fd < 0) {
        check_report(cl, CHECK_FAIL, "data directory %s is not writable: %s", dir, strerror(errno));
        goto out;
    }
    bool ok = write(fd, "check\n", 6) == 6 && fsync(fd) == 0;
    int werr = errno;
    close(fd);
    unlink(probe);
    if (!ok) {
        check_report(cl, CHECK_FAIL, "data directory %s: cannot write and sync a file: %s", dir,
                     strerror(werr));
        goto out;
    }
    check_report(cl, CHECK_OK, "data directory %s is writable%s", dir,
                 created ? " (created for the check, then removed)" : "");

    store_dir = xasprintf("%s/.meshctl-check-store-%ld", dir, (long)getpid());
    struct mesh_store_put_result put;
    struct mesh_store_record rec = {0};
    enum mesh_err err = mesh_store_open_sqlite(store_dir, &store, &why);
    if (err == MESH_OK)
        err = store->ops->put(store, "Check", "default", "probe", "{\"ok\":true}", 0, &put);
    if (err == MESH_OK)
        err = store->ops->get(store, "Check", "default", "probe", &rec);
    if (err == MESH_OK && (!rec.body || strcmp(rec.body, "{\"ok\":true}") != 0))
        err = MESH_E_IO;
    if (err == MESH_OK)
        check_report(cl, CHECK_OK, "SQLite store works in %s (WAL, written and read back)", dir);
    else
        check_report(cl, CHECK_FAIL, "SQLite store in %s: %s", dir,
                     why     ? why
                     : store ? mesh_store_error(store)
                             : mesh_strerror(err));
    mesh_store_record_clear(&rec);
out:
    mesh_store_close(store);
    if (store_dir) {
        const char *files[] = {"mesh.db", "mesh.db-wal", "mesh.db-shm", "mesh.db-journal"};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
            char *f = xasprintf("%s/%s", store_dir, files[i]);
            unlink(f);
            free(f);
        }
        rmdir(store_dir);
    }
    if (created)
        rmdir(dir);
    free(store_dir);
    free(probe);
    free(why);
}

/* epoll, and SO_REUSEPORT really sharing a port between two listeners (one per worker). */
static void check_kernel(struct checklist *cl)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        check_report(cl, CHECK_FAIL, "kernel: epoll_create1: %s", strerror(errno));
    } else {
        close(ep);
        check_report(cl, CHECK_OK, "kernel: epoll");
    }
    int fds[2] = {-1, -1}, one = 1;
    const char *step = "socket";
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 2; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0)
            goto fail;
        step = "setsockopt(SO_REUSEPORT)";
        if (setsockopt(fds[i], SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
            goto fail;
        step = i == 0 ? "bind" : "bind a second socket to the same port";
        if (bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) != 0)
            goto fail;
        step = "getsockname";
        if (i == 0 && getsockname(fds[0], (struct sockaddr *)&sa, &len) != 0)
            goto fail;
        step = "listen";
        if (listen(fds[i], 1) != 0)
            goto fail;
        step = "socket";
    }
    check_report(cl, CHECK_OK, "kernel: SO_REUSEPORT (one listener per worker)");
    goto out;
fail:
    check_report(cl, CHECK_FAIL, "kernel: SO_REUSEPORT: %s: %s", step, strerror(errno));
out:
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static void check_nofile(struct checklist *cl)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        check_report(cl, CHECK_WARN, "open files limit: getrlimit: %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < CHECK_MIN_NOFILE)
        check_report(
            cl, CHECK_WARN,
            "open files limit is %llu: under %d, meshd and meshproxy cannot hold their default "
            "connection limits (raise it with ulimit -n)",
            (unsigned long long)rl.rlim_cur, CHECK_MIN_NOFILE);
    else if (rl.rlim_cur == RLIM_INFINITY)
        check_report(cl, CHECK_OK, "open files limit: unlimited");
    else
        check_report(cl, CHECK_OK, "open files limit: %llu", (unsigned long long)rl.rlim_cur);
}

static int check_pre(const char *data_dir)
{
    struct checklist cl = {0};
    check_binaries(&cl);
    check_ports(&cl);
    check_data_dir(&cl, data_dir);
    check_kernel(&cl);
    check_nofile(&cl);
    return summary(&cl);
}

static int run_check(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = {
        {"pre", no_argument, NULL, OPT_PRE},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_check;
    bool pre = false;
    const char *data_dir = NULL;
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_PRE:
            pre = true;
            break;
        case OPT_DATA_DIR:
            if (!*optarg)
                return cli_usage_error(cmd, "--data-dir needs a directory");
            data_dir = optarg;
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "check takes no arguments (got \"%s\")", argv[optind]);
    if (data_dir && !pre)
        return cli_usage_error(cmd, "--data-dir goes with --pre");
    if (pre)
        return check_pre(data_dir ? data_dir : "./meshd-data");
    if (!cli_server(ctx) && ctx->store_dir)
        return cli_usage_error(cmd, "check needs meshd (--server URL), not an embedded store; "
                                    "--pre checks this machine");
    return check_live(ctx);
}
