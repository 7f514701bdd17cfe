/* SPDX-License-Identifier: Apache-2.0 */
/* meshctl internals shared by the command files: the command table, exit codes and helpers for
 * errors, option parsing, kinds and opening the mesh. */
#ifndef MESH_CLI_CLI_H
#define MESH_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "mesh/mesh.h"

#define CLI_VERSION "0.1.0"

/* Process exit codes, shared by every command. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_ERROR = 1, /* the command ran and failed (invalid input, not found, conflict, I/O) */
    CLI_EXIT_USAGE = 2, /* the command line itself is wrong */
};

/* Long-only options get values outside the char range so they never clash with short ones. */
enum cli_long_opt {
    CLI_OPT_STORE = 256,
    CLI_OPT_IGNORE_NOT_FOUND,
    CLI_OPT_EXIT_CODE,
    CLI_OPT_VERSION,
    CLI_OPT_SERVER,
    CLI_OPT_TOKEN,
    CLI_OPT_CACERT,
};

/* meshd's address when a command that only makes sense against meshd (proxy-status, check) is
 * given neither --server nor $MESH_SERVER. */
#define CLI_DEFAULT_SERVER "http://127.0.0.1:15010"

/* getopt_long entries for the global flags, which every command also accepts after its name;
 * the default branch of the command's switch hands them to cli_common_option(). */
/* clang-format off */
#define CLI_GLOBAL_OPTIONS                                  \
    {"store", required_argument, NULL, CLI_OPT_STORE},      \
    {"server", required_argument, NULL, CLI_OPT_SERVER},    \
    {"token", required_argument, NULL, CLI_OPT_TOKEN},      \
    {"cacert", required_argument, NULL, CLI_OPT_CACERT}
/* clang-format on */

/* What the global flags selected; every command may also take --store itself. */
struct cli_ctx {
    const char *store_dir;  /* --store DIR; NULL = $MESH_STORE, else ./.mesh (libmesh decides) */
    const char *server;     /* --server URL; NULL = $MESH_SERVER (see cli_server) */
    const char *token_file; /* --token FILE; NULL = $MESH_TOKEN_FILE, else $MESH_TOKEN */
    const char *cacert;     /* --cacert FILE; NULL = $MESH_CACERT, else the system store */
    /* get, delete: --provider istio|linkerd reads and writes a cluster instead (NULL, "native":
     * the store or meshd), with --kubeconfig, --context and --version. */
    const char *provider, *kubeconfig, *context, *version;
};

struct cli_command {
    const char *name;
    const char *summary; /* one line, for `meshctl --help` */
    const char *usage;   /* the full help text, for `meshctl help NAME` and `NAME --help` */
    /* argv[0] is the command name; returns an enum cli_exit value. */
    int (*run)(struct cli_ctx *ctx, int argc, char **argv);
};

extern const struct cli_command cli_cmd_apply;
extern const struct cli_command cli_cmd_get;
extern const struct cli_command cli_cmd_delete;
extern const struct cli_command cli_cmd_validate;
extern const struct cli_command cli_cmd_render;
extern const struct cli_command cli_cmd_diff;
extern const struct cli_command cli_cmd_version;
extern const struct cli_command cli_cmd_backup;
extern const struct cli_command cli_cmd_restore;
extern const struct cli_command cli_cmd_explain;
extern const struct cli_command cli_cmd_proxy_status;
extern const struct cli_command cli_cmd_proxy_config;
extern const struct cli_command cli_cmd_prometheus_config;
extern const struct cli_command cli_cmd_dashboards;
extern const struct cli_command cli_cmd_check;
extern const struct cli_command cli_cmd_analyze;
extern const struct cli_command cli_cmd_ca;
extern const struct cli_command cli_cmd_cluster;
extern const struct cli_command cli_cmd_stat;
extern const struct cli_command cli_cmd_tap;

/* Prints "error: MESSAGE" to stderr; returns CLI_EXIT_ERROR. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "error: MESSAGE" and "Run 'meshctl help CMD' for usage." to stderr; returns
 * CLI_EXIT_USAGE. cmd NULL points at the global help instead. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Turns getopt_long's '?' or ':' answer (opterr = 0, optstring starting with ':') into a usage
 * error naming the flag as the user typed it. Returns CLI_EXIT_USAGE. */
