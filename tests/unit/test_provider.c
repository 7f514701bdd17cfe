/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the Mesh Interface: provider registration and lookup, and that the C API
 * validates before, and hands exactly the right calls to, a custom provider. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mesh/mesh.h"

/* --- A recording provider: an in-memory store that logs every call --- */

struct call {
    char op[8];
    enum mesh_kind kind;
    char ns[64];   /* "" for NULL */
    char name[64]; /* "" for NULL */
    size_t n;
};

#define MAX_CALLS 64
static struct call calls[MAX_CALLS];
static size_t n_calls;

static void record(const char *op, enum mesh_kind kind, const char *ns, const char *name, size_t n)
{
    assert_true(n_calls < MAX_CALLS);
    struct call *c = &calls[n_calls++];
    snprintf(c->op, sizeof c->op, "%s", op);
    c->kind = kind;
    snprintf(c->ns, sizeof c->ns, "%s", ns ? ns : "");
    snprintf(c->name, sizeof c->name, "%s", name ? name : "");
    c->n = n;
}

static void assert_call(size_t i, const char *op, enum mesh_kind kind, const char *ns,
                        const char *name, size_t n)
{
    assert_true(i < n_calls);
    assert_string_equal(calls[i].op, op);
    assert_int_equal(calls[i].kind, kind);
    assert_string_equal(calls[i].ns, ns);
    assert_string_equal(calls[i].name, name);
    assert_int_equal(calls[i].n, n);
}

struct memstore {
    struct mesh_resource *items[32];
    size_t n;
    uint64_t version;
};

/* The highest resource_version rec_apply was handed since the last reset: a restore through a
 * provider without the call must hand over none. */
static uint64_t max_version_applied;

static bool same_ref(const struct mesh_resource *r, enum mesh_kind kind, const char *ns,
                     const char *name)
{
    return r->kind == kind && strcmp(mesh_resource_namespace(r), ns) == 0 &&
           strcmp(r->name, name) == 0;
}

static struct mesh_resource **find(struct memstore *ms, enum mesh_kind kind, const char *ns,
                                   const char *name)
{
    for (size_t i = 0; i < ms->n; i++)
        if (same_ref(ms->items[i], kind, ns, name))
            return &ms->items[i];
    return NULL;
}

static enum mesh_err rec_open(struct mesh *mesh, const struct mesh_config *cfg, void **state)
{
    (void)mesh;
    record("open", 0, cfg->store_dir, cfg->provider, 0);
    *state = calloc(1, sizeof(struct memstore));
    return *state ? MESH_OK : MESH_E_NOMEM;
}

static void rec_close(void *state)
{
    struct memstore *ms = state;
    record("close", 0, NULL, NULL, ms->n);
    for (size_t i = 0; i < ms->n; i++)
        mesh_resource_free(ms->items[i]);
    free(ms);
}

static enum mesh_err rec_apply(struct mesh *mesh, void *state,
                               const struct mesh_resource *const *res, size_t n,
                               struct mesh_apply_result *results)
{
    struct memstore *ms = state;
    (void)mesh;
    record("apply", res[0]->kind, mesh_resource_namespace(res[0]), res[0]->name, n);
    for (size_t i = 0; i < n; i++) {
        if (res[i]->resource_version > max_version_applied)
            max_version_applied = res[i]->resource_version;
        struct mesh_resource *copy = mesh_resource_clone(res[i]);
        struct mesh_resource **slot =
            find(ms, res[i]->kind, mesh_resource_namespace(res[i]), res[i]->name);
        assert_non_null(copy);
        copy->resource_version = ++ms->version;
        results[i].outcome = slot ? MESH_APPLY_CONFIGURED : MESH_APPLY_CREATED;
        results[i].resource_version = copy->resource_version;
        results[i].generation = 1;
        if (slot) {
            mesh_resource_free(*slot);
            *slot = copy;
        } else {
            assert_true(ms->n < 32);
            ms->items[ms->n++] = copy;
        }
    }
    return MESH_OK;
}

