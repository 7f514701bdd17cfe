/* SPDX-License-Identifier: Apache-2.0 */
/* SecurityPolicies resolved for one service: its mTLS mode, outbound mTLS, and the request-time
 * authorization check. */
#include "security.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_config.h"
#include "mesh/service.h"
#include "model/model.h"
#include "model/mtls_mode.h"
#include "model/service_host.h"

#define SPIFFE_SCHEME "spiffe://"

/* Whether the n bytes at p spell exactly the NUL-terminated s. */
static bool span_is(const char *p, size_t n, const char *s)
{
    return strncmp(p, s, n) == 0 && s[n] == '\0';
}

/* --- building the inbound policy --- */

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void rule_clear(struct mesh_authz_rule_rt *r)
{
    free(r->name);
    free_strings(r->from, r->n_from);
    free_strings(r->methods, r->n_methods);
    free_strings(r->paths, r->n_paths);
    memset(r, 0, sizeof(*r));
}

void mesh_inbound_policy_clear(struct mesh_inbound_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_rules; i++)
        rule_clear(&p->rules[i]);
    free(p->rules);
    free(p->mode_source);
    memset(p, 0, sizeof(*p));
}

/* A growable list of owned strings without duplicates. */
struct string_set {
    char **items;
    size_t len;
    size_t cap;
};

/* Adds the n bytes at s (takes nothing: copies). MESH_E_NOMEM. */
static enum mesh_err set_add(struct string_set *set, const char *s, size_t n)
{
    for (size_t i = 0; i < set->len; i++)
        if (span_is(s, n, set->items[i]))
            return MESH_OK;
    if (set->len == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 4;
        char **items = realloc(set->items, cap * sizeof(*items));
        if (!items)
            return MESH_E_NOMEM;
        set->items = items;
        set->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return MESH_E_NOMEM;
    memcpy(copy, s, n);
    copy[n] = '\0';
    set->items[set->len++] = copy;
    return MESH_OK;
}

/* Adds "ns/name" (the form mesh_authz_check compares a peer's SPIFFE ID with). */
static enum mesh_err set_add_ns_name(struct string_set *set, const char *ns, size_t ns_len,
                                     const char *name, size_t name_len)
{
    char *buf = malloc(ns_len + 1 + name_len + 1);
    if (!buf)
        return MESH_E_NOMEM;
    memcpy(buf, ns, ns_len);
    buf[ns_len] = '/';
    memcpy(buf + ns_len + 1, name, name_len);
    enum mesh_err err = set_add(set, buf, ns_len + 1 + name_len);
    free(buf);
    return err;
}

/* Resolves one `from` item into set: "*" and SPIFFE IDs as written; a short form as "ns/name"
 * plus "ns/SERVICE" for every Service of ns labelled app: name. A spelling that names nothing
 * adds nothing. */
static enum mesh_err add_identity(struct string_set *set, struct mesh_resource *const *res,
                                  size_t n, const char *id)
{
    if (!id)
        return MESH_OK;
    if (strcmp(id, "*") == 0 || strncmp(id, SPIFFE_SCHEME, strlen(SPIFFE_SCHEME)) == 0)
        return set_add(set, id, strlen(id));
    struct mesh_service_ref who;
    if (!mesh_service_host_split(id, NULL, &who))
        return MESH_OK;
    enum mesh_err err = set_add_ns_name(set, who.ns, who.ns_len, who.name, who.name_len);
    for (size_t i = 0; i < n && err == MESH_OK; i++) {
        const struct mesh_resource *r = res[i];
        if (!r || r->kind != MESH_KIND_SERVICE || !r->name ||
            !span_is(who.ns, who.ns_len, mesh_resource_namespace(r)) ||
            !mesh_labels_has(&r->labels, "app", who.name, who.name_len))
            continue;
        err = set_add_ns_name(set, who.ns, who.ns_len, r->name, strlen(r->name));
    }
    return err;
}

static enum mesh_err copy_strings(const struct mesh_string_list *list, char ***out, size_t *n)
{
    struct string_set set = {0};
    enum mesh_err err = MESH_OK;
    for (size_t i = 0; i < list->len && err == MESH_OK; i++)
        if (list->items[i])
            err = set_add(&set, list->items[i], strlen(list->items[i]));
    *out = set.items;
    *n = set.len;
    return err;
}

/* Fills *r from rule `index` of sp. *skip is set when `from` lists identities of which none
 * names anyone: such a rule can match no request, and an empty from list would read as
 * "anyone". On failure r holds what was built so far (rule_clear frees it). */
static enum mesh_err build_rule(struct mesh_resource *const *res, size_t n,
                                const struct mesh_security_policy *sp, size_t index,
                                struct mesh_authz_rule_rt *r, bool *skip)
{
    const struct mesh_authorization_rule *src = &sp->authorization[index];
    const char *sp_ns = mesh_resource_namespace(&sp->res);
    const char *sp_name = sp->res.name ? sp->res.name : "";
    enum mesh_err err = MESH_OK;
    struct string_set from = {0};
    *skip = false;

