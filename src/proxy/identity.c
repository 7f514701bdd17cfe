/* SPDX-License-Identifier: Apache-2.0 */
/* The workload identity on meshproxy's side: keys, requests and identities through the TLS
 * plugin's table, meshd's JSON answer read into the plugin's material, reference counting and
 * publication to the workers, and what /config_dump shows of it. No OpenSSL here. */
#include "identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xalloc.h"
#include "tls_load.h"

/* --- through the plugin --- */

static const char no_plugin[] = "the TLS plugin is not loaded";

enum mesh_err mesh_identity_key_new(struct mesh_tls_key **out)
{
    const struct mesh_tls_ops *tls = mesh_tls_ops();
    *out = NULL;
    return tls ? tls->key_new(out) : MESH_E_UNSUPPORTED;
}

void mesh_identity_key_free(struct mesh_tls_key *key)
{
    if (key)
        mesh_tls_ops()->key_free(key); /* a key exists only if the plugin made it */
}

enum mesh_err mesh_identity_csr_pem(struct mesh_tls_key *key, const char *cn, const char *spiffe_id,
                                    char **out)
{
    const struct mesh_tls_ops *tls = mesh_tls_ops();
    *out = NULL;
    return tls ? tls->csr_pem(key, cn, spiffe_id, out) : MESH_E_UNSUPPORTED;
}

enum mesh_err mesh_identity_build(struct mesh_tls_key *key, const struct mesh_tls_material *m,
                                  const char *workload, struct mesh_tls_identity **out, char **why)
{
    const struct mesh_tls_ops *tls = mesh_tls_ops();
    *out = NULL;
    *why = NULL;
    if (!tls) {
        *why = xstrdup(no_plugin);
        return MESH_E_UNSUPPORTED;
    }
    return tls->identity_build(key, m, workload, out, why);
}

static const char *json_str(const json_t *root, const char *key)
{
    return json_string_value(json_object_get(root, key));
}

enum mesh_err mesh_identity_from_answer(struct mesh_tls_key *key, const char *body, size_t len,
                                        const char *workload, struct mesh_tls_identity **out,
                                        char **why)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    *out = NULL;
    *why = NULL;
    if (!json_is_object(root)) {
        *why =
            xasprintf("answer is not a JSON object: %s", root ? "another JSON value" : jerr.text);
        json_decref(root);
        return MESH_E_INVALID;
    }
    struct mesh_tls_material m = {
        .certificate = json_str(root, "certificate"),
        .chain = json_str(root, "chain"),
        .trust_bundle = json_str(root, "trust_bundle"),
        .spiffe_id = json_str(root, "spiffe_id"),
        .serial = json_str(root, "serial"),
        .ca = json_str(root, "ca"),
    };
    enum mesh_err err = mesh_identity_build(key, &m, workload, out, why);
    json_decref(root);
    return err;
}

/* --- references and publication --- */

void mesh_identity_ref(struct mesh_tls_identity *id)
{
    if (id)
        mesh_tls_ops()->identity_ref(id); /* an identity exists only if the plugin built it */
}

void mesh_identity_unref(struct mesh_tls_identity *id)
{
    if (id)
        mesh_tls_ops()->identity_unref(id);
}

const struct mesh_tls_facts *mesh_identity_facts(const struct mesh_tls_identity *id)
{
    return mesh_tls_ops()->identity_facts(id);
}

struct mesh_tls_identity *mesh_identity_acquire(struct mesh_proxy *p)
{
    /* Safe on a worker without moving its epoch, as mesh_worker_wsnap is: the publisher drops
     * nothing before this worker's next loop turn, by which time this reference exists. */
    struct mesh_tls_identity *id = atomic_load_explicit(&p->identity, memory_order_acquire);
    mesh_identity_ref(id);
    return id;
}

void mesh_identity_publish(struct mesh_proxy *p, struct mesh_tls_identity *id)
{
    struct mesh_publish pub;
    mesh_publish_begin(p, &pub);
    struct mesh_tls_identity *old = atomic_exchange(&p->identity, id);
    mesh_publish_finish(p, &pub);
    mesh_identity_unref(old);
}

/* --- /config_dump --- */

#define SET(obj, key, val) json_object_set_new((obj), (key), (val))

void mesh_identity_format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
}

static json_t *time_json(int64_t t)
{
    char text[MESH_IDENTITY_TIME_LEN];
    mesh_identity_format_time(t, text, sizeof(text));
    return json_string(text);
}

/* A SHA-256 as "AB:CD:...", 32 pairs. */
static json_t *fingerprint_json(const unsigned char md[32])
{
    char text[96];
    size_t off = 0;
    for (unsigned i = 0; i < 32; i++)
        off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%02X", i ? ":" : "", md[i]);
    return json_string(text);
}

json_t *mesh_identity_json(const struct mesh_tls_identity *id)
{
    const struct mesh_tls_facts *f = mesh_identity_facts(id);
    json_t *o = json_object();
    SET(o, "spiffe_id", json_string(f->spiffe_id));
    SET(o, "serial", json_string(f->serial));
    SET(o, "not_before", time_json(f->not_before));
    SET(o, "not_after", time_json(f->not_after));
    SET(o, "issuer", json_string(f->issuer));
    SET(o, "ca", f->ca[0] ? json_string(f->ca) : json_null());
    json_t *roots = json_array();
    for (size_t i = 0; i < f->n_roots; i++) {
        const struct mesh_tls_root_facts *rf = &f->roots[i];
        json_t *r = json_object();
        SET(r, "subject", json_string(rf->subject));
        SET(r, "not_after", rf->not_after ? time_json(rf->not_after) : json_string(""));
        SET(r, "sha256", fingerprint_json(rf->sha256));
        json_array_append_new(roots, r);
    }
    SET(o, "trust_bundle", roots);
    return o;
}
