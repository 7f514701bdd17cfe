/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl dashboards`: the mesh's Grafana dashboards, written as JSON files or pushed to
 * Grafana through its HTTP API. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "core/xalloc.h"
#include "provider/dashboards.h"
#include "provider/grafana.h"

static int run_dashboards(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_dashboards = {
    .name = "dashboards",
    .summary = "Write the mesh's Grafana dashboards, or push them to Grafana",
    .usage =
        "Write the mesh's Grafana dashboards, or push them to Grafana.\n"
        "\n"
        "Three dashboards, for a Prometheus that scrapes the proxies as `meshctl\n"
        "prometheus-config` sets it up: mesh-overview.json (every service: requests per second,\n"
        "success rate, p99 latency, circuit breaker overflows, outlier ejections),\n"
        "mesh-service.json (one service: requests by code and endpoint, success rate,\n"
        "p50/p95/p99 latency, overflows, ejections, retries) and mesh-proxy.json (one proxy:\n"
        "connections, memory, CPU, traffic). Each asks for its Prometheus data source when\n"
        "imported.\n"
        "\n"
        "With --push they are created (or replaced: same uid) in Grafana through its HTTP API,\n"
        "at --grafana URL, else at the grafana_endpoint of every ObservabilityConfig stored in\n"
        "the mesh (--store or --server). Credentials: $" MESH_GRAFANA_TOKEN_ENV " (a service\n"
        "account token with the Editor role), else user:password in --grafana's URL, else\n"
        "$" MESH_GRAFANA_USER_ENV " and $" MESH_GRAFANA_PASSWORD_ENV ", else none.\n"
        "\n"
        "Usage:\n"
        "  meshctl dashboards [-o DIR]\n"
        "  meshctl dashboards --push [--grafana URL] [-o DIR]\n"
        "\n"
        "Flags:\n"
        "  -o, --output-dir DIR  write the JSON files into DIR (default: the current directory;\n"
        "                        created when absent). With --push, only when given\n"
        "      --push            push the dashboards to Grafana\n"
        "      --grafana URL     Grafana's URL (http://127.0.0.1:3000), instead of the stored\n"
        "                        ObservabilityConfig's\n"
        "  -h, --help            show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl dashboards -o /var/lib/grafana/dashboards/mesh\n"
        "  MESH_GRAFANA_TOKEN=glsa_... meshctl dashboards --push --grafana http://127.0.0.1:3000\n",
    .run = run_dashboards,
};

