/* SPDX-License-Identifier: Apache-2.0 */
/* Our resources as another mesh's Kubernetes manifests: the interface of the Istio and Linkerd
 * translators (istio.c, linkerd.c), the shared pieces they build with (translate.c), and the
 * capability table that both their refusals and docs/providers.md come from, so that the two
 * cannot drift (../shared/PROVIDERS.md has the field mapping).
 *
 * A translator is pure: resources in, manifests out; no cluster, no network. What it cannot
 * express is never dropped silently: it refuses with MESH_E_UNSUPPORTED naming the resource, the
 * field and the reason, or, when the caller allows a partial translation, leaves that part out
 * and records the same sentence as a warning. */
#ifndef MESH_PROVIDER_TRANSLATE_H
#define MESH_PROVIDER_TRANSLATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "mesh/document.h"
#include "mesh/err.h"
#include "mesh/resource.h"
#include "model/node.h"

struct mesh_service;

/* Every object we create carries these, so that we can read back, diff and prune what is ours. */
#define MESH_MANAGED_BY_LABEL "app.kubernetes.io/managed-by"
#define MESH_MANAGED_BY_VALUE "clusterdb-mesh"
/* "VirtualService/default/payment": the resource an object was made from. */
#define MESH_SOURCE_ANNOTATION "mesh.clusterdb.io/source"

/* The features of the model, one row of docs/providers.md each. */
enum mesh_feature {
    MESH_FEAT_HOSTS = 0,          /* VirtualService hosts */
    MESH_FEAT_GATEWAYS,           /* VirtualService gateways; MeshConfig ingress */
    MESH_FEAT_MATCH_PATH,         /* exact, prefix, glob, regex */
    MESH_FEAT_MATCH_HEADER_EXACT, /* also regex and present */
    MESH_FEAT_MATCH_HEADER_PREFIX,
    MESH_FEAT_MATCH_METHOD,
    MESH_FEAT_WEIGHTED_SPLIT,
    MESH_FEAT_TIMEOUT,
    MESH_FEAT_RETRIES,
    MESH_FEAT_FAULT_DELAY,
    MESH_FEAT_FAULT_ABORT,
    MESH_FEAT_MAX_CONNECTIONS,
    MESH_FEAT_MAX_PENDING,
    MESH_FEAT_MAX_REQUESTS,
    MESH_FEAT_MAX_RETRIES,
    MESH_FEAT_OUTLIER_CONSECUTIVE, /* consecutive_errors, base_ejection_time */
    MESH_FEAT_OUTLIER_INTERVAL,
    MESH_FEAT_MTLS_STRICT,
    MESH_FEAT_MTLS_PERMISSIVE,
    MESH_FEAT_MTLS_DISABLE,
    MESH_FEAT_AUTHZ,            /* from / to / methods / paths */
    MESH_FEAT_TRACING_SAMPLING, /* telemetry.sampling_rate */
    MESH_FEAT_PROXY_RESOURCES,  /* proxy.resources cpu / memory */
    MESH_FEAT_COUNT,
};

enum mesh_support {
    MESH_SUPPORT_FULL = 0, /* expressed exactly */
    MESH_SUPPORT_PARTIAL,  /* expressed, with a difference the note names */
    MESH_SUPPORT_NONE,     /* refused (or a warning with --allow-partial) */
};

/* One provider's answer for one feature. note: what it becomes there ("DestinationRule
 * connectionPool.tcp.maxConnections"), or for PARTIAL/NONE why, in a sentence that completes
 * "<provider> cannot express <feature>: " — the refusal message uses it as it is. */
struct mesh_capability {
    enum mesh_feature feature;
    enum mesh_support support;
    const char *note;
};

/* "weighted traffic split", ...: the row names of the matrix. Static. */
const char *mesh_feature_name(enum mesh_feature f);

/* What a translator was asked for. */
struct mesh_translate_options {
    const char *version; /* the provider's version ("1.14", "2.11"); NULL: the newest we know */
    bool allow_partial;  /* leave out what cannot be expressed, with a warning each */
    const char *cluster_domain; /* SPIFFE / Kubernetes trust domain; NULL: "cluster.local" */
};