static enum mesh_err rec_get(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                             const char *name, struct mesh_resource **out)
{
    struct mesh_resource **slot = find(state, kind, ns, name);
    record("get", kind, ns, name, 0);
    if (!slot)
        return mesh_set_error(mesh, MESH_E_NOTFOUND, "no such thing here");
    *out = mesh_resource_clone(*slot);
    return *out ? MESH_OK : MESH_E_NOMEM;
}

/* Lists newest first, so that the tests see libmesh sort the answer. */
static enum mesh_err rec_list(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                              struct mesh_resource ***out, size_t *n)
{
    struct memstore *ms = state;
    (void)mesh;
    record("list", kind, ns, NULL, 0);
    *out = calloc(ms->n + 1, sizeof(**out));
    *n = 0;
    for (size_t i = ms->n; i-- > 0;) {
        const struct mesh_resource *r = ms->items[i];
        if (r->kind == kind && (!ns || strcmp(mesh_resource_namespace(r), ns) == 0))
            (*out)[(*n)++] = mesh_resource_clone(r);
    }
    return MESH_OK;
}

static enum mesh_err rec_remove(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                                const char *name)
{
    struct memstore *ms = state;
    struct mesh_resource **slot = find(ms, kind, ns, name);
    record("remove", kind, ns, name, 0);
    if (!slot)
        return mesh_set_error(mesh, MESH_E_NOTFOUND, "no such thing here");
    mesh_resource_free(*slot);
    *slot = ms->items[--ms->n];
    return MESH_OK;
}

static const struct mesh_provider_ops recorder = {
    .name = "recorder",
    .open = rec_open,
    .close = rec_close,
    .apply = rec_apply,
    .get = rec_get,
    .list = rec_list,
    .remove = rec_remove,
};

/* --- A broken provider: hands back the wrong kind and fails without a message --- */

static enum mesh_err liar_open(struct mesh *mesh, const struct mesh_config *cfg, void **state)
{
    (void)mesh;
    (void)cfg;
    *state = NULL;
    return MESH_OK;
}

static void liar_close(void *state)
{
    (void)state;
}

static enum mesh_err liar_apply(struct mesh *mesh, void *state,
                                const struct mesh_resource *const *res, size_t n,
                                struct mesh_apply_result *results)
{
    (void)mesh, (void)state, (void)res, (void)n, (void)results;
    return MESH_E_UNAVAILABLE; /* and no mesh_set_error() */
}

static enum mesh_err liar_get(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                              const char *name, struct mesh_resource **out)
{
    (void)mesh, (void)state, (void)kind;
    *out = &mesh_security_policy_new(name, ns)->res;
    return MESH_OK;
}

static enum mesh_err liar_list(struct mesh *mesh, void *state, enum mesh_kind kind, const char *ns,
                               struct mesh_resource ***out, size_t *n)
{
    (void)mesh, (void)state, (void)kind, (void)ns;
    *out = calloc(2, sizeof(**out));
    (*out)[0] = &mesh_virtual_service_new("fine", NULL)->res;
    (*out)[1] = &mesh_security_policy_new("odd-one", NULL)->res;
    *n = 2;
    return MESH_OK;
}

static enum mesh_err liar_remove(struct mesh *mesh, void *state, enum mesh_kind kind,
                                 const char *ns, const char *name)
{
    (void)mesh, (void)state, (void)kind, (void)ns, (void)name;
    return MESH_E_UNAVAILABLE;
}

static const struct mesh_provider_ops liar = {
    .name = "liar",
    .open = liar_open,
    .close = liar_close,
    .apply = liar_apply,
    .get = liar_get,
    .list = liar_list,
    .remove = liar_remove,
};

/* --- Fixtures --- */

static int register_providers(void **state)
{
    (void)state;
    return mesh_register_provider(&recorder) != MESH_OK || mesh_register_provider(&liar) != MESH_OK;
}

static struct mesh *open_provider(const char *name)
{
    struct mesh_config cfg = {.provider = name, .store_dir = "/nonexistent/unused"};
    struct mesh *mesh = NULL;
    assert_int_equal(mesh_new(&cfg, &mesh), MESH_OK);
    assert_non_null(mesh);
    assert_string_equal(mesh_provider_name(mesh), name);
    return mesh;
}

