/* SPDX-License-Identifier: Apache-2.0 */
/* The workload certificate's renewal thread: a certificate from meshd's CA once the proxy is
 * registered, then a new key and certificate at half of each one's lifetime, retried with
 * backoff on failure while the current one keeps serving.
 *
 * Its own thread rather than a turn of the watch or heartbeat loops: the watch blocks up to 30 s
 * in meshd's long poll and the heartbeat keeps a sub-second cadence, while a renewal has its own
 * schedule (hours apart, or a retry ladder of 1 to 30 s when failing) and its own slow step (key
 * generation, verification); mixed into either loop, one would delay the other. It shares the
 * link's registration, stop flag and cancellation through control.h.
 *
 * During a root rotation meshd moves its CA generation on at each phase; the config watch sees it
 * and wakes this thread, which then renews at once so that it holds the phase's trust bundle
 * (docs/security.md, "Rotating the root"). */
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xalloc.h"
#include "identity.h"
#include "net/http_client.h"
#include "rng.h"

#define REQUEST_TIMEOUT_MS 10000 /* meshd signs at once; this only bounds a stuck meshd */
#define MAX_SLEEP_MS       60000 /* long waits are cut so that a wall-clock jump is noticed */

struct mesh_cert_renewer {
    struct mesh_proxy *p;
    struct mesh_control *c;
    char *workload; /* "NS/NAME" */
    char *cn;       /* NAME: the CSR's subject */
    pthread_t thread;
    bool started;
    struct mesh_stats_gauge *expiry;
    struct mesh_stats_counter *succeeded, *failed;
    struct mesh_rng rng;  /* jitter; the thread's own */
    pthread_mutex_t lock; /* status */
    struct mesh_cert_status status;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- one attempt --- */

enum outcome {
    RENEWED,
    FAILED,
    NOT_REGISTERED, /* meshd answered 404: it does not know this proxy */
    CANCELLED,      /* the link is stopping */
};

/* The CA generation meshd issued a certificate under (its answer's "ca_generation"); 0 when it
 * does not say. */
static uint64_t answer_ca_generation(const char *body, size_t len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *g = json_object_get(root, "ca_generation");
    uint64_t gen =
        json_is_integer(g) && json_integer_value(g) > 0 ? (uint64_t)json_integer_value(g) : 0;
    json_decref(root);
    return gen;
}

/* Asks meshd for a certificate for a new key; on RENEWED *out is the checked identity and
 * *ca_gen the CA generation it came under, else *why (caller frees) says why in words. cur (may
 * be NULL) gives the SPIFFE ID for the CSR. */
static enum outcome request_certificate(struct mesh_cert_renewer *r, struct mesh_http_client *h,
                                        const struct mesh_tls_identity *cur,
                                        struct mesh_tls_identity **out, uint64_t *ca_gen,
                                        char **why)
{
    enum outcome result = FAILED;
    struct mesh_tls_key *key = NULL;
    char *csr = NULL, *body = NULL, *path = NULL, *msg = NULL;
    struct mesh_http_response resp = {0};
    *out = NULL;
    *why = NULL;
    /* A new key every time: a key that leaked is only good until the next renewal. */
    if (mesh_identity_key_new(&key) != MESH_OK ||
        mesh_identity_csr_pem(key, r->cn, cur ? mesh_identity_facts(cur)->spiffe_id : NULL, &csr) !=
            MESH_OK) {
        *why = xstrdup("cannot make a key and certificate request (OpenSSL failed)");
        goto out;
    }
    json_t *o = json_pack("{s:s}", "csr", csr);
    body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body)
        abort(); /* only out of memory; the control side aborts on that */
    path = xasprintf("/v1/proxies/%s/certificate", mesh_control_proxy_id(r->c));
    enum mesh_err err =
        mesh_control_request(r->c, h, "POST", path, body, REQUEST_TIMEOUT_MS, &resp, &msg);
    if (err == MESH_E_AGAIN) {
        result = CANCELLED;
    } else if (err != MESH_OK) {
        *why = xasprintf("meshd unreachable: %s", msg ? msg : mesh_strerror(err));
    } else if (resp.status == 404) {
        result = NOT_REGISTERED;
        *why = xstrdup("meshd does not know this proxy (registering again)");
    } else if (resp.status != 200) {
        char *m = mesh_http_error_message(resp.status, resp.body, resp.body_len);
        *why = xasprintf("refused: %s", m ? m : "unexpected answer");
        free(m);
    } else if (mesh_identity_from_answer(key, resp.body, resp.body_len, r->workload, out, why) ==
               MESH_OK) {
        result = RENEWED;
        *ca_gen = answer_ca_generation(resp.body, resp.body_len);
    }
out:
    mesh_http_response_clear(&resp);
    mesh_identity_key_free(key); /* the identity holds its own reference */
    free(msg);
    free(path);
    free(body);
    free(csr);
    return result;
}

