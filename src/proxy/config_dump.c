/* SPDX-License-Identifier: Apache-2.0 */
/* /config_dump?format=json: the live snapshot as the proxy really uses it (routes, clusters,
 * endpoints with their health and load) and its workload certificate, for `meshctl
 * proxy-config`; and the certificate's section of the YAML dump. The shape is documented in
 * docs/meshproxy.md. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "identity.h"
#include "proxy.h"

/* Every json_*_new below steals a reference; a NULL (out of memory) makes the set fail and the
 * final dump come out NULL, which the caller answers as an error. */
#define SET(obj, key, val) json_object_set_new((obj), (key), (val))

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *uint_json(uint64_t v)
{
    return json_integer((json_int_t)v);
}

/* A route's match as the documents write it, with the path kind always spelt out. */
static json_t *match_json(const struct mesh_route_match *m)
{
    json_t *o = json_object();
    static const char *const kinds[] = {"any", "exact", "prefix", "glob", "regex"};
    if (m->path.kind != MESH_PATH_ANY && m->path.value) {
        json_t *path = json_object();
        SET(path, kinds[m->path.kind], json_string(m->path.value));
        SET(o, "path", path);
    }
    if (m->n_headers) {
        static const char *const hkinds[] = {"exact", "prefix", "regex", "present"};
        json_t *headers = json_object();
        for (size_t h = 0; h < m->n_headers; h++) {
            const struct mesh_header_match *hm = &m->headers[h];
            json_t *cond = json_object();
            SET(cond, hkinds[hm->kind],
                hm->kind == MESH_HEADER_PRESENT ? json_true() : str_or_null(hm->value));
            SET(headers, hm->name, cond);
        }
        SET(o, "headers", headers);
    }
    if (m->method)
        SET(o, "method", json_string(m->method));
    return o;
}

static json_t *fault_json(bool has, const struct mesh_fault_rt *f)
{
    if (!has)
        return json_null();
    json_t *o = json_object();
    SET(o, "delay_ms", uint_json(f->delay_ms));
    SET(o, "delay_percentage", json_real(f->delay_pct));
    SET(o, "abort_status", uint_json(f->abort_status));
    SET(o, "abort_percentage", json_real(f->abort_pct));
    return o;
}

static json_t *retries_json(const struct mesh_route_rt *rt)
{
    static const char *const names[] = {"5xx", "gateway-error", "reset", "connect-failure"};
    json_t *o = json_object();
    SET(o, "attempts", uint_json(rt->retry_attempts));
    SET(o, "per_try_timeout_ms", uint_json(rt->per_try_timeout_ms));
    json_t *on = json_array();
    for (uint32_t k = 0; k < 4; k++)
        if (rt->retry_on & (1u << k))
            json_array_append_new(on, json_string(names[k]));
    SET(o, "retry_on", on);
    return o;
}

static json_t *route_json(const struct mesh_vhost *vh, const struct mesh_route_rt *rt,
                          uint64_t default_timeout_ms)
{
    json_t *o = json_object();
    SET(o, "virtual_host", json_string(vh->name));
    if (vh->src) {
        json_t *vs = json_object();
        SET(vs, "name", json_string(vh->src->res.name));
        SET(vs, "namespace", json_string(mesh_resource_namespace(&vh->src->res)));
        SET(o, "virtual_service", vs);
    } else {
        SET(o, "virtual_service", json_null()); /* a Service named directly by the Host */
    }
    json_t *hosts = json_array();
    for (size_t h = 0; h < vh->hosts.len; h++)
        json_array_append_new(hosts, json_string(vh->hosts.items[h]));
    SET(o, "hosts", hosts);
    SET(o, "name", json_string(rt->name));
    json_t *matches = json_array();
    for (size_t m = 0; rt->src && m < rt->src->n_matches; m++)
        json_array_append_new(matches, match_json(&rt->src->matches[m]));
    SET(o, "matches", matches);
    json_t *dests = json_array();
    for (size_t d = 0; d < rt->n_dests; d++) {
        const struct mesh_cluster *cl = rt->dests[d].cluster;
        json_t *dst = json_object();
        SET(dst, "host", json_string(rt->dests[d].host));
        SET(dst, "service", cl ? json_sprintf("%s.%s", cl->name, cl->ns) : json_null());
        SET(dst, "weight", json_integer(rt->weights[d]));
        json_array_append_new(dests, dst);
    }
    SET(o, "destinations", dests);
    SET(o, "timeout_ms", uint_json(rt->timeout_ms ? rt->timeout_ms : default_timeout_ms));
    SET(o, "retries", retries_json(rt));
    SET(o, "fault", fault_json(rt->has_fault, &rt->fault));
    return o;
}