static int reset_calls(void **state)
{
    (void)state;
    n_calls = 0;
    max_version_applied = 0;
    return 0;
}

static struct mesh_virtual_service *payment_vs(const char *name, const char *ns, int w1, int w2)
{
    struct mesh_virtual_service *vs = mesh_virtual_service_new(name, ns);
    assert_non_null(vs);
    assert_int_equal(mesh_string_list_add(&vs->hosts, "payment.example.com"), MESH_OK);
    struct mesh_http_route *route = mesh_virtual_service_add_route(vs, "primary");
    assert_non_null(route);
    assert_non_null(mesh_http_route_add_match(route, "/api/v1/*"));
    assert_non_null(mesh_http_route_add_destination(route, "payment-v1", w1));
    assert_non_null(mesh_http_route_add_destination(route, "payment-v2", w2));
    return vs;
}

/* --- Registration --- */

static void test_register_rejects_missing_name_or_callback(void **state)
{
    (void)state;
    struct mesh_provider_ops ops = recorder;
    ops.name = "incomplete";

    assert_int_equal(mesh_register_provider(NULL), MESH_E_INVALID);
    ops.list = NULL;
    assert_int_equal(mesh_register_provider(&ops), MESH_E_INVALID);
    ops = recorder;
    ops.name = "incomplete";
    ops.close = NULL;
    assert_int_equal(mesh_register_provider(&ops), MESH_E_INVALID);
    ops = recorder;
    ops.name = NULL;
    assert_int_equal(mesh_register_provider(&ops), MESH_E_INVALID);
    ops.name = "";
    assert_int_equal(mesh_register_provider(&ops), MESH_E_INVALID);

    /* A rejected provider was not half-registered. */
    struct mesh_config cfg = {.provider = "incomplete"};
    struct mesh *mesh = NULL;
    assert_int_equal(mesh_new(&cfg, &mesh), MESH_E_NOTFOUND);
    assert_null(mesh);
}

static void test_register_rejects_taken_names(void **state)
{
    (void)state;
    static struct mesh_provider_ops ops;
    ops = recorder;
    assert_int_equal(mesh_register_provider(&recorder), MESH_E_CONFLICT);
    ops.name = "native";
    assert_int_equal(mesh_register_provider(&ops), MESH_E_CONFLICT);
    ops.name = "istio";
    assert_int_equal(mesh_register_provider(&ops), MESH_E_CONFLICT);
    ops.name = "linkerd";
    assert_int_equal(mesh_register_provider(&ops), MESH_E_CONFLICT);
}

#define N_RACERS 8
#define N_OWN    200 /* distinct names each racer registers, to make the table grow under it */
static struct mesh_provider_ops racers[N_RACERS];
static enum mesh_err race_results[N_RACERS];
static struct mesh_provider_ops own_ops[N_RACERS][N_OWN];
static char own_names[N_RACERS][N_OWN][16];

static void *race(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    race_results[i] = mesh_register_provider(&racers[i]);
    for (size_t j = 0; j < N_OWN; j++)
        if (mesh_register_provider(&own_ops[i][j]) != MESH_OK)
            race_results[i] = MESH_E_INTERNAL;
    return NULL;
}

static void test_register_is_thread_safe(void **state)
{
    (void)state;
    pthread_t threads[N_RACERS];
    size_t ok = 0, conflicts = 0;

    for (size_t i = 0; i < N_RACERS; i++) {
        racers[i] = recorder;
        racers[i].name = "racer";
        for (size_t j = 0; j < N_OWN; j++) {
            snprintf(own_names[i][j], sizeof own_names[i][j], "own-%zu-%zu", i, j);
            own_ops[i][j] = recorder;
            own_ops[i][j].name = own_names[i][j];
        }
    }
    for (size_t i = 0; i < N_RACERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, race, (void *)(uintptr_t)i), 0);
    for (size_t i = 0; i < N_RACERS; i++)
        pthread_join(threads[i], NULL);
    /* Exactly one thread won the shared name; every distinct name went in and stayed. */
    for (size_t i = 0; i < N_RACERS; i++) {
        ok += race_results[i] == MESH_OK;
        conflicts += race_results[i] == MESH_E_CONFLICT;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(conflicts, N_RACERS - 1);
    for (size_t i = 0; i < N_RACERS; i++)
        for (size_t j = 0; j < N_OWN; j++)
            assert_int_equal(mesh_register_provider(&own_ops[i][j]), MESH_E_CONFLICT);
}

