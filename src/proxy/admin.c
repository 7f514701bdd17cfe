/* SPDX-License-Identifier: Apache-2.0 */
/* The admin listener: /metrics (Prometheus), /stats (JSON), /ready, /config_dump (YAML). */
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "proxy.h"
#include "stream.h"

#define ADMIN_MAX_BODY (64u << 20)

static void respond_buf(struct mesh_stream *s, enum mesh_err err, struct mesh_strbuf *body,
                        const char *content_type)
{
    if (err != MESH_OK) {
        const char *msg = "cannot render: out of memory\n";
        mesh_admin_respond(s, 500, "text/plain", msg, strlen(msg));
    } else {
        mesh_admin_respond(s, 200, content_type, body->data ? body->data : "", body->len);
    }
    mesh_strbuf_free(body);
}

static void shards(struct mesh_proxy *p, struct mesh_stats_shard **out)
{
    for (unsigned i = 0; i < p->n_workers; i++)
        out[i] = p->workers[i].st.shard;
}

void mesh_admin_handle(struct mesh_stream *s)
{
    struct mesh_proxy *p = s->w->proxy;
    struct mesh_stats_shard *all[MESH_PROXY_MAX_WORKERS];
    struct mesh_strbuf body;
    mesh_strbuf_init(&body, ADMIN_MAX_BODY);
    shards(p, all);
    if (strcmp(s->path, "/metrics") == 0) {
        enum mesh_err err = mesh_stats_render_prometheus(all, p->n_workers, &body);
        respond_buf(s, err, &body, "text/plain; version=0.0.4");
    } else if (strcmp(s->path, "/stats") == 0) {
        enum mesh_err err = mesh_stats_render_json(all, p->n_workers, &body);
        respond_buf(s, err, &body, "application/json");
    } else if (strcmp(s->path, "/ready") == 0) {
        bool ready = !atomic_load(&p->draining);
        const char *msg = ready ? "ready\n" : "draining\n";
        mesh_admin_respond(s, ready ? 200 : 503, "text/plain", msg, strlen(msg));
    } else if (strcmp(s->path, "/config_dump") == 0) {
        const char *yaml = s->w->wsnap->snap->source ? s->w->wsnap->snap->source : "";
        mesh_admin_respond(s, 200, "application/yaml", yaml, strlen(yaml));
    } else {
        const char *msg = "not found: try /metrics, /stats, /ready or /config_dump\n";
        mesh_admin_respond(s, 404, "text/plain", msg, strlen(msg));
    }
}
