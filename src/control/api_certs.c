/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's certificate routes: a registered proxy's CSR signed into a workload certificate whose
 * identity comes from the registry (never from the CSR), by the CA its SecurityPolicy names or
 * by meshd's root; the trust bundle every proxy verifies its peers with; and the root rotation
 * (ca_rotation.h): its start, its status and the timer that moves it on. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "api.h"
#include "ca.h"
#include "ca_rotation.h"
#include "core/xalloc.h"
#include "mesh/security_policy.h"

static void send_json(struct mesh_httpd_req *req, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    if (!text)
        abort(); /* control plane: out of memory is fatal, as with xalloc */
    char *body = xasprintf("%s\n", text);
    mesh_api_send(req, status, "application/json", NULL, body);
    free(body);
    free(text);
    json_decref(doc);
}

/* Whether a SecurityPolicy's services item (name, name.ns, name.ns.svc or
 * name.ns.svc.cluster.local; a bare name is in the policy's namespace) is name in ns. */
static bool item_names(const char *item, const char *policy_ns, const char *name, const char *ns)
{
    const char *dot = strchr(item, '.');
    if (!dot)
        return strcmp(item, name) == 0 && strcmp(policy_ns, ns) == 0;
    size_t name_len = (size_t)(dot - item), ns_len = strlen(ns);
    if (name_len != strlen(name) || strncmp(item, name, name_len) != 0 ||
        strncmp(dot + 1, ns, ns_len) != 0)
        return false;
    const char *rest = dot + 1 + ns_len;
    return !*rest || strcmp(rest, ".svc") == 0 || strcmp(rest, ".svc.cluster.local") == 0;
}

/* The SecurityPolicy that decides the CA of service name in ns, or NULL. The most specific
 * covering policy decides: one listing the service in spec.services beats one without a
 * services list in its namespace; among several of one kind, the first (by namespace, then
 * name) that names a certificate_authority. */
static const struct mesh_security_policy *deciding_policy(const struct mesh_api *api,
                                                          const char *name, const char *ns)
{
    const struct mesh_security_policy *listing = NULL, *ns_wide = NULL;
    bool listed = false;
    for (size_t i = 0; i < api->cache.n_res; i++) {
        const struct mesh_resource *res = api->cache.res[i];
        if (res->kind != MESH_KIND_SECURITY_POLICY)
            continue;
        const struct mesh_security_policy *sp = (const struct mesh_security_policy *)res;
        const char *sp_ns = mesh_resource_namespace(res);
        bool names_ca = sp->mtls.certificate_authority != NULL;
        if (sp->services.len == 0) {
            if (strcmp(sp_ns, ns) == 0 && names_ca && !ns_wide)
                ns_wide = sp;
            continue;
        }
        for (size_t s = 0; s < sp->services.len; s++) {
            if (item_names(sp->services.items[s], sp_ns, name, ns)) {
                listed = true;
                if (names_ca && !listing)
                    listing = sp;
                break;
            }
        }
    }
    return listed ? listing : ns_wide;
}

/* The CA that signs for service name in ns: the one its policy names when meshd has it, else
 * meshd's root (and a warning, once per missing name). "meshd's root" is the one that issues in
 * the current phase of a root rotation. */
static const struct mesh_ca *signing_ca(struct mesh_api *api, const char *name, const char *ns)
{
    const struct mesh_ca_set *cas = api->opt.cas;
    const struct mesh_ca *issuer = mesh_ca_set_issuer(cas);
    const struct mesh_security_policy *sp = deciding_policy(api, name, ns);
    if (!sp)
        return issuer;
    const char *want = sp->mtls.certificate_authority;
    const struct mesh_ca *ca = mesh_ca_set_find(cas, want);
    if (ca == cas->items[0])
        return issuer; /* a policy naming mesh-root follows the rotation */
    if (ca)
        return ca;
    if (!mesh_api_map_get(&api->ca_warned, want)) {
        mesh_api_map_put(&api->ca_warned, want, api); /* any non-NULL value: warned */
        fprintf(stderr,
                "lvl=warn msg=\"SecurityPolicy names a CA meshd does not have; issuing from the "
                "mesh root instead\" policy=%s/%s certificate_authority=%s fix=\"start meshd "
                "with --ca %s=CERT,KEY\"\n",
                mesh_resource_namespace(&sp->res), sp->res.name, want, want);
    }
    return issuer;
}