/* What comes out: Kubernetes objects in a stable order (by kind, namespace, name), each a node
 * tree with apiVersion, kind, metadata (name, namespace, labels with MESH_MANAGED_BY_LABEL,
 * annotations with MESH_SOURCE_ANNOTATION) and spec; and the warnings of a partial translation,
 * each "KIND NS/NAME FIELD: <provider> cannot express <feature>: <note>". */
struct mesh_translation {
    struct mesh_node **objects;
    size_t n_objects, cap;
    struct mesh_diags warnings;
};

void mesh_translation_clear(struct mesh_translation *t);

struct mesh_translator {
    const char *name; /* "istio", "linkerd" */
    const struct mesh_capability *caps;
    size_t n_caps; /* one per feature, in enum order */
    /* Translates res[0..n) (valid resources, any kinds: those the provider has no use for, as
     * ObservabilityConfig, are skipped). out must be zeroed. MESH_OK; MESH_E_UNSUPPORTED with
     * *errmsg (caller frees) naming the first part it cannot express, when !allow_partial;
     * MESH_E_INVALID for a reference it cannot resolve (a destination naming no Service), with
     * *errmsg. On error out holds nothing. */
    enum mesh_err (*translate)(const struct mesh_resource *const *res, size_t n,
                               const struct mesh_translate_options *opt,
                               struct mesh_translation *out, char **errmsg);
    /* The inverse: Kubernetes objects as the API server returns them (any kinds; what this
     * provider's translation never produces is skipped) read back into our resources. v1
     * Services become our Services (mesh_read_kube_service), so that destinations resolve as
     * they did. An object carrying MESH_SOURCE_ANNOTATION gives back the kind, namespace and
     * name of the resource it was made from; one written by hand is read as the resource it is
     * closest to, named after it. What our model cannot hold (an Istio rewrite, a mirror) is left
     * out with a warning "KIND NS/NAME FIELD: not read: why" in *warnings, never an error; so is
     * an object too malformed to read. *out: new valid resources sorted by kind, namespace,
     * name (free with mesh_resource_list_free). Round trip: for every x translate accepts,
     * translate(read(translate(x) + x's Services as v1 Services)) == translate(x).
     * MESH_OK, or MESH_E_NOMEM. */
    enum mesh_err (*read)(struct mesh_node *const *objects, size_t n,
                          const struct mesh_translate_options *opt, struct mesh_resource ***out,
                          size_t *n_out, struct mesh_diags *warnings);
};

/* The readers (istio_read.c, linkerd_read.c): each translator's read. */
enum mesh_err mesh_istio_read(struct mesh_node *const *objects, size_t n,
                              const struct mesh_translate_options *opt, struct mesh_resource ***out,
                              size_t *n_out, struct mesh_diags *warnings);
enum mesh_err mesh_linkerd_read(struct mesh_node *const *objects, size_t n,
                                const struct mesh_translate_options *opt,
                                struct mesh_resource ***out, size_t *n_out,
                                struct mesh_diags *warnings);

extern const struct mesh_translator mesh_translator_istio;
extern const struct mesh_translator mesh_translator_linkerd;

/* The translator called name, or NULL. */
const struct mesh_translator *mesh_translator_find(const char *name);

/* --- for translators (translate.c) --- */

/* A new object: {apiVersion, kind, metadata: {name, namespace, labels: {managed-by}, annotations:
 * {source: "KIND/NS/NAME" of src}}, spec: {}}. *spec (may be NULL) receives the borrowed spec
 * map to fill. Appended to t (t owns it). */
struct mesh_node *mesh_translation_add(struct mesh_translation *t, const char *api_version,
                                       const char *kind, const char *name, const char *ns,
                                       const struct mesh_resource *src, struct mesh_node **spec);

/* A feature the provider cannot express, met at field path of res: with opt->allow_partial a
 * warning (MESH_OK: go on without it), else MESH_E_UNSUPPORTED with *errmsg. The sentence comes
 * from tr's capability table. */
enum mesh_err mesh_translation_refuse(const struct mesh_translator *tr,
                                      const struct mesh_translate_options *opt,
                                      struct mesh_translation *t, const struct mesh_resource *res,
                                      const char *path, enum mesh_feature f, char **errmsg);

