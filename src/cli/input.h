/* SPDX-License-Identifier: Apache-2.0 */
/* Reading the -f inputs of meshctl: files, directories and stdin, parsed and validated up front so
 * that a command can refuse the whole input before it touches the store. */
#ifndef MESH_CLI_INPUT_H
#define MESH_CLI_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "mesh/mesh.h"

/* Largest single input file; a bigger one is refused rather than read without bound. */
#define CLI_INPUT_MAX_BYTES (64u * 1024 * 1024)

struct cli_input_file {
    char *name;                 /* the path as found, or "<stdin>" */
    struct mesh_resource **res; /* its documents, in order; NULL when invalid */
    size_t n;
    char **problems; /* formatted diags (mesh_diag_format) for this file, in order */
    size_t n_problems;
};

struct cli_input {
    struct cli_input_file *files;
    size_t n_files;
    size_t cap_files;
    /* Every resource of every valid file in input order; borrowed from files[]. */
    struct mesh_resource **all;
    const char **all_file; /* the file each of all[] came from; borrowed */
    size_t n_all;
    size_t cap_all;
    bool read_stdin;
};

/* Reads and parses every path: "-" is stdin (at most once), a directory contributes its
 * .yaml/.yml/.json files in name order (descending into subdirectories only when recursive), any
 * other path is read whatever its name. Problems in the documents are collected, not printed
 * (see cli_input_valid). MESH_OK when everything could be read; MESH_E_IO or MESH_E_INVALID
 * after printing an `error:` line when a path cannot be read or names no input at all. in must be
 * zeroed; free it with cli_input_free whatever the result. */
enum mesh_err cli_input_load(struct cli_input *in, char *const *paths, size_t n_paths,
                             bool recursive);

/* Flags a resource named twice (same kind, namespace and name) as a problem of the file holding
 * the second one: applying both in one transaction could only keep the last. */
void cli_input_check_duplicates(struct cli_input *in);

struct cli_command;

/* What apply, validate and diff share after their flags: no stray arguments (files come with
 * -f), at least one file, every file loaded and checked for resources defined twice.
 * Returns CLI_EXIT_OK, or the exit code to end the command with (the message is printed). */
int cli_input_read(const struct cli_command *cmd, struct cli_input *in, char *const *files,
                   size_t n_files, bool recursive, int argc, char **argv);

/* True when no file has a problem. */
bool cli_input_valid(const struct cli_input *in);

/* Prints every problem, one per line, in input order. */
void cli_input_print_problems(const struct cli_input *in, FILE *out);

void cli_input_free(struct cli_input *in);

#endif