/* --- Lookup --- */

static void assert_new_fails(const char *provider, enum mesh_err want, const char *message)
{
    struct mesh_config cfg = {.provider = provider};
    struct mesh *mesh = (struct mesh *)&cfg; /* must be reset to NULL */
    char *why = NULL;

    assert_int_equal(mesh_new_verbose(&cfg, &mesh, &why), want);
    assert_null(mesh);
    assert_non_null(why);
    assert_string_equal(why, message);
    free(why);
    mesh = (struct mesh *)&cfg;
    assert_int_equal(mesh_new(&cfg, &mesh), want);
    assert_null(mesh);
}

/* istio and linkerd open the cluster of the kubeconfig: without one, they say which file they read
 * (the providers against an API server are tested end to end, tests/e2e/test_kube_provider.py). */
static void test_istio_and_linkerd_need_a_kubeconfig(void **state)
{
    (void)state;
    struct mesh_config cfg = {.kubeconfig = "/nonexistent/kubeconfig"};
    const char *providers[] = {"istio", "linkerd"};
    for (size_t i = 0; i < 2; i++) {
        struct mesh *mesh = NULL;
        char *why = NULL, want[32];
        cfg.provider = providers[i];
        assert_int_equal(mesh_new_verbose(&cfg, &mesh, &why), MESH_E_NOTFOUND);
        assert_null(mesh);
        assert_non_null(why);
        snprintf(want, sizeof(want), "provider %s: ", providers[i]);
        assert_true(strncmp(why, want, strlen(want)) == 0);
        assert_non_null(strstr(why, "/nonexistent/kubeconfig"));
        free(why);
    }
}

static void test_unknown_provider_lists_known_ones(void **state)
{
    (void)state;
    assert_new_fails("consul", MESH_E_NOTFOUND,
                     "unknown provider \"consul\" (known: native, istio, linkerd, recorder, liar)");
}

static void test_open_receives_config(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("recorder");
    assert_call(0, "open", 0, "/nonexistent/unused", "recorder", 0);
    mesh_free(mesh);
    assert_call(1, "close", 0, "", "", 0);
    assert_int_equal(n_calls, 2);
}

/* --- The typed calls reach the provider as the right generic calls --- */

static void test_virtual_service_calls_reach_provider(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("recorder");
    struct mesh_virtual_service *vs = payment_vs("payment-service", NULL, 90, 10);
    struct mesh_virtual_service *got = NULL, **list = NULL;
    size_t n = 99;

    assert_int_equal(mesh_apply_virtual_service(mesh, vs), MESH_OK);
    assert_string_equal(mesh_last_error(mesh), "");
    assert_call(1, "apply", MESH_KIND_VIRTUAL_SERVICE, "default", "payment-service", 1);

    assert_int_equal(mesh_get_virtual_service(mesh, "payment-service", NULL, &got), MESH_OK);
    assert_call(2, "get", MESH_KIND_VIRTUAL_SERVICE, "default", "payment-service", 0);
    assert_string_equal(got->res.name, "payment-service");
    assert_int_equal(got->n_http_routes, 1);
    assert_int_equal(got->http_routes[0].destinations[0].weight, 90);
    assert_string_equal(got->hosts.items[0], "payment.example.com");

    assert_int_equal(mesh_list_virtual_services(mesh, NULL, &list, &n), MESH_OK);
    assert_call(3, "list", MESH_KIND_VIRTUAL_SERVICE, "", "", 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0]->res.name, "payment-service");
    mesh_virtual_service_list_free(list, n);

    assert_int_equal(mesh_list_virtual_services(mesh, "prod", &list, &n), MESH_OK);
    assert_call(4, "list", MESH_KIND_VIRTUAL_SERVICE, "prod", "", 0);
    assert_int_equal(n, 0);
    mesh_virtual_service_list_free(list, n);

    assert_int_equal(mesh_delete_virtual_service(mesh, "payment-service", "default"), MESH_OK);
    assert_call(5, "remove", MESH_KIND_VIRTUAL_SERVICE, "default", "payment-service", 0);
    assert_int_equal(n_calls, 6);

    mesh_virtual_service_free(got);
    mesh_virtual_service_free(vs);
    mesh_free(mesh);
}