static json_t *cluster_json(const struct mesh_cluster *cl, const char *direction)
{
    json_t *o = json_object();
    SET(o, "name", json_string(cl->name));
    SET(o, "namespace", json_string(cl->ns));
    SET(o, "direction", json_string(direction));
    SET(o, "lb_policy", json_string(mesh_lb_policy_str(cl->lb)));
    json_t *cb = json_object();
    SET(cb, "max_connections", uint_json(cl->limits.max_connections));
    SET(cb, "max_pending_requests", uint_json(cl->limits.max_pending_requests));
    SET(cb, "max_requests", uint_json(cl->limits.max_requests));
    SET(cb, "max_retries", uint_json(cl->limits.max_retries));
    SET(o, "circuit_breaker", cb);
    if (cl->outlier_enabled) {
        json_t *od = json_object();
        SET(od, "consecutive_errors", uint_json(cl->outlier.consecutive_errors));
        SET(od, "interval_ms", uint_json(cl->outlier.interval_ms));
        SET(od, "base_ejection_time_ms", uint_json(cl->outlier.base_ejection_time_ms));
        SET(od, "max_ejection_percent", uint_json(cl->outlier.max_ejection_percent));
        SET(o, "outlier_detection", od);
    } else {
        SET(o, "outlier_detection", json_null());
    }
    SET(o, "fault", fault_json(cl->has_fault, &cl->fault));
    const struct mesh_breaker *b = &cl->state->breaker;
    json_t *now = json_object();
    SET(now, "requests", uint_json(mesh_breaker_active(b, MESH_BREAKER_REQUESTS)));
    SET(now, "pending_requests", uint_json(mesh_breaker_active(b, MESH_BREAKER_PENDING)));
    SET(now, "connections", uint_json(mesh_breaker_active(b, MESH_BREAKER_CONNECTIONS)));
    SET(now, "retries", uint_json(mesh_breaker_active(b, MESH_BREAKER_RETRIES)));
    SET(o, "active", now);
    SET(o, "endpoints", uint_json(cl->n_endpoints));
    return o;
}

static void add_endpoints(json_t *list, const struct mesh_cluster *cl, const char *direction)
{
    const struct mesh_cluster_state *st = cl->state;
    for (size_t e = 0; e < cl->n_endpoints; e++) {
        const struct mesh_endpoint_rt *ep = &cl->endpoints[e];
        json_t *o = json_object();
        SET(o, "cluster", json_string(cl->name));
        SET(o, "namespace", json_string(cl->ns));
        SET(o, "direction", json_string(direction));
        SET(o, "address", json_string(ep->name));
        json_t *labels = json_object();
        for (size_t l = 0; ep->labels && l < ep->labels->len; l++)
            SET(labels, ep->labels->items[l].key, json_string(ep->labels->items[l].value));
        SET(o, "labels", labels);
        bool ejected = cl->outlier_enabled && mesh_outlier_ejected(&st->outlier, e);
        SET(o, "health", json_string(ejected ? "ejected" : "healthy"));
        SET(o, "ejected", json_boolean(ejected));
        SET(o, "times_ejected", uint_json(mesh_outlier_times_ejected(&st->outlier, e)));
        uint32_t active =
            e < st->n_endpoints ? atomic_load_explicit(&st->active[e], memory_order_relaxed) : 0;
        SET(o, "active_requests", uint_json(active));
        json_array_append_new(list, o);
    }
}

static json_t *identity_json(const struct mesh_proxy *p)
{
    const struct mesh_proxy_options *o = &p->opt;
    json_t *id = json_object();
    SET(id, "id", str_or_null(o->id));
    SET(id, "service", str_or_null(o->service));
    SET(id, "namespace", o->mode == MESH_PROXY_STATIC ? json_null() : str_or_null(o->ns));
    SET(id, "version", str_or_null(o->version));
    SET(id, "gateway", str_or_null(o->gateway));
    return id;
}