    size_t len = strlen(sp_ns) + 1 + strlen(sp_name) + 1 + 20 + 1;
    r->name = malloc(len);
    if (!r->name) {
        err = MESH_E_NOMEM;
        goto out;
    }
    snprintf(r->name, len, "%s/%s#%zu", sp_ns, sp_name, index);
    for (size_t i = 0; i < src->from.len && err == MESH_OK; i++)
        err = add_identity(&from, res, n, src->from.items[i]);
    if (err != MESH_OK)
        goto out;
    *skip = src->from.len > 0 && from.len == 0;
    err = copy_strings(&src->methods, &r->methods, &r->n_methods);
    if (err != MESH_OK)
        goto out;
    err = copy_strings(&src->paths, &r->paths, &r->n_paths);
out:
    r->from = from.items;
    r->n_from = from.len;
    return err;
}

static bool rule_protects(struct mesh_resource *const *res, size_t n,
                          const struct mesh_security_policy *sp, size_t index, const char *service,
                          const char *ns)
{
    const struct mesh_string_list *to = &sp->authorization[index].to;
    for (size_t i = 0; i < to->len; i++)
        if (mesh_security_host_names(res, n, to->items[i], mesh_resource_namespace(&sp->res),
                                     service, ns))
            return true;
    return false;
}

static enum mesh_err build_rules(struct mesh_resource *const *res, size_t n, const char *service,
                                 const char *ns, struct mesh_inbound_policy *out)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!res[i] || res[i]->kind != MESH_KIND_SECURITY_POLICY)
            continue;
        const struct mesh_security_policy *sp = (const struct mesh_security_policy *)res[i];
        for (size_t k = 0; k < sp->n_authorization; k++)
            if (rule_protects(res, n, sp, k, service, ns))
                count++;
    }
    if (count == 0)
        return MESH_OK;
    out->authz = true;
    out->rules = calloc(count, sizeof(*out->rules));
    if (!out->rules)
        return MESH_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!res[i] || res[i]->kind != MESH_KIND_SECURITY_POLICY)
            continue;
        const struct mesh_security_policy *sp = (const struct mesh_security_policy *)res[i];
        for (size_t k = 0; k < sp->n_authorization; k++) {
            if (!rule_protects(res, n, sp, k, service, ns))
                continue;
            struct mesh_authz_rule_rt r = {0};
            bool skip = false;
            enum mesh_err err = build_rule(res, n, sp, k, &r, &skip);
            if (err != MESH_OK || skip) {
                rule_clear(&r);
                if (err != MESH_OK)
                    return err;
                continue;
            }
            out->rules[out->n_rules++] = r;
        }
    }
    return MESH_OK;
}

enum mesh_err mesh_inbound_policy_build(struct mesh_resource *const *res, size_t n,
                                        const char *service, const char *ns,
                                        struct mesh_inbound_policy *out)
{
    memset(out, 0, sizeof(*out));
    if (!service)
        service = "";
    if (!ns)
        ns = MESH_DEFAULT_NAMESPACE;
    enum mesh_err err = MESH_OK;
    const struct mesh_security_policy *by = mesh_security_deciding_policy(res, n, service, ns);
    out->mode = mesh_security_mode(res, n, service, ns);
    if (by) {
        const char *name = by->res.name ? by->res.name : "";
        const char *by_ns = mesh_resource_namespace(&by->res);
        size_t len = strlen(by_ns) + 1 + strlen(name) + 1;
        out->mode_source = malloc(len);
        if (out->mode_source)
            snprintf(out->mode_source, len, "%s/%s", by_ns, name);
    } else {
        out->mode_source = strdup("mesh default");
    }
    if (!out->mode_source) {
        err = MESH_E_NOMEM;
        goto out;
    }
    err = build_rules(res, n, service, ns, out);
out:
    if (err != MESH_OK)
        mesh_inbound_policy_clear(out);
    return err;
}

/* --- request time --- */

/* The namespace and name of a SPIFFE ID "spiffe://TD/ns/NS/sa/NAME", borrowed from id; false
 * for any other shape (then it matches no short form). */