static void test_security_policy_calls_reach_provider(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("recorder");
    struct mesh_security_policy *sp = mesh_security_policy_new("payment-security", "prod");
    struct mesh_security_policy *got = NULL, **list = NULL;
    size_t n = 0;

    sp->mtls.mode = MESH_MTLS_STRICT;
    struct mesh_authorization_rule *rule = mesh_security_policy_add_rule(sp);
    assert_int_equal(mesh_string_list_add(&rule->from, "orders.prod.svc"), MESH_OK);
    assert_int_equal(mesh_string_list_add(&rule->to, "payment.prod.svc"), MESH_OK);

    assert_int_equal(mesh_apply_security_policy(mesh, sp), MESH_OK);
    assert_call(1, "apply", MESH_KIND_SECURITY_POLICY, "prod", "payment-security", 1);
    assert_int_equal(mesh_get_security_policy(mesh, "payment-security", "prod", &got), MESH_OK);
    assert_call(2, "get", MESH_KIND_SECURITY_POLICY, "prod", "payment-security", 0);
    assert_int_equal(got->mtls.mode, MESH_MTLS_STRICT);
    assert_string_equal(got->authorization[0].from.items[0], "orders.prod.svc");
    assert_int_equal(mesh_list_security_policies(mesh, "prod", &list, &n), MESH_OK);
    assert_call(3, "list", MESH_KIND_SECURITY_POLICY, "prod", "", 0);
    assert_int_equal(n, 1);
    assert_int_equal(mesh_delete_security_policy(mesh, "payment-security", "prod"), MESH_OK);
    assert_call(4, "remove", MESH_KIND_SECURITY_POLICY, "prod", "payment-security", 0);

    mesh_security_policy_list_free(list, n);
    mesh_security_policy_free(got);
    mesh_security_policy_free(sp);
    mesh_free(mesh);
}

static void test_resilience_calls_reach_provider(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("recorder");
    struct mesh_circuit_breaker_config cfg = {
        .max_connections = 100,
        .max_requests = 1000,
        .detection = {.consecutive_errors = 5, .max_ejection_percent = MESH_UNSET},
    };
    struct mesh_fault fault = {
        .delay_ms = 100,
        .delay_percentage = MESH_UNSET,
        .abort = {.http_status = 0, .percentage = MESH_UNSET},
    };
    struct mesh_resource *got = NULL;

    assert_int_equal(mesh_configure_circuit_breaker(mesh, "payment-service.prod", &cfg), MESH_OK);
    assert_call(1, "apply", MESH_KIND_CIRCUIT_BREAKER, "prod", "payment-service", 1);
    assert_int_equal(mesh_get(mesh, MESH_KIND_CIRCUIT_BREAKER, "payment-service", "prod", &got),
                     MESH_OK);
    const struct mesh_circuit_breaker *cb = (const struct mesh_circuit_breaker *)got;
    assert_string_equal(cb->service, "payment-service");
    assert_int_equal(cb->config.max_connections, 100);
    assert_int_equal(cb->config.max_requests, 1000);
    assert_int_equal(cb->config.detection.consecutive_errors, 5);
    mesh_resource_free(got);

    assert_int_equal(mesh_inject_fault(mesh, "web-service", &fault), MESH_OK);
    assert_call(3, "apply", MESH_KIND_FAULT_INJECTION, "default", "web-service", 1);
    assert_int_equal(mesh_inject_fault(mesh, "web-service.staging.svc", &fault), MESH_OK);
    assert_call(4, "apply", MESH_KIND_FAULT_INJECTION, "staging", "web-service", 1);
    assert_int_equal(mesh_get(mesh, MESH_KIND_FAULT_INJECTION, "web-service", "staging", &got),
                     MESH_OK);
    const struct mesh_fault_injection *fi = (const struct mesh_fault_injection *)got;
    assert_string_equal(fi->service, "web-service");
    assert_int_equal(fi->fault.delay_ms, 100);
    mesh_resource_free(got);

    mesh_free(mesh);
}