static json_t *listeners_json(const struct mesh_proxy *p)
{
    json_t *l = json_object();
    for (int r = 0; r < MESH_LISTENER_N_ROLES; r++) {
        if (!p->addrs[r].enabled)
            continue;
        const char *name = r == MESH_LISTENER_ROUTER && p->opt.mode == MESH_PROXY_SIDECAR
                               ? "outbound"
                               : mesh_listener_role_str((enum mesh_listener_role)r);
        SET(l, name, json_string(p->addrs[r].text));
    }
    return l;
}

static json_t *control_json(struct mesh_proxy *p)
{
    if (!p->control)
        return json_null();
    struct mesh_control_status st;
    mesh_control_status(p->control, &st);
    json_t *o = json_object();
    SET(o, "url", json_string(p->opt.control_url));
    SET(o, "registered", json_boolean(st.registered));
    SET(o, "connected", json_boolean(st.connected));
    SET(o, "configs_applied", uint_json(st.configs));
    SET(o, "configs_refused", uint_json(st.rejected));
    SET(o, "last_error", st.last_error[0] ? json_string(st.last_error) : json_null());
    return o;
}

/* The workload certificate (never its key) and its renewals; null in static mode, which has
 * none. */
static json_t *certificate_json(struct mesh_proxy *p)
{
    if (p->opt.mode == MESH_PROXY_STATIC)
        return json_null();
    struct mesh_tls_identity *id = mesh_identity_acquire(p);
    json_t *o = id ? mesh_identity_json(id) : json_object();
    mesh_identity_unref(id);
    if (json_object_size(o) == 0) {
        static const char *const fields[] = {"spiffe_id", "serial", "not_before",
                                             "not_after", "issuer", "ca"};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
            SET(o, fields[i], json_null());
        SET(o, "trust_bundle", json_array());
    }
    struct mesh_cert_status st = {0};
    if (p->control)
        mesh_control_cert_status(p->control, &st);
    json_t *r = json_object();
    SET(r, "renewals", uint_json(st.renewals));
    SET(r, "failures", uint_json(st.failures));
    if (st.next_attempt > 0) {
        char next[MESH_IDENTITY_TIME_LEN];
        mesh_identity_format_time(st.next_attempt, next, sizeof(next));
        SET(r, "next_attempt", json_string(next));
    } else {
        SET(r, "next_attempt", json_null());
    }
    SET(r, "last_error", st.last_error[0] ? json_string(st.last_error) : json_null());
    SET(o, "renewal", r);
    return o;
}

/* Appends v as block YAML at indent (an object's members one per line, an array's items as
 * "- "); scalars are written as JSON, which YAML reads as the same values (strings
 * double-quoted, with JSON's escapes). */
static enum mesh_err yaml_value(const json_t *v, int indent, bool in_item, struct mesh_strbuf *out);

/* lead: what separates it from the key or dash before it. */
static enum mesh_err yaml_scalar(const json_t *v, const char *lead, struct mesh_strbuf *out)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    enum mesh_err err = text ? mesh_strbuf_printf(out, "%s%s\n", lead, text) : MESH_E_NOMEM;
    free(text);
    return err;
}

static enum mesh_err yaml_value(const json_t *v, int indent, bool in_item, struct mesh_strbuf *out)
{
    enum mesh_err err = MESH_OK;
    if (json_is_object(v) && json_object_size(v)) {
        const char *key;
        json_t *m;
        bool first = true;
        if (!in_item)
            err = mesh_strbuf_puts(out, "\n");
        json_object_foreach((json_t *)v, key, m)
        {
            /* An array item's first member sits on the "- " line. */
            int pad = first && in_item ? 0 : indent;
            if (err == MESH_OK)
                err = mesh_strbuf_printf(out, "%*s%s:", pad, "", key);
            if (err == MESH_OK)
                err = yaml_value(m, indent + 2, false, out);
            first = false;
        }
    } else if (json_is_array(v) && json_array_size(v)) {
        size_t i;
        json_t *item;
        err = mesh_strbuf_puts(out, "\n");
        json_array_foreach(v, i, item)
        {
            if (err == MESH_OK)
                err = mesh_strbuf_printf(out, "%*s-", indent, "");
            if (err != MESH_OK)
                break;
            if (json_is_object(item) && json_object_size(item)) {
                err = mesh_strbuf_puts(out, " ");
                if (err == MESH_OK)
                    err = yaml_value(item, indent + 2, true, out);
            } else {
                err = yaml_scalar(item, " ", out);
            }
        }
    } else {
        err = yaml_scalar(v, " ", out);
    }
    return err;
}

