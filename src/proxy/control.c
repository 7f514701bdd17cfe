/* SPDX-License-Identifier: Apache-2.0 */
/* meshproxy's link to meshd: a watch thread (register, then the blocking config watch that
 * compiles and publishes each new config) and a heartbeat thread, both retrying with capped
 * exponential backoff and jitter, and deregistration when the proxy drains. The workload
 * certificate's renewal thread (cert_renew.c) is started and stopped with them and shares their
 * registration. */
#include "control.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/strbuf.h"
#include "core/xalloc.h"
#include "identity.h"
#include "mesh/document.h"
#include "net/http_client.h"
#include "rng.h"
#include "snapshot.h"

#define DEFAULT_HEARTBEAT_MS 1000u
#define REQUEST_TIMEOUT_MS   5000  /* registration, heartbeat: meshd answers these at once */
#define WATCH_SLACK_MS       15000 /* a watch may take this much longer than meshd's timeout */

struct mesh_control {
    struct mesh_proxy *p;
    struct mesh_control_config cfg;
    char *base;  /* the URL without a trailing '/' */
    char *token; /* not logged */
    pthread_t watch_thread, beat_thread;
    bool watch_started, beat_started;
    struct mesh_cert_renewer *renewer; /* NULL when cfg.identity_stats is */
    atomic_int cancel;                 /* set when stopping: requests in flight end */
    /* Serialises registration and deregistration, so that a PUT never follows the DELETE. */
    pthread_mutex_t reg_lock;
    pthread_mutex_t lock; /* everything below */
    pthread_cond_t cond;  /* stopping, or a registration happened */
    bool stopping;
    bool registered;
    uint64_t reg_gen; /* successful registrations so far */
    uint64_t heartbeat_ms;
    bool outage; /* a failure was logged and no success since */
    struct mesh_control_status status;
    struct mesh_rng rng; /* backoff jitter */
    uint64_t applied;    /* snapshots published: their version numbers */
    uint64_t ca_gen;     /* the CA generation of the latest config (cert_renew.c watches it) */
};

static void log_line(const char *level, const char *msg, const struct mesh_control *c,
                     const char *extra)
{
    fprintf(stderr, "lvl=%s msg=\"%s\" id=%s url=%s%s%s\n", level, msg, c->cfg.id, c->base,
            extra && *extra ? " " : "", extra ? extra : "");
}

