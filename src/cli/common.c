/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers every meshctl command uses: error lines, usage errors, kinds, global flags, opening the
 * mesh (embedded store or meshd) and calling meshd. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "net/http_client.h"
#include "net/http_client_tls.h"

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_ERROR;
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "Run 'meshctl help %s' for usage.\n", cmd->name);
    else
        fputs("Run 'meshctl help' for usage.\n", stderr);
    return CLI_EXIT_USAGE;
}

int cli_bad_option(const struct cli_command *cmd, int c, char **argv)
{
    /* getopt leaves optind just past the offending word for long options and for the last
     * letter of a short cluster; a short option is best named by optopt alone. */
    const char *word = optind > 0 ? argv[optind - 1] : "";
    char shortname[3] = {'-', 0, 0};
    const char *name = word;
    if (optopt > 0 && optopt < 256 && isprint(optopt) && strncmp(word, "--", 2) != 0) {
        shortname[1] = (char)optopt;
        name = shortname;
    }
    if (c == ':')
        return cli_usage_error(cmd, "flag needs an argument: %s", name);
    return cli_usage_error(cmd, "unknown flag: %s", name);
}

int cli_help(const struct cli_command *cmd)
{
    fputs(cmd->usage, stdout);
    return CLI_EXIT_OK;
}

int cli_global_option(struct cli_ctx *ctx, const struct cli_command *cmd, int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_STORE:
        if (!*arg)
            return cli_usage_error(cmd, "--store needs a directory");
        ctx->store_dir = arg;
        return CLI_EXIT_OK;
    case CLI_OPT_SERVER:
        if (!*arg)
            return cli_usage_error(cmd, "--server needs a URL (http://127.0.0.1:15010)");
        ctx->server = arg;
        return CLI_EXIT_OK;
    case CLI_OPT_TOKEN:
        if (!*arg)
            return cli_usage_error(cmd, "--token needs a file (meshd's DATA_DIR/token)");
        ctx->token_file = arg;
        return CLI_EXIT_OK;
    case CLI_OPT_CACERT:
        if (!*arg)
            return cli_usage_error(cmd, "--cacert needs a file (the PEM CA bundle that signed "
                                        "meshd's certificate)");
        ctx->cacert = arg;
        return CLI_EXIT_OK;
    default:
        return -1;
    }
}

int cli_common_option(struct cli_ctx *ctx, const struct cli_command *cmd, int c, const char *arg,
                      char **argv)
{
    int rc;

    switch (c) {
    case CLI_OPT_STORE:
    case CLI_OPT_SERVER:
    case CLI_OPT_TOKEN:
    case CLI_OPT_CACERT:
        rc = cli_global_option(ctx, cmd, c, arg);
        return rc == CLI_EXIT_OK ? CLI_CONTINUE : rc;
    case 'h':
        return cli_help(cmd);
    default:
        return cli_bad_option(cmd, c, argv);
    }
}

int cli_output_json(const struct cli_command *cmd, const char *arg, bool *json)
{
    if (strcmp(arg, "json") == 0)
        *json = true;
    else if (strcmp(arg, "table") == 0)
        *json = false;
    else
        return cli_usage_error(cmd, "unknown output format \"%s\" (use table or json)", arg);
    return CLI_CONTINUE;
}

const char *cli_cacert(const struct cli_ctx *ctx)
{
    const char *env = getenv("MESH_CACERT");
    if (ctx->cacert && ctx->cacert[0])
        return ctx->cacert;
    return env && env[0] ? env : NULL;
}

const char *cli_server(const struct cli_ctx *ctx)
{
    const char *env = getenv("MESH_SERVER");

    /* Every path to meshd asks for the server first: the place to make https:// work, for
     * the calls made through libmesh and those meshctl makes itself alike. */
    mesh_http_client_tls_install();
    mesh_http_client_tls_set_default_ca(cli_cacert(ctx));
    if (ctx->server && ctx->server[0])
        return ctx->server;
    if (ctx->store_dir)
        return NULL;
    return env && env[0] ? env : NULL;
}

/* The first line of path, blanks trimmed, in a new string; NULL after printing why. */
static char *read_token_file(const char *path, const char *from)
{
    char buf[4097];
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("cannot read the token file %s%s: %s", path, from, strerror(errno));
        return NULL;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        cli_error("cannot read the token file %s%s: %s", path, from, strerror(errno));
        return NULL;
    }
    buf[n] = '\0';
    char *p = buf;
    while (isspace((unsigned char)*p))
        p++;
    p[strcspn(p, "\r\n")] = '\0';
    size_t len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        p[--len] = '\0';
    if (len == 0) {
        cli_error("the token file %s%s is empty", path, from);
        return NULL;
    }
    return xstrdup(p);
}

bool cli_token(const struct cli_ctx *ctx, char **out)
{
    const char *file = getenv("MESH_TOKEN_FILE");
    const char *env = getenv("MESH_TOKEN");

    *out = NULL;
    if (ctx->token_file)
        return (*out = read_token_file(ctx->token_file, "")) != NULL;
    if (file && file[0])
        return (*out = read_token_file(file, " (from $MESH_TOKEN_FILE)")) != NULL;
    if (env && env[0])
        *out = xstrdup(env);
    return true;
}