/* The CSR of the request body {"csr": "<PEM>"}; NULL when answered. */
static const char *read_csr(struct mesh_httpd_req *req, json_t **root)
{
    static const char *const keys[] = {"csr", NULL};
    *root = mesh_api_body_object(req, keys, "{\"csr\": \"<PEM certificate request>\"}");
    if (!*root)
        return NULL;
    json_t *csr = json_object_get(*root, "csr");
    if (!csr || !json_is_string(csr) || json_string_length(csr) == 0) {
        mesh_api_error(req, 400, NULL,
                       "request body: csr: required, a PEM certificate request (\"-----BEGIN "
                       "CERTIFICATE REQUEST-----...\")");
        return NULL;
    }
    return json_string_value(csr);
}

void mesh_api_certificate(struct mesh_api *api, struct mesh_httpd_req *req, const char *id)
{
    const struct mesh_ca_set *cas = api->opt.cas;
    const struct mesh_proxy_entry *e = mesh_registry_find(api->reg, id);
    struct mesh_ca_leaf leaf = {0};
    json_t *root = NULL;
    char *errmsg = NULL;

    if (!cas || cas->len == 0) {
        mesh_api_error(req, 503, NULL, "meshd has no CA to sign with");
        return;
    }
    if (!e) {
        /* The words of every other proxy route's 404: the proxy registers again. */
        mesh_api_error(req, 404, NULL,
                       "proxy \"%s\" is not registered (meshd restarted, or its heartbeats "
                       "lapsed): register it with PUT /v1/proxies/%s",
                       id, id);
        return;
    }
    const char *csr = read_csr(req, &root);
    if (!csr)
        goto out;
    if (!api->cache.loaded) {
        /* Which CA signs depends on the SecurityPolicies: never guess it. */
        mesh_api_error(req, 503, NULL,
                       "the store cannot be read, so the CA that signs for this proxy is not "
                       "known; try again");
        goto out;
    }
    const char *ns = e->ns ? e->ns : MESH_DEFAULT_NAMESPACE;
    const char *name = e->role == MESH_PROXY_GATEWAY ? e->gateway : e->service;
    const struct mesh_ca *ca = signing_ca(api, name, ns);
    struct mesh_ca_identity ident = {.trust_domain = api->opt.trust_domain, .ns = ns, .name = name};
    enum mesh_err err =
        mesh_ca_sign(ca, csr, strlen(csr), &ident, api->opt.cert_ttl_s, time(NULL), &leaf, &errmsg);
    if (err == MESH_E_INVALID || err == MESH_E_UNSUPPORTED) {
        mesh_api_error(req, 400, NULL, "request body: %s", errmsg);
        goto out;
    }
    if (err != MESH_OK) {
        fprintf(stderr,
                "lvl=error msg=\"cannot issue a certificate\" proxy=%s ca=%s reason=\"%s\"\n", id,
                mesh_ca_name(ca), errmsg ? errmsg : mesh_strerror(err));
        mesh_api_error(req, 500, NULL, "cannot issue a certificate from the CA %s: %s",
                       mesh_ca_name(ca), errmsg ? errmsg : mesh_strerror(err));
        goto out;
    }
    char nb[MESH_CA_TIME_LEN], na[MESH_CA_TIME_LEN];
    mesh_ca_format_time(leaf.not_before, nb, sizeof(nb));
    mesh_ca_format_time(leaf.not_after, na, sizeof(na));
    uint64_t ca_gen = mesh_api_ca_generation(api);
    fprintf(stderr,
            "lvl=info msg=\"certificate issued\" proxy=%s spiffe_id=%s ca=%s serial=%s "
            "not_after=%s ca_generation=%" PRIu64 "\n",
            id, leaf.spiffe_id, mesh_ca_name(ca), leaf.serial, na, ca_gen);
    /* The bundle of this answer is the one of the current phase: the rotation waits for it. */
    if (api->opt.rotation)
        mesh_ca_rotation_issued(api->opt.rotation, id, mesh_loop_now_ms(api->loop));
    send_json(req, 200,
              json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "certificate", leaf.cert_pem,
                        "chain", mesh_ca_cert_pem(ca), "trust_bundle", cas->bundle_pem, "spiffe_id",
                        leaf.spiffe_id, "serial", leaf.serial, "not_before", nb, "not_after", na,
                        "ca", mesh_ca_name(ca), "ca_generation", (json_int_t)ca_gen));
out:
    mesh_ca_leaf_clear(&leaf);
    free(errmsg);
    json_decref(root);
}

