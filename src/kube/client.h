/* SPDX-License-Identifier: Apache-2.0 */
/* A Kubernetes API client over libcurl: TLS verified with the cluster's CA, client certificate or
 * bearer token, timeouts; the calls meshctl needs (version, CRDs, server-side apply, get, list,
 * delete) on objects held as node trees; and the API server's errors (Status objects) turned into
 * messages naming the resource and the server's own reason. Control plane and CLI only: never
 * linked into meshproxy. A client is used by one thread at a time. */
#ifndef MESH_KUBE_CLIENT_H
#define MESH_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "kube/kubeconfig.h"
#include "mesh/err.h"
#include "model/node.h"

struct mesh_kube_client;

/* Seconds a request may take in all (connect, TLS, answer), unless the caller says otherwise. */
#define MESH_KUBE_DEFAULT_TIMEOUT_MS 30000

/* A client for the cluster cred describes (borrowed: copied). timeout_ms 0 means the default.
 * MESH_OK with *out (free with mesh_kube_client_free); MESH_E_INTERNAL when libcurl cannot be
 * set up, with *errmsg (caller frees). */
enum mesh_err mesh_kube_client_new(const struct mesh_kube_credentials *cred, long timeout_ms,
                                   struct mesh_kube_client **out, char **errmsg);
void mesh_kube_client_free(struct mesh_kube_client *c);

/* The server URL ("https://10.0.0.1:6443"). Borrowed. */
const char *mesh_kube_client_server(const struct mesh_kube_client *c);

/* --- kinds --- */

/* One kind we read or write: how its URL is spelled. */
struct mesh_kube_kind {
    const char *kind;   /* "VirtualService" */
    const char *group;  /* "networking.istio.io"; "" for the core group */
    const char *plural; /* "virtualservices" */
    bool namespaced;
};

/* The kind called kind in group ("" for core), or NULL when we do not know its plural. Covers
 * every kind the Istio and Linkerd translators emit (src/provider/istio.c, linkerd.c). */
const struct mesh_kube_kind *mesh_kube_kind_find(const char *group, const char *kind);

/* Every kind of the table (n of them), for tests and for prune. Static. */
const struct mesh_kube_kind *mesh_kube_kinds(size_t *n);

/* "/apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME]" for api_version ("group/version" or "v1")
 * and kind; name may be NULL (the collection), ns NULL for every namespace (lists) or for a
 * cluster-scoped kind. MESH_E_UNSUPPORTED (with *errmsg) for a kind not in the table. *out:
 * malloc'ed. */
enum mesh_err mesh_kube_path(const char *api_version, const char *kind, const char *ns,
                             const char *name, char **out, char **errmsg);

/* --- calls --- */

/* GET /version: *git_version ("v1.30.2"; caller frees). */
enum mesh_err mesh_kube_version(struct mesh_kube_client *c, char **git_version, char **errmsg);

/* The version to reach kind of group ("networking.istio.io", "VirtualService") at, as the server
 * says (API discovery): its preferred version of the group when that serves the kind, else the
 * first other version that does; "group/version" in *api_version (caller frees). Every object of
 * the kind can be read at it, whichever version wrote it. MESH_E_NOTFOUND when the server serves
 * the kind at no version (or not the group). */
enum mesh_err mesh_kube_served_version(struct mesh_kube_client *c, const char *group,
                                       const char *kind, char **api_version, char **errmsg);

/* Whether the CustomResourceDefinition name ("virtualservices.networking.istio.io") exists:
 * MESH_OK with *installed. */
enum mesh_err mesh_kube_crd_installed(struct mesh_kube_client *c, const char *name, bool *installed,
                                      char **errmsg);

/* Server-side apply of obj (apiVersion, kind, metadata.name[, namespace] required) with field
 * manager "meshctl"; force takes over fields another manager owns (else that is a
 * MESH_E_CONFLICT). *live (may be NULL): the object as the server keeps it now (caller frees);
 * *created (may be NULL): whether it did not exist before. */
enum mesh_err mesh_kube_apply(struct mesh_kube_client *c, const struct mesh_node *obj, bool force,
                              struct mesh_node **live, bool *created, char **errmsg);

/* GET one object: MESH_OK with *out (caller frees); MESH_E_NOTFOUND when it does not exist. */
enum mesh_err mesh_kube_get(struct mesh_kube_client *c, const char *api_version, const char *kind,
                            const char *ns, const char *name, struct mesh_node **out,
                            char **errmsg);

/* LIST a kind in ns (NULL: every namespace) whose labels match label_selector (NULL: all), e.g.
 * "app.kubernetes.io/managed-by=clusterdb-mesh". *items: a sequence node (caller frees), each
 * item with its apiVersion and kind (which the server leaves out for built-in kinds). */
enum mesh_err mesh_kube_list(struct mesh_kube_client *c, const char *api_version, const char *kind,
                             const char *ns, const char *label_selector, struct mesh_node **items,
                             char **errmsg);

/* DELETE one object. MESH_E_NOTFOUND when it was already gone. */
enum mesh_err mesh_kube_delete(struct mesh_kube_client *c, const char *api_version,
                               const char *kind, const char *ns, const char *name, char **errmsg);

/* --- for tests --- */

/* The message for an API server answer with HTTP status (>= 400) and body (a Status object, or
 * anything else), about the request described by `what` ("cannot apply VirtualService
 * default/payment"); *err receives the matching error: MESH_E_NOTFOUND (404), MESH_E_CONFLICT
 * (409), MESH_E_INVALID (400, 422), MESH_E_UNAVAILABLE (401, 403, 5xx and the rest). Caller frees
 * the message. */
char *mesh_kube_status_message(long status, const char *body, size_t len, const char *what,
                               enum mesh_err *err);

#endif