/* --- scheduling --- */

/* When to renew id, received at received_ms: at half of its lifetime plus up to 5% of jitter
 * (so that proxies that got theirs together do not come back together). The lifetime counts
 * from notBefore, or from when it arrived when that is later: meshd back-dates notBefore to
 * allow for clock skew, which would otherwise put the half-life of a short-lived certificate in
 * the past. */
static int64_t renewal_time_ms(struct mesh_cert_renewer *r, const struct mesh_tls_identity *id,
                               int64_t received_ms)
{
    const struct mesh_tls_facts *f = mesh_identity_facts(id);
    int64_t start = f->not_before * 1000 > received_ms ? f->not_before * 1000 : received_ms;
    int64_t life = f->not_after * 1000 - start;
    if (life <= 0)
        return received_ms; /* already expired: try again (with backoff) */
    uint32_t span = (uint32_t)(life / 20 < UINT32_MAX ? life / 20 : UINT32_MAX);
    return start + life / 2 + mesh_rng_below(&r->rng, span + 1);
}

/* The wait after a failure: *step doubles from 1 s up to 30 s; the wait is *step -25%..+0%, so
 * that proxies that failed together spread out, never above the maximum. */
static uint64_t backoff_ms(struct mesh_cert_renewer *r, uint64_t *step)
{
    uint64_t d = *step;
    *step = d * 2 > MESH_CERT_BACKOFF_MAX_MS ? MESH_CERT_BACKOFF_MAX_MS : d * 2;
    uint64_t wait = d - mesh_rng_below(&r->rng, (uint32_t)(d / 4 + 1));
    return wait < MESH_CERT_BACKOFF_MIN_MS / 2 ? MESH_CERT_BACKOFF_MIN_MS / 2 : wait;
}

static void set_status(struct mesh_cert_renewer *r, bool ok, const char *why, int64_t next_ms)
{
    pthread_mutex_lock(&r->lock);
    if (ok)
        r->status.renewals++;
    else
        r->status.failures++;
    if (why)
        snprintf(r->status.last_error, sizeof(r->status.last_error), "%s", why);
    r->status.next_attempt = next_ms / 1000;
    pthread_mutex_unlock(&r->lock);
}

/* --- the thread --- */

static void log_renewed(struct mesh_cert_renewer *r, const struct mesh_tls_identity *id, bool first,
                        int64_t next_ms)
{
    const struct mesh_tls_facts *f = mesh_identity_facts(id);
    char next[MESH_IDENTITY_TIME_LEN], not_after[MESH_IDENTITY_TIME_LEN];
    mesh_identity_format_time(next_ms / 1000, next, sizeof(next));
    mesh_identity_format_time(f->not_after, not_after, sizeof(not_after));
    fprintf(stderr,
            "lvl=info msg=\"%s\" id=%s spiffe_id=%s serial=%s not_after=%s ca=%s "
            "next_renewal=%s\n",
            first ? "workload certificate issued" : "workload certificate renewed",
            mesh_control_proxy_id(r->c), f->spiffe_id, f->serial, not_after, f->ca[0] ? f->ca : "-",
            next);
}