static int write_file(const char *dir, const struct mesh_dashboard *d)
{
    char *path = xasprintf("%s/%s", dir, d->file);
    char *tmp = xasprintf("%s.tmp", path);
    char *text = json_dumps(d->json, JSON_INDENT(2));
    int rc = CLI_EXIT_OK;
    FILE *f = NULL;

    if (!text) {
        rc = cli_error("out of memory");
        goto out;
    }
    /* Written aside and renamed into place: Grafana's file provisioning never reads half. */
    f = fopen(tmp, "w");
    if (!f) {
        rc = cli_error("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    bool failed = fputs(text, f) == EOF || fputc('\n', f) == EOF;
    failed = fclose(f) != 0 || failed;
    if (failed || rename(tmp, path) != 0) {
        rc = cli_error("cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        goto out;
    }
    printf("wrote %s (%s)\n", path, d->title);
out:
    free(text);
    free(tmp);
    free(path);
    return rc;
}

static int write_all(const char *dir, const struct mesh_dashboard *list, size_t n)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cli_error("cannot create %s: %s", dir, strerror(errno));
    for (size_t i = 0; i < n; i++) {
        int rc = write_file(dir, &list[i]);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    return CLI_EXIT_OK;
}

static int push_to(const char *url, const struct mesh_dashboard *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *where = NULL, *why = NULL;
        enum mesh_err err = mesh_grafana_push(url, NULL, list[i].json, &where, &why);
        if (err != MESH_OK) {
            int rc = cli_error("%s", why ? why : mesh_strerror(err));
            free(why);
            return rc;
        }
        char *shown = mesh_grafana_redact(url);
        printf("pushed %s to %s\n", list[i].uid, where ? where : shown);
        free(shown);
        free(where);
    }
    return CLI_EXIT_OK;
}

/* The distinct grafana_endpoints of the stored ObservabilityConfigs (caller frees each and the
 * array); CLI_EXIT_ERROR after printing why when the mesh cannot be read or none has one. */
static int stored_endpoints(const struct cli_ctx *ctx, char ***out, size_t *n)
{
    struct mesh *mesh = NULL;
    struct mesh_resource **list = NULL;
    size_t len = 0;
    int rc = CLI_EXIT_OK;

    *out = NULL;
    *n = 0;
    if (cli_open(ctx, &mesh) != MESH_OK)
        return CLI_EXIT_ERROR;
    enum mesh_err err = mesh_list(mesh, MESH_KIND_OBSERVABILITY_CONFIG, NULL, &list, &len);
    if (err != MESH_OK) {
        rc = cli_error("cannot read the ObservabilityConfigs: %s", mesh_last_error(mesh));
        goto out;
    }
    *out = xcalloc(len + 1, sizeof(**out));
    for (size_t i = 0; i < len; i++) {
        const char *url = ((const struct mesh_observability_config *)list[i])->grafana_endpoint;
        bool seen = !url;
        for (size_t k = 0; !seen && k < *n; k++)
            seen = strcmp((*out)[k], url) == 0;
        if (!seen)
            (*out)[(*n)++] = xstrdup(url);
    }
    if (*n == 0)
        rc = cli_error("no Grafana to push to: give --grafana URL, or store an "
                       "ObservabilityConfig with a grafana_endpoint (see "
                       "examples/observability.yaml)");
out:
    for (size_t i = 0; i < len; i++)
        mesh_resource_free(list[i]);
    free(list);
    mesh_free(mesh);
    return rc;
}

static int run_dashboards(struct cli_ctx *ctx, int argc, char **argv)
{
    enum { OPT_PUSH = 1000, OPT_GRAFANA };
    static const struct option opts[] = {
        {"output-dir", required_argument, NULL, 'o'},
        {"push", no_argument, NULL, OPT_PUSH},
        {"grafana", required_argument, NULL, OPT_GRAFANA},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_dashboards;
    const char *dir = NULL, *grafana = NULL;
    bool push = false;
    struct mesh_dashboard *list = NULL;
    size_t n = 0, n_urls = 0;
    char **urls = NULL;
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (!*optarg)
                return cli_usage_error(cmd, "-o needs a directory");
            dir = optarg;
            break;
        case OPT_PUSH:
            push = true;
            break;
        case OPT_GRAFANA:
            if (!*optarg)
                return cli_usage_error(cmd, "--grafana needs a URL (http://127.0.0.1:3000)");
            grafana = optarg;
            break;
        default:
            rc = cli_common_option(ctx, cmd, c, optarg, argv);
            if (rc != CLI_CONTINUE)
                return rc;
            break;
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (grafana && !push)
        return cli_usage_error(cmd, "--grafana goes with --push");
    if (mesh_dashboards_build(&list, &n) != MESH_OK)
        return cli_error("out of memory building the dashboards");
    rc = CLI_EXIT_OK;
    if (dir || !push)
        rc = write_all(dir ? dir : ".", list, n);
    if (rc != CLI_EXIT_OK || !push)
        goto out;
    if (grafana) {
        rc = push_to(grafana, list, n);
        goto out;
    }
    rc = stored_endpoints(ctx, &urls, &n_urls);
    for (size_t i = 0; i < n_urls && rc == CLI_EXIT_OK; i++)
        rc = push_to(urls[i], list, n);
out:
    for (size_t i = 0; i < n_urls; i++)
        free(urls[i]);
    free(urls);
    mesh_dashboards_free(list, n);
    return rc;
}
