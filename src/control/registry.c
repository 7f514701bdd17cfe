/* SPDX-License-Identifier: Apache-2.0 */
/* meshd's proxy registry: registrations kept sorted by id, heartbeats, expiry and acks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "model/schema.h"
#include "net/sock.h"
#include "registry.h"

struct mesh_registry {
    uint64_t ttl_ms;
    uint64_t generation;
    struct mesh_proxy_entry **items; /* sorted by id, so list and find need no extra index */
    size_t len, cap;
};

struct mesh_registry *mesh_registry_new(uint64_t ttl_ms)
{
    struct mesh_registry *reg = xcalloc(1, sizeof(*reg));
    reg->ttl_ms = ttl_ms;
    return reg;
}

static void entry_free(struct mesh_proxy_entry *e)
{
    if (!e)
        return;
    free(e->service);
    free(e->ns);
    free(e->gateway);
    free(e->address);
    free(e->admin);
    mesh_labels_clear(&e->labels);
    free(e);
}

void mesh_registry_free(struct mesh_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->len; i++)
        entry_free(reg->items[i]);
    free(reg->items);
    free(reg);
}

bool mesh_proxy_id_valid(const char *id)
{
    if (!id || !*id || strlen(id) > MESH_PROXY_ID_MAX)
        return false;
    for (const char *p = id; *p; p++) {
        bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
        if (!alnum && (p == id || (*p != '.' && *p != '-')))
            return false;
    }
    return true;
}