static void log_failure(struct mesh_cert_renewer *r, const struct mesh_tls_identity *cur,
                        const char *why, uint64_t retry_ms)
{
    char not_after[MESH_IDENTITY_TIME_LEN] = "";
    if (cur)
        mesh_identity_format_time(mesh_identity_facts(cur)->not_after, not_after,
                                  sizeof(not_after));
    fprintf(stderr, "lvl=warn msg=\"%s\" id=%s error=\"%s\" retry_in=%" PRIu64 "ms%s%s\n",
            cur ? "certificate renewal failed: keeping the current certificate"
                : "certificate request failed: no workload certificate yet",
            mesh_control_proxy_id(r->c), why, retry_ms, cur ? " not_after=" : "", not_after);
}

static void *renew_main(void *arg)
{
    struct mesh_cert_renewer *r = arg;
    struct mesh_http_client *h = NULL;
    struct mesh_tls_identity *cur = NULL; /* what was last published; the thread's own reference */
    int64_t renew_at_ms = 0;
    uint64_t step = MESH_CERT_BACKOFF_MIN_MS;
    unsigned not_found = 0;
    bool expiry_logged = false;
    /* After a failure other than a 404: the registration it happened under. A new registration
     * means meshd is back (a restarted meshd makes every proxy register again), so the retry
     * need not wait out the backoff. */
    bool retry_on_register = false;
    uint64_t failed_gen = 0;
    /* The CA generation of the certificate held, and the last one of meshd's configs that made
     * this thread renew early: one early renewal per generation, whatever meshd answers. */
    uint64_t cert_ca_gen = 0, kicked_ca_gen = 0;
    if (mesh_http_client_new(&h) != MESH_OK) {
        fprintf(stderr,
                "lvl=error msg=\"cannot create an HTTP client: no workload certificate\" "
                "id=%s\n",
                mesh_control_proxy_id(r->c));
        return NULL;
    }
    for (;;) {
        uint64_t gen;
        if (!mesh_control_wait_registered(r->c, &gen))
            break;
        if (retry_on_register && gen != failed_gen) {
            renew_at_ms = 0;
            retry_on_register = false;
        }
        uint64_t want_ca_gen = mesh_control_ca_generation(r->c);
        if (cur && want_ca_gen != cert_ca_gen && want_ca_gen != kicked_ca_gen) {
            /* A phase of a root rotation: the trust bundle changed. */
            kicked_ca_gen = want_ca_gen;
            renew_at_ms = 0;
            fprintf(stderr,
                    "lvl=info msg=\"renewing the workload certificate now: meshd's CA changed "
                    "(root rotation)\" id=%s ca_generation=%" PRIu64 " held=%" PRIu64 "\n",
                    mesh_control_proxy_id(r->c), want_ca_gen, cert_ca_gen);
        }
        int64_t now = wall_ms();
        if (now < renew_at_ms) {
            int64_t left = renew_at_ms - now;
            if (!mesh_control_sleep_ca(r->c, (uint64_t)(left < MAX_SLEEP_MS ? left : MAX_SLEEP_MS),
                                       gen, want_ca_gen))
                break;
            continue;
        }
        struct mesh_tls_identity *next = NULL;
        char *why = NULL;
        uint64_t next_ca_gen = 0;
        enum outcome res = request_certificate(r, h, cur, &next, &next_ca_gen, &why);
        if (res == CANCELLED) {
            free(why);
            break;
        }
        now = wall_ms();
        if (res == RENEWED) {
            renew_at_ms = renewal_time_ms(r, next, now);
            mesh_stats_gauge_set(r->expiry, mesh_identity_facts(next)->not_after);
            mesh_stats_counter_inc(r->succeeded);
            set_status(r, true, NULL, renew_at_ms);
            log_renewed(r, next, cur == NULL, renew_at_ms);
            mesh_identity_ref(next); /* one for the thread, one handed to the publication */
            mesh_identity_publish(r->p, next);
            mesh_identity_unref(cur);
            cur = next;
            cert_ca_gen = next_ca_gen;
            step = MESH_CERT_BACKOFF_MIN_MS;
            not_found = 0;
            expiry_logged = false;
            retry_on_register = false;
            continue;
        }
        uint64_t wait = backoff_ms(r, &step);
        /* Not after a 404: that retry registers itself, and a meshd that keeps answering 404
         * must meet the backoff. */
        retry_on_register = res != NOT_REGISTERED;
        failed_gen = gen;
        if (res == NOT_REGISTERED) {
            /* Register again and retry at once; only a second 404 in a row waits. */
            bool registered = mesh_control_register_again(r->c, h, gen);
            if (registered && ++not_found == 1)
                wait = 0;
        }
        if (cur) {
            const struct mesh_tls_facts *f = mesh_identity_facts(cur);
            int64_t left = f->not_after * 1000 - now;
            if (left <= 0 && !expiry_logged) {
                char not_after[MESH_IDENTITY_TIME_LEN];
                mesh_identity_format_time(f->not_after, not_after, sizeof(not_after));
                fprintf(stderr,
                        "lvl=error msg=\"workload certificate expired and cannot be renewed: "
                        "peers will refuse it\" id=%s spiffe_id=%s serial=%s not_after=%s "
                        "error=\"%s\"\n",
                        mesh_control_proxy_id(r->c), f->spiffe_id, f->serial, not_after,
                        why ? why : "");
                expiry_logged = true;
            } else if (left > 0 && (int64_t)wait > left) {
                wait = (uint64_t)left; /* one more try before it runs out */
            }
        }
        renew_at_ms = now + (int64_t)wait;
        mesh_stats_counter_inc(r->failed);
        set_status(r, false, why, renew_at_ms);
        if (res != NOT_REGISTERED || wait)
            log_failure(r, cur, why ? why : "unknown", wait);
        free(why);
    }
    mesh_identity_unref(cur);
    mesh_http_client_free(h);
    return NULL;
}

