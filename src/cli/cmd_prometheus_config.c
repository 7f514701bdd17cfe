/* SPDX-License-Identifier: Apache-2.0 */
/* `meshctl prometheus-config`: a Prometheus configuration that finds every proxy through meshd's
 * HTTP service discovery (GET /v1/prometheus/targets) and scrapes its admin /metrics. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "model/schema.h"
#include "proxies.h"

#define DEFAULT_INTERVAL_MS 5000ull
/* Prometheus' own default scrape timeout; a scrape may never take longer than the interval. */
#define MAX_TIMEOUT_MS 10000ull
#define JOB_NAME       "mesh-proxies"

static int run_prometheus_config(struct cli_ctx *ctx, int argc, char **argv);

const struct cli_command cli_cmd_prometheus_config = {
    .name = "prometheus-config",
    .summary = "Print a Prometheus scrape config that finds the proxies through meshd",
    .usage =
        "Print a Prometheus scrape config that discovers every proxy through meshd.\n"
        "\n"
        "The config's job, " JOB_NAME ", uses Prometheus' HTTP service discovery on meshd's\n"
        "GET /v1/prometheus/targets: every live sidecar and gateway's admin /metrics, with the\n"
        "labels mesh_proxy, mesh_role, mesh_namespace and mesh_service (sidecars) or\n"
        "mesh_gateway (gateways). Proxies that start or stop are picked up at the next refresh.\n"
        "\n"
        "meshd answers reads from loopback without a token unless it runs with --auth-reads;\n"
        "with --token FILE (or $MESH_TOKEN_FILE) the config makes Prometheus send that file's\n"
        "token (authorization.credentials_file), as it must from another host. The token itself\n"
        "is never printed. meshd is not contacted.\n"
        "\n"
        "Usage:\n"
        "  meshctl prometheus-config [--server URL] [--token FILE] [--interval DURATION]\n"
        "\n"
        "Flags:\n"
        "      --interval DURATION  how often Prometheus scrapes the proxies and asks meshd for\n"
        "                           them (default 5s)\n"
        "      --server URL         meshd as Prometheus reaches it (default $MESH_SERVER, else\n"
        "                           " CLI_DEFAULT_SERVER ")\n"
        "      --token FILE         meshd's token file, for Prometheus to send\n"
        "      --cacert FILE        with an https:// server: the CA Prometheus checks meshd with\n"
        "  -h, --help               show this help\n"
        "\n"
        "Examples:\n"
        "  meshctl prometheus-config > prometheus.yml && prometheus --config.file=prometheus.yml\n"
        "  meshctl prometheus-config --server http://10.0.0.5:15010 --token /var/lib/mesh/token\n",
    .run = run_prometheus_config,
};

/* A YAML double-quoted scalar. */
static void put_quoted(struct mesh_strbuf *out, const char *s)
{
    mesh_strbuf_puts(out, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            mesh_strbuf_printf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            mesh_strbuf_printf(out, "\\x%02x", (unsigned char)*s);
        else
            mesh_strbuf_append(out, s, 1);
    }
    mesh_strbuf_puts(out, "\"");
}

/* The file Prometheus reads the token from: --token FILE, else $MESH_TOKEN_FILE, as an absolute
 * path (Prometheus resolves relative ones against its config file's directory, not our cwd).
 * NULL when none is set; *failed after printing why the file cannot be used. */
static char *token_file(const struct cli_ctx *ctx, bool *failed)
{
    const char *env = getenv("MESH_TOKEN_FILE");
    const char *file = ctx->token_file ? ctx->token_file : env && env[0] ? env : NULL;
    char *token = NULL;
    *failed = false;
    if (!file) {
        const char *text = getenv("MESH_TOKEN");
        if (text && text[0])
            fputs("warning: the token in $MESH_TOKEN is not written into the config (tokens are "
                  "never printed); pass --token FILE for Prometheus to send it\n",
                  stderr);
        return NULL;
    }
    /* The same checks as every other command: the file must hold a token. */
    if (!cli_token(ctx, &token)) {
        *failed = true;
        return NULL;
    }
    free(token);
    char *abs = realpath(file, NULL);
    if (!abs) {
        cli_error("cannot resolve the token file %s", file);
        *failed = true;
    }
    return abs;
}

