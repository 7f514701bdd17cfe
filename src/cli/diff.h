/* SPDX-License-Identifier: Apache-2.0 */
/* A small line diff (longest common subsequence) printed in unified format, for `meshctl diff`. */
#ifndef MESH_CLI_DIFF_H
#define MESH_CLI_DIFF_H

#include <stdbool.h>
#include <stdio.h>

/* Lines of context around each change, as `diff -u` uses. */
#define CLI_DIFF_CONTEXT 3

/* Prints the unified diff from old_text to new_text under "--- old_label" / "+++ new_label"
 * headers, with CLI_DIFF_CONTEXT lines of context. Nothing is printed when the texts are equal.
 * Returns true when they differ. Inputs are borrowed. */
bool cli_diff_unified(const char *old_text, const char *new_text, const char *old_label,
                      const char *new_label, FILE *out);

#endif