static void test_generic_apply_passes_every_resource(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("recorder");
    struct mesh_virtual_service *a = payment_vs("a", "x", 50, 50);
    struct mesh_virtual_service *b = payment_vs("b", "x", 50, 50);
    const struct mesh_resource *res[] = {&a->res, &b->res};
    struct mesh_apply_result results[2];

    assert_int_equal(mesh_apply(mesh, res, 2, results), MESH_OK);
    assert_call(1, "apply", MESH_KIND_VIRTUAL_SERVICE, "x", "a", 2);
    assert_int_equal(results[0].outcome, MESH_APPLY_CREATED);
    assert_int_equal(results[1].resource_version, 2);
    assert_int_equal(mesh_apply(mesh, res, 0, NULL), MESH_OK);
    assert_int_equal(n_calls, 2); /* nothing to apply: the provider is not called */

    mesh_virtual_service_free(a);
    mesh_virtual_service_free(b);
    mesh_free(mesh);
}

/* --- Validation happens before the provider is called --- */

static void test_invalid_resources_never_reach_provider(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("recorder");
    struct mesh_virtual_service *bad = payment_vs("payment-service", NULL, 90, 5);
    struct mesh_virtual_service *good = payment_vs("web-service", NULL, 80, 20);
    struct mesh_circuit_breaker_config cfg = {.max_connections = 1};

    assert_int_equal(mesh_apply_virtual_service(mesh, bad), MESH_E_INVALID);
    assert_non_null(strstr(mesh_last_error(mesh), "VirtualService default/payment-service: "));
    assert_non_null(strstr(mesh_last_error(mesh), "95"));

    /* One bad resource in a batch stops the whole batch, and every problem is reported. */
    struct mesh_virtual_service *bad2 = payment_vs("other", NULL, 10, 10);
    const struct mesh_resource *batch[] = {&good->res, &bad->res, &bad2->res};
    assert_int_equal(mesh_apply(mesh, batch, 3, NULL), MESH_E_INVALID);
    const char *msg = mesh_last_error(mesh);
    assert_non_null(strstr(msg, "payment-service"));
    assert_non_null(strchr(msg, '\n'));
    assert_non_null(strstr(strchr(msg, '\n'), "other"));

    const struct mesh_resource *holes[] = {&good->res, NULL};
    assert_int_equal(mesh_apply(mesh, holes, 2, NULL), MESH_E_INVALID);
    assert_int_equal(mesh_apply_virtual_service(mesh, NULL), MESH_E_INVALID);
    /* A typed call refuses a struct of another kind. */
    assert_int_equal(
        mesh_apply_security_policy(mesh, (const struct mesh_security_policy *)(void *)good),
        MESH_E_INVALID);
    assert_int_equal(mesh_configure_circuit_breaker(mesh, "a.b.c.d", &cfg), MESH_E_INVALID);
    assert_non_null(strstr(mesh_last_error(mesh), "a.b.c.d"));
    assert_int_equal(mesh_configure_circuit_breaker(mesh, "", &cfg), MESH_E_INVALID);
    assert_int_equal(mesh_configure_circuit_breaker(mesh, "x", NULL), MESH_E_INVALID);
    assert_int_equal(mesh_inject_fault(mesh, ".ns", &(struct mesh_fault){.delay_ms = 1}),
                     MESH_E_INVALID);

    assert_int_equal(n_calls, 1); /* only open */
    mesh_virtual_service_free(bad);
    mesh_virtual_service_free(bad2);
    mesh_virtual_service_free(good);
    mesh_free(mesh);
}