int cli_bad_option(const struct cli_command *cmd, int c, char **argv);

/* Prints cmd's help text to stdout; returns CLI_EXIT_OK. */
int cli_help(const struct cli_command *cmd);

/* Opens the mesh the flags selected (native provider: meshd when cli_server() names one, else the
 * embedded store; istio or linkerd: the cluster). On error prints why and returns the error; *out
 * is NULL then. */
enum mesh_err cli_open(const struct cli_ctx *ctx, struct mesh **out);

/* Records a global flag met by a command's own getopt loop (c is CLI_OPT_STORE, CLI_OPT_SERVER,
 * CLI_OPT_TOKEN or CLI_OPT_CACERT, arg its value). Returns CLI_EXIT_OK, CLI_EXIT_USAGE (after
 * printing why, naming cmd) for an empty value, or -1 when c is not a global flag. */
int cli_global_option(struct cli_ctx *ctx, const struct cli_command *cmd, int c, const char *arg);

/* The options every command shares, for the default branch of its getopt loop: a global flag is
 * stored in ctx (CLI_CONTINUE: go on reading options), -h prints cmd's help (CLI_EXIT_OK), anything
 * else is a usage error naming the flag (CLI_EXIT_USAGE). A command with its own -h text handles
 * 'h' before the default branch. */
#define CLI_CONTINUE (-1)
int cli_common_option(struct cli_ctx *ctx, const struct cli_command *cmd, int c, const char *arg,
                      char **argv);

/* -o/--output of the commands that print a table or JSON: "json" sets *json, "table" clears it
 * (CLI_CONTINUE: go on reading options); anything else is a usage error naming cmd
 * (CLI_EXIT_USAGE). */
int cli_output_json(const struct cli_command *cmd, const char *arg, bool *json);

/* The meshd URL in effect: --server, else $MESH_SERVER unless --store was given (an explicit
 * store beats the environment). NULL: use the embedded store. Also makes https:// URLs work for
 * every request meshctl sends (TLS ops installed, verified against cli_cacert()). */
const char *cli_server(const struct cli_ctx *ctx);

/* The CA bundle meshd's certificate is verified with: --cacert, else $MESH_CACERT; NULL = the
 * system trust store. */
const char *cli_cacert(const struct cli_ctx *ctx);

/* The bearer token in effect: the first line of --token FILE, else of $MESH_TOKEN_FILE, else
 * $MESH_TOKEN; *out (caller frees) is NULL when none is set. Returns false after printing why
 * when the file cannot be read or is empty. */
bool cli_token(const struct cli_ctx *ctx, char **out);

struct mesh_http_response;

/* For commands that call meshd's API themselves (proxy-status, check): sends METHOD path
 * ("/v1/proxies") with body (NULL = none, else JSON) to cli_server(), or CLI_DEFAULT_SERVER when
 * none is set, with the token when one is set. On MESH_OK *resp holds the answer whatever its
 * status (clear it with mesh_http_response_clear; mesh_http_error_message reads an error body).
 * On failure prints "error: cannot reach meshd at URL: why" (or the token problem) and returns
 * the error (MESH_E_UNAVAILABLE when meshd is down). */
enum mesh_err cli_meshd_request(const struct cli_ctx *ctx, const char *method, const char *path,
                                const char *body, struct mesh_http_response *resp);

/* "virtualservice": the kind's name in lower case, as apply/delete print it. Static storage. */
const char *cli_kind_lower(enum mesh_kind kind);

/* Parses a kind as typed; on failure prints `unknown kind "x" (known: …)` and returns false. */
bool cli_kind_parse(const char *text, enum mesh_kind *out);

/* Writes text to out, adding a final newline when text does not end with one. */
void cli_put_text(const char *text, FILE *out);

/* Formats a duration in milliseconds the way resource files write it: 100ms, 10s, 2m, 1h. */
void cli_format_duration(unsigned long long ms, char *buf, size_t size);

#endif