enum mesh_err cli_open(const struct cli_ctx *ctx, struct mesh **out)
{
    const char *server = cli_server(ctx);
    char *token = NULL, *msg = NULL;
    enum mesh_err err;

    *out = NULL;
    if (ctx->provider && strcmp(ctx->provider, "native") != 0) {
        struct mesh_config kube = {.provider = ctx->provider,
                                   .kubeconfig = ctx->kubeconfig,
                                   .context = ctx->context,
                                   .version = ctx->version};
        err = mesh_new_verbose(&kube, out, &msg);
        if (err != MESH_OK)
            cli_error("%s", msg && *msg ? msg : mesh_strerror(err));
        free(msg);
        return err;
    }
    if (server && ctx->store_dir && ctx->server) {
        cli_error("give --store DIR (embedded store) or --server URL (meshd), not both");
        return MESH_E_INVALID;
    }
    /* Read here rather than by libmesh so that --token FILE and the messages are meshctl's. */
    if (server && !cli_token(ctx, &token))
        return MESH_E_IO;
    struct mesh_config cfg = {.provider = NULL,
                              .store_dir = ctx->store_dir,
                              .server = server,
                              .token = token,
                              .ca_file = cli_cacert(ctx)};
    err = mesh_new_verbose(&cfg, out, &msg);
    if (err != MESH_OK) {
        *out = NULL;
        if (server) /* the message names the server already */
            cli_error("%s", msg && *msg ? msg : mesh_strerror(err));
        else
            cli_error("cannot open the mesh store: %s", msg && *msg ? msg : mesh_strerror(err));
    }
    free(msg);
    free(token);
    return err;
}

enum mesh_err cli_meshd_request(const struct cli_ctx *ctx, const char *method, const char *path,
                                const char *body, struct mesh_http_response *resp)
{
    const char *server = cli_server(ctx);
    char *token = NULL, *msg = NULL;
    enum mesh_err err;

    memset(resp, 0, sizeof(*resp));
    if (!server)
        server = CLI_DEFAULT_SERVER;
    if (!cli_token(ctx, &token))
        return MESH_E_IO;
    size_t base_len = strlen(server);
    while (base_len > 0 && server[base_len - 1] == '/')
        base_len--;
    char *url = strstr(server, "://") ? xasprintf("%.*s%s", (int)base_len, server, path)
                                      : xasprintf("http://%.*s%s", (int)base_len, server, path);
    struct mesh_http_request req = {
        .method = method,
        .url = url,
        .peer_name = "meshd",
        .token = token,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .connect_timeout_ms = 3000,
        .timeout_ms = 30000,
        .ca_file = cli_cacert(ctx),
    };
    err = mesh_http_do(&req, resp, &msg);
    if (err != MESH_OK)
        cli_error("%s", msg ? msg : mesh_strerror(err));
    free(msg);
    free(url);
    free(token);
    return err;
}

/* The short names users type; mesh_kind_parse accepts the same set (the e2e tests check that
 * every alias listed here works). */
static const char *const kind_alias[MESH_KIND_COUNT] = {
    [MESH_KIND_VIRTUAL_SERVICE] = "vs",
    [MESH_KIND_SECURITY_POLICY] = "sp",
    [MESH_KIND_CIRCUIT_BREAKER] = "cb",
    [MESH_KIND_FAULT_INJECTION] = "fi",
    [MESH_KIND_SERVICE] = "svc",
    [MESH_KIND_MESH_CONFIG] = "mc",
    [MESH_KIND_OBSERVABILITY_CONFIG] = "oc",
    [MESH_KIND_KUBERNETES_CONFIG] = "kc",
};

const char *cli_kind_lower(enum mesh_kind kind)
{
    /* Derived from mesh_kind_name so that the CLI can never spell a kind differently. */
    static char lower[MESH_KIND_COUNT][40];
    if ((unsigned)kind >= MESH_KIND_COUNT)
        return "unknown";
    if (!lower[kind][0]) {
        const char *name = mesh_kind_name(kind);
        size_t i = 0;
        for (; name && name[i] && i + 1 < sizeof(lower[kind]); i++)
            lower[kind][i] = (char)tolower((unsigned char)name[i]);
        lower[kind][i] = '\0';
    }
    return lower[kind];
}

bool cli_kind_parse(const char *text, enum mesh_kind *out)
{
    if (mesh_kind_parse(text, out) == MESH_OK)
        return true;
    struct mesh_strbuf known;
    mesh_strbuf_init(&known, 0);
    for (int k = 0; k < MESH_KIND_COUNT; k++)
        mesh_strbuf_printf(&known, "%s%s (%s)", k ? ", " : "", cli_kind_lower((enum mesh_kind)k),
                           kind_alias[k]);
    char *list = mesh_strbuf_take(&known);
    cli_error("unknown kind \"%s\" (known: %s)", text, list);
    free(list);
    return false;
}

void cli_put_text(const char *text, FILE *out)
{
    size_t len = strlen(text);
    fputs(text, out);
    if (len == 0 || text[len - 1] != '\n')
        fputc('\n', out);
}

void cli_format_duration(unsigned long long ms, char *buf, size_t size)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(buf, size, "%lluh", ms / 3600000);
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(buf, size, "%llum", ms / 60000);
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, size, "%llus", ms / 1000);
    else
        snprintf(buf, size, "%llums", ms);
}