/* Index of id in reg->items, or where it would be inserted (*found false). */
static size_t lookup(const struct mesh_registry *reg, const char *id, bool *found)
{
    size_t lo = 0, hi = reg->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(reg->items[mid]->id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static bool set(const char *s)
{
    return s && *s;
}

/* A name that ends up as a Service's or a namespace's name, so it must be one. */
static bool check_label(const char *field, const char *value, char **errmsg)
{
    char why[256];
    if (mesh_text_ok(MESH_CHECK_DNS_LABEL, value, why, sizeof(why)))
        return true;
    *errmsg = xasprintf("%s: %s", field, why);
    return false;
}

/* An address every proxy must be able to connect to without a name lookup: the config it
 * lands in is compiled by every proxy, and one unresolvable endpoint would fail them all. */
static bool check_address(const char *field, const char *value, char **errmsg)
{
    char why[256];
    struct sockaddr_storage ss;
    socklen_t len;
    if (!mesh_text_ok(MESH_CHECK_ADDRESS, value, why, sizeof(why))) {
        *errmsg = xasprintf("%s: %s", field, why);
        return false;
    }
    if (mesh_sock_parse_addr(value, 0, &ss, &len, why, sizeof(why)) != MESH_OK) {
        *errmsg = xasprintf("%s: \"%s\" must be a numeric IP address and port, like "
                            "127.0.0.1:16006 or [::1]:16006",
                            field, value);
        return false;
    }
    return true;
}

static bool validate(const struct mesh_proxy_registration *r, char **errmsg)
{
    if (!mesh_proxy_id_valid(r->id)) {
        *errmsg = xasprintf("id: \"%s\" is not a valid proxy id: use lower-case letters, digits, "
                            "'.' and '-', starting with a letter or digit, at most %d characters",
                            r->id ? r->id : "", MESH_PROXY_ID_MAX);
        return false;
    }
    if (r->ns && !check_label("namespace", r->ns, errmsg))
        return false;
    if (r->role == MESH_PROXY_SIDECAR) {
        if (!set(r->service)) {
            *errmsg = xstrdup("service: required for a sidecar");
            return false;
        }
        if (!check_label("service", r->service, errmsg))
            return false;
        if (!set(r->address)) {
            *errmsg = xstrdup("address: required for a sidecar (its inbound listener, "
                              "host:port)");
            return false;
        }
        if (!check_address("address", r->address, errmsg))
            return false;
        if (r->gateway) {
            *errmsg = xstrdup("gateway: only a gateway has a gateway name; a sidecar names its "
                              "service");
            return false;
        }
    } else if (r->role == MESH_PROXY_GATEWAY) {
        if (!set(r->gateway)) {
            *errmsg = xstrdup("gateway: required for a gateway (the name VirtualServices list "
                              "in gateways)");
            return false;
        }
        if (!check_label("gateway", r->gateway, errmsg))
            return false;
        /* VirtualServices use "mesh" for the sidecars; a gateway of that name would be both. */
        if (strcmp(r->gateway, "mesh") == 0) {
            *errmsg = xstrdup("gateway: \"mesh\" is reserved for the sidecars");
            return false;
        }
        if (r->service) {
            *errmsg = xstrdup("service: only a sidecar has a service; a gateway has none");
            return false;
        }
        if (r->address) {
            *errmsg = xstrdup("address: only a sidecar has an address; a gateway has none");
            return false;
        }
    } else {
        *errmsg = xstrdup("role: must be sidecar or gateway");
        return false;
    }
    if (r->admin && !check_address("admin", r->admin, errmsg))
        return false;
    for (size_t i = 0; r->labels && i < r->labels->len; i++) {
        const char *key = r->labels->items[i].key;
        if (!key || !*key || strlen(key) > 253) {
            *errmsg = xstrdup("labels: label keys must be 1 to 253 characters");
            return false;
        }
        if (!r->labels->items[i].value) {
            *errmsg = xasprintf("labels.%s: must be a string", key);
            return false;
        }
    }
    return true;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_labels(const struct mesh_labels *a, const struct mesh_labels *b)
{
    if (a->len != b->len)
        return false;
    for (size_t i = 0; i < a->len; i++)
        if (strcmp(a->items[i].key, b->items[i].key) != 0 ||
            strcmp(a->items[i].value, b->items[i].value) != 0)
            return false;
    return true;
}

/* Whether two entries would compile into the same configs (admin and times do not count). */
static bool same_registration(const struct mesh_proxy_entry *a, const struct mesh_proxy_entry *b)
{
    return a->role == b->role && same_str(a->service, b->service) && same_str(a->ns, b->ns) &&
           same_str(a->gateway, b->gateway) && same_str(a->address, b->address) &&
           same_labels(&a->labels, &b->labels);
}

static struct mesh_proxy_entry *entry_new(const struct mesh_proxy_registration *r)
{
    struct mesh_proxy_entry *e = xcalloc(1, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", r->id);
    e->role = r->role;
    e->service = xstrdup(r->service);
    e->ns = xstrdup(r->ns ? r->ns : MESH_DEFAULT_NAMESPACE);
    e->gateway = xstrdup(r->gateway);
    e->address = xstrdup(r->address);
    e->admin = xstrdup(r->admin);
    for (size_t i = 0; r->labels && i < r->labels->len; i++)
        if (mesh_labels_set(&e->labels, r->labels->items[i].key, r->labels->items[i].value) !=
            MESH_OK)
            abort(); /* control plane: allocation failure is fatal, as in xalloc */
    return e;
}

enum mesh_err mesh_registry_register(struct mesh_registry *reg,
                                     const struct mesh_proxy_registration *r, uint64_t now_ms,
                                     uint64_t wall_ms, bool *created, char **errmsg)
{
    *errmsg = NULL;
    if (!validate(r, errmsg))
        return MESH_E_INVALID;
    struct mesh_proxy_entry *e = entry_new(r);
    e->registered_ms = wall_ms;
    e->last_heartbeat_ms = wall_ms;
    e->seen_ms = now_ms;
    bool found;
    size_t at = lookup(reg, r->id, &found);
    *created = !found;
    if (found) {
        struct mesh_proxy_entry *old = reg->items[at];
        /* A repeated identical registration is idempotent: it keeps what the proxy acked. A
         * changed one may be a different process under the same id, so the ack is dropped. */
        if (same_registration(old, e))
            memcpy(e->acked, old->acked, sizeof(e->acked));
        else
            reg->generation++;
        entry_free(old);
        reg->items[at] = e;
        return MESH_OK;
    }
    xgrow((void **)&reg->items, &reg->cap, reg->len + 1, sizeof(*reg->items));
    memmove(&reg->items[at + 1], &reg->items[at], (reg->len - at) * sizeof(*reg->items));
    reg->items[at] = e;
    reg->len++;
    reg->generation++;
    return MESH_OK;
}

enum mesh_err mesh_registry_heartbeat(struct mesh_registry *reg, const char *id, uint64_t now_ms,
                                      uint64_t wall_ms)
{
    bool found;
    size_t at = id ? lookup(reg, id, &found) : 0;
    if (!id || !found)
        return MESH_E_NOTFOUND;
    reg->items[at]->seen_ms = now_ms;
    reg->items[at]->last_heartbeat_ms = wall_ms;
    return MESH_OK;
}

static void remove_at(struct mesh_registry *reg, size_t at)
{
    entry_free(reg->items[at]);
    memmove(&reg->items[at], &reg->items[at + 1], (reg->len - at - 1) * sizeof(*reg->items));
    reg->len--;
    reg->generation++;
}

enum mesh_err mesh_registry_remove(struct mesh_registry *reg, const char *id)
{
    bool found;
    size_t at = id ? lookup(reg, id, &found) : 0;
    if (!id || !found)
        return MESH_E_NOTFOUND;
    remove_at(reg, at);
    return MESH_OK;
}

enum mesh_err mesh_registry_ack(struct mesh_registry *reg, const char *id, const char *version)
{
    bool found;
    size_t at = id ? lookup(reg, id, &found) : 0;
    if (!id || !found)
        return MESH_E_NOTFOUND;
    if (!version || strlen(version) > MESH_CONFIG_VERSION_LEN)
        return MESH_E_INVALID;
    memcpy(reg->items[at]->acked, version, strlen(version) + 1);
    return MESH_OK;
}

size_t mesh_registry_expire(struct mesh_registry *reg, uint64_t now_ms)
{
    size_t removed = 0, kept = 0;
    for (size_t i = 0; i < reg->len; i++) {
        struct mesh_proxy_entry *e = reg->items[i];
        /* seen_ms may be ahead of now_ms when the caller's clock reads were reordered. */
        if (now_ms > e->seen_ms && now_ms - e->seen_ms > reg->ttl_ms) {
            entry_free(e);
            removed++;
        } else {
            reg->items[kept++] = e;
        }
    }
    reg->len = kept;
    if (removed)
        reg->generation++;
    return removed;
}

const struct mesh_proxy_entry *mesh_registry_find(const struct mesh_registry *reg, const char *id)
{
    bool found;
    size_t at = id ? lookup(reg, id, &found) : 0;
    return id && found ? reg->items[at] : NULL;
}

const struct mesh_proxy_entry *const *mesh_registry_list(const struct mesh_registry *reg, size_t *n)
{
    *n = reg->len;
    return (const struct mesh_proxy_entry *const *)reg->items;
}

uint64_t mesh_registry_generation(const struct mesh_registry *reg)
{
    return reg->generation;
}
