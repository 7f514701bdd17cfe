/* SPDX-License-Identifier: Apache-2.0 */
/* meshproxy's link to meshd (sidecar and gateway modes): registration, heartbeats, the config
 * watch that compiles and publishes each new config, and deregistration when draining. */
#ifndef MESH_PROXY_CONTROL_H
#define MESH_PROXY_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "mesh/err.h"
#include "proxy.h"

#define MESH_CONTROL_WATCH_TIMEOUT_MS 30000u /* how long meshd may hold a watch */
#define MESH_CONTROL_BACKOFF_MIN_MS   100u   /* first retry after meshd failed us */
#define MESH_CONTROL_BACKOFF_MAX_MS   5000u  /* retries never wait longer (before jitter) */

/* Who the proxy is at meshd. mesh_control_start copies the strings. */
struct mesh_control_config {
    const char *url;           /* meshd's base URL: "http://127.0.0.1:15010" */
    const char *token;         /* bearer token (not logged) */
    const char *id;            /* the proxy id: [a-z0-9][a-z0-9.-]*, at most 63 characters */
    enum mesh_proxy_mode mode; /* MESH_PROXY_SIDECAR or MESH_PROXY_GATEWAY */
    const char *service;       /* sidecar */
    const char *ns;            /* the namespace (sidecar: its service's; gateway: its own) */
    const char *version;       /* sidecar: its "version" label; NULL = none */
    const char *gateway;       /* gateway */
    const char *address;       /* sidecar: where peers reach it (the inbound listener) */
    const char *admin;         /* its admin listener, for meshctl proxy-config */
    uint64_t watch_timeout_ms; /* 0 = MESH_CONTROL_WATCH_TIMEOUT_MS */
    /* Non-NULL: also keep a workload certificate from meshd's CA (cert_renew.c), counting its
     * renewals into this shard, which the caller keeps until the workers are gone. */
    struct mesh_stats_shard *identity_stats;
};

/* What /config_dump shows of the link. */
struct mesh_control_status {
    bool registered;      /* meshd accepted the registration (and has not forgotten it) */
    bool connected;       /* the last exchange with meshd worked */
    uint64_t configs;     /* configs applied */
    uint64_t rejected;    /* configs refused (did not compile); the previous one stays */
    char version[40];     /* the version served; "" before the first config */
    char last_error[256]; /* the last failure, "" when none yet */
};

/* What /config_dump shows of the workload certificate's renewals (cert_renew.c). */
struct mesh_cert_status {
    bool enabled;         /* the proxy keeps a workload certificate */
    uint64_t renewals;    /* certificates received and published (the first one counts) */
    uint64_t failures;    /* failed attempts */
    int64_t next_attempt; /* unix seconds of the next request; 0 = none scheduled */
    char last_error[256]; /* the last failure in words, "" when none yet */
};

struct mesh_control;
struct mesh_http_client;
struct mesh_http_response;

/* Checks cfg (MESH_E_INVALID with *errmsg, caller frees, for a bad id or URL) and starts the
 * threads that talk to meshd: one registers and then watches the config, publishing every new
 * one with mesh_proxy_publish; one heartbeats at the interval meshd asks for and registers
 * again when meshd has forgotten the proxy. Failures never stop them: they retry with capped
 * exponential backoff and jitter, and the last good snapshot keeps serving. p and cfg are
 * borrowed until mesh_control_stop. *out: the caller owns it. Main thread. */
enum mesh_err mesh_control_start(struct mesh_proxy *p, const struct mesh_control_config *cfg,
                                 struct mesh_control **out, char **errmsg);

/* Stops both threads (a request in flight is cancelled within about a second), having first,
 * when deregister is set, told meshd the proxy is gone (DELETE /v1/proxies/{id}, bounded by
 * timeout_ms) so that peers stop routing to it; when meshd took that, returns no sooner than
 * grace_ms after it, for peers to get a config without this proxy while its listeners still
 * serve (the threads wind down meanwhile). Returns whether meshd took the deregistration.
 * Frees c; NULL is a no-op. Main thread. */
bool mesh_control_stop(struct mesh_control *c, bool deregister, uint64_t timeout_ms,
                       uint64_t grace_ms);

/* A consistent copy of the link's state. Any thread. */
void mesh_control_status(struct mesh_control *c, struct mesh_control_status *out);

/* The workload certificate's renewals (enabled false when cfg had no identity_stats). Any
 * thread, while c lives. */
void mesh_control_cert_status(struct mesh_control *c, struct mesh_cert_status *out);

/* --- for the certificate renewer (cert_renew.c): it shares the link's registration and stop ---
 */

/* The proxy id (borrowed for c's life). */
const char *mesh_control_proxy_id(const struct mesh_control *c);

/* Blocks until the proxy is registered: true with *gen, the registration's generation (for
 * mesh_control_register_again); false when the link is stopping. */
bool mesh_control_wait_registered(struct mesh_control *c, uint64_t *gen);

/* meshd answered 404 (it does not know the proxy) to a request made under registration gen:
 * forgets that registration and registers again through h, unless another thread already did.
 * True when the proxy is registered. */
bool mesh_control_register_again(struct mesh_control *c, struct mesh_http_client *h, uint64_t gen);

/* Sleeps ms, or less: until the link stops (false), or until the proxy registers again under
 * a generation other than gen (true: meshd came back, e.g. restarted). */
bool mesh_control_sleep(struct mesh_control *c, uint64_t ms, uint64_t gen);

/* The CA generation of the latest config from meshd: it moves with each phase of a root
 * rotation (docs/security.md), telling the renewer to get a certificate with the new trust
 * bundle now. 0 until a config says. Any thread. */
uint64_t mesh_control_ca_generation(struct mesh_control *c);

/* mesh_control_sleep, also woken (true) as soon as the config's CA generation is not ca_gen. */
bool mesh_control_sleep_ca(struct mesh_control *c, uint64_t ms, uint64_t gen, uint64_t ca_gen);

/* One request to meshd's path with the proxy's token (body: JSON or NULL), cancelled when the
 * link stops (MESH_E_AGAIN). Errors as mesh_http_client_do's, with *why (caller frees). Unlike
 * the link's own requests it does not change mesh_control_status: the caller reports its
 * failures. */
enum mesh_err mesh_control_request(struct mesh_control *c, struct mesh_http_client *h,
                                   const char *method, const char *path, const char *body,
                                   long timeout_ms, struct mesh_http_response *resp, char **why);

/* Whether id is a valid proxy id: [a-z0-9][a-z0-9.-]*, at most 63 characters. */
bool mesh_control_id_valid(const char *id);

#endif