/* --- Errors and what mesh_last_error() says --- */

static void test_missing_resource_is_service_not_found(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("recorder");
    struct mesh_virtual_service *vs = (void *)&calls; /* must be reset to NULL */

    assert_int_equal(mesh_get_virtual_service(mesh, "foo", NULL, &vs), MESH_E_NOTFOUND);
    assert_null(vs);
    assert_string_equal(mesh_last_error(mesh), "Service not found: VirtualService default/foo");
    assert_int_equal(mesh_delete_security_policy(mesh, "bar", "prod"), MESH_E_NOTFOUND);
    assert_string_equal(mesh_last_error(mesh), "Service not found: SecurityPolicy prod/bar");

    /* A provider may wrap the message already recorded. */
    assert_int_equal(mesh_set_error(mesh, MESH_E_IO, "wrapped: %s", mesh_last_error(mesh)),
                     MESH_E_IO);
    assert_string_equal(mesh_last_error(mesh),
                        "wrapped: Service not found: SecurityPolicy prod/bar");

    /* A later success clears the message. */
    struct mesh_virtual_service **list = NULL;
    size_t n = 0;
    assert_int_equal(mesh_list_virtual_services(mesh, NULL, &list, &n), MESH_OK);
    assert_string_equal(mesh_last_error(mesh), "");
    mesh_virtual_service_list_free(list, n);

    assert_int_equal(mesh_get_virtual_service(mesh, NULL, NULL, &vs), MESH_E_INVALID);
    struct mesh_resource *res = NULL;
    assert_int_equal(mesh_get(mesh, MESH_KIND_COUNT, "x", NULL, &res), MESH_E_INVALID);
    assert_int_equal(n_calls, 4); /* open, get, remove, list: the invalid calls stopped early */
    mesh_free(mesh);
}

static void test_wrong_kind_is_never_handed_back(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("liar");
    struct mesh_virtual_service *vs = (void *)&calls;
    struct mesh_virtual_service **list = (void *)&calls;
    size_t n = 7;

    assert_int_equal(mesh_get_virtual_service(mesh, "x", NULL, &vs), MESH_E_INTERNAL);
    assert_null(vs);
    assert_non_null(strstr(mesh_last_error(mesh), "SecurityPolicy"));
    assert_int_equal(mesh_list_virtual_services(mesh, NULL, &list, &n), MESH_E_INTERNAL);
    assert_null(list);
    assert_int_equal(n, 0);
    mesh_free(mesh);
}

static void test_provider_failure_without_message_still_explains(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("liar");
    struct mesh_virtual_service *vs = payment_vs("v", NULL, 50, 50);

    assert_int_equal(mesh_apply_virtual_service(mesh, vs), MESH_E_UNAVAILABLE);
    assert_non_null(strstr(mesh_last_error(mesh), "provider \"liar\""));
    assert_int_equal(mesh_delete_virtual_service(mesh, "v", NULL), MESH_E_UNAVAILABLE);
    assert_non_null(strstr(mesh_last_error(mesh), "delete"));
    mesh_virtual_service_free(vs);
    mesh_free(mesh);
}

/* A provider without the restore call: mesh_restore applies, with every version dropped, so
 * that the backup's versions are not taken for conditional writes. The caller's resources keep
 * theirs. */