/* The GET /v1/ca document. */
static json_t *ca_doc(struct mesh_api *api)
{
    const struct mesh_ca_set *cas = api->opt.cas;
    const struct mesh_ca *issuer = mesh_ca_set_issuer(cas);
    size_t n = 0;
    const struct mesh_ca **list = mesh_ca_set_trusted(cas, &n);
    json_t *roots = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct mesh_ca *ca = list[i];
        char na[MESH_CA_TIME_LEN];
        mesh_ca_format_time(mesh_ca_not_after(ca), na, sizeof(na));
        json_array_append_new(roots, json_pack("{s:s,s:s,s:s,s:s,s:b}", "name", mesh_ca_name(ca),
                                               "subject", mesh_ca_subject(ca), "not_after", na,
                                               "sha256_fingerprint", mesh_ca_fingerprint(ca),
                                               "issuing", ca == issuer));
    }
    free(list);
    json_t *doc =
        json_pack("{s:s,s:s,s:o,s:s}", "trust_domain", api->opt.trust_domain, "trust_bundle",
                  cas->bundle_pem, "roots", roots, "issuing_root", mesh_ca_name(issuer));
    if (api->opt.rotation)
        json_object_set_new(doc, "rotation", mesh_ca_rotation_json(api->opt.rotation, api->reg));
    return doc;
}

void mesh_api_ca(struct mesh_api *api, struct mesh_httpd_req *req)
{
    const struct mesh_ca_set *cas = api->opt.cas;
    if (!cas || cas->len == 0) {
        mesh_api_error(req, 503, NULL, "meshd has no CA");
        return;
    }
    send_json(req, 200, ca_doc(api));
}

void mesh_api_ca_rotate(struct mesh_api *api, struct mesh_httpd_req *req)
{
    char *errmsg = NULL;
    if (!api->opt.rotation || !api->opt.cas || api->opt.cas->len == 0) {
        mesh_api_error(req, 503, NULL, "meshd has no root CA to rotate");
        return;
    }
    enum mesh_err err = mesh_ca_rotation_start(api->opt.rotation, mesh_loop_now_ms(api->loop),
                                               mesh_api_wall_ms(), &errmsg);
    if (err == MESH_E_CONFLICT) {
        mesh_api_error(req, 409, NULL, "%s", errmsg);
    } else if (err != MESH_OK) {
        fprintf(stderr, "lvl=error msg=\"cannot start the root rotation\" reason=\"%s\"\n",
                errmsg ? errmsg : mesh_strerror(err));
        mesh_api_error(req, 500, NULL, "cannot start the root rotation: %s",
                       errmsg ? errmsg : mesh_strerror(err));
    } else {
        mesh_api_changed(api); /* the new generation wakes every config watch */
        send_json(req, 202, ca_doc(api));
    }
    free(errmsg);
}

uint64_t mesh_api_ca_generation(const struct mesh_api *api)
{
    return api->opt.rotation ? mesh_ca_rotation_generation(api->opt.rotation) : 0;
}

/* --- the rotation's timer --- */

static void on_rotation_tick(struct mesh_timer *t, void *data)
{
    struct mesh_api *api = data;
    (void)t;
    struct mesh_ca_rotation_timing timing = {
        /* The proxies publish a certificate a moment after meshd answers them. */
        .grace_ms = 2 * api->opt.heartbeat_interval_ms,
        .hold_until_ms = api->rotation_hold_until_ms,
    };
    bool changed = false;
    char *errmsg = NULL;
    enum mesh_err err =
        mesh_ca_rotation_tick(api->opt.rotation, api->reg, &timing, mesh_loop_now_ms(api->loop),
                              mesh_api_wall_ms(), &changed, &errmsg);
    if (err != MESH_OK && !api->rotation_failing)
        fprintf(stderr,
                "lvl=error msg=\"cannot move the root rotation on; retrying\" reason=\"%s\"\n",
                errmsg ? errmsg : mesh_strerror(err));
    api->rotation_failing = err != MESH_OK;
    free(errmsg);
    if (changed)
        mesh_api_changed(api);
    mesh_timer_start(api->loop, &api->rotation_timer, api->opt.heartbeat_interval_ms);
}

void mesh_api_ca_rotation_start_timer(struct mesh_api *api)
{
    /* Every proxy alive when meshd started registers again within this. */
    api->rotation_hold_until_ms =
        mesh_loop_now_ms(api->loop) + MESH_CA_ROTATION_REJOIN_MS + api->opt.heartbeat_interval_ms;
    mesh_timer_init(&api->rotation_timer, on_rotation_tick, api);
    if (api->opt.rotation)
        mesh_timer_start(api->loop, &api->rotation_timer, api->opt.heartbeat_interval_ms);
}

void mesh_api_ca_rotation_stop_timer(struct mesh_api *api)
{
    mesh_timer_stop(api->loop, &api->rotation_timer);
}
