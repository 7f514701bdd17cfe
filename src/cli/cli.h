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
};

/* What the global flags selected; every command may also take --store itself. */
struct cli_ctx {
    const char *store_dir; /* --store DIR; NULL = $MESH_STORE, else ./.mesh (libmesh decides) */
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
extern const struct cli_command cli_cmd_diff;
extern const struct cli_command cli_cmd_version;

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

/* Opens the mesh the flags selected (native provider, embedded store). On error prints why and
 * returns the error; *out is NULL then. */
enum mesh_err cli_open(const struct cli_ctx *ctx, struct mesh **out);

/* "virtualservice": the kind's name in lower case, as apply/delete print it. Static storage. */
const char *cli_kind_lower(enum mesh_kind kind);

/* Parses a kind as typed; on failure prints `unknown kind "x" (known: …)` and returns false. */
bool cli_kind_parse(const char *text, enum mesh_kind *out);

/* Writes text to out, adding a final newline when text does not end with one. */
void cli_put_text(const char *text, FILE *out);

/* Formats a duration in milliseconds the way resource files write it: 100ms, 10s, 2m, 1h. */
void cli_format_duration(unsigned long long ms, char *buf, size_t size);

#endif