static void test_restore_without_provider_support_applies_without_versions(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("recorder");
    struct mesh_virtual_service *a = payment_vs("a", "x", 50, 50);
    struct mesh_virtual_service *b = payment_vs("b", "x", 50, 50);
    const struct mesh_resource *res[] = {&a->res, &b->res};
    struct mesh_apply_result results[2];
    enum mesh_restore_mode mode = MESH_RESTORE_VERSIONS_KEPT;

    a->res.resource_version = 41;
    a->res.generation = 2;
    b->res.resource_version = 42;
    b->res.generation = 1;
    assert_int_equal(mesh_restore(mesh, res, 2, results, &mode), MESH_OK);
    assert_int_equal(mode, MESH_RESTORE_APPLIED);
    assert_call(1, "apply", MESH_KIND_VIRTUAL_SERVICE, "x", "a", 2);
    assert_int_equal(max_version_applied, 0);
    assert_int_equal(results[0].outcome, MESH_APPLY_CREATED);
    assert_int_equal(results[1].resource_version, 2);
    assert_int_equal(a->res.resource_version, 41);

    /* Validation first, as for apply: the provider never sees invalid input. */
    b->http_routes[0].destinations[0].weight = 10;
    assert_int_equal(mesh_restore(mesh, res, 2, results, &mode), MESH_E_INVALID);
    assert_int_equal(n_calls, 2);
    mesh_virtual_service_free(a);
    mesh_virtual_service_free(b);
    mesh_free(mesh);

    /* A failure without a message still says what failed. */
    mesh = open_provider("liar");
    b = payment_vs("b", "x", 50, 50);
    const struct mesh_resource *one[] = {&b->res};
    assert_int_equal(mesh_restore(mesh, one, 1, NULL, &mode), MESH_E_UNAVAILABLE);
    assert_non_null(strstr(mesh_last_error(mesh), "provider \"liar\": restore failed"));
    mesh_virtual_service_free(b);
    mesh_free(mesh);
}

static void test_list_is_sorted_by_namespace_then_name(void **state)
{
    (void)state;
    struct mesh *mesh = open_provider("recorder");
    const char *refs[][2] = {{"b", "a"}, {"a", "z"}, {"c", "a"}, {"a", "a"}};
    struct mesh_virtual_service **list = NULL;
    size_t n = 0;

    for (size_t i = 0; i < 4; i++) {
        struct mesh_virtual_service *vs = payment_vs(refs[i][0], refs[i][1], 50, 50);
        assert_int_equal(mesh_apply_virtual_service(mesh, vs), MESH_OK);
        mesh_virtual_service_free(vs);
    }
    assert_int_equal(mesh_list_virtual_services(mesh, NULL, &list, &n), MESH_OK);
    assert_int_equal(n, 4);
    assert_string_equal(list[0]->res.name, "a");
    assert_string_equal(list[0]->res.ns, "a");
    assert_string_equal(list[1]->res.name, "b");
    assert_string_equal(list[2]->res.name, "c");
    assert_string_equal(list[3]->res.ns, "z");
    mesh_virtual_service_list_free(list, n);
    mesh_free(mesh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_rejects_missing_name_or_callback),
        cmocka_unit_test(test_register_rejects_taken_names),
        cmocka_unit_test(test_istio_and_linkerd_need_a_kubeconfig),
        cmocka_unit_test(test_unknown_provider_lists_known_ones),
        /* After the test above: it leaves many providers registered. */
        cmocka_unit_test(test_register_is_thread_safe),
        cmocka_unit_test_setup(test_open_receives_config, reset_calls),
        cmocka_unit_test_setup(test_virtual_service_calls_reach_provider, reset_calls),
        cmocka_unit_test_setup(test_security_policy_calls_reach_provider, reset_calls),
        cmocka_unit_test_setup(test_resilience_calls_reach_provider, reset_calls),
        cmocka_unit_test_setup(test_generic_apply_passes_every_resource, reset_calls),
        cmocka_unit_test_setup(test_invalid_resources_never_reach_provider, reset_calls),
        cmocka_unit_test_setup(test_missing_resource_is_service_not_found, reset_calls),
        cmocka_unit_test(test_wrong_kind_is_never_handed_back),
        cmocka_unit_test(test_provider_failure_without_message_still_explains),
        cmocka_unit_test_setup(test_list_is_sorted_by_namespace_then_name, reset_calls),
        cmocka_unit_test_setup(test_restore_without_provider_support_applies_without_versions,
                               reset_calls),
    };
    return cmocka_run_group_tests(tests, register_providers, NULL);
}
