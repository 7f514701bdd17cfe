/* SPDX-License-Identifier: Apache-2.0 */
/* How the Istio translator (istio.c) names subsets and spells globs, shared with its reader
 * (istio_read.c) so that the reader finds the names the translator gave. Defined in istio.c. */
#ifndef MESH_PROVIDER_ISTIO_NAMES_H
#define MESH_PROVIDER_ISTIO_NAMES_H

#include <stddef.h>

#include "mesh/resource.h"

/* The characters RE2 reads as syntax, but '*': escaped to be literal. */
#define MESH_ISTIO_REGEX_META "\\.+?()|[]{}^$"

/* One of our Services, as far as its subset goes: its name, namespace and labels app and
 * version (NULL when absent). All borrowed. */
struct mesh_istio_workload {
    const char *name, *ns, *app, *version;
};

/* labels' value for key, or NULL. Borrowed. */
const char *mesh_istio_label(const struct mesh_labels *labels, const char *key);

/* A subset name is an RFC 1123 label: the version label, lower-cased, other bytes as '-',
 * trimmed of '-', at most 63 bytes, "v" when nothing is left. malloc'ed. */
char *mesh_istio_subset_name(const char *version);

/* The subset w[i] is reached as (malloc'ed), or NULL when it has none: it is no version of an
 * app (app or version absent, or app its own name), or another Service of w[0..n) in its
 * namespace with the same app has a version of the same subset name (two would be one subset,
 * where ours are two clusters). */
char *mesh_istio_subset(const struct mesh_istio_workload *w, size_t n, size_t i);

/* A glob's RE2 form: '*' any run of characters, everything else literal. malloc'ed. */
char *mesh_istio_glob_regex(const char *glob);

#endif