/* --- start and stop --- */

static void renewer_free(struct mesh_cert_renewer *r)
{
    pthread_mutex_destroy(&r->lock);
    free(r->workload);
    free(r->cn);
    free(r);
}

enum mesh_err mesh_cert_renewer_start(struct mesh_proxy *p, struct mesh_control *c,
                                      const char *workload, struct mesh_stats_shard *stats,
                                      struct mesh_cert_renewer **out)
{
    struct mesh_cert_renewer *r = xcalloc(1, sizeof(*r));
    const char *slash = strchr(workload, '/');
    r->p = p;
    r->c = c;
    r->workload = xstrdup(workload);
    r->cn = xstrdup(slash ? slash + 1 : workload);
    mesh_rng_init(&r->rng); /* without entropy it is seeded from the clock: fine for jitter */
    pthread_mutex_init(&r->lock, NULL);
    /* Resolved here, before the thread that will be the shard's only writer exists; both results
     * render from the start, at 0. */
    mesh_stats_gauge_get(stats, MESH_STATS_CERT_EXPIRY, NULL, &r->expiry);
    mesh_stats_counter_get(stats, MESH_STATS_CERT_RENEWALS, (const char *const[]){"success"},
                           &r->succeeded);
    mesh_stats_counter_get(stats, MESH_STATS_CERT_RENEWALS, (const char *const[]){"failure"},
                           &r->failed);
    if (pthread_create(&r->thread, NULL, renew_main, r) != 0) {
        renewer_free(r);
        *out = NULL;
        return MESH_E_NOMEM;
    }
    r->started = true;
    *out = r;
    return MESH_OK;
}

void mesh_cert_renewer_stop(struct mesh_cert_renewer *r)
{
    if (!r)
        return;
    if (r->started)
        pthread_join(r->thread, NULL);
    renewer_free(r);
}

void mesh_cert_renewer_status(struct mesh_cert_renewer *r, struct mesh_cert_status *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->status;
    pthread_mutex_unlock(&r->lock);
}
