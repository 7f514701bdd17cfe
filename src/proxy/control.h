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

struct mesh_control;

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

/* Whether id is a valid proxy id: [a-z0-9][a-z0-9.-]*, at most 63 characters. */
bool mesh_control_id_valid(const char *id);

#endif
