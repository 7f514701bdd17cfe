/* SPDX-License-Identifier: Apache-2.0 */
/* Finding and loading meshproxy-tls.so, the plugin that holds every OpenSSL call of meshproxy
 * (tls_plugin.h says why), and the table the rest of the proxy calls through. */
#ifndef MESH_PROXY_TLS_LOAD_H
#define MESH_PROXY_TLS_LOAD_H

#include "mesh/err.h"
#include "tls_plugin.h"

#define MESH_TLS_PLUGIN_ENV "MESHPROXY_TLS_PLUGIN"

/*
 * Loads the plugin and installs its table (mesh_tls_install). Where it looks, in order:
 *   1. $MESHPROXY_TLS_PLUGIN, when set and not empty: that file only;
 *   2. meshproxy-tls.so in the directory of the running binary (/proc/self/exe), as `make`
 *      leaves it (build/meshproxy-tls.so next to build/meshproxy);
 *   3. meshproxy-tls.so in the install location compiled in (PREFIX/lib/clusterdb-mesh), when
 *      2 has no such file.
 * A file that exists but does not load, or is not a plugin for this meshproxy, is an error (not
 * a reason to look further). MESH_OK: *path (the caller frees) is the file loaded; it stays
 * loaded until the process exits. Otherwise *why (the caller frees) names each path tried with
 * what went wrong (dlerror(), the ABI found) and how to fix it: MESH_E_NOTFOUND when no file
 * was there, MESH_E_UNAVAILABLE when one did not load, MESH_E_UNSUPPORTED for a wrong ABI.
 * Main thread, before any other thread uses identities; once.
 */
enum mesh_err mesh_tls_load(char **path, char **why);

/* Checks that ops has this meshproxy's MESH_TLS_ABI and at least its entries, and makes it the
 * table of the process. MESH_E_UNSUPPORTED otherwise, with *why (the caller frees) naming origin
 * (the file, for the message). The loader calls it; unit tests that link the plugin's objects
 * call it with its table. Before any thread uses identities. */
enum mesh_err mesh_tls_install(const struct mesh_tls_ops *ops, const char *origin, char **why);

/* Where `make install` puts the plugin: PREFIX/lib/clusterdb-mesh/meshproxy-tls.so, as
 * compiled in. Static. */
const char *mesh_tls_installed_path(void);

/* The installed table: NULL when none was (static mode never loads the plugin). Any thread. */
const struct mesh_tls_ops *mesh_tls_ops(void);

#endif