static int run_prometheus_config(struct cli_ctx *ctx, int argc, char **argv)
{
    enum { OPT_INTERVAL = 1000 };
    static const struct option opts[] = {
        {"interval", required_argument, NULL, OPT_INTERVAL},
        CLI_GLOBAL_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct cli_command *cmd = &cli_cmd_prometheus_config;
    unsigned long long interval_ms = DEFAULT_INTERVAL_MS;
    char why[256];
    int c, rc;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_INTERVAL:
            if (!mesh_duration_parse(optarg, &interval_ms, why, sizeof(why)))
                return cli_usage_error(cmd, "--interval: %s", why);
            if (interval_ms == 0)
                return cli_usage_error(cmd, "--interval: must be longer than 0");
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
    if (ctx->store_dir && !ctx->server)
        return cli_usage_error(cmd, "prometheus-config needs meshd (--server URL): an embedded "
                                    "store has no proxies to discover");

    bool failed;
    char *token = token_file(ctx, &failed);
    if (failed)
        return CLI_EXIT_ERROR;
    char *server = cli_meshd_url(ctx);
    const char *cacert = cli_cacert(ctx);
    char *ca_abs = NULL;
    if (cacert && strncmp(server, "https://", 8) == 0 && !(ca_abs = realpath(cacert, NULL))) {
        free(token);
        free(server);
        return cli_error("cannot resolve the CA file %s", cacert);
    }

    char interval[32], timeout[32];
    cli_format_duration(interval_ms, interval, sizeof(interval));
    cli_format_duration(interval_ms < MAX_TIMEOUT_MS ? interval_ms : MAX_TIMEOUT_MS, timeout,
                        sizeof(timeout));
    struct mesh_strbuf out;
    mesh_strbuf_init(&out, 0);
    mesh_strbuf_printf(
        &out,
        "# Prometheus configuration for ClusterDB Mesh (meshctl prometheus-config).\n"
        "# Every sidecar and gateway registered with meshd is found through its HTTP\n"
        "# service discovery and scraped at its admin /metrics; see\n"
        "# docs/observability.md. To add the job to an existing Prometheus, copy\n"
        "# the entry under scrape_configs.\n"
        "global:\n"
        "  scrape_interval: %s\n"
        "  scrape_timeout: %s\n"
        "  evaluation_interval: %s\n"
        "scrape_configs:\n"
        "  - job_name: " JOB_NAME "\n"
        "    scrape_interval: %s\n"
        "    scrape_timeout: %s\n"
        "    metrics_path: /metrics\n"
        "    http_sd_configs:\n"
        "      - url: ",
        interval, timeout, interval, interval, timeout);
    char *sd_url = xasprintf("%s/v1/prometheus/targets", server);
    put_quoted(&out, sd_url);
    mesh_strbuf_printf(&out, "\n        refresh_interval: %s\n", interval);
    if (token) {
        mesh_strbuf_puts(&out, "        authorization:\n"
                               "          type: Bearer\n"
                               "          credentials_file: ");
        put_quoted(&out, token);
        mesh_strbuf_puts(&out, "\n");
    }
    if (ca_abs) {
        mesh_strbuf_puts(&out, "        tls_config:\n"
                               "          ca_file: ");
        put_quoted(&out, ca_abs);
        mesh_strbuf_puts(&out, "\n");
    }
    fputs(out.data, stdout);
    mesh_strbuf_free(&out);
    free(sd_url);
    free(ca_abs);
    free(server);
    free(token);
    return CLI_EXIT_OK;
}