static bool split_spiffe(const char *id, struct mesh_service_ref *out)
{
    size_t scheme_len = strlen(SPIFFE_SCHEME);
    if (!id || strncmp(id, SPIFFE_SCHEME, scheme_len) != 0)
        return false;
    const char *td = id + scheme_len;
    const char *slash = strchr(td, '/');
    if (!slash || slash == td || strncmp(slash, "/ns/", 4) != 0)
        return false;
    const char *ns = slash + 4;
    const char *ns_end = strchr(ns, '/');
    if (!ns_end || ns_end == ns || strncmp(ns_end, "/sa/", 4) != 0)
        return false;
    const char *name = ns_end + 4;
    if (!*name || strchr(name, '/'))
        return false;
    *out = (struct mesh_service_ref){name, strlen(name), ns, (size_t)(ns_end - ns)};
    return true;
}

/* Whether entry, an "ns/name" string, is the namespace and name of the peer. */
static bool entry_is_peer(const char *entry, const struct mesh_service_ref *peer)
{
    return strncmp(entry, peer->ns, peer->ns_len) == 0 && entry[peer->ns_len] == '/' &&
           span_is(peer->name, peer->name_len, entry + peer->ns_len + 1);
}

static bool from_matches(const struct mesh_authz_rule_rt *r, const char *peer_id,
                         const struct mesh_service_ref *peer)
{
    if (r->n_from == 0)
        return true;
    for (size_t i = 0; i < r->n_from; i++) {
        const char *e = r->from[i];
        if (e[0] == '*' && e[1] == '\0')
            return true;
        if (strncmp(e, SPIFFE_SCHEME, strlen(SPIFFE_SCHEME)) == 0) {
            if (peer_id && strcmp(e, peer_id) == 0)
                return true;
        } else if (peer && entry_is_peer(e, peer)) {
            return true;
        }
    }
    return false;
}

static bool method_matches(const struct mesh_authz_rule_rt *r, struct mesh_slice method)
{
    if (r->n_methods == 0)
        return true;
    for (size_t i = 0; i < r->n_methods; i++)
        if (mesh_slice_eq_cstr(method, r->methods[i]))
            return true;
    return false;
}

/* A path an app could read as another one: a "." or ".." segment, an empty segment, or a
 * percent-escape (which may hide either, or a '/'). The proxy forwards paths as sent, so such a
 * path matches only rules that allow any path: /api/../admin never passes for /api/. */
static bool path_is_normal(struct mesh_slice path)
{
    for (size_t i = 0; i < path.len; i++) {
        if (path.p[i] == '%')
            return false;
        if (path.p[i] != '/')
            continue;
        size_t end = i + 1;
        while (end < path.len && path.p[end] != '/')
            end++;
        size_t seg = end - i - 1;
        if ((seg == 0 && end < path.len) || (seg == 1 && path.p[i + 1] == '.') ||
            (seg == 2 && path.p[i + 1] == '.' && path.p[i + 2] == '.'))
            return false;
    }
    return true;
}

static bool path_matches(const struct mesh_authz_rule_rt *r, struct mesh_slice path)
{
    if (r->n_paths == 0)
        return true;
    bool normal = path_is_normal(path);
    for (size_t i = 0; i < r->n_paths; i++) {
        const char *want = r->paths[i];
        size_t len = strlen(want);
        if (!normal) {
            if (strcmp(want, "*") == 0)
                return true;
        } else if (len > 0 && want[len - 1] == '*') {
            if (mesh_slice_starts_with(path, mesh_slice_make(want, len - 1)))
                return true;
        } else if (mesh_slice_eq(path, mesh_slice_make(want, len))) {
            return true;
        }
    }
    return false;
}

bool mesh_authz_check(const struct mesh_inbound_policy *p, const char *peer_id,
                      struct mesh_slice method, struct mesh_slice path, const char **rule)
{
    const char *unused;
    if (!rule)
        rule = &unused;
    if (!p->authz) {
        *rule = "none";
        return true;
    }
    struct mesh_service_ref peer;
    const struct mesh_service_ref *who = split_spiffe(peer_id, &peer) ? &peer : NULL;
    if (path.len > 0) {
        const char *q = memchr(path.p, '?', path.len);
        if (q)
            path.len = (size_t)(q - path.p);
    }
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct mesh_authz_rule_rt *r = &p->rules[i];
        if (from_matches(r, peer_id, who) && method_matches(r, method) && path_matches(r, path)) {
            *rule = r->name;
            return true;
        }
    }
    *rule = "default-deny";
    return false;
}

void mesh_authz_source(const char *peer_id, char *out, size_t size)
{
    if (size == 0)
        return;
    struct mesh_service_ref peer;
    if (!peer_id)
        snprintf(out, size, "unauthenticated");
    else if (split_spiffe(peer_id, &peer) && peer.name_len <= 0xffff && peer.ns_len <= 0xffff)
        snprintf(out, size, "%.*s.%.*s", (int)peer.name_len, peer.name, (int)peer.ns_len, peer.ns);
    else
        snprintf(out, size, "%s", peer_id);
}
