/* SPDX-License-Identifier: Apache-2.0 */
/* Aligned text tables for `meshctl get`, and the columns each resource kind shows in them. */
#ifndef MESH_CLI_TABLE_H
#define MESH_CLI_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "mesh/mesh.h"

/* Cells are filled row by row: the first ncols cells are the header. */
struct cli_table {
    size_t ncols;
    char **cells; /* owned */
    size_t n;
    size_t cap;
};

void cli_table_init(struct cli_table *t, size_t ncols);
/* Appends a copy of cell ("" when NULL). */
void cli_table_add(struct cli_table *t, const char *cell);
void cli_table_addf(struct cli_table *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints every row, columns separated by at least three spaces, no trailing blanks. */
void cli_table_print(const struct cli_table *t, FILE *out);
void cli_table_free(struct cli_table *t);

/* Builds the table of n resources of one kind: [NAMESPACE] NAME <the kind's columns> GENERATION.
 * with_kind names rows "kind/name", for listings of several kinds. t must be freshly zeroed. */
void cli_columns_table(enum mesh_kind kind, struct mesh_resource *const *res, size_t n,
                       bool with_namespace, bool with_kind, struct cli_table *t);

#endif