enum mesh_err mesh_config_dump_identity_yaml(struct mesh_proxy *p, struct mesh_strbuf *out)
{
    if (p->opt.mode == MESH_PROXY_STATIC)
        return MESH_OK;
    json_t *cert = certificate_json(p);
    if (!cert)
        return MESH_E_NOMEM;
    enum mesh_err err = mesh_strbuf_puts(out, "---\n# The proxy's workload certificate, from "
                                              "meshd's CA (not a resource; never the key)\n"
                                              "identity:");
    if (err == MESH_OK)
        err = yaml_value(cert, 2, false, out);
    json_decref(cert);
    return err;
}

/* The tracing settings the snapshot holds (docs/tracing.md). */
static json_t *tracing_json(const struct mesh_trace_config *t)
{
    json_t *o = json_object();
    SET(o, "enabled", json_boolean(t->enabled));
    SET(o, "sampling_rate", json_real(t->sampling_rate));
    SET(o, "collector", t->enabled ? json_string(t->url) : json_null());
    SET(o, "source", t->enabled ? json_string(t->source) : json_null());
    return o;
}

enum mesh_err mesh_config_dump_json(struct mesh_proxy *p, const struct mesh_snapshot *s,
                                    struct mesh_strbuf *out)
{
    json_t *root = json_object();
    SET(root, "mode", json_string(mesh_proxy_mode_str(p->opt.mode)));
    SET(root, "proxy", identity_json(p));
    SET(root, "listeners", listeners_json(p));
    json_t *cfg = json_object();
    SET(cfg, "version", s->awaiting_config ? json_null() : json_string(s->version_text));
    SET(cfg, "source",
        json_string(s->awaiting_config ? "none"
                    : s->from_control  ? "meshd"
                                       : "file"));
    SET(cfg, "from_control", json_boolean(s->from_control));
    SET(cfg, "file", str_or_null(p->opt.config_path));
    SET(root, "config", cfg);
    SET(root, "control", control_json(p));
    SET(root, "identity", certificate_json(p));
    SET(root, "tracing", tracing_json(&s->trace));

    json_t *routes = json_array();
    for (size_t v = 0; v < s->n_vhosts; v++)
        for (size_t r = 0; r < s->vhosts[v].n_routes; r++)
            json_array_append_new(routes, route_json(&s->vhosts[v], &s->vhosts[v].routes[r],
                                                     p->opt.route_timeout_ms));
    SET(root, "routes", routes);
    json_t *clusters = json_array(), *endpoints = json_array();
    for (size_t c = 0; c < s->n_clusters; c++) {
        json_array_append_new(clusters, cluster_json(&s->clusters[c], "outbound"));
        add_endpoints(endpoints, &s->clusters[c], "outbound");
    }
    for (size_t c = 0; p->inbound && c < p->inbound->n_clusters; c++) {
        json_array_append_new(clusters, cluster_json(&p->inbound->clusters[c], "inbound"));
        add_endpoints(endpoints, &p->inbound->clusters[c], "inbound");
    }
    SET(root, "clusters", clusters);
    SET(root, "endpoints", endpoints);

    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    enum mesh_err err = text ? mesh_strbuf_puts(out, text) : MESH_E_NOMEM;
    if (err == MESH_OK)
        err = mesh_strbuf_puts(out, "\n");
    free(text);
    return err;
}

const char *mesh_proxy_mode_str(enum mesh_proxy_mode mode)
{
    switch (mode) {
    case MESH_PROXY_STATIC:
        return "static";
    case MESH_PROXY_SIDECAR:
        return "sidecar";
    case MESH_PROXY_GATEWAY:
        return "gateway";
    }
    return "unknown";
}

const char *mesh_listener_role_str(enum mesh_listener_role role)
{
    switch (role) {
    case MESH_LISTENER_ROUTER:
        return "listen";
    case MESH_LISTENER_INBOUND:
        return "inbound";
    case MESH_LISTENER_ADMIN:
        return "admin";
    case MESH_LISTENER_N_ROLES:
        break;
    }
    return "unknown";
}