bool mesh_control_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 63 || !((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= '0' && id[0] <= '9')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

/* --- waiting, backoff, outages --- */

/* CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on c->cond. */
static struct timespec deadline_in(uint64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

/* Sleeps ms, or less when stopping. False when stopping. */
static bool pause_ms(struct mesh_control *c, uint64_t ms)
{
    struct timespec until = deadline_in(ms);
    pthread_mutex_lock(&c->lock);
    while (!c->stopping && pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0)
        ;
    bool go_on = !c->stopping;
    pthread_mutex_unlock(&c->lock);
    return go_on;
}

/* The wait before the next try: *step doubles from the minimum up to the maximum; the wait is
 * *step +/- 25%, kept within the two bounds, so that proxies that lost meshd together do not
 * come back in lockstep. */
static uint64_t backoff(struct mesh_control *c, uint64_t *step)
{
    uint64_t d = *step;
    *step = d * 2 > MESH_CONTROL_BACKOFF_MAX_MS ? MESH_CONTROL_BACKOFF_MAX_MS : d * 2;
    pthread_mutex_lock(&c->lock);
    uint64_t wait = d * 3 / 4 + mesh_rng_below(&c->rng, (uint32_t)(d / 2 + 1));
    pthread_mutex_unlock(&c->lock);
    if (wait < MESH_CONTROL_BACKOFF_MIN_MS)
        wait = MESH_CONTROL_BACKOFF_MIN_MS;
    return wait > MESH_CONTROL_BACKOFF_MAX_MS ? MESH_CONTROL_BACKOFF_MAX_MS : wait;
}

/* meshd answered: ends an outage (logged once). */
static void note_ok(struct mesh_control *c)
{
    pthread_mutex_lock(&c->lock);
    bool was_out = c->outage;
    c->outage = false;
    c->status.connected = true;
    pthread_mutex_unlock(&c->lock);
    if (was_out)
        log_line("info", "meshd reachable again", c, NULL);
}

/* An exchange failed (why: in words; refused: meshd answered, with an error status): the first
 * failure of an outage is logged, the others only remembered for /config_dump. */
static void note_failure(struct mesh_control *c, const char *why, bool refused)
{
    pthread_mutex_lock(&c->lock);
    bool first = !c->outage && !c->stopping;
    c->outage = true;
    c->status.connected = false;
    snprintf(c->status.last_error, sizeof(c->status.last_error), "%s", why);
    pthread_mutex_unlock(&c->lock);
    if (first) {
        char *extra = xasprintf("error=\"%s\"", why);
        log_line("warn",
                 refused ? "meshd refused a request: serving the last good config, retrying"
                         : "meshd unreachable: serving the last good config, retrying",
                 c, extra);
        free(extra);
    }
}

static bool stopping(struct mesh_control *c)
{
    pthread_mutex_lock(&c->lock);
    bool s = c->stopping;
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* --- requests --- */

/* One exchange with meshd. MESH_OK: *resp holds the answer, whatever its status. Otherwise
 * the failure is noted (unless the request was cancelled: MESH_E_AGAIN). */
static enum mesh_err call(struct mesh_control *c, struct mesh_http_client *h, const char *method,
                          const char *path, const char *body, long timeout_ms,
                          struct mesh_http_response *resp)
{
    char *url = xasprintf("%s%s", c->base, path);
    struct mesh_http_request req = {
        .method = method,
        .url = url,
        .peer_name = "meshd",
        .token = c->token,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = timeout_ms,
        .want_headers = {"x-mesh-version"},
        .cancel = &c->cancel,
    };
    char *why = NULL;
    enum mesh_err err = mesh_http_client_do(h, &req, resp, &why);
    if (err != MESH_OK && err != MESH_E_AGAIN)
        note_failure(c, why ? why : mesh_strerror(err), false);
    free(why);
    free(url);
    return err;
}

/* A status meshd should not have answered: noted as a failure, with its message. */
static void unexpected(struct mesh_control *c, const char *what,
                       const struct mesh_http_response *resp)
{
    char *msg = mesh_http_error_message(resp->status, resp->body, resp->body_len);
    char *why = xasprintf("%s: %s", what, msg ? msg : "unexpected answer");
    note_failure(c, why, true);
    free(why);
    free(msg);
}

static char *registration_body(const struct mesh_control *c)
{
    const struct mesh_control_config *cfg = &c->cfg;
    json_t *o = json_object();
    if (cfg->mode == MESH_PROXY_SIDECAR) {
        json_object_set_new(o, "role", json_string("sidecar"));
        json_object_set_new(o, "service", json_string(cfg->service));
        json_object_set_new(o, "namespace", json_string(cfg->ns));
        json_t *labels = json_object();
        if (cfg->version)
            json_object_set_new(labels, "version", json_string(cfg->version));
        json_object_set_new(o, "labels", labels);
        json_object_set_new(o, "address", json_string(cfg->address));
    } else {
        json_object_set_new(o, "role", json_string("gateway"));
        json_object_set_new(o, "gateway", json_string(cfg->gateway));
        json_object_set_new(o, "namespace", json_string(cfg->ns));
    }
    json_object_set_new(o, "admin", json_string(cfg->admin));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        abort(); /* only out of memory; the control plane side aborts on that */
    return text;
}

/* Registers, unless another thread already did since stale_gen (the generation its caller saw
 * when meshd said it did not know the proxy). True when the proxy is registered. */
static bool do_register(struct mesh_control *c, struct mesh_http_client *h, uint64_t stale_gen)
{
    bool ok = false;
    pthread_mutex_lock(&c->reg_lock);
    pthread_mutex_lock(&c->lock);
    bool done = c->registered && c->reg_gen != stale_gen;
    bool stop = c->stopping;
    pthread_mutex_unlock(&c->lock);
    if (done || stop) {
        pthread_mutex_unlock(&c->reg_lock);
        return done;
    }
    char *body = registration_body(c);
    char *path = xasprintf("/v1/proxies/%s", c->cfg.id);
    struct mesh_http_response resp = {0};
    if (call(c, h, "PUT", path, body, REQUEST_TIMEOUT_MS, &resp) == MESH_OK) {
        if (resp.status == 200 || resp.status == 201) {
            note_ok(c);
            json_t *root = json_loadb(resp.body, resp.body_len, 0, NULL);
            json_t *iv = root ? json_object_get(root, "heartbeat_interval_ms") : NULL;
            json_int_t ms = json_is_integer(iv) ? json_integer_value(iv) : 0;
            pthread_mutex_lock(&c->lock);
            c->heartbeat_ms = ms > 0 && ms <= 60000 ? (uint64_t)ms : DEFAULT_HEARTBEAT_MS;
            c->registered = true;
            c->status.registered = true;
            c->reg_gen++;
            pthread_cond_broadcast(&c->cond);
            pthread_mutex_unlock(&c->lock);
            json_decref(root);
            char extra[64];
            snprintf(extra, sizeof(extra), "status=%ld", resp.status);
            log_line("info", "registered with meshd", c, extra);
            ok = true;
        } else {
            unexpected(c, "registration refused", &resp);
        }
    }
    mesh_http_response_clear(&resp);
    free(path);
    free(body);
    pthread_mutex_unlock(&c->reg_lock);
    return ok;
}

/* meshd said it does not know the proxy (it restarted, or the registration lapsed). */
static void forget_registration(struct mesh_control *c, uint64_t gen)
{
    pthread_mutex_lock(&c->lock);
    if (c->reg_gen == gen) {
        c->registered = false;
        c->status.registered = false;
    }
    pthread_mutex_unlock(&c->lock);
}

/* --- configs --- */

/* A config's CA generation: a change wakes the certificate renewer (mesh_control_sleep_ca). */
static void note_ca_generation(struct mesh_control *c, const json_t *root)
{
    json_t *g = json_object_get(root, "ca_generation");
    if (!json_is_integer(g) || json_integer_value(g) < 0)
        return; /* a meshd without root rotation */
    pthread_mutex_lock(&c->lock);
    if (c->ca_gen != (uint64_t)json_integer_value(g)) {
        c->ca_gen = (uint64_t)json_integer_value(g);
        pthread_cond_broadcast(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
}

/* Compiles a watch answer ({"version", "resources": [...]}) and publishes it. On failure
 * *why (caller frees) says what was wrong and the running config stays. */
static enum mesh_err apply_config(struct mesh_control *c, const struct mesh_http_response *resp,
                                  char *version, size_t version_size, char **why)
{
    enum mesh_err err = MESH_E_INVALID;
    struct mesh_resource **res = NULL;
    size_t n = 0;
    char *text = NULL;
    json_error_t jerr;
    json_t *root = json_loadb(resp->body, resp->body_len, 0, &jerr);
    json_t *resources = root ? json_object_get(root, "resources") : NULL;
    json_t *ver = root ? json_object_get(root, "version") : NULL;
    *why = NULL;
    if (!root) {
        *why = xasprintf("config is not JSON: %s (line %d)", jerr.text, jerr.line);
        goto out;
    }
    /* Before the resources are checked: renewing the certificate does not depend on them. */
    note_ca_generation(c, root);
    if (!json_is_array(resources)) {
        *why = xstrdup("config has no \"resources\" array");
        goto out;
    }
    const char *v = json_is_string(ver) ? json_string_value(ver) : NULL;
    if (!v) {
        /* Every answer carries the version in a header too. */
        v = resp->header_values[0] ? resp->header_values[0] : "";
    }
    snprintf(version, version_size, "%s", v);
    /* The resources go through the same reader and validator as a static file. */
    text = json_dumps(resources, JSON_COMPACT);
    if (!text) {
        err = MESH_E_NOMEM;
        *why = xstrdup("out of memory");
        goto out;
    }
    char file[64];
    snprintf(file, sizeof(file), "meshd config %s", version);
    struct mesh_diags diags = {0};
    err = mesh_parse_documents(text, strlen(text), file, &res, &n, &diags);
    if (err != MESH_OK) {
        struct mesh_strbuf msg;
        mesh_strbuf_init(&msg, 0);
        for (size_t i = 0; i < diags.len; i++) {
            char *line = mesh_diag_format(&diags.items[i]);
            mesh_strbuf_printf(&msg, "%s%s", i ? "; " : "", line);
            free(line);
        }
        mesh_diags_clear(&diags);
        *why = mesh_strbuf_take(&msg);
        goto out;
    }
    struct mesh_snapshot *s = NULL;
    /* A gateway exposes its VirtualServices only, never every Service by name. */
    unsigned flags = c->cfg.mode == MESH_PROXY_GATEWAY ? MESH_SNAPSHOT_F_NO_SERVICE_HOSTS : 0;
    err = mesh_snapshot_build_flags(res, n, c->applied + 1, flags, &s, why);
    if (err != MESH_OK)
        goto out;
    if (c->cfg.mode == MESH_PROXY_SIDECAR &&
        (err = mesh_snapshot_secure(s, c->cfg.service, c->cfg.ns)) != MESH_OK) {
        *why = xstrdup("out of memory reading the security policies");
        mesh_snapshot_unref(s);
        goto out;
    }
    c->applied++;
    snprintf(s->version_text, sizeof(s->version_text), "%s", version);
    s->from_control = true;
    mesh_proxy_publish(c->p, s);
out:
    mesh_resource_list_free(res, n);
    free(text);
    json_decref(root);
    return err;
}

/* --- threads --- */

static void *watch_main(void *arg)
{
    struct mesh_control *c = arg;
    struct mesh_http_client *h = NULL;
    uint64_t step = MESH_CONTROL_BACKOFF_MIN_MS;
    char served[40] = "", refused[40] = "";
    unsigned not_found = 0;
    if (mesh_http_client_new(&h) != MESH_OK) {
        note_failure(c, "cannot create an HTTP client", false);
        return NULL;
    }
    while (!stopping(c)) {
        pthread_mutex_lock(&c->lock);
        uint64_t gen = c->reg_gen;
        bool registered = c->registered;
        pthread_mutex_unlock(&c->lock);
        if (!registered) {
            if (!do_register(c, h, gen) && !pause_ms(c, backoff(c, &step)))
                break;
            continue;
        }
        uint64_t wait_ms = c->cfg.watch_timeout_ms;
        char *path = served[0] ? xasprintf("/v1/proxies/%s/config?after=%s&timeout=%llums",
                                           c->cfg.id, served, (unsigned long long)wait_ms)
                               : xasprintf("/v1/proxies/%s/config?timeout=%llums", c->cfg.id,
                                           (unsigned long long)wait_ms);
        struct mesh_http_response resp = {0};
        enum mesh_err err = call(c, h, "GET", path, NULL, (long)(wait_ms + WATCH_SLACK_MS), &resp);
        free(path);
        uint64_t pause = 0;
        if (err == MESH_E_AGAIN) {
            break; /* cancelled: stopping */
        } else if (err != MESH_OK) {
            pause = backoff(c, &step);
        } else if (resp.status == 304) {
            note_ok(c);
            step = MESH_CONTROL_BACKOFF_MIN_MS;
            not_found = 0;
        } else if (resp.status == 404) {
            /* meshd restarted, or let the registration lapse: register again. */
            note_ok(c);
            forget_registration(c, gen);
            log_line("info", "meshd does not know this proxy: registering again", c, NULL);
            if (++not_found > 1)
                pause = backoff(c, &step);
        } else if (resp.status != 200) {
            unexpected(c, "config watch", &resp);
            pause = backoff(c, &step);
        } else {
            char version[40] = "", *why = NULL;
            note_ok(c);
            not_found = 0;
            const char *v = resp.header_values[0];
            if (refused[0] && v && strcmp(v, refused) == 0) {
                /* The same config that did not compile: wait for a new one without acking it,
                 * so meshd keeps showing this proxy as stale. */
                pause = backoff(c, &step);
            } else if (apply_config(c, &resp, version, sizeof(version), &why) == MESH_OK) {
                snprintf(served, sizeof(served), "%s", version);
                refused[0] = '\0';
                step = MESH_CONTROL_BACKOFF_MIN_MS;
                pthread_mutex_lock(&c->lock);
                c->status.configs++;
                snprintf(c->status.version, sizeof(c->status.version), "%s", version);
                pthread_mutex_unlock(&c->lock);
                char extra[96];
                snprintf(extra, sizeof(extra), "version=%s", version);
                log_line("info", "config applied", c, extra);
            } else {
                snprintf(refused, sizeof(refused), "%s", version[0] ? version : (v ? v : "?"));
                pthread_mutex_lock(&c->lock);
                c->status.rejected++;
                snprintf(c->status.last_error, sizeof(c->status.last_error),
                         "config %s refused: %s", refused, why ? why : "");
                pthread_mutex_unlock(&c->lock);
                char *extra = xasprintf("version=%s error=\"%s\"", refused, why ? why : "");
                log_line("error", "config refused, the running config stays", c, extra);
                free(extra);
                pause = backoff(c, &step);
            }
            free(why);
        }
        mesh_http_response_clear(&resp);
        if (pause && !pause_ms(c, pause))
            break;
    }
    mesh_http_client_free(h);
    return NULL;
}

static void *beat_main(void *arg)
{
    struct mesh_control *c = arg;
    struct mesh_http_client *h = NULL;
    uint64_t step = MESH_CONTROL_BACKOFF_MIN_MS;
    uint64_t pause = 0;
    if (mesh_http_client_new(&h) != MESH_OK) {
        note_failure(c, "cannot create an HTTP client", false);
        return NULL;
    }
    char *path = xasprintf("/v1/proxies/%s/heartbeat", c->cfg.id);
    for (;;) {
        pthread_mutex_lock(&c->lock);
        /* Until the watch thread has registered, there is nothing to keep alive. */
        while (!c->stopping && !c->registered)
            pthread_cond_wait(&c->cond, &c->lock);
        uint64_t gen = c->reg_gen;
        uint64_t interval = c->heartbeat_ms;
        pthread_mutex_unlock(&c->lock);
        if (!pause_ms(c, pause ? pause : interval))
            break;
        struct mesh_http_response resp = {0};
        enum mesh_err err = call(c, h, "POST", path, NULL, REQUEST_TIMEOUT_MS, &resp);
        pause = 0;
        if (err == MESH_E_AGAIN) {
            break;
        } else if (err != MESH_OK) {
            pause = backoff(c, &step);
        } else if (resp.status == 404) {
            note_ok(c);
            forget_registration(c, gen);
            log_line("info", "meshd does not know this proxy: registering again", c, NULL);
            if (!do_register(c, h, gen))
                pause = backoff(c, &step);
        } else if (resp.status >= 200 && resp.status < 300) {
            note_ok(c);
            step = MESH_CONTROL_BACKOFF_MIN_MS;
        } else {
            unexpected(c, "heartbeat", &resp);
            pause = backoff(c, &step);
        }
        mesh_http_response_clear(&resp);
    }
    free(path);
    mesh_http_client_free(h);
    return NULL;
}

/* --- start and stop --- */

static void control_free(struct mesh_control *c)
{
    free((char *)c->cfg.id);
    free((char *)c->cfg.service);
    free((char *)c->cfg.ns);
    free((char *)c->cfg.version);
    free((char *)c->cfg.gateway);
    free((char *)c->cfg.address);
    free((char *)c->cfg.admin);
    free(c->token);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->reg_lock);
    free(c->base);
    free(c);
}

enum mesh_err mesh_control_start(struct mesh_proxy *p, const struct mesh_control_config *cfg,
                                 struct mesh_control **out, char **errmsg)
{
    *out = NULL;
    *errmsg = NULL;
    if (!mesh_control_id_valid(cfg->id)) {
        *errmsg = xasprintf("proxy id \"%s\" is not valid: [a-z0-9][a-z0-9.-]*, at most 63 "
                            "characters (set one with --id)",
                            cfg->id ? cfg->id : "");
        return MESH_E_INVALID;
    }
    /* https:// works once main installed the TLS plugin's ops for the HTTP client. */
    if (!cfg->url ||
        (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0)) {
        *errmsg = xasprintf("--control \"%s\": an http:// or https:// URL, e.g. "
                            "http://127.0.0.1:15010",
                            cfg->url ? cfg->url : "");
        return MESH_E_INVALID;
    }
    struct mesh_control *c = xcalloc(1, sizeof(*c));
    c->p = p;
    c->cfg = *cfg;
    /* Copies: the caller's strings may live on its stack. */
    c->cfg.url = c->cfg.token = NULL; /* base and token are the only uses of these two */
    c->token = xstrdup(cfg->token);
    c->cfg.id = xstrdup(cfg->id);
    c->cfg.service = xstrdup(cfg->service);
    c->cfg.ns = xstrdup(cfg->ns);
    c->cfg.version = xstrdup(cfg->version);
    c->cfg.gateway = xstrdup(cfg->gateway);
    c->cfg.address = xstrdup(cfg->address);
    c->cfg.admin = xstrdup(cfg->admin);
    if (!c->cfg.watch_timeout_ms)
        c->cfg.watch_timeout_ms = MESH_CONTROL_WATCH_TIMEOUT_MS;
    c->base = xstrdup(cfg->url);
    for (size_t n = strlen(c->base); n > 0 && c->base[n - 1] == '/'; n--)
        c->base[n - 1] = '\0';
    c->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
    atomic_init(&c->cancel, 0);
    mesh_rng_init(&c->rng); /* without entropy it is seeded from the clock: fine for jitter */
    pthread_mutex_init(&c->reg_lock, NULL);
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    c->watch_started = pthread_create(&c->watch_thread, NULL, watch_main, c) == 0;
    c->beat_started = c->watch_started && pthread_create(&c->beat_thread, NULL, beat_main, c) == 0;
    bool renewing = true;
    if (c->beat_started && cfg->identity_stats) {
        /* The identity meshd gives: spiffe://TD/ns/NS/sa/NAME, NAME the service or gateway. */
        char *workload = xasprintf("%s/%s", cfg->ns,
                                   cfg->mode == MESH_PROXY_GATEWAY ? cfg->gateway : cfg->service);
        renewing =
            mesh_cert_renewer_start(p, c, workload, cfg->identity_stats, &c->renewer) == MESH_OK;
        free(workload);
    }
    if (!c->beat_started || !renewing) {
        mesh_control_stop(c, false, 0, 0);
        *errmsg = xstrdup("cannot start the control threads");
        return MESH_E_NOMEM;
    }
    *out = c;
    return MESH_OK;
}

/* DELETE /v1/proxies/{id}: peers stop routing to this proxy with meshd's next push. True when
 * meshd took it. */
static bool deregister(struct mesh_control *c, uint64_t timeout_ms)
{
    char *url = xasprintf("%s/v1/proxies/%s", c->base, c->cfg.id);
    struct mesh_http_request req = {
        .method = "DELETE",
        .url = url,
        .peer_name = "meshd",
        .token = c->token,
        .timeout_ms = (long)(timeout_ms ? timeout_ms : REQUEST_TIMEOUT_MS),
        .connect_timeout_ms = (long)(timeout_ms ? timeout_ms : REQUEST_TIMEOUT_MS),
    };
    struct mesh_http_response resp = {0};
    char *why = NULL;
    enum mesh_err err = mesh_http_do(&req, &resp, &why);
    bool ok = false;
    if (err != MESH_OK) {
        char *extra = xasprintf("error=\"%s\"", why ? why : mesh_strerror(err));
        log_line("warn", "cannot deregister: meshd drops this proxy when its heartbeats lapse", c,
                 extra);
        free(extra);
    } else if (resp.status == 200 || resp.status == 204 || resp.status == 404) {
        log_line("info", "deregistered from meshd", c, NULL);
        ok = true;
    } else {
        char *msg = mesh_http_error_message(resp.status, resp.body, resp.body_len);
        char *extra = xasprintf("error=\"%s\"", msg ? msg : "");
        log_line("warn", "deregistration refused", c, extra);
        free(extra);
        free(msg);
    }
    mesh_http_response_clear(&resp);
    free(why);
    free(url);
    return ok;
}

bool mesh_control_stop(struct mesh_control *c, bool dereg, uint64_t timeout_ms, uint64_t grace_ms)
{
    bool gone = false;
    if (!c)
        return false;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    atomic_store(&c->cancel, 1);
    /* First of all, so that peers stop sending here while the threads wind down. Under the
     * registration lock: a registration in flight ends first (cancelled), none can follow. */
    if (dereg) {
        pthread_mutex_lock(&c->reg_lock);
        pthread_mutex_lock(&c->lock);
        bool was_registered = c->reg_gen > 0;
        pthread_mutex_unlock(&c->lock);
        if (was_registered)
            gone = deregister(c, timeout_ms);
        pthread_mutex_unlock(&c->reg_lock);
    }
    if (gone && grace_ms) {
        struct timespec ts = {(time_t)(grace_ms / 1000), (long)(grace_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
    if (c->watch_started)
        pthread_join(c->watch_thread, NULL);
    if (c->beat_started)
        pthread_join(c->beat_thread, NULL);
    mesh_cert_renewer_stop(c->renewer);
    c->renewer = NULL;
    control_free(c);
    return gone;
}

void mesh_control_status(struct mesh_control *c, struct mesh_control_status *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->status;
    pthread_mutex_unlock(&c->lock);
}

void mesh_control_cert_status(struct mesh_control *c, struct mesh_cert_status *out)
{
    memset(out, 0, sizeof(*out));
    if (c->renewer) {
        mesh_cert_renewer_status(c->renewer, out);
        out->enabled = true;
    }
}

/* --- for the certificate renewer --- */

const char *mesh_control_proxy_id(const struct mesh_control *c)
{
    return c->cfg.id;
}

bool mesh_control_wait_registered(struct mesh_control *c, uint64_t *gen)
{
    pthread_mutex_lock(&c->lock);
    while (!c->stopping && !c->registered)
        pthread_cond_wait(&c->cond, &c->lock);
    bool ok = !c->stopping;
    *gen = c->reg_gen;
    pthread_mutex_unlock(&c->lock);
    return ok;
}

bool mesh_control_register_again(struct mesh_control *c, struct mesh_http_client *h, uint64_t gen)
{
    forget_registration(c, gen);
    log_line("info", "meshd does not know this proxy: registering again", c, NULL);
    return do_register(c, h, gen);
}

bool mesh_control_sleep(struct mesh_control *c, uint64_t ms, uint64_t gen)
{
    struct timespec until = deadline_in(ms);
    pthread_mutex_lock(&c->lock);
    while (!c->stopping && c->reg_gen == gen &&
           pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0)
        ;
    bool go_on = !c->stopping;
    pthread_mutex_unlock(&c->lock);
    return go_on;
}

uint64_t mesh_control_ca_generation(struct mesh_control *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t g = c->ca_gen;
    pthread_mutex_unlock(&c->lock);
    return g;
}

bool mesh_control_sleep_ca(struct mesh_control *c, uint64_t ms, uint64_t gen, uint64_t ca_gen)
{
    struct timespec until = deadline_in(ms);
    pthread_mutex_lock(&c->lock);
    while (!c->stopping && c->reg_gen == gen && c->ca_gen == ca_gen &&
           pthread_cond_timedwait(&c->cond, &c->lock, &until) == 0)
        ;
    bool go_on = !c->stopping;
    pthread_mutex_unlock(&c->lock);
    return go_on;
}

enum mesh_err mesh_control_request(struct mesh_control *c, struct mesh_http_client *h,
                                   const char *method, const char *path, const char *body,
                                   long timeout_ms, struct mesh_http_response *resp, char **why)
{
    char *url = xasprintf("%s%s", c->base, path);
    struct mesh_http_request req = {
        .method = method,
        .url = url,
        .peer_name = "meshd",
        .token = c->token,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = timeout_ms,
        .cancel = &c->cancel,
    };
    enum mesh_err err = mesh_http_client_do(h, &req, resp, why);
    free(url);
    return err;
}