/* The same, for a refusal the table cannot word (a version too old, a combination the provider
 * cannot hold): "KIND NS/NAME PATH: why". */
enum mesh_err mesh_translation_refuse_why(const struct mesh_translate_options *opt,
                                          struct mesh_translation *t,
                                          const struct mesh_resource *res, const char *path,
                                          const char *why, char **errmsg);

/* --- for readers (translate_read.c) --- */

/* The resource obj was made from, by its MESH_SOURCE_ANNOTATION: true with *kind, and ns and
 * name (malloc'ed, caller frees) filled; false when obj carries none or one that does not parse. */
bool mesh_read_source(const struct mesh_node *obj, enum mesh_kind *kind, char **ns, char **name);

/* obj's metadata.name and metadata.namespace ("default" when absent); borrowed, NULL when
 * obj has no name. */
const char *mesh_read_name(const struct mesh_node *obj);
const char *mesh_read_namespace(const struct mesh_node *obj);

/* The string at a dotted path of map ("spec.host"), or NULL when absent or not a scalar. */
const char *mesh_read_str(const struct mesh_node *map, const char *path);

/* Our document {apiVersion: MESH_API_VERSION, kind, metadata: {name, namespace}, spec: {}}; *spec
 * receives the (borrowed) spec map to fill. New tree, caller frees (mesh_read_emit takes it). */
struct mesh_node *mesh_read_doc(const char *kind, const char *name, const char *ns,
                                struct mesh_node **spec);

/* A deep copy of n (NULL for NULL): new tree, caller frees. */
struct mesh_node *mesh_read_copy(const struct mesh_node *n);

/* Adds "KIND NS/NAME FIELD: not read: WHY" to warnings: obj is the object read (its kind, name
 * and namespace), field its field path (NULL or "" for the object as a whole, also the
 * diagnostic's path), WHY fmt with ap (cut at 1023 bytes). */
void mesh_read_warnv(struct mesh_diags *warnings, const struct mesh_node *obj, const char *field,
                     const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* A v1 Service object as our Service: name, namespace, metadata.labels, protocol from the first
 * port's appProtocol (else its name's prefix before '-', as Istio reads it: http, http2, grpc,
 * tcp), no endpoints (Kubernetes keeps those). NULL when obj is not a v1 Service. */
struct mesh_resource *mesh_read_kube_service(const struct mesh_node *obj);

/* The other way, for tests and for `meshctl apply`'s precheck: svc as the v1 Service object a
 * cluster would hold for it (name, namespace, labels, one port 80 named after its protocol,
 * selector app/version from its labels). New tree, caller frees. */
struct mesh_node *mesh_kube_service_object(const struct mesh_service *svc);

/* Decodes doc (our document: apiVersion mesh.clusterdb.io/v1, kind, metadata, spec) into a
 * resource appended to *list (xgrow'ed, *cap), when it is valid; else adds a warning to
 * warnings naming what (obj's kind and name: the object it was read from) and why, and drops
 * it. Takes doc. */
void mesh_read_emit(struct mesh_node *doc, const struct mesh_node *obj,
                    struct mesh_resource ***list, size_t *len, size_t *cap,
                    struct mesh_diags *warnings);

/* Sorts a read-back list by kind, namespace, name. */
void mesh_read_sort(struct mesh_resource **list, size_t n);

/* Sorts t's objects by kind, namespace, name (the stable order of the output). */
void mesh_translation_sort(struct mesh_translation *t);

/* "1.5s", "250ms", "2m": a duration in milliseconds as Kubernetes CRDs spell durations. */
void mesh_translate_duration(unsigned long long ms, char *buf, size_t len);

/* Prints t's objects as a YAML stream ("---" between objects) or as a JSON List
 * ({"apiVersion": "v1", "kind": "List", "items": [...]}). *out: malloc'ed. */
enum mesh_err mesh_translation_print(const struct mesh_translation *t, enum mesh_format format,
                                     char **out);

/* docs/providers.md's matrix: a Markdown table, feature × native / istio / linkerd, from the
 * translators' tables (native expresses everything). *out: malloc'ed. */
enum mesh_err mesh_capability_matrix(char **out);

#endif
