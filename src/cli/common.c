/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers every meshctl command uses: error lines, usage errors, kinds, opening the mesh. */
#include "cli.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"

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

enum mesh_err cli_open(const struct cli_ctx *ctx, struct mesh **out)
{
    struct mesh_config cfg = {.provider = NULL, .store_dir = ctx->store_dir, .server = NULL};
    char *msg = NULL;
    enum mesh_err err = mesh_new_verbose(&cfg, out, &msg);
    if (err != MESH_OK) {
        *out = NULL;
        cli_error("cannot open the mesh store: %s", msg && *msg ? msg : mesh_strerror(err));
    }
    free(msg);
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
