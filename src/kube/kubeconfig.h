/* SPDX-License-Identifier: Apache-2.0 */
/* kubeconfig files as kubectl reads them: one file, or the ':'-separated list of $KUBECONFIG
 * merged (the first file to name a cluster, user or context wins; current-context from the first
 * file that sets it), resolved for one context into what a client needs to reach the cluster:
 * server URL, CA, client certificate and key, bearer token (from the file, a token file or an
 * exec credential plugin). Control plane and CLI only (aborting allocators). */
#ifndef MESH_KUBE_KUBECONFIG_H
#define MESH_KUBE_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "mesh/err.h"

/* A kubeconfig: every file read, the merged maps pointing into them. Opaque. */
struct mesh_kubeconfig;

/* How to reach and authenticate to the cluster of one context. Every buffer is owned by the
 * struct (mesh_kube_credentials_clear frees them); PEM blobs are NUL-terminated as well. */
struct mesh_kube_credentials {
    char *context; /* the context's name */
    char *cluster; /* the names it refers to */
    char *user;
    char *server;    /* "https://10.0.0.1:6443" */
    char *namespace; /* the context's namespace; NULL when it names none */
    char *ca_pem;    /* certificate-authority[-data]; NULL = the system trust store */
    size_t ca_len;
    bool insecure;  /* insecure-skip-tls-verify */
    char *cert_pem; /* client-certificate[-data] or the exec plugin's clientCertificateData */
    size_t cert_len;
    char *key_pem; /* client-key[-data] or the exec plugin's clientKeyData */
    size_t key_len;
    char *token; /* token, tokenFile or the exec plugin's status.token; never logged */
};

void mesh_kube_credentials_clear(struct mesh_kube_credentials *cred);

/* Reads the kubeconfig: path when non-NULL (one file, which must exist); else every file of
 * $KUBECONFIG (':'-separated; files that do not exist are skipped, as kubectl does, but at least
 * one must); else ~/.kube/config. MESH_OK with *out (free with mesh_kubeconfig_free);
 * MESH_E_NOTFOUND when there is no file to read, MESH_E_IO when one cannot be read,
 * MESH_E_INVALID for a file that is not a kubeconfig (the message names file:line:col and the
 * field); *errmsg (caller frees) says which. */
enum mesh_err mesh_kubeconfig_load(const char *path, struct mesh_kubeconfig **out, char **errmsg);
void mesh_kubeconfig_free(struct mesh_kubeconfig *kc);

/* The current-context in effect, or NULL when no file sets one. Borrowed from kc. */
const char *mesh_kubeconfig_current_context(const struct mesh_kubeconfig *kc);

/* The merged contexts' names in file order, first one wins (borrowed, n of them). */
size_t mesh_kubeconfig_contexts(const struct mesh_kubeconfig *kc, const char ***names);

/* Resolves context (NULL = current-context) into *cred (zeroed by the caller; on error it holds
 * nothing): reads the files the entries name (relative paths are relative to the kubeconfig that
 * names them), decodes the base64 *-data fields and runs the user's exec credential plugin, if
 * any. MESH_E_NOTFOUND for a context that is not there ("context \"production\" is not in
 * KUBECONFIG (contexts: a, b)") or a cluster or user the context names that is not there;
 * MESH_E_INVALID for a malformed entry; MESH_E_IO for a file that cannot be read or a plugin that
 * fails. *errmsg (caller frees) says which, with file:line:col and the field. */
enum mesh_err mesh_kubeconfig_resolve(const struct mesh_kubeconfig *kc, const char *context,
                                      struct mesh_kube_credentials *cred, char **errmsg);

/* Standard base64 (with or without padding, no whitespace): *out (caller frees, NUL-terminated)
 * holds *len bytes. MESH_E_INVALID for anything else. */
enum mesh_err mesh_kube_base64_decode(const char *text, char **out, size_t *len);

#endif
